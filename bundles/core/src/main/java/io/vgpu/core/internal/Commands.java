package io.vgpu.core.internal;

import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.SessionManager;
import java.util.ArrayList;
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
    private static final String USE_USAGE = "usage: vgpu:use <backend-id>... [--migrate]";

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

    /** Listed backends first, in preference order; {@code *} marks where new sessions go. */
    public String backends() {
        StringBuilder sb = new StringBuilder();
        RouterStatus st = sessions.status();
        for (BackendInfo b : sessions.backends()) {
            sb.append(b.id.equals(st.activeBackend) ? "* " : "  ").append(b);
            if (st.preference.size() > 1 && b.preference > 0) {
                sb.append(" [preference ").append(b.preference).append(']');
            }
            sb.append('\n');
        }
        if (!st.skipped.isEmpty()) {
            sb.append("new sessions go to ").append(st.activeBackend).append(": skipped ")
                    .append(String.join("; ", st.skipped)).append('\n');
        }
        return sb.length() == 0 ? "no backends registered" : sb.toString().stripTrailing();
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

    /**
     * {@code vgpu:use mock}, or a preference list: {@code vgpu:use gpu1 gpu2 mock} (or "gpu1, gpu2,
     * mock"). With {@code --migrate} last, every running session moves too, to where new sessions
     * go now: the first available backend of the list.
     */
    public String use(String... args) throws Exception {
        List<String> words = new ArrayList<>(List.of(args));
        boolean migrate = !words.isEmpty() && words.get(words.size() - 1).equals("--migrate");
        if (migrate) {
            words.remove(words.size() - 1);
        }
        if (words.stream().anyMatch(w -> w.startsWith("--"))) {
            return USE_USAGE;
        }
        List<String> ids = Router.parsePreference(String.join(",", words));
        if (ids.isEmpty()) {
            return "name a backend, or several in order of preference; nothing changed";
        }
        // The configuration file may name a backend that registers later; a typed command may not:
        // a typo would silently leave every new client without a GPU.
        List<String> known = sessions.backends().stream().filter(b -> !Router.NOT_REGISTERED.equals(b.description))
                .map(b -> b.id).distinct().collect(Collectors.toList());
        for (String id : ids) {
            if (!known.contains(id)) {
                return "no backend '" + id + "' is registered (registered: "
                        + (known.isEmpty() ? "none" : String.join(", ", known)) + "); nothing changed";
            }
        }
        String value = String.join(", ", ids);
        sessions.use(value);
        String switched = ids.size() == 1 ? "new sessions go to backend " + value
                : "new sessions go to the first available of " + value;
        if (!migrate) {
            return switched;
        }
        // Chosen here from the list rather than read back from the router: the configuration
        // update that switches it may still be on its way.
        String target = firstAvailable(ids);
        if (target == null) {
            return switched + "\nno backend of " + value + " is available: no session moved";
        }
        StringBuilder sb = new StringBuilder(switched);
        for (MigrationRecord m : sessions.migrateAll(target, true)) {
            sb.append('\n').append(m);
        }
        return sb.toString();
    }

    private String firstAvailable(List<String> ids) {
        List<BackendInfo> all = sessions.backends();
        for (String id : ids) {
            if (all.stream().anyMatch(b -> b.id.equals(id) && b.available)) {
                return id;
            }
        }
        return null;
    }

    public String launches() {
        StringBuilder sb = new StringBuilder();
        for (LaunchRecord r : sessions.launchLog(null, 20)) {
            sb.append(r).append('\n');
        }
        return sb.toString().trim();
    }
}
