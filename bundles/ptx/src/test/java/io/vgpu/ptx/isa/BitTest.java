package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;

import java.math.BigInteger;
import org.junit.Test;

/**
 * Bit manipulation and wide multiplication: popc, clz, brev, bfind, bfe, bfi, prmt, lop3, shf, shl/shr,
 * mul.hi/.wide, mad.hi, mul24/mad24, sad, and the carry-flag instructions.
 */
public class BitTest {
    @Test
    public void popcClzBrev() {
        check("popc.b32", "u32", types("b32"), row(0, 0), row(0xffffffffL, 32), row(0x12345678L, 13), row(0x80000000L, 1));
        check("popc.b64", "u32", types("b64"), row(-1L, 64), row(0x8000000000000001L, 2), row(0x0123456789abcdefL, 32));
        check("clz.b32", "u32", types("b32"), row(0, 32), row(1, 31), row(0x80000000L, 0), row(0x00010000L, 15));
        check("clz.b64", "u32", types("b64"), row(0, 64), row(1, 63), row(Long.MIN_VALUE, 0), row(1L << 40, 23));
        check("brev.b32", "b32", types("b32"), row(1, 0x80000000L), row(0x12345678L, 0x1e6a2c48L), row(0xffff0000L, 0x0000ffffL));
        check("brev.b64", "b64", types("b64"), row(1, Long.MIN_VALUE), row(0x0123456789abcdefL, 0xf7b3d591e6a2c480L));
    }

    @Test
    public void bfindFindsTheMostSignificantNonSignBit() {
        check("bfind.u32", "u32", types("u32"), row(0, 0xffffffffL), row(1, 0), row(0x80000000L, 31), row(0x00012345L, 16));
        // Signed: for negative values the most significant 0 bit.
        check("bfind.s32", "u32", types("s32"), row(-1, 0xffffffffL), row(0, 0xffffffffL), row(0x80000000L, 30), row(5, 2),
                row(0xfffffffeL, 0), row(0xffff0000L, 15));
        // .shiftamt: the left shift that brings that bit to the top; "not found" stays 0xffffffff.
        check("bfind.shiftamt.u32", "u32", types("u32"), row(1, 31), row(0x80000000L, 0), row(0, 0xffffffffL), row(0x00012345L, 15));
        check("bfind.shiftamt.s32", "u32", types("s32"), row(0xfffffffeL, 31), row(-1, 0xffffffffL));
        check("bfind.u64", "u32", types("u64"), row(1L << 40, 40), row(0, 0xffffffffL), row(-1L, 63));
        check("bfind.s64", "u32", types("s64"), row(Long.MIN_VALUE, 62), row(-1L, 0xffffffffL), row(1L << 33, 33));
        check("bfind.shiftamt.u64", "u32", types("u64"), row(1L << 40, 23), row(1, 63));
    }

    @Test
    public void bfeExtractsWithZeroOrSignFill() {
        String[] u = types("u32", "u32", "u32"), s = types("s32", "u32", "u32");
        check("bfe.u32", "u32", u,
                row(0x12345678L, 4, 8, 0x67),
                row(0x12345678L, 28, 8, 0x1),        // the field runs past bit 31: zeros
                row(0x12345678L, 4, 0, 0),           // len 0
                row(0x12345678L, 32, 4, 0),          // pos past the msb
                row(0x12345678L, 0x104, 0x208, 0x67), // only the low 8 bits of pos and len count
                row(0xffffffffL, 0, 32, 0xffffffffL),
                row(0xffffffffL, 0, 200, 0xffffffffL));
        check("bfe.s32", "s32", s,
                row(0x000000f0L, 4, 4, 0xffffffffL), // field 0b1111: its top bit fills
                row(0x000000f0L, 4, 5, 0xf),         // field 0b01111
                row(0x80000000L, 28, 8, 0xfffffff8L), // sign bit taken from bit min(pos+len-1, 31) = 31
                row(0x80000000L, 40, 4, 0xffffffffL), // nothing in range: every bit is that sign bit
                row(0x7fffffffL, 40, 4, 0),
                row(0xffffffffL, 4, 0, 0));          // len 0 gives 0 even when signed
        check("bfe.u64", "u64", types("u64", "u32", "u32"), row(0xfedcba9876543210L, 60, 8, 0xf), row(0xfedcba9876543210L, 8, 16, 0x5432));
        check("bfe.s64", "s64", types("s64", "u32", "u32"), row(0x0000800000000000L, 44, 4, -8L),
                row(0xfedcba9876543210L, 60, 8, -1L), row(0x8000000000000000L, 70, 1, -1L));
    }

