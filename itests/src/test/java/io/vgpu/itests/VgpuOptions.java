package io.vgpu.itests;

import static org.ops4j.pax.exam.CoreOptions.bundle;
import static org.ops4j.pax.exam.CoreOptions.cleanCaches;
import static org.ops4j.pax.exam.CoreOptions.composite;
import static org.ops4j.pax.exam.CoreOptions.frameworkProperty;
import static org.ops4j.pax.exam.CoreOptions.frameworkStartLevel;
import static org.ops4j.pax.exam.CoreOptions.junitBundles;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import java.io.File;
import org.ops4j.pax.exam.Option;

/** The bundles of the service, installed from the jars the reactor just built. */
public final class VgpuOptions {
    private VgpuOptions() {}

    private static Option jar(String name, int startLevel) {
        File f = new File(System.getProperty("itest.bundles", "target/itest-bundles"), name + ".jar");
        if (!f.isFile()) {
            throw new IllegalStateException("missing test bundle " + f + " (run mvn verify from the root)");
        }
        return bundle(f.toURI().toString()).startLevel(startLevel);
    }

    public static Option service() {
        return composite(
                // The logging stack first, before any bundle logs.
                jar("slf4j-api", 2), jar("slf4j-simple", 2),
                jar("org.osgi.util.function", 3), jar("org.osgi.util.promise", 3),
                jar("org.osgi.service.component", 3), jar("org.apache.felix.scr", 3),
                jar("org.apache.felix.configadmin", 3),
                jar("api", 4), jar("ptx", 4), jar("core", 4), jar("backend.mock", 4),
                frameworkStartLevel(10),
                // Keeps the test classpath (its own slf4j binding among it) out of the framework.
                frameworkProperty("felix.bootdelegation.implicit").value("false"),
                frameworkProperty("org.osgi.framework.bootdelegation").value("sun.misc"),
                systemProperty("org.slf4j.simpleLogger.defaultLogLevel").value("info"),
                junitBundles(),
                cleanCaches());
    }
}
