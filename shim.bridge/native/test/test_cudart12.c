/*
 * NVIDIA's cudart 12.6 on our libcuda.so.1, without nvcc 12 or CUDA 12 headers: libcudart.so.12
 * is dlopen'ed from the directory given as the first argument (or $VGPU_CUDA12_DIR) and driven
 * through the runtime API, like the nvcc-built programs in test/cuda/ drive cudart 13: device
 * count and properties (printed as "prop" lines and checked against key=value arguments and
 * cudaDeviceGetAttribute), memory copies and memsets, pitched memory and 2D copies, registered
 * host memory and pointer attributes, streams and events with elapsed times, and two kernels from
 * a fatbin registered by hand with __cudaRegisterFatBinary/__cudaRegisterFunction, launched with
 * cudaLaunchKernel and executed by the mock from the fatbin's PTX (one takes a struct by value).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda/rt_props.h"

static const char *NAME = "test_cudart12";

/* ---- the runtime API, as CUDA 12.6 declares it ------------------------------------------ */

typedef int cudaError_t;
typedef struct rt_stream *cudaStream_t;
typedef struct rt_event *cudaEvent_t;
typedef struct {
    unsigned int x, y, z;
} rt_dim3;

enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDisableTiming 0x02
#define cudaStreamNonBlocking 0x01
#define cudaErrorInvalidResourceHandle 400
#define cudaErrorInvalidDevice 101
#define cudaErrorHostMemoryNotRegistered 713
#define cudaHostRegisterDefault 0
enum { cudaMemoryTypeUnregistered, cudaMemoryTypeHost, cudaMemoryTypeDevice, cudaMemoryTypeManaged };

/* CUDA 12.x has the first four fields; the reserved tail (13.x) only gives the runtime room. */
struct cudaPointerAttributes {
    int type;
    int device;
    void *devicePointer;
    void *hostPointer;
    long reserved[8];
};

/* struct cudaDeviceProp of CUDA 12.x (driver_types.h), which cudaGetDeviceProperties_v2 fills. */
struct cudaDeviceProp12 {
    char name[256];
    unsigned char uuid[16];
    char luid[8];
    unsigned int luidDeviceNodeMask;
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    size_t memPitch;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int clockRate;
    size_t totalConstMem;
    int major;
    int minor;
    size_t textureAlignment;
    size_t texturePitchAlignment;
    int deviceOverlap;
    int multiProcessorCount;
    int kernelExecTimeoutEnabled;
    int integrated;
    int canMapHostMemory;
    int computeMode;
    int maxTexture1D;
    int maxTexture1DMipmap;
    int maxTexture1DLinear;
    int maxTexture2D[2];
    int maxTexture2DMipmap[2];
    int maxTexture2DLinear[3];
    int maxTexture2DGather[2];
    int maxTexture3D[3];
    int maxTexture3DAlt[3];
    int maxTextureCubemap;
    int maxTexture1DLayered[2];
    int maxTexture2DLayered[3];
    int maxTextureCubemapLayered[2];
    int maxSurface1D;
    int maxSurface2D[2];
    int maxSurface3D[3];
    int maxSurface1DLayered[2];
    int maxSurface2DLayered[3];
    int maxSurfaceCubemap;
    int maxSurfaceCubemapLayered[2];
    size_t surfaceAlignment;
    int concurrentKernels;
    int ECCEnabled;
    int pciBusID;
    int pciDeviceID;
    int pciDomainID;
    int tccDriver;
    int asyncEngineCount;
    int unifiedAddressing;
    int memoryClockRate;
    int memoryBusWidth;
    int l2CacheSize;
    int persistingL2CacheMaxSize;
    int maxThreadsPerMultiProcessor;
    int streamPrioritiesSupported;
    int globalL1CacheSupported;
    int localL1CacheSupported;
    size_t sharedMemPerMultiprocessor;
    int regsPerMultiprocessor;
    int managedMemory;
    int isMultiGpuBoard;
    int multiGpuBoardGroupID;
    int hostNativeAtomicSupported;
    int singleToDoublePrecisionPerfRatio;
    int pageableMemoryAccess;
    int concurrentManagedAccess;
    int computePreemptionSupported;
    int canUseHostPointerForRegisteredMem;
    int cooperativeLaunch;
    int cooperativeMultiDeviceLaunch;
    size_t sharedMemPerBlockOptin;
    int pageableMemoryAccessUsesHostPageTables;
    int directManagedMemAccessFromHost;
    int maxBlocksPerMultiProcessor;
    int accessPolicyMaxWindowSize;
    size_t reservedSharedMemPerBlock;
    int hostRegisterSupported;
    int sparseCudaArraySupported;
    int hostRegisterReadOnlySupported;
    int timelineSemaphoreInteropSupported;
    int memoryPoolsSupported;
    int gpuDirectRDMASupported;
    unsigned int gpuDirectRDMAFlushWritesOptions;
    int gpuDirectRDMAWritesOrdering;
    unsigned int memoryPoolSupportedHandleTypes;
    int deferredMappingCudaArraySupported;
    int ipcEventSupported;
    int clusterLaunch;
    int unifiedFunctionPointers;
    int reserved[63]; /* reserved2[2], reserved1[1], reserved[60] in the header */
};

