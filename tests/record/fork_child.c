/*
 * fork_child.c - a parent and its forked child, each allocating known amounts, for
 * `memsnap record` tests. Usage: fork_child K. Prints the child's pid (write(2), no stdio).
 *
 * Parent: K x malloc(1111), fork, wait, then K x malloc(3333); all leaked. Its trace:
 * 2K allocations, 4444 K bytes, no frees, 4444 K bytes leaked.
 * Child (its own trace FILE.<pid>): 5K x malloc(2222), frees 2K of them and one block it
 * inherited from the parent (K >= 1), then exit(0). Its trace: 5K allocations, 2K + 1 frees of
 * which 1 unmatched (the block is not in the child's trace), 11110 K bytes, 6666 K leaked.
 * Exits with the child's status.
 */
#include "progs.h"

#include <sys/wait.h>

#define MAX_K 1000

int main(int argc, char **argv)
{
    long k = rp_arg(argc, argv, 1, 1);
    if (k < 0 || k > MAX_K)
        return 2;
    static void *mine[MAX_K];
    for (long i = 0; i < k; i++)
        mine[i] = rp_keep(malloc(1111));
    pid_t pid = fork();
    if (pid < 0)
        return 3;
    if (pid == 0) {
        static void *child[5 * MAX_K];
        for (long i = 0; i < 5 * k; i++)
            child[i] = rp_keep(malloc(2222));
        for (long i = 0; i < 2 * k; i++)
            free(child[i]);
        if (k > 0)
            free(mine[0]); /* inherited: an unmatched free in the child's trace */
        exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 3;
    rp_put_u64((uint64_t)pid);
    for (long i = 0; i < k; i++)
        rp_keep(malloc(3333));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
