package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;
import io.vgpu.core.image.FatbinPtx;
import io.vgpu.core.image.ImageFormatException;
import io.vgpu.core.image.ImageParser;
import io.vgpu.ptx.PtxException;
import io.vgpu.ptx.PtxProgram;

import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.Test;

/**
 * How much of the PTX that real CUDA libraries ship the PTX engine (bundles/ptx) parses and
 * executes: llama.cpp's prebuilt CUDA backend and cuBLAS/cuBLASLt 12.6. The PTX the mock's H100
 * (sm_90) would run, the newest entry at or below compute_90 of each fatbin, must parse and name the
 * same kernels as the core's metadata parser; its instruction forms are counted, and the unsupported
 * ones, with counts, go to target/ptx-coverage/&lt;library&gt;.txt. {@code -Dvgpu.ptxcov.all=true}
 * checks every PTX entry (ggml-cuda's compute_50..75 entries add 0.8 GB of text: about 4 minutes here).
 * Entries are decompressed and parsed one fatbin at a time on {@code vgpu.ptxcov.threads} threads
 * (default: up to 2), so no library's text is held at once.
 */
public class PtxCoverageIT {
    /** The mock's default device, an H100. */
    static final int DEVICE_ARCH = 90;
    static final Path CUDA12 = Path.of(System.getProperty("vgpu.cuda12", "target/cuda12")).toAbsolutePath();
    static final Path OUT = Path.of("target", "ptx-coverage").toAbsolutePath();
    static final int THREADS = Integer.getInteger("vgpu.ptxcov.threads",
            Math.min(2, Runtime.getRuntime().availableProcessors()));
    static final boolean ALL = Boolean.getBoolean("vgpu.ptxcov.all");
    static final int TOP = 12;
    /** Instruction families worth a line of their own in the summary (opcode prefixes). */
    static final List<String> FAMILIES = List.of("ldmatrix", "stmatrix", "mma", "wmma", "wgmma", "cp.async",
            "dp4a", "dp2a", "mbarrier", "shfl", "atom", "red", "tex", "tld4", "suld", "sust");

    @Test
    public void llamaCppCudaBackend() throws Exception {
        Path cache = OllamaIT.npmCache();
        assumeTrue("SKIP PTX coverage of libggml-cuda.so: no @node-llama-cpp packages (see above)", cache != null);
        Path so = OllamaIT.extract(cache.resolve(OllamaIT.GGML_EXT_TGZ), OllamaIT.GGML_CUDA_SO,
                Path.of("target", "ggml", "ext").toAbsolutePath());
        survey(so);
    }

    @Test
    public void cublas() throws Exception {
        survey(cuda12("libcublas.so.12"));
    }

    @Test
    public void cublasLt() throws Exception {
        survey(cuda12("libcublasLt.so.12"));
    }

    private static Path cuda12(String name) {
        Path lib = CUDA12.resolve(name);
        if (!Files.isRegularFile(lib)) {
            String line = "SKIP PTX coverage of " + name + ": not in " + CUDA12
                    + " (org.bytedeco:cuda:12.6-9.5-1.5.11:jar:linux-x86_64-redist, unpacked by the itests build)";
            System.out.println(line);
            assumeTrue(line, false);
        }
        return lib;
    }

    // ------------------------------------------------------------------ the survey

    /** What one library holds; filled by the worker threads under its lock. */
    static final class Survey {
        final String lib;
        int fatbins;
        int wrappers;
        int ptxEntries;
        int checked;
        int parsed;
        long chars;
        final Map<Integer, Integer> entriesByArch = new TreeMap<>();
        /** By file offset and entry index (offset * 65536 + index), so the report does not depend on thread timing. */
        final TreeMap<Long, String> failures = new TreeMap<>();
        int runEntries;
        final Map<String, Long> runForms = new HashMap<>();
        final Map<String, Long> allForms = new HashMap<>();

        Survey(String lib) {
            this.lib = lib;
        }

        synchronized void fail(long key, String what) {
            failures.put(key, what);
        }

        synchronized void add(int arch, long entryChars, boolean check, Map<String, Integer> forms, boolean run) {
            ptxEntries++;
            chars += entryChars;
            entriesByArch.merge(arch, 1, Integer::sum);
            checked += check ? 1 : 0;
            if (forms != null) {
                parsed++;
                forms.forEach((f, n) -> allForms.merge(f, (long) n, Long::sum));
                if (run) {
                    runEntries++;
                    forms.forEach((f, n) -> runForms.merge(f, (long) n, Long::sum));
                }
            }
        }
    }

