/*
 * The per-thread default stream through the entry points a per-thread program binds: the _ptsz and
 * _ptds variants, once found by dlsym and once through cuGetProcAddress_v2 with
 * CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, as cudart does. In them the NULL stream is the
 * calling thread's own stream (CU_STREAM_PER_THREAD): not the legacy stream, a different stream
 * per thread and per context, and one that can be captured into a graph.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status);
CUresult cuStreamGetId(CUstream s, unsigned long long *id);
CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status);
CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags);
CUresult cuGraphGetNodes(CUgraph g, CUgraphNode *nodes, size_t *n);
CUresult cuGraphNodeGetType(CUgraphNode node, CUgraphNodeType *type);
CUresult cuGraphDestroy(CUgraph g);
CUresult cuGraphExecDestroy(CUgraphExec e);

/* The per-thread entry points under test, however they were found. */
struct api {
    const char *how;
    CUresult (*get_id)(CUstream, unsigned long long *);
    CUresult (*begin_capture)(CUstream, CUstreamCaptureMode);
    CUresult (*is_capturing)(CUstream, CUstreamCaptureStatus *);
    CUresult (*end_capture)(CUstream, CUgraph *);
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                       void **, void **);
    CUresult (*launch_ex)(const CUlaunchConfig *, CUfunction, void **, void **);
    CUresult (*memset_d32_async)(CUdeviceptr, unsigned int, size_t, CUstream);
    CUresult (*synchronize)(CUstream);
    CUresult (*graph_launch)(CUgraphExec, CUstream);
    CUresult (*memcpy_htod)(CUdeviceptr, const void *, size_t); /* a _ptds variant: no stream argument */
};

/* Request name for cuGetProcAddress and the ABI symbol a per-thread program gets for it. */
static const char *const names[][2] = {
    {"cuStreamGetId", "cuStreamGetId_ptsz"},
    {"cuStreamBeginCapture", "cuStreamBeginCapture_v2_ptsz"},
    {"cuStreamIsCapturing", "cuStreamIsCapturing_ptsz"},
    {"cuStreamEndCapture", "cuStreamEndCapture_ptsz"},
    {"cuLaunchKernel", "cuLaunchKernel_ptsz"},
    {"cuLaunchKernelEx", "cuLaunchKernelEx_ptsz"},
    {"cuMemsetD32Async", "cuMemsetD32Async_ptsz"},
    {"cuStreamSynchronize", "cuStreamSynchronize_ptsz"},
    {"cuGraphLaunch", "cuGraphLaunch_ptsz"},
    {"cuMemcpyHtoD", "cuMemcpyHtoD_v2_ptds"},
};
#define NAMES (sizeof names / sizeof names[0])

static void fill(struct api *a, const char *how, void *fns[NAMES])
{
    a->how = how;
    a->get_id = (CUresult (*)(CUstream, unsigned long long *))fns[0];
    a->begin_capture = (CUresult (*)(CUstream, CUstreamCaptureMode))fns[1];
    a->is_capturing = (CUresult (*)(CUstream, CUstreamCaptureStatus *))fns[2];
    a->end_capture = (CUresult (*)(CUstream, CUgraph *))fns[3];
    a->launch = (CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              CUstream, void **, void **))fns[4];
    a->launch_ex = (CUresult (*)(const CUlaunchConfig *, CUfunction, void **, void **))fns[5];
    a->memset_d32_async = (CUresult (*)(CUdeviceptr, unsigned int, size_t, CUstream))fns[6];
    a->synchronize = (CUresult (*)(CUstream))fns[7];
    a->graph_launch = (CUresult (*)(CUgraphExec, CUstream))fns[8];
    a->memcpy_htod = (CUresult (*)(CUdeviceptr, const void *, size_t))fns[9];
}

enum { N = 1024 };
static CUcontext ctx;
static CUfunction iota;

static unsigned long long id_of(CUstream s)
{
    unsigned long long id = 0;
    CHECK_CU(CUDA_SUCCESS, cuStreamGetId(s, &id));
    return id;
}

static CUstreamCaptureStatus capture_status(const struct api *a, CUstream s)
{
    CUstreamCaptureStatus status = 99;
    CHECK_CU(CUDA_SUCCESS, a->is_capturing(s, &status));
    return status;
}

/* Launches the captured graph on the NULL stream and waits for it there. */
static void replay(const struct api *a, CUgraph g)
{
    CUgraphExec exec;
    CHECK_CU(CUDA_SUCCESS, cuGraphInstantiateWithFlags(&exec, g, 0));
    CHECK_CU(CUDA_SUCCESS, a->graph_launch(exec, NULL));
    CHECK_CU(CUDA_SUCCESS, a->synchronize(NULL));
    CHECK_CU(CUDA_SUCCESS, cuGraphExecDestroy(exec));
}

static int is_iota(const int *v, int start)
{
    for (int i = 0; i < N; i++)
        if (v[i] != start + i)
            return 0;
    return 1;
}

