package io.vgpu.protocol;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns {@code bundles/protocol/protocol.spec} into the Java constants ({@code Wire.java}), the C
 * header of the shim ({@code gen/vgpu_protocol.h}) and golden byte vectors both sides' tests
 * compare against. Run by {@code GeneratedFilesTest}; {@code -Dvgpu.regenerate=true} rewrites.
 */
public final class ProtocolGenerator {
    static final int MAGIC = 0x55504756; // "VGPU"
    static final int MAJOR = 1;
    static final int MINOR = 3;
    static final int HEADER = 16;
    static final int GOLDEN_SEQ = 0x01020304;

    record Field(String type, String name, int count, int offset, int size) {
        boolean tail() {
            return type.equals("bytes");
        }

        boolean chars() {
            return type.equals("char");
        }
    }

    record Layout(List<Field> fields, int fixedSize, boolean tail) {
        boolean empty() {
            return fields.isEmpty();
        }
    }

    record Op(int number, String name, boolean async, boolean waits, Layout request, Layout reply) {
        /** Whether a reply to this op, sent without the ASYNC flag, carries a pending async error. */
        boolean deliversPending() {
            return async || waits;
        }
    }

    record Rec(String name, Layout layout) {}

    final List<Op> ops = new ArrayList<>();
    final List<Rec> records = new ArrayList<>();

    static int scalarSize(String t) {
        switch (t) {
            case "u8": case "char": return 1;
            case "u16": return 2;
            case "u32": case "i32": case "f32": return 4;
            case "u64": return 8;
            default: throw new IllegalArgumentException("unknown type " + t);
        }
    }

    private static final Pattern FIELD = Pattern.compile("(u8|u16|u32|i32|u64|f32|char|bytes)(?:\\[(\\d+)\\])?\\s+([a-z_][a-z0-9_]*)");

    static Layout layout(String text, String where) {
        List<Field> fields = new ArrayList<>();
        String t = text.trim();
        if (t.equals("-")) {
            return new Layout(fields, 0, false);
        }
        int offset = 0;
        boolean tail = false;
        for (String part : t.split(",")) {
            Matcher m = FIELD.matcher(part.trim());
            if (!m.matches()) {
                throw new IllegalArgumentException(where + ": bad field '" + part.trim() + "'");
            }
            if (tail) {
                throw new IllegalArgumentException(where + ": bytes must be the last field");
            }
            String type = m.group(1);
            int count = m.group(2) == null ? 1 : Integer.parseInt(m.group(2));
            if (type.equals("bytes")) {
                tail = true;
                fields.add(new Field(type, m.group(3), 0, offset, 0));
                continue;
            }
            int es = scalarSize(type);
            if (offset % es != 0) {
                throw new IllegalArgumentException(where + ": field " + m.group(3) + " at offset " + offset
                        + " is not aligned to " + es);
            }
            fields.add(new Field(type, m.group(3), count, offset, es * count));
            offset += es * count;
        }
        if (offset % 8 != 0 && fields.stream().anyMatch(f -> f.type.equals("u64"))) {
            throw new IllegalArgumentException(where + ": size " + offset + " is not a multiple of 8");
        }
        return new Layout(fields, offset, tail);
    }

