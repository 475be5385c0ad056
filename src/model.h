/*
 * model.h - the field tables of patriot-api and the one validator that walks
 * them.
 *
 * Every client info field, zone field, user field and request body field is
 * one row in a table: JSON name, type, limits, required or not. Parsing,
 * validation (422 bodies naming each bad field, in FastAPI's shape), the JSON
 * responses and the XML Row are all driven by these tables: adding a Patriot
 * field is one line in model.c.
 *
 * A validated value is a new jansson object holding only known fields, in
 * table order, with values converted to their type (a numeric string becomes
 * an integer, "true" a boolean, ...). That canonical object is what the store
 * keeps and what patriot_xml renders.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum mtype {
    MT_STR,     /* text; mf_max = longest length in code points */
    MT_INT,     /* integer in [mf_min, mf_max] */
    MT_BOOL,    /* true/false; XML True/False */
    MT_ID,      /* client id: 1 to 16 ASCII digits, as integer or string */
    MT_OBJ,     /* nested object validated against mf_sub */
};

#define MF_REQUIRED 0x1     /* absent or null: 422 "missing" */
#define MF_PARTIAL  0x2     /* MT_OBJ: validate the sub-object as a patch */

struct mtable;

struct mfield {
    const char *mf_name;            /* JSON name = XML element name */
    enum mtype mf_type;
    unsigned mf_flags;              /* MF_* */
    long long mf_min, mf_max;       /* MT_INT range; MT_STR max length */
    const struct mtable *mf_sub;    /* MT_OBJ only */
};

struct mtable {
    const char *mt_name;            /* for documentation */
    const struct mfield *mt_fields;
    size_t mt_nfields;
};

/* Client info, zone, user: rows in Patriot's XML order. */
extern const struct mtable model_info;
extern const struct mtable model_zone;      /* Zone_No, Zone_area, ModuleNo */
extern const struct mtable model_user;

/* Request bodies. */
extern const struct mtable model_body_client;     /* client_id, info */
extern const struct mtable model_body_client_patch; /* client_id, info (partial) */
extern const struct mtable model_body_client_id;  /* client_id */
extern const struct mtable model_body_zone;       /* client_id, zone_id, Zone_area, ModuleNo */
extern const struct mtable model_body_zone_id;    /* client_id, zone_id */
extern const struct mtable model_body_user;       /* client_id, user */
extern const struct mtable model_body_user_no;    /* client_id, user_no */

#define MODEL_CLIENT_ID_MAX 9999999999999999LL    /* 16 digits */
#define MODEL_INSTALLER_USER_NO 199               /* never through the API */

#define MV_PARTIAL 0x1  /* PATCH: nothing required; null kept as json null
                           meaning "clear this field" */
#define MV_INTS_AS_REAL 0x2 /* 'in' was parsed with JSON_DECODE_INT_AS_REAL
                           (an integer overflowed int64): integral reals are
                           integers, and those past int64 are out of range */

/*
 * Validate 'in' against table t. Returns a new object (caller owns one
 * reference) holding the known fields converted to their types, or NULL when
 * any field is bad. Every problem is appended to errs (a JSON array, in
 * FastAPI's {"type","loc","msg"} shape) with loc = loc_prefix + field path;
 * loc_prefix is a JSON array (borrowed; typically ["body"]). Unknown fields
 * are appended to 'ignored' as "path.name" strings when ignored is not NULL.
 * 'in' is borrowed. Optional fields given as null are left out, except under
 * MV_PARTIAL where they are kept as null.
 */
json_t *model_validate(const struct mtable *t, json_t *in, unsigned flags,
                       json_t *loc_prefix, json_t *errs, json_t *ignored);

/*
 * Append one error to errs: type, msg, and loc = loc_prefix followed by the
 * given path items (strings; NULL ends the list). Returns 0, -1 on no memory.
 */
int model_error(json_t *errs, const char *type, const char *msg,
                json_t *loc_prefix, ...);

/*
 * Parse a client id header value (X-Client-Id): 1 to 16 ASCII digits, value
 * at least 1. Returns 0 and sets *out, or -1.
 */
int model_parse_client_id(const char *s, int64_t *out);

/* Parse a user number header value (X-User-No): ASCII digits, 1..999 and not
 * the installer's 199. Returns 0 and sets *out, or -1. */
int model_parse_user_no(const char *s, int64_t *out);

/*
 * 1 if the n bytes at s are UTF-8 in shortest form made only of characters
 * XML 1.0 can hold (no NUL, no C0 control but TAB, LF, CR, no surrogate, no
 * U+FFFE/U+FFFF); 0 otherwise.
 */
int model_text_ok(const char *s, size_t n);

/* 1 if s is a safe XML element name: [A-Za-z_][A-Za-z0-9_.-]{0,63}, not
 * starting with "xml" in any case; 0 otherwise. */
int model_xml_name_ok(const char *s);

/* The 4 hex digits at p (as in a JSON \uXXXX escape) into *out: 0, or -1
 * if one is not a hex digit. Reads exactly 4 bytes. */
int model_hex4(const char *p, unsigned *out);

/* Number of code points in the valid UTF-8 string s of n bytes. */
size_t model_utf8_len(const char *s, size_t n);

/*
 * Apply a validated partial object (MV_PARTIAL: null = clear) to a
 * validated base object of table t. Returns a new object in table order
 * (caller owns), or NULL on no memory. Both arguments borrowed.
 */
json_t *model_merge(const struct mtable *t, json_t *base, json_t *patch);
