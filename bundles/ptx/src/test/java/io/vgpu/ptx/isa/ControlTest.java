package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.BASE;
import static io.vgpu.ptx.isa.Ptx.EXEC;
import static io.vgpu.ptx.isa.Ptx.kernel;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import io.vgpu.ptx.PtxExecutor;
import org.junit.Test;

/**
 * Divergence and reconvergence (if/else, nesting, per-lane loops, break/continue, early exit before a
 * barrier), calls to .func with parameters and results, named barriers with thread counts,
 * bar.red, trap, and the watchdog.
 */
public class ControlTest {
    static final int SLOTS = 4;

    /** Runs a body over {@code threads} threads of {@code blocks} blocks; %r1 = %tid.x, %r2 = %laneid, %rd9 = the row. */
    static int[][] run(int blocks, int threads, String decls, String body) {
        String full = "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, %laneid;\n"
                + "  mov.u32 %r29, %ctaid.x;\n  mad.lo.u32 %r30, %r29, %ntid.x, %r1;\n"
                + "  mul.wide.u32 %rd2, %r30, " + (4 * SLOTS) + ";\n  add.s64 %rd9, %rd1, %rd2;\n" + body;
        int n = blocks * threads;
        HeapMemory m = new HeapMemory(BASE, 4 * SLOTS * n);
        for (int i = 0; i < SLOTS * n; i++) {
            m.putInts(BASE + 4L * i, 0xdeadbeef);
        }
        Ptx.launch(kernel(1, decls, full), LaunchDims.linear(blocks, threads), m, BASE);
        int[][] out = new int[n][SLOTS];
        for (int t = 0; t < n; t++) {
            for (int s = 0; s < SLOTS; s++) {
                out[t][s] = m.getInt(BASE + 4L * (SLOTS * t + s));
            }
        }
        return out;
    }

    @Test
    public void ifElseAndNestedBranchesReconverge() {
        int[][] out = run(1, 64, "", ""
                + "  and.b32 %r3, %r1, 1;\n  setp.eq.u32 %p1, %r3, 1;\n  @%p1 bra THEN;\n"
                + "  mul.lo.u32 %r4, %r1, 2;\n  activemask.b32 %r5;\n  bra.uni ENDIF;\n"
                + "THEN:\n  mul.lo.u32 %r4, %r1, 3;\n  activemask.b32 %r5;\n"
                + "ENDIF:\n  activemask.b32 %r6;\n"
                // nested: lane < 16 { lane < 8 { a } else { b } } else { lane >= 24 { c } }
                + "  mov.u32 %r7, 0;\n  setp.ge.u32 %p2, %r2, 16;\n  @%p2 bra OUTER_ELSE;\n"
                + "  setp.ge.u32 %p3, %r2, 8;\n  @%p3 bra INNER_ELSE;\n  mov.u32 %r7, 1;\n  bra.uni INNER_END;\n"
                + "INNER_ELSE:\n  mov.u32 %r7, 2;\n  activemask.b32 %r8;\n  shfl.sync.idx.b32 %r7, %r2, 15, 0x1f, %r8;\n"
                + "INNER_END:\n  bra.uni OUTER_END;\n"
                + "OUTER_ELSE:\n  setp.lt.u32 %p4, %r2, 24;\n  @%p4 bra OUTER_END;\n  mov.u32 %r7, 3;\n"
                + "OUTER_END:\n  activemask.b32 %r9;\n  add.u32 %r7, %r7, %r9;\n"
                + "  st.global.v4.u32 [%rd9], {%r4, %r5, %r6, %r7};\n");
        for (int t = 0; t < 64; t++) {
            int l = t & 31;
            boolean odd = (t & 1) == 1;
            assertEquals(odd ? 3 * t : 2 * t, out[t][0]);
            assertEquals(odd ? 0xaaaaaaaa : 0x55555555, out[t][1]);
            assertEquals("reconverged after if/else", -1, out[t][2]);
            int v = l < 8 ? 1 : l < 16 ? 15 : l >= 24 ? 3 : 0;
            assertEquals("nested, lane " + l, v - 1, out[t][3]);
        }
    }

