package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/** {@code vgpu_saxpy(unsigned n, float a, const float *x, float *y)}: y[i] = a * x[i] + y[i]. */
@Component(property = HostKernel.KERNEL_NAME + "=vgpu_saxpy")
public class Saxpy implements HostKernel {
    @Override
    public void execute(KernelLaunch launch) {
        int n = Arrays.covered(launch, Integer.toUnsignedLong(launch.paramInt(0)));
        float a = launch.paramFloat(1);
        float[] x = Arrays.floats(launch.memory(), launch.paramPointer(2), n);
        float[] y = Arrays.floats(launch.memory(), launch.paramPointer(3), n);
        for (int i = 0; i < n; i++) {
            y[i] = Math.fma(a, x[i], y[i]);
        }
        Arrays.write(launch.memory(), launch.paramPointer(3), y);
    }
}
