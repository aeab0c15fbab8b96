package io.vgpu.core.internal;

import java.util.HashMap;
import java.util.Map;

/**
 * Virtual handles of one session. A handle carries its kind in the top byte, so a handle of the
 * wrong kind, another session's handle or a stale one is simply not found.
 */
final class HandleTable {
    static final int CONTEXT = 1;
    static final int MODULE = 2;
    static final int FUNCTION = 3;
    static final int STREAM = 4;
    static final int EVENT = 5;
    static final int MEMORY = 6;

    private final Map<Long, Object> objects = new HashMap<>();
    private final long salt;
    private long next = 1;

    /** {@code salt} makes handles of different sessions disjoint. */
    HandleTable(long salt) {
        this.salt = (salt & 0xffff) << 32;
    }

    long add(int kind, Object object) {
        long handle = ((long) kind << 56) | salt | (next++ & 0xffff_ffffL);
        objects.put(handle, object);
        return handle;
    }

    <T> T get(int kind, long handle, Class<T> type) {
        if ((handle >>> 56) != kind) {
            return null;
        }
        Object o = objects.get(handle);
        return type.isInstance(o) ? type.cast(o) : null;
    }

    Object remove(long handle) {
        return objects.remove(handle);
    }

    int size() {
        return objects.size();
    }
}
