package io.vgpu.backend.remote;

import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.backend.remote.internal.Configs;
import io.vgpu.backend.remote.internal.Frames;
import io.vgpu.backend.remote.internal.Handshake;
import io.vgpu.backend.remote.internal.Link;
import io.vgpu.backend.remote.internal.Tls;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * {@code vgpu doctor}'s (and {@code vgpu remote check}'s) look at every GPU host this machine is
 * configured for ({@code conf/io.vgpu.backend.remote.host-*.cfg}), on its own connection, so it
 * works whether the service runs or not: this guest's key and the pinned host certificate (read,
 * valid, not expiring within 30 days), the host reachable (TCP connect, bounded), the TLS 1.3
 * handshake with this guest's identity (the host's certificate and its expiry), and what the host
 * serves (backend, devices). One {@code OK}/{@code WARN}/{@code FAIL}/{@code INFO} line per check,
 * as doctor prints them; exit status 1 when a check failed.
 *
 * <p>Runs outside the service from {@code lib/vgpu-remote-check.jar} with only the api, protocol
 * and this bundle's classes, so nothing it touches may start a logger.
 */
public final class RemoteCheck {
    /** A certificate that expires within this is warned about. */
    static final Duration EXPIRY_WARNING = Duration.ofDays(30);
    private static final Pattern HOST_FILE = Pattern.compile("io\\.vgpu\\.backend\\.remote\\.host[-~].+\\.cfg");

    private final Path conf;
    private final PrintStream out;
    private final Instant now;
    private final int timeoutMs;
    private int fails;
    private int warns;

    RemoteCheck(Path conf, PrintStream out, Instant now, int timeoutMs) {
        this.conf = conf;
        this.out = out;
        this.now = now;
        this.timeoutMs = timeoutMs;
    }

