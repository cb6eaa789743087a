/* lp_gz.h -- gzip members: compress, verify, and read damaged files */
#ifndef LP_GZ_H
#define LP_GZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Compresses in_fd from its current offset to its end into one gzip member
 * appended to out_fd, at level (1..9). Returns 0 with the CRC-32 and length
 * of the input and the member's size, or with err and errno: LP_GZ_EWRITE
 * when writing to out_fd failed (a full disk is out_fd's), -1 otherwise
 * (reading in_fd, out of memory).
 */
#define LP_GZ_EWRITE (-2)

int lp_gz_compress(int in_fd, int out_fd, int level, uint32_t *crc,
                   uint64_t *len, uint64_t *zlen, char *err);

/* Decompresses the member at fd[off .. off+zlen) and checks that it holds
 * len bytes of CRC-32 crc. Returns 0, or -1 with err. */
int lp_gz_verify(int fd, off_t off, uint64_t zlen, uint32_t crc,
                 uint64_t len, char *err);

/* A reader of every member of a gzip file, going past damage. */
struct lp_gzr;

enum {
    LP_GZ_ERR = -1,             /* read error: errno */
    LP_GZ_END = 0,
    LP_GZ_DATA = 1,
    LP_GZ_DAMAGE = 2            /* a discontinuity: msg says where */
};

/* Borrows fd. NULL when out of memory. */
struct lp_gzr *lp_gzr_new(int fd);
void lp_gzr_free(struct lp_gzr *r);

/*
 * Reads decompressed bytes into buf[0..cap): LP_GZ_DATA with *got > 0,
 * LP_GZ_END, LP_GZ_ERR, or LP_GZ_DAMAGE with msg filled: a member was cut
 * short or failed its check; the bytes given before it may end in a
 * partial line or garbage, and reading goes on at the next member found
 * after the damaged member's start, so that a damaged member loses no
 * intact member after it (on a pipe, which cannot seek back, the search
 * starts where the damage was seen). A damaged member's bytes are read
 * twice, the second time only to look for a header. The garbage may hold
 * copies of what follows: a cut stored block gives the bytes after it as
 * its own, and a member stored at level 0 after it then comes out twice.
 */
int lp_gzr_read(struct lp_gzr *r, char *buf, size_t cap, size_t *got,
                char *msg, size_t msgcap);

#endif
