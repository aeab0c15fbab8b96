package io.vgpu.ptx;

/** A kernel did what a GPU would stop it for; the launch fails with the matching CUDA error. */
public class KernelFault extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** Out of bounds or unmapped address: {@code CUDA_ERROR_ILLEGAL_ADDRESS}. */
        ILLEGAL_ADDRESS,
        /** Misaligned access: {@code CUDA_ERROR_MISALIGNED_ADDRESS}. */
        MISALIGNED_ADDRESS,
        /** {@code trap}, a barrier that can never complete, a bad call: {@code CUDA_ERROR_LAUNCH_FAILED}. */
        TRAP,
        /** The watchdog stopped a kernel that ran too long: {@code CUDA_ERROR_LAUNCH_TIMEOUT}. */
        TIMEOUT,
        /** An instruction the engine does not execute: {@code CUDA_ERROR_NOT_SUPPORTED}. */
        UNSUPPORTED
    }

    private final Kind kind;

    public KernelFault(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** The CUresult a launch ending in this fault reports. */
    public int cudaError() {
        switch (kind) {
            case ILLEGAL_ADDRESS: return 700;
            case MISALIGNED_ADDRESS: return 716;
            case TIMEOUT: return 702;
            case UNSUPPORTED: return 801;
            default: return 719;
        }
    }
}
