package io.vgpu.backend.passthrough;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.backend.passthrough.internal.Driver;
import io.vgpu.backend.passthrough.internal.DriverLocator;
import io.vgpu.backend.passthrough.internal.MemAccess;
import io.vgpu.backend.passthrough.internal.ServiceProbe;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmemAllocationGranularity_flags;
import jcuda.driver.CUmemAllocationProp;
import jcuda.driver.CUmemAllocationType;
import jcuda.driver.CUmemGenericAllocationHandle;
import jcuda.driver.CUmemLocation;
import jcuda.driver.CUmemLocationType;
import jcuda.driver.CUmemAccess_flags;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUuuid;
import jcuda.driver.JCudaDriver;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This machine's NVIDIA GPUs through the real driver (JCuda), at the addresses the core chooses:
 * the core's address window is reserved on the GPU at activation, and every allocation is
 * physical memory mapped there (VMM), so device pointers are the same here as on every backend.
 *
 * <p>Each context the core creates is a driver context of its own (faults and the legacy default
 * stream stay per client). The driver shares one address space among them, so which owner may
 * reach which range is this class's bookkeeping: copies and memsets outside the owner's
 * allocations are refused, as on the mock; kernels, which run on the GPU, are not confined.
 */
@Component(service = CudaService.class, configurationPid = PassthroughBackend.PID, configurationPolicy = ConfigurationPolicy.OPTIONAL,
        property = CudaService.BACKEND_ID + "=passthrough")
@Designate(ocd = PassthroughBackend.Config.class)
public class PassthroughBackend implements CudaService {
    public static final String PID = "io.vgpu.backend.passthrough";
    private static final Logger LOG = LoggerFactory.getLogger(PassthroughBackend.class);

    @ObjectClassDefinition(name = "vgpu passthrough backend", description = "The local NVIDIA GPU")
    public @interface Config {
        @AttributeDefinition(description = "backend.id this instance registers under")
        String backend_id() default "passthrough";

        @AttributeDefinition(description = "Absolute path of NVIDIA's libcuda.so.1; empty searches the usual driver locations")
        String driver_library() default "";

        @AttributeDefinition(description = "Directories to search (comma separated); empty: the usual ones, LD_LIBRARY_PATH, /etc/ld.so.conf.d")
        String driver_search() default "";

        @AttributeDefinition(description = "Allow vgpu's own shim as the driver; only where its VGPU_SOCKET is another vgpu service")
        boolean driver_allow_vgpu() default false;

        @AttributeDefinition(description = "Base of the device address window to reserve (the core's: 0x200000000000)")
        String window_base() default "0x200000000000";

        @AttributeDefinition(description = "Size of that window in bytes (the core's: 16 TiB)")
        String window_size() default "0x100000000000";
    }

    private static final class Ctx {
        final long id;
        final int device;
        final long owner;
        final CUcontext cu;

        Ctx(long id, int device, long owner, CUcontext cu) {
            this.id = id;
            this.device = device;
            this.owner = owner;
            this.cu = cu;
        }
    }

    /** Physical memory mapped at one stretch of the window for linear allocations (granule-rounded). */
    private static final class Run {
        final long address;
        final long size;
        final CUmemGenericAllocationHandle handle;
        int refs;

        Run(long address, long size, CUmemGenericAllocationHandle handle) {
            this.address = address;
            this.size = size;
            this.handle = handle;
        }
    }

    /** What an owner may reach: a linear allocation or a VMM mapping. */
    private static final class Range {
        final long address;
        final long size;
        final Ctx ctx;
        final boolean mapping;

        Range(long address, long size, Ctx ctx, boolean mapping) {
            this.address = address;
            this.size = size;
            this.ctx = ctx;
            this.mapping = mapping;
        }

        long end() {
            return address + size;
        }
    }

    private static final class Phys {
        final Ctx ctx;
        final CUmemGenericAllocationHandle handle;

        Phys(Ctx ctx, CUmemGenericAllocationHandle handle) {
            this.ctx = ctx;
            this.handle = handle;
        }
    }

    private static final class Module {
        final Ctx ctx;
        final CUmodule cu;
        final ModuleImage image;
        final long globalsBase;
        /** Where the driver put each global the image declares (offset in the core's region → address). */
        final Map<GlobalInfo, Long> globals = new HashMap<>();

        Module(Ctx ctx, CUmodule cu, ModuleImage image, long globalsBase) {
            this.ctx = ctx;
            this.cu = cu;
            this.image = image;
            this.globalsBase = globalsBase;
        }
    }

    private record Function(Module module, CUfunction cu, KernelInfo kernel) {}

    private record Stream(Ctx ctx, CUstream cu) {}

    private record Event(Ctx ctx, CUevent cu) {}

