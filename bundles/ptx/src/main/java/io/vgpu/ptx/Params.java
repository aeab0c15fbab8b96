package io.vgpu.ptx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Builds a kernel parameter buffer laid out as the kernel declares ({@link PtxKernel#paramOffset}). */
public final class Params {
    private final PtxKernel kernel;
    private final ByteBuffer buffer;

    public Params(PtxKernel kernel) {
        this.kernel = kernel;
        this.buffer = ByteBuffer.allocate(Math.max(kernel.paramSize(), 1)).order(ByteOrder.LITTLE_ENDIAN);
    }

    public Params u64(int index, long value) {
        buffer.putLong(kernel.paramOffset(index), value);
        return this;
    }

    public Params u32(int index, int value) {
        buffer.putInt(kernel.paramOffset(index), value);
        return this;
    }

    public Params u16(int index, short value) {
        buffer.putShort(kernel.paramOffset(index), value);
        return this;
    }

    public Params u8(int index, byte value) {
        buffer.put(kernel.paramOffset(index), value);
        return this;
    }

    public Params f32(int index, float value) {
        buffer.putFloat(kernel.paramOffset(index), value);
        return this;
    }

    public Params f64(int index, double value) {
        buffer.putDouble(kernel.paramOffset(index), value);
        return this;
    }

    public Params bytes(int index, byte[] value) {
        ByteBuffer b = buffer.duplicate();
        b.position(kernel.paramOffset(index));
        b.put(value);
        return this;
    }

    public byte[] build() {
        return buffer.array().clone();
    }
}
