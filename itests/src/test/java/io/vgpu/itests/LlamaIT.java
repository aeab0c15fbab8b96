package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.ClassRule;
import org.junit.Test;

/**
 * llama.cpp inference end to end: a tiny llama model that the test writes itself
 * ({@link TinyLlamaGguf}: F32, 2 layers, n_embd 64, 4 heads, n_ff 128, 328-token SentencePiece
 * vocabulary) generates {@value #N_PREDICT} greedy tokens from a fixed prompt, once on llama.cpp's
 * CPU backend and once on its CUDA backend through vgpu, and the token ids are compared.
 *
 * <p>The runner is {@code src/test/c/llama_run.c}, a small C program against the prebuilt
 * libllama of {@code @node-llama-cpp/linux-x64-cuda@3.22.1} (llama.cpp release v0.5.0), compiled
 * here against llama.h and ggml's headers of that same release (taken from the llama.cpp git bundle
 * that the {@code node-llama-cpp@3.22.1} package ships). Both runs use the same libllama and the
 * same CPU backend (the best {@code libggml-cpu-*.so} variant for this machine); the CUDA run adds
 * the CUDA 12 backend of {@code @node-llama-cpp/linux-x64-cuda-ext} (the one OllamaIT loads; the
 * CUDA package's own libggml-cuda.so needs cuBLAS 13) with NVIDIA's cudart/cuBLAS 12.6 and
 * vgpu's libcuda.so.1, and offloads every layer, the output layer and the KV cache.
 *
 * <p>The graph is chosen so that every kernel is ggml's own and plain F32: flash attention off,
 * an F32 KV cache, and the prompt in ubatches of {@value #N_UBATCH} tokens (n_batch 32: one
 * llama_decode call of 9 tokens, split 3 + 3 + 3). On an H100 (cc 9.0) ggml multiplies F32 matrices with its
 * mul_mat_vec_f kernels only for up to 3 columns (ggml_cuda_should_use_mmvf); from 4 tokens on,
 * the weight products go to mul_mat_f (tensor-core TF32 mma) and the attention products KQ and
 * KQV (head size 16, too narrow for mul_mat_f) to cublasGemmStridedBatchedEx, whose kernels
 * (sm80_xmma_gemm_*, cutlass tensorop) are SASS only and cannot run on the mock. With ubatches of
 * 3 the run makes no cuBLAS call at all (counted by the runner, which interposes every cuBLAS
 * function libggml-cuda.so imports), and the test checks that.
 *
 * <p>The mock executes the kernels' PTX. The test checks that the CUDA run gets through the whole
 * generation without a CUDA error, records which kernels the prompt and each decoded token launch
 * (target/llama/launches.txt), and compares: the CUDA token ids must equal the CPU ones, and each chosen token's logit must agree within {@value #LOGIT_TOLERANCE}
 * (absolute); the CPU run checks that at every step its best logit leads the second best by at
 * least {@value #MIN_MARGIN}, so float rounding differences between the backends cannot flip a
 * greedy pick and equal ids are the right expectation.
 */
public class LlamaIT {
    @ClassRule
    public static final ServiceFixture SERVICE = new ServiceFixture();

    static final String VERSION = OllamaIT.GGML_VERSION;
    static final String NODE_LLAMA_TGZ = "node-llama-cpp-" + VERSION + ".tgz";
    static final String BINS = "package/bins/linux-x64-cuda/";
    /** What the runner links and loads from the CUDA package: libllama, libggml, ggml-base, CPU backends. */
    static final String LIBLLAMA = "libllama.cuda.v0.5.0.so", LIBGGML = "libggml.cuda.v0.5.0.so";

    static final String PROMPT = "the big red dog ran to the cat";
    /** {@code <s> ▁the ▁big ▁red ▁dog ▁ran ▁to ▁the ▁cat} in {@link TinyLlamaGguf}'s vocabulary: 3 ubatches of 3. */
    static final List<Integer> PROMPT_TOKENS = List.of(1, 290, 321, 323, 304, 307, 308, 290, 293);
    static final int N_PREDICT = 20, N_UBATCH = 3, N_BATCH = 32;
    /** The CPU backend's greedy continuation of the prompt with {@link TinyLlamaGguf#SEED}'s weights. */
    static final List<Integer> CPU_TOKENS = List.of(66, 243, 161, 208, 323, 270, 69, 116, 136, 300, 41, 48, 12, 88,
            234, 149, 108, 79, 176, 142);
    static final double MIN_MARGIN = 0.1, LOGIT_TOLERANCE = 0.01;

