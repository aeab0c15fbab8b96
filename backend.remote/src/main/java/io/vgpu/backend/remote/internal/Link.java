package io.vgpu.backend.remote.internal;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * The guest's end of one connection to a host: requests are written in order under one lock
 * (async ones stay in the buffer until a synchronous request, a heartbeat or a full buffer sends
 * them), replies are matched to their waiters by sequence number by whichever thread holds the
 * reader role (usually the caller waiting for one, see {@link #await}). The link is
 * declared dead when nothing came back and nothing could be written for {@code timeoutMs}; then
 * every waiter gets {@link CuResult#DEVICE_UNAVAILABLE} at once.
 */
public final class Link {
    /** A reply: its result and its payload (little-endian, position 0). */
    public static final class Reply {
        public final int result;
        public final ByteBuffer payload;
        /** The payload went straight into the buffer given to {@link #send(ByteBuffer, ByteBuffer, Sink)}; {@link #payload} is empty. */
        public final boolean direct;

        Reply(int result, ByteBuffer payload, boolean direct) {
            this.result = result;
            this.payload = payload;
            this.direct = direct;
        }
    }

    /**
     * The replies of one multi-request copy: each is read straight into the buffer its request
     * named, saving a copy and an allocation, until one fails; from then on they arrive as
     * payloads, so the destination holds nothing past the first failure (as when copied by hand).
     */
    public static final class Sink {
        volatile boolean failed;

        /** The copy gave up: replies still to come are read aside. */
        public void abandon() {
            failed = true;
        }
    }

    private static final class Target {
        final ByteBuffer into;
        final Sink sink;

        Target(ByteBuffer into, Sink sink) {
            this.into = into;
            this.sink = sink;
        }
    }

    static final Reply UNAVAILABLE = new Reply(CuResult.DEVICE_UNAVAILABLE, ByteBuffer.allocate(0), false);
    /** Bytes written at once for large payloads, so that progress is seen during a long upload. */
    private static final int WRITE_PIECE = 1 << 20;

    private final Socket raw;
    private final OutputStream out;
    private final DataInputStream in;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final AtomicInteger seq = new AtomicInteger();
    private final Map<Integer, CompletableFuture<Reply>> waiting = new ConcurrentHashMap<>();
    private final Map<Integer, Target> targets = new ConcurrentHashMap<>();
    private final long timeoutNanos;
    private final Consumer<String> onDeath;
    private volatile long lastProgress = System.nanoTime();
    private volatile String death;
    private volatile boolean hostAvailable = true;
    private volatile boolean hostDraining;
    /** Called once, on the reading thread (so it must not block), when the host says it drains. */
    public volatile Runnable onDraining;
    private volatile long lastRoundTripNanos;
    /** Set by {@link #tick} when a writer held the lock: that writer sends the heartbeat. */
    private volatile boolean heartbeatDue;

    /** Takes over a connected, handshaken socket ({@code raw} is the TCP socket beneath it). */
    public Link(Socket raw, Socket socket, long timeoutMs, Consumer<String> onDeath) throws IOException {
        this.raw = raw;
        this.out = new BufferedOutputStream(socket.getOutputStream(), 1 << 18);
        this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        this.onDeath = onDeath;
    }

    /** Reads one reply synchronously, before the reader runs (the handshake). */
    public Frames.In readDirect(int max) throws IOException {
        Frames.In f = Frames.read(in, new byte[Wire.HEADER], max, null);
        if (f == null) {
            throw new IOException("the host closed the connection");
        }
        return f;
    }

    public void startReader(String name) {
        Thread t = new Thread(this::readLoop, "vgpu-remote-link-" + name);
        t.setDaemon(true);
        t.start();
    }

    /*
     * Replies are read by whichever thread waits for one: a caller that finds the reader role free
     * reads until its own reply is in (handing out the others' on the way), so a synchronous call
     * costs no thread handoff. The reader thread below takes the role only when replies are due
     * and no caller reads them: a heartbeat's, or those left when the reading caller is done.
     */
    private final ReentrantLock readRole = new ReentrantLock();
    private final Semaphore readerWanted = new Semaphore(0);
    /** Used by the holder of readRole only. */
    private final byte[] header = new byte[Wire.HEADER];
    private final Runnable progress = () -> lastProgress = System.nanoTime();

    private void wantReader() {
        if (readerWanted.availablePermits() == 0) {
            readerWanted.release();
        }
    }

    private void readLoop() {
        try {
            while (death == null) {
                readerWanted.tryAcquire(1, TimeUnit.SECONDS);
                readRole.lock();
                try {
                    // A caller queued for the role reads its own reply: let it.
                    while (!waiting.isEmpty() && death == null && !readRole.hasQueuedThreads()) {
                        readOne();
                    }
                } finally {
                    readRole.unlock();
                }
            }
        } catch (IOException e) {
            kill("connection lost: " + Tls.rootMessage(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Reads one frame and completes its waiter; under readRole. */
    private void readOne() throws IOException {
        Frames.In f = Frames.readHeader(in, header, Frame.MAX_PAYLOAD);
        if (f == null) {
            kill("the host closed the connection");
            return;
        }
        Target t = targets.remove(f.seq);
        boolean direct = false;
        if (t != null) {
            if (f.result != CuResult.SUCCESS) {
                t.sink.failed = true;
            } else {
                direct = !t.sink.failed && f.length == t.into.remaining();
            }
        }
        if (direct) {
            readInto(f, t.into);
            f.payload = EMPTY;
        } else {
            byte[] p = new byte[f.length];
            Frames.readPayload(in, f, p, 0, f.length, progress);
            f.payload = ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN);
        }
        lastProgress = System.nanoTime();
        if (f.op == Wire.REMOTE_HEARTBEAT) {
            hostAvailable = f.payload.getInt(Wire.RemoteHeartbeat.REP_AVAILABLE) != 0;
            if ((f.payload.getInt(Wire.RemoteHeartbeat.REP_FLAGS) & Frames.HEARTBEAT_DRAINING) != 0 && !hostDraining) {
                hostDraining = true;
                Runnable d = onDraining;
                if (d != null) {
                    d.run();
                }
            }
            lastRoundTripNanos = System.nanoTime() - f.payload.getLong(Wire.RemoteHeartbeat.REP_NANOS);
        }
        CompletableFuture<Reply> w = waiting.remove(f.seq);
        if (w != null) {
            w.complete(new Reply(f.result, f.payload, direct));
        }
    }

    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
    /** For destinations without an array; used by the holder of readRole only. */
    private byte[] scratch;

    private void readInto(Frames.In f, ByteBuffer into) throws IOException {
        int length = f.length;
        if (into.hasArray()) {
            Frames.readPayload(in, f, into.array(), into.arrayOffset() + into.position(), length, progress);
            return;
        }
        if (scratch == null) {
            scratch = new byte[Frames.READ_PIECE];
        }
        for (int at = 0; at < length;) {
            int n = Math.min(scratch.length, length - at);
            Frames.readPayload(in, f, scratch, 0, n, progress);
            into.put(into.position() + at, scratch, 0, n);
            at += n;
        }
    }

    public boolean alive() {
        return death == null;
    }

    public String death() {
        return death;
    }

    /** Whether the host said it is going away (REMOTE_HEARTBEAT flags). */
    public boolean hostDraining() {
        return hostDraining;
    }

    public boolean hostAvailable() {
        return hostAvailable;
    }

    /** Ends the link: closes the TCP socket (which unblocks any writer) and fails every waiter. */
    public void kill(String why) {
        synchronized (this) {
            if (death != null) {
                return;
            }
            death = why;
        }
        try {
            raw.close();
        } catch (IOException e) {
            // closing anyway
        }
        for (CompletableFuture<Reply> w : waiting.values()) {
            w.complete(UNAVAILABLE);
        }
        waiting.clear();
        targets.clear();
        onDeath.accept(why);
    }

    /** Called every heartbeat period: sends a heartbeat and kills the link if the host went silent. */
    public void tick() {
        if (death != null) {
            return;
        }
        if (System.nanoTime() - lastProgress > timeoutNanos) {
            kill("no answer from the host for " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms");
            return;
        }
        if (writeLock.tryLock()) {
            try {
                heartbeat();
            } catch (IOException e) {
                kill("connection lost: " + Tls.rootMessage(e));
            } finally {
                writeLock.unlock();
            }
        } else {
            // A writer holding the lock is making progress or will be killed by the timeout above.
            // Copies are fire-and-forget, so one streaming them may hold it nearly all the time:
            // it sends the heartbeat after its frame, else the host's replies (a drain) go unheard.
            heartbeatDue = true;
        }
    }

    /** Under writeLock: one heartbeat, flushed; its reply is read by whoever reads. */
    private void heartbeat() throws IOException {
        heartbeatDue = false;
        ByteBuffer hb = Frames.request(Wire.REMOTE_HEARTBEAT, Wire.RemoteHeartbeat.REQ_FIXED, false);
        hb.putLong(Wire.HEADER + Wire.RemoteHeartbeat.REQ_NANOS, System.nanoTime());
        int s = seq.incrementAndGet();
        Frames.setSeq(hb, s);
        waiting.put(s, new CompletableFuture<>());
        out.write(hb.array(), 0, hb.capacity());
        out.flush();
        wantReader();
    }

    private void write(ByteBuffer frame, ByteBuffer tail, boolean flush) throws IOException {
        out.write(frame.array(), frame.arrayOffset(), frame.limit());
        if (tail != null) {
            if (tail.hasArray()) {
                int at = tail.arrayOffset() + tail.position();
                int end = at + tail.remaining();
                while (at < end) {
                    int n = Math.min(WRITE_PIECE, end - at);
                    out.write(tail.array(), at, n);
                    at += n;
                    lastProgress = System.nanoTime();
                }
            } else {
                byte[] piece = new byte[Math.min(WRITE_PIECE, tail.remaining())];
                ByteBuffer t = tail.duplicate();
                while (t.hasRemaining()) {
                    int n = Math.min(piece.length, t.remaining());
                    t.get(piece, 0, n);
                    out.write(piece, 0, n);
                    lastProgress = System.nanoTime();
                }
            }
        }
        if (flush) {
            out.flush();
            lastProgress = System.nanoTime();
        }
    }

    /**
     * Sends a request and returns the future of its reply. {@code frame} holds header and fixed
     * part (its length field counts {@code tail} too); {@code tail}'s remaining bytes follow.
     */
    public CompletableFuture<Reply> send(ByteBuffer frame, ByteBuffer tail, boolean flush) {
        return send(frame, tail, flush, null);
    }

    /** Sends a request whose reply payload, if it succeeds and fills {@code into} exactly, is read into it. */
    public CompletableFuture<Reply> send(ByteBuffer frame, ByteBuffer into, Sink sink) {
        return send(frame, null, true, new Target(into, sink));
    }

    private CompletableFuture<Reply> send(ByteBuffer frame, ByteBuffer tail, boolean flush, Target target) {
        CompletableFuture<Reply> w = new CompletableFuture<>();
        if (death != null) {
            w.complete(UNAVAILABLE);
            return w;
        }
        writeLock.lock();
        try {
            int s = seq.incrementAndGet();
            Frames.setSeq(frame, s);
            if (target != null) {
                targets.put(s, target);
            }
            waiting.put(s, w);
            write(frame, tail, flush);
            if (heartbeatDue) {
                heartbeat();
            }
        } catch (IOException e) {
            kill("connection lost: " + Tls.rootMessage(e));
        } finally {
            writeLock.unlock();
        }
        if (death != null) {
            w.complete(UNAVAILABLE);
        }
        return w;
    }

    /** One synchronous round trip. */
    public Reply call(ByteBuffer frame, ByteBuffer tail) {
        return await(send(frame, tail, true));
    }

    /** Waits for a reply; the link's watchdog guarantees an answer (possibly UNAVAILABLE) in bounded time. */
    public Reply await(CompletableFuture<Reply> w) {
        while (!w.isDone() && death == null) {
            try {
                // Whoever holds the role reads until its own reply is in (its reads end when the
                // watchdog closes a silent link), then hands the role on.
                readRole.lockInterruptibly();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return UNAVAILABLE;
            }
            try {
                while (!w.isDone() && death == null) {
                    readOne();
                }
            } catch (IOException e) {
                kill("connection lost: " + Tls.rootMessage(e));
            } finally {
                readRole.unlock();
            }
            if (!waiting.isEmpty() && !readRole.hasQueuedThreads()) {
                wantReader();
            }
        }
        return w.getNow(UNAVAILABLE);
    }

    /** Posts an async request (FLAG_ASYNC already in the header): no reply, not flushed. */
    public int post(ByteBuffer frame, ByteBuffer tail, boolean flush) {
        if (death != null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        writeLock.lock();
        try {
            Frames.setSeq(frame, seq.incrementAndGet());
            write(frame, tail, flush);
            if (heartbeatDue) {
                heartbeat();
            }
        } catch (IOException e) {
            kill("connection lost: " + Tls.rootMessage(e));
        } finally {
            writeLock.unlock();
        }
        return death == null ? CuResult.SUCCESS : CuResult.DEVICE_UNAVAILABLE;
    }

    /** Round-trip time of the last heartbeat, in nanoseconds. */
    public long lastRoundTripNanos() {
        return lastRoundTripNanos;
    }
}
