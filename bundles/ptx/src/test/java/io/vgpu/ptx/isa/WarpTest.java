package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.BASE;
import static io.vgpu.ptx.isa.Ptx.assertHex;
import static io.vgpu.ptx.isa.Ptx.kernel;
import static org.junit.Assert.assertEquals;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.LaunchDims;
import org.junit.Test;

/** shfl.sync in every mode with widths and clamps, vote, match, redux, activemask and elect, in converged and divergent code. */
public class WarpTest {
    static final int SLOTS = 8;

    /**
     * Runs a body in a block of {@code threads}; %r1 is %tid.x, %r2 %laneid and %rd9 the thread's
     * SLOTS-word output row. Returns the rows.
     */
    static int[][] run(int threads, String body) {
        String full = "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, %laneid;\n"
                + "  mul.wide.u32 %rd2, %r1, " + (4 * SLOTS) + ";\n  add.s64 %rd9, %rd1, %rd2;\n" + body;
        HeapMemory m = new HeapMemory(BASE, 4 * SLOTS * threads);
        for (int i = 0; i < SLOTS * threads; i++) {
            m.putInts(BASE + 4L * i, 0xdeadbeef);
        }
        Ptx.launch(kernel(1, "", full), LaunchDims.linear(1, threads), m, BASE);
        int[][] out = new int[threads][SLOTS];
        for (int t = 0; t < threads; t++) {
            for (int s = 0; s < SLOTS; s++) {
                out[t][s] = m.getInt(BASE + 4L * (SLOTS * t + s));
            }
        }
        return out;
    }

    /** The PTX ISA's shfl.sync pseudocode: {source lane, pval}. */
    static int[] shfl(String mode, int lane, int b, int c) {
        int bval = b & 0x1f, cval = c & 0x1f, segmask = (c >>> 8) & 0x1f;
        int maxLane = (lane & segmask) | (cval & ~segmask), minLane = lane & segmask;
        int j;
        boolean pval;
        switch (mode) {
            case "up": j = lane - bval; pval = j >= maxLane; break;
            case "down": j = lane + bval; pval = j <= maxLane; break;
            case "bfly": j = lane ^ bval; pval = j <= maxLane; break;
            default: j = minLane | (bval & ~segmask); pval = j <= maxLane;
        }
        return new int[] {pval ? j : lane, pval ? 1 : 0};
    }

    @Test
    public void shuffleModesWidthsAndClamps() {
        // value of lane l in warp w: 1000 w + 10 l; each case: mode, b, c
        Object[][] cases = {
            {"up", 1, 0}, {"up", 3, 0x1000}, {"down", 2, 0x181f}, {"down", 1, 0x0f}, {"bfly", 4, 0x101f}, {"bfly", 16, 0x1f},
            {"idx", 3, 0x181f}, {"idx", 35, 0x1f}, {"down", 0, 0x1f}};
        StringBuilder b = new StringBuilder("  shr.u32 %r3, %r1, 5;\n  mul.lo.u32 %r3, %r3, 1000;\n  mad.lo.u32 %r4, %r2, 10, %r3;\n");
        for (int i = 0; i < cases.length; i++) {
            b.append("  shfl.sync.").append(cases[i][0]).append(".b32 %r5|%p1, %r4, ").append(cases[i][1]).append(", ")
                    .append(cases[i][2]).append(", 0xffffffff;\n  selp.u32 %r6, 0x10000, 0, %p1;\n  or.b32 %r5, %r5, %r6;\n")
                    .append("  st.global.u32 [%rd9+").append(4 * (i % SLOTS)).append("], %r5;\n");
            if (i == SLOTS - 1) {
                break;
            }
        }
        int[][] out = run(64, b.toString());
        for (int t = 0; t < 64; t++) {
            int lane = t & 31, w = t >> 5;
            for (int i = 0; i < SLOTS; i++) {
                int[] s = shfl((String) cases[i][0], lane, (Integer) cases[i][1], (Integer) cases[i][2]);
                assertHex(cases[i][0] + " b=" + cases[i][1] + " c=0x" + Integer.toHexString((Integer) cases[i][2]) + " lane " + lane,
                        (1000 * w + 10 * s[0]) | (s[1] << 16), out[t][i] & 0xffffffffL);
            }
        }
        // hand-checked values of the table above, lane 0 / 7 / 31 of warp 0
        assertEquals("up 1: lane 0 keeps its own, p false", 0, out[0][0]);
        assertEquals("up 1: lane 7 reads lane 6", 60 | 0x10000, out[7][0]);
        assertEquals("down 2 width 8: lane 7 is past its segment", 70, out[7][2]);
        assertEquals("down 2 width 8: lane 5 reads 7", 70 | 0x10000, out[5][2]);
        assertEquals("down 1 clamp 15: lane 15 keeps its own", 150, out[15][3]);
        assertEquals("bfly 16: lane 31 reads 15", 150 | 0x10000, out[31][5]);
        assertEquals("idx 3 width 8: lane 13 reads 11", 110 | 0x10000, out[13][6]);
        assertEquals("idx 35 (only the low 5 bits count): lane 20 reads 3", 30 | 0x10000, out[20][7]);
    }

