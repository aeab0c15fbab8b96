package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.itests.ServiceFixture.ImageStats;
import io.vgpu.itests.ServiceFixture.Result;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * End to end: the real service distribution on the mock backend, and C programs written against
 * the CUDA driver API, built with gcc and linked with -lcuda against our libcuda.so.1.
 */
public class ShimIT {
    static final Path DIST = ServiceFixture.DIST;
    static final Path NATIVE = ServiceFixture.NATIVE;

    @ClassRule
    public static final ServiceFixture service = new ServiceFixture();

    static Result test(String name, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(NATIVE.resolve("test").resolve(name).toString());
        cmd.addAll(List.of(args));
        return service.exec(cmd, Map.of(), 120);
    }

    static Result ctl(String... args) {
        return service.ctl(args);
    }

    static Result exec(List<String> command, Map<String, String> env, long timeoutSeconds) {
        return service.exec(command, env, timeoutSeconds);
    }

    static void assertPasses(String name) {
        Result r = test(name);
        assertEquals(name + "\n" + r + "\n--- service log\n" + service.log(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("0 failed"));
    }

    @Test
    public void deviceQueriesSeeTheMockH100() {
        assertPasses("test_device");
    }

    @Test
    public void memoryRoundTripsAreBitExact() {
        assertPasses("test_memory");
    }

    @Test
    public void ptxKernelRunsOnTheMock() {
        assertPasses("test_kernel");
        assertTrue(ctl("launches", "50").out.contains("vgpu_iota"));
    }

    @Test
    public void streamsAndEventsKeepOrder() {
        assertPasses("test_stream");
    }

    @Test
    public void streamCaptureRecordsAndGraphsReplay() {
        assertPasses("test_graph");
    }

    @Test
    public void perThreadEntryPointsTakeNullAsTheCallingThreadsOwnStream() {
        // _ptsz/_ptds forms by dlsym and by cuGetProcAddress_v2 flag 2: ids, capture, two threads.
        assertPasses("test_ptsz");
    }

    @Test
    public void contextsFollowTheDriverRules() {
        assertPasses("test_context");
    }

    @Test
    public void badHandlesGetExactErrors() {
        assertPasses("test_errors");
    }

    @Test
    public void exportTablesRefuseUnknownIdsAndKeepContextLocalStorage() {
        Result r = test("test_darkapi");
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("test_darkapi: ") && r.out.contains(" checks, 0 failed"));
        // It asks once for a table nobody defines: exactly one warning, naming it.
        String err = r.err;
        List<String> lines = err.lines().filter(l -> l.contains("76677075-2d74-6573-742d-756e6b6e6f77")).toList();
        assertEquals(err, 1, lines.size());
        assertTrue(err, lines.get(0).contains(" WARN ") && lines.get(0).contains("cuGetExportTable: unknown table"));
        assertEquals(err, 1, err.lines().filter(l -> l.contains("cuGetExportTable")).count());
    }

    @Test
    public void librariesRunThroughKernelsAndFunctionsAndUploadLazilyOncePerService() {
        // A fresh image: its PTX carries this nonce, so no earlier test can have uploaded it.
        String nonce = UUID.randomUUID().toString();
        List<String> cmd = List.of(NATIVE.resolve("test/test_library").toString(), nonce, "steps");
        Map<String, ImageStats> at = new LinkedHashMap<>();
        Result first = service.execSteps(cmd, Map.of(), 120, name -> at.put(name, service.imageStats()));
        assertEquals(first + "\n--- service log\n" + service.log(), 0, first.exit);
        assertTrue(first.toString(), first.out.contains("test_library: ") && first.out.contains(" checks, 0 failed"));
        assertEquals(first.out, List.of("start", "loaded", "kernel", "global", "second-context"), List.copyOf(at.keySet()));
        Matcher m = Pattern.compile("image bytes=(\\d+)").matcher(first.out);
        assertTrue(first.out, m.find());
        long size = Long.parseLong(m.group(1));
        ImageStats none = new ImageStats(0, 0, 0, 0, 0, 0);

        // cuLibraryLoadData sends nothing; the first kernel lookup asks by hash, misses, uploads once.
        assertEquals(none, at.get("loaded").since(at.get("start")));
        assertEquals(new ImageStats(1, size, 1, size, 0, 1), at.get("kernel").since(at.get("loaded")));
        // More lookups, launches and the global in that context: nothing more.
        assertEquals(none, at.get("global").since(at.get("kernel")));
        // A second context loads it by hash.
        assertEquals(new ImageStats(0, 0, 0, 0, 1, 0), at.get("second-context").since(at.get("global")));
        ImageStats end = service.imageStats();
        assertEquals(none, end.since(at.get("second-context")));

        // Another process with the same image: named by hash in both its contexts, never sent.
        Result second = test("test_library", nonce);
        assertEquals(second.toString(), 0, second.exit);
        assertTrue(second.toString(), second.out.contains(" checks, 0 failed"));
        assertEquals(new ImageStats(0, 0, 0, 0, 2, 0), service.imageStats().since(end));
    }

