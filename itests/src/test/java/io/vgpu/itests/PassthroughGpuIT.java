package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.api.CudaService;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.backend.passthrough.PassthroughBackend;
import io.vgpu.backend.passthrough.internal.DriverLocator;
import io.vgpu.backend.remote.internal.Configs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.AfterClass;
import org.junit.Before;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.Test;
import org.junit.rules.ExternalResource;
import org.junit.rules.RuleChain;
import org.junit.rules.TestRule;

/**
 * The GPU run: on a machine with NVIDIA's driver, the conformance suite against passthrough on the
 * real card (in this JVM), then a service whose router uses passthrough runs the nvcc-built
 * programs of the runtime tests and cuBLAS 12.6's compute harness, each checking its results;
 * it prints what ran. Elsewhere (CI) it is skipped with one line. One command:
 * {@code itests/gpu-check.sh}.
 */
public class PassthroughGpuIT extends CudaServiceConformance {
    static final DriverLocator.Found DRIVER = DriverLocator.locate("", DriverLocator.defaultDirectories(), false);
    static final Path PROGRAMS = ServiceFixture.NATIVE.resolve("test/cuda");
    private static final long WINDOW_BASE = 0x2000_0000_0000L;
    private static final java.util.concurrent.atomic.AtomicLong NEXT_REGION = new java.util.concurrent.atomic.AtomicLong(WINDOW_BASE);

    static final ServiceFixture GPU_HOST = new ServiceFixture().withConf("io.vgpu.router.cfg", "backend = passthrough\n")
            .readyWhenStatusContains("passthrough");
    static PassthroughBackend gpu;

    @ClassRule
    public static final TestRule CHAIN = RuleChain.outerRule(new ExternalResource() {
        @Override
        protected void before() {
            if (DRIVER.library == null) {
                System.out.println("SKIP PassthroughGpuIT: " + DRIVER.reason);
            }
            assumeTrue("no NVIDIA driver: " + DRIVER.reason, DRIVER.library != null);
        }
    }).around(GPU_HOST);

    @BeforeClass
    public static void bind() {
        gpu = new PassthroughBackend(Configs.of(PassthroughBackend.Config.class, Map.of()));
        if (!gpu.info().available) {
            throw new AssertionError("passthrough is unavailable on this GPU machine: " + gpu.info());
        }
        System.out.println("GPU: " + gpu.info().description);
        for (var d : gpu.devices()) {
            System.out.println("GPU: " + d);
        }
    }

    @AfterClass
    public static void unbind() {
        if (gpu != null) {
            gpu.deactivate();
        }
    }

    @Before
    public void regionInTheWindow() {
        base = NEXT_REGION.getAndAdd(1L << 36);
    }

    @Override
    protected CudaService backend() {
        return gpu;
    }

    @Override
    protected void provideKernel(String name, HostKernel kernel) {
        // The GPU runs the kernel's PTX, compiled by the driver.
    }

    @Test
    public void theServiceShowsTheRealCard() {
        ServiceFixture.Result backends = GPU_HOST.ctl("backends");
        System.out.println("GPU service backends:\n" + backends.out);
        String passthrough = GPU_HOST.backendLine("passthrough").orElse(backends.out);
        assertTrue(passthrough, passthrough.startsWith("passthrough  available "));
        ServiceFixture.Result smi = GPU_HOST.exec(List.of(ServiceFixture.DIST.resolve("lib/vgpu-probe").toString(), "smi"), Map.of(), 30);
        System.out.println(smi.out);
        assertEquals(smi.toString(), 0, smi.exit);
        assertTrue(smi.out, smi.out.contains(gpu.devices()[0].name));
        ServiceFixture.Result list = GPU_HOST.exec(List.of(ServiceFixture.DIST.resolve("bin/nvidia-smi").toString(), "-L"), Map.of(), 30);
        System.out.println(list.out);
        assertTrue(list.out, list.out.contains("(UUID: " + gpu.devices()[0].uuidString() + ")"));
    }

    @Test
    public void runtimeProgramsComputeOnTheCard() throws Exception {
        List<Path> programs;
        try (Stream<Path> s = Files.list(PROGRAMS)) {
            // rt_device_props compares with the mock's configured figures, which a real card does not have.
            programs = s.filter(p -> p.getFileName().toString().matches("rt_\\w+_(shared|static)")
                    && !p.getFileName().toString().startsWith("rt_device_props") && Files.isExecutable(p)).sorted().toList();
        }
        assumeTrue("SKIP: the nvcc-built programs are not in " + PROGRAMS, !programs.isEmpty());
        String cudart = System.getProperty("vgpu.cuda.lib", "/usr/local/cuda/lib64");
        List<String> failures = new ArrayList<>();
        for (Path p : programs) {
            String name = p.getFileName().toString().replaceAll("_(shared|static)$", "");
            ServiceFixture.Result r = GPU_HOST.exec(List.of(p.toString()),
                    Map.of("LD_LIBRARY_PATH", ServiceFixture.NATIVE.resolve("lib") + ":" + cudart), 120);
            String line = r.out.lines().filter(l -> l.startsWith(name + ": ")).reduce((a, b) -> b).orElse("(no result line)");
            System.out.println("GPU ran " + p.getFileName() + ": exit " + r.exit + ", " + line);
            if (r.exit != 0 || !Pattern.matches(Pattern.quote(name) + ": [1-9][0-9]* checks, 0 failed", line)) {
                failures.add(p.getFileName() + "\n" + r);
            }
        }
        assertTrue(String.join("\n", failures) + "\n--- service log\n" + GPU_HOST.log(), failures.isEmpty());
    }

    @Test
    public void cublasComputesOnTheCard() {
        Path harness = ServiceFixture.NATIVE.resolve("test/test_cublas12_compute");
        assumeTrue("SKIP: " + harness + " was not built", Files.isExecutable(harness));
        assumeTrue("SKIP: NVIDIA's CUDA 12.6 cuBLAS is not in " + RuntimeIT.CUDA12,
                Files.isRegularFile(RuntimeIT.CUDA12.resolve("libcublas.so.12")));
        ServiceFixture.Result r = GPU_HOST.exec(List.of(harness.toString(), RuntimeIT.CUDA12.toString()), Map.of(), 300);
        List<String> results = r.out.lines().filter(l -> l.startsWith("result ")).toList();
        long correct = results.stream().filter(l -> l.endsWith("=correct")).count();
        System.out.println("GPU cuBLAS 12.6: " + correct + " of " + results.size() + " calls correct, exit " + r.exit);
        results.stream().filter(l -> !l.endsWith("=correct")).forEach(l -> System.out.println("GPU cuBLAS " + l));
        assertEquals(r + "\n--- service log\n" + GPU_HOST.log(), 0, r.exit);
        assertTrue(r.out, !results.isEmpty() && correct == results.size());
    }
}
