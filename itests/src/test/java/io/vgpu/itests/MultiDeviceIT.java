package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
 * really holds memory on, with that device's share; and the {@code nvidia-smi} that
 * {@code vgpu install} provides answers for both devices in nvidia-smi's own formats.
 */
public class MultiDeviceIT {
    static final String NAME = "NVIDIA H100 80GB HBM3";
    static final String UUID0 = "GPU-5eb1d0c2-7a55-4e3b-9c1d-2f00aa55cc00";
    /** The mock adds the ordinal to the configured UUID's last byte and to the PCI bus. */
    static final String UUID1 = "GPU-5eb1d0c2-7a55-4e3b-9c1d-2f00aa55cc01";
    static final String BUS0 = "00000000:41:00.0";
    static final String BUS1 = "00000000:42:00.0";
    /** What the default driverVersion 13000 makes NVML report. */
    static final String DRIVER = "580.95.05";

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

    // ------------------------------------------------------------------ nvidia-smi

    static ServiceFixture.Result nvidiaSmi(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(DIST.resolve("bin/nvidia-smi").toString());
        cmd.addAll(List.of(args));
        return SERVICE.exec(cmd, Map.of(), 60);
    }

    @Test
    public void nvidiaSmiListsTheGpusWithTheirUuids() {
        ServiceFixture.Result r = nvidiaSmi("-L");
        assertEquals(r.toString(), 0, r.exit);
        assertEquals(r.toString(), "GPU 0: " + NAME + " (UUID: " + UUID0 + ")\nGPU 1: " + NAME + " (UUID: " + UUID1 + ")\n",
                r.out);
        r = nvidiaSmi("-L", "-i", "1");
        assertEquals(r.toString(), "GPU 1: " + NAME + " (UUID: " + UUID1 + ")\n", r.out);
    }

    static final String ALL_FIELDS = "index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,memory.free,compute_cap";

    @Test
    public void nvidiaSmiQueryGpuPrintsCsvInNvidiaSmisFormat() {
        ServiceFixture.Result r = nvidiaSmi("--query-gpu=" + ALL_FIELDS, "--format=csv");
        assertEquals(r.toString(), 0, r.exit);
        assertEquals(r.toString(), String.join("\n",
                "index, name, uuid, pci.bus_id, driver_version, memory.total [MiB], memory.used [MiB], memory.free [MiB], compute_cap",
                "0, " + NAME + ", " + UUID0 + ", " + BUS0 + ", " + DRIVER + ", 81920 MiB, 0 MiB, 81920 MiB, 9.0",
                "1, " + NAME + ", " + UUID1 + ", " + BUS1 + ", " + DRIVER + ", 81920 MiB, 0 MiB, 81920 MiB, 9.0", ""), r.out);

        r = nvidiaSmi("--query-gpu=" + ALL_FIELDS, "--format=csv,noheader,nounits");
        assertEquals(r.toString(), String.join("\n",
                "0, " + NAME + ", " + UUID0 + ", " + BUS0 + ", " + DRIVER + ", 81920, 0, 81920, 9.0",
                "1, " + NAME + ", " + UUID1 + ", " + BUS1 + ", " + DRIVER + ", 81920, 0, 81920, 9.0", ""), r.out);

        // nounits keeps the unit in the header; aliases and -i as nvidia-smi takes them.
        r = nvidiaSmi("--query-gpu", "gpu_name,memory.total", "--format", "csv,nounits", "--id=" + UUID1);
        assertEquals(r.toString(), "name, memory.total [MiB]\n" + NAME + ", 81920\n", r.out);
        r = nvidiaSmi("--query-gpu=count,driver_version", "--format=csv,noheader");
        assertEquals(r.toString(), "2, " + DRIVER + "\n2, " + DRIVER + "\n", r.out);
    }

    @Test
    public void nvidiaSmiRefusesWhatItDoesNotKnowLikeNvidiaSmi() {
        ServiceFixture.Result r = nvidiaSmi("--query-gpu=index,temperature.gpu", "--format=csv");
        assertEquals(r.toString(), 2, r.exit);
        assertEquals(r.toString(), "Field \"temperature.gpu\" is not a valid field to query.\n\n", r.out);
        r = nvidiaSmi("--query-gpu=index");
        assertEquals(r.toString(), 2, r.exit);
        assertTrue(r.toString(), r.out.startsWith("Invalid combination of input arguments."));
        r = nvidiaSmi("--bogus");
        assertEquals(r.toString(), 2, r.exit);
    }

    @Test
    public void nvidiaSmiTableAndVersion() {
        ServiceFixture.Result r = nvidiaSmi();
        assertEquals(r.toString(), 0, r.exit);
        assertEquals(r.out, 1, count(r.out,
                "\\| NVIDIA-SMI " + Pattern.quote(DRIVER) + " +Driver Version: " + Pattern.quote(DRIVER) + " +CUDA Version: 13\\.0 +\\|"));
        assertEquals(r.out, 1, count(r.out, "\\|\\s+0 " + NAME + "\\s+\\| " + BUS0 + "\\s+\\|\\s+0MiB / 81920MiB \\|"));
        assertEquals(r.out, 1, count(r.out, "\\|\\s+1 " + NAME + "\\s+\\| " + BUS1 + "\\s+\\|\\s+0MiB / 81920MiB \\|"));
        // Every table line has nvidia-smi's width.
        assertTrue(r.out, r.out.lines().filter(l -> l.startsWith("|") || l.startsWith("+")).allMatch(l -> l.length() == 91));

        r = nvidiaSmi("--version");
        assertEquals(r.toString(), "NVIDIA-SMI version  : " + DRIVER + "\nNVML version        : 580.95\nDRIVER version      : "
                + DRIVER + "\nCUDA Version        : 13.0\n", r.out);
    }

