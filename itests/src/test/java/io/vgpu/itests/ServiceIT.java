package io.vgpu.itests;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.dto.DeviceInfo;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.api.session.SessionManager;
import java.nio.ByteBuffer;
import java.util.Hashtable;
import java.util.Random;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.service.cm.ConfigurationAdmin;

/** The service foundation end to end: the mock, the router, hot swap by configuration, and losing the backend. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ServiceIT {
    @Inject
    BundleContext bc;

    @Inject
    ConfigurationAdmin configAdmin;

    @Inject
    SessionManager sessions;

    @Configuration
    public Option[] config() {
        return new Option[] {VgpuOptions.service()};
    }

    private Session open(String name) {
        ClientInfo c = new ClientInfo();
        c.pid = 4242;
        c.uid = 1000;
        c.processName = name;
        c.transport = "test";
        return sessions.open(c);
    }

    private static long alloc(Session s, long ctx, byte[] data) {
        long[] p = new long[1];
        assertEquals(CuResult.SUCCESS, s.memAlloc(ctx, data.length, p));
        assertEquals(CuResult.SUCCESS, s.memcpyHtoD(ctx, p[0], ByteBuffer.wrap(data), 0));
        return p[0];
    }

    private static byte[] read(Session s, long ctx, long ptr, int n) {
        ByteBuffer b = ByteBuffer.allocate(n);
        assertEquals(CuResult.SUCCESS, s.memcpyDtoH(ctx, b, ptr, 0));
        return b.array();
    }

    private static long context(Session s) {
        long[] c = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, c));
        return c[0];
    }

    @Test
    public void theServiceLifecycle() throws Exception {
        // 1. The mock is registered and describes an H100.
        Await.until(5000, () -> assertTrue(sessions.status().backendPresent));
        assertEquals("mock", sessions.status().activeBackend);
        Session a = open("first");
        assertEquals(CuResult.SUCCESS, a.check());
        DeviceInfo h100 = a.devices()[0];
        assertEquals("NVIDIA H100 80GB HBM3", h100.name);
        assertEquals(81920L << 20, h100.totalMemory);

        // 2. Allocate, copy, free through the router, bytes checked.
        long ctxA = context(a);
        byte[] data = new byte[3 << 20];
        new Random(11).nextBytes(data);
        long ptrA = alloc(a, ctxA, data);
        assertArrayEquals(data, read(a, ctxA, ptrA, data.length));
        long[] scratch = new long[1];
        assertEquals(CuResult.SUCCESS, a.memAlloc(ctxA, 4096, scratch));
        assertEquals(CuResult.SUCCESS, a.memFree(ctxA, scratch[0]));
        assertEquals(CuResult.INVALID_VALUE, a.memcpyDtoH(ctxA, ByteBuffer.allocate(16), scratch[0], 0));
        assertEquals(CuResult.INVALID_VALUE, a.memFree(ctxA, scratch[0]));

        // 3. A second mock with another name and size; switch the router to it by configuration.
        org.osgi.service.cm.Configuration second = configAdmin.getFactoryConfiguration("io.vgpu.backend.mock.gpu", "a100", "?");
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("backend.id", "mock2");
        props.put("name", "NVIDIA A100-SXM4-40GB");
        props.put("memory.mib", 40960L);
        props.put("cc.major", 8);
        second.update(props);
        Await.until(5000, () -> assertTrue(sessions.backends().stream().anyMatch(b -> b.id.equals("mock2"))));
        org.osgi.service.cm.Configuration router = configAdmin.getConfiguration("io.vgpu.router", "?");
        Hashtable<String, Object> use = new Hashtable<>();
        use.put("backend", "mock2");
        router.update(use);
        Await.until(5000, () -> assertEquals("mock2", sessions.status().activeBackend));

        Session b = open("second");
        DeviceInfo a100 = b.devices()[0];
        assertEquals("NVIDIA A100-SXM4-40GB", a100.name);
        assertEquals(40960L << 20, a100.totalMemory);
        long ctxB = context(b);
        byte[] other = new byte[1000];
        new Random(12).nextBytes(other);
        long ptrB = alloc(b, ctxB, other);
        assertArrayEquals(other, read(b, ctxB, ptrB, other.length));
        // The existing session stays on the first mock and keeps its data.
        assertEquals("NVIDIA H100 80GB HBM3", a.devices()[0].name);
        assertArrayEquals(data, read(a, ctxA, ptrA, data.length));
        // Sessions cannot read each other's memory, whatever backend they are on.
        assertEquals(CuResult.INVALID_VALUE, b.memcpyDtoH(ctxB, ByteBuffer.allocate(16), ptrA, 0));
        b.close();

        // Back to the first mock through the command path.
        sessions.use("mock");
        Await.until(5000, () -> assertEquals("mock", sessions.status().activeBackend));

        // 4. Stop the mock bundle: no backend, a clear status and a CUDA error, no exception.
        Bundle mockBundle = findBundle("io.vgpu.backend.mock");
        mockBundle.stop();
        Await.until(5000, () -> assertFalse(sessions.status().backendPresent));
        assertTrue(sessions.status().message, sessions.status().message.contains("no backend"));
        Session c = open("while-down");
        assertEquals(CuResult.NO_DEVICE, c.check());
        assertEquals(0, c.devices().length);
        assertEquals(CuResult.NO_DEVICE, c.ctxCreate(0, 0, new long[1]));
        // The session whose backend vanished reports it unavailable.
        assertEquals(CuResult.DEVICE_UNAVAILABLE, a.check());
        assertEquals(CuResult.DEVICE_UNAVAILABLE, a.memcpyDtoH(ctxA, ByteBuffer.allocate(4), ptrA, 0));

        // 5. Start it again: the service recovers; the idle session binds on its next call.
        mockBundle.start();
        Await.until(5000, () -> assertTrue(sessions.status().backendPresent));
        assertEquals(CuResult.SUCCESS, c.check());
        long ctxC = context(c);
        long ptrC = alloc(c, ctxC, data);
        assertArrayEquals(data, read(c, ctxC, ptrC, data.length));
        c.close();
        a.close();
        Await.until(5000, () -> assertEquals(0, sessions.sessions().size()));
        assertTrue(bc.getServiceReferences(CudaService.class, "(backend.id=mock)").size() == 1);
        second.delete();
    }

    private Bundle findBundle(String bsn) {
        for (Bundle b : bc.getBundles()) {
            if (bsn.equals(b.getSymbolicName())) {
                return b;
            }
        }
        throw new AssertionError("no bundle " + bsn);
    }
}
