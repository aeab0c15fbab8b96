package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.core.image.ImageFormatException;
import io.vgpu.core.image.ImageParser;
import io.vgpu.itests.ServiceFixture.Result;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * End to end through NVIDIA's own runtimes: unmodified cudart 13 (programs built by nvcc, each
 * linked once against the shared and once against the static cudart), cudart 12.6 and cuBLAS 12.6
 * (driven through dlopen by gcc-built harnesses), all on our libcuda.so.1 and the real service.
 *
 * <p>The mock is configured as a device no real GPU reports (name, memory, SM count, PCI address
 * and device id, clocks, bus width, L2 size, UUID), so "the runtime reports the configured device"
 * cannot pass by accident. The kernels of the nvcc programs run from the PTX in their fatbins and
 * the programs check every element; the kernels cuBLAS picks for its GEMMs here are SASS only, so
 * their launches must fail by name with CUDA_ERROR_NOT_SUPPORTED, and the launches are checked: parameter sizes against what the images in NVIDIA's library
 * files declare (parsed here, independently of the service), and for images cuBLAS builds at run
 * time, consistency across launches.
 */
public class RuntimeIT {
    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path PROGRAMS = NATIVE.resolve("test/cuda");
    static final Path CUDA12 = Path.of(System.getProperty("vgpu.cuda12", "target/cuda12")).toAbsolutePath();
    /** Where the shared cudart 13 programs find libcudart.so.13: the toolkit that built them. */
    static final Path CUDART13 = Path.of(System.getProperty("vgpu.cuda.lib", "/usr/local/cuda/lib64"));

    static final String NAME = "vgpu Test GPU";
    static final long MEMORY_MIB = 12345;
    static final int SMS = 77;
    static final int PCI_DOMAIN = 1;
    static final int PCI_BUS = 66;
    static final int PCI_DEVICE = 2;
    static final String UUID = "GPU-0a1b2c3d-4e5f-4607-8899-aabbccddeeff";
    static final int CLOCK_KHZ = 1234567;
    static final int MEMORY_CLOCK_KHZ = 2345678;
    static final int MEMORY_BUS_WIDTH = 3072;
    static final int L2_CACHE_BYTES = 41943040;
    static final int PCI_DEVICE_ID = 0x23ff;

    /** The mock's configuration, which is also what the programs are told to expect. */
    static final Map<String, String> CONFIG = new LinkedHashMap<>();

    static {
        CONFIG.put("name", NAME);
        CONFIG.put("memory.mib", Long.toString(MEMORY_MIB));
        CONFIG.put("sm.count", Integer.toString(SMS));
        CONFIG.put("cc.major", "9");
        CONFIG.put("cc.minor", "0");
        CONFIG.put("pci.domain", Integer.toString(PCI_DOMAIN));
        CONFIG.put("pci.bus", Integer.toString(PCI_BUS));
        CONFIG.put("pci.device", Integer.toString(PCI_DEVICE));
        CONFIG.put("uuid", UUID);
        CONFIG.put("clock.khz", Integer.toString(CLOCK_KHZ));
        CONFIG.put("memory.clock.khz", Integer.toString(MEMORY_CLOCK_KHZ));
        CONFIG.put("memory.bus.width", Integer.toString(MEMORY_BUS_WIDTH));
        CONFIG.put("l2.cache.bytes", Integer.toString(L2_CACHE_BYTES));
        CONFIG.put("pci.device.id", Integer.toString(PCI_DEVICE_ID));
    }

    @ClassRule
    public static final ServiceFixture service = new ServiceFixture()
            .withConf("io.vgpu.backend.mock.cfg", config())
            .readyWhenStatusContains(NAME + " (" + UUID);

    private static String config() {
        StringBuilder b = new StringBuilder();
        CONFIG.forEach((k, v) -> b.append(k).append(" = ").append(v).append('\n'));
        return b.toString();
    }

    private static final Set<String> skipsPrinted = new TreeSet<>();

    private static void skipUnless(boolean condition, String line) {
        if (!condition && skipsPrinted.add(line)) {
            System.out.println(line);
        }
        assumeTrue(line, condition);
    }

    private static void assumeNvccPrograms() {
        skipUnless(Files.isExecutable(PROGRAMS.resolve("rt_vector_add_shared")),
                "SKIP: nvcc was not found when the shim was built, so the CUDA runtime programs were not built");
    }

