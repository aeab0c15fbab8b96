package io.vgpu.ptx.internal;

import io.vgpu.ptx.KernelFault;
import java.util.function.LongBinaryOperator;

/** The compiled instruction kinds. Instances are shared by all workers: no mutable state. */
public final class Ops {
    private Ops() {}

    public interface L1 { long f(long a); }
    public interface L2 { long f(long a, long b); }
    public interface L3 { long f(long a, long b, long c); }
    public interface L4 { long f(long a, long b, long c, long d); }
    public interface Cmp { boolean f(long a, long b); }

    public static final class Op1 extends Insn {
        final int d, a;
        final long dm;
        final L1 fn;

        public Op1(int d, int a, long dm, L1 fn) {
            this.d = d << 5;
            this.a = a << 5;
            this.dm = dm;
            this.fn = fn;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = fn.f(r[a | l]) & dm;
            }
        }
    }

    public static final class Mov extends Insn {
        final int d, a;
        final long dm;

        public Mov(int d, int a, long dm) {
            this.d = d << 5;
            this.a = a << 5;
            this.dm = dm;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            if (mask == -1) {
                for (int l = 0; l < 32; l++) {
                    r[d | l] = r[a | l] & dm;
                }
                return;
            }
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = r[a | l] & dm;
            }
        }
    }

    public static final class Op2 extends Insn {
        final int d, a, b;
        final long dm;
        final L2 fn;

        public Op2(int d, int a, int b, long dm, L2 fn) {
            this.d = d << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.dm = dm;
            this.fn = fn;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            if (mask == -1) {
                for (int l = 0; l < 32; l++) {
                    r[d | l] = fn.f(r[a | l], r[b | l]) & dm;
                }
                return;
            }
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = fn.f(r[a | l], r[b | l]) & dm;
            }
        }
    }

    public static final class Op3 extends Insn {
        final int d, a, b, c;
        final long dm;
        final L3 fn;

        public Op3(int d, int a, int b, int c, long dm, L3 fn) {
            this.d = d << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c << 5;
            this.dm = dm;
            this.fn = fn;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = fn.f(r[a | l], r[b | l], r[c | l]) & dm;
            }
        }
    }

    public static final class Op4 extends Insn {
        final int d, a, b, c, e;
        final long dm;
        final L4 fn;

        public Op4(int d, int a, int b, int c, int e, long dm, L4 fn) {
            this.d = d << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c << 5;
            this.e = e << 5;
            this.dm = dm;
            this.fn = fn;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = fn.f(r[a | l], r[b | l], r[c | l], r[e | l]) & dm;
            }
        }
    }

    /** setp / set with an optional second predicate and a boolean combination with c. */
    public static final class Setp extends Insn {
        final int p, q, a, b, c;
        final boolean cNeg;
        final int bool; // 0 none, 1 and, 2 or, 3 xor
        final Cmp cmp;
        final long trueValue; // 1 for predicates; all ones / 1.0f for set

        public Setp(int p, int q, int a, int b, int c, boolean cNeg, int bool, Cmp cmp, long trueValue) {
            this.p = p << 5;
            this.q = q < 0 ? -1 : q << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c < 0 ? -1 : c << 5;
            this.cNeg = cNeg;
            this.bool = bool;
            this.cmp = cmp;
            this.trueValue = trueValue;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                boolean t = cmp.f(r[a | l], r[b | l]);
                boolean u = !t;
                if (bool != 0) {
                    boolean cv = (r[c | l] != 0) != cNeg;
                    switch (bool) {
                        case 1: t = t & cv; u = u & cv; break;
                        case 2: t = t | cv; u = u | cv; break;
                        default: t = t ^ cv; u = u ^ cv;
                    }
                }
                r[p | l] = t ? trueValue : 0;
                if (q >= 0) {
                    r[q | l] = u ? trueValue : 0;
                }
            }
        }
    }

    /** selp: d = c ? a : b. */
    public static final class Selp extends Insn {
        final int d, a, b, c;
        final boolean cNeg;
        final long dm;

        public Selp(int d, int a, int b, int c, boolean cNeg, long dm) {
            this.d = d << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c << 5;
            this.cNeg = cNeg;
            this.dm = dm;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = ((r[c | l] != 0) != cNeg ? r[a | l] : r[b | l]) & dm;
            }
        }
    }

    /** Moves a predicate operand (possibly negated) into a register as 0/1. */
    public static final class PredNot extends Insn {
        final int d, a;

        public PredNot(int d, int a) {
            this.d = d << 5;
            this.a = a << 5;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                r[d | l] = r[a | l] != 0 ? 0 : 1;
            }
        }
    }

    /** Integer add/sub with carry in and/or out (add.cc, addc, sub.cc, subc, mad.cc, madc). */
    public static final class Carry extends Insn {
        final int d, a, b, c;
        final boolean sub, carryIn, carryOut, wide;
        final int kind; // 0 add/sub, 1 mad.lo, 2 mad.hi

        public Carry(int d, int a, int b, int c, boolean sub, boolean carryIn, boolean carryOut, boolean wide, int kind) {
            this.d = d << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c < 0 ? -1 : c << 5;
            this.sub = sub;
            this.carryIn = carryIn;
            this.carryOut = carryOut;
            this.wide = wide;
            this.kind = kind;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            int carry = w.carry;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long x = r[a | l];
                long y = r[b | l];
                if (kind == 1) {
                    x = wide ? x * y : ((x & 0xffffffffL) * (y & 0xffffffffL));
                    y = r[c | l];
                } else if (kind == 2) {
                    x = wide ? Compiler.umulhi64(x, y) : ((x & 0xffffffffL) * (y & 0xffffffffL)) >>> 32;
                    y = r[c | l];
                }
                long cin = carryIn ? ((carry >>> l) & 1) : 0;
                long res;
                boolean cout;
                // PTX's CC.CF is the carry of an add and the borrow of a subtraction.
                if (!wide) {
                    long ux = x & 0xffffffffL, uy = y & 0xffffffffL;
                    long s = sub ? ux - uy - cin : ux + uy + cin;
                    cout = sub ? s < 0 : (s >>> 32) != 0;
                    res = s & 0xffffffffL;
                } else if (sub) {
                    res = x - y - cin;
                    cout = Long.compareUnsigned(x, y) < 0 || (cin == 1 && x == y);
                } else {
                    res = x + y + cin;
                    cout = Long.compareUnsigned(res, x) < 0 || (cin == 1 && res == x);
                }
                r[d | l] = res;
                if (carryOut) {
                    carry = cout ? carry | (1 << l) : carry & ~(1 << l);
                }
            }
            w.carry = carry;
        }
    }

    /** ld/st addresses must be aligned to the access size (the whole vector for .v2/.v4), as on the GPU. */
    static void aligned(long a, int bytes, Insn in) {
        if ((a & (bytes - 1)) != 0) {
            throw new KernelFault(KernelFault.Kind.MISALIGNED_ADDRESS, String.format("%d-byte access at 0x%x is misaligned", bytes, a));
        }
    }

    /** A load of n elements of size bytes from [reg + off] (or [off]) in a state space. */
    public static final class Ld extends Insn {
        final int space, size, addr;
        final long off;
        final int[] d;
        final long[] dm;
        final boolean signed;

        public Ld(int space, int size, boolean signed, int addr, long off, int[] d, long[] dm) {
            this.space = space;
            this.size = size;
            this.signed = signed;
            this.addr = addr < 0 ? -1 : addr << 5;
            this.off = off;
            this.d = d;
            this.dm = dm;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            int n = d.length;
            int shift = 64 - size * 8;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long a = (addr < 0 ? 0 : r[addr | l]) + off;
                aligned(a, n * size, this);
                for (int i = 0; i < n; i++) {
                    long v = w.load(space, a + (long) i * size, size, l);
                    if (signed && shift > 0) {
                        v = (v << shift) >> shift;
                    }
                    if (d[i] >= 0) {
                        r[d[i] << 5 | l] = v & dm[i];
                    }
                }
            }
        }
    }

    /** A 16-byte-or-wider element (.b128) or unaligned vector is done as 8-byte pieces. */
    public static final class St extends Insn {
        final int space, size, addr;
        final long off;
        final int[] s;

        public St(int space, int size, int addr, long off, int[] s) {
            this.space = space;
            this.size = size;
            this.addr = addr < 0 ? -1 : addr << 5;
            this.off = off;
            this.s = s;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            int n = s.length;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long a = (addr < 0 ? 0 : r[addr | l]) + off;
                aligned(a, n * size, this);
                for (int i = 0; i < n; i++) {
                    w.store(space, a + (long) i * size, size, r[s[i] << 5 | l], l);
                }
            }
        }
    }

    /**
     * Reads or writes bytes of a .param variable of a function or call site, which lives in
     * consecutive registers (8 bytes each) of the lane.
     */
    public static final class ParamAccess extends Insn {
        final boolean store;
        final int base, byteOff, size, limit;
        final int[] regs;
        final long[] dm;
        final boolean signed;

        public ParamAccess(boolean store, int base, int limit, int byteOff, int size, boolean signed, int[] regs, long[] dm) {
            this.store = store;
            this.base = base;
            this.limit = limit;
            this.byteOff = byteOff;
            this.size = size;
            this.signed = signed;
            this.regs = regs;
            this.dm = dm;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                for (int i = 0; i < regs.length; i++) {
                    int o = byteOff + i * size;
                    if (o < 0 || o + size > limit) {
                        throw new KernelFault(KernelFault.Kind.ILLEGAL_ADDRESS, "parameter access at byte " + o + " outside its " + limit);
                    }
                    if (store) {
                        long v = r[regs[i] << 5 | l];
                        for (int k = 0; k < size; k++) {
                            int bo = o + k;
                            int reg = (base + bo / 8) << 5 | l;
                            int sh = (bo % 8) * 8;
                            r[reg] = (r[reg] & ~(0xffL << sh)) | (((v >>> (8 * k)) & 0xff) << sh);
                        }
                    } else {
                        long v = 0;
                        for (int k = size - 1; k >= 0; k--) {
                            int bo = o + k;
                            v = (v << 8) | ((r[(base + bo / 8) << 5 | l] >>> ((bo % 8) * 8)) & 0xff);
                        }
                        if (signed && size < 8) {
                            int sh = 64 - size * 8;
                            v = (v << sh) >> sh;
                        }
                        if (regs[i] >= 0) {
                            r[regs[i] << 5 | l] = v & dm[i];
                        }
                    }
                }
            }
        }
    }

    /** atom / red. */
    public static final class Atom extends Insn {
        final int space, size, d, addr, b, c;
        final long off, dm;
        final LongBinaryOperator op;
        final boolean cas;
        /** The operation where the address is in global memory, if it differs there (atom.add.f32 flushes subnormals). */
        LongBinaryOperator globalOp;

        public Atom withGlobalOp(LongBinaryOperator g) {
            this.globalOp = g;
            return this;
        }

        public Atom(int space, int size, int d, int addr, long off, int b, int c, long dm, LongBinaryOperator op, boolean cas) {
            this.space = space;
            this.size = size;
            this.d = d;
            this.addr = addr < 0 ? -1 : addr << 5;
            this.off = off;
            this.b = b << 5;
            this.c = c < 0 ? -1 : c << 5;
            this.dm = dm;
            this.op = op;
            this.cas = cas;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long a = (addr < 0 ? 0 : r[addr | l]) + off;
                long old;
                if (cas) {
                    long cmp = r[b | l] & dm;
                    long nv = r[c | l] & dm;
                    old = casAt(w, a, cmp, nv, l);
                } else {
                    LongBinaryOperator f = globalOp != null && Warp.resolve(space, a) == Mem.GLOBAL ? globalOp : op;
                    old = w.atomic(space, a, size, f, r[b | l], l);
                }
                if (d >= 0) {
                    r[d << 5 | l] = old & dm;
                }
            }
        }

        private long casAt(Warp w, long a, long cmp, long nv, int lane) {
            int s = Warp.resolve(space, a);
            long x = Warp.strip(s, space, a);
            if (s != Mem.GLOBAL) {
                long old = w.load(s, x, size, lane);
                if (old == cmp) {
                    w.store(s, x, size, nv, lane);
                }
                return old;
            }
            if ((x & (size - 1)) != 0) {
                throw new KernelFault(KernelFault.Kind.MISALIGNED_ADDRESS, String.format("atom.cas at 0x%x is misaligned", x));
            }
            if (size == 2) {
                long word = x & ~3L;
                int sh = (int) (x & 3) * 8;
                for (;;) {
                    long wv = w.block.mem.load(word, 4);
                    long old = (wv >>> sh) & 0xffff;
                    if (old != cmp) {
                        return old;
                    }
                    long nw = (wv & ~(0xffffL << sh)) | (nv << sh);
                    if (w.block.mem.compareAndSet(word, 4, wv, nw)) {
                        return old;
                    }
                }
            }
            for (;;) {
                long old = w.block.mem.load(x, size);
                if (old != cmp) {
                    return old;
                }
                if (w.block.mem.compareAndSet(x, size, cmp, nv)) {
                    return cmp;
                }
            }
        }
    }

    /** shfl.sync. */
    public static final class Shfl extends Insn {
        final int mode; // 0 up, 1 down, 2 bfly, 3 idx
        final int d, p, a, b, c;

        public Shfl(int mode, int d, int p, int a, int b, int c) {
            this.mode = mode;
            this.d = d << 5;
            this.p = p < 0 ? -1 : p << 5;
            this.a = a << 5;
            this.b = b << 5;
            this.c = c << 5;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            long[] src = w.tmp;
            for (int l = 0; l < 32; l++) {
                src[l] = r[a | l];
            }
            for (int m = mask; m != 0; m &= m - 1) {
                int lane = Integer.numberOfTrailingZeros(m);
                int bval = (int) r[b | lane] & 0x1f;
                int cv = (int) r[c | lane];
                int cval = cv & 0x1f;
                int segmask = (cv >>> 8) & 0x1f;
                int maxLane = (lane & segmask) | (cval & ~segmask);
                int minLane = lane & segmask;
                int j;
                boolean pval;
                switch (mode) {
                    case 0: j = lane - bval; pval = j >= maxLane; break;
                    case 1: j = lane + bval; pval = j <= maxLane; break;
                    case 2: j = lane ^ bval; pval = j <= maxLane; break;
                    default: j = minLane | (bval & ~segmask); pval = j <= maxLane;
                }
                if (!pval) {
                    j = lane;
                }
                r[d | lane] = src[j & 31];
                if (p >= 0) {
                    r[p | lane] = pval ? 1 : 0;
                }
            }
        }
    }

    /** vote, match, redux, activemask, elect: warp-wide results over the executing lanes. */
    public static final class WarpOp extends Insn {
        final int kind;
        final int d, p, a, member;
        final boolean aNeg;
        public static final int ALL = 0, ANY = 1, UNI = 2, BALLOT = 3, MATCH_ANY = 4, MATCH_ALL = 5,
                ACTIVEMASK = 6, ELECT = 7, REDUX = 8;
        final int redOp; // 0 add, 1 min, 2 max, 3 and, 4 or, 5 xor
        final boolean signed;

        public WarpOp(int kind, int d, int p, int a, boolean aNeg, int member, int redOp, boolean signed) {
            this.kind = kind;
            this.d = d < 0 ? -1 : d << 5;
            this.p = p < 0 ? -1 : p << 5;
            this.a = a < 0 ? -1 : a << 5;
            this.aNeg = aNeg;
            this.member = member < 0 ? -1 : member << 5;
            this.redOp = redOp;
            this.signed = signed;
        }

        /** The lanes lane l's instruction covers: the executing lanes within its membermask. */
        private int members(long[] r, int mask, int l) {
            return member < 0 ? mask : mask & (int) r[member | l];
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            if (kind == ACTIVEMASK) {
                set(r, mask, mask, mask & 0xffffffffL);
                return;
            }
            if (kind == ELECT) {
                for (int m = mask; m != 0; m &= m - 1) {
                    int l = Integer.numberOfTrailingZeros(m);
                    int leader = Integer.numberOfTrailingZeros(members(r, mask, l));
                    if (d >= 0) {
                        r[d | l] = leader;
                    }
                    if (p >= 0) {
                        r[p | l] = l == leader ? 1 : 0;
                    }
                }
                return;
            }
            // Results are computed for every lane first: lanes read each other's sources.
            long[] out = w.tmp;
            long[] outP = new long[32];
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                int lanes = members(r, mask, l);
                switch (kind) {
                    case ALL: case ANY: case UNI: case BALLOT: {
                        int ballot = 0;
                        for (int n = lanes; n != 0; n &= n - 1) {
                            int k = Integer.numberOfTrailingZeros(n);
                            if ((r[a | k] != 0) != aNeg) {
                                ballot |= 1 << k;
                            }
                        }
                        switch (kind) {
                            case ALL: out[l] = ballot == lanes ? 1 : 0; break;
                            case ANY: out[l] = ballot != 0 ? 1 : 0; break;
                            case UNI: out[l] = ballot == 0 || ballot == lanes ? 1 : 0; break;
                            default: out[l] = ballot & 0xffffffffL;
                        }
                        outP[l] = out[l];
                        break;
                    }
                    case MATCH_ANY: {
                        int same = 0;
                        for (int n = lanes; n != 0; n &= n - 1) {
                            int k = Integer.numberOfTrailingZeros(n);
                            if (r[a | k] == r[a | l]) {
                                same |= 1 << k;
                            }
                        }
                        out[l] = same & 0xffffffffL;
                        break;
                    }
                    case MATCH_ALL: {
                        boolean all = true;
                        for (int n = lanes; n != 0; n &= n - 1) {
                            all &= r[a | Integer.numberOfTrailingZeros(n)] == r[a | l];
                        }
                        out[l] = all ? lanes & 0xffffffffL : 0;
                        outP[l] = all ? 1 : 0;
                        break;
                    }
                    default: {
                        long acc = redOp == 1 ? (signed ? Integer.MAX_VALUE : 0xffffffffL) : redOp == 2 ? (signed ? Integer.MIN_VALUE : 0)
                                : redOp == 3 ? 0xffffffffL : 0;
                        for (int n = lanes; n != 0; n &= n - 1) {
                            long v = r[a | Integer.numberOfTrailingZeros(n)] & 0xffffffffL;
                            long sv = signed ? (int) v : v;
                            switch (redOp) {
                                case 0: acc += v; break;
                                case 1: acc = Math.min(acc, sv); break;
                                case 2: acc = Math.max(acc, sv); break;
                                case 3: acc &= v; break;
                                case 4: acc |= v; break;
                                default: acc ^= v;
                            }
                        }
                        out[l] = acc & 0xffffffffL;
                    }
                }
            }
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                if (d >= 0) {
                    r[d | l] = out[l];
                }
                if (p >= 0) {
                    r[p | l] = kind == MATCH_ALL ? outP[l] : out[l];
                }
            }
        }

        private void set(long[] r, int mask, int lanes, long v) {
            for (int m = lanes; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                if (d >= 0) {
                    r[d | l] = v;
                }
                if (p >= 0) {
                    r[p | l] = v;
                }
            }
        }
    }

    /** %clock, %clock64, %globaltimer: read when executed. */
    public static final class Clock extends Insn {
        final int d;
        final long dm;

        public Clock(int d, long dm) {
            this.d = d << 5;
            this.dm = dm;
        }

        @Override
        public void exec(Warp w, int mask) {
            long now = System.nanoTime();
            for (int m = mask; m != 0; m &= m - 1) {
                w.r[d | Integer.numberOfTrailingZeros(m)] = now & dm;
            }
        }
    }

    /** Packs registers into one (mov.b64 d, {a, b}) or unpacks one into several. */
    public static final class Pack extends Insn {
        final int d;
        final int[] parts;
        final int bits;
        final boolean unpack;

        public Pack(int d, int[] parts, int bits, boolean unpack) {
            this.d = d << 5;
            this.parts = parts;
            this.bits = bits;
            this.unpack = unpack;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            long pm = bits == 64 ? -1L : (1L << bits) - 1;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                if (unpack) {
                    long v = r[d | l];
                    for (int i = 0; i < parts.length; i++) {
                        if (parts[i] >= 0) {
                            r[parts[i] << 5 | l] = (v >>> (i * bits)) & pm;
                        }
                    }
                } else {
                    long v = 0;
                    for (int i = 0; i < parts.length; i++) {
                        v |= (r[parts[i] << 5 | l] & pm) << (i * bits);
                    }
                    r[d | l] = v;
                }
            }
        }
    }

    public static final class Nop extends Insn {
        @Override
        public void exec(Warp w, int mask) {
        }
    }

    /** An instruction the engine does not execute: the launch fails when a lane reaches it. */
    public static final class Unsupported extends Insn {
        final String why;

        public Unsupported(String why) {
            this.why = why;
        }

        @Override
        public void exec(Warp w, int mask) {
            throw new KernelFault(KernelFault.Kind.UNSUPPORTED, why);
        }
    }

    // ------------------------------------------------------------------ control

    public static final class Bra extends Insn {
        public int target;

        @Override
        public boolean isControl() {
            return true;
        }

        @Override
        public void exec(Warp w, int mask) {
        }

        @Override
        public void control(Warp w, int group, int mask, int pc) {
            w.branch(group, mask, target, pc);
        }
    }

    public static final class Exit extends Insn {
        /** ret (returns from a .func, exits at depth 0) rather than exit. */
        final boolean ret;

        @Override
        public boolean isControl() {
            return true;
        }

        public Exit(boolean ret) {
            this.ret = ret;
        }

        @Override
        public void exec(Warp w, int mask) {
        }

        @Override
        public void control(Warp w, int group, int mask, int pc) {
            for (int g = group; g != 0; g &= g - 1) {
                int l = Integer.numberOfTrailingZeros(g);
                if ((mask & (1 << l)) == 0) {
                    w.pc[l] = pc + 1;
                    continue;
                }
                if (!ret || w.depth[l] == 0) {
                    w.exited |= 1 << l;
                    continue;
                }
                int dpt = --w.depth[l];
                int back = w.retStack[l * w.k.maxDepth + dpt];
                Insn call = w.k.code[back - 1];
                if (call instanceof Call) {
                    ((Call) call).returned(w, l);
                }
                w.pc[l] = back;
            }
        }
    }

    public static final class Call extends Insn {
        public int target;
        /** Register pairs: {from caller, to callee} for arguments, {from callee, to caller} for results. */
        public int[] argFrom = new int[0], argTo = new int[0], retFrom = new int[0], retTo = new int[0];

        @Override
        public boolean isControl() {
            return true;
        }

        @Override
        public void exec(Warp w, int mask) {
        }

        @Override
        public void control(Warp w, int group, int mask, int pc) {
            long[] r = w.r;
            for (int g = group; g != 0; g &= g - 1) {
                int l = Integer.numberOfTrailingZeros(g);
                if ((mask & (1 << l)) == 0) {
                    w.pc[l] = pc + 1;
                    continue;
                }
                int dpt = w.depth[l];
                if (dpt >= w.k.maxDepth) {
                    throw new KernelFault(KernelFault.Kind.TRAP, "call depth " + dpt + " exceeded at " + this);
                }
                for (int i = 0; i < argFrom.length; i++) {
                    r[argTo[i] << 5 | l] = r[argFrom[i] << 5 | l];
                }
                w.retStack[l * w.k.maxDepth + dpt] = pc + 1;
                w.depth[l] = dpt + 1;
                w.pc[l] = target;
            }
        }

        void returned(Warp w, int l) {
            long[] r = w.r;
            for (int i = 0; i < retFrom.length; i++) {
                r[retTo[i] << 5 | l] = r[retFrom[i] << 5 | l];
            }
        }
    }

    public static final class Trap extends Insn {
        final String why;

        public Trap(String why) {
            this.why = why;
        }

        @Override
        public boolean isControl() {
            return true;
        }

        @Override
        public void exec(Warp w, int mask) {
        }

        @Override
        public void control(Warp w, int group, int mask, int pc) {
            if (mask != 0) {
                throw new KernelFault(KernelFault.Kind.TRAP, why + " at " + this);
            }
            w.branch(group, 0, 0, pc);
        }
    }

    /** bar.sync / barrier.sync / bar.arrive / bar.red. */
    public static final class Bar extends Insn {
        final int id, count; // registers
        final boolean wait;
        final int redOp, redDst, pred;
        final boolean predNeg;

        public Bar(int id, int count, boolean wait, int redOp, int redDst, int pred, boolean predNeg) {
            this.id = id;
            this.count = count;
            this.wait = wait;
            this.redOp = redOp;
            this.redDst = redDst;
            this.pred = pred;
            this.predNeg = predNeg;
        }

        @Override
        public boolean isControl() {
            return true;
        }

        @Override
        public void exec(Warp w, int mask) {
        }

        @Override
        public void control(Warp w, int group, int mask, int pc) {
            for (int g = group; g != 0; g &= g - 1) {
                w.pc[Integer.numberOfTrailingZeros(g)] = pc + 1;
            }
            if (mask == 0) {
                return;
            }
            int first = Integer.numberOfTrailingZeros(mask);
            int b = (int) w.r[id << 5 | first];
            int n = count < 0 ? 0 : (int) w.r[count << 5 | first];
            if (redOp != 0) {
                for (int m = mask; m != 0; m &= m - 1) {
                    int l = Integer.numberOfTrailingZeros(m);
                    boolean p = (w.r[pred << 5 | l] != 0) != predNeg;
                    w.barPred = p ? w.barPred | (1 << l) : w.barPred & ~(1 << l);
                }
                w.block.redOp[b & 15] = redOp;
                w.block.redDst[b & 15] = redDst;
            }
            w.block.arrive(w, mask, b, n, wait);
        }
    }
}
