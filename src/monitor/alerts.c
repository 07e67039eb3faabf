/*
 * alerts.c - thresholds against the tightest memory limit, re-arming, and OOM detection, given
 * as events (memsnap.h, "Alerts"): what `memsnap track` turns into alert and oom records.
 *
 * The tightest limit is the one with the highest usage in percent among the memory cgroup's
 * limit, the system's memory and each GPU's. Levels rise with an event each time; falling
 * under the warning threshold gives an "ok" event; falling from critical to warning re-arms
 * critical silently (the next crossing alerts again). An OOM while sampling is the cgroup's
 * oom_kills rising between two full samples. After the command ended, a SIGKILL is an OOM when
 * its own cgroup's kill count rose (and was not given already), or when that cgroup hit its
 * limit (the failure count: some kernels, Linux 6.18 with cgroup v1, leave oom_kill at 0), or
 * when one of the last MS__RECENT full samples was at MS__AT_LIMIT_PCT of its host limit.
 */
#include "../core/internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MS__RECENT       3    /* full samples looked at for "at its limit" */
#define MS__AT_LIMIT_PCT 95.0 /* a SIGKILL at this much of the limit is an OOM */

struct ms_alerts {
    double warn, crit;    /* percent, 0: not set */
    char *own_cgroup;     /* NULL: none */
    ms_alert_level level; /* the current level */
    double recent[MS__RECENT];
    unsigned nrecent;
    bool oom_base_ok;
    uint64_t oom_base;    /* the sample cgroup's oom_kills last seen */
    int64_t own_oom_seen; /* the own cgroup's OOM kills already given */
};

static const char *const ms__level_names[] = {"ok", "warning", "critical"};

const char *ms_alert_level_name(ms_alert_level level)
{
    return (unsigned)level < 3 ? ms__level_names[level] : "?";
}

/* Makes (name, used, limit) the tightest when its percentage is the highest so far. */
static void ms__candidate(ms_usage *u, bool *found, const char *name, uint64_t used, uint64_t limit)
{
    double pct = 100.0 * (double)used / (double)limit;
    if (*found && pct <= u->percent)
        return;
    *found = true;
    snprintf(u->metric, sizeof(u->metric), "%s", name);
    u->used_bytes = used;
    u->limit_bytes = limit;
    u->percent = pct;
}

int ms_usage_tightest(const ms_snapshot *s, bool host_only, ms_usage *out)
{
    ms_usage u = {{0}, 0, 0, 0};
    bool found = false;
    if (!s || !out)
        return ms__error(MS_EINVAL, "ms_usage_tightest: no snapshot or no result");
    const ms_cgroup_mem *cg = &s->cgroup;
    const ms_system_mem *sy = &s->system;
    if (cg->version != MS_CGROUP_NONE && !cg->unlimited && ms_valid(cg, MS_CF_max_bytes) &&
        ms_valid(cg, MS_CF_current_bytes) && cg->max_bytes > 0)
        ms__candidate(&u, &found, "cgroup", cg->current_bytes, cg->max_bytes);
    if (ms_valid(sy, MS_SF_total_bytes) && sy->total_bytes > 0 &&
        (ms_valid(sy, MS_SF_available_bytes) || ms_valid(sy, MS_SF_free_bytes))) {
        uint64_t avail = ms_valid(sy, MS_SF_available_bytes) ? sy->available_bytes : sy->free_bytes;
        ms__candidate(&u, &found, "system", avail < sy->total_bytes ? sy->total_bytes - avail : 0,
                      sy->total_bytes);
    }
    for (uint32_t i = 0; !host_only && (s->captured & MS_CAPTURE_GPU) && i < s->gpu_count; i++) {
        const ms_gpu *g = &s->gpus[i];
        if (ms_valid(g, MS_GF_total_bytes) && ms_valid(g, MS_GF_used_bytes) && g->total_bytes) {
            char name[16];
            snprintf(name, sizeof(name), "gpu%u", (unsigned)g->index);
            ms__candidate(&u, &found, name, g->used_bytes, g->total_bytes);
        }
    }
    *out = u;
    return found ? 0 : MS_ENOENT; /* not a failure: no message */
}

