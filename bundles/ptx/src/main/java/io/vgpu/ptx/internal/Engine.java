package io.vgpu.ptx.internal;

import io.vgpu.ptx.GlobalMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import java.util.function.Supplier;

public final class Engine {
    public Engine(int workers, long watchdogMillis) {
    }

    public void launch(Kernel k, LaunchDims dims, byte[] params, Supplier<GlobalMemory> memory) {
        throw new KernelFault(KernelFault.Kind.UNSUPPORTED, "not yet");
    }

    public long threadInstructions() {
        return 0;
    }

    public void close() {
    }
}
