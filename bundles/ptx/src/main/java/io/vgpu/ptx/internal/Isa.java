package io.vgpu.ptx.internal;

import java.util.List;
import java.util.Set;

/**
 * Which instruction forms the engine executes: the opcode must be one it compiles and every
 * modifier one it understands (or may ignore, such as cache hints) for that opcode.
 */
public final class Isa {
    private Isa() {}

    private static final Set<String> TYPES = Set.of("b8", "b16", "b32", "b64", "u8", "u16", "u32", "u64", "s8", "s16", "s32",
            "s64", "u16x2", "s16x2", "f16", "f16x2", "bf16", "bf16x2", "f32", "f64", "pred");

    /** Modifiers that never change what executes here (caching, scope, ordering, alignment hints). */
    private static final Set<String> IGNORED = Set.of("uni", "sync", "aligned", "volatile", "relaxed", "acquire", "release",
            "acq_rel", "sc", "weak", "cta", "gpu", "sys", "cluster", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "nc",
            "L1::evict_normal", "L1::evict_unchanged", "L1::evict_first", "L1::evict_last", "L1::no_allocate",
            "L2::evict_normal", "L2::evict_first", "L2::evict_last", "L2::cache_hint", "L2::64B", "L2::128B", "L2::256B",
            "mmio", "gl", "approx", "full", "ftz", "noftz", "unified", "to", "global", "shared", "shared::cta", "shared::cluster",
            "local", "const", "param", "param::entry", "param::func", "v2", "v4", "cc", "sat");

    private static final Set<String> OPCODES = Set.of("mov", "add", "sub", "mul", "mad", "fma", "div", "rem", "min", "max",
            "abs", "neg", "and", "or", "xor", "not", "cnot", "shl", "shr", "rcp", "sqrt", "rsqrt", "sin", "cos", "lg2", "ex2",
            "tanh", "copysign", "popc", "clz", "brev", "bfind", "bfe", "bfi", "prmt", "lop3", "shf", "mul24", "mad24", "sad",
            "testp", "dp4a", "dp2a", "addc", "subc", "madc", "bmsk", "szext", "setp", "set", "selp", "slct", "cvt", "cvta",
            "isspacep", "ld", "ldu", "st", "atom", "red", "bra", "call", "ret", "exit", "trap", "brkpt", "membar", "fence",
            "prefetch", "prefetchu", "nanosleep", "pmevent", "griddepcontrol", "setmaxnreg", "discard", "applypriority",
            "bar", "barrier", "shfl", "vote", "match", "redux", "activemask", "elect", "createpolicy", "cp");

    /** Opcode-specific modifiers. */
    private static final Set<String> MODS = Set.of("rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi", "lo", "hi",
            "wide", "relu", "NaN", "eq", "ne", "lt", "le", "gt", "ge", "equ", "neu", "ltu", "leu", "gtu", "geu",
            "num", "nan", "ls", "hs", "finite", "infinite", "number", "notanumber", "normal", "subnormal", "inc",
            "dec", "exch", "cas", "l", "r", "wrap", "clamp", "up", "down", "bfly", "idx", "all", "any", "ballot",
            "popc", "arrive", "red", "warp", "async", "commit_group", "wait_group", "wait_all", "shiftamt", "f4e",
            "b4e", "rc8", "ecl", "ecr", "rc16", "fractional", "L2::evict_unchanged", "wait", "sem", "proxy", "ptr",
            "enable", "disable", "launch_dependents", "add", "min", "max", "and", "or", "xor", "noftz");

    /** The mma.sync shapes and input types MatrixOps implements. */
    private static final Set<String> MMA = Set.of("m16n8k8.f16", "m16n8k16.f16", "m16n8k8.bf16", "m16n8k16.bf16",
            "m16n8k16.s8", "m16n8k32.s8", "m16n8k16.u8", "m16n8k32.u8", "m16n8k4.tf32", "m16n8k8.tf32", "m8n8k4.f64");

    public static boolean supports(String form) {
        String[] parts = form.split("\\.");
        String op = parts[0];
        if (op.equals("movmatrix")) {
            return form.equals("movmatrix.sync.aligned.m8n8.trans.b16");
        }
        if (form.equals("cvt.rn.tf32.f32") || form.equals("cvt.rna.tf32.f32")) {
            return true;
        }
        if (op.equals("ldmatrix")) {
            return form.contains(".m8n8.") && form.endsWith(".b16") && form.contains(".sync") && form.contains(".aligned");
        }
        if (op.equals("mma")) {
            String shape = null;
            List<String> types = new java.util.ArrayList<>();
            for (int i = 1; i < parts.length; i++) {
                String m = parts[i];
                if (m.startsWith("m") && m.contains("n") && m.contains("k")) {
                    shape = m;
                } else if (TYPES.contains(m) || m.equals("tf32")) {
                    types.add(m);
                } else if (!m.equals("sync") && !m.equals("aligned") && !m.equals("row") && !m.equals("col")) {
                    return false;
                }
            }
            return shape != null && types.size() == 4 && form.contains(".row.col") && MMA.contains(shape + "." + types.get(1))
                    && (types.get(1).startsWith("s8") || types.get(1).startsWith("u8") || types.get(1).equals(types.get(2)));
        }
        if (!OPCODES.contains(op)) {
            return false;
        }
        for (int i = 1; i < parts.length; i++) {
            String m = parts[i];
            if (TYPES.contains(m) || IGNORED.contains(m) || MODS.contains(m)) {
                continue;
            }
            if ((op.equals("and") || op.equals("or") || op.equals("xor")) && m.equals("b1")) {
                continue;
            }
            return false;
        }
        if (op.equals("cp") && (form.contains("bulk") || form.contains("mbarrier") || form.contains("tensor"))) {
            return false;
        }
        if ((op.equals("ld") || op.equals("st")) && form.contains("b128")) {
            return false;
        }
        if (op.equals("redux") && form.endsWith("f32")) {
            return false;
        }
        if (op.equals("cvt") && (form.contains("e4m3") || form.contains("e5m2") || form.contains("tf32"))) {
            return false;
        }
        return true;
    }
}
