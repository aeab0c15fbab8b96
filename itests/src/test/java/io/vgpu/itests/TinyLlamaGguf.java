package io.vgpu.itests;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A tiny llama-architecture model, written as a GGUF v3 file: random F32 weights from a fixed seed
 * (java.util.Random is specified bit for bit, so every JVM writes the same file) and a small
 * SentencePiece ("llama") vocabulary of its own that llama.cpp tokenizes with its SPM tokenizer.
 *
 * <p>The vocabulary: {@code <unk>}, {@code <s>}, {@code </s>} (ids 0-2), the 256 byte-fallback
 * tokens {@code <0x00>}..{@code <0xFF>} (ids 3-258, as llama.cpp's SPM tokenizer expects), then
 * "▁", the letters, a few punctuation marks and every prefix (of two characters or more) of
 * "▁" + each word of {@link #WORDS}, scored by length so that the tokenizer merges up to whole
 * words: "the big red dog ran to the cat" is {@code <s> ▁the ▁big ▁red ▁dog ▁ran ▁to ▁the ▁cat}.
 *
 * <p>The weights: embeddings N(0, 1); attention and FFN matrices N(0, 1/fan_in) scaled by
 * {@link #QK_GAIN} for Q and K (so attention is far from uniform); norms 1 + N(0, 0.1²); the
 * output matrix N(0, (OUT_GAIN/sqrt(n_embd))²), which spreads the logits (standard deviation about
 * OUT_GAIN) so that greedy picks are not near-ties. Run {@code main} to write one by hand.
 */
public final class TinyLlamaGguf {
    /** Chosen among seeds 1-60 for LlamaIT's prompt: 20 distinct greedy tokens, each leading by 0.33 or more. */
    public static final long SEED = 58;
    public static final int N_EMBD = 64, N_HEAD = 4, N_HEAD_KV = 4, N_LAYER = 2, N_FF = 128, N_CTX_TRAIN = 128;
    static final float QK_GAIN = 2.0f, OUT_GAIN = 4.0f;
    static final String[] WORDS = {"the", "cat", "sat", "on", "mat", "dog", "ran", "to", "a", "and", "is", "in",
        "it", "was", "big", "red", "sun", "day"};

    private TinyLlamaGguf() {}

    /** The vocabulary, in id order. */
    static List<String> tokens() {
        Set<String> normal = new LinkedHashSet<>();
        normal.add("\u2581");
        for (char c = 'a'; c <= 'z'; c++) {
            normal.add(Character.toString(c));
        }
        normal.add(".");
        normal.add(",");
        for (String w : WORDS) {
            String piece = "\u2581" + w;
            for (int len = 2; len <= piece.length(); len++) {
                normal.add(piece.substring(0, len));
            }
        }
        List<String> all = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) {
            all.add(String.format("<0x%02X>", b));
        }
        all.addAll(normal);
        return all;
    }

    // GGUF value types
    private static final int T_UINT32 = 4, T_INT32 = 5, T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9;
    // llama.cpp token types
    private static final int TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6;
    private static final int ALIGNMENT = 32;

    /** Writes the model with the weights of {@link #SEED} to {@code file}; returns the vocabulary size. */
    public static int write(Path file) throws IOException {
        return write(file, SEED);
    }

    /** Writes the model with the weights of {@code seed} to {@code file}; returns the vocabulary size. */
    public static int write(Path file, long seed) throws IOException {
        List<String> tokens = tokens();
        int nVocab = tokens.size();
        float[] scores = new float[nVocab];
        int[] types = new int[nVocab];
        for (int i = 0; i < nVocab; i++) {
            String t = tokens.get(i);
            if (i == 0) {
                types[i] = TT_UNKNOWN;
            } else if (i < 3) {
                types[i] = TT_CONTROL;
            } else if (i < 259) {
                types[i] = TT_BYTE;
            } else {
                types[i] = TT_NORMAL;
                // Longer pieces merge first; among equals, the earlier one.
                scores[i] = t.codePointCount(0, t.length()) - i * 1e-4f;
            }
        }

        Map<String, Object[]> kv = new LinkedHashMap<>();
        kv.put("general.architecture", str("llama"));
        kv.put("general.name", str("vgpu-tiny-llama"));
        kv.put("general.file_type", u32(0)); // all F32
        kv.put("general.alignment", u32(ALIGNMENT));
        kv.put("llama.vocab_size", u32(nVocab));
        kv.put("llama.context_length", u32(N_CTX_TRAIN));
        kv.put("llama.embedding_length", u32(N_EMBD));
        kv.put("llama.block_count", u32(N_LAYER));
        kv.put("llama.feed_forward_length", u32(N_FF));
        kv.put("llama.attention.head_count", u32(N_HEAD));
        kv.put("llama.attention.head_count_kv", u32(N_HEAD_KV));
        kv.put("llama.attention.layer_norm_rms_epsilon", new Object[] {T_FLOAT32, 1e-5f});
        kv.put("llama.rope.dimension_count", u32(N_EMBD / N_HEAD));
        kv.put("llama.rope.freq_base", new Object[] {T_FLOAT32, 10000f});
        kv.put("tokenizer.ggml.model", str("llama"));
        kv.put("tokenizer.ggml.tokens", new Object[] {T_ARRAY, T_STRING, tokens.toArray(new String[0])});
        kv.put("tokenizer.ggml.scores", new Object[] {T_ARRAY, T_FLOAT32, scores});
        kv.put("tokenizer.ggml.token_type", new Object[] {T_ARRAY, T_INT32, types});
        kv.put("tokenizer.ggml.unknown_token_id", u32(0));
        kv.put("tokenizer.ggml.bos_token_id", u32(1));
        kv.put("tokenizer.ggml.eos_token_id", u32(2));
        kv.put("tokenizer.ggml.add_bos_token", new Object[] {T_BOOL, true});
        kv.put("tokenizer.ggml.add_eos_token", new Object[] {T_BOOL, false});

        Random rnd = new Random(seed);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> data = new LinkedHashMap<>();
        tensor(shapes, data, "token_embd.weight", gaussian(rnd, N_EMBD * nVocab, 1f), N_EMBD, nVocab);
        for (int l = 0; l < N_LAYER; l++) {
            String b = "blk." + l + ".";
            int kvDim = N_EMBD / N_HEAD * N_HEAD_KV;
            float in = (float) (1 / Math.sqrt(N_EMBD));
            tensor(shapes, data, b + "attn_norm.weight", norm(rnd, N_EMBD), N_EMBD);
            tensor(shapes, data, b + "attn_q.weight", gaussian(rnd, N_EMBD * N_EMBD, QK_GAIN * in), N_EMBD, N_EMBD);
            tensor(shapes, data, b + "attn_k.weight", gaussian(rnd, N_EMBD * kvDim, QK_GAIN * in), N_EMBD, kvDim);
            tensor(shapes, data, b + "attn_v.weight", gaussian(rnd, N_EMBD * kvDim, in), N_EMBD, kvDim);
            tensor(shapes, data, b + "attn_output.weight", gaussian(rnd, N_EMBD * N_EMBD, in), N_EMBD, N_EMBD);
            tensor(shapes, data, b + "ffn_norm.weight", norm(rnd, N_EMBD), N_EMBD);
            tensor(shapes, data, b + "ffn_gate.weight", gaussian(rnd, N_EMBD * N_FF, in), N_EMBD, N_FF);
            tensor(shapes, data, b + "ffn_up.weight", gaussian(rnd, N_EMBD * N_FF, in), N_EMBD, N_FF);
            tensor(shapes, data, b + "ffn_down.weight", gaussian(rnd, N_FF * N_EMBD, (float) (1 / Math.sqrt(N_FF))),
                    N_FF, N_EMBD);
        }
        tensor(shapes, data, "output_norm.weight", norm(rnd, N_EMBD), N_EMBD);
        tensor(shapes, data, "output.weight", gaussian(rnd, N_EMBD * nVocab, (float) (OUT_GAIN / Math.sqrt(N_EMBD))),
                N_EMBD, nVocab);

        Files.createDirectories(file.toAbsolutePath().getParent());
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
            Le w = new Le(out);
            w.bytes("GGUF".getBytes(StandardCharsets.US_ASCII));
            w.u32(3);
            w.u64(shapes.size());
            w.u64(kv.size());
            for (Map.Entry<String, Object[]> e : kv.entrySet()) {
                w.string(e.getKey());
                value(w, e.getValue());
            }
            long offset = 0;
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                w.string(e.getKey());
                w.u32(e.getValue().length);
                for (long ne : e.getValue()) {
                    w.u64(ne);
                }
                w.u32(0); // GGML_TYPE_F32
                w.u64(offset);
                offset = align(offset + 4L * data.get(e.getKey()).length);
            }
            w.pad();
            for (float[] d : data.values()) {
                ByteBuffer bb = ByteBuffer.allocate(4 * d.length).order(ByteOrder.LITTLE_ENDIAN);
                bb.asFloatBuffer().put(d);
                w.bytes(bb.array());
                w.pad();
            }
        }
        return nVocab;
    }

    private static Object[] str(String s) {
        return new Object[] {T_STRING, s};
    }

    private static Object[] u32(int v) {
        return new Object[] {T_UINT32, v};
    }

    private static void value(Le w, Object[] v) throws IOException {
        int type = (Integer) v[0];
        w.u32(type);
        switch (type) {
            case T_UINT32, T_INT32 -> w.u32((Integer) v[1]);
            case T_FLOAT32 -> w.u32(Float.floatToRawIntBits((Float) v[1]));
            case T_BOOL -> w.bytes(new byte[] {(byte) ((Boolean) v[1] ? 1 : 0)});
            case T_STRING -> w.string((String) v[1]);
            case T_ARRAY -> {
                int elem = (Integer) v[1];
                w.u32(elem);
                switch (elem) {
                    case T_STRING -> {
                        String[] a = (String[]) v[2];
                        w.u64(a.length);
                        for (String s : a) {
                            w.string(s);
                        }
                    }
                    case T_FLOAT32 -> {
                        float[] a = (float[]) v[2];
                        w.u64(a.length);
                        for (float f : a) {
                            w.u32(Float.floatToRawIntBits(f));
                        }
                    }
                    case T_INT32 -> {
                        int[] a = (int[]) v[2];
                        w.u64(a.length);
                        for (int i : a) {
                            w.u32(i);
                        }
                    }
                    default -> throw new IllegalArgumentException("array of " + elem);
                }
            }
            default -> throw new IllegalArgumentException("type " + type);
        }
    }

    private static void tensor(Map<String, long[]> shapes, Map<String, float[]> data, String name, float[] values,
            long... ne) {
        long n = 1;
        for (long d : ne) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(name);
        }
        shapes.put(name, ne);
        data.put(name, values);
    }

    private static float[] gaussian(Random rnd, int n, float sigma) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * sigma);
        }
        return a;
    }

    private static float[] norm(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (1 + 0.1 * rnd.nextGaussian());
        }
        return a;
    }

    private static long align(long v) {
        return (v + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Little-endian writes that count bytes, for GGUF's alignment padding. */
    private static final class Le {
        private final OutputStream out;
        private long pos;

        Le(OutputStream out) {
            this.out = out;
        }

        void bytes(byte[] b) throws IOException {
            out.write(b);
            pos += b.length;
        }

        void u32(int v) throws IOException {
            bytes(new byte[] {(byte) v, (byte) (v >> 8), (byte) (v >> 16), (byte) (v >> 24)});
        }

        void u64(long v) throws IOException {
            u32((int) v);
            u32((int) (v >>> 32));
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        void pad() throws IOException {
            while (pos % ALIGNMENT != 0) {
                out.write(0);
                pos++;
            }
        }
    }

    public static void main(String[] args) throws IOException {
        Path file = Path.of(args.length > 0 ? args[0] : "tiny-llama.gguf");
        long seed = args.length > 1 ? Long.parseLong(args[1]) : SEED;
        System.out.println(file + ": n_vocab=" + write(file, seed) + " seed=" + seed);
    }
}
