package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;

import org.junit.Test;

/**
 * Half precision: f16, bf16 and their packed pairs (.f16x2/.bf16x2: the low half is element 0), with
 * exact bit patterns, the f16 canonical NaN 0x7fff, .ftz/.sat, compares, and the inline-asm register
 * blocks cuda_fp16.h wraps them in.
 */
public class HalfTest {
    static final String[] H1 = types("f16"), H2 = types("f16", "f16"), H3 = types("f16", "f16", "f16");
    static final String[] X2 = types("f16x2", "f16x2"), X3 = types("f16x2", "f16x2", "f16x2");
    static final String[] B2 = types("bf16", "bf16"), B3 = types("bf16", "bf16", "bf16");

    @Test
    public void f16AddSubMulRoundToNearestEven() {
        check("add.f16", "f16", H2,
                row(0x3c00, 0x1000, 0x3c00),   // 1 + 2^-11: a tie, even is 1
                row(0x3c00, 0x1200, 0x3c01),   // 1 + 0.75 ulp
                row(0x7bff, 0x4c00, 0x7c00),   // 65504 + 16 = 65520: a tie, even is 65536 = inf
                row(0x7bff, 0x4800, 0x7bff),   // 65504 + 8
                row(0x3c00, 0xbc00, 0x0000),
                row(0x8000, 0x8000, 0x8000),
                row(0x0001, 0x0001, 0x0002),   // subnormals
                row(0x7c00, 0xfc00, 0x7fff),   // inf - inf: the canonical NaN
                row(0x7e01, 0x3c00, 0x7fff));
        check("add.rn.f16", "f16", H2, row(0x3c00, 0x1200, 0x3c01));
        check("sub.f16", "f16", H2, row(0x3c00, 0x3c00, 0x0000), row(0x4000, 0x3c00, 0x3c00), row(0x3c00, 0x1000, 0x3bff)); // 1 - 2^-11 is exact
        check("mul.f16", "f16", H2,
                row(0x3c01, 0x3c01, 0x3c02),   // 1 + 2^-9 + 2^-20
                row(0x0400, 0x3800, 0x0200),   // 2^-14 / 2: subnormal
                row(0x0001, 0x3800, 0x0000),   // 2^-25: a tie between 0 and 2^-24
                row(0x0003, 0x3800, 0x0002),   // 1.5 * 2^-24: a tie, even is 2
                row(0x7bff, 0x4000, 0x7c00),
                row(0x8000, 0x4000, 0x8000),
                row(0x7c00, 0x0000, 0x7fff));
    }

    @Test
    public void f16FmaRoundsOnce() {
        // (1 + 2^-10)(1 + 3 * 2^-10) - 1 = 2^-8 + 3 * 2^-20, which rounds up to 2^-8 (1 + 2^-10)
        check("fma.rn.f16", "f16", H3, row(0x3c01, 0x3c03, 0xbc00, 0x1c01), row(0x7bff, 0x4000, 0xfbff, 0x7bff),
                row(0x3c00, 0x3c00, 0xbc00, 0x0000));
        // mul then sub loses the 3 * 2^-20: 1 + 2^-8 then 2^-8
        check("mul.rn.f16", "f16", H2, row(0x3c01, 0x3c03, 0x3c04));
        check("fma.rn.sat.f16", "f16", H3, row(0x4000, 0x4000, 0x3c00, 0x3c00), row(0xbc00, 0x3c00, 0x0000, 0x0000));
    }

    @Test
    public void f16FtzSatNegAbsMinMax() {
        // 1.5 * 2^-14 - 2^-14 = 2^-15, a subnormal result
        check("add.f16", "f16", H2, row(0x0600, 0x8400, 0x0200));
        check("add.ftz.f16", "f16", H2, row(0x0600, 0x8400, 0x0000), row(0x0001, 0x0000, 0x0000), row(0x8600, 0x0400, 0x8000));
        check("mul.ftz.f16", "f16", H2, row(0x0400, 0x3800, 0x0000));
        check("add.sat.f16", "f16", H2, row(0x3a00, 0x3800, 0x3c00), row(0xbc00, 0x3800, 0x0000), row(0x7e00, 0x3c00, 0x0000));
        check("neg.f16", "f16", H1, row(0x3c00, 0xbc00), row(0x0000, 0x8000), row(0xfc00, 0x7c00));
        check("abs.f16", "f16", H1, row(0xbc00, 0x3c00), row(0x8000, 0x0000), row(0x8001, 0x0001));
        check("abs.ftz.f16", "f16", H1, row(0x8001, 0x0000), row(0xbc00, 0x3c00));
        check("neg.ftz.f16", "f16", H1, row(0x0001, 0x8000), row(0x83ff, 0x0000), row(0x3c00, 0xbc00));
        check("neg.ftz.f16x2", "f16x2", types("f16x2"), row(0x00013c00L, 0x8000bc00L));
        check("min.f16", "f16", H2, row(0x7e00, 0x3c00, 0x3c00), row(0x3c00, 0x7e00, 0x3c00), row(0x0000, 0x8000, 0x8000),
                row(0x4000, 0xc000, 0xc000), row(0x7e00, 0x7e00, 0x7fff));
        check("max.f16", "f16", H2, row(0x7e00, 0x3c00, 0x3c00), row(0x8000, 0x0000, 0x0000), row(0x4000, 0xc000, 0x4000));
        check("min.NaN.f16", "f16", H2, row(0x7e00, 0x3c00, 0x7fff), row(0x3c00, 0x4000, 0x3c00));
        check("max.NaN.f16", "f16", H2, row(0x3c00, 0xfe00, 0x7fff));
    }

