/*
 * cuGetExportTable called directly, as NVIDIA's runtime calls it: an unknown table is refused
 * with CUDA_ERROR_INVALID_VALUE and a NULL table (ShimIT checks the single log line naming it);
 * the tables' size slots; and context-local storage (table c693336e): values per context and key,
 * NULL meaning the current context, absent keys an error, and the destructors of what is left
 * running exactly once when the context ends (cuCtxDestroy, the last primary release, a reset);
 * and the stream slots cuBLAS's reductions use (table 21318c60 slots 51 and 39).
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);
CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId);

static const char *NAME = "test_darkapi";

/* Printed by the shim as 76677075-2d74-6573-742d-756e6b6e6f77. */
static const CUuuid UNKNOWN = {{0x76, 0x67, 0x70, 0x75, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x75, 0x6e, 0x6b, 0x6e, 0x6f,
                                0x77}};
static const CUuuid SKIP_INIT = {{(char)0xf8, (char)0xcf, (char)0xf9, 0x51, 0x21, 0x46, (char)0x8b, 0x4e, (char)0xb9,
                                  (char)0xe2, (char)0xfb, 0x46, (char)0x9e, 0x7c, 0x0d, (char)0xd9}};
static const CUuuid CUDART_INTERFACE = {{0x6b, (char)0xd5, (char)0xfb, 0x6c, 0x5b, (char)0xf4, (char)0xe7, 0x4a,
                                         (char)0x89, (char)0x87, (char)0xd9, 0x39, 0x12, (char)0xfd, (char)0x9d,
                                         (char)0xf9}};
static const CUuuid TOOLS_TLS = {{0x42, (char)0xd8, 0x5a, (char)0x81, 0x23, (char)0xf6, (char)0xcb, 0x47, (char)0x82,
                                  (char)0x98, (char)0xf6, (char)0xe7, (char)0x8a, 0x3a, (char)0xec, (char)0xdc}};
static const CUuuid CUBLASLT_CONTEXT = {{0x21, 0x31, (char)0x8c, 0x60, (char)0x97, 0x14, 0x32, 0x48, (char)0x8c,
                                         (char)0xa6, 0x41, (char)0xff, 0x73, 0x24, (char)0xc8, (char)0xf2}};
static const CUuuid CLS = {{(char)0xc6, (char)0x93, 0x33, 0x6e, 0x11, 0x21, (char)0xdf, 0x11, (char)0xa8, (char)0xc3,
                            0x68, (char)0xf3, 0x55, (char)0xd8, (char)0x95, (char)0x93}};

/* The context-local storage table: no size slot, slot 0 is put. */
typedef void (*cls_dtor)(CUcontext ctx, void *key, void *value);
struct cls_table {
    CUresult (*put)(CUcontext ctx, void *key, void *value, cls_dtor dtor);
    CUresult (*del)(CUcontext ctx, void *key);
    CUresult (*get)(void **value, CUcontext ctx, void *key);
};

struct call {
    CUcontext ctx;
    void *key;
    void *value;
};
static struct call calls[8];
static int ncalls;

static void dtor(CUcontext ctx, void *key, void *value)
{
    if (ncalls < 8)
        calls[ncalls] = (struct call){ctx, key, value};
    ncalls++;
}

/* One destructor call since the last check, with exactly these arguments. */
static void expect_one_call(CUcontext ctx, void *key, void *value, const char *what)
{
    check_count++;
    if (ncalls != 1 || calls[0].ctx != ctx || calls[0].key != key || calls[0].value != value) {
        check_failures++;
        fprintf(stderr, "FAIL %s: %d destructor calls, first (%p, %p, %p), expected one (%p, %p, %p)\n", what, ncalls,
                ncalls ? (void *)calls[0].ctx : NULL, ncalls ? calls[0].key : NULL, ncalls ? calls[0].value : NULL,
                (void *)ctx, key, value);
    }
    ncalls = 0;
}

static void table_checks(void)
{
    const void *t = &t;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGetExportTable(&t, &UNKNOWN));
    CHECK(t == NULL);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGetExportTable(NULL, &CUDART_INTERFACE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGetExportTable(&t, NULL));
    /* cudart asks for this one before cuInit and must be refused with NOT_FOUND. */
    t = &t;
    CHECK_CU(CUDA_ERROR_NOT_FOUND, cuGetExportTable(&t, &SKIP_INIT));
    CHECK(t == NULL);

    const uintptr_t *table = NULL;
    CHECK_CU(CUDA_SUCCESS, cuGetExportTable((const void **)&table, &CUDART_INTERFACE));
    CHECK(table != NULL && table[0] == 13 * sizeof(void *));
    table = NULL;
    CHECK_CU(CUDA_SUCCESS, cuGetExportTable((const void **)&table, &TOOLS_TLS));
    CHECK(table != NULL && table[0] == 4 * sizeof(void *));
}

/*
 * cuBLAS 12.6 finds its per-stream reduction buffer through table 21318c60: slot 51 turns
 * (context, stream, per-thread flag) into the driver's stream, slot 39 gives that stream's id.
 * The same stream must always give the same id, and different streams different ids.
 */
typedef CUresult (*stream_slot)(CUcontext, CUstream, CUstream *, int);
typedef CUresult (*stream_id_slot)(CUcontext, CUstream, unsigned long long *);

