package io.vgpu.core.internal;

import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.SessionManager;
import java.util.List;
import java.util.stream.Collectors;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** Gogo commands: {@code vgpu:status}, {@code vgpu:backends}, {@code vgpu:sessions}, {@code vgpu:use}, {@code vgpu:launches}. */
@Component(service = Commands.class, property = {
    "osgi.command.scope=vgpu",
    "osgi.command.function=status",
    "osgi.command.function=backends",
    "osgi.command.function=sessions",
    "osgi.command.function=use",
    "osgi.command.function=launches"})
public class Commands {
    @Reference
    private SessionManager sessions;

    public Commands() {}

    /** For unit tests outside a framework. */
    Commands(SessionManager sessions) {
        this.sessions = sessions;
    }

    public String status() {
        RouterStatus st = sessions.status();
        return st.message + "\nsessions: " + st.sessions + (st.images != null ? "\n" + st.images : "");
    }

    public String backends() {
        StringBuilder sb = new StringBuilder();
        String active = sessions.status().activeBackend;
        for (BackendInfo b : sessions.backends()) {
            sb.append(b.id.equals(active) ? "* " : "  ").append(b).append('\n');
        }
        return sb.length() == 0 ? "no backends registered" : sb.toString().trim();
    }

    public String sessions() {
        StringBuilder sb = new StringBuilder(String.format("%-5s %-8s %-6s %-20s %-10s %-12s %12s%n", "ID", "PID", "UID",
                "PROCESS", "BACKEND", "STATUS", "MEMORY"));
        for (SessionInfo s : sessions.sessions()) {
            sb.append(String.format("%-5d %-8d %-6d %-20s %-10s %-12s %9d MiB%n", s.id, s.pid, s.uid, s.processName,
                    s.backend, s.status, s.memoryUsed >> 20));
        }
        return sb.toString().trim();
    }

    public String use(String backendId) throws Exception {
        // The configuration file may name a backend that registers later; a typed command may not:
        // a typo would silently leave every new client without a GPU.
        List<String> known = sessions.backends().stream().map(b -> b.id).distinct().collect(Collectors.toList());
        if (!known.contains(backendId)) {
            return "no backend '" + backendId + "' is registered (registered: "
                    + (known.isEmpty() ? "none" : String.join(", ", known)) + "); nothing changed";
        }
        sessions.use(backendId);
        return "new sessions go to backend " + backendId;
    }

    public String launches() {
        StringBuilder sb = new StringBuilder();
        for (LaunchRecord r : sessions.launchLog(null, 20)) {
            sb.append(r).append('\n');
        }
        return sb.toString().trim();
    }
}
