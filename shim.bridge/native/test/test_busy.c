/*
 * Keeps the service busy with one valid, long request: a kernel that spins on %globaltimer for
 * the given number of seconds (default 120), launched and then waited for with cuCtxSynchronize.
 * Prints "spinning" once the launch is on its way; the kernel's first thread prints
 * "vgpu test_busy: spin kernel running" with device printf (to the service log) when it starts,
 * so a harness sees when the kernel runs instead of guessing. The harness checks that the
 * management plane and other clients are served meanwhile, and that killing this process stops
 * the kernel. Prints "done <CUresult>" when the synchronize returns.
 *
 *   test_busy [seconds]
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_api.h"

static const char spin_ptx[] =
    ".version 8.0\n.target sm_70\n.address_size 64\n"
    ".extern .func (.param .b32 func_retval0) vprintf(.param .b64 vprintf_param_0, .param .b64 vprintf_param_1);\n"
    /* "vgpu test_busy: spin kernel running\n" */
    ".global .align 1 .b8 running[37] = {118, 103, 112, 117, 32, 116, 101, 115, 116, 95, 98, 117, 115, 121, 58, 32, 115, 112,"
    " 105, 110, 32, 107, 101, 114, 110, 101, 108, 32, 114, 117, 110, 110, 105, 110, 103, 10, 0};\n"
    ".visible .entry spin(.param .u64 ns)\n{\n"
    "  .reg .pred %p;\n  .reg .b32 %r<3>;\n  .reg .b64 %rd<8>;\n"
    "  ld.param.u64 %rd1, [ns];\n  mov.u64 %rd2, %globaltimer;\n"
    "  mov.u32 %r1, %tid.x;\n  setp.ne.u32 %p, %r1, 0;\n  @%p bra LOOP;\n"
    "  mov.u64 %rd5, running;\n  cvta.global.u64 %rd6, %rd5;\n  mov.u64 %rd7, 0;\n"
    "  {\n  .param .b64 param0;\n  st.param.b64 [param0+0], %rd6;\n  .param .b64 param1;\n"
    "  st.param.b64 [param1+0], %rd7;\n  .param .b32 retval0;\n"
    "  call.uni (retval0), vprintf, (param0, param1);\n  }\n"
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
