package io.vgpu.ptx.internal;

import java.util.ArrayList;
import java.util.List;

/** The parsed form of a PTX module: variables, functions, and their statements as written. */
public final class Ast {
    private Ast() {}

    /** A state-space variable: .global/.const/.shared/.local/.param, or a register. */
    public static final class Var {
        public String space;      // "global", "const", "shared", "local", "param", "reg"
        public String type;       // "b32", "f32", "pred", ... (without the dot)
        public int align;         // bytes; 0 = natural
        public int vector = 1;    // .v2/.v4
        public long count = -1;   // array length; -1 scalar; 0 unsized (extern [])
        public String name;
        public boolean extern;
        public int line;

        public int elementSize() {
            return Types.size(type) * vector;
        }

        public long byteSize() {
            long n = count < 0 ? 1 : count;
            return n * elementSize();
        }

        public int alignment() {
            return align > 0 ? align : elementSize();
        }
    }

    public enum Kind { REG, IMM, FIMM, DIMM, SYM, ADDR, VEC, SINK }

    /** An operand as written. */
    public static final class Operand {
        public Kind kind;
        public String name;        // REG/SYM: the (scoped) name; ADDR: base register or symbol, or null
        public boolean baseIsReg;  // ADDR
        public long value;         // IMM: the integer; FIMM/DIMM: the raw bits; ADDR: the offset
        public boolean negated;    // !%p
        public List<Operand> elements; // VEC

        static Operand reg(String n) {
            Operand o = new Operand();
            o.kind = Kind.REG;
            o.name = n;
            return o;
        }

        @Override
        public String toString() {
            switch (kind) {
                case REG: return (negated ? "!" : "") + name;
                case SYM: return name;
                case IMM: return Long.toString(value);
                case FIMM: return String.format("0f%08X", value);
                case DIMM: return String.format("0d%016X", value);
                case ADDR: return "[" + (name == null ? "" : name) + (value != 0 ? "+" + value : "") + "]";
                case VEC: return elements.toString();
                default: return "_";
            }
        }
    }

    /** An instruction with its guard, dotted opcode and operands. */
    public static final class Insn {
        public int line;
        public String guard;       // predicate register or null
        public boolean guardNegated;
        public String opcode;      // first part: "add"
        public List<String> mods = new ArrayList<>(); // the rest: ["rn", "f32"]
        public List<Operand> operands = new ArrayList<>();
        /** For call: the block's .param declarations visible here (scoped names). */
        public String label;       // a label statement when opcode == null

        public String form() {
            StringBuilder b = new StringBuilder(opcode);
            for (String m : mods) {
                b.append('.').append(m);
            }
            return b.toString();
        }

        public boolean has(String mod) {
            return mods.contains(mod);
        }

        @Override
        public String toString() {
            return (guard != null ? "@" + (guardNegated ? "!" : "") + guard + " " : "") + form() + " " + operands;
        }
    }

    public static final class Func {
        public String name;
        public boolean entry;
        public boolean defined;
        public int line;
        public List<Var> params = new ArrayList<>();
        public List<Var> returns = new ArrayList<>();
        /** Registers, locals, shared and param variables declared in the body (scoped names). */
        public List<Var> locals = new ArrayList<>();
        /** Instructions and labels in order. */
        public List<Insn> body = new ArrayList<>();
        /** Call-site .param variables (declared in nested blocks). */
        public int maxntid;
    }

    public static final class Module {
        public int version;        // 10 * major + minor
        public int target;         // sm_XX
        public List<Var> vars = new ArrayList<>();
        public List<Func> funcs = new ArrayList<>();

        public Func func(String name) {
            Func declared = null;
            for (Func f : funcs) {
                if (f.name.equals(name)) {
                    if (f.defined) {
                        return f;
                    }
                    declared = f;
                }
            }
            return declared;
        }

        public Var var(String name) {
            for (Var v : vars) {
                if (v.name.equals(name)) {
                    return v;
                }
            }
            return null;
        }
    }
}
