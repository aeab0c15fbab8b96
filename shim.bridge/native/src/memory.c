/*
 * Device memory, copies and memsets, host memory, pointer attributes and the virtual memory
 * management calls. Device pointers are addresses in the service's device window, which this
 * process keeps reserved, so "is this a device pointer" is a range check, as with unified
 * addressing on a real GPU.
 *
 * Small copies travel inside frames; large ones through the shared-memory ring. Asynchronous
 * copies and memsets are fire-and-forget; an asynchronous device-to-host copy lands in the
 * application's buffer at its next synchronizing call.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu.h"

#define MAX_HOST_RANGES 4096

/* ---------------------------------------------------------------- host memory kept in the client */

struct host_range {
    uintptr_t base;
    size_t size;
    unsigned flags;
    int owned;                   /* allocated by us (cuMemHostAlloc) rather than registered */
    uint64_t ctx;                /* the context current at allocation (a CUcontext), for pointer attributes */
    CUdevice device;
    unsigned long long buffer_id;
};

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_range host_ranges[MAX_HOST_RANGES];
static int host_count;

static struct host_range *host_find(uintptr_t p)
{
    for (int i = 0; i < host_count; i++)
        if (p >= host_ranges[i].base && p < host_ranges[i].base + host_ranges[i].size)
            return &host_ranges[i];
    return NULL;
}

/* CU_POINTER_ATTRIBUTE_BUFFER_ID: unique for the life of the process, as the real driver's. */
static atomic_ullong next_buffer_id = 1;

static int host_add(void *p, size_t size, unsigned flags, int owned)
{
    struct vgpu_ctx *c = vgpu_current_ctx();
    struct host_range r = {(uintptr_t)p, size, flags, owned, c ? c->handle : 0, c ? c->device : 0,
                           atomic_fetch_add(&next_buffer_id, 1)};
    pthread_mutex_lock(&host_lock);
    int ok = host_count < MAX_HOST_RANGES;
    if (ok)
        host_ranges[host_count++] = r;
    pthread_mutex_unlock(&host_lock);
    return ok;
}

