package io.vgpu.backend.passthrough;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.BackendInfo;
import java.lang.annotation.Annotation;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** Without a driver the backend is unavailable with the reason, and every call says so. */
public class PassthroughBackendTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    static PassthroughBackend.Config config(String search, String library) {
        return new PassthroughBackend.Config() {
            public Class<? extends Annotation> annotationType() { return PassthroughBackend.Config.class; }
            public String backend_id() { return "gpu0"; }
            public String driver_library() { return library; }
            public String driver_search() { return search; }
            public boolean driver_allow_vgpu() { return false; }
            public String window_base() { return "0x200000000000"; }
            public String window_size() { return "0x100000000000"; }
        };
    }

    @Test
    public void noDriverIsUnavailableWithTheReason() throws Exception {
        PassthroughBackend b = new PassthroughBackend(config(tmp.getRoot().toString(), ""));
        BackendInfo info = b.info();
        assertFalse(info.available);
        assertEquals("gpu0", info.id);
        assertEquals("no NVIDIA driver (libcuda.so.1) in " + tmp.getRoot(), info.reason);
        assertEquals(0, b.devices().length);
        assertEquals(CuResult.DEVICE_UNAVAILABLE, b.ctxCreate(0, 0, 1, new long[1]));
        assertEquals(CuResult.DEVICE_UNAVAILABLE, b.memGetInfo(0, new long[2]));
        assertEquals(CuResult.INVALID_CONTEXT, b.memAlloc(1, 0x200000000000L, 4096));
    }

    @Test
    public void aDriverThatIsNotALibraryIsUnavailableWithTheLoadersWords() throws Exception {
        java.nio.file.Path fake = tmp.newFile("libcuda.so.1").toPath();
        java.nio.file.Files.writeString(fake, "not an ELF file");
        PassthroughBackend b = new PassthroughBackend(config("", fake.toString()));
        assertFalse(b.info().available);
        assertTrue(b.info().reason, b.info().reason.startsWith("cannot load " + fake + ": "));
    }
}
