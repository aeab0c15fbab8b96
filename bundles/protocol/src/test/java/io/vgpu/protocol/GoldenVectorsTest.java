package io.vgpu.protocol;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.Test;

/**
 * Encodes every message kind through {@link Frame} and the {@link Wire} offsets, field by field,
 * and compares with the golden vectors the C shim's test checks too.
 */
public class GoldenVectorsTest {
    static byte[] readHex(Path p) throws Exception {
        String[] tokens = Files.readString(p).trim().split("\\s+");
        byte[] b = new byte[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            b[i] = (byte) Integer.parseInt(tokens[i], 16);
        }
        return b;
    }

    static byte[] encode(Wire.Message m) {
        int seed = ProtocolGenerator.seed(m.name());
        byte[] tail = m.tail() ? ProtocolGenerator.tailBytes(seed) : new byte[0];
        boolean record = m.name().startsWith("record.");
        int header = record ? 0 : Wire.HEADER;
        ByteBuffer b = ByteBuffer.allocate(header + m.fixedSize() + tail.length).order(ByteOrder.LITTLE_ENDIAN);
        if (!record) {
            int length = m.fixedSize() + tail.length;
            if (m.reply()) {
                Frame.putReplyHeader(b, 0, length, m.op(), 0, ProtocolGenerator.GOLDEN_SEQ, 0);
            } else {
                Frame.putRequestHeader(b, 0, length, m.op(), m.async() ? Wire.FLAG_ASYNC : 0, ProtocolGenerator.GOLDEN_SEQ);
            }
        }
        int i = 0;
        for (Wire.Field f : m.fields()) {
            if (f.type().equals("bytes")) {
                b.put(header + f.offset(), tail);
                continue;
            }
            int at = header + f.offset();
            if (f.type().equals("char")) {
                String s = ProtocolGenerator.charsValue(seed, i, new ProtocolGenerator.Field(f.type(), f.name(), f.count(), f.offset(), f.size()));
                Frame.putString(b, at, f.count(), s);
                assertEquals(s, Frame.string(b, at, f.count()));
            } else {
                int es = f.size() / f.count();
                for (int k = 0; k < f.count(); k++) {
                    long v = ProtocolGenerator.value(seed, i, k);
                    int p = at + k * es;
                    switch (f.type()) {
                        case "u8": b.put(p, (byte) v); break;
                        case "u16": b.putShort(p, (short) v); break;
                        case "u32": case "i32": b.putInt(p, (int) v); break;
                        case "u64": b.putLong(p, v); break;
                        case "f32": b.putFloat(p, ProtocolGenerator.floatValue(v)); break;
                        default: throw new AssertionError(f.type());
                    }
                }
            }
            i++;
        }
        return b.array();
    }

    @Test
    public void everyMessageKindMatchesItsGoldenVector() throws Exception {
        Path dir = GeneratedFilesTest.root().resolve("bundles/protocol/golden");
        int checked = 0;
        for (Wire.Message m : Wire.MESSAGES) {
            String file = m.name().startsWith("record.") ? m.name() + ".hex" : m.name() + ".hex";
            assertArrayEquals(m.name(), readHex(dir.resolve(file)), encode(m));
            checked++;
        }
        assertEquals(Wire.MESSAGES.length, checked);
    }

    @Test
    public void headersDecode() {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        Frame.putReplyHeader(b, 0, 77, Wire.LAUNCH, 1, 0x7fff_0001, -3);
        assertEquals(77, Frame.length(b));
        assertEquals(Wire.LAUNCH, Frame.op(b));
        assertEquals(1, Frame.flags(b));
        assertEquals(0x7fff_0001, Frame.seq(b));
        assertEquals(-3, Frame.result(b));
        assertEquals("LAUNCH", Wire.name(Frame.op(b)));
        assertEquals(true, Wire.asyncAllowed(Wire.LAUNCH));
        assertEquals(false, Wire.asyncAllowed(Wire.MEM_ALLOC));
    }
}