    @Test
    public void loopsWithPerLaneTripCountsBreakAndContinue() {
        int[][] out = run(2, 64, "", ""
                // for (k = 0; k < tid % 7; k++) acc += k * tid + 1
                + "  rem.u32 %r3, %r1, 7;\n  mov.u32 %r4, 0;\n  mov.u32 %r5, 0;\n"
                + "  setp.eq.u32 %p1, %r3, 0;\n  @%p1 bra DONE1;\n"
                + "LOOP1:\n  mad.lo.u32 %r6, %r4, %r1, 1;\n  add.u32 %r5, %r5, %r6;\n  add.u32 %r4, %r4, 1;\n"
                + "  setp.lt.u32 %p2, %r4, %r3;\n  @%p2 bra LOOP1;\n"
                + "DONE1:\n  activemask.b32 %r7;\n"
                // for (k = 0; k < 10; k++) { if (k % 3 == 0) continue; if (k == tid % 8 + 2) break; acc2 += k; }
                + "  mov.u32 %r8, 0;\n  mov.u32 %r9, 0;\n  and.b32 %r10, %r1, 7;\n  add.u32 %r10, %r10, 2;\n"
                + "LOOP2:\n  rem.u32 %r11, %r8, 3;\n  setp.eq.u32 %p3, %r11, 0;\n  @%p3 bra CONT;\n"
                + "  setp.eq.u32 %p4, %r8, %r10;\n  @%p4 bra BREAK;\n  add.u32 %r9, %r9, %r8;\n"
                + "CONT:\n  add.u32 %r8, %r8, 1;\n  setp.lt.u32 %p5, %r8, 10;\n  @%p5 bra LOOP2;\n"
                + "BREAK:\n  activemask.b32 %r12;\n"
                // a value made in the loop, read from the neighbour lane after it
                + "  shfl.sync.down.b32 %r13, %r5, 1, 0x1f, 0xffffffff;\n"
                + "  st.global.v4.u32 [%rd9], {%r5, %r9, %r7, %r13};\n  st.global.u32 [%rd9+8], %r12;\n");
        for (int g = 0; g < 128; g++) {
            int t = g % 64;
            assertEquals("loop 1, thread " + t, acc(t), out[g][0]);
            int acc2 = 0;
            for (int k = 0; k < 10; k++) {
                if (k % 3 == 0) {
                    continue;
                }
                if (k == t % 8 + 2) {
                    break;
                }
                acc2 += k;
            }
            assertEquals("loop 2, thread " + t, acc2, out[g][1]);
            assertEquals("reconverged after both loops", -1, out[g][2]);
            int lane = t & 31;
            assertEquals("shfl after the loop", acc(lane == 31 ? t : t + 1), out[g][3]);
        }
    }

    static int acc(int t) {
        int a = 0;
        for (int k = 0; k < t % 7; k++) {
            a += k * t + 1;
        }
        return a;
    }

    @Test
    public void threadsThatExitEarlyDoNotHoldUpALaterBarrier() {
        // tid % 3 == 0 exits, and all of warp 2; the rest meet at bar.sync and read their neighbour's slot
        int[][] out = run(3, 128, ".shared .align 4 .u32 s[128];\n", ""
                + "  rem.u32 %r3, %r1, 3;\n  setp.eq.u32 %p1, %r3, 0;\n  @%p1 exit;\n"
                + "  shr.u32 %r4, %r1, 5;\n  setp.eq.u32 %p2, %r4, 2;\n  @%p2 ret;\n"
                + "  mov.u32 %r5, s;\n  shl.b32 %r6, %r1, 2;\n  add.u32 %r7, %r5, %r6;\n  mad.lo.u32 %r8, %r1, 10, %r29;\n"
                + "  st.shared.u32 [%r7], %r8;\n  bar.sync 0;\n"
                + "  add.u32 %r9, %r1, 1;\n  and.b32 %r9, %r9, 127;\n  shl.b32 %r9, %r9, 2;\n  add.u32 %r9, %r5, %r9;\n"
                + "  ld.shared.u32 %r10, [%r9];\n  bar.sync 0;\n  st.global.u32 [%rd9], %r10;\n");
        for (int b = 0; b < 3; b++) {
            for (int t = 0; t < 128; t++) {
                int got = out[b * 128 + t][0];
                boolean gone = t % 3 == 0 || t / 32 == 2;
                int n = (t + 1) % 128;
                boolean nGone = n % 3 == 0 || n / 32 == 2;
                int want = gone ? 0xdeadbeef : nGone ? 0 : 10 * n + b;
                assertEquals("block " + b + " thread " + t, want, got);
            }
        }
    }

