package io.vgpu.api.dto;

/** A device global ({@code __device__} / {@code __constant__} variable) of a module image. */
public class GlobalInfo {
    public String name;
    public long size;
    /** Offset inside the module's globals region; the core places the region in the device address space. */
    public long offset;
    /** Initial bytes, or null for zero-initialised globals. */
    public byte[] init;
}