    static final Path WORK = Path.of("target", "llama").toAbsolutePath();
    static final Path CUDA12 = Path.of(System.getProperty("vgpu.cuda12", "target/cuda12")).toAbsolutePath();
    static final Path SOURCES = Path.of("src", "test", "c").toAbsolutePath();

    // ------------------------------------------------------------------ set-up, once per class

    /** What the runs need, or why they cannot run. */
    record Setup(Path runner, Path bins, Path model, String skip) {
    }

    private static Setup setup;

    static synchronized Setup setup() throws Exception {
        if (setup == null) {
            setup = prepare();
        }
        assumeTrue(setup.skip, setup.skip == null);
        return setup;
    }

    private static Setup prepare() throws Exception {
        Path cache = OllamaIT.npmCache();
        if (cache == null) {
            return new Setup(null, null, null, "SKIP llama.cpp inference test: no @node-llama-cpp packages (see above)");
        }
        Path nodeLlama = npmPack(cache, "node-llama-cpp@" + VERSION, NODE_LLAMA_TGZ);
        if (nodeLlama == null) {
            return skip("npm pack node-llama-cpp@" + VERSION + " failed, see " + cache.resolve("npm-pack-node-llama-cpp.log"));
        }
        if (!available("git", "--version") || !available("gcc", "--version")) {
            return skip("git and gcc are needed to build the llama.cpp runner");
        }
        Files.createDirectories(WORK);

        // libllama, libggml, ggml-base and the CPU variants, in one pass over the 140 MB tarball.
        Path cudaTgz = cache.resolve(OllamaIT.GGML_BASE_TGZ);
        Path binsRoot = WORK.resolve("bins");
        Path bins = binsRoot.resolve(BINS);
        if (!fresh(binsRoot.resolve(".extracted"), cudaTgz)) {
            exec(600, "tar", "-xzf", cudaTgz.toString(), "-C", mkdirs(binsRoot).toString(), "--wildcards",
                    BINS + "libggml-cpu-*.so", BINS + "libggml-base.so", BINS + LIBGGML, BINS + LIBLLAMA);
            Files.writeString(binsRoot.resolve(".extracted"), cudaTgz + "\n");
        }

        // llama.h and ggml's headers of the release the binaries were built from.
        Path include = WORK.resolve("include");
        if (!fresh(include.resolve(".extracted"), nodeLlama)) {
            Path src = mkdirs(WORK.resolve("src"));
            exec(300, "tar", "-xzf", nodeLlama.toString(), "-C", src.toString(), "package/llama/gitRelease.bundle",
                    "package/llama/llama.cpp.info.json");
            Path git = WORK.resolve("llama.cpp.git");
            deleteTree(git);
            exec(60, "git", "init", "-q", "--bare", git.toString());
            exec(300, "git", "-C", git.toString(), "fetch", "-q", src.resolve("package/llama/gitRelease.bundle").toString(),
                    "HEAD");
            deleteTree(include);
            mkdirs(include);
            exec(60, "sh", "-c", "git -C \"$1\" archive FETCH_HEAD include/llama.h ggml/include | tar -x -C \"$2\"", "sh",
                    git.toString(), include.toString());
            Files.writeString(include.resolve(".extracted"), Files.readString(src.resolve("package/llama/llama.cpp.info.json")));
        }

        Path runner = WORK.resolve("llama_run");
        exec(120, "gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-I" + include.resolve("include"),
                "-I" + include.resolve("ggml/include"), "-rdynamic", "-o", runner.toString(),
                SOURCES.resolve("llama_run.c").toString(), SOURCES.resolve("cublas_count.c").toString(), "-L" + bins,
                "-l:" + LIBLLAMA, "-l:" + LIBGGML, "-l:libggml-base.so", "-Wl,-rpath-link," + bins, "-ldl", "-lm");

        Path model = WORK.resolve("tiny-llama.gguf");
        TinyLlamaGguf.write(model);
        return new Setup(runner, bins, model, null);
    }

    private static Setup skip(String why) {
        System.out.println("SKIP llama.cpp inference test: " + why);
        return new Setup(null, null, null, "SKIP llama.cpp inference test: " + why);
    }

