package io.vgpu.shim.bridge.internal;

import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.dto.BackendInfo;
import io.vgpu.api.dto.MigrationRecord;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.LaunchRecord;
import io.vgpu.api.dto.RouterStatus;
import io.vgpu.api.dto.SessionInfo;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes one request's fields, calls the session (or the session manager for the service-wide
 * ops) and encodes the reply payload into the connection's reply buffer at {@link Wire#HEADER}.
 * Framing, the handshake, async bookkeeping and BATCH are the {@link Connection}'s.
 *
 * <p>Out-parameter arrays and buffer views are reused: MEMCPY*, MEMSET and EVENT_RECORD allocate
 * nothing here, LAUNCH only its {@link LaunchConfig}.
 */
final class Dispatcher {
    private static final int R = Wire.HEADER;
    /** Launch records are bounded by the payload limit anyway; this keeps a huge {@code max} cheap. */
    static final int MAX_LAUNCH_RECORDS = 65536;
    /** SERVICE_ID: this process, which a backend loading vgpu's own shim compares with itself. */
    private static final ProcessHandle SELF = ProcessHandle.current();
    private static final long STARTED_MS = SELF.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(0L);

    private final SessionManager manager;
    private final Session session;
    private final FrameChannel io;
    private final MemoryQuotas quotas;
    private SharedMemory shm;

    private final long[] long1 = new long[1];
    private final long[] long2 = new long[2];
    private final int[] int1 = new int[1];
    private final float[] float1 = new float[1];
    private final KernelInfo[] kernel1 = new KernelInfo[1];

    /** Views of the request and reply buffers, rebuilt only when the connection grows a buffer. */
    private ByteBuffer requestBuffer;
    private ByteBuffer requestView;
    private ByteBuffer launchParams = Frame.allocate(4096);
    private ByteBuffer replyBuffer;
    private ByteBuffer replyView;

    /** Payload bytes of the reply being built; preset to the op's fixed reply size. */
    private int replyLength;

    /** {@code session} is null for a control connection, which only reaches the manager. */
    Dispatcher(SessionManager manager, Session session, FrameChannel io, MemoryQuotas quotas) {
        this.manager = manager;
        this.session = session;
        this.io = io;
        this.quotas = quotas;
    }

    void shm(SharedMemory shm) {
        this.shm = shm;
    }

    int replyLength() {
        return replyLength;
    }

