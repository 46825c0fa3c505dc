/* ctest's postgresql fixture: `bbt-test-pg start DIR` starts the one server the
 * PostgreSQL cases share, `bbt-test-pg stop DIR` stops it (tests/pg-server.h). */
#include <stdio.h>
#include <string.h>

#include "pg-server.h"

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "start") == 0)
                return bbt_test_pg_fixture_start(argv[2]);
        if (argc == 3 && strcmp(argv[1], "stop") == 0)
                return bbt_test_pg_fixture_stop(argv[2]);
        fprintf(stderr, "usage: %s start|stop STATE_DIR\n", argv[0]);
        return 2;
}
