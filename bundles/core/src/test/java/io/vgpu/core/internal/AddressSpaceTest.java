package io.vgpu.core.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class AddressSpaceTest {
    private static final long BASE = 0x2000_0000_0000L;

    @Test
    public void reservesAlignedDisjointRanges() {
        AddressSpace s = new AddressSpace(BASE, 1L << 40);
        long a = s.reserve(100, 512, 0);
        long b = s.reserve(3L << 20, 2L << 20, 0);
        long c = s.reserve(100, 512, 0);
        assertEquals(BASE, a);
        assertEquals(0, b % (2L << 20));
        assertTrue(c >= a + 512 && (c + 512 <= b || c >= b + (3L << 20)));
    }

    @Test
    public void releasedRangesCoalesceAndAreReused() {
        AddressSpace s = new AddressSpace(BASE, 1L << 20);
        long a = s.reserve(1L << 19, 512, 0);
        long b = s.reserve(1L << 19, 512, 0);
        assertEquals(0, s.reserve(512, 512, 0));
        s.release(a, 1L << 19);
        s.release(b, 1L << 19);
        assertEquals(BASE, s.reserve(1L << 20, 512, 0));
        assertEquals(1L << 20, s.used());
    }

    @Test
    public void honoursAFreeHintAndRefusesATakenOne() {
        AddressSpace s = new AddressSpace(BASE, 1L << 30);
        long hint = BASE + (64L << 20);
        assertEquals(hint, s.reserve(2L << 20, 2L << 20, hint));
        long other = s.reserve(2L << 20, 2L << 20, hint);
        assertTrue(other != hint && other != 0);
        assertFalse(s.take(hint, 512));
    }

    @Test
    public void rejectsNonsense() {
        AddressSpace s = new AddressSpace(BASE, 1L << 20);
        assertEquals(0, s.reserve(0, 512, 0));
        assertEquals(0, s.reserve(-5, 512, 0));
        assertEquals(0, s.reserve(100, 3, 0));
        assertEquals(0, s.reserve(2L << 20, 512, 0));
    }

    @Test
    public void ignoresHintsOutsideTheWindowAndNeverWraps() {
        AddressSpace s = new AddressSpace(BASE, 1L << 30);
        long end = BASE + (1L << 30);
        // Issue 13: this hint used to be taken, leaving a free range past 2^63 for the next caller.
        assertEquals(BASE, s.reserve(2L << 20, 2L << 20, 0x7fff_ffff_ffe0_0000L));
        assertEquals(BASE + (2L << 20), s.reserve(512, 512, 0));
        assertEquals(BASE + (4L << 20), s.reserve(2L << 20, 2L << 20, end - (2L << 20) + (2L << 20)));
        assertEquals(end - (2L << 20), s.reserve(2L << 20, 2L << 20, end - (2L << 20)));
        assertFalse(s.take(0x7fff_ffff_ffe0_0000L, 2L << 20));
        assertFalse(s.take(end - 512, 1024));
        assertFalse(s.take(BASE + (64L << 20), -512));
        assertFalse(s.take(BASE + (64L << 20), Long.MAX_VALUE));
        assertEquals(0, s.reserve(512, 1L << 62, 0));
        assertTrue(s.contains(BASE, 1L << 30));
        assertFalse(s.contains(BASE, (1L << 30) + 1));
        assertFalse(s.contains(end - 1, Long.MAX_VALUE));
        assertFalse(s.contains(BASE - 1, 1));
        long used = s.used();
        for (int i = 0; i < 100; i++) {
            long a = s.reserve(4096, 512, 0);
            assertTrue(Long.toHexString(a), a >= BASE && a + 4096 <= end);
        }
        assertEquals(used + 100 * 4096, s.used());
    }
}
