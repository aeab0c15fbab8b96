// What cudart 13 reports about the device: cudaGetDeviceProperties against the values given as
// key=value arguments (the mock's configuration keys, e.g. "name=vgpu Test GPU" sm.count=77),
// each field against cudaDeviceGetAttribute, and the device-level calls around them. It prints
// every field as "prop <field>=<value>" for comparison with the cudart 12 harness. The kernel
// rt_launch_dims (Java: io.vgpu.samples.RtLaunchDims) reports the launch configuration it saw.
#include "rt_check.h"
#include "rt_props.h"

static const char *NAME = "rt_device_props";

__global__ void rt_launch_dims(unsigned int *out)
{
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0 && blockIdx.x == 0 && blockIdx.y == 0 &&
        blockIdx.z == 0) {
        out[0] = gridDim.x;
        out[1] = gridDim.y;
        out[2] = gridDim.z;
        out[3] = blockDim.x;
        out[4] = blockDim.y;
        out[5] = blockDim.z;
    }
    atomicAdd(&out[6], 1u);
}

static int device_attribute(int attr, int *value)
{
    return (int)cudaDeviceGetAttribute(value, (cudaDeviceAttr)attr, 0);
}

int main(int argc, char **argv)
{
    int driver = 0, runtime = 0, count = -1, dev = -1;
    CHECK_RT(cudaDriverGetVersion(&driver));
    CHECK_RT(cudaRuntimeGetVersion(&runtime));
    printf("version driver=%d runtime=%d\n", driver, runtime);
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    CHECK_RT(cudaGetDevice(&dev));
    CHECK_EQ(0, dev);
    CHECK_RT(cudaSetDevice(0));
    CHECK_EQ(cudaErrorInvalidDevice, cudaSetDevice(count));
    // The failure is the runtime's last error until read, which clears it.
    CHECK_EQ(cudaErrorInvalidDevice, cudaGetLastError());
    CHECK_RT(cudaGetLastError());

    cudaDeviceProp prop;
    memset(&prop, 0xcd, sizeof prop);
    REQUIRE_RT(NAME, cudaGetDeviceProperties(&prop, 0));
    static struct rt_props ps;
    RT_PROPS_COLLECT(&ps, prop);
    rt_props_add_attributes(&ps, device_attribute);
    rt_props_print(&ps);
    rt_props_expect(&ps, argc - 1, argv + 1);
    rt_props_cross_check(&ps, device_attribute);

    size_t free = 0, total = 0;
    CHECK_RT(cudaMemGetInfo(&free, &total));
    CHECK_EQ(prop.totalGlobalMem, total);
    CHECK(free <= total);

    // The bus id string and the lookup by it agree with the properties.
    char bus[32] = {0}, want[32];
    CHECK_RT(cudaDeviceGetPCIBusId(bus, sizeof bus, 0));
    snprintf(want, sizeof want, "%04x:%02x:%02x.0", prop.pciDomainID, prop.pciBusID, prop.pciDeviceID);
    CHECK_STR(want, bus);
    printf("prop pciBusIdString=%s\n", bus);
    int byBus = -1;
    CHECK_RT(cudaDeviceGetByPCIBusId(&byBus, bus));
    CHECK_EQ(0, byBus);

    // The launch configuration reaches the kernel exactly.
    unsigned int *d = nullptr, out[7];
    REQUIRE_RT(NAME, cudaMalloc(&d, sizeof out));
    CHECK_RT(cudaMemset(d, 0, sizeof out));
    dim3 grid(3, 2, 5), block(8, 4, 2);
    rt_launch_dims<<<grid, block, 256>>>(d);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    CHECK_RT(cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost));
    CHECK_EQ(3, out[0]);
    CHECK_EQ(2, out[1]);
    CHECK_EQ(5, out[2]);
    CHECK_EQ(8, out[3]);
    CHECK_EQ(4, out[4]);
    CHECK_EQ(2, out[5]);
    CHECK_EQ(3 * 2 * 5 * 8 * 4 * 2, out[6]);
    CHECK_RT(cudaFree(d));
    return check_done(NAME);
}
