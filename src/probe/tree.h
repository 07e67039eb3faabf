/*
 * tree.h - the process-tree probe (tree.c): a process and its descendants from procfs, for the
 * sampler's --tree members. Internal to libmemsnap.
 */
#ifndef MEMSNAP_PROBE_TREE_H
#define MEMSNAP_PROBE_TREE_H

#include "memsnap.h"

/* Reads "<procfs>/<pid>/stat" into p (zeroed first): pid, parent, command name, state and,
 * where the line has it, the number of threads; no figures. Returns 0 or -1. */
int ms__tree_stat(const char *procfs, pid_t pid, ms_tree_member *p);

/* Finds root and its descendants into members (at most max), root first, then breadth first,
 * each one's children in pid order, without figures. Returns how many: 0 when root is gone. */
size_t ms__tree_find(const char *procfs, pid_t root, ms_tree_member *members, size_t max);

/* Orders members by pid (for bsearch over a previous list). */
int ms__tree_member_cmp(const void *a, const void *b);

#endif /* MEMSNAP_PROBE_TREE_H */
