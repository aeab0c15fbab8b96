package io.vgpu.core.internal;

import io.vgpu.api.dto.ImageCacheStats;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.core.image.ImageFormatException;
import io.vgpu.core.image.ImageParser;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Parsed module images by content hash, shared by all sessions: cuBLAS registers the same
 * fatbins in every process (and in each of its own static runtimes), so each image is uploaded
 * and parsed once per service, not once per use. Least recently used images go first once the
 * bytes held exceed the limit. Parsed images are immutable once cached.
 */
final class ImageCache {
    private final long maxBytes;
    private long bytes;
    private final LinkedHashMap<ByteBuffer, ModuleImage> images = new LinkedHashMap<>(64, 0.75f, true);
    /** Images that failed to parse, so that a client probing many of them is told at once. */
    private final LinkedHashMap<ByteBuffer, ImageFormatException> failures = new LinkedHashMap<>(64, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<ByteBuffer, ImageFormatException> eldest) {
            return size() > 10_000;
        }
    };

    /* How clients reached the cache, for `vgpu status`: the one place where lazy, once-per-service uploads show. */
    private final LongAdder uploads = new LongAdder();
    private final LongAdder uploadBytes = new LongAdder();
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();

    ImageCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** An image a client sent in full (MODULE_LOAD): counted, then parsed unless already cached. */
    ModuleImage upload(byte[] data, int arch) throws ImageFormatException {
        uploads.increment();
        uploadBytes.add(data.length);
        return parse(data, arch);
    }

    /**
     * The image a client named by content hash (MODULE_LOAD_CACHED), or null when it has to send
     * the bytes. An image rejected before is rejected again without an upload.
     */
    ModuleImage byHash(byte[] sha256, int arch) throws ImageFormatException {
        byte[] key = key(sha256, arch);
        ModuleImage cached = get(key);
        ImageFormatException failed = cached == null ? failure(key) : null;
        if (cached == null && failed == null) {
            misses.increment();
            return null;
        }
        hits.increment();
        if (failed != null) {
            throw failed;
        }
        return cached;
    }

    synchronized ImageCacheStats stats() {
        ImageCacheStats s = new ImageCacheStats();
        s.images = images.size();
        s.bytes = bytes;
        s.uploads = uploads.sum();
        s.uploadBytes = uploadBytes.sum();
        s.hits = hits.sum();
        s.misses = misses.sum();
        return s;
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    synchronized ModuleImage get(byte[] key) {
        return images.get(ByteBuffer.wrap(key));
    }

    /** Why the image under this key was rejected before, or null. */
    synchronized ImageFormatException failure(byte[] key) {
        return failures.get(ByteBuffer.wrap(key));
    }

    /** The parsed image for these bytes, parsed now unless cached. Keys include the target arch. */
    ModuleImage parse(byte[] data, int arch) throws ImageFormatException {
        byte[] key = key(sha256(data), arch);
        ModuleImage cached = get(key);
        if (cached != null) {
            return cached;
        }
        ImageFormatException failed = failure(key);
        if (failed != null) {
            throw failed;
        }
        ModuleImage parsed;
        try {
            parsed = ImageParser.parse(data, arch);
        } catch (ImageFormatException e) {
            synchronized (this) {
                failures.put(ByteBuffer.wrap(key), e);
            }
            throw e;
        }
        synchronized (this) {
            images.put(ByteBuffer.wrap(key), parsed);
            bytes += size(parsed);
            var it = images.entrySet().iterator();
            while (bytes > maxBytes && it.hasNext()) {
                Map.Entry<ByteBuffer, ModuleImage> oldest = it.next();
                if (oldest.getValue() != parsed) {
                    bytes -= size(oldest.getValue());
                    it.remove();
                }
            }
        }
        return parsed;
    }

    private static long size(ModuleImage m) {
        return m.data.length + (m.ptxSource != null && m.ptxSource != m.data ? m.ptxSource.length : 0);
    }

    /** The code chosen from a fatbin depends on the device, so the cache key does too. */
    static byte[] key(byte[] sha256, int arch) {
        byte[] k = java.util.Arrays.copyOf(sha256, sha256.length + 4);
        ByteBuffer.wrap(k, sha256.length, 4).putInt(arch);
        return k;
    }

    synchronized long bytes() {
        return bytes;
    }
}