    @Test
    public void bfiInsertsTheLowBitsOfA() {
        String[] t = types("b32", "b32", "u32", "u32");
        check("bfi.b32", "b32", t,
                row(0xffL, 0x12345678L, 8, 8, 0x1234ff78L),
                row(0xffL, 0x12345678L, 28, 8, 0xf2345678L), // clipped at bit 31
                row(0xffL, 0x12345678L, 8, 0, 0x12345678L),
                row(0xffL, 0x12345678L, 32, 8, 0x12345678L),
                row(0xabcdL, 0, 0x110, 0x108, 0x00cd0000L),  // pos 16, len 8: low 8 bits of pos/len
                row(0L, 0xffffffffL, 0, 32, 0));
        check("bfi.b64", "b64", types("b64", "b64", "u32", "u32"), row(0xabL, -1L, 56, 8, 0xabffffffffffffffL),
                row(0xffffL, 0, 60, 16, 0xf000000000000000L));
    }

    @Test
    public void prmtSelectsBytesInEveryMode() {
        // Bytes 0..7 of {b, a}: a = 0x44332211, b = 0x88776655.
        long a = 0x44332211L, b = 0x88776655L;
        String[] t = types("b32", "b32", "b32");
        check("prmt.b32", "b32", t,
                row(a, b, 0x5410, 0x66552211L),
                row(a, b, 0x3210, a),
                row(a, b, 0x7654, b),
                row(a, b, 0x0123, 0x11223344L),
                row(a, b, 0x7f3b, 0x88ff4400L),      // 0xb and 0xf: replicate the sign bit of bytes 3 and 7
                row(a, b, 0xffff5410L, 0x66552211L)); // only the low 16 bits select
        check("prmt.b32.f4e", "b32", t, row(a, b, 0, 0x44332211L), row(a, b, 1, 0x55443322L), row(a, b, 2, 0x66554433L),
                row(a, b, 3, 0x77665544L), row(a, b, 7, 0x77665544L));
        check("prmt.b32.b4e", "b32", t, row(a, b, 0, 0x66778811L), row(a, b, 1, 0x77881122L), row(a, b, 2, 0x88112233L),
                row(a, b, 3, 0x11223344L));
        check("prmt.b32.rc8", "b32", t, row(a, b, 0, 0x11111111L), row(a, b, 2, 0x33333333L), row(a, b, 3, 0x44444444L));
        check("prmt.b32.ecl", "b32", t, row(a, b, 0, 0x44332211L), row(a, b, 1, 0x44332222L), row(a, b, 2, 0x44333333L),
                row(a, b, 3, 0x44444444L));
        check("prmt.b32.ecr", "b32", t, row(a, b, 0, 0x11111111L), row(a, b, 1, 0x22222211L), row(a, b, 2, 0x33332211L),
                row(a, b, 3, 0x44332211L));
        check("prmt.b32.rc16", "b32", t, row(a, b, 0, 0x22112211L), row(a, b, 1, 0x44334433L), row(a, b, 3, 0x44334433L));
    }

