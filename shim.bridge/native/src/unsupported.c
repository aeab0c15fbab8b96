/* The answer of every generated stub: the entry point exists, the operation is not offered. */
#include <string.h>

#include "vgpu.h"

CUresult vgpu_unsupported(const char *name);

CUresult vgpu_unsupported(const char *name)
{
    LOG_INFO("%s is not supported by vgpu: CUDA_ERROR_NOT_SUPPORTED", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
