package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.FixMethodOrder;
import org.junit.Test;
import org.junit.runners.MethodSorters;

/**
 * A guest whose router prefers a GPU host and falls back to its own mock ({@code backend = gpu1,
 * mock}), with two distributions in two processes: the host up, stopped and started again. New
 * programs follow the first available backend each time; {@code vgpu backends} says why gpu1 was
 * skipped; {@code vgpu remote check} and {@code vgpu doctor} report the host's state.
 */
@FixMethodOrder(MethodSorters.NAME_ASCENDING)
public class RemoteFailoverIT {
    /** The host's mock, named apart from the guest's own H100 (same memory, which test_memory checks). */
    static final String HOST_GPU = "NVIDIA H100 PCIe";
    static final String GUEST_GPU = "NVIDIA H100 80GB HBM3";

    static RemoteHosts keys;
    static ServiceFixture host;
    static ServiceFixture guest;

    static ServiceFixture startHost() throws Throwable {
        ServiceFixture h = keys.host(HOST_GPU, "");
        h.before();
        return h;
    }

    @BeforeClass
    public static void start() throws Throwable {
        keys = new RemoteHosts("guest");
        host = startHost();
        guest = keys.guestPreferring("guest", "gpu1, mock");
        guest.before();
    }

    @AfterClass
    public static void stop() throws Exception {
        if (guest != null) {
            guest.after();
        }
        if (host != null) {
            host.after();
        }
        keys.delete();
    }

    private static boolean hasLine(String out, String regex) {
        return out.lines().anyMatch(l -> l.matches(regex));
    }

    /**
     * The demo (driver API: the device, PTX saxpy on a million floats through device memory) and,
     * with {@code bitExact}, test_memory (64 MiB bit-exact round trips, memsets, VMM).
     */
    private static void computesOn(String gpu, boolean bitExact) {
        ServiceFixture.Result demo = guest.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu-demo").toString()), Map.of(), 120);
        assertEquals(demo + "\nguest log:\n" + guest.log(), 0, demo.exit);
        assertTrue(demo.out, demo.out.contains("device 0: " + gpu + ", compute capability 9.0"));
        assertTrue(demo.out, demo.out.contains("all results correct"));
        if (!bitExact) {
            return;
        }
        ServiceFixture.Result mem = guest.exec(List.of(ServiceFixture.NATIVE.resolve("test/test_memory").toString()), Map.of(), 120);
        assertEquals(mem + "\nguest log:\n" + guest.log(), 0, mem.exit);
        assertTrue(mem.out, hasLine(mem.out, "memory: [1-9]\\d* checks, 0 failed"));
    }

