// Streams and events through the runtime: work split over two streams and ordered by
// cudaStreamWaitEvent, event timing and its error cases, stream and event queries, the legacy
// default stream and cudaStreamPerThread from two host threads. rt_step (Java:
// io.vgpu.samples.RtStep) is x*mul+add, which does not commute, so any reordering shows.
#include <thread>
#include <vector>

#include "rt_check.h"

static const char *NAME = "rt_streams";

__global__ void rt_step(int *buf, int n, int mul, int add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        buf[i] = buf[i] * mul + add;
    }
}

static const int N = 10007;
static const int BLOCK = 128;
static const int GRID = (N + BLOCK - 1) / BLOCK;

static int mismatches(const char *what, const int *got, const std::vector<int> &in, int mul, int add)
{
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        int want = in[i] * mul + add;
        if (got[i] != want && wrong++ < 5) {
            fprintf(stderr, "FAIL %s[%d] = %d, expected %d\n", what, i, got[i], want);
        }
    }
    return wrong;
}

// Copy in, one step, copy out, all on this thread's per-thread default stream.
static void per_thread_round(const std::vector<int> &in, int mul, int add, int *wrong, int *failures)
{
    int *d = nullptr;
    std::vector<int> out(N, 0);
    *failures = 0;
    if (cudaMalloc(&d, N * sizeof(int)) != cudaSuccess) {
        *failures = 1;
        return;
    }
    *failures += cudaMemcpyAsync(d, in.data(), N * sizeof(int), cudaMemcpyHostToDevice, cudaStreamPerThread) != cudaSuccess;
    rt_step<<<GRID, BLOCK, 0, cudaStreamPerThread>>>(d, N, mul, add);
    *failures += cudaGetLastError() != cudaSuccess;
    *failures += cudaMemcpyAsync(out.data(), d, N * sizeof(int), cudaMemcpyDeviceToHost, cudaStreamPerThread) != cudaSuccess;
    *failures += cudaStreamSynchronize(cudaStreamPerThread) != cudaSuccess;
    *failures += cudaStreamQuery(cudaStreamPerThread) != cudaSuccess;
    *failures += cudaFree(d) != cudaSuccess;
    *wrong = mismatches("per-thread", out.data(), in, mul, add);
}

