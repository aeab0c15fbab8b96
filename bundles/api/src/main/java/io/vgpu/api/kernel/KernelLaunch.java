package io.vgpu.api.kernel;

import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** One launch handed to a {@link HostKernel}: its configuration, parameters and device memory. */
public final class KernelLaunch {
    private final KernelInfo kernel;
    private final LaunchConfig config;
    private final ByteBuffer params;
    private final DeviceMemory memory;

    public KernelLaunch(KernelInfo kernel, LaunchConfig config, ByteBuffer params, DeviceMemory memory) {
        this.kernel = kernel;
        this.config = config;
        this.params = params.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        this.memory = memory;
    }

    public KernelInfo kernel() {
        return kernel;
    }

    public LaunchConfig config() {
        return config;
    }

    public DeviceMemory memory() {
        return memory;
    }

    /** The packed parameter buffer, little-endian, positioned at 0. */
    public ByteBuffer params() {
        return params.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    private int offset(int index) {
        if (index < 0 || index >= kernel.paramOffsets.length) {
            throw new IndexOutOfBoundsException("kernel " + kernel.name + " has " + kernel.paramOffsets.length
                    + " parameters, not " + (index + 1));
        }
        return params.position() + kernel.paramOffsets[index];
    }

    public long paramLong(int index) {
        return params.getLong(offset(index));
    }

    /** A pointer parameter: a device address. */
    public long paramPointer(int index) {
        return paramLong(index);
    }

    public int paramInt(int index) {
        return params.getInt(offset(index));
    }

    public float paramFloat(int index) {
        return params.getFloat(offset(index));
    }

    public double paramDouble(int index) {
        return params.getDouble(offset(index));
    }

    /** The raw bytes of a parameter (for struct parameters). */
    public ByteBuffer paramBytes(int index) {
        ByteBuffer b = params.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int off = offset(index);
        b.position(off).limit(off + kernel.paramSizes[index]);
        return b.slice().order(ByteOrder.LITTLE_ENDIAN);
    }
}
