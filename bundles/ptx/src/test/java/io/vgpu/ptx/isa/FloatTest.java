package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.f;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.Random;
import java.util.function.DoubleUnaryOperator;
import org.junit.Test;

/**
 * f32 arithmetic: the four IEEE rounding modes of add/sub/mul/fma/div/sqrt/rcp, .ftz, .sat, the GPU's
 * canonical NaN (0x7fffffff), min/max with NaN and signed zeros, and the approximate functions
 * within the accuracy the PTX ISA states for them.
 */
public class FloatTest {
    static final long NAN = 0x7fffffffL;
    static final long PZ = 0, NZ = 0x80000000L, PINF = 0x7f800000L, NINF = 0xff800000L, MAX = 0x7f7fffffL, ONE = 0x3f800000L;

    /** Rows: the operands, then the results under .rn, .rz, .rm, .rp. */
    static void modes(String op, String type, int arity, long[]... rows) {
        String[] st = new String[arity];
        Arrays.fill(st, type);
        for (int m = 0; m < 4; m++) {
            long[][] cases = new long[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                cases[i] = Arrays.copyOf(rows[i], arity + 1);
                cases[i][arity] = rows[i][arity + m];
            }
            check(op + "." + Ref.MODES[m] + "." + type, type, st, cases);
        }
    }

    @Test
    public void addRoundsInEachMode() {
        modes("add", "f32", 2,
                row(0x3f800000L, 0x33800000L, 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800001L), // 1 + 2^-24: a tie, even is 1
                row(0x3f800000L, 0x33c00000L, 0x3f800001L, 0x3f800000L, 0x3f800000L, 0x3f800001L), // 1 + 0.75 ulp
                row(0xbf800000L, 0xb3c00000L, 0xbf800001L, 0xbf800000L, 0xbf800001L, 0xbf800000L), // -1 - 0.75 ulp
                row(0x3f800000L, 0xb3000000L, 0x3f800000L, 0x3f7fffffL, 0x3f7fffffL, 0x3f800000L), // 1 - 2^-25: a tie below 1
                row(0x7f7fffffL, 0x7f7fffffL, 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L), // overflow
                row(0xff7fffffL, 0xff7fffffL, 0xff800000L, 0xff7fffffL, 0xff800000L, 0xff7fffffL), // negative overflow
                row(0x7f7fffffL, 0x73000000L, 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L), // MAX + half an ulp: tie, even is 2^128
                row(0x00000001L, 0x00000001L, 0x00000002L, 0x00000002L, 0x00000002L, 0x00000002L), // subnormals add exactly
                row(0x3f800000L, 0xbf800000L, PZ, PZ, NZ, PZ),       // an exact zero is -0 only when rounding down
                row(NZ, NZ, NZ, NZ, NZ, NZ),
                row(PZ, NZ, PZ, PZ, NZ, PZ),
                row(PINF, 0x3f800000L, PINF, PINF, PINF, PINF),
                row(PINF, NINF, NAN, NAN, NAN, NAN));
        modes("sub", "f32", 2,
                row(0x3f800000L, 0xb3800000L, 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800001L), // 1 - (-2^-24)
                row(0x3f800000L, 0x3f800000L, PZ, PZ, NZ, PZ),
                row(PINF, PINF, NAN, NAN, NAN, NAN));
        // Without a rounding modifier add and sub round to nearest.
        check("add.f32", "f32", types("f32", "f32"), row(0x3f800000L, 0x33c00000L, 0x3f800001L), row(0x3f800000L, 0xbf800000L, PZ));
        check("sub.f32", "f32", types("f32", "f32"), row(0x3f800000L, 0x33800000L, 0x3f7fffffL)); // 1 - 2^-24 is exact
    }

