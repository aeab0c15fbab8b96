/*
 * vgpu-probe: the live half of `vgpu doctor`, and `vgpu smi`.
 *
 *   vgpu-probe doctor            what a CUDA program started from this environment gets: which
 *                                libcuda.so.1 and libnvidia-ml.so.1 dlopen finds, whether they are
 *                                vgpu's, cuInit, the devices, and whether NVML agrees with CUDA
 *   vgpu-probe smi [--nvml PATH] devices, memory and processes through NVML, like nvidia-smi
 *   vgpu-probe nvidia-smi [--nvml PATH] [ARGS]
 *                                nvidia-smi for installers and users: the table, -L, --version and
 *                                --query-gpu=... --format=csv[,noheader][,nounits] in its formats
 *
 * Both libraries are opened with dlopen by name (doctor) so the dynamic loader's answer is the one
 * every application gets; nothing is linked at build time. Doctor prints one verdict per line,
 * "OK", "WARN" or "FAIL", and exits 1 if any check failed.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvml_format.h"
#include "vgpu_cuda.h"
#include "vgpu_nvml.h"

/* A string only vgpu's libraries carry (conn.c's message when the service is down). */
#define VGPU_MARKER "the vgpu service is not running"

static int failures;

static void verdict(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verdict(const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-4s ", tag);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (strcmp(tag, "FAIL") == 0)
        failures++;
    fflush(stdout);
}

static int is_vgpu_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int found = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            found = memmem(m, (size_t)st.st_size, VGPU_MARKER, strlen(VGPU_MARKER)) != NULL;
            munmap(m, (size_t)st.st_size);
        }
    }
    close(fd);
    return found;
}

/* Opens a library the way applications do and says which file the loader picked. */
static void *open_library(const char *name, char *path, size_t cap)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    path[0] = '\0';
    if (h != NULL) {
        struct link_map *lm = NULL;
        if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL && lm->l_name != NULL)
            snprintf(path, cap, "%s", lm->l_name);
        char *real = realpath(path, NULL);
        if (real != NULL && strcmp(real, path) != 0) {
            size_t n = strlen(path);
            snprintf(path + n, cap - n, " -> %s", real);
        }
        free(real);
    }
    return h;
}

static const char *file_of(const char *shown)
{
    /* "link -> target": the target is what was read. */
    const char *arrow = strstr(shown, " -> ");
    return arrow ? arrow + 4 : shown;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ---------------------------------------------------------------- CUDA through dlopen */

struct cuda {
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DeviceGetUuid)(CUuuid *, CUdevice);
    CUresult (*DeviceGetPCIBusId)(char *, int, CUdevice);
    CUresult (*CtxCreate)(CUcontext *, unsigned, CUdevice);
    CUresult (*CtxDestroy)(CUcontext);
    CUresult (*MemGetInfo)(size_t *, size_t *);
    CUresult (*GetErrorName)(CUresult, const char **);
};

struct cuda_device {
    char name[256];
    size_t total, free_mem;
    int cc_major, cc_minor;
    char pci[32];
    uint8_t uuid[16];
    char uuid_text[VGPU_NVML_UUID_LEN + 1];
    int ok;
};

static const char *cu_error(const struct cuda *cu, CUresult rc)
{
    const char *name = NULL;
    if (cu->GetErrorName == NULL || cu->GetErrorName(rc, &name) != CUDA_SUCCESS || name == NULL)
        return "?";
    return name;
}

#define SYM(lib, s, name) ((s) = (__typeof__(s))dlsym((lib), (name)))

/* ---------------------------------------------------------------- doctor */

/* Which file the loader picks for a soname, and whether it is vgpu's; NULL when none loads. */
static void *doctor_open(const char *name, const char *why_needed, char *path, size_t cap)
{
    void *h = open_library(name, path, cap);
    if (h == NULL)
        verdict("FAIL", "dlopen(%s): %s: run `vgpu install` (%s)", name, dlerror(), why_needed);
    else if (is_vgpu_file(file_of(path)))
        verdict("OK", "dlopen(%s) loads %s (vgpu)", name, path);
    else
        verdict("FAIL", "dlopen(%s) loads %s, which is not vgpu's: remove that copy, or put vgpu's first", name, path);
    return h;
}

