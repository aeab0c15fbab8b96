package io.vgpu.shim.bridge.internal;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vgpu.api.CuResult;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz target 2: the {@link Dispatcher} on structurally valid frames whose fields are fuzzed.
 *
 * <p>Each input is a script for one fresh session: up to 24 requests, each a real frame (header
 * and payload at the spec's offsets, somewhere in the receive buffer) of any op the dispatcher
 * serves, with every field drawn from what matters for it: handles this session got (live, stale
 * or of the wrong kind), the bystander's handles, addresses inside, at the edges of and outside
 * this session's and the bystander's allocations, sizes and counts at every boundary, shared-memory
 * offsets around the data area, module images (valid PTX, fuzzed PTX, fuzzed fatbin and ELF
 * bytes), kernel names, parameter buffers and launch shapes. A valid prelude (context, memory,
 * module, function, stream, event) is run first when the input asks for it, so deep states are
 * reached at once.
 *
 * <p>Every request must return from the dispatcher (no exception) with a CUresult a client can act
 * on; a failed request's reply must be all zero; a successful read must never show the
 * bystander's secret. After the input the session is closed as a connection closes it, and
 * {@link FuzzRig#afterInput} checks that nothing leaked and the bystander is intact.
 */
class DispatcherFuzzTest {
    private static final int SHM_DATA = 256 << 10;
    private static final byte[] FILL = FuzzBystander.FILL_PTX.getBytes(StandardCharsets.UTF_8);
    private static final byte[] GLOBALS = (".version 8.5\n.target sm_90\n.address_size 64\n"
            + ".visible .global .align 8 .b8 buf[65536];\n"
            + ".visible .global .align 4 .u32 flag = 1;\n"
            + ".visible .entry touch(.param .u64 p)\n{\n .reg .b64 %rd<3>;\n .reg .b32 %r<2>;\n"
            + " ld.param.u64 %rd1, [p];\n cvta.to.global.u64 %rd2, %rd1;\n ld.global.u32 %r1, [%rd2];\n"
            + " st.global.u32 [%rd2], %r1;\n ret;\n}\n").getBytes(StandardCharsets.UTF_8);
    private static final byte[][] IMAGES = {FILL, GLOBALS};
    private static final byte[][] HASHES = {sha256(FILL), sha256(GLOBALS)};
    private static final String[] NAMES = {"fill", "nothing", "counter", "buf", "flag", "touch", ""};
    private static final int[] OPS = Arrays.stream(Wire.MESSAGES)
            // What a Connection hands the dispatcher: every op the bridge knows but its own HELLO and BATCH.
            .filter(m -> !m.reply() && !m.name().startsWith("record.") && Ops.isKnown(m.op()) && m.op() != Wire.HELLO
                    && m.op() != Wire.BATCH
                    // Management ops added after the corpus was made, which a Connection refuses to
                    // CUDA clients: left out so that the committed inputs keep meaning the same scripts.
                    && m.op() != Wire.SESSION_MIGRATE && m.op() != Wire.MIGRATION_LOG)
            .mapToInt(Wire.Message::op).toArray();
    private static final Wire.Message[] REQUEST = new Wire.Message[1 << 16];

    static {
        for (Wire.Message m : Wire.MESSAGES) {
            if (!m.reply() && !m.name().startsWith("record.")) {
                REQUEST[m.op()] = m;
            }
        }
    }

    private static final long MIB2 = 2L << 20;
    private static final long[] SIZES = {0, 1, 2, 3, 4, 7, 8, 15, 16, 255, 256, 511, 512, 513, 4095, 4096, 4097, 65535, 65536,
        65537, MIB2 - 1, MIB2, MIB2 + 1, 2 * MIB2, 16L << 20, 32L << 20, (32L << 20) + 1, 64L << 20, (64L << 20) + 1, 1L << 32,
        1L << 40, 1L << 44, Long.MAX_VALUE, Long.MAX_VALUE - 1, Long.MAX_VALUE - MIB2 + 1, Long.MIN_VALUE, -1, -2, -4096, -MIB2};
    private static final long WINDOW = 0x2000_0000_0000L;
    private static final long[] ADDRESSES = {0, 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, WINDOW, WINDOW - 1, WINDOW + (1L << 44),
        WINDOW + (1L << 44) - 4096, WINDOW + (1L << 44) - 1, 1L << 47, 0xdead0000L};
    private static final int[] INTS = {0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 33, 64, 255, 256, 1023, 1024, 1025, 65535, 65536,
        Integer.MAX_VALUE, Integer.MIN_VALUE, -1, -2};

    private static FuzzRig rig;
    private static SharedMemory shm;
    private static FuzzRequests rq;

    @BeforeAll
    static void start() throws Exception {
        rig = new FuzzRig();
        Path file = rig.shmFile(SharedMemory.DATA + SHM_DATA);
        shm = SharedMemory.map(file.toString(), SharedMemory.DATA + SHM_DATA, Files.getOwner(file), 1L << 30);
        rq = new FuzzRequests(rig.fuzzIo, 2 << 20, rig.bridge.quotas());
    }

    @AfterAll
    static void stop() {
        shm.close();
        rig.close();
    }

    @FuzzTest(maxDuration = "30s")
    void fuzzedFields(FuzzedDataProvider data) throws Exception {
        Script script = new Script(data);
        try {
            rig.bounded("the dispatcher script", script::run);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\nscript so far:\n" + script.trace, e.getCause());
        }
        rig.afterInput("the dispatcher script\n" + script.trace);
    }

    private static byte[] sha256(byte[] b) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(b);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** One input: a session, its requests, and what they returned. */
    private static final class Script {
        private final FuzzedDataProvider data;
        final StringBuilder trace = new StringBuilder();
        private final List<long[]> regions = new ArrayList<>();
        private final List<Long> contexts = new ArrayList<>();
        private final List<Long> modules = new ArrayList<>();
        private final List<Long> functions = new ArrayList<>();
        private final List<Long> streams = new ArrayList<>();
        private final List<Long> events = new ArrayList<>();
        private final List<Long> memory = new ArrayList<>();
        private final List<byte[]> loaded = new ArrayList<>();
        private Session session;

        Script(FuzzedDataProvider data) {
            this.data = data;
        }

        Void run() {
            ClientInfo client = new ClientInfo();
            client.pid = 4242;
            client.processName = "fuzz-dispatcher";
            client.transport = "fuzz";
            session = rig.router.open(client);
            try {
                boolean withShm = data.consumeBoolean();
                rq.bind(rig.router, session, withShm ? shm : null);
                if (data.consumeBoolean()) {
                    prelude();
                }
                int steps = data.consumeInt(1, 24);
                for (int i = 0; i < steps && data.remainingBytes() > 0; i++) {
                    step(data.pickValue(OPS));
                }
                sweep();
            } finally {
                if (!Thread.currentThread().isInterrupted()) {
                    session.close();
                }
            }
            return null;
        }

        private void prelude() {
            int at = 0;
            request(Wire.CTX_CREATE, at, () -> {
                rq.q.putInt(at + Wire.HEADER + Wire.CtxCreate.REQ_DEVICE, 0).putInt(at + Wire.HEADER + Wire.CtxCreate.REQ_FLAGS, 0);
                return Wire.CtxCreate.REQ_FIXED;
            });
            long ctx = contexts.isEmpty() ? 0 : contexts.get(0);
            long size = new long[] {4096, 65536, MIB2}[data.consumeInt(0, 2)];
            request(Wire.MEM_ALLOC, at, () -> {
                rq.q.putLong(at + Wire.HEADER, ctx).putLong(at + Wire.HEADER + 8, size);
                return Wire.MemAlloc.REQ_FIXED;
            });
            request(Wire.MODULE_LOAD, at, () -> {
                rq.q.putLong(at + Wire.HEADER, ctx).put(at + Wire.HEADER + 8, FILL);
                return 8 + FILL.length;
            });
            long module = modules.isEmpty() ? 0 : modules.get(0);
            byte[] fill = "fill".getBytes(StandardCharsets.UTF_8);
            request(Wire.FUNCTION_GET, at, () -> {
                rq.q.putLong(at + Wire.HEADER, module).put(at + Wire.HEADER + 8, fill);
                return 8 + fill.length;
            });
            request(Wire.STREAM_CREATE, at, () -> {
                rq.q.putLong(at + Wire.HEADER, ctx).putLong(at + Wire.HEADER + 8, 0);
                return Wire.StreamCreate.REQ_FIXED;
            });
            request(Wire.EVENT_CREATE, at, () -> {
                rq.q.putLong(at + Wire.HEADER, ctx).putLong(at + Wire.HEADER + 8, 0);
                return Wire.EventCreate.REQ_FIXED;
            });
        }

        private interface Payload {
            int write();
        }

        /** Builds the payload at {@code at}, runs the frame, checks and harvests the reply. */
        private void request(int op, int at, Payload payload) {
            int len = payload.write();
            rq.begin(op, at, len);
            int p = at + Wire.HEADER;
            describe(op, p, len);
            int rc;
            try {
                rc = rq.run(op, at, len);
            } catch (Throwable t) {
                throw new AssertionError(Wire.name(op) + " threw out of the dispatcher: " + t, t);
            }
            trace.append(" -> ").append(CuResult.name(rc)).append('\n');
            if (!FuzzRig.clear(rc)) {
                throw new AssertionError(Wire.name(op) + " answered " + CuResult.name(rc) + ", not a CUresult a client can act on");
            }
            int n = rq.replyLength();
            if (n < 0 || n > Frame.MAX_PAYLOAD || Wire.HEADER + n > rq.reply().capacity()) {
                throw new AssertionError(Wire.name(op) + " built a reply of " + n + " bytes");
            }
            if (rc != CuResult.SUCCESS) {
                for (int i = 0; i < n && i < 4096; i++) {
                    if (rq.reply().get(Wire.HEADER + i) != 0) {
                        throw new AssertionError(Wire.name(op) + " failed with " + CuResult.name(rc)
                                + " but its reply carries data at byte " + i);
                    }
                }
                return;
            }
            harvest(op, p, len, n);
        }

        private void harvest(int op, int p, int len, int n) {
            ByteBuffer q = rq.q;
            switch (op) {
                case Wire.CTX_CREATE:
                    contexts.add(rq.replyU64(Wire.CtxCreate.REP_CTX));
                    break;
                case Wire.MEM_ALLOC:
                    regions.add(new long[] {rq.replyU64(Wire.MemAlloc.REP_PTR), q.getLong(p + Wire.MemAlloc.REQ_SIZE)});
                    break;
                case Wire.MEM_ADDRESS_RESERVE:
                    regions.add(new long[] {rq.replyU64(Wire.MemAddressReserve.REP_PTR), q.getLong(p + Wire.MemAddressReserve.REQ_SIZE)});
                    break;
                case Wire.GLOBAL_GET:
                    regions.add(new long[] {rq.replyU64(Wire.GlobalGet.REP_PTR), rq.replyU64(Wire.GlobalGet.REP_SIZE)});
                    break;
                case Wire.MEM_CREATE:
                    memory.add(rq.replyU64(Wire.MemCreate.REP_HANDLE));
                    break;
                case Wire.MODULE_LOAD:
                    modules.add(rq.replyU64(Wire.ModuleLoad.REP_MODULE));
                    byte[] image = new byte[len - Wire.ModuleLoad.REQ_IMAGE];
                    q.get(p + Wire.ModuleLoad.REQ_IMAGE, image);
                    loaded.add(sha256(image));
                    break;
                case Wire.MODULE_LOAD_CACHED:
                    modules.add(rq.replyU64(Wire.ModuleLoadCached.REP_MODULE));
                    break;
                case Wire.FUNCTION_GET:
                    functions.add(rq.replyU64(Wire.FunctionGet.REP_FUNCTION));
                    break;
                case Wire.STREAM_CREATE:
                    streams.add(rq.replyU64(Wire.StreamCreate.REP_STREAM));
                    break;
                case Wire.EVENT_CREATE:
                    events.add(rq.replyU64(Wire.EventCreate.REP_EVENT));
                    break;
                case Wire.MEMCPY_DTOH:
                    if (FuzzBystander.containsMarker(rq.reply(), Wire.HEADER, Wire.HEADER + n)) {
                        throw new AssertionError("MEMCPY_DTOH returned the bystander's secret");
                    }
                    break;
                case Wire.MEMCPY_DTOH_SHM: {
                    long offset = q.getLong(p + Wire.MemcpyDtohShm.REQ_SHM_OFFSET);
                    long size = q.getLong(p + Wire.MemcpyDtohShm.REQ_SIZE);
                    ByteBuffer region = shm.region(offset, size);
                    if (region != null && FuzzBystander.containsMarker(region, region.position(), region.limit())) {
                        throw new AssertionError("MEMCPY_DTOH_SHM wrote the bystander's secret into shared memory");
                    }
                    break;
                }
                default:
                    break;
            }
        }

        /** Reads back every small region the session holds: none may show the bystander's secret. */
        private void sweep() {
            for (long[] r : regions) {
                if (r[1] > 0 && r[1] <= (1 << 20)) {
                    ByteBuffer dst = ByteBuffer.allocate((int) r[1]);
                    if (session.memcpyDtoH(0, dst, r[0], 0) == CuResult.SUCCESS
                            && FuzzBystander.containsMarker(dst, 0, dst.capacity())) {
                        throw new AssertionError("the fuzzed session's memory at 0x" + Long.toHexString(r[0])
                                + " holds the bystander's secret");
                    }
                }
            }
        }

        // ------------------------------------------------------------------ one request

        private void step(int op) {
            Wire.Message m = REQUEST[op];
            // Frames sit anywhere in the receive buffer, not only at aligned offsets.
            int at = data.consumeInt(0, 64);
            int p = at + Wire.HEADER;
            request(op, at, () -> {
                for (Wire.Field f : m.fields()) {
                    if (!f.type().equals("bytes")) {
                        field(op, f, p + f.offset());
                    }
                }
                int len = m.fixedSize();
                if (m.tail()) {
                    len += tail(op, p + m.fixedSize());
                } else if (data.consumeInt(0, 15) == 0) {
                    // Longer than the fixed part is legal: the dispatcher must ignore the rest.
                    int extra = data.consumeInt(1, 32);
                    for (int i = 0; i < extra; i++) {
                        rq.q.put(p + len + i, (byte) 0xA5);
                    }
                    len += extra;
                }
                return len;
            });
        }

        private void field(int op, Wire.Field f, int at) {
            ByteBuffer q = rq.q;
            String name = f.name();
            switch (f.type()) {
                case "u64":
                    q.putLong(at, u64(op, name));
                    break;
                case "u32":
                case "i32":
                    q.putInt(at, i32(op, name));
                    break;
                case "u16":
                    q.putShort(at, (short) data.consumeInt());
                    break;
                case "u8":
                    byte[] b = name.equals("sha256") ? sha() : data.consumeBytes(f.count());
                    for (int i = 0; i < f.count(); i++) {
                        q.put(at + i, i < b.length ? b[i] : 0);
                    }
                    break;
                default: {
                    // char[N] and whatever the spec adds later: bytes from the input.
                    byte[] raw = data.consumeBytes(f.size());
                    for (int i = 0; i < f.size(); i++) {
                        q.put(at + i, i < raw.length ? raw[i] : 0);
                    }
                }
            }
        }

        private long u64(int op, String name) {
            switch (name) {
                case "ctx":
                    return handle(contexts, 0);
                case "module":
                    return handle(modules, 3);
                case "function":
                    return handle(functions, 4);
                case "stream":
                    return data.consumeInt(0, 2) == 0 ? 0 : handle(streams, 1);
                case "event":
                case "start":
                case "end":
                    return handle(events, 2);
                case "handle":
                    return handle(memory, 6);
                case "ptr":
                case "dst":
                case "src":
                case "hint":
                    return address();
                case "size":
                case "count":
                case "offset":
                case "alignment":
                    return size();
                case "shm_offset":
                    return shmOffset();
                default:
                    return data.consumeLong();
            }
        }

        private int i32(int op, String name) {
            switch (name) {
                case "device":
                    return data.pickValue(new int[] {0, 0, 0, 1, -1, 16, Integer.MIN_VALUE, data.consumeInt()});
                case "element_size":
                    return data.pickValue(new int[] {1, 2, 4, 0, 3, 8, -1, Integer.MIN_VALUE});
                case "grid_x":
                case "grid_y":
                case "grid_z":
                case "block_x":
                case "block_y":
                case "block_z":
                    return data.consumeInt(0, 3) == 0 ? data.consumeInt() : data.pickValue(INTS);
                case "pad":
                    return data.consumeInt(0, 7) == 0 ? data.consumeInt() : 0;
                default:
                    return data.consumeBoolean() ? data.pickValue(INTS) : data.consumeInt();
            }
        }

        /** A handle of this session (live or stale), of another kind, the bystander's, or any number. */
        private long handle(List<Long> own, int bystanderIndex) {
            switch (data.consumeInt(0, 7)) {
                case 0:
                case 1:
                case 2:
                    return own.isEmpty() ? 0 : own.get(data.consumeInt(0, own.size() - 1));
                case 3:
                    return rig.bystander.handles()[bystanderIndex];
                case 4: {
                    List<Long> all = new ArrayList<>();
                    for (List<Long> l : List.of(contexts, modules, functions, streams, events, memory)) {
                        all.addAll(l);
                    }
                    return all.isEmpty() ? data.consumeLong() : all.get(data.consumeInt(0, all.size() - 1));
                }
                case 5:
                    return rig.bystander.handles()[data.consumeInt(0, rig.bystander.handles().length - 1)];
                case 6:
                    return data.pickValue(ADDRESSES);
                default:
                    return data.consumeLong();
            }
        }

        private long address() {
            switch (data.consumeInt(0, 5)) {
                case 0:
                case 1:
                    return regions.isEmpty() ? data.pickValue(ADDRESSES) : within(regions.get(data.consumeInt(0, regions.size() - 1)));
                case 2: {
                    long[][] b = rig.bystander.regions();
                    return within(b[data.consumeInt(0, b.length - 1)]);
                }
                case 3:
                    return data.pickValue(ADDRESSES);
                case 4:
                    return data.consumeLong();
                default:
                    return regions.isEmpty() ? WINDOW : within(regions.get(regions.size() - 1));
            }
        }

        private long within(long[] r) {
            switch (data.consumeInt(0, 5)) {
                case 0:
                    return r[0];
                case 1:
                    return r[0] + r[1];
                case 2:
                    return r[0] + r[1] - 1;
                case 3:
                    return r[0] + data.consumeLong(0, Math.max(0, r[1]));
                case 4:
                    return r[0] + data.consumeInt(-4096, 4096);
                default:
                    return r[0] + r[1] - data.consumeInt(0, 64);
            }
        }

        private long size() {
            switch (data.consumeInt(0, 4)) {
                case 0:
                case 1:
                    return data.pickValue(SIZES);
                case 2:
                    return regions.isEmpty() ? data.pickValue(SIZES) : regions.get(data.consumeInt(0, regions.size() - 1))[1]
                            + data.consumeInt(-2, 2);
                case 3:
                    return data.consumeLong(0, 1 << 17);
                default:
                    return data.consumeLong();
            }
        }

        private long shmOffset() {
            long cap = SharedMemory.DATA + SHM_DATA;
            return data.pickValue(new long[] {0, 8, SharedMemory.DATA - 1, SharedMemory.DATA, SharedMemory.DATA + 1, cap - 1, cap,
                cap + 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, SharedMemory.DATA + data.consumeInt(0, SHM_DATA), data.consumeLong()});
        }

        private byte[] sha() {
            switch (data.consumeInt(0, 3)) {
                case 0:
                    return HASHES[data.consumeInt(0, HASHES.length - 1)];
                case 1:
                    return loaded.isEmpty() ? HASHES[0] : loaded.get(data.consumeInt(0, loaded.size() - 1));
                default:
                    return data.consumeBytes(32);
            }
        }

        /** The variable part of a request; returns its length. */
        private int tail(int op, int at) {
            ByteBuffer q = rq.q;
            byte[] b;
            switch (op) {
                case Wire.MEMCPY_HTOD: {
                    int n = data.consumeBoolean() ? (int) data.pickValue(new long[] {0, 1, 3, 4, 16, 4096, 65536, 65537, 300_000})
                            : data.consumeInt(0, 70_000);
                    int seed = data.consumeInt();
                    for (int i = 0; i < n; i++) {
                        q.put(at + i, (byte) (seed + i * 31));
                    }
                    return n;
                }
                case Wire.MODULE_LOAD:
                    b = image();
                    break;
                case Wire.FUNCTION_GET:
                case Wire.GLOBAL_GET:
                    b = name();
                    break;
                case Wire.LAUNCH:
                    clampLaunch(at - Wire.Launch.REQ_PARAMS);
                    b = params();
                    break;
                default:
                    b = data.consumeBytes(64);
            }
            q.put(at, b);
            return b.length;
        }

        private byte[] image() {
            switch (data.consumeInt(0, 7)) {
                case 0:
                case 1:
                    return FILL;
                case 2:
                    return GLOBALS;
                case 3:
                    // A valid image cut short.
                    byte[] whole = IMAGES[data.consumeInt(0, IMAGES.length - 1)];
                    return Arrays.copyOf(whole, data.consumeInt(0, whole.length));
                case 4:
                    return concat(new byte[] {0x50, (byte) 0xED, 0x55, (byte) 0xBA}, data.consumeBytes(1024));
                case 5:
                    return concat(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1}, data.consumeBytes(1024));
                case 6:
                    return concat(".version 8.5\n.target sm_90\n.address_size 64\n".getBytes(StandardCharsets.UTF_8),
                            data.consumeAsciiString(512).getBytes(StandardCharsets.UTF_8));
                default:
                    return data.consumeBytes(512);
            }
        }

        private byte[] name() {
            String n = data.consumeBoolean() ? NAMES[data.consumeInt(0, NAMES.length - 1)] : data.consumeString(32);
            byte[] b = n.getBytes(StandardCharsets.UTF_8);
            switch (data.consumeInt(0, 3)) {
                case 0:
                    return concat(b, new byte[] {0});
                case 1:
                    return concat(concat(b, new byte[] {0}), "garbage".getBytes(StandardCharsets.UTF_8));
                default:
                    return b;
            }
        }

        private byte[] params() {
            ByteBuffer b = ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            switch (data.consumeInt(0, 3)) {
                case 0:
                case 1:
                    b.putLong(0, address()).putInt(8, data.consumeInt(0, 3) == 0 ? data.consumeInt() : data.consumeInt(0, 8192))
                            .putInt(12, data.consumeInt());
                    return b.array();
                case 2:
                    return new byte[0];
                default:
                    return data.consumeBytes(64);
            }
        }

        /**
         * Keeps legal launches small: a grid the device accepts but of more than 8192 threads is
         * cut to fit (the interpreter would take minutes on a huge one, as it is meant to). Shapes
         * the device refuses are left as they are.
         */
        private static void clampLaunch(int p) {
            ByteBuffer q = rq.q;
            long gx = q.getInt(p + Wire.Launch.REQ_GRID_X);
            long gy = q.getInt(p + Wire.Launch.REQ_GRID_Y);
            long gz = q.getInt(p + Wire.Launch.REQ_GRID_Z);
            long bx = q.getInt(p + Wire.Launch.REQ_BLOCK_X);
            long by = q.getInt(p + Wire.Launch.REQ_BLOCK_Y);
            long bz = q.getInt(p + Wire.Launch.REQ_BLOCK_Z);
            if (gx <= 0 || gy <= 0 || gz <= 0 || bx <= 0 || by <= 0 || bz <= 0 || bx * by * bz > 1024) {
                return;
            }
            if (gx * gy * gz * bx * by * bz > 8192) {
                q.putInt(p + Wire.Launch.REQ_GRID_X, (int) Math.max(1, 8192 / (bx * by * bz)));
                q.putInt(p + Wire.Launch.REQ_GRID_Y, 1);
                q.putInt(p + Wire.Launch.REQ_GRID_Z, 1);
            }
        }

        private static byte[] concat(byte[] a, byte[] b) {
            byte[] out = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, out, a.length, b.length);
            return out;
        }

        private void describe(int op, int p, int len) {
            trace.append(Wire.name(op)).append(" len ").append(len);
            Wire.Message m = REQUEST[op];
            for (Wire.Field f : m.fields()) {
                switch (f.type()) {
                    case "u64":
                        trace.append(' ').append(f.name()).append("=0x").append(Long.toHexString(rq.q.getLong(p + f.offset())));
                        break;
                    case "u32":
                    case "i32":
                        trace.append(' ').append(f.name()).append('=').append(rq.q.getInt(p + f.offset()));
                        break;
                    default:
                        break;
                }
            }
            if (m.tail() && len > m.fixedSize()) {
                trace.append(" +").append(len - m.fixedSize()).append(" tail bytes");
            }
        }
    }
}
