package io.vgpu.backend.mock;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.ptx.PtxExecutor;
import java.io.InputStream;
import java.lang.annotation.Annotation;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * How fast the mock executes PTX, as ratios against baselines measured in the same run:
 * thread-instructions per second of saxpy and of the tiled matmul, and a 512x512 sgemm through
 * the mock against the same dot products written in plain Java (one thread).
 *
 * <pre>mvn -B -q install -DskipTests
 * mvn -B -q -pl backend.mock exec:java -Dexec.mainClass=io.vgpu.backend.mock.PtxBench -Dexec.classpathScope=test</pre>
 */
public final class PtxBench {
    private static final long BASE = 0x2000_0000_0000L;

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 512;
        MockBackend mock = new MockBackend(config());
        long[] ctx = new long[1];
        check(mock.ctxCreate(0, 0, 1, ctx));
        ModuleImage image = new ModuleImage();
        try (InputStream in = PtxBench.class.getResourceAsStream("/bench/bench.ptx")) {
            image.ptxSource = in.readAllBytes();
        }
        image.kernels.add(kernel("saxpy", new int[] {0, 4, 8, 16}, new int[] {4, 4, 8, 8}, 24));
        image.kernels.add(kernel("sgemm_tiled", new int[] {0, 8, 16, 24, 28, 32}, new int[] {8, 8, 8, 4, 4, 4}, 36));
        long[] module = new long[1];
        check(mock.moduleLoad(ctx[0], image, 0, module));
        long[] saxpy = new long[1], sgemm = new long[1];
        check(mock.functionGet(module[0], "saxpy", saxpy));
        check(mock.functionGet(module[0], "sgemm_tiled", sgemm));
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.printf("PTX engine benchmark on %d cores (mock backend, interpreter)%n", cores);

