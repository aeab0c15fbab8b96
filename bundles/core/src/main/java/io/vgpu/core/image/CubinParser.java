package io.vgpu.core.image;

import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Kernel and global metadata from a CUDA ELF cubin (ELF64, little endian, EM_CUDA). Parameter
 * layouts come from the {@code .nv.info.<kernel>} attribute records, register and stack sizes from
 * the module-wide {@code .nv.info}, globals from the symbol table.
 */
final class CubinParser {
    private static final int EM_CUDA = 190;
    /** CUDA 13's ELF ABI: the SM number moved from e_flags bits 0–7 to bits 8–15. */
    private static final int ELFOSABI_CUDA_V2 = 0x41;
    /** An ELF note: u32 name size, u32 descriptor size, u32 type, then the name and descriptor. */
    private static final int NOTE_HEADER = 12;

    private static final int SHT_SYMTAB = 2;
    private static final int SHT_NOBITS = 8;
    /** NOBITS flavour nvcc uses for {@code .nv.global} in relocatable (-rdc) objects. */
    private static final int SHT_CUDA_NOBITS = 0x70000007;
    private static final int SHN_LORESERVE = 0xff00;
    private static final int STT_OBJECT = 1;
    private static final int STT_FUNC = 2;
    /** Symbol type nvcc gives device variables in relocatable objects. */
    private static final int STT_CUDA_OBJECT = 13;
    /** st_other bit marking a kernel entry, as opposed to a non-inlined __device__ function. */
    private static final int STO_CUDA_ENTRY = 0x10;
    private static final int SYM_SIZE = 24;
    private static final int SECTION_HEADER_SIZE = 64;

    // .nv.info record formats and attributes.
    private static final int EIFMT_NVAL = 1;
    private static final int EIFMT_BVAL = 2;
    private static final int EIFMT_HVAL = 3;
    private static final int EIFMT_SVAL = 4;
    private static final int EIATTR_MAX_THREADS = 0x05;
    private static final int EIATTR_REQNTID = 0x10;
    private static final int EIATTR_FRAME_SIZE = 0x11;
    private static final int EIATTR_KPARAM_INFO = 0x17;
    private static final int EIATTR_CBANK_PARAM_SIZE = 0x19;
    private static final int EIATTR_REGCOUNT = 0x2f;
    /** Parameter records for kernels whose parameters exceed the 14-bit size field of 0x17. */
    private static final int EIATTR_KPARAM_INFO_V2 = 0x45;

    /**
     * From sm_90 on, every kernel's {@code .nv.shared.<kernel>} section starts with the 1 KiB the
     * driver reserves per block (CUDA 12.6 and 13 cubins alike); ptxas reports the static shared
     * size without it, and so do we.
     */
    private static final int RESERVED_SHARED = 1024;
    private static final int FIRST_ARCH_WITH_RESERVED_SHARED = 90;
    /** The kernel parameter space is addressed with 16-bit offsets. */
    private static final int MAX_PARAM_BYTES = 0x10000;

    private final byte[] elf;
    private Section[] sections;
    /** First section of each name; lookups stay linear-time on hostile images with many sections. */
    private final Map<String, Section> sectionsByName = new HashMap<>();

    private record Section(int index, String name, int type, long offset, long size, int link, long info) {
        boolean hasBytes() {
            return type != SHT_NOBITS && type != SHT_CUDA_NOBITS;
        }
    }

    private record Symbol(String name, int type, int other, int shndx, long value, long size) {
    }

    /** What the .nv.info sections say about one kernel while it is being assembled. */
    private static final class Params {
        final List<int[]> records = new ArrayList<>(); // {ordinal, offset, size}
        int cbankSize = -1;
        int maxThreads;
    }

    private CubinParser(byte[] elf) {
        this.elf = elf;
    }

    static boolean isElf(byte[] b) {
        return b.length >= 4 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
    }

