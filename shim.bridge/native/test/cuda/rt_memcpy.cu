// Every way the runtime moves bytes: cudaMemcpy in each direction (cudaMemcpyDefault included),
// async copies and memsets on a stream, pitched allocations and 2D copies, pinned and registered
// host memory. The kernel rt_pitch_fill (Java: io.vgpu.samples.RtPitchFill) writes a pitched
// array, so the device and the host must agree on the pitch.
#include <stdint.h>

#include <vector>

#include "rt_check.h"

static const char *NAME = "rt_memcpy";

__global__ void rt_pitch_fill(unsigned int *base, size_t pitch, int width, int height, unsigned int seed)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x < width && y < height) {
        unsigned int *row = (unsigned int *)((char *)base + y * pitch);
        row[x] = seed ^ ((unsigned int)y << 16 | (unsigned int)x);
    }
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 2654435761u + seed) >> 13);
}

static void fill(std::vector<unsigned char> &v, unsigned seed)
{
    for (size_t i = 0; i < v.size(); i++) {
        v[i] = pattern(i, seed);
    }
}

// How many bytes differ; the first few are printed.
static int differences(const char *what, const unsigned char *expected, const unsigned char *actual, size_t n)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        if (expected[i] != actual[i] && wrong++ < 5) {
            fprintf(stderr, "FAIL %s: byte %zu is 0x%02x, expected 0x%02x\n", what, i, actual[i], expected[i]);
        }
    }
    return wrong;
}

