package io.vgpu.core.internal;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.api.session.MigrationGuard;
import io.vgpu.core.image.ImageFormatException;
import io.vgpu.core.internal.SessionImpl.Ctx;
import io.vgpu.core.internal.SessionImpl.Event;
import io.vgpu.core.internal.SessionImpl.Function;
import io.vgpu.core.internal.SessionImpl.Module;
import io.vgpu.core.internal.SessionImpl.PhysicalMemory;
import io.vgpu.core.internal.SessionImpl.Range;
import io.vgpu.core.internal.SessionImpl.Stream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves one session's CUDA state from its backend to another while the application keeps its
 * handles and pointers. Everything the application holds is virtual state in the session, so the
 * target only has to be given the same things again: contexts, every allocation, physical
 * allocation and mapping at the same addresses, modules from the images the core keeps, their
 * functions, streams with their flags and priorities, events with their recorded state; then the
 * device memory is copied (only what the source says was written) and the session's backend
 * handles are replaced all at once.
 *
 * <p>The session's monitor is the gate: its requests hold it, so while the migration holds it the
 * bridge's connection thread simply waits, and the shim's queued requests with it. Stop-and-copy
 * holds it throughout. Pre-copy, where the source can track writes, holds it only to lay out the
 * target and, at the end, to copy what changed meanwhile: the copy of the bulk runs while the
 * application runs on the source.
 *
 * <p>Atomic or nothing: until the swap the session is untouched; any failure (a refusal of the
 * target, the target going away, the session ending) releases what was made on the target and
 * leaves the session on its source, and the record says why.
 */
final class Migration {
    private static final Logger LOG = LoggerFactory.getLogger(Migration.class);
    /** The bounce buffer between source and target. */
    static final int PIECE = 8 << 20;
    /** Pre-copy stops going round once a round copies no more than this. */
    static final long CONVERGED = 4L << 20;
    static final int MAX_ROUNDS = 8;

    /** Why a migration cannot go on; the message is what the command prints. */
    static class Refusal extends Exception {
        private static final long serialVersionUID = 1L;

        Refusal(String message) {
            super(message, null, false, false);
        }
    }

    /** A refusal no later round can mend (the target's, the session ending): a pre-copy round passes it on. */
    static final class Fatal extends Refusal {
        private static final long serialVersionUID = 1L;

        Fatal(String message) {
            super(message);
        }
    }

    /** Device memory to copy: an allocation, a module's globals, or a physical allocation through a scratch mapping. */
    private static final class Region {
        final Ctx ctx;
        final long address;
        final long size;
        /** Not copied yet: copy everything written, not only what changed since the last round. */
        boolean full = true;

        Region(Ctx ctx, long address, long size) {
            this.ctx = ctx;
            this.address = address;
            this.size = size;
        }
    }

    /** A window where a physical allocation is mapped whole on both sides for its copy. */
    private static final class Scratch {
        final PhysicalMemory memory;
        final long address;
        boolean onSource;
        boolean onTarget;

        Scratch(PhysicalMemory memory, long address) {
            this.memory = memory;
            this.address = address;
        }
    }

    private final SessionImpl s;
    private final Router.Backend source;
    private final Router.Backend target;
    private final CudaService dst;
    private final boolean precopy;
    private final MigrationRecord rec = new MigrationRecord();
    /** The guard that admitted this move, until it hears how it ended. */
    private MigrationGuard admitted;
    /** The reason of a move away from a backend that is going away. */
    static final String EVACUATION = "evacuation";

