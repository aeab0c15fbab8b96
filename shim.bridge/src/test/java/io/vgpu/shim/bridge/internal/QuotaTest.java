package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.payload;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Reply;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Memory quotas through the bridge, against the real core and the simulated H100: what
 * MEM_GET_INFO and DEVICE_LIST report, which allocations are refused, and QUOTA_LIST. Every test
 * client is this JVM's user, so the quota of "another user" is the business of MemoryQuotasTest and
 * of QuotaIT, which runs processes as other users.
 */
public class QuotaTest extends BridgeTestBase {
    static final long MIB = 1L << 20;
    static final long H100 = 81920 * MIB;
    static final String ME = System.getProperty("user.name");
    /** A 64 KiB global: module globals are device memory too. */
    static final String PTX = ".version 8.5\n.target sm_90\n.address_size 64\n"
            + ".visible .entry nothing()\n{\n ret;\n}\n"
            + ".visible .global .align 8 .b8 table[65536];\n";

    void quotas(Map<String, Object> properties) {
        restart(properties);
    }

    static long[] memGetInfo(TestClient c) throws Exception {
        Reply m = c.call(Wire.MEM_GET_INFO, payload(Wire.MemGetInfo.REQ_FIXED));
        assertEquals(CuResult.SUCCESS, m.result());
        return new long[] {m.u64(Wire.MemGetInfo.REP_FREE), m.u64(Wire.MemGetInfo.REP_TOTAL)};
    }

    static long deviceTotal(TestClient c) throws Exception {
        Reply r = c.call(Wire.DEVICE_LIST);
        assertEquals(CuResult.SUCCESS, r.result());
        return r.u64(Wire.DeviceList.REP_DEVICES + Wire.Device.TOTAL_MEMORY);
    }

    static int alloc(TestClient c, long ctx, long size, long[] ptr) throws Exception {
        ByteBuffer p = payload(Wire.MemAlloc.REQ_FIXED);
        p.putLong(Wire.MemAlloc.REQ_CTX, ctx).putLong(Wire.MemAlloc.REQ_SIZE, size);
        Reply r = c.call(Wire.MEM_ALLOC, p);
        if (ptr != null) {
            ptr[0] = r.u64(Wire.MemAlloc.REP_PTR);
        }
        return r.result();
    }

    static int free(TestClient c, long ctx, long ptr) throws Exception {
        ByteBuffer p = payload(Wire.MemFree.REQ_FIXED);
        p.putLong(Wire.MemFree.REQ_CTX, ctx).putLong(Wire.MemFree.REQ_PTR, ptr);
        return c.call(Wire.MEM_FREE, p).result();
    }

    static Reply memCreate(TestClient c, long size) throws Exception {
        ByteBuffer p = payload(Wire.MemCreate.REQ_FIXED);
        p.putLong(Wire.MemCreate.REQ_SIZE, size).putInt(Wire.MemCreate.REQ_DEVICE, 0);
        return c.call(Wire.MEM_CREATE, p);
    }

    /** QUOTA_LIST's quota records as "name limit-MiB used-MiB backend:device sessions". */
    static List<String> quotaRows(Reply r) {
        List<String> rows = new ArrayList<>();
        int at = Wire.QuotaList.REP_RECORDS;
        for (int i = 0; i < r.i32(Wire.QuotaList.REP_QUOTA_COUNT); i++, at += Wire.Quota.FIXED) {
            rows.add(Frame.string(r.payload(), at + Wire.Quota.NAME, 64) + " " + r.u64(at + Wire.Quota.LIMIT) / MIB + " "
                    + r.u64(at + Wire.Quota.USED) / MIB + " " + Frame.string(r.payload(), at + Wire.Quota.BACKEND, 32) + ":"
                    + r.i32(at + Wire.Quota.DEVICE) + " " + r.i32(at + Wire.Quota.SESSIONS));
        }
        return rows;
    }

    @Test
    public void withoutQuotasTheDeviceIsReportedAsItIs() throws Exception {
        try (TestClient c = connect()) {
            c.hello("no-quota");
            assertEquals(H100, deviceTotal(c));
            assertEquals(H100, memGetInfo(c)[1]);
        }
    }

