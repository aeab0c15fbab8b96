package io.vgpu.backend.mock;

import io.vgpu.api.CuResult;
import io.vgpu.api.kernel.DeviceMemory;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One simulated device's memory, built like the real VMM: physical allocations, mapped into the
 * device address space. Pages materialise on first write, so 80 GiB can be allocated on a machine
 * with far less RAM; untouched bytes read as zero. The pages are {@link PagePool}'s, outside the
 * Java heap.
 *
 * <p>Every range is checked, overflow-safe, against the owner's mappings before any byte moves
 * ({@link #representable}); copies and fills run in bounded pieces and stop between them when
 * their {@code stop} condition holds (the owner's client is gone).
 */
final class MockMemory {
    static final int PAGE = PagePool.PAGE;

    /** Physical memory; {@code owner} is the client group it belongs to. */
    static final class Physical {
        final long size;
        final long owner;
        final AtomicReferenceArray<PagePool.Page> pages;
        int mappings;
        boolean released;
        /** Released and unmapped: its pages went back to the pool. Written under the memory's monitor. */
        volatile boolean freed;
        /** A bit per page written since the last look, while a migration tracks writes; else null. */
        volatile long[] dirty;

        Physical(long size, long owner) {
            this.size = size;
            this.owner = owner;
            this.pages = new AtomicReferenceArray<>((int) ((size + PAGE - 1) / PAGE));
        }

        /** The page, or null where nothing was written yet. */
        PagePool.Page page(long index) {
            return pages.get((int) index);
        }

        /** After the bytes are in the page, so that whoever clears the bit and then reads sees them. */
        void mark(long index) {
            long[] d = dirty;
            if (d != null) {
                BITS.getAndBitwiseOr(d, (int) (index >>> 6), 1L << index);
            }
        }
    }

    private static final java.lang.invoke.VarHandle BITS = java.lang.invoke.MethodHandles.arrayElementVarHandle(long[].class);

    static final class Mapping {
        final long address;
        final long size;
        final long offset;
        final Physical physical;

        Mapping(long address, long size, long offset, Physical physical) {
            this.address = address;
            this.size = size;
            this.offset = offset;
            this.physical = physical;
        }

        long end() {
            return address + size;
        }
    }

    private final long total;
    private long allocated;
    private long materialisedPages;
    private final TreeMap<Long, Mapping> mappings = new TreeMap<>();
    private final ReadWriteLock lock = new ReentrantReadWriteLock();

    MockMemory(long total) {
        this.total = total;
    }

    long total() {
        return total;
    }

    synchronized long allocated() {
        return allocated;
    }

    synchronized long free() {
        return total - allocated;
    }

    /** Reserves capacity for a new physical allocation; null when the device is full. */
    synchronized Physical create(long size, long owner) {
        // The page table is one array: a size beyond what it can index is beyond any device too.
        if (size <= 0 || size > total - allocated || (size - 1) / PAGE >= Integer.MAX_VALUE - 8) {
            return null;
        }
        allocated += size;
        return new Physical(size, owner);
    }

    /** Drops the physical memory once it is released and unmapped, as the driver does. */
    synchronized void release(Physical p) {
        p.released = true;
        maybeFree(p);
    }

    private void maybeFree(Physical p) {
        if (p.released && p.mappings == 0 && !p.freed) {
            p.freed = true;
            allocated -= p.size;
            for (int i = 0; i < p.pages.length(); i++) {
                PagePool.Page page = p.pages.getAndSet(i, null);
                if (page != null) {
                    materialisedPages--;
                    recycle(page);
                }
            }
        }
    }

    /**
     * Pages freed while a kernel runs on this device wait until none does: a kernel thread finds
     * its page without the lock that unmapping takes, and must never find another client's bytes
     * in it. Guarded by {@code this}.
     */
    private final java.util.ArrayList<PagePool.Page> limbo = new java.util.ArrayList<>();
    private int launches;

    private void recycle(PagePool.Page page) {
        if (launches > 0) {
            limbo.add(page);
        } else {
            PagePool.SHARED.give(page);
        }
    }

    /** Brackets a kernel launch, so that pages freed meanwhile are reused only after it ends. */
    synchronized void launchStarted() {
        launches++;
    }

    synchronized void launchEnded() {
        if (--launches == 0) {
            for (PagePool.Page page : limbo) {
                PagePool.SHARED.give(page);
            }
            limbo.clear();
            limbo.trimToSize();
        }
    }

    int map(long address, long size, long offset, Physical p) {
        lock.writeLock().lock();
        try {
            if (size <= 0 || offset < 0 || size > p.size || offset > p.size - size || !representable(address, size)) {
                return CuResult.INVALID_VALUE;
            }
            Map.Entry<Long, Mapping> prev = mappings.floorEntry(address + size - 1);
            if (prev != null && prev.getValue().end() > address) {
                return CuResult.ALREADY_MAPPED;
            }
            mappings.put(address, new Mapping(address, size, offset, p));
            synchronized (this) {
                p.mappings++;
            }
            return CuResult.SUCCESS;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Removes the mapping that starts at {@code address}; returns it, or null. */
    Mapping unmap(long address) {
        lock.writeLock().lock();
        try {
            Mapping m = mappings.remove(address);
            if (m != null) {
                synchronized (this) {
                    m.physical.mappings--;
                    maybeFree(m.physical);
                }
            }
            return m;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Removes every mapping of the given physical allocations (their context is going away). */
    void unmapAll(java.util.Collection<Physical> physical) {
        lock.writeLock().lock();
        try {
            java.util.List<Long> doomed = new java.util.ArrayList<>();
            for (Mapping m : mappings.values()) {
                if (physical.contains(m.physical)) {
                    doomed.add(m.address);
                }
            }
            for (long a : doomed) {
                unmap(a);
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    Mapping mappingAt(long address) {
        lock.readLock().lock();
        try {
            return mappings.get(address);
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * True when [address, address+length) is a range of addresses at all: not negative (an unsigned
     * size above 2^63) and not wrapping past the end of the address space.
     */
    static boolean representable(long address, long length) {
        return length >= 0 && address >= 0 && length <= Long.MAX_VALUE - address;
    }

    /**
     * Walks [address, address+length) across contiguous mappings owned by {@code owner}; false if
     * any byte is unmapped or someone else's.
     */
    private boolean walk(long address, long length, long owner, Chunk chunk) {
        if (!representable(address, length)) {
            return false;
        }
        lock.readLock().lock();
        try {
            long cursor = address;
            long end = address + length;
            while (cursor < end) {
                Map.Entry<Long, Mapping> e = mappings.floorEntry(cursor);
                if (e == null || e.getValue().end() <= cursor || e.getValue().physical.owner != owner) {
                    return false;
                }
                Mapping m = e.getValue();
                long n = Math.min(end, m.end()) - cursor;
                chunk.apply(m.physical, m.offset + (cursor - m.address), cursor - address, n);
                cursor += n;
            }
            return true;
        } finally {
            lock.readLock().unlock();
        }
    }

    private boolean covered(long address, long length, long owner) {
        return walk(address, length, owner, (p, physOffset, bufOffset, n) -> {});
    }

    @FunctionalInterface
    private interface Chunk {
        void apply(Physical p, long physOffset, long bufOffset, long length);
    }

    /** A piece of a range inside one page: the page's index, the offset in it, where the piece is in the caller's buffer. */
    @FunctionalInterface
    private interface PagePiece {
        void apply(Physical p, long page, int inPage, long bufOffset, int length);
    }

    /** {@link #walk} in pieces that never cross a page. */
    private boolean walkPages(long address, long length, long owner, PagePiece piece) {
        return walk(address, length, owner, (p, off, bufOff, n) -> {
            for (long done = 0; done < n;) {
                long o = off + done;
                int inPage = (int) (o % PAGE);
                int k = (int) Math.min(n - done, PAGE - inPage);
                piece.apply(p, o / PAGE, inPage, bufOff + done, k);
                done += k;
            }
        });
    }

    int write(long address, ByteBuffer src, long owner) {
        int length = src.remaining();
        if (!covered(address, length, owner)) {
            return CuResult.INVALID_VALUE;
        }
        int base = src.position();
        try {
            walkPages(address, length, owner, (p, page, inPage, bufOff, k) -> {
                int from = base + (int) bufOff;
                if (k == PAGE) {
                    writeWhole(p, page, src, from);
                } else {
                    materialise(p, page).bytes.put(inPage, src, from, k);
                }
                p.mark(page);
            });
        } catch (PagePool.Exhausted e) {
            // the bytes written so far stay; the caller learns the copy did not complete
            return CuResult.OUT_OF_MEMORY;
        }
        src.position(base + length);
        return CuResult.SUCCESS;
    }

    int read(long address, ByteBuffer dst, long owner) {
        int length = dst.remaining();
        if (!covered(address, length, owner)) {
            return CuResult.INVALID_VALUE;
        }
        int base = dst.position();
        walkPages(address, length, owner, (p, index, inPage, bufOff, k) -> {
            PagePool.Page page = p.page(index);
            if (page == null) {
                dst.put(base + (int) bufOff, PagePool.ZERO, 0, k);
            } else {
                dst.put(base + (int) bufOff, page.bytes, inPage, k);
            }
        });
        dst.position(base + length);
        return CuResult.SUCCESS;
    }

    /** The page, made (zeroed) if nothing was written to it yet; null if the memory is freed. */
    private PagePool.Page materialise(Physical p, long index) {
        PagePool.Page page = p.page(index);
        if (page != null) {
            return page;
        }
        PagePool.Page fresh = PagePool.SHARED.take(false);
        return publish(p, index, fresh) ? fresh : p.page(index); // null only once freed
    }

    /**
     * Writes a whole page from {@code src} at {@code from}. A page not made yet is filled before
     * it is published, so it needs no zeroing first and nobody sees what it held before.
     */
    private void writeWhole(Physical p, long index, ByteBuffer src, int from) {
        PagePool.Page page = p.page(index);
        if (page == null) {
            PagePool.Page fresh = PagePool.SHARED.take(true);
            fresh.bytes.put(0, src, from, PAGE);
            if (publish(p, index, fresh)) {
                return;
            }
            page = p.page(index);
            if (page == null) {
                return; // freed meanwhile; only a kernel's late store can get here
            }
        }
        page.bytes.put(0, src, from, PAGE);
    }

    /**
     * Installs {@code fresh} as the page unless another thread was first or the memory was freed
     * meanwhile (a kernel's late store); then {@code fresh}, never seen by anyone, goes back.
     */
    private boolean publish(Physical p, long index, PagePool.Page fresh) {
        synchronized (this) {
            if (!p.freed && p.pages.compareAndSet((int) index, null, fresh)) {
                materialisedPages++;
                return true;
            }
        }
        PagePool.SHARED.give(fresh);
        return false;
    }

    /** A piece of a copy or fill: bounded work between two looks at the stop condition. */
    static final int PIECE = 4 << 20;

    /**
     * Copies within device memory (memmove semantics), through a bounded bounce buffer so huge
     * copies need no huge array. Both ranges are checked before anything moves; between pieces
     * the copy stops, answering {@code CUDA_ERROR_DEINITIALIZED}, once {@code stop} says so.
     */
    int copy(long dst, long src, long length, long owner, java.util.function.BooleanSupplier stop) {
        if (!covered(dst, length, owner) || !covered(src, length, owner)) {
            return CuResult.INVALID_VALUE;
        }
        if (length == 0) {
            return CuResult.SUCCESS;
        }
        boolean backwards = dst > src && dst - src < length;
        ByteBuffer bounce = ByteBuffer.allocate((int) Math.min(length, PIECE));
        for (long done = 0; done < length;) {
            if (stop.getAsBoolean()) {
                return CuResult.DEINITIALIZED;
            }
            int n = (int) Math.min(bounce.capacity(), length - done);
            long at = backwards ? length - done - n : done;
            bounce.clear().limit(n);
            int rc = read(src + at, bounce, owner);
            if (rc == CuResult.SUCCESS) {
                bounce.flip();
                rc = write(dst + at, bounce, owner);
            }
            if (rc != CuResult.SUCCESS) {
                // Only a mapping removed meanwhile gets here; never go on past a failed piece.
                return rc;
            }
            done += n;
        }
        return CuResult.SUCCESS;
    }

    int copy(long dst, long src, long length, long owner) {
        return copy(dst, src, length, owner, () -> false);
    }

    /**
     * Stores {@code count} elements of {@code elementSize} bytes, checked first, in pieces with a
     * look at {@code stop} before each. Zeros are not written to pages nobody wrote yet (they
     * read as zero already), so clearing a huge allocation costs no host memory.
     */
    int fill(long address, int value, int elementSize, long count, long owner, java.util.function.BooleanSupplier stop) {
        if (elementSize <= 0 || count < 0 || count > Long.MAX_VALUE / elementSize) {
            return CuResult.INVALID_VALUE;
        }
        long length = count * elementSize;
        if (!covered(address, length, owner)) {
            return CuResult.INVALID_VALUE;
        }
        if (length == 0) {
            return CuResult.SUCCESS;
        }
        byte[] pattern = new byte[(int) Math.min(length, PIECE)];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (value >>> (8 * (i % elementSize)));
        }
        boolean zero = value == 0 || elementSize == 1 && (value & 0xff) == 0 || elementSize == 2 && (value & 0xffff) == 0;
        for (long done = 0; done < length;) {
            if (stop.getAsBoolean()) {
                return CuResult.DEINITIALIZED;
            }
            int n = (int) Math.min(pattern.length, length - done);
            int rc = zero ? (clear(address + done, n, owner) ? CuResult.SUCCESS : CuResult.INVALID_VALUE)
                    : write(address + done, ByteBuffer.wrap(pattern, 0, n), owner);
            if (rc != CuResult.SUCCESS) {
                return rc;
            }
            done += n;
        }
        return CuResult.SUCCESS;
    }

    int fill(long address, int value, int elementSize, long count, long owner) {
        return fill(address, value, elementSize, count, owner, () -> false);
    }

    /** Zeroes [address, address+length) in the pages that exist; absent pages read as zero already. */
    private boolean clear(long address, long length, long owner) {
        return walkPages(address, length, owner, (p, index, inPage, bufOff, k) -> {
            PagePool.Page page = p.page(index);
            if (page != null) {
                page.bytes.put(inPage, PagePool.ZERO, 0, k);
                p.mark(index);
            }
        });
    }

    // ------------------------------------------------------------------ what migration asks

    /** The parts of [address, address+length) on pages written at least once; null if not all the owner's. */
    long[] written(long address, long length, long owner) {
        return pages(address, length, owner, false);
    }

    /**
     * The parts of [address, address+length) on pages written since the last call (or since
     * {@link #track}); clears the bits of the pages wholly inside. Untracked memory is reported whole.
     */
    long[] takeDirty(long address, long length, long owner) {
        return pages(address, length, owner, true);
    }

    private long[] pages(long address, long length, long owner, boolean dirty) {
        java.util.List<long[]> out = new java.util.ArrayList<>();
        boolean ok = walk(address, length, owner, (p, off, bufOff, n) -> {
            long[] bits = p.dirty;
            for (long o = off; o < off + n;) {
                long index = o / PAGE;
                long pageEnd = (index + 1) * PAGE;
                long k = Math.min(off + n, pageEnd) - o;
                boolean take;
                if (!dirty) {
                    take = p.page(index) != null;
                } else if (bits == null) {
                    take = true;
                } else if (o == index * PAGE && k == PAGE) {
                    take = ((long) BITS.getAndBitwiseAnd(bits, (int) (index >>> 6), ~(1L << index)) & (1L << index)) != 0;
                } else {
                    take = ((long) BITS.getVolatile(bits, (int) (index >>> 6)) & (1L << index)) != 0;
                }
                if (take) {
                    long at = address + bufOff + (o - off);
                    long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
                    if (last != null && last[0] + last[1] == at) {
                        last[1] += k;
                    } else {
                        out.add(new long[] {at, k});
                    }
                }
                o += k;
            }
        });
        if (!ok) {
            return null;
        }
        long[] flat = new long[out.size() * 2];
        for (int i = 0; i < out.size(); i++) {
            flat[2 * i] = out.get(i)[0];
            flat[2 * i + 1] = out.get(i)[1];
        }
        return flat;
    }

    /** Starts (a fresh interval) or stops tracking writes to every physical allocation of {@code owner}. */
    void track(long owner, boolean on) {
        lock.readLock().lock();
        try {
            for (Mapping m : mappings.values()) {
                Physical p = m.physical;
                if (p.owner == owner) {
                    p.dirty = on ? new long[(p.pages.length() + 63) / 64] : null;
                }
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    synchronized long materialisedBytes() {
        return materialisedPages * (long) PAGE;
    }

    /**
     * Global memory for the PTX engine: one per worker of a launch, caching the mapping it last
     * touched, so a kernel streaming through an allocation pays for one lookup per mapping.
     */
    io.vgpu.ptx.GlobalMemory accessor(long owner) {
        return new Accessor(owner);
    }

    /** Atomics on pages; direct buffers allow them at aligned addresses, which the caller checked. */
    private static final java.lang.invoke.VarHandle INT = java.lang.invoke.MethodHandles.byteBufferViewVarHandle(int[].class,
            java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final java.lang.invoke.VarHandle LONG = java.lang.invoke.MethodHandles.byteBufferViewVarHandle(long[].class,
            java.nio.ByteOrder.LITTLE_ENDIAN);

    private final class Accessor implements io.vgpu.ptx.GlobalMemory {
        private final long owner;
        private long start = 1, end = 0; // the cached mapping [start, end)
        private long delta;              // physical offset = address - start + delta
        private Physical physical;

        Accessor(long owner) {
            this.owner = owner;
        }

        /** The physical offset of [address, address + size); faults if not mapped for the owner. */
        private long locate(long address, int size) {
            // Overflow-safe: an address near the top of the address space must not wrap into range.
            if (address >= start && address < end && size <= end - address) {
                return address - start + delta;
            }
            lock.readLock().lock();
            try {
                Map.Entry<Long, Mapping> e = mappings.floorEntry(address);
                Mapping m = e == null ? null : e.getValue();
                if (m == null || m.physical.owner != owner || address >= m.end() || size > m.end() - address
                        || m.physical.freed) {
                    throw new io.vgpu.ptx.KernelFault(io.vgpu.ptx.KernelFault.Kind.ILLEGAL_ADDRESS,
                            String.format("%d-byte access at 0x%x is outside every allocation of this context", size, address));
                }
                start = m.address;
                end = m.end();
                delta = m.offset;
                physical = m.physical;
                return address - start + delta;
            } finally {
                lock.readLock().unlock();
            }
        }

        @Override
        public long load(long address, int size) {
            long off = locate(address, size);
            int in = (int) (off % PAGE);
            if (in + size > PAGE) {
                long v = 0;
                for (int k = size - 1; k >= 0; k--) {
                    v = (v << 8) | load(address + k, 1);
                }
                return v;
            }
            PagePool.Page page = physical.page(off / PAGE);
            if (page == null) {
                return 0;
            }
            ByteBuffer b = page.bytes;
            switch (size) {
                case 1: return b.get(in) & 0xffL;
                case 2: return b.getShort(in) & 0xffffL;
                case 4: return b.getInt(in) & 0xffffffffL;
                default: return b.getLong(in);
            }
        }

        private ByteBuffer writable(long address, long off) {
            PagePool.Page page;
            try {
                page = materialise(physical, off / PAGE);
            } catch (PagePool.Exhausted e) {
                throw new io.vgpu.ptx.KernelFault(io.vgpu.ptx.KernelFault.Kind.TRAP,
                        String.format("store at 0x%x: %s", address, e.getMessage()));
            }
            if (page == null) {
                throw new io.vgpu.ptx.KernelFault(io.vgpu.ptx.KernelFault.Kind.ILLEGAL_ADDRESS,
                        String.format("store at 0x%x: the memory was freed while the kernel ran", address));
            }
            return page.bytes;
        }

        @Override
        public void store(long address, int size, long value) {
            long off = locate(address, size);
            int in = (int) (off % PAGE);
            if (in + size > PAGE) {
                for (int k = 0; k < size; k++) {
                    store(address + k, 1, value >>> (8 * k));
                }
                return;
            }
            ByteBuffer b = writable(address, off);
            switch (size) {
                case 1: b.put(in, (byte) value); break;
                case 2: b.putShort(in, (short) value); break;
                case 4: b.putInt(in, (int) value); break;
                default: b.putLong(in, value);
            }
            physical.mark(off / PAGE);
        }

        @Override
        public boolean compareAndSet(long address, int size, long expected, long value) {
            long off = locate(address, size);
            if ((off & (size - 1)) != 0) {
                throw new io.vgpu.ptx.KernelFault(io.vgpu.ptx.KernelFault.Kind.MISALIGNED_ADDRESS,
                        String.format("atomic at 0x%x is misaligned", address));
            }
            ByteBuffer b = writable(address, off);
            int in = (int) (off % PAGE);
            boolean done = size == 4 ? INT.compareAndSet(b, in, (int) expected, (int) value)
                    : LONG.compareAndSet(b, in, expected, value);
            physical.mark(off / PAGE);
            return done;
        }
    }

    /** The memory a host kernel of {@code owner} may touch. */
    DeviceMemory view(long owner) {
        return new View(owner);
    }

    private final class View implements DeviceMemory {
        private final long owner;

        View(long owner) {
            this.owner = owner;
        }

        private void check(int rc, long address, int length) {
            if (rc != CuResult.SUCCESS) {
                throw new AccessException(String.format("%d bytes at 0x%x are not mapped", length, address));
            }
        }

        @Override
        public void read(long address, byte[] dst, int offset, int length) {
            check(MockMemory.this.read(address, ByteBuffer.wrap(dst, offset, length), owner), address, length);
        }

        @Override
        public void write(long address, byte[] src, int offset, int length) {
            check(MockMemory.this.write(address, ByteBuffer.wrap(src, offset, length), owner), address, length);
        }

        private ByteBuffer get(long address, int n) {
            ByteBuffer b = ByteBuffer.allocate(n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            check(MockMemory.this.read(address, b, owner), address, n);
            return b.flip();
        }

        private void put(long address, ByteBuffer b) {
            check(MockMemory.this.write(address, b.flip(), owner), address, b.limit());
        }

        private ByteBuffer buf(int n) {
            return ByteBuffer.allocate(n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        public byte getByte(long address) {
            return get(address, 1).get(0);
        }

        @Override
        public void putByte(long address, byte value) {
            put(address, buf(1).put(value));
        }

        @Override
        public int getInt(long address) {
            return get(address, 4).getInt(0);
        }

        @Override
        public void putInt(long address, int value) {
            put(address, buf(4).putInt(value));
        }

        @Override
        public long getLong(long address) {
            return get(address, 8).getLong(0);
        }

        @Override
        public void putLong(long address, long value) {
            put(address, buf(8).putLong(value));
        }
    }
}
