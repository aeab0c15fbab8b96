package io.vgpu.shim.bridge.internal;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * Who is on the other end of a Unix socket, from the kernel ({@code SO_PEERCRED}), not from
 * anything the client says. Numeric ids come from /etc/passwd and /etc/group because the JDK only
 * hands out principal names; users that exist only in NSS (LDAP, sssd) get -1 unless the JDK
 * already reported them numerically.
 */
final class PeerIdentity {
    static final Path PASSWD = Path.of("/etc/passwd");
    static final Path GROUP = Path.of("/etc/group");

    final UserPrincipal user;
    final GroupPrincipal group;
    final int uid;
    final int gid;
    /** The primary group and every group of /etc/group that lists the user as a member. */
    final List<String> groups;

    PeerIdentity(UserPrincipal user, GroupPrincipal group, int uid, int gid, List<String> groups) {
        this.user = user;
        this.group = group;
        this.uid = uid;
        this.gid = gid;
        this.groups = groups;
    }

    static PeerIdentity of(SocketChannel channel) throws IOException {
        UnixDomainPrincipal p = channel.getOption(ExtendedSocketOptions.SO_PEERCRED);
        List<String> passwd = readLines(PASSWD);
        List<String> group = readLines(GROUP);
        String userName = p.user().getName();
        String groupName = p.group().getName();
        return new PeerIdentity(p.user(), p.group(), id(userName, passwd), id(groupName, group), groups(userName, groupName, group));
    }

    private static List<String> readLines(Path file) {
        try {
            return Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    /** The numeric id of {@code name} in a passwd- or group-format file (name:x:id:...), or -1. */
    static int id(String name, List<String> lines) {
        if (isNumeric(name)) {
            return parse(name);
        }
        for (String line : lines) {
            String[] f = line.split(":", -1);
            if (f.length >= 3 && f[0].equals(name) && isNumeric(f[2])) {
                return parse(f[2]);
            }
        }
        return -1;
    }

    static List<String> groups(String userName, String primaryGroup, List<String> groupLines) {
        List<String> out = new ArrayList<>();
        out.add(primaryGroup);
        for (String line : groupLines) {
            String[] f = line.split(":", -1);
            if (f.length >= 4 && !f[0].equals(primaryGroup)) {
                for (String member : f[3].split(",")) {
                    if (member.trim().equals(userName)) {
                        out.add(f[0]);
                        break;
                    }
                }
            }
        }
        return out;
    }

    private static boolean isNumeric(String s) {
        if (s == null || s.isEmpty() || s.length() > 10) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    private static int parse(String s) {
        long v = Long.parseLong(s);
        return v <= 0xffffffffL ? (int) v : -1;
    }

    String userName() {
        return user.getName();
    }

    String groupName() {
        return group.getName();
    }

    /**
     * Empty lists allow everyone who can open the socket. Entries may be names or numeric ids; a
     * user passes if either list names it or one of its groups.
     */
    boolean allowedBy(Collection<String> allowedUsers, Collection<String> allowedGroups) {
        if (allowedUsers.isEmpty() && allowedGroups.isEmpty()) {
            return true;
        }
        if (allowedUsers.contains(userName()) || (uid >= 0 && allowedUsers.contains(Integer.toUnsignedString(uid)))) {
            return true;
        }
        if (gid >= 0 && allowedGroups.contains(Integer.toUnsignedString(gid))) {
            return true;
        }
        for (String g : groups) {
            if (allowedGroups.contains(g)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public String toString() {
        return "user " + userName() + " (uid " + uid + ", group " + groupName() + ")";
    }
}
