package io.vgpu.core.image;

/** Bounds-checked little-endian reads: every offset in an image comes from untrusted bytes. */
final class Bytes {
    private Bytes() {
    }

    /** Throws unless {@code [off, off + len)} lies inside {@code b}; safe against overflow. */
    static void check(byte[] b, long off, long len, String what) throws ImageFormatException {
        if (off < 0 || len < 0 || off > b.length || len > b.length - off) {
            throw new ImageFormatException(what + " (offset " + off + ", length " + len
                    + ") lies outside the " + b.length + "-byte image");
        }
    }

    static int u8(byte[] b, long off, String what) throws ImageFormatException {
        check(b, off, 1, what);
        return b[(int) off] & 0xff;
    }

    static int u16(byte[] b, long off, String what) throws ImageFormatException {
        check(b, off, 2, what);
        int i = (int) off;
        return (b[i] & 0xff) | (b[i + 1] & 0xff) << 8;
    }

    static long u32(byte[] b, long off, String what) throws ImageFormatException {
        check(b, off, 4, what);
        return u32At(b, (int) off);
    }

    /** A u64 that has to fit a signed long; larger values are never meaningful sizes or offsets. */
    static long u64(byte[] b, long off, String what) throws ImageFormatException {
        check(b, off, 8, what);
        long v = u32At(b, (int) off) | u32At(b, (int) off + 4) << 32;
        if (v < 0) {
            throw new ImageFormatException(what + " is absurd: " + Long.toUnsignedString(v));
        }
        return v;
    }

    /** Unchecked read for callers that already checked the range. */
    static long u32At(byte[] b, int i) {
        return (b[i] & 0xffL) | (b[i + 1] & 0xffL) << 8 | (b[i + 2] & 0xffL) << 16 | (b[i + 3] & 0xffL) << 24;
    }

    static byte[] slice(byte[] b, long off, long len, String what) throws ImageFormatException {
        check(b, off, len, what);
        byte[] out = new byte[(int) len];
        System.arraycopy(b, (int) off, out, 0, (int) len);
        return out;
    }
}
