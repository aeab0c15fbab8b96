package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/**
 * {@code rt_step(int *buf, int n, int mul, int add)} of test/cuda/rt_streams.cu: buf[i] = buf[i] * mul + add,
 * wrapping on overflow as the GPU does.
 */
@Component(property = HostKernel.KERNEL_NAME + "=" + RtStep.NAME)
public class RtStep implements HostKernel {
    /** The entry name nvcc gives it. */
    public static final String NAME = "_Z7rt_stepPiiii";

    @Override
    public void execute(KernelLaunch launch) {
        int n = Arrays.covered(launch, launch.paramInt(1));
        int mul = launch.paramInt(2);
        int add = launch.paramInt(3);
        long buf = launch.paramPointer(0);
        int[] v = Arrays.ints(launch.memory(), buf, n);
        for (int i = 0; i < n; i++) {
            v[i] = v[i] * mul + add;
        }
        Arrays.write(launch.memory(), buf, v);
    }
}
