package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.BASE;
import static io.vgpu.ptx.isa.Ptx.EXEC;
import static io.vgpu.ptx.isa.Ptx.assertHex;
import static io.vgpu.ptx.isa.Ptx.kernel;
import static io.vgpu.ptx.isa.Ptx.row;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import io.vgpu.ptx.PtxKernel;
import java.util.Map;
import org.junit.Test;

/**
 * ld/st of every width and vector shape, sign extension of signed loads, the shared, local, param,
 * const and global state spaces, generic addressing through cvta and isspacep, and faults for
 * addresses outside what the launch may touch or not aligned to the access.
 */
public class MemoryTest {
    @Test
    public void loadsOfEveryWidthExtendByTheirType() {
        // the input row holds bytes 0x80 0x81 ... so each load sees a value with its sign bit set
        long in = 0x8f8e8d8c8b8a8988L;
        long[][] out = Ptx.rows(""
                + "  ld.global.s8 %r1, [%rd30];\n  st.global.u32 [%rd31], %r1;\n"
                + "  ld.global.u8 %r2, [%rd30];\n  st.global.u32 [%rd31+4], %r2;\n"
                + "  ld.global.s16 %r3, [%rd30+2];\n  st.global.u32 [%rd31+8], %r3;\n"
                + "  ld.global.u16 %r4, [%rd30+2];\n  st.global.u32 [%rd31+12], %r4;\n"
                + "  ld.global.s32 %rd1, [%rd30+4];\n  st.global.u64 [%rd31+16], %rd1;\n"
                + "  ld.global.s8 %rd2, [%rd30+1];\n  st.global.u64 [%rd31+24], %rd2;\n", new long[][] {row(in)});
        assertHex("ld.s8 into 32 bits", 0xffffff88L, out[0][0] & 0xffffffffL);
        assertHex("ld.u8", 0x88, out[0][0] >>> 32);
        assertHex("ld.s16 into 32 bits", 0xffff8b8aL, out[0][1] & 0xffffffffL);
        assertHex("ld.u16", 0x8b8a, out[0][1] >>> 32);
        assertHex("ld.s32 into 64 bits", 0xffffffff8f8e8d8cL, out[0][2]);
        assertHex("ld.s8 into 64 bits", 0xffffffffffffff89L, out[0][3]);
        long[][] out2 = Ptx.rows(""
                + "  ld.global.u32 %rd1, [%rd30];\n  st.global.u64 [%rd31], %rd1;\n"
                + "  ld.global.b16 %h1, [%rd30+6];\n  st.global.b16 [%rd31+8], %h1;\n"
                + "  ld.global.s8 %h2, [%rd30+7];\n  st.global.b16 [%rd31+10], %h2;\n"
                + "  ld.global.f32 %f1, [%rd30+4];\n  st.global.f32 [%rd31+12], %f1;\n"
                + "  ld.global.f64 %fd1, [%rd30];\n  st.global.f64 [%rd31+16], %fd1;\n"
                + "  ld.global.b64 %rd2, [%rd30];\n  st.global.b64 [%rd31+24], %rd2;\n", new long[][] {row(in)});
        assertHex("ld.u32 into 64 bits", 0x8b8a8988L, out2[0][0]);
        assertHex("ld.b16 / ld.s8 into 16 bits", 0xff8f8f8eL, out2[0][1] & 0xffffffffL);
        assertHex("ld.f32", 0x8f8e8d8cL, out2[0][1] >>> 32);
        assertHex("ld.f64 keeps the bits", in, out2[0][2]);
        assertHex("ld.b64", in, out2[0][3]);
    }

    @Test
    public void storesWriteOnlyTheirWidth() {
        long[][] out = Ptx.rows(""
                + "  mov.u64 %rd1, -1;\n  st.global.u64 [%rd31], %rd1;\n  st.global.u64 [%rd31+8], %rd1;\n"
                + "  mov.u32 %r1, 0x12345678;\n  st.global.u8 [%rd31], %r1;\n  st.global.u16 [%rd31+2], %r1;\n"
                + "  st.global.u32 [%rd31+4], %r1;\n  mov.u64 %rd2, 0x0123456789abcdef;\n  st.global.u16 [%rd31+8], %rd2;\n"
                + "  st.global.s8 [%rd31+11], %rd2;\n", new long[1][0]);
        assertHex("u8 at 0, u16 at 2, u32 at 4", 0x123456785678ff78L, out[0][0]);
        assertHex("u16 at 8 then s8 at 11 from a 64-bit register", 0xffffffffefffcdefL, out[0][1]);
    }

