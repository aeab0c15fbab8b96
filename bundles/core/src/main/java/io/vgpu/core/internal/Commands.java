package io.vgpu.core.internal;

import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.SessionManager;
import java.util.List;
import java.util.stream.Collectors;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Gogo commands: {@code vgpu:status}, {@code vgpu:backends}, {@code vgpu:sessions}, {@code vgpu:use},
 * {@code vgpu:migrate}, {@code vgpu:launches}.
 */
@Component(service = Commands.class, property = {
    "osgi.command.scope=vgpu",
    "osgi.command.function=status",
    "osgi.command.function=backends",
    "osgi.command.function=sessions",
    "osgi.command.function=use",
    "osgi.command.function=migrate",
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
        StringBuilder history = new StringBuilder();
        for (SessionInfo s : sessions.sessions()) {
            for (MigrationRecord m : s.migrations) {
                history.append("  ").append(m.reason).append(": ").append(m).append('\n');
            }
        }
        if (history.length() > 0) {
            sb.append("\nMIGRATIONS\n").append(history);
        }
        return sb.toString().trim();
    }

    /** {@code vgpu:migrate <session|all> <backend-id>}: pre-copy where the source can, else stop-and-copy. */
    public String migrate(String which, String backendId) {
        return migrate(which, backendId, "");
    }

    /** With {@code --stop-and-copy}: the session waits for the whole copy. */
    public String migrate(String which, String backendId, String option) {
        if (!option.isEmpty() && !option.equals("--stop-and-copy")) {
            return "usage: vgpu:migrate <session|all> <backend-id> [--stop-and-copy]";
        }
        boolean precopy = option.isEmpty();
        List<MigrationRecord> done;
        if (which.equals("all")) {
            done = sessions.migrateAll(backendId, precopy);
        } else {
            long id;
            try {
                id = Long.parseLong(which);
            } catch (NumberFormatException e) {
                return "usage: vgpu:migrate <session|all> <backend-id> [--stop-and-copy] (a session id from vgpu:sessions, not '"
                        + which + "')";
            }
            done = List.of(sessions.migrate(id, backendId, precopy));
        }
        return done.isEmpty() ? "no session to migrate"
                : done.stream().map(MigrationRecord::toString).collect(Collectors.joining("\n"));
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

    /** {@code vgpu:use <id> --migrate}: switch, and move every running session there too. */
    public String use(String backendId, String option) throws Exception {
        if (!option.equals("--migrate")) {
            return "usage: vgpu:use <backend-id> [--migrate]";
        }
        String switched = use(backendId);
        if (!switched.startsWith("new sessions")) {
            return switched;
        }
        StringBuilder sb = new StringBuilder(switched);
        for (MigrationRecord m : sessions.migrateAll(backendId, true)) {
            sb.append('\n').append(m);
        }
        return sb.toString();
    }

    public String launches() {
        StringBuilder sb = new StringBuilder();
        for (LaunchRecord r : sessions.launchLog(null, 20)) {
            sb.append(r).append('\n');
        }
        return sb.toString().trim();
    }
}
