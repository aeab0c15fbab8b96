package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.api.CuResult;
import io.vgpu.itests.ServiceFixture.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.Test;

/**
 * Which cuBLAS 12.6 calls compute on the simulated GPU: {@code test_cublas12_compute} runs level
 * 1, 2 and 3 calls and cublasLtMatmul through NVIDIA's libraries, each synchronized and checked
 * against a host reference (bit for bit, the inputs being small integers and halves; cublasSnrm2
 * to a relative 1e-6), and stops before each call so that the launch log tells each call's kernels
 * apart.
 *
 * <p>A call computes exactly when every kernel cuBLAS picks for it has PTX in its image that the
 * simulated device can run; the mock refuses a SASS-only kernel by name, the call's
 * synchronization reports cudaErrorNotSupported (801) and nothing wrong is ever reported as a
 * result. cuBLAS 12.6 carries PTX only for compute_90 (a few cuBLASLt images compute_89 or
 * compute_52), so on an H100 its level 1 kernels, ger, some gemv and the small-N GEMM kernels
 * (gemmSN) run while its tensor-core and large-tile GEMM kernels (sm80/sm90 xmma, cutlass,
 * nvjet) cannot; on an A100 (8.0) or a T4 (7.5) nothing can, as no kernel has PTX at or below
 * their architecture: there cuBLAS picks other kernels (ampere_/volta_sgemm, gemvNSP, gemv2T), all
 * refused. Each test asserts, call by call, the outcome and the launches observed, prints a table
 * and writes it to target/cublas-compute-&lt;device&gt;.txt.
 *
 * <p>Kernel names are as the launch log records them: their first 127 characters.
 */
public class CublasComputeIT {
    static final Path NATIVE = ServiceFixture.NATIVE;
    static final Path CUDA12 = RuntimeIT.CUDA12;
    static final Path HARNESS = NATIVE.resolve("test/test_cublas12_compute");

    // ---- what cuBLAS 12.6 launches on the configured H100 -----------------------------------------

