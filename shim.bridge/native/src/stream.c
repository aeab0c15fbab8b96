/*
 * Streams and events. Event records and stream waits are fire-and-forget; queries and
 * synchronizations are round trips, which also deliver deferred copies and pending async errors.
 *
 * The service executes a session's requests in order, so work on any stream is ordered after
 * everything submitted before it. That is stricter than CUDA requires and therefore correct for
 * every kind of stream. NULL and CU_STREAM_LEGACY are the legacy stream: the context's default
 * stream on the service. CU_STREAM_PER_THREAD is a stream of its own per thread and context,
 * created on first use like a user stream (blocking, so it still orders with the legacy stream),
 * because it must be distinguishable: it has its own id and captures independently of the legacy
 * stream and of other threads' per-thread streams.
 */
#include <stdlib.h>
#include <string.h>

#include "vgpu.h"

struct vgpu_event {
    uint64_t handle;
    struct vgpu_ctx *ctx;
    uint64_t remote;
    unsigned flags;
    struct vgpu_graph *capture; /* recorded in a capturing stream: waiting on it joins the capture */
};

static unsigned long long next_stream_id = 1;
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_stream *streams; /* every live stream, user and per-thread */

/* Whether some stream still captures into g (compares pointers only: g may be gone). */
static int capture_active(struct vgpu_graph *g)
{
    pthread_mutex_lock(&streams_lock);
    int active = 0;
    for (struct vgpu_stream *s = streams; s != NULL && !active; s = s->next)
        active = s->capture == g;
    pthread_mutex_unlock(&streams_lock);
    return active;
}

void vgpu_streams_end_capture(struct vgpu_graph *g)
{
    pthread_mutex_lock(&streams_lock);
    for (struct vgpu_stream *s = streams; s != NULL; s = s->next)
        if (s->capture == g)
            s->capture = NULL;
    pthread_mutex_unlock(&streams_lock);
}

static struct vgpu_stream *stream_from(CUstream s)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)s, VGPU_KIND_STREAM);
}

/* Creates the service's stream and our record of it, listed in `streams`. */
static CUresult stream_new(struct vgpu_ctx *c, unsigned flags, int priority, struct vgpu_stream **out)
{
    struct vgpu_stream_create_req req = {.ctx = c->remote, .flags = flags, .priority = priority};
    struct vgpu_stream_create_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_STREAM_CREATE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    s->ctx = c;
    s->remote = rep.stream;
    s->flags = flags;
    s->priority = priority;
    s->id = __atomic_fetch_add(&next_stream_id, 1, __ATOMIC_RELAXED);
    s->handle = vgpu_handle_new(VGPU_KIND_STREAM, s);
    if (s->handle == 0) {
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&streams_lock);
    s->next = streams;
    streams = s;
    pthread_mutex_unlock(&streams_lock);
    *out = s;
    return CUDA_SUCCESS;
}

/* Takes s off the list and voids its handle; 0 if someone else already did. */
static int stream_unlink(struct vgpu_stream *s)
{
    int found = 0;
    pthread_mutex_lock(&streams_lock);
    for (struct vgpu_stream **p = &streams; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            found = 1;
            break;
        }
    }
    if (found)
        vgpu_handle_free(s->handle);
    pthread_mutex_unlock(&streams_lock);
    return found;
}

/*
 * A context going away takes its streams along: the service drops them with the context, and
 * their handles (per-thread ones included) must read as gone here too. The records are not freed,
 * since another thread may be in the middle of a call with one.
 */
void vgpu_streams_release_ctx(struct vgpu_ctx *c)
{
    pthread_mutex_lock(&streams_lock);
    for (struct vgpu_stream **p = &streams; *p != NULL;) {
        struct vgpu_stream *s = *p;
        if (s->ctx == c) {
            *p = s->next;
            vgpu_handle_free(s->handle);
        } else {
            p = &s->next;
        }
    }
    pthread_mutex_unlock(&streams_lock);
}

/* ---------------------------------------------------------------- per-thread default streams */

/*
 * Each thread keeps the handles of its per-thread streams, one per context it used one in. Handles,
 * not pointers: a stream released with its context then simply reads as absent and a new one is
 * made if the thread uses CU_STREAM_PER_THREAD again. The table lives on the heap and is handed to
 * a pthread key, whose destructor releases the streams when the thread exits.
 */
struct per_thread_entry {
    uint64_t ctx;
    uint64_t stream;
};

