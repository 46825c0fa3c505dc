/* The store front: picks the backend for a location. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

int bbt_store_open(const char *location, bool read_only, struct bbt_store **ret, char *err, size_t err_size)
{
        if (!location || !*location) {
                if (err)
                        snprintf(err, err_size, "no store location given");
                return -EINVAL;
        }
        if (strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0) {
                if (err)
                        snprintf(err, err_size, "%s: the PostgreSQL backend is not built into this bbt", location);
                return -EPROTONOSUPPORT;
        }
        return bbt_store_sqlite_open(location, read_only, ret, err, err_size);
}

void bbt_store_close(struct bbt_store *s)
{
        if (s)
                s->ops->close(s);
}

const char *bbt_store_error(const struct bbt_store *s)
{
        return s && s->error[0] ? s->error : "no error";
}
