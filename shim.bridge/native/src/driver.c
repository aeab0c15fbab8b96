/*
 * Initialisation, versions and devices. Nothing happens at load time: the first entry point that
 * needs it runs vgpu_setup() once (pthread_once); cuInit connects to the service and caches the
 * device list, which every device query then answers locally.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu.h"

#define DEFAULT_SOCKET "/run/vgpu/vgpu.sock"
#define DEFAULT_DRIVER_VERSION 13000
#define MAX_DEVICES 64

struct vgpu_config vgpu_cfg;
struct vgpu_device *vgpu_devices;
int vgpu_device_count;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int initialized;
static atomic_int deinitialized;

static long env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return fallback;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0) {
        LOG_WARN("%s=%s is not a non-negative number; using %ld", name, v, fallback);
        return fallback;
    }
    return n;
}

static void fork_prepare(void)
{
    vgpu_conn_lock();
}

static void fork_parent(void)
{
    vgpu_conn_unlock();
}

static void fork_child(void)
{
    /* The child gets its own session on first use; its parent's handles are void here. */
    vgpu_conn_after_fork_child();
    vgpu_handles_reset();
    vgpu_streams_after_fork();
    vgpu_state_reset_after_fork();
}

static void do_setup(void)
{
    const char *sock = getenv("VGPU_SOCKET");
    snprintf(vgpu_cfg.socket_path, sizeof vgpu_cfg.socket_path, "%s", sock && *sock ? sock : DEFAULT_SOCKET);
    vgpu_cfg.spin_ns = env_long("VGPU_SPIN_US", 200) * 1000;
    vgpu_cfg.shm_size = (size_t)env_long("VGPU_SHM_MB", 64) << 20;
    vgpu_cfg.inline_max = (size_t)env_long("VGPU_INLINE_KB", 64) << 10;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    LOG_DEBUG("vgpu shim: socket %s, spin %ld us, shared memory %zu MiB", vgpu_cfg.socket_path,
              vgpu_cfg.spin_ns / 1000, vgpu_cfg.shm_size >> 20);
}

void vgpu_setup(void)
{
    pthread_once(&setup_once, do_setup);
}

/* The only work done outside an entry point: mark the driver gone, as the real one does at exit. */
__attribute__((destructor)) static void vgpu_unload(void)
{
    if (atomic_load(&initialized))
        vgpu_conn_shutdown();
    atomic_store(&deinitialized, 1);
    vgpu_streams_unload();
}