    private static ServiceFixture.Result vgpu(String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of(ServiceFixture.DIST.resolve("bin/vgpu").toString()));
        cmd.addAll(List.of(args));
        Path conf = guest.work().resolve("conf");
        // The doctor's remote checks read the guest's conf/; its service checks use the guest's socket.
        return guest.exec(cmd, Map.of("VGPU_CONF", conf.toString(), "VGPU_DOCTOR_OLLAMA_USER", "vgpu-no-such-user"), 120);
    }

    @Test
    public void a0_remoteUseWritesAPreferenceListIntoTheRoutersFile() throws Exception {
        Path conf = java.nio.file.Files.createTempDirectory(guest.work(), "conf-use");
        java.nio.file.Files.writeString(conf.resolve("io.vgpu.router.cfg"), "# which backend\nbackend = mock\ndriverVersion = 13000\n");
        ServiceFixture.Result r = guest.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu").toString(), "remote", "use", "gpu1",
                "gpu2,mock"), Map.of("VGPU_CONF", conf.toString()), 30);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.startsWith("new CUDA programs go to the first available of gpu1, gpu2, mock"));
        assertEquals("# which backend\nbackend = gpu1, gpu2, mock\ndriverVersion = 13000\n",
                java.nio.file.Files.readString(conf.resolve("io.vgpu.router.cfg")));
    }

    @Test
    public void a1_withTheHostUpNewProgramsRunOnItAndSessionsSayWhere() throws Exception {
        ServiceFixture.Result backends = guest.ctl("backends");
        System.out.println("vgpu backends, host up:\n" + backends.out);
        assertTrue(backends.out, hasLine(backends.out, "\\* gpu1\\s+available\\s+simulated 1 x " + HOST_GPU + " on 127\\.0\\.0\\.1:"
                + keys.port + " \\(mock\\)\\s+\\[preference 1\\]"));
        assertTrue(backends.out, hasLine(backends.out, "  mock\\s+available\\s+simulated 1 x " + GUEST_GPU + "\\s+\\[preference 2\\]"));
        assertTrue(backends.out, !backends.out.contains("skipped"));
        computesOn(HOST_GPU, true);

        Process p = guest.spawn(List.of(ServiceFixture.NATIVE.resolve("test/test_hold").toString(), "1"));
        try {
            String first = new BufferedReader(new InputStreamReader(p.getInputStream())).readLine();
            assertTrue("test_hold: " + first + "\n" + guest.log(), first != null && first.startsWith("holding"));
            ServiceFixture.Result sessions = guest.ctl("sessions");
            assertTrue(sessions.out, hasLine(sessions.out, "\\d+\\s+" + p.pid() + "\\s+\\d+\\s+test_hold\\s+gpu1\\s+BOUND\\s+1 MiB.*"));
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    public void a2_withTheHostStoppedNewProgramsRunOnTheMockAndDoctorSaysWhy() throws Throwable {
        long t0 = System.nanoTime();
        host.after();
        host = null;
        String[] shown = new String[1];
        Await.until(5_000, () -> {
            shown[0] = guest.ctl("backends").out;
            assertTrue(shown[0], hasLine(shown[0], "  gpu1\\s+unavailable\\s+simulated 1 x " + HOST_GPU
                    + " on 127\\.0\\.0\\.1:\\d+ \\(mock\\): link to 127\\.0\\.0\\.1:" + keys.port + " lost: \\S.*"));
            assertTrue(shown[0], hasLine(shown[0], "\\* mock\\s+available\\s+.*"));
        });
        System.out.printf("host stopped: vgpu backends shows gpu1 unavailable after %d ms:%n%s%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), shown[0]);
        assertTrue(shown[0], shown[0].contains("new sessions go to mock; skipped: gpu1 (reasons above)"));
        computesOn(GUEST_GPU, true);
        String status = guest.ctl("status").out;
        assertTrue(status, status.contains("backend: mock (available)") && status.contains("(preference gpu1, mock; skipped gpu1: unavailable: "));

        ServiceFixture.Result check = vgpu("remote", "check");
        System.out.println("vgpu remote check, host stopped:\n" + check.out + check.err);
        assertEquals(check.toString(), 1, check.exit);
        assertTrue(check.out, hasLine(check.out, "FAIL remote gpu1 \\(127\\.0\\.0\\.1:" + keys.port + "\\): host unreachable: no TCP "
                + "connection within 3000 ms: Connection refused .*"));
        ServiceFixture.Result doctor = vgpu("doctor");
        assertTrue(doctor.toString(), doctor.exit != 0);
        assertTrue(doctor.out, hasLine(doctor.out, "WARN backend gpu1 unavailable: simulated 1 x " + HOST_GPU + " on .*: link to 127\\.0\\.0\\.1:"
                + keys.port + " lost: \\S.*"));
        assertTrue(doctor.out, hasLine(doctor.out, "FAIL remote gpu1 .*: host unreachable: .*Connection refused.*"));
        assertTrue(doctor.out, hasLine(doctor.out, "OK   active backend: mock \\(available\\)"));
    }

    @Test
    public void a3_withTheHostBackNewProgramsRunOnItAgainAndDoctorPasses() throws Throwable {
        host = startHost();
        Await.until(15_000, () -> {
            String out = guest.ctl("backends").out;
            assertTrue(out, hasLine(out, "\\* gpu1\\s+available\\s+.*"));
        });
        computesOn(HOST_GPU, false);
        ServiceFixture.Result check = vgpu("remote", "check", "gpu1");
        System.out.println("vgpu remote check, host back:\n" + check.out + check.err);
        assertEquals(check.toString(), 0, check.exit);
        String tag = "remote gpu1 \\(127\\.0\\.0\\.1:" + keys.port + "\\): ";
        assertTrue(check.out, hasLine(check.out, "OK   " + tag + "host reachable \\(TCP connect in \\d+ ms\\)"));
        assertTrue(check.out, hasLine(check.out, "OK   " + tag + "TLS 1\\.3 handshake with this guest's identity \\(TLSv1\\.3, .*\\)"));
        // RemoteHosts gives the host a certificate valid for 30 days: within the warning period.
        assertTrue(check.out, hasLine(check.out, "WARN " + tag + "host certificate CN=host \\(SHA-256 [0-9a-f]{64}\\) expires in 29 days.*"));
        assertTrue(check.out, hasLine(check.out, "OK   " + tag + "serves backend mock \\(simulated 1 x " + HOST_GPU + "\\): 1 device: "
                + HOST_GPU + ", 81920 MiB"));
        assertTrue(check.out, !check.out.contains("FAIL"));
        ServiceFixture.Result doctor = vgpu("doctor");
        assertTrue(doctor.out, hasLine(doctor.out, "OK   " + tag + "serves backend mock .*"));
        assertTrue(doctor.out, hasLine(doctor.out, "OK   active backend: gpu1 \\(available\\)"));
        assertTrue(doctor.out, !doctor.out.contains("backend gpu1 unavailable"));
    }
}
