package io.vgpu.shim.bridge.internal;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.backend.mock.MockBackend;
import io.vgpu.core.internal.Router;
import io.vgpu.core.internal.TestRouters;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.reflect.Field;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

/**
 * What both fuzz targets run against: the real core ({@link Router}) and the simulated GPU,
 * without a framework; a {@link BridgeServer} for the connections; a well-behaved
 * {@link FuzzBystander} session; and the checks every input must pass.
 *
 * <p>Each input runs on a worker thread under a deadline ({@code vgpu.fuzz.input_timeout_ms},
 * default 10 s): one that overruns is a hang, reported with the worker's stack. After each input
 * nothing may be left behind (no session but the bystander, the address window, device memory and
 * every backend table as before, no session slot, no unexpected WARN or ERROR line) and the
 * bystander must pass {@link FuzzBystander#check}. Every 4096 inputs the process is checked too:
 * open file descriptors, threads, and mappings of our shared-memory files.
 */
final class FuzzRig implements AutoCloseable {
    static final long INPUT_TIMEOUT_MS = Long.getLong("vgpu.fuzz.input_timeout_ms", 10_000);
    /** A small device, so that the largest legal copy or memset stays quick. */
    static final long DEVICE_MIB = 32;
    /** Names of the shared-memory files the rig creates in /dev/shm; nothing else there is touched. */
    static final String SHM_PREFIX = "vgpu-fuzz-" + ProcessHandle.current().pid() + "-";
    private static final String[] MOCK_TABLES = {"contexts", "modules", "functions", "streams", "events", "physicalHandles"};

    final FuzzLogTap log = FuzzLogTap.install();
    final MockBackend mock;
    final Router router;
    final BridgeServer bridge;
    /** The same without the spin before a blocking read (spin_micros 0: FrameChannel stays blocking). */
    final BridgeServer blockingBridge;
    final Path dir;
    private final ServerSocketChannel listener;
    private final Path listenerPath;
    private final List<SocketChannel> keep = new ArrayList<>();
    final FrameChannel fuzzIo;
    FuzzBystander bystander;

    private ExecutorService worker;
    private final AtomicReference<Thread> workerThread = new AtomicReference<>();
    private long shmFiles;
    /** Set once an input hung: its worker still holds the session's lock, so closing it would block. */
    private volatile boolean hung;

    private long addressUsed;
    private Map<Long, Long> addressFree;
    private long deviceFree;
    private long materialised;
    private final int[] tables = new int[MOCK_TABLES.length];
    private long fds;
    private int threads;
    long inputs;

