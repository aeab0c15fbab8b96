/*
 * Device symbols and CUDA graphs through the runtime, as ggml uses them: cudaMemcpyTo/FromSymbol
 * on __device__ and __constant__ variables (cuLibraryGetGlobal), then stream capture of copies
 * and launches, instantiation, repeated launches reading the host buffer at run time, and an
 * executable-graph update from a fresh capture.
 */
#include <cstdio>

#include "rt_check.h"

/* The same kernel as rt_streams.cu. */
__global__ void rt_step(int *buf, int n, int mul, int add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        buf[i] = buf[i] * mul + add;
}

__device__ int rt_counter = 5;
__constant__ float rt_coeffs[4] = {1.0f, 2.0f, 3.0f, 4.0f};
__device__ double rt_table[37];

static const int N = 1000;
static int host_in[N], host_out[N];

static void capture(cudaStream_t s, int *d, int mul1, int mul2)
{
    CHECK_RT(cudaMemcpyAsync(d, host_in, sizeof host_in, cudaMemcpyHostToDevice, s));
    rt_step<<<(N + 255) / 256, 256, 0, s>>>(d, N, mul1, 1);
    rt_step<<<(N + 255) / 256, 256, 0, s>>>(d, N, mul2, 0);
    CHECK_RT(cudaMemcpyAsync(host_out, d, sizeof host_out, cudaMemcpyDeviceToHost, s));
}

static int all(int round, int mul1, int mul2)
{
    for (int i = 0; i < N; i++)
        if (host_out[i] != ((i + round) * mul1 + 1) * mul2)
            return 0;
    return 1;
}

int main()
{
    /* Symbols: initial values, sizes, addresses and copies both ways. */
    int counter = 0;
    CHECK_RT(cudaMemcpyFromSymbol(&counter, rt_counter, sizeof counter));
    CHECK_EQ(5, counter);
    float coeffs[4] = {0};
    CHECK_RT(cudaMemcpyFromSymbol(coeffs, rt_coeffs, sizeof coeffs));
    CHECK(coeffs[0] == 1.0f && coeffs[3] == 4.0f);
    size_t size = 0;
    CHECK_RT(cudaGetSymbolSize(&size, rt_table));
    CHECK_EQ(37 * sizeof(double), size);
    void *address = nullptr;
    CHECK_RT(cudaGetSymbolAddress(&address, rt_counter));
    CHECK(address != nullptr);
    counter = 42;
    CHECK_RT(cudaMemcpyToSymbol(rt_counter, &counter, sizeof counter));
    int back = 0;
    CHECK_RT(cudaMemcpy(&back, address, sizeof back, cudaMemcpyDeviceToHost));
    CHECK_EQ(42, back);

    int *d = nullptr;
    REQUIRE_RT("graph", cudaMalloc(&d, sizeof host_in));
    cudaStream_t s;
    REQUIRE_RT("graph", cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    REQUIRE_RT("graph", cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    capture(s, d, 2, 3);
    cudaGraph_t graph;
    REQUIRE_RT("graph", cudaStreamEndCapture(s, &graph));
    cudaStreamCaptureStatus status;
    CHECK_RT(cudaStreamIsCapturing(s, &status));
    CHECK_EQ(cudaStreamCaptureStatusNone, status);
    size_t nodes = 0;
    CHECK_RT(cudaGraphGetNodes(graph, nullptr, &nodes));
    CHECK_EQ(4, nodes);

    cudaGraphExec_t exec;
    REQUIRE_RT("graph", cudaGraphInstantiate(&exec, graph, 0));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            host_in[i] = i + round;
        CHECK_RT(cudaGraphLaunch(exec, s));
        CHECK_RT(cudaStreamSynchronize(s));
        CHECK(all(round, 2, 3));
    }

    /* A fresh capture with other parameters updates the executable graph in place. */
    REQUIRE_RT("graph", cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    capture(s, d, 5, 7);
    cudaGraph_t graph2;
    REQUIRE_RT("graph", cudaStreamEndCapture(s, &graph2));
    cudaGraphExecUpdateResultInfo info;
    CHECK_RT(cudaGraphExecUpdate(exec, graph2, &info));
    CHECK_EQ(cudaGraphExecUpdateSuccess, info.result);
    CHECK_RT(cudaGraphLaunch(exec, s));
    CHECK_RT(cudaStreamSynchronize(s));
    CHECK(all(2, 5, 7));

    CHECK_RT(cudaGraphExecDestroy(exec));
    CHECK_RT(cudaGraphDestroy(graph));
    CHECK_RT(cudaGraphDestroy(graph2));
    CHECK_RT(cudaStreamDestroy(s));
    CHECK_RT(cudaFree(d));
    return check_done("rt_graph");
}
