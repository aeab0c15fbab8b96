package io.vgpu.api;

import java.util.Locale;

/**
 * A device address window {@code [base, base+size)}: where a core places every device address.
 * Guests of one GPU host share the host's device address space, so each needs a window of its
 * own (README, "Use a GPU on another host"); the text forms here are those of
 * {@code window.base}/{@code window.size} in {@code conf/io.vgpu.router.cfg}.
 */
public final class AddressWindow {
    /** Far from where Linux places heaps, libraries and stacks, so shims can reserve it in clients. */
    public static final long DEFAULT_BASE = 0x2000_0000_0000L;
    public static final long DEFAULT_SIZE = 1L << 44;
    public static final AddressWindow DEFAULT = new AddressWindow(DEFAULT_BASE, DEFAULT_SIZE);
    /** Windows are made of whole large pages, the granularity of device mappings. */
    public static final long ALIGNMENT = 2L << 20;
    /** The end of x86-64 and AArch64 user space (47 bits): shims reserve the window in clients. */
    public static final long USER_END = 1L << 47;

    public final long base;
    public final long size;

    public AddressWindow(long base, long size) {
        this.base = base;
        this.size = size;
    }

    public long end() {
        return base + size;
    }

    public boolean overlaps(AddressWindow o) {
        return base < o.end() && o.base < end();
    }

    /** Why this cannot be a window; null when it can. */
    public String invalid() {
        if (size <= 0) {
            return "the size must be above 0";
        }
        if (base <= 0 || (base & (ALIGNMENT - 1)) != 0 || (size & (ALIGNMENT - 1)) != 0) {
            return "base and size must be positive multiples of 2 MiB";
        }
        if (size > USER_END - base) {
            return "the window must end by " + hex(USER_END) + " (47-bit user space)";
        }
        return null;
    }

    /**
     * A size or address as written in a configuration: decimal or {@code 0x} hex, optionally with a
     * binary suffix K, M, G or T ({@code 1T} = 2^40). Throws IllegalArgumentException that says why.
     */
    public static long parse(String text) {
        String t = text == null ? "" : text.trim().replace("_", "").toLowerCase(Locale.ROOT);
        int shift = 0;
        if (!t.startsWith("0x") && !t.isEmpty()) {
            int i = "kmgt".indexOf(t.charAt(t.length() - 1));
            if (i >= 0) {
                shift = 10 * (i + 1);
                t = t.substring(0, t.length() - 1);
            }
        }
        long v;
        try {
            v = t.startsWith("0x") ? Long.parseUnsignedLong(t.substring(2), 16) : Long.parseLong(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a number (decimal, 0x hex, or with K, M, G or T)");
        }
        if (v < 0 || (shift > 0 && v > Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + text + "' is too large");
        }
        return v << shift;
    }

    public static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /** A size as {@link #parse} reads it: the largest whole unit ("1T", "512G"), else hex. */
    public static String size(long v) {
        for (int shift = 40; shift >= 20; shift -= 10) {
            if (v > 0 && (v & ((1L << shift) - 1)) == 0) {
                return (v >> shift) + "TGM".substring(4 - shift / 10, 5 - shift / 10);
            }
        }
        return hex(v);
    }

    /** {@code 0x200000000000+1T}. */
    @Override
    public String toString() {
        return hex(base) + "+" + size(size);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AddressWindow && ((AddressWindow) o).base == base && ((AddressWindow) o).size == size;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(base) * 31 + Long.hashCode(size);
    }
}
