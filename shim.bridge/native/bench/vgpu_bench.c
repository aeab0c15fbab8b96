/*
 * vgpu-bench: the shim's costs against baselines measured in the same run.
 *
 *   1. synchronous no-op round trip (cuCtxSynchronize through shim -> service -> mock)
 *      against a bare C Unix-socket ping-pong between two threads;
 *   2. asynchronous launch enqueue cost per call (cuLaunchKernel of a recorded no-op kernel);
 *   3. 256 MiB host-to-device and device-to-host bandwidth against a single-thread memcpy.
 *
 * Run it against a running service (VGPU_SOCKET); `vgpu bench` starts a private one.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../test/cuda_api.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(p * (n - 1))];
}

/* ---- baseline 1: bare Unix-socket ping-pong, 16-byte messages like a frame header */

static int spinning;

/* Reads 16 bytes, either blocking in the kernel or polling without blocking (as the shim and the bridge do). */
static int get16(int fd, char *buf)
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = recv(fd, buf + got, 16 - got, spinning ? MSG_DONTWAIT : MSG_WAITALL);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || !spinning)
            return -1;
    }
    return 0;
}

static void *echo(void *arg)
{
    int fd = *(int *)arg;
    char buf[16];
    while (get16(fd, buf) == 0)
        if (send(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
            break;
    return NULL;
}

static void socket_pingpong(int n, double *samples, int spin)
{
    spinning = spin;
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pthread_t t;
    pthread_create(&t, NULL, echo, &sv[1]);
    char buf[16] = {0};
    for (int i = 0; i < n + 1000; i++) {
        double t0 = now_us();
        if (send(sv[0], buf, sizeof buf, 0) != (ssize_t)sizeof buf || get16(sv[0], buf) != 0)
            break;
        if (i >= 1000)
            samples[i - 1000] = now_us() - t0;
    }
    close(sv[0]);
    pthread_join(t, NULL);
    close(sv[1]);
}

static const char noop_ptx[] = ".version 8.0\n.target sm_70\n.address_size 64\n"
                               ".visible .entry vgpu_bench_noop(.param .u64 p)\n{\n  ret;\n}\n";

#define TRY(call) do { CUresult rc_ = (call); if (rc_ != CUDA_SUCCESS) { fprintf(stderr, "%s failed: %d\n", #call, rc_); return 1; } } while (0)

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    double *a = malloc(sizeof(double) * (size_t)n), *b = malloc(sizeof(double) * (size_t)n);

    socket_pingpong(n, a, 0);
    double block50 = percentile(a, n, 0.50), block99 = percentile(a, n, 0.99);
    socket_pingpong(n, a, 1);
    double base50 = percentile(a, n, 0.50), base99 = percentile(a, n, 0.99);

    CUcontext ctx;
    TRY(cuInit(0));
    TRY(cuCtxCreate_v2(&ctx, 0, 0));
    for (int i = 0; i < 1000; i++)
        TRY(cuCtxSynchronize());
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        TRY(cuCtxSynchronize());
        b[i] = now_us() - t0;
    }
    double shim50 = percentile(b, n, 0.50), shim99 = percentile(b, n, 0.99);

    CUmodule mod;
    CUfunction f;
    CUdeviceptr p = 0;
    TRY(cuModuleLoadData(&mod, noop_ptx));
    TRY(cuModuleGetFunction(&f, mod, "vgpu_bench_noop"));
    void *params[] = {&p};
    int launches = n * 5;
    /* Steady state, as in a long decode loop: the service's launch path is compiled by its JIT
       after a few thousand calls, which a shorter warm-up would leave inside the measurement. */
    for (int i = 0; i < launches / 2; i++)
        TRY(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    TRY(cuCtxSynchronize());
    double t0 = now_us();
    for (int i = 0; i < launches; i++)
        TRY(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    double t1 = now_us();
    TRY(cuCtxSynchronize());
    double t2 = now_us();
    double enqueue = (t1 - t0) / launches, drained = (t2 - t0) / launches;

    size_t size = 256u << 20;
    char *host = malloc(size), *copy = malloc(size);
    memset(host, 1, size);
    memset(copy, 2, size);
    CUdeviceptr d;
    TRY(cuMemAlloc_v2(&d, size));
    TRY(cuMemcpyHtoD_v2(d, host, size)); /* materialises the device pages */
    double best_memcpy = 1e30, best_h2d = 1e30, best_d2h = 1e30;
    for (int r = 0; r < 3; r++) {
        double s = now_us();
        memcpy(copy, host, size);
        double m = now_us() - s;
        s = now_us();
        TRY(cuMemcpyHtoD_v2(d, host, size));
        double h = now_us() - s;
        s = now_us();
        TRY(cuMemcpyDtoH_v2(copy, d, size));
        double g = now_us() - s;
        best_memcpy = m < best_memcpy ? m : best_memcpy;
        best_h2d = h < best_h2d ? h : best_h2d;
        best_d2h = g < best_d2h ? g : best_d2h;
    }
    double gb = size / 1e9;
    printf("vgpu-bench (%d samples)\n", n);
    printf("sync no-op round trip   shim p50 %7.2f us  p99 %7.2f us\n", shim50, shim99);
    printf("  bare C socket, polling  p50 %7.2f us  p99 %7.2f us | shim ratio p50 %.2fx  p99 %.2fx\n", base50, base99,
           shim50 / base50, shim99 / base99);
    printf("  bare C socket, blocking p50 %7.2f us  p99 %7.2f us | shim ratio p50 %.2fx  p99 %.2fx\n", block50, block99,
           shim50 / block50, shim99 / block99);
    printf("async launch            enqueue %6.3f us/call, %.3f us/call including the drain (%d launches) | ratio to bare p50 %.3f\n",
           enqueue, drained, launches, enqueue / base50);
    printf("256 MiB host->device    %6.2f GB/s | memcpy %6.2f GB/s | ratio %.2f\n", gb / (best_h2d / 1e6),
           gb / (best_memcpy / 1e6), best_memcpy / best_h2d);
    printf("256 MiB device->host    %6.2f GB/s | memcpy %6.2f GB/s | ratio %.2f\n", gb / (best_d2h / 1e6),
           gb / (best_memcpy / 1e6), best_memcpy / best_d2h);
    TRY(cuMemFree_v2(d));
    TRY(cuCtxDestroy_v2(ctx));
    return 0;
}
