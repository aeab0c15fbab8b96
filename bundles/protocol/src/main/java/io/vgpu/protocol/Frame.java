package io.vgpu.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Frame headers and fixed-field helpers. A frame is a 16-byte header and a payload; all integers
 * are little-endian. Request header: u32 length, u16 op, u16 flags, u32 seq, u32 reserved.
 * Reply header: u32 length, u16 op, u16 flags, u32 seq, i32 result.
 */
public final class Frame {
    private Frame() {}

    /** The largest payload either side accepts; bigger data moves through shared memory. */
    public static final int MAX_PAYLOAD = 64 << 20;

    public static final int LENGTH = 0;
    public static final int OP = 4;
    public static final int FLAGS = 6;
    public static final int SEQ = 8;
    public static final int RESULT = 12;

    public static ByteBuffer allocate(int capacity) {
        return ByteBuffer.allocateDirect(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static void putRequestHeader(ByteBuffer b, int at, int length, int op, int flags, int seq) {
        b.putInt(at + LENGTH, length).putShort(at + OP, (short) op).putShort(at + FLAGS, (short) flags)
                .putInt(at + SEQ, seq).putInt(at + RESULT, 0);
    }

    public static void putReplyHeader(ByteBuffer b, int at, int length, int op, int flags, int seq, int result) {
        b.putInt(at + LENGTH, length).putShort(at + OP, (short) op).putShort(at + FLAGS, (short) flags)
                .putInt(at + SEQ, seq).putInt(at + RESULT, result);
    }

    public static int length(ByteBuffer header) {
        return header.getInt(LENGTH);
    }

    public static int op(ByteBuffer header) {
        return header.getShort(OP) & 0xffff;
    }

    public static int flags(ByteBuffer header) {
        return header.getShort(FLAGS) & 0xffff;
    }

    public static int seq(ByteBuffer header) {
        return header.getInt(SEQ);
    }

    public static int result(ByteBuffer header) {
        return header.getInt(RESULT);
    }

    /** Reads a NUL-padded {@code char[max]} field. */
    public static String string(ByteBuffer b, int offset, int max) {
        int n = 0;
        while (n < max && b.get(offset + n) != 0) {
            n++;
        }
        byte[] s = new byte[n];
        b.get(offset, s, 0, n);
        return new String(s, StandardCharsets.UTF_8);
    }

    /** Writes {@code s} NUL-padded into a {@code char[max]} field, truncated to leave room for the NUL. */
    public static void putString(ByteBuffer b, int offset, int max, String s) {
        byte[] bytes = s == null ? new byte[0] : s.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(bytes.length, max - 1);
        b.put(offset, bytes, 0, n);
        for (int i = n; i < max; i++) {
            b.put(offset + i, (byte) 0);
        }
    }

    /** Bytes of a NUL-terminated or plain tail string. */
    public static String tailString(ByteBuffer b, int offset, int length) {
        int n = 0;
        while (n < length && b.get(offset + n) != 0) {
            n++;
        }
        byte[] s = new byte[n];
        b.get(offset, s, 0, n);
        return new String(s, StandardCharsets.UTF_8);
    }
}
