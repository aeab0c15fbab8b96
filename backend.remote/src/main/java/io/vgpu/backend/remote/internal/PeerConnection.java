package io.vgpu.backend.remote.internal;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One guest on the listener: after the TLS handshake and REMOTE_HELLO, two threads take turns
 * (see {@link #work}) reading frames (heartbeats answered at once, everything else queued within
 * the peer's queue budget) and running the requests in order on the backend. The peer only ever reaches handles it created; its
 * contexts are created for owners of its own, so the backend keeps its memory apart from every
 * other peer's; everything it holds is released when it goes.
 */
public final class PeerConnection {
    private static final Logger LOG = LoggerFactory.getLogger(PeerConnection.class);
    private static final AtomicLong OWNERS = new AtomicLong(0x7e00_0000_0000_0000L);
    private static final int HANDSHAKE_MS = 5000;
    private static final Set<Integer> ACCEPTED = Set.of(Wire.GOODBYE, Wire.PING, Wire.DEVICE_LIST, Wire.MEM_GET_INFO,
            Wire.CTX_DESTROY, Wire.CTX_SYNCHRONIZE, Wire.MEM_FREE, Wire.MEMCPY_HTOD, Wire.MEMCPY_DTOH, Wire.MEMCPY_DTOD,
            Wire.MEMSET, Wire.MEM_RELEASE, Wire.MODULE_UNLOAD, Wire.FUNCTION_GET_ATTRIBUTE, Wire.LAUNCH, Wire.STREAM_CREATE,
            Wire.STREAM_DESTROY, Wire.STREAM_SYNCHRONIZE, Wire.STREAM_QUERY, Wire.STREAM_WAIT_EVENT, Wire.EVENT_CREATE,
            Wire.EVENT_DESTROY, Wire.EVENT_RECORD, Wire.EVENT_QUERY, Wire.EVENT_SYNCHRONIZE, Wire.EVENT_ELAPSED_TIME,
            Wire.REMOTE_HEARTBEAT, Wire.REMOTE_CTX_CREATE, Wire.REMOTE_MEM_ALLOC, Wire.REMOTE_MEM_CREATE, Wire.REMOTE_MEM_MAP,
            Wire.REMOTE_MEM_UNMAP, Wire.REMOTE_MODULE_LOAD, Wire.REMOTE_FUNCTION_GET);
    private static final Map<Integer, int[]> FIXED = new HashMap<>();

    static {
        for (Wire.Message m : Wire.MESSAGES) {
            if (!m.name().startsWith("record.")) {
                FIXED.computeIfAbsent(m.op(), k -> new int[2])[m.reply() ? 1 : 0] = m.fixedSize();
            }
        }
    }

    /** Finds the backend a guest asks for; {@code id[0]} receives the id it resolved to. */
    public interface Backends {
        CudaService find(String requested, String[] id);
    }

    private static final class Ctx {
        final long guestOwner;

        Ctx(long guestOwner) {
            this.guestOwner = guestOwner;
        }
    }

    /** How often guests are told to heartbeat. */
    private static final int HEARTBEAT_MS = 1000;
    private final Socket raw;
    private final SSLContext tls;
    private final int maxPeers;
    private final long memoryLimit;
    private final int queueLimit;
    private final int idleTimeoutMs;
    private final Backends backends;
    private final Set<PeerConnection> peers;
    private volatile String name;
    /** The guest's certificate fingerprint (null on a plaintext link) and the backend it is served by. */
    private volatile String guestKey;
    private volatile String backendId;
    /** The pinned name of the guest's certificate (its file in the trust directory), else its CN. */
    private volatile String guestName;
    /** The guest core's device address window; set (under peers' lock) once REMOTE_HELLO is accepted. */
    private volatile AddressWindow window;
    private final java.util.function.Function<String, String> pinnedName;
    private final CountDownLatch released = new CountDownLatch(1);
    private volatile long lastHeardNanos = System.nanoTime();
    private Socket socket;
    private OutputStream out;
    private CudaService backend;
    private final Object writeLock = new Object();
    private final Semaphore queueBytes;
    private volatile boolean closed;
    /** Set when the listener goes away in order: heartbeats tell the guest, a new HELLO is refused. */
    private volatile boolean draining;

    // Executor-thread state: what this peer created on the backend.
    // contexts is also read by a draining listener (holdsNothing), hence concurrent.
    private final Map<Long, Ctx> contexts = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<Long, Long> ownerMap = new HashMap<>();
    private final Map<Long, Long> streams = new HashMap<>();
    private final Map<Long, Long> events = new HashMap<>();
    private final Map<Long, Long> modules = new HashMap<>();
    private final Map<Long, Long> functions = new HashMap<>();
    private final Map<Long, long[]> memHandles = new HashMap<>();
    private final Map<Long, Map<Long, Long>> linear = new HashMap<>();
    private final Map<Long, Integer> pending = new HashMap<>();
    private long memoryHeld;

    public PeerConnection(Socket raw, SSLContext tls, int maxPeers, long memoryLimit, int queueLimit, int idleTimeoutMs,
            Backends backends, Set<PeerConnection> peers, java.util.function.Function<String, String> pinnedName) {
        this.pinnedName = pinnedName;
        this.raw = raw;
        this.tls = tls;
        this.maxPeers = maxPeers;
        this.memoryLimit = memoryLimit;
        this.queueLimit = Math.max(queueLimit, Frame.MAX_PAYLOAD + Wire.HEADER);
        this.queueBytes = new Semaphore(this.queueLimit);
        this.idleTimeoutMs = idleTimeoutMs;
        this.backends = backends;
        this.peers = peers;
        this.name = raw.getRemoteSocketAddress().toString().replaceFirst("^/", "");
    }

    public String name() {
        return name;
    }

    public void start() {
        Thread t = new Thread(this::readLoop, "vgpu-remote-peer-" + name);
        t.setDaemon(true);
        t.start();
    }

    private void readLoop() {
        String why = "the guest disconnected";
        boolean working = false;
        try {
            raw.setTcpNoDelay(true);
            raw.setSoTimeout(HANDSHAKE_MS);
            if (tls != null) {
                SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(raw, null, raw.getPort(), true);
                Tls.restrict(s);
                s.setUseClientMode(false);
                s.setNeedClientAuth(true);
                try {
                    s.startHandshake();
                } catch (IOException e) {
                    LOG.warn("remote listener refused {}: TLS handshake failed: {}", name, Tls.rootMessage(e));
                    closeRaw();
                    return;
                }
                X509Certificate cert = (X509Certificate) s.getSession().getPeerCertificates()[0];
                name = Tls.commonName(cert) + "@" + name;
                guestKey = Tls.fingerprint(cert);
                String pinned = pinnedName.apply(guestKey);
                guestName = pinned != null ? pinned : Tls.commonName(cert);
                socket = s;
            } else {
                socket = raw;
            }
            if (!peers.add(this) || peers.size() > maxPeers) {
                peers.remove(this);
                LOG.warn("remote listener refused {}: it already serves its maximum of {} guests", name, maxPeers);
                closeRaw();
                return;
            }
            out = new BufferedOutputStream(socket.getOutputStream(), 1 << 16);
            in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
            Frames.In hello = Frames.read(in, header, 4096, null);
            if (hello == null) {
                why = "the guest closed before REMOTE_HELLO";
                return;
            }
            if (!hello(hello)) {
                return;
            }
            raw.setSoTimeout(idleTimeoutMs);
            synchronized (turn) {
                reading = true;
            }
            Thread other = new Thread(() -> work(false), "vgpu-remote-exec-" + name);
            other.setDaemon(true);
            other.start();
            working = true;
            work(true);
        } catch (IOException e) {
            why = "connection lost: " + Tls.rootMessage(e);
        } finally {
            if (!working) {
                // The work threads did not start, so they will not finish: leave the peers and
                // release the latch a replacing link may wait on.
                finish(why);
            }
        }
    }

    /*
     * Leader/followers: the peer's two threads take turns. One holds the reader role; when it
     * reads a request and nothing is executing, it gives up the role and runs the request itself,
     * so a request costs no thread handoff on its way to the backend. The other thread is woken
     * to read at once when more requests probably follow (moreLikely), else it takes the free
     * role on its next poll. While one thread executes (a long kernel, a big copy), the other
     * reads: heartbeats are answered and later requests queue behind the running one, in order.
     */
    /** How soon the idle thread takes over reading from one that executes (heartbeats wait at most this). */
    static final int FOLLOWER_POLL_MS = 25;
    private final Object turn = new Object();
    /** Guarded by turn: read, not yet executed, in order; non-empty only while one executes. */
    private ArrayDeque<Frames.In> queue = new ArrayDeque<>();
    /** The executing thread's empty deque, swapped with the queue (executing thread only). */
    private ArrayDeque<Frames.In> spare = new ArrayDeque<>();
    /** The reading thread's requests read behind the first (reading thread only). */
    private final java.util.ArrayList<Frames.In> batch = new java.util.ArrayList<>();
    private static final int BATCH = 256;
    private static final int BATCH_BYTES = 256 << 10;
    /** Read, but its share of the budget not yet taken (reading thread only). */
    private Frames.In carried;
    private boolean reading;
    private boolean executing;
    /** Guarded by turn: nothing more will be read or executed after the queue. */
    private boolean ended;
    /** Used by the thread that holds the reader role only. */
    private DataInputStream in;
    private final byte[] header = new byte[Wire.HEADER];

    private void work(boolean startReading) {
        boolean read = startReading;
        try {
            while (true) {
                Frames.In f;
                if (read) {
                    f = carried != null ? carried : readRequest();
                    carried = null;
                    if (f != null) {
                        // Waiting for the budget is the backpressure; this thread holds nothing
                        // else, so the executing one drains the queue meanwhile.
                        queueBytes.acquire(cost(f));
                    }
                    boolean last = f == null || f.op == Wire.GOODBYE;
                    // What is already buffered behind it is read too, so that a burst of small
                    // requests costs one hand-over to the executing thread, not one per request.
                    // Never waiting for the budget while holding them: one that does not fit
                    // is carried over to the next turn.
                    batch.clear();
                    int held = f == null ? 0 : cost(f);
                    while (!last && batch.size() < BATCH && held < BATCH_BYTES && available()) {
                        Frames.In g = readRequest();
                        if (g == null) {
                            last = true;
                            break;
                        }
                        if (!queueBytes.tryAcquire(cost(g))) {
                            carried = g;
                            break;
                        }
                        batch.add(g);
                        held += cost(g);
                        last = g.op == Wire.GOODBYE;
                    }
                    synchronized (turn) {
                        if (ended) {
                            // Closed from outside or after a failed execution while these were read.
                            if (f != null) {
                                queueBytes.release(cost(f));
                            }
                            for (Frames.In g : batch) {
                                queueBytes.release(cost(g));
                            }
                            batch.clear();
                            carried = null;
                            f = null;
                        }
                        if (last) {
                            ended = true;
                            reading = false;
                        }
                        boolean more = !batch.isEmpty() || carried != null || (f != null && moreLikely(f));
                        if (f != null && executing) {
                            queue.add(f);
                            f = null;
                        } else if (f != null) {
                            executing = true;
                            reading = false;
                        }
                        queue.addAll(batch);
                        if (last || (f != null && more)) {
                            turn.notifyAll();
                        }
                    }
                    if (f == null) {
                        read = !last;
                        continue;
                    }
                    read = false;
                } else {
                    f = null;
                    synchronized (turn) {
                        while (true) {
                            if (!executing && !queue.isEmpty()) {
                                executing = true;
                                f = queue.poll();
                                break;
                            }
                            if (ended) {
                                if (!executing) {
                                    return;
                                }
                            } else if (!reading) {
                                reading = true;
                                break;
                            }
                            turn.wait(FOLLOWER_POLL_MS);
                        }
                    }
                    if (f == null) {
                        read = true;
                        continue;
                    }
                }
                // Runs f, then what queued behind it, taking the queue whole each time.
                ArrayDeque<Frames.In> mine = spare;
                mine.add(f);
                while (true) {
                    Frames.In x = mine.poll();
                    if (x == null) {
                        synchronized (turn) {
                            if (queue.isEmpty()) {
                                executing = false;
                                if (ended) {
                                    turn.notifyAll();
                                }
                                break;
                            }
                            ArrayDeque<Frames.In> t = queue;
                            queue = mine;
                            mine = t;
                        }
                        continue;
                    }
                    queueBytes.release(cost(x));
                    if (!run(x)) {
                        for (Frames.In y; (y = mine.poll()) != null;) {
                            queueBytes.release(cost(y));
                        }
                        synchronized (turn) {
                            ended = true;
                            drop();
                            executing = false;
                            turn.notifyAll();
                        }
                        closeRaw();
                        return;
                    }
                }
                spare = mine;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            synchronized (turn) {
                ended = true;
                drop();
                turn.notifyAll();
            }
            closeRaw();
        } finally {
            finish(closeReason == null ? "the guest disconnected" : closeReason);
        }
    }

    /**
     * Whether more requests probably follow the one about to run: an ASYNC one (the guest did not
     * wait for it) or one with input already behind it. Then the other thread is woken to read
     * them meanwhile; otherwise (a synchronous call) the reply is not delayed by waking it, and it
     * takes over reading within {@link #FOLLOWER_POLL_MS} should the request run long.
     */
    private boolean moreLikely(Frames.In f) {
        return f.async() || available();
    }

    /** Whether input is already buffered (reading it will not block). */
    private boolean available() {
        try {
            return in.available() > 0;
        } catch (IOException e) {
            return false;
        }
    }

    private int cost(Frames.In f) {
        return Math.min(f.payload.capacity() + Wire.HEADER, queueLimit);
    }

    /** Under turn: forgets what is queued (the peer is going). */
    private void drop() {
        for (Frames.In q; (q = queue.poll()) != null;) {
            queueBytes.release(cost(q));
        }
    }

    /**
     * Reads the next request, answering heartbeats on the way; null when reading ends, with
     * closeReason set.
     */
    private Frames.In readRequest() {
        String why = "the guest disconnected";
        try {
            while (!closed) {
                Frames.In f = Frames.read(in, header, Frame.MAX_PAYLOAD, null);
                if (f == null) {
                    break;
                }
                lastHeardNanos = System.nanoTime();
                check(f);
                if (f.op == Wire.REMOTE_HEARTBEAT) {
                    heartbeat(f);
                    continue;
                }
                if (f.op == Wire.GOODBYE) {
                    why = "the guest said goodbye";
                    setCloseReason(why);
                }
                return f;
            }
        } catch (Frames.Violation e) {
            why = "protocol violation: " + e.getMessage();
            LOG.warn("remote listener: disconnecting {}: {}", name, why);
        } catch (SocketTimeoutException e) {
            why = "no heartbeat for " + idleTimeoutMs + " ms";
            LOG.warn("remote listener: disconnecting {}: {}", name, why);
        } catch (IOException e) {
            if (!closed) {
                why = "connection lost: " + Tls.rootMessage(e);
            }
        }
        setCloseReason(why);
        return null;
    }

    private synchronized void setCloseReason(String why) {
        if (closeReason == null) {
            closeReason = why;
        }
    }

    /** Executes one request; false when the peer must go (goodbye answered, or a failure). */
    private boolean run(Frames.In f) {
        try {
            if (f.op == Wire.GOODBYE) {
                send(reply(0), f, CuResult.SUCCESS, true);
                return false;
            }
            execute(f);
            return true;
        } catch (Frames.Violation e) {
            closeReason = "protocol violation: " + e.getMessage();
            LOG.warn("remote listener: disconnecting {}: {}", name, closeReason);
        } catch (IOException e) {
            closeReason = "connection lost: " + Tls.rootMessage(e);
        } catch (RuntimeException e) {
            closeReason = "internal error: " + e;
            LOG.error("remote listener: disconnecting {} after an internal error", name, e);
        }
        return false;
    }

    private volatile String closeReason;

    private void check(Frames.In f) throws Frames.Violation {
        if (!ACCEPTED.contains(f.op)) {
            throw new Frames.Violation("op " + f.op + " (" + Wire.name(f.op) + ") is not served on the remote link");
        }
        if (f.async() && !Wire.asyncAllowed(f.op)) {
            throw new Frames.Violation("ASYNC flag on the synchronous op " + Wire.name(f.op));
        }
        int fixed = FIXED.get(f.op)[0];
        if (f.payload.capacity() < fixed) {
            throw new Frames.Violation(Wire.name(f.op) + " payload of " + f.payload.capacity() + " bytes is shorter than its fixed part ("
                    + fixed + ")");
        }
    }

    private boolean hello(Frames.In f) throws IOException {
        if (f.op != Wire.REMOTE_HELLO || f.payload.capacity() < Wire.RemoteHello.REQ_WINDOW_BASE) {
            LOG.warn("remote listener: disconnecting {}: protocol violation: the first request is not REMOTE_HELLO", name);
            return false;
        }
        ByteBuffer q = f.payload;
        int rc = CuResult.SUCCESS;
        String reason = "";
        String[] id = new String[1];
        if (q.getInt(Wire.RemoteHello.REQ_MAGIC) != Wire.MAGIC) {
            LOG.warn("remote listener: disconnecting {}: protocol violation: bad magic", name);
            return false;
        }
        int major = q.getShort(Wire.RemoteHello.REQ_MAJOR) & 0xffff;
        CudaService b = backends.find(Frame.string(q, Wire.RemoteHello.REQ_BACKEND, 32), id);
        // A guest from before windows were announced allocates from the default window.
        AddressWindow w = q.capacity() < Wire.RemoteHello.REQ_FIXED ? AddressWindow.DEFAULT
                : new AddressWindow(q.getLong(Wire.RemoteHello.REQ_WINDOW_BASE), q.getLong(Wire.RemoteHello.REQ_WINDOW_SIZE));
        if (major != Wire.MAJOR) {
            rc = CuResult.SYSTEM_DRIVER_MISMATCH;
            LOG.warn("remote listener refused {}: protocol {} (this host speaks {})", name, major, Wire.MAJOR);
        } else if (draining) {
            rc = CuResult.DEVICE_UNAVAILABLE;
            LOG.info("remote listener refused {}: host draining", name);
        } else if (b == null) {
            rc = CuResult.NO_DEVICE;
            LOG.warn("remote listener refused {}: backend '{}' is not served here", name, id[0]);
        } else if (w.invalid() != null) {
            rc = CuResult.INVALID_VALUE;
            reason = "window " + w + " is not usable: " + w.invalid();
            LOG.warn("remote listener refused {}: {}", name, reason);
        } else {
            reason = claimWindow(w);
            if (!reason.isEmpty()) {
                rc = CuResult.ALREADY_MAPPED;
                LOG.warn("remote listener refused {}: {}", name, reason);
            }
        }
        if (rc == CuResult.SUCCESS) {
            backendId = id[0];
            replaceEarlierLinks();
        }
        byte[] why = reason.getBytes(StandardCharsets.UTF_8);
        ByteBuffer r = reply(Wire.RemoteHello.REP_FIXED + why.length);
        int R = Wire.HEADER;
        r.putShort(R + Wire.RemoteHello.REP_MAJOR, (short) Wire.MAJOR).putShort(R + Wire.RemoteHello.REP_MINOR, (short) Wire.MINOR)
                .putInt(R + Wire.RemoteHello.REP_HEARTBEAT_MS, HEARTBEAT_MS).putInt(R + Wire.RemoteHello.REP_MAX_FRAME, Frame.MAX_PAYLOAD);
        Frame.putString(r, R + Wire.RemoteHello.REP_BACKEND, 32, id[0]);
        Frame.putString(r, R + Wire.RemoteHello.REP_DESCRIPTION, 128, draining ? "host draining" : b == null ? "" : b.info().description);
        r.put(R + Wire.RemoteHello.REP_REASON, why);
        send(r, f, rc, true);
        if (rc != CuResult.SUCCESS) {
            return false;
        }
        backend = b;
        LOG.info("remote listener: guest {} connected, served by backend {}, device address window {}", name, id[0], w);
        return true;
    }

    /** Where the host's device address space is reserved (a real GPU host's VMM window). */
    static final AddressWindow HOST_WINDOW = AddressWindow.DEFAULT;
    /** Suggested windows start on this alignment. */
    static final long SUGGESTION_ALIGNMENT = 1L << 40;

    /**
     * Takes {@code w} for this link unless it overlaps the window of a live link of another guest:
     * the guests' cores choose device addresses independently and the host honours them, so two
     * guests in one range would meet each other's allocations. Returns why not, empty when taken.
     * Links of the same certificate are one guest core (a reconnect, or its second backend) and
     * share its window; plaintext links (loopback tests) have no identity and are not checked.
     */
    private String claimWindow(AddressWindow w) {
        synchronized (peers) {
            if (guestKey != null) {
                for (PeerConnection o : peers) {
                    AddressWindow ow = o.window;
                    if (o != this && ow != null && o.guestKey != null && !guestKey.equals(o.guestKey) && ow.overlaps(w)) {
                        return "window " + w + " overlaps " + o.guestName + "'s " + ow + "; " + suggestion(w.size);
                    }
                }
            }
            window = w;
            return "";
        }
    }

    /** A free window inside the host's for this guest, as the guest writes it (caller holds peers' lock). */
    private String suggestion(long wanted) {
        java.util.List<AddressWindow> taken = new java.util.ArrayList<>();
        for (PeerConnection o : peers) {
            AddressWindow ow = o.window;
            if (ow != null && o.guestKey != null && !guestKey.equals(o.guestKey)) {
                taken.add(ow);
            }
        }
        for (long size : new long[] {(wanted + SUGGESTION_ALIGNMENT - 1) & -SUGGESTION_ALIGNMENT, SUGGESTION_ALIGNMENT}) {
            for (long base = HOST_WINDOW.base; size > 0 && size <= HOST_WINDOW.end() - base; base += SUGGESTION_ALIGNMENT) {
                AddressWindow c = new AddressWindow(base, size);
                if (taken.stream().noneMatch(c::overlaps)) {
                    return "free: window.base = " + AddressWindow.hex(base) + ", window.size = " + AddressWindow.size(size);
                }
            }
        }
        return "the host's window " + HOST_WINDOW + " has no free 1T range";
    }

    /**
     * A guest that connects again after its link went silent has given the old one up (a cut cable
     * this host has not noticed yet: guests heartbeat every second and declare a link dead after 3 s
     * without an answer). The old link's allocations must go before the guest reuses their
     * addresses, hence the wait, bounded because the old executor may be inside a long request. A
     * link of the same identity that still heartbeats is another guest service and stays.
     */
    private void replaceEarlierLinks() {
        if (guestKey == null) {
            return;
        }
        for (PeerConnection old : peers) {
            if (old != this && guestKey.equals(old.guestKey) && backendId.equals(old.backendId)
                    && System.nanoTime() - old.lastHeardNanos > TimeUnit.MILLISECONDS.toNanos(2 * HEARTBEAT_MS)) {
                LOG.info("remote listener: guest {} connected again; closing its earlier link {}", name, old.name);
                old.close("replaced by a new link from the same guest");
                try {
                    if (!old.released.await(5, TimeUnit.SECONDS)) {
                        LOG.warn("remote listener: the earlier link {} still holds its work after 5 s", old.name);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * DtoH replies (8 MiB chunks) reuse one buffer instead of allocating each: send() has written
     * a reply before the next request runs, and one thread executes at a time. Only a successful
     * read, which fills the payload whole, is sent from it.
     */
    private byte[] dtohBuffer = new byte[0];

    private ByteBuffer dtohReply(int size) {
        int n = Wire.HEADER + size;
        if (dtohBuffer.length < n) {
            dtohBuffer = new byte[n];
        }
        return ByteBuffer.wrap(dtohBuffer, 0, n).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer reply(int payload) {
        return ByteBuffer.allocate(Wire.HEADER + payload).order(ByteOrder.LITTLE_ENDIAN);
    }

    private void send(ByteBuffer r, Frames.In req, int result, boolean flush) throws IOException {
        Frame.putReplyHeader(r, 0, r.capacity() - Wire.HEADER, req.op, 0, req.seq, result);
        synchronized (writeLock) {
            out.write(r.array(), 0, r.capacity());
            if (flush) {
                out.flush();
            }
        }
    }

    private void heartbeat(Frames.In f) throws IOException {
        ByteBuffer r = reply(Wire.RemoteHeartbeat.REP_FIXED);
        BackendInfo info = backend.info();
        r.putLong(Wire.HEADER + Wire.RemoteHeartbeat.REP_NANOS, f.payload.getLong(Wire.RemoteHeartbeat.REQ_NANOS))
                .putInt(Wire.HEADER + Wire.RemoteHeartbeat.REP_AVAILABLE, info.available ? 1 : 0)
                .putInt(Wire.HEADER + Wire.RemoteHeartbeat.REP_FLAGS, draining ? Frames.HEARTBEAT_DRAINING : 0);
        send(r, f, CuResult.SUCCESS, true);
    }

    /** Runs one request; replies unless it was sent ASYNC; an ASYNC failure becomes its owner's pending error. */
    private void execute(Frames.In f) throws IOException {
        int[] replySize = {FIXED.get(f.op)[1]};
        ByteBuffer[] r = {null};
        long[] owner = {Long.MIN_VALUE};
        int rc;
        try {
            rc = dispatch(f, owner, r, replySize);
        } catch (IndexOutOfBoundsException | java.nio.BufferUnderflowException e) {
            throw new Frames.Violation(Wire.name(f.op) + ": malformed payload");
        }
        if (f.async()) {
            if (rc != CuResult.SUCCESS && owner[0] != Long.MIN_VALUE) {
                pending.putIfAbsent(owner[0], rc);
            }
            return;
        }
        if ((Wire.deliversPending(f.op) || Wire.asyncAllowed(f.op)) && owner[0] != Long.MIN_VALUE) {
            Integer p = pending.remove(owner[0]);
            if (p != null && rc == CuResult.SUCCESS) {
                rc = p;
            }
        }
        ByteBuffer reply = r[0] != null ? r[0] : reply(replySize[0]);
        send(reply, f, rc, true);
    }

    private Ctx ctx(long ctx) {
        return contexts.get(ctx);
    }

    private boolean stream(long s) {
        return s == 0 || streams.containsKey(s);
    }

    private long hostOwner(long guestOwner) {
        return ownerMap.computeIfAbsent(guestOwner, k -> OWNERS.incrementAndGet());
    }

    private int dispatch(Frames.In f, long[] owner, ByteBuffer[] rr, int[] replySize) throws Frames.Violation {
        ByteBuffer q = f.payload;
        int R = Wire.HEADER;
        CudaService b = backend;
        long[] l1 = new long[1];
        switch (f.op) {
            case Wire.PING:
                return CuResult.SUCCESS;
            case Wire.DEVICE_LIST: {
                DeviceInfo[] devs = b.devices();
                ByteBuffer r = reply(Wire.DeviceList.REP_FIXED + devs.length * Wire.Device.FIXED);
                r.putInt(R + Wire.DeviceList.REP_COUNT, devs.length).putInt(R + Wire.DeviceList.REP_ATTRIBUTE_COUNT, CuDeviceAttribute.MAX);
                int at = R + Wire.DeviceList.REP_DEVICES;
                for (DeviceInfo d : devs) {
                    r.putLong(at + Wire.Device.TOTAL_MEMORY, d.totalMemory);
                    Frame.putString(r, at + Wire.Device.NAME, Wire.Device.UUID - Wire.Device.NAME, d.name);
                    for (int i = 0; i < 16; i++) {
                        r.put(at + Wire.Device.UUID + i, d.uuid != null && i < d.uuid.length ? d.uuid[i] : 0);
                    }
                    for (int a = 0; a < CuDeviceAttribute.MAX; a++) {
                        r.putInt(at + Wire.Device.ATTRIBUTES + 4 * a, d.attribute(a));
                    }
                    at += Wire.Device.FIXED;
                }
                rr[0] = r;
                return CuResult.SUCCESS;
            }
            case Wire.MEM_GET_INFO: {
                long[] info = new long[2];
                int rc = b.memGetInfo(q.getInt(Wire.MemGetInfo.REQ_DEVICE), info);
                ByteBuffer r = reply(Wire.MemGetInfo.REP_FIXED);
                if (memoryLimit > 0) {
                    info[0] = Math.min(info[0], Math.max(0, memoryLimit - memoryHeld));
                }
                r.putLong(R + Wire.MemGetInfo.REP_FREE, info[0]).putLong(R + Wire.MemGetInfo.REP_TOTAL, info[1]);
                rr[0] = r;
                return rc;
            }
            case Wire.REMOTE_CTX_CREATE: {
                long guestOwner = q.getLong(Wire.RemoteCtxCreate.REQ_OWNER);
                int rc = b.ctxCreate(q.getInt(Wire.RemoteCtxCreate.REQ_DEVICE), q.getInt(Wire.RemoteCtxCreate.REQ_FLAGS),
                        hostOwner(guestOwner), l1);
                if (rc == CuResult.SUCCESS) {
                    contexts.put(l1[0], new Ctx(guestOwner));
                    ByteBuffer r = reply(Wire.RemoteCtxCreate.REP_FIXED);
                    r.putLong(R + Wire.RemoteCtxCreate.REP_CTX, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.CTX_DESTROY: {
                long c = q.getLong(Wire.CtxDestroy.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                int rc = b.ctxDestroy(c);
                forgetContext(c);
                return rc;
            }
            case Wire.CTX_SYNCHRONIZE: {
                long c = q.getLong(Wire.CtxSynchronize.REQ_CTX);
                Ctx x = ctx(c);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                owner[0] = x.guestOwner;
                return b.ctxSynchronize(c);
            }
            case Wire.REMOTE_MEM_ALLOC: {
                long c = q.getLong(Wire.RemoteMemAlloc.REQ_CTX);
                Ctx x = ctx(c);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                long size = q.getLong(Wire.RemoteMemAlloc.REQ_SIZE);
                long addr = q.getLong(Wire.RemoteMemAlloc.REQ_ADDRESS);
                if (memoryLimit > 0 && (size < 0 || memoryHeld + size > memoryLimit)) {
                    return CuResult.OUT_OF_MEMORY;
                }
                int rc = b.memAlloc(c, addr, size);
                if (rc == CuResult.SUCCESS) {
                    linear.computeIfAbsent(c, k -> new HashMap<>()).put(addr, size);
                    memoryHeld += size;
                }
                return rc;
            }
            case Wire.MEM_FREE: {
                long c = q.getLong(Wire.MemFree.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                long addr = q.getLong(Wire.MemFree.REQ_PTR);
                int rc = b.memFree(c, addr);
                Map<Long, Long> m = linear.get(c);
                Long size = m == null ? null : m.remove(addr);
                if (rc == CuResult.SUCCESS && size != null) {
                    memoryHeld -= size;
                }
                return rc;
            }
            case Wire.MEMCPY_HTOD: {
                long c = q.getLong(Wire.MemcpyHtod.REQ_CTX);
                Ctx x = ctx(c);
                long s = q.getLong(Wire.MemcpyHtod.REQ_STREAM);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                owner[0] = x.guestOwner;
                if (!stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                ByteBuffer data = q.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(Wire.MemcpyHtod.REQ_DATA);
                return b.memcpyHtoD(c, q.getLong(Wire.MemcpyHtod.REQ_DST), data, s);
            }
            case Wire.MEMCPY_DTOH: {
                long c = q.getLong(Wire.MemcpyDtoh.REQ_CTX);
                Ctx x = ctx(c);
                long s = q.getLong(Wire.MemcpyDtoh.REQ_STREAM);
                long size = q.getLong(Wire.MemcpyDtoh.REQ_SIZE);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                owner[0] = x.guestOwner;
                if (!stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                if (size < 0 || size > Frame.MAX_PAYLOAD) {
                    return CuResult.INVALID_VALUE;
                }
                ByteBuffer r = dtohReply((int) size);
                ByteBuffer dst = r.duplicate().position(R).limit(R + (int) size);
                int rc = b.memcpyDtoH(c, dst, q.getLong(Wire.MemcpyDtoh.REQ_SRC), s);
                rr[0] = rc == CuResult.SUCCESS ? r : reply(0);
                return rc;
            }
            case Wire.MEMCPY_DTOD: {
                long c = q.getLong(Wire.MemcpyDtod.REQ_CTX);
                Ctx x = ctx(c);
                long s = q.getLong(Wire.MemcpyDtod.REQ_STREAM);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                owner[0] = x.guestOwner;
                if (!stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                return b.memcpyDtoD(c, q.getLong(Wire.MemcpyDtod.REQ_DST), q.getLong(Wire.MemcpyDtod.REQ_SRC),
                        q.getLong(Wire.MemcpyDtod.REQ_SIZE), s);
            }
            case Wire.MEMSET: {
                long c = q.getLong(Wire.Memset.REQ_CTX);
                Ctx x = ctx(c);
                long s = q.getLong(Wire.Memset.REQ_STREAM);
                if (x == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                owner[0] = x.guestOwner;
                if (!stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                return b.memset(c, q.getLong(Wire.Memset.REQ_DST), q.getInt(Wire.Memset.REQ_VALUE), q.getInt(Wire.Memset.REQ_ELEMENT_SIZE),
                        q.getLong(Wire.Memset.REQ_COUNT), s);
            }
            case Wire.REMOTE_MEM_CREATE: {
                long c = q.getLong(Wire.RemoteMemCreate.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                long size = q.getLong(Wire.RemoteMemCreate.REQ_SIZE);
                if (memoryLimit > 0 && (size < 0 || memoryHeld + size > memoryLimit)) {
                    return CuResult.OUT_OF_MEMORY;
                }
                int rc = b.memCreate(c, size, l1);
                if (rc == CuResult.SUCCESS) {
                    memHandles.put(l1[0], new long[] {c, size});
                    memoryHeld += size;
                    ByteBuffer r = reply(Wire.RemoteMemCreate.REP_FIXED);
                    r.putLong(R + Wire.RemoteMemCreate.REP_HANDLE, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.MEM_RELEASE: {
                long h = q.getLong(Wire.MemRelease.REQ_HANDLE);
                long[] m = memHandles.get(h);
                if (m == null) {
                    return CuResult.INVALID_HANDLE;
                }
                int rc = b.memRelease(h);
                if (rc == CuResult.SUCCESS) {
                    memHandles.remove(h);
                    memoryHeld -= m[1];
                }
                return rc;
            }
            case Wire.REMOTE_MEM_MAP: {
                long c = q.getLong(Wire.RemoteMemMap.REQ_CTX);
                long h = q.getLong(Wire.RemoteMemMap.REQ_HANDLE);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                if (!memHandles.containsKey(h)) {
                    return CuResult.INVALID_HANDLE;
                }
                return b.memMap(c, q.getLong(Wire.RemoteMemMap.REQ_PTR), q.getLong(Wire.RemoteMemMap.REQ_SIZE),
                        q.getLong(Wire.RemoteMemMap.REQ_OFFSET), h);
            }
            case Wire.REMOTE_MEM_UNMAP: {
                long c = q.getLong(Wire.RemoteMemUnmap.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                return b.memUnmap(c, q.getLong(Wire.RemoteMemUnmap.REQ_PTR), q.getLong(Wire.RemoteMemUnmap.REQ_SIZE));
            }
            case Wire.REMOTE_MODULE_LOAD: {
                long[] cb = new long[2];
                ModuleImage image = ModuleCodec.decode(q, cb);
                if (ctx(cb[0]) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                int rc = b.moduleLoad(cb[0], image, cb[1], l1);
                if (rc == CuResult.SUCCESS) {
                    modules.put(l1[0], cb[0]);
                    ByteBuffer r = reply(Wire.RemoteModuleLoad.REP_FIXED);
                    r.putLong(R + Wire.RemoteModuleLoad.REP_MODULE, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.MODULE_UNLOAD: {
                long m = q.getLong(Wire.ModuleUnload.REQ_MODULE);
                if (!modules.containsKey(m)) {
                    return CuResult.INVALID_HANDLE;
                }
                int rc = b.moduleUnload(m);
                if (rc == CuResult.SUCCESS) {
                    modules.remove(m);
                    functions.values().removeIf(v -> v == m);
                }
                return rc;
            }
            case Wire.REMOTE_FUNCTION_GET: {
                long m = q.getLong(Wire.RemoteFunctionGet.REQ_MODULE);
                if (!modules.containsKey(m)) {
                    return CuResult.INVALID_HANDLE;
                }
                String fn = Frame.tailString(q, Wire.RemoteFunctionGet.REQ_NAME, q.capacity() - Wire.RemoteFunctionGet.REQ_NAME);
                int rc = b.functionGet(m, fn, l1);
                if (rc == CuResult.SUCCESS) {
                    functions.put(l1[0], m);
                    ByteBuffer r = reply(Wire.RemoteFunctionGet.REP_FIXED);
                    r.putLong(R + Wire.RemoteFunctionGet.REP_FUNCTION, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.FUNCTION_GET_ATTRIBUTE: {
                long fn = q.getLong(Wire.FunctionGetAttribute.REQ_FUNCTION);
                if (!functions.containsKey(fn)) {
                    return CuResult.INVALID_HANDLE;
                }
                int[] v = new int[1];
                int rc = b.functionGetAttribute(fn, q.getInt(Wire.FunctionGetAttribute.REQ_ATTRIBUTE), v);
                ByteBuffer r = reply(Wire.FunctionGetAttribute.REP_FIXED);
                r.putInt(R + Wire.FunctionGetAttribute.REP_VALUE, v[0]);
                rr[0] = r;
                return rc;
            }
            case Wire.LAUNCH: {
                long fn = q.getLong(Wire.Launch.REQ_FUNCTION);
                long s = q.getLong(Wire.Launch.REQ_STREAM);
                Long m = functions.get(fn);
                if (m == null) {
                    return CuResult.INVALID_HANDLE;
                }
                owner[0] = contexts.get(modules.get(m)).guestOwner;
                if (!stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                LaunchConfig lc = new LaunchConfig(q.getInt(Wire.Launch.REQ_GRID_X), q.getInt(Wire.Launch.REQ_GRID_Y),
                        q.getInt(Wire.Launch.REQ_GRID_Z), q.getInt(Wire.Launch.REQ_BLOCK_X), q.getInt(Wire.Launch.REQ_BLOCK_Y),
                        q.getInt(Wire.Launch.REQ_BLOCK_Z), q.getInt(Wire.Launch.REQ_SHARED_MEM));
                ByteBuffer params = q.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(Wire.Launch.REQ_PARAMS).slice()
                        .order(ByteOrder.LITTLE_ENDIAN);
                return b.launch(fn, lc, params, s);
            }
            case Wire.STREAM_CREATE: {
                long c = q.getLong(Wire.StreamCreate.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                int rc = b.streamCreate(c, q.getInt(Wire.StreamCreate.REQ_FLAGS), q.getInt(Wire.StreamCreate.REQ_PRIORITY), l1);
                if (rc == CuResult.SUCCESS) {
                    streams.put(l1[0], c);
                    ByteBuffer r = reply(Wire.StreamCreate.REP_FIXED);
                    r.putLong(R + Wire.StreamCreate.REP_STREAM, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.STREAM_DESTROY: {
                long s = q.getLong(Wire.StreamDestroy.REQ_STREAM);
                if (!streams.containsKey(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                int rc = b.streamDestroy(s);
                streams.remove(s);
                return rc;
            }
            case Wire.STREAM_SYNCHRONIZE:
            case Wire.STREAM_QUERY: {
                long s = q.getLong(Wire.StreamSynchronize.REQ_STREAM);
                if (s != 0 && !streams.containsKey(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                if (s != 0) {
                    owner[0] = contexts.get(streams.get(s)).guestOwner;
                }
                return f.op == Wire.STREAM_QUERY ? b.streamQuery(s) : b.streamSynchronize(s);
            }
            case Wire.STREAM_WAIT_EVENT: {
                long s = q.getLong(Wire.StreamWaitEvent.REQ_STREAM);
                long e = q.getLong(Wire.StreamWaitEvent.REQ_EVENT);
                if (!stream(s) || !events.containsKey(e)) {
                    return CuResult.INVALID_HANDLE;
                }
                owner[0] = contexts.get(events.get(e)).guestOwner;
                return b.streamWaitEvent(s, e);
            }
            case Wire.EVENT_CREATE: {
                long c = q.getLong(Wire.EventCreate.REQ_CTX);
                if (ctx(c) == null) {
                    return CuResult.INVALID_CONTEXT;
                }
                int rc = b.eventCreate(c, q.getInt(Wire.EventCreate.REQ_FLAGS), l1);
                if (rc == CuResult.SUCCESS) {
                    events.put(l1[0], c);
                    ByteBuffer r = reply(Wire.EventCreate.REP_FIXED);
                    r.putLong(R + Wire.EventCreate.REP_EVENT, l1[0]);
                    rr[0] = r;
                }
                return rc;
            }
            case Wire.EVENT_DESTROY: {
                long e = q.getLong(Wire.EventDestroy.REQ_EVENT);
                if (!events.containsKey(e)) {
                    return CuResult.INVALID_HANDLE;
                }
                int rc = b.eventDestroy(e);
                events.remove(e);
                return rc;
            }
            case Wire.EVENT_RECORD: {
                long e = q.getLong(Wire.EventRecord.REQ_EVENT);
                long s = q.getLong(Wire.EventRecord.REQ_STREAM);
                if (!events.containsKey(e) || !stream(s)) {
                    return CuResult.INVALID_HANDLE;
                }
                owner[0] = contexts.get(events.get(e)).guestOwner;
                return b.eventRecord(e, s);
            }
            case Wire.EVENT_QUERY:
            case Wire.EVENT_SYNCHRONIZE: {
                long e = q.getLong(Wire.EventQuery.REQ_EVENT);
                if (!events.containsKey(e)) {
                    return CuResult.INVALID_HANDLE;
                }
                owner[0] = contexts.get(events.get(e)).guestOwner;
                return f.op == Wire.EVENT_QUERY ? b.eventQuery(e) : b.eventSynchronize(e);
            }
            case Wire.EVENT_ELAPSED_TIME: {
                long e1 = q.getLong(Wire.EventElapsedTime.REQ_START);
                long e2 = q.getLong(Wire.EventElapsedTime.REQ_END);
                if (!events.containsKey(e1) || !events.containsKey(e2)) {
                    return CuResult.INVALID_HANDLE;
                }
                float[] ms = new float[1];
                int rc = b.eventElapsedTime(e1, e2, ms);
                ByteBuffer r = reply(Wire.EventElapsedTime.REP_FIXED);
                r.putFloat(R + Wire.EventElapsedTime.REP_MILLIS, ms[0]);
                rr[0] = r;
                return rc;
            }
            default:
                throw new Frames.Violation("op " + Wire.name(f.op) + " is not served on the remote link");
        }
    }

    /** Drops what a destroyed context held from this peer's tables (the backend released it). */
    private void forgetContext(long c) {
        contexts.remove(c);
        Map<Long, Long> m = linear.remove(c);
        if (m != null) {
            for (long size : m.values()) {
                memoryHeld -= size;
            }
        }
        streams.values().removeIf(v -> v == c);
        events.values().removeIf(v -> v == c);
        java.util.Set<Long> gone = new java.util.HashSet<>();
        modules.entrySet().removeIf(e -> {
            if (e.getValue() == c) {
                gone.add(e.getKey());
                return true;
            }
            return false;
        });
        functions.values().removeIf(gone::contains);
    }

    private final Object finishLock = new Object();
    private boolean finished;

    /** Releases everything the peer still holds on the backend, once. */
    private void finish(String why) {
        synchronized (finishLock) {
            if (finished) {
                return;
            }
            finished = true;
        }
        closed = true;
        peers.remove(this);
        closeRaw();
        try {
            releaseAll(why);
        } finally {
            released.countDown();
        }
    }

    private void releaseAll(String why) {
        int n = contexts.size();
        if (backend != null) {
            for (Long c : new java.util.ArrayList<>(contexts.keySet())) {
                backend.ctxDestroy(c);
                forgetContext(c);
            }
            for (Long h : memHandles.keySet()) {
                backend.memRelease(h);
            }
            memHandles.clear();
            LOG.info("remote listener: guest {} gone ({}); released {} context(s)", name, why, n);
        }
    }

    private void closeRaw() {
        try {
            raw.close();
        } catch (IOException e) {
            // already closed
        }
    }

    /** Tells the guest (with its next heartbeat) that this host is going away; refuses a HELLO still to come. */
    public void drain() {
        draining = true;
    }

    /**
     * Whether the peer is gone or holds no context on the backend any more: a guest that moved its
     * sessions away destroyed their contexts (and the allocations in them); physical handles left
     * without a context are released when the link closes.
     */
    public boolean holdsNothing() {
        return closed || contexts.isEmpty();
    }

    /** Disconnects the peer; its executor releases what it holds. */
    public void close(String why) {
        closeReason = why;
        closed = true;
        closeRaw();
        synchronized (turn) {
            ended = true;
            drop();
            turn.notifyAll();
        }
    }

    static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
