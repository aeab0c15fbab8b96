/*
 * Prints what cuInit returns and what a later call returns, for the harness to run against
 * listeners that misbehave (never answer, answer and then die).
 */
#include <stdio.h>

#include "cuda_api.h"

int main(void)
{
    printf("cuInit %d\n", (int)cuInit(0));
    int count = -1;
    printf("cuDeviceGetCount %d\n", (int)cuDeviceGetCount(&count));
    return 0;
}
