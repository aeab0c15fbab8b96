package io.vgpu.ptx.internal;

import java.util.function.Consumer;

/** Device-side printf: the format string and packed arguments in device memory, as vprintf gets them. */
public final class DevicePrintf {
    private DevicePrintf() {}

    private static volatile Consumer<String> sink = s -> System.out.print(s);

    /** Where formatted output goes (the service log in vgpu). */
    public static void sink(Consumer<String> s) {
        sink = s;
    }

    static void emit(String s) {
        sink.accept(s);
    }

    static String format(Warp w, int lane, long fmt, long argv) {
        StringBuilder f = new StringBuilder();
        for (int i = 0; i < 4096; i++) {
            int ch = (int) w.loadGeneric(fmt + i, 1, lane);
            if (ch == 0) {
                break;
            }
            f.append((char) ch);
        }
        StringBuilder out = new StringBuilder();
        long ap = argv;
        String s = f.toString();
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch != '%') {
                out.append(ch);
                continue;
            }
            int j = i + 1;
            while (j < s.length() && "-+ #0123456789.lhzjt".indexOf(s.charAt(j)) >= 0) {
                j++;
            }
            if (j >= s.length()) {
                break;
            }
            char conv = s.charAt(j);
            String spec = s.substring(i, j + 1).replace("ll", "").replace("l", "").replace("h", "").replace("z", "");
            if (conv == '%') {
                out.append('%');
            } else if ("diouxXc".indexOf(conv) >= 0) {
                boolean big = s.substring(i, j).contains("l") || s.substring(i, j).contains("z");
                ap = (ap + (big ? 7 : 3)) & ~(big ? 7L : 3L);
                long v = w.loadGeneric(ap, big ? 8 : 4, lane);
                ap += big ? 8 : 4;
                if (!big && (conv == 'd' || conv == 'i')) {
                    v = (int) v;
                }
                String js = spec.replace('i', 'd').replace('u', 'd');
                if (conv == 'u' && !big) {
                    v &= 0xffffffffL;
                }
                out.append(conv == 'c' ? String.valueOf((char) v) : String.format(js, v));
            } else if ("feEgGaA".indexOf(conv) >= 0) {
                ap = (ap + 7) & ~7L;
                double v = Double.longBitsToDouble(w.loadGeneric(ap, 8, lane));
                ap += 8;
                out.append(String.format(spec, v));
            } else if (conv == 's' || conv == 'p') {
                ap = (ap + 7) & ~7L;
                long p = w.loadGeneric(ap, 8, lane);
                ap += 8;
                if (conv == 'p') {
                    out.append(String.format("0x%x", p));
                } else {
                    StringBuilder str = new StringBuilder();
                    for (int k = 0; k < 4096; k++) {
                        int c = (int) w.loadGeneric(p + k, 1, lane);
                        if (c == 0) {
                            break;
                        }
                        str.append((char) c);
                    }
                    out.append(str);
                }
            }
            i = j;
        }
        return out.toString();
    }
}
