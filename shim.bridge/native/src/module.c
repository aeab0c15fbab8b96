/*
 * Modules, functions, globals and launches. The service parses each image and answers a function
 * lookup with the kernel's parameter layout, which the shim keeps with the CUfunction: a launch
 * packs `void **kernelParams` into one buffer locally and leaves as a single fire-and-forget frame.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sha256.h"
#include "vgpu.h"

#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define MAX_PARAMS 4096

struct vgpu_module {
    uint64_t handle;
    uint64_t remote;
    struct vgpu_ctx *ctx;
    pthread_mutex_t lock;
    struct vgpu_function *functions; /* looked-up functions, so a name always yields the same handle */
};

struct vgpu_function {
    uint64_t handle;
    uint64_t remote;
    struct vgpu_module *module;
    struct vgpu_function *next;
    char *name;
    uint32_t param_count;
    uint32_t param_buffer_size;
    uint32_t *offsets;
    uint32_t *sizes;
    int32_t max_threads;
    int32_t num_regs;
    int32_t shared_size;
    int32_t const_size;
    int32_t local_size;
    int32_t max_dynamic_shared;
    int32_t preferred_carveout;
    /* PTX_VERSION and BINARY_VERSION: asked on first use (FUNCTION_GET does not carry them), then kept */
    pthread_mutex_t versions_lock;
    int versions_known;
    int32_t ptx_version;
    int32_t binary_version;
};

/* ---------------------------------------------------------------- image size */

/*
 * The API hands over a bare pointer, so the size comes from the image itself: a fatbin container
 * (or the wrapper cudart registers), an ELF cubin, or NUL-terminated PTX text.
 */
size_t vgpu_image_size(const void *image, const void **start)
{
    const uint8_t *p = image;
    uint32_t magic;
    memcpy(&magic, p, 4);
    *start = image;
    if (magic == FATBIN_WRAPPER_MAGIC) {
        const void *data;
        memcpy(&data, p + 8, sizeof data);
        if (data == NULL)
            return 0;
        return vgpu_image_size(data, start);
    }
    if (magic == FATBIN_MAGIC) {
        /* One container: the linker places every object's container back to back in .nv_fatbin,
         * and a registration names only its own (cuBLAS's section is ~300 MB). */
        uint16_t header;
        uint64_t body;
        memcpy(&header, p + 6, 2);
        memcpy(&body, p + 8, 8);
        if (header < 16 || body > (1ull << 32))
            return 0;
        return header + (size_t)body;
    }
    if (memcmp(p, ELFMAG, SELFMAG) == 0 && p[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        memcpy(&eh, p, sizeof eh);
        size_t end = (size_t)eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize;
        size_t ph_end = (size_t)eh.e_phoff + (size_t)eh.e_phnum * eh.e_phentsize;
        if (ph_end > end)
            end = ph_end;
        for (int i = 0; i < eh.e_shnum; i++) {
            Elf64_Shdr sh;
            memcpy(&sh, p + eh.e_shoff + (size_t)i * eh.e_shentsize, sizeof sh);
            if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > end)
                end = sh.sh_offset + sh.sh_size;
        }
        return end;
    }
    return strlen(image) + 1;
}

/* ---------------------------------------------------------------- modules */

/*
 * Loads an image into a context. The service keeps parsed images by content hash, so an image
 * any process already uploaded (cuBLAS's fatbins, in every process) is named, not sent.
 */
