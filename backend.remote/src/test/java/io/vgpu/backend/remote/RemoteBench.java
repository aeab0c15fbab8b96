package io.vgpu.backend.remote;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Tls;
import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;

/**
 * Ratios on loopback in one JVM, then over a veth into a namespace of its own with the host side in
 * a second JVM ({@link NetnsLink}; one SKIP line without root), each against a baseline measured in
 * the same run on the same link: the remote
 * backend (guest → TLS 1.3 → listener → mock) against a bare TLS 1.3 connection between the same
 * two certificates. Each figure is the median of {@link #ROUNDS} rounds, remote and baseline
 * interleaved, because the build machine is shared and a single run drifts.
 *
 * <ul>
 *   <li>sync no-op round trip: PING (a 16-byte frame each way) / a 16-byte TLS ping-pong;
 *   <li>async enqueue: guest time per fire-and-forget call (memset, launch) in a burst, and
 *       sustained over 100 000 memsets (then bounded by the host executing them);
 *   <li>token-like traces: 35 and 500 no-op launches then one synchronize, end to end, per one
 *       sync round trip; the same trace straight on a local mock shows what execution costs;
 *   <li>256 MiB HtoD / a bare TLS upload of 256 MiB (the sink discards it; the host's mock
 *       writes it into its pages), 256 MiB DtoH / a bare TLS download into a byte array.
 * </ul>
 * {@code mvn -pl backend.remote exec:java -Dexec.mainClass=io.vgpu.backend.remote.RemoteBench -Dexec.classpathScope=test}
 */
public final class RemoteBench {
    static final int ROUNDS = 5;
    static final int PINGS = 500;
    static final int PAIRS = 9;
    static final int BULK = 256 << 20;
    /** Each trace runs this many times a round; the round takes their median. */
    static final int TRACES = 11;

    static final String NOOP_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n.visible .entry noop()\n{\n  ret;\n}\n";

    /** Bare TLS peer: 16-byte commands; 0 echo, 1 sink n bytes then echo, 2 send n bytes. */
    static void serveBare(SSLServerSocket ss, byte[] source) {
        try (SSLSocket s = (SSLSocket) ss.accept()) {
            s.setTcpNoDelay(true);
            DataInputStream in = new DataInputStream(s.getInputStream());
            OutputStream out = s.getOutputStream();
            byte[] b = new byte[16];
            byte[] buf = new byte[1 << 20];
            while (true) {
                in.readFully(b);
                long n = ByteBuffer.wrap(b, 8, 8).getLong();
                if (b[0] == 1) {
                    for (long got = 0; got < n;) {
                        got += in.read(buf, 0, (int) Math.min(buf.length, n - got));
                    }
                }
                if (b[0] == 2) {
                    out.write(source, 0, (int) n);
                } else {
                    out.write(b);
                }
                out.flush();
            }
        } catch (Exception e) {
            // bench over
        }
    }

    static final class Bare {
        final DataInputStream in;
        final OutputStream out;
        final byte[] b = new byte[16];

        Bare(SSLSocket c) throws Exception {
            in = new DataInputStream(c.getInputStream());
            out = c.getOutputStream();
        }

        double ping(int n) throws Exception {
            b[0] = 0;
            long t = System.nanoTime();
            for (int i = 0; i < n; i++) {
                out.write(b);
                out.flush();
                in.readFully(b);
            }
            return (System.nanoTime() - t) / (double) n;
        }

        double upload(byte[] data) throws Exception {
            long t = System.nanoTime();
            ByteBuffer.wrap(b).put(0, (byte) 1).putLong(8, data.length);
            out.write(b);
            out.write(data);
            out.flush();
            in.readFully(b);
            return mbps(data.length, System.nanoTime() - t);
        }

        double download(byte[] into) throws Exception {
            long t = System.nanoTime();
            ByteBuffer.wrap(b).put(0, (byte) 2).putLong(8, into.length);
            out.write(b);
            out.flush();
            in.readFully(into);
            return mbps(into.length, System.nanoTime() - t);
        }
    }

    static double mbps(long bytes, long nanos) {
        return bytes / (nanos / 1e9) / 1e6;
    }

