package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.BASE;
import static io.vgpu.ptx.isa.Ptx.assertHex;
import static io.vgpu.ptx.isa.Ptx.kernel;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.LaunchDims;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongBinaryOperator;
import org.junit.Test;

/**
 * atom and red on global and shared memory, contended by every thread of a grid of many blocks on two
 * workers: the final value is exact, and the old values returned are what some serial order of the
 * operations gives (checked by replaying them in the order of the values returned).
 */
public class AtomicTest {
    static final int BLOCKS = 48, THREADS = 128, N = BLOCKS * THREADS;

    static String reg(String t) {
        switch (t) {
            case "f32": return "%f";
            case "f64": return "%fd";
            default: return Ptx.bits(t) == 64 ? "%rd" : "%r";
        }
    }

    /**
     * Every thread g runs {@code insn old, [counter], operand[g]} (or, for cas, with operand[g] and
     * swap[g]) and stores old to olds[g]. Returns {final value, olds...}.
     */
    static long[] contend(String insn, String t, long initial, long[] operands, long[] swaps) {
        int size = Ptx.bits(t) / 8;
        String r = reg(t);
        String ld = "b" + Ptx.bits(t);
        String body = ""
                + "  ld.param.u64 %rd1, [p0];\n  ld.param.u64 %rd2, [p1];\n  ld.param.u64 %rd3, [p2];\n"
                + "  mov.u32 %r1, %ctaid.x;\n  mov.u32 %r2, %ntid.x;\n  mov.u32 %r3, %tid.x;\n  mad.lo.u32 %r4, %r1, %r2, %r3;\n"
                + "  mul.wide.u32 %rd4, %r4, 8;\n  add.s64 %rd5, %rd2, %rd4;\n  add.s64 %rd6, %rd3, %rd4;\n"
                + "  ld.global." + ld + " " + r + "10, [%rd5];\n  ld.global." + ld + " " + r + "11, [%rd5+" + (8 * N) + "];\n"
                + "  " + insn + " " + r + "12, [%rd1], " + r + "10" + (swaps != null ? ", " + r + "11" : "") + ";\n"
                + "  st.global." + ld + " [%rd6], " + r + "12;\n";
        HeapMemory m = new HeapMemory(BASE, 8 + 8 * 3 * N);
        long counter = BASE, ops = BASE + 8, olds = ops + 16L * N;
        m.store(counter, size, initial);
        for (int i = 0; i < N; i++) {
            m.store(ops + 8L * i, size, operands[i]);
            if (swaps != null) {
                m.store(ops + 8L * (N + i), size, swaps[i]);
            }
        }
        Ptx.launch(kernel(3, "", body), LaunchDims.linear(BLOCKS, THREADS), m, counter, ops, olds);
        long[] out = new long[N + 1];
        out[0] = m.load(counter, size);
        for (int i = 0; i < N; i++) {
            out[1 + i] = m.load(olds + 8L * i, size);
        }
        return out;
    }

    /**
     * The olds are consistent with one serial order: starting from initial, some unused operation
     * whose old value equals the current value is applied, until all are used and the final value is
     * reached. Works for operations whose results change the value (or where ties do not matter).
     */
    static void assertSerializable(String what, long initial, long[] operands, long[] result, LongBinaryOperator op, long mask) {
        java.util.Map<Long, List<Integer>> byOld = new java.util.HashMap<>();
        for (int i = 0; i < N; i++) {
            byOld.computeIfAbsent(result[1 + i], k -> new ArrayList<>()).add(i);
        }
        long v = initial;
        for (int step = 0; step < N; step++) {
            List<Integer> cands = byOld.get(v);
            assertTrue(what + ": no operation saw the value 0x" + Long.toHexString(v) + " at step " + step, cands != null && !cands.isEmpty());
            // an operation that leaves the value as it is (adding 0) goes first among those that saw it
            int pick = cands.size() - 1;
            for (int k = 0; k < cands.size(); k++) {
                if ((op.applyAsLong(v, operands[cands.get(k)]) & mask) == v) {
                    pick = k;
                }
            }
            int i = cands.remove(pick);
            v = op.applyAsLong(v, operands[i]) & mask;
        }
        assertHex(what + ": final value", v, result[0]);
    }

    static long[] seq(java.util.function.IntToLongFunction f) {
        long[] a = new long[N];
        for (int i = 0; i < N; i++) {
            a[i] = f.applyAsLong(i);
        }
        return a;
    }

