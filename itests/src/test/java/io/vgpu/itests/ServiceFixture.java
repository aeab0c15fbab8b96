package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.rules.ExternalResource;

/**
 * The real service distribution, started once per test class (use as a {@code @ClassRule}) on a
 * private socket and a private copy of conf/, plus helpers to run programs against it. Extra
 * configuration files are written before the service starts, so the mock comes up as configured.
 */
public class ServiceFixture extends ExternalResource {
    static final Path DIST = Path.of(System.getProperty("vgpu.dist", "../launcher/target/vgpu")).toAbsolutePath();
    static final Path NATIVE = Path.of(System.getProperty("vgpu.native", "../shim.bridge/target/native")).toAbsolutePath();

    /** How a program ended and what it printed. */
    static final class Result {
        final int exit;
        final String out;
        final String err;

        Result(int exit, String out, String err) {
            this.exit = exit;
            this.out = out;
            this.err = err;
        }

        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private final Map<String, String> confFiles = new LinkedHashMap<>();
    private final Map<String, String> serviceEnv = new LinkedHashMap<>();
    private String readyWhenStatusContains;
    private String netns;
    private Path work;
    private Path socket;
    private Path fixedSocket;
    private Path serviceLog;
    private Process service;

    /** Sets {@code name} in the service's environment, after (and over) the fixture's own. */
    public ServiceFixture withServiceEnv(String name, String value) {
        serviceEnv.put(name, value);
        return this;
    }

    /** Serves on {@code path} instead of a socket in the fixture's own directory. */
    public ServiceFixture atSocket(Path path) {
        fixedSocket = path;
        return this;
    }

    /** Writes {@code conf/<name>} with {@code content} before the service starts. */
    public ServiceFixture withConf(String name, String content) {
        confFiles.put(name, content);
        return this;
    }

    /**
     * Runs the service inside the network namespace {@code ns} ({@code ip netns exec}, which
     * execs it: the process is still the service's JVM). Its Unix socket stays reachable from
     * every namespace, so clients and {@link #ctl} run as usual.
     */
    public ServiceFixture inNetns(String ns) {
        netns = ns;
        return this;
    }

    /**
     * The service counts as started only once {@code vgpu-ctl status} prints this (FileInstall
     * applies conf/ after the framework is up, so a configured backend replaces the default one
     * a moment later).
     */
    public ServiceFixture readyWhenStatusContains(String text) {
        readyWhenStatusContains = text;
        return this;
    }

