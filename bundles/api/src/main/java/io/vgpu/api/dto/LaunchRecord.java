package io.vgpu.api.dto;

/** One launch as a simulated backend recorded it. */
public class LaunchRecord {
    public long sequence;
    public String kernel;
    public LaunchConfig config;
    public int paramBytes;
    /** True when the kernel ran (from its PTX or a host kernel); false when it could not. */
    public boolean executed;
    /** The launch's result code. */
    public int result;

    @Override
    public String toString() {
        LaunchConfig c = config;
        return "#" + sequence + " " + kernel + " grid(" + c.gridX + "," + c.gridY + "," + c.gridZ + ") block(" + c.blockX
                + "," + c.blockY + "," + c.blockZ + ") smem=" + c.sharedMemBytes + " params=" + paramBytes + "B "
                + (executed ? "executed" : "recorded") + (result != 0 ? " result=" + result : "");
    }
}
