/*
 * Device properties as rt_device_props (cudart 13, C++) and test_cudart12 (cudart 12.6, C, its own
 * cudaDeviceProp declaration) print and check them. Both print the same "prop <field>=<value>"
 * lines so the Java test can compare the runtimes field by field; both compare each field with
 * cudaDeviceGetAttribute, which catches a wrongly declared struct layout; and both check the
 * fields named by key=value arguments (the mock's configuration keys) exactly. A few values only
 * attributes report are added as properties (rt_props_add_attributes).
 */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"

/*
 * The fields both runtimes' cudaDeviceProp have (CUDA 13 dropped clockRate and a few others),
 * each with its cudaDeviceAttr number, or -1 where no attribute reports it.
 */
#define RT_PROP_FIELDS(X, XA)                                                          \
    X(totalGlobalMem, -1) X(sharedMemPerBlock, 8) X(regsPerBlock, 12) X(warpSize, 10)   \
    X(memPitch, 11) X(maxThreadsPerBlock, 1)                                            \
    XA(maxThreadsDim, 0, 2) XA(maxThreadsDim, 1, 3) XA(maxThreadsDim, 2, 4)             \
    XA(maxGridSize, 0, 5) XA(maxGridSize, 1, 6) XA(maxGridSize, 2, 7)                   \
    X(totalConstMem, 9) X(major, 75) X(minor, 76) X(textureAlignment, 14)               \
    X(texturePitchAlignment, 51) X(multiProcessorCount, 16) X(integrated, 18)           \
    X(canMapHostMemory, 19) X(surfaceAlignment, 30) X(concurrentKernels, 31)            \
    X(ECCEnabled, 32) X(pciBusID, 33) X(pciDeviceID, 34) X(pciDomainID, 50)             \
    X(tccDriver, 35) X(asyncEngineCount, 40) X(unifiedAddressing, 41)                   \
    X(memoryBusWidth, 37) X(l2CacheSize, 38) X(persistingL2CacheMaxSize, 108)           \
    X(maxThreadsPerMultiProcessor, 39) X(streamPrioritiesSupported, 78)                 \
    X(globalL1CacheSupported, 79) X(localL1CacheSupported, 80)                          \
    X(sharedMemPerMultiprocessor, 81) X(regsPerMultiprocessor, 82) X(managedMemory, 83) \
    X(isMultiGpuBoard, 84) X(multiGpuBoardGroupID, 85) X(hostNativeAtomicSupported, 86) \
    X(pageableMemoryAccess, 88) X(concurrentManagedAccess, 89)                          \
    X(computePreemptionSupported, 90) X(canUseHostPointerForRegisteredMem, 91)          \
    X(cooperativeLaunch, 95) X(sharedMemPerBlockOptin, 97)                              \
    X(pageableMemoryAccessUsesHostPageTables, 100) X(directManagedMemAccessFromHost, 101) \
    X(maxBlocksPerMultiProcessor, 106) X(accessPolicyMaxWindowSize, 109)                \
    X(reservedSharedMemPerBlock, 111) X(hostRegisterSupported, 99)                      \
    X(sparseCudaArraySupported, 112) X(hostRegisterReadOnlySupported, 113)              \
    X(timelineSemaphoreInteropSupported, 114) X(memoryPoolsSupported, 115)              \
    X(gpuDirectRDMASupported, 116) X(gpuDirectRDMAFlushWritesOptions, 117)              \
    X(gpuDirectRDMAWritesOrdering, 118) X(memoryPoolSupportedHandleTypes, 119)          \
    X(deferredMappingCudaArraySupported, 121) X(ipcEventSupported, 125)                 \
    X(clusterLaunch, 120) X(unifiedFunctionPointers, -1)

struct rt_prop {
    char name[48];
    long long value;
    int attr;
};

#define RT_MAX_PROPS 96

struct rt_props {
    char name[257];
    unsigned char uuid[16];
    int count;
    struct rt_prop p[RT_MAX_PROPS];
};

static inline void rt_props_add(struct rt_props *ps, const char *name, int index, long long value, int attr)
{
    if (ps->count == RT_MAX_PROPS) {
        fprintf(stderr, "rt_props: more than %d fields\n", RT_MAX_PROPS);
        exit(2);
    }
    struct rt_prop *p = &ps->p[ps->count++];
    if (index < 0) {
        snprintf(p->name, sizeof p->name, "%s", name);
    } else {
        snprintf(p->name, sizeof p->name, "%s[%d]", name, index);
    }
    p->value = value;
    p->attr = attr;
}

/* Fills ps from a cudaDeviceProp-like struct `prop` (either runtime's declaration). */
#define RT_PROPS_COLLECT(ps, prop)                                                               \
    do {                                                                                         \
        struct rt_props *ps_ = (ps);                                                             \
        const __typeof__(prop) *prop_ = &(prop);                                                 \
        memcpy(ps_->name, prop_->name, 256);                                                     \
        ps_->name[256] = 0;                                                                      \
        memcpy(ps_->uuid, &prop_->uuid, 16);                                                     \
        RT_PROP_FIELDS(RT_PROPS_X_, RT_PROPS_XA_)                                                \
    } while (0)
#define RT_PROPS_X_(field, attr) rt_props_add(ps_, #field, -1, (long long)prop_->field, attr);
#define RT_PROPS_XA_(field, i, attr) rt_props_add(ps_, #field, i, (long long)prop_->field[i], attr);

