/*
 * vgpu's libnvidia-ml.so.1: NVML answered from the vgpu service, so that tools and runtimes that
 * ask NVML (Ollama's driver-branch check and memory queries, monitoring tools, nvidia-smi-like
 * front ends) see the same devices the CUDA shim reports.
 *
 * One source of truth: the devices are the service's DEVICE_LIST, fetched at nvmlInit, and memory
 * is a live MEM_GET_INFO. Like NVIDIA's NVML, CUDA_VISIBLE_DEVICES is ignored. Nothing runs at load
 * time; the first call sets the library up once (pthread_once). nvmlInit/nvmlShutdown are reference
 * counted; the last nvmlShutdown closes the session, so a later nvmlInit reconnects (the service may
 * have restarted in between). A forked child keeps its handles and opens its own session on its next
 * call that needs the service.
 *
 * Values the service does not model (temperature, power, clocks, utilisation) are fixed, plausible
 * figures of an idle data-centre GPU; where a real data-centre driver says NOT_SUPPORTED (fans, MIG
 * off), so do we.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "nvml_format.h"
#include "vgpu.h"
#include "vgpu_nvml.h"

#define NVML_API __attribute__((visibility("default")))
#define DEFAULT_SOCKET "/run/vgpu/vgpu.sock"
#define MAX_DEVICES 64
#define MAX_SESSIONS 4096
#define NO_MIG_ID 0xFFFFFFFFu

/* What an idle data-centre GPU reports; the service does not model these. */
#define IDLE_TEMPERATURE_C 32
#define SHUTDOWN_TEMPERATURE_C 92
#define SLOWDOWN_TEMPERATURE_C 89
#define GPU_MAX_TEMPERATURE_C 87
#define MEM_MAX_TEMPERATURE_C 95
#define IDLE_POWER_MW 72000u
#define POWER_LIMIT_MW 700000u
#define MIN_POWER_LIMIT_MW 200000u
#define PCIE_GENERATION 5
#define PCIE_WIDTH 16
#define PCIE_SPEED_MBPS 32000
#define SAMPLING_PERIOD_US 167000

struct vgpu_config vgpu_cfg;

struct nvmlDevice_st {
    unsigned index;
    int service_ordinal;
    char name[256];
    uint8_t uuid[16];
    char uuid_text[VGPU_NVML_UUID_LEN + 1];
    uint64_t total_memory;
    int32_t attr[CU_DEVICE_ATTRIBUTE_MAX];
};

static struct nvmlDevice_st devices[MAX_DEVICES];
static unsigned device_count;
/* nvmlInit minus nvmlShutdown calls; the device table is valid while it is positive. */
static atomic_uint init_count;
static uint32_t cuda_version;
static char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
static char backend_id[64];
static unsigned service_minor;

/*
 * Readers: every call that talks to the service. Writer: nvmlInit/nvmlShutdown and fork, which
 * open, close or reset the connection and must not do so under a call in flight.
 */
static pthread_rwlock_t state_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_rwlock_wrlock(&state_lock);
    vgpu_conn_lock();
}

static void fork_parent(void)
{
    vgpu_conn_unlock();
    pthread_rwlock_unlock(&state_lock);
}

static void fork_child(void)
{
    /* The parent's session is not ours; the next call that needs the service opens one. */
    vgpu_conn_after_fork_child();
    /* Not unlock: glibc tells a writer by its thread id, which the child's thread does not share. */
    pthread_rwlock_init(&state_lock, NULL);
}

static void do_setup(void)
{
    const char *sock = getenv("VGPU_SOCKET");
    snprintf(vgpu_cfg.socket_path, sizeof vgpu_cfg.socket_path, "%s", sock && *sock ? sock : DEFAULT_SOCKET);
    /* NVML queries are rare: block for replies rather than spin, and bulk copies never happen. */
    vgpu_cfg.spin_ns = 0;
    vgpu_cfg.shm_size = 0;
    vgpu_cfg.inline_max = 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    LOG_DEBUG("vgpu nvml: socket %s", vgpu_cfg.socket_path);
}