    @Test
    public void addReturnsEveryIntermediateSumOnce() {
        long[] ones = seq(i -> 1);
        long[] r = contend("atom.global.add.u32", "u32", 0, ones, null);
        assertEquals(N, r[0]);
        long[] olds = Arrays.copyOfRange(r, 1, N + 1);
        Arrays.sort(olds);
        for (int i = 0; i < N; i++) {
            assertEquals("the olds are 0..N-1", i, olds[i]);
        }
        long[] vals = seq(i -> (i * 2654435761L) & 0xffff);
        assertSerializable("add.u32", 0xfff00000L, vals, contend("atom.global.add.u32", "u32", 0xfff00000L, vals, null), (a, b) -> a + b, 0xffffffffL);
        long[] big = seq(i -> 0x1_0000_0001L * (i + 1));
        assertSerializable("add.u64", 5, big, contend("atom.global.add.u64", "u64", 5, big, null), Long::sum, -1L);
        long[] neg = seq(i -> (i % 3) - 1);
        assertSerializable("add.s32", 0, neg, contend("atom.add.s32", "s32", 0, neg, null), (a, b) -> a + b, 0xffffffffL);
    }

    @Test
    public void incAndDecWrapAtTheirBound() {
        long[] b99 = seq(i -> 99);
        long[] r = contend("atom.global.inc.u32", "u32", 0, b99, null);
        assertEquals(N % 100, r[0]);
        assertSerializable("inc.u32", 0, b99, r, (o, b) -> Long.compareUnsigned(o, b) >= 0 ? 0 : o + 1, 0xffffffffL);
        long[] b9 = seq(i -> 9);
        r = contend("atom.global.dec.u32", "u32", 5, b9, null);
        assertEquals(Math.floorMod(5 - N, 10), r[0]);
        assertSerializable("dec.u32", 5, b9, r, (o, b) -> o == 0 || Long.compareUnsigned(o, b) > 0 ? b : o - 1, 0xffffffffL);
        // an old value above the bound goes to the bound
        r = contend("atom.global.dec.u32", "u32", 1000, b9, null);
        assertEquals(Math.floorMod(9 - (N - 1), 10), r[0]);
    }

    @Test
    public void minMaxAndBitwise() {
        long[] v = seq(i -> ((i * 7919L) % 10007) - 5000);
        long min = Arrays.stream(v).min().getAsLong(), max = Arrays.stream(v).max().getAsLong();
        long[] r = contend("atom.global.min.s32", "s32", 0, v, null);
        assertEquals(min, (int) r[0]);
        for (int i = 1; i <= N; i++) {
            assertTrue("an old min is never below the final", (int) r[i] >= min && (int) r[i] <= 0);
        }
        assertEquals(max, (int) contend("atom.global.max.s32", "s32", 0, v, null)[0]);
        assertHex("min.u32 treats negatives as large", 0, contend("atom.global.min.u32", "u32", 0xffffffffL, seq(i -> i), null)[0]);
        assertHex("max.u32", 0xffffffffL, contend("atom.global.max.u32", "u32", 0, seq(i -> i == 77 ? -1 : i), null)[0] & 0xffffffffL);
        assertHex("max.u64", 0xfedcba9876543210L, contend("atom.global.max.u64", "u64", 1, seq(i -> i == 4000 ? 0xfedcba9876543210L : i), null)[0]);
        assertHex("min.s64", Long.MIN_VALUE, contend("atom.global.min.s64", "s64", 0, seq(i -> i == 9 ? Long.MIN_VALUE : -i), null)[0]);
        long[] bits = seq(i -> 1L << (i % 32) | (i * 0x9e3779b9L & 0xff00));
        long and = -1, or = 0, xor = 0;
        for (long b : bits) {
            and &= b;
            or |= b;
            xor ^= b;
        }
        assertHex("and", and & 0xffffffffL, contend("atom.global.and.b32", "b32", 0xffffffffL, bits, null)[0]);
        assertHex("or", or & 0xffffffffL, contend("atom.global.or.b32", "b32", 0, bits, null)[0]);
        long[] rx = contend("atom.global.xor.b32", "b32", 0x5a5a5a5aL, bits, null);
        assertHex("xor", (xor ^ 0x5a5a5a5aL) & 0xffffffffL, rx[0]);
        assertHex("xor.b64", 0xffffffffffffffffL, contend("atom.global.xor.b64", "b64", -1L, seq(i -> 0x1234L * (i / 2)), null)[0]);
    }

