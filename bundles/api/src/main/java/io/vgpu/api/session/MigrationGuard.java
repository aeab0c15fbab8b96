package io.vgpu.api.session;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A transport's say in the migrations of a session it serves ({@link Session#guardMigrations}):
 * the bridge uses it to keep memory quotas on the device the session's memory is on.
 *
 * <p>The core asks {@link #admit} while the session's requests wait and before anything is made
 * on the target; after an admission exactly one of {@link #moved} and {@link #abandoned} follows,
 * also while the session's requests wait. None of them may call back into the session.
 */
@ConsumerType
public interface MigrationGuard {
    /**
     * The session is about to move from backend {@code from} to {@code to}, keeping its device
     * ordinals: null lets it go on, anything else refuses it with that reason (which the migration
     * record carries). A guard that admits may hold what the move needs on the target until it
     * hears how the move ended.
     *
     * @param evacuation the source is going away (unregistering or draining), so a refusal leaves
     *     the session without a device
     */
    String admit(String from, String to, boolean evacuation);

    /** The session now runs on {@code to}; its memory on {@code from} is being released. */
    void moved(String from, String to);

    /** The admitted move did not happen: the session stays on {@code from}, as it was. */
    void abandoned(String from, String to);
}
