package io.vgpu.core.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.RemoteBackend;
import io.vgpu.backend.remote.RemoteListener;
import io.vgpu.backend.remote.internal.Configs;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.junit.After;
import org.junit.Test;

/**
 * A remote host that stops in order (its listener deactivating) drains: its guest hears it in a
 * heartbeat, reports itself unavailable ("host draining") and the core moves the guest's sessions
 * to the next backend of the preference list while the host still serves them; then the host
 * closes. Listener and guest in this JVM, plaintext on loopback.
 */
public class MigrationDrainTest {
    private Router router;
    private MockBackend host;
    private RemoteListener listener;
    private RemoteBackend remote;

    private void start(int drainSeconds, boolean localBackend) throws Exception {
        host = MigrationTest.mock("host", Map.of());
        Map<String, Object> l = new HashMap<>();
        l.put("address", "127.0.0.1");
        l.put("port", "0");
        l.put("plaintext", "true");
        l.put("drain.seconds", Integer.toString(drainSeconds));
        listener = new RemoteListener(Configs.of(RemoteListener.Config.class, l), Map.of("mock", (CudaService) host));
        Map<String, Object> g = new HashMap<>();
        g.put("backend.id", "gpu1");
        g.put("address", "127.0.0.1");
        g.put("port", Integer.toString(listener.port()));
        g.put("plaintext", "true");
        g.put("connect.wait.ms", "8000");
        remote = new RemoteBackend(Configs.of(RemoteBackend.Config.class, g));
        router = new Router();
        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", "gpu1, mock")));
        if (localBackend) {
            router.addBackend(MigrationTest.mock("mock", Map.of()), Map.of(CudaService.BACKEND_ID, "mock"));
        }
        router.addBackend(remote, Map.of(CudaService.BACKEND_ID, "gpu1"));
        assertTrue(remote.info().toString(), remote.info().available);
    }

    @After
    public void tearDown() {
        if (router != null) {
            router.deactivate();
            remote.deactivate();
            listener.deactivate();
        }
    }

    private MigrationTest.App remoteApp() {
        ClientInfo c = new ClientInfo();
        c.processName = "drained";
        MigrationTest.App app = MigrationTest.build((SessionImpl) router.open(c));
        assertEquals("gpu1", app.s.info().backend);
        MigrationTest.verify(app);
        return app;
    }

    private static void await(String what, BooleanSupplier done) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!done.getAsBoolean()) {
            assertTrue("timed out waiting until " + what, System.nanoTime() < deadline);
            Thread.onSpinWait();
        }
    }

    /** What a call on the session returns once its remote device is gone: an error, at once. */
    private static int readBack(MigrationTest.App app) {
        return app.s.memcpyDtoH(app.ctx, ByteBuffer.allocate(64), app.aligned, 0);
    }

    @Test(timeout = 120_000)
    public void aDrainingHostsSessionsMoveToTheNextBackend() throws Exception {
        start(10, true);
        MigrationTest.App app = remoteApp();
        long t0 = System.nanoTime();
        listener.deactivate(); // returns once the guest's work left or drain.seconds passed
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals("mock", app.s.info().backend);
        List<MigrationRecord> moves = app.s.info().migrations;
        assertEquals(moves.toString(), 1, moves.size());
        MigrationRecord r = moves.get(0);
        assertTrue(r.toString(), r.ok);
        assertEquals("evacuation", r.reason);
        assertEquals("gpu1", r.from);
        assertEquals("mock", r.to);
        MigrationTest.verify(app); // the bytes came along and the kernel computes on the local mock
        MigrationTest.assertEmpty(host);
        String drain = listener.lastDrain();
        assertTrue(drain, drain.matches("drained 1 guest\\(s\\) in \\d+ ms"));
        assertTrue(drain + " took " + ms + " ms", ms < 10_000);
        System.out.println("drain: " + drain + "; deactivate took " + ms + " ms; evacuation " + r.totalNanos / 1_000_000 + " ms");
        assertEquals(List.of(), listener.peers());
        assertEquals(-1, listener.port());
        await("the guest sees the host gone", () -> !remote.info().available);
    }

    @Test(timeout = 120_000)
    public void drainSecondsZeroClosesAtOnceAndCallsFail() throws Exception {
        start(0, true);
        MigrationTest.App app = remoteApp();
        listener.deactivate();
        assertNull(listener.lastDrain());
        await("calls fail", () -> readBack(app) == CuResult.DEVICE_UNAVAILABLE);
        assertEquals("gpu1", app.s.info().backend);
        assertEquals(List.of(), app.s.info().migrations);
    }

    @Test(timeout = 120_000)
    public void withNowhereToGoSessionsStayAndFailCleanlyWhenTheHostCloses() throws Exception {
        start(2, false);
        MigrationTest.App app = remoteApp();
        Thread stop = new Thread(listener::deactivate, "drain");
        stop.start();
        // While the host waits, the guest reports itself unavailable, saying why.
        await("the guest hears the drain", () -> "host draining".equals(remote.info().reason));
        assertTrue(!remote.info().available);
        stop.join(30_000);
        assertTrue(!stop.isAlive());
        assertEquals("drained 1 guest(s) in", listener.lastDrain().replaceFirst(" \\d+ ms.*", ""));
        assertTrue(listener.lastDrain(), listener.lastDrain().endsWith("(1 still held work after 2 s)"));
        assertEquals("gpu1", app.s.info().backend);
        assertEquals(List.of(), app.s.info().migrations);
        await("calls fail", () -> readBack(app) == CuResult.DEVICE_UNAVAILABLE);
    }
}
