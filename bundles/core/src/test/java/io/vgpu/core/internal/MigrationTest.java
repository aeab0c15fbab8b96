package io.vgpu.core.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.backend.mock.MockBackend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;
import org.junit.Before;
import org.junit.Test;

/**
 * Live migration between two mock instances: everything a session holds moves, the application's
 * handles and pointers keep working, and every failure leaves the session exactly as it was.
 */
public class MigrationTest {
    private static final long MIB = 1 << 20;
    /** Adds one to n u32s; its global table starts as 7, 8, 9, 10. */
    private static final String PTX = ".version 8.0\n.target sm_80\n.address_size 64\n"
            + ".visible .global .align 4 .u32 table[4] = {7, 8, 9, 10};\n"
            + ".visible .entry inc(.param .u64 p, .param .u32 n)\n{\n"
            + "  .reg .pred %p;\n  .reg .b32 %r<7>;\n  .reg .b64 %rd<5>;\n"
            + "  ld.param.u64 %rd1, [p];\n  ld.param.u32 %r1, [n];\n"
            + "  mov.u32 %r2, %ctaid.x;\n  mov.u32 %r3, %ntid.x;\n  mov.u32 %r4, %tid.x;\n"
            + "  mad.lo.s32 %r5, %r2, %r3, %r4;\n  setp.ge.u32 %p, %r5, %r1;\n  @%p bra DONE;\n"
            + "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.u32 %rd3, %r5, 4;\n  add.s64 %rd4, %rd2, %rd3;\n"
            + "  ld.global.u32 %r6, [%rd4];\n  add.u32 %r6, %r6, 1;\n  st.global.u32 [%rd4], %r6;\n"
            + "DONE:\n  ret;\n}\n";

    private Router router;
    private MockBackend a;
    private MockBackend b;

    static MockBackend mock(String id, Map<String, Object> config) {
        Map<String, Object> c = new HashMap<>(config);
        c.put("backend_id", id);
        c.putIfAbsent("ptx_workers", 1);
        return new MockBackend(SessionTest.defaults(MockBackend.Config.class, c));
    }

    @Before
    public void setUp() {
        router = new Router();
        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", "a")));
        a = mock("a", Map.of());
        b = mock("b", Map.of("name", "NVIDIA A100-SXM4-80GB", "cc_major", 8));
        router.addBackend(a, Map.of(CudaService.BACKEND_ID, "a"));
        router.addBackend(b, Map.of(CudaService.BACKEND_ID, "b"));
    }

    private SessionImpl open() {
        ClientInfo c = new ClientInfo();
        c.pid = 4242;
        c.processName = "migrant";
        return (SessionImpl) router.open(c);
    }

    /** What a session built, and what its memory must hold. */
    static final class App {
        final SessionImpl s;
        long ctx;
        long aligned;      // 1 MiB, written sparsely
        long odd;          // 1000003 bytes
        long vmm;          // 4 MiB reservation: two 2 MiB chunks side by side, the second released
        long vmmChunk;     // the still-held physical handle
        long module;
        long function;
        long table;
        long stream;
        long event;
        final Map<Long, byte[]> expected = new HashMap<>();

        App(SessionImpl s) {
            this.s = s;
        }
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void ok(int rc) {
        assertEquals(CuResult.name(rc), CuResult.SUCCESS, rc);
    }

