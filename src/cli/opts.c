/*
 * opts.c - the parser and --help writer behind the option tables of opts.h.
 *
 * cli_parse() turns a table into getopt_long's arguments (a long option without a letter gets
 * the code 256 + its index in the table, so each code leads back to its entry), runs getopt
 * and stores each value as its entry's type says; cli_opts_help() writes the table's --help
 * lines. Both skip the entries the command does not take (`only`), so several commands can
 * share one table.
 */
#include "opts.h"
#include "cli.h"

#include <getopt.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CLI_HELP_COLUMN 21  /* where --help's option texts start when the command says not */
#define CLI_OPT_CODE    256 /* getopt code of table entry i without a letter: CLI_OPT_CODE + i */

/* Whether command p takes entry o. */
static bool cli_opt_taken(const struct cli_options *p, const struct cli_opt *o)
{
    return !o->only || !p->kind || (o->only & p->kind);
}

/* The entry getopt's code c stands for, NULL when none. */
static const struct cli_opt *cli_opt_find(const struct cli_options *p, int c)
{
    if (c >= CLI_OPT_CODE)
        return &p->opts[c - CLI_OPT_CODE];
    for (const struct cli_opt *o = p->opts; o->type != CLI_T_END; o++)
        if (o->letter == c && cli_opt_taken(p, o))
            return o;
    return NULL;
}

int cli_bad_value(const struct cli_options *p, const struct cli_opt *o, const char *arg)
{
    /* the table's own wording, e.g. "invalid --top '%s' (a positive integer)" */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    cli_error(p->cmd, o->bad, arg);
#pragma GCC diagnostic pop
    return CLI_USAGE;
}

/* Reports what getopt_long returned as c ('?' unknown option, ':' missing value; the option
 * string starts with ':' and opterr is 0); returns CLI_USAGE. */
static int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == '?' && optopt && strncmp(arg, "--", 2) == 0) /* --flag=VALUE: optopt is its code */
        cli_error(cmd, "option '%.*s' takes no value (see 'memsnap %s --help')",
                  (int)strcspn(arg, "="), arg, cmd);
    else if (c == ':')
        cli_error(cmd, "option '%s' needs a value (see 'memsnap %s --help')", arg, cmd);
    else if (optopt)
        cli_error(cmd, "unknown option '-%c' (see 'memsnap %s --help')", optopt, cmd);
    else
        cli_error(cmd, "unknown option '%s' (see 'memsnap %s --help')", arg, cmd);
    return CLI_USAGE;
}

/* Stores one option's value into ctx; returns 0, CLI_HELP or CLI_USAGE (after the error). */
static int cli_opt_take(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                        void *ctx)
{
    void *dest = (char *)ctx + o->off;
    switch (o->type) {
    case CLI_T_HELP:
        cli_usage(stdout, p);
        return CLI_HELP;
    case CLI_T_BOOL:
        *(bool *)dest = true;
        return 0;
    case CLI_T_SET_INT:
        *(int *)dest = (int)o->value;
        return 0;
    case CLI_T_NONEMPTY:
        if (!*arg) {
            cli_error(p->cmd, "empty --%s (see 'memsnap %s --help')", o->name, p->cmd);
            return CLI_USAGE;
        }
        /* fall through */
    case CLI_T_STRING:
        *(const char **)dest = arg;
        return 0;
    case CLI_T_UINT: {
        unsigned long v;
        if (cli_parse_uint(arg, &v) != 0 || (o->value > 0 && v > (unsigned long)o->value))
            return cli_bad_value(p, o, arg);
        *(unsigned long *)dest = v;
        return 0;
    }
    case CLI_T_PID:
        if (cli_parse_pid(arg, (pid_t *)dest) != 0) {
            cli_error(p->cmd, "invalid PID '%s'", arg);
            return CLI_USAGE;
        }
        return 0;
    case CLI_T_FORMAT: {
        ms_format fmt;
        if (ms_format_parse(arg, &fmt) != 0 || !((unsigned long)o->value & (1u << fmt))) {
            static const char *const names[] = {"text", "json", "csv"};
            char list[32] = "";
            for (unsigned i = 0; i < 3; i++)
                if ((unsigned long)o->value & (1u << i))
                    snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                             list[0] ? ", " : "", names[i]);
            cli_error(p->cmd, "unknown format '%s' (%s)", arg, list);
            return CLI_USAGE;
        }
        *(ms_format *)dest = fmt;
        return 0;
    }
    case CLI_T_CALLBACK:
        return o->fn(p, o, arg, ctx);
    case CLI_T_END:
        break;
    }
    return CLI_USAGE;
}

int cli_parse(const struct cli_options *p, int argc, char **argv, void *ctx)
{
    size_t n = 0;
    while (p->opts[n].type != CLI_T_END)
        n++;
    struct option *longopts = calloc(n + 1, sizeof(*longopts));
    char *shorts = malloc(3 * n + 3);
    if (!longopts || !shorts) {
        free(longopts);
        free(shorts);
        cli_error(p->cmd, "out of memory");
        return CLI_USAGE;
    }
    /* ':' first: a missing value is told apart from an unknown option (cli_bad_option) */
    size_t k = 0, l = 0;
    if (p->stop_at_operand)
        shorts[l++] = '+';
    shorts[l++] = ':';
    for (size_t i = 0; i < n; i++) {
        const struct cli_opt *o = &p->opts[i];
        if (!cli_opt_taken(p, o))
            continue;
        int code = o->letter ? o->letter : CLI_OPT_CODE + (int)i;
        longopts[k++] =
            (struct option){o->name, o->arg ? required_argument : no_argument, NULL, code};
        if (o->letter) {
            shorts[l++] = o->letter;
            if (o->arg)
                shorts[l++] = ':';
        }
    }
    shorts[l] = '\0';
    int c, rc = 0;
    optind = 1; /* a fresh scan of this argv */
    opterr = 0; /* the errors are cli_bad_option's */
    while (rc == 0 && (c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        const struct cli_opt *o = c == '?' || c == ':' ? NULL : cli_opt_find(p, c);
        rc = o ? cli_opt_take(p, o, o->arg ? optarg : NULL, ctx) : cli_bad_option(p->cmd, c, argv);
    }
    free(longopts);
    free(shorts);
    return rc;
}

void cli_usage(FILE *fp, const struct cli_options *p)
{
    fputs(p->head, fp);
    cli_opts_help(fp, p);
    if (p->tail)
        fputs(p->tail, fp);
}

void cli_opts_help(FILE *fp, const struct cli_options *p)
{
    int column = p->column ? p->column : CLI_HELP_COLUMN;
    for (const struct cli_opt *o = p->opts; o->type != CLI_T_END; o++) {
        if (!o->help || !cli_opt_taken(p, o))
            continue;
        int n = fprintf(fp, "  %c%c%s--%s%s%s", o->letter ? '-' : ' ', o->letter ? o->letter : ' ',
                        o->letter ? ", " : "  ", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(fp, "%*s", n < column ? column - n : 1, "");
        for (const char *c = o->help; *c; c++) {
            fputc(*c, fp);
            if (*c == '\n')
                fprintf(fp, "%*s", column, "");
        }
        fputc('\n', fp);
    }
}

int cli_operands(const struct cli_options *p, int argc, int want, const char *what)
{
    if (argc - optind == want)
        return 0;
    cli_error(p->cmd, "expected %s, got %d (see 'memsnap %s --help')", what, argc - optind, p->cmd);
    return CLI_USAGE;
}
