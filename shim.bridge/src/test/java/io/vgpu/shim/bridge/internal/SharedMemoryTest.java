package io.vgpu.shim.bridge.internal;

import static io.vgpu.shim.bridge.internal.TestClient.shmCopy;
import static io.vgpu.shim.bridge.internal.TestClient.u64;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Hello;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import org.junit.After;
import org.junit.Test;

/** The bulk-data region of docs/PROTOCOL.md, as the shim creates it in /dev/shm. */
public class SharedMemoryTest extends BridgeTestBase {
    private static final int SIZE = (1 << 20) + SharedMemory.DATA;
    private final List<Path> created = new ArrayList<>();

    @After
    public void removeFiles() throws IOException {
        for (Path p : created) {
            Files.deleteIfExists(p);
        }
    }

    private Path shmFile(Path dir, String prefix, long size) throws IOException {
        Path p = dir.resolve(prefix + UUID.randomUUID());
        created.add(p);
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(size);
            ch.write(java.nio.ByteBuffer.wrap(new byte[1]), size - 1);
        }
        return p;
    }

    private static MappedByteBuffer map(Path p, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
            m.order(ByteOrder.LITTLE_ENDIAN);
            return m;
        }
    }

    @Test
    public void copiesGoThroughTheRegion() throws Exception {
        Path file = shmFile(SharedMemory.DIR, "vgpu-test-", SIZE);
        MappedByteBuffer shm = map(file, SIZE);
        try (TestClient c = connect()) {
            Hello h = c.hello(0, SIZE, file.toString(), "shm-test");
            assertEquals(CuResult.SUCCESS, h.result());
            assertTrue(h.shmOk());
            assertFalse("the service unlinks the file", Files.exists(file));
            assertEquals(SharedMemory.MAGIC, shm.getLong(0));

            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 1 << 20);
            byte[] data = new byte[200_000];
            new Random(3).nextBytes(data);
            shm.put(SharedMemory.DATA, data);
            c.post(Wire.MEMCPY_HTOD_SHM, shmCopy(ctx, ptr, SharedMemory.DATA, data.length));
            int dtohSeq = c.nextSeq();
            c.post(Wire.MEMCPY_DTOH_SHM, shmCopy(ctx, ptr, SharedMemory.DATA + 500_000, data.length));
            // completed_seq tells the client when its region is done, without any reply.
            await("the async copy completes", () -> shm.getLong(SharedMemory.COMPLETED_SEQ) == dtohSeq);
            byte[] back = new byte[data.length];
            shm.get(SharedMemory.DATA + 500_000, back);
            assertArrayEquals(data, back);

            // Synchronous form: a reply, and completed_seq covers it.
            int seq = c.nextSeq();
            assertEquals(CuResult.SUCCESS, c.call(Wire.MEMCPY_DTOH_SHM, shmCopy(ctx, ptr + 10, SharedMemory.DATA, 100)).result());
            assertEquals(seq, shm.getLong(SharedMemory.COMPLETED_SEQ));
            shm.get(SharedMemory.DATA, back, 0, 100);
            for (int i = 0; i < 100; i++) {
                assertEquals(data[10 + i], back[i]);
            }

            // Outside the data area: INVALID_VALUE as the op's result, the connection stays.
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_HTOD_SHM, shmCopy(ctx, ptr, 0, 100)).result());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOH_SHM, shmCopy(ctx, ptr, SIZE - 50, 100)).result());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOH_SHM, shmCopy(ctx, ptr, SharedMemory.DATA, -1)).result());
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.MEMCPY_DTOH_SHM, shmCopy(ctx, ptr, Long.MIN_VALUE, 8)).result());
            c.post(Wire.MEMCPY_HTOD_SHM, shmCopy(ctx, ptr, SIZE, 1));
            assertEquals(CuResult.INVALID_VALUE, c.call(Wire.CTX_SYNCHRONIZE, u64(ctx)).result());
            assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
        }
    }

    private static long mappingsOf(Path file) {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains(file.toString())).count();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    public void theMappingIsReleasedWhenTheSessionEnds() throws Exception {
        Path file = shmFile(SharedMemory.DIR, "vgpu-unmap-", SIZE);
        MappedByteBuffer mine = map(file, SIZE);
        long before = mappingsOf(file);
        try (TestClient c = connect()) {
            assertTrue(c.hello(0, SIZE, file.toString(), "unmap-test").shmOk());
            assertEquals("the service's mapping and ours", before + 1, mappingsOf(file));
        }
        await("the service unmaps the region", () -> mappingsOf(file) == before);
        assertEquals(SharedMemory.MAGIC, mine.getLong(0));
    }

    @Test
    public void withoutARegionShmCopiesAreInvalid() throws Exception {
        try (TestClient c = connect()) {
            c.hello("no-shm");
            long ctx = c.ctxCreate();
            long ptr = c.memAlloc(ctx, 4096);
            assertEquals(CuResult.INVALID_VALUE,
                    c.call(Wire.MEMCPY_HTOD_SHM, shmCopy(ctx, ptr, SharedMemory.DATA, 16)).result());
        }
    }

    private void assertRefused(String path, long size, String reason) throws Exception {
        try (TestClient c = connect()) {
            String name = uniqueName("shm-refused");
            Hello h = c.hello(0, size, path, name);
            assertEquals(CuResult.SUCCESS, h.result());
            assertFalse(path, h.shmOk());
            // The session works without shared memory.
            c.memAlloc(c.ctxCreate(), 4096);
            awaitLogLines(1, "INFO", name, "without shared memory", reason);
        }
    }

    @Test
    public void aFileOutsideDevShmIsRefused() throws Exception {
        Path file = shmFile(dir, "vgpu-", SIZE);
        assertRefused(file.toString(), SIZE, "is not a /dev/shm/vgpu-* file");
        assertTrue("a refused file is left alone", Files.exists(file));
    }

    @Test
    public void aSymlinkIsRefused() throws Exception {
        Path target = shmFile(SharedMemory.DIR, "vgpu-target-", SIZE);
        Path link = SharedMemory.DIR.resolve("vgpu-link-" + UUID.randomUUID());
        created.add(link);
        Files.createSymbolicLink(link, target);
        assertRefused(link.toString(), SIZE, "is not a regular file");
        assertTrue(Files.exists(target));
    }

    @Test
    public void otherNamesSizesAndPathsAreRefused() throws Exception {
        Path foreign = shmFile(SharedMemory.DIR, "other-", SIZE);
        assertRefused(foreign.toString(), SIZE, "is not a /dev/shm/vgpu-* file");
        Path file = shmFile(SharedMemory.DIR, "vgpu-size-", SIZE);
        assertRefused(file.toString(), SIZE + 4096, "bytes, not");
        assertRefused("/dev/shm/../shm/" + file.getFileName(), SIZE, "is not a /dev/shm/vgpu-* file");
        assertRefused("/dev/shm/vgpu-missing-" + UUID.randomUUID(), SIZE, "NoSuchFile");
        assertRefused(file.toString(), 4096, "is outside");
        assertRefused(file.toString(), -1, "is outside");
        assertTrue(Files.exists(file));
    }

    @Test
    public void aFileOfAnotherUserIsRefused() throws Exception {
        Path file = shmFile(SharedMemory.DIR, "vgpu-foreign-", SIZE);
        java.nio.file.attribute.UserPrincipal nobody;
        try {
            nobody = file.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody");
            Files.setOwner(file, nobody);
        } catch (IOException notRoot) {
            org.junit.Assume.assumeNoException("giving a file away needs root", notRoot);
            return;
        }
        assertRefused(file.toString(), SIZE, "belongs to nobody");
    }

    @Test
    public void regionsAboveTheConfiguredLimitAreRefused() throws Exception {
        restart(java.util.Map.of("max_shm_mib", 1));
        Path file = shmFile(SharedMemory.DIR, "vgpu-big-", SIZE);
        assertRefused(file.toString(), SIZE, "is outside");
    }
}
