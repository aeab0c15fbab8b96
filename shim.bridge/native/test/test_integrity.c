/*
 * Unit tests for src/integrity.c.
 *
 * MD2 is checked against the test suite printed in RFC 1319. The HMAC
 * vectors below are regression vectors: they were computed by this
 * implementation for fixed inputs and agree with an independent Python
 * transcription of RFC 1319 + HMAC, but only NVIDIA's libcudart accepting the
 * shim's answer at init proves the construction. If they ever change, the
 * integrity answer changed, and cudart will fail with error 103.
 */
#include "integrity.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void hex16(const uint8_t d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_md2(const char *msg, const char *want)
{
    uint8_t d[16];
    char got[33];
    vgpu_md2((const uint8_t *)msg, strlen(msg), d);
    hex16(d, got);
    if (strcmp(got, want) == 0) {
        passed++;
    } else {
        failed++;
        printf("FAIL md2(\"%s\") = %s, want %s\n", msg, got, want);
    }
}

static void check_u64x2(const char *what, const uint64_t got[2], uint64_t w0, uint64_t w1)
{
    if (got[0] == w0 && got[1] == w1) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s = {0x%016" PRIx64 ", 0x%016" PRIx64 "}, want {0x%016" PRIx64 ", 0x%016" PRIx64 "}\n",
               what, got[0], got[1], w0, w1);
    }
}

static void check_true(const char *what, int ok)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

static void test_md2_rfc1319(void)
{
    check_md2("", "8350e5a3e24c153df2275c9f80692773");
    check_md2("a", "32ec01ec4a6dac72c0ab96fb34c0b5d1");
    check_md2("abc", "da853b0d3f88d99b30283a69e6ded6bb");
    check_md2("message digest", "ab4f496bfb2a530b219ff33031fe06b0");
    check_md2("abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b");
    check_md2("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
              "da33def2a42df13975352846c30338cd");
    check_md2("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
              "d5976f79d83d3a0dc9806c3c66f3efd8");
}

/* Fixed, plausible inputs: a CUDA 13.0 driver, cudart's third call, one H100-like device. */
#define T_DRIVER  13000u
#define T_VERSION 13002u
#define T_PID     4242u
#define T_THREAD  0x12345678u
#define T_IFACE   UINT64_C(0x00007f1234561000)
#define T_TABLE   UINT64_C(0x00007f1234562000)
#define T_FN      UINT64_C(0x00007f1234563000)
#define T_SECONDS UINT64_C(1767225600)

static const struct vgpu_integrity_device DEV0 = {
    .uuid = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    .pci_domain = 0, .pci_bus = 0x3b, .pci_device = 0,
};

/* A negative id checks that i32 fields are hashed as their two's-complement bytes. */
static const struct vgpu_integrity_device DEV1 = {
    .uuid = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
    .pci_domain = 1, .pci_bus = -1, .pci_device = 7,
};

static void test_hmac_regression(void)
{
    uint64_t out[2];

    /* 92 hashed bytes before padding: the message crosses block boundaries. */
    vgpu_integrity_hash(T_DRIVER, T_VERSION, T_PID, T_THREAD, T_IFACE, T_TABLE, T_FN, T_SECONDS,
                        &DEV0, 1, out);
    check_u64x2("hmac, one device", out, UINT64_C(0xcb34d131bc42ef53), UINT64_C(0xa79d52d1bde4e01d));

    struct vgpu_integrity_device two[2] = {DEV0, DEV1};
    vgpu_integrity_hash(T_DRIVER, T_VERSION, T_PID, T_THREAD, T_IFACE, T_TABLE, T_FN, T_SECONDS,
                        two, 2, out);
    check_u64x2("hmac, two devices", out, UINT64_C(0xecd52780e9423982), UINT64_C(0xfbc078e80e13001e));

    /* 64 bytes, block-aligned: exercises the full padding block. */
    vgpu_integrity_hash(T_DRIVER, T_VERSION, T_PID, T_THREAD, T_IFACE, T_TABLE, T_FN, T_SECONDS,
                        NULL, 0, out);
    check_u64x2("hmac, no device", out, UINT64_C(0xad6eade13e0a7aea), UINT64_C(0xfdd6e36536724554));
}

/* The reported driver version is hashed: reporting one value and hashing another gives 103. */
static void test_hmac_covers_driver_version(void)
{
    uint64_t a[2], b[2];
    vgpu_integrity_hash(T_DRIVER, T_VERSION, T_PID, T_THREAD, T_IFACE, T_TABLE, T_FN, T_SECONDS,
                        &DEV0, 1, a);
    vgpu_integrity_hash(13010u, T_VERSION, T_PID, T_THREAD, T_IFACE, T_TABLE, T_FN, T_SECONDS,
                        &DEV0, 1, b);
    check_true("hmac depends on the driver version", a[0] != b[0] || a[1] != b[1]);
}

int main(void)
{
    test_md2_rfc1319();
    test_hmac_regression();
    test_hmac_covers_driver_version();
    printf("test_integrity: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
