package io.vgpu.ptx.internal;

import io.vgpu.ptx.PtxException;
import java.util.Map;

public final class Compiler {
    private Compiler() {}

    public static Kernel compile(Ast.Module m, Ast.Func f, Map<String, Long> symbols) throws PtxException {
        throw new PtxException("not yet");
    }
}
