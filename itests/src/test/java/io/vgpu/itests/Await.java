package io.vgpu.itests;

import java.util.function.Supplier;

/** Polls a condition instead of sleeping a fixed time. */
public final class Await {
    private Await() {}

    /** Re-runs {@code assertion} until it stops throwing, or rethrows its last failure after {@code millis}. */
    public static void until(long millis, Runnable assertion) {
        long deadline = System.nanoTime() + millis * 1_000_000;
        while (true) {
            try {
                assertion.run();
                return;
            } catch (AssertionError | RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.onSpinWait();
                try {
                    Thread.sleep(10);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    public static <T> T value(long millis, Supplier<T> supplier) {
        Object[] box = new Object[1];
        until(millis, () -> {
            T v = supplier.get();
            if (v == null) {
                throw new AssertionError("still null");
            }
            box[0] = v;
        });
        @SuppressWarnings("unchecked")
        T t = (T) box[0];
        return t;
    }
}
