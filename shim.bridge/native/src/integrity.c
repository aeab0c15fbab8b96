/*
 * MD2 (RFC 1319) and the HMAC-MD2 answer to cudart's integrity check.
 *
 * MD2 is obsolete as a hash, but it is what cudart verifies, and system
 * crypto libraries no longer ship it, so the shim carries its own.
 */
#include "integrity.h"

#include <string.h>

/* RFC 1319's byte permutation, built from the digits of pi. */
static const uint8_t PI_SUBST[256] = {
     41,  46,  67, 201, 162, 216, 124,   1,  61,  54,  84, 161, 236, 240,   6,  19,
     98, 167,   5, 243, 192, 199, 115, 140, 152, 147,  43, 217, 188,  76, 130, 202,
     30, 155,  87,  60, 253, 212, 224,  22, 103,  66, 111,  24, 138,  23, 229,  18,
    190,  78, 196, 214, 218, 158, 222,  73, 160, 251, 245, 142, 187,  47, 238, 122,
    169, 104, 121, 145,  21, 178,   7,  63, 148, 194,  16, 137,  11,  34,  95,  33,
    128, 127,  93, 154,  90, 144,  50,  39,  53,  62, 204, 231, 191, 247, 151,   3,
    255,  25,  48, 179,  72, 165, 181, 209, 215,  94, 146,  42, 172,  86, 170, 198,
     79, 184,  56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116,   4, 241,
     69, 157, 112,  89, 100, 113, 135,  32, 134,  91, 207, 101, 230,  45, 168,   2,
     27,  96,  37, 173, 174, 176, 185, 246,  28,  70,  97, 105,  52,  64, 126,  15,
     85,  71, 163,  35, 221,  81, 175,  58, 195,  92, 249, 206, 186, 197, 234,  38,
     44,  83,  13, 110, 133,  40, 132,   9, 211, 223, 205, 244,  65, 129,  77,  82,
    106, 220,  55, 200, 108, 193, 171, 250,  36, 225, 123,   8,  12, 189, 177,  74,
    120, 136, 149, 139, 227,  99, 232, 109, 233, 203, 213, 254,  59,   0,  29,  57,
    242, 239, 183,  14, 102,  88, 208, 228, 166, 119, 114, 248, 235, 117,  75,  10,
     49,  68,  80, 180, 143, 237,  31,  26, 219, 153, 141,  51, 159,  17, 131,  20,
};

#define MD2_BLOCK 16

/*
 * Streaming state, so the HMAC can hash (key block || message) without
 * building the concatenation, whatever the number of devices.
 */
struct md2_ctx {
    uint8_t state[48];
    uint8_t checksum[MD2_BLOCK];
    uint8_t buf[MD2_BLOCK];
    size_t buffered;
};

static void md2_init(struct md2_ctx *c)
{
    memset(c, 0, sizeof *c);
}

static void md2_block(struct md2_ctx *c, const uint8_t block[MD2_BLOCK])
{
    uint8_t *x = c->state;
    for (int j = 0; j < MD2_BLOCK; j++) {
        x[16 + j] = block[j];
        x[32 + j] = (uint8_t)(x[16 + j] ^ x[j]);
    }
    uint8_t t = 0;
    for (int round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++)
            t = x[k] ^= PI_SUBST[t];
        t = (uint8_t)(t + round);
    }

    /*
     * RFC 1319 as first printed says "Set C[j] to S[c xor L]"; the errata and
     * every published test vector need the XOR into C[j].
     */
    uint8_t l = c->checksum[MD2_BLOCK - 1];
    for (int j = 0; j < MD2_BLOCK; j++)
        l = c->checksum[j] ^= PI_SUBST[block[j] ^ l];
}

static void md2_update(struct md2_ctx *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = MD2_BLOCK - c->buffered;
        if (take > n)
            take = n;
        memcpy(c->buf + c->buffered, p, take);
        c->buffered += take;
        p += take;
        n -= take;
        if (c->buffered == MD2_BLOCK) {
            md2_block(c, c->buf);
            c->buffered = 0;
        }
    }
}

static void md2_final(struct md2_ctx *c, uint8_t out[16])
{
    /* Always pads, a whole block of 16s when the input is block-aligned. */
    uint8_t pad = (uint8_t)(MD2_BLOCK - c->buffered);
    uint8_t padding[MD2_BLOCK];
    memset(padding, pad, sizeof padding);
    md2_update(c, padding, pad);

    /* The checksum is hashed as a last block; copy it first, hashing updates it. */
    uint8_t checksum[MD2_BLOCK];
    memcpy(checksum, c->checksum, sizeof checksum);
    md2_block(c, checksum);

    memcpy(out, c->state, 16);
}

void vgpu_md2(const uint8_t *msg, size_t len, uint8_t out[16])
{
    struct md2_ctx c;
    md2_init(&c);
    md2_update(&c, msg, len);
    md2_final(&c, out);
}

/* The message is defined little-endian, whatever the host. */
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/*
 * The HMAC key. ZLUDA names it pass1_result: the output of a first pass that
 * takes no input, hence a constant. It is exactly one MD2 block, so standard
 * HMAC uses it as is.
 */
static const uint8_t INTEGRITY_KEY[MD2_BLOCK] = {
    0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
    0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f,
};

void vgpu_integrity_hash(uint32_t driver_version, uint32_t version, uint32_t pid, uint32_t thread,
                         uint64_t cudart_iface_table, uint64_t integrity_table, uint64_t integrity_fn,
                         uint64_t unix_seconds, const struct vgpu_integrity_device *devices, int ndevices,
                         uint64_t out[2])
{
    uint8_t ipad[MD2_BLOCK], opad[MD2_BLOCK];
    for (int i = 0; i < MD2_BLOCK; i++) {
        ipad[i] = INTEGRITY_KEY[i] ^ 0x36;
        opad[i] = INTEGRITY_KEY[i] ^ 0x5c;
    }

    uint8_t header[48];
    put_le32(header + 0, driver_version);
    put_le32(header + 4, version);
    put_le32(header + 8, pid);
    put_le32(header + 12, thread);
    put_le64(header + 16, cudart_iface_table);
    put_le64(header + 24, integrity_table);
    put_le64(header + 32, integrity_fn);
    put_le64(header + 40, unix_seconds);

    struct md2_ctx c;
    md2_init(&c);
    md2_update(&c, ipad, sizeof ipad);
    md2_update(&c, header, sizeof header);
    for (int d = 0; d < ndevices; d++) {
        uint8_t rec[28];
        memcpy(rec, devices[d].uuid, 16);
        put_le32(rec + 16, (uint32_t)devices[d].pci_domain);
        put_le32(rec + 20, (uint32_t)devices[d].pci_bus);
        put_le32(rec + 24, (uint32_t)devices[d].pci_device);
        md2_update(&c, rec, sizeof rec);
    }
    uint8_t inner[16];
    md2_final(&c, inner);

    md2_init(&c);
    md2_update(&c, opad, sizeof opad);
    md2_update(&c, inner, sizeof inner);
    uint8_t result[16];
    md2_final(&c, result);

    out[0] = get_le64(result);
    out[1] = get_le64(result + 8);
}