    @Test
    public void exchAndCas() {
        long[] v = seq(i -> 1000 + i);
        long[] r = contend("atom.global.exch.b32", "b32", 7, v, null);
        // the olds and the final value are the initial value and every operand, each once
        long[] all = Arrays.copyOf(r, N + 1);
        Arrays.sort(all);
        long[] want = new long[N + 1];
        want[0] = 7;
        System.arraycopy(v, 0, want, 1, N);
        Arrays.sort(want);
        assertTrue("exch olds + final are a permutation of initial + operands", Arrays.equals(want, all));
        // cas(counter, g, g + 1): only the thread holding the current value succeeds, once
        long[] cmp = seq(i -> i), swap = seq(i -> i + 1);
        r = contend("atom.global.cas.b32", "b32", 0, cmp, swap);
        assertTrue("at least the first cas succeeds", r[0] >= 1);
        assertEquals("cas of thread 0 saw 0", 0, r[1]);
        long[] r64 = contend("atom.global.cas.b64", "b64", 1L << 40, seq(i -> 1L << 40), seq(i -> (1L << 40) + 1 + i));
        int winners = 0;
        for (int i = 1; i <= N; i++) {
            if (r64[i] == 1L << 40) {
                winners++;
                assertHex("the winner's value is stored", (1L << 40) + i, r64[0]);
            }
        }
        assertEquals("exactly one cas.b64 wins", 1, winners);
    }

    @Test
    public void casLoopCountsExactlyAcrossBlocks() {
        // while (true) { old = *p; if (atom.cas(p, old, old + 1) == old) break; }: divergent retries
        String body = "  ld.param.u64 %rd1, [p0];\n"
                + "RETRY:\n  ld.volatile.global.u32 %r1, [%rd1];\n  add.u32 %r2, %r1, 1;\n"
                + "  atom.global.cas.b32 %r3, [%rd1], %r1, %r2;\n  setp.ne.u32 %p1, %r3, %r1;\n  @%p1 bra RETRY;\n"
                + "  ld.param.u64 %rd2, [p1];\n  atom.global.add.u32 %r4, [%rd2], 1;\n";
        HeapMemory m = new HeapMemory(BASE, 16);
        Ptx.launch(kernel(2, "", body), LaunchDims.linear(BLOCKS, THREADS), m, BASE, BASE + 8);
        assertEquals(N, m.getInt(BASE));
        assertEquals(N, m.getInt(BASE + 8));
    }

    @Test
    public void floatAdds() {
        long one = Ptx.f(1f);
        long[] r = contend("atom.global.add.f32", "f32", 0, seq(i -> one), null);
        assertEquals((float) N, Float.intBitsToFloat((int) r[0]), 0f);
        float[] olds = new float[N];
        for (int i = 0; i < N; i++) {
            olds[i] = Float.intBitsToFloat((int) r[1 + i]);
        }
        Arrays.sort(olds);
        for (int i = 0; i < N; i++) {
            assertEquals(i, olds[i], 0f);
        }
        long half = Ptx.d(0.5);
        long[] rd = contend("atom.global.add.f64", "f64", Ptx.d(-10), seq(i -> half), null);
        assertEquals(-10 + 0.5 * N, Double.longBitsToDouble(rd[0]), 0);
        assertSerializable("add.f64", Ptx.d(-10), seq(i -> half), rd, (a, b) -> Double.doubleToRawLongBits(Double.longBitsToDouble(a) + Double.longBitsToDouble(b)), -1L);
        long[] rr = contend("atom.global.add.f32", "f32", Ptx.f(1e8f), seq(i -> one), null);
        assertEquals("1e8 + 1 rounds back to 1e8 every time", 1e8f, Float.intBitsToFloat((int) rr[0]), 0f);
    }