int main()
{
    std::vector<int> in(N);
    for (int i = 0; i < N; i++) {
        in[i] = i - 5000;
    }
    int *d = nullptr, *out = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&d, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&out, N * sizeof(int)));

    cudaStream_t s1 = nullptr, s2 = nullptr;
    REQUIRE_RT(NAME, cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    REQUIRE_RT(NAME, cudaStreamCreate(&s2));
    unsigned int flags = 1234;
    CHECK_RT(cudaStreamGetFlags(s1, &flags));
    CHECK_EQ(cudaStreamNonBlocking, flags);
    CHECK_RT(cudaStreamGetFlags(s2, &flags));
    CHECK_EQ(cudaStreamDefault, flags);

    cudaEvent_t start = nullptr, handoff = nullptr, done = nullptr, never = nullptr;
    REQUIRE_RT(NAME, cudaEventCreate(&start));
    REQUIRE_RT(NAME, cudaEventCreateWithFlags(&handoff, cudaEventDisableTiming));
    REQUIRE_RT(NAME, cudaEventCreate(&done));
    REQUIRE_RT(NAME, cudaEventCreate(&never));

    // s1: copy in, x*2+1; s2 waits for that, then x*3+5 and copies out.
    CHECK_RT(cudaEventRecord(start, s1));
    CHECK_RT(cudaMemcpyAsync(d, in.data(), N * sizeof(int), cudaMemcpyHostToDevice, s1));
    rt_step<<<GRID, BLOCK, 0, s1>>>(d, N, 2, 1);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaEventRecord(handoff, s1));
    CHECK_RT(cudaStreamWaitEvent(s2, handoff, 0));
    rt_step<<<GRID, BLOCK, 0, s2>>>(d, N, 3, 5);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaMemcpyAsync(out, d, N * sizeof(int), cudaMemcpyDeviceToHost, s2));
    CHECK_RT(cudaEventRecord(done, s2));
    CHECK_RT(cudaEventSynchronize(done));
    std::vector<int> twice(N);
    for (int i = 0; i < N; i++) {
        twice[i] = in[i] * 2 + 1;
    }
    CHECK_EQ(0, mismatches("two streams", out, twice, 3, 5));

    CHECK_RT(cudaEventQuery(done));
    CHECK_RT(cudaEventQuery(handoff));
    CHECK_RT(cudaStreamSynchronize(s1));
    CHECK_RT(cudaStreamSynchronize(s2));
    CHECK_RT(cudaStreamQuery(s1));
    CHECK_RT(cudaStreamQuery(s2));

    float ms = -1.0f;
    CHECK_RT(cudaEventElapsedTime(&ms, start, done));
    CHECK(ms >= 0.0f);
    // Timing needs two timing events that have both been recorded.
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, start, handoff));
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, start, never));
    // A failed call is also the runtime's last error, until cudaGetLastError reads and clears it.
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaGetLastError());
    CHECK_RT(cudaGetLastError());
    // An event that was never recorded has no work to wait for.
    CHECK_RT(cudaEventQuery(never));
    CHECK_RT(cudaEventSynchronize(never));

    // Ten steps queued on one stream come out in order: x -> x*2-1 -> x*3+2 -> ...
    CHECK_RT(cudaMemcpyAsync(d, in.data(), N * sizeof(int), cudaMemcpyHostToDevice, s1));
    std::vector<int> expect(in);
    for (int k = 0; k < 10; k++) {
        int mul = 2 + (k & 1), add = k % 3 - 1;
        rt_step<<<GRID, BLOCK, 0, s1>>>(d, N, mul, add);
        for (int i = 0; i < N; i++) {
            expect[i] = expect[i] * mul + add;
        }
    }
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaMemcpyAsync(out, d, N * sizeof(int), cudaMemcpyDeviceToHost, s1));
    CHECK_RT(cudaStreamSynchronize(s1));
    CHECK_EQ(0, mismatches("ten steps", out, expect, 1, 0));

    // The legacy default stream.
    CHECK_RT(cudaMemcpy(d, in.data(), N * sizeof(int), cudaMemcpyHostToDevice));
    rt_step<<<GRID, BLOCK>>>(d, N, -1, 3);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaStreamSynchronize(0));
    CHECK_RT(cudaMemcpy(out, d, N * sizeof(int), cudaMemcpyDeviceToHost));
    CHECK_EQ(0, mismatches("legacy stream", out, in, -1, 3));

    // cudaStreamPerThread: this thread and another one, each on its own per-thread stream,
    // with the per-thread stream also waiting on an event from s2.
    CHECK_RT(cudaEventRecord(done, s2));
    CHECK_RT(cudaStreamWaitEvent(cudaStreamPerThread, done, 0));
    int wrongMain = -1, failMain = -1, wrongOther = -1, failOther = -1;
    std::thread other(per_thread_round, std::cref(in), 7, -2, &wrongOther, &failOther);
    per_thread_round(in, 5, 11, &wrongMain, &failMain);
    other.join();
    CHECK_EQ(0, failMain);
    CHECK_EQ(0, wrongMain);
    CHECK_EQ(0, failOther);
    CHECK_EQ(0, wrongOther);

    CHECK_RT(cudaEventDestroy(start));
    CHECK_RT(cudaEventDestroy(handoff));
    CHECK_RT(cudaEventDestroy(done));
    CHECK_RT(cudaEventDestroy(never));
    CHECK_RT(cudaStreamDestroy(s1));
    CHECK_RT(cudaStreamDestroy(s2));
    CHECK_RT(cudaFreeHost(out));
    CHECK_RT(cudaFree(d));
    return check_done(NAME);
}
