/*
 * After teardown the driver answers CUDA_ERROR_DEINITIALIZED, as NVIDIA's does for calls made
 * while a process exits. The shim's teardown is its library destructor (driver.c vgpu_unload);
 * late_teardown.c (libvgpu_late.so) calls the driver after it and decides the exit status.
 */
#include <stdio.h>

#include "check.h"
#include "cuda_api.h"

void vgpu_late_expect(int main_ok);

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUdeviceptr d;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, 4096));
    vgpu_late_expect(check_done("deinit") == 0);
    fflush(stdout);
    /* Not 0: only the handler that runs after libcuda's teardown can make this process succeed. */
    return 3;
}
