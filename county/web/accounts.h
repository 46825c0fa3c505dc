/* bbt-web's accounts: users and their scope from a file, password hashes, sessions, login throttling, CSRF, the audit log. */
#ifndef BBT_ACCOUNTS_H
#define BBT_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* What a user may see. COUNTY: every school of the store (a county centre's
 * 电教 staff; COUNTY may still name one county code to narrow it, "" = all).
 * TOWNSHIP: the schools whose registry township is TOWNSHIP (within COUNTY if
 * set). SCHOOL: the one school with code SCHOOL. */
enum bbt_role { BBT_ROLE_COUNTY, BBT_ROLE_TOWNSHIP, BBT_ROLE_SCHOOL };

#define BBT_USER_NAME_MAX 64

struct bbt_scope {
        enum bbt_role role;
        char county[7];     /* 6-digit county code or "" */
        char township[128]; /* TOWNSHIP: the registry's township name */
        char school[33];    /* SCHOOL: the school code */
};

/* A signed-in user, as the server sees one. */
struct bbt_session {
        char user[BBT_USER_NAME_MAX + 1];
        struct bbt_scope scope;
        char token[65];      /* the session cookie's value: 256 random bits, hex */
        char csrf[65];       /* sent back by the page in X-CSRF-Token on every state change */
        int64_t created_ms, expires_ms;
};

struct bbt_accounts_settings {
        int64_t session_ms;       /* a session's lifetime (sliding: each use extends it up to this) */
        int login_burst;          /* failed logins a (user, address) may make at once ... */
        int64_t login_refill_ms;  /* ... and one more after each such interval */
        const char *audit_path;   /* the audit log (appended, one JSON object per line), or NULL: none */
};

struct bbt_accounts;

/* Reads the users file PATH (docs/web.md: one user per line,
 * "name:role:scope:hash"). A file readable by others than its owner and
 * group is refused (-EPERM). Returns 0 and *RET, or a negative errno with
 * ERR as "PATH:LINE: reason". */
int bbt_accounts_open(const char *path, const struct bbt_accounts_settings *s, struct bbt_accounts **ret, char *err,
                      size_t err_size);
/* Reads the file again (SIGHUP): users removed lose their sessions, changed
 * passwords or scopes end the user's sessions. On error the old users stay. */
int bbt_accounts_reload(struct bbt_accounts *a, char *err, size_t err_size);
/* NULL-safe. */
void bbt_accounts_free(struct bbt_accounts *a);

/* Checks USER's PASSWORD from client address ADDR at NOW_MS. Returns 0 and
 * *RET (a new session), -EACCES (no such user or wrong password: the same
 * answer and about the same time for both), or -EAGAIN when throttled
 * (*RETRY_AFTER_S set). Every attempt is written to the audit log. */
int bbt_accounts_login(struct bbt_accounts *a, const char *user, const char *password, const char *addr,
                       int64_t now_ms, struct bbt_session *ret, int *retry_after_s);
/* The live session with cookie value TOKEN (extended), or NULL. The pointer
 * is valid until the next call into A. */
const struct bbt_session *bbt_accounts_session(struct bbt_accounts *a, const char *token, int64_t now_ms);
/* Whether CSRF (the request's X-CSRF-Token) is S's, compared in constant time. */
bool bbt_session_csrf_ok(const struct bbt_session *s, const char *csrf);
/* Ends the session with TOKEN (no-op if none). */
void bbt_accounts_logout(struct bbt_accounts *a, const char *token, const char *addr, int64_t now_ms);

/* Appends one event to the audit log: USER (or "-"), ADDR, EVENT ("login",
 * "login_failed", "logout", "export", "denied", ...), DETAIL (free text, may be
 * NULL). Returns 0 or a negative errno. */
int bbt_accounts_audit(struct bbt_accounts *a, const char *user, const char *addr, const char *event,
                       const char *detail, int64_t now_ms);

/* Whether SCOPE may see SCHOOL. */
bool bbt_scope_allows(const struct bbt_scope *scope, const struct bbt_school *school);

/* Hashes PASSWORD for the users file (yescrypt through libcrypt, a fresh
 * salt). Returns 0 with the hash in OUT, or a negative errno. */
int bbt_password_hash(const char *password, char *out, size_t out_size);
/* Whether PASSWORD matches HASH, in constant time for its length. */
bool bbt_password_verify(const char *password, const char *hash);

#endif