    private static final long RETRY_MS = 1000;
    private volatile BackendInfo info = unavailable("not activated");
    /** Set when vgpu's shim's service did not answer: worth asking again. */
    private volatile boolean retry;
    private volatile boolean waitLogged;
    private Thread retrier;
    private String id = "passthrough";
    private DeviceInfo[] devices = new DeviceInfo[0];
    private CUcontext[] primary = new CUcontext[0];
    private long windowBase;
    private long windowSize;
    private boolean windowReserved;
    /** The core's window (base, size) as it last announced it; null until it does. */
    private volatile long[] coreWindow;
    private long granularity;

    private final AtomicLong nextHandle = new AtomicLong(1);
    private final Map<Long, Ctx> contexts = new ConcurrentHashMap<>();
    private final Map<Long, Stream> streams = new ConcurrentHashMap<>();
    private final Map<Long, Event> events = new ConcurrentHashMap<>();
    private final Map<Long, Module> modules = new ConcurrentHashMap<>();
    private final Map<Long, Function> functions = new ConcurrentHashMap<>();
    private final Map<Long, Phys> physical = new ConcurrentHashMap<>();
    /** Guards {@link #ranges} and {@link #runs}. */
    private final Object memory = new Object();
    private final TreeMap<Long, Range> ranges = new TreeMap<>();
    private final TreeMap<Long, Run> runs = new TreeMap<>();
    /** Launch parameters are read by the driver during cuLaunchKernel: one buffer per calling thread. */
    private final ThreadLocal<ByteBuffer> paramBuffer = ThreadLocal
            .withInitial(() -> ByteBuffer.allocateDirect(4096).order(ByteOrder.LITTLE_ENDIAN));

    public PassthroughBackend() {}

    /** For tests outside a framework. */
    public PassthroughBackend(Config config) {
        activate(config);
    }

    @Activate
    void activate(Config config) {
        id = config.backend_id();
        String reason = bring_up(config);
        if (reason != null) {
            info = unavailable(reason);
            LOG.info("passthrough backend {} unavailable: {}", id, reason);
        }
        if (reason != null && retry) {
            // The shim's service may not listen yet (this very service opens its socket after
            // its backends activate): ask again until it answers.
            retrier = new Thread(() -> {
                while (retry && !Thread.currentThread().isInterrupted()) {
                    try {
                        Thread.sleep(RETRY_MS);
                    } catch (InterruptedException e) {
                        return;
                    }
                    retry = false;
                    String r = bring_up(config);
                    if (r != null) {
                        info = unavailable(r);
                        if (!retry) {
                            LOG.info("passthrough backend {} unavailable: {}", id, r);
                        }
                    }
                    // bring_up logs its own success.
                }
            }, "vgpu-passthrough-" + id);
            retrier.setDaemon(true);
            retrier.start();
        }
    }

