package io.vgpu.core.internal;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import org.osgi.framework.Constants;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
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
 * Binds sessions to backends. Backends come and go as services carrying {@code backend.id}; the
 * configured preference list ({@code backend = gpu1, gpu2, mock}, or a single id) decides where new
 * sessions go: the first listed backend that is registered and available. Availability is read at
 * each choice, so a backend that recovers takes new sessions again without any event. A
 * configuration change is applied in place ({@code @Modified}), so running sessions are untouched
 * by a switch.
 */
@Component(service = SessionManager.class, immediate = true, configurationPid = Router.PID)
@Designate(ocd = Router.Config.class)
public class Router implements SessionManager {
    public static final String PID = "io.vgpu.router";
    private static final String FILEINSTALL_FILENAME = "felix.fileinstall.filename";
    private static final Pattern BACKEND_LINE = Pattern.compile("\\s*backend\\s*[=:].*");
    private static final Logger LOG = LoggerFactory.getLogger(Router.class);
    /** The description of a listed id that no backend is registered under. */
    static final String NOT_REGISTERED = "not registered";

    @ObjectClassDefinition(name = "vgpu router", description = "Which backend serves new CUDA sessions")
    public @interface Config {
        @AttributeDefinition(description = "backend.id for new sessions, or a preference list (gpu1, gpu2, mock): "
                + "new sessions go to the first one that is registered and available")
        String backend() default "mock";

        @AttributeDefinition(description = "Driver version reported by cuDriverGetVersion, e.g. 13000 or 12080")
        int driverVersion() default 13000;

        @AttributeDefinition(description = "Start of the device address window (0x hex or decimal, 2 MiB aligned): "
                + "guests of one GPU host each need a window of their own")
        String window_base() default "0x200000000000";

        @AttributeDefinition(description = "Size of the device address window (0x hex, decimal, or with K, M, G, T)")
        String window_size() default "16T";
    }

    /** A registered backend; {@code lost} once its service went away. */
    static final class Backend {
        final String id;
        final CudaService service;
        final int ranking;
        private volatile boolean lost;

        Backend(String id, CudaService service, int ranking) {
            this.id = id;
            this.service = service;
            this.ranking = ranking;
        }

        boolean isLost() {
            return lost;
        }
    }

    private final Map<String, List<Backend>> backends = new ConcurrentHashMap<>();
    private final Map<Long, SessionImpl> sessions = new ConcurrentHashMap<>();
    private final AtomicLong sessionIds = new AtomicLong();
    /**
     * Replaced only while no session is open (under windowLock, which open() holds too), so every
     * session allocates from one window for its whole life and backends hear of each window before
     * any session uses it.
     */
    private volatile AddressSpace addressSpace = new AddressSpace(AddressSpace.DEFAULT_BASE, AddressSpace.DEFAULT_SIZE);
    private final Object windowLock = new Object();
    /** Guarded by windowLock: a configured window waiting for the open sessions to close. */
    private AddressWindow pendingWindow;
    private final ImageCache images = new ImageCache(1L << 30);
    /** Never empty unless the configuration names no backend at all. */
    private volatile List<String> preference = List.of("mock");
    private volatile int driverVersion = 13000;
    private volatile boolean activated;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile ConfigurationAdmin configAdmin;

    @Activate
    @Modified
    void configure(Config config) {
        List<String> previous = preference;
        preference = parsePreference(config.backend());
        driverVersion = config.driverVersion();
        applyWindow(window(config));
        boolean first = !activated;
        activated = true;
        if (first || !preference.equals(previous)) {
            logActive(first ? "started" : "switched from " + String.join(", ", previous));
        }
    }

    /** The configured window, or the default with a log line saying why when it is not usable. */
    static AddressWindow window(Config config) {
        try {
            return parseWindow(config.window_base(), config.window_size());
        } catch (IllegalArgumentException e) {
            LOG.error("window.base = {}, window.size = {} in {}.cfg not used: {}; keeping the default window {}", config.window_base(),
                    config.window_size(), PID, e.getMessage(), AddressWindow.DEFAULT);
            return AddressWindow.DEFAULT;
        }
    }

