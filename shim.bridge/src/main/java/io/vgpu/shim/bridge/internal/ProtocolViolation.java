package io.vgpu.shim.bridge.internal;

/** The peer broke the wire protocol: its connection is closed and its session released. */
final class ProtocolViolation extends Exception {
    private static final long serialVersionUID = 1L;

    ProtocolViolation(String reason) {
        super(reason, null, false, false);
    }
}
