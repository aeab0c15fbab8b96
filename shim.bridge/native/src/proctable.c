/* Instantiates the generated cuGetProcAddress table. */
#include "proctable.h"

#include "procaddress_table.h"

const size_t vgpu_proc_count = sizeof vgpu_proc_table / sizeof vgpu_proc_table[0];
