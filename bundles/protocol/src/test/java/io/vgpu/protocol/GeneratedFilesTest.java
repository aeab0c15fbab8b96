package io.vgpu.protocol;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.Test;

/**
 * The committed generated files (Wire.java, the shim's C header, the golden vectors) must be what
 * the spec produces. Regenerate with {@code mvn -pl bundles/protocol test -Dvgpu.regenerate=true}.
 */
public class GeneratedFilesTest {
    static Path root() {
        return Path.of(System.getProperty("vgpu.root", "../.."));
    }

    @Test
    public void generatedFilesMatchTheSpec() throws Exception {
        ProtocolGenerator g = ProtocolGenerator.parse(Files.readString(root().resolve("bundles/protocol/protocol.spec")));
        boolean regenerate = Boolean.getBoolean("vgpu.regenerate");
        for (Map.Entry<String, String> e : g.outputs().entrySet()) {
            Path p = root().resolve(e.getKey());
            if (regenerate) {
                Files.createDirectories(p.getParent());
                Files.writeString(p, e.getValue());
            }
            assertTrue(p + " is missing; regenerate", Files.exists(p));
            assertEquals(p + " is stale; regenerate with -Dvgpu.regenerate=true", e.getValue(), Files.readString(p));
        }
        try (var files = Files.list(root().resolve("bundles/protocol/golden"))) {
            files.forEach(f -> assertTrue(f + " is not produced by the spec any more",
                    g.outputs().containsKey("bundles/protocol/golden/" + f.getFileName())));
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void reusedOpNumbersAreRejected() {
        ProtocolGenerator.parse("1 A sync : - -> -\n1 B sync : - -> -\n");
    }

    @Test(expected = IllegalArgumentException.class)
    public void misalignedFieldsAreRejected() {
        ProtocolGenerator.parse("1 A sync : u32 a, u64 b -> -\n");
    }
}
