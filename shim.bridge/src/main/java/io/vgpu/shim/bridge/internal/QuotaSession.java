package io.vgpu.shim.bridge.internal;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.Session;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A core session as the bridge serves it to a client that memory quotas apply to: every call that
 * allocates device memory ({@code MEM_ALLOC}, which {@code cuMemAlloc}, {@code cuMemAllocPitch}
 * and {@code cuMemAllocAsync} send; {@code MEM_CREATE}; a module's globals at {@code MODULE_LOAD}
 * and {@code MODULE_LOAD_CACHED}) is refused with {@code CUDA_ERROR_OUT_OF_MEMORY} when a quota has
 * no room for it, and the device's memory is reported as {@link MemoryQuotas} says (for
 * {@code MEM_GET_INFO}, which both cuMemGetInfo and NVML ask, and the total in {@code DEVICE_LIST}).
 * Everything else goes to the core unchanged.
 *
 * <p>What the session holds is the core's figure ({@link SessionInfo#deviceMemory}), read back after
 * every call that can change it in a way this class cannot see from the arguments alone (contexts
 * destroyed, modules, VMM memory released or unmapped); allocations and frees of linear memory,
 * the frequent ones, are counted from their sizes, exactly as the core counts them.
 */
final class QuotaSession implements Session {
    private static final Logger LOG = LoggerFactory.getLogger(QuotaSession.class);

    private final Session core;
    private final MemoryQuotas quotas;
    private final MemoryQuotas.Account account;
    private final String who;

    /** Device ordinal of each context this session created. */
    private final Map<Long, Integer> contextDevices = new HashMap<>();
    /** Linear allocations: address to {device, size, context}. */
    private final Map<Long, long[]> linear = new HashMap<>();
    private boolean refusalLogged;

    /**
     * The backend the session's memory counts on is the account's ({@link MemoryQuotas#backend}):
     * a migration moves it there, atomically with the holdings, through the guard the core asks.
     */
    QuotaSession(Session core, MemoryQuotas quotas, MemoryQuotas.Account account, String who) {
        this.core = core;
        this.quotas = quotas;
        this.account = account;
        this.who = who;
    }

    MemoryQuotas.Account account() {
        return account;
    }

    /**
     * Reads back what the core says the session holds; returns the quota it would exceed, if asked.
     * Read again when a migration ended between the read and the settling: the figures may be the
     * source's.
     */
    private MemoryQuotas.Quota settle(boolean onlyIfFits) {
        while (true) {
            long moves = quotas.moves(account);
            SessionInfo s = core.info();
            MemoryQuotas.Quota q = quotas.settle(account, moves, s.backend, s.deviceMemory, onlyIfFits);
            if (q != MemoryQuotas.STALE) {
                return q;
            }
        }
    }

    /** The core's backend for the session, which an account holding nothing follows. */
    private String bind() {
        while (true) {
            long moves = quotas.moves(account);
            String b = core.info().backend;
            if (quotas.bind(account, moves, b) != MemoryQuotas.STALE) {
                return b;
            }
        }
    }

    private MemoryQuotas.Device device(int ordinal) {
        return new MemoryQuotas.Device(quotas.backend(account), ordinal);
    }

    private int refuse(String what, long bytes, MemoryQuotas.Quota q, MemoryQuotas.Device d) {
        String text = "session {} ({}): {} of {} bytes on {} refused with CUDA_ERROR_OUT_OF_MEMORY: quota {} ({}) is full";
        if (!refusalLogged) {
            refusalLogged = true;
            LOG.info(text, id(), who, what, bytes, d, q.name, MemoryQuotas.mibText(q.limit));
        } else {
            LOG.debug(text, id(), who, what, bytes, d, q.name, MemoryQuotas.mibText(q.limit));
        }
        return CuResult.OUT_OF_MEMORY;
    }

    // ------------------------------------------------------------------ what the client is told

    @Override
    public DeviceInfo[] devices() {
        DeviceInfo[] devices = core.devices();
        DeviceInfo[] out = new DeviceInfo[devices.length];
        for (int i = 0; i < devices.length; i++) {
            out[i] = devices[i].copy();
            out[i].totalMemory = MemoryQuotas.total(account, devices[i].totalMemory);
        }
        return out;
    }