    // What exists on the target, by the session object it stands for.
    private final Map<Ctx, Long> ctxs = new IdentityHashMap<>();
    private final Map<PhysicalMemory, Long> physical = new IdentityHashMap<>();
    private final Map<Module, Long> modules = new IdentityHashMap<>();
    private final Map<Module, ModuleImage> images = new IdentityHashMap<>();
    private final Map<Function, Long> functions = new IdentityHashMap<>();
    private final Map<Stream, Long> streams = new IdentityHashMap<>();
    private final Map<Event, Long> events = new IdentityHashMap<>();
    private final List<Region> regions = new ArrayList<>();
    private final List<Scratch> scratch = new ArrayList<>();
    /** Source contexts whose writes are tracked for pre-copy. */
    private final List<Long> tracked = new ArrayList<>();
    private DeviceInfo[] targetDevices;
    private final ByteBuffer[] bounces = new ByteBuffer[2];
    @SuppressWarnings("unchecked")
    private final java.util.concurrent.Future<Integer>[] pending = new java.util.concurrent.Future[2];
    private final String[] pendingWhat = new String[2];
    private int turn;
    private java.util.concurrent.ExecutorService writer;

    Migration(SessionImpl session, Router.Backend target, boolean precopy, String reason) {
        this.s = session;
        this.source = session.backend;
        this.target = target;
        this.dst = target.service;
        this.precopy = precopy;
        rec.session = session.id();
        rec.from = source == null ? null : source.id;
        rec.to = target.id;
        rec.reason = reason;
        rec.atMillis = System.currentTimeMillis();
    }

    MigrationRecord run() {
        long t0 = System.nanoTime();
        try {
            if (precopy) {
                withPrecopy();
            } else {
                synchronized (s) {
                    long p0 = System.nanoTime();
                    try {
                        stopAndCopy();
                    } finally {
                        rec.pauseNanos += System.nanoTime() - p0;
                    }
                }
            }
            rec.ok = true;
        } catch (Refusal e) {
            rec.ok = false;
            rec.message = e.getMessage();
        } catch (RuntimeException e) {
            // A backend that throws instead of answering: treated like a refusal, the session stays.
            rec.ok = false;
            rec.message = "unexpected " + e;
            LOG.warn("session {}: migration to {} failed", s.id(), target.id, e);
        } finally {
            stopWriter();
            if (admitted != null) {
                // A backend threw past the rollback: the session stayed where it was.
                synchronized (s) {
                    settleGuard(false);
                }
            }
            s.migrating = false;
        }
        rec.totalNanos = System.nanoTime() - t0;
        if (rec.ok) {
            LOG.info("migration ({}): {}", rec.reason, rec);
        } else {
            LOG.warn("migration ({}): {}; the session stays on {}", rec.reason, rec, rec.from);
        }
        return rec;
    }

    /** Everything under the monitor. Holds it on entry. */
    private void stopAndCopy() throws Refusal {
        s.migrating = true;
        if (!preflight()) {
            return;
        }
        long before = rec.bytesMoved;
        try {
            drain();
            buildMemory();
            buildModules();
            copyRound(false);
            buildStreamsAndEvents();
            commit();
        } catch (Refusal e) {
            rollback();
            throw e;
        }
        rec.bytesPaused += rec.bytesMoved - before;
    }

    /**
     * Lays out the target and starts write tracking under the monitor, copies while the application
     * runs until a round moves little, then copies what changed under the monitor and swaps. If the
     * layout changed meanwhile (an allocation made or freed, a mapping changed), what was made is
     * dropped and the end is a stop-and-copy; likewise when the source cannot track writes.
     */
    private void withPrecopy() throws Refusal {
        long layout;
        synchronized (s) {
            long p0 = System.nanoTime();
            try {
                s.migrating = true;
                if (!preflight()) {
                    return;
                }
                try {
                    drain();
                    if (!startTracking()) {
                        rec.message = "the source cannot track writes: stop-and-copy";
                        stopAndCopy();
                        return;
                    }
                    buildMemory();
                } catch (Refusal e) {
                    rollback();
                    throw e;
                }
                layout = s.layoutVersion;
            } finally {
                rec.pauseNanos += System.nanoTime() - p0;
            }
        }
        // The application runs on the source meanwhile: whatever it writes is tracked and copied
        // again. A failed piece (the application freed that memory) is left to the end, which
        // sees the layout change.
        try {
            copyRound(true);
            for (int round = 0; round < MAX_ROUNDS; round++) {
                rec.precopyRounds++;
                if (copyRound(true) <= CONVERGED) {
                    break;
                }
            }
        } catch (Refusal e) {
            synchronized (s) {
                rollback();
            }
            throw e;
        }
        synchronized (s) {
            long p0 = System.nanoTime();
            try {
                if (s.layoutVersion != layout) {
                    rollback();
                    rec.message = "the allocations changed during the pre-copy: stop-and-copy";
                    stopAndCopy();
                    return;
                }
                long before = rec.bytesMoved;
                try {
                    still();
                    if (source.isLost()) {
                        throw new Refusal("its backend " + source.id + " went away during the pre-copy");
                    }
                    drain();
                    buildModules();
                    copyRound(false);
                    buildStreamsAndEvents();
                    commit();
                } catch (Refusal e) {
                    rollback();
                    throw e;
                }
                rec.bytesPaused += rec.bytesMoved - before;
            } finally {
                rec.pauseNanos += System.nanoTime() - p0;
            }
        }
    }