    static ModuleImage parse(byte[] elf) throws ImageFormatException {
        return new CubinParser(elf).parse();
    }

    private ModuleImage parse() throws ImageFormatException {
        if (!isElf(elf)) {
            throw new ImageFormatException("cubin does not start with the ELF magic");
        }
        if (elf.length < 64) {
            throw new ImageFormatException("ELF truncated: " + elf.length + " bytes, the header alone has 64");
        }
        if (elf[4] != 2 || elf[5] != 1) {
            throw new ImageFormatException("only 64-bit little-endian cubins are supported (ELF class "
                    + elf[4] + ", data " + elf[5] + ")");
        }
        int machine = Bytes.u16(elf, 18, "ELF machine");
        if (machine != EM_CUDA) {
            throw new ImageFormatException("ELF is for machine " + machine + ", not CUDA (" + EM_CUDA + ")");
        }
        long flags = Bytes.u32(elf, 48, "ELF flags");
        int osabi = elf[7] & 0xff;
        ModuleImage result = new ModuleImage();
        result.arch = (int) (osabi >= ELFOSABI_CUDA_V2 ? (flags >>> 8) & 0xff : flags & 0xff);

        // Program headers are not needed for metadata, but the driver loads by them: a cut-off
        // image must not pass here and fail later.
        long phoff = Bytes.u64(elf, 32, "ELF program header offset");
        long phBytes = (long) Bytes.u16(elf, 54, "ELF program header size")
                * Bytes.u16(elf, 56, "ELF program header count");
        if (phBytes > 0) {
            Bytes.check(elf, phoff, phBytes, "ELF program headers");
        }
        readSections();
        result.virtualArch = virtualArch(osabi, flags);
        Section symtab = null;
        for (Section s : sections) {
            if (s.type() == SHT_SYMTAB) {
                symtab = s;
                break;
            }
        }
        if (symtab == null) {
            throw new ImageFormatException("cubin has no symbol table");
        }
        List<Symbol> symbols = readSymbols(symtab);

        Map<Integer, int[]> perSymbol = readModuleInfo(); // symbol index -> {regs, frame}
        long reservedShared = result.arch >= FIRST_ARCH_WITH_RESERVED_SHARED ? RESERVED_SHARED : 0;
        long userConstBytes = 0;
        for (GlobalInfo g : readGlobals(symbols)) {
            result.globals.add(g);
        }
        Set<Integer> withObjects = new HashSet<>();
        for (Symbol sym : symbols) {
            if (sym.type() == STT_OBJECT || sym.type() == STT_CUDA_OBJECT) {
                withObjects.add(sym.shndx());
            }
        }
        for (Section s : sections) {
            // Only banks holding user variables count, not the compiler's address constants.
            if (isConstantBank(s.name()) && withObjects.contains(s.index())) {
                userConstBytes += s.size();
            }
        }
        Map<Integer, Section> infoByText = new HashMap<>();
        for (Section s : sections) {
            if (s.name().startsWith(".nv.info.") && s.info() < sections.length) {
                infoByText.putIfAbsent((int) s.info(), s);
            }
        }

        Set<String> kernelNames = new HashSet<>();
        for (int i = 0; i < symbols.size(); i++) {
            Symbol sym = symbols.get(i);
            if (sym.type() != STT_FUNC || (sym.other() & STO_CUDA_ENTRY) == 0
                    || sym.shndx() == 0 || sym.shndx() >= sections.length || !kernelNames.add(sym.name())) {
                continue;
            }
            Section text = sections[sym.shndx()];
            if (!text.name().equals(".text." + sym.name())) {
                continue;
            }
            KernelInfo k = new KernelInfo();
            k.name = sym.name();
            Section info = infoByText.get(text.index());
            Params p = readKernelInfo(info != null ? info : sectionsByName.get(".nv.info." + sym.name()));
            applyParams(k, p);
            if (p.maxThreads > 0) {
                k.maxThreadsPerBlock = Math.min(k.maxThreadsPerBlock, p.maxThreads);
            }
            int[] regsFrame = perSymbol.get(i);
            // Pre-sm_90 cubins also keep the register count in the top byte of the text section's sh_info.
            k.numRegs = regsFrame != null && regsFrame[0] > 0 ? regsFrame[0] : (int) (text.info() >>> 24);
            k.localSizeBytes = regsFrame != null ? regsFrame[1] : 0;
            Section shared = sectionsByName.get(".nv.shared." + sym.name());
            if (shared != null) {
                long bytes = shared.size() - reservedShared;
                k.sharedSizeBytes = (int) Math.max(0, Math.min(bytes, Integer.MAX_VALUE));
            }
            k.constSizeBytes = (int) Math.min(userConstBytes, Integer.MAX_VALUE);
            result.kernels.add(k);
        }
        return result;
    }

