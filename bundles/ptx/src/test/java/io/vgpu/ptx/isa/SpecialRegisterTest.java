package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.BASE;
import static io.vgpu.ptx.isa.Ptx.kernel;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.LaunchDims;
import java.util.HashSet;
import java.util.Set;
import org.junit.Test;

/** %tid, %ntid, %ctaid, %nctaid in 3D launches; %laneid, %warpid, %lanemask_*; clocks, SM ids and shared sizes. */
public class SpecialRegisterTest {
    static final int SLOTS = 20;
    static final String[] REGS = {"%tid.x", "%tid.y", "%tid.z", "%ntid.x", "%ntid.y", "%ntid.z", "%ctaid.x", "%ctaid.y", "%ctaid.z",
        "%nctaid.x", "%nctaid.y", "%nctaid.z", "%laneid", "%warpid", "%lanemask_eq", "%lanemask_lt", "%lanemask_le",
        "%lanemask_ge", "%lanemask_gt", "%nwarpid"};

    @Test
    public void threeDimensionalLaunch() {
        LaunchDims dims = new LaunchDims(3, 2, 2, 8, 5, 2, 0); // 80 threads: two full warps and one of 16
        int threads = 80, blocks = 12;
        StringBuilder b = new StringBuilder("  ld.param.u64 %rd1, [p0];\n"
                // the row: linear block id * threads + linear thread id
                + "  mov.u32 %r1, %ctaid.z;\n  mov.u32 %r2, %nctaid.y;\n  mov.u32 %r3, %ctaid.y;\n  mad.lo.u32 %r4, %r1, %r2, %r3;\n"
                + "  mov.u32 %r5, %nctaid.x;\n  mov.u32 %r6, %ctaid.x;\n  mad.lo.u32 %r7, %r4, %r5, %r6;\n"
                + "  mov.u32 %r8, %tid.z;\n  mov.u32 %r9, %ntid.y;\n  mov.u32 %r10, %tid.y;\n  mad.lo.u32 %r11, %r8, %r9, %r10;\n"
                + "  mov.u32 %r12, %ntid.x;\n  mov.u32 %r13, %tid.x;\n  mad.lo.u32 %r14, %r11, %r12, %r13;\n"
                + "  mad.lo.u32 %r15, %r7, " + threads + ", %r14;\n  mul.wide.u32 %rd2, %r15, " + 4 * SLOTS + ";\n  add.s64 %rd3, %rd1, %rd2;\n");
        for (int i = 0; i < REGS.length; i++) {
            b.append("  mov.u32 %r20, ").append(REGS[i]).append(";\n  st.global.u32 [%rd3+").append(4 * i).append("], %r20;\n");
        }
        HeapMemory m = new HeapMemory(BASE, 4 * SLOTS * threads * blocks);
        Ptx.launch(kernel(1, "", b.toString()), dims, m, BASE);
        for (int cz = 0; cz < 2; cz++) {
            for (int cy = 0; cy < 2; cy++) {
                for (int cx = 0; cx < 3; cx++) {
                    Set<Integer> warpIds = new HashSet<>();
                    int blk = (cz * 2 + cy) * 3 + cx;
                    for (int tz = 0; tz < 2; tz++) {
                        for (int ty = 0; ty < 5; ty++) {
                            for (int tx = 0; tx < 8; tx++) {
                                int lin = (tz * 5 + ty) * 8 + tx;
                                long row = BASE + 4L * SLOTS * (blk * threads + lin);
                                int[] v = new int[SLOTS];
                                for (int i = 0; i < SLOTS; i++) {
                                    v[i] = m.getInt(row + 4L * i);
                                }
                                String at = "block (" + cx + "," + cy + "," + cz + ") thread (" + tx + "," + ty + "," + tz + ")";
                                int[] want = {tx, ty, tz, 8, 5, 2, cx, cy, cz, 3, 2, 2};
                                for (int i = 0; i < want.length; i++) {
                                    assertEquals(at + " " + REGS[i], want[i], v[i]);
                                }
                                int lane = lin % 32;
                                assertEquals(at + " %laneid", lane, v[12]);
                                assertEquals(at + " %lanemask_eq", 1 << lane, v[14]);
                                assertEquals(at + " %lanemask_lt", (1 << lane) - 1, v[15]);
                                assertEquals(at + " %lanemask_le", (int) ((2L << lane) - 1), v[16]);
                                assertEquals(at + " %lanemask_ge", ~((1 << lane) - 1), v[17]);
                                assertEquals(at + " %lanemask_gt", (int) ~((2L << lane) - 1), v[18]);
                                assertTrue(at + " %warpid < %nwarpid", v[13] >= 0 && v[13] < v[19]);
                                // %warpid is one value per warp, different for the warps of a block
                                int first = m.getInt(BASE + 4L * SLOTS * (blk * threads + lin - lane) + 4 * 13);
                                assertEquals(at + " %warpid is the same across the warp", first, v[13]);
                                if (lane == 0) {
                                    assertTrue("distinct warp ids", warpIds.add(v[13]));
                                }
                            }
                        }
                    }
                    assertEquals(3, warpIds.size());
                }
            }
        }
    }

    @Test
    public void clocksSmIdsAndSharedSizes() {
        String body = "  .shared .align 4 .b8 st[100];\n  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n"
                + "  mov.u64 %rd2, %clock64;\n  st.shared.u32 [st], %r1;\n  mov.u64 %rd3, %clock64;\n  sub.s64 %rd4, %rd3, %rd2;\n"
                + "  mov.u32 %r2, %clock;\n  mov.u64 %rd5, %globaltimer;\n  mov.u32 %r3, %smid;\n  mov.u32 %r4, %nsmid;\n"
                + "  mov.u32 %r5, %dynamic_smem_size;\n  mov.u32 %r6, %total_smem_size;\n"
                + "  mul.wide.u32 %rd6, %r1, 32;\n  add.s64 %rd7, %rd1, %rd6;\n  st.global.u64 [%rd7], %rd4;\n"
                + "  st.global.u64 [%rd7+8], %rd5;\n  st.global.v4.u32 [%rd7+16], {%r3, %r4, %r5, %r6};\n";
        HeapMemory m = new HeapMemory(BASE, 32 * 64);
        Ptx.launch(kernel(1, "", body), new LaunchDims(1, 1, 1, 64, 1, 1, 48), m, BASE);
        for (int t = 0; t < 64; t++) {
            long at = BASE + 32L * t;
            assertTrue("%clock64 does not go backwards", m.getLong(at) >= 0);
            int smid = m.getInt(at + 16), nsmid = m.getInt(at + 20);
            assertTrue("%smid < %nsmid", smid >= 0 && smid < nsmid);
            assertEquals("%dynamic_smem_size", 48, m.getInt(at + 24));
            assertTrue("%total_smem_size covers static and dynamic", m.getInt(at + 28) >= 148);
            assertNotEquals("%globaltimer runs", 0, m.getLong(at + 8));
        }
    }
}
