package io.vgpu.ptx.isa;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import io.vgpu.ptx.HeapMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import io.vgpu.ptx.Params;
import io.vgpu.ptx.PtxException;
import io.vgpu.ptx.PtxExecutor;
import io.vgpu.ptx.PtxKernel;
import io.vgpu.ptx.PtxProgram;
import java.util.Map;

/**
 * Runs hand-written PTX for the instruction tests. The common shape is a table: thread i of one block
 * reads its operands from row i of an input buffer (four 8-byte slots at {@code %rd30}) and writes
 * its results to row i of an output buffer (four 8-byte slots at {@code %rd31}), so one launch checks
 * a whole table of cases.
 */
final class Ptx {
    private Ptx() {}

    static final long BASE = 0x7f00_0000_0000L;
    /** What an output slot holds until the kernel writes it. */
    static final long UNWRITTEN = 0x5a5a_5a5a_5a5a_5a5aL;
    static final PtxExecutor EXEC = new PtxExecutor(2, 20_000);

    static final String HEADER = ".version 8.0\n.target sm_90\n.address_size 64\n";

    /** Registers every row kernel declares: %p, %h (16-bit), %r, %rd, %f, %fd. */
    static final String REGS = "  .reg .pred %p<16>;\n  .reg .b16 %h<16>;\n  .reg .b32 %r<32>;\n  .reg .b64 %rd<32>;\n"
            + "  .reg .f32 %f<16>;\n  .reg .f64 %fd<16>;\n";

    /** A row kernel: the body runs with %rd30 = this thread's input row and %rd31 = its output row. */
    /** An entry k with u64 parameters p0, p1, ... and the usual registers around the body. */
    static String kernel(int params, String decls, String body) {
        StringBuilder ps = new StringBuilder();
        for (int i = 0; i < params; i++) {
            ps.append(i == 0 ? "" : ", ").append(".param .u64 p").append(i);
        }
        return HEADER + decls + "\n.visible .entry k(" + ps + ")\n{\n" + REGS + body + "\n  ret;\n}\n";
    }

    static String rowKernel(String body) {
        return HEADER + ".visible .entry k(.param .u64 k_in, .param .u64 k_out)\n{\n" + REGS
                + "  ld.param.u64 %rd30, [k_in];\n  ld.param.u64 %rd31, [k_out];\n  mov.u32 %r31, %tid.x;\n"
                + "  mul.wide.u32 %rd29, %r31, 32;\n  add.s64 %rd30, %rd30, %rd29;\n  add.s64 %rd31, %rd31, %rd29;\n"
                + body + "\n  ret;\n}\n";
    }

    static PtxKernel compile(String ptx) {
        return compile(ptx, Map.of());
    }

    static PtxKernel compile(String ptx, Map<String, Long> symbols) {
        try {
            return PtxProgram.parse(ptx).kernel("k", symbols);
        } catch (PtxException e) {
            throw new AssertionError(e.getMessage() + "\n" + ptx, e);
        }
    }

