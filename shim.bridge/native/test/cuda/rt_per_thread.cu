// The per-thread default stream as a program built with `nvcc --default-stream per-thread` sees
// it (mk/cuda-tests.mk builds this file so): stream 0, <<<>>> without a stream and cudaMemcpy all
// mean the calling thread's own stream. cudart reaches the driver's _ptsz/_ptds entry points for
// them. Work on stream 0 is captured into a graph and replayed; then two host threads at once each
// capture and replay their own stream 0 while the other's capture is open. rt_step (Java:
// io.vgpu.samples.RtStep) is x*mul+add, which does not commute, so reordering or mixing shows.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "rt_check.h"

static const char *NAME = "rt_per_thread";

#ifndef CUDA_API_PER_THREAD_DEFAULT_STREAM
#error "build with --default-stream per-thread"
#endif

__global__ void rt_step(int *buf, int n, int mul, int add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        buf[i] = buf[i] * mul + add;
    }
}

static const int N = 4099;
static const int BLOCK = 128;
static const int GRID = (N + BLOCK - 1) / BLOCK;

static unsigned long long stream_id(cudaStream_t s)
{
    unsigned long long id = 0;
    CHECK_RT(cudaStreamGetId(s, &id));
    return id;
}

// Both threads wait here until each has an open capture on its stream 0.
class Rendezvous {
  public:
    void arrive_and_wait()
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (++arrived_ == 2) {
            all_.notify_all();
        }
        all_.wait(lock, [this] { return arrived_ == 2; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable all_;
    int arrived_ = 0;
};

// check.h's counters are not thread-safe: a thread counts its own failures.
struct ThreadResult {
    int failures = 0;
    unsigned long long id = 0;
};

static void expect(ThreadResult *r, bool ok, int mul, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL thread mul=%d: %s\n", mul, what);
        r->failures++;
    }
}

#define T_RT(r, mul, call) expect((r), (call) == cudaSuccess, (mul), #call)

static void thread_round(int mul, int add, Rendezvous *both, ThreadResult *r)
{
    int *d = nullptr, *in = nullptr, *out = nullptr;
    T_RT(r, mul, cudaMalloc(&d, N * sizeof(int)));
    T_RT(r, mul, cudaMallocHost(&in, N * sizeof(int)));
    T_RT(r, mul, cudaMallocHost(&out, N * sizeof(int)));
    if (r->failures > 0) {
        both->arrive_and_wait();
        return;
    }
    T_RT(r, mul, cudaStreamGetId(0, &r->id));
    // Thread-local: the other thread's captures and allocations do not concern this one.
    T_RT(r, mul, cudaStreamBeginCapture(0, cudaStreamCaptureModeThreadLocal));
    T_RT(r, mul, cudaMemcpyAsync(d, in, N * sizeof(int), cudaMemcpyHostToDevice, 0));
    rt_step<<<GRID, BLOCK>>>(d, N, mul, add);
    T_RT(r, mul, cudaGetLastError());
    T_RT(r, mul, cudaMemcpyAsync(out, d, N * sizeof(int), cudaMemcpyDeviceToHost, 0));
    both->arrive_and_wait();
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    T_RT(r, mul, cudaStreamIsCapturing(0, &status));
    expect(r, status == cudaStreamCaptureStatusActive, mul, "stream 0 is capturing");
    cudaGraph_t graph = nullptr;
    T_RT(r, mul, cudaStreamEndCapture(0, &graph));
    size_t nodes = 0;
    T_RT(r, mul, cudaGraphGetNodes(graph, nullptr, &nodes));
    expect(r, nodes == 3, mul, "three nodes, all of this thread's");
    cudaGraphExec_t exec = nullptr;
    T_RT(r, mul, cudaGraphInstantiate(&exec, graph, 0));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            in[i] = i * (round + 1) - 2000;
            out[i] = -1;
        }
        T_RT(r, mul, cudaGraphLaunch(exec, 0));
        T_RT(r, mul, cudaStreamSynchronize(0));
        int wrong = 0;
        for (int i = 0; i < N; i++) {
            wrong += out[i] != (i * (round + 1) - 2000) * mul + add;
        }
        expect(r, wrong == 0, mul, "replayed results");
    }
    T_RT(r, mul, cudaGraphExecDestroy(exec));
    T_RT(r, mul, cudaGraphDestroy(graph));
    T_RT(r, mul, cudaFreeHost(in));
    T_RT(r, mul, cudaFreeHost(out));
    T_RT(r, mul, cudaFree(d));
}

