/*
 * Ollama's native GPU probe, replayed: the driver and NVML calls `ollama gpu-discover` makes (era C,
 * 0.30+; reference/ollama-contract.md §2.5) and the NVML memory query of the era-B runner (§2.4),
 * through dlopen exactly as Ollama opens the libraries. Prints what Ollama derives, as key=value
 * lines OllamaIT checks, and the `inference compute` line Ollama would log.
 *
 * Exit status: 0 when every call Ollama needs succeeded and found at least one device.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct {
    unsigned char bytes[16];
} CUuuid;
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

enum { ATTR_INTEGRATED = 18, ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76 };

static int failed;

static void fail(const char *what, long rc)
{
    printf("error=%s rc=%ld\n", what, rc);
    failed = 1;
}

/* Ollama's order: the versioned soname, then the development link. */
static void *open_first(const char *const *names)
{
    for (; *names != NULL; names++) {
        void *h = dlopen(*names, RTLD_NOW | RTLD_LOCAL);
        if (h != NULL)
            return h;
        printf("dlopen_failed=%s: %s\n", *names, dlerror());
    }
    return NULL;
}

#define REQUIRE(lib, var, name)                                                                     \
    do {                                                                                            \
        *(void **)&(var) = dlsym((lib), (name));                                                    \
        if ((var) == NULL) {                                                                        \
            printf("missing_symbol=%s\n", (name));                                                  \
            failed = 1;                                                                             \
        }                                                                                           \
    } while (0)

/* era C, discover/native_probe_linux.go probeNVIDIADriverMajorLinux: 0 when NVML is unusable. */
static int nvidia_driver_major(void)
{
    static const char *const names[] = {"libnvidia-ml.so.1", "libnvidia-ml.so", NULL};
    void *nvml = open_first(names);
    if (nvml == NULL)
        return 0;
    nvmlReturn_t (*init)(void), (*version)(char *, unsigned), (*shutdown)(void);
    REQUIRE(nvml, init, "nvmlInit_v2");
    REQUIRE(nvml, version, "nvmlSystemGetDriverVersion");
    REQUIRE(nvml, shutdown, "nvmlShutdown");
    if (init == NULL || version == NULL || shutdown == NULL)
        return 0;
    nvmlReturn_t rc = init();
    if (rc != 0) {
        fail("nvmlInit_v2", rc);
        return 0;
    }
    char text[80] = "";
    rc = version(text, sizeof text);
    shutdown();
    if (rc != 0) {
        fail("nvmlSystemGetDriverVersion", rc);
        return 0;
    }
    printf("nvidia_driver_version=%s\n", text);
    return atoi(text); /* the text before the first '.' */
}

struct device {
    char name[128];
    int cc_major, cc_minor, integrated;
    size_t total;
    char pci_id[32];
    char uuid[64];
};

/* era B, ml/backend/ggml/ggml/src/mem_nvml.cpp: NVML memory by the UUID string CUDA reported. */
static void era_b_memory(const struct device *devs, int count)
{
    static const char *const names[] = {"/usr/lib/wsl/lib/libnvidia-ml.so.1", "libnvidia-ml.so.1", NULL};
    void *nvml = NULL;
    for (const char *const *n = names; *n != NULL && nvml == NULL; n++)
        nvml = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
    if (nvml == NULL) {
        fail("eraB_dlopen_libnvidia-ml", 0);
        return;
    }
    nvmlReturn_t (*init)(void), (*shutdown)(void), (*by_uuid)(const char *, nvmlDevice_t *),
        (*memory)(nvmlDevice_t, nvmlMemory_t *), (*name)(nvmlDevice_t, char *, unsigned);
    const char *(*error)(nvmlReturn_t);
    REQUIRE(nvml, init, "nvmlInit_v2");
    REQUIRE(nvml, shutdown, "nvmlShutdown");
    REQUIRE(nvml, by_uuid, "nvmlDeviceGetHandleByUUID");
    REQUIRE(nvml, memory, "nvmlDeviceGetMemoryInfo");
    REQUIRE(nvml, name, "nvmlDeviceGetName");
    /* Called without a NULL check when nvmlInit_v2 fails, so it must exist too. */
    REQUIRE(nvml, error, "nvmlErrorString");
    if (!init || !shutdown || !by_uuid || !memory || !name || !error)
        return;
    /* Not called by Ollama: what the identity checks compare with CUDA's PCI id and UUID. */
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *), (*uuid_of)(nvmlDevice_t, char *, unsigned);
    REQUIRE(nvml, pci, "nvmlDeviceGetPciInfo_v3");
    REQUIRE(nvml, uuid_of, "nvmlDeviceGetUUID");
    for (int i = 0; i < count; i++) {
        nvmlReturn_t rc = init();
        if (rc != 0) {
            printf("eraB_error=%s\n", error(rc));
            fail("eraB_nvmlInit_v2", rc);
            return;
        }
        nvmlDevice_t h;
        nvmlMemory_t m;
        char n[96] = "";
        if ((rc = by_uuid(devs[i].uuid, &h)) != 0)
            fail("eraB_nvmlDeviceGetHandleByUUID", rc);
        else if ((rc = memory(h, &m)) != 0)
            fail("eraB_nvmlDeviceGetMemoryInfo", rc); /* NOT_SUPPORTED (3) would make Ollama report host RAM */
        else if ((rc = name(h, n, sizeof n)) != 0)
            fail("eraB_nvmlDeviceGetName", rc);
        else
            printf("eraB[%d] uuid=%s nvml_name=%s nvml_total=%llu nvml_free=%llu nvml_used=%llu\n", i, devs[i].uuid, n,
                   m.total, m.free, m.used);
        nvmlPciInfo_t p;
        char u[96];
        if (rc == 0 && pci != NULL && uuid_of != NULL && pci(h, &p) == 0 && uuid_of(h, u, sizeof u) == 0)
            printf("nvml[%d] uuid=%s bus_id_legacy=%s bus_id=%s\n", i, u, p.busIdLegacy, p.busId);
        shutdown();
    }
}

