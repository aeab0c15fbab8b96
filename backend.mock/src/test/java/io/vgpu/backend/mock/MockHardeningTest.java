package io.vgpu.backend.mock;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.LaunchConfig;
import io.vgpu.api.dto.ModuleImage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.Before;
import org.junit.Test;

/**
 * Issue 13: every size and address the mock is handed is checked, overflow-safe, before any work;
 * copies and fills are bounded and stop once their owner is abandoned; so is a kernel.
 */
public class MockHardeningTest {
    private static final long OWNER = 7;
    private static final long BASE = 0x2000_0000_0000L;
    private static final long MIB = 1L << 20;
    /** 2^63 - 4096: the size of the reported cuMemsetD8 / cuMemcpyDtoD. */
    private static final long HUGE = Long.MAX_VALUE - 4095;
    private MockBackend mock;
    private long ctx;

    @Before
    public void setUp() {
        mock = new MockBackend(MockBackendTest.defaults(java.util.Map.of()));
        long[] out = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER, out));
        ctx = out[0];
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE, MIB));
    }

    @Test(timeout = 10_000)
    public void aFillWhoseSizeWrapsPastTheAddressSpaceIsInvalidAtOnce() {
        // Used to pass the coverage check (the end wrapped negative) and then loop 2^43 times.
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0, 1, HUGE, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0x5a, 4, Long.MAX_VALUE / 4, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0, 1, -1, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, Long.MAX_VALUE - 10, 0, 1, 100, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memset(ctx, BASE, 0, 1, MIB + 1, 0));
        assertEquals(0, mock.materialisedBytes(0));
    }

    @Test(timeout = 10_000)
    public void aCopyWhoseSizeWrapsOrIsNegativeIsInvalidAtOnce() {
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoD(ctx, BASE + MIB - 1, BASE, HUGE, 0));
        // A negative size used to reach ByteBuffer.allocate: IllegalArgumentException "capacity < 0".
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoD(ctx, BASE, BASE, -1, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoD(ctx, BASE, BASE + 16, Long.MIN_VALUE, 0));
        assertEquals(CuResult.INVALID_VALUE, mock.memcpyDtoD(ctx, Long.MAX_VALUE - 10, BASE, 100, 0));
        assertEquals(CuResult.SUCCESS, mock.memcpyDtoD(ctx, BASE, BASE + 16, 0, 0));
        assertEquals(0, mock.materialisedBytes(0));
    }

    @Test
    public void mappingsThatWouldWrapAreRefused() {
        long[] h = new long[1];
        assertEquals(CuResult.SUCCESS, mock.memCreate(ctx, 2 * MIB, h));
        assertEquals(CuResult.INVALID_VALUE, mock.memMap(ctx, Long.MAX_VALUE - MIB, 2 * MIB, 0, h[0]));
        assertEquals(CuResult.INVALID_VALUE, mock.memMap(ctx, BASE + 4 * MIB, 2 * MIB, Long.MAX_VALUE - MIB, h[0]));
        assertEquals(CuResult.INVALID_VALUE, mock.memMap(ctx, BASE + 4 * MIB, -2 * MIB, 0, h[0]));
        assertEquals(CuResult.SUCCESS, mock.memMap(ctx, BASE + 4 * MIB, 2 * MIB, 0, h[0]));
    }

    @Test
    public void clearingMemoryNobodyWroteCostsNoHostMemory() {
        long big = 8L << 30;
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE + (1L << 40), big));
        assertEquals(CuResult.SUCCESS, mock.memset(ctx, BASE + (1L << 40), 0, 4, big / 4, 0));
        assertEquals(0, mock.materialisedBytes(0));
        // Written pages are cleared for real.
        ByteBuffer one = ByteBuffer.allocate(8).put(0, (byte) 9);
        mock.memcpyHtoD(ctx, BASE + (1L << 40) + 100, one, 0);
        assertEquals(CuResult.SUCCESS, mock.memset(ctx, BASE + (1L << 40), 0, 1, big, 0));
        ByteBuffer back = ByteBuffer.allocate(8);
        mock.memcpyDtoH(ctx, back, BASE + (1L << 40) + 100, 0);
        assertEquals(0, back.get(0));
    }

    @Test(timeout = 20_000)
    public void anAbandonedOwnersFillStopsBetweenPieces() throws Exception {
        long big = 8L << 30;
        assertEquals(CuResult.SUCCESS, mock.memAlloc(ctx, BASE + (1L << 40), big));
        mock.abandon(OWNER);
        assertEquals(CuResult.DEINITIALIZED, mock.memset(ctx, BASE + (1L << 40), 0x5a, 1, big, 0));
        assertEquals(CuResult.DEINITIALIZED, mock.memcpyDtoD(ctx, BASE + (1L << 40), BASE, MIB, 0));
        assertEquals(0, mock.materialisedBytes(0));
        // Destroying the owner's last context forgets it: a new context of that owner works again.
        assertEquals(CuResult.SUCCESS, mock.ctxDestroy(ctx));
        long[] out = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER, out));
        assertEquals(CuResult.SUCCESS, mock.memAlloc(out[0], BASE, MIB));
        assertEquals(CuResult.SUCCESS, mock.memset(out[0], BASE, 0x5a, 1, MIB, 0));
        // Abandoning an owner without contexts remembers nothing.
        mock.abandon(OWNER + 100);
        long[] other = new long[1];
        assertEquals(CuResult.SUCCESS, mock.ctxCreate(0, 0, OWNER + 100, other));
        assertEquals(CuResult.SUCCESS, mock.memAlloc(other[0], BASE + 2 * MIB, MIB));
        assertEquals(CuResult.SUCCESS, mock.memset(other[0], BASE + 2 * MIB, 1, 1, MIB, 0));
    }

    /** Spins on %globaltimer for the nanoseconds in its parameter: a valid, long kernel. */
    static final String SPIN_PTX = ".version 8.0\n.target sm_70\n.address_size 64\n"
            + ".visible .entry spin(.param .u64 ns)\n{\n"
            + "  .reg .pred %p;\n  .reg .b64 %rd<5>;\n"
            + "  ld.param.u64 %rd1, [ns];\n  mov.u64 %rd2, %globaltimer;\n"
            + "LOOP:\n  mov.u64 %rd3, %globaltimer;\n  sub.u64 %rd4, %rd3, %rd2;\n"
            + "  setp.lt.u64 %p, %rd4, %rd1;\n  @%p bra LOOP;\n  ret;\n}\n";

    @Test(timeout = 30_000)
    public void anAbandonedOwnersKernelStops() throws Exception {
        KernelInfo k = new KernelInfo();
        k.name = "spin";
        k.paramOffsets = new int[] {0};
        k.paramSizes = new int[] {8};
        k.paramBufferSize = 8;
        ModuleImage image = new ModuleImage();
        image.kernels.add(k);
        image.ptxSource = SPIN_PTX.getBytes(StandardCharsets.US_ASCII);
        long[] module = new long[1];
        long[] fn = new long[1];
        assertEquals(CuResult.SUCCESS, mock.moduleLoad(ctx, image, 0, module));
        assertEquals(CuResult.SUCCESS, mock.functionGet(module[0], "spin", fn));
        ByteBuffer quick = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1_000_000);
        assertEquals(CuResult.SUCCESS, mock.launch(fn[0], new LaunchConfig(1, 1, 1, 1, 1, 1, 0), quick, 0));

        ByteBuffer minute = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 60_000_000_000L);
        long t0 = System.nanoTime();
        CompletableFuture<Integer> run = CompletableFuture.supplyAsync(
                () -> mock.launch(fn[0], new LaunchConfig(2, 1, 1, 32, 1, 1, 0), minute, 0));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (mock.runningKernels() == 0) {
            assertTrue("the kernel starts", !run.isDone() && System.nanoTime() < deadline);
            Thread.onSpinWait();
        }
        mock.abandon(OWNER);
        assertEquals(CuResult.LAUNCH_FAILED, (int) run.get(10, TimeUnit.SECONDS));
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(10));
    }
}
