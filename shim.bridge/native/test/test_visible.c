/* Prints what CUDA_VISIBLE_DEVICES leaves visible: "<count> <uuid of device 0>", for the harness to compare. */
#include <stdio.h>

#include "cuda_api.h"

int main(void)
{
    CUresult rc = cuInit(0);
    if (rc == CUDA_ERROR_NO_DEVICE) {
        printf("0 -\n");
        return 0;
    }
    int count = -1;
    if (rc != CUDA_SUCCESS || cuDeviceGetCount(&count) != CUDA_SUCCESS)
        return 1;
    CUuuid u;
    if (count > 0 && cuDeviceGetUuid_v2(&u, 0) != CUDA_SUCCESS)
        return 1;
    printf("%d ", count);
    if (count > 0)
        for (int i = 0; i < 16; i++)
            printf("%02x", (unsigned char)u.bytes[i]);
    printf("\n");
    return 0;
}
