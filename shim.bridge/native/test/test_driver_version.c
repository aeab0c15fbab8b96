/*
 * The driver version as a runtime meets it, in cudart's order: cuGetProcAddress first (cudart
 * binds cuInit through it), before cuInit and before cuDriverGetVersion, then after cuInit. The
 * number the service configures must bound cuGetProcAddress from the very first call. Prints
 * key=value lines; DriverVersionIT compares them with the configured version.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "cuda_api.h"

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status);

/* The ABI name cuGetProcAddress answered for a 13.0 request of `name`. */
static void bound(const char *when, const char *name, const char *v1, const char *v2)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult status = 99;
    CUresult rc = cuGetProcAddress_v2(name, &fn, 13000, 0, &status);
    const char *got = fn == NULL ? "none" : fn == dlsym(RTLD_DEFAULT, v1) ? v1 : fn == dlsym(RTLD_DEFAULT, v2) ? v2 : "other";
    printf("%s.%s=%s rc=%d status=%d\n", when, name, got, rc, (int)status);
}

int main(void)
{
    bound("pre_init", "cuCtxSynchronize", "cuCtxSynchronize", "cuCtxSynchronize_v2");
    int version = 0;
    CUresult rc = cuDriverGetVersion(&version);
    printf("pre_init.driver_version=%d rc=%d\n", version, rc);
    rc = cuInit(0);
    printf("init=%d\n", rc);
    rc = cuDriverGetVersion(&version);
    printf("driver_version=%d rc=%d\n", version, rc);
    bound("post_init", "cuCtxGetDevice", "cuCtxGetDevice", "cuCtxGetDevice_v2");
    return 0;
}