    private String bring_up(Config config) {
        try {
            windowBase = Long.decode(config.window_base().trim());
            windowSize = Long.decode(config.window_size().trim());
        } catch (NumberFormatException e) {
            return "window.base / window.size are not numbers: " + e.getMessage();
        }
        List<String> dirs = config.driver_search().isBlank() ? DriverLocator.defaultDirectories()
                : Arrays.stream(config.driver_search().split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        DriverLocator.Found found = DriverLocator.locate(config.driver_library(), dirs, config.driver_allow_vgpu());
        if (found.library == null) {
            return found.reason;
        }
        String via = found.library.toString();
        if (found.vgpu) {
            String loop = loopCheck(found.library);
            if (loop != null) {
                return loop;
            }
            via = "vgpu's shim to " + ServiceProbe.shimSocket();
        }
        String failure = Driver.bind(found.library);
        if (failure != null) {
            return failure;
        }
        String r = openDevices();
        if (r != null) {
            return r;
        }
        r = reserveWindow();
        if (r != null) {
            return r;
        }
        int[] version = new int[1];
        JCudaDriver.cuDriverGetVersion(version);
        BackendInfo b = new BackendInfo();
        b.id = id;
        b.available = true;
        // What `vgpu backends` shows (its first 127 bytes): the cards first.
        b.description = String.join(", ", Arrays.stream(devices).map(d -> d.name).toList()) + ", CUDA " + version[0] / 1000 + "."
                + version[0] % 1000 / 10 + ", through " + via;
        info = b;
        LOG.info("passthrough backend {} up: {} ({} device(s)); window 0x{} (+{} GiB) reserved on the GPU", id, b.description, devices.length,
                Long.toHexString(windowBase), windowSize >> 30);
        checkCoreWindow();
        return null;
    }

    /**
     * vgpu's shim sends this process's calls to the service at its socket: refused when that
     * service is this process (the work would come back here, without end).
     */
    private String loopCheck(Path shim) {
        Path socket = ServiceProbe.shimSocket();
        ServiceProbe.Identity there;
        try {
            there = ServiceProbe.identify(socket);
        } catch (IOException e) {
            if (!waitLogged) {
                waitLogged = true;
                LOG.info("vgpu's shim {} would talk to {}, whose service does not say which it is ({}); asking again every {} ms",
                        shim, socket, e.getMessage(), RETRY_MS);
            }
            retry = true;
            return "vgpu's shim: the service at its socket does not say which it is (" + e.getMessage() + ") " + socket;
        }
        ServiceProbe.Identity self = ServiceProbe.Identity.self();
        if (there.equals(self)) {
            LOG.warn("vgpu's shim {} talks to {}, which is this service ({}): refusing to loop", shim, socket, self);
            return "refusing to loop: vgpu's shim would call this service back at " + socket;
        }
        LOG.info("vgpu's shim {} talks to {}, another vgpu service ({})", shim, socket, there);
        return null;
    }

    private String openDevices() {
        int[] count = new int[1];
        int rc = JCudaDriver.cuDeviceGetCount(count);
        if (rc != 0 || count[0] == 0) {
            return rc != 0 ? "cuDeviceGetCount: " + name(rc) : "the driver reports no device";
        }
        DeviceInfo[] devs = new DeviceInfo[count[0]];
        CUcontext[] ctxs = new CUcontext[count[0]];
        for (int i = 0; i < count[0]; i++) {
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, i);
            DeviceInfo d = new DeviceInfo();
            d.ordinal = i;
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int n = 0;
            while (n < name.length && name[n] != 0) {
                n++;
            }
            d.name = new String(name, 0, n, StandardCharsets.UTF_8);
            CUuuid uuid = new CUuuid();
            JCudaDriver.cuDeviceGetUuid(uuid, dev);
            d.uuid = uuid.bytes != null && uuid.bytes.length == 16 ? uuid.bytes.clone() : new byte[16];
            long[] total = new long[1];
            JCudaDriver.cuDeviceTotalMem(total, dev);
            d.totalMemory = total[0];
            d.attributes = new int[CuDeviceAttribute.MAX];
            int[] v = new int[1];
            for (int a = 1; a < CuDeviceAttribute.MAX; a++) {
                // Attributes the driver does not know (newer than it) stay 0.
                if (JCudaDriver.cuDeviceGetAttribute(v, a, dev) == 0) {
                    d.attributes[a] = v[0];
                }
            }
            ctxs[i] = new CUcontext();
            rc = JCudaDriver.cuDevicePrimaryCtxRetain(ctxs[i], dev);
            if (rc != 0) {
                return "cuDevicePrimaryCtxRetain(" + i + "): " + name(rc);
            }
            devs[i] = d;
        }
        devices = devs;
        primary = ctxs;
        return null;
    }

    private String reserveWindow() {
        JCudaDriver.cuCtxSetCurrent(primary[0]);
        long[] g = new long[1];
        int rc = JCudaDriver.cuMemGetAllocationGranularity(g, prop(0), CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM);
        if (rc != 0 || g[0] <= 0 || Long.bitCount(g[0]) != 1) {
            return "cuMemGetAllocationGranularity: " + (rc != 0 ? name(rc) : g[0] + " is not a power of two");
        }
        granularity = g[0];
        if (windowBase % granularity != 0 || windowSize % granularity != 0 || windowSize <= 0) {
            return "the window 0x" + Long.toHexString(windowBase) + " +0x" + Long.toHexString(windowSize)
                    + " is not aligned to the GPU's granularity " + granularity;
        }
        Driver.Out at = new Driver.Out();
        rc = JCudaDriver.cuMemAddressReserve(at, windowSize, 0, Driver.ptr(windowBase), 0);
        if (rc != 0) {
            return "cannot reserve the core's address window 0x" + Long.toHexString(windowBase) + " (+" + (windowSize >> 30)
                    + " GiB) on the GPU: " + name(rc);
        }
        if (at.address() != windowBase) {
            JCudaDriver.cuMemAddressFree(Driver.ptr(at.address()), windowSize);
            return "the driver would reserve the core's address window only at 0x" + Long.toHexString(at.address())
                    + ", not at 0x" + Long.toHexString(windowBase) + ": device pointers could not stay identical";
        }
        windowReserved = true;
        return null;
    }

