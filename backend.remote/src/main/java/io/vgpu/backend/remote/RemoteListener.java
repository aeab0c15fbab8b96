package io.vgpu.backend.remote;

import io.vgpu.api.CudaService;
import io.vgpu.backend.remote.internal.PeerConnection;
import io.vgpu.backend.remote.internal.Tls;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.net.ssl.SSLContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves this host's backends to paired guests over TLS 1.3 (docs/PROTOCOL.md, "Remote"). Off
 * unless {@code conf/io.vgpu.remote.listener.cfg} exists ({@code vgpu remote listen} writes it).
 * Each guest connection is one {@link PeerConnection}: its own threads, its own handles, its own
 * owners on the backend and its own memory budget; a misbehaving guest is disconnected alone.
 */
@Component(service = RemoteListener.class, configurationPid = RemoteListener.PID, configurationPolicy = ConfigurationPolicy.REQUIRE,
        immediate = true)
@Designate(ocd = RemoteListener.Config.class)
public class RemoteListener {
    public static final String PID = "io.vgpu.remote.listener";
    private static final Logger LOG = LoggerFactory.getLogger(RemoteListener.class);

    @ObjectClassDefinition(name = "vgpu remote listener", description = "Serves this host's backends to paired guests")
    public @interface Config {
        @AttributeDefinition(description = "Address to listen on")
        String address() default "0.0.0.0";

        int port() default 7447;

        @AttributeDefinition(description = "backend.id served to guests that do not name one")
        String backend() default "mock";

        @AttributeDefinition(description = "backend.ids a guest may name, comma separated; empty: only 'backend'")
        String backends() default "";

        @AttributeDefinition(description = "PKCS#12 key and certificate of this host (relative to conf/)")
        String identity() default "remote/identity.p12";

        @AttributeDefinition(description = "File holding the PKCS#12 password (relative to conf/)")
        String identity_password_file() default "remote/identity.pass";

        @AttributeDefinition(description = "Pinned guest certificates: a directory of *.crt or one file (relative to conf/)")
        String trust() default "remote/peers";

        @AttributeDefinition(description = "Serve without TLS: for loopback tests only, refused on any other address")
        boolean plaintext() default false;

        int max_peers() default 16;

        @AttributeDefinition(description = "Device memory one guest may hold, MiB; 0: no limit besides the device's")
        long peer_memory_mib() default 0;

        @AttributeDefinition(description = "Requests one guest may have queued, MiB (backpressure beyond)")
        int peer_queue_mib() default 128;

        @AttributeDefinition(description = "A guest silent for this long (it sends heartbeats every second) is dropped")
        int idle_timeout_ms() default 10000;

        @AttributeDefinition(description = "When the listener stops in order, how long guests get to move their work "
                + "elsewhere before the links close; 0: close at once")
        int drain_seconds() default 10;
    }

    private final Map<String, CudaService> backendsById = new ConcurrentHashMap<>();
    private final Set<PeerConnection> peers = ConcurrentHashMap.newKeySet();
    private volatile ServerSocket server;
    private volatile Thread acceptor;
    private volatile Config config;
    private volatile SSLContext tls;
    private volatile Set<String> allowed;
    /** Certificate fingerprint -> the name it is pinned under (its file in the trust directory). */
    private volatile Map<String, String> pinnedNames = Map.of();
    private volatile boolean draining;
    private volatile String lastDrain;
    /** Counted down when deactivate has drained and closed; what {@link #awaitStopped} waits for. */
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile Thread shutdownWait;

    public RemoteListener() {}

    /** For tests outside a framework: serve {@code backends} with {@code config}. */
    public RemoteListener(Config config, Map<String, CudaService> backends) throws IOException {
        backendsById.putAll(backends);
        activate(config);
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC, policyOption = ReferencePolicyOption.GREEDY)
    void addBackend(CudaService service, Map<String, Object> props) {
        Object id = props.get(CudaService.BACKEND_ID);
        if (id != null && !id.toString().isBlank() && !(service instanceof RemoteBackend)) {
            backendsById.put(id.toString(), service);
        }
    }

    void removeBackend(CudaService service, Map<String, Object> props) {
        Object id = props.get(CudaService.BACKEND_ID);
        if (id != null) {
            backendsById.remove(id.toString(), service);
        }
    }

    static Path confDir() {
        String d = System.getProperty("felix.fileinstall.dir");
        if (d == null) {
            d = System.getenv("VGPU_CONF");
        }
        return Path.of(d == null ? "conf" : d);
    }

    static Path resolve(String p) {
        return confDir().resolve(p);
    }

    /**
     * As a DS component: {@link #activate}, plus a JVM shutdown hook that waits until this listener
     * has stopped (at most drain.seconds and 10 s more). The JVM ends as soon as its shutdown hooks
     * return, and the core's, which stops the framework and so this listener, gives up after 10 s:
     * without this one a SIGTERM would cut a longer drain short, and the guests' moves with it.
     */
    @Activate
    void start(Config config) throws IOException {
        activate(config);
        if (server != null && config.drain_seconds() > 0) {
            Thread t = new Thread(() -> awaitStopped(config.drain_seconds() + 10L), "vgpu-remote-drain-wait");
            Runtime.getRuntime().addShutdownHook(t);
            shutdownWait = t;
        }
    }

