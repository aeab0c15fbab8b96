package io.vgpu.ptx.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import java.util.List;

import org.junit.Test;

/** Modifiers with {@code ::} parts (cuBLAS and ggml-cuda PTX use them) stay one opcode; labels still end at ':'. */
public class ParserQualifiedModifierTest {
    @Test
    public void doubleColonModifiersBelongToTheOpcode() throws Exception {
        Ast.Module m = Parser.parse(".version 8.0\n.target sm_90\n.address_size 64\n"
                + ".visible .entry k(.param .u64 p)\n{\n"
                + "\t.reg .pred %p<2>;\n\t.reg .b32 %r<3>;\n\t.reg .f32 %f<2>;\n\t.reg .b64 %rd<3>;\n"
                + "$L__BB0_1:\n"
                + "\tld.global.L2::cache_hint.f32 %f1, [%rd1], %rd2;\n"
                + "\t@%p1 cp.async.ca.shared.global.L2::128B [%r1], [%rd1], 4, %r2;\n"
                + "\tcp.async.cg.shared.global.L2::64B [%r1+16], [%rd1], 16;\n"
                + "\tmbarrier.try_wait.parity.shared::cta.b64 %p1, [%rd1], %r2;\n"
                + "\t@!%p1 bra $L__BB0_1;\n"
                + "\tret;\n}\n");
        List<Ast.Insn> body = m.func("k").body;
        assertNull(body.get(0).opcode);
        assertEquals("$L__BB0_1", body.get(0).label);
        assertEquals("ld.global.L2::cache_hint.f32", body.get(1).form());
        assertEquals(List.of("global", "L2::cache_hint", "f32"), body.get(1).mods);
        assertEquals(3, body.get(1).operands.size());
        assertEquals("cp.async.ca.shared.global.L2::128B", body.get(2).form());
        assertEquals("%p1", body.get(2).guard);
        assertEquals(4, body.get(2).operands.size());
        assertEquals("cp.async.cg.shared.global.L2::64B", body.get(3).form());
        assertEquals(16, body.get(3).operands.get(0).value);
        assertEquals("mbarrier.try_wait.parity.shared::cta.b64", body.get(4).form());
        assertEquals("bra", body.get(5).form());
        assertEquals("ret", body.get(6).form());
        assertEquals(7, body.size());
    }
}