    @Deactivate
    public void deactivate() {
        retry = false;
        if (retrier != null) {
            retrier.interrupt();
            try {
                retrier.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (Ctx c : new ArrayList<>(contexts.values())) {
            ctxDestroy(c.id);
        }
        if (windowReserved) {
            JCudaDriver.cuMemAddressFree(Driver.ptr(windowBase), windowSize);
            windowReserved = false;
        }
        for (int i = 0; i < primary.length; i++) {
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, i);
            JCudaDriver.cuDevicePrimaryCtxRelease(dev);
        }
        primary = new CUcontext[0];
        devices = new DeviceInfo[0];
        info = unavailable("deactivated");
    }

    private BackendInfo unavailable(String reason) {
        BackendInfo b = new BackendInfo();
        b.id = id;
        b.available = false;
        b.reason = reason;
        b.description = "the local NVIDIA GPU (unavailable)";
        return b;
    }

    private static String name(int rc) {
        return jcuda.driver.CUresult.stringFor(rc) + " (" + rc + ")";
    }

    private static CUmemAllocationProp prop(int device) {
        CUmemAllocationProp p = new CUmemAllocationProp();
        p.type = CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED;
        p.location = new CUmemLocation(CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE, device);
        return p;
    }

    private boolean up() {
        return info.available;
    }

    @Override
    public BackendInfo info() {
        return info;
    }

    @Override
    public DeviceInfo[] devices() {
        if (!up()) {
            return new DeviceInfo[0];
        }
        DeviceInfo[] out = new DeviceInfo[devices.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = devices[i].copy();
        }
        return out;
    }

    @Override
    public int memGetInfo(int device, long[] out) {
        if (!up()) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (device < 0 || device >= primary.length) {
            return CuResult.INVALID_DEVICE;
        }
        JCudaDriver.cuCtxSetCurrent(primary[device]);
        long[] free = new long[1];
        long[] total = new long[1];
        int rc = JCudaDriver.cuMemGetInfo(free, total);
        out[0] = free[0];
        out[1] = total[0];
        return rc;
    }

    // --- contexts

    @Override
    public int ctxCreate(int device, int flags, long owner, long[] ctx) {
        if (!up()) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        if (device < 0 || device >= devices.length) {
            return CuResult.INVALID_DEVICE;
        }
        CUdevice dev = new CUdevice();
        JCudaDriver.cuDeviceGet(dev, device);
        CUcontext cu = new CUcontext();
        int rc = JCudaDriver.cuCtxCreate(cu, flags, dev);
        if (rc != 0) {
            return rc;
        }
        // cuCtxCreate leaves the new context current on this thread; every call sets its own.
        JCudaDriver.cuCtxPopCurrent(new CUcontext());
        Ctx c = new Ctx(nextHandle.getAndIncrement(), device, owner, cu);
        contexts.put(c.id, c);
        ctx[0] = c.id;
        return CuResult.SUCCESS;
    }

    /** The context of {@code handle}, current on this thread; null if there is none. */
    private Ctx enter(long handle) {
        Ctx c = contexts.get(handle);
        if (c != null) {
            JCudaDriver.cuCtxSetCurrent(c.cu);
        }
        return c;
    }

    @Override
    public int ctxDestroy(long handle) {
        Ctx c = enter(handle);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        JCudaDriver.cuCtxSynchronize();
        streams.values().removeIf(s -> {
            if (s.ctx == c) {
                JCudaDriver.cuStreamDestroy(s.cu);
                return true;
            }
            return false;
        });
        events.values().removeIf(e -> {
            if (e.ctx == c) {
                JCudaDriver.cuEventDestroy(e.cu);
                return true;
            }
            return false;
        });
        functions.values().removeIf(f -> f.module.ctx == c);
        modules.values().removeIf(m -> {
            if (m.ctx == c) {
                JCudaDriver.cuModuleUnload(m.cu);
                return true;
            }
            return false;
        });
        synchronized (memory) {
            for (Range r : new ArrayList<>(ranges.values())) {
                if (r.ctx == c) {
                    if (r.mapping) {
                        JCudaDriver.cuMemUnmap(Driver.ptr(r.address), r.size);
                        ranges.remove(r.address);
                    } else {
                        freeRange(r);
                    }
                }
            }
        }
        physical.values().removeIf(p -> {
            if (p.ctx == c) {
                JCudaDriver.cuMemRelease(p.handle);
                return true;
            }
            return false;
        });
        contexts.remove(handle);
        JCudaDriver.cuCtxSetCurrent(primary[c.device]);
        return JCudaDriver.cuCtxDestroy(c.cu);
    }

    @Override
    public int ctxSynchronize(long handle) {
        return enter(handle) == null ? CuResult.INVALID_CONTEXT : JCudaDriver.cuCtxSynchronize();
    }

    // --- memory

    @Override
    public void addressWindow(long base, long size) {
        coreWindow = new long[] {base, size};
        checkCoreWindow();
    }

    /**
     * The core's addresses must lie in the window reserved on the GPU: say so at once when the
     * router's window.base/window.size and this backend's differ, not at the first allocation.
     */
    private void checkCoreWindow() {
        long[] w = coreWindow;
        if (w != null && windowReserved && !inWindow(w[0], w[1])) {
            LOG.warn("passthrough backend {}: the core's address window 0x{} (+{} GiB) is not inside the window reserved on the GPU,"
                    + " 0x{} (+{} GiB): allocations outside it answer CUDA_ERROR_INVALID_VALUE; set window.base and window.size"
                    + " in io.vgpu.backend.passthrough.cfg to the router's", id, Long.toHexString(w[0]), w[1] >> 30,
                    Long.toHexString(windowBase), windowSize >> 30);
        }
    }

    private boolean inWindow(long address, long size) {
        return size > 0 && address >= windowBase && address - windowBase <= windowSize
                && size <= windowSize - (address - windowBase);
    }

    /** True when [address, address+size) touches no range anyone holds (under {@link #memory}). */
    private boolean vacant(long address, long size) {
        Map.Entry<Long, Range> below = ranges.lowerEntry(address + size);
        return below == null || below.getValue().end() <= address;
    }

    @Override
    public int memAlloc(long ctx, long address, long size) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (!inWindow(address, size)) {
            return CuResult.INVALID_VALUE;
        }
        long[] free = new long[2];
        if (memGetInfo(c.device, free) == 0 && size > free[0]) {
            return CuResult.OUT_OF_MEMORY;
        }
        JCudaDriver.cuCtxSetCurrent(c.cu);
        long start = address & -granularity;
        long end = (address + size + granularity - 1) & -granularity;
        synchronized (memory) {
            if (!vacant(address, size)) {
                return CuResult.INVALID_VALUE;
            }
            // Small allocations share granules: map only the stretches no run covers yet.
            List<Run> created = new ArrayList<>();
            long at = start;
            while (at < end) {
                Map.Entry<Long, Run> e = runs.floorEntry(at);
                if (e != null && e.getValue().address + e.getValue().size > at) {
                    at = e.getValue().address + e.getValue().size;
                    continue;
                }
                Long next = runs.higherKey(at);
                long gapEnd = next == null ? end : Math.min(end, next);
                Run r = new Run(at, gapEnd - at, new CUmemGenericAllocationHandle());
                int rc = mapPhysical(c.device, r);
                if (rc != 0) {
                    for (Run x : created) {
                        unmapRun(x);
                    }
                    return rc;
                }
                created.add(r);
                runs.put(r.address, r);
                at = gapEnd;
            }
            for (Run r : runsOver(start, end)) {
                r.refs++;
            }
            ranges.put(address, new Range(address, size, c, false));
        }
        return CuResult.SUCCESS;
    }

