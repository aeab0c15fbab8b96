/*
 * cuGetExportTable: the private tables NVIDIA's runtime and cuBLAS fetch from the driver
 * (reference notes cuda-driver-shim-facts.md §4). Slots we know are implemented; every other slot
 * is a trap that logs the table and slot once and answers CUDA_ERROR_NOT_SUPPORTED, so an unknown
 * call is visible instead of a crash. Everything here is answered locally: context-local storage
 * in particular is hit on every runtime call.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integrity.h"
#include "vgpu.h"

typedef void (*slot_fn)(void);

CUresult vgpu_primary_ctx_peek(CUcontext *pctx, CUdevice dev);
CUresult vgpu_module_from_image(CUmodule *module, const void *image);

/* ---------------------------------------------------------------- traps for unknown slots */

static CUresult trap(const char *table, int slot)
{
    LOG_WARN("export table %s slot %d called: not implemented by vgpu", table, slot);
    return CUDA_ERROR_NOT_SUPPORTED;
}

#define TRAP(tbl, n) static CUresult trap_##tbl##_##n(void) { return trap(#tbl, n); }

TRAP(cudart, 3) TRAP(cudart, 4) TRAP(cudart, 5) TRAP(cudart, 9) TRAP(cudart, 10) TRAP(cudart, 11)
TRAP(hooks, 1) TRAP(hooks, 3) TRAP(hooks, 4) TRAP(hooks, 5)
TRAP(tls, 1) TRAP(tls, 3)
TRAP(cls, 3)
TRAP(checks, 1)
TRAP(integrity, 2)
TRAP(cublaslt, 1) TRAP(cublaslt, 2) TRAP(cublaslt, 5) TRAP(cublaslt, 6) TRAP(cublaslt, 7)
TRAP(cublaslt, 8) TRAP(cublaslt, 9) TRAP(cublaslt, 10) TRAP(cublaslt, 11) TRAP(cublaslt, 12) TRAP(cublaslt, 13)
TRAP(cublaslt, 14) TRAP(cublaslt, 15) TRAP(cublaslt, 16) TRAP(cublaslt, 17) TRAP(cublaslt, 18) TRAP(cublaslt, 19)
TRAP(cublaslt, 20) TRAP(cublaslt, 21) TRAP(cublaslt, 22) TRAP(cublaslt, 23) TRAP(cublaslt, 24) TRAP(cublaslt, 25)
TRAP(cublaslt, 26) TRAP(cublaslt, 27) TRAP(cublaslt, 28) TRAP(cublaslt, 29) TRAP(cublaslt, 30) TRAP(cublaslt, 31)
TRAP(cublaslt, 32) TRAP(cublaslt, 33) TRAP(cublaslt, 34) TRAP(cublaslt, 35) TRAP(cublaslt, 36) TRAP(cublaslt, 37)
TRAP(cublaslt, 38) TRAP(cublaslt, 40) TRAP(cublaslt, 41) TRAP(cublaslt, 42) TRAP(cublaslt, 43) TRAP(cublaslt, 44)
TRAP(cublaslt, 45) TRAP(cublaslt, 46) TRAP(cublaslt, 47) TRAP(cublaslt, 48) TRAP(cublaslt, 49) TRAP(cublaslt, 50)
TRAP(cublaslt, 52) TRAP(cublaslt, 53) TRAP(cublaslt, 54) TRAP(cublaslt, 55) TRAP(cublaslt, 56) TRAP(cublaslt, 57)
TRAP(cublaslt, 58) TRAP(cublaslt, 59) TRAP(cublaslt, 60) TRAP(cublaslt, 61) TRAP(cublaslt, 62) TRAP(cublaslt, 63)
TRAP(cluster, 1) TRAP(cluster, 2) TRAP(cluster, 3) TRAP(cluster, 5) TRAP(cluster, 6) TRAP(cluster, 7) TRAP(cluster, 8)
TRAP(cluster, 9) TRAP(cluster, 10) TRAP(cluster, 11) TRAP(cluster, 12) TRAP(cluster, 13) TRAP(cluster, 14) TRAP(cluster, 15)
TRAP(cluster, 16)

