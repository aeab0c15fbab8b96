package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;

import org.junit.Test;

/** Integer arithmetic: add/sub (wrapping and .sat), mul.lo, mad.lo, div/rem, abs/neg, min/max, SIMD pairs, logic. */
public class IntegerTest {
    static final String[] S32x2 = types("s32", "s32"), U32x2 = types("u32", "u32"), S64x2 = types("s64", "s64"),
            U64x2 = types("u64", "u64"), U16x2 = types("u16", "u16"), S16x2 = types("s16", "s16");

    @Test
    public void addWrapsAtEveryWidth() {
        check("add.s32", "s32", S32x2,
                row(0x7fffffffL, 1, 0x80000000L),
                row(0xffffffffL, 1, 0),
                row(-5, 3, -2),
                row(0x80000000L, 0x80000000L, 0));
        check("add.u16", "u16", U16x2, row(0xffff, 2, 1), row(0x7fff, 1, 0x8000));
        check("add.s64", "s64", S64x2, row(Long.MAX_VALUE, 1, Long.MIN_VALUE), row(-1L, -1L, -2L));
        check("sub.u32", "u32", U32x2, row(0, 1, 0xffffffffL), row(5, 3, 2));
        check("sub.s64", "s64", S64x2, row(Long.MIN_VALUE, 1, Long.MAX_VALUE));
        check("sub.s16", "s16", S16x2, row(0x8000, 1, 0x7fff));
    }

    @Test
    public void saturatingAddAndSubClampToS32() {
        check("add.sat.s32", "s32", S32x2,
                row(0x7fffffffL, 1, 0x7fffffffL),
                row(0x80000000L, -1, 0x80000000L),
                row(0x80000000L, 0x80000000L, 0x80000000L),
                row(0x7fffffffL, 0x7fffffffL, 0x7fffffffL),
                row(-5, 3, -2),
                row(0x7fffffffL, 0x80000000L, -1));
        check("sub.sat.s32", "s32", S32x2,
                row(0x80000000L, 1, 0x80000000L),
                row(0x7fffffffL, -1, 0x7fffffffL),
                row(0, 0x80000000L, 0x7fffffffL),
                row(-1, 0x7fffffffL, 0x80000000L),
                row(10, 20, -10));
    }

    @Test
    public void mulLoAndMadLoKeepTheLowBits() {
        check("mul.lo.s32", "s32", S32x2, row(0x12345678L, 0x9abcdef0L, 0x242d2080L), row(-3, 7, -21), row(0x10000, 0x10000, 0));
        check("mul.lo.u32", "u32", U32x2, row(0xffffffffL, 0xffffffffL, 1));
        check("mul.lo.u64", "u64", U64x2, row(0x123456789abcdef0L, 0xfedcba9876543210L, 0x236d88fe5618cf00L));
        check("mul.lo.s16", "s16", S16x2, row(0x100, 0x100, 0), row(-2, 3, 0xfffa));
        check("mad.lo.s32", "s32", types("s32", "s32", "s32"), row(0x12345678L, 0x9abcdef0L, 0x11111111L, 0x353e3191L),
                row(-3, 7, 1, -20));
        check("mad.lo.u64", "u64", types("u64", "u64", "u64"), row(-1L, -1L, 5, 6));
    }

    @Test
    public void divisionTruncatesTowardZeroAndRemainderTakesTheDividendsSign() {
        check("div.s32", "s32", S32x2, row(-7, 2, -3), row(7, -2, -3), row(-7, -2, 3), row(0x80000000L, 2, 0xc0000000L));
        check("rem.s32", "s32", S32x2, row(-7, 2, -1), row(7, -2, 1), row(-7, -2, -1), row(6, 3, 0));
        check("div.u32", "u32", U32x2, row(0xfffffff9L, 2, 0x7ffffffcL), row(7, 8, 0));
        check("rem.u32", "u32", U32x2, row(0xfffffff9L, 2, 1), row(7, 8, 7));
        check("div.s64", "s64", S64x2, row(-9_000_000_000_000L, 7, -1_285_714_285_714L), row(Long.MIN_VALUE, 1, Long.MIN_VALUE));
        check("rem.s64", "s64", S64x2, row(-9_000_000_000_000L, 7, -2));
        check("div.u64", "u64", U64x2, row(-1L, 2, Long.MAX_VALUE), row(-1L, -1L, 1));
        check("rem.u64", "u64", U64x2, row(-1L, 10, 5));
        check("div.u16", "u16", U16x2, row(0xffff, 0x100, 0xff));
        check("div.s16", "s16", S16x2, row(0x8000, -1 & 0xffff, 0x8000), row(-100 & 0xffff, 7, -14 & 0xffff));
    }

    @Test
    public void absAndNegOfTheMostNegativeValueWrap() {
        check("abs.s32", "s32", types("s32"), row(-5, 5), row(5, 5), row(0x80000000L, 0x80000000L), row(0, 0));
        check("abs.s64", "s64", types("s64"), row(Long.MIN_VALUE, Long.MIN_VALUE), row(-1L, 1));
        check("abs.s16", "s16", types("s16"), row(0x8000, 0x8000), row(0xffff, 1));
        check("neg.s32", "s32", types("s32"), row(5, -5), row(0x80000000L, 0x80000000L), row(0, 0));
        check("neg.s64", "s64", types("s64"), row(1, -1L), row(Long.MIN_VALUE, Long.MIN_VALUE));
        check("neg.s16", "s16", types("s16"), row(1, 0xffff));
    }

