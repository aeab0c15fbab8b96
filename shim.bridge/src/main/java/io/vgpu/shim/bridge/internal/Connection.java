package io.vgpu.shim.bridge.internal;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client process: its socket, its thread, its core session. Requests are executed strictly in
 * the order received, which is what lets the client fire async requests without waiting.
 *
 * <p>Whatever the client sends, the worst outcome is this connection closing: protocol violations
 * close it with one WARN line, and failures inside the core become {@code CUDA_ERROR_UNKNOWN}.
 *
 * <p>While a request runs, the thread is not reading, so a client that dies would go unnoticed
 * until the request returns. The server's watcher therefore asks busy connections
 * ({@link #watch}) whether their client hung up; if so, the session is abandoned, which stops the
 * running work, and the connection ends when the request returns.
 */
final class Connection implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(Connection.class);
    /** HELLO caps bit: a management client (the vgpu CLI) that gets no CUDA session. */
    static final int CAPS_CONTROL = 0x2;
    /** Reply payloads start after the header. */
    private static final int R = Wire.HEADER;

    private final BridgeServer server;
    private final SessionManager manager;
    private final SocketChannel channel;
    private final String transport;
    private volatile boolean closing;
    private final Thread thread;

    private PeerIdentity peer;
    private int pid = -1;
    private String process = "?";
    private boolean greeted;
    private boolean control;
    private boolean holdsSessionSlot;
    private volatile Session session;
    private SharedMemory shm;
    private FrameChannel io;
    private Dispatcher dispatcher;

    /** The first error of an async request not yet reported in a reply. */
    private int pendingError;
    private boolean done;
    /** Set when the connection ended in a way already logged. */
    private boolean quiet;
    private int failures;

    /** Guards the read side of {@link #io} between this thread and the watcher. */
    private final Object ioLock = new Object();
    /** Guarded by ioLock: a request is executing since {@code busySince} (System.nanoTime). */
    private boolean busy;
    private long busySince;
    /** Set when the watcher found the client gone; the session is abandoned then. */
    private volatile boolean peerGone;

    Connection(BridgeServer server, SessionManager manager, SocketChannel channel, String transport, String threadName) {
        this.server = server;
        this.manager = manager;
        this.channel = channel;
        this.transport = transport;
        this.thread = new Thread(this, threadName);
        thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    Thread thread() {
        return thread;
    }

    /** Ends the connection from outside; the connection's own thread releases the session. */
    void close() {
        closing = true;
        Session s = session;
        if (s != null) {
            // The thread may be deep in a long request: make it stop rather than wait for it.
            s.abandon();
        }
        try {
            channel.close();
        } catch (IOException e) {
            // Closing is all we wanted.
        }
    }

    @Override
    public void run() {
        try {
            peer = PeerIdentity.of(channel);
            if (!peer.allowedBy(server.allowedUsers(), server.allowedGroups())) {
                LOG.warn("refusing a connection from {}: not in allowed_users {} or allowed_groups {}", peer,
                        server.allowedUsers(), server.allowedGroups());
                quiet = true;
                return;
            }
            io = new FrameChannel(channel, server.spinNanos());
            while (!done && !peerGone) {
                int at = io.next();
                request(io.in(), at);
                io.consume();
            }
        } catch (ProtocolViolation v) {
            quiet = true;
            LOG.warn("protocol violation by {}: {}; closing the connection", describe(), v.getMessage());
        } catch (IOException e) {
            // EOF, a reset, or our own close() during deactivation: all mean the client is gone.
        } catch (Throwable t) {
            quiet = true;
            LOG.error("connection of {} failed; closing it", describe(), t);
        } finally {
            end();
        }
    }

    private void end() {
        try {
            channel.close();
        } catch (IOException e) {
            // Already closed.
        }
        if (session != null) {
            try {
                session.close();
            } catch (RuntimeException e) {
                LOG.warn("closing session {} of {} failed", session.id(), describe(), e);
            }
        }
        if (shm != null) {
            // Only after the session is closed: nothing can reach the mapping any more.
            shm.close();
        }
        if (!quiet && !closing) {
            if (session != null) {
                LOG.info("session {} (pid {}, {}) disconnected{}", session.id(), pid, process,
                        failures > 0 ? " after " + failures + " internal errors" : "");
            } else if (LOG.isDebugEnabled()) {
                LOG.debug("connection of {} closed", describe());
            }
        }
        server.ended(this, holdsSessionSlot);
    }

    private void request(ByteBuffer q, int at) throws IOException, ProtocolViolation {
        int length = q.getInt(at + Frame.LENGTH);
        int op = q.getShort(at + Frame.OP) & 0xffff;
        int flags = q.getShort(at + Frame.FLAGS) & 0xffff;
        int seq = q.getInt(at + Frame.SEQ);
        checkHeader(op, flags, length);
        int p = at + Wire.HEADER;
        if (!greeted) {
            if (op != Wire.HELLO) {
                throw new ProtocolViolation("the first request is " + Wire.name(op) + ", not HELLO");
            }
            hello(q, p, seq);
            return;
        }
        int rc;
        if (op == Wire.HELLO) {
            throw new ProtocolViolation("a second HELLO");
        } else if (control && !Ops.allowedForControl(op) || op == Wire.SESSION_MIGRATE && !(control && mayMigrate())) {
            dispatcher.blank(op);
            rc = CuResult.NOT_PERMITTED;
        } else if (op == Wire.BATCH) {
            rc = batch(q, p, length);
        } else {
            rc = invoke(op, q, p, length);
        }
        finish(op, flags, seq, rc);
        if (op == Wire.GOODBYE) {
            done = true;
        }
    }

    private static void checkHeader(int op, int flags, int length) throws ProtocolViolation {
        if (!Ops.isKnown(op)) {
            throw new ProtocolViolation("unknown op " + op);
        }
        if ((flags & Wire.FLAG_ASYNC) != 0 && !Wire.asyncAllowed(op)) {
            throw new ProtocolViolation("ASYNC flag on the synchronous op " + Wire.name(op));
        }
        if (length < Ops.requestFixed(op)) {
            throw new ProtocolViolation(Wire.name(op) + " payload of " + length + " bytes is shorter than its fixed part ("
                    + Ops.requestFixed(op) + ")");
        }
    }

    /**
     * Called by the server's watcher thread now and then: when this connection has been executing
     * one request for at least {@code busyNanos}, looks (without blocking) whether the client hung
     * up, and if it did abandons the session so that the running request stops.
     */
    void watch(long now, long busyNanos) {
        Session s;
        synchronized (ioLock) {
            if (!busy || peerGone || now - busySince < busyNanos || !io.peerClosed()) {
                return;
            }
            peerGone = true;
            s = session;
        }
        LOG.info("{} hung up while a request of {} ms was running; abandoning its session", describe(),
                (now - busySince) / 1_000_000);
        if (s != null) {
            s.abandon();
        }
    }

    /** Runs one request in the core; a failure in there is the service's fault, not the client's. */
    private int invoke(int op, ByteBuffer q, int p, int length) {
        synchronized (ioLock) {
            busy = true;
            busySince = System.nanoTime();
        }
        try {
            return dispatcher.execute(op, q, p, length);
        } catch (RuntimeException e) {
            failures++;
            if (failures == 1) {
                LOG.warn("{} of {} failed inside the service; answering CUDA_ERROR_UNKNOWN", Wire.name(op), describe(), e);
            } else {
                LOG.debug("{} of {} failed inside the service", Wire.name(op), describe(), e);
            }
            dispatcher.blank(op);
            return CuResult.UNKNOWN;
        } finally {
            synchronized (ioLock) {
                busy = false;
            }
        }
    }

    /** Publishes completion, then replies or, for an async request, keeps a failure for later. */
    private void finish(int op, int flags, int seq, int rc) throws IOException {
        if (shm != null) {
            shm.completed(seq);
        }
        if ((flags & Wire.FLAG_ASYNC) != 0) {
            if (rc != CuResult.SUCCESS && pendingError == CuResult.SUCCESS) {
                pendingError = rc;
            }
            return;
        }
        int result = rc;
        // Only a synchronizing request reports an earlier async failure; any other keeps its own
        // answer, since what it did (an allocation, a new handle) happened and must not be lost.
        if (rc == CuResult.SUCCESS && pendingError != CuResult.SUCCESS && Wire.deliversPending(op)) {
            result = pendingError;
            pendingError = CuResult.SUCCESS;
        }
        io.send(op, seq, result, dispatcher.replyLength());
    }

    /**
     * Runs the frames of a BATCH in order as if they had arrived one by one. The whole batch is
     * checked first, so a malformed one is refused before any of it runs.
     */
    private int batch(ByteBuffer q, int p, int length) throws IOException, ProtocolViolation {
        int end = p + length;
        for (int at = p; at < end;) {
            if (end - at < Wire.HEADER) {
                throw new ProtocolViolation("BATCH ends inside a frame header");
            }
            int len = q.getInt(at + Frame.LENGTH);
            int op = q.getShort(at + Frame.OP) & 0xffff;
            int flags = q.getShort(at + Frame.FLAGS) & 0xffff;
            if (len < 0 || len > end - at - Wire.HEADER) {
                throw new ProtocolViolation("a frame in BATCH overruns it");
            }
            checkHeader(op, flags, len);
            if (op == Wire.BATCH || !Wire.asyncAllowed(op) || (flags & Wire.FLAG_ASYNC) == 0) {
                throw new ProtocolViolation("BATCH carries " + Wire.name(op) + " without ASYNC or not async-capable");
            }
            at += Wire.HEADER + len;
        }
        for (int at = p; at < end;) {
            int len = q.getInt(at + Frame.LENGTH);
            int op = q.getShort(at + Frame.OP) & 0xffff;
            int flags = q.getShort(at + Frame.FLAGS) & 0xffff;
            int seq = q.getInt(at + Frame.SEQ);
            finish(op, flags, seq, invoke(op, q, at + Wire.HEADER, len));
            at += Wire.HEADER + len;
        }
        // The BATCH frame's own reply (if it was sent without ASYNC) is empty.
        dispatcher.blank(Wire.BATCH);
        return CuResult.SUCCESS;
    }

    private void hello(ByteBuffer q, int p, int seq) throws IOException, ProtocolViolation {
        int magic = q.getInt(p + Wire.Hello.REQ_MAGIC);
        if (magic != Wire.MAGIC) {
            throw new ProtocolViolation("HELLO magic 0x" + Integer.toHexString(magic) + " is not 0x"
                    + Integer.toHexString(Wire.MAGIC));
        }
        int major = q.getShort(p + Wire.Hello.REQ_MAJOR) & 0xffff;
        int minor = q.getShort(p + Wire.Hello.REQ_MINOR) & 0xffff;
        pid = q.getInt(p + Wire.Hello.REQ_PID);
        int caps = q.getInt(p + Wire.Hello.REQ_CAPS);
        long shmSize = q.getLong(p + Wire.Hello.REQ_SHM_SIZE);
        process = printable(charField(q, p + Wire.Hello.REQ_PROCESS, Wire.Hello.REQ_SHM_PATH - Wire.Hello.REQ_PROCESS, "process"));
        String shmPath = charField(q, p + Wire.Hello.REQ_SHM_PATH, Wire.Hello.REQ_FIXED - Wire.Hello.REQ_SHM_PATH, "shm_path");
        greeted = true;
        control = (caps & CAPS_CONTROL) != 0;

        if (major != Wire.MAJOR) {
            LOG.warn("refusing {}: it speaks protocol {}.{}, the service {}.{}", describe(), major, minor, Wire.MAJOR,
                    Wire.MINOR);
            refuse(seq, CuResult.SYSTEM_DRIVER_MISMATCH);
            return;
        }
        int driverVersion;
        int status;
        long[] window = {0, 0};
        if (control) {
            RouterStatus st = manager.status();
            driverVersion = st.driverVersion;
            status = st.backendPresent ? CuResult.SUCCESS : CuResult.NO_DEVICE;
        } else {
            if (!server.reserveSession()) {
                LOG.warn("refusing {}: max_sessions ({}) reached", describe(), server.maxSessions());
                refuse(seq, CuResult.MPS_MAX_CLIENTS_REACHED);
                return;
            }
            holdsSessionSlot = true;
            ClientInfo client = new ClientInfo();
            client.pid = pid;
            client.uid = peer.uid;
            client.gid = peer.gid;
            client.processName = process;
            client.transport = transport;
            session = withQuotas(manager.open(client));
            status = session.check();
            driverVersion = session.driverVersion();
            window = session.addressWindow();
            if (shmSize != 0 && !shmPath.isEmpty()) {
                try {
                    shm = SharedMemory.map(shmPath, shmSize, peer.user, server.maxShmBytes());
                } catch (SharedMemory.Refused e) {
                    LOG.info("session {} (pid {}, {}) goes without shared memory: {}", session.id(), pid, process,
                            e.getMessage());
                }
            }
        }
        dispatcher = new Dispatcher(manager, session, io, server.quotas());
        dispatcher.shm(shm);
        ByteBuffer r = io.out(Wire.Hello.REP_FIXED);
        r.putShort(R + Wire.Hello.REP_MAJOR, (short) Wire.MAJOR)
                .putShort(R + Wire.Hello.REP_MINOR, (short) Wire.MINOR)
                .putInt(R + Wire.Hello.REP_CAPS, 0)
                .putInt(R + Wire.Hello.REP_DRIVER_VERSION, driverVersion)
                .putInt(R + Wire.Hello.REP_STATUS, status)
                .putLong(R + Wire.Hello.REP_SESSION, session == null ? 0 : session.id())
                .putLong(R + Wire.Hello.REP_WINDOW_BASE, window[0])
                .putLong(R + Wire.Hello.REP_WINDOW_SIZE, window[1])
                .putInt(R + Wire.Hello.REP_SHM_OK, shm != null ? 1 : 0)
                .putInt(R + Wire.Hello.REP_MAX_FRAME, Frame.MAX_PAYLOAD);
        if (shm != null) {
            shm.completed(seq);
        }
        io.send(Wire.HELLO, seq, CuResult.SUCCESS, Wire.Hello.REP_FIXED);
    }

    /** The session itself, or the session as memory quotas bound it when any apply to this client. */
    private Session withQuotas(Session opened) {
        MemoryQuotas quotas = server.quotas();
        MemoryQuotas.Account account = quotas.isEmpty() ? null : quotas.open(opened.id(), peer, pid);
        if (account == null) {
            return opened;
        }
        // Migrations ask the quotas first and move the accounting with the session's memory.
        opened.guardMigrations(quotas.guard(account));
        return new QuotaSession(opened, quotas, account, describeClient());
    }

    private String describeClient() {
        return "pid " + pid + ", user " + peer.userName() + ", " + process;
    }

    /** Answers HELLO with {@code result} and ends the connection. */
    private void refuse(int seq, int result) throws IOException {
        ByteBuffer r = io.out(Wire.Hello.REP_FIXED);
        for (int i = 0; i < Wire.Hello.REP_FIXED; i += 4) {
            r.putInt(R + i, 0);
        }
        r.putShort(R + Wire.Hello.REP_MAJOR, (short) Wire.MAJOR)
                .putShort(R + Wire.Hello.REP_MINOR, (short) Wire.MINOR)
                .putInt(R + Wire.Hello.REP_MAX_FRAME, Frame.MAX_PAYLOAD);
        io.send(Wire.HELLO, seq, result, Wire.Hello.REP_FIXED);
        quiet = true;
        done = true;
    }

    /** A {@code char[max]} field, which the spec says always ends with a NUL. */
    private static String charField(ByteBuffer q, int offset, int max, String name) throws ProtocolViolation {
        if (q.get(offset + max - 1) != 0) {
            throw new ProtocolViolation("HELLO " + name + " is not NUL-terminated");
        }
        return Frame.string(q, offset, max);
    }

    /** The service's own user id, for the one management request that changes what others run on. */
    private static final int SERVICE_UID = serviceUid();

    private static int serviceUid() {
        try {
            return (Integer) java.nio.file.Files.getAttribute(java.nio.file.Path.of("/proc/self"), "unix:uid");
        } catch (java.io.IOException | RuntimeException e) {
            return 0;
        }
    }

    /** Moving other users' processes between backends is for root and the service's user. */
    private boolean mayMigrate() {
        return peer.uid == 0 || peer.uid == SERVICE_UID;
    }

    /** Process names are the client's word: keep control characters out of the log. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return b.toString();
    }

    /** The peer as log lines name it. */
    String describe() {
        StringBuilder b = new StringBuilder();
        if (pid >= 0) {
            b.append("pid ").append(pid).append(", ");
        }
        b.append(peer == null ? "unknown user" : "user " + peer.userName());
        if (greeted) {
            b.append(", process ").append(process);
        }
        if (session != null) {
            b.append(" (session ").append(session.id()).append(')');
        } else if (control) {
            b.append(" (control)");
        }
        return b.toString();
    }
}
