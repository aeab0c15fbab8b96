package io.vgpu.ptx.internal;

/** Placeholder, replaced by the executor. */
public final class Warp {
}
