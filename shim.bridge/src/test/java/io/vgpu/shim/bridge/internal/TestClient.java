package io.vgpu.shim.bridge.internal;

import static org.junit.Assert.assertEquals;

import io.vgpu.api.CuResult;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** A minimal client of the wire protocol, as the C shim speaks it. Every wait has a deadline. */
final class TestClient implements AutoCloseable {
    static final long TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

    record Reply(int op, int seq, int result, ByteBuffer payload) {
        long u64(int offset) {
            return payload.getLong(offset);
        }

        int i32(int offset) {
            return payload.getInt(offset);
        }
    }

    record Hello(int result, int major, int minor, int driverVersion, int status, long session, long windowBase,
            long windowSize, boolean shmOk, int maxFrame) {}

    private final SocketChannel channel;
    private int seq;

    TestClient(Path socket) throws IOException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        channel.configureBlocking(false);
    }

    static ByteBuffer payload(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    static ByteBuffer concat(ByteBuffer fixed, byte[] tail) {
        ByteBuffer b = payload(fixed.capacity() + tail.length);
        b.put(fixed.duplicate().clear()).put(tail).flip();
        return b;
    }

    int nextSeq() {
        return seq + 1;
    }

    Hello hello(int caps, long shmSize, String shmPath, String process) throws IOException {
        return hello(Wire.MAGIC, Wire.MAJOR, caps, shmSize, shmPath, process);
    }

    Hello hello(int magic, int major, int caps, long shmSize, String shmPath, String process) throws IOException {
        return hello(magic, major, caps, shmSize, shmPath, process, (int) ProcessHandle.current().pid());
    }

    /** HELLO as a CUDA client that says it is process {@code pid}; asserts it is accepted. */
    Hello hello(String process, int pid) throws IOException {
        Hello h = hello(Wire.MAGIC, Wire.MAJOR, 0, 0, "", process, pid);
        assertEquals(CuResult.SUCCESS, h.result());
        return h;
    }

    Hello hello(int magic, int major, int caps, long shmSize, String shmPath, String process, int pid) throws IOException {
        ByteBuffer p = payload(Wire.Hello.REQ_FIXED);
        p.putInt(Wire.Hello.REQ_MAGIC, magic)
                .putShort(Wire.Hello.REQ_MAJOR, (short) major)
                .putShort(Wire.Hello.REQ_MINOR, (short) Wire.MINOR)
                .putInt(Wire.Hello.REQ_PID, pid)
                .putInt(Wire.Hello.REQ_CAPS, caps)
                .putLong(Wire.Hello.REQ_SHM_SIZE, shmSize);
        Frame.putString(p, Wire.Hello.REQ_PROCESS, 64, process);
        Frame.putString(p, Wire.Hello.REQ_SHM_PATH, 128, shmPath);
        Reply r = call(Wire.HELLO, p);
        ByteBuffer q = r.payload();
        return new Hello(r.result(), q.getShort(Wire.Hello.REP_MAJOR) & 0xffff, q.getShort(Wire.Hello.REP_MINOR) & 0xffff,
                q.getInt(Wire.Hello.REP_DRIVER_VERSION), q.getInt(Wire.Hello.REP_STATUS), q.getLong(Wire.Hello.REP_SESSION),
                q.getLong(Wire.Hello.REP_WINDOW_BASE), q.getLong(Wire.Hello.REP_WINDOW_SIZE),
                q.getInt(Wire.Hello.REP_SHM_OK) == 1, q.getInt(Wire.Hello.REP_MAX_FRAME));
    }

    /** HELLO as a CUDA client without shared memory; asserts it is accepted. */
    Hello hello(String process) throws IOException {
        Hello h = hello(0, 0, "", process);
        assertEquals(CuResult.SUCCESS, h.result());
        return h;
    }

    int send(int op, int flags, ByteBuffer payload) throws IOException {
        int s = ++seq;
        ByteBuffer frame = ByteBuffer.allocate(Wire.HEADER + payload.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putRequestHeader(frame, 0, payload.remaining(), op, flags, s);
        frame.position(Wire.HEADER);
        frame.put(payload.duplicate());
        frame.flip();
        write(frame);
        return s;
    }

    void write(ByteBuffer b) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT_NANOS;
        while (b.hasRemaining()) {
            if (channel.write(b) == 0) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("write timed out");
                }
                Thread.yield();
            }
        }
    }

    Reply call(int op, ByteBuffer payload) throws IOException {
        int s = send(op, 0, payload);
        Reply r = read();
        assertEquals("reply op", op, r.op());
        assertEquals("reply seq", s, r.seq());
        return r;
    }

    Reply call(int op) throws IOException {
        return call(op, payload(0));
    }

    void post(int op, ByteBuffer payload) throws IOException {
        send(op, Wire.FLAG_ASYNC, payload);
    }

    Reply read() throws IOException {
        ByteBuffer h = readFully(Wire.HEADER);
        ByteBuffer p = readFully(h.getInt(Frame.LENGTH));
        return new Reply(h.getShort(Frame.OP) & 0xffff, h.getInt(Frame.SEQ), h.getInt(Frame.RESULT), p);
    }

    private ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = payload(n);
        long deadline = System.nanoTime() + TIMEOUT_NANOS;
        while (b.hasRemaining()) {
            int r = channel.read(b);
            if (r < 0) {
                throw new EOFException("the service closed the connection");
            }
            if (r == 0) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("read timed out");
                }
                Thread.yield();
            }
        }
        return b.flip().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** True once the service has closed its end (anything it sent before is skipped). */
    boolean closedByService() throws IOException {
        ByteBuffer sink = ByteBuffer.allocate(4096);
        long deadline = System.nanoTime() + TIMEOUT_NANOS;
        while (System.nanoTime() - deadline < 0) {
            try {
                if (channel.read(sink.clear()) < 0) {
                    return true;
                }
            } catch (IOException reset) {
                return true;
            }
            Thread.yield();
        }
        return false;
    }

    // ---------------------------------------------------------------- CUDA helpers

    long ctxCreate() throws IOException {
        ByteBuffer p = payload(Wire.CtxCreate.REQ_FIXED);
        Reply r = call(Wire.CTX_CREATE, p);
        assertEquals(CuResult.SUCCESS, r.result());
        return r.u64(Wire.CtxCreate.REP_CTX);
    }

    long memAlloc(long ctx, long size) throws IOException {
        ByteBuffer p = payload(Wire.MemAlloc.REQ_FIXED);
        p.putLong(Wire.MemAlloc.REQ_CTX, ctx).putLong(Wire.MemAlloc.REQ_SIZE, size);
        Reply r = call(Wire.MEM_ALLOC, p);
        assertEquals(CuResult.SUCCESS, r.result());
        return r.u64(Wire.MemAlloc.REP_PTR);
    }

    static ByteBuffer htod(long ctx, long dst, byte[] data) {
        ByteBuffer p = payload(Wire.MemcpyHtod.REQ_FIXED);
        p.putLong(Wire.MemcpyHtod.REQ_CTX, ctx).putLong(Wire.MemcpyHtod.REQ_DST, dst).putLong(Wire.MemcpyHtod.REQ_STREAM, 0);
        return concat(p, data);
    }

    static ByteBuffer dtoh(long ctx, long src, long size) {
        ByteBuffer p = payload(Wire.MemcpyDtoh.REQ_FIXED);
        p.putLong(Wire.MemcpyDtoh.REQ_CTX, ctx).putLong(Wire.MemcpyDtoh.REQ_SRC, src).putLong(Wire.MemcpyDtoh.REQ_STREAM, 0)
                .putLong(Wire.MemcpyDtoh.REQ_SIZE, size);
        return p;
    }

    static ByteBuffer memset(long ctx, long dst, int value, int elementSize, long count) {
        ByteBuffer p = payload(Wire.Memset.REQ_FIXED);
        p.putLong(Wire.Memset.REQ_CTX, ctx).putLong(Wire.Memset.REQ_DST, dst).putLong(Wire.Memset.REQ_COUNT, count)
                .putLong(Wire.Memset.REQ_STREAM, 0).putInt(Wire.Memset.REQ_VALUE, value)
                .putInt(Wire.Memset.REQ_ELEMENT_SIZE, elementSize);
        return p;
    }

    static ByteBuffer shmCopy(long ctx, long device, long offset, long size) {
        // HTOD_SHM and DTOH_SHM share their layout: ctx, device address, stream, shm_offset, size.
        ByteBuffer p = payload(Wire.MemcpyHtodShm.REQ_FIXED);
        p.putLong(Wire.MemcpyHtodShm.REQ_CTX, ctx).putLong(Wire.MemcpyHtodShm.REQ_DST, device)
                .putLong(Wire.MemcpyHtodShm.REQ_STREAM, 0).putLong(Wire.MemcpyHtodShm.REQ_SHM_OFFSET, offset)
                .putLong(Wire.MemcpyHtodShm.REQ_SIZE, size);
        return p;
    }

    static ByteBuffer u64(long v) {
        ByteBuffer p = payload(8);
        p.putLong(0, v);
        return p;
    }

    static ByteBuffer named(long handle, String name) {
        ByteBuffer p = payload(8);
        p.putLong(0, handle);
        return concat(p, name.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
