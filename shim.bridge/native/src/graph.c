/*
 * Stream capture and CUDA graphs, kept in the client. Work submitted to a capturing stream is
 * recorded as nodes instead of being sent; launching an instantiated graph replays its nodes in
 * order as ordinary fire-and-forget requests, which leave in one write. This is what ggml does
 * once per token, so a token costs one graph launch and a few copies on the wire.
 *
 * Ordering: the service runs a client's requests in order, so a graph's dependency edges are
 * satisfied by recording order. Kernel parameters are copied at capture time (as in CUDA); host
 * buffers of copy nodes are read and written when the graph runs.
 */
#include <stdlib.h>
#include <string.h>

#include "vgpu.h"

struct vgpu_function;
CUresult vgpu_launch_post(struct vgpu_function *f, const unsigned grid[3], const unsigned block[3], unsigned smem,
                          uint64_t stream, const void *params, size_t size);
CUresult vgpu_pack_params(struct vgpu_function *f, void **kernelParams, void **extra, uint8_t **params, size_t *size);
struct vgpu_function *vgpu_function_from(CUfunction f);
uint64_t vgpu_function_handle(struct vgpu_function *f);
int vgpu_function_param_layout(struct vgpu_function *f, uint32_t *count, const uint32_t **offsets);
CUresult vgpu_copy_async(uint64_t dst, uint64_t src, size_t n, uint64_t stream);
CUresult vgpu_memset2d_async(CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t size, size_t width, size_t height,
                             uint64_t stream);

struct vgpu_graph;

struct vgpu_node {
    uint64_t handle;
    CUgraphNodeType type;
    struct vgpu_graph *graph;
    /* kernel */
    struct vgpu_function *function;
    uint64_t function_handle;
    unsigned grid[3], block[3], smem;
    uint8_t *params;
    size_t params_size;
    void **param_ptrs; /* for cuGraphKernelNodeGetParams: pointers into params */
    /* memset */
    CUdeviceptr dst;
    size_t pitch, width, height;
    unsigned value, element_size;
    /* memcpy (addresses decide the direction at run time, as cuMemcpy does) */
    uint64_t copy_dst, copy_src;
    size_t copy_size;
};

struct vgpu_graph {
    uint64_t handle;
    struct vgpu_node **nodes;
    size_t count, cap;
    int invalidated;
    unsigned long long capture_id;
};

struct vgpu_exec {
    uint64_t handle;
    struct vgpu_graph graph; /* a private copy: later edits of the source graph do not reach it */
};

static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long next_capture_id = 1;
static __thread CUstreamCaptureMode thread_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

static struct vgpu_graph *graph_from(CUgraph g)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)g, VGPU_KIND_GRAPH);
}

static struct vgpu_exec *exec_from(CUgraphExec e)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)e, VGPU_KIND_GRAPH_EXEC);
}

static struct vgpu_node *node_from(CUgraphNode n)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)n, VGPU_KIND_GRAPH_NODE);
}

static struct vgpu_graph *new_graph(void)
{
    struct vgpu_graph *g = calloc(1, sizeof *g);
    if (g != NULL && (g->handle = vgpu_handle_new(VGPU_KIND_GRAPH, g)) == 0) {
        free(g);
        g = NULL;
    }
    return g;
}

static void free_node(struct vgpu_node *n, int with_handle)
{
    if (with_handle)
        vgpu_handle_free(n->handle);
    free(n->params);
    free(n->param_ptrs);
    free(n);
}

static void clear_nodes(struct vgpu_graph *g, int with_handles)
{
    for (size_t i = 0; i < g->count; i++)
        free_node(g->nodes[i], with_handles);
    free(g->nodes);
    g->nodes = NULL;
    g->count = g->cap = 0;
}