/* NULL means this thread's per-thread stream: its id, and work on it captured and replayed. */
static void capture_on_null(const struct api *a, CUstreamCaptureMode mode)
{
    printf("%s, capture mode %d\n", a->how, (int)mode);
    unsigned long long legacy = id_of(CU_STREAM_LEGACY), per_thread = id_of(CU_STREAM_PER_THREAD), id = 0;
    CHECK(legacy != per_thread);
    CHECK_EQ(legacy, id_of(NULL)); /* the plain entry point: NULL is the legacy stream */
    CHECK_CU(CUDA_SUCCESS, a->get_id(NULL, &id));
    CHECK_EQ(per_thread, id);
    CHECK_CU(CUDA_SUCCESS, a->get_id(CU_STREAM_LEGACY, &id)); /* an explicit legacy stream stays legacy */
    CHECK_EQ(legacy, id);

    CUdeviceptr fill, out1, out2;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&fill, N * 4));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out1, N * 4));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out2, N * 4));

    CHECK_CU(CUDA_SUCCESS, a->begin_capture(NULL, mode));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, capture_status(a, NULL));
    CUstreamCaptureStatus status = 99;
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(CU_STREAM_PER_THREAD, &status));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, status);
    /* A second capture of the same stream is refused: it is the stream that is already capturing. */
    CHECK_CU(CUDA_ERROR_ILLEGAL_STATE, a->begin_capture(CU_STREAM_PER_THREAD, mode));

    int n = N, start1 = 100, start2 = -7;
    void *params1[] = {&out1, &start1, &n}, *params2[] = {&out2, &start2, &n};
    CHECK_CU(CUDA_SUCCESS, a->memset_d32_async(fill, 0x5a5a5a5a, N, NULL));
    CHECK_CU(CUDA_SUCCESS, a->launch(iota, N / 256, 1, 1, 256, 1, 1, 0, NULL, params1, NULL));
    CUlaunchConfig config = {.gridDimX = N / 128, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 128, .blockDimY = 1,
                             .blockDimZ = 1, .hStream = NULL};
    CHECK_CU(CUDA_SUCCESS, a->launch_ex(&config, iota, params2, NULL));

    CUgraph g = NULL;
    CHECK_CU(CUDA_SUCCESS, a->end_capture(NULL, &g));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_NONE, capture_status(a, NULL));
    size_t count = 0;
    CHECK_CU(CUDA_SUCCESS, cuGraphGetNodes(g, NULL, &count));
    CHECK_EQ(3, count);
    CUgraphNode nodes[3];
    CUgraphNodeType type = 99;
    CHECK_CU(CUDA_SUCCESS, cuGraphGetNodes(g, nodes, &count));
    CHECK_CU(CUDA_SUCCESS, cuGraphNodeGetType(nodes[1], &type));
    CHECK_EQ(CU_GRAPH_NODE_TYPE_KERNEL, type);
    CHECK_CU(CUDA_SUCCESS, cuGraphNodeGetType(nodes[2], &type));
    CHECK_EQ(CU_GRAPH_NODE_TYPE_KERNEL, type);

    /* Captured, not run: the buffers still hold what cuMemAlloc gave (zeros on the mock). */
    static int host[N];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out1, sizeof host));
    CHECK_EQ(0, host[1]);
    replay(a, g);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, fill, sizeof host));
    CHECK_EQ(0x5a5a5a5a, host[0]);
    CHECK_EQ(0x5a5a5a5a, host[N - 1]);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out1, sizeof host));
    CHECK(is_iota(host, 100));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out2, sizeof host));
    CHECK(is_iota(host, -7));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(g));

    /* Synchronous (_ptds) work on a capturing per-thread stream is refused and fails the capture. */
    int word = 1234;
    CHECK_CU(CUDA_SUCCESS, a->begin_capture(NULL, mode));
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, a->memcpy_htod(fill, &word, sizeof word));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_INVALIDATED, capture_status(a, NULL));
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, a->memset_d32_async(fill, 1, N, NULL));
    g = (CUgraph)&word;
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, a->end_capture(NULL, &g));
    CHECK(g == NULL);
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_NONE, capture_status(a, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, fill, 8));
    CHECK_EQ(0x5a5a5a5a, host[0]);
    /* Outside a capture it is an ordinary copy. */
    CHECK_CU(CUDA_SUCCESS, a->memcpy_htod(fill, &word, sizeof word));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, fill, 8));
    CHECK_EQ(1234, host[0]);
    CHECK_EQ(0x5a5a5a5a, host[1]);

    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(fill));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(out1));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(out2));
}

/*
 * Two threads, each capturing its own NULL stream at the same time. A worker counts its own
 * failures (check.h's counters are not thread-safe) and main checks them.
 */
struct worker {
    const struct api *api;
    pthread_barrier_t *both_capturing;
    int start;
    unsigned long long id;
    int failures;
};

#define W_EXPECT(w, cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL %s:%d (thread %d): %s\n", __FILE__, __LINE__, (w)->start, #cond); \
            (w)->failures++;                                                             \
        }                                                                                \
    } while (0)

