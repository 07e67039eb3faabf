/*
 * mmap_prog.c - mmap and munmap calls of known sizes, for the `memsnap record --mmap` tests.
 * Usage: mmap_prog K.
 *
 * Each of K rounds maps 3 anonymous regions (12288, 65536 and 1048576 bytes) and unmaps the
 * 65536-byte one: 3 mmaps, 1 munmap, 1126400 bytes mapped. No malloc, no stdio.
 */
#include "progs.h"

#include <sys/mman.h>

int main(int argc, char **argv)
{
    long k = rp_arg(argc, argv, 1, 1);
    static const size_t sizes[3] = {12288, 65536, 1048576};
    for (long r = 0; r < k; r++) {
        void *m[3];
        for (int i = 0; i < 3; i++) {
            m[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m[i] == MAP_FAILED)
                return 3;
            rp_keep(m[i]);
        }
        if (munmap(m[1], sizes[1]) != 0)
            return 3;
    }
    return 0;
}
