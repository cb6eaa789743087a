/* lp_utf8.h -- strict UTF-8 sequence check (RFC 3629) */
#ifndef LP_UTF8_H
#define LP_UTF8_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence starting at p (1..4), or 0 when it is
 * not valid: overlong forms, surrogates (U+D800..U+DFFF), code points above
 * U+10FFFF, stray continuation bytes and truncated sequences are refused.
 * Reads at most min(n, 4) bytes.
 */
static inline size_t lp_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;               /* continuation byte or overlong 2-byte */
    if (c < 0xe0) {
        if (n < 2 || (p[1] & 0xc0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xf0) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0;           /* overlong */
        if (c == 0xed && p[1] >= 0xa0)
            return 0;           /* surrogate */
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;           /* overlong */
        if (c == 0xf4 && p[1] >= 0x90)
            return 0;           /* above U+10FFFF */
        return 4;
    }
    return 0;
}

#endif
