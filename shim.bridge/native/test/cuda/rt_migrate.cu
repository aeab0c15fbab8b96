/*
 * A program that must not notice being moved between backends (itests MigrationIT). It stops at
 * "step NAME" lines, each in a state a migration has to carry (the test moves it meanwhile):
 * async work still queued in the shim, an event recorded and waited for afterwards, an open stream
 * capture, an instantiated graph. Then, after "step loop PID", it loops without stopping, each
 * round launching kernels, copying both ways (1 MiB and an odd-sized buffer) and checking every
 * element against a host mirror, until a line arrives on stdin; the test migrates it all that time.
 */
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <unistd.h>

#include "rt_check.h"

__global__ void mig_step(unsigned *buf, int n, unsigned mul, unsigned add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        buf[i] = buf[i] * mul + add + (unsigned)i;
}

__device__ unsigned mig_rounds = 100;

__global__ void mig_count(int times)
{
    if (blockIdx.x == 0 && threadIdx.x == 0)
        mig_rounds += times;
}

static const int N = 256 * 1024;  /* 1 MiB of u32 */
static const int ODD = 1000003;   /* bytes */
static unsigned host[N], back[N];
static unsigned char odd_host[ODD], odd_back[ODD];

static void mirror(unsigned mul, unsigned add)
{
    for (int i = 0; i < N; i++)
        host[i] = host[i] * mul + add + (unsigned)i;
}

static void step(const char *name)
{
    printf("step %s\n", name);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        clearerr(stdin);
}

static int equal_all(void)
{
    return memcmp(host, back, sizeof host) == 0;
}

static void launch(unsigned *d, cudaStream_t s, unsigned mul, unsigned add)
{
    mig_step<<<N / 256, 256, 0, s>>>(d, N, mul, add);
    mirror(mul, add);
}

int main(void)
{
    unsigned *d = NULL;
    unsigned char *d_odd = NULL;
    cudaStream_t s, s2, cap;
    cudaEvent_t ev;
    REQUIRE_RT("rt_migrate", cudaMalloc(&d, sizeof host));
    REQUIRE_RT("rt_migrate", cudaMalloc(&d_odd, ODD));
    CHECK_RT(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, -1));
    CHECK_RT(cudaStreamCreate(&s2));
    CHECK_RT(cudaStreamCreate(&cap));
    CHECK_RT(cudaEventCreate(&ev));
    for (int i = 0; i < N; i++)
        host[i] = (unsigned)i * 2654435761u;
    for (int i = 0; i < ODD; i++)
        odd_host[i] = (unsigned char)(i * 7 + 3);
    CHECK_RT(cudaMemcpy(d, host, sizeof host, cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy(d_odd, odd_host, ODD, cudaMemcpyHostToDevice));

    /* A graph instantiated before any move, launched after each. */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_RT(cudaStreamBeginCapture(cap, cudaStreamCaptureModeGlobal));
    mig_step<<<N / 256, 256, 0, cap>>>(d, N, 5, 1);
    mig_count<<<1, 32, 0, cap>>>(1);
    CHECK_RT(cudaStreamEndCapture(cap, &graph));
    CHECK_RT(cudaGraphInstantiate(&exec, graph, 0));

    /* Launches, an async copy and an event record still queued in the shim when the move happens. */
    launch(d, s, 3, 7);
    static unsigned char piece[4096];
    for (int i = 0; i < 4096; i++)
        piece[i] = (unsigned char)(255 - i);
    CHECK_RT(cudaMemcpyAsync(d_odd + 17, piece, sizeof piece, cudaMemcpyHostToDevice, s));
    memcpy(odd_host + 17, piece, sizeof piece);
    CHECK_RT(cudaEventRecord(ev, s));
    step("queued");
    CHECK_RT(cudaStreamWaitEvent(s2, ev, 0));
    CHECK_RT(cudaEventSynchronize(ev));
    CHECK_RT(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost));
    CHECK(equal_all());

    /* An event recorded (and complete) before the move, waited for after it. */
    CHECK_RT(cudaEventRecord(ev, s));
    CHECK_RT(cudaStreamSynchronize(s));
    step("recorded");
    CHECK_RT(cudaEventSynchronize(ev));
    CHECK_RT(cudaEventQuery(ev));
    CHECK_RT(cudaStreamWaitEvent(s, ev, 0));

    /* A capture open across the move. */
    cudaGraph_t open_graph;
    cudaGraphExec_t open_exec;
    CHECK_RT(cudaStreamBeginCapture(cap, cudaStreamCaptureModeGlobal));
    mig_step<<<N / 256, 256, 0, cap>>>(d, N, 1, 11);
    step("capturing");
    mig_step<<<N / 256, 256, 0, cap>>>(d, N, 2, 0);
    CHECK_RT(cudaStreamEndCapture(cap, &open_graph));
    CHECK_RT(cudaGraphInstantiate(&open_exec, open_graph, 0));
    CHECK_RT(cudaGraphLaunch(open_exec, s));
    mirror(1, 11);
    mirror(2, 0);
    CHECK_RT(cudaStreamSynchronize(s));
    CHECK_RT(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost));
    CHECK(equal_all());

    /* The graph from before every move. */
    step("graph");
    CHECK_RT(cudaGraphLaunch(exec, s));
    mirror(5, 1);
    CHECK_RT(cudaStreamSynchronize(s));
    CHECK_RT(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost));
    CHECK(equal_all());

    /* Round after round while the test moves the process, until it says stop. */
    char name[64];
    snprintf(name, sizeof name, "loop %d", (int)getpid());
    printf("step %s\n", name);
    fflush(stdout);
    int rounds = 0, graphs = 1;
    for (;;) {
        unsigned mul = 1 + 2 * (unsigned)(rounds % 5), add = (unsigned)rounds;
        launch(d, s, mul, add);
        if (rounds % 4 == 0) {
            CHECK_RT(cudaGraphLaunch(exec, s));
            mirror(5, 1);
            graphs++;
        }
        int at = (rounds * 4099) % (ODD - 8192);
        for (int i = 0; i < 8192; i++)
            odd_host[at + i] = (unsigned char)(rounds + i);
        CHECK_RT(cudaMemcpyAsync(d_odd + at, odd_host + at, 8192, cudaMemcpyHostToDevice, s));
        CHECK_RT(cudaMemcpyAsync(back, d, sizeof back, cudaMemcpyDeviceToHost, s));
        CHECK_RT(cudaStreamSynchronize(s));
        CHECK(equal_all());
        CHECK_RT(cudaMemcpy(odd_back, d_odd, ODD, cudaMemcpyDeviceToHost));
        CHECK(memcmp(odd_host, odd_back, ODD) == 0);
        rounds++;
        struct pollfd in = {0, POLLIN, 0};
        if (rounds >= 3 && poll(&in, 1, 0) > 0)
            break;
    }
    unsigned counted = 0;
    CHECK_RT(cudaMemcpyFromSymbol(&counted, mig_rounds, sizeof counted));
    CHECK_EQ(100 + graphs, counted);
    printf("rt_migrate: %d rounds\n", rounds);
    CHECK_RT(cudaGraphExecDestroy(exec));
    CHECK_RT(cudaGraphExecDestroy(open_exec));
    CHECK_RT(cudaFree(d));
    CHECK_RT(cudaFree(d_odd));
    return check_done("rt_migrate");
}
