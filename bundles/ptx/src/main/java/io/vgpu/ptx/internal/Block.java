package io.vgpu.ptx.internal;

import io.vgpu.ptx.GlobalMemory;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import java.util.Arrays;

/** One thread block (CTA): its warps, shared memory and barriers, run on one worker thread. */
public final class Block {
    static final int BARRIERS = 16;

    final Kernel k;
    final Engine.Launch launch;
    final GlobalMemory mem;
    final byte[] params;
    final LaunchDims dims;
    final byte[] shared;
    final int sharedSize;
    final Warp[] warps;
    final int threads;
    /** Threads arrived at each barrier, and the count each expects (0: every live thread). */
    final int[] arrived = new int[BARRIERS];
    final int[] expected = new int[BARRIERS];
    /** bar.red: the reduction (0 none, 1 popc, 2 and, 3 or) and destination register per barrier. */
    final int[] redOp = new int[BARRIERS];
    final int[] redDst = new int[BARRIERS];

    Block(Kernel k, Engine.Launch launch, GlobalMemory mem) {
        this.k = k;
        this.launch = launch;
        this.mem = mem;
        this.params = launch.params;
        this.dims = launch.dims;
        this.sharedSize = k.sharedStatic + dims.dynamicShared;
        this.shared = new byte[sharedSize];
        this.threads = dims.threadsPerBlock();
        int n = (threads + 31) / 32;
        this.warps = new Warp[n];
        for (int i = 0; i < n; i++) {
            warps[i] = new Warp(k, this);
            warps[i].id = i;
        }
    }

    /** Runs block number {@code linear} of the grid to completion. */
    void run(long linear) {
        int cx = (int) (linear % dims.gridX);
        int cy = (int) (linear / dims.gridX % dims.gridY);
        int cz = (int) (linear / ((long) dims.gridX * dims.gridY));
        // Shared memory is not cleared between blocks: on a GPU it starts with whatever was there.
        Arrays.fill(arrived, 0);
        Arrays.fill(expected, 0);
        for (Warp w : warps) {
            int first = w.id * 32;
            int lanes = Math.min(32, threads - first);
            w.valid = lanes == 32 ? -1 : (1 << lanes) - 1;
            w.exited = 0;
            w.waiting = 0;
            w.carry = 0;
            Arrays.fill(w.pc, 0);
            Arrays.fill(w.depth, 0);
            long[] r = w.r;
            for (int l = 0; l < 32; l++) {
                int t = first + l;
                r[Sreg.TID_X << 5 | l] = t % dims.blockX;
                r[Sreg.TID_Y << 5 | l] = t / dims.blockX % dims.blockY;
                r[Sreg.TID_Z << 5 | l] = t / (dims.blockX * dims.blockY);
                r[Sreg.NTID_X << 5 | l] = dims.blockX;
                r[Sreg.NTID_Y << 5 | l] = dims.blockY;
                r[Sreg.NTID_Z << 5 | l] = dims.blockZ;
                r[Sreg.CTAID_X << 5 | l] = cx;
                r[Sreg.CTAID_Y << 5 | l] = cy;
                r[Sreg.CTAID_Z << 5 | l] = cz;
                r[Sreg.NCTAID_X << 5 | l] = dims.gridX;
                r[Sreg.NCTAID_Y << 5 | l] = dims.gridY;
                r[Sreg.NCTAID_Z << 5 | l] = dims.gridZ;
                r[Sreg.LANEID << 5 | l] = l;
                r[Sreg.WARPID << 5 | l] = w.id;
                r[Sreg.NWARPID << 5 | l] = 64;
                r[Sreg.LANEMASK_EQ << 5 | l] = (1L << l) & 0xffffffffL;
                r[Sreg.LANEMASK_LT << 5 | l] = ((1L << l) - 1) & 0xffffffffL;
                r[Sreg.LANEMASK_LE << 5 | l] = ((1L << (l + 1)) - 1) & 0xffffffffL;
                r[Sreg.LANEMASK_GE << 5 | l] = (~((1L << l) - 1)) & 0xffffffffL;
                r[Sreg.LANEMASK_GT << 5 | l] = (~((1L << (l + 1)) - 1)) & 0xffffffffL;
                r[Sreg.SMID << 5 | l] = linear % 132;
                r[Sreg.NSMID << 5 | l] = 132;
                r[Sreg.GRIDID << 5 | l] = 1;
                r[Sreg.DYN_SMEM << 5 | l] = dims.dynamicShared;
                r[Sreg.TOTAL_SMEM << 5 | l] = sharedSize;
                r[Sreg.ZERO << 5 | l] = 0;
            }
        }
        for (;;) {
            boolean live = false;
            for (Warp w : warps) {
                if (w.runnable()) {
                    w.run();
                }
                live |= !w.done();
            }
            if (!live) {
                break;
            }
            if (!releaseBarriers()) {
                throw new KernelFault(KernelFault.Kind.TRAP, "barrier deadlock: every live thread of block " + linear
                        + " waits at a barrier that cannot complete (bar.sync in divergent code, or a thread count that never arrives)");
            }
        }
        for (Warp w : warps) {
            launch.executed.add(w.executed);
            w.executed = 0;
        }
    }

    /** Releases every complete barrier; false if none could be. */
    private boolean releaseBarriers() {
        int live = 0;
        for (Warp w : warps) {
            live += Integer.bitCount(w.valid & ~w.exited);
        }
        boolean any = false;
        for (int b = 0; b < BARRIERS; b++) {
            if (arrived[b] == 0) {
                continue;
            }
            int need = expected[b] > 0 ? expected[b] : live;
            if (arrived[b] < need) {
                continue;
            }
            any = true;
            long result = redOp[b] == 2 ? 1 : 0;
            if (redOp[b] != 0) {
                for (Warp w : warps) {
                    for (int m = w.waiting; m != 0; m &= m - 1) {
                        int l = Integer.numberOfTrailingZeros(m);
                        if (w.barrierOf[l] == b) {
                            boolean p = (w.barPred & (1 << l)) != 0;
                            if (redOp[b] == 1) {
                                result += p ? 1 : 0;
                            } else if (redOp[b] == 2) {
                                result &= p ? 1 : 0;
                            } else {
                                result |= p ? 1 : 0;
                            }
                        }
                    }
                }
            }
            for (Warp w : warps) {
                for (int m = w.waiting; m != 0; m &= m - 1) {
                    int l = Integer.numberOfTrailingZeros(m);
                    if (w.barrierOf[l] == b) {
                        w.waiting &= ~(1 << l);
                        if (redOp[b] != 0) {
                            w.r[redDst[b] << 5 | l] = result;
                        }
                    }
                }
            }
            arrived[b] = 0;
            expected[b] = 0;
            redOp[b] = 0;
        }
        return any;
    }

    /** A lane group arrives at barrier b; wait=false for bar.arrive. */
    void arrive(Warp w, int lanes, int b, int count, boolean wait) {
        if (b < 0 || b >= BARRIERS) {
            throw new KernelFault(KernelFault.Kind.TRAP, "barrier id " + b + " is out of range 0-15");
        }
        arrived[b] += Integer.bitCount(lanes);
        if (count > 0) {
            expected[b] = count;
        }
        if (wait) {
            w.waiting |= lanes;
            for (int m = lanes; m != 0; m &= m - 1) {
                w.barrierOf[Integer.numberOfTrailingZeros(m)] = b;
            }
        }
    }
}
