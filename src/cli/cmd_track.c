/* cmd_track.c - STUB until implemented. */
#include "cli.h"

int cmd_track(int argc, char **argv)
{
    (void)argc, (void)argv;
    cli_error("track", "not implemented yet");
    return CLI_FAIL;
}
