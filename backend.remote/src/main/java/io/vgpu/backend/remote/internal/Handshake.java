package io.vgpu.backend.remote.internal;

import io.vgpu.api.AddressWindow;
import io.vgpu.api.CuDeviceAttribute;
import io.vgpu.api.CuResult;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.protocol.Frame;
import io.vgpu.protocol.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The guest's first requests on a new link, after TLS: {@code REMOTE_HELLO} and the host's device
 * list. Shared by the backend and by {@code vgpu doctor}'s check of a host (which must not start
 * a logger, so nothing here does).
 */
public final class Handshake {
    private Handshake() {}

    /** The host refused this guest for the reason it gave (its REMOTE_HELLO reply's reason). */
    public static final class Refused extends IOException {
        private static final long serialVersionUID = 1L;
        public final String reason;

        Refused(String reason) {
            super("the host refused: " + reason);
            this.reason = reason;
        }
    }

    /** What the host serves this guest. */
    public static final class Served {
        /** The host's backend id that serves the link. */
        public final String backend;
        public final String description;
        public final DeviceInfo[] devices;

        Served(String backend, String description, DeviceInfo[] devices) {
            this.backend = backend;
            this.description = description;
            this.devices = devices;
        }
    }

    /**
     * Says {@code REMOTE_HELLO} asking for {@code remoteBackend} (empty: the host's default) and
     * announcing the guest core's device address {@code window}, and reads the device list, both
     * before the link's reader runs. A refusal is an IOException that says why.
     */
    public static Served hello(Link l, String remoteBackend, AddressWindow window) throws IOException {
        ByteBuffer hello = Frames.request(Wire.REMOTE_HELLO, Wire.RemoteHello.REQ_FIXED, false);
        hello.putInt(Wire.HEADER + Wire.RemoteHello.REQ_MAGIC, Wire.MAGIC)
                .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MAJOR, (short) Wire.MAJOR)
                .putShort(Wire.HEADER + Wire.RemoteHello.REQ_MINOR, (short) Wire.MINOR)
                .putLong(Wire.HEADER + Wire.RemoteHello.REQ_WINDOW_BASE, window.base)
                .putLong(Wire.HEADER + Wire.RemoteHello.REQ_WINDOW_SIZE, window.size);
        Frame.putString(hello, Wire.HEADER + Wire.RemoteHello.REQ_BACKEND, 32, remoteBackend);
        l.post(hello, null, true);
        Frames.In r = l.readDirect(4096);
        if (r.op != Wire.REMOTE_HELLO || r.payload.capacity() < Wire.RemoteHello.REP_FIXED) {
            throw new IOException("the host answered REMOTE_HELLO with op " + r.op);
        }
        if (r.result != CuResult.SUCCESS) {
            int tail = r.payload.capacity() - Wire.RemoteHello.REP_REASON;
            String reason = tail <= 0 ? "" : Frame.string(r.payload, Wire.RemoteHello.REP_REASON, tail);
            if (!reason.isEmpty()) {
                throw new Refused(reason);
            }
            throw new IOException("the host refused: " + (r.result == CuResult.NO_DEVICE
                    ? "backend '" + remoteBackend + "' is not served there"
                    : r.result == CuResult.DEVICE_UNAVAILABLE ? "host draining"
                    : r.result == CuResult.SYSTEM_DRIVER_MISMATCH ? "it speaks another protocol version (this guest speaks "
                            + Wire.MAJOR + "." + Wire.MINOR + ")" : "CUresult " + r.result));
        }
        String backend = Frame.string(r.payload, Wire.RemoteHello.REP_BACKEND, 32);
        String description = Frame.string(r.payload, Wire.RemoteHello.REP_DESCRIPTION, 128);
        l.post(Frames.request(Wire.DEVICE_LIST, 0, false), null, true);
        Frames.In d = l.readDirect(Frame.MAX_PAYLOAD);
        if (d.result != CuResult.SUCCESS) {
            throw new IOException("the host answered DEVICE_LIST with CUresult " + d.result);
        }
        return new Served(backend, description, devices(d.payload));
    }

    /** A {@code DEVICE_LIST} reply's devices. */
    public static DeviceInfo[] devices(ByteBuffer p) {
        int count = p.getInt(Wire.DeviceList.REP_COUNT);
        int attrs = Math.min(p.getInt(Wire.DeviceList.REP_ATTRIBUTE_COUNT), 148);
        DeviceInfo[] out = new DeviceInfo[count];
        int at = Wire.DeviceList.REP_DEVICES;
        for (int i = 0; i < count; i++, at += Wire.Device.FIXED) {
            DeviceInfo d = new DeviceInfo();
            d.ordinal = i;
            d.totalMemory = p.getLong(at + Wire.Device.TOTAL_MEMORY);
            d.name = Frame.string(p, at + Wire.Device.NAME, Wire.Device.UUID - Wire.Device.NAME);
            d.uuid = new byte[16];
            p.get(at + Wire.Device.UUID, d.uuid);
            d.attributes = new int[CuDeviceAttribute.MAX];
            for (int a = 0; a < Math.min(attrs, d.attributes.length); a++) {
                d.attributes[a] = p.getInt(at + Wire.Device.ATTRIBUTES + 4 * a);
            }
            out[i] = d;
        }
        return out;
    }
}