CUresult vgpu_module_load_ctx(struct vgpu_ctx *c, const void *image, CUmodule *module)
{
    if (module == NULL || image == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = vgpu_ctx_remote(c);
    if (rc != CUDA_SUCCESS)
        return rc;
    const void *start;
    size_t size = vgpu_image_size(image, &start);
    if (size == 0)
        return CUDA_ERROR_INVALID_IMAGE;
    if (size > vgpu_frame_limit() - sizeof(struct vgpu_module_load_req))
        return CUDA_ERROR_INVALID_IMAGE;
    struct vgpu_module_load_cached_req cached = {.ctx = c->remote};
    vgpu_sha256(start, size, cached.sha256);
    struct vgpu_module_load_rep rep;
    rc = vgpu_call(VGPU_OP_MODULE_LOAD_CACHED, &cached, sizeof cached, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_ERROR_NOT_FOUND) {
        struct vgpu_module_load_req req = {.ctx = c->remote};
        rc = vgpu_call(VGPU_OP_MODULE_LOAD, &req, sizeof req, start, size, &rep, sizeof rep, NULL, 0, NULL);
    }
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_module *m = calloc(1, sizeof *m);
    if (m == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    m->remote = rep.module;
    m->ctx = c;
    pthread_mutex_init(&m->lock, NULL);
    m->handle = vgpu_handle_new(VGPU_KIND_MODULE, m);
    *module = (CUmodule)(uintptr_t)m->handle;
    return CUDA_SUCCESS;
}

static CUresult module_load(CUmodule *module, const void *image)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    return vgpu_module_load_ctx(c, image, module);
}

/* For cudart's module loaders in the CUDART_INTERFACE table. */
CUresult vgpu_module_from_image(CUmodule *module, const void *image)
{
    return module_load(module, image);
}

VGPU_API CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    return module_load(module, image);
}

/*
 * JIT options tune a real driver's PTX compiler; the service compiles (or simulates) on its own
 * terms, so the inputs are accepted and have no effect. What the application reads back is filled
 * in: empty logs on success, the failure in the error log otherwise, and the load's wall time.
 * Output values live in the option-value slots themselves, as the driver's do.
 */
VGPU_API CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options,
                                     void **optionValues)
{
    VGPU_CHECK_INIT();
    if (numOptions > 0 && (options == NULL || optionValues == NULL))
        return CUDA_ERROR_INVALID_VALUE;
    char *info = NULL, *error = NULL;
    size_t info_cap = 0, error_cap = 0;
    int info_size = -1, error_size = -1, wall = -1;
    for (unsigned i = 0; i < numOptions; i++) {
        switch (options[i]) {
        case CU_JIT_INFO_LOG_BUFFER: info = optionValues[i]; break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES: info_cap = (size_t)(uintptr_t)optionValues[i], info_size = (int)i; break;
        case CU_JIT_ERROR_LOG_BUFFER: error = optionValues[i]; break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: error_cap = (size_t)(uintptr_t)optionValues[i], error_size = (int)i; break;
        case CU_JIT_WALL_TIME: wall = (int)i; break;
        default:
            if ((unsigned)options[i] >= CU_JIT_NUM_OPTIONS)
                return CUDA_ERROR_INVALID_VALUE;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CUresult rc = module_load(module, image);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (wall >= 0) {
        float ms = (float)((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        memcpy(&optionValues[wall], &ms, sizeof ms);
    }
    if (info != NULL && info_cap > 0)
        info[0] = '\0';
    if (info_size >= 0)
        optionValues[info_size] = (void *)(uintptr_t)0;
    size_t error_len = 0;
    if (error != NULL && error_cap > 0) {
        error[0] = '\0';
        if (rc != CUDA_SUCCESS) {
            const char *name = vgpu_error_name(rc);
            snprintf(error, error_cap, "vgpu: the service did not load the image: %s", name ? name : "unknown error");
            error_len = strlen(error) + 1;
        }
    }
    if (error_size >= 0)
        optionValues[error_size] = (void *)(uintptr_t)error_len;
    return rc;
}

VGPU_API CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return module_load(module, fatCubin);
}

/* Reads a whole image file, NUL-terminated so PTX text is a string. */
CUresult vgpu_read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            rc = CUDA_SUCCESS;
        }
    }
    fclose(f);
    if (rc != CUDA_SUCCESS)
        free(buf);
    else
        *out = buf;
    return rc;
}

