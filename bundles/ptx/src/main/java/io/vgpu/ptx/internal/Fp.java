package io.vgpu.ptx.internal;

import java.math.BigDecimal;

/** Floating-point semantics of the GPU that Java does not provide directly. */
public final class Fp {
    private Fp() {}

    /** The NaN NVIDIA GPUs produce for f32 arithmetic. */
    public static final int CANONICAL_NAN_F32 = 0x7fffffff;
    /** The NaN they produce for f64 arithmetic. */
    public static final long CANONICAL_NAN_F64 = 0xfff8000000000000L;

    public static final int RN = 0, RZ = 1, RM = 2, RP = 3;

    public static int mode(java.util.List<String> mods) {
        for (String m : mods) {
            switch (m) {
                case "rz": case "rzi": return RZ;
                case "rm": case "rmi": return RM;
                case "rp": case "rpi": return RP;
                default:
            }
        }
        return RN;
    }

    public static float f(long bits) {
        return Float.intBitsToFloat((int) bits);
    }

    public static double d(long bits) {
        return Double.longBitsToDouble(bits);
    }

    /** f32 result bits, NaN canonical. */
    public static long bits(float v) {
        return v != v ? CANONICAL_NAN_F32 : Float.floatToRawIntBits(v) & 0xffffffffL;
    }

    public static long bits(double v) {
        return v != v ? CANONICAL_NAN_F64 : Double.doubleToRawLongBits(v);
    }

    public static float ftz(float v) {
        if (v != 0 && Math.abs(v) < Float.MIN_NORMAL) {
            return Math.copySign(0f, v);
        }
        return v;
    }

    public static float sat(float v) {
        if (v != v) {
            return 0f;
        }
        return v < 0f ? 0f : v > 1f ? 1f : v;
    }

    public static double sat(double v) {
        if (v != v) {
            return 0d;
        }
        return v < 0d ? 0d : v > 1d ? 1d : v;
    }

    /** Rounds the exact value hi + lo (|lo| tiny against hi, as TwoSum gives) to float in a mode. */
    public static float round(double hi, double lo, int mode) {
        float f = (float) hi;
        if (hi != hi) {
            return Float.NaN;
        }
        if (mode == RN) {
            // Exact ties of hi must be broken by lo.
            if (lo != 0 && (double) f != hi) {
                float other = (double) f < hi ? Math.nextUp(f) : Math.nextDown(f);
                double df = Math.abs(hi - f), dother = Math.abs(other - hi);
                if (df == dother) {
                    boolean towardOther = ((double) other > hi) == (lo > 0);
                    return towardOther ? other : f;
                }
            }
            return f;
        }
        if (Float.isInfinite(f) || f != f) {
            if (Double.isInfinite(hi)) {
                return f;
            }
            // Overflowed under RN; directed modes may give the largest finite number instead.
            float max = Math.copySign(Float.MAX_VALUE, (float) hi);
            boolean toInf = mode == RP ? hi > 0 : mode == RM ? hi < 0 : false;
            return toInf ? f : max;
        }
        // Compare f with hi + lo exactly: sign of (f - hi) - lo, where f - hi is exact.
        double diff = ((double) f - hi) - lo;
        int cmp = diff > 0 ? 1 : diff < 0 ? -1 : 0;
        if (cmp == 0) {
            return f;
        }
        switch (mode) {
            case RZ:
                if (f > 0 && cmp > 0) {
                    return Math.nextDown(f);
                }
                if (f < 0 && cmp < 0) {
                    return Math.nextUp(f);
                }
                if (f == 0) {
                    return f;
                }
                return f;
            case RM:
                return cmp > 0 ? Math.nextDown(f) : f;
            case RP:
                return cmp < 0 ? Math.nextUp(f) : f;
            default:
                return f;
        }
    }

    public static float add(float a, float b, int mode) {
        if (mode == RN) {
            return a + b;
        }
        double s = (double) a + (double) b;
        double bb = s - a;
        double err = (a - (s - bb)) + (b - bb);
        if (Double.isInfinite(s) || s != s) {
            return (float) s;
        }
        if (s == 0 && err == 0) {
            return (float) zeroSum(s, plusZero(a) && plusZero(b), mode);
        }
        return round(s, err, mode);
    }