    @Test
    public void vectorLoadsAndStores() {
        long[][] rows = {row(0x0000000200000001L, 0x0000000400000003L, 0x0000000600000005L, 0x0000000800000007L)};
        long[][] out = Ptx.rows(""
                + "  ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd30];\n"
                + "  st.global.v4.u32 [%rd31], {%r4, %r3, %r2, %r1};\n"
                + "  ld.global.v2.u64 {%rd1, %rd2}, [%rd30+16];\n"
                + "  st.global.v2.u64 [%rd31+16], {%rd2, %rd1};\n", rows);
        assertHex("v4.u32 reversed", 0x0000000300000004L, out[0][0]);
        assertHex("v4.u32 reversed, upper", 0x0000000100000002L, out[0][1]);
        assertHex("v2.u64 swapped", 0x0000000800000007L, out[0][2]);
        assertHex("v2.u64 swapped, upper", 0x0000000600000005L, out[0][3]);
        long[][] out2 = Ptx.rows(""
                + "  ld.global.v4.u32 {%r1, _, %r3, _}, [%rd30];\n  add.u32 %r5, %r1, %r3;\n  st.global.u32 [%rd31], %r5;\n"
                + "  ld.global.v4.u16 {%h1, %h2, %h3, %h4}, [%rd30];\n  st.global.v4.u16 [%rd31+8], {%h4, %h3, %h2, %h1};\n"
                + "  ld.global.v2.f32 {%f1, %f2}, [%rd30+8];\n  st.global.v2.f32 [%rd31+16], {%f2, %f1};\n"
                + "  ld.global.v2.f64 {%fd1, %fd2}, [%rd30];\n  st.global.f64 [%rd31+24], %fd2;\n"
                + "  ld.global.nc.v2.u32 {%r6, %r7}, [%rd30+24];\n  sub.u32 %r8, %r7, %r6;\n  st.global.u32 [%rd31+4], %r8;\n", rows);
        assertHex("v4 with sinks: 1 + 3, then 8 - 7", 0x0000000100000004L, out2[0][0]);
        assertHex("v4.u16 reversed", 0x0001000000020000L, out2[0][1]);
        assertHex("v2.f32 swapped", 0x0000000300000004L, out2[0][2]);
        assertHex("v2.f64 second element", 0x0000000400000003L, out2[0][3]);
    }

    @Test
    public void sharedMemoryBySymbolRegisterAndGenericAddress() {
        String ptx = kernel(1, ".shared .align 8 .b8 smem[256];\n.shared .align 4 .u32 counter;\n", ""
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n"
                // each thread writes smem[4*tid] through a register address
                + "  mov.u32 %r2, smem;\n  shl.b32 %r3, %r1, 2;\n  add.u32 %r4, %r2, %r3;\n  st.shared.u32 [%r4], %r1;\n"
                + "  setp.eq.u32 %p1, %r1, 0;\n  @%p1 st.shared.u32 [counter], 1000;\n  @%p1 st.shared.u32 [smem+252], 77;\n"
                + "  bar.sync 0;\n"
                // read the neighbour's slot through a generic pointer
                + "  mov.u64 %rd2, smem;\n  cvta.shared.u64 %rd3, %rd2;\n  add.u32 %r5, %r1, 1;\n  and.b32 %r5, %r5, 31;\n"
                + "  mul.wide.u32 %rd4, %r5, 4;\n  add.s64 %rd5, %rd3, %rd4;\n  ld.u32 %r6, [%rd5];\n"
                + "  ld.shared.u32 %r7, [counter];\n  add.u32 %r6, %r6, %r7;\n"
                + "  mul.wide.u32 %rd6, %r1, 4;\n  add.s64 %rd7, %rd1, %rd6;\n  st.global.u32 [%rd7], %r6;\n"
                // back to a shared address, and the space tests
                + "  cvta.to.shared.u64 %rd8, %rd5;\n  cvt.u32.u64 %r8, %rd8;\n  sub.u32 %r9, %r8, %r2;\n"
                + "  isspacep.shared %p2, %rd5;\n  isspacep.global %p3, %rd5;\n  isspacep.global %p4, %rd1;\n"
                + "  isspacep.shared %p5, %rd1;\n  isspacep.local %p6, %rd5;\n"
                + "  selp.u32 %r10, 1, 0, %p2;\n  selp.u32 %r11, 2, 0, %p3;\n  or.b32 %r10, %r10, %r11;\n"
                + "  selp.u32 %r11, 4, 0, %p4;\n  or.b32 %r10, %r10, %r11;\n  selp.u32 %r11, 8, 0, %p5;\n  or.b32 %r10, %r10, %r11;\n"
                + "  selp.u32 %r11, 16, 0, %p6;\n  or.b32 %r10, %r10, %r11;\n"
                + "  mul.wide.u32 %rd9, %r1, 8;\n  add.s64 %rd10, %rd1, %rd9;\n  st.global.v2.u32 [%rd10+128], {%r9, %r10};\n"
                + "  ld.shared.u32 %r12, [smem+252];\n  st.global.u32 [%rd7+384], %r12;\n");
        HeapMemory m = new HeapMemory(BASE, 512);
        Ptx.launch(ptx, LaunchDims.linear(2, 32), m, BASE);
        for (int t = 0; t < 32; t++) {
            // block 1 writes the same values: both blocks' shared memory starts zeroed and is their own
            assertEquals("thread " + t + ": the neighbour's slot plus the counter", (t + 1) % 32 + 1000, m.getInt(BASE + 4L * t));
            assertEquals("smem+252 by symbol and offset", 77, m.getInt(BASE + 384 + 4L * t));
            assertEquals("shared offset back from generic", 4 * ((t + 1) % 32), m.getInt(BASE + 128 + 8L * t));
            assertEquals("isspacep: shared yes, global no; p0 global, not shared; not local", 1 | 4, m.getInt(BASE + 132 + 8L * t));
        }
    }

