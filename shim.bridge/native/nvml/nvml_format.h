/*
 * Pure helpers of libnvidia-ml.so.1: the strings NVML prints and parses. No state, no service, so
 * the unit test checks them directly.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vgpu_nvml.h"

/* "GPU-" + the 16 bytes as lowercase hex, 8-4-4-4-12: the string cuDeviceGetUuid's bytes give. */
#define VGPU_NVML_UUID_LEN 40
void vgpu_nvml_format_uuid(const uint8_t uuid[16], char out[VGPU_NVML_UUID_LEN + 1]);
/* Accepts what nvmlDeviceGetUUID prints, in either case; 0 on success. */
int vgpu_nvml_parse_uuid(const char *text, uint8_t uuid[16]);

/* busId ("%08X:%02X:%02X.0", as NVML prints it) or busIdLegacy ("%04X:..."). */
void vgpu_nvml_format_bus_id(unsigned domain, unsigned bus, unsigned device, int legacy, char *out, size_t cap);
/* "domain:bus:device.function" with any domain width, or "bus:device.function"; 0 on success. */
int vgpu_nvml_parse_bus_id(const char *text, unsigned *domain, unsigned *bus, unsigned *device);

const char *vgpu_nvml_error_string(nvmlReturn_t result);

/* Copies src into an application buffer of `length` bytes; INSUFFICIENT_SIZE when it does not fit. */
nvmlReturn_t vgpu_nvml_copy_string(char *dst, unsigned int length, const char *src);

/* The NVIDIA driver release that ships a CUDA driver of this version (cuDriverGetVersion form). */
void vgpu_nvml_driver_for_cuda(uint32_t cuda_version, char *out, size_t cap);

nvmlDeviceArchitecture_t vgpu_nvml_architecture(int cc_major, int cc_minor);
unsigned vgpu_nvml_cores_per_sm(int cc_major, int cc_minor);
nvmlBrandType_t vgpu_nvml_brand(const char *name);
