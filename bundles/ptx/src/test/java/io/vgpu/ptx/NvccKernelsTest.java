package io.vgpu.ptx;

import static org.junit.Assert.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Random;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * Kernels nvcc 13 compiled from kernels.cu (committed PTX, see regenerate.sh), run by the engine and
 * checked element by element against a host reference.
 */
public class NvccKernelsTest {
    static PtxProgram program;
    static PtxExecutor executor;
    static final long BASE = 0x2000_0000_0000L;

    @BeforeClass
    public static void load() throws IOException, PtxException {
        try (InputStream in = NvccKernelsTest.class.getResourceAsStream("/cuda/kernels.ptx")) {
            program = PtxProgram.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        executor = new PtxExecutor(2, 10_000);
    }

    @AfterClass
    public static void close() {
        executor.close();
    }

    private static PtxKernel kernel(String name) throws PtxException {
        return program.kernel(name, Map.of());
    }

    @Test
    public void saxpy() throws Exception {
        int n = 1000;
        HeapMemory m = new HeapMemory(BASE, 8 * n);
        long x = BASE, y = BASE + 4L * n;
        for (int i = 0; i < n; i++) {
            m.putFloats(x + 4L * i, i * 0.5f);
            m.putFloats(y + 4L * i, 1f / (i + 1));
        }
        PtxKernel k = kernel("saxpy");
        executor.launch(k, LaunchDims.linear((n + 127) / 128, 128), new Params(k).u32(0, n).f32(1, 3f).u64(2, x).u64(3, y).build(), () -> m);
        for (int i = 0; i < n; i++) {
            assertEquals("y[" + i + "]", Math.fma(3f, i * 0.5f, 1f / (i + 1)), m.getFloat(y + 4L * i), 0f);
        }
    }

    @Test
    public void tiledMatmulWithSharedMemoryAndBarriers() throws Exception {
        int M = 37, N = 29, K = 45;
        HeapMemory m = new HeapMemory(BASE, 4 * (M * K + K * N + M * N));
        long a = BASE, b = a + 4L * M * K, c = b + 4L * K * N;
        Random r = new Random(1);
        float[] A = new float[M * K], B = new float[K * N];
        for (int i = 0; i < A.length; i++) {
            A[i] = r.nextInt(9) - 4;
            m.putFloats(a + 4L * i, A[i]);
        }
        for (int i = 0; i < B.length; i++) {
            B[i] = r.nextInt(9) - 4;
            m.putFloats(b + 4L * i, B[i]);
        }
        PtxKernel k = kernel("matmul");
        executor.launch(k, new LaunchDims((N + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0),
                new Params(k).u64(0, a).u64(1, b).u64(2, c).u32(3, M).u32(4, N).u32(5, K).build(), () -> m);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int q = 0; q < K; q++) {
                    s += A[i * K + q] * B[q * N + j];
                }
                assertEquals("C[" + i + "][" + j + "]", s, m.getFloat(c + 4L * (i * N + j)), 0f);
            }
        }
    }

    @Test
    public void warpShuffleReductionWithAtomics() throws Exception {
        int n = 10_000;
        HeapMemory m = new HeapMemory(BASE, 4 * n + 4);
        long in = BASE, out = BASE + 4L * n;
        long expect = 0;
        for (int i = 0; i < n; i++) {
            m.putInts(in + 4L * i, i * 7 - 3000);
            expect += i * 7 - 3000;
        }
        PtxKernel k = kernel("reduce");
        executor.launch(k, LaunchDims.linear((n + 255) / 256, 256), new Params(k).u64(0, in).u64(1, out).u32(2, n).build(), () -> m);
        assertEquals(expect, m.getInt(out));
    }

    @Test
    public void histogramWithSharedAndGlobalAtomics() throws Exception {
        int n = 20_000;
        HeapMemory m = new HeapMemory(BASE, n + 1024);
        long in = BASE, bins = BASE + n;
        int[] ref = new int[256];
        Random r = new Random(2);
        for (int i = 0; i < n; i++) {
            int v = r.nextInt(256);
            m.store(in + i, 1, v);
            ref[v]++;
        }
        PtxKernel k = kernel("hist");
        executor.launch(k, LaunchDims.linear(8, 192), new Params(k).u64(0, in).u32(1, n).u64(2, bins).build(), () -> m);
        for (int i = 0; i < 256; i++) {
            assertEquals("bin " + i, ref[i], m.getInt(bins + 4L * i));
        }
    }

    @Test
    public void deviceFunctionsStructByValueLocalMemoryAndDivergentLoops() throws Exception {
        int t = 64;
        HeapMemory m = new HeapMemory(BASE, 16 * t);
        long o = BASE, od = BASE + 4L * t, oi = od + 8L * t;
        PtxKernel k = kernel("calls");
        byte[] p = new byte[16];
        java.nio.ByteBuffer.wrap(p).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, 5).putFloat(4, 1.5f).putDouble(8, 2.25);
        executor.launch(k, LaunchDims.linear(1, t), new Params(k).u64(0, o).u64(1, od).u64(2, oi).bytes(3, p).build(), () -> m);
        for (int i = 0; i < t; i++) {
            assertEquals((float) i * i + 1f, m.getFloat(o + 4L * i), 0f);
            assertEquals(1.5 * 2.25, m.getDouble(od + 8L * i), 0);
            int c = 0;
            long x = i + 1;
            while (x != 1) {
                x = (x & 1) != 0 ? 3 * x + 1 : x / 2;
                c++;
            }
            assertEquals("oi[" + i + "]", c + i + 5, m.getInt(oi + 4L * i));
        }
    }

    @Test
    public void cooperativeGroupsTilesAndBallot() throws Exception {
        int t = 64;
        HeapMemory m = new HeapMemory(BASE, 4 * t);
        PtxKernel k = kernel("coop");
        executor.launch(k, LaunchDims.linear(1, t), new Params(k).u64(0, BASE).build(), () -> m);
        int ballot = 0;
        for (int i = 0; i < 32; i++) {
            if (i % 3 == 0) {
                ballot |= 1 << i;
            }
        }
        for (int i = 0; i < t; i++) {
            int rank = i % 16;
            // shfl_down within the tile: lane r accumulates ranks r, r+1, ... as the tree reduction gives.
            int v = treeDown(rank);
            int bal = i < 32 ? ballot : (ballot >>> 0); // warp 1 sees the same pattern shifted by 32 % 3
            if (i >= 32) {
                bal = 0;
                for (int j = 0; j < 32; j++) {
                    if ((32 + j) % 3 == 0) {
                        bal |= 1 << j;
                    }
                }
            }
            assertEquals("out[" + i + "]", v + (bal & 0xff) * 1000, m.getInt(BASE + 4L * i));
        }
    }

    @Test
    public void ldmatrixAndMmaSyncF16GiveTheMatrixProduct() throws Exception {
        HeapMemory m = new HeapMemory(BASE, 4096);
        long a = BASE, bn = a + 512, bk = bn + 256, c = bk + 256, ct = c + 512;
        float[][] A = new float[16][16], B = new float[16][8];
        Random r = new Random(3);
        for (int i = 0; i < 16; i++) {
            for (int k = 0; k < 16; k++) {
                A[i][k] = r.nextInt(7) - 3;
                m.store(a + 2L * (i * 16 + k), 2, io.vgpu.ptx.internal.Fp.toHalf(A[i][k], 0));
            }
        }
        for (int k = 0; k < 16; k++) {
            for (int n = 0; n < 8; n++) {
                B[k][n] = (r.nextInt(9) - 4) * 0.5f;
                m.store(bn + 2L * (n * 16 + k), 2, io.vgpu.ptx.internal.Fp.toHalf(B[k][n], 0));
                m.store(bk + 2L * (k * 8 + n), 2, io.vgpu.ptx.internal.Fp.toHalf(B[k][n], 0));
            }
        }
        PtxKernel k = kernel("mma_f16");
        executor.launch(k, LaunchDims.linear(1, 32), new Params(k).u64(0, a).u64(1, bn).u64(2, bk).u64(3, c).u64(4, ct).build(), () -> m);
        for (int i = 0; i < 16; i++) {
            for (int n = 0; n < 8; n++) {
                float s = 0;
                for (int q = 0; q < 16; q++) {
                    s += A[i][q] * B[q][n];
                }
                assertEquals("C[" + i + "][" + n + "]", s, m.getFloat(c + 4L * (i * 8 + n)), 0f);
                assertEquals("C (B through ldmatrix.trans)[" + i + "][" + n + "]", s, m.getFloat(ct + 4L * (i * 8 + n)), 0f);
            }
        }
    }

    @Test
    public void mmaSyncInt8GivesTheExactProduct() throws Exception {
        HeapMemory m = new HeapMemory(BASE, 2048);
        long a = BASE, bn = a + 512, c = bn + 256;
        int[][] A = new int[16][32], B = new int[32][8];
        Random r = new Random(4);
        for (int i = 0; i < 16; i++) {
            for (int q = 0; q < 32; q++) {
                A[i][q] = r.nextInt(256) - 128;
                m.store(a + i * 32 + q, 1, A[i][q]);
            }
        }
        for (int q = 0; q < 32; q++) {
            for (int n = 0; n < 8; n++) {
                B[q][n] = r.nextInt(256) - 128;
                m.store(bn + n * 32 + q, 1, B[q][n]);
            }
        }
        PtxKernel k = kernel("mma_s8");
        executor.launch(k, LaunchDims.linear(1, 32), new Params(k).u64(0, a).u64(1, bn).u64(2, c).build(), () -> m);
        for (int i = 0; i < 16; i++) {
            for (int n = 0; n < 8; n++) {
                int s = 0;
                for (int q = 0; q < 32; q++) {
                    s += A[i][q] * B[q][n];
                }
                assertEquals("C[" + i + "][" + n + "]", s, m.getInt(c + 4L * (i * 8 + n)));
            }
        }
    }

    @Test
    public void movmatrixTransposes() throws Exception {
        HeapMemory m = new HeapMemory(BASE, 256);
        int[][] M = new int[8][8];
        for (int r = 0; r < 8; r++) {
            for (int c = 0; c < 8; c++) {
                M[r][c] = 0x100 * r + c + 1;
            }
        }
        for (int l = 0; l < 32; l++) {
            int r = l / 4, c = 2 * (l % 4);
            m.putInts(BASE + 4L * l, M[r][c] | (M[r][c + 1] << 16));
        }
        PtxKernel k = kernel("movmatrix_t");
        executor.launch(k, LaunchDims.linear(1, 32), new Params(k).u64(0, BASE).u64(1, BASE + 128).build(), () -> m);
        for (int l = 0; l < 32; l++) {
            int r = l / 4, c = 2 * (l % 4);
            assertEquals("lane " + l, M[c][r] | (M[c + 1][r] << 16), m.getInt(BASE + 128 + 4L * l));
        }
    }

    @Test
    public void mmaSyncF64() throws Exception {
        HeapMemory m = new HeapMemory(BASE, 1024);
        long a = BASE, b = a + 8 * 32, c = b + 8 * 32;
        double[][] A = new double[8][4], B = new double[4][8];
        for (int i = 0; i < 8; i++) {
            for (int q = 0; q < 4; q++) {
                A[i][q] = i - 2.25 * q;
                m.putDoubles(a + 8L * (i * 4 + q), A[i][q]);
            }
        }
        for (int q = 0; q < 4; q++) {
            for (int n = 0; n < 8; n++) {
                B[q][n] = 0.5 * n + q;
                m.putDoubles(b + 8L * (q * 8 + n), B[q][n]);
            }
        }
        PtxKernel k = kernel("mma_f64");
        executor.launch(k, LaunchDims.linear(1, 32), new Params(k).u64(0, a).u64(1, b).u64(2, c).build(), () -> m);
        for (int i = 0; i < 8; i++) {
            for (int n = 0; n < 8; n++) {
                double s = n % 2 == 0 ? 0.5 : -0.5;
                for (int q = 0; q < 4; q++) {
                    s += A[i][q] * B[q][n];
                }
                assertEquals("C[" + i + "][" + n + "]", s, m.getDouble(c + 8L * (i * 8 + n)), 0);
            }
        }
    }

    @Test
    public void cvtRnaTf32RoundsTheMantissaTo10Bits() throws Exception {
        float[] in = {1f, Float.intBitsToFloat(0x3f800fff), Float.intBitsToFloat(0x3f801000), Float.intBitsToFloat(0x3f803000),
            -Float.intBitsToFloat(0x3f801000), Float.POSITIVE_INFINITY};
        int[] expect = {0x3f800000, 0x3f800000, 0x3f802000, 0x3f804000, 0xbf802000, 0x7f800000};
        HeapMemory m = new HeapMemory(BASE, 64);
        m.putFloats(BASE, in);
        PtxKernel k = kernel("to_tf32");
        executor.launch(k, LaunchDims.linear(1, 32), new Params(k).u64(0, BASE).u64(1, BASE + 32).u32(2, in.length).build(), () -> m);
        for (int i = 0; i < in.length; i++) {
            assertEquals("tf32 of " + Integer.toHexString(Float.floatToRawIntBits(in[i])), expect[i], m.getInt(BASE + 32 + 4L * i));
        }
    }

    /** What lane r of a 16-lane tile holds after v += shfl_down(v, o) for o = 8, 4, 2, 1 (clamped at the tile end). */
    private static int treeDown(int rank) {
        int[] v = new int[16];
        for (int i = 0; i < 16; i++) {
            v[i] = i + 1;
        }
        for (int o = 8; o > 0; o /= 2) {
            int[] next = v.clone();
            for (int i = 0; i < 16; i++) {
                next[i] = v[i] + (i + o < 16 ? v[i + o] : v[i]);
            }
            v = next;
        }
        return v[rank];
    }
}
