package io.vgpu.ptx.internal;

/** Special registers with fixed register numbers, filled per block before it runs. */
public final class Sreg {
    private Sreg() {}

    public static final int TID_X = 0, TID_Y = 1, TID_Z = 2, NTID_X = 3, NTID_Y = 4, NTID_Z = 5;
    public static final int CTAID_X = 6, CTAID_Y = 7, CTAID_Z = 8, NCTAID_X = 9, NCTAID_Y = 10, NCTAID_Z = 11;
    public static final int LANEID = 12, WARPID = 13, NWARPID = 14;
    public static final int LANEMASK_EQ = 15, LANEMASK_LT = 16, LANEMASK_LE = 17, LANEMASK_GE = 18, LANEMASK_GT = 19;
    public static final int SMID = 20, NSMID = 21, GRIDID = 22, DYN_SMEM = 23, TOTAL_SMEM = 24, ZERO = 25;
    /** A register nobody reads: the destination of "_" and of ignored results. */
    public static final int SINK = 26;
    public static final int COUNT = 27;

    /** The register of a special register name, or -1 (dynamic ones such as %clock are not here). */
    public static int of(String name) {
        switch (name) {
            case "%tid.x": return TID_X;
            case "%tid.y": return TID_Y;
            case "%tid.z": return TID_Z;
            case "%ntid.x": return NTID_X;
            case "%ntid.y": return NTID_Y;
            case "%ntid.z": return NTID_Z;
            case "%ctaid.x": return CTAID_X;
            case "%ctaid.y": return CTAID_Y;
            case "%ctaid.z": return CTAID_Z;
            case "%nctaid.x": return NCTAID_X;
            case "%nctaid.y": return NCTAID_Y;
            case "%nctaid.z": return NCTAID_Z;
            case "%laneid": return LANEID;
            case "%warpid": return WARPID;
            case "%nwarpid": return NWARPID;
            case "%lanemask_eq": return LANEMASK_EQ;
            case "%lanemask_lt": return LANEMASK_LT;
            case "%lanemask_le": return LANEMASK_LE;
            case "%lanemask_ge": return LANEMASK_GE;
            case "%lanemask_gt": return LANEMASK_GT;
            case "%smid": return SMID;
            case "%nsmid": return NSMID;
            case "%gridid": return GRIDID;
            case "%dynamic_smem_size": return DYN_SMEM;
            case "%total_smem_size": return TOTAL_SMEM;
            // A cluster of one CTA: ids inside it are 0, counts 1.
            case "%cluster_ctarank": case "%cluster_ctaid.x": case "%cluster_ctaid.y": case "%cluster_ctaid.z":
            case "%clusterid.y": case "%clusterid.z":
                return ZERO;
            default: return -1;
        }
    }
}
