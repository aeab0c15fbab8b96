package io.vgpu.backend.mock;

import io.vgpu.api.CudaService;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.metatype.annotations.Designate;

/**
 * An additional simulated GPU, one per factory configuration
 * ({@code io.vgpu.backend.mock.gpu-<name>.cfg}), so that different GPUs can be played side by side
 * without disturbing the default {@code mock}. Each needs its own {@code backend.id}.
 */
// backend.id is blanked so that a configuration which forgets it cannot inherit the default
// "mock" from the shared Config type and pose as a second default mock; the router ignores a
// blank id with a warning naming the configuration.
@Component(service = CudaService.class, configurationPid = MockGpu.FACTORY_PID, configurationPolicy = ConfigurationPolicy.REQUIRE,
        property = CudaService.BACKEND_ID + "=")
@Designate(ocd = MockBackend.Config.class, factory = true)
public class MockGpu extends MockBackend {
    public static final String FACTORY_PID = "io.vgpu.backend.mock.gpu";
}
