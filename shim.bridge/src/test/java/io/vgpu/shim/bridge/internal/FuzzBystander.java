package io.vgpu.shim.bridge.internal;

import io.vgpu.api.CuResult;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A well-behaved second session that lives through the whole fuzzing run: it holds a context,
 * memory with a secret pattern, a VMM mapping, a module with a global, a stream and an event, all
 * of which the fuzzed session is offered as targets. After every input {@link #check} proves its
 * data intact and every handle still working, with requests through its own dispatcher.
 */
final class FuzzBystander {
    /** 16 bytes, not periodic in any shorter unit, that fill the secret parts. */
    static final byte[] MARKER = "vgpu:Bystander#7".getBytes(StandardCharsets.US_ASCII);
    static final int SIZE = 64 << 10;
    static final int SECRET = 32 << 10;
    static final int SCRATCH = SECRET;
    static final long VMM_SIZE = 2L << 20;
    static final int VMM_SECRET = 4096;

    /**
     * Kernels for both sessions: {@code fill} writes {@code v} to {@code p[0..n)} (one thread per
     * element, so its work is bounded by the grid), {@code nothing} returns, {@code counter} is a
     * global the fuzzed session must not reach in the bystander's module.
     */
    static final String FILL_PTX = ".version 8.5\n.target sm_90\n.address_size 64\n"
            + ".visible .entry fill(.param .u64 p, .param .u32 n, .param .u32 v)\n{\n"
            + " .reg .pred %p<2>;\n .reg .b32 %r<6>;\n .reg .b64 %rd<5>;\n"
            + " ld.param.u64 %rd1, [p];\n ld.param.u32 %r1, [n];\n ld.param.u32 %r2, [v];\n"
            + " mov.u32 %r3, %ctaid.x;\n mov.u32 %r4, %ntid.x;\n mov.u32 %r5, %tid.x;\n"
            + " mad.lo.s32 %r3, %r3, %r4, %r5;\n setp.ge.u32 %p1, %r3, %r1;\n @%p1 bra DONE;\n"
            + " cvta.to.global.u64 %rd2, %rd1;\n mul.wide.u32 %rd3, %r3, 4;\n add.s64 %rd4, %rd2, %rd3;\n"
            + " st.global.u32 [%rd4], %r2;\nDONE:\n ret;\n}\n"
            + ".visible .entry nothing()\n{\n ret;\n}\n"
            + ".visible .global .align 4 .u32 counter = 7;\n";

    final Session session;
    private final FuzzRequests rq;
    final long ctx;
    final long ptr;
    final long stream;
    final long event;
    final long module;
    final long fill;
    final long nothing;
    final long counter;
    final long vmmAddress;
    final long vmmHandle;
    private final long memoryUsed;
    private final byte[] secret = new byte[SECRET];

    FuzzBystander(SessionManager manager, FrameChannel io, MemoryQuotas quotas) {
        ClientInfo client = new ClientInfo();
        client.pid = (int) ProcessHandle.current().pid();
        client.processName = "fuzz-bystander";
        client.transport = "fuzz";
        session = manager.open(client);
        rq = new FuzzRequests(io, 1 << 20, quotas).bind(manager, session, null);
        for (int i = 0; i < SECRET; i++) {
            secret[i] = MARKER[i % MARKER.length];
        }
        ctx = handle(rq.ctxCreate(0), Wire.CtxCreate.REP_CTX);
        ptr = handle(rq.call(Wire.MEM_ALLOC, ctx, SIZE), Wire.MemAlloc.REP_PTR);
        ok(rq.memcpyHtoD(ctx, ptr, secret));
        stream = handle(rq.streamCreate(ctx), Wire.StreamCreate.REP_STREAM);
        event = handle(rq.eventCreate(ctx), Wire.EventCreate.REP_EVENT);
        module = handle(rq.tail(Wire.MODULE_LOAD, ctx, FILL_PTX.getBytes(StandardCharsets.UTF_8)), Wire.ModuleLoad.REP_MODULE);
        fill = handle(rq.tail(Wire.FUNCTION_GET, module, "fill".getBytes(StandardCharsets.UTF_8)), Wire.FunctionGet.REP_FUNCTION);
        nothing = handle(rq.tail(Wire.FUNCTION_GET, module, "nothing".getBytes(StandardCharsets.UTF_8)),
                Wire.FunctionGet.REP_FUNCTION);
        counter = handle(rq.tail(Wire.GLOBAL_GET, module, "counter".getBytes(StandardCharsets.UTF_8)), Wire.GlobalGet.REP_PTR);
        vmmAddress = handle(rq.call(Wire.MEM_ADDRESS_RESERVE, VMM_SIZE, 0, 0), Wire.MemAddressReserve.REP_PTR);
        vmmHandle = handle(rq.memCreate(VMM_SIZE, 0), Wire.MemCreate.REP_HANDLE);
        ok(rq.call(Wire.MEM_MAP, vmmAddress, VMM_SIZE, 0, vmmHandle));
        ok(rq.memcpyHtoD(ctx, vmmAddress, java.util.Arrays.copyOf(secret, VMM_SECRET)));
        memoryUsed = session.info().memoryUsed;
    }

    /** Regions the fuzzed session is offered as targets: start, size. */
    long[][] regions() {
        return new long[][] {{ptr, SIZE}, {vmmAddress, VMM_SIZE}, {counter, 4}};
    }

    long[] handles() {
        return new long[] {ctx, stream, event, module, fill, nothing, vmmHandle};
    }

    private long handle(int rc, int field) {
        ok(rc);
        return rq.replyU64(field);
    }

    private static void ok(int rc) {
        if (rc != CuResult.SUCCESS) {
            throw new AssertionError("the bystander's setup failed: " + CuResult.name(rc));
        }
    }

    /**
     * Proves the bystander unaffected after input {@code n}: its secrets and its global read back
     * unchanged, it can still write and read its memory, and its handles still work. A kernel
     * launch is part of it every 64 inputs.
     */
    void check(long n) {
        expect("read its secret", rq.memcpyDtoH(ctx, ptr, SECRET));
        compare("its secret", 0, SECRET);
        expect("read its VMM mapping", rq.memcpyDtoH(ctx, vmmAddress, VMM_SECRET));
        compare("its VMM mapping", 0, VMM_SECRET);
        expect("read its global", rq.memcpyDtoH(ctx, counter, 4));
        if (rq.reply().getInt(Wire.HEADER) != 7) {
            throw new AssertionError("bystander: its global 'counter' is " + rq.reply().getInt(Wire.HEADER) + ", not 7");
        }
        int value = (int) (n * 0x9E3779B1L);
        expect("memset its scratch", rq.memset(ctx, ptr + SCRATCH, value, 4, 1024));
        expect("read its scratch", rq.memcpyDtoH(ctx, ptr + SCRATCH, 4096));
        words("its scratch after a memset", value, 1024);
        if (n % 64 == 0) {
            int v = ~value;
            ByteBuffer params = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            params.putLong(0, ptr + SCRATCH).putInt(8, 256).putInt(12, v);
            expect("launch fill", rq.launch(fill, 1, 256, params.array()));
            expect("launch nothing", rq.launch(nothing, 1, 32, new byte[0]));
            expect("synchronize", rq.call(Wire.CTX_SYNCHRONIZE, ctx));
            expect("read what fill wrote", rq.memcpyDtoH(ctx, ptr + SCRATCH, 1024));
            words("its scratch after a kernel", v, 256);
        }
        expect("query its stream", rq.call(Wire.STREAM_QUERY, stream));
        expect("record its event", rq.call(Wire.EVENT_RECORD, event, stream));
        expect("query its event", rq.call(Wire.EVENT_QUERY, event));
        expect("ask its function", rq.functionGetAttribute(fill, 0));
        expect("look its allocation up", rq.call(Wire.MEM_GET_ADDRESS_RANGE, ptr + 5));
        if (rq.replyU64(Wire.MemGetAddressRange.REP_BASE) != ptr || rq.replyU64(Wire.MemGetAddressRange.REP_SIZE) != SIZE) {
            throw new AssertionError("bystander: its allocation is now " + Long.toHexString(rq.replyU64(0)) + "+" + rq.replyU64(8));
        }
        long used = session.info().memoryUsed;
        if (used != memoryUsed) {
            throw new AssertionError("bystander: it holds " + used + " bytes, not " + memoryUsed);
        }
    }

    private static void expect(String what, int rc) {
        if (rc != CuResult.SUCCESS) {
            throw new AssertionError("bystander: " + what + " failed with " + CuResult.name(rc));
        }
    }

    private void compare(String what, int from, int length) {
        ByteBuffer r = rq.reply();
        for (int i = 0; i < length; i++) {
            if (r.get(Wire.HEADER + i) != secret[from + i]) {
                throw new AssertionError("bystander: " + what + " changed at byte " + i);
            }
        }
    }

    private void words(String what, int value, int count) {
        ByteBuffer r = rq.reply();
        for (int i = 0; i < count; i++) {
            if (r.getInt(Wire.HEADER + 4 * i) != value) {
                throw new AssertionError("bystander: " + what + ": word " + i + " is " + r.getInt(Wire.HEADER + 4 * i));
            }
        }
    }

    /** True when {@code b[from, to)} holds the bystander's secret marker anywhere. */
    static boolean containsMarker(ByteBuffer b, int from, int to) {
        long head = ByteBuffer.wrap(MARKER).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        long tail = ByteBuffer.wrap(MARKER).order(ByteOrder.LITTLE_ENDIAN).getLong(8);
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i + 16 <= to; i++) {
            if (le.getLong(i) == head && le.getLong(i + 8) == tail) {
                return true;
            }
        }
        return false;
    }

    void close() {
        session.close();
    }
}
