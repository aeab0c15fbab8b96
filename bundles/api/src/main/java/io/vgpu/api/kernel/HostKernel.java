package io.vgpu.api.kernel;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A kernel executed on the host by a simulated backend. Register it as a service with
 * {@link #KERNEL_NAME} set to the entry name as the module spells it (mangled for C++); a launch
 * of a kernel nobody registered is recorded and otherwise a no-op.
 */
@ConsumerType
public interface HostKernel {
    String KERNEL_NAME = "kernel.name";

    /**
     * Runs the whole grid. Throwing {@link DeviceMemory.AccessException} fails the launch with
     * {@code CUDA_ERROR_ILLEGAL_ADDRESS}, as a real kernel touching unmapped memory would.
     */
    void execute(KernelLaunch launch);
}