struct per_thread_table {
    size_t count, cap;
    struct per_thread_entry entries[];
};

static __thread struct per_thread_table *per_thread;
static pthread_key_t per_thread_key;
static pthread_once_t per_thread_once = PTHREAD_ONCE_INIT;
static int per_thread_key_ok;

static void per_thread_exit(void *arg)
{
    struct per_thread_table *t = arg;
    for (size_t i = 0; i < t->count; i++) {
        struct vgpu_stream *s = vgpu_handle_get(t->entries[i].stream, VGPU_KIND_STREAM);
        if (s == NULL || !stream_unlink(s))
            continue;
        /* The service stream goes too, unless its context (and so the stream) is already gone. */
        if (vgpu_initialized() == CUDA_SUCCESS && vgpu_ctx_from((CUcontext)(uintptr_t)t->entries[i].ctx) == s->ctx) {
            struct vgpu_stream_destroy_req req = {.stream = s->remote};
            vgpu_call(VGPU_OP_STREAM_DESTROY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
        }
        /* Nobody else can reach it: its handle is void and no other thread resolves to it. */
        free(s);
    }
    free(t);
}

static void per_thread_key_create(void)
{
    per_thread_key_ok = pthread_key_create(&per_thread_key, per_thread_exit) == 0;
}

/* Forgets entries whose stream is gone (its context was destroyed). */
static void per_thread_prune(struct per_thread_table *t)
{
    size_t j = 0;
    for (size_t i = 0; i < t->count; i++)
        if (vgpu_handle_get(t->entries[i].stream, VGPU_KIND_STREAM) != NULL)
            t->entries[j++] = t->entries[i];
    t->count = j;
}

static CUresult per_thread_remember(uint64_t ctx, uint64_t stream)
{
    pthread_once(&per_thread_once, per_thread_key_create);
    struct per_thread_table *t = per_thread;
    if (t != NULL)
        per_thread_prune(t);
    if (t == NULL || t->count == t->cap) {
        size_t cap = t != NULL ? t->cap * 2 : 4;
        struct per_thread_table *grown = realloc(t, sizeof *t + cap * sizeof t->entries[0]);
        if (grown == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
        if (t == NULL)
            grown->count = 0;
        grown->cap = cap;
        t = per_thread = grown;
        if (per_thread_key_ok)
            pthread_setspecific(per_thread_key, t);
    }
    t->entries[t->count++] = (struct per_thread_entry){.ctx = ctx, .stream = stream};
    return CUDA_SUCCESS;
}

/* The calling thread's per-thread stream in the current context; made now if `create`, else NULL if none yet. */
static CUresult per_thread_stream(int create, struct vgpu_stream **out)
{
    *out = NULL;
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL)
        return create ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
    struct per_thread_table *t = per_thread;
    for (size_t i = 0; t != NULL && i < t->count; i++) {
        if (t->entries[i].ctx == c->handle) {
            *out = vgpu_handle_get(t->entries[i].stream, VGPU_KIND_STREAM);
            if (*out != NULL)
                return CUDA_SUCCESS;
            break;
        }
    }
    if (!create)
        return CUDA_SUCCESS;
    CUresult rc = vgpu_ctx_remote(c);
    struct vgpu_stream *s;
    if (rc == CUDA_SUCCESS)
        rc = stream_new(c, 0, 0, &s);
    if (rc == CUDA_SUCCESS && (rc = per_thread_remember(c->handle, s->handle)) != CUDA_SUCCESS)
        stream_unlink(s);
    if (rc == CUDA_SUCCESS)
        *out = s;
    return rc;
}

/* The library is going away: threads exiting later must not call into it. */
void vgpu_streams_unload(void)
{
    if (per_thread_key_ok) {
        per_thread_key_ok = 0;
        pthread_key_delete(per_thread_key);
    }
}

/* A forked child has none of its parent's streams (their handles are already void). */
void vgpu_streams_after_fork(void)
{
    pthread_mutex_init(&streams_lock, NULL);
    streams = NULL;
    if (per_thread != NULL)
        per_thread->count = 0;
}

CUresult vgpu_stream_resolve(CUstream s, int create, struct vgpu_stream **out)
{
    *out = NULL;
    if (s == NULL || s == CU_STREAM_LEGACY)
        return CUDA_SUCCESS;
    if (s == CU_STREAM_PER_THREAD)
        return per_thread_stream(create, out);
    *out = stream_from(s);
    return *out != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult vgpu_stream_remote(CUstream s, uint64_t *remote)
{
    struct vgpu_stream *st;
    CUresult rc = vgpu_stream_resolve(s, 1, &st);
    if (rc == CUDA_SUCCESS)
        *remote = st != NULL ? st->remote : 0;
    return rc;
}

VGPU_API CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    VGPU_CHECK_INIT();
    if (phStream == NULL || (flags & ~0x1u))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c;
    CUresult rc = vgpu_current_remote(&c);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* Out-of-range priorities are clamped, as the driver does. */
    if (priority > 0)
        priority = 0;
    if (priority < -5)
        priority = -5;
    struct vgpu_stream *s;
    rc = stream_new(c, flags, priority, &s);
    if (rc == CUDA_SUCCESS)
        *phStream = (CUstream)(uintptr_t)s->handle;
    return rc;
}

VGPU_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return cuStreamCreateWithPriority(phStream, Flags, 0);
}

