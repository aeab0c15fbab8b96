package io.vgpu.api.dto;

/**
 * One attempt to move a running session to another backend ({@code vgpu:migrate}, evacuation),
 * successful or not, as {@code vgpu sessions} and the service log show it.
 */
public class MigrationRecord {
    public long session;
    /** The backend the session was on, and the one it was to move to. */
    public String from;
    public String to;
    /** True once the session runs on {@link #to}; false when it stayed on {@link #from}. */
    public boolean ok;
    /** Why it failed, or what it did instead ("nothing to move"); null on plain success. */
    public String message;
    /** Device-memory bytes copied to the target, all rounds together. */
    public long bytesMoved;
    /** Bytes copied while the session's requests waited (all of them with stop-and-copy). */
    public long bytesPaused;
    /** How long the session's requests were held: the pause the application saw. */
    public long pauseNanos;
    /** From start to end, pre-copy included. */
    public long totalNanos;
    /** Pre-copy rounds run while the application kept running; 0 for stop-and-copy. */
    public int precopyRounds;
    /** Why it happened: "command", "use --migrate", "evacuation". */
    public String reason;
    public long atMillis;

    @Override
    public String toString() {
        String what = String.format("session %d %s -> %s", session, from, to);
        if (!ok) {
            return what + " failed: " + message;
        }
        return String.format("%s: %d bytes moved, pause %.1f ms (%d bytes in the pause), total %.1f ms%s%s", what, bytesMoved,
                pauseNanos / 1e6, bytesPaused, totalNanos / 1e6,
                precopyRounds > 0 ? ", " + precopyRounds + " pre-copy rounds" : "", message != null ? " (" + message + ")" : "");
    }
}
