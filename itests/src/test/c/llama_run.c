/*
 * Greedy generation with llama.cpp's own library (libllama from the node-llama-cpp prebuilt
 * packages), on its CPU backend or on its CUDA backend, for LlamaIT.
 *
 *   llama_run MODEL --cpu-dir DIR [--cuda-lib libggml-cuda.so] [--prompt TEXT] [--n-predict N]
 *             [--batch N] [--ubatch N] [--threads N] [--steps]
 *
 * --cpu-dir holds the libggml-cpu-*.so variants (ggml picks the best one for this CPU). Without
 * --cuda-lib only the CPU backend is loaded and every layer runs on it; with it, the CUDA backend
 * is loaded as well and every layer, the output layer and the KV cache are offloaded to CUDA0.
 *
 * Both runs use the same graph: flash attention off, an F32 KV cache, one sequence, no output
 * but the last token's. The prompt is decoded in one llama_decode of up to --batch tokens, which
 * llama.cpp splits into ubatches of --ubatch tokens; each generated token is then decoded alone.
 *
 * Output (stdout), one fact per line:
 *   devices=N, device[i] name=... description=...
 *   n_vocab=N, prompt_tokens=ID ID ...
 *   token i=I id=ID logit=L second=ID second_logit=L margin=M piece=TEXT   (one per generated token)
 *   tokens=ID ID ...
 *   cublas_calls total=N [NAME=COUNT ...]   (cublas_count.c)
 *   done
 * With --steps it prints "step ready", "step prompt" and "step decode I" once the work before it
 * has finished on the device (llama_synchronize), and waits for a line on stdin before going on:
 * the test reads the service's launch log at each step.
 *
 * llama.cpp's own log (but its debug lines) goes to stderr.
 *
 * Built by LlamaIT against llama.h and ggml's headers of the same llama.cpp release:
 *   gcc -std=c11 -rdynamic llama_run.c cublas_count.c -lllama -lggml -lggml-base -ldl -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

static double now_ms(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11; wall-clock steps are negligible over a run */
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int steps;

static void step(struct llama_context *ctx, const char *name, int i)
{
    if (!steps)
        return;
    if (ctx != NULL)
        llama_synchronize(ctx);
    if (i >= 0)
        printf("step %s %d\n", name, i);
    else
        printf("step %s\n", name);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) {
        fprintf(stderr, "llama_run: stdin closed at step %s\n", name);
        exit(3);
    }
}

/* llama.cpp's log without its debug lines (hundreds per context). */
static void log_to_stderr(enum ggml_log_level level, const char *text, void *user)
{
    static enum ggml_log_level last = GGML_LOG_LEVEL_INFO;
    (void)user;
    if (level != GGML_LOG_LEVEL_CONT)
        last = level;
    if (last != GGML_LOG_LEVEL_DEBUG)
        fputs(text, stderr);
}

void cublas_report(void); /* cublas_count.c */

static void usage(void)
{
    fprintf(stderr, "usage: llama_run MODEL --cpu-dir DIR [--cuda-lib PATH] [--prompt TEXT] [--n-predict N] "
                    "[--batch N] [--ubatch N] [--threads N] [--steps]\n");
    exit(2);
}