    @Test
    public void shuffleWithPerLaneSourcesAndOtherTypes() {
        int[][] out = run(32, ""
                + "  mov.u32 %r3, 31;\n  sub.u32 %r3, %r3, %r2;\n"               // reverse
                + "  mul.lo.u32 %r4, %r2, %r2;\n  shfl.sync.idx.b32 %r5, %r4, %r3, 0x1f, 0xffffffff;\n"
                + "  st.global.u32 [%rd9], %r5;\n"
                + "  cvt.rn.f32.u32 %f1, %r2;\n  shfl.sync.bfly.b32 %f2, %f1, 1, 0x1f, 0xffffffff;\n  st.global.f32 [%rd9+4], %f2;\n"
                // a 64-bit value moves as two 32-bit halves, as nvcc writes it
                + "  cvt.u64.u32 %rd3, %r2;\n  shl.b64 %rd3, %rd3, 40;\n  mov.b64 {%r6, %r7}, %rd3;\n"
                + "  shfl.sync.down.b32 %r8, %r6, 1, 0x1f, 0xffffffff;\n  shfl.sync.down.b32 %r9, %r7, 1, 0x1f, 0xffffffff;\n"
                + "  mov.b64 %rd4, {%r8, %r9};\n  st.global.u64 [%rd9+8], %rd4;\n");
        for (int l = 0; l < 32; l++) {
            assertEquals((31 - l) * (31 - l), out[l][0]);
            assertEquals((float) (l ^ 1), Float.intBitsToFloat(out[l][1]), 0f);
            long v = ((long) out[l][3] << 32) | (out[l][2] & 0xffffffffL);
            assertEquals((long) Math.min(l + 1, 31) << 40, v);
        }
    }

    @Test
    public void voteInDivergentCode() {
        int[][] out = run(64, ""
                + "  rem.u32 %r3, %r2, 3;\n  setp.ne.u32 %p1, %r3, 0;\n  @%p1 bra SKIP;\n"
                // lanes 0, 3, 6, ... only
                + "  activemask.b32 %r4;\n  st.global.u32 [%rd9], %r4;\n"
                + "  setp.lt.u32 %p2, %r2, 16;\n  vote.sync.ballot.b32 %r5, %p2, %r4;\n  st.global.u32 [%rd9+4], %r5;\n"
                + "  and.b32 %r6, %r2, 1;\n  setp.eq.u32 %p3, %r6, 0;\n  vote.sync.all.pred %p4, %p3, %r4;\n"
                + "  vote.sync.any.pred %p5, %p3, %r4;\n  vote.sync.uni.pred %p6, %p3, %r4;\n"
                + "  setp.lt.u32 %p7, %r2, 100;\n  vote.sync.all.pred %p8, %p7, %r4;\n  vote.sync.uni.pred %p9, %p7, %r4;\n"
                + "  vote.sync.any.pred %p10, !%p7, %r4;\n  vote.sync.ballot.b32 %r7, !%p2, %r4;\n  st.global.u32 [%rd9+8], %r7;\n"
                + "  selp.u32 %r8, 1, 0, %p4;\n  selp.u32 %r9, 2, 0, %p5;\n  or.b32 %r8, %r8, %r9;\n  selp.u32 %r9, 4, 0, %p6;\n"
                + "  or.b32 %r8, %r8, %r9;\n  selp.u32 %r9, 8, 0, %p8;\n  or.b32 %r8, %r8, %r9;\n  selp.u32 %r9, 16, 0, %p9;\n"
                + "  or.b32 %r8, %r8, %r9;\n  selp.u32 %r9, 32, 0, %p10;\n  or.b32 %r8, %r8, %r9;\n  st.global.u32 [%rd9+12], %r8;\n"
                + "SKIP:\n  activemask.b32 %r10;\n  st.global.u32 [%rd9+16], %r10;\n"
                + "  setp.gt.u32 %p11, %r1, 40;\n  vote.sync.ballot.b32 %r11, %p11, 0xffffffff;\n  st.global.u32 [%rd9+20], %r11;\n");
        int every3 = 0;
        for (int l = 0; l < 32; l += 3) {
            every3 |= 1 << l;
        }
        for (int t = 0; t < 64; t++) {
            int l = t & 31;
            if (l % 3 == 0) {
                assertHex("activemask in the branch", every3 & 0xffffffffL, out[t][0] & 0xffffffffL);
                assertHex("ballot(lane < 16)", every3 & 0xffff, out[t][1] & 0xffffffffL);
                assertHex("ballot(!(lane < 16))", every3 & 0xffff0000L, out[t][2] & 0xffffffffL);
                // even lanes among 0,3,..,30: all false, any true, uni false; lane < 100: all and uni true; any(!) false
                assertEquals("vote results lane " + l, 2 | 8 | 16, out[t][3]);
            } else {
                assertEquals("lanes outside the branch wrote nothing", 0xdeadbeef, out[t][0]);
            }
            assertEquals("reconverged", -1, out[t][4]);
            assertHex("ballot per warp", t < 32 ? 0 : 0xfffffe00L, out[t][5] & 0xffffffffL);
        }
    }