    public static float mul(float a, float b, int mode) {
        if (mode == RN) {
            return a * b;
        }
        return round((double) a * (double) b, 0, mode);
    }

    public static float fma(float a, float b, float c, int mode) {
        if (mode == RN) {
            return Math.fma(a, b, c);
        }
        double p = (double) a * (double) b;
        double s = p + c;
        double bb = s - p;
        double err = (p - (s - bb)) + (c - bb);
        if (Double.isInfinite(s) || s != s) {
            return (float) s;
        }
        if (s == 0 && err == 0) {
            return (float) zeroSum(s, plusZero(p) && plusZero(c), mode);
        }
        return round(s, err, mode);
    }

    public static float div(float a, float b, int mode) {
        if (mode == RN) {
            return a / b;
        }
        double q = (double) a / (double) b;
        if (Double.isInfinite(q) || q != q || q == 0) {
            return (float) q;
        }
        double r = Math.fma(-q, b, a); // a - q*b exactly: sign of the quotient's error
        double lo = r / b;
        return round(q, lo == 0 && r != 0 ? Math.copySign(Double.MIN_VALUE, r / b) : lo, mode);
    }

    public static float sqrt(float a, int mode) {
        double q = Math.sqrt(a);
        if (mode == RN || q != q || q == 0 || Double.isInfinite(q)) {
            return (float) q;
        }
        double r = Math.fma(-q, q, a);
        return round(q, r == 0 ? 0 : Math.copySign(Double.MIN_VALUE, r), mode);
    }

    /**
     * The result of an f64 operation in a directed mode, from its round-to-nearest result {@code c}
     * and the sign of (c - exact): one step toward the side the mode asks for when c is on the
     * other side. Overflow (c infinite, exact finite) and underflow (c zero) come out right too.
     */
    static double directed(double c, int cmp, int mode) {
        if (cmp == 0 || mode == RN || c != c) {
            return c;
        }
        switch (mode) {
            case RZ:
                // c has the sign of the exact value (round to nearest keeps it, zeros included)
                if (Double.doubleToRawLongBits(c) < 0) {
                    return cmp < 0 ? Math.nextUp(c) : c;
                }
                return cmp > 0 ? Math.nextDown(c) : c;
            case RM:
                return cmp > 0 ? Math.nextDown(c) : c;
            default:
                return cmp < 0 ? Math.nextUp(c) : c;
        }
    }

    /** Sign of (c - exact) for a finite exact value. */
    private static int cmp(double c, BigDecimal exact) {
        if (Double.isInfinite(c)) {
            return c > 0 ? 1 : -1;
        }
        return new BigDecimal(c).compareTo(exact);
    }

    /** An exact zero sum is -0 when rounding down unless both addends are +0 (IEEE 754 6.3). */
    private static double zeroSum(double r, boolean bothPlusZero, int mode) {
        return r == 0 && mode == RM && !bothPlusZero ? -0.0 : r;
    }

    private static boolean plusZero(double v) {
        return Double.doubleToRawLongBits(v) == 0;
    }

    public static double add(double a, double b, int mode) {
        double c = a + b;
        if (mode == RN || !Double.isFinite(a) || !Double.isFinite(b)) {
            return c;
        }
        BigDecimal exact = new BigDecimal(a).add(new BigDecimal(b));
        if (exact.signum() == 0) {
            return zeroSum(c, plusZero(a) && plusZero(b), mode);
        }
        return directed(c, cmp(c, exact), mode);
    }

    public static double mul(double a, double b, int mode) {
        double c = a * b;
        if (mode == RN || !Double.isFinite(a) || !Double.isFinite(b)) {
            return c;
        }
        return directed(c, cmp(c, new BigDecimal(a).multiply(new BigDecimal(b))), mode);
    }

    public static double fma(double a, double b, double c, int mode) {
        double r = Math.fma(a, b, c);
        if (mode == RN || !Double.isFinite(a) || !Double.isFinite(b) || !Double.isFinite(c)) {
            return r;
        }
        BigDecimal exact = new BigDecimal(a).multiply(new BigDecimal(b)).add(new BigDecimal(c));
        if (exact.signum() == 0) {
            return zeroSum(r, plusZero(a * b) && plusZero(c), mode);
        }
        return directed(r, cmp(r, exact), mode);
    }