    static App build(SessionImpl s) {
        App app = new App(s);
        long[] out = new long[2];
        ok(s.ctxCreate(0, 0, out));
        app.ctx = out[0];
        ok(s.memAlloc(app.ctx, MIB, out));
        app.aligned = out[0];
        assertEquals(0, app.aligned & 0xffff);
        write(app, app.aligned + 3 * 65536 + 17, random(5000, 1));
        ok(s.memAlloc(app.ctx, 1_000_003, out));
        app.odd = out[0];
        write(app, app.odd, random(1_000_003, 2));
        ok(s.memAddressReserve(4 * MIB, 0, 0, out));
        app.vmm = out[0];
        long[] h1 = new long[1];
        long[] h2 = new long[1];
        ok(s.memCreate(0, 2 * MIB, h1));
        ok(s.memCreate(0, 2 * MIB, h2));
        ok(s.memMap(app.vmm, 2 * MIB, 0, h1[0]));
        ok(s.memMap(app.vmm + 2 * MIB, 2 * MIB, 0, h2[0]));
        ok(s.memRelease(h2[0])); // alive through its mapping only
        app.vmmChunk = h1[0];
        write(app, app.vmm + 2 * MIB - 100, random(300, 3)); // across the two chunks
        long[] m = new long[1];
        ok(s.moduleLoad(app.ctx, (PTX + "\0").getBytes(StandardCharsets.US_ASCII), m));
        app.module = m[0];
        KernelInfo[] info = new KernelInfo[1];
        ok(s.functionGet(app.module, "inc", out, info));
        app.function = out[0];
        ok(s.globalGet(app.module, "table", out));
        app.table = out[0];
        write(app, app.table + 4, ints(80)); // changed from its initial 8
        app.expected.put(app.table, ints(7, 80, 9, 10));
        app.expected.remove(app.table + 4);
        ok(s.streamCreate(app.ctx, 1, -1, out));
        app.stream = out[0];
        ok(s.eventCreate(app.ctx, 0, out));
        app.event = out[0];
        ok(s.eventRecord(app.event, app.stream));
        return app;
    }

    private static byte[] ints(int... v) {
        ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int x : v) {
            bb.putInt(x);
        }
        return bb.array();
    }

    private static void write(App app, long at, byte[] data) {
        ok(app.s.memcpyHtoD(app.ctx, at, ByteBuffer.wrap(data), 0));
        app.expected.put(at, data);
    }

    /** Every byte the application wrote reads back; unwritten bytes read as zero; the kernel runs. */
    static void verify(App app) {
        SessionImpl s = app.s;
        for (Map.Entry<Long, byte[]> e : app.expected.entrySet()) {
            ByteBuffer got = ByteBuffer.allocate(e.getValue().length);
            ok(s.memcpyDtoH(app.ctx, got, e.getKey(), app.stream));
            assertArrayEquals("at 0x" + Long.toHexString(e.getKey()), e.getValue(), got.array());
        }
        ByteBuffer zero = ByteBuffer.allocate(65536);
        ok(s.memcpyDtoH(app.ctx, zero, app.aligned + 8 * 65536, 0));
        assertArrayEquals(new byte[65536], zero.array());
        assertEquals(CuResult.SUCCESS, s.eventQuery(app.event));
        assertEquals(CuResult.SUCCESS, s.eventSynchronize(app.event));
        assertEquals(CuResult.SUCCESS, s.streamSynchronize(app.stream));
        long[] range = new long[2];
        ok(s.memGetAddressRange(app.odd + 5, range));
        assertEquals(app.odd, range[0]);
        assertEquals(1_000_003, range[1]);
        // The kernel adds one to the first 1000 u32s of the odd-sized allocation, on this backend.
        ByteBuffer before = ByteBuffer.allocate(4000).order(ByteOrder.LITTLE_ENDIAN);
        ok(s.memcpyDtoH(app.ctx, before, app.odd, 0));
        ByteBuffer params = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(app.odd).putInt(1000);
        params.flip();
        ok(s.launch(app.function, new LaunchConfig(4, 1, 1, 256, 1, 1, 0), params, app.stream));
        ok(s.ctxSynchronize(app.ctx));
        ByteBuffer after = ByteBuffer.allocate(4000).order(ByteOrder.LITTLE_ENDIAN);
        ok(s.memcpyDtoH(app.ctx, after, app.odd, 0));
        for (int i = 0; i < 1000; i++) {
            assertEquals(before.getInt(4 * i) + 1, after.getInt(4 * i));
        }
        app.expected.put(app.odd, bytes(s, app.ctx, app.odd, 1_000_003));
    }

    private static byte[] bytes(SessionImpl s, long ctx, long at, int n) {
        ByteBuffer b = ByteBuffer.allocate(n);
        ok(s.memcpyDtoH(ctx, b, at, 0));
        return b.array();
    }