    /** The runs that overlap [start, end) (under {@link #memory}). */
    private java.util.Collection<Run> runsOver(long start, long end) {
        Long from = runs.floorKey(start);
        return runs.subMap(from == null ? start : from, true, end, false).values();
    }

    private int mapPhysical(int device, Run r) {
        int rc = JCudaDriver.cuMemCreate(r.handle, r.size, prop(device), 0);
        if (rc != 0) {
            return rc;
        }
        rc = JCudaDriver.cuMemMap(Driver.ptr(r.address), r.size, 0, r.handle, 0);
        if (rc == 0) {
            rc = grant(device, r.address, r.size);
            if (rc != 0) {
                JCudaDriver.cuMemUnmap(Driver.ptr(r.address), r.size);
            }
        }
        if (rc != 0) {
            JCudaDriver.cuMemRelease(r.handle);
        }
        return rc;
    }

    private static int grant(int device, long address, long size) {
        return MemAccess.setAccess(address, size, device, CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    }

    private void unmapRun(Run r) {
        JCudaDriver.cuMemUnmap(Driver.ptr(r.address), r.size);
        JCudaDriver.cuMemRelease(r.handle);
        runs.remove(r.address);
    }

    /** Drops a linear allocation and the runs only it used (under {@link #memory}, its context current). */
    private void freeRange(Range a) {
        ranges.remove(a.address);
        long start = a.address & -granularity;
        long end = (a.end() + granularity - 1) & -granularity;
        List<Run> drop = new ArrayList<>();
        for (Run r : runsOver(start, end)) {
            if (--r.refs == 0) {
                drop.add(r);
            }
        }
        if (!drop.isEmpty()) {
            // Unmapping memory a kernel still uses is undefined: let the context's work finish.
            JCudaDriver.cuCtxSynchronize();
            drop.forEach(this::unmapRun);
        }
    }

    @Override
    public int memFree(long ctx, long address) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        synchronized (memory) {
            Range r = ranges.get(address);
            if (r == null || r.mapping || r.ctx.owner != c.owner) {
                return CuResult.INVALID_VALUE;
            }
            freeRange(r);
        }
        return CuResult.SUCCESS;
    }

