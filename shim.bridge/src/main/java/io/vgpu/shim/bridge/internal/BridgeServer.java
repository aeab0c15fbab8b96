package io.vgpu.shim.bridge.internal;

import io.vgpu.api.session.SessionManager;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Unix socket that the CUDA shim ({@code libcuda.so.1}) and the {@code vgpu} CLI connect to
 * (docs/PROTOCOL.md). One platform thread per connection: a CUDA client issues its calls in order
 * and mostly waits for them, so a thread that runs them in order and then waits is the simplest
 * thing that is also fast. A configuration change re-creates the component, which closes every
 * connection: clients see their session end as if the service had restarted.
 */
@Component(immediate = true, configurationPid = BridgeServer.PID, configurationPolicy = ConfigurationPolicy.OPTIONAL)
@Designate(ocd = BridgeServer.Config.class)
public class BridgeServer {
    public static final String PID = "io.vgpu.bridge";
    static final String DEFAULT_SOCKET = "/run/vgpu/vgpu.sock";
    static final String DEFAULT_MODE = "rw-rw----";
    /** Control connections (the CLI) still get in when every session slot is taken. */
    static final int CONTROL_HEADROOM = 32;
    private static final long STOP_TIMEOUT_MILLIS = 5000;
    /** How often the watcher looks at busy connections, and how long a request runs before it does. */
    static final long WATCH_MILLIS = 100;
    private static final Logger LOG = LoggerFactory.getLogger(BridgeServer.class);

    @ObjectClassDefinition(name = "vgpu shim bridge", description = "The Unix socket CUDA applications reach the service through")
    public @interface Config {
        @AttributeDefinition(description = "Socket path; empty: $VGPU_SOCKET, else " + DEFAULT_SOCKET)
        String socket() default "";

        @AttributeDefinition(description = "Group of the socket file (clients in it may connect); empty: the service's group")
        String socket_group() default "";

        @AttributeDefinition(description = "Permissions of the socket file")
        String socket_mode() default DEFAULT_MODE;

        @AttributeDefinition(description = "User names or uids allowed to connect; empty (with allowed.groups empty): everyone who can open the socket")
        String[] allowed_users() default {};

        @AttributeDefinition(description = "Group names or gids allowed to connect (primary group or member in /etc/group)")
        String[] allowed_groups() default {};

        @AttributeDefinition(description = "Most CUDA sessions at once; more are refused with CUDA_ERROR_MPS_MAX_CLIENTS_REACHED")
        int max_sessions() default 1024;

        @AttributeDefinition(description = "Microseconds a connection polls for its next request before it blocks; 0: block at once")
        int spin_micros() default 50;

        @AttributeDefinition(description = "Largest shared-memory region a client may offer, in MiB")
        int max_shm_mib() default 1024;

        // Memory quotas have keys that name users and groups (quota.user.<name>.mib), which a
        // component property type cannot declare: MemoryQuotas reads them from the properties.
    }

    private final SessionManager manager;
    private final Path socketPath;
    private final Set<String> allowedUsers;
    private final Set<String> allowedGroups;
    private final int maxSessions;
    private final long spinNanos;
    private final long maxShmBytes;
    private final MemoryQuotas quotas;

    private final Set<Connection> connections = new HashSet<>();
    private final AtomicInteger sessions = new AtomicInteger();
    private final AtomicLong connectionNumbers = new AtomicLong();
    private volatile boolean stopping;
    private ServerSocketChannel server;
    private Thread acceptor;
    private Thread watcher;

    @Activate
    public BridgeServer(@Reference SessionManager manager, Config config, Map<String, Object> properties) {
        this.manager = manager;
        this.socketPath = Path.of(socketPath(config.socket()));
        this.allowedUsers = names(config.allowed_users());
        this.allowedGroups = names(config.allowed_groups());
        this.maxSessions = Math.max(0, config.max_sessions());
        this.spinNanos = TimeUnit.MICROSECONDS.toNanos(Math.max(0, config.spin_micros()));
        this.maxShmBytes = Math.max(0, (long) config.max_shm_mib()) << 20;
        this.quotas = MemoryQuotas.of(properties);
        listen(config);
    }