static int host_remove(void *p, int owned, size_t *size)
{
    pthread_mutex_lock(&host_lock);
    int found = 0;
    for (int i = 0; i < host_count; i++) {
        if (host_ranges[i].base == (uintptr_t)p && host_ranges[i].owned == owned) {
            *size = host_ranges[i].size;
            host_ranges[i] = host_ranges[--host_count];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&host_lock);
    return found;
}

static int is_device_ptr(uint64_t p)
{
    const struct vgpu_session_info *s = vgpu_session();
    return s->window_size != 0 && p >= s->window_base && p - s->window_base < s->window_size;
}

/*
 * [p, p + n) lies in the device window: no device memory exists outside it, so a range that
 * leaves it is CUDA_ERROR_INVALID_VALUE before anything is sent. Overflow-safe: a size that would
 * wrap past the end of the address space is simply outside. The service checks the range
 * against the allocation itself.
 */
static int device_range(uint64_t p, size_t n)
{
    const struct vgpu_session_info *s = vgpu_session();
    if (s->window_size == 0 || p < s->window_base)
        return 0;
    uint64_t off = p - s->window_base;
    return off <= s->window_size && (uint64_t)n <= s->window_size - off;
}

/* [p, p + n) of host memory does not wrap around the end of the address space. */
static int host_range(const void *p, size_t n)
{
    uintptr_t end;
    return !__builtin_add_overflow((uintptr_t)p, n, &end);
}

/* ---------------------------------------------------------------- who owns an allocation */

/*
 * The service answers "which allocation holds this address" (MEM_GET_ADDRESS_RANGE) but not who
 * made it, and pointer attributes must name the allocating context, not the caller's current one.
 * So the shim notes the owner of every allocation made through cuMemAlloc*, by base address.
 * Ranges it did not make (module globals, VMM mappings) are reported against the current context.
 */
#define ALLOC_BUCKETS 4096

struct alloc_rec {
    CUdeviceptr base;
    uint64_t ctx; /* CUcontext */
    CUdevice device;
    unsigned long long buffer_id;
    struct alloc_rec *next;
};

static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alloc_rec *allocs[ALLOC_BUCKETS];

static struct alloc_rec **alloc_slot(CUdeviceptr base)
{
    struct alloc_rec **at = &allocs[(base >> 8 ^ base >> 21) & (ALLOC_BUCKETS - 1)];
    while (*at != NULL && (*at)->base != base)
        at = &(*at)->next;
    return at;
}

static void alloc_note(CUdeviceptr base, const struct vgpu_ctx *c)
{
    pthread_mutex_lock(&alloc_lock);
    struct alloc_rec **at = alloc_slot(base);
    if (*at == NULL)
        *at = calloc(1, sizeof **at);
    /* Without memory for the note the allocation still stands; only its attributes fall back. */
    if (*at != NULL)
        **at = (struct alloc_rec){base, c->handle, c->device, atomic_fetch_add(&next_buffer_id, 1), (*at)->next};
    pthread_mutex_unlock(&alloc_lock);
}

static void alloc_forget(CUdeviceptr base)
{
    pthread_mutex_lock(&alloc_lock);
    struct alloc_rec **at = alloc_slot(base);
    struct alloc_rec *r = *at;
    if (r != NULL) {
        *at = r->next;
        free(r);
    }
    pthread_mutex_unlock(&alloc_lock);
}

static int alloc_owner(CUdeviceptr base, struct alloc_rec *out)
{
    pthread_mutex_lock(&alloc_lock);
    struct alloc_rec *r = *alloc_slot(base);
    if (r != NULL)
        *out = *r;
    pthread_mutex_unlock(&alloc_lock);
    return r != NULL;
}

/* A destroyed or reset context took its allocations with it on the service. */
void vgpu_mem_forget_ctx(uint64_t ctx)
{
    pthread_mutex_lock(&alloc_lock);
    for (int i = 0; i < ALLOC_BUCKETS; i++) {
        for (struct alloc_rec **at = &allocs[i]; *at != NULL;) {
            struct alloc_rec *r = *at;
            if (r->ctx == ctx) {
                *at = r->next;
                free(r);
            } else {
                at = &r->next;
            }
        }
    }
    pthread_mutex_unlock(&alloc_lock);
}

/* A forked child has no allocations of its own yet; the parent's notes describe the parent's session. */
void vgpu_mem_reset_after_fork(void)
{
    pthread_mutex_init(&alloc_lock, NULL);
    pthread_mutex_init(&host_lock, NULL);
    for (int i = 0; i < ALLOC_BUCKETS; i++) {
        for (struct alloc_rec *r = allocs[i], *next; r != NULL; r = next) {
            next = r->next;
            free(r);
        }
        allocs[i] = NULL;
    }
}

/* ---------------------------------------------------------------- allocation */

VGPU_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    VGPU_CHECK_INIT();
    if (dptr == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c;
    CUresult rc = vgpu_current_remote(&c);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_mem_alloc_req req = {.ctx = c->remote, .size = bytesize};
    struct vgpu_mem_alloc_rep rep;
    rc = vgpu_call(VGPU_OP_MEM_ALLOC, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS) {
        alloc_note(rep.ptr, c);
        *dptr = rep.ptr;
    }
    return rc;
}

VGPU_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    VGPU_CHECK_INIT();
    if (dptr == 0)
        return CUDA_SUCCESS;
    struct vgpu_ctx *c;
    CUresult rc = vgpu_current_remote(&c);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_mem_free_req req = {.ctx = c->remote, .ptr = dptr};
    rc = vgpu_call(VGPU_OP_MEM_FREE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS)
        alloc_forget(dptr);
    return rc;
}

VGPU_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    uint64_t stream;
    VGPU_CHECK_INIT();
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    /* Stream-ordered allocation done eagerly: the memory is usable at least as early as required. */
    return rc != CUDA_SUCCESS ? rc : cuMemAlloc_v2(dptr, bytesize);
}

VGPU_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    uint64_t stream;
    VGPU_CHECK_INIT();
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    return rc != CUDA_SUCCESS ? rc : cuMemFree_v2(dptr);
}

/*
 * Bytes from the first to the last byte of a pitched 2D region, or 0 when that overflows: sizes
 * come from the application, and a wrapped product would turn a huge request into a small one.
 */
static size_t span2d(size_t pitch, size_t width_bytes, size_t height)
{
    size_t rows, total;
    if (height == 0 || width_bytes == 0)
        return 0;
    if (__builtin_mul_overflow(height - 1, pitch, &rows) || __builtin_add_overflow(rows, width_bytes, &total))
        return 0;
    return total;
}