CUresult vgpu_initialized(void)
{
    if (atomic_load_explicit(&deinitialized, memory_order_relaxed))
        return CUDA_ERROR_DEINITIALIZED;
    return atomic_load_explicit(&initialized, memory_order_acquire) ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

struct vgpu_device *vgpu_device(CUdevice dev)
{
    return dev >= 0 && dev < vgpu_device_count ? &vgpu_devices[dev] : NULL;
}

/* ---------------------------------------------------------------- CUDA_VISIBLE_DEVICES */

static int parse_ordinal(const char *tok, int count)
{
    if (*tok == '\0')
        return -1;
    for (const char *p = tok; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    long n = strtol(tok, NULL, 10);
    return n < count ? (int)n : -1;
}

/* "GPU-<hex with dashes>" names the device whose UUID starts with it; it must be unambiguous. */
static int parse_uuid(const char *tok, const uint8_t (*uuids)[16], int count)
{
    if (strncasecmp(tok, "GPU-", 4) != 0)
        return -1;
    char hex[33];
    int n = 0;
    for (const char *p = tok + 4; *p; p++) {
        if (*p == '-')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 32)
            return -1;
        hex[n++] = (char)tolower((unsigned char)*p);
    }
    hex[n] = '\0';
    if (n == 0)
        return -1;
    int found = -1;
    for (int d = 0; d < count; d++) {
        char full[33];
        for (int i = 0; i < 16; i++)
            snprintf(full + 2 * i, 3, "%02x", uuids[d][i]);
        if (strncmp(full, hex, (size_t)n) == 0) {
            if (found >= 0)
                return -1;
            found = d;
        }
    }
    return found;
}

/*
 * Like the real driver: a comma-separated list of ordinals or GPU-UUID prefixes; parsing stops at
 * the first invalid or repeated entry, so "-1" or garbage hides every device.
 */
int vgpu_visible_devices(const char *spec, const uint8_t (*uuids)[16], int count, int *visible)
{
    if (spec == NULL) {
        for (int i = 0; i < count; i++)
            visible[i] = i;
        return count;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL && n < count; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        int d = parse_ordinal(tok, count);
        if (d < 0)
            d = parse_uuid(tok, uuids, count);
        if (d < 0)
            break;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= visible[i] == d;
        if (dup)
            break;
        visible[n++] = d;
    }
    return n;
}

/* ---------------------------------------------------------------- init */

/* Reserves the device address window in this process so no host allocation can ever land in it. */
static void reserve_window(const struct vgpu_session_info *s)
{
    static int done;
    if (done || s->window_size == 0)
        return;
    void *want = (void *)(uintptr_t)s->window_base;
    void *got = mmap(want, s->window_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == MAP_FAILED || got != want) {
        if (got != MAP_FAILED)
            munmap(got, s->window_size);
        LOG_DEBUG("could not reserve the device address window at %p in this process", want);
        return;
    }
    done = 1;
}

static CUresult load_devices_locked(void)
{
    struct vgpu_device_list_rep rep;
    size_t cap = MAX_DEVICES * sizeof(struct vgpu_device_rec);
    struct vgpu_device_rec *recs = malloc(cap);
    if (recs == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t got = 0;
    CUresult rc = vgpu_call_locked(VGPU_OP_DEVICE_LIST, NULL, 0, NULL, 0, &rep, sizeof rep, recs, cap, &got);
    if (rc != CUDA_SUCCESS) {
        free(recs);
        return rc;
    }
    int count = (int)(got / sizeof *recs);
    if ((uint32_t)count > rep.count)
        count = (int)rep.count;
    uint8_t (*uuids)[16] = calloc((size_t)count + 1, 16);
    int *visible = calloc((size_t)count + 1, sizeof *visible);
    struct vgpu_device *devs = calloc((size_t)count + 1, sizeof *devs);
    if (uuids == NULL || visible == NULL || devs == NULL) {
        free(recs);
        free(uuids);
        free(visible);
        free(devs);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < count; i++)
        memcpy(uuids[i], recs[i].uuid, 16);
    int n = vgpu_visible_devices(getenv("CUDA_VISIBLE_DEVICES"), (const uint8_t (*)[16])uuids, count, visible);
    for (int i = 0; i < n; i++) {
        struct vgpu_device_rec *r = &recs[visible[i]];
        struct vgpu_device *d = &devs[i];
        memcpy(d->name, r->name, sizeof d->name);
        d->name[sizeof d->name - 1] = '\0';
        memcpy(d->uuid, r->uuid, 16);
        d->total_memory = r->total_memory;
        memcpy(d->attr, r->attributes, sizeof d->attr);
        d->service_ordinal = visible[i];
    }
    free(recs);
    free(uuids);
    free(visible);
    free(vgpu_devices);
    vgpu_devices = devs;
    vgpu_device_count = n;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuInit(unsigned int flags)
{
    vgpu_setup();
    if (atomic_load(&deinitialized))
        return CUDA_ERROR_DEINITIALIZED;
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (atomic_load(&initialized))
        return CUDA_SUCCESS;
    pthread_mutex_lock(&init_lock);
    CUresult rc = CUDA_SUCCESS;
    if (!atomic_load(&initialized)) {
        vgpu_conn_lock();
        rc = vgpu_conn_ensure_locked();
        if (rc == CUDA_SUCCESS)
            rc = load_devices_locked();
        if (rc == CUDA_SUCCESS) {
            reserve_window(vgpu_session());
            if (vgpu_device_count == 0) {
                LOG_INFO("no device visible (CUDA_VISIBLE_DEVICES=%s)", getenv("CUDA_VISIBLE_DEVICES"));
                rc = CUDA_ERROR_NO_DEVICE;
            }
        } else if (rc == CUDA_ERROR_NO_DEVICE) {
            LOG_INFO("the vgpu service has no active backend: no CUDA device");
        }
        vgpu_conn_unlock();
        if (rc == CUDA_SUCCESS)
            atomic_store_explicit(&initialized, 1, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}

/* A forked child keeps its initialised state; it reconnects and re-reads devices lazily. */
void vgpu_driver_after_fork(void)
{
    pthread_mutex_init(&init_lock, NULL);
}

int vgpu_driver_version(int may_connect)
{
    vgpu_setup();
    /* Answered before cuInit too, as the real driver does; the service decides the number. */
    vgpu_conn_lock();
    if (vgpu_session()->driver_version == 0 && may_connect)
        vgpu_conn_ensure_locked();
    uint32_t v = vgpu_session()->driver_version;
    vgpu_conn_unlock();
    return v != 0 ? (int)v : (int)env_long("VGPU_DRIVER_VERSION", DEFAULT_DRIVER_VERSION);
}

VGPU_API CUresult cuDriverGetVersion(int *driverVersion)
{
    vgpu_setup();
    if (driverVersion == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = vgpu_driver_version(1);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- devices */

VGPU_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    VGPU_CHECK_INIT();
    if (device == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal < 0 || ordinal >= vgpu_device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetCount(int *count)
{
    VGPU_CHECK_INIT();
    if (count == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *count = vgpu_device_count;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (name == NULL || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", d->name);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (uuid == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(uuid->bytes, d->uuid, 16);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid_v2(uuid, dev);
}

VGPU_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (bytes == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = d->total_memory;
    return CUDA_SUCCESS;
}

/* The pre-3.2 ABI reports through a 32-bit integer. */
VGPU_API CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    size_t total;
    CUresult rc = cuDeviceTotalMem_v2(&total, dev);
    if (rc == CUDA_SUCCESS && bytes == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS)
        *bytes = total > 0xffffffffu ? 0xffffffffu : (unsigned int)total;
    return rc;
}

VGPU_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pi == NULL || (int)attrib <= 0 || (int)attrib >= CU_DEVICE_ATTRIBUTE_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *pi = d->attr[attrib];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (major == NULL || minor == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *major = d->attr[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR];
    *minor = d->attr[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    const int32_t *a = d->attr;
    prop->maxThreadsPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK];
    prop->maxThreadsDim[0] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X];
    prop->maxThreadsDim[1] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y];
    prop->maxThreadsDim[2] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z];
    prop->maxGridSize[0] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X];
    prop->maxGridSize[1] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y];
    prop->maxGridSize[2] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z];
    prop->sharedMemPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK];
    prop->totalConstantMemory = a[CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY];
    prop->SIMDWidth = a[CU_DEVICE_ATTRIBUTE_WARP_SIZE];
    prop->memPitch = a[CU_DEVICE_ATTRIBUTE_MAX_PITCH];
    prop->regsPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK];
    prop->clockRate = a[CU_DEVICE_ATTRIBUTE_CLOCK_RATE];
    prop->textureAlign = a[CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    VGPU_CHECK_INIT();
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pciBusId == NULL || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "%04x:%02x:%02x.0", d->attr[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID],
             d->attr[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID], d->attr[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID]);
    return CUDA_SUCCESS;
}

/* Accepts "domain:bus:device.function" (any domain width, as NVML prints 8 digits) and "bus:device.function". */
VGPU_API CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
    VGPU_CHECK_INIT();
    if (dev == NULL || pciBusId == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned domain = 0, bus, device, function = 0;
    if (sscanf(pciBusId, "%x:%x:%x.%x", &domain, &bus, &device, &function) < 3) {
        domain = 0;
        if (sscanf(pciBusId, "%x:%x.%x", &bus, &device, &function) < 2)
            return CUDA_ERROR_INVALID_VALUE;
    }
    for (int i = 0; i < vgpu_device_count; i++) {
        const int32_t *a = vgpu_devices[i].attr;
        if ((unsigned)a[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID] == domain && (unsigned)a[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID] == bus &&
            (unsigned)a[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID] == device) {
            *dev = i;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

VGPU_API CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL || vgpu_device(peerDev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (canAccessPeer == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *canAccessPeer = 0; /* peer copies would have to cross backends; none are offered */
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib, CUdevice src, CUdevice dst)
{
    VGPU_CHECK_INIT();
    (void)attrib;
    if (vgpu_device(src) == NULL || vgpu_device(dst) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *value = 0;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t *maxWidthInElements, CUarray_format format,
                                                     unsigned numChannels, CUdevice dev)
{
    VGPU_CHECK_INIT();
    (void)format;
    struct vgpu_device *d = vgpu_device(dev);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (maxWidthInElements == NULL || numChannels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    *maxWidthInElements = (size_t)d->attr[CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDeviceGetExecAffinitySupport(int *pi, CUexecAffinityType type, CUdevice dev)
{
    VGPU_CHECK_INIT();
    (void)type;
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pi == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pi = 0;
    return CUDA_SUCCESS;
}
