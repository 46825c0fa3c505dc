/* The registry of schools and terminals: CSV import with all-or-nothing validation, and hash lookups by code. */
#include "registry.h"
#include "bbt/base.h"
#include "bbt/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bbt/array.h"
#include "csv.h"

/* Sanity bound for counts of pupils and classrooms: bigger is a typo. */
#define COUNT_MAX 1000000L

/* Open addressing, linear probing; a slot holds entry index + 1, 0 = free. */
struct index {
        size_t cap; /* 0 or a power of two, at least twice the entries */
        size_t *slot;
};

struct registry_priv {
        struct index schools;   /* by code */
        struct index terminals; /* by (school, id) */
        size_t schools_cap, terminals_cap;
};

/* FNV-1a 64 over A, then a 0 byte and B when B is not NULL, finished with
 * a 64-bit mix: the tables take the low bits, and FNV's low bits depend only
 * on the keys' low bits (codes that differ in a digit or two, as school and
 * terminal codes do, then crowd into a few runs of slots). */
static uint64_t key_hash(const char *a, const char *b)
{
        uint64_t h = bbt_fnv1a(BBT_FNV1A_BASIS, a, strlen(a));

        if (b)
                h = bbt_fnv1a(bbt_fnv1a(h, "", 1), b, strlen(b)); /* a 0 byte, then B */
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h;
}

static uint64_t school_hash(const struct bbt_registry *reg, size_t i)
{
        return key_hash(reg->schools[i].code, NULL);
}

static uint64_t terminal_hash(const struct bbt_registry *reg, size_t i)
{
        return key_hash(reg->terminals[i].school, reg->terminals[i].id);
}

/* Rebuilds IX for N entries. Returns 0 or -ENOMEM (IX untouched). */
static int index_build(struct index *ix, const struct bbt_registry *reg, size_t n,
                       uint64_t (*hash)(const struct bbt_registry *, size_t))
{
        size_t cap = 16, *slot;

        while (cap < 2 * n + 2)
                cap *= 2;
        slot = calloc(cap, sizeof(*slot));
        if (!slot)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t s = (size_t)hash(reg, i) & (cap - 1);

                while (slot[s])
                        s = (s + 1) & (cap - 1);
                slot[s] = i + 1;
        }
        free(ix->slot);
        ix->slot = slot;
        ix->cap = cap;
        return 0;
}

/* Adds entry I (the newest of N) to IX, growing it. Returns 0 or -ENOMEM. */
static int index_add(struct index *ix, const struct bbt_registry *reg, size_t i, size_t n,
                     uint64_t (*hash)(const struct bbt_registry *, size_t))
{
        size_t s;

        if (ix->cap < 2 * n + 2)
                return index_build(ix, reg, n, hash);
        s = (size_t)hash(reg, i) & (ix->cap - 1);
        while (ix->slot[s])
                s = (s + 1) & (ix->cap - 1);
        ix->slot[s] = i + 1;
        return 0;
}

/* Re-fills IX with the first N entries in place, after a rollback: the table
 * was sized for more entries, so this never needs memory. */
static void index_refill(struct index *ix, const struct bbt_registry *reg, size_t n,
                         uint64_t (*hash)(const struct bbt_registry *, size_t))
{
        if (!ix->cap)
                return;
        memset(ix->slot, 0, ix->cap * sizeof(*ix->slot));
        for (size_t i = 0; i < n; i++) {
                size_t s = (size_t)hash(reg, i) & (ix->cap - 1);

                while (ix->slot[s])
                        s = (s + 1) & (ix->cap - 1);
                ix->slot[s] = i + 1;
        }
}

static const struct bbt_school *school_find(const struct bbt_registry *reg, const char *code)
{
        const struct registry_priv *p = reg->priv;
        size_t s;

        if (!p->schools.cap)
                return NULL;
        s = (size_t)key_hash(code, NULL) & (p->schools.cap - 1);
        for (; p->schools.slot[s]; s = (s + 1) & (p->schools.cap - 1)) {
                const struct bbt_school *sc = &reg->schools[p->schools.slot[s] - 1];

                if (strcmp(sc->code, code) == 0)
                        return sc;
        }
        return NULL;
}

