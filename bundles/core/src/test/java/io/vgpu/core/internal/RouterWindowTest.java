package io.vgpu.core.internal;

import static io.vgpu.core.internal.SessionTest.defaults;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The configured device address window: where sessions allocate, what backends are told, bad values. */
public class RouterWindowTest {
    private static final long BASE = 0x2100_0000_0000L;
    private static final long TIB = 1L << 40;

    /** A mock that records the windows the router announces. */
    private static CudaService recording(MockBackend mock, List<AddressWindow> told) {
        return (CudaService) Proxy.newProxyInstance(CudaService.class.getClassLoader(), new Class<?>[] {CudaService.class}, (p, m, a) -> {
            if (m.getName().equals("addressWindow")) {
                told.add(new AddressWindow((Long) a[0], (Long) a[1]));
                return null;
            }
            try {
                return m.invoke(mock, a);
            } catch (java.lang.reflect.InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    private static Router router(Map<String, Object> config, List<AddressWindow> told) {
        Router r = new Router();
        r.configure(defaults(Router.Config.class, config));
        r.addBackend(recording(new MockBackend(defaults(MockBackend.Config.class, Map.of())), told),
                Map.of(CudaService.BACKEND_ID, "mock"));
        return r;
    }

    private static Session open(Router r) {
        ClientInfo c = new ClientInfo();
        c.pid = 9;
        c.processName = "window-test";
        return r.open(c);
    }

    private static long alloc(Session s, long[] ctx) {
        if (ctx[0] == 0) {
            assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, ctx));
        }
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAlloc(ctx[0], 4 << 20, p));
        return p[0];
    }

    @Test
    public void sessionsAllocateInTheConfiguredWindowAndTheBackendIsToldBeforeAnySession() {
        List<AddressWindow> told = new ArrayList<>();
        Router r = router(Map.of("window_base", "0x210000000000", "window_size", "1T"), told);
        assertEquals(List.of(new AddressWindow(BASE, TIB)), told);
        Session s = open(r);
        assertArrayEquals(new long[] {BASE, TIB}, s.addressWindow());
        long[] ctx = new long[1];
        assertEquals(BASE, alloc(s, ctx));
        // A hint in the default window, outside this one, is ignored as the driver ignores hints.
        long[] va = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 << 20, 0, AddressWindow.DEFAULT_BASE, va));
        assertEquals(BASE + (4 << 20), va[0]);
        // A hint inside it is honoured.
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 << 20, 0, BASE + TIB - (2 << 20), va));
        assertEquals(BASE + TIB - (2 << 20), va[0]);
        s.close();
    }

    @Test
    public void decimalAndHexSizesAreTheSameWindow() {
        assertEquals(new AddressWindow(BASE, TIB), Router.parseWindow("36283883716608", "0x10000000000"));
        assertEquals(new AddressWindow(BASE, 512L << 30), Router.parseWindow("0x2100_0000_0000", "512G"));
    }

    @Test
    public void badValuesKeepTheDefaultWindowAndSayWhy() {
        assertEquals("base and size must be positive multiples of 2 MiB",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0x210000001000", "1T")).getMessage());
        assertEquals("the size must be above 0",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0x210000000000", "0")).getMessage());
        assertEquals("the window must end by 0x800000000000 (47-bit user space)",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0x7f0000000000", "2T")).getMessage());
        assertEquals("'lots' is not a number (decimal, 0x hex, or with K, M, G or T)",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0x210000000000", "lots")).getMessage());
        assertEquals("'0xffffffffffffffffff' is not a number (decimal, 0x hex, or with K, M, G or T)",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0xffffffffffffffffff", "1T")).getMessage());
        assertEquals("'9999999T' is too large",
                assertThrows(IllegalArgumentException.class, () -> Router.parseWindow("0x210000000000", "9999999T")).getMessage());

        List<AddressWindow> told = new ArrayList<>();
        Router r = router(Map.of("window_base", "0x7f0000000000", "window_size", "2T"), told);
        assertEquals(List.of(AddressWindow.DEFAULT), told);
        Session s = open(r);
        assertArrayEquals(new long[] {AddressWindow.DEFAULT_BASE, AddressWindow.DEFAULT_SIZE}, s.addressWindow());
        assertEquals(AddressWindow.DEFAULT_BASE, alloc(s, new long[1]));
        s.close();
    }

    @Test
    public void aChangeWaitsForTheOpenSessionsAndThenReachesTheBackend() {
        List<AddressWindow> told = new ArrayList<>();
        Router r = router(Map.of(), told);
        Session running = open(r);
        long[] ctx = new long[1];
        assertEquals(AddressWindow.DEFAULT_BASE, alloc(running, ctx));
        r.configure(defaults(Router.Config.class, Map.of("window_base", "0x210000000000", "window_size", "1T")));
        // Not applied while a session is open: its pointers cannot move, new sessions share its window.
        Session second = open(r);
        assertArrayEquals(new long[] {AddressWindow.DEFAULT_BASE, AddressWindow.DEFAULT_SIZE}, second.addressWindow());
        assertEquals(AddressWindow.DEFAULT_BASE + (4 << 20), alloc(second, new long[1]));
        assertEquals(List.of(AddressWindow.DEFAULT), told);
        second.close();
        running.close();
        assertEquals(List.of(AddressWindow.DEFAULT, new AddressWindow(BASE, TIB)), told);
        Session after = open(r);
        assertEquals(BASE, alloc(after, new long[1]));
        after.close();
    }
}
