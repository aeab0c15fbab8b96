package io.vgpu.backend.remote;

import static io.vgpu.backend.remote.RemoteLinkTest.log;
import static io.vgpu.backend.remote.RemoteLinkTest.logLine;
import static io.vgpu.backend.remote.RemoteLinkTest.within;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuResult;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Frames;
import io.vgpu.backend.remote.internal.Tls;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.DataInputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

/** Guests of one host each in a window of their own; an overlapping guest refused, the others served. */
public class RemoteWindowsTest {
    static final long TIB = 1L << 40;
    static final AddressWindow A = new AddressWindow(0x2000_0000_0000L, TIB);
    static final AddressWindow B = new AddressWindow(0x2100_0000_0000L, TIB);
    static Path dir;
    static RemoteListener listener;
    static Path hostCrt;

    @BeforeClass
    public static void setUp() throws Exception {
        dir = Files.createTempDirectory("vgpu-windows-test");
        Path peers = dir.resolve("peers");
        hostCrt = Pki.identity(dir, "host", null, 30);
        Files.createDirectories(peers);
        // Pinned under names other than their CNs: refusals name the pinned name.
        for (String who : new String[] {"alpha", "beta", "gamma"}) {
            Files.copy(Pki.identity(dir, who, null, 30), peers.resolve("pinned-" + who + ".crt"));
        }
        MockBackend mock = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
        Map<String, Object> c = Pki.listenerConfig(dir, "host", "127.0.0.1", peers);
        listener = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", mock));
    }

    @AfterClass
    public static void tearDown() {
        listener.deactivate();
    }

    static RemoteBackend.Config config(String who) {
        Map<String, Object> c = new HashMap<>();
        c.put("backend.id", "gpu-" + who);
        c.put("address", "127.0.0.1");
        c.put("port", Integer.toString(listener.port()));
        c.put("identity", dir.resolve(who + ".p12").toString());
        c.put("identity.password.file", dir.resolve(who + ".pass").toString());
        c.put("trust", hostCrt.toString());
        c.put("connect.wait.ms", "8000");
        return Configs.of(RemoteBackend.Config.class, c);
    }

    /** A guest's allocation: distinct bytes written and read back through its link. */
    static final class Memory {
        final RemoteBackend g;
        final long[] ctx = new long[1];
        final long address;
        final int seed;
        int rounds;

        Memory(RemoteBackend g, long owner, long address, int seed) {
            this.g = g;
            this.address = address;
            this.seed = seed;
            assertTrue(g.info().toString(), g.info().available);
            assertEquals(CuResult.SUCCESS, g.ctxCreate(0, 0, owner, ctx));
            assertEquals(CuResult.SUCCESS, g.memAlloc(ctx[0], address, 1 << 20));
        }

        void roundTrip() {
            byte[] data = new byte[1 << 20];
            new Random(seed * 1000L + ++rounds).nextBytes(data);
            assertEquals(CuResult.SUCCESS, g.memcpyHtoD(ctx[0], address, ByteBuffer.wrap(data), 0));
            ByteBuffer back = ByteBuffer.allocate(data.length);
            assertEquals(CuResult.SUCCESS, g.memcpyDtoH(ctx[0], back, address, 0));
            assertArrayEquals("guest " + seed + " round " + rounds, data, back.array());
        }
    }

    /** Both guests copy at once, each checking its own bytes. */
    static void together(Memory a, Memory b) throws Exception {
        CompletableFuture<Void> fa = CompletableFuture.runAsync(() -> {
            for (int i = 0; i < 10; i++) {
                a.roundTrip();
            }
        });
        for (int i = 0; i < 10; i++) {
            b.roundTrip();
        }
        fa.get(30, TimeUnit.SECONDS);
    }

