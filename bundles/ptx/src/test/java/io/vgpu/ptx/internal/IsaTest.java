package io.vgpu.ptx.internal;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** The coverage table agrees with what the compiler executes, for forms seen in nvcc, ggml and cuBLAS output. */
public class IsaTest {
    @Test
    public void formsTheEngineExecutesAreSupported() {
        for (String f : new String[] {"add.s32", "fma.rn.ftz.f32", "ld.global.nc.v4.f32", "ld.global.L2::128B.v4.u32",
            "ld.global.L2::cache_hint.f32", "st.shared.v2.b32", "shfl.sync.bfly.b32", "setp.ltu.f64", "cvt.rn.f16x2.f32",
            "cvt.rni.s32.f32", "atom.global.add.f32", "atom.shared.cas.b32", "red.global.add.u64", "bar.sync", "barrier.sync.aligned",
            "vote.sync.ballot.b32", "redux.sync.min.s32", "max.NaN.f32", "mul.f16x2", "ex2.approx.ftz.f32", "call.uni",
            "cp.async.cg.shared.global.L2::128B", "cp.async.wait_group", "ldmatrix.sync.aligned.m8n8.x4.b16",
            "ldmatrix.sync.aligned.x4.m8n8.shared.b16", "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16",
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32",
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", "mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64",
            "movmatrix.sync.aligned.m8n8.trans.b16", "cvt.rn.tf32.f32", "membar.gl", "dp4a.s32.s32", "prmt.b32.f4e", "shf.l.wrap.b32"}) {
            assertTrue(f, Isa.supports(f));
        }
    }

    @Test
    public void formsItDoesNotExecuteAreNot() {
        for (String f : new String[] {"tex.2d.v4.f32.f32", "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16", "cp.async.bulk.tensor.2d",
            "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32", "wmma.load.a.sync.aligned.row.m16n16k16.shared.s8",
            "ld.global.b128", "cvt.rn.satfinite.e4m3x2.f32", "vshr.u32.u32.u32", "suld.b.2d.b32", "mbarrier.arrive.b64"}) {
            assertFalse(f, Isa.supports(f));
        }
    }
}
