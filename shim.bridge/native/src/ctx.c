/*
 * Contexts. The per-thread context stack, primary-context reference counts and context flags
 * live here in the client: cudart asks for the current context on nearly every call, so those
 * answers must not cost a round trip. The service's context is created the first time something
 * needs it.
 */
#include <stdlib.h>
#include <string.h>

#include "vgpu.h"

#define STACK_DEPTH 64
#define MAX_DEVICES 64

static __thread struct {
    struct vgpu_ctx *stack[STACK_DEPTH];
    int depth;
} tls;

struct primary {
    struct vgpu_ctx *ctx;
    int refs;
    unsigned flags;
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct primary primaries[MAX_DEVICES];

struct vgpu_ctx *vgpu_ctx_from(CUcontext c)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)c, VGPU_KIND_CONTEXT);
}

struct vgpu_ctx *vgpu_current_ctx(void)
{
    struct vgpu_ctx *c = tls.depth > 0 ? tls.stack[tls.depth - 1] : NULL;
    /* A context destroyed by another thread is gone for this one too. */
    if (c != NULL && vgpu_ctx_from((CUcontext)(uintptr_t)c->handle) != c)
        return NULL;
    return c;
}

CUresult vgpu_ctx_remote(struct vgpu_ctx *ctx)
{
    if (ctx->remote != 0)
        return CUDA_SUCCESS;
    struct vgpu_device *d = vgpu_device(ctx->device);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vgpu_ctx_create_req req = {.device = (uint32_t)d->service_ordinal, .flags = ctx->flags};
    struct vgpu_ctx_create_rep rep;
    vgpu_conn_lock();
    CUresult rc = ctx->remote != 0 ? CUDA_SUCCESS
                                   : vgpu_call_locked(VGPU_OP_CTX_CREATE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS && ctx->remote == 0)
        ctx->remote = rep.ctx;
    vgpu_conn_unlock();
    return rc;
}

CUresult vgpu_current_remote(struct vgpu_ctx **out)
{
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = vgpu_ctx_remote(c);
    if (rc == CUDA_SUCCESS)
        *out = c;
    return rc;
}

static struct vgpu_ctx *new_ctx(CUdevice dev, unsigned flags, int primary)
{
    struct vgpu_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->device = dev;
    c->flags = flags;
    c->primary = primary;
    pthread_mutex_init(&c->cls_lock, NULL);
    c->handle = vgpu_handle_new(VGPU_KIND_CONTEXT, c);
    if (c->handle == 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void destroy_remote(struct vgpu_ctx *c)
{
    if (c->remote != 0) {
        struct vgpu_ctx_destroy_req req = {.ctx = c->remote};
        CUresult rc = vgpu_call(VGPU_OP_CTX_DESTROY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
        if (rc != CUDA_SUCCESS)
            LOG_DEBUG("the service could not destroy context %llx: %d", (unsigned long long)c->remote, rc);
        c->remote = 0;
    }
}

/*
 * Context-local storage entries end with their context: the runtime keeps its per-context state
 * there and frees it in the destructor it registered. Destructors run with no lock held (they may
 * call back into the driver) and while the context is still valid.
 */
static int cls_take(struct vgpu_ctx *c, struct vgpu_cls_entry *out)
{
    pthread_mutex_lock(&c->cls_lock);
    int n = c->cls_count;
    memcpy(out, c->cls, (size_t)n * sizeof *out);
    c->cls_count = 0;
    pthread_mutex_unlock(&c->cls_lock);
    return n;
}

static void cls_run(uint64_t handle, const struct vgpu_cls_entry *entries, int n)
{
    for (int i = 0; i < n; i++)
        if (entries[i].dtor != NULL)
            entries[i].dtor((CUcontext)(uintptr_t)handle, entries[i].key, entries[i].value);
}

/* Pops every occurrence of c from this thread's stack. */
static void forget_current(struct vgpu_ctx *c)
{
    int j = 0;
    for (int i = 0; i < tls.depth; i++)
        if (tls.stack[i] != c)
            tls.stack[j++] = tls.stack[i];
    tls.depth = j;
}

/* ---------------------------------------------------------------- primary contexts */

static CUresult primary_get(CUdevice dev, struct primary **out)
{
    if (vgpu_device(dev) == NULL || dev >= MAX_DEVICES)
        return CUDA_ERROR_INVALID_DEVICE;
    struct primary *p = &primaries[dev];
    if (p->ctx == NULL) {
        p->ctx = new_ctx(dev, p->flags, 1);
        if (p->ctx == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = p;
    return CUDA_SUCCESS;
}

/* The primary context's handle without retaining it (cudart's CUDART_INTERFACE slot 2). */
CUresult vgpu_primary_ctx_peek(CUcontext *pctx, CUdevice dev)
{
    pthread_mutex_lock(&ctx_lock);
    struct primary *p;
    CUresult rc = primary_get(dev, &p);
    if (rc == CUDA_SUCCESS)
        *pctx = (CUcontext)(uintptr_t)p->ctx->handle;
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

VGPU_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    VGPU_CHECK_INIT();
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&ctx_lock);
    struct primary *p;
    CUresult rc = primary_get(dev, &p);
    if (rc == CUDA_SUCCESS) {
        p->refs++;
        *pctx = (CUcontext)(uintptr_t)p->ctx->handle;
    }
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

static CUresult primary_reset(struct primary *p)
{
    if (p->ctx != NULL) {
        vgpu_streams_release_ctx(p->ctx);
        destroy_remote(p->ctx);
        vgpu_mem_forget_ctx(p->ctx->handle);
        forget_current(p->ctx);
        vgpu_handle_free(p->ctx->handle);
        /* Not freed: another thread may still hold the pointer on its stack; the handle check rejects it. */
        p->ctx = NULL;
    }
    p->refs = 0;
    return CUDA_SUCCESS;
}

/*
 * The last release and a reset end the primary context. Its storage destructors run first, outside
 * ctx_lock; a retain that slips in meanwhile keeps the context, which then simply has empty storage.
 */
static CUresult primary_end(CUdevice dev, int reset)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vgpu_cls_entry entries[VGPU_CLS_SLOTS];
    int n = 0;
    uint64_t handle = 0;
    pthread_mutex_lock(&ctx_lock);
    struct primary *p = &primaries[dev];
    if (!reset && p->refs <= 0) {
        pthread_mutex_unlock(&ctx_lock);
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if ((reset || p->refs == 1) && p->ctx != NULL) {
        handle = p->ctx->handle;
        n = cls_take(p->ctx, entries);
    }
    pthread_mutex_unlock(&ctx_lock);
    cls_run(handle, entries, n);

    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&ctx_lock);
    if (reset)
        primary_reset(p);
    else if (p->refs <= 0)
        rc = CUDA_ERROR_INVALID_CONTEXT; /* another thread released it meanwhile */
    else if (--p->refs == 0)
        primary_reset(p);
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

VGPU_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    return primary_end(dev, 0);
}

VGPU_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return cuDevicePrimaryCtxRelease_v2(dev);
}

VGPU_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    return primary_end(dev, 1);
}

VGPU_API CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    return cuDevicePrimaryCtxReset_v2(dev);
}

VGPU_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (flags & ~0x1fu)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&ctx_lock);
    primaries[dev].flags = flags;
    if (primaries[dev].ctx != NULL)
        primaries[dev].ctx->flags = flags;
    pthread_mutex_unlock(&ctx_lock);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}