VGPU_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t widthInBytes, size_t height,
                                     unsigned int elementSizeBytes)
{
    VGPU_CHECK_INIT();
    if (pPitch == NULL || widthInBytes == 0 || height == 0 ||
        (elementSizeBytes != 4 && elementSizeBytes != 8 && elementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    /* Rows aligned to 512 bytes, the texture pitch alignment the driver uses. */
    size_t pitch = (widthInBytes + 511) & ~(size_t)511;
    size_t bytes;
    if (pitch < widthInBytes || __builtin_mul_overflow(pitch, height, &bytes))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = cuMemAlloc_v2(dptr, bytes);
    if (rc == CUDA_SUCCESS)
        *pPitch = pitch;
    return rc;
}

VGPU_API CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
    VGPU_CHECK_INIT();
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (free == NULL || total == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_mem_get_info_req req = {.device = (uint32_t)vgpu_device(c->device)->service_ordinal};
    struct vgpu_mem_get_info_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_MEM_GET_INFO, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS) {
        *free = rep.free;
        *total = rep.total;
    }
    return rc;
}

VGPU_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    VGPU_CHECK_INIT();
    struct vgpu_mem_get_address_range_req req = {.ptr = dptr};
    struct vgpu_mem_get_address_range_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_MEM_GET_ADDRESS_RANGE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_ERROR_NOT_FOUND)
        return CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) {
        if (pbase != NULL)
            *pbase = rep.base;
        if (psize != NULL)
            *psize = rep.size;
    }
    return rc;
}

/* ---------------------------------------------------------------- host allocations */

VGPU_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    VGPU_CHECK_INIT();
    if (pp == NULL || bytesize == 0 || (Flags & ~0x7u))
        return CUDA_ERROR_INVALID_VALUE;
    /* Pinning buys nothing here: the data crosses to the service by copy either way. */
    void *p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (!host_add(p, bytesize, Flags, 1)) {
        munmap(p, bytesize);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return cuMemHostAlloc(pp, bytesize, 0);
}

VGPU_API CUresult cuMemFreeHost(void *p)
{
    VGPU_CHECK_INIT();
    size_t size;
    if (p == NULL || !host_remove(p, 1, &size))
        return CUDA_ERROR_INVALID_VALUE;
    munmap(p, size);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    VGPU_CHECK_INIT();
    if (p == NULL || bytesize == 0 || (Flags & ~0xfu))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&host_lock);
    int already = host_find((uintptr_t)p) != NULL;
    pthread_mutex_unlock(&host_lock);
    if (already)
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    return host_add(p, bytesize, Flags, 0) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

VGPU_API CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
    return cuMemHostRegister_v2(p, bytesize, Flags);
}

VGPU_API CUresult cuMemHostUnregister(void *p)
{
    VGPU_CHECK_INIT();
    size_t size;
    return p != NULL && host_remove(p, 0, &size) ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

VGPU_API CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    VGPU_CHECK_INIT();
    if (pFlags == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&host_lock);
    struct host_range *r = host_find((uintptr_t)p);
    if (r != NULL)
        *pFlags = r->flags;
    pthread_mutex_unlock(&host_lock);
    return r != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

VGPU_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    VGPU_CHECK_INIT();
    (void)pdptr;
    (void)p;
    /* Kernels run in the service and cannot reach this process's memory. */
    return Flags != 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
}

/* ---------------------------------------------------------------- copies */

static uint64_t ctx_of_copy(void)
{
    struct vgpu_ctx *c = vgpu_current_ctx();
    return c != NULL ? c->remote : 0;
}

