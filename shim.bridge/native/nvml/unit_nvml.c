/*
 * Unit test of libnvidia-ml.so.1 without a service: the strings NVML prints and parses, every
 * exported name resolving, the generated stubs answering NOT_SUPPORTED, and nvmlInit failing the
 * way NVIDIA's does without a driver.
 *
 *   unit_nvml <libnvidia-ml.so.1> <exports.txt> <unsupported.txt> <implemented.txt>
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nvml_format.h"

static void test_uuid(void)
{
    uint8_t u[16], back[16];
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)(0xa0 + i * 7);
    char text[VGPU_NVML_UUID_LEN + 1];
    vgpu_nvml_format_uuid(u, text);
    CHECK_STR("GPU-a0a7aeb5-bcc3-cad1-d8df-e6edf4fb0209", text);
    CHECK_EQ(VGPU_NVML_UUID_LEN, strlen(text));
    CHECK_EQ(0, vgpu_nvml_parse_uuid(text, back));
    CHECK(memcmp(u, back, 16) == 0);
    CHECK_EQ(0, vgpu_nvml_parse_uuid("gpu-A0A7AEB5-BCC3-CAD1-D8DF-E6EDF4FB0209", back));
    CHECK(memcmp(u, back, 16) == 0);
    /* Only what NVML prints names a device: no prefixes, no missing or moved dashes. */
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("GPU-a0a7aeb5", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("a0a7aeb5-bcc3-cad1-d8df-e6edf4fb0209", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("GPU-a0a7aeb5bcc3cad1d8dfe6edf4fb0209", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("GPU-a0a7aeb5-bcc3-cad1-d8df-e6edf4fb02099", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("GPU-a0a7aeb-5bcc3-cad1-d8df-e6edf4fb0209", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid("MIG-a0a7aeb5-bcc3-cad1-d8df-e6edf4fb0209", back));
    CHECK_EQ(-1, vgpu_nvml_parse_uuid(NULL, back));
}

static void test_bus_id(void)
{
    char text[32];
    vgpu_nvml_format_bus_id(0, 0x1b, 0, 0, text, sizeof text);
    CHECK_STR("00000000:1B:00.0", text);
    vgpu_nvml_format_bus_id(0, 0x1b, 0, 1, text, sizeof text);
    CHECK_STR("0000:1B:00.0", text);
    vgpu_nvml_format_bus_id(0x10001, 0xff, 0x1f, 0, text, sizeof text);
    CHECK_STR("00010001:FF:1F.0", text);
    unsigned d, b, dev;
    CHECK_EQ(0, vgpu_nvml_parse_bus_id("00000000:1B:00.0", &d, &b, &dev));
    CHECK(d == 0 && b == 0x1b && dev == 0);
    CHECK_EQ(0, vgpu_nvml_parse_bus_id("0000:1b:00.0", &d, &b, &dev));
    CHECK(d == 0 && b == 0x1b && dev == 0);
    CHECK_EQ(0, vgpu_nvml_parse_bus_id("1b:02.0", &d, &b, &dev));
    CHECK(d == 0 && b == 0x1b && dev == 2);
    CHECK_EQ(-1, vgpu_nvml_parse_bus_id("0000:1b:00.1", &d, &b, &dev));
    CHECK_EQ(-1, vgpu_nvml_parse_bus_id("0000:1b:00.0x", &d, &b, &dev));
    CHECK_EQ(-1, vgpu_nvml_parse_bus_id("0000:100:00.0", &d, &b, &dev));
    CHECK_EQ(-1, vgpu_nvml_parse_bus_id("nonsense", &d, &b, &dev));
}

static void test_misc(void)
{
    char buf[8];
    CHECK_EQ(NVML_SUCCESS, vgpu_nvml_copy_string(buf, 8, "1234567"));
    CHECK_STR("1234567", buf);
    CHECK_EQ(NVML_ERROR_INSUFFICIENT_SIZE, vgpu_nvml_copy_string(buf, 7, "1234567"));
    CHECK_EQ(NVML_ERROR_INVALID_ARGUMENT, vgpu_nvml_copy_string(NULL, 8, "x"));
    char v[80];
    vgpu_nvml_driver_for_cuda(13000, v, sizeof v);
    CHECK_STR("580.95.05", v);
    vgpu_nvml_driver_for_cuda(12080, v, sizeof v);
    CHECK(atoi(v) >= 570);
    CHECK_EQ(NVML_DEVICE_ARCH_HOPPER, vgpu_nvml_architecture(9, 0));
    CHECK_EQ(NVML_DEVICE_ARCH_ADA, vgpu_nvml_architecture(8, 9));
    CHECK_EQ(NVML_DEVICE_ARCH_AMPERE, vgpu_nvml_architecture(8, 0));
    CHECK_EQ(NVML_DEVICE_ARCH_TURING, vgpu_nvml_architecture(7, 5));
    CHECK_EQ(128, vgpu_nvml_cores_per_sm(9, 0));
    CHECK_EQ(64, vgpu_nvml_cores_per_sm(8, 0));
    CHECK_EQ(NVML_BRAND_NVIDIA, vgpu_nvml_brand("NVIDIA H100 80GB HBM3"));
    CHECK_EQ(NVML_BRAND_GEFORCE, vgpu_nvml_brand("NVIDIA GeForce RTX 4090"));
    CHECK_STR("Driver Not Loaded", vgpu_nvml_error_string(NVML_ERROR_DRIVER_NOT_LOADED));
    CHECK_STR("Not Supported", vgpu_nvml_error_string(NVML_ERROR_NOT_SUPPORTED));
}

static char **read_lines(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    char **lines = NULL;
    *n = 0;
    if (f == NULL)
        return NULL;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        lines = realloc(lines, sizeof *lines * (size_t)(*n + 1));
        lines[(*n)++] = strdup(line);
    }
    fclose(f);
    return lines;
}

static void test_library(const char *lib_path, const char *exports, const char *unsupported, const char *implemented)
{
    /* No service: nvmlInit must report a missing driver, without noise in the build log. */
    setenv("VGPU_SOCKET", "/nonexistent/vgpu-unit-test.sock", 1);
    setenv("VGPU_LOG", "off", 1);
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL);
    if (lib == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return;
    }
    int n;
    char **names = read_lines(exports, &n);
    CHECK(n > 400);
    for (int i = 0; i < n; i++) {
        if (dlsym(lib, names[i]) == NULL) {
            fprintf(stderr, "not exported: %s\n", names[i]);
            CHECK(!"every name in exports.txt resolves");
        }
    }
    int u, m;
    char **stubs = read_lines(unsupported, &u);
    char **impl = read_lines(implemented, &m);
    CHECK_EQ(n, u + m);
    for (int i = 0; i < u; i++) {
        int (*stub)(void) = (int (*)(void))dlsym(lib, stubs[i]);
        CHECK(stub != NULL && stub() == NVML_ERROR_NOT_SUPPORTED);
    }
    const char *must[] = {"nvmlInit_v2", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlDeviceGetHandleByUUID",
                          "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetName", "nvmlErrorString", "nvmlDeviceGetPciInfo_v3",
                          "nvmlDeviceGetComputeRunningProcesses_v3"};
    for (size_t k = 0; k < sizeof must / sizeof must[0]; k++) {
        int found = 0;
        for (int i = 0; i < m; i++)
            found |= strcmp(impl[i], must[k]) == 0;
        if (!found)
            fprintf(stderr, "not implemented: %s\n", must[k]);
        CHECK(found);
    }

    nvmlReturn_t (*init)(void) = (nvmlReturn_t (*)(void))dlsym(lib, "nvmlInit_v2");
    nvmlReturn_t (*shutdown)(void) = (nvmlReturn_t (*)(void))dlsym(lib, "nvmlShutdown");
    nvmlReturn_t (*count)(unsigned *) = (nvmlReturn_t (*)(unsigned *))dlsym(lib, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*driver)(char *, unsigned) = (nvmlReturn_t (*)(char *, unsigned))dlsym(lib, "nvmlSystemGetDriverVersion");
    const char *(*error)(nvmlReturn_t) = (const char *(*)(nvmlReturn_t))dlsym(lib, "nvmlErrorString");
    unsigned c = 7;
    char v[80];
    CHECK_EQ(NVML_ERROR_UNINITIALIZED, count(&c));
    CHECK_EQ(NVML_ERROR_UNINITIALIZED, driver(v, sizeof v));
    CHECK_EQ(NVML_ERROR_DRIVER_NOT_LOADED, init());
    CHECK_EQ(NVML_ERROR_DRIVER_NOT_LOADED, init()); /* and again: a failed init leaves nothing behind */
    CHECK_EQ(NVML_ERROR_UNINITIALIZED, count(&c));
    CHECK_EQ(NVML_ERROR_UNINITIALIZED, shutdown());
    CHECK_STR("Driver Not Loaded", error(NVML_ERROR_DRIVER_NOT_LOADED));
}

int main(int argc, char **argv)
{
    test_uuid();
    test_bus_id();
    test_misc();
    if (argc == 5)
        test_library(argv[1], argv[2], argv[3], argv[4]);
    else
        CHECK(!"usage: unit_nvml <lib> <exports.txt> <unsupported.txt> <implemented.txt>");
    return check_done("unit_nvml");
}
