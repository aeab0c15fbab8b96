package io.vgpu.core.image;

import static io.vgpu.core.image.ImageParserTest.container;
import static io.vgpu.core.image.ImageParserTest.entry;
import static io.vgpu.core.image.ImageParserTest.resource;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

import org.junit.Test;

/** Against the fixtures in src/test/resources/images and fatbins and ELF files built here. */
public class FatbinPtxTest {
    private static final long MAX = ImageParser.DEFAULT_MAX_DECOMPRESSED;
    private static final long ARCH_SPECIFIC = 0x100000;

    /** kernels.ptx as nvcc -ptx wrote it. */
    private static String kernelsPtx() throws Exception {
        return new String(resource("kernels.ptx"), StandardCharsets.ISO_8859_1);
    }

    /** PTX without comments and with single spaces: fatbinary drops comments and indentation. */
    private static String tokens(String ptx) {
        assertTrue(ptx, ptx.contains(".version"));
        return ptx.replaceAll("//[^\n]*", "").replaceAll("\\s+", " ").trim();
    }

    private static byte[] ptxEntry(int arch, long flags, String text) {
        byte[] b = (text + "\0").getBytes(StandardCharsets.ISO_8859_1);
        return entry(ImageParser.KIND_PTX, arch, 0x1 | flags, b, 0, 0);
    }

