package io.vgpu.backend.passthrough.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds NVIDIA's {@code libcuda.so.1} by absolute path, never through the dynamic loader: on a
 * vgpu machine the loader resolves that name to vgpu's own shim, and a backend bound to it would
 * send this service's work back to a vgpu service, possibly this one.
 */
public final class DriverLocator {
    public static final String LIBRARY = "libcuda.so.1";

    /**
     * Where NVIDIA's installers, distribution packages, the container toolkit, the GPU operator and
     * WSL put the driver; searched before the loader's own configuration.
     */
    public static final List<String> USUAL_DIRECTORIES = List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/run/nvidia/driver/usr/lib/x86_64-linux-gnu",
            "/run/nvidia/driver/usr/lib64", "/usr/lib/wsl/lib");

    /**
     * The shim reads this variable for its socket: the name is in every build of vgpu's
     * {@code libcuda.so.1} and in no NVIDIA driver.
     */
    private static final byte[] VGPU_MARK = "VGPU_SOCKET".getBytes(StandardCharsets.US_ASCII);

    /** What the search found. */
    public static final class Found {
        /** The library to load; null when none may be loaded. */
        public final Path library;
        /** True when {@link #library} is vgpu's shim (allowed by configuration). */
        public final boolean vgpu;
        /** Why nothing is loaded, when {@link #library} is null. */
        public final String reason;

        private Found(Path library, boolean vgpu, String reason) {
            this.library = library;
            this.vgpu = vgpu;
            this.reason = reason;
        }

        @Override
        public String toString() {
            return library != null ? library + (vgpu ? " (vgpu's shim)" : "") : "none: " + reason;
        }
    }

    private DriverLocator() {}

    /**
     * {@code configured}: an explicit library ({@code driver.library}), or empty to search
     * {@code directories} in order. {@code allowVgpu}: whether vgpu's shim may be used (only for a
     * shim that talks to another vgpu service; the caller checks that).
     */
    public static Found locate(String configured, List<String> directories, boolean allowVgpu) {
        if (configured != null && !configured.isBlank()) {
            Path p = Path.of(configured.trim());
            if (!p.isAbsolute()) {
                return new Found(null, false, "driver.library " + configured + " is not an absolute path");
            }
            if (!Files.isRegularFile(p)) {
                return new Found(null, false, "driver.library " + p + " does not exist");
            }
            boolean vgpu;
            try {
                vgpu = isVgpuShim(p);
            } catch (IOException e) {
                return new Found(null, false, "driver.library " + p + " cannot be read: " + e.getMessage());
            }
            if (vgpu && !allowVgpu) {
                // Reasons lead with what matters: `vgpu backends` shows their first 127 bytes.
                return new Found(null, true, "driver.library is vgpu's own shim, not NVIDIA's driver (driver.allow.vgpu"
                        + " allows it): " + p);
            }
            return new Found(p, vgpu, null);
        }
        List<Path> shims = new ArrayList<>();
        for (String d : directories) {
            Path p = Path.of(d).resolve(LIBRARY);
            if (!Files.isRegularFile(p)) {
                continue;
            }
            try {
                if (!isVgpuShim(p)) {
                    return new Found(p.toRealPath(), false, null);
                }
                shims.add(p);
            } catch (IOException e) {
                // An unreadable candidate is not the driver we can load; the next one may be.
            }
        }
        if (!shims.isEmpty() && allowVgpu) {
            return new Found(shims.get(0), true, null);
        }
        return new Found(null, false, "no NVIDIA driver (" + LIBRARY + ")" + (shims.isEmpty() ? "" : ", only vgpu's shim at " + shims)
                + " in " + String.join(", ", directories));
    }

    /** The search path: the usual directories, then LD_LIBRARY_PATH, then /etc/ld.so.conf.d. */
    public static List<String> defaultDirectories() {
        Set<String> dirs = new LinkedHashSet<>(USUAL_DIRECTORIES);
        String ld = System.getenv("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String d : ld.split(":")) {
                if (!d.isBlank()) {
                    dirs.add(d);
                }
            }
        }
        Path confD = Path.of("/etc/ld.so.conf.d");
        if (Files.isDirectory(confD)) {
            try (var files = Files.list(confD)) {
                for (Path f : (Iterable<Path>) files.sorted()::iterator) {
                    if (!f.toString().endsWith(".conf")) {
                        continue;
                    }
                    for (String line : Files.readAllLines(f)) {
                        String l = line.strip();
                        if (l.startsWith("/")) {
                            dirs.add(l);
                        }
                    }
                }
            } catch (IOException e) {
                // The loader's configuration only adds candidates; the usual directories remain.
            }
        }
        return new ArrayList<>(dirs);
    }

    /** Whether {@code library} is a build of vgpu's shim (it names the shim's socket variable). */
    public static boolean isVgpuShim(Path library) throws IOException {
        // Read, not mapped: a mapping would stay in the process until collected and look like a
        // loaded library to anyone reading /proc/<pid>/maps.
        try (InputStream in = Files.newInputStream(library)) {
            byte[] buf = new byte[1 << 20];
            int kept = 0;
            for (int n; (n = in.read(buf, kept, buf.length - kept)) > 0;) {
                int filled = kept + n;
                if (indexOf(buf, filled, VGPU_MARK) >= 0) {
                    return true;
                }
                // Keep the last bytes, so a mark across two reads is found.
                kept = Math.min(VGPU_MARK.length - 1, filled);
                System.arraycopy(buf, filled - kept, buf, 0, kept);
            }
            return false;
        }
    }

    private static int indexOf(byte[] b, int length, byte[] mark) {
        outer:
        for (int i = 0; i <= length - mark.length; i++) {
            for (int j = 0; j < mark.length; j++) {
                if (b[i + j] != mark[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