VGPU_API CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    VGPU_CHECK_INIT();
    if (fname == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    char *image;
    CUresult rc = vgpu_read_file(fname, &image);
    if (rc == CUDA_SUCCESS) {
        rc = module_load(module, image);
        free(image);
    }
    return rc;
}

static void free_function(struct vgpu_function *f)
{
    vgpu_handle_free(f->handle);
    free(f->name);
    free(f->offsets);
    free(f->sizes);
    free(f);
}

VGPU_API CUresult cuModuleUnload(CUmodule hmod)
{
    VGPU_CHECK_INIT();
    struct vgpu_module *m = vgpu_handle_get((uint64_t)(uintptr_t)hmod, VGPU_KIND_MODULE);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_module_unload_req req = {.module = m->remote};
    CUresult rc = vgpu_call(VGPU_OP_MODULE_UNLOAD, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
    if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_DEVICE_UNAVAILABLE)
        return rc;
    vgpu_handle_free(m->handle);
    for (struct vgpu_function *f = m->functions, *next; f != NULL; f = next) {
        next = f->next;
        free_function(f);
    }
    m->functions = NULL;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    VGPU_CHECK_INIT();
    if (mode == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    /* Lazy: cudart then looks kernels up at first use instead of uploading every image at init. */
    *mode = CU_MODULE_LAZY_LOADING;
    return CUDA_SUCCESS;
}

/* Looks a kernel up on the service once per module and name; later lookups are local. */
CUresult vgpu_module_function(uint64_t module_handle, const char *name, struct vgpu_function **out)
{
    struct vgpu_module *m = vgpu_handle_get(module_handle, VGPU_KIND_MODULE);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&m->lock);
    for (struct vgpu_function *f = m->functions; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&m->lock);
            *out = f;
            return CUDA_SUCCESS;
        }
    }
    struct vgpu_function_get_req req = {.module = m->remote};
    struct vgpu_function_get_rep rep;
    size_t cap = MAX_PARAMS * sizeof(struct vgpu_param_rec), got = 0;
    struct vgpu_param_rec *params = malloc(cap);
    if (params == NULL) {
        pthread_mutex_unlock(&m->lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = vgpu_call(VGPU_OP_FUNCTION_GET, &req, sizeof req, name, strlen(name), &rep, sizeof rep, params, cap, &got);
    struct vgpu_function *f = NULL;
    if (rc == CUDA_SUCCESS) {
        uint32_t n = (uint32_t)(got / sizeof *params);
        if (n > rep.param_count)
            n = rep.param_count;
        f = calloc(1, sizeof *f);
        if (f != NULL) {
            f->remote = rep.function;
            f->module = m;
            f->name = strdup(name);
            f->param_count = n;
            f->param_buffer_size = rep.param_buffer_size;
            f->offsets = calloc(n + 1, sizeof *f->offsets);
            f->sizes = calloc(n + 1, sizeof *f->sizes);
            for (uint32_t i = 0; i < n && f->offsets && f->sizes; i++) {
                f->offsets[i] = params[i].offset;
                f->sizes[i] = params[i].size;
            }
            f->max_threads = rep.max_threads_per_block;
            f->num_regs = rep.num_regs;
            f->shared_size = rep.shared_size_bytes;
            f->const_size = rep.const_size_bytes;
            f->local_size = rep.local_size_bytes;
            f->preferred_carveout = -1;
            pthread_mutex_init(&f->versions_lock, NULL);
            f->handle = vgpu_handle_new(VGPU_KIND_FUNCTION, f);
            if (f->name == NULL || f->offsets == NULL || f->sizes == NULL || f->handle == 0) {
                free_function(f);
                f = NULL;
                rc = CUDA_ERROR_OUT_OF_MEMORY;
            } else {
                f->next = m->functions;
                m->functions = f;
            }
        } else {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    free(params);
    pthread_mutex_unlock(&m->lock);
    if (rc == CUDA_SUCCESS)
        *out = f;
    return rc;
}

VGPU_API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    VGPU_CHECK_INIT();
    if (hfunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_function *f;
    CUresult rc = vgpu_module_function((uint64_t)(uintptr_t)hmod, name, &f);
    if (rc == CUDA_SUCCESS)
        *hfunc = (CUfunction)(uintptr_t)f->handle;
    return rc;
}

CUresult vgpu_module_global(uint64_t module_handle, const char *name, CUdeviceptr *dptr, size_t *bytes)
{
    struct vgpu_module *m = vgpu_handle_get(module_handle, VGPU_KIND_MODULE);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_global_get_req req = {.module = m->remote};
    struct vgpu_global_get_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_GLOBAL_GET, &req, sizeof req, name, strlen(name), &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS) {
        if (dptr != NULL)
            *dptr = rep.ptr;
        if (bytes != NULL)
            *bytes = rep.size;
    }
    return rc;
}

VGPU_API CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    VGPU_CHECK_INIT();
    return vgpu_module_global((uint64_t)(uintptr_t)hmod, name, dptr, bytes);
}

/* ---------------------------------------------------------------- functions */

/* A CUfunction, or a CUkernel passed where a CUfunction is expected (cudart does this). */
struct vgpu_function *vgpu_function_from(CUfunction f);

static struct vgpu_function *function_from_handle(CUfunction f)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)f, VGPU_KIND_FUNCTION);
}

