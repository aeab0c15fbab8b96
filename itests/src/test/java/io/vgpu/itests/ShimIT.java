package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.itests.ServiceFixture.ImageStats;
import io.vgpu.itests.ServiceFixture.Result;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
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
        // The UUID the shim reports must be the one the service names the device by.
        Matcher m = Pattern.compile("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").matcher(ctl("status").out);
        assertTrue("no device UUID in vgpu-ctl status", m.find());
        Result r = service.exec(List.of(NATIVE.resolve("test/test_device").toString()), Map.of("VGPU_TEST_EXPECT_UUID", m.group()), 120);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("0 failed"));
    }

    @Test
    public void callsAfterTeardownAreDeinitialized() {
        // Exit status 0 only if calls made after libcuda's destructor returned CUDA_ERROR_DEINITIALIZED.
        Result r = test("test_deinit");
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.out, r.out.contains("deinit: 3 checks, 0 failed"));
        assertTrue(r.out, r.out.contains("after teardown: cuInit 4, cuDeviceGetCount 4, cuMemAlloc 4, cuCtxGetCurrent 4"));
    }

    @Test
    public void memoryRoundTripsAreBitExact() {
        assertPasses("test_memory");
    }

    @Test
    public void pointerAttributesNameTheOwningContext() {
        assertPasses("test_pointer");
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
    public void hostileSizesAndHintsGetExactResultsAtOnce() {
        // Issue 13: cuMemsetD8(p, 0, 2^63 - 4096) and cuMemcpyDtoD(p + 1 MiB - 1, p, 2^63 - 4096)
        // answer CUDA_ERROR_INVALID_VALUE at once; cuMemAddressReserve with the hint
        // 0x7fffffffffe00000 succeeds inside the window, and the next cuMemAlloc stays there too.
        long t0 = System.nanoTime();
        assertPasses("test_hardening");
        long millis = (System.nanoTime() - t0) / 1_000_000;
        assertTrue("took " + millis + " ms", millis < 30_000);
        // The service is not left spinning: the management plane answers at once.
        long t1 = System.nanoTime();
        Result sessions = ctl("sessions");
        assertEquals(sessions.toString(), 0, sessions.exit);
        assertTrue("vgpu sessions took " + (System.nanoTime() - t1) / 1_000_000 + " ms",
                System.nanoTime() - t1 < TimeUnit.SECONDS.toNanos(MANAGEMENT_BOUND_SECONDS));
        assertTrue(service.log(), !service.log().contains("failed inside the service"));
    }

    /** What a management request may take while another client keeps the service busy. */
    static final long MANAGEMENT_BOUND_SECONDS = 3;

    @Test
    public void managementAnswersWhileAClientRunsALongKernelAndKillingItStopsTheKernel() throws Exception {
        int logFrom = service.log().length();
        ProcessBuilder pb = new ProcessBuilder(NATIVE.resolve("test/test_busy").toString(), "300");
        pb.environment().put("VGPU_SOCKET", service.socket().toString());
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.redirectErrorStream(true);
        Process busy = pb.start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(busy.getInputStream(), StandardCharsets.US_ASCII));
            assertEquals("spinning", out.readLine());
            String pid = Long.toString(busy.pid());
            Await.until(10_000, () -> assertTrue(ctl("sessions").out, ctl("sessions").out.lines()
                    .anyMatch(l -> l.contains(" " + pid + " "))));
            // The kernel's first thread prints this (device printf, to the service log) once it runs.
            Await.until(10_000, () -> assertTrue("the spin kernel has not started",
                    service.log().substring(logFrom).contains("vgpu test_busy: spin kernel running")));
            for (int i = 0; i < 5; i++) {
                for (String what : new String[] {"sessions", "status", "launches"}) {
                    long t0 = System.nanoTime();
                    Result r = ctl(what);
                    long millis = (System.nanoTime() - t0) / 1_000_000;
                    assertEquals(r.toString(), 0, r.exit);
                    assertTrue("vgpu " + what + " took " + millis + " ms while a kernel ran",
                            millis < MANAGEMENT_BOUND_SECONDS * 1000);
                }
            }
            // Other clients are served meanwhile.
            assertPasses("test_hardening");
            assertTrue("the kernel still runs", busy.isAlive());

            // SIGKILL mid-kernel: the service notices the hang-up, stops the kernel and frees the session
            // long before the kernel's five minutes are over.
            long t0 = System.nanoTime();
            busy.destroyForcibly();
            busy.waitFor();
            Await.until(15_000, () -> assertTrue(ctl("sessions").out, ctl("sessions").out.lines()
                    .noneMatch(l -> l.contains(" " + pid + " "))));
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(service.log(), service.log().contains("hung up while a request"));
            assertTrue("released after " + millis + " ms", millis < 15_000);
        } finally {
            busy.destroyForcibly();
        }
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

    /** The shim's bound on connecting and HELLO (conn.c HELLO_TIMEOUT_MS). */
    static final long HELLO_TIMEOUT_MS = 5_000;

    /**
     * Something on the socket that is not a working service: it accepts connections and hands
     * each one to {@code behaviour} on its own thread.
     */
    static final class FakeService implements AutoCloseable {
        interface Behaviour {
            void serve(SocketChannel c) throws Exception;
        }

        final Path path;
        private final ServerSocketChannel server;
        private final List<SocketChannel> accepted = new CopyOnWriteArrayList<>();
        private final Thread acceptor;

        FakeService(Path path, Behaviour behaviour) throws IOException {
            this.path = path;
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(path));
            acceptor = new Thread(() -> {
                try {
                    while (true) {
                        SocketChannel c = server.accept();
                        accepted.add(c);
                        Thread t = new Thread(() -> {
                            try {
                                behaviour.serve(c);
                            } catch (Exception e) {
                                // The client went away or the test closed the connection.
                            }
                        });
                        t.setDaemon(true);
                        t.start();
                    }
                } catch (IOException e) {
                    // closed
                }
            });
            acceptor.setDaemon(true);
            acceptor.start();
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (SocketChannel c : accepted) {
                c.close();
            }
            Files.deleteIfExists(path);
        }
    }

    static ByteBuffer readFully(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                throw new IOException("closed");
            }
        }
        return b.flip();
    }

    /** Reads one request frame (16-byte header, then its payload) and returns the header. */
    static ByteBuffer readFrame(SocketChannel c) throws IOException {
        ByteBuffer h = readFully(c, 16);
        readFully(c, h.getInt(0));
        return h;
    }

    static List<String> shmFilesOf(long pid) throws IOException {
        try (Stream<Path> files = Files.list(Path.of("/dev/shm"))) {
            return files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith("vgpu-" + pid + "-")).toList();
        }
    }

    @Test
    public void silentListenerFailsCuInitWithinTheHandshakeBound() throws Exception {
        try (FakeService silent = new FakeService(service.work().resolve("silent.sock"), c -> { })) {
            long t0 = System.nanoTime();
            Result r = exec(List.of(NATIVE.resolve("test/test_init").toString()), Map.of("VGPU_SOCKET", silent.path.toString()), 30);
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(r.toString(), 0, r.exit);
            assertTrue(r.toString(), r.out.contains("cuInit 46\n")); // CUDA_ERROR_DEVICE_UNAVAILABLE
            assertTrue(r.toString(), r.out.contains("cuDeviceGetCount 3\n")); // CUDA_ERROR_NOT_INITIALIZED
            assertEquals(r.err, 1, r.err.lines().count());
            assertTrue(r.err, r.err.contains(silent.path + " did not answer the handshake"));
            assertTrue("took " + millis + " ms", millis >= HELLO_TIMEOUT_MS - 100 && millis < HELLO_TIMEOUT_MS + 4_000);
        }
    }

    @Test
    public void clientKilledDuringTheHandshakeLeavesNoSharedMemoryFile() throws Exception {
        try (FakeService silent = new FakeService(service.work().resolve("silent2.sock"), c -> { })) {
            ProcessBuilder pb = new ProcessBuilder(NATIVE.resolve("test/test_init").toString());
            pb.environment().put("VGPU_SOCKET", silent.path.toString());
            pb.environment().put("VGPU_LOG", "debug");
            pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
            Process client = pb.start();
            long pid = client.pid();
            BufferedReader err = new BufferedReader(new InputStreamReader(client.getErrorStream(), StandardCharsets.UTF_8));
            // The shim says so once HELLO is on its way and it waits for the service to read it.
            String line;
            while ((line = err.readLine()) != null && !line.contains("waiting for the vgpu service")) {
                // earlier debug lines
            }
            assertTrue("the client never reached the handshake", line != null);
            assertTrue(client.isAlive());
            client.destroyForcibly(); // SIGKILL in the middle of the handshake
            assertTrue(client.waitFor(10, TimeUnit.SECONDS));
            assertEquals(List.of(), shmFilesOf(pid));
        }
    }

    @Test
    public void serviceDyingAfterTheHandshakeFailsCallsWithoutATimeout() throws Exception {
        CountDownLatch waiting = new CountDownLatch(1);
        CountDownLatch die = new CountDownLatch(1);
        // Answers HELLO like the service, then sits on the next request until told to die.
        FakeService.Behaviour answerThenDie = c -> {
            ByteBuffer hello = readFrame(c);
            ByteBuffer rep = ByteBuffer.allocate(16 + 48).order(ByteOrder.LITTLE_ENDIAN);
            rep.putInt(48).putShort((short) 1).putShort((short) 0).putInt(hello.getInt(8)).putInt(0);
            rep.putShort((short) 1).putShort((short) 0).putInt(0).putInt(13000).putInt(0).putLong(1).putLong(0).putLong(0)
                    .putInt(0).putInt(64 << 20);
            c.write(rep.flip());
            readFrame(c);
            waiting.countDown();
            die.await();
            c.close();
        };
        try (FakeService dying = new FakeService(service.work().resolve("dying.sock"), answerThenDie)) {
            ProcessBuilder pb = new ProcessBuilder(NATIVE.resolve("test/test_init").toString());
            pb.environment().put("VGPU_SOCKET", dying.path.toString());
            pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
            Process client = pb.start();
            assertTrue(waiting.await(10, TimeUnit.SECONDS));
            // A reply after the handshake may take as long as the work it waits for: no deadline.
            assertTrue("the client gave up on a slow reply", !client.waitFor(HELLO_TIMEOUT_MS + 1_000, TimeUnit.MILLISECONDS));
            long t0 = System.nanoTime();
            die.countDown();
            assertTrue(client.waitFor(10, TimeUnit.SECONDS));
            long millis = (System.nanoTime() - t0) / 1_000_000;
            String out = new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            String err = new String(client.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(out + err, out.contains("cuInit 46\n"));
            assertTrue(err, err.contains("lost the connection to the vgpu service"));
            assertTrue("took " + millis + " ms after the service died", millis < 2_000);
            assertEquals(List.of(), shmFilesOf(client.pid()));
        }
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
