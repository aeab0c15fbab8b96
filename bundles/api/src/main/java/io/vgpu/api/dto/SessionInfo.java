package io.vgpu.api.dto;

/** One client process's session, as {@code vgpu:sessions} and {@code vgpu smi} list it. */
public class SessionInfo {
    public long id;
    public int pid;
    public int uid;
    public int gid;
    public String processName;
    /** The backend the session is bound to, or null. */
    public String backend;
    /** BOUND, MIGRATING, NO_BACKEND, BACKEND_LOST or CLOSED. */
    public String status;
    /** Device memory the session holds on its backend, in bytes. */
    public long memoryUsed;
    public int contexts;
    /**
     * Device memory the session holds on each device of its backend, in bytes, indexed by device
     * ordinal (as long as the highest ordinal it uses, plus one). Sums to {@link #memoryUsed}.
     */
    public long[] deviceMemory = new long[0];
    /** The session's contexts on each device of its backend, indexed like {@link #deviceMemory}. */
    public int[] deviceContexts = new int[0];
    public long launches;
    public long openedAtMillis;
    /** Migrations of this session, oldest first (the most recent few), failed attempts included. */
    public java.util.List<MigrationRecord> migrations = new java.util.ArrayList<>();
}
