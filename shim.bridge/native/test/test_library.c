/*
 * Context-independent libraries as cudart 12+ and cuBLAS use them, called directly: a PTX image
 * loaded with cuLibraryLoadData, its kernel as a CUkernel and (cuKernelGetFunction) as a
 * CUfunction, both launched and executed from the PTX of vgpu_iota, and its global
 * vgpu_lib_table with its address and size, read and written in two contexts.
 *
 * usage: test_library NONCE [steps]
 * NONCE goes into a PTX comment, so each run of the Java test has an image the service has never
 * seen. With "steps", the program stops at each step ("step <name>" on stdout) until it reads a
 * line on stdin: ShimIT reads the service's image-cache counters there, which is how it sees that
 * loading the library sends nothing and the first lookup uploads it once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

/* Not in cuda_api.h: only this test calls the library API directly. */
CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                           unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions);
CUresult cuLibraryUnload(CUlibrary library);
CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name);
CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library);
CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name);
CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel);
CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel);
CUresult cuKernelGetName(const char **name, CUkernel hfunc);

static const char *NAME = "test_library";
static int stepping;

/* vgpu_iota of cuda_api.h plus an initialised global, so a library has both kinds of symbol. */
static const char ptx_body[] =
    ".visible .global .align 4 .u32 vgpu_lib_table[5] = {11, 22, 33, 44, 55};\n"
    ".visible .entry vgpu_iota(.param .u64 out, .param .u32 start, .param .u32 n)\n{\n"
    "  .reg .pred %p;\n  .reg .b32 %r<6>;\n  .reg .b64 %rd<4>;\n"
    "  ld.param.u64 %rd1, [out];\n  ld.param.u32 %r1, [start];\n  ld.param.u32 %r2, [n];\n"
    "  mov.u32 %r3, %ctaid.x;\n  mov.u32 %r4, %ntid.x;\n  mov.u32 %r5, %tid.x;\n"
    "  mad.lo.s32 %r3, %r3, %r4, %r5;\n  setp.ge.s32 %p, %r3, %r2;\n  @%p bra DONE;\n"
    "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.s32 %rd3, %r3, 4;\n  add.s64 %rd2, %rd2, %rd3;\n"
    "  add.s32 %r1, %r1, %r3;\n  st.global.u32 [%rd2], %r1;\nDONE:\n  ret;\n}\n";

static void step(const char *name)
{
    if (!stepping)
        return;
    printf("step %s\n", name);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) {
        fprintf(stderr, "%s: stdin closed at step %s\n", NAME, name);
        exit(2);
    }
}

enum { N = 3000 };
static int host[N];

/* Launches f (a CUfunction or a CUkernel) as iota(out, start, N) and checks every element. */
static void launch_iota(CUfunction f, CUdeviceptr out, int start)
{
    int n = N;
    void *params[] = {&out, &start, &n};
    memset(host, 0, sizeof host);
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuCtxSynchronize());
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        if (host[i] != start + i && wrong++ < 3)
            fprintf(stderr, "FAIL iota from %d: [%d] = %d\n", start, i, host[i]);
    CHECK_EQ(0, wrong);
}

