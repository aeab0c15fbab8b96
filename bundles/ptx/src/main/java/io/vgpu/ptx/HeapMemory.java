package io.vgpu.ptx;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Global memory as one flat byte array at a device base address: for tests, benchmarks and tools
 * that run kernels without a backend. Thread-safe in the way {@link GlobalMemory} requires.
 */
public final class HeapMemory implements GlobalMemory {
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private final long base;
    private final byte[] bytes;

    public HeapMemory(long base, int size) {
        this.base = base;
        this.bytes = new byte[size];
    }

    public long base() {
        return base;
    }

    public int size() {
        return bytes.length;
    }

    private int index(long address, int size) {
        long off = address - base;
        if (off < 0 || off > bytes.length - size) {
            throw new KernelFault(KernelFault.Kind.ILLEGAL_ADDRESS,
                    String.format("%d-byte access at 0x%x is outside [0x%x, 0x%x)", size, address, base, base + bytes.length));
        }
        return (int) off;
    }

    @Override
    public long load(long address, int size) {
        int i = index(address, size);
        long v = 0;
        for (int k = size - 1; k >= 0; k--) {
            v = (v << 8) | (bytes[i + k] & 0xff);
        }
        return v;
    }

    @Override
    public void store(long address, int size, long value) {
        int i = index(address, size);
        for (int k = 0; k < size; k++) {
            bytes[i + k] = (byte) (value >>> (8 * k));
        }
    }

    @Override
    public boolean compareAndSet(long address, int size, long expected, long value) {
        int i = index(address, size);
        if ((address & (size - 1)) != 0) {
            throw new KernelFault(KernelFault.Kind.MISALIGNED_ADDRESS, String.format("atomic at 0x%x is misaligned", address));
        }
        if (size == 4) {
            return INT.compareAndSet(bytes, i, (int) expected, (int) value);
        }
        return LONG.compareAndSet(bytes, i, expected, value);
    }

    // Host-side helpers (not thread-safe against a running launch).

    public void putFloats(long address, float... values) {
        for (int k = 0; k < values.length; k++) {
            store(address + 4L * k, 4, Float.floatToRawIntBits(values[k]) & 0xffffffffL);
        }
    }

    public float getFloat(long address) {
        return Float.intBitsToFloat((int) load(address, 4));
    }

    public void putInts(long address, int... values) {
        for (int k = 0; k < values.length; k++) {
            store(address + 4L * k, 4, values[k] & 0xffffffffL);
        }
    }

    public int getInt(long address) {
        return (int) load(address, 4);
    }

    public void putDoubles(long address, double... values) {
        for (int k = 0; k < values.length; k++) {
            store(address + 8L * k, 8, Double.doubleToRawLongBits(values[k]));
        }
    }

    public double getDouble(long address) {
        return Double.longBitsToDouble(load(address, 8));
    }

    public long getLong(long address) {
        return load(address, 8);
    }
}
