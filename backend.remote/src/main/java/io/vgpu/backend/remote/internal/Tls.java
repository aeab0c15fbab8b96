package io.vgpu.backend.remote.internal;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * JDK TLS 1.3 with mutual authentication by pinned certificates: each side holds its own key and
 * self-signed certificate in a PKCS#12 file, and trusts exactly the certificates it was given at
 * pairing (compared by SHA-256 of the DER encoding), within their validity. No CA, no hostname
 * check: the pin is the identity.
 */
public final class Tls {
    private Tls() {}

    public static final String PROTOCOL = "TLSv1.3";

    /** Builds a TLS 1.3 context from a PKCS#12 identity and the pinned certificates in {@code trust}. */
    public static SSLContext context(Path identity, Path passwordFile, Path trust) throws IOException, GeneralSecurityException {
        char[] password = Files.readString(passwordFile, StandardCharsets.UTF_8).trim().toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(identity)) {
            ks.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        SSLContext ctx = SSLContext.getInstance(PROTOCOL);
        ctx.init(kmf.getKeyManagers(), new TrustManager[] {new Pinned(load(trust))}, null);
        return ctx;
    }

    /**
     * The client side over a connected TCP socket: TLS 1.3 only, handshaken (within the socket's
     * read timeout); closing it closes {@code raw}.
     */
    public static SSLSocket client(SSLContext ctx, Socket raw, String host, int port) throws IOException {
        SSLSocket ssl = (SSLSocket) ctx.getSocketFactory().createSocket(raw, host, port, true);
        restrict(ssl);
        ssl.setUseClientMode(true);
        ssl.startHandshake();
        return ssl;
    }

    /** Restricts a socket to TLS 1.3. */
    public static void restrict(SSLSocket s) {
        s.setEnabledProtocols(new String[] {PROTOCOL});
    }

    /** The certificates in a PEM/DER file, or in every {@code *.crt}/{@code *.pem} file of a directory. */
    public static List<X509Certificate> load(Path trust) throws IOException, CertificateException {
        List<Path> files = trustFiles(trust);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<X509Certificate> out = new ArrayList<>();
        for (Path f : files) {
            try (InputStream in = Files.newInputStream(f)) {
                cf.generateCertificates(in).forEach(c -> out.add((X509Certificate) c));
            }
        }
        return out;
    }

    private static List<Path> trustFiles(Path trust) throws IOException {
        List<Path> files = new ArrayList<>();
        if (Files.isDirectory(trust)) {
            try (Stream<Path> s = Files.list(trust)) {
                s.filter(p -> p.toString().endsWith(".crt") || p.toString().endsWith(".pem")).sorted().forEach(files::add);
            }
        } else if (Files.isRegularFile(trust)) {
            files.add(trust);
        } else {
            throw new IOException("trust " + trust + " is neither a certificate file nor a directory of them");
        }
        return files;
    }

    /**
     * Fingerprint -> the name each certificate of {@code trust} is pinned under: its file's name
     * without the extension ({@code vgpu remote trust} writes {@code peers/NAME.crt}).
     */
    public static Map<String, String> pinnedNames(Path trust) throws IOException, CertificateException {
        Map<String, String> out = new java.util.HashMap<>();
        for (Path f : trustFiles(trust)) {
            String name = f.getFileName().toString().replaceFirst("\\.(crt|pem)$", "");
            for (X509Certificate c : load(f)) {
                out.putIfAbsent(fingerprint(c), name);
            }
        }
        return out;
    }

    public static String fingerprint(X509Certificate c) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(c.getEncoded()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The certificate's subject CN, or the whole subject. */
    public static String commonName(X509Certificate c) {
        String dn = c.getSubjectX500Principal().getName();
        for (String part : dn.split(",")) {
            if (part.trim().startsWith("CN=")) {
                return part.trim().substring(3);
            }
        }
        return dn;
    }

    /** Trusts exactly the pinned certificates, while they are valid. */
    static final class Pinned implements X509TrustManager {
        private final Map<String, X509Certificate> pins = new LinkedHashMap<>();

        Pinned(List<X509Certificate> certs) {
            for (X509Certificate c : certs) {
                pins.put(fingerprint(c), c);
            }
        }

        private void check(X509Certificate[] chain) throws CertificateException {
            if (chain == null || chain.length == 0) {
                throw new CertificateException("the peer sent no certificate");
            }
            X509Certificate leaf = chain[0];
            String fp = fingerprint(leaf);
            try {
                leaf.checkValidity();
            } catch (CertificateExpiredException e) {
                throw new CertificateException("certificate of " + commonName(leaf) + " (SHA-256 " + fp + ") expired on "
                        + leaf.getNotAfter().toInstant());
            } catch (CertificateNotYetValidException e) {
                throw new CertificateException("certificate of " + commonName(leaf) + " (SHA-256 " + fp
                        + ") is not valid before " + leaf.getNotBefore().toInstant());
            }
            if (!pins.containsKey(fp)) {
                throw new CertificateException("certificate of " + commonName(leaf) + " (SHA-256 " + fp
                        + ") is not paired with this machine");
            }
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            check(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            check(chain);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            // Empty: the peer presents its one certificate whatever we would name, and we judge it by its pin.
            return new X509Certificate[0];
        }
    }

    /** The innermost message of an exception chain, for one log line. */
    public static String rootMessage(Throwable t) {
        Throwable r = t;
        while (r.getCause() != null && r.getCause() != r) {
            r = r.getCause();
        }
        String m = r.getMessage();
        String outer = t.getMessage();
        if (r == t || outer == null || outer.equals(m)) {
            return String.valueOf(m == null ? r.getClass().getSimpleName() : m);
        }
        return outer + " (" + (m == null ? r.getClass().getSimpleName() : m) + ")";
    }
}
