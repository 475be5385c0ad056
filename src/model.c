/*
 * model.c - field tables and the table-driven validator (see model.h).
 */
#include "model.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int
model_text_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp, len, k;

        if (c < 0x80) {
            if (c < 0x20 && c != 0x09 && c != 0x0A && c != 0x0D)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            cp = c & 0x1F;
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F;
            len = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07;
            len = 4;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
            return 0;
        i += len;
    }
    return 1;
}

size_t
model_utf8_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i, count = 0;

    for (i = 0; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

int
model_xml_name_ok(const char *s)
{
    size_t i;

    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    if (strncasecmp(s, "xml", 3) == 0)
        return 0;
    for (i = 1; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 64)
            return 0;
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* ---- field tables ---------------------------------------------------- */

#define STR(n, max)  { n, MT_STR, 0, 0, max, NULL }
#define INT(n, lo, hi) { n, MT_INT, 0, lo, hi, NULL }
#define BOOL(n)      { n, MT_BOOL, 0, 0, 1, NULL }
#define NELEM(a)     (sizeof(a) / sizeof((a)[0]))
#define SMALLINT     32767      /* what Patriot's numeric columns hold */

/* Client info, in the original README's (and Patriot's XML) order. */
static const struct mfield info_fields[] = {
    STR("Name", 100),
    STR("Alias", 100),
    STR("Location", 200),
    STR("area_code", 16),
    STR("area", 100),
    STR("BusPhone", 32),
    STR("Email", 254),
    STR("OKPassword", 64),
    STR("SpecRequest", 4000),
    INT("NoSigsMon", 0, SMALLINT),
    INT("SinceDays", 0, SMALLINT),
    INT("SinceHrs", 0, SMALLINT),
    INT("SinceMins", 0, SMALLINT),
    BOOL("ResetNosigsIgnored"),
    INT("ResetNosigsDays", 0, SMALLINT),
    INT("ResetNosigsHrs", 0, SMALLINT),
    INT("ResetNosigsMins", 0, SMALLINT),
    STR("InstallDateTime", 32),
    STR("PanelName", 100),
    STR("PanelSite", 100),
    STR("KeypadLocation", 100),
    STR("SPPage", 4000),
};
const struct mtable model_info = {"ClientInfo", info_fields,
                                  NELEM(info_fields)};

static const struct mfield zone_fields[] = {
    {"Zone_No", MT_INT, MF_REQUIRED, 1, 999, NULL},
    STR("Zone_area", 100),
    INT("ModuleNo", 0, SMALLINT),
};
const struct mtable model_zone = {"Zone", zone_fields, NELEM(zone_fields)};

static const struct mfield user_fields[] = {
    {"User_Name", MT_STR, MF_REQUIRED, 0, 100, NULL},
    STR("MobileNo", 32),
    INT("MobileNoOrder", 0, SMALLINT),
    STR("Email", 254),
    STR("Type", 8),
    {"UserNo", MT_INT, MF_REQUIRED, 1, 999, NULL},
    STR("Instructions", 4000),
    INT("CallOrder", 0, SMALLINT),
};
const struct mtable model_user = {"User", user_fields, NELEM(user_fields)};

#define CLIENT_ID {"client_id", MT_ID, MF_REQUIRED, 1, MODEL_CLIENT_ID_MAX, NULL}

static const struct mfield body_client_fields[] = {
    CLIENT_ID,
    {"info", MT_OBJ, MF_REQUIRED, 0, 0, &model_info},
};
const struct mtable model_body_client = {"ClientUpsert", body_client_fields,
                                         NELEM(body_client_fields)};

static const struct mfield body_client_patch_fields[] = {
    CLIENT_ID,
    {"info", MT_OBJ, MF_REQUIRED | MF_PARTIAL, 0, 0, &model_info},
};
const struct mtable model_body_client_patch = {
    "ClientPatch", body_client_patch_fields,
    NELEM(body_client_patch_fields)};

static const struct mfield body_client_id_fields[] = {CLIENT_ID};
const struct mtable model_body_client_id = {"ClientRef",
                                            body_client_id_fields,
                                            NELEM(body_client_id_fields)};

static const struct mfield body_zone_fields[] = {
    CLIENT_ID,
    {"zone_id", MT_INT, MF_REQUIRED, 1, 999, NULL},
    STR("Zone_area", 100),
    INT("ModuleNo", 0, SMALLINT),
};
const struct mtable model_body_zone = {"ZoneUpsert", body_zone_fields,
                                       NELEM(body_zone_fields)};

static const struct mfield body_zone_id_fields[] = {
    CLIENT_ID,
    {"zone_id", MT_INT, MF_REQUIRED, 1, 999, NULL},
};
const struct mtable model_body_zone_id = {"ZoneRef", body_zone_id_fields,
                                          NELEM(body_zone_id_fields)};

static const struct mfield body_user_fields[] = {
    CLIENT_ID,
    {"user", MT_OBJ, MF_REQUIRED, 0, 0, &model_user},
};
const struct mtable model_body_user = {"UserBody", body_user_fields,
                                       NELEM(body_user_fields)};

static const struct mfield body_user_no_fields[] = {
    CLIENT_ID,
    {"user_no", MT_INT, MF_REQUIRED, 1, 999, NULL},
};
const struct mtable model_body_user_no = {"UserRef", body_user_no_fields,
                                          NELEM(body_user_no_fields)};

/* ---- errors ---------------------------------------------------------- */

static int
add_error(json_t *errs, const char *type, const char *msg, json_t *loc)
{
    json_t *e = json_pack("{s:s, s:O, s:s}", "type", type, "loc", loc,
                          "msg", msg);

    return e ? json_array_append_new(errs, e) : -1;
}

int
model_error(json_t *errs, const char *type, const char *msg,
            json_t *loc_prefix, ...)
{
    json_t *loc = loc_prefix ? json_copy(loc_prefix) : json_array();
    const char *item;
    va_list ap;
    int rc;

    if (loc == NULL)
        return -1;
    va_start(ap, loc_prefix);
    while ((item = va_arg(ap, const char *)) != NULL)
        json_array_append_new(loc, json_string(item));
    va_end(ap);
    rc = add_error(errs, type, msg, loc);
    json_decref(loc);
    return rc;
}

/* loc + name: a new array. */
static json_t *
loc_with(json_t *loc, const char *name)
{
    json_t *l = json_copy(loc);

    if (l != NULL)
        json_array_append_new(l, json_string(name));
    return l;
}

/* ---- value conversion ------------------------------------------------ */

/* Parse a decimal integer string as pydantic does in lax mode: optional
 * surrounding whitespace, optional sign, digits with single underscores
 * between them, optionally ".0...". 0 ok, -1 not a number, -2 too large
 * (*out then holds LLONG_MAX or LLONG_MIN: out of every field's range),
 * -3 more than 4300 digits. */
static int
parse_int_str(const char *s, size_t n, long long *out)
{
    size_t i = 0, end = n;
    int neg = 0, digits = 0, over = 0;
    unsigned long long v = 0;

    while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' ||
                       s[i] == '\r'))
        i++;
    while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t' ||
                       s[end - 1] == '\n' || s[end - 1] == '\r'))
        end--;
    if (i < end && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    for (; i < end; i++) {
        if (s[i] == '_' && digits > 0 && i + 1 < end && s[i + 1] >= '0' &&
            s[i + 1] <= '9')
            continue;
        if (s[i] == '.' && digits > 0)
            break;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (unsigned long long)LLONG_MAX / 10)
            over = 1;
        else
            v = v * 10 + (unsigned)(s[i] - '0');
        if (v > (unsigned long long)LLONG_MAX)
            over = 1;
        digits++;
    }
    if (i < end) {                  /* a fraction: zeros only */
        for (i++; i < end; i++)
            if (s[i] != '0')
                return -1;
    }
    if (digits == 0)
        return -1;
    if (digits > 4300)              /* pydantic's (Python's) digit limit */
        return -3;
    if (over) {
        *out = neg ? LLONG_MIN : LLONG_MAX;
        return -2;
    }
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

