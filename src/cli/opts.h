/*
 * opts.h - declarative option tables for the subcommands (git's parse-options idea).
 *
 * A subcommand declares its options once, in a table of struct cli_opt, and that one table
 * gives getopt_long its short and long option strings, gives --help its option lines, and
 * gives the usage errors (unknown option, missing value, bad value). Values go into the
 * command's own options struct, at the offset each entry names, so that a table can be static
 * const and shared: monitor, track and run share one table, each entry saying which of them
 * take it (`only`). What no plain type expresses (a seconds value with its own error, an option
 * that sets a mode) goes through a callback.
 *
 *     struct diff_opts { ms_format fmt; };
 *     static const struct cli_opt diff_table[] = {
 *         OPT_FORMAT('F', "format", struct diff_opts, fmt, FORMATS, "text (default) or json"),
 *         OPT_HELP(),
 *         OPT_END(),
 *     };
 *     struct cli_options p = {.cmd = "diff", .opts = diff_table,
 *                             .head = "usage: memsnap diff ...\n\n", .tail = "\nexample: ...\n"};
 *     int rc = cli_parse(&p, argc, argv, &o); // 0: operands at argv[optind]
 */
#ifndef MEMSNAP_CLI_OPTS_H
#define MEMSNAP_CLI_OPTS_H

#include "memsnap.h"

#include <getopt.h> /* optind, where the operands start */
#include <stddef.h>
#include <stdio.h>

/* What cli_parse() returns after printing --help (the command then exits 0). */
enum { CLI_HELP = -1 };

/* How an option's value is taken and where it goes. */
enum cli_opt_type {
    CLI_T_END,      /* ends the table */
    CLI_T_HELP,     /* prints the command's --help; cli_parse returns CLI_HELP */
    CLI_T_BOOL,     /* no value; the bool field is set true */
    CLI_T_SET_INT,  /* no value; the int field is set to `value` */
    CLI_T_STRING,   /* the const char * field is the value as given */
    CLI_T_NONEMPTY, /* as CLI_T_STRING, and "" is a usage error ("empty --output") */
    CLI_T_UINT,     /* the unsigned long field: 1..value (0: no upper bound); else `bad` */
    CLI_T_PID,      /* the pid_t field: 1..INT_MAX, else "invalid PID 'X'" */
    CLI_T_FORMAT,   /* the ms_format field: one of the formats in `value` (1u << fmt each) */
    CLI_T_CALLBACK, /* fn(p, o, arg, ctx) stores it (arg NULL when it takes no value) */
};

struct cli_options;
struct cli_opt;
/* Takes one option; returns 0, or CLI_USAGE after printing the error with cli_error. */
typedef int (*cli_opt_fn)(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                          void *ctx);

/* One option. */
struct cli_opt {
    enum cli_opt_type type;
    char letter;      /* the short form (-p), 0 when none */
    const char *name; /* the long form (--pid) */
    const char *arg;  /* the value's name in --help ("PID"); NULL: the option takes no value */
    const char *help; /* its --help text; '\n' goes on at the help column; NULL: not listed */
    unsigned only;    /* the commands of a shared table that take it, bit (1u << kind) each;
                         0: every one */
    size_t off;       /* where the value goes in the command's options struct */
    long value;       /* SET_INT: the value set; UINT: the largest allowed (0: no bound);
                         FORMAT: the formats allowed */
    const char *bad;  /* UINT, and a CALLBACK that calls cli_bad_value: the error for a bad
                         value, a printf format with one %s (the value) */
    cli_opt_fn fn;    /* CALLBACK */
    int id;           /* CALLBACK: what the callback tells options apart by */
};

/* A command's options, as cli_parse() and cli_opts_help() take them. */
struct cli_options {
    const char *cmd;            /* the subcommand, as errors name it ("snapshot") */
    const struct cli_opt *opts; /* its table, ended by OPT_END() */
    unsigned kind;              /* this command's bit in the entries' `only`; 0: take all */
    int column;                 /* --help: the column where the help text starts (0: 21) */
    bool stop_at_operand;       /* options end at the first operand (a program to run, whose
                                   own options stay its own: getopt's '+') */
    const char *head;           /* --help: the text before the option lines (usage, what it
                                   does) */
    const char *tail;           /* --help: the text after them (details, examples); NULL: none */
};

/* Checks at compile time that field f of struct T has type `type` (an error otherwise). */
#define CLI__OFF(T, f, type) (offsetof(T, f) + 0 * sizeof((type *){&((T *)0)->f}))

/* Table entries. The trailing arguments, when given, are more designated initializers, such
 * as `.only = K_TRACK`. */
#define OPT_END()                                                                                  \
    {                                                                                              \
        .type = CLI_T_END                                                                          \
    }
#define OPT_HELP(...)                                                                              \
    {                                                                                              \
        .type = CLI_T_HELP, .letter = 'h', .name = "help", .help = "this help", __VA_ARGS__        \
    }