    /** npm pack of one package into the cache, unless it is there; null when it cannot be had. */
    static Path npmPack(Path cache, String spec, String file) throws InterruptedException {
        Path tgz = cache.resolve(file);
        if (Files.exists(tgz)) {
            return tgz;
        }
        Path log = cache.resolve("npm-pack-node-llama-cpp.log");
        try {
            Process p = new ProcessBuilder("npm", "pack", spec).directory(cache.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                return null;
            }
            return p.exitValue() == 0 && Files.exists(tgz) ? tgz : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean available(String... command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** The stamp exists and is newer than what it was made from. */
    private static boolean fresh(Path stamp, Path from) throws IOException {
        return Files.exists(stamp) && Files.getLastModifiedTime(stamp).compareTo(Files.getLastModifiedTime(from)) >= 0;
    }

    private static Path mkdirs(Path dir) throws IOException {
        return Files.createDirectories(dir);
    }

    private static void deleteTree(Path root) throws IOException {
        if (Files.exists(root)) {
            try (var paths = Files.walk(root)) {
                for (Path p : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator) {
                    Files.delete(p);
                }
            }
        }
    }

    private static void exec(long timeoutSeconds, String... command) {
        ServiceFixture.Result r = SERVICE.exec(List.of(command), Map.of(), timeoutSeconds);
        assertEquals(String.join(" ", command) + "\n" + r, 0, r.exit);
    }

    // ------------------------------------------------------------------ one run of the runner

    /** What one generation printed. */
    record Run(ServiceFixture.Result result, List<Integer> prompt, List<Integer> tokens, double[] logits, double[] margins,
            Map<String, Long> cublas, String why, double promptMs, double decodeMs, int decoded) {
        double tokensPerSecond() {
            return decoded / (decodeMs / 1000);
        }
    }

    private static final Pattern TOKEN = Pattern.compile(
            "token i=(\\d+) id=(\\d+) logit=(\\S+) second=\\d+ second_logit=\\S+ margin=(\\S+) greedy_agrees=1 piece=.*");

    static Run parse(ServiceFixture.Result r) {
        return parse(r, r.toString());
    }

    static Run parse(ServiceFixture.Result r, String why) {
        assertEquals(why, 0, r.exit);
        assertTrue(why, r.out.contains("\ndone\n"));
        List<Integer> prompt = ids(line(r.out, "prompt_tokens="));
        List<Integer> tokens = ids(line(r.out, "tokens="));
        assertEquals(why, N_PREDICT, tokens.size());
        double[] logits = new double[N_PREDICT], margins = new double[N_PREDICT];
        int seen = 0;
        for (String l : r.out.split("\n")) {
            Matcher m = TOKEN.matcher(l);
            if (m.matches()) {
                int i = Integer.parseInt(m.group(1));
                assertEquals(l, (int) tokens.get(i), Integer.parseInt(m.group(2)));
                logits[i] = Double.parseDouble(m.group(3));
                margins[i] = Double.parseDouble(m.group(4));
                seen++;
            }
        }
        assertEquals("one line per token, the sampler agreeing with the argmax\n" + why, N_PREDICT, seen);
        Map<String, Long> cublas = new LinkedHashMap<>();
        for (String kv : line(r.out, "cublas_calls ").split(" ")) {
            String[] p = kv.split("=");
            cublas.put(p[0], Long.parseLong(p[1]));
        }
        Map<String, String> time = new LinkedHashMap<>();
        for (String kv : line(r.out, "time ").split(" ")) {
            String[] p = kv.split("=");
            time.put(p[0], p[1]);
        }
        return new Run(r, prompt, tokens, logits, margins, cublas, why, Double.parseDouble(time.get("prompt_ms")),
                Double.parseDouble(time.get("decode_ms")), Integer.parseInt(time.get("decoded")));
    }

    private static String line(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length())).findFirst()
                .orElseThrow(() -> new AssertionError("no line " + prefix + " in\n" + out));
    }

    private static List<Integer> ids(String s) {
        return Arrays.stream(s.trim().split(" ")).map(Integer::valueOf).toList();
    }

    private static List<String> command(Setup s, boolean cuda, int ubatch, boolean steps) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(s.runner().toString(), s.model().toString(), "--cpu-dir",
                s.bins().toString(), "--prompt", PROMPT, "--n-predict", Integer.toString(N_PREDICT), "--batch",
                Integer.toString(N_BATCH), "--ubatch", Integer.toString(ubatch), "--threads", "1"));
        if (cuda) {
            cmd.add("--cuda-lib");
            cmd.add(cudaBackend().toString());
        }
        if (steps) {
            cmd.add("--steps");
        }
        return cmd;
    }

    /** The CPU run: nothing of vgpu's on the library path. */
    static Run cpu(Setup s, int ubatch) throws Exception {
        ServiceFixture.Result r = SERVICE.exec(command(s, false, ubatch, false), Map.of("LD_LIBRARY_PATH", s.bins().toString()),
                120);
        save("cpu-ubatch" + ubatch, r);
        return parse(r);
    }

    /** What a run printed, kept in target/llama/NAME.log for whoever looks into a failure. */
    static void save(String name, ServiceFixture.Result r) throws IOException {
        Files.writeString(WORK.resolve(name + ".log"), r.toString());
    }

    static Path cudaBackend() throws Exception {
        assumeTrue("SKIP llama.cpp CUDA run: NVIDIA's CUDA 12 runtime is not in " + CUDA12 + " (-Dvgpu.cuda12.skip=true?)",
                Files.exists(CUDA12.resolve("libcudart.so.12")) && Files.exists(CUDA12.resolve("libcublas.so.12")));
        Path cache = OllamaIT.npmCache();
        assumeTrue("SKIP llama.cpp CUDA run: no @node-llama-cpp packages (see above)", cache != null);
        // Where OllamaIT extracts it too (374 MB): once for both.
        Path tgz = cache.resolve(OllamaIT.GGML_EXT_TGZ);
        Path dir = Path.of("target", "ggml", "ext").toAbsolutePath();
        Path so = dir.resolve(OllamaIT.GGML_CUDA_SO);
        if (!Files.exists(so) || Files.size(so) == 0 || !fresh(so, tgz)) {
            exec(600, "tar", "-xzf", tgz.toString(), "-C", mkdirs(dir).toString(), OllamaIT.GGML_CUDA_SO);
            // tar keeps the archive's 1985 timestamps; mark the extraction time instead.
            assertTrue(so.toFile().setLastModified(System.currentTimeMillis()));
        }
        return so;
    }

    // ------------------------------------------------------------------ the service's launch log

    record Launch(long seq, String kernel, boolean executed, int result, String line) {
    }

    private static final Pattern LAUNCH = Pattern.compile("#(\\d+) (\\S+) .*");
    private static final Pattern RESULT = Pattern.compile("\\bresult=(-?\\d+)");

    /** The launches the service recorded after {@code seq}, oldest first. */
    static List<Launch> launchesAfter(long seq) {
        ServiceFixture.Result r = SERVICE.ctl("launches", "4096");
        assertEquals(r.toString(), 0, r.exit);
        List<Launch> out = new ArrayList<>();
        for (String l : r.out.split("\n")) {
            Matcher m = LAUNCH.matcher(l);
            if (m.matches() && Long.parseLong(m.group(1)) > seq) {
                Matcher res = RESULT.matcher(l);
                out.add(new Launch(Long.parseLong(m.group(1)), m.group(2), l.contains(" executed"),
                        res.find() ? Integer.parseInt(res.group(1)) : 0, l));
            }
        }
        return out;
    }

    /** Kernel name to launch count, by name. */
    static Map<String, Long> histogram(List<Launch> launches) {
        return launches.stream().collect(Collectors.groupingBy(Launch::kernel, TreeMap::new, Collectors.counting()));
    }

    // ------------------------------------------------------------------ the tests

    @Test
    public void cpuBackendGeneratesTheReferenceTokens() throws Exception {
        Setup s = setup();
        Run run = cpu(s, N_UBATCH);
        String why = run.why();
        assertEquals("the SentencePiece vocabulary tokenizes the prompt to whole words\n" + why, PROMPT_TOKENS, run.prompt());
        assertEquals(why, CPU_TOKENS, run.tokens());
        for (int i = 0; i < N_PREDICT; i++) {
            assertTrue("step " + i + ": the greedy pick must lead by " + MIN_MARGIN + "\n" + why, run.margins()[i] >= MIN_MARGIN);
        }
        assertEquals(why, 0L, (long) run.cublas().get("total"));
        // The ubatch size changes how the prompt is evaluated, not what comes out.
        assertEquals(CPU_TOKENS, cpu(s, 1).tokens());
        System.out.println("llama.cpp CPU tokens: " + run.tokens());
    }

    @Test
    public void cudaBackendThroughVgpuGeneratesWithoutCudaErrors() throws Exception {
        Setup s = setup();
        Path cuda = cudaBackend();
        String path = String.join(":", ServiceFixture.NATIVE.resolve("lib").toString(), CUDA12.toString(), s.bins().toString(),
                cuda.getParent().toString());

        // The launches of each phase: model and context set-up, the prompt, each decoded token.
        Map<String, List<Launch>> phases = new LinkedHashMap<>();
        long[] last = {launchesAfter(-1).stream().mapToLong(Launch::seq).max().orElse(0)};
        ServiceFixture.Result r = SERVICE.execSteps(command(s, true, N_UBATCH, true), Map.of("LD_LIBRARY_PATH", path), 600,
                step -> {
                    List<Launch> ls = launchesAfter(last[0]);
                    assertTrue("the launch log (4096 entries) overflowed in step " + step, ls.size() < 4096);
                    if (!ls.isEmpty()) {
                        last[0] = ls.get(ls.size() - 1).seq();
                    }
                    phases.put(step, ls);
                });
        save("cuda", r);
        report(phases, r);
        String why = r + "\n--- service log (tail)\n" + OllamaIT.tail(SERVICE.log(), 40);
        Run run = parse(r, why);
        assertTrue(why, r.err.contains("ggml_cuda_init: found 1 CUDA devices"));
        assertTrue(why, r.err.contains("offloaded 3/3 layers to GPU"));
        assertFalse(why, r.err.contains("CUDA error"));
        assertEquals(why, PROMPT_TOKENS, run.prompt());
        assertEquals("no cuBLAS call with ubatches of " + N_UBATCH + "\n" + why, Map.of("total", 0L), run.cublas());

        List<String> steps = new ArrayList<>(List.of("ready", "prompt"));
        for (int i = 1; i < N_PREDICT; i++) {
            steps.add("decode " + i);
        }
        assertEquals(why, steps, new ArrayList<>(phases.keySet()));
        for (Map.Entry<String, List<Launch>> e : phases.entrySet()) {
            for (Launch l : e.getValue()) {
                assertEquals(e.getKey() + ": " + l.line() + "\n" + why, 0, l.result());
            }
        }
        assertFalse(why, phases.get("prompt").isEmpty());
        // Every decoded token runs the same graph (captured once, then replayed): the same kernels.
        Map<String, Long> perToken = histogram(phases.get("decode 1"));
        assertFalse(why, perToken.isEmpty());
        for (int i = 2; i < N_PREDICT; i++) {
            assertEquals("decode " + i, perToken, histogram(phases.get("decode " + i)));
        }
        StringBuilder kernels = new StringBuilder();
        perToken.forEach((k, n) -> kernels.append(String.format("%n%6d %s", n, k)));
        System.out.println("llama.cpp through vgpu: prompt " + phases.get("prompt").size() + " launches, each decoded token "
                + phases.get("decode 1").size() + " launches of " + perToken.size() + " kernels (all phases in "
                + WORK.resolve("launches.txt") + "):" + kernels);

        Run reference = cpu(s, N_UBATCH);
        assertEquals("CUDA through vgpu against CPU\n" + why, reference.tokens(), run.tokens());
        double worst = 0;
        for (int i = 0; i < N_PREDICT; i++) {
            assertEquals("logit of token " + i + "\n" + why, reference.logits()[i], run.logits()[i], LOGIT_TOLERANCE);
            worst = Math.max(worst, Math.abs(reference.logits()[i] - run.logits()[i]));
        }
        System.out.printf("llama.cpp CUDA backend through vgpu: the CPU backend's %d greedy tokens, chosen logits within %.2g%n",
                N_PREDICT, worst);
        // A benchmark figure, printed and never asserted: the mock interprets every kernel.
        System.out.printf("tiny model decode: CUDA on the mock %.1f tokens/s, CPU backend %.1f tokens/s (mock/CPU %.2g); "
                + "prompt of %d tokens (first use: PTX parsed and kernels compiled): %.0f ms vs %.1f ms%n", run.tokensPerSecond(),
                reference.tokensPerSecond(), run.tokensPerSecond() / reference.tokensPerSecond(), PROMPT_TOKENS.size(),
                run.promptMs(), reference.promptMs());
    }

    /** target/llama/launches.txt: what the run printed of its tokens and cuBLAS calls, and kernel counts per phase. */
    private static void report(Map<String, List<Launch>> phases, ServiceFixture.Result r) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("# llama.cpp CUDA backend through vgpu: ").append(N_PREDICT).append(" tokens, prompt of ")
                .append(PROMPT_TOKENS.size()).append(" tokens in ubatches of ").append(N_UBATCH).append(", exit ")
                .append(r.exit).append('\n');
        r.out.lines().filter(l -> l.startsWith("tokens=") || l.startsWith("cublas_calls "))
                .forEach(l -> sb.append("# ").append(l).append('\n'));
        for (Map.Entry<String, List<Launch>> e : phases.entrySet()) {
            List<Launch> ls = e.getValue();
            long executed = ls.stream().filter(Launch::executed).count();
            sb.append("\n== ").append(e.getKey()).append(": ").append(ls.size()).append(" launches, ").append(executed)
                    .append(" executed\n");
            histogram(ls).forEach((k, n) -> sb.append(String.format("%6d %s%n", n, k)));
        }
        Files.writeString(WORK.resolve("launches.txt"), sb);
    }
}
