package io.vgpu.backend.mock;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;

import io.vgpu.api.CuResult;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Test;

/** Reused pages never show a previous owner's bytes, and the pool keeps no more than its reserve. */
public class PagePoolTest {
    private static final int PAGE = PagePool.PAGE;
    private static final long BASE = 0x2000_0000_0000L;

    @Test
    public void aReusedPageIsZeroedUnlessItWillBeOverwritten() {
        PagePool pool = new PagePool(1000);
        PagePool.Page p = pool.take(false);
        p.bytes.put(0, (byte) 0x5a).put(PAGE - 1, (byte) 0x5b);
        pool.give(p);
        PagePool.Page again = pool.take(false);
        assertSame("the freed page is handed out again", p, again);
        assertEquals(0, again.bytes.get(0));
        assertEquals(0, again.bytes.get(PAGE - 1));
        again.bytes.put(7, (byte) 1);
        pool.give(again);
        // Not zeroed when the caller says it overwrites all of it: that is what saves a pass in the pause.
        assertEquals(1, pool.take(true).bytes.get(7));
    }

    @Test
    public void wholeFreeSlabsBeyondTheReserveAreDropped() {
        PagePool pool = new PagePool(64);
        List<PagePool.Page> pages = new ArrayList<>();
        for (int i = 0; i < 192; i++) {
            pages.add(pool.take(false));
        }
        assertEquals(3L * 64 * PAGE, pool.slabBytes());
        pages.forEach(pool::give);
        assertEquals("one slab kept for reuse, two dropped", 64L * PAGE, pool.slabBytes());
        assertEquals(64L * PAGE, pool.freeBytes());
    }

    @Test
    public void anotherOwnerNeverReadsWhatTheFirstFreed() {
        MockMemory mem = new MockMemory(1L << 30);
        int size = 8 * PAGE;
        byte[] secret = new byte[size];
        Arrays.fill(secret, (byte) 0x77);
        MockMemory.Physical a = mem.create(size, 1);
        assertEquals(CuResult.SUCCESS, mem.map(BASE, size, 0, a));
        assertEquals(CuResult.SUCCESS, mem.write(BASE, ByteBuffer.wrap(secret), 1));
        mem.unmap(BASE);
        mem.release(a);
        long held = PagePool.SHARED.slabBytes();

        MockMemory.Physical b = mem.create(size, 2);
        assertEquals(CuResult.SUCCESS, mem.map(BASE, size, 0, b));
        // Part of a page, a whole page, and a fill: each path that makes a page.
        assertEquals(CuResult.SUCCESS, mem.write(BASE + 100, ByteBuffer.wrap(new byte[] {1, 2, 3}), 2));
        assertEquals(CuResult.SUCCESS, mem.write(BASE + PAGE, ByteBuffer.wrap(new byte[PAGE]), 2));
        assertEquals(CuResult.SUCCESS, mem.fill(BASE + 2 * PAGE + 10, 0x01, 1, 20, 2));
        assertEquals("the second owner's pages came from the first owner's", held, PagePool.SHARED.slabBytes());
        ByteBuffer back = ByteBuffer.allocate(size);
        assertEquals(CuResult.SUCCESS, mem.read(BASE, back, 2));
        byte[] expected = new byte[size];
        expected[100] = 1;
        expected[101] = 2;
        expected[102] = 3;
        Arrays.fill(expected, 2 * PAGE + 10, 2 * PAGE + 30, (byte) 1);
        assertArrayEquals(expected, back.array());
    }

    @Test
    public void pagesFreedDuringALaunchWaitForItsEnd() {
        MockMemory mem = new MockMemory(1L << 30);
        MockMemory.Physical a = mem.create(PAGE, 1);
        assertEquals(CuResult.SUCCESS, mem.map(BASE, PAGE, 0, a));
        assertEquals(CuResult.SUCCESS, mem.write(BASE, ByteBuffer.wrap(new byte[] {9}), 1));
        long free = PagePool.SHARED.freeBytes();
        mem.launchStarted();
        mem.unmap(BASE);
        mem.release(a);
        assertEquals("a kernel may still hold the page", free, PagePool.SHARED.freeBytes());
        assertEquals(0, mem.materialisedBytes());
        mem.launchEnded();
        assertEquals(free + PAGE, PagePool.SHARED.freeBytes());
    }
}
