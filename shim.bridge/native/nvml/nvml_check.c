/*
 * NVML against CUDA on a live service, linked with -lcuda -lnvidia-ml like a monitoring agent that
 * also runs CUDA work. OllamaIT runs it.
 *
 *   nvml_check          every field both APIs expose, as "agree <field> cuda=<a> nvml=<b>" lines
 *                       (the caller compares them), then "check <what> ok|FAIL" lines for NVML's
 *                       own rules: reference-counted init, handles, buffer sizes, fork
 *   nvml_check procs    per device, NVML's memory use and compute processes through the v3, v2
 *                       and v1 ABIs: "device<i>.used=<bytes>" and
 *                       "process v<abi> device=<i> pid=<pid> used=<bytes>[ gi=<id> ci=<id>]" lines
 *
 * Exit status 1 when a check failed or a call that must succeed did not.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_api.h"
#include "nvml_format.h"

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlInitWithFlags(unsigned int flags);
nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v);
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index);
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory);
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor);
nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int *busWidth);
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int *multiGpuBool);
nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current, nvmlEnableState_t *pending);
nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, nvmlComputeMode_t *mode);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count, nvmlProcessInfo_t *infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *count, nvmlProcessInfo_v2_t *infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *count, nvmlProcessInfo_v1_t *infos);
nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed);
nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type);
nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power);
nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t *pState);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization);
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_t *temperature);

static int failures;

static void check(const char *what, int ok)
{
    printf("check %s %s\n", what, ok ? "ok" : "FAIL");
    failures += !ok;
}

#define AGREE(field, fmt, a, b) printf("agree %s cuda=" fmt " nvml=" fmt "\n", field, a, b)

static int attr(CUdevice dev, CUdevice_attribute a)
{
    int v = -1;
    cuDeviceGetAttribute(&v, a, dev);
    return v;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int agreement(void)
{
    int count = 0, version = 0, nvml_version = 0, nvml_version_v1 = 0;
    unsigned ncount = 0;
    if (cuInit(0) || cuDeviceGetCount(&count) || cuDriverGetVersion(&version) || nvmlInit_v2() ||
        nvmlDeviceGetCount_v2(&ncount) || nvmlSystemGetCudaDriverVersion_v2(&nvml_version) ||
        nvmlSystemGetCudaDriverVersion(&nvml_version_v1))
        return 1;
    /* NVML ignores CUDA_VISIBLE_DEVICES, like NVIDIA's; only then must the counts agree. */
    if (getenv("CUDA_VISIBLE_DEVICES") == NULL)
        AGREE("device_count", "%d", count, (int)ncount);
    AGREE("cuda_driver_version", "%d", version, nvml_version);
    AGREE("cuda_driver_version_v1", "%d", version, nvml_version_v1);
    for (int i = 0; i < count; i++) {
        CUdevice dev;
        CUcontext ctx;
        CUuuid u;
        char name[256], pci[32], uuid[VGPU_NVML_UUID_LEN + 1], field[64];
        size_t total, free_mem, ctx_total;
        if (cuDeviceGet(&dev, i) || cuDeviceGetName(name, sizeof name, dev) || cuDeviceGetUuid_v2(&u, dev) ||
            cuDeviceTotalMem_v2(&total, dev) || cuDeviceGetPCIBusId(pci, sizeof pci, dev) || cuCtxCreate_v2(&ctx, 0, dev) ||
            cuMemGetInfo_v2(&free_mem, &ctx_total) || cuCtxDestroy_v2(ctx))
            return 1;
        vgpu_nvml_format_uuid((const uint8_t *)u.bytes, uuid);
        nvmlDevice_t h, by_pci, by_index;
        char nname[NVML_DEVICE_NAME_V2_BUFFER_SIZE], nuuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        nvmlPciInfo_t p;
        nvmlMemory_t m;
        nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
        unsigned index, minor, width, sm_clock, mem_clock, multi;
        int major_cc, minor_cc;
        nvmlEnableState_t ecc, ecc_pending;
        nvmlComputeMode_t mode;
        if (nvmlDeviceGetHandleByUUID(uuid, &h) || nvmlDeviceGetName(h, nname, sizeof nname) ||
            nvmlDeviceGetUUID(h, nuuid, sizeof nuuid) || nvmlDeviceGetPciInfo_v3(h, &p) ||
            nvmlDeviceGetMemoryInfo(h, &m) || nvmlDeviceGetMemoryInfo_v2(h, &m2) || nvmlDeviceGetIndex(h, &index) ||
            nvmlDeviceGetMinorNumber(h, &minor) || nvmlDeviceGetCudaComputeCapability(h, &major_cc, &minor_cc) ||
            nvmlDeviceGetMemoryBusWidth(h, &width) || nvmlDeviceGetMaxClockInfo(h, NVML_CLOCK_SM, &sm_clock) ||
            nvmlDeviceGetMaxClockInfo(h, NVML_CLOCK_MEM, &mem_clock) || nvmlDeviceGetMultiGpuBoard(h, &multi) ||
            nvmlDeviceGetEccMode(h, &ecc, &ecc_pending) || nvmlDeviceGetComputeMode(h, &mode) ||
            nvmlDeviceGetHandleByPciBusId_v2(pci, &by_pci) || nvmlDeviceGetHandleByIndex_v2(index, &by_index))
            return 1;
#define DEV(f) (snprintf(field, sizeof field, "device%d.%s", i, f), field)
        AGREE(DEV("name"), "%s", name, nname);
        AGREE(DEV("uuid"), "%s", uuid, nuuid);
        AGREE(DEV("memory_total"), "%zu", total, (size_t)m.total);
        AGREE(DEV("memory_total_v2"), "%zu", total, (size_t)m2.total);
        AGREE(DEV("memory_free"), "%zu", free_mem, (size_t)m.free);
        AGREE(DEV("memory_free_v2"), "%zu", free_mem, (size_t)m2.free);
        AGREE(DEV("memory_used"), "%zu", ctx_total - free_mem, (size_t)m.used);
        char legacy[sizeof p.busIdLegacy], cpci[32], bus_id[32];
        snprintf(legacy, sizeof legacy, "%s", p.busIdLegacy);
        snprintf(cpci, sizeof cpci, "%s", pci);
        lower(legacy);
        lower(cpci);
        AGREE(DEV("pci_bus_id_legacy"), "%s", cpci, legacy);
        vgpu_nvml_format_bus_id((unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID),
                                (unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID),
                                (unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID), 0, bus_id, sizeof bus_id);
        AGREE(DEV("pci_bus_id"), "%s", bus_id, p.busId);
        AGREE(DEV("pci_domain"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID), (int)p.domain);
        AGREE(DEV("pci_bus"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID), (int)p.bus);
        AGREE(DEV("pci_device"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID), (int)p.device);
        AGREE(DEV("pci_device_id"), "0x%08x", (unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID), p.pciDeviceId);
        AGREE(DEV("pci_subsystem_id"), "0x%08x", (unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_GPU_PCI_SUBSYSTEM_ID),
              p.pciSubSystemId);
        AGREE(DEV("cc_major"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), major_cc);
        AGREE(DEV("cc_minor"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR), minor_cc);
        AGREE(DEV("memory_bus_width"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH), (int)width);
        AGREE(DEV("max_sm_clock_mhz"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) / 1000, (int)sm_clock);
        AGREE(DEV("max_memory_clock_mhz"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) / 1000, (int)mem_clock);
        AGREE(DEV("multi_gpu_board"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD), (int)multi);
        AGREE(DEV("ecc_enabled"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_ECC_ENABLED), (int)ecc);
        AGREE(DEV("compute_mode"), "%d", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_MODE), (int)mode);
        if (getenv("CUDA_VISIBLE_DEVICES") == NULL) {
            AGREE(DEV("index"), "%d", i, (int)index);
            AGREE(DEV("minor_number"), "%d", i, (int)minor);
        }
        check("handle_by_pci_bus_id_is_the_uuid_handle", by_pci == h);
        check("handle_by_index_is_the_uuid_handle", by_index == h);
        check("memory_v2_version_kept", m2.version == nvmlMemory_v2);
    }
    return 0;
}

