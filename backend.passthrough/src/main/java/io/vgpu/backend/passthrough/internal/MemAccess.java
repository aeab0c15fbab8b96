package io.vgpu.backend.passthrough.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * {@code cuMemSetAccess}, the one driver entry point not taken from JCuda: its 12.6.0 binding
 * passes a wrong device (see src/main/c/vgpu_passthrough.c). Call only after {@link Driver#bind}.
 */
public final class MemAccess {
    private static final String NAME = "vgpupassthrough";
    private static String failure;
    private static boolean loaded;

    private MemAccess() {}

    /** Grants {@code device} read-write access to [ptr, ptr+size); a CUresult. */
    public static synchronized int setAccess(long ptr, long size, int device, int flags) {
        if (!loaded && failure == null) {
            load();
        }
        if (!loaded) {
            throw new UnsatisfiedLinkError(failure);
        }
        return setAccess0(ptr, size, device, flags);
    }

    private static void load() {
        try {
            // Inside the framework Bundle-NativeCode offers it.
            System.loadLibrary(NAME);
            loaded = true;
            return;
        } catch (UnsatisfiedLinkError e) {
            failure = e.getMessage();
        }
        // On a plain class path (tests), from the jar.
        try (InputStream in = MemAccess.class.getResourceAsStream("/lib/lib" + NAME + ".so")) {
            if (in == null) {
                failure = "lib/lib" + NAME + ".so is not in the bundle (" + failure + ")";
                return;
            }
            Path f = Files.createTempFile("lib" + NAME, ".so");
            f.toFile().deleteOnExit();
            Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
            System.load(f.toString());
            loaded = true;
            failure = null;
        } catch (IOException | UnsatisfiedLinkError e) {
            failure = "cannot load lib" + NAME + ".so: " + e.getMessage();
        }
    }

    private static native int setAccess0(long ptr, long size, int device, int flags);
}
