package io.vgpu.ptx;

/**
 * Device memory as one worker of a launch sees it: the global and constant state spaces, addressed
 * with the device pointers the application holds. Values are little-endian, as on the GPU.
 *
 * <p>One instance is used by one worker thread at a time (so it may cache translations); several
 * instances of one launch run at once, so stores must become visible to the others and
 * {@link #compareAndSet} must be atomic against every instance.
 *
 * <p>An access to an address nobody mapped for this launch throws {@link KernelFault} of kind
 * {@link KernelFault.Kind#ILLEGAL_ADDRESS}.
 */
public interface GlobalMemory {
    /** Reads {@code size} (1, 2, 4 or 8) bytes, zero-extended. */
    long load(long address, int size);

    /** Writes the low {@code size} (1, 2, 4 or 8) bytes of {@code value}. */
    void store(long address, int size, long value);

    /**
     * Atomically replaces the {@code size} (4 or 8) bytes at a naturally aligned {@code address} with
     * {@code value} if they hold {@code expected}; true if it did.
     */
    boolean compareAndSet(long address, int size, long expected, long value);
}