/*
 * Offsets worked out by hand from the 12.x header's field list, so a mistyped field breaks the
 * build. They differ from CUDA 13's <cuda_runtime.h> after maxGridSize because 13 dropped
 * clockRate, deviceOverlap and others. At run time every field is also compared with
 * cudaDeviceGetAttribute (rt_props_cross_check), which a wrong layout cannot pass with the
 * test's unusual device (77 SMs, bus 66, ...).
 */
_Static_assert(sizeof(struct cudaDeviceProp12) == 1032, "cudaDeviceProp (12.x) size");
_Static_assert(offsetof(struct cudaDeviceProp12, totalGlobalMem) == 288, "totalGlobalMem");
_Static_assert(offsetof(struct cudaDeviceProp12, clockRate) == 348, "clockRate");
_Static_assert(offsetof(struct cudaDeviceProp12, major) == 360, "major");
_Static_assert(offsetof(struct cudaDeviceProp12, multiProcessorCount) == 388, "multiProcessorCount");
_Static_assert(offsetof(struct cudaDeviceProp12, surfaceAlignment) == 568, "surfaceAlignment");
_Static_assert(offsetof(struct cudaDeviceProp12, pciBusID) == 584, "pciBusID");
_Static_assert(offsetof(struct cudaDeviceProp12, l2CacheSize) == 616, "l2CacheSize");
_Static_assert(offsetof(struct cudaDeviceProp12, sharedMemPerMultiprocessor) == 640, "sharedMemPerMultiprocessor");
_Static_assert(offsetof(struct cudaDeviceProp12, sharedMemPerBlockOptin) == 696, "sharedMemPerBlockOptin");
_Static_assert(offsetof(struct cudaDeviceProp12, unifiedFunctionPointers) == 776, "unifiedFunctionPointers");

/* The nvcc-generated registration interface (crt/host_runtime.h). */
struct fatbin_wrapper {
    int magic;
    int version;
    const void *data;
    void *filename_or_fatbins;
};

