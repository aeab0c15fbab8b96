package io.vgpu.shim.bridge.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vgpu.api.CuResult;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.protocol.Wire;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What the fuzz targets found, each as the shortest request sequence that shows it, run through
 * the dispatcher against the real core and the mock under the fuzz rig's deadline and checks.
 * The range and overflow findings in the core's SessionImpl and the mock's MockMemory were fixed on
 * branch {@code hard} (HardeningTest, MockHardeningTest); these keep them fixed through the wire.
 */
@Tag("jazzer")
class FuzzFindingsTest {
    private static FuzzRig rig;
    private static FuzzRequests rq;
    private Session session;
    private long ctx;

    @BeforeAll
    static void start() throws Exception {
        rig = new FuzzRig();
        rq = new FuzzRequests(rig.fuzzIo, 1 << 20, rig.bridge.quotas());
    }

    @AfterAll
    static void stop() {
        rig.close();
    }

    @BeforeEach
    void open() {
        org.junit.jupiter.api.Assumptions.assumeFalse(rig.hung(), "an earlier reproducer hung");
        ClientInfo client = new ClientInfo();
        client.processName = "fuzz-finding";
        session = rig.router.open(client);
        rq.bind(rig.router, session, null);
        assertEquals(CuResult.SUCCESS, rq.ctxCreate(0));
        ctx = rq.replyU64(Wire.CtxCreate.REP_CTX);
    }

    @AfterEach
    void close() {
        if (!rig.hung()) {
            session.close();
            rig.afterInput("the reproducer");
        }
    }

    private long alloc(long size) {
        assertEquals(CuResult.SUCCESS, rq.call(Wire.MEM_ALLOC, ctx, size));
        return rq.replyU64(Wire.MemAlloc.REP_PTR);
    }

    private int bounded(java.util.concurrent.Callable<Integer> request) throws Exception {
        return rig.bounded("the reproducer", request);
    }

    @Test
    void memsetWhoseEndWrapsIsRefused() throws Exception {
        long ptr = alloc(64 << 10);
        assertEquals(CuResult.INVALID_VALUE, bounded(() -> rq.memset(ctx, ptr + 0x1dd, 0, 1, 0x7fffffffffe00000L)));
    }

    @Test
    void memcpyDtoDOfNegativeSizeInGlobalsIsRefused() throws Exception {
        assertEquals(CuResult.SUCCESS, rq.tail(Wire.MODULE_LOAD, ctx, FuzzBystander.FILL_PTX.getBytes(StandardCharsets.UTF_8)));
        long module = rq.replyU64(Wire.ModuleLoad.REP_MODULE);
        assertEquals(CuResult.SUCCESS, rq.tail(Wire.GLOBAL_GET, module, "counter".getBytes(StandardCharsets.UTF_8)));
        long counter = rq.replyU64(Wire.GlobalGet.REP_PTR);
        assertEquals(CuResult.INVALID_VALUE, bounded(() -> rq.call(Wire.MEMCPY_DTOD, ctx, counter, counter, 0xc6c6c6c6c6c61253L, 0)));
    }

    @Test
    void memUnmapOfANegativeSizeIsRefused() throws Exception {
        assertEquals(CuResult.SUCCESS, rq.call(Wire.MEM_ADDRESS_RESERVE, 2L << 20, 0, 0));
        long reserved = rq.replyU64(Wire.MemAddressReserve.REP_PTR);
        assertEquals(CuResult.INVALID_VALUE, bounded(() -> rq.call(Wire.MEM_UNMAP, reserved + (2L << 20) - 0x31, -(2L << 20))));
    }

    @Test
    void memUnmapWhoseEndWrapsIsRefused() throws Exception {
        assertEquals(CuResult.SUCCESS, rq.call(Wire.MEM_ADDRESS_RESERVE, 2L << 20, 0, 0));
        long reserved = rq.replyU64(Wire.MemAddressReserve.REP_PTR);
        assertEquals(CuResult.INVALID_VALUE, bounded(() -> rq.call(Wire.MEM_UNMAP, reserved + 0x126f74, 0x7fffffffffe00000L)));
    }

    @Test
    void memMapAtAnOffsetThatWrapsIsRefused() throws Exception {
        long size = 2L << 20;
        assertEquals(CuResult.SUCCESS, rq.call(Wire.MEM_ADDRESS_RESERVE, size, 0, 0));
        long reserved = rq.replyU64(Wire.MemAddressReserve.REP_PTR);
        assertEquals(CuResult.SUCCESS, rq.memCreate(size, 0));
        long handle = rq.replyU64(Wire.MemCreate.REP_HANDLE);
        int rc = bounded(() -> rq.call(Wire.MEM_MAP, reserved, size, Long.MAX_VALUE - 4096, handle));
        if (rc == CuResult.SUCCESS) {
            bounded(() -> rq.memcpyDtoH(ctx, reserved, 4096));
            rq.call(Wire.MEM_UNMAP, reserved, size);
        }
        assertEquals(CuResult.INVALID_VALUE, rc);
    }

    /**
     * Found by DispatcherFuzzTest (a later input's reservation came back with the bystander's
     * address range freed): an aligned hint whose end wraps past Long.MAX_VALUE passed
     * AddressSpace.take's bounds check, so the window handed out an address outside itself and
     * put a free range over everything below it, the bystander's allocations included.
     */
    @Test
    void reserveWithAHintWhoseEndWrapsStaysInTheWindow() throws Exception {
        long hint = 0x7fffffffffe00000L;
        int rc = bounded(() -> rq.call(Wire.MEM_ADDRESS_RESERVE, 2L << 20, 0, hint));
        if (rc == CuResult.SUCCESS) {
            long got = rq.replyU64(Wire.MemAddressReserve.REP_PTR);
            long[] window = session.addressWindow();
            if (got < window[0] || got + (2L << 20) > window[0] + window[1]) {
                throw new AssertionError("reserved 0x" + Long.toHexString(got) + ", outside the window");
            }
        }
    }
}
