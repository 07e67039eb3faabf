/*
 * cmd_diff.c - `memsnap diff A.json B.json`: the delta report of two saved snapshots.
 */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct diff_opts {
    ms_format fmt;
};

/* --help, around the option lines. */
static const char diff_head[] =
    "usage: memsnap diff [--format text|json] BEFORE.json AFTER.json\n\n"
    "Compare two snapshots saved with 'memsnap snapshot --format json' ('-' reads\n"
    "standard input). Text prints the one-line delta, then a before/after table of\n"
    "every field; json prints the signed differences (null where a side lacks it).\n\n";
static const char diff_tail[] = "\nexample: memsnap diff before.json after.json\n";

static const struct cli_opt diff_table[] = {
    OPT_FORMAT(struct diff_opts, fmt, CLI_FMT_TEXT | CLI_FMT_JSON, "text (default) or json"),
    OPT_HELP(),
    OPT_END(),
};

static const struct cli_options diff_options = {
    .cmd = "diff", .opts = diff_table, .head = diff_head, .tail = diff_tail};

/* Loads one snapshot file; prints the reason and returns -1 on failure. */
static int diff_load(const char *path, ms_snapshot *snap)
{
    size_t len;
    char *text = cli_read_file("diff", path, &len);
    if (!text)
        return -1;
    char err[256];
    int rc = ms_snapshot_from_json(text, len, snap, err, sizeof(err));
    free(text);
    if (rc) {
        cli_error("diff", "%s: %s", path, err);
        return -1;
    }
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    struct diff_opts o = {.fmt = MS_FORMAT_TEXT};
    int rc = cli_parse(&diff_options, argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (cli_operands(&diff_options, argc, 2, "two snapshot files"))
        return CLI_USAGE;
    ms_snapshot before, after;
    const char *bpath = argv[optind], *apath = argv[optind + 1];
    if (diff_load(bpath, &before) != 0 || diff_load(apath, &after) != 0)
        return CLI_FAIL;
    /* Not errors (a delta of two processes can be what is wanted), but easy to miss. */
    if (before.pid && after.pid && before.pid != after.pid)
        cli_error("diff", "note: %s is of pid %d and %s of pid %d: two processes compared", bpath,
                  (int)before.pid, apath, (int)after.pid);
    if (after.timestamp_ns && after.timestamp_ns < before.timestamp_ns)
        cli_error("diff", "note: %s was taken before %s (the order is BEFORE AFTER)", apath, bpath);
    if (o.fmt == MS_FORMAT_JSON) {
        rc = ms_report_json(stdout, &before, &after);
    } else {
        rc = ms_report_line(stdout, &before, &after);
        if (rc == 0) {
            putchar('\n');
            rc = ms_report_table(stdout, &before, &after);
        }
    }
    if (rc || fflush(stdout) != 0) {
        cli_error("diff", "writing the report failed");
        return CLI_FAIL;
    }
    return CLI_OK;
}
