package io.vgpu.backend.passthrough.internal;

import java.nio.file.Path;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Binds JCuda to one {@code libcuda.so.1}, once per JVM. The library is loaded by absolute path
 * before JCuda's JNI library, whose {@code DT_NEEDED libcuda.so.1} the dynamic loader then
 * satisfies with the object already loaded under that soname instead of searching its path,
 * where a vgpu machine has vgpu's shim. A loaded library cannot be unloaded: changing the
 * driver needs a new JVM.
 */
public final class Driver {
    private static Path bound;
    private static String failure;

    private Driver() {}

    /** Loads {@code library} and JCuda, then {@code cuInit}; null on success, else why not. */
    public static synchronized String bind(Path library) {
        if (bound != null) {
            return bound.equals(library) ? failure
                    : "this JVM already bound " + bound + "; restart the service to use " + library;
        }
        bound = library;
        try {
            System.load(library.toString());
        } catch (UnsatisfiedLinkError e) {
            return failure = "cannot load " + library + ": " + e.getMessage();
        }
        try {
            JCudaDriver.setExceptionsEnabled(false);
            int rc = JCudaDriver.cuInit(0);
            if (rc != 0) {
                return failure = "cuInit through " + library + " failed: " + jcuda.driver.CUresult.stringFor(rc);
            }
        } catch (LinkageError e) {
            return failure = "JCuda's driver library did not load against " + library + ": " + e;
        }
        return failure = null;
    }

    /** A device address as JCuda passes one. */
    public static CUdeviceptr ptr(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    /** An out-parameter for a device address that can be read back. */
    public static final class Out extends CUdeviceptr {
        public long address() {
            return getNativePointer();
        }
    }
}
