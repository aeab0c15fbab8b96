package io.vgpu.core.image;

import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.ModuleImage;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads the kernel and global metadata out of a CUDA module image, so simulated backends can run it
 * and the core can pack {@code cuLaunchKernel} parameters. Images come from untrusted clients: every
 * size and offset is checked and every failure is an {@link ImageFormatException}.
 */
public final class ImageParser {
    /** Fatbin container magic (little endian u32 at offset 0). */
    public static final int FATBIN_MAGIC = 0xBA55ED50;
    /** The {@code __fatBinC_Wrapper_t} magic: the wrapper only points at the container. */
    static final int FATBIN_WRAPPER_MAGIC = 0x466243B1;
    /** Globals are placed in their region at this alignment. */
    public static final int GLOBAL_ALIGNMENT = 256;
    /** No device has a terabyte of memory; a module claiming more for its globals is hostile. */
    public static final long MAX_GLOBALS_SIZE = 1L << 40;
    /** Default cap on a decompressed fatbin entry, so a tiny zstd bomb cannot take the heap. */
    public static final long DEFAULT_MAX_DECOMPRESSED = 1L << 30;

    static final int KIND_PTX = 1;
    static final int KIND_CUBIN = 2;
    static final long FLAG_LZ4 = 0x2000;
    static final long FLAG_ZSTD = 0x8000;
    /** Inferred from cuBLAS: arch-specific (sm_90a) and family-specific cubins; only exact-arch use. */
    static final long FLAG_ARCH_SPECIFIC = 0x100000 | 0x200000;

    private static final int CONTAINER_HEADER = 16;
    private static final int MIN_ENTRY_HEADER = 64;

    private ImageParser() {
    }

    /**
     * Parses a CUDA module image: a fatbin container (magic 0xBA55ED50, without the wrapper), a
     * standalone ELF cubin, or PTX text (NUL-terminated or not). For fatbins the best entry for
     * {@code targetArch} (e.g. 90 for sm_90) is chosen: a cubin of exactly that arch, else the
     * highest cubin of the same major version below it, else the highest PTX at or below it, else
     * any PTX. The metadata comes from that entry; {@link ModuleImage#data} is always the original
     * bytes.
     */
    public static ModuleImage parse(byte[] image, int targetArch) throws ImageFormatException {
        return parse(image, targetArch, DEFAULT_MAX_DECOMPRESSED);
    }

    /** As {@link #parse(byte[], int)}, with an explicit cap on decompressed entry sizes. */
    public static ModuleImage parse(byte[] image, int targetArch, long maxDecompressed)
            throws ImageFormatException {
        if (image == null || image.length == 0) {
            throw new ImageFormatException("empty module image");
        }
        ModuleImage result;
        if (image.length >= 4 && (int) Bytes.u32At(image, 0) == FATBIN_MAGIC) {
            result = parseFatbin(image, targetArch, maxDecompressed);
        } else if (image.length >= 4 && (int) Bytes.u32At(image, 0) == FATBIN_WRAPPER_MAGIC) {
            throw new ImageFormatException("image is a fatbin wrapper (__fatBinC_Wrapper_t), which only "
                    + "points at the container; send the container it points to");
        } else if (CubinParser.isElf(image)) {
            result = CubinParser.parse(image);
            result.format = ModuleImage.Format.CUBIN;
        } else if (PtxParser.looksLikePtx(image, image.length)) {
            result = PtxParser.parse(image, image.length);
            result.format = ModuleImage.Format.PTX;
            result.ptxSource = image;
            result.ptxArch = result.virtualArch;
        } else {
            throw new ImageFormatException("unrecognised module image: neither a fatbin container, "
                    + "an ELF cubin nor PTX text (first bytes " + hexPrefix(image) + ")");
        }
        result.data = image;
        layOutGlobals(result);
        return result;
    }

    /** One entry of a fatbin container, with its payload still in the image. */
    record Entry(int index, int kind, int arch, long flags, int payloadOffset, int payloadSize,
                 long compressedSize, long uncompressedSize) {
        boolean archSpecific() {
            return (flags & FLAG_ARCH_SPECIFIC) != 0;
        }

        String describe() {
            return (kind == KIND_CUBIN ? "sm_" : "compute_") + arch + (kind == KIND_CUBIN ? " cubin" : " PTX")
                    + (archSpecific() ? " (arch-specific)" : "");
        }
    }

