/*
 * llama.cpp's CUDA backend on the shim: what `llama-server --list-devices` prints, then a device
 * buffer with bytes written and read back through ggml's public API.
 *
 *   test_ggml <libggml-base.so> <libggml-cuda.so>
 *
 * libggml-cuda.so links libcudart.so.12, libcublas.so.12 and libcuda.so.1 (DT_NEEDED), found through
 * LD_LIBRARY_PATH. The few ggml prototypes needed are declared here (ggml.h, ggml-backend.h).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ggml_backend_reg *ggml_backend_reg_t;
typedef struct ggml_backend_device *ggml_backend_dev_t;
typedef struct ggml_backend_buffer_type *ggml_backend_buffer_type_t;
typedef struct ggml_backend_buffer *ggml_backend_buffer_t;
struct ggml_context;
struct ggml_tensor;
struct ggml_init_params {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
};
enum { GGML_TYPE_F32 = 0 };
enum { GGML_STATUS_SUCCESS = 0 };

#define ELEMENTS (256 * 1024) /* 1 MiB of floats: large enough to leave the inline path */

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        printf("missing_symbol=%s\n", name);
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_ggml <libggml-base.so> <libggml-cuda.so>\n");
        return 2;
    }
    /* As llama-server's loader does: the base library global, so the backend binds to it. */
    void *base = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (base == NULL) {
        printf("dlopen_failed=%s\n", dlerror());
        return 1;
    }
    void *cuda = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (cuda == NULL) {
        printf("dlopen_failed=%s\n", dlerror());
        return 1;
    }
    ggml_backend_reg_t (*cuda_reg)(void) = (ggml_backend_reg_t (*)(void))sym(cuda, "ggml_backend_cuda_reg");
    size_t (*dev_count)(ggml_backend_reg_t) = (size_t (*)(ggml_backend_reg_t))sym(base, "ggml_backend_reg_dev_count");
    ggml_backend_dev_t (*dev_get)(ggml_backend_reg_t, size_t) =
        (ggml_backend_dev_t (*)(ggml_backend_reg_t, size_t))sym(base, "ggml_backend_reg_dev_get");
    const char *(*dev_name)(ggml_backend_dev_t) = (const char *(*)(ggml_backend_dev_t))sym(base, "ggml_backend_dev_name");
    const char *(*dev_description)(ggml_backend_dev_t) =
        (const char *(*)(ggml_backend_dev_t))sym(base, "ggml_backend_dev_description");
    void (*dev_memory)(ggml_backend_dev_t, size_t *, size_t *) =
        (void (*)(ggml_backend_dev_t, size_t *, size_t *))sym(base, "ggml_backend_dev_memory");
    ggml_backend_buffer_type_t (*dev_buffer_type)(ggml_backend_dev_t) =
        (ggml_backend_buffer_type_t (*)(ggml_backend_dev_t))sym(base, "ggml_backend_dev_buffer_type");
    ggml_backend_buffer_t (*buft_alloc)(ggml_backend_buffer_type_t, size_t) =
        (ggml_backend_buffer_t (*)(ggml_backend_buffer_type_t, size_t))sym(base, "ggml_backend_buft_alloc_buffer");
    void *(*buffer_base)(ggml_backend_buffer_t) = (void *(*)(ggml_backend_buffer_t))sym(base, "ggml_backend_buffer_get_base");
    void (*buffer_free)(ggml_backend_buffer_t) = (void (*)(ggml_backend_buffer_t))sym(base, "ggml_backend_buffer_free");
    size_t (*tensor_overhead)(void) = (size_t (*)(void))sym(base, "ggml_tensor_overhead");
    struct ggml_context *(*init)(struct ggml_init_params) =
        (struct ggml_context * (*)(struct ggml_init_params)) sym(base, "ggml_init");
    void (*ctx_free)(struct ggml_context *) = (void (*)(struct ggml_context *))sym(base, "ggml_free");
    struct ggml_tensor *(*new_tensor_1d)(struct ggml_context *, int, int64_t) =
        (struct ggml_tensor * (*)(struct ggml_context *, int, int64_t)) sym(base, "ggml_new_tensor_1d");
    int (*tensor_alloc)(ggml_backend_buffer_t, struct ggml_tensor *, void *) =
        (int (*)(ggml_backend_buffer_t, struct ggml_tensor *, void *))sym(base, "ggml_backend_tensor_alloc");
    void (*tensor_set)(struct ggml_tensor *, const void *, size_t, size_t) =
        (void (*)(struct ggml_tensor *, const void *, size_t, size_t))sym(base, "ggml_backend_tensor_set");
    void (*tensor_get)(const struct ggml_tensor *, void *, size_t, size_t) =
        (void (*)(const struct ggml_tensor *, void *, size_t, size_t))sym(base, "ggml_backend_tensor_get");

    ggml_backend_reg_t reg = cuda_reg();
    size_t n = reg ? dev_count(reg) : 0;
    printf("device_count=%zu\n", n);
    /* llama-server --list-devices, which Ollama parses (deviceLineRegex). */
    printf("Available devices:\n");
    for (size_t i = 0; i < n; i++) {
        ggml_backend_dev_t dev = dev_get(reg, i);
        size_t free_mem = 0, total = 0;
        dev_memory(dev, &free_mem, &total);
        printf("  %s: %s (%zu MiB, %zu MiB free)\n", dev_name(dev), dev_description(dev), total / 1024 / 1024,
               free_mem / 1024 / 1024);
        printf("device[%zu] name=%s description=%s total=%zu free=%zu\n", i, dev_name(dev), dev_description(dev), total,
               free_mem);
    }
    if (n == 0)
        return 1;

    ggml_backend_dev_t dev = dev_get(reg, 0);
    size_t bytes = ELEMENTS * sizeof(float);
    ggml_backend_buffer_t buf = buft_alloc(dev_buffer_type(dev), bytes);
    if (buf == NULL) {
        printf("error=ggml_backend_buft_alloc_buffer\n");
        return 1;
    }
    struct ggml_context *ctx = init((struct ggml_init_params){.mem_size = 4 * tensor_overhead(), .no_alloc = true});
    struct ggml_tensor *t = new_tensor_1d(ctx, GGML_TYPE_F32, ELEMENTS);
    if (tensor_alloc(buf, t, buffer_base(buf)) != GGML_STATUS_SUCCESS) {
        printf("error=ggml_backend_tensor_alloc\n");
        return 1;
    }
    uint8_t *out = malloc(bytes), *in = calloc(1, bytes);
    for (size_t i = 0; i < bytes; i++)
        out[i] = (uint8_t)(i * 131 + (i >> 12));
    tensor_set(t, out, 0, bytes);
    tensor_get(t, in, 0, bytes);
    /* A partial read at an offset checks the addressing as well as the bytes. */
    uint8_t tail[64];
    tensor_get(t, tail, bytes - sizeof tail, sizeof tail);
    int same = memcmp(out, in, bytes) == 0 && memcmp(out + bytes - sizeof tail, tail, sizeof tail) == 0;
    printf("tensor_roundtrip=%s bytes=%zu\n", same ? "ok" : "MISMATCH", bytes);
    ctx_free(ctx);
    buffer_free(buf);
    free(out);
    free(in);
    return same ? 0 : 1;
}
