package io.vgpu.ptx.internal;

import io.vgpu.ptx.internal.Ast.Kind;
import io.vgpu.ptx.internal.Ast.Operand;
import java.util.List;

/**
 * Warp-level matrix instructions: ldmatrix and mma.sync. Each executes for the whole warp at once:
 * fragments are gathered from every lane's registers with the layouts of the PTX ISA ("matrix
 * fragments for mma.m16n8k16" and friends), multiplied, and scattered back.
 */
final class MatrixOps {
    private MatrixOps() {}

    // ------------------------------------------------------------------ ldmatrix

    static Insn ldmatrix(Compiler c, Ast.Insn in) {
        if (!in.has("m8n8") || !in.has("b16")) {
            throw new Compiler.Unsupported("ldmatrix shape other than m8n8.b16");
        }
        int num = in.has("x4") ? 4 : in.has("x2") ? 2 : 1;
        boolean trans = in.has("trans");
        Operand d = c.operand(in, 0);
        List<Operand> ds = d.kind == Kind.VEC ? d.elements : List.of(d);
        if (ds.size() != num) {
            throw new IllegalStateException("ldmatrix ." + "x" + num + " needs " + num + " destinations");
        }
        int[] dr = new int[num];
        for (int i = 0; i < num; i++) {
            dr[i] = c.dstReg(ds.get(i));
        }
        int space = Mem.of(in.mods);
        Compiler.Addr a = c.address(c.operand(in, 1), space == Mem.GENERIC ? Mem.GENERIC : space);
        return new LdMatrix(space, a.reg, a.off, dr, trans);
    }

    static final class LdMatrix extends Insn {
        final int space, addr;
        final long off;
        final int[] d;
        final boolean trans;

