/*
 * Every message kind filled field by field (generated from the spec), framed as the shim frames
 * it, must equal the golden bytes the Java tests check too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vgpu_protocol.h"
#include "vgpu_protocol_golden.h"

static size_t read_hex(const char *path, unsigned char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return (size_t)-1;
    size_t n = 0;
    unsigned v;
    while (n < cap && fscanf(f, "%2x", &v) == 1)
        out[n++] = (unsigned char)v;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../../bundles/protocol/golden";
    static unsigned char golden[1 << 16], mine[1 << 16];
    size_t count = sizeof vgpu_golden_messages / sizeof vgpu_golden_messages[0];
    for (size_t i = 0; i < count; i++) {
        const struct vgpu_golden *g = &vgpu_golden_messages[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s.hex", dir, g->name);
        size_t n = read_hex(path, golden, sizeof golden);
        CHECK(n != (size_t)-1);
        int record = strncmp(g->name, "record.", 7) == 0;
        size_t header = record ? 0 : VGPU_FRAME_HEADER_SIZE;
        size_t length = g->fixed_size + g->tail_size;
        memset(mine, 0, sizeof mine);
        if (!record && g->reply) {
            struct vgpu_rep_header h = {.length = (uint32_t)length, .op = g->op, .flags = 0, .seq = 0x01020304, .result = 0};
            memcpy(mine, &h, sizeof h);
        } else if (!record) {
            struct vgpu_req_header h = {.length = (uint32_t)length, .op = g->op, .flags = g->async ? VGPU_FLAG_ASYNC : 0,
                                        .seq = 0x01020304, .reserved = 0};
            memcpy(mine, &h, sizeof h);
        }
        if (g->fill != NULL)
            g->fill(mine + header);
        if (g->tail)
            memcpy(mine + header + g->fixed_size, g->tail_bytes, g->tail_size);
        CHECK_EQ(n, header + length);
        if (n == header + length && memcmp(golden, mine, n) != 0) {
            check_failures++;
            fprintf(stderr, "FAIL %s: bytes differ from %s\n", g->name, path);
        }
        check_count++;
    }
    CHECK(count > 90);
    return check_done("protocol golden vectors");
}