static CUresult add_node(struct vgpu_graph *g, struct vgpu_node *n, int with_handle)
{
    /* A failed capture records nothing more, as the driver refuses work on its streams. */
    if (g->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    if (g->count == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct vgpu_node **grown = realloc(g->nodes, cap * sizeof *grown);
        if (grown == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
        g->nodes = grown;
        g->cap = cap;
    }
    n->graph = g;
    if (with_handle && (n->handle = vgpu_handle_new(VGPU_KIND_GRAPH_NODE, n)) == 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    g->nodes[g->count++] = n;
    return CUDA_SUCCESS;
}

static struct vgpu_node *copy_node(const struct vgpu_node *src)
{
    struct vgpu_node *n = malloc(sizeof *n);
    if (n == NULL)
        return NULL;
    *n = *src;
    n->handle = 0;
    n->param_ptrs = NULL;
    n->params = NULL;
    if (src->params_size > 0 && (n->params = malloc(src->params_size)) == NULL) {
        free(n);
        return NULL;
    }
    if (src->params_size > 0)
        memcpy(n->params, src->params, src->params_size);
    return n;
}

/* ---------------------------------------------------------------- capture */

/* The graph a stream is capturing into, or NULL. */
struct vgpu_graph *vgpu_capturing(CUstream s)
{
    struct vgpu_stream *st;
    vgpu_stream_resolve(s, 0, &st);
    return st != NULL ? st->capture : NULL;
}

void vgpu_capture_invalidate(struct vgpu_graph *g)
{
    pthread_mutex_lock(&capture_lock);
    g->invalidated = 1;
    pthread_mutex_unlock(&capture_lock);
}

/*
 * A _ptds entry point is a synchronous operation on the calling thread's per-thread stream. The
 * generated wrapper then does what the legacy form does: the service runs a session's requests in
 * order, so the legacy form waits for everything submitted before it, which includes all this
 * thread's per-thread work, and what it waits for beyond that (other streams' work) always
 * finishes on its own here (nothing on a stream can block on later host action). What differs is
 * capture: a stream being captured cannot be synchronized, so the operation is refused and the
 * capture fails, as on the driver; the legacy form knows nothing of this thread's capture.
 */
CUresult vgpu_ptds_begin(void)
{
    if (vgpu_initialized() != CUDA_SUCCESS)
        return CUDA_SUCCESS; /* the legacy form reports it */
    struct vgpu_graph *g = vgpu_capturing(CU_STREAM_PER_THREAD);
    if (g == NULL)
        return CUDA_SUCCESS;
    if (g->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    vgpu_capture_invalidate(g);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

/* Adds a new node, with a handle, under the capture lock; a node it could not add is freed. */
static CUresult append_node(struct vgpu_graph *g, struct vgpu_node *n)
{
    pthread_mutex_lock(&capture_lock);
    CUresult rc = add_node(g, n, 1);
    pthread_mutex_unlock(&capture_lock);
    if (rc != CUDA_SUCCESS)
        free_node(n, 0);
    return rc;
}

CUresult vgpu_graph_add_kernel(struct vgpu_graph *g, struct vgpu_function *f, const unsigned grid[3],
                               const unsigned block[3], unsigned smem, const void *params, size_t size)
{
    struct vgpu_node *n = calloc(1, sizeof *n);
    if (n == NULL || (size > 0 && (n->params = malloc(size)) == NULL)) {
        free(n);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    n->type = CU_GRAPH_NODE_TYPE_KERNEL;
    n->function = f;
    n->function_handle = vgpu_function_handle(f);
    memcpy(n->grid, grid, sizeof n->grid);
    memcpy(n->block, block, sizeof n->block);
    n->smem = smem;
    if (size > 0)
        memcpy(n->params, params, size);
    n->params_size = size;
    return append_node(g, n);
}

CUresult vgpu_graph_add_memset(struct vgpu_graph *g, CUdeviceptr dst, size_t pitch, unsigned value, unsigned element_size,
                               size_t width, size_t height)
{
    struct vgpu_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    n->type = CU_GRAPH_NODE_TYPE_MEMSET;
    n->dst = dst;
    n->pitch = pitch;
    n->value = value;
    n->element_size = element_size;
    n->width = width;
    n->height = height;
    return append_node(g, n);
}

CUresult vgpu_graph_add_copy(struct vgpu_graph *g, uint64_t dst, uint64_t src, size_t size)
{
    struct vgpu_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    n->type = CU_GRAPH_NODE_TYPE_MEMCPY;
    n->copy_dst = dst;
    n->copy_src = src;
    n->copy_size = size;
    return append_node(g, n);
}

/* An event recorded in a capturing stream carries the capture to streams that wait on it. */
void vgpu_capture_event_recorded(CUstream s, struct vgpu_graph **event_capture)
{
    *event_capture = vgpu_capturing(s);
}

void vgpu_capture_join(CUstream s, struct vgpu_graph *capture)
{
    struct vgpu_stream *st;
    if (capture != NULL && vgpu_stream_resolve(s, 1, &st) == CUDA_SUCCESS && st != NULL)
        st->capture = capture;
}

static CUresult begin_capture(CUstream hStream, CUstreamCaptureMode mode)
{
    VGPU_CHECK_INIT();
    /* The legacy stream synchronizes with every blocking stream, so it cannot be captured. */
    if (hStream == NULL || hStream == CU_STREAM_LEGACY)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if ((int)mode < 0 || mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_stream *st;
    CUresult rc = vgpu_stream_resolve(hStream, 1, &st);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (st->capture != NULL)
        return CUDA_ERROR_ILLEGAL_STATE;
    struct vgpu_graph *g = new_graph();
    if (g == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&capture_lock);
    g->capture_id = next_capture_id++;
    pthread_mutex_unlock(&capture_lock);
    st->capture = g;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, mode);
}

VGPU_API CUresult cuStreamBeginCapture(CUstream hStream)
{
    return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

VGPU_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    VGPU_CHECK_INIT();
    if (phGraph == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_stream *st;
    CUresult rc = vgpu_stream_resolve(hStream, 0, &st);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_graph *g = st != NULL ? st->capture : NULL;
    if (g == NULL)
        return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    st->capture = NULL;
    /* Streams that joined through events leave the capture with it. */
    vgpu_streams_end_capture(g);
    if (g->invalidated) {
        clear_nodes(g, 1);
        vgpu_handle_free(g->handle);
        free(g);
        *phGraph = NULL;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *phGraph = (CUgraph)(uintptr_t)g->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    VGPU_CHECK_INIT();
    if (captureStatus == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_stream *st;
    CUresult rc = vgpu_stream_resolve(hStream, 0, &st);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_graph *g = st != NULL ? st->capture : NULL;
    *captureStatus = g == NULL ? CU_STREAM_CAPTURE_STATUS_NONE
                               : g->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

static CUresult capture_info(CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id, CUgraph *graph,
                             const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *numDeps)
{
    CUresult rc = cuStreamIsCapturing(hStream, status);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_graph *g = vgpu_capturing(hStream);
    if (id != NULL && g != NULL)
        *id = g->capture_id;
    if (graph != NULL)
        *graph = g ? (CUgraph)(uintptr_t)g->handle : NULL;
    /* The next node depends on the last one recorded; edges carry no data here. */
    if (deps != NULL)
        *deps = g && g->count > 0 ? (const CUgraphNode *)&g->nodes[g->count - 1]->handle : NULL;
    if (edges != NULL)
        *edges = NULL;
    if (numDeps != NULL)
        *numDeps = g && g->count > 0 ? 1 : 0;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id)
{
    VGPU_CHECK_INIT();
    return capture_info(hStream, status, id, NULL, NULL, NULL, NULL);
}

VGPU_API CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id,
                                            CUgraph *graph, const CUgraphNode **deps, size_t *numDeps)
{
    VGPU_CHECK_INIT();
    return capture_info(hStream, status, id, graph, deps, NULL, numDeps);
}

VGPU_API CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id,
                                            CUgraph *graph, const CUgraphNode **deps, const CUgraphEdgeData **edges,
                                            size_t *numDeps)
{
    VGPU_CHECK_INIT();
    return capture_info(hStream, status, id, graph, deps, edges, numDeps);
}

VGPU_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    VGPU_CHECK_INIT();
    if (mode == NULL || (int)*mode < 0 || *mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode previous = thread_capture_mode;
    thread_capture_mode = *mode;
    *mode = previous;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- graphs */

VGPU_API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    VGPU_CHECK_INIT();
    if (phGraph == NULL || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_graph *g = new_graph();
    if (g == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)(uintptr_t)g->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphDestroy(CUgraph hGraph)
{
    VGPU_CHECK_INIT();
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    clear_nodes(g, 1);
    vgpu_handle_free(g->handle);
    free(g);
    return CUDA_SUCCESS;
}

static CUresult instantiate(CUgraphExec *phGraphExec, CUgraph hGraph)
{
    VGPU_CHECK_INIT();
    if (phGraphExec == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_exec *e = calloc(1, sizeof *e);
    if (e == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < g->count; i++) {
        struct vgpu_node *n = copy_node(g->nodes[i]);
        if (n == NULL || add_node(&e->graph, n, 0) != CUDA_SUCCESS) {
            free(n);
            clear_nodes(&e->graph, 0);
            free(e);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    e->handle = vgpu_handle_new(VGPU_KIND_GRAPH_EXEC, e);
    *phGraphExec = (CUgraphExec)(uintptr_t)e->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    (void)flags;
    return instantiate(phGraphExec, hGraph);
}

VGPU_API CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                        char *logBuffer, size_t bufferSize)
{
    if (phErrorNode != NULL)
        *phErrorNode = NULL;
    if (logBuffer != NULL && bufferSize > 0)
        logBuffer[0] = '\0';
    return instantiate(phGraphExec, hGraph);
}

VGPU_API CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer,
                                     size_t bufferSize)
{
    return cuGraphInstantiate_v2(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

VGPU_API CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                               CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    /* Uploading is a no-op here, but the stream it names must be one (the per-thread one included). */
    uint64_t upload;
    CUresult rc = CUDA_SUCCESS;
    if (instantiateParams != NULL && (instantiateParams->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) &&
        vgpu_initialized() == CUDA_SUCCESS)
        rc = vgpu_stream_remote(instantiateParams->hUploadStream, &upload);
    if (rc == CUDA_SUCCESS)
        rc = instantiate(phGraphExec, hGraph);
    if (instantiateParams != NULL) {
        instantiateParams->hErrNode_out = NULL;
        instantiateParams->result_out = rc == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
    }
    return rc;
}

VGPU_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    VGPU_CHECK_INIT();
    struct vgpu_exec *e = exec_from(hGraphExec);
    if (e == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    clear_nodes(&e->graph, 0);
    vgpu_handle_free(e->handle);
    free(e);
    return CUDA_SUCCESS;
}

/* Replays the nodes in order on the stream. */
static CUresult run(struct vgpu_graph *g, uint64_t stream)
{
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < g->count && rc == CUDA_SUCCESS; i++) {
        struct vgpu_node *n = g->nodes[i];
        switch (n->type) {
        case CU_GRAPH_NODE_TYPE_KERNEL:
            /* A function unloaded since capture is gone: the launch would be against a stale handle. */
            if (vgpu_function_from((CUfunction)(uintptr_t)n->function_handle) != n->function)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = vgpu_launch_post(n->function, n->grid, n->block, n->smem, stream, n->params, n->params_size);
            break;
        case CU_GRAPH_NODE_TYPE_MEMSET:
            rc = vgpu_memset2d_async(n->dst, n->pitch, n->value, n->element_size, n->width, n->height, stream);
            break;
        case CU_GRAPH_NODE_TYPE_MEMCPY:
            rc = vgpu_copy_async(n->copy_dst, n->copy_src, n->copy_size, stream);
            break;
        default:
            break;
        }
    }
    return rc;
}

VGPU_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    VGPU_CHECK_INIT();
    struct vgpu_exec *e = exec_from(hGraphExec);
    if (e == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_graph *capture = vgpu_capturing(hStream);
    if (capture != NULL) {
        /* A graph launched into a capture becomes part of the captured graph. */
        CUresult rc = CUDA_SUCCESS;
        pthread_mutex_lock(&capture_lock);
        for (size_t i = 0; i < e->graph.count && rc == CUDA_SUCCESS; i++) {
            struct vgpu_node *n = copy_node(e->graph.nodes[i]);
            rc = n == NULL ? CUDA_ERROR_OUT_OF_MEMORY : add_node(capture, n, 1);
        }
        pthread_mutex_unlock(&capture_lock);
        return rc;
    }
    uint64_t stream;
    CUresult rc = vgpu_stream_remote(hStream, &stream);
    return rc != CUDA_SUCCESS ? rc : run(&e->graph, stream);
}

VGPU_API CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    VGPU_CHECK_INIT();
    uint64_t stream;
    if (exec_from(hGraphExec) == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return vgpu_stream_remote(hStream, &stream);
}

/*
 * Our executable graphs are recorded work, so any change can be applied in place: the update
 * always succeeds and the next launch runs the new nodes.
 */
VGPU_API CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphExecUpdateResultInfo *resultInfo)
{
    VGPU_CHECK_INIT();
    struct vgpu_exec *e = exec_from(hGraphExec);
    struct vgpu_graph *g = graph_from(hGraph);
    if (e == NULL || g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_graph fresh = {0};
    for (size_t i = 0; i < g->count; i++) {
        struct vgpu_node *n = copy_node(g->nodes[i]);
        if (n == NULL || add_node(&fresh, n, 0) != CUDA_SUCCESS) {
            free(n);
            clear_nodes(&fresh, 0);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    clear_nodes(&e->graph, 0);
    e->graph.nodes = fresh.nodes;
    e->graph.count = fresh.count;
    e->graph.cap = fresh.cap;
    if (resultInfo != NULL)
        *resultInfo = (CUgraphExecUpdateResultInfo){.result = CU_GRAPH_EXEC_UPDATE_SUCCESS};
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    VGPU_CHECK_INIT();
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL || numNodes == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (nodes != NULL) {
        for (size_t i = 0; i < *numNodes && i < g->count; i++)
            nodes[i] = (CUgraphNode)(uintptr_t)g->nodes[i]->handle;
        if (*numNodes > g->count)
            for (size_t i = g->count; i < *numNodes; i++)
                nodes[i] = NULL;
    }
    *numNodes = g->count;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes)
{
    VGPU_CHECK_INIT();
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL || numRootNodes == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    /* Recorded work is a chain: the first node is the only root. */
    size_t roots = g->count > 0 ? 1 : 0;
    if (rootNodes != NULL && *numRootNodes > 0 && roots > 0)
        rootNodes[0] = (CUgraphNode)(uintptr_t)g->nodes[0]->handle;
    *numRootNodes = roots;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    VGPU_CHECK_INIT();
    struct vgpu_node *n = node_from(hNode);
    if (n == NULL || type == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *type = n->type;
    return CUDA_SUCCESS;
}

static CUresult kernel_params_out(struct vgpu_node *n, CUDA_KERNEL_NODE_PARAMS_v2 *p)
{
    uint32_t count = 0;
    const uint32_t *offsets = NULL;
    vgpu_function_param_layout(n->function, &count, &offsets);
    if (n->param_ptrs == NULL && count > 0) {
        n->param_ptrs = calloc(count, sizeof *n->param_ptrs);
        if (n->param_ptrs == NULL)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (uint32_t i = 0; i < count; i++)
        n->param_ptrs[i] = n->params + offsets[i];
    memset(p, 0, sizeof *p);
    p->func = (CUfunction)(uintptr_t)n->function_handle;
    p->gridDimX = n->grid[0];
    p->gridDimY = n->grid[1];
    p->gridDimZ = n->grid[2];
    p->blockDimX = n->block[0];
    p->blockDimY = n->block[1];
    p->blockDimZ = n->block[2];
    p->sharedMemBytes = n->smem;
    p->kernelParams = n->param_ptrs;
    return CUDA_SUCCESS;
}

static CUresult kernel_params_in(struct vgpu_node *n, const CUDA_KERNEL_NODE_PARAMS_v2 *p)
{
    struct vgpu_function *f = vgpu_function_from(p->func != NULL ? p->func : (CUfunction)p->kern);
    if (f == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    uint8_t *params = NULL;
    size_t size = 0;
    CUresult rc = vgpu_pack_params(f, p->kernelParams, p->extra, &params, &size);
    if (rc != CUDA_SUCCESS)
        return rc;
    free(n->params);
    free(n->param_ptrs);
    n->param_ptrs = NULL;
    n->params = params;
    n->params_size = size;
    n->function = f;
    n->function_handle = vgpu_function_handle(f);
    n->grid[0] = p->gridDimX;
    n->grid[1] = p->gridDimY;
    n->grid[2] = p->gridDimZ;
    n->block[0] = p->blockDimX;
    n->block[1] = p->blockDimY;
    n->block[2] = p->blockDimZ;
    n->smem = p->sharedMemBytes;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams)
{
    VGPU_CHECK_INIT();
    struct vgpu_node *n = node_from(hNode);
    if (n == NULL || nodeParams == NULL || n->type != CU_GRAPH_NODE_TYPE_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    return kernel_params_out(n, nodeParams);
}

VGPU_API CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams)
{
    VGPU_CHECK_INIT();
    struct vgpu_node *n = node_from(hNode);
    if (n == NULL || nodeParams == NULL || n->type != CU_GRAPH_NODE_TYPE_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    return kernel_params_in(n, nodeParams);
}

/* The executable graph holds copies in the same order as its source graph's nodes. */
VGPU_API CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams)
{
    VGPU_CHECK_INIT();
    struct vgpu_exec *e = exec_from(hGraphExec);
    struct vgpu_node *n = node_from(hNode);
    if (e == NULL || n == NULL || nodeParams == NULL || n->type != CU_GRAPH_NODE_TYPE_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n->graph->count && i < e->graph.count; i++)
        if (n->graph->nodes[i] == n && e->graph.nodes[i]->type == CU_GRAPH_NODE_TYPE_KERNEL)
            return kernel_params_in(e->graph.nodes[i], nodeParams);
    return CUDA_ERROR_INVALID_VALUE;
}

VGPU_API CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                          size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams)
{
    VGPU_CHECK_INIT();
    (void)dependencies;
    (void)numDependencies;
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL || phGraphNode == NULL || nodeParams == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vgpu_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    n->type = CU_GRAPH_NODE_TYPE_KERNEL;
    CUresult rc = kernel_params_in(n, nodeParams);
    if (rc != CUDA_SUCCESS) {
        free_node(n, 0);
        return rc;
    }
    if ((rc = append_node(g, n)) != CUDA_SUCCESS)
        return rc;
    *phGraphNode = (CUgraphNode)(uintptr_t)n->handle;
    return CUDA_SUCCESS;
}

/*
 * The v1 ABI (CUDA 11 layout, still looked up by cuBLASLt 12) is v2 without the CUkernel and
 * context at the end.
 */
static CUDA_KERNEL_NODE_PARAMS_v2 params_from_v1(const CUDA_KERNEL_NODE_PARAMS_v1 *p)
{
    CUDA_KERNEL_NODE_PARAMS_v2 v2 = {0};
    memcpy(&v2, p, sizeof *p);
    return v2;
}

VGPU_API CUresult cuGraphKernelNodeGetParams(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    if (nodeParams == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_KERNEL_NODE_PARAMS_v2 v2;
    CUresult rc = cuGraphKernelNodeGetParams_v2(hNode, &v2);
    if (rc == CUDA_SUCCESS)
        memcpy(nodeParams, &v2, sizeof *nodeParams);
    return rc;
}

VGPU_API CUresult cuGraphKernelNodeSetParams(CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    if (nodeParams == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_KERNEL_NODE_PARAMS_v2 v2 = params_from_v1(nodeParams);
    return cuGraphKernelNodeSetParams_v2(hNode, &v2);
}

VGPU_API CUresult cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                 const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    if (nodeParams == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_KERNEL_NODE_PARAMS_v2 v2 = params_from_v1(nodeParams);
    return cuGraphExecKernelNodeSetParams_v2(hGraphExec, hNode, &v2);
}

VGPU_API CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                       size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    if (nodeParams == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_KERNEL_NODE_PARAMS_v2 v2 = params_from_v1(nodeParams);
    return cuGraphAddKernelNode_v2(phGraphNode, hGraph, dependencies, numDependencies, &v2);
}


VGPU_API CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                       size_t numDependencies, const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    VGPU_CHECK_INIT();
    (void)dependencies;
    (void)numDependencies;
    (void)ctx;
    struct vgpu_graph *g = graph_from(hGraph);
    if (g == NULL || phGraphNode == NULL || memsetParams == NULL ||
        (memsetParams->elementSize != 1 && memsetParams->elementSize != 2 && memsetParams->elementSize != 4))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = vgpu_graph_add_memset(g, memsetParams->dst, memsetParams->pitch, memsetParams->value,
                                        memsetParams->elementSize, memsetParams->width, memsetParams->height);
    if (rc == CUDA_SUCCESS)
        *phGraphNode = (CUgraphNode)(uintptr_t)g->nodes[g->count - 1]->handle;
    return rc;
}
