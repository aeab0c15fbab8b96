package io.vgpu.backend.remote;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Frames;
import io.vgpu.backend.remote.internal.Handshake;
import io.vgpu.backend.remote.internal.Link;
import io.vgpu.backend.remote.internal.ModuleCodec;
import io.vgpu.backend.remote.internal.Tls;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A GPU on another host: every call goes to that host's vgpu listener over TLS 1.3. One instance
 * per factory configuration ({@code conf/io.vgpu.backend.remote.host-<name>.cfg}); the host's
 * devices are this backend's devices, as the host reports them.
 *
 * <p>Handles given to the core are this backend's own numbers, mapped to the host's; after a
 * reconnect the old ones answer {@link CuResult#DEVICE_UNAVAILABLE} (the host released what they
 * named when the link broke). The backend mirrors each owner's mapped ranges, so async copies and
 * memsets are checked here and then go fire-and-forget; launches, event records and stream waits
 * too. Their rare host-side failures come back at the owner's next synchronizing call.
 */
@Component(service = CudaService.class, configurationPid = RemoteBackend.FACTORY_PID, configurationPolicy = ConfigurationPolicy.REQUIRE,
        property = CudaService.BACKEND_ID + "=")
@Designate(ocd = RemoteBackend.Config.class, factory = true)
public class RemoteBackend implements CudaService {
    public static final String FACTORY_PID = "io.vgpu.backend.remote.host";
    private static final Logger LOG = LoggerFactory.getLogger(RemoteBackend.class);
    /** Copies move in chunks of this size; uploads are never waited for, downloads keep a window in flight. */
    static final int CHUNK = 8 << 20;
    private static final int WINDOW = 4;

    @ObjectClassDefinition(name = "vgpu remote backend", description = "A GPU on another host, over TLS 1.3")
    public @interface Config {
        @AttributeDefinition(description = "backend.id this host's GPU registers under, e.g. gpu1")
        String backend_id() default "";

        @AttributeDefinition(description = "The host's name or address")
        String address() default "";

        int port() default 7447;

        @AttributeDefinition(description = "backend.id on the host; empty: the one the host serves by default")
        String remote_backend() default "";

        @AttributeDefinition(description = "This guest's PKCS#12 key and certificate (relative to conf/)")
        String identity() default "remote/identity.p12";

        String identity_password_file() default "remote/identity.pass";

        @AttributeDefinition(description = "The host's pinned certificate (relative to conf/), e.g. remote/hosts/gpu1.crt")
        String trust() default "";

        @AttributeDefinition(description = "Connect without TLS: loopback tests only, refused for any other address")
        boolean plaintext() default false;

        int heartbeat_ms() default 1000;

        @AttributeDefinition(description = "The link is declared dead after this long without an answer")
        int timeout_ms() default 3000;

        @AttributeDefinition(description = "How long activation waits for the first connection")
        int connect_wait_ms() default 3000;
    }

    private static final class Ctx {
        final long host;
        final int gen;
        final long owner;

        Ctx(long host, int gen, long owner) {
            this.host = host;
            this.gen = gen;
            this.owner = owner;
        }
    }

    private static final class Obj {
        final long host;
        final Ctx ctx;
        final long a;
        final long b;

        Obj(long host, Ctx ctx, long a, long b) {
            this.host = host;
            this.ctx = ctx;
            this.a = a;
            this.b = b;
        }
    }

    private String id = "";
    private Config config;
    private String where = "";
    private volatile Link link;
    private volatile int generation;
    private volatile String reason = "not connected yet";
    /** The guest core's window (the core tells it when it binds this backend). */
    private volatile AddressWindow window = AddressWindow.DEFAULT;
    /** The window the live link announced in its REMOTE_HELLO. */
    private volatile AddressWindow announced;
    /** Wakes the keeper early: the link must be made again now. */
    private final Object wake = new Object();
    private volatile String lastLoggedFailure;
    private volatile String lostBecause;
    private volatile String description = "remote GPU";
    private volatile DeviceInfo[] devices = new DeviceInfo[0];
    private volatile boolean running;
    private Thread keeper;
    private final CountDownLatch firstAttempt = new CountDownLatch(1);
    private final AtomicLong handles = new AtomicLong(0x5000);
    private final Map<Long, Ctx> contexts = new ConcurrentHashMap<>();
    private final Map<Long, Obj> streams = new ConcurrentHashMap<>();
    private final Map<Long, Obj> events = new ConcurrentHashMap<>();
    /** Modules: a = globals base, b = globals size. */
    private final Map<Long, Obj> modules = new ConcurrentHashMap<>();
    /** Functions: a = the module's local handle. */
    private final Map<Long, Obj> functions = new ConcurrentHashMap<>();
    private final Map<Long, Obj> memHandles = new ConcurrentHashMap<>();
    /** Per owner: mapped ranges, start -> {size, local ctx}. */
    private final Map<Long, TreeMap<Long, long[]>> ranges = new ConcurrentHashMap<>();

