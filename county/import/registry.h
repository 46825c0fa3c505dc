/* The registry: county → township → school → terminal, read from CSV files (UTF-8, UTF-8 with BOM, or GB18030). */
#ifndef BBT_REGISTRY_H
#define BBT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bbt/protocol.h>

/* Problems found while reading a CSV file. Each load clears it first. Each
 * message is one line naming the file (by its base name), row (the physical
 * line; 1 = the header line) and column, e.g.
 * "schools.csv:7: column students (学生数): expected an integer >= 0, got \"三百\"". */
#define BBT_IMPORT_ERRORS_KEPT 50
struct bbt_import_errors {
        size_t count;                       /* problems found (may exceed n_kept) */
        size_t n_kept;
        char msg[BBT_IMPORT_ERRORS_KEPT][256];
};

enum bbt_school_type {
        BBT_SCHOOL_PRIMARY,   /* 小学 */
        BBT_SCHOOL_JUNIOR,    /* 初中 */
        BBT_SCHOOL_NINE_YEAR, /* 九年一贯制: both sections */
        BBT_SCHOOL_TYPE__COUNT
};
enum bbt_area {
        BBT_AREA_URBAN, /* 城区 */
        BBT_AREA_TOWN,  /* 镇区 */
        BBT_AREA_RURAL, /* 乡村 */
        BBT_AREA__COUNT
};
/* "小学"/"初中"/"九年一贯制" and "primary"/"junior"/"nine_year". */
const char *bbt_school_type_name(enum bbt_school_type t, bool chinese);
const char *bbt_area_name(enum bbt_area a, bool chinese);

struct bbt_school {
        char county[7];              /* 6-digit county code */
        char *county_name;           /* 县/区 name, may be "" */
        char *township;              /* 乡镇/街道 name, may be "" */
        char code[BBT_ID_MAX + 1];   /* 学校标识码 or another [A-Za-z0-9_-]{1,32} */
        char *name;                  /* 学校名称 */
        enum bbt_school_type type;
        enum bbt_area area;
        long students;               /* 学生数: all pupils */
        long students_primary;       /* 九年一贯制: pupils in grades 1–6 (else = students or 0) */
        long students_junior;        /* 九年一贯制: pupils in grades 7–9 (else = students or 0) */
        long classrooms;             /* 教室数/班级数 */
};

struct bbt_terminal_entry {
        char school[BBT_ID_MAX + 1]; /* the school's code */
        char id[BBT_ID_MAX + 1];     /* terminal id as in the topic */
        char *room;                  /* 教室, may be "" */
        uint32_t expected;           /* bit (1u << enum bbt_periph_kind) per expected peripheral */
        char kind[33];               /* 机型: what [energy] kind_watts names (board, projector ...); "" none */
};

/* Pointers into SCHOOLS and TERMINALS (and those the lookups return) are valid
 * until the next load into the same registry. */
struct bbt_registry {
        size_t n_schools;
        struct bbt_school *schools;   /* in file order */
        size_t n_terminals;
        struct bbt_terminal_entry *terminals;
        void *priv;                   /* lookup indexes */
};

/* An empty registry. Returns 0 or -ENOMEM. */
int bbt_registry_new(struct bbt_registry **ret);
/* NULL-safe. */
void bbt_registry_free(struct bbt_registry *reg);

/* Reads the schools CSV at PATH (columns in docs/registry.md) into REG. All or
 * nothing: on any problem nothing is added, ERRS (may be NULL) lists them all,
 * and -EINVAL is returned; -errno if the file cannot be read; 0 on success. A
 * school code already in REG, or twice in the file, is an error. */
int bbt_registry_load_schools(struct bbt_registry *reg, const char *path, struct bbt_import_errors *errs);
/* Reads the terminals CSV at PATH into REG, as bbt_registry_load_schools. Every
 * terminal's school must already be in REG; (school, id) must be unique. */
int bbt_registry_load_terminals(struct bbt_registry *reg, const char *path, struct bbt_import_errors *errs);

/* The school with CODE, or NULL. */
const struct bbt_school *bbt_registry_school(const struct bbt_registry *reg, const char *code);
/* The terminal ID of school SCHOOL, or NULL. */
const struct bbt_terminal_entry *bbt_registry_terminal(const struct bbt_registry *reg, const char *school,
                                                       const char *id);

/* Parses an expected-peripherals list: kind names of protocol.h or their
 * Chinese names (展台/实物展台 = camera, 麦克风 = audio_in, 音箱/扬声器 = audio_out,
 * 触摸框/触摸屏 = touch, 笔 = pen, 键盘, 鼠标, U盘/存储 = storage, 显示器 = display,
 * 投影仪/投影机 = projector, 网卡 = network) separated by ';', ',', '、', '|',
 * spaces or line breaks. Returns 0 and *RET, or -EINVAL with the offending word in BAD. */
int bbt_periph_kinds_parse(const char *s, uint32_t *ret, char *bad, size_t bad_size);

#endif
