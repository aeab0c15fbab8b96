package io.vgpu.backend.remote;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.backend.mock.MockBackend;
import io.vgpu.backend.remote.internal.Configs;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

/** vgpu doctor's check of configured GPU hosts, against listeners with healthy, expiring and expired identities. */
public class RemoteCheckTest {
    static Path dir;
    static Path conf;
    static MockBackend mock;
    static final List<RemoteListener> LISTENERS = new ArrayList<>();
    static final Map<String, Integer> PORTS = new HashMap<>();

    @BeforeClass
    public static void setUp() throws Exception {
        dir = Files.createTempDirectory("vgpu-check-test");
        conf = dir.resolve("conf");
        Files.createDirectories(dir.resolve("peers"));
        Files.copy(Pki.identity(dir, "guest", null, 400), dir.resolve("peers/guest.crt"));
        Files.copy(Pki.identity(dir, "neighbour", null, 400), dir.resolve("peers/neighbour.crt"));
        Pki.identity(dir, "host", null, 400);
        Pki.identity(dir, "soon", null, 10);
        Pki.identity(dir, "old", "-10d", 1);
        mock = new MockBackend(Configs.of(MockBackend.Config.class, Map.of()));
        for (String host : List.of("host", "soon", "old")) {
            Map<String, Object> c = Pki.listenerConfig(dir, host, "127.0.0.1", dir.resolve("peers"));
            RemoteListener l = new RemoteListener(Configs.of(RemoteListener.Config.class, c), Map.of("mock", mock));
            LISTENERS.add(l);
            PORTS.put(host, l.port());
        }
    }

    @AfterClass
    public static void tearDown() throws Exception {
        LISTENERS.forEach(RemoteListener::deactivate);
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** conf/ holding exactly one host file: backend {@code id} at {@code port}, as {@code guest}, pinning {@code host}.crt. */
    private static void configure(String id, int port, String guest, String host) throws Exception {
        if (Files.exists(conf)) {
            try (var s = Files.list(conf)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    Files.delete(p);
                }
            }
        }
        Files.createDirectories(conf);
        // Relative paths resolve against conf/, as in the distribution.
        Files.writeString(conf.resolve("io.vgpu.backend.remote.host-" + id + ".cfg"), "backend.id = " + id
                + "\naddress = 127.0.0.1\nport = " + port + "\nidentity = ../" + guest + ".p12\nidentity.password.file = ../" + guest
                + ".pass\ntrust = ../" + host + ".crt\n");
    }

    private static final class Outcome {
        final String out;
        final int fails;
        final int warns;

        Outcome(String out, int fails, int warns) {
            this.out = out;
            this.fails = fails;
            this.warns = warns;
        }
    }

