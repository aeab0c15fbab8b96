/*
 * vgpu-demo: a plain CUDA driver-API program, built with gcc and linked with -lcuda. It finds
 * our libcuda.so.1 like any installed library, runs SAXPY from PTX on the vgpu device and checks
 * the result. On the mock backend the PTX engine executes it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vgpu_cuda.h"

/* The driver API this program uses, declared as any application's cuda.h would. */
CUresult cuInit(unsigned int flags);
CUresult cuDriverGetVersion(int *version);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGet(CUdevice *device, int ordinal);
CUresult cuDeviceGetName(char *name, int len, CUdevice dev);
CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev);
CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev);
CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev);
CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
CUresult cuCtxDestroy_v2(CUcontext ctx);
CUresult cuCtxSynchronize(void);
CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
CUresult cuMemFree_v2(CUdeviceptr dptr);
CUresult cuMemGetInfo_v2(size_t *free, size_t *total);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n);
CUresult cuModuleLoadData(CUmodule *module, const void *image);
CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name);
CUresult cuModuleUnload(CUmodule hmod);
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, CUstream stream, void **params, void **extra);
CUresult cuGetErrorName(CUresult error, const char **str);

static const char saxpy_ptx[] =
    ".version 8.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry vgpu_saxpy(.param .u32 n, .param .f32 a, .param .u64 x, .param .u64 y)\n{\n"
    "  .reg .pred %p;\n  .reg .b32 %r<5>;\n  .reg .f32 %f<4>;\n  .reg .b64 %rd<8>;\n"
    "  ld.param.u32 %r1, [n];\n  ld.param.f32 %f1, [a];\n  ld.param.u64 %rd1, [x];\n  ld.param.u64 %rd2, [y];\n"
    "  mov.u32 %r2, %ctaid.x;\n  mov.u32 %r3, %ntid.x;\n  mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r2, %r2, %r3, %r4;\n  setp.ge.u32 %p, %r2, %r1;\n  @%p bra DONE;\n"
    "  cvta.to.global.u64 %rd3, %rd1;\n  cvta.to.global.u64 %rd4, %rd2;\n  mul.wide.u32 %rd5, %r2, 4;\n"
    "  add.s64 %rd6, %rd3, %rd5;\n  add.s64 %rd7, %rd4, %rd5;\n"
    "  ld.global.f32 %f2, [%rd6];\n  ld.global.f32 %f3, [%rd7];\n  fma.rn.f32 %f3, %f1, %f2, %f3;\n"
    "  st.global.f32 [%rd7], %f3;\nDONE:\n  ret;\n}\n";

static int check(CUresult rc, const char *what)
{
    if (rc == CUDA_SUCCESS)
        return 0;
    const char *name = "?";
    cuGetErrorName(rc, &name);
    fprintf(stderr, "vgpu-demo: %s failed: %s (%d)\n", what, name, rc);
    return 1;
}

#define TRY(call) do { if (check((call), #call)) return 1; } while (0)

int main(void)
{
    int version, count, cc_major, cc_minor, sms;
    CUdevice dev;
    char name[256], bus[32];
    size_t total, free_mem;
    TRY(cuInit(0));
    TRY(cuDriverGetVersion(&version));
    TRY(cuDeviceGetCount(&count));
    TRY(cuDeviceGet(&dev, 0));
    TRY(cuDeviceGetName(name, sizeof name, dev));
    TRY(cuDeviceTotalMem_v2(&total, dev));
    TRY(cuDeviceGetAttribute(&cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    TRY(cuDeviceGetAttribute(&cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    TRY(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
    TRY(cuDeviceGetPCIBusId(bus, sizeof bus, dev));
    printf("CUDA driver %d.%d, %d device(s)\n", version / 1000, version % 1000 / 10, count);
    printf("device 0: %s, compute capability %d.%d, %d SMs, %zu MiB, PCI %s\n", name, cc_major, cc_minor, sms,
           total >> 20, bus);

    CUcontext ctx;
    TRY(cuCtxCreate_v2(&ctx, 0, dev));
    TRY(cuMemGetInfo_v2(&free_mem, &total));
    printf("memory: %zu MiB free of %zu MiB\n", free_mem >> 20, total >> 20);

    unsigned n = 1 << 20;
    float a = 2.5f;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (unsigned i = 0; i < n; i++) {
        x[i] = (float)i;
        y[i] = 1.0f;
    }
    CUdeviceptr dx, dy;
    TRY(cuMemAlloc_v2(&dx, n * sizeof *x));
    TRY(cuMemAlloc_v2(&dy, n * sizeof *y));
    TRY(cuMemcpyHtoD_v2(dx, x, n * sizeof *x));
    TRY(cuMemcpyHtoD_v2(dy, y, n * sizeof *y));

    CUmodule module;
    CUfunction saxpy;
    TRY(cuModuleLoadData(&module, saxpy_ptx));
    TRY(cuModuleGetFunction(&saxpy, module, "vgpu_saxpy"));
    void *params[] = {&n, &a, &dx, &dy};
    TRY(cuLaunchKernel(saxpy, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    TRY(cuCtxSynchronize());
    TRY(cuMemcpyDtoH_v2(y, dy, n * sizeof *y));

    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++)
        if (fabsf(y[i] - (a * (float)i + 1.0f)) > 1e-3f * (a * (float)i + 1.0f))
            bad++;
    printf("saxpy on %u floats: y[1] = %.1f, y[%u] = %.1f, %s\n", n, y[1], n - 1, y[n - 1],
           bad == 0 ? "all results correct" : "WRONG RESULTS");
    TRY(cuModuleUnload(module));
    TRY(cuMemFree_v2(dx));
    TRY(cuMemFree_v2(dy));
    TRY(cuCtxDestroy_v2(ctx));
    free(x);
    free(y);
    printf(bad == 0 ? "PASS\n" : "FAIL\n");
    return bad == 0 ? 0 : 1;
}