    @Test
    public void lop3AppliesItsTruthTable() {
        // With a = 0xF0, b = 0xCC, c = 0xAA in every byte the result is the table itself.
        String[] t = types("b32", "b32", "b32");
        for (int lut : new int[] {0x00, 0xff, 0x96, 0xe8, 0xca, 0x80, 0xfe, 0x0f, 0x3c, 0x01}) {
            check("lop3.b32 $d, $1, $2, $3, " + lut, "b32", t, row(0xf0f0f0f0L, 0xccccccccL, 0xaaaaaaaaL, lut * 0x01010101L));
        }
        long x = 0x12345678L, y = 0x9abcdef0L, z = 0x0f0f0f0fL;
        long[][] rows = {row(x, y, z)};
        long[][] out = Ptx.rows(""
                + "  ld.global.b32 %r1, [%rd30];\n  ld.global.b32 %r2, [%rd30+8];\n  ld.global.b32 %r3, [%rd30+16];\n"
                + "  lop3.b32 %r4, %r1, %r2, %r3, 0x96;\n  st.global.b32 [%rd31], %r4;\n"
                + "  lop3.b32 %r5, %r1, %r2, %r3, 0xe8;\n  st.global.b32 [%rd31+8], %r5;\n"
                + "  lop3.b32 %r6, %r1, %r2, %r3, 0xca;\n  st.global.b32 [%rd31+16], %r6;\n", rows);
        Ptx.assertHex("a ^ b ^ c", 0x87878787L, out[0][0] & 0xffffffffL);
        Ptx.assertHex("majority", 0x1a3c5e78L, out[0][1] & 0xffffffffL);
        Ptx.assertHex("a ? b : c", 0x1f3f5f77L, out[0][2] & 0xffffffffL);
    }

    @Test
    public void funnelShiftsWrapOrClampTheCount() {
        long a = 0x12345678L, b = 0x9abcdef0L;
        String[] t = types("b32", "b32", "u32");
        check("shf.l.wrap.b32", "b32", t, row(a, b, 8, 0xbcdef012L), row(a, b, 40, 0xbcdef012L), row(a, b, 0, b), row(a, b, 32, b),
                row(a, b, 4, 0xabcdef01L));
        check("shf.l.clamp.b32", "b32", t, row(a, b, 8, 0xbcdef012L), row(a, b, 40, a), row(a, b, 32, a), row(a, b, 0xffffffffL, a));
        check("shf.r.wrap.b32", "b32", t, row(a, b, 8, 0xf0123456L), row(a, b, 40, 0xf0123456L), row(a, b, 0, a), row(a, b, 28, 0xabcdef01L));
        check("shf.r.clamp.b32", "b32", t, row(a, b, 8, 0xf0123456L), row(a, b, 40, b), row(a, b, 32, b));
    }

    @Test
    public void shiftsByTheWidthOrMoreGiveZeroOrTheSign() {
        String[] t32 = types("b32", "u32");
        check("shl.b32", "b32", t32, row(1, 31, 0x80000000L), row(1, 32, 0), row(0xffffffffL, 100, 0), row(3, 0, 3),
                row(1, 0xffffffffL, 0));
        check("shr.u32", "u32", types("u32", "u32"), row(0x80000000L, 31, 1), row(0x80000000L, 32, 0), row(0xffffffffL, 33, 0));
        check("shr.s32", "s32", types("s32", "u32"), row(0x80000000L, 31, 0xffffffffL), row(0x80000000L, 32, 0xffffffffL),
                row(0x80000000L, 100, 0xffffffffL), row(0x40000000L, 40, 0), row(-8, 1, -4), row(0x80000000L, 0xffffffffL, 0xffffffffL));
        check("shr.b32", "b32", t32, row(0x80000000L, 4, 0x08000000L));
        check("shl.b64", "b64", types("b64", "u32"), row(1, 63, Long.MIN_VALUE), row(1, 64, 0), row(-1L, 65, 0));
        check("shr.u64", "u64", types("u64", "u32"), row(Long.MIN_VALUE, 63, 1), row(Long.MIN_VALUE, 64, 0));
        check("shr.s64", "s64", types("s64", "u32"), row(Long.MIN_VALUE, 64, -1L), row(Long.MIN_VALUE, 200, -1L), row(Long.MAX_VALUE, 64, 0));
        check("shl.b16", "b16", types("b16", "u32"), row(1, 15, 0x8000), row(1, 16, 0));
        check("shr.u16", "u16", types("u16", "u32"), row(0x8000, 15, 1), row(0x8000, 16, 0));
        check("shr.s16", "s16", types("s16", "u32"), row(0x8000, 15, 0xffff), row(0x8000, 17, 0xffff), row(0x4000, 16, 0));
    }

