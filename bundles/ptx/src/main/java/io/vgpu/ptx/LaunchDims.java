package io.vgpu.ptx;

/** Grid and block dimensions and the dynamic shared memory of one launch. */
public final class LaunchDims {
    public final int gridX, gridY, gridZ, blockX, blockY, blockZ;
    public final int dynamicShared;

    public LaunchDims(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int dynamicShared) {
        if (gridX < 1 || gridY < 1 || gridZ < 1 || blockX < 1 || blockY < 1 || blockZ < 1 || dynamicShared < 0) {
            throw new IllegalArgumentException("launch dimensions must be positive");
        }
        this.gridX = gridX;
        this.gridY = gridY;
        this.gridZ = gridZ;
        this.blockX = blockX;
        this.blockY = blockY;
        this.blockZ = blockZ;
        this.dynamicShared = dynamicShared;
    }

    public static LaunchDims linear(int grid, int block) {
        return new LaunchDims(grid, 1, 1, block, 1, 1, 0);
    }

    public long blocks() {
        return (long) gridX * gridY * gridZ;
    }

    public int threadsPerBlock() {
        return blockX * blockY * blockZ;
    }

    @Override
    public String toString() {
        return "grid (" + gridX + "," + gridY + "," + gridZ + ") block (" + blockX + "," + blockY + "," + blockZ + ")"
                + (dynamicShared > 0 ? " +" + dynamicShared + " B shared" : "");
    }
}
