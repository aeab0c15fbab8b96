package io.vgpu.backend.remote.internal;

import io.vgpu.api.AddressWindow;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;

/** A component configuration annotation backed by a map, for running components outside a framework. */
public final class Configs {
    private Configs() {}

    /** Keys as in the .cfg files ({@code backend.id}, {@code peer.memory.mib}); missing keys take the defaults. */
    @SuppressWarnings("unchecked")
    public static <A> A of(Class<A> type, Map<String, ?> values) {
        return (A) Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (proxy, m, args) -> {
            if (m.getDeclaringClass() == Object.class || m.getName().equals("annotationType")) {
                return m.getName().equals("annotationType") ? type : m.getName().equals("toString") ? values.toString() : null;
            }
            Object v = values.get(m.getName().replace('_', '.'));
            return v == null ? m.getDefaultValue() : convert(m, v);
        });
    }

    /**
     * This guest's device address window as its core reads it from {@code io.vgpu.router.cfg} in
     * {@code confDir}: the default when the file or the keys are missing or not usable (the core
     * then keeps the default too, and logs why).
     */
    public static AddressWindow routerWindow(Path confDir) {
        Path f = confDir.resolve("io.vgpu.router.cfg");
        Properties p = new Properties();
        try {
            if (Files.isRegularFile(f)) {
                try (InputStream in = Files.newInputStream(f)) {
                    p.load(in);
                }
            }
            AddressWindow w = new AddressWindow(AddressWindow.parse(p.getProperty("window.base", AddressWindow.hex(AddressWindow.DEFAULT_BASE))),
                    AddressWindow.parse(p.getProperty("window.size", AddressWindow.hex(AddressWindow.DEFAULT_SIZE))));
            return w.invalid() == null ? w : AddressWindow.DEFAULT;
        } catch (IOException | IllegalArgumentException e) {
            return AddressWindow.DEFAULT;
        }
    }

    private static Object convert(Method m, Object v) {
        Class<?> t = m.getReturnType();
        String s = v.toString();
        if (t == int.class) {
            return Integer.parseInt(s);
        }
        if (t == long.class) {
            return Long.parseLong(s);
        }
        if (t == boolean.class) {
            return Boolean.parseBoolean(s);
        }
        return s;
    }
}