static void *capture_in_thread(void *arg)
{
    struct worker *w = arg;
    const struct api *a = w->api;
    W_EXPECT(w, cuCtxSetCurrent(ctx) == CUDA_SUCCESS);
    W_EXPECT(w, a->get_id(NULL, &w->id) == CUDA_SUCCESS);
    CUdeviceptr out = 0;
    W_EXPECT(w, cuMemAlloc_v2(&out, N * 4) == CUDA_SUCCESS);
    int n = N;
    void *params[] = {&out, &w->start, &n};
    W_EXPECT(w, a->begin_capture(NULL, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) == CUDA_SUCCESS);
    W_EXPECT(w, a->launch(iota, N / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL) == CUDA_SUCCESS);
    /* Both captures are open here: neither thread's work may land in the other's graph. */
    pthread_barrier_wait(w->both_capturing);
    CUstreamCaptureStatus status = 99;
    W_EXPECT(w, a->is_capturing(NULL, &status) == CUDA_SUCCESS && status == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CUgraph g = NULL;
    W_EXPECT(w, a->end_capture(NULL, &g) == CUDA_SUCCESS);
    size_t count = 0;
    W_EXPECT(w, cuGraphGetNodes(g, NULL, &count) == CUDA_SUCCESS && count == 1);
    CUgraphExec exec = NULL;
    W_EXPECT(w, cuGraphInstantiateWithFlags(&exec, g, 0) == CUDA_SUCCESS);
    W_EXPECT(w, a->graph_launch(exec, NULL) == CUDA_SUCCESS);
    W_EXPECT(w, a->synchronize(NULL) == CUDA_SUCCESS);
    static __thread int host[N];
    W_EXPECT(w, cuMemcpyDtoH_v2(host, out, sizeof host) == CUDA_SUCCESS);
    W_EXPECT(w, is_iota(host, w->start));
    W_EXPECT(w, cuGraphExecDestroy(exec) == CUDA_SUCCESS);
    W_EXPECT(w, cuGraphDestroy(g) == CUDA_SUCCESS);
    W_EXPECT(w, cuMemFree_v2(out) == CUDA_SUCCESS);
    return NULL;
}

static void two_threads(const struct api *a)
{
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct worker w[2] = {{a, &barrier, 1000, 0, 0}, {a, &barrier, 5000, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(0, pthread_create(&t[i], NULL, capture_in_thread, &w[i]));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK_EQ(0, w[0].failures);
    CHECK_EQ(0, w[1].failures);
    unsigned long long mine = 0, legacy = id_of(CU_STREAM_LEGACY);
    CHECK_CU(CUDA_SUCCESS, a->get_id(NULL, &mine));
    CHECK(w[0].id != w[1].id && w[0].id != mine && w[1].id != mine);
    CHECK(w[0].id != legacy && w[1].id != legacy);
}

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUmodule mod;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&mod, iota_ptx));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&iota, mod, "vgpu_iota"));

    void *by_dlsym[NAMES], *by_proc[NAMES];
    for (size_t i = 0; i < NAMES; i++) {
        by_dlsym[i] = dlsym(RTLD_DEFAULT, names[i][1]);
        CUdriverProcAddressQueryResult status = 99;
        by_proc[i] = NULL;
        CHECK_CU(CUDA_SUCCESS, cuGetProcAddress_v2(names[i][0], &by_proc[i], 13000,
                                                   CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &status));
        CHECK_EQ(CU_GET_PROC_ADDRESS_SUCCESS, status);
        if (by_dlsym[i] == NULL || by_proc[i] != by_dlsym[i]) {
            fprintf(stderr, "FAIL %s: dlsym %p, cuGetProcAddress %p\n", names[i][1], by_dlsym[i], by_proc[i]);
            return check_done("ptsz");
        }
    }
    struct api dl, proc;
    fill(&dl, "dlsym", by_dlsym);
    fill(&proc, "cuGetProcAddress_v2 flags=2", by_proc);

    capture_on_null(&dl, CU_STREAM_CAPTURE_MODE_GLOBAL);
    capture_on_null(&proc, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    capture_on_null(&proc, CU_STREAM_CAPTURE_MODE_RELAXED);
    two_threads(&dl);
    two_threads(&proc);

    /* The per-thread stream belongs to the context too: another context, another stream. */
    unsigned long long first = 0, second = 0, again = 0;
    CHECK_CU(CUDA_SUCCESS, proc.get_id(NULL, &first));
    CUcontext other;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&other, 0, 0));
    CHECK_CU(CUDA_SUCCESS, proc.get_id(NULL, &second));
    CHECK(second != first);
    CHECK_CU(CUDA_SUCCESS, proc.begin_capture(NULL, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(ctx));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_NONE, capture_status(&proc, NULL));
    CHECK_CU(CUDA_SUCCESS, proc.get_id(NULL, &again));
    CHECK_EQ(first, again);
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(other));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, capture_status(&proc, NULL));
    /* Destroyed while capturing: its per-thread stream goes with it, and this thread's stream in
     * the remaining context is untouched. */
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(other));
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(ctx));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_NONE, capture_status(&proc, NULL));
    CHECK_CU(CUDA_SUCCESS, proc.get_id(NULL, &again));
    CHECK_EQ(first, again);

    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mod));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("ptsz");
}