    private static String ptx(int target) {
        return ".version 8.0\n.target sm_" + target + "\n.address_size 64\n.entry k" + target + "() { ret; }\n";
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    // ---- ptxEntries ----

    @Test
    public void everyCompressionGivesTheSamePtx() throws Exception {
        String expected = tokens(kernelsPtx());
        // zstd PTX (nvcc 13's default), everything zstd, everything LZ4, nothing compressed.
        for (String name : List.of("kernels.fatbin", "kernels.compressed.fatbin", "kernels.lz4.fatbin",
                "kernels.uncompressed.fatbin")) {
            List<FatbinPtx.Entry> entries = FatbinPtx.ptxEntries(resource(name), MAX);
            assertEquals(name, 1, entries.size());
            FatbinPtx.Entry e = entries.get(0);
            assertEquals(name, 1, e.index());
            assertEquals(name, 90, e.arch());
            assertFalse(name, e.archSpecific());
            assertEquals(name, "compute_90", e.describe());
            assertEquals(name, expected, tokens(e.text()));
            assertEquals(name + ": cut at the NUL", -1, e.text().indexOf('\0'));
        }
    }

    @Test
    public void cubinOnlyContainerHasNoPtxEntries() throws Exception {
        byte[] cubin = resource("kernels.sm_90.cubin");
        assertEquals(List.of(), FatbinPtx.ptxEntries(container(entry(ImageParser.KIND_CUBIN, 90, 0x11, cubin, 0, 0)), MAX));
    }

    @Test
    public void severalPtxEntriesInContainerOrder() throws Exception {
        byte[] fatbin = container(concat(ptxEntry(70, 0, ptx(70)),
                entry(ImageParser.KIND_CUBIN, 90, 0x11, resource("kernels.sm_90.cubin"), 0, 0),
                ptxEntry(90, ARCH_SPECIFIC, ptx(90) + "// a\n"), ptxEntry(90, 0, ptx(90))));
        List<FatbinPtx.Entry> entries = FatbinPtx.ptxEntries(fatbin, MAX);
        assertEquals(3, entries.size());
        assertEquals(0, entries.get(0).index());
        assertEquals(ptx(70), entries.get(0).text());
        assertEquals(2, entries.get(1).index());
        assertTrue(entries.get(1).archSpecific());
        assertEquals("compute_90 (arch-specific)", entries.get(1).describe());
        assertEquals(ptx(90), entries.get(2).text());
        // best() picks as bestPtx does: the portable compute_90 on sm_90, compute_70 on sm_80.
        assertEquals(ptx(90), FatbinPtx.best(entries, 90).text());
        assertEquals(ptx(90), FatbinPtx.best(entries, 100).text());
        assertEquals(ptx(70), FatbinPtx.best(entries, 80).text());
        assertNull(FatbinPtx.best(entries, 61));
        // The headers say the same without decompressing; entry() decompresses one.
        List<FatbinPtx.Header> headers = FatbinPtx.ptxHeaders(fatbin);
        assertEquals(List.of(new FatbinPtx.Header(0, 70, false), new FatbinPtx.Header(2, 90, true),
                new FatbinPtx.Header(3, 90, false)), headers);
        assertEquals(headers.get(2), FatbinPtx.best(headers, 90));
        assertEquals("compute_90 (arch-specific)", headers.get(1).describe());
        for (int i = 0; i < 3; i++) {
            assertEquals(entries.get(i), FatbinPtx.entry(fatbin, headers.get(i), MAX));
        }
        expectFailure(() -> FatbinPtx.entry(fatbin, new FatbinPtx.Header(1, 90, false), MAX));
    }

    @Test
    public void malformedContainersAreRefused() throws Exception {
        byte[] fatbin = resource("kernels.fatbin");
        expectFailure(() -> FatbinPtx.ptxEntries(Arrays.copyOf(fatbin, fatbin.length - 100), MAX));
        expectFailure(() -> FatbinPtx.ptxEntries(resource("kernels.ptx"), MAX));
        // A zstd PTX entry over the cap.
        expectFailure(() -> FatbinPtx.ptxEntries(fatbin, 100));
        // Corrupt compressed bytes.
        ImageParser.Entry ptx = ImageParser.readEntries(fatbin).get(1);
        byte[] corrupt = fatbin.clone();
        Arrays.fill(corrupt, ptx.payloadOffset() + 8, ptx.payloadOffset() + (int) ptx.compressedSize(), (byte) 0x55);
        expectFailure(() -> FatbinPtx.ptxEntries(corrupt, MAX));
    }

    // ---- bestPtx ----

    @Test
    public void bestPtxOfTheFixtures() throws Exception {
        String expected = tokens(kernelsPtx());
        byte[] fatbin = resource("kernels.fatbin");
        assertEquals(expected, tokens(FatbinPtx.bestPtx(fatbin, 90)));
        // A newer device JITs compute_90 PTX too; an older one cannot.
        assertEquals(expected, tokens(FatbinPtx.bestPtx(fatbin, 100)));
        assertNull(FatbinPtx.bestPtx(fatbin, 89));
        // Trailing bytes after the container (an application may send a padded buffer).
        assertEquals(expected, tokens(FatbinPtx.bestPtx(Arrays.copyOf(fatbin, fatbin.length + 64), 90)));
        // PTX text: itself, as sent (up to a NUL), when its .target fits.
        assertEquals(kernelsPtx(), FatbinPtx.bestPtx(resource("kernels.ptx"), 90));
        assertEquals(kernelsPtx(), FatbinPtx.bestPtx(concat(resource("kernels.ptx"), new byte[] {0, 'x'}), 90));
        assertNull(FatbinPtx.bestPtx(resource("kernels.ptx"), 80));
        // Cubins hold no PTX.
        assertNull(FatbinPtx.bestPtx(resource("kernels.sm_90.cubin"), 90));
        assertNull(FatbinPtx.bestPtx(resource("kernels.compute_75.sm_80.cubin"), 80));
        assertNull(FatbinPtx.bestPtx(container(entry(ImageParser.KIND_CUBIN, 90, 0x11,
                resource("kernels.sm_90.cubin"), 0, 0)), 90));
    }

    @Test
    public void bestPtxIsTheNewestAtOrBelowTheDevice() throws Exception {
        byte[] fatbin = container(concat(ptxEntry(52, 0, ptx(52)), ptxEntry(80, 0, ptx(80)),
                ptxEntry(75, 0, ptx(75)), ptxEntry(90, ARCH_SPECIFIC, ptx(90) + "// 90a\n"),
                ptxEntry(100, 0, ptx(100))));
        assertEquals(ptx(52), FatbinPtx.bestPtx(fatbin, 61));
        assertEquals(ptx(75), FatbinPtx.bestPtx(fatbin, 75));
        assertEquals(ptx(80), FatbinPtx.bestPtx(fatbin, 89));
        // compute_90a only on sm_90 itself; compute_100 on sm_100, and the newest otherwise.
        assertEquals(ptx(90) + "// 90a\n", FatbinPtx.bestPtx(fatbin, 90));
        assertEquals(ptx(100), FatbinPtx.bestPtx(fatbin, 100));
        assertEquals(ptx(100), FatbinPtx.bestPtx(fatbin, 120));
        assertNull(FatbinPtx.bestPtx(fatbin, 50));
        // At the same arch the portable entry wins, whichever comes first.
        byte[] both = container(concat(ptxEntry(90, 0, ptx(90)), ptxEntry(90, ARCH_SPECIFIC, ptx(90) + "// a\n")));
        assertEquals(ptx(90), FatbinPtx.bestPtx(both, 90));
        byte[] reversed = container(concat(ptxEntry(90, ARCH_SPECIFIC, ptx(90) + "// a\n"), ptxEntry(90, 0, ptx(90))));
        assertEquals(ptx(90), FatbinPtx.bestPtx(reversed, 90));
    }

    @Test
    public void bestPtxOfStandaloneText() throws Exception {
        String noTarget = ".version 8.0\n.address_size 64\n.entry k() { ret; }\n";
        assertEquals(noTarget, FatbinPtx.bestPtx(noTarget.getBytes(StandardCharsets.US_ASCII), 50));
        String sm90a = ".version 8.0\n.target sm_90a\n.entry k() { ret; }\n";
        assertEquals(sm90a, FatbinPtx.bestPtx(sm90a.getBytes(StandardCharsets.US_ASCII), 90));
        assertNull(FatbinPtx.bestPtx(sm90a.getBytes(StandardCharsets.US_ASCII), 100));
        String debug = "// .target sm_100 in a comment\n.version 8.0\n.target sm_70, debug\n";
        assertEquals(debug, FatbinPtx.bestPtx(debug.getBytes(StandardCharsets.US_ASCII), 75));
        assertNull(FatbinPtx.bestPtx(debug.getBytes(StandardCharsets.US_ASCII), 61));
    }

    @Test
    public void bestPtxRefusesWhatIsNotAModuleImage() throws Exception {
        expectFailure(() -> FatbinPtx.bestPtx(new byte[0], 90));
        expectFailure(() -> FatbinPtx.bestPtx(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, 90));
        ByteBuffer wrapper = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        wrapper.putInt(ImageParser.FATBIN_WRAPPER_MAGIC).putInt(1);
        expectFailure(() -> FatbinPtx.bestPtx(wrapper.array(), 90));
        byte[] fatbin = resource("kernels.fatbin");
        expectFailure(() -> FatbinPtx.bestPtx(Arrays.copyOf(fatbin, 40), 90));
    }

    // ---- fatbins in ELF host libraries ----

    @Test
    public void fatbinsInNvFatbinAndElsewhere() throws Exception {
        byte[] a = resource("kernels.fatbin");
        byte[] b = resource("kernels.lz4.fatbin");
        byte[] c = resource("kernels.compressed.fatbin");
        // .nv_fatbin: two containers with zero padding between them and after.
        byte[] nvFatbin = concat(a, new byte[16], b, new byte[8]);
        // .rodata: a container among other data, and a stray magic without a valid container.
        ByteBuffer stray = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        stray.putInt(ImageParser.FATBIN_MAGIC).putShort((short) 1).putShort((short) 16).putLong(16);
        byte[] rodata = concat(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, stray.array(), c, new byte[] {42, 42, 42, 42});
        ByteBuffer wrappers = ByteBuffer.allocate(72).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 3; i++) {
            wrappers.putInt(i * 24, ImageParser.FATBIN_WRAPPER_MAGIC).putInt(i * 24 + 4, 1);
        }
        Elf elf = new Elf().section(".rodata", rodata).section(".nv_fatbin", nvFatbin)
                .section(".nvFatBinSegment", wrappers.array());
        byte[] file = elf.build();

        List<byte[]> found = FatbinPtx.fatbinsInElf(file);
        assertEquals(3, found.size());
        assertArrayEquals(c, found.get(0));
        assertArrayEquals(a, found.get(1));
        assertArrayEquals(b, found.get(2));
        List<FatbinPtx.Span> spans = FatbinPtx.fatbinSpans(ByteBuffer.wrap(file));
        assertEquals(List.of(".rodata", ".nv_fatbin", ".nv_fatbin"), spans.stream().map(FatbinPtx.Span::section).toList());
        assertEquals(elf.offset(".rodata") + 12 + 32, spans.get(0).offset());
        assertEquals(elf.offset(".nv_fatbin"), spans.get(1).offset());
        assertEquals(elf.offset(".nv_fatbin") + a.length + 16, spans.get(2).offset());
        assertEquals(3, FatbinPtx.fatbinWrappers(ByteBuffer.wrap(file)));
        for (byte[] f : found) {
            assertEquals(tokens(kernelsPtx()), tokens(FatbinPtx.bestPtx(f, 90)));
        }
        // A read-only, direct buffer (what a mapped file is) works the same.
        ByteBuffer direct = ByteBuffer.allocateDirect(file.length).put(file).flip().asReadOnlyBuffer();
        assertEquals(spans, FatbinPtx.fatbinSpans(direct));
    }

