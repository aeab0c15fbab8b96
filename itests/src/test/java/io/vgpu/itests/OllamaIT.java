package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * What Ollama and llama.cpp see through vgpu: Ollama's native GPU probe replayed against both
 * libraries (reference/ollama-contract.md §2.4, §2.5), NVML checked field by field against CUDA,
 * llama.cpp's prebuilt CUDA backend listing the device and moving tensor bytes, and `vgpu doctor`
 * on good and broken setups.
 */
public class OllamaIT {
    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture();

    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;
    static final String NAME = "NVIDIA H100 80GB HBM3";
    static final long TOTAL = 80L << 30;

    static final String GGML_VERSION = "3.22.1";
    static final String GGML_EXT_TGZ = "node-llama-cpp-linux-x64-cuda-ext-" + GGML_VERSION + ".tgz";
    static final String GGML_BASE_TGZ = "node-llama-cpp-linux-x64-cuda-" + GGML_VERSION + ".tgz";
    static final String GGML_CUDA_SO = "package/bins/linux-x64-cuda/fallback/libggml-cuda.so";
    static final String GGML_BASE_SO = "package/bins/linux-x64-cuda/libggml-base.so";

    static ServiceFixture.Result run(Map<String, String> env, long timeoutSeconds, String... command) {
        return SERVICE.exec(List.of(command), env, timeoutSeconds);
    }

    static String nativeFile(String path) {
        return NATIVE.resolve(path).toString();
    }

