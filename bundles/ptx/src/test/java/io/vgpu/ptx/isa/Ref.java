package io.vgpu.ptx.isa;

import java.math.BigDecimal;

/**
 * IEEE 754 reference rounding for the tests, written from the definition: the result is the nearest
 * representable value on the side the mode asks for, found by exact BigDecimal comparison (no
 * double-precision shortcuts). Finite, non-overflowing values only.
 */
final class Ref {
    private Ref() {}

    static final String[] MODES = {"rn", "rz", "rm", "rp"};

    private static BigDecimal bd(float v) {
        return new BigDecimal(v);
    }

    private static BigDecimal bd(double v) {
        return new BigDecimal(v);
    }

    /** The largest float not above x. */
    private static float floorF(BigDecimal x) {
        float c = x.floatValue();
        while (bd(c).compareTo(x) > 0) {
            c = Math.nextDown(c);
        }
        while (bd(Math.nextUp(c)).compareTo(x) <= 0) {
            c = Math.nextUp(c);
        }
        return c;
    }

    private static double floorD(BigDecimal x) {
        double c = x.doubleValue();
        while (bd(c).compareTo(x) > 0) {
            c = Math.nextDown(c);
        }
        while (bd(Math.nextUp(c)).compareTo(x) <= 0) {
            c = Math.nextUp(c);
        }
        return c;
    }

    static float round(BigDecimal x, String mode) {
        float lo = floorF(x);
        if (bd(lo).compareTo(x) == 0) {
            return lo;
        }
        float hi = Math.nextUp(lo);
        switch (mode) {
            case "rz": return x.signum() > 0 ? lo : hi;
            case "rm": return lo;
            case "rp": return hi;
            default: {
                int c = x.subtract(bd(lo)).compareTo(bd(hi).subtract(x));
                if (c != 0) {
                    return c < 0 ? lo : hi;
                }
                return (Float.floatToRawIntBits(lo) & 1) == 0 ? lo : hi;
            }
        }
    }

    static double roundD(BigDecimal x, String mode) {
        double lo = floorD(x);
        if (bd(lo).compareTo(x) == 0) {
            return lo;
        }
        double hi = Math.nextUp(lo);
        switch (mode) {
            case "rz": return x.signum() > 0 ? lo : hi;
            case "rm": return lo;
            case "rp": return hi;
            default: {
                int c = x.subtract(bd(lo)).compareTo(bd(hi).subtract(x));
                if (c != 0) {
                    return c < 0 ? lo : hi;
                }
                return (Double.doubleToRawLongBits(lo) & 1) == 0 ? lo : hi;
            }
        }
    }

    /** a / b rounded (b > 0): lo is the largest float with lo * b <= a. */
    static float div(float a, float b, String mode) {
        BigDecimal A = bd(a), B = bd(b);
        float lo = Math.abs(a / b) > 0 ? a / b : 0f;
        while (bd(lo).multiply(B).compareTo(A) > 0) {
            lo = Math.nextDown(lo);
        }
        while (bd(Math.nextUp(lo)).multiply(B).compareTo(A) <= 0) {
            lo = Math.nextUp(lo);
        }
        if (bd(lo).multiply(B).compareTo(A) == 0) {
            return lo;
        }
        float hi = Math.nextUp(lo);
        switch (mode) {
            case "rz": return a > 0 ? lo : hi;
            case "rm": return lo;
            case "rp": return hi;
            default: return bd(lo).add(bd(hi)).multiply(B).compareTo(A.add(A)) < 0 ? hi : lo; // no ties in division
        }
    }

    /** sqrt(a) rounded (a > 0): lo is the largest float with lo^2 <= a. */
    static float sqrt(float a, String mode) {
        BigDecimal A = bd(a);
        float lo = (float) Math.sqrt(a);
        while (bd(lo).pow(2).compareTo(A) > 0) {
            lo = Math.nextDown(lo);
        }
        while (bd(Math.nextUp(lo)).pow(2).compareTo(A) <= 0) {
            lo = Math.nextUp(lo);
        }
        if (bd(lo).pow(2).compareTo(A) == 0) {
            return lo;
        }
        float hi = Math.nextUp(lo);
        switch (mode) {
            case "rz": case "rm": return lo;
            case "rp": return hi;
            default: {
                BigDecimal mid = bd(lo).add(bd(hi)).divide(BigDecimal.valueOf(2));
                return mid.pow(2).compareTo(A) < 0 ? hi : lo; // the midpoint's square is never exactly a
            }
        }
    }

    static double sqrtD(double a, String mode) {
        BigDecimal A = bd(a);
        double lo = Math.sqrt(a);
        while (bd(lo).pow(2).compareTo(A) > 0) {
            lo = Math.nextDown(lo);
        }
        while (bd(Math.nextUp(lo)).pow(2).compareTo(A) <= 0) {
            lo = Math.nextUp(lo);
        }
        if (bd(lo).pow(2).compareTo(A) == 0) {
            return lo;
        }
        double hi = Math.nextUp(lo);
        switch (mode) {
            case "rz": case "rm": return lo;
            case "rp": return hi;
            default: {
                BigDecimal mid = bd(lo).add(bd(hi)).divide(BigDecimal.valueOf(2));
                return mid.pow(2).compareTo(A) < 0 ? hi : lo;
            }
        }
    }

    static BigDecimal exact(float v) {
        return bd(v);
    }

    static BigDecimal exact(double v) {
        return bd(v);
    }
}
