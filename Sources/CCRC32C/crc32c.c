// CRC-32C with a hardware path (SSE4.2, chosen once at start-up) and a portable
// slicing-by-1 table fallback. The data file checks a CRC on every record it trusts,
// so this sits on the recovery and compaction paths.
#include "crc32c.h"
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[256];

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc32c_soft(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8; n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static uint32_t (*impl)(uint32_t, const unsigned char *, size_t) = 0;

__attribute__((constructor)) static void crc32c_init(void) {
    build_table();
    impl = crc32c_soft;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) impl = crc32c_hw;
#endif
}

uint32_t laminar_crc32c(uint32_t crc, const void *data, size_t length) {
    return impl(crc, (const unsigned char *)data, length);
}