    static final String AXPY_F = "_Z15axpy_kernel_valIffEv19cublasAxpyParamsValIT_S1_T0_E";
    static final String SCAL_F = "_Z15scal_kernel_valIffEv19cublasScalParamsValIT_T0_E";
    static final String DOT_F =
            "_Z10dot_kernelIfLi128ELi0E15cublasDotParamsI16cublasGemvTensorIKfE30cublasGemvTensorStridedBatchedIfEEEvT2_";
    static final String REDUCE_F =
            "_Z20reduce_1Block_kernelIfLi128ELi7E30cublasGemvTensorStridedBatchedIfES1_S1_EvPKT_S2_T2_iS4_S2_T3_T4_19cublasPointerMode_t18cu";
    static final String NRM2_F = "_Z11nrm2_kernelIfffLi1ELi0ELi128EEv16cublasNrm2ParamsIiT_T0_E";
    static final String ASUM_F = "_Z11asum_kernelIiffEv16cublasAsumParamsIT0_T1_E";
    static final String IAMAX_F = "_Z12iamax_kernelIiffLi256EEv17cublasIamaxParamsIT_T0_T1_E";
    static final String COPY_F = "_Z11copy_kernelIfEv16cublasCopyParamsIT_E";
    static final String SWAP_F = "_Z11swap_kernelIfEv16cublasSwapParamsIT_E";
    static final String AXPY_D = "_Z15axpy_kernel_valIddEv19cublasAxpyParamsValIT_S1_T0_E";
    static final String DOT_D =
            "_Z10dot_kernelIdLi128ELi0E15cublasDotParamsI16cublasGemvTensorIKdE30cublasGemvTensorStridedBatchedIdEEEvT2_";
    static final String REDUCE_D =
            "_Z20reduce_1Block_kernelIdLi128ELi7E30cublasGemvTensorStridedBatchedIdES1_S1_EvPKT_S2_T2_iS4_S2_T3_T4_19cublasPointerMode_t18cu";
    static final String GEMVX_F_N6 =
            "_ZN8internal5gemvx6kernelIiiffffLb0ELb1ELb0ELb0ELi6ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKfES5_S3_IfEfEEE";
    static final String GEMVX_F_T6 =
            "_ZN8internal5gemvx6kernelIiiffffLb1ELb1ELb1ELb0ELi6ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKfES5_S3_IfEfEEE";
    static final String GEMVX_F_N7 =
            "_ZN8internal5gemvx6kernelIiiffffLb0ELb1ELb0ELb0ELi7ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKfES5_S3_IfEfEEE";
    static final String GEMVX_F_T7 =
            "_ZN8internal5gemvx6kernelIiiffffLb0ELb1ELb1ELb0ELi7ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKfES5_S3_IfEfEEE";
    static final String GER_F = "_Z10ger_kernelIffLi256ELi5ELb0EEv15cublasGerParamsIT_T0_E";
    static final String GEMV2N_D =
            "_Z13gemv2N_kernelIiiddddLi128ELi1ELi2ELi2ELi1ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKdES3_S1_IdEdEEvT11_";
    static final String GEMVX_D_T6 =
            "_ZN8internal5gemvx6kernelIiiddddLb1ELb1ELb1ELb0ELi6ELb0E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKdES5_S3_IdEdEEE";
    static final String SPLITK_REDUCE_F =
            "_ZN8cublasLt19splitKreduce_kernelILi32ELi16EifffLb0EfffLb1ELb0ELb0EEEvNS_18cublasSplitKParamsIT4_EEPKT2_PKT7_PT6_PT3_PKS2_SF_PK";
    static final String GEMMSN_F_128_5 =
            "_Z16gemmSN_NN_kernelIfLi128ELi2ELi4ELi8ELi5ELi4ELb0E30cublasGemvTensorStridedBatchedIKfES2_S0_IfEEv22cublasGemmSmallNParamsIT7_";
    static final String GEMMSN_F_128_4 =
            "_Z16gemmSN_NN_kernelIfLi128ELi2ELi4ELi8ELi4ELi4ELb0E30cublasGemvTensorStridedBatchedIKfES2_S0_IfEEv22cublasGemmSmallNParamsIT7_";
    static final String GEMMSN_F_256_4 =
            "_Z16gemmSN_NN_kernelIfLi256ELi4ELi2ELi8ELi4ELi4ELb0E30cublasGemvTensorStridedBatchedIKfES2_S0_IfEEv22cublasGemmSmallNParamsIT7_";
    static final String GEMMSN_H_256_5 =
            "_Z16gemmSN_NN_kernelIfLi256ELi4ELi2ELi8ELi5ELi4ELb0E30cublasGemvTensorStridedBatchedIK6__halfES0_IKfES0_IfEEv22cublasGemmSmallN";
    static final String CUTLASS_SGEMM_NN = "_ZN7cutlass7Kernel2I41cutlass_80_simt_sgemm_64x64_8x5_nn_align1EEvNT_6ParamsE";
    static final String CUTLASS_SGEMM_TN = "_ZN7cutlass7Kernel2I41cutlass_80_simt_sgemm_64x64_8x5_tn_align1EEvNT_6ParamsE";
    static final String XMMA_SGEMM_NN_32X32 =
            "sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize32x32x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_kernel__5x_cublas";
    static final String XMMA_SGEMM_NN_32X128 =
            "sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize32x128x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_kernel__5x_cublas";
    static final String XMMA_SGEMM_NT_32X32 =
            "sm80_xmma_gemm_f32f32_f32f32_f32_nt_n_tilesize32x32x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_kernel__5x_cublas";
    static final String XMMA_SGEMM_TT_32X32 =
            "sm80_xmma_gemm_f32f32_f32f32_f32_tt_n_tilesize32x32x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_kernel__5x_cublas";
    static final String XMMA_SGEMM_TN_32X32 =
            "sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize32x32x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_kernel__5x_cublas";
    static final String CUTLASS_DGEMM_NN = "_ZN7cutlass7Kernel2I49cutlass_80_tensorop_d884gemm_32x32_16x5_nn_align1EEvNT_6ParamsE";
    static final String XMMA_DGEMM_NN_STAGE3 =
            "sm90_xmma_gemm_f64f64_f64f64_f64_nn_n_tilesize32x32x32_stage3_warpsize2x2x1_tensor16x8x16_aligna8_alignc8_execute_kernel__5x_cu";
    static final String XMMA_DGEMM_NN_STAGE5 =
            "sm90_xmma_gemm_f64f64_f64f64_f64_nn_n_tilesize32x32x32_stage5_warpsize2x2x1_tensor16x8x16_execute_kernel__5x_cublas";
    static final String XMMA_DGEMM_TN =
            "sm90_xmma_gemm_f64f64_f64f64_f64_tn_n_tilesize64x64x32_stage3_warpsize2x2x1_tensor16x8x16_aligna8_alignc8_execute_kernel__5x_cu";
    static final String XMMA_DGEMM_TN_SPLITK =
            "sm90_xmma_gemm_f64f64_f64f64_f64_tn_n_tilesize64x64x32_stage3_warpsize2x2x1_tensor16x8x16_aligna8_alignc8_execute_split_k_kerne";
    static final String NVJET_HSS = "nvjet_hss_64x8_64x16_1x4_h_bz_NNT";
    static final String NVJET_HSH = "nvjet_hsh_64x8_64x16_1x2_h_bz_NNT";
    static final String CUTLASS_WMMA_S_F16 = "_ZN7cutlass7Kernel2I61cutlass_75_wmma_tensorop_s161616gemm_f16_32x32_64x1_nn_align1EEvNT_6ParamsE";
    static final String CUTLASS_WMMA_H = "_ZN7cutlass7Kernel2I57cutlass_80_wmma_tensorop_h161616gemm_16x16_32x1_nn_align8EEvNT_6ParamsE";