    FuzzRig() throws IOException {
        mock = new MockBackend(TestRouters.config(MockBackend.Config.class,
                Map.of("memory_mib", DEVICE_MIB, "ptx_workers", 1, "watchdog_ms", 2000L)));
        router = TestRouters.withBackend(mock, "mock");
        dir = Files.createTempDirectory(Path.of("/tmp"), "vgpu-fz");
        bridge = new BridgeServer(router, TestRouters.config(BridgeServer.Config.class, Map.of("socket", dir.resolve("b.sock").toString())));
        blockingBridge = new BridgeServer(router, TestRouters.config(BridgeServer.Config.class,
                Map.of("socket", dir.resolve("c.sock").toString(), "spin_micros", 0)));
        listenerPath = dir.resolve("p.sock");
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(listenerPath));
        fuzzIo = new FrameChannel(keptPair()[1], 0);
        bystander = new FuzzBystander(router, new FrameChannel(keptPair()[1], 0), bridge.quotas());
        worker = newWorker();
        baseline();
    }

    private ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "vgpu-fuzz-worker");
            t.setDaemon(true);
            workerThread.set(t);
            return t;
        });
    }

    /** A connected pair of Unix stream sockets: client, then the service's end. */
    SocketChannel[] pair() throws IOException {
        SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(listenerPath));
        SocketChannel server = listener.accept();
        return new SocketChannel[] {client, server};
    }

    /** A pair whose ends stay open for the whole run (for channels used only for their buffers). */
    private SocketChannel[] keptPair() throws IOException {
        SocketChannel[] p = pair();
        keep.add(p[0]);
        keep.add(p[1]);
        return p;
    }

    /** A new empty file of {@code size} bytes in /dev/shm that only this rig uses. */
    Path shmFile(long size) throws IOException {
        Path p = SharedMemory.DIR.resolve(SHM_PREFIX + (shmFiles++));
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    /** Runs one input's work on the worker under the deadline; a hang fails with the worker's stack. */
    <T> T bounded(String what, Callable<T> work) throws Exception {
        if (hung) {
            throw new AssertionError("an earlier input hung and still holds its session; the rig cannot run this one");
        }
        Future<T> f = worker.submit(work);
        try {
            return f.get(INPUT_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw hang(what);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Error) {
                throw (Error) cause;
            }
            throw (Exception) cause;
        }
    }

    /** The worker ran past the deadline: its stack, and a fresh worker for what follows. */
    AssertionError hang(String what) {
        Thread t = workerThread.get();
        StringBuilder b = new StringBuilder("hang: ").append(what).append(" still running after ").append(INPUT_TIMEOUT_MS)
                .append(" ms; the worker is at:");
        for (StackTraceElement e : t.getStackTrace()) {
            b.append("\n\tat ").append(e);
        }
        hung = true;
        worker.shutdownNow();
        worker = newWorker();
        return new AssertionError(b.toString());
    }

    /** True once an input hung (its session's lock is held for good). */
    boolean hung() {
        return hung;
    }

    <T> Future<T> submit(Callable<T> work) {
        return worker.submit(work);
    }

    /**
     * The checks after each input. A failure re-takes the baseline afterwards, so that one leaky
     * input does not fail every input after it.
     */
    void afterInput(String what) {
        inputs++;
        if (hung) {
            throw new AssertionError("an earlier input hung and still holds its session; the rig cannot check this one");
        }
        List<String> problems = new ArrayList<>();
        try {
            List<SessionInfo> sessions = router.sessions();
            if (sessions.size() != 1 || sessions.get(0).id != bystander.session.id()) {
                problems.add("sessions left open: " + sessions.stream().map(s -> s.id + " (" + s.processName + ", " + s.status + ")").toList());
            }
            long used = TestRouters.addressSpaceUsed(router);
            if (used != addressUsed) {
                problems.add("the address window has " + used + " bytes reserved, not " + addressUsed);
            }
            Map<Long, Long> free = TestRouters.addressSpaceFree(router);
            if (!free.equals(addressFree)) {
                problems.add("the address window's free ranges are " + hex(free) + ", not " + hex(addressFree));
            }
            long[] info = new long[2];
            mock.memGetInfo(0, info);
            if (info[0] != deviceFree) {
                problems.add("the device has " + info[0] + " bytes free, not " + deviceFree);
            }
            if (mock.materialisedBytes(0) != materialised) {
                problems.add("the device holds " + mock.materialisedBytes(0) + " bytes of pages, not " + materialised);
            }
            for (int i = 0; i < MOCK_TABLES.length; i++) {
                int n = table(MOCK_TABLES[i]);
                if (n != tables[i]) {
                    problems.add("the mock's " + MOCK_TABLES[i] + " has " + n + " entries, not " + tables[i]);
                }
            }
            int slots = ((java.util.concurrent.atomic.AtomicInteger) field(BridgeServer.class, "sessions").get(bridge)).get()
                    + ((java.util.concurrent.atomic.AtomicInteger) field(BridgeServer.class, "sessions").get(blockingBridge)).get();
            if (slots != 0) {
                problems.add("the bridge counts " + slots + " session slots taken, not 0");
            }
            problems.addAll(log.drainUnexpected());
            try {
                bystander.check(inputs);
            } catch (AssertionError e) {
                problems.add(e.getMessage());
            }
            if (inputs % 4096 == 0) {
                problems.addAll(processChecks());
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
        if (!problems.isEmpty()) {
            rebase();
            throw new AssertionError(what + " left the service changed:\n  " + String.join("\n  ", problems));
        }
    }

    /** File descriptors, threads and mappings of this rig's shared-memory files. */
    List<String> processChecks() {
        List<String> problems = new ArrayList<>();
        long open = openFds();
        if (open > fds + 64) {
            problems.add(open + " file descriptors are open, " + fds + " were at the start");
        }
        int t = Thread.activeCount();
        if (t > threads + 16) {
            problems.add(t + " threads are alive, " + threads + " were at the start");
        }
        try {
            long mapped = Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains(SHM_PREFIX)).count();
            if (mapped > 1) {
                problems.add(mapped + " mappings of our shared-memory files remain (the dispatcher target's own one may)");
            }
            try (Stream<Path> files = Files.list(SharedMemory.DIR)) {
                List<Path> left = files.filter(p -> p.getFileName().toString().startsWith(SHM_PREFIX)).toList();
                if (!left.isEmpty()) {
                    problems.add("shared-memory files left in /dev/shm: " + left);
                }
            }
        } catch (IOException e) {
            problems.add("cannot read /proc/self/maps or /dev/shm: " + e);
        }
        return problems;
    }

    private static long openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (IOException e) {
            return -1;
        }
    }

    private static String hex(Map<Long, Long> ranges) {
        StringBuilder b = new StringBuilder("[");
        ranges.forEach((k, v) -> b.append(b.length() > 1 ? ", " : "").append("0x").append(Long.toHexString(k)).append("+0x")
                .append(Long.toHexString(v)));
        return b.append(']').toString();
    }

    private void baseline() {
        addressUsed = TestRouters.addressSpaceUsed(router);
        addressFree = TestRouters.addressSpaceFree(router);
        long[] info = new long[2];
        mock.memGetInfo(0, info);
        deviceFree = info[0];
        materialised = mock.materialisedBytes(0);
        try {
            for (int i = 0; i < MOCK_TABLES.length; i++) {
                tables[i] = table(MOCK_TABLES[i]);
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
        fds = openFds();
        threads = Thread.activeCount();
    }

    /** After a finding: close what the input left, start a new bystander if it broke, re-take the baseline. */
    private void rebase() {
        if (hung) {
            return;
        }
        for (SessionInfo s : router.sessions()) {
            if (s.id != bystander.session.id()) {
                // Only the router holds them now; closing the router's view is what a restart would do.
                closeSession(s.id);
            }
        }
        try {
            bystander.check(inputs);
        } catch (AssertionError | RuntimeException broken) {
            bystander.close();
            try {
                bystander = new FuzzBystander(router, new FrameChannel(keptPair()[1], 0), bridge.quotas());
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
        log.drainUnexpected();
        baseline();
    }

    private void closeSession(long id) {
        try {
            Field f = field(Router.class, "sessions");
            Object s = ((Map<?, ?>) f.get(router)).get(id);
            if (s instanceof AutoCloseable) {
                ((AutoCloseable) s).close();
            }
        } catch (Exception e) {
            // Best effort: the next input's checks say what remains.
        }
    }

    private int table(String name) throws ReflectiveOperationException {
        return ((Map<?, ?>) field(MockBackend.class, name).get(mock)).size();
    }

    private static final Map<String, Field> FIELDS = new java.util.concurrent.ConcurrentHashMap<>();

    static Field field(Class<?> type, String name) throws NoSuchFieldException {
        Field f = FIELDS.get(type.getName() + "#" + name);
        if (f == null) {
            f = type.getDeclaredField(name);
            f.setAccessible(true);
            FIELDS.put(type.getName() + "#" + name, f);
        }
        return f;
    }

    /** A CUresult a client can act on: a number CUDA defines, and not CUDA_ERROR_UNKNOWN. */
    static boolean clear(int rc) {
        return rc != CuResult.UNKNOWN && !CuResult.name(rc).matches("CUDA_ERROR_-?[0-9]+");
    }

    @Override
    public void close() {
        List<String> last = hung ? List.of() : processChecks();
        worker.shutdownNow();
        if (!hung) {
            bystander.close();
            bridge.deactivate();
            blockingBridge.deactivate();
            TestRouters.stop(router);
        }
        for (SocketChannel c : keep) {
            try {
                c.close();
            } catch (IOException e) {
                // Closing is all we wanted.
            }
        }
        try {
            listener.close();
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toArray(Path[]::new)) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException e) {
            // A temporary directory left behind is not worth failing for.
        }
        if (!last.isEmpty()) {
            throw new AssertionError("after " + inputs + " inputs:\n  " + String.join("\n  ", last));
        }
    }
}
