package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.After;
import org.junit.Test;

/**
 * A GPU host stopped in order under a running program, across processes: a host distribution
 * (listener on loopback TLS, its mock) and a guest distribution ({@code backend = gpu1, mock}) in
 * two JVMs. The nvcc-built {@code rt_migrate} runs in the guest on gpu1 and loops launching kernels,
 * copying and checking every element; the host gets SIGTERM. The host drains (tells the guest in a
 * heartbeat, waits for it), the guest evacuates the program to its own mock while the host still
 * serves it, and the host exits well within drain.seconds; the program sees no error and every
 * result right. A guest with nowhere to go instead keeps its program on the host for the whole
 * drain period, which SIGTERM must not cut short.
 */
public class RemoteDrainIT {
    /** The listener's default, written out so that the bound below follows it. */
    private static final int DRAIN_SECONDS = 10;
    private static final Pattern DRAINED = Pattern.compile("(?m)remote listener drained 1 guest\\(s\\) in (\\d+) ms$");

    private RemoteHosts keys;
    private ServiceFixture host;
    private ServiceFixture guest;
    private Process hold;

    /** Whatever a test left running: its program killed, the guest and the host stopped (SIGTERM). */
    @After
    public void stopAll() throws Exception {
        if (hold != null) {
            hold.destroyForcibly();
        }
        try {
            if (guest != null) {
                guest.after();
            }
        } finally {
            try {
                if (host != null) {
                    host.after();
                }
            } finally {
                if (keys != null) {
                    keys.delete();
                }
            }
        }
    }

    /** Waits until process {@code pid}, on {@code backend}, has launched two kernels more than now. */
    private static void roundOn(ServiceFixture guest, String pid, String backend) {
        long from = launches(guest, pid);
        Await.until(20_000, () -> {
            String[] f = guest.sessionOf(pid);
            assertTrue(String.join(" ", f), f[4].equals(backend) && Long.parseLong(f[8]) >= from + 2);
        });
    }

    /** The LAUNCHES column of `vgpu sessions` (MEMORY before it is two fields, "N MiB"). */
    private static long launches(ServiceFixture guest, String pid) {
        return Long.parseLong(guest.sessionOf(pid)[8]);
    }

