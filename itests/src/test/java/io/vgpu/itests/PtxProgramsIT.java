package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import io.vgpu.itests.ServiceFixture.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * nvcc-built CUDA programs whose kernels must compute from the PTX in their fatbins: no host
 * kernel is registered for any of them, so they pass only where the mock executes PTX. Each
 * program (shim.bridge/native/test/cuda/rt_*.cu, built by mk/cuda-tests.mk against the shared and
 * the static cudart 13, with compute_90 PTX) checks every output element against a reference it
 * computes on the host and prints FAIL lines for what is wrong; this test runs both builds on the
 * default mock (one H100) and asserts, for each, the number of launches the service recorded, each
 * with result 0, no shim warning, exit code 0 and the "NAME: N checks, 0 failed" line. Until the
 * mock executes PTX these fail on the exit code (the results are unwritten), with everything
 * before it as asserted.
 */
public class PtxProgramsIT {
    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path PROGRAMS = NATIVE.resolve("test/cuda");
    /** Where the shared cudart 13 programs find libcudart.so.13: the toolkit that built them. */
    static final Path CUDART13 = Path.of(System.getProperty("vgpu.cuda.lib", "/usr/local/cuda/lib64"));
    /** Generous: the programs are sized to take well under a second each on an interpreter. */
    static final long TIMEOUT_S = 300;

    @ClassRule
    public static final ServiceFixture service = new ServiceFixture();

    private static final Set<String> skipsPrinted = new TreeSet<>();

    private static void assumeBuilt(String name) {
        String line = "SKIP: nvcc was not found when the shim was built, so the CUDA runtime programs were not built";
        boolean built = Files.isExecutable(PROGRAMS.resolve(name + "_shared"))
                && Files.isExecutable(PROGRAMS.resolve(name + "_static"));
        if (!built && skipsPrinted.add(line)) {
            System.out.println(line);
        }
        assumeTrue(line, built);
    }

    // ---- the service's launch log (vgpu-ctl launches), as RuntimeIT reads it --------------------

    record Launch(long seq, String kernel, boolean executed, int result) {
    }

    private static final Pattern LAUNCH = Pattern.compile(
            "#(\\d+) (\\S+) grid\\(\\d+,\\d+,\\d+\\) block\\(\\d+,\\d+,\\d+\\) smem=\\d+ params=\\d+ "
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
            out.add(new Launch(Long.parseLong(m.group(1)), m.group(2), m.group(3).equals("executed"),
                    Integer.parseInt(m.group(4))));
        }
        return out;
    }

    private static long lastLaunch() {
        List<Launch> all = launches();
        return all.isEmpty() ? 0 : all.get(all.size() - 1).seq;
    }

    private static String tail(String text) {
        return text.length() > 6000 ? text.substring(text.length() - 6000) : text;
    }

    /**
     * Runs both builds of {@code name}: each must leave exactly {@code launches} launches in the
     * service's log, all of them successful, print no shim warning, exit 0 and pass all its checks.
     * Both builds run even if the first fails, and the failure names what went wrong in each.
     */
    private static void runBoth(String name, int launches) {
        assumeBuilt(name);
        List<String> failures = new ArrayList<>();
        for (String cudart : List.of("shared", "static")) {
            String program = name + "_" + cudart;
            long before = lastLaunch();
            Result r = service.exec(List.of(PROGRAMS.resolve(program).toString()),
                    Map.of("LD_LIBRARY_PATH", NATIVE.resolve("lib") + ":" + CUDART13), TIMEOUT_S);
            List<Launch> ls = launches().stream().filter(l -> l.seq > before).toList();
            // The launches first: a failed launch explains wrong results, not the other way round.
            String problem = null;
            if (ls.size() != launches) {
                problem = "expected " + launches + " launches, the service recorded " + ls;
            } else if (ls.stream().anyMatch(l -> l.result != 0)) {
                problem = "a launch failed: " + ls;
            } else if (r.err.contains("vgpu[")) {
                problem = "the shim printed a warning";
            } else if (r.exit != 0) {
                problem = "exit " + r.exit;
            } else if (!Pattern.compile("(?m)^" + Pattern.quote(name) + ": [1-9][0-9]* checks, 0 failed$")
                    .matcher(r.out).find()) {
                problem = "no \"" + name + ": N checks, 0 failed\" line";
            }
            if (problem != null) {
                failures.add("=== " + program + ": " + problem + "\n" + r);
            }
        }
        if (!failures.isEmpty()) {
            fail(String.join("\n", failures) + "\n--- service log (tail)\n" + tail(service.log()));
        }
    }

    /** 16x16 __shared__ tiles and __syncthreads, 2D grid: 70x45*45x83 (exact and rounded), 64^3, 33x7*7x5. */
    @Test
    public void tiledMatmul() {
        runBoth("rt_matmul_tiled", 4);
    }

    /** Shuffles (down, xor, up, idx), block sums through dynamic shared memory, votes, redux.sync. */
    @Test
    public void warpReductionsAndVotes() {
        runBoth("rt_warp_reduce", 5);
    }

    /** Shared and global atomics: histogram, max/min/CAS/exch/sub/and/or/xor/inc, 64-bit, float, double. */
    @Test
    public void histogramAndAtomics() {
        runBoth("rt_histogram", 3);
    }

    /** axpy, a functor passed by value and a stencil with a template radius, for float, double and int. */
    @Test
    public void templatedKernels() {
        runBoth("rt_templates", 24);
    }

    /** Two streams ordered by events around computing kernels, then chunked copies and kernels. */
    @Test
    public void streamsAndEventsAroundComputingKernels() {
        runBoth("rt_stream_events", 10);
    }

    /** __noinline__ device calls (struct by value and returned), divergence, switch, Collatz loops. */
    @Test
    public void deviceFunctionsAndControlFlow() {
        runBoth("rt_device_func", 2);
    }

    /** thread_block, tiled_partition 32/16/4, tile shuffles and votes, cg::reduce, cg scans. */
    @Test
    public void cooperativeGroups() {
        runBoth("rt_coop_groups", 1);
    }

    /** Correctly rounded and library float/double math, fast intrinsics, conversions, __half, integer intrinsics. */
    @Test
    public void mathConversionsAndIntrinsics() {
        runBoth("rt_math", 7);
    }
}
