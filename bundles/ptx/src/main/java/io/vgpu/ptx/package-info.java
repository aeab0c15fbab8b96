/**
 * A PTX execution engine: {@link io.vgpu.ptx.PtxProgram} parses PTX text, {@link io.vgpu.ptx.PtxKernel}
 * is one entry compiled to warp code, and {@link io.vgpu.ptx.PtxExecutor} runs a grid of it over a
 * worker pool against a {@link io.vgpu.ptx.GlobalMemory}.
 */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("1.1.0")
package io.vgpu.ptx;