static void rules(void)
{
    nvmlDevice_t h;
    char small[8], buf[96];
    unsigned n;
    check("second_init", nvmlInit_v2() == NVML_SUCCESS);
    check("init_with_flags", nvmlInitWithFlags(0) == NVML_SUCCESS);
    check("shutdown_keeps_reference", nvmlShutdown() == NVML_SUCCESS && nvmlDeviceGetCount_v2(&n) == NVML_SUCCESS);
    check("handle_by_index", nvmlDeviceGetHandleByIndex_v2(0, &h) == NVML_SUCCESS);
    check("name_insufficient_size", nvmlDeviceGetName(h, small, sizeof small) == NVML_ERROR_INSUFFICIENT_SIZE);
    check("uuid_insufficient_size", nvmlDeviceGetUUID(h, small, sizeof small) == NVML_ERROR_INSUFFICIENT_SIZE);
    check("driver_version_branch_570", nvmlSystemGetDriverVersion(buf, sizeof buf) == NVML_SUCCESS && atoi(buf) >= 570);
    check("nvml_version", nvmlSystemGetNVMLVersion(buf, sizeof buf) == NVML_SUCCESS && strchr(buf, '.') != NULL);
    check("bad_handle", nvmlDeviceGetName((nvmlDevice_t)(uintptr_t)0x1000, buf, sizeof buf) == NVML_ERROR_INVALID_ARGUMENT);
    check("index_out_of_range", nvmlDeviceGetHandleByIndex_v2(n, &h) == NVML_ERROR_INVALID_ARGUMENT);
    check("unknown_uuid", nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &h) == NVML_ERROR_NOT_FOUND);
    check("unknown_pci", nvmlDeviceGetHandleByPciBusId_v2("0000:ff:1f.0", &h) == NVML_ERROR_NOT_FOUND);
    nvmlDeviceGetHandleByIndex_v2(0, &h);
    nvmlMemory_v2_t wrong = {.version = 1};
    check("memory_v2_version_mismatch", nvmlDeviceGetMemoryInfo_v2(h, &wrong) == NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    unsigned speed;
    check("fan_not_supported", nvmlDeviceGetFanSpeed(h, &speed) == NVML_ERROR_NOT_SUPPORTED);
    nvmlBrandType_t brand;
    nvmlDeviceArchitecture_t arch;
    unsigned temp, power, clock;
    nvmlPstates_t ps;
    nvmlUtilization_t util;
    nvmlTemperature_t tv = {.version = nvmlTemperature_v1, .sensorType = NVML_TEMPERATURE_GPU};
    check("brand", nvmlDeviceGetBrand(h, &brand) == NVML_SUCCESS);
    check("architecture", nvmlDeviceGetArchitecture(h, &arch) == NVML_SUCCESS);
    check("temperature", nvmlDeviceGetTemperature(h, NVML_TEMPERATURE_GPU, &temp) == NVML_SUCCESS && temp > 0 && temp < 90);
    check("temperature_v", nvmlDeviceGetTemperatureV(h, &tv) == NVML_SUCCESS && tv.temperature == (int)temp);
    check("power", nvmlDeviceGetPowerUsage(h, &power) == NVML_SUCCESS && power > 0);
    check("pstate", nvmlDeviceGetPerformanceState(h, &ps) == NVML_SUCCESS && ps == NVML_PSTATE_0);
    check("utilization", nvmlDeviceGetUtilizationRates(h, &util) == NVML_SUCCESS && util.gpu <= 100);
    check("clock", nvmlDeviceGetClockInfo(h, NVML_CLOCK_SM, &clock) == NVML_SUCCESS && clock > 0);

    /* A forked child gets its own session and keeps its handles. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        nvmlMemory_t m;
        _exit(nvmlDeviceGetMemoryInfo(h, &m) == NVML_SUCCESS && m.total > 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check("fork_child_queries", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    nvmlMemory_t m;
    check("fork_parent_queries", nvmlDeviceGetMemoryInfo(h, &m) == NVML_SUCCESS);

    /* Three inits so far (agreement, second_init, init_with_flags), one shutdown. */
    check("shutdown_counts_down", nvmlShutdown() == NVML_SUCCESS && nvmlDeviceGetCount_v2(&n) == NVML_SUCCESS);
    check("last_shutdown", nvmlShutdown() == NVML_SUCCESS);
    check("uninitialized_after_shutdown", nvmlDeviceGetCount_v2(&n) == NVML_ERROR_UNINITIALIZED);
    check("extra_shutdown", nvmlShutdown() == NVML_ERROR_UNINITIALIZED);
    check("reinit", nvmlInit_v2() == NVML_SUCCESS && nvmlDeviceGetMemoryInfo(h, &m) == NVML_SUCCESS);
    nvmlShutdown();
}

