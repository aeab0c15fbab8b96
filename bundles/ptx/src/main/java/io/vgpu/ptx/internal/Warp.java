package io.vgpu.ptx.internal;

import io.vgpu.ptx.KernelFault;

/**
 * 32 lanes executing in lock step. Each lane has its own pc and call depth; the scheduler runs the
 * lanes with the deepest call and the lowest pc together, so lanes that diverged reconverge where
 * their paths meet (nvcc lays out structured code in order), and warp-wide instructions see every
 * lane that arrives with them.
 */
public final class Warp {
    public final Kernel k;
    public final Block block;
    public final long[] r;
    public final int[] pc = new int[32];
    public final int[] depth = new int[32];
    public final int[] retStack;
    public final int[] barrierOf = new int[32];
    public int valid;
    public int exited;
    public int waiting;
    /** Carry flags (add.cc and friends), one bit per lane. */
    public int carry;
    /** Predicate values handed to bar.red, one bit per lane. */
    public int barPred;
    public int id;
    public long executed;
    public final byte[] local;
    public final long[] tmp = new long[32 * 4];
    private int budget = 1 << 16;

    Warp(Kernel k, Block block) {
        this.k = k;
        this.block = block;
        this.r = new long[k.registers << 5];
        for (int i = 0; i < k.constRegs.length; i++) {
            java.util.Arrays.fill(r, k.constRegs[i] << 5, (k.constRegs[i] << 5) + 32, k.constValues[i]);
        }
        this.retStack = new int[32 * Math.max(1, k.maxDepth)];
        this.local = new byte[Math.max(0, k.localSize) * 32];
    }

    boolean runnable() {
        return (valid & ~exited & ~waiting) != 0;
    }

    boolean done() {
        return (valid & ~exited) == 0;
    }

    int guardMask(Insn in, int group) {
        int base = in.guard << 5;
        int m = 0;
        boolean neg = in.guardNegated;
        for (int g = group; g != 0; g &= g - 1) {
            int l = Integer.numberOfTrailingZeros(g);
            if ((r[base | l] != 0) != neg) {
                m |= 1 << l;
            }
        }
        return m;
    }

    /** Runs until every live lane waits at a barrier or has exited. */
    void run() {
        final Insn[] code = k.code;
        for (;;) {
            int runnable = valid & ~exited & ~waiting;
            if (runnable == 0) {
                return;
            }
            int bestD = -1;
            int bestPc = Integer.MAX_VALUE;
            for (int m = runnable; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                int d = depth[l];
                int p = pc[l];
                if (d > bestD || (d == bestD && p < bestPc)) {
                    bestD = d;
                    bestPc = p;
                }
            }
            int group = 0;
            int merge = Integer.MAX_VALUE;
            for (int m = runnable; m != 0; m &= m - 1) {
                int l = Integer.numberOfTrailingZeros(m);
                if (depth[l] == bestD) {
                    int p = pc[l];
                    if (p == bestPc) {
                        group |= 1 << l;
                    } else if (p < merge) {
                        merge = p;
                    }
                }
            }
            int p = bestPc;
            for (;;) {
                Insn in = code[p];
                int mask = in.guard >= 0 ? guardMask(in, group) : group;
                if (in.isControl()) {
                    executed += Integer.bitCount(mask);
                    in.control(this, group, mask, p);
                    break;
                }
                if (mask != 0) {
                    try {
                        in.exec(this, mask);
                    } catch (KernelFault f) {
                        throw located(f, in);
                    } catch (RuntimeException e) {
                        throw new KernelFault(KernelFault.Kind.TRAP, "engine error at " + in + ": " + e);
                    }
                    executed += Integer.bitCount(mask);
                }
                p++;
                if (p >= merge || --budget <= 0) {
                    for (int g = group; g != 0; g &= g - 1) {
                        pc[Integer.numberOfTrailingZeros(g)] = p;
                    }
                    break;
                }
            }
            if (budget <= 0) {
                budget = 1 << 16;
                block.launch.check();
            }
        }
    }

    private static KernelFault located(KernelFault f, Insn in) {
        if (f.getMessage() != null && f.getMessage().contains("PTX line")) {
            return f;
        }
        KernelFault g = new KernelFault(f.kind(), f.getMessage() + " at " + in);
        return g;
    }

    /** Sets the next pc of every lane in group: target where mask, fall-through elsewhere. */
    void branch(int group, int mask, int target, int pc0) {
        for (int g = group; g != 0; g &= g - 1) {
            int l = Integer.numberOfTrailingZeros(g);
            pc[l] = (mask & (1 << l)) != 0 ? target : pc0 + 1;
        }
        if (--budget <= 0) {
            budget = 1 << 16;
            block.launch.check();
        }
    }

    // ------------------------------------------------------------------ memory

