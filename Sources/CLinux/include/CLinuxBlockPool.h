// CLinux block pool: the memory nghttp2 allocates for one loop's server sessions, as C functions
// of nghttp2_mem's shape (LaminarHTTP/NGHTTP2Allocator.swift says why and what is bounded).
// Written in C so that each call is a few instructions: nghttp2 makes about a dozen per request.
#ifndef LAMINAR_CLINUX_BLOCK_POOL_H
#define LAMINAR_CLINUX_BLOCK_POOL_H

#include <stddef.h>

/// Free lists of blocks by size class (`class_step`-byte steps, a power of two, up to
/// `class_bytes_max`), each keeping at most `kept_bytes_per_class_max` bytes of free blocks;
/// larger blocks and the rest go to malloc and free. Every block has a 16-byte header before it
/// holding its capacity. One thread only. Returns NULL when out of memory (or `class_step` is
/// not a power of two).
void *CLinux_block_pool_create(size_t class_step, size_t class_bytes_max, size_t kept_bytes_per_class_max);
/// Frees the pool and every free block it keeps (blocks in use must have been freed first).
void CLinux_block_pool_destroy(void *pool);

/// nghttp2_mem's malloc, free, calloc and realloc over `pool` (its mem_user_data).
void *CLinux_block_pool_malloc(size_t size, void *pool);
void CLinux_block_pool_free(void *block, void *pool);
void *CLinux_block_pool_calloc(size_t count, size_t size, void *pool);
void *CLinux_block_pool_realloc(void *block, size_t size, void *pool);

#endif
