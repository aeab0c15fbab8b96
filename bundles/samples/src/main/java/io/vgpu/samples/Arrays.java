package io.vgpu.samples;

import io.vgpu.api.kernel.DeviceMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Bulk access to device memory: host kernels read whole arrays at once, not element by element. */
final class Arrays {
    private Arrays() {}

    static ByteBuffer read(DeviceMemory memory, long address, int bytes) {
        byte[] b = new byte[bytes];
        memory.read(address, b, 0, bytes);
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    }

    static float[] floats(DeviceMemory memory, long address, int count) {
        float[] out = new float[count];
        read(memory, address, 4 * count).asFloatBuffer().get(out);
        return out;
    }

    static int[] ints(DeviceMemory memory, long address, int count) {
        int[] out = new int[count];
        read(memory, address, 4 * count).asIntBuffer().get(out);
        return out;
    }

    static void write(DeviceMemory memory, long address, double[] values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(values);
        memory.write(address, b.array(), 0, b.capacity());
    }

    static void write(DeviceMemory memory, long address, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        memory.write(address, b.array(), 0, b.capacity());
    }

    static void write(DeviceMemory memory, long address, int[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        memory.write(address, b.array(), 0, b.capacity());
    }

    /** How many of {@code n} elements the grid covers: one thread per element. */
    static int covered(io.vgpu.api.kernel.KernelLaunch launch, long n) {
        return (int) Math.max(0, Math.min(n, launch.config().threads()));
    }
}
