package io.vgpu.api.dto;

/**
 * The service-wide module-image cache: what it holds and how clients reached it. Libraries such as
 * cuBLAS name the same images in every process, so uploads should stay at one per distinct image
 * while loads by hash keep growing.
 */
public class ImageCacheStats {
    /** Parsed images held, and the bytes of their uploads. */
    public long images;
    public long bytes;
    /** Images received in full (MODULE_LOAD), and their bytes. */
    public long uploads;
    public long uploadBytes;
    /** Loads by content hash (MODULE_LOAD_CACHED) answered from the cache, and those that were not. */
    public long hits;
    public long misses;

    @Override
    public String toString() {
        return "image cache: " + images + " images (" + bytes + " bytes), " + uploads + " uploads (" + uploadBytes
                + " bytes), loads by hash: " + hits + " hit, " + misses + " missed";
    }
}
