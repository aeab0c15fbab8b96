package io.vgpu.backend.passthrough.internal;

import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
                return new Found(null, true, "driver.library " + p + " is vgpu's own shim, not NVIDIA's driver"
                        + " (driver.allow.vgpu = true allows it where it talks to another vgpu service)");
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
        return new Found(null, false, "no NVIDIA driver (" + LIBRARY + ") in " + String.join(", ", directories)
                + (shims.isEmpty() ? "" : "; skipped vgpu's own shim at " + shims));
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
        try (FileChannel ch = FileChannel.open(library, StandardOpenOption.READ)) {
            long size = ch.size();
            // Mapped in windows that overlap by the mark's length, so a mark across a border is found.
            long window = 64L << 20;
            for (long at = 0; at < size; at += window - VGPU_MARK.length) {
                MappedByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, at, Math.min(window, size - at));
                if (contains(b, VGPU_MARK)) {
                    return true;
                }
                if (at + window >= size) {
                    break;
                }
            }
            return false;
        }
    }

    private static boolean contains(MappedByteBuffer b, byte[] mark) {
        int n = b.limit() - mark.length;
        outer:
        for (int i = 0; i <= n; i++) {
            if (b.get(i) != mark[0]) {
                continue;
            }
            for (int j = 1; j < mark.length; j++) {
                if (b.get(i + j) != mark[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }
}
