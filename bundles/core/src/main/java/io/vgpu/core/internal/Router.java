package io.vgpu.core.internal;

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
 * configured id decides where new sessions go. A configuration change is applied in place
 * ({@code @Modified}), so running sessions are untouched by a switch.
 */
@Component(service = SessionManager.class, immediate = true, configurationPid = Router.PID)
@Designate(ocd = Router.Config.class)
public class Router implements SessionManager {
    public static final String PID = "io.vgpu.router";
    private static final String FILEINSTALL_FILENAME = "felix.fileinstall.filename";
    private static final Pattern BACKEND_LINE = Pattern.compile("\\s*backend\\s*[=:].*");
    private static final Logger LOG = LoggerFactory.getLogger(Router.class);

    @ObjectClassDefinition(name = "vgpu router", description = "Which backend serves new CUDA sessions")
    public @interface Config {
        @AttributeDefinition(description = "backend.id of the backend for new sessions")
        String backend() default "mock";

        @AttributeDefinition(description = "Driver version reported by cuDriverGetVersion, e.g. 13000 or 12080")
        int driverVersion() default 13000;
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
    private final AddressSpace addressSpace = new AddressSpace(AddressSpace.DEFAULT_BASE, AddressSpace.DEFAULT_SIZE);
    private final ImageCache images = new ImageCache(1L << 30);
    private volatile String active = "mock";
    private volatile int driverVersion = 13000;
    private volatile boolean activated;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile ConfigurationAdmin configAdmin;

    @Activate
    @Modified
    void configure(Config config) {
        String previous = active;
        active = config.backend().trim();
        driverVersion = config.driverVersion();
        boolean first = !activated;
        activated = true;
        if (first || !active.equals(previous)) {
            logActive(first ? "started" : "switched from " + previous);
        }
    }

    @Deactivate
    void deactivate() {
        activated = false;
        for (SessionImpl s : new ArrayList<>(sessions.values())) {
            s.close();
        }
    }

    private void logActive(String why) {
        Backend b = activeBackend();
        if (b == null) {
            if (why.equals("started")) {
                LOG.info("vgpu started: waiting for backend '{}'; until it registers, new sessions get CUDA_ERROR_NO_DEVICE", active);
            } else {
                LOG.warn("vgpu {}: active backend '{}' is not registered; new sessions get CUDA_ERROR_NO_DEVICE", why, active);
            }
            return;
        }
        BackendInfo info = b.service.info();
        DeviceInfo[] devs = b.service.devices();
        LOG.info("vgpu {}: active backend {}: {}{}", why, active, devs.length > 0 ? devs[0] : info.description,
                info.available ? "" : " (unavailable: " + info.reason + ")");
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
        boolean wasMissing = same.isEmpty();
        same.add(b);
        if (wasMissing) {
            LOG.info("backend {} registered: {}", b.id, service.info().description);
        } else {
            LOG.warn("backend {} registered again ({}, configuration {}): new sessions use the one with the highest "
                    + "service.ranking; give each backend its own {}", b.id, service.info().description,
                    props.getOrDefault(Constants.SERVICE_PID, "none"), CudaService.BACKEND_ID);
        }
        if (activated && wasMissing && b.id.equals(active)) {
            logActive("recovered");
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
        if (activated && id.toString().equals(active) && activeBackend() == null) {
            logActive("lost its backend");
        }
    }

    /** The serving backend registered under {@code id}, or null. */
    Backend backend(String id) {
        List<Backend> list = id == null ? null : backends.get(id);
        if (list == null || list.isEmpty()) {
            return null;
        }
        return list.stream().filter(b -> !b.lost).max(Comparator.comparingInt(b -> b.ranking)).orElse(null);
    }

    @Override
    public MigrationRecord migrate(long sessionId, String backendId, boolean precopy) {
        return migrate(sessionId, backendId, precopy, "command");
    }

    MigrationRecord migrate(long sessionId, String backendId, boolean precopy, String reason) {
        SessionImpl s = sessions.get(sessionId);
        Backend target = backend(backendId);
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
        Backend target = evacuationTarget(leaving);
        if (target == null) {
            LOG.warn("backend {} is going away and no other backend is available: its {} sessions lose their device",
                    leaving.id, bound.size());
            return;
        }
        LOG.info("backend {} is going away: moving its {} sessions to {}", leaving.id, bound.size(), target.id);
        for (SessionImpl s : bound) {
            s.migrate(target, true, "evacuation");
        }
    }

    // MERGE(router): replace with the preference list's "next available backend excluding" method.
    /** The configured backend if it is available and not the one leaving, else any other available one. */
    private Backend evacuationTarget(Backend leaving) {
        Backend configured = backend(active);
        if (configured != null && configured != leaving && !configured.id.equals(leaving.id) && configured.service.info().available) {
            return configured;
        }
        List<String> ids = new ArrayList<>(backends.keySet());
        java.util.Collections.sort(ids);
        for (String id : ids) {
            Backend b = backend(id);
            if (b != null && b != leaving && !b.id.equals(leaving.id) && b.service.info().available) {
                return b;
            }
        }
        return null;
    }

    private static boolean frameworkStopping() {
        org.osgi.framework.Bundle core = org.osgi.framework.FrameworkUtil.getBundle(Router.class);
        org.osgi.framework.BundleContext ctx = core == null ? null : core.getBundleContext();
        return ctx != null && ctx.getBundle(0).getState() == org.osgi.framework.Bundle.STOPPING;
    }

    /** The backend new sessions bind to, or null when none is registered under the active id. */
    Backend activeBackend() {
        List<Backend> list = backends.get(active);
        if (list == null || list.isEmpty()) {
            return null;
        }
        return list.stream().max(Comparator.comparingInt(b -> b.ranking)).orElse(null);
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
        SessionImpl s = new SessionImpl(this, sessionIds.incrementAndGet(), client, activeBackend());
        sessions.put(s.id(), s);
        LOG.info("session {} opened: pid {} uid {} ({}) on {}", s.id(), client.pid, client.uid, client.processName,
                s.backendId() == null ? "no backend" : "backend " + s.backendId());
        return s;
    }

    void closed(SessionImpl s) {
        if (sessions.remove(s.id()) != null) {
            // The transport already logged why the client went away.
            LOG.debug("session {} closed: pid {} ({})", s.id(), s.client().pid, s.client().processName);
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
        List<BackendInfo> out = new ArrayList<>();
        for (List<Backend> list : backends.values()) {
            for (Backend b : list) {
                out.add(b.service.info());
            }
        }
        out.sort(Comparator.comparing(i -> i.id));
        return out;
    }

    @Override
    public RouterStatus status() {
        RouterStatus st = new RouterStatus();
        st.activeBackend = active;
        st.driverVersion = driverVersion;
        st.sessions = sessions.size();
        st.images = images.stats();
        Backend b = activeBackend();
        if (b == null) {
            st.backendPresent = false;
            st.message = "no backend: '" + active + "' is not registered; CUDA clients get CUDA_ERROR_NO_DEVICE";
        } else {
            BackendInfo info = b.service.info();
            DeviceInfo[] devs = b.service.devices();
            st.backendPresent = info.available;
            st.message = "active backend " + active + ": " + (devs.length > 0 ? devs[0].toString() : info.description)
                    + (info.available ? "" : " (unavailable: " + info.reason + ")");
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
        List<Backend> list = backends.get(backendId == null ? active : backendId);
        if (list == null || list.isEmpty()) {
            return List.of();
        }
        return list.get(0).service.launchLog(max);
    }
}
