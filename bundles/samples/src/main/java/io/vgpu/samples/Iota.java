package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import org.osgi.service.component.annotations.Component;

/** {@code vgpu_iota(int *out, int start, int n)}: out[i] = start + i. Writing to a bad pointer faults. */
@Component(property = HostKernel.KERNEL_NAME + "=vgpu_iota")
public class Iota implements HostKernel {
    @Override
    public void execute(KernelLaunch launch) {
        int n = Arrays.covered(launch, launch.paramInt(2));
        int start = launch.paramInt(1);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = start + i;
        }
        Arrays.write(launch.memory(), launch.paramPointer(0), out);
    }
}
