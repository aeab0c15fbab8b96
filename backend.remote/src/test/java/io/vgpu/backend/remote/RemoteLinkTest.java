package io.vgpu.backend.remote;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Frames;
import io.vgpu.backend.remote.internal.Tls;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

/** guest RemoteBackend -> TLS 1.3 -> RemoteListener -> the simulated H100, in one JVM. */
public class RemoteLinkTest {
    static Path dir;
    static MockBackend mock;
    static RemoteListener listener;
    static Path hostCrt;

    @BeforeClass
    public static void setUp() throws Exception {
        dir = Files.createTempDirectory("vgpu-remote-test");
        Path peers = dir.resolve("peers");
        hostCrt = Pki.identity(dir, "host", null, 30);
        Files.createDirectories(peers);
        Files.copy(Pki.identity(dir, "guest", null, 30), peers.resolve("guest.crt"));
        Pki.identity(dir, "stranger", null, 30);
        Files.copy(Pki.identity(dir, "expired", "-10d", 1), peers.resolve("expired.crt"));
        mock = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
        Map<String, Object> c = Pki.listenerConfig(dir, "host", "127.0.0.1", peers);
        listener = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", mock));
    }

    @AfterClass
    public static void tearDown() {
        listener.deactivate();
    }

    static RemoteBackend guest(String who, int port, boolean plaintext) {
        Map<String, Object> c = new HashMap<>();
        c.put("backend.id", "gpu-" + who);
        c.put("address", "127.0.0.1");
        c.put("port", Integer.toString(port));
        c.put("identity", dir.resolve(who + ".p12").toString());
        c.put("identity.password.file", dir.resolve(who + ".pass").toString());
        c.put("trust", hostCrt.toString());
        c.put("plaintext", Boolean.toString(plaintext));
        c.put("connect.wait.ms", "8000");
        return new RemoteBackend(Configs.of(RemoteBackend.Config.class, c));
    }

    static String log() throws IOException {
        Path p = Path.of(System.getProperty("org.slf4j.simpleLogger.logFile", "target/remote-test.log"));
        return Files.exists(p) ? Files.readString(p) : "";
    }

    static final String FILL_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n"
            + ".visible .entry fill(.param .u64 out, .param .u32 value, .param .u32 n)\n{\n"
            + "  .reg .b32 %r<6>;\n  .reg .b64 %rd<5>;\n  .reg .pred %p;\n"
            + "  ld.param.u64 %rd1, [out];\n  ld.param.u32 %r1, [value];\n  ld.param.u32 %r2, [n];\n"
            + "  mov.u32 %r3, %ctaid.x;\n  mov.u32 %r4, %ntid.x;\n  mov.u32 %r5, %tid.x;\n"
            + "  mad.lo.s32 %r3, %r3, %r4, %r5;\n  setp.ge.s32 %p, %r3, %r2;\n  @%p ret;\n"
            + "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.s32 %rd3, %r3, 4;\n  add.s64 %rd4, %rd2, %rd3;\n"
            + "  add.s32 %r1, %r1, %r3;\n  st.global.u32 [%rd4], %r1;\n  ret;\n}\n";

    static ModuleImage fill() {
        return ptxImage("fill", FILL_PTX, new int[] {0, 8, 12}, new int[] {8, 4, 4}, 16);
    }

    /** An sm_70 PTX module of one kernel with the given parameter layout, as the core parses one. */
    static ModuleImage ptxImage(String kernel, String ptx, int[] paramOffsets, int[] paramSizes, int paramBufferSize) {
        ModuleImage m = new ModuleImage();
        m.format = ModuleImage.Format.PTX;
        m.data = ptx.getBytes(StandardCharsets.US_ASCII);
        m.ptxSource = m.data;
        m.arch = 70;
        m.ptx = true;
        m.virtualArch = 70;
        m.ptxArch = 70;
        KernelInfo k = new KernelInfo();
        k.name = kernel;
        k.paramOffsets = paramOffsets;
        k.paramSizes = paramSizes;
        k.paramBufferSize = paramBufferSize;
        m.kernels.add(k);
        return m;
    }

