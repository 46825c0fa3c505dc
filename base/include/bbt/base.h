/* The shared base every bbt library builds on: symbol visibility, container_of,
 * array size, and the one UTF-8 checker. No dependencies beyond libc. */
#ifndef BBT_BASE_H
#define BBT_BASE_H

#include <stddef.h>
#include <stdint.h>

/* Libraries are built with hidden visibility; BBT_API marks what they export. */
#ifndef BBT_API
#define BBT_API __attribute__((visibility("default")))
#endif

/* The struct of TYPE whose MEMBER is at PTR. */
#define bbt_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Elements in the array A (an array, not a pointer). */
#define BBT_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Writes the printf-style message into ERR (ERR_SIZE bytes, cut to fit) for
 * a caller that asked for one: nothing when ERR is NULL or ERR_SIZE is 0. */
BBT_API void bbt_set_err(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Decodes the UTF-8 sequence at S, of which LEN bytes may be read. Returns its
 * length (1..4) and the code point in *RET_CP (may be NULL), or 0 if S does
 * not start a valid sequence: overlong forms, surrogates, values past
 * U+10FFFF, a cut sequence and LEN == 0 are all invalid. A NUL byte is a valid
 * one-byte sequence. */
BBT_API size_t bbt_utf8_decode(const char *s, size_t len, uint32_t *ret_cp);

/* Offset of the first byte of S (LEN bytes) that is not valid UTF-8, or LEN
 * if all of it is. */
BBT_API size_t bbt_utf8_invalid_at(const char *s, size_t len);

/* Code points in the NUL-terminated valid UTF-8 string S. */
BBT_API size_t bbt_utf8_chars(const char *s);

/* Days from 1970-01-01 to the proleptic Gregorian date Y-M-D (M 1..12, D
 * 1..31, not checked): Howard Hinnant's days_from_civil, in eras of 400 years. */
BBT_API int64_t bbt_days_from_civil(int64_t y, int m, int d);

/* 64-bit FNV-1a: H continued over the N bytes at P. Start from
 * BBT_FNV1A_BASIS (or a value a persisted hash was made with: such values
 * must stay what they were). Not for anything an attacker may choose keys
 * for against a table's worst case without a mix (see registry.c). */
#define BBT_FNV1A_BASIS 0xcbf29ce484222325ULL
static inline uint64_t bbt_fnv1a(uint64_t h, const void *p, size_t n)
{
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ULL;
        return h;
}

#endif
