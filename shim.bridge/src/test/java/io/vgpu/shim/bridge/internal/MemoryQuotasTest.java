package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The quota arithmetic on its own: who a quota applies to, what fits, what a process is told. */
public class MemoryQuotasTest {
    static final long MIB = 1L << 20;
    static final long GIB = 1L << 30;
    static final List<String> GROUP = List.of("root:x:0:", "alice:x:1000:", "video:x:44:alice,carol", "ml:x:990:bob");
    static final MemoryQuotas.Device D0 = new MemoryQuotas.Device("mock", 0);
    static final MemoryQuotas.Device D1 = new MemoryQuotas.Device("mock", 1);
    static final long PHYSICAL = 80 * GIB;

    static MemoryQuotas quotas(Map<String, ?> properties) {
        return MemoryQuotas.of(properties, GROUP);
    }

    static MemoryQuotas.Account alice(MemoryQuotas q, long session, int pid) {
        return q.open(session, "alice", 1000, 1000, List.of("alice", "video"), pid);
    }

    static MemoryQuotas.Account bob(MemoryQuotas q, long session, int pid) {
        return q.open(session, "bob", 1001, 1001, List.of("bob", "ml"), pid);
    }

    static long[] view(MemoryQuotas q, MemoryQuotas.Account a, MemoryQuotas.Device d, long physicalFree) {
        long[] v = {physicalFree, PHYSICAL};
        q.view(a, d, v);
        return v;
    }

    /** What QuotaSession does: the session is bound to {@code d}'s backend, then charged on its device. */
    static MemoryQuotas.Quota charge(MemoryQuotas q, MemoryQuotas.Account a, MemoryQuotas.Device d, long bytes) {
        assertNull(q.bind(a, q.moves(a), d.backend()));
        return q.charge(a, d.ordinal(), bytes);
    }

    static void uncharge(MemoryQuotas q, MemoryQuotas.Account a, MemoryQuotas.Device d, long bytes) {
        q.uncharge(a, d.ordinal(), bytes);
    }

    @Test
    public void keysParseToLimitsAndBadOnesAreIgnored() {
        MemoryQuotas q = quotas(Map.of("quota.process.mib", "1024", "quota.user.mib", 2048, "quota.user.alice.mib", " 512 ",
                "quota.group.video.mib", "4096", "quota.process.alice.mib", "1", "quota.user.bob.mib", "-1",
                "quota.group.mib", "7", "quota.bogus", "9", "socket", "/tmp/x"));
        assertEquals("each process 1024 MiB, each user 2048 MiB, user alice 512 MiB, group video 4096 MiB (per device)",
                q.describe());
        assertTrue(quotas(Map.of("socket", "/tmp/x", "quota.user.x.mib", "lots")).isEmpty());
        assertTrue(quotas(Map.of()).isEmpty());
    }

    @Test
    public void nothingAppliesToAUserNoKeyNames() {
        MemoryQuotas q = quotas(Map.of("quota.user.alice.mib", "512"));
        assertNull(bob(q, 1, 100));
        assertNotNull(alice(q, 2, 101));
    }

    @Test
    public void theTotalIsTheTightestLimitAndFreeWhatItsHoldersLeave() {
        MemoryQuotas q = quotas(Map.of("quota.process.mib", "1024", "quota.user.alice.mib", "1536"));
        MemoryQuotas.Account a1 = alice(q, 1, 100);
        MemoryQuotas.Account a2 = alice(q, 2, 200);
        assertEquals(1024 * MIB, MemoryQuotas.total(a1, PHYSICAL));
        assertEquals("process 100", a1.tightest().name);
        assertArrayEquals(new long[] {1024 * MIB, 1024 * MIB}, view(q, a1, D0, PHYSICAL));

        assertNull(charge(q, a1, D0, 1024 * MIB));
        assertArrayEquals(new long[] {0, 1024 * MIB}, view(q, a1, D0, PHYSICAL));
        // The other process of the same user: its own process quota is empty, the user's has 512 MiB left.
        assertArrayEquals(new long[] {512 * MIB, 1024 * MIB}, view(q, a2, D0, PHYSICAL));
        assertEquals("user alice", charge(q, a2, D0, 512 * MIB + 1).name);
        assertNull(charge(q, a2, D0, 512 * MIB));
        assertEquals("process 100", charge(q, a1, D0, 1).name);
        // Per device: device 1 is untouched.
        assertArrayEquals(new long[] {1024 * MIB, 1024 * MIB}, view(q, a1, D1, PHYSICAL));
        // Never more than the device really has free.
        assertArrayEquals(new long[] {10 * MIB, 1024 * MIB}, view(q, a1, D1, 10 * MIB));
        // Freeing makes room again.
        uncharge(q, a1, D0, 256 * MIB);
        assertArrayEquals(new long[] {256 * MIB, 1024 * MIB}, view(q, a2, D0, PHYSICAL));
        // A session that ends gives back what it held.
        q.close(a2);
        assertArrayEquals(new long[] {256 * MIB, 1024 * MIB}, view(q, a1, D0, PHYSICAL));
        q.close(a1);
        // What a session does after it was closed no longer counts.
        uncharge(q, a1, D0, 512 * MIB);
        assertNull(charge(q, a1, D0, 1024 * MIB));
        assertNull(q.settle(a1, q.moves(a1), "mock", new long[] {1024 * MIB}, false));
        MemoryQuotas.Account a3 = alice(q, 3, 300);
        assertArrayEquals(new long[] {1024 * MIB, 1024 * MIB}, view(q, a3, D0, PHYSICAL));
    }

