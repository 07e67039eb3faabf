/*
 * markers.c - the tracker API of memsnap.h: markers and a custom pool reported with
 * MS_TRACE_ALLOC / MS_TRACE_FREE, for `memsnap record` tests. Usage: markers K.
 *
 * Each of K rounds: MS_TRACE_MARKER("round"), three 100-byte blocks from a static pool
 * reported as allocations, one of them reported freed. Per round: 1 marker, 3 allocations,
 * 1 free, 300 bytes, 200 bytes leaked. Nothing calls malloc. Without the tracker the API's
 * weak symbols are NULL and the program still runs and exits 0.
 */
#include "memsnap.h"
#include "progs.h"

#define MAX_K 1000

static char pool[3 * MAX_K][100];

int main(int argc, char **argv)
{
    long k = rp_arg(argc, argv, 1, 1);
    if (k < 0 || k > MAX_K)
        return 2;
    for (long r = 0; r < k; r++) {
        MS_TRACE_MARKER("round");
        for (int i = 0; i < 3; i++)
            MS_TRACE_ALLOC(pool[3 * r + i], sizeof(pool[0]));
        MS_TRACE_FREE(pool[3 * r + 1]);
    }
    return 0;
}