    /** Without quotas (tests that configure only the annotated properties). */
    BridgeServer(SessionManager manager, Config config) {
        this(manager, config, Map.of());
    }

    static String socketPath(String configured) {
        if (configured != null && !configured.isBlank()) {
            return configured.trim();
        }
        String env = System.getenv("VGPU_SOCKET");
        return env != null && !env.isBlank() ? env.trim() : DEFAULT_SOCKET;
    }

    private static Set<String> names(String[] values) {
        Set<String> out = new LinkedHashSet<>();
        if (values != null) {
            for (String v : values) {
                if (v != null && !v.isBlank()) {
                    out.add(v.trim());
                }
            }
        }
        return Set.copyOf(out);
    }

    private void listen(Config config) {
        UnixDomainSocketAddress address;
        try {
            address = UnixDomainSocketAddress.of(socketPath);
            Path parent = socketPath.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            if (!clearStaleSocket(address)) {
                return;
            }
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(address);
        } catch (IOException | RuntimeException e) {
            LOG.error("cannot listen on unix:{}: {}", socketPath, e.toString());
            closeServer();
            server = null;
            return;
        }
        applyOwnership(config);
        acceptor = new Thread(this::acceptLoop, "vgpu-bridge-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        watcher = new Thread(this::watchLoop, "vgpu-bridge-watch");
        watcher.setDaemon(true);
        watcher.start();
        LOG.info("listening on unix:{}", socketPath);
    }

    /** False when the path is in use: by a live service, or by something that is not a socket. */
    private boolean clearStaleSocket(UnixDomainSocketAddress address) throws IOException {
        if (!Files.exists(socketPath, LinkOption.NOFOLLOW_LINKS)) {
            return true;
        }
        BasicFileAttributes a = Files.readAttributes(socketPath, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isOther()) {
            LOG.error("{} exists and is not a socket; not listening", socketPath);
            return false;
        }
        try (SocketChannel probe = SocketChannel.open(address)) {
            LOG.error("another vgpu service is listening on {}", socketPath);
            return false;
        } catch (IOException stale) {
            // Nobody answers: the file is left over from a service that was killed.
        }
        Files.deleteIfExists(socketPath);
        return true;
    }

    private void applyOwnership(Config config) {
        String group = config.socket_group() == null ? "" : config.socket_group().trim();
        if (!group.isEmpty()) {
            try {
                GroupPrincipal g = socketPath.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByGroupName(group);
                Files.getFileAttributeView(socketPath, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS).setGroup(g);
            } catch (IOException | RuntimeException e) {
                LOG.warn("cannot give {} to group {}: {}", socketPath, group, e.toString());
            }
        }
        String mode = config.socket_mode() == null || config.socket_mode().isBlank() ? DEFAULT_MODE : config.socket_mode().trim();
        Set<PosixFilePermission> permissions;
        try {
            permissions = PosixFilePermissions.fromString(mode);
        } catch (IllegalArgumentException e) {
            LOG.warn("socket_mode '{}' is not of the form rw-rw----; using {}", mode, DEFAULT_MODE);
            permissions = PosixFilePermissions.fromString(DEFAULT_MODE);
        }
        try {
            Files.setPosixFilePermissions(socketPath, permissions);
        } catch (IOException | RuntimeException e) {
            LOG.warn("cannot set the permissions of {}: {}", socketPath, e.toString());
        }
    }

    private void acceptLoop() {
        String transport = "unix:" + socketPath;
        while (!stopping) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (stopping) {
                    return;
                }
                // Typically out of file descriptors: pause instead of spinning on the error.
                LOG.warn("accept on {} failed: {}", socketPath, e.toString());
                pause();
                continue;
            }
            Connection c = new Connection(this, manager, ch, transport, "vgpu-session-" + connectionNumbers.incrementAndGet());
            synchronized (connections) {
                if (stopping || connections.size() >= maxSessions + CONTROL_HEADROOM) {
                    if (!stopping) {
                        LOG.warn("refusing a connection on {}: {} connections are open", socketPath, connections.size());
                    }
                    closeQuietly(ch);
                    continue;
                }
                connections.add(c);
            }
            c.start();
        }
    }

    /**
     * Notices clients that die while the service runs a long request for them (the connection's
     * own thread reads nothing until the request returns): each connection busy for longer than
     * {@link #WATCH_MILLIS} is asked to look, without blocking, for the end of its stream.
     */
    private void watchLoop() {
        long busyNanos = TimeUnit.MILLISECONDS.toNanos(WATCH_MILLIS);
        while (!stopping) {
            try {
                Thread.sleep(WATCH_MILLIS);
            } catch (InterruptedException e) {
                return;
            }
            List<Connection> open;
            synchronized (connections) {
                open = new ArrayList<>(connections);
            }
            long now = System.nanoTime();
            for (Connection c : open) {
                try {
                    c.watch(now, busyNanos);
                } catch (RuntimeException e) {
                    LOG.warn("watching {} failed: {}", c.thread().getName(), e.toString());
                }
            }
        }
    }

    private static void pause() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Deactivate
    void deactivate() {
        stopping = true;
        boolean bound = server != null;
        closeServer();
        join(acceptor, STOP_TIMEOUT_MILLIS);
        if (watcher != null) {
            watcher.interrupt();
            join(watcher, STOP_TIMEOUT_MILLIS);
        }
        if (bound) {
            try {
                Files.deleteIfExists(socketPath);
            } catch (IOException e) {
                LOG.warn("cannot remove {}: {}", socketPath, e.toString());
            }
        }
        List<Connection> open;
        synchronized (connections) {
            open = new ArrayList<>(connections);
        }
        for (Connection c : open) {
            c.close();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_TIMEOUT_MILLIS);
        for (Connection c : open) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            join(c.thread(), Math.max(1, left));
            if (c.thread().isAlive()) {
                LOG.warn("{} is still busy in the service after {} ms; its session ends when it returns",
                        c.thread().getName(), STOP_TIMEOUT_MILLIS);
            }
        }
    }

    private void closeServer() {
        if (server != null) {
            closeQuietly(server);
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException e) {
            // Nothing left to do with it.
        }
    }

    private static void join(Thread t, long millis) {
        if (t == null) {
            return;
        }
        try {
            t.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ------------------------------------------------------------------ for connections

    boolean reserveSession() {
        while (true) {
            int n = sessions.get();
            if (n >= maxSessions) {
                return false;
            }
            if (sessions.compareAndSet(n, n + 1)) {
                return true;
            }
        }
    }

    void ended(Connection c, boolean heldSessionSlot) {
        if (heldSessionSlot) {
            sessions.decrementAndGet();
        }
        synchronized (connections) {
            connections.remove(c);
        }
    }

    Set<String> allowedUsers() {
        return allowedUsers;
    }

    Set<String> allowedGroups() {
        return allowedGroups;
    }

    int maxSessions() {
        return maxSessions;
    }

    long spinNanos() {
        return spinNanos;
    }

    long maxShmBytes() {
        return maxShmBytes;
    }

    /** The memory quotas; {@link MemoryQuotas#isEmpty() empty} when none are configured. */
    MemoryQuotas quotas() {
        return quotas;
    }

    // ------------------------------------------------------------------ for tests

    boolean listening() {
        return server != null && server.isOpen();
    }

    Path socket() {
        return socketPath;
    }

    int connectionCount() {
        synchronized (connections) {
            return connections.size();
        }
    }
}
