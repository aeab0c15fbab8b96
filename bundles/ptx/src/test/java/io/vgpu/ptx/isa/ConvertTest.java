package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.d;
import static io.vgpu.ptx.isa.Ptx.f;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;

import org.junit.Test;

/**
 * cvt: integer widths with and without .sat (including registers wider than the destination type,
 * which get the chopped value sign- or zero-extended), float to integer in the four integer rounding
 * modes with saturation and NaN to 0 (or to 1 << (bits - 1) from f64 or into 64 bits), integer to float in the four rounding modes, f64/f32, and
 * f32/f64 to f16/bf16 with ties, overflow and subnormals.
 */
public class ConvertTest {
    static final String[] MODES = Ref.MODES;

    /** Rows: the source, then the results under the four modes (mode names given with their suffix). */
    static void modes(String form, String dt, String at, String[] mods, long[]... rows) {
        for (int m = 0; m < 4; m++) {
            long[][] cases = new long[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                cases[i] = row(rows[i][0], rows[i][1 + m]);
            }
            check(String.format(form, mods[m]), dt, types(at), cases);
        }
    }

    @Test
    public void integerWideningAndNarrowing() {
        check("cvt.s32.s8", "s32", types("s8"), row(0x80, 0xffffff80L), row(0x7f, 0x7f), row(0x1f0, 0xfffffff0L)); // only the low byte counts
        check("cvt.u32.u8", "u32", types("u8"), row(0x80, 0x80), row(0x1f0, 0xf0));
        check("cvt.u32.s8", "u32", types("s8"), row(0x80, 0xffffff80L));
        check("cvt.s64.s32", "s64", types("s32"), row(0x80000000L, 0xffffffff80000000L), row(5, 5));
        check("cvt.u64.u32", "u64", types("u32"), row(0x80000000L, 0x80000000L));
        check("cvt.u64.s16", "u64", types("s16"), row(0x8000, 0xffffffffffff8000L));
        check("cvt.s16.s8", "s16", types("s8"), row(0x0080, 0xff80));
        check("cvt.u32.u64", "u32", types("u64"), row(0x123456789L, 0x23456789L));
        check("cvt.u16.u32", "u16", types("u32"), row(0x12345678L, 0x5678));
        check("cvt.s16.s64", "s16", types("s64"), row(0x18000L, 0x8000));
        // A destination register wider than the type: chop to the type, then extend by its signedness
        check("cvt.u8.u32 $d, $1", "u32", types("u32"), row(0x1ff, 0xff), row(0x100, 0));
        check("cvt.s8.s32 $d, $1", "s32", types("s32"), row(0x1ff, 0xffffffffL), row(0x17f, 0x7f), row(0x80, 0xffffff80L));
        check("cvt.s16.s32 $d, $1", "s32", types("s32"), row(0x18000L, 0xffff8000L), row(0x17fffL, 0x7fff));
        check("cvt.u16.s32 $d, $1", "u32", types("s32"), row(0xffff8000L, 0x8000));
        check("cvt.s8.s16", "s16", types("s16"), row(0x01ff, 0xffff), row(0x0110, 0x0010));
        check("cvt.u32.u16 $d, $1", "u64", types("u16"), row(0xffff, 0xffff));
        check("cvt.s32.s16 $d, $1", "s64", types("s16"), row(0x8000, 0xffffffffffff8000L)); // s32 is signed: sign-extended to the b64 register
    }

