package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.FixMethodOrder;
import org.junit.Test;
import org.junit.runners.MethodSorters;

/**
 * Two distributions, two processes: a GPU host serving its mock over TLS 1.3, and a guest whose
 * router sends CUDA programs to backend.remote. Unmodified programs run in the guest and compute
 * on the host; then the host is SIGKILLed under a running program.
 */
@FixMethodOrder(MethodSorters.NAME_ASCENDING)
public class RemoteE2EIT {
    static RemoteHosts keys;
    static ServiceFixture host;
    static ServiceFixture guest;

    @BeforeClass
    public static void start() throws Throwable {
        keys = new RemoteHosts("guest");
        host = new ServiceFixture().withConf("io.vgpu.remote.listener.cfg", keys.listenerCfg());
        host.before();
        guest = new ServiceFixture().withConf("io.vgpu.backend.remote.host-gpu1.cfg", keys.remoteCfg("gpu1", "guest"))
                .withConf("io.vgpu.router.cfg", "backend = gpu1\n").readyWhenStatusContains("gpu1");
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

    @Test
    public void a1_driverApiAndCudartProgramsInTheGuestComputeOnTheHost() {
        ServiceFixture.Result backends = guest.ctl("backends");
        assertTrue(backends.toString(), backends.out.contains("gpu1") && backends.out.contains("available"));
        ServiceFixture.Result demo = guest.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu-demo").toString()), Map.of(), 120);
        assertEquals(demo + "\nguest log:\n" + guest.log() + "\nhost log:\n" + host.log(), 0, demo.exit);
        assertTrue(demo.out, demo.out.contains("NVIDIA H100"));
        System.out.println("guest demo through the remote host:\n" + demo.out);
        assertTrue("the host served it", host.log().contains("guest guest@"));
        var rt = ServiceFixture.NATIVE.resolve("test/cuda/rt_vector_add_shared");
        if (!Files.isExecutable(rt)) {
            System.out.println("SKIP: nvcc was not found when the shim was built, so rt_vector_add_shared was not built");
            return;
        }
        ServiceFixture.Result r = guest.exec(List.of(rt.toString()), Map.of(), 120);
        assertEquals(r + "\nguest log:\n" + guest.log(), 0, r.exit);
        System.out.println("rt_vector_add_shared through the remote host: " + r.out.trim());
    }

    @Test
    public void a2_theHostKilledMidRunFailsTheProgramWithinFiveSecondsAndTheBackendShowsWhy() throws Exception {
        Process p = guest.spawn(List.of(ServiceFixture.NATIVE.resolve("test/test_hold").toString(), "64"));
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()));
        String first = out.readLine();
        assertTrue("test_hold: " + first + "\n" + guest.log(), first != null && first.startsWith("holding"));
        String second = out.readLine();
        assertEquals("test_hold: copies reach the host\n" + guest.log(), "copying", second);
        long t0 = System.nanoTime();
        host.kill();
        assertTrue("the program still runs 6 s after the host died", p.waitFor(6, TimeUnit.SECONDS));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        System.out.println("host SIGKILLed mid-copy: the guest program ended with exit " + p.exitValue() + " after " + ms + " ms");
        assertEquals("cuMemcpyHtoD failed (exit 2)", 2, p.exitValue());
        assertTrue(ms + " ms", ms <= 5000);
        ServiceFixture.Result backends = guest.ctl("backends");
        System.out.println("vgpu backends after the host died:\n" + backends.out);
        // The loss leads the reason; once the keeper's reconnect attempt (every second) has failed,
        // that failure follows it.
        String lost = "[* ] gpu1\\s+unavailable\\s+.*: link to 127\\.0\\.0\\.1:" + keys.port + " lost: ";
        assertTrue(backends.out, hasLine(backends.out, lost + "\\S.*"));
        Await.until(5_000, () -> {
            String now = guest.ctl("backends").out;
            assertTrue(now, hasLine(now, lost + "[^;]+; cannot connect: Connection refused.*"));
        });
        ServiceFixture.Result demo = guest.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu-demo").toString()), Map.of(), 30);
        assertTrue(demo.toString(), demo.exit != 0);
    }

    private static boolean hasLine(String out, String regex) {
        return out.lines().anyMatch(l -> l.matches(regex));
    }
}
