package io.vgpu.core.internal;

import static io.vgpu.core.internal.SessionTest.defaults;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Before;
import org.junit.Test;

/** The router's preference list: first available backend, failover, recovery, and the reasons it shows. */
public class RouterPreferenceTest {
    private static final String LINK_DEAD = "link to gpuhost:7447 lost: no answer for 3000 ms";

    private Router router;
    /** The reason gpu1 is down, null while its link is up: a remote backend's info() as the link changes. */
    private final AtomicReference<String> gpu1Down = new AtomicReference<>();
    private CudaService gpu1;
    private MockBackend mock;

    @Before
    public void setUp() {
        router = new Router();
        configure("gpu1, gpu2, mock");
        gpu1 = switchable(new MockBackend(defaults(MockBackend.Config.class,
                Map.of("backend_id", "gpu1", "name", "NVIDIA A100-SXM4-40GB", "memory_mib", 40960L))), gpu1Down);
        mock = new MockBackend(defaults(MockBackend.Config.class, Map.of()));
        router.addBackend(gpu1, Map.of(CudaService.BACKEND_ID, "gpu1"));
        router.addBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
    }

    /** A backend whose availability the test switches, delegating everything else to a mock. */
    private static CudaService switchable(MockBackend delegate, AtomicReference<String> down) {
        return (CudaService) Proxy.newProxyInstance(CudaService.class.getClassLoader(), new Class<?>[] {CudaService.class},
                (proxy, m, args) -> {
                    if (m.getName().equals("info")) {
                        BackendInfo info = delegate.info();
                        String why = down.get();
                        if (why != null) {
                            info.available = false;
                            info.reason = why;
                        }
                        return info;
                    }
                    try {
                        return m.invoke(delegate, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private void configure(String backend) {
        router.configure(defaults(Router.Config.class, Map.of("backend", backend)));
    }

    private Session open() {
        ClientInfo c = new ClientInfo();
        c.pid = 11;
        c.processName = "preference-test";
        return router.open(c);
    }

    private static String deviceName(Session s) {
        assertEquals(CuResult.SUCCESS, s.check());
        return s.devices()[0].name;
    }

    @Test
    public void theListIsParsedInOrderWithCommasOrBlanksAndEachIdOnce() {
        assertEquals(List.of("gpu1", "gpu2", "mock"), Router.parsePreference(" gpu1,gpu2  mock , gpu1 "));
        assertEquals(List.of("mock"), Router.parsePreference("mock"));
        assertEquals(List.of(), Router.parsePreference("  "));
    }

    @Test
    public void newSessionsGoToTheFirstAvailableBackendAndBackWhenItRecovers() {
        Session first = open();
        assertEquals("NVIDIA A100-SXM4-40GB", deviceName(first));
        assertEquals("gpu1", router.status().activeBackend);
        assertTrue(router.status().backendPresent);

        gpu1Down.set(LINK_DEAD);
        Session during = open();
        // gpu2 is listed but nothing registers under it: mock serves.
        assertEquals("NVIDIA H100 80GB HBM3", deviceName(during));
        RouterStatus st = router.status();
        assertEquals("mock", st.activeBackend);
        assertTrue(st.backendPresent);
        assertEquals(List.of("gpu1, gpu2, mock".split(", ")), st.preference);
        assertEquals(List.of("gpu1: unavailable: " + LINK_DEAD, "gpu2: not registered"), st.skipped);
        assertTrue(st.message, st.message.startsWith("active backend mock: NVIDIA H100 80GB HBM3 ("));
        assertTrue(st.message, st.message.endsWith(" (preference gpu1, gpu2, mock; skipped gpu1: unavailable: " + LINK_DEAD
                + "; skipped gpu2: not registered)"));

        gpu1Down.set(null);
        Session after = open();
        assertEquals("NVIDIA A100-SXM4-40GB", deviceName(after));
        // Each session stays where it was bound.
        assertEquals(List.of("gpu1", "mock", "gpu1"), router.sessions().stream().map(s -> s.backend).toList());
    }

    @Test
    public void aSessionBoundDuringTheOutageKeepsItsDataWhenTheFirstChoiceReturns() {
        gpu1Down.set(LINK_DEAD);
        Session s = open();
        long[] ctx = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, ctx));
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAlloc(ctx[0], 1 << 16, p));
        byte[] data = new byte[1 << 16];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 + 7);
        }
        assertEquals(CuResult.SUCCESS, s.memcpyHtoD(ctx[0], p[0], ByteBuffer.wrap(data), 0));
        gpu1Down.set(null);
        assertEquals("gpu1", router.status().activeBackend);
        ByteBuffer back = ByteBuffer.allocate(data.length);
        assertEquals(CuResult.SUCCESS, s.memcpyDtoH(ctx[0], back, p[0], 0));
        assertArrayEquals(data, back.array());
        assertEquals("mock", s.info().backend);
    }

    @Test
    public void aBackendThatRegistersLaterTakesItsPlaceInTheList() {
        gpu1Down.set(LINK_DEAD);
        assertEquals("mock", router.status().activeBackend);
        MockBackend gpu2 = new MockBackend(defaults(MockBackend.Config.class, Map.of("backend_id", "gpu2", "name", "NVIDIA L4")));
        router.addBackend(gpu2, Map.of(CudaService.BACKEND_ID, "gpu2"));
        assertEquals("NVIDIA L4", deviceName(open()));
        router.removeBackend(gpu2, Map.of(CudaService.BACKEND_ID, "gpu2"));
        assertEquals("NVIDIA H100 80GB HBM3", deviceName(open()));
    }