    /** Every pair of integer types, with and without .sat, from the definition: extend by the source type, then chop or clamp. */
    @Test
    public void everyIntegerPairWithAndWithoutSat() {
        String[] ints = {"u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64"};
        long[] values = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffffL, 0x80000000L, 0xffffffffL, 0x123456789L,
            Long.MAX_VALUE, Long.MIN_VALUE, -1L, -2L};
        for (String dt : ints) {
            for (String at : ints) {
                for (boolean sat : new boolean[] {false, true}) {
                    int ab = Integer.parseInt(at.substring(1)), db = Integer.parseInt(dt.substring(1));
                    boolean as = at.charAt(0) == 's', ds = dt.charAt(0) == 's';
                    int regBits = Math.max(16, db);
                    long[][] cases = new long[values.length][];
                    for (int i = 0; i < values.length; i++) {
                        long v = ext(values[i], ab, as);
                        long r;
                        if (!sat) {
                            r = ext(v, db, ds);
                        } else {
                            java.math.BigInteger x = as ? java.math.BigInteger.valueOf(v) : new java.math.BigInteger(Long.toUnsignedString(v));
                            java.math.BigInteger lo = ds ? java.math.BigInteger.ONE.shiftLeft(db - 1).negate() : java.math.BigInteger.ZERO;
                            java.math.BigInteger hi = (ds ? java.math.BigInteger.ONE.shiftLeft(db - 1) : java.math.BigInteger.ONE.shiftLeft(db))
                                    .subtract(java.math.BigInteger.ONE);
                            r = x.max(lo).min(hi).longValue();
                        }
                        cases[i] = row(values[i], regBits == 64 ? r : r & ((1L << regBits) - 1));
                    }
                    check("cvt" + (sat ? ".sat." : ".") + dt + "." + at, dt, types(at), cases);
                }
            }
        }
    }

    /** The low bits of v, sign- or zero-extended. */
    static long ext(long v, int bits, boolean signed) {
        if (bits == 64) {
            return v;
        }
        return signed ? (v << (64 - bits)) >> (64 - bits) : v & ((1L << bits) - 1);
    }

    @Test
    public void integerSaturation() {
        check("cvt.sat.s8.s32", "s8", types("s32"), row(200, 0x7f), row(-200, 0xff80), row(5, 5), row(-128, 0xff80));
        check("cvt.sat.u8.s32", "u8", types("s32"), row(-5, 0), row(300, 0xff), row(255, 0xff));
        check("cvt.sat.u32.s32", "u32", types("s32"), row(-1, 0), row(0x7fffffffL, 0x7fffffffL));
        check("cvt.sat.s32.u32", "s32", types("u32"), row(0xffffffffL, 0x7fffffffL), row(5, 5));
        check("cvt.sat.s32.s64", "s32", types("s64"), row(1L << 40, 0x7fffffffL), row(Long.MIN_VALUE, 0x80000000L), row(-5, -5));
        check("cvt.sat.u32.u64", "u32", types("u64"), row(1L << 40, 0xffffffffL), row(7, 7));
        check("cvt.sat.u32.s64", "u32", types("s64"), row(-1L, 0), row(1L << 33, 0xffffffffL));
        check("cvt.sat.s64.u64", "s64", types("u64"), row(-1L, Long.MAX_VALUE));
        check("cvt.sat.u64.s64", "u64", types("s64"), row(-1L, 0), row(Long.MAX_VALUE, Long.MAX_VALUE));
        check("cvt.sat.u16.s8", "u16", types("s8"), row(0xff, 0));
        check("cvt.sat.s16.u16", "s16", types("u16"), row(0x8000, 0x7fff));
        check("cvt.sat.s8.s32 $d, $1", "s32", types("s32"), row(-200, 0xffffff80L));
    }

    @Test
    public void floatToIntegerRoundsSaturatesAndMapsNaN() {
        long nan = 0x7fc00000L, inf = 0x7f800000L, ninf = 0xff800000L;
        String[] irnd = {"rni", "rzi", "rmi", "rpi"};
        modes("cvt.%s.s32.f32", "s32", "f32", irnd,
                row(f(2.5f), 2, 2, 2, 3),
                row(f(3.5f), 4, 3, 3, 4),
                row(f(-2.5f), -2, -2, -3, -2),
                row(f(-0.5f), 0, 0, -1, 0),
                row(f(2.7f), 3, 2, 2, 3),
                row(f(-2.1f), -2, -2, -3, -2),
                row(f(1e10f), 0x7fffffffL, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL),
                row(f(-1e10f), 0x80000000L, 0x80000000L, 0x80000000L, 0x80000000L),
                row(f(-2147483648f), 0x80000000L, 0x80000000L, 0x80000000L, 0x80000000L),
                row(nan, 0, 0, 0, 0),
                row(inf, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL),
                row(ninf, 0x80000000L, 0x80000000L, 0x80000000L, 0x80000000L));
        modes("cvt.%s.u32.f32", "u32", "f32", irnd,
                row(f(-1.5f), 0, 0, 0, 0),
                row(f(-0.4f), 0, 0, 0, 0),
                row(f(3.9f), 4, 3, 3, 4),
                row(f(4294967296f), 0xffffffffL, 0xffffffffL, 0xffffffffL, 0xffffffffL),
                row(f(4294967040f), 0xffffff00L, 0xffffff00L, 0xffffff00L, 0xffffff00L),
                row(nan, 0, 0, 0, 0),
                row(ninf, 0, 0, 0, 0));
        modes("cvt.%s.s64.f64", "s64", "f64", irnd,
                row(d(9.223372036854775807E18), Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE), // 2^63
                row(d(-9.223372036854775808E18), Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE),
                row(d(1e300), Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE),
                row(d(-1e300), Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE),
                row(d(-7.5), -8, -7, -8, -7),
                row(d(4503599627370497.0), 4503599627370497L, 4503599627370497L, 4503599627370497L, 4503599627370497L),
                row(0x7ff8000000000000L, Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE, Long.MIN_VALUE)); // NaN from f64: 1 << 63
        modes("cvt.%s.u64.f64", "u64", "f64", irnd,
                row(d(1.8446744073709552E19), -1L, -1L, -1L, -1L),              // 2^64
                row(d(9.223372036854777856E18), 0x8000000000000800L, 0x8000000000000800L, 0x8000000000000800L, 0x8000000000000800L),
                row(d(-0.9), 0, 0, 0, 0),
                row(d(2.5), 2, 2, 2, 3));
        check("cvt.rni.s16.f32", "s16", types("f32"), row(f(40000f), 0x7fff), row(f(-40000f), 0x8000), row(f(-1.5f), 0xfffe));
        check("cvt.rni.u8.f32", "u8", types("f32"), row(f(300f), 0xff), row(f(-3f), 0), row(f(254.5f), 0xfe));
        check("cvt.rzi.s8.f32 $d, $1", "s32", types("f32"), row(f(-200f), 0xffffff80L), row(f(-3.9f), 0xfffffffdL));
        check("cvt.rzi.s32.f16", "s32", types("f16"), row(0x7c00, 0x7fffffffL), row(0xc8b0, -9), row(0x7e00, 0));
        check("cvt.rni.s32.bf16", "s32", types("bf16"), row(0x4020, 2), row(0xc0a0, -5), row(0x4060, 4)); // 2.5 ties to 2, 3.5 to 4
        check("cvt.rzi.ftz.s32.f32", "s32", types("f32"), row(0x00000001L, 0));
        // NaN: 0, unless the source is f64 or the destination 64 bits wide: then 1 << (bits - 1)
        long fnan = 0x7fc00000L, dnan = 0x7ff8000000000000L;
        check("cvt.rni.s32.f32", "s32", types("f32"), row(fnan, 0));
        check("cvt.rzi.u16.f32", "u16", types("f32"), row(fnan, 0));
        check("cvt.rzi.s32.f16", "s32", types("f16"), row(0x7e00, 0));
        check("cvt.rzi.s64.f32", "s64", types("f32"), row(fnan, Long.MIN_VALUE));
        check("cvt.rzi.u64.f32", "u64", types("f32"), row(fnan, Long.MIN_VALUE));
        check("cvt.rzi.s32.f64", "s32", types("f64"), row(dnan, 0x80000000L));
        check("cvt.rzi.u32.f64", "u32", types("f64"), row(dnan, 0x80000000L));
        check("cvt.rzi.s16.f64", "s16", types("f64"), row(dnan, 0x8000));
        check("cvt.rmi.u64.f64", "u64", types("f64"), row(dnan, Long.MIN_VALUE));
    }

    @Test
    public void integerToFloatInEachMode() {
        String[] rnd = MODES;
        modes("cvt.%s.f32.s32", "f32", "s32", rnd,
                row(16777217, 0x4b800000L, 0x4b800000L, 0x4b800000L, 0x4b800001L), // 2^24 + 1: a tie
                row(16777219, 0x4b800002L, 0x4b800001L, 0x4b800001L, 0x4b800002L),
                row(-16777217, 0xcb800000L, 0xcb800000L, 0xcb800001L, 0xcb800000L),
                row(-1, 0xbf800000L, 0xbf800000L, 0xbf800000L, 0xbf800000L),
                row(0, 0, 0, 0, 0));
        modes("cvt.%s.f32.u32", "f32", "u32", rnd, row(0xffffffffL, 0x4f800000L, 0x4f7fffffL, 0x4f7fffffL, 0x4f800000L));
        modes("cvt.%s.f32.s64", "f32", "s64", rnd, row(Long.MAX_VALUE, 0x5f000000L, 0x5effffffL, 0x5effffffL, 0x5f000000L),
                row(Long.MIN_VALUE, 0xdf000000L, 0xdf000000L, 0xdf000000L, 0xdf000000L));
        modes("cvt.%s.f32.u64", "f32", "u64", rnd, row(-1L, 0x5f800000L, 0x5f7fffffL, 0x5f7fffffL, 0x5f800000L));
        modes("cvt.%s.f64.s64", "f64", "s64", rnd,
                row(0x3fffffffffffffffL, 0x43d0000000000000L, 0x43cfffffffffffffL, 0x43cfffffffffffffL, 0x43d0000000000000L),
                row(-0x3fffffffffffffffL, 0xc3d0000000000000L, 0xc3cfffffffffffffL, 0xc3d0000000000000L, 0xc3cfffffffffffffL),
                row(Long.MIN_VALUE, 0xc3e0000000000000L, 0xc3e0000000000000L, 0xc3e0000000000000L, 0xc3e0000000000000L));
        modes("cvt.%s.f64.u64", "f64", "u64", rnd, row(-1L, 0x43f0000000000000L, 0x43efffffffffffffL, 0x43efffffffffffffL, 0x43f0000000000000L));
        check("cvt.rn.f64.s32", "f64", types("s32"), row(0x80000000L, d(-2147483648.0)));
        check("cvt.rn.f64.u32", "f64", types("u32"), row(0xffffffffL, d(4294967295.0)));
        modes("cvt.%s.f16.s32", "f16", "s32", rnd,
                row(2049, 0x6800, 0x6800, 0x6800, 0x6801),
                row(2051, 0x6802, 0x6801, 0x6801, 0x6802),
                row(65520, 0x7c00, 0x7bff, 0x7bff, 0x7c00),
                row(100000, 0x7c00, 0x7bff, 0x7bff, 0x7c00),
                row(-100000, 0xfc00, 0xfbff, 0xfc00, 0xfbff));
        modes("cvt.%s.f16.u16", "f16", "u16", rnd, row(0xffff, 0x7c00, 0x7bff, 0x7bff, 0x7c00));
        modes("cvt.%s.bf16.s32", "bf16", "s32", rnd,
                row(257, 0x4380, 0x4380, 0x4380, 0x4381),
                row(259, 0x4382, 0x4381, 0x4381, 0x4382),
                row(0x01ffffff, 0x4c00, 0x4bff, 0x4bff, 0x4c00),   // 2^25 - 1: rounded once, not via f32
                row(-0x01ffffff, 0xcc00, 0xcbff, 0xcc00, 0xcbff));
        modes("cvt.%s.bf16.u32", "bf16", "u32", rnd, row(0x01ffffff, 0x4c00, 0x4bff, 0x4bff, 0x4c00));
    }

    @Test
    public void f64AndF32() {
        modes("cvt.%s.f32.f64", "f32", "f64", MODES,
                row(d(1 + 0x1p-24), 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800001L),   // a tie
                row(d(1 + 0x1p-24 + 0x1p-50), 0x3f800001L, 0x3f800000L, 0x3f800000L, 0x3f800001L),
                row(d(1e39), 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L),
                row(d(-1e39), 0xff800000L, 0xff7fffffL, 0xff800000L, 0xff7fffffL),
                row(d(0x1p-140), 0x00000200L, 0x00000200L, 0x00000200L, 0x00000200L),
                row(d(1e-50), 0, 0, 0, 1),
                row(d(-1e-50), 0x80000000L, 0x80000000L, 0x80000001L, 0x80000000L),
                row(0x7ff8000000000001L, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL, 0x7fffffffL),
                row(0xfff0000000000000L, 0xff800000L, 0xff800000L, 0xff800000L, 0xff800000L));
        check("cvt.rn.ftz.f32.f64", "f32", types("f64"), row(d(0x1p-140), 0), row(d(-0x1p-140), 0x80000000L));
        check("cvt.f64.f32", "f64", types("f32"), row(0x00000001L, 0x36a0000000000000L), row(0x80000000L, 0x8000000000000000L),
                row(0x7f800000L, 0x7ff0000000000000L), row(f(0.1f), d(0.1f)));
        check("cvt.ftz.f64.f32", "f64", types("f32"), row(0x00000001L, 0), row(0x80400000L, 0x8000000000000000L));
        String[] irnd = {"rni", "rzi", "rmi", "rpi"};
        modes("cvt.%s.f32.f32", "f32", "f32", irnd,
                row(f(2.5f), f(2f), f(2f), f(2f), f(3f)),
                row(f(-0.5f), f(-0f), f(-0f), f(-1f), f(-0f)),
                row(f(1.5f), f(2f), f(1f), f(1f), f(2f)),
                row(f(-2.7f), f(-3f), f(-2f), f(-3f), f(-2f)),
                row(f(16777215f), f(16777215f), f(16777215f), f(16777215f), f(16777215f)),
                row(0x7f800000L, 0x7f800000L, 0x7f800000L, 0x7f800000L, 0x7f800000L));
        modes("cvt.%s.f64.f64", "f64", "f64", irnd, row(d(2.5), d(2), d(2), d(2), d(3)), row(d(-0.25), d(-0.0), d(-0.0), d(-1), d(-0.0)));
    }

    @Test
    public void toHalfRoundsOverflowsAndKeepsSubnormals() {
        modes("cvt.%s.f16.f32", "f16", "f32", MODES,
                row(0x3f801000L, 0x3c00, 0x3c00, 0x3c00, 0x3c01),   // 1 + 2^-11: a tie
                row(0x3f801008L, 0x3c01, 0x3c00, 0x3c00, 0x3c01),
                row(0x3f800008L, 0x3c00, 0x3c00, 0x3c00, 0x3c01),   // 1 + 2^-20
                row(0xbf800008L, 0xbc00, 0xbc00, 0xbc01, 0xbc00),
                row(0x477fef00L, 0x7bff, 0x7bff, 0x7bff, 0x7c00),   // 65519
                row(0x477ff000L, 0x7c00, 0x7bff, 0x7bff, 0x7c00),   // 65520: a tie, even is inf
                row(0x49742400L, 0x7c00, 0x7bff, 0x7bff, 0x7c00),   // 1e6
                row(0xc9742400L, 0xfc00, 0xfbff, 0xfc00, 0xfbff),
                row(0x33800000L, 0x0001, 0x0001, 0x0001, 0x0001),   // 2^-24, the smallest subnormal
                row(0x33000000L, 0x0000, 0x0000, 0x0000, 0x0001),   // 2^-25: a tie, even is 0
                row(0x33000100L, 0x0001, 0x0000, 0x0000, 0x0001),
                row(0x33400000L, 0x0001, 0x0000, 0x0000, 0x0001),   // 0.75 * 2^-24
                row(0x33c00000L, 0x0002, 0x0001, 0x0001, 0x0002),   // 1.5 * 2^-24: a tie
                row(0x387fe000L, 0x0400, 0x03ff, 0x03ff, 0x0400),   // 2^-14 - 2^-25: a tie with the smallest normal
                row(0x80000000L, 0x8000, 0x8000, 0x8000, 0x8000),
                row(0x7f800000L, 0x7c00, 0x7c00, 0x7c00, 0x7c00),
                row(0x7fc00001L, 0x7fff, 0x7fff, 0x7fff, 0x7fff));
        check("cvt.rn.relu.f16.f32", "f16", types("f32"), row(f(-1f), 0), row(f(2f), 0x4000), row(0x7fc00000L, 0x7fff));
        check("cvt.rn.f16.f64", "f16", types("f64"), row(0x3ff0020000001000L, 0x3c01)); // 1 + 2^-11 + 2^-40: above the tie
        check("cvt.rz.f16.f64", "f16", types("f64"), row(0x3ff0020000001000L, 0x3c00));
        check("cvt.f32.f16", "f32", types("f16"), row(0x0001, 0x33800000L), row(0x7bff, 0x477fe000L), row(0x7c00, 0x7f800000L),
                row(0xfc00, 0xff800000L), row(0x8000, 0x80000000L), row(0x3555, f(0x1.554p-2f)), row(0x7e00, 0x7fffffffL));
        check("cvt.f64.f16", "f64", types("f16"), row(0x03ff, d(1023 * 0x1p-24)), row(0xc8b0, d(-9.375)));
        // cvt.rn.f16x2.f32 d, a, b: a goes to the upper half
        long[][] out = Ptx.rows("  ld.global.f32 %f1, [%rd30];\n  ld.global.f32 %f2, [%rd30+8];\n"
                + "  cvt.rn.f16x2.f32 %r1, %f1, %f2;\n  st.global.b32 [%rd31], %r1;\n"
                + "  cvt.rz.f16x2.f32 %r2, %f1, %f2;\n  st.global.b32 [%rd31+8], %r2;\n"
                + "  cvt.rn.relu.f16x2.f32 %r3, %f1, %f2;\n  st.global.b32 [%rd31+16], %r3;\n"
                + "  cvt.rn.bf16x2.f32 %r4, %f1, %f2;\n  st.global.b32 [%rd31+24], %r4;\n",
                new long[][] {row(f(1f), f(2f)), row(0x3f801008L, f(-65520f))});
        Ptx.assertHex("f16x2 rn", 0x3c004000L, out[0][0] & 0xffffffffL);
        Ptx.assertHex("f16x2 rn, row 1", 0x3c01fc00L, out[1][0] & 0xffffffffL);
        Ptx.assertHex("f16x2 rz, row 1", 0x3c00fbffL, out[1][1] & 0xffffffffL);
        Ptx.assertHex("f16x2 relu, row 1", 0x3c010000L, out[1][2] & 0xffffffffL);
        Ptx.assertHex("bf16x2 rn", 0x3f804000L, out[0][3] & 0xffffffffL);
    }

    @Test
    public void toBf16RoundsOnce() {
        modes("cvt.%s.bf16.f32", "bf16", "f32", new String[] {"rn", "rz", "rm", "rp"},
                row(0x3f808000L, 0x3f80, 0x3f80, 0x3f80, 0x3f81),   // 1 + 2^-8: a tie
                row(0x3f808008L, 0x3f81, 0x3f80, 0x3f80, 0x3f81),
                row(0xbf808008L, 0xbf81, 0xbf80, 0xbf81, 0xbf80),
                row(0x3fffffffL, 0x4000, 0x3fff, 0x3fff, 0x4000),
                row(0x7f7fffffL, 0x7f80, 0x7f7f, 0x7f7f, 0x7f80),   // overflow
                row(0x00008000L, 0x0000, 0x0000, 0x0000, 0x0001),   // subnormal tie, even is 0
                row(0x00018000L, 0x0002, 0x0001, 0x0001, 0x0002),
                row(0x7fc00001L, 0x7fff, 0x7fff, 0x7fff, 0x7fff));
        // From f64 the value is rounded once: 1 + 2^-8 + 2^-30 is above the tie (via f32 it would become the tie)
        modes("cvt.%s.bf16.f64", "bf16", "f64", new String[] {"rn", "rz", "rm", "rp"},
                row(0x3ff0100000400000L, 0x3f81, 0x3f80, 0x3f80, 0x3f81));
        check("cvt.f32.bf16", "f32", types("bf16"), row(0x3f81, 0x3f810000L), row(0x0001, 0x00010000L), row(0xff80, 0xff800000L));
        check("cvt.rn.relu.bf16.f32", "bf16", types("f32"), row(f(-3f), 0), row(f(3f), 0x4040));
    }
}