    /**
     * The virtual architecture (compute_XX) the SASS was compiled from. CUDA 13's ELF ABI keeps it
     * only in the {@code .note.nv.cuinfo} note, whose descriptor is u16 version, u16 virtual SM,
     * u16 toolkit version (nvcc 13.0: {@code arch=compute_75,code=sm_80} writes 2, 75, 130); the
     * older ABI kept it in e_flags bits 16–23. 0 when neither says.
     */
    private int virtualArch(int osabi, long flags) throws ImageFormatException {
        Section note = sectionsByName.get(".note.nv.cuinfo");
        if (note != null && note.size() >= NOTE_HEADER) {
            Bytes.check(elf, note.offset(), note.size(), ".note.nv.cuinfo");
            long nameSize = Bytes.u32(elf, note.offset(), "note name size");
            long descSize = Bytes.u32(elf, note.offset() + 4, "note descriptor size");
            long desc = note.offset() + NOTE_HEADER + ((nameSize + 3) & ~3L);
            if (descSize >= 4 && desc + 4 <= note.offset() + note.size()) {
                return Bytes.u16(elf, desc + 2, "note virtual SM");
            }
        }
        return osabi < ELFOSABI_CUDA_V2 ? (int) ((flags >>> 16) & 0xff) : 0;
    }

    private void readSections() throws ImageFormatException {
        long shoff = Bytes.u64(elf, 40, "ELF section header offset");
        int shentsize = Bytes.u16(elf, 58, "ELF section header size");
        long shnum = Bytes.u16(elf, 60, "ELF section count");
        int shstrndx = Bytes.u16(elf, 62, "ELF section name table index");
        if (shoff == 0) {
            throw new ImageFormatException("cubin has no section headers");
        }
        if (shentsize < SECTION_HEADER_SIZE) {
            throw new ImageFormatException("ELF section header size " + shentsize + " is below " + SECTION_HEADER_SIZE);
        }
        if (shnum == 0) {
            // Extended numbering: the real count sits in section 0's sh_size.
            shnum = Bytes.u64(elf, shoff + 32, "ELF extended section count");
        }
        if (shnum > (elf.length - Math.min(shoff, elf.length)) / shentsize) {
            throw new ImageFormatException("ELF section headers (" + shnum + " at " + shoff
                    + ") run past the end of the " + elf.length + "-byte image");
        }
        if (shstrndx == 0xffff) {
            shstrndx = (int) Bytes.u32(elf, shoff + 40, "ELF extended name table index");
        }
        if (shstrndx >= shnum) {
            throw new ImageFormatException("ELF section name table index " + shstrndx + " is out of range");
        }
        int n = (int) shnum;
        long[][] raw = new long[n][];
        for (int i = 0; i < n; i++) {
            long h = shoff + (long) i * shentsize;
            String what = "ELF section " + i;
            raw[i] = new long[] {
                Bytes.u32(elf, h, what + " name"),
                Bytes.u32(elf, h + 4, what + " type"),
                Bytes.u64(elf, h + 24, what + " offset"),
                Bytes.u64(elf, h + 32, what + " size"),
                Bytes.u32(elf, h + 40, what + " link"),
                Bytes.u32(elf, h + 44, what + " info"),
            };
        }
        long[] strtab = raw[shstrndx];
        StringTable names = new StringTable(strtab[2], strtab[3], "ELF section name table");
        sections = new Section[n];
        for (int i = 0; i < n; i++) {
            long[] r = raw[i];
            String name = i == 0 ? "" : names.at(r[0], "ELF section " + i);
            sections[i] = new Section(i, name, (int) r[1], r[2], r[3], (int) r[4], r[5]);
            sectionsByName.putIfAbsent(name, sections[i]);
        }
    }

