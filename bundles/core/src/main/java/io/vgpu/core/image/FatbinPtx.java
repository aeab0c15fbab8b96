package io.vgpu.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The PTX inside CUDA images: the entries of a fatbin container, the PTX a simulated device should
 * execute for a module image, and the fatbin containers inside an ELF host library (cuBLAS,
 * ggml-cuda), for tools that survey them. Input is untrusted, as in {@link ImageParser}: every size
 * and offset is checked and malformed input is an {@link ImageFormatException}.
 */
public final class FatbinPtx {
    /** What {@link #best} chooses by: a PTX entry's arch (compute_XX) and whether it is arch-specific. */
    public interface Ptx {
        /** The entry's index in its container (cubin entries count too). */
        int index();

        int arch();

        /** compute_90a-style PTX (or family-specific), which runs only on exactly its arch. */
        boolean archSpecific();

        /** {@code compute_90}, or {@code compute_90 (arch-specific)}. */
        default String describe() {
            return "compute_" + arch() + (archSpecific() ? " (arch-specific)" : "");
        }
    }

    /** A PTX entry of a fatbin container, not decompressed: {@link #entry} decompresses it. */
    public record Header(int index, int arch, boolean archSpecific) implements Ptx {
    }

    /** One PTX entry of a fatbin container, decompressed. */
    public record Entry(int index, int arch, boolean archSpecific, String text) implements Ptx {

        @Override
        public String toString() {
            return "entry " + index + " (" + describe() + ", " + text.length() + " chars)";
        }
    }

    /** A fatbin container found in a host library: its file offset and length, and the section holding it. */
    public record Span(long offset, int length, String section) {
    }

    private static final Pattern TARGET = Pattern.compile("(?m)^\\s*\\.target\\s+sm_(\\d+)([a-z]?)");
    private static final int CONTAINER_HEADER = 16;
    /** nvcc writes a 16-byte container header; anything far larger is not a container. */
    private static final int MAX_CONTAINER_HEADER = 4096;
    /** {@code __fatBinC_Wrapper_t}: magic, version, data pointer, filename or prelinked-fatbins pointer. */
    private static final int WRAPPER_SIZE = 24;

    private FatbinPtx() {
    }

    /**
     * Every PTX entry of the fatbin container at offset 0 of {@code fatbinContainer} (magic
     * 0xBA55ED50, no wrapper; trailing bytes are ignored), in container order, with its text
     * decompressed (LZ4 or zstd) and cut at the first NUL. Cubin and unknown entries are left out.
     */
    public static List<Entry> ptxEntries(byte[] fatbinContainer, long maxDecompressed) throws ImageFormatException {
        List<Entry> out = new ArrayList<>();
        for (ImageParser.Entry e : readPtx(fatbinContainer)) {
            out.add(decode(fatbinContainer, e, maxDecompressed));
        }
        return out;
    }

    /** The PTX entries of a container as {@link #ptxEntries} lists them, without decompressing any. */
    public static List<Header> ptxHeaders(byte[] fatbinContainer) throws ImageFormatException {
        List<Header> out = new ArrayList<>();
        for (ImageParser.Entry e : readPtx(fatbinContainer)) {
            out.add(new Header(e.index(), e.arch(), e.archSpecific()));
        }
        return out;
    }

    /** The PTX entry that {@link #ptxHeaders} listed as {@code h}, decompressed. */
    public static Entry entry(byte[] fatbinContainer, Header h, long maxDecompressed) throws ImageFormatException {
        for (ImageParser.Entry e : readPtx(fatbinContainer)) {
            if (e.index() == h.index()) {
                return decode(fatbinContainer, e, maxDecompressed);
            }
        }
        throw new ImageFormatException("the fatbin has no PTX entry " + h.index());
    }