/* Host to device. async: return once the bytes are out of src (as CUDA does for pageable memory). */
static CUresult htod(CUdeviceptr dst, const void *src, size_t n, uint64_t stream, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    if (src == NULL || !host_range(src, n) || !device_range(dst, n))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t ctx = ctx_of_copy();
    CUresult rc = CUDA_SUCCESS;
    vgpu_conn_lock();
    if ((rc = vgpu_conn_ensure_locked()) != CUDA_SUCCESS)
        goto out;
    if (n <= vgpu_cfg.inline_max || vgpu_shm_data() == NULL) {
        size_t chunk_max = vgpu_frame_limit() - sizeof(struct vgpu_memcpy_htod_req);
        for (size_t done = 0; done < n && rc == CUDA_SUCCESS;) {
            size_t k = n - done < chunk_max ? n - done : chunk_max;
            struct vgpu_memcpy_htod_req req = {.ctx = ctx, .dst = dst + done, .stream = stream};
            int last = done + k == n;
            if (async || !last)
                rc = vgpu_post_locked(VGPU_OP_MEMCPY_HTOD, &req, sizeof req, (const char *)src + done, k);
            else
                rc = vgpu_call_locked(VGPU_OP_MEMCPY_HTOD, &req, sizeof req, (const char *)src + done, k, NULL, 0, NULL, 0, NULL);
            done += k;
        }
        goto out;
    }
    /* Chunks of at most half the ring, so the client fills one while the service drains the other. */
    size_t chunk_max = vgpu_shm_capacity() / 2;
    for (size_t done = 0; done < n && rc == CUDA_SUCCESS;) {
        size_t k = n - done < chunk_max ? n - done : chunk_max;
        uint64_t off;
        if ((rc = vgpu_shm_reserve_locked(k, &off)) != CUDA_SUCCESS)
            break;
        memcpy(vgpu_shm_data() - 4096 + off, (const char *)src + done, k);
        struct vgpu_memcpy_htod_shm_req req = {.ctx = ctx, .dst = dst + done, .stream = stream, .shm_offset = off, .size = k};
        int last = done + k == n;
        if (async || !last) {
            rc = vgpu_post_locked(VGPU_OP_MEMCPY_HTOD_SHM, &req, sizeof req, NULL, 0);
            /* Get the service started on this chunk while the next one is copied in. */
            if (rc == CUDA_SUCCESS && !last)
                rc = vgpu_flush_locked();
        } else {
            rc = vgpu_call_locked(VGPU_OP_MEMCPY_HTOD_SHM, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
        }
        done += k;
    }
out:
    vgpu_conn_unlock();
    return rc;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t n, uint64_t stream, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    if (dst == NULL || !host_range(dst, n) || !device_range(src, n))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t ctx = ctx_of_copy();
    CUresult rc;
    vgpu_conn_lock();
    if ((rc = vgpu_conn_ensure_locked()) != CUDA_SUCCESS)
        goto out;
    if (vgpu_shm_data() == NULL || (!async && n <= vgpu_cfg.inline_max)) {
        size_t chunk_max = vgpu_frame_limit();
        for (size_t done = 0; done < n && rc == CUDA_SUCCESS;) {
            size_t k = n - done < chunk_max ? n - done : chunk_max;
            struct vgpu_memcpy_dtoh_req req = {.ctx = ctx, .src = src + done, .stream = stream, .size = k};
            size_t got = 0;
            rc = vgpu_call_locked(VGPU_OP_MEMCPY_DTOH, &req, sizeof req, NULL, 0, NULL, 0, (char *)dst + done, k, &got);
            if (rc == CUDA_SUCCESS && got != k)
                rc = CUDA_ERROR_UNKNOWN;
            done += k;
        }
        goto out;
    }
    size_t chunk_max = vgpu_shm_capacity() / 2;
    for (size_t done = 0; done < n && rc == CUDA_SUCCESS;) {
        size_t k = n - done < chunk_max ? n - done : chunk_max;
        uint64_t off;
        if ((rc = vgpu_shm_reserve_locked(k, &off)) != CUDA_SUCCESS)
            break;
        struct vgpu_memcpy_dtoh_shm_req req = {.ctx = ctx, .src = src + done, .stream = stream, .shm_offset = off, .size = k};
        if (async) {
            rc = vgpu_post_locked(VGPU_OP_MEMCPY_DTOH_SHM, &req, sizeof req, NULL, 0);
            if (rc == CUDA_SUCCESS)
                rc = vgpu_shm_deliver_later_locked(off, (char *)dst + done, k);
        } else {
            rc = vgpu_call_locked(VGPU_OP_MEMCPY_DTOH_SHM, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
            if (rc == CUDA_SUCCESS)
                memcpy((char *)dst + done, vgpu_shm_data() - 4096 + off, k);
        }
        done += k;
    }
out:
    vgpu_conn_unlock();
    return rc;
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, uint64_t stream, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    if (!device_range(dst, n) || !device_range(src, n))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_memcpy_dtod_req req = {.ctx = ctx_of_copy(), .dst = dst, .src = src, .size = n, .stream = stream};
    return async ? vgpu_post(VGPU_OP_MEMCPY_DTOD, &req, sizeof req, NULL, 0)
                 : vgpu_call(VGPU_OP_MEMCPY_DTOD, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

/* Host-to-host through the "driver" is a plain memcpy, ordered after earlier work when synchronous. */
static CUresult htoh(void *dst, const void *src, size_t n, int async)
{
    if (n != 0 && (dst == NULL || src == NULL || !host_range(dst, n) || !host_range(src, n)))
        return CUDA_ERROR_INVALID_VALUE;
    if (!async) {
        CUresult rc = vgpu_call(VGPU_OP_PING, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    memmove(dst, src, n);
    return CUDA_SUCCESS;
}

static CUresult copy_any(uint64_t dst, uint64_t src, size_t n, uint64_t stream, int async)
{
    int dd = is_device_ptr(dst), sd = is_device_ptr(src);
    if (dd && sd)
        return dtod(dst, src, n, stream, async);
    if (dd)
        return htod(dst, (const void *)(uintptr_t)src, n, stream, async);
    if (sd)
        return dtoh((void *)(uintptr_t)dst, src, n, stream, async);
    return htoh((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n, async);
}

/* Work on a capturing stream is recorded into its graph instead of being sent. */
#define CAPTURE_COPY(h, dst, src, n)                                                          \
    do {                                                                                      \
        struct vgpu_graph *capture_ = vgpu_capturing(h);                                      \
        if (capture_ != NULL)                                                                 \
            return vgpu_graph_add_copy(capture_, (uint64_t)(dst), (uint64_t)(src), (n));      \
    } while (0)

static CUresult memset2d(CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t size, size_t width, size_t height,
                         uint64_t stream, int async);

/* For graph replay: asynchronous copies and memsets on an already resolved stream. */
CUresult vgpu_copy_async(uint64_t dst, uint64_t src, size_t n, uint64_t stream)
{
    return copy_any(dst, src, n, stream, 1);
}

CUresult vgpu_memset2d_async(CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t size, size_t width, size_t height,
                             uint64_t stream)
{
    return memset2d(dst, pitch, value, size, width, height, stream, 1);
}

#define STREAM_OR_RETURN(h, out)                                  \
    do {                                                          \
        CUresult stream_rc_ = vgpu_stream_remote((h), &(out));    \
        if (stream_rc_ != CUDA_SUCCESS)                           \
            return stream_rc_;                                    \
    } while (0)

VGPU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    VGPU_CHECK_INIT();
    return htod(dstDevice, srcHost, ByteCount, 0, 0);
}

VGPU_API CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    VGPU_CHECK_INIT();
    return dtoh(dstHost, srcDevice, ByteCount, 0, 0);
}

VGPU_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
{
    VGPU_CHECK_INIT();
    return dtod(dstDevice, srcDevice, ByteCount, 0, 0);
}

VGPU_API CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
    VGPU_CHECK_INIT();
    return copy_any(dst, src, ByteCount, 0, 0);
}

VGPU_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    CAPTURE_COPY(hStream, dstDevice, (uintptr_t)srcHost, ByteCount);
    return htod(dstDevice, srcHost, ByteCount, s, 1);
}

VGPU_API CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    CAPTURE_COPY(hStream, (uintptr_t)dstHost, srcDevice, ByteCount);
    return dtoh(dstHost, srcDevice, ByteCount, s, 1);
}

VGPU_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    CAPTURE_COPY(hStream, dstDevice, srcDevice, ByteCount);
    return dtod(dstDevice, srcDevice, ByteCount, s, 1);
}

VGPU_API CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    CAPTURE_COPY(hStream, dst, src, ByteCount);
    return copy_any(dst, src, ByteCount, s, 1);
}