struct vgpu_function *vgpu_kernel_function(uint64_t kernel);

struct vgpu_function *vgpu_function_from(CUfunction f)
{
    struct vgpu_function *fn = function_from_handle(f);
    if (fn == NULL && vgpu_handle_kind((uint64_t)(uintptr_t)f) == VGPU_KIND_KERNEL)
        fn = vgpu_kernel_function((uint64_t)(uintptr_t)f);
    return fn;
}

uint64_t vgpu_function_handle(struct vgpu_function *f)
{
    return f->handle;
}

/*
 * The architectures a function's code is for: the PTX's virtual architecture, and the one of the
 * binary that runs (the device's when the service compiled PTX for it, a cubin's own otherwise).
 * Only the service knows which code it chose from the image, so these two are asked for, once.
 */
static CUresult function_versions(struct vgpu_function *f, int32_t *ptx, int32_t *binary)
{
    pthread_mutex_lock(&f->versions_lock);
    CUresult rc = CUDA_SUCCESS;
    if (!f->versions_known) {
        int32_t v[2];
        CUfunction_attribute which[2] = {CU_FUNC_ATTRIBUTE_PTX_VERSION, CU_FUNC_ATTRIBUTE_BINARY_VERSION};
        for (int i = 0; i < 2 && rc == CUDA_SUCCESS; i++) {
            struct vgpu_function_get_attribute_req req = {.function = f->remote, .attribute = (int32_t)which[i]};
            struct vgpu_function_get_attribute_rep rep;
            rc = vgpu_call(VGPU_OP_FUNCTION_GET_ATTRIBUTE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
            v[i] = rep.value;
        }
        if (rc == CUDA_SUCCESS) {
            f->ptx_version = v[0];
            f->binary_version = v[1];
            f->versions_known = 1;
        }
    }
    *ptx = f->ptx_version;
    *binary = f->binary_version;
    pthread_mutex_unlock(&f->versions_lock);
    return rc;
}

VGPU_API CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(hfunc);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (pi == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = f->max_threads; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = f->shared_size; break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = f->const_size; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = f->local_size; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = f->num_regs; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: {
        int32_t ptx, binary;
        CUresult rc = function_versions(f, &ptx, &binary);
        if (rc != CUDA_SUCCESS)
            return rc;
        *pi = attrib == CU_FUNC_ATTRIBUTE_PTX_VERSION ? ptx : binary;
        break;
    }
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
        struct vgpu_device *d = vgpu_device(f->module->ctx->device);
        *pi = f->max_dynamic_shared > 0 ? f->max_dynamic_shared
                                        : (d ? d->attr[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK] : 49152) - f->shared_size;
        break;
    }
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *pi = f->preferred_carveout; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *pi = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(hfunc);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
        struct vgpu_device *d = vgpu_device(f->module->ctx->device);
        int limit = d ? d->attr[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN] - f->shared_size : 0;
        if (value < 0 || value > limit)
            return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return CUDA_SUCCESS;
    }
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (value < -1 || value > 100)
            return CUDA_ERROR_INVALID_VALUE;
        f->preferred_carveout = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