    /** Runs a row kernel over the input rows (up to four words each); returns four output words per row. */
    static long[][] rows(String body, long[][] in) {
        PtxKernel k = compile(rowKernel(body));
        int n = in.length;
        HeapMemory m = new HeapMemory(BASE, 64 * n);
        long inBase = BASE, outBase = BASE + 32L * n;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < in[i].length && j < 4; j++) {
                m.store(inBase + 32L * i + 8L * j, 8, in[i][j]);
            }
            for (int j = 0; j < 4; j++) {
                m.store(outBase + 32L * i + 8L * j, 8, UNWRITTEN);
            }
        }
        EXEC.launch(k, LaunchDims.linear(1, n), new Params(k).u64(0, inBase).u64(1, outBase).build(), () -> m);
        long[][] out = new long[n][4];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 4; j++) {
                out[i][j] = m.load(outBase + 32L * i + 8L * j, 8);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ one instruction over a table

    /** Register class, load and store type of a PTX type. */
    private static String cls(String t) {
        switch (t) {
            case "f32": return "%f";
            case "f64": return "%fd";
            case "pred": return "%p";
            default:
        }
        int bits = bits(t);
        return bits == 16 ? "%h" : bits == 64 ? "%rd" : "%r";
    }

    static int bits(String t) {
        if (t.equals("pred")) {
            return 1;
        }
        if (t.endsWith("x2") || t.endsWith("32")) {
            return 32;
        }
        if (t.endsWith("64")) {
            return 64;
        }
        if (t.endsWith("16") || t.endsWith("8")) {
            return 16; // 8-bit values live in 16-bit registers
        }
        throw new IllegalArgumentException(t);
    }

    private static String ldType(String t) {
        return "b" + bits(t);
    }

    /**
     * The body that loads operands of the given types from slots 0, 1, 2, ..., runs
     * {@code insn d, a, b, ...} and stores d (predicates as 0/1) to output slot 0.
     */
    static String opBody(String insn, String dt, String... st) {
        StringBuilder b = new StringBuilder();
        StringBuilder ops = new StringBuilder();
        for (int i = 0; i < st.length; i++) {
            String r = cls(st[i]) + (i + 1);
            if (st[i].equals("pred")) {
                b.append("  ld.global.u32 %r").append(20 + i).append(", [%rd30+").append(8 * i).append("];\n");
                b.append("  setp.ne.u32 ").append(r).append(", %r").append(20 + i).append(", 0;\n");
            } else {
                b.append("  ld.global.").append(ldType(st[i])).append(' ').append(r).append(", [%rd30+").append(8 * i).append("];\n");
            }
            ops.append(", ").append(r);
        }
        String d = cls(dt) + "10";
        if (insn.contains("$d")) {
            // A template: $d is the destination, $1, $2, ... the operands.
            String text = insn.replace("$d", d);
            for (int i = 0; i < st.length; i++) {
                text = text.replace("$" + (i + 1), cls(st[i]) + (i + 1));
            }
            b.append("  ").append(text).append(";\n");
        } else {
            b.append("  ").append(insn).append(' ').append(d).append(ops).append(";\n");
        }
        if (dt.equals("pred")) {
            b.append("  selp.u32 %r19, 1, 0, ").append(d).append(";\n  st.global.u32 [%rd31], %r19;\n");
        } else {
            b.append("  st.global.").append(ldType(dt)).append(" [%rd31], ").append(d).append(";\n");
        }
        return b.toString();
    }

    /**
     * Checks {@code insn d, a, b, ...} on a table whose rows are the operands followed by the expected
     * result (as bits of the destination type).
     */
    static void check(String insn, String dt, String[] st, long[]... cases) {
        long[][] in = new long[cases.length][];
        for (int i = 0; i < cases.length; i++) {
            if (cases[i].length != st.length + 1) {
                throw new IllegalArgumentException("case " + i + " of " + insn + " needs " + (st.length + 1) + " values");
            }
            in[i] = java.util.Arrays.copyOf(cases[i], st.length);
        }
        long[][] out = rows(opBody(insn, dt, st), in);
        long mask = bits(dt) == 64 ? -1L : (1L << bits(dt)) - 1;
        StringBuilder errors = new StringBuilder();
        for (int i = 0; i < cases.length; i++) {
            long want = cases[i][st.length] & mask;
            long got = out[i][0] & mask;
            if (want != got) {
                errors.append(String.format("%n  %s %s: expected 0x%x, got 0x%x", insn, operands(in[i], st), want, got));
            }
        }
        if (errors.length() > 0) {
            fail("wrong results:" + errors);
        }
    }

    private static String operands(long[] v, String[] st) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < v.length; i++) {
            b.append(i == 0 ? "" : ", ").append(String.format("0x%x", v[i] & (bits(st[i]) == 64 ? -1L : (1L << bits(st[i])) - 1)));
        }
        return b.toString();
    }

    static String[] types(String... t) {
        return t;
    }

    static long[] row(long... v) {
        return v;
    }

    /** f32 bits. */
    static long f(float v) {
        return Float.floatToRawIntBits(v) & 0xffffffffL;
    }

    /** f64 bits. */
    static long d(double v) {
        return Double.doubleToRawLongBits(v);
    }

    /** A kernel whose whole text is given; runs it on a fresh memory and returns the fault it raised. */
    static KernelFault fault(PtxExecutor exec, String ptx, LaunchDims dims, HeapMemory m, long... params) {
        return fault(exec, compile(ptx), dims, m, params);
    }

    static KernelFault fault(PtxExecutor exec, PtxKernel k, LaunchDims dims, HeapMemory m, long... params) {
        Params p = new Params(k);
        for (int i = 0; i < params.length; i++) {
            p.u64(i, params[i]);
        }
        try {
            exec.launch(k, dims, p.build(), () -> m);
        } catch (KernelFault f) {
            return f;
        }
        throw new AssertionError("the launch did not fault");
    }

    /** Runs a whole kernel named k whose parameters are all u64. */
    static void launch(String ptx, LaunchDims dims, HeapMemory m, long... params) {
        launch(EXEC, ptx, dims, m, params);
    }

    static void launch(PtxExecutor exec, String ptx, LaunchDims dims, HeapMemory m, long... params) {
        launch(exec, compile(ptx), dims, m, params);
    }

    static void launch(PtxExecutor exec, PtxKernel k, LaunchDims dims, HeapMemory m, long... params) {
        Params p = new Params(k);
        for (int i = 0; i < params.length; i++) {
            p.u64(i, params[i]);
        }
        exec.launch(k, dims, p.build(), () -> m);
    }

    static void assertHex(String what, long want, long got) {
        if (want != got) {
            assertEquals(what, String.format("0x%x", want), String.format("0x%x", got));
        }
    }
}
