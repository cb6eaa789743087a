/* lp_crc.h -- CRC-32C, with the CPU's crc32 instruction when it has one */
#ifndef LP_CRC_H
#define LP_CRC_H

#include <stddef.h>
#include <stdint.h>

/*
 * CRC-32C (Castagnoli, as iSCSI, ext4 and RocksDB use it) of p[0..n),
 * continuing crc (0 to start): lp_crc32c(0, "123456789", 9) is
 * 0xe3069283. On x86-64 with SSE 4.2 it takes the crc32 instruction,
 * eight bytes at a time, in far fewer instructions than zlib's crc32;
 * elsewhere a table, a byte at a time. The drain journal frames its records with it
 * (lp_journal.h); lp_wal keeps zlib's CRC-32 for its own format.
 */
uint32_t lp_crc32c(uint32_t crc, const void *p, size_t n);

/* The same by the table, whatever the CPU: for tests. */
uint32_t lp_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