    @Test
    public void globalF32AddFlushesSubnormalsSharedDoesNot() {
        // The ISA: atom.add.f32 on global memory flushes subnormal inputs and results to sign-preserving
        // zero; on shared memory it keeps them.
        String body = "  ld.param.u64 %rd1, [p0];\n  mov.b32 %f1, 0x00080000;\n"   // 2^-130
                + "  atom.global.add.f32 %f2, [%rd1], %f1;\n  ld.global.f32 %f3, [%rd1];\n"
                + "  .shared .align 4 .f32 s;\n  st.shared.f32 [s], 0f00000000;\n  atom.shared.add.f32 %f4, [s], %f1;\n"
                + "  ld.shared.f32 %f5, [s];\n  st.global.f32 [%rd1+4], %f5;\n"
                + "  mov.b32 %f6, 0x00c00000;\n  st.global.f32 [%rd1+8], %f6;\n  mov.b32 %f7, 0x80800000;\n"
                + "  atom.global.add.f32 %f8, [%rd1+8], %f7;\n";                 // 1.5 * 2^-126 - 2^-126: subnormal result
        HeapMemory m = new HeapMemory(BASE, 16);
        Ptx.launch(kernel(1, "", body), LaunchDims.linear(1, 1), m, BASE);
        assertHex("global: the subnormal operand counts as 0", 0, m.getInt(BASE) & 0xffffffffL);
        assertHex("shared: kept", 0x00080000L, m.getInt(BASE + 4) & 0xffffffffL);
        assertHex("global: the subnormal result is flushed", 0, m.getInt(BASE + 8) & 0xffffffffL);
    }

    @Test
    public void sharedAtomicsPerBlock() {
        String body = "  .shared .align 8 .b8 s[32];\n"
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, %ctaid.x;\n"
                + "  setp.eq.u32 %p1, %r1, 0;\n  @%p1 st.shared.u32 [s], 0;\n  @%p1 st.shared.u32 [s+4], 0xffffffff;\n"
                + "  @%p1 st.shared.u64 [s+8], 0;\n  @%p1 st.shared.u32 [s+16], 0;\n  @%p1 st.shared.f32 [s+20], 0f00000000;\n"
                + "  bar.sync 0;\n"
                + "  atom.shared.add.u32 %r3, [s], 1;\n"
                + "  xor.b32 %r4, %r1, 0x55;\n  atom.shared.min.u32 %r5, [s+4], %r4;\n"
                + "  cvt.u64.u32 %rd2, %r1;\n  shl.b64 %rd2, %rd2, 33;\n  red.shared.add.u64 [s+8], %rd2;\n"
                + "  atom.shared.exch.b32 %r6, [s+16], %r1;\n"
                + "  mov.b32 %f1, 0f3f000000;\n  red.shared.add.f32 [s+20], %f1;\n"
                + "  bar.sync 0;\n"
                + "  @%p1 ld.shared.u32 %r7, [s];\n  @%p1 ld.shared.u32 %r8, [s+4];\n  @%p1 ld.shared.u64 %rd3, [s+8];\n"
                + "  @%p1 ld.shared.f32 %f2, [s+20];\n"
                + "  mul.wide.u32 %rd4, %r2, 32;\n  add.s64 %rd5, %rd1, %rd4;\n"
                + "  @%p1 st.global.v2.u32 [%rd5], {%r7, %r8};\n  @%p1 st.global.u64 [%rd5+8], %rd3;\n  @%p1 st.global.f32 [%rd5+16], %f2;\n"
                // the olds of the shared add, one per thread, must be 0..THREADS-1
                + "  ld.param.u64 %rd7, [p1];\n  mad.lo.u32 %r10, %r2, " + THREADS + ", %r1;\n"
                + "  mul.wide.u32 %rd8, %r10, 4;\n  add.s64 %rd8, %rd7, %rd8;\n  st.global.u32 [%rd8], %r3;\n";
        HeapMemory m = new HeapMemory(BASE, 32 * BLOCKS + 4 * N);
        Ptx.launch(kernel(2, "", body), LaunchDims.linear(BLOCKS, THREADS), m, BASE,
                BASE + 32 * BLOCKS);
        long sumShifted = 0;
        int minXor = Integer.MAX_VALUE;
        for (int t = 0; t < THREADS; t++) {
            sumShifted += (long) t << 33;
            minXor = Math.min(minXor, t ^ 0x55);
        }
        for (int b = 0; b < BLOCKS; b++) {
            long at = BASE + 32L * b;
            assertEquals("block " + b + " add", THREADS, m.getInt(at));
            assertEquals("block " + b + " min", minXor, m.getInt(at + 4));
            assertHex("block " + b + " red.add.u64", sumShifted, m.getLong(at + 8));
            assertEquals("block " + b + " red.add.f32", 0.5f * THREADS, m.getFloat(at + 16), 0f);
            int[] olds = new int[THREADS];
            for (int t = 0; t < THREADS; t++) {
                olds[t] = m.getInt(BASE + 32L * BLOCKS + 4L * (b * THREADS + t));
            }
            Arrays.sort(olds);
            for (int t = 0; t < THREADS; t++) {
                assertEquals(t, olds[t]);
            }
        }
    }