/* Every device's memory use and compute processes through all three ABI versions. */
static int procs(void)
{
    static nvmlProcessInfo_t infos[256];
    static nvmlProcessInfo_v1_t infos_v1[256];
    unsigned count = 0;
    if (nvmlInit_v2() || nvmlDeviceGetCount_v2(&count))
        return 1;
    for (unsigned d = 0; d < count; d++) {
        nvmlDevice_t h;
        nvmlMemory_t m;
        unsigned n = 0;
        if (nvmlDeviceGetHandleByIndex_v2(d, &h) || nvmlDeviceGetMemoryInfo(h, &m))
            return 1;
        printf("device%u.used=%llu\n", d, m.used);
        /* The size query first, as tools do. */
        nvmlReturn_t rc = nvmlDeviceGetComputeRunningProcesses_v3(h, &n, NULL);
        printf("device%u.count_query rc=%d count=%u\n", d, rc, n);
        n = sizeof infos / sizeof infos[0];
        if (nvmlDeviceGetComputeRunningProcesses_v3(h, &n, infos))
            return 1;
        for (unsigned i = 0; i < n; i++)
            printf("process v3 device=%u pid=%u used=%llu gi=%u ci=%u\n", d, infos[i].pid, infos[i].usedGpuMemory,
                   infos[i].gpuInstanceId, infos[i].computeInstanceId);
        n = sizeof infos / sizeof infos[0];
        if (nvmlDeviceGetComputeRunningProcesses_v2(h, &n, (nvmlProcessInfo_v2_t *)infos))
            return 1;
        for (unsigned i = 0; i < n; i++)
            printf("process v2 device=%u pid=%u used=%llu gi=%u ci=%u\n", d, infos[i].pid, infos[i].usedGpuMemory,
                   infos[i].gpuInstanceId, infos[i].computeInstanceId);
        n = sizeof infos_v1 / sizeof infos_v1[0];
        if (nvmlDeviceGetComputeRunningProcesses(h, &n, infos_v1))
            return 1;
        for (unsigned i = 0; i < n; i++)
            printf("process v1 device=%u pid=%u used=%llu\n", d, infos_v1[i].pid, infos_v1[i].usedGpuMemory);
    }
    return nvmlShutdown() != NVML_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "procs") == 0)
        return procs();
    if (agreement() != 0) {
        printf("error: a CUDA or NVML query failed\n");
        return 1;
    }
    rules();
    return failures != 0;
}