void vgpu_setup(void)
{
    pthread_once(&setup_once, do_setup);
}

static int initialized(void)
{
    return atomic_load_explicit(&init_count, memory_order_acquire) > 0;
}

static nvmlReturn_t from_cuda(CUresult rc)
{
    switch (rc) {
    case CUDA_SUCCESS: return NVML_SUCCESS;
    case CUDA_ERROR_DEVICE_UNAVAILABLE: return NVML_ERROR_GPU_IS_LOST;
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: return NVML_ERROR_LIB_RM_VERSION_MISMATCH;
    case CUDA_ERROR_MPS_MAX_CLIENTS_REACHED: return NVML_ERROR_INSUFFICIENT_RESOURCES;
    case CUDA_ERROR_NOT_PERMITTED: return NVML_ERROR_NO_PERMISSION;
    case CUDA_ERROR_OUT_OF_MEMORY: return NVML_ERROR_MEMORY;
    case CUDA_ERROR_INVALID_DEVICE: return NVML_ERROR_INVALID_ARGUMENT;
    default: return NVML_ERROR_UNKNOWN;
    }
}

/* ---------------------------------------------------------------- init and shutdown */

static CUresult load_devices_locked(void)
{
    size_t cap = MAX_DEVICES * sizeof(struct vgpu_device_rec);
    struct vgpu_device_rec *recs = malloc(cap);
    if (recs == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct vgpu_device_list_rep rep;
    size_t got = 0;
    CUresult rc = vgpu_call_locked(VGPU_OP_DEVICE_LIST, NULL, 0, NULL, 0, &rep, sizeof rep, recs, cap, &got);
    unsigned n = 0;
    if (rc == CUDA_SUCCESS) {
        n = (unsigned)(got / sizeof *recs);
        if (n > rep.count)
            n = rep.count;
    } else if (rc == CUDA_ERROR_NO_DEVICE) {
        /* No backend: NVML works and finds no GPU, as on a machine whose driver sees none. */
        LOG_INFO("the vgpu service has no active backend: NVML sees no device");
        rc = CUDA_SUCCESS;
    }
    for (unsigned i = 0; i < n; i++) {
        struct nvmlDevice_st *d = &devices[i];
        memset(d, 0, sizeof *d);
        d->index = i;
        d->service_ordinal = (int)i;
        memcpy(d->name, recs[i].name, sizeof d->name);
        d->name[sizeof d->name - 1] = '\0';
        memcpy(d->uuid, recs[i].uuid, 16);
        vgpu_nvml_format_uuid(d->uuid, d->uuid_text);
        d->total_memory = recs[i].total_memory;
        memcpy(d->attr, recs[i].attributes, sizeof d->attr);
    }
    free(recs);
    if (rc == CUDA_SUCCESS)
        device_count = n;
    return rc;
}

static void load_backend_locked(void)
{
    struct vgpu_service_status_rep st;
    static char message[4096];
    size_t got;
    backend_id[0] = '\0';
    if (vgpu_call_locked(VGPU_OP_SERVICE_STATUS, NULL, 0, NULL, 0, &st, sizeof st, message, sizeof message, &got) ==
        CUDA_SUCCESS)
        snprintf(backend_id, sizeof backend_id, "%.*s", (int)sizeof st.backend, st.backend);
}

static nvmlReturn_t attach(void)
{
    vgpu_conn_lock();
    CUresult rc = vgpu_conn_ensure_locked();
    int connected = rc == CUDA_SUCCESS;
    if (connected)
        rc = load_devices_locked();
    if (rc == CUDA_SUCCESS) {
        load_backend_locked();
        cuda_version = vgpu_session()->driver_version;
        service_minor = vgpu_session()->minor;
    }
    vgpu_conn_unlock();
    if (rc != CUDA_SUCCESS) {
        /* conn.c has already said in one line why it could not connect or shake hands. */
        if (connected || rc == CUDA_ERROR_MPS_MAX_CLIENTS_REACHED)
            LOG_ERROR("nvmlInit: the vgpu service at %s refused the session or its device list (CUresult %d)",
                      vgpu_cfg.socket_path, rc);
        /* Drop the half-open session so that a later nvmlInit starts afresh. */
        vgpu_conn_close();
        return rc == CUDA_ERROR_DEVICE_UNAVAILABLE ? NVML_ERROR_DRIVER_NOT_LOADED : from_cuda(rc);
    }
    const char *v = getenv("VGPU_NVML_DRIVER_VERSION");
    if (v != NULL && *v != '\0')
        snprintf(driver_version, sizeof driver_version, "%s", v);
    else
        vgpu_nvml_driver_for_cuda(cuda_version, driver_version, sizeof driver_version);
    LOG_INFO("nvml: %u device(s), CUDA %u, driver %s, backend %s", device_count, cuda_version, driver_version,
             backend_id);
    return NVML_SUCCESS;
}

static nvmlReturn_t init(unsigned int flags)
{
    (void)flags; /* NO_GPUS and NO_ATTACH change nothing: we never fail for want of GPUs */
    vgpu_setup();
    pthread_rwlock_wrlock(&state_lock);
    nvmlReturn_t rc = NVML_SUCCESS;
    if (atomic_load(&init_count) == 0)
        rc = attach();
    if (rc == NVML_SUCCESS)
        atomic_fetch_add_explicit(&init_count, 1, memory_order_release);
    pthread_rwlock_unlock(&state_lock);
    return rc;
}

NVML_API nvmlReturn_t nvmlInit_v2(void)
{
    return init(0);
}

/* The NVML 4.304 ABI, which failed on inaccessible GPUs; there are none here. */
NVML_API nvmlReturn_t nvmlInit(void)
{
    return init(0);
}

NVML_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    return init(flags);
}

