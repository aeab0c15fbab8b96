package io.vgpu.backend.passthrough.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class DriverLocatorTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    /** A library file in a directory of its own; {@code vgpu} makes it look like vgpu's shim. */
    private Path lib(String dir, boolean vgpu) throws Exception {
        Path d = tmp.getRoot().toPath().resolve(dir);
        Files.createDirectories(d);
        byte[] body = new byte[100_000];
        body[0] = 0x7f;
        if (vgpu) {
            System.arraycopy("VGPU_SOCKET".getBytes(StandardCharsets.US_ASCII), 0, body, 77_777, 11);
        }
        return Files.write(d.resolve(DriverLocator.LIBRARY), body);
    }

    private String dir(String name) {
        return tmp.getRoot().toPath().resolve(name).toString();
    }

    @Test
    public void skipsVgpusShimAndFindsNvidiasDriverBehindIt() throws Exception {
        lib("vgpu", true);
        Path nvidia = lib("nvidia", false);
        DriverLocator.Found f = DriverLocator.locate("", List.of(dir("empty"), dir("vgpu"), dir("nvidia")), false);
        assertEquals(nvidia.toRealPath(), f.library);
        assertFalse(f.vgpu);
    }

    @Test
    public void onlyVgpusShimIsNoDriverUnlessAllowed() throws Exception {
        Path shim = lib("vgpu", true);
        DriverLocator.Found f = DriverLocator.locate("", List.of(dir("vgpu")), false);
        assertNull(f.library);
        assertEquals("no NVIDIA driver (libcuda.so.1), only vgpu's shim at [" + shim + "] in " + dir("vgpu"), f.reason);
        DriverLocator.Found allowed = DriverLocator.locate("", List.of(dir("vgpu")), true);
        assertEquals(shim, allowed.library);
        assertTrue(allowed.vgpu);
    }

    @Test
    public void aConfiguredLibraryIsCheckedToo() throws Exception {
        Path shim = lib("vgpu", true);
        DriverLocator.Found refused = DriverLocator.locate(shim.toString(), List.of(), false);
        assertNull(refused.library);
        assertEquals("driver.library is vgpu's own shim, not NVIDIA's driver (driver.allow.vgpu allows it): " + shim,
                refused.reason);
        Path nvidia = lib("nvidia", false);
        assertEquals(nvidia, DriverLocator.locate(nvidia.toString(), List.of(dir("vgpu")), false).library);
        assertTrue(DriverLocator.locate("lib/libcuda.so.1", List.of(), true).reason.contains("not an absolute path"));
        assertTrue(DriverLocator.locate(dir("nowhere") + "/libcuda.so.1", List.of(), true).reason.contains("does not exist"));
    }

    @Test
    public void noDriverAnywhereSaysWhereItLooked() {
        DriverLocator.Found f = DriverLocator.locate("", List.of(dir("a"), dir("b")), true);
        assertNull(f.library);
        assertEquals("no NVIDIA driver (libcuda.so.1) in " + dir("a") + ", " + dir("b"), f.reason);
    }

    @Test
    public void findsTheMarkWhereverItLies() throws Exception {
        byte[] mark = "VGPU_SOCKET".getBytes(StandardCharsets.US_ASCII);
        // Across the 1 MiB reads, at the very start and at the very end.
        for (int at : new int[] {(1 << 20) - 5, 0, (3 << 20) - mark.length}) {
            byte[] body = new byte[3 << 20];
            System.arraycopy(mark, 0, body, at, mark.length);
            Path f = Files.write(tmp.newFile().toPath(), body);
            assertTrue("mark at " + at, DriverLocator.isVgpuShim(f));
            body[at + 10] = 'X';
            Files.write(f, body);
            assertFalse("broken mark at " + at, DriverLocator.isVgpuShim(f));
        }
    }

    @Test
    public void recognisesTheBuiltShim() throws Exception {
        Path shim = Path.of("../shim.bridge/target/native/lib/libcuda.so.1");
        assumeTrue("the shim is not built (shim.bridge)", Files.isRegularFile(shim));
        assertTrue(DriverLocator.isVgpuShim(shim));
        assertFalse(DriverLocator.isVgpuShim(Path.of(System.getProperty("java.home"), "lib/libjava.so")));
    }
}
