/* cmd_monitor.c - STUB until implemented. */
#include "cli.h"

int cmd_monitor(int argc, char **argv)
{
    (void)argc, (void)argv;
    cli_error("monitor", "not implemented yet");
    return CLI_FAIL;
}