    public static double div(double a, double b, int mode) {
        double q = a / b;
        if (mode == RN || !Double.isFinite(a) || !Double.isFinite(b) || b == 0 || a == 0) {
            return q;
        }
        // q - a/b has the sign of (q*b - a) * sign(b)
        int c = Double.isInfinite(q) ? (q > 0 ? 1 : -1)
                : new BigDecimal(q).multiply(new BigDecimal(b)).compareTo(new BigDecimal(a)) * (b > 0 ? 1 : -1);
        return directed(q, c, mode);
    }

    public static double sqrt(double a, int mode) {
        double q = Math.sqrt(a);
        if (mode == RN || q != q || q == 0 || Double.isInfinite(q)) {
            return q;
        }
        BigDecimal b = new BigDecimal(q);
        return directed(q, b.multiply(b).compareTo(new BigDecimal(a)), mode);
    }

    /** A double rounded to float in a mode. */
    public static float toFloat(double v, int mode) {
        if (v != v) {
            return Float.NaN;
        }
        return round(v, 0, mode);
    }

    /** Rounds to an integral value in a mode (cvt.rni/rzi/rmi/rpi). */
    public static double integral(double v, int mode) {
        switch (mode) {
            case RZ: return v < 0 ? Math.ceil(v) : Math.floor(v);
            case RM: return Math.floor(v);
            case RP: return Math.ceil(v);
            default: return Math.rint(v);
        }
    }

    /** Float to integer as cvt does: round in the mode, saturate to the range (NaN gives 0 here; cvt picks its NaN value). */
    public static long toInt(double v, int mode, boolean signed, int bits) {
        if (v != v) {
            return 0;
        }
        double r = integral(v, mode);
        if (signed) {
            long min = bits == 64 ? Long.MIN_VALUE : -(1L << (bits - 1));
            long max = bits == 64 ? Long.MAX_VALUE : (1L << (bits - 1)) - 1;
            if (r <= min) {
                return min;
            }
            if (r >= max) {
                return max;
            }
            return (long) r;
        }
        if (r <= 0) {
            return 0;
        }
        if (bits == 64) {
            if (r >= 18446744073709551615.0) {
                return -1L;
            }
            if (r >= 9223372036854775808.0) {
                return (long) (r - 9223372036854775808.0) ^ Long.MIN_VALUE;
            }
            return (long) r;
        }
        long max = (1L << bits) - 1;
        return r >= max ? max : (long) r;
    }

    /** Unsigned 64-bit to double with round-to-nearest-even. */
    public static double u64ToDouble(long v) {
        if (v >= 0) {
            return (double) v;
        }
        double d = (double) ((v >>> 1) | (v & 1));
        return d * 2.0;
    }

    public static float u64ToFloat(long v, int mode) {
        if (v >= 0 && mode == RN) {
            return (float) v;
        }
        BigDecimal exact = new BigDecimal(Long.toUnsignedString(v));
        return roundBig(exact, mode);
    }

    public static float s64ToFloat(long v, int mode) {
        if (mode == RN) {
            return (float) v;
        }
        return roundBig(new BigDecimal(v), mode);
    }

    public static double s64ToDouble(long v, int mode) {
        double c = (double) v;
        return mode == RN ? c : directed(c, cmp(c, new BigDecimal(v)), mode);
    }

    public static double u64ToDouble(long v, int mode) {
        double c = u64ToDouble(v);
        return mode == RN ? c : directed(c, cmp(c, new BigDecimal(Long.toUnsignedString(v))), mode);
    }

    private static float roundBig(BigDecimal exact, int mode) {
        double hi = exact.doubleValue();
        double lo = exact.subtract(new BigDecimal(hi)).doubleValue();
        return round(hi, lo, mode);
    }

    // ------------------------------------------------------------------ half and bfloat16

    public static float half(int h) {
        int sign = (h >>> 15) & 1;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        float v;
        if (exp == 0) {
            v = mant * 0x1p-24f;
        } else if (exp == 31) {
            v = mant == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        } else {
            v = Float.intBitsToFloat(((exp - 15 + 127) << 23) | (mant << 13));
        }
        return sign != 0 ? -v : v;
    }

    /** f32 to f16 bits, in a rounding mode; NaN gives the canonical 0x7fff. */
    public static int toHalf(float f, int mode) {
        return toHalf((double) f, mode);
    }

