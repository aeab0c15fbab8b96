package io.vgpu.core.internal;

import io.vgpu.api.CuResult;
import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.core.image.ImageFormatException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client's CUDA state. Everything the application holds is a virtual handle or an address
 * from the service-wide {@link AddressSpace}; the backend's own handles stay in here. Calls of one
 * session come from one bridge thread and hold the monitor while they run, however long that is.
 * So nothing anyone else needs is behind it: the management plane reads {@link #info()} from a
 * snapshot published after every change, and {@link #abandon()} only sets flags. Every size and
 * address from the client is checked, overflow-safe, against the session's allocations and the
 * address window before any work; copies and memsets reach the backend in pieces of at most
 * {@link #CHUNK} bytes and stop between pieces once the session is abandoned.
 */
final class SessionImpl implements Session {
    private static final Logger LOG = LoggerFactory.getLogger(SessionImpl.class);

    static final String BOUND = "BOUND";
    static final String NO_BACKEND = "NO_BACKEND";
    static final String BACKEND_LOST = "BACKEND_LOST";
    static final String CLOSED = "CLOSED";
    /** The most a copy or memset asks of the backend at once: bounded work between checks. */
    static final long CHUNK = 64L << 20;

    static final String MIGRATING = "MIGRATING";
    private final java.util.concurrent.locks.ReentrantLock migrationLock = new java.util.concurrent.locks.ReentrantLock();
    /** How many migration records {@link #info()} keeps. */
    private static final int HISTORY = 16;

    // Package-private where Migration reads the session's state: it runs under this monitor.
    final Router router;
    private final long id;
    private final ClientInfo client;
    private final long openedAt = System.currentTimeMillis();
    final HandleTable handles;

    volatile Router.Backend backend;
    /** The transport's say in migrations (memory quotas), or null. */
    volatile io.vgpu.api.session.MigrationGuard guard;
    private volatile boolean closed;
    /** Set by {@link #abandon()} from any thread: running work stops, later requests are refused. */
    volatile boolean ending;
    /** A migration is running: shown by {@link #info()}; requests wait on the monitor meanwhile. */
    volatile boolean migrating;
    /**
     * Bumped by every change to what migration re-creates on a target before it copies (contexts,
     * allocations, physical memory, mappings), so a pre-copy can tell whether what it copied
     * while the application ran still has the same shape.
     */
    long layoutVersion;
    private final java.util.concurrent.CopyOnWriteArrayList<io.vgpu.api.dto.MigrationRecord> migrations =
            new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile long launches;
    /** {@link #CHUNK}; smaller in tests. */
    long chunk = CHUNK;
    /** What {@link #info()} reports, replaced (never changed) under the monitor after every change. */
    private volatile Usage usage = new Usage(new long[0], new int[0]);

    final List<Ctx> contexts = new ArrayList<>();
    /** Linear allocations and VMM mappings by start address. */
    final TreeMap<Long, Range> ranges = new TreeMap<>();
    /** VMM address reservations: start → size. */
    private final TreeMap<Long, Long> reservations = new TreeMap<>();
    final List<PhysicalMemory> physical = new ArrayList<>();

    /** Per device: memory held and visible contexts. Immutable once published. */
    private static final class Usage {
        final long[] deviceMemory;
        final int[] deviceContexts;

        Usage(long[] deviceMemory, int[] deviceContexts) {
            this.deviceMemory = deviceMemory;
            this.deviceContexts = deviceContexts;
        }
    }

    // Backend handles are not final: a migration replaces them all at once (Migration.swap).
    static final class Ctx {
        final int device;
        final int flags;
        long backendCtx;
        final boolean hidden;
        long handle;
        final List<Module> modules = new ArrayList<>();
        final List<Stream> streams = new ArrayList<>();
        final List<Event> events = new ArrayList<>();
        /** The device's attributes, kept for the launch checks: the backend copies them on every query. */
        int[] attributes;

        Ctx(int device, int flags, long backendCtx, boolean hidden, int[] attributes) {
            this.device = device;
            this.flags = flags;
            this.backendCtx = backendCtx;
            this.hidden = hidden;
            this.attributes = attributes;
        }
    }

    static final class Range {
        final long address;
        final long size;
        final Ctx ctx;
        /** A VMM mapping: removed by memUnmap, not memFree. */
        final PhysicalMemory mapping;
        /** Where in {@link #mapping} the range starts. */
        final long offset;

        Range(long address, long size, Ctx ctx, PhysicalMemory mapping, long offset) {
            this.address = address;
            this.size = size;
            this.ctx = ctx;
            this.mapping = mapping;
            this.offset = offset;
        }
    }

    static final class PhysicalMemory {
        final Ctx ctx;
        long backendHandle;
        final long size;
        long handle;
        boolean released;
        int mappings;

        PhysicalMemory(Ctx ctx, long backendHandle, long size) {
            this.ctx = ctx;
            this.backendHandle = backendHandle;
            this.size = size;
        }
    }

    static final class Module {
        final Ctx ctx;
        long backendModule;
        /** Parsed for the device's architecture: another one after a migration to another kind of device. */
        ModuleImage image;
        final long globalsBase;
        final Map<String, Long> functions = new HashMap<>();
        long handle;

        Module(Ctx ctx, long backendModule, ModuleImage image, long globalsBase) {
            this.ctx = ctx;
            this.backendModule = backendModule;
            this.image = image;
            this.globalsBase = globalsBase;
        }
    }

    static final class Function {
        final Module module;
        long backendFunction;
        final KernelInfo info;

        Function(Module module, long backendFunction, KernelInfo info) {
            this.module = module;
            this.backendFunction = backendFunction;
            this.info = info;
        }
    }

    static final class Stream {
        final Ctx ctx;
        final int flags;
        final int priority;
        long backendStream;
        long handle;

        Stream(Ctx ctx, int flags, int priority, long backendStream) {
            this.ctx = ctx;
            this.flags = flags;
            this.priority = priority;
            this.backendStream = backendStream;
        }
    }

    static final class Event {
        final Ctx ctx;
        final int flags;
        long backendEvent;
        long handle;
        /** Recorded at least once: a migrated event is recorded again on the target, so it stays complete. */
        boolean recorded;

        Event(Ctx ctx, int flags, long backendEvent) {
            this.ctx = ctx;
            this.flags = flags;
            this.backendEvent = backendEvent;
        }
    }

    /** The window at the session's start: the router changes it only while no session is open. */
    private final AddressSpace space;

    SessionImpl(Router router, long id, ClientInfo client, Router.Backend backend) {
        this.router = router;
        this.id = id;
        this.client = client;
        this.backend = backend;
        this.handles = new HandleTable(id);
        this.space = router.addressSpace();
    }

    @Override
    public long id() {
        return id;
    }

    ClientInfo client() {
        return client;
    }

    String backendId() {
        Router.Backend b = backend;
        return b == null ? null : b.id;
    }

    @Override
    public void guardMigrations(io.vgpu.api.session.MigrationGuard guard) {
        this.guard = guard;
    }

    /** Never waits for a running request: everything it reads is volatile or a published snapshot. */
    @Override
    public SessionInfo info() {
        Usage u = usage;
        Router.Backend b = backend;
        SessionInfo s = new SessionInfo();
        s.id = id;
        s.pid = client.pid;
        s.uid = client.uid;
        s.gid = client.gid;
        s.processName = client.processName;
        s.backend = b == null ? null : b.id;
        s.status = closed ? CLOSED : migrating ? MIGRATING : b == null ? NO_BACKEND : b.isLost() ? BACKEND_LOST : BOUND;
        long memory = 0;
        int contexts = 0;
        for (int d = 0; d < u.deviceMemory.length; d++) {
            memory += u.deviceMemory[d];
            contexts += u.deviceContexts[d];
        }
        s.memoryUsed = memory;
        s.contexts = contexts;
        s.deviceMemory = u.deviceMemory.clone();
        s.deviceContexts = u.deviceContexts.clone();
        s.launches = launches;
        s.openedAtMillis = openedAt;
        s.migrations = new ArrayList<>(migrations);
        return s;
    }

    /** The memory the session holds on {@code device}, as {@link #info()} reports it. */
    long memoryOn(int device) {
        Usage u = usage;
        return device < u.deviceMemory.length ? u.deviceMemory[device] : 0;
    }

    /**
     * Moves the session to {@code target} (see {@link Migration}); never throws for a refusal.
     * Requests of the session wait meanwhile: the migration holds this monitor while it stops the
     * session, which is what the bridge's connection thread blocks on.
     */
    io.vgpu.api.dto.MigrationRecord migrate(Router.Backend target, boolean precopy, String reason) {
        // One at a time: a pre-copy lets go of the monitor, and a second move started then would
        // lay out a target from handles the first is about to replace.
        if (!migrationLock.tryLock()) {
            io.vgpu.api.dto.MigrationRecord busy = new io.vgpu.api.dto.MigrationRecord();
            busy.session = id;
            busy.from = backendId();
            busy.to = target.id;
            busy.reason = reason;
            busy.atMillis = System.currentTimeMillis();
            busy.message = "another migration of this session is running";
            return busy;
        }
        io.vgpu.api.dto.MigrationRecord r;
        try {
            r = new Migration(this, target, precopy, reason).run();
        } finally {
            migrationLock.unlock();
        }
        migrations.add(r);
        while (migrations.size() > HISTORY) {
            migrations.remove(0);
        }
        return r;
    }

    boolean isClosed() {
        return closed;
    }

    /**
     * Accounts {@code bytes} of memory and {@code contexts} visible contexts on {@code device} (either
     * negative when released) and publishes the new totals. Memory belongs to the device of the
     * context that made it, so NVML lists a process under the device it really uses. The arrays
     * cover the devices the session has a context on, as before.
     */
    private void account(int device, long bytes, int contexts) {
        Usage u = usage;
        int n = 0;
        for (Ctx c : this.contexts) {
            n = Math.max(n, c.device + 1);
        }
        long[] memory = java.util.Arrays.copyOf(u.deviceMemory, Math.max(n, device + 1));
        int[] ctxs = java.util.Arrays.copyOf(u.deviceContexts, memory.length);
        memory[device] += bytes;
        ctxs[device] += contexts;
        usage = new Usage(java.util.Arrays.copyOf(memory, n), java.util.Arrays.copyOf(ctxs, n));
    }

    /**
     * A session that holds nothing yet may (re)bind to whatever backend is active now; one that
     * holds state stays with its backend, and reports it unavailable once it is gone.
     */
    @Override
    public synchronized int check() {
        if (closed || ending) {
            return CuResult.DEINITIALIZED;
        }
        if ((backend == null || backend.isLost()) && contexts.isEmpty()) {
            backend = router.activeBackend();
        }
        if (backend == null) {
            return CuResult.NO_DEVICE;
        }
        return backend.isLost() ? CuResult.DEVICE_UNAVAILABLE : CuResult.SUCCESS;
    }

    CudaService svc() {
        return backend.service;
    }

    @Override
    public int driverVersion() {
        return router.driverVersion();
    }

    @Override
    public long[] addressWindow() {
        return new long[] {space.base(), space.size()};
    }

    /** The window this session's addresses come from (the core's when the session started). */
    AddressSpace space() {
        return space;
    }

    @Override
    public synchronized DeviceInfo[] devices() {
        if (check() != CuResult.SUCCESS) {
            return new DeviceInfo[0];
        }
        return svc().devices();
    }

    @Override
    public synchronized int memGetInfo(int device, long[] freeAndTotal) {
        int rc = check();
        return rc != 0 ? rc : svc().memGetInfo(device, freeAndTotal);
    }

    // ------------------------------------------------------------------ contexts

    private Ctx ctx(long handle) {
        return handles.get(HandleTable.CONTEXT, handle, Ctx.class);
    }

    @Override
    public synchronized int ctxCreate(int device, int flags, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = newContext(device, flags, false);
        if (c == null) {
            return lastError;
        }
        out[0] = c.handle;
        return CuResult.SUCCESS;
    }

    private int lastError;

    private Ctx newContext(int device, int flags, boolean hidden) {
        DeviceInfo[] devices = svc().devices();
        if (device < 0 || device >= devices.length) {
            lastError = CuResult.INVALID_DEVICE;
            return null;
        }
        long[] bctx = new long[1];
        int rc = svc().ctxCreate(device, flags, id, bctx);
        if (rc != 0) {
            lastError = rc;
            return null;
        }
        Ctx c = new Ctx(device, flags, bctx[0], hidden, devices[device].attributes);
        c.handle = handles.add(HandleTable.CONTEXT, c);
        contexts.add(c);
        layoutVersion++;
        account(device, 0, hidden ? 0 : 1);
        return c;
    }

    @Override
    public synchronized int ctxDestroy(long handle) {
        Ctx c = ctx(handle);
        if (c == null || c.hidden) {
            return CuResult.INVALID_CONTEXT;
        }
        destroy(c);
        return CuResult.SUCCESS;
    }

    private void destroy(Ctx c) {
        if (!backend.isLost()) {
            int rc = svc().ctxDestroy(c.backendCtx);
            if (rc != 0) {
                LOG.warn("session {}: backend {} failed to destroy a context: {}", id, backend.id, CuResult.name(rc));
            }
        }
        long[] freed = {0};
        for (Module m : c.modules) {
            handles.remove(m.handle);
            for (long f : m.functions.values()) {
                handles.remove(f);
            }
            if (m.image.globalsSize > 0) {
                space.release(m.globalsBase, m.image.globalsSize);
                freed[0] += m.image.globalsSize;
            }
        }
        for (Stream s : c.streams) {
            handles.remove(s.handle);
        }
        for (Event e : c.events) {
            handles.remove(e.handle);
        }
        ranges.values().removeIf(r -> {
            if (r.ctx == c && r.mapping == null) {
                space.release(r.address, r.size);
                freed[0] += r.size;
                return true;
            }
            return r.ctx == c || (r.mapping != null && r.mapping.ctx == c);
        });
        physical.removeIf(p -> {
            if (p.ctx == c) {
                handles.remove(p.handle);
                freed[0] += p.size;
                return true;
            }
            return false;
        });
        handles.remove(c.handle);
        contexts.remove(c);
        layoutVersion++;
        account(c.device, -freed[0], c.hidden ? 0 : -1);
    }

    @Override
    public synchronized int ctxSynchronize(long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(handle);
        return c == null ? CuResult.INVALID_CONTEXT : svc().ctxSynchronize(c.backendCtx);
    }

    // ------------------------------------------------------------------ linear memory

    @Override
    public synchronized int memAlloc(long ctxHandle, long size, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(ctxHandle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (size <= 0) {
            return CuResult.INVALID_VALUE;
        }
        long address = space.reserve(size, AddressSpace.defaultAlignment(size), 0);
        if (address == 0) {
            return CuResult.OUT_OF_MEMORY;
        }
        rc = svc().memAlloc(c.backendCtx, address, size);
        if (rc != 0) {
            space.release(address, size);
            return rc;
        }
        ranges.put(address, new Range(address, size, c, null, 0));
        layoutVersion++;
        account(c.device, size, 0);
        out[0] = address;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int memFree(long ctxHandle, long address) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Range r = ranges.get(address);
        if (r == null || r.mapping != null) {
            return CuResult.INVALID_VALUE;
        }
        rc = svc().memFree(r.ctx.backendCtx, address);
        if (rc == 0) {
            ranges.remove(address);
            layoutVersion++;
            space.release(address, r.size);
            account(r.ctx.device, -r.size, 0);
        }
        return rc;
    }

    /**
     * True when {@code [address, address+length)} is a range of addresses at all: a length that is
     * negative (an unsigned size above 2^63 from the wire) or that would wrap past the end of the
     * address space never is. Every check below goes through here before it adds.
     */
    static boolean representable(long address, long length) {
        return length >= 0 && address >= 0 && length <= Long.MAX_VALUE - address;
    }

    /** The range holding [address, address+length), or null when the bytes are not all in one range. */
    private Range range(long address, long length) {
        if (!representable(address, length)) {
            return null;
        }
        Map.Entry<Long, Range> e = ranges.floorEntry(address);
        if (e == null) {
            return null;
        }
        Range r = e.getValue();
        return address + length <= r.address + r.size ? r : null;
    }

    /**
     * The first range of [address, address+length) when the bytes lie in ranges of this session
     * that follow each other without a gap (VMM chunks mapped side by side form one buffer).
     */
    private Range contiguous(long address, long length) {
        if (!representable(address, length) || !space.contains(address, length)) {
            return null;
        }
        Map.Entry<Long, Range> e = ranges.floorEntry(address);
        if (e == null || address >= e.getValue().address + e.getValue().size) {
            return null;
        }
        Range first = e.getValue();
        long end = address + length;
        Range r = first;
        while (r.address + r.size < end) {
            Range next = ranges.get(r.address + r.size);
            if (next == null) {
                return null;
            }
            r = next;
        }
        return first;
    }

    /**
     * The context owning [address, address+length): an allocation, a mapping or a module's
     * globals of this session. Null for anything else, which keeps sessions out of each other's
     * memory, and for any range that is not representable or leaves the address window.
     */
    private Ctx owner(long address, long length) {
        if (!representable(address, length) || !space.contains(address, length)) {
            return null;
        }
        Range r = contiguous(address, length);
        if (r != null) {
            return r.ctx;
        }
        for (Ctx c : contexts) {
            for (Module m : c.modules) {
                long size = m.image.globalsSize;
                if (size > 0 && address >= m.globalsBase && address - m.globalsBase <= size
                        && length <= size - (address - m.globalsBase)) {
                    return c;
                }
            }
        }
        return null;
    }

    @Override
    public synchronized int memGetAddressRange(long address, long[] baseAndSize) {
        Range r = range(address, 0);
        if (r == null || address >= r.address + r.size) {
            return CuResult.NOT_FOUND;
        }
        baseAndSize[0] = r.address;
        baseAndSize[1] = r.size;
        return CuResult.SUCCESS;
    }

    private long streamOf(Ctx c, long streamHandle) {
        if (streamHandle == 0) {
            return 0;
        }
        Stream s = handles.get(HandleTable.STREAM, streamHandle, Stream.class);
        return s == null ? -1 : s.backendStream;
    }

    @Override
    public synchronized int memcpyHtoD(long ctxHandle, long dst, ByteBuffer src, long stream) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        // Bounded by the frame or shared-memory region it came in (at most 64 MiB / the region).
        Ctx c = owner(dst, src.remaining());
        if (c == null) {
            return CuResult.INVALID_VALUE;
        }
        long bs = streamOf(c, stream);
        return bs < 0 ? CuResult.INVALID_HANDLE : svc().memcpyHtoD(c.backendCtx, dst, src, bs);
    }

    @Override
    public synchronized int memcpyDtoH(long ctxHandle, ByteBuffer dst, long src, long stream) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = owner(src, dst.remaining());
        if (c == null) {
            return CuResult.INVALID_VALUE;
        }
        long bs = streamOf(c, stream);
        return bs < 0 ? CuResult.INVALID_HANDLE : svc().memcpyDtoH(c.backendCtx, dst, src, bs);
    }

    /**
     * Both ranges must lie in this session's memory before anything is copied. The copy goes to
     * the backend in pieces of {@link #CHUNK} bytes, back to front when the destination overlaps
     * the source from above (memmove order), and stops between pieces once the session is abandoned.
     */
    @Override
    public synchronized int memcpyDtoD(long ctxHandle, long dst, long src, long size, long stream) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx cd = owner(dst, size);
        if (cd == null || owner(src, size) == null) {
            return CuResult.INVALID_VALUE;
        }
        long bs = streamOf(cd, stream);
        if (bs < 0) {
            return CuResult.INVALID_HANDLE;
        }
        boolean backwards = dst > src && dst - src < size;
        for (long done = 0; done < size;) {
            if (ending) {
                return CuResult.DEINITIALIZED; // abandoned: nobody waits for the rest
            }
            long n = Math.min(chunk, size - done);
            long at = backwards ? size - done - n : done;
            rc = svc().memcpyDtoD(cd.backendCtx, dst + at, src + at, n, bs);
            if (rc != CuResult.SUCCESS) {
                return rc;
            }
            done += n;
        }
        return size == 0 ? svc().memcpyDtoD(cd.backendCtx, dst, src, 0, bs) : CuResult.SUCCESS;
    }

    @Override
    public synchronized int memset(long ctxHandle, long dst, int value, int elementSize, long count, long stream) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        // A count from the wire is unsigned: negative or too large to multiply means a huge request.
        if (elementSize != 1 && elementSize != 2 && elementSize != 4 || count < 0 || count > Long.MAX_VALUE / elementSize) {
            return CuResult.INVALID_VALUE;
        }
        if ((dst & (elementSize - 1)) != 0) {
            return CuResult.INVALID_VALUE;
        }
        long bytes = Math.multiplyExact(count, (long) elementSize);
        Ctx c = owner(dst, bytes);
        if (c == null) {
            return CuResult.INVALID_VALUE;
        }
        long bs = streamOf(c, stream);
        if (bs < 0) {
            return CuResult.INVALID_HANDLE;
        }
        // Pieces of whole elements, so the pattern of 2- and 4-byte values stays in phase.
        long perChunk = Math.max(1, chunk / elementSize);
        for (long done = 0; done < count;) {
            if (ending) {
                return CuResult.DEINITIALIZED; // abandoned: nobody waits for the rest
            }
            long n = Math.min(perChunk, count - done);
            rc = svc().memset(c.backendCtx, dst + done * elementSize, value, elementSize, n, bs);
            if (rc != CuResult.SUCCESS) {
                return rc;
            }
            done += n;
        }
        return count == 0 ? svc().memset(c.backendCtx, dst, value, elementSize, 0, bs) : CuResult.SUCCESS;
    }

    // ------------------------------------------------------------------ virtual memory management

    @Override
    public synchronized int memAddressReserve(long size, long alignment, long hint, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        if (size <= 0 || (size & (AddressSpace.LARGE_ALIGNMENT - 1)) != 0) {
            return CuResult.INVALID_VALUE;
        }
        long align = alignment == 0 ? AddressSpace.LARGE_ALIGNMENT : alignment;
        if (Long.bitCount(align) != 1) {
            return CuResult.INVALID_VALUE;
        }
        // A hint outside the window (or taken) is ignored, as the driver treats hints.
        long address = space.reserve(size, align, hint);
        if (address == 0) {
            return CuResult.OUT_OF_MEMORY;
        }
        reservations.put(address, size);
        out[0] = address;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int memAddressFree(long address, long size) {
        Long reserved = reservations.get(address);
        if (reserved == null || reserved != size) {
            return CuResult.INVALID_VALUE;
        }
        Range mapped = range(address, 0);
        if (mapped != null && mapped.address + mapped.size > address) {
            // The driver refuses to free a reservation that still has mappings.
            return CuResult.INVALID_VALUE;
        }
        Map.Entry<Long, Range> next = ranges.ceilingEntry(address);
        if (next != null && next.getKey() < address + size) {
            return CuResult.INVALID_VALUE;
        }
        reservations.remove(address);
        space.release(address, size);
        return CuResult.SUCCESS;
    }

    private Ctx deviceContext(int device) {
        for (Ctx c : contexts) {
            if (c.device == device) {
                return c;
            }
        }
        // VMM calls need no current context in CUDA; give the session a private one for the device.
        return newContext(device, 0, true);
    }

    @Override
    public synchronized int memCreate(int device, long size, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        if (size <= 0 || (size & (AddressSpace.LARGE_ALIGNMENT - 1)) != 0) {
            return CuResult.INVALID_VALUE;
        }
        Ctx c = deviceContext(device);
        if (c == null) {
            return lastError;
        }
        long[] h = new long[1];
        rc = svc().memCreate(c.backendCtx, size, h);
        if (rc != 0) {
            return rc;
        }
        PhysicalMemory p = new PhysicalMemory(c, h[0], size);
        p.handle = handles.add(HandleTable.MEMORY, p);
        physical.add(p);
        layoutVersion++;
        account(c.device, size, 0);
        out[0] = p.handle;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int memRelease(long handle) {
        PhysicalMemory p = handles.get(HandleTable.MEMORY, handle, PhysicalMemory.class);
        if (p == null || p.released) {
            return CuResult.INVALID_VALUE;
        }
        int rc = backend.isLost() ? 0 : svc().memRelease(p.backendHandle);
        if (rc != 0) {
            return rc;
        }
        // Memory stays alive while mapped, as in CUDA; accounting drops it when the last mapping goes.
        p.released = true;
        layoutVersion++;
        handles.remove(handle);
        if (p.mappings == 0) {
            physical.remove(p);
            account(p.ctx.device, -p.size, 0);
        }
        return CuResult.SUCCESS;
    }

    /** [address, address+size) lies in one reservation of this session (and so in the window). */
    private boolean reserved(long address, long size) {
        if (!representable(address, size)) {
            return false;
        }
        Map.Entry<Long, Long> e = reservations.floorEntry(address);
        return e != null && address + size <= e.getKey() + e.getValue();
    }

    @Override
    public synchronized int memMap(long address, long size, long offset, long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        PhysicalMemory p = handles.get(HandleTable.MEMORY, handle, PhysicalMemory.class);
        if (p == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (size <= 0 || offset < 0 || size > p.size || offset > p.size - size || !reserved(address, size)) {
            return CuResult.INVALID_VALUE;
        }
        Map.Entry<Long, Range> prev = ranges.floorEntry(address + size - 1);
        if (prev != null && prev.getKey() + prev.getValue().size > address) {
            return CuResult.ALREADY_MAPPED;
        }
        rc = svc().memMap(p.ctx.backendCtx, address, size, offset, p.backendHandle);
        if (rc != 0) {
            return rc;
        }
        p.mappings++;
        ranges.put(address, new Range(address, size, p.ctx, p, offset));
        layoutVersion++;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int memUnmap(long address, long size) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        if (!reserved(address, size)) {
            return CuResult.INVALID_VALUE;
        }
        List<Range> hit = new ArrayList<>(ranges.subMap(address, true, address + size, false).values());
        if (hit.isEmpty()) {
            return CuResult.INVALID_VALUE;
        }
        for (Range r : hit) {
            if (r.mapping == null || r.address + r.size > address + size) {
                return CuResult.INVALID_VALUE;
            }
        }
        for (Range r : hit) {
            rc = svc().memUnmap(r.mapping.ctx.backendCtx, r.address, r.size);
            if (rc != 0) {
                return rc;
            }
            ranges.remove(r.address);
            layoutVersion++;
            if (--r.mapping.mappings == 0 && r.mapping.released) {
                physical.remove(r.mapping);
                account(r.mapping.ctx.device, -r.mapping.size, 0);
            }
        }
        return CuResult.SUCCESS;
    }

    // ------------------------------------------------------------------ modules and launches

    private int arch(Ctx c) {
        DeviceInfo dev = svc().devices()[c.device];
        return dev.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) * 10
                + dev.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR);
    }

    @Override
    public synchronized int moduleLoad(long ctxHandle, byte[] image, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(ctxHandle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        ModuleImage parsed;
        try {
            parsed = router.images().upload(image, arch(c));
        } catch (ImageFormatException e) {
            // Libraries probe many images a device cannot run; that is not news worth a log line.
            LOG.debug("session {} (pid {}): module image rejected: {}", id, client.pid, e.getMessage());
            return rejected(e);
        }
        return load(c, parsed, out);
    }

    @Override
    public synchronized int moduleLoadCached(long ctxHandle, byte[] sha256, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(ctxHandle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (sha256 == null || sha256.length != 32) {
            return CuResult.INVALID_VALUE;
        }
        ModuleImage parsed;
        try {
            parsed = router.images().byHash(sha256, arch(c));
        } catch (ImageFormatException e) {
            return rejected(e);
        }
        return parsed == null ? CuResult.NOT_FOUND : load(c, parsed, out);
    }

    private static int rejected(ImageFormatException e) {
        return e.reason() == ImageFormatException.Reason.NO_COMPATIBLE_CODE ? CuResult.NO_BINARY_FOR_GPU
                : CuResult.INVALID_IMAGE;
    }

    private int load(Ctx c, ModuleImage parsed, long[] out) {
        long globalsBase = 0;
        if (parsed.globalsSize > 0) {
            globalsBase = space.reserve(parsed.globalsSize, AddressSpace.SMALL_ALIGNMENT, 0);
            if (globalsBase == 0) {
                return CuResult.OUT_OF_MEMORY;
            }
        }
        long[] m = new long[1];
        int rc = svc().moduleLoad(c.backendCtx, parsed, globalsBase, m);
        if (rc != 0) {
            if (globalsBase != 0) {
                space.release(globalsBase, parsed.globalsSize);
            }
            return rc;
        }
        Module mod = new Module(c, m[0], parsed, globalsBase);
        mod.handle = handles.add(HandleTable.MODULE, mod);
        c.modules.add(mod);
        // Module globals are device memory too: the backend allocated them at load.
        account(c.device, parsed.globalsSize, 0);
        out[0] = mod.handle;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int moduleUnload(long handle) {
        Module m = handles.get(HandleTable.MODULE, handle, Module.class);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        int rc = backend.isLost() ? 0 : svc().moduleUnload(m.backendModule);
        if (rc != 0) {
            return rc;
        }
        handles.remove(handle);
        for (long f : m.functions.values()) {
            handles.remove(f);
        }
        m.ctx.modules.remove(m);
        if (m.image.globalsSize > 0) {
            space.release(m.globalsBase, m.image.globalsSize);
            account(m.ctx.device, -m.image.globalsSize, 0);
        }
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int functionGet(long moduleHandle, String name, long[] out, KernelInfo[] info) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Module m = handles.get(HandleTable.MODULE, moduleHandle, Module.class);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        Long known = m.functions.get(name);
        if (known == null) {
            KernelInfo k = m.image.kernel(name);
            if (k == null) {
                return CuResult.NOT_FOUND;
            }
            long[] f = new long[1];
            rc = svc().functionGet(m.backendModule, name, f);
            if (rc != 0) {
                return rc;
            }
            known = handles.add(HandleTable.FUNCTION, new Function(m, f[0], k));
            m.functions.put(name, known);
        }
        out[0] = known;
        if (info != null) {
            info[0] = handles.get(HandleTable.FUNCTION, known, Function.class).info;
        }
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int functionGetAttribute(long handle, int attribute, int[] value) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Function f = handles.get(HandleTable.FUNCTION, handle, Function.class);
        return f == null ? CuResult.INVALID_HANDLE : svc().functionGetAttribute(f.backendFunction, attribute, value);
    }

    @Override
    public synchronized int globalGet(long moduleHandle, String name, long[] out) {
        Module m = handles.get(HandleTable.MODULE, moduleHandle, Module.class);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        var g = m.image.global(name);
        if (g == null) {
            return CuResult.NOT_FOUND;
        }
        out[0] = m.globalsBase + g.offset;
        out[1] = g.size;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int launch(long handle, LaunchConfig config, ByteBuffer params, long stream) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Function f = handles.get(HandleTable.FUNCTION, handle, Function.class);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (!withinDeviceLimits(f, config)) {
            return CuResult.INVALID_VALUE;
        }
        if (params.remaining() < f.info.paramBufferSize) {
            return CuResult.INVALID_VALUE;
        }
        long bs = streamOf(f.module.ctx, stream);
        if (bs < 0) {
            return CuResult.INVALID_HANDLE;
        }
        launches = launches + 1; // one writer: the session's thread
        return svc().launch(f.backendFunction, config, params, bs);
    }

    /**
     * The hardware's bounds on a launch, each failing with INVALID_VALUE. The shim already checks
     * them, and the tighter per-function shared memory limit, when the application calls; this is
     * the backstop for any other client. Shared memory is bounded by the opt-in maximum because
     * raising a function's limit (cuFuncSetAttribute) is known only to the client.
     */
    private boolean withinDeviceLimits(Function f, LaunchConfig config) {
        long threadsPerBlock = (long) config.blockX * config.blockY * config.blockZ;
        if (threadsPerBlock <= 0 || threadsPerBlock > f.info.maxThreadsPerBlock || config.gridX <= 0
                || config.gridY <= 0 || config.gridZ <= 0 || config.sharedMemBytes < 0) {
            return false;
        }
        int[] a = f.module.ctx.attributes;
        return config.blockX <= a[CuDeviceAttribute.MAX_BLOCK_DIM_X] && config.blockY <= a[CuDeviceAttribute.MAX_BLOCK_DIM_Y]
                && config.blockZ <= a[CuDeviceAttribute.MAX_BLOCK_DIM_Z] && config.gridX <= a[CuDeviceAttribute.MAX_GRID_DIM_X]
                && config.gridY <= a[CuDeviceAttribute.MAX_GRID_DIM_Y] && config.gridZ <= a[CuDeviceAttribute.MAX_GRID_DIM_Z]
                && (long) config.sharedMemBytes + f.info.sharedSizeBytes <= a[CuDeviceAttribute.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN];
    }

    // ------------------------------------------------------------------ streams and events

    @Override
    public synchronized int streamCreate(long ctxHandle, int flags, int priority, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(ctxHandle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        long[] s = new long[1];
        rc = svc().streamCreate(c.backendCtx, flags, priority, s);
        if (rc != 0) {
            return rc;
        }
        Stream st = new Stream(c, flags, priority, s[0]);
        st.handle = handles.add(HandleTable.STREAM, st);
        c.streams.add(st);
        out[0] = st.handle;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int streamDestroy(long handle) {
        Stream s = handles.get(HandleTable.STREAM, handle, Stream.class);
        if (s == null) {
            return CuResult.INVALID_HANDLE;
        }
        int rc = backend.isLost() ? 0 : svc().streamDestroy(s.backendStream);
        if (rc == 0) {
            handles.remove(handle);
            s.ctx.streams.remove(s);
        }
        return rc;
    }

    @Override
    public synchronized int streamSynchronize(long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        long bs = streamOf(null, handle);
        return bs < 0 ? CuResult.INVALID_HANDLE : svc().streamSynchronize(bs);
    }

    @Override
    public synchronized int streamQuery(long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        long bs = streamOf(null, handle);
        return bs < 0 ? CuResult.INVALID_HANDLE : svc().streamQuery(bs);
    }

    @Override
    public synchronized int streamWaitEvent(long streamHandle, long eventHandle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        long bs = streamOf(null, streamHandle);
        Event e = handles.get(HandleTable.EVENT, eventHandle, Event.class);
        if (bs < 0 || e == null) {
            return CuResult.INVALID_HANDLE;
        }
        return svc().streamWaitEvent(bs, e.backendEvent);
    }

    @Override
    public synchronized int eventCreate(long ctxHandle, int flags, long[] out) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Ctx c = ctx(ctxHandle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        long[] e = new long[1];
        rc = svc().eventCreate(c.backendCtx, flags, e);
        if (rc != 0) {
            return rc;
        }
        Event ev = new Event(c, flags, e[0]);
        ev.handle = handles.add(HandleTable.EVENT, ev);
        c.events.add(ev);
        out[0] = ev.handle;
        return CuResult.SUCCESS;
    }

    @Override
    public synchronized int eventDestroy(long handle) {
        Event e = handles.get(HandleTable.EVENT, handle, Event.class);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        int rc = backend.isLost() ? 0 : svc().eventDestroy(e.backendEvent);
        if (rc == 0) {
            handles.remove(handle);
            e.ctx.events.remove(e);
        }
        return rc;
    }

    private Event event(long handle) {
        return handles.get(HandleTable.EVENT, handle, Event.class);
    }

    @Override
    public synchronized int eventRecord(long eventHandle, long streamHandle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Event e = event(eventHandle);
        long bs = streamOf(null, streamHandle);
        if (e == null || bs < 0) {
            return CuResult.INVALID_HANDLE;
        }
        rc = svc().eventRecord(e.backendEvent, bs);
        e.recorded |= rc == CuResult.SUCCESS;
        return rc;
    }

    @Override
    public synchronized int eventQuery(long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Event e = event(handle);
        return e == null ? CuResult.INVALID_HANDLE : svc().eventQuery(e.backendEvent);
    }

    @Override
    public synchronized int eventSynchronize(long handle) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Event e = event(handle);
        return e == null ? CuResult.INVALID_HANDLE : svc().eventSynchronize(e.backendEvent);
    }

    @Override
    public synchronized int eventElapsedTime(long start, long end, float[] millis) {
        int rc = check();
        if (rc != 0) {
            return rc;
        }
        Event s = event(start);
        Event e = event(end);
        return s == null || e == null ? CuResult.INVALID_HANDLE
                : svc().eventElapsedTime(s.backendEvent, e.backendEvent, millis);
    }

    // ------------------------------------------------------------------ lifecycle

    /**
     * Marks the session as ending and tells the backend to stop the owner's running work. Takes no
     * lock: it is what another thread calls while this session's request is running.
     */
    @Override
    public void abandon() {
        if (ending || closed) {
            return;
        }
        ending = true;
        Router.Backend b = backend;
        if (b != null && !b.isLost()) {
            try {
                b.service.abandon(id);
            } catch (RuntimeException e) {
                LOG.warn("session {}: backend {} failed to abandon its work: {}", id, b.id, e.toString());
            }
        }
    }

    boolean abandoned() {
        return ending;
    }

    @Override
    public void close() {
        // From another thread (the service stopping) a request may be running: make it stop first.
        abandon();
        synchronized (this) {
            if (closed) {
                return;
            }
            for (Ctx c : new ArrayList<>(contexts)) {
                destroy(c);
            }
            for (Map.Entry<Long, Long> r : reservations.entrySet()) {
                space.release(r.getKey(), r.getValue());
            }
            reservations.clear();
            closed = true;
        }
        router.closed(this);
    }

}