    /**
     * Checks that the move can be made; false when the session holds nothing, in which case it is
     * simply bound to the target.
     */
    private boolean preflight() throws Refusal {
        if (s.isClosed() || s.ending) {
            throw new Refusal("the session is ending");
        }
        if (source == target || source != null && source.id.equals(target.id) && !source.isLost()) {
            throw new Refusal("the session is already on " + target.id);
        }
        if (s.backend != source) {
            throw new Refusal("the session moved meanwhile (now on " + s.backendId() + ")");
        }
        if (target.isLost()) {
            throw new Refusal("backend " + target.id + " went away");
        }
        var info = dst.info();
        if (!info.available) {
            throw new Refusal("backend " + target.id + " is unavailable: " + info.reason);
        }
        if (s.contexts.isEmpty()) {
            // Nothing on the device yet: binding is all there is to do (NVML sessions, fresh clients).
            s.backend = target;
            rec.message = "the session held no device state";
            return false;
        }
        if (source == null || source.isLost()) {
            throw new Refusal("its backend " + rec.from + " is gone and its device memory with it: "
                    + "the session cannot be migrated");
        }
        var from = source.service.info();
        if (!from.available && !from.draining) {
            throw new Refusal("its backend " + source.id + " is unavailable (" + from.reason
                    + "): its device memory cannot be read, the session cannot be migrated");
        }
        targetDevices = dst.devices();
        DeviceInfo[] sourceDevices = source.service.devices();
        List<String> missing = new ArrayList<>();
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (Ctx c : s.contexts) {
            int d = c.device;
            if (d >= targetDevices.length) {
                missing.add("device " + d + " (" + target.id + " has " + targetDevices.length + ")");
                continue;
            }
            if (seen.add(d)) {
                long[] mem = new long[2];
                int rc = dst.memGetInfo(d, mem);
                long held = s.memoryOn(d);
                if (rc != CuResult.SUCCESS || mem[0] < held) {
                    missing.add(String.format("%.1f MiB free on device %d (it has %s, the session holds that much there)",
                            held / 1048576.0, d, rc == 0 ? String.format("%.1f MiB free", mem[0] / 1048576.0) : CuResult.name(rc)));
                }
            }
            int want = arch(targetDevices[d]);
            int had = d < sourceDevices.length ? arch(sourceDevices[d]) : 0;
            for (Module m : c.modules) {
                if (want == had) {
                    continue;
                }
                try {
                    ModuleImage again = s.router.images().parse(m.image.data, want);
                    if (runs(m.image, had) && !runs(again, want)) {
                        throw new ImageFormatException(ImageFormatException.Reason.NO_COMPATIBLE_CODE,
                                "its newest code is " + (again.ptx ? "compute_" : "sm_") + again.arch);
                    }
                    if (again.globalsSize != m.image.globalsSize || !m.functions.keySet().stream()
                            .allMatch(name -> again.kernel(name) != null)) {
                        missing.add("module " + Long.toHexString(m.handle) + " laid out alike for compute capability "
                                + cc(want));
                    } else {
                        images.put(m, again);
                    }
                } catch (ImageFormatException e) {
                    missing.add("code for compute capability " + cc(want) + " in module " + Long.toHexString(m.handle)
                            + " (loaded for " + cc(had) + ": " + e.getMessage() + ")");
                }
            }
        }
        if (!missing.isEmpty()) {
            images.clear();
            throw new Refusal(target.id + " lacks " + String.join("; ", missing));
        }
        // A pre-copy that turned into a stop-and-copy asks again, for what the session holds now.
        settleGuard(false);
        MigrationGuard g = s.guard;
        if (g != null) {
            String no = g.admit(source.id, target.id, EVACUATION.equals(rec.reason));
            if (no != null) {
                images.clear();
                throw new Refusal(no);
            }
            admitted = g;
        }
        return true;
    }

