/* What every driver's constructor and destructor share: the copied environment. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/driver.h"

int bbt_driver_init(struct bbt_driver *d, const struct bbt_driver_ops *ops, const struct bbt_driver_env *env)
{
        char *root = strdup(env->root ? env->root : "/");

        if (!root)
                return -ENOMEM;
        d->ops = ops;
        d->env = *env;
        d->env.root = root;
        return 0;
}

void bbt_driver_release(struct bbt_driver *d)
{
        if (!d)
                return;
        free((char *)d->env.root);
        d->env.root = NULL;
}
