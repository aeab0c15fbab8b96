package io.vgpu.core.image;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.airlift.compress.lz4.Lz4Compressor;
import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.Test;

/**
 * Against the fixtures in src/test/resources/images (built from kernels.cu by regenerate.sh with
 * CUDA 13.0 nvcc). Register counts are the ones {@code ptxas -v} printed for those builds.
 */
public class ImageParserTest {
    private static final String SCALE = "_Z5scale6Paramsf";

    static byte[] resource(String name) throws IOException {
        try (InputStream in = ImageParserTest.class.getResourceAsStream("/images/" + name)) {
            assertNotNull("missing fixture " + name, in);
            return in.readAllBytes();
        }
    }

    // ---- the fixtures ----

    @Test
    public void cubinKernelsAndGlobals() throws Exception {
        byte[] cubin = resource("kernels.sm_90.cubin");
        ModuleImage m = ImageParser.parse(cubin, 90);
        assertEquals(ModuleImage.Format.CUBIN, m.format);
        assertSame(cubin, m.data);
        assertEquals(90, m.arch);
        assertLayouts(m);
        assertGlobals(m);

        KernelInfo vadd = m.kernel("vadd");
        assertEquals(16, vadd.numRegs);
        assertEquals(0, vadd.sharedSizeBytes);
        assertEquals(0, vadd.localSizeBytes);
        assertEquals(1024, vadd.maxThreadsPerBlock);
        // The module's user __constant__ bank: coeffs[4].
        assertEquals(16, vadd.constSizeBytes);

        KernelInfo scale = m.kernel(SCALE);
        assertEquals(14, scale.numRegs);
        // __shared__ double tile[64]; the sm_90 section also holds the driver's reserved 1 KiB.
        assertEquals(512, scale.sharedSizeBytes);
        assertEquals(256, scale.maxThreadsPerBlock);

        assertEquals(10, m.kernel("mixed").numRegs);
    }

    @Test
    public void ptxKernelsAndGlobals() throws Exception {
        ModuleImage m = ImageParser.parse(resource("kernels.ptx"), 90);
        assertEquals(ModuleImage.Format.PTX, m.format);
        assertEquals(90, m.arch);
        assertLayouts(m);
        assertGlobals(m);
        assertEquals(256, m.kernel(SCALE).maxThreadsPerBlock);
        assertEquals(512, m.kernel(SCALE).sharedSizeBytes);
        assertEquals(0, m.kernel("vadd").numRegs);
    }

    @Test
    public void cubinAndPtxAgree() throws Exception {
        ModuleImage cubin = ImageParser.parse(resource("kernels.sm_90.cubin"), 90);
        ModuleImage ptx = ImageParser.parse(resource("kernels.ptx"), 90);
        assertEquals(3, cubin.kernels.size());
        assertEquals(cubin.kernels.size(), ptx.kernels.size());
        for (KernelInfo c : cubin.kernels) {
            KernelInfo p = ptx.kernel(c.name);
            assertNotNull(c.name, p);
            assertArrayEquals(c.name, c.paramOffsets, p.paramOffsets);
            assertArrayEquals(c.name, c.paramSizes, p.paramSizes);
            assertEquals(c.name, c.paramBufferSize, p.paramBufferSize);
            assertEquals(c.name, c.maxThreadsPerBlock, p.maxThreadsPerBlock);
            assertEquals(c.name, c.sharedSizeBytes, p.sharedSizeBytes);
        }
        assertEquals(cubin.globalsSize, ptx.globalsSize);
        assertEquals(cubin.globals.size(), ptx.globals.size());
        for (GlobalInfo c : cubin.globals) {
            GlobalInfo p = ptx.global(c.name);
            assertEquals(c.name, c.size, p.size);
            assertEquals(c.name, c.offset, p.offset);
            assertArrayEquals(c.name, c.init, p.init);
        }
    }

