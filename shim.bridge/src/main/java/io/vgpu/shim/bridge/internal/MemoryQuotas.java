package io.vgpu.shim.bridge.internal;

import io.vgpu.api.session.MigrationGuard;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device-memory quotas of the bridge's configuration ({@code quota.*} keys of
 * {@code io.vgpu.bridge}) and what their holders use: the one place that decides whether an
 * allocation fits and what a process is told about a device's memory. CUDA ({@code cuMemGetInfo},
 * {@code cuDeviceTotalMem}) and NVML ({@code nvmlDeviceGetMemoryInfo}) both answer from
 * {@link #view} and {@link #total}, so they agree by construction.
 *
 * <p>Keys (values in MiB):
 * <ul>
 * <li>{@code quota.process.mib}: each client process, all its connections together (its CUDA and its
 * NVML session, identified by user and pid);
 * <li>{@code quota.user.mib}: each user, all its processes together, unless a key names that user;
 * <li>{@code quota.user.<name-or-uid>.mib}: that user's processes together (instead of
 * {@code quota.user.mib});
 * <li>{@code quota.group.<name-or-gid>.mib}: the processes of every member of that group together
 * (primary group or member in /etc/group, as {@code allowed.groups} counts them).
 * </ul>
 *
 * <p>A quota limits what its holders hold on each device (a backend's device ordinal): total device
 * memory a process is shown is the smallest limit of the quotas that apply to it (never more than the
 * device's own), and free memory is what the tightest of them leaves, never more than the device
 * really has free. Usage is the core's own figure for each session ({@code SessionInfo.deviceMemory},
 * what {@code vgpu sessions} and NVML's process lists show), so nothing here can drift from it.
 *
 * <p>Thread-safe; every method is short and calls nothing outside this class under its lock.
 */
final class MemoryQuotas {
    private static final Logger LOG = LoggerFactory.getLogger(MemoryQuotas.class);
    static final String PREFIX = "quota.";
    private static final Pattern KEY = Pattern.compile("quota\\.(process|user|group)(?:\\.(.+))?\\.mib");
    private static final long MIB = 1L << 20;
    private static final Comparator<Device> DEVICE_ORDER = Comparator.comparing(Device::backend)
            .thenComparingInt(Device::ordinal);

    /** A backend's device: quotas count per device. */
    record Device(String backend, int ordinal) {
        @Override
        public String toString() {
            return backend + ":" + ordinal;
        }
    }

    /** One limit and its holders' usage per device. */
    static final class Quota {
        final String name;
        final long limit;
        final Map<Device, Long> used = new HashMap<>();
        int holders;

        Quota(String name, long limit) {
            this.name = name;
            this.limit = limit;
        }

        long used(Device d) {
            return used.getOrDefault(d, 0L);
        }

        void add(Device d, long delta) {
            long v = used(d) + delta;
            if (v == 0) {
                used.remove(d);
            } else {
                used.put(d, v);
            }
        }
    }

    /** One session's place in the quotas: the quotas that apply to it and what it holds. */
    static final class Account {
        final long session;
        final String user;
        final int pid;
        /** Tightest first. */
        final List<Quota> quotas;
        final Map<Device, Long> held = new HashMap<>();
        /** The backend its holdings count on, as the core last said; null until it has one. */
        private String backend;
        /**
         * While an admitted migration runs: the backend it goes to, where what the session holds
         * counts as well, so that nobody else takes the room the move needs.
         */
        private String moving;
        /** Completed moves: a read of the core's figures from before one is stale. */
        private long moves;
        private final List<String> keys;
        /** Set by {@link MemoryQuotas#close}: a late charge or read-back of the session changes nothing. */
        private boolean closed;

        Account(long session, String user, int pid, List<Quota> quotas, List<String> keys) {
            this.session = session;
            this.user = user;
            this.pid = pid;
            this.quotas = quotas;
            this.keys = keys;
        }

        /** The quota that bounds the total this session is shown, or null when none applies. */
        Quota tightest() {
            return quotas.isEmpty() ? null : quotas.get(0);
        }
    }

    /** Where a caller finds one row of {@code vgpu sessions}' quota table. */
    record Row(String name, long limit, Device device, long used, int holders) {}

    private final long processLimit;
    private final long userDefault;
    /** Configured user keys (names or uids) and group keys (names or gids) to limits in bytes. */
    private final Map<String, Long> users;
    private final Map<String, Long> groups;
    /** Numeric group keys resolved to the group's name, so supplementary memberships match them. */
    private final Map<String, String> groupNames;
    /** Live quotas by key, while a session holds them; configured user and group quotas always. */
    private final Map<String, Quota> live = new LinkedHashMap<>();
    private final Map<Long, Account> accounts = new TreeMap<>();

    private MemoryQuotas(long processLimit, long userDefault, Map<String, Long> users, Map<String, Long> groups,
            List<String> groupLines) {
        this.processLimit = processLimit;
        this.userDefault = userDefault;
        this.users = users;
        this.groups = groups;
        this.groupNames = new HashMap<>();
        for (String g : groups.keySet()) {
            if (isNumeric(g)) {
                for (String line : groupLines) {
                    String[] f = line.split(":", -1);
                    if (f.length >= 3 && f[2].equals(g)) {
                        groupNames.put(g, f[0]);
                        break;
                    }
                }
            }
        }
        for (Map.Entry<String, Long> e : users.entrySet()) {
            live.put(userKey(e.getKey()), new Quota("user " + e.getKey(), e.getValue()));
        }
        for (Map.Entry<String, Long> e : groups.entrySet()) {
            live.put("group:" + e.getKey(), new Quota("group " + e.getKey(), e.getValue()));
        }
    }

    /** The quotas among the bridge's configuration properties; keys that do not parse are logged and ignored. */
    static MemoryQuotas of(Map<String, ?> properties) {
        return of(properties, readLines(PeerIdentity.GROUP));
    }

    static MemoryQuotas of(Map<String, ?> properties, List<String> groupLines) {
        long process = -1;
        long userDefault = -1;
        Map<String, Long> users = new TreeMap<>();
        Map<String, Long> groups = new TreeMap<>();
        if (properties != null) {
            for (Map.Entry<String, ?> e : new TreeMap<>(properties).entrySet()) {
                String key = e.getKey();
                if (!key.startsWith(PREFIX)) {
                    continue;
                }
                Matcher m = KEY.matcher(key);
                long bytes = mib(e.getValue());
                if (!m.matches() || bytes < 0 || (m.group(1).equals("process") && m.group(2) != null)) {
                    LOG.warn("ignoring {} = {}: quotas are quota.process.mib, quota.user.mib, quota.user.<name or uid>.mib "
                            + "and quota.group.<name or gid>.mib, each a whole number of MiB", key, e.getValue());
                    continue;
                }
                String who = m.group(2) == null ? null : m.group(2).trim();
                switch (m.group(1)) {
                    case "process":
                        process = bytes;
                        break;
                    case "user":
                        if (who == null) {
                            userDefault = bytes;
                        } else {
                            users.put(who, bytes);
                        }
                        break;
                    default:
                        if (who == null) {
                            LOG.warn("ignoring {}: a group quota names its group (quota.group.<name or gid>.mib)", key);
                        } else {
                            groups.put(who, bytes);
                        }
                }
            }
        }
        MemoryQuotas q = new MemoryQuotas(process, userDefault, users, groups, groupLines);
        if (!q.isEmpty()) {
            LOG.info("memory quotas: {}", q.describe());
        }
        return q;
    }

    private static long mib(Object value) {
        String s = value == null ? "" : value.toString().trim();
        if (s.isEmpty() || s.length() > 12 || !isNumeric(s)) {
            return -1;
        }
        return Long.parseLong(s) * MIB;
    }

    private static boolean isNumeric(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    private static List<String> readLines(Path file) {
        try {
            return Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (Exception e) {
            return List.of();
        }
    }

    private static String userKey(String configured) {
        return "user:" + configured;
    }

    boolean isEmpty() {
        return processLimit < 0 && userDefault < 0 && users.isEmpty() && groups.isEmpty();
    }

    /** The configuration in words, for the log. */
    String describe() {
        List<String> parts = new ArrayList<>();
        if (processLimit >= 0) {
            parts.add("each process " + processLimit / MIB + " MiB");
        }
        if (userDefault >= 0) {
            parts.add("each user " + userDefault / MIB + " MiB");
        }
        users.forEach((k, v) -> parts.add("user " + k + " " + v / MIB + " MiB"));
        groups.forEach((k, v) -> parts.add("group " + k + " " + v / MIB + " MiB"));
        return String.join(", ", parts) + " (per device)";
    }

    // ------------------------------------------------------------------ sessions

    /**
     * Registers a session of {@code peer}'s process {@code pid} under every quota that applies to
     * it; null when none does (the session is then served unchanged).
     */
    synchronized Account open(long session, PeerIdentity peer, int pid) {
        return open(session, peer.userName(), peer.uid, peer.gid, peer.groups, pid);
    }

    synchronized Account open(long session, String user, int uid, int gid, List<String> userGroups, int pid) {
        List<String> keys = new ArrayList<>();
        Map<String, Long> limits = new LinkedHashMap<>();
        Map<String, String> names = new HashMap<>();
        if (processLimit >= 0) {
            String k = "process:" + Integer.toUnsignedString(uid) + ":" + pid;
            limits.put(k, processLimit);
            names.put(k, "process " + pid);
        }
        boolean named = false;
        for (Map.Entry<String, Long> e : users.entrySet()) {
            String who = e.getKey();
            if (who.equals(user) || (isNumeric(who) && uid >= 0 && who.equals(Integer.toUnsignedString(uid)))) {
                limits.put(userKey(who), e.getValue());
                named = true;
            }
        }
        if (!named && userDefault >= 0) {
            String k = "user.default:" + (uid >= 0 ? Integer.toUnsignedString(uid) : user);
            limits.put(k, userDefault);
            names.put(k, "user " + user);
        }
        for (Map.Entry<String, Long> e : groups.entrySet()) {
            String g = e.getKey();
            boolean member = userGroups.contains(g)
                    || (isNumeric(g) && ((gid >= 0 && g.equals(Integer.toUnsignedString(gid)))
                            || (groupNames.containsKey(g) && userGroups.contains(groupNames.get(g)))));
            if (member) {
                limits.put("group:" + g, e.getValue());
            }
        }
        if (limits.isEmpty()) {
            return null;
        }
        List<Quota> quotas = new ArrayList<>();
        for (Map.Entry<String, Long> e : limits.entrySet()) {
            Quota q = live.computeIfAbsent(e.getKey(), k -> new Quota(names.get(k), e.getValue()));
            q.holders++;
            quotas.add(q);
            keys.add(e.getKey());
        }
        quotas.sort((a, b) -> Long.compare(a.limit, b.limit));
        Account a = new Account(session, user, pid, Collections.unmodifiableList(quotas), keys);
        accounts.put(session, a);
        return a;
    }

    /** The session ended: what it held no longer counts. */
    synchronized void close(Account a) {
        if (a.closed || accounts.remove(a.session) == null) {
            return;
        }
        abandoned(a);
        a.closed = true;
        for (Map.Entry<Device, Long> e : a.held.entrySet()) {
            for (Quota q : a.quotas) {
                q.add(e.getKey(), -e.getValue());
            }
        }
        a.held.clear();
        for (int i = 0; i < a.quotas.size(); i++) {
            a.quotas.get(i).holders--;
        }
        for (String k : a.keys) {
            Quota q = live.get(k);
            if (q != null && q.holders == 0 && !k.startsWith("user:") && !k.startsWith("group:")) {
                live.remove(k);
            }
        }
    }

    // ------------------------------------------------------------------ what a process is told

    /** The total memory of a device of {@code physicalTotal} bytes, as {@code a}'s session sees it. */
    static long total(Account a, long physicalTotal) {
        Quota q = a.tightest();
        return q == null ? physicalTotal : Math.min(physicalTotal, q.limit);
    }

    /**
     * Turns the device's own {@code {free, total}} into what {@code a}'s session is told: the total
     * is {@link #total}; free is what every quota of the session leaves on that device, never more
     * than the device has free.
     */
    synchronized void view(Account a, Device d, long[] freeAndTotal) {
        long free = freeAndTotal[0];
        for (Quota q : a.quotas) {
            free = Math.min(free, q.limit - q.used(d));
        }
        long total = total(a, freeAndTotal[1]);
        freeAndTotal[0] = Math.max(0, Math.min(free, total));
        freeAndTotal[1] = total;
    }

    // ------------------------------------------------------------------ accounting

    /** Returned by {@link #settle} and {@link #bind} for figures read before a move ended: read them again. */
    static final Quota STALE = new Quota("stale", 0);

    /** The backend {@code a}'s holdings count on; null until the core has said. */
    synchronized String backend(Account a) {
        return a.backend;
    }

    /** Completed moves of {@code a}'s session: read before the core's figures, handed back with them. */
    synchronized long moves(Account a) {
        return a.moves;
    }

    /**
     * The core says the session is bound to {@code backend} ({@code moves} as read before asking):
     * an account that holds nothing follows it. Null, or {@link #STALE} when a move ended meanwhile.
     */
    synchronized Quota bind(Account a, long moves, String backend) {
        if (moves != a.moves) {
            return STALE;
        }
        if (backend != null && a.moving == null && a.held.isEmpty()) {
            a.backend = backend;
        }
        return null;
    }

    /**
     * Counts {@code bytes} more for {@code a} on its backend's device {@code ordinal} if every quota
     * of the session has room for them (on the device a move in progress takes it to as well);
     * otherwise changes nothing and returns the quota that has not.
     */
    synchronized Quota charge(Account a, int ordinal, long bytes) {
        if (a.closed || a.backend == null) {
            return null;
        }
        Device d = new Device(a.backend, ordinal);
        Quota full = full(a, d, bytes);
        if (full == null) {
            add(a, d, bytes);
        }
        return full;
    }

    synchronized void uncharge(Account a, int ordinal, long bytes) {
        if (a.backend != null) {
            add(a, new Device(a.backend, ordinal), -bytes);
        }
    }

    /** The device what {@code a} holds on {@code d} counts on too while a move is admitted, or null. */
    private static Device shadow(Account a, Device d) {
        return a.moving != null && !a.moving.equals(a.backend) && d.backend().equals(a.backend)
                ? new Device(a.moving, d.ordinal()) : null;
    }

    /** The first quota of {@code a} without room for {@code bytes} more on {@code d} (or its shadow), or null. */
    private static Quota full(Account a, Device d, long bytes) {
        Device t = shadow(a, d);
        for (Quota q : a.quotas) {
            if (bytes > q.limit - q.used(d) || t != null && bytes > q.limit - q.used(t)) {
                return q;
            }
        }
        return null;
    }

    private void add(Account a, Device d, long delta) {
        if (delta == 0 || a.closed) {
            return;
        }
        long v = a.held.getOrDefault(d, 0L) + delta;
        if (v == 0) {
            a.held.remove(d);
        } else {
            a.held.put(d, v);
        }
        Device t = shadow(a, d);
        for (Quota q : a.quotas) {
            q.add(d, delta);
            if (t != null) {
                q.add(t, delta);
            }
        }
    }

    // ------------------------------------------------------------------ migrations

    /** The core's questions about {@code a}'s session's migrations, answered here. */
    MigrationGuard guard(Account a) {
        return new MigrationGuard() {
            @Override
            public String admit(String from, String to, boolean evacuation) {
                return MemoryQuotas.this.admit(a, from, to, evacuation);
            }

            @Override
            public void moved(String from, String to) {
                MemoryQuotas.this.moved(a, to);
            }

            @Override
            public void abandoned(String from, String to) {
                synchronized (MemoryQuotas.this) {
                    MemoryQuotas.this.abandoned(a);
                }
            }
        };
    }

    /**
     * The session is to move from {@code from} to {@code to}: refused, with the quota in words, if
     * what it holds on a device does not fit what a quota leaves on the target's device of the same
     * ordinal; else what it holds counts there too until {@link #moved} or {@link #abandoned}, so the
     * room cannot be taken meanwhile. An evacuation is let through past a quota, with a log line:
     * refusing it would cost the session its device and its memory, a worse outcome than an overage
     * that the quota then corrects by refusing the session's allocations until it is back within it.
     */
    synchronized String admit(Account a, String from, String to, boolean evacuation) {
        if (a.closed) {
            return null;
        }
        abandoned(a);
        if (a.backend == null) {
            a.backend = from;
        }
        List<String> over = new ArrayList<>();
        List<Map.Entry<Device, Long>> held = new ArrayList<>(a.held.entrySet());
        held.sort(Map.Entry.comparingByKey(DEVICE_ORDER));
        for (Map.Entry<Device, Long> e : held) {
            if (!e.getKey().backend().equals(a.backend)) {
                continue;
            }
            Device t = new Device(to, e.getKey().ordinal());
            for (Quota q : a.quotas) {
                long room = Math.max(0, q.limit - q.used(t));
                if (e.getValue() > room) {
                    over.add(String.format(Locale.ROOT, "quota %s (%s) has %s free on %s, the session holds %s on %s", q.name,
                            amount(q.limit), amount(room), t, amount(e.getValue()), e.getKey()));
                    break;
                }
            }
        }
        if (!over.isEmpty()) {
            if (!evacuation) {
                return String.join("; ", over);
            }
            LOG.warn("session {} ({} {}): evacuated from {} to {} past its quota: {}; its allocations there are refused "
                    + "until it is back within it", a.session, a.user, a.pid, from, to, String.join("; ", over));
        }
        a.moving = to;
        for (Map.Entry<Device, Long> e : a.held.entrySet()) {
            Device t = shadow(a, e.getKey());
            if (t != null) {
                for (Quota q : a.quotas) {
                    q.add(t, e.getValue());
                }
            }
        }
        return null;
    }

    /** The session runs on {@code to}: what it holds counts there only, in one step. */
    synchronized void moved(Account a, String to) {
        if (a.closed || a.moving == null) {
            return;
        }
        String from = a.backend;
        a.moving = null;
        if (!to.equals(from)) {
            for (Map.Entry<Device, Long> e : new ArrayList<>(a.held.entrySet())) {
                Device d = e.getKey();
                if (d.backend().equals(from)) {
                    // Its shadow on the target already counts it: only the source's count goes.
                    for (Quota q : a.quotas) {
                        q.add(d, -e.getValue());
                    }
                    a.held.remove(d);
                    a.held.merge(new Device(to, d.ordinal()), e.getValue(), Long::sum);
                }
            }
        }
        a.backend = to;
        a.moves++;
    }

    /** The admitted move did not happen (or the session ended): the target's room is given back. Holds the lock. */
    private void abandoned(Account a) {
        if (a.closed || a.moving == null) {
            return;
        }
        for (Map.Entry<Device, Long> e : a.held.entrySet()) {
            Device t = shadow(a, e.getKey());
            if (t != null) {
                for (Quota q : a.quotas) {
                    q.add(t, -e.getValue());
                }
            }
        }
        a.moving = null;
    }

    /** Bytes in MiB, with a decimal where they are not whole. */
    static String amount(long bytes) {
        return bytes % MIB == 0 ? mibText(bytes) : String.format(Locale.ROOT, "%.1f MiB", bytes / (double) MIB);
    }

    /**
     * Sets what {@code a}'s session holds to the core's figures: {@code deviceMemory[i]} bytes on
     * device {@code i} of {@code backend}, nothing anywhere else. With {@code onlyIfFits}, a change
     * that would take any quota past its limit is not made, and that quota is returned.
     * {@link #STALE} (and nothing changed) when a move ended since {@code moves} was read: the
     * figures may be the source's.
     */
    synchronized Quota settle(Account a, long moves, String backend, long[] deviceMemory, boolean onlyIfFits) {
        if (a.closed) {
            return null;
        }
        if (moves != a.moves) {
            return STALE;
        }
        Map<Device, Long> now = new HashMap<>();
        if (backend != null) {
            for (int i = 0; i < deviceMemory.length; i++) {
                if (deviceMemory[i] != 0) {
                    now.put(new Device(backend, i), deviceMemory[i]);
                }
            }
        }
        Map<Device, Long> delta = new HashMap<>();
        for (Map.Entry<Device, Long> e : now.entrySet()) {
            delta.merge(e.getKey(), e.getValue(), Long::sum);
        }
        for (Map.Entry<Device, Long> e : a.held.entrySet()) {
            delta.merge(e.getKey(), -e.getValue(), Long::sum);
        }
        if (onlyIfFits) {
            for (Map.Entry<Device, Long> e : delta.entrySet()) {
                Quota q = e.getValue() > 0 ? full(a, e.getKey(), e.getValue()) : null;
                if (q != null) {
                    return q;
                }
            }
        }
        for (Map.Entry<Device, Long> e : delta.entrySet()) {
            add(a, e.getKey(), e.getValue());
        }
        if (backend != null) {
            a.backend = backend;
        }
        return null;
    }

    // ------------------------------------------------------------------ vgpu sessions

    /** Every quota in force: one row per device its holders hold memory on, or one with no device. */
    synchronized List<Row> rows() {
        List<Row> out = new ArrayList<>();
        for (Quota q : live.values()) {
            if (q.used.isEmpty()) {
                out.add(new Row(q.name, q.limit, null, 0, q.holders));
            } else {
                List<Map.Entry<Device, Long>> used = new ArrayList<>(q.used.entrySet());
                used.sort(Map.Entry.comparingByKey(DEVICE_ORDER));
                for (Map.Entry<Device, Long> e : used) {
                    out.add(new Row(q.name, q.limit, e.getKey(), e.getValue(), q.holders));
                }
            }
        }
        return out;
    }

    /** Each session's tightest quota, by session id. */
    synchronized Map<Long, Quota> sessions() {
        Map<Long, Quota> out = new LinkedHashMap<>();
        accounts.forEach((id, a) -> out.put(id, a.tightest()));
        return out;
    }

    static String mibText(long bytes) {
        return String.format(Locale.ROOT, "%d MiB", bytes / MIB);
    }
}
