package io.vgpu.shim.bridge.internal;

import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * Frames in and out of one connection, with reused direct buffers.
 *
 * <p>Reads take whatever the socket has, so a burst of queued async requests (the shim sends them
 * in one write) costs one system call. When nothing is there the channel is polled without
 * blocking for up to {@code spinNanos} before it blocks: a client that answers within a few
 * microseconds then never pays for a sleep and wake-up on our side.
 */
final class FrameChannel {
    /** Holds a typical burst of queued async requests; bigger frames grow the buffer. */
    static final int INITIAL_IN = 64 << 10;
    static final int INITIAL_OUT = 16 << 10;
    static final int MAX_FRAME = Wire.HEADER + Frame.MAX_PAYLOAD;
    /**
     * A connection that slept this long gives back buffers grown for a large copy: a thousand
     * idle sessions must not each keep 2 x 64 MiB, while a busy one never re-allocates.
     */
    static final long TRIM_AFTER_IDLE_NANOS = 1_000_000_000L;

    private final SocketChannel channel;
    private final long spinNanos;
    private final long trimAfterIdleNanos;
    private boolean blocking;

    /** Received bytes are {@code [start, end)}; a frame handed out stays in place until consumed. */
    private ByteBuffer in = Frame.allocate(INITIAL_IN);
    private int start;
    private int end;
    private ByteBuffer out = Frame.allocate(INITIAL_OUT);
    /**
     * Bytes read ahead by {@link #peerClosed()} while a request runs, in stream order after
     * {@code in}'s; {@link #fill} takes them before reading the socket again.
     */
    private ByteBuffer spill;
    /** The most read ahead: beyond it, {@link #peerClosed()} cannot tell and says no. */
    static final int MAX_SPILL = 4 << 20;

    FrameChannel(SocketChannel channel, long spinNanos) throws IOException {
        this(channel, spinNanos, TRIM_AFTER_IDLE_NANOS);
    }

    FrameChannel(SocketChannel channel, long spinNanos, long trimAfterIdleNanos) throws IOException {
        this.channel = channel;
        this.spinNanos = spinNanos;
        this.trimAfterIdleNanos = trimAfterIdleNanos;
        // Without a spin window there is nothing to poll for: stay blocking and skip the mode switches.
        blocking = spinNanos <= 0;
        channel.configureBlocking(blocking);
    }

    /** The buffer holding the frame {@link #next()} returned; valid until {@link #consume()}. */
    ByteBuffer in() {
        return in;
    }

    /**
     * Waits for the next complete frame and returns the offset of its header in {@link #in()}.
     *
     * @throws EOFException when the peer closed the connection (a clean close between frames or not)
     * @throws ProtocolViolation when the header announces a payload above {@link Frame#MAX_PAYLOAD}
     */
    int next() throws IOException, ProtocolViolation {
        fill(Wire.HEADER);
        int length = in.getInt(start + Frame.LENGTH);
        if (length < 0 || length > Frame.MAX_PAYLOAD) {
            throw new ProtocolViolation("frame length " + Integer.toUnsignedString(length) + " exceeds "
                    + Frame.MAX_PAYLOAD + " (op " + Wire.name(in.getShort(start + Frame.OP) & 0xffff) + ")");
        }
        fill(Wire.HEADER + length);
        return start;
    }

    /** Releases the frame returned by {@link #next()}. */
    void consume() {
        start += Wire.HEADER + in.getInt(start + Frame.LENGTH);
        if (start == end) {
            start = end = 0;
        }
    }

    /** True when no received byte is waiting: the frame just handled is the last one we have. */
    boolean drained() {
        return start == end;
    }

    private void fill(int need) throws IOException {
        while (end - start < need) {
            // Make room only when it gains something: space before the frame, or a full buffer.
            if (in.capacity() - start < need && (start > 0 || end == in.capacity())) {
                makeRoom(need);
            }
            in.limit(in.capacity()).position(end);
            if (read() < 0) {
                throw new EOFException(end == start ? "connection closed" : "connection closed inside a frame");
            }
            // Not end += n: a trim may have moved the received bytes to a new buffer.
            end = in.position();
        }
    }

    /**
     * Moves the partial frame to the front, into a bigger buffer if it cannot fit otherwise. The
     * buffer grows with the bytes that have arrived (at most doubling them), not with the length
     * a header announces: a 16-byte header must not make the service allocate 64 MiB.
     */
    private void makeRoom(int need) {
        ByteBuffer target = in;
        int want = (int) Math.min(need, Math.max(2L * (end - start), INITIAL_IN));
        if (want > in.capacity()) {
            int capacity = in.capacity();
            while (capacity < want) {
                capacity = (int) Math.min((long) capacity * 2, MAX_FRAME);
            }
            target = Frame.allocate(capacity);
        }
        in.limit(end).position(start);
        ByteBuffer pending = in.slice();
        target.clear();
        target.put(pending);
        in = target;
        end -= start;
        start = 0;
    }