int ms_alerts_open(ms_alerts **out, const ms_alerts_options *o)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_alerts_open: no handle to fill");
    *out = NULL;
    double warn = o ? o->warning_pct : 0, crit = o ? o->critical_pct : 0;
    if (!(warn >= 0 && warn <= 100) || !(crit >= 0 && crit <= 100))
        return ms__error(MS_EINVAL, "a threshold must be a percentage, 0 < PCT <= 100");
    if (warn > 0 && crit > 0 && warn >= crit)
        return ms__error(MS_EINVAL, "the warning threshold (%g) must be below the critical (%g)",
                         warn, crit);
    ms_alerts *a = calloc(1, sizeof(*a));
    if (!a || (o && o->own_cgroup && !(a->own_cgroup = strdup(o->own_cgroup)))) {
        free(a);
        return ms__error(MS_ENOMEM, "out of memory");
    }
    a->warn = warn;
    a->crit = crit;
    *out = a;
    return 0;
}

ms_alert_level ms_alerts_level(const ms_alerts *a)
{
    return a ? a->level : MS_ALERT_OK;
}

int ms_alerts_check(ms_alerts *a, const ms_snapshot *snap, ms_alert_event *out, size_t max)
{
    if (!a || !snap || (max && !out))
        return ms__error(MS_EINVAL, "ms_alerts_check: no alerts, snapshot or events");
    int n = 0;
    ms_usage host;
    a->recent[a->nrecent++ % MS__RECENT] =
        ms_usage_tightest(snap, true, &host) == 0 ? host.percent : 0;
    /* the level first: a sample that crosses the threshold and shows the OOM kill gives its
     * alert before the OOM (a flight recorder bundle then holds the alert) */
    ms_usage u;
    if ((a->warn > 0 || a->crit > 0) && ms_usage_tightest(snap, false, &u) == 0) {
        ms_alert_level level = a->crit > 0 && u.percent >= a->crit   ? MS_ALERT_CRITICAL
                               : a->warn > 0 && u.percent >= a->warn ? MS_ALERT_WARNING
                                                                     : MS_ALERT_OK;
        ms_alert_level old = a->level;
        a->level = level;
        if ((level > old || (level == MS_ALERT_OK && old > MS_ALERT_OK)) && (size_t)n < max)
            out[n++] = (ms_alert_event){.kind = MS_ALERT_LEVEL,
                                        .time_ns = snap->timestamp_ns,
                                        .level = level,
                                        .usage = u,
                                        .oom_kills = -1};
    }
    const ms_cgroup_mem *cg = &snap->cgroup;
    if (ms_valid(cg, MS_CF_oom_kills)) {
        bool ours = a->own_cgroup && strcmp(cg->path, a->own_cgroup) == 0;
        if (a->oom_base_ok && cg->oom_kills > a->oom_base && (size_t)n < max)
            out[n++] = (ms_alert_event){.kind = MS_ALERT_OOM,
                                        .time_ns = snap->timestamp_ns,
                                        .reason = "cgroup_oom_kill",
                                        .oom_kills = ms__sat_i64(cg->oom_kills)};
        a->oom_base = cg->oom_kills;
        a->oom_base_ok = true;
        if (ours)
            a->own_oom_seen = ms__sat_i64(cg->oom_kills);
    }
    return n;
}

int ms_alerts_exit(ms_alerts *a, const ms_alerts_exit_info *x, ms_alert_event *out)
{
    if (!a || !x || !out)
        return ms__error(MS_EINVAL, "ms_alerts_exit: no alerts, exit or event");
    *out = (ms_alert_event){.kind = MS_ALERT_OOM, .oom_kills = x->cgroup_oom_kills};
    /* a SIGKILL that the caller sent (a --kill-after) is not the OOM killer's */
    bool killed =
        WIFSIGNALED(x->wait_status) && WTERMSIG(x->wait_status) == SIGKILL && !x->sent_kill;
    if (x->cgroup_oom_kills > 0) {
        out->reason = "cgroup_oom_kill";
        return x->cgroup_oom_kills > a->own_oom_seen;
    }
    if (!killed)
        return 0;
    out->reason = "sigkill_at_limit";
    if (x->cgroup_failcnt > 0)
        return 1;
    double top = 0;
    for (unsigned i = 0; i < MS__RECENT && i < a->nrecent; i++)
        top = a->recent[i] > top ? a->recent[i] : top;
    out->usage.percent = top;
    return top >= MS__AT_LIMIT_PCT;
}

void ms_alerts_close(ms_alerts *a)
{
    if (!a)
        return;
    free(a->own_cgroup);
    free(a);
}
