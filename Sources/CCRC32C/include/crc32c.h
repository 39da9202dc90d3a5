#ifndef LAMINAR_CRC32C_H
#define LAMINAR_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB: `crc` is the running value
/// (start with 0), the result is the CRC of everything fed so far. Uses the SSE4.2 `crc32`
/// instruction when the CPU has it, a table otherwise; both give the same result.
uint32_t laminar_crc32c(uint32_t crc, const void *data, size_t length);

#endif
