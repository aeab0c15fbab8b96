package io.vgpu.core.internal;

import static io.vgpu.core.internal.SessionTest.defaults;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.Field;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Before;
import org.junit.Test;
import org.osgi.framework.Constants;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;

/** The router's choice of backend: switching, losing and regaining it, ids that are missing or repeated. */
public class RouterTest {
    private Router router;
    private MockBackend h100;
    private MockBackend a100;

    @Before
    public void setUp() {
        router = new Router();
        router.configure(defaults(Router.Config.class, Map.of()));
        h100 = new MockBackend(defaults(MockBackend.Config.class, Map.of()));
        a100 = new MockBackend(defaults(MockBackend.Config.class,
                Map.of("backend_id", "mock2", "name", "NVIDIA A100-SXM4-40GB", "memory_mib", 40960L)));
        router.addBackend(h100, Map.of(CudaService.BACKEND_ID, "mock"));
        router.addBackend(a100, Map.of(CudaService.BACKEND_ID, "mock2"));
    }

    private Session open() {
        ClientInfo c = new ClientInfo();
        c.pid = 7;
        c.processName = "router-test";
        return router.open(c);
    }

    private void configure(String backend) {
        router.configure(defaults(Router.Config.class, Map.of("backend", backend)));
    }

    @Test
    public void aSwitchSendsNewSessionsToTheNewBackendAndLeavesRunningOnesWhereTheyAre() {
        Session before = open();
        long[] ctx = new long[1];
        assertEquals(CuResult.SUCCESS, before.ctxCreate(0, 0, ctx));
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, before.memAlloc(ctx[0], 4096, p));
        byte[] data = new byte[4096];
        data[17] = 42;
        assertEquals(CuResult.SUCCESS, before.memcpyHtoD(ctx[0], p[0], ByteBuffer.wrap(data), 0));

