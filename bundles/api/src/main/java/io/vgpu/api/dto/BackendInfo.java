package io.vgpu.api.dto;

/** A backend's identity and health, as shown by {@code vgpu:backends}. */
public class BackendInfo {
    /** The {@code backend.id} service property. */
    public String id;
    /** One line for humans, e.g. "simulated NVIDIA H100 80GB HBM3". */
    public String description;
    public boolean available;
    /** Why the backend is unavailable; null when it is available. */
    public String reason;
    /**
     * Unavailable for new sessions because it is about to go away, while it still serves (and can
     * be read by a migration of) the sessions it has; the core moves them elsewhere.
     */
    public boolean draining;
    /**
     * Its place in the router's preference list, from 1; 0 when the list does not name it. Set by
     * the router; a listed id that no backend registers under is shown with {@code available} false.
     */
    public int preference;

    @Override
    public String toString() {
        return id + (available ? " (available)" : " (unavailable: " + reason + ")") + " - " + description;
    }
}
