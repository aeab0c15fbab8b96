package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * The Debian package {@code mvn package} builds (launcher/target/vgpu_<version>_amd64.deb): what it
 * holds, what lintian says of it, and its install/upgrade/remove/purge cycle in a throwaway Debian
 * root ({@code src/test/deb/deb-cycle.sh}, which makes the root once with debootstrap and caches
 * it in ~/.cache/vgpu/deb-root). Each part is skipped with one line where its tool (dpkg-deb,
 * lintian, root and debootstrap) is missing or the Debian mirror cannot be reached in time.
 */
public class DebPackageIT {
    static final Path TARGET = Path.of(System.getProperty("vgpu.deb.dir", "../launcher/target")).toAbsolutePath();
    static final String MAVEN_VERSION = System.getProperty("vgpu.version", "0.1.0-SNAPSHOT");
    static final Path CYCLE = Path.of("src/test/deb/deb-cycle.sh").toAbsolutePath();

    private static Path deb;

    @BeforeClass
    public static void findThePackage() throws IOException {
        try (Stream<Path> files = Files.list(TARGET)) {
            List<Path> debs = files.filter(f -> f.getFileName().toString().matches("vgpu_.*_amd64\\.deb"))
                    .collect(Collectors.toList());
            assertEquals("one vgpu_*_amd64.deb in " + TARGET + ": " + debs, 1, debs.size());
            deb = debs.get(0);
        }
    }

    /** How a program ended and what it printed (stdout and stderr together). */
    record Run(int exit, String out) {
        @Override
        public String toString() {
            return "exit " + exit + "\n" + out;
        }
    }

