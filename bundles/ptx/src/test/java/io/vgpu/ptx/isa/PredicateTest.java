package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.d;
import static io.vgpu.ptx.isa.Ptx.f;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;

import org.junit.Test;

/** setp (every comparison, ordered and unordered, combined with .and/.or/.xor, p|q), selp, slct, set, predicate logic. */
public class PredicateTest {
    /** a and b as signed or unsigned numbers of the type's width. */
    static boolean intCmp(String op, long a, long b, int bits, boolean signed) {
        long x = bits == 64 ? a : signed ? (a << (64 - bits)) >> (64 - bits) : a & ((1L << bits) - 1);
        long y = bits == 64 ? b : signed ? (b << (64 - bits)) >> (64 - bits) : b & ((1L << bits) - 1);
        int c = signed ? Long.compare(x, y) : Long.compareUnsigned(x, y);
        int u = Long.compareUnsigned(x & (bits == 64 ? -1L : (1L << bits) - 1), y & (bits == 64 ? -1L : (1L << bits) - 1));
        switch (op) {
            case "eq": return c == 0;
            case "ne": return c != 0;
            case "lt": return c < 0;
            case "le": return c <= 0;
            case "gt": return c > 0;
            case "ge": return c >= 0;
            case "lo": return u < 0;
            case "ls": return u <= 0;
            case "hi": return u > 0;
            default: return u >= 0; // hs
        }
    }

    @Test
    public void integerComparisonsFollowTheTypesSignedness() {
        long[][] pairs = {{-1, 1}, {1, -1}, {5, 5}, {0x80000000L, 0x7fffffffL}, {0, 0xffffffffL}, {0x8000, 0x7fff},
            {Long.MIN_VALUE, Long.MAX_VALUE}, {0x1_0000_0001L, 1}, {0xffff0001L, 0xffff}};
        String[] ops = {"eq", "ne", "lt", "le", "gt", "ge"};
        String[] unsignedOps = {"lo", "ls", "hi", "hs"};
        for (String t : new String[] {"s32", "u32", "s16", "u16", "s64", "u64", "b32", "b16", "b64"}) {
            int bits = Ptx.bits(t);
            boolean signed = t.startsWith("s");
            boolean bitType = t.startsWith("b");
            for (String op : bitType ? new String[] {"eq", "ne"} : ops) {
                long[][] cases = new long[pairs.length][];
                for (int i = 0; i < pairs.length; i++) {
                    cases[i] = row(pairs[i][0], pairs[i][1], intCmp(op, pairs[i][0], pairs[i][1], bits, signed) ? 1 : 0);
                }
                check("setp." + op + "." + t, "pred", types(t, t), cases);
            }
            if (!signed) {
                for (String op : unsignedOps) {
                    long[][] cases = new long[pairs.length][];
                    for (int i = 0; i < pairs.length; i++) {
                        cases[i] = row(pairs[i][0], pairs[i][1], intCmp(op, pairs[i][0], pairs[i][1], bits, false) ? 1 : 0);
                    }
                    check("setp." + op + "." + t, "pred", types(t, t), cases);
                }
            }
        }
    }

    /** The outcome of comparing two floats: less, equal, greater, or unordered (a NaN). */
    enum Rel { LT, EQ, GT, UN }

    static boolean floatCmp(String op, Rel r) {
        switch (op) {
            case "eq": return r == Rel.EQ;
            case "ne": return r == Rel.LT || r == Rel.GT;
            case "lt": return r == Rel.LT;
            case "le": return r == Rel.LT || r == Rel.EQ;
            case "gt": return r == Rel.GT;
            case "ge": return r == Rel.GT || r == Rel.EQ;
            case "equ": return r == Rel.EQ || r == Rel.UN;
            case "neu": return r != Rel.EQ;
            case "ltu": return r == Rel.LT || r == Rel.UN;
            case "leu": return r != Rel.GT;
            case "gtu": return r == Rel.GT || r == Rel.UN;
            case "geu": return r != Rel.LT;
            case "num": return r != Rel.UN;
            default: return r == Rel.UN; // nan
        }
    }

    static final String[] FLOAT_OPS = {"eq", "ne", "lt", "le", "gt", "ge", "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"};

