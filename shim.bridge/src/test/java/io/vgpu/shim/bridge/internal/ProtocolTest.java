package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.bytes;
import static io.vgpu.shim.bridge.internal.TestClient.dtoh;
import static io.vgpu.shim.bridge.internal.TestClient.htod;
import static io.vgpu.shim.bridge.internal.TestClient.memset;
import static io.vgpu.shim.bridge.internal.TestClient.named;
import static io.vgpu.shim.bridge.internal.TestClient.payload;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.core.internal.TestRouters;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Hello;
import io.vgpu.shim.bridge.internal.TestClient.Reply;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/** The ops of the spec against the real core and the simulated H100. */
public class ProtocolTest extends BridgeTestBase {
    private static final String PTX = ".version 8.5\n.target sm_90\n.address_size 64\n"
            + ".visible .entry fill(.param .u64 p, .param .u32 n, .param .u32 v)\n{\n ret;\n}\n"
            + ".visible .entry nothing()\n{\n ret;\n}\n"
            + ".visible .global .align 4 .u32 counter = 7;\n";

    @Test
    public void helloAndDeviceListShowTheSimulatedH100() throws Exception {
        try (TestClient c = connect()) {
            Hello h = c.hello("hello-test");
            assertEquals(Wire.MAJOR, h.major());
            assertEquals(13000, h.driverVersion());
            assertEquals(CuResult.SUCCESS, h.status());
            assertTrue(h.session() > 0);
            assertTrue(h.windowSize() > 0);
            assertEquals(Frame.MAX_PAYLOAD, h.maxFrame());
            assertEquals(false, h.shmOk());

            Reply r = c.call(Wire.DEVICE_LIST);
            assertEquals(CuResult.SUCCESS, r.result());
            assertEquals(1, r.i32(Wire.DeviceList.REP_COUNT));
            assertEquals(CuDeviceAttribute.MAX, r.i32(Wire.DeviceList.REP_ATTRIBUTE_COUNT));
            assertEquals(Wire.DeviceList.REP_FIXED + Wire.Device.FIXED, r.payload().limit());
            int d = Wire.DeviceList.REP_DEVICES;
            assertEquals("NVIDIA H100 80GB HBM3", Frame.string(r.payload(), d + Wire.Device.NAME, 256));
            assertEquals(81920L << 20, r.u64(d + Wire.Device.TOTAL_MEMORY));
            assertEquals(9, r.i32(d + Wire.Device.ATTRIBUTES + 4 * CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR));
            assertEquals(132, r.i32(d + Wire.Device.ATTRIBUTES + 4 * CuDeviceAttribute.MULTIPROCESSOR_COUNT));
            byte[] uuid = new byte[16];
            r.payload().get(d + Wire.Device.UUID, uuid);
            assertArrayEquals(mock.devices()[0].uuid, uuid);

            ByteBuffer info = payload(Wire.MemGetInfo.REQ_FIXED);
            Reply m = c.call(Wire.MEM_GET_INFO, info);
            assertEquals(CuResult.SUCCESS, m.result());
            assertEquals(81920L << 20, m.u64(Wire.MemGetInfo.REP_TOTAL));
            assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
        }
    }

