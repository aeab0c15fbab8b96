package io.vgpu.shim.bridge.internal;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Reads the service's log lines as the fuzz tests run: slf4j-simple writes to {@code System.err}
 * (the pom sets {@code logFile=System.err}, level warn, for the fuzz JVM) and looks the stream up
 * on every line, so replacing {@code System.err} catches them. Expected lines (a protocol
 * violation, a refused HELLO, a kernel the engine cannot run) are dropped; every other WARN or
 * ERROR line is kept as a finding and also passed on. Anything that is not a log line passes
 * through unchanged.
 */
final class FuzzLogTap extends OutputStream {
    private static final Pattern LOG_LINE = Pattern.compile("^\\[[^\\]]*\\] (WARN|ERROR) .*");
    /** What a hostile or broken client legitimately causes. */
    private static final Pattern EXPECTED = Pattern.compile(
            ".* - (protocol violation by .*|refusing .*: it speaks protocol .*|kernel .* cannot run on the simulated GPU: .*)");

    private static FuzzLogTap installed;

    private final PrintStream original;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);
    private final List<String> unexpected = new ArrayList<>();
    private long expected;
    /** True while the lines of an unexpected entry's stack trace follow it. */
    private boolean trace;

    private FuzzLogTap(PrintStream original) {
        this.original = original;
    }

    static synchronized FuzzLogTap install() {
        if (installed == null) {
            installed = new FuzzLogTap(System.err);
            System.setErr(new PrintStream(installed, true, StandardCharsets.UTF_8));
        }
        return installed;
    }

    @Override
    public synchronized void write(int b) {
        if (b == '\n') {
            String s = line.toString(StandardCharsets.UTF_8);
            line.reset();
            if (LOG_LINE.matcher(s).matches()) {
                trace = false;
                if (EXPECTED.matcher(s).matches()) {
                    expected++;
                    return;
                }
                unexpected.add(s);
                trace = true;
            } else if (trace && !unexpected.isEmpty() && unexpected.get(unexpected.size() - 1).length() < 8192) {
                unexpected.set(unexpected.size() - 1, unexpected.get(unexpected.size() - 1) + "\n" + s);
            }
            original.println(s);
        } else {
            line.write(b);
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            write(b[i]);
        }
    }

    /** The unexpected WARN and ERROR lines since the last call. */
    synchronized List<String> drainUnexpected() {
        if (unexpected.isEmpty()) {
            return List.of();
        }
        List<String> out = new ArrayList<>(unexpected);
        unexpected.clear();
        return out;
    }

    synchronized long expectedLines() {
        return expected;
    }
}
