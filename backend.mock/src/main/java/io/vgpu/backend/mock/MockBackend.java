package io.vgpu.backend.mock;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.api.kernel.DeviceMemory;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.api.kernel.KernelLaunch;
import io.vgpu.ptx.KernelFault;
import io.vgpu.ptx.LaunchDims;
import io.vgpu.ptx.PtxException;
import io.vgpu.ptx.PtxExecutor;
import io.vgpu.ptx.PtxKernel;
import io.vgpu.ptx.PtxProgram;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A simulated GPU with exact memory semantics: the default backend, one H100 registered as
 * {@code backend.id=mock}, configurable through {@code io.vgpu.backend.mock.cfg}. More simulated
 * GPUs run side by side as {@link MockGpu} factory instances.
 *
 * <p>Work runs synchronously at submission, so streams are always idle and events complete when
 * recorded. Launches are recorded; a kernel runs if a {@link HostKernel} is registered for its name.
 */
@Component(service = CudaService.class, configurationPid = MockBackend.PID, configurationPolicy = ConfigurationPolicy.OPTIONAL,
        property = CudaService.BACKEND_ID + "=mock")
@Designate(ocd = MockBackend.Config.class)
public class MockBackend implements CudaService {
    public static final String PID = "io.vgpu.backend.mock";
    private static final Logger LOG = LoggerFactory.getLogger(MockBackend.class);
    private static final int LAUNCH_LOG_SIZE = 4096;

    @ObjectClassDefinition(name = "vgpu mock backend", description = "A simulated GPU")
    public @interface Config {
        @AttributeDefinition(description = "backend.id this instance registers under")
        String backend_id() default "mock";

        String name() default "NVIDIA H100 80GB HBM3";

        @AttributeDefinition(description = "Device memory in MiB")
        long memory_mib() default 81920;

        int cc_major() default 9;

        int cc_minor() default 0;

        int sm_count() default 132;

        @AttributeDefinition(description = "GPU-xxxxxxxx-... UUID; empty derives a stable one from backend.id")
        String uuid() default "";

        int pci_domain() default 0;

        @AttributeDefinition(description = "PCI bus; -1 derives a stable one from backend.id")
        int pci_bus() default -1;

        int pci_device() default 0;

        @AttributeDefinition(description = "PCI device id (0x2330 is the H100 SXM5)")
        int pci_device_id() default 0x2330;

        int pci_subsystem_id() default 0x16c1;

        int clock_khz() default 1980000;

        int memory_clock_khz() default 2619000;

        int memory_bus_width() default 5120;

        int l2_cache_bytes() default 52428800;

        @AttributeDefinition(description = "How many identical devices this instance simulates")
        int device_count() default 1;

        @AttributeDefinition(description = "Threads running the blocks of a kernel; 0 uses every core")
        int ptx_workers() default 0;

        @AttributeDefinition(description = "A kernel running longer than this many milliseconds fails with "
                + "CUDA_ERROR_LAUNCH_TIMEOUT; 0 lets it run as long as it takes, as a data-centre GPU does")
        long watchdog_ms() default 0;
    }

    private static final class Ctx {
        final long id;
        final int device;
        final long owner;
        final List<Long> linear = new ArrayList<>();
        final List<MockMemory.Physical> physical = new ArrayList<>();

        Ctx(long id, int device, long owner) {
            this.id = id;
            this.device = device;
            this.owner = owner;
        }
    }

    private static final class Module {
        final Ctx ctx;
        final ModuleImage image;
        final long globalsBase;
        final Map<String, Long> symbols = new java.util.HashMap<>();

        Module(Ctx ctx, ModuleImage image, long globalsBase) {
            this.ctx = ctx;
            this.image = image;
            this.globalsBase = globalsBase;
            for (GlobalInfo g : image.globals) {
                symbols.put(g.name, globalsBase + g.offset);
            }
        }
    }

    private static final class Function {
        final Module module;
        final KernelInfo kernel;
        final int[] attributes = new int[10];
        /** The compiled kernel, or why it cannot run; resolved on first launch. */
        volatile PtxKernel compiled;
        volatile String unrunnable;

