/* Sample protocol messages, one or more per channel, each with its exact expected JSON. */
#ifndef BBT_TEST_SAMPLES_H
#define BBT_TEST_SAMPLES_H

#include "bbt/protocol.h"

struct bbt_sample {
        const char *name;
        struct bbt_msg msg;
        const char *json; /* what bbt_msg_encode must produce, byte for byte */
};

/* Fills and returns the static sample table; *ret_n gets its length. */
const struct bbt_sample *bbt_samples(size_t *ret_n);

#endif