    /** Returns once {@link #deactivate} has finished, or after {@code seconds}; false then. */
    boolean awaitStopped(long seconds) {
        try {
            return stopped.await(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The shutdown hook {@link #start} registered; null without one. */
    Thread shutdownWait() {
        return shutdownWait;
    }

    void activate(Config config) throws IOException {
        this.config = config;
        InetAddress bind = InetAddress.getByName(config.address());
        if (config.plaintext()) {
            if (!bind.isLoopbackAddress()) {
                LOG.error("remote listener NOT started: plaintext = true is only allowed on a loopback address, not {}",
                        config.address());
                return;
            }
            LOG.warn("remote listener serves WITHOUT TLS on {} (plaintext = true, for loopback tests only)", config.address());
        } else {
            try {
                tls = Tls.context(resolve(config.identity()), resolve(config.identity_password_file()), resolve(config.trust()));
                pinnedNames = Tls.pinnedNames(resolve(config.trust()));
            } catch (IOException | java.security.GeneralSecurityException e) {
                LOG.error("remote listener NOT started: cannot set up TLS from identity {} and trust {}: {} "
                        + "(vgpu remote init creates the identity; vgpu remote trust pairs a guest)", resolve(config.identity()),
                        resolve(config.trust()), Tls.rootMessage(e));
                return;
            }
        }
        String list = config.backends().isBlank() ? config.backend() : config.backends() + "," + config.backend();
        allowed = Arrays.stream(list.split(",")).map(String::trim).filter(s -> !s.isEmpty()).collect(Collectors.toSet());
        ServerSocket ss = new ServerSocket();
        ss.setReuseAddress(true);
        ss.bind(new InetSocketAddress(bind, config.port()), 64);
        server = ss;
        Thread t = new Thread(this::accept, "vgpu-remote-listener");
        t.setDaemon(true);
        acceptor = t;
        t.start();
        LOG.info("remote listener on {}:{} ({}), serving backend {} to {} paired guest certificate(s) in {}", config.address(),
                ss.getLocalPort(), config.plaintext() ? "plaintext" : "TLS 1.3, pinned client certificates", allowed,
                tls == null ? 0 : pinnedCount(), config.plaintext() ? "-" : resolve(config.trust()));
    }

    private int pinnedCount() {
        try {
            return Tls.load(resolve(config.trust())).size();
        } catch (Exception e) {
            return 0;
        }
    }

    /** The port actually bound (for port = 0 in tests). */
    public int port() {
        ServerSocket s = server;
        return s == null ? -1 : s.getLocalPort();
    }

    @Deactivate
    public void deactivate() {
        drain();
        ServerSocket s = server;
        server = null;
        if (s != null) {
            try {
                s.close();
            } catch (IOException e) {
                // closing: nothing to do
            }
        }
        for (PeerConnection p : peers) {
            p.close("the listener stops");
        }
        LOG.info("remote listener stopped");
        stopped.countDown();
        Thread t = shutdownWait;
        if (t != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(t);
            } catch (IllegalStateException shuttingDown) {
                // The JVM is ending: the hook has just seen the latch and returns.
            }
        }
    }

    /**
     * Tells every guest this host is going away (their heartbeats carry it, about once a second)
     * and waits, at most drain.seconds, until each has moved its contexts and allocations away or
     * disconnected; new guests are refused meanwhile. The accepting socket stays open so that a
     * guest that reconnects hears why ("host draining") instead of a refused connection.
     */
    private void drain() {
        Config c = config;
        int seconds = c == null ? 0 : c.drain_seconds();
        if (seconds <= 0 || server == null) {
            return;
        }
        draining = true;
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(seconds);
        int guests = peers.size();
        peers.forEach(PeerConnection::drain);
        while (!peers.stream().allMatch(PeerConnection::holdsNothing) && System.nanoTime() < deadline) {
            try {
                Thread.sleep(20); // polling a few peers; a drain happens once per stop
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        long left = peers.stream().filter(p -> !p.holdsNothing()).count();
        lastDrain = "drained " + guests + " guest(s) in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) + " ms"
                + (left == 0 ? "" : " (" + left + " still held work after " + seconds + " s)");
        LOG.info("remote listener {}", lastDrain);
    }

    private void accept() {
        ServerSocket ss = server;
        while (ss != null && !ss.isClosed()) {
            Socket s;
            try {
                s = ss.accept();
            } catch (IOException e) {
                if (!ss.isClosed()) {
                    LOG.warn("remote listener: accept failed: {}", e.getMessage());
                }
                continue;
            }
            Config c = config;
            PeerConnection p = new PeerConnection(s, tls, c.max_peers(), c.peer_memory_mib() << 20, c.peer_queue_mib() << 20,
                    c.idle_timeout_ms(), this::backendFor, peers, pinnedNames::get);
            if (draining) {
                p.drain();
            }
            p.start();
        }
    }

    /** The backend a guest gets for the id it named (empty: the default); null when not served. */
    private CudaService backendFor(String requested, String[] id) {
        id[0] = requested == null || requested.isBlank() ? config.backend() : requested;
        return allowed.contains(id[0]) ? backendsById.get(id[0]) : null;
    }

    /** What the last drain did, as logged ("drained N guest(s) in M ms ..."); null before one. */
    public String lastDrain() {
        return lastDrain;
    }

    /** The connected peers, for tests and status. */
    public List<String> peers() {
        return peers.stream().map(PeerConnection::name).sorted().collect(Collectors.toList());
    }
}