    public RemoteBackend() {}

    /** For tests outside a framework. */
    public RemoteBackend(Config config) {
        activate(config);
    }

    /** For tests outside a framework: a guest whose core's window is {@code window}. */
    public RemoteBackend(Config config, AddressWindow window) {
        activateIn(config, window);
    }

    @Activate
    void activate(Config config) {
        activateIn(config, Configs.routerWindow(RemoteListener.confDir()));
    }

    /**
     * The first link is made during activation, before the core binds this backend and tells it
     * the window (addressWindow); the core's own configuration file says it already, so the host
     * does not see (and refuse) a default window first.
     */
    private void activateIn(Config config, AddressWindow configured) {
        window = configured;
        this.config = config;
        id = config.backend_id();
        where = config.address() + ":" + config.port();
        description = "remote GPU at " + where;
        if (config.address().isBlank()) {
            reason = "no address configured";
            LOG.warn("remote backend {}: no address in its configuration; it stays unavailable", id);
            return;
        }
        running = true;
        keeper = new Thread(this::keep, "vgpu-remote-" + id);
        keeper.setDaemon(true);
        keeper.start();
        try {
            firstAttempt.await(config.connect_wait_ms(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Deactivate
    public void deactivate() {
        running = false;
        if (keeper != null) {
            keeper.interrupt();
        }
        Link l = link;
        if (l != null) {
            l.post(Frames.request(Wire.GOODBYE, 0, false), null, true);
            l.kill("the backend stops");
        }
    }

    /** Connects, keeps the link alive with heartbeats, and reconnects after a failure. */
    private void keep() {
        while (running) {
            Link l = link;
            if (l != null && l.alive() && !window.equals(announced)) {
                // The core announced its window while this link was being made with the one before.
                reannounce(l);
            } else if (l != null && l.alive()) {
                l.tick();
            } else {
                try {
                    connect();
                } catch (IOException | java.security.GeneralSecurityException | RuntimeException e) {
                    // After a loss, the loss stays the first thing the reason says until a connection
                    // succeeds; it has named the host already, and the reason travels in 127 bytes
                    // (BACKEND record), so the retry's failure follows without it.
                    String lost = lostBecause;
                    if (e instanceof Handshake.Refused) {
                        // The host's reason says what to change; the description names the host.
                        fail("refused: " + ((Handshake.Refused) e).reason);
                    } else {
                        fail((lost != null ? lost + "; cannot connect: " : "cannot connect to " + where + ": ") + Tls.rootMessage(e));
                    }
                }
                firstAttempt.countDown();
            }
            try {
                synchronized (wake) {
                    wake.wait(Math.max(50, config.heartbeat_ms()));
                }
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private void fail(String why) {
        reason = why;
        if (!why.equals(lastLoggedFailure)) {
            lastLoggedFailure = why;
            LOG.warn("remote backend {} unavailable: {} (retrying every {} ms)", id, why, config.heartbeat_ms());
        }
    }

    private void connect() throws IOException, java.security.GeneralSecurityException {
        Socket raw = new Socket();
        boolean ok = false;
        try {
            int timeout = config.timeout_ms();
            raw.connect(new InetSocketAddress(config.address(), config.port()), timeout);
            raw.setTcpNoDelay(true);
            raw.setSoTimeout(timeout);
            Socket s = raw;
            if (config.plaintext()) {
                if (!raw.getInetAddress().isLoopbackAddress()) {
                    throw new IOException("plaintext = true is only allowed to a loopback address, not " + where);
                }
            } else {
                SSLContext ctx = Tls.context(RemoteListener.resolve(config.identity()),
                        RemoteListener.resolve(config.identity_password_file()), RemoteListener.resolve(config.trust()));
                s = Tls.client(ctx, raw, config.address(), config.port());
            }
            Link l = new Link(raw, s, config.timeout_ms(), this::linkDied);
            AddressWindow w = window;
            Handshake.Served served = Handshake.hello(l, config.remote_backend(), w);
            announced = w;
            DeviceInfo[] devs = served.devices;
            String hostDescription = served.description;
            raw.setSoTimeout(0);
            generation++;
            devices = devs;
            description = hostDescription + " on " + where + " (" + served.backend + ")";
            link = l;
            l.onDraining = this::hostDraining;
            l.startReader(id);
            ok = true;
            lastLoggedFailure = null;
            lostBecause = null;
            reason = null;
            LOG.info("remote backend {} connected to {}: {}", id, where, devs.length > 0 ? devs[0] : hostDescription);
        } finally {
            if (!ok) {
                raw.close();
            }
        }
    }

    /**
     * The host keeps guests apart by the windows their links announced, so a link made with
     * another window is made again with this one, at once. The core changes the window only while
     * no session is open, so nothing on the link is lost.
     */
    @Override
    public void addressWindow(long base, long size) {
        AddressWindow w = new AddressWindow(base, size);
        window = w;
        Link l = link;
        if (l != null && l.alive() && !w.equals(announced)) {
            reannounce(l);
        }
    }

    private synchronized void reannounce(Link l) {
        if (!l.alive()) {
            return;
        }
        LOG.info("remote backend {}: device address window {}: connecting to {} again to announce it", id, window, where);
        reconnecting = true;
        l.kill("the device address window changed");
        synchronized (wake) {
            wake.notifyAll();
        }
    }

    private volatile boolean reconnecting;

    private void linkDied(String why) {
        if (reconnecting) {
            reconnecting = false;
            reason = "connecting again to announce device address window " + window;
            return;
        }
        if (!running) {
            reason = "stopped";
            return;
        }
        lostBecause = "link to " + where + " lost: " + why;
        fail(lostBecause);
    }

    private final java.util.List<Runnable> drainListeners = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * The host goes away in order and waits a while for this guest's work to leave: tell the core
     * (off the link's reading thread, which the sessions' moves need) so it moves them elsewhere.
     */
    private void hostDraining() {
        LOG.info("remote backend {}: host {} is draining; its sessions move elsewhere", id, where);
        Thread t = new Thread(() -> drainListeners.forEach(Runnable::run), "vgpu-remote-drain-" + id);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void onDraining(Runnable listener) {
        drainListeners.add(listener);
    }

    // ---------------------------------------------------------------- helpers

    private Link live() {
        Link l = link;
        return l != null && l.alive() ? l : null;
    }

    private boolean stale(Ctx c) {
        return c.gen != generation || live() == null;
    }

    private static ByteBuffer req(int op, int fixed, int tail, boolean async) {
        return Frames.request(op, fixed + tail, async);
    }

    private static final int P = Wire.HEADER;

    private int call(ByteBuffer frame) {
        Link l = live();
        return l == null ? CuResult.DEVICE_UNAVAILABLE : l.call(frame, null).result;
    }

    private Link.Reply callReply(ByteBuffer frame) {
        Link l = live();
        return l == null ? null : l.call(frame, null);
    }

    private int post(ByteBuffer frame, ByteBuffer tail, boolean flush) {
        Link l = live();
        return l == null ? CuResult.DEVICE_UNAVAILABLE : l.post(frame, tail, flush);
    }

    /** The host handle of a local stream (0 is the default stream), or -1 when it is not ours or stale. */
    private long hostStream(long s, Ctx expected) {
        if (s == 0) {
            return 0;
        }
        Obj o = streams.get(s);
        return o == null || (expected != null && o.ctx.owner != expected.owner) ? -1 : o.host;
    }

    private boolean covered(long owner, long address, long size) {
        TreeMap<Long, long[]> m = ranges.get(owner);
        if (m == null || size < 0) {
            return false;
        }
        synchronized (m) {
            long at = address;
            long end = address + size;
            if (size == 0) {
                Map.Entry<Long, long[]> e = m.floorEntry(address);
                return e != null && e.getKey() + e.getValue()[0] > address;
            }
            while (at < end) {
                Map.Entry<Long, long[]> e = m.floorEntry(at);
                if (e == null || e.getKey() + e.getValue()[0] <= at) {
                    return false;
                }
                at = e.getKey() + e.getValue()[0];
            }
            return true;
        }
    }

    private void addRange(Ctx c, long local, long address, long size) {
        TreeMap<Long, long[]> m = ranges.computeIfAbsent(c.owner, k -> new TreeMap<>());
        synchronized (m) {
            m.put(address, new long[] {size, local});
        }
    }

    private void removeRange(long owner, long address) {
        TreeMap<Long, long[]> m = ranges.get(owner);
        if (m != null) {
            synchronized (m) {
                m.remove(address);
            }
        }
    }

    // ---------------------------------------------------------------- CudaService

    @Override
    public BackendInfo info() {
        BackendInfo b = new BackendInfo();
        b.id = id;
        b.description = description;
        Link l = live();
        b.draining = l != null && l.hostDraining();
        b.available = l != null && l.hostAvailable() && !b.draining;
        b.reason = b.available ? null : l == null ? reason : l.hostDraining() ? "host draining"
                : "the host reports its backend unavailable";
        return b;
    }

    @Override
    public DeviceInfo[] devices() {
        // The last list the host sent, also while the link is down (so ordinals stay meaningful);
        // info().available says whether they can be reached.
        DeviceInfo[] d = devices;
        DeviceInfo[] out = new DeviceInfo[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = d[i].copy();
        }
        return out;
    }

    @Override
    public int memGetInfo(int device, long[] out) {
        ByteBuffer q = req(Wire.MEM_GET_INFO, Wire.MemGetInfo.REQ_FIXED, 0, false);
        q.putInt(P + Wire.MemGetInfo.REQ_DEVICE, device);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            out[0] = r.payload.getLong(Wire.MemGetInfo.REP_FREE);
            out[1] = r.payload.getLong(Wire.MemGetInfo.REP_TOTAL);
        }
        return r.result;
    }

    @Override
    public int ctxCreate(int device, int flags, long owner, long[] ctx) {
        ByteBuffer q = req(Wire.REMOTE_CTX_CREATE, Wire.RemoteCtxCreate.REQ_FIXED, 0, false);
        q.putInt(P + Wire.RemoteCtxCreate.REQ_DEVICE, device).putInt(P + Wire.RemoteCtxCreate.REQ_FLAGS, flags)
                .putLong(P + Wire.RemoteCtxCreate.REQ_OWNER, owner);
        int gen = generation;
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            contexts.put(local, new Ctx(r.payload.getLong(Wire.RemoteCtxCreate.REP_CTX), gen, owner));
            ctx[0] = local;
        }
        return r.result;
    }

    @Override
    public int ctxDestroy(long ctx) {
        Ctx c = contexts.remove(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        streams.values().removeIf(o -> o.ctx == c);
        events.values().removeIf(o -> o.ctx == c);
        modules.values().removeIf(o -> o.ctx == c);
        functions.values().removeIf(o -> o.ctx == c);
        TreeMap<Long, long[]> m = ranges.get(c.owner);
        if (m != null) {
            synchronized (m) {
                m.values().removeIf(v -> v[1] == ctx);
            }
        }
        if (stale(c)) {
            // The host released it when the link it lived on broke.
            return CuResult.SUCCESS;
        }
        ByteBuffer q = req(Wire.CTX_DESTROY, Wire.CtxDestroy.REQ_FIXED, 0, false);
        q.putLong(P + Wire.CtxDestroy.REQ_CTX, c.host);
        return call(q);
    }

    @Override
    public int ctxSynchronize(long ctx) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.CTX_SYNCHRONIZE, Wire.CtxSynchronize.REQ_FIXED, 0, false);
        q.putLong(P + Wire.CtxSynchronize.REQ_CTX, c.host);
        return call(q);
    }

    @Override
    public int memAlloc(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.REMOTE_MEM_ALLOC, Wire.RemoteMemAlloc.REQ_FIXED, 0, false);
        q.putLong(P + Wire.RemoteMemAlloc.REQ_CTX, c.host).putLong(P + Wire.RemoteMemAlloc.REQ_ADDRESS, address)
                .putLong(P + Wire.RemoteMemAlloc.REQ_SIZE, size);
        int rc = call(q);
        if (rc == CuResult.SUCCESS) {
            addRange(c, ctx, address, size);
        }
        return rc;
    }

    @Override
    public int memFree(long ctx, long address) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            removeRange(c.owner, address);
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.MEM_FREE, Wire.MemFree.REQ_FIXED, 0, false);
        q.putLong(P + Wire.MemFree.REQ_CTX, c.host).putLong(P + Wire.MemFree.REQ_PTR, address);
        int rc = call(q);
        if (rc == CuResult.SUCCESS) {
            removeRange(c.owner, address);
        }
        return rc;
    }

    @Override
    public int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, c);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        int n = src.remaining();
        if (!covered(c.owner, dst, n)) {
            return CuResult.INVALID_VALUE;
        }
        // Fire-and-forget in chunks: the host runs them in order before anything sent later.
        int rc = CuResult.SUCCESS;
        for (int off = 0; off < n && rc == CuResult.SUCCESS; off += CHUNK) {
            int len = Math.min(CHUNK, n - off);
            ByteBuffer q = Frames.request(Wire.MEMCPY_HTOD, Wire.MemcpyHtod.REQ_FIXED + len, true);
            q.limit(P + Wire.MemcpyHtod.REQ_FIXED);
            q.putLong(P + Wire.MemcpyHtod.REQ_CTX, c.host).putLong(P + Wire.MemcpyHtod.REQ_DST, dst + off)
                    .putLong(P + Wire.MemcpyHtod.REQ_STREAM, s);
            ByteBuffer tail = src.duplicate();
            tail.position(src.position() + off).limit(src.position() + off + len);
            rc = post(q, tail, n > 65536 && off + len == n);
        }
        if (rc == CuResult.SUCCESS) {
            src.position(src.position() + n);
        }
        return rc;
    }