    @Test
    public void f16x2WorksOnBothHalves() {
        // hi 1.0, lo 2.0 plus hi 0.5, lo -2.0
        check("add.f16x2", "f16x2", X2, row(0x3c004000L, 0x3800c000L, 0x3e000000L), row(0x7bff3c00L, 0x4c001200L, 0x7c003c01L));
        check("sub.f16x2", "f16x2", X2, row(0x3c004000L, 0x3c003c00L, 0x00003c00L));
        check("mul.f16x2", "f16x2", X2, row(0x40004200L, 0x3800bc00L, 0x3c00c200L));
        check("fma.rn.f16x2", "f16x2", X3, row(0x3c013c01L, 0x3c033c01L, 0xbc00bc00L, 0x1c011800L)); // low: 2^-9 + 2^-20 ties to 2^-9
        check("neg.f16x2", "f16x2", types("f16x2"), row(0x3c00bc00L, 0xbc003c00L));
        check("abs.f16x2", "f16x2", types("f16x2"), row(0xbc008001L, 0x3c000001L));
        check("max.f16x2", "f16x2", X2, row(0x3c00bc00L, 0x40000000L, 0x40000000L));
        check("min.f16x2", "f16x2", X2, row(0x7e003c00L, 0x3c007e00L, 0x3c003c00L));
        check("add.sat.f16x2", "f16x2", X2, row(0x3a00bc00L, 0x38003800L, 0x3c000000L));
    }

    @Test
    public void bf16Arithmetic() {
        check("add.rn.bf16", "bf16", B2,
                row(0x3f80, 0x3b80, 0x3f80),   // 1 + 2^-8: a tie, even is 1
                row(0x3f80, 0x3bc0, 0x3f81),   // 1 + 0.75 ulp
                row(0x7f7f, 0x7f7f, 0x7f80),   // overflow
                row(0x7f80, 0xff80, 0x7fff),   // inf - inf
                row(0x0001, 0x0001, 0x0002));  // subnormals
        check("add.bf16", "bf16", B2, row(0x3f80, 0x3bc0, 0x3f81));
        check("sub.rn.bf16", "bf16", B2, row(0x3f80, 0x3f80, 0x0000));
        check("mul.rn.bf16", "bf16", B2, row(0x3f81, 0x3f81, 0x3f82), row(0xc000, 0x3f00, 0xbf80));
        // (1 + 2^-7)(1 + 3 * 2^-7) - 1 = 2^-5 + 3 * 2^-14, rounded up to 2^-5 (1 + 2^-7)
        check("fma.rn.bf16", "bf16", B3, row(0x3f81, 0x3f83, 0xbf80, 0x3d01));
        check("fma.rn.bf16x2", "bf16x2", types("bf16x2", "bf16x2", "bf16x2"), row(0x3f813f80L, 0x3f834000L, 0xbf803f80L, 0x3d014040L));
        check("add.rn.bf16x2", "bf16x2", types("bf16x2", "bf16x2"), row(0x3f803f80L, 0x3bc0bf80L, 0x3f810000L));
        check("neg.bf16", "bf16", types("bf16"), row(0x3f80, 0xbf80));
        check("abs.bf16", "bf16", types("bf16"), row(0xbf80, 0x3f80));
        check("max.bf16", "bf16", B2, row(0x7fc0, 0x3f80, 0x3f80), row(0x8000, 0x0000, 0x0000));
        check("max.NaN.bf16", "bf16", B2, row(0x7fc0, 0x3f80, 0x7fff));
        check("min.bf16", "bf16", B2, row(0x3f80, 0xbf80, 0xbf80));
    }

