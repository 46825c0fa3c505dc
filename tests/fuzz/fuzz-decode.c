/* libFuzzer target: the protocol decoder, the encoder on what it accepts, and the topic parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/protocol.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The first byte picks the channel; the rest is the payload. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        struct bbt_error err;
        struct bbt_topic topic;
        struct bbt_msg msg, again;
        enum bbt_channel ch;
        char *json, *text;
        size_t len;
        int r;

        if (size < 1)
                return 0;
        ch = (enum bbt_channel)(data[0] % BBT_CH__COUNT);
        if (bbt_msg_decode(ch, data + 1, size - 1, &msg, &err) == 0) {
                /* Whatever decodes must encode, and decode again to the same text. */
                r = bbt_msg_encode(&msg, &json, &len, &err);
                if (r == 0) {
                        if (bbt_msg_decode(ch, json, len, &again, &err) != 0) {
                                fprintf(stderr, "re-decode failed: %s: %s\n", err.path, err.rule);
                                abort();
                        }
                        bbt_msg_free(&again);
                        free(json);
                } else if (r != -EMSGSIZE) {
                        /* Re-encoding may grow ("1e5" -> "100000") but never be refused. */
                        fprintf(stderr, "encode of a decoded message failed (%d): %s: %s\n", r, err.path, err.rule);
                        abort();
                }
                bbt_msg_free(&msg);
        }

        text = malloc(size);
        if (!text)
                return 0;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        if (bbt_topic_parse(text, &topic, NULL, 0) == 0) {
                char built[BBT_TOPIC_MAX];

                if (bbt_topic_build(&topic, built, sizeof(built)) < 0 || strcmp(built, text) != 0)
                        abort();
        }
        free(text);
        return 0;
}