    @Override
    protected void before() throws Throwable {
        // Unix socket paths are limited to ~107 bytes: keep the directory short.
        work = Files.createTempDirectory(Path.of("/tmp"), "vgpu-it-");
        socket = fixedSocket != null ? fixedSocket : work.resolve("vgpu.sock");
        Path conf = work.resolve("conf");
        Files.createDirectories(conf);
        try (var files = Files.list(DIST.resolve("conf"))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, conf.resolve(f.getFileName()));
            }
        }
        for (Map.Entry<String, String> e : confFiles.entrySet()) {
            Files.createDirectories(conf.resolve(e.getKey()).getParent());
            Files.writeString(conf.resolve(e.getKey()), e.getValue());
        }
        serviceLog = work.resolve("service.log");
        List<String> command = List.of(DIST.resolve("bin/vgpu-service").toString());
        ProcessBuilder pb = new ProcessBuilder(netns == null ? command : NetnsPair.in(netns, command));
        pb.environment().put("VGPU_SOCKET", socket.toString());
        pb.environment().put("VGPU_CONF", conf.toString());
        pb.environment().putAll(serviceEnv);
        pb.redirectErrorStream(true).redirectOutput(serviceLog.toFile());
        service = pb.start();
        Await.until(20_000, () -> {
            assertTrue("service exited:\n" + log(), service.isAlive());
            Result status = ctl("status");
            assertEquals("status", 0, status.exit);
            if (readyWhenStatusContains != null) {
                assertTrue(status.out, status.out.contains(readyWhenStatusContains));
            }
        });
    }

    /**
     * SIGTERMs the service (the orderly path, as systemd stops it) without waiting: the future
     * completes when the process has ended. after() then only checks that it cleaned up.
     */
    CompletableFuture<Process> terminate() {
        service.destroy();
        return service.onExit();
    }

    /** SIGKILLs the service, as a crashed host would end; after() then only cleans up. */
    void kill() throws InterruptedException {
        service.destroyForcibly();
        service.waitFor(10, TimeUnit.SECONDS);
        service = null;
    }

    @Override
    protected void after() {
        if (service != null) {
            service.destroy(); // SIGTERM: the orderly path
            try {
                assertTrue("service did not stop on SIGTERM", service.waitFor(20, TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
            assertTrue("socket file left behind", !Files.exists(socket));
        }
        deleteTree(work);
    }

    private static void deleteTree(Path root) {
        if (root == null) {
            return;
        }
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // Only scratch space in /tmp: a leftover does not change any outcome.
        }
    }

    Path work() {
        return work;
    }

    Path socket() {
        return socket;
    }

    String log() {
        try {
            return Files.readString(serviceLog);
        } catch (IOException e) {
            return e.toString();
        }
    }

    /**
     * Runs a program against this service: its socket, no CUDA_VISIBLE_DEVICES, the shim's lib/
     * first on LD_LIBRARY_PATH; {@code env} comes last and may override any of that.
     */
    Result exec(List<String> command, Map<String, String> env, long timeoutSeconds) {
        try {
            ProcessBuilder pb = client(command, env);
            Path out = Files.createTempFile(work, "out", ".txt");
            Path err = Files.createTempFile(work, "err", ".txt");
            pb.redirectOutput(out.toFile()).redirectError(err.toFile());
            Process p = pb.start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(command + " timed out; stderr:\n" + Files.readString(err));
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /**
     * Starts a program against this service as {@link #exec} does, stderr into stdout, and returns
     * at once; the caller reads it and ends it.
     */
    Process spawn(List<String> command) throws IOException {
        return client(command, Map.of()).redirectErrorStream(true).start();
    }

    /** A client of this service: its socket, no CUDA_VISIBLE_DEVICES, the shim's lib/; then {@code env}. */
    private ProcessBuilder client(List<String> command, Map<String, String> env) {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().put("VGPU_SOCKET", socket.toString());
        pb.environment().remove("CUDA_VISIBLE_DEVICES");
        pb.environment().put("LD_LIBRARY_PATH", NATIVE.resolve("lib").toString());
        pb.environment().putAll(env);
        return pb;
    }

    /**
     * Like {@link #exec}, for a program that stops at each "step NAME" line it prints until it
     * reads a line on stdin: {@code onStep} gets NAME while the program waits, then it goes on.
     */
    Result execSteps(List<String> command, Map<String, String> env, long timeoutSeconds, Consumer<String> onStep) {
        Process p = null;
        try {
            ProcessBuilder pb = client(command, env);
            Path err = Files.createTempFile(work, "err", ".txt");
            pb.redirectError(err.toFile());
            Process started = pb.start();
            p = started;
            // A program that hangs is killed, which ends the reads below.
            CompletableFuture.runAsync(started::destroyForcibly,
                    CompletableFuture.delayedExecutor(timeoutSeconds, TimeUnit.SECONDS));
            StringBuilder out = new StringBuilder();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(started.getInputStream(),
                    StandardCharsets.UTF_8)); Writer w = new OutputStreamWriter(started.getOutputStream(),
                    StandardCharsets.UTF_8)) {
                for (String line; (line = r.readLine()) != null;) {
                    out.append(line).append('\n');
                    if (line.startsWith("step ")) {
                        onStep.accept(line.substring(5));
                        w.write('\n');
                        w.flush();
                    }
                }
            }
            if (!started.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                throw new AssertionError(command + " timed out; stderr:\n" + Files.readString(err));
            }
            return new Result(started.exitValue(), out.toString(), Files.readString(err));
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } finally {
            if (p != null && p.isAlive()) {
                p.destroyForcibly();
            }
        }
    }

    /** The service's image-cache counters, as {@code vgpu-ctl status} prints them. */
    record ImageStats(long images, long bytes, long uploads, long uploadBytes, long hits, long misses) {
        ImageStats since(ImageStats before) {
            return new ImageStats(images - before.images, bytes - before.bytes, uploads - before.uploads,
                    uploadBytes - before.uploadBytes, hits - before.hits, misses - before.misses);
        }
    }

    private static final Pattern IMAGE_STATS = Pattern.compile("(?m)^image cache: (\\d+) images \\((\\d+) bytes\\), "
            + "(\\d+) uploads \\((\\d+) bytes\\), loads by hash: (\\d+) hit, (\\d+) missed$");

    ImageStats imageStats() {
        Result r = ctl("status");
        assertEquals(r.toString(), 0, r.exit);
        Matcher m = IMAGE_STATS.matcher(r.out);
        assertTrue("no image cache line in\n" + r.out, m.find());
        long[] v = new long[6];
        for (int i = 0; i < 6; i++) {
            v[i] = Long.parseLong(m.group(i + 1));
        }
        return new ImageStats(v[0], v[1], v[2], v[3], v[4], v[5]);
    }

    Result ctl(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(DIST.resolve("lib/vgpu-ctl").toString());
        cmd.addAll(List.of(args));
        return exec(cmd, Map.of(), 30);
    }

    /**
     * The columns of process {@code pid}'s line of `vgpu sessions` (session id, pid, uid, name,
     * backend, ...); null when it has none.
     */
    String[] sessionOf(String pid) {
        for (String line : ctl("sessions").out.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 4 && f[1].equals(pid)) {
                return f;
            }
        }
        return null;
    }

    /** The backend process {@code pid}'s session is on, from `vgpu sessions`; null when it has none. */
    String backendOf(String pid) {
        String[] f = sessionOf(pid);
        return f == null ? null : f[4];
    }

    /**
     * Backend {@code id}'s line of `vgpu backends` without the router's mark in front ("* " where new
     * sessions go, else two blanks); empty when there is none.
     */
    Optional<String> backendLine(String id) {
        Result r = ctl("backends");
        assertEquals(r.toString(), 0, r.exit);
        return r.out.lines().map(l -> l.replaceFirst("^[* ] ", "")).filter(l -> l.startsWith(id + " ")).findFirst();
    }
}
