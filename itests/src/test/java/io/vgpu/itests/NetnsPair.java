package io.vgpu.itests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Two network namespaces joined by a veth pair, made by a test and removed after it: a private
 * two-host network whose cable the test can cut ({@link #link}). Needs root and iproute2. Names
 * carry the creating JVM's pid, so namespaces a killed run left behind are swept on the next start
 * without touching those of a run still going.
 */
final class NetnsPair implements AutoCloseable {
    private static final String PREFIX = "vgpunf";
    private static final Pattern OURS = Pattern.compile("^" + PREFIX + "(\\d+)x\\d+[hg]\\b");

    final String host;
    final String guest;
    final String hostIf = "vgpuh0";
    final String guestIf = "vgpug0";
    final String hostAddress = "10.77.0.1";
    final String guestAddress = "10.77.0.2";

    /** Thrown when this machine cannot make the namespaces (not root, no iproute2, no veth). */
    static final class Unavailable extends Exception {
        private static final long serialVersionUID = 1L;

        Unavailable(String why) {
            super(why);
        }
    }

    private NetnsPair(String tag) {
        host = tag + "h";
        guest = tag + "g";
    }

    static NetnsPair create() throws Unavailable {
        sweepLeftovers();
        String tag = PREFIX + ProcessHandle.current().pid() + "x" + ThreadLocalRandom.current().nextInt(100_000);
        NetnsPair n = new NetnsPair(tag);
        try {
            n.ip("netns", "add", n.host);
            n.ip("netns", "add", n.guest);
            n.ip("-n", n.host, "link", "add", n.hostIf, "type", "veth", "peer", "name", n.guestIf, "netns", n.guest);
            n.ip("-n", n.host, "addr", "add", n.hostAddress + "/24", "dev", n.hostIf);
            n.ip("-n", n.guest, "addr", "add", n.guestAddress + "/24", "dev", n.guestIf);
            for (String ns : List.of(n.host, n.guest)) {
                n.ip("-n", ns, "link", "set", "lo", "up");
            }
            n.ip("-n", n.host, "link", "set", n.hostIf, "up");
            n.ip("-n", n.guest, "link", "set", n.guestIf, "up");
            return n;
        } catch (IOException e) {
            n.close();
            throw new Unavailable(e.getMessage());
        }
    }

    /** Sets the host's end of the cable down or up (its peer in the guest loses its carrier with it). */
    void link(boolean up) throws IOException {
        ip("-n", host, "link", "set", hostIf, up ? "up" : "down");
    }

    /**
     * Adds a netem qdisc with {@code spec} (e.g. "delay 150ms") on both ends; null when it worked,
     * otherwise what tc said (this kernel may lack netem).
     */
    String netem(String... spec) {
        try {
            for (String[] end : new String[][] {{host, hostIf}, {guest, guestIf}}) {
                List<String> cmd = new ArrayList<>(List.of("netns", "exec", end[0], "tc", "qdisc", "replace", "dev", end[1], "root",
                        "netem"));
                cmd.addAll(List.of(spec));
                ip(cmd.toArray(new String[0]));
            }
            return null;
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    void clearNetem() throws IOException {
        for (String[] end : new String[][] {{host, hostIf}, {guest, guestIf}}) {
            ip("netns", "exec", end[0], "tc", "qdisc", "del", "dev", end[1], "root");
        }
    }

    /** The command line that runs {@code command} inside namespace {@code ns}. */
    static List<String> in(String ns, List<String> command) {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", ns));
        c.addAll(command);
        return c;
    }

    /** Deletes both namespaces (their veth ends go with them); what runs inside must be stopped first. */
    @Override
    public void close() {
        for (String ns : List.of(host, guest)) {
            try {
                ip("netns", "del", ns);
            } catch (IOException e) {
                // not made, or already gone
            }
        }
    }

    private static void sweepLeftovers() {
        String list;
        try {
            list = ip("netns", "list");
        } catch (IOException e) {
            return; // create() reports why
        }
        for (String line : list.split("\n")) {
            Matcher m = OURS.matcher(line.trim());
            if (m.find() && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
                String name = line.trim().split("\\s+")[0];
                try {
                    ip("netns", "del", name);
                    System.out.println("removed the network namespace " + name + " that a killed test run left behind");
                } catch (IOException e) {
                    // someone else removed it
                }
            }
        }
    }

    /** Runs {@code ip args}, bounded to 10 s; its output, or an IOException with what it printed. */
    static String ip(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("ip");
        cmd.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException(String.join(" ", cmd) + ": " + e.getMessage());
        }
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + " did not finish within 10 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted");
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed (exit " + p.exitValue() + "): " + out.trim());
        }
        return out;
    }
}