NVML_API nvmlReturn_t nvmlShutdown(void)
{
    vgpu_setup();
    pthread_rwlock_wrlock(&state_lock);
    nvmlReturn_t rc = NVML_SUCCESS;
    unsigned n = atomic_load(&init_count);
    if (n == 0) {
        rc = NVML_ERROR_UNINITIALIZED;
    } else {
        atomic_store_explicit(&init_count, n - 1, memory_order_release);
        /* Ends the session: an NVML user must not hold a service session between queries. */
        if (n == 1)
            vgpu_conn_close();
    }
    pthread_rwlock_unlock(&state_lock);
    return rc;
}

NVML_API const char *nvmlErrorString(nvmlReturn_t result)
{
    return vgpu_nvml_error_string(result);
}

/* The answer of every generated stub. Debug level: monitoring tools probe dozens of these. */
int vgpu_nvml_unsupported(const char *name);
int vgpu_nvml_unsupported(const char *name)
{
    LOG_DEBUG("%s is not supported by vgpu: NVML_ERROR_NOT_SUPPORTED", name);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* ---------------------------------------------------------------- helpers */

static nvmlReturn_t device_of(nvmlDevice_t h, struct nvmlDevice_st **out)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    /* A handle is a pointer into our table; anything else is rejected without dereferencing it. */
    uintptr_t off = (uintptr_t)h - (uintptr_t)devices;
    if (h == NULL || (uintptr_t)h < (uintptr_t)devices || off % sizeof devices[0] != 0 ||
        off / sizeof devices[0] >= device_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *out = h;
    return NVML_SUCCESS;
}

#define GET_DEVICE(h, d)                                                                                       \
    struct nvmlDevice_st *d;                                                                                   \
    do {                                                                                                       \
        nvmlReturn_t get_rc_ = device_of((h), &d);                                                             \
        if (get_rc_ != NVML_SUCCESS)                                                                           \
            return get_rc_;                                                                                    \
    } while (0)

#define OUT_ARG(p)                                                                                             \
    do {                                                                                                       \
        if ((p) == NULL)                                                                                       \
            return NVML_ERROR_INVALID_ARGUMENT;                                                                \
    } while (0)

/* A request to the service on behalf of an initialised library. */
static nvmlReturn_t service_call(uint16_t op, const void *req, size_t req_len, void *rep, size_t rep_len,
                                 void *tail, size_t tail_cap, size_t *tail_len)
{
    pthread_rwlock_rdlock(&state_lock);
    nvmlReturn_t rc = NVML_ERROR_UNINITIALIZED;
    if (initialized())
        rc = from_cuda(vgpu_call(op, req, req_len, NULL, 0, rep, rep_len, tail, tail_cap, tail_len));
    pthread_rwlock_unlock(&state_lock);
    return rc;
}

static int attr(const struct nvmlDevice_st *d, int a)
{
    return d->attr[a];
}

/* ---------------------------------------------------------------- system */

NVML_API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    return vgpu_nvml_copy_string(version, length, driver_version);
}

