package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.vgpu.backend.mock.MockBackend;
import io.vgpu.core.internal.Router;
import io.vgpu.core.internal.TestRouters;
import io.vgpu.api.session.SessionManager;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.After;
import org.junit.Before;

/**
 * A bridge on a temporary socket, served by the real core (Router) and the simulated H100, all
 * without a framework.
 */
public abstract class BridgeTestBase {
    /** Where slf4j-simple writes during the tests (set in the pom), so tests can check log lines. */
    static final Path LOG = Path.of(System.getProperty("org.slf4j.simpleLogger.logFile", "target/bridge-test.log"));
    private static final AtomicInteger NAMES = new AtomicInteger();

    protected MockBackend mock;
    protected Router router;
    protected BridgeServer bridge;
    protected Path dir;
    protected Path socket;

    @Before
    public void startBridge() throws IOException {
        mock = new MockBackend(TestRouters.config(MockBackend.Config.class, Map.of()));
        router = TestRouters.withBackend(mock, "mock");
        // Short: Unix socket paths are limited to about 107 bytes.
        dir = Files.createTempDirectory(Path.of("/tmp"), "vgpu-bt");
        socket = dir.resolve("s.sock");
        bridge = start(router, Map.of());
        assertTrue(bridge.listening());
    }

    @After
    public void stopBridge() throws IOException {
        if (bridge != null) {
            bridge.deactivate();
        }
        TestRouters.stop(router);
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toArray(Path[]::new)) {
                Files.deleteIfExists(p);
            }
        }
    }

    protected BridgeServer start(SessionManager manager, Map<String, Object> overrides) {
        Map<String, Object> config = new HashMap<>(overrides);
        config.putIfAbsent("socket", socket.toString());
        // The properties also carry keys no annotation declares (quota.*), as FileInstall passes them.
        return new BridgeServer(manager, TestRouters.config(BridgeServer.Config.class, config), config);
    }

    protected void restart(Map<String, Object> overrides) {
        bridge.deactivate();
        bridge = start(router, overrides);
    }

    protected TestClient connect() throws IOException {
        return new TestClient(socket);
    }

    /** A process name no other test uses, to find this test's log lines. */
    static String uniqueName(String prefix) {
        return prefix + "-" + NAMES.incrementAndGet() + "-" + ProcessHandle.current().pid();
    }

    static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TestClient.TIMEOUT_NANOS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting until " + what);
            }
            Thread.yield();
        }
    }

    /** Log lines that contain every one of {@code parts}. */
    static List<String> logLines(String... parts) {
        try {
            return Files.readAllLines(LOG, StandardCharsets.UTF_8).stream()
                    .filter(l -> Stream.of(parts).allMatch(l::contains)).toList();
        } catch (IOException e) {
            throw new AssertionError("cannot read " + LOG, e);
        }
    }

    /** Waits for exactly {@code count} such lines (logging happens on the session's thread). */
    static void awaitLogLines(int count, String... parts) {
        await(count + " log lines with " + List.of(parts), () -> logLines(parts).size() >= count);
        List<String> lines = logLines(parts);
        if (lines.size() != count) {
            fail("expected " + count + " log lines with " + List.of(parts) + ", got " + lines);
        }
    }
}