    /**
     * Executes {@code op} whose payload is {@code [p, p + len)} of {@code q}; the caller has
     * checked that {@code len} covers the op's fixed request fields.
     */
    int execute(int op, ByteBuffer q, int p, int len) {
        ByteBuffer r = blank(op);
        switch (op) {
            case Wire.PING:
            case Wire.GOODBYE:
                return CuResult.SUCCESS;
            case Wire.SERVICE_STATUS:
                return serviceStatus();
            case Wire.SERVICE_ID:
                r.putInt(R + Wire.ServiceId.REP_PID, (int) SELF.pid()).putLong(R + Wire.ServiceId.REP_STARTED_MS, STARTED_MS);
                return CuResult.SUCCESS;
            case Wire.SESSION_LIST:
                return sessionList();
            case Wire.SESSION_DEVICES:
                return sessionDevices();
            case Wire.QUOTA_LIST:
                return quotaList();
            case Wire.LAUNCH_LOG:
                return launchLog(q.getInt(p + Wire.LaunchLog.REQ_MAX));
            case Wire.BACKEND_LIST:
                return backendList();
            case Wire.SESSION_MIGRATE:
                return sessionMigrate(q.getLong(p + Wire.SessionMigrate.REQ_SESSION), q.getInt(p + Wire.SessionMigrate.REQ_FLAGS),
                        Frame.string(q, p + Wire.SessionMigrate.REQ_BACKEND, Wire.SessionMigrate.REQ_FIXED - Wire.SessionMigrate.REQ_BACKEND));
            case Wire.MIGRATION_LOG: {
                List<MigrationRecord> all = new ArrayList<>();
                for (SessionInfo s : manager.sessions()) {
                    all.addAll(s.migrations);
                }
                return migrations(all);
            }
            case Wire.DEVICE_LIST:
                return deviceList();
            case Wire.MEM_GET_INFO: {
                int rc = session.memGetInfo(q.getInt(p + Wire.MemGetInfo.REQ_DEVICE), long2);
                if (rc == CuResult.SUCCESS) {
                    r.putLong(R + Wire.MemGetInfo.REP_FREE, long2[0]).putLong(R + Wire.MemGetInfo.REP_TOTAL, long2[1]);
                }
                return rc;
            }
            case Wire.CTX_CREATE:
                return handle(r, Wire.CtxCreate.REP_CTX, session.ctxCreate(q.getInt(p + Wire.CtxCreate.REQ_DEVICE),
                        q.getInt(p + Wire.CtxCreate.REQ_FLAGS), long1));
            case Wire.CTX_DESTROY:
                return session.ctxDestroy(q.getLong(p + Wire.CtxDestroy.REQ_CTX));
            case Wire.CTX_SYNCHRONIZE:
                return session.ctxSynchronize(q.getLong(p + Wire.CtxSynchronize.REQ_CTX));
            case Wire.MEM_ALLOC:
                return handle(r, Wire.MemAlloc.REP_PTR, session.memAlloc(q.getLong(p + Wire.MemAlloc.REQ_CTX),
                        q.getLong(p + Wire.MemAlloc.REQ_SIZE), long1));
            case Wire.MEM_FREE:
                return session.memFree(q.getLong(p + Wire.MemFree.REQ_CTX), q.getLong(p + Wire.MemFree.REQ_PTR));
            case Wire.MEMCPY_HTOD:
                return session.memcpyHtoD(q.getLong(p + Wire.MemcpyHtod.REQ_CTX), q.getLong(p + Wire.MemcpyHtod.REQ_DST),
                        requestView(q, p + Wire.MemcpyHtod.REQ_DATA, p + len), q.getLong(p + Wire.MemcpyHtod.REQ_STREAM));
            case Wire.MEMCPY_HTOD_SHM: {
                ByteBuffer src = shmRegion(q.getLong(p + Wire.MemcpyHtodShm.REQ_SHM_OFFSET),
                        q.getLong(p + Wire.MemcpyHtodShm.REQ_SIZE));
                return src == null ? CuResult.INVALID_VALUE
                        : session.memcpyHtoD(q.getLong(p + Wire.MemcpyHtodShm.REQ_CTX),
                                q.getLong(p + Wire.MemcpyHtodShm.REQ_DST), src, q.getLong(p + Wire.MemcpyHtodShm.REQ_STREAM));
            }
            case Wire.MEMCPY_DTOH:
                return memcpyDtoH(q.getLong(p + Wire.MemcpyDtoh.REQ_CTX), q.getLong(p + Wire.MemcpyDtoh.REQ_SRC),
                        q.getLong(p + Wire.MemcpyDtoh.REQ_STREAM), q.getLong(p + Wire.MemcpyDtoh.REQ_SIZE));
            case Wire.MEMCPY_DTOH_SHM: {
                ByteBuffer dst = shmRegion(q.getLong(p + Wire.MemcpyDtohShm.REQ_SHM_OFFSET),
                        q.getLong(p + Wire.MemcpyDtohShm.REQ_SIZE));
                return dst == null ? CuResult.INVALID_VALUE
                        : session.memcpyDtoH(q.getLong(p + Wire.MemcpyDtohShm.REQ_CTX), dst,
                                q.getLong(p + Wire.MemcpyDtohShm.REQ_SRC), q.getLong(p + Wire.MemcpyDtohShm.REQ_STREAM));
            }
            case Wire.MEMCPY_DTOD:
                return session.memcpyDtoD(q.getLong(p + Wire.MemcpyDtod.REQ_CTX), q.getLong(p + Wire.MemcpyDtod.REQ_DST),
                        q.getLong(p + Wire.MemcpyDtod.REQ_SRC), q.getLong(p + Wire.MemcpyDtod.REQ_SIZE),
                        q.getLong(p + Wire.MemcpyDtod.REQ_STREAM));
            case Wire.MEMSET:
                return session.memset(q.getLong(p + Wire.Memset.REQ_CTX), q.getLong(p + Wire.Memset.REQ_DST),
                        q.getInt(p + Wire.Memset.REQ_VALUE), q.getInt(p + Wire.Memset.REQ_ELEMENT_SIZE),
                        q.getLong(p + Wire.Memset.REQ_COUNT), q.getLong(p + Wire.Memset.REQ_STREAM));
            case Wire.MEM_GET_ADDRESS_RANGE: {
                int rc = session.memGetAddressRange(q.getLong(p + Wire.MemGetAddressRange.REQ_PTR), long2);
                if (rc == CuResult.SUCCESS) {
                    r.putLong(R + Wire.MemGetAddressRange.REP_BASE, long2[0])
                            .putLong(R + Wire.MemGetAddressRange.REP_SIZE, long2[1]);
                }
                return rc;
            }
            case Wire.MEM_ADDRESS_RESERVE:
                return handle(r, Wire.MemAddressReserve.REP_PTR, session.memAddressReserve(
                        q.getLong(p + Wire.MemAddressReserve.REQ_SIZE), q.getLong(p + Wire.MemAddressReserve.REQ_ALIGNMENT),
                        q.getLong(p + Wire.MemAddressReserve.REQ_HINT), long1));
            case Wire.MEM_ADDRESS_FREE:
                return session.memAddressFree(q.getLong(p + Wire.MemAddressFree.REQ_PTR),
                        q.getLong(p + Wire.MemAddressFree.REQ_SIZE));
            case Wire.MEM_CREATE:
                return handle(r, Wire.MemCreate.REP_HANDLE, session.memCreate(q.getInt(p + Wire.MemCreate.REQ_DEVICE),
                        q.getLong(p + Wire.MemCreate.REQ_SIZE), long1));
            case Wire.MEM_RELEASE:
                return session.memRelease(q.getLong(p + Wire.MemRelease.REQ_HANDLE));
            case Wire.MEM_MAP:
                return session.memMap(q.getLong(p + Wire.MemMap.REQ_PTR), q.getLong(p + Wire.MemMap.REQ_SIZE),
                        q.getLong(p + Wire.MemMap.REQ_OFFSET), q.getLong(p + Wire.MemMap.REQ_HANDLE));
            case Wire.MEM_UNMAP:
                return session.memUnmap(q.getLong(p + Wire.MemUnmap.REQ_PTR), q.getLong(p + Wire.MemUnmap.REQ_SIZE));
            case Wire.MODULE_LOAD: {
                byte[] image = new byte[len - Wire.ModuleLoad.REQ_IMAGE];
                q.get(p + Wire.ModuleLoad.REQ_IMAGE, image);
                return handle(r, Wire.ModuleLoad.REP_MODULE, session.moduleLoad(q.getLong(p + Wire.ModuleLoad.REQ_CTX), image, long1));
            }
            case Wire.MODULE_LOAD_CACHED: {
                byte[] sha256 = new byte[32];
                q.get(p + Wire.ModuleLoadCached.REQ_SHA256, sha256);
                return handle(r, Wire.ModuleLoadCached.REP_MODULE,
                        session.moduleLoadCached(q.getLong(p + Wire.ModuleLoadCached.REQ_CTX), sha256, long1));
            }
            case Wire.MODULE_UNLOAD:
                return session.moduleUnload(q.getLong(p + Wire.ModuleUnload.REQ_MODULE));
            case Wire.FUNCTION_GET:
                return functionGet(q.getLong(p + Wire.FunctionGet.REQ_MODULE),
                        Frame.tailString(q, p + Wire.FunctionGet.REQ_NAME, len - Wire.FunctionGet.REQ_NAME));
            case Wire.GLOBAL_GET: {
                int rc = session.globalGet(q.getLong(p + Wire.GlobalGet.REQ_MODULE),
                        Frame.tailString(q, p + Wire.GlobalGet.REQ_NAME, len - Wire.GlobalGet.REQ_NAME), long2);
                if (rc == CuResult.SUCCESS) {
                    r.putLong(R + Wire.GlobalGet.REP_PTR, long2[0]).putLong(R + Wire.GlobalGet.REP_SIZE, long2[1]);
                }
                return rc;
            }
            case Wire.FUNCTION_GET_ATTRIBUTE: {
                int rc = session.functionGetAttribute(q.getLong(p + Wire.FunctionGetAttribute.REQ_FUNCTION),
                        q.getInt(p + Wire.FunctionGetAttribute.REQ_ATTRIBUTE), int1);
                if (rc == CuResult.SUCCESS) {
                    r.putInt(R + Wire.FunctionGetAttribute.REP_VALUE, int1[0]);
                }
                return rc;
            }
            case Wire.LAUNCH:
                return launch(q, p, len);
            case Wire.STREAM_CREATE:
                return handle(r, Wire.StreamCreate.REP_STREAM, session.streamCreate(q.getLong(p + Wire.StreamCreate.REQ_CTX),
                        q.getInt(p + Wire.StreamCreate.REQ_FLAGS), q.getInt(p + Wire.StreamCreate.REQ_PRIORITY), long1));
            case Wire.STREAM_DESTROY:
                return session.streamDestroy(q.getLong(p + Wire.StreamDestroy.REQ_STREAM));
            case Wire.STREAM_SYNCHRONIZE:
                return session.streamSynchronize(q.getLong(p + Wire.StreamSynchronize.REQ_STREAM));
            case Wire.STREAM_QUERY:
                return session.streamQuery(q.getLong(p + Wire.StreamQuery.REQ_STREAM));
            case Wire.STREAM_WAIT_EVENT:
                return session.streamWaitEvent(q.getLong(p + Wire.StreamWaitEvent.REQ_STREAM),
                        q.getLong(p + Wire.StreamWaitEvent.REQ_EVENT));
            case Wire.EVENT_CREATE:
                return handle(r, Wire.EventCreate.REP_EVENT, session.eventCreate(q.getLong(p + Wire.EventCreate.REQ_CTX),
                        q.getInt(p + Wire.EventCreate.REQ_FLAGS), long1));
            case Wire.EVENT_DESTROY:
                return session.eventDestroy(q.getLong(p + Wire.EventDestroy.REQ_EVENT));
            case Wire.EVENT_RECORD:
                return session.eventRecord(q.getLong(p + Wire.EventRecord.REQ_EVENT), q.getLong(p + Wire.EventRecord.REQ_STREAM));
            case Wire.EVENT_QUERY:
                return session.eventQuery(q.getLong(p + Wire.EventQuery.REQ_EVENT));
            case Wire.EVENT_SYNCHRONIZE:
                return session.eventSynchronize(q.getLong(p + Wire.EventSynchronize.REQ_EVENT));
            case Wire.EVENT_ELAPSED_TIME: {
                int rc = session.eventElapsedTime(q.getLong(p + Wire.EventElapsedTime.REQ_START),
                        q.getLong(p + Wire.EventElapsedTime.REQ_END), float1);
                if (rc == CuResult.SUCCESS) {
                    r.putFloat(R + Wire.EventElapsedTime.REP_MILLIS, float1[0]);
                }
                return rc;
            }
            default:
                // HELLO and BATCH are the connection's; Ops.isKnown rejected everything else.
                throw new IllegalStateException("op " + Wire.name(op) + " reached the dispatcher");
        }
    }

