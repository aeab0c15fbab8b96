package io.vgpu.api.dto;

import java.util.ArrayList;
import java.util.List;

/**
 * A module image as the application handed it over (fatbin, cubin or PTX), together with the
 * metadata the core parsed from it. Backends with a real driver load {@link #data}; simulated
 * backends work from the metadata.
 */
public class ModuleImage {
    public enum Format { FATBIN, CUBIN, PTX }

    public Format format;
    /** The image bytes exactly as received. */
    public byte[] data;
    /** SM architecture of the code the metadata came from, e.g. 90; 0 if unknown. */
    public int arch;
    /**
     * True when that code is PTX, which a driver compiles for the device at load; false for a
     * cubin, whose SASS runs as it is. Decides {@code CU_FUNC_ATTRIBUTE_BINARY_VERSION}.
     */
    public boolean ptx;
    /**
     * The virtual architecture the code was generated for ({@code compute_75} gives 75): the PTX
     * target, or the one a cubin's toolchain recorded; 0 if unknown. This is
     * {@code CU_FUNC_ATTRIBUTE_PTX_VERSION}.
     */
    public int virtualArch;
    /**
     * The PTX text a simulated backend executes: the newest PTX the image holds at or below the
     * device's architecture (a PTX image is its own), decompressed; null when the image has none
     * (SASS only). Backends with a real driver ignore it.
     */
    public byte[] ptxSource;
    /** The architecture that PTX was generated for ({@code compute_90} gives 90); 0 without PTX. */
    public int ptxArch;
    public List<KernelInfo> kernels = new ArrayList<>();
    public List<GlobalInfo> globals = new ArrayList<>();
    /** Bytes the globals need in total, each aligned to 256. */
    public long globalsSize;

    public KernelInfo kernel(String name) {
        for (KernelInfo k : kernels) {
            if (k.name.equals(name)) {
                return k;
            }
        }
        return null;
    }

    public GlobalInfo global(String name) {
        for (GlobalInfo g : globals) {
            if (g.name.equals(name)) {
                return g;
            }
        }
        return null;
    }
}