    private static void assumeCuda12() {
        boolean present = true;
        for (String lib : List.of("libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12")) {
            present &= Files.isRegularFile(CUDA12.resolve(lib));
        }
        skipUnless(present, "SKIP: NVIDIA's CUDA 12.6 libraries are not in " + CUDA12
                + " (org.bytedeco:cuda:12.6-9.5-1.5.11:jar:linux-x86_64-redist, unpacked by the itests build)");
    }

    private static List<String> expectations() {
        List<String> args = new ArrayList<>();
        CONFIG.forEach((k, v) -> args.add(k + "=" + v));
        return args;
    }

    private static Result run(Path program, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(program.toString());
        cmd.addAll(args);
        return service.exec(cmd, Map.of("LD_LIBRARY_PATH", NATIVE.resolve("lib") + ":" + CUDART13), 300);
    }

    private static Result runProgram(String name, String cudart, List<String> args) {
        return run(PROGRAMS.resolve(name + "_" + cudart), args);
    }

    private static void assertPassed(String name, Result r) {
        assertEquals(name + "\n" + r + "\n--- service log (tail)\n" + tail(service.log()), 0, r.exit);
        assertTrue(r.toString(), Pattern.compile("(?m)^" + Pattern.quote(name) + ": [1-9][0-9]* checks, 0 failed$")
                .matcher(r.out).find());
    }

    private static String tail(String text) {
        return text.length() > 6000 ? text.substring(text.length() - 6000) : text;
    }

    // ---- the service's launch log (vgpu-ctl launches) -------------------------------------------

    record Launch(long seq, String kernel, String grid, String block, int smem, int params, boolean executed,
            int result) {
    }

    private static final Pattern LAUNCH = Pattern.compile(
            "#(\\d+) (\\S+) grid\\((\\d+,\\d+,\\d+)\\) block\\((\\d+,\\d+,\\d+)\\) smem=(\\d+) params=(\\d+) "
                    + "(executed|recorded) result=(-?\\d+)");

    private static List<Launch> launches() {
        Result r = service.ctl("launches", "4096");
        assertEquals(r.toString(), 0, r.exit);
        List<Launch> out = new ArrayList<>();
        for (String line : r.out.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            Matcher m = LAUNCH.matcher(line);
            assertTrue("unparsable launch record: " + line, m.matches());
            out.add(new Launch(Long.parseLong(m.group(1)), m.group(2), m.group(3), m.group(4),
                    Integer.parseInt(m.group(5)), Integer.parseInt(m.group(6)), m.group(7).equals("executed"),
                    Integer.parseInt(m.group(8))));
        }
        return out;
    }

    private static long lastLaunch() {
        List<Launch> all = launches();
        return all.isEmpty() ? 0 : all.get(all.size() - 1).seq;
    }

    private static List<Launch> launchesAfter(long seq) {
        return launches().stream().filter(l -> l.seq > seq).toList();
    }

    /** All launches after {@code seq} are {@code count} executed, successful launches of one kernel. */
    private static List<Launch> assertExecuted(long seq, int count, String kernel, int params) {
        List<Launch> ls = launchesAfter(seq);
        assertEquals(ls.toString(), count, ls.size());
        for (Launch l : ls) {
            assertEquals(l.toString(), kernel, l.kernel);
            assertTrue("the kernel did not run: " + l, l.executed);
            assertEquals(l.toString(), 0, l.result);
            assertEquals(l.toString(), params, l.params);
        }
        return ls;
    }

    // ---- cudart 13: nvcc-built programs ----------------------------------------------------------