NVML_API nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    /* NVML's version is its API major (12 for CUDA 12 drivers, 13 from 580) and the driver version. */
    char text[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE + 16];
    snprintf(text, sizeof text, "%u.%s", cuda_version >= 13000 ? 13u : 12u, driver_version);
    return vgpu_nvml_copy_string(version, length, text);
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    OUT_ARG(cudaDriverVersion);
    *cudaDriverVersion = (int)cuda_version;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

/* Read from /proc like NVIDIA's: the executable as started (argv[0]), else the command name. */
NVML_API nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (name == NULL || length == 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    char path[64], buf[4096];
    ssize_t n = -1;
    static const char *files[] = {"cmdline", "comm"};
    for (int i = 0; i < 2 && n <= 0; i++) {
        snprintf(path, sizeof path, "/proc/%u/%s", pid, files[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    if (n <= 0)
        return NVML_ERROR_NOT_FOUND;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    /* Longer names are cut, as NVML does, rather than refused. */
    snprintf(name, length, "%s", buf);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlUnitGetCount(unsigned int *unitCount)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    OUT_ARG(unitCount);
    *unitCount = 0;
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- device lookup */

NVML_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    OUT_ARG(deviceCount);
    *deviceCount = device_count;
    return NVML_SUCCESS;
}

/* The v1 ABI counted only devices the caller may use; that is all of them here. */
NVML_API nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || index >= device_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    uint8_t want[16];
    if (uuid == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (vgpu_nvml_parse_uuid(uuid, want) != 0)
        return NVML_ERROR_NOT_FOUND;
    for (unsigned i = 0; i < device_count; i++) {
        if (memcmp(devices[i].uuid, want, 16) == 0) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    unsigned domain, bus, dev;
    if (pciBusId == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (vgpu_nvml_parse_bus_id(pciBusId, &domain, &bus, &dev) != 0)
        return NVML_ERROR_NOT_FOUND;
    for (unsigned i = 0; i < device_count; i++) {
        const struct nvmlDevice_st *d = &devices[i];
        if ((unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID) == domain &&
            (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID) == bus &&
            (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID) == dev) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByPciBusId_v2(pciBusId, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    GET_DEVICE(device, d);
    OUT_ARG(index);
    *index = d->index;
    return NVML_SUCCESS;
}

/* /dev/nvidiaN: the index, as on a machine whose GPUs were probed in bus order. */
NVML_API nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    GET_DEVICE(device, d);
    OUT_ARG(minorNumber);
    *minorNumber = d->index;
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- identity */

NVML_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    GET_DEVICE(device, d);
    return vgpu_nvml_copy_string(name, length, d->name);
}

NVML_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    GET_DEVICE(device, d);
    return vgpu_nvml_copy_string(uuid, length, d->uuid_text);
}

NVML_API nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type)
{
    GET_DEVICE(device, d);
    OUT_ARG(type);
    *type = vgpu_nvml_brand(d->name);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch)
{
    GET_DEVICE(device, d);
    OUT_ARG(arch);
    *arch = vgpu_nvml_architecture(attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                                   attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    GET_DEVICE(device, d);
    if (major == NULL || minor == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    *minor = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetNumGpuCores(nvmlDevice_t device, unsigned int *numCores)
{
    GET_DEVICE(device, d);
    OUT_ARG(numCores);
    *numCores = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT) *
                vgpu_nvml_cores_per_sm(attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                                       attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
    return NVML_SUCCESS;
}

static void fill_pci(const struct nvmlDevice_st *d, nvmlPciInfo_t *pci)
{
    memset(pci, 0, sizeof *pci);
    pci->domain = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
    pci->bus = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
    pci->device = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
    pci->pciDeviceId = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID);
    pci->pciSubSystemId = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GPU_PCI_SUBSYSTEM_ID);
    vgpu_nvml_format_bus_id(pci->domain, pci->bus, pci->device, 0, pci->busId, sizeof pci->busId);
    vgpu_nvml_format_bus_id(pci->domain, pci->bus, pci->device, 1, pci->busIdLegacy, sizeof pci->busIdLegacy);
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    GET_DEVICE(device, d);
    OUT_ARG(pci);
    fill_pci(d, pci);
    return NVML_SUCCESS;
}

/* The older ABIs share the structure; v1 filled busId in the legacy 4-digit form. */
NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    nvmlReturn_t rc = nvmlDeviceGetPciInfo_v3(device, pci);
    if (rc == NVML_SUCCESS)
        snprintf(pci->busId, sizeof pci->busId, "%s", pci->busIdLegacy);
    return rc;
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfoExt(nvmlDevice_t device, nvmlPciInfoExt_t *pci)
{
    GET_DEVICE(device, d);
    OUT_ARG(pci);
    if (pci->version != nvmlPciInfoExt_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    nvmlPciInfo_t p;
    fill_pci(d, &p);
    pci->domain = p.domain;
    pci->bus = p.bus;
    pci->device = p.device;
    pci->pciDeviceId = p.pciDeviceId;
    pci->pciSubSystemId = p.pciSubSystemId;
    pci->baseClass = 0x03; /* display controller */
    pci->subClass = 0x02;  /* 3D controller, as compute GPUs without display outputs report */
    memcpy(pci->busId, p.busId, sizeof pci->busId);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *maxLinkGen)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(maxLinkGen);
    *maxLinkGen = PCIE_GENERATION;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetGpuMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *maxLinkGenDevice)
{
    return nvmlDeviceGetMaxPcieLinkGeneration(device, maxLinkGenDevice);
}

NVML_API nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *currLinkGen)
{
    return nvmlDeviceGetMaxPcieLinkGeneration(device, currLinkGen);
}

NVML_API nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *maxLinkWidth)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(maxLinkWidth);
    *maxLinkWidth = PCIE_WIDTH;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *currLinkWidth)
{
    return nvmlDeviceGetMaxPcieLinkWidth(device, currLinkWidth);
}

NVML_API nvmlReturn_t nvmlDeviceGetPcieSpeed(nvmlDevice_t device, unsigned int *pcieSpeed)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(pcieSpeed);
    *pcieSpeed = PCIE_SPEED_MBPS;
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- memory */

static nvmlReturn_t mem_info(struct nvmlDevice_st *d, uint64_t *free_bytes, uint64_t *total)
{
    struct vgpu_mem_get_info_req req = {.device = (uint32_t)d->service_ordinal};
    struct vgpu_mem_get_info_rep rep;
    nvmlReturn_t rc = service_call(VGPU_OP_MEM_GET_INFO, &req, sizeof req, &rep, sizeof rep, NULL, 0, NULL);
    if (rc != NVML_SUCCESS)
        return rc;
    *free_bytes = rep.free <= rep.total ? rep.free : rep.total;
    *total = rep.total;
    return NVML_SUCCESS;
}

/* Live figures from the backend, never NOT_SUPPORTED: Ollama then reports host RAM as VRAM. */
NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    GET_DEVICE(device, d);
    OUT_ARG(memory);
    uint64_t free_bytes, total;
    nvmlReturn_t rc = mem_info(d, &free_bytes, &total);
    if (rc != NVML_SUCCESS)
        return rc;
    memory->total = total;
    memory->free = free_bytes;
    memory->used = total - free_bytes;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    GET_DEVICE(device, d);
    OUT_ARG(memory);
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    uint64_t free_bytes, total;
    nvmlReturn_t rc = mem_info(d, &free_bytes, &total);
    if (rc != NVML_SUCCESS)
        return rc;
    /* The service reserves nothing, so v2's "used" (allocations only) equals v1's. */
    memory->total = total;
    memory->reserved = 0;
    memory->free = free_bytes;
    memory->used = total - free_bytes;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int *busWidth)
{
    GET_DEVICE(device, d);
    OUT_ARG(busWidth);
    *busWidth = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- processes */

/*
 * The sessions that hold a context or memory on this device of the active backend, with what each
 * holds there (SESSION_DEVICES): a process using devices 0 and 1 is listed under both, each time
 * with that device's share, as NVIDIA's driver lists it.
 */
static nvmlReturn_t processes(struct nvmlDevice_st *d, unsigned *count, void *infos, int version)
{
    if (count == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* A service older than protocol 1.1 cannot say which device a session uses: no guessing. */
    if (service_minor < 1)
        return NVML_ERROR_NOT_SUPPORTED;
    size_t cap = MAX_SESSIONS * sizeof(struct vgpu_session_device_rec);
    struct vgpu_session_device_rec *recs = malloc(cap);
    if (recs == NULL)
        return NVML_ERROR_MEMORY;
    size_t got = 0;
    nvmlReturn_t rc = service_call(VGPU_OP_SESSION_DEVICES, NULL, 0, NULL, 0, recs, cap, &got);
    if (rc != NVML_SUCCESS) {
        free(recs);
        return rc;
    }
    unsigned n = 0, capacity = infos == NULL ? 0 : *count;
    for (size_t i = 0; i < got / sizeof *recs; i++) {
        const struct vgpu_session_device_rec *s = &recs[i];
        if (s->device != (uint32_t)d->service_ordinal)
            continue;
        /* Sessions left on a backend that is no longer active use other devices than ours. */
        if (backend_id[0] != '\0' && strncmp(s->backend, backend_id, sizeof s->backend) != 0)
            continue;
        if (n < capacity) {
            if (version == 1) {
                nvmlProcessInfo_v1_t *p = (nvmlProcessInfo_v1_t *)infos + n;
                p->pid = s->pid;
                p->usedGpuMemory = s->memory_used;
            } else {
                /* v2 and v3 share one layout (nvmlProcessInfo_v2_t is nvmlProcessInfo_t). */
                nvmlProcessInfo_t *p = (nvmlProcessInfo_t *)infos + n;
                p->pid = s->pid;
                p->usedGpuMemory = s->memory_used;
                p->gpuInstanceId = NO_MIG_ID;
                p->computeInstanceId = NO_MIG_ID;
            }
        }
        n++;
    }
    free(recs);
    rc = n > capacity ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    *count = n;
    return rc;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_t *infos)
{
    GET_DEVICE(device, d);
    return processes(d, infoCount, infos, 3);
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_v2_t *infos)
{
    GET_DEVICE(device, d);
    return processes(d, infoCount, infos, 2);
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                           nvmlProcessInfo_v1_t *infos)
{
    GET_DEVICE(device, d);
    return processes(d, infoCount, infos, 1);
}

/* No graphics and no MPS clients exist on a vgpu device. */
static nvmlReturn_t no_processes(nvmlDevice_t device, unsigned int *infoCount)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(infoCount);
    *infoCount = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                               nvmlProcessInfo_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                               nvmlProcessInfo_v2_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_v1_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                                 nvmlProcessInfo_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                                 nvmlProcessInfo_v2_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_v1_t *infos)
{
    (void)infos;
    return no_processes(device, infoCount);
}

/* ---------------------------------------------------------------- modes */

static nvmlReturn_t enable_state(nvmlDevice_t device, nvmlEnableState_t *out, nvmlEnableState_t value)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(out);
    *out = value;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    /* The service keeps the device initialised between clients, which is what persistence means. */
    return enable_state(device, mode, NVML_FEATURE_ENABLED);
}

NVML_API nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, nvmlEnableState_t *display)
{
    return enable_state(device, display, NVML_FEATURE_DISABLED);
}