VGPU_API CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    VGPU_CHECK_INIT();
    (void)config;
    return vgpu_function_from(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

VGPU_API CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config)
{
    VGPU_CHECK_INIT();
    (void)config;
    return vgpu_function_from(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

VGPU_API CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(hfunc);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (hmod == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *hmod = (CUmodule)(uintptr_t)f->module->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(hfunc);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *name = f->name;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(func);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (paramIndex >= f->param_count)
        return CUDA_ERROR_INVALID_VALUE;
    if (paramOffset != NULL)
        *paramOffset = f->offsets[paramIndex];
    if (paramSize != NULL)
        *paramSize = f->sizes[paramIndex];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuFuncIsLoaded(CUfunctionLoadingState *state, CUfunction function)
{
    VGPU_CHECK_INIT();
    if (state == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_function_from(function) == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *state = CU_FUNCTION_LOADING_STATE_LOADED;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuFuncLoad(CUfunction function)
{
    VGPU_CHECK_INIT();
    return vgpu_function_from(function) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---------------------------------------------------------------- occupancy */

static int occupancy(const struct vgpu_function *f, int block_size, size_t dynamic_smem)
{
    struct vgpu_device *d = vgpu_device(f->module->ctx->device);
    if (d == NULL || block_size <= 0)
        return 0;
    const int32_t *a = d->attr;
    int warp = a[CU_DEVICE_ATTRIBUTE_WARP_SIZE] > 0 ? a[CU_DEVICE_ATTRIBUTE_WARP_SIZE] : 32;
    int warps = (block_size + warp - 1) / warp;
    int by_threads = a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR] / (warps * warp);
    int blocks = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR];
    if (by_threads < blocks)
        blocks = by_threads;
    if (f->num_regs > 0) {
        int by_regs = a[CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR] / (f->num_regs * warps * warp);
        if (by_regs < blocks)
            blocks = by_regs;
    }
    size_t smem = (size_t)f->shared_size + dynamic_smem + (size_t)a[CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK];
    if (smem > 0) {
        int by_smem = (int)((size_t)a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR] / smem);
        if (by_smem < blocks)
            blocks = by_smem;
    }
    return blocks > 0 ? blocks : 0;
}

VGPU_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                                       size_t dynamicSMemSize, unsigned int flags)
{
    VGPU_CHECK_INIT();
    (void)flags;
    struct vgpu_function *f = vgpu_function_from(func);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (numBlocks == NULL || blockSize <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    *numBlocks = blockSize > f->max_threads ? 0 : occupancy(f, blockSize, dynamicSMemSize);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize,
                                                             size_t dynamicSMemSize)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

VGPU_API CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                            CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                            size_t dynamicSMemSize, int blockSizeLimit,
                                                            unsigned int flags)
{
    VGPU_CHECK_INIT();
    (void)flags;
    struct vgpu_function *f = vgpu_function_from(func);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (minGridSize == NULL || blockSize == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_device *d = vgpu_device(f->module->ctx->device);
    int limit = f->max_threads;
    if (blockSizeLimit > 0 && blockSizeLimit < limit)
        limit = blockSizeLimit;
    int best_size = 0, best_threads = -1, best_blocks = 0;
    for (int bs = limit - limit % 32; bs >= 32; bs -= 32) {
        size_t smem = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(bs) : dynamicSMemSize;
        int blocks = occupancy(f, bs, smem);
        if (blocks * bs > best_threads) {
            best_threads = blocks * bs;
            best_size = bs;
            best_blocks = blocks;
        }
    }
    if (best_size == 0)
        best_size = limit;
    *blockSize = best_size;
    *minGridSize = best_blocks * (d ? d->attr[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] : 1);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                   CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
                                                   int blockSizeLimit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
                                                     dynamicSMemSize, blockSizeLimit, 0);
}

VGPU_API CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks,
                                                          int blockSize)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(func);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (dynamicSmemSize == NULL || numBlocks <= 0 || blockSize <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_device *d = vgpu_device(f->module->ctx->device);
    const int32_t *a = d->attr;
    long per_block = a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR] / numBlocks -
                     a[CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK] - f->shared_size;
    long optin = a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN] - f->shared_size;
    if (per_block > optin)
        per_block = optin;
    *dynamicSmemSize = per_block > 0 ? (size_t)per_block : 0;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
    VGPU_CHECK_INIT();
    if (clusterSize == NULL || config == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_function_from(func) == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *clusterSize = 8; /* the portable cluster size limit on Hopper */
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *f = vgpu_function_from(func);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (numClusters == NULL || config == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned cluster = 1;
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
            cluster = config->attrs[i].value.clusterDim.x * config->attrs[i].value.clusterDim.y * config->attrs[i].value.clusterDim.z;
    int per_sm = occupancy(f, (int)(config->blockDimX * config->blockDimY * config->blockDimZ), config->sharedMemBytes);
    struct vgpu_device *d = vgpu_device(f->module->ctx->device);
    *numClusters = cluster ? per_sm * d->attr[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] / (int)cluster : 0;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- launches */

/*
 * Packs `void **kernelParams` (or takes the buffer of the `extra` form) into one parameter block
 * laid out as the function's image says. *params is malloc'd; the caller frees it.
 */
CUresult vgpu_pack_params(struct vgpu_function *f, void **kernelParams, void **extra, uint8_t **out, size_t *out_size)
{
    size_t size = f->param_buffer_size;
    uint8_t *params;
    if (extra != NULL) {
        void *buffer = NULL;
        size_t *buffer_size = NULL;
        for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                buffer = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
                buffer_size = extra[i + 1];
            else
                return CUDA_ERROR_INVALID_VALUE;
        }
        if (buffer == NULL || buffer_size == NULL || kernelParams != NULL || *buffer_size < f->param_buffer_size)
            return CUDA_ERROR_INVALID_VALUE;
        if ((params = malloc(*buffer_size + 1)) == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(params, buffer, *buffer_size);
        size = *buffer_size;
    } else {
        if (f->param_count > 0 && kernelParams == NULL)
            return CUDA_ERROR_INVALID_VALUE;
        if ((params = calloc(1, size + 1)) == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
        for (uint32_t i = 0; i < f->param_count; i++) {
            if (kernelParams[i] == NULL || f->offsets[i] + f->sizes[i] > size) {
                free(params);
                return CUDA_ERROR_INVALID_VALUE;
            }
            memcpy(params + f->offsets[i], kernelParams[i], f->sizes[i]);
        }
    }
    *out = params;
    *out_size = size;
    return CUDA_SUCCESS;
}

int vgpu_function_param_layout(struct vgpu_function *f, uint32_t *count, const uint32_t **offsets)
{
    *count = f->param_count;
    *offsets = f->offsets;
    return 0;
}

/* Posts a packed launch: no round trip. */
CUresult vgpu_launch_post(struct vgpu_function *f, const unsigned grid[3], const unsigned block[3], unsigned smem,
                          uint64_t stream, const void *params, size_t size)
{
    struct vgpu_launch_req req = {.function = f->remote, .stream = stream, .grid_x = grid[0], .grid_y = grid[1],
                                  .grid_z = grid[2], .block_x = block[0], .block_y = block[1], .block_z = block[2],
                                  .shared_mem = smem};
    return vgpu_post(VGPU_OP_LAUNCH, &req, sizeof req, params, size);
}

struct vgpu_graph *vgpu_capturing(CUstream s);
CUresult vgpu_graph_add_kernel(struct vgpu_graph *g, struct vgpu_function *f, const unsigned grid[3],
                               const unsigned block[3], unsigned smem, const void *params, size_t size);

static CUresult launch(struct vgpu_function *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, unsigned smem, CUstream hStream, void **kernelParams, void **extra)
{
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if ((unsigned long)bx * by * bz > (unsigned long)f->max_threads)
        return CUDA_ERROR_INVALID_VALUE;
    /* Checked here, as the driver does, not left to the service: a launch is asynchronous, so a
       refusal there would only surface at the next synchronizing call. */
    const struct vgpu_device *d = vgpu_device(f->module->ctx->device);
    if (d != NULL) {
        const int32_t *a = d->attr;
        int32_t dynamic_limit = f->max_dynamic_shared > 0 ? f->max_dynamic_shared
                                                          : a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK] - f->shared_size;
        if (bx > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X] || by > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y] ||
            bz > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z] || gx > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X] ||
            gy > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y] || gz > (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z] ||
            (int64_t)smem > (int64_t)dynamic_limit)
            return CUDA_ERROR_INVALID_VALUE;
    }
    uint64_t stream;
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    if (rc != CUDA_SUCCESS)
        return rc;
    const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    /* The common case packs on the stack: launches are the hot path. */
    uint8_t stack[1024];
    if (extra == NULL && f->param_buffer_size <= sizeof stack) {
        if (f->param_count > 0 && kernelParams == NULL)
            return CUDA_ERROR_INVALID_VALUE;
        memset(stack, 0, f->param_buffer_size);
        for (uint32_t i = 0; i < f->param_count; i++) {
            if (kernelParams[i] == NULL || f->offsets[i] + f->sizes[i] > f->param_buffer_size)
                return CUDA_ERROR_INVALID_VALUE;
            memcpy(stack + f->offsets[i], kernelParams[i], f->sizes[i]);
        }
        struct vgpu_graph *g = vgpu_capturing(hStream);
        return g != NULL ? vgpu_graph_add_kernel(g, f, grid, block, smem, stack, f->param_buffer_size)
                         : vgpu_launch_post(f, grid, block, smem, stream, stack, f->param_buffer_size);
    }
    uint8_t *params;
    size_t size;
    if ((rc = vgpu_pack_params(f, kernelParams, extra, &params, &size)) != CUDA_SUCCESS)
        return rc;
    struct vgpu_graph *g = vgpu_capturing(hStream);
    rc = g != NULL ? vgpu_graph_add_kernel(g, f, grid, block, smem, params, size)
                   : vgpu_launch_post(f, grid, block, smem, stream, params, size);
    free(params);
    return rc;
}

VGPU_API CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                 unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                 unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
{
    VGPU_CHECK_INIT();
    struct vgpu_function *fn = vgpu_function_from(f);
    if (fn == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return launch(fn, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                  kernelParams, extra);
}

VGPU_API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    VGPU_CHECK_INIT();
    if (config == NULL || (config->numAttrs > 0 && config->attrs == NULL))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_function *fn = vgpu_function_from(f);
    if (fn == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    /* Attributes (clusters, programmatic serialization, priorities) tune scheduling, not results. */
    return launch(fn, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX, config->blockDimY,
                  config->blockDimZ, config->sharedMemBytes, config->hStream, kernelParams, extra);
}

VGPU_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                            unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                            unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                            void **kernelParams)
{
    return cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                          kernelParams, NULL);
}