    /**
     * The PTX text a simulated device of compute capability {@code deviceArch} (e.g. 90) should
     * execute for a module image as an application sends it: for a fatbin container, the PTX entry
     * of the highest arch at or below {@code deviceArch}; for PTX text, the text itself (up to the
     * first NUL) when its {@code .target} is at or below {@code deviceArch} or absent. Arch-specific
     * PTX ({@code compute_90a}, {@code .target sm_90a}, and family-specific entries) only counts on
     * exactly its arch, and at the same arch a portable entry is preferred. Null when the image
     * holds no such PTX: cubin-only fatbins, ELF cubins, PTX for newer devices.
     */
    public static String bestPtx(byte[] image, int deviceArch) throws ImageFormatException {
        if (image == null || image.length == 0) {
            throw new ImageFormatException("empty module image");
        }
        if (image.length >= 4 && (int) Bytes.u32At(image, 0) == ImageParser.FATBIN_MAGIC) {
            ImageParser.Entry best = null;
            for (ImageParser.Entry e : ImageParser.readEntries(image)) {
                if (e.kind() == ImageParser.KIND_PTX && runs(e.arch(), e.archSpecific(), deviceArch)
                        && (best == null || better(e.arch(), e.archSpecific(), best.arch(), best.archSpecific()))) {
                    best = e;
                }
            }
            return best == null ? null : decode(image, best, ImageParser.DEFAULT_MAX_DECOMPRESSED).text();
        }
        if (image.length >= 4 && (int) Bytes.u32At(image, 0) == ImageParser.FATBIN_WRAPPER_MAGIC) {
            throw new ImageFormatException("image is a fatbin wrapper (__fatBinC_Wrapper_t), which only "
                    + "points at the container; send the container it points to");
        }
        if (CubinParser.isElf(image)) {
            return null;
        }
        if (PtxParser.looksLikePtx(image, image.length)) {
            String text = new String(image, 0, PtxParser.textLength(image, image.length), StandardCharsets.ISO_8859_1);
            Matcher m = TARGET.matcher(text);
            if (!m.find()) {
                return text;
            }
            int target;
            try {
                target = Integer.parseInt(m.group(1));
            } catch (NumberFormatException e) {
                throw new ImageFormatException("PTX .target sm_" + m.group(1) + " is not an architecture");
            }
            return runs(target, !m.group(2).isEmpty(), deviceArch) ? text : null;
        }
        throw new ImageFormatException("unrecognised module image: neither a fatbin container, an ELF cubin "
                + "nor PTX text");
    }

    /**
     * Of entries that {@link #ptxEntries} or {@link #ptxHeaders} returned, the one {@link #bestPtx}
     * would choose for {@code deviceArch}, or null.
     */
    public static <T extends Ptx> T best(List<T> entries, int deviceArch) {
        T best = null;
        for (T e : entries) {
            if (runs(e.arch(), e.archSpecific(), deviceArch)
                    && (best == null || better(e.arch(), e.archSpecific(), best.arch(), best.archSpecific()))) {
                best = e;
            }
        }
        return best;
    }

    /** As {@link #fatbinSpans(ByteBuffer)}, with each container copied out. */
    public static List<byte[]> fatbinsInElf(byte[] elf) throws ImageFormatException {
        ByteBuffer b = ByteBuffer.wrap(elf);
        List<byte[]> out = new ArrayList<>();
        for (Span s : fatbinSpans(b)) {
            out.add(container(b, s));
        }
        return out;
    }

    /** The bytes of one container that {@link #fatbinSpans(ByteBuffer)} found in {@code elf}. */
    public static byte[] container(ByteBuffer elf, Span s) {
        byte[] out = new byte[s.length()];
        elf.get((int) s.offset(), out);
        return out;
    }

    /**
     * The fatbin containers of a 64-bit little-endian ELF file (a host executable or shared
     * library; a mapped file works): those packed back to back, with padding, in its
     * {@code .nv_fatbin} section, and any others found by scanning the rest of the file's section
     * contents (e.g. {@code .rodata}) at 4-byte alignment for the magic and a well-formed
     * container. In file order.
     */
    public static List<Span> fatbinSpans(ByteBuffer elf) throws ImageFormatException {
        ByteBuffer b = elf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        List<Span> out = new ArrayList<>();
        for (Section s : sections(b)) {
            if (s.name().equals(".nv_fatbin")) {
                packed(b, s.offset(), s.offset() + s.size(), out);
            } else {
                scan(b, s.offset(), s.offset() + s.size(), s.name(), out);
            }
        }
        out.sort((x, y) -> Long.compare(x.offset(), y.offset()));
        return out;
    }