    @Test
    public void vectorAddThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_vector_add", runProgram("rt_vector_add", cudart, List.of()));
            List<Launch> ls = assertExecuted(before, 2, "_Z7rt_vaddPKfS0_Pfi", 28);
            assertEquals("391,1,1 256,1,1", ls.get(0).grid + " " + ls.get(0).block);
            assertEquals("4,1,1 32,1,1", ls.get(1).grid + " " + ls.get(1).block);
        }
    }

    @Test
    public void memcpyAndMemsetVariantsThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_memcpy", runProgram("rt_memcpy", cudart, List.of()));
            List<Launch> ls = assertExecuted(before, 1, "_Z13rt_pitch_fillPjmiij", 28);
            assertEquals("8,5,1 32,8,1", ls.get(0).grid + " " + ls.get(0).block);
        }
    }

    @Test
    public void streamsAndEventsThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_streams", runProgram("rt_streams", cudart, List.of()));
            // 2 on two streams, 10 queued on one, 1 on the legacy stream, 1 per thread on two threads.
            assertExecuted(before, 15, "_Z7rt_stepPiiii", 20);
        }
    }

    @Test
    public void symbolsAndGraphsThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_graph", runProgram("rt_graph", cudart, List.of()));
            // Two kernels per graph launch: three launches, then one after the update.
            assertExecuted(before, 8, "_Z7rt_stepPiiii", 20);
        }
    }

    @Test
    public void perThreadDefaultStreamCapturesAndReplaysThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_per_thread", runProgram("rt_per_thread", cudart, List.of()));
            // Stream 0 captured and replayed three times (two kernels each), then two threads
            // replaying their own one-kernel graph twice each.
            assertExecuted(before, 10, "_Z7rt_stepPiiii", 20);
        }
    }

    @Test
    public void structParameterThroughCudart13() {
        assumeNvccPrograms();
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            assertPassed("rt_struct_param", runProgram("rt_struct_param", cudart, List.of()));
            // int at 0, the 40-byte struct at 8, short at 48.
            assertExecuted(before, 1, "_Z15rt_struct_applyi8RtStructs", 50);
        }
    }

    @Test
    public void cudart13ReportsExactlyTheConfiguredDevice() {
        assumeNvccPrograms();
        Map<String, String> shared = null;
        for (String cudart : List.of("shared", "static")) {
            long before = lastLaunch();
            Result r = runProgram("rt_device_props", cudart, expectations());
            assertPassed("rt_device_props", r);
            assertTrue(r.out, r.out.contains("version driver=13000 runtime=13000\n"));
            Map<String, String> props = props(r.out);
            assertConfiguredDevice(props);
            if (shared == null) {
                shared = props;
            } else {
                assertEquals("static and shared cudart disagree", shared, props);
            }
            List<Launch> ls = assertExecuted(before, 1, "_Z14rt_launch_dimsPj", 8);
            assertEquals("3,2,5 8,4,2 256", ls.get(0).grid + " " + ls.get(0).block + " " + ls.get(0).smem);
        }
    }

    // ---- cudart 12.6 and cuBLAS 12.6: NVIDIA's libraries driven through dlopen -------------------

    @Test
    public void cudart12ReportsExactlyTheConfiguredDeviceAndRunsAKernel() {
        assumeCuda12();
        long before = lastLaunch();
        List<String> args = new ArrayList<>();
        args.add(CUDA12.toString());
        args.addAll(expectations());
        Result r = run(NATIVE.resolve("test/test_cudart12"), args);
        assertPassed("test_cudart12", r);
        assertTrue(r.out, r.out.contains("version driver=13000 runtime=12060\n"));
        Map<String, String> props = props(r.out);
        assertConfiguredDevice(props);
        // Two affine launches on two streams ordered by an event (the harness checked y = -6x + 5),
        // then the struct-parameter kernel with its 50-byte block (checked element by element).
        List<Launch> ls = launchesAfter(before);
        assertEquals(ls.toString(), 3, ls.size());
        for (Launch l : ls) {
            assertTrue("the kernel did not run: " + l, l.executed);
            assertEquals(l.toString(), 0, l.result);
        }
        for (Launch l : ls.subList(0, 2)) {
            assertEquals(l.toString(), "_Z11rt12_affinePfPKfffi 28 33,1,1 128,1,1",
                    l.kernel + " " + l.params + " " + l.grid + " " + l.block);
        }
        Launch struct = ls.get(2);
        assertEquals(struct.toString(), "_Z15rt_struct_applyi8RtStructs 50 12,1,1 256,1,1",
                struct.kernel + " " + struct.params + " " + struct.grid + " " + struct.block);

        // Field by field what cudart 13 reports, where nvcc could build the cudart 13 program.
        if (Files.isExecutable(PROGRAMS.resolve("rt_device_props_shared"))) {
            Result r13 = runProgram("rt_device_props", "shared", expectations());
            assertPassed("rt_device_props", r13);
            assertEquals("cudart 12.6 and cudart 13 disagree", props(r13.out), props);
        }
    }

    /** What cublasSgemm_v2 (64x64x64, fp32) launches on the configured device: a kernel of libcublas's own images. */
    static final String SGEMM_KERNEL = "sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize32x32x8_stage3_warpsize1x2x1_ffma_"
            + "aligna4_alignc4_execute_kernel__5x_cublas";
    /** What cublasGemmEx (fp16 in, fp32 out and compute) launches: a kernel of a cubin cuBLASLt generates at run time. */
    static final String GEMMEX_KERNEL = "nvjet_hss_64x8_64x16_1x4_h_bz_NNT";
    /**
     * The parameter block that generated cubin declares: EIATTR_PARAM_CBANK and
     * EIATTR_CBANK_PARAM_SIZE (0x398) in its .nv.info section, read from a dump of the uploaded
     * image with an ELF reader independent of the service's. No library file holds the image,
     * so unlike SGEMM_KERNEL's this cannot be parsed here at test time.
     */
    static final int GEMMEX_PARAMS = 920;

    @Test
    public void cublas12SgemmAndGemmExEachLaunchTheKernelTheirImagesDeclare() throws IOException {
        assumeCuda12();
        // The harness stops before each call and after cublasDestroy, everything before synchronized.
        Map<String, Long> seq = new LinkedHashMap<>();
        Map<String, ServiceFixture.ImageStats> images = new LinkedHashMap<>();
        Result r = service.execSteps(List.of(NATIVE.resolve("test/test_cublas12").toString(), CUDA12.toString(), "steps"),
                Map.of("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString()), 300, step -> {
                    seq.put(step, lastLaunch());
                    images.put(step, service.imageStats());
                });
        for (String call : List.of("cublasCreate_v2", "cublasSgemm_v2", "cublasGemmEx", "cublasDestroy_v2")) {
            assertTrue(call + " did not return 0:\n" + r + "\n--- service log (tail)\n" + tail(service.log()),
                    r.out.contains("status " + call + "=0\n"));
        }
        assertPassed("test_cublas12", r);
        assertEquals(r.out, List.of("sgemm", "gemmex", "destroy", "destroyed"), List.copyOf(seq.keySet()));

        List<Launch> all = launchesAfter(seq.get("sgemm"));
        Map<String, Set<Integer>> declared = declaredParamSizes(
                List.of(CUDA12.resolve("libcublasLt.so.12"), CUDA12.resolve("libcublas.so.12")));

        // cublasSgemm_v2: one launch of its kernel, with the size libcublas's image declares for it.
        List<Launch> sgemm = between(all, seq.get("sgemm"), seq.get("gemmex"));
        assertEquals(all.toString(), 1, sgemm.size());
        Launch s = sgemm.get(0);
        assertEquals(s.toString(), SGEMM_KERNEL, s.kernel);
        assertEquals(s + " against the image", Set.of(s.params), declared.get(SGEMM_KERNEL));
        // Its image holds SASS only: the mock refuses it by name, the synchronization reports
        // cudaErrorNotSupported, and no wrong result is ever returned as if it were computed.
        assertEquals(s.toString(), CuResult.NOT_SUPPORTED, s.result);
        assertTrue(r.out, r.out.contains("status cudaDeviceSynchronize(sgemm)=801\n"));
        assertTrue(r.out, r.out.contains("result cublasSgemm_v2=failed 801\n"));
        assertTrue(service.log(), service.log().contains("kernel " + SGEMM_KERNEL + " cannot run on the simulated GPU: "
                + "its image holds no PTX for compute capability 90 or below"));

        // cublasGemmEx: one launch of the generated kernel, whose image reached the service in that call.
        List<Launch> gemmEx = between(all, seq.get("gemmex"), seq.get("destroy"));
        assertEquals(all.toString(), 1, gemmEx.size());
        Launch g = gemmEx.get(0);
        assertEquals(g.toString(), GEMMEX_KERNEL, g.kernel);
        assertEquals(g.toString(), GEMMEX_PARAMS, g.params);
        assertEquals(g.toString(), CuResult.NOT_SUPPORTED, g.result);
        assertTrue(r.out, r.out.contains("result cublasGemmEx=failed 801\n"));
        assertTrue(service.log(), service.log().contains("kernel " + GEMMEX_KERNEL + " cannot run on the simulated GPU"));
        assertNull("a library file holds " + GEMMEX_KERNEL + ": check it against the file",
                declaredFor(declared, GEMMEX_KERNEL));
        ServiceFixture.ImageStats loaded = images.get("destroy").since(images.get("gemmex"));
        assertTrue("cublasGemmEx loaded no image: " + loaded, loaded.hits() + loaded.misses() >= 1);

        // cublasDestroy_v2 and the exit launch nothing, print no shim warning, and end the session.
        assertEquals(all.toString(), List.of(), launchesAfter(seq.get("destroy")));
        assertFalse(r.err, r.err.contains("vgpu["));
        Await.until(10_000, () -> {
            Result sessions = service.ctl("sessions");
            assertFalse(sessions.out, sessions.out.contains("test_cublas12"));
        });
    }

    private static List<Launch> between(List<Launch> launches, long after, long upTo) {
        return launches.stream().filter(l -> l.seq > after && l.seq <= upTo).toList();
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** The "prop field=value" lines the device-property programs print. */
    private static Map<String, String> props(String out) {
        Map<String, String> props = new TreeMap<>();
        for (String line : out.split("\n")) {
            if (line.startsWith("prop ")) {
                int eq = line.indexOf('=');
                props.put(line.substring(5, eq), line.substring(eq + 1));
            }
        }
        return props;
    }

    /** The configured values, and the H100 values the mock keeps for everything not configured. */
    private static void assertConfiguredDevice(Map<String, String> p) {
        assertEquals(p.toString(), NAME, p.get("name"));
        assertEquals(UUID.substring(4).replace("-", ""), p.get("uuid"));
        assertEquals(Long.toString(MEMORY_MIB << 20), p.get("totalGlobalMem"));
        assertEquals(Integer.toString(SMS), p.get("multiProcessorCount"));
        assertEquals("9", p.get("major"));
        assertEquals("0", p.get("minor"));
        assertEquals(Integer.toString(PCI_DOMAIN), p.get("pciDomainID"));
        assertEquals(Integer.toString(PCI_BUS), p.get("pciBusID"));
        assertEquals(Integer.toString(PCI_DEVICE), p.get("pciDeviceID"));
        assertEquals(String.format("%04x:%02x:%02x.0", PCI_DOMAIN, PCI_BUS, PCI_DEVICE), p.get("pciBusIdString"));
        assertEquals(Integer.toString(CLOCK_KHZ), p.get("clockRate"));
        assertEquals(Integer.toString(MEMORY_CLOCK_KHZ), p.get("memoryClockRate"));
        assertEquals(Integer.toString(MEMORY_BUS_WIDTH), p.get("memoryBusWidth"));
        assertEquals(Integer.toString(L2_CACHE_BYTES), p.get("l2CacheSize"));
        assertEquals(Integer.toString(PCI_DEVICE_ID << 16 | 0x10de), p.get("gpuPciDeviceId"));
        Map<String, String> h100 = new TreeMap<>();
        h100.put("warpSize", "32");
        h100.put("maxThreadsPerBlock", "1024");
        h100.put("maxThreadsDim[0]", "1024");
        h100.put("maxThreadsDim[1]", "1024");
        h100.put("maxThreadsDim[2]", "64");
        h100.put("maxGridSize[0]", "2147483647");
        h100.put("maxGridSize[1]", "65535");
        h100.put("maxGridSize[2]", "65535");
        h100.put("sharedMemPerBlock", "49152");
        h100.put("sharedMemPerBlockOptin", "232448");
        h100.put("sharedMemPerMultiprocessor", "233472");
        h100.put("regsPerBlock", "65536");
        h100.put("regsPerMultiprocessor", "65536");
        h100.put("maxThreadsPerMultiProcessor", "2048");
        h100.put("maxBlocksPerMultiProcessor", "32");
        h100.put("totalConstMem", "65536");
        h100.put("integrated", "0");
        h100.put("unifiedAddressing", "1");
        // Features vgpu does not provide are reported absent, so the runtime takes its fallbacks.
        h100.put("managedMemory", "0");
        h100.put("memoryPoolsSupported", "0");
        h100.put("canMapHostMemory", "0");
        h100.put("concurrentKernels", "1");
        h100.put("clusterLaunch", "1");
        h100.forEach((k, v) -> assertEquals(k, v, p.get(k)));
    }

    private static Set<Integer> declaredFor(Map<String, Set<Integer>> declared, String recorded) {
        Set<Integer> exact = declared.get(recorded);
        if (exact != null) {
            return exact;
        }
        // The launch log keeps 128 bytes of a name; cuBLAS's are often longer.
        if (recorded.length() >= 127) {
            Set<Integer> sizes = new TreeSet<>();
            declared.forEach((name, s) -> {
                if (name.startsWith(recorded)) {
                    sizes.addAll(s);
                }
            });
            return sizes.isEmpty() ? null : sizes;
        }
        return null;
    }

    /**
     * Kernel name to parameter-buffer sizes, from every fatbin in the libraries' .nv_fatbin
     * sections, parsed for sm_90 as the service parses what the shim uploads.
     */
    private static Map<String, Set<Integer>> declaredParamSizes(List<Path> libraries) throws IOException {
        Map<String, Set<Integer>> out = new HashMap<>();
        for (Path lib : libraries) {
            try (FileChannel ch = FileChannel.open(lib)) {
                ByteBuffer section = elfSection(ch, ".nv_fatbin");
                assertNotNull(lib + " has no .nv_fatbin section", section);
                int pos = 0;
                while (pos + 16 <= section.limit()) {
                    if (section.getInt(pos) != ImageParser.FATBIN_MAGIC) {
                        pos += 8;
                        continue;
                    }
                    int headerSize = Short.toUnsignedInt(section.getShort(pos + 6));
                    long size = headerSize + section.getLong(pos + 8);
                    assertTrue(lib + ": container at " + pos + " runs past the section",
                            pos + size <= section.limit());
                    byte[] container = new byte[(int) size];
                    section.get(pos, container);
                    try {
                        ModuleImage image = ImageParser.parse(container, 90);
                        for (KernelInfo k : image.kernels) {
                            out.computeIfAbsent(k.name, n -> new TreeSet<>()).add(k.paramBufferSize);
                        }
                    } catch (ImageFormatException e) {
                        // No code for sm_90 in this container: the service could not load it either.
                    }
                    pos = (int) ((pos + size + 7) & ~7L);
                }
            }
        }
        return out;
    }

    /** A section of an ELF64 little-endian file, mapped. */
    private static ByteBuffer elfSection(FileChannel ch, String name) throws IOException {
        ByteBuffer header = ch.map(FileChannel.MapMode.READ_ONLY, 0, 64).order(ByteOrder.LITTLE_ENDIAN);
        long shoff = header.getLong(0x28);
        int shentsize = Short.toUnsignedInt(header.getShort(0x3a));
        int shnum = Short.toUnsignedInt(header.getShort(0x3c));
        int shstrndx = Short.toUnsignedInt(header.getShort(0x3e));
        ByteBuffer sh = ch.map(FileChannel.MapMode.READ_ONLY, shoff, (long) shentsize * shnum)
                .order(ByteOrder.LITTLE_ENDIAN);
        long strOff = sh.getLong(shstrndx * shentsize + 24);
        long strSize = sh.getLong(shstrndx * shentsize + 32);
        ByteBuffer strtab = ch.map(FileChannel.MapMode.READ_ONLY, strOff, strSize);
        for (int i = 0; i < shnum; i++) {
            int nameOff = sh.getInt(i * shentsize);
            int end = nameOff;
            while (strtab.get(end) != 0) {
                end++;
            }
            byte[] n = new byte[end - nameOff];
            strtab.get(nameOff, n);
            if (new String(n, StandardCharsets.US_ASCII).equals(name)) {
                long off = sh.getLong(i * shentsize + 24);
                long size = sh.getLong(i * shentsize + 32);
                return ch.map(FileChannel.MapMode.READ_ONLY, off, size).order(ByteOrder.LITTLE_ENDIAN);
            }
        }
        return null;
    }

    // ---- what the runtimes ask cuGetProcAddress for and do not get ------------------------------

    private static final Pattern DLSYM = Pattern.compile("dlsym (cu\\w+) (found|missing)");
    private static final Pattern GPA = Pattern.compile("cuGetProcAddress\\((\\S*), (\\d+), (\\d+)\\): (.*)$");

    /**
     * Runs a client with VGPU_LOG=debug and sorts what cuGetProcAddress refused: entry points that
     * are only NOT_SUPPORTED stubs (answered NOT_FOUND, which cudart tolerates), names the shim
     * does not know at all, and requests for a version below every variant. Writes the first kind to
     * target/entry-points/&lt;client&gt;.txt, the list the issue's closing note quotes.
     */
    private static Set<String> refusedEntryPoints(String client, Path program, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(program.toString());
        cmd.addAll(args);
        Result r = service.exec(cmd, Map.of("LD_LIBRARY_PATH", NATIVE.resolve("lib") + ":" + CUDART13, "VGPU_LOG", "debug",
                "VGPU_TEST_DLSYM", "1"), 300);
        assertEquals(client + "\n" + r, 0, r.exit);
        // Names looked up with dlsym, past cuGetProcAddress (only test_cublas12 reports these).
        Set<String> dlsymStubs = new TreeSet<>();
        Set<String> unsupported = new TreeSet<>(Files.readAllLines(NATIVE.resolve("unsupported.txt")));
        for (String line : r.err.split("\n")) {
            Matcher d = DLSYM.matcher(line);
            if (d.matches() && !d.group(1).startsWith("cublas")) {
                assertEquals(client + " could not find " + d.group(1) + " in libcuda.so.1", "found", d.group(2));
                if (unsupported.contains(d.group(1))) {
                    dlsymStubs.add(d.group(1));
                }
            }
        }
        if (!dlsymStubs.isEmpty()) {
            Path report = Path.of("target/entry-points").resolve(client + "-dlsym.txt");
            Files.createDirectories(report.getParent());
            Files.writeString(report, String.join("\n", dlsymStubs) + "\n");
            System.out.printf("%s: %d entry points looked up with dlsym are NOT_SUPPORTED stubs: %s%n", client,
                    dlsymStubs.size(), report.toAbsolutePath());
        }
        Set<String> stubs = new TreeSet<>();
        Set<String> unknown = new TreeSet<>();
        Set<String> tooOld = new TreeSet<>();
        for (String line : r.err.split("\n")) {
            Matcher m = GPA.matcher(line);
            if (!m.find()) {
                continue;
            }
            String name = m.group(1);
            String what = m.group(4);
            if (what.endsWith("is not supported, answering not found")) {
                stubs.add(name);
            } else if (what.equals("not found")) {
                unknown.add(name);
            } else if (what.equals("version not sufficient")) {
                tooOld.add(name + "@" + m.group(2));
            }
        }
        // cudart probes cuGetProcAddress itself with an empty name; every other name must be known.
        unknown.remove("");
        assertEquals(client + " asked for names the shim does not know", Set.of(), unknown);
        assertEquals(client + " asked for versions older than every variant", Set.of(), tooOld);
        Path report = Path.of("target/entry-points").resolve(client + ".txt");
        Files.createDirectories(report.getParent());
        Files.writeString(report, String.join("\n", stubs) + "\n");
        System.out.printf("%s: %d entry points requested through cuGetProcAddress are NOT_SUPPORTED stubs (answered NOT_FOUND): %s%n",
                client, stubs.size(), report.toAbsolutePath());
        return stubs;
    }

    @Test
    public void everyEntryPointTheRuntimesRequestIsKnownToTheShim() throws IOException {
        assumeNvccPrograms();
        Set<String> shared = refusedEntryPoints("cudart13-shared", PROGRAMS.resolve("rt_vector_add_shared"), List.of());
        Set<String> stat = refusedEntryPoints("cudart13-static", PROGRAMS.resolve("rt_vector_add_static"), List.of());
        assertEquals(shared, stat);
        // The entry points every CUDA program needs are never among the refused.
        for (String needed : List.of("cuInit", "cuMemAlloc", "cuMemcpyHtoD", "cuLaunchKernel", "cuLibraryLoadData",
                "cuStreamBeginCapture", "cuGraphInstantiate", "cuGraphLaunch")) {
            assertFalse(needed, shared.contains(needed));
        }
        if (Files.isRegularFile(CUDA12.resolve("libcublas.so.12"))) {
            Set<String> cudart12 = refusedEntryPoints("cudart12.6", NATIVE.resolve("test/test_cudart12"),
                    withCuda12(expectations()));
            Set<String> cublas = refusedEntryPoints("cublas12.6", NATIVE.resolve("test/test_cublas12"), List.of(CUDA12.toString()));
            assertTrue(cublas.containsAll(cudart12));
        }
    }

    private static List<String> withCuda12(List<String> args) {
        List<String> out = new ArrayList<>();
        out.add(CUDA12.toString());
        out.addAll(args);
        return out;
    }
}