NVML_API nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, nvmlEnableState_t *isActive)
{
    return enable_state(device, isActive, NVML_FEATURE_DISABLED);
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerManagementMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    return enable_state(device, mode, NVML_FEATURE_ENABLED);
}

NVML_API nvmlReturn_t nvmlDeviceGetAccountingMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    return enable_state(device, mode, NVML_FEATURE_DISABLED);
}

NVML_API nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current, nvmlEnableState_t *pending)
{
    GET_DEVICE(device, d);
    if (current == NULL || pending == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *current = *pending = attr(d, CU_DEVICE_ATTRIBUTE_ECC_ENABLED) ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                                  nvmlEccCounterType_t counterType, unsigned long long *eccCounts)
{
    GET_DEVICE(device, d);
    (void)errorType;
    (void)counterType;
    OUT_ARG(eccCounts);
    if (!attr(d, CU_DEVICE_ATTRIBUTE_ECC_ENABLED))
        return NVML_ERROR_NOT_SUPPORTED;
    *eccCounts = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows,
                                                unsigned int *isPending, unsigned int *failureOccurred)
{
    GET_DEVICE(device, d);
    (void)d;
    if (corrRows == NULL || uncRows == NULL || isPending == NULL || failureOccurred == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *corrRows = *uncRows = *isPending = *failureOccurred = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, nvmlComputeMode_t *mode)
{
    GET_DEVICE(device, d);
    OUT_ARG(mode);
    *mode = (nvmlComputeMode_t)attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_MODE);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int *multiGpuBool)
{
    GET_DEVICE(device, d);
    OUT_ARG(multiGpuBool);
    *multiGpuBool = attr(d, CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD) != 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetBoardId(nvmlDevice_t device, unsigned int *boardId)
{
    GET_DEVICE(device, d);
    OUT_ARG(boardId);
    /* Unique per board, like the real one: the PCI location. */
    *boardId = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID) << 16 |
               (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID) << 8 | (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(isMigDevice);
    *isMigDevice = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t device, nvmlGpuVirtualizationMode_t *pVirtualMode)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(pVirtualMode);
    /* "None" keeps tools on their bare-metal paths; the vGPU modes make them ask for licences. */
    *pVirtualMode = NVML_GPU_VIRTUALIZATION_MODE_NONE;
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- sensors, power, clocks */

NVML_API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                               unsigned int *temp)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(temp);
    if (sensorType != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    *temp = IDLE_TEMPERATURE_C;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_t *temperature)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(temperature);
    if (temperature->version != nvmlTemperature_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (temperature->sensorType != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    temperature->temperature = IDLE_TEMPERATURE_C;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, nvmlTemperatureThresholds_t thresholdType,
                                                        unsigned int *temp)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(temp);
    switch (thresholdType) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: *temp = SHUTDOWN_TEMPERATURE_C; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: *temp = SLOWDOWN_TEMPERATURE_C; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: *temp = MEM_MAX_TEMPERATURE_C; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: *temp = GPU_MAX_TEMPERATURE_C; return NVML_SUCCESS;
    }
    return NVML_ERROR_NOT_SUPPORTED;
}

