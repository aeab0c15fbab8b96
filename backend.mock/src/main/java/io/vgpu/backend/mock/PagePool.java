package io.vgpu.backend.mock;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Iterator;
import java.util.LinkedHashSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pages of simulated device memory, outside the Java heap and shared by every mock of this
 * JVM.
 *
 * <p>Why not {@code byte[]} pages on the heap: device memory lives long and is large, the opposite
 * of what a generational collector expects. Gigabytes of 64 KiB arrays written at once (a model
 * being loaded, a session migrating in) were copied by young collections again and again, which
 * took 0.2–0.8 s a pause and turned a 1 GiB stop-and-copy migration into more than a second.
 * Outside the heap the collector never sees the bytes.
 *
 * <p>Pages are cut from 4 MiB slabs. A freed page goes back to its slab and is handed out again,
 * so memory moving from one mock to another in this JVM (a migration, a session ending and the
 * next one starting) costs no fresh memory from the kernel. A page may come back holding someone
 * else's bytes: {@link #take} says whether it is clean, and {@link MockMemory} zeroes it or
 * overwrites it whole before anyone can read it. Slabs whose pages are all free are dropped once
 * more than {@link #reservePages} pages sit free; the JDK frees their memory when it collects them.
 */
final class PagePool {
    private static final Logger LOG = LoggerFactory.getLogger(PagePool.class);
    static final int PAGE = 64 * 1024;
    private static final int SLAB_PAGES = 64;

    /** A page of zeros, the source of every clearing copy. */
    static final ByteBuffer ZERO = ByteBuffer.allocateDirect(PAGE).asReadOnlyBuffer();

    /**
     * Freed pages kept for reuse, up to half the heap's limit (the JDK's default limit for memory
     * outside the heap is the heap's): memory fresh from the kernel costs a page fault per 4 KiB,
     * which on a virtual machine can be 60 times a copy (3 s a GiB, against 45 ms for memory
     * touched before), so a mock that gave pages back would pay that again on every load.
     */
    static final PagePool SHARED = new PagePool(Runtime.getRuntime().maxMemory() / 2 / PAGE);

    static final class Page {
        /** {@code PAGE} bytes, little-endian: device memory's order. */
        final ByteBuffer bytes;
        private final Slab slab;
        private final int index;
        /** Zero throughout (never handed out since its slab was made). Guarded by the pool. */
        private boolean clean = true;

        private Page(ByteBuffer bytes, Slab slab, int index) {
            this.bytes = bytes;
            this.slab = slab;
            this.index = index;
        }

        void zero() {
            bytes.put(0, ZERO, 0, PAGE);
        }
    }

    private static final class Slab {
        final Page[] pages = new Page[SLAB_PAGES];
        long free = -1L; // a bit per page not handed out

        Slab() {
            ByteBuffer memory = ByteBuffer.allocateDirect(SLAB_PAGES * PAGE);
            for (int i = 0; i < SLAB_PAGES; i++) {
                pages[i] = new Page(memory.slice(i * PAGE, PAGE).order(ByteOrder.LITTLE_ENDIAN), this, i);
            }
        }
    }

    private final long reservePages;
    /** Slabs with at least one free page, oldest first: fuller slabs stay full, emptier ones empty out. */
    private final LinkedHashSet<Slab> withFree = new LinkedHashSet<>();
    private long freePages;
    private long slabs;

    /** The host cannot give more memory for pages: the write that needed one fails with {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    static final class Exhausted extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Exhausted(String message) {
            super(message, null, false, false);
        }
    }

    private Slab newSlab() {
        try {
            Slab s = new Slab();
            exhausted = false; // log the next shortage again
            return s;
        } catch (OutOfMemoryError e) {
            String why = String.format("the host has no memory left for simulated device pages (%d MiB held in pages; %s)",
                    slabs * SLAB_PAGES * (long) PAGE >> 20, e.getMessage());
            if (!exhausted) {
                exhausted = true;
                LOG.warn("{}: writes that need new pages fail with CUDA_ERROR_OUT_OF_MEMORY; -XX:MaxDirectMemorySize "
                        + "bounds what the mock can hold", why);
            }
            throw new Exhausted(why);
        }
    }

    private boolean exhausted;

    PagePool(long reservePages) {
        this.reservePages = reservePages;
    }

    /**
     * A page for the caller alone; zeroed unless {@code overwritten}, where the caller writes all
     * of it before it publishes the page.
     */
    Page take(boolean overwritten) {
        Page p;
        boolean clean;
        synchronized (this) {
            Iterator<Slab> it = withFree.iterator();
            Slab s;
            if (it.hasNext()) {
                s = it.next();
            } else {
                s = newSlab();
                slabs++;
                withFree.add(s);
                freePages += SLAB_PAGES;
            }
            int i = Long.numberOfTrailingZeros(s.free);
            s.free &= ~(1L << i);
            if (s.free == 0) {
                withFree.remove(s);
            }
            freePages--;
            p = s.pages[i];
            clean = p.clean;
            p.clean = false;
        }
        if (!clean && !overwritten) {
            p.zero();
        }
        return p;
    }

    /** Gives back a page nobody reads or writes any more. */
    synchronized void give(Page p) {
        Slab s = p.slab;
        s.free |= 1L << p.index;
        freePages++;
        if (s.free == -1L && freePages > reservePages) {
            withFree.remove(s);
            freePages -= SLAB_PAGES;
            slabs--;
        } else {
            withFree.add(s);
        }
    }

    synchronized long freeBytes() {
        return freePages * PAGE;
    }

    synchronized long slabBytes() {
        return slabs * SLAB_PAGES * (long) PAGE;
    }
}
