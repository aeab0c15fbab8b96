package io.vgpu.samples;

import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/**
 * {@code rt_launch_dims(unsigned *out)} of test/cuda/rt_device_props.cu: out[0..5] = gridDim.xyz,
 * blockDim.xyz, and every thread adds 1 to out[6].
 */
@Component(property = HostKernel.KERNEL_NAME + "=" + RtLaunchDims.NAME)
public class RtLaunchDims implements HostKernel {
    /** The entry name nvcc gives it. */
    public static final String NAME = "_Z14rt_launch_dimsPj";

    @Override
    public void execute(KernelLaunch launch) {
        LaunchConfig c = launch.config();
        long out = launch.paramPointer(0);
        int[] v = Arrays.ints(launch.memory(), out, 7);
        v[0] = c.gridX;
        v[1] = c.gridY;
        v[2] = c.gridZ;
        v[3] = c.blockX;
        v[4] = c.blockY;
        v[5] = c.blockZ;
        v[6] += (int) c.threads();
        Arrays.write(launch.memory(), out, v);
    }
}
