package io.vgpu.core.internal;

import java.util.Map;
import java.util.TreeMap;

/**
 * The service-wide device address window. Every device pointer any session sees comes from here,
 * whatever backend serves it, so pointers stay unique across backends and a session's allocations
 * can later be re-created at the same addresses elsewhere.
 */
final class AddressSpace {
    static final long DEFAULT_BASE = io.vgpu.api.AddressWindow.DEFAULT_BASE;
    static final long DEFAULT_SIZE = io.vgpu.api.AddressWindow.DEFAULT_SIZE;
    static final long SMALL_ALIGNMENT = 512;
    static final long LARGE_ALIGNMENT = 2L << 20;

    private final long base;
    private final long size;
    /** Free ranges: start → length, coalesced. */
    private final TreeMap<Long, Long> free = new TreeMap<>();
    private long used;

    AddressSpace(long base, long size) {
        this.base = base;
        this.size = size;
        free.put(base, size);
    }

    long base() {
        return base;
    }

    long size() {
        return size;
    }

    synchronized long used() {
        return used;
    }

    static long defaultAlignment(long size) {
        return size >= LARGE_ALIGNMENT ? LARGE_ALIGNMENT : SMALL_ALIGNMENT;
    }

    /**
     * True when {@code [start, start+length)} lies inside the window. Overflow-safe: a length that
     * would wrap past the end of the address space is simply outside.
     */
    boolean contains(long start, long length) {
        return length >= 0 && start >= base && start - base <= size && length <= size - (start - base);
    }

    /**
     * Reserves {@code length} bytes aligned to {@code alignment} (a power of two), preferring
     * {@code hint} when it is aligned, inside the window and free; any other hint is ignored, as the
     * driver treats hints, and the reservation goes elsewhere in the window. Returns 0 when the
     * window has no room.
     */
    synchronized long reserve(long length, long alignment, long hint) {
        if (length <= 0 || length > size || alignment <= 0 || Long.bitCount(alignment) != 1 || alignment > size) {
            return 0;
        }
        long rounded = roundUp(length, SMALL_ALIGNMENT);
        if (hint != 0 && (hint & (alignment - 1)) == 0 && contains(hint, rounded) && take(hint, rounded)) {
            return hint;
        }
        for (Map.Entry<Long, Long> e : free.entrySet()) {
            long fStart = e.getKey();
            long fEnd = fStart + e.getValue(); // inside the window: no overflow
            long start = roundUp(fStart, alignment);
            if (start >= fStart && start <= fEnd && rounded <= fEnd - start) {
                take(start, rounded);
                return start;
            }
        }
        return 0;
    }

    /** Takes exactly [start, start+length) if it is entirely free (and so inside the window). */
    synchronized boolean take(long start, long length) {
        if (length <= 0 || !contains(start, length)) {
            return false;
        }
        Map.Entry<Long, Long> e = free.floorEntry(start);
        if (e == null || length > e.getKey() + e.getValue() - start) {
            return false;
        }
        long fStart = e.getKey();
        long fEnd = fStart + e.getValue();
        free.remove(fStart);
        if (start > fStart) {
            free.put(fStart, start - fStart);
        }
        if (start + length < fEnd) {
            free.put(start + length, fEnd - (start + length));
        }
        used += length;
        return true;
    }

    /** Gives back a range {@link #reserve} returned, with the length it was asked for. */
    synchronized void release(long start, long length) {
        long rounded = roundUp(length, SMALL_ALIGNMENT);
        if (length <= 0 || !contains(start, rounded)) {
            throw new IllegalArgumentException(String.format("[0x%x, +%d) was never reserved in this window", start, length));
        }
        long end = start + rounded;
        Map.Entry<Long, Long> next = free.ceilingEntry(start);
        if (next != null && next.getKey() == end) {
            free.remove(next.getKey());
            end += next.getValue();
        }
        Map.Entry<Long, Long> prev = free.floorEntry(start);
        if (prev != null && prev.getKey() + prev.getValue() == start) {
            free.remove(prev.getKey());
            start = prev.getKey();
        }
        free.put(start, end - start);
        used -= rounded;
    }

    /** {@code v} rounded up to a power of two; callers keep {@code v} far below overflow (inside the window). */
    static long roundUp(long v, long alignment) {
        return (v + alignment - 1) & -alignment;
    }
}