int main()
{
    // Odd sizes: nothing may assume whole words.
    const size_t n = (1 << 20) + 3;
    std::vector<unsigned char> h1(n), h2(n), back(n);
    fill(h1, 1);
    fill(h2, 2);
    unsigned char *d1 = nullptr, *d2 = nullptr;
    size_t free0 = 0, total0 = 0, free1 = 0, total1 = 0;
    REQUIRE_RT(NAME, cudaMemGetInfo(&free0, &total0));
    REQUIRE_RT(NAME, cudaMalloc(&d1, n));
    REQUIRE_RT(NAME, cudaMalloc(&d2, n));
    CHECK_RT(cudaMemGetInfo(&free1, &total1));
    CHECK_EQ(total0, total1);
    CHECK(free1 + 2 * n <= free0);

    // ---- cudaMemcpy, explicit directions
    CHECK_RT(cudaMemcpy(d1, h1.data(), n, cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy(back.data(), d1, n, cudaMemcpyDeviceToHost));
    CHECK_EQ(0, differences("H2D/D2H", h1.data(), back.data(), n));

    CHECK_RT(cudaMemcpy(d2, h2.data(), n, cudaMemcpyHostToDevice));
    // Unaligned source and destination offsets inside the allocations.
    CHECK_RT(cudaMemcpy(d2 + 5, d1 + 7, 100000, cudaMemcpyDeviceToDevice));
    CHECK_RT(cudaMemcpy(back.data(), d2, n, cudaMemcpyDeviceToHost));
    std::vector<unsigned char> expect(h2);
    memcpy(expect.data() + 5, h1.data() + 7, 100000);
    CHECK_EQ(0, differences("D2D", expect.data(), back.data(), n));

    std::vector<unsigned char> hh(64, 0);
    CHECK_RT(cudaMemcpy(hh.data(), h1.data(), hh.size(), cudaMemcpyHostToHost));
    CHECK_EQ(0, differences("H2H", h1.data(), hh.data(), hh.size()));

    // ---- cudaMemcpyDefault: the driver tells host from device by address (unified addressing)
    CHECK_RT(cudaMemcpy(d1, h2.data(), n, cudaMemcpyDefault));
    CHECK_RT(cudaMemcpy(d2, d1, n, cudaMemcpyDefault));
    std::fill(back.begin(), back.end(), 0);
    CHECK_RT(cudaMemcpy(back.data(), d2, n, cudaMemcpyDefault));
    CHECK_EQ(0, differences("Default H2D/D2D/D2H", h2.data(), back.data(), n));
    std::fill(hh.begin(), hh.end(), 0);
    CHECK_RT(cudaMemcpy(hh.data(), h1.data(), hh.size(), cudaMemcpyDefault));
    CHECK_EQ(0, differences("Default H2H", h1.data(), hh.data(), hh.size()));

    // ---- async copies and memsets on a stream
    cudaStream_t s = nullptr;
    REQUIRE_RT(NAME, cudaStreamCreate(&s));
    CHECK_RT(cudaMemcpyAsync(d1, h1.data(), n, cudaMemcpyHostToDevice, s));
    CHECK_RT(cudaMemsetAsync(d1 + 1000, 0x3c, 333, s));
    std::fill(back.begin(), back.end(), 0);
    CHECK_RT(cudaMemcpyAsync(back.data(), d1, n, cudaMemcpyDeviceToHost, s));
    CHECK_RT(cudaStreamSynchronize(s));
    expect = h1;
    memset(expect.data() + 1000, 0x3c, 333);
    CHECK_EQ(0, differences("async copy + memset", expect.data(), back.data(), n));

    // ---- cudaMemset: whole buffer, then an unaligned range
    CHECK_RT(cudaMemset(d2, 0xab, n));
    CHECK_RT(cudaMemset(d2 + 3, 0x11, 10));
    CHECK_RT(cudaMemcpy(back.data(), d2, n, cudaMemcpyDeviceToHost));
    std::fill(expect.begin(), expect.end(), 0xab);
    memset(expect.data() + 3, 0x11, 10);
    CHECK_EQ(0, differences("memset", expect.data(), back.data(), n));

    // ---- pitched memory and 2D copies
    const size_t width = 1000, height = 37; // bytes per row, rows
    unsigned char *dp = nullptr, *dq = nullptr;
    size_t pitch = 0, pitch2 = 0;
    REQUIRE_RT(NAME, cudaMallocPitch((void **)&dp, &pitch, width, height));
    REQUIRE_RT(NAME, cudaMallocPitch((void **)&dq, &pitch2, width, height));
    // Rows are padded to the driver's pitch alignment, 512 bytes.
    CHECK_EQ(1024, pitch);
    CHECK_EQ(pitch, pitch2);

    const size_t hpitch = width + 24;
    std::vector<unsigned char> h2d(hpitch * height), packed(width * height), full(pitch * height);
    fill(h2d, 3);
    CHECK_RT(cudaMemset(dp, 0xee, pitch * height));
    CHECK_RT(cudaMemcpy2D(dp, pitch, h2d.data(), hpitch, width, height, cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy2D(packed.data(), width, dp, pitch, width, height, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (size_t y = 0; y < height; y++) {
        wrong += differences("2D H2D/D2H row", h2d.data() + y * hpitch, packed.data() + y * width, width);
    }
    CHECK_EQ(0, wrong);
    // The padding of each row is untouched by a 2D copy.
    CHECK_RT(cudaMemcpy(full.data(), dp, pitch * height, cudaMemcpyDeviceToHost));
    wrong = 0;
    for (size_t y = 0; y < height; y++) {
        for (size_t x = width; x < pitch; x++) {
            wrong += full[y * pitch + x] != 0xee;
        }
    }
    CHECK_EQ(0, wrong);

    CHECK_RT(cudaMemcpy2D(dq, pitch2, dp, pitch, width, height, cudaMemcpyDeviceToDevice));
    std::fill(packed.begin(), packed.end(), 0);
    CHECK_RT(cudaMemcpy2D(packed.data(), width, dq, pitch2, width, height, cudaMemcpyDeviceToHost));
    wrong = 0;
    for (size_t y = 0; y < height; y++) {
        wrong += differences("2D D2D row", h2d.data() + y * hpitch, packed.data() + y * width, width);
    }
    CHECK_EQ(0, wrong);

    // A kernel writes the pitched array; padding keeps the memset value.
    const int wi = (int)(width / 4), hi = (int)height;
    const unsigned int seed = 0x5a5a0000u;
    CHECK_RT(cudaMemset(dp, 0x77, pitch * height));
    dim3 block(32, 8), grid((wi + 31) / 32, (hi + 7) / 8);
    rt_pitch_fill<<<grid, block>>>((unsigned int *)dp, pitch, wi, hi, seed);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    CHECK_RT(cudaMemcpy(full.data(), dp, pitch * height, cudaMemcpyDeviceToHost));
    wrong = 0;
    for (int y = 0; y < hi; y++) {
        for (size_t x = 0; x < pitch / 4; x++) {
            uint32_t got;
            memcpy(&got, full.data() + y * pitch + x * 4, 4);
            uint32_t want = x < (size_t)wi ? seed ^ ((uint32_t)y << 16 | (uint32_t)x) : 0x77777777u;
            if (got != want && wrong++ < 5) {
                fprintf(stderr, "FAIL pitch fill (%zu,%d) = 0x%08x, expected 0x%08x\n", x, y, got, want);
            }
        }
    }
    CHECK_EQ(0, wrong);

    // ---- pinned host memory
    unsigned char *pinned = nullptr;
    REQUIRE_RT(NAME, cudaMallocHost(&pinned, n));
    memcpy(pinned, h2.data(), n);
    CHECK_RT(cudaMemcpyAsync(d1, pinned, n, cudaMemcpyHostToDevice, s));
    CHECK_RT(cudaStreamSynchronize(s));
    memset(pinned, 0, n);
    CHECK_RT(cudaMemcpy(pinned, d1, n, cudaMemcpyDeviceToHost));
    CHECK_EQ(0, differences("pinned", h2.data(), pinned, n));

    cudaPointerAttributes attr;
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(cudaPointerGetAttributes(&attr, pinned));
    CHECK_EQ(cudaMemoryTypeHost, attr.type);
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(cudaPointerGetAttributes(&attr, d1 + 17));
    CHECK_EQ(cudaMemoryTypeDevice, attr.type);
    CHECK_EQ(0, attr.device);
    CHECK((uintptr_t)attr.devicePointer == (uintptr_t)(d1 + 17));
    CHECK_RT(cudaFreeHost(pinned));

    // ---- registered host memory
    std::vector<unsigned char> reg(n);
    fill(reg, 4);
    CHECK_RT(cudaHostRegister(reg.data(), n, cudaHostRegisterDefault));
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(cudaPointerGetAttributes(&attr, reg.data()));
    CHECK_EQ(cudaMemoryTypeHost, attr.type);
    CHECK_RT(cudaMemcpyAsync(d2, reg.data(), n, cudaMemcpyHostToDevice, s));
    CHECK_RT(cudaStreamSynchronize(s));
    std::fill(reg.begin(), reg.end(), 0);
    CHECK_RT(cudaMemcpyAsync(reg.data(), d2, n, cudaMemcpyDeviceToHost, s));
    CHECK_RT(cudaStreamSynchronize(s));
    std::vector<unsigned char> want4(n);
    fill(want4, 4);
    CHECK_EQ(0, differences("registered", want4.data(), reg.data(), n));
    CHECK_RT(cudaHostUnregister(reg.data()));

    CHECK_RT(cudaStreamDestroy(s));
    // Module loading may take device memory too, so only what this program freed is compared.
    size_t free2 = 0, total2 = 0, free3 = 0, total3 = 0;
    CHECK_RT(cudaMemGetInfo(&free2, &total2));
    CHECK_RT(cudaFree(dp));
    CHECK_RT(cudaFree(dq));
    CHECK_RT(cudaFree(d1));
    CHECK_RT(cudaFree(d2));
    CHECK_RT(cudaMemGetInfo(&free3, &total3));
    CHECK(free3 >= free2 + 2 * n + 2 * pitch * height);
    return check_done(NAME);
}