static inline const struct rt_prop *rt_props_find(const struct rt_props *ps, const char *name)
{
    for (int i = 0; i < ps->count; i++) {
        if (strcmp(ps->p[i].name, name) == 0) {
            return &ps->p[i];
        }
    }
    return NULL;
}

static inline void rt_props_print(const struct rt_props *ps)
{
    printf("prop name=%s\n", ps->name);
    printf("prop uuid=");
    for (int i = 0; i < 16; i++) {
        printf("%02x", ps->uuid[i]);
    }
    printf("\n");
    for (int i = 0; i < ps->count; i++) {
        printf("prop %s=%lld\n", ps->p[i].name, ps->p[i].value);
    }
}

/*
 * What CUDA 13's cudaDeviceProp no longer holds (the clock rates) or no cudaDeviceProp holds (the
 * PCI device and vendor id), read with cudaDeviceGetAttribute and added as properties, so both
 * runtimes print and check them alike. get_attr(attr, &value) returns 0 on success
 * (cudaDeviceGetAttribute for device 0).
 */
static inline void rt_props_add_attributes(struct rt_props *ps, int (*get_attr)(int, int *))
{
    static const struct {
        const char *name;
        int attr;
    } attrs[] = {{"clockRate", 13}, {"memoryClockRate", 36}, {"gpuPciDeviceId", 139}};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        int v = -12345;
        int rc = get_attr(attrs[i].attr, &v);
        check_count++;
        if (rc != 0) {
            check_failures++;
            fprintf(stderr, "FAIL cudaDeviceGetAttribute(%d) (%s): error %d\n", attrs[i].attr, attrs[i].name, rc);
        }
        /* Not cross-checked: the attribute is where the value came from. */
        rt_props_add(ps, attrs[i].name, -1, v, -1);
    }
}

/* get_attr(attr, &value) returns 0 on success (cudaDeviceGetAttribute for device 0). */
static inline void rt_props_cross_check(const struct rt_props *ps, int (*get_attr)(int, int *))
{
    for (int i = 0; i < ps->count; i++) {
        const struct rt_prop *p = &ps->p[i];
        if (p->attr < 0) {
            continue;
        }
        int v = -12345;
        int rc = get_attr(p->attr, &v);
        check_count++;
        if (rc != 0 || (long long)v != p->value) {
            check_failures++;
            fprintf(stderr, "FAIL property %s = %lld, but cudaDeviceGetAttribute(%d) = %d (error %d)\n", p->name,
                    p->value, p->attr, v, rc);
        }
    }
}

static inline int rt_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (dashes and prefix optional) into 16 bytes. */
static inline int rt_parse_uuid(const char *text, unsigned char out[16])
{
    if (strncmp(text, "GPU-", 4) == 0) {
        text += 4;
    }
    int n = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '-') {
            continue;
        }
        int hi = rt_hex(*c), lo = c[1] ? rt_hex(c[1]) : -1;
        if (hi < 0 || lo < 0 || n == 16) {
            return -1;
        }
        out[n++] = (unsigned char)(hi << 4 | lo);
        c++;
    }
    return n == 16 ? 0 : -1;
}

/*
 * Checks the key=value arguments against the properties. Keys are the mock backend's
 * configuration keys, so the test passes the values it configured.
 */
static inline void rt_props_expect(const struct rt_props *ps, int argc, char **argv)
{
    /* the field holds (value << shift) | low */
    static const struct {
        const char *key;
        const char *field;
        int shift;
        long long low;
    } keys[] = {
        {"memory.mib", "totalGlobalMem", 20, 0},
        {"sm.count", "multiProcessorCount", 0, 0},
        {"cc.major", "major", 0, 0},
        {"cc.minor", "minor", 0, 0},
        {"pci.domain", "pciDomainID", 0, 0},
        {"pci.bus", "pciBusID", 0, 0},
        {"pci.device", "pciDeviceID", 0, 0},
        {"l2.cache.bytes", "l2CacheSize", 0, 0},
        {"memory.bus.width", "memoryBusWidth", 0, 0},
        {"clock.khz", "clockRate", 0, 0},
        {"memory.clock.khz", "memoryClockRate", 0, 0},
        /* the device id in the high half, NVIDIA's vendor id (0x10de) in the low */
        {"pci.device.id", "gpuPciDeviceId", 16, 0x10de},
    };
    for (int a = 0; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        if (eq == NULL) {
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[a]), argv[a]);
        const char *value = eq + 1;
        check_count++;
        if (strcmp(key, "name") == 0) {
            if (strcmp(value, ps->name) != 0) {
                check_failures++;
                fprintf(stderr, "FAIL name: expected \"%s\", got \"%s\"\n", value, ps->name);
            }
            continue;
        }
        if (strcmp(key, "uuid") == 0) {
            unsigned char want[16];
            if (rt_parse_uuid(value, want) != 0 || memcmp(want, ps->uuid, 16) != 0) {
                check_failures++;
                fprintf(stderr, "FAIL uuid: expected %s\n", value);
            }
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            if (strcmp(key, keys[k].key) != 0) {
                continue;
            }
            known = 1;
            const struct rt_prop *p = rt_props_find(ps, keys[k].field);
            long long want = strtoll(value, NULL, 0) << keys[k].shift | keys[k].low;
            if (p == NULL || p->value != want) {
                check_failures++;
                fprintf(stderr, "FAIL %s (%s): expected %lld, got %lld\n", keys[k].field, key, want,
                        p ? p->value : -1LL);
            }
        }
        if (!known) {
            check_failures++;
            fprintf(stderr, "FAIL unknown expectation %s\n", argv[a]);
        }
    }
}