    static ProtocolGenerator parse(String spec) {
        ProtocolGenerator g = new ProtocolGenerator();
        Pattern opLine = Pattern.compile("(\\d+)\\s+([A-Z0-9_]+)\\s+(sync|async|wait)\\s*:(.*)->(.*)");
        Pattern recLine = Pattern.compile("record\\s+([A-Z0-9_]+)\\s*:(.*)");
        Map<Integer, String> numbers = new LinkedHashMap<>();
        for (String raw : spec.split("\n")) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            Matcher r = recLine.matcher(line);
            if (r.matches()) {
                g.records.add(new Rec(r.group(1), layout(r.group(2), r.group(1))));
                continue;
            }
            Matcher m = opLine.matcher(line);
            if (!m.matches()) {
                throw new IllegalArgumentException("bad spec line: " + line);
            }
            int n = Integer.parseInt(m.group(1));
            if (n <= 0 || n > 0xffff || numbers.put(n, m.group(2)) != null) {
                throw new IllegalArgumentException("op number " + n + " is invalid or used twice");
            }
            g.ops.add(new Op(n, m.group(2), m.group(3).equals("async"), m.group(3).equals("wait"), layout(m.group(4), m.group(2) + " request"),
                    layout(m.group(5), m.group(2) + " reply")));
        }
        return g;
    }

    static String camel(String upper) {
        StringBuilder sb = new StringBuilder();
        for (String w : upper.toLowerCase(Locale.ROOT).split("_")) {
            sb.append(Character.toUpperCase(w.charAt(0))).append(w.substring(1));
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------ Java

    String java() {
        StringBuilder j = new StringBuilder();
        j.append("// Generated by ProtocolGenerator from bundles/protocol/protocol.spec. DO NOT EDIT.\n");
        j.append("package io.vgpu.protocol;\n\n");
        j.append("/** Op numbers, field offsets and sizes of the vgpu wire protocol (docs/PROTOCOL.md). */\n");
        j.append("public final class Wire {\n    private Wire() {}\n\n");
        j.append("    public static final int MAGIC = 0x").append(Integer.toHexString(MAGIC)).append(";\n");
        j.append("    public static final int MAJOR = ").append(MAJOR).append(";\n");
        j.append("    public static final int MINOR = ").append(MINOR).append(";\n");
        j.append("    public static final int HEADER = ").append(HEADER).append(";\n");
        j.append("    /** Header flag: the sender does not wait for a reply. */\n");
        j.append("    public static final int FLAG_ASYNC = 1;\n\n");
        for (Op op : ops) {
            j.append("    public static final int ").append(op.name).append(" = ").append(op.number).append(";\n");
        }
        j.append("\n    /** A field as the spec declares it; {@code type} is u8, u16, u32, i32, u64, f32, char or bytes. */\n");
        j.append("    public record Field(String type, String name, int count, int offset, int size) {}\n\n");
        j.append("    /** One message kind: an op's request or reply, or a record. */\n");
        j.append("    public record Message(String name, int op, boolean reply, boolean async, int fixedSize, boolean tail, Field... fields) {}\n\n");
        for (Op op : ops) {
            j.append("    public static final class ").append(camel(op.name)).append(" {\n");
            j.append("        private ").append(camel(op.name)).append("() {}\n\n");
            j.append("        public static final int OP = ").append(op.number).append(";\n");
            j.append("        public static final boolean ASYNC = ").append(op.async).append(";\n");
            constants(j, "REQ", op.request);
            constants(j, "REP", op.reply);
            j.append("    }\n\n");
        }
        for (Rec r : records) {
            j.append("    public static final class ").append(camel(r.name)).append(" {\n");
            j.append("        private ").append(camel(r.name)).append("() {}\n\n");
            constants(j, "", r.layout);
            j.append("    }\n\n");
        }
        j.append("    /** Every message kind, for tests and tracing. */\n");
        j.append("    public static final Message[] MESSAGES = {\n");
        for (Op op : ops) {
            message(j, op.name + ".req", op.number, false, op.async, op.request);
            message(j, op.name + ".rep", op.number, true, false, op.reply);
        }
        for (Rec r : records) {
            message(j, "record." + r.name, 0, false, false, r.layout);
        }
        j.append("    };\n\n");
        j.append("    public static String name(int op) {\n        switch (op) {\n");
        for (Op op : ops) {
            j.append("            case ").append(op.number).append(": return \"").append(op.name).append("\";\n");
        }
        j.append("            default: return \"OP_\" + op;\n        }\n    }\n\n");
        j.append("    /** Whether the spec allows {@code op} to be sent without waiting for a reply. */\n");
        j.append("    public static boolean asyncAllowed(int op) {\n        switch (op) {\n");
        for (Op op : ops) {
            if (op.async) {
                j.append("            case ").append(op.number).append(":\n");
            }
        }
        j.append("                return true;\n            default:\n                return false;\n        }\n    }\n\n");
        j.append("    /**\n     * Whether the reply to {@code op}, sent without the ASYNC flag, carries an error an earlier\n"
                + "     * async request left pending: synchronizing requests do, others answer for themselves only.\n     */\n");
        j.append("    public static boolean deliversPending(int op) {\n        switch (op) {\n");
        for (Op op : ops) {
            if (op.deliversPending()) {
                j.append("            case ").append(op.number).append(":\n");
            }
        }
        j.append("                return true;\n            default:\n                return false;\n        }\n    }\n}\n");
        return j.toString();
    }

    private static void constants(StringBuilder j, String prefix, Layout l) {
        String p = prefix.isEmpty() ? "" : prefix + "_";
        for (Field f : l.fields) {
            j.append("        public static final int ").append(p).append(f.name.toUpperCase(Locale.ROOT)).append(" = ")
                    .append(f.offset).append(";\n");
        }
        j.append("        public static final int ").append(p).append("FIXED = ").append(l.fixedSize).append(";\n");
        j.append("        public static final boolean ").append(p).append("TAIL = ").append(l.tail).append(";\n");
    }

    private static void message(StringBuilder j, String name, int op, boolean reply, boolean async, Layout l) {
        j.append("        new Message(\"").append(name).append("\", ").append(op).append(", ").append(reply).append(", ")
                .append(async).append(", ").append(l.fixedSize).append(", ").append(l.tail);
        for (Field f : l.fields) {
            j.append(",\n                new Field(\"").append(f.type).append("\", \"").append(f.name).append("\", ")
                    .append(f.count).append(", ").append(f.offset).append(", ").append(f.size).append(")");
        }
        j.append("),\n");
    }

    // ------------------------------------------------------------------ C

    static String cType(String t) {
        switch (t) {
            case "u8": return "uint8_t";
            case "char": return "char";
            case "u16": return "uint16_t";
            case "u32": return "uint32_t";
            case "i32": return "int32_t";
            case "u64": return "uint64_t";
            case "f32": return "float";
            default: throw new IllegalArgumentException(t);
        }
    }

    String c() {
        StringBuilder c = new StringBuilder();
        c.append("/* Generated by ProtocolGenerator from bundles/protocol/protocol.spec. DO NOT EDIT. */\n");
        c.append("#pragma once\n#include <stddef.h>\n#include <stdint.h>\n\n");
        c.append("#define VGPU_PROTOCOL_MAGIC 0x").append(Integer.toHexString(MAGIC)).append("u\n");
        c.append("#define VGPU_PROTOCOL_MAJOR ").append(MAJOR).append("\n");
        c.append("#define VGPU_PROTOCOL_MINOR ").append(MINOR).append("\n");
        c.append("#define VGPU_FRAME_HEADER_SIZE ").append(HEADER).append("\n");
        c.append("#define VGPU_FLAG_ASYNC 0x1\n\n");
        c.append("struct vgpu_req_header {\n    uint32_t length;\n    uint16_t op;\n    uint16_t flags;\n    uint32_t seq;\n    uint32_t reserved;\n};\n");
        c.append("struct vgpu_rep_header {\n    uint32_t length;\n    uint16_t op;\n    uint16_t flags;\n    uint32_t seq;\n    int32_t result;\n};\n");
        c.append("_Static_assert(sizeof(struct vgpu_req_header) == 16, \"request header\");\n");
        c.append("_Static_assert(sizeof(struct vgpu_rep_header) == 16, \"reply header\");\n\n");
        c.append("enum vgpu_op {\n");
        for (Op op : ops) {
            c.append("    VGPU_OP_").append(op.name).append(" = ").append(op.number).append(",\n");
        }
        c.append("};\n\n");
        for (Op op : ops) {
            struct(c, op.name.toLowerCase(Locale.ROOT) + "_req", op.request);
            struct(c, op.name.toLowerCase(Locale.ROOT) + "_rep", op.reply);
        }
        for (Rec r : records) {
            struct(c, r.name.toLowerCase(Locale.ROOT) + "_rec", r.layout);
        }
        c.append("static inline const char *vgpu_op_name(unsigned op)\n{\n    switch (op) {\n");
        for (Op op : ops) {
            c.append("    case ").append(op.number).append(": return \"").append(op.name).append("\";\n");
        }
        c.append("    default: return \"unknown\";\n    }\n}\n\n");
        c.append("static inline int vgpu_op_async_allowed(unsigned op)\n{\n    switch (op) {\n");
        for (Op op : ops) {
            if (op.async) {
                c.append("    case ").append(op.number).append(":\n");
            }
        }
        c.append("        return 1;\n    default:\n        return 0;\n    }\n}\n\n");
        c.append("/* Whether the reply to op, sent synchronously, carries an error an earlier async request left pending. */\n");
        c.append("static inline int vgpu_op_delivers_pending(unsigned op)\n{\n    switch (op) {\n");
        for (Op op : ops) {
            if (op.deliversPending()) {
                c.append("    case ").append(op.number).append(":\n");
            }
        }
        c.append("        return 1;\n    default:\n        return 0;\n    }\n}\n");
        return c.toString();
    }

    private static void struct(StringBuilder c, String name, Layout l) {
        String n = "vgpu_" + name;
        c.append("#define ").append(n.toUpperCase(Locale.ROOT)).append("_SIZE ").append(l.fixedSize).append("\n");
        if (l.fixedSize == 0) {
            c.append("\n");
            return;
        }
        c.append("struct ").append(n).append(" {\n");
        for (Field f : l.fields) {
            if (f.tail()) {
                c.append("    /* followed by ").append(f.name).append(" bytes */\n");
                continue;
            }
            c.append("    ").append(cType(f.type)).append(' ').append(f.name);
            if (f.chars() || f.count > 1) {
                c.append('[').append(f.count).append(']');
            }
            c.append(";\n");
        }
        c.append("};\n");
        c.append("_Static_assert(sizeof(struct ").append(n).append(") == ").append(l.fixedSize).append(", \"").append(n).append("\");\n");
        for (Field f : l.fields) {
            if (!f.tail()) {
                c.append("_Static_assert(offsetof(struct ").append(n).append(", ").append(f.name).append(") == ")
                        .append(f.offset).append(", \"").append(n).append('.').append(f.name).append("\");\n");
            }
        }
        c.append("\n");
    }

    /** C code filling each message with the golden values by field name, for the shim's golden test. */
    String cGolden() {
        StringBuilder c = new StringBuilder();
        c.append("/* Generated by ProtocolGenerator from bundles/protocol/protocol.spec. DO NOT EDIT. */\n");
        c.append("/* Fills every message with the values of the golden vectors, field by field by name. */\n");
        c.append("#include <string.h>\n#include \"vgpu_protocol.h\"\n\n");
        c.append("struct vgpu_golden {\n    const char *name;\n    uint16_t op;\n    int reply;\n    int async;\n    size_t fixed_size;\n");
        c.append("    int tail;\n    void (*fill)(void *msg);\n    const unsigned char *tail_bytes;\n    size_t tail_size;\n};\n\n");
        List<String> entries = new ArrayList<>();
        for (Op op : ops) {
            entries.add(goldenFill(c, op.name + ".req", op.number, op.request, op.async, false, op.name.toLowerCase(Locale.ROOT) + "_req"));
            entries.add(goldenFill(c, op.name + ".rep", op.number, op.reply, false, true, op.name.toLowerCase(Locale.ROOT) + "_rep"));
        }
        for (Rec r : records) {
            entries.add(goldenFill(c, "record." + r.name, 0, r.layout, false, false, r.name.toLowerCase(Locale.ROOT) + "_rec"));
        }
        c.append("static const struct vgpu_golden vgpu_golden_messages[] = {\n");
        for (String e : entries) {
            c.append(e);
        }
        c.append("};\n");
        return c.toString();
    }

    private String goldenFill(StringBuilder c, String name, int op, Layout l, boolean async, boolean reply, String struct) {
        String fn = "golden_" + name.replace('.', '_').toLowerCase(Locale.ROOT);
        int seed = seed(name);
        String tailArray = "NULL";
        int tailSize = 0;
        if (l.tail) {
            byte[] t = tailBytes(seed);
            tailArray = fn + "_tail";
            tailSize = t.length;
            c.append("static const unsigned char ").append(tailArray).append("[] = {");
            for (int i = 0; i < t.length; i++) {
                c.append(i == 0 ? "" : ", ").append(String.format("0x%02x", t[i] & 0xff));
            }
            c.append("};\n");
        }
        String fill = "NULL";
        if (l.fixedSize > 0) {
            fill = fn;
            c.append("static void ").append(fn).append("(void *msg)\n{\n");
            c.append("    struct vgpu_").append(struct).append(" *m = msg;\n");
            int i = 0;
            for (Field f : l.fields) {
                if (f.tail()) {
                    continue;
                }
                if (f.chars()) {
                    c.append("    memset(m->").append(f.name).append(", 0, sizeof m->").append(f.name).append(");\n");
                    c.append("    memcpy(m->").append(f.name).append(", \"").append(charsValue(seed, i, f)).append("\", ")
                            .append(charsValue(seed, i, f).length()).append(");\n");
                } else if (f.count > 1) {
                    for (int k = 0; k < f.count; k++) {
                        c.append("    m->").append(f.name).append('[').append(k).append("] = ")
                                .append(cLiteral(f.type, value(seed, i, k))).append(";\n");
                    }
                } else {
                    c.append("    m->").append(f.name).append(" = ").append(cLiteral(f.type, value(seed, i, 0))).append(";\n");
                }
                i++;
            }
            c.append("}\n");
        }
        c.append("\n");
        return "    {\"" + name + "\", " + op + ", " + (reply ? 1 : 0) + ", " + (async ? 1 : 0) + ", " + l.fixedSize + ", "
                + (l.tail ? 1 : 0) + ", " + fill + ", " + (l.tail ? tailArray : "NULL") + ", " + tailSize + "},\n";
    }

    static int seed(String name) {
        int h = 17;
        for (char ch : name.toCharArray()) {
            h = h * 31 + ch;
        }
        return h;
    }

    /** The golden value of field {@code i} (element {@code k}): distinct bytes, so a misplaced field shows. */
    static long value(int seed, int i, int k) {
        long x = (seed * 0x9E3779B97F4A7C15L) ^ ((long) (i + 1) << 40) ^ ((long) k * 0x100000001B3L);
        x ^= x >>> 29;
        x *= 0xBF58476D1CE4E5B9L;
        return x ^ (x >>> 32);
    }

    static String charsValue(int seed, int i, Field f) {
        String s = f.name + "-" + Integer.toHexString(seed & 0xffff) + "-" + i;
        return s.length() < f.count ? s : s.substring(0, f.count - 1);
    }

    static byte[] tailBytes(int seed) {
        byte[] t = new byte[5 + Math.floorMod(seed, 11)];
        for (int i = 0; i < t.length; i++) {
            t[i] = (byte) (seed >>> (i % 4 * 8) ^ i * 37);
        }
        return t;
    }

    static String cLiteral(String type, long v) {
        switch (type) {
            case "u8": return String.format("0x%02xu", v & 0xff);
            case "u16": return String.format("0x%04xu", v & 0xffff);
            case "u32": return String.format("0x%08xu", v & 0xffffffffL);
            case "i32": return "(int32_t)" + String.format("0x%08xu", v & 0xffffffffL);
            case "u64": return String.format("0x%016xull", v);
            case "f32": return Float.toString(floatValue(v)) + "f";
            default: throw new IllegalArgumentException(type);
        }
    }

    /** A float with an exact short decimal form, so the C literal round-trips. */
    static float floatValue(long v) {
        return (int) (v & 0xffff) / 4.0f;
    }

    /** The golden frame of one message: header plus payload, as hex lines of 16 bytes. */
    static byte[] goldenFrame(String name, int op, Layout l, boolean async, boolean reply) {
        int seed = seed(name);
        byte[] tail = l.tail ? tailBytes(seed) : new byte[0];
        boolean record = name.startsWith("record.");
        ByteBuffer b = ByteBuffer.allocate((record ? 0 : HEADER) + l.fixedSize + tail.length).order(ByteOrder.LITTLE_ENDIAN);
        if (!record) {
            b.putInt(l.fixedSize + tail.length).putShort((short) op).putShort((short) (async ? 1 : 0)).putInt(GOLDEN_SEQ)
                    .putInt(reply ? 0 : 0);
        }
        int base = b.position();
        int i = 0;
        for (Field f : l.fields) {
            if (f.tail()) {
                continue;
            }
            int at = base + f.offset;
            if (f.chars()) {
                byte[] s = charsValue(seed, i, f).getBytes(StandardCharsets.US_ASCII);
                b.put(at, s, 0, s.length);
            } else {
                int es = scalarSize(f.type);
                for (int k = 0; k < f.count; k++) {
                    long v = value(seed, i, k);
                    int p = at + k * es;
                    switch (f.type) {
                        case "u8": b.put(p, (byte) v); break;
                        case "u16": b.putShort(p, (short) v); break;
                        case "u32": case "i32": b.putInt(p, (int) v); break;
                        case "u64": b.putLong(p, v); break;
                        case "f32": b.putFloat(p, floatValue(v)); break;
                        default: throw new IllegalArgumentException(f.type);
                    }
                }
            }
            i++;
        }
        b.position(base + l.fixedSize);
        b.put(tail);
        return b.array();
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < bytes.length; i++) {
            sb.append(String.format("%02x", bytes[i] & 0xff)).append(i % 16 == 15 || i == bytes.length - 1 ? "\n" : " ");
        }
        return sb.toString();
    }

    /** Golden vectors: file name → contents. */
    Map<String, String> golden() {
        Map<String, String> out = new LinkedHashMap<>();
        for (Op op : ops) {
            out.put(op.name + ".req.hex", hex(goldenFrame(op.name + ".req", op.number, op.request, op.async, false)));
            out.put(op.name + ".rep.hex", hex(goldenFrame(op.name + ".rep", op.number, op.reply, false, true)));
        }
        for (Rec r : records) {
            out.put("record." + r.name + ".hex", hex(goldenFrame("record." + r.name, 0, r.layout, false, false)));
        }
        return out;
    }

    /** Every generated file, by path relative to the repository root. */
    Map<String, String> outputs() {
        Map<String, String> out = new LinkedHashMap<>();
        out.put("bundles/protocol/src/main/java/io/vgpu/protocol/Wire.java", java());
        out.put("shim.bridge/native/gen/vgpu_protocol.h", c());
        out.put("shim.bridge/native/gen/vgpu_protocol_golden.h", cGolden());
        for (Map.Entry<String, String> e : golden().entrySet()) {
            out.put("bundles/protocol/golden/" + e.getKey(), e.getValue());
        }
        return out;
    }

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        ProtocolGenerator g = parse(Files.readString(root.resolve("bundles/protocol/protocol.spec")));
        for (Map.Entry<String, String> e : g.outputs().entrySet()) {
            Path p = root.resolve(e.getKey());
            Files.createDirectories(p.getParent());
            Files.writeString(p, e.getValue());
        }
    }
}
