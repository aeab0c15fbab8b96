package io.vgpu.ptx;

/** PTX text that cannot be parsed or compiled; the message names the line. */
public class PtxException extends Exception {
    private static final long serialVersionUID = 1L;

    public PtxException(String message) {
        super(message);
    }
}
