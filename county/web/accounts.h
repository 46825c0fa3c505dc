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
        /* Added by the accounts module; 0 (a zeroed struct) takes the default. */
        int64_t session_max_ms;   /* absolute lifetime from login, however busy (BBT_SESSION_MAX_MS) */
        int max_sessions;         /* live sessions kept; the oldest is dropped past it (BBT_MAX_SESSIONS) */
        int addr_burst;           /* failed logins one address may make at once, any user ... */
        int64_t addr_refill_ms;   /* ... and one more after each such interval */
};

/* The defaults of a zero field of struct bbt_accounts_settings. */
#define BBT_SESSION_MS (30 * 60 * 1000)            /* 30 min idle */
#define BBT_SESSION_MAX_MS (12 * 3600 * 1000)      /* 12 h from login */
#define BBT_MAX_SESSIONS 2048
#define BBT_LOGIN_BURST 5
#define BBT_LOGIN_REFILL_MS (60 * 1000)            /* then one a minute per (user, address) */
#define BBT_ADDR_BURST 20
#define BBT_ADDR_REFILL_MS (15 * 1000)             /* then four a minute per address */

/* Not thread-safe: one thread at a time calls into a struct bbt_accounts.
 * A login (right, wrong or unknown user) costs one yescrypt hash: about
 * 0.1 s of CPU and 16 MiB at libcrypt's default cost. */
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

/* What happened since bbt_accounts_open (for the server's log and metrics). */
struct bbt_accounts_stats {
        size_t users, sessions;          /* now */
        uint64_t logins, logins_failed;  /* passwords checked: right, wrong or unknown user */
        uint64_t logins_throttled;       /* refused before any check */
        uint64_t sessions_expired;       /* idle or past session_max_ms */
        uint64_t sessions_dropped;       /* the oldest, to stay within max_sessions */
        uint64_t sessions_ended;         /* by a reload: user removed or changed */
        uint64_t throttle_evicted;       /* throttle entries forgotten to stay within their bound */
        uint64_t audit_errors;           /* audit lines that could not be written */
        uint64_t reloads, reload_errors;
};
void bbt_accounts_stats(const struct bbt_accounts *a, struct bbt_accounts_stats *ret);

/* ---- the users file itself, for bbt-web-user and the server ---- */

#define BBT_PASSWORD_MIN 10   /* characters, enforced by bbt-web-user */
#define BBT_PASSWORD_MAX 512  /* bytes (libcrypt's limit) */
#define BBT_HASH_MAX 255

/* One line of the users file. */
struct bbt_user {
        char name[BBT_USER_NAME_MAX + 1];
        struct bbt_scope scope;
        char hash[BBT_HASH_MAX + 1];
        unsigned line; /* in the file, from 1 */
};
struct bbt_users {
        size_t n;
        struct bbt_user *v;
};

/* "county", "township", "school". */
const char *bbt_role_name(enum bbt_role role);
/* Returns 0 and *RET, or -EINVAL. */
int bbt_role_parse(const char *s, enum bbt_role *ret);
/* Whether S is a user name: 1 to BBT_USER_NAME_MAX of A-Z a-z 0-9 . _ @ -, not starting with '-'. */
bool bbt_user_name_valid(const char *s);
/* Parses the scope field of a ROLE line (docs/web.md: "" or COUNTY for county,
 * [COUNTY/]TOWNSHIP, [COUNTY/]SCHOOL). Returns 0 and *RET, or -EINVAL with
 * the reason in WHY. */
int bbt_scope_parse(enum bbt_role role, const char *s, struct bbt_scope *ret, char *why, size_t why_size);
/* The scope field for S, as bbt_scope_parse reads it. */
const char *bbt_scope_format(const struct bbt_scope *s, char *buf, size_t size);
/* Parses LEN bytes of TEXT, the users file named LABEL in messages. Every
 * problem is passed to ON_ERROR as "LABEL:LINE: reason" (may be NULL).
 * Returns 0 and *RET (free with bbt_users_free), -EINVAL if there was any
 * problem (*RET empty), or -ENOMEM. */
int bbt_users_parse(const char *label, const char *text, size_t len, struct bbt_users *ret,
                    void (*on_error)(void *ctx, const char *msg), void *ctx);
/* Reads the users file at PATH: a regular file, neither writable by group or
 * others nor readable by others (-EPERM), at most 1 MiB; its text into
 * *RET_TEXT (malloc'ed, NUL-terminated, may be NULL) and *RET_LEN. Returns 0
 * or a negative errno with ERR as "PATH: reason". */
int bbt_users_read(const char *path, char **ret_text, size_t *ret_len, char *err, size_t err_size);
/* NULL-safe; leaves U empty. */
void bbt_users_free(struct bbt_users *u);
/* The user NAME in U, or NULL. */
const struct bbt_user *bbt_users_find(const struct bbt_users *u, const char *name);

/* Hashes PASSWORD for the users file (yescrypt through libcrypt, a fresh
 * salt). Returns 0 with the hash in OUT, or a negative errno. */
int bbt_password_hash(const char *password, char *out, size_t out_size);
/* Whether PASSWORD matches HASH, in constant time for its length. */
bool bbt_password_verify(const char *password, const char *hash);

#endif