    @Override
    public int memGetInfo(int device, long[] freeAndTotal) {
        int rc = core.memGetInfo(device, freeAndTotal);
        if (rc == CuResult.SUCCESS) {
            // A session with a context stays on its backend; one without binds to the active
            // backend in the call just made, so ask the core which that is.
            String b = contextDevices.isEmpty() ? core.info().backend : quotas.backend(account);
            quotas.view(account, new MemoryQuotas.Device(b, device), freeAndTotal);
        }
        return rc;
    }

    // ------------------------------------------------------------------ what allocates

    @Override
    public int ctxCreate(int device, int flags, long[] ctx) {
        int rc = core.ctxCreate(device, flags, ctx);
        if (rc == CuResult.SUCCESS) {
            contextDevices.put(ctx[0], device);
            settle(false);
        }
        return rc;
    }

    @Override
    public int ctxDestroy(long ctx) {
        int rc = core.ctxDestroy(ctx);
        if (rc == CuResult.SUCCESS) {
            contextDevices.remove(ctx);
            linear.values().removeIf(a -> a[2] == ctx);
            settle(false);
        }
        return rc;
    }

    @Override
    public int memAlloc(long ctx, long size, long[] address) {
        Integer device = contextDevices.get(ctx);
        if (device == null || size <= 0 || quotas.backend(account) == null) {
            // The core refuses it (unknown context, bad size); read back in case it did not.
            int rc = core.memAlloc(ctx, size, address);
            if (rc == CuResult.SUCCESS) {
                settle(false);
            }
            return rc;
        }
        MemoryQuotas.Quota full = quotas.charge(account, device, size);
        if (full != null) {
            return refuse("cuMemAlloc", size, full, device(device));
        }
        int rc = core.memAlloc(ctx, size, address);
        if (rc == CuResult.SUCCESS) {
            linear.put(address[0], new long[] {device, size, ctx});
        } else {
            quotas.uncharge(account, device, size);
        }
        return rc;
    }

    @Override
    public int memFree(long ctx, long address) {
        int rc = core.memFree(ctx, address);
        if (rc == CuResult.SUCCESS) {
            long[] a = linear.remove(address);
            if (a != null) {
                quotas.uncharge(account, (int) a[0], a[1]);
            } else {
                settle(false);
            }
        }
        return rc;
    }

    @Override
    public int memCreate(int device, long size, long[] handle) {
        if (bind() == null || size <= 0) {
            int rc = core.memCreate(device, size, handle);
            settle(false);
            return rc;
        }
        MemoryQuotas.Quota full = quotas.charge(account, device, size);
        if (full != null) {
            return refuse("cuMemCreate", size, full, device(device));
        }
        int rc = core.memCreate(device, size, handle);
        if (rc != CuResult.SUCCESS) {
            quotas.uncharge(account, device, size);
        }
        return rc;
    }

    @Override
    public int memRelease(long handle) {
        int rc = core.memRelease(handle);
        if (rc == CuResult.SUCCESS) {
            settle(false);
        }
        return rc;
    }

    @Override
    public int memUnmap(long address, long size) {
        int rc = core.memUnmap(address, size);
        if (rc == CuResult.SUCCESS) {
            settle(false);
        }
        return rc;
    }

    @Override
    public int moduleLoad(long ctx, byte[] image, long[] module) {
        return loaded(ctx, core.moduleLoad(ctx, image, module), module);
    }

    @Override
    public int moduleLoadCached(long ctx, byte[] sha256, long[] module) {
        return loaded(ctx, core.moduleLoadCached(ctx, sha256, module), module);
    }

    /**
     * A module's globals are device memory, and only the core knows their size: the load is kept
     * only if it fits every quota, else unloaded again (no other session ever sees it counted).
     */
    private int loaded(long ctx, int rc, long[] module) {
        if (rc != CuResult.SUCCESS) {
            return rc;
        }
        long before = held();
        MemoryQuotas.Quota full = settle(true);
        if (full == null) {
            return rc;
        }
        SessionInfo s = core.info();
        long globals = sum(s.deviceMemory) - before;
        core.moduleUnload(module[0]);
        module[0] = 0;
        settle(false);
        return refuse("cuModuleLoad (its globals)", globals, full,
                new MemoryQuotas.Device(s.backend, contextDevices.getOrDefault(ctx, 0)));
    }