static struct {
    const char *(*GetErrorName)(cudaError_t);
    cudaError_t (*RuntimeGetVersion)(int *);
    cudaError_t (*DriverGetVersion)(int *);
    cudaError_t (*GetDeviceCount)(int *);
    cudaError_t (*GetDevice)(int *);
    cudaError_t (*SetDevice)(int);
    cudaError_t (*GetDeviceProperties)(struct cudaDeviceProp12 *, int);
    cudaError_t (*DeviceGetAttribute)(int *, int, int);
    cudaError_t (*DeviceGetPCIBusId)(char *, int, int);
    cudaError_t (*MemGetInfo)(size_t *, size_t *);
    cudaError_t (*Malloc)(void **, size_t);
    cudaError_t (*Free)(void *);
    cudaError_t (*MallocHost)(void **, size_t);
    cudaError_t (*FreeHost)(void *);
    cudaError_t (*Memcpy)(void *, const void *, size_t, int);
    cudaError_t (*MemcpyAsync)(void *, const void *, size_t, int, cudaStream_t);
    cudaError_t (*Memset)(void *, int, size_t);
    cudaError_t (*MemsetAsync)(void *, int, size_t, cudaStream_t);
    cudaError_t (*MallocPitch)(void **, size_t *, size_t, size_t);
    cudaError_t (*Memcpy2D)(void *, size_t, const void *, size_t, size_t, size_t, int);
    cudaError_t (*Memset2D)(void *, size_t, int, size_t, size_t);
    cudaError_t (*HostRegister)(void *, size_t, unsigned int);
    cudaError_t (*HostUnregister)(void *);
    cudaError_t (*PointerGetAttributes)(struct cudaPointerAttributes *, const void *);
    cudaError_t (*StreamCreateWithFlags)(cudaStream_t *, unsigned int);
    cudaError_t (*StreamDestroy)(cudaStream_t);
    cudaError_t (*StreamSynchronize)(cudaStream_t);
    cudaError_t (*StreamQuery)(cudaStream_t);
    cudaError_t (*StreamWaitEvent)(cudaStream_t, cudaEvent_t, unsigned int);
    cudaError_t (*EventCreateWithFlags)(cudaEvent_t *, unsigned int);
    cudaError_t (*EventRecord)(cudaEvent_t, cudaStream_t);
    cudaError_t (*EventSynchronize)(cudaEvent_t);
    cudaError_t (*EventQuery)(cudaEvent_t);
    cudaError_t (*EventElapsedTime)(float *, cudaEvent_t, cudaEvent_t);
    cudaError_t (*EventDestroy)(cudaEvent_t);
    cudaError_t (*DeviceSynchronize)(void);
    cudaError_t (*GetLastError)(void);
    cudaError_t (*LaunchKernel)(const void *, rt_dim3, rt_dim3, void **, size_t, cudaStream_t);
    void **(*RegisterFatBinary)(void *);
    void (*RegisterFatBinaryEnd)(void **);
    void (*UnregisterFatBinary)(void **);
    void (*RegisterFunction)(void **, const char *, char *, const char *, int, void *, void *, void *, void *, int *);
} rt;

static void *lib;

static void *sym(const char *name)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, "%s: libcudart.so.12 lacks %s\n", NAME, name);
        exit(2);
    }
    return p;
}

#define BIND(field, name) (*(void **)&rt.field = sym(name))

static void bind_runtime(void)
{
    BIND(GetErrorName, "cudaGetErrorName");
    BIND(RuntimeGetVersion, "cudaRuntimeGetVersion");
    BIND(DriverGetVersion, "cudaDriverGetVersion");
    BIND(GetDeviceCount, "cudaGetDeviceCount");
    BIND(GetDevice, "cudaGetDevice");
    BIND(SetDevice, "cudaSetDevice");
    /* CUDA 12 headers map cudaGetDeviceProperties to _v2, the entry for the 12.x layout. */
    BIND(GetDeviceProperties, "cudaGetDeviceProperties_v2");
    BIND(DeviceGetAttribute, "cudaDeviceGetAttribute");
    BIND(DeviceGetPCIBusId, "cudaDeviceGetPCIBusId");
    BIND(MemGetInfo, "cudaMemGetInfo");
    BIND(Malloc, "cudaMalloc");
    BIND(Free, "cudaFree");
    BIND(MallocHost, "cudaMallocHost");
    BIND(FreeHost, "cudaFreeHost");
    BIND(Memcpy, "cudaMemcpy");
    BIND(MemcpyAsync, "cudaMemcpyAsync");
    BIND(Memset, "cudaMemset");
    BIND(MemsetAsync, "cudaMemsetAsync");
    BIND(MallocPitch, "cudaMallocPitch");
    BIND(Memcpy2D, "cudaMemcpy2D");
    BIND(Memset2D, "cudaMemset2D");
    BIND(HostRegister, "cudaHostRegister");
    BIND(HostUnregister, "cudaHostUnregister");
    BIND(PointerGetAttributes, "cudaPointerGetAttributes");
    BIND(StreamCreateWithFlags, "cudaStreamCreateWithFlags");
    BIND(StreamDestroy, "cudaStreamDestroy");
    BIND(StreamSynchronize, "cudaStreamSynchronize");
    BIND(StreamQuery, "cudaStreamQuery");
    BIND(StreamWaitEvent, "cudaStreamWaitEvent");
    BIND(EventCreateWithFlags, "cudaEventCreateWithFlags");
    BIND(EventRecord, "cudaEventRecord");
    BIND(EventSynchronize, "cudaEventSynchronize");
    BIND(EventQuery, "cudaEventQuery");
    BIND(EventElapsedTime, "cudaEventElapsedTime");
    BIND(EventDestroy, "cudaEventDestroy");
    BIND(DeviceSynchronize, "cudaDeviceSynchronize");
    BIND(GetLastError, "cudaGetLastError");
    BIND(LaunchKernel, "cudaLaunchKernel");
    BIND(RegisterFatBinary, "__cudaRegisterFatBinary");
    BIND(RegisterFatBinaryEnd, "__cudaRegisterFatBinaryEnd");
    BIND(UnregisterFatBinary, "__cudaUnregisterFatBinary");
    BIND(RegisterFunction, "__cudaRegisterFunction");
}