    @Test
    public void mulRoundsInEachMode() {
        modes("mul", "f32", 2,
                row(0x3f800001L, 0x3f800001L, 0x3f800002L, 0x3f800002L, 0x3f800002L, 0x3f800003L), // 1 + 2^-22 + 2^-46
                row(0xbf800001L, 0x3f800001L, 0xbf800002L, 0xbf800002L, 0xbf800003L, 0xbf800002L),
                row(0x0d800000L, 0x0d800000L, 0x00000000L, 0x00000000L, 0x00000000L, 0x00000001L), // 2^-200 underflows
                row(0x8d800000L, 0x0d800000L, 0x80000000L, 0x80000000L, 0x80000001L, 0x80000000L),
                row(0x1a400000L, 0x1a800000L, 0x00000002L, 0x00000001L, 0x00000001L, 0x00000002L), // 1.5 * 2^-149: subnormal tie
                row(0x7f7fffffL, 0x40000000L, 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L), // overflow
                row(0x3eaaaaabL, 0x40400000L, 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800001L), // fl(1/3) * 3 = 1 + 2^-25
                row(NZ, 0x40a00000L, NZ, NZ, NZ, NZ),
                row(PZ, PINF, NAN, NAN, NAN, NAN));
        check("mul.f32", "f32", types("f32", "f32"), row(0x3f800001L, 0x3f800001L, 0x3f800002L), row(NINF, NZ, NAN));
    }

    @Test
    public void fmaRoundsOnceInEachMode() {
        modes("fma", "f32", 3,
                // 2^-11 + 2^-24 exactly; mul.rn then add.rn would give 2^-11
                row(0x3f800800L, 0x3f800800L, 0xbf800000L, 0x3a000400L, 0x3a000400L, 0x3a000400L, 0x3a000400L),
                row(0x3f800001L, 0x3f800001L, 0xb0800000L, 0x3f800002L, 0x3f800001L, 0x3f800001L, 0x3f800002L),
                row(0x3f800000L, 0x3f800000L, 0xbf800000L, PZ, PZ, NZ, PZ),
                row(0x7f7fffffL, 0x40000000L, 0xff7fffffL, MAX, MAX, MAX, MAX),           // the product does not overflow
                row(0x0d800000L, 0x0d800000L, PZ, 0x00000000L, 0x00000000L, 0x00000000L, 0x00000001L),
                row(0x3f800000L, 0x33800000L, 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800000L, 0x3f800001L),
                row(0xbf800001L, 0x40400000L, 0x30800000L, 0xc0400001L, 0xc0400001L, 0xc0400002L, 0xc0400001L),
                row(PINF, PZ, 0x3f800000L, NAN, NAN, NAN, NAN));
        check("mul.rn.f32", "f32", types("f32", "f32"), row(0x3f800800L, 0x3f800800L, 0x3f801000L)); // (1+2^-12)^2 rounds to 1+2^-11
        // mad.f32 is fma.rn.f32
        check("mad.rn.f32", "f32", types("f32", "f32", "f32"), row(0x3f800800L, 0x3f800800L, 0xbf800000L, 0x3a000400L));
    }

    @Test
    public void divRoundsInEachMode() {
        modes("div", "f32", 2,
                row(0x3f800000L, 0x40400000L, 0x3eaaaaabL, 0x3eaaaaaaL, 0x3eaaaaaaL, 0x3eaaaaabL), // 1/3
                row(0xbf800000L, 0x40400000L, 0xbeaaaaabL, 0xbeaaaaaaL, 0xbeaaaaabL, 0xbeaaaaaaL),
                row(0x40000000L, 0x40400000L, 0x3f2aaaabL, 0x3f2aaaaaL, 0x3f2aaaaaL, 0x3f2aaaabL),
                row(0x3f800000L, 0x40800000L, 0x3e800000L, 0x3e800000L, 0x3e800000L, 0x3e800000L),
                row(0x7f7fffffL, 0x3f000000L, 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L), // overflow
                row(0x00000001L, 0x40000000L, 0x00000000L, 0x00000000L, 0x00000000L, 0x00000001L), // 2^-150
                row(0x3f800000L, 0x7f7fffffL, 0x00200000L, 0x00200000L, 0x00200000L, 0x00200001L), // subnormal quotient
                row(0x40e00000L, 0xc1200000L, 0xbf333333L, 0xbf333333L, 0xbf333334L, 0xbf333333L), // 7 / -10
                row(0x3f800000L, PZ, PINF, PINF, PINF, PINF),
                row(0x3f800000L, NZ, NINF, NINF, NINF, NINF),
                row(PZ, PZ, NAN, NAN, NAN, NAN),
                row(PINF, PINF, NAN, NAN, NAN, NAN));
    }

