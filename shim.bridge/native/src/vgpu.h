/*
 * Internals shared by the shim's translation units: logging, the connection to the service,
 * handle tables and the driver state. Nothing here is exported from libcuda.so.1.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu_cuda.h"
#include "vgpu_protocol.h"

/* Marks an entry point of the CUDA API; everything else stays hidden (-fvisibility=hidden). */
#define VGPU_API __attribute__((visibility("default")))

/* ---------------------------------------------------------------- logging */

enum { VGPU_LOG_OFF = 0, VGPU_LOG_ERROR = 1, VGPU_LOG_WARN = 2, VGPU_LOG_INFO = 3, VGPU_LOG_DEBUG = 4, VGPU_LOG_TRACE = 5 };

/* The level from VGPU_LOG (error, warn, info, debug, trace or 0-5), read once; default warn. */
int vgpu_log_level(void);
void vgpu_log(int level, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define VGPU_LOG_AT(lvl, ...) \
    do { if (vgpu_log_level() >= (lvl)) vgpu_log((lvl), __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define LOG_ERROR(...) VGPU_LOG_AT(VGPU_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) VGPU_LOG_AT(VGPU_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) VGPU_LOG_AT(VGPU_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) VGPU_LOG_AT(VGPU_LOG_DEBUG, __VA_ARGS__)
#define LOG_TRACE(...) VGPU_LOG_AT(VGPU_LOG_TRACE, __VA_ARGS__)

/* ---------------------------------------------------------------- configuration */

struct vgpu_config {
    char socket_path[108];
    long spin_ns;          /* how long a waiting client polls before it blocks */
    size_t shm_size;       /* 0: no shared memory */
    size_t inline_max;     /* copies up to this size travel inside frames */
};
extern struct vgpu_config vgpu_cfg;

/* One-time process setup: configuration, fork handler. Safe to call from every entry point. */
void vgpu_setup(void);

/* ---------------------------------------------------------------- connection */

/* What HELLO told us. */
struct vgpu_session_info {
    uint16_t minor; /* the service's protocol minor version: which newer ops it knows */
    uint32_t driver_version;
    int32_t status;
    uint64_t session;
    uint64_t window_base;
    uint64_t window_size;
    uint32_t max_frame;
    int shm_ok;
};

/*
 * All traffic goes through one connection per process, guarded by one lock. Functions named
 * *_locked expect the caller to hold it (vgpu_conn_lock/unlock).
 */
void vgpu_conn_lock(void);
void vgpu_conn_unlock(void);

/* Connects and says HELLO if not connected (also after fork). CUDA_SUCCESS or DEVICE_UNAVAILABLE. */
CUresult vgpu_conn_ensure_locked(void);
const struct vgpu_session_info *vgpu_session(void);
/* Connects for management (the vgpu CLI): no CUDA session on the service. */
CUresult vgpu_conn_open_control_locked(void);

/*
 * A synchronous request. rep receives the reply's fixed part (rep_len bytes); the tail, if any,
 * goes to rep_tail (at most rep_tail_cap bytes; the length in *rep_tail_len).
 */
CUresult vgpu_call_locked(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len,
                          void *rep, size_t rep_len, void *rep_tail, size_t rep_tail_cap, size_t *rep_tail_len);
/* The same, taking and releasing the lock. */
CUresult vgpu_call(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len,
                   void *rep, size_t rep_len, void *rep_tail, size_t rep_tail_cap, size_t *rep_tail_len);
/* An asynchronous request: queued, sent with the next flush. Errors surface at a later reply. */
CUresult vgpu_post_locked(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len);
CUresult vgpu_post(uint16_t op, const void *req, size_t req_len, const void *tail, size_t tail_len);
/* The largest payload the service accepts. */
size_t vgpu_frame_limit(void);
/* Flushes queued work at unload; resets the connection in a forked child. */
void vgpu_conn_shutdown(void);
void vgpu_conn_after_fork_child(void);
/* Closes the connection and forgets the session; the next call reconnects. */
void vgpu_conn_close(void);
/* Sends queued async requests now. */
CUresult vgpu_flush_locked(void);

/* Shared memory: the data area, or NULL without shared memory. */
uint8_t *vgpu_shm_data(void);
size_t vgpu_shm_capacity(void);
/* Reserves n bytes of the data area for the next request; returns its offset from the mapping start. */
CUresult vgpu_shm_reserve_locked(size_t n, uint64_t *offset);
/* Copies into host_dst at the next synchronizing reply (asynchronous device-to-host copies). */
CUresult vgpu_shm_deliver_later_locked(uint64_t offset, void *host_dst, size_t n);

/* ---------------------------------------------------------------- handles */

enum vgpu_kind {
    VGPU_KIND_CONTEXT = 1,
    VGPU_KIND_MODULE,
    VGPU_KIND_FUNCTION,
    VGPU_KIND_STREAM,
    VGPU_KIND_EVENT,
    VGPU_KIND_LIBRARY,
    VGPU_KIND_KERNEL,
    VGPU_KIND_GRAPH,
    VGPU_KIND_GRAPH_EXEC,
    VGPU_KIND_GRAPH_NODE,
};

/* Handles are tagged integers, never pointers: a foreign or stale value is rejected without touching memory. */
uint64_t vgpu_handle_new(enum vgpu_kind kind, void *obj);
void *vgpu_handle_get(uint64_t handle, enum vgpu_kind kind);
void vgpu_handle_free(uint64_t handle);
enum vgpu_kind vgpu_handle_kind(uint64_t handle);
/* Forgets every handle (a forked child must not use its parent's). */
void vgpu_handles_reset(void);

/* ---------------------------------------------------------------- driver state */

struct vgpu_device {
    char name[256];
    uint8_t uuid[16];
    uint64_t total_memory;
    int32_t attr[CU_DEVICE_ATTRIBUTE_MAX];
    int service_ordinal;
};

/* Devices visible to this process (after CUDA_VISIBLE_DEVICES), in ordinal order. */
extern struct vgpu_device *vgpu_devices;
extern int vgpu_device_count;

/* CUDA_SUCCESS once cuInit succeeded; NOT_INITIALIZED before, DEINITIALIZED after unload. */
CUresult vgpu_initialized(void);
#define VGPU_CHECK_INIT() do { CUresult init_rc_ = vgpu_initialized(); if (init_rc_ != CUDA_SUCCESS) return init_rc_; } while (0)

/* The device for a visible ordinal, or NULL. */
struct vgpu_device *vgpu_device(CUdevice dev);

/* Parses CUDA_VISIBLE_DEVICES against the service's list; fills visible[] with service ordinals. */
int vgpu_visible_devices(const char *spec, const uint8_t (*uuids)[16], int count, int *visible);

/* Context-local storage of the runtime (export table c693336e): a few keys per context. */
typedef void (*vgpu_cls_dtor)(CUcontext ctx, void *key, void *value);
struct vgpu_cls_entry {
    void *key;
    void *value;
    vgpu_cls_dtor dtor;
};
#define VGPU_CLS_SLOTS 16

struct vgpu_ctx {
    uint64_t handle;
    CUdevice device;
    unsigned flags;
    uint64_t remote;     /* the service's context; 0 until first needed */
    int primary;
    pthread_mutex_t cls_lock;
    int cls_count;
    struct vgpu_cls_entry cls[VGPU_CLS_SLOTS];
};

/* The calling thread's current context, or NULL. */
struct vgpu_ctx *vgpu_current_ctx(void);
/* The current context with its service context created; INVALID_CONTEXT when none is current. */
CUresult vgpu_current_remote(struct vgpu_ctx **ctx);
CUresult vgpu_ctx_remote(struct vgpu_ctx *ctx);
struct vgpu_ctx *vgpu_ctx_from(CUcontext c);

struct vgpu_graph;

struct vgpu_stream {
    uint64_t handle;
    struct vgpu_ctx *ctx;
    uint64_t remote;
    unsigned flags;
    int priority;
    unsigned long long id;
    struct vgpu_graph *capture; /* the graph this stream is capturing into, or NULL */
    struct vgpu_stream *next;   /* all streams, for ending a capture that others joined */
};

/* Stream capture (graph.c): the graph a stream records into, and how work gets recorded. */
struct vgpu_graph *vgpu_capturing(CUstream s);
CUresult vgpu_graph_add_memset(struct vgpu_graph *g, CUdeviceptr dst, size_t pitch, unsigned value, unsigned element_size,
                               size_t width, size_t height);
CUresult vgpu_graph_add_copy(struct vgpu_graph *g, uint64_t dst, uint64_t src, size_t size);
void vgpu_capture_join(CUstream s, struct vgpu_graph *capture);
/* Ends the capture of every stream that joined g (stream.c). */
void vgpu_streams_end_capture(struct vgpu_graph *g);
/* Marks a capture failed: it ends with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and records nothing more. */
void vgpu_capture_invalidate(struct vgpu_graph *g);
/* Called by every generated _ptds entry point before it does the work of its legacy form (graph.c). */
CUresult vgpu_ptds_begin(void);

/* The default streams (flags 0, priority 0): the legacy stream (NULL, CU_STREAM_LEGACY) and CU_STREAM_PER_THREAD. */
static inline int vgpu_is_default_stream(CUstream s)
{
    return s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
}

/*
 * Resolves a CUstream: *out is NULL for the legacy stream (NULL, CU_STREAM_LEGACY), the calling
 * thread's per-thread stream of the current context for CU_STREAM_PER_THREAD (created when
 * `create`, else NULL while there is none), or the handle's stream (INVALID_HANDLE if stale).
 */
CUresult vgpu_stream_resolve(CUstream s, int create, struct vgpu_stream **out);
/* The service's stream for a CUstream: 0 for the legacy stream. */
CUresult vgpu_stream_remote(CUstream s, uint64_t *remote);
/* Releases the streams of a context being destroyed, per-thread ones included. */
void vgpu_streams_release_ctx(struct vgpu_ctx *c);
void vgpu_streams_unload(void);
void vgpu_streams_after_fork(void);

/* Resets process-local driver state in a forked child. */
void vgpu_state_reset_after_fork(void);
/* memory.c keeps which context made each allocation: forgotten with the context, and in a forked child. */
void vgpu_mem_forget_ctx(uint64_t ctx);
void vgpu_mem_reset_after_fork(void);
const char *vgpu_error_name(CUresult error);

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
CUresult vgpu_read_file(const char *path, char **out);

/*
 * The driver version cuDriverGetVersion reports: the service's (HELLO), connecting first if the
 * process has no session yet and may_connect is set; VGPU_DRIVER_VERSION (default 13000) when the
 * service cannot be reached or may not be asked.
 */
int vgpu_driver_version(int may_connect);

/* Entry points the shim itself calls. */
CUresult cuDriverGetVersion(int *driverVersion);