/* 1..16 ASCII digits, nothing else, value >= 1. */
static int
parse_id_str(const char *s, size_t n, int64_t *out)
{
    size_t i;
    int64_t v = 0;

    if (n == 0 || n > 16)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

int
model_parse_client_id(const char *s, int64_t *out)
{
    return s ? parse_id_str(s, strlen(s), out) : -1;
}

int
model_parse_user_no(const char *s, int64_t *out)
{
    size_t i, n = s ? strlen(s) : 0;
    int64_t v = 0;

    if (n == 0 || n > 3)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v == MODEL_INSTALLER_USER_NO)
        return -1;
    *out = v;
    return 0;
}

static int
bool_word(const char *s, size_t n, int *out)
{
    static const char *yes[] = {"true", "1", "yes", "on", "t", "y"};
    static const char *no[] = {"false", "0", "no", "off", "f", "n"};
    size_t i;

    for (i = 0; i < NELEM(yes); i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/*
 * Convert one value v of field f. Returns a new value, or NULL after
 * appending an error at loc (borrowed) to errs.
 */
static json_t *convert(const struct mfield *f, json_t *v, json_t *loc,
                       json_t *errs, json_t *ignored, const char *path);

static json_t *validate_obj(const struct mtable *t, json_t *in, int partial,
                            json_t *loc, json_t *errs, json_t *ignored,
                            const char *path);

/* Set by model_validate for the call: MV_INTS_AS_REAL. */
static _Thread_local int tl_ints_as_real;

static json_t *
convert_int(const struct mfield *f, json_t *v, json_t *loc, json_t *errs)
{
    char msg[96];
    long long n;

    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v) && tl_ints_as_real &&
               (json_real_value(v) >= 9.2e18 ||
                json_real_value(v) <= -9.2e18)) {
        /* An integer literal past int64: out of every field's range. */
        n = json_real_value(v) > 0 ? LLONG_MAX : LLONG_MIN;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);

        if (d != d || d > 9.2e18 || d < -9.2e18) {
            add_error(errs, "int_parsing_size", "Unable to parse input as an"
                      " integer, exceeded maximum size", loc);
            return NULL;
        }
        if (d != (double)(long long)d) {
            add_error(errs, "int_from_float",
                      "Input should be a valid integer, got a number with a"
                      " fractional part", loc);
            return NULL;
        }
        n = (long long)d;
    } else if (json_is_string(v)) {
        int rc = parse_int_str(json_string_value(v), json_string_length(v),
                               &n);
        /* rc -2: too large for any field; n is past the range below. */
        if (rc == -3) {
            add_error(errs, "int_parsing_size", "Unable to parse input string"
                      " as an integer, exceeded maximum size", loc);
            return NULL;
        }
        if (rc == -1) {
            add_error(errs, "int_parsing",
                      "Input should be a valid integer, unable to parse"
                      " string as an integer", loc);
            return NULL;
        }
    } else {
        add_error(errs, "int_type", "Input should be a valid integer", loc);
        return NULL;
    }
    if (n < f->mf_min) {
        snprintf(msg, sizeof(msg), "Input should be greater than or equal"
                 " to %lld", f->mf_min);
        add_error(errs, "greater_than_equal", msg, loc);
        return NULL;
    }
    if (n > f->mf_max) {
        snprintf(msg, sizeof(msg), "Input should be less than or equal to"
                 " %lld", f->mf_max);
        add_error(errs, "less_than_equal", msg, loc);
        return NULL;
    }
    return json_integer(n);
}