/* Data-centre boards are passively cooled: NVIDIA's driver has no fan to report either. */
NVML_API nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    GET_DEVICE(device, d);
    (void)d;
    (void)speed;
    return NVML_ERROR_NOT_SUPPORTED;
}

NVML_API nvmlReturn_t nvmlDeviceGetFanSpeed_v2(nvmlDevice_t device, unsigned int fan, unsigned int *speed)
{
    (void)fan;
    return nvmlDeviceGetFanSpeed(device, speed);
}

NVML_API nvmlReturn_t nvmlDeviceGetNumFans(nvmlDevice_t device, unsigned int *numFans)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(numFans);
    *numFans = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t *pState)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(pState);
    *pState = NVML_PSTATE_0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerState(nvmlDevice_t device, nvmlPstates_t *pState)
{
    return nvmlDeviceGetPerformanceState(device, pState);
}

NVML_API nvmlReturn_t nvmlDeviceGetSupportedPerformanceStates(nvmlDevice_t device, nvmlPstates_t *pstates,
                                                              unsigned int size)
{
    GET_DEVICE(device, d);
    (void)d;
    if (pstates == NULL || size == 0)
        return size == 0 ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_ERROR_INVALID_ARGUMENT;
    pstates[0] = NVML_PSTATE_0;
    for (unsigned i = 1; i < size; i++)
        pstates[i] = NVML_PSTATE_UNKNOWN;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(power);
    *power = IDLE_POWER_MW;
    return NVML_SUCCESS;
}