VGPU_API CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice, CUcontext srcContext,
                               size_t ByteCount)
{
    VGPU_CHECK_INIT();
    if (vgpu_ctx_from(dstContext) == NULL || vgpu_ctx_from(srcContext) == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    return dtod(dstDevice, srcDevice, ByteCount, 0, 0);
}

VGPU_API CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                    CUcontext srcContext, size_t ByteCount, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    if (vgpu_ctx_from(dstContext) == NULL || vgpu_ctx_from(srcContext) == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    return dtod(dstDevice, srcDevice, ByteCount, s, 1);
}

/* 2D copies become one copy per row; contiguous rows collapse into a single copy. */
static CUresult copy2d(const CUDA_MEMCPY2D *p, uint64_t stream, int async, struct vgpu_graph *capture)
{
    if (p == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY || p->dstMemoryType == CU_MEMORYTYPE_ARRAY)
        return CUDA_ERROR_NOT_SUPPORTED;
    size_t spitch = p->srcPitch ? p->srcPitch : p->WidthInBytes;
    size_t dpitch = p->dstPitch ? p->dstPitch : p->WidthInBytes;
    if (spitch < p->WidthInBytes || dpitch < p->WidthInBytes)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->WidthInBytes == 0 || p->Height == 0)
        return CUDA_SUCCESS;
    size_t offset;
    if (span2d(spitch, p->WidthInBytes, p->Height) == 0 || span2d(dpitch, p->WidthInBytes, p->Height) == 0 ||
        __builtin_mul_overflow(p->srcY, spitch, &offset) || __builtin_mul_overflow(p->dstY, dpitch, &offset))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t src = p->srcMemoryType == CU_MEMORYTYPE_HOST ? (uint64_t)(uintptr_t)p->srcHost : p->srcDevice;
    uint64_t dst = p->dstMemoryType == CU_MEMORYTYPE_HOST ? (uint64_t)(uintptr_t)p->dstHost : p->dstDevice;
    src += p->srcY * spitch + p->srcXInBytes;
    dst += p->dstY * dpitch + p->dstXInBytes;
    if (spitch == p->WidthInBytes && dpitch == p->WidthInBytes)
        return capture ? vgpu_graph_add_copy(capture, dst, src, p->WidthInBytes * p->Height)
                       : copy_any(dst, src, p->WidthInBytes * p->Height, stream, async);
    CUresult rc = CUDA_SUCCESS;
    for (size_t row = 0; row < p->Height && rc == CUDA_SUCCESS; row++) {
        /* Rows go out asynchronously; only the last one waits when the copy is synchronous. */
        int row_async = async || row + 1 < p->Height;
        rc = capture ? vgpu_graph_add_copy(capture, dst + row * dpitch, src + row * spitch, p->WidthInBytes)
                     : copy_any(dst + row * dpitch, src + row * spitch, p->WidthInBytes, stream, row_async);
    }
    return rc;
}