    static final String FUNCS = ""
            + ".func (.param .b32 r) mix(.param .b32 a, .param .b32 b, .param .b64 c)\n{\n"
            + "  .reg .b32 %t<8>;\n  .reg .b64 %u<4>;\n  .reg .pred %q9;\n"
            + "  ld.param.b32 %t1, [a];\n  ld.param.b32 %t2, [b];\n  ld.param.b64 %u1, [c];\n"
            + "  cvt.u32.u64 %t3, %u1;\n  mad.lo.u32 %t4, %t1, %t2, %t3;\n"
            + "  setp.gt.u32 %q9, %t1, 40;\n  @%q9 bra BIG;\n  st.param.b32 [r], %t4;\n  ret;\n"
            + "BIG:\n  neg.s32 %t4, %t4;\n  st.param.b32 [r], %t4;\n  ret;\n}\n"
            + ".func (.param .f64 r) scaled(.param .f32 x, .param .align 8 .b8 s[16])\n{\n"
            + "  .reg .f32 %g<4>;\n  .reg .f64 %e<4>;\n  .reg .b32 %t<4>;\n  .reg .pred %q<2>;\n  .local .align 8 .b8 depot[8];\n"
            + "  ld.param.f32 %g1, [x];\n  ld.param.f64 %e1, [s+8];\n  ld.param.b32 %t1, [s];\n"
            + "  cvt.f64.f32 %e2, %g1;\n  st.local.f64 [depot], %e2;\n  ld.local.f64 %e3, [depot];\n"
            + "  mul.f64 %e3, %e3, %e1;\n"
            + "  { .param .b32 inner_a; .param .b32 inner_b; .param .b64 inner_c; .param .b32 inner_r;\n"
            + "    st.param.b32 [inner_a], %t1;\n  st.param.b32 [inner_b], 2;\n  st.param.b64 [inner_c], 1;\n"
            + "    call.uni (inner_r), mix, (inner_a, inner_b, inner_c);\n  ld.param.b32 %t2, [inner_r];\n  }\n"
            + "  cvt.rn.f64.s32 %e1, %t2;\n  add.f64 %e3, %e3, %e1;\n  st.param.f64 [r], %e3;\n  ret;\n}\n"
            + ".func bump(.param .b64 p)\n{\n  .reg .b64 %v<2>;\n  .reg .b32 %w<2>;\n"
            + "  ld.param.b64 %v1, [p];\n  atom.global.add.u32 %w1, [%v1], 1;\n  ret;\n}\n";

    @Test
    public void callsPassParametersAndReturnResults() {
        int[][] out = run(1, 64, FUNCS, ""
                + "  { .param .b32 a0; .param .b32 b0; .param .b64 c0; .param .b32 r0;\n"
                + "    st.param.b32 [a0], %r1;\n    st.param.b32 [b0], 3;\n    cvt.u64.u32 %rd3, %r2;\n    st.param.b64 [c0], %rd3;\n"
                + "    call.uni (r0), mix, (a0, b0, c0);\n    ld.param.b32 %r3, [r0];\n  }\n"
                // only odd threads call scaled(), with a struct argument
                + "  mov.u32 %r4, 0;\n  and.b32 %r5, %r1, 1;\n  setp.eq.u32 %p1, %r5, 0;\n  @%p1 bra SKIP;\n"
                + "  { .param .f32 x1; .param .align 8 .b8 s1[16]; .param .f64 r1;\n"
                + "    cvt.rn.f32.u32 %f1, %r1;\n    st.param.f32 [x1], %f1;\n    st.param.b32 [s1], %r1;\n"
                + "    st.param.f64 [s1+8], 0d3FF8000000000000;\n"   // 1.5
                + "    call (r1), scaled, (x1, s1);\n    ld.param.f64 %fd1, [r1];\n  }\n"
                + "  cvt.rzi.s32.f64 %r4, %fd1;\n"
                + "SKIP:\n  activemask.b32 %r6;\n"
                + "  { .param .b64 p2;\n    add.s64 %rd4, %rd1, 0;\n    st.param.b64 [p2], %rd4;\n    call.uni bump, (p2);\n  }\n"
                + "  st.global.u32 [%rd9+4], %r3;\n  st.global.u32 [%rd9+8], %r4;\n  st.global.u32 [%rd9+12], %r6;\n");
        for (int t = 0; t < 64; t++) {
            int l = t & 31;
            int mix = t * 3 + l;
            assertEquals("mix(" + t + ", 3, " + l + ")", t > 40 ? -mix : mix, out[t][1]);
            if ((t & 1) == 1) {
                int inner = t * 2 + 1;
                int want = (int) (t * 1.5 + (t > 40 ? -inner : inner));
                assertEquals("scaled(" + t + ")", want, out[t][2]);
            } else {
                assertEquals(0, out[t][2]);
            }
            assertEquals("reconverged after the divergent call", -1, out[t][3]);
        }
        assertEquals("bump ran once per thread", 64 + 0xdeadbeef, out[0][0]);
    }

