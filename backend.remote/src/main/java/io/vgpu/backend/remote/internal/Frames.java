package io.vgpu.backend.remote.internal;

import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Frames on the remote link: the shared header (io.vgpu.protocol.Frame) over a byte stream. */
public final class Frames {
    private Frames() {}

    /** Bytes of a payload read at once, so that progress is seen while a large frame arrives. */
    static final int READ_PIECE = 1 << 20;
    /** REMOTE_HEARTBEAT reply flags bit: the host is going away; move sessions elsewhere now. */
    static final int HEARTBEAT_DRAINING = 1;

    /** A frame as read: header fields and its payload (little-endian, position 0). */
    public static final class In {
        public int op;
        public int flags;
        public int seq;
        public int result;
        /** Payload bytes, as the header gives them. */
        public int length;
        public ByteBuffer payload;

        public boolean async() {
            return (flags & Wire.FLAG_ASYNC) != 0;
        }
    }

    /** Thrown for a frame that breaks the protocol: the peer is disconnected. */
    public static final class Violation extends IOException {
        private static final long serialVersionUID = 1L;

        public Violation(String message) {
            super(message);
        }
    }

    /**
     * Reads one frame; null at a clean end of stream before a header. {@code progress} runs after
     * each piece of payload.
     */
    public static In read(DataInputStream in, byte[] header, int maxPayload, Runnable progress) throws IOException {
        In f = readHeader(in, header, maxPayload);
        if (f != null) {
            byte[] p = new byte[f.length];
            readPayload(in, f, p, 0, f.length, progress);
            f.payload = ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN);
        }
        return f;
    }

    /** Reads a frame's header; its payload ({@link In#length} bytes) is next on the stream. */
    public static In readHeader(DataInputStream in, byte[] header, int maxPayload) throws IOException {
        int n = 0;
        while (n < Wire.HEADER) {
            int r = in.read(header, n, Wire.HEADER - n);
            if (r < 0) {
                if (n == 0) {
                    return null;
                }
                throw new EOFException("connection closed inside a frame header");
            }
            n += r;
        }
        ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        int length = Frame.length(h);
        if (length < 0 || length > maxPayload) {
            throw new Violation("frame of " + Integer.toUnsignedString(length) + " bytes exceeds the limit of " + maxPayload);
        }
        In f = new In();
        f.op = Frame.op(h);
        f.flags = Frame.flags(h);
        f.seq = Frame.seq(h);
        f.result = Frame.result(h);
        f.length = length;
        return f;
    }

    /**
     * Reads {@code length} bytes of {@code f}'s payload into {@code p} at {@code at}, running
     * {@code progress} after each piece.
     */
    public static void readPayload(DataInputStream in, In f, byte[] p, int at, int length, Runnable progress) throws IOException {
        for (int end = at + length; at < end;) {
            int piece = Math.min(READ_PIECE, end - at);
            try {
                in.readFully(p, at, piece);
            } catch (EOFException e) {
                // A truncated frame is the peer's fault: say so in the one line that reports it.
                throw new EOFException("connection closed inside a frame of " + f.length + " bytes (op " + f.op + ")");
            }
            at += piece;
            if (progress != null) {
                progress.run();
            }
        }
    }

    /** A request frame with room for {@code payload} bytes: header filled, payload at {@link Wire#HEADER}. */
    public static ByteBuffer request(int op, int payload, boolean async) {
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + payload).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(b, 0, payload, op, async ? Wire.FLAG_ASYNC : 0, 0);
        return b;
    }

    public static void setSeq(ByteBuffer frame, int seq) {
        frame.putInt(Frame.SEQ, seq);
    }
}