static json_t *
convert(const struct mfield *f, json_t *v, json_t *loc, json_t *errs,
        json_t *ignored, const char *path)
{
    char msg[96];

    switch (f->mf_type) {
    case MT_STR: {
        const char *s;
        size_t n;

        if (!json_is_string(v)) {
            add_error(errs, "string_type", "Input should be a valid string",
                      loc);
            return NULL;
        }
        s = json_string_value(v);
        n = json_string_length(v);
        if (!model_text_ok(s, n)) {
            add_error(errs, "string_xml_char",
                      "String is not valid UTF-8 or holds a character"
                      " that XML 1.0 cannot hold (a control character, NUL,"
                      " a lone surrogate or a non-character)", loc);
            return NULL;
        }
        if ((long long)model_utf8_len(s, n) > f->mf_max) {
            snprintf(msg, sizeof(msg), "String should have at most %lld"
                     " characters", f->mf_max);
            add_error(errs, "string_too_long", msg, loc);
            return NULL;
        }
        return json_stringn_nocheck(s, n);
    }
    case MT_INT:
        return convert_int(f, v, loc, errs);
    case MT_BOOL: {
        int b;

        if (json_is_boolean(v))
            return json_boolean(json_is_true(v));
        if (json_is_integer(v) && (json_integer_value(v) == 0 ||
                                   json_integer_value(v) == 1))
            return json_boolean(json_integer_value(v));
        if (json_is_real(v) && (json_real_value(v) == 0.0 ||
                                json_real_value(v) == 1.0))
            return json_boolean(json_real_value(v) == 1.0);
        if (json_is_string(v) &&
            bool_word(json_string_value(v), json_string_length(v), &b) == 0)
            return json_boolean(b);
        if (json_is_array(v) || json_is_object(v) || json_is_real(v))
            add_error(errs, "bool_type", "Input should be a valid boolean",
                      loc);
        else
            add_error(errs, "bool_parsing", "Input should be a valid boolean,"
                      " unable to interpret input", loc);
        return NULL;
    }
    case MT_ID: {
        int64_t id;

        if (json_is_integer(v) && json_integer_value(v) >= f->mf_min &&
            json_integer_value(v) <= f->mf_max)
            return json_integer(json_integer_value(v));
        if (json_is_string(v) &&
            parse_id_str(json_string_value(v), json_string_length(v),
                         &id) == 0)
            return json_integer(id);
        if (json_is_real(v) && tl_ints_as_real &&
            json_real_value(v) >= (double)f->mf_min &&
            json_real_value(v) <= 9007199254740992.0 &&
            json_real_value(v) == (double)(int64_t)json_real_value(v))
            return json_integer((json_int_t)json_real_value(v));
        add_error(errs, "client_id_format", "client_id must be a positive"
                  " integer of 1 to 16 digits, or a string of such digits",
                  loc);
        return NULL;
    }
    case MT_OBJ:
        if (!json_is_object(v)) {
            add_error(errs, "model_attributes_type", "Input should be a valid"
                      " dictionary or object to extract fields from", loc);
            return NULL;
        }
        return validate_obj(f->mf_sub, v, (f->mf_flags & MF_PARTIAL) != 0,
                            loc, errs, ignored, path);
    }
    return NULL;
}