    /** Reads the entry headers of the container at offset 0. Trailing bytes after it are ignored. */
    static List<Entry> readEntries(byte[] image) throws ImageFormatException {
        if (image.length < CONTAINER_HEADER) {
            throw new ImageFormatException("fatbin truncated: " + image.length + " bytes, the container "
                    + "header alone has " + CONTAINER_HEADER);
        }
        int version = Bytes.u16(image, 4, "fatbin version");
        int headerSize = Bytes.u16(image, 6, "fatbin header size");
        long size = Bytes.u64(image, 8, "fatbin size");
        if (version != 1) {
            throw new ImageFormatException("unsupported fatbin container version " + version);
        }
        if (headerSize < CONTAINER_HEADER) {
            throw new ImageFormatException("fatbin header size " + headerSize + " is below " + CONTAINER_HEADER);
        }
        if (headerSize > image.length || size > image.length - headerSize) {
            throw new ImageFormatException("fatbin truncated: header says " + headerSize + " + " + size
                    + " bytes, image has " + image.length);
        }
        int end = (int) (headerSize + size);
        List<Entry> entries = new ArrayList<>();
        int off = headerSize;
        while (off < end) {
            if (end - off < MIN_ENTRY_HEADER) {
                throw new ImageFormatException("fatbin entry " + entries.size() + " at " + off
                        + " is truncated: " + (end - off) + " bytes left, the header needs " + MIN_ENTRY_HEADER);
            }
            String what = "fatbin entry " + entries.size();
            int kind = Bytes.u16(image, off, what + " kind");
            long entryHeader = Bytes.u32(image, off + 4L, what + " header size");
            long payload = Bytes.u64(image, off + 8L, what + " payload size");
            long compressed = Bytes.u32(image, off + 16L, what + " compressed size");
            long arch = Bytes.u32(image, off + 28L, what + " arch");
            long flags = Bytes.u64(image, off + 40L, what + " flags");
            long uncompressed = Bytes.u64(image, off + 56L, what + " uncompressed size");
            if (entryHeader < MIN_ENTRY_HEADER || entryHeader > end - off) {
                throw new ImageFormatException(what + " at " + off + " has header size " + entryHeader
                        + " (needs " + MIN_ENTRY_HEADER + ".." + (end - off) + ")");
            }
            if (payload > end - off - entryHeader) {
                throw new ImageFormatException(what + " at " + off + " claims a " + payload
                        + "-byte payload, past the end of the container (" + (end - off - entryHeader) + " left)");
            }
            boolean isCompressed = (flags & (FLAG_LZ4 | FLAG_ZSTD)) != 0;
            if (isCompressed && (compressed == 0 || compressed > payload)) {
                throw new ImageFormatException(what + " is compressed but its compressed size " + compressed
                        + " does not fit its " + payload + "-byte payload");
            }
            entries.add(new Entry(entries.size(), kind, (int) Math.min(arch, Integer.MAX_VALUE), flags,
                    (int) (off + entryHeader), (int) payload, compressed, uncompressed));
            off += (int) (entryHeader + payload);
        }
        return entries;
    }

    /** Picks the entry the driver would use on {@code targetArch}, or null. */
    static Entry choose(List<Entry> entries, int targetArch) {
        Entry best = null;
        for (Entry e : entries) {
            if (e.kind() == KIND_CUBIN && e.arch() == targetArch) {
                return e;
            }
        }
        // SASS is binary compatible upwards within a major version, except arch-specific builds.
        for (Entry e : entries) {
            if (e.kind() == KIND_CUBIN && !e.archSpecific() && e.arch() < targetArch
                    && e.arch() / 10 == targetArch / 10 && (best == null || e.arch() > best.arch())) {
                best = e;
            }
        }
        if (best != null) {
            return best;
        }
        for (Entry e : entries) {
            if (e.kind() == KIND_PTX && e.arch() <= targetArch && (best == null || e.arch() > best.arch())) {
                best = e;
            }
        }
        if (best != null) {
            return best;
        }
        // Newer PTX than the device cannot JIT on a real driver, but metadata from it beats none.
        for (Entry e : entries) {
            if (e.kind() == KIND_PTX) {
                return e;
            }
        }
        return null;
    }

