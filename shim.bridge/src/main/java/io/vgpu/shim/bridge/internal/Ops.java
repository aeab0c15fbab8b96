package io.vgpu.shim.bridge.internal;

import io.vgpu.protocol.Wire;

/** Per-op facts from the generated spec tables: which ops exist and their fixed part sizes. */
final class Ops {
    private Ops() {}

    private static final int MAX_OP = 1 << 16;
    /** The first op of the remote range (protocol.spec, "remote"). */
    static final int REMOTE_FIRST = 128;
    private static final int[] REQUEST_FIXED = new int[MAX_OP];
    private static final int[] REPLY_FIXED = new int[MAX_OP];
    private static final boolean[] KNOWN = new boolean[MAX_OP];

    static {
        for (Wire.Message m : Wire.MESSAGES) {
            if (m.name().startsWith("record.")) {
                continue;
            }
            // Ops 128 and up belong to the remote listener's link (backend.remote), never to the
            // Unix socket: here they are unknown ops, a protocol violation.
            KNOWN[m.op()] = m.op() < REMOTE_FIRST;
            if (m.reply()) {
                REPLY_FIXED[m.op()] = m.fixedSize();
            } else {
                REQUEST_FIXED[m.op()] = m.fixedSize();
            }
        }
    }

    static boolean isKnown(int op) {
        return op > 0 && op < MAX_OP && KNOWN[op];
    }

    static int requestFixed(int op) {
        return REQUEST_FIXED[op];
    }

    static int replyFixed(int op) {
        return REPLY_FIXED[op];
    }

    /** What a management connection (HELLO caps CONTROL) may ask. */
    static boolean allowedForControl(int op) {
        switch (op) {
            case Wire.PING:
            case Wire.SERVICE_STATUS:
            case Wire.SERVICE_ID:
            case Wire.SESSION_LIST:
            case Wire.SESSION_DEVICES:
            case Wire.QUOTA_LIST:
            case Wire.LAUNCH_LOG:
            case Wire.BACKEND_LIST:
            case Wire.MIGRATION_LOG:
            case Wire.SESSION_MIGRATE: // and only for root and the service's user: Connection
            case Wire.GOODBYE:
                return true;
            default:
                return false;
        }
    }
}
