/*
 * cuGetProcAddress against cudart 13.0's own request map: every (name, version, flags) it asks
 * for must yield exactly the ABI symbol the map names, or NOT_FOUND when that symbol is one of
 * our NOT_SUPPORTED stubs; never another variant. The driver version bounds the answer: with no
 * service to ask, that is VGPU_DRIVER_VERSION (default 13000). Also SHA-256 test vectors (FIPS
 * 180-4).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sha256.h"
#include "vgpu_cuda.h"

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

static int listed(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int found = 0;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        found = strcmp(line, name) == 0;
    }
    if (f != NULL)
        fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s libcuda.so.1 abi-map.tsv unsupported.txt\n", argv[0]);
        return 2;
    }
    /* No service answers here: the driver version is the fallback, 13000 unless told otherwise. */
    setenv("VGPU_SOCKET", "/nonexistent/vgpu-unit-test.sock", 1);
    setenv("VGPU_LOG", "off", 1);
    unsetenv("VGPU_DRIVER_VERSION");
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL);
    if (lib == NULL)
        return check_done("cuGetProcAddress");
    gpa_fn gpa = (gpa_fn)dlsym(lib, "cuGetProcAddress_v2");
    FILE *tsv = fopen(argv[2], "r");
    CHECK(gpa != NULL && tsv != NULL);
    char line[512];
    int rows = 0, found = 0, stubbed = 0;
    while (tsv != NULL && fgets(line, sizeof line, tsv) != NULL) {
        char name[128], symbol[128];
        int version;
        unsigned long long flags;
        if (sscanf(line, "%127s %d %llu %127s", name, &version, &flags, symbol) != 4 || strcmp(name, "request_name") == 0)
            continue;
        rows++;
        void *fn = NULL;
        CUdriverProcAddressQueryResult status = 99;
        CUresult rc = gpa(name, &fn, version, flags, &status);
        if (listed(argv[3], symbol)) {
            stubbed++;
            CHECK_EQ(CUDA_ERROR_NOT_FOUND, rc);
            CHECK(fn == NULL);
        } else {
            found++;
            void *expected = dlsym(lib, symbol);
            if (rc != CUDA_SUCCESS || fn != expected || status != CU_GET_PROC_ADDRESS_SUCCESS) {
                check_failures++;
                fprintf(stderr, "FAIL %s@%d/%llu: expected %s\n", name, version, flags, symbol);
            }
            check_count++;
        }
    }
    CHECK_EQ(439, rows);
    printf("cudart 13.0 requests: %d answered with the mapped symbol, %d not supported (NOT_FOUND)\n", found, stubbed);

    /* The version rule: newest variant at or below the request; below the first, version not sufficient. */
    void *fn = NULL;
    CUdriverProcAddressQueryResult status;
    CHECK_EQ(CUDA_SUCCESS, gpa("cuMemAlloc", &fn, 13000, 0, &status));
    CHECK(fn == dlsym(lib, "cuMemAlloc_v2"));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxCreate", &fn, 12000, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxCreate_v3"));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuMemcpyHtoD", &fn, 12000, 2, &status));
    CHECK(fn == dlsym(lib, "cuMemcpyHtoD_v2_ptds"));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuDeviceGetName", &fn, 13000, 2, &status));
    CHECK(fn == dlsym(lib, "cuDeviceGetName"));
    CHECK_EQ(CUDA_ERROR_NOT_FOUND, gpa("cuMemAllocAsync", &fn, 11000, 0, &status));
    CHECK_EQ(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT, status);
    CHECK_EQ(CUDA_ERROR_NOT_FOUND, gpa("", &fn, 0, 0, &status));
    CHECK_EQ(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, status);
    CHECK_EQ(CUDA_ERROR_NOT_FOUND, gpa("cuNoSuchFunction", &fn, 13000, 0, &status));
    CHECK(fn == NULL);
    CHECK_EQ(CUDA_ERROR_INVALID_VALUE, gpa("cuInit", &fn, 13000, 8, &status));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxSynchronize", &fn, 13000, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxSynchronize_v2"));

    /* A CUDA 12.8 driver: a runtime asking for 13.0 gets 12.8's variants, and nothing newer. */
    typedef CUresult (*version_fn)(int *);
    version_fn driver_version = (version_fn)dlsym(lib, "cuDriverGetVersion");
    setenv("VGPU_DRIVER_VERSION", "12080", 1);
    int v = 0;
    CHECK(driver_version != NULL && driver_version(&v) == CUDA_SUCCESS);
    CHECK_EQ(12080, v);
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxSynchronize", &fn, 13000, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxSynchronize"));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxGetDevice", &fn, 13020, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxGetDevice"));
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxGetDevice", &fn, 12000, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxGetDevice"));
    CHECK_EQ(CUDA_ERROR_NOT_FOUND, gpa("cuDeviceGetHostAtomicCapabilities", &fn, 13000, 0, &status));
    CHECK_EQ(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT, status);
    CHECK(fn == NULL);
    setenv("VGPU_DRIVER_VERSION", "13000", 1);
    CHECK_EQ(CUDA_SUCCESS, gpa("cuCtxGetDevice", &fn, 13020, 0, &status));
    CHECK(fn == dlsym(lib, "cuCtxGetDevice_v2"));

    static const struct { const char *msg; const char *hex; } vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t d[32];
        char hex[65];
        vgpu_sha256(vectors[i].msg, strlen(vectors[i].msg), d);
        for (int j = 0; j < 32; j++)
            snprintf(hex + 2 * j, 3, "%02x", d[j]);
        CHECK_STR(vectors[i].hex, hex);
    }
    return check_done("cuGetProcAddress");
}
