package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * The passthrough backend in the distribution, on a machine without NVIDIA's driver: configured
 * with vgpu's own shim, whose VGPU_SOCKET is this very service (the shim's environment is the
 * service's), it must refuse to loop, without loading the shim; told to use the shim without
 * allowing it, or finding no driver, it is unavailable with the reason. The service serves CUDA
 * programs on the mock meanwhile.
 */
public class PassthroughLoopIT {
    static final Path SHIM = ServiceFixture.NATIVE.resolve("lib/libcuda.so.1");
    static final String CFG = "io.vgpu.backend.passthrough.cfg";

    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture()
            .withConf(CFG, "driver.library = " + SHIM + "\ndriver.allow.vgpu = true\n");

    private static String passthroughLine() {
        return SERVICE.backendLine("passthrough").orElse("(no passthrough line)\n" + SERVICE.ctl("backends").out);
    }

    /** `vgpu backends` shows the first 127 bytes of the reason: those must be {@code reason}'s. */
    private static void awaitReason(String reason) {
        String marker = "the local NVIDIA GPU (unavailable): ";
        Await.until(15_000, () -> {
            String line = passthroughLine();
            int at = line.indexOf(marker);
            assertTrue(line, line.startsWith("passthrough  unavailable  ") && at > 0);
            String shown = line.substring(at + marker.length());
            assertEquals(reason.substring(0, Math.min(reason.length(), 127)), shown);
        });
    }

    private static void reconfigure(String content) throws Exception {
        Path cfg = SERVICE.work().resolve("conf").resolve(CFG);
        Path tmp = cfg.resolveSibling(CFG + ".tmp");
        Files.writeString(tmp, content);
        Files.move(tmp, cfg, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static void demoRunsOnTheMock() {
        ServiceFixture.Result demo = SERVICE.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu-demo").toString()), Map.of(), 120);
        assertEquals(demo + "\nservice log:\n" + SERVICE.log(), 0, demo.exit);
    }

    @Test
    public void refusesTheShimThatPointsBackAtThisServiceAndServesOn() throws Exception {
        awaitReason("refusing to loop: vgpu's shim would call this service back at " + SERVICE.socket());
        // The identity came from the service over its socket: SERVICE_ID named this process.
        Matcher m = Pattern.compile("talks to " + Pattern.quote(SERVICE.socket().toString())
                + ", which is this service \\(pid (\\d+) started [^)]+\\): refusing to loop").matcher(SERVICE.log());
        assertTrue(SERVICE.log(), m.find());
        String maps = Files.readString(Path.of("/proc", m.group(1), "maps"));
        assertFalse("the service loaded the shim it refused", maps.contains("libcuda.so.1"));
        demoRunsOnTheMock();

        reconfigure("driver.library = " + SHIM + "\n");
        awaitReason("driver.library is vgpu's own shim, not NVIDIA's driver (driver.allow.vgpu allows it): " + SHIM);

        Path empty = Files.createDirectories(SERVICE.work().resolve("no-driver-here"));
        reconfigure("driver.search = " + empty + "\n");
        awaitReason("no NVIDIA driver (libcuda.so.1) in " + empty);
        demoRunsOnTheMock();
        assertFalse(Files.readString(Path.of("/proc", m.group(1), "maps")).contains("libcuda.so.1"));
    }
}
