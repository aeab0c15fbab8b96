/* The strings NVML prints and parses (see nvml_format.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nvml_format.h"

void vgpu_nvml_format_uuid(const uint8_t u[16], char out[VGPU_NVML_UUID_LEN + 1])
{
    snprintf(out, VGPU_NVML_UUID_LEN + 1,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int hex_value(int c)
{
    c = tolower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int vgpu_nvml_parse_uuid(const char *text, uint8_t uuid[16])
{
    if (text == NULL || strncasecmp(text, "GPU-", 4) != 0)
        return -1;
    /* Dashes only where NVML puts them: a string NVML never prints names no device. */
    static const int dash_after[] = {8, 12, 16, 20};
    const char *p = text + 4;
    int nibbles = 0, dash = 0;
    for (; *p != '\0'; p++) {
        if (*p == '-') {
            if (dash == 4 || nibbles != dash_after[dash])
                return -1;
            dash++;
            continue;
        }
        int v = hex_value((unsigned char)*p);
        if (v < 0 || nibbles == 32)
            return -1;
        if (nibbles % 2 == 0)
            uuid[nibbles / 2] = (uint8_t)(v << 4);
        else
            uuid[nibbles / 2] |= (uint8_t)v;
        nibbles++;
    }
    return nibbles == 32 && dash == 4 ? 0 : -1;
}

void vgpu_nvml_format_bus_id(unsigned domain, unsigned bus, unsigned device, int legacy, char *out, size_t cap)
{
    snprintf(out, cap, legacy ? NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT : NVML_DEVICE_PCI_BUS_ID_FMT, domain, bus, device);
}

int vgpu_nvml_parse_bus_id(const char *text, unsigned *domain, unsigned *bus, unsigned *device)
{
    /* sscanf alone would take "0x" prefixes and trailing junk. */
    if (text == NULL || text[strspn(text, "0123456789abcdefABCDEF:.")] != '\0')
        return -1;
    unsigned d = 0, b, dev, fn = 0;
    char tail;
    if (sscanf(text, "%x:%x:%x.%x%c", &d, &b, &dev, &fn, &tail) == 4 ||
        (d = 0, sscanf(text, "%x:%x.%x%c", &b, &dev, &fn, &tail) == 3)) {
        if (b > 0xff || dev > 0x1f || fn != 0)
            return -1;
        *domain = d;
        *bus = b;
        *device = dev;
        return 0;
    }
    return -1;
}

const char *vgpu_nvml_error_string(nvmlReturn_t r)
{
    /* The texts NVIDIA's library returns, which tools print verbatim. */
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: return "The requested vgpu operation is not available on target device, because ECC is enabled";
    case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient resources";
    case NVML_ERROR_FREQ_NOT_SUPPORTED: return "Frequency not supported";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED: return "Reset type not supported";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    }
    return "Unknown Error";
}

nvmlReturn_t vgpu_nvml_copy_string(char *dst, unsigned int length, const char *src)
{
    if (dst == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    size_t n = strlen(src);
    if ((size_t)length < n + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, n + 1);
    return NVML_SUCCESS;
}

void vgpu_nvml_driver_for_cuda(uint32_t cuda_version, char *out, size_t cap)
{
    /* Each CUDA driver API version first shipped with one driver branch (570: 12.8, 575: 12.9,
     * 580: 13.0). Below 12.8 we still say 570: Ollama drops CUDA 12 GPUs on branches below 570. */
    const char *v = cuda_version >= 13000 ? "580.95.05" : cuda_version >= 12090 ? "575.64.05" : "570.195.03";
    snprintf(out, cap, "%s", v);
}

nvmlDeviceArchitecture_t vgpu_nvml_architecture(int major, int minor)
{
    switch (major) {
    case 3: return NVML_DEVICE_ARCH_KEPLER;
    case 5: return NVML_DEVICE_ARCH_MAXWELL;
    case 6: return NVML_DEVICE_ARCH_PASCAL;
    case 7: return minor >= 5 ? NVML_DEVICE_ARCH_TURING : NVML_DEVICE_ARCH_VOLTA;
    case 8: return minor == 9 ? NVML_DEVICE_ARCH_ADA : NVML_DEVICE_ARCH_AMPERE;
    case 9: return NVML_DEVICE_ARCH_HOPPER;
    case 10:
    case 11:
    case 12: return NVML_DEVICE_ARCH_BLACKWELL;
    default: return NVML_DEVICE_ARCH_UNKNOWN;
    }
}

unsigned vgpu_nvml_cores_per_sm(int major, int minor)
{
    /* CUDA cores per multiprocessor, from NVIDIA's per-architecture tables. */
    switch (major) {
    case 3: return 192;
    case 5: return 128;
    case 6: return minor == 0 ? 64 : 128;
    case 7: return 64;
    case 8: return minor == 0 ? 64 : 128;
    default: return 128;
    }
}

nvmlBrandType_t vgpu_nvml_brand(const char *name)
{
    if (strstr(name, "GeForce") != NULL)
        return NVML_BRAND_GEFORCE;
    if (strstr(name, "TITAN") != NULL)
        return NVML_BRAND_TITAN;
    if (strstr(name, "Quadro") != NULL)
        return NVML_BRAND_QUADRO;
    if (strstr(name, "Tesla") != NULL)
        return NVML_BRAND_TESLA;
    if (strstr(name, "RTX") != NULL)
        return NVML_BRAND_NVIDIA_RTX;
    /* Data-centre GPUs (A100, H100, ...) report the plain NVIDIA brand on current drivers. */
    return NVML_BRAND_NVIDIA;
}
