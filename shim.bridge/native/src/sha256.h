/* SHA-256 (FIPS 180-4): names module images by content so the service uploads each one once. */
#pragma once
#include <stddef.h>
#include <stdint.h>

void vgpu_sha256(const void *data, size_t len, uint8_t out[32]);
