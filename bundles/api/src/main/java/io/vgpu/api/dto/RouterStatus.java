package io.vgpu.api.dto;

import java.util.List;

/** The router's view: which backend new sessions go to and whether it is there. */
public class RouterStatus {
    /**
     * The backend new sessions go to: the first available one of {@link #preference}, else the
     * first registered one of it, else (none registered) the first listed id.
     */
    public String activeBackend;
    /** True when {@link #activeBackend} is registered and available. */
    public boolean backendPresent;
    /** The configured preference list (one id unless several are configured). */
    public List<String> preference = List.of();
    /** Why each listed backend before {@link #activeBackend} was passed over: "gpu1: unavailable: ...". */
    public List<String> skipped = List.of();
    /** One line for humans, e.g. "active backend mock: NVIDIA H100 80GB HBM3". */
    public String message;
    public int sessions;
    public int driverVersion;
    /** The module-image cache shared by all sessions. */
    public ImageCacheStats images;

    @Override
    public String toString() {
        return message;
    }
}
