/*
 * Holds device memory and keeps copying until killed: the harness kills it with SIGKILL mid-copy
 * and checks that the service released everything. Prints "holding <bytes>" once ready.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_api.h"

int main(int argc, char **argv)
{
    size_t bytes = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) << 20;
    CUcontext ctx;
    CUdeviceptr d;
    if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0) || cuMemAlloc_v2(&d, bytes))
        return 1;
    size_t chunk = 64u << 20;
    char *buf = malloc(chunk);
    memset(buf, 0x5a, chunk);
    printf("holding %zu\n", bytes);
    fflush(stdout);
    for (;;)
        for (size_t off = 0; off + chunk <= bytes; off += chunk)
            if (cuMemcpyHtoD_v2(d + off, buf, chunk) != CUDA_SUCCESS)
                return 2;
}