    static void assertEmpty(MockBackend m) {
        long[] mem = new long[2];
        ok(m.memGetInfo(0, mem));
        assertEquals("nothing left allocated on it", mem[1], mem[0]);
        assertEquals(0, m.materialisedBytes(0));
        assertArrayEquals("contexts and physical handles left", new int[2], m.heldObjects());
    }

    @Test(timeout = 60_000)
    public void everythingMovesThereAndBackAndKeepsWorking() {
        App app = build(open());
        verify(app);
        for (boolean precopy : new boolean[] {false, true}) {
            MigrationRecord r = router.migrate(app.s.id(), "b", precopy);
            assertTrue(r.toString(), r.ok);
            assertEquals("b", app.s.info().backend);
            assertEquals("BOUND", app.s.info().status);
            assertEmpty(a);
            // Only what was written moved: the sparse pages, the odd allocation, the VMM bytes, the globals.
            long written = 5000 + 1_000_003 + 300 + 16;
            assertTrue(r.bytesMoved + " moved", r.bytesMoved >= written && r.bytesMoved <= written + 40 * 65536);
            assertTrue(b.materialisedBytes(0) <= 40 * 65536);
            verify(app);

            r = router.migrate(app.s.id(), "a", precopy);
            assertTrue(r.toString(), r.ok);
            assertEquals("a", app.s.info().backend);
            assertEmpty(b);
            verify(app);
        }
        List<MigrationRecord> history = app.s.info().migrations;
        assertEquals(4, history.size());
        assertEquals("b", history.get(2).to);
        assertTrue(history.get(3).pauseNanos > 0);
        // The handles the application holds stay usable to the end.
        ok(app.s.memRelease(app.vmmChunk));
        ok(app.s.memUnmap(app.vmm, 4 * MIB));
        ok(app.s.memAddressFree(app.vmm, 4 * MIB));
        ok(app.s.moduleUnload(app.module));
        ok(app.s.streamDestroy(app.stream));
        ok(app.s.eventDestroy(app.event));
        ok(app.s.ctxDestroy(app.ctx));
        assertEmpty(a);
    }

    @Test(timeout = 60_000)
    public void theSourceIsReleasedObjectByObjectBeforeItsContextsGo() {
        MockBackend c = mock("c", Map.of());
        List<String> calls = new java.util.ArrayList<>();
        AtomicBoolean moved = new AtomicBoolean();
        CudaService src = wrap(c, (name, args) -> {
            if (moved.get() && List.of("memUnmap", "memRelease", "memFree", "moduleUnload", "ctxDestroy").contains(name)) {
                calls.add(name + (name.equals("memUnmap") || name.equals("memFree") ? " " + Long.toHexString((Long) args[1]) : ""));
                if (name.equals("ctxDestroy")) {
                    // Everything went one by one: the context has nothing left to release.
                    long[] mem = new long[2];
                    ok(c.memGetInfo(0, mem));
                    calls.add("free " + (mem[1] - mem[0]) + ", handles " + c.heldObjects()[1]);
                }
            }
            return null;
        });
        router.addBackend(src, Map.of(CudaService.BACKEND_ID, "src"));
        App app = build(open());
        assertTrue(router.migrate(app.s.id(), "src", false).ok);
        moved.set(true);
        // Pre-copy: the source's scratch window for the unreleased chunk is unmapped before the swap.
        MigrationRecord r = router.migrate(app.s.id(), "b", true);
        assertTrue(r.toString(), r.ok);
        String scratch = calls.remove(0);
        assertTrue(scratch, scratch.startsWith("memUnmap "));
        assertEquals(List.of("memUnmap " + Long.toHexString(app.vmm), "memUnmap " + Long.toHexString(app.vmm + 2 * MIB),
                "memRelease", "memFree " + Long.toHexString(app.aligned), "memFree " + Long.toHexString(app.odd),
                "moduleUnload", "ctxDestroy", "free 0, handles 0"), calls);
        assertEmpty(c);
        verify(app);
    }

