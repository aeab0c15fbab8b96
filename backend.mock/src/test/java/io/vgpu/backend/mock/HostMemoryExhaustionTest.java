package io.vgpu.backend.mock;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.Test;

/**
 * A mock whose host runs out of memory for pages answers {@code CUDA_ERROR_OUT_OF_MEMORY} to the
 * copy that needed one, keeps what it holds, and works again once memory is freed. Runs in a JVM
 * of its own with 48 MiB for memory outside the heap, so the limit is reached in a moment.
 */
public class HostMemoryExhaustionTest {
    private static final long BASE = 0x2000_0000_0000L;
    private static final int PIECE = 4 << 20;

    @Test
    public void copiesFailWithOutOfMemoryAndRecoverAfterAFree() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-XX:MaxDirectMemorySize=48m", "-Xmx256m", "-cp",
                System.getProperty("java.class.path"), HostMemoryExhaustionTest.class.getName())
                .redirectErrorStream(true).start();
        assertTrue("the child JVM ends", p.waitFor(60, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        System.out.print(out);
        assertEquals(out, 0, p.exitValue());
        assertTrue(out, out.contains("full: CUDA_ERROR_OUT_OF_MEMORY"));
        assertTrue(out, out.contains("earlier pieces intact: true"));
        assertTrue(out, out.contains("after a free: CUDA_SUCCESS"));
        assertTrue(out, out.contains("the host has no memory left for simulated device pages"));
    }

    /** The child: fills a 256 MiB allocation in 4 MiB pieces until the host says no. */
    public static void main(String[] args) {
        MockBackend mock = new MockBackend(MockBackendTest.defaults(java.util.Map.of()));
        long[] out = new long[1];
        check(mock.ctxCreate(0, 0, 1, out));
        long ctx = out[0];
        check(mock.memAlloc(ctx, BASE, 256L << 20));
        check(mock.memAlloc(ctx, BASE + (256L << 20), PIECE));
        int rc = CuResult.SUCCESS;
        int pieces = 0;
        for (; rc == CuResult.SUCCESS && pieces < 64; pieces++) {
            rc = mock.memcpyHtoD(ctx, BASE + (long) pieces * PIECE, piece(pieces), 0);
        }
        System.out.println("full: " + CuResult.name(rc) + " at piece " + (pieces - 1));
        boolean intact = true;
        for (int i = 0; i < pieces - 1; i++) {
            ByteBuffer back = ByteBuffer.allocate(PIECE);
            intact &= mock.memcpyDtoH(ctx, back, BASE + (long) i * PIECE, 0) == CuResult.SUCCESS && back.flip().equals(piece(i));
        }
        System.out.println("earlier pieces intact: " + intact);
        check(mock.memFree(ctx, BASE));
        System.out.println("after a free: " + CuResult.name(mock.memcpyHtoD(ctx, BASE + (256L << 20), piece(7), 0)));
    }

    private static ByteBuffer piece(int i) {
        ByteBuffer b = ByteBuffer.allocate(PIECE);
        for (int k = 0; k < PIECE; k += 4096) {
            b.put(k, (byte) (i + k / 4096));
        }
        return b;
    }

    private static void check(int rc) {
        if (rc != CuResult.SUCCESS) {
            throw new IllegalStateException(CuResult.name(rc));
        }
    }
}