    @Test
    public void matchAndRedux() {
        int[][] out = run(64, ""
                + "  shr.u32 %r3, %r2, 2;\n  match.any.sync.b32 %r4, %r3, 0xffffffff;\n  st.global.u32 [%rd9], %r4;\n"
                + "  shr.u32 %r5, %r1, 5;\n  match.all.sync.b32 %r6|%p1, %r5, 0xffffffff;\n  selp.u32 %r7, 1, 0, %p1;\n"
                + "  st.global.u32 [%rd9+4], %r6;\n  st.global.u32 [%rd9+8], %r7;\n"
                + "  match.all.sync.b32 %r8|%p2, %r3, 0xffffffff;\n  selp.u32 %r9, 1, 0, %p2;\n  st.global.u32 [%rd9+12], %r8;\n  st.global.u32 [%rd9+16], %r9;\n"
                + "  cvt.u64.u32 %rd3, %r3;\n  shl.b64 %rd3, %rd3, 35;\n  and.b32 %r10, %r2, 1;\n  cvt.u64.u32 %rd4, %r10;\n"
                + "  or.b64 %rd3, %rd3, %rd4;\n  match.any.sync.b64 %r11, %rd3, 0xffffffff;\n  st.global.u32 [%rd9+20], %r11;\n");
        for (int t = 0; t < 64; t++) {
            int l = t & 31;
            assertHex("match.any: my group of four", 0xfL << (4 * (l / 4)), out[t][0] & 0xffffffffL);
            assertEquals("match.all of the warp number: all lanes", -1, out[t][1]);
            assertEquals(1, out[t][2]);
            assertEquals("match.all of lane/4: not all equal", 0, out[t][3]);
            assertEquals(0, out[t][4]);
            int mask = 0;
            for (int k = 0; k < 32; k++) {
                if (k / 4 == l / 4 && (k & 1) == (l & 1)) {
                    mask |= 1 << k;
                }
            }
            assertHex("match.any.b64 compares all 64 bits", mask & 0xffffffffL, out[t][5] & 0xffffffffL);
        }
        int[][] red = run(64, ""
                + "  mul.lo.u32 %r3, %r2, %r2;\n  sub.u32 %r3, %r3, 100;\n"            // lane^2 - 100
                + "  redux.sync.add.u32 %r4, %r3, 0xffffffff;\n  redux.sync.min.s32 %r5, %r3, 0xffffffff;\n"
                + "  redux.sync.min.u32 %r6, %r3, 0xffffffff;\n  redux.sync.max.s32 %r7, %r3, 0xffffffff;\n"
                + "  redux.sync.max.u32 %r8, %r3, 0xffffffff;\n  add.u32 %r20, %r2, 1;\n"
                + "  redux.sync.and.b32 %r9, %r20, 0xffffffff;\n  redux.sync.or.b32 %r10, %r20, 0xffffffff;\n"
                + "  redux.sync.xor.b32 %r11, %r20, 0xffffffff;\n"
                + "  st.global.v4.u32 [%rd9], {%r4, %r5, %r6, %r7};\n  st.global.v4.u32 [%rd9+16], {%r8, %r9, %r10, %r11};\n");
        int sum = 0, smin = Integer.MAX_VALUE, smax = Integer.MIN_VALUE, and = -1, or = 0, xor = 0;
        long umin = 0xffffffffL, umax = 0;
        for (int l = 0; l < 32; l++) {
            int v = l * l - 100;
            sum += v;
            smin = Math.min(smin, v);
            smax = Math.max(smax, v);
            umin = Math.min(umin, v & 0xffffffffL);
            umax = Math.max(umax, v & 0xffffffffL);
            and &= l + 1;
            or |= l + 1;
            xor ^= l + 1;
        }
        for (int t = 0; t < 64; t++) {
            assertEquals(sum, red[t][0]);
            assertEquals(smin, red[t][1]);
            assertHex("min.u32", umin, red[t][2] & 0xffffffffL);
            assertEquals(smax, red[t][3]);
            assertHex("max.u32", umax, red[t][4] & 0xffffffffL);
            assertEquals(and, red[t][5]);
            assertEquals(or, red[t][6]);
            assertEquals(xor, red[t][7]);
        }
    }