    @Test(timeout = 60_000)
    public void allMovesEverySessionAndLeavesOthersAlone() {
        App one = build(open());
        App two = build(open());
        SessionImpl idle = open(); // holds nothing: simply rebound
        List<MigrationRecord> rs = router.migrateAll("b", false);
        assertEquals(3, rs.size());
        rs.forEach(r -> assertTrue(r.toString(), r.ok));
        for (SessionImpl s : List.of(one.s, two.s, idle)) {
            assertEquals("b", s.info().backend);
        }
        verify(one);
        verify(two);
        assertEmpty(a);
        assertEquals(0, router.migrateAll("b", false).size());
    }

    @Test(timeout = 60_000)
    public void aBackendGoingAwayHandsItsSessionsOnAlongThePreferenceList() {
        // c is registered and idle but not listed; gpu9 is listed before b but not registered.
        MockBackend c = mock("c", Map.of());
        router.addBackend(c, Map.of(CudaService.BACKEND_ID, "c"));
        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", "a, gpu9, b")));
        App app = build(open());
        router.removeBackend(a, Map.of(CudaService.BACKEND_ID, "a"));
        assertEquals("b", app.s.info().backend);
        MigrationRecord r = app.s.info().migrations.get(0);
        assertTrue(r.ok);
        assertEquals("evacuation", r.reason);
        verify(app);
        assertEmpty(c);
    }

    @Test(timeout = 60_000)
    public void aBackendGoingAwayMovesNothingToABackendOffThePreferenceList() {
        App app = build(open()); // the list is just "a"; b is registered and available
        router.removeBackend(a, Map.of(CudaService.BACKEND_ID, "a"));
        assertEquals(CuResult.DEVICE_UNAVAILABLE, app.s.check());
        assertTrue(app.s.info().migrations.isEmpty());
        assertEmpty(b);
    }

    @Test(timeout = 60_000)
    public void aTargetRefusingHalfwayLeavesTheSessionAsItWas() {
        App app = build(open());
        AtomicInteger allocs = new AtomicInteger();
        CudaService flaky = wrap(b, (name, args) -> name.equals("memAlloc") && allocs.incrementAndGet() == 2
                ? (Object) CuResult.OUT_OF_MEMORY : null);
        router.addBackend(flaky, Map.of(CudaService.BACKEND_ID, "flaky"));
        MigrationRecord r = router.migrate(app.s.id(), "flaky", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.contains("flaky refused 1000003 bytes") && r.message.contains("CUDA_ERROR_OUT_OF_MEMORY"));
        assertEquals("a", app.s.info().backend);
        assertEmpty(b); // the first allocation and the context made there are gone again
        verify(app);
        assertTrue(router.migrate(app.s.id(), "b", true).ok);
        verify(app);
    }

    @Test(timeout = 60_000)
    public void aTargetGoingAwayMidwayLeavesTheSessionAsItWas() {
        App app = build(open());
        AtomicBoolean gone = new AtomicBoolean();
        CudaService[] self = new CudaService[1];
        self[0] = wrap(b, (name, args) -> {
            if (name.equals("memcpyHtoD") && gone.compareAndSet(false, true)) {
                router.removeBackend(self[0], Map.of(CudaService.BACKEND_ID, "leaving"));
            }
            return null;
        });
        router.addBackend(self[0], Map.of(CudaService.BACKEND_ID, "leaving"));
        MigrationRecord r = router.migrate(app.s.id(), "leaving", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.contains("went away during the migration"));
        assertEquals("a", app.s.info().backend);
        assertEmpty(b);
        verify(app);
    }

