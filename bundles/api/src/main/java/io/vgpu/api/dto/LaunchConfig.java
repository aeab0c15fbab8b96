package io.vgpu.api.dto;

/** Grid, block and dynamic shared memory of one kernel launch. */
public class LaunchConfig {
    public int gridX = 1, gridY = 1, gridZ = 1;
    public int blockX = 1, blockY = 1, blockZ = 1;
    public int sharedMemBytes;

    public LaunchConfig() {}

    public LaunchConfig(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedMemBytes) {
        this.gridX = gridX;
        this.gridY = gridY;
        this.gridZ = gridZ;
        this.blockX = blockX;
        this.blockY = blockY;
        this.blockZ = blockZ;
        this.sharedMemBytes = sharedMemBytes;
    }

    public long threads() {
        return (long) gridX * gridY * gridZ * blockX * blockY * blockZ;
    }
}