    private void checkContent(Section s) throws ImageFormatException {
        Bytes.check(elf, s.offset(), s.size(), "section " + s.name());
    }

    private List<Symbol> readSymbols(Section symtab) throws ImageFormatException {
        checkContent(symtab);
        if (symtab.link() <= 0 || symtab.link() >= sections.length) {
            throw new ImageFormatException("symbol table links to missing string table " + symtab.link());
        }
        Section strtab = sections[symtab.link()];
        StringTable names = new StringTable(strtab.offset(), strtab.size(), "symbol string table");
        long count = symtab.size() / SYM_SIZE;
        List<Symbol> symbols = new ArrayList<>((int) Math.min(count, 1 << 16));
        for (long i = 0; i < count; i++) {
            int at = (int) (symtab.offset() + i * SYM_SIZE);
            long nameOff = Bytes.u32At(elf, at);
            String name = i == 0 ? "" : names.at(nameOff, "symbol " + i);
            int info = elf[at + 4] & 0xff;
            int other = elf[at + 5] & 0xff;
            int shndx = (elf[at + 6] & 0xff) | (elf[at + 7] & 0xff) << 8;
            long value = Bytes.u64(elf, at + 8L, "symbol " + name + " value");
            long size = Bytes.u64(elf, at + 16L, "symbol " + name + " size");
            symbols.add(new Symbol(name, info & 0xf, other, shndx, value, size));
        }
        return symbols;
    }

    /**
     * NUL-terminated names out of one string table. Names are cached by offset and the bytes
     * scanned are budgeted, so a hostile table (say, thousands of symbols pointing into one huge
     * unterminated string) costs linear time and memory instead of quadratic.
     */
    private final class StringTable {
        private final long start;
        private final long size;
        private final String what;
        private final Map<Long, String> cache = new HashMap<>();
        private long budget;

        StringTable(long start, long size, String what) throws ImageFormatException {
            Bytes.check(elf, start, size, what);
            this.start = start;
            this.size = size;
            this.what = what;
            this.budget = 4 * size + (1 << 16);
        }

        String at(long offset, String owner) throws ImageFormatException {
            String cached = cache.get(offset);
            if (cached != null) {
                return cached;
            }
            if (offset < 0 || offset >= size) {
                throw new ImageFormatException(owner + ": name offset " + offset + " lies outside the "
                        + size + "-byte " + what);
            }
            int from = (int) (start + offset);
            int end = (int) (start + size);
            int i = from;
            while (i < end && elf[i] != 0) {
                i++;
            }
            budget -= i - from + 1;
            if (i == end) {
                throw new ImageFormatException(owner + ": name at " + offset + " is not NUL-terminated");
            }
            if (budget < 0) {
                throw new ImageFormatException(what + ": names overlap absurdly");
            }
            String name = new String(elf, from, i - from, StandardCharsets.UTF_8);
            cache.put(offset, name);
            return name;
        }
    }

