package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.QuotaTest.MIB;
import static io.vgpu.shim.bridge.internal.QuotaTest.ME;
import static io.vgpu.shim.bridge.internal.QuotaTest.alloc;
import static io.vgpu.shim.bridge.internal.QuotaTest.free;
import static io.vgpu.shim.bridge.internal.QuotaTest.memGetInfo;
import static io.vgpu.shim.bridge.internal.QuotaTest.quotaRows;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.core.internal.TestRouters;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Reply;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Before;
import org.junit.Test;

/**
 * Memory quotas across live migration, through the bridge with the real core and two simulated
 * H100s ("mock" and "mockb"): the accounting follows the session's memory to the target's device,
 * a move that would exceed a quota there is refused before anything moves, and an evacuation goes
 * through past the quota, which then refuses the session's allocations.
 */
public class QuotaMigrationTest extends BridgeTestBase {
    private MockBackend mockb;

    @Before
    public void secondDevice() {
        mockb = new MockBackend(TestRouters.config(MockBackend.Config.class, Map.of("backend_id", "mockb")));
        TestRouters.addBackend(router, mockb, "mockb");
    }

    /** A client holding {@code mib} MiB on a fresh context, written with a pattern it can read back. */
    private static final class Holder {
        final TestClient c;
        final long session;
        final long ctx;
        final long ptr;
        final byte[] data = new byte[256 * 1024];

        Holder(TestClient c, String name, int pid, long mib, long seed) throws Exception {
            this.c = c;
            this.session = c.hello(name, pid).session();
            this.ctx = c.ctxCreate();
            long[] p = new long[1];
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, mib * MIB, p));
            this.ptr = p[0];
            new Random(seed).nextBytes(data);
            // At the end of the allocation: the copy must move the last bytes too.
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_HTOD, TestClient.htod(ctx, ptr + mib * MIB - data.length, data)).result());
        }

        void intact(long mib) throws Exception {
            Reply r = c.call(Wire.MEMCPY_DTOH, TestClient.dtoh(ctx, ptr + mib * MIB - data.length, data.length));
            assertEquals(CuResult.SUCCESS, r.result());
            assertArrayEquals(data, TestClient.bytes(r.payload()));
        }
    }

    private String backendOf(long session) {
        return router.sessions().stream().filter(s -> s.id == session).findFirst().orElseThrow().backend;
    }

    private static List<String> rows(TestClient cli) throws Exception {
        Reply r = cli.call(Wire.QUOTA_LIST);
        assertEquals(CuResult.SUCCESS, r.result());
        return quotaRows(r);
    }

    private static long used(MockBackend m) {
        long[] mem = new long[2];
        assertEquals(CuResult.SUCCESS, m.memGetInfo(0, mem));
        return mem[1] - mem[0];
    }

    @Test(timeout = 60_000)
    public void theQuotaFollowsTheMoveAndAMoveThatWouldExceedItIsRefused() throws Exception {
        restart(Map.of("quota.user." + ME + ".mib", "64"));
        String user = "user " + ME + " 64 ";
        try (TestClient ca = connect(); TestClient cb = connect(); TestClient cli = connect()) {
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            Holder a = new Holder(ca, "quota-mover", 4300, 40, 1);
            MigrationRecord r = router.migrate(a.session, "mockb", true);
            assertTrue(r.toString(), r.ok);
            assertEquals("mockb", backendOf(a.session));
            // What it holds counts on mockb:0 now, and nothing on mock:0.
            assertEquals(List.of(user + "40 mockb:0 1"), rows(cli));
            assertEquals(List.of(24 * MIB, 64 * MIB), List.of(memGetInfo(ca)[0], memGetInfo(ca)[1]));
            a.intact(40);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(ca, a.ctx, 24 * MIB + 1, null));

            // Another process of the same user holds 30 MiB on mock, where the user's quota is empty:
            // it does not fit the 24 MiB the quota leaves on mockb:0.
            Holder b = new Holder(cb, "quota-stayer", 4301, 30, 2);
            assertEquals(List.of(user + "30 mock:0 2", user + "40 mockb:0 2"), rows(cli));
            long onMockb = used(mockb);
            for (boolean precopy : new boolean[] {true, false}) {
                MigrationRecord no = router.migrate(b.session, "mockb", precopy);
                assertFalse(no.ok);
                assertEquals("quota user " + ME + " (64 MiB) has 24 MiB free on mockb:0, the session holds 30 MiB on mock:0",
                        no.message);
                assertEquals(0, no.bytesMoved);
            }
            // It stays on mock as it was; nothing was made on mockb; the accounting is untouched.
            assertEquals("mock", backendOf(b.session));
            b.intact(30);
            assertEquals(onMockb, used(mockb));
            assertEquals(List.of(user + "30 mock:0 2", user + "40 mockb:0 2"), rows(cli));
            assertEquals(CuResult.SUCCESS, alloc(cb, b.ctx, 34 * MIB, null));
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(cb, b.ctx, 1, null));
            awaitLogLines(2, "migration (command): session " + b.session + " mock -> mockb failed: quota user " + ME);

            // Once a frees memory there, b's move fits, and the accounting of both is exact.
            assertEquals(CuResult.SUCCESS, free(ca, a.ctx, a.ptr));
            assertTrue(router.migrate(b.session, "mockb", true).ok);
            assertEquals(List.of(user + "64 mockb:0 2"), rows(cli));
            b.intact(30);
            assertEquals(0, memGetInfo(ca)[0]);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(ca, a.ctx, 1, null));
            assertEquals(64 * MIB, used(mockb));
            assertEquals(0, used(mock));
        }
    }

    @Test(timeout = 60_000)
    public void anEvacuationGoesThroughPastTheQuotaWhichThenRefusesAllocations() throws Exception {
        TestRouters.prefer(router, "mock, mockb");
        restart(Map.of("quota.user." + ME + ".mib", "64"));
        String user = "user " + ME + " 64 ";
        try (TestClient ca = connect(); TestClient cb = connect(); TestClient cli = connect()) {
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            Holder a = new Holder(ca, "quota-resident", 4310, 40, 3);
            assertTrue(router.migrate(a.session, "mockb", false).ok);
            Holder b = new Holder(cb, "quota-evacuee", 4311, 30, 4);
            // mock goes away: its session moves to the next backend of the list although it does
            // not fit the quota there; losing its device would be worse.
            TestRouters.removeBackend(router, mock, "mock");
            assertEquals("mockb", backendOf(b.session));
            b.intact(30);
            assertEquals(List.of(user + "70 mockb:0 2"), rows(cli));
            awaitLogLines(1, "session " + b.session + " (" + ME + " 4311): evacuated from mock to mockb past its quota: quota user "
                    + ME + " (64 MiB) has 24 MiB free on mockb:0, the session holds 30 MiB on mock:0");
            assertEquals(0, memGetInfo(cb)[0]);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(cb, b.ctx, 1, null));
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(ca, a.ctx, 1, null));
            // Back within the quota once memory is freed.
            assertEquals(CuResult.SUCCESS, free(ca, a.ctx, a.ptr));
            assertEquals(34 * MIB, memGetInfo(cb)[0]);
            assertEquals(CuResult.SUCCESS, alloc(cb, b.ctx, 34 * MIB, null));
        }
    }
}