    @Test
    public void sqrtAndRcpRoundInEachMode() {
        modes("sqrt", "f32", 1,
                row(0x40000000L, 0x3fb504f3L, 0x3fb504f3L, 0x3fb504f3L, 0x3fb504f4L),
                row(0x40400000L, 0x3fddb3d7L, 0x3fddb3d7L, 0x3fddb3d7L, 0x3fddb3d8L),
                row(0x40800000L, 0x40000000L, 0x40000000L, 0x40000000L, 0x40000000L),
                row(0x00000001L, 0x1a3504f3L, 0x1a3504f3L, 0x1a3504f3L, 0x1a3504f4L), // sqrt(2^-149)
                row(0x7f7fffffL, 0x5f7fffffL, 0x5f7fffffL, 0x5f7fffffL, 0x5f800000L),
                row(0x3dcccccdL, 0x3ea1e89bL, 0x3ea1e89bL, 0x3ea1e89bL, 0x3ea1e89cL),
                row(NZ, NZ, NZ, NZ, NZ),
                row(PINF, PINF, PINF, PINF, PINF),
                row(0xbf800000L, NAN, NAN, NAN, NAN));
        modes("rcp", "f32", 1,
                row(0x40400000L, 0x3eaaaaabL, 0x3eaaaaaaL, 0x3eaaaaaaL, 0x3eaaaaabL),
                row(0xc0400000L, 0xbeaaaaabL, 0xbeaaaaaaL, 0xbeaaaaabL, 0xbeaaaaaaL),
                row(0x00200000L, 0x7f800000L, 0x7f7fffffL, 0x7f7fffffL, 0x7f800000L), // 1/2^-128 overflows
                row(0x41200000L, 0x3dcccccdL, 0x3dccccccL, 0x3dccccccL, 0x3dcccccdL),
                row(PZ, PINF, PINF, PINF, PINF),
                row(NZ, NINF, NINF, NINF, NINF),
                row(NINF, NZ, NZ, NZ, NZ));
    }

    /** Random operands against the BigDecimal reference, every mode. */
    @Test
    public void directedRoundingMatchesAnExactReference() {
        Random r = new Random(42);
        int n = 256;
        for (String op : new String[] {"add", "mul", "fma", "div", "sqrt"}) {
            for (String mode : Ref.MODES) {
                int arity = op.equals("fma") ? 3 : op.equals("sqrt") ? 1 : 2;
                long[][] cases = new long[n][];
                for (int i = 0; i < n; i++) {
                    float a = randomFloat(r), b = randomFloat(r), c = randomFloat(r);
                    float want;
                    switch (op) {
                        case "add": want = Ref.round(Ref.exact(a).add(Ref.exact(b)), mode); break;
                        case "mul": want = Ref.round(Ref.exact(a).multiply(Ref.exact(b)), mode); break;
                        case "fma": want = Ref.round(Ref.exact(a).multiply(Ref.exact(b)).add(Ref.exact(c)), mode); break;
                        case "div": b = Math.abs(b); want = Ref.div(a, b, mode); break;
                        default: a = Math.abs(a); want = Ref.sqrt(a, mode);
                    }
                    long[] row = {f(a), f(b), f(c)};
                    cases[i] = Arrays.copyOf(row, arity + 1);
                    cases[i][arity] = f(want);
                }
                String[] st = new String[arity];
                Arrays.fill(st, "f32");
                check(op + "." + mode + ".f32", "f32", st, cases);
            }
        }
    }

    /** Random sign and significand, exponents near 1 so sums and products stay normal and in range. */
    static float randomFloat(Random r) {
        int exp = 127 + r.nextInt(41) - 20;
        int bits = (r.nextBoolean() ? 0x80000000 : 0) | (exp << 23) | r.nextInt(1 << 23);
        return Float.intBitsToFloat(bits);
    }