    static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }

    /** Compares in 1 MiB pieces, so that safepoints are reached between them. */
    static void same(byte[] a, byte[] b) {
        for (int at = 0; at < a.length; at += 1 << 20) {
            int end = Math.min(a.length, at + (1 << 20));
            if (!Arrays.equals(a, at, end, b, at, end)) {
                throw new AssertionError("DtoH did not return what HtoD wrote (at byte " + at + ")");
            }
        }
    }

    static ModuleImage noop() {
        return RemoteLinkTest.ptxImage("noop", NOOP_PTX, new int[0], new int[0], 0);
    }

    /** A context with the no-op kernel on {@code b}: {ctx, function}. */
    static long[] kernelContext(CudaService b, long owner, long base) {
        long[] ctx = new long[1];
        long[] mod = new long[1];
        long[] fn = new long[1];
        check(b.ctxCreate(0, 0, owner, ctx));
        check(b.moduleLoad(ctx[0], noop(), base, mod));
        check(b.functionGet(mod[0], "noop", fn));
        return new long[] {ctx[0], fn[0]};
    }

    static final LaunchConfig ONE = new LaunchConfig(1, 1, 1, 1, 1, 1, 0);
    static final ByteBuffer NO_PARAMS = ByteBuffer.allocate(0);

    /** {@code launches} async launches then one ctxSynchronize: {nanos for all, nanos of the enqueue part}. */
    static long[] trace(CudaService b, long[] cf, int launches) {
        long t = System.nanoTime();
        for (int i = 0; i < launches; i++) {
            check(b.launch(cf[1], ONE, NO_PARAMS.duplicate(), 0));
        }
        long enqueued = System.nanoTime() - t;
        check(b.ctxSynchronize(cf[0]));
        return new long[] {System.nanoTime() - t, enqueued};
    }

    static volatile RemoteBackend guest;

    static void check(int rc) {
        if (rc != CuResult.SUCCESS) {
            throw new AssertionError("CUresult " + rc + (guest != null ? " (" + guest.info().reason + ")" : ""));
        }
    }

    /** Where the host side listens: the listener's port and the bare TLS peer's. */
    record Host(String address, int listenerPort, int barePort) {}

    /** The host side in this JVM: the listener on a mock and the bare TLS peer, both on {@code address}. */
    static final class HostSide implements AutoCloseable {
        final RemoteListener listener;
        final SSLServerSocket bare;
        final Host host;

        HostSide(Path dir, String address) throws Exception {
            Path peers = dir.resolve("peers");
            SSLContext hostTls = Tls.context(dir.resolve("host.p12"), dir.resolve("host.pass"), peers);
            bare = (SSLServerSocket) hostTls.getServerSocketFactory().createServerSocket(0, 4, InetAddress.getByName(address));
            bare.setNeedClientAuth(true);
            bare.setEnabledProtocols(new String[] {Tls.PROTOCOL});
            byte[] source = new byte[BULK];
            Thread echo = new Thread(() -> serveBare(bare, source), "bare-tls-peer");
            echo.setDaemon(true);
            echo.start();
            MockBackend mock = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
            Map<String, Object> lc = Pki.listenerConfig(dir, "host", address, peers);
            listener = new RemoteListener(Configs.of(RemoteListener.Config.class, lc), Map.of("mock", mock));
            host = new Host(address, listener.port(), bare.getLocalPort());
        }

        @Override
        public void close() throws Exception {
            bare.close();
            listener.deactivate();
        }
    }

    /**
     * {@code serve DIR ADDRESS}: the host side for the namespace run, started by {@link NetnsLink} inside
     * the namespace; prints {@code ready <listener port> <bare port>} and lives until its stdin closes,
     * so that it cannot outlive the bench that started it.
     */
    static void serve(Path dir, String address) throws Exception {
        try (HostSide h = new HostSide(dir, address)) {
            System.out.println("ready " + h.host.listenerPort() + " " + h.host.barePort());
            System.out.flush();
            while (System.in.read() >= 0) {
                // stdin is only a lifeline
            }
        }
        System.exit(0);
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("serve")) {
            serve(Path.of(args[1]), args[2]);
            return;
        }
        Path dir = Files.createTempDirectory("vgpu-remote-bench");
        Path hostCrt = Pki.identity(dir, "host", null, 30);
        Path peers = dir.resolve("peers");
        Files.createDirectories(peers);
        Files.copy(Pki.identity(dir, "guest", null, 30), peers.resolve("guest.crt"));
        // The big arrays exist before any link does: allocating, filling and comparing 256 MiB
        // holds the JVM's safepoints for seconds on a loaded machine, which a link's watchdog
        // would see as a silent host.
        Buffers bufs = new Buffers();
        try (HostSide loop = new HostSide(dir, "127.0.0.1")) {
            measure(dir, loop.host, "loopback", bufs);
        }
        try (NetnsLink link = NetnsLink.open()) {
            if (link.skip != null) {
                System.out.println("SKIP namespace link: " + link.skip);
            } else {
                measure(dir, link.serve(dir), "veth between the root namespace and " + link.ns, bufs);
            }
        }
        System.exit(0);
    }

    static final class Buffers {
        final byte[] data = new byte[BULK];
        final byte[] sink = new byte[BULK];
        final ByteBuffer back = ByteBuffer.allocate(BULK);

        Buffers() {
            for (int i = 0; i < BULK; i += 4096) {
                data[i] = (byte) (i >>> 12);
            }
        }
    }

    static void measure(Path dir, Host host, String where, Buffers bufs) throws Exception {
        byte[] data = bufs.data;
        byte[] sink = bufs.sink;
        ByteBuffer back = bufs.back;
        Path hostCrt = dir.resolve("host.crt");
        SSLContext guestTls = Tls.context(dir.resolve("guest.p12"), dir.resolve("guest.pass"), hostCrt);
        SSLSocket c = (SSLSocket) guestTls.getSocketFactory().createSocket(InetAddress.getByName(host.address()), host.barePort());
        c.setTcpNoDelay(true);
        c.setEnabledProtocols(new String[] {Tls.PROTOCOL});
        Bare bare = new Bare(c);

        Map<String, Object> gc = new HashMap<>();
        gc.put("backend.id", "bench");
        gc.put("address", host.address());
        gc.put("port", Integer.toString(host.listenerPort()));
        gc.put("identity", dir.resolve("guest.p12").toString());
        gc.put("identity.password.file", dir.resolve("guest.pass").toString());
        gc.put("trust", hostCrt.toString());
        RemoteBackend g = new RemoteBackend(Configs.of(RemoteBackend.Config.class, gc));
        guest = g;
        long base = 0x2000_0000_0000L;
        long[] ctx = new long[1];
        check(g.ctxCreate(0, 0, 1, ctx));
        check(g.memAlloc(ctx[0], base, BULK));
        long[] remoteKernel = kernelContext(g, 2, base + (1L << 36));
        MockBackend local = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
        long[] localKernel = kernelContext(local, 3, base + (1L << 36));

        // Warm-up: every path once at full size, so the JIT and the host's pages are in place.
        bare.ping(2000);
        for (int i = 0; i < 2000; i++) {
            g.pingNanos();
        }
        for (int i = 0; i < 20; i++) {
            trace(g, remoteKernel, 500);
            trace(local, localKernel, 500);
        }
        bare.upload(data);
        bare.download(sink);
        check(g.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0));
        check(g.ctxSynchronize(ctx[0]));
        check(g.memcpyDtoH(ctx[0], back.clear(), base, 0));
        same(data, back.array());

        double[] bareRtt = new double[ROUNDS];
        double[] remoteRtt = new double[ROUNDS];
        double[] pairRatio = new double[ROUNDS];
        double[] burstMemset = new double[ROUNDS];
        double[] sustainedMemset = new double[ROUNDS];
        double[][] traceRemote = new double[2][ROUNDS];
        double[][] traceLocal = new double[2][ROUNDS];
        double[][] traceEnqueue = new double[2][ROUNDS];
        int[] traces = {35, 500};
        double[] bareUp = new double[ROUNDS];
        double[] bareDown = new double[ROUNDS];
        double[] htod = new double[ROUNDS];
        double[] dtoh = new double[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            // Round trips in short pairs, remote right after bare, so that both see the same load.
            double[] b = new double[PAIRS];
            double[] m = new double[PAIRS];
            double[] q = new double[PAIRS];
            for (int k = 0; k < PAIRS; k++) {
                b[k] = bare.ping(PINGS);
                long sum = 0;
                for (int i = 0; i < PINGS; i++) {
                    long p = g.pingNanos();
                    if (p < 0) {
                        throw new AssertionError("the link is down");
                    }
                    sum += p;
                }
                m[k] = sum / (double) PINGS;
                q[k] = m[k] / b[k];
            }
            bareRtt[r] = median(b);
            remoteRtt[r] = median(m);
            pairRatio[r] = median(q);

            // Burst: 500 memsets straight after a sync, so nothing throttles the guest.
            check(g.ctxSynchronize(ctx[0]));
            long t = System.nanoTime();
            for (int i = 0; i < 500; i++) {
                check(g.memset(ctx[0], base, i, 4, 16, 0));
            }
            burstMemset[r] = (System.nanoTime() - t) / 500.0;
            check(g.ctxSynchronize(ctx[0]));
            t = System.nanoTime();
            for (int i = 0; i < 100_000; i++) {
                check(g.memset(ctx[0], base, i, 4, 16, 0));
            }
            sustainedMemset[r] = (System.nanoTime() - t) / 100_000.0;
            check(g.ctxSynchronize(ctx[0]));

            for (int k = 0; k < traces.length; k++) {
                double[] all = new double[TRACES];
                double[] enq = new double[TRACES];
                double[] loc = new double[TRACES];
                for (int i = 0; i < TRACES; i++) {
                    long[] rt = trace(g, remoteKernel, traces[k]);
                    all[i] = rt[0];
                    enq[i] = rt[1] / (double) traces[k];
                    loc[i] = trace(local, localKernel, traces[k])[0];
                }
                traceRemote[k][r] = median(all);
                traceEnqueue[k][r] = median(enq);
                traceLocal[k][r] = median(loc);
            }

            bareUp[r] = bare.upload(data);
            t = System.nanoTime();
            check(g.memcpyHtoD(ctx[0], base, ByteBuffer.wrap(data), 0));
            check(g.ctxSynchronize(ctx[0]));
            htod[r] = mbps(BULK, System.nanoTime() - t);
            bareDown[r] = bare.download(sink);
            t = System.nanoTime();
            check(g.memcpyDtoH(ctx[0], back.clear(), base, 0));
            dtoh[r] = mbps(BULK, System.nanoTime() - t);
        }
        same(data, back.array());

        double rtt = median(remoteRtt);
        double bareR = median(bareRtt);
        System.out.printf("medians of %d rounds, %s, %d cores%n", ROUNDS, where, Runtime.getRuntime().availableProcessors());
        System.out.printf("sync no-op round trip: remote PING %.1f us, bare TLS 1.3 16-byte ping-pong %.1f us: ratio %.2f "
                + "(median of paired ratios %.2f, per round %s; goal <= 1.5)%n", rtt / 1e3, bareR / 1e3, rtt / bareR,
                median(pairRatio), Arrays.toString(Arrays.stream(pairRatio).map(x -> Math.round(x * 100) / 100.0).toArray()));
        System.out.printf("async enqueue on the guest: memset %.2f us, launch %.2f us per call in a burst (goal <= 1); "
                + "sustained 100000 memsets %.2f us per call%n", median(burstMemset) / 1e3, median(traceEnqueue[1]) / 1e3,
                median(sustainedMemset) / 1e3);
        for (int k = 0; k < traces.length; k++) {
            double tr = median(traceRemote[k]);
            double tl = median(traceLocal[k]);
            System.out.printf("trace %d launches + 1 sync: remote %.0f us = %.2f sync round trips (%.2f bare ones); "
                    + "the same trace on a local mock %.0f us; remote - local = %.2f round trips%n", traces[k], tr / 1e3, tr / rtt,
                    tr / bareR, tl / 1e3, (tr - tl) / rtt);
        }
        double up = median(bareUp);
        double down = median(bareDown);
        System.out.printf("256 MiB HtoD %.0f MB/s vs bare TLS upload %.0f MB/s: ratio %.2f (goal >= 0.7)%n", median(htod), up,
                median(htod) / up);
        System.out.printf("256 MiB DtoH %.0f MB/s vs bare TLS download %.0f MB/s: ratio %.2f (goal >= 0.7)%n", median(dtoh), down,
                median(dtoh) / down);
        c.close();
        g.deactivate();
        guest = null;
    }
}