    /** key=value pairs of every line, last one wins; "device[0] name=..." lines keep their prefix out. */
    static Map<String, String> keys(String out) {
        Map<String, String> map = new HashMap<>();
        for (String line : out.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && !line.substring(0, eq).contains(" ")) {
                map.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return map;
    }

    /** The fields of one "prefix k=v k=v" line; values run to the next " key=". */
    static Map<String, String> fields(String out, String prefix) {
        for (String line : out.split("\n")) {
            if (line.startsWith(prefix + " ")) {
                Map<String, String> map = new LinkedHashMap<>();
                Matcher m = Pattern.compile("(\\w+)=(.*?)(?= \\w+=|$)").matcher(line.substring(prefix.length() + 1));
                while (m.find()) {
                    map.put(m.group(1), m.group(2));
                }
                return map;
            }
        }
        throw new AssertionError("no line starting with " + prefix + " in\n" + out);
    }

    /** The service's own description of the active device: uuid and PCI id, when its status says them. */
    static String[] serviceIdentity() {
        ServiceFixture.Result status = SERVICE.ctl("status");
        Matcher m = Pattern.compile("\\((GPU-[0-9a-f-]{36}), ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.0),").matcher(status.out);
        return m.find() ? new String[] {m.group(1), m.group(2)} : null;
    }

    // ------------------------------------------------------------------ Ollama's native probe

    static Map<String, String> assertOllamaProbe(Map<String, String> env) {
        ServiceFixture.Result r = run(env, 60, nativeFile("test/test_ollama_probe"));
        String why = env + "\n" + r + "\n--- service log\n" + SERVICE.log();
        assertEquals(why, 0, r.exit);
        Map<String, String> k = keys(r.out);
        assertEquals(why, "1", k.get("device_count"));
        assertTrue(why, Integer.parseInt(k.get("nvidia_driver_major")) >= 570);
        assertTrue(why, Integer.parseInt(k.get("cuda_driver_version")) >= 12080);
        assertEquals(why, "kept", k.get("cuda_v12[0]"));
        Map<String, String> d = fields(r.out, "device[0]");
        assertEquals(why, NAME, d.get("name"));
        assertEquals(why, "9.0", d.get("cc"));
        assertEquals(why, "0", d.get("integrated"));
        assertEquals(why, Long.toString(TOTAL), d.get("total"));
        assertTrue(why, d.get("uuid").matches("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
        assertTrue(why, d.get("pci_id").matches("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.0"));
        // Era B: NVML memory found by CUDA's UUID string, never NOT_SUPPORTED.
        Map<String, String> b = fields(r.out, "eraB[0]");
        assertEquals(why, d.get("uuid"), b.get("uuid"));
        assertEquals(why, NAME, b.get("nvml_name"));
        assertEquals(why, Long.toString(TOTAL), b.get("nvml_total"));
        assertTrue(why, Long.parseLong(b.get("nvml_free")) > 0);
        // Identity across the two libraries, as Ollama matches devices.
        Map<String, String> n = fields(r.out, "nvml[0]");
        assertEquals(why, d.get("uuid"), n.get("uuid"));
        assertEquals(why, d.get("pci_id"), n.get("bus_id_legacy").toLowerCase(Locale.ROOT));
        String[] truth = serviceIdentity();
        if (truth != null) {
            assertEquals(why, truth[0], d.get("uuid"));
            assertEquals(why, truth[1], d.get("pci_id"));
        }
        assertTrue(why, r.out.contains("ollama: msg=\"inference compute\" id=" + d.get("uuid") + " library=CUDA compute=9.0 name=CUDA0 description=\"" + NAME + "\""));
        return d;
    }

    @Test
    public void ollamaNativeProbeSeesTheMockH100() {
        assertOllamaProbe(Map.of());
    }

    @Test
    public void ollamaSecondPassWithAnOrdinalSeesTheSameDevice() {
        assertEquals(assertOllamaProbe(Map.of()), assertOllamaProbe(Map.of("CUDA_VISIBLE_DEVICES", "0")));
    }

    @Test
    public void ollamaSecondPassWithTheUuidSeesTheSameDevice() {
        Map<String, String> plain = assertOllamaProbe(Map.of());
        assertEquals(plain, assertOllamaProbe(Map.of("CUDA_VISIBLE_DEVICES", plain.get("uuid"))));
    }

    // ------------------------------------------------------------------ NVML against CUDA

    static final Set<String> AGREEMENT_FIELDS = new TreeSet<>(List.of("device_count", "cuda_driver_version",
            "cuda_driver_version_v1", "device0.name", "device0.uuid", "device0.memory_total", "device0.memory_total_v2",
            "device0.memory_free", "device0.memory_free_v2", "device0.memory_used", "device0.pci_bus_id_legacy",
            "device0.pci_bus_id", "device0.pci_domain", "device0.pci_bus", "device0.pci_device", "device0.pci_device_id",
            "device0.pci_subsystem_id", "device0.cc_major", "device0.cc_minor", "device0.memory_bus_width",
            "device0.max_sm_clock_mhz", "device0.max_memory_clock_mhz", "device0.multi_gpu_board", "device0.ecc_enabled",
            "device0.compute_mode", "device0.index", "device0.minor_number"));

    @Test
    public void nvmlAgreesWithCudaOnEveryFieldBothExpose() {
        ServiceFixture.Result r = run(Map.of(), 60, nativeFile("test/nvml_check"));
        String why = r + "\n--- service log\n" + SERVICE.log();
        assertEquals(why, 0, r.exit);
        Set<String> seen = new TreeSet<>();
        Pattern agree = Pattern.compile("agree (\\S+) cuda=(.*) nvml=(.*)");
        for (String line : r.out.split("\n")) {
            Matcher m = agree.matcher(line);
            if (m.matches()) {
                assertEquals(line, m.group(2), m.group(3));
                seen.add(m.group(1));
            }
            assertFalse(why, line.startsWith("check ") && line.endsWith(" FAIL"));
        }
        assertEquals(why, AGREEMENT_FIELDS, seen);
        assertTrue(why, r.out.contains("check fork_child_queries ok") && r.out.contains("check reinit ok"));
    }

    @Test
    public void nvmlAndSmiListAProcessHoldingMemory() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(nativeFile("test/test_hold"), "4096");
        pb.environment().put("VGPU_SOCKET", SERVICE.socket().toString());
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.environment().remove("CUDA_VISIBLE_DEVICES");
        pb.redirectErrorStream(true);
        Process hold = pb.start();
        try {
            byte[] line = new byte[64];
            int n = hold.getInputStream().read(line);
            assertTrue(n > 0 && new String(line, 0, n, StandardCharsets.US_ASCII).startsWith("holding"));
            String pid = Long.toString(hold.pid());
            ServiceFixture.Result procs = run(Map.of(), 30, nativeFile("test/nvml_check"), "procs");
            assertEquals(procs.toString(), 0, procs.exit);
            for (String abi : List.of("v3", "v2")) {
                assertTrue(procs.out, procs.out.contains("process " + abi + " device=0 pid=" + pid + " used=" + (4096L << 20)
                        + " gi=4294967295 ci=4294967295\n"));
            }
            assertTrue(procs.out, procs.out.contains("process v1 device=0 pid=" + pid + " used=" + (4096L << 20) + "\n"));
            assertTrue(procs.out, Long.parseLong(keys(procs.out).get("device0.used")) >= 4096L << 20);
            // The size query answers INSUFFICIENT_SIZE (7) with the count, as NVML does.
            assertTrue(procs.out, procs.out.matches("(?s).*device0.count_query rc=7 count=[1-9].*"));

            ServiceFixture.Result smi = vgpu(Map.of(), "smi");
            assertEquals(smi.toString(), 0, smi.exit);
            assertTrue(smi.out, smi.out.contains(NAME) && smi.out.contains("Driver Version: 5"));
            assertTrue(smi.out, smi.out.lines().anyMatch(l -> l.contains(" " + pid + " ") && l.contains("test_hold")
                    && l.contains("4096MiB")));
            assertTrue(smi.out, smi.out.contains("4096MiB / 81920MiB"));
        } finally {
            hold.destroyForcibly();
            hold.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    public void nvmlWithoutAServiceSaysDriverNotLoadedInOneLine() {
        Path nobody = SERVICE.work().resolve("nobody-listens.sock");
        ServiceFixture.Result r = run(Map.of("VGPU_SOCKET", nobody.toString()), 30, nativeFile("bin/vgpu-probe"), "smi",
                "--nvml", nativeFile("lib/libnvidia-ml.so.1"));
        assertEquals(r.toString(), 1, r.exit);
        assertTrue(r.toString(), r.err.contains("nvmlInit failed: Driver Not Loaded"));
        assertEquals(r.toString(), 1, r.err.lines().filter(l -> l.contains("the vgpu service is not running")
                && l.contains(nobody.toString())).count());
    }

    // ------------------------------------------------------------------ vgpu doctor and smi

    /** The distribution's CLI, its probe from the build tree until the distribution carries one. */
    static ServiceFixture.Result vgpu(Map<String, String> env, String... args) {
        Map<String, String> all = new HashMap<>();
        Path probe = DIST.resolve("lib/vgpu-probe");
        all.put("VGPU_PROBE", Files.isExecutable(probe) ? probe.toString() : nativeFile("bin/vgpu-probe"));
        // Never the machine's own Ollama: an empty stand-in for its library directory.
        Path ollama = SERVICE.work().resolve("ollama-lib");
        try {
            Files.createDirectories(ollama);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        all.put("VGPU_DOCTOR_OLLAMA_DIRS", ollama.toString());
        // Never the machine's own ollama user either: the user running the tests stands in.
        all.put("VGPU_DOCTOR_OLLAMA_USER", ME);
        all.put("LD_PRELOAD", "");
        all.putAll(env);
        List<String> cmd = new ArrayList<>();
        cmd.add(DIST.resolve("bin/vgpu").toString());
        cmd.addAll(List.of(args));
        return SERVICE.exec(cmd, all, 120);
    }

    static final String ME = System.getProperty("user.name");

    static List<String> failLines(String out) {
        return out.lines().filter(l -> l.startsWith("FAIL")).toList();
    }

    @Test
    public void doctorReportsOkForAGoodSetup() {
        ServiceFixture.Result r = vgpu(Map.of(), "doctor", "--lib-dir", nativeFile("lib"));
        String lib = NATIVE.resolve("lib").toString();
        // A machine with NVIDIA's driver in its loader cache is told so; that is the one FAIL allowed here.
        List<String> fails = failLines(r.out).stream().filter(l -> !l.startsWith("FAIL loader cache:")).toList();
        assertEquals(r.toString(), List.of(), fails);
        if (failLines(r.out).isEmpty()) {
            assertEquals(r.toString(), 0, r.exit);
        }
        for (String expected : List.of(
                "OK   " + lib + "/libcuda.so.1 is vgpu's",
                "OK   " + lib + "/libnvidia-ml.so.1 is vgpu's",
                "OK   LD_LIBRARY_PATH: " + lib + "/libcuda.so.1 (vgpu) is the first libcuda.so.1 on the path",
                "OK   no libcuda or libnvidia-ml copies under Ollama's library directories",
                "OK   service at " + SERVICE.socket() + " answers",
                "OK   active backend: mock (available)",
                "OK   user " + ME + " can reach " + SERVICE.socket(),
                "OK   dlopen(libcuda.so.1) loads " + lib + "/libcuda.so.1",
                "OK   dlopen(libnvidia-ml.so.1) loads " + lib + "/libnvidia-ml.so.1",
                "OK   cuInit(0) = 0",
                "OK   cuDeviceGetCount: 1 device(s)",
                "OK   device 0: " + NAME + ", 81920 MiB",
                "OK   nvmlInit_v2 = 0; driver 5",
                "OK   device 0: NVML agrees with CUDA on name, UUID, memory")) {
            assertTrue(expected + "\n" + r, r.out.lines().anyMatch(l -> l.startsWith(expected)));
        }
        assertTrue(r.toString(), r.out.lines().filter(l -> l.contains("dlopen(")).allMatch(l -> l.endsWith("(vgpu)")));
    }

    @Test
    public void doctorFailsNamingTheSocketWhenNoServiceListens() throws Exception {
        Path nobody = SERVICE.work().resolve("stopped.sock");
        ServiceFixture.Result r = vgpu(Map.of("VGPU_SOCKET", nobody.toString()), "doctor", "--lib-dir", nativeFile("lib"));
        assertNotEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), failLines(r.out).stream().anyMatch(l -> l.contains("service socket " + nobody)
                && l.contains("start the service")));
        assertTrue(r.toString(), r.out.contains("FAIL cuInit(0) = 46 (CUDA_ERROR_DEVICE_UNAVAILABLE)"));
        // NVML's side still gets its line: Ollama asks NVML before CUDA.
        assertTrue(r.toString(), r.out.contains("FAIL nvmlInit_v2 = 9 (Driver Not Loaded): the vgpu service is not reachable"));
        // The loader's answers still come: they matter most when nothing works.
        assertTrue(r.toString(), r.out.contains("OK   dlopen(libnvidia-ml.so.1) loads "));
    }

    @Test
    public void doctorFailsOnALibcudaThatShadowsOurs() throws Exception {
        Path shadow = foreignLibcuda(SERVICE.work().resolve("shadow")).getParent();
        ServiceFixture.Result r = vgpu(Map.of("LD_LIBRARY_PATH", shadow + ":" + nativeFile("lib")), "doctor", "--lib-dir",
                nativeFile("lib"));
        assertNotEquals(r.toString(), 0, r.exit);
        String fake = shadow.resolve("libcuda.so.1").toString();
        assertTrue(r.toString(), r.out.contains("FAIL LD_LIBRARY_PATH: " + fake + " is not vgpu's"));
        assertTrue(r.toString(), r.out.contains("FAIL dlopen(libcuda.so.1) loads " + fake + ", which is not vgpu's"));
    }

    /** A shared object with libcuda.so.1's soname that is not vgpu's: a stand-in for NVIDIA's or an old shim. */
    static Path foreignLibcuda(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path src = dir.resolve("dummy.c");
        Files.writeString(src, "int cuDummy(void) { return 0; }\n");
        Path lib = dir.resolve("libcuda.so.1");
        ServiceFixture.Result cc = run(Map.of(), 60, "gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o",
                lib.toString(), src.toString());
        assertEquals(cc.toString(), 0, cc.exit);
        return lib;
    }

    @Test
    public void doctorNamesAStaleLdPreloadAndWhatToDo() throws Exception {
        Path gone = SERVICE.work().resolve("removed/libcuda-shim-old.so");
        ServiceFixture.Result r = vgpu(Map.of("LD_PRELOAD", gone.toString()), "doctor", "--lib-dir", nativeFile("lib"));
        assertTrue(r.toString(), r.out.contains("WARN LD_PRELOAD names " + gone + ", which does not exist: every program prints "
                + "a loader error for it; unset LD_PRELOAD"));
        assertEquals(r.toString(), List.of(), failLines(r.out).stream().filter(l -> !l.startsWith("FAIL loader cache:")).toList());

        // An old shim preloaded wins over ours in every process: the probe's dlopen gets it too.
        Path old = foreignLibcuda(SERVICE.work().resolve("old-shim"));
        r = vgpu(Map.of("LD_PRELOAD", old.toString()), "doctor", "--lib-dir", nativeFile("lib"));
        assertNotEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("FAIL LD_PRELOAD loads " + old + ", which is not vgpu's libcuda/libnvidia-ml: it "
                + "wins over vgpu's in every process; unset LD_PRELOAD"));
        assertTrue(r.toString(), r.out.contains("FAIL dlopen(libcuda.so.1) loads " + old + ", which is not vgpu's"));
    }

    /** A real NVIDIA driver's libcuda.so.1 ahead of ours in the loader cache, in a private mount namespace. */
    @Test
    public void doctorFailsOnANonVgpuLibcudaEarlierInTheLoaderCache() throws Exception {
        boolean unshare = run(Map.of(), 30, "unshare", "-rm", "true").exit == 0;
        assumeTrue("SKIP: unshare -rm (user and mount namespaces) is not available here", unshare);
        Path t = Files.createTempDirectory(SERVICE.work(), "cache");
        Path nvidia = foreignLibcuda(t.resolve("nvidia"));
        Path script = t.resolve("shadow.sh");
        Files.writeString(script, String.join("\n",
                "set -euo pipefail",
                "T=$1 V=$2/bin/vgpu",
                // A private /etc holding only the loader's configuration, as ShimIT installs.
                "mkdir -p \"$T/etc\"",
                "cp -r /etc/ld.so.conf /etc/ld.so.conf.d \"$T/etc/\"",
                "mount --bind \"$T/etc\" /etc",
                "\"$V\" install --lib-dir \"$T/lib\" --bin-dir \"$T/bin\" > /dev/null",
                // ld.so.conf.d is read in name order: a driver package's file sorts before vgpu.conf.
                "echo \"$T/nvidia\" > /etc/ld.so.conf.d/000-nvidia-driver.conf",
                "ldconfig",
                "unset LD_LIBRARY_PATH",
                "exec \"$V\" doctor --lib-dir \"$T/lib\"",
                ""));
        Map<String, String> env = new HashMap<>();
        env.put("VGPU_DOCTOR_OLLAMA_DIRS", SERVICE.work().resolve("ollama-lib").toString());
        env.put("LD_LIBRARY_PATH", "");
        env.put("LD_PRELOAD", "");
        ServiceFixture.Result r = run(env, 120, "unshare", "-rm", "bash", script.toString(), t.toString(), DIST.toString());
        assertNotEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("FAIL loader cache: libcuda.so.1 => " + nvidia + ", which is not vgpu's (an "
                + "NVIDIA driver?): programs without vgpu on LD_LIBRARY_PATH load it; remove that package or file and run ldconfig"));
        assertTrue(r.toString(), r.out.contains("OK   loader cache: libnvidia-ml.so.1 => " + t.resolve("lib/libnvidia-ml.so.1")));
        assertTrue(r.toString(), r.out.contains("FAIL dlopen(libcuda.so.1) loads " + nvidia + ", which is not vgpu's"));
    }

    @Test
    public void doctorSaysWhoMayConnectAndWhetherTheOllamaUserCan() throws Exception {
        Path sock = SERVICE.socket();
        PosixFileAttributes a = Files.readAttributes(sock, PosixFileAttributes.class);
        String owner = a.owner().getName(), group = a.group().getName();
        ServiceFixture.Result r = vgpu(Map.of(), "doctor", "--lib-dir", nativeFile("lib"));
        assertTrue(r.toString(), r.out.contains("INFO service socket " + sock + " (owner " + owner + ", group " + group
                + ", mode 660): who may connect: root" + (owner.equals("root") ? "" : ", " + owner + " (owner)") + " and group "
                + group + " (members: "));
        assertTrue(r.toString(), r.out.contains("OK   user " + ME + " can reach " + sock + "\n"));

        boolean nobody = run(Map.of(), 30, "getent", "passwd", "nobody").exit == 0;
        assumeTrue("SKIP: no user nobody to play a service user outside the socket's group", nobody && !ME.equals("nobody"));
        // The fixture's directory is private (0700): nobody cannot even get to the socket.
        r = vgpu(Map.of("VGPU_DOCTOR_OLLAMA_USER", "nobody"), "doctor", "--lib-dir", nativeFile("lib"));
        assertNotEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("FAIL user nobody cannot reach " + sock + ": it cannot enter " + SERVICE.work()
                + " (owner " + owner + ", group " + group + ", mode 700)"));
        // Once it may enter, what is missing is the socket's group.
        Set<PosixFilePermission> before = Files.getPosixFilePermissions(SERVICE.work());
        try {
            Files.setPosixFilePermissions(SERVICE.work(), PosixFilePermissions.fromString("rwx--x--x"));
            r = vgpu(Map.of("VGPU_DOCTOR_OLLAMA_USER", "nobody"), "doctor", "--lib-dir", nativeFile("lib"));
        } finally {
            Files.setPosixFilePermissions(SERVICE.work(), before);
        }
        String advice = group.equals("root") || group.equals(owner)
                ? "the socket's group is " + group + ": set socket.group = vgpu in conf/io.vgpu.bridge.cfg, restart the service, "
                        + "then `groupadd -f vgpu && usermod -aG vgpu nobody` and restart nobody's service"
                : "it is not in group " + group + ": `usermod -aG " + group + " nobody`, then restart nobody's service";
        assertTrue(r.toString(), r.out.contains("FAIL user nobody cannot reach " + sock + ": " + advice + "\n"));
    }