    @Test
    public void fatbinPicksTheSm90Cubin() throws Exception {
        byte[] fatbin = resource("kernels.fatbin");
        List<ImageParser.Entry> entries = ImageParser.readEntries(fatbin);
        assertEquals(2, entries.size());
        assertEquals(ImageParser.KIND_CUBIN, entries.get(0).kind());
        assertEquals(0, entries.get(0).flags() & (ImageParser.FLAG_ZSTD | ImageParser.FLAG_LZ4));
        // CUDA 13 zstd-compresses PTX by default.
        assertEquals(ImageParser.KIND_PTX, entries.get(1).kind());
        assertEquals(ImageParser.FLAG_ZSTD, entries.get(1).flags() & ImageParser.FLAG_ZSTD);

        ModuleImage m = ImageParser.parse(fatbin, 90);
        assertEquals(ModuleImage.Format.FATBIN, m.format);
        assertSame(fatbin, m.data);
        assertEquals(90, m.arch);
        assertLayouts(m);
        assertGlobals(m);
        assertEquals("metadata comes from the cubin", 16, m.kernel("vadd").numRegs);
    }

    @Test
    public void virtualAndBinaryArchitectures() throws Exception {
        // A cubin: SASS as built, and the compute_XX its toolchain recorded.
        ModuleImage sm90 = ImageParser.parse(resource("kernels.sm_90.cubin"), 90);
        assertEquals(false, sm90.ptx);
        assertEquals(90, sm90.arch);
        assertEquals(90, sm90.virtualArch);
        ModuleImage sm80 = ImageParser.parse(resource("kernels.compute_75.sm_80.cubin"), 80);
        assertEquals(false, sm80.ptx);
        assertEquals(80, sm80.arch);
        assertEquals(75, sm80.virtualArch);
        // PTX: compiled at load, its target is its virtual architecture.
        ModuleImage ptx = ImageParser.parse(resource("kernels.ptx"), 90);
        assertEquals(true, ptx.ptx);
        assertEquals(90, ptx.virtualArch);
        ModuleImage sm70 = ImageParser.parse(".version 8.0\n.target sm_70\n.address_size 64\n"
                .getBytes(java.nio.charset.StandardCharsets.US_ASCII), 90);
        assertEquals(true, sm70.ptx);
        assertEquals(70, sm70.arch);
        assertEquals(70, sm70.virtualArch);
        // A fatbin says which entry was chosen.
        byte[] fatbin = resource("kernels.fatbin");
        ModuleImage cubinEntry = ImageParser.parse(fatbin, 90);
        assertEquals(false, cubinEntry.ptx);
        assertEquals(90, cubinEntry.virtualArch);
        ModuleImage ptxEntry = ImageParser.parse(fatbin, 100);
        assertEquals(true, ptxEntry.ptx);
        assertEquals(90, ptxEntry.virtualArch);
    }

