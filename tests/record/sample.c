/*
 * sample.c - many blocks of mixed sizes, for the `memsnap record --sample-rate` tests.
 * Usage: sample N.
 *
 * N blocks: sizes 16..2063 from a fixed sequence, every 64th 65536 bytes; up to 64 live at
 * once, all freed at the end. An exact recording gives the true figures; a sampled one must
 * estimate the bytes within a few percent.
 */
#include "progs.h"

int main(int argc, char **argv)
{
    long n = rp_arg(argc, argv, 1, 1000);
    void *ring[64] = {0};
    uint32_t x = 12345;
    for (long i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        size_t s = i % 64 == 63 ? 65536 : 16 + (x >> 8) % 2048;
        free(ring[i % 64]);
        ring[i % 64] = rp_keep(malloc(s));
    }
    for (int i = 0; i < 64; i++)
        free(ring[i]);
    return 0;
}