    /** {@code window.base} and {@code window.size} as a window; IllegalArgumentException says why not. */
    static AddressWindow parseWindow(String base, String size) {
        AddressWindow w = new AddressWindow(AddressWindow.parse(base), AddressWindow.parse(size));
        String why = w.invalid();
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        return w;
    }

    /**
     * Makes {@code w} the window now when no session is open, else when the last one closes: a
     * running session's pointers (held by the client, in kernel parameters and in device memory)
     * cannot move, and one core's sessions must share one window.
     */
    private void applyWindow(AddressWindow w) {
        synchronized (windowLock) {
            AddressSpace current = addressSpace;
            if (current.base() == w.base && current.size() == w.size) {
                pendingWindow = null;
                return;
            }
            if (!sessions.isEmpty()) {
                if (!w.equals(pendingWindow)) {
                    LOG.warn("device address window {} configured; {} open session(s) keep {} and it applies when they have all closed",
                            w, sessions.size(), new AddressWindow(current.base(), current.size()));
                }
                pendingWindow = w;
                return;
            }
            pendingWindow = null;
            addressSpace = new AddressSpace(w.base, w.size);
            if (activated) {
                LOG.info("device address window {}", w);
            } else if (!w.equals(AddressWindow.DEFAULT)) {
                LOG.info("device address window {} (configured)", w);
            }
            for (List<Backend> list : backends.values()) {
                for (Backend b : list) {
                    b.service.addressWindow(w.base, w.size);
                }
            }
        }
    }

    /** The device address window sessions get now. */
    AddressWindow window() {
        AddressSpace a = addressSpace;
        return new AddressWindow(a.base(), a.size());
    }

    /** {@code "gpu1, gpu2 mock"}: ids separated by commas or blanks, in order, each once. */
    static List<String> parsePreference(String value) {
        List<String> ids = new ArrayList<>();
        for (String id : value.trim().split("[,\\s]+")) {
            if (!id.isEmpty() && !ids.contains(id)) {
                ids.add(id);
            }
        }
        return List.copyOf(ids);
    }

    @Deactivate
    void deactivate() {
        activated = false;
        for (SessionImpl s : new ArrayList<>(sessions.values())) {
            s.close();
        }
    }

    private void logActive(String why) {
        Choice c = choose(Set.of(), true);
        if (c.backend == null) {
            if (why.equals("started")) {
                LOG.info("vgpu started: waiting for backend {}; until one registers, new sessions get CUDA_ERROR_NO_DEVICE",
                        describePreference());
            } else {
                LOG.warn("vgpu {}: {}; new sessions get CUDA_ERROR_NO_DEVICE", why, notRegistered());
            }
            return;
        }
        LOG.info("vgpu {}: active backend {}", why, describe(c));
    }

    private String notRegistered() {
        List<String> listed = preference;
        return listed.size() == 1 ? "'" + listed.get(0) + "' is not registered" : "none of " + describePreference() + " is registered";
    }

