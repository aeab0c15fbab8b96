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
                // The logging stack first: slf4j caches NOP for good if anything logs before it.
                jar("asm", 1), jar("asm-commons", 1), jar("asm-util", 1), jar("asm-tree", 1), jar("asm-analysis", 1),
                jar("org.apache.aries.spifly.dynamic.bundle", 1),
                jar("slf4j-api", 2), jar("slf4j-simple", 2),
                jar("org.osgi.util.function", 3), jar("org.osgi.util.promise", 3),
                jar("org.osgi.service.component", 3), jar("org.apache.felix.scr", 3),
                jar("org.apache.felix.configadmin", 3),
                jar("api", 4), jar("core", 4), jar("backend.mock", 4),
                frameworkStartLevel(10),
                // Without this the woven ServiceLoader sees the test classpath's slf4j provider.
                frameworkProperty("felix.bootdelegation.implicit").value("false"),
                frameworkProperty("org.osgi.framework.bootdelegation").value("sun.misc"),
                systemProperty("org.slf4j.simpleLogger.defaultLogLevel").value("info"),
                junitBundles(),
                cleanCaches());
    }
}