/*
 * The CUDA half: cuInit, the devices, a context and memory figures on each. Fills devs (allocated
 * here, *count entries) with what NVML must agree with; returns 0 when cuInit found devices.
 */
static int doctor_cuda(void *lib, const char *path, struct cuda_device **devs_out, int *count_out)
{
    struct cuda cu = {0};
    *devs_out = NULL;
    *count_out = 0;
    SYM(lib, cu.Init, "cuInit");
    SYM(lib, cu.DriverGetVersion, "cuDriverGetVersion");
    SYM(lib, cu.DeviceGetCount, "cuDeviceGetCount");
    SYM(lib, cu.DeviceGet, "cuDeviceGet");
    SYM(lib, cu.DeviceGetName, "cuDeviceGetName");
    SYM(lib, cu.DeviceTotalMem, "cuDeviceTotalMem_v2");
    SYM(lib, cu.DeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(lib, cu.DeviceGetUuid, "cuDeviceGetUuid");
    SYM(lib, cu.DeviceGetPCIBusId, "cuDeviceGetPCIBusId");
    SYM(lib, cu.CtxCreate, "cuCtxCreate_v2");
    SYM(lib, cu.CtxDestroy, "cuCtxDestroy_v2");
    SYM(lib, cu.MemGetInfo, "cuMemGetInfo_v2");
    SYM(lib, cu.GetErrorName, "cuGetErrorName");
    if (!cu.Init || !cu.DriverGetVersion || !cu.DeviceGetCount || !cu.DeviceGet || !cu.DeviceGetName ||
        !cu.DeviceTotalMem || !cu.DeviceGetAttribute || !cu.DeviceGetUuid || !cu.DeviceGetPCIBusId || !cu.CtxCreate ||
        !cu.CtxDestroy || !cu.MemGetInfo) {
        verdict("FAIL", "%s lacks basic driver entry points (cuInit, cuDeviceGet*, cuCtxCreate_v2, cuMemGetInfo_v2)", path);
        return 1;
    }

    CUresult rc = cu.Init(0);
    if (rc != CUDA_SUCCESS) {
        const char *what = rc == CUDA_ERROR_DEVICE_UNAVAILABLE ? ": the vgpu service is not reachable (see the socket check)"
                         : rc == CUDA_ERROR_NO_DEVICE ? ": no device (the service has no active backend, or CUDA_VISIBLE_DEVICES hides every device)"
                                                      : "";
        verdict("FAIL", "cuInit(0) = %d (%s)%s", rc, cu_error(&cu, rc), what);
        return 1;
    }
    int version = 0, count = 0;
    cu.DriverGetVersion(&version);
    verdict("OK", "cuInit(0) = 0; CUDA driver API %d.%d", version / 1000, version % 1000 / 10);
    rc = cu.DeviceGetCount(&count);
    if (rc != CUDA_SUCCESS || count <= 0) {
        verdict("FAIL", "cuDeviceGetCount = %d, %d device(s)", rc, count);
        return 1;
    }
    verdict("OK", "cuDeviceGetCount: %d device(s)%s", count,
            getenv("CUDA_VISIBLE_DEVICES") ? " (CUDA_VISIBLE_DEVICES is set)" : "");
    struct cuda_device *devs = calloc((size_t)count, sizeof *devs);
    if (devs == NULL)
        return 1;
    for (int i = 0; i < count; i++) {
        struct cuda_device *d = &devs[i];
        CUdevice dev;
        CUcontext ctx;
        CUuuid uuid;
        if ((rc = cu.DeviceGet(&dev, i)) || (rc = cu.DeviceGetName(d->name, sizeof d->name, dev)) ||
            (rc = cu.DeviceTotalMem(&d->total, dev)) ||
            (rc = cu.DeviceGetAttribute(&d->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)) ||
            (rc = cu.DeviceGetAttribute(&d->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)) ||
            (rc = cu.DeviceGetUuid(&uuid, dev)) || (rc = cu.DeviceGetPCIBusId(d->pci, sizeof d->pci, dev))) {
            verdict("FAIL", "device %d: a device query failed with %d (%s)", i, rc, cu_error(&cu, rc));
            continue;
        }
        memcpy(d->uuid, uuid.bytes, 16);
        vgpu_nvml_format_uuid(d->uuid, d->uuid_text);
        if ((rc = cu.CtxCreate(&ctx, 0, dev)) != CUDA_SUCCESS) {
            verdict("FAIL", "device %d: cuCtxCreate = %d (%s)", i, rc, cu_error(&cu, rc));
            continue;
        }
        size_t total = 0;
        rc = cu.MemGetInfo(&d->free_mem, &total);
        cu.CtxDestroy(ctx);
        if (rc != CUDA_SUCCESS || total != d->total) {
            verdict("FAIL", "device %d: cuMemGetInfo = %d, total %zu (device says %zu)", i, rc, total, d->total);
            continue;
        }
        d->ok = 1;
        verdict("OK", "device %d: %s, %zu MiB (%zu MiB free), compute capability %d.%d, PCI %s, %s", i, d->name,
                d->total >> 20, d->free_mem >> 20, d->cc_major, d->cc_minor, d->pci, d->uuid_text);
    }
    *devs_out = devs;
    *count_out = count;
    return 0;
}

/*
 * The NVML half, whatever CUDA said: nvmlInit's own answer is worth a line when CUDA failed too
 * (Ollama reads the driver version through NVML before it touches CUDA). NVML must describe the
 * devices CUDA found: Ollama matches them by UUID and PCI id.
 */
static void doctor_nvml(void *nvml, const char *nvml_path, const struct cuda_device *devs, int count)
{
    nvmlReturn_t (*init)(void), (*shutdown)(void), (*driver)(char *, unsigned), (*by_uuid)(const char *, nvmlDevice_t *),
        (*name)(nvmlDevice_t, char *, unsigned), (*mem)(nvmlDevice_t, nvmlMemory_t *), (*pci)(nvmlDevice_t, nvmlPciInfo_t *),
        (*ncount)(unsigned *);
    const char *(*error)(nvmlReturn_t);
    SYM(nvml, init, "nvmlInit_v2");
    SYM(nvml, shutdown, "nvmlShutdown");
    SYM(nvml, driver, "nvmlSystemGetDriverVersion");
    SYM(nvml, by_uuid, "nvmlDeviceGetHandleByUUID");
    SYM(nvml, name, "nvmlDeviceGetName");
    SYM(nvml, mem, "nvmlDeviceGetMemoryInfo");
    SYM(nvml, pci, "nvmlDeviceGetPciInfo_v3");
    SYM(nvml, ncount, "nvmlDeviceGetCount_v2");
    SYM(nvml, error, "nvmlErrorString");
    if (!init || !shutdown || !driver || !by_uuid || !name || !mem || !pci || !ncount || !error) {
        verdict("FAIL", "%s lacks nvmlInit_v2, nvmlSystemGetDriverVersion or the device queries", nvml_path);
        return;
    }
    nvmlReturn_t nr = init();
    if (nr != NVML_SUCCESS) {
        verdict("FAIL", "nvmlInit_v2 = %d (%s)%s", nr, error(nr),
                nr == NVML_ERROR_DRIVER_NOT_LOADED ? ": the vgpu service is not reachable (see the socket check); "
                                                     "Ollama then finds no NVIDIA driver"
                                                   : "");
        return;
    }
    char version_text[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "";
    unsigned ndev = 0;
    driver(version_text, sizeof version_text);
    ncount(&ndev);
    int branch = atoi(version_text);
    verdict(branch >= 570 ? "OK" : "WARN", "nvmlInit_v2 = 0; driver %s, %u device(s)%s", version_text, ndev,
            branch >= 570 ? "" : ": Ollama drops CUDA 12 GPUs below driver 550, older GPUs below 570");
    for (int i = 0; i < count; i++) {
        const struct cuda_device *d = &devs[i];
        if (!d->ok)
            continue;
        nvmlDevice_t h;
        char nname[256] = "";
        nvmlMemory_t m = {0};
        nvmlPciInfo_t p;
        if ((nr = by_uuid(d->uuid_text, &h)) != NVML_SUCCESS) {
            verdict("FAIL", "device %d: NVML has no device with CUDA's UUID %s (%d)", i, d->uuid_text, nr);
            continue;
        }
        char mismatch[512] = "";
        if (name(h, nname, sizeof nname) != NVML_SUCCESS || strcmp(nname, d->name) != 0)
            snprintf(mismatch + strlen(mismatch), sizeof mismatch - strlen(mismatch), " name \"%s\";", nname);
        if (mem(h, &m) != NVML_SUCCESS || m.total != d->total)
            snprintf(mismatch + strlen(mismatch), sizeof mismatch - strlen(mismatch), " memory %llu;", m.total);
        char cpci[32];
        snprintf(cpci, sizeof cpci, "%s", d->pci);
        lower(cpci);
        if (pci(h, &p) != NVML_SUCCESS || (lower(p.busIdLegacy), strcmp(p.busIdLegacy, cpci) != 0))
            snprintf(mismatch + strlen(mismatch), sizeof mismatch - strlen(mismatch), " PCI %s;", p.busIdLegacy);
        if (mismatch[0] != '\0')
            verdict("FAIL", "device %d: NVML disagrees with CUDA:%s", i, mismatch);
        else
            verdict("OK", "device %d: NVML agrees with CUDA on name, UUID, memory (%llu MiB, %llu MiB used) and PCI id", i,
                    m.total >> 20, m.used >> 20);
    }
    shutdown();
}

static int doctor(void)
{
    char path[4096], nvml_path[4096];
    /* Both, before anything can stop the probe: the loader's answers matter most when things fail. */
    void *lib = doctor_open("libcuda.so.1", "no CUDA program can start", path, sizeof path);
    void *nvml = doctor_open("libnvidia-ml.so.1", "Ollama then cannot check the driver version", nvml_path, sizeof nvml_path);
    struct cuda_device *devs = NULL;
    int count = 0;
    if (lib != NULL)
        doctor_cuda(lib, path, &devs, &count);
    if (nvml != NULL)
        doctor_nvml(nvml, nvml_path, devs, count);
    free(devs);
    return failures || lib == NULL || nvml == NULL ? 1 : 0;
}

/* ---------------------------------------------------------------- smi and nvidia-smi */

/* The NVML calls smi and nvidia-smi make, resolved from whichever libnvidia-ml.so.1 they load. */
struct nvml {
    nvmlReturn_t (*init)(void), (*shutdown)(void), (*driver)(char *, unsigned), (*cuda)(int *), (*count)(unsigned *),
        (*by_index)(unsigned, nvmlDevice_t *), (*name)(nvmlDevice_t, char *, unsigned),
        (*uuid)(nvmlDevice_t, char *, unsigned), (*mem)(nvmlDevice_t, nvmlMemory_t *),
        (*pci)(nvmlDevice_t, nvmlPciInfo_t *), (*cc)(nvmlDevice_t, int *, int *),
        (*procs)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *), (*pname)(unsigned, char *, unsigned);
    const char *(*error)(nvmlReturn_t);
    char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    int cuda_version;
    unsigned devices;
};

/* Loads NVML (the given file, else the loader's choice) and initialises it; `who` prefixes errors. */
static int nvml_open(const char *nvml_path, const char *who, struct nvml *n)
{
    char path[4096];
    void *lib = nvml_path ? dlopen(nvml_path, RTLD_NOW | RTLD_LOCAL) : open_library("libnvidia-ml.so.1", path, sizeof path);
    if (lib == NULL) {
        fprintf(stderr, "%s: cannot load libnvidia-ml.so.1: %s\n", who, dlerror());
        return -1;
    }
    SYM(lib, n->init, "nvmlInit_v2");
    SYM(lib, n->shutdown, "nvmlShutdown");
    SYM(lib, n->driver, "nvmlSystemGetDriverVersion");
    SYM(lib, n->cuda, "nvmlSystemGetCudaDriverVersion_v2");
    SYM(lib, n->count, "nvmlDeviceGetCount_v2");
    SYM(lib, n->by_index, "nvmlDeviceGetHandleByIndex_v2");
    SYM(lib, n->name, "nvmlDeviceGetName");
    SYM(lib, n->uuid, "nvmlDeviceGetUUID");
    SYM(lib, n->mem, "nvmlDeviceGetMemoryInfo");
    SYM(lib, n->pci, "nvmlDeviceGetPciInfo_v3");
    SYM(lib, n->cc, "nvmlDeviceGetCudaComputeCapability");
    SYM(lib, n->procs, "nvmlDeviceGetComputeRunningProcesses_v3");
    SYM(lib, n->pname, "nvmlSystemGetProcessName");
    SYM(lib, n->error, "nvmlErrorString");
    if (!n->init || !n->shutdown || !n->driver || !n->cuda || !n->count || !n->by_index || !n->name || !n->uuid ||
        !n->mem || !n->pci || !n->cc || !n->procs || !n->pname || !n->error) {
        fprintf(stderr, "%s: the loaded libnvidia-ml.so.1 lacks the NVML queries it needs\n", who);
        return -1;
    }
    nvmlReturn_t rc = n->init();
    if (rc != NVML_SUCCESS) {
        fprintf(stderr, "%s: nvmlInit failed: %s\n", who, n->error(rc));
        return -1;
    }
    n->driver(n->driver_version, sizeof n->driver_version);
    n->cuda(&n->cuda_version);
    n->count(&n->devices);
    return 0;
}

/* One table row of nvidia-smi's width. */
static void row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void row(const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("| %-87s |\n", text);
}

/* The device table and the process table; `title` heads it ("vgpu smi" or "NVIDIA-SMI <driver>"). */
static void smi_table(struct nvml *n, const char *title)
{
    const char *rule = "+-----------------------------------------------------------------------------------------+";
    const char *cols = "+-----------------------------------------+------------------------+----------------------+";
    printf("%s\n", rule);
    row("%-33s Driver Version: %-14s CUDA Version: %d.%d", title, n->driver_version, n->cuda_version / 1000,
        n->cuda_version % 1000 / 10);
    printf("%s\n| %-3s %-35s | %-22s | %20s |\n", cols, "GPU", "Name", "Bus-Id", "Memory-Usage");
    printf("|=========================================+========================+======================|\n");
    if (n->devices == 0)
        row("No devices were found");
    for (unsigned i = 0; i < n->devices; i++) {
        nvmlDevice_t h;
        char dname[96] = "", usage[48];
        nvmlMemory_t m = {0};
        nvmlPciInfo_t p = {0};
        n->by_index(i, &h);
        n->name(h, dname, sizeof dname);
        n->mem(h, &m);
        n->pci(h, &p);
        snprintf(usage, sizeof usage, "%lluMiB / %lluMiB", m.used >> 20, m.total >> 20);
        printf("| %3u %-35.35s | %-22s | %20s |\n", i, dname, p.busId, usage);
    }
    printf("%s\n\n%s\n", cols, rule);
    row("Processes:");
    row("%5s %8s  %-58s %12s", "GPU", "PID", "Process name", "GPU Memory");
    printf("|=========================================================================================|\n");
    int any = 0;
    static nvmlProcessInfo_t infos[4096];
    for (unsigned i = 0; i < n->devices; i++) {
        nvmlDevice_t h;
        unsigned k, np = sizeof infos / sizeof infos[0];
        n->by_index(i, &h);
        if (n->procs(h, &np, infos) != NVML_SUCCESS)
            continue;
        for (k = 0; k < np; k++, any = 1) {
            char pn[256], used[40];
            if (n->pname(infos[k].pid, pn, sizeof pn) != NVML_SUCCESS)
                snprintf(pn, sizeof pn, "-");
            /* Long paths keep their end, where the program's name is. */
            const char *shown = pn;
            char cut[64];
            if (strlen(pn) > 58) {
                snprintf(cut, sizeof cut, "...%s", pn + strlen(pn) - 55);
                shown = cut;
            }
            snprintf(used, sizeof used, "%lluMiB", infos[k].usedGpuMemory >> 20);
            row("%5u %8u  %-58.58s %12s", i, infos[k].pid, shown, used);
        }
    }
    if (!any)
        row("No running processes found");
    printf("%s\n", rule);
}

static int smi(const char *nvml_path)
{
    struct nvml n;
    if (nvml_open(nvml_path, "vgpu smi", &n) != 0)
        return 1;
    smi_table(&n, "vgpu smi");
    n.shutdown();
    return 0;
}

/*
 * nvidia-smi's query fields we answer, with the unit nvidia-smi puts in the CSV header and after
 * each value (unless "nounits"). Aliases are the names nvidia-smi also accepts.
 */
enum field { F_INDEX, F_COUNT, F_NAME, F_UUID, F_BUS_ID, F_DRIVER, F_MEM_TOTAL, F_MEM_USED, F_MEM_FREE, F_CC };
static const struct {
    const char *name, *alias, *unit;
    enum field f;
} query_fields[] = {
    {"index", NULL, NULL, F_INDEX},
    {"count", NULL, NULL, F_COUNT},
    {"name", "gpu_name", NULL, F_NAME},
    {"uuid", "gpu_uuid", NULL, F_UUID},
    {"pci.bus_id", "gpu_bus_id", NULL, F_BUS_ID},
    {"driver_version", NULL, NULL, F_DRIVER},
    {"memory.total", NULL, "MiB", F_MEM_TOTAL},
    {"memory.used", NULL, "MiB", F_MEM_USED},
    {"memory.free", NULL, "MiB", F_MEM_FREE},
    {"compute_cap", NULL, NULL, F_CC},
};
#define QUERY_FIELDS (sizeof query_fields / sizeof query_fields[0])
#define MAX_QUERY 32

static void query_value(struct nvml *n, unsigned index, nvmlDevice_t h, unsigned q, int units, char *out, size_t cap)
{
    nvmlMemory_t m = {0};
    nvmlPciInfo_t p = {0};
    unsigned long long mib = 0;
    int major = 0, minor = 0;
    switch (query_fields[q].f) {
    case F_INDEX: snprintf(out, cap, "%u", index); return;
    case F_COUNT: snprintf(out, cap, "%u", n->devices); return;
    case F_NAME: n->name(h, out, (unsigned)cap); return;
    case F_UUID: n->uuid(h, out, (unsigned)cap); return;
    case F_BUS_ID: n->pci(h, &p); snprintf(out, cap, "%s", p.busId); return;
    case F_DRIVER: snprintf(out, cap, "%s", n->driver_version); return;
    case F_MEM_TOTAL: n->mem(h, &m); mib = m.total >> 20; break;
    case F_MEM_USED: n->mem(h, &m); mib = m.used >> 20; break;
    case F_MEM_FREE: n->mem(h, &m); mib = m.free >> 20; break;
    case F_CC: n->cc(h, &major, &minor); snprintf(out, cap, "%d.%d", major, minor); return;
    }
    snprintf(out, cap, units ? "%llu MiB" : "%llu", mib);
}

static int usage_error(void)
{
    /* nvidia-smi's own words, which scripts that probe options may look for. */
    printf("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n\n");
    return 2;
}

static int nvidia_smi_help(void)
{
    printf("NVIDIA System Management Interface -- vgpu's nvidia-smi, answered from the vgpu service.\n\n"
           "    nvidia-smi                          devices, memory and processes\n"
           "    nvidia-smi -L, --list-gpus          one line per GPU with its UUID\n"
           "    nvidia-smi --query-gpu=FIELDS --format=csv[,noheader][,nounits]\n"
           "        FIELDS: index, count, name, uuid, pci.bus_id, driver_version, memory.total,\n"
           "                memory.used, memory.free, compute_cap\n"
           "    -i, --id=ID                         only these GPUs (indexes or UUIDs, comma separated)\n"
           "    --version                           driver and CUDA versions\n");
    return 0;
}

/* Whether device `index` (with `uuid`) is selected by -i's comma-separated list. */
static int selected(const char *ids, unsigned index, const char *uuid)
{
    if (ids == NULL)
        return 1;
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", ids);
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if ((*end == '\0' && end != t && v == index) || strcasecmp(t, uuid) == 0)
            return 1;
    }
    return 0;
}

