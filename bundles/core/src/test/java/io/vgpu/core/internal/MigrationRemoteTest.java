package io.vgpu.core.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.RemoteBackend;
import io.vgpu.backend.remote.RemoteListener;
import io.vgpu.backend.remote.internal.Configs;
import java.util.HashMap;
import java.util.Map;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * mock <-> remote(mock): a session moves from a local mock to a mock on a "host" served through
 * backend.remote (listener and guest in this JVM, plaintext on loopback), computes there, and back.
 * Back from the remote, which cannot say what was written, everything is copied and pre-copy
 * falls back to stop-and-copy.
 */
public class MigrationRemoteTest {
    private Router router;
    private MockBackend local;
    private MockBackend host;
    private RemoteListener listener;
    private RemoteBackend remote;

    @Before
    public void setUp() throws Exception {
        host = MigrationTest.mock("host", Map.of());
        Map<String, Object> l = new HashMap<>();
        l.put("address", "127.0.0.1");
        l.put("port", "0");
        l.put("plaintext", "true");
        l.put("peer.memory.mib", "64");
        listener = new RemoteListener(Configs.of(RemoteListener.Config.class, l), Map.of("mock", (CudaService) host));
        Map<String, Object> g = new HashMap<>();
        g.put("backend.id", "gpu1");
        g.put("address", "127.0.0.1");
        g.put("port", Integer.toString(listener.port()));
        g.put("plaintext", "true");
        g.put("connect.wait.ms", "8000");
        remote = new RemoteBackend(Configs.of(RemoteBackend.Config.class, g));
        router = new Router();
        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", "a")));
        local = MigrationTest.mock("a", Map.of());
        router.addBackend(local, Map.of(CudaService.BACKEND_ID, "a"));
        router.addBackend(remote, Map.of(CudaService.BACKEND_ID, "gpu1"));
    }

    @After
    public void tearDown() {
        router.deactivate();
        remote.deactivate();
        listener.deactivate();
    }

    @Test(timeout = 120_000)
    public void aSessionMovesToARemoteHostAndBack() {
        assertTrue(remote.info().toString(), remote.info().available);
        ClientInfo c = new ClientInfo();
        c.processName = "migrant";
        MigrationTest.App app = MigrationTest.build((SessionImpl) router.open(c));
        MigrationTest.verify(app);
        MigrationRecord r = router.migrate(app.s.id(), "gpu1", true);
        assertTrue(r.toString(), r.ok);
        assertTrue(r.toString(), r.precopyRounds > 0); // the local mock tracks writes
        assertEquals("gpu1", app.s.info().backend);
        MigrationTest.assertEmpty(local);
        assertTrue(host.materialisedBytes(0) > 0);
        MigrationTest.verify(app); // the kernel now runs on the host's mock

        r = router.migrate(app.s.id(), "a", true);
        assertTrue(r.toString(), r.ok);
        assertEquals("the source cannot track writes: stop-and-copy", r.message);
        assertEquals("a", app.s.info().backend);
        // Everything the session held came back, written or not: the remote cannot say which.
        assertTrue(r.toString(), r.bytesMoved >= (1 << 20) + 1_000_003 + (4 << 20));
        MigrationTest.verify(app);
        MigrationTest.assertEmpty(host);
        // The host counts what the guest holds until it is released one by one (physical handles
        // outlive a context there): the session that left holds nothing on it any more.
        long[] mem = new long[2];
        assertEquals(CuResult.SUCCESS, remote.memGetInfo(0, mem));
        assertEquals("free under the host's per-guest limit", 64L << 20, mem[0]);
    }
}