VGPU_API CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
    VGPU_CHECK_INIT();
    return copy2d(pCopy, 0, 0, NULL);
}

VGPU_API CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
    VGPU_CHECK_INIT();
    return copy2d(pCopy, 0, 0, NULL);
}

VGPU_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    struct vgpu_graph *capture = vgpu_capturing(hStream);
    return copy2d(pCopy, s, 1, capture);
}

/* ---------------------------------------------------------------- memsets */

static CUresult memset_any(CUdeviceptr dst, uint32_t value, uint32_t size, size_t count, uint64_t stream, int async)
{
    if (count == 0)
        return CUDA_SUCCESS;
    size_t bytes;
    if (__builtin_mul_overflow(count, (size_t)size, &bytes) || bytes > (size_t)INT64_MAX || !device_range(dst, bytes))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_memset_req req = {.ctx = ctx_of_copy(), .dst = dst, .count = count, .stream = stream, .value = value, .element_size = size};
    return async ? vgpu_post(VGPU_OP_MEMSET, &req, sizeof req, NULL, 0)
                 : vgpu_call(VGPU_OP_MEMSET, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

static CUresult memset2d(CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t size, size_t width, size_t height,
                         uint64_t stream, int async)
{
    size_t row_bytes;
    if (width == 0 || height == 0)
        return CUDA_SUCCESS;
    if (__builtin_mul_overflow(width, (size_t)size, &row_bytes) || span2d(pitch, row_bytes, height) == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (pitch == row_bytes)
        return memset_any(dst, value, size, width * height, stream, async);
    if (pitch < row_bytes)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    for (size_t row = 0; row < height && rc == CUDA_SUCCESS; row++)
        rc = memset_any(dst + row * pitch, value, size, width, stream, async || row + 1 < height);
    return rc;
}

/* Every asynchronous memset: resolve the stream, record it when capturing, else send it. */
static CUresult memset_async(CUstream hStream, CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t size, size_t width,
                             size_t height)
{
    uint64_t s;
    STREAM_OR_RETURN(hStream, s);
    struct vgpu_graph *capture = vgpu_capturing(hStream);
    if (capture != NULL)
        return vgpu_graph_add_memset(capture, dst, pitch, value, size, width, height);
    return memset2d(dst, pitch, value, size, width, height, s, 1);
}

VGPU_API CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
    VGPU_CHECK_INIT();
    return memset_any(dstDevice, uc, 1, N, 0, 0);
}

VGPU_API CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)
{
    VGPU_CHECK_INIT();
    return memset_any(dstDevice, us, 2, N, 0, 0);
}

VGPU_API CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
{
    VGPU_CHECK_INIT();
    return memset_any(dstDevice, ui, 4, N, 0, 0);
}

VGPU_API CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, 1 * N, uc, 1, N, 1);
}