    /** Call by call on an H100 (cc 9.0): the harness's outcome, then each launch, ran or refused. */
    static final List<Call> H100 = List.of(
            call("cublasSaxpy_v2 n:1037", "correct", ran(AXPY_F)),
            call("cublasSscal_v2 n:1037", "correct", ran(SCAL_F)),
            call("cublasSdot_v2 n:1037", "correct", ran(DOT_F), ran(REDUCE_F)),
            call("cublasSnrm2_v2 n:1037", "correct", ran(NRM2_F), ran(NRM2_F)),
            call("cublasSasum_v2 n:1037", "correct", ran(ASUM_F), ran(ASUM_F)),
            call("cublasIsamax_v2 n:1037", "correct", ran(IAMAX_F)),
            call("cublasScopy_v2 n:1037", "correct", ran(COPY_F)),
            call("cublasSswap_v2 n:1037", "correct", ran(SWAP_F)),
            call("cublasDaxpy_v2 n:1037", "correct", ran(AXPY_D)),
            call("cublasDdot_v2 n:1037", "correct", ran(DOT_D), ran(REDUCE_D)),
            call("cublasSgemv_v2 N:37x29", "failed 801", refused(GEMVX_F_N6)),
            call("cublasSgemv_v2 T:37x29", "failed 801", refused(GEMVX_F_T6)),
            call("cublasSgemv_v2 N:256x256", "failed 801", refused(GEMVX_F_N7)),
            call("cublasSgemv_v2 T:256x256", "failed 801", refused(GEMVX_F_T7)),
            call("cublasSger_v2 37x29", "correct", ran(GER_F)),
            call("cublasDgemv_v2 N:37x29", "correct", ran(GEMV2N_D)),
            call("cublasDgemv_v2 T:37x29", "failed 801", refused(GEMVX_D_T6)),
            call("cublasSgemm_v2 NN:1x1x1", "failed 801", refused(GEMVX_F_N7), ran(SPLITK_REDUCE_F)),
            call("cublasSgemm_v2 NN:7x5x3", "correct", ran(GEMMSN_F_128_5)),
            call("cublasSgemm_v2 NN:16x16x16", "correct", ran(GEMMSN_F_128_4)),
            call("cublasSgemm_v2 NN:33x17x9", "failed 801", refused(CUTLASS_SGEMM_NN), ran(SPLITK_REDUCE_F)),
            call("cublasSgemm_v2 NN:64x64x64", "failed 801", refused(XMMA_SGEMM_NN_32X32)),
            call("cublasSgemm_v2 NN:128x8x256", "failed 801", refused(XMMA_SGEMM_NN_32X128)),
            call("cublasSgemm_v2 NN:128x128x128", "failed 801", refused(XMMA_SGEMM_NN_32X32)),
            call("cublasSgemm_v2 TN:33x17x9", "failed 801", refused(CUTLASS_SGEMM_TN), ran(SPLITK_REDUCE_F)),
            call("cublasSgemm_v2 NT:33x17x9", "failed 801", refused(XMMA_SGEMM_NT_32X32)),
            call("cublasSgemm_v2 TT:7x5x3", "failed 801", refused(XMMA_SGEMM_TT_32X32)),
            call("cublasSgemm_v2 NN:33x17x9,beta", "failed 801", refused(CUTLASS_SGEMM_NN), ran(SPLITK_REDUCE_F)),
            call("cublasDgemm_v2 NN:7x5x3", "failed 801", refused(CUTLASS_DGEMM_NN)),
            call("cublasDgemm_v2 NN:33x17x9", "failed 801", refused(XMMA_DGEMM_NN_STAGE3)),
            call("cublasDgemm_v2 NN:64x64x64", "failed 801", refused(XMMA_DGEMM_NN_STAGE5)),
            call("cublasDgemm_v2 TN:33x17x9,beta", "failed 801", refused(XMMA_DGEMM_TN), refused(XMMA_DGEMM_TN_SPLITK)),
            call("cublasSgemmStridedBatched NN:16x16x16,batch:3", "failed 801", refused(XMMA_SGEMM_NN_32X32)),
            call("cublasSgemmStridedBatched NN:7x5x3,batch:4", "failed 801", refused(XMMA_SGEMM_NN_32X32)),
            call("cublasGemmEx NN:7x5x3,f16->f32,f32compute", "correct", ran(GEMMSN_H_256_5)),
            call("cublasGemmEx NN:64x64x64,f16->f32,f32compute", "failed 801", refused(NVJET_HSS)),
            call("cublasGemmEx NN:16x16x16,f16->f16,f32compute", "failed 801", refused(NVJET_HSH)),
            call("cublasSgemmEx NN:33x17x9,f16->f32,f32compute", "failed 801", refused(CUTLASS_WMMA_S_F16)),
            call("cublasSgemmEx NN:64x64x64,f16->f32,f32compute", "failed 801", refused(NVJET_HSS)),
            call("cublasHgemm NN:16x16x16,f16", "failed 801", refused(CUTLASS_WMMA_H)),
            call("cublasLtMatmul NN:16x16x16,f32", "correct", ran(GEMMSN_F_256_4)),
            call("cublasLtMatmul NN:64x64x64,f32", "failed 801", refused(XMMA_SGEMM_NN_32X32)),
            call("cublasLtMatmul TN:33x17x9,f32", "failed 801", refused(XMMA_SGEMM_TN_32X32)));