/* An option's value: "--opt=value" or "--opt value" (advancing *i). NULL if it has none. */
static const char *option_value(int argc, char **argv, int *i, const char *opt)
{
    size_t len = strlen(opt);
    if (strncmp(argv[*i], opt, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int nvidia_smi(const char *nvml_path, int argc, char **argv)
{
    int list = 0, version = 0, header = 1, units = 1;
    const char *query = NULL, *format = NULL, *ids = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-L") == 0 || strcmp(argv[i], "--list-gpus") == 0)
            list = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return nvidia_smi_help();
        else if (strcmp(argv[i], "--version") == 0)
            version = 1;
        else if ((v = option_value(argc, argv, &i, "--query-gpu")) != NULL)
            query = v;
        else if ((v = option_value(argc, argv, &i, "--format")) != NULL)
            format = v;
        else if ((v = option_value(argc, argv, &i, "--id")) != NULL || (v = option_value(argc, argv, &i, "-i")) != NULL)
            ids = v;
        else
            return usage_error();
    }
    unsigned picked[MAX_QUERY], npicked = 0;
    if (query != NULL) {
        if (format == NULL)
            return usage_error();
        char copy[512], *save = NULL;
        snprintf(copy, sizeof copy, "%s", format);
        int csv = 0;
        for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            if (strcmp(t, "csv") == 0)
                csv = 1;
            else if (strcmp(t, "noheader") == 0)
                header = 0;
            else if (strcmp(t, "nounits") == 0)
                units = 0;
            else
                return usage_error();
        }
        if (!csv)
            return usage_error();
        snprintf(copy, sizeof copy, "%s", query);
        for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            unsigned q = 0;
            while (q < QUERY_FIELDS && strcmp(t, query_fields[q].name) != 0 &&
                   (query_fields[q].alias == NULL || strcmp(t, query_fields[q].alias) != 0))
                q++;
            if (q == QUERY_FIELDS) {
                printf("Field \"%s\" is not a valid field to query.\n\n", t);
                return 2;
            }
            if (npicked == MAX_QUERY)
                return usage_error();
            picked[npicked++] = q;
        }
        if (npicked == 0)
            return usage_error();
    } else if (format != NULL) {
        return usage_error();
    }

    struct nvml n;
    if (nvml_open(nvml_path, "nvidia-smi", &n) != 0) {
        /* What NVIDIA's prints when its kernel driver is not there, with exit status 9. */
        printf("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the "
               "latest NVIDIA driver is installed and running.\n\n");
        return 9;
    }
    if (version) {
        char nvml_version[sizeof n.driver_version];
        /* NVML's version is the driver version without its last component. */
        snprintf(nvml_version, sizeof nvml_version, "%s", n.driver_version);
        char *dot = strrchr(nvml_version, '.');
        if (dot != NULL && dot != strchr(nvml_version, '.'))
            *dot = '\0';
        printf("NVIDIA-SMI version  : %s\nNVML version        : %s\nDRIVER version      : %s\nCUDA Version        : %d.%d\n",
               n.driver_version, nvml_version, n.driver_version, n.cuda_version / 1000, n.cuda_version % 1000 / 10);
    } else if (query != NULL) {
        if (header) {
            for (unsigned k = 0; k < npicked; k++) {
                const char *unit = query_fields[picked[k]].unit;
                printf("%s%s", k ? ", " : "", query_fields[picked[k]].name);
                if (unit != NULL)
                    printf(" [%s]", unit);
            }
            putchar('\n');
        }
        for (unsigned i = 0; i < n.devices; i++) {
            nvmlDevice_t h;
            char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "", value[256];
            n.by_index(i, &h);
            n.uuid(h, uuid, sizeof uuid);
            if (!selected(ids, i, uuid))
                continue;
            for (unsigned k = 0; k < npicked; k++) {
                query_value(&n, i, h, picked[k], units, value, sizeof value);
                printf("%s%s", k ? ", " : "", value);
            }
            putchar('\n');
        }
    } else if (list) {
        for (unsigned i = 0; i < n.devices; i++) {
            nvmlDevice_t h;
            char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = "", uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "";
            n.by_index(i, &h);
            n.name(h, name, sizeof name);
            n.uuid(h, uuid, sizeof uuid);
            if (selected(ids, i, uuid))
                printf("GPU %u: %s (UUID: %s)\n", i, name, uuid);
        }
    } else {
        char title[128], date[64];
        time_t now = time(NULL);
        struct tm tm;
        strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", localtime_r(&now, &tm));
        printf("%s       \n", date);
        snprintf(title, sizeof title, "NVIDIA-SMI %s", n.driver_version);
        smi_table(&n, title);
    }
    n.shutdown();
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "doctor") == 0)
        return doctor();
    if (argc >= 2 && strcmp(argv[1], "smi") == 0)
        return smi(argc >= 4 && strcmp(argv[2], "--nvml") == 0 ? argv[3] : NULL);
    if (argc >= 2 && strcmp(argv[1], "nvidia-smi") == 0) {
        int skip = argc >= 4 && strcmp(argv[2], "--nvml") == 0 ? 2 : 0;
        return nvidia_smi(skip ? argv[3] : NULL, argc - 2 - skip, argv + 2 + skip);
    }
    fprintf(stderr, "usage: vgpu-probe doctor | smi [--nvml PATH] | nvidia-smi [--nvml PATH] [nvidia-smi options]\n");
    return 2;
}