    @Test
    public void inlineCopiesRoundTripBytes() throws Exception {
        try (TestClient c = connect()) {
            c.hello("copy-test");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 1 << 20);
            byte[] data = new byte[300_000];
            new Random(1).nextBytes(data);
            // Synchronous form (no ASYNC flag): it gets a reply of its own.
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_HTOD, htod(ctx, ptr, data)).result());
            Reply r = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, data.length));
            assertEquals(CuResult.SUCCESS, r.result());
            assertArrayEquals(data, bytes(r.payload()));

            // Async form: no reply, and the next synchronous request sees its effect.
            byte[] more = new byte[1000];
            new Random(2).nextBytes(more);
            c.post(Wire.MEMCPY_HTOD, htod(ctx, ptr + 4096, more));
            Reply back = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr + 4096, more.length));
            assertArrayEquals(more, bytes(back.payload()));

            // Too big to be inline is the client's mistake, not a protocol violation.
            Reply tooBig = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, Frame.MAX_PAYLOAD + 1L));
            assertEquals(CuResult.INVALID_VALUE, tooBig.result());
            assertEquals(0, tooBig.payload().limit());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, -1)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
        }
    }

    @Test
    public void asyncErrorsSurfaceAtTheNextSynchronousReplyOnce() throws Exception {
        try (TestClient c = connect()) {
            c.hello("pending-test");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 4096);
            ByteBuffer sync = u64(ctx);

            // A failing async request gets no reply; its error comes with the next reply.
            c.post(Wire.MEMSET, memset(ctx, 0xdead0000L, 0, 4, 16));
            int seq = c.nextSeq();
            Reply r = c.call(Wire.CTX_SYNCHRONIZE, sync);
            assertEquals(seq, r.seq());
            assertEquals(CuResult.INVALID_VALUE, r.result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, sync).result());

            // The first failure wins.
            c.post(Wire.EVENT_RECORD, eventRecord(0x1234, 0));
            c.post(Wire.MEMSET, memset(ctx, 0xdead0000L, 0, 4, 16));
            assertEquals(CuResult.INVALID_HANDLE, c.call(Wire.CTX_SYNCHRONIZE, sync).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, sync).result());

            // A request that fails itself reports its own error; the pending one waits for the next reply.
            c.post(Wire.EVENT_RECORD, eventRecord(0x1234, 0));
            ByteBuffer badFree = payload(Wire.MemFree.REQ_FIXED);
            badFree.putLong(Wire.MemFree.REQ_CTX, ctx).putLong(Wire.MemFree.REQ_PTR, ptr + 1);
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEM_FREE, badFree).result());
            assertEquals(CuResult.INVALID_HANDLE, c.call(Wire.CTX_SYNCHRONIZE, sync).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, sync).result());

            // A successful async request leaves nothing behind.
            c.post(Wire.MEMSET, memset(ctx, ptr, 7, 1, 4096));
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, sync).result());
        }
    }

    private static ByteBuffer eventRecord(long event, long stream) {
        ByteBuffer p = payload(Wire.EventRecord.REQ_FIXED);
        p.putLong(Wire.EventRecord.REQ_EVENT, event).putLong(Wire.EventRecord.REQ_STREAM, stream);
        return p;
    }

    @Test
    public void batchRunsItsFramesInOrder() throws Exception {
        try (TestClient c = connect()) {
            c.hello("batch-test");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 4096);
            byte[] data = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
            ByteArrayOutputStream frames = new ByteArrayOutputStream();
            frames.write(frame(Wire.MEMSET, 100, memset(ctx, ptr, 0x41, 1, 64)));
            frames.write(frame(Wire.MEMCPY_HTOD, 101, htod(ctx, ptr + 8, data)));
            // Fails (unknown event): becomes the pending error without stopping the batch.
            frames.write(frame(Wire.EVENT_RECORD, 102, eventRecord(0x999, 0)));
            frames.write(frame(Wire.MEMSET, 103, memset(ctx, ptr + 30, 0x42, 1, 2)));
            c.post(Wire.BATCH, ByteBuffer.wrap(frames.toByteArray()));
            Reply r = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, 40));
            assertEquals(CuResult.INVALID_HANDLE, r.result());
            assertEquals("AAAAAAAA0123456789abcdefAAAAAABBAAAAAAAA", new String(bytes(r.payload()), StandardCharsets.US_ASCII));

            // Sent without ASYNC, a BATCH gets an (empty) reply.
            ByteBuffer one = ByteBuffer.wrap(frame(Wire.MEMSET, 104, memset(ctx, ptr, 0x43, 1, 1)));
            Reply b = c.call(Wire.BATCH, one);
            assertEquals(CuResult.SUCCESS, b.result());
            assertEquals(0, b.payload().limit());
            assertEquals('C', c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, 1)).payload().get(0));
        }
    }

    /** A complete ASYNC request frame as it appears inside a BATCH. */
    static byte[] frame(int op, int seq, ByteBuffer payload) {
        ByteBuffer f = ByteBuffer.allocate(Wire.HEADER + payload.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(f, 0, payload.remaining(), op, Wire.FLAG_ASYNC, seq);
        f.position(Wire.HEADER);
        f.put(payload.duplicate());
        return f.array();
    }

    @Test
    public void modulesFunctionsAndLaunchesReachTheBackend() throws Exception {
        mock.registerKernel("fill", launch -> {
            long p = launch.paramPointer(0);
            int n = launch.paramInt(1);
            int v = launch.paramInt(2);
            for (int i = 0; i < n; i++) {
                launch.memory().putInt(p + 4L * i, v);
            }
        });
        try (TestClient c = connect()) {
            c.hello("launch-test");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 4096);
            Reply load = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), PTX.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.SUCCESS, load.result());
            long module = load.u64(Wire.ModuleLoad.REP_MODULE);

            Reply f = c.call(Wire.FUNCTION_GET, named(module, "fill"));
            assertEquals(CuResult.SUCCESS, f.result());
            long function = f.u64(Wire.FunctionGet.REP_FUNCTION);
            assertEquals(3, f.i32(Wire.FunctionGet.REP_PARAM_COUNT));
            assertEquals(16, f.i32(Wire.FunctionGet.REP_PARAM_BUFFER_SIZE));
            assertEquals(Wire.FunctionGet.REP_FIXED + 3 * Wire.Param.FIXED, f.payload().limit());
            int[] offsets = new int[3];
            for (int i = 0; i < 3; i++) {
                offsets[i] = f.i32(Wire.FunctionGet.REP_PARAMS + i * Wire.Param.FIXED + Wire.Param.OFFSET);
            }
            assertArrayEquals(new int[] {0, 8, 12}, offsets);
            // A NUL-terminated name works as well.
            assertEquals(CuResult.SUCCESS, c.call(Wire.FUNCTION_GET, named(module, "nothing\0")).result());
            assertEquals(CuResult.NOT_FOUND, c.call(Wire.FUNCTION_GET, named(module, "missing")).result());

            ByteBuffer attr = payload(Wire.FunctionGetAttribute.REQ_FIXED);
            attr.putLong(Wire.FunctionGetAttribute.REQ_FUNCTION, function).putInt(Wire.FunctionGetAttribute.REQ_ATTRIBUTE, 0);
            Reply a = c.call(Wire.FUNCTION_GET_ATTRIBUTE, attr);
            assertEquals(CuResult.SUCCESS, a.result());
            assertEquals(1024, a.i32(Wire.FunctionGetAttribute.REP_VALUE));

            Reply g = c.call(Wire.GLOBAL_GET, named(module, "counter"));
            assertEquals(CuResult.SUCCESS, g.result());
            assertEquals(4, g.u64(Wire.GlobalGet.REP_SIZE));
            Reply init = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, g.u64(Wire.GlobalGet.REP_PTR), 4));
            assertEquals(7, init.payload().getInt(0));

            ByteBuffer params = payload(16);
            params.putLong(0, ptr).putInt(8, 10).putInt(12, 0x5a5a5a5a);
            c.post(Wire.LAUNCH, TestClient.concat(launch(function, 1, 32), bytes(params)));
            Reply out = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, 44));
            assertEquals(CuResult.SUCCESS, out.result());
            for (int i = 0; i < 10; i++) {
                assertEquals(0x5a5a5a5a, out.payload().getInt(4 * i));
            }
            assertEquals(0, out.payload().getInt(40));

            // Inside a BATCH, behind another frame: parameters are still read from their own offset 0.
            ByteBuffer second = payload(16);
            second.putLong(0, ptr + 2048).putInt(8, 2).putInt(12, 0x11223344);
            ByteArrayOutputStream batch = new ByteArrayOutputStream();
            batch.write(frame(Wire.MEMSET, 90, memset(ctx, ptr + 2048, 0, 1, 16)));
            batch.write(frame(Wire.LAUNCH, 91, TestClient.concat(launch(function, 1, 1), bytes(second))));
            c.post(Wire.BATCH, ByteBuffer.wrap(batch.toByteArray()));
            Reply viaBatch = c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr + 2048, 12));
            assertEquals(0x11223344, viaBatch.payload().getInt(0));
            assertEquals(0x11223344, viaBatch.payload().getInt(4));
            assertEquals(0, viaBatch.payload().getInt(8));

            // Too few parameter bytes: the launch fails and the error surfaces later.
            c.post(Wire.LAUNCH, TestClient.concat(launch(function, 1, 32), new byte[4]));
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.CTX_SYNCHRONIZE, u64(ctx)).result());

            Reply log = c.call(Wire.LAUNCH_LOG, payload(Wire.LaunchLog.REQ_FIXED).putInt(Wire.LaunchLog.REQ_MAX, 10));
            assertEquals(CuResult.SUCCESS, log.result());
            assertEquals(2 * Wire.LaunchRecord.FIXED, log.payload().limit());
            assertEquals("fill", Frame.string(log.payload(), Wire.LaunchRecord.KERNEL, 128));
            assertEquals(32, log.i32(Wire.LaunchRecord.BLOCK_X));
            assertEquals(1, log.i32(Wire.LaunchRecord.EXECUTED));
            assertEquals(16, log.i32(Wire.LaunchRecord.PARAM_BYTES));
        }
    }

    static ByteBuffer launch(long function, int grid, int block) {
        ByteBuffer p = payload(Wire.Launch.REQ_FIXED);
        p.putLong(Wire.Launch.REQ_FUNCTION, function).putLong(Wire.Launch.REQ_STREAM, 0)
                .putInt(Wire.Launch.REQ_GRID_X, grid).putInt(Wire.Launch.REQ_GRID_Y, 1).putInt(Wire.Launch.REQ_GRID_Z, 1)
                .putInt(Wire.Launch.REQ_BLOCK_X, block).putInt(Wire.Launch.REQ_BLOCK_Y, 1).putInt(Wire.Launch.REQ_BLOCK_Z, 1);
        return p;
    }

    @Test
    public void streamsEventsAndElapsedTime() throws Exception {
        try (TestClient c = connect()) {
            c.hello("event-test");
            long ctx = c.ctxCreate();
            ByteBuffer sc = payload(Wire.StreamCreate.REQ_FIXED);
            sc.putLong(Wire.StreamCreate.REQ_CTX, ctx);
            Reply s = c.call(Wire.STREAM_CREATE, sc);
            assertEquals(CuResult.SUCCESS, s.result());
            long stream = s.u64(Wire.StreamCreate.REP_STREAM);
            long[] events = new long[2];
            for (int i = 0; i < 2; i++) {
                ByteBuffer ec = payload(Wire.EventCreate.REQ_FIXED);
                ec.putLong(Wire.EventCreate.REQ_CTX, ctx);
                Reply e = c.call(Wire.EVENT_CREATE, ec);
                assertEquals(CuResult.SUCCESS, e.result());
                events[i] = e.u64(Wire.EventCreate.REP_EVENT);
                c.post(Wire.EVENT_RECORD, eventRecord(events[i], stream));
            }
            ByteBuffer wait = payload(Wire.StreamWaitEvent.REQ_FIXED);
            wait.putLong(Wire.StreamWaitEvent.REQ_STREAM, stream).putLong(Wire.StreamWaitEvent.REQ_EVENT, events[0]);
            c.post(Wire.STREAM_WAIT_EVENT, wait);
            assertEquals(CuResult.SUCCESS, c.call(Wire.STREAM_SYNCHRONIZE, u64(stream)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.STREAM_QUERY, u64(stream)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.EVENT_SYNCHRONIZE, u64(events[1])).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.EVENT_QUERY, u64(events[1])).result());
            ByteBuffer el = payload(Wire.EventElapsedTime.REQ_FIXED);
            el.putLong(Wire.EventElapsedTime.REQ_START, events[0]).putLong(Wire.EventElapsedTime.REQ_END, events[1]);
            Reply t = c.call(Wire.EVENT_ELAPSED_TIME, el);
            assertEquals(CuResult.SUCCESS, t.result());
            assertTrue(t.payload().getFloat(Wire.EventElapsedTime.REP_MILLIS) >= 0f);
            assertEquals(CuResult.SUCCESS, c.call(Wire.EVENT_DESTROY, u64(events[0])).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.STREAM_DESTROY, u64(stream)).result());
            assertEquals(CuResult.INVALID_HANDLE, c.call(Wire.STREAM_DESTROY, u64(stream)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_DESTROY, u64(ctx)).result());
        }
    }

    @Test
    public void addressRangesAndVirtualMemory() throws Exception {
        try (TestClient c = connect()) {
            c.hello("vmm-test");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 10_000);
            Reply range = c.call(Wire.MEM_GET_ADDRESS_RANGE, u64(ptr + 100));
            assertEquals(ptr, range.u64(Wire.MemGetAddressRange.REP_BASE));
            assertEquals(10_000, range.u64(Wire.MemGetAddressRange.REP_SIZE));

            long chunk = 2L << 20;
            ByteBuffer reserve = payload(Wire.MemAddressReserve.REQ_FIXED);
            reserve.putLong(Wire.MemAddressReserve.REQ_SIZE, 4 * chunk);
            Reply va = c.call(Wire.MEM_ADDRESS_RESERVE, reserve);
            assertEquals(CuResult.SUCCESS, va.result());
            long base = va.u64(Wire.MemAddressReserve.REP_PTR);
            ByteBuffer create = payload(Wire.MemCreate.REQ_FIXED);
            create.putLong(Wire.MemCreate.REQ_SIZE, chunk);
            Reply h = c.call(Wire.MEM_CREATE, create);
            assertEquals(CuResult.SUCCESS, h.result());
            ByteBuffer map = payload(Wire.MemMap.REQ_FIXED);
            map.putLong(Wire.MemMap.REQ_PTR, base).putLong(Wire.MemMap.REQ_SIZE, chunk)
                    .putLong(Wire.MemMap.REQ_HANDLE, h.u64(Wire.MemCreate.REP_HANDLE));
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_MAP, map).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_HTOD, htod(ctx, base + 5, new byte[] {9})).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_RELEASE, u64(h.u64(Wire.MemCreate.REP_HANDLE))).result());
            ByteBuffer unmap = payload(Wire.MemUnmap.REQ_FIXED);
            unmap.putLong(Wire.MemUnmap.REQ_PTR, base).putLong(Wire.MemUnmap.REQ_SIZE, chunk);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_UNMAP, unmap).result());
            ByteBuffer free = payload(Wire.MemAddressFree.REQ_FIXED);
            free.putLong(Wire.MemAddressFree.REQ_PTR, base).putLong(Wire.MemAddressFree.REQ_SIZE, 4 * chunk);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_ADDRESS_FREE, free).result());

            ByteBuffer dtod = payload(Wire.MemcpyDtod.REQ_FIXED);
            dtod.putLong(Wire.MemcpyDtod.REQ_CTX, ctx).putLong(Wire.MemcpyDtod.REQ_DST, ptr + 5000)
                    .putLong(Wire.MemcpyDtod.REQ_SRC, ptr).putLong(Wire.MemcpyDtod.REQ_SIZE, 100);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_DTOD, dtod).result());
            ByteBuffer mf = payload(Wire.MemFree.REQ_FIXED);
            mf.putLong(Wire.MemFree.REQ_CTX, ctx).putLong(Wire.MemFree.REQ_PTR, ptr);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_FREE, mf).result());
        }
    }

    private static ByteBuffer migrate(long session, int flags, String backend) {
        ByteBuffer m = payload(Wire.SessionMigrate.REQ_FIXED);
        m.putLong(Wire.SessionMigrate.REQ_SESSION, session).putInt(Wire.SessionMigrate.REQ_FLAGS, flags);
        Frame.putString(m, Wire.SessionMigrate.REQ_BACKEND, 32, backend);
        return m;
    }

    @Test
    public void aControlClientMovesARunningSessionWhoseBytesStay() throws Exception {
        MockBackend second = new MockBackend(TestRouters.config(MockBackend.Config.class, Map.of("backend_id", "second")));
        io.vgpu.core.internal.TestRouters.addBackend(router, second, "second");
        try (TestClient app = connect(); TestClient cli = connect()) {
            Hello appHello = app.hello("app-to-move");
            long ctx = app.ctxCreate();
            long ptr = app.memAlloc(ctx, 1 << 20);
            byte[] data = new byte[200_000];
            new Random(3).nextBytes(data);
            assertEquals(CuResult.SUCCESS, app.call(Wire.MEMCPY_HTOD, htod(ctx, ptr, data)).result());
            // A CUDA client may not move anyone, itself included.
            assertEquals(CuResult.NOT_PERMITTED, app.call(Wire.SESSION_MIGRATE, migrate(appHello.session(), 0, "second")).result());

            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            Reply r = cli.call(Wire.SESSION_MIGRATE, migrate(appHello.session(), 0, "second"));
            assertEquals(CuResult.SUCCESS, r.result());
            assertEquals(Wire.Migration.FIXED, r.payload().limit());
            assertEquals(1, r.i32(Wire.Migration.OK));
            assertEquals("mock", Frame.string(r.payload(), Wire.Migration.FROM, 32));
            assertEquals("the four 64 KiB pages written", 4 * 65536, r.u64(Wire.Migration.BYTES_MOVED));
            assertEquals("second", router.sessions().get(0).backend);
            Reply back = app.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, data.length));
            assertEquals(CuResult.SUCCESS, back.result());
            assertArrayEquals(data, bytes(back.payload()));
            assertEquals("only the written pages moved", 4 * 65536, second.materialisedBytes(0));
            assertEquals(0, mock.materialisedBytes(0));

            Reply refused = cli.call(Wire.SESSION_MIGRATE, migrate(0, Dispatcher.MIGRATE_ALL, "nowhere"));
            assertEquals(CuResult.SUCCESS, refused.result());
            assertEquals(0, refused.i32(Wire.Migration.OK));
            assertEquals("no backend 'nowhere' is registered", Frame.string(refused.payload(), Wire.Migration.MESSAGE, 160));
            assertEquals(CuResult.INVALID_VALUE, cli.call(Wire.SESSION_MIGRATE, migrate(1, 8, "mock")).result());
            Reply log = cli.call(Wire.MIGRATION_LOG);
            // The session's history: the move (a refusal for want of a backend never reached it).
            assertEquals(Wire.Migration.FIXED, log.payload().limit());
            assertEquals("second", Frame.string(log.payload(), Wire.Migration.TO, 32));
            assertEquals("second", router.sessions().get(0).backend);
        }
    }

    @Test
    public void controlConnectionsHaveNoSessionAndOnlyManagementOps() throws Exception {
        try (TestClient app = connect(); TestClient cli = connect()) {
            Hello appHello = app.hello("app-under-watch");
            app.memAlloc(app.ctxCreate(), 1 << 20);

            Hello h = cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            assertEquals(CuResult.SUCCESS, h.result());
            assertEquals(0, h.session());
            assertEquals(13000, h.driverVersion());
            assertEquals(1, router.sessions().size());

            Reply st = cli.call(Wire.SERVICE_STATUS);
            assertEquals(CuResult.SUCCESS, st.result());
            assertEquals(1, st.i32(Wire.ServiceStatus.REP_BACKEND_PRESENT));
            assertEquals(1, st.i32(Wire.ServiceStatus.REP_SESSIONS));
            assertEquals("mock", Frame.string(st.payload(), Wire.ServiceStatus.REP_BACKEND, 64));
            String message = new String(bytes(st.payload().position(Wire.ServiceStatus.REP_MESSAGE)), StandardCharsets.UTF_8);
            assertTrue(message, message.contains("H100"));

            Reply sessions = cli.call(Wire.SESSION_LIST);
            assertEquals(Wire.Session.FIXED, sessions.payload().limit());
            assertEquals(appHello.session(), sessions.u64(Wire.Session.ID));
            assertEquals(1 << 20, sessions.u64(Wire.Session.MEMORY_USED));
            assertEquals("app-under-watch", Frame.string(sessions.payload(), Wire.Session.PROCESS, 64));
            assertEquals("BOUND", Frame.string(sessions.payload(), Wire.Session.STATUS, 16));
            assertEquals(ProcessHandle.current().pid(), sessions.i32(Wire.Session.PID));

            Reply backends = cli.call(Wire.BACKEND_LIST);
            assertEquals(Wire.Backend.FIXED, backends.payload().limit());
            assertEquals("mock", Frame.string(backends.payload(), Wire.Backend.ID, 32));
            assertEquals(1, backends.i32(Wire.Backend.AVAILABLE));

            assertEquals(CuResult.NOT_PERMITTED, cli.call(Wire.DEVICE_LIST).result());
            assertEquals(CuResult.NOT_PERMITTED, cli.call(Wire.CTX_CREATE, payload(Wire.CtxCreate.REQ_FIXED)).result());
            assertEquals(CuResult.SUCCESS, cli.call(Wire.PING).result());
            assertEquals(1, router.sessions().size());
            assertEquals(CuResult.SUCCESS, cli.call(Wire.GOODBYE).result());
            assertTrue(cli.closedByService());
        }
    }

    @Test
    public void sessionDevicesSaysWhichDeviceEachSessionUsesAndHowMuch() throws Exception {
        // Two simulated devices; one client on device 1 only, one on both.
        bridge.deactivate();
        TestRouters.stop(router);
        mock = new MockBackend(TestRouters.config(MockBackend.Config.class, Map.of("device_count", 2)));
        router = TestRouters.withBackend(mock, "mock");
        bridge = start(router, Map.of());
        try (TestClient one = connect(); TestClient both = connect(); TestClient cli = connect()) {
            Hello h1 = one.hello("on-device-1");
            one.memAlloc(ctxOn(one, 1), 3 << 20);
            Hello h2 = both.hello("on-both");
            both.memAlloc(ctxOn(both, 0), 1 << 20);
            long onOne = ctxOn(both, 1);
            both.memAlloc(onOne, 5 << 20);
            both.memAlloc(onOne, 2 << 20);
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");

            Reply r = cli.call(Wire.SESSION_DEVICES);
            assertEquals(CuResult.SUCCESS, r.result());
            assertEquals(3 * Wire.SessionDevice.FIXED, r.payload().limit());
            Map<String, Long> seen = new java.util.TreeMap<>();
            for (int at = 0; at < r.payload().limit(); at += Wire.SessionDevice.FIXED) {
                assertEquals(ProcessHandle.current().pid(), r.i32(at + Wire.SessionDevice.PID));
                assertEquals("mock", Frame.string(r.payload(), at + Wire.SessionDevice.BACKEND, 32));
                seen.put(r.u64(at + Wire.SessionDevice.SESSION) + "@" + r.i32(at + Wire.SessionDevice.DEVICE),
                        r.u64(at + Wire.SessionDevice.MEMORY_USED));
            }
            assertEquals(Map.of(h1.session() + "@1", 3L << 20, h2.session() + "@0", 1L << 20, h2.session() + "@1", 7L << 20),
                    seen);
            // The totals of SESSION_LIST are the sums.
            Reply sessions = cli.call(Wire.SESSION_LIST);
            assertEquals(2 * Wire.Session.FIXED, sessions.payload().limit());
            assertEquals(3 << 20, sessions.u64(Wire.Session.MEMORY_USED));
            assertEquals(8 << 20, sessions.u64(Wire.Session.FIXED + Wire.Session.MEMORY_USED));
        }
    }

    private static long ctxOn(TestClient c, int device) throws IOException {
        ByteBuffer p = payload(Wire.CtxCreate.REQ_FIXED);
        p.putInt(Wire.CtxCreate.REQ_DEVICE, device);
        Reply r = c.call(Wire.CTX_CREATE, p);
        assertEquals(CuResult.SUCCESS, r.result());
        return r.u64(Wire.CtxCreate.REP_CTX);
    }

    @Test
    public void goodbyeEndsTheSession() throws Exception {
        try (TestClient c = connect()) {
            c.hello("goodbye-test");
            c.memAlloc(c.ctxCreate(), 4096);
            assertEquals(1, router.sessions().size());
            assertEquals(CuResult.SUCCESS, c.call(Wire.GOODBYE).result());
            assertTrue(c.closedByService());
            await("the session is closed", () -> router.sessions().isEmpty());
        }
    }

    @Test
    public void aFailureInsideTheServiceAnswersUnknownAndKeepsTheConnection() throws Exception {
        SessionManager faulty = new SessionManager() {
            @Override
            public Session open(io.vgpu.api.session.ClientInfo client) {
                Session real = router.open(client);
                return (Session) Proxy.newProxyInstance(Session.class.getClassLoader(), new Class<?>[] {Session.class},
                        (p, m, a) -> {
                            if (m.getName().equals("memset") || m.getName().equals("memGetInfo")) {
                                throw new IllegalStateException("simulated backend bug");
                            }
                            try {
                                return m.invoke(real, a);
                            } catch (InvocationTargetException e) {
                                throw e.getCause();
                            }
                        });
            }

            @Override
            public java.util.List<io.vgpu.api.dto.SessionInfo> sessions() {
                return router.sessions();
            }

            @Override
            public java.util.List<io.vgpu.api.dto.BackendInfo> backends() {
                return router.backends();
            }

            @Override
            public io.vgpu.api.dto.RouterStatus status() {
                return router.status();
            }

            @Override
            public void use(String backendId) {}

            @Override
            public java.util.List<io.vgpu.api.dto.LaunchRecord> launchLog(String backendId, int max) {
                return router.launchLog(backendId, max);
            }

            @Override
            public io.vgpu.api.dto.MigrationRecord migrate(long sessionId, String backendId, boolean precopy) {
                return router.migrate(sessionId, backendId, precopy);
            }

            @Override
            public java.util.List<io.vgpu.api.dto.MigrationRecord> migrateAll(String backendId, boolean precopy) {
                return router.migrateAll(backendId, precopy);
            }
        };
        bridge.deactivate();
        bridge = start(faulty, Map.of());
        try (TestClient c = connect()) {
            String name = uniqueName("faulty");
            c.hello(name);
            long ctx = c.ctxCreate();
            Reply r = c.call(Wire.MEM_GET_INFO, payload(Wire.MemGetInfo.REQ_FIXED));
            assertEquals(CuResult.UNKNOWN, r.result());
            assertEquals(Wire.MemGetInfo.REP_FIXED, r.payload().limit());
            assertEquals(0, r.u64(Wire.MemGetInfo.REP_TOTAL));
            c.post(Wire.MEMSET, memset(ctx, 0, 0, 1, 1));
            assertEquals(CuResult.UNKNOWN, c.call(Wire.CTX_SYNCHRONIZE, u64(ctx)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, u64(ctx)).result());
            // Logged once with its stack, not once per failure.
            awaitLogLines(1, "WARN", name, "failed inside the service");
        }
    }
}
