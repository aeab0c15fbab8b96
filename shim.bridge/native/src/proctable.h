/* The cuGetProcAddress table (gen/procaddress_table.h), kept in its own translation unit because
 * it declares every entry point with a placeholder type. */
#pragma once
#include <stddef.h>

struct vgpu_proc_entry {
    const char *name;   /* the API name cudart asks for */
    int version;        /* the CUDA version that introduced this ABI */
    int flags;          /* 0, or 2 for the per-thread-default-stream variant */
    void (*fn)(void);
    const char *symbol; /* the exported ABI symbol */
};

extern const struct vgpu_proc_entry vgpu_proc_table[];
extern const size_t vgpu_proc_count;
