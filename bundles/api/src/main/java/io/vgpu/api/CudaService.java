package io.vgpu.api;

import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import java.nio.ByteBuffer;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The backend SPI: one GPU provider (simulated, local, or on another host). Backends register it
 * with the service property {@link #BACKEND_ID}; the core picks one by filter.
 *
 * <p>Handles passed in and out are the backend's own; the core hands applications virtual handles
 * and translates. Every method returns a {@link CuResult} code; out-parameters are one-element
 * arrays. Device addresses are chosen by the core ({@link #memAlloc}), so a session's pointers can
 * stay identical when it moves to another backend.
 *
 * <p>Stream handle 0 is the context's default stream. Implementations must be safe to call from
 * many sessions at once; calls of one session arrive in order from one thread.
 */
@ProviderType
public interface CudaService {
    /** Service property naming the backend, e.g. {@code backend.id=mock}. */
    String BACKEND_ID = "backend.id";

    BackendInfo info();

    /** The devices in ordinal order; empty when unavailable. */
    DeviceInfo[] devices();

    /** Free and total bytes of a device: {@code out[0]} free, {@code out[1]} total. */
    int memGetInfo(int device, long[] out);

    // --- contexts

    /**
     * Creates a context. {@code owner} groups contexts of one client: memory is visible to the
     * kernels of the contexts of the same owner only.
     */
    int ctxCreate(int device, int flags, long owner, long[] ctx);

    /** Releases everything the context still holds (memory, modules, streams, events). */
    int ctxDestroy(long ctx);

    int ctxSynchronize(long ctx);

    // --- memory: linear allocations at an address the caller picks

    int memAlloc(long ctx, long address, long size);

    int memFree(long ctx, long address);

    /** Copies {@code src.remaining()} bytes to {@code dst}; advances {@code src}. */
    int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream);

    /** Fills {@code dst.remaining()} bytes from {@code src}; advances {@code dst}. */
    int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream);

    int memcpyDtoD(long ctx, long dst, long src, long size, long stream);

    /** Stores {@code count} elements of {@code elementSize} (1, 2 or 4) bytes holding {@code value}. */
    int memset(long ctx, long dst, int value, int elementSize, long count, long stream);

    // --- virtual memory management: physical allocations mapped at caller-chosen addresses

    /** Creates physical memory on the context's device, owned by the context's owner. */
    int memCreate(long ctx, long size, long[] handle);

    int memRelease(long handle);

    int memMap(long ctx, long address, long size, long offset, long handle);

    int memUnmap(long ctx, long address, long size);

    // --- modules and launches

    /** Loads an image whose globals the core placed at {@code globalsBase}. */
    int moduleLoad(long ctx, ModuleImage image, long globalsBase, long[] module);

    int moduleUnload(long module);

    int functionGet(long module, String name, long[] function);

    /** A {@code CUfunction_attribute} of a function. */
    int functionGetAttribute(long function, int attribute, int[] value);

    /** Launches with a packed parameter buffer laid out as the kernel's {@code KernelInfo} says. */
    int launch(long function, LaunchConfig config, ByteBuffer params, long stream);

    // --- streams and events

    int streamCreate(long ctx, int flags, int priority, long[] stream);

    int streamDestroy(long stream);

    int streamSynchronize(long stream);

    /** {@link CuResult#SUCCESS} when all work is done, {@link CuResult#NOT_READY} otherwise. */
    int streamQuery(long stream);

    int streamWaitEvent(long stream, long event);

    int eventCreate(long ctx, int flags, long[] event);

    int eventDestroy(long event);

    int eventRecord(long event, long stream);

    int eventQuery(long event);

    int eventSynchronize(long event);

    int eventElapsedTime(long start, long end, float[] millis);

    /**
     * The client of {@code owner} is gone (or the service is stopping): work of that owner running
     * now should stop as soon as it can, failing with any error, since nobody waits for its result.
     * The core destroys the owner's contexts next. Called from any thread, possibly while a call
     * of that owner runs; must not block. By default nothing stops early (the core still splits
     * copies and memsets into bounded pieces and stops between them).
     */
    default void abandon(long owner) {
    }

    // --- what live migration asks of a source backend (both optional)

    /**
     * The parts of {@code [address, address+size)} (mapped for the context's owner) that may hold
     * anything but zeros: ascending, disjoint {@code start, length} pairs. Migration copies only
     * these. Null when the backend cannot say, and then everything is copied.
     */
    default long[] writtenRanges(long ctx, long address, long size) {
        return null;
    }

    /**
     * Starts ({@code on}) or stops tracking writes to the memory of the context's owner on the
     * context's device, for {@link #takeDirtyRanges}. The core turns it on while no work of the
     * owner runs. False when the backend cannot track writes: migration then stops the session for
     * the whole copy.
     */
    default boolean trackWrites(long ctx, boolean on) {
        return false;
    }

    /**
     * The parts of {@code [address, address+size)} written since the previous call for the same
     * memory, or since tracking was turned on, as {@link #writtenRanges} gives them; each call
     * starts a new interval. May report more than was written, never less, including writes that
     * run while it is called. Lets migration copy while the application runs and then only what
     * changed meanwhile. Null when writes are not tracked.
     */
    default long[] takeDirtyRanges(long ctx, long address, long size) {
        return null;
    }

    /**
     * The device address window the core chooses this service's addresses from: every address
     * passed to {@link #memAlloc}, {@link #memMap} and {@link #moduleLoad} lies in
     * {@code [base, base+size)}. Called when the core binds the backend, before any session uses
     * it, and again when the window changes (only while no session is open). A backend that shares
     * an address space with other cores (a remote host serving several guests) announces it; by
     * default nothing needs it.
     */
    default void addressWindow(long base, long size) {
    }

    /** The most recent launches, oldest first, for backends that record them. */
    default java.util.List<io.vgpu.api.dto.LaunchRecord> launchLog(int max) {
        return java.util.List.of();
    }

    /**
     * Registers {@code listener}, called (on a thread of the backend's, at most once per drain)
     * when the backend is about to go away in order and still serves its contexts for a while:
     * the core then moves its sessions elsewhere. By default a backend never drains.
     */
    default void onDraining(Runnable listener) {
    }
}
