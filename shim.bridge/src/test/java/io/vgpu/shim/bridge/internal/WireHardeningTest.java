package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.bytes;
import static io.vgpu.shim.bridge.internal.TestClient.memset;
import static io.vgpu.shim.bridge.internal.TestClient.named;
import static io.vgpu.shim.bridge.internal.TestClient.payload;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Hello;
import io.vgpu.shim.bridge.internal.TestClient.Reply;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.Test;

/**
 * Issue 13 through the wire, as an untrusting client sends it: frames with sizes that wrap, a
 * reservation hint outside the window, random and mutated frames, and a long kernel, against the
 * real core and the simulated H100. Answers are exact, nothing fails inside the service, and the
 * management plane answers throughout.
 */
public class WireHardeningTest extends BridgeTestBase {
    private static final long MIB = 1L << 20;
    private static final long HUGE = Long.MAX_VALUE - 4095;
    /** What a management request may take while another client keeps the service busy. */
    private static final long MANAGEMENT_BOUND_MILLIS = 2000;

    private static ByteBuffer dtod(long ctx, long dst, long src, long size) {
        ByteBuffer p = payload(Wire.MemcpyDtod.REQ_FIXED);
        p.putLong(Wire.MemcpyDtod.REQ_CTX, ctx).putLong(Wire.MemcpyDtod.REQ_DST, dst).putLong(Wire.MemcpyDtod.REQ_SRC, src)
                .putLong(Wire.MemcpyDtod.REQ_SIZE, size).putLong(Wire.MemcpyDtod.REQ_STREAM, 0);
        return p;
    }

    private static ByteBuffer reserve(long size, long alignment, long hint) {
        ByteBuffer p = payload(Wire.MemAddressReserve.REQ_FIXED);
        p.putLong(Wire.MemAddressReserve.REQ_SIZE, size).putLong(Wire.MemAddressReserve.REQ_ALIGNMENT, alignment)
                .putLong(Wire.MemAddressReserve.REQ_HINT, hint);
        return p;
    }

