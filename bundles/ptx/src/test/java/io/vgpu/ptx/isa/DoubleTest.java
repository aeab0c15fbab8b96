package io.vgpu.ptx.isa;

import static io.vgpu.ptx.isa.Ptx.check;
import static io.vgpu.ptx.isa.Ptx.d;
import static io.vgpu.ptx.isa.Ptx.row;
import static io.vgpu.ptx.isa.Ptx.types;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.Test;

/** f64 arithmetic: the four rounding modes of add/mul/fma/div/sqrt/rcp, min/max, abs/neg, NaN, testp. */
public class DoubleTest {
    static final long PZ = 0, NZ = 0x8000000000000000L, PINF = 0x7ff0000000000000L, NINF = 0xfff0000000000000L,
            ONE = 0x3ff0000000000000L;

    /** Rows: the operands, then the results under .rn, .rz, .rm, .rp. */
    static void modes(String op, int arity, long[]... rows) {
        String[] st = new String[arity];
        Arrays.fill(st, "f64");
        for (int m = 0; m < 4; m++) {
            long[][] cases = new long[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                cases[i] = Arrays.copyOf(rows[i], arity + 1);
                cases[i][arity] = rows[i][arity + m];
            }
            check(op + "." + Ref.MODES[m] + ".f64", "f64", st, cases);
        }
    }

    @Test
    public void addRoundsInEachMode() {
        modes("add", 2,
                row(0x3ff0000000000000L, 0x3ca0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000001L), // 1 + 2^-53: tie
                row(0x3ff0000000000000L, 0x3ca8000000000000L, 0x3ff0000000000001L, 0x3ff0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000001L), // 1 + 0.75 ulp
                row(0xbff0000000000000L, 0xbca8000000000000L, 0xbff0000000000001L, 0xbff0000000000000L, 0xbff0000000000001L, 0xbff0000000000000L), // -1 - 0.75 ulp
                row(0x3ff0000000000000L, 0xbc90000000000000L, 0x3ff0000000000000L, 0x3fefffffffffffffL, 0x3fefffffffffffffL, 0x3ff0000000000000L), // 1 - 2^-54: tie below 1
                row(0x7fefffffffffffffL, 0x7fefffffffffffffL, 0x7ff0000000000000L, 0x7fefffffffffffffL, 0x7fefffffffffffffL, 0x7ff0000000000000L), // overflow
                row(0xffefffffffffffffL, 0xffefffffffffffffL, 0xfff0000000000000L, 0xffefffffffffffffL, 0xfff0000000000000L, 0xffefffffffffffffL), // negative overflow
                row(0x3ff0000000000000L, 0x3c30000000000000L, 0x3ff0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000000L, 0x3ff0000000000001L), // 1 + 2^-60
                row(0x3ff0000000000000L, 0xbc30000000000000L, 0x3ff0000000000000L, 0x3fefffffffffffffL, 0x3fefffffffffffffL, 0x3ff0000000000000L), // 1 - 2^-60
                row(0x3ff0000000000000L, 0xbff0000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x8000000000000000L, 0x0000000000000000L)); // exact zero
        modes("sub", 2, row(ONE, ONE, PZ, PZ, NZ, PZ), row(NZ, PZ, NZ, NZ, NZ, NZ), row(PZ, PZ, PZ, PZ, NZ, PZ));
        modes("add", 2, row(NZ, NZ, NZ, NZ, NZ, NZ), row(PZ, NZ, PZ, PZ, NZ, PZ), row(PINF, ONE, PINF, PINF, PINF, PINF));
    }

    @Test
    public void mulRoundsInEachMode() {
        modes("mul", 2,
                row(0x3ff0000000000001L, 0x3ff0000000000001L, 0x3ff0000000000002L, 0x3ff0000000000002L, 0x3ff0000000000002L, 0x3ff0000000000003L), // 1 + 2^-51 + 2^-104
                row(0xbff0000000000001L, 0x3ff0000000000001L, 0xbff0000000000002L, 0xbff0000000000002L, 0xbff0000000000003L, 0xbff0000000000002L), // negative
                row(0x1a70000000000000L, 0x1a70000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x0000000000000001L), // underflow
                row(0x9a70000000000000L, 0x1a70000000000000L, 0x8000000000000000L, 0x8000000000000000L, 0x8000000000000001L, 0x8000000000000000L), // negative underflow
                row(0x3fb999999999999aL, 0x4008000000000000L, 0x3fd3333333333334L, 0x3fd3333333333333L, 0x3fd3333333333333L, 0x3fd3333333333334L)); // fl(0.1) * 3 = 0.30000000000000004
        modes("mul", 2, row(NZ, 0x4014000000000000L, NZ, NZ, NZ, NZ), row(PZ, 0xc014000000000000L, NZ, NZ, NZ, NZ),
                row(PINF, 0xc000000000000000L, NINF, NINF, NINF, NINF));
    }