    @Test
    public void highAndWideMultiplies() {
        long a = 0x12345678L, b = 0x9abcdef0L;
        check("mul.hi.u32", "u32", types("u32", "u32"), row(a, b, 0x0b00ea4eL), row(0xffffffffL, 0xffffffffL, 0xfffffffeL));
        check("mul.hi.s32", "s32", types("s32", "s32"), row(a, b, 0xf8cc93d6L), row(-1, -1, 0), row(0x80000000L, 0x80000000L, 0x40000000L));
        check("mul.wide.u32", "u64", types("u32", "u32"), row(a, b, 0x0b00ea4e242d2080L), row(0xffffffffL, 0xffffffffL, 0xfffffffe00000001L));
        check("mul.wide.s32", "s64", types("s32", "s32"), row(a, b, 0xf8cc93d6242d2080L), row(0x80000000L, 0x80000000L, 1L << 62));
        check("mul.wide.u16", "u32", types("u16", "u16"), row(0xfffe, 0xfffd, 0xfffb0006L));
        check("mul.wide.s16", "s32", types("s16", "s16"), row(0xfffe, 0xfffd, 6), row(0x8000, 0x7fff, 0xc0008000L));
        check("mul.hi.u64", "u64", types("u64", "u64"), row(0x123456789abcdef0L, 0xfedcba9876543210L, 0x121fa00ad77d7422L),
                row(-1L, -1L, -2L));
        check("mul.hi.s64", "s64", types("s64", "s64"), row(0x123456789abcdef0L, 0xfedcba9876543210L, 0xffeb49923cc09532L),
                row(-1L, -1L, 0), row(Long.MIN_VALUE, Long.MIN_VALUE, 1L << 62));
        check("mul.hi.u16", "u16", types("u16", "u16"), row(0xffff, 0xffff, 0xfffe));
        check("mad.hi.u32", "u32", types("u32", "u32", "u32"), row(a, b, 0x11111111L, 0x1c11fb5fL));
        check("mad.hi.s32", "s32", types("s32", "s32", "s32"), row(-1, -1, 5, 5), row(0x80000000L, 2, 0, -1));
        check("mad.wide.s32", "s64", types("s32", "s32", "s64"), row(a, b, 0x0123456789abcdefL, 0xf9efd93dadd8ee6fL));
        check("mad.wide.u32", "u64", types("u32", "u32", "u64"), row(0xffffffffL, 0xffffffffL, 0x1fffffffeL, -1L));
        check("mad.hi.u64", "u64", types("u64", "u64", "u64"), row(-1L, -1L, 3, 1));
        // mad.hi.sat.s32 saturates the 32-bit sum of the high half and c.
        check("mad.hi.sat.s32", "s32", types("s32", "s32", "s32"), row(0x7fffffffL, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL),
                row(0x80000000L, 0x7fffffffL, 0x80000000L, 0x80000000L), row(4, 0x40000000L, 1, 2));
    }