    /** The host-pointer-mode reductions, whose copy of the result inside the call fails instead. */
    static final Set<String> REDUCTIONS = Set.of("cublasSdot_v2 n:1037", "cublasSnrm2_v2 n:1037", "cublasSasum_v2 n:1037",
            "cublasIsamax_v2 n:1037", "cublasDdot_v2 n:1037");

    record Call(String label, String outcome, List<String> launches) {
    }

    private static Call call(String label, String outcome, String... launches) {
        return new Call(label, outcome, List.of(launches));
    }

    private static String ran(String kernel) {
        return "ran " + kernel;
    }

    private static String refused(String kernel) {
        return "refused " + kernel;
    }

    // ---- the tests ------------------------------------------------------------------------------

    @Test
    public void onAnH100TheCallsWhoseKernelsHavePtxComputeAndTheOthersFailByName() throws Throwable {
        Map<String, Observed> seen = run("h100", "name = NVIDIA H100 80GB HBM3\ncc.major = 9\ncc.minor = 0\n", 90);
        assertEquals(seen.keySet().toString(), H100.stream().map(Call::label).toList(), List.copyOf(seen.keySet()));
        for (Call c : H100) {
            Observed o = seen.get(c.label);
            assertEquals(c.label, c.outcome, o.outcome);
            assertEquals(c.label, c.launches, o.launches);
        }
    }

