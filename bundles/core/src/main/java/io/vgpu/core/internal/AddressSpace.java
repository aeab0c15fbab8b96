package io.vgpu.core.internal;

import java.util.Map;
import java.util.TreeMap;

/**
 * The service-wide device address window. Every device pointer any session sees comes from here,
 * whatever backend serves it, so pointers stay unique across backends and a session's allocations
 * can later be re-created at the same addresses elsewhere.
 */
final class AddressSpace {
    /** Far from where Linux places heaps, libraries and stacks, so shims can reserve it in clients. */
    static final long DEFAULT_BASE = 0x2000_0000_0000L;
    static final long DEFAULT_SIZE = 1L << 44;
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
     * Reserves {@code length} bytes aligned to {@code alignment} (a power of two), preferring
     * {@code hint} when it is free. Returns 0 when the window has no room.
     */
    synchronized long reserve(long length, long alignment, long hint) {
        if (length <= 0 || length > size || alignment <= 0 || Long.bitCount(alignment) != 1) {
            return 0;
        }
        long rounded = roundUp(length, SMALL_ALIGNMENT);
        if (hint != 0 && (hint & (alignment - 1)) == 0 && take(hint, rounded)) {
            return hint;
        }
        for (Map.Entry<Long, Long> e : free.entrySet()) {
            long start = roundUp(e.getKey(), alignment);
            long end = e.getKey() + e.getValue();
            if (start + rounded <= end && start >= e.getKey()) {
                take(start, rounded);
                return start;
            }
        }
        return 0;
    }

    /** Takes exactly [start, start+length) if it is entirely free. */
    synchronized boolean take(long start, long length) {
        Map.Entry<Long, Long> e = free.floorEntry(start);
        if (e == null || start + length > e.getKey() + e.getValue()) {
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

    synchronized void release(long start, long length) {
        long rounded = roundUp(length, SMALL_ALIGNMENT);
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

    static long roundUp(long v, long alignment) {
        return (v + alignment - 1) & -alignment;
    }
}