    @Test
    public void doctorFailsOnACopyInsideOllamasLibraryDirectory() throws Exception {
        Path ollama = Files.createDirectories(SERVICE.work().resolve("ollama-with-copy/cuda_v12"));
        Path copy = ollama.resolve("libcuda.so.1");
        Files.writeString(copy, "not a library\n");
        ServiceFixture.Result r = vgpu(Map.of("VGPU_DOCTOR_OLLAMA_DIRS", ollama.getParent().toString()), "doctor",
                "--lib-dir", nativeFile("lib"));
        assertNotEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("FAIL " + copy + " shadows vgpu's library for every Ollama runner"));
    }

    // ------------------------------------------------------------------ llama.cpp's CUDA backend

    /** The npm tarballs, fetched once into ~/.cache/vgpu/npm; null (with the reason printed) when they cannot be had. */
    static Path npmCache() throws InterruptedException {
        Path cache = Path.of(System.getProperty("user.home"), ".cache", "vgpu", "npm");
        if (Files.exists(cache.resolve(GGML_EXT_TGZ)) && Files.exists(cache.resolve(GGML_BASE_TGZ))) {
            return cache;
        }
        try {
            Files.createDirectories(cache);
            Process p = new ProcessBuilder("npm", "pack", "@node-llama-cpp/linux-x64-cuda-ext@" + GGML_VERSION,
                    "@node-llama-cpp/linux-x64-cuda@" + GGML_VERSION).directory(cache.toFile())
                    .redirectErrorStream(true).redirectOutput(cache.resolve("npm-pack.log").toFile()).start();
            if (!p.waitFor(20, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                System.out.println("SKIP llama.cpp test: npm pack timed out (" + cache.resolve("npm-pack.log") + ")");
                return null;
            }
            if (p.exitValue() != 0 || !Files.exists(cache.resolve(GGML_EXT_TGZ)) || !Files.exists(cache.resolve(GGML_BASE_TGZ))) {
                System.out.println("SKIP llama.cpp test: npm pack of @node-llama-cpp " + GGML_VERSION + " failed, see "
                        + cache.resolve("npm-pack.log"));
                return null;
            }
            return cache;
        } catch (IOException e) {
            System.out.println("SKIP llama.cpp test: npm is not available (" + e.getMessage() + ")");
            return null;
        }
    }

    /**
     * Extracts one member of a tarball into dir, unless an earlier run already did. Needs no
     * running service, so other test classes use it too.
     */
    static Path extract(Path tgz, String member, Path dir) {
        Path out = dir.resolve(member);
        try {
            if (Files.exists(out) && Files.size(out) > 0 && Files.getLastModifiedTime(out).compareTo(Files.getLastModifiedTime(tgz)) >= 0) {
                return out;
            }
            Files.createDirectories(dir);
            Path log = Files.createTempFile(dir, "tar", ".log");
            Process p = new ProcessBuilder("tar", "-xzf", tgz.toString(), "-C", dir.toString(), member)
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(600, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("tar -xzf " + tgz + " " + member + " timed out");
            }
            assertEquals("tar -xzf " + tgz + " " + member + ":\n" + Files.readString(log), 0, p.exitValue());
            Files.delete(log);
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        // tar keeps the archive's 1985 timestamps; mark the extraction time instead.
        assertTrue(out.toFile().setLastModified(System.currentTimeMillis()));
        return out;
    }

    @Test
    public void llamaCppCudaBackendListsTheMockAndRoundTripsATensor() throws Exception {
        Path cuda12 = Path.of(System.getProperty("vgpu.cuda12", "target/cuda12")).toAbsolutePath();
        assumeTrue("SKIP llama.cpp test: NVIDIA's CUDA 12 runtime is not in " + cuda12 + " (-Dvgpu.cuda12.skip=true?)",
                Files.exists(cuda12.resolve("libcudart.so.12")) && Files.exists(cuda12.resolve("libcublas.so.12")));
        Path cache = npmCache();
        assumeTrue("SKIP llama.cpp test: no @node-llama-cpp packages (see above)", cache != null);
        Path target = Path.of("target", "ggml").toAbsolutePath();
        Path cudaSo = extract(cache.resolve(GGML_EXT_TGZ), GGML_CUDA_SO, target.resolve("ext"));
        Path baseSo = extract(cache.resolve(GGML_BASE_TGZ), GGML_BASE_SO, target.resolve("base"));

        // libggml-cuda.so needs libcuda.so.1 (ours), cudart/cuBLAS 12 and libggml-base.so by DT_NEEDED.
        String path = String.join(":", nativeFile("lib"), cuda12.toString(), baseSo.getParent().toString());
        ServiceFixture.Result r = run(Map.of("LD_LIBRARY_PATH", path), 300, nativeFile("test/test_ggml"), baseSo.toString(),
                cudaSo.toString());
        String why = r + "\n--- service log (tail)\n" + tail(SERVICE.log(), 40);
        assertEquals(why, 0, r.exit);
        assertEquals(why, "1", keys(r.out).get("device_count"));
        // What `llama-server --list-devices` prints and Ollama parses.
        assertTrue(why, r.out.matches("(?s).*\n  CUDA0: " + Pattern.quote(NAME) + " \\(81920 MiB, [0-9]+ MiB free\\)\n.*"));
        Map<String, String> d = fields(r.out, "device[0]");
        assertEquals(why, Long.toString(TOTAL), d.get("total"));
        assertTrue(why, Long.parseLong(d.get("free")) > TOTAL / 2);
        assertEquals(why, "CUDA0", d.get("name"));
        assertTrue(why, r.out.contains("tensor_roundtrip=ok bytes=" + (1 << 20)));
        assertTrue(why, r.err.contains("ggml_cuda_init: found 1 CUDA devices"));
    }

    static String tail(String text, int lines) {
        List<String> all = text.lines().toList();
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }
}
