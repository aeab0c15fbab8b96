package io.vgpu.ptx.internal;

/** A compiled entry: its code, register file layout, and memory layout. */
public final class Kernel {
    public String name;
    public int[] paramOffsets = new int[0];
    public int paramSize;
    public int sharedStatic;
    public int sharedAlign = 16;
    public int localSize;
    public Insn[] code = new Insn[0];
    public int registers;
    /** Register index and value of each constant register (immediates live in registers). */
    public int[] constRegs = new int[0];
    public long[] constValues = new long[0];
    public int maxDepth = 1;
}