    @Test
    public void everySharedOperation() {
        String body = "  .shared .align 16 .b8 s[64];\n"
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, %ctaid.x;\n  setp.eq.u32 %p1, %r1, 0;\n"
                + "  @%p1 st.shared.v4.u32 [s], {0, 5, 0x80000000, 0xffffffff};\n  @%p1 st.shared.v4.u32 [s+16], {0, 0x0f0f0f0f, 0, 0};\n"
                + "  @%p1 st.shared.v2.u64 [s+32], {0, 0};\n  @%p1 st.shared.f64 [s+48], 0d0000000000000000;\n  @%p1 st.shared.u32 [s+56], 0;\n"
                + "  bar.sync 0;\n"
                + "  atom.shared.inc.u32 %r3, [s], 9;\n  atom.shared.dec.u32 %r3, [s+4], 9;\n"
                + "  sub.s32 %r4, %r1, 50;\n  atom.shared.max.s32 %r3, [s+8], %r4;\n  atom.shared.and.b32 %r3, [s+12], %r1;\n"
                + "  shl.b32 %r5, 1, %r1;\n  atom.shared.or.b32 %r3, [s+16], %r5;\n  atom.shared.xor.b32 %r3, [s+20], %r1;\n"
                + "RETRY:\n  ld.volatile.shared.u32 %r6, [s+24];\n  add.u32 %r7, %r6, 3;\n  atom.shared.cas.b32 %r8, [s+24], %r6, %r7;\n"
                + "  setp.ne.u32 %p2, %r8, %r6;\n  @%p2 bra RETRY;\n"
                + "  cvt.u64.u32 %rd2, %r1;\n  add.u64 %rd2, %rd2, 0x100000000;\n  atom.shared.add.u64 %rd3, [s+32], %rd2;\n"
                + "  atom.shared.max.u64 %rd3, [s+40], %rd2;\n  atom.shared.add.f64 %fd1, [s+48], 0d3FE0000000000000;\n"
                + "  atom.shared.exch.b32 %r9, [s+56], %r1;\n"
                + "  bar.sync 0;\n"
                + "  mul.wide.u32 %rd4, %r2, 64;\n  add.s64 %rd5, %rd1, %rd4;\n"
                + "  @%p1 ld.shared.v4.u32 {%r10, %r11, %r12, %r13}, [s];\n  @%p1 st.global.v4.u32 [%rd5], {%r10, %r11, %r12, %r13};\n"
                + "  @%p1 ld.shared.v4.u32 {%r10, %r11, %r12, %r13}, [s+16];\n  @%p1 st.global.v4.u32 [%rd5+16], {%r10, %r11, %r12, %r13};\n"
                + "  @%p1 ld.shared.v2.u64 {%rd6, %rd7}, [s+32];\n  @%p1 st.global.v2.u64 [%rd5+32], {%rd6, %rd7};\n"
                + "  @%p1 ld.shared.f64 %fd2, [s+48];\n  @%p1 st.global.f64 [%rd5+48], %fd2;\n"
                + "  @%p1 ld.shared.u32 %r14, [s+56];\n  @%p1 st.global.u32 [%rd5+56], %r14;\n";
        int threads = 32;
        HeapMemory m = new HeapMemory(BASE, 64 * 4);
        Ptx.launch(kernel(1, "", body), LaunchDims.linear(4, threads), m, BASE);
        int xor = 0;
        long sum = 0;
        for (int t = 0; t < threads; t++) {
            xor ^= t;
            sum += t + (1L << 32);
        }
        for (int b = 0; b < 4; b++) {
            long at = BASE + 64L * b;
            assertEquals("inc with bound 9", threads % 10, m.getInt(at));
            assertEquals("dec with bound 9 from 5", Math.floorMod(5 - threads, 10), m.getInt(at + 4));
            assertEquals("max.s32", threads - 1 - 50, m.getInt(at + 8));
            assertEquals("and", 0, m.getInt(at + 12));
            assertEquals("or of every bit", -1, m.getInt(at + 16));
            assertEquals("xor onto 0x0f0f0f0f", 0x0f0f0f0f ^ xor, m.getInt(at + 20));
            assertEquals("cas loop", 3 * threads, m.getInt(at + 24));
            assertHex("add.u64", sum, m.getLong(at + 32));
            assertHex("max.u64", (1L << 32) + threads - 1, m.getLong(at + 40));
            assertEquals("add.f64", 0.5 * threads, m.getDouble(at + 48), 0);
            assertTrue("exch leaves one thread's value", m.getInt(at + 56) >= 0 && m.getInt(at + 56) < threads);
        }
    }