VGPU_API CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, 2 * N, us, 2, N, 1);
}

VGPU_API CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, 4 * N, ui, 4, N, 1);
}

VGPU_API CUresult cuMemsetD2D8_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width, size_t Height)
{
    VGPU_CHECK_INIT();
    return memset2d(dstDevice, dstPitch, uc, 1, Width, Height, 0, 0);
}

VGPU_API CUresult cuMemsetD2D16_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width, size_t Height)
{
    VGPU_CHECK_INIT();
    return memset2d(dstDevice, dstPitch, us, 2, Width, Height, 0, 0);
}

VGPU_API CUresult cuMemsetD2D32_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width, size_t Height)
{
    VGPU_CHECK_INIT();
    return memset2d(dstDevice, dstPitch, ui, 4, Width, Height, 0, 0);
}

VGPU_API CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width,
                                    size_t Height, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, dstPitch, uc, 1, Width, Height);
}

VGPU_API CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width,
                                     size_t Height, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, dstPitch, us, 2, Width, Height);
}

VGPU_API CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width,
                                     size_t Height, CUstream hStream)
{
    VGPU_CHECK_INIT();
    return memset_async(hStream, dstDevice, dstPitch, ui, 4, Width, Height);
}

/* ---------------------------------------------------------------- pointer attributes */

/* What an address is: resolved once, however many attributes are asked for. */
struct ptr_info {
    enum { PTR_UNKNOWN, PTR_DEVICE, PTR_HOST } kind;
    uint64_t base;
    size_t size;
    uint64_t ctx; /* CUcontext of the allocation */
    CUdevice device;
    unsigned long long buffer_id;
};

static CUresult ptr_resolve(CUdeviceptr ptr, struct ptr_info *info)
{
    memset(info, 0, sizeof *info);
    if (!is_device_ptr(ptr)) {
        pthread_mutex_lock(&host_lock);
        struct host_range *h = host_find((uintptr_t)ptr);
        if (h != NULL)
            *info = (struct ptr_info){PTR_HOST, h->base, h->size, h->ctx, h->device, h->buffer_id};
        pthread_mutex_unlock(&host_lock);
        return CUDA_SUCCESS;
    }
    struct vgpu_mem_get_address_range_req req = {.ptr = ptr};
    struct vgpu_mem_get_address_range_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_MEM_GET_ADDRESS_RANGE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_ERROR_NOT_FOUND)
        return CUDA_SUCCESS;
    if (rc != CUDA_SUCCESS)
        return rc;
    struct alloc_rec owner;
    if (alloc_owner(rep.base, &owner)) {
        *info = (struct ptr_info){PTR_DEVICE, rep.base, rep.size, owner.ctx, owner.device, owner.buffer_id};
    } else {
        struct vgpu_ctx *c = vgpu_current_ctx();
        *info = (struct ptr_info){PTR_DEVICE, rep.base, rep.size, c ? c->handle : 0, c ? c->device : 0, rep.base};
    }
    return CUDA_SUCCESS;
}

