package io.vgpu.core.image;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.junit.Test;

/** PTX constructs beyond what nvcc emitted for the fixtures. */
public class PtxParserTest {
    private static ModuleImage parse(String ptx) throws ImageFormatException {
        return ImageParser.parse(ptx.getBytes(StandardCharsets.ISO_8859_1), 90);
    }

    private static final String HEADER = "//\n// test\n//\n.version 8.5\n.target sm_90a, texmode_independent\n"
            + ".address_size 64\n.file 1 \"/src//kernels.cu\", 1700000000, 1234\n";

    @Test
    public void entryVariantsAndParameterTypes() throws Exception {
        ModuleImage m = parse(HEADER
                + ".weak .entry w(.param .u8 a, .param .b16 b, .param .f32 c, .param .s64 d, .param .f64 e)\n{ ret; }\n"
                + ".entry plain(\n\t.param .u64 .ptr .global .align 16 p,\n\t.param .u32 n\n)\n.maxntid 16, 8\n{\n ret;\n}\n"
                + ".visible .entry none()\n.reqntid 64\n.minnctapersm 2\n{ ret; }\n"
                + ".visible .entry bare\n{ ret; }\n"
                + ".visible .entry arr(.param .align 16 .b8 s[40], .param .b8 tail[3], .param .align 4 .b8 q[2][3])\n{ }\n");
        assertEquals(90, m.arch);
        assertEquals(5, m.kernels.size());

        KernelInfo w = m.kernel("w");
        assertArrayEquals(new int[] {0, 2, 4, 8, 16}, w.paramOffsets);
        assertArrayEquals(new int[] {1, 2, 4, 8, 8}, w.paramSizes);
        assertEquals(24, w.paramBufferSize);

        // .align after .ptr is the pointee's alignment, not the parameter's.
        KernelInfo plain = m.kernel("plain");
        assertArrayEquals(new int[] {0, 8}, plain.paramOffsets);
        assertArrayEquals(new int[] {8, 4}, plain.paramSizes);
        assertEquals(12, plain.paramBufferSize);
        assertEquals(128, plain.maxThreadsPerBlock);

        KernelInfo none = m.kernel("none");
        assertEquals(0, none.paramCount());
        assertEquals(0, none.paramBufferSize);
        assertEquals(64, none.maxThreadsPerBlock);
        assertEquals(0, m.kernel("bare").paramCount());

        KernelInfo arr = m.kernel("arr");
        assertArrayEquals(new int[] {0, 40, 44}, arr.paramOffsets);
        assertArrayEquals(new int[] {40, 3, 6}, arr.paramSizes);
        assertEquals(50, arr.paramBufferSize);
    }

    @Test
    public void functionsDeclarationsAndExternsAreNotKernels() throws Exception {
        ModuleImage m = parse(HEADER
                + ".extern .func (.param .b32 func_retval0) vprintf(.param .b64 f, .param .b64 a);\n"
                + ".func (.param .b32 r) helper(.param .b32 x)\n{\n .reg .b32 %r<3>;\n { .reg .b32 inner; }\n ret;\n}\n"
                + ".extern .entry elsewhere(.param .u32 x);\n"
                + ".visible .entry proto(.param .u32 x);\n"
                + ".visible .entry real(.param .u32 x)\n{\n call.uni (r), helper, (x);\n ret;\n}\n"
                + ".section .debug_str\n{\n .b8 95, 90, 0\n}\n");
        assertEquals(1, m.kernels.size());
        assertEquals("real", m.kernels.get(0).name);
    }