    @Test
    public void dynamicSharedMemoryFollowsTheStaticPart() {
        String ptx = kernel(1, ".shared .align 4 .u32 fixed[3];\n.extern .shared .align 16 .b8 dyn[];\n", ""
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, dyn;\n  mov.u32 %r3, fixed;\n"
                + "  mul.lo.u32 %r4, %r1, 4;\n  add.u32 %r5, %r2, %r4;\n  mul.lo.u32 %r6, %r1, 3;\n  st.shared.u32 [%r5], %r6;\n"
                + "  st.shared.u32 [fixed+8], 5;\n  bar.sync 0;\n  mov.u32 %r7, 63;\n  sub.u32 %r7, %r7, %r1;\n"
                + "  mul.lo.u32 %r7, %r7, 4;\n  add.u32 %r7, %r2, %r7;\n  ld.shared.u32 %r8, [%r7];\n"
                + "  mov.u32 %r9, %dynamic_smem_size;\n  sub.u32 %r10, %r2, %r3;\n"
                + "  mul.wide.u32 %rd2, %r1, 16;\n  add.s64 %rd3, %rd1, %rd2;\n  st.global.v4.u32 [%rd3], {%r8, %r9, %r10, %r2};\n");
        HeapMemory m = new HeapMemory(BASE, 64 * 16);
        PtxKernel k = Ptx.compile(ptx);
        assertEquals("static shared", 16, k.sharedBytes()); // 12 bytes, aligned for the dynamic part
        Ptx.launch(EXEC, k, new LaunchDims(1, 1, 1, 64, 1, 1, 256), m, BASE);
        for (int t = 0; t < 64; t++) {
            assertEquals(3 * (63 - t), m.getInt(BASE + 16L * t));
            assertEquals(256, m.getInt(BASE + 16L * t + 4));
            assertTrue("dyn comes after fixed, 16-aligned", m.getInt(BASE + 16L * t + 8) >= 12 && m.getInt(BASE + 16L * t + 12) % 16 == 0);
        }
    }