    @Test
    public void floatComparisonsOrderedAndUnordered() {
        float nan = Float.NaN, inf = Float.POSITIVE_INFINITY;
        float[][] fp = {{1, 2}, {2, 1}, {1, 1}, {nan, 1}, {1, nan}, {nan, nan}, {0f, -0f}, {inf, inf}, {-inf, Float.MAX_VALUE}, {Float.MIN_VALUE, 0}};
        Rel[] rel = {Rel.LT, Rel.GT, Rel.EQ, Rel.UN, Rel.UN, Rel.UN, Rel.EQ, Rel.EQ, Rel.LT, Rel.GT};
        for (String op : FLOAT_OPS) {
            long[][] c32 = new long[fp.length][], c64 = new long[fp.length][];
            for (int i = 0; i < fp.length; i++) {
                long want = floatCmp(op, rel[i]) ? 1 : 0;
                c32[i] = row(f(fp[i][0]), f(fp[i][1]), want);
                c64[i] = row(d(fp[i][0]), d(fp[i][1]), want);
            }
            check("setp." + op + ".f32", "pred", types("f32", "f32"), c32);
            check("setp." + op + ".f64", "pred", types("f64", "f64"), c64);
        }
        // .ftz: a subnormal compares as zero of its sign
        check("setp.eq.ftz.f32", "pred", types("f32", "f32"), row(0x00000010L, 0, 1), row(0x80000010L, 0, 1));
        check("setp.gt.ftz.f32", "pred", types("f32", "f32"), row(0x00000010L, 0, 0));
        check("setp.gt.f32", "pred", types("f32", "f32"), row(0x00000010L, 0, 1));
    }

    @Test
    public void combiningWithAPredicateAndTheSecondDestination() {
        // setp.lt.<bool>.s32 p|q, a, b, {!}c: p = t BOOL c', q = !t BOOL c'
        StringBuilder body = new StringBuilder("  ld.global.u32 %r1, [%rd30];\n  ld.global.u32 %r2, [%rd30+8];\n"
                + "  ld.global.u32 %r3, [%rd30+16];\n  setp.ne.u32 %p9, %r3, 0;\n  mov.u32 %r20, 0;\n");
        String[] bools = {"and", "or", "xor"};
        int bit = 0;
        for (String bo : bools) {
            for (String neg : new String[] {"", "!"}) {
                body.append("  setp.lt.").append(bo).append(".s32 %p1|%p2, %r1, %r2, ").append(neg).append("%p9;\n")
                        .append("  selp.u32 %r4, ").append(1 << bit).append(", 0, %p1;\n  or.b32 %r20, %r20, %r4;\n")
                        .append("  selp.u32 %r4, ").append(1 << (bit + 1)).append(", 0, %p2;\n  or.b32 %r20, %r20, %r4;\n");
                bit += 2;
            }
        }
        // without a boolean operation q is !p; a NaN makes t false, so q is true
        body.append("  setp.lt.s32 %p3|%p4, %r1, %r2;\n  selp.u32 %r4, 0x1000, 0, %p3;\n  or.b32 %r20, %r20, %r4;\n"
                + "  selp.u32 %r4, 0x2000, 0, %p4;\n  or.b32 %r20, %r20, %r4;\n"
                + "  mov.b32 %f1, 0x7fffffff;\n  cvt.rn.f32.s32 %f2, %r1;\n  setp.lt.f32 %p5|%p6, %f1, %f2;\n"
                + "  selp.u32 %r4, 0x4000, 0, %p5;\n  or.b32 %r20, %r20, %r4;\n"
                + "  selp.u32 %r4, 0x8000, 0, %p6;\n  or.b32 %r20, %r20, %r4;\n"
                // sink for one destination
                + "  setp.gt.s32 _|%p7, %r1, %r2;\n  selp.u32 %r4, 0x10000, 0, %p7;\n  or.b32 %r20, %r20, %r4;\n"
                + "  st.global.u32 [%rd31], %r20;\n");
        long[][] rows = new long[8][];
        for (int i = 0; i < 8; i++) {
            int a = (i & 1) != 0 ? 1 : 5, b = 3; // t = a < b
            rows[i] = row(a, b, (i >> 1) & 1);
        }
        long[][] out = Ptx.rows(body.toString(), rows);
        for (int i = 0; i < 8; i++) {
            boolean t = rows[i][0] < rows[i][1], c = rows[i][2] != 0;
            long want = 0;
            int k = 0;
            for (String bo : bools) {
                for (boolean neg : new boolean[] {false, true}) {
                    boolean cv = c != neg;
                    boolean p = bo.equals("and") ? t & cv : bo.equals("or") ? t | cv : t ^ cv;
                    boolean q = bo.equals("and") ? !t & cv : bo.equals("or") ? !t | cv : !t ^ cv;
                    want |= (p ? 1L << k : 0) | (q ? 1L << (k + 1) : 0);
                    k += 2;
                }
            }
            want |= (t ? 0x1000 : 0) | (!t ? 0x2000 : 0) | 0x8000 | (!(rows[i][0] > rows[i][1]) ? 0x10000 : 0);
            Ptx.assertHex("row " + i + " (a < b: " + t + ", c: " + c + ")", want, out[i][0] & 0xffffffffL);
        }
    }

