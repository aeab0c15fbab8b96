package io.vgpu.shim.bridge.internal;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.UserPrincipal;

/**
 * The bulk-data region a client offers in HELLO (docs/PROTOCOL.md, "Shared memory"): a 4096-byte
 * header with the magic and {@code completed_seq}, then the data area that MEMCPY_*_SHM requests
 * address by absolute offset. Only the session's connection thread touches it, which is what makes
 * unmapping it in {@link #close()} safe.
 */
final class SharedMemory implements AutoCloseable {
    static final long MAGIC = 0x4d48535550475600L;
    static final int DATA = 4096;
    static final int COMPLETED_SEQ = 8;
    static final Path DIR = Path.of("/dev/shm");
    static final String PREFIX = "vgpu-";

    private static final VarHandle LONGS = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final Object UNSAFE;
    private static final Method INVOKE_CLEANER;

    static {
        Object unsafe = null;
        Method cleaner = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            cleaner = c.getMethod("invokeCleaner", ByteBuffer.class);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            // Without it the mapping is released by the GC.
        }
        UNSAFE = unsafe;
        INVOKE_CLEANER = cleaner;
    }

    /** Why a region was not mapped; the session goes on without shared memory. */
    static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String reason) {
            super(reason, null, false, false);
        }
    }

    private final MappedByteBuffer map;
    /** Reused for every copy so that the hot path allocates nothing. */
    private final ByteBuffer window;
    private boolean closed;

    private SharedMemory(MappedByteBuffer map) {
        this.map = map;
        this.window = map.duplicate();
    }

    /**
     * Maps the file the client created. The checks stop a client from making the service open
     * someone else's file: it must sit directly in /dev/shm, not be a link, and belong to the
     * peer the kernel reported.
     */
    static SharedMemory map(String pathName, long size, UserPrincipal peer, long maxBytes) throws Refused {
        if (size <= DATA || size > maxBytes || size > Integer.MAX_VALUE) {
            throw new Refused("size " + Long.toUnsignedString(size) + " is outside (" + DATA + ", "
                    + Math.min(maxBytes, Integer.MAX_VALUE) + "]");
        }
        Path path;
        try {
            path = Path.of(pathName);
        } catch (InvalidPathException e) {
            throw new Refused("invalid path");
        }
        if (!path.isAbsolute() || !path.normalize().equals(path) || !DIR.equals(path.getParent())
                || !path.getFileName().toString().startsWith(PREFIX)) {
            throw new Refused(pathName + " is not a " + DIR + "/" + PREFIX + "* file");
        }
        try {
            PosixFileAttributes before = attributes(path, size, peer);
            MappedByteBuffer map;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS)) {
                // The file checked must be the file opened: a swap in between is refused.
                PosixFileAttributes after = attributes(path, size, peer);
                if (before.fileKey() == null || !before.fileKey().equals(after.fileKey()) || ch.size() != size) {
                    throw new Refused(pathName + " changed while it was opened");
                }
                map = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
            }
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                // Not ours to unlink in a sticky /dev/shm when the service is not root; the client unlinks it too.
            }
            map.order(ByteOrder.LITTLE_ENDIAN);
            map.putLong(0, MAGIC);
            return new SharedMemory(map);
        } catch (IOException e) {
            throw new Refused(pathName + ": " + e);
        }
    }

    private static PosixFileAttributes attributes(Path path, long size, UserPrincipal peer) throws IOException, Refused {
        PosixFileAttributes a = Files.readAttributes(path, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isRegularFile()) {
            throw new Refused(path + " is not a regular file");
        }
        UserPrincipal owner = a.owner();
        if (!owner.equals(peer) && !owner.getName().equals(peer.getName())) {
            throw new Refused(path + " belongs to " + owner.getName() + ", not to the peer " + peer.getName());
        }
        if (a.size() != size) {
            throw new Refused(path + " has " + a.size() + " bytes, not " + size);
        }
        return a;
    }

    long size() {
        return map.capacity();
    }

    /**
     * {@code [offset, offset + size)} of the data area as a reused buffer, or null when the range
     * is not inside the data area (both are unsigned on the wire).
     */
    ByteBuffer region(long offset, long size) {
        long cap = map.capacity();
        if (offset < DATA || offset > cap || size < 0 || size > cap - offset) {
            return null;
        }
        window.clear().position((int) offset).limit((int) (offset + size));
        return window;
    }

    /** Publishes that request {@code seq} has finished: the client reuses its region after this. */
    void completed(int seq) {
        LONGS.setRelease(map, COMPLETED_SEQ, Integer.toUnsignedLong(seq));
    }

    long completedSeq() {
        return (long) LONGS.getAcquire(map, COMPLETED_SEQ);
    }

    /**
     * Unmaps now rather than at some later GC: a deleted tmpfs file keeps its memory as long as
     * it is mapped. The caller guarantees nothing uses the region any more.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (INVOKE_CLEANER != null) {
            try {
                INVOKE_CLEANER.invoke(UNSAFE, map);
            } catch (ReflectiveOperationException | RuntimeException e) {
                // Left to the GC.
            }
        }
    }
}