    @Test
    public void localMemoryIsPrivateToEachThread() {
        String ptx = kernel(1, "", ""
                + "  .local .align 8 .b8 depot[64];\n"
                + "  ld.param.u64 %rd1, [p0];\n  mov.u32 %r1, %tid.x;\n"
                + "  mov.u32 %r2, 0;\n"
                + "LOOP:\n  mad.lo.u32 %r3, %r1, 100, %r2;\n  mul.wide.u32 %rd2, %r2, 4;\n  mov.u64 %rd3, depot;\n"
                + "  add.s64 %rd4, %rd3, %rd2;\n  st.local.u32 [%rd4], %r3;\n  add.u32 %r2, %r2, 1;\n"
                + "  setp.lt.u32 %p1, %r2, 16;\n  @%p1 bra LOOP;\n"
                + "  bar.sync 0;\n"
                + "  ld.local.u32 %r4, [depot+60];\n"                       // element 15
                + "  mov.u64 %rd5, depot;\n  cvta.local.u64 %rd6, %rd5;\n  ld.u32 %r5, [%rd6+4];\n" // element 1 through a generic address
                + "  st.local.u64 [depot+8], %rd6;\n  ld.local.u64 %rd7, [depot+8];\n  isspacep.local %p2, %rd7;\n"
                + "  selp.u32 %r6, 1, 0, %p2;\n  cvta.to.local.u64 %rd8, %rd7;\n  cvt.u32.u64 %r7, %rd8;\n"
                + "  mul.wide.u32 %rd9, %r1, 16;\n  add.s64 %rd10, %rd1, %rd9;\n  st.global.v4.u32 [%rd10], {%r4, %r5, %r6, %r7};\n");
        HeapMemory m = new HeapMemory(BASE, 96 * 16);
        Ptx.launch(ptx, LaunchDims.linear(1, 96), m, BASE);
        for (int t = 0; t < 96; t++) {
            assertEquals(100 * t + 15, m.getInt(BASE + 16L * t));
            assertEquals(100 * t + 1, m.getInt(BASE + 16L * t + 4));
            assertEquals(1, m.getInt(BASE + 16L * t + 8));
            assertEquals("a local pointer to depot", 0, m.getInt(BASE + 16L * t + 12));
        }
    }

