package io.vgpu.core.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import io.vgpu.api.CuResult;
import io.vgpu.api.CudaService;
import io.vgpu.api.session.ClientInfo;
import io.vgpu.api.session.Session;
import io.vgpu.backend.mock.MockBackend;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.Test;

/** What a session reports it holds (vgpu sessions, NVML's process lists, memory quotas) is what the device lost. */
public class SessionMemoryTest {
    @Test
    public void moduleGlobalsCountAsTheSessionsDeviceMemory() {
        Router router = new Router();
        router.configure(SessionTest.defaults(Router.Config.class, Map.of()));
        MockBackend mock = new MockBackend(SessionTest.defaults(MockBackend.Config.class, Map.of()));
        router.addBackend(mock, Map.of(CudaService.BACKEND_ID, "mock"));
        ClientInfo client = new ClientInfo();
        client.pid = 1;
        client.processName = "globals";
        Session s = router.open(client);
        long[] c = new long[1];
        assertEquals(CuResult.SUCCESS, s.ctxCreate(0, 0, c));
        long[] info = new long[2];
        assertEquals(CuResult.SUCCESS, s.memGetInfo(0, info));
        long free = info[0];
        String ptx = ".version 8.5\n.target sm_90\n.address_size 64\n.visible .global .align 8 .b8 table[65536];\n";
        long[] module = new long[1];
        assertEquals(CuResult.SUCCESS, s.moduleLoad(c[0], ptx.getBytes(StandardCharsets.US_ASCII), module));
        assertEquals(CuResult.SUCCESS, s.memGetInfo(0, info));
        assertEquals(65536, free - info[0]);
        assertEquals(65536, s.info().memoryUsed);
        assertArrayEquals(new long[] {65536}, s.info().deviceMemory);
        assertEquals(CuResult.SUCCESS, s.moduleUnload(module[0]));
        assertEquals(0, s.info().memoryUsed);
        s.close();
        router.deactivate();
    }
}
