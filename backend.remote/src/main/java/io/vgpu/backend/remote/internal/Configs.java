package io.vgpu.backend.remote.internal;

import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.Map;

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
