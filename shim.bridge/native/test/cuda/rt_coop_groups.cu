// Cooperative groups from PTX: thread_block (2D, so ranks are linearised x-major), tiled_partition
// <32>, <16> and <4>, tile shuffles, tile.sync, tile votes, cg::reduce (plus, greater, less,
// bit_xor), cg::inclusive_scan / exclusive_scan and block.sync around shared memory. Every thread
// writes its view of each result; all are checked exactly against a host reference (ints).
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cooperative_groups/scan.h>
#include <vector>

#include "rt_verify.h"

namespace cg = cooperative_groups;

static const char *NAME = "rt_coop_groups";

#define BX 16
#define BY 8
#define THREADS (BX * BY)
#define WORDS 12
#define TILES32 (THREADS / 32)

__global__ void rt_coop(const int *in, int *out)
{
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> t32 = cg::tiled_partition<32>(block);
    cg::thread_block_tile<16> t16 = cg::tiled_partition<16>(block);
    cg::thread_block_tile<4> t4 = cg::tiled_partition<4>(block);
    __shared__ int tile_sums[TILES32];

    int rank = block.thread_rank();
    int g = blockIdx.x * THREADS + rank;
    int v = in[g];
    int *o = out + (size_t)g * WORDS;

    // Sum over the warp-sized tile by shuffling down, then broadcast lane 0's total.
    int s = v;
    for (int off = t32.size() / 2; off > 0; off /= 2) {
        s += t32.shfl_down(s, off);
    }
    s = t32.shfl(s, 0);
    o[0] = s;
    o[1] = cg::reduce(t32, v, cg::plus<int>());
    o[2] = cg::reduce(t16, v, cg::greater<int>());
    o[3] = cg::reduce(t16, v, cg::less<int>());
    o[4] = (int)cg::reduce(t16, (unsigned)v, cg::bit_xor<unsigned>());
    o[5] = cg::inclusive_scan(t16, v);
    o[6] = cg::exclusive_scan(t32, v);
    t16.sync();
    o[7] = (int)t16.ballot(v > 0);
    o[8] = (t16.any(v > 900) ? 1 : 0) | (t16.all(v > -900) ? 2 : 0);

    // Block sum: each 32-tile's total through shared memory, between two block barriers.
    if (t32.thread_rank() == 0) {
        tile_sums[t32.meta_group_rank()] = s;
    }
    block.sync();
    int total = 0;
    for (unsigned k = 0; k < t32.meta_group_size(); k++) {
        total += tile_sums[k];
    }
    o[9] = total;
    o[10] = rank | (int)t16.meta_group_rank() << 12 | (int)t16.thread_rank() << 20 | (int)t4.thread_rank() << 28;
    int q = v;
    for (int m = 1; m < 4; m *= 2) {
        q += t4.shfl_xor(q, m);
    }
    o[11] = q;
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);

    const int blocks = 40, n = blocks * THREADS;
    std::vector<int> in(n);
    for (int i = 0; i < n; i++) {
        int tile = i / 16;
        // Tiles of 16 that are all positive, all small, or mixed, so any/all/ballot vary.
        switch (tile % 4) {
        case 0: in[i] = 1 + (i * 37) % 800; break;
        case 1: in[i] = (i * 53) % 1999 - 999; break;
        case 2: in[i] = (i % 16 == 5) ? 950 : -(i % 7); break;
        default: in[i] = (i % 16 == 9) ? -950 : 100 + i % 11; break;
        }
    }
    int *din = nullptr, *dout = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&din, n * sizeof(int)));
    REQUIRE_RT(NAME, cudaMalloc(&dout, (size_t)n * WORDS * sizeof(int)));
    CHECK_RT(cudaMemcpy(din, in.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemset(dout, 0xff, (size_t)n * WORDS * sizeof(int)));
    rt_coop<<<blocks, dim3(BX, BY)>>>(din, dout);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    std::vector<int> out((size_t)n * WORDS);
    CHECK_RT(cudaMemcpy(out.data(), dout, out.size() * sizeof(int), cudaMemcpyDeviceToHost));

    std::vector<int> want((size_t)n * WORDS);
    for (int i = 0; i < n; i++) {
        int rank = i % THREADS;
        int b32 = i - i % 32, b16 = i - i % 16, b4 = i - i % 4, bb = i - rank;
        int sum32 = 0, excl32 = 0, mx = -0x7fffffff - 1, mn = 0x7fffffff, incl16 = 0, sum4 = 0, total = 0;
        unsigned x16 = 0, ballot = 0;
        bool any = false, all = true;
        for (int j = b32; j < b32 + 32; j++) {
            sum32 += in[j];
            excl32 += j < i ? in[j] : 0;
        }
        for (int j = b16; j < b16 + 16; j++) {
            mx = in[j] > mx ? in[j] : mx;
            mn = in[j] < mn ? in[j] : mn;
            x16 ^= (unsigned)in[j];
            incl16 += j <= i ? in[j] : 0;
            ballot |= (unsigned)(in[j] > 0) << (j - b16);
            any |= in[j] > 900;
            all &= in[j] > -900;
        }
        for (int j = b4; j < b4 + 4; j++) {
            sum4 += in[j];
        }
        for (int j = bb; j < bb + THREADS; j++) {
            total += in[j];
        }
        int *w = &want[(size_t)i * WORDS];
        w[0] = sum32;
        w[1] = sum32;
        w[2] = mx;
        w[3] = mn;
        w[4] = (int)x16;
        w[5] = incl16;
        w[6] = excl32;
        w[7] = (int)ballot;
        w[8] = (any ? 1 : 0) | (all ? 2 : 0);
        w[9] = total;
        w[10] = rank | (rank / 16) << 12 | (rank % 16) << 20 | (rank % 4) << 28;
        w[11] = sum4;
    }
    static const char *names[WORDS] = {"tile32 shfl_down sum", "reduce(tile32, plus)", "reduce(tile16, greater)",
                                       "reduce(tile16, less)", "reduce(tile16, bit_xor)", "inclusive_scan(tile16)",
                                       "exclusive_scan(tile32)", "tile16.ballot", "tile16.any|all<<1",
                                       "block sum via shared", "ranks", "tile4 shfl_xor sum"};
    for (int k = 0; k < WORDS; k++) {
        std::vector<int> got(n), exp(n);
        for (int i = 0; i < n; i++) {
            got[i] = out[(size_t)i * WORDS + k];
            exp[i] = want[(size_t)i * WORDS + k];
        }
        CHECK_EQ(0, verify_exact(names[k], got.data(), exp.data(), n));
    }
    CHECK_RT(cudaFree(din));
    CHECK_RT(cudaFree(dout));
    return check_done(NAME);
}