/* The piece of a token with anything but printable ASCII escaped, so one line stays one line. */
static void print_piece(const struct llama_vocab *vocab, llama_token id)
{
    char buf[64];
    int n = llama_token_to_piece(vocab, id, buf, sizeof buf, 0, true);
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c > ' ' && c < 127 && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *cpu_dir = NULL, *cuda_lib = NULL;
    const char *prompt = "the big red dog ran to the cat";
    int n_predict = 20, n_batch = 32, n_ubatch = 3, n_threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--steps") == 0) {
            steps = 1;
        } else if (a[0] != '-') {
            model_path = a;
        } else if (v == NULL) {
            usage();
        } else {
            i++;
            if (strcmp(a, "--cpu-dir") == 0)
                cpu_dir = v;
            else if (strcmp(a, "--cuda-lib") == 0)
                cuda_lib = v;
            else if (strcmp(a, "--prompt") == 0)
                prompt = v;
            else if (strcmp(a, "--n-predict") == 0)
                n_predict = atoi(v);
            else if (strcmp(a, "--batch") == 0)
                n_batch = atoi(v);
            else if (strcmp(a, "--ubatch") == 0)
                n_ubatch = atoi(v);
            else if (strcmp(a, "--threads") == 0)
                n_threads = atoi(v);
            else
                usage();
        }
    }
    if (model_path == NULL || cpu_dir == NULL || n_predict < 1 || n_ubatch < 1 || n_batch < n_ubatch)
        usage();

    llama_log_set(log_to_stderr, NULL);
    /* This libggml is built with GGML_BACKEND_DL: backends are loaded explicitly, CPU first. */
    ggml_backend_load_all_from_path(cpu_dir);
    if (cuda_lib != NULL && ggml_backend_load(cuda_lib) == NULL) {
        printf("error=ggml_backend_load %s\n", cuda_lib);
        return 1;
    }
    llama_backend_init();

    size_t n_dev = ggml_backend_dev_count();
    printf("devices=%zu\n", n_dev);
    for (size_t i = 0; i < n_dev; i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        printf("device[%zu] name=%s description=%s\n", i, ggml_backend_dev_name(dev), ggml_backend_dev_description(dev));
    }

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = cuda_lib != NULL ? 999 : 0;
    mp.use_extra_bufts = false; /* no CPU weight repacking: the CPU run keeps the plain F32 kernels */
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (model == NULL) {
        printf("error=llama_model_load_from_file\n");
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    printf("n_vocab=%d\n", n_vocab);

    llama_token prompt_tokens[256];
    int n_prompt = llama_tokenize(vocab, prompt, (int)strlen(prompt), prompt_tokens, 256, true, false);
    if (n_prompt <= 0 || n_prompt > n_batch) {
        printf("error=llama_tokenize n=%d (batch %d)\n", n_prompt, n_batch);
        return 1;
    }
    printf("prompt_tokens=");
    for (int i = 0; i < n_prompt; i++)
        printf(i ? " %d" : "%d", prompt_tokens[i]);
    printf("\n");

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = n_batch;
    cp.n_ubatch = n_ubatch;
    cp.n_seq_max = 1;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.offload_kqv = true;
    cp.no_perf = true;
    if (n_prompt + n_predict > (int)cp.n_ctx) {
        printf("error=context %u too small\n", cp.n_ctx);
        return 1;
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (ctx == NULL) {
        printf("error=llama_init_from_model\n");
        return 1;
    }
    struct llama_sampler *smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
    fflush(stdout);
    step(ctx, "ready", -1);

    llama_token generated[256];
    llama_token next = 0;
    /* Time spent in llama_decode up to the logits (which synchronize), never in the test's stops. */
    double prompt_ms = 0, decode_ms = 0;
    for (int i = 0; i < n_predict; i++) {
        double t0 = now_ms();
        /* The prompt first, then the token sampled last; only the batch's last token has logits. */
        struct llama_batch batch = i == 0 ? llama_batch_get_one(prompt_tokens, n_prompt) : llama_batch_get_one(&next, 1);
        int rc = llama_decode(ctx, batch);
        if (rc != 0) {
            printf("error=llama_decode rc=%d at token %d\n", rc, i);
            return 1;
        }
        (void)llama_get_logits_ith(ctx, -1);
        if (i == 0)
            prompt_ms += now_ms() - t0;
        else
            decode_ms += now_ms() - t0;
        if (i == 0)
            step(ctx, "prompt", -1);
        else
            step(ctx, "decode", i);
        const float *logits = llama_get_logits_ith(ctx, -1);
        int best = 0, second = -1;
        for (int t = 1; t < n_vocab; t++) {
            if (logits[t] > logits[best]) {
                second = best;
                best = t;
            } else if (second < 0 || logits[t] > logits[second]) {
                second = t;
            }
        }
        next = llama_sampler_sample(smpl, ctx, -1);
        generated[i] = next;
        printf("token i=%d id=%d logit=%.6f second=%d second_logit=%.6f margin=%.6f greedy_agrees=%d piece=", i, next,
               logits[next], second, logits[second], logits[best] - logits[second], next == best);
        print_piece(vocab, next);
        printf("\n");
        fflush(stdout);
    }
    printf("time prompt_ms=%.3f decode_ms=%.3f decoded=%d\n", prompt_ms, decode_ms, n_predict - 1);
    printf("tokens=");
    for (int i = 0; i < n_predict; i++)
        printf(i ? " %d" : "%d", generated[i]);
    printf("\n");

    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    cublas_report();
    printf("done\n");
    return 0;
}