    @Test
    public void predicateLogic() {
        String[] p2 = types("pred", "pred");
        check("and.pred", "pred", p2, row(0, 0, 0), row(0, 1, 0), row(1, 0, 0), row(1, 1, 1));
        check("or.pred", "pred", p2, row(0, 0, 0), row(0, 1, 1), row(1, 0, 1), row(1, 1, 1));
        check("xor.pred", "pred", p2, row(0, 0, 0), row(0, 1, 1), row(1, 0, 1), row(1, 1, 0));
        check("not.pred", "pred", types("pred"), row(0, 1), row(1, 0));
        check("mov.pred", "pred", types("pred"), row(0, 0), row(1, 1));
        check("and.pred $d, $1, !$2", "pred", p2, row(1, 0, 1), row(1, 1, 0), row(0, 0, 0));
        check("or.pred $d, !$1, $2", "pred", p2, row(1, 0, 0), row(0, 0, 1));
        check("mov.pred $d, !$1", "pred", types("pred"), row(0, 1), row(1, 0));
    }

    @Test
    public void selpSlctAndSet() {
        check("selp.b32", "b32", types("b32", "b32", "pred"), row(7, 9, 1, 7), row(7, 9, 0, 9));
        check("selp.f32", "f32", types("f32", "f32", "pred"), row(f(1.5f), f(-2f), 0, f(-2f)));
        check("selp.u64", "u64", types("u64", "u64", "pred"), row(-1L, 1L << 40, 1, -1L), row(-1L, 1L << 40, 0, 1L << 40));
        check("selp.b16", "b16", types("b16", "b16", "pred"), row(0x1234, 0xabcd, 0, 0xabcd));
        check("selp.b32 $d, $1, $2, !$3", "b32", types("b32", "b32", "pred"), row(7, 9, 1, 9));
        check("selp.s32 $d, $1, 42, $3", "s32", types("s32", "s32", "pred"), row(-1, 0, 0, 42), row(-1, 0, 1, -1));
        // slct d, a, b, c: c >= 0 ? a : b
        String[] s = types("b32", "b32", "s32");
        check("slct.b32.s32", "b32", s, row(1, 2, 0, 1), row(1, 2, -1, 2), row(1, 2, 0x7fffffffL, 1), row(1, 2, 0x80000000L, 2));
        check("slct.f32.s32", "f32", types("f32", "f32", "s32"), row(f(1), f(2), -5, f(2)));
        String[] sf = types("b32", "b32", "f32");
        // for an f32 c, -0.0 counts as 0 (>= 0 holds)
        check("slct.u32.f32", "u32", sf, row(1, 2, f(-0f), 1), row(1, 2, f(-1e-30f), 2), row(1, 2, f(3f), 1));
        // .ftz: a negative subnormal c is -0.0, so a
        check("slct.ftz.u32.f32", "u32", sf, row(1, 2, 0x80000001L, 1));
        check("slct.u32.f32", "u32", sf, row(1, 2, 0x80000001L, 2));
        // set: 0xffffffff or 1.0f for true, 0 for false
        check("set.lt.u32.s32", "u32", types("s32", "s32"), row(-1, 1, 0xffffffffL), row(1, -1, 0));
        check("set.lt.s32.u32", "s32", types("u32", "u32"), row(-1, 1, 0), row(1, -1, 0xffffffffL));
        check("set.lt.f32.s32", "f32", types("s32", "s32"), row(-1, 1, f(1f)), row(1, -1, 0));
        check("set.equ.u32.f32", "u32", types("f32", "f32"), row(0x7fc00000L, f(1f), 0xffffffffL), row(f(1f), f(2f), 0));
        check("set.ne.f32.f64", "f32", types("f64", "f64"), row(d(Double.NaN), d(1), 0), row(d(1), d(2), f(1f)));
        check("set.lt.and.u32.s32", "u32", types("s32", "s32", "pred"), row(-1, 1, 1, 0xffffffffL), row(-1, 1, 0, 0));
        check("set.lt.or.f32.u32", "f32", types("u32", "u32", "pred"), row(5, 1, 1, f(1f)), row(5, 1, 0, 0));
        check("set.gt.xor.u32.u16", "u32", types("u16", "u16", "pred"), row(0x8000, 1, 1, 0), row(0x8000, 1, 0, 0xffffffffL));
    }
}