    @Test
    public void fmaRoundsOnceInEachMode() {
        modes("fma", 3,
                row(0x3ff0000002000000L, 0x3ff0000002000000L, 0xbff0000000000000L, 0x3e50000001000000L, 0x3e50000001000000L, 0x3e50000001000000L, 0x3e50000001000000L), // 2^-26 + 2^-54 exactly
                row(0x3ff0000000000001L, 0x3ff0000000000001L, 0xbc30000000000000L, 0x3ff0000000000002L, 0x3ff0000000000001L, 0x3ff0000000000001L, 0x3ff0000000000002L), // rounded once
                row(0x3ff0000000000000L, 0x3ff0000000000000L, 0xbff0000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x8000000000000000L, 0x0000000000000000L), // exact zero
                row(0x7fefffffffffffffL, 0x4000000000000000L, 0xffefffffffffffffL, 0x7fefffffffffffffL, 0x7fefffffffffffffL, 0x7fefffffffffffffL, 0x7fefffffffffffffL)); // no overflow in the product
        check("mul.rn.f64", "f64", types("f64", "f64"), row(0x3ff0000002000000L, 0x3ff0000002000000L, 0x3ff0000004000000L));
    }

    @Test
    public void divRoundsInEachMode() {
        modes("div", 2,
                row(0x3ff0000000000000L, 0x4008000000000000L, 0x3fd5555555555555L, 0x3fd5555555555555L, 0x3fd5555555555555L, 0x3fd5555555555556L), // 1/3
                row(0xc000000000000000L, 0x4008000000000000L, 0xbfe5555555555555L, 0xbfe5555555555555L, 0xbfe5555555555556L, 0xbfe5555555555555L), // -2/3
                row(0x3ff0000000000000L, 0x4024000000000000L, 0x3fb999999999999aL, 0x3fb9999999999999L, 0x3fb9999999999999L, 0x3fb999999999999aL), // 1/10
                row(0x3ff0000000000000L, 0xc024000000000000L, 0xbfb999999999999aL, 0xbfb9999999999999L, 0xbfb999999999999aL, 0xbfb9999999999999L), // 1/-10
                row(0x7fefffffffffffffL, 0x3fe0000000000000L, 0x7ff0000000000000L, 0x7fefffffffffffffL, 0x7fefffffffffffffL, 0x7ff0000000000000L), // overflow
                row(0x0000000000000001L, 0x4000000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x0000000000000000L, 0x0000000000000001L)); // tie at the bottom
        modes("div", 2, row(ONE, PZ, PINF, PINF, PINF, PINF), row(ONE, NZ, NINF, NINF, NINF, NINF), row(PZ, 0x4008000000000000L, PZ, PZ, PZ, PZ),
                row(NZ, 0x4008000000000000L, NZ, NZ, NZ, NZ));
    }

    @Test
    public void sqrtAndRcpRoundInEachMode() {
        modes("sqrt", 1,
                row(0x4000000000000000L, 0x3ff6a09e667f3bcdL, 0x3ff6a09e667f3bccL, 0x3ff6a09e667f3bccL, 0x3ff6a09e667f3bcdL), // sqrt 2
                row(0x4008000000000000L, 0x3ffbb67ae8584caaL, 0x3ffbb67ae8584caaL, 0x3ffbb67ae8584caaL, 0x3ffbb67ae8584cabL), // sqrt 3
                row(0x3fb999999999999aL, 0x3fd43d136248490fL, 0x3fd43d136248490fL, 0x3fd43d136248490fL, 0x3fd43d1362484910L), // 0.1
                row(0x0000000000000001L, 0x1e60000000000000L, 0x1e60000000000000L, 0x1e60000000000000L, 0x1e60000000000000L), // sqrt(2^-1074) = 2^-537 exactly
                row(0x4030000000000000L, 0x4010000000000000L, 0x4010000000000000L, 0x4010000000000000L, 0x4010000000000000L)); // exact
        modes("sqrt", 1, row(NZ, NZ, NZ, NZ, NZ), row(PINF, PINF, PINF, PINF, PINF));
        modes("rcp", 1,
                row(0x4008000000000000L, 0x3fd5555555555555L, 0x3fd5555555555555L, 0x3fd5555555555555L, 0x3fd5555555555556L), // 1/3
                row(0xc024000000000000L, 0xbfb999999999999aL, 0xbfb9999999999999L, 0xbfb999999999999aL, 0xbfb9999999999999L)); // -1/10
        modes("rcp", 1, row(PZ, PINF, PINF, PINF, PINF), row(NINF, NZ, NZ, NZ, NZ));
    }