    @Test
    public void nvidiaSmiWithoutAServiceFailsLikeOneWithoutADriver() {
        ServiceFixture.Result r = SERVICE.exec(List.of(DIST.resolve("bin/nvidia-smi").toString(), "-L"),
                Map.of("VGPU_SOCKET", SERVICE.work().resolve("nobody.sock").toString()), 60);
        assertEquals(r.toString(), 9, r.exit);
        assertTrue(r.toString(), r.out.startsWith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."));
    }

    /**
     * {@code vgpu install} links nvidia-smi onto PATH where none exists and leaves NVIDIA's alone;
     * uninstall removes only its own. In a private mount namespace, as ShimIT installs.
     */
    @Test
    public void installLinksNvidiaSmiOnlyWhereNoneExistsAndUninstallRemovesOnlyOurs() throws Exception {
        boolean unshare = SERVICE.exec(List.of("unshare", "-rm", "true"), Map.of(), 30).exit == 0;
        assumeTrue("SKIP: unshare -rm (user and mount namespaces) is not available here", unshare);
        assumeTrue("SKIP: this machine has NVIDIA's nvidia-smi, so install rightly links none",
                !Files.exists(Path.of("/usr/bin/nvidia-smi")) && !Files.exists(Path.of("/usr/lib/wsl/lib/nvidia-smi")));
        Path script = SERVICE.work().resolve("install-smi.sh");
        Files.writeString(script, String.join("\n",
                "set -euo pipefail",
                "T=$1 V=$2/bin/vgpu",
                "mkdir -p \"$T/etc\"",
                "cp -r /etc/ld.so.conf /etc/ld.so.conf.d \"$T/etc/\"",
                "mount --bind \"$T/etc\" /etc",
                "export PATH=\"$T/bin:/usr/sbin:/usr/bin:/sbin:/bin\"",
                "\"$V\" install --lib-dir \"$T/lib\" --bin-dir \"$T/bin\"",
                "echo \"which=$(command -v nvidia-smi)\"",
                "nvidia-smi -L",
                "\"$V\" uninstall --lib-dir \"$T/lib\" --bin-dir \"$T/bin\"",
                "echo \"after_uninstall=$(ls \"$T/bin\" 2>/dev/null | tr '\\n' ' ')\"",
                // NVIDIA's earlier on PATH: install links nothing.
                "mkdir -p \"$T/nvidia\"",
                "printf '#!/bin/sh\\necho NVIDIA\\n' > \"$T/nvidia/nvidia-smi\"",
                "chmod +x \"$T/nvidia/nvidia-smi\"",
                "PATH=\"$T/nvidia:$PATH\" \"$V\" install --lib-dir \"$T/lib\" --bin-dir \"$T/bin\"",
                "echo \"with_nvidia=$(ls \"$T/bin\" 2>/dev/null | tr '\\n' ' ')\"",
                // A foreign nvidia-smi in the bin dir itself stays through install and uninstall.
                "cp \"$T/nvidia/nvidia-smi\" \"$T/bin/nvidia-smi\"",
                "\"$V\" install --lib-dir \"$T/lib\" --bin-dir \"$T/bin\"",
                "\"$V\" uninstall --lib-dir \"$T/lib\" --bin-dir \"$T/bin\"",
                "echo \"foreign=$(\"$T/bin/nvidia-smi\")\"",
                ""));
        Path t = Files.createTempDirectory(SERVICE.work(), "ns");
        ServiceFixture.Result r = SERVICE.exec(List.of("unshare", "-rm", "bash", script.toString(), t.toString(),
                DIST.toString()), Map.of(), 120);
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("linked " + t.resolve("bin/nvidia-smi") + " -> "
                + DIST.toRealPath().resolve("bin/nvidia-smi") + "\n"));
        assertTrue(r.toString(), r.out.contains("which=" + t.resolve("bin/nvidia-smi") + "\n"));
        assertTrue(r.toString(), r.out.contains("GPU 0: " + NAME + " (UUID: " + UUID0 + ")\nGPU 1: " + NAME + " (UUID: " + UUID1 + ")\n"));
        assertTrue(r.toString(), r.out.contains("removed " + t.resolve("bin/nvidia-smi") + "\n"));
        assertTrue(r.toString(), r.out.contains("after_uninstall=\n"));
        assertTrue(r.toString(), r.out.contains("not linking nvidia-smi: " + t.resolve("nvidia/nvidia-smi") + " is NVIDIA's"));
        assertTrue(r.toString(), r.out.contains("with_nvidia=\n"));
        assertTrue(r.toString(), r.out.contains("kept " + t.resolve("bin/nvidia-smi") + ": it is not vgpu's"));
        assertTrue(r.toString(), r.out.contains("foreign=NVIDIA\n"));
    }
}
