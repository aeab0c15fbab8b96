package io.vgpu.ptx;

import io.vgpu.ptx.internal.Ast;
import io.vgpu.ptx.internal.Compiler;
import io.vgpu.ptx.internal.Isa;
import io.vgpu.ptx.internal.Parser;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A parsed PTX module. Kernels are compiled on first use and kept, so a module that is launched
 * many times is translated once.
 */
public final class PtxProgram {
    private final Ast.Module module;
    private final Map<String, PtxKernel> compiled = new ConcurrentHashMap<>();

    private PtxProgram(Ast.Module module) {
        this.module = module;
    }

    public static PtxProgram parse(String text) throws PtxException {
        return new PtxProgram(Parser.parse(text));
    }

    /** The {@code .target} architecture, e.g. 90 for {@code sm_90}; 0 if absent. */
    public int target() {
        return module.target;
    }

    /** The {@code .version}, e.g. 88 for PTX ISA 8.8. */
    public int version() {
        return module.version;
    }

    /** The names of the {@code .entry} functions defined here. */
    public List<String> entries() {
        List<String> out = new ArrayList<>();
        for (Ast.Func f : module.funcs) {
            if (f.entry && f.defined) {
                out.add(f.name);
            }
        }
        return out;
    }

    /**
     * Compiles an entry. {@code symbols} gives the device address of each {@code .global} and
     * {@code .const} variable of the module (the loader placed them); a lookup of a name it does
     * not know fails the compilation.
     */
    public PtxKernel kernel(String name, Map<String, Long> symbols) throws PtxException {
        PtxKernel k = compiled.get(name);
        if (k != null) {
            return k;
        }
        Ast.Func f = module.func(name);
        if (f == null || !f.entry || !f.defined) {
            throw new PtxException("no .entry " + name + " in this module");
        }
        k = new PtxKernel(Compiler.compile(module, f, symbols));
        compiled.putIfAbsent(name, k);
        return compiled.get(name);
    }

    /** Every instruction form (opcode with its modifiers, e.g. {@code ld.global.nc.v4.f32}) in the module, with counts. */
    public Map<String, Integer> forms() {
        Map<String, Integer> out = new TreeMap<>();
        for (Ast.Func f : module.funcs) {
            for (Ast.Insn in : f.body) {
                if (in.opcode != null) {
                    out.merge(in.form(), 1, Integer::sum);
                }
            }
        }
        return out;
    }

    /** The forms of {@link #forms()} the engine cannot execute, sorted. */
    public List<String> unsupportedForms() {
        List<String> out = new ArrayList<>();
        for (String form : forms().keySet()) {
            if (!Isa.supports(form)) {
                out.add(form);
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** Whether the engine executes an instruction form such as {@code add.rn.f32}. */
    public static boolean supports(String form) {
        return Isa.supports(form);
    }
}