    /** {@code RemoteCheck CONF_DIR [BACKEND_ID ...]}; {@code -Dvgpu.check.timeout.ms} bounds each network step (3000). */
    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: RemoteCheck CONF_DIR [BACKEND_ID ...]");
            System.exit(2);
        }
        RemoteCheck c = new RemoteCheck(Path.of(args[0]), System.out, Instant.now(), Integer.getInteger("vgpu.check.timeout.ms", 3000));
        c.run(List.of(args).subList(1, args.length));
        System.out.flush();
        System.exit(c.fails > 0 ? 1 : 0);
    }

    int fails() {
        return fails;
    }

    int warns() {
        return warns;
    }

    private void verdict(String tag, String line) {
        out.printf("%-4s %s%n", tag, line);
        if (tag.equals("FAIL")) {
            fails++;
        } else if (tag.equals("WARN")) {
            warns++;
        }
    }

    /** Checks the hosts configured under {@link #conf}, or only those whose backend id is in {@code only}. */
    void run(List<String> only) throws IOException {
        List<Path> files = new ArrayList<>();
        if (Files.isDirectory(conf)) {
            try (Stream<Path> s = Files.list(conf)) {
                s.filter(p -> HOST_FILE.matcher(p.getFileName().toString()).matches()).sorted().forEach(files::add);
            }
        }
        List<String> found = new ArrayList<>();
        for (Path f : files) {
            Map<String, String> values = new LinkedHashMap<>();
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(f)) {
                p.load(in);
            }
            p.stringPropertyNames().forEach(k -> values.put(k, p.getProperty(k).trim()));
            RemoteBackend.Config c = Configs.of(RemoteBackend.Config.class, values);
            String id = c.backend_id().isBlank() ? f.getFileName().toString() : c.backend_id();
            if (!only.isEmpty() && !only.contains(id)) {
                continue;
            }
            found.add(id);
            check(id, c);
        }
        for (String id : only) {
            if (!found.contains(id)) {
                verdict("FAIL", "remote " + id + ": no conf/io.vgpu.backend.remote.host-*.cfg has backend.id = " + id
                        + " in " + conf + " (vgpu remote add creates one)");
            }
        }
        if (only.isEmpty() && found.isEmpty()) {
            verdict("INFO", "no remote GPU hosts configured in " + conf + " (vgpu remote add adds one)");
        }
    }

    private Path resolve(String p) {
        return conf.resolve(p);
    }

    private void check(String id, RemoteBackend.Config c) {
        String tag = "remote " + id + " (" + c.address() + ":" + c.port() + "): ";
        if (c.address().isBlank()) {
            verdict("FAIL", "remote " + id + ": no address in its configuration; the backend stays unavailable");
            return;
        }
        // This machine's own material first: it explains a refused handshake better than the handshake does.
        SSLContext ctx = null;
        if (!c.plaintext()) {
            Path identity = resolve(c.identity());
            Path pass = resolve(c.identity_password_file());
            Path trust = resolve(c.trust());
            try {
                validity(tag, "this guest's certificate " + identity.getFileName(), ownCertificate(identity, pass),
                        "run `vgpu remote init --force` here and pair again on the host (`vgpu remote trust`)");
            } catch (IOException | GeneralSecurityException | RuntimeException e) {
                verdict("FAIL", tag + "cannot read this guest's identity " + identity + ": " + why(e)
                        + " (vgpu remote init creates it)");
                return;
            }
            try {
                List<X509Certificate> pins = Tls.load(trust);
                if (pins.isEmpty()) {
                    throw new IOException("no certificate in it");
                }
                for (X509Certificate pin : pins) {
                    validity(tag, "pinned host certificate " + trust.getFileName() + " (CN=" + Tls.commonName(pin) + ")", pin,
                            "the host needs a new identity (`vgpu remote init --force` there) and this guest its certificate "
                                    + "(`vgpu remote add " + id + " ...`)");
                }
                ctx = Tls.context(identity, pass, trust);
            } catch (IOException | GeneralSecurityException | RuntimeException e) {
                verdict("FAIL", tag + "cannot read the pinned host certificate " + trust + ": " + why(e)
                        + " (vgpu remote add pins it)");
                return;
            }
        }
        long t0 = System.nanoTime();
        try (Socket raw = new Socket()) {
            try {
                raw.connect(new InetSocketAddress(c.address(), c.port()), timeoutMs);
            } catch (IOException | RuntimeException e) {
                verdict("FAIL", tag + "host unreachable: no TCP connection within " + timeoutMs + " ms: " + Tls.rootMessage(e)
                        + " (is the host's service running, with `vgpu remote listen`? a firewall?)");
                return;
            }
            verdict("OK", tag + "host reachable (TCP connect in " + Duration.ofNanos(System.nanoTime() - t0).toMillis() + " ms)");
            raw.setSoTimeout(timeoutMs);
            raw.setTcpNoDelay(true);
            Socket s = raw;
            X509Certificate hostCert = null;
            String session = "plaintext";
            if (c.plaintext()) {
                if (!raw.getInetAddress().isLoopbackAddress()) {
                    verdict("FAIL", tag + "plaintext = true is only allowed to a loopback address");
                    return;
                }
            } else {
                try {
                    SSLSocket ssl = Tls.client(ctx, raw, c.address(), c.port());
                    hostCert = (X509Certificate) ssl.getSession().getPeerCertificates()[0];
                    session = ssl.getSession().getProtocol() + ", " + ssl.getSession().getCipherSuite();
                    s = ssl;
                } catch (IOException | RuntimeException e) {
                    verdict("FAIL", tag + "TLS 1.3 handshake failed: " + refusal(e));
                    return;
                }
            }
            Link link = new Link(raw, s, timeoutMs, why -> { });
            Handshake.Served served;
            try {
                served = Handshake.hello(link, c.remote_backend(), Configs.routerWindow(conf));
                link.post(Frames.request(Wire.GOODBYE, 0, false), null, true);
            } catch (IOException | RuntimeException e) {
                // TLS 1.3 tells the client that the server refused its certificate only after the
                // handshake: an alert at the first read, or, when the host has hung up before our
                // first write went out, just a broken connection.
                verdict("FAIL", tag + (hostCert != null && (isAlert(e) || isHangUp(e))
                        ? "TLS 1.3 handshake failed: " + refusal(e) : Tls.rootMessage(e))
                        + (e instanceof Handshake.Refused && e.getMessage().contains("window.base")
                                ? " (in " + conf.resolve("io.vgpu.router.cfg") + "; vgpu remote window BASE SIZE writes them)" : ""));
                return;
            } finally {
                link.kill("check done");
            }
            if (hostCert != null) {
                verdict("OK", tag + "TLS 1.3 handshake with this guest's identity (" + session + ")");
                validity(tag, "host certificate CN=" + Tls.commonName(hostCert) + " (SHA-256 " + Tls.fingerprint(hostCert) + ")",
                        hostCert, "the host needs a new identity (`vgpu remote init --force` there), paired again");
            }
            verdict("OK", tag + "serves backend " + served.backend + " (" + served.description + "): " + devices(served.devices));
            verdict("OK", tag + "this guest's device address window " + Configs.routerWindow(conf) + " accepted by the host ("
                    + conf.resolve("io.vgpu.router.cfg") + ")");
        } catch (IOException e) {
            verdict("FAIL", tag + Tls.rootMessage(e));
        }
    }

    /** A local file's problem: the JDK names only the path of a missing file. */
    private static String why(Throwable e) {
        return e instanceof java.nio.file.NoSuchFileException ? "no file " + e.getMessage() : Tls.rootMessage(e);
    }

    private static String devices(DeviceInfo[] devs) {
        if (devs.length == 0) {
            return "no devices";
        }
        StringBuilder sb = new StringBuilder(devs.length + (devs.length == 1 ? " device: " : " devices: "));
        for (int i = 0; i < devs.length; i++) {
            sb.append(i == 0 ? "" : "; ").append(devs[i].name).append(", ").append(devs[i].totalMemory >> 20).append(" MiB");
        }
        return sb.toString();
    }

    private static final String PAIR = "pair it on the host with `vgpu remote trust` (this guest's conf/remote/identity.crt) "
            + "and restart its listener";

    /**
     * A failed handshake in words: the alert when one arrived; a bare hang-up (the host's alert lost
     * to our next write hitting its closed socket) named as what it almost always is.
     */
    private static String refusal(Throwable e) {
        String m = Tls.rootMessage(e);
        if (isHangUp(e) && !m.contains("alert")) {
            return "the host hung up (" + m + "), as it does when it does not trust this guest's certificate (its log says): " + PAIR;
        }
        return explain(e);
    }

    private static boolean isHangUp(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.net.SocketException || t instanceof java.io.EOFException
                    || "the host closed the connection".equals(t.getMessage())) {
                return true;
            }
        }
        return false;
    }

    private static boolean isAlert(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof javax.net.ssl.SSLException) {
                return true;
            }
        }
        return false;
    }

    /** A handshake failure in words a user can act on. */
    static String explain(Throwable e) {
        String m = Tls.rootMessage(e);
        if (m.contains("expired on") || m.contains("is not valid before")) {
            return m;
        }
        if (m.contains("is not paired with this machine")) {
            return m + ": the host presents a certificate other than the pinned one (`vgpu remote add` its current identity.crt)";
        }
        if (m.contains("bad_certificate") || m.contains("certificate_unknown") || m.contains("certificate_required")
                || m.contains("certificate_expired")) {
            return "the host refused this guest's certificate (" + m + "): " + PAIR;
        }
        if (m.contains("protocol_version") || m.contains("No appropriate protocol")) {
            return m + ": the other end does not speak TLS 1.3";
        }
        return m;
    }

    private static X509Certificate ownCertificate(Path identity, Path pass) throws IOException, GeneralSecurityException {
        char[] password = Files.readString(pass, StandardCharsets.UTF_8).trim().toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(identity)) {
            ks.load(in, password);
        }
        for (String alias : java.util.Collections.list(ks.aliases())) {
            if (ks.getCertificate(alias) instanceof X509Certificate) {
                return (X509Certificate) ks.getCertificate(alias);
            }
        }
        throw new GeneralSecurityException("no certificate in " + identity);
    }

    /** FAIL when expired or not valid yet, WARN within {@link #EXPIRY_WARNING} of expiry, else OK. */
    private void validity(String tag, String what, X509Certificate cert, String remedy) {
        Instant notAfter = cert.getNotAfter().toInstant();
        Instant notBefore = cert.getNotBefore().toInstant();
        if (now.isAfter(notAfter)) {
            verdict("FAIL", tag + what + " expired on " + notAfter + ": " + remedy);
        } else if (now.isBefore(notBefore)) {
            verdict("FAIL", tag + what + " is not valid before " + notBefore + " (is this machine's clock right?)");
        } else {
            long days = Duration.between(now, notAfter).toDays();
            if (Duration.between(now, notAfter).compareTo(EXPIRY_WARNING) <= 0) {
                verdict("WARN", tag + what + " expires in " + days + " days, on " + notAfter + ": " + remedy + " before then");
            } else {
                verdict("OK", tag + what + " valid until " + notAfter + " (" + days + " days)");
            }
        }
    }
}