static const struct bbt_terminal_entry *terminal_find(const struct bbt_registry *reg, const char *school,
                                                      const char *id)
{
        const struct registry_priv *p = reg->priv;
        size_t s;

        if (!p->terminals.cap)
                return NULL;
        s = (size_t)key_hash(school, id) & (p->terminals.cap - 1);
        for (; p->terminals.slot[s]; s = (s + 1) & (p->terminals.cap - 1)) {
                const struct bbt_terminal_entry *t = &reg->terminals[p->terminals.slot[s] - 1];

                if (strcmp(t->id, id) == 0 && strcmp(t->school, school) == 0)
                        return t;
        }
        return NULL;
}

const struct bbt_school *bbt_registry_school(const struct bbt_registry *reg, const char *code)
{
        if (!reg || !code)
                return NULL;
        return school_find(reg, code);
}

const struct bbt_terminal_entry *bbt_registry_terminal(const struct bbt_registry *reg, const char *school,
                                                       const char *id)
{
        if (!reg || !school || !id)
                return NULL;
        return terminal_find(reg, school, id);
}

static const char *const type_names[][2] = {
        [BBT_SCHOOL_PRIMARY] = { "primary", "小学" },
        [BBT_SCHOOL_JUNIOR] = { "junior", "初中" },
        [BBT_SCHOOL_NINE_YEAR] = { "nine_year", "九年一贯制" },
};
static const char *const area_names[][2] = {
        [BBT_AREA_URBAN] = { "urban", "城区" },
        [BBT_AREA_TOWN] = { "town", "镇区" },
        [BBT_AREA_RURAL] = { "rural", "乡村" },
};

const char *bbt_school_type_name(enum bbt_school_type t, bool chinese)
{
        if ((unsigned)t >= BBT_SCHOOL_TYPE__COUNT)
                return "?";
        return type_names[t][chinese];
}

const char *bbt_area_name(enum bbt_area a, bool chinese)
{
        if ((unsigned)a >= BBT_AREA__COUNT)
                return "?";
        return area_names[a][chinese];
}

struct word {
        const char *text;
        int value;
};

/* Besides the names above: the wording of the education statistics forms. */
static const struct word type_words[] = {
        { "primary", BBT_SCHOOL_PRIMARY },     { "小学", BBT_SCHOOL_PRIMARY },
        { "完全小学", BBT_SCHOOL_PRIMARY },    { "小学教学点", BBT_SCHOOL_PRIMARY },
        { "教学点", BBT_SCHOOL_PRIMARY },      { "junior", BBT_SCHOOL_JUNIOR },
        { "初中", BBT_SCHOOL_JUNIOR },         { "初级中学", BBT_SCHOOL_JUNIOR },
        { "nine_year", BBT_SCHOOL_NINE_YEAR }, { "九年一贯制", BBT_SCHOOL_NINE_YEAR },
        { "九年一贯制学校", BBT_SCHOOL_NINE_YEAR },
};
/* 城市/县镇/农村: the pre-2011 education statistics; 111..220: the NBS 城乡分类代码 and its names. */
static const struct word area_words[] = {
        { "urban", BBT_AREA_URBAN },  { "城区", BBT_AREA_URBAN },     { "城市", BBT_AREA_URBAN },
        { "主城区", BBT_AREA_URBAN }, { "城乡结合区", BBT_AREA_URBAN }, { "111", BBT_AREA_URBAN },
        { "112", BBT_AREA_URBAN },    { "town", BBT_AREA_TOWN },      { "镇区", BBT_AREA_TOWN },
        { "县镇", BBT_AREA_TOWN },    { "镇中心区", BBT_AREA_TOWN },  { "镇乡结合区", BBT_AREA_TOWN },
        { "特殊区域", BBT_AREA_TOWN }, { "121", BBT_AREA_TOWN },       { "122", BBT_AREA_TOWN },
        { "123", BBT_AREA_TOWN },     { "rural", BBT_AREA_RURAL },    { "乡村", BBT_AREA_RURAL },
        { "农村", BBT_AREA_RURAL },   { "乡中心区", BBT_AREA_RURAL }, { "村庄", BBT_AREA_RURAL },
        { "210", BBT_AREA_RURAL },    { "220", BBT_AREA_RURAL },
};

