package io.vgpu.api.dto;

/**
 * A kernel entry point of a module image, with the parameter layout needed to pack
 * {@code cuLaunchKernel(void **params)} into a flat buffer. Taken from the cubin's
 * {@code .nv.info} or the PTX {@code .entry} list.
 */
public class KernelInfo {
    /** The entry name as the image spells it (mangled for C++). */
    public String name;
    /** Byte offset of each parameter in the packed parameter buffer. */
    public int[] paramOffsets = new int[0];
    /** Byte size of each parameter. */
    public int[] paramSizes = new int[0];
    /** Size of the packed parameter buffer. */
    public int paramBufferSize;
    /** Registers per thread, 0 if the image does not say. */
    public int numRegs;
    /** Static shared memory per block in bytes. */
    public int sharedSizeBytes;
    /** Local memory per thread in bytes. */
    public int localSizeBytes;
    /** Constant memory used by the kernel in bytes. */
    public int constSizeBytes;
    /** The maximum block size the kernel can be launched with (1024 unless the image limits it). */
    public int maxThreadsPerBlock = 1024;

    public int paramCount() {
        return paramSizes.length;
    }
}