VGPU_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    if (flags == NULL || active == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&ctx_lock);
    *flags = primaries[dev].flags;
    *active = primaries[dev].refs > 0;
    pthread_mutex_unlock(&ctx_lock);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- contexts */

static CUresult ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    VGPU_CHECK_INIT();
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vgpu_ctx *c = new_ctx(dev, flags, 0);
    if (c == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    /* Created on the service now, as a real cuCtxCreate reserves device resources at once. */
    CUresult rc = vgpu_ctx_remote(c);
    if (rc != CUDA_SUCCESS) {
        vgpu_handle_free(c->handle);
        free(c);
        return rc;
    }
    if (tls.depth == STACK_DEPTH)
        return CUDA_ERROR_OUT_OF_MEMORY;
    tls.stack[tls.depth++] = c;
    *pctx = (CUcontext)(uintptr_t)c->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_API CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_API CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams, unsigned int flags,
                                 CUdevice dev)
{
    if (numParams < 0 || (numParams > 0 && paramsArray == NULL))
        return CUDA_ERROR_INVALID_VALUE;
    /* Execution affinity (SM partitions) is not offered; a request for it is refused. */
    if (numParams > 0)
        return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
    return ctx_create(pctx, flags, dev);
}

VGPU_API CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags, CUdevice dev)
{
    if (ctxCreateParams != NULL && (ctxCreateParams->numExecAffinityParams > 0 || ctxCreateParams->cigParams != NULL))
        return CUDA_ERROR_NOT_SUPPORTED;
    return ctx_create(pctx, flags, dev);
}