    @Test
    public void globalsAndInitialisers() throws Exception {
        ModuleImage m = parse(HEADER
                + ".global .align 4 .b8 bytes[6] = {1, 2, 0x3, 0b100, 05, 255};\n"
                + ".visible .global .f32 one = 0f3F800000;\n"
                + ".global .f32 dec = 2.5;\n"
                + ".const .align 8 .f64 two = 0d4000000000000000;\n"
                + ".global .s32 neg = -2;\n"
                + ".global .u64 ptr = generic(bytes);\n"
                + ".global .u32 a, b = 7, c[2] = {8, 9};\n"
                + ".global .align 8 .b8 open[] = {1, 2, 3};\n"
                + ".global .s16 grid[2][2] = {{1, 2}, {3, 4}};\n"
                + ".global .v2 .f32 vec = {0f40400000, 0f40800000};\n"
                + ".extern .global .u32 notHere;\n"
                + ".global .texref tex;\n"
                + ".shared .align 4 .b8 moduleShared[64];\n");
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, (byte) 255}, m.global("bytes").init);
        assertArrayEquals(le32(Float.floatToIntBits(1f)), m.global("one").init);
        assertArrayEquals(le32(Float.floatToIntBits(2.5f)), m.global("dec").init);
        assertArrayEquals(le64(Double.doubleToLongBits(2.0)), m.global("two").init);
        assertArrayEquals(le32(-2), m.global("neg").init);
        // Address initialisers are relocations: zero bytes, as in a cubin.
        assertArrayEquals(new byte[8], m.global("ptr").init);
        assertNull(m.global("a").init);
        assertEquals(4, m.global("a").size);
        assertArrayEquals(le32(7), m.global("b").init);
        byte[] c = m.global("c").init;
        assertArrayEquals(le32(8), Arrays.copyOfRange(c, 0, 4));
        assertArrayEquals(le32(9), Arrays.copyOfRange(c, 4, 8));
        assertEquals(3, m.global("open").size);
        assertArrayEquals(new byte[] {1, 0, 2, 0, 3, 0, 4, 0}, m.global("grid").init);
        assertEquals(8, m.global("vec").size);
        assertArrayEquals(new byte[] {0, 0, 0x40, 0x40, 0, 0, (byte) 0x80, 0x40}, m.global("vec").init);
        assertNull(m.global("notHere"));
        assertNull(m.global("tex"));
        assertNull(m.global("moduleShared"));

        long expectedOffset = 0;
        for (GlobalInfo g : m.globals) {
            assertEquals(g.name, expectedOffset, g.offset);
            expectedOffset += (g.size + 255) / 256 * 256;
        }
        assertEquals(expectedOffset, m.globalsSize);
    }

    @Test
    public void sharedDeclarationsInsideEntries() throws Exception {
        ModuleImage m = parse(HEADER + ".visible .entry k()\n{\n"
                + " .shared .align 4 .b8 a[6];\n .shared .align 8 .f64 b[2];\n"
                + " .extern .shared .align 16 .b8 dyn[];\n st.shared.u32 [a], 1;\n ret;\n}\n");
        // a at 0..6, b aligned to 8: 8..24
        assertEquals(24, m.kernel("k").sharedSizeBytes);
    }

    @Test
    public void nulTerminationAndTrailingBytes() throws Exception {
        byte[] text = (HEADER + ".visible .entry k(.param .u32 x)\n{ ret; }\n").getBytes(StandardCharsets.ISO_8859_1);
        byte[] withGarbage = Arrays.copyOf(text, text.length + 9);
        withGarbage[text.length + 3] = 'x';
        withGarbage[text.length + 8] = (byte) 0xff;
        ModuleImage m = ImageParser.parse(withGarbage, 90);
        assertEquals(ModuleImage.Format.PTX, m.format);
        assertEquals(4, m.kernel("k").paramBufferSize);
        assertNotNull(ImageParser.parse(text, 90).kernel("k"));
    }

    @Test
    public void malformedPtx() {
        String[] bad = {
            HEADER + ".visible .entry k(.param .u64",
            HEADER + ".visible .entry k(.param .u64 x\n{ ret; }",
            HEADER + ".visible .entry k(.param .u32 x)\n{ ret; ",
            HEADER + ".visible .entry k(.param .texref t)\n{ }",
            HEADER + ".visible .entry k(.param .align 3 .b8 x[4])\n{ }",
            HEADER + ".visible .entry k(.param .b8 x[99999999999999999999])\n{ }",
            HEADER + ".visible .entry k(.param .b8 x[70000])\n{ }",
            HEADER + ".global .u32 x = {1, 2};\n",
            HEADER + ".global .b8 huge[9223372036854775807] = {1};\n",
            HEADER + ".global .u32 deep[1] = " + "{".repeat(100000) + "1" + "}".repeat(100000) + ";\n",
            HEADER + ".global .u32 x = \n",
            HEADER + ")\n",
            ".version 9.0\n\"unterminated",
        };
        for (String ptx : bad) {
            try {
                parse(ptx);
                throw new AssertionError("parsed: " + ptx.substring(HEADER.length() - 1));
            } catch (ImageFormatException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().startsWith("PTX line"));
            }
        }
    }

    @Test
    public void absurdGlobalSizes() throws Exception {
        // Sizes alone cost nothing to declare; the region they would need is refused.
        try {
            parse(HEADER + ".global .b8 a[1099511627776];\n.global .b8 b[16];\n");
            throw new AssertionError("a 1 TiB + 16 B globals region was accepted");
        } catch (ImageFormatException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("absurdly large"));
        }
        // A zero inner dimension must not divide by zero while sizing the open one.
        assertEquals(0, parse(HEADER + ".global .u32 z[][0] = {};\n").global("z").size);
        try {
            parse(HEADER + ".global .u32 z[][0] = {1};\n");
            throw new AssertionError("an initialiser for a zero-size array was accepted");
        } catch (ImageFormatException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("too many initialisers"));
        }
    }

    private static byte[] le32(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }

    private static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }
}
