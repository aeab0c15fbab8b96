package io.vgpu.backend.mock;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.ModuleImage;
import java.lang.annotation.Annotation;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.Before;
import org.junit.Test;

public class MockBackendTest {
    private static final long OWNER = 7;
    private static final long BASE = 0x2000_0000_0000L;
    private MockBackend mock;
    private long ctx;

    /** The defaults of the metatype, as DS would hand them over without a configuration. */
    static MockBackend.Config defaults(java.util.Map<String, Object> overrides) {
        return (MockBackend.Config) java.lang.reflect.Proxy.newProxyInstance(MockBackend.Config.class.getClassLoader(),
                new Class<?>[] {MockBackend.Config.class}, (proxy, method, args) -> {
                    if (method.getName().equals("annotationType")) {
                        return MockBackend.Config.class;
                    }
                    Object v = overrides.get(method.getName());
                    return v != null ? v : method.getDefaultValue();
                });
    }

    @Before
    public void setUp() {
        mock = new MockBackend(defaults(java.util.Map.of()));
        long[] out = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER, out));
        ctx = out[0];
    }

    @Test
    public void describesAnH100() {
        DeviceInfo d = mock.devices()[0];
        assertEquals("NVIDIA H100 80GB HBM3", d.name);
        assertEquals(80L << 30, d.totalMemory);
        assertEquals(9, d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR));
        assertEquals(0, d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR));
        assertEquals(132, d.attribute(CuDeviceAttribute.MULTIPROCESSOR_COUNT));
        assertEquals(0, d.attribute(CuDeviceAttribute.INTEGRATED));
        assertEquals(1, d.attribute(CuDeviceAttribute.VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED));
        assertEquals(0x233010de, d.attribute(CuDeviceAttribute.GPU_PCI_DEVICE_ID));
        assertTrue(d.uuidString().matches("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
        assertTrue(d.pciBusId().matches("0000:[0-9a-f]{2}:00\\.0"));
        // Stable across instances: the UUID is derived from backend.id, not random.
        assertArrayEquals(d.uuid, new MockBackend(defaults(java.util.Map.of())).devices()[0].uuid);
    }

    /** What deviceQuery prints for an H100 SXM5 80GB, for attributes cudaGetDeviceProperties reads. */
    @Test
    public void attributesAreThoseOfARealH100() {
        int[][] expected = {
            {CuDeviceAttribute.MAX_THREADS_PER_BLOCK, 1024}, {CuDeviceAttribute.MAX_BLOCK_DIM_Z, 64},
            {CuDeviceAttribute.MAX_GRID_DIM_X, Integer.MAX_VALUE}, {CuDeviceAttribute.MAX_GRID_DIM_Y, 65535},
            {8, 49152},        // shared memory per block
            {9, 65536},        // total constant memory
            {10, 32},          // warp size
            {12, 65536},       // registers per block
            {13, 1980000},     // SM clock, kHz
            {36, 2619000},     // memory clock, kHz
            {37, 5120},        // memory bus width, bits
            {38, 52428800},    // L2 cache, 50 MiB
            {39, 2048},        // threads per SM
            {41, 1},           // unified addressing
            {81, 233472},      // shared memory per SM, 228 KiB
            {82, 65536},       // registers per SM
            {97, 232448},      // opt-in shared memory per block, 227 KiB
            {106, 32},         // blocks per SM
        };
        DeviceInfo d = mock.devices()[0];
        for (int[] e : expected) {
            assertEquals("attribute " + e[0], e[1], d.attribute(e[0]));
        }
        // Every attribute id cudaGetDeviceProperties asks for is inside the table.
        assertTrue(d.attributes.length > 143);
        // What vgpu does not provide is reported absent, so applications fall back.
        for (int absent : H100Attributes.ABSENT) {
            assertEquals("attribute " + absent, 0, d.attribute(absent));
        }
        assertEquals(0, d.attribute(CuDeviceAttribute.MEMORY_POOLS_SUPPORTED));
        assertEquals(0, d.attribute(CuDeviceAttribute.MANAGED_MEMORY));
    }

    @Test
    public void anInvalidConfigurationLeavesABackendWithoutDevicesThatSaysWhy() {
        MockBackend negative = new MockBackend(defaults(java.util.Map.of("backend_id", "bad", "memory_mib", -5L)));
        assertEquals(0, negative.devices().length);
        assertFalse(negative.info().available);
        assertEquals("invalid configuration: memory.mib must be positive, not -5", negative.info().reason);
        MockBackend cc = new MockBackend(defaults(java.util.Map.of("cc_major", 99)));
        assertTrue(cc.info().reason, cc.info().reason.contains("compute capability 99.0"));
        assertEquals(0, new MockBackend(defaults(java.util.Map.of("sm_count", 0))).devices().length);
        // What DS throws when "memory.mib = abc" cannot be converted, and a malformed uuid.
        MockBackend typo = new MockBackend((MockBackend.Config) java.lang.reflect.Proxy.newProxyInstance(
                MockBackend.Config.class.getClassLoader(), new Class<?>[] {MockBackend.Config.class}, (proxy, method, args) -> {
                    if (method.getName().equals("memory_mib")) {
                        throw new NumberFormatException("For input string: \"abc\"");
                    }
                    return method.getDefaultValue();
                }));
        assertEquals("invalid configuration: memory.mib cannot be read (For input string: \"abc\")", typo.info().reason);
        MockBackend uuid = new MockBackend(defaults(java.util.Map.of("uuid", "GPU-1234")));
        assertTrue(uuid.info().reason, uuid.info().reason.contains("uuid must be 32 hex digits"));
        assertEquals(CuResult.INVALID_DEVICE, uuid.memGetInfo(0, new long[2]));
    }

    @Test
    public void instancesAreConfigurable() {
        MockBackend a100 = new MockBackend(defaults(java.util.Map.of("backend_id", "a100", "name", "NVIDIA A100-SXM4-40GB",
                "memory_mib", 40960L, "cc_major", 8, "sm_count", 108, "device_count", 2,
                "uuid", "GPU-12345678-1234-1234-1234-123456789abc")));
        DeviceInfo[] d = a100.devices();
        assertEquals(2, d.length);
        assertEquals("NVIDIA A100-SXM4-40GB", d[1].name);
        assertEquals(40L << 30, d[1].totalMemory);
        assertEquals(8, d[0].attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR));
        assertEquals(108, d[0].attribute(CuDeviceAttribute.MULTIPROCESSOR_COUNT));
        assertEquals("GPU-12345678-1234-1234-1234-123456789abc", d[0].uuidString());
        assertEquals("GPU-12345678-1234-1234-1234-123456789abd", d[1].uuidString());
        assertTrue(!d[0].pciBusId().equals(d[1].pciBusId()));
        assertEquals("a100", a100.info().id);
    }

    @Test
    public void eightyGibAllocateSparsely() {
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 80L << 30));
        long[] info = new long[2];
        mock.memGetInfo(0, info);
        assertEquals(0, info[0]);
        // Write a little at both ends: only those pages take host memory.
        ByteBuffer b = ByteBuffer.wrap(new byte[] {1, 2, 3, 4});
        assertEquals(CuResult.SUCCESS, mock.memcpyHtoD(ctx, BASE + (80L << 30) - 4, b, 0));
        assertEquals(CuResult.SUCCESS, mock.memcpyHtoD(ctx, BASE, ByteBuffer.wrap(new byte[] {9}), 0));
        assertEquals(2L * MockMemory.PAGE, mock.materialisedBytes(0));
        ByteBuffer out = ByteBuffer.allocate(4);
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoH(ctx, out, BASE + (80L << 30) - 4, 0));
        assertArrayEquals(new byte[] {1, 2, 3, 4}, out.array());
        assertEquals(CuResult.OUT_OF_MEMORY, mock.memAlloc(ctx, BASE + (81L << 30), 1));
        assertEquals(CuResult.SUCCESS, mock.memFree(ctx, BASE));
        mock.memGetInfo(0, info);
        assertEquals(80L << 30, info[0]);
        assertEquals(0, mock.materialisedBytes(0));
    }

    @Test
    public void copiesAreByteExactAcrossPages() {
        int size = 3 * MockMemory.PAGE + 12345;
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, size));
        byte[] data = new byte[size - 100];
        new Random(42).nextBytes(data);
        assertEquals(CuResult.SUCCESS, mock.memcpyHtoD(ctx, BASE + 77, ByteBuffer.wrap(data), 0));
        ByteBuffer back = ByteBuffer.allocate(data.length);
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoH(ctx, back, BASE + 77, 0));
        assertArrayEquals(data, back.array());
        // Unwritten bytes of an allocation read as zero.
        ByteBuffer head = ByteBuffer.allocate(77);
        mock.memcpyDtoH(ctx, head, BASE, 0);
        assertArrayEquals(new byte[77], head.array());
    }

    @Test
    public void outOfRangeIsInvalidValue() {
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 4096));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyHtoD(ctx, BASE + 4090, ByteBuffer.allocate(7), 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoH(ctx, ByteBuffer.allocate(1), BASE - 1, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE + 4000, 0, 4, 25, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoD(ctx, BASE, BASE + 100, 4000, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memFree(ctx, BASE + 8));
    }

    @Test
    public void memsetsStoreTheirElementSize() {
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 64));
        assertEquals(CuResult.SUCCESS, mock.memset(ctx, BASE, 0xAB, 1, 3, 0));
        assertEquals(CuResult.SUCCESS, mock.memset(ctx, BASE + 4, 0xBEEF, 2, 2, 0));
        assertEquals(CuResult.SUCCESS, mock.memset(ctx, BASE + 8, 0xDEADBEEF, 4, 2, 0));
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        mock.memcpyDtoH(ctx, b, BASE, 0);
        assertArrayEquals(new byte[] {(byte) 0xAB, (byte) 0xAB, (byte) 0xAB, 0, (byte) 0xEF, (byte) 0xBE,
            (byte) 0xEF, (byte) 0xBE}, java.util.Arrays.copyOf(b.array(), 8));
        assertEquals(0xDEADBEEF, b.getInt(8));
        assertEquals(0xDEADBEEF, b.getInt(12));
        // Counts whose byte length overflows are refused, not wrapped into a small write.
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0x11, 4, (1L << 62) + 1, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0x11, 2, -1L, 0));
        ByteBuffer again = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        mock.memcpyDtoH(ctx, again, BASE, 0);
        assertArrayEquals(b.array(), again.array());
    }

    @Test
    public void overlappingDeviceCopyIsLikeMemmove() {
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 16));
        mock.memcpyHtoD(ctx, BASE, ByteBuffer.wrap(new byte[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 0);
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoD(ctx, BASE + 2, BASE, 8, 0));
        ByteBuffer b = ByteBuffer.allocate(10);
        mock.memcpyDtoH(ctx, b, BASE, 0);
        assertArrayEquals(new byte[] {0, 1, 0, 1, 2, 3, 4, 5, 6, 7}, b.array());
    }

    @Test
    public void anotherOwnersMemoryIsNotReachable() {
        long[] other = new long[1];
        mock.ctxCreate(0, 0, OWNER + 1, other);
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 4096));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoH(other[0], ByteBuffer.allocate(16), BASE, 0));
    }

    @Test
    public void vmmMappingsFormOneContiguousRange() {
        long chunk = 2L << 20;
        long[] h1 = new long[1];
        long[] h2 = new long[1];
        assertEquals(CuResult.SUCCESS, mock.memCreate(ctx, chunk, h1));
        assertEquals(CuResult.SUCCESS, mock.memCreate(ctx, chunk, h2));
        assertEquals(CuResult.SUCCESS, mock.memMap(ctx, BASE, chunk, 0, h1[0]));
        assertEquals(CuResult.SUCCESS, mock.memMap(ctx, BASE + chunk, chunk, 0, h2[0]));
        assertEquals(CuResult.ALREADY_MAPPED, mock.memMap(ctx, BASE, chunk, 0, h2[0]));
        byte[] data = new byte[4096];
        new Random(1).nextBytes(data);
        // A copy straddling both chunks.
        assertEquals(CuResult.SUCCESS, mock.memcpyHtoD(ctx, BASE + chunk - 2048, ByteBuffer.wrap(data), 0));
        ByteBuffer back = ByteBuffer.allocate(4096);
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoH(ctx, back, BASE + chunk - 2048, 0));
        assertArrayEquals(data, back.array());
        // Released memory lives on while mapped.
        assertEquals(CuResult.SUCCESS, mock.memRelease(h1[0]));
        long[] info = new long[2];
        mock.memGetInfo(0, info);
        assertEquals(2 * chunk, info[1] - info[0]);
        assertEquals(CuResult.SUCCESS, mock.memUnmap(ctx, BASE, chunk));
        mock.memGetInfo(0, info);
        assertEquals(chunk, info[1] - info[0]);
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoH(ctx, ByteBuffer.allocate(1), BASE, 0));
    }

    @Test
    public void hostKernelsRunAndLaunchesAreRecorded() {
        KernelInfo k = new KernelInfo();
        k.name = "scale";
        k.paramOffsets = new int[] {0, 8, 12};
        k.paramSizes = new int[] {8, 4, 4};
        k.paramBufferSize = 16;
        ModuleImage image = new ModuleImage();
        image.kernels.add(k);
        mock.registerKernel("scale", launch -> {
            long p = launch.paramPointer(0);
            float factor = launch.paramFloat(1);
            int n = launch.paramInt(2);
            for (int i = 0; i < n; i++) {
                launch.memory().putFloat(p + 4L * i, launch.memory().getFloat(p + 4L * i) * factor);
            }
        });
        long[] module = new long[1];
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, mock.moduleLoad(ctx, image, 0, module));
        assertEquals(CuResult.SUCCESS, mock.functionGet(module[0], "scale", fn));
        assertEquals(CuResult.NOT_FOUND, mock.functionGet(module[0], "nope", new long[1]));
        mock.memAlloc(ctx, BASE, 16);
        ByteBuffer v = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1).putFloat(2).putFloat(3).putFloat(4);
        mock.memcpyHtoD(ctx, BASE, v.flip(), 0);
        ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(BASE).putFloat(2.5f).putInt(4).flip();
        assertEquals(CuResult.SUCCESS, mock.launch(fn[0], new LaunchConfig(1, 1, 1, 4, 1, 1, 0), params, 0));
        ByteBuffer out = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        mock.memcpyDtoH(ctx, out, BASE, 0);
        assertEquals(2.5f, out.getFloat(0), 0);
        assertEquals(10f, out.getFloat(12), 0);
        // A kernel touching memory outside its owner's mappings fails like a GPU fault.
        ByteBuffer bad = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(BASE + 4096).putFloat(1).putInt(1).flip();
        assertEquals(CuResult.ILLEGAL_ADDRESS, mock.launch(fn[0], new LaunchConfig(), bad, 0));
        assertEquals(2, mock.launchCount());
        assertTrue(mock.launchLog(10).get(0).executed);
        assertEquals(16, mock.launchLog(10).get(0).paramBytes);

        // Without a host kernel, and with no PTX in its image, a launch cannot run: NOT_SUPPORTED,
        // recorded as not executed, memory as it was.
        mock.unregisterKernel("scale");
        ByteBuffer again = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(BASE).putFloat(100f).putInt(4).flip();
        assertEquals(CuResult.NOT_SUPPORTED, mock.launch(fn[0], new LaunchConfig(3, 2, 1, 64, 2, 1, 512), again, 0));
        ByteBuffer unchanged = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        mock.memcpyDtoH(ctx, unchanged, BASE, 0);
        assertArrayEquals(out.array(), unchanged.array());
        assertEquals(3, mock.launchCount());
        LaunchRecord noop = mock.launchLog(1).get(0);
        assertEquals("scale", noop.kernel);
        assertFalse(noop.executed);
        assertEquals(3, noop.sequence);
        assertEquals(CuResult.NOT_SUPPORTED, noop.result);
        assertEquals(16, noop.paramBytes);
        assertEquals(3, noop.config.gridX);
        assertEquals(2, noop.config.blockY);
        assertEquals(512, noop.config.sharedMemBytes);
    }

    private static final String SCALE_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n"
            + ".visible .entry scale(.param .u64 p, .param .f32 f, .param .u32 n)\n{\n"
            + "  .reg .pred %p;\n  .reg .b32 %r<4>;\n  .reg .f32 %f<3>;\n  .reg .b64 %rd<4>;\n"
            + "  ld.param.u64 %rd1, [p];\n  ld.param.f32 %f1, [f];\n  ld.param.u32 %r1, [n];\n"
            + "  mov.u32 %r2, %tid.x;\n  mov.u32 %r3, %ctaid.x;\n  mad.lo.s32 %r2, %r3, 64, %r2;\n"
            + "  setp.ge.u32 %p, %r2, %r1;\n  @%p bra DONE;\n"
            + "  mul.wide.u32 %rd2, %r2, 4;\n  add.s64 %rd3, %rd1, %rd2;\n"
            + "  ld.global.f32 %f2, [%rd3];\n  mul.rn.f32 %f2, %f2, %f1;\n  st.global.f32 [%rd3], %f2;\n"
            + "DONE:\n  ret;\n}\n";

    private long[] ptxModule(String name) {
        KernelInfo k = new KernelInfo();
        k.name = name;
        k.paramOffsets = new int[] {0, 8, 12};
        k.paramSizes = new int[] {8, 4, 4};
        k.paramBufferSize = 16;
        ModuleImage image = new ModuleImage();
        image.kernels.add(k);
        image.ptxSource = SCALE_PTX.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        long[] module = new long[1];
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, mock.moduleLoad(ctx, image, 0, module));
        assertEquals(CuResult.SUCCESS, mock.functionGet(module[0], name, fn));
        return fn;
    }

    @Test
    public void kernelsExecuteFromThePtxOfTheirImage() {
        long[] fn = ptxModule("scale");
        int n = 1000;
        mock.memAlloc(ctx, BASE, 4L * n);
        ByteBuffer v = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            v.putFloat(i + 0.5f);
        }
        mock.memcpyHtoD(ctx, BASE, v.flip(), 0);
        ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(BASE).putFloat(3f).putInt(n).flip();
        assertEquals(CuResult.SUCCESS, mock.launch(fn[0], new LaunchConfig((n + 63) / 64, 1, 1, 64, 1, 1, 0), params, 0));
        ByteBuffer out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        mock.memcpyDtoH(ctx, out, BASE, 0);
        for (int i = 0; i < n; i++) {
            assertEquals("element " + i, (i + 0.5f) * 3f, out.getFloat(4 * i), 0f);
        }
        LaunchRecord r = mock.launchLog(1).get(0);
        assertTrue(r.executed);
        assertEquals(CuResult.SUCCESS, r.result);
    }

    @Test
    public void aKernelTouchingMemoryOutsideItsOwnersAllocationsFaults() {
        long[] fn = ptxModule("scale");
        mock.memAlloc(ctx, BASE, 256);
        // Another client's allocation right behind ours is not ours to touch.
        long[] other = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER + 1, other));
        assertEquals(CuResult.SUCCESS, mock.memAlloc(other[0], BASE + 256, 256));
        ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(BASE).putFloat(2f).putInt(128).flip();
        assertEquals(CuResult.ILLEGAL_ADDRESS, mock.launch(fn[0], new LaunchConfig(2, 1, 1, 64, 1, 1, 0), params, 0));
        ByteBuffer theirs = ByteBuffer.allocate(256);
        mock.memcpyDtoH(other[0], theirs, BASE + 256, 0);
        assertArrayEquals(new byte[256], theirs.array());
    }

    @Test
    public void eventsMeasureElapsedTime() {
        long[] e1 = new long[1];
        long[] e2 = new long[1];
        long[] notimer = new long[1];
        mock.eventCreate(ctx, 0, e1);
        mock.eventCreate(ctx, 0, e2);
        mock.eventCreate(ctx, 2, notimer);
        float[] ms = new float[1];
        assertEquals(CuResult.INVALID_HANDLE, mock.eventElapsedTime(e1[0], e2[0], ms));
        mock.eventRecord(e1[0], 0);
        mock.eventRecord(e2[0], 0);
        mock.eventRecord(notimer[0], 0);
        assertEquals(CuResult.SUCCESS, mock.eventElapsedTime(e1[0], e2[0], ms));
        assertTrue(ms[0] >= 0);
        assertEquals(CuResult.INVALID_HANDLE, mock.eventElapsedTime(e1[0], notimer[0], ms));
        assertEquals(CuResult.SUCCESS, mock.eventDestroy(e1[0]));
        assertEquals(CuResult.INVALID_HANDLE, mock.eventQuery(e1[0]));
    }

    @Test
    public void destroyingAContextReleasesItsMemory() {
        mock.memAlloc(ctx, BASE, 1L << 30);
        long[] h = new long[1];
        mock.memCreate(ctx, 2L << 20, h);
        assertEquals(CuResult.SUCCESS, mock.ctxDestroy(ctx));
        long[] info = new long[2];
        mock.memGetInfo(0, info);
        assertEquals(info[1], info[0]);
        assertEquals(CuResult.INVALID_CONTEXT, mock.memAlloc(ctx, BASE, 16));
    }

    @SuppressWarnings("unused")
    private static Annotation unused;
}
