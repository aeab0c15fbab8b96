// Two streams, ordered by events, with kernels that compute from PTX. Stream 1 copies A in,
// squares it in place and records an event; stream 2 copies B in, waits for that event, then
// combines A and B into C and copies C out; stream 1 then copies its A out. A second round reuses
// the buffers with chunked, interleaved copies (each chunk's kernel on the stream of its copy), and
// the elapsed time between events is read after cudaEventSynchronize. Every element is checked
// exactly (integers).
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_stream_events";

__global__ void rt_square(int *a, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        a[i] = a[i] * a[i];
    }
}

// c = a - 3*b + i: not symmetric in a and b, so swapped or stale inputs show.
__global__ void rt_combine(const int *a, const int *b, int *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        c[i] = a[i] - 3 * b[i] + i;
    }
}

static const int N = 16384 + 5;
static const int BLOCK = 256;

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);

    int *ha = nullptr, *hb = nullptr, *hc = nullptr, *ha_out = nullptr;
    REQUIRE_RT(NAME, cudaMallocHost(&ha, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&hb, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&hc, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMallocHost(&ha_out, N * sizeof(int)));
    for (int i = 0; i < N; i++) {
        ha[i] = i % 301 - 150; // |a|^4 < 2^31: squaring twice stays in range
        hb[i] = (i * 7) % 1013;
        hc[i] = -1;
        ha_out[i] = -1;
    }
    int *da = nullptr, *db = nullptr, *dc = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&da, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMalloc(&db, N * sizeof(int)));
    REQUIRE_RT(NAME, cudaMalloc(&dc, N * sizeof(int)));
    CHECK_RT(cudaMemset(dc, 0xff, N * sizeof(int)));

    cudaStream_t s1 = nullptr, s2 = nullptr;
    REQUIRE_RT(NAME, cudaStreamCreate(&s1));
    REQUIRE_RT(NAME, cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t start = nullptr, squared = nullptr, stop = nullptr;
    REQUIRE_RT(NAME, cudaEventCreate(&start));
    REQUIRE_RT(NAME, cudaEventCreateWithFlags(&squared, cudaEventDisableTiming));
    REQUIRE_RT(NAME, cudaEventCreate(&stop));

    const int grid = (N + BLOCK - 1) / BLOCK;
    CHECK_RT(cudaEventRecord(start, s1));
    CHECK_RT(cudaMemcpyAsync(da, ha, N * sizeof(int), cudaMemcpyHostToDevice, s1));
    rt_square<<<grid, BLOCK, 0, s1>>>(da, N);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaEventRecord(squared, s1));
    CHECK_RT(cudaMemcpyAsync(db, hb, N * sizeof(int), cudaMemcpyHostToDevice, s2));
    CHECK_RT(cudaStreamWaitEvent(s2, squared, 0));
    rt_combine<<<grid, BLOCK, 0, s2>>>(da, db, dc, N);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaMemcpyAsync(hc, dc, N * sizeof(int), cudaMemcpyDeviceToHost, s2));
    CHECK_RT(cudaMemcpyAsync(ha_out, da, N * sizeof(int), cudaMemcpyDeviceToHost, s1));
    CHECK_RT(cudaEventRecord(stop, s2));
    CHECK_RT(cudaEventSynchronize(stop));
    CHECK_RT(cudaStreamSynchronize(s1));
    CHECK_RT(cudaStreamSynchronize(s2));
    CHECK_RT(cudaEventQuery(squared));
    CHECK_RT(cudaEventQuery(stop));

    float ms = -1.0f;
    CHECK_RT(cudaEventElapsedTime(&ms, start, stop));
    CHECK(ms >= 0.0f && ms < 60000.0f);

    std::vector<int> want_a(N), want_c(N);
    for (int i = 0; i < N; i++) {
        int a0 = i % 301 - 150;
        want_a[i] = a0 * a0;
        want_c[i] = want_a[i] - 3 * hb[i] + i;
    }
    CHECK_EQ(0, verify_exact("round 1: A squared (stream 1)", ha_out, want_a.data(), N));
    CHECK_EQ(0, verify_exact("round 1: C combined (stream 2 after the event)", hc, want_c.data(), N));

    // Round 2: four chunks alternating between the streams; each chunk is copied in, squared and
    // combined on its own stream (A is squared twice now), and copied out on the other stream
    // after an event.
    const int CHUNKS = 4;
    const int chunk = (N + CHUNKS - 1) / CHUNKS;
    cudaEvent_t done[CHUNKS];
    for (int k = 0; k < CHUNKS; k++) {
        REQUIRE_RT(NAME, cudaEventCreateWithFlags(&done[k], cudaEventDisableTiming));
    }
    for (int i = 0; i < N; i++) {
        hc[i] = -1;
    }
    CHECK_RT(cudaMemset(dc, 0xff, N * sizeof(int)));
    CHECK_RT(cudaEventRecord(start, s1));
    for (int k = 0; k < CHUNKS; k++) {
        int off = k * chunk, len = off + chunk <= N ? chunk : N - off;
        cudaStream_t s = k % 2 ? s2 : s1, other = k % 2 ? s1 : s2;
        CHECK_RT(cudaMemcpyAsync(da + off, ha_out + off, len * sizeof(int), cudaMemcpyHostToDevice, s));
        rt_square<<<(len + BLOCK - 1) / BLOCK, BLOCK, 0, s>>>(da + off, len);
        CHECK_RT(cudaGetLastError());
        rt_combine<<<(len + BLOCK - 1) / BLOCK, BLOCK, 0, s>>>(da + off, db + off, dc + off, len);
        CHECK_RT(cudaGetLastError());
        CHECK_RT(cudaEventRecord(done[k], s));
        CHECK_RT(cudaStreamWaitEvent(other, done[k], 0));
        CHECK_RT(cudaMemcpyAsync(hc + off, dc + off, len * sizeof(int), cudaMemcpyDeviceToHost, other));
    }
    CHECK_RT(cudaEventRecord(stop, s1));
    CHECK_RT(cudaEventSynchronize(stop));
    CHECK_RT(cudaStreamSynchronize(s2));
    CHECK_RT(cudaStreamSynchronize(s1));
    ms = -1.0f;
    CHECK_RT(cudaEventElapsedTime(&ms, start, stop));
    CHECK(ms >= 0.0f && ms < 60000.0f);

    for (int i = 0; i < N; i++) {
        int k = i / chunk, off = k * chunk;
        // The combine kernel of each chunk sees its own index, i - off.
        want_c[i] = want_a[i] * want_a[i] - 3 * hb[i] + (i - off);
    }
    CHECK_EQ(0, verify_exact("round 2: chunked C", hc, want_c.data(), N));

    for (int k = 0; k < CHUNKS; k++) {
        CHECK_RT(cudaEventDestroy(done[k]));
    }
    CHECK_RT(cudaEventDestroy(start));
    CHECK_RT(cudaEventDestroy(squared));
    CHECK_RT(cudaEventDestroy(stop));
    CHECK_RT(cudaStreamDestroy(s1));
    CHECK_RT(cudaStreamDestroy(s2));
    CHECK_RT(cudaFree(da));
    CHECK_RT(cudaFree(db));
    CHECK_RT(cudaFree(dc));
    CHECK_RT(cudaFreeHost(ha));
    CHECK_RT(cudaFreeHost(hb));
    CHECK_RT(cudaFreeHost(hc));
    CHECK_RT(cudaFreeHost(ha_out));
    return check_done(NAME);
}
