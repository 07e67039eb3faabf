/*
 * cglimit.h - a child memory cgroup made for one command (`memsnap run --memory-limit`, and
 * the same option on monitor and track), v1 or v2, as `systemd-run -p MemoryMax` would.
 *
 * The cgroup is created under the memory hierarchy of the calling process's own cgroup, named
 * memsnap-<pid>-<seq>, with its limit set; the command's process enters it (in the forked
 * child, before exec); after the command ends it is removed.
 */
#ifndef MEMSNAP_CGLIMIT_H
#define MEMSNAP_CGLIMIT_H

#include "memsnap.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct ms__cglimit ms__cglimit;

/* Creates the child cgroup with its memory limit: v2 memory.max (and memory.swap.max = 0
 * where that file exists), v1 memory.limit_in_bytes (and memory.memsw.limit_in_bytes where it
 * exists). procfs and sysfs are the roots (NULL: /proc and /sys). Returns 0, or a negative
 * MS_E* code with a one-line reason in err (e.g. "no writable memory cgroup hierarchy:
 * /sys/fs/cgroup/memory/x: Permission denied"). */
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

/* Removes the cgroup (processes still in it are moved to the parent first) and frees cg.
 * Returns 0, or a negative MS_E* code when the directory could not be removed. */
int ms__cglimit_destroy(ms__cglimit *cg);

#endif /* MEMSNAP_CGLIMIT_H */