    private String describePreference() {
        return preference.isEmpty() ? "(none configured)" : String.join(", ", preference);
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void addBackend(CudaService service, Map<String, Object> props) {
        Object id = props.get(CudaService.BACKEND_ID);
        if (id == null || id.toString().isBlank()) {
            LOG.warn("ignoring a backend without a {} (configuration {}): give it one in its configuration file",
                    CudaService.BACKEND_ID, props.getOrDefault(Constants.SERVICE_PID, "none"));
            return;
        }
        Object ranking = props.get(Constants.SERVICE_RANKING);
        Backend b = new Backend(id.toString(), service, ranking instanceof Integer ? (Integer) ranking : 0);
        List<Backend> same = backends.computeIfAbsent(b.id, k -> new java.util.concurrent.CopyOnWriteArrayList<>());
        boolean wasMissing;
        synchronized (windowLock) {
            // Before the backend can be chosen: it knows the window before any session uses it.
            AddressSpace a = addressSpace;
            service.addressWindow(a.base(), a.size());
            wasMissing = same.isEmpty();
            same.add(b);
        }
        // A draining backend's sessions move as for one that unregisters, while it still serves them.
        service.onDraining(() -> {
            if (!b.lost) {
                evacuate(b);
            }
        });
        if (wasMissing) {
            LOG.info("backend {} registered: {}", b.id, service.info().description);
        } else {
            LOG.warn("backend {} registered again ({}, configuration {}): new sessions use the one with the highest "
                    + "service.ranking; give each backend its own {}", b.id, service.info().description,
                    props.getOrDefault(Constants.SERVICE_PID, "none"), CudaService.BACKEND_ID);
        }
        if (activated && wasMissing && preference.contains(b.id)) {
            logActive(b.id.equals(choose(Set.of(), true).id()) ? "recovered" : "registered " + b.id);
        }
    }

    void removeBackend(CudaService service, Map<String, Object> props) {
        Object id = props.get(CudaService.BACKEND_ID);
        List<Backend> list = id == null ? null : backends.get(id.toString());
        if (list == null) {
            return;
        }
        for (Backend b : list) {
            if (b.service == service) {
                // Unbinding runs before the backend is deactivated, so its memory can still be read.
                evacuate(b);
                b.lost = true;
                list.remove(b);
                LOG.info("backend {} unregistered", b.id);
            }
        }
        if (activated && preference.contains(id.toString()) && registered(id.toString()) == null) {
            logActive("lost backend " + id);
        }
    }

    @Override
    public MigrationRecord migrate(long sessionId, String backendId, boolean precopy) {
        return migrate(sessionId, backendId, precopy, "command");
    }

    MigrationRecord migrate(long sessionId, String backendId, boolean precopy, String reason) {
        SessionImpl s = sessions.get(sessionId);
        Backend target = registered(backendId);
        if (s == null || target == null) {
            MigrationRecord r = new MigrationRecord();
            r.session = sessionId;
            r.to = backendId;
            r.reason = reason;
            r.message = s == null ? "no session " + sessionId : "no backend '" + backendId + "' is registered";
            r.from = s == null ? null : s.backendId();
            return r;
        }
        return s.migrate(target, precopy, reason);
    }

    @Override
    public List<MigrationRecord> migrateAll(String backendId, boolean precopy) {
        return migrateAll(backendId, precopy, "command");
    }

    List<MigrationRecord> migrateAll(String backendId, boolean precopy, String reason) {
        List<MigrationRecord> out = new ArrayList<>();
        List<SessionImpl> all = new ArrayList<>(sessions.values());
        all.sort(Comparator.comparingLong(SessionImpl::id));
        for (SessionImpl s : all) {
            if (!backendId.equals(s.backendId()) && !s.isClosed()) {
                out.add(migrate(s.id(), backendId, precopy, reason));
            }
        }
        return out;
    }

    /**
     * Moves the sessions of a backend that is going away (its bundle stopping, its configuration
     * deleted) to another one instead of leaving them to fail. Not while the framework stops:
     * then every session ends anyway.
     */
    private void evacuate(Backend leaving) {
        if (!activated || frameworkStopping()) {
            return;
        }
        List<SessionImpl> bound = new ArrayList<>();
        for (SessionImpl s : sessions.values()) {
            if (s.backend == leaving && !s.isClosed()) {
                bound.add(s);
            }
        }
        if (bound.isEmpty()) {
            return;
        }
        // The preference list decides where they go, as it does for new sessions.
        Backend target = nextAvailable(Set.of(leaving.id)).map(this::registered).orElse(null);
        if (target == null) {
            LOG.warn("backend {} is going away and no other backend of the preference list ({}) is available: "
                    + "its {} sessions lose their device", leaving.id, describePreference(), bound.size());
            return;
        }
        LOG.info("backend {} is going away: moving its {} sessions to {}", leaving.id, bound.size(), target.id);
        for (SessionImpl s : bound) {
            s.migrate(target, true, Migration.EVACUATION);
        }
    }

    private static boolean frameworkStopping() {
        org.osgi.framework.Bundle core = org.osgi.framework.FrameworkUtil.getBundle(Router.class);
        org.osgi.framework.BundleContext ctx = core == null ? null : core.getBundleContext();
        return ctx != null && ctx.getBundle(0).getState() == org.osgi.framework.Bundle.STOPPING;
    }

    /**
     * The registered backend with this id that serves (the highest service.ranking, not one already
     * lost), or null.
     */
    Backend registered(String id) {
        List<Backend> list = id == null ? null : backends.get(id);
        if (list == null || list.isEmpty()) {
            return null;
        }
        return list.stream().filter(b -> !b.lost).max(Comparator.comparingInt(b -> b.ranking)).orElse(null);
    }

    /** Why the listed backend {@code id} cannot take a new session now; null when it can. */
    String unavailable(String id) {
        Backend b = registered(id);
        if (b == null) {
            return "not registered";
        }
        BackendInfo info = b.service.info();
        return info.available ? null : "unavailable: " + info.reason;
    }

    /** A choice of backend for new sessions, and why each listed backend before it was passed over. */
    static final class Choice {
        final Backend backend;
        /** "gpu1: unavailable: link to ... lost: ...", in preference order. */
        final List<String> skipped;
        final boolean available;

        Choice(Backend backend, List<String> skipped, boolean available) {
            this.backend = backend;
            this.skipped = skipped;
            this.available = available;
        }

        String id() {
            return backend == null ? null : backend.id;
        }
    }

    /**
     * Walks the preference list, leaving out {@code excluded}: the first backend that is registered
     * and available. With {@code fallback}, when none is, the first registered one (its calls answer
     * {@code CUDA_ERROR_DEVICE_UNAVAILABLE} until it recovers, as a single configured id always did).
     */
    private Choice choose(Set<String> excluded, boolean fallback) {
        List<String> skipped = new ArrayList<>();
        Backend first = null;
        for (String id : preference) {
            if (excluded.contains(id)) {
                continue;
            }
            String why = unavailable(id);
            if (why == null) {
                return new Choice(registered(id), List.copyOf(skipped), true);
            }
            skipped.add(id + ": " + why);
            if (first == null) {
                first = registered(id);
            }
        }
        return new Choice(fallback ? first : null, List.copyOf(skipped), false);
    }

    /**
     * The next backend of the preference list that is registered and available, leaving out
     * {@code excluded}: where new sessions go ({@code excluded} empty), and where a session can be
     * moved when its backend must be left (exclude that backend and any already tried). Empty when
     * no listed backend qualifies. Availability is each backend's {@link CudaService#info()} now;
     * nothing is cached, so the answer follows links going down and coming back.
     */
    public Optional<String> nextAvailable(Set<String> excluded) {
        return Optional.ofNullable(choose(excluded, false).id());
    }

    /**
     * The backend new sessions bind to: the first available one of the preference list, else the
     * first registered one of it; null when none of the list is registered.
     */
    Backend activeBackend() {
        return choose(Set.of(), true).backend;
    }

    /** "mock: NVIDIA H100 80GB HBM3 (preference gpu1, mock; gpu1 skipped: unavailable: ...)". */
    private String describe(Choice c) {
        BackendInfo info = c.backend.service.info();
        DeviceInfo[] devs = c.backend.service.devices();
        StringBuilder sb = new StringBuilder(c.backend.id).append(": ")
                .append(devs.length > 0 ? devs[0].toString() : info.description);
        if (!info.available) {
            sb.append(" (unavailable: ").append(info.reason).append(')');
        }
        if (preference.size() > 1) {
            sb.append(" (preference ").append(String.join(", ", preference));
            for (String s : c.skipped) {
                sb.append("; skipped ").append(s);
            }
            sb.append(')');
        }
        return sb.toString();
    }

    AddressSpace addressSpace() {
        return addressSpace;
    }

    ImageCache images() {
        return images;
    }

    int driverVersion() {
        return driverVersion;
    }

    @Override
    public Session open(ClientInfo client) {
        Choice c = choose(Set.of(), true);
        SessionImpl s;
        synchronized (windowLock) {
            s = new SessionImpl(this, sessionIds.incrementAndGet(), client, c.backend);
            sessions.put(s.id(), s);
        }
        LOG.info("session {} opened: pid {} uid {} ({}) on {}{}", s.id(), client.pid, client.uid, client.processName,
                s.backendId() == null ? "no backend" : "backend " + s.backendId(),
                c.skipped.isEmpty() ? "" : " (skipped " + String.join("; ", c.skipped) + ")");
        return s;
    }

    void closed(SessionImpl s) {
        if (sessions.remove(s.id()) != null) {
            // The transport already logged why the client went away.
            LOG.debug("session {} closed: pid {} ({})", s.id(), s.client().pid, s.client().processName);
        }
        AddressWindow pending;
        synchronized (windowLock) {
            pending = pendingWindow;
        }
        if (pending != null) {
            applyWindow(pending);
        }
    }

    @Override
    public List<SessionInfo> sessions() {
        List<SessionInfo> out = new ArrayList<>();
        for (SessionImpl s : sessions.values()) {
            out.add(s.info());
        }
        out.sort(Comparator.comparingLong(i -> i.id));
        return out;
    }

    @Override
    public List<BackendInfo> backends() {
        List<String> listed = preference;
        List<BackendInfo> out = new ArrayList<>();
        for (List<Backend> list : backends.values()) {
            for (Backend b : list) {
                BackendInfo info = b.service.info();
                info.preference = listed.indexOf(b.id) + 1;
                out.add(info);
            }
        }
        // A listed id nothing registers under is shown too: it is why the next one serves.
        for (int i = 0; i < listed.size(); i++) {
            if (registered(listed.get(i)) == null) {
                BackendInfo missing = new BackendInfo();
                missing.id = listed.get(i);
                missing.description = NOT_REGISTERED;
                missing.reason = "no backend is registered as " + missing.id;
                missing.preference = i + 1;
                out.add(missing);
            }
        }
        // The preference order first (what vgpu backends reads top down), then the others by id.
        out.sort(Comparator.<BackendInfo>comparingInt(i -> i.preference == 0 ? Integer.MAX_VALUE : i.preference)
                .thenComparing(i -> i.id));
        return out;
    }

    @Override
    public RouterStatus status() {
        List<String> listed = preference;
        RouterStatus st = new RouterStatus();
        st.driverVersion = driverVersion;
        st.sessions = sessions.size();
        st.images = images.stats();
        st.preference = listed;
        Choice c = choose(Set.of(), true);
        st.skipped = c.skipped;
        if (c.backend == null) {
            st.activeBackend = listed.isEmpty() ? "" : listed.get(0);
            st.backendPresent = false;
            st.message = "no backend: " + notRegistered() + "; CUDA clients get CUDA_ERROR_NO_DEVICE";
        } else {
            st.activeBackend = c.backend.id;
            st.backendPresent = c.available;
            st.message = "active backend " + describe(c);
        }
        return st;
    }

    @Override
    public void use(String backendId) throws Exception {
        ConfigurationAdmin cm = configAdmin;
        if (cm == null) {
            throw new IllegalStateException("ConfigurationAdmin is not available");
        }
        Configuration c = cm.getConfiguration(PID, "?");
        Dictionary<String, Object> props = c.getProperties();
        if (props == null) {
            props = new Hashtable<>();
        }
        // Keep every other property (FileInstall's file name among them) so the file stays attached.
        props.put("backend", backendId);
        Object file = props.get(FILEINSTALL_FILENAME);
        if (file != null) {
            writeBackend(Path.of(URI.create(file.toString())), backendId);
        }
        // Applied at once too, rather than after FileInstall's next poll; its re-read of the file
        // then finds the same values.
        c.update(props);
    }

    /**
     * Puts the choice into the router's file, which stays the one source of truth across restarts.
     * Done here rather than by FileInstall's own write-back (felix.fileinstall.enableConfigSave),
     * which empties files it did not write itself. Comments and other settings are kept; the file
     * is replaced by a rename, so FileInstall never reads half of it.
     */
    static void writeBackend(Path file, String backendId) throws IOException {
        List<String> lines = Files.exists(file) ? new ArrayList<>(Files.readAllLines(file)) : new ArrayList<>();
        String line = "backend = " + backendId;
        boolean replaced = false;
        for (int i = 0; i < lines.size(); i++) {
            if (BACKEND_LINE.matcher(lines.get(i)).matches()) {
                lines.set(i, line);
                replaced = true;
            }
        }
        if (!replaced) {
            lines.add(line);
        }
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.write(tmp, lines);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public List<LaunchRecord> launchLog(String backendId, int max) {
        Backend b = backendId == null ? activeBackend() : registered(backendId);
        return b == null ? List.of() : b.service.launchLog(max);
    }
}