    /** Device variables: objects in {@code .nv.global[.init]} and the module's constant banks. */
    private List<GlobalInfo> readGlobals(List<Symbol> symbols) throws ImageFormatException {
        List<GlobalInfo> globals = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        // Symbols may overlap; copying initialisers must not multiply the image's size.
        long initBudget = 2L * elf.length + (1 << 20);
        for (Symbol sym : symbols) {
            if ((sym.type() != STT_OBJECT && sym.type() != STT_CUDA_OBJECT) || sym.shndx() == 0
                    || sym.shndx() >= SHN_LORESERVE || sym.shndx() >= sections.length
                    || sym.name().isEmpty() || sym.name().startsWith("$") || sym.name().startsWith(".")) {
                continue;
            }
            Section s = sections[sym.shndx()];
            if (!s.name().equals(".nv.global") && !s.name().equals(".nv.global.init") && !isConstantBank(s.name())) {
                continue;
            }
            if (sym.value() > s.size() || sym.size() > s.size() - sym.value()) {
                throw new ImageFormatException("global " + sym.name() + " (" + sym.size() + " bytes at "
                        + sym.value() + ") lies outside its section " + s.name() + " of " + s.size() + " bytes");
            }
            if (!seen.add(sym.name())) {
                continue;
            }
            GlobalInfo g = new GlobalInfo();
            g.name = sym.name();
            g.size = sym.size();
            if (s.hasBytes()) {
                checkContent(s);
                initBudget -= sym.size();
                if (initBudget < 0) {
                    throw new ImageFormatException("initialised globals add up to more bytes than the image could hold");
                }
                // Relocated initialisers (pointers to other globals) keep the addend bytes only.
                g.init = Bytes.slice(elf, s.offset() + sym.value(), sym.size(), "initialiser of " + sym.name());
            }
            globals.add(g);
        }
        return globals;
    }