        Function(Module module, KernelInfo kernel) {
            this.module = module;
            this.kernel = kernel;
        }
    }

    private static final class Event {
        final Ctx ctx;
        final int flags;
        volatile long recordedNanos = -1;

        Event(Ctx ctx, int flags) {
            this.ctx = ctx;
            this.flags = flags;
        }
    }

    private String id = "mock";
    private DeviceInfo[] devices = new DeviceInfo[0];
    private volatile String invalidConfiguration;
    private MockMemory[] memories = new MockMemory[0];
    private final AtomicLong handles = new AtomicLong(0x1000);
    private final Map<Long, Ctx> contexts = new ConcurrentHashMap<>();
    private final Map<Long, Module> modules = new ConcurrentHashMap<>();
    private final Map<Long, Function> functions = new ConcurrentHashMap<>();
    private final Map<Long, Ctx> streams = new ConcurrentHashMap<>();
    private final Map<Long, Event> events = new ConcurrentHashMap<>();
    private final Map<Long, MockMemory.Physical> physicalHandles = new ConcurrentHashMap<>();
    private final Map<String, HostKernel> kernels = new ConcurrentHashMap<>();
    /** Owners whose client is gone ({@link #abandon}): their copies, fills and kernels stop early. */
    private final java.util.Set<Long> abandoned = ConcurrentHashMap.newKeySet();
    private final java.util.concurrent.atomic.AtomicInteger running = new java.util.concurrent.atomic.AtomicInteger();
    private final ArrayDeque<LaunchRecord> launchLog = new ArrayDeque<>();
    private volatile PtxExecutor executor;
    /** Parsed PTX per image text: modules of the same image share one parse and its compiled kernels. */
    private final Map<byte[], PtxProgram> programs = java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());
    private long launchCount;

    public MockBackend() {}

    /** For unit tests outside a framework. */
    public MockBackend(Config config) {
        activate(config);
    }

    @Activate
    void activate(Config config) {
        try {
            id = config.backend_id();
            String wrong = invalid(config);
            if (wrong != null) {
                throw new IllegalArgumentException(wrong);
            }
            int count = config.device_count();
            DeviceInfo[] described = new DeviceInfo[count];
            MockMemory[] memory = new MockMemory[count];
            for (int i = 0; i < count; i++) {
                described[i] = describe(config, i);
                memory[i] = new MockMemory(described[i].totalMemory);
            }
            memories = memory;
            devices = described;
            int workers = config.ptx_workers() > 0 ? config.ptx_workers() : Runtime.getRuntime().availableProcessors();
            PtxExecutor old = executor;
            executor = new PtxExecutor(workers, config.watchdog_ms());
            if (old != null) {
                old.close();
            }
            invalidConfiguration = null;
            LOG.info("mock backend {} up: {} x {}", id.isEmpty() ? "(without backend.id)" : id, count, devices[0]);
        } catch (RuntimeException e) {
            // A typo in a conf/ file: one line naming it, and a backend that says why it has no
            // device, rather than a stack trace and a backend that silently never appears.
            devices = new DeviceInfo[0];
            memories = new MockMemory[0];
            invalidConfiguration = e.getMessage();
            LOG.error("mock backend {}: invalid configuration: {}; it offers no device until the file is fixed", id, e.getMessage());
        }
    }

    /** What is wrong with a configuration, in the terms of its file, or null. */
    private static String invalid(Config c) {
        // DS converts each value when it is first read: find the one that does not convert.
        for (java.lang.reflect.Method m : Config.class.getDeclaredMethods()) {
            try {
                m.invoke(c);
            } catch (java.lang.reflect.InvocationTargetException e) {
                return m.getName().replace('_', '.') + " cannot be read (" + e.getCause().getMessage() + ")";
            } catch (ReflectiveOperationException e) {
                return m.getName().replace('_', '.') + " cannot be read";
            }
        }
        if (c.memory_mib() <= 0) {
            return "memory.mib must be positive, not " + c.memory_mib();
        }
        if (c.memory_mib() > (1L << 40)) {
            return "memory.mib " + c.memory_mib() + " is beyond any device";
        }
        if (c.sm_count() <= 0) {
            return "sm.count must be positive, not " + c.sm_count();
        }
        if (c.cc_major() < 1 || c.cc_major() > 12 || c.cc_minor() < 0 || c.cc_minor() > 9) {
            return "compute capability " + c.cc_major() + "." + c.cc_minor() + " is not one CUDA knows (cc.major 1-12, cc.minor 0-9)";
        }
        if (c.ptx_workers() < 0 || c.ptx_workers() > 1024) {
            return "ptx.workers must be 0 (every core) to 1024, not " + c.ptx_workers();
        }
        if (c.watchdog_ms() < 0) {
            return "watchdog.ms cannot be negative";
        }
        if (c.device_count() < 1 || c.device_count() > 16) {
            return "device.count must be 1 to 16, not " + c.device_count();
        }
        if (c.name().isBlank() || c.name().length() > 255) {
            return "name must be 1 to 255 characters";
        }
        if (c.clock_khz() < 0 || c.memory_clock_khz() < 0 || c.memory_bus_width() < 0 || c.l2_cache_bytes() < 0) {
            return "clock.khz, memory.clock.khz, memory.bus.width and l2.cache.bytes cannot be negative";
        }
        if (c.pci_domain() < 0 || c.pci_domain() > 0xffff || c.pci_bus() > 0xff || c.pci_device() < 0 || c.pci_device() > 0x1f) {
            return "PCI address out of range (pci.domain 0-65535, pci.bus 0-255 or -1, pci.device 0-31)";
        }
        return null;
    }

    @Deactivate
    void deactivate() {
        contexts.clear();
        modules.clear();
        functions.clear();
        streams.clear();
        events.clear();
        physicalHandles.clear();
        memories = new MockMemory[0];
        PtxExecutor e = executor;
        executor = null;
        if (e != null) {
            e.close();
        }
    }

    private DeviceInfo describe(Config c, int ordinal) {
        DeviceInfo d = new DeviceInfo();
        d.ordinal = ordinal;
        d.name = c.name();
        d.totalMemory = c.memory_mib() << 20;
        d.uuid = c.uuid().isEmpty() ? derivedUuid(id + "/" + ordinal) : parseUuid(c.uuid(), ordinal);
        int[] a = H100Attributes.table();
        a[CuDeviceAttribute.MULTIPROCESSOR_COUNT] = c.sm_count();
        a[CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR] = c.cc_major();
        a[CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR] = c.cc_minor();
        a[CuDeviceAttribute.PCI_DOMAIN_ID] = c.pci_domain();
        int bus = c.pci_bus() >= 0 ? c.pci_bus() : 0x10 + (Math.floorMod(id.hashCode(), 0xc0));
        a[CuDeviceAttribute.PCI_BUS_ID] = (bus + ordinal) & 0xff;
        a[CuDeviceAttribute.PCI_DEVICE_ID] = c.pci_device();
        a[CuDeviceAttribute.GPU_PCI_DEVICE_ID] = (c.pci_device_id() << 16) | 0x10de;
        a[CuDeviceAttribute.GPU_PCI_SUBSYSTEM_ID] = (c.pci_subsystem_id() << 16) | 0x10de;
        a[CuDeviceAttribute.CLOCK_RATE] = c.clock_khz();
        a[CuDeviceAttribute.MEMORY_CLOCK_RATE] = c.memory_clock_khz();
        a[CuDeviceAttribute.GLOBAL_MEMORY_BUS_WIDTH] = c.memory_bus_width();
        a[CuDeviceAttribute.L2_CACHE_SIZE] = c.l2_cache_bytes();
        a[CuDeviceAttribute.MULTI_GPU_BOARD_GROUP_ID] = ordinal;
        d.attributes = a;
        return d;
    }

    /** Name-based (v3-style) UUID: stable across restarts for the same backend id and ordinal. */
    static byte[] derivedUuid(String seed) {
        try {
            byte[] h = MessageDigest.getInstance("MD5").digest(("vgpu-mock:" + seed).getBytes(StandardCharsets.UTF_8));
            h[6] = (byte) ((h[6] & 0x0f) | 0x30);
            h[8] = (byte) ((h[8] & 0x3f) | 0x80);
            return h;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] parseUuid(String text, int ordinal) {
        String hex = text.trim().toLowerCase().replaceFirst("^gpu-", "").replace("-", "");
        if (hex.length() != 32) {
            throw new IllegalArgumentException("uuid must be 32 hex digits: " + text);
        }
        byte[] u = new byte[16];
        for (int i = 0; i < 16; i++) {
            u[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        u[15] += (byte) ordinal;
        return u;
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void addKernel(HostKernel kernel, Map<String, Object> props) {
        for (String name : names(props.get(HostKernel.KERNEL_NAME))) {
            kernels.put(name, kernel);
        }
    }

    void removeKernel(HostKernel kernel, Map<String, Object> props) {
        for (String name : names(props.get(HostKernel.KERNEL_NAME))) {
            kernels.remove(name, kernel);
        }
    }

    private static List<String> names(Object prop) {
        List<String> out = new ArrayList<>();
        if (prop instanceof String) {
            out.add((String) prop);
        } else if (prop instanceof String[]) {
            out.addAll(List.of((String[]) prop));
        } else if (prop instanceof Iterable) {
            ((Iterable<?>) prop).forEach(o -> out.add(String.valueOf(o)));
        }
        return out;
    }

    /** Registers a host kernel without a framework (unit tests). */
    public void registerKernel(String name, HostKernel kernel) {
        kernels.put(name, kernel);
    }

    /** Removes a host kernel registered by {@link #registerKernel} (unit tests). */
    public void unregisterKernel(String name) {
        kernels.remove(name);
    }

    // ------------------------------------------------------------------ identity

    @Override
    public BackendInfo info() {
        BackendInfo b = new BackendInfo();
        b.id = id;
        b.available = devices.length > 0;
        b.reason = b.available ? null : invalidConfiguration != null ? "invalid configuration: " + invalidConfiguration : "not active";
        b.description = "simulated " + (devices.length > 0 ? devices.length + " x " + devices[0].name : "GPU");
        return b;
    }

    @Override
    public DeviceInfo[] devices() {
        DeviceInfo[] out = new DeviceInfo[devices.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = devices[i].copy();
        }
        return out;
    }

    @Override
    public int memGetInfo(int device, long[] out) {
        if (device < 0 || device >= memories.length) {
            return CuResult.INVALID_DEVICE;
        }
        out[0] = memories[device].free();
        out[1] = memories[device].total();
        return CuResult.SUCCESS;
    }

    /** Bytes backed by host RAM on a device (pages written at least once). */
    public long materialisedBytes(int device) {
        return memories[device].materialisedBytes();
    }

    /** Host memory all mocks of this JVM hold for pages, in use or kept for reuse (outside the heap). */
    public static long hostPageBytes() {
        return PagePool.SHARED.slabBytes();
    }

    /** Contexts and physical-memory handles held, of every owner: what leak checks count besides the bytes. */
    public int[] heldObjects() {
        return new int[] {contexts.size(), physicalHandles.size()};
    }

    /** Kernels executing from PTX right now, of every owner (a running kernel can be observed, not guessed). */
    public int runningKernels() {
        return running.get();
    }

    // ------------------------------------------------------------------ contexts

    @Override
    public int ctxCreate(int device, int flags, long owner, long[] out) {
        if (device < 0 || device >= devices.length) {
            return CuResult.INVALID_DEVICE;
        }
        long h = handles.incrementAndGet();
        contexts.put(h, new Ctx(h, device, owner));
        out[0] = h;
        return CuResult.SUCCESS;
    }

    @Override
    public int ctxDestroy(long ctx) {
        Ctx c = contexts.remove(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        MockMemory mem = memories[c.device];
        synchronized (c) {
            for (long address : c.linear) {
                MockMemory.Mapping m = mem.unmap(address);
                if (m != null) {
                    mem.release(m.physical);
                }
            }
            mem.unmapAll(c.physical);
            for (MockMemory.Physical p : c.physical) {
                if (!p.released) {
                    mem.release(p);
                }
            }
        }
        if (contexts.values().stream().noneMatch(o -> o.owner == c.owner)) {
            abandoned.remove(c.owner);
        }
        modules.values().removeIf(m -> m.ctx == c);
        functions.values().removeIf(f -> f.module.ctx == c);
        streams.values().removeIf(s -> s == c);
        events.values().removeIf(e -> e.ctx == c);
        physicalHandles.values().removeIf(p -> c.physical.contains(p));
        return CuResult.SUCCESS;
    }

    @Override
    public int ctxSynchronize(long ctx) {
        return contexts.containsKey(ctx) ? CuResult.SUCCESS : CuResult.INVALID_CONTEXT;
    }

    // ------------------------------------------------------------------ memory

    @Override
    public int memAlloc(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        MockMemory mem = memories[c.device];
        MockMemory.Physical p = mem.create(size, c.owner);
        if (p == null) {
            return CuResult.OUT_OF_MEMORY;
        }
        int rc = mem.map(address, size, 0, p);
        if (rc != CuResult.SUCCESS) {
            mem.release(p);
            return rc;
        }
        synchronized (c) {
            c.linear.add(address);
        }
        return CuResult.SUCCESS;
    }

    @Override
    public int memFree(long ctx, long address) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        synchronized (c) {
            if (!c.linear.remove(address)) {
                return CuResult.INVALID_VALUE;
            }
        }
        MockMemory mem = memories[c.device];
        MockMemory.Mapping m = mem.unmap(address);
        if (m != null) {
            mem.release(m.physical);
        }
        return CuResult.SUCCESS;
    }

    private boolean badStream(long stream) {
        return stream != 0 && !streams.containsKey(stream);
    }

    @Override
    public long[] writtenRanges(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        return c == null ? null : memories[c.device].written(address, size, c.owner);
    }

    @Override
    public boolean trackWrites(long ctx, boolean on) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return false;
        }
        memories[c.device].track(c.owner, on);
        return true;
    }

    @Override
    public long[] takeDirtyRanges(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        return c == null ? null : memories[c.device].takeDirty(address, size, c.owner);
    }

    @Override
    public int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        return badStream(stream) ? CuResult.INVALID_HANDLE : memories[c.device].write(dst, src, c.owner);
    }

    @Override
    public int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        return badStream(stream) ? CuResult.INVALID_HANDLE : memories[c.device].read(src, dst, c.owner);
    }

    @Override
    public int memcpyDtoD(long ctx, long dst, long src, long size, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        return badStream(stream) ? CuResult.INVALID_HANDLE : memories[c.device].copy(dst, src, size, c.owner, stop(c.owner));
    }

    @Override
    public int memset(long ctx, long dst, int value, int elementSize, long count, long stream) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (elementSize != 1 && elementSize != 2 && elementSize != 4) {
            return CuResult.INVALID_VALUE;
        }
        return badStream(stream) ? CuResult.INVALID_HANDLE
                : memories[c.device].fill(dst, value, elementSize, count, c.owner, stop(c.owner));
    }

    /** Whether work of {@code owner} should stop: its client is gone. */
    private java.util.function.BooleanSupplier stop(long owner) {
        return () -> abandoned.contains(owner);
    }

    /** Only owners with contexts are remembered; their last ctxDestroy forgets them. */
    @Override
    public void abandon(long owner) {
        for (Ctx c : contexts.values()) {
            if (c.owner == owner) {
                abandoned.add(owner);
                return;
            }
        }
    }

    @Override
    public int memCreate(long ctx, long size, long[] out) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        MockMemory.Physical p = memories[c.device].create(size, c.owner);
        if (p == null) {
            return CuResult.OUT_OF_MEMORY;
        }
        long h = handles.incrementAndGet();
        physicalHandles.put(h, p);
        synchronized (c) {
            c.physical.add(p);
        }
        out[0] = h;
        return CuResult.SUCCESS;
    }

    private MockMemory memoryOf(MockMemory.Physical p) {
        for (Ctx c : contexts.values()) {
            synchronized (c) {
                if (c.physical.contains(p)) {
                    return memories[c.device];
                }
            }
        }
        return null;
    }

    @Override
    public int memRelease(long handle) {
        MockMemory.Physical p = physicalHandles.remove(handle);
        if (p == null) {
            return CuResult.INVALID_VALUE;
        }
        MockMemory mem = memoryOf(p);
        if (mem != null) {
            mem.release(p);
        }
        return CuResult.SUCCESS;
    }

    @Override
    public int memMap(long ctx, long address, long size, long offset, long handle) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        MockMemory.Physical p = physicalHandles.get(handle);
        if (p == null || p.owner != c.owner) {
            return CuResult.INVALID_HANDLE;
        }
        return memories[c.device].map(address, size, offset, p);
    }

    @Override
    public int memUnmap(long ctx, long address, long size) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        MockMemory mem = memories[c.device];
        MockMemory.Mapping m = mem.mappingAt(address);
        if (m == null || m.size != size || m.physical.owner != c.owner) {
            return CuResult.INVALID_VALUE;
        }
        mem.unmap(address);
        return CuResult.SUCCESS;
    }

    // ------------------------------------------------------------------ modules and launches

    @Override
    public int moduleLoad(long ctx, ModuleImage image, long globalsBase, long[] out) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        if (image.globalsSize > 0) {
            int rc = memAlloc(ctx, globalsBase, image.globalsSize);
            if (rc != CuResult.SUCCESS) {
                return rc;
            }
            for (GlobalInfo g : image.globals) {
                if (g.init != null) {
                    memories[c.device].write(globalsBase + g.offset, ByteBuffer.wrap(g.init), c.owner);
                }
            }
        }
        long h = handles.incrementAndGet();
        modules.put(h, new Module(c, image, globalsBase));
        out[0] = h;
        return CuResult.SUCCESS;
    }

    @Override
    public int moduleUnload(long module) {
        Module m = modules.remove(module);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        functions.values().removeIf(f -> f.module == m);
        if (m.image.globalsSize > 0) {
            memFree(m.ctx.id, m.globalsBase);
        }
        return CuResult.SUCCESS;
    }

    @Override
    public int functionGet(long module, String name, long[] out) {
        Module m = modules.get(module);
        if (m == null) {
            return CuResult.INVALID_HANDLE;
        }
        KernelInfo k = m.image.kernel(name);
        if (k == null) {
            return CuResult.NOT_FOUND;
        }
        long h = handles.incrementAndGet();
        functions.put(h, new Function(m, k));
        out[0] = h;
        return CuResult.SUCCESS;
    }

    @Override
    public int functionGetAttribute(long function, int attribute, int[] value) {
        Function f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        KernelInfo k = f.kernel;
        ModuleImage image = f.module.image;
        DeviceInfo d = devices[f.module.ctx.device];
        int deviceArch = d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) * 10
                + d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR);
        int codeArch = image.arch > 0 ? image.arch : deviceArch;
        // PTX is compiled for this device at load; a cubin's SASS runs as built.
        int binaryVersion = image.ptx ? deviceArch : codeArch;
        int ptxVersion = image.virtualArch > 0 ? image.virtualArch : codeArch;
        switch (attribute) {
            case 0: value[0] = k.maxThreadsPerBlock; break;            // MAX_THREADS_PER_BLOCK
            case 1: value[0] = k.sharedSizeBytes; break;               // SHARED_SIZE_BYTES
            case 2: value[0] = k.constSizeBytes; break;                // CONST_SIZE_BYTES
            case 3: value[0] = k.localSizeBytes; break;                // LOCAL_SIZE_BYTES
            case 4: value[0] = k.numRegs; break;                       // NUM_REGS
            case 5: value[0] = ptxVersion; break;                      // PTX_VERSION
            case 6: value[0] = binaryVersion; break;                   // BINARY_VERSION
            case 7: value[0] = 0; break;                               // CACHE_MODE_CA
            case 8: value[0] = f.attributes[8]; break;                 // MAX_DYNAMIC_SHARED_SIZE_BYTES
            case 9: value[0] = -1; break;                              // PREFERRED_SHARED_MEMORY_CARVEOUT
            default:
                if (attribute < 0 || attribute > 20) {
                    return CuResult.INVALID_VALUE;
                }
                value[0] = 0;
        }
        return CuResult.SUCCESS;
    }

    @Override
    public int launch(long function, LaunchConfig config, ByteBuffer params, long stream) {
        Function f = functions.get(function);
        if (f == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (badStream(stream)) {
            return CuResult.INVALID_HANDLE;
        }
        HostKernel kernel = kernels.get(f.kernel.name);
        int rc = CuResult.SUCCESS;
        boolean executed = true;
        if (kernel != null) {
            DeviceMemory view = memories[f.module.ctx.device].view(f.module.ctx.owner);
            try {
                kernel.execute(new KernelLaunch(f.kernel, config, params, view));
            } catch (DeviceMemory.AccessException e) {
                LOG.info("kernel {} touched unmapped memory: {}", f.kernel.name, e.getMessage());
                rc = CuResult.ILLEGAL_ADDRESS;
            } catch (RuntimeException e) {
                LOG.warn("host kernel {} failed: {} (at {})", f.kernel.name, e,
                        e.getStackTrace().length > 0 ? e.getStackTrace()[0] : "unknown");
                rc = CuResult.LAUNCH_FAILED;
            }
        } else {
            rc = runPtx(f, config, params);
            executed = rc != CuResult.NOT_SUPPORTED;
        }
        record(f.kernel.name, config, params.remaining(), executed, rc);
        return rc;
    }

    /** Executes a kernel from the PTX of its image. */
    private int runPtx(Function f, LaunchConfig config, ByteBuffer params) {
        PtxKernel k = compiled(f);
        if (k == null) {
            return CuResult.NOT_SUPPORTED;
        }
        byte[] p = new byte[params.remaining()];
        params.duplicate().get(p);
        MockMemory mem = memories[f.module.ctx.device];
        long owner = f.module.ctx.owner;
        PtxExecutor e = executor;
        if (e == null) {
            return CuResult.DEVICE_UNAVAILABLE;
        }
        try {
            long t0 = System.nanoTime();
            long i0 = LOG.isDebugEnabled() ? e.threadInstructions() : 0;
            running.incrementAndGet();
            mem.launchStarted();
            try {
                e.launch(k, new LaunchDims(config.gridX, config.gridY, config.gridZ, config.blockX, config.blockY, config.blockZ,
                        config.sharedMemBytes), p, () -> mem.accessor(owner), stop(owner));
            } finally {
                mem.launchEnded();
                running.decrementAndGet();
            }
            if (LOG.isDebugEnabled()) {
                LOG.debug("kernel {} grid({},{},{}) block({},{},{}): {} us, {} thread-instructions", f.kernel.name, config.gridX,
                        config.gridY, config.gridZ, config.blockX, config.blockY, config.blockZ, (System.nanoTime() - t0) / 1000,
                        e.threadInstructions() - i0);
            }
            return CuResult.SUCCESS;
        } catch (KernelFault fault) {
            LOG.info("kernel {} failed: {}", f.kernel.name, fault.getMessage());
            return fault.cudaError();
        } catch (IllegalArgumentException bad) {
            return CuResult.INVALID_VALUE;
        }
    }

    /** The function's kernel compiled from the image's PTX, or null (logged once) if it cannot run. */
    private PtxKernel compiled(Function f) {
        PtxKernel k = f.compiled;
        if (k != null || f.unrunnable != null) {
            return k;
        }
        synchronized (f) {
            if (f.compiled != null || f.unrunnable != null) {
                return f.compiled;
            }
            ModuleImage image = f.module.image;
            if (image.ptxSource == null) {
                f.unrunnable = "its image holds no PTX for compute capability " + deviceArch(f.module.ctx.device)
                        + " or below (only SASS, which the mock does not execute)";
            } else {
                try {
                    PtxProgram program;
                    synchronized (programs) {
                        program = programs.get(image.ptxSource);
                    }
                    if (program == null) {
                        program = PtxProgram.parse(new String(image.ptxSource, StandardCharsets.ISO_8859_1));
                        programs.put(image.ptxSource, program);
                    }
                    f.compiled = program.kernel(f.kernel.name, f.module.symbols);
                    return f.compiled;
                } catch (PtxException ex) {
                    f.unrunnable = ex.getMessage();
                }
            }
            LOG.warn("kernel {} cannot run on the simulated GPU: {}; its launches fail with CUDA_ERROR_NOT_SUPPORTED",
                    f.kernel.name, f.unrunnable);
            return null;
        }
    }

    private int deviceArch(int device) {
        DeviceInfo d = devices[device];
        return d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR) * 10 + d.attribute(CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR);
    }

    private void record(String name, LaunchConfig config, int paramBytes, boolean executed, int rc) {
        LaunchRecord r = new LaunchRecord();
        r.kernel = name;
        r.config = config;
        r.paramBytes = paramBytes;
        r.executed = executed;
        r.result = rc;
        synchronized (launchLog) {
            r.sequence = ++launchCount;
            if (launchLog.size() == LAUNCH_LOG_SIZE) {
                launchLog.removeFirst();
            }
            launchLog.addLast(r);
        }
    }

    @Override
    public List<LaunchRecord> launchLog(int max) {
        synchronized (launchLog) {
            List<LaunchRecord> all = new ArrayList<>(launchLog);
            return all.subList(Math.max(0, all.size() - max), all.size());
        }
    }

    /** Thread-instructions the PTX engine executed for this backend (one per active lane per instruction). */
    public long threadInstructions() {
        PtxExecutor e = executor;
        return e == null ? 0 : e.threadInstructions();
    }

    public long launchCount() {
        synchronized (launchLog) {
            return launchCount;
        }
    }

    // ------------------------------------------------------------------ streams and events

    @Override
    public int streamCreate(long ctx, int flags, int priority, long[] out) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        long h = handles.incrementAndGet();
        streams.put(h, c);
        out[0] = h;
        return CuResult.SUCCESS;
    }

    @Override
    public int streamDestroy(long stream) {
        return streams.remove(stream) != null ? CuResult.SUCCESS : CuResult.INVALID_HANDLE;
    }

    @Override
    public int streamSynchronize(long stream) {
        return badStream(stream) ? CuResult.INVALID_HANDLE : CuResult.SUCCESS;
    }

    @Override
    public int streamQuery(long stream) {
        return badStream(stream) ? CuResult.INVALID_HANDLE : CuResult.SUCCESS;
    }

    @Override
    public int streamWaitEvent(long stream, long event) {
        return badStream(stream) || !events.containsKey(event) ? CuResult.INVALID_HANDLE : CuResult.SUCCESS;
    }

    @Override
    public int eventCreate(long ctx, int flags, long[] out) {
        Ctx c = contexts.get(ctx);
        if (c == null) {
            return CuResult.INVALID_CONTEXT;
        }
        long h = handles.incrementAndGet();
        events.put(h, new Event(c, flags));
        out[0] = h;
        return CuResult.SUCCESS;
    }

    @Override
    public int eventDestroy(long event) {
        return events.remove(event) != null ? CuResult.SUCCESS : CuResult.INVALID_HANDLE;
    }

    @Override
    public int eventRecord(long event, long stream) {
        Event e = events.get(event);
        if (e == null || badStream(stream)) {
            return CuResult.INVALID_HANDLE;
        }
        e.recordedNanos = System.nanoTime();
        return CuResult.SUCCESS;
    }

    @Override
    public int eventQuery(long event) {
        return events.containsKey(event) ? CuResult.SUCCESS : CuResult.INVALID_HANDLE;
    }

    @Override
    public int eventSynchronize(long event) {
        return events.containsKey(event) ? CuResult.SUCCESS : CuResult.INVALID_HANDLE;
    }

    /** {@code CU_EVENT_DISABLE_TIMING}. */
    private static final int DISABLE_TIMING = 0x2;

    @Override
    public int eventElapsedTime(long start, long end, float[] millis) {
        Event s = events.get(start);
        Event e = events.get(end);
        if (s == null || e == null) {
            return CuResult.INVALID_HANDLE;
        }
        if (((s.flags | e.flags) & DISABLE_TIMING) != 0 || s.recordedNanos < 0 || e.recordedNanos < 0) {
            return CuResult.INVALID_HANDLE;
        }
        millis[0] = (e.recordedNanos - s.recordedNanos) / 1e6f;
        return CuResult.SUCCESS;
    }
}
