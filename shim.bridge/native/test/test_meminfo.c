/* Prints "<free> <total>" of device 0 as a new client sees it. */
#include <stdio.h>

#include "cuda_api.h"

int main(void)
{
    CUcontext ctx;
    size_t free_mem, total;
    if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0) || cuMemGetInfo_v2(&free_mem, &total))
        return 1;
    printf("%zu %zu\n", free_mem, total);
    return cuCtxDestroy_v2(ctx);
}