    @Test
    public void onAnA100NoKernelHasPtxSoEveryCallFailsByName() throws Throwable {
        olderArchitecture("a100", "name = NVIDIA A100-SXM4-80GB\ncc.major = 8\ncc.minor = 0\nsm.count = 108\n", 80);
    }

    @Test
    public void onAT4NoKernelHasPtxSoEveryCallFailsByName() throws Throwable {
        olderArchitecture("t4", "name = Tesla T4\ncc.major = 7\ncc.minor = 5\nsm.count = 40\nmemory.mib = 15360\n", 75);
    }

    /** The same calls as on the H100, each failing: every launch is refused, none runs. */
    private static void olderArchitecture(String device, String conf, int arch) throws Throwable {
        Map<String, Observed> seen = run(device, conf, arch);
        assertEquals(seen.keySet().toString(), H100.stream().map(Call::label).toList(), List.copyOf(seen.keySet()));
        seen.forEach((label, o) -> {
            assertEquals(label, REDUCTIONS.contains(label) ? "failed cublas 14" : "failed 801", o.outcome);
            assertFalse(label + " launched nothing", o.launches.isEmpty());
            for (String l : o.launches) {
                assertTrue(label + ": " + l, l.startsWith("refused "));
            }
        });
    }

    // ---- running the harness ----------------------------------------------------------------------

    /** What one call did: the harness's verdict and the launches between its step and the next. */
    record Observed(String outcome, List<String> launches) {
    }

    private static final Pattern LAUNCH = Pattern.compile(
            "#(\\d+) (\\S+) grid\\(\\S+\\) block\\(\\S+\\) smem=\\d+ params=\\d+ (executed|recorded) result=(-?\\d+)");

    /**
     * Starts a service whose mock is configured by {@code conf}, runs the harness on it stepping
     * through its calls, prints and writes the table, and checks what holds on every device: no
     * call is wrong, a call is correct only if all its launches ran, every refused kernel is named
     * once in the service log as having no PTX at or below {@code arch}, and a launch either ran
     * (result 0) or was refused (801).
     */
    private static Map<String, Observed> run(String device, String conf, int arch) throws Throwable {
        assumeCuda12();
        assumeTrue("SKIP: " + HARNESS + " was not built", Files.isExecutable(HARNESS));
        ServiceFixture service = new ServiceFixture().withConf("io.vgpu.backend.mock.cfg", conf)
                .readyWhenStatusContains("CC " + arch / 10 + "." + arch % 10);
        service.before();
        try {
            Map<String, Long> seq = new LinkedHashMap<>();
            long started = System.nanoTime();
            Result r = service.execSteps(List.of(HARNESS.toString(), CUDA12.toString(), "steps"), Map.of(), 300,
                    step -> seq.put(step, lastLaunch(service)));
            double seconds = (System.nanoTime() - started) / 1e9;
            String log = service.log();
            assertEquals(r + "\n--- service log (tail)\n" + tail(log), 0, r.exit);
            assertTrue(r.out, r.out.contains("status cublasCreate_v2=0\n"));
            assertTrue(r.out, r.out.contains("status cublasDestroy_v2=0\n"));
            assertFalse(r.err, r.err.contains("vgpu["));

            Map<String, String> outcomes = new LinkedHashMap<>();
            for (String line : r.out.split("\n")) {
                if (line.startsWith("result ")) {
                    int eq = line.indexOf('=');
                    outcomes.put(line.substring(7, eq), line.substring(eq + 1));
                }
            }
            List<String> steps = List.copyOf(seq.keySet());
            assertEquals(r.out, "end", steps.get(steps.size() - 1));
            List<String[]> all = launches(service);
            Map<String, Observed> seen = new LinkedHashMap<>();
            for (int i = 0; i + 1 < steps.size(); i++) {
                long after = seq.get(steps.get(i)), upTo = seq.get(steps.get(i + 1));
                List<String> ls = new ArrayList<>();
                for (String[] l : all) {
                    long s = Long.parseLong(l[0]);
                    if (s > after && s <= upTo) {
                        boolean executed = l[2].equals("executed");
                        int result = Integer.parseInt(l[3]);
                        String what = executed && result == 0 ? "ran" : !executed && result == CuResult.NOT_SUPPORTED
                                ? "refused" : (l[2] + " result=" + result);
                        ls.add(what + " " + l[1]);
                    }
                }
                seen.put(steps.get(i), new Observed(outcomes.get(steps.get(i)), ls));
            }
            report(device, arch, seconds, seen);

            for (Map.Entry<String, Observed> e : seen.entrySet()) {
                String label = e.getKey();
                Observed o = e.getValue();
                assertTrue(label + " printed no result", o.outcome != null);
                assertFalse(label + " computed a wrong result: " + o.outcome, o.outcome.startsWith("wrong"));
                for (String l : o.launches) {
                    assertTrue(label + ": " + l, l.startsWith("ran ") || l.startsWith("refused "));
                    if (l.startsWith("refused ")) {
                        String kernel = l.substring(8);
                        Pattern line = Pattern.compile("kernel " + Pattern.quote(kernel) + "\\S* cannot run on the simulated "
                                + "GPU: its image holds no PTX for compute capability " + arch + " or below \\(only SASS");
                        assertTrue(label + ": the service log does not name " + kernel, line.matcher(log).find());
                    }
                }
                if (o.outcome.equals("correct")) {
                    assertTrue(label + " is correct, so every kernel ran: " + o.launches,
                            !o.launches.isEmpty() && o.launches.stream().allMatch(l -> l.startsWith("ran ")));
                } else {
                    assertTrue(label + " failed, so a kernel was refused: " + o.launches,
                            o.launches.stream().anyMatch(l -> l.startsWith("refused ")));
                }
            }
            return seen;
        } finally {
            service.after();
        }
    }

