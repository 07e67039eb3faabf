/*
 * cglimit.h - a child memory cgroup made for one command (`memsnap run --memory-limit`, and
 * the same option on monitor and track), v1 or v2, as `systemd-run -p MemoryMax` would.
 *
 * The cgroup is created under the memory hierarchy of the calling process's own cgroup, named
 * memsnap-<pid>-<seq>, with its limit set; the command's process enters it (in the forked
 * child, before exec); after the command ends it is removed.
 *
 * Not on a cgroup filesystem (a fixture tree in the tests), control files are created as
 * regular files and removal deletes them before rmdir; see cglimit.c.
 */
#ifndef MEMSNAP_CGLIMIT_H
#define MEMSNAP_CGLIMIT_H

#include "memsnap.h"

#include <stdint.h>
#include <sys/types.h>

/* The public ms_cglimit (memsnap.h); these are its internal entry points with errors in a
 * caller's buffer. */
typedef struct ms_cglimit ms__cglimit;

/* Creates the child cgroup with its memory limit: v2 memory.max (and memory.swap.max = 0
 * where that file exists), v1 memory.limit_in_bytes (and memory.memsw.limit_in_bytes where it
 * exists). procfs and sysfs are the roots (NULL: /proc and /sys). Returns 0, or a negative
 * MS_E* code with a one-line reason in err (e.g. "no writable memory cgroup hierarchy:
 * /sys/fs/cgroup/memory/x: Permission denied"). When the caller's own cgroup could not take the
 * child and it was made under the hierarchy root instead, the result is 0 and err holds why (as
 * ms__cglimit_note() does); otherwise err is "" on success. */
int ms__cglimit_create(ms__cglimit **out, const char *procfs, const char *sysfs,
                       uint64_t limit_bytes, char *err, size_t errlen);

/* Moves pid (0: the caller) into the cgroup. Uses only open, write and close, so that a forked
 * child may call it before exec. Returns 0 or a negative MS_E* code. */
int ms__cglimit_enter(const ms__cglimit *cg, pid_t pid);

/* The cgroup's path as /proc/PID/cgroup shows it ("/memsnap-123-0" under the hierarchy). */
const char *ms__cglimit_path(const ms__cglimit *cg);
/* The cgroup's directory in sysfs ("/sys/fs/cgroup/memory/.../memsnap-123-0"). */
const char *ms__cglimit_dir(const ms__cglimit *cg);
/* 1 or 2. */
int ms__cglimit_version(const ms__cglimit *cg);
/* The limit set, in bytes. */
uint64_t ms__cglimit_limit(const ms__cglimit *cg);
/* The cgroup's OOM-kill count (v2 memory.events oom_kill, v1 memory.oom_control oom_kill);
 * -1 when it cannot be read. */
int64_t ms__cglimit_oom_kills(const ms__cglimit *cg);
/* The cgroup's current usage in bytes (memory.current / memory.usage_in_bytes); -1 when it
 * cannot be read. */
int64_t ms__cglimit_current(const ms__cglimit *cg);
/* The cgroup's peak usage in bytes (memory.peak, from Linux 5.19 / memory.max_usage_in_bytes);
 * -1 when it cannot be read. */
int64_t ms__cglimit_peak(const ms__cglimit *cg);
/* How often usage hit the limit (v2 memory.events max, v1 memory.failcnt plus
 * memory.memsw.failcnt); -1 when it cannot be read. With a SIGKILL exit it tells an OOM kill on
 * kernels whose oom_kills is -1 (a recent kernel may leave the v1 counters at 0: Linux 6.18
 * does, even across an OOM kill). */
int64_t ms__cglimit_failcnt(const ms__cglimit *cg);
/* "" or why the caller's own cgroup was not used (the child is then under the hierarchy root). */
const char *ms__cglimit_note(const ms__cglimit *cg);

/* Removes the cgroup's directory (processes still in it are moved to the parent first; rmdir
 * is retried for a second while the kernel says EBUSY) without freeing cg; a second call does
 * nothing. Returns 0, or a negative MS_E* code with "cannot remove cgroup DIR: reason" in err
 * (err may be NULL). */
int ms__cglimit_remove(ms__cglimit *cg, char *err, size_t errlen);

/* Removes the cgroup as ms__cglimit_remove does (unless already removed) and frees cg (NULL is
 * allowed). Returns 0, or a negative MS_E* code when the directory could not be removed. */
int ms__cglimit_destroy(ms__cglimit *cg);

#endif /* MEMSNAP_CGLIMIT_H */