    /**
     * How many {@code __fatBinC_Wrapper_t} records (magic 0x466243B1) the ELF file's
     * {@code .nvFatBinSegment} holds: one per fatbin the host code registers with the runtime.
     */
    public static int fatbinWrappers(ByteBuffer elf) throws ImageFormatException {
        ByteBuffer b = elf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int n = 0;
        for (Section s : sections(b)) {
            if (s.name().equals(".nvFatBinSegment")) {
                for (long off = (s.offset() + 7) & ~7L; off + WRAPPER_SIZE <= s.offset() + s.size(); off += 8) {
                    if (b.getInt((int) off) == ImageParser.FATBIN_WRAPPER_MAGIC) {
                        n++;
                        off += WRAPPER_SIZE - 8;
                    }
                }
            }
        }
        return n;
    }

    // ------------------------------------------------------------------ internals

    private static List<ImageParser.Entry> readPtx(byte[] container) throws ImageFormatException {
        if (container == null || container.length < 4 || (int) Bytes.u32At(container, 0) != ImageParser.FATBIN_MAGIC) {
            throw new ImageFormatException("not a fatbin container (magic 0xBA55ED50)");
        }
        List<ImageParser.Entry> out = new ArrayList<>();
        for (ImageParser.Entry e : ImageParser.readEntries(container)) {
            if (e.kind() == ImageParser.KIND_PTX) {
                out.add(e);
            }
        }
        return out;
    }

    /** A section with file contents. */
    private record Section(String name, long offset, long size) {
    }

    /** Whether PTX for {@code arch} runs on {@code deviceArch}: arch-specific PTX only on exactly its arch. */
    private static boolean runs(int arch, boolean archSpecific, int deviceArch) {
        return arch <= deviceArch && (!archSpecific || arch == deviceArch);
    }

    /** Newer PTX first; at the same arch, portable PTX before arch-specific. */
    private static boolean better(int arch, boolean archSpecific, int bestArch, boolean bestArchSpecific) {
        return arch > bestArch || (arch == bestArch && bestArchSpecific && !archSpecific);
    }

    /** The sections of a 64-bit little-endian ELF file that have contents in the file. */
    private static List<Section> sections(ByteBuffer b) throws ImageFormatException {
        long size = b.limit();
        if (size < 64 || b.get(0) != 0x7f || b.get(1) != 'E' || b.get(2) != 'L' || b.get(3) != 'F') {
            throw new ImageFormatException("not an ELF file");
        }
        if (b.get(4) != 2 || b.get(5) != 1) {
            throw new ImageFormatException("not a 64-bit little-endian ELF file");
        }
        long shoff = u64(b, 0x28, "section header offset");
        int shentsize = u16(b, 0x3a);
        int shnum = u16(b, 0x3c);
        int shstrndx = u16(b, 0x3e);
        if (shnum == 0) {
            return List.of();
        }
        if (shentsize < 64 || shoff > size || (long) shnum * shentsize > size - shoff) {
            throw new ImageFormatException("ELF section headers lie outside the " + size + "-byte file");
        }
        if (shstrndx >= shnum) {
            throw new ImageFormatException("ELF section name table index " + shstrndx + " is out of range");
        }
        long[][] raw = new long[shnum][];
        for (int i = 0; i < shnum; i++) {
            long h = shoff + (long) i * shentsize;
            long name = u32(b, h);
            long type = u32(b, h + 4);
            long off = u64(b, h + 24, "section offset");
            long len = u64(b, h + 32, "section size");
            boolean present = type != 8 /* SHT_NOBITS */ && type != 0 /* SHT_NULL */ && len > 0;
            if (present && (off > size || len > size - off)) {
                throw new ImageFormatException("ELF section " + i + " lies outside the " + size + "-byte file");
            }
            raw[i] = new long[] {name, present ? off : 0, present ? len : 0};
        }
        long strOff = raw[shstrndx][1];
        long strLen = raw[shstrndx][2];
        List<Section> out = new ArrayList<>();
        for (long[] s : raw) {
            if (s[2] > 0) {
                out.add(new Section(sectionName(b, strOff, strLen, s[0]), s[1], s[2]));
            }
        }
        return out;
    }

