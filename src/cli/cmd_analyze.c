/* cmd_analyze.c - STUB until implemented. */
#include "cli.h"

int cmd_analyze(int argc, char **argv)
{
    (void)argc, (void)argv;
    cli_error("analyze", "not implemented yet");
    return CLI_FAIL;
}