    @Test
    public void namedBarriersWithThreadCountsProducerConsumer() {
        // warps 0-1 produce into buf and bar.arrive 1; warps 2-3 bar.sync 1 then consume and bar.arrive 2;
        // the producers bar.sync 2 before reading what the consumers wrote back. 128 threads per barrier.
        int[][] out = run(2, 128, ".shared .align 4 .u32 buf[64];\n.shared .align 4 .u32 back[64];\n", ""
                + "  shr.u32 %r3, %r1, 5;\n  mov.u32 %r4, buf;\n  mov.u32 %r5, back;\n  setp.ge.u32 %p1, %r3, 2;\n  @%p1 bra CONSUMER;\n"
                + "  shl.b32 %r6, %r1, 2;\n  add.u32 %r7, %r4, %r6;\n  mad.lo.u32 %r8, %r1, 7, %r29;\n  st.shared.u32 [%r7], %r8;\n"
                + "  bar.arrive 1, 128;\n  mov.u32 %r20, 2;\n  barrier.sync %r20, 128;\n"
                + "  add.u32 %r9, %r5, %r6;\n  ld.shared.u32 %r10, [%r9];\n  st.global.u32 [%rd9], %r10;\n  bra.uni END;\n"
                + "CONSUMER:\n  bar.sync 1, 128;\n  sub.u32 %r11, %r1, 64;\n  shl.b32 %r12, %r11, 2;\n  add.u32 %r13, %r4, %r12;\n"
                + "  ld.shared.u32 %r14, [%r13];\n  st.global.u32 [%rd9], %r14;\n  add.u32 %r15, %r14, 1000;\n"
                + "  add.u32 %r16, %r5, %r12;\n  st.shared.u32 [%r16], %r15;\n  bar.arrive 2, 128;\n"
                + "END:\n"
                // two disjoint groups of 64 on barriers 3 and 4
                + "  setp.lt.u32 %p2, %r1, 64;\n  @%p2 bar.sync 3, 64;\n  @!%p2 bar.sync 4, 64;\n  barrier.sync.aligned 0;\n"
                + "  st.global.u32 [%rd9+4], 1;\n");
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < 128; t++) {
                int[] row = out[b * 128 + t];
                if (t < 64) {
                    assertEquals("producer " + t + " reads back", 7 * t + b + 1000, row[0]);
                } else {
                    assertEquals("consumer " + t, 7 * (t - 64) + b, row[0]);
                }
                assertEquals(1, row[1]);
            }
        }
    }

    @Test
    public void barrierReductions() {
        int[][] out = run(2, 128, "", ""
                + "  rem.u32 %r3, %r1, 5;\n  setp.eq.u32 %p1, %r3, 0;\n  bar.red.popc.u32 %r4, 0, %p1;\n"
                + "  setp.lt.u32 %p2, %r1, 128;\n  bar.red.and.pred %p3, 1, %p2;\n"
                + "  setp.lt.u32 %p4, %r1, 127;\n  bar.red.and.pred %p5, 2, %p4;\n"
                + "  setp.eq.u32 %p6, %r1, 77;\n  bar.red.or.pred %p7, 3, %p6;\n  bar.red.or.pred %p8, 4, !%p2;\n"
                + "  bar.red.popc.u32 %r5, 5, !%p1;\n  barrier.red.popc.u32 %r6, 6, 128, %p6;\n"
                + "  selp.u32 %r7, 1, 0, %p3;\n  selp.u32 %r8, 2, 0, %p5;\n  or.b32 %r7, %r7, %r8;\n  selp.u32 %r8, 4, 0, %p7;\n"
                + "  or.b32 %r7, %r7, %r8;\n  selp.u32 %r8, 8, 0, %p8;\n  or.b32 %r7, %r7, %r8;\n"
                + "  st.global.v4.u32 [%rd9], {%r4, %r7, %r5, %r6};\n");
        for (int g = 0; g < 256; g++) {
            assertEquals("popc of tid % 5 == 0 over 128 threads", 26, out[g][0]);
            assertEquals("and(true) and(not all), or(one) or(none)", 1 | 4, out[g][1]);
            assertEquals("popc of the complement", 102, out[g][2]);
            assertEquals(1, out[g][3]);
        }
    }

    @Test
    public void trapFaultsTheLaunch() {
        HeapMemory m = new HeapMemory(BASE, 64);
        KernelFault f = Ptx.fault(EXEC, kernel(1, "", ""
                + "  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, %ctaid.x;\n  setp.eq.u32 %p1, %r1, 17;\n  setp.eq.u32 %p2, %r2, 5;\n"
                + "  and.pred %p3, %p1, %p2;\n  @%p3 trap;\n"), LaunchDims.linear(8, 64), m, BASE);
        assertEquals(KernelFault.Kind.TRAP, f.kind());
        assertEquals(719, f.cudaError());
        // a trap no lane reaches does nothing
        Ptx.launch(kernel(1, "", "  mov.u32 %r1, %tid.x;\n  setp.gt.u32 %p1, %r1, 1000;\n  @%p1 trap;\n"
                + "  ld.param.u64 %rd1, [p0];\n  st.global.u32 [%rd1], 5;\n"), LaunchDims.linear(2, 32), m, BASE);
        assertEquals(5, m.getInt(BASE));
    }

    @Test
    public void aBarrierThatCanNeverCompleteFails() {
        HeapMemory m = new HeapMemory(BASE, 64);
        // warp 0 waits on barrier 1 and warp 1 on barrier 2, each for all 64 threads: never completes
        KernelFault f = Ptx.fault(new PtxExecutor(1, 2000), kernel(1, "", ""
                + "  mov.u32 %r1, %tid.x;\n  setp.lt.u32 %p1, %r1, 32;\n  @%p1 bar.sync 1, 64;\n  @!%p1 bar.sync 2, 64;\n"),
                LaunchDims.linear(1, 64), m, BASE);
        assertTrue(f.kind().toString(), f.kind() == KernelFault.Kind.TRAP || f.kind() == KernelFault.Kind.TIMEOUT);
    }

    @Test
    public void theWatchdogStopsAnEndlessKernel() {
        HeapMemory m = new HeapMemory(BASE, 64);
        try (PtxExecutor exec = new PtxExecutor(2, 150)) {
            long start = System.nanoTime();
            KernelFault f = Ptx.fault(exec, kernel(1, "", "  ld.param.u64 %rd1, [p0];\nSPIN:\n  ld.volatile.global.u32 %r1, [%rd1];\n"
                    + "  setp.ne.u32 %p1, %r1, 12345;\n  @%p1 bra SPIN;\n"), LaunchDims.linear(4, 64), m, BASE);
            assertEquals(KernelFault.Kind.TIMEOUT, f.kind());
            assertEquals(702, f.cudaError());
            assertTrue("stopped soon after the limit", System.nanoTime() - start < 5_000_000_000L);
            f = Ptx.fault(exec, kernel(1, "", "SELF:\n  bra.uni SELF;\n"), LaunchDims.linear(1, 32), m, BASE);
            assertEquals(KernelFault.Kind.TIMEOUT, f.kind());
            // the executor still runs kernels afterwards
            Ptx.launch(exec, kernel(1, "", "  ld.param.u64 %rd1, [p0];\n  st.global.u32 [%rd1+4], 9;\n"), LaunchDims.linear(1, 1), m, BASE);
            assertEquals(9, m.getInt(BASE + 4));
        }
    }
}
