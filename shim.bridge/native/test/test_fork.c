/* A forked child gets its own session; the parent's handles are void in it; the parent goes on. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cuda_api.h"

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUdeviceptr d;
    char msg[] = "parent data";
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, sizeof msg));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(d, msg, sizeof msg));

    pid_t pid = fork();
    if (pid == 0) {
        /* The child. */
        check_failures = 0;
        CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent(ctx));
        CUcontext cur = (CUcontext)1;
        CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
        CHECK(cur == NULL);
        CHECK_CU(CUDA_SUCCESS, cuInit(0));
        CUcontext mine;
        CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&mine, 0, 0));
        /* The parent's allocation belongs to the parent's session. */
        char buf[sizeof msg];
        CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(buf, d, sizeof buf));
        CUdeviceptr cd;
        char child_msg[] = "child data!";
        CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&cd, sizeof child_msg));
        CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(cd, child_msg, sizeof child_msg));
        CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(buf, cd, sizeof buf));
        CHECK_STR(child_msg, buf);
        int rc = check_done("fork child");
        fflush(stdout);
        _exit(rc);
    }
    int status = -1;
    CHECK_EQ(pid, waitpid(pid, &status, 0));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char back[sizeof msg];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, d, sizeof back));
    CHECK_STR(msg, back);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("fork parent");
}