/* ---------------------------------------------------------------- CUDART_INTERFACE */

static CUresult cudart_module_from_wrapper(CUmodule *module, const void *wrapper)
{
    return vgpu_module_from_image(module, wrapper);
}

/* The primary context's handle, not activated: must equal what cuDevicePrimaryCtxRetain returns. */
static CUresult cudart_primary_context(CUcontext *pctx, CUdevice dev)
{
    return vgpu_primary_ctx_peek(pctx, dev);
}

static CUresult cudart_module_from_wrapper_ext1(CUmodule *module, const void *wrapper, void *a, void *b, unsigned c)
{
    (void)a;
    (void)b;
    (void)c;
    return vgpu_module_from_image(module, wrapper);
}

static void cudart_fn7(size_t unused)
{
    (void)unused;
}

static CUresult cudart_module_from_header_ext2(const void *fatbin, CUmodule *module, void *a, void *b, unsigned c)
{
    (void)a;
    (void)b;
    (void)c;
    return vgpu_module_from_image(module, fatbin);
}

/* Loads the PTX compiler and friends in the real driver; the service compiles (or simulates). */
static CUresult cudart_load_compilers(void)
{
    return CUDA_SUCCESS;
}

static const slot_fn cudart_interface[13] = {
    (slot_fn)(uintptr_t)(13 * sizeof(void *)),
    (slot_fn)cudart_module_from_wrapper,
    (slot_fn)cudart_primary_context,
    (slot_fn)trap_cudart_3,
    (slot_fn)trap_cudart_4,
    (slot_fn)trap_cudart_5,
    (slot_fn)cudart_module_from_wrapper_ext1,
    (slot_fn)cudart_fn7,
    (slot_fn)cudart_module_from_header_ext2,
    (slot_fn)trap_cudart_9,
    (slot_fn)trap_cudart_10,
    (slot_fn)trap_cudart_11,
    (slot_fn)cudart_load_compilers,
};

/* ---------------------------------------------------------------- TOOLS_RUNTIME_CALLBACK_HOOKS */

/* Zeroed buffers the runtime's tool hooks look at: nothing registered. */
static uint32_t hook_buffer1[1024];
static uint32_t hook_buffer2[14];

static void hooks_buffer1(void **ptr, size_t *size)
{
    *ptr = hook_buffer1;
    *size = sizeof hook_buffer1;
}

static void hooks_buffer2(void **ptr, size_t *size)
{
    *ptr = hook_buffer2;
    *size = sizeof hook_buffer2;
}

static const slot_fn tools_hooks[7] = {
    (slot_fn)(uintptr_t)(7 * sizeof(void *)),
    (slot_fn)trap_hooks_1,
    (slot_fn)hooks_buffer1,
    (slot_fn)trap_hooks_3,
    (slot_fn)trap_hooks_4,
    (slot_fn)trap_hooks_5,
    (slot_fn)hooks_buffer2,
};

/* ---------------------------------------------------------------- TOOLS_TLS */

static CUresult tls_current_context(CUcontext *pctx)
{
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c = vgpu_current_ctx();
    *pctx = c ? (CUcontext)(uintptr_t)c->handle : NULL;
    return CUDA_SUCCESS;
}

static const slot_fn tools_tls[4] = {
    (slot_fn)(uintptr_t)(4 * sizeof(void *)),
    (slot_fn)trap_tls_1,
    (slot_fn)tls_current_context,
    (slot_fn)trap_tls_3,
};

/* ---------------------------------------------------------------- CONTEXT_LOCAL_STORAGE_INTERFACE_V0301 */

static struct vgpu_ctx *cls_ctx(CUcontext ctx)
{
    return ctx == NULL ? vgpu_current_ctx() : vgpu_ctx_from(ctx);
}

static CUresult cls_put(CUcontext ctx, void *key, void *value, vgpu_cls_dtor dtor)
{
    struct vgpu_ctx *c = cls_ctx(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&c->cls_lock);
    CUresult rc = CUDA_SUCCESS;
    int i;
    for (i = 0; i < c->cls_count && c->cls[i].key != key; i++)
        ;
    if (i == c->cls_count) {
        if (c->cls_count == VGPU_CLS_SLOTS)
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        else
            c->cls_count++;
    }
    if (rc == CUDA_SUCCESS)
        c->cls[i] = (struct vgpu_cls_entry){key, value, dtor};
    pthread_mutex_unlock(&c->cls_lock);
    return rc;
}

