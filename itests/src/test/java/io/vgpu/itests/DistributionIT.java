package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.itests.ServiceFixture.Result;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * The distribution as an operator drives it: a second mock configured by a factory file in conf/,
 * and the backend swapped by editing the router's file while a client is in the middle of copying.
 */
public class DistributionIT {
    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;

    /** Starts on a second mock named by the router's file; a third file forgets its backend.id. */
    @ClassRule
    public static final ServiceFixture service = new ServiceFixture()
            .withConf("io.vgpu.backend.mock.gpu-a100.cfg", String.join("\n",
                    "backend.id = mock2",
                    "name = NVIDIA A100-SXM4-40GB",
                    "memory.mib = 40960",
                    "cc.major = 8",
                    ""))
            .withConf("io.vgpu.backend.mock.gpu-l4.cfg", "name = NVIDIA L4\n")
            .withConf("io.vgpu.router.cfg", "# Edited by the test.\nbackend = mock2\ndriverVersion = 13000\n");

    @Test
    public void theConfiguredBackendServesFromTheFirstClientOn() {
        String log = service.log();
        // conf/ is applied before the socket opens: until then the default mock is never active.
        int listening = log.indexOf("listening on unix:");
        assertTrue(log, listening > 0);
        String beforeListening = log.substring(0, listening);
        assertTrue(log, beforeListening.contains("vgpu started: active backend mock2: NVIDIA A100-SXM4-40GB"));
        assertTrue(log, !beforeListening.contains("active backend mock:"));
        // A simulated GPU without backend.id is left out, with one line naming its file.
        assertTrue(log, log.contains("ignoring a backend without a backend.id (configuration io.vgpu.backend.mock.gpu~l4)"));
        String backends = service.ctl("backends").out;
        assertTrue(backends, !backends.contains("L4"));
    }

    private static String smi() {
        Result r = service.exec(List.of(DIST.resolve("lib/vgpu-probe").toString(), "smi"), Map.of(), 30);
        assertEquals(r.toString(), 0, r.exit);
        return r.out;
    }

    @Test
    public void editingTheRouterFileSwapsTheBackendForNewSessionsOnly() throws Exception {
        Await.until(10_000, () -> assertTrue(service.ctl("backends").out.contains("mock2")));
        assertTrue(smi().contains("NVIDIA A100-SXM4-40GB"));

        // A client that keeps copying to 64 MiB on the A100 throughout the swap.
        ProcessBuilder pb = new ProcessBuilder(NATIVE.resolve("test/test_hold").toString(), "64");
        pb.environment().put("VGPU_SOCKET", service.socket().toString());
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.redirectErrorStream(true);
        Process hold = pb.start();
        try {
            byte[] line = new byte[64];
            int n = hold.getInputStream().read(line);
            assertTrue(n > 0 && new String(line, 0, n, StandardCharsets.US_ASCII).startsWith("holding"));
            String pid = " " + hold.pid() + " ";

            // Edit the file the way an editor saves it: write a new file, rename it over the old one.
            Path routerCfg = service.work().resolve("conf/io.vgpu.router.cfg");
            String edited = Files.readString(routerCfg).replaceAll("(?m)^backend = mock2$", "backend = mock");
            assertTrue(edited, edited.contains("backend = mock\n"));
            Path tmp = service.work().resolve("io.vgpu.router.cfg.new");
            Files.writeString(tmp, edited);
            long t0 = System.nanoTime();
            Files.move(tmp, routerCfg, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            Await.until(10_000, () -> assertTrue(service.ctl("status").out.contains("backend: mock (available)")));
            System.out.printf("router file edit -> active backend mock in %d ms%n", (System.nanoTime() - t0) / 1_000_000);

            // New sessions land on the H100; the running client stays on the A100 and keeps copying.
            String after = smi();
            assertTrue(after, after.contains("NVIDIA H100 80GB HBM3") && after.contains("81920MiB"));
            assertTrue(service.log(), service.log().contains("switched from mock2: active backend mock: NVIDIA H100 80GB HBM3"));
            Await.until(10_000, () -> assertTrue(service.ctl("sessions").out.lines()
                    .anyMatch(l -> l.contains(pid) && l.contains(" mock2 ") && l.contains("64 MiB"))));
            assertTrue("the client on the old backend failed", hold.isAlive());
        } finally {
            hold.destroyForcibly();
            hold.waitFor();
        }
        assertEquals("copy loop ended by the kill, not by an error", 137, hold.exitValue());
    }

    @Test
    public void demoStartsAPrivateServiceWhenNoneAnswersAndCleansUp() {
        Path nobody = service.work().resolve("nobody-listens.sock");
        Result r = service.exec(List.of(DIST.resolve("bin/vgpu").toString(), "demo"),
                Map.of("VGPU_SOCKET", nobody.toString(), "LD_LIBRARY_PATH", ""), 120);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.contains("all results correct") && r.out.contains("PASS"));
        Matcher m = Pattern.compile("starting a private vgpu service on the mock backend \\((\\S+)/vgpu\\.sock\\)").matcher(r.out);
        assertTrue(r.out, m.find());
        assertTrue("left behind: " + m.group(1), !Files.exists(Path.of(m.group(1))));
    }

    @Test
    public void useInTheShellIsWrittenToTheRoutersFile() throws Exception {
        Path dir = Files.createTempDirectory(service.work(), "shell");
        Path conf = dir.resolve("conf");
        Files.createDirectories(conf);
        try (var files = Files.list(DIST.resolve("conf"))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, conf.resolve(f.getFileName()));
            }
        }
        Files.writeString(conf.resolve("io.vgpu.backend.mock.gpu-a100.cfg"), "backend.id = mock2\nname = NVIDIA A100-SXM4-40GB\n");
        Path socket = dir.resolve("s.sock");
        Path log = dir.resolve("shell.log");
        ProcessBuilder pb = new ProcessBuilder(DIST.resolve("bin/vgpu-service").toString(), "--shell");
        pb.environment().put("VGPU_SOCKET", socket.toString());
        pb.environment().put("VGPU_CONF", conf.toString());
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        Process shell = pb.start();
        try {
            Map<String, String> env = Map.of("VGPU_SOCKET", socket.toString());
            List<String> backends = List.of(DIST.resolve("lib/vgpu-ctl").toString(), "backends");
            Await.until(20_000, () -> assertTrue(service.exec(backends, env, 30).out.contains("mock2")));
            try (var in = new java.io.OutputStreamWriter(shell.getOutputStream(), StandardCharsets.UTF_8)) {
                in.write("vgpu:use mokc2\nvgpu:use mock2\n");
                in.flush();
                Path routerCfg = conf.resolve("io.vgpu.router.cfg");
                Await.until(10_000, () -> assertTrue(read(routerCfg), read(routerCfg).contains("\nbackend = mock2\n")));
                String cfg = read(routerCfg);
                assertTrue(cfg, cfg.startsWith("# Which backend serves new CUDA sessions") && cfg.contains("driverVersion = 13000"));
                List<String> status = List.of(DIST.resolve("lib/vgpu-ctl").toString(), "status");
                Await.until(10_000, () -> assertTrue(service.exec(status, env, 30).out.contains("backend: mock2 (available)")));
                assertTrue(read(log), read(log).contains("no backend 'mokc2' is registered (registered: mock, mock2, passthrough); nothing changed"));
            }
        } finally {
            shell.destroy();
            shell.waitFor();
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }
}