    @Test
    public void ftzFlushesSubnormalInputsAndResultsToSignedZero() {
        long sub = 0x00080000L; // 2^-130
        String[] t2 = types("f32", "f32");
        check("add.f32", "f32", t2, row(sub, PZ, sub));
        check("add.ftz.f32", "f32", t2, row(sub, PZ, PZ), row(sub | NZ, NZ, NZ), row(sub, 0x00800000L, 0x00800000L));
        // 1.5 * 2^-126 times 0.5 is 0.75 * 2^-126, a subnormal result
        check("mul.f32", "f32", t2, row(0x00c00000L, 0x3f000000L, 0x00600000L));
        check("mul.ftz.f32", "f32", t2, row(0x00c00000L, 0x3f000000L, PZ), row(0x80c00000L, 0x3f000000L, NZ));
        check("mul.rz.ftz.f32", "f32", t2, row(0x00c00000L, 0x3f000000L, PZ));
        check("fma.rn.ftz.f32", "f32", types("f32", "f32", "f32"), row(sub, 0x4f800000L, PZ, PZ), // the input is flushed before 2^32 scales it
                row(0x00c00000L, 0x3f000000L, PZ, PZ));
        check("fma.rn.f32", "f32", types("f32", "f32", "f32"), row(sub, 0x4f800000L, PZ, 0x0e800000L)); // 2^-130 * 2^32 = 2^-98
        check("div.rn.ftz.f32", "f32", t2, row(0x00800000L, 0x40000000L, PZ), row(sub, sub, NAN));
        check("div.rn.f32", "f32", t2, row(0x00800000L, 0x40000000L, 0x00400000L), row(sub, sub, ONE));
        check("sqrt.rn.ftz.f32", "f32", types("f32"), row(sub, PZ), row(sub | NZ, NZ));
        check("min.ftz.f32", "f32", t2, row(sub, sub | NZ, NZ), row(sub, 0x00000002L, PZ));
        check("abs.ftz.f32", "f32", types("f32"), row(sub | NZ, PZ));
        check("neg.ftz.f32", "f32", types("f32"), row(sub, NZ));
    }

    @Test
    public void satClampsToZeroOneAndTurnsNaNIntoZero() {
        String[] t2 = types("f32", "f32");
        check("add.sat.f32", "f32", t2, row(0x3f400000L, 0x3f000000L, ONE), row(0xbe800000L, 0xbf800000L, PZ),
                row(0x3e800000L, 0x3e800000L, 0x3f000000L), row(PINF, NINF, PZ), row(PINF, 0, ONE));
        check("mul.sat.f32", "f32", t2, row(0x40000000L, 0x3f400000L, ONE), row(PZ, PINF, PZ));
        check("fma.rn.sat.f32", "f32", types("f32", "f32", "f32"), row(0x40000000L, 0x40000000L, 0xc0800000L, PZ),
                row(0x3f000000L, 0x3f000000L, 0x3e800000L, 0x3f000000L), row(0x40000000L, 0x40000000L, 0xc0400000L, ONE));
        check("sub.sat.f32", "f32", t2, row(0x3f000000L, ONE, PZ));
        check("cvt.sat.f32.f32", "f32", types("f32"), row(0x40000000L, ONE), row(0xc0000000L, PZ), row(NAN, PZ), row(0x3f000000L, 0x3f000000L));
    }

    @Test
    public void arithmeticNaNResultsAreTheCanonicalNaN() {
        String[] t2 = types("f32", "f32");
        long q = 0x7fc12345L, s = 0x7f800001L, neg = 0xffc00001L;
        check("add.f32", "f32", t2, row(q, ONE, NAN), row(ONE, s, NAN), row(neg, neg, NAN), row(PINF, NINF, NAN));
        check("sub.rz.f32", "f32", t2, row(q, ONE, NAN));
        check("mul.f32", "f32", t2, row(neg, ONE, NAN), row(PZ, NINF, NAN));
        check("fma.rn.f32", "f32", types("f32", "f32", "f32"), row(ONE, ONE, q, NAN), row(PINF, ONE, NINF, NAN));
        check("div.rn.f32", "f32", t2, row(q, ONE, NAN), row(NINF, PINF, NAN));
        check("sqrt.rn.f32", "f32", types("f32"), row(neg, NAN), row(0xbf800000L, NAN));
        check("rcp.rn.f32", "f32", types("f32"), row(q, NAN));
        check("max.f32", "f32", t2, row(q, neg, NAN));
        check("min.f32", "f32", t2, row(s, q, NAN));
    }

    @Test
    public void minMaxPreferNumbersAndOrderSignedZeros() {
        String[] t2 = types("f32", "f32");
        long q = 0x7fc12345L, two = 0x40000000L, m1 = 0xbf800000L;
        check("min.f32", "f32", t2, row(ONE, two, ONE), row(two, m1, m1), row(q, ONE, ONE), row(ONE, q, ONE), row(NAN, NAN, NAN),
                row(NZ, PZ, NZ), row(PZ, NZ, NZ), row(NINF, MAX, NINF), row(0x00000001L, PZ, PZ));
        check("max.f32", "f32", t2, row(ONE, two, two), row(two, m1, two), row(q, ONE, ONE), row(ONE, q, ONE), row(NAN, NAN, NAN),
                row(NZ, PZ, PZ), row(PZ, NZ, PZ), row(NINF, MAX, MAX));
        // .NaN: any NaN operand gives the canonical NaN
        check("min.NaN.f32", "f32", t2, row(q, ONE, NAN), row(ONE, q, NAN), row(ONE, two, ONE), row(NZ, PZ, NZ));
        check("max.NaN.f32", "f32", t2, row(q, ONE, NAN), row(ONE, 0xffc00000L, NAN), row(ONE, two, two));
        check("min.f64", "f64", types("f64", "f64"), row(0x7ff8000000000001L, Ptx.d(1), Ptx.d(1)), row(Ptx.d(-0.0), Ptx.d(0.0), Ptx.d(-0.0)));
    }