static CUresult cls_delete(CUcontext ctx, void *key)
{
    struct vgpu_ctx *c = cls_ctx(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&c->cls_lock);
    CUresult rc = CUDA_ERROR_INVALID_HANDLE;
    for (int i = 0; i < c->cls_count; i++) {
        if (c->cls[i].key == key) {
            c->cls[i] = c->cls[--c->cls_count];
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&c->cls_lock);
    return rc;
}

/* Absent keys are an error: that is how cudart learns it has to put() first. */
static CUresult cls_get(void **value, CUcontext ctx, void *key)
{
    struct vgpu_ctx *c = cls_ctx(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&c->cls_lock);
    CUresult rc = CUDA_ERROR_INVALID_HANDLE;
    for (int i = 0; i < c->cls_count; i++) {
        if (c->cls[i].key == key) {
            *value = c->cls[i].value;
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&c->cls_lock);
    return rc;
}

/* No size slot in this table: slot 0 is put(). */
static const slot_fn context_local_storage[4] = {
    (slot_fn)cls_put,
    (slot_fn)cls_delete,
    (slot_fn)cls_get,
    (slot_fn)trap_cls_3,
};

/* ---------------------------------------------------------------- CONTEXT_CHECKS */

static CUresult checks_context(CUcontext ctx, uint32_t *out1, const void **out2)
{
    (void)ctx;
    if (out1 != NULL)
        *out1 = 0;
    if (out2 != NULL)
        *out2 = NULL;
    return CUDA_SUCCESS;
}

static uint32_t checks_fn3(void)
{
    return 0;
}

static const slot_fn context_checks[4] = {
    (slot_fn)(uintptr_t)(4 * sizeof(void *)),
    (slot_fn)trap_checks_1,
    (slot_fn)checks_context,
    (slot_fn)checks_fn3,
};

/* ---------------------------------------------------------------- INTEGRITY_CHECK */

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t out[2]);

static const slot_fn integrity_table[3] = {
    (slot_fn)(uintptr_t)(3 * sizeof(void *)),
    (slot_fn)integrity_check,
    (slot_fn)trap_integrity_2,
};

/*
 * The answer covers exactly what this shim reports: the driver version from the service, and the
 * UUID and PCI location of every visible device, so it stays valid whatever backend is active.
 */
static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t out[2])
{
    if (out == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (version % 10 == 0) {
        out[0] = 0x3341181C03CB675Cull;
        out[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    if (version % 10 == 1) {
        out[0] = 0x1841181C03CB675Cull;
        out[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    int driver = 0;
    cuDriverGetVersion(&driver);
    int n = vgpu_device_count;
    struct vgpu_integrity_device *devs = calloc((size_t)n + 1, sizeof *devs);
    if (devs == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < n; i++) {
        memcpy(devs[i].uuid, vgpu_devices[i].uuid, 16);
        devs[i].pci_domain = vgpu_devices[i].attr[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID];
        devs[i].pci_bus = vgpu_devices[i].attr[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID];
        devs[i].pci_device = vgpu_devices[i].attr[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID];
    }
    vgpu_integrity_hash((uint32_t)driver, version, (uint32_t)getpid(), (uint32_t)(uintptr_t)pthread_self(),
                        (uint64_t)(uintptr_t)cudart_interface, (uint64_t)(uintptr_t)integrity_table,
                        (uint64_t)(uintptr_t)integrity_check, unix_seconds, devs, n, out);
    free(devs);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- cuBLASLt's context table (21318c60) */

static CUresult cublaslt_context_device(CUcontext ctx, CUdevice *dev)
{
    struct vgpu_ctx *c = cls_ctx(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (dev == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *dev = c->device;
    return CUDA_SUCCESS;
}

/* A number identifying the context, stable for its lifetime. */
static CUresult cublaslt_context_id(CUcontext ctx, uint64_t *id)
{
    struct vgpu_ctx *c = cls_ctx(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (id == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *id = c->handle & 0xffffffffffffull;
    return CUDA_SUCCESS;
}

/*
 * cuBLAS 12.6's static cudart keeps a per-stream device buffer (the result of a host-pointer-mode
 * reduction such as cublasSdot_v2 lands there) and finds it by stream: slot 51 turns a stream
 * handle into the driver's stream (NULL means the per-thread stream when the last argument is set,
 * as for CU_STREAM_PER_THREAD itself), slot 39 gives that stream's id. Only the pair's consistency
 * matters to cuBLAS: the same stream always gives the same id, distinct streams distinct ids. The
 * legacy stream is answered as CU_STREAM_LEGACY, whatever handle named it.
 */
static CUresult cublaslt_stream(CUcontext ctx, CUstream stream, CUstream *out, int per_thread)
{
    if (cls_ctx(ctx) == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (out == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (stream == NULL)
        stream = per_thread ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
    struct vgpu_stream *s;
    CUresult rc = vgpu_stream_resolve(stream, 1, &s);
    if (rc == CUDA_SUCCESS)
        *out = stream;
    return rc;
}

static CUresult cublaslt_stream_id(CUcontext ctx, CUstream stream, unsigned long long *id)
{
    if (cls_ctx(ctx) == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (id == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_stream *s;
    CUresult rc = vgpu_stream_resolve(stream, 1, &s);
    if (rc == CUDA_SUCCESS)
        *id = s != NULL ? s->id : 0; /* as cuStreamGetId: 0 for the legacy stream */
    return rc;
}

/* 64 slots: the driver's table is longer still (cuBLAS reads slot 51), unknown slots trap. */
static const slot_fn cublaslt_context[64] = {
    (slot_fn)(uintptr_t)(64 * sizeof(void *)),
    (slot_fn)trap_cublaslt_1,  (slot_fn)trap_cublaslt_2,  (slot_fn)cublaslt_context_device,
    (slot_fn)cublaslt_context_id, (slot_fn)trap_cublaslt_5, (slot_fn)trap_cublaslt_6,
    (slot_fn)trap_cublaslt_7,  (slot_fn)trap_cublaslt_8,  (slot_fn)trap_cublaslt_9,  (slot_fn)trap_cublaslt_10,
    (slot_fn)trap_cublaslt_11, (slot_fn)trap_cublaslt_12, (slot_fn)trap_cublaslt_13, (slot_fn)trap_cublaslt_14,
    (slot_fn)trap_cublaslt_15, (slot_fn)trap_cublaslt_16, (slot_fn)trap_cublaslt_17, (slot_fn)trap_cublaslt_18,
    (slot_fn)trap_cublaslt_19, (slot_fn)trap_cublaslt_20, (slot_fn)trap_cublaslt_21, (slot_fn)trap_cublaslt_22,
    (slot_fn)trap_cublaslt_23, (slot_fn)trap_cublaslt_24, (slot_fn)trap_cublaslt_25, (slot_fn)trap_cublaslt_26,
    (slot_fn)trap_cublaslt_27, (slot_fn)trap_cublaslt_28, (slot_fn)trap_cublaslt_29, (slot_fn)trap_cublaslt_30,
    (slot_fn)trap_cublaslt_31, (slot_fn)trap_cublaslt_32, (slot_fn)trap_cublaslt_33, (slot_fn)trap_cublaslt_34,
    (slot_fn)trap_cublaslt_35, (slot_fn)trap_cublaslt_36, (slot_fn)trap_cublaslt_37, (slot_fn)trap_cublaslt_38,
    (slot_fn)cublaslt_stream_id, (slot_fn)trap_cublaslt_40, (slot_fn)trap_cublaslt_41, (slot_fn)trap_cublaslt_42,
    (slot_fn)trap_cublaslt_43, (slot_fn)trap_cublaslt_44, (slot_fn)trap_cublaslt_45, (slot_fn)trap_cublaslt_46,
    (slot_fn)trap_cublaslt_47, (slot_fn)trap_cublaslt_48, (slot_fn)trap_cublaslt_49, (slot_fn)trap_cublaslt_50,
    (slot_fn)cublaslt_stream,  (slot_fn)trap_cublaslt_52, (slot_fn)trap_cublaslt_53, (slot_fn)trap_cublaslt_54,
    (slot_fn)trap_cublaslt_55, (slot_fn)trap_cublaslt_56, (slot_fn)trap_cublaslt_57, (slot_fn)trap_cublaslt_58,
    (slot_fn)trap_cublaslt_59, (slot_fn)trap_cublaslt_60, (slot_fn)trap_cublaslt_61, (slot_fn)trap_cublaslt_62,
    (slot_fn)trap_cublaslt_63,
};

/* ---------------------------------------------------------------- cluster prototype table (1734dc26) */

/*
 * cuBLASLt 12.6 asks for the SM-to-GPC layout through this table during heuristics and calls it
 * even when the table is refused. The layout of a virtual GPU is not known: say so, every time,
 * without filling the log.
 */
static CUresult cluster_tpc_mapping(unsigned char **vgpc, unsigned char **mtpc)
{
    (void)vgpc;
    (void)mtpc;
    LOG_DEBUG("cluster prototype table slot 4 (TPC to GPC mapping): not supported");
    return CUDA_ERROR_NOT_SUPPORTED;
}

static const slot_fn cluster_prototype[17] = {
    (slot_fn)(uintptr_t)(17 * sizeof(void *)),
    (slot_fn)trap_cluster_1,
    (slot_fn)trap_cluster_2,
    (slot_fn)trap_cluster_3,
    (slot_fn)cluster_tpc_mapping,
    (slot_fn)trap_cluster_5,
    (slot_fn)trap_cluster_6,
    (slot_fn)trap_cluster_7,
    (slot_fn)trap_cluster_8,
    (slot_fn)trap_cluster_9,
    (slot_fn)trap_cluster_10,
    (slot_fn)trap_cluster_11,
    (slot_fn)trap_cluster_12,
    (slot_fn)trap_cluster_13,
    (slot_fn)trap_cluster_14,
    (slot_fn)trap_cluster_15,
    (slot_fn)trap_cluster_16,
};

/* ---------------------------------------------------------------- lookup */

struct table {
    const char *name;
    uint8_t uuid[16];
    const void *table; /* NULL: refused with CUDA_ERROR_NOT_FOUND */
};

static const struct table tables[] = {
    /* Asked before cuInit; granting it makes cudart skip its normal init path. */
    {"CUDART_SKIP_INIT", {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9}, NULL},
    {"CUDART_INTERFACE", {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, cudart_interface},
    {"TOOLS_RUNTIME_CALLBACK_HOOKS", {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, tools_hooks},
    {"TOOLS_TLS", {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, tools_tls},
    {"CONTEXT_LOCAL_STORAGE", {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, context_local_storage},
    {"CONTEXT_CHECKS", {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, context_checks},
    {"INTEGRITY_CHECK", {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, integrity_table},
    {"CUBLASLT_CONTEXT", {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2}, cublaslt_context},
    {"CLUSTER_PROTOTYPE", {0x17, 0x34, 0xdc, 0x26, 0x80, 0x0d, 0x47, 0x45, 0x87, 0x26, 0xc0, 0xf1, 0xe7, 0xdd, 0x8b, 0xca}, cluster_prototype},
};

VGPU_API CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    vgpu_setup();
    if (ppExportTable == NULL || pExportTableId == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *ppExportTable = NULL;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (memcmp(tables[i].uuid, pExportTableId->bytes, 16) == 0) {
            LOG_TRACE("cuGetExportTable(%s)", tables[i].name);
            if (tables[i].table == NULL)
                return CUDA_ERROR_NOT_FOUND;
            *ppExportTable = tables[i].table;
            return CUDA_SUCCESS;
        }
    }
    const uint8_t *u = (const uint8_t *)pExportTableId->bytes;
    LOG_WARN("cuGetExportTable: unknown table %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    return CUDA_ERROR_INVALID_VALUE;
}
