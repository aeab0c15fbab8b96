package io.vgpu.core.internal;

import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.launch.Framework;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stops the framework on SIGTERM. The bnd launcher's own hook only deletes its storage, so without
 * this no component would deactivate and the socket file would be left behind.
 */
@Component(immediate = true, service = {})
public class ShutdownHook {
    private static final Logger LOG = LoggerFactory.getLogger(ShutdownHook.class);
    private Thread hook;

    @Activate
    void activate(BundleContext context) {
        Framework framework = (Framework) context.getBundle(0);
        hook = new Thread(() -> {
            LOG.info("vgpu stopping (signal)");
            try {
                framework.stop();
                framework.waitForStop(10_000);
            } catch (BundleException | InterruptedException e) {
                LOG.warn("framework did not stop cleanly: {}", e.toString());
            }
        }, "vgpu-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    @Deactivate
    void deactivate() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // We are running inside the hook's own stop; nothing to undo.
        }
    }
}