VGPU_API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_ctx_from(ctx);
    if (c == NULL || c->primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct vgpu_cls_entry entries[VGPU_CLS_SLOTS];
    int n = cls_take(c, entries);
    /* Destructors first: they may still use the context and its streams. */
    cls_run(c->handle, entries, n);
    vgpu_streams_release_ctx(c);
    destroy_remote(c);
    vgpu_mem_forget_ctx(c->handle);
    forget_current(c);
    vgpu_handle_free(c->handle);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxDestroy(CUcontext ctx)
{
    return cuCtxDestroy_v2(ctx);
}

VGPU_API CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_ctx_from(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (tls.depth == STACK_DEPTH)
        return CUDA_ERROR_OUT_OF_MEMORY;
    tls.stack[tls.depth++] = c;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return cuCtxPushCurrent_v2(ctx);
}

VGPU_API CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    VGPU_CHECK_INIT();
    if (tls.depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct vgpu_ctx *c = tls.stack[--tls.depth];
    if (pctx != NULL)
        *pctx = (CUcontext)(uintptr_t)c->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return cuCtxPopCurrent_v2(pctx);
}

VGPU_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
    VGPU_CHECK_INIT();
    if (ctx == NULL) {
        if (tls.depth > 0)
            tls.depth--;
        return CUDA_SUCCESS;
    }
    struct vgpu_ctx *c = vgpu_ctx_from(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (tls.depth == 0)
        tls.depth = 1;
    tls.stack[tls.depth - 1] = c;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    VGPU_CHECK_INIT();
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c = vgpu_current_ctx();
    *pctx = c ? (CUcontext)(uintptr_t)c->handle : NULL;
    return CUDA_SUCCESS;
}

/* NULL means the current context (the CUDA 13 forms take an explicit one). */
static struct vgpu_ctx *ctx_or_current(CUcontext ctx)
{
    return ctx == NULL ? vgpu_current_ctx() : vgpu_ctx_from(ctx);
}

VGPU_API CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    VGPU_CHECK_INIT();
    if (device == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c = ctx_or_current(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    *device = c->device;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetDevice(CUdevice *device)
{
    return cuCtxGetDevice_v2(device, NULL);
}

VGPU_API CUresult cuCtxGetFlags(unsigned int *flags)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (flags == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxSetFlags(unsigned int flags)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    c->flags = flags;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = ctx_or_current(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctxId == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *ctxId = c->handle & 0xffffffffffffull;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = ctx_or_current(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (version == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *version = 3020; /* the context ABI every current runtime expects */
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = ctx_or_current(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (c->remote == 0) {
        /* Nothing ran in it yet, but async errors of the session still surface here. */
        return vgpu_call(VGPU_OP_PING, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL);
    }
    struct vgpu_ctx_synchronize_req req = {.ctx = c->remote};
    return vgpu_call(VGPU_OP_CTX_SYNCHRONIZE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuCtxSynchronize(void)
{
    return cuCtxSynchronize_v2(NULL);
}

/* Limits are kept per process; the simulated device has no use for them beyond reporting them back. */
static size_t limits[CU_LIMIT_MAX];
static int limits_set[CU_LIMIT_MAX];

static size_t limit_default(CUlimit limit)
{
    switch (limit) {
    case CU_LIMIT_STACK_SIZE: return 1024;
    case CU_LIMIT_PRINTF_FIFO_SIZE: return 1 << 20;
    case CU_LIMIT_MALLOC_HEAP_SIZE: return 8 << 20;
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH: return 2;
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: return 2048;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY: return 64;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE: return 0;
    default: return 0;
    }
}

VGPU_API CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
    VGPU_CHECK_INIT();
    if (pvalue == NULL || (int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_current_ctx() == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    *pvalue = limits_set[limit] ? limits[limit] : limit_default(limit);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    VGPU_CHECK_INIT();
    if ((int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_current_ctx() == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    limits[limit] = value;
    limits_set[limit] = 1;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetCacheConfig(CUfunc_cache *pconfig)
{
    VGPU_CHECK_INIT();
    if (pconfig == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pconfig = CU_FUNC_CACHE_PREFER_NONE;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxSetCacheConfig(CUfunc_cache config)
{
    VGPU_CHECK_INIT();
    (void)config;
    return vgpu_current_ctx() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

VGPU_API CUresult cuCtxGetSharedMemConfig(CUsharedconfig *pConfig)
{
    VGPU_CHECK_INIT();
    if (pConfig == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pConfig = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxSetSharedMemConfig(CUsharedconfig config)
{
    VGPU_CHECK_INIT();
    (void)config;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    VGPU_CHECK_INIT();
    /* The range an H100 reports: 0 is lowest, -5 highest. */
    if (leastPriority != NULL)
        *leastPriority = 0;
    if (greatestPriority != NULL)
        *greatestPriority = -5;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- fork */

void vgpu_driver_after_fork(void);

void vgpu_state_reset_after_fork(void)
{
    pthread_mutex_init(&ctx_lock, NULL);
    memset(primaries, 0, sizeof primaries);
    tls.depth = 0;
    vgpu_mem_reset_after_fork();
    vgpu_driver_after_fork();
}

/* Profiler ranges delimit what NVIDIA's profilers record; with no profiler attached they do nothing. */
VGPU_API CUresult cuProfilerStart(void)
{
    VGPU_CHECK_INIT();
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuProfilerStop(void)
{
    VGPU_CHECK_INIT();
    return CUDA_SUCCESS;
}