/* INVALID_VALUE for an attribute this kind of memory does not have, as the driver answers. */
static CUresult ptr_attribute(const struct ptr_info *i, CUpointer_attribute attribute, CUdeviceptr ptr, void *data)
{
    if (i->kind == PTR_UNKNOWN)
        return CUDA_ERROR_INVALID_VALUE;
    int host = i->kind == PTR_HOST;
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = (CUcontext)(uintptr_t)i->ctx; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *(unsigned int *)data = host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        if (host)
            return CUDA_ERROR_NOT_SUPPORTED; /* kernels run in the service and cannot reach this process's memory */
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!host)
            return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)(uintptr_t)ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(int *)data = 1; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = i->buffer_id; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(unsigned int *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = i->device; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: *(int *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data = i->base; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data = i->size; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(int *)data = 1; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: *(unsigned long long *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *(int *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: *(unsigned int *)data = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *(void **)data = NULL; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *(size_t *)data = i->size; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *(CUdeviceptr *)data = i->base; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(unsigned long long *)data = i->buffer_id; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

/* The value cuPointerGetAttributes reports for an attribute the memory does not have. */
static void ptr_attribute_default(CUpointer_attribute attribute, void *data)
{
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = -2; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *(unsigned int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(uint64_t *)data = 0; break;
    default: break; /* an attribute we do not know: its size is unknown too, so nothing is written */
    }
}

VGPU_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    VGPU_CHECK_INIT();
    if (data == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct ptr_info info;
    CUresult rc = ptr_resolve(ptr, &info);
    return rc != CUDA_SUCCESS ? rc : ptr_attribute(&info, attribute, ptr, data);
}

VGPU_API CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes, void **data,
                                         CUdeviceptr ptr)
{
    VGPU_CHECK_INIT();
    if (attributes == NULL || data == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++)
        if (data[i] == NULL)
            return CUDA_ERROR_INVALID_VALUE;
    struct ptr_info info;
    CUresult rc = ptr_resolve(ptr, &info);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* Unlike the single form, this one succeeds for memory CUDA does not know and reports defaults. */
    for (unsigned i = 0; i < numAttributes; i++)
        if (ptr_attribute(&info, attributes[i], ptr, data[i]) != CUDA_SUCCESS)
            ptr_attribute_default(attributes[i], data[i]);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuPointerSetAttribute(const void *value, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    VGPU_CHECK_INIT();
    if (value == NULL || attribute != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS)
        return CUDA_ERROR_INVALID_VALUE;
    return is_device_ptr(ptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---------------------------------------------------------------- virtual memory management */

#define VMM_GRANULARITY (2u << 20)

VGPU_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                CUmemAllocationGranularity_flags option)
{
    VGPU_CHECK_INIT();
    (void)option;
    if (granularity == NULL || prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE || vgpu_device(prop->location.id) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    *granularity = VMM_GRANULARITY;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                      unsigned long long flags)
{
    VGPU_CHECK_INIT();
    if (ptr == NULL || size == 0 || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    /* A hint outside the device window is no hint: the service ignores it too (as the driver
       treats hints) and places the reservation elsewhere in the window. */
    if (addr != 0 && !device_range(addr, size))
        addr = 0;
    struct vgpu_mem_address_reserve_req req = {.size = size, .alignment = alignment, .hint = addr};
    struct vgpu_mem_address_reserve_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_MEM_ADDRESS_RESERVE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS)
        *ptr = rep.ptr;
    return rc;
}

VGPU_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    VGPU_CHECK_INIT();
    if (!device_range(ptr, size))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_mem_address_free_req req = {.ptr = ptr, .size = size};
    return vgpu_call(VGPU_OP_MEM_ADDRESS_FREE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                              unsigned long long flags)
{
    VGPU_CHECK_INIT();
    if (handle == NULL || prop == NULL || flags != 0 || size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_NOT_SUPPORTED;
    struct vgpu_device *d = vgpu_device(prop->location.id);
    if (d == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vgpu_mem_create_req req = {.size = size, .device = (uint32_t)d->service_ordinal};
    struct vgpu_mem_create_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_MEM_CREATE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS)
        *handle = rep.handle;
    return rc;
}

VGPU_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    VGPU_CHECK_INIT();
    struct vgpu_mem_release_req req = {.handle = handle};
    return vgpu_call(VGPU_OP_MEM_RELEASE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                           unsigned long long flags)
{
    VGPU_CHECK_INIT();
    if (flags != 0 || size == 0 || !device_range(ptr, size))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_mem_map_req req = {.ptr = ptr, .size = size, .offset = offset, .handle = handle};
    return vgpu_call(VGPU_OP_MEM_MAP, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    VGPU_CHECK_INIT();
    if (size == 0 || !device_range(ptr, size))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_mem_unmap_req req = {.ptr = ptr, .size = size};
    return vgpu_call(VGPU_OP_MEM_UNMAP, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    VGPU_CHECK_INIT();
    if (desc == NULL || count == 0 || size == 0 || !device_range(ptr, size))
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || vgpu_device(desc[i].location.id) == NULL)
            return CUDA_ERROR_INVALID_DEVICE;
    }
    /* Mapped memory is read-write for the owning session already; nothing to change on the service. */
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
    VGPU_CHECK_INIT();
    if (flags == NULL || location == NULL || !is_device_ptr(ptr))
        return CUDA_ERROR_INVALID_VALUE;
    *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}
