package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.itests.ServiceFixture.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * Memory quotas end to end: the service runs with {@code quota.process.mib = 256} and a user quota
 * of 384 MiB for the user running the tests, and {@code test_quota} (a driver-API program that
 * also asks NVML) checks what one process is told and what it may allocate. Every number a
 * process sees comes from the same place in the service, so cuDeviceTotalMem, cuMemGetInfo and
 * NVML must agree exactly at every step. "Another user" is nobody (uid 65534), run with setpriv,
 * which needs root; those checks are skipped otherwise.
 */
public class QuotaIT {
    static final String ME = System.getProperty("user.name");
    static final int PROCESS_MIB = 256;
    static final int USER_MIB = 384;

    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture()
            .withConf("io.vgpu.bridge.cfg", "quota.process.mib = " + PROCESS_MIB + "\nquota.user." + ME + ".mib = " + USER_MIB
                    + "\n# another user must reach the socket\nsocket.mode = rw-rw-rw-\n");

    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;

    @BeforeClass
    public static void letOtherUsersReachTheSocket() throws Exception {
        // The fixture's directory is private (0700); nobody needs to get through it to the socket.
        Files.setPosixFilePermissions(SERVICE.work(), PosixFilePermissions.fromString("rwx--x--x"));
    }

    static boolean root() {
        return "root".equals(ME);
    }

    static List<String> asNobody(List<String> command) {
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"));
        cmd.addAll(command);
        return cmd;
    }

    static List<String> quota(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(NATIVE.resolve("test/test_quota").toString());
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** {@code test_quota check TOTAL FREE}: every check of one process must pass. */
    static void assertSees(List<String> command, int totalMib, int freeMib) {
        List<String> cmd = new ArrayList<>(command);
        cmd.addAll(List.of("check", Integer.toString(totalMib), Integer.toString(freeMib)));
        Result r = SERVICE.exec(cmd, Map.of(), 120);
        assertEquals(cmd + "\n" + r + "\n--- service log\n" + SERVICE.log(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("quota: ") && r.out.contains(" checks, 0 failed"));
    }

    static void assertSees(int totalMib, int freeMib) {
        assertSees(List.of(NATIVE.resolve("test/test_quota").toString()), totalMib, freeMib);
    }

    static void assertNobodySees(int totalMib, int freeMib) {
        assertSees(asNobody(List.of(NATIVE.resolve("test/test_quota").toString())), totalMib, freeMib);
    }

    /** Runs {@code while} while a process of this user holds {@code mib} MiB; returns the holder's pid. */
    static long holding(int mib, Runnable during) {
        AtomicReference<String> pid = new AtomicReference<>();
        List<String> cmd = new ArrayList<>(List.of("sh", "-c", "echo pid $$; exec \"$0\" hold " + mib,
                NATIVE.resolve("test/test_quota").toString()));
        Result r = SERVICE.execSteps(cmd, Map.of(), 300, step -> during.run());
        assertEquals(r.toString(), 0, r.exit);
        var m = Pattern.compile("(?m)^pid (\\d+)$").matcher(r.out);
        assertTrue(r.out, m.find());
        pid.set(m.group(1));
        return Long.parseLong(pid.get());
    }

    @Test
    public void aProcessSeesItsQuotaAsTheDeviceAndCanFillItExactly() {
        // The tightest quota is the process's own 256 MiB.
        assertSees(PROCESS_MIB, PROCESS_MIB);
        assertTrue(SERVICE.log(), SERVICE.log().contains("refused with CUDA_ERROR_OUT_OF_MEMORY: quota process "));
    }

    @Test
    public void processesOfOneUserShareTheUserQuota() {
        // 200 MiB held leave the user 184 of its 384; the process quota (256) stays each process's own.
        holding(200, () -> assertSees(PROCESS_MIB, USER_MIB - 200));
        // Once the holder has gone, its memory counts no more.
        assertSees(PROCESS_MIB, PROCESS_MIB);
    }

    @Test
    public void theProcessQuotaAppliesToEachProcess() {
        // 100 MiB held by another process of the user leave 284 of the user quota: the second
        // process still has its whole process quota.
        holding(100, () -> assertSees(PROCESS_MIB, PROCESS_MIB));
    }

    @Test
    public void aProcessOfAnotherUserIsUnaffected() {
        assumeTrue("SKIP: running a process as another user (setpriv) needs root", root());
        // The user quota has 134 MiB left; nobody has only its process quota, all of it free.
        holding(250, () -> {
            assertSees(PROCESS_MIB, USER_MIB - 250);
            assertNobodySees(PROCESS_MIB, PROCESS_MIB);
        });
    }

    @Test
    public void sessionsAndSmiShowTheQuotas() {
        AtomicReference<Result> sessions = new AtomicReference<>();
        AtomicReference<Result> smi = new AtomicReference<>();
        AtomicReference<Result> nobodySmi = new AtomicReference<>();
        long pid = holding(200, () -> {
            sessions.set(SERVICE.ctl("sessions"));
            smi.set(SERVICE.exec(List.of(DIST.resolve("bin/vgpu").toString(), "smi"), Map.of(), 60));
            if (root()) {
                nobodySmi.set(SERVICE.exec(asNobody(List.of(DIST.resolve("bin/vgpu").toString(), "smi")), Map.of(), 60));
            }
        });
        String out = sessions.get().out;
        assertEquals(sessions.get().toString(), 0, sessions.get().exit);
        assertTrue(out, out.lines().findFirst().orElse("").endsWith(" QUOTA"));
        assertEquals(out, 1, count(out, "\\d+\\s+" + pid + "\\s+\\d+\\s+test_quota\\s+mock\\s+BOUND\\s+200 MiB\\s+0 "
                + "256 MiB \\(process " + pid + "\\)"));
        assertEquals(out, 1, count(out, "user " + ME + "\\s+384 MiB\\s+200 MiB mock:0\\s+1"));
        assertEquals(out, 1, count(out, "process " + pid + "\\s+256 MiB\\s+200 MiB mock:0\\s+1"));

        // vgpu smi is a process of this user too: its device's total is its process quota, 256 MiB,
        // and free what the user quota leaves (184 MiB), so used (total - free, as NVML defines it)
        // is 72 MiB; the process table lists the holder with its own 200 MiB.
        Result r = smi.get();
        assertEquals(r.toString(), 0, r.exit);
        assertEquals(r.out, 1, count(r.out, "\\|\\s+0 NVIDIA H100 80GB HBM3\\s+\\| \\S+\\s+\\|\\s+72MiB / 256MiB \\|"));
        assertEquals(r.out, 1, count(r.out, "\\|\\s+0\\s+" + pid + "\\s+\\S*test_quota\\s+200MiB \\|"));
        if (root()) {
            r = nobodySmi.get();
            assertEquals(r.toString(), 0, r.exit);
            assertEquals(r.out, 1, count(r.out, "\\|\\s+0 NVIDIA H100 80GB HBM3\\s+\\| \\S+\\s+\\|\\s+0MiB / 256MiB \\|"));
        }
        // Without sessions only the configured user quota is left, holding nothing.
        Await.until(10_000, () -> {
            String now = SERVICE.ctl("sessions").out;
            assertEquals(now, 1, count(now, "user " + ME + "\\s+384 MiB\\s+0 MiB -\\s+0"));
            assertEquals(now, 0, count(now, "process \\d+.*"));
        });
    }

    static long count(String out, String lineRegex) {
        Pattern p = Pattern.compile(lineRegex);
        return out.lines().filter(l -> p.matcher(l).matches()).count();
    }
}
