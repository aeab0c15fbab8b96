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

    @Override
    public String toString() {
        return id + (available ? " (available)" : " (unavailable: " + reason + ")") + " - " + description;
    }
}
