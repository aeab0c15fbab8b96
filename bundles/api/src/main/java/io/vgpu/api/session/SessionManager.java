package io.vgpu.api.session;

import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The core's front door: transports (the shim bridge, later remote peers) open one session per
 * client process here. The router binds each new session to the backend that is active at that
 * moment.
 */
@ProviderType
public interface SessionManager {
    /** Never null: without a backend the session exists and answers {@code CUDA_ERROR_NO_DEVICE}. */
    Session open(ClientInfo client);

    List<SessionInfo> sessions();

    List<BackendInfo> backends();

    RouterStatus status();

    /**
     * Makes {@code backendId} the backend for new sessions, or a preference list of them
     * ({@code "gpu1, gpu2, mock"}: the first available one serves), by updating the router's
     * configuration (in the distribution also the {@code backend} line of
     * {@code conf/io.vgpu.router.cfg}, so the choice survives a restart).
     */
    void use(String backendId) throws Exception;

    /**
     * Moves a running session to the backend {@code backendId} without the client noticing: its
     * handles and pointers stay valid and its requests wait while it moves. Atomic: when anything
     * fails the session stays where it was, as it was, and the record says why. Never throws for a
     * refusal; an unknown session is a failed record too.
     *
     * @param precopy copy memory while the application keeps running first, where the source can
     *     say what changed meanwhile, so the pause does not grow with the memory the session holds
     */
    MigrationRecord migrate(long sessionId, String backendId, boolean precopy);

    /** {@link #migrate} for every session not already on {@code backendId}, one after another. */
    List<MigrationRecord> migrateAll(String backendId, boolean precopy);

    /** The most recent launches a backend recorded, oldest first; empty if it records none. */
    List<LaunchRecord> launchLog(String backendId, int max);
}
