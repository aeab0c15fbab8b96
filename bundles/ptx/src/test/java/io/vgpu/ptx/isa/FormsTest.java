package io.vgpu.ptx.isa;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.ptx.PtxProgram;
import org.junit.Test;

/** PtxProgram.supports: the forms nvcc emits for ordinary CUDA code are known, unknown ones are not. */
public class FormsTest {
    @Test
    public void formsNvccEmitsAreSupported() {
        for (String form : new String[] {"atom.global.add.u32", "atom.shared.add.f32", "atom.global.min.s32", "atom.global.max.u64",
                "atom.global.and.b32", "atom.shared.or.b32", "atom.global.xor.b64", "atom.global.cas.b32", "atom.global.exch.b64",
                "atom.global.inc.u32", "atom.global.dec.u32", "atom.add.noftz.f16x2", "atom.global.add.v4.f32", "red.global.add.u32",
                "red.shared.add.u64", "redux.sync.add.s32", "redux.sync.min.u32", "redux.sync.and.b32", "redux.sync.xor.b32",
                "bar.red.popc.u32", "bar.red.and.pred", "bar.red.or.pred", "membar.gl", "membar.cta", "membar.sys",
                "add.u16x2", "max.s16x2", "min.relu.s32", "shfl.sync.bfly.b32", "vote.sync.ballot.b32", "cvt.rn.f16x2.f32",
                "fma.rn.bf16x2", "ld.global.nc.v4.f32", "st.global.v2.u64", "setp.ltu.f32", "mad.wide.u32", "addc.cc.u32"}) {
            assertTrue(form, PtxProgram.supports(form));
        }
    }

    /** Forms the engine cannot run compile, and fault with UNSUPPORTED only when a thread reaches them. */
    @Test
    public void unsupportedFormsFaultWhenReached() throws Exception {
        for (String insn : new String[] {"min.xorsign.abs.f32 %f3, %f1, %f2", "max.xorsign.abs.f16 %h3, %h1, %h2",
                "vabsdiff4.u32.u32.u32 %r3, %r1, %r2, %r4", "fns.b32 %r3, %r1, %r2, 1"}) {
            String body = "  mov.u32 %r1, %tid.x;\n  setp.gt.u32 %p1, %r1, 100;\n  @%p1 bra SKIP;\n  ld.param.u64 %rd1, [p0];\n"
                    + "  st.global.u32 [%rd1], 1;\n  bra.uni END;\nSKIP:\n  " + insn + ";\nEND:\n";
            io.vgpu.ptx.HeapMemory m = new io.vgpu.ptx.HeapMemory(Ptx.BASE, 8);
            Ptx.launch(Ptx.kernel(1, "", body), io.vgpu.ptx.LaunchDims.linear(1, 32), m, Ptx.BASE); // not reached: runs
            assertTrue(insn, m.getInt(Ptx.BASE) == 1);
            io.vgpu.ptx.KernelFault f = Ptx.fault(Ptx.EXEC, Ptx.kernel(1, "", "  " + insn + ";\n"), io.vgpu.ptx.LaunchDims.linear(1, 1), m);
            org.junit.Assert.assertEquals(insn, io.vgpu.ptx.KernelFault.Kind.UNSUPPORTED, f.kind());
            assertFalse(insn, PtxProgram.supports(insn.substring(0, insn.indexOf(' '))));
        }
    }

    @Test
    public void unknownFormsAreNot() {
        for (String form : new String[] {"vabsdiff4.u32.u32.u32", "ld.global.b128", "tex.2d.v4.f32.f32", "add.bogus.u32"}) {
            assertFalse(form, PtxProgram.supports(form));
        }
    }
}
