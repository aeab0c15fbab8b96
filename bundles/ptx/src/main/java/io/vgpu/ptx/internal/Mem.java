package io.vgpu.ptx.internal;

/** State spaces as the compiled code names them. */
public final class Mem {
    private Mem() {}

    public static final int GENERIC = 0, GLOBAL = 1, SHARED = 2, LOCAL = 3, PARAM = 4;

    public static int of(java.util.List<String> mods) {
        for (String m : mods) {
            switch (m) {
                case "global": return GLOBAL;
                case "const": return GLOBAL;
                case "shared": case "shared::cta": case "shared::cluster": return SHARED;
                case "local": return LOCAL;
                case "param": case "param::entry": case "param::func": return PARAM;
                default:
            }
        }
        return GENERIC;
    }
}
