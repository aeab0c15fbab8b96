/*
 * Keeps the service busy with one valid, long request: a kernel that spins on %globaltimer for
 * the given number of seconds (default 120), launched and then waited for with cuCtxSynchronize.
 * Prints "spinning" once the launch is on its way; the harness checks that the management plane
 * and other clients are served meanwhile, and that killing this process stops the kernel.
 *
 *   test_busy [seconds]
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_api.h"

static const char spin_ptx[] =
    ".version 8.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry spin(.param .u64 ns)\n{\n"
    "  .reg .pred %p;\n  .reg .b64 %rd<5>;\n"
    "  ld.param.u64 %rd1, [ns];\n  mov.u64 %rd2, %globaltimer;\n"
    "LOOP:\n  mov.u64 %rd3, %globaltimer;\n  sub.u64 %rd4, %rd3, %rd2;\n"
    "  setp.lt.u64 %p, %rd4, %rd1;\n  @%p bra LOOP;\n  ret;\n}\n";

int main(int argc, char **argv)
{
    unsigned long long ns = (argc > 1 ? strtoull(argv[1], NULL, 10) : 120) * 1000000000ull;
    CUcontext ctx;
    CUmodule m;
    CUfunction f;
    if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0) || cuModuleLoadData(&m, spin_ptx) || cuModuleGetFunction(&f, m, "spin"))
        return 2;
    void *params[] = {&ns};
    if (cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL))
        return 3;
    printf("spinning\n");
    fflush(stdout);
    CUresult rc = cuCtxSynchronize();
    printf("done %d\n", (int)rc);
    return rc == CUDA_SUCCESS ? 0 : 1;
}
