package io.vgpu.backend.remote.internal;

import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.protocol.Wire;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** A {@link ModuleImage} and its parsed metadata as the payload of REMOTE_MODULE_LOAD (protocol.spec). */
public final class ModuleCodec {
    private ModuleCodec() {}

    private static final int F = Wire.RemoteModuleLoad.REQ_FIXED;

    private static byte[] utf8(String s) {
        return s == null ? new byte[0] : s.getBytes(StandardCharsets.UTF_8);
    }

    /** The whole request frame (header included). */
    public static ByteBuffer encode(long ctx, ModuleImage image, long globalsBase) {
        byte[] data = image.data == null ? new byte[0] : image.data;
        byte[] ptx = image.ptxSource == null ? new byte[0] : image.ptxSource;
        int size = F + data.length + ptx.length;
        for (KernelInfo k : image.kernels) {
            size += Wire.RemoteKernel.FIXED + utf8(k.name).length + k.paramCount() * Wire.Param.FIXED;
        }
        for (GlobalInfo g : image.globals) {
            size += Wire.RemoteGlobal.FIXED + utf8(g.name).length + (g.init == null ? 0 : g.init.length);
        }
        ByteBuffer b = Frames.request(Wire.REMOTE_MODULE_LOAD, size, false);
        int p = Wire.HEADER;
        b.putLong(p + Wire.RemoteModuleLoad.REQ_CTX, ctx).putLong(p + Wire.RemoteModuleLoad.REQ_GLOBALS_BASE, globalsBase)
                .putLong(p + Wire.RemoteModuleLoad.REQ_GLOBALS_SIZE, image.globalsSize)
                .putInt(p + Wire.RemoteModuleLoad.REQ_FORMAT, image.format == null ? 0 : image.format.ordinal())
                .putInt(p + Wire.RemoteModuleLoad.REQ_ARCH, image.arch)
                .putInt(p + Wire.RemoteModuleLoad.REQ_PTX, image.ptx ? 1 : 0)
                .putInt(p + Wire.RemoteModuleLoad.REQ_VIRTUAL_ARCH, image.virtualArch)
                .putInt(p + Wire.RemoteModuleLoad.REQ_PTX_ARCH, image.ptxArch)
                .putInt(p + Wire.RemoteModuleLoad.REQ_KERNEL_COUNT, image.kernels.size())
                .putInt(p + Wire.RemoteModuleLoad.REQ_GLOBAL_COUNT, image.globals.size())
                .putInt(p + Wire.RemoteModuleLoad.REQ_DATA_SIZE, data.length)
                .putInt(p + Wire.RemoteModuleLoad.REQ_PTX_SIZE, image.ptxSource == null ? -1 : ptx.length);
        b.position(p + F);
        b.put(data).put(ptx);
        for (KernelInfo k : image.kernels) {
            byte[] name = utf8(k.name);
            b.putInt(name.length).putInt(k.paramCount()).putInt(k.paramBufferSize).putInt(k.maxThreadsPerBlock)
                    .putInt(k.numRegs).putInt(k.sharedSizeBytes).putInt(k.constSizeBytes).putInt(k.localSizeBytes);
            b.put(name);
            for (int i = 0; i < k.paramCount(); i++) {
                b.putInt(k.paramOffsets[i]).putInt(k.paramSizes[i]);
            }
        }
        for (GlobalInfo g : image.globals) {
            byte[] name = utf8(g.name);
            b.putLong(g.size).putLong(g.offset).putInt(name.length).putInt(g.init == null ? -1 : g.init.length);
            b.put(name);
            if (g.init != null) {
                b.put(g.init);
            }
        }
        b.flip();
        return b;
    }

    private static byte[] bytes(ByteBuffer b, int n, int limit) throws Frames.Violation {
        if (n < 0 || n > b.remaining() || n > limit) {
            throw new Frames.Violation("REMOTE_MODULE_LOAD: a length of " + n + " runs past the payload");
        }
        byte[] out = new byte[n];
        b.get(out);
        return out;
    }

