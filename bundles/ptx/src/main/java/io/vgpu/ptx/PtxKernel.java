package io.vgpu.ptx;

import io.vgpu.ptx.internal.Kernel;

/** One compiled {@code .entry}: what a launch needs to know about it. */
public final class PtxKernel {
    final Kernel kernel;

    PtxKernel(Kernel kernel) {
        this.kernel = kernel;
    }

    public String name() {
        return kernel.name;
    }

    public int paramCount() {
        return kernel.paramOffsets.length;
    }

    /** Byte offset of a parameter in the packed parameter buffer. */
    public int paramOffset(int index) {
        return kernel.paramOffsets[index];
    }

    public int paramSize() {
        return kernel.paramSize;
    }

    /** Static shared memory per block. */
    public int sharedBytes() {
        return kernel.sharedStatic;
    }

    /** Local memory per thread (the local depot and call frames). */
    public int localBytes() {
        return kernel.localSize;
    }

    /** Instructions in the compiled code (the entry and the functions it calls). */
    public int codeSize() {
        return kernel.code.length;
    }
}
