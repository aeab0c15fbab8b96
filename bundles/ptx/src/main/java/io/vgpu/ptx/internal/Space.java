package io.vgpu.ptx.internal;

import io.vgpu.ptx.KernelFault;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The generic address space: shared, local and kernel-parameter memory each have a window of
 * generic addresses (below the device's global window), so {@code cvta} and generic loads work
 * as on the GPU; everything else is global.
 */
public final class Space {
    private Space() {}

    public static final long SHARED_BASE = 0x0000_1000_0000_0000L;
    public static final long LOCAL_BASE = 0x0000_1001_0000_0000L;
    public static final long PARAM_BASE = 0x0000_1002_0000_0000L;
    public static final long WINDOW = 1L << 32;

    static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Reads size bytes (zero-extended) from an array; faults outside [0, limit). */
    static long get(byte[] a, long off, int size, long limit, String space) {
        if (off < 0 || off > limit - size) {
            throw fault(space, off, size, limit);
        }
        int i = (int) off;
        switch (size) {
            case 1: return a[i] & 0xffL;
            case 2: return ((short) SHORT.get(a, i)) & 0xffffL;
            case 4: return ((int) INT.get(a, i)) & 0xffffffffL;
            default: return (long) LONG.get(a, i);
        }
    }

    static void put(byte[] a, long off, int size, long v, long limit, String space) {
        if (off < 0 || off > limit - size) {
            throw fault(space, off, size, limit);
        }
        int i = (int) off;
        switch (size) {
            case 1: a[i] = (byte) v; break;
            case 2: SHORT.set(a, i, (short) v); break;
            case 4: INT.set(a, i, (int) v); break;
            default: LONG.set(a, i, v);
        }
    }

    static KernelFault fault(String space, long off, int size, long limit) {
        return new KernelFault(KernelFault.Kind.ILLEGAL_ADDRESS,
                String.format("%d-byte %s access at offset 0x%x, outside its %d bytes", size, space, off, limit));
    }
}
