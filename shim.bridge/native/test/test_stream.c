/* Streams and events: ordering across streams, queries, elapsed time, special stream handles. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cuda_api.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Elapsed time between two events with a host busy interval of known length between their
 * records. The start event is recorded (executed) within [t0, t1], the end event within [t2, t3],
 * so the elapsed time lies in [t2 - t1, t3 - t0].
 */
static void elapsed_time_brackets_a_known_interval(CUstream s)
{
    CUevent start, end;
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&start, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&end, 0));
    double t0 = now_ms();
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(start, s));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(start));
    double t1 = now_ms();
    while (now_ms() - t1 < 25.0) {
        /* busy: the interval the events must measure */
    }
    double t2 = now_ms();
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(end, s));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(end));
    double t3 = now_ms();
    float ms = -1;
    CHECK_CU(CUDA_SUCCESS, cuEventElapsedTime(&ms, start, end));
    /* 1 us of slack for float rounding of the milliseconds */
    if (!(ms >= t2 - t1 - 0.001 && ms <= t3 - t0 + 0.001))
        fprintf(stderr, "elapsed %.4f ms, expected within [%.4f, %.4f]\n", ms, t2 - t1, t3 - t0);
    CHECK(ms >= t2 - t1 - 0.001 && ms <= t3 - t0 + 0.001);
    CHECK(ms >= 25.0f);
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(start));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(end));
}

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    int least = 99, greatest = 99;
    CHECK_CU(CUDA_SUCCESS, cuCtxGetStreamPriorityRange(&least, &greatest));
    CHECK_EQ(0, least);
    CHECK_EQ(-5, greatest);

    CUstream a, b;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&a, 1));
    CHECK_CU(CUDA_SUCCESS, cuStreamCreateWithPriority(&b, 0, -3));
    int prio = 0;
    unsigned flags = 0;
    CHECK_CU(CUDA_SUCCESS, cuStreamGetPriority(b, &prio));
    CHECK_EQ(-3, prio);
    CHECK_CU(CUDA_SUCCESS, cuStreamGetFlags(a, &flags));
    CHECK_EQ(1, flags);

    CUevent start, mid, end, untimed;
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&start, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&mid, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&end, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&untimed, 2));
    float ms = -1;
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&ms, start, end));

    /* Stream a fills, stream b waits for it through an event and copies; the result is ordered. */
    size_t n = 4u << 20;
    CUdeviceptr x, y;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&x, n));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&y, n));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(start, a));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(x, 0x01020304, n / 4, a));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(mid, a));
    CHECK_CU(CUDA_SUCCESS, cuStreamWaitEvent(b, mid, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoDAsync_v2(y, x, n, b));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(y, 0xff, 16, b));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(end, b));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(end));
    CHECK_CU(CUDA_SUCCESS, cuEventQuery(end));
    CHECK_CU(CUDA_SUCCESS, cuStreamQuery(a));
    CHECK_CU(CUDA_SUCCESS, cuStreamQuery(b));
    uint32_t words[8];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(words, y, sizeof words));
    CHECK_EQ(0xffffffffu, words[0]);
    CHECK_EQ(0xffffffffu, words[3]);
    CHECK_EQ(0x01020304u, words[4]);
    CHECK_EQ(0x01020304u, words[7]);
    CHECK_CU(CUDA_SUCCESS, cuEventElapsedTime(&ms, start, end));
    CHECK(ms >= 0);
    elapsed_time_brackets_a_known_interval(b);
    elapsed_time_brackets_a_known_interval(NULL);
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(untimed, a));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(untimed));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&ms, start, untimed));

    /* The legacy and per-thread default streams are valid everywhere a stream is. */
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(x, 1, 8, CU_STREAM_LEGACY));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(x, 2, 4, CU_STREAM_PER_THREAD));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(CU_STREAM_PER_THREAD));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(CU_STREAM_LEGACY));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(NULL));
    uint8_t bytes[8];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(bytes, x, 8));
    CHECK_EQ(2, bytes[3]);
    CHECK_EQ(1, bytes[4]);

    /* Destroyed handles are rejected. */
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(a));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamSynchronize(a));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuMemsetD8Async(x, 0, 1, a));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(start));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventQuery(start));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventRecord(start, b));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(b));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(mid));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(end));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(untimed));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("stream");
}