/* Millijoules since boot at the idle draw, so that it only ever grows, across processes too. */
NVML_API nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(energy);
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    *energy = ((unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull) *
              IDLE_POWER_MW / 1000ull;
    return NVML_SUCCESS;
}

static nvmlReturn_t power_value(nvmlDevice_t device, unsigned int *out, unsigned int value)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(out);
    *out = value;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit)
{
    return power_value(device, limit, POWER_LIMIT_MW);
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *defaultLimit)
{
    return power_value(device, defaultLimit, POWER_LIMIT_MW);
}

NVML_API nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    return power_value(device, limit, POWER_LIMIT_MW);
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device, unsigned int *minLimit,
                                                                   unsigned int *maxLimit)
{
    nvmlReturn_t rc = power_value(device, minLimit, MIN_POWER_LIMIT_MW);
    return rc != NVML_SUCCESS ? rc : power_value(device, maxLimit, POWER_LIMIT_MW);
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerSource(nvmlDevice_t device, nvmlPowerSource_t *powerSource)
{
    return power_value(device, powerSource, NVML_POWER_SOURCE_AC);
}

NVML_API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(utilization);
    /* The mock runs kernels at submission and is idle between calls. */
    utilization->gpu = 0;
    utilization->memory = 0;
    return NVML_SUCCESS;
}

