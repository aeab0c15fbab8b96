package io.vgpu.backend.remote;

import io.vgpu.api.CuResult;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Tls;
import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;

/**
 * Ratios on loopback, in one JVM: remote sync no-op round trip / bare TLS 1.3 ping-pong of the same
 * frame size, and 64 MiB HtoD and DtoH through the remote backend / a bare TLS stream.
 * {@code mvn -pl backend.remote exec:java -Dexec.mainClass=io.vgpu.backend.remote.RemoteBench -Dexec.classpathScope=test}
 */
public final class RemoteBench {
    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("vgpu-remote-bench");
        Path hostCrt = Pki.identity(dir, "host", null, 30);
        Path peers = dir.resolve("peers");
        Files.createDirectories(peers);
        Files.copy(Pki.identity(dir, "guest", null, 30), peers.resolve("guest.crt"));
        SSLContext hostTls = Tls.context(dir.resolve("host.p12"), dir.resolve("host.pass"), peers);
        SSLContext guestTls = Tls.context(dir.resolve("guest.p12"), dir.resolve("guest.pass"), hostCrt);

        // Bare TLS 1.3: 16-byte ping-pong, and a stream.
        SSLServerSocket ss = (SSLServerSocket) hostTls.getServerSocketFactory().createServerSocket(0, 4, InetAddress.getLoopbackAddress());
        ss.setNeedClientAuth(true);
        ss.setEnabledProtocols(new String[] {"TLSv1.3"});
        Thread echo = new Thread(() -> {
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.setTcpNoDelay(true);
                DataInputStream in = new DataInputStream(s.getInputStream());
                OutputStream out = s.getOutputStream();
                byte[] b = new byte[16];
                while (true) {
                    in.readFully(b);
                    if (b[0] == 1) { // stream mode: sink bytes, then echo one ack
                        long n = ByteBuffer.wrap(b, 8, 8).getLong();
                        byte[] buf = new byte[1 << 20];
                        for (long got = 0; got < n;) {
                            got += in.read(buf, 0, (int) Math.min(buf.length, n - got));
                        }
                    }
                    out.write(b);
                    out.flush();
                }
            } catch (Exception e) {
                // bench over
            }
        });
        echo.setDaemon(true);
        echo.start();
        SSLSocket c = (SSLSocket) guestTls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), ss.getLocalPort());
        c.setTcpNoDelay(true);
        c.setEnabledProtocols(new String[] {"TLSv1.3"});
        DataInputStream cin = new DataInputStream(c.getInputStream());
        OutputStream cout = c.getOutputStream();
        byte[] b = new byte[16];
        int n = 20000;
        for (int i = 0; i < 2000; i++) {
            cout.write(b);
            cout.flush();
            cin.readFully(b);
        }
        long t = System.nanoTime();
        for (int i = 0; i < n; i++) {
            cout.write(b);
            cout.flush();
            cin.readFully(b);
        }
        double bare = (System.nanoTime() - t) / (double) n;
        int size = 64 << 20;
        byte[] data = new byte[size];
        t = System.nanoTime();
        ByteBuffer.wrap(b).put(0, (byte) 1).putLong(8, size);
        cout.write(b);
        cout.write(data);
        cout.flush();
        cin.readFully(b);
        double bareStream = size / ((System.nanoTime() - t) / 1e9) / 1e6;
        c.close();

        MockBackend mock = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
        Map<String, Object> lc = new HashMap<>();
        lc.put("address", "127.0.0.1");
        lc.put("port", "0");
        lc.put("identity", dir.resolve("host.p12").toString());
        lc.put("identity.password.file", dir.resolve("host.pass").toString());
        lc.put("trust", peers.toString());
        RemoteListener listener = new RemoteListener(Configs.of(RemoteListener.Config.class, lc), Map.of("mock", mock));
        Map<String, Object> gc = new HashMap<>();
        gc.put("backend.id", "bench");
        gc.put("address", "127.0.0.1");
        gc.put("port", Integer.toString(listener.port()));
        gc.put("identity", dir.resolve("guest.p12").toString());
        gc.put("identity.password.file", dir.resolve("guest.pass").toString());
        gc.put("trust", hostCrt.toString());
        RemoteBackend g = new RemoteBackend(Configs.of(RemoteBackend.Config.class, gc));
        for (int i = 0; i < 2000; i++) {
            g.pingNanos();
        }
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += g.pingNanos();
        }
        double remote = sum / (double) n;
        long[] ctx = new long[1];
        g.ctxCreate(0, 0, 1, ctx);
        long base = 0x2000_0000_0000L;
        g.memAlloc(ctx[0], base, size);
        // Async enqueue cost: memsets (fire-and-forget, checked locally), then one sync.
        for (int i = 0; i < 20000; i++) {
            g.memset(ctx[0], base, 0, 4, 16, 0);
        }
        g.ctxSynchronize(ctx[0]);
        t = System.nanoTime();
        int k = 100000;
        for (int i = 0; i < k; i++) {
            g.memset(ctx[0], base, i, 4, 16, 0);
        }
        double enqueue = (System.nanoTime() - t) / (double) k;
        g.ctxSynchronize(ctx[0]);
        g.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0);
        g.ctxSynchronize(ctx[0]);
        t = System.nanoTime();
        int rc = g.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0);
        rc |= g.ctxSynchronize(ctx[0]);
        double htod = size / ((System.nanoTime() - t) / 1e9) / 1e6;
        ByteBuffer back = ByteBuffer.allocate(size);
        t = System.nanoTime();
        rc |= g.memcpyDtoH(ctx[0], back, base, 0);
        double dtoh = size / ((System.nanoTime() - t) / 1e9) / 1e6;
        if (rc != CuResult.SUCCESS) {
            throw new AssertionError("rc " + rc);
        }
        System.out.printf("sync no-op round trip: remote PING %.1f us, bare TLS 1.3 ping-pong %.1f us, ratio %.2f (goal <= 1.5)%n",
                remote / 1e3, bare / 1e3, remote / bare);
        System.out.printf("async enqueue (memset, fire-and-forget): %.2f us per call (goal <= 1)%n", enqueue / 1e3);
        System.out.printf("64 MiB HtoD %.0f MB/s, DtoH %.0f MB/s, bare TLS stream %.0f MB/s: ratios %.2f / %.2f (goal >= 0.7)%n",
                htod, dtoh, bareStream, htod / bareStream, dtoh / bareStream);
        g.deactivate();
        listener.deactivate();
        System.exit(0);
    }
}
