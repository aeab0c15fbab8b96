package io.vgpu.itests;

import io.vgpu.backend.remote.Pki;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;

/** Keys for a host and its guests (keytool), and the listener configuration that serves them. */
final class RemoteHosts {
    final Path dir;
    final int port;
    /** Where the host listens and the guests connect (loopback unless a test has a network of its own). */
    String address = "127.0.0.1";

    RemoteHosts(String... guests) throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "vgpu-pki-");
        Pki.identity(dir, "host", null, 30);
        Files.createDirectories(dir.resolve("peers"));
        for (String g : guests) {
            Files.copy(Pki.identity(dir, g, null, 30), dir.resolve("peers").resolve(g + ".crt"));
        }
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
    }

    String listenerCfg() {
        return "address = " + address + "\nport = " + port + "\nbackend = mock\nidentity = " + dir.resolve("host.p12")
                + "\nidentity.password.file = " + dir.resolve("host.pass") + "\ntrust = " + dir.resolve("peers") + "\n";
    }

    String remoteCfg(String backendId, String guest) {
        return "backend.id = " + backendId + "\naddress = " + address + "\nport = " + port + "\nidentity = " + dir.resolve(guest + ".p12")
                + "\nidentity.password.file = " + dir.resolve(guest + ".pass") + "\ntrust = " + dir.resolve("host.crt")
                + "\nconnect.wait.ms = 8000\n";
    }

    /**
     * A host distribution (not started yet) whose listener serves its mock, named {@code gpuName} so
     * that a guest can tell it from its own, plus {@code listenerExtra} lines of listener configuration.
     */
    ServiceFixture host(String gpuName, String listenerExtra) {
        return new ServiceFixture().withConf("io.vgpu.remote.listener.cfg", listenerCfg() + listenerExtra)
                .withConf("io.vgpu.backend.mock.cfg", "name = " + gpuName + "\n");
    }

    /**
     * A guest distribution (not started yet) whose router uses the first available of
     * {@code preference}, this host being gpu1 there; it counts as started once gpu1 is available.
     */
    ServiceFixture guestPreferring(String guest, String preference) {
        return new ServiceFixture().withConf("io.vgpu.backend.remote.host-gpu1.cfg", remoteCfg("gpu1", guest))
                .withConf("io.vgpu.router.cfg", "# gpu1 is the GPU host\nbackend = " + preference + "\n")
                .readyWhenStatusContains("backend: gpu1 (available)");
    }

    void delete() throws IOException {
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
