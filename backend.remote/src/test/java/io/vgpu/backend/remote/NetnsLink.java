package io.vgpu.backend.remote;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A real link for {@link RemoteBench}: a network namespace of its own joined to the root namespace by
 * a veth pair (names unique to this process), with the bench's host side in a second JVM inside it.
 * The bench's JVM stays in the root namespace, so every byte between guest and host crosses the veth.
 * Closing removes the namespace (which takes the veth with it) and ends the child JVM, also from a
 * shutdown hook, each step bounded in time.
 */
final class NetnsLink implements AutoCloseable {
    final String ns;
    final String rootIf;
    final String nsIf;
    final String rootAddress;
    final String nsAddress;
    /** Why there is no link (not root, no iproute2, no namespaces); null when there is one. */
    String skip;
    private Process child;
    private boolean created;
    private final Thread hook = new Thread(this::cleanup, "netns-bench-cleanup");

    private NetnsLink() {
        long pid = ProcessHandle.current().pid();
        ns = "vgb-" + pid;
        rootIf = "vgb" + pid + "r";
        nsIf = "vgb" + pid + "n";
        String net = "10.213." + (pid % 250);
        rootAddress = net + ".1";
        nsAddress = net + ".2";
    }

    static NetnsLink open() {
        NetnsLink l = new NetnsLink();
        Runtime.getRuntime().addShutdownHook(l.hook);
        try {
            l.ip("netns", "add", l.ns);
            l.created = true;
            l.ip("link", "add", l.rootIf, "type", "veth", "peer", "name", l.nsIf);
            l.ip("link", "set", l.nsIf, "netns", l.ns);
            l.ip("addr", "add", l.rootAddress + "/24", "dev", l.rootIf);
            l.ip("link", "set", l.rootIf, "up");
            l.ip("-n", l.ns, "addr", "add", l.nsAddress + "/24", "dev", l.nsIf);
            l.ip("-n", l.ns, "link", "set", l.nsIf, "up");
            l.ip("-n", l.ns, "link", "set", "lo", "up");
        } catch (Exception e) {
            l.skip = "needs root and iproute2 network namespaces + veth: " + e.getMessage();
            l.cleanup();
        }
        return l;
    }

    /** Starts {@code RemoteBench serve} in the namespace on the same classpath and waits for its ports. */
    RemoteBench.Host serve(Path dir) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns,
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + Math.max(1024, Runtime.getRuntime().maxMemory() >> 20) + "m",
                "-cp", classPath(), RemoteBench.class.getName(), "serve", dir.toString(), nsAddress));
        child = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> ready = CompletableFuture.supplyAsync(() -> {
            try {
                for (String line; (line = out.readLine()) != null;) {
                    if (line.startsWith("ready ")) {
                        return line;
                    }
                }
                return null;
            } catch (IOException e) {
                return null;
            }
        });
        String line = ready.get(120, TimeUnit.SECONDS);
        if (line == null) {
            throw new IOException("the host side in " + ns + " ended before it was ready (exit " + child.waitFor() + ")");
        }
        String[] f = line.split(" ");
        return new RemoteBench.Host(nsAddress, Integer.parseInt(f[1]), Integer.parseInt(f[2]));
    }

    /**
     * The bench's own classpath: under exec:java the classes come from the plugin's class loader, not
     * from java.class.path (which is Maven's launcher there).
     */
    static String classPath() {
        List<String> parts = new ArrayList<>();
        for (ClassLoader l = NetnsLink.class.getClassLoader(); l != null; l = l.getParent()) {
            if (l instanceof URLClassLoader u) {
                for (URL url : u.getURLs()) {
                    try {
                        parts.add(Path.of(url.toURI()).toString());
                    } catch (Exception e) {
                        // not a file: nothing a child JVM could load
                    }
                }
            }
        }
        parts.add(System.getProperty("java.class.path"));
        return String.join(File.pathSeparator, parts);
    }

    private void ip(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("ip"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + ": no answer in 10 s");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + ": " + text);
        }
    }

    private synchronized void cleanup() {
        if (child != null) {
            try {
                child.getOutputStream().close();
                if (!child.waitFor(5, TimeUnit.SECONDS)) {
                    child.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (Exception e) {
                child.destroyForcibly();
            }
            child = null;
        }
        if (created) {
            created = false;
            quietly("netns", "del", ns);
        }
        // Only needed when the veth was made but not yet moved into the namespace.
        quietly("link", "del", rootIf);
    }

    private void quietly(String... args) {
        try {
            ip(args);
        } catch (Exception e) {
            // already gone, or not ours to remove
        }
    }

    @Override
    public void close() {
        cleanup();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // shutting down: the hook runs cleanup, which is now a no-op
        }
    }
}