static int word_lookup(const struct word *w, size_t n, const char *s, int *ret)
{
        /* Case folds ASCII only: other words compare as bytes (cheaper). */
        bool ascii = (unsigned char)s[0] < 0x80;

        for (size_t i = 0; i < n; i++)
                if (ascii ? strcasecmp(w[i].text, s) == 0 : strcmp(w[i].text, s) == 0) {
                        *ret = w[i].value;
                        return 0;
                }
        return -EINVAL;
}

static bool is_county_code(const char *s)
{
        size_t n = 0;

        for (; *s; s++, n++)
                if (*s < '0' || *s > '9')
                        return false;
        return n == 6;
}

/* Chinese names of peripheral kinds; English ones are protocol.h's. */
static const struct word periph_words[] = {
        { "展台", BBT_KIND_CAMERA },     { "实物展台", BBT_KIND_CAMERA },  { "麦克风", BBT_KIND_AUDIO_IN },
        { "音箱", BBT_KIND_AUDIO_OUT },  { "扬声器", BBT_KIND_AUDIO_OUT }, { "触摸框", BBT_KIND_TOUCH },
        { "触摸屏", BBT_KIND_TOUCH },    { "笔", BBT_KIND_PEN },           { "键盘", BBT_KIND_KEYBOARD },
        { "鼠标", BBT_KIND_MOUSE },      { "U盘", BBT_KIND_STORAGE },      { "存储", BBT_KIND_STORAGE },
        { "显示器", BBT_KIND_DISPLAY },  { "投影仪", BBT_KIND_PROJECTOR }, { "投影机", BBT_KIND_PROJECTOR },
        { "网卡", BBT_KIND_NETWORK },
};

/* Length of the separator at S (0 if none): ';' ',' '|' space tab, a line break
 * (Alt+Enter inside an Excel cell), 、 ， ； and U+3000. */
