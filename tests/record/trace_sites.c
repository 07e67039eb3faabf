/*
 * trace_sites.c - prints the allocation sites of a trace, one line each, sorted: the size, the
 * stack's return addresses (innermost first) and how many allocations (and reallocations) had
 * them. The record test runs a program twice with ASLR off, under two unwinders, and expects
 * the same lines: the stacks memsnap's own unwinders find are libunwind's.
 * Usage: trace_sites TRACE
 */
#include "trace/reader.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: trace_sites TRACE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct ms__trace_data *td = NULL;
    char err[256];
    if (fd < 0 || ms__trace_load_fd(&td, fd, err, sizeof(err)) != 0) {
        fprintf(stderr, "trace_sites: cannot read %s\n", argv[1]);
        return 1;
    }
    close(fd);
    uint64_t *count = calloc(td->ninfos + 1, sizeof(*count));
    char **lines = calloc(td->ninfos + 1, sizeof(*lines));
    if (!count || !lines)
        return 1;
    for (size_t i = 0; i < td->nslots; i++) {
        const struct ms__trace_event *e = &td->events[i];
        if ((e->kind == MS__EV_ALLOC || e->kind == MS__EV_REALLOC) && e->info < td->ninfos)
            count[e->info]++;
    }
    size_t n = 0;
    for (size_t i = 0; i < td->ninfos; i++) {
        if (!count[i])
            continue;
        const struct ms__trace_info *in = &td->infos[i];
        uint32_t image = td->threads[in->thread].image;
        uint64_t ips[256];
        size_t depth = ms__trace_stack_walk(td, image, in->stack, ips, 256);
        char *line = malloc(32 + depth * 19 + 24);
        if (!line)
            return 1;
        int len = sprintf(line, "%llu", (unsigned long long)in->size);
        for (size_t k = 0; k < depth; k++)
            len += sprintf(line + len, " %llx", (unsigned long long)ips[k]);
        sprintf(line + len, " x%llu", (unsigned long long)count[i]);
        lines[n++] = line;
    }
    qsort(lines, n, sizeof(*lines), cmp_lines);
    for (size_t i = 0; i < n; i++)
        puts(lines[i]);
    ms__trace_data_free(td);
    return 0;
}
