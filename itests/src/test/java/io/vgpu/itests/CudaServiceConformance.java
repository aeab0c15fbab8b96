package io.vgpu.itests;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.api.kernel.HostKernel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The behaviour every backend must show, written once against {@link CudaService}. A backend's
 * test subclasses this and says how to reach the backend and how to make a kernel runnable.
 */
public abstract class CudaServiceConformance {
    /** Each test works in its own stretch of the address window, so backends can be shared. */
    private static final AtomicLong NEXT_REGION = new AtomicLong(0x3000_0000_0000L);
    private static final AtomicLong NEXT_OWNER = new AtomicLong(1_000_000);

    protected CudaService cuda;
    protected long owner;
    protected long ctx;
    protected long base;

    protected abstract CudaService backend();

    /**
     * Makes {@code kernel} the implementation of the PTX entry {@code name} where the backend
     * simulates kernels; backends that run PTX themselves ignore it.
     */
    protected abstract void provideKernel(String name, HostKernel kernel);

    @Before
    public void openContext() {
        cuda = backend();
        owner = NEXT_OWNER.incrementAndGet();
        base = NEXT_REGION.getAndAdd(1L << 36);
        long[] out = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.ctxCreate(0, 0, owner, out));
        ctx = out[0];
    }

    @After
    public void closeContext() {
        cuda.ctxDestroy(ctx);
    }

    @Test
    public void describesItsDevices() {
        assertTrue(cuda.info().available);
        DeviceInfo[] devs = cuda.devices();
        assertTrue(devs.length > 0);
        for (DeviceInfo d : devs) {
            assertTrue(d.name != null && !d.name.isEmpty());
            assertEquals(16, d.uuid.length);
            assertTrue(d.attributes.length >= CuDeviceAttribute.MAX);
            assertTrue(d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) >= 7);
            assertEquals(32, d.attribute(CuDeviceAttribute.WARP_SIZE));
            long[] info = new long[2];
            assertEquals(CuResult.SUCCESS, cuda.memGetInfo(d.ordinal, info));
            assertEquals(d.totalMemory, info[1]);
            assertTrue(info[0] <= info[1]);
        }
        assertEquals(CuResult.INVALID_DEVICE, cuda.ctxCreate(devs.length, 0, owner, new long[1]));
    }

    @Test
    public void roundTripsBytesExactly() {
        int size = 1 << 20;
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, size));
        byte[] data = new byte[size];
        new Random(7).nextBytes(data);
        assertEquals(CuResult.SUCCESS, cuda.memcpyHtoD(ctx, base, ByteBuffer.wrap(data), 0));
        ByteBuffer back = ByteBuffer.allocateDirect(size);
        assertEquals(CuResult.SUCCESS, cuda.memcpyDtoH(ctx, back, base, 0));
        byte[] got = new byte[size];
        back.flip().get(got);
        assertArrayEquals(data, got);
    }

    @Test
    public void copiesDeviceToDevice() {
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 8192));
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base + 65536, 8192));
        byte[] data = "device to device".getBytes(StandardCharsets.US_ASCII);
        cuda.memcpyHtoD(ctx, base + 100, ByteBuffer.wrap(data), 0);
        assertEquals(CuResult.SUCCESS, cuda.memcpyDtoD(ctx, base + 65536 + 5, base + 100, data.length, 0));
        ByteBuffer back = ByteBuffer.allocate(data.length);
        cuda.memcpyDtoH(ctx, back, base + 65536 + 5, 0);
        assertArrayEquals(data, back.array());
    }

    @Test
    public void memsetsWriteEightSixteenAndThirtyTwoBitValues() {
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 4096));
        assertEquals(CuResult.SUCCESS, cuda.memset(ctx, base, 0x5A, 1, 4096, 0));
        assertEquals(CuResult.SUCCESS, cuda.memset(ctx, base + 1024, 0x1234, 2, 4, 0));
        assertEquals(CuResult.SUCCESS, cuda.memset(ctx, base + 2048, 0xCAFEF00D, 4, 2, 0));
        ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        cuda.memcpyDtoH(ctx, b, base, 0);
        assertEquals(0x5A, b.get(0));
        assertEquals(0x5A, b.get(1023));
        assertEquals(0x1234, b.getShort(1024));
        assertEquals(0x1234, b.getShort(1030));
        assertEquals(0x5A, b.get(1032));
        assertEquals(0xCAFEF00D, b.getInt(2048));
        assertEquals(0xCAFEF00D, b.getInt(2052));
        assertEquals(0x5A5A5A5A, b.getInt(2056));
    }

    @Test
    public void rejectsAccessOutsideAllocations() {
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 4096));
        assertEquals(CuResult.INVALID_VALUE, cuda.memcpyHtoD(ctx, base + 4095, ByteBuffer.allocate(2), 0));
        assertEquals(CuResult.INVALID_VALUE, cuda.memcpyDtoH(ctx, ByteBuffer.allocate(8), base + 8192, 0));
        assertEquals(CuResult.SUCCESS, cuda.memFree(ctx, base));
        assertEquals(CuResult.INVALID_VALUE, cuda.memcpyDtoH(ctx, ByteBuffer.allocate(8), base, 0));
    }

    @Test
    public void runsOutOfMemoryCleanly() {
        long[] info = new long[2];
        cuda.memGetInfo(0, info);
        assertEquals(CuResult.OUT_OF_MEMORY, cuda.memAlloc(ctx, base, info[0] + (1L << 30)));
        long[] after = new long[2];
        cuda.memGetInfo(0, after);
        assertEquals(info[0], after[0]);
    }

    @Test
    public void keepsOwnersApart() {
        long[] other = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.ctxCreate(0, 0, owner + 500_000, other));
        try {
            assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 4096));
            assertNotEquals(CuResult.SUCCESS, cuda.memcpyDtoH(other[0], ByteBuffer.allocate(16), base, 0));
        } finally {
            cuda.ctxDestroy(other[0]);
        }
    }

    @Test
    public void mapsPhysicalMemoryContiguously() {
        long chunk = 2L << 20;
        long[] a = new long[1];
        long[] b = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.memCreate(ctx, chunk, a));
        assertEquals(CuResult.SUCCESS, cuda.memCreate(ctx, chunk, b));
        assertEquals(CuResult.SUCCESS, cuda.memMap(ctx, base, chunk, 0, a[0]));
        assertEquals(CuResult.SUCCESS, cuda.memMap(ctx, base + chunk, chunk, 0, b[0]));
        byte[] data = new byte[8192];
        new Random(3).nextBytes(data);
        assertEquals(CuResult.SUCCESS, cuda.memcpyHtoD(ctx, base + chunk - 4096, ByteBuffer.wrap(data), 0));
        ByteBuffer back = ByteBuffer.allocate(data.length);
        assertEquals(CuResult.SUCCESS, cuda.memcpyDtoH(ctx, back, base + chunk - 4096, 0));
        assertArrayEquals(data, back.array());
        assertEquals(CuResult.SUCCESS, cuda.memUnmap(ctx, base, chunk));
        assertEquals(CuResult.SUCCESS, cuda.memUnmap(ctx, base + chunk, chunk));
        assertEquals(CuResult.SUCCESS, cuda.memRelease(a[0]));
        assertEquals(CuResult.SUCCESS, cuda.memRelease(b[0]));
    }

    @Test
    public void streamsAndEventsWork() {
        long[] s = new long[1];
        long[] e1 = new long[1];
        long[] e2 = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.streamCreate(ctx, 1, 0, s));
        assertEquals(CuResult.SUCCESS, cuda.eventCreate(ctx, 0, e1));
        assertEquals(CuResult.SUCCESS, cuda.eventCreate(ctx, 0, e2));
        assertEquals(CuResult.SUCCESS, cuda.eventRecord(e1[0], s[0]));
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 1 << 16));
        assertEquals(CuResult.SUCCESS, cuda.memset(ctx, base, 1, 1, 1 << 16, s[0]));
        assertEquals(CuResult.SUCCESS, cuda.eventRecord(e2[0], s[0]));
        assertEquals(CuResult.SUCCESS, cuda.streamWaitEvent(0, e2[0]));
        assertEquals(CuResult.SUCCESS, cuda.eventSynchronize(e2[0]));
        assertEquals(CuResult.SUCCESS, cuda.eventQuery(e2[0]));
        float[] ms = new float[1];
        assertEquals(CuResult.SUCCESS, cuda.eventElapsedTime(e1[0], e2[0], ms));
        assertTrue(ms[0] >= 0);
        assertEquals(CuResult.SUCCESS, cuda.streamSynchronize(s[0]));
        assertEquals(CuResult.SUCCESS, cuda.streamQuery(s[0]));
        assertEquals(CuResult.SUCCESS, cuda.streamDestroy(s[0]));
        assertEquals(CuResult.INVALID_HANDLE, cuda.streamSynchronize(s[0]));
        assertEquals(CuResult.SUCCESS, cuda.eventDestroy(e1[0]));
        assertEquals(CuResult.INVALID_HANDLE, cuda.eventQuery(e1[0]));
    }

    /** {@code fill(int *out, int value, int n)}: out[i] = value + i. */
    static final String FILL_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n"
            // The global the image's metadata declares, for backends whose driver loads the PTX itself.
            + ".visible .global .align 4 .u32 answer = 42;\n"
            + ".visible .entry vgpu_conformance_fill(.param .u64 out, .param .u32 value, .param .u32 n)\n{\n"
            + "  .reg .b32 %r<6>;\n  .reg .b64 %rd<5>;\n  .reg .pred %p;\n"
            + "  ld.param.u64 %rd1, [out];\n  ld.param.u32 %r1, [value];\n  ld.param.u32 %r2, [n];\n"
            + "  mov.u32 %r3, %ctaid.x;\n  mov.u32 %r4, %ntid.x;\n  mov.u32 %r5, %tid.x;\n"
            + "  mad.lo.s32 %r3, %r3, %r4, %r5;\n  setp.ge.s32 %p, %r3, %r2;\n  @%p ret;\n"
            + "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.s32 %rd3, %r3, 4;\n  add.s64 %rd4, %rd2, %rd3;\n"
            + "  add.s32 %r1, %r1, %r3;\n  st.global.u32 [%rd4], %r1;\n  ret;\n}\n";

    private static ModuleImage fillModule() {
        ModuleImage image = new ModuleImage();
        image.format = ModuleImage.Format.PTX;
        image.data = FILL_PTX.getBytes(StandardCharsets.US_ASCII);
        image.arch = 70;
        image.ptx = true;
        image.virtualArch = 70;
        // A PTX image is its own PTX (ModuleImage.ptxSource), for backends that execute it.
        image.ptxSource = image.data;
        image.ptxArch = 70;
        KernelInfo k = new KernelInfo();
        k.name = "vgpu_conformance_fill";
        k.paramOffsets = new int[] {0, 8, 12};
        k.paramSizes = new int[] {8, 4, 4};
        k.paramBufferSize = 16;
        image.kernels.add(k);
        GlobalInfo g = new GlobalInfo();
        g.name = "answer";
        g.size = 4;
        g.offset = 0;
        g.init = new byte[] {42, 0, 0, 0};
        image.globals.add(g);
        image.globalsSize = 256;
        return image;
    }

    @Test
    public void launchesKernelsWithPackedParameters() {
        provideKernel("vgpu_conformance_fill", launch -> {
            long out = launch.paramPointer(0);
            int value = launch.paramInt(1);
            int n = launch.paramInt(2);
            long threads = launch.config().threads();
            for (int i = 0; i < n && i < threads; i++) {
                launch.memory().putInt(out + 4L * i, value + i);
            }
        });
        long[] module = new long[1];
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.moduleLoad(ctx, fillModule(), base + (1L << 30), module));
        assertEquals(CuResult.SUCCESS, cuda.functionGet(module[0], "vgpu_conformance_fill", fn));
        assertEquals(CuResult.NOT_FOUND, cuda.functionGet(module[0], "missing", new long[1]));
        int n = 1000;
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(ctx, base, 4L * n));
        ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(base).putInt(100).putInt(n).flip();
        assertEquals(CuResult.SUCCESS, cuda.launch(fn[0], new LaunchConfig(8, 1, 1, 128, 1, 1, 0), params, 0));
        assertEquals(CuResult.SUCCESS, cuda.ctxSynchronize(ctx));
        ByteBuffer out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(CuResult.SUCCESS, cuda.memcpyDtoH(ctx, out, base, 0));
        for (int i = 0; i < n; i++) {
            assertEquals(100 + i, out.getInt(4 * i));
        }
        // The module's initialised global is in device memory where the core placed it.
        ByteBuffer g = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(CuResult.SUCCESS, cuda.memcpyDtoH(ctx, g, base + (1L << 30), 0));
        assertEquals(42, g.getInt(0));
        int[] attr = new int[1];
        assertEquals(CuResult.SUCCESS, cuda.functionGetAttribute(fn[0], 0, attr));
        assertTrue(attr[0] >= 128);
        // PTX_VERSION is the PTX's target; BINARY_VERSION the device's, for which the PTX is compiled.
        assertEquals(CuResult.SUCCESS, cuda.functionGetAttribute(fn[0], 5, attr));
        assertEquals(70, attr[0]);
        assertEquals(CuResult.SUCCESS, cuda.functionGetAttribute(fn[0], 6, attr));
        DeviceInfo d = cuda.devices()[0];
        assertEquals(d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) * 10
                + d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR), attr[0]);
        assertEquals(CuResult.SUCCESS, cuda.moduleUnload(module[0]));
        assertEquals(CuResult.INVALID_HANDLE, cuda.functionGet(module[0], "vgpu_conformance_fill", new long[1]));
    }

    @Test
    public void destroyingAContextFreesItsMemory() {
        long[] c2 = new long[1];
        assertEquals(CuResult.SUCCESS, cuda.ctxCreate(0, 0, owner, c2));
        // Measured with the context in place: on a real GPU a context holds device memory of its own.
        long[] before = new long[2];
        cuda.memGetInfo(0, before);
        assertEquals(CuResult.SUCCESS, cuda.memAlloc(c2[0], base, 256L << 20));
        long[] during = new long[2];
        cuda.memGetInfo(0, during);
        assertEquals(before[0] - (256L << 20), during[0]);
        assertEquals(CuResult.SUCCESS, cuda.ctxDestroy(c2[0]));
        long[] after = new long[2];
        cuda.memGetInfo(0, after);
        assertTrue(after[0] + " free after, " + before[0] + " before", after[0] >= before[0]);
        assertEquals(CuResult.INVALID_CONTEXT, cuda.ctxSynchronize(c2[0]));
    }
}