        configure("mock2");
        assertEquals("mock2", router.status().activeBackend);
        Session after = open();
        assertEquals("NVIDIA A100-SXM4-40GB", after.devices()[0].name);
        assertEquals("NVIDIA H100 80GB HBM3", before.devices()[0].name);
        ByteBuffer back = ByteBuffer.allocate(4096);
        assertEquals(CuResult.SUCCESS, before.memcpyDtoH(ctx[0], back, p[0], 0));
        assertArrayEquals(data, back.array());
        assertEquals(List.of("mock", "mock2"), router.sessions().stream().map(s -> s.backend).sorted().toList());
    }

    @Test
    public void anUnregisteredActiveBackendIsAStatusNotAnError() {
        configure("remote");
        assertFalse(router.status().backendPresent);
        assertTrue(router.status().message, router.status().message.contains("'remote' is not registered"));
        Session s = open();
        assertEquals(CuResult.NO_DEVICE, s.check());
        assertEquals(0, s.devices().length);

        // The backend registering later serves the same idle session.
        MockBackend remote = new MockBackend(defaults(MockBackend.Config.class, Map.of("backend_id", "remote")));
        router.addBackend(remote, Map.of(CudaService.BACKEND_ID, "remote"));
        assertTrue(router.status().backendPresent);
        assertEquals(CuResult.SUCCESS, s.check());
    }

    @Test
    public void aBackendWithoutAnIdIsIgnored() {
        MockBackend anonymous = new MockBackend(defaults(MockBackend.Config.class, Map.of("backend_id", "")));
        router.addBackend(anonymous, Map.of(CudaService.BACKEND_ID, "", Constants.SERVICE_PID, "io.vgpu.backend.mock.gpu~l4"));
        assertEquals(List.of("mock", "mock2"), router.backends().stream().map(b -> b.id).toList());
    }

    @Test
    public void aRepeatedIdServesOnlyWithAHigherRanking() {
        MockBackend lower = new MockBackend(defaults(MockBackend.Config.class, Map.of("name", "lower")));
        router.addBackend(lower, Map.of(CudaService.BACKEND_ID, "mock", Constants.SERVICE_RANKING, -1));
        assertEquals("NVIDIA H100 80GB HBM3", open().devices()[0].name);
        MockBackend higher = new MockBackend(defaults(MockBackend.Config.class, Map.of("name", "higher")));
        router.addBackend(higher, Map.of(CudaService.BACKEND_ID, "mock", Constants.SERVICE_RANKING, 5));
        assertEquals("higher", open().devices()[0].name);
        router.removeBackend(higher, Map.of(CudaService.BACKEND_ID, "mock"));
        assertEquals("NVIDIA H100 80GB HBM3", open().devices()[0].name);
    }

    @Test
    public void useWritesTheChoiceIntoTheRoutersConfigurationAndRefusesUnknownIds() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("router-test");
        java.nio.file.Path file = dir.resolve("io.vgpu.router.cfg");
        java.nio.file.Files.writeString(file, "# Which backend.\nbackend = mock\n# Version.\ndriverVersion = 13000\n");
        Hashtable<String, Object> stored = new Hashtable<>();
        stored.put("backend", "mock");
        stored.put("driverVersion", "13000");
        stored.put("felix.fileinstall.filename", file.toUri().toString());
        AtomicReference<Dictionary<String, Object>> updated = new AtomicReference<>();
        Configuration config = (Configuration) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {Configuration.class}, (proxy, m, args) -> {
                    switch (m.getName()) {
                        case "getProperties":
                            return new Hashtable<>(stored);
                        case "update":
                            @SuppressWarnings("unchecked")
                            Dictionary<String, Object> d = (Dictionary<String, Object>) args[0];
                            updated.set(d);
                            return null;
                        default:
                            throw new UnsupportedOperationException(m.getName());
                    }
                });
        ConfigurationAdmin cm = (ConfigurationAdmin) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {ConfigurationAdmin.class}, (proxy, m, args) -> {
                    assertEquals("getConfiguration", m.getName());
                    assertEquals(Router.PID, args[0]);
                    return config;
                });
        Field f = Router.class.getDeclaredField("configAdmin");
        f.setAccessible(true);
        f.set(router, cm);

        Commands commands = new Commands(router);
        String refused = commands.use("mokc2");
        assertTrue(refused, refused.contains("no backend 'mokc2' is registered (registered: mock, mock2)"));
        assertEquals(null, updated.get());

        assertEquals("new sessions go to backend mock2", commands.use("mock2"));
        assertEquals("mock2", updated.get().get("backend"));
        // The file FileInstall writes back to stays attached, and the other settings stay.
        assertEquals(file.toUri().toString(), updated.get().get("felix.fileinstall.filename"));
        assertEquals("13000", updated.get().get("driverVersion"));
        // The file FileInstall watches says the same, comments and other settings kept.
        assertEquals("# Which backend.\nbackend = mock2\n# Version.\ndriverVersion = 13000\n", java.nio.file.Files.readString(file));
        java.nio.file.Files.delete(file);
        java.nio.file.Files.delete(dir);
    }

    @Test
    public void commandsDescribeBackendsAndSessions() {
        Commands commands = new Commands(router);
        String backends = commands.backends();
        assertTrue(backends, backends.contains("* mock (available) - simulated 1 x NVIDIA H100 80GB HBM3"));
        assertTrue(backends, backends.contains("  mock2 (available)"));
        Session s = open();
        long[] ctx = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, ctx));
        assertEquals(CuResult.SUCCESS, s.memAlloc(ctx[0], 3L << 20, new long[1]));
        String sessions = commands.sessions();
        assertTrue(sessions, sessions.lines().anyMatch(l -> l.matches("1\\s+7\\s+0\\s+router-test\\s+mock\\s+\\S+\\s+3 MiB")));
        assertTrue(commands.status(), commands.status().startsWith("active backend mock: NVIDIA H100 80GB HBM3"));
    }
}
