package io.vgpu.core.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * Issue 13, the core's part: sizes and addresses from the wire are checked overflow-safe against
 * the session's allocations and the address window before any work; hints outside the window are
 * ignored; copies and memsets reach the backend in bounded pieces and stop once the session is
 * abandoned; the management plane never waits for a session's running request.
 */
public class HardeningTest {
    private static final long MIB = 1L << 20;
    /** 2^63 - 4096, the size of the reported cuMemsetD8 and cuMemcpyDtoD. */
    private static final long HUGE = Long.MAX_VALUE - 4095;
    private static final long WINDOW_BASE = AddressSpace.DEFAULT_BASE;
    private static final long WINDOW_END = AddressSpace.DEFAULT_BASE + AddressSpace.DEFAULT_SIZE;

    private MockBackend mock;
    /** What the backend call of that name does before the mock runs it (tests make it slow). */
    private final Map<String, Runnable> before = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> calls = new java.util.concurrent.ConcurrentHashMap<>();
    private Router router;

    @Before
    public void setUp() {
        mock = new MockBackend(SessionTest.defaults(MockBackend.Config.class, Map.of()));
        CudaService spy = (CudaService) Proxy.newProxyInstance(CudaService.class.getClassLoader(),
                new Class<?>[] {CudaService.class}, (p, m, a) -> {
                    calls.computeIfAbsent(m.getName(), k -> new AtomicInteger()).incrementAndGet();
                    Runnable r = before.get(m.getName());
                    if (r != null) {
                        r.run();
                    }
                    try {
                        return m.invoke(mock, a);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        router = new Router();
        router.configure(SessionTest.defaults(Router.Config.class, Map.of()));
        router.addBackend(spy, Map.of(CudaService.BACKEND_ID, "mock"));
    }

    @After
    public void tearDown() {
        router.deactivate();
    }

    private SessionImpl open() {
        ClientInfo c = new ClientInfo();
        c.pid = 1;
        c.processName = "hardening";
        return (SessionImpl) router.open(c);
    }

    private static long ctx(SessionImpl s) {
        long[] c = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, c));
        return c[0];
    }

    private static long alloc(SessionImpl s, long ctx, long size) {
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAlloc(ctx, size, p));
        return p[0];
    }

    private int backendCalls(String name) {
        AtomicInteger n = calls.get(name);
        return n == null ? 0 : n.get();
    }

