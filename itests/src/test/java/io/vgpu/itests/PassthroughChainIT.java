package io.vgpu.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.backend.passthrough.PassthroughBackend;
import io.vgpu.backend.remote.internal.Configs;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.AfterClass;
import org.junit.Before;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.Test;
import org.junit.rules.ExternalResource;
import org.junit.rules.RuleChain;
import org.junit.rules.TestRule;

/**
 * The conformance suite against passthrough, for real through vgpu itself: JCuda binds the
 * driver API to vgpu's libcuda.so.1 (allowed by configuration), which sends it to a second
 * service (the distribution, on the mock) at this JVM's VGPU_SOCKET. Everything the backend does
 * with the driver (the window reserved at its base, physical memory mapped at the core's
 * addresses, modules from their images, launches with the packed parameters, streams and events)
 * crosses the same entry points as on a GPU host. Runs in failsafe's execution passthrough-chain.
 */
public class PassthroughChainIT extends CudaServiceConformance {
    static final String SOCKET = System.getenv("VGPU_SOCKET");
    /** Half of the host's window, at its base: the rest keeps room for the host's module globals. */
    static final long WINDOW_BASE = 0x2000_0000_0000L;
    static final long WINDOW_SIZE = 1L << 43;
    private static final AtomicLong NEXT_REGION = new AtomicLong(WINDOW_BASE);

    static final ServiceFixture HOST = new ServiceFixture().atSocket(SOCKET == null ? null : Path.of(SOCKET));
    static PassthroughBackend passthrough;

    @ClassRule
    public static final TestRule CHAIN = RuleChain.outerRule(new ExternalResource() {
        @Override
        protected void before() {
            assumeTrue("VGPU_SOCKET is not set for this JVM: PassthroughChainIT runs in failsafe's execution passthrough-chain",
                    SOCKET != null);
        }
    }).around(HOST);

    static Map<String, String> chainConfig() {
        return Map.of("backend.id", "passthrough", "driver.library",
                ServiceFixture.NATIVE.resolve("lib/libcuda.so.1").toString(), "driver.allow.vgpu", "true",
                "window.base", "0x" + Long.toHexString(WINDOW_BASE), "window.size", "0x" + Long.toHexString(WINDOW_SIZE));
    }

    @BeforeClass
    public static void bind() {
        passthrough = new PassthroughBackend(Configs.of(PassthroughBackend.Config.class, chainConfig()));
        if (!passthrough.info().available) {
            throw new AssertionError("passthrough did not come up: " + passthrough.info() + "\nhost log:\n" + HOST.log());
        }
    }

    @AfterClass
    public static void unbind() {
        if (passthrough != null) {
            passthrough.deactivate();
        }
    }

    /** Each test gets a stretch of the reserved window (the suite's own regions lie above the core's). */
    @Before
    public void regionInTheWindow() {
        base = NEXT_REGION.getAndAdd(1L << 36);
        assertTrue("the tests outgrew the reserved window", base + (1L << 36) <= WINDOW_BASE + WINDOW_SIZE);
    }

    @Override
    protected CudaService backend() {
        return passthrough;
    }

    @Override
    protected void provideKernel(String name, HostKernel kernel) {
        // The host's mock executes the kernel's PTX, which the driver API handed it as an image.
    }

    @Test
    public void theWorkReachesTheSecondServiceThroughVgpusShim() {
        assertTrue(passthrough.info().description, passthrough.info().description.endsWith(", through vgpu's shim to " + SOCKET));
        DeviceInfo d = passthrough.devices()[0];
        assertEquals("NVIDIA H100 80GB HBM3", d.name);
        ServiceFixture.Result sessions = HOST.ctl("sessions");
        assertEquals(sessions.toString(), 0, sessions.exit);
        // This JVM is the host's client: the shim's session carries its pid.
        String pid = Long.toString(ProcessHandle.current().pid());
        assertTrue(sessions.out, sessions.out.matches("(?s).*\\b" + pid + "\\b.*"));
    }
}