        LdMatrix(int space, int addr, long off, int[] d, boolean trans) {
            this.space = space;
            this.addr = addr;
            this.off = off;
            this.d = d;
            this.trans = trans;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            // Row addresses come from lanes 0..8*num-1; every lane then receives its fragment.
            long[] rows = new long[32];
            for (int l = 0; l < 8 * d.length; l++) {
                rows[l] = (addr < 0 ? 0 : r[addr << 5 | l]) + off;
            }
            long[][] values = new long[d.length][32];
            for (int j = 0; j < d.length; j++) {
                for (int t = 0; t < 32; t++) {
                    long lo, hi;
                    if (!trans) {
                        long row = rows[j * 8 + t / 4];
                        lo = w.load(space, row + 4L * (t % 4), 2, t);
                        hi = w.load(space, row + 4L * (t % 4) + 2, 2, t);
                    } else {
                        lo = w.load(space, rows[j * 8 + 2 * (t % 4)] + 2L * (t / 4), 2, t);
                        hi = w.load(space, rows[j * 8 + 2 * (t % 4) + 1] + 2L * (t / 4), 2, t);
                    }
                    values[j][t] = lo | (hi << 16);
                }
            }
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                for (int j = 0; j < d.length; j++) {
                    r[d[j] << 5 | l] = values[j][l];
                }
            }
        }
    }

    // ------------------------------------------------------------------ mma

    /** Where element i of a lane's fragment sits in the matrix: {row, col}. */
    interface Layout {
        int row(int lane, int i);

        int col(int lane, int i);
    }

    static Insn mma(Compiler c, Ast.Insn in) {
        String shape = null;
        for (String m : in.mods) {
            if (m.startsWith("m") && m.contains("n") && m.contains("k")) {
                shape = m;
            }
        }
        List<String> ts = new java.util.ArrayList<>();
        for (String m : in.mods) {
            if (Types.isType(m)) {
                ts.add(m);
            }
        }
        if (shape == null || ts.size() != 4 || !in.has("row") || !in.has("col")) {
            throw new Compiler.Unsupported("mma form " + in.form());
        }
        String dt = ts.get(0), at = ts.get(1), bt = ts.get(2), ct = ts.get(3);
        if (at.equals("f64") && !shape.equals("m8n8k4")) {
            throw new Compiler.Unsupported("mma shape " + shape + " with f64");
        }
        if (!at.equals(bt) && !(at.startsWith("s8") || at.startsWith("u8"))) {
            throw new Compiler.Unsupported("mma with mixed input types " + at + "/" + bt);
        }
        int M = 16, N = 8, K;
        Layout la, lb;
        int aElems, bElems, inBits;
        switch (at + "." + shape) {
            case "f16.m16n8k16": case "bf16.m16n8k16":
                K = 16; aElems = 8; bElems = 4; inBits = 16;
                la = layout((l, i) -> (l >> 2) + 8 * ((i >> 1) & 1), (l, i) -> (l & 3) * 2 + (i & 1) + 8 * (i >> 2));
                lb = layout((l, i) -> (l & 3) * 2 + (i & 1) + 8 * (i >> 1), (l, i) -> l >> 2);
                break;
            case "f16.m16n8k8": case "bf16.m16n8k8":
                K = 8; aElems = 4; bElems = 2; inBits = 16;
                la = layout((l, i) -> (l >> 2) + 8 * (i >> 1), (l, i) -> (l & 3) * 2 + (i & 1));
                lb = layout((l, i) -> (l & 3) * 2 + i, (l, i) -> l >> 2);
                break;
            case "s8.m16n8k16": case "u8.m16n8k16":
                K = 16; aElems = 8; bElems = 4; inBits = 8;
                la = layout((l, i) -> (l >> 2) + 8 * (i >> 2), (l, i) -> (l & 3) * 4 + (i & 3));
                lb = layout((l, i) -> (l & 3) * 4 + i, (l, i) -> l >> 2);
                break;
            case "s8.m16n8k32": case "u8.m16n8k32":
                K = 32; aElems = 16; bElems = 8; inBits = 8;
                la = layout((l, i) -> (l >> 2) + 8 * ((i >> 2) & 1), (l, i) -> (l & 3) * 4 + (i & 3) + 16 * (i >> 3));
                lb = layout((l, i) -> (l & 3) * 4 + (i & 3) + 16 * (i >> 2), (l, i) -> l >> 2);
                break;
            case "tf32.m16n8k8":
                K = 8; aElems = 4; bElems = 2; inBits = 32;
                la = layout((l, i) -> (l >> 2) + 8 * (i & 1), (l, i) -> (l & 3) + 4 * (i >> 1));
                lb = layout((l, i) -> (l & 3) + 4 * i, (l, i) -> l >> 2);
                break;
            case "f64.m8n8k4":
                M = 8; K = 4; aElems = 1; bElems = 1; inBits = 64;
                la = layout((l, i) -> l >> 2, (l, i) -> l & 3);
                lb = layout((l, i) -> l & 3, (l, i) -> l >> 2);
                break;
            case "tf32.m16n8k4":
                K = 4; aElems = 2; bElems = 1; inBits = 32;
                la = layout((l, i) -> (l >> 2) + 8 * i, (l, i) -> l & 3);
                lb = layout((l, i) -> l & 3, (l, i) -> l >> 2);
                break;
            default:
                throw new Compiler.Unsupported("mma shape " + shape + " with " + at);
        }
        Layout lc = M == 8 ? layout((l, i) -> l >> 2, (l, i) -> (l & 3) * 2 + i)
                : layout((l, i) -> (l >> 2) + 8 * (i >> 1), (l, i) -> (l & 3) * 2 + (i & 1));
        int cElems = M == 8 ? 2 : 4;
        int accBits = dt.equals("f16") ? 16 : dt.equals("f64") ? 64 : 32;
        int[] d = regs(c, c.operand(in, 0), true, dt);
        int[] a = regs(c, c.operand(in, 1), false, "b32");
        int[] b = regs(c, c.operand(in, 2), false, "b32");
        int[] cc = regs(c, c.operand(in, 3), false, ct.equals("f16") ? "b32" : ct);
        if (a.length * Math.max(1, 32 / inBits) != aElems || b.length * Math.max(1, 32 / inBits) != bElems
                || d.length * Math.max(1, 32 / accBits) != cElems) {
            throw new IllegalStateException("mma " + shape + " operand counts do not match its fragments");
        }
        return new Mma(M, N, K, la, lb, lc, aElems, bElems, inBits, at, bt, dt, ct, d, a, b, cc, cElems);
    }

    private interface LaneFn {
        int f(int lane, int i);
    }

    private static Layout layout(LaneFn row, LaneFn col) {
        return new Layout() {
            @Override
            public int row(int lane, int i) {
                return row.f(lane, i);
            }

            @Override
            public int col(int lane, int i) {
                return col.f(lane, i);
            }
        };
    }

    private static int[] regs(Compiler c, Operand o, boolean dst, String type) {
        List<Operand> es = o.kind == Kind.VEC ? o.elements : List.of(o);
        int[] out = new int[es.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = dst ? c.dstReg(es.get(i)) : c.srcReg(es.get(i), type);
        }
        return out;
    }

    static final class Mma extends Insn {
        final int M, N, K, aElems, bElems, inBits;
        final Layout la, lb, lc;
        final String at, bt, dt, ct;
        final int[] d, a, b, c;
        final int cElems;

        Mma(int M, int N, int K, Layout la, Layout lb, Layout lc, int aElems, int bElems, int inBits, String at, String bt,
                String dt, String ct, int[] d, int[] a, int[] b, int[] c, int cElems) {
            this.cElems = cElems;
            this.M = M;
            this.N = N;
            this.K = K;
            this.la = la;
            this.lb = lb;
            this.lc = lc;
            this.aElems = aElems;
            this.bElems = bElems;
            this.inBits = inBits;
            this.at = at;
            this.bt = bt;
            this.dt = dt;
            this.ct = ct;
            this.d = d;
            this.a = a;
            this.b = b;
            this.c = c;
        }

        private static long element(long[] r, int[] regs, int lane, int i, int bits) {
            if (bits == 64) {
                return r[regs[i] << 5 | lane];
            }
            int per = 32 / bits;
            long word = r[regs[i / per] << 5 | lane];
            return bits == 32 ? word & 0xffffffffL : (word >>> ((i % per) * bits)) & ((1L << bits) - 1);
        }

        private static double real(long v, String t) {
            switch (t) {
                case "f16": return Fp.half((int) v);
                case "bf16": return Fp.bf16((int) v);
                case "tf32": return Float.intBitsToFloat((int) v & 0xffffe000);
                case "s8": return (byte) v;
                case "u8": return v & 0xff;
                case "f32": return Float.intBitsToFloat((int) v);
                case "s32": return (int) v;
                default: return Double.longBitsToDouble(v);
            }
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            double[][] A = new double[M][K], B = new double[K][N], C = new double[M][N];
            boolean integer = at.equals("s8") || at.equals("u8");
            long[][] Ai = integer ? new long[M][K] : null, Bi = integer ? new long[K][N] : null, Ci = integer ? new long[M][N] : null;
            int accBits = ct.equals("f16") ? 16 : ct.equals("f64") ? 64 : 32;
            for (int l = 0; l < 32; l++) {
                for (int i = 0; i < aElems; i++) {
                    long v = element(r, a, l, i, inBits);
                    if (integer) {
                        Ai[la.row(l, i)][la.col(l, i)] = at.equals("s8") ? (byte) v : v & 0xff;
                    } else {
                        A[la.row(l, i)][la.col(l, i)] = real(v, at);
                    }
                }
                for (int i = 0; i < bElems; i++) {
                    long v = element(r, b, l, i, inBits);
                    if (integer) {
                        Bi[lb.row(l, i)][lb.col(l, i)] = bt.equals("s8") ? (byte) v : v & 0xff;
                    } else {
                        B[lb.row(l, i)][lb.col(l, i)] = real(v, bt);
                    }
                }
                for (int i = 0; i < cElems; i++) {
                    long v = element(r, c, l, i, accBits);
                    if (integer) {
                        Ci[lc.row(l, i)][lc.col(l, i)] = (int) v;
                    } else {
                        C[lc.row(l, i)][lc.col(l, i)] = real(v, ct);
                    }
                }
            }
            for (int l = 0; l < 32; l++) {
                if ((mask & (1 << l)) == 0) {
                    continue;
                }
                long[] out = new long[d.length];
                for (int i = 0; i < cElems; i++) {
                    int row = lc.row(l, i), col = lc.col(l, i);
                    long bits;
                    if (integer) {
                        long s = Ci[row][col];
                        for (int k = 0; k < K; k++) {
                            s += Ai[row][k] * Bi[k][col];
                        }
                        bits = s & 0xffffffffL;
                    } else {
                        double s = C[row][col];
                        for (int k = 0; k < K; k++) {
                            s += A[row][k] * B[k][col];
                        }
                        bits = dt.equals("f16") ? Fp.toHalf(s, Fp.RN) : dt.equals("f64") ? Fp.bits(s) : Fp.bits((float) s);
                    }
                    int per = dt.equals("f16") ? 2 : 1;
                    out[i / per] |= per == 1 ? bits : bits << ((i % per) * 16);
                }
                for (int j = 0; j < d.length; j++) {
                    r[d[j] << 5 | l] = out[j];
                }
            }
        }
    }

    /** movmatrix.sync.aligned.m8n8.trans.b16: transposes an 8x8 matrix of 16-bit elements held by the warp. */
    static Insn movmatrix(Compiler c, Ast.Insn in) {
        if (!in.has("m8n8") || !in.has("trans") || !in.has("b16")) {
            throw new Compiler.Unsupported("movmatrix form " + in.form());
        }
        int d = c.dstReg(c.operand(in, 0));
        int a = c.srcReg(c.operand(in, 1), "b32");
        return new Insn() {
            @Override
            public void exec(Warp w, int mask) {
                long[] r = w.r;
                long[] src = w.tmp;
                for (int l = 0; l < 32; l++) {
                    src[l] = r[a << 5 | l];
                }
                // Element (row, col) sits in lane row * 4 + col / 2, half col % 2; lane t receives
                // row t / 4 of the transpose: elements (2 (t % 4), t / 4) and (2 (t % 4) + 1, t / 4).
                for (int m = mask; m != 0; m &= m - 1) {
                    int t = Integer.numberOfTrailingZeros(m);
                    int col = t / 4;
                    int r0 = 2 * (t % 4), r1 = r0 + 1;
                    long e0 = (src[r0 * 4 + col / 2] >>> (16 * (col % 2))) & 0xffff;
                    long e1 = (src[r1 * 4 + col / 2] >>> (16 * (col % 2))) & 0xffff;
                    r[d << 5 | t] = e0 | (e1 << 16);
                }
            }
        };
    }
}