    /**
     * The GPU address of [address, address+length) for {@code c}'s owner, or -1: inside its
     * allocations and mappings (contiguous ones may be crossed), or inside one global of its modules,
     * which live where the driver put them rather than where the core placed their region.
     */
    private long resolve(Ctx c, long address, long length) {
        if (length <= 0 || address + length < address) {
            return length == 0 ? address : -1;
        }
        synchronized (memory) {
            long at = address;
            Map.Entry<Long, Range> e = ranges.floorEntry(at);
            while (e != null && e.getValue().ctx.owner == c.owner && e.getValue().end() > at) {
                at = e.getValue().end();
                if (at >= address + length) {
                    return address;
                }
                e = ranges.floorEntry(at);
            }
        }
        for (Module m : modules.values()) {
            if (m.ctx.owner != c.owner || address < m.globalsBase || address - m.globalsBase >= m.image.globalsSize) {
                continue;
            }
            for (Map.Entry<GlobalInfo, Long> g : m.globals.entrySet()) {
                long off = address - m.globalsBase - g.getKey().offset;
                if (off >= 0 && off < g.getKey().size && length <= g.getKey().size - off) {
                    return g.getValue() + off;
                }
            }
        }
        return -1;
    }

    private CUstream stream(long handle) {
        if (handle == 0) {
            return null; // the legacy default stream of the current context
        }
        Stream s = streams.get(handle);
        return s == null ? null : s.cu;
    }

    private boolean knownStream(long handle) {
        return handle == 0 || streams.containsKey(handle);
    }

    /** A pointer JCuda reads at {@code b}'s position; heap buffers are addressed through their array. */
    private static Pointer host(ByteBuffer b) {
        if (!b.isDirect() && !b.hasArray()) {
            return host(direct(b)); // read-only heap bytes
        }
        return b.isDirect() ? Pointer.to(b.slice()) : Pointer.to(b.array()).withByteOffset(b.arrayOffset() + b.position());
    }

