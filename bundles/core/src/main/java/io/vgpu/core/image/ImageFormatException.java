package io.vgpu.core.image;

/**
 * A module image could not be used: it is malformed, or it holds no code the target device can run.
 * The two cases map to different CUDA errors ({@code CUDA_ERROR_INVALID_IMAGE} /
 * {@code CUDA_ERROR_INVALID_PTX} versus {@code CUDA_ERROR_NO_BINARY_FOR_GPU}), hence {@link #reason()}.
 */
public class ImageFormatException extends Exception {
    private static final long serialVersionUID = 1L;

    public enum Reason {
        /** Truncated, inconsistent or otherwise unparseable bytes. */
        MALFORMED,
        /** A well-formed fatbin without a cubin or PTX entry the target architecture can use. */
        NO_COMPATIBLE_CODE
    }

    private final Reason reason;

    public ImageFormatException(String message) {
        this(Reason.MALFORMED, message, null);
    }

    public ImageFormatException(String message, Throwable cause) {
        this(Reason.MALFORMED, message, cause);
    }

    public ImageFormatException(Reason reason, String message) {
        this(reason, message, null);
    }

    public ImageFormatException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
