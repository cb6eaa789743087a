/* lp_crc.c -- CRC-32C, with the CPU's crc32 instruction when it has one */
#include <pthread.h>
#include <string.h>

#include "lp_crc.h"

#define POLY 0x82f63b78u        /* Castagnoli, reflected */

static uint32_t table[256];
static int hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t sw(uint32_t c, const unsigned char *p, size_t n)
{
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t hw_crc(uint32_t c, const unsigned char *p, size_t n)
{
    uint64_t c64;

    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t lp_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&once, init);
    crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (hw)
        return ~hw_crc(crc, p, n);
#endif
    return ~sw(crc, p, n);
}

uint32_t lp_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&once, init);
    return ~sw(~crc, p, n);
}
