package io.vgpu.samples;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.core.image.ImageParser;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.Before;
import org.junit.Test;

/**
 * The host kernels behind the CUDA runtime programs of shim.bridge/native/test/cuda, run on the
 * mock with known inputs. Each kernel is loaded from the sm_90 cubin nvcc makes of its program
 * (src/test/resources/cuda, regenerate.sh), so the name a kernel is registered under and the
 * parameter layout it reads are the ones the real launches carry.
 */
public class RuntimeKernelsTest {
    private static final long OWNER = 11;
    private static final long BASE = 0x2000_0000_0000L;
    private static final long SECOND = BASE + (1L << 30);

    private MockBackend mock;
    private long ctx;

    private static MockBackend.Config defaults() {
        return (MockBackend.Config) Proxy.newProxyInstance(MockBackend.Config.class.getClassLoader(),
                new Class<?>[] {MockBackend.Config.class},
                (proxy, method, args) -> method.getName().equals("annotationType") ? MockBackend.Config.class
                        : method.getDefaultValue());
    }

    @Before
    public void setUp() {
        mock = new MockBackend(defaults());
        long[] out = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER, out));
        ctx = out[0];
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, 1 << 20));
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, SECOND, 1 << 20));
    }

    private static ModuleImage image(String program) throws Exception {
        try (InputStream in = RuntimeKernelsTest.class.getResourceAsStream("/cuda/" + program + ".sm_90.cubin")) {
            if (in == null) {
                throw new IOException("missing fixture cuda/" + program + ".sm_90.cubin");
            }
            return ImageParser.parse(in.readAllBytes(), 90);
        }
    }

    /** Loads the program's image, checks the kernel's parameter layout and returns a function handle. */
    private long function(String program, String name, HostKernel kernel, int[] offsets, int[] sizes, int bufferSize)
            throws Exception {
        ModuleImage image = image(program);
        KernelInfo k = image.kernel(name);
        assertNotNull(name + " is not in " + program + ": " + image.kernels.stream().map(x -> x.name).toList(), k);
        assertArrayEquals(name + " offsets", offsets, k.paramOffsets);
        assertArrayEquals(name + " sizes", sizes, k.paramSizes);
        assertEquals(name + " buffer", bufferSize, k.paramBufferSize);
        mock.registerKernel(name, kernel);
        long[] module = new long[1];
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, mock.moduleLoad(ctx, image, 0, module));
        assertEquals(CuResult.SUCCESS, mock.functionGet(module[0], name, fn));
        return fn[0];
    }

    private static ByteBuffer params(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private void launch(long fn, LaunchConfig config, ByteBuffer params) {
        assertEquals(CuResult.SUCCESS, mock.launch(fn, config, params.rewind(), 0));
        assertTrue(mock.launchLog(1).get(0).executed);
    }

    private void write(long address, ByteBuffer data) {
        assertEquals(CuResult.SUCCESS, mock.memcpyHtoD(ctx, address, data.rewind(), 0));
    }

    private ByteBuffer read(long address, int bytes) {
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoH(ctx, b, address, 0));
        return b.rewind();
    }

    private static ByteBuffer floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b;
    }

    private static ByteBuffer ints(int... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(v);
        return b;
    }

    @Test
    public void rtVaddAddsTheCoveredElements() throws Exception {
        long fn = function("rt_vector_add", VectorAdd.RT_NAME, new VectorAdd(), new int[] {0, 8, 16, 24},
                new int[] {8, 8, 8, 4}, 28);
        write(BASE, floats(1, 2, 3, 4, 5));
        write(BASE + 64, floats(0.5f, 0.25f, -3, 1e-8f, 7));
        write(SECOND, floats(-1, -1, -1, -1, -1));
        ByteBuffer p = params(28).putLong(0, BASE).putLong(8, BASE + 64).putLong(16, SECOND).putInt(24, 5);
        // 4 threads for 5 elements: the fifth stays as it was.
        launch(fn, new LaunchConfig(2, 1, 1, 2, 1, 1, 0), p);
        ByteBuffer c = read(SECOND, 20);
        assertEquals(1.5f, c.getFloat(0), 0);
        assertEquals(2.25f, c.getFloat(4), 0);
        assertEquals(0f, c.getFloat(8), 0);
        assertEquals(4f + 1e-8f, c.getFloat(12), 0);
        assertEquals(-1f, c.getFloat(16), 0);
    }

    @Test
    public void rtStepIsMultiplyThenAddWithWrapAround() throws Exception {
        long fn = function("rt_streams", RtStep.NAME, new RtStep(), new int[] {0, 8, 12, 16}, new int[] {8, 4, 4, 4},
                20);
        write(BASE, ints(-5, 0, 7, Integer.MAX_VALUE, 100));
        launch(fn, new LaunchConfig(1, 1, 1, 32, 1, 1, 0), params(20).putLong(0, BASE).putInt(8, 4).putInt(12, 3)
                .putInt(16, -2));
        ByteBuffer v = read(BASE, 20);
        assertEquals(-17, v.getInt(0));
        assertEquals(-2, v.getInt(4));
        assertEquals(19, v.getInt(8));
        assertEquals(Integer.MAX_VALUE * 3 - 2, v.getInt(12));
        assertEquals(100, v.getInt(16)); // n = 4
    }

    @Test
    public void rtPitchFillWritesRowsAndKeepsThePadding() throws Exception {
        long fn = function("rt_memcpy", RtPitchFill.NAME, new RtPitchFill(), new int[] {0, 8, 16, 20, 24},
                new int[] {8, 8, 4, 4, 4}, 28);
        int pitch = 64;
        ByteBuffer junk = params(pitch * 4);
        for (int i = 0; i < pitch; i++) {
            junk.putInt(4 * i, 0x77777777);
        }
        write(BASE, junk);
        int seed = 0x5a5a0000;
        // 5 x 3 elements of a 16-element pitch; the grid covers 8 x 2 threads, so only two rows.
        launch(fn, new LaunchConfig(1, 1, 1, 8, 2, 1, 0), params(28).putLong(0, BASE).putLong(8, pitch).putInt(16, 5)
                .putInt(20, 3).putInt(24, seed));
        ByteBuffer m = read(BASE, pitch * 4);
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < pitch / 4; x++) {
                int want = y < 2 && x < 5 ? seed ^ (y << 16 | x) : 0x77777777;
                assertEquals("(" + x + "," + y + ")", want, m.getInt(y * pitch + 4 * x));
            }
        }
    }

    @Test
    public void rtStructApplyReadsTheStructAtItsCOffsets() throws Exception {
        long fn = function("rt_struct_param", RtStructApply.NAME, new RtStructApply(), new int[] {0, 8, 48},
                new int[] {4, 40, 2}, 50);
        float[] in = {1.5f, -2.25f, 0.1f, 3f};
        write(BASE, floats(in));
        ByteBuffer init = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) {
            init.putDouble(8 * i, -0.5);
        }
        write(SECOND, init);
        ByteBuffer p = params(50);
        for (int i = 0; i < 50; i++) {
            p.put(i, (byte) 0xa5); // padding must not matter
        }
        int first = 123456789;
        byte tag = -7;
        double offset = 1.0e10 + 0.25;
        float scale = 3.5f;
        short bias = -321;
        p.putInt(0, first);
        p.put(8, tag).putDouble(16, offset).putInt(24, 3).putFloat(28, scale).putLong(32, BASE).putLong(40, SECOND);
        p.putShort(48, bias);
        launch(fn, new LaunchConfig(1, 1, 1, 64, 1, 1, 0), p);
        ByteBuffer out = read(SECOND, 32);
        for (int i = 0; i < 3; i++) {
            double want = (double) (in[i] * scale) + offset + tag + bias + first;
            assertEquals("out[" + i + "]", Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(out.getDouble(8 * i)));
        }
        assertEquals(-0.5, out.getDouble(24), 0); // count = 3
    }

    @Test
    public void rtLaunchDimsReportsTheConfiguration() throws Exception {
        long fn = function("rt_device_props", RtLaunchDims.NAME, new RtLaunchDims(), new int[] {0}, new int[] {8}, 8);
        write(BASE, ints(0, 0, 0, 0, 0, 0, 5));
        launch(fn, new LaunchConfig(3, 2, 5, 8, 4, 2, 256), params(8).putLong(0, BASE));
        ByteBuffer v = read(BASE, 28);
        int[] got = new int[7];
        v.asIntBuffer().get(got);
        assertArrayEquals(new int[] {3, 2, 5, 8, 4, 2, 5 + 1920}, got);
    }

    @Test
    public void rt12AffineIsAFusedMultiplyAdd() throws Exception {
        long fn = function("cudart12_kernel", Rt12Affine.NAME, new Rt12Affine(), new int[] {0, 8, 16, 20, 24},
                new int[] {8, 8, 4, 4, 4}, 28);
        // 0.1f * 3 + (-0.3f) rounds differently with and without fusing.
        write(BASE, floats(-500, 2, 0.1f, 42));
        ByteBuffer p = params(28).putLong(0, SECOND).putLong(8, BASE).putFloat(16, 3f).putFloat(20, -0.3f).putInt(24, 3);
        launch(fn, new LaunchConfig(1, 1, 1, 128, 1, 1, 0), p);
        ByteBuffer y = read(SECOND, 16);
        assertEquals(-1500f + -0.3f, y.getFloat(0), 0);
        assertEquals(6f + -0.3f, y.getFloat(4), 0);
        assertEquals(Math.fma(3f, 0.1f, -0.3f), y.getFloat(8), 0);
        assertTrue(Math.fma(3f, 0.1f, -0.3f) != 3f * 0.1f + -0.3f);
        assertEquals(0f, y.getFloat(12), 0); // n = 3
        // In place, as test_cudart12's second launch does.
        p.putLong(8, SECOND).putFloat(16, -2f).putFloat(20, 7f);
        launch(fn, new LaunchConfig(1, 1, 1, 128, 1, 1, 0), p);
        assertEquals(Math.fma(-2f, -1500f + -0.3f, 7f), read(SECOND, 4).getFloat(0), 0);
    }

    @Test
    public void everyProgramKernelHasAHostKernel() throws Exception {
        Map<String, String> names = Map.of("rt_vector_add", VectorAdd.RT_NAME, "rt_streams", RtStep.NAME, "rt_memcpy",
                RtPitchFill.NAME, "rt_struct_param", RtStructApply.NAME, "rt_device_props", RtLaunchDims.NAME,
                "cudart12_kernel", Rt12Affine.NAME);
        for (Map.Entry<String, String> e : names.entrySet()) {
            ModuleImage image = image(e.getKey());
            assertEquals(e.getKey(), 1, image.kernels.size());
            assertEquals(e.getKey(), e.getValue(), image.kernels.get(0).name);
        }
    }
}
