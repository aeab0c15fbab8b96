package io.vgpu.backend.remote;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.backend.remote.internal.Configs;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.Test;

/**
 * The JVM must not end under a listener's drain: the core's shutdown hook gives up on the
 * framework after 10 s, so the listener started by DS holds a hook of its own until it has
 * stopped. (RemoteDrainIT shows the whole path with SIGTERM and two distributions.)
 */
public class RemoteListenerStopTest {
    private static RemoteListener.Config config(int drainSeconds) {
        return Configs.of(RemoteListener.Config.class, Map.of("address", "127.0.0.1", "port", "0", "plaintext", "true",
                "drain.seconds", Integer.toString(drainSeconds)));
    }

    @Test(timeout = 30_000)
    public void theShutdownHookWaitsUntilTheListenerHasStoppedAndGoesWithIt() throws Exception {
        RemoteListener l = new RemoteListener();
        l.start(config(5));
        Thread hook = l.shutdownWait();
        assertNotNull("a listener that drains holds a shutdown hook", hook);
        try {
            CompletableFuture<Boolean> waited = CompletableFuture.supplyAsync(() -> l.awaitStopped(20));
            // Expected to time out: the listener still serves, so the JVM would have to wait.
            assertFalse("the hook returned while the listener serves", waitedWithin(waited, 300));
            l.deactivate();
            assertEquals(Boolean.TRUE, waited.get(5, TimeUnit.SECONDS));
            assertTrue("returns at once once stopped", l.awaitStopped(0));
        } finally {
            // deactivate removed it already: removing it again finds nothing.
            assertFalse("deactivate left the hook registered", Runtime.getRuntime().removeShutdownHook(hook));
        }
    }

    @Test(timeout = 30_000)
    public void withoutADrainNoHookAndTheWaitIsBounded() throws Exception {
        RemoteListener l = new RemoteListener();
        l.start(config(0));
        try {
            assertNull(l.shutdownWait());
            long t0 = System.nanoTime();
            assertFalse(l.awaitStopped(1));
            assertTrue(System.nanoTime() - t0 >= TimeUnit.SECONDS.toNanos(1));
        } finally {
            l.deactivate();
        }
    }

    private static boolean waitedWithin(CompletableFuture<Boolean> f, long millis) throws Exception {
        try {
            f.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        }
    }
}
