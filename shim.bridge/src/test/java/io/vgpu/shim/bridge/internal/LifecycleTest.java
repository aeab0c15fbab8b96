package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Wire;
import io.vgpu.shim.bridge.internal.TestClient.Hello;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.Assume;
import org.junit.Test;

/** The socket, its permissions and owners, and what happens to sessions when things end. */
public class LifecycleTest extends BridgeTestBase {
    private static String myUser() throws IOException {
        Path probe = Files.createTempFile("vgpu-owner", "");
        try {
            return Files.getOwner(probe).getName();
        } finally {
            Files.delete(probe);
        }
    }

    private static String myGroup() throws IOException {
        Path probe = Files.createTempFile("vgpu-group", "");
        try {
            return Files.readAttributes(probe, PosixFileAttributes.class).group().getName();
        } finally {
            Files.delete(probe);
        }
    }

    @Test
    public void theSocketIsCreatedWithTheConfiguredModeAndRemovedOnDeactivation() throws Exception {
        PosixFileAttributes a = Files.readAttributes(socket, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        assertTrue(a.isOther());
        assertEquals("rw-rw----", PosixFilePermissions.toString(a.permissions()));
        bridge.deactivate();
        bridge = null;
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    public void theSocketGetsTheConfiguredGroupAndMode() throws Exception {
        Assume.assumeTrue("changing a file's group to any group needs root", "root".equals(myUser()));
        restart(Map.of("socket_group", "daemon", "socket_mode", "rw-rw-rw-"));
        PosixFileAttributes a = Files.readAttributes(socket, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        assertEquals("daemon", a.group().getName());
        assertEquals("rw-rw-rw-", PosixFilePermissions.toString(a.permissions()));
    }

    @Test
    public void missingParentDirectoriesAreCreated() throws Exception {
        Path deeper = dir.resolve("a/b/s.sock");
        restart(Map.of("socket", deeper.toString()));
        assertTrue(bridge.listening());
        try (TestClient c = new TestClient(deeper)) {
            c.hello("deeper");
        }
    }

    @Test
    public void aDroppedConnectionReleasesEverythingItHeld() throws Exception {
        long[] before = new long[2];
        mock.memGetInfo(0, before);
        TestClient c = connect();
        c.hello("dropped");
        long ctx = c.ctxCreate();
        c.memAlloc(ctx, 1L << 30);
        long[] during = new long[2];
        mock.memGetInfo(0, during);
        assertEquals(before[0] - (1L << 30), during[0]);
        assertEquals(1L << 30, router.sessions().get(0).memoryUsed);
        c.close();
        await("the session is closed", () -> router.sessions().isEmpty());
        long[] after = new long[2];
        await("the memory is back", () -> {
            mock.memGetInfo(0, after);
            return after[0] == before[0];
        });
        await("the connection is gone", () -> bridge.connectionCount() == 0);
        awaitLogLines(1, "INFO", "(pid " + ProcessHandle.current().pid() + ", dropped) disconnected");
    }

    @Test
    public void deactivationClosesEveryConnectionAndSession() throws Exception {
        try (TestClient a = connect(); TestClient b = connect()) {
            a.hello("a");
            b.hello("b");
            a.memAlloc(a.ctxCreate(), 1 << 20);
            assertEquals(2, router.sessions().size());
            bridge.deactivate();
            bridge = null;
            assertTrue(router.sessions().isEmpty());
            assertTrue(a.closedByService());
            assertTrue(b.closedByService());
        }
    }

    @Test
    public void aSecondServiceDoesNotStealALiveSocket() throws Exception {
        String marker = uniqueName("second");
        BridgeServer second = start(router, Map.of("socket_mode", "rw-------"));
        try {
            assertFalse(second.listening());
            awaitLogLines(1, "ERROR", "another vgpu service is listening on " + socket);
            try (TestClient c = connect()) {
                c.hello(marker);
                assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
            }
        } finally {
            second.deactivate();
        }
        assertTrue("the first service's socket stays", Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        try (TestClient c = connect()) {
            c.hello("still-there");
        }
    }

    @Test
    public void aStaleSocketFileIsReplaced() throws Exception {
        // A service killed with SIGKILL leaves its socket file behind; nobody listens on it.
        java.nio.channels.ServerSocketChannel dead = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX);
        Path stale = dir.resolve("stale.sock");
        dead.bind(java.net.UnixDomainSocketAddress.of(stale));
        dead.close();
        assertTrue(Files.exists(stale, LinkOption.NOFOLLOW_LINKS));
        restart(Map.of("socket", stale.toString()));
        assertTrue(bridge.listening());
        try (TestClient c = new TestClient(stale)) {
            c.hello("after-stale");
        }
    }

    @Test
    public void aRegularFileAtTheSocketPathIsLeftAlone() throws Exception {
        Path file = dir.resolve("not-a-socket");
        Files.writeString(file, "precious");
        restart(Map.of("socket", file.toString()));
        assertFalse(bridge.listening());
        assertEquals("precious", Files.readString(file));
    }

    @Test
    public void allowListsRefuseOtherUsersBeforeReadingAnything() throws Exception {
        restart(Map.of("allowed_users", new String[] {"no-such-user-here"}, "allowed_groups", new String[] {"no-such-group"}));
        try (TestClient c = connect()) {
            assertTrue(c.closedByService());
        }
        awaitLogLines(1, "WARN", "refusing a connection from user " + myUser(), "no-such-user-here");
        assertTrue(router.sessions().isEmpty());
    }

    @Test
    public void allowListsAdmitListedUsersAndGroups() throws Exception {
        restart(Map.of("allowed_users", new String[] {"someone-else", myUser()}));
        try (TestClient c = connect()) {
            c.hello("listed-user");
        }
        restart(Map.of("allowed_users", new String[] {"someone-else"}, "allowed_groups", new String[] {myGroup()}));
        try (TestClient c = connect()) {
            c.hello("listed-group");
            assertEquals(CuResult.SUCCESS, c.call(Wire.PING).result());
        }
    }

    @Test
    public void sessionsBeyondTheLimitAreRefusedButControlStillWorks() throws Exception {
        restart(Map.of("max_sessions", 1));
        try (TestClient first = connect(); TestClient second = connect(); TestClient cli = connect()) {
            first.hello("first");
            Hello h = second.hello(0, 0, "", "second");
            assertEquals(CuResult.MPS_MAX_CLIENTS_REACHED, h.result());
            assertTrue(second.closedByService());
            assertEquals(CuResult.SUCCESS, cli.hello(Connection.CAPS_CONTROL, 0, "", "vgpu").result());
            assertEquals(CuResult.SUCCESS, cli.call(Wire.SESSION_LIST).result());
            first.close();
            await("the slot is free", () -> router.sessions().isEmpty());
            await("the connection is gone", () -> bridge.connectionCount() == 1);
        }
        try (TestClient third = connect()) {
            third.hello("third");
        }
    }

    @Test
    public void withoutABackendTheSessionReportsNoDevice() throws Exception {
        io.vgpu.core.internal.Router empty = new io.vgpu.core.internal.Router();
        bridge.deactivate();
        bridge = start(empty, Map.of());
        try (TestClient c = connect()) {
            Hello h = c.hello("no-backend");
            assertEquals(CuResult.SUCCESS, h.result());
            assertEquals(CuResult.NO_DEVICE, h.status());
            TestClient.Reply r = c.call(Wire.DEVICE_LIST);
            assertEquals(CuResult.NO_DEVICE, r.result());
            assertEquals(0, r.i32(Wire.DeviceList.REP_COUNT));
        }
    }
}