    private int read() throws IOException {
        if (spill != null && spill.position() > 0) {
            spill.flip();
            int n = Math.min(spill.remaining(), in.remaining());
            ByteBuffer part = spill.slice().limit(n);
            in.put(part);
            spill.position(spill.position() + n).compact();
            if (spill.position() == 0 && spill.capacity() > INITIAL_IN) {
                spill = null;
            }
            return n;
        }
        if (peerClosed) {
            return -1;
        }
        if (blocking) {
            return readBlocking();
        }
        int n = channel.read(in);
        if (n != 0) {
            return n;
        }
        long deadline = System.nanoTime() + spinNanos;
        do {
            Thread.onSpinWait();
            n = channel.read(in);
            if (n != 0) {
                return n;
            }
        } while (System.nanoTime() - deadline < 0);
        return readBlocking();
    }

    private int readBlocking() throws IOException {
        long sleptSince = System.nanoTime();
        if (!blocking) {
            channel.configureBlocking(true);
        }
        int n;
        try {
            n = channel.read(in);
        } finally {
            if (!blocking && channel.isOpen()) {
                channel.configureBlocking(false);
            }
        }
        if (n > 0 && System.nanoTime() - sleptSince >= trimAfterIdleNanos) {
            trim();
        }
        return n;
    }

    /** Drops grown buffers after an idle period; received bytes move along if they fit. */
    private void trim() {
        if (out.capacity() > INITIAL_OUT) {
            out = Frame.allocate(INITIAL_OUT);
        }
        int pending = in.position() - start;
        if (in.capacity() > INITIAL_IN && pending <= INITIAL_IN) {
            ByteBuffer small = Frame.allocate(INITIAL_IN);
            small.put(in.flip().position(start));
            in = small;
            start = 0;
            end = 0;
        }
    }

    private boolean peerClosed;

    /**
     * While a request runs on the connection's own thread, another thread asks whether the client
     * hung up: it reads what the socket has, without blocking, into a side buffer that the next
     * {@link #next()} consumes first, so no byte is lost or reordered. True at end of stream or on
     * a failed or closed socket. The caller guarantees that the connection's thread does no read
     * meanwhile (between {@link #next()} returning and the request finishing it does none).
     */
    boolean peerClosed() {
        if (peerClosed) {
            return true;
        }
        try {
            if (spill == null) {
                spill = Frame.allocate(INITIAL_IN);
            }
            if (!spill.hasRemaining()) {
                if (spill.capacity() >= MAX_SPILL) {
                    return false; // a client far ahead of us is not a client that is gone
                }
                ByteBuffer bigger = Frame.allocate(Math.min(MAX_SPILL, spill.capacity() * 2));
                bigger.put(spill.flip());
                spill = bigger;
            }
            if (blocking) {
                channel.configureBlocking(false);
            }
            int n;
            try {
                n = channel.read(spill);
            } finally {
                if (blocking && channel.isOpen()) {
                    channel.configureBlocking(true);
                }
            }
            peerClosed = n < 0;
        } catch (IOException e) {
            peerClosed = true;
        }
        return peerClosed;
    }

    int inCapacity() {
        return in.capacity();
    }

    int outCapacity() {
        return out.capacity();
    }

    /**
     * The reply buffer, with room for a payload of {@code payloadCapacity} bytes after the
     * header. Growing replaces the buffer: callers fetch it again after calling this.
     */
    ByteBuffer out(int payloadCapacity) {
        int need = Wire.HEADER + payloadCapacity;
        if (out.capacity() < need) {
            int capacity = out.capacity();
            while (capacity < need) {
                capacity = (int) Math.min((long) capacity * 2, MAX_FRAME);
            }
            out = Frame.allocate(capacity);
        }
        return out;
    }

    ByteBuffer out() {
        return out;
    }

    /** Sends the reply built in {@link #out()}: header at 0, then {@code payloadLength} bytes. */
    void send(int op, int seq, int result, int payloadLength) throws IOException {
        Frame.putReplyHeader(out, 0, payloadLength, op, 0, seq, result);
        out.limit(Wire.HEADER + payloadLength).position(0);
        while (out.hasRemaining()) {
            if (channel.write(out) == 0) {
                // The socket buffer is full (a large reply, a slow reader): wait for it blocking.
                channel.configureBlocking(true);
                try {
                    while (out.hasRemaining()) {
                        channel.write(out);
                    }
                } finally {
                    if (channel.isOpen()) {
                        channel.configureBlocking(false);
                    }
                }
            }
        }
        out.clear();
    }
}