    @Test
    public void absNegCopysignAndTestp() {
        check("abs.f32", "f32", types("f32"), row(NZ, PZ), row(0xc0000000L, 0x40000000L), row(NINF, PINF), row(0x80000001L, 0x00000001L));
        check("neg.f32", "f32", types("f32"), row(PZ, NZ), row(NZ, PZ), row(ONE, 0xbf800000L), row(PINF, NINF), row(0x00000001L, 0x80000001L));
        // copysign d, a, b: b's magnitude with a's sign
        check("copysign.f32", "f32", types("f32", "f32"), row(NZ, 0x40000000L, 0xc0000000L), row(ONE, 0xc0400000L, 0x40400000L),
                row(0xbf800000L, NAN, 0xffffffffL));
        String[] t = types("f32");
        long sub = 0x00000010L;
        long[] vals = {PZ, NZ, ONE, sub, MAX, 0x00800000L, PINF, NINF, NAN, 0xff800001L};
        String[] kinds = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"};
        boolean[][] want = {
            // finite infinite number notanumber normal subnormal
            {true, false, true, false, false, false}, {true, false, true, false, false, false}, {true, false, true, false, true, false},
            {true, false, true, false, false, true}, {true, false, true, false, true, false}, {true, false, true, false, true, false},
            {false, true, true, false, false, false}, {false, true, true, false, false, false}, {false, false, false, true, false, false},
            {false, false, false, true, false, false}};
        for (int k = 0; k < kinds.length; k++) {
            long[][] cases = new long[vals.length][];
            for (int i = 0; i < vals.length; i++) {
                cases[i] = row(vals[i], want[i][k] ? 1 : 0);
            }
            check("testp." + kinds[k] + ".f32", "pred", t, cases);
        }
    }

    // ------------------------------------------------------------------ approximations

    /** Runs a unary f32 instruction over inputs; returns the results. */
    static float[] unary(String insn, float[] in) {
        long[][] rows = new long[in.length][];
        for (int i = 0; i < in.length; i++) {
            rows[i] = row(f(in[i]));
        }
        long[][] out = Ptx.rows(Ptx.opBody(insn, "f32", "f32"), rows);
        float[] r = new float[in.length];
        for (int i = 0; i < in.length; i++) {
            r[i] = Float.intBitsToFloat((int) out[i][0]);
        }
        return r;
    }

