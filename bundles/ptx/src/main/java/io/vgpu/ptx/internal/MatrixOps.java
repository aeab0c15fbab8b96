package io.vgpu.ptx.internal;

/** Warp-level matrix instructions: ldmatrix, mma.sync, movmatrix. */
final class MatrixOps {
    private MatrixOps() {}

    static Insn ldmatrix(Compiler c, Ast.Insn in) {
        throw new Compiler.Unsupported("ldmatrix");
    }

    static Insn mma(Compiler c, Ast.Insn in) {
        throw new Compiler.Unsupported("mma");
    }

    static Insn movmatrix(Compiler c, Ast.Insn in) {
        throw new Compiler.Unsupported("movmatrix");
    }
}
