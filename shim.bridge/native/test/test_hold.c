/*
 * Holds device memory and keeps copying until killed: the harness kills it with SIGKILL mid-copy
 * and checks that the service released everything. Prints "holding <bytes>" once ready (the sum
 * over all devices).
 *
 *   test_hold [MiB[@device] ...]   default 1024 MiB on device 0; each argument is one allocation,
 *                                  in a context of its own on that device
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_api.h"

#define MAX_HOLDS 8

int main(int argc, char **argv)
{
    int holds = argc > 1 ? argc - 1 : 1;
    if (holds > MAX_HOLDS)
        return 2;
    CUcontext ctx[MAX_HOLDS];
    CUdeviceptr ptr[MAX_HOLDS];
    size_t size[MAX_HOLDS], total = 0;
    if (cuInit(0))
        return 1;
    for (int i = 0; i < holds; i++) {
        const char *arg = argc > 1 ? argv[i + 1] : "1024";
        const char *at = strchr(arg, '@');
        CUdevice dev;
        size[i] = strtoull(arg, NULL, 10) << 20;
        if (cuDeviceGet(&dev, at ? atoi(at + 1) : 0) || cuCtxCreate_v2(&ctx[i], 0, dev) || cuMemAlloc_v2(&ptr[i], size[i]))
            return 1;
        total += size[i];
    }
    /* The copies go to the first allocation: its context must be current again. */
    if (cuCtxSetCurrent(ctx[0]))
        return 1;
    size_t chunk = 64u << 20;
    if (chunk > size[0])
        chunk = size[0];
    char *buf = malloc(chunk);
    memset(buf, 0x5a, chunk);
    printf("holding %zu\n", total);
    fflush(stdout);
    /* "copying" after the first copy lands, so a harness can kill the service mid-copy on purpose. */
    for (int announced = 0;;)
        for (size_t off = 0; off + chunk <= size[0]; off += chunk) {
            if (cuMemcpyHtoD_v2(ptr[0] + off, buf, chunk) != CUDA_SUCCESS)
                return 2;
            if (!announced) {
                announced = 1;
                printf("copying\n");
                fflush(stdout);
            }
        }
}