    static float[] range(float lo, float hi, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + ((double) hi - lo) * i / (n - 1));
        }
        return v;
    }

    static void within(String insn, float[] in, DoubleUnaryOperator exact, double absTol, double relTol) {
        float[] got = unary(insn, in);
        for (int i = 0; i < in.length; i++) {
            double e = exact.applyAsDouble(in[i]);
            double err = Math.abs(got[i] - e);
            if (!(err <= absTol || err <= relTol * Math.abs(e))) {
                fail(insn + "(" + in[i] + ") = " + got[i] + ", exact " + e + ", error " + err);
            }
        }
    }

    @Test
    public void approximateFunctionsStayWithinTheirStatedError() {
        float pi = (float) Math.PI;
        // sin/cos.approx: absolute error 2^-20.9 in [-pi, pi]
        within("sin.approx.f32", range(-pi, pi, 301), Math::sin, 0x1p-20, 0);
        within("cos.approx.ftz.f32", range(-pi, pi, 301), Math::cos, 0x1p-20, 0);
        // ex2.approx: 2 ulp (relative 2^-22)
        within("ex2.approx.f32", range(-100f, 100f, 401), x -> Math.pow(2, x), 0, 0x1p-21);
        within("ex2.approx.ftz.f32", range(-1f, 1f, 101), x -> Math.pow(2, x), 0, 0x1p-21);
        // lg2.approx: absolute error 2^-22 near 1, relative elsewhere
        within("lg2.approx.f32", range(0.01f, 1000f, 401), x -> Math.log(x) / Math.log(2), 0x1p-21, 0x1p-21);
        // rsqrt.approx: relative 2^-22.9; rcp.approx and sqrt.approx: about 1 ulp
        within("rsqrt.approx.f32", range(1e-3f, 1e6f, 401), x -> 1 / Math.sqrt(x), 0, 0x1p-22);
        within("rcp.approx.f32", range(-1e6f, -1e-3f, 401), x -> 1 / x, 0, 0x1p-22);
        within("rcp.approx.ftz.f32", range(1e-3f, 1e6f, 401), x -> 1 / x, 0, 0x1p-22);
        within("sqrt.approx.f32", range(0f, 1e6f, 401), Math::sqrt, 0, 0x1p-22);
        // tanh.approx: relative 2^-10.987
        within("tanh.approx.f32", range(-10f, 10f, 401), Math::tanh, 0x1p-20, 0x1p-10);
        // div.approx / div.full: 2 ulp
        float[] xs = range(-1000f, 1000f, 101);
        long[][] rows = new long[xs.length][];
        for (int i = 0; i < xs.length; i++) {
            rows[i] = row(f(xs[i]), f(3.7f + i));
        }
        for (String op : new String[] {"div.approx.f32", "div.full.f32", "div.approx.ftz.f32", "div.full.ftz.f32"}) {
            long[][] out = Ptx.rows(Ptx.opBody(op, "f32", "f32", "f32"), rows);
            for (int i = 0; i < xs.length; i++) {
                double e = (double) xs[i] / (3.7f + i);
                float got = Float.intBitsToFloat((int) out[i][0]);
                assertTrue(op + " " + xs[i] + " got " + got, Math.abs(got - e) <= 0x1p-21 * Math.abs(e) + 1e-30);
            }
        }
    }

    @Test
    public void approximateFunctionsSpecialValues() {
        float inf = Float.POSITIVE_INFINITY, nan = Float.NaN;
        expect("sin.approx.f32", new float[] {0f, -0f, inf, -inf, nan}, new float[] {0f, -0f, nan, nan, nan});
        expect("cos.approx.f32", new float[] {0f, -0f, inf, nan}, new float[] {1f, 1f, nan, nan});
        expect("ex2.approx.f32", new float[] {0f, -0f, -inf, inf, 1f, -1f, 10f, nan}, new float[] {1f, 1f, 0f, inf, 2f, 0.5f, 1024f, nan});
        expect("lg2.approx.f32", new float[] {0f, -0f, -1f, inf, 1f, 2f, 1024f, nan}, new float[] {-inf, -inf, nan, inf, 0f, 1f, 10f, nan});
        expect("rsqrt.approx.f32", new float[] {0f, -0f, -1f, inf, 4f, nan}, new float[] {inf, -inf, nan, 0f, 0.5f, nan});
        expect("rcp.approx.f32", new float[] {0f, -0f, inf, -inf, 2f, nan}, new float[] {inf, -inf, 0f, -0f, 0.5f, nan});
        expect("sqrt.approx.f32", new float[] {0f, -0f, -1f, inf, 4f}, new float[] {0f, -0f, nan, inf, 2f});
        expect("tanh.approx.f32", new float[] {0f, -0f, inf, -inf}, new float[] {0f, -0f, 1f, -1f});
        // div.approx is a * (1/b): for 2^126 < |b| < 2^128 it gives a signed zero, or NaN for an infinite a
        check("div.approx.f32", "f32", types("f32", "f32"), row(ONE, 0x7f000000L, PZ), row(0xbf800000L, 0x7f000000L, NZ),
                row(ONE, 0xff000000L, NZ), row(PINF, 0x7f000000L, NAN), row(0x40800000L, 0x40000000L, 0x40000000L));
        check("div.full.f32", "f32", types("f32", "f32"), row(ONE, 0x7f000000L, 0x00400000L)); // full range: 2^-127
    }

    static void expect(String insn, float[] in, float[] want) {
        float[] got = unary(insn, in);
        for (int i = 0; i < in.length; i++) {
            if (Float.isNaN(want[i])) {
                assertTrue(insn + "(" + in[i] + ") = " + got[i], Float.isNaN(got[i]));
            } else {
                assertEquals(insn + "(" + in[i] + ")", Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]));
            }
        }
    }
}
