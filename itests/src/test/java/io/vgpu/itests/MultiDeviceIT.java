package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * A mock with two devices: NVML and {@code vgpu smi} list each process under the device(s) it
 * really holds memory on, with that device's share.
 */
public class MultiDeviceIT {
    static final String NAME = "NVIDIA H100 80GB HBM3";
    static final String UUID0 = "GPU-5eb1d0c2-7a55-4e3b-9c1d-2f00aa55cc00";
    /** The mock adds the ordinal to the PCI bus (and to the configured UUID's last byte). */
    static final String BUS0 = "00000000:41:00.0";
    static final String BUS1 = "00000000:42:00.0";

    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture()
            .withConf("io.vgpu.backend.mock.cfg", "device.count = 2\nuuid = " + UUID0 + "\npci.bus = 65\n")
            .readyWhenStatusContains(UUID0);

    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path DIST = ServiceFixture.DIST;

    static Process hold(String... allocations) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(NATIVE.resolve("test/test_hold").toString());
        cmd.addAll(List.of(allocations));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("VGPU_SOCKET", SERVICE.socket().toString());
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.environment().remove("CUDA_VISIBLE_DEVICES");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        byte[] line = new byte[64];
        int n = p.getInputStream().read(line);
        String text = n > 0 ? new String(line, 0, n, StandardCharsets.US_ASCII) : "";
        assertTrue("test_hold " + List.of(allocations) + ": " + text, text.startsWith("holding"));
        return p;
    }

    static void kill(Process p) throws InterruptedException {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
        String pid = " " + p.pid() + " ";
        Await.until(10_000, () -> assertTrue(SERVICE.ctl("sessions").out.lines().noneMatch(l -> l.contains(pid))));
    }

    static final long MIB = 1L << 20;

    @Test
    public void eachProcessIsListedUnderTheDevicesItUsesWithThatDevicesMemory() throws Exception {
        Process one = hold("256@1");
        Process both = null;
        try {
            both = hold("64@0", "128@1");
            long a = one.pid(), b = both.pid();
            ServiceFixture.Result procs = SERVICE.exec(List.of(NATIVE.resolve("test/nvml_check").toString(), "procs"),
                    Map.of(), 30);
            assertEquals(procs.toString(), 0, procs.exit);
            String out = procs.out;
            for (String abi : List.of("v3", "v2", "v1")) {
                String tail = abi.equals("v1") ? "\n" : " gi=4294967295 ci=4294967295\n";
                assertTrue(out, out.contains("process " + abi + " device=1 pid=" + a + " used=" + 256 * MIB + tail));
                assertTrue(out, out.contains("process " + abi + " device=0 pid=" + b + " used=" + 64 * MIB + tail));
                assertTrue(out, out.contains("process " + abi + " device=1 pid=" + b + " used=" + 128 * MIB + tail));
                assertTrue(out, !out.contains("process " + abi + " device=0 pid=" + a + " "));
            }
            assertEquals(out, 3 * 3, out.lines().filter(l -> l.startsWith("process ")).count());
            assertTrue(out, out.contains("device0.used=" + 64 * MIB + "\n"));
            assertTrue(out, out.contains("device1.used=" + 384 * MIB + "\n"));
            assertTrue(out, out.contains("device0.count_query rc=7 count=1\n"));
            assertTrue(out, out.contains("device1.count_query rc=7 count=2\n"));

            ServiceFixture.Result smi = SERVICE.exec(List.of(DIST.resolve("bin/vgpu").toString(), "smi"), Map.of(), 60);
            assertEquals(smi.toString(), 0, smi.exit);
            assertEquals(smi.out, 1, count(smi.out, "\\|\\s+0 " + NAME + "\\s+\\| " + BUS0 + "\\s+\\|\\s+64MiB / 81920MiB \\|"));
            assertEquals(smi.out, 1, count(smi.out, "\\|\\s+1 " + NAME + "\\s+\\| " + BUS1 + "\\s+\\|\\s+384MiB / 81920MiB \\|"));
            assertEquals(smi.out, 1, count(smi.out, processRow(1, a, 256)));
            assertEquals(smi.out, 1, count(smi.out, processRow(0, b, 64)));
            assertEquals(smi.out, 1, count(smi.out, processRow(1, b, 128)));
            assertEquals(smi.out, 0, count(smi.out, "\\|\\s+0\\s+" + a + "\\s.*"));
        } finally {
            kill(one);
            if (both != null) {
                kill(both);
            }
        }
    }

    static String processRow(int gpu, long pid, int mib) {
        return "\\|\\s+" + gpu + "\\s+" + pid + "\\s+\\S*test_hold\\s+" + mib + "MiB \\|";
    }

    static long count(String out, String lineRegex) {
        Pattern p = Pattern.compile(lineRegex);
        return out.lines().filter(l -> p.matcher(l).matches()).count();
    }
}