#define CHECK_RT(call)                                                                          \
    do {                                                                                        \
        cudaError_t rt_ = (call);                                                               \
        check_count++;                                                                          \
        if (rt_ != 0) {                                                                         \
            check_failures++;                                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: %d %s\n", __FILE__, __LINE__, #call, rt_,          \
                    rt.GetErrorName(rt_));                                                      \
        }                                                                                       \
    } while (0)

#define REQUIRE_RT(call)                                                                        \
    do {                                                                                        \
        int before_ = check_failures;                                                           \
        CHECK_RT(call);                                                                         \
        if (check_failures != before_) {                                                        \
            fprintf(stderr, "%s: giving up on this part after that failure\n", NAME);          \
            return 1;                                                                           \
        }                                                                                       \
    } while (0)

/* ---- the kernel's fatbin, embedded at build time ---------------------------------------------- */

#ifndef RT12_FATBIN
#error "build with -DRT12_FATBIN=\"path/to/cudart12_kernel.fatbin\""
#endif

/* The fatbin container must be 8-aligned, as nvcc's .nv_fatbin section is. */
__asm__(".section .rodata.rt12_fatbin,\"a\"\n"
        ".balign 16\n"
        ".globl rt12_fatbin\n"
        ".hidden rt12_fatbin\n"
        "rt12_fatbin:\n"
        ".incbin \"" RT12_FATBIN "\"\n"
        ".previous\n");
extern const unsigned char rt12_fatbin[];

static struct fatbin_wrapper wrapper = {0x466243b1, 1, rt12_fatbin, NULL};
/* cudaLaunchKernel finds a kernel by the host address it was registered under; any unique one. */
static const char rt12_affine_host = 0;
static char rt12_affine_name[] = "_Z11rt12_affinePfPKfffi";
static const char rt_struct_apply_host = 0;
static char rt_struct_apply_name[] = "_Z15rt_struct_applyi8RtStructs";

/* The struct rt_struct_apply takes by value (cudart12_kernel.cu), with padding after tag. */
struct RtStruct {
    char tag;
    double offset;
    int count;
    float scale;
    const float *in;
    double *out;
};
_Static_assert(sizeof(struct RtStruct) == 40 && offsetof(struct RtStruct, offset) == 8 &&
                   offsetof(struct RtStruct, count) == 16 && offsetof(struct RtStruct, scale) == 20 &&
                   offsetof(struct RtStruct, in) == 24 && offsetof(struct RtStruct, out) == 32,
               "RtStruct layout");

static int device_attribute(int attr, int *value)
{
    return rt.DeviceGetAttribute(value, attr, 0);
}

static int differences(const char *what, const unsigned char *expected, const unsigned char *actual, size_t n)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        if (expected[i] != actual[i] && wrong++ < 5) {
            fprintf(stderr, "FAIL %s: byte %zu is 0x%02x, expected 0x%02x\n", what, i, actual[i], expected[i]);
        }
    }
    return wrong;
}

