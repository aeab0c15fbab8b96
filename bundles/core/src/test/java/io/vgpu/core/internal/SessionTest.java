package io.vgpu.core.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.util.Map;
import org.junit.Before;
import org.junit.Test;

public class SessionTest {
    private Router router;
    private MockBackend mock;

    static <A> A defaults(Class<A> type, Map<String, Object> overrides) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, m, a) -> {
            Object v = overrides.get(m.getName());
            return v != null ? v : m.getDefaultValue();
        }));
    }

    @Before
    public void setUp() {
        router = new Router();
        router.configure(defaults(Router.Config.class, Map.of()));
        mock = new MockBackend(defaults(MockBackend.Config.class, Map.of()));
        router.addBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
    }

    private Session open() {
        ClientInfo c = new ClientInfo();
        c.pid = 1;
        c.processName = "test";
        return router.open(c);
    }

    private static long ctx(Session s) {
        long[] c = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, c));
        return c[0];
    }

    @Test
    public void pointersComeFromTheServiceWindow() {
        Session s = open();
        long c = ctx(s);
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAlloc(c, 1000, p));
        assertTrue(p[0] >= s.addressWindow()[0] && p[0] < s.addressWindow()[0] + s.addressWindow()[1]);
        long[] range = new long[2];
        assertEquals(CuResult.SUCCESS, s.memGetAddressRange(p[0] + 10, range));
        assertEquals(p[0], range[0]);
        assertEquals(1000, range[1]);
    }

    @Test
    public void foreignAndStaleHandlesAreRejected() {
        Session a = open();
        Session b = open();
        long ca = ctx(a);
        long cb = ctx(b);
        assertNotEquals(ca, cb);
        assertEquals(CuResult.INVALID_CONTEXT, b.memAlloc(ca, 16, new long[1]));
        assertEquals(CuResult.INVALID_CONTEXT, a.ctxDestroy(cb));
        long[] s = new long[1];
        assertEquals(CuResult.SUCCESS, a.streamCreate(ca, 0, 0, s));
        assertEquals(CuResult.INVALID_HANDLE, b.streamSynchronize(s[0]));
        // A handle of one kind is not accepted as another kind.
        assertEquals(CuResult.INVALID_HANDLE, a.eventQuery(s[0]));
        assertEquals(CuResult.SUCCESS, a.ctxDestroy(ca));
        assertEquals(CuResult.INVALID_HANDLE, a.streamSynchronize(s[0]));
        assertEquals(CuResult.INVALID_CONTEXT, a.ctxSynchronize(ca));
    }

    @Test
    public void sessionsCannotTouchEachOthersMemory() {
        Session a = open();
        Session b = open();
        long ca = ctx(a);
        long cb = ctx(b);
        long[] p = new long[1];
        a.memAlloc(ca, 4096, p);
        a.memcpyHtoD(ca, p[0], ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
        assertEquals(CuResult.INVALID_VALUE, b.memcpyDtoH(cb, ByteBuffer.allocate(3), p[0], 0));
        assertEquals(CuResult.INVALID_VALUE, b.memcpyHtoD(cb, p[0], ByteBuffer.allocate(3), 0));
        assertEquals(CuResult.INVALID_VALUE, b.memFree(cb, p[0]));
        ByteBuffer mine = ByteBuffer.allocate(3);
        assertEquals(CuResult.SUCCESS, a.memcpyDtoH(ca, mine, p[0], 0));
        assertArrayEquals(new byte[] {1, 2, 3}, mine.array());
    }

    @Test
    public void closingASessionReleasesEverythingOnTheBackend() {
        long[] before = new long[2];
        mock.memGetInfo(0, before);
        Session s = open();
        long c = ctx(s);
        s.memAlloc(c, 1L << 30, new long[1]);
        long[] va = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(64L << 20, 0, 0, va));
        long[] h = new long[1];
        assertEquals(CuResult.SUCCESS, s.memCreate(0, 2L << 20, h));
        assertEquals(CuResult.SUCCESS, s.memMap(va[0], 2L << 20, 0, h[0]));
        assertEquals(1, router.sessions().size());
        assertEquals((1L << 30) + (2L << 20), router.sessions().get(0).memoryUsed);
        s.close();
        long[] after = new long[2];
        mock.memGetInfo(0, after);
        assertEquals(before[0], after[0]);
        assertEquals(0, router.sessions().size());
        assertEquals(0, router.addressSpace().used());
        assertEquals(CuResult.DEINITIALIZED, s.check());
    }

    @Test
    public void vmmRangesBehaveLikeOneBuffer() {
        Session s = open();
        ctx(s);
        long chunk = 2L << 20;
        long[] va = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(32 * chunk, 0, 0, va));
        long[] h1 = new long[1];
        long[] h2 = new long[1];
        s.memCreate(0, chunk, h1);
        s.memCreate(0, chunk, h2);
        assertEquals(CuResult.SUCCESS, s.memMap(va[0], chunk, 0, h1[0]));
        assertEquals(CuResult.SUCCESS, s.memMap(va[0] + chunk, chunk, 0, h2[0]));
        assertEquals(CuResult.ALREADY_MAPPED, s.memMap(va[0], chunk, 0, h2[0]));
        // A copy straddling the two chunks, as into one buffer; a gap after them is not memory.
        byte[] data = new byte[8192];
        new java.util.Random(5).nextBytes(data);
        assertEquals(CuResult.SUCCESS, s.memcpyHtoD(0, va[0] + chunk - 4096, ByteBuffer.wrap(data), 0));
        ByteBuffer back = ByteBuffer.allocate(8192);
        assertEquals(CuResult.SUCCESS, s.memcpyDtoH(0, back, va[0] + chunk - 4096, 0));
        assertArrayEquals(data, back.array());
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoH(0, ByteBuffer.allocate(16), va[0] + 2 * chunk - 8, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memMap(va[0] + 40 * chunk, chunk, 0, h2[0]));
        assertEquals(CuResult.SUCCESS, s.memRelease(h1[0]));
        assertEquals(CuResult.INVALID_VALUE, s.memRelease(h1[0]));
        // Freeing a reservation that still has mappings is refused.
        assertEquals(CuResult.INVALID_VALUE, s.memAddressFree(va[0], 32 * chunk));
        assertEquals(CuResult.SUCCESS, s.memUnmap(va[0], 2 * chunk));
        assertEquals(CuResult.SUCCESS, s.memAddressFree(va[0], 32 * chunk));
    }

    @Test
    public void withoutABackendSessionsReportNoDevice() {
        router.removeBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
        Session s = open();
        assertEquals(CuResult.NO_DEVICE, s.check());
        assertEquals(CuResult.NO_DEVICE, s.ctxCreate(0, 0, new long[1]));
        assertTrue(router.status().message.contains("no backend"));
        router.addBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
        assertEquals(CuResult.SUCCESS, s.check());
    }

    @Test
    public void launchesOutsideTheHardwareLimitsAreRefused() {
        Session s = open();
        long c = ctx(s);
        String ptx = ".version 8.0\n.target sm_90\n.address_size 64\n"
                + ".visible .entry k(.param .u64 p)\n{\n.shared .align 4 .b8 tile[1024];\nret;\n}\n";
        long[] module = new long[1];
        assertEquals(CuResult.SUCCESS, s.moduleLoad(c, (ptx + "\0").getBytes(java.nio.charset.StandardCharsets.US_ASCII), module));
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, s.functionGet(module[0], "k", fn, new io.vgpu.api.dto.KernelInfo[1]));
        ByteBuffer params = ByteBuffer.allocate(8);
        // The largest grid would run for days through the PTX engine: an empty host kernel stands in.
        mock.registerKernel("k", launch -> { });
        assertEquals(CuResult.SUCCESS, s.launch(fn[0], new LaunchConfig(Integer.MAX_VALUE, 65535, 65535, 1024, 1, 1, 0), params, 0));
        assertEquals(CuResult.SUCCESS, s.launch(fn[0], new LaunchConfig(1, 1, 1, 16, 1, 64, 0), params, 0));
        int optin = s.devices()[0].attributes[CuDeviceAttribute.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN];
        int staticShared = 1024;
        assertEquals(CuResult.SUCCESS, s.launch(fn[0], new LaunchConfig(1, 1, 1, 32, 1, 1, optin - staticShared), params, 0));
        LaunchConfig[] refused = {
            new LaunchConfig(1, 1, 1, 1025, 1, 1, 0),            // threads per block
            new LaunchConfig(1, 1, 1, 1, 1, 65, 0),              // block z
            new LaunchConfig(1, 65536, 1, 32, 1, 1, 0),          // grid y
            new LaunchConfig(1, 1, 65536, 32, 1, 1, 0),          // grid z
            new LaunchConfig(0, 1, 1, 32, 1, 1, 0),              // empty grid
            new LaunchConfig(1, 1, 1, 32, 1, 1, optin - staticShared + 1), // shared memory
        };
        for (LaunchConfig bad : refused) {
            assertEquals(CuResult.INVALID_VALUE, s.launch(fn[0], bad, params, 0));
        }
    }
}
