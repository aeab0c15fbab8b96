package io.vgpu.ptx.internal;

public final class Isa {
    private Isa() {}

    public static boolean supports(String form) {
        return false;
    }
}