    @Test
    public void forkedChildReconnectsOnItsOwn() {
        Result r = test("test_fork");
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.contains("fork child: ") && r.out.contains("fork parent: "));
    }

    private static String visible(String spec) {
        Result r = exec(List.of(NATIVE.resolve("test/test_visible").toString()), Map.of("CUDA_VISIBLE_DEVICES", spec), 30);
        assertEquals(r.toString(), 0, r.exit);
        return r.out.trim();
    }

    @Test
    public void cudaVisibleDevicesIsHonoured() {
        String all = test("test_visible").out.trim();
        assertTrue(all, all.matches("1 [0-9a-f]{32}"));
        String uuid = all.substring(2);
        String dashed = "GPU-" + uuid.substring(0, 8) + "-" + uuid.substring(8, 12) + "-" + uuid.substring(12, 16) + "-"
                + uuid.substring(16, 20) + "-" + uuid.substring(20);
        assertEquals(all, visible("0"));
        assertEquals(all, visible(dashed));
        assertEquals(all, visible("GPU-" + uuid.substring(0, 6)));
        assertEquals("0 -", visible("1"));
        assertEquals("0 -", visible("-1"));
        assertEquals("0 -", visible("nonsense"));
        assertEquals("0 -", visible(""));
    }

    @Test
    public void killedClientReleasesItsMemory() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(NATIVE.resolve("test/test_hold").toString(), "4096");
        pb.environment().put("VGPU_SOCKET", service.socket().toString());
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.redirectErrorStream(true);
        Process hold = pb.start();
        byte[] line = new byte[64];
        int n = hold.getInputStream().read(line);
        assertTrue(n > 0 && new String(line, 0, n, StandardCharsets.US_ASCII).startsWith("holding"));
        String pid = Long.toString(hold.pid());
        Await.until(10_000, () -> assertTrue(ctl("sessions").out, ctl("sessions").out.lines()
                .anyMatch(l -> l.contains(" " + pid + " ") && l.contains("4096 MiB"))));
        hold.destroyForcibly(); // SIGKILL, in the middle of its copy loop
        hold.waitFor();
        Await.until(10_000, () -> assertTrue(ctl("sessions").out, ctl("sessions").out.lines()
                .noneMatch(l -> l.contains(" " + pid + " "))));
        Result r = test("test_meminfo");
        assertEquals(r.toString(), "85899345920 85899345920", r.out.trim());
    }

    @Test
    public void unreachableServiceFailsFastWithOneClearLine() {
        long t0 = System.nanoTime();
        Result r = exec(List.of(NATIVE.resolve("test/test_visible").toString()),
                Map.of("VGPU_SOCKET", service.work().resolve("nobody-listens.sock").toString()), 30);
        long millis = (System.nanoTime() - t0) / 1_000_000;
        assertNotEquals(0, r.exit);
        assertTrue(r.err, r.err.contains("the vgpu service is not running") && r.err.contains("nobody-listens.sock"));
        assertEquals(r.err, 1, r.err.lines().filter(l -> l.contains("not running")).count());
        assertTrue("took " + millis + " ms", millis < 5_000);
    }

    @Test
    public void grandchildFindsTheLibraryThroughTheLoaderCache() throws Exception {
        boolean unshare = exec(List.of("unshare", "-rm", "true"), Map.of(), 30).exit == 0;
        assumeTrue("SKIP: unshare -rm (user and mount namespaces) is not available here", unshare);
        Path script = service.work().resolve("install-and-run.sh");
        Files.writeString(script, String.join("\n",
                "set -euo pipefail",
                "T=$1",
                // A private /etc holding only the loader's configuration, so vgpu install's ld.so.conf.d
                // entry and ldconfig's cache stay inside this mount namespace.
                "mkdir -p \"$T/etc\"",
                "cp -r /etc/ld.so.conf /etc/ld.so.conf.d \"$T/etc/\"",
                "mount --bind \"$T/etc\" /etc",
                "\"$2/bin/vgpu\" install --lib-dir \"$T/lib\"",
                "unset LD_LIBRARY_PATH",
                "LD_PRELOAD=libvgpu-nonexistent-preload.so exec \"$3\" parent",
                ""));
        Path t = Files.createTempDirectory(service.work(), "ns");
        Result r = exec(List.of("unshare", "-rm", "bash", script.toString(), t.toString(), DIST.toString(),
                NATIVE.resolve("test/test_grandchild").toString()), Map.of("LD_LIBRARY_PATH", ""), 120);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.contains("grandchild: loaded " + t.resolve("lib") + "/libcuda.so.1"));
        assertTrue(r.out, r.out.contains("1 device(s): NVIDIA H100 80GB HBM3"));
    }

    @Test
    public void demoRunsThroughTheShim() {
        Result r = exec(List.of(DIST.resolve("bin/vgpu").toString(), "demo"), Map.of("LD_LIBRARY_PATH", ""), 120);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.contains("NVIDIA H100 80GB HBM3") && r.out.contains("all results correct")
                && r.out.contains("PASS") && r.out.contains("vgpu_saxpy"));
    }
}
