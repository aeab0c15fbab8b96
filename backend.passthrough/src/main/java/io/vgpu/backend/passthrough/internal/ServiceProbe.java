package io.vgpu.backend.passthrough.internal;

import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Asks the vgpu service behind a socket which process it is (SERVICE_ID, as a management client),
 * so a backend about to load vgpu's shim can tell a second service from the one it runs in.
 */
public final class ServiceProbe {
    /** The shim's socket when VGPU_SOCKET is unset (shim.bridge/native, DEFAULT_SOCKET). */
    public static final String DEFAULT_SOCKET = "/run/vgpu/vgpu.sock";
    /** HELLO caps bit CONTROL (docs/PROTOCOL.md): no CUDA session is opened. */
    private static final int CAPS_CONTROL = 0x2;
    private static final long TIMEOUT_MS = 3000;

    /** A service's process: pid and start time in ms since the epoch. */
    public record Identity(long pid, long startedMs) {
        public static Identity self() {
            ProcessHandle me = ProcessHandle.current();
            return new Identity(me.pid(), me.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(0L));
        }

        @Override
        public String toString() {
            return "pid " + pid + " started " + java.time.Instant.ofEpochMilli(startedMs);
        }
    }

    private ServiceProbe() {}

    /** The socket vgpu's shim in this process talks to: what it reads from the environment. */
    public static Path shimSocket() {
        String s = System.getenv("VGPU_SOCKET");
        return Path.of(s != null && !s.isEmpty() ? s : DEFAULT_SOCKET);
    }

    /** The identity of the service at {@code socket}; IOException when it cannot say, within 3 s. */
    public static Identity identify(Path socket) throws IOException {
        CompletableFuture<Identity> f = CompletableFuture.supplyAsync(() -> {
            try {
                return ask(socket);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        try {
            return f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            throw new IOException("no answer from " + socket + " within " + TIMEOUT_MS + " ms");
        } catch (ExecutionException e) {
            Throwable c = e.getCause() instanceof java.io.UncheckedIOException ? e.getCause().getCause() : e.getCause();
            throw c instanceof IOException ? (IOException) c : new IOException(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
    }

    private static Identity ask(Path socket) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer q = Frame.allocate(Wire.HEADER + Wire.Hello.REQ_FIXED);
            Frame.putRequestHeader(q, 0, Wire.Hello.REQ_FIXED, Wire.HELLO, 0, 1);
            int p = Wire.HEADER;
            q.putInt(p + Wire.Hello.REQ_MAGIC, Wire.MAGIC).putShort(p + Wire.Hello.REQ_MAJOR, (short) Wire.MAJOR)
                    .putShort(p + Wire.Hello.REQ_MINOR, (short) Wire.MINOR)
                    .putInt(p + Wire.Hello.REQ_PID, (int) ProcessHandle.current().pid())
                    .putInt(p + Wire.Hello.REQ_CAPS, CAPS_CONTROL);
            Frame.putString(q, p + Wire.Hello.REQ_PROCESS, 64, "vgpu backend.passthrough");
            write(ch, q);
            ByteBuffer hello = read(ch, Wire.HELLO);
            if (Frame.result(hello) != 0) {
                throw new IOException("HELLO answered " + Frame.result(hello));
            }
            int minor = hello.getShort(Wire.HEADER + Wire.Hello.REP_MINOR) & 0xffff;
            if (minor < 3) {
                throw new IOException("it speaks protocol 1." + minor + ", which has no SERVICE_ID (1.3)");
            }
            ByteBuffer id = Frame.allocate(Wire.HEADER);
            Frame.putRequestHeader(id, 0, 0, Wire.SERVICE_ID, 0, 2);
            write(ch, id);
            ByteBuffer r = read(ch, Wire.SERVICE_ID);
            if (Frame.result(r) != 0 || Frame.length(r) < Wire.ServiceId.REP_FIXED) {
                throw new IOException("SERVICE_ID answered " + Frame.result(r));
            }
            return new Identity(r.getInt(Wire.HEADER + Wire.ServiceId.REP_PID) & 0xffffffffL,
                    r.getLong(Wire.HEADER + Wire.ServiceId.REP_STARTED_MS));
        }
    }

    private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
        b.clear();
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** One reply frame of {@code op}, header included, little-endian from index 0. */
    private static ByteBuffer read(SocketChannel ch, int op) throws IOException {
        ByteBuffer h = Frame.allocate(Wire.HEADER);
        fill(ch, h);
        int len = Frame.length(h);
        if (Frame.op(h) != op || len < 0 || len > 4096) {
            throw new IOException("unexpected reply: op " + Frame.op(h) + ", " + len + " bytes");
        }
        ByteBuffer all = Frame.allocate(Wire.HEADER + len);
        h.flip();
        all.put(h);
        fill(ch, all);
        return all;
    }

    private static void fill(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("the service closed the connection");
            }
        }
    }
}
