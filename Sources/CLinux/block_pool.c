#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "CLinuxBlockPool.h"

enum { HEADER_BYTES = 16 };

struct free_list {
    void *head;  // the block's first word links to the next
    size_t count;
    size_t limit;
};

struct block_pool {
    unsigned class_shift;  // class_step is 1 << class_shift
    size_t class_step;
    size_t class_bytes_max;
    size_t class_count;
    struct free_list lists[];
};

void *CLinux_block_pool_create(size_t class_step, size_t class_bytes_max, size_t kept_bytes_per_class_max) {
    if (class_step == 0 || (class_step & (class_step - 1)) != 0) return NULL;
    size_t class_count = class_bytes_max / class_step;
    struct block_pool *pool = malloc(sizeof(struct block_pool) + class_count * sizeof(struct free_list));
    if (pool == NULL) return NULL;
    pool->class_shift = (unsigned)__builtin_ctzl(class_step);
    pool->class_step = class_step;
    pool->class_bytes_max = class_bytes_max;
    pool->class_count = class_count;
    for (size_t c = 0; c < class_count; c++) {
        pool->lists[c].head = NULL;
        pool->lists[c].count = 0;
        pool->lists[c].limit = kept_bytes_per_class_max / ((c + 1) * class_step);
    }
    return pool;
}

void CLinux_block_pool_destroy(void *p) {
    struct block_pool *pool = p;
    if (pool == NULL) return;
    for (size_t c = 0; c < pool->class_count; c++) {
        void *block = pool->lists[c].head;
        while (block != NULL) {
            void *next = *(void **)block;
            free((char *)block - HEADER_BYTES);
            block = next;
        }
    }
    free(pool);
}

static inline size_t capacity_of(void *block) { return *(size_t *)((char *)block - HEADER_BYTES); }

static void *fresh(size_t capacity) {
    if (capacity > SIZE_MAX - HEADER_BYTES) return NULL;
    char *raw = malloc(capacity + HEADER_BYTES);
    if (raw == NULL) return NULL;
    *(size_t *)raw = capacity;
    return raw + HEADER_BYTES;
}

void *CLinux_block_pool_malloc(size_t size, void *p) {
    struct block_pool *pool = p;
    if (size <= pool->class_bytes_max) {
        size_t c = size == 0 ? 0 : (size - 1) >> pool->class_shift;
        struct free_list *list = &pool->lists[c];
        void *block = list->head;
        if (block != NULL) {
            list->head = *(void **)block;
            list->count--;
            return block;
        }
        return fresh((c + 1) * pool->class_step);
    }
    return fresh(size);
}

void CLinux_block_pool_free(void *block, void *p) {
    struct block_pool *pool = p;
    if (block == NULL) return;
    size_t capacity = capacity_of(block);
    if (capacity <= pool->class_bytes_max) {
        struct free_list *list = &pool->lists[(capacity >> pool->class_shift) - 1];
        if (list->count < list->limit) {
            *(void **)block = list->head;
            list->head = block;
            list->count++;
            return;
        }
    }
    free((char *)block - HEADER_BYTES);
}

void *CLinux_block_pool_calloc(size_t count, size_t size, void *pool) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) return NULL;
    void *block = CLinux_block_pool_malloc(bytes, pool);
    if (block != NULL) memset(block, 0, bytes);
    return block;
}

void *CLinux_block_pool_realloc(void *old, size_t size, void *pool) {
    if (old == NULL) return CLinux_block_pool_malloc(size, pool);
    size_t capacity = capacity_of(old);
    if (size <= capacity) return old;
    void *block = CLinux_block_pool_malloc(size, pool);
    if (block == NULL) return NULL;
    memcpy(block, old, capacity);
    CLinux_block_pool_free(old, pool);
    return block;
}
