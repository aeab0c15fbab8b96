package io.vgpu.ptx.internal;

import io.vgpu.ptx.internal.Ast.Operand;
import io.vgpu.ptx.internal.Ops.L1;
import io.vgpu.ptx.internal.Ops.L2;
import io.vgpu.ptx.internal.Ops.L3;

/** Integer and floating-point arithmetic instructions. */
final class Arith {
    private Arith() {}

    private static Insn un(Compiler c, Ast.Insn in, String t, L1 f) {
        int d = c.dstReg(c.operand(in, 0));
        return new Ops.Op1(d, c.srcReg(c.operand(in, 1), t), c.dmOf(d), f);
    }

    private static Insn bin(Compiler c, Ast.Insn in, String t, L2 f) {
        int d = c.dstReg(c.operand(in, 0));
        return new Ops.Op2(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t), c.dmOf(d), f);
    }

    private static Insn bin(Compiler c, Ast.Insn in, String ta, String tb, L2 f) {
        int d = c.dstReg(c.operand(in, 0));
        return new Ops.Op2(d, c.srcReg(c.operand(in, 1), ta), c.srcReg(c.operand(in, 2), tb), c.dmOf(d), f);
    }

    private static Insn ter(Compiler c, Ast.Insn in, String t, L3 f) {
        int d = c.dstReg(c.operand(in, 0));
        return new Ops.Op3(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t), c.srcReg(c.operand(in, 3), t),
                c.dmOf(d), f);
    }

    // ------------------------------------------------------------------ f32

    static Insn f32(Compiler c, Ast.Insn in) {
        boolean ftz = in.has("ftz");
        boolean sat = in.has("sat");
        boolean relu = in.has("relu");
        int mode = Fp.mode(in.mods);
        // Inputs and results: flush subnormals with .ftz, clamp with .sat.
        final class F {
            float in(long x) {
                float v = Fp.f(x);
                return ftz ? Fp.ftz(v) : v;
            }

            long out(float v) {
                if (ftz) {
                    v = Fp.ftz(v);
                }
                if (sat) {
                    v = Fp.sat(v);
                }
                if (relu) {
                    v = v != v ? v : Math.max(v, 0f);
                }
                return Fp.bits(v);
            }
        }
        F f = new F();
        if ((in.opcode.equals("min") || in.opcode.equals("max")) && (in.has("xorsign") || in.has("abs") || in.operands.size() > 3)) {
            throw new Compiler.Unsupported(in.form() + " (xorsign/abs or three-input forms)");
        }
        switch (in.opcode) {
            case "add": return bin(c, in, "f32", (a, b) -> f.out(Fp.add(f.in(a), f.in(b), mode)));
            case "sub": return bin(c, in, "f32", (a, b) -> f.out(Fp.add(f.in(a), -f.in(b), mode)));
            case "mul": return bin(c, in, "f32", (a, b) -> f.out(Fp.mul(f.in(a), f.in(b), mode)));
            case "fma": case "mad": return ter(c, in, "f32", (a, b, x) -> f.out(Fp.fma(f.in(a), f.in(b), f.in(x), mode)));
            case "div":
                if (in.has("approx")) {
                    // a * (1/b): for 2^126 < |b| < 2^128 the reciprocal is subnormal and flushed, so the
                    // result is a signed zero (NaN for an infinite a)
                    return bin(c, in, "f32", (a, b) -> {
                        float x = f.in(a), y = f.in(b);
                        if (Math.abs(y) > 0x1p126f && Math.abs(y) < Float.POSITIVE_INFINITY) {
                            return f.out(Float.isInfinite(x) ? Float.NaN : Math.copySign(0f, x) * Math.signum(y));
                        }
                        return f.out(x / y);
                    });
                }
                if (in.has("full")) {
                    return bin(c, in, "f32", (a, b) -> f.out(f.in(a) / f.in(b)));
                }
                return bin(c, in, "f32", (a, b) -> f.out(Fp.div(f.in(a), f.in(b), mode)));
            case "rcp": return un(c, in, "f32", a -> f.out(Fp.div(1f, f.in(a), in.has("approx") ? Fp.RN : mode)));
            case "sqrt": return un(c, in, "f32", a -> f.out(Fp.sqrt(f.in(a), in.has("approx") ? Fp.RN : mode)));
            case "rsqrt": return un(c, in, "f32", a -> f.out((float) (1.0 / Math.sqrt(f.in(a)))));
            case "sin": return un(c, in, "f32", a -> f.out((float) Math.sin(f.in(a))));
            case "cos": return un(c, in, "f32", a -> f.out((float) Math.cos(f.in(a))));
            case "lg2": return un(c, in, "f32", a -> f.out((float) (Math.log(f.in(a)) / Math.log(2))));
            case "ex2": return un(c, in, "f32", a -> f.out((float) Math.pow(2, f.in(a))));
            case "tanh": return un(c, in, "f32", a -> f.out((float) Math.tanh(f.in(a))));
            case "abs": return un(c, in, "f32", a -> {
                float v = f.in(a);
                return v != v ? Fp.CANONICAL_NAN_F32 : Float.floatToRawIntBits(Math.abs(v)) & 0xffffffffL;
            });
            case "neg": return un(c, in, "f32", a -> {
                float v = f.in(a);
                return v != v ? Fp.CANONICAL_NAN_F32 : (Float.floatToRawIntBits(v) ^ 0x80000000) & 0xffffffffL;
            });
            case "min":
                if (in.has("NaN")) {
                    return bin(c, in, "f32", (a, b) -> f.in(a) != f.in(a) || f.in(b) != f.in(b) ? Fp.CANONICAL_NAN_F32
                            : f.out(Compiler.fmin(f.in(a), f.in(b))));
                }
                return bin(c, in, "f32", (a, b) -> f.out(Compiler.fmin(f.in(a), f.in(b))));
            case "max":
                if (in.has("NaN")) {
                    return bin(c, in, "f32", (a, b) -> f.in(a) != f.in(a) || f.in(b) != f.in(b) ? Fp.CANONICAL_NAN_F32
                            : f.out(Compiler.fmax(f.in(a), f.in(b))));
                }
                return bin(c, in, "f32", (a, b) -> f.out(Compiler.fmax(f.in(a), f.in(b))));
            case "copysign": return bin(c, in, "f32", (a, b) -> (b & 0x7fffffffL) | (a & 0x80000000L));
            default: throw new Compiler.Unsupported(in.form());
        }
    }

    // ------------------------------------------------------------------ f64

    static Insn f64(Compiler c, Ast.Insn in) {
        int mode = Fp.mode(in.mods);
        boolean sat = in.has("sat");
        L1 out = sat ? v -> Fp.bits(Fp.sat(Fp.d(v))) : v -> v;
        switch (in.opcode) {
            case "add": return bin(c, in, "f64", (a, b) -> out.f(Fp.bits(Fp.add(Fp.d(a), Fp.d(b), mode))));
            case "sub": return bin(c, in, "f64", (a, b) -> out.f(Fp.bits(Fp.add(Fp.d(a), -Fp.d(b), mode))));
            case "mul": return bin(c, in, "f64", (a, b) -> out.f(Fp.bits(Fp.mul(Fp.d(a), Fp.d(b), mode))));
            case "fma": case "mad": return ter(c, in, "f64", (a, b, x) -> out.f(Fp.bits(Fp.fma(Fp.d(a), Fp.d(b), Fp.d(x), mode))));
            case "div": return bin(c, in, "f64", (a, b) -> Fp.bits(Fp.div(Fp.d(a), Fp.d(b), mode)));
            case "rcp":
                if (in.has("approx") && in.has("ftz")) {
                    return un(c, in, "f64", a -> gross(a, false));
                }
                return un(c, in, "f64", a -> Fp.bits(Fp.div(1.0, Fp.d(a), in.has("approx") ? Fp.RN : mode)));
            case "sqrt": return un(c, in, "f64", a -> Fp.bits(Fp.sqrt(Fp.d(a), in.has("approx") ? Fp.RN : mode)));
            case "rsqrt":
                if (in.has("ftz")) {
                    return un(c, in, "f64", a -> gross(a, true));
                }
                return un(c, in, "f64", a -> Fp.bits(1.0 / Math.sqrt(Fp.d(a))));
            case "abs": return un(c, in, "f64", a -> a & Long.MAX_VALUE);
            case "neg": return un(c, in, "f64", a -> a ^ Long.MIN_VALUE);
            case "min": return bin(c, in, "f64", (a, b) -> Fp.bits(Compiler.dmin(Fp.d(a), Fp.d(b))));
            case "max": return bin(c, in, "f64", (a, b) -> Fp.bits(Compiler.dmax(Fp.d(a), Fp.d(b))));
            case "copysign": return bin(c, in, "f64", (a, b) -> (b & Long.MAX_VALUE) | (a & Long.MIN_VALUE));
            case "sin": return un(c, in, "f64", a -> Fp.bits(Math.sin(Fp.d(a))));
            case "cos": return un(c, in, "f64", a -> Fp.bits(Math.cos(Fp.d(a))));
            case "lg2": return un(c, in, "f64", a -> Fp.bits(Math.log(Fp.d(a)) / Math.log(2)));
            case "ex2": return un(c, in, "f64", a -> Fp.bits(Math.pow(2, Fp.d(a))));
            default: throw new Compiler.Unsupported(in.form());
        }
    }

    /**
     * rcp.approx.ftz.f64 / rsqrt.approx.ftz.f64: computed from the upper 32 bits of a only, the low 32
     * bits of the result are zero, subnormals flush to signed zero, NaN gives 0x7fffffff00000000.
     */
    static long gross(long a, boolean rsqrt) {
        double x = Fp.d(a & 0xffffffff00000000L);
        if (x != 0 && Math.abs(x) < Double.MIN_NORMAL) {
            x = Math.copySign(0.0, x);
        }
        double r = rsqrt ? 1.0 / Math.sqrt(x) : 1.0 / x;
        if (r != r) {
            return 0x7fffffff00000000L;
        }
        if (r != 0 && Math.abs(r) < Double.MIN_NORMAL) {
            r = Math.copySign(0.0, r);
        }
        return Double.doubleToRawLongBits(r) & 0xffffffff00000000L;
    }

    // ------------------------------------------------------------------ f16, bf16 and their pairs

    static Insn half(Compiler c, Ast.Insn in, String t) {
        boolean bf = t.startsWith("bf");
        boolean pair = t.endsWith("x2");
        boolean sat = in.has("sat");
        boolean relu = in.has("relu");
        boolean ftz = in.has("ftz");
        int mode = Fp.mode(in.mods);
        final class H {
            float get(long x) {
                float v = bf ? Fp.bf16((int) x & 0xffff) : Fp.half((int) x & 0xffff);
                if (ftz && !bf && v != 0 && Math.abs(v) < 0x1p-14f) {
                    v = Math.copySign(0f, v);
                }
                return v;
            }

            long put(double v) {
                if (sat) {
                    v = Fp.sat(v);
                }
                if (relu && v < 0) {
                    v = 0;
                }
                if (bf) {
                    return Fp.bf16Of(v, mode);
                }
                int r = Fp.toHalf(v, mode);
                // .ftz flushes subnormal results as well as inputs
                return ftz && (r & 0x7c00) == 0 ? r & 0x8000 : r;
            }
        }
        H h = new H();
        if ((in.opcode.equals("min") || in.opcode.equals("max")) && (in.has("xorsign") || in.has("abs"))) {
            throw new Compiler.Unsupported(in.form() + " (xorsign/abs forms)");
        }
        L2 f2;
        switch (in.opcode) {
            case "add": f2 = (a, b) -> h.put((double) h.get(a) + h.get(b)); break;
            case "sub": f2 = (a, b) -> h.put((double) h.get(a) - h.get(b)); break;
            case "mul": f2 = (a, b) -> h.put((double) h.get(a) * h.get(b)); break;
            case "min": case "max": {
                boolean min = in.opcode.equals("min");
                boolean nan = in.has("NaN"); // any NaN operand gives the canonical NaN
                f2 = (a, b) -> {
                    float x = h.get(a), y = h.get(b);
                    if (nan && (x != x || y != y)) {
                        return 0x7fff;
                    }
                    return h.put(min ? Compiler.fmin(x, y) : Compiler.fmax(x, y));
                };
                break;
            }
            case "fma": case "mad": {
                L3 f3 = (a, b, x) -> h.put(Math.fma((double) h.get(a), (double) h.get(b), (double) h.get(x)));
                if (!pair) {
                    return ter(c, in, t, f3);
                }
                return ter(c, in, t, (a, b, x) -> f3.f(a & 0xffff, b & 0xffff, x & 0xffff)
                        | (f3.f((a >>> 16) & 0xffff, (b >>> 16) & 0xffff, (x >>> 16) & 0xffff) << 16));
            }
            case "neg": case "abs": case "ex2": case "tanh": case "rcp": case "sqrt": case "rsqrt": case "sin": case "cos": case "lg2": {
                L1 f1;
                switch (in.opcode) {
                    // .ftz flushes a subnormal operand (and so the result) to a signed zero
                    case "neg": f1 = a -> (ftz && !bf && (a & 0x7c00) == 0 ? a & 0x8000 : a) ^ 0x8000; break;
                    case "abs": f1 = a -> ftz && !bf && (a & 0x7c00) == 0 ? 0 : a & 0x7fff; break;
                    case "ex2": f1 = a -> h.put(Math.pow(2, h.get(a))); break;
                    case "tanh": f1 = a -> h.put(Math.tanh(h.get(a))); break;
                    case "rcp": f1 = a -> h.put(1.0 / h.get(a)); break;
                    case "sqrt": f1 = a -> h.put(Math.sqrt(h.get(a))); break;
                    case "rsqrt": f1 = a -> h.put(1.0 / Math.sqrt(h.get(a))); break;
                    case "sin": f1 = a -> h.put(Math.sin(h.get(a))); break;
                    case "cos": f1 = a -> h.put(Math.cos(h.get(a))); break;
                    default: f1 = a -> h.put(Math.log(h.get(a)) / Math.log(2));
                }
                if (!pair) {
                    return un(c, in, t, f1);
                }
                return un(c, in, t, a -> (f1.f(a & 0xffff) & 0xffff) | ((f1.f((a >>> 16) & 0xffff) & 0xffff) << 16));
            }
            default: throw new Compiler.Unsupported(in.form());
        }
        if (!pair) {
            return bin(c, in, t, f2);
        }
        L2 g = f2;
        return bin(c, in, t, (a, b) -> (g.f(a & 0xffff, b & 0xffff) & 0xffff) | ((g.f((a >>> 16) & 0xffff, (b >>> 16) & 0xffff) & 0xffff) << 16));
    }

    // ------------------------------------------------------------------ integers

    static Insn integer(Compiler c, Ast.Insn in, String t) {
        if (t.equals("u16x2") || t.equals("s16x2")) {
            return pairs(c, in, t);
        }
        int bits = Types.size(t) * 8;
        boolean signed = Types.isSigned(t);
        long mask = bits >= 64 ? -1L : (1L << bits) - 1;
        boolean hi = in.has("hi");
        boolean wide = in.has("wide");
        boolean sat = in.has("sat");
        switch (in.opcode) {
            case "add":
                if (sat) {
                    return bin(c, in, t, (a, b) -> Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, (long) (int) a + (int) b)));
                }
                return bin(c, in, t, (a, b) -> a + b);
            case "sub":
                if (sat) {
                    return bin(c, in, t, (a, b) -> Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, (long) (int) a - (int) b)));
                }
                return bin(c, in, t, (a, b) -> a - b);
            case "mul":
                return bin(c, in, t, mul(bits, signed, hi, wide));
            case "mad": {
                L2 m = mul(bits, signed, hi, wide);
                int d = c.dstReg(c.operand(in, 0));
                String ct = wide ? (signed ? "s" : "u") + (bits * 2) : t;
                if (sat && hi && signed && bits == 32) {
                    return new Ops.Op3(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t), c.srcReg(c.operand(in, 3), ct),
                            c.dmOf(d), (a, b, x) -> Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, (long) (int) m.f(a, b) + (int) x)));
                }
                return new Ops.Op3(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t), c.srcReg(c.operand(in, 3), ct),
                        c.dmOf(d), (a, b, x) -> m.f(a, b) + x);
            }
            case "mul24": case "mad24": {
                L2 m = (a, b) -> {
                    long x = signed ? Compiler.sx(a, 24) : a & 0xffffff;
                    long y = signed ? Compiler.sx(b, 24) : b & 0xffffff;
                    long p = x * y;
                    return hi ? p >>> 16 : p;
                };
                if (in.opcode.equals("mul24")) {
                    return bin(c, in, t, m);
                }
                return ter(c, in, t, (a, b, x) -> m.f(a, b) + x);
            }
            case "sad":
                return ter(c, in, t, signed ? (a, b, x) -> Math.abs(Compiler.sx(a, bits) - Compiler.sx(b, bits)) + x
                        : (a, b, x) -> {
                            long ua = Compiler.zx(a, bits), ub = Compiler.zx(b, bits);
                            return (Long.compareUnsigned(ua, ub) >= 0 ? ua - ub : ub - ua) + x;
                        });
            case "div":
                if (signed) {
                    return bin(c, in, t, (a, b) -> {
                        long y = Compiler.sx(b, bits);
                        return y == 0 ? -1L : Compiler.sx(a, bits) / y;
                    });
                }
                return bin(c, in, t, (a, b) -> {
                    long y = Compiler.zx(b, bits);
                    return y == 0 ? -1L : Long.divideUnsigned(Compiler.zx(a, bits), y);
                });
            case "rem":
                if (signed) {
                    return bin(c, in, t, (a, b) -> {
                        long y = Compiler.sx(b, bits);
                        return y == 0 ? a : Compiler.sx(a, bits) % y;
                    });
                }
                return bin(c, in, t, (a, b) -> {
                    long y = Compiler.zx(b, bits);
                    return y == 0 ? a : Long.remainderUnsigned(Compiler.zx(a, bits), y);
                });
            case "abs": return un(c, in, t, a -> Math.abs(Compiler.sx(a, bits)));
            case "neg": return un(c, in, t, a -> -a);
            case "min":
                if (t.equals("s16x2") || t.equals("u16x2")) {
                    throw new Compiler.Unsupported(in.form());
                }
                if (in.has("relu")) {
                    return bin(c, in, t, (a, b) -> Math.max(0, Math.min(Compiler.sx(a, bits), Compiler.sx(b, bits))));
                }
                return bin(c, in, t, signed ? (a, b) -> Math.min(Compiler.sx(a, bits), Compiler.sx(b, bits))
                        : (a, b) -> Long.compareUnsigned(a & mask, b & mask) <= 0 ? a : b);
            case "max":
                if (in.has("relu")) {
                    return bin(c, in, t, (a, b) -> Math.max(0, Math.max(Compiler.sx(a, bits), Compiler.sx(b, bits))));
                }
                return bin(c, in, t, signed ? (a, b) -> Math.max(Compiler.sx(a, bits), Compiler.sx(b, bits))
                        : (a, b) -> Long.compareUnsigned(a & mask, b & mask) >= 0 ? a : b);
            case "and":
                if (t.equals("pred")) {
                    return predLogic(c, in, 0);
                }
                return bin(c, in, t, (a, b) -> a & b);
            case "or":
                if (t.equals("pred")) {
                    return predLogic(c, in, 1);
                }
                return bin(c, in, t, (a, b) -> a | b);
            case "xor":
                if (t.equals("pred")) {
                    return predLogic(c, in, 2);
                }
                return bin(c, in, t, (a, b) -> a ^ b);
            case "not":
                if (t.equals("pred")) {
                    return un(c, in, t, a -> a == 0 ? 1 : 0);
                }
                return un(c, in, t, a -> ~a);
            case "cnot": return un(c, in, t, a -> (a & mask) == 0 ? 1 : 0);
            case "shl":
                return bin(c, in, t, "u32", (a, b) -> Long.compareUnsigned(b & 0xffffffffL, bits) >= 0 ? 0 : a << b);
            case "shr":
                if (signed) {
                    return bin(c, in, t, "u32", (a, b) -> Compiler.sx(a, bits) >> Math.min(b & 0xffffffffL, 63));
                }
                return bin(c, in, t, "u32", (a, b) -> Long.compareUnsigned(b & 0xffffffffL, bits) >= 0 ? 0 : (a & mask) >>> b);
            case "popc": return un(c, in, t, a -> Long.bitCount(a & mask));
            case "clz": return un(c, in, t, a -> bits == 64 ? Long.numberOfLeadingZeros(a) : Integer.numberOfLeadingZeros((int) a));
            case "brev": return un(c, in, t, a -> bits == 64 ? Long.reverse(a) : Integer.reverse((int) a) & 0xffffffffL);
            case "bfind": {
                boolean shiftamt = in.has("shiftamt");
                return un(c, in, t, a -> {
                    long v = signed && Compiler.sx(a, bits) < 0 ? ~a & mask : a & mask;
                    if (v == 0) {
                        return 0xffffffffL;
                    }
                    int msb = 63 - Long.numberOfLeadingZeros(v);
                    return shiftamt ? bits - 1 - msb : msb;
                });
            }
            case "bfe": {
                int d = c.dstReg(c.operand(in, 0));
                return new Ops.Op3(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), "u32"),
                        c.srcReg(c.operand(in, 3), "u32"), c.dmOf(d), (a, pos0, len0) -> {
                            int pos = (int) (pos0 & 0xff), len = (int) (len0 & 0xff);
                            int msb = bits - 1;
                            long sbit = signed ? (a >>> Math.min(pos + len - 1, msb)) & 1 : 0;
                            if (len == 0) {
                                sbit = signed ? (a >>> Math.min(pos, msb)) & 1 & 0 : 0;
                            }
                            long r = 0;
                            for (int i = 0; i <= msb; i++) {
                                long bit = (i < len && pos + i <= msb) ? (a >>> (pos + i)) & 1 : sbit;
                                r |= bit << i;
                            }
                            return r;
                        });
            }
            case "bfi": {
                int d = c.dstReg(c.operand(in, 0));
                return new Ops.Op4(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t),
                        c.srcReg(c.operand(in, 3), "u32"), c.srcReg(c.operand(in, 4), "u32"), c.dmOf(d), (a, b, pos0, len0) -> {
                            int pos = (int) (pos0 & 0xff), len = (int) (len0 & 0xff);
                            long r = b;
                            for (int i = 0; i < len && pos + i < bits; i++) {
                                long bit = (a >>> i) & 1;
                                r = (r & ~(1L << (pos + i))) | (bit << (pos + i));
                            }
                            return r;
                        });
            }
            case "prmt": return prmt(c, in);
            case "lop3": {
                int d = c.dstReg(c.operand(in, 0));
                Operand lutOp = c.operand(in, 4);
                int lut = (int) lutOp.value & 0xff;
                return new Ops.Op3(d, c.srcReg(c.operand(in, 1), t), c.srcReg(c.operand(in, 2), t),
                        c.srcReg(c.operand(in, 3), t), c.dmOf(d), (a, b, x) -> {
                            long r = 0;
                            for (int i = 0; i < 8; i++) {
                                if ((lut >>> i & 1) != 0) {
                                    r |= ((i & 4) != 0 ? a : ~a) & ((i & 2) != 0 ? b : ~b) & ((i & 1) != 0 ? x : ~x);
                                }
                            }
                            return r;
                        });
            }
            case "shf": {
                boolean left = in.has("l");
                boolean wrap = in.has("wrap");
                int d = c.dstReg(c.operand(in, 0));
                return new Ops.Op3(d, c.srcReg(c.operand(in, 1), "b32"), c.srcReg(c.operand(in, 2), "b32"),
                        c.srcReg(c.operand(in, 3), "u32"), c.dmOf(d), (a, b, n0) -> {
                            long n = wrap ? n0 & 31 : Math.min(n0 & 0xffffffffL, 32);
                            long both = ((b & 0xffffffffL) << 32) | (a & 0xffffffffL);
                            return left ? (both << n) >>> 32 : both >>> n;
                        });
            }
            case "bmsk": {
                boolean wrap = in.has("wrap");
                return bin(c, in, "u32", (a, b) -> {
                    long pos = a & 0xffffffffL, len = b & 0xffffffffL;
                    if (wrap) {
                        pos &= 31;
                        len &= 31;
                    } else {
                        pos = Math.min(pos, 32);
                        len = Math.min(len, 32);
                    }
                    long m = len >= 32 ? 0xffffffffL : (1L << len) - 1;
                    return pos >= 32 ? 0 : (m << pos) & 0xffffffffL;
                });
            }
            case "szext": {
                boolean sgn = in.has("s32");
                boolean wrap = in.has("wrap");
                return bin(c, in, "u32", "u32", (a, b) -> {
                    long pos = wrap ? b & 31 : Math.min(b & 0xffffffffL, 32);
                    if (pos >= 32) {
                        return a;
                    }
                    return sgn ? Compiler.sx(a, (int) Math.max(pos, 1)) & (pos == 0 ? 0 : -1L) : Compiler.zx(a, (int) pos);
                });
            }
            default: throw new Compiler.Unsupported(in.form());
        }
    }

    /** add, sub, min, max (.relu) on two 16-bit halves at once (.u16x2, .s16x2). */
    private static Insn pairs(Compiler c, Ast.Insn in, String t) {
        boolean signed = t.charAt(0) == 's';
        boolean relu = in.has("relu");
        L2 half;
        switch (in.opcode) {
            case "add": half = (a, b) -> a + b; break;
            case "sub": half = (a, b) -> a - b; break;
            case "min": half = signed ? (a, b) -> Math.min((short) a, (short) b) : (a, b) -> Math.min(a, b); break;
            case "max": half = signed ? (a, b) -> Math.max((short) a, (short) b) : (a, b) -> Math.max(a, b); break;
            default: throw new Compiler.Unsupported(in.form());
        }
        L2 h = relu ? (a, b) -> Math.max(0, half.f(a, b)) : half;
        return bin(c, in, t, (a, b) -> (h.f(a & 0xffff, b & 0xffff) & 0xffff) | ((h.f((a >>> 16) & 0xffff, (b >>> 16) & 0xffff) & 0xffff) << 16));
    }

    private static Insn predLogic(Compiler c, Ast.Insn in, int op) {
        int d = c.dstReg(c.operand(in, 0));
        Operand a = c.operand(in, 1), b = c.operand(in, 2);
        boolean na = a.negated, nb = b.negated;
        a.negated = false;
        b.negated = false;
        int ar = c.srcReg(a, "pred"), br = c.srcReg(b, "pred");
        a.negated = na;
        b.negated = nb;
        return new Ops.Op2(d, ar, br, 1, (x, y) -> {
            boolean p = (x != 0) != na, q = (y != 0) != nb;
            boolean r = op == 0 ? p & q : op == 1 ? p | q : p ^ q;
            return r ? 1 : 0;
        });
    }

    static L2 mul(int bits, boolean signed, boolean hi, boolean wide) {
        if (wide) {
            if (bits == 32) {
                return signed ? (a, b) -> (long) (int) a * (int) b : (a, b) -> (a & 0xffffffffL) * (b & 0xffffffffL);
            }
            if (bits == 16) {
                return signed ? (a, b) -> (long) (short) a * (short) b : (a, b) -> (a & 0xffff) * (b & 0xffff);
            }
            throw new Compiler.Unsupported("mul.wide on 64-bit");
        }
        if (hi) {
            if (bits == 64) {
                return signed ? Math::multiplyHigh : Compiler::umulhi64;
            }
            if (bits == 32) {
                return signed ? (a, b) -> ((long) (int) a * (int) b) >> 32 : (a, b) -> ((a & 0xffffffffL) * (b & 0xffffffffL)) >>> 32;
            }
            return signed ? (a, b) -> ((long) (short) a * (short) b) >> 16 : (a, b) -> ((a & 0xffff) * (b & 0xffff)) >>> 16;
        }
        return (a, b) -> a * b;
    }

    private static Insn prmt(Compiler c, Ast.Insn in) {
        String mode = "";
        for (String m : in.mods) {
            if (m.equals("f4e") || m.equals("b4e") || m.equals("rc8") || m.equals("ecl") || m.equals("ecr") || m.equals("rc16")) {
                mode = m;
            }
        }
        String md = mode;
        int d = c.dstReg(c.operand(in, 0));
        return new Ops.Op3(d, c.srcReg(c.operand(in, 1), "b32"), c.srcReg(c.operand(in, 2), "b32"),
                c.srcReg(c.operand(in, 3), "b32"), c.dmOf(d), (a, b, s) -> {
                    long bytes = ((b & 0xffffffffL) << 32) | (a & 0xffffffffL);
                    int[] sel = new int[4];
                    int cs = (int) s;
                    switch (md) {
                        case "": for (int i = 0; i < 4; i++) { sel[i] = (cs >>> (4 * i)) & 0xf; } break;
                        case "f4e": { int n = cs & 3; for (int i = 0; i < 4; i++) { sel[i] = (n + i) & 7; } break; }
                        case "b4e": { int n = cs & 3; for (int i = 0; i < 4; i++) { sel[i] = (n - i + 8) & 7; } break; }
                        case "rc8": { int n = cs & 3; for (int i = 0; i < 4; i++) { sel[i] = n; } break; }
                        case "ecl": { int n = cs & 3; for (int i = 0; i < 4; i++) { sel[i] = Math.max(i, n) == i ? i : n; } break; }
                        case "ecr": { int n = cs & 3; for (int i = 0; i < 4; i++) { sel[i] = i <= n ? i : n; } break; }
                        default: { int n = cs & 1; sel[0] = 2 * n; sel[1] = 2 * n + 1; sel[2] = 2 * n; sel[3] = 2 * n + 1; }
                    }
                    long r = 0;
                    for (int i = 0; i < 4; i++) {
                        int sl = sel[i];
                        long byteVal = (bytes >>> (8 * (sl & 7))) & 0xff;
                        if (md.isEmpty() && (sl & 8) != 0) {
                            byteVal = (byteVal & 0x80) != 0 ? 0xff : 0;
                        }
                        r |= byteVal << (8 * i);
                    }
                    return r;
                });
    }
}