    @Test
    public void guestsInDisjointWindowsShareTheHostAndAnOverlappingOneIsRefusedWithAFreeWindow() throws Exception {
        // Alpha starts in the default window, as with no window in its io.vgpu.router.cfg; its core
        // then announces 1T: the link is made again with that window.
        RemoteBackend alpha = new RemoteBackend(config("alpha"));
        RemoteBackend beta = null;
        RemoteBackend alpha2 = null;
        try {
            assertTrue(alpha.info().toString(), alpha.info().available);
            int from = log().length();
            alpha.addressWindow(A.base, A.size);
            logLine(from, "guest alpha@", "device address window 0x200000000000+1T");
            assertTrue("reconnected: " + alpha.info(), within(5000, () -> alpha.info().available));

            beta = new RemoteBackend(config("beta"), B);
            Memory a = new Memory(alpha, 1, A.base, 1);
            Memory b = new Memory(beta, 1, B.base, 2);
            together(a, b);

            from = log().length();
            RemoteBackend gamma = new RemoteBackend(config("gamma"), A);
            String reason = "window 0x200000000000+1T overlaps pinned-alpha's 0x200000000000+1T; "
                    + "free: window.base = 0x220000000000, window.size = 1T";
            try {
                assertFalse(gamma.info().toString(), gamma.info().available);
                assertEquals("refused: " + reason, gamma.info().reason);
            } finally {
                gamma.deactivate();
            }
            String line = logLine(from, "remote listener refused gamma@127.0.0.1:", reason);
            System.out.println("overlap: " + line);
            together(a, b);

            // A guest from before windows (a REMOTE_HELLO without them) has the default window.
            try (SSLSocket s = connect("gamma")) {
                ByteBuffer hello = Frames.request(Wire.REMOTE_HELLO, Wire.RemoteHello.REQ_WINDOW_BASE, false);
                hello.putInt(Wire.HEADER + Wire.RemoteHello.REQ_MAGIC, Wire.MAGIC)
                        .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MAJOR, (short) Wire.MAJOR)
                        .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MINOR, (short) Wire.MINOR);
                s.getOutputStream().write(hello.array());
                s.getOutputStream().flush();
                Frames.In r = Frames.read(new DataInputStream(s.getInputStream()), new byte[Wire.HEADER], 4096, null);
                assertNotNull(r);
                assertEquals(CuResult.ALREADY_MAPPED, r.result);
                String why = Frame.string(r.payload, Wire.RemoteHello.REP_REASON, r.payload.capacity() - Wire.RemoteHello.REP_REASON);
                assertTrue(why, why.matches("window 0x200000000000\\+16T overlaps pinned-(alpha|beta)'s 0x2[01]0000000000\\+1T; "
                        + "free: window.base = 0x220000000000, window.size = 1T"));
            }
            together(a, b);

            // The window the refusal suggested is free.
            RemoteBackend moved = new RemoteBackend(config("gamma"), new AddressWindow(0x2200_0000_0000L, TIB));
            try {
                Memory c = new Memory(moved, 1, 0x2200_0000_0000L, 3);
                c.roundTrip();
                assertEquals(CuResult.SUCCESS, moved.ctxDestroy(c.ctx[0]));
            } finally {
                moved.deactivate();
            }

            // Alpha again, with its own certificate: one guest core, so its window is its own.
            alpha2 = new RemoteBackend(config("alpha"), A);
            Memory a2 = new Memory(alpha2, 2, A.base + (16 << 20), 4);
            together(a2, b);
            alpha.deactivate();
            together(a2, b);
        } finally {
            alpha.deactivate();
            if (beta != null) {
                beta.deactivate();
            }
            if (alpha2 != null) {
                alpha2.deactivate();
            }
        }
    }

    static SSLSocket connect(String who) throws Exception {
        SSLContext ctx = Tls.context(dir.resolve(who + ".p12"), dir.resolve(who + ".pass"), hostCrt);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", listener.port());
        Tls.restrict(s);
        s.setUseClientMode(true);
        s.setSoTimeout(5000);
        s.startHandshake();
        return s;
    }
}