    @Override
    public int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        int n = src.remaining();
        long to = resolve(c, dst, n);
        if (to < 0 || !knownStream(stream)) {
            return to < 0 ? CuResult.INVALID_VALUE : CuResult.INVALID_HANDLE;
        }
        int rc = stream == 0 ? JCudaDriver.cuMemcpyHtoD(Driver.ptr(to), host(src), n)
                : JCudaDriver.cuMemcpyHtoDAsync(Driver.ptr(to), host(direct(src)), n, stream(stream));
        if (rc == 0) {
            src.position(src.position() + n);
        }
        return rc;
    }

    /** Async copies need memory that does not move: heap bytes go through a direct copy. */
    private static ByteBuffer direct(ByteBuffer b) {
        if (b.isDirect()) {
            return b;
        }
        ByteBuffer d = ByteBuffer.allocateDirect(b.remaining());
        d.put(b.duplicate()).flip();
        return d;
    }

    @Override
    public int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        int n = dst.remaining();
        long from = resolve(c, src, n);
        if (from < 0 || !knownStream(stream)) {
            return from < 0 ? CuResult.INVALID_VALUE : CuResult.INVALID_HANDLE;
        }
        int rc;
        if (stream == 0 || dst.isDirect()) {
            rc = stream == 0 ? JCudaDriver.cuMemcpyDtoH(host(dst), Driver.ptr(from), n)
                    : JCudaDriver.cuMemcpyDtoHAsync(host(dst), Driver.ptr(from), n, stream(stream));
            // Into pageable memory the async form returns once the bytes are there.
        } else {
            ByteBuffer d = ByteBuffer.allocateDirect(n);
            rc = JCudaDriver.cuMemcpyDtoHAsync(host(d), Driver.ptr(from), n, stream(stream));
            if (rc == 0) {
                rc = JCudaDriver.cuStreamSynchronize(stream(stream));
                dst.duplicate().put(d);
            }
        }
        if (rc == 0) {
            dst.position(dst.position() + n);
        }
        return rc;
    }

    @Override
    public int memcpyDtoD(long ctx, long dst, long src, long size, long stream) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        long to = resolve(c, dst, size);
        long from = resolve(c, src, size);
        if (to < 0 || from < 0 || !knownStream(stream)) {
            return to < 0 || from < 0 ? CuResult.INVALID_VALUE : CuResult.INVALID_HANDLE;
        }
        return JCudaDriver.cuMemcpyDtoDAsync(Driver.ptr(to), Driver.ptr(from), size, stream(stream));
    }

    @Override
    public int memset(long ctx, long dst, int value, int elementSize, long count, long stream) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if ((elementSize != 1 && elementSize != 2 && elementSize != 4) || count < 0 || count > Long.MAX_VALUE / elementSize) {
            return CuResult.INVALID_VALUE;
        }
        long to = resolve(c, dst, count * elementSize);
        if (to < 0 || !knownStream(stream)) {
            return to < 0 ? CuResult.INVALID_VALUE : CuResult.INVALID_HANDLE;
        }
        CUstream s = stream(stream);
        switch (elementSize) {
            case 1:
                return JCudaDriver.cuMemsetD8Async(Driver.ptr(to), (byte) value, count, s);
            case 2:
                return JCudaDriver.cuMemsetD16Async(Driver.ptr(to), (short) value, count, s);
            default:
                return JCudaDriver.cuMemsetD32Async(Driver.ptr(to), value, count, s);
        }
    }

    // --- virtual memory management

    @Override
    public int memCreate(long ctx, long size, long[] handle) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        CUmemGenericAllocationHandle h = new CUmemGenericAllocationHandle();
        int rc = JCudaDriver.cuMemCreate(h, size, prop(c.device), 0);
        if (rc == 0) {
            handle[0] = nextHandle.getAndIncrement();
            physical.put(handle[0], new Phys(c, h));
        }
        return rc;
    }

    @Override
    public int memRelease(long handle) {
        // Mappings keep the memory alive until they are unmapped, as in the driver.
        Phys p = physical.remove(handle);
        return p == null ? CuResult.INVALID_HANDLE : JCudaDriver.cuMemRelease(p.handle);
    }

    @Override
    public int memMap(long ctx, long address, long size, long offset, long handle) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        Phys p = physical.get(handle);
        if (p == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (!inWindow(address, size)) {
            return CuResult.INVALID_VALUE;
        }
        synchronized (memory) {
            Map.Entry<Long, Run> run = runs.lowerEntry(address + size);
            if (!vacant(address, size) || (run != null && run.getValue().address + run.getValue().size > address)) {
                return CuResult.INVALID_VALUE;
            }
            int rc = JCudaDriver.cuMemMap(Driver.ptr(address), size, offset, p.handle, 0);
            if (rc == 0) {
                rc = grant(c.device, address, size);
                if (rc != 0) {
                    JCudaDriver.cuMemUnmap(Driver.ptr(address), size);
                }
            }
            if (rc == 0) {
                ranges.put(address, new Range(address, size, c, true));
            }
            return rc;
        }
    }

    @Override
    public int memUnmap(long ctx, long address, long size) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        synchronized (memory) {
            // The range must be whole mappings of this owner, back to back.
            List<Range> parts = new ArrayList<>();
            long at = address;
            while (at < address + size) {
                Range r = ranges.get(at);
                if (r == null || !r.mapping || r.ctx.owner != c.owner || r.end() > address + size) {
                    return CuResult.INVALID_VALUE;
                }
                parts.add(r);
                at = r.end();
            }
            if (parts.isEmpty()) {
                return CuResult.INVALID_VALUE;
            }
            JCudaDriver.cuCtxSynchronize();
            int rc = CuResult.SUCCESS;
            for (Range r : parts) {
                int x = JCudaDriver.cuMemUnmap(Driver.ptr(r.address), r.size);
                rc = rc != 0 ? rc : x;
                ranges.remove(r.address);
            }
            return rc;
        }
    }

    // --- modules and launches

    @Override
    public int moduleLoad(long ctx, ModuleImage image, long globalsBase, long[] module) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (image == null || image.data == null || image.data.length == 0) {
            return CuResult.INVALID_IMAGE;
        }
        byte[] data = image.data;
        if (image.format == ModuleImage.Format.PTX && data[data.length - 1] != 0) {
            data = Arrays.copyOf(data, data.length + 1); // the driver reads PTX as a C string
        }
        CUmodule cu = new CUmodule();
        int rc = JCudaDriver.cuModuleLoadData(cu, data);
        if (rc != 0) {
            return rc;
        }
        Module m = new Module(c, cu, image, globalsBase);
        for (GlobalInfo g : image.globals) {
            Driver.Out at = new Driver.Out();
            long[] size = new long[1];
            if (JCudaDriver.cuModuleGetGlobal(at, size, cu, g.name) == 0) {
                m.globals.put(g, at.address());
            }
        }
        module[0] = nextHandle.getAndIncrement();
        modules.put(module[0], m);
        return CuResult.SUCCESS;
    }

    @Override
    public int moduleUnload(long module) {
        Module m = modules.remove(module);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        functions.values().removeIf(f -> f.module == m);
        JCudaDriver.cuCtxSetCurrent(m.ctx.cu);
        return JCudaDriver.cuModuleUnload(m.cu);
    }

    @Override
    public int functionGet(long module, String name, long[] function) {
        Module m = modules.get(module);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(m.ctx.cu);
        CUfunction f = new CUfunction();
        int rc = JCudaDriver.cuModuleGetFunction(f, m.cu, name);
        if (rc == 0) {
            function[0] = nextHandle.getAndIncrement();
            functions.put(function[0], new Function(m, f, m.image.kernel(name)));
        }
        return rc;
    }

    @Override
    public int functionGetAttribute(long function, int attribute, int[] value) {
        Function f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(f.module.ctx.cu);
        return JCudaDriver.cuFuncGetAttribute(value, attribute, f.cu);
    }

    @Override
    public int launch(long function, LaunchConfig config, ByteBuffer params, long stream) {
        Function f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (!knownStream(stream)) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(f.module.ctx.cu);
        int n = params == null ? 0 : params.remaining();
        ByteBuffer buf = paramBuffer.get();
        if (buf.capacity() < n) {
            buf = ByteBuffer.allocateDirect(Integer.highestOneBit(n) << 1).order(ByteOrder.LITTLE_ENDIAN);
            paramBuffer.set(buf);
        }
        if (n > 0) {
            buf.clear();
            buf.put(params.duplicate()).clear();
        }
        Pointer kernelParams = null;
        Pointer extra = null;
        KernelInfo k = f.kernel;
        if (k != null) {
            if (n < k.paramBufferSize) {
                return CuResult.INVALID_VALUE;
            }
            Pointer[] each = new Pointer[k.paramCount()];
            for (int i = 0; i < each.length; i++) {
                each[i] = Pointer.to(buf).withByteOffset(k.paramOffsets[i]);
            }
            kernelParams = each.length == 0 ? null : Pointer.to(each);
        } else if (n > 0) {
            // No layout from the image: hand the driver the packed buffer as it is.
            extra = Pointer.to(JCudaDriver.CU_LAUNCH_PARAM_BUFFER_POINTER, Pointer.to(buf),
                    JCudaDriver.CU_LAUNCH_PARAM_BUFFER_SIZE, Pointer.to(new long[] {n}), JCudaDriver.CU_LAUNCH_PARAM_END);
        }
        return JCudaDriver.cuLaunchKernel(f.cu, config.gridX, config.gridY, config.gridZ, config.blockX, config.blockY,
                config.blockZ, config.sharedMemBytes, stream(stream), kernelParams, extra);
    }

    // --- streams and events

    @Override
    public int streamCreate(long ctx, int flags, int priority, long[] stream) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        CUstream s = new CUstream();
        int rc = JCudaDriver.cuStreamCreateWithPriority(s, flags, priority);
        if (rc == 0) {
            stream[0] = nextHandle.getAndIncrement();
            streams.put(stream[0], new Stream(c, s));
        }
        return rc;
    }

    @Override
    public int streamDestroy(long stream) {
        Stream s = streams.remove(stream);
        if (s == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(s.ctx.cu);
        return JCudaDriver.cuStreamDestroy(s.cu);
    }

    @Override
    public int streamSynchronize(long stream) {
        Stream s = streams.get(stream);
        if (s == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(s.ctx.cu);
        return JCudaDriver.cuStreamSynchronize(s.cu);
    }

    @Override
    public int streamQuery(long stream) {
        Stream s = streams.get(stream);
        if (s == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(s.ctx.cu);
        return JCudaDriver.cuStreamQuery(s.cu);
    }

    @Override
    public int streamWaitEvent(long stream, long event) {
        Event e = events.get(event);
        if (e == null || !knownStream(stream)) {
            return CuResult.INVALID_HANDLE;
        }
        // Stream 0 is the default stream of the event's context.
        JCudaDriver.cuCtxSetCurrent(stream == 0 ? e.ctx.cu : streams.get(stream).ctx.cu);
        return JCudaDriver.cuStreamWaitEvent(stream(stream), e.cu, 0);
    }

    @Override
    public int eventCreate(long ctx, int flags, long[] event) {
        Ctx c = enter(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        CUevent e = new CUevent();
        int rc = JCudaDriver.cuEventCreate(e, flags);
        if (rc == 0) {
            event[0] = nextHandle.getAndIncrement();
            events.put(event[0], new Event(c, e));
        }
        return rc;
    }

    @Override
    public int eventDestroy(long event) {
        Event e = events.remove(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(e.ctx.cu);
        return JCudaDriver.cuEventDestroy(e.cu);
    }

    @Override
    public int eventRecord(long event, long stream) {
        Event e = events.get(event);
        if (e == null || !knownStream(stream)) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(e.ctx.cu);
        return JCudaDriver.cuEventRecord(e.cu, stream(stream));
    }

    @Override
    public int eventQuery(long event) {
        Event e = events.get(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(e.ctx.cu);
        return JCudaDriver.cuEventQuery(e.cu);
    }

    @Override
    public int eventSynchronize(long event) {
        Event e = events.get(event);
        if (e == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(e.ctx.cu);
        return JCudaDriver.cuEventSynchronize(e.cu);
    }

    @Override
    public int eventElapsedTime(long start, long end, float[] millis) {
        Event a = events.get(start);
        Event b = events.get(end);
        if (a == null || b == null) {
            return CuResult.INVALID_HANDLE;
        }
        JCudaDriver.cuCtxSetCurrent(a.ctx.cu);
        return JCudaDriver.cuEventElapsedTime(millis, a.cu, b.cu);
    }
}