    private long held() {
        synchronized (quotas) {
            long sum = 0;
            for (long v : account.held.values()) {
                sum += v;
            }
            return sum;
        }
    }

    private static long sum(long[] values) {
        long sum = 0;
        for (long v : values) {
            sum += v;
        }
        return sum;
    }

    @Override
    public int moduleUnload(long module) {
        int rc = core.moduleUnload(module);
        if (rc == CuResult.SUCCESS) {
            settle(false);
        }
        return rc;
    }

    /** From any thread (the bridge's watcher, a stopping service): the core stops the running request. */
    @Override
    public void abandon() {
        core.abandon();
    }

    @Override
    public void close() {
        try {
            core.close();
        } finally {
            quotas.close(account);
        }
    }

    // ------------------------------------------------------------------ unchanged

    @Override
    public long id() {
        return core.id();
    }

    @Override
    public SessionInfo info() {
        return core.info();
    }

    @Override
    public int check() {
        return core.check();
    }

    @Override
    public int driverVersion() {
        return core.driverVersion();
    }

    @Override
    public long[] addressWindow() {
        return core.addressWindow();
    }

    @Override
    public int ctxSynchronize(long ctx) {
        return core.ctxSynchronize(ctx);
    }

    @Override
    public int memGetAddressRange(long address, long[] baseAndSize) {
        return core.memGetAddressRange(address, baseAndSize);
    }

    @Override
    public int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream) {
        return core.memcpyHtoD(ctx, dst, src, stream);
    }

    @Override
    public int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream) {
        return core.memcpyDtoH(ctx, dst, src, stream);
    }

    @Override
    public int memcpyDtoD(long ctx, long dst, long src, long size, long stream) {
        return core.memcpyDtoD(ctx, dst, src, size, stream);
    }

    @Override
    public int memset(long ctx, long dst, int value, int elementSize, long count, long stream) {
        return core.memset(ctx, dst, value, elementSize, count, stream);
    }

    @Override
    public int memAddressReserve(long size, long alignment, long hint, long[] address) {
        return core.memAddressReserve(size, alignment, hint, address);
    }

    @Override
    public int memAddressFree(long address, long size) {
        return core.memAddressFree(address, size);
    }

    @Override
    public int memMap(long address, long size, long offset, long handle) {
        return core.memMap(address, size, offset, handle);
    }

    @Override
    public int functionGet(long module, String name, long[] function, KernelInfo[] info) {
        return core.functionGet(module, name, function, info);
    }

    @Override
    public int functionGetAttribute(long function, int attribute, int[] value) {
        return core.functionGetAttribute(function, attribute, value);
    }

    @Override
    public int globalGet(long module, String name, long[] addressAndSize) {
        return core.globalGet(module, name, addressAndSize);
    }

    @Override
    public int launch(long function, LaunchConfig config, ByteBuffer params, long stream) {
        return core.launch(function, config, params, stream);
    }

    @Override
    public int streamCreate(long ctx, int flags, int priority, long[] stream) {
        return core.streamCreate(ctx, flags, priority, stream);
    }

    @Override
    public int streamDestroy(long stream) {
        return core.streamDestroy(stream);
    }

    @Override
    public int streamSynchronize(long stream) {
        return core.streamSynchronize(stream);
    }

    @Override
    public int streamQuery(long stream) {
        return core.streamQuery(stream);
    }

    @Override
    public int streamWaitEvent(long stream, long event) {
        return core.streamWaitEvent(stream, event);
    }

    @Override
    public int eventCreate(long ctx, int flags, long[] event) {
        return core.eventCreate(ctx, flags, event);
    }

    @Override
    public int eventDestroy(long event) {
        return core.eventDestroy(event);
    }

    @Override
    public int eventRecord(long event, long stream) {
        return core.eventRecord(event, stream);
    }

    @Override
    public int eventQuery(long event) {
        return core.eventQuery(event);
    }

    @Override
    public int eventSynchronize(long event) {
        return core.eventSynchronize(event);
    }

    @Override
    public int eventElapsedTime(long start, long end, float[] millis) {
        return core.eventElapsedTime(start, end, millis);
    }
}