    long load(int space, long addr, int size, int lane) {
        switch (space) {
            case Mem.GLOBAL:
                return block.mem.load(addr, size);
            case Mem.SHARED:
                return Space.get(block.shared, addr, size, block.sharedSize, "shared");
            case Mem.LOCAL:
                return Space.get(local, (long) lane * k.localSize + checkLocal(addr, size), size, local.length, "local");
            case Mem.PARAM:
                return Space.get(block.params, addr, size, block.params.length, "param");
            default:
                return loadGeneric(addr, size, lane);
        }
    }

    private long checkLocal(long addr, int size) {
        if (addr < 0 || addr > k.localSize - size) {
            throw Space.fault("local", addr, size, k.localSize);
        }
        return addr;
    }

    long loadGeneric(long addr, int size, int lane) {
        if (addr >= Space.SHARED_BASE && addr < Space.PARAM_BASE + Space.WINDOW) {
            if (addr < Space.LOCAL_BASE) {
                return load(Mem.SHARED, addr - Space.SHARED_BASE, size, lane);
            }
            if (addr < Space.PARAM_BASE) {
                return load(Mem.LOCAL, addr - Space.LOCAL_BASE, size, lane);
            }
            return load(Mem.PARAM, addr - Space.PARAM_BASE, size, lane);
        }
        return block.mem.load(addr, size);
    }

    void store(int space, long addr, int size, long v, int lane) {
        switch (space) {
            case Mem.GLOBAL:
                block.mem.store(addr, size, v);
                return;
            case Mem.SHARED:
                Space.put(block.shared, addr, size, v, block.sharedSize, "shared");
                return;
            case Mem.LOCAL:
                Space.put(local, (long) lane * k.localSize + checkLocal(addr, size), size, v, local.length, "local");
                return;
            case Mem.PARAM:
                throw new KernelFault(KernelFault.Kind.ILLEGAL_ADDRESS, "store to kernel parameter space");
            default:
                if (addr >= Space.SHARED_BASE && addr < Space.PARAM_BASE + Space.WINDOW) {
                    if (addr < Space.LOCAL_BASE) {
                        store(Mem.SHARED, addr - Space.SHARED_BASE, size, v, lane);
                    } else if (addr < Space.PARAM_BASE) {
                        store(Mem.LOCAL, addr - Space.LOCAL_BASE, size, v, lane);
                    } else {
                        store(Mem.PARAM, addr - Space.PARAM_BASE, size, v, lane);
                    }
                    return;
                }
                block.mem.store(addr, size, v);
        }
    }

    /** The space a generic address falls in (for atomics). */
    static int resolve(int space, long addr) {
        if (space != Mem.GENERIC) {
            return space;
        }
        if (addr >= Space.SHARED_BASE && addr < Space.LOCAL_BASE) {
            return Mem.SHARED;
        }
        if (addr >= Space.LOCAL_BASE && addr < Space.PARAM_BASE) {
            return Mem.LOCAL;
        }
        return Mem.GLOBAL;
    }

    static long strip(int resolved, int space, long addr) {
        if (space != Mem.GENERIC) {
            return addr;
        }
        switch (resolved) {
            case Mem.SHARED: return addr - Space.SHARED_BASE;
            case Mem.LOCAL: return addr - Space.LOCAL_BASE;
            default: return addr;
        }
    }

    /** Atomic read-modify-write; returns the old value. */
    long atomic(int space, long addr, int size, java.util.function.LongBinaryOperator op, long operand, int lane) {
        int s = resolve(space, addr);
        long a = strip(s, space, addr);
        if (s != Mem.GLOBAL) {
            // Shared and local memory belong to this block, whose warps run on this thread.
            long old = load(s, a, size, lane);
            store(s, a, size, op.applyAsLong(old, operand), lane);
            return old;
        }
        if ((a & (size - 1)) != 0) {
            throw new KernelFault(KernelFault.Kind.MISALIGNED_ADDRESS, String.format("atomic at 0x%x is misaligned", a));
        }
        io.vgpu.ptx.GlobalMemory m = block.mem;
        if (size == 2) {
            long word = a & ~3L;
            int shift = (int) (a & 3) * 8;
            for (;;) {
                long w = m.load(word, 4);
                long old = (w >>> shift) & 0xffff;
                long nw = (w & ~(0xffffL << shift)) | ((op.applyAsLong(old, operand) & 0xffff) << shift);
                if (m.compareAndSet(word, 4, w, nw)) {
                    return old;
                }
            }
        }
        for (;;) {
            long old = m.load(a, size);
            long nv = op.applyAsLong(old, operand);
            if (size == 4) {
                nv &= 0xffffffffL;
            }
            if (m.compareAndSet(a, size, old, nv)) {
                return old;
            }
        }
    }
}
