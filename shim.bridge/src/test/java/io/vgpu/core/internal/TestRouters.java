package io.vgpu.core.internal;

import io.vgpu.api.CudaService;
import java.lang.reflect.Proxy;
import java.util.Map;

/** Builds the core's Router without a framework; it lives in the core's package for its package-private setup methods. */
@SuppressWarnings("unchecked")
public final class TestRouters {
    private TestRouters() {}

    /** An instance of a DS configuration annotation: {@code overrides} by method name, else the defaults. */
    public static <A> A config(Class<A> type, Map<String, Object> overrides) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, m, a) -> {
            Object v = overrides.get(m.getName());
            return v != null ? v : m.getDefaultValue();
        }));
    }

    public static Router withBackend(CudaService backend, String id) {
        Router router = new Router();
        router.configure(config(Router.Config.class, Map.of()));
        router.addBackend(backend, Map.of(CudaService.BACKEND_ID, id));
        return router;
    }

    /** Registers one more backend under {@code id}. */
    public static void addBackend(Router router, CudaService backend, String id) {
        router.addBackend(backend, Map.of(CudaService.BACKEND_ID, id));
    }

    /** Unregisters the backend as DS would when its service goes away: its sessions are evacuated. */
    public static void removeBackend(Router router, CudaService backend, String id) {
        router.removeBackend(backend, Map.of(CudaService.BACKEND_ID, id));
    }

    /** Changes the router's preference list, as an edit of its configuration file would. */
    public static void prefer(Router router, String backends) {
        router.configure(config(Router.Config.class, Map.of("backend", backends)));
    }

    /** Bytes of the service-wide device address window that are reserved: what the fuzz tests check for leaks. */
    public static long addressSpaceUsed(Router router) {
        return router.addressSpace().used();
    }

    /** The free ranges of the address window (start, length), as a copy. */
    public static java.util.Map<Long, Long> addressSpaceFree(Router router) {
        AddressSpace space = router.addressSpace();
        try {
            java.lang.reflect.Field f = AddressSpace.class.getDeclaredField("free");
            f.setAccessible(true);
            synchronized (space) {
                return new java.util.TreeMap<>((java.util.Map<Long, Long>) f.get(space));
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void stop(Router router) {
        router.deactivate();
    }
}