    @Test(timeout = 10_000)
    public void aMemsetWhoseEndWrapsIsInvalidValueBeforeTheBackendSeesIt() {
        SessionImpl s = open();
        long c = ctx(s);
        long p = alloc(s, c, MIB);
        // cuMemsetD8(p, 0, 2^63 - 4096) on the client's own 1 MiB: the end used to wrap negative,
        // pass the check, and spin in the mock for 2^43 pieces.
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, p, 0, 1, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, p, 0, 4, Long.MAX_VALUE / 4, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, p, 0, 1, -4096, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, p, 0, 1, MIB + 1, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, Long.MAX_VALUE - 4095, 0, 1, 8192, 0));
        assertEquals(0, backendCalls("memset"));
        assertEquals(CuResult.SUCCESS, s.memset(c, p, 0x5a, 1, MIB, 0));
    }

    @Test(timeout = 10_000)
    public void aCopyWhoseEndWrapsIsInvalidValueBeforeTheBackendSeesIt() {
        SessionImpl s = open();
        long c = ctx(s);
        long p = alloc(s, c, MIB);
        // cuMemcpyDtoD(p + 1 MiB - 1, p, 2^63 - 4096).
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, p + MIB - 1, p, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, p, p + MIB - 1, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, p, p, -1, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, p, Long.MAX_VALUE - 10, 100, 0));
        assertEquals(0, backendCalls("memcpyDtoD"));
        assertEquals(CuResult.SUCCESS, s.memcpyDtoD(c, p + 1, p, MIB - 1, 0));
    }

    private static final String GLOBALS_PTX = ".version 8.0\n.target sm_90\n.address_size 64\n"
            + ".global .align 8 .b8 table[4096];\n"
            + ".visible .entry touch(.param .u64 p)\n{\n  ret;\n}\n";

    @Test(timeout = 10_000)
    public void aNegativeSizeIntoModuleGlobalsIsInvalidValue() {
        SessionImpl s = open();
        long c = ctx(s);
        long[] module = new long[1];
        assertEquals(CuResult.SUCCESS, s.moduleLoad(c, (GLOBALS_PTX + "\0").getBytes(StandardCharsets.US_ASCII), module));
        long[] g = new long[2];
        assertEquals(CuResult.SUCCESS, s.globalGet(module[0], "table", g));
        // The globals check added before it compared: a negative size passed and reached the mock,
        // whose bounce buffer threw IllegalArgumentException "capacity < 0" (CUDA_ERROR_UNKNOWN).
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, g[0], g[0], -1, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, g[0] + 8, g[0], Long.MIN_VALUE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyDtoD(c, g[0], g[0] + 8, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memset(c, g[0], 0, 1, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, s.memcpyHtoD(c, g[0] + 4090, ByteBuffer.allocate(16), 0));
        assertEquals(0, backendCalls("memcpyDtoD") + backendCalls("memset") + backendCalls("memcpyHtoD"));
        assertEquals(CuResult.SUCCESS, s.memcpyDtoD(c, g[0] + 8, g[0], 4088, 0));
    }

    @Test
    public void aReservationHintOutsideTheWindowIsIgnored() {
        SessionImpl s = open();
        long c = ctx(s);
        long[] v = new long[1];
        // Used to succeed at the hint; the free list then held a range past 2^63 and the next
        // cuMemAlloc of any client returned 0x8000000000000000.
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 * MIB, 0, 0x7fff_ffff_ffe0_0000L, v));
        assertTrue(Long.toHexString(v[0]), v[0] >= WINDOW_BASE && v[0] + 2 * MIB <= WINDOW_END);
        // Just past the end, just below the start, at the top of the address space, negative.
        long[] others = {WINDOW_END, WINDOW_BASE - 2 * MIB, 0xffff_ffff_ffe0_0000L, 0x8000_0000_0000_0000L, 0x7fff_ffff_ffe0_0000L};
        for (long hint : others) {
            long[] w = new long[1];
            assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 * MIB, 0, hint, w));
            assertTrue(Long.toHexString(hint) + " gave " + Long.toHexString(w[0]), w[0] >= WINDOW_BASE && w[0] + 2 * MIB <= WINDOW_END);
            assertEquals(CuResult.SUCCESS, s.memAddressFree(w[0], 2 * MIB));
        }
        // One that straddles the end of the window is ignored too; a free one inside is honoured.
        long[] straddle = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(4 * MIB, 0, WINDOW_END - 2 * MIB, straddle));
        assertTrue(straddle[0] + 4 * MIB <= WINDOW_END);
        long[] inside = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 * MIB, 0, WINDOW_BASE + (1L << 40), inside));
        assertEquals(WINDOW_BASE + (1L << 40), inside[0]);

        for (SessionImpl any : List.of(s, open())) {
            long cx = any == s ? c : ctx(any);
            long p = alloc(any, cx, MIB);
            assertNotEquals(0x8000_0000_0000_0000L, p);
            assertTrue(Long.toHexString(p), p >= WINDOW_BASE && p + MIB <= WINDOW_END);
        }
        // The reservation is usable like any other.
        long[] h = new long[1];
        assertEquals(CuResult.SUCCESS, s.memCreate(0, 2 * MIB, h));
        assertEquals(CuResult.SUCCESS, s.memMap(v[0], 2 * MIB, 0, h[0]));
        assertEquals(CuResult.SUCCESS, s.memset(c, v[0], 7, 1, 2 * MIB, 0));
        assertEquals(CuResult.SUCCESS, s.memUnmap(v[0], 2 * MIB));
        assertEquals(CuResult.SUCCESS, s.memRelease(h[0]));
        assertEquals(CuResult.SUCCESS, s.memAddressFree(v[0], 2 * MIB));
    }

    @Test
    public void vmmRangesThatWrapAreInvalidValue() {
        SessionImpl s = open();
        long[] v = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(4 * MIB, 0, 0, v));
        long[] h = new long[1];
        assertEquals(CuResult.SUCCESS, s.memCreate(0, 2 * MIB, h));
        assertEquals(CuResult.INVALID_VALUE, s.memMap(v[0], 2 * MIB, Long.MAX_VALUE - MIB, h[0]));
        assertEquals(CuResult.INVALID_VALUE, s.memMap(v[0], HUGE, 0, h[0]));
        assertEquals(CuResult.INVALID_VALUE, s.memMap(v[0] + 2 * MIB, -2 * MIB, 0, h[0]));
        assertEquals(CuResult.INVALID_VALUE, s.memUnmap(v[0], HUGE));
        assertEquals(CuResult.INVALID_VALUE, s.memUnmap(v[0], -1));
        assertEquals(CuResult.INVALID_VALUE, s.memAddressFree(v[0], HUGE));
        assertEquals(0, backendCalls("memMap") + backendCalls("memUnmap"));
        assertEquals(CuResult.SUCCESS, s.memMap(v[0] + 2 * MIB, 2 * MIB, 0, h[0]));
        assertEquals(CuResult.INVALID_VALUE, s.memAddressFree(v[0], 4 * MIB)); // still mapped
        assertEquals(CuResult.SUCCESS, s.memUnmap(v[0] + 2 * MIB, 2 * MIB));
        assertEquals(CuResult.SUCCESS, s.memAddressFree(v[0], 4 * MIB));
    }

    @Test
    public void aReservationRightBehindAnAllocationCanBeFreed() {
        SessionImpl s = open();
        long c = ctx(s);
        long p = alloc(s, c, 2 * MIB);
        long[] v = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAddressReserve(2 * MIB, 0, p + 2 * MIB, v));
        assertEquals(p + 2 * MIB, v[0]);
        assertEquals(CuResult.SUCCESS, s.memAddressFree(v[0], 2 * MIB));
    }

    @Test(timeout = 20_000)
    public void theManagementPlaneAnswersWhileARequestRuns() throws Exception {
        SessionImpl busy = open();
        long c = ctx(busy);
        long p = alloc(busy, c, 64 * MIB);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        before.put("memset", () -> {
            inside.countDown();
            await(release);
        });
        CompletableFuture<Integer> memset = CompletableFuture.supplyAsync(() -> busy.memset(c, p, 0, 1, 64 * MIB, 0));
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        try {
            // The session's monitor is held by the memset; none of this may wait for it.
            long t0 = System.nanoTime();
            List<SessionInfo> all = router.sessions();
            SessionInfo mine = busy.info();
            router.status();
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue("took " + millis + " ms", millis < 1000);
            assertEquals(1, all.size());
            assertEquals(64 * MIB, all.get(0).memoryUsed);
            assertEquals(1, mine.contexts);
            assertArrayEquals(new long[] {64 * MIB}, mine.deviceMemory);
            // Another session works meanwhile.
            SessionImpl other = open();
            long oc = ctx(other);
            long q = alloc(other, oc, MIB);
            before.remove("memset");
            assertEquals(CuResult.SUCCESS, other.memset(oc, q, 1, 1, MIB, 0));
            other.close();
            assertFalse(memset.isDone());
        } finally {
            release.countDown();
        }
        assertEquals(CuResult.SUCCESS, (int) memset.get(10, TimeUnit.SECONDS));
    }

    @Test(timeout = 20_000)
    public void anAbandonedSessionStopsBetweenPiecesAndRefusesMore() throws Exception {
        SessionImpl s = open();
        s.chunk = 64 * 1024;
        long c = ctx(s);
        long p = alloc(s, c, 4 * MIB);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        before.put("memset", () -> {
            inside.countDown();
            await(release);
        });
        CompletableFuture<Integer> memset = CompletableFuture.supplyAsync(() -> s.memset(c, p, 0x11, 4, MIB, 0));
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        s.abandon(); // from this thread, while the memset holds the session
        assertTrue(s.abandoned());
        assertEquals(1, backendCalls("abandon"));
        release.countDown();
        assertEquals(CuResult.DEINITIALIZED, (int) memset.get(10, TimeUnit.SECONDS));
        assertEquals("one piece of 64 pieces ran", 1, backendCalls("memset"));
        assertEquals(CuResult.DEINITIALIZED, s.memcpyDtoD(c, p, p + 8, 16, 0));
        assertEquals(CuResult.DEINITIALIZED, s.memAlloc(c, MIB, new long[1]));
        s.close();
        assertEquals(0, router.sessions().size());
    }

    @Test(timeout = 20_000)
    public void closeFromAnotherThreadStopsTheRunningRequestFirst() throws Exception {
        SessionImpl s = open();
        s.chunk = 64 * 1024;
        long c = ctx(s);
        long p = alloc(s, c, 4 * MIB);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch abandoned = new CountDownLatch(1);
        // The first piece holds the request until close() has told the backend to abandon the
        // session's work, so close() has to stop the copy rather than wait for its 48 pieces.
        before.put("abandon", abandoned::countDown);
        before.put("memcpyDtoD", () -> {
            inside.countDown();
            await(abandoned);
        });
        CompletableFuture<Integer> copy = CompletableFuture.supplyAsync(() -> s.memcpyDtoD(c, p + MIB, p, 3 * MIB, 0));
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        s.close(); // the service stopping: returns once the copy gave up
        assertEquals(CuResult.DEINITIALIZED, (int) copy.get(10, TimeUnit.SECONDS));
        assertEquals("the copy stopped after the piece that was running", 1, backendCalls("memcpyDtoD"));
        long[] info = new long[2];
        mock.memGetInfo(0, info);
        assertEquals(info[1], info[0]);
    }

    @Test
    public void piecesOfAnOverlappingCopyKeepMemmoveOrder() {
        SessionImpl s = open();
        s.chunk = 4096;
        long c = ctx(s);
        int n = 5 * 4096 + 123;
        long p = alloc(s, c, 3L * n);
        byte[] data = new byte[n];
        new java.util.Random(13).nextBytes(data);
        for (int shift : new int[] {1, 4097, -1, -4097, 3 * 4096 + 5}) {
            long src = p + n;
            assertEquals(CuResult.SUCCESS, s.memcpyHtoD(c, src, ByteBuffer.wrap(data), 0));
            assertEquals(CuResult.SUCCESS, s.memcpyDtoD(c, src + shift, src, n, 0));
            ByteBuffer back = ByteBuffer.allocate(n);
            assertEquals(CuResult.SUCCESS, s.memcpyDtoH(c, back, src + shift, 0));
            assertArrayEquals("shift " + shift, data, back.array());
        }
        // A memset in pieces of whole elements keeps a 4-byte pattern in phase.
        assertEquals(CuResult.SUCCESS, s.memset(c, p + 4, 0x04030201, 4, (3L * n - 8) / 4, 0));
        ByteBuffer back = ByteBuffer.allocate(4 * 4096);
        assertEquals(CuResult.SUCCESS, s.memcpyDtoH(c, back, p + 4, 0));
        for (int i = 0; i < back.capacity(); i++) {
            assertEquals("byte " + i, (i % 4) + 1, back.get(i));
        }
    }

    private static void await(CountDownLatch l) {
        try {
            l.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