    @Test
    public void fullyCompressedFatbin() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        for (ImageParser.Entry e : ImageParser.readEntries(fatbin)) {
            assertEquals(e.describe(), ImageParser.FLAG_ZSTD, e.flags() & ImageParser.FLAG_ZSTD);
        }
        ModuleImage m = ImageParser.parse(fatbin, 90);
        assertLayouts(m);
        assertGlobals(m);
        assertEquals(16, m.kernel("vadd").numRegs);
    }

    @Test
    public void compressedEntriesDecompressToTheStandaloneImages() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        ImageParser.Entry cubin = ImageParser.readEntries(fatbin).get(0);
        assertArrayEquals(resource("kernels.sm_90.cubin"),
                ImageParser.payload(fatbin, cubin, ImageParser.DEFAULT_MAX_DECOMPRESSED));
    }

    @Test
    public void ptxEntryIsUsedWhenNoCubinFits() throws Exception {
        byte[] fatbin = resource("kernels.fatbin");
        // sm_100: no cubin of major 10, so the highest PTX at or below 100 (compute_90).
        ModuleImage m = ImageParser.parse(fatbin, 100);
        assertEquals(ModuleImage.Format.FATBIN, m.format);
        assertEquals(90, m.arch);
        assertEquals(0, m.kernel("vadd").numRegs);
        assertLayouts(m);
        assertGlobals(m);
        // sm_80: nothing at or below 80; any PTX beats no metadata.
        assertEquals(0, ImageParser.parse(fatbin, 80).kernel("vadd").numRegs);
    }

    @Test
    public void lz4FatbinFromNvcc() throws Exception {
        byte[] fatbin = resource("kernels.lz4.fatbin");
        List<ImageParser.Entry> entries = ImageParser.readEntries(fatbin);
        for (ImageParser.Entry e : entries) {
            assertEquals(e.describe(), ImageParser.FLAG_LZ4, e.flags() & ImageParser.FLAG_LZ4);
        }
        assertArrayEquals(resource("kernels.sm_90.cubin"),
                ImageParser.payload(fatbin, entries.get(0), ImageParser.DEFAULT_MAX_DECOMPRESSED));
        ModuleImage m = ImageParser.parse(fatbin, 90);
        assertLayouts(m);
        assertGlobals(m);
        assertEquals(16, m.kernel("vadd").numRegs);
        ModuleImage ptx = ImageParser.parse(fatbin, 100);
        assertEquals(0, ptx.kernel("vadd").numRegs);
        assertLayouts(ptx);
        assertGlobals(ptx);
    }

    /** Entries compressed here with aircompressor, as a second LZ4 producer. */
    @Test
    public void lz4CompressedEntries() throws Exception {
        byte[] plain = resource("kernels.uncompressed.fatbin");
        List<ImageParser.Entry> entries = ImageParser.readEntries(plain);
        ByteArrayOutputStream container = new ByteArrayOutputStream();
        for (ImageParser.Entry e : entries) {
            byte[] payload = ImageParser.payload(plain, e, ImageParser.DEFAULT_MAX_DECOMPRESSED);
            Lz4Compressor lz4 = new Lz4Compressor();
            byte[] compressed = new byte[lz4.maxCompressedLength(payload.length)];
            int n = lz4.compress(payload, 0, payload.length, compressed, 0, compressed.length);
            container.write(entry(e.kind(), e.arch(), 0x11 | ImageParser.FLAG_LZ4,
                    Arrays.copyOf(compressed, n), n, payload.length));
        }
        byte[] fatbin = container(container.toByteArray());
        for (ImageParser.Entry e : ImageParser.readEntries(fatbin)) {
            assertEquals(ImageParser.FLAG_LZ4, e.flags() & ImageParser.FLAG_LZ4);
        }
        ModuleImage m = ImageParser.parse(fatbin, 90);
        assertLayouts(m);
        assertGlobals(m);
        assertEquals(16, m.kernel("vadd").numRegs);
        // and the LZ4 PTX entry
        ModuleImage ptx = ImageParser.parse(fatbin, 100);
        assertEquals(0, ptx.kernel("vadd").numRegs);
        assertLayouts(ptx);
    }

    @Test
    public void zstdPaddingAfterTheFrameIsIgnored() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        ImageParser.Entry e = ImageParser.readEntries(fatbin).get(0);
        byte[] frame = Arrays.copyOfRange(fatbin, e.payloadOffset(), e.payloadOffset() + (int) e.compressedSize());
        byte[] padded = Arrays.copyOf(frame, frame.length + 13);
        // The compressed size here counts the padding too.
        byte[] rebuilt = container(entry(ImageParser.KIND_CUBIN, 90, 0x11 | ImageParser.FLAG_ZSTD,
                padded, padded.length, e.uncompressedSize()));
        assertEquals(16, ImageParser.parse(rebuilt, 90).kernel("vadd").numRegs);
    }

    // ---- entry selection ----

    private static ImageParser.Entry e(int kind, int arch, long flags) {
        return new ImageParser.Entry(0, kind, arch, flags, 0, 0, 0, 0);
    }

    @Test
    public void selectionRules() {
        ImageParser.Entry sm80 = e(ImageParser.KIND_CUBIN, 80, 0);
        ImageParser.Entry sm86 = e(ImageParser.KIND_CUBIN, 86, 0);
        ImageParser.Entry sm90 = e(ImageParser.KIND_CUBIN, 90, 0);
        ImageParser.Entry sm90a = e(ImageParser.KIND_CUBIN, 90, 0x100000);
        ImageParser.Entry ptx70 = e(ImageParser.KIND_PTX, 70, 0);
        ImageParser.Entry ptx80 = e(ImageParser.KIND_PTX, 80, 0);
        ImageParser.Entry ptx100 = e(ImageParser.KIND_PTX, 100, 0);
        List<ImageParser.Entry> all = List.of(sm80, sm86, sm90, ptx70, ptx80, ptx100);

        assertSame(sm90, ImageParser.choose(all, 90));
        assertSame(sm86, ImageParser.choose(all, 89));
        assertSame(sm80, ImageParser.choose(all, 80));
        assertSame("no sm_7x cubin: highest PTX <= 75", ptx70, ImageParser.choose(all, 75));
        assertSame(ptx100, ImageParser.choose(all, 120));
        assertSame("nothing fits: any PTX", ptx70, ImageParser.choose(all, 60));
        assertNull(ImageParser.choose(List.of(sm80, sm90), 75));
        // Arch-specific cubins run only on their exact arch.
        assertSame(sm90a, ImageParser.choose(List.of(sm90a, ptx80), 90));
        assertSame(ptx80, ImageParser.choose(List.of(sm90a, ptx80), 91));
    }

    @Test
    public void noCompatibleCodeHasItsOwnReason() throws Exception {
        byte[] plain = resource("kernels.uncompressed.fatbin");
        ImageParser.Entry cubin = ImageParser.readEntries(plain).get(0);
        byte[] payload = ImageParser.payload(plain, cubin, ImageParser.DEFAULT_MAX_DECOMPRESSED);
        byte[] onlyCubin = container(entry(ImageParser.KIND_CUBIN, 90, 0x11, payload, 0, 0));
        assertEquals(16, ImageParser.parse(onlyCubin, 90).kernel("vadd").numRegs);
        ImageFormatException ex = expectFailure(onlyCubin, 80);
        assertEquals(ImageFormatException.Reason.NO_COMPATIBLE_CODE, ex.reason());
        assertTrue(ex.getMessage(), ex.getMessage().contains("sm_90 cubin"));
    }

    // ---- bad input ----

    @Test
    public void emptyAndUnknownInput() {
        expectFailure(null, 90);
        expectFailure(new byte[0], 90);
        expectFailure(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, 90);
        ImageFormatException ex = expectFailure(new byte[] {(byte) 0xB1, 0x43, 0x62, 0x46, 1, 0, 0, 0}, 90);
        assertTrue(ex.getMessage(), ex.getMessage().contains("wrapper"));
    }

    @Test
    public void badMagic() throws Exception {
        byte[] fatbin = resource("kernels.fatbin");
        fatbin[0] ^= 1;
        ImageFormatException ex = expectFailure(fatbin, 90);
        assertTrue(ex.getMessage(), ex.getMessage().contains("unrecognised"));
    }

    @Test
    public void everyTruncationIsRejected() throws Exception {
        String[] names = {"kernels.fatbin", "kernels.compressed.fatbin", "kernels.lz4.fatbin", "kernels.sm_90.cubin"};
        for (String name : names) {
            byte[] full = resource(name);
            for (int len = 0; len < full.length; len++) {
                try {
                    ImageParser.parse(Arrays.copyOf(full, len), 90);
                    fail(name + " cut to " + len + " bytes parsed");
                } catch (ImageFormatException expected) {
                    // the point
                }
            }
        }
    }

    @Test
    public void compressedSizePastTheEnd() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        ImageParser.Entry first = ImageParser.readEntries(fatbin).get(0);
        int header = first.payloadOffset() - 64;
        ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN).putInt(header + 16, first.payloadSize() + 1);
        ImageFormatException ex = expectFailure(fatbin, 90);
        assertTrue(ex.getMessage(), ex.getMessage().contains("compressed size"));
    }

    @Test
    public void payloadPastTheEnd() throws Exception {
        byte[] fatbin = resource("kernels.fatbin");
        ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN).putLong(16 + 8, 1L << 40);
        ImageFormatException ex = expectFailure(fatbin, 90);
        assertTrue(ex.getMessage(), ex.getMessage().contains("past the end"));
    }

    @Test
    public void absurdSizes() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN).putLong(16 + 56, 1L << 40);
        ImageFormatException ex = expectFailure(fatbin, 90);
        assertTrue(ex.getMessage(), ex.getMessage().contains("limit"));

        byte[] container = resource("kernels.fatbin");
        ByteBuffer.wrap(container).order(ByteOrder.LITTLE_ENDIAN).putLong(8, -16L);
        expectFailure(container, 90);

        // A small decompression cap refuses the 9 KB cubin.
        try {
            ImageParser.parse(resource("kernels.compressed.fatbin"), 90, 4096);
            fail("cap ignored");
        } catch (ImageFormatException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("limit"));
        }
    }

    @Test
    public void corruptCompressedData() throws Exception {
        byte[] fatbin = resource("kernels.compressed.fatbin");
        ImageParser.Entry first = ImageParser.readEntries(fatbin).get(0);
        for (int i = first.payloadOffset() + 8; i < first.payloadOffset() + first.compressedSize(); i += 7) {
            fatbin[i] = (byte) 0xA5;
        }
        expectFailure(fatbin, 90);
    }

    @Test
    public void garbageElf() throws Exception {
        Random random = new Random(42);
        byte[] garbage = new byte[4096];
        random.nextBytes(garbage);
        garbage[0] = 0x7f;
        garbage[1] = 'E';
        garbage[2] = 'L';
        garbage[3] = 'F';
        expectFailure(garbage, 90);
        garbage[4] = 2;
        garbage[5] = 1;
        garbage[18] = (byte) 190;
        garbage[19] = 0;
        expectFailure(garbage, 90);

        byte[] cubin = resource("kernels.sm_90.cubin");
        byte[] x86 = cubin.clone();
        x86[18] = 62;
        assertTrue(expectFailure(x86, 90).getMessage().contains("not CUDA"));
        byte[] badSections = cubin.clone();
        ByteBuffer.wrap(badSections).order(ByteOrder.LITTLE_ENDIAN).putLong(40, cubin.length - 10);
        expectFailure(badSections, 90);
    }

    /** Random corruption must end in a result or an ImageFormatException, nothing else. */
    @Test
    public void randomCorruptionNeverEscapes() throws Exception {
        Random random = new Random(7);
        String[] names = {
            "kernels.fatbin", "kernels.compressed.fatbin", "kernels.lz4.fatbin", "kernels.sm_90.cubin", "kernels.ptx"};
        for (String name : names) {
            byte[] original = resource(name);
            for (int round = 0; round < 400; round++) {
                byte[] b = original.clone();
                int flips = 1 + random.nextInt(8);
                for (int i = 0; i < flips; i++) {
                    // Bias toward headers, where the offsets and sizes live.
                    int at = random.nextInt(random.nextBoolean() ? Math.min(b.length, 160) : b.length);
                    b[at] = (byte) random.nextInt(256);
                }
                try {
                    ModuleImage m = ImageParser.parse(b, 90);
                    assertNotNull(m.kernels);
                } catch (ImageFormatException expected) {
                    assertNotNull(expected.getMessage());
                } catch (RuntimeException | OutOfMemoryError e) {
                    throw new AssertionError(name + " round " + round + " escaped with " + e, e);
                }
            }
        }
    }

    // ---- helpers ----

    private static ImageFormatException expectFailure(byte[] image, int arch) {
        try {
            ImageParser.parse(image, arch);
        } catch (ImageFormatException expected) {
            assertNotNull(expected.getMessage());
            return expected;
        }
        throw new AssertionError("parsed although it should not have");
    }

    /** A 64-byte entry header plus the payload, padded to 8 as fatbinary does. */
    static byte[] entry(int kind, int arch, long flags, byte[] payload, long compressedSize, long uncompressedSize) {
        int padded = (payload.length + 7) & ~7;
        ByteBuffer b = ByteBuffer.allocate(64 + padded).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(0, (short) kind);
        b.putShort(2, (short) 0x0101);
        b.putInt(4, 64);
        b.putLong(8, padded);
        b.putInt(16, (int) compressedSize);
        b.putInt(28, arch);
        b.putLong(40, flags);
        b.putLong(56, uncompressedSize);
        b.position(64);
        b.put(payload);
        return b.array();
    }

    static byte[] container(byte[] entries) {
        ByteBuffer b = ByteBuffer.allocate(16 + entries.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(ImageParser.FATBIN_MAGIC).putShort((short) 1).putShort((short) 16).putLong(entries.length);
        b.put(entries);
        return b.array();
    }

    /** The layouts kernels.cu defines, whatever format they came from. */
    static void assertLayouts(ModuleImage m) {
        assertEquals(3, m.kernels.size());
        KernelInfo vadd = m.kernel("vadd");
        assertArrayEquals(new int[] {0, 8, 16, 24}, vadd.paramOffsets);
        assertArrayEquals(new int[] {8, 8, 8, 4}, vadd.paramSizes);
        assertEquals(28, vadd.paramBufferSize);
        assertEquals(4, vadd.paramCount());

        // struct Params {float x, y, z; int count; double *out;} (24 bytes, 8-aligned), float
        KernelInfo scale = m.kernel(SCALE);
        assertArrayEquals(new int[] {0, 24}, scale.paramOffsets);
        assertArrayEquals(new int[] {24, 4}, scale.paramSizes);
        assertEquals(28, scale.paramBufferSize);

        // char, double, char *, short: the buffer ends at 26, not rounded up
        KernelInfo mixed = m.kernel("mixed");
        assertArrayEquals(new int[] {0, 8, 16, 24}, mixed.paramOffsets);
        assertArrayEquals(new int[] {1, 8, 8, 2}, mixed.paramSizes);
        assertEquals(26, mixed.paramBufferSize);
    }

    static void assertGlobals(ModuleImage m) {
        assertEquals(3, m.globals.size());
        GlobalInfo table = m.global("table");
        assertEquals(37 * 4, table.size);
        assertEquals(0, table.offset);
        assertNull(table.init);

        GlobalInfo counter = m.global("counter");
        assertEquals(4, counter.size);
        assertEquals(256, counter.offset);
        assertArrayEquals(new byte[] {5, 0, 0, 0}, counter.init);

        GlobalInfo coeffs = m.global("coeffs");
        assertEquals(16, coeffs.size);
        assertEquals(512, coeffs.offset);
        ByteBuffer expected = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        expected.putFloat(1).putFloat(2).putFloat(3).putFloat(4);
        assertArrayEquals(expected.array(), coeffs.init);

        assertEquals(768, m.globalsSize);
        for (GlobalInfo g : m.globals) {
            assertEquals(g.name, 0, g.offset % ImageParser.GLOBAL_ALIGNMENT);
            assertNotEquals(g.name, 0, g.size);
        }
    }
}