    @Test
    public void theProcessQuotaIsSharedByTheConnectionsOfOneProcess() {
        MemoryQuotas q = quotas(Map.of("quota.process.mib", "100"));
        MemoryQuotas.Account cuda = alice(q, 1, 100);
        MemoryQuotas.Account nvml = alice(q, 2, 100);
        MemoryQuotas.Account other = alice(q, 3, 101);
        MemoryQuotas.Account bobs = bob(q, 4, 100);
        assertNull(charge(q, cuda, D0, 60 * MIB));
        assertArrayEquals(new long[] {40 * MIB, 100 * MIB}, view(q, nvml, D0, PHYSICAL));
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, other, D0, PHYSICAL));
        // The same pid of another user is another process (another pid namespace).
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, bobs, D0, PHYSICAL));
    }

    @Test
    public void aUsersOwnKeyReplacesTheDefaultAndUidsMatchToo() {
        MemoryQuotas q = quotas(Map.of("quota.user.mib", "100", "quota.user.1001.mib", "300"));
        MemoryQuotas.Account a = alice(q, 1, 100);
        MemoryQuotas.Account b = bob(q, 2, 200);
        assertEquals(100 * MIB, MemoryQuotas.total(a, PHYSICAL));
        assertEquals("user alice", a.tightest().name);
        assertEquals(300 * MIB, MemoryQuotas.total(b, PHYSICAL));
        assertEquals("user 1001", b.tightest().name);
        // Each user has a default quota of their own.
        MemoryQuotas.Account carol = q.open(3, "carol", 1002, 1002, List.of("carol", "video"), 300);
        assertNull(charge(q, a, D0, 100 * MIB));
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, carol, D0, PHYSICAL));
    }

    @Test
    public void groupQuotasCoverEveryMemberByNameOrGid() {
        MemoryQuotas q = quotas(Map.of("quota.group.video.mib", "200", "quota.group.990.mib", "50"));
        MemoryQuotas.Account a = alice(q, 1, 100);
        MemoryQuotas.Account carol = q.open(2, "carol", 1002, 1002, List.of("carol", "video"), 200);
        MemoryQuotas.Account b = bob(q, 3, 300);
        MemoryQuotas.Account dave = q.open(4, "dave", 1003, 990, List.of("ml"), 400);
        assertEquals("group video", a.tightest().name);
        assertEquals("group 990", b.tightest().name);
        assertEquals("group 990", dave.tightest().name);
        assertNull(charge(q, a, D0, 150 * MIB));
        assertArrayEquals(new long[] {50 * MIB, 200 * MIB}, view(q, carol, D0, PHYSICAL));
        assertArrayEquals(new long[] {50 * MIB, 50 * MIB}, view(q, b, D0, PHYSICAL));
        assertNull(charge(q, dave, D0, 50 * MIB));
        assertArrayEquals(new long[] {0, 50 * MIB}, view(q, b, D0, PHYSICAL));
    }

    @Test
    public void settlingToTheCoresFiguresCanBeRefusedWhenItDoesNotFit() {
        MemoryQuotas q = quotas(Map.of("quota.user.alice.mib", "100"));
        MemoryQuotas.Account a = alice(q, 1, 100);
        assertNull(q.settle(a, q.moves(a), "mock", new long[] {60 * MIB, 10 * MIB}, false));
        assertArrayEquals(new long[] {40 * MIB, 100 * MIB}, view(q, a, D0, PHYSICAL));
        assertArrayEquals(new long[] {90 * MIB, 100 * MIB}, view(q, a, D1, PHYSICAL));
        assertEquals("user alice", q.settle(a, q.moves(a), "mock", new long[] {101 * MIB, 10 * MIB}, true).name);
        assertArrayEquals(new long[] {40 * MIB, 100 * MIB}, view(q, a, D0, PHYSICAL));
        assertNull(q.settle(a, q.moves(a), "mock", new long[] {100 * MIB}, true));
        assertArrayEquals(new long[] {0, 100 * MIB}, view(q, a, D0, PHYSICAL));
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, a, D1, PHYSICAL));
        // Another backend's device 0 is another device.
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, a, new MemoryQuotas.Device("a100", 0), PHYSICAL));
    }

    static final MemoryQuotas.Device B0 = new MemoryQuotas.Device("mockb", 0);

    @Test
    public void aMoveMustFitTheTargetHoldsItsRoomWhileItRunsAndMovesTheHoldingsInOneStep() {
        MemoryQuotas q = quotas(Map.of("quota.user.alice.mib", "100"));
        MemoryQuotas.Account a = alice(q, 1, 100);
        MemoryQuotas.Account b = alice(q, 2, 200);
        assertNull(charge(q, a, D0, 60 * MIB));
        assertNull(charge(q, b, B0, 50 * MIB));
        assertEquals("quota user alice (100 MiB) has 50 MiB free on mockb:0, the session holds 60 MiB on mock:0",
                q.admit(a, "mock", "mockb", false));
        assertEquals(List.of(new MemoryQuotas.Row("user alice", 100 * MIB, D0, 60 * MIB, 2),
                new MemoryQuotas.Row("user alice", 100 * MIB, B0, 50 * MIB, 2)), q.rows());
        uncharge(q, b, B0, 20 * MIB);
        assertNull(q.admit(a, "mock", "mockb", false));
        // Admitted: the room on mockb:0 is a's until the move ends; 10 MiB are left to others.
        assertArrayEquals(new long[] {10 * MIB, 100 * MIB}, view(q, b, B0, PHYSICAL));
        assertEquals("user alice", q.charge(b, 0, 10 * MIB + 1).name);
        // And a's own allocations meanwhile must fit where it is and where it goes.
        assertEquals("user alice", q.charge(a, 0, 10 * MIB + 1).name);
        assertNull(q.charge(a, 0, MIB));
        q.guard(a).abandoned("mock", "mockb");
        assertArrayEquals(new long[] {70 * MIB, 100 * MIB}, view(q, b, B0, PHYSICAL));
        assertArrayEquals(new long[] {39 * MIB, 100 * MIB}, view(q, a, D0, PHYSICAL));

        long before = q.moves(a);
        assertNull(q.guard(a).admit("mock", "mockb", false));
        q.guard(a).moved("mock", "mockb");
        assertEquals("mockb", q.backend(a));
        assertEquals(List.of(new MemoryQuotas.Row("user alice", 100 * MIB, B0, 91 * MIB, 2)), q.rows());
        assertArrayEquals(new long[] {9 * MIB, 100 * MIB}, view(q, a, B0, PHYSICAL));
        assertArrayEquals(new long[] {100 * MIB, 100 * MIB}, view(q, a, D0, PHYSICAL));
        assertEquals("user alice", q.charge(a, 0, 9 * MIB + 1).name);
        // Figures of the core read before the move ended are not taken: they may be the source's.
        assertSame(MemoryQuotas.STALE, q.settle(a, before, "mock", new long[] {61 * MIB}, false));
        assertNull(q.settle(a, q.moves(a), "mockb", new long[] {61 * MIB}, false));
        assertEquals(List.of(new MemoryQuotas.Row("user alice", 100 * MIB, B0, 91 * MIB, 2)), q.rows());
        // A session that ends during a move gives back the room it held there too.
        assertNull(q.admit(a, "mockb", "mock", false));
        q.close(a);
        assertEquals(List.of(new MemoryQuotas.Row("user alice", 100 * MIB, B0, 30 * MIB, 1)), q.rows());
    }

    @Test
    public void anEvacuationPastAQuotaGoesThroughAndTheQuotaThenRefusesAllocations() {
        MemoryQuotas q = quotas(Map.of("quota.user.alice.mib", "100"));
        MemoryQuotas.Account a = alice(q, 1, 100);
        MemoryQuotas.Account b = alice(q, 2, 200);
        assertNull(charge(q, a, D0, 60 * MIB));
        assertNull(charge(q, b, B0, 50 * MIB));
        assertNull(q.admit(a, "mock", "mockb", true));
        q.moved(a, "mockb");
        assertEquals(List.of(new MemoryQuotas.Row("user alice", 100 * MIB, B0, 110 * MIB, 2)), q.rows());
        assertArrayEquals(new long[] {0, 100 * MIB}, view(q, a, B0, PHYSICAL));
        assertEquals("user alice", q.charge(a, 0, 1).name);
        assertEquals("user alice", q.charge(b, 0, 1).name);
        uncharge(q, a, B0, 20 * MIB);
        assertNull(q.charge(b, 0, 10 * MIB));
    }

    @Test
    public void rowsListEveryQuotaWithItsUsePerDevice() {
        MemoryQuotas q = quotas(Map.of("quota.process.mib", "100", "quota.user.bob.mib", "300"));
        MemoryQuotas.Account a = alice(q, 7, 100);
        assertNull(charge(q, a, D1, 5 * MIB));
        assertNull(charge(q, a, D0, 3 * MIB));
        assertEquals(List.of(new MemoryQuotas.Row("user bob", 300 * MIB, null, 0, 0),
                new MemoryQuotas.Row("process 100", 100 * MIB, D0, 3 * MIB, 1),
                new MemoryQuotas.Row("process 100", 100 * MIB, D1, 5 * MIB, 1)), q.rows());
        assertEquals("process 100", q.sessions().get(7L).name);
        q.close(a);
        assertEquals(List.of(new MemoryQuotas.Row("user bob", 300 * MIB, null, 0, 0)), q.rows());
        assertTrue(q.sessions().isEmpty());
    }
}