    /** Tells the guard that admitted this move how it ended; under the monitor. */
    private void settleGuard(boolean moved) {
        MigrationGuard g = admitted;
        admitted = null;
        if (g == null) {
            return;
        }
        try {
            if (moved) {
                g.moved(source.id, target.id);
            } else {
                g.abandoned(source.id, target.id);
            }
        } catch (RuntimeException e) {
            LOG.warn("session {}: the migration guard failed hearing the move {}: {}", s.id(), moved ? "ended" : "was dropped",
                    e.toString());
        }
    }

    /**
     * Whether a device of {@code arch} can run the image's code: PTX at or below it (what a
     * simulated device executes, and a driver compiles), or a cubin of the same major version at
     * or below it. The parser accepts newer code for its metadata alone; that does not count.
     */
    private static boolean runs(ModuleImage image, int arch) {
        return image.ptxSource != null || !image.ptx && image.arch <= arch && image.arch / 10 == arch / 10;
    }

    private static int arch(DeviceInfo d) {
        return d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) * 10
                + d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR);
    }

    private static String cc(int arch) {
        return arch / 10 + "." + arch % 10;
    }

    private void need(int rc, String what) throws Refusal {
        if (rc != CuResult.SUCCESS) {
            throw new Refusal(what + ": " + CuResult.name(rc));
        }
    }

    /** Between steps: the session ending or the target going away stops the migration. */
    private void still() throws Refusal {
        if (s.ending) {
            throw new Fatal("the session ended during the migration");
        }
        if (target.isLost()) {
            throw new Fatal("backend " + target.id + " went away during the migration");
        }
    }

    /** Whatever the source still has queued runs to its end first; its errors stop the migration. */
    private void drain() throws Refusal {
        for (Ctx c : s.contexts) {
            need(source.service.ctxSynchronize(c.backendCtx), source.id + " failed synchronizing a context before the copy");
        }
    }

    private boolean startTracking() {
        for (Ctx c : s.contexts) {
            if (!source.service.trackWrites(c.backendCtx, true)) {
                stopTracking();
                return false;
            }
            tracked.add(c.backendCtx);
        }
        return true;
    }

    private void stopTracking() {
        for (long c : tracked) {
            source.service.trackWrites(c, false);
        }
        tracked.clear();
    }

    private void buildMemory() throws Refusal {
        for (Ctx c : s.contexts) {
            long[] out = new long[1];
            need(dst.ctxCreate(c.device, c.flags, s.id(), out), target.id + " refused a context on device " + c.device);
            ctxs.put(c, out[0]);
        }
        for (Range r : s.ranges.values()) {
            if (r.mapping == null) {
                still();
                need(dst.memAlloc(ctxs.get(r.ctx), r.address, r.size),
                        String.format("%s refused %d bytes at 0x%x", target.id, r.size, r.address));
                regions.add(new Region(r.ctx, r.address, r.size));
            }
        }
        for (PhysicalMemory p : s.physical) {
            still();
            long[] out = new long[1];
            need(dst.memCreate(ctxs.get(p.ctx), p.size, out), target.id + " refused " + p.size + " bytes of physical memory");
            physical.put(p, out[0]);
            if (!p.released) {
                // The application may have written parts that are mapped nowhere now: map it all.
                long at = s.space().reserve(p.size, AddressSpace.LARGE_ALIGNMENT, 0);
                if (at == 0) {
                    throw new Refusal("no room in the device address window to copy " + p.size + " bytes of physical memory");
                }
                Scratch w = new Scratch(p, at);
                scratch.add(w);
                need(source.service.memMap(p.ctx.backendCtx, at, p.size, 0, p.backendHandle),
                        source.id + " refused to map physical memory for its copy");
                w.onSource = true;
                need(dst.memMap(ctxs.get(p.ctx), at, p.size, 0, out[0]),
                        target.id + " refused to map physical memory for its copy");
                w.onTarget = true;
                regions.add(new Region(p.ctx, at, p.size));
            }
        }
        for (Range r : s.ranges.values()) {
            if (r.mapping != null) {
                need(dst.memMap(ctxs.get(r.mapping.ctx), r.address, r.size, r.offset, physical.get(r.mapping)),
                        String.format("%s refused a mapping of %d bytes at 0x%x", target.id, r.size, r.address));
                if (r.mapping.released) {
                    // Released memory lives on only through its mappings: copy it through them.
                    regions.add(new Region(r.ctx, r.address, r.size));
                }
            }
        }
        for (PhysicalMemory p : s.physical) {
            if (p.released) {
                need(dst.memRelease(physical.get(p)), target.id + " refused to release mapped physical memory");
            }
        }
    }

    private void buildModules() throws Refusal {
        for (Ctx c : s.contexts) {
            for (Module m : c.modules) {
                still();
                long[] out = new long[1];
                need(dst.moduleLoad(ctxs.get(c), images.getOrDefault(m, m.image), m.globalsBase, out),
                        target.id + " refused a module");
                modules.put(m, out[0]);
                if (m.image.globalsSize > 0) {
                    regions.add(new Region(c, m.globalsBase, m.image.globalsSize));
                }
                for (Map.Entry<String, Long> f : m.functions.entrySet()) {
                    long[] fn = new long[1];
                    need(dst.functionGet(out[0], f.getKey(), fn), target.id + " has no function " + f.getKey());
                    functions.put(s.handles.get(HandleTable.FUNCTION, f.getValue(), Function.class), fn[0]);
                }
            }
        }
    }

    private void buildStreamsAndEvents() throws Refusal {
        for (Ctx c : s.contexts) {
            for (Stream st : c.streams) {
                long[] out = new long[1];
                need(dst.streamCreate(ctxs.get(c), st.flags, st.priority, out), target.id + " refused a stream");
                streams.put(st, out[0]);
            }
            for (Event e : c.events) {
                long[] out = new long[1];
                need(dst.eventCreate(ctxs.get(c), e.flags, out), target.id + " refused an event");
                events.put(e, out[0]);
                if (e.recorded) {
                    // The source drained: every recorded event there is complete, so it is here too.
                    need(dst.eventRecord(out[0], 0), target.id + " refused to record an event");
                }
            }
        }
    }

    /**
     * Copies every region: what the source says was written for regions not copied yet, and with
     * {@code changes} only what was written since the last round for the others. Returns the bytes
     * it moved. Outside the monitor ({@code changes} while the application runs), a piece that
     * fails marks its region for a full copy at the end instead of failing the migration.
     */
    private long copyRound(boolean concurrent) throws Refusal {
        long moved = 0;
        CudaService src = source.service;
        for (Region g : regions) {
            still();
            long srcCtx = g.ctx.backendCtx;
            boolean full = g.full;
            long[] parts = full ? src.writtenRanges(srcCtx, g.address, g.size) : src.takeDirtyRanges(srcCtx, g.address, g.size);
            if (parts == null) {
                parts = new long[] {g.address, g.size};
            }
            try {
                for (int i = 0; i + 1 < parts.length; i += 2) {
                    moved += copy(srcCtx, ctxs.get(g.ctx), parts[i], parts[i + 1]);
                }
                g.full = false;
            } catch (Fatal e) {
                throw e;
            } catch (Refusal e) {
                if (!concurrent) {
                    throw e;
                }
                g.full = true;
            }
        }
        awaitWrites();
        return moved;
    }

    /**
     * Copies in pieces through two bounce buffers: the next piece is read from the source while
     * the copy thread writes the last one to the target, so the two backends work at once.
     */
    private long copy(long srcCtx, long dstCtx, long address, long length) throws Refusal {
        for (long done = 0; done < length;) {
            still();
            int n = (int) Math.min(PIECE, length - done);
            long at = address + done;
            int k = turn;
            turn ^= 1;
            awaitWrite(k);
            if (bounces[k] == null) {
                bounces[k] = takeBounce();
            }
            ByteBuffer buf = bounces[k];
            buf.clear().limit(n);
            need(source.service.memcpyDtoH(srcCtx, buf, at, 0),
                    String.format("%s failed reading %d bytes at 0x%x", source.id, n, at));
            buf.flip();
            pendingWhat[k] = String.format("%s failed writing %d bytes at 0x%x", target.id, n, at);
            pending[k] = writer().submit(() -> dst.memcpyHtoD(dstCtx, at, buf, 0));
            rec.bytesMoved += n;
            done += n;
        }
        return length;
    }

    private java.util.concurrent.ExecutorService writer() {
        if (writer == null) {
            writer = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "vgpu-migrate-copy-" + s.id());
                t.setDaemon(true);
                return t;
            });
        }
        return writer;
    }

    /** Waits for the write from bounce buffer {@code k}; its failure is the target's, never the application's. */
    private void awaitWrite(int k) throws Refusal {
        java.util.concurrent.Future<Integer> f = pending[k];
        if (f == null) {
            return;
        }
        pending[k] = null;
        int rc;
        try {
            rc = f.get();
        } catch (java.util.concurrent.ExecutionException e) {
            throw new Fatal(pendingWhat[k] + ": " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Fatal("interrupted");
        }
        if (rc != CuResult.SUCCESS) {
            throw new Fatal(pendingWhat[k] + ": " + CuResult.name(rc));
        }
    }

    private void awaitWrites() throws Refusal {
        try {
            awaitWrite(0);
        } finally {
            awaitWrite(1);
        }
    }

    /** Ends the copy thread once nothing is left for it; failures of what it still ran do not matter any more. */
    private void stopWriter() {
        try {
            awaitWrites();
        } catch (Refusal ignored) {
            // the migration has failed already, or is failing for this very reason
        }
        if (writer != null) {
            writer.shutdown();
            writer = null;
        }
        for (int k = 0; k < bounces.length; k++) {
            if (bounces[k] != null && BOUNCES.size() < 4) {
                BOUNCES.offer(bounces[k]);
            }
            bounces[k] = null;
        }
    }

    /**
     * Bounce buffers outside the heap, kept for the next migration: a fresh 8 MiB heap array each
     * time is a humongous allocation, which starts a collection right in the pause.
     */
    private static final java.util.concurrent.ConcurrentLinkedQueue<ByteBuffer> BOUNCES =
            new java.util.concurrent.ConcurrentLinkedQueue<>();

    private static ByteBuffer takeBounce() {
        ByteBuffer b = BOUNCES.poll();
        return b != null ? b : ByteBuffer.allocateDirect(PIECE);
    }

    /** The last checks, then the swap (which cannot fail), then the source is released. */
    private void commit() throws Refusal {
        still();
        for (Scratch w : scratch) {
            need(dst.memUnmap(ctxs.get(w.memory.ctx), w.address, w.memory.size), target.id + " refused an unmap");
            w.onTarget = false;
        }
        dropScratch();
        stopTracking();
        Map<Ctx, Long> old = new IdentityHashMap<>();
        for (Map.Entry<Ctx, Long> e : ctxs.entrySet()) {
            Ctx c = e.getKey();
            old.put(c, c.backendCtx);
            c.backendCtx = e.getValue();
            c.attributes = targetDevices[c.device].attributes;
        }
        Map<PhysicalMemory, Long> oldPhysical = new IdentityHashMap<>();
        physical.forEach((p, h) -> {
            oldPhysical.put(p, p.backendHandle);
            p.backendHandle = h;
        });
        Map<Module, Long> oldModules = new IdentityHashMap<>();
        modules.forEach((m, h) -> {
            oldModules.put(m, m.backendModule);
            m.backendModule = h;
            m.image = images.getOrDefault(m, m.image);
        });
        functions.forEach((f, h) -> f.backendFunction = h);
        streams.forEach((st, h) -> st.backendStream = h);
        events.forEach((e, h) -> e.backendEvent = h);
        s.backend = target;
        settleGuard(true);
        try {
            releaseSource(old, oldPhysical, oldModules);
        } catch (RuntimeException e) {
            // The session runs on the target already: a source that throws only leaves its own leftovers.
            LOG.warn("session {}: {} failed releasing what the session left there", s.id(), source.id, e);
        }
    }

    /**
     * Gives back everything the session held on the source, one object at a time, before its
     * contexts go: a backend whose context destruction leaves something behind (a remote host
     * keeps physical handles, and counts them against the guest, until its link closes) holds
     * nothing of a session that moved away. The swap is done, so failures are only logged.
     */
    private void releaseSource(Map<Ctx, Long> ctx, Map<PhysicalMemory, Long> handles, Map<Module, Long> mods) {
        CudaService src = source.service;
        for (Range r : s.ranges.values()) {
            if (r.mapping != null) {
                released(src.memUnmap(ctx.get(r.mapping.ctx), r.address, r.size), "unmap 0x" + Long.toHexString(r.address));
            }
        }
        handles.forEach((p, h) -> {
            if (!p.released) {
                released(src.memRelease(h), "release " + p.size + " bytes of physical memory");
            }
        });
        for (Range r : s.ranges.values()) {
            if (r.mapping == null) {
                released(src.memFree(ctx.get(r.ctx), r.address), "free 0x" + Long.toHexString(r.address));
            }
        }
        mods.forEach((m, h) -> released(src.moduleUnload(h), "unload a module"));
        for (long c : ctx.values()) {
            released(src.ctxDestroy(c), "destroy a context");
        }
    }

    private void released(int rc, String what) {
        if (rc != CuResult.SUCCESS) {
            LOG.warn("session {}: {} failed to {} after the move: {}", s.id(), source.id, what, CuResult.name(rc));
        }
    }

    /** Unmaps the scratch windows on the source and gives their addresses back. */
    private void dropScratch() {
        for (Scratch w : scratch) {
            if (w.onSource) {
                int rc = source.service.memUnmap(w.memory.ctx.backendCtx, w.address, w.memory.size);
                if (rc != CuResult.SUCCESS) {
                    LOG.warn("session {}: {} failed to unmap a migration window: {}", s.id(), source.id, CuResult.name(rc));
                }
            }
            s.space().release(w.address, w.memory.size);
        }
        scratch.clear();
    }

    /** Releases all that was made on the target; the session is as it was. Holds the monitor. */
    private void rollback() {
        settleGuard(false);
        stopWriter();
        dropScratch();
        stopTracking();
        for (long c : ctxs.values()) {
            try {
                dst.ctxDestroy(c);
            } catch (RuntimeException e) {
                LOG.debug("session {}: releasing a context on {} after a failed migration: {}", s.id(), target.id, e.toString());
            }
        }
        ctxs.clear();
        physical.clear();
        modules.clear();
        functions.clear();
        streams.clear();
        events.clear();
        regions.clear();
    }
}
