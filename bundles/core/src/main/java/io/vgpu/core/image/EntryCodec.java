package io.vgpu.core.image;

import io.airlift.compress.lz4.Lz4Decompressor;
import io.airlift.compress.zstd.ZstdDecompressor;

import java.util.Arrays;

/** Decompresses fatbin entry payloads with aircompressor, after checking sizes and framing. */
final class EntryCodec {
    /** LZ4 cannot expand a block by more than this; a larger claim is a lie. */
    private static final long LZ4_MAX_RATIO = 256;
    private static final int ZSTD_MAGIC = 0xFD2FB528;

    private EntryCodec() {
    }

    static byte[] lz4(byte[] in, int off, int len, long expected, long maxOut) throws ImageFormatException {
        checkExpected(expected, maxOut, "LZ4");
        if (expected > (long) len * LZ4_MAX_RATIO + 64) {
            throw new ImageFormatException("LZ4 entry claims " + expected + " bytes from " + len
                    + " compressed bytes, more than LZ4 can encode");
        }
        byte[] out = new byte[(int) expected];
        int n;
        try {
            n = new Lz4Decompressor().decompress(in, off, len, out, 0, out.length);
        } catch (RuntimeException e) {
            // aircompressor signals corrupt input with unchecked exceptions.
            throw new ImageFormatException("corrupt LZ4 entry: " + e.getMessage(), e);
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }

    static byte[] zstd(byte[] in, int off, int len, long expected, long maxOut) throws ImageFormatException {
        checkExpected(expected, maxOut, "zstd");
        // fatbinary pads payloads; aircompressor would read the padding as a second frame.
        int frameLen = zstdFrameLength(in, off, len);
        byte[] out = new byte[(int) expected];
        int n;
        try {
            n = new ZstdDecompressor().decompress(in, off, frameLen, out, 0, out.length);
        } catch (RuntimeException e) {
            throw new ImageFormatException("corrupt zstd entry: " + e.getMessage(), e);
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }

    private static void checkExpected(long expected, long maxOut, String codec) throws ImageFormatException {
        if (expected <= 0) {
            throw new ImageFormatException(codec + " entry has no uncompressed size");
        }
        if (expected > maxOut || expected > Integer.MAX_VALUE - 16) {
            throw new ImageFormatException(codec + " entry would decompress to " + expected
                    + " bytes, over the limit of " + maxOut);
        }
    }

    /**
     * Length of the zstd frame at {@code off}, found by walking the frame header and block headers
     * (RFC 8878 §3.1.1); this is framing only, the codec stays aircompressor's.
     */
    static int zstdFrameLength(byte[] b, int off, int len) throws ImageFormatException {
        long end = (long) off + len;
        if (len < 6 || (int) Bytes.u32(b, off, "zstd frame magic") != ZSTD_MAGIC) {
            throw new ImageFormatException("zstd entry does not start with a zstd frame");
        }
        int descriptor = Bytes.u8(b, off + 4L, "zstd frame header");
        int fcsFlag = descriptor >>> 6;
        boolean singleSegment = (descriptor & 0x20) != 0;
        boolean checksum = (descriptor & 0x04) != 0;
        int dictIdSize = new int[] {0, 1, 2, 4}[descriptor & 3];
        int fcsSize = fcsFlag == 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag;
        long pos = off + 5L + (singleSegment ? 0 : 1) + dictIdSize + fcsSize;
        while (true) {
            if (pos + 3 > end) {
                throw new ImageFormatException("zstd frame is truncated");
            }
            int header = Bytes.u8(b, pos, "zstd block") | Bytes.u8(b, pos + 1, "zstd block") << 8
                    | Bytes.u8(b, pos + 2, "zstd block") << 16;
            pos += 3;
            int type = (header >>> 1) & 3;
            int size = header >>> 3;
            if (type == 3) {
                throw new ImageFormatException("zstd frame has a reserved block type");
            }
            pos += type == 1 ? 1 : size;
            if ((header & 1) != 0) {
                break;
            }
        }
        if (checksum) {
            pos += 4;
        }
        if (pos > end) {
            throw new ImageFormatException("zstd frame runs past the compressed payload");
        }
        return (int) (pos - off);
    }
}