    @Test
    public void minMaxCompareSignedOrUnsignedByType() {
        check("min.s32", "s32", S32x2, row(-1, 1, -1), row(0x80000000L, 0x7fffffffL, 0x80000000L));
        check("min.u32", "u32", U32x2, row(0xffffffffL, 1, 1), row(0x80000000L, 0x7fffffffL, 0x7fffffffL));
        check("max.s32", "s32", S32x2, row(-1, 1, 1), row(0x80000000L, 0x7fffffffL, 0x7fffffffL));
        check("max.u32", "u32", U32x2, row(0xffffffffL, 1, 0xffffffffL));
        check("min.s64", "s64", S64x2, row(Long.MIN_VALUE, 0, Long.MIN_VALUE), row(-1L, 1, -1L));
        check("min.u64", "u64", U64x2, row(-1L, 1, 1));
        check("max.u64", "u64", U64x2, row(Long.MIN_VALUE, Long.MAX_VALUE, Long.MIN_VALUE));
        check("max.s64", "s64", S64x2, row(Long.MIN_VALUE, Long.MAX_VALUE, Long.MAX_VALUE));
        check("min.s16", "s16", S16x2, row(0x8000, 0x7fff, 0x8000), row(0xffff, 1, 0xffff));
        check("max.u16", "u16", U16x2, row(0x8000, 0x7fff, 0x8000));
        check("min.relu.s32", "s32", S32x2, row(-5, 3, 0), row(5, 3, 3), row(0x80000000L, 0x80000000L, 0));
        check("max.relu.s32", "s32", S32x2, row(-5, -3, 0), row(-5, 3, 3));
    }

    @Test
    public void sixteenBitPairsComputeEachHalfOnItsOwn() {
        String[] b32x2 = types("b32", "b32");
        // No carry or borrow crosses from the low half into the high half.
        check("add.u16x2", "b32", b32x2, row(0xffff0001L, 0x00010001L, 0x00000002L), row(0x0001ffffL, 0x00010001L, 0x00020000L));
        check("add.s16x2", "b32", b32x2, row(0x7fff8000L, 0x00018000L, 0x80000000L));
        check("sub.u16x2", "b32", b32x2, row(0x00010000L, 0x00000001L, 0x0001ffffL));
        check("min.s16x2", "b32", b32x2, row(0x80000005L, 0x7ffffffbL, 0x8000fffbL));
        check("min.u16x2", "b32", b32x2, row(0x80000005L, 0x7ffffffbL, 0x7fff0005L));
        check("max.s16x2", "b32", b32x2, row(0x80000005L, 0x7ffffffbL, 0x7fff0005L));
        check("max.u16x2", "b32", b32x2, row(0x80000005L, 0x7ffffffbL, 0x8000fffbL));
        check("max.relu.s16x2", "b32", b32x2, row(0x8000fffbL, 0xfff00003L, 0x00000003L));
        check("min.relu.s16x2", "b32", b32x2, row(0x0005fffbL, 0x00030004L, 0x00030000L));
    }

    @Test
    public void bitwiseLogic() {
        String[] b32x2 = types("b32", "b32");
        check("and.b32", "b32", b32x2, row(0xff00ff00L, 0x0ff00ff0L, 0x0f000f00L));
        check("or.b32", "b32", b32x2, row(0xff00ff00L, 0x0ff00ff0L, 0xfff0fff0L));
        check("xor.b32", "b32", b32x2, row(0xff00ff00L, 0x0ff00ff0L, 0xf0f0f0f0L));
        check("not.b32", "b32", types("b32"), row(0xff00ff00L, 0x00ff00ffL));
        check("and.b64", "b64", types("b64", "b64"), row(0xff00ff00ff00ff00L, 0x0ff00ff00ff00ff0L, 0x0f000f000f000f00L));
        check("not.b64", "b64", types("b64"), row(0, -1L));
        check("xor.b16", "b16", types("b16", "b16"), row(0xffff, 0x00ff, 0xff00));
        check("not.b16", "b16", types("b16"), row(0x1234, 0xedcb));
        // cnot: 1 if the operand is zero, else 0.
        check("cnot.b32", "b32", types("b32"), row(0, 1), row(1, 0), row(0x80000000L, 0));
        check("cnot.b16", "b16", types("b16"), row(0, 1), row(0x8000, 0));
        check("cnot.b64", "b64", types("b64"), row(0, 1), row(1L << 40, 0));
    }

    @Test
    public void immediateOperandsTakeTheInstructionType() {
        long[][] out = Ptx.rows(""
                + "  mov.u32 %r1, 0xfffffffe;\n"
                + "  add.s32 %r2, %r1, -3;\n"           // -2 + -3
                + "  st.global.u32 [%rd31], %r2;\n"
                + "  mov.b64 %rd1, 0x8000000000000000;\n"
                + "  sub.s64 %rd2, %rd1, 1;\n"
                + "  st.global.u64 [%rd31+8], %rd2;\n"
                + "  mov.u16 %h1, 65535;\n"
                + "  add.u16 %h2, %h1, 1;\n"
                + "  st.global.u16 [%rd31+16], %h2;\n"
                + "  mov.u32 %r3, 010;\n"               // octal
                + "  st.global.u32 [%rd31+24], %r3;\n", new long[1][0]);
        Ptx.assertHex("-2 + -3", 0xfffffffbL, out[0][0] & 0xffffffffL);
        Ptx.assertHex("0x8000000000000000 - 1", Long.MAX_VALUE, out[0][1]);
        Ptx.assertHex("0xffff + 1 in 16 bits", 0, out[0][2] & 0xffff);
        Ptx.assertHex("010 is octal", 8, out[0][3] & 0xffffffffL);
    }
}
