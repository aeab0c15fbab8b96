package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.Test;

public class PeerIdentityTest {
    private static final List<String> PASSWD = List.of("root:x:0:0:root:/root:/bin/bash", "alice:x:1000:1000::/home/alice:/bin/sh",
            "broken line", "bob:x:notanumber:1:::");
    private static final List<String> GROUP = List.of("root:x:0:", "alice:x:1000:", "video:x:44:alice,carol", "vgpu:x:990:bob, alice");

    @Test
    public void namesMapToIdsThroughTheFiles() {
        assertEquals(0, PeerIdentity.id("root", PASSWD));
        assertEquals(1000, PeerIdentity.id("alice", PASSWD));
        assertEquals(-1, PeerIdentity.id("bob", PASSWD));
        assertEquals(-1, PeerIdentity.id("nobody", PASSWD));
        assertEquals(4242, PeerIdentity.id("4242", PASSWD));
        assertEquals(44, PeerIdentity.id("video", GROUP));
    }

    @Test
    public void groupsIncludeSupplementaryMemberships() {
        assertEquals(List.of("alice", "video", "vgpu"), PeerIdentity.groups("alice", "alice", GROUP));
        assertEquals(List.of("root"), PeerIdentity.groups("root", "root", GROUP));
    }

    @Test
    public void allowListsMatchNamesIdsAndGroups() {
        PeerIdentity alice = new PeerIdentity(() -> "alice", () -> "alice", 1000, 1000, List.of("alice", "video"));
        assertTrue(alice.allowedBy(Set.of(), Set.of()));
        assertTrue(alice.allowedBy(Set.of("alice"), Set.of()));
        assertTrue(alice.allowedBy(Set.of("1000"), Set.of()));
        assertTrue(alice.allowedBy(Set.of(), Set.of("video")));
        assertTrue(alice.allowedBy(Set.of("bob"), Set.of("1000")));
        assertFalse(alice.allowedBy(Set.of("bob"), Set.of()));
        assertFalse(alice.allowedBy(Set.of(), Set.of("vgpu")));
    }
}