static void check_table(CUdeviceptr table, const unsigned *want, const char *what)
{
    unsigned got[5] = {0};
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(got, table, sizeof got));
    for (int i = 0; i < 5; i++) {
        check_count++;
        if (got[i] != want[i]) {
            check_failures++;
            fprintf(stderr, "FAIL %s: vgpu_lib_table[%d] = %u, expected %u\n", what, i, got[i], want[i]);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NONCE [steps]\n", argv[0]);
        return 2;
    }
    stepping = argc > 2 && strcmp(argv[2], "steps") == 0;
    static const unsigned initial[5] = {11, 22, 33, 44, 55};
    static const unsigned written[5] = {7, 70, 700, 7000, 70000};

    /* The caller's copy of the image is gone right after loading: the shim must keep its own. */
    char header[128];
    int hn = snprintf(header, sizeof header, ".version 8.0\n.target sm_70\n.address_size 64\n// nonce %s\n", argv[1]);
    size_t size = (size_t)hn + sizeof ptx_body;
    char *image = malloc(size);
    memcpy(image, header, (size_t)hn);
    memcpy(image + hn, ptx_body, sizeof ptx_body);
    printf("image bytes=%zu\n", size);

    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext a, b;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&a, 0, 0));
    CUdeviceptr out;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out, sizeof host));
    step("start");

    CUlibrary lib;
    CHECK_CU(CUDA_SUCCESS, cuLibraryLoadData(&lib, image, NULL, NULL, 0, NULL, NULL, 0));
    memset(image, 0, size);
    free(image);
    step("loaded");

    /* The first lookup uploads the image into the current context. */
    CUkernel k, k2;
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetKernel(&k, lib, "vgpu_iota"));
    step("kernel");
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetKernel(&k2, lib, "vgpu_iota"));
    CHECK(k == k2);
    CHECK_CU(CUDA_ERROR_NOT_FOUND, cuLibraryGetKernel(&k2, lib, "no_such_kernel"));
    const char *kname = NULL;
    CHECK_CU(CUDA_SUCCESS, cuKernelGetName(&kname, k));
    CHECK_STR("vgpu_iota", kname);
    CUlibrary owner = NULL;
    CHECK_CU(CUDA_SUCCESS, cuKernelGetLibrary(&owner, k));
    CHECK(owner == lib);

    /* The kernel's function in this context is the module's function of that name. */
    CUfunction f = NULL, via_module = NULL;
    CHECK_CU(CUDA_SUCCESS, cuKernelGetFunction(&f, k));
    CHECK(f != NULL && (void *)f != (void *)k);
    CUmodule m;
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetModule(&m, lib));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&via_module, m, "vgpu_iota"));
    CHECK(f == via_module);
    size_t off = 99, psize = 99;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetParamInfo(f, 2, &off, &psize));
    CHECK_EQ(12, off);
    CHECK_EQ(4, psize);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuKernelGetFunction(NULL, k));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuKernelGetFunction(&f, (CUkernel)lib));

    launch_iota(f, out, 7);
    launch_iota((CUfunction)k, out, 1000);

    /* The global: its real address and size, its initial bytes, and what is written to it stays. */
    CUdeviceptr table = 0, table2 = 0, via_module_global = 0;
    size_t bytes = 0, bytes2 = 0;
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetGlobal(&table, &bytes, lib, "vgpu_lib_table"));
    CHECK_EQ(20, bytes);
    CHECK(table != 0 && table % 4 == 0);
    CHECK_CU(CUDA_SUCCESS, cuModuleGetGlobal_v2(&via_module_global, &bytes2, m, "vgpu_lib_table"));
    CHECK(via_module_global == table);
    CHECK_EQ(20, bytes2);
    check_table(table, initial, "context a, as loaded");
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(table, written, sizeof written));
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetGlobal(&table2, NULL, lib, "vgpu_lib_table"));
    CHECK(table2 == table);
    check_table(table2, written, "context a, after writing");
    CHECK_CU(CUDA_ERROR_NOT_FOUND, cuLibraryGetGlobal(&table2, &bytes2, lib, "no_such_global"));
    step("global");

    /* Another context gets its own module (no upload: the service has the image) and globals. */
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&b, 0, 0));
    CUdeviceptr out_b;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out_b, sizeof host));
    CUfunction fb = NULL;
    CHECK_CU(CUDA_SUCCESS, cuKernelGetFunction(&fb, k));
    CHECK(fb != NULL && fb != f);
    launch_iota((CUfunction)k, out_b, -50);
    CUdeviceptr table_b = 0;
    CHECK_CU(CUDA_SUCCESS, cuLibraryGetGlobal(&table_b, &bytes2, lib, "vgpu_lib_table"));
    CHECK(table_b != table);
    CHECK_EQ(20, bytes2);
    check_table(table_b, initial, "context b");
    CUcontext popped = NULL;
    CHECK_CU(CUDA_SUCCESS, cuCtxPopCurrent_v2(&popped));
    CHECK(popped == b);
    check_table(table, written, "context a, after context b loaded");
    step("second-context");

    /* Unloading ends the library and its kernels in every context. */
    CHECK_CU(CUDA_SUCCESS, cuLibraryUnload(lib));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuKernelGetFunction(&f, k));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLibraryGetKernel(&k2, lib, "vgpu_iota"));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLibraryGetGlobal(&table2, &bytes2, lib, "vgpu_lib_table"));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLibraryUnload(lib));

    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(out));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(b));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(a));
    return check_done(NAME);
}