    @Override
    public int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, c);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        int n = dst.remaining();
        if (!covered(c.owner, src, n)) {
            return CuResult.INVALID_VALUE;
        }
        Link l = live();
        if (l == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (n == 0) {
            return CuResult.SUCCESS;
        }
        // Pipelined: up to WINDOW chunk requests in flight, replies consumed in order, each read
        // straight into its part of dst.
        ArrayDeque<CompletableFuture<Link.Reply>> inFlight = new ArrayDeque<>();
        Link.Sink sink = new Link.Sink();
        int sent = 0;
        int received = 0;
        int rc = CuResult.SUCCESS;
        int base = dst.position();
        while (received < n) {
            while (sent < n && inFlight.size() < WINDOW) {
                int len = Math.min(CHUNK, n - sent);
                ByteBuffer q = req(Wire.MEMCPY_DTOH, Wire.MemcpyDtoh.REQ_FIXED, 0, false);
                q.putLong(P + Wire.MemcpyDtoh.REQ_CTX, c.host).putLong(P + Wire.MemcpyDtoh.REQ_SRC, src + sent)
                        .putLong(P + Wire.MemcpyDtoh.REQ_STREAM, s).putLong(P + Wire.MemcpyDtoh.REQ_SIZE, len);
                ByteBuffer into = dst.duplicate();
                into.limit(base + sent + len).position(base + sent);
                inFlight.add(l.send(q, into, sink));
                sent += len;
            }
            Link.Reply r = l.await(inFlight.poll());
            int len = Math.min(CHUNK, n - received);
            if (r.result != CuResult.SUCCESS) {
                if (rc == CuResult.SUCCESS) {
                    rc = r.result;
                }
                if (r.result == CuResult.DEVICE_UNAVAILABLE) {
                    sink.abandon();
                    return rc;
                }
            } else if (rc == CuResult.SUCCESS && !r.direct) {
                dst.put(base + received, r.payload.array(), 0, Math.min(len, r.payload.capacity()));
            }
            received += len;
        }
        if (rc == CuResult.SUCCESS) {
            dst.position(base + n);
        }
        return rc;
    }

    @Override
    public int memcpyDtoD(long ctx, long dst, long src, long size, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, c);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        if (!covered(c.owner, dst, size) || !covered(c.owner, src, size)) {
            return CuResult.INVALID_VALUE;
        }
        ByteBuffer q = req(Wire.MEMCPY_DTOD, Wire.MemcpyDtod.REQ_FIXED, 0, true);
        q.putLong(P + Wire.MemcpyDtod.REQ_CTX, c.host).putLong(P + Wire.MemcpyDtod.REQ_DST, dst)
                .putLong(P + Wire.MemcpyDtod.REQ_SRC, src).putLong(P + Wire.MemcpyDtod.REQ_SIZE, size)
                .putLong(P + Wire.MemcpyDtod.REQ_STREAM, s);
        return post(q, null, false);
    }

    @Override
    public int memset(long ctx, long dst, int value, int elementSize, long count, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, c);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        if (elementSize != 1 && elementSize != 2 && elementSize != 4) {
            return CuResult.INVALID_VALUE;
        }
        if (!covered(c.owner, dst, count * elementSize)) {
            return CuResult.INVALID_VALUE;
        }
        ByteBuffer q = req(Wire.MEMSET, Wire.Memset.REQ_FIXED, 0, true);
        q.putLong(P + Wire.Memset.REQ_CTX, c.host).putLong(P + Wire.Memset.REQ_DST, dst).putLong(P + Wire.Memset.REQ_COUNT, count)
                .putLong(P + Wire.Memset.REQ_STREAM, s).putInt(P + Wire.Memset.REQ_VALUE, value)
                .putInt(P + Wire.Memset.REQ_ELEMENT_SIZE, elementSize);
        return post(q, null, false);
    }

    @Override
    public int memCreate(long ctx, long size, long[] handle) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.REMOTE_MEM_CREATE, Wire.RemoteMemCreate.REQ_FIXED, 0, false);
        q.putLong(P + Wire.RemoteMemCreate.REQ_CTX, c.host).putLong(P + Wire.RemoteMemCreate.REQ_SIZE, size);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            memHandles.put(local, new Obj(r.payload.getLong(Wire.RemoteMemCreate.REP_HANDLE), c, size, 0));
            handle[0] = local;
        }
        return r.result;
    }

    @Override
    public int memRelease(long handle) {
        Obj o = memHandles.get(handle);
        if (o == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(o.ctx)) {
            memHandles.remove(handle);
            return CuResult.SUCCESS;
        }
        ByteBuffer q = req(Wire.MEM_RELEASE, Wire.MemRelease.REQ_FIXED, 0, false);
        q.putLong(P + Wire.MemRelease.REQ_HANDLE, o.host);
        int rc = call(q);
        if (rc == CuResult.SUCCESS) {
            memHandles.remove(handle);
        }
        return rc;
    }

    @Override
    public int memMap(long ctx, long address, long size, long offset, long handle) {
        Ctx c = contexts.get(ctx);
        Obj o = memHandles.get(handle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (o == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(c) || stale(o.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.REMOTE_MEM_MAP, Wire.RemoteMemMap.REQ_FIXED, 0, false);
        q.putLong(P + Wire.RemoteMemMap.REQ_CTX, c.host).putLong(P + Wire.RemoteMemMap.REQ_PTR, address)
                .putLong(P + Wire.RemoteMemMap.REQ_SIZE, size).putLong(P + Wire.RemoteMemMap.REQ_OFFSET, offset)
                .putLong(P + Wire.RemoteMemMap.REQ_HANDLE, o.host);
        int rc = call(q);
        if (rc == CuResult.SUCCESS) {
            addRange(c, ctx, address, size);
        }
        return rc;
    }

    @Override
    public int memUnmap(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            removeRange(c.owner, address);
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.REMOTE_MEM_UNMAP, Wire.RemoteMemUnmap.REQ_FIXED, 0, false);
        q.putLong(P + Wire.RemoteMemUnmap.REQ_CTX, c.host).putLong(P + Wire.RemoteMemUnmap.REQ_PTR, address)
                .putLong(P + Wire.RemoteMemUnmap.REQ_SIZE, size);
        int rc = call(q);
        if (rc == CuResult.SUCCESS) {
            removeRange(c.owner, address);
        }
        return rc;
    }

    @Override
    public int moduleLoad(long ctx, ModuleImage image, long globalsBase, long[] module) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = ModuleCodec.encode(c.host, image, globalsBase);
        if (q.limit() - P > Frame.MAX_PAYLOAD) {
            LOG.warn("remote backend {}: a module image of {} bytes exceeds the link's frame limit", id, q.limit());
            return CuResult.NOT_SUPPORTED;
        }
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            modules.put(local, new Obj(r.payload.getLong(Wire.RemoteModuleLoad.REP_MODULE), c, globalsBase, image.globalsSize));
            if (image.globalsSize > 0) {
                addRange(c, ctx, globalsBase, image.globalsSize);
            }
            module[0] = local;
        }
        return r.result;
    }

    @Override
    public int moduleUnload(long module) {
        Obj o = modules.get(module);
        if (o == null) {
            return CuResult.INVALID_HANDLE;
        }
        int rc = CuResult.SUCCESS;
        if (!stale(o.ctx)) {
            ByteBuffer q = req(Wire.MODULE_UNLOAD, Wire.ModuleUnload.REQ_FIXED, 0, false);
            q.putLong(P + Wire.ModuleUnload.REQ_MODULE, o.host);
            rc = call(q);
        }
        if (rc == CuResult.SUCCESS || stale(o.ctx)) {
            modules.remove(module);
            functions.values().removeIf(f -> f.a == module);
            if (o.b > 0) {
                removeRange(o.ctx.owner, o.a);
            }
        }
        return rc;
    }

    @Override
    public int functionGet(long module, String name, long[] function) {
        Obj o = modules.get(module);
        if (o == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(o.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer q = req(Wire.REMOTE_FUNCTION_GET, Wire.RemoteFunctionGet.REQ_FIXED, n.length, false);
        q.putLong(P + Wire.RemoteFunctionGet.REQ_MODULE, o.host);
        q.put(P + Wire.RemoteFunctionGet.REQ_NAME, n);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            functions.put(local, new Obj(r.payload.getLong(Wire.RemoteFunctionGet.REP_FUNCTION), o.ctx, module, 0));
            function[0] = local;
        }
        return r.result;
    }

    @Override
    public int functionGetAttribute(long function, int attribute, int[] value) {
        Obj f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(f.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.FUNCTION_GET_ATTRIBUTE, Wire.FunctionGetAttribute.REQ_FIXED, 0, false);
        q.putLong(P + Wire.FunctionGetAttribute.REQ_FUNCTION, f.host).putInt(P + Wire.FunctionGetAttribute.REQ_ATTRIBUTE, attribute);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            value[0] = r.payload.getInt(Wire.FunctionGetAttribute.REP_VALUE);
        }
        return r.result;
    }

    @Override
    public int launch(long function, LaunchConfig config, ByteBuffer params, long stream) {
        Obj f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(f.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, f.ctx);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        int n = params.remaining();
        if (n > Frame.MAX_PAYLOAD - Wire.Launch.REQ_FIXED) {
            return CuResult.INVALID_VALUE;
        }
        ByteBuffer q = req(Wire.LAUNCH, Wire.Launch.REQ_FIXED, n, true);
        q.putLong(P + Wire.Launch.REQ_FUNCTION, f.host).putLong(P + Wire.Launch.REQ_STREAM, s)
                .putInt(P + Wire.Launch.REQ_GRID_X, config.gridX).putInt(P + Wire.Launch.REQ_GRID_Y, config.gridY)
                .putInt(P + Wire.Launch.REQ_GRID_Z, config.gridZ).putInt(P + Wire.Launch.REQ_BLOCK_X, config.blockX)
                .putInt(P + Wire.Launch.REQ_BLOCK_Y, config.blockY).putInt(P + Wire.Launch.REQ_BLOCK_Z, config.blockZ)
                .putInt(P + Wire.Launch.REQ_SHARED_MEM, config.sharedMemBytes);
        q.put(P + Wire.Launch.REQ_PARAMS, params, params.position(), n);
        return post(q, null, false);
    }

    @Override
    public int streamCreate(long ctx, int flags, int priority, long[] stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.STREAM_CREATE, Wire.StreamCreate.REQ_FIXED, 0, false);
        q.putLong(P + Wire.StreamCreate.REQ_CTX, c.host).putInt(P + Wire.StreamCreate.REQ_FLAGS, flags)
                .putInt(P + Wire.StreamCreate.REQ_PRIORITY, priority);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            streams.put(local, new Obj(r.payload.getLong(Wire.StreamCreate.REP_STREAM), c, 0, 0));
            stream[0] = local;
        }
        return r.result;
    }

    private int streamOp(int op, long stream) {
        Obj o = stream == 0 ? null : streams.get(stream);
        if (stream != 0 && o == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (o != null && stale(o.ctx)) {
            if (op == Wire.STREAM_DESTROY) {
                streams.remove(stream);
                return CuResult.SUCCESS;
            }
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(op, Wire.StreamSynchronize.REQ_FIXED, 0, false);
        q.putLong(P + Wire.StreamSynchronize.REQ_STREAM, o == null ? 0 : o.host);
        int rc = call(q);
        if (op == Wire.STREAM_DESTROY && rc == CuResult.SUCCESS) {
            streams.remove(stream);
        }
        return rc;
    }

    @Override
    public int streamDestroy(long stream) {
        return stream == 0 ? CuResult.INVALID_HANDLE : streamOp(Wire.STREAM_DESTROY, stream);
    }

    @Override
    public int streamSynchronize(long stream) {
        return streamOp(Wire.STREAM_SYNCHRONIZE, stream);
    }

    @Override
    public int streamQuery(long stream) {
        return streamOp(Wire.STREAM_QUERY, stream);
    }

    @Override
    public int streamWaitEvent(long stream, long event) {
        Obj e = events.get(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(e.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, null);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        ByteBuffer q = req(Wire.STREAM_WAIT_EVENT, Wire.StreamWaitEvent.REQ_FIXED, 0, true);
        q.putLong(P + Wire.StreamWaitEvent.REQ_STREAM, s).putLong(P + Wire.StreamWaitEvent.REQ_EVENT, e.host);
        return post(q, null, false);
    }

    @Override
    public int eventCreate(long ctx, int flags, long[] event) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (stale(c)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.EVENT_CREATE, Wire.EventCreate.REQ_FIXED, 0, false);
        q.putLong(P + Wire.EventCreate.REQ_CTX, c.host).putInt(P + Wire.EventCreate.REQ_FLAGS, flags);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            long local = handles.incrementAndGet();
            events.put(local, new Obj(r.payload.getLong(Wire.EventCreate.REP_EVENT), c, 0, 0));
            event[0] = local;
        }
        return r.result;
    }

    private int eventOp(int op, long event) {
        Obj e = events.get(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(e.ctx)) {
            if (op == Wire.EVENT_DESTROY) {
                events.remove(event);
                return CuResult.SUCCESS;
            }
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(op, Wire.EventQuery.REQ_FIXED, 0, false);
        q.putLong(P + Wire.EventQuery.REQ_EVENT, e.host);
        int rc = call(q);
        if (op == Wire.EVENT_DESTROY && rc == CuResult.SUCCESS) {
            events.remove(event);
        }
        return rc;
    }

    @Override
    public int eventDestroy(long event) {
        return eventOp(Wire.EVENT_DESTROY, event);
    }

    @Override
    public int eventRecord(long event, long stream) {
        Obj e = events.get(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(e.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        long s = hostStream(stream, null);
        if (s < 0) {
            return CuResult.INVALID_HANDLE;
        }
        ByteBuffer q = req(Wire.EVENT_RECORD, Wire.EventRecord.REQ_FIXED, 0, true);
        q.putLong(P + Wire.EventRecord.REQ_EVENT, e.host).putLong(P + Wire.EventRecord.REQ_STREAM, s);
        return post(q, null, false);
    }

    @Override
    public int eventQuery(long event) {
        return eventOp(Wire.EVENT_QUERY, event);
    }

    @Override
    public int eventSynchronize(long event) {
        return eventOp(Wire.EVENT_SYNCHRONIZE, event);
    }

    @Override
    public int eventElapsedTime(long start, long end, float[] millis) {
        Obj a = events.get(start);
        Obj b = events.get(end);
        if (a == null || b == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (stale(a.ctx) || stale(b.ctx)) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        ByteBuffer q = req(Wire.EVENT_ELAPSED_TIME, Wire.EventElapsedTime.REQ_FIXED, 0, false);
        q.putLong(P + Wire.EventElapsedTime.REQ_START, a.host).putLong(P + Wire.EventElapsedTime.REQ_END, b.host);
        Link.Reply r = callReply(q);
        if (r == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (r.result == CuResult.SUCCESS) {
            millis[0] = r.payload.getFloat(Wire.EventElapsedTime.REP_MILLIS);
        }
        return r.result;
    }

    /** Round trip of a PING through the link (ordered with the work), for benchmarks; -1 when down. */
    public long pingNanos() {
        long t = System.nanoTime();
        int rc = call(req(Wire.PING, 0, 0, false));
        return rc == CuResult.SUCCESS ? System.nanoTime() - t : -1;
    }
}
