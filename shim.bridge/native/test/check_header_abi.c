/*
 * Prints the ABI facts of the CUDA driver header it is built against: the
 * size and alignment of every type, the offset and size of every struct
 * member, and the value of every enum constant and numeric macro that
 * include/vgpu_cuda.h defines.
 *
 * check_header_abi.sh builds it twice, once on NVIDIA's cuda.h
 * (-DVGPU_ABI_REAL) and once on ours, and diffs the two outputs. The list of
 * checks (abi_checks.inc) is generated from our header, so nothing it
 * declares can escape the comparison.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef VGPU_ABI_REAL
#include <cuda.h>
#include <cudaProfiler.h>
/* The pre-3.2 typedefs, which cuda.h declares only for the driver's own build. */
#include "abi_legacy_types.h"
#else
#include "vgpu_cuda.h"
#endif

#define SHOW(label, expr) printf("%s %lld\n", (label), (long long)(expr))

int main(void)
{
#include "abi_checks.inc"
    return 0;
}
