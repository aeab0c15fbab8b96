package io.vgpu.ptx.internal;

/** PTX fundamental types. */
public final class Types {
    private Types() {}

    public static boolean isType(String t) {
        return size(t) > 0;
    }

    /** Bytes of a fundamental type ("u32" gives 4); 0 if not a type. "pred" counts as 1. */
    public static int size(String t) {
        switch (t) {
            case "b8": case "u8": case "s8": case "pred": case "e4m3": case "e5m2":
                return 1;
            case "b16": case "u16": case "s16": case "f16": case "bf16":
                return 2;
            case "b32": case "u32": case "s32": case "f32": case "f16x2": case "bf16x2": case "tf32": case "u16x2": case "s16x2":
            case "e4m3x2": case "e5m2x2":
                return 4;
            case "b64": case "u64": case "s64": case "f64":
                return 8;
            case "b128":
                return 16;
            default:
                return 0;
        }
    }

    public static boolean isSigned(String t) {
        return t.charAt(0) == 's';
    }

    public static boolean isFloat(String t) {
        return t.charAt(0) == 'f' || t.startsWith("bf") || t.equals("tf32");
    }
}