static unsigned long long stream_id_via_table(const uintptr_t *table, CUcontext ctx, CUstream s, int per_thread)
{
    stream_slot resolve;
    stream_id_slot id_of;
    void *p51 = (void *)table[51], *p39 = (void *)table[39];
    memcpy(&resolve, &p51, sizeof resolve);
    memcpy(&id_of, &p39, sizeof id_of);
    CUstream out = (CUstream)(uintptr_t)0xdead;
    unsigned long long id = ~0ull;
    CHECK_CU(CUDA_SUCCESS, resolve(ctx, s, &out, per_thread));
    CHECK_CU(CUDA_SUCCESS, id_of(ctx, out, &id));
    return id;
}

static void stream_slots(void)
{
    const uintptr_t *table = NULL;
    CHECK_CU(CUDA_SUCCESS, cuGetExportTable((const void **)&table, &CUBLASLT_CONTEXT));
    if (table == NULL)
        return;
    CHECK(table[0] == 64 * sizeof(void *));
    for (int i = 1; i < 64; i++)
        CHECK(table[i] != 0);
    CUcontext c;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&c, 0, 0));
    CUstream s;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 0));
    unsigned long long sid = 0, ptid = 0;
    CHECK_CU(CUDA_SUCCESS, cuStreamGetId(s, &sid));
    CHECK_CU(CUDA_SUCCESS, cuStreamGetId(CU_STREAM_PER_THREAD, &ptid));
    CHECK(sid != 0 && ptid != 0 && sid != ptid);
    /* The legacy stream, however it is named, is id 0, as cuStreamGetId says. */
    CHECK_EQ(0, stream_id_via_table(table, c, NULL, 0));
    CHECK_EQ(0, stream_id_via_table(table, NULL, CU_STREAM_LEGACY, 0));
    CHECK_EQ(sid, stream_id_via_table(table, c, s, 0));
    CHECK_EQ(sid, stream_id_via_table(table, c, s, 1));
    /* NULL with the per-thread flag, and CU_STREAM_PER_THREAD itself, are this thread's stream. */
    CHECK_EQ(ptid, stream_id_via_table(table, c, NULL, 1));
    CHECK_EQ(ptid, stream_id_via_table(table, c, CU_STREAM_PER_THREAD, 1));
    stream_slot resolve;
    void *p51 = (void *)table[51];
    memcpy(&resolve, &p51, sizeof resolve);
    CUstream out;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, resolve(c, s, NULL, 0));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, resolve(c, s, &out, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(c));
}

int main(void)
{
    table_checks();

    const struct cls_table *cls = NULL;
    CHECK_CU(CUDA_SUCCESS, cuGetExportTable((const void **)&cls, &CLS));
    if (cls == NULL)
        return check_done(NAME);
    static int key1, key2, va, va2, vb, vp, vr;
    void *v = NULL;

    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    /* No context current: NULL has nothing to name. */
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cls->put(NULL, &key1, &va, dtor));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cls->get(&v, NULL, &key1));

    CUcontext a, b;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&a, 0, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&b, 0, 0)); /* b is current now */

    /* An absent key is an error, which is how cudart learns to put. */
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cls->get(&v, a, &key1));
    CHECK_CU(CUDA_SUCCESS, cls->put(a, &key1, &va, dtor));
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, a, &key1));
    CHECK(v == &va);
    /* Another context does not see it. */
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cls->get(&v, b, &key1));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cls->get(&v, NULL, &key1));
    /* NULL is the current context (b); each context keeps its own value for the key. */
    CHECK_CU(CUDA_SUCCESS, cls->put(NULL, &key1, &vb, dtor));
    v = NULL;
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, b, &key1));
    CHECK(v == &vb);
    v = NULL;
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, a, &key1));
    CHECK(v == &va);
    /* A second put replaces the value. */
    CHECK_CU(CUDA_SUCCESS, cls->put(a, &key1, &va2, dtor));
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, a, &key1));
    CHECK(v == &va2);
    /* Deleting removes the entry without calling its destructor (the caller frees the value). */
    CHECK_CU(CUDA_SUCCESS, cls->put(a, &key2, &va, dtor));
    CHECK_CU(CUDA_SUCCESS, cls->del(a, &key2));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cls->get(&v, a, &key2));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cls->del(a, &key2));
    CHECK_EQ(0, ncalls);

    /* Destroying a runs the destructor of what a still holds, once, and leaves b's entry alone. */
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(a));
    expect_one_call(a, &key1, &va2, "cuCtxDestroy(a)");
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cls->get(&v, a, &key1));
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, b, &key1));
    CHECK(v == &vb);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(b));
    expect_one_call(b, &key1, &vb, "cuCtxDestroy(b)");

    /* The primary context: the last release ends it, a release before that does not. */
    CUcontext p, p2;
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p, 0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p2, 0));
    CHECK(p == p2);
    CHECK_CU(CUDA_SUCCESS, cls->put(p, &key1, &vp, dtor));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_EQ(0, ncalls);
    CHECK_CU(CUDA_SUCCESS, cls->get(&v, p, &key1));
    CHECK(v == &vp);
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRelease_v2(0));
    expect_one_call(p, &key1, &vp, "last cuDevicePrimaryCtxRelease");
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_EQ(0, ncalls);

    /* A reset ends it whatever its count. */
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p, 0));
    CHECK_CU(CUDA_SUCCESS, cls->put(p, &key2, &vr, dtor));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxReset_v2(0));
    expect_one_call(p, &key2, &vr, "cuDevicePrimaryCtxReset");
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cls->get(&v, p, &key2));

    stream_slots();
    return check_done(NAME);
}