    /** Random operands against the BigDecimal reference, every mode. */
    @Test
    public void directedRoundingMatchesAnExactReference() {
        Random r = new Random(7);
        int n = 200;
        for (String op : new String[] {"add", "mul", "fma", "div", "sqrt"}) {
            for (String mode : Ref.MODES) {
                int arity = op.equals("fma") ? 3 : op.equals("sqrt") ? 1 : 2;
                long[][] cases = new long[n][];
                for (int i = 0; i < n; i++) {
                    double a = random(r), b = random(r), c = random(r);
                    double want;
                    switch (op) {
                        case "add": want = Ref.roundD(Ref.exact(a).add(Ref.exact(b)), mode); break;
                        case "mul": want = Ref.roundD(Ref.exact(a).multiply(Ref.exact(b)), mode); break;
                        case "fma": want = Ref.roundD(Ref.exact(a).multiply(Ref.exact(b)).add(Ref.exact(c)), mode); break;
                        case "div":
                            // 80 significant digits are far more than f64 needs to decide the rounding of a quotient
                            want = Ref.roundD(Ref.exact(a).divide(Ref.exact(b), new java.math.MathContext(80)), mode);
                            break;
                        default: a = Math.abs(a); want = Ref.sqrtD(a, mode);
                    }
                    cases[i] = Arrays.copyOf(new long[] {d(a), d(b), d(c)}, arity + 1);
                    cases[i][arity] = d(want);
                }
                String[] st = new String[arity];
                Arrays.fill(st, "f64");
                check(op + "." + mode + ".f64", "f64", st, cases);
            }
        }
    }

    static double random(Random r) {
        long exp = 1023 + r.nextInt(61) - 30;
        return Double.longBitsToDouble((r.nextBoolean() ? Long.MIN_VALUE : 0) | (exp << 52) | (r.nextLong() >>> 12));
    }

    @Test
    public void minMaxPreferNumbersAndOrderSignedZeros() {
        String[] t2 = types("f64", "f64");
        long q = 0x7ff8000000000123L, two = d(2);
        check("min.f64", "f64", t2, row(ONE, two, ONE), row(q, ONE, ONE), row(ONE, q, ONE), row(NZ, PZ, NZ), row(PZ, NZ, NZ), row(NINF, ONE, NINF));
        check("max.f64", "f64", t2, row(ONE, two, two), row(q, ONE, ONE), row(ONE, q, ONE), row(NZ, PZ, PZ), row(PZ, NZ, PZ), row(PINF, ONE, PINF));
        long[][] out = Ptx.rows(Ptx.opBody("min.f64", "f64", "f64", "f64"), new long[][] {row(q, q)});
        assertTrue("min of two NaNs is NaN", Double.isNaN(Double.longBitsToDouble(out[0][0])));
    }

    @Test
    public void invalidOperationsGiveNaN() {
        long[][] rows = {row(PINF, NINF), row(PZ, PZ), row(0x7ff8000000000001L, ONE), row(NINF, PZ)};
        for (String op : new String[] {"add.rn.f64", "div.rn.f64", "mul.rz.f64", "sub.rm.f64"}) {
            long[][] out = Ptx.rows(Ptx.opBody(op, "f64", "f64", "f64"), rows);
            for (int i = 0; i < rows.length; i++) {
                boolean invalid = (op.startsWith("add") && i == 0) || (op.startsWith("div") && i == 1) || (op.startsWith("mul") && i == 3) || i == 2;
                if (invalid) {
                    assertTrue(op + " row " + i, Double.isNaN(Double.longBitsToDouble(out[i][0])));
                }
            }
        }
        long[][] out = Ptx.rows(Ptx.opBody("sqrt.rn.f64", "f64", "f64"), new long[][] {row(d(-1))});
        assertTrue("sqrt(-1)", Double.isNaN(Double.longBitsToDouble(out[0][0])));
    }

