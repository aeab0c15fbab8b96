package io.vgpu.ptx.internal;

import io.vgpu.ptx.GlobalMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/** Spreads the blocks of a launch over worker threads; the caller's thread works too. */
public final class Engine {
    private final int workers;
    private final long watchdogNanos;
    private final ExecutorService pool;
    private final LongAdder total = new LongAdder();

    public Engine(int workers, long watchdogMillis) {
        this.workers = Math.max(1, workers);
        this.watchdogNanos = watchdogMillis > 0 ? watchdogMillis * 1_000_000L : 0;
        this.pool = this.workers > 1 ? Executors.newFixedThreadPool(this.workers - 1, r -> {
            Thread t = new Thread(r, "vgpu-ptx-worker");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /** The state one launch shares among its workers. */
    static final class Launch {
        final Kernel k;
        final LaunchDims dims;
        final byte[] params;
        final long deadline;
        /** Null when nothing can cancel the launch. */
        final java.util.function.BooleanSupplier cancelled;
        final AtomicLong next = new AtomicLong();
        final LongAdder executed = new LongAdder();
        volatile KernelFault fault;

        Launch(Kernel k, LaunchDims dims, byte[] params, long deadline, java.util.function.BooleanSupplier cancelled) {
            this.k = k;
            this.dims = dims;
            this.params = params;
            this.deadline = deadline;
            this.cancelled = cancelled;
        }

        void check() {
            if (fault != null) {
                throw fault;
            }
            if (deadline != 0 && System.nanoTime() - deadline > 0) {
                throw new KernelFault(KernelFault.Kind.TIMEOUT, "kernel " + k.name + " ran past the watchdog limit");
            }
            if (cancelled != null && cancelled.getAsBoolean()) {
                throw new KernelFault(KernelFault.Kind.TRAP, "kernel " + k.name + " was cancelled: its client is gone");
            }
        }
    }

    public void launch(Kernel k, LaunchDims dims, byte[] params, Supplier<GlobalMemory> memory) {
        launch(k, dims, params, memory, null);
    }

    public void launch(Kernel k, LaunchDims dims, byte[] params, Supplier<GlobalMemory> memory,
            java.util.function.BooleanSupplier cancelled) {
        byte[] p = params;
        if (p.length < k.paramSize) {
            p = java.util.Arrays.copyOf(params, k.paramSize);
        }
        Launch l = new Launch(k, dims, p, watchdogNanos == 0 ? 0 : System.nanoTime() + watchdogNanos, cancelled);
        long blocks = dims.blocks();
        int helpers = (int) Math.min(workers - 1, blocks - 1);
        List<Future<?>> futures = new ArrayList<>();
        for (int i = 0; i < helpers; i++) {
            futures.add(pool.submit(() -> work(l, memory)));
        }
        try {
            work(l, memory);
        } finally {
            for (Future<?> f : futures) {
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (l.fault == null) {
                        l.fault = new KernelFault(KernelFault.Kind.TRAP, "engine error: " + e.getCause());
                    }
                }
            }
            total.add(l.executed.sum());
        }
        if (l.fault != null) {
            throw l.fault;
        }
    }

    private static void work(Launch l, Supplier<GlobalMemory> memory) {
        long blocks = l.dims.blocks();
        if (l.next.get() >= blocks || l.fault != null) {
            return;
        }
        Block b = null;
        try {
            for (;;) {
                long id = l.next.getAndIncrement();
                if (id >= blocks || l.fault != null) {
                    return;
                }
                if (l.cancelled != null && (id & 63) == 0) {
                    l.check(); // a grid of many short blocks stops between blocks, too
                }
                if (b == null) {
                    b = new Block(l.k, l, memory.get());
                }
                b.run(id);
            }
        } catch (KernelFault f) {
            synchronized (l) {
                if (l.fault == null) {
                    l.fault = f;
                }
            }
        } catch (RuntimeException | StackOverflowError e) {
            synchronized (l) {
                if (l.fault == null) {
                    l.fault = new KernelFault(KernelFault.Kind.TRAP, "engine error in " + l.k.name + ": " + e);
                }
            }
        }
    }

    public long threadInstructions() {
        return total.sum();
    }

    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
