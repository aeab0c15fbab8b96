package io.vgpu.backend.remote;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
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
        Map<String, Object> c = new HashMap<>();
        c.put("address", "127.0.0.1");
        c.put("port", "0");
        c.put("identity", dir.resolve("host.p12").toString());
        c.put("identity.password.file", dir.resolve("host.pass").toString());
        c.put("trust", peers.toString());
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
        ModuleImage m = new ModuleImage();
        m.format = ModuleImage.Format.PTX;
        m.data = FILL_PTX.getBytes(StandardCharsets.US_ASCII);
        m.ptxSource = m.data;
        m.arch = 70;
        m.ptx = true;
        m.virtualArch = 70;
        m.ptxArch = 70;
        KernelInfo k = new KernelInfo();
        k.name = "fill";
        k.paramOffsets = new int[] {0, 8, 12};
        k.paramSizes = new int[] {8, 4, 4};
        k.paramBufferSize = 16;
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

    @Test
    public void strangersExpiredCertificatesAndPlaintextAreRefusedWhileTheHostKeepsServing() throws Exception {
        RemoteBackend good = guest("guest", listener.port(), false);
        try {
            assertTrue(good.info().available);
            RemoteBackend stranger = guest("stranger", listener.port(), false);
            assertFalse(stranger.info().available);
            assertTrue(stranger.info().reason, stranger.info().reason.contains("cannot connect"));
            stranger.deactivate();
            RemoteBackend expired = guest("expired", listener.port(), false);
            assertFalse(expired.info().available);
            expired.deactivate();
            RemoteBackend plain = guest("guest", listener.port(), true);
            assertFalse(plain.info().available);
            plain.deactivate();
            // No certificate at all: a TLS client with no key material.
            javax.net.ssl.SSLContext anon = javax.net.ssl.SSLContext.getInstance("TLSv1.3");
            anon.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
                public void checkClientTrusted(java.security.cert.X509Certificate[] c, String a) {}

                public void checkServerTrusted(java.security.cert.X509Certificate[] c, String a) {}

                public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                    return new java.security.cert.X509Certificate[0];
                }
            }}, null);
            try (javax.net.ssl.SSLSocket s = (javax.net.ssl.SSLSocket) anon.getSocketFactory().createSocket("127.0.0.1", listener.port())) {
                s.setSoTimeout(5000);
                s.startHandshake();
                // TLS 1.3: the server's refusal of the client certificate arrives on the first read.
                s.getOutputStream().write(new byte[16]);
                s.getOutputStream().flush();
                assertEquals(-1, s.getInputStream().read());
            } catch (IOException expected) {
                // refused
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            String log;
            do {
                log = log();
                Thread.sleep(100);
            } while (System.nanoTime() < deadline && !(log.contains("not paired") && log.contains("expired on")
                    && log.contains("Unsupported or unrecognized SSL message") && log.contains("no certificate")
                    || log.contains("Empty client certificate chain")));
            assertTrue(log, log.contains("is not paired with this machine"));
            assertTrue(log, log.contains("expired on"));
            assertTrue(log, log.contains("Unsupported or unrecognized SSL message"));
            assertTrue(log, log.contains("Empty client certificate chain") || log.contains("no certificate"));
            long[] ctx = new long[1];
            assertEquals(CuResult.SUCCESS, good.ctxCreate(0, 0, 5, ctx));
            assertEquals(CuResult.SUCCESS, good.ctxSynchronize(ctx[0]));
            assertEquals(CuResult.SUCCESS, good.ctxDestroy(ctx[0]));
        } finally {
            good.deactivate();
        }
    }

    /** A TCP relay that can be frozen: the link then goes silent, as a cut cable or a hung host would. */
    static final class Relay implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        volatile boolean frozen;
        final java.util.List<Socket> open = new java.util.concurrent.CopyOnWriteArrayList<>();

        Relay(int target) throws IOException {
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket a = server.accept();
                        if (frozen) {
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
                        while (frozen) {
                            Thread.sleep(20);
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
                relay.frozen = true;
                long t0 = System.nanoTime();
                CompletableFuture<Integer> sync = CompletableFuture.supplyAsync(() -> g.ctxSynchronize(ctx[0]));
                int rc = sync.get(6, TimeUnit.SECONDS);
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                System.out.println("frozen link: ctxSynchronize returned " + rc + " after " + ms + " ms");
                assertEquals(CuResult.DEVICE_UNAVAILABLE, rc);
                assertTrue(ms + " ms", ms <= 5000);
                assertFalse(g.info().available);
                assertTrue(g.info().reason, g.info().reason.contains("no answer from the host"));
                assertEquals(CuResult.DEVICE_UNAVAILABLE, g.memAlloc(ctx[0], 0x2100_0000_0000L, 4096));
                relay.dropAll();
                relay.frozen = false;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!g.info().available && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertTrue("reconnected: " + g.info(), g.info().available);
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