    @Test
    public void absNegCopysignAndTestp() {
        // abs.f64 passes a NaN through with only its sign cleared
        check("abs.f64", "f64", types("f64"), row(NZ, PZ), row(d(-2), d(2)), row(NINF, PINF), row(0x8000000000000001L, 1),
                row(0xfff8000000000123L, 0x7ff8000000000123L));
        check("neg.f64", "f64", types("f64"), row(PZ, NZ), row(ONE, d(-1)), row(1, 0x8000000000000001L));
        check("copysign.f64", "f64", types("f64", "f64"), row(NZ, d(2), d(-2)), row(ONE, d(-3), d(3)));
        long[] vals = {PZ, NZ, ONE, 1, 0x000fffffffffffffL, 0x0010000000000000L, PINF, NINF, 0x7ff8000000000000L, 0x7ff0000000000001L};
        String[] kinds = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"};
        int[][] want = { // finite infinite number notanumber normal subnormal
            {1, 0, 1, 0, 0, 0}, {1, 0, 1, 0, 0, 0}, {1, 0, 1, 0, 1, 0}, {1, 0, 1, 0, 0, 1}, {1, 0, 1, 0, 0, 1}, {1, 0, 1, 0, 1, 0},
            {0, 1, 1, 0, 0, 0}, {0, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 0, 0}, {0, 0, 0, 1, 0, 0}};
        for (int k = 0; k < kinds.length; k++) {
            long[][] cases = new long[vals.length][];
            for (int i = 0; i < vals.length; i++) {
                cases[i] = row(vals[i], want[i][k]);
            }
            check("testp." + kinds[k] + ".f64", "pred", types("f64"), cases);
        }
    }

    @Test
    public void grossApproximationsUseOnlyTheUpperWord() {
        // rcp/rsqrt.approx.ftz.f64 read a[63:32] only and write zeros into d[31:0]
        double[] xs = {1, 3, 0.1, 1e10, 1e-10, -7.5, 123456.789, 2.0000001};
        long[][] rows = new long[xs.length][];
        for (int i = 0; i < xs.length; i++) {
            rows[i] = row(d(xs[i]));
        }
        long[][] rcp = Ptx.rows(Ptx.opBody("rcp.approx.ftz.f64", "f64", "f64"), rows);
        long[][] rsq = Ptx.rows(Ptx.opBody("rsqrt.approx.ftz.f64", "f64", "f64"), rows);
        for (int i = 0; i < xs.length; i++) {
            double upper = Double.longBitsToDouble(d(xs[i]) & 0xffffffff00000000L);
            assertEquals("rcp low word", 0, rcp[i][0] & 0xffffffffL);
            double r = Double.longBitsToDouble(rcp[i][0]);
            assertTrue("rcp.approx.ftz " + xs[i] + " = " + r, Math.abs(r * upper - 1) < 0x1p-19);
            if (xs[i] > 0) {
                assertEquals("rsqrt low word", 0, rsq[i][0] & 0xffffffffL);
                double s = Double.longBitsToDouble(rsq[i][0]);
                assertTrue("rsqrt.approx.ftz " + xs[i] + " = " + s, Math.abs(s * s * upper - 1) < 0x1p-18);
            }
        }
        long cnan = 0x7fffffff00000000L;
        check("rcp.approx.ftz.f64", "f64", types("f64"), row(d(4), d(0.25)), row(0x4010000012345678L, d(0.25)), row(PZ, PINF), row(NZ, NINF),
                row(1, PINF), row(0x8000000100000000L, NINF), row(PINF, PZ), row(NINF, NZ), row(0x7ff8000000000000L, cnan),
                row(0x7fe0000000000000L, PZ)); // 1/2^1023 is subnormal: flushed
        check("rsqrt.approx.ftz.f64", "f64", types("f64"), row(d(4), d(0.5)), row(PZ, PINF), row(NZ, NINF), row(PINF, PZ),
                row(d(-1), cnan), row(NINF, cnan), row(0xfff8000000000000L, cnan));
    }
}