int main()
{
    int *d = nullptr, *in = nullptr, *out = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&d, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&in, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&out, N * sizeof(int)));

    // Stream 0 is this thread's per-thread stream, not the legacy stream.
    unsigned long long mine = stream_id(0);
    CHECK_EQ(stream_id(cudaStreamPerThread), mine);
    CHECK(mine != stream_id(cudaStreamLegacy));

    // Capturing stream 0 works (it would not on the legacy stream); nothing runs until replay.
    for (int i = 0; i < N; i++) {
        out[i] = -1;
    }
    REQUIRE_RT(NAME, cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CHECK_RT(cudaStreamIsCapturing(0, &status));
    CHECK_EQ(cudaStreamCaptureStatusActive, status);
    status = cudaStreamCaptureStatusNone;
    CHECK_RT(cudaStreamIsCapturing(cudaStreamPerThread, &status));
    CHECK_EQ(cudaStreamCaptureStatusActive, status);
    CHECK_RT(cudaMemcpyAsync(d, in, N * sizeof(int), cudaMemcpyHostToDevice, 0));
    rt_step<<<GRID, BLOCK>>>(d, N, 3, -1);
    rt_step<<<GRID, BLOCK, 0, 0>>>(d, N, -2, 7);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaMemcpyAsync(out, d, N * sizeof(int), cudaMemcpyDeviceToHost, 0));
    cudaGraph_t graph = nullptr;
    REQUIRE_RT(NAME, cudaStreamEndCapture(0, &graph));
    CHECK_RT(cudaStreamIsCapturing(0, &status));
    CHECK_EQ(cudaStreamCaptureStatusNone, status);
    size_t nodes = 0;
    CHECK_RT(cudaGraphGetNodes(graph, nullptr, &nodes));
    CHECK_EQ(4, nodes);
    CHECK_EQ(-1, out[0]);
    CHECK_EQ(-1, out[N - 1]);

    cudaGraphExec_t exec = nullptr;
    REQUIRE_RT(NAME, cudaGraphInstantiate(&exec, graph, 0));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            in[i] = i - 1000 * round;
        }
        CHECK_RT(cudaGraphLaunch(exec, 0));
        CHECK_RT(cudaStreamSynchronize(0));
        int wrong = 0;
        for (int i = 0; i < N; i++) {
            int want = ((i - 1000 * round) * 3 - 1) * -2 + 7;
            if (out[i] != want && wrong++ < 5) {
                fprintf(stderr, "FAIL round %d: out[%d] = %d, expected %d\n", round, i, out[i], want);
            }
        }
        CHECK_EQ(0, wrong);
    }
    // A synchronous copy outside any capture reads what the last replay left on the device.
    CHECK_RT(cudaMemcpy(in, d, N * sizeof(int), cudaMemcpyDeviceToHost));
    CHECK_EQ(out[N - 1], in[N - 1]);
    CHECK_RT(cudaGraphExecDestroy(exec));
    CHECK_RT(cudaGraphDestroy(graph));

    // Two threads, each on its own stream 0, with both captures open at the same time.
    Rendezvous both;
    ThreadResult first, second;
    std::thread a(thread_round, 5, 1, &both, &first);
    std::thread b(thread_round, -3, 4, &both, &second);
    a.join();
    b.join();
    CHECK_EQ(0, first.failures);
    CHECK_EQ(0, second.failures);
    CHECK(first.id != second.id);
    CHECK(first.id != mine && second.id != mine);
    CHECK(first.id != stream_id(cudaStreamLegacy) && second.id != stream_id(cudaStreamLegacy));

    CHECK_RT(cudaFreeHost(in));
    CHECK_RT(cudaFreeHost(out));
    CHECK_RT(cudaFree(d));
    return check_done(NAME);
}