    @Test
    public void divergentMatchReduxAndActiveMask() {
        int[][] out = run(32, ""
                + "  and.b32 %r3, %r2, 1;\n  setp.eq.u32 %p1, %r3, 1;\n  @%p1 bra ODD;\n"
                + "  activemask.b32 %r4;\n  redux.sync.add.u32 %r5, %r2, %r4;\n  shr.u32 %r6, %r2, 3;\n"
                + "  match.any.sync.b32 %r7, %r6, %r4;\n  bra.uni JOIN;\n"
                + "ODD:\n  activemask.b32 %r4;\n  redux.sync.max.u32 %r5, %r2, %r4;\n  match.any.sync.b32 %r7, %r3, %r4;\n"
                + "JOIN:\n  activemask.b32 %r8;\n  st.global.v4.u32 [%rd9], {%r4, %r5, %r7, %r8};\n"
                + "  elect.sync %r9|%p2, 0xffffffff;\n  selp.u32 %r10, 1, 0, %p2;\n  st.global.v2.u32 [%rd9+16], {%r9, %r10};\n"
                + "  setp.ge.u32 %p3, %r2, 20;\n  @%p3 bra END;\n  activemask.b32 %r11;\n  elect.sync %r12|%p4, %r11;\n"
                + "  @%p4 st.global.u32 [%rd9+24], %r12;\nEND:\n");
        int evenSum = 0;
        for (int l = 0; l < 32; l += 2) {
            evenSum += l;
        }
        for (int l = 0; l < 32; l++) {
            boolean odd = (l & 1) == 1;
            assertHex("activemask lane " + l, odd ? 0xaaaaaaaaL : 0x55555555L, out[l][0] & 0xffffffffL);
            assertEquals("redux over the active lanes only", odd ? 31 : evenSum, out[l][1]);
            long group = odd ? 0xaaaaaaaaL : 0x55L << (8 * (l / 8));
            assertHex("match.any among the active lanes", group, out[l][2] & 0xffffffffL);
            assertEquals("reconverged", -1, out[l][3]);
            assertEquals("elect: the leader is lane 0", 0, out[l][4]);
            assertEquals(l == 0 ? 1 : 0, out[l][5]);
            assertEquals("only the elected lane of the branch stores", l == 0 ? 0 : 0xdeadbeef, out[l][6]);
        }
    }

    @Test
    public void partialWarpsHaveOnlyTheirLanes() {
        int[][] out = run(52, ""
                + "  activemask.b32 %r3;\n  mov.u32 %r4, 1;\n  redux.sync.add.u32 %r5, %r4, %r3;\n"
                + "  vote.sync.ballot.b32 %r6, 1, %r3;\n  st.global.v4.u32 [%rd9], {%r3, %r5, %r6, %r2};\n");
        for (int t = 0; t < 52; t++) {
            assertHex("activemask", t < 32 ? 0xffffffffL : 0xfffffL, out[t][0] & 0xffffffffL);
            assertEquals(t < 32 ? 32 : 20, out[t][1]);
            assertHex("ballot", t < 32 ? 0xffffffffL : 0xfffffL, out[t][2] & 0xffffffffL);
            assertEquals(t & 31, out[t][3]);
        }
    }
}
