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
}