static const struct mfield *
find_field(const struct mtable *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->mt_nfields; i++)
        if (strcmp(t->mt_fields[i].mf_name, name) == 0)
            return &t->mt_fields[i];
    return NULL;
}

static void
note_ignored(json_t *ignored, const char *path, const char *name)
{
    char buf[160];

    if (ignored == NULL || json_array_size(ignored) >= 32)
        return;
    /* Names go into a response header: keep printable ASCII only. */
    snprintf(buf, sizeof(buf), "%s%s%s", path ? path : "", path ? "." : "",
             name);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == ',')
            *p = '?';
    json_array_append_new(ignored, json_string(buf));
}

static json_t *
validate_obj(const struct mtable *t, json_t *in, int partial, json_t *loc,
             json_t *errs, json_t *ignored, const char *path)
{
    json_t *out = json_object(), *v, *c, *floc;
    const char *name;
    size_t i, nerr = json_array_size(errs);

    if (out == NULL)
        return NULL;
    json_object_foreach(in, name, v) {
        if (find_field(t, name) == NULL)
            note_ignored(ignored, path, name);
    }
    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];

        v = json_object_get(in, f->mf_name);
        if (v == NULL || json_is_null(v)) {
            if (partial && v != NULL) {
                json_object_set_new(out, f->mf_name, json_null());
            } else if ((f->mf_flags & MF_REQUIRED) && !partial) {
                floc = loc_with(loc, f->mf_name);
                add_error(errs, "missing", "Field required", floc);
                json_decref(floc);
            }
            continue;
        }
        if ((floc = loc_with(loc, f->mf_name)) == NULL)
            goto fail;
        c = convert(f, v, floc, errs, ignored, f->mf_name);
        json_decref(floc);
        if (c != NULL)
            json_object_set_new(out, f->mf_name, c);
    }
    if (json_array_size(errs) != nerr)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

json_t *
model_validate(const struct mtable *t, json_t *in, unsigned flags,
               json_t *loc_prefix, json_t *errs, json_t *ignored)
{
    json_t *loc = loc_prefix ? json_copy(loc_prefix) : json_array(), *out;

    if (loc == NULL)
        return NULL;
    if (!json_is_object(in)) {
        add_error(errs, "model_attributes_type", "Input should be a valid"
                  " dictionary or object to extract fields from", loc);
        json_decref(loc);
        return NULL;
    }
    tl_ints_as_real = (flags & MV_INTS_AS_REAL) != 0;
    out = validate_obj(t, in, (flags & MV_PARTIAL) != 0, loc, errs, ignored,
                       NULL);
    tl_ints_as_real = 0;
    json_decref(loc);
    return out;
}

json_t *
model_merge(const struct mtable *t, json_t *base, json_t *patch)
{
    json_t *out = json_object(), *v;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < t->mt_nfields; i++) {
        const char *name = t->mt_fields[i].mf_name;

        v = json_object_get(patch, name);
        if (v == NULL)
            v = json_object_get(base, name);
        if (v == NULL || json_is_null(v))
            continue;
        if (json_object_set(out, name, v) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

int
model_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}