    static void survey(Path lib) throws Exception {
        long start = System.nanoTime();
        String name = lib.getFileName().toString();
        Survey s = new Survey(name);
        try (FileChannel ch = FileChannel.open(lib)) {
            MappedByteBuffer elf = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
            List<FatbinPtx.Span> spans = FatbinPtx.fatbinSpans(elf);
            s.fatbins = spans.size();
            s.wrappers = FatbinPtx.fatbinWrappers(elf);
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (FatbinPtx.Span span : spans) {
                    done.add(pool.submit(() -> fatbin(s, elf, span)));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            } finally {
                pool.shutdownNow();
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        report(s, seconds);

        String failures = s.failures.size() + " PTX entries of " + name + " do not parse or disagree with the "
                + "core's parser; the first:\n  " + String.join("\n  ", s.failures.values().stream().limit(10).toList());
        assertTrue(name + " has no fatbins", s.fatbins > 0);
        assertEquals(name + ": fatbins found versus fatbins the library registers (.nvFatBinSegment)",
                s.wrappers, s.fatbins);
        assertTrue(name + " has no PTX", s.ptxEntries > 0);
        assertTrue(failures, s.failures.isEmpty());
        assertEquals(failures, s.checked, s.parsed);
        assertTrue(name + ": no PTX for sm_" + DEVICE_ARCH, s.runEntries > 0);
        if (ALL) {
            assertEquals(failures, s.ptxEntries, s.parsed);
        }
        assertTrue(name + ": no instructions in its sm_" + DEVICE_ARCH + " PTX", !s.runForms.isEmpty());
    }

    /** One fatbin: the PTX entry sm_90 runs (with vgpu.ptxcov.all, every one) parsed and its forms counted. */
    private static void fatbin(Survey s, MappedByteBuffer elf, FatbinPtx.Span span) {
        byte[] container = FatbinPtx.container(elf, span);
        List<FatbinPtx.Header> headers;
        try {
            headers = FatbinPtx.ptxHeaders(container);
        } catch (ImageFormatException e) {
            s.fail(span.offset() * 65536, "fatbin at file offset " + span.offset() + ": " + e.getMessage());
            return;
        }
        FatbinPtx.Header run = FatbinPtx.best(headers, DEVICE_ARCH);
        for (FatbinPtx.Header h : headers) {
            if (!ALL && h != run) {
                s.add(h.arch(), 0, false, null, false);
                continue;
            }
            String where = "fatbin at file offset " + span.offset() + ", entry " + h.index() + " (" + h.describe() + ")";
            FatbinPtx.Entry e;
            try {
                e = FatbinPtx.entry(container, h, ImageParser.DEFAULT_MAX_DECOMPRESSED);
            } catch (ImageFormatException x) {
                s.fail(span.offset() * 65536 + h.index(), where + ": " + x.getMessage());
                s.add(h.arch(), 0, true, null, false);
                continue;
            }
            where = "fatbin at file offset " + span.offset() + ", " + e;
            Map<String, Integer> forms = null;
            try {
                PtxProgram p = PtxProgram.parse(e.text());
                String disagreement = sameKernels(p, e);
                if (disagreement != null) {
                    s.fail(span.offset() * 65536 + e.index(), where + ": " + disagreement);
                } else {
                    forms = p.forms();
                }
            } catch (PtxException | RuntimeException x) {
                s.fail(span.offset() * 65536 + e.index(), where + ": " + x);
            }
            s.add(e.arch(), e.text().length(), true, forms, h == run);
        }
    }

    /** Null if the engine's parser and the core's metadata parser find the same .entry kernels. */
    private static String sameKernels(PtxProgram p, FatbinPtx.Entry e) {
        ModuleImage m;
        try {
            m = ImageParser.parse(e.text().getBytes(StandardCharsets.ISO_8859_1), DEVICE_ARCH);
        } catch (ImageFormatException x) {
            return "the core's parser refuses it: " + x.getMessage();
        }
        TreeSet<String> core = new TreeSet<>();
        for (KernelInfo k : m.kernels) {
            core.add(k.name);
        }
        TreeSet<String> engine = new TreeSet<>(p.entries());
        if (core.equals(engine)) {
            return null;
        }
        TreeSet<String> onlyCore = new TreeSet<>(core);
        onlyCore.removeAll(engine);
        TreeSet<String> onlyEngine = new TreeSet<>(engine);
        onlyEngine.removeAll(core);
        return "kernels differ: only the core's parser finds " + first(onlyCore) + ", only the engine's "
                + first(onlyEngine);
    }

    private static String first(TreeSet<String> names) {
        return names.size() <= 3 ? names.toString() : names.stream().limit(3).toList() + " and " + (names.size() - 3) + " more";
    }

    // ------------------------------------------------------------------ the report

    private static void report(Survey s, double seconds) throws IOException {
        List<Map.Entry<String, Long>> byCount = new ArrayList<>(s.runForms.entrySet());
        byCount.sort(Map.Entry.<String, Long>comparingByValue(Comparator.reverseOrder()).thenComparing(Map.Entry.comparingByKey()));
        long insns = 0;
        long supportedInsns = 0;
        int supported = 0;
        for (Map.Entry<String, Long> f : byCount) {
            insns += f.getValue();
            if (PtxProgram.supports(f.getKey())) {
                supported++;
                supportedInsns += f.getValue();
            }
        }
        StringBuilder arches = new StringBuilder();
        s.entriesByArch.forEach((a, n) -> arches.append(arches.length() == 0 ? "" : " ").append("compute_").append(a).append('=').append(n));
        StringBuilder families = new StringBuilder();
        for (String fam : FAMILIES) {
            long n = 0;
            for (Map.Entry<String, Long> f : byCount) {
                if (f.getKey().equals(fam) || f.getKey().startsWith(fam + ".")) {
                    n += f.getValue();
                }
            }
            families.append(families.length() == 0 ? "" : ", ").append(fam).append(' ').append(n);
        }
        StringBuilder top = new StringBuilder();
        for (Map.Entry<String, Long> f : byCount.subList(0, Math.min(TOP, byCount.size()))) {
            top.append(top.length() == 0 ? "" : ", ").append(f.getKey()).append(' ').append(f.getValue());
        }
        Path file = OUT.resolve(s.lib + ".txt");
        String summary = String.format(Locale.ROOT, "PTX coverage %s: %d fatbins, %d PTX entries (%s), "
                        + "%d checked (%s; %.1f MB), %d parse; "
                        + "sm_%d runs %d entries: %d forms, %d supported (%.1f%%), %d instructions, %d supported (%.1f%%); "
                        + "%d forms in the entries checked; %.1f s on %d threads%n  top: %s%n  families: %s%n  unsupported forms: %s%n",
                s.lib, s.fatbins, s.ptxEntries, arches, s.checked,
                ALL ? "all" : "what sm_" + DEVICE_ARCH + " runs; -Dvgpu.ptxcov.all=true for all", s.chars / 1e6, s.parsed,
                DEVICE_ARCH, s.runEntries,
                byCount.size(), supported, percent(supported, byCount.size()), insns, supportedInsns,
                percent(supportedInsns, insns), s.allForms.size(), seconds, THREADS, top, families, file);
        System.out.print(summary);

        StringBuilder out = new StringBuilder();
        summary.lines().forEach(l -> out.append("# ").append(l.strip()).append('\n'));
        for (String failure : s.failures.values()) {
            out.append("# FAILED ").append(failure).append('\n');
        }
        out.append("# instructions, form: the forms PtxProgram.supports() refuses in the PTX sm_")
                .append(DEVICE_ARCH).append(" runs, most frequent first\n");
        for (Map.Entry<String, Long> f : byCount) {
            if (!PtxProgram.supports(f.getKey())) {
                out.append(f.getValue()).append(' ').append(f.getKey()).append('\n');
            }
        }
        List<Map.Entry<String, Long>> older = new ArrayList<>();
        for (Map.Entry<String, Long> f : s.allForms.entrySet()) {
            if (!s.runForms.containsKey(f.getKey()) && !PtxProgram.supports(f.getKey())) {
                older.add(f);
            }
        }
        if (!older.isEmpty()) {
            older.sort(Map.Entry.<String, Long>comparingByValue(Comparator.reverseOrder()).thenComparing(Map.Entry.comparingByKey()));
            out.append("# and only in the PTX for older devices (not run on sm_").append(DEVICE_ARCH).append(")\n");
            for (Map.Entry<String, Long> f : older) {
                out.append(f.getValue()).append(' ').append(f.getKey()).append('\n');
            }
        }
        Files.createDirectories(OUT);
        Files.writeString(file, out);
    }

    private static double percent(long part, long whole) {
        return whole == 0 ? 0 : 100.0 * part / whole;
    }
}