#define OPT_BOOL(l, n, T, f, h, ...)                                                               \
    {                                                                                              \
        .type = CLI_T_BOOL, .letter = l, .name = n, .help = h, .off = CLI__OFF(T, f, bool),        \
        __VA_ARGS__                                                                                \
    }
#define OPT_SET_INT(l, n, T, f, v, h, ...)                                                         \
    {                                                                                              \
        .type = CLI_T_SET_INT, .letter = l, .name = n, .help = h, .off = CLI__OFF(T, f, int),      \
        .value = v, __VA_ARGS__                                                                    \
    }
#define OPT_STRING(l, n, a, T, f, h, ...)                                                          \
    {                                                                                              \
        .type = CLI_T_STRING, .letter = l, .name = n, .arg = a, .help = h,                         \
        .off = CLI__OFF(T, f, const char *), __VA_ARGS__                                           \
    }
#define OPT_NONEMPTY(l, n, a, T, f, h, ...)                                                        \
    {                                                                                              \
        .type = CLI_T_NONEMPTY, .letter = l, .name = n, .arg = a, .help = h,                       \
        .off = CLI__OFF(T, f, const char *), __VA_ARGS__                                           \
    }
#define OPT_UINT(l, n, a, T, f, max, badfmt, h, ...)                                               \
    {                                                                                              \
        .type = CLI_T_UINT, .letter = l, .name = n, .arg = a, .help = h,                           \
        .off = CLI__OFF(T, f, unsigned long), .value = max, .bad = badfmt, __VA_ARGS__             \
    }
#define OPT_PID(T, f, h, ...)                                                                      \
    {                                                                                              \
        .type = CLI_T_PID, .letter = 'p', .name = "pid", .arg = "PID", .help = h,                  \
        .off = CLI__OFF(T, f, pid_t), __VA_ARGS__                                                  \
    }
#define OPT_FORMAT(T, f, formats, h, ...)                                                          \
    {                                                                                              \
        .type = CLI_T_FORMAT, .letter = 'F', .name = "format", .arg = "FMT", .help = h,            \
        .off = CLI__OFF(T, f, ms_format), .value = formats, __VA_ARGS__                            \
    }
#define OPT_CALLBACK(l, n, a, callback, i, h, ...)                                                 \
    {                                                                                              \
        .type = CLI_T_CALLBACK, .letter = l, .name = n, .arg = a, .help = h, .fn = callback,       \
        .id = i, __VA_ARGS__                                                                       \
    }
/* --procfs DIR and --sysfs DIR, as every command that opens a session words them. */
#define OPT_PROCFS(T, f, ...)                                                                      \
    OPT_STRING(0, "procfs", "DIR", T, f, "procfs root (default $MEMSNAP_PROCFS or /proc)",         \
               __VA_ARGS__)
#define OPT_SYSFS(T, f, ...)                                                                       \
    OPT_STRING(0, "sysfs", "DIR", T, f, "sysfs root (default $MEMSNAP_SYSFS or /sys)", __VA_ARGS__)
/* The end of a table of a command that opens a session: --procfs, --sysfs (T's members procfs
 * and sysfs), --help, and the end. */
#define OPT_SESSION_END(T) OPT_PROCFS(T, procfs), OPT_SYSFS(T, sysfs), OPT_HELP(), OPT_END()

/* The formats as OPT_FORMAT's mask. */
#define CLI_FMT_TEXT (1u << MS_FORMAT_TEXT)
#define CLI_FMT_JSON (1u << MS_FORMAT_JSON)
#define CLI_FMT_CSV  (1u << MS_FORMAT_CSV)

/* Parses the options of argv (argv[0] is the subcommand) into ctx, the command's options
 * struct. Returns 0 with optind at the first operand; CLI_HELP after printing --help; or
 * CLI_USAGE after printing one line: "memsnap CMD: unknown option '--x' (see 'memsnap CMD
 * --help')", "option '--x' needs a value (...)", or the bad value's own error. */
int cli_parse(const struct cli_options *p, int argc, char **argv, void *ctx);

/* After cli_parse: 0 when argv holds exactly `want` operands, else CLI_USAGE after printing
 * "memsnap CMD: expected WHAT, got N (see 'memsnap CMD --help')". */
int cli_operands(const struct cli_options *p, int argc, int want, const char *what);

/* Prints option o's error for the bad value arg (o->bad) as command p's; returns CLI_USAGE. */
int cli_bad_value(const struct cli_options *p, const struct cli_opt *o, const char *arg);

/* Writes command p's --help: its head, the option lines (cli_opts_help), its tail. */
void cli_usage(FILE *fp, const struct cli_options *p);

/* Writes the option lines of --help: "  -p, --pid PID" (or "      --name ARG"), the help text
 * from p->column (one blank after a longer head), each '\n' of it going on at that column. */
void cli_opts_help(FILE *fp, const struct cli_options *p);

#endif /* MEMSNAP_CLI_OPTS_H */
