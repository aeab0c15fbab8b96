package io.vgpu.samples;

import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import java.nio.ByteBuffer;
import org.osgi.service.component.annotations.Component;

/**
 * {@code rt_struct_apply(int first, RtStruct p, short bias)} of test/cuda/rt_struct_param.cu, with
 * <pre>
 * struct RtStruct { char tag; double offset; int count; float scale; const float *in; double *out; };
 * </pre>
 * (offsets 0, 8, 16, 20, 24, 32; 40 bytes): out[i] = (double)(in[i] * scale) + offset + tag + bias + first
 * for i &lt; count, added left to right in double as the C expression is.
 */
@Component(property = HostKernel.KERNEL_NAME + "=" + RtStructApply.NAME)
public class RtStructApply implements HostKernel {
    /** The entry name nvcc gives it. */
    public static final String NAME = "_Z15rt_struct_applyi8RtStructs";

    @Override
    public void execute(KernelLaunch launch) {
        int first = launch.paramInt(0);
        ByteBuffer p = launch.paramBytes(1);
        short bias = launch.paramBytes(2).getShort(0);
        byte tag = p.get(0);
        double offset = p.getDouble(8);
        int count = p.getInt(16);
        float scale = p.getFloat(20);
        long in = p.getLong(24);
        long out = p.getLong(32);
        int n = Arrays.covered(launch, count);
        float[] x = Arrays.floats(launch.memory(), in, n);
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            double v = (double) (x[i] * scale);
            v += offset;
            v += tag;
            v += bias;
            v += first;
            y[i] = v;
        }
        Arrays.write(launch.memory(), out, y);
    }
}