    @Test
    public void parameterSpaceByNameByAddressAndGenerically() {
        String ptx = Ptx.HEADER + ".visible .entry k(.param .u64 out, .param .u32 a, .param .align 8 .b8 blob[16], .param .f32 x)\n{\n"
                + Ptx.REGS
                + "  ld.param.u64 %rd1, [out];\n  ld.param.u32 %r1, [a];\n  ld.param.u32 %r2, [blob+4];\n"
                + "  ld.param.f32 %f1, [x];\n  cvt.rzi.u32.f32 %r3, %f1;\n"
                + "  mov.u64 %rd2, blob;\n  ld.param.u64 %rd3, [%rd2+8];\n"
                + "  cvta.param.u64 %rd4, %rd2;\n  ld.u32 %r4, [%rd4];\n  isspacep.param %p1, %rd4;\n  selp.u32 %r5, 1, 0, %p1;\n"
                + "  ld.param.v2.u32 {%r6, %r7}, [blob];\n  add.u32 %r6, %r6, %r7;\n"
                + "  st.global.v4.u32 [%rd1], {%r1, %r2, %r3, %r4};\n  st.global.u64 [%rd1+16], %rd3;\n"
                + "  st.global.v2.u32 [%rd1+24], {%r5, %r6};\n  ret;\n}\n";
        PtxKernel k = Ptx.compile(ptx);
        assertEquals("out at 0, a at 8, blob at 16, x at 32", 36, k.paramSize());
        HeapMemory m = new HeapMemory(BASE, 64);
        byte[] blob = new byte[16];
        java.nio.ByteBuffer.wrap(blob).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, 11).putInt(4, 22).putLong(8, 0x0123456789abcdefL);
        EXEC.launch(k, LaunchDims.linear(1, 1), new io.vgpu.ptx.Params(k).u64(0, BASE).u32(1, 7).bytes(2, blob).f32(3, 42.9f).build(), () -> m);
        assertEquals(7, m.getInt(BASE));
        assertEquals(22, m.getInt(BASE + 4));
        assertEquals(42, m.getInt(BASE + 8));
        assertEquals("blob[0] through a generic address", 11, m.getInt(BASE + 12));
        assertHex("blob[8..15] through a param-space register", 0x0123456789abcdefL, m.getLong(BASE + 16));
        assertEquals("isspacep.param", 1, m.getInt(BASE + 24));
        assertEquals(33, m.getInt(BASE + 28));
    }

    @Test
    public void globalAndConstVariablesAtTheAddressesTheLoaderGave() {
        String ptx = kernel(1, ".global .align 8 .u64 gvar;\n.global .align 4 .b8 garr[16];\n.const .align 4 .u32 ctab[4];\n", ""
                + "  ld.param.u64 %rd1, [p0];\n  ld.const.u32 %r1, [ctab+8];\n  mov.u64 %rd2, ctab;\n  ld.const.u32 %r2, [%rd2+12];\n"
                + "  ld.global.u64 %rd3, [gvar];\n  mov.u64 %rd4, garr;\n  st.global.u32 [%rd4+4], %r1;\n  st.global.u32 [garr+8], %r2;\n"
                + "  st.global.u64 [%rd1], %rd3;\n  ld.u32 %r3, [ctab];\n  st.global.u32 [%rd1+8], %r3;\n");
        HeapMemory m = new HeapMemory(BASE, 4096);
        long g = BASE + 1024, arr = BASE + 2048, tab = BASE + 3072;
        m.store(g, 8, 0xfeedfacecafebeefL);
        m.putInts(tab, 100, 101, 102, 103);
        PtxKernel k = Ptx.compile(ptx, Map.of("gvar", g, "garr", arr, "ctab", tab));
        Ptx.launch(EXEC, k, LaunchDims.linear(1, 1), m, BASE);
        assertHex("gvar", 0xfeedfacecafebeefL, m.getLong(BASE));
        assertEquals(100, m.getInt(BASE + 8));
        assertEquals(102, m.getInt(arr + 4));
        assertEquals(103, m.getInt(arr + 8));
    }

    @Test
    public void accessesOutsideTheirSpaceFaultWithIllegalAddress() {
        HeapMemory m = new HeapMemory(BASE, 56);
        String[] bodies = {
            "  ld.param.u64 %rd1, [p0];\n  ld.global.u32 %r1, [%rd1+56];\n",            // one past the mapped buffer
            "  ld.param.u64 %rd1, [p0];\n  st.global.u32 [%rd1+-4], 1;\n",               // just below it
            "  mov.u64 %rd1, 0;\n  ld.global.u32 %r1, [%rd1];\n",                         // null
            "  mov.u64 %rd1, 0;\n  ld.u8 %r1, [%rd1+16];\n",                              // generic null
            "  .shared .align 4 .b8 s[16];\n  ld.shared.u32 %r1, [s+16];\n",              // past static shared
            "  .shared .align 4 .b8 s[16];\n  mov.u32 %r2, 100000;\n  st.shared.u32 [%r2], 1;\n",
            "  .local .align 4 .b8 l[8];\n  ld.local.u32 %r1, [l+8];\n",                  // past the local frame
            "  mov.u64 %rd1, 0x00001000fffffff0;\n  ld.u32 %r1, [%rd1];\n",              // generic shared window, beyond the block's shared
            "  ld.param.u64 %rd1, [p0];\n  ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd1+48];\n", // the vector's tail is outside
            "  mov.u64 %rd2, p0;\n  cvta.param.u64 %rd3, %rd2;\n  st.u32 [%rd3], 1;\n",  // kernel parameters are read-only
        };
        for (String b : bodies) {
            KernelFault f = Ptx.fault(EXEC, kernel(1, "", b), LaunchDims.linear(1, 32), m, BASE);
            assertEquals(b, KernelFault.Kind.ILLEGAL_ADDRESS, f.kind());
            assertEquals(700, f.cudaError());
        }
        // Accesses must be aligned to their size, vectors to the whole vector
        String[] misaligned = {"  atom.global.add.u32 %r1, [%rd1+2], 1;\n", "  ld.global.u32 %r1, [%rd1+2];\n", "  st.global.u16 [%rd1+1], %h1;\n",
            "  ld.global.v2.u32 {%r1, %r2}, [%rd1+4];\n", "  st.global.v4.f32 [%rd1+8], {%f1, %f2, %f3, %f4};\n", "  ld.u64 %rd2, [%rd1+12];\n",
            "  .shared .align 8 .b8 s[16];\n  ld.shared.u64 %rd2, [s+4];\n"};
        for (String b : misaligned) {
            KernelFault f = Ptx.fault(EXEC, kernel(1, "", "  ld.param.u64 %rd1, [p0];\n" + b), LaunchDims.linear(1, 1), m, BASE);
            assertEquals(b, KernelFault.Kind.MISALIGNED_ADDRESS, f.kind());
            assertEquals(716, f.cudaError());
        }
        Ptx.launch(kernel(1, "", "  ld.param.u64 %rd1, [p0];\n  ld.global.u8 %r1, [%rd1+3];\n  ld.global.v2.u32 {%r2, %r3}, [%rd1+8];\n"
                + "  st.global.u16 [%rd1+6], %h1;\n"), LaunchDims.linear(1, 1), m, BASE);
        // In bounds everything is fine: the same buffer, last word
        Ptx.launch(kernel(1, "", "  ld.param.u64 %rd1, [p0];\n  st.global.u32 [%rd1+52], 9;\n"), LaunchDims.linear(1, 1), m, BASE);
        assertEquals(9, m.getInt(BASE + 52));
    }
}