    /** {@code .nv.constant<N>}: module-wide banks; {@code .nv.constant0.<kernel>} is per-kernel. */
    private static boolean isConstantBank(String name) {
        String prefix = ".nv.constant";
        if (!name.startsWith(prefix) || name.length() == prefix.length()) {
            return false;
        }
        for (int i = prefix.length(); i < name.length(); i++) {
            if (!Character.isDigit(name.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    /** Walks the {u8 format, u8 attribute, u16 value-or-size} records of an info section. */
    private interface RecordVisitor {
        void visit(int attr, int format, int value, int payloadOff) throws ImageFormatException;
    }

    private void forEachRecord(Section s, RecordVisitor visitor) throws ImageFormatException {
        checkContent(s);
        long pos = s.offset();
        long end = s.offset() + s.size();
        while (pos + 4 <= end) {
            int format = elf[(int) pos] & 0xff;
            int attr = elf[(int) pos + 1] & 0xff;
            int value = (elf[(int) pos + 2] & 0xff) | (elf[(int) pos + 3] & 0xff) << 8;
            pos += 4;
            switch (format) {
                case EIFMT_NVAL, EIFMT_BVAL, EIFMT_HVAL -> visitor.visit(attr, format, value, -1);
                case EIFMT_SVAL -> {
                    if (value > end - pos) {
                        throw new ImageFormatException(s.name() + ": attribute 0x" + Integer.toHexString(attr)
                                + " claims " + value + " bytes, past the end of the section");
                    }
                    visitor.visit(attr, format, value, (int) pos);
                    pos += value;
                }
                default -> throw new ImageFormatException(s.name() + ": unknown record format " + format
                        + " at offset " + (pos - 4 - s.offset()));
            }
        }
    }

    /** Symbol index → {registers, stack frame bytes} from the module-wide {@code .nv.info}. */
    private Map<Integer, int[]> readModuleInfo() throws ImageFormatException {
        Map<Integer, int[]> out = new HashMap<>();
        for (Section s : sections) {
            if (!s.name().equals(".nv.info")) {
                continue;
            }
            forEachRecord(s, (attr, format, value, at) -> {
                if (format != EIFMT_SVAL || value < 8 || (attr != EIATTR_REGCOUNT && attr != EIATTR_FRAME_SIZE)) {
                    return;
                }
                int sym = (int) Math.min(Bytes.u32At(elf, at), Integer.MAX_VALUE);
                int v = (int) Math.min(Bytes.u32At(elf, at + 4), Integer.MAX_VALUE);
                int[] e = out.computeIfAbsent(sym, x -> new int[2]);
                e[attr == EIATTR_REGCOUNT ? 0 : 1] = v;
            });
        }
        return out;
    }

    private Params readKernelInfo(Section info) throws ImageFormatException {
        Params p = new Params();
        if (info == null) {
            return p;
        }
        forEachRecord(info, (attr, format, value, at) -> {
            switch (attr) {
                case EIATTR_KPARAM_INFO -> {
                    if (format == EIFMT_SVAL && value >= 12) {
                        long word = Bytes.u32At(elf, at + 4);
                        long packed = Bytes.u32At(elf, at + 8);
                        p.records.add(new int[] {(int) (word & 0xffff), (int) (word >>> 16), (int) (packed >>> 18)});
                    }
                }
                case EIATTR_KPARAM_INFO_V2 -> {
                    if (format == EIFMT_SVAL && value >= 12) {
                        long word = Bytes.u32At(elf, at + 4);
                        long size = Bytes.u32At(elf, at + 8);
                        p.records.add(new int[] {(int) (word & 0xffff), (int) (word >>> 16),
                            (int) Math.min(size, Integer.MAX_VALUE)});
                    }
                }
                case EIATTR_CBANK_PARAM_SIZE -> {
                    if (format == EIFMT_HVAL) {
                        p.cbankSize = value;
                    }
                }
                case EIATTR_MAX_THREADS, EIATTR_REQNTID -> {
                    if (format == EIFMT_SVAL && value >= 12) {
                        long threads = blockSize(Bytes.u32At(elf, at), Bytes.u32At(elf, at + 4),
                                Bytes.u32At(elf, at + 8));
                        if (threads > 0 && (p.maxThreads == 0 || threads < p.maxThreads)) {
                            p.maxThreads = (int) threads;
                        }
                    }
                }
                default -> {
                }
            }
        });
        return p;
    }

    private static void applyParams(KernelInfo k, Params p) throws ImageFormatException {
        int n = p.records.size();
        int[] offsets = new int[n];
        int[] sizes = new int[n];
        boolean[] seen = new boolean[n];
        int end = 0;
        for (int[] r : p.records) {
            int ordinal = r[0];
            if (ordinal >= n || seen[ordinal]) {
                throw new ImageFormatException("kernel " + k.name + ": parameter ordinal " + ordinal
                        + " is out of range or repeated (" + n + " parameters)");
            }
            if (r[2] > MAX_PARAM_BYTES || r[1] + r[2] > MAX_PARAM_BYTES) {
                throw new ImageFormatException("kernel " + k.name + ": parameter " + ordinal + " (" + r[2]
                        + " bytes at " + r[1] + ") exceeds the parameter space");
            }
            seen[ordinal] = true;
            offsets[ordinal] = r[1];
            sizes[ordinal] = r[2];
            end = Math.max(end, r[1] + r[2]);
        }
        if (p.cbankSize >= 0 && p.cbankSize < end) {
            throw new ImageFormatException("kernel " + k.name + ": parameters end at " + end
                    + " but the parameter bank has " + p.cbankSize + " bytes");
        }
        k.paramOffsets = offsets;
        k.paramSizes = sizes;
        k.paramBufferSize = p.cbankSize >= 0 ? p.cbankSize : end;
    }

    /** x·y·z, or 0 (no usable limit) when the product does not fit an int. */
    static long blockSize(long x, long y, long z) {
        try {
            long v = Math.multiplyExact(Math.multiplyExact(x, y), z);
            return v <= Integer.MAX_VALUE ? v : 0;
        } catch (ArithmeticException e) {
            return 0;
        }
    }
}
