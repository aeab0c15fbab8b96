/*
 * cuMemSetAccess for backend.passthrough: JCuda 12.6.0's binding reads each descriptor's
 * location fields from the CUmemAccessDesc object instead of its CUmemLocation, so the driver
 * gets a garbage device and answers CUDA_ERROR_INVALID_DEVICE. This one entry point is bound
 * here instead. The driver is the libcuda.so.1 the backend already loaded by absolute path
 * (found by soname, never searched), so this library has no link-time dependency on it.
 */
#include <dlfcn.h>
#include <jni.h>
#include <stddef.h>

#include "vgpu_cuda.h"

typedef CUresult (*set_access_fn)(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count);

JNIEXPORT jint JNICALL Java_io_vgpu_backend_passthrough_internal_MemAccess_setAccess0(JNIEnv *env, jclass cls, jlong ptr,
                                                                                     jlong size, jint device, jint flags)
{
    (void)env;
    (void)cls;
    static set_access_fn set_access;
    if (set_access == NULL) {
        void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
        if (driver == NULL)
            return CUDA_ERROR_NOT_INITIALIZED;
        set_access = (set_access_fn)dlsym(driver, "cuMemSetAccess");
        if (set_access == NULL)
            return CUDA_ERROR_NOT_FOUND;
    }
    CUmemAccessDesc desc = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = device},
                            .flags = (CUmemAccess_flags)flags};
    return set_access((CUdeviceptr)ptr, (size_t)size, &desc, 1);
}