    @Test(timeout = 30_000)
    public void framesWhoseSizesWrapAnswerInvalidValueAtOnce() throws Exception {
        try (TestClient c = connect(); TestClient cli = connect()) {
            c.hello(uniqueName("wrap"));
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            long ctx = c.ctxCreate();
            long p = c.memAlloc(ctx, MIB);
            long t0 = System.nanoTime();
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMSET, memset(ctx, p, 0, 1, HUGE)).result());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOD, dtod(ctx, p + MIB - 1, p, HUGE)).result());
            // The same sent asynchronously: the next synchronizing request reports it.
            c.post(Wire.MEMSET, memset(ctx, p, 0, 1, HUGE));
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.PING).result());
            c.post(Wire.MEMCPY_DTOD, dtod(ctx, p + MIB - 1, p, HUGE));
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.PING).result());
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5));
            assertEquals(CuResult.SUCCESS, cli.call(Wire.SESSION_LIST).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMSET, memset(ctx, p, 0x5a, 1, MIB)).result());
        }
    }

    @Test(timeout = 30_000)
    public void aNegativeCopyIntoModuleGlobalsIsInvalidValueNotAnInternalError() throws Exception {
        String name = uniqueName("globals");
        try (TestClient c = connect()) {
            c.hello(name);
            long ctx = c.ctxCreate();
            String ptx = ".version 8.0\n.target sm_90\n.address_size 64\n.visible .global .align 8 .b8 table[4096];\n"
                    + ".visible .entry nothing()\n{\n ret;\n}\n\0";
            Reply load = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), ptx.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.SUCCESS, load.result());
            Reply g = c.call(Wire.GLOBAL_GET, named(load.u64(Wire.ModuleLoad.REP_MODULE), "table"));
            assertEquals(CuResult.SUCCESS, g.result());
            long table = g.u64(Wire.GlobalGet.REP_PTR);
            // Used to throw IllegalArgumentException "capacity < 0" in MockMemory.copy: CUDA_ERROR_UNKNOWN.
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOD, dtod(ctx, table, table, -1)).result());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOD, dtod(ctx, table + 8, table, Long.MIN_VALUE)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_DTOD, dtod(ctx, table + 8, table, 4088)).result());
        }
        assertTrue(logLines(name, "failed inside the service").isEmpty());
    }

    @Test(timeout = 30_000)
    public void aReservationHintOutsideTheWindowGoesInsideIt() throws Exception {
        try (TestClient a = connect(); TestClient b = connect()) {
            Hello h = a.hello(uniqueName("hint"));
            b.hello(uniqueName("next"));
            long end = h.windowBase() + h.windowSize();
            Reply r = a.call(Wire.MEM_ADDRESS_RESERVE, reserve(2 * MIB, 0, 0x7fff_ffff_ffe0_0000L));
            assertEquals(CuResult.SUCCESS, r.result());
            long v = r.u64(Wire.MemAddressReserve.REP_PTR);
            assertTrue(Long.toHexString(v), v >= h.windowBase() && v + 2 * MIB <= end);
            // The next allocation of any client stays in the window (it used to be 0x8000000000000000).
            long p = b.memAlloc(b.ctxCreate(), MIB);
            assertNotEquals(0x8000_0000_0000_0000L, p);
            assertTrue(Long.toHexString(p), p >= h.windowBase() && p + MIB <= end);
        }
    }

    /** The fixed part of a valid request per op, aimed at the client's own 1 MiB; mutated below. */
    private static List<ByteBuffer> baseFrames(int[] ops, long ctx, long p, long stream, long event) {
        List<ByteBuffer> frames = new ArrayList<>();
        for (int op : ops) {
            ByteBuffer b = payload(Ops.requestFixed(op) + (op == Wire.MEMCPY_HTOD ? 64 : 0));
            switch (op) {
                case Wire.MEMSET:
                    b.put(memset(ctx, p, 7, 1, 4096));
                    break;
                case Wire.MEMCPY_DTOD:
                    b.put(dtod(ctx, p + 4096, p, 4096));
                    break;
                case Wire.MEMCPY_DTOH:
                    b.put(TestClient.dtoh(ctx, p, 4096));
                    break;
                case Wire.MEMCPY_HTOD:
                    b.put(TestClient.htod(ctx, p + 100, new byte[64]));
                    break;
                case Wire.MEM_ADDRESS_RESERVE:
                    b.put(reserve(2 * MIB, 0, 0));
                    break;
                case Wire.MEM_MAP:
                case Wire.MEM_UNMAP:
                case Wire.MEM_ADDRESS_FREE:
                    b.putLong(0, p).putLong(8, 2 * MIB);
                    break;
                case Wire.MEM_ALLOC:
                case Wire.MEM_FREE:
                    b.putLong(0, ctx).putLong(8, op == Wire.MEM_ALLOC ? 4096 : p + MIB);
                    break;
                case Wire.MEM_CREATE:
                    b.putLong(0, 2 * MIB);
                    break;
                case Wire.EVENT_RECORD:
                    b.putLong(0, event).putLong(8, stream);
                    break;
                default:
                    b.putLong(0, p);
            }
            frames.add(b.clear());
        }
        return frames;
    }

    @Test(timeout = 120_000)
    public void mutatedAndRandomFramesNeverFailInsideAndManagementKeepsAnswering() throws Exception {
        String name = uniqueName("mutant");
        try (TestClient c = connect(); TestClient cli = connect()) {
            Hello h = c.hello(name);
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            long ctx = c.ctxCreate();
            long p = c.memAlloc(ctx, MIB);
            long stream = c.call(Wire.STREAM_CREATE, payload(Wire.StreamCreate.REQ_FIXED).putLong(0, ctx)).u64(0);
            long event = c.call(Wire.EVENT_CREATE, payload(Wire.EventCreate.REQ_FIXED).putLong(0, ctx)).u64(0);
            long end = h.windowBase() + h.windowSize();

            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong worst = new AtomicLong();
            AtomicInteger answered = new AtomicInteger();
            CompletableFuture<Void> management = CompletableFuture.runAsync(() -> {
                try {
                    while (!stop.get()) {
                        for (int op : new int[] {Wire.SESSION_LIST, Wire.SESSION_DEVICES}) {
                            long t0 = System.nanoTime();
                            assertEquals(CuResult.SUCCESS, cli.call(op).result());
                            worst.accumulateAndGet((System.nanoTime() - t0) / 1_000_000, Math::max);
                            answered.incrementAndGet();
                        }
                    }
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });

            int[] ops = {Wire.MEMSET, Wire.MEMCPY_DTOD, Wire.MEMCPY_DTOH, Wire.MEMCPY_HTOD, Wire.MEM_ALLOC, Wire.MEM_FREE,
                Wire.MEM_GET_ADDRESS_RANGE, Wire.MEM_ADDRESS_RESERVE, Wire.MEM_ADDRESS_FREE, Wire.MEM_CREATE, Wire.MEM_MAP,
                Wire.MEM_UNMAP, Wire.MEM_RELEASE, Wire.EVENT_RECORD, Wire.STREAM_SYNCHRONIZE, Wire.CTX_SYNCHRONIZE};
            long[] values = {0, 1, -1, -4096, Long.MIN_VALUE, Long.MAX_VALUE, HUGE, 1L << 62, p + MIB - 1, p + MIB, p - 1,
                0x7fff_ffff_ffe0_0000L, end, end - 4096, h.windowBase(), 0xffff_ffff_ffff_f000L};
            int sent = 0;
            List<ByteBuffer> bases = baseFrames(ops, ctx, p, stream, event);
            for (int i = 0; i < ops.length; i++) {
                ByteBuffer base = bases.get(i);
                for (int slot = 0; slot + 8 <= Ops.requestFixed(ops[i]); slot += 8) {
                    for (long v : values) {
                        ByteBuffer m = payload(base.capacity()).put(base.duplicate().clear()).clear();
                        m.putLong(slot, v);
                        int rc = c.call(ops[i], m).result();
                        sent++;
                        assertNotEquals(Wire.name(ops[i]) + " with field @" + slot + " = 0x" + Long.toHexString(v),
                                CuResult.UNKNOWN, rc);
                    }
                }
            }
            // Random frames of every op a CUDA client may send synchronously.
            Random random = new Random(13);
            for (int i = 0; i < 3000;) {
                int op = random.nextInt(130);
                if (!Ops.isKnown(op) || op == Wire.HELLO || op == Wire.BATCH || op == Wire.GOODBYE) {
                    continue;
                }
                ByteBuffer m = payload(Ops.requestFixed(op) + random.nextInt(32));
                for (int k = 0; k + 8 <= m.capacity(); k += 8) {
                    long v = random.nextInt(4) == 0 ? values[random.nextInt(values.length)] : random.nextLong();
                    m.putLong(k, v);
                }
                int rc = c.call(op, m).result();
                sent++;
                i++;
                assertNotEquals(Wire.name(op), CuResult.UNKNOWN, rc);
            }
            stop.set(true);
            management.get(30, TimeUnit.SECONDS);
            assertTrue("sent " + sent, sent > 3500);
            assertTrue("management requests answered: " + answered, answered.get() > 0);
            assertTrue("slowest management request: " + worst + " ms", worst.get() < MANAGEMENT_BOUND_MILLIS);
            assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
        }
        assertTrue(logLines(name, "failed inside the service").isEmpty());
    }

    /** Spins on %globaltimer for the nanoseconds in its parameter: a valid, long kernel. */
    static final String SPIN_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n"
            + ".visible .entry spin(.param .u64 ns)\n{\n"
            + "  .reg .pred %p;\n  .reg .b64 %rd<5>;\n"
            + "  ld.param.u64 %rd1, [ns];\n  mov.u64 %rd2, %globaltimer;\n"
            + "LOOP:\n  mov.u64 %rd3, %globaltimer;\n  sub.u64 %rd4, %rd3, %rd2;\n"
            + "  setp.lt.u64 %p, %rd4, %rd1;\n  @%p bra LOOP;\n  ret;\n}\n\0";

    @Test(timeout = 60_000)
    public void managementAnswersDuringALongKernelAndAClientThatHangsUpStopsIt() throws Exception {
        String name = uniqueName("spinner");
        TestClient c = connect();
        try (TestClient cli = connect(); TestClient other = connect()) {
            c.hello(name);
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            other.hello(uniqueName("bystander"));
            long ctx = c.ctxCreate();
            Reply load = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), SPIN_PTX.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.SUCCESS, load.result());
            long fn = c.call(Wire.FUNCTION_GET, named(load.u64(Wire.ModuleLoad.REP_MODULE), "spin")).u64(Wire.FunctionGet.REP_FUNCTION);
            ByteBuffer params = payload(8).putLong(0, TimeUnit.SECONDS.toNanos(120));
            // Synchronous: the reply would come when the kernel ends, two minutes from now.
            c.send(Wire.LAUNCH, 0, TestClient.concat(ProtocolTest.launch(fn, 1, 32), bytes(params)));
            await("the kernel runs", () -> mock.runningKernels() == 1);
            for (int i = 0; i < 5; i++) {
                for (int op : new int[] {Wire.SESSION_LIST, Wire.SESSION_DEVICES, Wire.SERVICE_STATUS}) {
                    long t0 = System.nanoTime();
                    assertEquals(CuResult.SUCCESS, cli.call(op).result());
                    long millis = (System.nanoTime() - t0) / 1_000_000;
                    assertTrue(Wire.name(op) + " took " + millis + " ms", millis < MANAGEMENT_BOUND_MILLIS);
                }
            }
            // Another client is served meanwhile.
            long q = other.memAlloc(other.ctxCreate(), MIB);
            assertEquals(CuResult.SUCCESS, other.call(Wire.MEMSET, memset(0, q, 1, 1, MIB)).result());
            assertEquals(2, router.sessions().size());

            // The client dies mid-kernel: the watcher notices, the kernel stops, the session goes.
            long t0 = System.nanoTime();
            c.close();
            await("the spinner's session is closed", () -> router.sessions().size() == 1);
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue("took " + millis + " ms", millis < 10_000);
            awaitLogLines(1, name, "hung up while a request");
        } finally {
            c.close();
        }
    }
}