static size_t separator_len(const char *s)
{
        static const char *const wide[] = { "、", "，", "；", "\xe3\x80\x80" };

        if (*s == ';' || *s == ',' || *s == '|' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                return 1;
        /* The wide ones are three bytes led by 0xe3 or 0xef. */
        if ((unsigned char)*s != 0xe3 && (unsigned char)*s != 0xef)
                return 0;
        for (size_t i = 0; i < BBT_ELEMENTSOF(wide); i++)
                if (strncmp(s, wide[i], 3) == 0)
                        return 3;
        return 0;
}

int bbt_periph_kinds_parse(const char *s, uint32_t *ret, char *bad, size_t bad_size)
{
        uint32_t mask = 0;

        while (*s) {
                char word[64];
                size_t n = 0, sep;
                int kind = -1;

                while ((sep = separator_len(s)) > 0)
                        s += sep;
                if (!*s)
                        break;
                while (s[n] && separator_len(s + n) == 0)
                        n++;
                if (n < sizeof(word)) {
                        memcpy(word, s, n);
                        word[n] = '\0';
                        /* The protocol's names are ASCII. */
                        for (int k = 0; k < BBT_KIND__COUNT && kind < 0 && (unsigned char)word[0] < 0x80; k++)
                                if (strcasecmp(word, bbt_periph_kind_name((enum bbt_periph_kind)k)) == 0)
                                        kind = k;
                        if (kind < 0)
                                (void)word_lookup(periph_words, BBT_ELEMENTSOF(periph_words), word, &kind);
                }
                if (kind < 0) {
                        if (bad && bad_size > 0) {
                                size_t m = n < bad_size - 1 ? n : bad_size - 1;

                                /* Cut at a character boundary. */
                                while (m > 0 && m < n && ((unsigned char)s[m] & 0xc0) == 0x80)
                                        m--;
                                memcpy(bad, s, m);
                                bad[m] = '\0';
                        }
                        return -EINVAL;
                }
                mask |= 1u << kind;
                s += n;
        }
        *ret = mask;
        return 0;
}

int bbt_registry_new(struct bbt_registry **ret)
{
        struct bbt_registry *reg = calloc(1, sizeof(*reg));

        if (!reg)
                return -ENOMEM;
        reg->priv = calloc(1, sizeof(struct registry_priv));
        if (!reg->priv) {
                free(reg);
                return -ENOMEM;
        }
        *ret = reg;
        return 0;
}

static void school_clear(struct bbt_school *s)
{
        free(s->county_name);
        free(s->township);
        free(s->name);
}

void bbt_registry_free(struct bbt_registry *reg)
{
        struct registry_priv *p;

        if (!reg)
                return;
        for (size_t i = 0; i < reg->n_schools; i++)
                school_clear(&reg->schools[i]);
        for (size_t i = 0; i < reg->n_terminals; i++)
                free(reg->terminals[i].room);
        free(reg->schools);
        free(reg->terminals);
        p = reg->priv;
        if (p) {
                free(p->schools.slot);
                free(p->terminals.slot);
                free(p);
        }
        free(reg);
}

enum {
        SC_COUNTY,
        SC_COUNTY_NAME,
        SC_TOWNSHIP,
        SC_CODE,
        SC_NAME,
        SC_TYPE,
        SC_AREA,
        SC_STUDENTS,
        SC_CLASSROOMS,
        SC_PRIMARY,
        SC_JUNIOR,
        SC__COUNT
};
static const struct bbt_csv_column school_columns[SC__COUNT] = {
        [SC_COUNTY] = { "county_code", { "县区代码", "区县代码", "县代码", "行政区划代码" }, true },
        [SC_COUNTY_NAME] = { "county_name", { "县区", "区县", "县区名称" }, false },
        [SC_TOWNSHIP] = { "township", { "乡镇/街道", "乡镇", "街道", "乡镇街道" }, false },
        [SC_CODE] = { "school_code", { "学校代码", "学校标识码" }, true },
        [SC_NAME] = { "school_name", { "学校名称" }, true },
        [SC_TYPE] = { "type", { "学校类型", "办学类型" }, true },
        [SC_AREA] = { "area", { "城乡类型", "城乡", "城乡分类" }, true },
        [SC_STUDENTS] = { "students", { "学生数", "在校生数" }, true },
        [SC_CLASSROOMS] = { "classrooms", { "教室数", "班级数" }, false },
        [SC_PRIMARY] = { "students_primary", { "小学部学生数" }, false },
        [SC_JUNIOR] = { "students_junior", { "初中部学生数" }, false },
};

/* Reads optional count column COL: "" gives DEFAULT_VALUE and *RET_GIVEN false. */
static int get_count(struct bbt_csv *csv, size_t col, long default_value, long *ret, bool *ret_given)
{
        const char *v = bbt_csv_get(csv, col);

        if (ret_given)
                *ret_given = *v != '\0';
        if (!*v) {
                *ret = default_value;
                return 0;
        }
        if (bbt_csv_parse_count(v, COUNT_MAX, ret) < 0) {
                bbt_csv_bad_value(csv, col, "expected an integer >= 0");
                return -EINVAL;
        }
        return 0;
}

static char *dup_or_fail(const char *s, int *r)
{
        char *d = strdup(s);

        if (!d)
                *r = -ENOMEM;
        return d;
}

/* Validates the current record into *S (strings owned by *S on success). Returns 0, -EINVAL (reported), -ENOMEM. */
static int school_from_row(struct bbt_csv *csv, struct bbt_school *s)
{
        const char *v;
        long primary = 0, junior = 0;
        bool has_primary, has_junior;
        int value, r = 0;
        size_t before = bbt_csv_errors(csv);

        memset(s, 0, sizeof(*s));
        v = bbt_csv_get(csv, SC_COUNTY);
        if (is_county_code(v))
                memcpy(s->county, v, 7);
        else
                bbt_csv_bad_value(csv, SC_COUNTY, "expected a 6-digit county code");
        v = bbt_csv_get(csv, SC_CODE);
        if (bbt_id_valid(v))
                memcpy(s->code, v, strlen(v) + 1);
        else
                bbt_csv_bad_value(csv, SC_CODE, "expected 1 to 32 of A-Z a-z 0-9 _ -");
        if (!*bbt_csv_get(csv, SC_NAME))
                bbt_csv_column_error(csv, SC_NAME, "required but empty");
        v = bbt_csv_get(csv, SC_TYPE);
        if (word_lookup(type_words, BBT_ELEMENTSOF(type_words), v, &value) == 0)
                s->type = (enum bbt_school_type)value;
        else
                bbt_csv_bad_value(csv, SC_TYPE, "expected 小学, 初中 or 九年一贯制");
        v = bbt_csv_get(csv, SC_AREA);
        if (word_lookup(area_words, BBT_ELEMENTSOF(area_words), v, &value) == 0)
                s->area = (enum bbt_area)value;
        else
                bbt_csv_bad_value(csv, SC_AREA, "expected 城区, 镇区 or 乡村");
        if (!*bbt_csv_get(csv, SC_STUDENTS))
                bbt_csv_column_error(csv, SC_STUDENTS, "required but empty");
        else
                (void)get_count(csv, SC_STUDENTS, 0, &s->students, NULL);
        (void)get_count(csv, SC_CLASSROOMS, 0, &s->classrooms, NULL);
        if (get_count(csv, SC_PRIMARY, 0, &primary, &has_primary) == 0 &&
            get_count(csv, SC_JUNIOR, 0, &junior, &has_junior) == 0 && bbt_csv_errors(csv) == before) {
                switch (s->type) {
                case BBT_SCHOOL_NINE_YEAR:
                        if (!has_primary)
                                bbt_csv_column_error(csv, SC_PRIMARY, "required for a 九年一贯制 school");
                        if (!has_junior)
                                bbt_csv_column_error(csv, SC_JUNIOR, "required for a 九年一贯制 school");
                        if (has_primary && has_junior && primary + junior != s->students)
                                bbt_csv_error_at(csv, bbt_csv_line(csv),
                                                 "students_primary + students_junior = %ld + %ld = %ld, but "
                                                 "students = %ld",
                                                 primary, junior, primary + junior, s->students);
                        s->students_primary = primary;
                        s->students_junior = junior;
                        break;
                case BBT_SCHOOL_PRIMARY:
                        if (has_primary && primary != s->students)
                                bbt_csv_column_error(csv, SC_PRIMARY, "%ld, but a 小学 has students = %ld", primary,
                                                     s->students);
                        if (has_junior && junior != 0)
                                bbt_csv_column_error(csv, SC_JUNIOR, "%ld, but a 小学 has no junior section", junior);
                        s->students_primary = s->students;
                        break;
                default:
                        if (has_junior && junior != s->students)
                                bbt_csv_column_error(csv, SC_JUNIOR, "%ld, but a 初中 has students = %ld", junior,
                                                     s->students);
                        if (has_primary && primary != 0)
                                bbt_csv_column_error(csv, SC_PRIMARY, "%ld, but a 初中 has no primary section",
                                                     primary);
                        s->students_junior = s->students;
                        break;
                }
        }
        if (bbt_csv_errors(csv) != before)
                return -EINVAL;
        s->county_name = dup_or_fail(bbt_csv_get(csv, SC_COUNTY_NAME), &r);
        s->township = dup_or_fail(bbt_csv_get(csv, SC_TOWNSHIP), &r);
        s->name = dup_or_fail(bbt_csv_get(csv, SC_NAME), &r);
        if (r < 0)
                school_clear(s);
        return r;
}

/* Lines of the rows added by the running import, for naming both rows of a duplicate. */
struct row_lines {
        unsigned *line;
        size_t n, cap;
};

static int row_lines_push(struct row_lines *rl, unsigned line)
{
        int r = bbt_array_reserve((void **)&rl->line, &rl->cap, rl->n + 1, sizeof(*rl->line));

        if (r == 0)
                rl->line[rl->n++] = line;
        return r;
}

int bbt_registry_load_schools(struct bbt_registry *reg, const char *path, struct bbt_import_errors *errs)
{
        struct registry_priv *p = reg->priv;
        struct row_lines lines = { 0 };
        struct bbt_csv *csv = NULL;
        size_t first = reg->n_schools;
        int r;

        r = bbt_csv_open(path, school_columns, SC__COUNT, errs, &csv);
        if (r < 0)
                return r;
        /* Rows are appended and indexed as they come, so duplicates within the
         * file and against the registry are found the same way; a failed import
         * is rolled back at the end. */
        while ((r = bbt_csv_next(csv)) != 0) {
                struct bbt_school s;
                const struct bbt_school *dup;

                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto rollback;
                r = school_from_row(csv, &s);
                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto rollback;
                dup = school_find(reg, s.code);
                if (dup) {
                        size_t di = (size_t)(dup - reg->schools);

                        if (di >= first)
                                bbt_csv_column_error(csv, SC_CODE, "school %s is also on line %u", s.code,
                                                     lines.line[di - first]);
                        else
                                bbt_csv_column_error(csv, SC_CODE, "school %s is already in the registry", s.code);
                        school_clear(&s);
                        continue;
                }
                r = bbt_array_reserve((void **)&reg->schools, &p->schools_cap, reg->n_schools + 1,
                                      sizeof(*reg->schools));
                if (r == 0)
                        r = row_lines_push(&lines, bbt_csv_line(csv));
                if (r < 0) {
                        school_clear(&s);
                        goto rollback;
                }
                reg->schools[reg->n_schools++] = s;
                r = index_add(&p->schools, reg, reg->n_schools - 1, reg->n_schools, school_hash);
                if (r < 0)
                        goto rollback;
        }
        if (bbt_csv_errors(csv) == 0)
                goto done;
        r = -EINVAL;
rollback:
        while (reg->n_schools > first)
                school_clear(&reg->schools[--reg->n_schools]);
        index_refill(&p->schools, reg, reg->n_schools, school_hash);
done:
        free(lines.line);
        bbt_csv_free(csv);
        return r;
}

enum { TC_SCHOOL, TC_ID, TC_ROOM, TC_EXPECTED, TC_KIND, TC__COUNT };
static const struct bbt_csv_column terminal_columns[TC__COUNT] = {
        [TC_SCHOOL] = { "school_code", { "学校代码", "学校标识码" }, true },
        [TC_ID] = { "terminal_id", { "终端编号", "终端ID", "设备编号" }, true },
        [TC_ROOM] = { "room", { "教室", "教室名称", "班级" }, false },
        [TC_EXPECTED] = { "expected", { "应配外设", "外设" }, false },
        [TC_KIND] = { "kind", { "机型", "终端类型" }, false },
};

/* The last "expected" text parsed and its kinds: a county's terminals mostly
 * share a few. */
struct expected_memo {
        char text[128];
        uint32_t kinds;
        bool valid;
};

static int terminal_from_row(struct bbt_csv *csv, const struct bbt_registry *reg, struct expected_memo *memo,
                             struct bbt_terminal_entry *t)
{
        const char *v;
        char bad[64];
        size_t before = bbt_csv_errors(csv);

        memset(t, 0, sizeof(*t));
        v = bbt_csv_get(csv, TC_SCHOOL);
        if (!bbt_id_valid(v))
                bbt_csv_bad_value(csv, TC_SCHOOL, "expected 1 to 32 of A-Z a-z 0-9 _ -");
        else if (!school_find(reg, v))
                bbt_csv_column_error(csv, TC_SCHOOL, "no school %s in the registry", v);
        else
                memcpy(t->school, v, strlen(v) + 1);
        v = bbt_csv_get(csv, TC_ID);
        if (bbt_id_valid(v))
                memcpy(t->id, v, strlen(v) + 1);
        else
                bbt_csv_bad_value(csv, TC_ID, "expected 1 to 32 of A-Z a-z 0-9 _ -");
        v = bbt_csv_get(csv, TC_EXPECTED);
        if (memo->valid && strcmp(v, memo->text) == 0) {
                t->expected = memo->kinds;
        } else if (bbt_periph_kinds_parse(v, &t->expected, bad, sizeof(bad)) < 0) {
                bbt_csv_column_error(csv, TC_EXPECTED, "unknown peripheral \"%s\"", bad);
        } else if (strlen(v) < sizeof(memo->text)) {
                memcpy(memo->text, v, strlen(v) + 1);
                memo->kinds = t->expected;
                memo->valid = true;
        }
        v = bbt_csv_get(csv, TC_KIND);
        if (strlen(v) >= sizeof(t->kind) || strpbrk(v, ",;= \t\r\n"))
                bbt_csv_bad_value(csv, TC_KIND, "expected up to 32 bytes without , ; = or spaces");
        else
                memcpy(t->kind, v, strlen(v) + 1);
        if (bbt_csv_errors(csv) != before)
                return -EINVAL;
        t->room = strdup(bbt_csv_get(csv, TC_ROOM));
        return t->room ? 0 : -ENOMEM;
}

int bbt_registry_load_terminals(struct bbt_registry *reg, const char *path, struct bbt_import_errors *errs)
{
        struct registry_priv *p = reg->priv;
        struct row_lines lines = { 0 };
        struct expected_memo memo = { .valid = false };
        struct bbt_csv *csv = NULL;
        size_t first = reg->n_terminals;
        int r;

        r = bbt_csv_open(path, terminal_columns, TC__COUNT, errs, &csv);
        if (r < 0)
                return r;
        while ((r = bbt_csv_next(csv)) != 0) {
                struct bbt_terminal_entry t;
                const struct bbt_terminal_entry *dup;

                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto rollback;
                r = terminal_from_row(csv, reg, &memo, &t);
                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto rollback;
                dup = terminal_find(reg, t.school, t.id);
                if (dup) {
                        size_t di = (size_t)(dup - reg->terminals);

                        if (di >= first)
                                bbt_csv_column_error(csv, TC_ID, "terminal %s of school %s is also on line %u",
                                                     t.id, t.school, lines.line[di - first]);
                        else
                                bbt_csv_column_error(csv, TC_ID, "terminal %s of school %s is already in the registry",
                                                     t.id, t.school);
                        free(t.room);
                        continue;
                }
                r = bbt_array_reserve((void **)&reg->terminals, &p->terminals_cap, reg->n_terminals + 1,
                                      sizeof(*reg->terminals));
                if (r == 0)
                        r = row_lines_push(&lines, bbt_csv_line(csv));
                if (r < 0) {
                        free(t.room);
                        goto rollback;
                }
                reg->terminals[reg->n_terminals++] = t;
                r = index_add(&p->terminals, reg, reg->n_terminals - 1, reg->n_terminals, terminal_hash);
                if (r < 0)
                        goto rollback;
        }
        if (bbt_csv_errors(csv) == 0)
                goto done;
        r = -EINVAL;
rollback:
        while (reg->n_terminals > first)
                free(reg->terminals[--reg->n_terminals].room);
        index_refill(&p->terminals, reg, reg->n_terminals, terminal_hash);
done:
        free(lines.line);
        bbt_csv_free(csv);
        return r;
}
