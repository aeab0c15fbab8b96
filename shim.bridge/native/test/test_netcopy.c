/*
 * Copies through the driver until a copy fails: a device allocation of the given size, filled
 * with cuMemcpyHtoD and read back with cuMemcpyDtoH, each round with other bytes, checked byte by
 * byte. For the network-fault tests of the remote backend, which cut the link under it.
 *
 *   test_netcopy MiB [rounds]    rounds 0 (default): until a copy fails
 *
 * Prints "ready" once the allocation is made, "htod <round>" and "dtoh <round>" as each copy
 * starts (so a harness can cut the link while it runs), "ok <round>" after each round that read back what
 * it wrote; a failed call prints "FAIL <call> <CUresult> <name> after <ms> ms" (the time that call
 * took) and exits 3; a round that reads back other bytes exits 4; all rounds done exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_api.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int failed(const char *call, CUresult rc, double t0)
{
    const char *name = NULL;
    if (cuGetErrorName(rc, &name) != CUDA_SUCCESS)
        name = "?";
    printf("FAIL %s %d %s after %.0f ms\n", call, (int)rc, name, now_ms() - t0);
    fflush(stdout);
    return 3;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    size_t size = strtoull(argv[1], NULL, 10) << 20;
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    CUcontext ctx;
    CUdeviceptr d;
    CUresult rc;
    double t0 = now_ms();
    if ((rc = cuInit(0)) != CUDA_SUCCESS)
        return failed("cuInit", rc, t0);
    if ((rc = cuCtxCreate_v2(&ctx, 0, 0)) != CUDA_SUCCESS)
        return failed("cuCtxCreate", rc, t0);
    if ((rc = cuMemAlloc_v2(&d, size)) != CUDA_SUCCESS)
        return failed("cuMemAlloc", rc, t0);
    unsigned char *out = malloc(size), *in = malloc(size);
    if (!out || !in)
        return 2;
    printf("ready\n");
    fflush(stdout);
    for (long r = 1; rounds == 0 || r <= rounds; r++) {
        for (size_t i = 0; i < size; i++)
            out[i] = (unsigned char)(i * 31 + r * 7 + (i >> 12));
        memset(in, 0, size);
        printf("htod %ld\n", r);
        fflush(stdout);
        t0 = now_ms();
        if ((rc = cuMemcpyHtoD_v2(d, out, size)) != CUDA_SUCCESS)
            return failed("cuMemcpyHtoD", rc, t0);
        printf("dtoh %ld\n", r);
        fflush(stdout);
        t0 = now_ms();
        if ((rc = cuMemcpyDtoH_v2(in, d, size)) != CUDA_SUCCESS)
            return failed("cuMemcpyDtoH", rc, t0);
        if (memcmp(in, out, size) != 0) {
            printf("MISMATCH in round %ld\n", r);
            return 4;
        }
        printf("ok %ld\n", r);
        fflush(stdout);
    }
    printf("done\n");
    return 0;
}
