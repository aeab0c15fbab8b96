package io.vgpu.api.kernel;

import org.osgi.annotation.versioning.ProviderType;

/** A device's memory as a host kernel sees it. Values are little-endian, as on the GPU. */
@ProviderType
public interface DeviceMemory {
    /** Thrown for an access outside every mapped range. */
    class AccessException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public AccessException(String message) {
            super(message);
        }
    }

    void read(long address, byte[] dst, int offset, int length);

    void write(long address, byte[] src, int offset, int length);

    byte getByte(long address);

    void putByte(long address, byte value);

    int getInt(long address);

    void putInt(long address, int value);

    long getLong(long address);

    void putLong(long address, long value);

    default float getFloat(long address) {
        return Float.intBitsToFloat(getInt(address));
    }

    default void putFloat(long address, float value) {
        putInt(address, Float.floatToRawIntBits(value));
    }

    default double getDouble(long address) {
        return Double.longBitsToDouble(getLong(address));
    }

    default void putDouble(long address, double value) {
        putLong(address, Double.doubleToRawLongBits(value));
    }
}