    @Test(timeout = 60_000)
    public void aDeadSourceCannotBeMigratedAndSaysSo() {
        App app = build(open());
        router.removeBackend(b, Map.of(CudaService.BACKEND_ID, "b"));
        router.removeBackend(a, Map.of(CudaService.BACKEND_ID, "a")); // nowhere to evacuate to
        assertEquals(CuResult.DEVICE_UNAVAILABLE, app.s.check());
        router.addBackend(b, Map.of(CudaService.BACKEND_ID, "b"));
        MigrationRecord r = router.migrate(app.s.id(), "b", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.contains("is gone and its device memory with it"));
        assertEmpty(b);

        // A source that is there but cannot be read (a remote whose link is down) is refused alike.
        SessionImpl other = open();
        CudaService down = wrap(b, (name, args) -> {
            if (name.equals("info")) {
                io.vgpu.api.dto.BackendInfo i = b.info();
                i.available = false;
                i.reason = "link down";
                return i;
            }
            return null;
        });
        router.addBackend(down, Map.of(CudaService.BACKEND_ID, "down"));
        router.addBackend(a, Map.of(CudaService.BACKEND_ID, "a"));
        long[] c = new long[1];
        other.backend = router.registered("down");
        ok(other.ctxCreate(0, 0, c));
        r = router.migrate(other.id(), "a", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.contains("unavailable (link down)"));
    }

    @Test(timeout = 60_000)
    public void aLesserTargetIsRefusedWithWhatItLacks() {
        App app = build(open());
        router.addBackend(mock("tiny", Map.of("memory_mib", 4L)), Map.of(CudaService.BACKEND_ID, "tiny"));
        MigrationRecord r = router.migrate(app.s.id(), "tiny", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.startsWith("tiny lacks ") && r.message.contains("MiB free on device 0"));
        // A fatbin with code for 9.0 only (sm_90, compute_90) cannot go to a 7.5 device.
        SessionImpl sass = open();
        long[] c = new long[1];
        ok(sass.ctxCreate(0, 0, c));
        long[] m = new long[1];
        ok(sass.moduleLoad(c[0], image("kernels.fatbin"), m));
        router.addBackend(mock("t4", Map.of("cc_major", 7, "cc_minor", 5)), Map.of(CudaService.BACKEND_ID, "t4"));
        r = router.migrate(sass.id(), "t4", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.startsWith("t4 lacks code for compute capability 7.5 in module"));
        assertEmpty(b);
        SessionImpl second = open();
        router.addBackend(mock("two", Map.of("device_count", 2)), Map.of(CudaService.BACKEND_ID, "two"));
        second.backend = router.registered("two");
        ok(second.ctxCreate(1, 0, new long[1]));
        r = router.migrate(second.id(), "a", false);
        assertFalse(r.ok);
        assertTrue(r.message, r.message.contains("device 1 (a has 1)"));
        assertEquals("a", app.s.info().backend);
        verify(app);
        assertFalse(router.migrate(app.s.id(), "a", false).ok);
        assertFalse(router.migrate(app.s.id(), "nowhere", false).ok);
        assertFalse(router.migrate(99, "b", false).ok);
    }

    @Test(timeout = 60_000)
    public void preCopyCatchesWhatTheApplicationWritesMeanwhile() throws Exception {
        SessionImpl s = open();
        long[] out = new long[1];
        ok(s.ctxCreate(0, 0, out));
        long ctx = out[0];
        int size = 32 << 20;
        ok(s.memAlloc(ctx, size, out));
        long p = out[0];
        byte[] mirror = random(size, 9);
        ok(s.memcpyHtoD(ctx, p, ByteBuffer.wrap(mirror), 0));
        AtomicBoolean stop = new AtomicBoolean();
        Thread writer = new Thread(() -> {
            Random r = new Random(5);
            byte[] chunk = new byte[4096];
            while (!stop.get()) {
                int at = r.nextInt(size - chunk.length);
                r.nextBytes(chunk);
                synchronized (mirror) {
                    ok(s.memcpyHtoD(ctx, p + at, ByteBuffer.wrap(chunk), 0));
                    System.arraycopy(chunk, 0, mirror, at, chunk.length);
                }
            }
        });
        writer.start();
        MigrationRecord r;
        try {
            r = router.migrate(s.id(), "b", true);
        } finally {
            stop.set(true);
            writer.join();
        }
        assertTrue(r.toString(), r.ok);
        assertEquals("b", s.info().backend);
        assertArrayEquals(mirror, bytes(s, ctx, p, size));
        assertTrue(r.toString(), r.bytesPaused < r.bytesMoved);
    }

