package io.vgpu.shim.bridge.internal;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vgpu.api.CuResult;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz target 1: the frame decoder on raw bytes. Each input is what one client process sends on
 * its connection: a real {@link Connection} of the {@link BridgeServer} reads it from a real Unix
 * socket ({@link FrameChannel}: headers, lengths, op numbers, flags, inline payloads, BATCH,
 * HELLO), exactly as in the service, while this test writes the bytes, then half-closes, and
 * reads every reply until the service closes its end.
 *
 * <p>The first byte picks how the connection starts (its two low bits): 0, the input is the whole
 * stream, HELLO included; 1, a valid HELLO of a CUDA client comes first; 2, the same with a
 * shared-memory region the rig created; 3, a HELLO of a control client (the CLI). Its bit 2 picks
 * the bridge's read strategy: spinning 50 us before a blocking read (the default), or blocking at
 * once ({@code spin_micros = 0}). Every reply
 * must be well-formed with a CUresult a client can act on, no request may fail inside the service
 * ({@code CUDA_ERROR_UNKNOWN}), the connection must end within the deadline, its shared memory
 * must be unmapped and unlinked, its receive buffer may not outgrow what the client sent, and {@link FuzzRig#afterInput} must find nothing left behind and
 * the bystander intact.
 */
class FrameDecoderFuzzTest {
    /** The shared-memory region of mode 2: the header page and 64 KiB of data. */
    private static final int SHM_SIZE = SharedMemory.DATA + (64 << 10);

    private static FuzzRig rig;
    private static Selector selector;
    private static final ByteBuffer in = ByteBuffer.allocateDirect(256 << 10).order(ByteOrder.LITTLE_ENDIAN);

    @BeforeAll
    static void start() throws IOException {
        rig = new FuzzRig();
        selector = Selector.open();
    }

    @AfterAll
    static void stop() throws IOException {
        selector.close();
        rig.close();
    }

    @FuzzTest(maxDuration = "30s")
    void rawFrames(byte[] input) throws Exception {
        int mode = input.length == 0 ? 0 : input[0] & 3;
        byte[] stream = input.length == 0 ? input : java.util.Arrays.copyOfRange(input, 1, input.length);
        Path shmFile = mode == 2 ? rig.shmFile(SHM_SIZE) : null;
        ByteBuffer out;
        switch (mode) {
            case 1:
                out = concat(hello(0, 0, ""), stream);
                break;
            case 2:
                out = concat(hello(0, SHM_SIZE, shmFile.toString()), stream);
                break;
            case 3:
                out = concat(hello(Connection.CAPS_CONTROL, 0, ""), stream);
                break;
            default:
                out = ByteBuffer.wrap(sanitized(stream));
        }
        try {
            converse(out, mode, input.length > 0 && (input[0] & 4) != 0);
        } finally {
            if (shmFile != null && Files.deleteIfExists(shmFile)) {
                throw new AssertionError("the service did not unlink the shared-memory file it mapped");
            }
        }
        rig.afterInput("the byte stream (mode " + mode + ", " + stream.length + " bytes)");
    }

    /** Runs one connection on the bytes and checks how it ended. */
    private static void converse(ByteBuffer out, int mode, boolean blocking) throws Exception {
        SocketChannel[] pair = rig.pair();
        SocketChannel client = pair[0];
        Connection c = new Connection(blocking ? rig.blockingBridge : rig.bridge, rig.router, pair[1], "unix:fuzz", "vgpu-fuzz-session");
        Future<?> f = rig.submit(() -> {
            c.run();
            return null;
        });
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FuzzRig.INPUT_TIMEOUT_MS);
        Replies replies = new Replies();
        try {
            client.configureBlocking(false);
            SelectionKey key = client.register(selector, SelectionKey.OP_READ | (out.hasRemaining() ? SelectionKey.OP_WRITE : 0));
            boolean writing = true;
            if (!out.hasRemaining()) {
                client.shutdownOutput();
                writing = false;
            }
            boolean eof = false;
            while (!eof) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw rig.hang("the connection on the byte stream");
                }
                selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                selector.selectedKeys().clear();
                if (writing) {
                    try {
                        client.write(out);
                    } catch (IOException closed) {
                        // The service closed first (a protocol violation): what it sent is still readable.
                        out.position(out.limit());
                    }
                    if (!out.hasRemaining()) {
                        writing = false;
                        try {
                            client.shutdownOutput();
                        } catch (IOException closed) {
                            // Same.
                        }
                        key.interestOps(SelectionKey.OP_READ);
                    }
                }
                int n;
                do {
                    in.clear();
                    try {
                        n = client.read(in);
                    } catch (IOException reset) {
                        n = -1;
                    }
                    if (n > 0) {
                        replies.feed(in.flip());
                    }
                } while (n > 0);
                eof = n < 0;
            }
            key.cancel();
            selector.selectNow();
            f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw rig.hang("the connection on the byte stream");
        } finally {
            client.close();
        }
        replies.end();
        // What a client makes the service hold must follow what it sent, not what a header announces.
        FrameChannel io = (FrameChannel) FuzzRig.field(Connection.class, "io").get(c);
        if (io != null && io.inCapacity() > Math.max(FrameChannel.INITIAL_IN, 4L * out.limit())) {
            throw new AssertionError(out.limit() + " bytes made the service grow its receive buffer to " + io.inCapacity());
        }
        int failures = FuzzRig.field(Connection.class, "failures").getInt(c);
        if (failures != 0) {
            throw new AssertionError(failures + " requests failed inside the service (CUDA_ERROR_UNKNOWN)");
        }
        Object shm = FuzzRig.field(Connection.class, "shm").get(c);
        if (shm != null && !FuzzRig.field(SharedMemory.class, "closed").getBoolean(shm)) {
            throw new AssertionError("the connection ended without unmapping its shared memory");
        }
        Object session = FuzzRig.field(Connection.class, "session").get(c);
        if (session != null) {
            SessionInfo info = ((io.vgpu.api.session.Session) session).info();
            if (!"CLOSED".equals(info.status)) {
                throw new AssertionError("the connection ended with its session " + info.status);
            }
        }
    }

    /** Checks the reply stream frame by frame as it arrives. */
    private static final class Replies {
        private final ByteBuffer header = ByteBuffer.allocate(Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN);
        private long skip;
        int count;

        void feed(ByteBuffer b) {
            while (b.hasRemaining()) {
                if (skip > 0) {
                    int n = (int) Math.min(skip, b.remaining());
                    b.position(b.position() + n);
                    skip -= n;
                    continue;
                }
                while (header.hasRemaining() && b.hasRemaining()) {
                    header.put(b.get());
                }
                if (header.hasRemaining()) {
                    return;
                }
                int length = header.getInt(Frame.LENGTH);
                int op = header.getShort(Frame.OP) & 0xffff;
                int result = header.getInt(Frame.RESULT);
                if (length < 0 || length > Frame.MAX_PAYLOAD) {
                    throw new AssertionError("a reply announces " + Integer.toUnsignedString(length) + " bytes");
                }
                if (!Ops.isKnown(op)) {
                    throw new AssertionError("a reply for unknown op " + op);
                }
                if (!FuzzRig.clear(result)) {
                    throw new AssertionError("the reply to " + Wire.name(op) + " is " + CuResult.name(result));
                }
                if ((header.getShort(Frame.FLAGS) & 0xffff) != 0) {
                    throw new AssertionError("the reply to " + Wire.name(op) + " has flags set");
                }
                header.clear();
                skip = length;
                count++;
            }
        }

        void end() {
            if (skip > 0 || header.position() != 0) {
                throw new AssertionError("the service closed the connection inside a reply");
            }
        }
    }

    private static ByteBuffer hello(int caps, long shmSize, String shmPath) {
        ByteBuffer f = ByteBuffer.allocate(Wire.HEADER + Wire.Hello.REQ_FIXED).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(f, 0, Wire.Hello.REQ_FIXED, Wire.HELLO, 0, 1);
        int p = Wire.HEADER;
        f.putInt(p + Wire.Hello.REQ_MAGIC, Wire.MAGIC).putShort(p + Wire.Hello.REQ_MAJOR, (short) Wire.MAJOR)
                .putShort(p + Wire.Hello.REQ_MINOR, (short) Wire.MINOR).putInt(p + Wire.Hello.REQ_PID, 4242)
                .putInt(p + Wire.Hello.REQ_CAPS, caps).putLong(p + Wire.Hello.REQ_SHM_SIZE, shmSize);
        Frame.putString(f, p + Wire.Hello.REQ_PROCESS, 64, "fuzz-frames");
        Frame.putString(f, p + Wire.Hello.REQ_SHM_PATH, 128, shmPath);
        return f;
    }

    private static ByteBuffer concat(ByteBuffer a, byte[] b) {
        ByteBuffer out = ByteBuffer.allocate(a.capacity() + b.length);
        out.put(a.array()).put(b).flip();
        return out;
    }

    /**
     * A stream that starts with its own HELLO may name any file in /dev/shm; so that fuzzing
     * never maps or unlinks a file of another process on this machine, a {@code vgpu-*} name that
     * is not the rig's loses its shared-memory size (every other path still reaches the checks).
     */
    private static byte[] sanitized(byte[] stream) {
        if (stream.length < Wire.HEADER + Wire.Hello.REQ_FIXED) {
            return stream;
        }
        ByteBuffer b = ByteBuffer.wrap(stream).order(ByteOrder.LITTLE_ENDIAN);
        if ((b.getShort(Frame.OP) & 0xffff) != Wire.HELLO) {
            return stream;
        }
        Path file;
        try {
            file = Path.of(Frame.string(b, Wire.HEADER + Wire.Hello.REQ_SHM_PATH, 128)).getFileName();
        } catch (RuntimeException invalid) {
            return stream;
        }
        if (file != null && file.toString().startsWith(SharedMemory.PREFIX) && !file.toString().startsWith(FuzzRig.SHM_PREFIX)) {
            byte[] copy = stream.clone();
            ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putLong(Wire.HEADER + Wire.Hello.REQ_SHM_SIZE, 0);
            return copy;
        }
        return stream;
    }
}