    /** The PTX a simulated device of {@code targetArch} runs: the newest at or below it, or null. */
    static Entry newestPtx(List<Entry> entries, int targetArch) {
        Entry best = null;
        for (Entry e : entries) {
            if (e.kind() == KIND_PTX && e.arch() <= targetArch && (best == null || e.arch() > best.arch())) {
                best = e;
            }
        }
        return best;
    }

    private static ModuleImage parseFatbin(byte[] image, int targetArch, long maxDecompressed)
            throws ImageFormatException {
        List<Entry> entries = readEntries(image);
        Entry chosen = choose(entries, targetArch);
        if (chosen == null) {
            List<String> have = new ArrayList<>();
            for (Entry e : entries) {
                have.add(e.kind() == KIND_CUBIN || e.kind() == KIND_PTX ? e.describe() : "kind " + e.kind());
            }
            throw new ImageFormatException(ImageFormatException.Reason.NO_COMPATIBLE_CODE,
                    "fatbin has no code for sm_" + targetArch + "; it holds " + (have.isEmpty() ? "no entries" : have));
        }
        byte[] payload = payload(image, chosen, maxDecompressed);
        ModuleImage result;
        try {
            if (chosen.kind() == KIND_CUBIN) {
                result = CubinParser.parse(payload);
            } else {
                result = PtxParser.parse(payload, payload.length);
            }
        } catch (ImageFormatException e) {
            throw new ImageFormatException(e.reason(), "fatbin entry " + chosen.index() + " ("
                    + chosen.describe() + "): " + e.getMessage(), e);
        }
        result.format = ModuleImage.Format.FATBIN;
        result.arch = chosen.arch();
        Entry ptx = newestPtx(entries, targetArch);
        if (ptx != null) {
            result.ptxSource = ptx == chosen ? payload : payload(image, ptx, maxDecompressed);
            result.ptxArch = ptx.arch();
        }
        // The entry's arch is authoritative for PTX too: compute_90 PTX may say .target sm_90a.
        if (result.ptx) {
            result.virtualArch = chosen.arch();
        }
        return result;
    }

    /** The entry's payload, decompressed if its flags say so. */
    static byte[] payload(byte[] image, Entry e, long maxDecompressed) throws ImageFormatException {
        String what = "fatbin entry " + e.index() + " (" + e.describe() + ")";
        boolean lz4 = (e.flags() & FLAG_LZ4) != 0;
        boolean zstd = (e.flags() & FLAG_ZSTD) != 0;
        try {
            if (lz4 && zstd) {
                throw new ImageFormatException("both LZ4 and zstd flags are set");
            }
            if (lz4) {
                return EntryCodec.lz4(image, e.payloadOffset(), (int) e.compressedSize(), e.uncompressedSize(),
                        maxDecompressed);
            }
            if (zstd) {
                return EntryCodec.zstd(image, e.payloadOffset(), (int) e.compressedSize(), e.uncompressedSize(),
                        maxDecompressed);
            }
        } catch (ImageFormatException ex) {
            throw new ImageFormatException(what + ": " + ex.getMessage(), ex);
        }
        return Bytes.slice(image, e.payloadOffset(), e.payloadSize(), what + " payload");
    }

    /**
     * Assigns each global an offset in one region, each at {@link #GLOBAL_ALIGNMENT}, and sets the
     * region size (a multiple of the alignment). Duplicate names keep the first: lookups are by name.
     */
    static void layOutGlobals(ModuleImage image) throws ImageFormatException {
        Set<String> seen = new HashSet<>();
        List<GlobalInfo> kept = new ArrayList<>();
        long offset = 0;
        for (GlobalInfo g : image.globals) {
            if (!seen.add(g.name)) {
                continue;
            }
            g.offset = offset;
            if (g.size < 0 || g.size > MAX_GLOBALS_SIZE - offset) {
                throw new ImageFormatException("globals are absurdly large (" + g.name + ": " + g.size
                        + " bytes at offset " + offset + ")");
            }
            offset += roundUp(g.size, GLOBAL_ALIGNMENT);
            kept.add(g);
        }
        image.globals = kept;
        image.globalsSize = offset;
    }

    static long roundUp(long v, long alignment) {
        return Math.addExact(v, alignment - 1) / alignment * alignment;
    }

    private static String hexPrefix(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) {
            s.append(String.format("%02x", b[i] & 0xff));
        }
        return s.toString();
    }
}
