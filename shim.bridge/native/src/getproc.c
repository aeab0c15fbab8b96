/*
 * cuGetProcAddress: how cudart and cuBLAS bind the driver. The request names an API, the CUDA
 * version whose ABI the caller was built for, and whether it wants the per-thread-default-stream
 * variant; the answer is the newest variant introduced at or below that version, and never above
 * the driver version we report (cuDriverGetVersion's number): a runtime built for a newer CUDA
 * gets what a driver of that version has, as from NVIDIA's driver. The table is data
 * (gen/procaddress_table.h, generated from cudart's own request map and cudaTypedefs.h).
 * Entry points we only stub are answered NOT_FOUND: cudart tolerates gaps at init and reports
 * them when the API is used, which beats handing out a function that always fails.
 */
#include <stdatomic.h>
#include <string.h>

#include "vgpu.h"

#include "proctable.h"

#define ENTRIES vgpu_proc_count

int vgpu_is_stub(const char *name);

/* The first entry of `name` (the table is sorted by name, flags, version). */
static size_t first_of(const char *name)
{
    size_t lo = 0, hi = ENTRIES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(vgpu_proc_table[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct vgpu_proc_entry *lookup(const char *name, int version, int flags, int *too_old)
{
    const struct vgpu_proc_entry *best = NULL;
    *too_old = 0;
    for (size_t i = first_of(name); i < ENTRIES && strcmp(vgpu_proc_table[i].name, name) == 0; i++) {
        const struct vgpu_proc_entry *e = &vgpu_proc_table[i];
        if (e->flags != flags)
            continue;
        if (e->version <= version) {
            if (best == NULL || e->version > best->version)
                best = e;
        } else {
            *too_old = 1;
        }
    }
    return best;
}

/*
 * The bound. cudart asks for cuInit itself through here, so this may run before cuInit: like
 * cuDriverGetVersion, connect to learn the service's version, but only once per process, so that
 * a service that is down costs one attempt (and one log line), not one per request.
 */
static atomic_int version_asked;

static int driver_version(void)
{
    return vgpu_driver_version(!atomic_exchange(&version_asked, 1));
}

static CUresult get_proc(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                         CUdriverProcAddressQueryResult *status)
{
    vgpu_setup();
    if (pfn == NULL || symbol == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    if (status != NULL)
        *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        return CUDA_ERROR_INVALID_VALUE;
    int driver = driver_version();
    if (cudaVersion > driver) {
        LOG_TRACE("cuGetProcAddress(%s, %d): answering for the driver's version %d", symbol, cudaVersion, driver);
        cudaVersion = driver;
    }
    int too_old = 0;
    const struct vgpu_proc_entry *e = NULL;
    if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)
        e = lookup(symbol, cudaVersion, 2, &too_old);
    if (e == NULL)
        e = lookup(symbol, cudaVersion, 0, &too_old);
    if (e == NULL) {
        if (too_old && status != NULL)
            *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        LOG_DEBUG("cuGetProcAddress(%s, %d, %llu): %s", symbol, cudaVersion, (unsigned long long)flags,
                  too_old ? "version not sufficient" : "not found");
        return CUDA_ERROR_NOT_FOUND;
    }
    if (vgpu_is_stub(e->symbol)) {
        LOG_DEBUG("cuGetProcAddress(%s, %d, %llu): %s is not supported, answering not found", symbol, cudaVersion,
                  (unsigned long long)flags, e->symbol);
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = (void *)e->fn;
    if (status != NULL)
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
    LOG_TRACE("cuGetProcAddress(%s, %d, %llu) = %s", symbol, cudaVersion, (unsigned long long)flags,
              e->symbol);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *symbolStatus)
{
    return get_proc(symbol, pfn, cudaVersion, flags, symbolStatus);
}

VGPU_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return get_proc(symbol, pfn, cudaVersion, flags, NULL);
}
