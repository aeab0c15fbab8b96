/*
 * For test_deinit: code that runs after libcuda.so.1's destructor, the shim's teardown.
 *
 * This library depends on libcuda, so the loader finalises it first; its destructor registers an
 * on_exit handler, which glibc runs once the loader's finalisation pass returns, after libcuda's
 * destructor. (An atexit handler would be tied to this library and run with its own finalisation,
 * and a handler registered by the executable's destructor runs before the loader's pass.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cuda_api.h"

static int expected_ok;

void vgpu_late_expect(int main_ok);

/* The exit status of the whole program: 0 only if main passed and every call here was refused. */
void vgpu_late_expect(int main_ok)
{
    expected_ok = main_ok;
}

static void after_teardown(int status, void *arg)
{
    (void)status;
    (void)arg;
    int count = -1;
    CUdeviceptr d = 0;
    CUcontext c = NULL;
    CUresult init = cuInit(0);
    CUresult get = cuDeviceGetCount(&count);
    CUresult alloc = cuMemAlloc_v2(&d, 16);
    CUresult cur = cuCtxGetCurrent(&c);
    dprintf(1, "after teardown: cuInit %d, cuDeviceGetCount %d, cuMemAlloc %d, cuCtxGetCurrent %d\n", init, get, alloc,
            cur);
    int ok = init == CUDA_ERROR_DEINITIALIZED && get == CUDA_ERROR_DEINITIALIZED && alloc == CUDA_ERROR_DEINITIALIZED &&
             cur == CUDA_ERROR_DEINITIALIZED;
    _exit(expected_ok && ok ? 0 : 1);
}

__attribute__((destructor)) static void before_libcuda_teardown(void)
{
    /* libcuda is still up here. */
    int count = -1;
    CUresult rc = cuDeviceGetCount(&count);
    dprintf(1, "before teardown: cuDeviceGetCount %d, count %d\n", rc, count);
    expected_ok &= rc == CUDA_SUCCESS && count == 1;
    if (on_exit(after_teardown, NULL) != 0)
        _exit(4);
}
