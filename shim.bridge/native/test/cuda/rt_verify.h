/*
 * Element-by-element comparison of a device result with a host reference, for the programs that
 * check what kernels compute (itests PtxProgramsIT). Each function returns how many elements are
 * wrong and prints a FAIL line for the first few; callers wrap it in CHECK_EQ(0, ...), so a wrong
 * result also counts as one failed check.
 *
 * Outputs are prefilled on the device with a byte pattern the kernels never produce (0xff: -1 for
 * integers, NaN for floats), so a kernel that did not run cannot pass by accident.
 */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rt_check.h"

static const int RT_VERIFY_SHOWN = 5;

static inline void rt_print_value(int v) { fprintf(stderr, "%d", v); }
static inline void rt_print_value(unsigned v) { fprintf(stderr, "%u (0x%08x)", v, v); }
static inline void rt_print_value(long long v) { fprintf(stderr, "%lld", v); }
static inline void rt_print_value(unsigned long long v) { fprintf(stderr, "%llu (0x%016llx)", v, v); }
static inline void rt_print_value(float v) { fprintf(stderr, "%.9g", v); }
static inline void rt_print_value(double v) { fprintf(stderr, "%.17g", v); }

/* Exact equality (for floats: the same value, so NaN never matches). */
template <typename T>
static int verify_exact(const char *what, const T *got, const T *want, size_t n)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(got[i] == want[i])) {
            if (wrong < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%zu] = ", what, i);
                rt_print_value(got[i]);
                fprintf(stderr, ", expected ");
                rt_print_value(want[i]);
                fprintf(stderr, "\n");
            }
            wrong++;
        }
    }
    if (wrong > RT_VERIFY_SHOWN) {
        fprintf(stderr, "FAIL %s: %d of %zu elements wrong\n", what, wrong, n);
    }
    return wrong;
}

/*
 * |got - want| <= rel * scale + abs, element by element, where scale is scale[i] when given (for
 * a sum: the sum of the magnitudes of its terms, which bounds its rounding error independently of
 * cancellation) and |want[i]| otherwise.
 */
template <typename T>
static int verify_close(const char *what, const T *got, const double *want, const double *scale, size_t n,
                        double rel, double abs)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        double s = scale ? scale[i] : fabs(want[i]);
        double tol = rel * s + abs;
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= tol)) {
            if (wrong < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%zu] = %.17g, expected %.17g (error %.3g, tolerance %.3g)\n", what, i,
                        (double)got[i], want[i], err, tol);
            }
            wrong++;
        }
    }
    if (wrong > RT_VERIFY_SHOWN) {
        fprintf(stderr, "FAIL %s: %d of %zu elements wrong\n", what, wrong, n);
    }
    return wrong;
}

/* A float's (double's) position on the number line in ulps (monotonic over all non-NaN values). */
static inline int64_t rt_ordinal(float f)
{
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b >= 0 ? (int64_t)b : -(int64_t)(b & 0x7fffffff);
}

static inline int64_t rt_ordinal(double f)
{
    int64_t b;
    memcpy(&b, &f, sizeof b);
    return b >= 0 ? b : -(b & 0x7fffffffffffffffll);
}

/*
 * At most max_ulps ulps from the correctly rounded result (what CUDA's documented "maximum ulp
 * error" measures); want[i] is the value computed in higher precision, rounded to T here.
 * Infinities must match exactly; NaN matches only NaN.
 */
template <typename T, typename W>
static int verify_ulps(const char *what, const T *got, const W *want, size_t n, int max_ulps)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        T w = (T)want[i];
        bool ok;
        if (isnan(got[i]) || isnan(w)) {
            ok = isnan(got[i]) && isnan(w);
        } else if (isinf(w) || isinf(got[i])) {
            ok = got[i] == w;
        } else {
            int64_t d = rt_ordinal(got[i]) - rt_ordinal(w);
            ok = (d < 0 ? -d : d) <= max_ulps;
        }
        if (!ok) {
            if (wrong < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%zu] = %.17g, expected %.17g within %d ulp (exact %.20Lg)\n", what, i,
                        (double)got[i], (double)w, max_ulps, (long double)want[i]);
            }
            wrong++;
        }
    }
    if (wrong > RT_VERIFY_SHOWN) {
        fprintf(stderr, "FAIL %s: %d of %zu elements wrong\n", what, wrong, n);
    }
    return wrong;
}
