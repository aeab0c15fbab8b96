/*
 * Handle tables. A handle is (tag, kind, generation, index) packed into 64 bits: the top byte is
 * 0x76 ('v'), so a handle is never a valid host pointer, never NULL and never one of the special
 * stream values. Lookups are lock-free: slots live in chunks that are never freed, and a stale
 * handle fails the generation check.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "vgpu.h"

#define TAG 0x76ull
#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

struct slot {
    _Atomic uint32_t generation; /* odd while in use */
    _Atomic int kind;
    _Atomic(void *) obj;
};

static struct slot *_Atomic chunks[MAX_CHUNKS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_index;
static uint32_t *free_list;
static size_t free_count, free_cap;

static struct slot *slot_at(uint32_t index)
{
    struct slot *chunk = atomic_load_explicit(&chunks[index >> CHUNK_BITS], memory_order_acquire);
    return chunk == NULL ? NULL : &chunk[index & (CHUNK_SIZE - 1)];
}

uint64_t vgpu_handle_new(enum vgpu_kind kind, void *obj)
{
    pthread_mutex_lock(&lock);
    uint32_t index;
    if (free_count > 0) {
        index = free_list[--free_count];
    } else {
        index = next_index;
        if ((index >> CHUNK_BITS) >= MAX_CHUNKS) {
            pthread_mutex_unlock(&lock);
            return 0;
        }
        if (atomic_load(&chunks[index >> CHUNK_BITS]) == NULL) {
            struct slot *c = calloc(CHUNK_SIZE, sizeof *c);
            if (c == NULL) {
                pthread_mutex_unlock(&lock);
                return 0;
            }
            atomic_store_explicit(&chunks[index >> CHUNK_BITS], c, memory_order_release);
        }
        next_index++;
    }
    struct slot *s = slot_at(index);
    uint32_t gen = (atomic_load(&s->generation) + 1) | 1u;
    atomic_store(&s->obj, obj);
    atomic_store(&s->kind, (int)kind);
    atomic_store_explicit(&s->generation, gen, memory_order_release);
    pthread_mutex_unlock(&lock);
    return TAG << 56 | (uint64_t)kind << 48 | (uint64_t)(gen & 0xffffff) << 24 | index;
}

enum vgpu_kind vgpu_handle_kind(uint64_t handle)
{
    return (handle >> 56) == TAG ? (enum vgpu_kind)((handle >> 48) & 0xff) : 0;
}

void *vgpu_handle_get(uint64_t handle, enum vgpu_kind kind)
{
    if ((handle >> 56) != TAG || ((handle >> 48) & 0xff) != (uint64_t)kind)
        return NULL;
    uint32_t index = handle & 0xffffff;
    if (index >= CHUNK_SIZE * (uint32_t)MAX_CHUNKS)
        return NULL;
    struct slot *s = slot_at(index);
    if (s == NULL)
        return NULL;
    uint32_t gen = atomic_load_explicit(&s->generation, memory_order_acquire);
    if (!(gen & 1u) || (gen & 0xffffff) != ((handle >> 24) & 0xffffff) || atomic_load(&s->kind) != (int)kind)
        return NULL;
    return atomic_load(&s->obj);
}

void vgpu_handle_free(uint64_t handle)
{
    pthread_mutex_lock(&lock);
    uint32_t index = handle & 0xffffff;
    struct slot *s = (handle >> 56) == TAG ? slot_at(index) : NULL;
    if (s != NULL && (atomic_load(&s->generation) & 0xffffff) == ((handle >> 24) & 0xffffff)) {
        atomic_store(&s->generation, atomic_load(&s->generation) + 1);
        atomic_store(&s->obj, NULL);
        if (free_count == free_cap) {
            size_t cap = free_cap ? free_cap * 2 : 256;
            uint32_t *grown = realloc(free_list, cap * sizeof *grown);
            if (grown != NULL) {
                free_list = grown;
                free_cap = cap;
            }
        }
        if (free_count < free_cap)
            free_list[free_count++] = index;
    }
    pthread_mutex_unlock(&lock);
}

void vgpu_handles_reset(void)
{
    pthread_mutex_init(&lock, NULL);
    for (uint32_t i = 0; i < next_index; i++) {
        struct slot *s = slot_at(i);
        if (s != NULL && (atomic_load(&s->generation) & 1u)) {
            /* Objects are leaked on purpose: the parent's threads may still have used them. */
            atomic_store(&s->generation, atomic_load(&s->generation) + 1);
            atomic_store(&s->obj, NULL);
        }
    }
    /* Indices are not reused after the fork; bumped generations make the parent's handles fail. */
    free_count = 0;
}