VGPU_API CUresult cuStreamDestroy_v2(CUstream hStream)
{
    VGPU_CHECK_INIT();
    struct vgpu_stream *s = stream_from(hStream);
    if (s == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_stream_destroy_req req = {.stream = s->remote};
    CUresult rc = vgpu_call(VGPU_OP_STREAM_DESTROY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
    stream_unlink(s);
    return rc == CUDA_ERROR_DEVICE_UNAVAILABLE ? CUDA_SUCCESS : rc;
}

VGPU_API CUresult cuStreamDestroy(CUstream hStream)
{
    return cuStreamDestroy_v2(hStream);
}

VGPU_API CUresult cuStreamSynchronize(CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t remote;
    CUresult rc = vgpu_stream_remote(hStream, &remote);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_stream_synchronize_req req = {.stream = remote};
    return vgpu_call(VGPU_OP_STREAM_SYNCHRONIZE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuStreamQuery(CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t remote;
    CUresult rc = vgpu_stream_remote(hStream, &remote);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_stream_query_req req = {.stream = remote};
    return vgpu_call(VGPU_OP_STREAM_QUERY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
    VGPU_CHECK_INIT();
    if (flags == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_is_default_stream(hStream)) {
        *flags = 0;
        return CUDA_SUCCESS;
    }
    struct vgpu_stream *s = stream_from(hStream);
    if (s == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *flags = s->flags;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
    VGPU_CHECK_INIT();
    if (priority == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_is_default_stream(hStream)) {
        *priority = 0;
        return CUDA_SUCCESS;
    }
    struct vgpu_stream *s = stream_from(hStream);
    if (s == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *priority = s->priority;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId)
{
    VGPU_CHECK_INIT();
    if (streamId == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_stream *s;
    CUresult rc = vgpu_stream_resolve(hStream, 1, &s);
    if (rc == CUDA_SUCCESS)
        *streamId = s != NULL ? s->id : 0; /* 0: the legacy stream; the others count from 1 */
    return rc;
}

VGPU_API CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
    VGPU_CHECK_INIT();
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_is_default_stream(hStream)) {
        struct vgpu_ctx *c = vgpu_current_ctx();
        if (c == NULL)
            return CUDA_ERROR_INVALID_CONTEXT;
        *pctx = (CUcontext)(uintptr_t)c->handle;
        return CUDA_SUCCESS;
    }
    struct vgpu_stream *s = stream_from(hStream);
    if (s == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    *pctx = (CUcontext)(uintptr_t)s->ctx->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pCtx, CUgreenCtx *pGreenCtx)
{
    if (pGreenCtx != NULL)
        *pGreenCtx = NULL;
    return cuStreamGetCtx(hStream, pCtx);
}

VGPU_API CUresult cuStreamGetDevice(CUstream hStream, CUdevice *device)
{
    CUcontext c;
    CUresult rc = cuStreamGetCtx(hStream, &c);
    if (rc == CUDA_SUCCESS && device == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS)
        *device = vgpu_ctx_from(c)->device;
    return rc;
}

/* ---------------------------------------------------------------- events */

static struct vgpu_event *event_from(CUevent e)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)e, VGPU_KIND_EVENT);
}

VGPU_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    VGPU_CHECK_INIT();
    if (phEvent == NULL || (Flags & ~0xfu))
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_ctx *c;
    CUresult rc = vgpu_current_remote(&c);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_event_create_req req = {.ctx = c->remote, .flags = Flags};
    struct vgpu_event_create_rep rep;
    rc = vgpu_call(VGPU_OP_EVENT_CREATE, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_event *e = calloc(1, sizeof *e);
    if (e == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->ctx = c;
    e->remote = rep.event;
    e->flags = Flags;
    e->handle = vgpu_handle_new(VGPU_KIND_EVENT, e);
    *phEvent = (CUevent)(uintptr_t)e->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuEventDestroy_v2(CUevent hEvent)
{
    VGPU_CHECK_INIT();
    struct vgpu_event *e = event_from(hEvent);
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_event_destroy_req req = {.event = e->remote};
    /* Destroying an event whose record is still queued is legal; the service drops it in order. */
    CUresult rc = vgpu_call(VGPU_OP_EVENT_DESTROY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
    vgpu_handle_free(e->handle);
    return rc == CUDA_ERROR_DEVICE_UNAVAILABLE ? CUDA_SUCCESS : rc;
}

VGPU_API CUresult cuEventDestroy(CUevent hEvent)
{
    return cuEventDestroy_v2(hEvent);
}

VGPU_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    VGPU_CHECK_INIT();
    struct vgpu_event *e = event_from(hEvent);
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    uint64_t stream;
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* In a capture, the event only orders work, which recording order already does. */
    e->capture = vgpu_capturing(hStream);
    if (e->capture != NULL)
        return CUDA_SUCCESS;
    struct vgpu_event_record_req req = {.event = e->remote, .stream = stream};
    return vgpu_post(VGPU_OP_EVENT_RECORD, &req, sizeof req, NULL, 0);
}

VGPU_API CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    if (flags & ~0x1u)
        return CUDA_ERROR_INVALID_VALUE;
    return cuEventRecord(hEvent, hStream);
}

VGPU_API CUresult cuEventQuery(CUevent hEvent)
{
    VGPU_CHECK_INIT();
    struct vgpu_event *e = event_from(hEvent);
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_event_query_req req = {.event = e->remote};
    return vgpu_call(VGPU_OP_EVENT_QUERY, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuEventSynchronize(CUevent hEvent)
{
    VGPU_CHECK_INIT();
    struct vgpu_event *e = event_from(hEvent);
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_event_synchronize_req req = {.event = e->remote};
    return vgpu_call(VGPU_OP_EVENT_SYNCHRONIZE, &req, sizeof req, NULL, 0, NULL, 0, NULL, 0, NULL);
}

VGPU_API CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    VGPU_CHECK_INIT();
    if (pMilliseconds == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_event *s = event_from(hStart), *e = event_from(hEnd);
    if (s == NULL || e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_event_elapsed_time_req req = {.start = s->remote, .end = e->remote};
    struct vgpu_event_elapsed_time_rep rep;
    CUresult rc = vgpu_call(VGPU_OP_EVENT_ELAPSED_TIME, &req, sizeof req, NULL, 0, &rep, sizeof rep, NULL, 0, NULL);
    if (rc == CUDA_SUCCESS)
        *pMilliseconds = rep.millis;
    return rc;
}

VGPU_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

VGPU_API CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    VGPU_CHECK_INIT();
    if (Flags & ~0x1u)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_event *e = event_from(hEvent);
    if (e == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    uint64_t stream;
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* Waiting on an event of a capture pulls this stream into the capture (fork and join). */
    if (e->capture != NULL && capture_active(e->capture)) {
        vgpu_capture_join(hStream, e->capture);
        return CUDA_SUCCESS;
    }
    if (vgpu_capturing(hStream) != NULL)
        return CUDA_SUCCESS;
    struct vgpu_stream_wait_event_req req = {.stream = stream, .event = e->remote};
    return vgpu_post(VGPU_OP_STREAM_WAIT_EVENT, &req, sizeof req, NULL, 0);
}

/* Host functions run once everything before them is done: here, in the calling thread. */
VGPU_API CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    VGPU_CHECK_INIT();
    if (fn == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuStreamSynchronize(hStream);
    if (rc != CUDA_SUCCESS)
        return rc;
    fn(userData);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags)
{
    VGPU_CHECK_INIT();
    if (callback == NULL || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult status = cuStreamSynchronize(hStream);
    if (status == CUDA_ERROR_INVALID_HANDLE)
        return status;
    callback(hStream, status, userData);
    return CUDA_SUCCESS;
}
