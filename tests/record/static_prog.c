/*
 * static_prog.c - a statically linked program, which LD_PRELOAD cannot reach: `memsnap
 * record` must refuse it.
 */
int main(void)
{
    return 0;
}