    @Test
    public void theHostsDevicesAndMemoryWorkThroughTheLink() {
        RemoteBackend g = guest("guest", listener.port(), false);
        try {
            assertTrue(g.info().toString(), g.info().available);
            DeviceInfo[] remote = g.devices();
            DeviceInfo[] local = mock.devices();
            assertEquals(local.length, remote.length);
            assertEquals(local[0].name, remote[0].name);
            assertArrayEquals(local[0].uuid, remote[0].uuid);
            assertEquals(local[0].totalMemory, remote[0].totalMemory);
            assertEquals(local[0].pciBusId(), remote[0].pciBusId());
            long[] ctx = new long[1];
            assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, 77, ctx));
            long base = 0x2000_0000_0000L;
            int size = 20 << 20; // three chunks each way
            assertEquals(CuResult.SUCCESS, g.memAlloc(ctx[0], base, size));
            byte[] data = new byte[size];
            new Random(1).nextBytes(data);
            assertEquals(CuResult.SUCCESS, g.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0));
            ByteBuffer back = ByteBuffer.allocateDirect(size);
            assertEquals(CuResult.SUCCESS, g.memcpyDtoH(ctx[0], back, base, 0));
            byte[] got = new byte[size];
            back.flip().get(got);
            assertArrayEquals(data, got);
            // Refused locally, without a round trip: outside the owner's allocations.
            assertEquals(CuResult.INVALID_VALUE, g.memcpyHtoD(ctx[0], base + size - 1, ByteBuffer.allocate(2), 0));
            // A kernel from its PTX, on the host's engine; launch is fire-and-forget.
            long[] mod = new long[1];
            long[] fn = new long[1];
            assertEquals(CuResult.SUCCESS, g.moduleLoad(ctx[0], fill(), base + (1L << 32), mod));
            assertEquals(CuResult.SUCCESS, g.functionGet(mod[0], "fill", fn));
            assertEquals(CuResult.NOT_FOUND, g.functionGet(mod[0], "nope", new long[1]));
            int n = 5000;
            ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(base).putInt(7).putInt(n).flip();
            for (int i = 0; i < 50; i++) {
                assertEquals(CuResult.SUCCESS, g.launch(fn[0], new LaunchConfig(40, 1, 1, 128, 1, 1, 0), params.duplicate(), 0));
            }
            assertEquals(CuResult.SUCCESS, g.ctxSynchronize(ctx[0]));
            ByteBuffer out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(CuResult.SUCCESS, g.memcpyDtoH(ctx[0], out, base, 0));
            for (int i = 0; i < n; i++) {
                assertEquals(7 + i, out.getInt(4 * i));
            }
            long free0 = mock.devices()[0].totalMemory;
            long[] info = new long[2];
            assertEquals(CuResult.SUCCESS, g.memGetInfo(0, info));
            assertTrue(info[0] < free0);
            assertEquals(CuResult.SUCCESS, g.ctxDestroy(ctx[0]));
            long[] after = new long[2];
            mock.memGetInfo(0, after);
            assertEquals(after[1], after[0]);
            long[] sum = new long[3];
            for (int i = 0; i < 200; i++) {
                long t = g.pingNanos();
                assertTrue(t > 0);
                sum[0] += t;
            }
            System.out.println("remote PING round trip over TLS loopback: " + sum[0] / 200 / 1000 + " us");
        } finally {
            g.deactivate();
        }
    }

    /** Polls {@code condition} until it holds or {@code millis} have passed; whether it held. */
    static boolean within(long millis, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.onSpinWait();
            Thread.yield();
        }
        return true;
    }

    /** The first log line written after {@code from} (a length of the log) that contains all of {@code parts}. */
    static String logLine(int from, String... parts) throws Exception {
        String[] found = {null};
        within(5000, () -> {
            try {
                String log = log();
                found[0] = log.length() < from ? null : log.substring(from).lines()
                        .filter(l -> java.util.Arrays.stream(parts).allMatch(l::contains)).findFirst().orElse(null);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return found[0] != null;
        });
        assertNotNull("no log line with " + java.util.Arrays.toString(parts) + " after offset " + from + " in:\n"
                + log().substring(Math.min(from, log().length())), found[0]);
        return found[0];
    }

    /** A paired guest that stays connected while others are refused, and its memory. */
    static final class Bystander implements AutoCloseable {
        final RemoteBackend backend = guest("guest", listener.port(), false);
        final long[] ctx = new long[1];
        final long base;
        int rounds;

        Bystander(long base) {
            this.base = base;
            assertTrue(backend.info().toString(), backend.info().available);
            assertEquals(CuResult.SUCCESS, backend.ctxCreate(0, 0, base >>> 32, ctx));
            assertEquals(CuResult.SUCCESS, backend.memAlloc(ctx[0], base, 1 << 16));
        }

        /** Fresh bytes there and back, and a synchronize: the host still serves this guest. */
        void stillServed() {
            byte[] data = new byte[1 << 16];
            new Random(++rounds).nextBytes(data);
            assertEquals(CuResult.SUCCESS, backend.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0));
            ByteBuffer back = ByteBuffer.allocate(data.length);
            assertEquals(CuResult.SUCCESS, backend.memcpyDtoH(ctx[0], back, base, 0));
            assertArrayEquals("round " + rounds, data, back.array());
            assertEquals(CuResult.SUCCESS, backend.ctxSynchronize(ctx[0]));
            assertTrue(backend.info().toString(), backend.info().available);
        }

        @Override
        public void close() {
            assertEquals(CuResult.SUCCESS, backend.ctxDestroy(ctx[0]));
            backend.deactivate();
        }
    }

    /** Connects a guest that must be refused, checks it was, and returns the log's length before it tried. */
    static int refused(String who, boolean plaintext) throws Exception {
        int from = log().length();
        RemoteBackend g = guest(who, listener.port(), plaintext);
        try {
            assertFalse(g.info().toString(), g.info().available);
            // Never connected: nothing was lost, the reason is the refusal alone.
            assertTrue(g.info().reason, g.info().reason.startsWith("cannot connect to 127.0.0.1:" + listener.port() + ": "));
        } finally {
            g.deactivate();
        }
        return from;
    }

    @Test
    public void strangersExpiredCertificatesAndPlaintextAreRefusedWhileTheHostKeepsServing() throws Exception {
        try (Bystander good = new Bystander(0x2300_0000_0000L)) {
            good.stillServed();
            System.out.println("stranger: " + logLine(refused("stranger", false), "remote listener refused", "is not paired with this machine"));
            good.stillServed();
            System.out.println("expired: " + logLine(refused("expired", false), "remote listener refused", "expired on"));
            good.stillServed();
            System.out.println("plaintext: " + logLine(refused("guest", true), "remote listener refused",
                    "Unsupported or unrecognized SSL message"));
            good.stillServed();
            // No certificate at all: a TLS client with no key material.
            int from = log().length();
            javax.net.ssl.SSLContext anon = javax.net.ssl.SSLContext.getInstance("TLSv1.3");
            anon.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
                public void checkClientTrusted(java.security.cert.X509Certificate[] c, String a) {}

                public void checkServerTrusted(java.security.cert.X509Certificate[] c, String a) {}

                public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                    return new java.security.cert.X509Certificate[0];
                }
            }}, null);
            int localPort;
            try (SSLSocket s = (SSLSocket) anon.getSocketFactory().createSocket("127.0.0.1", listener.port())) {
                localPort = s.getLocalPort();
                s.setSoTimeout(5000);
                try {
                    s.startHandshake();
                    // TLS 1.3: the server's refusal of the client certificate arrives on the first read.
                    s.getOutputStream().write(new byte[16]);
                    s.getOutputStream().flush();
                    assertEquals(-1, s.getInputStream().read());
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("the host kept a guest without a certificate for 5 s", e);
                } catch (IOException expected) {
                    // refused
                }
            }
            String line = logLine(from, "remote listener refused 127.0.0.1:" + localPort, "TLS handshake failed");
            assertTrue(line, line.contains("Empty client certificate chain") || line.contains("no certificate"));
            System.out.println("no certificate: " + line);
            good.stillServed();
        }
    }

    /** A paired guest's own TLS session that speaks the protocol by hand: REMOTE_HELLO, then what a test writes. */
    static SSLSocket helloed() throws Exception {
        SSLContext ctx = Tls.context(dir.resolve("guest.p12"), dir.resolve("guest.pass"), hostCrt);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", listener.port());
        Tls.restrict(s);
        s.setUseClientMode(true);
        s.setSoTimeout(5000);
        s.startHandshake();
        ByteBuffer hello = Frames.request(Wire.REMOTE_HELLO, Wire.RemoteHello.REQ_FIXED, false);
        hello.putInt(Wire.HEADER + Wire.RemoteHello.REQ_MAGIC, Wire.MAGIC)
                .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MAJOR, (short) Wire.MAJOR)
                .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MINOR, (short) Wire.MINOR)
                .putLong(Wire.HEADER + Wire.RemoteHello.REQ_WINDOW_BASE, AddressWindow.DEFAULT_BASE)
                .putLong(Wire.HEADER + Wire.RemoteHello.REQ_WINDOW_SIZE, AddressWindow.DEFAULT_SIZE);
        s.getOutputStream().write(hello.array());
        s.getOutputStream().flush();
        Frames.In r = Frames.read(new DataInputStream(s.getInputStream()), new byte[Wire.HEADER], 4096, null);
        assertNotNull("the host closed after REMOTE_HELLO", r);
        assertEquals(Wire.REMOTE_HELLO, r.op);
        assertEquals(CuResult.SUCCESS, r.result);
        return s;
    }

    /** A request header as the guest writes it, with any length, op and flags. */
    static byte[] header(long length, int op, int flags) {
        return ByteBuffer.allocate(Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN).putInt((int) length).putShort((short) op)
                .putShort((short) flags).putInt(1).putInt(0).array();
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /**
     * Writes {@code bytes} on a fresh, valid guest session, then checks that the host hangs up
     * on it (or, with {@code hangUp}, that it hangs up itself) and logs {@code expected} for
     * exactly that connection.
     */
    static String malformed(byte[] bytes, boolean hangUp, String... expected) throws Exception {
        int from = log().length();
        int localPort;
        try (SSLSocket s = helloed()) {
            localPort = s.getLocalPort();
            s.getOutputStream().write(bytes);
            s.getOutputStream().flush();
            if (!hangUp) {
                try {
                    assertEquals("the host answered a malformed frame", -1, s.getInputStream().read());
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("the host kept a malformed guest's connection for 5 s", e);
                } catch (IOException e) {
                    // reset: closed as well
                }
            }
        }
        String[] parts = java.util.Arrays.copyOf(expected, expected.length + 1);
        // The peer's name ends with its port: ": " follows when the host disconnects it, " gone" when it left.
        parts[expected.length] = "guest@127.0.0.1:" + localPort + (hangUp ? " " : ": ");
        return logLine(from, parts);
    }

    @Test
    public void malformedFramesOnAValidSessionDisconnectThatGuestAloneWithALogLine() throws Exception {
        try (Bystander good = new Bystander(0x2400_0000_0000L)) {
            good.stillServed();
            // A length that does not cover the op's fixed part.
            System.out.println("bad length: " + malformed(concat(header(2, Wire.CTX_SYNCHRONIZE, 0), new byte[2]), false,
                    "disconnecting", "protocol violation: CTX_SYNCHRONIZE payload of 2 bytes is shorter than its fixed part (8)"));
            good.stillServed();
            System.out.println("unknown op: " + malformed(concat(header(8, 0x7777, 0), new byte[8]), false,
                    "disconnecting", "protocol violation: op 30583", "is not served on the remote link"));
            good.stillServed();
            // The shim's session ops that the link does not carry are unknown here too.
            System.out.println("session op: " + malformed(concat(header(0, Wire.SERVICE_STATUS, 0), new byte[0]), false,
                    "disconnecting", "protocol violation: op " + Wire.SERVICE_STATUS, "is not served on the remote link"));
            good.stillServed();
            System.out.println("oversized: " + malformed(header(Frame.MAX_PAYLOAD + 1L, Wire.MEMCPY_HTOD, Wire.FLAG_ASYNC), false,
                    "disconnecting", "protocol violation: frame of " + (Frame.MAX_PAYLOAD + 1) + " bytes exceeds the limit of "
                            + Frame.MAX_PAYLOAD));
            good.stillServed();
            System.out.println("negative: " + malformed(header(0xffff_ffffL, Wire.MEMCPY_HTOD, Wire.FLAG_ASYNC), false,
                    "disconnecting", "protocol violation: frame of 4294967295 bytes exceeds the limit"));
            good.stillServed();
            System.out.println("async sync op: " + malformed(concat(header(16, Wire.REMOTE_CTX_CREATE, Wire.FLAG_ASYNC),
                    new byte[16]), false, "disconnecting", "protocol violation: ASYNC flag on the synchronous op REMOTE_CTX_CREATE"));
            good.stillServed();
            // Truncated: a header promising 1 MiB, 1000 bytes of it, then the guest hangs up.
            System.out.println("truncated: " + malformed(concat(header(1 << 20, Wire.MEMCPY_HTOD, Wire.FLAG_ASYNC), new byte[1000]),
                    true, "gone (connection lost: connection closed inside a frame of 1048576 bytes (op 50))"));
            good.stillServed();
            System.out.println("truncated header: " + malformed(java.util.Arrays.copyOf(header(8, Wire.PING, 0), 9), true,
                    "gone (connection lost: connection closed inside a frame header)"));
            good.stillServed();
        }
    }

    /** A TCP relay that can be frozen: the link then goes silent, as a cut cable or a hung host would. */
    static final class Relay implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        private boolean frozen;
        final java.util.List<Socket> open = new java.util.concurrent.CopyOnWriteArrayList<>();

        Relay(int target) throws IOException {
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket a = server.accept();
                        if (frozen()) {
                            a.close();
                            continue;
                        }
                        Socket b = new Socket(InetAddress.getLoopbackAddress(), target);
                        open.add(a);
                        open.add(b);
                        pump(a, b);
                        pump(b, a);
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }

        void pump(Socket from, Socket to) {
            Thread t = new Thread(() -> {
                byte[] buf = new byte[65536];
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                    while (true) {
                        int n = in.read(buf);
                        if (n < 0) {
                            break;
                        }
                        synchronized (this) {
                            while (frozen) {
                                wait();
                            }
                        }
                        out.write(buf, 0, n);
                    }
                } catch (IOException | InterruptedException e) {
                    // link over
                }
            });
            t.setDaemon(true);
            t.start();
        }

        synchronized boolean frozen() {
            return frozen;
        }

        /** Freezing holds every byte in the relay; thawing lets the pumps go on at once. */
        synchronized void freeze(boolean on) {
            frozen = on;
            notifyAll();
        }

        /** Drops the frozen connections, so the host side notices too. */
        void dropAll() throws IOException {
            for (Socket s : open) {
                s.close();
            }
            open.clear();
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
            dropAll();
        }
    }

    @Test
    public void aSilentLinkIsDetectedCallsFailWithinFiveSecondsAndTheBackendReconnects() throws Exception {
        try (Relay relay = new Relay(listener.port())) {
            RemoteBackend g = guest("guest", relay.port(), false);
            try {
                assertTrue(g.info().available);
                long[] ctx = new long[1];
                assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, 9, ctx));
                relay.freeze(true);
                long t0 = System.nanoTime();
                CompletableFuture<Integer> sync = CompletableFuture.supplyAsync(() -> g.ctxSynchronize(ctx[0]));
                int rc = sync.get(6, TimeUnit.SECONDS);
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                System.out.println("frozen link: ctxSynchronize returned " + rc + " after " + ms + " ms");
                assertEquals(CuResult.DEVICE_UNAVAILABLE, rc);
                assertTrue(ms + " ms", ms <= 5000);
                assertFalse(g.info().available);
                // The loss leads the reason, also once a reconnect attempt has failed behind it.
                assertTrue(g.info().reason,
                        g.info().reason.startsWith("link to 127.0.0.1:" + relay.port() + " lost: no answer from the host for 3000 ms"));
                assertEquals(CuResult.DEVICE_UNAVAILABLE, g.memAlloc(ctx[0], 0x2100_0000_0000L, 4096));
                relay.dropAll();
                relay.freeze(false);
                assertTrue("reconnected: " + g.info(), within(10_000, () -> g.info().available));
                // The old context died with the old link; new ones work.
                assertEquals(CuResult.DEVICE_UNAVAILABLE, g.ctxSynchronize(ctx[0]));
                assertEquals(CuResult.SUCCESS, g.ctxDestroy(ctx[0]));
                long[] c2 = new long[1];
                assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, 9, c2));
                assertEquals(CuResult.SUCCESS, g.ctxSynchronize(c2[0]));
                assertEquals(CuResult.SUCCESS, g.ctxDestroy(c2[0]));
            } finally {
                g.deactivate();
            }
        }
    }

    /**
     * Copies to the host are fire-and-forget, so a guest streaming them holds the link's writer
     * nearly all the time; its heartbeats must still go out, or it never hears that the host
     * drains and loses its work when the host closes.
     */
    @Test(timeout = 60_000)
    public void aGuestStreamingCopiesStillHearsThatTheHostDrains() throws Exception {
        Map<String, Object> c = Pki.listenerConfig(dir, "host", "127.0.0.1", dir.resolve("peers"));
        c.put("drain.seconds", "20");
        RemoteListener host = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", mock));
        RemoteBackend g = guest("guest", host.port(), false);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger rc = new AtomicInteger(CuResult.SUCCESS);
        AtomicLong copies = new AtomicLong();
        Thread copier = null;
        Thread drain = new Thread(host::deactivate, "drain");
        try {
            long[] ctx = new long[1];
            assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, 79, ctx));
            long base = 0x2400_0000_0000L;
            int size = 1 << 20; // as test_hold copies
            assertEquals(CuResult.SUCCESS, g.memAlloc(ctx[0], base, size));
            ByteBuffer data = ByteBuffer.wrap(new byte[size]);
            copier = new Thread(() -> {
                while (!stop.get() && rc.get() == CuResult.SUCCESS) {
                    rc.set(g.memcpyHtoD(ctx[0], base, data.duplicate(), 0));
                    copies.incrementAndGet();
                }
            }, "copier");
            copier.start();
            assertTrue("the copies flow", within(10_000, () -> copies.get() > 2));
            long t0 = System.nanoTime();
            drain.start();
            // Heartbeats every second: the next one's reply says so (one more period of slack).
            assertTrue(g.info().toString(), within(2_500, () -> g.info().draining));
            long heard = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertEquals("host draining", g.info().reason);
            stop.set(true);
            copier.join(10_000);
            assertEquals("the copies worked while the host drained", CuResult.SUCCESS, rc.get());
            assertEquals(CuResult.SUCCESS, g.ctxDestroy(ctx[0]));
            drain.join(10_000);
            assertTrue(host.lastDrain(), host.lastDrain().matches("drained 1 guest\\(s\\) in \\d+ ms"));
            System.out.println("a guest streaming " + copies.get() + " copies of 1 MiB heard the drain after " + heard + " ms; " + host.lastDrain());
        } finally {
            stop.set(true);
            if (copier != null) {
                copier.join(10_000);
            }
            g.deactivate();
            if (!drain.isAlive()) {
                host.deactivate();
            }
            drain.join(30_000);
        }
    }

    @Test
    public void plaintextIsRefusedOffLoopbackAndServedOnLoopbackOnlyWhenAsked() throws Exception {
        Map<String, Object> c = new HashMap<>();
        c.put("address", "127.0.0.1");
        c.put("port", "0");
        c.put("plaintext", "true");
        RemoteListener plain = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", (CudaService) mock));
        try {
            RemoteBackend g = guest("guest", plain.port(), true);
            assertTrue(g.info().toString(), g.info().available);
            long[] ctx = new long[1];
            assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, 3, ctx));
            assertEquals(CuResult.SUCCESS, g.ctxDestroy(ctx[0]));
            g.deactivate();
        } finally {
            plain.deactivate();
        }
        c.put("address", "0.0.0.0");
        RemoteListener wide = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", (CudaService) mock));
        assertEquals(-1, wide.port());
        assertTrue(log().contains("plaintext = true is only allowed on a loopback address"));
        assertNotNull(wide);
    }
}