    @Test
    public void elfWithoutFatbins() throws Exception {
        byte[] file = new Elf().section(".rodata", new byte[] {1, 2, 3, 4}).build();
        assertEquals(List.of(), FatbinPtx.fatbinsInElf(file));
        assertEquals(0, FatbinPtx.fatbinWrappers(ByteBuffer.wrap(file)));
    }

    @Test
    public void malformedElfFilesAreRefused() throws Exception {
        expectFailure(() -> FatbinPtx.fatbinsInElf(resource("kernels.fatbin")));
        // .nv_fatbin holding something other than containers.
        expectFailure(() -> FatbinPtx.fatbinsInElf(new Elf().section(".nv_fatbin", new byte[] {9, 9, 9, 9, 0, 0, 0, 0}).build()));
        // A container in .nv_fatbin that runs past the section.
        byte[] a = resource("kernels.fatbin");
        expectFailure(() -> FatbinPtx.fatbinsInElf(new Elf().section(".nv_fatbin", Arrays.copyOf(a, a.length - 8)).build()));
        // Section headers or a section past the end of the file.
        byte[] file = new Elf().section(".rodata", new byte[16]).build();
        expectFailure(() -> FatbinPtx.fatbinsInElf(Arrays.copyOf(file, file.length - 10)));
        byte[] bad = file.clone();
        long shoff = ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).getLong(0x28);
        ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong((int) shoff + 64 + 32, 1L << 40);
        expectFailure(() -> FatbinPtx.fatbinsInElf(bad));
        // 32-bit ELF.
        byte[] elf32 = file.clone();
        elf32[4] = 1;
        expectFailure(() -> FatbinPtx.fatbinsInElf(elf32));
    }

    // ---- helpers ----

    interface Call {
        void run() throws Exception;
    }

    private static void expectFailure(Call call) throws Exception {
        try {
            call.run();
        } catch (ImageFormatException expected) {
            return;
        }
        fail("accepted although it should not have");
    }

    /** A minimal ELF64 file: header, section contents at 8-byte alignment, .shstrtab, section headers. */
    static final class Elf {
        private final List<String> names = new java.util.ArrayList<>();
        private final List<byte[]> contents = new java.util.ArrayList<>();
        private final java.util.Map<String, Long> offsets = new java.util.HashMap<>();

        Elf section(String name, byte[] data) {
            names.add(name);
            contents.add(data);
            return this;
        }

        long offset(String name) {
            return offsets.get(name);
        }

        byte[] build() {
            List<String> all = new java.util.ArrayList<>(names);
            List<byte[]> data = new java.util.ArrayList<>(contents);
            ByteArrayOutputStream strtab = new ByteArrayOutputStream();
            strtab.write(0);
            int[] nameOff = new int[all.size() + 1];
            all.add(".shstrtab");
            for (int i = 0; i < all.size(); i++) {
                nameOff[i] = strtab.size();
                strtab.writeBytes((all.get(i) + "\0").getBytes(StandardCharsets.US_ASCII));
            }
            data.add(strtab.toByteArray());
            long[] off = new long[all.size()];
            long pos = 64;
            for (int i = 0; i < all.size(); i++) {
                off[i] = pos;
                offsets.put(all.get(i), pos);
                pos = (pos + data.get(i).length + 7) & ~7L;
            }
            long shoff = pos;
            int shnum = all.size() + 1;
            ByteBuffer b = ByteBuffer.allocate((int) (shoff + 64L * shnum)).order(ByteOrder.LITTLE_ENDIAN);
            b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0});
            b.putShort(16, (short) 3); // ET_DYN
            b.putShort(18, (short) 62); // EM_X86_64
            b.putInt(20, 1);
            b.putLong(0x28, shoff);
            b.putShort(0x34, (short) 64);
            b.putShort(0x3a, (short) 64);
            b.putShort(0x3c, (short) shnum);
            b.putShort(0x3e, (short) (shnum - 1));
            for (int i = 0; i < all.size(); i++) {
                b.put((int) off[i], data.get(i));
                int h = (int) shoff + 64 * (i + 1);
                b.putInt(h, nameOff[i]);
                b.putInt(h + 4, all.get(i).equals(".shstrtab") ? 3 : 1); // SHT_STRTAB, SHT_PROGBITS
                b.putLong(h + 24, off[i]);
                b.putLong(h + 32, data.get(i).length);
            }
            return b.array();
        }
    }
}
