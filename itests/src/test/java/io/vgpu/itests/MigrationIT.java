package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.itests.ServiceFixture.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * Live migration of an unmodified, nvcc-built cudart 13 program (shim.bridge/native/test/cuda/
 * rt_migrate.cu) between two mock instances of the distribution, with `vgpu migrate`: at each of
 * its steps (async work queued in the shim, an event recorded before and waited for after, an open
 * stream capture, an instantiated graph) and then 100 times while it loops launching kernels,
 * copying and checking every element. The program must see no error and every result right. Then
 * evacuation: deleting a mock's configuration moves its running program to the configured backend.
 */
public class MigrationIT {
    static final Path PROGRAM = PtxProgramsIT.PROGRAMS.resolve("rt_migrate_shared");
    static final Map<String, String> ENV = Map.of("LD_LIBRARY_PATH",
            ServiceFixture.NATIVE.resolve("lib") + ":" + PtxProgramsIT.CUDART13);
    private static final Pattern MOVED = Pattern.compile(
            "(?m)^session (\\d+) (\\S+) -> (\\S+) \\((command), [0-9:]+\\): ([0-9.]+) MiB moved, pause ([0-9.]+) ms");

    @ClassRule
    public static final ServiceFixture service = new ServiceFixture()
            .withConf("io.vgpu.backend.mock.gpu-b.cfg", "backend.id = mockb\nname = NVIDIA H100 80GB HBM3\nptx.workers = 1\n")
            .withConf("io.vgpu.backend.mock.gpu-c.cfg", "backend.id = mockc\nptx.workers = 1\n")
            .readyWhenStatusContains("backend: mock (available)");

    static void assumeBuilt() {
        assumeTrue("SKIP: nvcc was not found when the shim was built, so rt_migrate was not built",
                Files.isExecutable(PROGRAM));
    }

    /** The session of process {@code pid}, from `vgpu sessions`. */
    private static String session(String pid) {
        String[] f = service.sessionOf(pid);
        if (f == null) {
            throw new AssertionError("no session of pid " + pid + " in\n" + service.ctl("sessions").out);
        }
        return f[0];
    }

    /** `vgpu migrate`, which must succeed and say so. */
    private static Matcher migrate(String which, String backend, boolean stopAndCopy) {
        List<String> args = new ArrayList<>(List.of("migrate", which, backend));
        if (stopAndCopy) {
            args.add("--stop-and-copy");
        }
        Result r = service.ctl(args.toArray(new String[0]));
        assertEquals(r.toString(), 0, r.exit);
        Matcher m = MOVED.matcher(r.out);
        assertTrue(r.out, m.find());
        assertEquals(r.out, backend, m.group(3));
        return m;
    }

    /** rt_migrate ended with exit 0, every check right and no warning from the shim. */
    static void assertClean(Result r) {
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("rt_migrate: ") && Pattern.compile("(?m)^rt_migrate: [1-9][0-9]* checks, 0 failed$")
                .matcher(r.out).find());
        assertTrue("the shim printed a warning:\n" + r.err, !r.err.contains("vgpu["));
    }

    @Test(timeout = 600_000)
    public void aRunningProgramMovesThereAndBackAHundredTimesWithoutNoticing() {
        assumeBuilt();
        String[] pid = new String[1];
        List<Double> pauses = new ArrayList<>();
        Result r = service.execSteps(List.of(PROGRAM.toString()), ENV, 540, step -> {
            if (step.startsWith("loop ")) {
                String id = session(step.substring(5));
                // 100 moves while it loops: by session and with `all`, pre-copy and stop-and-copy.
                for (int i = 0; i < 100; i++) {
                    String to = i % 2 == 0 ? "mockb" : "mock";
                    Matcher m = migrate(i % 4 < 2 ? id : "all", to, i % 3 == 0);
                    pauses.add(Double.parseDouble(m.group(6)));
                }
                pid[0] = step.substring(5);
                assertEquals("mock", service.backendOf(pid[0]));
                return;
            }
            // At each step, one move: mockb, mock, mockb, mock.
            String to = switch (step) {
                case "queued", "capturing" -> "mockb";
                default -> "mock";
            };
            migrate("all", to, step.equals("recorded"));
        });
        assertClean(r);
        assertEquals(100, pauses.size());
        pauses.sort(Double::compare);
        System.out.printf("rt_migrate: 100 migrations while running, pause median %.1f ms, max %.1f ms%n",
                pauses.get(50), pauses.get(99));
        String log = service.log();
        assertTrue(log, Pattern.compile("migration \\(command\\): session \\d+ mockb -> mock: \\d+ bytes moved, pause")
                .matcher(log).find());
    }

    @Test(timeout = 300_000)
    public void deletingABackendsConfigurationMovesItsProgramsInsteadOfFailingThem() throws Exception {
        assumeBuilt();
        Path cfg = service.work().resolve("conf/io.vgpu.backend.mock.gpu-c.cfg");
        Result r = service.execSteps(List.of(PROGRAM.toString()), ENV, 240, step -> {
            if (step.equals("queued")) {
                migrate("all", "mockc", false);
            } else if (step.startsWith("loop ")) {
                String pid = step.substring(5);
                assertEquals("mockc", service.backendOf(pid));
                try {
                    Files.delete(cfg);
                } catch (java.io.IOException e) {
                    throw new AssertionError(e);
                }
                Await.until(20_000, () -> assertEquals("mock", service.backendOf(pid)));
                Await.until(10_000, () -> assertTrue(service.ctl("backends").out, !service.ctl("backends").out.contains("mockc")));
                String sessions = service.ctl("sessions").out;
                assertTrue(sessions, Pattern.compile("(?m)^  session \\d+ mockc -> mock \\(evacuation, [0-9:]+\\): [0-9.]+ MiB moved")
                        .matcher(sessions).find());
            }
        });
        assertClean(r);
        assertTrue(service.log(), service.log().contains("backend mockc is going away: moving its 1 sessions to mock"));
    }
}
