/*
 * vgpu-probe: the live half of `vgpu doctor`, and `vgpu smi`.
 *
 *   vgpu-probe doctor            what a CUDA program started from this environment gets: which
 *                                libcuda.so.1 and libnvidia-ml.so.1 dlopen finds, whether they are
 *                                vgpu's, cuInit, the devices, and whether NVML agrees with CUDA
 *   vgpu-probe smi [--nvml PATH] devices, memory and processes through NVML, like nvidia-smi
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
#include <sys/mman.h>
#include <sys/stat.h>
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

static int doctor(void)
{
    char path[4096], nvml_path[4096];
    struct cuda cu = {0};
    /* Both, before anything can stop the probe: the loader's answers matter most when things fail. */
    void *lib = doctor_open("libcuda.so.1", "no CUDA program can start", path, sizeof path);
    void *nvml = doctor_open("libnvidia-ml.so.1", "Ollama then cannot check the driver version", nvml_path, sizeof nvml_path);
    if (lib == NULL)
        return 1;
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

    /* NVML must describe the same devices: Ollama matches them by UUID and PCI id. */
    if (nvml == NULL)
        return 1;
    nvmlReturn_t (*init)(void), (*shutdown)(void), (*driver)(char *, unsigned), (*by_uuid)(const char *, nvmlDevice_t *),
        (*name)(nvmlDevice_t, char *, unsigned), (*mem)(nvmlDevice_t, nvmlMemory_t *), (*pci)(nvmlDevice_t, nvmlPciInfo_t *),
        (*ncount)(unsigned *);
    SYM(nvml, init, "nvmlInit_v2");
    SYM(nvml, shutdown, "nvmlShutdown");
    SYM(nvml, driver, "nvmlSystemGetDriverVersion");
    SYM(nvml, by_uuid, "nvmlDeviceGetHandleByUUID");
    SYM(nvml, name, "nvmlDeviceGetName");
    SYM(nvml, mem, "nvmlDeviceGetMemoryInfo");
    SYM(nvml, pci, "nvmlDeviceGetPciInfo_v3");
    SYM(nvml, ncount, "nvmlDeviceGetCount_v2");
    if (!init || !shutdown || !driver || !by_uuid || !name || !mem || !pci || !ncount) {
        verdict("FAIL", "%s lacks nvmlInit_v2, nvmlSystemGetDriverVersion or the device queries", nvml_path);
        return 1;
    }
    nvmlReturn_t nr = init();
    if (nr != NVML_SUCCESS) {
        verdict("FAIL", "nvmlInit_v2 = %d", nr);
        return 1;
    }
    char version_text[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "";
    unsigned ndev = 0;
    driver(version_text, sizeof version_text);
    ncount(&ndev);
    int branch = atoi(version_text);
    verdict(branch >= 570 ? "OK" : "WARN", "nvmlInit_v2 = 0; driver %s, %u device(s)%s", version_text, ndev,
            branch >= 570 ? "" : ": Ollama drops CUDA 12 GPUs below driver 550, older GPUs below 570");
    for (int i = 0; i < count; i++) {
        struct cuda_device *d = &devs[i];
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
    free(devs);
    return failures ? 1 : 0;
}

/* ---------------------------------------------------------------- smi */

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

static int smi(const char *nvml_path)
{
    char path[4096];
    void *nvml = nvml_path ? dlopen(nvml_path, RTLD_NOW | RTLD_LOCAL) : open_library("libnvidia-ml.so.1", path, sizeof path);
    if (nvml == NULL) {
        fprintf(stderr, "vgpu smi: cannot load libnvidia-ml.so.1: %s\n", dlerror());
        return 1;
    }
    nvmlReturn_t (*init)(void), (*shutdown)(void), (*driver)(char *, unsigned), (*cuda)(int *), (*count)(unsigned *),
        (*by_index)(unsigned, nvmlDevice_t *), (*name)(nvmlDevice_t, char *, unsigned), (*mem)(nvmlDevice_t, nvmlMemory_t *),
        (*pci)(nvmlDevice_t, nvmlPciInfo_t *), (*procs)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *),
        (*pname)(unsigned, char *, unsigned);
    const char *(*error)(nvmlReturn_t);
    SYM(nvml, init, "nvmlInit_v2");
    SYM(nvml, shutdown, "nvmlShutdown");
    SYM(nvml, driver, "nvmlSystemGetDriverVersion");
    SYM(nvml, cuda, "nvmlSystemGetCudaDriverVersion_v2");
    SYM(nvml, count, "nvmlDeviceGetCount_v2");
    SYM(nvml, by_index, "nvmlDeviceGetHandleByIndex_v2");
    SYM(nvml, name, "nvmlDeviceGetName");
    SYM(nvml, mem, "nvmlDeviceGetMemoryInfo");
    SYM(nvml, pci, "nvmlDeviceGetPciInfo_v3");
    SYM(nvml, procs, "nvmlDeviceGetComputeRunningProcesses_v3");
    SYM(nvml, pname, "nvmlSystemGetProcessName");
    SYM(nvml, error, "nvmlErrorString");
    if (!init || !shutdown || !driver || !cuda || !count || !by_index || !name || !mem || !pci || !procs || !pname || !error) {
        fprintf(stderr, "vgpu smi: the loaded libnvidia-ml.so.1 lacks the NVML queries it needs\n");
        return 1;
    }
    nvmlReturn_t rc = init();
    if (rc != NVML_SUCCESS) {
        fprintf(stderr, "vgpu smi: nvmlInit failed: %s\n", error(rc));
        return 1;
    }
    char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "";
    int cv = 0;
    unsigned n = 0;
    driver(version, sizeof version);
    cuda(&cv);
    count(&n);
    const char *rule = "+-----------------------------------------------------------------------------------------+";
    const char *cols = "+-----------------------------------------+------------------------+----------------------+";
    printf("%s\n", rule);
    row("vgpu smi %26s Driver Version: %-14s CUDA Version: %d.%d", "", version, cv / 1000, cv % 1000 / 10);
    printf("%s\n| %-3s %-35s | %-22s | %20s |\n", cols, "GPU", "Name", "Bus-Id", "Memory-Usage");
    printf("|=========================================+========================+======================|\n");
    if (n == 0)
        row("No devices were found");
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t h;
        char dname[96] = "", usage[48];
        nvmlMemory_t m = {0};
        nvmlPciInfo_t p = {0};
        by_index(i, &h);
        name(h, dname, sizeof dname);
        mem(h, &m);
        pci(h, &p);
        snprintf(usage, sizeof usage, "%lluMiB / %lluMiB", m.used >> 20, m.total >> 20);
        printf("| %3u %-35.35s | %-22s | %20s |\n", i, dname, p.busId, usage);
    }
    printf("%s\n\n%s\n", cols, rule);
    row("Processes:");
    row("%5s %8s  %-58s %12s", "GPU", "PID", "Process name", "GPU Memory");
    printf("|=========================================================================================|\n");
    int any = 0;
    static nvmlProcessInfo_t infos[4096];
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t h;
        unsigned k, np = sizeof infos / sizeof infos[0];
        by_index(i, &h);
        if (procs(h, &np, infos) != NVML_SUCCESS)
            continue;
        for (k = 0; k < np; k++, any = 1) {
            char pn[256], used[40];
            if (pname(infos[k].pid, pn, sizeof pn) != NVML_SUCCESS)
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
    shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "doctor") == 0)
        return doctor();
    if (argc >= 2 && strcmp(argv[1], "smi") == 0)
        return smi(argc >= 4 && strcmp(argv[2], "--nvml") == 0 ? argv[3] : NULL);
    fprintf(stderr, "usage: vgpu-probe doctor | smi [--nvml PATH]\n");
    return 2;
}
