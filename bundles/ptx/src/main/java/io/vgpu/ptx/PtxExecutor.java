package io.vgpu.ptx;

import io.vgpu.ptx.internal.Engine;
import java.util.function.Supplier;

/**
 * Runs grids: the blocks of one launch are spread over a pool of worker threads (blocks are
 * independent on a GPU too); the warps of a block run on one worker, interleaved at barriers.
 * A launch returns when the whole grid is done or the first fault stopped it.
 */
public final class PtxExecutor implements AutoCloseable {
    private final Engine engine;

    /**
     * @param workers threads running blocks (at least 1)
     * @param watchdogMillis a launch running longer fails with {@link KernelFault.Kind#TIMEOUT}; 0 for none
     */
    public PtxExecutor(int workers, long watchdogMillis) {
        this.engine = new Engine(workers, watchdogMillis);
    }

    /**
     * Runs the grid. {@code memory} supplies one view of global memory per worker. Throws
     * {@link KernelFault} for what a GPU would fail the launch with.
     */
    public void launch(PtxKernel kernel, LaunchDims dims, byte[] params, Supplier<GlobalMemory> memory) {
        engine.launch(kernel.kernel, dims, params, memory, null);
    }

    /**
     * Runs the grid like {@link #launch(PtxKernel, LaunchDims, byte[], Supplier)}, and stops it
     * with a {@link KernelFault.Kind#TRAP} fault once {@code cancelled} holds. It is asked on the
     * watchdog's schedule (every 65,536 instructions of a warp, and between blocks), from the
     * launch's worker threads.
     */
    public void launch(PtxKernel kernel, LaunchDims dims, byte[] params, Supplier<GlobalMemory> memory,
            java.util.function.BooleanSupplier cancelled) {
        engine.launch(kernel.kernel, dims, params, memory, cancelled);
    }

    /** Thread-instructions executed by all launches so far (one per active lane per instruction). */
    public long threadInstructions() {
        return engine.threadInstructions();
    }

    @Override
    public void close() {
        engine.close();
    }
}
