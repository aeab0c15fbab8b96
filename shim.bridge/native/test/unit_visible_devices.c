/* CUDA_VISIBLE_DEVICES parsing, as the real driver does it: ordinals and GPU-UUID prefixes. */
#include "check.h"
#include "vgpu.h"

static const uint8_t uuids[3][16] = {
    {0xb6, 0xda, 0xdb, 0x23, 0xec, 0xf9, 0x30, 0x99, 0xbf, 0x7f, 0x98, 0x3e, 0x71, 0x74, 0xef, 0x37},
    {0xca, 0x7c, 0x2f, 0x8f, 0xab, 0x9b, 0x34, 0x4e, 0xa7, 0xfc, 0xeb, 0x03, 0x29, 0x0c, 0x23, 0x57},
    {0xca, 0x7c, 0x11, 0x11, 0xab, 0x9b, 0x34, 0x4e, 0xa7, 0xfc, 0xeb, 0x03, 0x29, 0x0c, 0x23, 0x58},
};

static int visible(const char *spec, int *out)
{
    return vgpu_visible_devices(spec, uuids, 3, out);
}

int main(void)
{
    int v[3];
    CHECK_EQ(3, visible(NULL, v));
    CHECK_EQ(2, v[2]);
    CHECK_EQ(2, visible("2,0", v));
    CHECK_EQ(2, v[0]);
    CHECK_EQ(0, v[1]);
    CHECK_EQ(1, visible(" 1 ", v));
    CHECK_EQ(1, v[0]);
    /* Invalid entries end the list: -1 hides everything, as Ollama relies on. */
    CHECK_EQ(0, visible("-1", v));
    CHECK_EQ(0, visible("", v));
    CHECK_EQ(0, visible("garbage", v));
    CHECK_EQ(1, visible("0,7,1", v));
    CHECK_EQ(1, visible("1,1", v));
    /* Full UUIDs, prefixes, any case; an ambiguous prefix is invalid. */
    CHECK_EQ(1, visible("GPU-b6dadb23-ecf9-3099-bf7f-983e7174ef37", v));
    CHECK_EQ(0, v[0]);
    CHECK_EQ(1, visible("GPU-CA7C2F8F", v));
    CHECK_EQ(1, v[0]);
    CHECK_EQ(0, visible("GPU-ca7c", v));
    CHECK_EQ(2, visible("GPU-ca7c11,0", v));
    CHECK_EQ(2, v[0]);
    CHECK_EQ(0, v[1]);
    CHECK_EQ(0, visible("GPU-", v));
    CHECK_EQ(0, visible("GPU-zz", v));
    CHECK_EQ(0, visible("MIG-ca7c2f8f", v));
    return check_done("CUDA_VISIBLE_DEVICES");
}
