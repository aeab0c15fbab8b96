package io.vgpu.api.dto;

/** The router's view: which backend new sessions go to and whether it is there. */
public class RouterStatus {
    /** The configured backend id. */
    public String activeBackend;
    /** True when a backend with the configured id is registered and available. */
    public boolean backendPresent;
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
