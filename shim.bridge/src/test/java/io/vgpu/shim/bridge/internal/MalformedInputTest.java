package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.payload;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Hello;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

/**
 * Protocol violations close only the offending connection, with one WARN line naming the peer;
 * its session is released, and a bystander connection keeps working.
 */
public class MalformedInputTest extends BridgeTestBase {
    private interface Abuse {
        void apply(TestClient c) throws IOException;
    }

    /** Greets as a CUDA client holding memory, abuses the connection, and checks the aftermath. */
    private void assertViolationClosesOnlyItsConnection(String reason, Abuse abuse) throws Exception {
        try (TestClient bystander = connect(); TestClient bad = connect()) {
            bystander.hello("bystander");
            long ctx = bystander.ctxCreate();
            String name = uniqueName("abuser");
            bad.hello(name);
            bad.memAlloc(bad.ctxCreate(), 1 << 20);
            assertEquals(2, router.sessions().size());

            abuse.apply(bad);

            assertTrue("the service closes the connection", bad.closedByService());
            await("the abuser's session is closed", () -> router.sessions().size() == 1);
            awaitLogLines(1, "WARN", name, reason);
            assertEquals(CuResult.SUCCESS, bystander.call(Wire.PING).result());
            bystander.memAlloc(ctx, 4096);
        }
    }

    private static ByteBuffer header(int length, int op, int flags, int seq) {
        ByteBuffer h = ByteBuffer.allocate(Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(h, 0, length, op, flags, seq);
        return h;
    }

    @Test
    public void oversizedLength() throws Exception {
        assertViolationClosesOnlyItsConnection("exceeds", c -> c.write(header(Frame.MAX_PAYLOAD + 1, Wire.MEMCPY_HTOD, 0, 9)));
    }

    @Test
    public void negativeLength() throws Exception {
        assertViolationClosesOnlyItsConnection("exceeds", c -> c.write(header(-16, Wire.PING, 0, 9)));
    }

    @Test
    public void unknownOp() throws Exception {
        assertViolationClosesOnlyItsConnection("unknown op 4242", c -> c.send(4242, 0, payload(0)));
    }

    @Test
    public void truncatedFixedPart() throws Exception {
        assertViolationClosesOnlyItsConnection("shorter than its fixed part", c -> c.send(Wire.MEM_ALLOC, 0, payload(12)));
    }

    @Test
    public void asyncFlagOnASynchronousOp() throws Exception {
        assertViolationClosesOnlyItsConnection("ASYNC flag on the synchronous op MEM_ALLOC",
                c -> c.send(Wire.MEM_ALLOC, Wire.FLAG_ASYNC, payload(Wire.MemAlloc.REQ_FIXED)));
    }

    @Test
    public void secondHello() throws Exception {
        assertViolationClosesOnlyItsConnection("a second HELLO", c -> c.send(Wire.HELLO, 0, payload(Wire.Hello.REQ_FIXED)));
    }

    @Test
    public void batchWithASynchronousFrame() throws Exception {
        assertViolationClosesOnlyItsConnection("BATCH carries CTX_SYNCHRONIZE", c -> {
            ByteBuffer inner = ByteBuffer.wrap(ProtocolTest.frame(Wire.CTX_SYNCHRONIZE, 50, u64(1)));
            inner.putShort(Frame.FLAGS, (short) 0);
            c.post(Wire.BATCH, inner);
        });
    }

    @Test
    public void batchWithAnOverrunningFrame() throws Exception {
        assertViolationClosesOnlyItsConnection("overruns", c -> {
            ByteBuffer inner = ByteBuffer.wrap(ProtocolTest.frame(Wire.EVENT_RECORD, 50, payload(Wire.EventRecord.REQ_FIXED)))
                    .order(ByteOrder.LITTLE_ENDIAN);
            inner.putInt(Frame.LENGTH, 1000);
            c.post(Wire.BATCH, inner);
        });
    }

    @Test
    public void batchEndingInsideAHeader() throws Exception {
        assertViolationClosesOnlyItsConnection("inside a frame header", c -> c.post(Wire.BATCH, payload(10)));
    }

    @Test
    public void aFrameCutShortByTheClientClosing() throws Exception {
        try (TestClient c = connect()) {
            c.hello("cut-short");
            c.memAlloc(c.ctxCreate(), 4096);
            c.write(header(100, Wire.MEMCPY_HTOD, Wire.FLAG_ASYNC, 5));
            c.write(payload(30));
        }
        await("the session is closed", () -> router.sessions().isEmpty());
    }

    @Test
    public void theFirstRequestMustBeHello() throws Exception {
        try (TestClient bad = connect(); TestClient good = connect()) {
            bad.send(Wire.PING, 0, payload(0));
            assertTrue(bad.closedByService());
            good.hello("good");
            assertEquals(CuResult.SUCCESS, good.call(Wire.PING).result());
        }
        assertTrue(logLines("WARN", "the first request is PING, not HELLO").size() >= 1);
    }

    @Test
    public void badMagicIsAViolation() throws Exception {
        try (TestClient bad = connect()) {
            bad.send(Wire.HELLO, 0, payload(Wire.Hello.REQ_FIXED));
            assertTrue(bad.closedByService());
        }
        assertTrue(router.sessions().isEmpty());
    }

    @Test
    public void helloStringsMustBeNulTerminated() throws Exception {
        try (TestClient bad = connect()) {
            ByteBuffer p = payload(Wire.Hello.REQ_FIXED);
            p.putInt(Wire.Hello.REQ_MAGIC, Wire.MAGIC).putShort(Wire.Hello.REQ_MAJOR, (short) Wire.MAJOR);
            for (int i = Wire.Hello.REQ_PROCESS; i < Wire.Hello.REQ_SHM_PATH; i++) {
                p.put(i, (byte) 'x');
            }
            bad.send(Wire.HELLO, 0, p);
            assertTrue(bad.closedByService());
        }
        assertTrue(router.sessions().isEmpty());
        assertTrue(logLines("WARN", "HELLO process is not NUL-terminated").size() >= 1);
    }

    @Test
    public void anotherMajorVersionIsRefusedWithDriverMismatch() throws Exception {
        try (TestClient c = connect()) {
            Hello h = c.hello(Wire.MAGIC, Wire.MAJOR + 1, 0, 0, "", uniqueName("future"));
            assertEquals(CuResult.SYSTEM_DRIVER_MISMATCH, h.result());
            assertEquals(Wire.MAJOR, h.major());
            assertTrue(c.closedByService());
        }
        assertTrue(router.sessions().isEmpty());
    }

    @Test
    public void garbageDoesNotHurtTheService() throws Exception {
        java.util.Random random = new java.util.Random(42);
        for (int i = 0; i < 50; i++) {
            try (TestClient c = connect()) {
                c.hello("fuzz");
                byte[] junk = new byte[16 + random.nextInt(200)];
                random.nextBytes(junk);
                // Keep the length plausible half of the time so the op and field checks are reached.
                ByteBuffer b = ByteBuffer.wrap(junk).order(ByteOrder.LITTLE_ENDIAN);
                if (i % 2 == 0) {
                    b.putInt(0, random.nextInt(junk.length - 15));
                }
                c.write(b);
            } catch (IOException closedEarly) {
                // The service may close before the whole write is accepted.
            }
        }
        await("every fuzzed session is closed", () -> router.sessions().isEmpty());
        try (TestClient c = connect()) {
            c.hello("after-fuzz");
            assertEquals(CuResult.SUCCESS, c.call(Wire.DEVICE_LIST).result());
        }
    }
}
