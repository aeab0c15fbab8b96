/*
 * Context-independent libraries and kernels (cuLibrary*, cuKernel*), how cudart 12+ loads the
 * fatbins it registers. cuBLAS registers about 3,000 of them (178 MiB) and uses a handful, so
 * cuLibraryLoadData only remembers the image; the upload happens, per context, at the first
 * kernel or global lookup, and the service keeps each image once by content hash.
 *
 * A CUkernel is accepted wherever a CUfunction is: it resolves to the function of its library's
 * module in the calling thread's current context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu.h"

struct vgpu_function;
CUresult vgpu_module_load_ctx(struct vgpu_ctx *c, const void *image, CUmodule *module);
CUresult vgpu_module_function(uint64_t module_handle, const char *name, struct vgpu_function **out);
CUresult vgpu_module_global(uint64_t module_handle, const char *name, CUdeviceptr *dptr, size_t *bytes);
uint64_t vgpu_function_handle(struct vgpu_function *f);
CUresult vgpu_primary_ctx_peek(CUcontext *pctx, CUdevice dev);
size_t vgpu_image_size(const void *image, const void **start);
CUresult cuModuleUnload(CUmodule hmod);

struct loaded {
    struct vgpu_ctx *ctx;
    uint64_t ctx_handle; /* to notice a context that was destroyed and its slot reused */
    CUmodule module;
};

struct vgpu_library {
    uint64_t handle;
    const void *image;
    void *copy; /* owned image bytes when the caller does not promise to keep them */
    pthread_mutex_t lock;
    struct loaded *loaded;
    int loaded_count, loaded_cap;
    struct vgpu_kernel *kernels;
};

struct vgpu_kernel {
    uint64_t handle;
    struct vgpu_library *library;
    struct vgpu_kernel *next;
    char *name;
};

static struct vgpu_library *library_from(CUlibrary l)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)l, VGPU_KIND_LIBRARY);
}

static struct vgpu_kernel *kernel_from(CUkernel k)
{
    return vgpu_handle_get((uint64_t)(uintptr_t)k, VGPU_KIND_KERNEL);
}

/* The context lookups resolve in: the current one, else device 0's primary context (cudart may ask before it set one). */
static struct vgpu_ctx *lookup_ctx(void)
{
    struct vgpu_ctx *c = vgpu_current_ctx();
    if (c == NULL) {
        CUcontext primary;
        if (vgpu_primary_ctx_peek(&primary, 0) == CUDA_SUCCESS)
            c = vgpu_ctx_from(primary);
    }
    return c;
}

/* The library's module in context c, uploaded on first use. */
static CUresult module_in(struct vgpu_library *lib, struct vgpu_ctx *c, CUmodule *out)
{
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&lib->lock);
    CUresult rc = CUDA_SUCCESS;
    for (int i = 0; i < lib->loaded_count; i++) {
        if (lib->loaded[i].ctx == c && lib->loaded[i].ctx_handle == c->handle) {
            *out = lib->loaded[i].module;
            goto done;
        }
    }
    CUmodule m;
    rc = vgpu_module_load_ctx(c, lib->copy ? lib->copy : lib->image, &m);
    if (rc != CUDA_SUCCESS)
        goto done;
    if (lib->loaded_count == lib->loaded_cap) {
        int cap = lib->loaded_cap ? lib->loaded_cap * 2 : 2;
        struct loaded *grown = realloc(lib->loaded, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto done;
        }
        lib->loaded = grown;
        lib->loaded_cap = cap;
    }
    lib->loaded[lib->loaded_count++] = (struct loaded){c, c->handle, m};
    *out = m;
done:
    pthread_mutex_unlock(&lib->lock);
    return rc;
}

