package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/**
 * {@code vadd(const float *a, const float *b, float *c, int n)}: c[i] = a[i] + b[i]. Registered
 * under the C name and the C++ mangled name nvcc gives {@code vadd(const float*, const float*, float*, int)},
 * and as {@code rt_vadd} of test/cuda/rt_vector_add.cu, the same kernel under its own name.
 */
@Component(property = {HostKernel.KERNEL_NAME + "=vgpu_vadd", HostKernel.KERNEL_NAME + "=vadd",
    HostKernel.KERNEL_NAME + "=_Z4vaddPKfS0_Pfi", HostKernel.KERNEL_NAME + "=" + VectorAdd.RT_NAME})
public class VectorAdd implements HostKernel {
    /** The entry name nvcc gives rt_vadd. */
    public static final String RT_NAME = "_Z7rt_vaddPKfS0_Pfi";

    @Override
    public void execute(KernelLaunch launch) {
        int n = Arrays.covered(launch, launch.paramInt(3));
        float[] a = Arrays.floats(launch.memory(), launch.paramPointer(0), n);
        float[] b = Arrays.floats(launch.memory(), launch.paramPointer(1), n);
        for (int i = 0; i < n; i++) {
            a[i] += b[i];
        }
        Arrays.write(launch.memory(), launch.paramPointer(2), a);
    }
}
