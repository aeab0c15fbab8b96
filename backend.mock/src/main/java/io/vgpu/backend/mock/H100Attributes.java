package io.vgpu.backend.mock;

import io.vgpu.api.CuDeviceAttribute;

/**
 * The attribute table of an H100 SXM5 80GB as the real driver reports it. The configurable parts
 * (SM count, compute capability, PCI ids, clocks) are overwritten per instance. Features vgpu does
 * not provide are reported absent ({@link #ABSENT}), so applications take their fallback paths
 * instead of failing on an entry point that answers CUDA_ERROR_NOT_SUPPORTED.
 */
final class H100Attributes {
    private H100Attributes() {}

    /**
     * Attributes a real H100 reports as 1 but vgpu as 0: mapped host memory (kernels run in the
     * service, away from the client's memory), managed memory, memory pools, IPC, stream memory
     * operations, external memory and semaphores, sparse and deferred-mapping arrays, RDMA,
     * dma-buf, tensor maps and multicast. Their entry points are NOT_SUPPORTED stubs.
     */
    static final int[] ABSENT = {19, 83, 89, 92, 103, 110, 112, 114, 115, 116, 117, 119, 121, 122, 123, 124, 125, 127, 132};

    static int[] table() {
        int[] a = new int[CuDeviceAttribute.MAX];
        int[][] values = {
            {1, 1024}, {2, 1024}, {3, 1024}, {4, 64}, {5, 2147483647}, {6, 65535}, {7, 65535},
            {8, 49152}, {9, 65536}, {10, 32}, {11, 2147483647}, {12, 65536}, {13, 1980000}, {14, 512},
            {15, 1}, {16, 132}, {17, 0}, {18, 0}, {19, 0}, {20, 0}, {21, 131072}, {22, 131072},
            {23, 65536}, {24, 16384}, {25, 16384}, {26, 16384}, {27, 32768}, {28, 32768}, {29, 2048},
            {30, 512}, {31, 1}, {32, 1}, {33, 0x1b}, {34, 0}, {35, 0}, {36, 2619000}, {37, 5120},
            {38, 52428800}, {39, 2048}, {40, 5}, {41, 1}, {42, 32768}, {43, 2048}, {44, 1},
            {45, 32768}, {46, 32768}, {47, 8192}, {48, 8192}, {49, 32768}, {50, 0}, {51, 32},
            {52, 32768}, {53, 32768}, {54, 2046}, {55, 32768}, {56, 131072}, {57, 65536},
            {58, 16384}, {59, 16384}, {60, 16384}, {61, 32768}, {62, 2048}, {63, 32768},
            {64, 32768}, {65, 2048}, {66, 32768}, {67, 32768}, {68, 2046}, {69, 268435456},
            {70, 131072}, {71, 65000}, {72, 2097120}, {73, 32768}, {74, 32768}, {75, 9}, {76, 0},
            {77, 32768}, {78, 1}, {79, 1}, {80, 1}, {81, 233472}, {82, 65536}, {83, 0}, {84, 0},
            {85, 0}, {86, 0}, {87, 2}, {88, 0}, {89, 0}, {90, 1}, {91, 0}, {92, 0}, {93, 1}, {94, 0},
            {95, 1}, {96, 0}, {97, 232448}, {98, 0}, {99, 1}, {100, 0}, {101, 0}, {102, 1}, {103, 0},
            {104, 0}, {105, 0}, {106, 32}, {107, 1}, {108, 31457280}, {109, 134213632}, {110, 0},
            {111, 1024}, {112, 0}, {113, 1}, {114, 0}, {115, 0}, {116, 0}, {117, 0}, {118, 0},
            {119, 0}, {120, 1}, {121, 0}, {122, 0}, {123, 0}, {124, 0}, {125, 0}, {126, 4}, {127, 0},
            {128, 0}, {129, 0}, {130, 0}, {131, -1}, {132, 0}, {133, 0}, {134, -1}, {135, 0},
            {136, 0}, {137, 0}, {138, 0}, {139, 0x233010de}, {140, 0x16c110de}, {141, 0}, {142, 0},
            {143, 0}, {144, 0}, {145, 0}, {146, 0}, {147, 0},
        };
        for (int[] v : values) {
            a[v[0]] = v[1];
        }
        return a;
    }
}