static CUresult library_load(CUlibrary *library, const void *code, unsigned numLibraryOptions, CUlibraryOption *libraryOptions,
                             void **libraryOptionValues, int owned)
{
    VGPU_CHECK_INIT();
    if (library == NULL || code == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    int preserved = owned;
    /* Option values travel in the pointer itself, as JIT option values do. */
    for (unsigned i = 0; i < numLibraryOptions; i++)
        if (libraryOptions != NULL && libraryOptions[i] == CU_LIBRARY_BINARY_IS_PRESERVED && libraryOptionValues != NULL &&
            (uintptr_t)libraryOptionValues[i] != 0)
            preserved = 1;
    struct vgpu_library *lib = calloc(1, sizeof *lib);
    if (lib == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_init(&lib->lock, NULL);
    if (owned) {
        lib->copy = (void *)code;
    } else if (preserved) {
        lib->image = code;
    } else {
        /* The caller may free the image after this call: keep our own copy for the lazy upload. */
        const void *start;
        size_t size = vgpu_image_size(code, &start);
        if (size == 0 || (lib->copy = malloc(size)) == NULL) {
            free(lib);
            return size == 0 ? CUDA_ERROR_INVALID_IMAGE : CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(lib->copy, start, size);
    }
    lib->handle = vgpu_handle_new(VGPU_KIND_LIBRARY, lib);
    *library = (CUlibrary)(uintptr_t)lib->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                                    unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                    void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    return library_load(library, code, numLibraryOptions, libraryOptions, libraryOptionValues, 0);
}

VGPU_API CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
                                        void **jitOptionsValues, unsigned int numJitOptions,
                                        CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                        unsigned int numLibraryOptions)
{
    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    VGPU_CHECK_INIT();
    if (fileName == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    char *image;
    CUresult rc = vgpu_read_file(fileName, &image);
    if (rc == CUDA_SUCCESS && (rc = library_load(library, image, numLibraryOptions, libraryOptions, libraryOptionValues, 1)) != CUDA_SUCCESS)
        free(image);
    return rc;
}

VGPU_API CUresult cuLibraryUnload(CUlibrary library)
{
    VGPU_CHECK_INIT();
    struct vgpu_library *lib = library_from(library);
    if (lib == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    vgpu_handle_free(lib->handle);
    pthread_mutex_lock(&lib->lock);
    for (int i = 0; i < lib->loaded_count; i++)
        if (vgpu_ctx_from((CUcontext)(uintptr_t)lib->loaded[i].ctx_handle) == lib->loaded[i].ctx)
            cuModuleUnload(lib->loaded[i].module);
    lib->loaded_count = 0;
    for (struct vgpu_kernel *k = lib->kernels, *next; k != NULL; k = next) {
        next = k->next;
        vgpu_handle_free(k->handle);
        free(k->name);
        free(k);
    }
    lib->kernels = NULL;
    pthread_mutex_unlock(&lib->lock);
    /* The library struct itself stays: a racing lookup on another thread must not touch freed memory. */
    free(lib->copy);
    lib->copy = NULL;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    VGPU_CHECK_INIT();
    struct vgpu_library *lib = library_from(library);
    if (lib == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (pMod == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return module_in(lib, lookup_ctx(), pMod);
}

VGPU_API CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    VGPU_CHECK_INIT();
    struct vgpu_library *lib = library_from(library);
    if (lib == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (pKernel == NULL || name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lib->lock);
    for (struct vgpu_kernel *k = lib->kernels; k != NULL; k = k->next) {
        if (strcmp(k->name, name) == 0) {
            *pKernel = (CUkernel)(uintptr_t)k->handle;
            pthread_mutex_unlock(&lib->lock);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&lib->lock);
    /* The first lookup uploads the image; an unknown name is NOT_FOUND, as with the real driver. */
    CUmodule m;
    CUresult rc = module_in(lib, lookup_ctx(), &m);
    struct vgpu_function *f;
    if (rc == CUDA_SUCCESS)
        rc = vgpu_module_function((uint64_t)(uintptr_t)m, name, &f);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vgpu_kernel *k = calloc(1, sizeof *k);
    if (k == NULL || (k->name = strdup(name)) == NULL) {
        free(k);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    k->library = lib;
    k->handle = vgpu_handle_new(VGPU_KIND_KERNEL, k);
    pthread_mutex_lock(&lib->lock);
    k->next = lib->kernels;
    lib->kernels = k;
    pthread_mutex_unlock(&lib->lock);
    *pKernel = (CUkernel)(uintptr_t)k->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    VGPU_CHECK_INIT();
    struct vgpu_library *lib = library_from(library);
    if (lib == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    CUmodule m;
    CUresult rc = module_in(lib, lookup_ctx(), &m);
    return rc != CUDA_SUCCESS ? rc : vgpu_module_global((uint64_t)(uintptr_t)m, name, dptr, bytes);
}

/* A kernel's function in the current context: what a launch of a CUkernel runs. */
struct vgpu_function *vgpu_kernel_function(uint64_t kernel)
{
    struct vgpu_kernel *k = vgpu_handle_get(kernel, VGPU_KIND_KERNEL);
    if (k == NULL)
        return NULL;
    CUmodule m;
    struct vgpu_function *f;
    if (module_in(k->library, lookup_ctx(), &m) != CUDA_SUCCESS ||
        vgpu_module_function((uint64_t)(uintptr_t)m, k->name, &f) != CUDA_SUCCESS)
        return NULL;
    return f;
}

VGPU_API CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    VGPU_CHECK_INIT();
    if (pFunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (kernel_from(kernel) == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vgpu_function *f = vgpu_kernel_function((uint64_t)(uintptr_t)kernel);
    if (f == NULL)
        return vgpu_current_ctx() ? CUDA_ERROR_NOT_FOUND : CUDA_ERROR_INVALID_CONTEXT;
    *pFunc = (CUfunction)(uintptr_t)vgpu_function_handle(f);
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    VGPU_CHECK_INIT();
    struct vgpu_kernel *k = kernel_from(kernel);
    if (k == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (pLib == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pLib = (CUlibrary)(uintptr_t)k->library->handle;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
    VGPU_CHECK_INIT();
    struct vgpu_kernel *k = kernel_from(hfunc);
    if (k == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *name = k->name;
    return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc);
CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value);
CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize);

/* Device-specific attributes of a kernel are those of its function in the current context. */
VGPU_API CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    return cuFuncGetAttribute(pi, attrib, (CUfunction)kernel);
}

VGPU_API CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    VGPU_CHECK_INIT();
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    return cuFuncSetAttribute((CUfunction)kernel, attrib, val);
}

VGPU_API CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    VGPU_CHECK_INIT();
    (void)config;
    if (vgpu_device(dev) == NULL)
        return CUDA_ERROR_INVALID_DEVICE;
    return kernel_from(kernel) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

VGPU_API CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    return cuFuncGetParamInfo((CUfunction)kernel, paramIndex, paramOffset, paramSize);
}