int main(void)
{
    static const char *const cuda_names[] = {"libcuda.so.1", "libcuda.so", NULL};
    void *cuda = open_first(cuda_names);
    if (cuda == NULL) {
        printf("device_count=0\n");
        return 1;
    }
    CUresult (*init)(unsigned), (*driver)(int *), (*count)(int *), (*get)(CUdevice *, int),
        (*attribute)(int *, int, CUdevice), (*name)(char *, int, CUdevice), (*total_v2)(size_t *, CUdevice),
        (*total_v1)(unsigned *, CUdevice), (*uuid)(CUuuid *, CUdevice);
    REQUIRE(cuda, init, "cuInit");
    REQUIRE(cuda, driver, "cuDriverGetVersion");
    REQUIRE(cuda, count, "cuDeviceGetCount");
    REQUIRE(cuda, get, "cuDeviceGet");
    REQUIRE(cuda, attribute, "cuDeviceGetAttribute");
    REQUIRE(cuda, name, "cuDeviceGetName");
    REQUIRE(cuda, uuid, "cuDeviceGetUuid");
    *(void **)&total_v2 = dlsym(cuda, "cuDeviceTotalMem_v2");
    *(void **)&total_v1 = dlsym(cuda, "cuDeviceTotalMem");
    if (total_v2 == NULL && total_v1 == NULL) {
        printf("missing_symbol=cuDeviceTotalMem_v2\n");
        failed = 1;
    }
    /* Optional for Ollama: without it the PCI id is lost, nothing fails. */
    CUresult (*pci)(char *, int, CUdevice);
    *(void **)&pci = dlsym(cuda, "cuDeviceGetPCIBusId");
    if (failed)
        return 1;

    CUresult rc = init(0);
    if (rc != 0) {
        fail("cuInit", rc);
        printf("device_count=0\n");
        return 1;
    }
    int version = 0;
    if ((rc = driver(&version)) != 0)
        fail("cuDriverGetVersion", rc);
    printf("cuda_driver_version=%d\n", version);
    int major = nvidia_driver_major();
    printf("nvidia_driver_major=%d\n", major);
    int n = 0;
    if ((rc = count(&n)) != 0)
        fail("cuDeviceGetCount", rc);
    printf("device_count=%d\n", n);
    struct device *devs = calloc((size_t)n + 1, sizeof *devs);
    for (int i = 0; i < n; i++) {
        struct device *d = &devs[i];
        CUdevice dev;
        CUuuid u;
        if ((rc = get(&dev, i)) != 0) {
            fail("cuDeviceGet", rc);
            continue;
        }
        if ((rc = attribute(&d->cc_major, ATTR_CC_MAJOR, dev)) || (rc = attribute(&d->cc_minor, ATTR_CC_MINOR, dev)) ||
            (rc = attribute(&d->integrated, ATTR_INTEGRATED, dev)))
            fail("cuDeviceGetAttribute", rc);
        if ((rc = name(d->name, sizeof d->name, dev)) != 0)
            fail("cuDeviceGetName", rc);
        if (total_v2 != NULL) {
            rc = total_v2(&d->total, dev);
        } else {
            unsigned t = 0;
            rc = total_v1(&t, dev);
            d->total = t;
        }
        if (rc != 0)
            fail("cuDeviceTotalMem", rc);
        if (pci != NULL && pci(d->pci_id, sizeof d->pci_id, dev) == 0)
            for (char *p = d->pci_id; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if ((rc = uuid(&u, dev)) != 0)
            fail("cuDeviceGetUuid", rc);
        const unsigned char *b = u.bytes;
        snprintf(d->uuid, sizeof d->uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        printf("device[%d] name=%s cc=%d.%d integrated=%d total=%zu pci_id=%s uuid=%s\n", i, d->name, d->cc_major,
               d->cc_minor, d->integrated, d->total, d->pci_id, d->uuid);
    }
    era_b_memory(devs, n);

    /*
     * discover/cuda_compat.go filterOldCUDADriver (cuda_v12 dir, runtime 12.8): a branch below 550
     * drops every device, below 570 those with CC < 7. NVML missing (0) only warns.
     */
    for (int i = 0; i < n; i++) {
        const struct device *d = &devs[i];
        const char *cuda_v12 = major == 0 ? "kept (no NVML driver version, warning only)"
                             : major < 550 ? "dropped (NVIDIA driver too old)"
                             : major < 570 && d->cc_major < 7 ? "dropped (NVIDIA driver too old for CC < 7)"
                                                               : "kept";
        printf("cuda_v12[%d]=%s\n", i, cuda_v12);
        /* discover/types.go LogDetails, as `ollama serve` would log the device. */
        printf("ollama: msg=\"inference compute\" id=%s library=CUDA compute=%d.%d name=CUDA%d description=\"%s\" "
               "libdirs=ollama,cuda_v12 driver=%d.%d pci_id=%s type=%s total=\"%.1f GiB\"\n",
               d->uuid, d->cc_major, d->cc_minor, i, d->name, version / 1000, version % 1000 / 10, d->pci_id,
               d->integrated ? "iGPU" : "discrete", (double)d->total / (1 << 30));
    }
    free(devs);
    return failed || n == 0 ? 1 : 0;
}
