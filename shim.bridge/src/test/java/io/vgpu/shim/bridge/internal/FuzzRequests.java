package io.vgpu.shim.bridge.internal;

import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;

/**
 * Request frames built in a receive buffer and run through a {@link Dispatcher}, exactly as a
 * {@link Connection} runs a frame whose header passed its checks: the payload is
 * {@code [p, p + len)} of the buffer, the reply is built in the channel's reply buffer at
 * {@link Wire#HEADER}. The channel is only used for its reply buffer.
 */
final class FuzzRequests {
    final FrameChannel io;
    final ByteBuffer q;
    private final MemoryQuotas quotas;
    private Dispatcher dispatcher;
    private int seq;

    FuzzRequests(FrameChannel io, int capacity, MemoryQuotas quotas) {
        this.io = io;
        this.q = Frame.allocate(capacity);
        this.quotas = quotas;
    }

    FuzzRequests bind(SessionManager manager, Session session, SharedMemory shm) {
        dispatcher = new Dispatcher(manager, session, io, quotas);
        dispatcher.shm(shm);
        return this;
    }

    /** Writes the header of a frame at {@code at} and returns the offset of its payload. */
    int begin(int op, int at, int length) {
        Frame.putRequestHeader(q, at, length, op, 0, ++seq);
        return at + Wire.HEADER;
    }

    /** Runs the frame that {@link #begin} started at {@code at}. */
    int run(int op, int at, int length) {
        return dispatcher.execute(op, q, at + Wire.HEADER, length);
    }

    /** The reply buffer; its payload starts at {@link Wire#HEADER}. */
    ByteBuffer reply() {
        return io.out();
    }

    int replyLength() {
        return dispatcher.replyLength();
    }

    long replyU64(int field) {
        return io.out().getLong(Wire.HEADER + field);
    }

    int replyI32(int field) {
        return io.out().getInt(Wire.HEADER + field);
    }

    // ------------------------------------------------------------------ well-formed requests

    int call(int op, long... u64s) {
        int p = begin(op, 0, 8 * u64s.length);
        for (int i = 0; i < u64s.length; i++) {
            q.putLong(p + 8 * i, u64s[i]);
        }
        return run(op, 0, 8 * u64s.length);
    }

    int ctxCreate(int device) {
        int p = begin(Wire.CTX_CREATE, 0, Wire.CtxCreate.REQ_FIXED);
        q.putInt(p + Wire.CtxCreate.REQ_DEVICE, device).putInt(p + Wire.CtxCreate.REQ_FLAGS, 0);
        return run(Wire.CTX_CREATE, 0, Wire.CtxCreate.REQ_FIXED);
    }

    int tail(int op, long handle, byte[] tail) {
        int p = begin(op, 0, 8 + tail.length);
        q.putLong(p, handle).put(p + 8, tail);
        return run(op, 0, 8 + tail.length);
    }

    int memcpyHtoD(long ctx, long dst, byte[] data) {
        int len = Wire.MemcpyHtod.REQ_FIXED + data.length;
        int p = begin(Wire.MEMCPY_HTOD, 0, len);
        q.putLong(p + Wire.MemcpyHtod.REQ_CTX, ctx).putLong(p + Wire.MemcpyHtod.REQ_DST, dst)
                .putLong(p + Wire.MemcpyHtod.REQ_STREAM, 0).put(p + Wire.MemcpyHtod.REQ_DATA, data);
        return run(Wire.MEMCPY_HTOD, 0, len);
    }

    int memset(long ctx, long dst, int value, int elementSize, long count) {
        int p = begin(Wire.MEMSET, 0, Wire.Memset.REQ_FIXED);
        q.putLong(p + Wire.Memset.REQ_CTX, ctx).putLong(p + Wire.Memset.REQ_DST, dst).putLong(p + Wire.Memset.REQ_COUNT, count)
                .putLong(p + Wire.Memset.REQ_STREAM, 0).putInt(p + Wire.Memset.REQ_VALUE, value)
                .putInt(p + Wire.Memset.REQ_ELEMENT_SIZE, elementSize);
        return run(Wire.MEMSET, 0, Wire.Memset.REQ_FIXED);
    }

