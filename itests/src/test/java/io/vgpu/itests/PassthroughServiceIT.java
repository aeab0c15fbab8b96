package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.ClassRule;
import org.junit.Test;
import org.junit.rules.ExternalResource;
import org.junit.rules.RuleChain;
import org.junit.rules.TestRule;

/**
 * Two distributions: a "GPU host" whose router uses passthrough, its driver being vgpu's shim
 * (allowed) pointed by the service's VGPU_SOCKET at a second service on the mock, while its own
 * socket comes from its bridge file. Unmodified programs on the first service then run through
 * the core, passthrough inside Felix (JCuda and libvgpupassthrough.so from Bundle-NativeCode),
 * JCuda and the shim, and their kernels execute on the second service.
 */
public class PassthroughServiceIT {
    static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory(Path.of("/tmp"), "vgpu-pt-");
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static final Path HOST_SOCKET = DIR.resolve("host.sock");
    static final Path GPU_SOCKET = DIR.resolve("gpu.sock");
    static final ServiceFixture HOST = new ServiceFixture().atSocket(HOST_SOCKET);
    static final ServiceFixture GPU = new ServiceFixture().atSocket(GPU_SOCKET)
            .withServiceEnv("VGPU_SOCKET", HOST_SOCKET.toString())
            .withConf("io.vgpu.bridge.cfg", "socket = " + GPU_SOCKET + "\n")
            // Half the window, at its base: the host keeps room for its own module globals.
            .withConf("io.vgpu.backend.passthrough.cfg", "driver.library = " + ServiceFixture.NATIVE.resolve("lib/libcuda.so.1")
                    + "\ndriver.allow.vgpu = true\nwindow.size = 0x80000000000\n")
            .withConf("io.vgpu.router.cfg", "backend = passthrough\n")
            .readyWhenStatusContains("backend: passthrough (available)");

    @ClassRule
    public static final TestRule CHAIN = RuleChain.outerRule(new ExternalResource() {
        @Override
        protected void after() {
            try {
                Files.deleteIfExists(DIR); // the services removed their sockets when they stopped
            } catch (IOException e) {
                throw new AssertionError("left behind in " + DIR, e);
            }
        }
    }).around(HOST).around(GPU);

    @Test
    public void programsOnTheGpuHostComputeThroughPassthrough() {
        String passthrough = GPU.backendLine("passthrough").orElse(GPU.ctl("backends").out);
        assertTrue(passthrough, passthrough.startsWith("passthrough  available    NVIDIA H100 80GB HBM3, CUDA 13.0,"
                + " through vgpu's shim to /tmp/vgpu-pt-"));
        assertTrue(GPU.log(), GPU.log().contains("through vgpu's shim to " + HOST_SOCKET + " (1 device(s)); window 0x200000000000"
                + " (+8192 GiB) reserved on the GPU"));
        // NVML on the first service shows the card the second one has (identity from the driver):
        // name, UUID, bus id and memory.
        String hostList = smi(HOST, "-L");
        assertTrue(hostList, hostList.matches("GPU 0: NVIDIA H100 80GB HBM3 \\(UUID: GPU-[0-9a-f-]{36}\\)\n"));
        assertEquals(hostList, smi(GPU, "-L"));
        String hostCard = smi(HOST).lines().filter(l -> l.contains("NVIDIA H100")).findFirst().orElseThrow();
        assertTrue(smi(GPU), smi(GPU).lines().anyMatch(hostCard::equals));
        long before = lastLaunch(HOST);

        ServiceFixture.Result demo = GPU.exec(List.of(ServiceFixture.DIST.resolve("bin/vgpu-demo").toString()), Map.of(), 120);
        assertEquals(demo + "\ngpu log:\n" + GPU.log() + "\nhost log:\n" + HOST.log(), 0, demo.exit);
        assertTrue(demo.out, demo.out.contains("device 0: NVIDIA H100 80GB HBM3") && demo.out.endsWith("PASS\n"));
        // The kernel ran on the second service's mock, reached through the shim in the first service.
        List<String> ran = launchLines(HOST).stream()
                .filter(l -> Long.parseLong(l.substring(1, l.indexOf(' '))) > before).toList();
        assertTrue(ran.toString(), ran.stream().anyMatch(l -> l.contains(" vgpu_saxpy ") && l.endsWith(" executed result=0")));

        Path vadd = ServiceFixture.NATIVE.resolve("test/cuda/rt_vector_add_shared");
        if (Files.isExecutable(vadd)) {
            ServiceFixture.Result r = GPU.exec(List.of(vadd.toString()),
                    Map.of("LD_LIBRARY_PATH", ServiceFixture.NATIVE.resolve("lib") + ":" + RuntimeIT.CUDART13), 120);
            assertEquals(r + "\nhost log:\n" + HOST.log(), 0, r.exit);
            assertTrue(r.out, r.out.matches("(?s).*\\brt_vector_add: [1-9][0-9]* checks, 0 failed\\n.*"));
        } else {
            System.out.println("SKIP PassthroughServiceIT rt_vector_add: " + vadd + " was not built (no nvcc)");
        }
    }

    /** nvidia-smi through vgpu's NVML, with {@code args}; no arguments: its table. */
    private static String smi(ServiceFixture s, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of(ServiceFixture.DIST.resolve("bin/nvidia-smi").toString()));
        cmd.addAll(List.of(args));
        ServiceFixture.Result r = s.exec(cmd, Map.of("LD_LIBRARY_PATH", ServiceFixture.NATIVE.resolve("lib").toString()), 30);
        assertEquals(r.toString(), 0, r.exit);
        return r.out;
    }

    /** The sequence number of the service's last launch (vgpu-ctl launches: "#seq kernel ..."). */
    private static long lastLaunch(ServiceFixture s) {
        return launchLines(s).stream().mapToLong(l -> Long.parseLong(l.substring(1, l.indexOf(' ')))).max().orElse(0);
    }

    private static List<String> launchLines(ServiceFixture s) {
        ServiceFixture.Result r = s.ctl("launches", "4096");
        assertEquals(r.toString(), 0, r.exit);
        return r.out.lines().filter(l -> l.startsWith("#")).toList();
    }
}