    /** Prints the table (call, outcome, kernels: + ran, - refused) and writes it under target/. */
    private static void report(String device, int arch, double seconds, Map<String, Observed> seen) throws IOException {
        StringBuilder b = new StringBuilder();
        long computes = seen.values().stream().filter(o -> "correct".equals(o.outcome)).count();
        b.append(String.format("cuBLAS 12.6 on the mock as %s (cc %d.%d): %d of %d calls compute (%.1f s)%n", device,
                arch / 10, arch % 10, computes, seen.size(), seconds));
        int width = seen.keySet().stream().mapToInt(String::length).max().orElse(0);
        seen.forEach((label, o) -> {
            b.append(String.format("  %-" + width + "s  %-17s", label, o.outcome));
            for (String l : o.launches) {
                b.append(l.startsWith("ran ") ? "  + " + l.substring(4) : "  - " + l.substring(l.indexOf(' ') + 1));
            }
            b.append('\n');
        });
        System.out.print(b);
        Path out = Path.of("target/cublas-compute-" + device + ".txt");
        Files.createDirectories(out.getParent());
        Files.writeString(out, b.toString());
    }

    private static long lastLaunch(ServiceFixture service) {
        List<String[]> all = launches(service);
        return all.isEmpty() ? 0 : Long.parseLong(all.get(all.size() - 1)[0]);
    }

    /** The launch log: sequence number, kernel, executed or recorded, result. */
    private static List<String[]> launches(ServiceFixture service) {
        Result r = service.ctl("launches", "4096");
        assertEquals(r.toString(), 0, r.exit);
        List<String[]> out = new ArrayList<>();
        Matcher m = LAUNCH.matcher(r.out);
        while (m.find()) {
            out.add(new String[] {m.group(1), m.group(2), m.group(3), m.group(4)});
        }
        return out;
    }

    private static void assumeCuda12() {
        boolean present = true;
        for (String lib : List.of("libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12")) {
            present &= Files.isRegularFile(CUDA12.resolve(lib));
        }
        if (!present) {
            System.out.println("SKIP: NVIDIA's CUDA 12.6 libraries are not in " + CUDA12);
        }
        assumeTrue("SKIP: NVIDIA's CUDA 12.6 libraries are not in " + CUDA12, present);
    }

    private static String tail(String log) {
        String[] lines = log.split("\n");
        return String.join("\n", List.of(lines).subList(Math.max(0, lines.length - 40), lines.length));
    }
}
