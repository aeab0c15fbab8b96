package io.vgpu.itests;

import io.vgpu.api.CudaService;
import io.vgpu.api.kernel.HostKernel;
import io.vgpu.backend.remote.RemoteBackend;
import io.vgpu.backend.remote.internal.Configs;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.rules.ExternalResource;
import org.junit.rules.RuleChain;
import org.junit.rules.TestRule;

/**
 * The conformance suite against remote -> the host's listener -> mock: the host is the built
 * distribution in its own process (TLS 1.3, pinned certificates), the guest backend runs here.
 * Kernels run from their PTX on the host's engine, so provideKernel has nothing to do.
 */
public class RemoteConformanceIT extends CudaServiceConformance {
    static RemoteHosts keys;
    static RemoteBackend remote;
    static final ServiceFixture HOST = new ServiceFixture();

    @ClassRule
    public static final TestRule CHAIN = RuleChain.outerRule(new ExternalResource() {
        @Override
        protected void before() throws Throwable {
            keys = new RemoteHosts("guest");
            HOST.withConf("io.vgpu.remote.listener.cfg", keys.listenerCfg());
        }
    }).around(HOST);

    @BeforeClass
    public static void connect() {
        Map<String, String> c = new LinkedHashMap<>();
        for (String line : keys.remoteCfg("gpu1", "guest").split("\n")) {
            String[] kv = line.split(" = ", 2);
            c.put(kv[0], kv[1]);
        }
        remote = new RemoteBackend(Configs.of(RemoteBackend.Config.class, c));
        if (!remote.info().available) {
            throw new AssertionError("remote backend did not connect: " + remote.info() + "\nhost log:\n" + HOST.log());
        }
    }

    @AfterClass
    public static void disconnect() throws Exception {
        if (remote != null) {
            remote.deactivate();
        }
        keys.delete();
    }

    @Override
    protected CudaService backend() {
        return remote;
    }

    @Override
    protected void provideKernel(String name, HostKernel kernel) {
        // The host's mock executes the kernel's PTX.
    }
}
