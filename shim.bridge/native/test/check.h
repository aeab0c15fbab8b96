/*
 * A few assertion macros for the shim's C tests. Each failed check prints one line with its
 * location and the values involved; the test exits 1 if any check failed.
 */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                \
    } while (0)

#define CHECK_EQ(expected, actual)                                                       \
    do {                                                                                 \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                  \
        check_count++;                                                                   \
        if (e_ != a_) {                                                                  \
            check_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s == %s: expected %lld, got %lld\n", __FILE__, \
                    __LINE__, #expected, #actual, e_, a_);                               \
        }                                                                                \
    } while (0)

/* A CUDA call that must return exactly `expected`. */
#define CHECK_CU(expected, call) CHECK_EQ(expected, call)

#define CHECK_STR(expected, actual)                                                      \
    do {                                                                                 \
        const char *e_ = (expected), *a_ = (actual);                                     \
        check_count++;                                                                   \
        if (a_ == NULL || strcmp(e_, a_) != 0) {                                         \
            check_failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: expected \"%s\", got \"%s\"\n", __FILE__,   \
                    __LINE__, #actual, e_, a_ ? a_ : "(null)");                          \
        }                                                                                \
    } while (0)

static inline int check_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}
