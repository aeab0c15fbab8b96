package io.vgpu.itests;

import io.vgpu.api.CudaService;
import io.vgpu.api.kernel.HostKernel;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import javax.inject.Inject;
import org.junit.After;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.ServiceRegistration;

/** The conformance suite against the mock backend, running inside Felix. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class MockConformanceIT extends CudaServiceConformance {
    @Inject
    BundleContext bc;

    private final List<ServiceRegistration<?>> registrations = new ArrayList<>();

    @Configuration
    public Option[] config() {
        return new Option[] {VgpuOptions.service()};
    }

    @Override
    protected CudaService backend() {
        return Await.value(5000, () -> {
            try {
                for (ServiceReference<CudaService> ref : bc.getServiceReferences(CudaService.class, "(backend.id=mock)")) {
                    CudaService s = bc.getService(ref);
                    if (s != null) {
                        return s;
                    }
                }
            } catch (org.osgi.framework.InvalidSyntaxException e) {
                throw new IllegalStateException(e);
            }
            return null;
        });
    }

    @Override
    protected void provideKernel(String name, HostKernel kernel) {
        Hashtable<String, Object> props = new Hashtable<>();
        props.put(HostKernel.KERNEL_NAME, name);
        registrations.add(bc.registerService(HostKernel.class, kernel, props));
    }

    @After
    public void unregisterKernels() {
        registrations.forEach(ServiceRegistration::unregister);
        registrations.clear();
    }
}