    @Test
    public void genericAddressesReachSharedAndGlobalAtomics() {
        String body = "  .shared .align 4 .u32 s;\n"
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  setp.eq.u32 %p1, %r1, 0;\n"
                + "  @%p1 st.shared.u32 [s], 100;\n  bar.sync 0;\n"
                + "  mov.u64 %rd2, s;\n  cvta.shared.u64 %rd3, %rd2;\n  atom.add.u32 %r2, [%rd3], 2;\n"
                + "  atom.add.u32 %r3, [%rd1], 3;\n  atom.cas.b32 %r5, [%rd3], 0, 1;\n"
                + "  bar.sync 0;\n  @%p1 ld.shared.u32 %r4, [s];\n  @%p1 st.global.u32 [%rd1+4], %r4;\n";
        HeapMemory m = new HeapMemory(BASE, 8);
        Ptx.launch(kernel(1, "", body), LaunchDims.linear(1, 64), m, BASE);
        assertEquals(3 * 64, m.getInt(BASE));
        assertEquals(100 + 2 * 64, m.getInt(BASE + 4));
    }

    @Test
    public void narrowAndPackedAtomics() {
        String body = "  ld.param.u64 %rd1, [p0];\n"
                + "  mov.b16 %h1, 0x3c00;\n  atom.global.add.noftz.f16 %h2, [%rd1], %h1;\n"            // f16 at offset 0
                + "  mov.b32 %r1, 0x40003c00;\n  atom.global.add.noftz.f16x2 %r2, [%rd1+4], %r1;\n"     // {hi 2.0, lo 1.0}
                + "  mov.b16 %h3, 0x3f80;\n  atom.global.add.noftz.bf16 %h4, [%rd1+2], %h3;\n"         // bf16 at offset 2
                // 16-bit cas in the upper half of a word whose lower half must stay
                + "RETRY:\n  ld.volatile.global.u16 %h5, [%rd1+10];\n  add.u16 %h6, %h5, 1;\n"
                + "  atom.global.cas.b16 %h7, [%rd1+10], %h5, %h6;\n  setp.ne.b16 %p1, %h7, %h5;\n  @%p1 bra RETRY;\n"
                + "  mov.b32 %f1, 0f3f800000;\n  mov.b32 %f2, 0f40000000;\n"
                + "  atom.global.add.v2.f32 {%f3, %f4}, [%rd1+16], {%f1, %f2};\n"
                + "  red.global.add.u32 [%rd1+24], 1;\n";
        HeapMemory m = new HeapMemory(BASE, 32);
        m.store(BASE + 8, 2, 0xbeef);
        Ptx.launch(kernel(1, "", body), LaunchDims.linear(8, 128), m, BASE);
        int n = 8 * 128;
        assertHex("f16 sum of 1024 ones = 1024.0", 0x6400, m.load(BASE, 2));
        // bf16 has 8 significant bits: 256 + 1 is a tie that rounds back to 256, so the count stops there
        assertHex("bf16 sum of 1024 ones stops at 256.0", 0x4380, m.load(BASE + 2, 2));
        assertHex("f16x2 sums {2048.0, 1024.0}", 0x68006400L, m.load(BASE + 4, 4));
        assertHex("b16 cas counter", n, m.load(BASE + 10, 2));
        assertHex("the neighbouring half is untouched", 0xbeef, m.load(BASE + 8, 2));
        assertEquals("v2.f32 element 0", n, m.getFloat(BASE + 16), 0f);
        assertEquals("v2.f32 element 1", 2f * n, m.getFloat(BASE + 20), 0f);
        assertEquals(n, m.getInt(BASE + 24));
    }
}