    @Test(timeout = 180_000)
    public void aHostStoppedBySigtermHandsItsGuestsRunningProgramToTheNextBackendFirst() throws Throwable {
        MigrationIT.assumeBuilt();
        keys = new RemoteHosts("guest");
        host = keys.host(RemoteFailoverIT.HOST_GPU, "drain.seconds = " + DRAIN_SECONDS + "\n");
        guest = keys.guestPreferring("guest", "gpu1, mock");
        long[] sigtermToEvacuated = {-1};
        long[] sigtermToHostExit = {-1};
        int[] hostExit = {-1};
        host.before();
        guest.before();
        ServiceFixture.Result r = guest.execSteps(List.of(MigrationIT.PROGRAM.toString()), MigrationIT.ENV, 120, step -> {
            if (!step.startsWith("loop ")) {
                return; // the steps before the loop are for MigrationIT's moves
            }
            String pid = step.substring(5);
            String[] session = guest.sessionOf(pid);
            assertNotNull("no session of " + pid + " in\n" + guest.ctl("sessions").out, session);
            assertEquals("it runs on the host", "gpu1", session[4]);
            assertTrue(host.log(), host.log().contains("guest guest@"));
            // Rounds are sequential (launch, synchronize, check every element): two launches more
            // than now means one whole round ran where the program is.
            roundOn(guest, pid, "gpu1");

            long t0 = System.nanoTime();
            CompletableFuture<Long> exited = host.terminate().thenApply(p -> {
                hostExit[0] = p.exitValue();
                return System.nanoTime();
            });
            // The program loops on all the while; it must end up on the guest's mock.
            Await.until(TimeUnit.SECONDS.toMillis(DRAIN_SECONDS), () -> assertEquals("mock", guest.backendOf(pid)));
            sigtermToEvacuated[0] = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            roundOn(guest, pid, "mock");
            try {
                long at = exited.get(DRAIN_SECONDS + 10, TimeUnit.SECONDS);
                sigtermToHostExit[0] = TimeUnit.NANOSECONDS.toMillis(at - t0);
            } catch (TimeoutException e) {
                throw new AssertionError("the host still runs " + (DRAIN_SECONDS + 10) + " s after SIGTERM:\n" + host.log());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            String sessions = guest.ctl("sessions").out;
            List<String> moves = sessions.lines().filter(l -> l.startsWith("  session " + session[0] + " ")).toList();
            assertEquals(sessions, 1, moves.size());
            assertTrue(sessions, moves.get(0).matches("  session \\d+ gpu1 -> mock \\(evacuation, [0-9:]+\\): [0-9.]+ MiB moved, .*"));
            System.out.println("vgpu sessions on the guest after the host's SIGTERM:\n" + sessions);
        });
        MigrationIT.assertClean(r);
        System.out.println(r.out.lines().filter(l -> l.startsWith("rt_migrate: ")).toList());

        String hostLog = host.log();
        Matcher drained = DRAINED.matcher(hostLog);
        assertTrue(hostLog, drained.find());
        assertTrue(hostLog, hostLog.contains("vgpu stopping (signal)"));
        // 143: the JVM ended by SIGTERM after its shutdown hooks ran (systemd's SuccessExitStatus).
        assertEquals(hostLog, 143, hostExit[0]);
        String guestLog = guest.log();
        assertTrue(guestLog, guestLog.contains("remote backend gpu1: host 127.0.0.1:" + keys.port + " is draining"));
        assertTrue(guestLog, guestLog.contains("backend gpu1 is going away: moving its 1 sessions to mock"));
        assertTrue(guestLog, Pattern.compile("migration \\(evacuation\\): session \\d+ gpu1 -> mock: \\d+ bytes moved")
                .matcher(guestLog).find());
        System.out.printf("host SIGTERM under rt_migrate on gpu1: evacuated to mock after %d ms (seen by polling vgpu "
                + "sessions), host drained 1 guest in %s ms and exited after %d ms (drain.seconds = %d)%n",
                sigtermToEvacuated[0], drained.group(1), sigtermToHostExit[0], DRAIN_SECONDS);
        // Well inside the drain period: the host waited for the guest, not for the clock.
        assertTrue(sigtermToHostExit[0] + " ms", sigtermToHostExit[0] < TimeUnit.SECONDS.toMillis(DRAIN_SECONDS));
    }

    /**
     * With nowhere to go (the guest's router lists only gpu1) the guest keeps its program on the host,
     * and the host, SIGTERMed, waits the whole drain period before it closes: longer than the 10 s
     * the core's shutdown hook gives the framework, which the listener's own hook makes up for.
     */
    @Test(timeout = 180_000)
    public void withNowhereToGoTheHostWaitsTheWholeDrainPeriodEvenPastTheCoresTenSeconds() throws Throwable {
        int drainSeconds = 12;
        keys = new RemoteHosts("guest");
        host = keys.host(RemoteFailoverIT.HOST_GPU, "drain.seconds = " + drainSeconds + "\n");
        guest = keys.guestPreferring("guest", "gpu1");
        host.before();
        guest.before();
        hold = guest.spawn(List.of(ServiceFixture.NATIVE.resolve("test/test_hold").toString(), "1"));
        BufferedReader out = new BufferedReader(new InputStreamReader(hold.getInputStream()));
        assertEquals("test_hold: copies reach the host\n" + guest.log(), "holding 1048576", out.readLine());
        assertEquals("test_hold: copies reach the host\n" + guest.log(), "copying", out.readLine());
        long t0 = System.nanoTime();
        Process ended = host.terminate().get(drainSeconds + 10, TimeUnit.SECONDS);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        String hostLog = host.log();
        System.out.printf("host SIGTERM, its guest with nowhere to go: host exited after %d ms (drain.seconds = %d)%n", ms,
                drainSeconds);
        assertEquals(hostLog, 143, ended.exitValue());
        Matcher drained = Pattern.compile("(?m)remote listener drained 1 guest\\(s\\) in (\\d+) ms \\(1 still held work after "
                + drainSeconds + " s\\)$").matcher(hostLog);
        assertTrue(hostLog, drained.find());
        assertTrue(drained.group(), Long.parseLong(drained.group(1)) >= TimeUnit.SECONDS.toMillis(drainSeconds));
        assertTrue(hostLog, hostLog.contains("remote listener stopped"));
        assertTrue(ms + " ms", ms >= TimeUnit.SECONDS.toMillis(drainSeconds));
        assertTrue(guest.log(), guest.log().contains("backend gpu1 is going away and no other backend of the preference list"));
        // Its memory went with the host: the next copy fails (exit 2), at once.
        assertTrue("test_hold still runs 5 s after the host closed", hold.waitFor(5, TimeUnit.SECONDS));
        assertEquals(2, hold.exitValue());
    }
}