    @Test
    public void mul24UsesTheLow24BitsAndSadAddsTheAbsoluteDifference() {
        long a = 0xff123456L, b = 0x00abcdefL;
        check("mul24.lo.u32", "u32", types("u32", "u32"), row(a, b, 0x9a59ba4aL));
        check("mul24.hi.u32", "u32", types("u32", "u32"), row(a, b, 0x0c379a59L));
        check("mul24.lo.s32", "s32", types("s32", "s32"), row(a, b, 0x4459ba4aL), row(0x00800000L, 2, 0xff000000L));
        check("mul24.hi.s32", "s32", types("s32", "s32"), row(a, b, 0xfa034459L));
        check("mad24.lo.u32", "u32", types("u32", "u32", "u32"), row(a, b, 5, 0x9a59ba4fL));
        check("sad.u32", "u32", types("u32", "u32", "u32"), row(3, 10, 100, 107), row(10, 3, 100, 107), row(0, 0xffffffffL, 1, 0));
        check("sad.s32", "s32", types("s32", "s32", "s32"), row(-3, 10, 100, 113), row(0x80000000L, 0x7fffffffL, 0, 0xffffffffL));
        check("sad.u16", "u16", types("u16", "u16", "u16"), row(0xffff, 1, 2, 0x0000));
    }

    @Test
    public void bmskSzextAndDotProducts() {
        String[] u2 = types("u32", "u32");
        // bmsk d, a, b: b ones starting at bit a
        check("bmsk.wrap.b32", "b32", u2, row(4, 8, 0x00000ff0L), row(28, 8, 0xf0000000L), row(36, 8, 0x00000ff0L), row(0, 32, 0),
                row(0, 31, 0x7fffffffL));
        check("bmsk.clamp.b32", "b32", u2, row(36, 8, 0), row(0, 32, 0xffffffffL), row(0, 40, 0xffffffffL), row(8, 40, 0xffffff00L));
        // szext d, a, b: extend a from its low b bits
        check("szext.wrap.s32", "s32", types("s32", "u32"), row(0xf0, 8, 0xfffffff0L), row(0x70, 8, 0x70), row(0xf0, 0, 0),
                row(0xf0, 40, 0xfffffff0L), row(0x12345678L, 32, 0));
        check("szext.clamp.s32", "s32", types("s32", "u32"), row(0x12345678L, 40, 0x12345678L), row(0x80, 8, 0xffffff80L));
        check("szext.clamp.u32", "u32", u2, row(0xfffffff0L, 4, 0), row(0xfffffff0L, 8, 0xf0), row(0xfffffff0L, 33, 0xfffffff0L));
        // dp4a: four byte products plus c; dp2a: two halfword-by-byte products (.lo bytes 0-1, .hi bytes 2-3)
        check("dp4a.u32.u32", "u32", types("u32", "u32", "u32"), row(0x01020304L, 0x05060708L, 10, 80));
        check("dp4a.s32.s32", "s32", types("s32", "s32", "s32"), row(0xff02fd04L, 0x01010101L, -5, -3), row(0x80808080L, 0x80808080L, 0, 65536));
        check("dp4a.s32.u32", "s32", types("s32", "u32", "s32"), row(0xffffffffL, 0xffffffffL, 0, -1020));
        check("dp2a.lo.u32.u32", "u32", types("u32", "u32", "u32"), row(0x00020003L, 0x00000504L, 0, 22));
        check("dp2a.hi.u32.u32", "u32", types("u32", "u32", "u32"), row(0x00020003L, 0x05040000L, 1, 23));
        check("dp2a.lo.s32.s32", "s32", types("s32", "s32", "s32"), row(0xffff0002L, 0x000003ffL, 0, -5)); // 2 * -1 + -1 * 3
    }

    // ------------------------------------------------------------------ carry chains

    private static final BigInteger TWO64 = BigInteger.ONE.shiftLeft(64), TWO128 = BigInteger.ONE.shiftLeft(128);

    private static BigInteger u(long v) {
        return new BigInteger(Long.toUnsignedString(v));
    }

    private static BigInteger u128(long lo, long hi) {
        return u(hi).shiftLeft(64).add(u(lo));
    }

    private static final long[][] WIDE = {
        row(0x00000001ffffffffL, 0, 1, 0), row(-1L, 0, 1, 0), row(-1L, -1L, 1, 0), row(-1L, -1L, -1L, -1L),
        row(Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE), row(0xffffffff00000000L, 0x7fffffffffffffffL, 0x100000000L, 0),
        row(0x123456789abcdef0L, 0x0fedcba987654321L, 0xfedcba9876543210L, 0x0123456789abcdefL), row(0, 0, 0, 0), row(0, 0, 1, 0),
    };

