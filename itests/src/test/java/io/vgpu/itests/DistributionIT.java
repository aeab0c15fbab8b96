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
import org.junit.ClassRule;
import org.junit.Test;

/**
 * The distribution as an operator drives it: a second mock configured by a factory file in conf/,
 * and the backend swapped by editing the router's file while a client is in the middle of copying.
 */
public class DistributionIT {
    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;

    @ClassRule
    public static final ServiceFixture service = new ServiceFixture()
            .withConf("io.vgpu.backend.mock.gpu-a100.cfg", String.join("\n",
                    "backend.id = mock2",
                    "name = NVIDIA A100-SXM4-40GB",
                    "memory.mib = 40960",
                    "cc.major = 8",
                    ""));

    private static String smi() {
        Result r = service.exec(List.of(DIST.resolve("lib/vgpu-probe").toString(), "smi"), Map.of(), 30);
        assertEquals(r.toString(), 0, r.exit);
        return r.out;
    }

    @Test
    public void editingTheRouterFileSwapsTheBackendForNewSessionsOnly() throws Exception {
        Await.until(10_000, () -> assertTrue(service.ctl("backends").out.contains("mock2")));
        assertTrue(service.log(), service.log().contains("active backend mock: NVIDIA H100 80GB HBM3"));
        assertTrue(smi().contains("NVIDIA H100 80GB HBM3"));

        // A client that keeps copying to 64 MiB on the first mock throughout the swap.
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
            String edited = Files.readString(routerCfg).replaceAll("(?m)^backend = mock$", "backend = mock2");
            assertTrue(edited, edited.contains("backend = mock2"));
            Path tmp = service.work().resolve("io.vgpu.router.cfg.new");
            Files.writeString(tmp, edited);
            long t0 = System.nanoTime();
            Files.move(tmp, routerCfg, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            Await.until(10_000, () -> assertTrue(service.ctl("status").out.contains("backend: mock2 (available)")));
            System.out.printf("router file edit -> active backend mock2 in %d ms%n", (System.nanoTime() - t0) / 1_000_000);

            // New sessions land on the A100; the running client stays on the H100 and keeps copying.
            String after = smi();
            assertTrue(after, after.contains("NVIDIA A100-SXM4-40GB") && after.contains("40960MiB"));
            assertTrue(service.log(), service.log().contains("switched from mock: active backend mock2"));
            Await.until(10_000, () -> assertTrue(service.ctl("sessions").out.lines()
                    .anyMatch(l -> l.contains(pid) && l.contains(" mock ") && l.contains("64 MiB"))));
            assertTrue("the client on the old backend failed", hold.isAlive());
        } finally {
            hold.destroyForcibly();
            hold.waitFor();
        }
        assertEquals("copy loop ended by the kill, not by an error", 137, hold.exitValue());
    }
}
