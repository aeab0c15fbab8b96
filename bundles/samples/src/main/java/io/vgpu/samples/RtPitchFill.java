package io.vgpu.samples;

import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/**
 * {@code rt_pitch_fill(unsigned *base, size_t pitch, int width, int height, unsigned seed)} of
 * test/cuda/rt_memcpy.cu: element (x, y) of a pitched array becomes seed ^ (y << 16 | x), for the
 * part of the array the 2D grid covers. Row padding is left alone.
 */
@Component(property = HostKernel.KERNEL_NAME + "=" + RtPitchFill.NAME)
public class RtPitchFill implements HostKernel {
    /** The entry name nvcc gives it. */
    public static final String NAME = "_Z13rt_pitch_fillPjmiij";

    @Override
    public void execute(KernelLaunch launch) {
        LaunchConfig c = launch.config();
        long base = launch.paramPointer(0);
        long pitch = launch.paramLong(1);
        int width = (int) Math.max(0, Math.min(launch.paramInt(2), (long) c.gridX * c.blockX));
        int height = (int) Math.max(0, Math.min(launch.paramInt(3), (long) c.gridY * c.blockY));
        int seed = launch.paramInt(4);
        int[] row = new int[width];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                row[x] = seed ^ (y << 16 | x);
            }
            Arrays.write(launch.memory(), base + y * pitch, row);
        }
    }
}
