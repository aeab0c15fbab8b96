package io.vgpu.backend.remote;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Keys and self-signed certificates made with the JDK's keytool, as {@code vgpu remote init} makes them. */
public final class Pki {
    private Pki() {}

    static void keytool(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("keytool failed: " + cmd + "\n" + out);
        }
    }

    /**
     * Creates {@code dir/<name>.p12}, {@code dir/<name>.pass} and {@code dir/<name>.crt}; {@code startDate}
     * null for now (keytool's -startdate syntax otherwise, e.g. "-10d" with validity 1 for an expired one).
     */
    public static Path identity(Path dir, String name, String startDate, int validityDays) throws Exception {
        Files.createDirectories(dir);
        Path p12 = dir.resolve(name + ".p12");
        Path pass = dir.resolve(name + ".pass");
        Path crt = dir.resolve(name + ".crt");
        String pw = "pw-" + name + "-" + System.nanoTime();
        Files.writeString(pass, pw + "\n");
        List<String> args = new ArrayList<>(List.of("-genkeypair", "-alias", "vgpu", "-keyalg", "EC", "-groupname", "secp256r1",
                "-sigalg", "SHA256withECDSA", "-dname", "CN=" + name, "-validity", Integer.toString(validityDays), "-storetype",
                "PKCS12", "-keystore", p12.toString(), "-storepass", pw, "-keypass", pw));
        if (startDate != null) {
            args.add("-startdate");
            args.add(startDate);
        }
        keytool(args.toArray(new String[0]));
        keytool("-exportcert", "-rfc", "-alias", "vgpu", "-keystore", p12.toString(), "-storepass", pw, "-file", crt.toString());
        return crt;
    }

    /**
     * A listener configuration on {@code address}, any free port, serving with identity
     * {@code dir/<name>.p12} and trusting the certificates in {@code trust}; mutable, for tests to add to.
     */
    public static Map<String, Object> listenerConfig(Path dir, String name, String address, Path trust) {
        Map<String, Object> c = new HashMap<>();
        c.put("address", address);
        c.put("port", "0");
        c.put("identity", dir.resolve(name + ".p12").toString());
        c.put("identity.password.file", dir.resolve(name + ".pass").toString());
        c.put("trust", trust.toString());
        return c;
    }
}
