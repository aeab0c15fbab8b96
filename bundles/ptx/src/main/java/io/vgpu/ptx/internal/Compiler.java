package io.vgpu.ptx.internal;

import io.vgpu.ptx.PtxException;
import io.vgpu.ptx.internal.Ast.Kind;
import io.vgpu.ptx.internal.Ast.Operand;
import io.vgpu.ptx.internal.Ops.L2;
import io.vgpu.ptx.internal.Ops.L3;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles one {@code .entry} and the functions it calls into warp code: every register, immediate
 * and special register becomes a slot of the lane register file, every state-space variable an
 * offset in its space, every label a pc.
 */
public final class Compiler {
    final Ast.Module mod;
    final Map<String, Long> symbols;
    final List<Insn> code = new ArrayList<>();
    final List<Integer> widths = new ArrayList<>();
    final Map<Long, Integer> constPool = new HashMap<>();
    final List<Integer> constRegs = new ArrayList<>();
    final List<Long> constValues = new ArrayList<>();
    final Map<String, Integer> funcPc = new HashMap<>();
    final Map<String, Ast.Func> closure = new LinkedHashMap<>();
    final Map<String, Long> sharedOffsets = new HashMap<>();
    final Map<String, Long> localOffsets = new HashMap<>();
    final Map<String, Integer> kernelParams = new HashMap<>();
    long sharedSize;
    long localSize;
    int maxDepth = 1;

    // per function
    Ast.Func fn;
    Map<String, Integer> regs;
    Map<String, int[]> params; // name -> {base register, size}
    Map<String, Integer> labels;

    private Compiler(Ast.Module mod, Map<String, Long> symbols) {
        this.mod = mod;
        this.symbols = symbols;
        for (int i = 0; i < Sreg.COUNT; i++) {
            widths.add(32);
        }
    }

    public static Kernel compile(Ast.Module m, Ast.Func entry, Map<String, Long> symbols) throws PtxException {
        Compiler c = new Compiler(m, symbols);
        try {
            return c.run(entry);
        } catch (RuntimeException e) {
            throw new PtxException("cannot compile " + entry.name + ": " + e.getMessage());
        }
    }

    private Kernel run(Ast.Func entry) {
        collect(entry, new HashSet<>(), 1);
        layOutShared();
        Kernel k = new Kernel();
        k.name = entry.name;
        // Kernel parameters: in order, each at its alignment.
        int off = 0;
        k.paramOffsets = new int[entry.params.size()];
        for (int i = 0; i < entry.params.size(); i++) {
            Ast.Var p = entry.params.get(i);
            off = (int) align(off, Math.max(1, p.alignment()));
            k.paramOffsets[i] = off;
            kernelParams.put(p.name, off);
            off += (int) p.byteSize();
        }
        k.paramSize = off;
        // Local memory: each function's .local variables side by side (no recursion).
        for (Ast.Func f : closure.values()) {
            for (Ast.Var v : f.locals) {
                if (v.space.equals("local")) {
                    localSize = align(localSize, Math.max(1, v.alignment()));
                    localOffsets.put(f.name + "\0" + v.name, localSize);
                    localSize += v.byteSize();
                }
            }
        }
        // pcs
        int pc = 0;
        for (Ast.Func f : closure.values()) {
            funcPc.put(f.name, pc);
            for (Ast.Insn in : f.body) {
                if (in.opcode != null) {
                    pc++;
                }
            }
            pc++; // an implicit ret at the end of every function
        }
        for (Ast.Func f : closure.values()) {
            compileFunction(f, f == entry);
        }
        k.code = code.toArray(new Insn[0]);
        k.registers = widths.size();
        k.constRegs = constRegs.stream().mapToInt(Integer::intValue).toArray();
        k.constValues = constValues.stream().mapToLong(Long::longValue).toArray();
        k.sharedStatic = (int) sharedSize;
        k.localSize = (int) align(localSize, 8);
        k.maxDepth = maxDepth;
        return k;
    }

    static long align(long v, long a) {
        return (v + a - 1) / a * a;
    }

    /** The entry and every function it can call; depth bounds the call stack. */
    private void collect(Ast.Func f, Set<String> path, int depth) {
        if (!path.add(f.name)) {
            throw new IllegalStateException("recursive call of " + f.name + " is not supported");
        }
        maxDepth = Math.max(maxDepth, depth);
        closure.putIfAbsent(f.name, f);
        for (Ast.Insn in : f.body) {
            if ("call".equals(in.opcode)) {
                String callee = callee(in);
                Ast.Func g = callee == null ? null : mod.func(callee);
                if (g != null && g.defined) {
                    collect(g, path, depth + 1);
                }
            }
        }
        path.remove(f.name);
    }

    private static String callee(Ast.Insn in) {
        for (Operand o : in.operands) {
            if (o.kind == Kind.SYM) {
                return o.name;
            }
            if (o.kind == Kind.REG) {
                return null;
            }
        }
        return null;
    }

    /** Static shared memory: the module's variables the code refers to, then the dynamic part. */
    private void layOutShared() {
        Set<String> used = new HashSet<>();
        for (Ast.Func f : closure.values()) {
            for (Ast.Insn in : f.body) {
                for (Operand o : in.operands) {
                    mention(o, used);
                }
            }
        }
        int dynAlign = 16;
        List<Ast.Var> dynamic = new ArrayList<>();
        List<Ast.Var> all = new ArrayList<>(mod.vars);
        for (Ast.Func f : closure.values()) {
            for (Ast.Var v : f.locals) {
                if (v.space.equals("shared")) {
                    all.add(v);
                }
            }
        }
        for (Ast.Var v : all) {
            if (!v.space.equals("shared") || !used.contains(v.name)) {
                continue;
            }
            if (v.count == 0) {
                dynamic.add(v);
                dynAlign = Math.max(dynAlign, v.alignment());
                continue;
            }
            sharedSize = align(sharedSize, Math.max(1, v.alignment()));
            sharedOffsets.put(v.name, sharedSize);
            sharedSize += v.byteSize();
        }
        sharedSize = align(sharedSize, dynAlign);
        for (Ast.Var v : dynamic) {
            sharedOffsets.put(v.name, sharedSize);
        }
    }

    private static void mention(Operand o, Set<String> used) {
        if ((o.kind == Kind.SYM || o.kind == Kind.ADDR) && o.name != null) {
            used.add(o.name);
        } else if (o.kind == Kind.VEC) {
            for (Operand e : o.elements) {
                mention(e, used);
            }
        }
    }

    // ------------------------------------------------------------------ registers and operands

    private int newReg(int bits) {
        widths.add(bits);
        return widths.size() - 1;
    }

    private long dm(int reg) {
        int b = widths.get(reg);
        return b >= 64 ? -1L : (1L << b) - 1;
    }

    private static int bitsOf(String type) {
        if (type.equals("pred")) {
            return 1;
        }
        return Types.size(type) * 8;
    }

    private int constant(long value) {
        Integer r = constPool.get(value);
        if (r == null) {
            r = newReg(64);
            constPool.put(value, r);
            constRegs.add(r);
            constValues.add(value);
        }
        return r;
    }

    private void compileFunction(Ast.Func f, boolean entry) {
        fn = f;
        regs = new HashMap<>();
        params = new HashMap<>();
        labels = new HashMap<>();
        for (Ast.Var v : f.locals) {
            if (v.space.equals("reg")) {
                regs.put(v.name, newReg(Math.max(1, bitsOf(v.type) * v.vector)));
            } else if (v.space.equals("param")) {
                params.put(v.name, paramRegs(v));
            }
        }
        if (!entry) {
            for (Ast.Var v : f.params) {
                params.put(v.name, paramRegsOf(f, v));
            }
            for (Ast.Var v : f.returns) {
                params.put(v.name, paramRegsOf(f, v));
            }
        }
        int pc = funcPc.get(f.name);
        for (Ast.Insn in : f.body) {
            if (in.opcode == null) {
                labels.put(in.label, pc);
            } else {
                pc++;
            }
        }
        for (Ast.Insn in : f.body) {
            if (in.opcode == null) {
                continue;
            }
            Insn out;
            try {
                out = insn(in);
            } catch (Unsupported u) {
                out = new Ops.Unsupported("instruction " + in.form() + " (PTX line " + in.line + ") is not supported by vgpu's PTX engine: "
                        + u.getMessage());
            } catch (RuntimeException e) {
                throw new IllegalStateException("PTX line " + in.line + " (" + in + "): " + e.getMessage(), e);
            }
            out.line = in.line;
            out.form = in.form();
            if (in.guard != null) {
                out.guard = reg(in.guard);
                out.guardNegated = in.guardNegated;
            }
            code.add(out);
        }
        Ops.Exit end = new Ops.Exit(true);
        end.form = "ret (end of " + f.name + ")";
        code.add(end);
    }