    private static Outcome check(String... only) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        RemoteCheck c = new RemoteCheck(conf, new PrintStream(bytes, true, StandardCharsets.UTF_8), Instant.now(), 3000);
        c.run(List.of(only));
        String out = bytes.toString(StandardCharsets.UTF_8);
        System.out.println(out);
        return new Outcome(out, c.fails(), c.warns());
    }

    private static boolean hasLine(String out, String regex) {
        return out.lines().anyMatch(l -> l.matches(regex));
    }

    @Test
    public void aHealthyHostPassesEveryCheckAndNamesWhatItServes() throws Exception {
        configure("gpu1", PORTS.get("host"), "guest", "host");
        Outcome o = check();
        assertEquals(o.out, 0, o.fails);
        assertEquals(o.out, 0, o.warns);
        String tag = "OK   remote gpu1 \\(127\\.0\\.0\\.1:" + PORTS.get("host") + "\\): ";
        assertTrue(o.out, hasLine(o.out, tag + "this guest's certificate guest\\.p12 valid until \\S+ \\(399 days\\)"));
        assertTrue(o.out, hasLine(o.out, tag + "pinned host certificate host\\.crt \\(CN=host\\) valid until .*"));
        assertTrue(o.out, hasLine(o.out, tag + "host reachable \\(TCP connect in \\d+ ms\\)"));
        assertTrue(o.out, hasLine(o.out, tag + "TLS 1\\.3 handshake with this guest's identity \\(TLSv1\\.3, TLS_\\w+\\)"));
        assertTrue(o.out, hasLine(o.out, tag + "host certificate CN=host \\(SHA-256 [0-9a-f]{64}\\) valid until .*"));
        assertTrue(o.out, hasLine(o.out, tag + "serves backend mock \\(simulated 1 x NVIDIA H100 80GB HBM3\\): "
                + "1 device: NVIDIA H100 80GB HBM3, 81920 MiB"));
        assertTrue(o.out, hasLine(o.out, tag + "this guest's device address window 0x200000000000\\+16T accepted by the host \\(.*io\\.vgpu\\.router\\.cfg\\)"));
    }

    @Test
    public void aWindowOverlappingAnotherGuestsFailsWithTheHostsReasonAndWhereToWriteTheFreeOne() throws Exception {
        Map<String, Object> n = new HashMap<>();
        n.put("backend.id", "gpu-neighbour");
        n.put("address", "127.0.0.1");
        n.put("port", Integer.toString(PORTS.get("host")));
        n.put("identity", dir.resolve("neighbour.p12").toString());
        n.put("identity.password.file", dir.resolve("neighbour.pass").toString());
        n.put("trust", dir.resolve("host.crt").toString());
        RemoteBackend neighbour = new RemoteBackend(Configs.of(RemoteBackend.Config.class, n),
                new io.vgpu.api.AddressWindow(0x2000_0000_0000L, 1L << 40));
        try {
            assertTrue(neighbour.info().toString(), neighbour.info().available);
            configure("gpu1", PORTS.get("host"), "guest", "host");
            Files.writeString(conf.resolve("io.vgpu.router.cfg"), "backend = gpu1\nwindow.base = 0x200000000000\nwindow.size = 2T\n");
            Outcome o = check();
            assertEquals(o.out, 1, o.fails);
            String tag = "FAIL remote gpu1 (127.0.0.1:" + PORTS.get("host") + "): ";
            assertTrue(o.out, o.out.lines().anyMatch(l -> l.equals(tag + "the host refused: window 0x200000000000+2T overlaps "
                    + "neighbour's 0x200000000000+1T; free: window.base = 0x210000000000, window.size = 2T (in "
                    + conf.resolve("io.vgpu.router.cfg") + "; vgpu remote window BASE SIZE writes them)")));
            Files.writeString(conf.resolve("io.vgpu.router.cfg"), "backend = gpu1\nwindow.base = 0x210000000000\nwindow.size = 2T\n");
            o = check();
            assertEquals(o.out, 0, o.fails);
            assertTrue(o.out, o.out.contains("this guest's device address window 0x210000000000+2T accepted by the host"));
        } finally {
            neighbour.deactivate();
        }
    }

    @Test
    public void aHostCertificateExpiringWithinThirtyDaysIsAWarning() throws Exception {
        configure("gpu2", PORTS.get("soon"), "guest", "soon");
        Outcome o = check("gpu2");
        assertEquals(o.out, 0, o.fails);
        assertEquals(o.out, 2, o.warns);
        assertTrue(o.out, hasLine(o.out, "WARN remote gpu2 .*: pinned host certificate soon\\.crt \\(CN=soon\\) expires in 9 days, on .*"));
        assertTrue(o.out, hasLine(o.out, "WARN remote gpu2 .*: host certificate CN=soon .* expires in 9 days, on .*"));
        assertTrue(o.out, hasLine(o.out, "OK   remote gpu2 .*: serves backend mock .*"));
    }

    @Test
    public void anExpiredHostCertificateFailsAndSaysWhen() throws Exception {
        configure("gpu3", PORTS.get("old"), "guest", "old");
        Outcome o = check();
        assertTrue(o.out, o.fails >= 2);
        assertTrue(o.out, hasLine(o.out, "FAIL remote gpu3 .*: pinned host certificate old\\.crt \\(CN=old\\) expired on 20\\S+Z: .*"));
        assertTrue(o.out, hasLine(o.out, "FAIL remote gpu3 .*: TLS 1\\.3 handshake failed: .*certificate of old .* expired on .*"));
        assertTrue(o.out, !o.out.contains("serves backend"));
    }

    @Test
    public void anUnreachableHostFailsWithinTheBound() throws Exception {
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        configure("gpu4", closed, "guest", "host");
        long t0 = System.nanoTime();
        Outcome o = check();
        assertTrue("took " + (System.nanoTime() - t0) / 1_000_000 + " ms", System.nanoTime() - t0 < 5_000_000_000L);
        assertEquals(o.out, 1, o.fails);
        assertTrue(o.out, hasLine(o.out, "FAIL remote gpu4 \\(127\\.0\\.0\\.1:" + closed + "\\): host unreachable: no TCP connection "
                + "within 3000 ms: Connection refused.*"));
    }

    @Test
    public void aGuestTheHostDoesNotTrustIsToldToPair() throws Exception {
        // soon's key is no guest the hosts trust (peers/ holds guest.crt only).
        configure("gpu5", PORTS.get("host"), "soon", "host");
        Outcome o = check();
        assertEquals(o.out, 1, o.fails);
        // Which of the two a client sees depends on whether the alert arrives before its first write.
        assertTrue(o.out, hasLine(o.out, "FAIL remote gpu5 .*: TLS 1\\.3 handshake failed: (the host refused this guest's certificate "
                + "\\(Received fatal alert: \\w+\\)|the host hung up \\(.*\\), as it does when it does not trust this "
                + "guest's certificate \\(its log says\\)): pair it on the host with `vgpu remote trust`.*"));
    }

    @Test
    public void aNamedHostThatIsNotConfiguredFails() throws Exception {
        configure("gpu1", PORTS.get("host"), "guest", "host");
        Outcome o = check("gpu9");
        assertEquals(o.out, 1, o.fails);
        assertTrue(o.out, o.out.startsWith("FAIL remote gpu9: no conf/io.vgpu.backend.remote.host-*.cfg has backend.id = gpu9"));
    }
}
