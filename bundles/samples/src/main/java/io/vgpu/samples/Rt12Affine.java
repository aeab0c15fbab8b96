package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/**
 * {@code rt12_affine(float *y, const float *x, float a, float b, int n)} of
 * test/cuda/cudart12_kernel.cu (launched through cudart 12 by test_cudart12): y[i] = a * x[i] + b,
 * fused as nvcc compiles it (FFMA). x and y may be the same array.
 */
@Component(property = HostKernel.KERNEL_NAME + "=" + Rt12Affine.NAME)
public class Rt12Affine implements HostKernel {
    /** The entry name nvcc gives it. */
    public static final String NAME = "_Z11rt12_affinePfPKfffi";

    @Override
    public void execute(KernelLaunch launch) {
        int n = Arrays.covered(launch, launch.paramInt(4));
        float a = launch.paramFloat(2);
        float b = launch.paramFloat(3);
        float[] x = Arrays.floats(launch.memory(), launch.paramPointer(1), n);
        for (int i = 0; i < n; i++) {
            x[i] = Math.fma(a, x[i], b);
        }
        Arrays.write(launch.memory(), launch.paramPointer(0), x);
    }
}