    /** Decodes a request payload (position 0); every length is checked against what is left. */
    public static ModuleImage decode(ByteBuffer q, long[] ctxAndBase) throws Frames.Violation {
        if (q.remaining() < F) {
            throw new Frames.Violation("REMOTE_MODULE_LOAD shorter than its fixed part");
        }
        ctxAndBase[0] = q.getLong(Wire.RemoteModuleLoad.REQ_CTX);
        ctxAndBase[1] = q.getLong(Wire.RemoteModuleLoad.REQ_GLOBALS_BASE);
        ModuleImage m = new ModuleImage();
        int format = q.getInt(Wire.RemoteModuleLoad.REQ_FORMAT);
        if (format < 0 || format >= ModuleImage.Format.values().length) {
            throw new Frames.Violation("REMOTE_MODULE_LOAD: unknown image format " + format);
        }
        m.format = ModuleImage.Format.values()[format];
        m.globalsSize = q.getLong(Wire.RemoteModuleLoad.REQ_GLOBALS_SIZE);
        m.arch = q.getInt(Wire.RemoteModuleLoad.REQ_ARCH);
        m.ptx = q.getInt(Wire.RemoteModuleLoad.REQ_PTX) != 0;
        m.virtualArch = q.getInt(Wire.RemoteModuleLoad.REQ_VIRTUAL_ARCH);
        m.ptxArch = q.getInt(Wire.RemoteModuleLoad.REQ_PTX_ARCH);
        int kernels = q.getInt(Wire.RemoteModuleLoad.REQ_KERNEL_COUNT);
        int globals = q.getInt(Wire.RemoteModuleLoad.REQ_GLOBAL_COUNT);
        int dataSize = q.getInt(Wire.RemoteModuleLoad.REQ_DATA_SIZE);
        int ptxSize = q.getInt(Wire.RemoteModuleLoad.REQ_PTX_SIZE);
        ByteBuffer b = q.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.position(F);
        int limit = b.remaining();
        m.data = bytes(b, dataSize, limit);
        m.ptxSource = ptxSize == -1 ? null : bytes(b, ptxSize, limit);
        if (kernels < 0 || kernels > limit / Wire.RemoteKernel.FIXED || globals < 0 || globals > limit / Wire.RemoteGlobal.FIXED) {
            throw new Frames.Violation("REMOTE_MODULE_LOAD: " + kernels + " kernels, " + globals + " globals do not fit");
        }
        try {
            for (int i = 0; i < kernels; i++) {
                KernelInfo k = new KernelInfo();
                int nameSize = b.getInt();
                int params = b.getInt();
                k.paramBufferSize = b.getInt();
                k.maxThreadsPerBlock = b.getInt();
                k.numRegs = b.getInt();
                k.sharedSizeBytes = b.getInt();
                k.constSizeBytes = b.getInt();
                k.localSizeBytes = b.getInt();
                k.name = new String(bytes(b, nameSize, limit), StandardCharsets.UTF_8);
                if (params < 0 || params > b.remaining() / Wire.Param.FIXED) {
                    throw new Frames.Violation("REMOTE_MODULE_LOAD: kernel " + k.name + " claims " + params + " parameters");
                }
                k.paramOffsets = new int[params];
                k.paramSizes = new int[params];
                for (int j = 0; j < params; j++) {
                    k.paramOffsets[j] = b.getInt();
                    k.paramSizes[j] = b.getInt();
                }
                m.kernels.add(k);
            }
            for (int i = 0; i < globals; i++) {
                GlobalInfo g = new GlobalInfo();
                g.size = b.getLong();
                g.offset = b.getLong();
                int nameSize = b.getInt();
                int initSize = b.getInt();
                g.name = new String(bytes(b, nameSize, limit), StandardCharsets.UTF_8);
                g.init = initSize == -1 ? null : bytes(b, initSize, limit);
                m.globals.add(g);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new Frames.Violation("REMOTE_MODULE_LOAD: records run past the payload");
        }
        return m;
    }
}