    @Test
    public void theQuotaIsTheTotalAndAllocationsPastItAreOutOfMemory() throws Exception {
        quotas(Map.of("quota.user." + ME + ".mib", "64"));
        try (TestClient c = connect()) {
            c.hello("quota-test");
            assertEquals(64 * MIB, deviceTotal(c));
            long ctx = c.ctxCreate();
            assertEquals(List.of(64 * MIB, 64 * MIB), List.of(memGetInfo(c)[0], memGetInfo(c)[1]));
            long[] a = new long[1];
            long[] b = new long[1];
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, 40 * MIB, a));
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, 24 * MIB, b));
            assertEquals(0, memGetInfo(c)[0]);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(c, ctx, 1, null));
            assertEquals(CuResult.OUT_OF_MEMORY, memCreate(c, 2 * MIB).result());
            assertEquals(CuResult.SUCCESS, free(c, ctx, b[0]));
            assertEquals(24 * MIB, memGetInfo(c)[0]);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(c, ctx, 24 * MIB + 1, null));
            // VMM memory counts against the same quota.
            Reply h = memCreate(c, 24 * MIB);
            assertEquals(CuResult.SUCCESS, h.result());
            assertEquals(0, memGetInfo(c)[0]);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEM_RELEASE, u64(h.u64(Wire.MemCreate.REP_HANDLE))).result());
            assertEquals(24 * MIB, memGetInfo(c)[0]);
            // So do a module's globals: with 32 KiB left, a module with a 64 KiB global does not load.
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, 24 * MIB - 32 * 1024, b));
            Reply load = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), PTX.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.OUT_OF_MEMORY, load.result());
            assertEquals(32 * 1024, memGetInfo(c)[0]);
            assertEquals(CuResult.SUCCESS, free(c, ctx, b[0]));
            load = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), PTX.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.SUCCESS, load.result());
            assertEquals(24 * MIB - 65536, memGetInfo(c)[0]);
            assertEquals(CuResult.SUCCESS, c.call(Wire.MODULE_UNLOAD, u64(load.u64(Wire.ModuleLoad.REP_MODULE))).result());
            assertEquals(24 * MIB, memGetInfo(c)[0]);
            // Destroying the context frees what it held.
            assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_DESTROY, u64(ctx)).result());
            assertEquals(64 * MIB, memGetInfo(c)[0]);
        }
        awaitLogLines(1, "quota-test", "cuMemAlloc of 1 bytes on mock:0 refused with CUDA_ERROR_OUT_OF_MEMORY: quota user " + ME
                + " (64 MiB) is full");
    }

    @Test
    public void processesOfOneUserShareTheUserQuotaAndEachHasItsProcessQuota() throws Exception {
        quotas(Map.of("quota.user.mib", "100", "quota.process.mib", "60"));
        try (TestClient one = connect(); TestClient nvml = connect(); TestClient two = connect()) {
            one.hello("one", 4001);
            nvml.hello("one-nvml", 4001);
            two.hello("two", 4002);
            assertEquals(60 * MIB, deviceTotal(one));
            long c1 = one.ctxCreate();
            long c2 = two.ctxCreate();
            assertEquals(CuResult.SUCCESS, alloc(one, c1, 60 * MIB, null));
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(one, c1, 1, null));
            // The other connection of process 4001 (its NVML) sees what the process holds.
            assertEquals(0, memGetInfo(nvml)[0]);
            // Process 4002 has its own 60 MiB, but the user only 40 MiB left.
            assertEquals(40 * MIB, memGetInfo(two)[0]);
            assertEquals(CuResult.OUT_OF_MEMORY, alloc(two, c2, 40 * MIB + 1, null));
            assertEquals(CuResult.SUCCESS, alloc(two, c2, 40 * MIB, null));
            assertEquals(0, memGetInfo(two)[0]);
        }
        // A process that ended gives its memory back.
        try (TestClient three = connect()) {
            three.hello("three", 4003);
            await("the sessions to end", () -> router.sessions().size() == 1);
            assertEquals(60 * MIB, memGetInfo(three)[0]);
        }
    }

    @Test
    public void quotaListShowsEveryQuotaAndEachSessionsTightest() throws Exception {
        quotas(Map.of("quota.process.mib", "60", "quota.user.nobody-here.mib", "10"));
        try (TestClient c = connect(); TestClient cli = connect()) {
            TestClient.Hello h = c.hello("listed", 4100);
            long ctx = c.ctxCreate();
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, 5 * MIB, null));
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            Reply r = cli.call(Wire.QUOTA_LIST);
            assertEquals(CuResult.SUCCESS, r.result());
            assertEquals(2, r.i32(Wire.QuotaList.REP_QUOTA_COUNT));
            assertEquals(1, r.i32(Wire.QuotaList.REP_SESSION_COUNT));
            assertEquals(Wire.QuotaList.REP_FIXED + 2 * Wire.Quota.FIXED + Wire.SessionQuota.FIXED, r.payload().limit());
            assertEquals(List.of("user nobody-here 10 0 :-1 0", "process 4100 60 5 mock:0 1"), quotaRows(r));
            int at = Wire.QuotaList.REP_RECORDS + 2 * Wire.Quota.FIXED;
            assertEquals(h.session(), r.u64(at + Wire.SessionQuota.SESSION));
            assertEquals(60 * MIB, r.u64(at + Wire.SessionQuota.LIMIT));
            assertEquals("process 4100", Frame.string(r.payload(), at + Wire.SessionQuota.QUOTA, 64));
        }
    }

    @Test(timeout = 60_000)
    public void aClientUnderAQuotaThatHangsUpMidKernelIsAbandonedAndItsQuotaFreed() throws Exception {
        quotas(Map.of("quota.user." + ME + ".mib", "64"));
        String name = uniqueName("quota-spinner");
        TestClient c = connect();
        try (TestClient cli = connect(); TestClient other = connect()) {
            c.hello(name, 4200);
            cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu");
            other.hello("quota-bystander", 4201);
            long ctx = c.ctxCreate();
            assertEquals(CuResult.SUCCESS, alloc(c, ctx, 40 * MIB, null));
            Reply load = c.call(Wire.MODULE_LOAD,
                    TestClient.concat(u64(ctx), WireHardeningTest.SPIN_PTX.getBytes(StandardCharsets.US_ASCII)));
            assertEquals(CuResult.SUCCESS, load.result());
            long fn = c.call(Wire.FUNCTION_GET, TestClient.named(load.u64(Wire.ModuleLoad.REP_MODULE), "spin"))
                    .u64(Wire.FunctionGet.REP_FUNCTION);
            ByteBuffer params = payload(8).putLong(0, java.util.concurrent.TimeUnit.SECONDS.toNanos(120));
            c.send(Wire.LAUNCH, 0, TestClient.concat(ProtocolTest.launch(fn, 1, 32), TestClient.bytes(params)));
            await("the kernel runs", () -> router.sessions().stream().anyMatch(s -> s.launches == 1));
            // Quotas never wait for a running request: the list and another session's view answer.
            long t0 = System.nanoTime();
            assertEquals(CuResult.SUCCESS, cli.call(Wire.QUOTA_LIST).result());
            assertEquals(24 * MIB, memGetInfo(other)[0]);
            assertTrue((System.nanoTime() - t0) / 1_000_000 + " ms", System.nanoTime() - t0 < 2_000_000_000L);
            c.close();
            await("the spinner's session is closed", () -> router.sessions().size() == 1);
            assertEquals(64 * MIB, memGetInfo(other)[0]);
            awaitLogLines(1, name, "hung up while a request");
        } finally {
            c.close();
        }
    }

    @Test
    public void aQuotaLargerThanTheDeviceReportsTheDevice() throws Exception {
        quotas(Map.of("quota.process.mib", "1000000"));
        try (TestClient c = connect()) {
            c.hello("big-quota");
            assertEquals(H100, deviceTotal(c));
            long[] info = memGetInfo(c);
            assertEquals(H100, info[1]);
            assertTrue(info[0] <= H100);
        }
    }
}