    private int[] paramRegs(Ast.Var v) {
        int size = (int) Math.max(1, v.byteSize());
        int n = (size + 7) / 8;
        int base = newReg(64);
        for (int i = 1; i < n; i++) {
            newReg(64);
        }
        return new int[] {base, size};
    }

    static final class Unsupported extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Unsupported(String m) {
            super(m);
        }
    }

    private int reg(String name) {
        Integer r = regs.get(name);
        if (r != null) {
            return r;
        }
        int s = Sreg.of(name);
        if (s >= 0) {
            return s;
        }
        throw new IllegalStateException("undeclared register " + name);
    }

    private int dst(Operand o) {
        if (o.kind == Kind.SINK) {
            return Sreg.SINK;
        }
        if (o.kind == Kind.SYM && o.value == 0 && regs.containsKey(o.name)) {
            return regs.get(o.name); // PTX registers may be named without a %
        }
        if (o.kind != Kind.REG) {
            throw new IllegalStateException("destination must be a register, not " + o);
        }
        return reg(o.name);
    }

    /** A source operand as a register, immediates typed by the instruction type. */
    private int src(Operand o, String type) {
        switch (o.kind) {
            case REG:
                if (o.negated) {
                    throw new Unsupported("negated operand " + o + " here");
                }
                return reg(o.name);
            case IMM: case FIMM: case DIMM:
                return constant(immediate(o, type));
            case SYM:
                if (o.value == 0 && regs.containsKey(o.name)) {
                    return regs.get(o.name);
                }
                return constant(symbolValue(o.name, -1) + o.value);
            case SINK:
                return Sreg.ZERO;
            default:
                throw new IllegalStateException("unexpected operand " + o);
        }
    }

    static long immediate(Operand o, String type) {
        int bits = type.equals("pred") ? 1 : Types.size(type) * 8;
        long mask = bits >= 64 ? -1L : (1L << bits) - 1;
        boolean isF = type.equals("f32") || type.equals("f64") || type.equals("f16") || type.equals("bf16");
        switch (o.kind) {
            case IMM:
                if (isF) {
                    double v = o.value;
                    return floatBits(v, type);
                }
                return o.value & mask;
            case FIMM: {
                float f = Float.intBitsToFloat((int) o.value);
                return isF ? floatBits(f, type) : o.value & mask;
            }
            default: {
                double d = Double.longBitsToDouble(o.value);
                return isF ? floatBits(d, type) : o.value & mask;
            }
        }
    }

    private static long floatBits(double v, String type) {
        switch (type) {
            case "f32": return Float.floatToRawIntBits((float) v) & 0xffffffffL;
            case "f16": return Fp.toHalf(v, Fp.RN);
            case "bf16": return Fp.toBf16((float) v, Fp.RN);
            default: return Double.doubleToRawLongBits(v);
        }
    }

    /** The address a symbol stands for in a state space (generic addresses for GENERIC). */
    private long symbolValue(String name, int space) {
        Long sh = sharedOffsets.get(name);
        if (sh != null) {
            return space == Mem.GENERIC ? Space.SHARED_BASE + sh : sh;
        }
        Long lo = localOffsets.get(fn.name + "\0" + name);
        if (lo != null) {
            return space == Mem.GENERIC ? Space.LOCAL_BASE + lo : lo;
        }
        Integer kp = kernelParams.get(name);
        if (kp != null && fn == closure.values().iterator().next()) {
            return space == Mem.GENERIC ? Space.PARAM_BASE + kp : kp;
        }
        Long g = symbols.get(name);
        if (g != null) {
            return g;
        }
        Ast.Var v = mod.var(name);
        if (v != null && (v.space.equals("global") || v.space.equals("const"))) {
            throw new IllegalStateException("the loader placed no address for " + v.space + " variable " + name);
        }
        if (mod.func(name) != null) {
            throw new Unsupported("function addresses (indirect calls)");
        }
        throw new IllegalStateException("unknown symbol " + name);
    }

    // ------------------------------------------------------------------ helpers for types

    private static String type(Ast.Insn in) {
        String t = null;
        for (String m : in.mods) {
            if (Types.isType(m)) {
                t = m;
            }
        }
        if (t == null) {
            throw new IllegalStateException("no type in " + in.form());
        }
        return t;
    }

    private static List<String> types(Ast.Insn in) {
        List<String> out = new ArrayList<>();
        for (String m : in.mods) {
            if (Types.isType(m)) {
                out.add(m);
            }
        }
        return out;
    }

    private Operand op(Ast.Insn in, int i) {
        if (i >= in.operands.size()) {
            throw new IllegalStateException(in.form() + " needs operand " + (i + 1));
        }
        return in.operands.get(i);
    }

    static long sx(long v, int bits) {
        int sh = 64 - bits;
        return (v << sh) >> sh;
    }

    static long zx(long v, int bits) {
        return bits >= 64 ? v : v & ((1L << bits) - 1);
    }

    public static long umulhi64(long a, long b) {
        return Math.multiplyHigh(a, b) + ((a >> 63) & b) + ((b >> 63) & a);
    }

    // ------------------------------------------------------------------ instructions

    private Insn insn(Ast.Insn in) {
        switch (in.opcode) {
            case "mov": return mov(in);
            case "add": case "sub": case "mul": case "mad": case "fma": case "div": case "rem": case "min": case "max":
            case "abs": case "neg": case "and": case "or": case "xor": case "not": case "cnot": case "shl": case "shr":
            case "rcp": case "sqrt": case "rsqrt": case "sin": case "cos": case "lg2": case "ex2": case "tanh":
            case "copysign": case "popc": case "clz": case "brev": case "bfind": case "bfe": case "bfi": case "prmt":
            case "lop3": case "shf": case "mul24": case "mad24": case "sad": case "testp": case "dp4a": case "dp2a":
            case "addc": case "subc": case "madc": case "bmsk": case "szext": case "fns":
                return arith(in);
            case "setp": case "set": return setp(in);
            case "selp": return selp(in);
            case "slct": return slct(in);
            case "cvt": return cvt(in);
            case "cvta": return cvta(in);
            case "isspacep": return isspacep(in);
            case "ld": case "ldu": return ld(in);
            case "st": return st(in);
            case "atom": case "red": return atom(in);
            case "bra": {
                Ops.Bra b = new Ops.Bra();
                Operand t = op(in, 0);
                Integer pc = labels.get(t.name);
                if (pc == null) {
                    throw new IllegalStateException("unknown label " + t.name);
                }
                b.target = pc;
                return b;
            }
            case "call": return call(in);
            case "ret": return new Ops.Exit(true);
            case "exit": return new Ops.Exit(false);
            case "trap": return new Ops.Trap("trap");
            case "brkpt": case "membar": case "fence": case "prefetch": case "prefetchu": case "nanosleep":
            case "pmevent": case "griddepcontrol": case "setmaxnreg": case "discard": case "applypriority":
                return new Ops.Nop();
            case "bar": case "barrier": return bar(in);
            case "shfl": return shfl(in);
            case "vote": return vote(in);
            case "match": return match(in);
            case "redux": return redux(in);
            case "activemask":
                return new Ops.WarpOp(Ops.WarpOp.ACTIVEMASK, dst(op(in, 0)), -1, -1, false, -1, 0, false);
            case "elect": {
                Operand d = op(in, 0);
                int dr = -1, pr = -1;
                if (d.kind == Kind.VEC) {
                    dr = dst(d.elements.get(0));
                    pr = dst(d.elements.get(1));
                } else {
                    pr = dst(d);
                }
                return new Ops.WarpOp(Ops.WarpOp.ELECT, dr, pr, -1, false, memberMask(in, 1), 0, false);
            }
            case "createpolicy": {
                return new Ops.Mov(dst(op(in, 0)), Sreg.ZERO, -1L);
            }
            case "cp": return cp(in);
            case "ldmatrix": return MatrixOps.ldmatrix(this, in);
            case "mma": return MatrixOps.mma(this, in);
            case "movmatrix": return MatrixOps.movmatrix(this, in);
            default:
                throw new Unsupported("opcode " + in.opcode);
        }
    }

    // exposed to MatrixOps
    int dstReg(Operand o) {
        return dst(o);
    }

    int srcReg(Operand o, String type) {
        return src(o, type);
    }

    Addr address(Operand o, int space) {
        return addr(o, space);
    }

    private Insn mov(Ast.Insn in) {
        String t = type(in);
        Operand d = op(in, 0);
        Operand a = op(in, 1);
        if (d.kind == Kind.VEC) {
            int[] parts = new int[d.elements.size()];
            for (int i = 0; i < parts.length; i++) {
                parts[i] = dst(d.elements.get(i));
            }
            return new Ops.Pack(src(a, t), parts, bitsOf(t) / parts.length, true);
        }
        int dr = dst(d);
        if (a.kind == Kind.VEC) {
            int[] parts = new int[a.elements.size()];
            for (int i = 0; i < parts.length; i++) {
                parts[i] = src(a.elements.get(i), "b" + (bitsOf(t) / parts.length));
            }
            return new Ops.Pack(dr, parts, bitsOf(t) / parts.length, false);
        }
        if (a.kind == Kind.REG && (a.name.equals("%clock") || a.name.equals("%clock64") || a.name.equals("%globaltimer")
                || a.name.startsWith("%globaltimer") || a.name.startsWith("%clock"))) {
            return new Ops.Clock(dr, dm(dr));
        }
        if (a.kind == Kind.REG && a.negated) {
            return new Ops.PredNot(dr, reg(a.name));
        }
        if (a.kind == Kind.REG && (a.name.startsWith("%envreg") || a.name.startsWith("%pm") || a.name.startsWith("%reserved")
                || a.name.equals("%nclusterid.x") || a.name.startsWith("%cluster_nctaid") || a.name.startsWith("%nclusterid")
                || a.name.equals("%cluster_nctarank") || a.name.equals("%is_explicit_cluster"))) {
            boolean one = a.name.contains("nct") || a.name.contains("ncluster");
            return new Ops.Mov(dr, one ? constant(1) : Sreg.ZERO, dm(dr));
        }
        if (a.kind == Kind.REG && a.name.startsWith("%clusterid")) {
            return new Ops.Mov(dr, a.name.endsWith(".x") ? Sreg.CTAID_X : Sreg.ZERO, dm(dr));
        }
        return new Ops.Mov(dr, src(a, t), dm(dr));
    }

    private Insn cvta(Ast.Insn in) {
        int dr = dst(op(in, 0));
        String t = type(in);
        int a = src(op(in, 1), t);
        boolean to = in.has("to");
        long base;
        if (in.has("shared") || in.has("shared::cta") || in.has("shared::cluster")) {
            base = Space.SHARED_BASE;
        } else if (in.has("local")) {
            base = Space.LOCAL_BASE;
        } else if (in.has("param") || in.has("param::entry")) {
            base = Space.PARAM_BASE;
        } else {
            return new Ops.Mov(dr, a, dm(dr));
        }
        long b = base;
        return new Ops.Op1(dr, a, dm(dr), to ? v -> v - b : v -> v + b);
    }

    private Insn isspacep(Ast.Insn in) {
        int pr = dst(op(in, 0));
        int a = src(op(in, 1), "u64");
        String sp = in.mods.get(0);
        Ops.L1 f;
        switch (sp) {
            case "shared": case "shared::cta": case "shared::cluster":
                f = v -> v >= Space.SHARED_BASE && v < Space.SHARED_BASE + Space.WINDOW ? 1 : 0;
                break;
            case "local":
                f = v -> v >= Space.LOCAL_BASE && v < Space.LOCAL_BASE + Space.WINDOW ? 1 : 0;
                break;
            case "param": case "param::entry":
                f = v -> v >= Space.PARAM_BASE && v < Space.PARAM_BASE + Space.WINDOW ? 1 : 0;
                break;
            default:
                f = v -> v < Space.SHARED_BASE || v >= Space.PARAM_BASE + Space.WINDOW ? 1 : 0;
        }
        return new Ops.Op1(pr, a, 1, f);
    }

    // ------------------------------------------------------------------ memory

    /** An address operand resolved: state space, base register (-1 for none) and constant offset. */
    static final class Addr {
        int space;
        int reg = -1;
        long off;
        int[] param; // a function/call-site .param variable: {base register, size}
    }

    private Addr addr(Operand o, int space) {
        Addr a = new Addr();
        a.space = space;
        if (o.kind == Kind.REG) {
            a.reg = reg(o.name);
            return a;
        }
        if (o.kind == Kind.IMM) {
            a.off = o.value;
            return a;
        }
        if (o.kind != Kind.ADDR && o.kind != Kind.SYM) {
            throw new IllegalStateException("expected an address, not " + o);
        }
        a.off = o.value;
        if (o.name == null) {
            return a;
        }
        if (o.kind == Kind.ADDR && (o.baseIsReg || regs.containsKey(o.name))) {
            a.reg = reg(o.name);
            return a;
        }
        int[] p = params.get(o.name);
        if (p != null) {
            a.param = p;
            return a;
        }
        if (space == Mem.PARAM && kernelParams.containsKey(o.name)) {
            a.off += kernelParams.get(o.name);
            return a;
        }
        if (sharedOffsets.containsKey(o.name) || localOffsets.containsKey(fn.name + "\0" + o.name)) {
            if (space == Mem.GLOBAL) {
                throw new IllegalStateException(o.name + " is not in the global space");
            }
        }
        a.off += symbolValue(o.name, space);
        return a;
    }

    private Insn ld(Ast.Insn in) {
        String t = type(in);
        int size = Types.size(t);
        int space = Mem.of(in.mods);
        Operand d = op(in, 0);
        Addr a = addr(op(in, 1), space);
        List<Operand> dsts = d.kind == Kind.VEC ? d.elements : List.of(d);
        boolean signed = Types.isSigned(t);
        if (size == 16) {
            // .b128: two 64-bit halves into a vector of two b64 registers or one 128-bit pair
            throw new Unsupported(".b128 loads");
        }
        int[] dr = new int[dsts.size()];
        long[] masks = new long[dr.length];
        for (int i = 0; i < dr.length; i++) {
            Operand e = dsts.get(i);
            dr[i] = e.kind == Kind.SINK ? -1 : dst(e);
            masks[i] = dr[i] < 0 ? 0 : dm(dr[i]);
        }
        if (a.param != null) {
            return new Ops.ParamAccess(false, a.param[0], a.param[1], (int) a.off, size, signed, dr, masks);
        }
        if (space == Mem.PARAM && a.reg >= 0) {
            // A register holding a parameter-space address (or a generic one into the window).
            int base = a.reg;
            int tmp = newReg(64);
            Ops.Op1 strip = new Ops.Op1(tmp, base, -1L, v -> v >= Space.PARAM_BASE ? v - Space.PARAM_BASE : v);
            Ops.Ld ld = new Ops.Ld(Mem.PARAM, size, signed, tmp, a.off, dr, masks);
            return new Seq(strip, ld);
        }
        return new Ops.Ld(a.space, size, signed, a.reg, a.off, dr, masks);
    }

    private Insn st(Ast.Insn in) {
        String t = type(in);
        int size = Types.size(t);
        int space = Mem.of(in.mods);
        Addr a = addr(op(in, 0), space);
        Operand s = op(in, 1);
        List<Operand> srcs = s.kind == Kind.VEC ? s.elements : List.of(s);
        if (size == 16) {
            throw new Unsupported(".b128 stores");
        }
        int[] sr = new int[srcs.size()];
        for (int i = 0; i < sr.length; i++) {
            sr[i] = src(srcs.get(i), t);
        }
        if (a.param != null) {
            return new Ops.ParamAccess(true, a.param[0], a.param[1], (int) a.off, size, false, sr, new long[sr.length]);
        }
        return new Ops.St(a.space, size, a.reg, a.off, sr);
    }

    private Insn atom(Ast.Insn in) {
        String t = type(in);
        int size = Types.size(t);
        int space = Mem.of(in.mods);
        boolean red = in.opcode.equals("red");
        if (in.has("v2") || in.has("v4") || in.has("v8")) {
            return vectorAtom(in, t, red);
        }
        int i = 0;
        int d = red ? -1 : dst(op(in, i++));
        Addr a = addr(op(in, i++), space);
        if (a.param != null) {
            throw new Unsupported("atomics on parameters");
        }
        String opn = null;
        for (String m : in.mods) {
            switch (m) {
                case "add": case "inc": case "dec": case "min": case "max": case "and": case "or": case "xor": case "exch": case "cas":
                    opn = m;
                    break;
                default:
            }
        }
        if (opn == null) {
            throw new Unsupported("atomic operation in " + in.form());
        }
        if ((t.equals("f16x2") || t.equals("bf16x2")) && !opn.equals("add")) {
            throw new Unsupported("packed atomic " + opn);
        }
        int b = src(op(in, i++), t);
        int c = opn.equals("cas") ? src(op(in, i), t) : -1;
        long mask = size >= 8 ? -1L : (1L << (size * 8)) - 1;
        java.util.function.LongBinaryOperator f = atomicOp(opn, t, size);
        Ops.Atom atom = new Ops.Atom(space == Mem.GENERIC ? Mem.GENERIC : a.space, size, d, a.reg, a.off, b, c,
                d >= 0 ? Math.min(mask, dm(d)) & mask : mask, f, opn.equals("cas"));
        return t.equals("f32") && opn.equals("add") ? atom.withGlobalOp(GLOBAL_ADD_F32) : atom;
    }

    /** atom.add.f32 on global memory flushes subnormal inputs and results to sign-preserving zero (on shared it does not). */
    static final java.util.function.LongBinaryOperator GLOBAL_ADD_F32 =
            (o, b) -> Float.floatToRawIntBits(Fp.ftz(Fp.ftz(Fp.f(o)) + Fp.ftz(Fp.f(b)))) & 0xffffffffL;

    /** atom/red.global.add.v2/v4.f32: one atomic add per element (each element is atomic on its own). */
    private Insn vectorAtom(Ast.Insn in, String t, boolean red) {
        if (!t.equals("f32") || !in.has("add")) {
            throw new Unsupported("vector atomics other than add.f32");
        }
        int i = 0;
        List<Operand> ds = red ? null : op(in, i++).elements;
        Addr a = addr(op(in, i++), Mem.of(in.mods));
        List<Operand> bs = op(in, i).elements;
        if (bs == null || (ds != null && ds.size() != bs.size()) || a.param != null) {
            throw new IllegalStateException("vector atomic needs matching vector operands");
        }
        int space = Mem.of(in.mods);
        java.util.function.LongBinaryOperator f = atomicOp("add", t, 4);
        Insn[] parts = new Insn[bs.size()];
        for (int k = 0; k < parts.length; k++) {
            int d = ds == null ? -1 : dst(ds.get(k));
            parts[k] = new Ops.Atom(space == Mem.GENERIC ? Mem.GENERIC : a.space, 4, d, a.reg, a.off + 4L * k, src(bs.get(k), t), -1,
                    0xffffffffL, f, false).withGlobalOp(GLOBAL_ADD_F32);
        }
        return new Seq(parts);
    }

    private static java.util.function.LongBinaryOperator atomicOp(String op, String t, int size) {
        boolean signed = Types.isSigned(t);
        int bits = size * 8;
        switch (op) {
            case "exch": return (o, b) -> b;
            case "and": return (o, b) -> o & b;
            case "or": return (o, b) -> o | b;
            case "xor": return (o, b) -> o ^ b;
            case "inc": return (o, b) -> Long.compareUnsigned(zx(o, bits), zx(b, bits)) >= 0 ? 0 : o + 1;
            case "dec": return (o, b) -> zx(o, bits) == 0 || Long.compareUnsigned(zx(o, bits), zx(b, bits)) > 0 ? b : o - 1;
            case "cas": return (o, b) -> b;
            case "add":
                switch (t) {
                    case "f32": return (o, b) -> Float.floatToRawIntBits(Fp.f(o) + Fp.f(b)) & 0xffffffffL;
                    case "f64": return (o, b) -> Double.doubleToRawLongBits(Fp.d(o) + Fp.d(b));
                    case "f16": return (o, b) -> Fp.toHalf(Fp.half((int) o) + Fp.half((int) b), Fp.RN);
                    case "bf16": return (o, b) -> Fp.toBf16(Fp.bf16((int) o) + Fp.bf16((int) b), Fp.RN);
                    case "f16x2": return (o, b) -> (Fp.toHalf(Fp.half((int) o & 0xffff) + Fp.half((int) b & 0xffff), Fp.RN))
                            | ((long) Fp.toHalf(Fp.half((int) (o >>> 16) & 0xffff) + Fp.half((int) (b >>> 16) & 0xffff), Fp.RN) << 16);
                    case "bf16x2": return (o, b) -> (Fp.toBf16(Fp.bf16((int) o & 0xffff) + Fp.bf16((int) b & 0xffff), Fp.RN))
                            | ((long) Fp.toBf16(Fp.bf16((int) (o >>> 16) & 0xffff) + Fp.bf16((int) (b >>> 16) & 0xffff), Fp.RN) << 16);
                    default: return (o, b) -> o + b;
                }
            case "min":
                if (t.equals("f32")) {
                    return (o, b) -> Float.floatToRawIntBits(fmin(Fp.f(o), Fp.f(b))) & 0xffffffffL;
                }
                if (t.equals("f64")) {
                    return (o, b) -> Double.doubleToRawLongBits(dmin(Fp.d(o), Fp.d(b)));
                }
                return signed ? (o, b) -> sx(o, bits) <= sx(b, bits) ? o : b
                        : (o, b) -> Long.compareUnsigned(zx(o, bits), zx(b, bits)) <= 0 ? o : b;
            case "max":
                if (t.equals("f32")) {
                    return (o, b) -> Float.floatToRawIntBits(fmax(Fp.f(o), Fp.f(b))) & 0xffffffffL;
                }
                if (t.equals("f64")) {
                    return (o, b) -> Double.doubleToRawLongBits(dmax(Fp.d(o), Fp.d(b)));
                }
                return signed ? (o, b) -> sx(o, bits) >= sx(b, bits) ? o : b
                        : (o, b) -> Long.compareUnsigned(zx(o, bits), zx(b, bits)) >= 0 ? o : b;
            default:
                throw new Unsupported("atomic " + op);
        }
    }

    private Insn cp(Ast.Insn in) {
        // cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size}; commit/wait are no-ops since
        // the copy happens at once.
        if (in.mods.size() >= 1 && in.mods.get(0).equals("async")) {
            if (in.has("commit_group") || in.has("wait_group") || in.has("wait_all")) {
                return new Ops.Nop();
            }
            if (in.has("bulk") || in.has("mbarrier")) {
                throw new Unsupported("cp.async.bulk and mbarrier copies");
            }
            Addr d = addr(op(in, 0), Mem.SHARED);
            Addr s = addr(op(in, 1), Mem.GLOBAL);
            Operand n = op(in, 2);
            int bytes = (int) n.value;
            int srcSize = in.operands.size() > 3 && in.operands.get(3).kind != Kind.SINK
                    ? src(in.operands.get(3), "u32") : constant(bytes);
            return new AsyncCopy(d.reg, d.off, s.reg, s.off, bytes, srcSize);
        }
        throw new Unsupported("cp form " + in.form());
    }

    /** cp.async: copies cp-size bytes, zero-filling past src-size. */
    static final class AsyncCopy extends Insn {
        final int dReg, sReg, bytes, srcSize;
        final long dOff, sOff;

        AsyncCopy(int dReg, long dOff, int sReg, long sOff, int bytes, int srcSize) {
            this.dReg = dReg;
            this.dOff = dOff;
            this.sReg = sReg;
            this.sOff = sOff;
            this.bytes = bytes;
            this.srcSize = srcSize;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long d = (dReg < 0 ? 0 : r[dReg << 5 | l]) + dOff;
                long s = (sReg < 0 ? 0 : r[sReg << 5 | l]) + sOff;
                long valid = r[srcSize << 5 | l];
                int step = bytes >= 8 ? 8 : bytes;
                for (int i = 0; i < bytes; i += step) {
                    long v = i < valid ? w.load(Mem.GLOBAL, s + i, step, l) : 0;
                    if (i < valid && i + step > valid) {
                        v &= (1L << (8 * (valid - i))) - 1;
                    }
                    w.store(Mem.SHARED, d + i, step, v, l);
                }
            }
        }
    }

    /** Runs several instructions as one (same lanes). */
    static final class Seq extends Insn {
        final Insn[] parts;

        Seq(Insn... parts) {
            this.parts = parts;
        }

        @Override
        public void exec(Warp w, int mask) {
            for (Insn p : parts) {
                p.exec(w, mask);
            }
        }
    }

    // ------------------------------------------------------------------ calls

    private Insn call(Ast.Insn in) {
        List<Operand> ops = in.operands;
        int i = 0;
        List<Operand> rets = List.of();
        if (ops.get(0).kind == Kind.VEC) {
            rets = ops.get(0).elements;
            i = 1;
        }
        Operand target = ops.get(i++);
        List<Operand> args = i < ops.size() && ops.get(i).kind == Kind.VEC ? ops.get(i).elements : List.of();
        if (target.kind != Kind.SYM) {
            throw new Unsupported("indirect calls");
        }
        Ast.Func g = mod.func(target.name);
        if (g == null) {
            throw new IllegalStateException("call of unknown function " + target.name);
        }
        if (!g.defined) {
            return builtin(g, rets, args);
        }
        Ops.Call c = new Ops.Call();
        c.target = funcPc.get(g.name);
        List<Integer> from = new ArrayList<>(), to = new ArrayList<>();
        for (int k = 0; k < args.size() && k < g.params.size(); k++) {
            int[] caller = paramOf(args.get(k), in);
            int[] callee = paramRegsOf(g, g.params.get(k));
            for (int w = 0; w < (callee[1] + 7) / 8; w++) {
                from.add(caller[0] + w);
                to.add(callee[0] + w);
            }
        }
        c.argFrom = from.stream().mapToInt(Integer::intValue).toArray();
        c.argTo = to.stream().mapToInt(Integer::intValue).toArray();
        from.clear();
        to.clear();
        for (int k = 0; k < rets.size() && k < g.returns.size(); k++) {
            int[] caller = paramOf(rets.get(k), in);
            int[] callee = paramRegsOf(g, g.returns.get(k));
            for (int w = 0; w < (callee[1] + 7) / 8; w++) {
                from.add(callee[0] + w);
                to.add(caller[0] + w);
            }
        }
        c.retFrom = from.stream().mapToInt(Integer::intValue).toArray();
        c.retTo = to.stream().mapToInt(Integer::intValue).toArray();
        return c;
    }

    private int[] paramOf(Operand o, Ast.Insn in) {
        int[] p = o.kind == Kind.SYM || o.kind == Kind.REG ? params.get(o.name) : null;
        if (p == null) {
            throw new Unsupported("call argument " + o + " that is not a .param variable");
        }
        return p;
    }

    /** The registers of another function's parameter, allocated once per function. */
    private final Map<String, int[]> calleeParams = new HashMap<>();

    private int[] paramRegsOf(Ast.Func g, Ast.Var v) {
        return calleeParams.computeIfAbsent(g.name + "\0" + v.name, key -> paramRegs(v));
    }

    private Insn builtin(Ast.Func g, List<Operand> rets, List<Operand> args) {
        switch (g.name) {
            case "vprintf": {
                int[] ret = rets.isEmpty() ? null : params.get(rets.get(0).name);
                int[] fmt = args.isEmpty() ? null : params.get(args.get(0).name);
                int[] argv = args.size() < 2 ? null : params.get(args.get(1).name);
                return new Printf(ret == null ? -1 : ret[0], fmt == null ? -1 : fmt[0], argv == null ? -1 : argv[0]);
            }
            case "__assertfail": case "__assert_fail":
                return new Ops.Trap("device-side assert");
            default:
                throw new Unsupported("call of external function " + g.name);
        }
    }

    /** vprintf: formats on the engine's print sink (the service log); returns the character count. */
    static final class Printf extends Insn {
        final int ret, fmt, argv;

        Printf(int ret, int fmt, int argv) {
            this.ret = ret;
            this.fmt = fmt;
            this.argv = argv;
        }

        @Override
        public void exec(Warp w, int mask) {
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                String s = fmt < 0 ? "" : DevicePrintf.format(w, l, w.r[fmt << 5 | l], argv < 0 ? 0 : w.r[argv << 5 | l]);
                DevicePrintf.emit(s);
                if (ret >= 0) {
                    w.r[ret << 5 | l] = s.length();
                }
            }
        }
    }

    // ------------------------------------------------------------------ barriers and warp ops

    private Insn bar(Ast.Insn in) {
        if (in.has("warp")) {
            return new Ops.Nop(); // lanes run in lock step already
        }
        if (in.has("cluster")) {
            return new Ops.Nop(); // a cluster of one CTA
        }
        boolean red = in.has("red");
        boolean arrive = in.has("arrive");
        int i = 0;
        int redDst = -1;
        int redOp = 0;
        if (red) {
            redDst = dst(op(in, i++));
            redOp = in.has("popc") ? 1 : in.has("and") ? 2 : 3;
        }
        int id = in.operands.size() > i ? src(op(in, i++), "u32") : constant(0);
        int count = -1;
        int pred = -1;
        boolean predNeg = false;
        int remaining = in.operands.size() - i;
        if (red) {
            if (remaining == 2) {
                count = src(op(in, i++), "u32");
            }
            Operand p = op(in, i);
            pred = reg(p.name);
            predNeg = p.negated;
        } else if (remaining >= 1) {
            count = src(op(in, i), "u32");
        }
        return new Ops.Bar(id, count, !arrive, redOp, redDst, pred, predNeg);
    }

    private Insn shfl(Ast.Insn in) {
        int mode = in.has("up") ? 0 : in.has("down") ? 1 : in.has("bfly") ? 2 : 3;
        Operand d = op(in, 0);
        int dr, pr = -1;
        if (d.kind == Kind.VEC) {
            dr = dst(d.elements.get(0));
            pr = dst(d.elements.get(1));
        } else {
            dr = dst(d);
        }
        return new Ops.Shfl(mode, dr, pr, src(op(in, 1), "b32"), src(op(in, 2), "b32"), src(op(in, 3), "b32"));
    }

    private Insn vote(Ast.Insn in) {
        int kind = in.has("all") ? Ops.WarpOp.ALL : in.has("any") ? Ops.WarpOp.ANY : in.has("uni") ? Ops.WarpOp.UNI : Ops.WarpOp.BALLOT;
        int d = dst(op(in, 0));
        Operand a = op(in, 1);
        int ar = a.kind == Kind.REG ? reg(a.name) : src(a, "pred");
        return new Ops.WarpOp(kind, d, -1, ar, a.negated, memberMask(in, 2), 0, false);
    }

    private Insn match(Ast.Insn in) {
        Operand d = op(in, 0);
        String t = type(in);
        int a = src(op(in, 1), t);
        if (in.has("any")) {
            return new Ops.WarpOp(Ops.WarpOp.MATCH_ANY, dst(d), -1, a, false, memberMask(in, 2), 0, false);
        }
        int dr, pr = -1;
        if (d.kind == Kind.VEC) {
            dr = dst(d.elements.get(0));
            pr = dst(d.elements.get(1));
        } else {
            dr = dst(d);
        }
        return new Ops.WarpOp(Ops.WarpOp.MATCH_ALL, dr, pr, a, false, memberMask(in, 2), 0, false);
    }

    private Insn redux(Ast.Insn in) {
        String t = type(in);
        if (t.equals("f32")) {
            throw new Unsupported("redux on f32");
        }
        int op = in.has("add") ? 0 : in.has("min") ? 1 : in.has("max") ? 2 : in.has("and") ? 3 : in.has("or") ? 4 : 5;
        return new Ops.WarpOp(Ops.WarpOp.REDUX, dst(op(in, 0)), -1, src(op(in, 1), t), false, memberMask(in, 2), op, Types.isSigned(t));
    }

    /** The membermask operand of a .sync warp instruction, or -1 (all executing lanes). */
    private int memberMask(Ast.Insn in, int index) {
        if (!in.has("sync") || in.operands.size() <= index) {
            return -1;
        }
        return src(in.operands.get(index), "b32");
    }

    // ------------------------------------------------------------------ compare and select

    private Insn setp(Ast.Insn in) {
        List<String> ts = types(in);
        boolean isSet = in.opcode.equals("set");
        String t = ts.get(ts.size() - 1);
        String dt = isSet ? ts.get(0) : "pred";
        String cmp = in.mods.get(0);
        int bool = in.has("and") ? 1 : in.has("or") ? 2 : in.has("xor") ? 3 : 0;
        Operand d = op(in, 0);
        int p, q = -1;
        if (d.kind == Kind.VEC) {
            p = dst(d.elements.get(0));
            q = dst(d.elements.get(1));
        } else {
            p = dst(d);
        }
        int a = src(op(in, 1), t);
        int b = src(op(in, 2), t);
        int c = -1;
        boolean cNeg = false;
        if (bool != 0) {
            Operand co = op(in, 3);
            if (co.kind == Kind.REG) {
                c = reg(co.name);
                cNeg = co.negated;
            } else {
                c = src(co, "pred");
            }
        }
        boolean ftz = in.has("ftz");
        if (t.equals("f16x2") || t.equals("bf16x2")) {
            // Two comparisons, one per half: setp writes the low half's to p and the high half's to q;
            // set writes 1.0 (f16x2/bf16x2 destinations) or 0xffff into each half.
            long one = dt.equals("f16x2") ? 0x3c00 : dt.equals("bf16x2") ? 0x3f80 : 0xffff;
            return new PairCompare(p, q, a, b, c, cNeg, bool, comparison(cmp, t.substring(0, t.length() - 2), ftz), isSet ? one : -1);
        }
        long trueValue = 1;
        if (isSet) {
            switch (dt) {
                case "f32": trueValue = Float.floatToRawIntBits(1f) & 0xffffffffL; break;
                case "f16": trueValue = 0x3c00; break;
                case "bf16": trueValue = 0x3f80; break;
                default: trueValue = dm(p);
            }
        }
        return new Ops.Setp(p, q, a, b, c, cNeg, bool, comparison(cmp, t, ftz), trueValue);
    }

    /** setp/set on .f16x2/.bf16x2: the halves compare separately. */
    static final class PairCompare extends Insn {
        final int p, q, a, b, c, bool;
        final boolean cNeg;
        final Ops.Cmp cmp;
        final long one; // set: the true value of a half; -1 for setp

        PairCompare(int p, int q, int a, int b, int c, boolean cNeg, int bool, Ops.Cmp cmp, long one) {
            this.p = p;
            this.q = q;
            this.a = a;
            this.b = b;
            this.c = c;
            this.cNeg = cNeg;
            this.bool = bool;
            this.cmp = cmp;
            this.one = one;
        }

        private boolean combine(boolean t, long[] r, int l) {
            if (bool == 0) {
                return t;
            }
            boolean cv = (r[c << 5 | l] != 0) != cNeg;
            return bool == 1 ? t & cv : bool == 2 ? t | cv : t ^ cv;
        }

        @Override
        public void exec(Warp w, int mask) {
            long[] r = w.r;
            for (int m = mask; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                long x = r[a << 5 | l], y = r[b << 5 | l];
                boolean lo = combine(cmp.f(x & 0xffff, y & 0xffff), r, l);
                boolean hi = combine(cmp.f((x >>> 16) & 0xffff, (y >>> 16) & 0xffff), r, l);
                if (one < 0) {
                    r[p << 5 | l] = lo ? 1 : 0;
                    if (q >= 0) {
                        r[q << 5 | l] = hi ? 1 : 0;
                    }
                } else {
                    r[p << 5 | l] = (hi ? one << 16 : 0) | (lo ? one : 0);
                }
            }
        }
    }

    static Ops.Cmp comparison(String cmp, String t, boolean ftz) {
        int bits = Types.size(t) * 8;
        if (t.equals("f32") || t.equals("f64") || t.equals("f16") || t.equals("bf16")) {
            java.util.function.LongToDoubleFunction v;
            switch (t) {
                case "f32": v = ftz ? x -> Fp.ftz(Fp.f(x)) : x -> Fp.f(x); break;
                case "f16": v = x -> Fp.half((int) x & 0xffff); break;
                case "bf16": v = x -> Fp.bf16((int) x & 0xffff); break;
                default: v = Fp::d;
            }
            switch (cmp) {
                case "eq": return (a, b) -> v.applyAsDouble(a) == v.applyAsDouble(b);
                case "ne": return (a, b) -> { double x = v.applyAsDouble(a), y = v.applyAsDouble(b); return x == x && y == y && x != y; };
                case "lt": return (a, b) -> v.applyAsDouble(a) < v.applyAsDouble(b);
                case "le": return (a, b) -> v.applyAsDouble(a) <= v.applyAsDouble(b);
                case "gt": return (a, b) -> v.applyAsDouble(a) > v.applyAsDouble(b);
                case "ge": return (a, b) -> v.applyAsDouble(a) >= v.applyAsDouble(b);
                case "equ": return (a, b) -> { double x = v.applyAsDouble(a), y = v.applyAsDouble(b); return x != x || y != y || x == y; };
                case "neu": return (a, b) -> v.applyAsDouble(a) != v.applyAsDouble(b);
                case "ltu": return (a, b) -> !(v.applyAsDouble(a) >= v.applyAsDouble(b));
                case "leu": return (a, b) -> !(v.applyAsDouble(a) > v.applyAsDouble(b));
                case "gtu": return (a, b) -> !(v.applyAsDouble(a) <= v.applyAsDouble(b));
                case "geu": return (a, b) -> !(v.applyAsDouble(a) < v.applyAsDouble(b));
                case "num": return (a, b) -> { double x = v.applyAsDouble(a), y = v.applyAsDouble(b); return x == x && y == y; };
                case "nan": return (a, b) -> { double x = v.applyAsDouble(a), y = v.applyAsDouble(b); return x != x || y != y; };
                default: throw new Unsupported("comparison " + cmp);
            }
        }
        boolean signed = Types.isSigned(t);
        switch (cmp) {
            case "eq": return (a, b) -> zx(a, bits) == zx(b, bits);
            case "ne": return (a, b) -> zx(a, bits) != zx(b, bits);
            case "lt": return signed ? (a, b) -> sx(a, bits) < sx(b, bits) : (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) < 0;
            case "le": return signed ? (a, b) -> sx(a, bits) <= sx(b, bits) : (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) <= 0;
            case "gt": return signed ? (a, b) -> sx(a, bits) > sx(b, bits) : (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) > 0;
            case "ge": return signed ? (a, b) -> sx(a, bits) >= sx(b, bits) : (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) >= 0;
            case "lo": return (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) < 0;
            case "ls": return (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) <= 0;
            case "hi": return (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) > 0;
            case "hs": return (a, b) -> Long.compareUnsigned(zx(a, bits), zx(b, bits)) >= 0;
            default: throw new Unsupported("comparison " + cmp);
        }
    }

    private Insn selp(Ast.Insn in) {
        String t = type(in);
        int d = dst(op(in, 0));
        Operand c = op(in, 3);
        int cr;
        boolean neg = false;
        if (c.kind == Kind.REG) {
            cr = reg(c.name);
            neg = c.negated;
        } else {
            cr = src(c, "pred");
        }
        return new Ops.Selp(d, src(op(in, 1), t), src(op(in, 2), t), cr, neg, dm(d));
    }

    private Insn slct(Ast.Insn in) {
        List<String> ts = types(in);
        String t = ts.get(0);
        String ct = ts.get(ts.size() - 1);
        int d = dst(op(in, 0));
        int a = src(op(in, 1), t), b = src(op(in, 2), t), c = src(op(in, 3), ct);
        // c >= 0 holds for -0.0, and with .ftz for a negative subnormal (flushed to -0.0)
        boolean ftz = in.has("ftz");
        L3 f = ct.equals("f32") ? (x, y, z) -> (ftz ? Fp.ftz(Fp.f(z)) : Fp.f(z)) >= 0 ? x : y : (x, y, z) -> (int) z >= 0 ? x : y;
        return new Ops.Op3(d, a, b, c, dm(d), f);
    }

    // ------------------------------------------------------------------ conversions

    private Insn cvt(Ast.Insn in) {
        List<String> ts = types(in);
        if (ts.size() < 2) {
            throw new IllegalStateException("cvt needs two types");
        }
        String dt = ts.get(0);
        String at = ts.get(1);
        int d = dst(op(in, 0));
        boolean sat = in.has("sat");
        boolean ftz = in.has("ftz");
        boolean relu = in.has("relu");
        int mode = Fp.mode(in.mods);
        boolean hasMode = false;
        for (String m : in.mods) {
            hasMode |= m.equals("rn") || m.equals("rz") || m.equals("rm") || m.equals("rp") || m.equals("rni")
                    || m.equals("rzi") || m.equals("rmi") || m.equals("rpi") || m.equals("rna");
        }
        long dmask = dm(d);
        if ((dt.equals("f16x2") || dt.equals("bf16x2")) && at.equals("f32")) {
            int a = src(op(in, 1), "f32"), b = src(op(in, 2), "f32");
            boolean bf = dt.equals("bf16x2");
            int md = mode;
            return new Ops.Op2(d, a, b, dmask, (x, y) -> {
                float fx = Fp.f(x), fy = Fp.f(y);
                if (relu) {
                    fx = fx != fx ? fx : Math.max(fx, 0f);
                    fy = fy != fy ? fy : Math.max(fy, 0f);
                }
                long hi = bf ? Fp.toBf16(fx, md) : Fp.toHalf(fx, md);
                long lo = bf ? Fp.toBf16(fy, md) : Fp.toHalf(fy, md);
                return (hi << 16) | lo;
            });
        }
        if (dt.equals("tf32") && at.equals("f32")) {
            // tf32: an f32 with the low 13 mantissa bits cleared after rounding (.rn ties to even, .rna away).
            boolean away = in.has("rna");
            int a = src(op(in, 1), "f32");
            return new Ops.Op1(d, a, dmask, x -> {
                int bits = (int) x;
                if ((bits & 0x7f800000) == 0x7f800000) {
                    return bits & 0xffffe000L | ((bits & 0x7fffff) != 0 ? 0x2000 : 0) & 0xffffffffL;
                }
                int lower = bits & 0x1fff;
                int up = away ? (lower >= 0x1000 ? 1 : 0) : (lower > 0x1000 || (lower == 0x1000 && (bits & 0x2000) != 0) ? 1 : 0);
                return ((bits & ~0x1fff) + (up << 13)) & 0xffffffffL;
            });
        }
        if (dt.startsWith("e4m3") || dt.startsWith("e5m2") || at.startsWith("e4m3") || at.startsWith("e5m2")
                || dt.equals("tf32") || at.contains("x2") || dt.contains("x2")) {
            throw new Unsupported("conversion " + at + " to " + dt);
        }
        int a = src(op(in, 1), at);
        boolean df = Types.isFloat(dt), af = Types.isFloat(at);
        int dbits = Types.size(dt) * 8, abits = Types.size(at) * 8;
        boolean aSigned = Types.isSigned(at), dSigned = Types.isSigned(dt);
        if (!df && !af) {
            if (!sat) {
                // Extend the source by its type, chop to the destination type, and extend that by
                // the destination's signedness (the register may be wider than the type).
                if (aSigned) {
                    return new Ops.Op1(d, a, dmask, dSigned ? x -> sx(sx(x, abits), dbits) : x -> zx(sx(x, abits), dbits));
                }
                return new Ops.Op1(d, a, dmask, dSigned ? x -> sx(zx(x, abits), dbits) : x -> zx(zx(x, abits), dbits));
            }
            long lo = dSigned ? (dbits == 64 ? Long.MIN_VALUE : -(1L << (dbits - 1))) : 0;
            long hi = dSigned ? (dbits == 64 ? Long.MAX_VALUE : (1L << (dbits - 1)) - 1) : (dbits == 64 ? -1L : (1L << dbits) - 1);
            if (aSigned) {
                return new Ops.Op1(d, a, dmask, x -> {
                    long v = sx(x, abits);
                    if (dSigned) {
                        return Math.max(lo, Math.min(hi, v));
                    }
                    return v < 0 ? 0 : (dbits == 64 ? v : Math.min(v, hi));
                });
            }
            return new Ops.Op1(d, a, dmask, x -> {
                long v = zx(x, abits);
                if (dSigned) {
                    return Long.compareUnsigned(v, hi) > 0 ? hi : v;
                }
                return dbits == 64 ? v : (Long.compareUnsigned(v, hi) > 0 ? hi : v);
            });
        }
        java.util.function.LongToDoubleFunction read = af ? reader(at, ftz) : null;
        if (af && !df) {
            int md = hasMode ? mode : Fp.RZ;
            // NaN gives 0, except from f64 or into 64 bits, where it gives 1 << (bits - 1)
            long nan = at.equals("f64") || dbits == 64 ? 1L << (dbits - 1) : 0;
            return new Ops.Op1(d, a, dmask, x -> {
                double v = read.applyAsDouble(x);
                return v != v ? nan : Fp.toInt(v, md, dSigned, dbits);
            });
        }
        if (!af) {
            int md = mode;
            Ops.L1 toD;
            if (dt.equals("f64")) {
                toD = aSigned ? x -> Double.doubleToRawLongBits(Fp.s64ToDouble(sx(x, abits), md))
                        : x -> Double.doubleToRawLongBits(Fp.u64ToDouble(zx(x, abits), md));
            } else if (dt.equals("f32")) {
                toD = aSigned ? x -> Float.floatToRawIntBits(Fp.s64ToFloat(sx(x, abits), md)) & 0xffffffffL
                        : x -> Float.floatToRawIntBits(Fp.u64ToFloat(zx(x, abits), md)) & 0xffffffffL;
            } else if (dt.equals("f16")) {
                toD = aSigned ? x -> Fp.toHalf(Fp.s64ToDouble(sx(x, abits), Fp.RN), md)
                        : x -> Fp.toHalf(Fp.u64ToDouble(zx(x, abits)), md);
            } else {
                toD = aSigned ? x -> Fp.bf16Of(Fp.oddDouble(sx(x, abits), false), md) : x -> Fp.bf16Of(Fp.oddDouble(zx(x, abits), true), md);
            }
            return new Ops.Op1(d, a, dmask, toD);
        }
        // float to float
        boolean integral = in.has("rni") || in.has("rzi") || in.has("rmi") || in.has("rpi");
        int md = mode;
        Ops.L1 f;
        switch (dt) {
            case "f64":
                f = x -> {
                    double v = read.applyAsDouble(x);
                    if (integral) {
                        v = Fp.integral(v, md);
                    }
                    if (sat) {
                        v = Fp.sat(v);
                    }
                    return Fp.bits(v);
                };
                break;
            case "f32":
                f = x -> {
                    double v = read.applyAsDouble(x);
                    float r = integral ? (float) Fp.integral(v, md) : Fp.toFloat(v, md);
                    if (ftz) {
                        r = Fp.ftz(r);
                    }
                    if (sat) {
                        r = Fp.sat(r);
                    }
                    return r != r ? Fp.CANONICAL_NAN_F32 : Float.floatToRawIntBits(r) & 0xffffffffL;
                };
                break;
            case "f16":
                f = x -> {
                    double v = read.applyAsDouble(x);
                    if (integral) {
                        v = Fp.integral(v, md);
                    }
                    if (relu && v < 0) {
                        v = 0;
                    }
                    if (sat) {
                        v = Fp.sat(v);
                    }
                    return Fp.toHalf(v, md);
                };
                break;
            case "bf16":
                f = x -> {
                    double v = read.applyAsDouble(x);
                    if (integral) {
                        v = Fp.integral(v, md);
                    }
                    if (relu && v < 0) {
                        v = 0;
                    }
                    return Fp.bf16Of(v, md);
                };
                break;
            default:
                throw new Unsupported("conversion to " + dt);
        }
        return new Ops.Op1(d, a, dmask, f);
    }

    static java.util.function.LongToDoubleFunction reader(String t, boolean ftz) {
        switch (t) {
            case "f32": return ftz ? x -> Fp.ftz(Fp.f(x)) : x -> Fp.f(x);
            case "f64": return Fp::d;
            case "f16": return x -> Fp.half((int) x & 0xffff);
            case "bf16": return x -> Fp.bf16((int) x & 0xffff);
            default: throw new Unsupported("float type " + t);
        }
    }

    // ------------------------------------------------------------------ arithmetic

    static float fmin(float a, float b) {
        if (a != a) {
            return b;
        }
        if (b != b) {
            return a;
        }
        if (a == 0 && b == 0) {
            return Float.floatToRawIntBits(a) < 0 ? a : b;
        }
        return a < b ? a : b;
    }

    static float fmax(float a, float b) {
        if (a != a) {
            return b;
        }
        if (b != b) {
            return a;
        }
        if (a == 0 && b == 0) {
            return Float.floatToRawIntBits(a) < 0 ? b : a;
        }
        return a > b ? a : b;
    }

    static double dmin(double a, double b) {
        if (a != a) {
            return b;
        }
        if (b != b) {
            return a;
        }
        return Math.min(a, b);
    }

    static double dmax(double a, double b) {
        if (a != a) {
            return b;
        }
        if (b != b) {
            return a;
        }
        return Math.max(a, b);
    }

    private Insn arith(Ast.Insn in) {
        String t = type(in);
        if (in.opcode.equals("testp")) {
            return testp(in, t);
        }
        if (in.opcode.equals("dp4a") || in.opcode.equals("dp2a")) {
            return dp(in);
        }
        if (in.has("cc") || in.opcode.equals("addc") || in.opcode.equals("subc") || in.opcode.equals("madc")) {
            return carry(in, t);
        }
        if (t.equals("f32")) {
            return Arith.f32(this, in);
        }
        if (t.equals("f64")) {
            return Arith.f64(this, in);
        }
        if (t.equals("f16") || t.equals("f16x2") || t.equals("bf16") || t.equals("bf16x2")) {
            return Arith.half(this, in, t);
        }
        return Arith.integer(this, in, t);
    }

    private Insn testp(Ast.Insn in, String t) {
        int p = dst(op(in, 0));
        int a = src(op(in, 1), t);
        java.util.function.LongToDoubleFunction v = reader(t, false);
        String kind = in.mods.get(0);
        Ops.L1 f;
        switch (kind) {
            case "finite": f = x -> Double.isFinite(v.applyAsDouble(x)) ? 1 : 0; break;
            case "infinite": f = x -> Double.isInfinite(v.applyAsDouble(x)) ? 1 : 0; break;
            case "number": f = x -> v.applyAsDouble(x) == v.applyAsDouble(x) ? 1 : 0; break;
            case "notanumber": f = x -> v.applyAsDouble(x) != v.applyAsDouble(x) ? 1 : 0; break;
            case "normal":
                f = t.equals("f32") ? x -> { float y = Math.abs(Fp.f(x)); return y >= Float.MIN_NORMAL && y <= Float.MAX_VALUE ? 1 : 0; }
                        : x -> { double y = Math.abs(Fp.d(x)); return y >= Double.MIN_NORMAL && y <= Double.MAX_VALUE ? 1 : 0; };
                break;
            case "subnormal":
                f = t.equals("f32") ? x -> { float y = Math.abs(Fp.f(x)); return y > 0 && y < Float.MIN_NORMAL ? 1 : 0; }
                        : x -> { double y = Math.abs(Fp.d(x)); return y > 0 && y < Double.MIN_NORMAL ? 1 : 0; };
                break;
            default: throw new Unsupported("testp." + kind);
        }
        return new Ops.Op1(p, a, 1, f);
    }

    private Insn dp(Ast.Insn in) {
        List<String> ts = types(in);
        boolean as = Types.isSigned(ts.get(0)), bs = Types.isSigned(ts.get(1));
        int d = dst(op(in, 0));
        int a = src(op(in, 1), "b32"), b = src(op(in, 2), "b32"), c = src(op(in, 3), "b32");
        if (in.opcode.equals("dp4a")) {
            return new Ops.Op3(d, a, b, c, dm(d), (x, y, z) -> {
                long acc = (int) z;
                for (int i = 0; i < 4; i++) {
                    long xa = (x >>> (8 * i)) & 0xff, yb = (y >>> (8 * i)) & 0xff;
                    if (as) {
                        xa = (byte) xa;
                    }
                    if (bs) {
                        yb = (byte) yb;
                    }
                    acc += xa * yb;
                }
                return acc;
            });
        }
        boolean hi = in.has("hi");
        return new Ops.Op3(d, a, b, c, dm(d), (x, y, z) -> {
            long acc = (int) z;
            for (int i = 0; i < 2; i++) {
                long xa = (x >>> (16 * i)) & 0xffff;
                if (as) {
                    xa = (short) xa;
                }
                long yb = (y >>> (8 * (i + (hi ? 2 : 0)))) & 0xff;
                if (bs) {
                    yb = (byte) yb;
                }
                acc += xa * yb;
            }
            return acc;
        });
    }

    private Insn carry(Ast.Insn in, String t) {
        boolean wide = Types.size(t) == 8;
        boolean cc = in.has("cc");
        int d = dst(op(in, 0));
        int a = src(op(in, 1), t), b = src(op(in, 2), t);
        switch (in.opcode) {
            case "add": return new Ops.Carry(d, a, b, -1, false, false, cc, wide, 0);
            case "sub": return new Ops.Carry(d, a, b, -1, true, false, cc, wide, 0);
            case "addc": return new Ops.Carry(d, a, b, -1, false, true, cc, wide, 0);
            case "subc": return new Ops.Carry(d, a, b, -1, true, true, cc, wide, 0);
            case "mad": case "madc": {
                int c = src(op(in, 3), t);
                boolean hi = in.has("hi");
                return new Ops.Carry(d, a, b, c, false, in.opcode.equals("madc"), cc, wide, hi ? 2 : 1);
            }
            default: throw new Unsupported(in.form());
        }
    }

    // exposed to Arith
    long dmOf(int reg) {
        return dm(reg);
    }

    int constantReg(long v) {
        return constant(v);
    }

    Operand operand(Ast.Insn in, int i) {
        return op(in, i);
    }
}
