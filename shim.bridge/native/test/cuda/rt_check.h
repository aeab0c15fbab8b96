/*
 * check.h for the CUDA runtime programs, plus runtime-API forms: a failed call prints its error
 * name, and REQUIRE_RT ends the program early where later checks would only cascade (or touch
 * memory that was never allocated).
 */
#pragma once
#include <cuda_runtime.h>

#include "../check.h"

#define CHECK_RT(call)                                                                    \
    do {                                                                                  \
        cudaError_t rt_ = (call);                                                         \
        check_count++;                                                                    \
        if (rt_ != cudaSuccess) {                                                         \
            check_failures++;                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: %d %s\n", __FILE__, __LINE__, #call, (int)rt_, \
                    cudaGetErrorName(rt_));                                               \
        }                                                                                 \
    } while (0)

#define REQUIRE_RT(name, call)                                                            \
    do {                                                                                  \
        int before_ = check_failures;                                                     \
        CHECK_RT(call);                                                                   \
        if (check_failures != before_) {                                                  \
            fprintf(stderr, "%s: giving up after this failure\n", name);                 \
            return check_done(name);                                                      \
        }                                                                                 \
    } while (0)