static int device_checks(int argc, char **argv)
{
    int driver = 0, runtime = 0, count = -1, dev = -1;
    CHECK_RT(rt.DriverGetVersion(&driver));
    CHECK_RT(rt.RuntimeGetVersion(&runtime));
    printf("version driver=%d runtime=%d\n", driver, runtime);
    CHECK_EQ(12060, runtime);
    REQUIRE_RT(rt.GetDeviceCount(&count));
    CHECK_EQ(1, count);
    CHECK_RT(rt.GetDevice(&dev));
    CHECK_EQ(0, dev);
    CHECK_RT(rt.SetDevice(0));
    CHECK_EQ(cudaErrorInvalidDevice, rt.SetDevice(count));
    /* The failure is the runtime's last error until read, which clears it. */
    CHECK_EQ(cudaErrorInvalidDevice, rt.GetLastError());
    CHECK_RT(rt.GetLastError());

    static struct cudaDeviceProp12 prop;
    memset(&prop, 0xcd, sizeof prop);
    REQUIRE_RT(rt.GetDeviceProperties(&prop, 0));
    static struct rt_props ps;
    RT_PROPS_COLLECT(&ps, prop);
    rt_props_add_attributes(&ps, device_attribute);
    rt_props_print(&ps);
    rt_props_expect(&ps, argc, argv);
    rt_props_cross_check(&ps, device_attribute);
    /* The 12.x-only fields read through the same layout. */
    int attr = -1;
    CHECK_RT(rt.DeviceGetAttribute(&attr, 13, 0));
    CHECK_EQ(attr, prop.clockRate);
    CHECK_RT(rt.DeviceGetAttribute(&attr, 36, 0));
    CHECK_EQ(attr, prop.memoryClockRate);

    size_t free = 0, total = 0;
    CHECK_RT(rt.MemGetInfo(&free, &total));
    CHECK_EQ(prop.totalGlobalMem, total);
    char bus[32] = {0}, want[32];
    CHECK_RT(rt.DeviceGetPCIBusId(bus, sizeof bus, 0));
    snprintf(want, sizeof want, "%04x:%02x:%02x.0", prop.pciDomainID, prop.pciBusID, prop.pciDeviceID);
    CHECK_STR(want, bus);
    printf("prop pciBusIdString=%s\n", bus);
    return 0;
}

static int memory_checks(void)
{
    const size_t n = (1 << 20) + 5;
    unsigned char *h = malloc(n), *back = malloc(n), *expect = malloc(n), *d1 = NULL, *d2 = NULL;
    for (size_t i = 0; i < n; i++) {
        h[i] = (unsigned char)((i * 2654435761u) >> 11);
    }
    REQUIRE_RT(rt.Malloc((void **)&d1, n));
    REQUIRE_RT(rt.Malloc((void **)&d2, n));
    CHECK_RT(rt.Memcpy(d1, h, n, cudaMemcpyHostToDevice));
    CHECK_RT(rt.Memcpy(back, d1, n, cudaMemcpyDeviceToHost));
    CHECK_EQ(0, differences("H2D/D2H", h, back, n));

    CHECK_RT(rt.Memset(d2, 0x5c, n));
    CHECK_RT(rt.Memcpy(d2 + 9, d1 + 3, 4096, cudaMemcpyDeviceToDevice));
    CHECK_RT(rt.Memcpy(back, d2, n, cudaMemcpyDefault));
    memset(expect, 0x5c, n);
    memcpy(expect + 9, h + 3, 4096);
    CHECK_EQ(0, differences("memset + D2D + Default", expect, back, n));

    cudaStream_t s = NULL;
    unsigned char *pinned = NULL;
    REQUIRE_RT(rt.StreamCreateWithFlags(&s, cudaStreamNonBlocking));
    REQUIRE_RT(rt.MallocHost((void **)&pinned, n));
    CHECK_RT(rt.MemsetAsync(d1 + 100, 0xe1, 50, s));
    CHECK_RT(rt.MemcpyAsync(pinned, d1, n, cudaMemcpyDeviceToHost, s));
    CHECK_RT(rt.StreamSynchronize(s));
    memcpy(expect, h, n);
    memset(expect + 100, 0xe1, 50);
    CHECK_EQ(0, differences("async memset + copy", expect, pinned, n));
    CHECK_RT(rt.MemcpyAsync(d2, pinned, n, cudaMemcpyHostToDevice, cudaStreamPerThread));
    CHECK_RT(rt.StreamSynchronize(cudaStreamPerThread));
    CHECK_RT(rt.Memcpy(back, d2, n, cudaMemcpyDeviceToHost));
    CHECK_EQ(0, differences("per-thread stream copy", expect, back, n));

    CHECK_RT(rt.FreeHost(pinned));
    CHECK_RT(rt.StreamDestroy(s));
    CHECK_RT(rt.Free(d1));
    CHECK_RT(rt.Free(d2));
    free(h);
    free(back);
    free(expect);
    return 0;
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 2654435761u + seed) >> 13);
}

/* Pitched arrays and 2D copies, as rt_memcpy does through cudart 13: rows padded to the pitch,
 * the padding untouched by 2D copies and memsets. */