    /** f64 to f16 bits, rounded once. */
    public static int toHalf(double f, int mode) {
        if (f != f) {
            return 0x7fff;
        }
        int sign = (Double.doubleToRawLongBits(f) < 0) ? 0x8000 : 0;
        double a = Math.abs(f);
        if (a == Double.POSITIVE_INFINITY) {
            return sign | 0x7c00;
        }
        // Round via scaling: the half grid spacing at a's magnitude.
        int e = Math.getExponent(a);
        double ulp = e < -14 ? 0x1p-24 : Math.scalb(1.0, e - 10);
        double q = a / ulp;
        double r;
        switch (mode) {
            case RZ: r = Math.floor(q); break;
            case RM: r = sign != 0 ? Math.ceil(q) : Math.floor(q); break;
            case RP: r = sign != 0 ? Math.floor(q) : Math.ceil(q); break;
            default: r = Math.rint(q);
        }
        double v = r * ulp;
        if (v >= 65520.0 || (v > 65504.0)) {
            boolean toInf = mode == RN || (mode == RP && sign == 0) || (mode == RM && sign != 0);
            return sign | (toInf ? 0x7c00 : 0x7bff);
        }
        if (v < 0x1p-14) {
            return sign | (int) Math.round(v / 0x1p-24);
        }
        int he = Math.getExponent(v);
        int m = (int) Math.round((v / Math.scalb(1.0, he) - 1.0) * 1024);
        return sign | ((he + 15) << 10) | m;
    }

    public static float bf16(int h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    /** f64 to bf16 bits, rounded once (going through f32 could round twice). */
    public static int bf16Of(double f, int mode) {
        if (f != f) {
            return 0x7fff;
        }
        int sign = Double.doubleToRawLongBits(f) < 0 ? 0x8000 : 0;
        double a = Math.abs(f);
        if (a == Double.POSITIVE_INFINITY) {
            return sign | 0x7f80;
        }
        int e = Math.getExponent(a);
        double ulp = e < -126 ? 0x1p-133 : Math.scalb(1.0, e - 7);
        double q = a / ulp;
        double r;
        switch (mode) {
            case RZ: r = Math.floor(q); break;
            case RM: r = sign != 0 ? Math.ceil(q) : Math.floor(q); break;
            case RP: r = sign != 0 ? Math.floor(q) : Math.ceil(q); break;
            default: r = Math.rint(q);
        }
        double v = r * ulp;
        if (v > 0x1.fep127) {
            boolean toInf = mode == RN || (mode == RP && sign == 0) || (mode == RM && sign != 0);
            return sign | (toInf ? 0x7f80 : 0x7f7f);
        }
        // v is a bf16 value, so also exactly a float
        return sign | (Float.floatToRawIntBits((float) v) >>> 16);
    }

    /**
     * A 64-bit integer as a double rounded to odd (the low bit records anything dropped), so that
     * rounding it again to 24 or fewer bits gives the correctly rounded result.
     */
    public static double oddDouble(long v, boolean unsigned) {
        boolean neg = !unsigned && v < 0;
        long m = neg ? -v : v; // Long.MIN_VALUE stays 2^63 read unsigned
        int bits = 64 - Long.numberOfLeadingZeros(m);
        if (bits <= 53) {
            double d = unsigned ? u64ToDouble(m) : (double) m;
            return neg ? -d : d;
        }
        int shift = bits - 53;
        long hi = m >>> shift;
        if ((m & ((1L << shift) - 1)) != 0) {
            hi |= 1;
        }
        double d = Math.scalb((double) hi, shift);
        return neg ? -d : d;
    }

    public static int toBf16(float f, int mode) {
        if (f != f) {
            return 0x7fff;
        }
        int bits = Float.floatToRawIntBits(f);
        int lower = bits & 0xffff;
        int upper = bits >>> 16;
        boolean neg = bits < 0;
        switch (mode) {
            case RZ:
                return upper;
            case RM:
                return neg && lower != 0 ? upper + 1 : upper;
            case RP:
                return !neg && lower != 0 ? upper + 1 : upper;
            default:
                int round = lower > 0x8000 || (lower == 0x8000 && (upper & 1) != 0) ? 1 : 0;
                return (upper + round) & 0xffff;
        }
    }
}
