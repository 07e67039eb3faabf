/*
 * tree.c - the process-tree probe: a process and every descendant, found through the kernel's
 * lists of each thread's children (<procfs>/PID/task/TID/children), so that the cost follows
 * the tree and not the number of processes on the machine; where there are no such lists (a
 * kernel without CONFIG_PROC_CHILDREN, a fixture tree) by one scan of every <procfs>/PID/stat,
 * matched by parent. Only who is in the tree: the sampler (src/monitor/sampler.c) reads their
 * figures through its session.
 */
#include "tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ms__tree_stat(const char *procfs, pid_t pid, ms_tree_member *p)
{
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", procfs, (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* the command name may hold ')' and spaces: it runs to the last ')' */
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -1;
    int ppid_v;
    char st;
    long threads = 0; /* field 20 */
    int got = sscanf(close_paren + 1,
                     " %c %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %ld", &st,
                     &ppid_v, &threads);
    if (got < 2)
        return -1;
    memset(p, 0, sizeof(*p));
    p->pid = (int32_t)pid;
    p->ppid = (int32_t)ppid_v;
    size_t clen = (size_t)(close_paren - open_paren - 1);
    if (clen >= sizeof(p->comm))
        clen = sizeof(p->comm) - 1;
    memcpy(p->comm, open_paren + 1, clen);
    p->threads = got == 3 && threads > 0 ? (uint32_t)threads : 0;
    p->state = st;
    return 0;
}

int ms__tree_member_cmp(const void *a, const void *b)
{
    int32_t x = ((const ms_tree_member *)a)->pid, y = ((const ms_tree_member *)b)->pid;
    return (x > y) - (x < y);
}

/* The list being built: members[0..n) of at most max. */
struct ms__tree_list {
    const char *procfs;
    ms_tree_member *members;
    size_t n, max;
    pid_t root;
};

/* Appends pid (read from its stat) unless it is root, ended or the list is full; its stat
 * must name parent (not a pid reused since the children list was read). */
static void ms__tree_add(struct ms__tree_list *l, pid_t pid, pid_t parent)
{
    if (pid > 0 && pid != l->root && l->n < l->max &&
        ms__tree_stat(l->procfs, pid, &l->members[l->n]) == 0 && l->members[l->n].ppid == parent)
        l->n++;
}

/* Adds the children listed in the file at path (pids and spaces). */
static void ms__tree_children_file(struct ms__tree_list *l, const char *path, pid_t parent)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* the thread ended */
    char buf[4096];
    ssize_t got;
    long v = -1; /* the pid being read, across reads */
    while ((got = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < got; i++)
            if (buf[i] >= '0' && buf[i] <= '9') {
                v = v > INT_MAX / 10 ? INT_MAX : (v < 0 ? 0 : v * 10) + (buf[i] - '0');
            } else if (v >= 0) {
                ms__tree_add(l, (pid_t)v, parent);
                v = -1;
            }
    if (v >= 0)
        ms__tree_add(l, (pid_t)v, parent);
    close(fd);
}

/* Breadth first through the children lists. Returns how many (0: root is gone), or SIZE_MAX
 * where there are no such lists. */
static size_t ms__tree_children(struct ms__tree_list *l)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/task/%d/children", l->procfs, (int)l->root, (int)l->root);
    if (access(path, F_OK) != 0)
        return SIZE_MAX;
    if (ms__tree_stat(l->procfs, l->root, &l->members[0]) != 0)
        return 0;
    l->n = 1;
    for (size_t k = 0; k < l->n && l->n < l->max; k++) {
        size_t first = l->n;
        int parent = (int)l->members[k].pid;
        /* one live thread: its list, without a look at task/ (a leader that exited, state Z,
         * left its children to another thread) */
        if (l->members[k].threads == 1 && l->members[k].state != 'Z') {
            snprintf(path, sizeof(path), "%s/%d/task/%d/children", l->procfs, parent, parent);
            ms__tree_children_file(l, path, parent);
        } else {
            snprintf(path, sizeof(path), "%s/%d/task", l->procfs, parent);
            DIR *d = opendir(path);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL)
                if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
                    snprintf(path, sizeof(path), "%s/%d/task/%s/children", l->procfs, parent,
                             e->d_name);
                    ms__tree_children_file(l, path, parent);
                }
            if (d)
                closedir(d);
        }
        qsort(l->members + first, l->n - first, sizeof(*l->members), ms__tree_member_cmp);
        size_t w = first; /* once each: a child moved between two threads' lists as read */
        for (size_t i = first; i < l->n; i++)
            if (i == first || l->members[i].pid != l->members[w - 1].pid)
                l->members[w++] = l->members[i];
        l->n = w;
    }
    return l->n;
}

/* The same by one scan of every <procfs>/PID/stat, matched by ppid. */
static size_t ms__tree_all(struct ms__tree_list *l)
{
    DIR *d = opendir(l->procfs);
    if (!d)
        return 0;
    ms_tree_member *all = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
            strspn(e->d_name, "0123456789") != strlen(e->d_name))
            continue;
        if (n == cap) {
            ms_tree_member *na = realloc(all, (cap = cap ? cap * 2 : 256) * sizeof(*all));
            if (!na)
                break;
            all = na;
        }
        if (ms__tree_stat(l->procfs, (pid_t)atoi(e->d_name), &all[n]) == 0)
            n++;
    }
    closedir(d);
    /* Breadth first from root: members[] grows as children are found. */
    size_t nm = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == l->root) {
            l->members[nm++] = all[i];
            break;
        }
    for (size_t k = 0; k < nm; k++)
        for (size_t i = 0; i < n && nm < l->max; i++)
            if (all[i].ppid == l->members[k].pid && all[i].pid != l->root)
                l->members[nm++] = all[i];
    free(all);
    return nm;
}

size_t ms__tree_find(const char *procfs, pid_t root, ms_tree_member *members, size_t max)
{
    if (max == 0)
        return 0;
    struct ms__tree_list l = {.procfs = procfs, .members = members, .max = max, .root = root};
    size_t n = ms__tree_children(&l);
    return n == SIZE_MAX ? ms__tree_all(&l) : n;
}
