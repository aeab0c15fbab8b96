package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * The service configured as a CUDA 12.8 driver (conf/io.vgpu.router.cfg driverVersion = 12080):
 * every place that reports the driver version says 12.8 and a 570 driver, cuGetProcAddress answers
 * what a 12.8 driver has, and a cudart 13 program stops with cudaErrorInsufficientDriver.
 */
public class DriverVersionIT {
    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture()
            .withConf("io.vgpu.router.cfg", "backend = mock\ndriverVersion = 12080\n")
            .readyWhenStatusContains("driver version: 12080");

    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;
    /** Where the shared cudart 13 programs find libcudart.so.13: the toolkit that built them. */
    static final Path CUDART13 = Path.of(System.getProperty("vgpu.cuda.lib", "/usr/local/cuda/lib64"));

    static ServiceFixture.Result run(String program, String... args) {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(NATIVE.resolve(program).toString());
        cmd.addAll(List.of(args));
        ServiceFixture.Result r = SERVICE.exec(cmd, Map.of(), 60);
        assertEquals(r.toString(), 0, r.exit);
        return r;
    }

    @Test
    public void cudaReportsTheConfiguredVersionBeforeAndAfterCuInit() {
        String out = run("test/test_driver_version").out;
        assertTrue(out, out.contains("pre_init.driver_version=12080 rc=0\n"));
        assertTrue(out, out.contains("init=0\n"));
        assertTrue(out, out.contains("driver_version=12080 rc=0\n"));
    }

    /** Contract §6.4: the same number bounds cuGetProcAddress, from its first call, before cuInit. */
    @Test
    public void cuGetProcAddressAnswersWhatA128DriverHas() {
        String out = run("test/test_driver_version").out;
        // Asked for CUDA 13.0's ABI, a 12.8 driver has only the first variants of these two.
        assertTrue(out, out.contains("pre_init.cuCtxSynchronize=cuCtxSynchronize rc=0 status=0\n"));
        assertTrue(out, out.contains("post_init.cuCtxGetDevice=cuCtxGetDevice rc=0 status=0\n"));
    }

    @Test
    public void nvmlReportsCuda128AndA570Driver() {
        String out = run("test/nvml_check").out;
        assertTrue(out, out.contains("agree cuda_driver_version cuda=12080 nvml=12080\n"));
        assertTrue(out, out.contains("agree cuda_driver_version_v1 cuda=12080 nvml=12080\n"));
        String probe = run("test/test_ollama_probe").out;
        assertTrue(probe, probe.contains("nvidia_driver_version=570.195.03\n"));
        assertTrue(probe, probe.contains("cuda_driver_version=12080\n"));
        // Ollama keeps CUDA 12 GPUs on a 570 driver.
        assertTrue(probe, probe.contains("cuda_v12[0]=kept\n"));
    }

    @Test
    public void smiHeaderSaysCuda128() {
        ServiceFixture.Result r = SERVICE.exec(List.of(DIST.resolve("bin/vgpu").toString(), "smi"), Map.of(), 60);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, Pattern.compile("(?m)^\\| vgpu smi +Driver Version: 570\\.195\\.03 +CUDA Version: 12\\.8 +\\|$")
                .matcher(r.out).find());
        ServiceFixture.Result n = SERVICE.exec(List.of(DIST.resolve("bin/nvidia-smi").toString(), "--query-gpu=driver_version",
                "--format=csv,noheader"), Map.of(), 60);
        assertEquals(n.toString(), "570.195.03\n", n.out);
    }

    @Test
    public void aCudart13ProgramStopsWithInsufficientDriver() {
        Path program = NATIVE.resolve("test/cuda/rt_vector_add_shared");
        assumeTrue("SKIP: nvcc was not found when the shim was built, so the CUDA runtime programs were not built",
                Files.isExecutable(program));
        for (String variant : List.of("shared", "static")) {
            ServiceFixture.Result r = SERVICE.exec(List.of(NATIVE.resolve("test/cuda/rt_vector_add_" + variant).toString()),
                    Map.of("LD_LIBRARY_PATH", NATIVE.resolve("lib") + ":" + CUDART13), 120);
            // A failed check, not a crash: exit status 1 from the program, not 128 + a signal.
            assertEquals(variant + "\n" + r, 1, r.exit);
            assertTrue(variant + "\n" + r, r.err.contains("cudaGetDeviceCount(&count): 35 cudaErrorInsufficientDriver"));
        }
    }
}
