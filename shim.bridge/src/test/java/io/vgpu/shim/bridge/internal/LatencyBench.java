package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.dtoh;
import static io.vgpu.shim.bridge.internal.TestClient.htod;
import static io.vgpu.shim.bridge.internal.TestClient.named;
import static io.vgpu.shim.bridge.internal.TestClient.payload;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertEquals;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import org.junit.Assume;
import org.junit.Test;

/**
 * Round-trip latency and async throughput over the real socket. Not a regular test: run with
 * {@code mvn -pl shim.bridge test -Dtest=LatencyBench -Dvgpu.bench=true}. The client polls for
 * its reply without blocking, as the C shim does during its spin window.
 */
public class LatencyBench extends BridgeTestBase {
    private static final int ROUND_TRIPS = 50_000;

    @Test
    public void measure() throws Exception {
        Assume.assumeTrue("set -Dvgpu.bench=true to run", Boolean.getBoolean("vgpu.bench"));
        for (int spin : new int[] {0, 50, 0, 50}) {
            restart(Map.of("spin_micros", spin));
            pingLatency(spin, 0);
            pingLatency(spin, 20);
            launchThroughput(spin);
            copyThroughput(spin);
        }
        allocationPerRequest();
    }

    /** Bytes the session thread allocates per request, core and mock included. */
    private void allocationPerRequest() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        try (TestClient c = connect()) {
            c.hello("alloc");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 1 << 20);
            String ptx = ".version 8.5\n.target sm_90\n.address_size 64\n.visible .entry k(.param .u64 p)\n{\n ret;\n}\n";
            long module = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), ptx.getBytes(StandardCharsets.US_ASCII)))
                    .u64(Wire.ModuleLoad.REP_MODULE);
            long function = c.call(Wire.FUNCTION_GET, named(module, "k")).u64(Wire.FunctionGet.REP_FUNCTION);
            ByteBuffer ec = payload(Wire.EventCreate.REQ_FIXED);
            ec.putLong(Wire.EventCreate.REQ_CTX, ctx);
            long event = c.call(Wire.EVENT_CREATE, ec).u64(Wire.EventCreate.REP_EVENT);
            ByteBuffer record = payload(Wire.EventRecord.REQ_FIXED);
            record.putLong(Wire.EventRecord.REQ_EVENT, event);
            Map<String, ByteBuffer> ops = new java.util.LinkedHashMap<>();
            ops.put("MEMSET", TestClient.memset(ctx, ptr, 1, 4, 64));
            ops.put("EVENT_RECORD", record);
            ops.put("LAUNCH", TestClient.concat(ProtocolTest.launch(function, 1, 1), new byte[8]));
            ops.put("MEMCPY_HTOD 256 B", htod(ctx, ptr, new byte[256]));
            Thread session = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("vgpu-session-") && t.isAlive()).reduce((a, b) -> b).orElseThrow();
            int n = 100_000;
            for (int round = 0; round < 2; round++) {
                long before = mx.getThreadAllocatedBytes(session.getId());
                for (int i = 0; i < n; i++) {
                    c.call(Wire.PING);
                }
                long bytes = mx.getThreadAllocatedBytes(session.getId()) - before;
                if (round == 1) {
                    System.out.printf("sync  %-17s allocates %.1f bytes per request on the session thread%n", "PING",
                            (double) bytes / n);
                }
            }
            for (Map.Entry<String, ByteBuffer> op : ops.entrySet()) {
                int code = switch (op.getKey()) {
                    case "MEMSET" -> Wire.MEMSET;
                    case "EVENT_RECORD" -> Wire.EVENT_RECORD;
                    case "LAUNCH" -> Wire.LAUNCH;
                    default -> Wire.MEMCPY_HTOD;
                };
                byte[] frame = ProtocolTest.frame(code, 0, op.getValue());
                ByteBuffer burst = ByteBuffer.allocate(frame.length * 100);
                for (int i = 0; i < 100; i++) {
                    burst.put(frame);
                }
                for (int round = 0; round < 2; round++) {
                    assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
                    long before = mx.getThreadAllocatedBytes(session.getId());
                    for (int i = 0; i < n / 100; i++) {
                        c.write(burst.flip().position(0).limit(burst.capacity()));
                    }
                    assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
                    long bytes = mx.getThreadAllocatedBytes(session.getId()) - before;
                    if (round == 1) {
                        System.out.printf("async %-17s allocates %.1f bytes per request on the session thread%n", op.getKey(),
                                (double) bytes / n);
                    }
                }
            }
        }
    }

    /** {@code thinkMicros}: how long the client works between calls (an application between CUDA calls). */
    private void pingLatency(int spin, int thinkMicros) throws Exception {
        try (TestClient c = connect()) {
            c.hello("bench");
            long[] samples = new long[ROUND_TRIPS];
            ByteBuffer empty = payload(0);
            for (int i = -5000; i < ROUND_TRIPS; i++) {
                think(thinkMicros);
                long t0 = System.nanoTime();
                c.call(Wire.PING, empty);
                if (i >= 0) {
                    samples[i] = System.nanoTime() - t0;
                }
            }
            Arrays.sort(samples);
            System.out.printf("spin_micros=%-3d think=%2d us  PING round trip: median %.1f us, p90 %.1f us, p99 %.1f us%n", spin,
                    thinkMicros, samples[ROUND_TRIPS / 2] / 1e3, samples[ROUND_TRIPS * 9 / 10] / 1e3,
                    samples[ROUND_TRIPS * 99 / 100] / 1e3);
        }
    }

    private static void think(int micros) {
        if (micros > 0) {
            long until = System.nanoTime() + micros * 1000L;
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
    }

    private void launchThroughput(int spin) throws Exception {
        try (TestClient c = connect()) {
            c.hello("bench");
            long ctx = c.ctxCreate();
            String ptx = ".version 8.5\n.target sm_90\n.address_size 64\n"
                    + ".visible .entry k(.param .u64 p, .param .u32 n)\n{\n ret;\n}\n";
            long module = c.call(Wire.MODULE_LOAD, TestClient.concat(u64(ctx), ptx.getBytes(StandardCharsets.US_ASCII)))
                    .u64(Wire.ModuleLoad.REP_MODULE);
            long function = c.call(Wire.FUNCTION_GET, named(module, "k")).u64(Wire.FunctionGet.REP_FUNCTION);
            ByteBuffer launch = TestClient.concat(ProtocolTest.launch(function, 1, 128), new byte[16]);
            // The shim queues async requests and sends them in batches of writes; do the same here.
            int perWrite = 256;
            ByteBuffer burst = ByteBuffer.allocate(perWrite * (Wire.HEADER + launch.remaining()));
            for (int i = 0; i < perWrite; i++) {
                burst.put(ProtocolTest.frame(Wire.LAUNCH, 0, launch));
            }
            int total = 200_000;
            for (int round = 0; round < 2; round++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < total / perWrite; i++) {
                    c.write(burst.flip().position(0).limit(burst.capacity()));
                }
                assertEquals(CuResult.SUCCESS, c.call(Wire.CTX_SYNCHRONIZE, u64(ctx)).result());
                double secs = (System.nanoTime() - t0) / 1e9;
                if (round == 1) {
                    System.out.printf("spin_micros=%-3d async LAUNCH: %.0f launches/s (%.2f us each, mock backend included)%n",
                            spin, (total / perWrite) * perWrite / secs, secs * 1e6 / ((total / perWrite) * perWrite));
                }
            }
        }
    }

    private void copyThroughput(int spin) throws Exception {
        try (TestClient c = connect()) {
            c.hello("bench");
            long ctx = c.ctxCreate();
            int size = 8 << 20;
            long ptr = c.memAlloc(ctx, size);
            byte[] data = new byte[size];
            ByteBuffer h = htod(ctx, ptr, data);
            int n = 40;
            for (int round = 0; round < 2; round++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    c.call(Wire.MEMCPY_HTOD, h);
                }
                long t1 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    c.call(Wire.MEMCPY_DTOH, dtoh(ctx, ptr, size));
                }
                long t2 = System.nanoTime();
                if (round == 1) {
                    System.out.printf("spin_micros=%-3d inline 8 MiB copies: HtoD %.2f GB/s, DtoH %.2f GB/s%n", spin,
                            (double) n * size / (t1 - t0), (double) n * size / (t2 - t1));
                }
            }
        }
    }
}
