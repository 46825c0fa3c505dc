/* bbt-validate: checks one protocol message against the v1 rules, for integrators and tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/protocol.h"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-validate [OPTION] TOPIC [FILE|-]\n"
                "Check one bbt protocol v1 message (read from FILE, or standard input\n"
                "when FILE is - or absent) against the rules of the channel named by TOPIC.\n"
                "\n"
                "TOPIC is a full topic, bbt/v1/COUNTY/SCHOOL/TERMINAL/CHANNEL, whose IDs are\n"
                "checked too, or a bare channel name: state, hb, usage, periph, inventory,\n"
                "alert, cmd, cmd/reply.\n"
                "\n"
                "Prints \"ok CHANNEL\" and exits 0 when the message is valid; prints\n"
                "\"PATH: RULE\" (e.g. \"usage.start: missing\") and exits 1 when it is not.\n"
                "Exits 2 on a usage or I/O error.\n"
                "\n"
                "  -h, --help     show this help\n"
                "  -V, --version  show the version\n");
}

/* Reads at most LIMIT + 1 bytes of F into a new buffer, so a payload over the
 * limit is seen as such without reading an endless stream. */
static int read_payload(FILE *f, size_t limit, char **ret, size_t *ret_len)
{
        char *buf = malloc(limit + 1);
        size_t n;

        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, limit + 1, f);
        if (ferror(f)) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_len = n;
        return 0;
}

int main(int argc, char **argv)
{
        struct bbt_topic topic;
        struct bbt_error err;
        struct bbt_msg msg;
        enum bbt_channel ch;
        const char *file = "-";
        char reason[160], line[300];
        char *payload = NULL;
        size_t len;
        FILE *f;
        int r;

        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
                printf("bbt-validate %s (protocol v%d)\n", BBT_VERSION, BBT_PROTOCOL_VERSION);
                return 0;
        }
        if (argc < 2 || argc > 3 || (argv[1][0] == '-' && argv[1][1] != '\0')) {
                usage(stderr);
                return 2;
        }
        if (argc == 3)
                file = argv[2];

        if (strncmp(argv[1], "bbt/", 4) == 0) {
                if (bbt_topic_parse(argv[1], &topic, reason, sizeof(reason)) < 0) {
                        printf("%s\n", reason);
                        return 1;
                }
                ch = topic.channel;
        } else {
                ch = bbt_channel_from_name(argv[1]);
                if (ch == BBT_CH_INVALID) {
                        fprintf(stderr, "bbt-validate: %s: not a topic or channel name\n", argv[1]);
                        return 2;
                }
        }

        f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
        if (!f) {
                fprintf(stderr, "bbt-validate: %s: %s\n", file, strerror(errno));
                return 2;
        }
        r = read_payload(f, BBT_MSG_MAX, &payload, &len);
        if (f != stdin)
                fclose(f);
        if (r < 0) {
                fprintf(stderr, "bbt-validate: %s: %s\n", file, strerror(-r));
                return 2;
        }

        r = bbt_msg_decode(ch, payload, len, &msg, &err);
        free(payload);
        if (r < 0) {
                printf("%s\n", bbt_error_format(&err, line, sizeof(line)));
                return 1;
        }
        bbt_msg_free(&msg);
        printf("ok %s\n", bbt_channel_name(ch));
        return 0;
}