    @Test
    public void add64FromTwo32BitLimbs() {
        long[][] out = Ptx.rows(""
                + "  ld.global.u32 %r1, [%rd30];\n  ld.global.u32 %r2, [%rd30+4];\n"
                + "  ld.global.u32 %r3, [%rd30+16];\n  ld.global.u32 %r4, [%rd30+20];\n"
                + "  add.cc.u32 %r5, %r1, %r3;\n  addc.cc.u32 %r6, %r2, %r4;\n  addc.u32 %r7, 0, 0;\n"
                + "  st.global.u32 [%rd31], %r5;\n  st.global.u32 [%rd31+4], %r6;\n  st.global.u32 [%rd31+8], %r7;\n", WIDE);
        for (int i = 0; i < WIDE.length; i++) {
            BigInteger s = u(WIDE[i][0]).add(u(WIDE[i][2]));
            Ptx.assertHex("sum " + i, s.mod(TWO64).longValue(), out[i][0]);
            Ptx.assertHex("carry " + i, s.compareTo(TWO64) >= 0 ? 1 : 0, out[i][1] & 0xffffffffL);
        }
    }

    @Test
    public void add128FromFour32BitLimbsAndFromTwo64BitLimbs() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 4; i++) {
            b.append("  ld.global.u32 %r").append(1 + i).append(", [%rd30+").append(4 * i).append("];\n");
            b.append("  ld.global.u32 %r").append(5 + i).append(", [%rd30+").append(16 + 4 * i).append("];\n");
        }
        b.append("  add.cc.u32 %r9, %r1, %r5;\n  addc.cc.u32 %r10, %r2, %r6;\n  addc.cc.u32 %r11, %r3, %r7;\n"
                + "  addc.cc.u32 %r12, %r4, %r8;\n  addc.u32 %r13, 0, 0;\n");
        for (int i = 0; i < 4; i++) {
            b.append("  st.global.u32 [%rd31+").append(4 * i).append("], %r").append(9 + i).append(";\n");
        }
        b.append("  st.global.u32 [%rd31+16], %r13;\n");
        // The same sum as nvcc writes it for __int128: two 64-bit limbs.
        b.append("  ld.global.u64 %rd1, [%rd30];\n  ld.global.u64 %rd2, [%rd30+8];\n  ld.global.u64 %rd3, [%rd30+16];\n"
                + "  ld.global.u64 %rd4, [%rd30+24];\n  add.cc.s64 %rd5, %rd1, %rd3;\n  addc.cc.s64 %rd6, %rd2, %rd4;\n"
                + "  addc.u32 %r14, 0, 0;\n  st.global.u32 [%rd31+20], %r14;\n  xor.b64 %rd7, %rd5, %rd1;\n"
                + "  st.global.u64 [%rd31+24], %rd6;\n");
        long[][] out = Ptx.rows(b.toString(), WIDE);
        for (int i = 0; i < WIDE.length; i++) {
            BigInteger s = u128(WIDE[i][0], WIDE[i][1]).add(u128(WIDE[i][2], WIDE[i][3]));
            BigInteger r = s.mod(TWO128);
            long carry = s.compareTo(TWO128) >= 0 ? 1 : 0;
            Ptx.assertHex("32-bit limbs, low half of sum " + i, r.mod(TWO64).longValue(), out[i][0]);
            Ptx.assertHex("32-bit limbs, high half of sum " + i, r.shiftRight(64).longValue(), out[i][1]);
            Ptx.assertHex("32-bit limbs, carry " + i, carry, out[i][2] & 0xffffffffL);
            Ptx.assertHex("64-bit limbs, carry " + i, carry, out[i][2] >>> 32);
            Ptx.assertHex("64-bit limbs, high half of sum " + i, r.shiftRight(64).longValue(), out[i][3]);
        }
    }

    @Test
    public void sub128BorrowsThroughEveryLimb() {
        long[][] out = Ptx.rows(""
                + "  ld.global.u64 %rd1, [%rd30];\n  ld.global.u64 %rd2, [%rd30+8];\n  ld.global.u64 %rd3, [%rd30+16];\n"
                + "  ld.global.u64 %rd4, [%rd30+24];\n  sub.cc.u64 %rd5, %rd1, %rd3;\n  subc.cc.u64 %rd6, %rd2, %rd4;\n"
                + "  subc.u32 %r1, 0, 0;\n"                       // 0 - 0 - borrow
                + "  st.global.u64 [%rd31], %rd5;\n  st.global.u64 [%rd31+8], %rd6;\n  st.global.u32 [%rd31+16], %r1;\n"
                // the low 64 bits again from 32-bit limbs
                + "  ld.global.u32 %r2, [%rd30];\n  ld.global.u32 %r3, [%rd30+4];\n  ld.global.u32 %r4, [%rd30+16];\n"
                + "  ld.global.u32 %r5, [%rd30+20];\n  sub.cc.u32 %r6, %r2, %r4;\n  subc.cc.u32 %r7, %r3, %r5;\n"
                + "  subc.u32 %r8, 0, 0;\n"
                + "  st.global.u32 [%rd31+24], %r6;\n  st.global.u32 [%rd31+28], %r7;\n  st.global.u32 [%rd31+20], %r8;\n", WIDE);
        for (int i = 0; i < WIDE.length; i++) {
            BigInteger x = u128(WIDE[i][0], WIDE[i][1]), y = u128(WIDE[i][2], WIDE[i][3]);
            BigInteger r = x.subtract(y).mod(TWO128);
            Ptx.assertHex("difference low " + i, r.mod(TWO64).longValue(), out[i][0]);
            Ptx.assertHex("difference high " + i, r.shiftRight(64).longValue(), out[i][1]);
            Ptx.assertHex("borrow " + i, x.compareTo(y) < 0 ? 0xffffffffL : 0, out[i][2] & 0xffffffffL);
            boolean lowBorrow = Long.compareUnsigned(WIDE[i][0], WIDE[i][2]) < 0;
            Ptx.assertHex("64-bit borrow from 32-bit limbs " + i, lowBorrow ? 0xffffffffL : 0, out[i][2] >>> 32);
            Ptx.assertHex("64-bit difference from 32-bit limbs " + i, WIDE[i][0] - WIDE[i][2], out[i][3]);
        }
    }

    @Test
    public void madWithCarryBuildsA64BitMultiplyAdd() {
        long[][] rows = {row(0xffffffffL, 0xffffffffL, -1L), row(0x12345678L, 0x9abcdef0L, 0xfedcba9876543210L), row(0, 0, -1L),
            row(0x80000000L, 2, 0xffffffffL)};
        long[][] out = Ptx.rows(""
                + "  ld.global.u32 %r1, [%rd30];\n  ld.global.u32 %r2, [%rd30+8];\n"
                + "  ld.global.u32 %r3, [%rd30+16];\n  ld.global.u32 %r4, [%rd30+20];\n"
                + "  mad.lo.cc.u32 %r5, %r1, %r2, %r3;\n  madc.hi.cc.u32 %r6, %r1, %r2, %r4;\n  addc.u32 %r7, 0, 0;\n"
                + "  st.global.u32 [%rd31], %r5;\n  st.global.u32 [%rd31+4], %r6;\n  st.global.u32 [%rd31+8], %r7;\n", rows);
        for (int i = 0; i < rows.length; i++) {
            BigInteger s = u(rows[i][0]).multiply(u(rows[i][1])).add(u(rows[i][2]));
            Ptx.assertHex("a*b+c " + i, s.mod(TWO64).longValue(), out[i][0]);
            Ptx.assertHex("carry " + i, s.compareTo(TWO64) >= 0 ? 1 : 0, out[i][1] & 0xffffffffL);
        }
    }
}