    @Test
    public void whenNoListedBackendIsAvailableTheFirstRegisteredOneTakesSessionsAsASingleIdAlwaysDid() {
        configure("gpu1");
        gpu1Down.set(LINK_DEAD);
        RouterStatus st = router.status();
        assertEquals("gpu1", st.activeBackend);
        assertFalse(st.backendPresent);
        assertTrue(st.message, st.message.startsWith("active backend gpu1: NVIDIA A100-SXM4-40GB ("));
        assertTrue(st.message, st.message.endsWith(" (unavailable: " + LINK_DEAD + ")"));
        assertEquals("gpu1", open().info().backend);

        configure("gpu1, mock");
        router.removeBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
        assertEquals("gpu1", router.status().activeBackend);
        assertFalse(router.status().backendPresent);
    }

    @Test
    public void noRegisteredBackendIsAStatusAndSessionsAnswerNoDevice() {
        configure("gpu7, gpu8");
        RouterStatus st = router.status();
        assertFalse(st.backendPresent);
        assertEquals("gpu7", st.activeBackend);
        assertEquals("no backend: none of gpu7, gpu8 is registered; CUDA clients get CUDA_ERROR_NO_DEVICE", st.message);
        Session s = open();
        assertEquals(CuResult.NO_DEVICE, s.check());
        assertEquals(0, s.devices().length);
    }

    @Test
    public void nextAvailableWalksTheListLeavingOutWhatIsExcluded() {
        assertEquals(Optional.of("gpu1"), router.nextAvailable(Set.of()));
        assertEquals(Optional.of("mock"), router.nextAvailable(Set.of("gpu1")));
        assertEquals(Optional.empty(), router.nextAvailable(Set.of("gpu1", "mock")));
        gpu1Down.set(LINK_DEAD);
        assertEquals(Optional.of("mock"), router.nextAvailable(Set.of()));
        // Unlike new sessions, a move never goes to a backend that cannot serve.
        router.removeBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
        assertEquals(Optional.empty(), router.nextAvailable(Set.of()));
        // A registered but unlisted backend is never chosen.
        MockBackend other = new MockBackend(defaults(MockBackend.Config.class, Map.of("backend_id", "other")));
        router.addBackend(other, Map.of(CudaService.BACKEND_ID, "other"));
        assertEquals(Optional.empty(), router.nextAvailable(Set.of()));
    }

    @Test
    public void backendsListThePreferenceInOrderWithWhyEachWasSkipped() {
        MockBackend other = new MockBackend(defaults(MockBackend.Config.class, Map.of("backend_id", "a-unlisted")));
        router.addBackend(other, Map.of(CudaService.BACKEND_ID, "a-unlisted"));
        gpu1Down.set(LINK_DEAD);
        List<BackendInfo> list = router.backends();
        assertEquals(List.of("gpu1", "gpu2", "mock", "a-unlisted"), list.stream().map(b -> b.id).toList());
        assertEquals(List.of(1, 2, 3, 0), list.stream().map(b -> b.preference).toList());
        assertEquals(List.of(false, false, true, true), list.stream().map(b -> b.available).toList());
        assertEquals(LINK_DEAD, list.get(0).reason);
        assertEquals("no backend is registered as gpu2", list.get(1).reason);

        String shown = new Commands(router).backends();
        assertEquals(String.join("\n",
                "  gpu1 (unavailable: " + LINK_DEAD + ") - simulated 1 x NVIDIA A100-SXM4-40GB [preference 1]",
                "  gpu2 (unavailable: no backend is registered as gpu2) - not registered [preference 2]",
                "* mock (available) - simulated 1 x NVIDIA H100 80GB HBM3 [preference 3]",
                "  a-unlisted (available) - simulated 1 x NVIDIA H100 80GB HBM3",
                "new sessions go to mock: skipped gpu1: unavailable: " + LINK_DEAD + "; gpu2: not registered"), shown);
    }

    @Test
    public void useTakesAListButRefusesAnIdNothingRegistersUnder() throws Exception {
        AtomicReference<Object> written = new AtomicReference<>();
        org.osgi.service.cm.Configuration config = (org.osgi.service.cm.Configuration) Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {org.osgi.service.cm.Configuration.class}, (proxy, m, args) -> {
                    if (m.getName().equals("update")) {
                        written.set(((java.util.Dictionary<?, ?>) args[0]).get("backend"));
                    }
                    return null;
                });
        java.lang.reflect.Field f = Router.class.getDeclaredField("configAdmin");
        f.setAccessible(true);
        f.set(router, Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {org.osgi.service.cm.ConfigurationAdmin.class}, (proxy, m, args) -> config));
        Commands commands = new Commands(router);
        assertEquals("new sessions go to the first available of gpu1, mock", commands.use("gpu1", "mock"));
        assertEquals("gpu1, mock", written.get());
        assertEquals("new sessions go to the first available of mock, gpu1", commands.use("mock,gpu1"));
        assertEquals("mock, gpu1", written.get());
        written.set(null);
        // gpu2 is listed in the configuration, yet unregistered: a typed command may not name it.
        String refused = commands.use("gpu1", "gpu2");
        assertTrue(refused, refused.startsWith("no backend 'gpu2' is registered (registered: gpu1, mock)"));
        assertEquals("name a backend, or several in order of preference; nothing changed", commands.use(" , "));
        assertEquals(null, written.get());
    }
}