static int pitch_checks(void)
{
    const size_t width = 1000, height = 37, hpitch = width + 24;
    unsigned char *dp = NULL, *dq = NULL;
    size_t pitch = 0, pitch2 = 0;
    REQUIRE_RT(rt.MallocPitch((void **)&dp, &pitch, width, height));
    REQUIRE_RT(rt.MallocPitch((void **)&dq, &pitch2, width, height));
    /* Rows are padded to the driver's pitch alignment, 512 bytes. */
    CHECK_EQ(1024, pitch);
    CHECK_EQ(pitch, pitch2);
    if (pitch != 1024 || pitch2 != 1024) {
        return 1;
    }
    unsigned char *h = malloc(hpitch * height), *packed = malloc(width * height), *full = malloc(pitch * height),
                  *expect = malloc(width * height);
    for (size_t i = 0; i < hpitch * height; i++) {
        h[i] = pattern(i, 3);
    }
    for (size_t y = 0; y < height; y++) {
        memcpy(expect + y * width, h + y * hpitch, width);
    }
    CHECK_RT(rt.Memset(dp, 0xee, pitch * height));
    CHECK_RT(rt.Memcpy2D(dp, pitch, h, hpitch, width, height, cudaMemcpyHostToDevice));
    CHECK_RT(rt.Memcpy2D(packed, width, dp, pitch, width, height, cudaMemcpyDeviceToHost));
    CHECK_EQ(0, differences("2D H2D/D2H", expect, packed, width * height));
    CHECK_RT(rt.Memcpy(full, dp, pitch * height, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (size_t y = 0; y < height; y++) {
        for (size_t x = width; x < pitch; x++) {
            wrong += full[y * pitch + x] != 0xee;
        }
    }
    CHECK_EQ(0, wrong);

    /* Device to device between pitched arrays, then a 2D memset of a rectangle inside. */
    CHECK_RT(rt.Memset(dq, 0x01, pitch2 * height));
    CHECK_RT(rt.Memcpy2D(dq, pitch2, dp, pitch, width, height, cudaMemcpyDeviceToDevice));
    CHECK_RT(rt.Memset2D(dq + 3 * pitch2 + 10, pitch2, 0x42, 20, 5));
    CHECK_RT(rt.Memcpy2D(packed, width, dq, pitch2, width, height, cudaMemcpyDeviceToHost));
    for (size_t y = 3; y < 8; y++) {
        memset(expect + y * width + 10, 0x42, 20);
    }
    CHECK_EQ(0, differences("2D D2D + memset2D", expect, packed, width * height));
    CHECK_RT(rt.Memcpy(full, dq, pitch2 * height, cudaMemcpyDeviceToHost));
    wrong = 0;
    for (size_t y = 0; y < height; y++) {
        for (size_t x = width; x < pitch2; x++) {
            wrong += full[y * pitch2 + x] != 0x01;
        }
    }
    CHECK_EQ(0, wrong);

    CHECK_RT(rt.Free(dp));
    CHECK_RT(rt.Free(dq));
    free(h);
    free(packed);
    free(full);
    free(expect);
    return 0;
}

/* Registered host memory and what cudaPointerGetAttributes says of host and device pointers. */
static int host_memory_checks(void)
{
    const size_t n = 300007;
    unsigned char *reg = malloc(n), *d = NULL;
    REQUIRE_RT(rt.Malloc((void **)&d, n));
    struct cudaPointerAttributes attr;
    /* Memory the runtime knows nothing of is "unregistered", which is not an error. */
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(rt.PointerGetAttributes(&attr, reg));
    CHECK_EQ(cudaMemoryTypeUnregistered, attr.type);

    for (size_t i = 0; i < n; i++) {
        reg[i] = pattern(i, 4);
    }
    REQUIRE_RT(rt.HostRegister(reg, n, cudaHostRegisterDefault));
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(rt.PointerGetAttributes(&attr, reg + 5));
    CHECK_EQ(cudaMemoryTypeHost, attr.type);
    CHECK(attr.hostPointer == reg + 5);

    cudaStream_t s = NULL;
    REQUIRE_RT(rt.StreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK_RT(rt.MemcpyAsync(d, reg, n, cudaMemcpyHostToDevice, s));
    CHECK_RT(rt.StreamSynchronize(s));
    memset(reg, 0, n);
    CHECK_RT(rt.MemcpyAsync(reg, d, n, cudaMemcpyDeviceToHost, s));
    CHECK_RT(rt.StreamSynchronize(s));
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        wrong += reg[i] != pattern(i, 4);
    }
    CHECK_EQ(0, wrong);
    CHECK_RT(rt.HostUnregister(reg));
    CHECK_EQ(cudaErrorHostMemoryNotRegistered, rt.HostUnregister(reg));
    CHECK_EQ(cudaErrorHostMemoryNotRegistered, rt.GetLastError());
    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(rt.PointerGetAttributes(&attr, reg));
    CHECK_EQ(cudaMemoryTypeUnregistered, attr.type);

    memset(&attr, 0xff, sizeof attr);
    CHECK_RT(rt.PointerGetAttributes(&attr, d + 17));
    CHECK_EQ(cudaMemoryTypeDevice, attr.type);
    CHECK_EQ(0, attr.device);
    CHECK(attr.devicePointer == d + 17);
    CHECK(attr.hostPointer == NULL);

    CHECK_RT(rt.StreamDestroy(s));
    CHECK_RT(rt.Free(d));
    free(reg);
    return 0;
}

/*
 * rt_struct_apply(int first, RtStruct p, short bias): a 50-byte parameter block (first at 0, the
 * struct at 8, bias at 48) that cudart 12 packs from the image's declaration alone. Garbage in the
 * struct's padding must not matter; outputs past count keep their -0.5.
 */
static int struct_checks(void)
{
    enum { N = 3000, COUNT = 2500 };
    static float in[N];
    static double out[N];
    for (int i = 0; i < N; i++) {
        in[i] = 0.1f * (float)(i - 1234);
        out[i] = -0.5;
    }
    float *din = NULL;
    double *dout = NULL;
    REQUIRE_RT(rt.Malloc((void **)&din, sizeof in));
    REQUIRE_RT(rt.Malloc((void **)&dout, sizeof out));
    CHECK_RT(rt.Memcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    CHECK_RT(rt.Memcpy(dout, out, sizeof out, cudaMemcpyHostToDevice));

    struct RtStruct p;
    memset(&p, 0xa5, sizeof p);
    p.tag = -7;
    p.offset = 1.0e10 + 0.25;
    p.count = COUNT;
    p.scale = 3.5f;
    p.in = din;
    p.out = dout;
    int first = 123456789;
    short bias = -321;
    void *args[] = {&first, &p, &bias};
    rt_dim3 grid = {(N + 255) / 256, 1, 1}, block = {256, 1, 1};
    CHECK_RT(rt.LaunchKernel(&rt_struct_apply_host, grid, block, args, 0, NULL));
    CHECK_RT(rt.GetLastError());
    CHECK_RT(rt.DeviceSynchronize());
    CHECK_RT(rt.Memcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        double want = i < COUNT ? (double)(in[i] * p.scale) + p.offset + p.tag + bias + first : -0.5;
        if (out[i] != want && wrong++ < 5) {
            fprintf(stderr, "FAIL struct out[%d] = %.17g, expected %.17g\n", i, out[i], want);
        }
    }
    CHECK_EQ(0, wrong);
    CHECK_RT(rt.Free(din));
    CHECK_RT(rt.Free(dout));
    return 0;
}

/* rt12_affine on two streams ordered by an event; y = a*x + b on small integers, exact. */
static int kernel_checks(void)
{
    void **module = rt.RegisterFatBinary(&wrapper);
    CHECK(module != NULL);
    rt.RegisterFunction(module, &rt12_affine_host, rt12_affine_name, rt12_affine_name, -1, NULL, NULL, NULL, NULL,
                        NULL);
    rt.RegisterFunction(module, &rt_struct_apply_host, rt_struct_apply_name, rt_struct_apply_name, -1, NULL, NULL, NULL,
                        NULL, NULL);
    rt.RegisterFatBinaryEnd(module);

    enum { N = 4099 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i % 1000 - 500);
    }
    float *dx = NULL, *dy = NULL;
    REQUIRE_RT(rt.Malloc((void **)&dx, N * sizeof(float)));
    REQUIRE_RT(rt.Malloc((void **)&dy, N * sizeof(float)));
    CHECK_RT(rt.Memcpy(dx, x, sizeof x, cudaMemcpyHostToDevice));
    CHECK_RT(rt.Memset(dy, 0, sizeof y));

    cudaStream_t s1 = NULL, s2 = NULL;
    cudaEvent_t start = NULL, mid = NULL, timed_mid = NULL, end = NULL, never = NULL;
    REQUIRE_RT(rt.StreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    REQUIRE_RT(rt.StreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    REQUIRE_RT(rt.EventCreateWithFlags(&start, 0));
    REQUIRE_RT(rt.EventCreateWithFlags(&mid, cudaEventDisableTiming));
    REQUIRE_RT(rt.EventCreateWithFlags(&timed_mid, 0));
    REQUIRE_RT(rt.EventCreateWithFlags(&end, 0));
    REQUIRE_RT(rt.EventCreateWithFlags(&never, 0));

    /* s1: y = 3x + 1; s2, after s1: y = -2y + 7 (in place), so y = -6x + 5. */
    float a1 = 3.0f, b1 = 1.0f, a2 = -2.0f, b2 = 7.0f;
    int n = N;
    void *args1[] = {&dy, &dx, &a1, &b1, &n};
    void *args2[] = {&dy, &dy, &a2, &b2, &n};
    rt_dim3 grid = {(N + 127) / 128, 1, 1}, block = {128, 1, 1};
    CHECK_RT(rt.EventRecord(start, s1));
    CHECK_RT(rt.LaunchKernel(&rt12_affine_host, grid, block, args1, 0, s1));
    CHECK_RT(rt.EventRecord(mid, s1));
    CHECK_RT(rt.EventRecord(timed_mid, s1));
    CHECK_RT(rt.StreamWaitEvent(s2, mid, 0));
    CHECK_RT(rt.LaunchKernel(&rt12_affine_host, grid, block, args2, 0, s2));
    CHECK_RT(rt.EventRecord(end, s2));
    CHECK_RT(rt.GetLastError());
    CHECK_RT(rt.EventSynchronize(end));
    CHECK_RT(rt.EventQuery(end));
    CHECK_RT(rt.StreamQuery(s1));
    CHECK_RT(rt.StreamQuery(s2));
    /* Elapsed times between recorded timing events, in recording order. */
    float ms = -1.0f, ms_mid = -1.0f, ms_zero = -1.0f;
    CHECK_RT(rt.EventElapsedTime(&ms, start, end));
    CHECK_RT(rt.EventElapsedTime(&ms_mid, start, timed_mid));
    CHECK_RT(rt.EventElapsedTime(&ms_zero, start, start));
    CHECK(ms_mid >= 0.0f && ms_mid <= ms);
    CHECK(ms_zero == 0.0f);
    /* Timing needs two timing events that have both been recorded. */
    CHECK_EQ(cudaErrorInvalidResourceHandle, rt.EventElapsedTime(&ms, start, mid));
    CHECK_EQ(cudaErrorInvalidResourceHandle, rt.EventElapsedTime(&ms, start, never));
    CHECK_EQ(cudaErrorInvalidResourceHandle, rt.GetLastError());
    CHECK_RT(rt.DeviceSynchronize());
    CHECK_RT(rt.Memcpy(y, dy, sizeof y, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        float want = -6.0f * x[i] + 5.0f;
        if (y[i] != want && wrong++ < 5) {
            fprintf(stderr, "FAIL y[%d] = %g, expected %g\n", i, y[i], want);
        }
    }
    CHECK_EQ(0, wrong);

    CHECK_RT(rt.EventDestroy(start));
    CHECK_RT(rt.EventDestroy(mid));
    CHECK_RT(rt.EventDestroy(timed_mid));
    CHECK_RT(rt.EventDestroy(end));
    CHECK_RT(rt.EventDestroy(never));
    CHECK_RT(rt.StreamDestroy(s1));
    CHECK_RT(rt.StreamDestroy(s2));
    CHECK_RT(rt.Free(dx));
    CHECK_RT(rt.Free(dy));
    struct_checks();
    rt.UnregisterFatBinary(module);
    return 0;
}

int main(int argc, char **argv)
{
    /* Line by line, so what was printed survives a crash inside the libraries. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = getenv("VGPU_CUDA12_DIR");
    int first = 1;
    if (argc > 1 && strchr(argv[1], '=') == NULL) {
        dir = argv[1];
        first = 2;
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: %s DIR-WITH-libcudart.so.12 [key=value ...] (or set VGPU_CUDA12_DIR)\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/libcudart.so.12", dir);
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "%s: %s\n", NAME, dlerror());
        return 2;
    }
    bind_runtime();

    /* A part gives up (returns 1) only when a failure leaves nothing sensible to check after it. */
    if (device_checks(argc - first, argv + first) == 0 && memory_checks() == 0) {
        pitch_checks();
        host_memory_checks();
        kernel_checks();
    }
    return check_done(NAME);
}