    static Run run(long timeoutSeconds, String... command) {
        try {
            Path out = Files.createTempFile("deb-it", ".txt");
            try {
                Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
                if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                    p.descendants().forEach(ProcessHandle::destroyForcibly);
                    p.destroyForcibly();
                    p.waitFor();
                    throw new AssertionError(Arrays.toString(command) + " took over " + timeoutSeconds + "s:\n"
                            + Files.readString(out, StandardCharsets.UTF_8));
                }
                return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    static boolean onPath(String tool) {
        return Stream.of(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":"))
                .anyMatch(dir -> Files.isExecutable(Path.of(dir, tool)));
    }

    /** The Maven version as Debian orders it: 0.1.0-SNAPSHOT is 0.1.0~snapshot, before 0.1.0. */
    static String debianVersion() {
        return MAVEN_VERSION.replaceFirst("[-+]SNAPSHOT$", "~snapshot").replaceAll("[^.+~A-Za-z0-9]+", "+");
    }

    static String field(String name) {
        Run r = run(30, "dpkg-deb", "-f", deb.toString(), name);
        assertEquals(r.toString(), 0, r.exit);
        return r.out.strip();
    }

    @Test
    public void controlFieldsNameTheVersionTheJavaRuntimeAndTheScripts() {
        assumeTrue("SKIP: dpkg-deb is not installed", onPath("dpkg-deb"));
        String version = debianVersion();
        assertEquals("vgpu_" + version + "_amd64.deb", deb.getFileName().toString());
        assertEquals("vgpu", field("Package"));
        assertEquals(version, field("Version"));
        assertEquals("amd64", field("Architecture"));
        String depends = field("Depends");
        assertTrue(depends, depends.contains("default-jre-headless (>= 2:1.17) | java17-runtime-headless"));
        if (onPath("dpkg") && MAVEN_VERSION.endsWith("-SNAPSHOT")) {
            String release = MAVEN_VERSION.substring(0, MAVEN_VERSION.length() - "-SNAPSHOT".length());
            assertEquals(version + " sorts before " + release, 0,
                    run(30, "dpkg", "--compare-versions", version, "lt", release).exit);
        }
        Run info = run(30, "dpkg-deb", "-I", deb.toString());
        for (String script : List.of("postinst", "prerm", "postrm", "conffiles", "md5sums")) {
            assertTrue(info.out, info.out.matches("(?s).*\\s" + script + "\\s.*"));
        }
    }

    @Test
    public void itHoldsTheDistributionUnderOptAndTheConfigurationInEtcAsConffiles() throws IOException {
        assumeTrue("SKIP: dpkg-deb is not installed", onPath("dpkg-deb"));
        Run list = run(30, "dpkg-deb", "-c", deb.toString());
        assertEquals(list.toString(), 0, list.exit);
        // "mode path" or "mode path -> target" per entry, as tar lists them.
        List<String> entries = new ArrayList<>();
        for (String line : list.out.split("\n")) {
            String[] f = line.trim().split("\\s+", 6);
            if (f.length == 6) {
                entries.add(f[0] + " " + f[5].replaceFirst("^\\./", "/"));
            }
        }
        String all = String.join("\n", entries) + "\n";
        for (String expected : List.of(
                "-rwxr-xr-x /opt/vgpu/bin/vgpu", "-rwxr-xr-x /opt/vgpu/bin/vgpu-service", "-rwxr-xr-x /opt/vgpu/bin/nvidia-smi",
                "-rwxr-xr-x /opt/vgpu/bin/vgpu-demo", "-rwxr-xr-x /opt/vgpu/lib/vgpu-ctl", "-rwxr-xr-x /opt/vgpu/lib/vgpu-probe",
                "-rw-r--r-- /opt/vgpu/lib/libcuda.so.1", "-rw-r--r-- /opt/vgpu/lib/libnvidia-ml.so.1",
                "-rw-r--r-- /opt/vgpu/lib/vgpu-service.jar", "-rw-r--r-- /opt/vgpu/README.md",
                "lrw-r--r-- /opt/vgpu/lib/libcuda.so -> libcuda.so.1", "lrw-r--r-- /opt/vgpu/lib/libnvidia-ml.so -> libnvidia-ml.so.1",
                "lrw-r--r-- /opt/vgpu/conf -> /etc/vgpu",
                "-rw-r--r-- /etc/vgpu/io.vgpu.router.cfg", "-rw-r--r-- /etc/vgpu/io.vgpu.bridge.cfg",
                "-rw-r--r-- /lib/systemd/system/vgpu.service",
                "-rw-r--r-- /usr/share/doc/vgpu/copyright", "-rw-r--r-- /usr/share/doc/vgpu/changelog.gz",
                "-rw-r--r-- /usr/share/lintian/overrides/vgpu")) {
            assertTrue(expected + " in\n" + all, all.contains(expected + "\n"));
        }
        assertTrue(all, !all.contains("/opt/vgpu/conf/") && !all.contains("/opt/vgpu/systemd") && !all.contains(".keep"));

        // Every file in /etc/vgpu is a conffile, and nothing else is.
        Path ctrl = Files.createTempDirectory("deb-ctrl");
        try {
            Run e = run(30, "dpkg-deb", "-e", deb.toString(), ctrl.toString());
            assertEquals(e.toString(), 0, e.exit);
            List<String> conffiles = Files.readAllLines(ctrl.resolve("conffiles")).stream().sorted().collect(Collectors.toList());
            assertEquals(List.of("/etc/vgpu/README", "/etc/vgpu/io.vgpu.backend.passthrough.cfg.example", "/etc/vgpu/io.vgpu.bridge.cfg", "/etc/vgpu/io.vgpu.bridge.cfg.example",
                    "/etc/vgpu/io.vgpu.router.cfg"), conffiles);
            String postinst = Files.readString(ctrl.resolve("postinst"));
            assertTrue(postinst, postinst.contains("/opt/vgpu/bin/vgpu install --lib-dir /opt/vgpu/lib --bin-dir /usr/bin"));
        } finally {
            run(30, "rm", "-rf", ctrl.toString());
        }
        Run bridge = run(30, "sh", "-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -xOf - ./etc/vgpu/io.vgpu.bridge.cfg", "sh", deb.toString());
        assertTrue(bridge.toString(), bridge.out.contains("\nsocket.group = vgpu\n"));
        Run changelog = run(30, "sh", "-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -xOf - ./usr/share/doc/vgpu/changelog.gz | gzip -dc",
                "sh", deb.toString());
        assertTrue(changelog.toString(), changelog.out.startsWith("vgpu (" + debianVersion() + ") unstable; urgency=medium\n"));
    }

    @Test
    public void lintianFindsNoErrors() {
        assumeTrue("SKIP: lintian is not installed (apt-get install lintian)", onPath("lintian"));
        Run r = run(300, "lintian", "--fail-on", "error", deb.toString());
        List<String> tags = r.out.lines().filter(l -> l.matches("^[EWIPX]: .*")).collect(Collectors.toList());
        tags.forEach(t -> System.out.println("lintian " + t));
        System.out.printf("lintian: %d error(s), %d warning(s)%n", tags.stream().filter(t -> t.startsWith("E:")).count(),
                tags.stream().filter(t -> t.startsWith("W:")).count());
        assertTrue(r.toString(), tags.stream().noneMatch(t -> t.startsWith("E:")));
        assertEquals(r.toString(), 0, r.exit);
    }

    /**
     * apt-get install ./vgpu_*.deb, upgrade, remove and purge in a Debian root made by the script,
     * with a CUDA program that reaches the service the package started there. The script bounds
     * making the root (600 s) and skips when it cannot be made.
     */
    @Test
    public void installUpgradeRemovePurgeInAThrowawayRoot() {
        Path work = Path.of("target/deb-cycle").toAbsolutePath();
        Run r = run(1200, "bash", CYCLE.toString(), deb.toString(), work.toString());
        r.out.lines().forEach(l -> System.out.println("deb-cycle: " + l));
        if (r.exit == 77) {
            String skip = r.out.lines().filter(l -> l.startsWith("SKIP: ")).findFirst().orElse("SKIP: " + r.out.strip());
            assumeTrue(skip, false);
        }
        assertEquals(r.toString(), 0, r.exit);
        assertTrue(r.toString(), r.out.contains("\ncycle passed\n"));
    }
}