    @Test(timeout = 60_000)
    public void anAllocationDuringPreCopyEndsInStopAndCopy() {
        App app = build(open());
        AtomicBoolean once = new AtomicBoolean();
        long[] extra = new long[1];
        CudaService hooked = wrap(b, (name, args) -> {
            if (name.equals("memcpyHtoD") && once.compareAndSet(false, true)) {
                ok(app.s.memAlloc(app.ctx, 12345, extra)); // the application, while the bulk copies
            }
            return null;
        });
        router.addBackend(hooked, Map.of(CudaService.BACKEND_ID, "hooked"));
        List<String> heard = guard(app.s, null);
        MigrationRecord r = router.migrate(app.s.id(), "hooked", true);
        assertTrue(r.toString(), r.ok);
        assertTrue(r.message, r.message.contains("stop-and-copy"));
        // The stop-and-copy asks again, for what the session holds now.
        assertEquals(List.of("admit a -> hooked", "abandoned", "admit a -> hooked", "moved"), heard);
        write(app, extra[0], random(12345, 4));
        verify(app);
    }

    /** Sets a guard on {@code s} that refuses with {@code refusal} (null: admits) and records what it hears. */
    private static List<String> guard(SessionImpl s, String refusal) {
        List<String> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
        s.guardMigrations(new io.vgpu.api.session.MigrationGuard() {
            @Override
            public String admit(String from, String to, boolean evacuation) {
                assertTrue(Thread.holdsLock(s));
                heard.add("admit " + from + " -> " + to + (evacuation ? " (evacuation)" : ""));
                return refusal;
            }

            @Override
            public void moved(String from, String to) {
                assertEquals(to, s.info().backend);
                heard.add("moved");
            }

            @Override
            public void abandoned(String from, String to) {
                assertEquals(from, s.info().backend);
                heard.add("abandoned");
            }
        });
        return heard;
    }

    @Test(timeout = 60_000)
    public void theGuardIsAskedBeforeAnythingMovesAndHearsHowTheMoveEnded() {
        App app = build(open());
        List<String> heard = guard(app.s, "quota q (1 MiB) is full");
        for (boolean precopy : new boolean[] {true, false}) {
            MigrationRecord r = router.migrate(app.s.id(), "b", precopy);
            assertFalse(r.ok);
            assertEquals("quota q (1 MiB) is full", r.message);
            assertEquals(0, r.bytesMoved);
        }
        assertEquals(List.of("admit a -> b", "admit a -> b"), heard);
        assertEmpty(b);
        verify(app);
        // Admitted, then the target fails halfway: the guard hears that it did not happen.
        heard = guard(app.s, null);
        AtomicInteger allocs = new AtomicInteger();
        CudaService flaky = wrap(b, (name, args) -> name.equals("memAlloc") && allocs.incrementAndGet() == 2
                ? (Object) CuResult.OUT_OF_MEMORY : null);
        router.addBackend(flaky, Map.of(CudaService.BACKEND_ID, "flaky"));
        assertFalse(router.migrate(app.s.id(), "flaky", false).ok);
        assertEquals(List.of("admit a -> flaky", "abandoned"), heard);
        // An evacuation says so.
        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", "a, b")));
        router.removeBackend(a, Map.of(CudaService.BACKEND_ID, "a"));
        assertEquals(List.of("admit a -> flaky", "abandoned", "admit a -> b (evacuation)", "moved"), heard);
        assertEquals("b", app.s.info().backend);
        verify(app);
    }