static nvmlReturn_t codec_utilization(nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs)
{
    GET_DEVICE(device, d);
    (void)d;
    if (utilization == NULL || samplingPeriodUs == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *utilization = 0;
    *samplingPeriodUs = SAMPLING_PERIOD_US;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                      unsigned int *samplingPeriodUs)
{
    return codec_utilization(device, utilization, samplingPeriodUs);
}

NVML_API nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                      unsigned int *samplingPeriodUs)
{
    return codec_utilization(device, utilization, samplingPeriodUs);
}

NVML_API nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    GET_DEVICE(device, d);
    (void)d;
    OUT_ARG(reasons);
    *reasons = nvmlClocksEventReasonNone;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return nvmlDeviceGetCurrentClocksEventReasons(device, reasons);
}

/* Clocks in MHz from the attribute table (kHz): the device runs at its maximum, as in P0. */
static nvmlReturn_t clock_mhz(const struct nvmlDevice_st *d, nvmlClockType_t type, unsigned int *mhz)
{
    if (mhz == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM:
    case NVML_CLOCK_VIDEO:
        *mhz = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) / 1000u;
        return NVML_SUCCESS;
    case NVML_CLOCK_MEM:
        *mhz = (unsigned)attr(d, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) / 1000u;
        return NVML_SUCCESS;
    default:
        return NVML_ERROR_INVALID_ARGUMENT;
    }
}

NVML_API nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    GET_DEVICE(device, d);
    return clock_mhz(d, type, clock);
}

NVML_API nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    GET_DEVICE(device, d);
    return clock_mhz(d, type, clock);
}

NVML_API nvmlReturn_t nvmlDeviceGetApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType, unsigned int *clockMHz)
{
    GET_DEVICE(device, d);
    return clock_mhz(d, clockType, clockMHz);
}

NVML_API nvmlReturn_t nvmlDeviceGetDefaultApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                                            unsigned int *clockMHz)
{
    GET_DEVICE(device, d);
    return clock_mhz(d, clockType, clockMHz);
}

NVML_API nvmlReturn_t nvmlDeviceGetClock(nvmlDevice_t device, nvmlClockType_t clockType, nvmlClockId_t clockId,
                                         unsigned int *clockMHz)
{
    GET_DEVICE(device, d);
    if ((unsigned)clockId >= NVML_CLOCK_ID_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    return clock_mhz(d, clockType, clockMHz);
}