    /**
     * Prepares an all-zero reply of the op's fixed size: what a failed request answers, so no
     * bytes of an earlier reply leak into it.
     */
    ByteBuffer blank(int op) {
        int fixed = Ops.replyFixed(op);
        ByteBuffer r = io.out(fixed);
        for (int i = 0; i < fixed; i += 4) {
            r.putInt(R + i, 0);
        }
        replyLength = fixed;
        return r;
    }

    /** Writes {@code long1[0]} as the reply's only field when {@code rc} is success. */
    private int handle(ByteBuffer r, int field, int rc) {
        if (rc == CuResult.SUCCESS) {
            r.putLong(R + field, long1[0]);
        }
        return rc;
    }

    private ByteBuffer requestView(ByteBuffer q, int from, int to) {
        if (q != requestBuffer) {
            requestBuffer = q;
            requestView = q.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
        requestView.clear().position(from).limit(to);
        return requestView;
    }

    private ByteBuffer shmRegion(long offset, long size) {
        return shm == null ? null : shm.region(offset, size);
    }

    private int memcpyDtoH(long ctx, long src, long stream, long size) {
        if (size < 0 || size > Frame.MAX_PAYLOAD) {
            return CuResult.INVALID_VALUE;
        }
        ByteBuffer r = io.out((int) size);
        if (r != replyBuffer) {
            replyBuffer = r;
            replyView = r.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
        replyView.clear().position(R).limit(R + (int) size);
        int rc = session.memcpyDtoH(ctx, replyView, src, stream);
        if (rc == CuResult.SUCCESS) {
            replyLength = (int) size;
        }
        return rc;
    }

    private int launch(ByteBuffer q, int p, int len) {
        // A new LaunchConfig each time: backends may keep it (the mock's launch log does).
        LaunchConfig config = new LaunchConfig(q.getInt(p + Wire.Launch.REQ_GRID_X), q.getInt(p + Wire.Launch.REQ_GRID_Y),
                q.getInt(p + Wire.Launch.REQ_GRID_Z), q.getInt(p + Wire.Launch.REQ_BLOCK_X),
                q.getInt(p + Wire.Launch.REQ_BLOCK_Y), q.getInt(p + Wire.Launch.REQ_BLOCK_Z),
                q.getInt(p + Wire.Launch.REQ_SHARED_MEM));
        int n = len - Wire.Launch.REQ_PARAMS;
        // Backends read parameters from offset 0 (KernelLaunch's contract), and a frame sits
        // anywhere in the receive buffer: a copy into one reused buffer beats a slice per launch.
        if (launchParams.capacity() < n) {
            launchParams = Frame.allocate(Math.max(n, 2 * launchParams.capacity()));
        }
        ByteBuffer params = launchParams.clear().put(0, q, p + Wire.Launch.REQ_PARAMS, n).limit(n);
        return session.launch(q.getLong(p + Wire.Launch.REQ_FUNCTION), config, params, q.getLong(p + Wire.Launch.REQ_STREAM));
    }

    private int functionGet(long module, String name) {
        kernel1[0] = null;
        int rc = session.functionGet(module, name, long1, kernel1);
        KernelInfo k = kernel1[0];
        if (rc != CuResult.SUCCESS || k == null) {
            return rc;
        }
        int count = Math.min(k.paramOffsets.length, k.paramSizes.length);
        ByteBuffer r = io.out(Wire.FunctionGet.REP_FIXED + count * Wire.Param.FIXED);
        r.putLong(R + Wire.FunctionGet.REP_FUNCTION, long1[0])
                .putInt(R + Wire.FunctionGet.REP_PARAM_COUNT, count)
                .putInt(R + Wire.FunctionGet.REP_PARAM_BUFFER_SIZE, k.paramBufferSize)
                .putInt(R + Wire.FunctionGet.REP_MAX_THREADS_PER_BLOCK, k.maxThreadsPerBlock)
                .putInt(R + Wire.FunctionGet.REP_NUM_REGS, k.numRegs)
                .putInt(R + Wire.FunctionGet.REP_SHARED_SIZE_BYTES, k.sharedSizeBytes)
                .putInt(R + Wire.FunctionGet.REP_CONST_SIZE_BYTES, k.constSizeBytes)
                .putInt(R + Wire.FunctionGet.REP_LOCAL_SIZE_BYTES, k.localSizeBytes)
                .putInt(R + Wire.FunctionGet.REP_PAD, 0);
        int at = R + Wire.FunctionGet.REP_PARAMS;
        for (int i = 0; i < count; i++, at += Wire.Param.FIXED) {
            r.putInt(at + Wire.Param.OFFSET, k.paramOffsets[i]).putInt(at + Wire.Param.SIZE, k.paramSizes[i]);
        }
        replyLength = Wire.FunctionGet.REP_FIXED + count * Wire.Param.FIXED;
        return rc;
    }

    private int deviceList() {
        DeviceInfo[] devices = session.devices();
        int count = devices == null ? 0 : devices.length;
        int rc = count == 0 ? session.check() : CuResult.SUCCESS;
        ByteBuffer r = io.out(Wire.DeviceList.REP_FIXED + count * Wire.Device.FIXED);
        r.putInt(R + Wire.DeviceList.REP_COUNT, count).putInt(R + Wire.DeviceList.REP_ATTRIBUTE_COUNT, CuDeviceAttribute.MAX);
        int at = R + Wire.DeviceList.REP_DEVICES;
        for (int i = 0; i < count; i++, at += Wire.Device.FIXED) {
            DeviceInfo d = devices[i];
            r.putLong(at + Wire.Device.TOTAL_MEMORY, d.totalMemory);
            Frame.putString(r, at + Wire.Device.NAME, Wire.Device.UUID - Wire.Device.NAME, d.name);
            // The UUID is 16 raw bytes (CUuuid), not a string: no NUL terminator.
            for (int b = 0; b < 16; b++) {
                r.put(at + Wire.Device.UUID + b, d.uuid != null && b < d.uuid.length ? d.uuid[b] : 0);
            }
            for (int a = 0; a < CuDeviceAttribute.MAX; a++) {
                r.putInt(at + Wire.Device.ATTRIBUTES + 4 * a, d.attribute(a));
            }
        }
        replyLength = Wire.DeviceList.REP_FIXED + count * Wire.Device.FIXED;
        return rc;
    }

    private int serviceStatus() {
        RouterStatus st = manager.status();
        String text = (st.message == null ? "" : st.message) + (st.images != null ? "\n" + st.images : "");
        byte[] message = text.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(message.length, Frame.MAX_PAYLOAD - Wire.ServiceStatus.REP_FIXED);
        ByteBuffer r = io.out(Wire.ServiceStatus.REP_FIXED + n);
        r.putInt(R + Wire.ServiceStatus.REP_BACKEND_PRESENT, st.backendPresent ? 1 : 0)
                .putInt(R + Wire.ServiceStatus.REP_SESSIONS, st.sessions)
                .putInt(R + Wire.ServiceStatus.REP_DRIVER_VERSION, st.driverVersion);
        Frame.putString(r, R + Wire.ServiceStatus.REP_BACKEND, 64, st.activeBackend);
        r.put(R + Wire.ServiceStatus.REP_MESSAGE, message, 0, n);
        replyLength = Wire.ServiceStatus.REP_FIXED + n;
        return CuResult.SUCCESS;
    }

    private int sessionList() {
        List<SessionInfo> sessions = manager.sessions();
        int count = Math.min(sessions.size(), Frame.MAX_PAYLOAD / Wire.Session.FIXED);
        ByteBuffer r = io.out(count * Wire.Session.FIXED);
        int at = R + Wire.SessionList.REP_SESSIONS;
        for (int i = 0; i < count; i++, at += Wire.Session.FIXED) {
            SessionInfo s = sessions.get(i);
            r.putLong(at + Wire.Session.ID, s.id)
                    .putLong(at + Wire.Session.MEMORY_USED, s.memoryUsed)
                    .putLong(at + Wire.Session.LAUNCHES, s.launches)
                    .putInt(at + Wire.Session.PID, s.pid)
                    .putInt(at + Wire.Session.UID, s.uid)
                    .putInt(at + Wire.Session.CONTEXTS, s.contexts)
                    .putInt(at + Wire.Session.PAD, 0);
            Frame.putString(r, at + Wire.Session.PROCESS, Wire.Session.BACKEND - Wire.Session.PROCESS, s.processName);
            Frame.putString(r, at + Wire.Session.BACKEND, Wire.Session.STATUS - Wire.Session.BACKEND, s.backend);
            Frame.putString(r, at + Wire.Session.STATUS, Wire.Session.FIXED - Wire.Session.STATUS, s.status);
        }
        replyLength = count * Wire.Session.FIXED;
        return CuResult.SUCCESS;
    }

    private record DeviceUse(SessionInfo session, int device) {}

    /** One SESSION_DEVICE record per device a session has a context or memory on. */
    private int sessionDevices() {
        List<DeviceUse> uses = new ArrayList<>();
        int max = Frame.MAX_PAYLOAD / Wire.SessionDevice.FIXED;
        for (SessionInfo s : manager.sessions()) {
            for (int d = 0; d < s.deviceMemory.length && uses.size() < max; d++) {
                if (s.deviceMemory[d] != 0 || s.deviceContexts[d] != 0) {
                    uses.add(new DeviceUse(s, d));
                }
            }
        }
        ByteBuffer r = io.out(uses.size() * Wire.SessionDevice.FIXED);
        int at = R + Wire.SessionDevices.REP_USAGES;
        for (DeviceUse u : uses) {
            r.putLong(at + Wire.SessionDevice.SESSION, u.session.id)
                    .putLong(at + Wire.SessionDevice.MEMORY_USED, u.session.deviceMemory[u.device])
                    .putInt(at + Wire.SessionDevice.PID, u.session.pid)
                    .putInt(at + Wire.SessionDevice.DEVICE, u.device);
            Frame.putString(r, at + Wire.SessionDevice.BACKEND, Wire.SessionDevice.FIXED - Wire.SessionDevice.BACKEND,
                    u.session.backend);
            at += Wire.SessionDevice.FIXED;
        }
        replyLength = uses.size() * Wire.SessionDevice.FIXED;
        return CuResult.SUCCESS;
    }

    /** Every memory quota with its usage per device, then each session's tightest quota. */
    private int quotaList() {
        List<MemoryQuotas.Row> rows = quotas.rows();
        List<java.util.Map.Entry<Long, MemoryQuotas.Quota>> sessions = new ArrayList<>();
        for (var e : quotas.sessions().entrySet()) {
            if (e.getValue() != null) {
                sessions.add(e);
            }
        }
        int maxRows = (Frame.MAX_PAYLOAD - Wire.QuotaList.REP_FIXED) / 2 / Wire.Quota.FIXED;
        int nq = Math.min(rows.size(), maxRows);
        int ns = Math.min(sessions.size(), (Frame.MAX_PAYLOAD - Wire.QuotaList.REP_FIXED) / 2 / Wire.SessionQuota.FIXED);
        int length = Wire.QuotaList.REP_FIXED + nq * Wire.Quota.FIXED + ns * Wire.SessionQuota.FIXED;
        ByteBuffer r = io.out(length);
        r.putInt(R + Wire.QuotaList.REP_QUOTA_COUNT, nq).putInt(R + Wire.QuotaList.REP_SESSION_COUNT, ns);
        int at = R + Wire.QuotaList.REP_RECORDS;
        for (int i = 0; i < nq; i++, at += Wire.Quota.FIXED) {
            MemoryQuotas.Row q = rows.get(i);
            r.putLong(at + Wire.Quota.LIMIT, q.limit())
                    .putLong(at + Wire.Quota.USED, q.used())
                    .putInt(at + Wire.Quota.DEVICE, q.device() == null ? -1 : q.device().ordinal())
                    .putInt(at + Wire.Quota.SESSIONS, q.holders());
            Frame.putString(r, at + Wire.Quota.BACKEND, Wire.Quota.NAME - Wire.Quota.BACKEND,
                    q.device() == null ? "" : q.device().backend());
            Frame.putString(r, at + Wire.Quota.NAME, Wire.Quota.FIXED - Wire.Quota.NAME, q.name());
        }
        for (int i = 0; i < ns; i++, at += Wire.SessionQuota.FIXED) {
            var e = sessions.get(i);
            r.putLong(at + Wire.SessionQuota.SESSION, e.getKey()).putLong(at + Wire.SessionQuota.LIMIT, e.getValue().limit);
            Frame.putString(r, at + Wire.SessionQuota.QUOTA, Wire.SessionQuota.FIXED - Wire.SessionQuota.QUOTA,
                    e.getValue().name);
        }
        replyLength = length;
        return CuResult.SUCCESS;
    }

    private int launchLog(int max) {
        int want = (int) Math.min(Integer.toUnsignedLong(max),
                Math.min(MAX_LAUNCH_RECORDS, Frame.MAX_PAYLOAD / Wire.LaunchRecord.FIXED));
        List<LaunchRecord> records = want == 0 ? List.of() : manager.launchLog(null, want);
        int count = Math.min(records.size(), want);
        ByteBuffer r = io.out(count * Wire.LaunchRecord.FIXED);
        int at = R + Wire.LaunchLog.REP_RECORDS;
        for (int i = records.size() - count; i < records.size(); i++, at += Wire.LaunchRecord.FIXED) {
            LaunchRecord l = records.get(i);
            LaunchConfig c = l.config != null ? l.config : new LaunchConfig();
            r.putLong(at + Wire.LaunchRecord.SEQUENCE, l.sequence)
                    .putInt(at + Wire.LaunchRecord.GRID_X, c.gridX)
                    .putInt(at + Wire.LaunchRecord.GRID_Y, c.gridY)
                    .putInt(at + Wire.LaunchRecord.GRID_Z, c.gridZ)
                    .putInt(at + Wire.LaunchRecord.BLOCK_X, c.blockX)
                    .putInt(at + Wire.LaunchRecord.BLOCK_Y, c.blockY)
                    .putInt(at + Wire.LaunchRecord.BLOCK_Z, c.blockZ)
                    .putInt(at + Wire.LaunchRecord.SHARED_MEM, c.sharedMemBytes)
                    .putInt(at + Wire.LaunchRecord.PARAM_BYTES, l.paramBytes)
                    .putInt(at + Wire.LaunchRecord.EXECUTED, l.executed ? 1 : 0)
                    .putInt(at + Wire.LaunchRecord.RESULT, l.result);
            Frame.putString(r, at + Wire.LaunchRecord.KERNEL, Wire.LaunchRecord.FIXED - Wire.LaunchRecord.KERNEL, l.kernel);
        }
        replyLength = count * Wire.LaunchRecord.FIXED;
        return CuResult.SUCCESS;
    }

    /** SESSION_MIGRATE flags. */
    static final int MIGRATE_ALL = 1;
    static final int MIGRATE_STOP_AND_COPY = 2;

    /** Runs on the control connection's thread: the migrated session's own requests wait meanwhile. */
    private int sessionMigrate(long sessionId, int flags, String backend) {
        if (backend.isEmpty() || (flags & ~(MIGRATE_ALL | MIGRATE_STOP_AND_COPY)) != 0) {
            return CuResult.INVALID_VALUE;
        }
        boolean precopy = (flags & MIGRATE_STOP_AND_COPY) == 0;
        return migrations((flags & MIGRATE_ALL) != 0 ? manager.migrateAll(backend, precopy)
                : List.of(manager.migrate(sessionId, backend, precopy)));
    }

    private int migrations(List<MigrationRecord> records) {
        int count = Math.min(records.size(), Frame.MAX_PAYLOAD / Wire.Migration.FIXED);
        ByteBuffer r = io.out(count * Wire.Migration.FIXED);
        int at = R;
        for (int i = 0; i < count; i++, at += Wire.Migration.FIXED) {
            MigrationRecord m = records.get(i);
            r.putLong(at + Wire.Migration.SESSION, m.session)
                    .putLong(at + Wire.Migration.BYTES_MOVED, m.bytesMoved)
                    .putLong(at + Wire.Migration.BYTES_PAUSED, m.bytesPaused)
                    .putLong(at + Wire.Migration.PAUSE_NS, m.pauseNanos)
                    .putLong(at + Wire.Migration.TOTAL_NS, m.totalNanos)
                    .putLong(at + Wire.Migration.AT_MILLIS, m.atMillis)
                    .putInt(at + Wire.Migration.OK, m.ok ? 1 : 0)
                    .putInt(at + Wire.Migration.PRECOPY_ROUNDS, m.precopyRounds);
            Frame.putString(r, at + Wire.Migration.FROM, Wire.Migration.TO - Wire.Migration.FROM, m.from);
            Frame.putString(r, at + Wire.Migration.TO, Wire.Migration.REASON - Wire.Migration.TO, m.to);
            Frame.putString(r, at + Wire.Migration.REASON, Wire.Migration.MESSAGE - Wire.Migration.REASON, m.reason);
            Frame.putString(r, at + Wire.Migration.MESSAGE, Wire.Migration.FIXED - Wire.Migration.MESSAGE, m.message);
        }
        replyLength = count * Wire.Migration.FIXED;
        return CuResult.SUCCESS;
    }

    private int backendList() {
        List<BackendInfo> backends = manager.backends();
        int count = Math.min(backends.size(), Frame.MAX_PAYLOAD / Wire.Backend.FIXED);
        ByteBuffer r = io.out(count * Wire.Backend.FIXED);
        int at = R + Wire.BackendList.REP_BACKENDS;
        for (int i = 0; i < count; i++, at += Wire.Backend.FIXED) {
            BackendInfo b = backends.get(i);
            r.putInt(at + Wire.Backend.AVAILABLE, b.available ? 1 : 0).putInt(at + Wire.Backend.PREFERENCE, b.preference);
            Frame.putString(r, at + Wire.Backend.ID, Wire.Backend.DESCRIPTION - Wire.Backend.ID, b.id);
            Frame.putString(r, at + Wire.Backend.DESCRIPTION, Wire.Backend.REASON - Wire.Backend.DESCRIPTION, b.description);
            Frame.putString(r, at + Wire.Backend.REASON, Wire.Backend.FIXED - Wire.Backend.REASON, b.reason);
        }
        replyLength = count * Wire.Backend.FIXED;
        return CuResult.SUCCESS;
    }
}