    @Test
    public void halfCompares() {
        check("setp.lt.f16", "pred", H2, row(0x3c00, 0x4000, 1), row(0x4000, 0x3c00, 0), row(0x7e00, 0x3c00, 0), row(0x8000, 0x0000, 0));
        check("setp.ltu.f16", "pred", H2, row(0x7e00, 0x3c00, 1), row(0x4000, 0x3c00, 0));
        check("setp.eq.f16", "pred", H2, row(0x8000, 0x0000, 1), row(0x7e00, 0x7e00, 0));
        check("setp.nan.bf16", "pred", B2, row(0x7fc0, 0x3f80, 1), row(0x3f80, 0x3f80, 0));
        // set with an f16 destination writes 1.0 (0x3c00); nvcc's hexp() multiplies with it
        check("set.eq.f16.f16", "f16", H2, row(0x3c00, 0x3c00, 0x3c00), row(0x3c00, 0x4000, 0));
        check("set.nan.f16.f16", "f16", H2, row(0x7e00, 0x7e00, 0x3c00), row(0x3c00, 0x3c00, 0));
        check("set.lt.bf16.bf16", "bf16", B2, row(0x3f80, 0x4000, 0x3f80));
        check("set.lt.u32.f16", "u32", H2, row(0x3c00, 0x4000, 0xffffffffL), row(0x4000, 0x3c00, 0));
        // Pairs: each half separately; u32 destinations get 0xffff per true half, f16x2 ones 1.0
        check("set.lt.u32.f16x2", "u32", X2, row(0x3c004000L, 0x40003c00L, 0xffff0000L), row(0x3c003c00L, 0x40004000L, 0xffffffffL));
        check("set.eq.u32.f16x2", "u32", X2, row(0x3c007e00L, 0x3c007e00L, 0xffff0000L));
        check("set.lt.f16x2.f16x2", "f16x2", X2, row(0x3c004000L, 0x40003c00L, 0x3c000000L));
        check("set.gt.bf16x2.bf16x2", "bf16x2", types("bf16x2", "bf16x2"), row(0x3f804000L, 0x40003f80L, 0x00003f80L));
        // setp on a pair: p is the low half's result, q the high half's
        long[][] out = Ptx.rows(""
                + "  ld.global.b32 %r1, [%rd30];\n  ld.global.b32 %r2, [%rd30+8];\n"
                + "  setp.lt.f16x2 %p1|%p2, %r1, %r2;\n"
                + "  selp.u32 %r3, 1, 0, %p1;\n  selp.u32 %r4, 1, 0, %p2;\n"
                + "  st.global.u32 [%rd31], %r3;\n  st.global.u32 [%rd31+4], %r4;\n"
                + "  setp.lt.and.bf16x2 %p3|%p4, %r1, %r2, %p1;\n"
                + "  selp.u32 %r5, 1, 0, %p3;\n  selp.u32 %r6, 1, 0, %p4;\n"
                + "  st.global.u32 [%rd31+8], %r5;\n  st.global.u32 [%rd31+12], %r6;\n",
                new long[][] {row(0x3c004000L, 0x40003c00L), row(0x40003c00L, 0x3c004000L)});
        Ptx.assertHex("hi 1<2, lo 2<1: p (lo) 0, q (hi) 1", 0x0000000100000000L, out[0][0]);
        Ptx.assertHex("hi 2<1, lo 1<2: p 1, q 0", 0x0000000000000001L, out[1][0]);
        // bf16 halves of the same words: 0x3c00 < 0x4000 as bf16 too, and'ed with p1
        Ptx.assertHex("and'ed with the low result, row 0", 0, out[0][1]);
        Ptx.assertHex("and'ed with the low result, row 1", 0x0000000000000001L, out[1][1]);
    }

    @Test
    public void packingAndInlineAsmRegisterBlocks() {
        // cuda_fp16.h writes blocks with registers declared without % and ".reg.b32" run together.
        long[][] out = Ptx.rows(""
                + "  ld.global.b32 %r1, [%rd30];\n"
                + "  { .reg .f16 low, high;\n    mov.b32 {low, high}, %r1;\n    mov.b16 %h1, high;\n    mov.b16 %h2, low;\n  }\n"
                + "  {.reg.b32         f;\n   .reg.b16         r;\n    mov.b16 r, %h1;\n    cvt.f32.f16 f, r;\n"
                + "    add.f32 f, f, f;\n    cvt.rn.f16.f32 r, f;\n    mov.b16 %h3, r;\n  }\n"
                + "  mov.b32 %r2, {%h2, %h3};\n"
                + "  st.global.b32 [%rd31], %r2;\n"
                + "  { .reg .pred p; .reg .b16 spc;\n    mov.b16 spc, 0x3c00;\n    setp.eq.b16 p, %h2, spc;\n"
                + "    selp.u32 %r3, 1, 0, p;\n  }\n"
                + "  st.global.u32 [%rd31+8], %r3;\n",
                new long[][] {row(0x40003c00L), row(0x3c004200L)});
        Ptx.assertHex("hi doubled, lo kept", 0x44003c00L, out[0][0] & 0xffffffffL);
        Ptx.assertHex("row 1", 0x40004200L, out[1][0] & 0xffffffffL);
        Ptx.assertHex("low half is 1.0", 1, out[0][1] & 0xffffffffL);
        Ptx.assertHex("low half is not 1.0", 0, out[1][1] & 0xffffffffL);
    }
}
