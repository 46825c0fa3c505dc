/* Prints "<channel>\t<json>" for every sample message, for schema-check.py --encoded. */
#include <stdio.h>
#include <stdlib.h>

#include "samples.h"

int main(void)
{
        const struct bbt_sample *s;
        struct bbt_error err;
        size_t n, i, len;
        char *json;
        int failed = 0;

        s = bbt_samples(&n);
        for (i = 0; i < n; i++) {
                if (bbt_msg_encode(&s[i].msg, &json, &len, &err) < 0) {
                        fprintf(stderr, "%s: encode failed: %s: %s\n", s[i].name, err.path, err.rule);
                        failed = 1;
                        continue;
                }
                printf("%s\t%s\n", bbt_channel_name(s[i].msg.channel), json);
                free(json);
        }
        return failed;
}