    private static byte[] image(String name) {
        try (var in = MigrationTest.class.getResourceAsStream("/images/" + name)) {
            return in.readAllBytes();
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    /** A backend that answers {@code hook}'s value where it gives one, else as {@code target} does. */
    static CudaService wrap(CudaService target, BiFunction<String, Object[], Object> hook) {
        return (CudaService) Proxy.newProxyInstance(CudaService.class.getClassLoader(), new Class<?>[] {CudaService.class},
                (proxy, m, args) -> {
                    Object v = hook.apply(m.getName(), args);
                    if (v != null) {
                        return v;
                    }
                    try {
                        return m.invoke(target, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test(timeout = 60_000)
    public void theShellCommandsMoveAndShowTheHistory() {
        App app = build(open());
        Commands shell = new Commands(router);
        String out = shell.migrate(String.valueOf(app.s.id()), "b");
        assertTrue(out, out.startsWith("session " + app.s.id() + " a -> b: 1196867 bytes moved, pause "));
        out = shell.migrate("all", "a", "--stop-and-copy");
        assertTrue(out, out.contains(" b -> a: 1196867 bytes moved") && !out.contains("pre-copy rounds"));
        String table = shell.sessions();
        assertTrue(table, table.contains("\nMIGRATIONS\n  command: session " + app.s.id() + " a -> b: "));
        assertTrue(table, table.contains("migrant") && table.matches("(?s).*migrant\\s+a\\s+BOUND.*"));
        assertTrue(shell.migrate("first", "b").startsWith("usage: vgpu:migrate"));
        assertTrue(shell.migrate("1", "b", "--fast").startsWith("usage: vgpu:migrate"));
        out = shell.migrate(String.valueOf(app.s.id()), "a");
        assertTrue(out, out.endsWith("failed: the session is already on a"));
        verify(app);
    }

    @Test(timeout = 60_000)
    public void useWithMigrateSwitchesAndMovesEveryRunningSession() throws Exception {
        App app = build(open());
        // ConfigAdmin as the framework's: an update reconfigures the router.
        java.util.Dictionary<String, Object>[] props = new java.util.Dictionary[] {new java.util.Hashtable<String, Object>()};
        Object configuration = Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {org.osgi.service.cm.Configuration.class}, (p, m, a) -> {
                    if (m.getName().equals("getProperties")) {
                        return props[0];
                    }
                    if (m.getName().equals("update") && a != null && a.length == 1) {
                        props[0] = (java.util.Dictionary<String, Object>) a[0];
                        router.configure(SessionTest.defaults(Router.Config.class, Map.of("backend", props[0].get("backend"))));
                    }
                    return null;
                });
        Object admin = Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {org.osgi.service.cm.ConfigurationAdmin.class}, (p, m, a) -> configuration);
        java.lang.reflect.Field f = Router.class.getDeclaredField("configAdmin");
        f.setAccessible(true);
        f.set(router, admin);
        String out = new Commands(router).use("b", "--migrate");
        assertTrue(out, out.startsWith("new sessions go to backend b\nsession " + app.s.id() + " a -> b: "));
        assertEquals("b", router.status().activeBackend);
        assertEquals("b", app.s.info().backend);
        verify(app);
        // A preference list: the sessions go where new ones go, its first available backend.
        out = new Commands(router).use("a", "b", "--migrate");
        assertTrue(out, out.startsWith("new sessions go to the first available of a, b\nsession " + app.s.id() + " b -> a: "));
        assertEquals("a", app.s.info().backend);
        verify(app);
        assertTrue(new Commands(router).use("b", "--now").startsWith("usage: vgpu:use"));
    }

    @Test(timeout = 60_000)
    public void aSecondMoveWhileOneRunsIsRefused() {
        App app = build(open());
        MigrationRecord[] second = new MigrationRecord[1];
        CudaService hooked = wrap(b, (name, args) -> {
            if (name.equals("memcpyHtoD") && second[0] == null) {
                // The pre-copy has let go of the session: another command arrives now.
                second[0] = router.migrate(app.s.id(), "a2", false);
            }
            return null;
        });
        router.addBackend(hooked, Map.of(CudaService.BACKEND_ID, "hooked"));
        router.addBackend(mock("a2", Map.of()), Map.of(CudaService.BACKEND_ID, "a2"));
        MigrationRecord r = router.migrate(app.s.id(), "hooked", true);
        assertTrue(r.toString(), r.ok);
        assertFalse(second[0].ok);
        assertEquals("another migration of this session is running", second[0].message);
        assertEquals("hooked", app.s.info().backend);
        verify(app);
    }

    @Test(timeout = 60_000)
    public void anEndingSessionIsNotMoved() {
        App app = build(open());
        app.s.abandon();
        MigrationRecord r = router.migrate(app.s.id(), "b", false);
        assertFalse(r.ok);
        assertNotNull(r.message);
        assertEmpty(b);
    }
}
