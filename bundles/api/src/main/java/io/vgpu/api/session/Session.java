package io.vgpu.api.session;

import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.SessionInfo;
import java.nio.ByteBuffer;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One client's CUDA state, held in the core as virtual handles so that it does not depend on the
 * backend that serves it. Methods mirror the driver API and return {@code CUresult} codes;
 * out-parameters are one-element arrays. A session is used by one thread at a time, except for
 * {@link #info()}, {@link #abandon()} and {@link #close()}, which any thread may call at any time:
 * {@code info()} and {@code abandon()} never wait for a request that is running.
 */
@ProviderType
public interface Session extends AutoCloseable {
    long id();

    SessionInfo info();

    /**
     * {@code CUDA_SUCCESS} when a backend serves this session, {@code CUDA_ERROR_NO_DEVICE} when
     * none is available, {@code CUDA_ERROR_DEVICE_UNAVAILABLE} when its backend went away.
     */
    int check();

    /** The driver version the service reports ({@code cuDriverGetVersion}). */
    int driverVersion();

    /** Start and size of the device address window all device pointers come from. */
    long[] addressWindow();

    DeviceInfo[] devices();

    int memGetInfo(int device, long[] freeAndTotal);

    int ctxCreate(int device, int flags, long[] ctx);

    int ctxDestroy(long ctx);

    int ctxSynchronize(long ctx);

    int memAlloc(long ctx, long size, long[] address);

    int memFree(long ctx, long address);

    /** Base and size of the allocation holding {@code address}. */
    int memGetAddressRange(long address, long[] baseAndSize);

    int memcpyHtoD(long ctx, long dst, ByteBuffer src, long stream);

    int memcpyDtoH(long ctx, ByteBuffer dst, long src, long stream);

    int memcpyDtoD(long ctx, long dst, long src, long size, long stream);

    int memset(long ctx, long dst, int value, int elementSize, long count, long stream);

    int memAddressReserve(long size, long alignment, long hint, long[] address);

    int memAddressFree(long address, long size);

    int memCreate(int device, long size, long[] handle);

    int memRelease(long handle);

    int memMap(long address, long size, long offset, long handle);

    int memUnmap(long address, long size);

    int moduleLoad(long ctx, byte[] image, long[] module);

    /**
     * Loads an image the service already holds, named by the SHA-256 of its bytes, without
     * uploading it again; {@code CUDA_ERROR_NOT_FOUND} when the service does not have it.
     */
    int moduleLoadCached(long ctx, byte[] sha256, long[] module);

    int moduleUnload(long module);

    /** Looks a kernel up; {@code info[0]} receives its parameter layout and attributes. */
    int functionGet(long module, String name, long[] function, KernelInfo[] info);

    int functionGetAttribute(long function, int attribute, int[] value);

    int globalGet(long module, String name, long[] addressAndSize);

    int launch(long function, LaunchConfig config, ByteBuffer params, long stream);

    int streamCreate(long ctx, int flags, int priority, long[] stream);

    int streamDestroy(long stream);

    int streamSynchronize(long stream);

    int streamQuery(long stream);

    int streamWaitEvent(long stream, long event);

    int eventCreate(long ctx, int flags, long[] event);

    int eventDestroy(long event);

    int eventRecord(long event, long stream);

    int eventQuery(long event);

    int eventSynchronize(long event);

    int eventElapsedTime(long start, long end, float[] millis);

    /**
     * The client is gone, or the service is stopping: the request running now stops as soon as it
     * can (copies and memsets between bounded pieces, kernels on the backend's next check) and
     * every later request answers {@code CUDA_ERROR_DEINITIALIZED}. Never blocks; idempotent;
     * {@link #close()} still releases what the session holds. The default does nothing, for
     * sessions whose requests are all short.
     */
    default void abandon() {
    }

    /**
     * Lets {@code guard} admit or refuse this session's migrations and hear how they end (memory
     * quotas of the transport); null removes it. Called once, before the session's first request
     * that holds device memory. The default ignores it, for sessions that never move.
     */
    default void guardMigrations(MigrationGuard guard) {
    }

    /**
     * Releases everything the session holds on its backend. Idempotent. From another thread it
     * first abandons the running request, then waits for it to return.
     */
    @Override
    void close();
}
