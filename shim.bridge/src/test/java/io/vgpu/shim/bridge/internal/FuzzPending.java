package io.vgpu.shim.bridge.internal;

import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;

/**
 * Findings of the fuzz tests that are being fixed elsewhere (branch {@code hard}: range and
 * overflow checks in the core's SessionImpl and the mock's MockMemory). Until then the dispatcher
 * target does not send requests of these shapes, so that fuzzing finds something new rather than
 * the same hang again; {@code -Dvgpu.fuzz.pending=run} sends them. Each has a readable reproducer
 * in {@link FuzzFindingsTest}, disabled until the fix is in.
 */
final class FuzzPending {
    static final boolean RUN = "run".equals(System.getProperty("vgpu.fuzz.pending", "skip"));

    private FuzzPending() {}

    /** Why this request is a known open finding, or null. */
    static String match(int op, ByteBuffer q, int p, int len) {
        switch (op) {
            case Wire.MEMSET: {
                long count = q.getLong(p + Wire.Memset.REQ_COUNT);
                int elementSize = q.getInt(p + Wire.Memset.REQ_ELEMENT_SIZE);
                if ((elementSize == 1 || elementSize == 2 || elementSize == 4) && count > 0 && count <= Long.MAX_VALUE / elementSize
                        && overflows(q.getLong(p + Wire.Memset.REQ_DST), count * elementSize)) {
                    return "range-overflow (dst + count wraps: MEMSET hangs in MockMemory.fill)";
                }
                return null;
            }
            case Wire.MEMCPY_DTOD: {
                long size = q.getLong(p + Wire.MemcpyDtod.REQ_SIZE);
                if (size < 0) {
                    return "negative-size (MEMCPY_DTOD into a module's globals: IllegalArgumentException in MockMemory.copy)";
                }
                if (overflows(q.getLong(p + Wire.MemcpyDtod.REQ_DST), size) || overflows(q.getLong(p + Wire.MemcpyDtod.REQ_SRC), size)) {
                    return "range-overflow (address + size wraps: MEMCPY_DTOD)";
                }
                return null;
            }
            case Wire.MEM_MAP:
                if (overflows(q.getLong(p + Wire.MemMap.REQ_OFFSET), q.getLong(p + Wire.MemMap.REQ_SIZE))) {
                    return "wrapping offset (MEM_MAP where offset + size wraps: the mapping is made, copies index pages out of bounds)";
                }
                return null;
            case Wire.MEM_UNMAP: {
                long size = q.getLong(p + Wire.MemUnmap.REQ_SIZE);
                if (size < 0 || overflows(q.getLong(p + Wire.MemUnmap.REQ_PTR), size)) {
                    return "negative or wrapping size (MEM_UNMAP inside a reservation: IllegalArgumentException from TreeMap.subMap "
                            + "in SessionImpl.memUnmap)";
                }
                return null;
            }
            default:
                return null;
        }
    }

    /** {@code [address, address + length)} with a non-negative start whose end wraps past Long.MAX_VALUE. */
    static boolean overflows(long address, long length) {
        return address >= 0 && length > 0 && address + length < 0;
    }
}
