package io.vgpu.core.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.fail;

import io.vgpu.api.dto.ImageCacheStats;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.core.image.ImageFormatException;
import java.nio.charset.StandardCharsets;
import org.junit.Test;

public class ImageCacheTest {
    private static final byte[] PTX = (".version 8.0\n.target sm_90\n.address_size 64\n"
            + ".visible .entry k(.param .u64 p)\n{\n  ret;\n}\n\0").getBytes(StandardCharsets.US_ASCII);

    private static String counts(ImageCacheStats s) {
        return s.images + " " + s.bytes + " " + s.uploads + " " + s.uploadBytes + " " + s.hits + " " + s.misses;
    }

    @Test
    public void countsUploadsAndLoadsByHash() throws Exception {
        ImageCache cache = new ImageCache(1 << 20);
        byte[] hash = ImageCache.sha256(PTX);
        assertNull(cache.byHash(hash, 90));
        ModuleImage parsed = cache.upload(PTX, 90);
        assertSame(parsed, cache.byHash(hash, 90));
        assertSame(parsed, cache.byHash(hash, 90));
        // The same bytes uploaded again are counted, and parsed no second time.
        assertSame(parsed, cache.upload(PTX, 90));
        // The code chosen depends on the device, so another architecture is another entry.
        assertNull(cache.byHash(hash, 80));
        int n = PTX.length;
        assertEquals("1 " + n + " 2 " + (2 * n) + " 2 2", counts(cache.stats()));
    }

    @Test
    public void aRejectedImageIsRejectedByHashWithoutAnUpload() {
        ImageCache cache = new ImageCache(1 << 20);
        byte[] garbage = "\u007fELF but not an image".getBytes(StandardCharsets.ISO_8859_1);
        try {
            cache.upload(garbage, 90);
            fail("garbage parsed");
        } catch (ImageFormatException expected) {
            // counted below
        }
        try {
            cache.byHash(ImageCache.sha256(garbage), 90);
            fail("the rejection was not remembered");
        } catch (ImageFormatException expected) {
            // a hit: the client learns the answer without sending the bytes again
        }
        assertEquals("0 0 1 " + garbage.length + " 1 0", counts(cache.stats()));
    }
}
