/*
 * Stream capture and graphs as cudart and ggml use them: capture launches, memsets and copies,
 * instantiate, launch (replayed in order), update the executable graph, and launch again.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode);
CUresult cuStreamEndCapture(CUstream s, CUgraph *g);
CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status);
CUresult cuStreamGetCaptureInfo_v2(CUstream s, CUstreamCaptureStatus *status, cuuint64_t *id, CUgraph *g,
                                   const CUgraphNode **deps, size_t *n);
CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags);
CUresult cuGraphLaunch(CUgraphExec e, CUstream s);
CUresult cuGraphExecUpdate_v2(CUgraphExec e, CUgraph g, CUgraphExecUpdateResultInfo *info);
CUresult cuGraphDestroy(CUgraph g);
CUresult cuGraphExecDestroy(CUgraphExec e);
CUresult cuGraphGetNodes(CUgraph g, CUgraphNode *nodes, size_t *n);
CUresult cuGraphNodeGetType(CUgraphNode node, CUgraphNodeType *type);
CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS_v2 *p);
CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec e, CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS_v2 *p);
/* The CUDA 11 ABI names, which cuBLASLt 12 still looks up with dlsym. */
CUresult cuGraphKernelNodeGetParams(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS_v1 *p);
CUresult cuGraphExecKernelNodeSetParams(CUgraphExec e, CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS_v1 *p);

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUmodule mod;
    CUfunction iota;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&mod, iota_ptx));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&iota, mod, "vgpu_iota"));
    int n = 4096;
    CUdeviceptr a, b;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&a, (size_t)n * 4));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&b, (size_t)n * 4));
    static int host[4096];
    int input = 0;

    CUstream s;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 1));
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cuStreamBeginCapture_v2(NULL, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CUstreamCaptureStatus status = 99;
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(s, &status));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, status);
    /* Captured: memset a, launch iota into b starting at the value the host buffer holds at run time
     * copied into a[0], copy b to the host. Nothing runs until the graph is launched. */
    int start = 100;
    void *params[] = {&b, &start, &n};
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(a, 7, (size_t)n, s));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(a, &input, sizeof input, s));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(iota, (unsigned)n / 256, 1, 1, 256, 1, 1, 0, s, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(host, b, sizeof host, s));
    cuuint64_t id = 0;
    CUgraph during = NULL;
    size_t deps = 0;
    CHECK_CU(CUDA_SUCCESS, cuStreamGetCaptureInfo_v2(s, &status, &id, &during, NULL, &deps));
    CHECK(id != 0 && during != NULL && deps == 1);
    CUgraph g;
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(s, &g));
    CHECK(g == during);
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(s, &status));
    CHECK_EQ(CU_STREAM_CAPTURE_STATUS_NONE, status);
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, cuStreamEndCapture(s, &g));

    /* Captured work did not run. */
    int probe = -1;
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK_EQ(0, host[5]);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(&probe, b, sizeof probe));
    CHECK(probe != 100);

    size_t count = 0;
    CHECK_CU(CUDA_SUCCESS, cuGraphGetNodes(g, NULL, &count));
    CHECK_EQ(4, count);
    CUgraphNode nodes[4];
    CHECK_CU(CUDA_SUCCESS, cuGraphGetNodes(g, nodes, &count));
    CUgraphNodeType type;
    CHECK_CU(CUDA_SUCCESS, cuGraphNodeGetType(nodes[0], &type));
    CHECK_EQ(CU_GRAPH_NODE_TYPE_MEMSET, type);
    CHECK_CU(CUDA_SUCCESS, cuGraphNodeGetType(nodes[2], &type));
    CHECK_EQ(CU_GRAPH_NODE_TYPE_KERNEL, type);
    CUDA_KERNEL_NODE_PARAMS_v2 kp;
    CHECK_CU(CUDA_SUCCESS, cuGraphKernelNodeGetParams_v2(nodes[2], &kp));
    CHECK(kp.func == iota && kp.gridDimX == 16 && kp.blockDimX == 256);
    CHECK_EQ(100, *(int *)kp.kernelParams[1]);

    CUgraphExec exec;
    CHECK_CU(CUDA_SUCCESS, cuGraphInstantiateWithFlags(&exec, g, 0));
    input = 42;
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, s));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK_EQ(100, host[0]);
    CHECK_EQ(100 + n - 1, host[n - 1]);
    int a_head[2];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(a_head, a, sizeof a_head));
    CHECK_EQ(42, a_head[0]); /* the host buffer was read when the graph ran */
    CHECK_EQ(7, a_head[1]);

    /* Change a kernel node of the executable graph, as older ggml did. */
    int start2 = -5;
    void *params2[] = {&b, &start2, &n};
    kp.kernelParams = params2;
    CHECK_CU(CUDA_SUCCESS, cuGraphExecKernelNodeSetParams_v2(exec, nodes[2], &kp));
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, s));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK_EQ(-5, host[0]);
    /* The same through the v1 ABI. */
    CUDA_KERNEL_NODE_PARAMS_v1 kp1;
    memset(&kp1, 0xff, sizeof kp1);
    CHECK_CU(CUDA_SUCCESS, cuGraphKernelNodeGetParams(nodes[2], &kp1));
    CHECK(kp1.func == iota && kp1.gridDimX == 16 && kp1.blockDimX == 256 && kp1.extra == NULL);
    int start3 = 333;
    void *params3[] = {&b, &start3, &n};
    kp1.kernelParams = params3;
    CHECK_CU(CUDA_SUCCESS, cuGraphExecKernelNodeSetParams(exec, nodes[2], &kp1));
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, s));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK_EQ(333, host[0]);
    CHECK_EQ(333 + n - 1, host[n - 1]);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphKernelNodeGetParams(nodes[0], &kp1)); /* a memset node */

    /* Re-capture with other parameters and update the executable graph, as current ggml does. */
    start = 1000;
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(iota, (unsigned)n / 256, 1, 1, 256, 1, 1, 0, s, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(host, b, sizeof host, s));
    CUgraph g2;
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(s, &g2));
    CUgraphExecUpdateResultInfo info = {.result = 99};
    CHECK_CU(CUDA_SUCCESS, cuGraphExecUpdate_v2(exec, g2, &info));
    CHECK_EQ(CU_GRAPH_EXEC_UPDATE_SUCCESS, info.result);
    for (int round = 0; round < 3; round++) {
        host[7] = 0;
        CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, s));
        CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
        CHECK_EQ(1007, host[7]);
    }

    CHECK_CU(CUDA_SUCCESS, cuGraphExecDestroy(exec));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphLaunch(exec, s));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(g));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(g2));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("graph");
}