        // saxpy: thread-instructions per second, and per element against a Java loop.
        int elems = 1 << 22;
        check(mock.memAlloc(ctx[0], BASE, 8L * elems));
        ByteBuffer x = ByteBuffer.allocate(4 * elems).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < elems; i++) {
            x.putFloat(i * 0.25f);
        }
        check(mock.memcpyHtoD(ctx[0], BASE, x.flip(), 0));
        check(mock.memcpyHtoD(ctx[0], BASE + 4L * elems, x.rewind(), 0));
        ByteBuffer sp = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putInt(elems).putFloat(2f).putLong(BASE)
                .putLong(BASE + 4L * elems).flip();
        LaunchConfig sc = new LaunchConfig(elems / 256, 1, 1, 256, 1, 1, 0);
        check(mock.launch(saxpy[0], sc, sp.duplicate(), 0)); // warm-up
        long i0 = executed(mock);
        long t0 = System.nanoTime();
        int reps = 3;
        for (int r = 0; r < reps; r++) {
            check(mock.launch(saxpy[0], sc, sp.duplicate(), 0));
        }
        double saxpySec = (System.nanoTime() - t0) / 1e9;
        long saxpyInsn = executed(mock) - i0;
        float[] jx = new float[elems], jy = new float[elems];
        long j0 = System.nanoTime();
        for (int r = 0; r < reps * 20; r++) {
            for (int i = 0; i < elems; i++) {
                jy[i] = 2f * jx[i] + jy[i];
            }
        }
        double javaSaxpy = (System.nanoTime() - j0) / 1e9 / 20;
        System.out.printf("saxpy %d floats: %.1f M thread-instructions/s; %.0f ms a launch vs %.2f ms for a Java loop (ratio %.0fx slower)%n",
                elems, saxpyInsn / saxpySec / 1e6, saxpySec / reps * 1e3, javaSaxpy / reps * 1e3, saxpySec / javaSaxpy);
        // Launch overhead: a 256-element saxpy, the size of a tiny model's per-token kernels.
        ByteBuffer small = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putInt(256).putFloat(2f).putLong(BASE)
                .putLong(BASE + 4L * elems).flip();
        LaunchConfig one = new LaunchConfig(1, 1, 1, 256, 1, 1, 0);
        for (int r = 0; r < 2000; r++) {
            check(mock.launch(saxpy[0], one, small.duplicate(), 0));
        }
        t0 = System.nanoTime();
        int launches = 5000;
        for (int r = 0; r < launches; r++) {
            check(mock.launch(saxpy[0], one, small.duplicate(), 0));
        }
        double perLaunch = (System.nanoTime() - t0) / 1e3 / launches;
        System.out.printf("one-block launch (256 threads): %.1f us each%n", perLaunch);
        check(mock.memFree(ctx[0], BASE));

        // sgemm n x n through the tiled kernel, against the same tiling in Java.
        long a = BASE, b = a + 4L * n * n, c = b + 4L * n * n;
        check(mock.memAlloc(ctx[0], a, 12L * n * n));
        Random rnd = new Random(42);
        float[] A = new float[n * n], B = new float[n * n];
        ByteBuffer buf = ByteBuffer.allocate(4 * n * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < A.length; i++) {
            A[i] = rnd.nextFloat() - 0.5f;
            buf.putFloat(A[i]);
        }
        check(mock.memcpyHtoD(ctx[0], a, buf.flip(), 0));
        buf.clear();
        for (int i = 0; i < B.length; i++) {
            B[i] = rnd.nextFloat() - 0.5f;
            buf.putFloat(B[i]);
        }
        check(mock.memcpyHtoD(ctx[0], b, buf.flip(), 0));
        ByteBuffer gp = ByteBuffer.allocate(36).order(ByteOrder.LITTLE_ENDIAN).putLong(a).putLong(b).putLong(c).putInt(n).putInt(n)
                .putInt(n).flip();
        LaunchConfig gc = new LaunchConfig((n + 15) / 16, (n + 15) / 16, 1, 16, 16, 1, 0);
        i0 = executed(mock);
        t0 = System.nanoTime();
        check(mock.launch(sgemm[0], gc, gp, 0));
        double mockSec = (System.nanoTime() - t0) / 1e9;
        long gemmInsn = executed(mock) - i0;
        ByteBuffer out = ByteBuffer.allocate(4 * n * n).order(ByteOrder.LITTLE_ENDIAN);
        check(mock.memcpyDtoH(ctx[0], out, c, 0));
        float[] ref = new float[n * n];
        double javaSec = Double.MAX_VALUE;
        for (int r = 0; r < 3; r++) {
            long s = System.nanoTime();
            javaTiled(A, B, ref, n);
            javaSec = Math.min(javaSec, (System.nanoTime() - s) / 1e9);
        }
        double worst = 0;
        for (int i = 0; i < ref.length; i++) {
            worst = Math.max(worst, Math.abs(ref[i] - out.getFloat(4 * i)));
        }
        System.out.printf("sgemm %dx%d tiled: mock %.2f s (%.1f M thread-instructions/s, %.2f GFLOP/s), plain Java %.3f s: "
                + "mock/Java = %.0fx; max |difference| %.2g%n", n, n, mockSec, gemmInsn / mockSec / 1e6,
                2.0 * n * n * n / mockSec / 1e9, javaSec, mockSec / javaSec, worst);
        mock.deactivate();
    }

    private static long executed(MockBackend mock) {
        return mock.threadInstructions();
    }

    /** The same dot products, accumulated in the same order as the kernel's, in plain Java. */
    private static void javaTiled(float[] A, float[] B, float[] C, int n) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                float acc = 0;
                for (int k = 0; k < n; k++) {
                    acc = Math.fma(A[i * n + k], B[k * n + j], acc);
                }
                C[i * n + j] = acc;
            }
        }
    }

    private static KernelInfo kernel(String name, int[] offsets, int[] sizes, int size) {
        KernelInfo k = new KernelInfo();
        k.name = name;
        k.paramOffsets = offsets;
        k.paramSizes = sizes;
        k.paramBufferSize = size;
        return k;
    }

    private static void check(int rc) {
        if (rc != CuResult.SUCCESS) {
            throw new IllegalStateException("CUresult " + rc);
        }
    }

    private static MockBackend.Config config() {
        return new MockBackend.Config() {
            @Override public Class<? extends Annotation> annotationType() { return MockBackend.Config.class; }
            @Override public String backend_id() { return "mock"; }
            @Override public String name() { return "NVIDIA H100 80GB HBM3"; }
            @Override public long memory_mib() { return 81920; }
            @Override public int cc_major() { return 9; }
            @Override public int cc_minor() { return 0; }
            @Override public int sm_count() { return 132; }
            @Override public String uuid() { return ""; }
            @Override public int pci_domain() { return 0; }
            @Override public int pci_bus() { return -1; }
            @Override public int pci_device() { return 0; }
            @Override public int pci_device_id() { return 0x2330; }
            @Override public int pci_subsystem_id() { return 0x16c1; }
            @Override public int clock_khz() { return 1980000; }
            @Override public int memory_clock_khz() { return 2619000; }
            @Override public int memory_bus_width() { return 5120; }
            @Override public int l2_cache_bytes() { return 52428800; }
            @Override public int device_count() { return 1; }
            @Override public int ptx_workers() { return 0; }
            @Override public long watchdog_ms() { return 0; }
        };
    }
}