    int streamCreate(long ctx) {
        int p = begin(Wire.STREAM_CREATE, 0, Wire.StreamCreate.REQ_FIXED);
        q.putLong(p + Wire.StreamCreate.REQ_CTX, ctx).putInt(p + Wire.StreamCreate.REQ_FLAGS, 0)
                .putInt(p + Wire.StreamCreate.REQ_PRIORITY, 0);
        return run(Wire.STREAM_CREATE, 0, Wire.StreamCreate.REQ_FIXED);
    }

    int eventCreate(long ctx) {
        int p = begin(Wire.EVENT_CREATE, 0, Wire.EventCreate.REQ_FIXED);
        q.putLong(p + Wire.EventCreate.REQ_CTX, ctx).putInt(p + Wire.EventCreate.REQ_FLAGS, 0)
                .putInt(p + Wire.EventCreate.REQ_PAD, 0);
        return run(Wire.EVENT_CREATE, 0, Wire.EventCreate.REQ_FIXED);
    }

    int memCreate(long size, int device) {
        int p = begin(Wire.MEM_CREATE, 0, Wire.MemCreate.REQ_FIXED);
        q.putLong(p + Wire.MemCreate.REQ_SIZE, size).putInt(p + Wire.MemCreate.REQ_DEVICE, device)
                .putInt(p + Wire.MemCreate.REQ_PAD, 0);
        return run(Wire.MEM_CREATE, 0, Wire.MemCreate.REQ_FIXED);
    }

    int functionGetAttribute(long function, int attribute) {
        int p = begin(Wire.FUNCTION_GET_ATTRIBUTE, 0, Wire.FunctionGetAttribute.REQ_FIXED);
        q.putLong(p + Wire.FunctionGetAttribute.REQ_FUNCTION, function)
                .putInt(p + Wire.FunctionGetAttribute.REQ_ATTRIBUTE, attribute)
                .putInt(p + Wire.FunctionGetAttribute.REQ_PAD, 0);
        return run(Wire.FUNCTION_GET_ATTRIBUTE, 0, Wire.FunctionGetAttribute.REQ_FIXED);
    }

    int launch(long function, int grid, int block, byte[] params) {
        int len = Wire.Launch.REQ_FIXED + params.length;
        int p = begin(Wire.LAUNCH, 0, len);
        q.putLong(p + Wire.Launch.REQ_FUNCTION, function).putLong(p + Wire.Launch.REQ_STREAM, 0)
                .putInt(p + Wire.Launch.REQ_GRID_X, grid).putInt(p + Wire.Launch.REQ_GRID_Y, 1)
                .putInt(p + Wire.Launch.REQ_GRID_Z, 1).putInt(p + Wire.Launch.REQ_BLOCK_X, block)
                .putInt(p + Wire.Launch.REQ_BLOCK_Y, 1).putInt(p + Wire.Launch.REQ_BLOCK_Z, 1)
                .putInt(p + Wire.Launch.REQ_SHARED_MEM, 0).putInt(p + Wire.Launch.REQ_PAD, 0)
                .put(p + Wire.Launch.REQ_PARAMS, params);
        return run(Wire.LAUNCH, 0, len);
    }

    /** MEMCPY_DTOH; on success the bytes are in {@link #reply()} from {@link Wire#HEADER}. */
    int memcpyDtoH(long ctx, long src, long size) {
        int p = begin(Wire.MEMCPY_DTOH, 0, Wire.MemcpyDtoh.REQ_FIXED);
        q.putLong(p + Wire.MemcpyDtoh.REQ_CTX, ctx).putLong(p + Wire.MemcpyDtoh.REQ_SRC, src)
                .putLong(p + Wire.MemcpyDtoh.REQ_STREAM, 0).putLong(p + Wire.MemcpyDtoh.REQ_SIZE, size);
        return run(Wire.MEMCPY_DTOH, 0, Wire.MemcpyDtoh.REQ_FIXED);
    }
}