    private static Entry decode(byte[] container, ImageParser.Entry e, long maxDecompressed)
            throws ImageFormatException {
        byte[] payload = ImageParser.payload(container, e, maxDecompressed);
        String text = new String(payload, 0, PtxParser.textLength(payload, payload.length), StandardCharsets.ISO_8859_1);
        return new Entry(e.index(), e.arch(), e.archSpecific(), text);
    }

    /** .nv_fatbin: containers one after another, each followed by zero padding to the next. */
    private static void packed(ByteBuffer b, long start, long end, List<Span> out) throws ImageFormatException {
        long off = start;
        while (off + 4 <= end) {
            if (b.getInt((int) off) == 0) {
                off += 4;
                continue;
            }
            int len = containerLength(b, off, end);
            if (len < 0) {
                throw new ImageFormatException(".nv_fatbin at file offset " + off + " holds no fatbin container");
            }
            out.add(new Span(off, len, ".nv_fatbin"));
            off += (len + 3L) & ~3L;
        }
    }

    /** Any other section: containers wherever the magic and a consistent header and entry list say so. */
    private static void scan(ByteBuffer b, long start, long end, String section, List<Span> out) {
        long off = (start + 3) & ~3L;
        while (off + CONTAINER_HEADER <= end) {
            if (b.getInt((int) off) == ImageParser.FATBIN_MAGIC) {
                int len = containerLength(b, off, end);
                if (len > 0 && wellFormed(b, off, len)) {
                    out.add(new Span(off, len, section));
                    off += (len + 3L) & ~3L;
                    continue;
                }
            }
            off += 4;
        }
    }

    /** headerSize + size of the container at {@code off}, if its header is plausible and it ends by {@code end}; else -1. */
    private static int containerLength(ByteBuffer b, long off, long end) {
        if (end - off < CONTAINER_HEADER || b.getInt((int) off) != ImageParser.FATBIN_MAGIC) {
            return -1;
        }
        int version = Short.toUnsignedInt(b.getShort((int) off + 4));
        int header = Short.toUnsignedInt(b.getShort((int) off + 6));
        long body = b.getLong((int) off + 8);
        if (version != 1 || header < CONTAINER_HEADER || header > MAX_CONTAINER_HEADER || body < 0
                || body > end - off - header || header + body > Integer.MAX_VALUE - 16) {
            return -1;
        }
        return (int) (header + body);
    }

    private static boolean wellFormed(ByteBuffer b, long off, int len) {
        byte[] c = new byte[len];
        b.get((int) off, c);
        try {
            return !ImageParser.readEntries(c).isEmpty();
        } catch (ImageFormatException e) {
            return false;
        }
    }

    private static String sectionName(ByteBuffer b, long strOff, long strLen, long name) {
        if (name >= strLen) {
            return "";
        }
        StringBuilder s = new StringBuilder();
        for (long i = strOff + name; i < strOff + strLen && b.get((int) i) != 0 && s.length() < 256; i++) {
            s.append((char) (b.get((int) i) & 0xff));
        }
        return s.toString();
    }

    private static int u16(ByteBuffer b, long off) {
        return Short.toUnsignedInt(b.getShort((int) off));
    }

    private static long u32(ByteBuffer b, long off) {
        return Integer.toUnsignedLong(b.getInt((int) off));
    }

    private static long u64(ByteBuffer b, long off, String what) throws ImageFormatException {
        long v = b.getLong((int) off);
        if (v < 0) {
            throw new ImageFormatException("ELF " + what + " is absurd: " + Long.toUnsignedString(v));
        }
        return v;
    }
}
