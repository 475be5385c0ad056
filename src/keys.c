/*
 * keys.c - load and validate keys.json, look bearer tokens up (see keys.h).
 *
 * keys.json is a JSON array with one object per API key (tenant). Loading is
 * all or nothing: the first problem found ends the load with one line naming
 * the entry and the field, and no keyset is made, so a bad edit followed by
 * SIGHUP leaves the running keyset in place. In messages "entry N" and
 * "member N" count from 1, as people do; a bracketed index such as
 * "client_groupings[0]" counts from 0, as jq does.
 *
 * Secrets: a plain "key" is hashed with SHA-256 as soon as it is read and only
 * the digest is kept. Our copies of the plaintext (the file buffer and the
 * string in the jansson tree) are wiped with explicit_bzero() before they are
 * freed. jansson's parser scratch buffers are freed without wiping, so a
 * residue may stay in freed heap; writing "key_sha256" instead of "key" in
 * keys.json avoids that and keeps the secret off the disk too. No error
 * message ever contains a "key" or "key_sha256" value.
 *
 * A keyset is immutable once built and reference-counted with atomics, so
 * the server can swap in a new one on SIGHUP while requests still hold the
 * old one.
 */
#include "keys.h"

#include "log.h"
#include "model.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYS_FILE_MAX (4u << 20)    /* bytes of keys.json */
#define KEYS_ENTRIES_MAX 1000       /* entries in keys.json */
#define KEYS_FIELDS_MAX 256         /* xml_fields per entry */
#define KEYS_GROUPINGS_MAX 256      /* client_groupings per entry */
#define KEYS_TEXT_MAX 1024          /* bytes of any string value */
#define KEYS_TOKEN_MAX 4096         /* bytes of a bearer token or "key" */

struct keyset {
    unsigned long ks_refs;          /* atomic */
    struct key *ks_keys;
    size_t ks_nkeys;
    int ks_plain;                   /* some entry gave a plain "key" */
};

/* Where we are in keys.json, for error messages. */
struct kctx {
    char *kc_err;
    size_t kc_errlen;
    size_t kc_entry;                /* counted from 1 */
    const char *kc_name;            /* key_name once checked, else NULL */
};

/* Element names the XML Row writes itself (besides the client info fields):
 * an xml_fields entry must not produce a second one. */
static const char *const keys_reserved[] = {
    "__id", "Installer", "ClientGroupings", "ClientGrouping", "Zone", "User",
};

static void keys_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void keys_entry_err(const struct kctx *kc, const char *field,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf into err; when cut short, a UTF-8 sequence is not left half. */
static void
keys_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    size_t i;
    int n;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n < errlen)
        return;
    i = errlen - 1;             /* strlen(err) */
    while (i > 0 && ((unsigned char)err[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && (unsigned char)err[i - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)err[i - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;

        if (errlen - 1 - (i - 1) < need)
            err[i - 1] = '\0';
    }
}

/*
 * Write 'keys.json entry N ("name"): field "F": <message>' into the error
 * buffer. The name appears only once it has passed its own check, so it is
 * always printable.
 */
static void
keys_entry_err(const struct kctx *kc, const char *field, const char *fmt, ...)
{
    char msg[512], where[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (kc->kc_name != NULL)
        snprintf(where, sizeof where, "keys.json entry %zu (\"%s\")",
                 kc->kc_entry, kc->kc_name);
    else
        snprintf(where, sizeof where, "keys.json entry %zu", kc->kc_entry);
    if (field != NULL)
        keys_errf(kc->kc_err, kc->kc_errlen, "%s: field \"%s\": %s", where,
                  field, msg);
    else
        keys_errf(kc->kc_err, kc->kc_errlen, "%s: %s", where, msg);
}

/* A fixed message for each jansson error: err.text may hold a cut UTF-8
 * sequence copied from the input, so it is never shown. */
static const char *
keys_json_error_msg(enum json_error_code code)
{
    switch (code) {
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_stack_overflow:
        return "nested too deeply";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "unexpected end of input";
    case json_error_end_of_input_expected:
        return "extra data after the top-level value";
    case json_error_invalid_syntax:
        return "invalid syntax";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "\\u0000 in a string";
    case json_error_duplicate_key:
        return "duplicate member name in an object";
    case json_error_numeric_overflow:
        return "number out of range";
    default:
        return "invalid JSON";
    }
}

/* 1 if s matches [A-Za-z0-9_-]{1,KEYS_NAME_MAX}. */
static int
keys_name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > KEYS_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * Copy the string value v of field 'field' into *out (malloc'd). It must be
 * a string of at most KEYS_TEXT_MAX bytes that XML 1.0 can hold, and not
 * empty when nonempty is set. Returns 0, or -1 with the error written.
 */
static int
keys_text_dup(const struct kctx *kc, const char *field, const json_t *v,
              int nonempty, char **out)
{
    const char *s;
    size_t n;

    if (v == NULL) {
        keys_entry_err(kc, field, "missing");
        return -1;
    }
    if (!json_is_string(v)) {
        keys_entry_err(kc, field, "must be a string");
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (nonempty && n == 0) {
        keys_entry_err(kc, field, "must not be empty");
        return -1;
    }
    if (n > KEYS_TEXT_MAX) {
        keys_entry_err(kc, field, "longer than %d bytes", KEYS_TEXT_MAX);
        return -1;
    }
    /* Also refuses NUL (parsed with JSON_ALLOW_NUL so it lands here). */
    if (!model_text_ok(s, n)) {
        keys_entry_err(kc, field, "holds a control character or a "
                       "character XML 1.0 cannot hold");
        return -1;
    }
    if ((*out = strndup(s, n)) == NULL) {
        keys_entry_err(kc, field, "out of memory");
        return -1;
    }
    return 0;
}

/* [A-Za-z0-9_-]{1,64} string (key_name, port) into *out. */
static int
keys_ident_dup(const struct kctx *kc, const char *field, const json_t *v,
               char **out)
{
    if (v == NULL) {
        keys_entry_err(kc, field, "missing");
        return -1;
    }
    if (!json_is_string(v)) {
        keys_entry_err(kc, field, "must be a string");
        return -1;
    }
    if (!keys_name_ok(json_string_value(v), json_string_length(v))) {
        keys_entry_err(kc, field, "must match [A-Za-z0-9_-]{1,%d}",
                       KEYS_NAME_MAX);
        return -1;
    }
    if ((*out = strdup(json_string_value(v))) == NULL) {
        keys_entry_err(kc, field, "out of memory");
        return -1;
    }
    return 0;
}

/* Digits s[0..n) as a number; -1 unless all are ASCII digits. */
static int
keys_digits(const char *s, size_t n)
{
    int v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int
keys_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/*
 * Parse an ISO-8601 date or date-time into seconds since the epoch:
 *   YYYY-MM-DD
 *   YYYY-MM-DD(T| )HH:MM[:SS[.fraction]][Z|+HH:MM|-HH:MM]
 * Without an offset the time is UTC. Fractions of a second are dropped (the
 * key expires up to a second early, never late). Returns 0, or -1 if s is not
 * such a time or is not after 1970-01-01T00:00:00Z.
 */
static int
keys_parse_time(const char *s, size_t n, time_t *out)
{
    struct tm tm;
    size_t i;
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    time_t t;

    if (n < 10 || s[4] != '-' || s[7] != '-')
        return -1;
    y = keys_digits(s, 4);
    mo = keys_digits(s + 5, 2);
    d = keys_digits(s + 8, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > keys_days_in_month(y, mo))
        return -1;
    i = 10;
    if (i < n) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return -1;
        if (n - i < 6 || s[i + 3] != ':')
            return -1;
        h = keys_digits(s + i + 1, 2);
        mi = keys_digits(s + i + 4, 2);
        if (h < 0 || h > 23 || mi < 0 || mi > 59)
            return -1;
        i += 6;
        if (i < n && s[i] == ':') {
            if (n - i < 3)
                return -1;
            sec = keys_digits(s + i + 1, 2);
            if (sec < 0 || sec > 59)
                return -1;
            i += 3;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                size_t start = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == start)
                    return -1;
            }
        }
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int oh, om;

            if (n - i != 6 || s[i + 3] != ':')
                return -1;
            oh = keys_digits(s + i + 1, 2);
            om = keys_digits(s + i + 4, 2);
            if (oh < 0 || oh > 23 || om < 0 || om > 59)
                return -1;
            off = (oh * 60 + om) * 60;
            if (s[i] == '-')
                off = -off;
            i += 6;
        }
        if (i != n)
            return -1;
    }
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    t -= off;
    if (t <= 0)         /* 0 would mean "no expiry" */
        return -1;
    *out = t;
    return 0;
}

/* Decode 64 hex digits (either case) into KEYS_HASH_LEN bytes. */
static int
keys_hex_decode(const char *s, size_t n, unsigned char *out)
{
    size_t i;

    if (n != 2 * KEYS_HASH_LEN)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned v;

        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] = (unsigned char)(out[i / 2] | v);
    }
    return 0;
}

/* Secret from "key" or "key_sha256" into k->k_hash. */
static int
keys_parse_secret(const struct kctx *kc, json_t *obj, struct key *k)
{
    const json_t *plain = json_object_get(obj, "key");
    const json_t *hex = json_object_get(obj, "key_sha256");
    size_t i, n;
    const char *s;

    if (json_is_null(plain))
        plain = NULL;
    if (json_is_null(hex))
        hex = NULL;
    if (plain != NULL && hex != NULL) {
        keys_entry_err(kc, "key", "give either \"key\" or \"key_sha256\", "
                       "not both");
        return -1;
    }
    if (plain == NULL && hex == NULL) {
        keys_entry_err(kc, "key", "missing (give \"key\" or \"key_sha256\")");
        return -1;
    }
    if (hex != NULL) {
        if (!json_is_string(hex) ||
            keys_hex_decode(json_string_value(hex), json_string_length(hex),
                            k->k_hash) == -1) {
            keys_entry_err(kc, "key_sha256", "must be a string of %d hex "
                           "digits", 2 * KEYS_HASH_LEN);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(plain)) {
        keys_entry_err(kc, "key", "must be a string");
        return -1;
    }
    s = json_string_value(plain);
    n = json_string_length(plain);
    if (n == 0 || n > KEYS_TOKEN_MAX) {
        keys_entry_err(kc, "key", "must be 1 to %d bytes", KEYS_TOKEN_MAX);
        return -1;
    }
    /* It travels in an HTTP header: no control characters. */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F) {
            keys_entry_err(kc, "key", "holds a control character");
            return -1;
        }
    }
    if (!model_text_ok(s, n)) {
        keys_entry_err(kc, "key", "is not valid UTF-8");
        return -1;
    }
    keys_sha256(s, n, k->k_hash);
    return 0;
}

/* 1 if name may not be used for an xml_fields element. */
static int
keys_name_reserved(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof keys_reserved / sizeof keys_reserved[0]; i++)
        if (strcasecmp(name, keys_reserved[i]) == 0)
            return 1;
    for (i = 0; i < model_info.mt_nfields; i++)
        if (strcasecmp(name, model_info.mt_fields[i].mf_name) == 0)
            return 1;
    return 0;
}

/* "xml_fields": object of element name -> string, in file order. */
static int
keys_parse_fields(const struct kctx *kc, json_t *obj, struct key *k)
{
    json_t *fields = json_object_get(obj, "xml_fields"), *v;
    const char *name;
    char label[96];
    size_t i, j, n;

    if (fields == NULL || json_is_null(fields))
        return 0;
    if (!json_is_object(fields)) {
        keys_entry_err(kc, "xml_fields", "must be an object of element "
                       "name to string");
        return -1;
    }
    n = json_object_size(fields);
    if (n > KEYS_FIELDS_MAX) {
        keys_entry_err(kc, "xml_fields", "more than %d fields",
                       KEYS_FIELDS_MAX);
        return -1;
    }
    if (n == 0)
        return 0;
    if ((k->k_fields = calloc(n, sizeof *k->k_fields)) == NULL) {
        keys_entry_err(kc, "xml_fields", "out of memory");
        return -1;
    }
    i = 0;
    json_object_foreach(fields, name, v) {
        struct key_field *f = &k->k_fields[i];

        assert(i < n);
        /* The name is shown only once it is known to be plain ASCII. */
        if (!model_xml_name_ok(name)) {
            keys_entry_err(kc, "xml_fields", "member %zu: name is not a "
                           "valid XML element name ([A-Za-z_][A-Za-z0-9_.-]"
                           "{0,63}, not starting with \"xml\")", i + 1);
            return -1;
        }
        snprintf(label, sizeof label, "xml_fields.%s", name);
        if (keys_name_reserved(name)) {
            keys_entry_err(kc, label, "name is reserved (written by the "
                           "server itself)");
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcasecmp(name, k->k_fields[j].kf_name) == 0) {
                keys_entry_err(kc, label, "same name as \"%s\" (names are "
                               "compared ignoring case)",
                               k->k_fields[j].kf_name);
                return -1;
            }
        }
        if ((f->kf_name = strdup(name)) == NULL) {
            keys_entry_err(kc, label, "out of memory");
            return -1;
        }
        k->k_nfields = ++i;
        if (keys_text_dup(kc, label, v, 0, &f->kf_value) == -1)
            return -1;
    }
    return 0;
}

/* "client_groupings": array of {Description, GroupingTypeDescription,
 * GroupingAllowMultiple}. */
static int
keys_parse_groupings(const struct kctx *kc, json_t *obj, struct key *k)
{
    json_t *arr = json_object_get(obj, "client_groupings"), *g;
    char label[96];
    size_t i, n;

    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        keys_entry_err(kc, "client_groupings", "must be an array of objects");
        return -1;
    }
    n = json_array_size(arr);
    if (n > KEYS_GROUPINGS_MAX) {
        keys_entry_err(kc, "client_groupings", "more than %d groupings",
                       KEYS_GROUPINGS_MAX);
        return -1;
    }
    if (n == 0)
        return 0;
    if ((k->k_groupings = calloc(n, sizeof *k->k_groupings)) == NULL) {
        keys_entry_err(kc, "client_groupings", "out of memory");
        return -1;
    }
    k->k_ngroupings = n;
    json_array_foreach(arr, i, g) {
        struct key_grouping *kg = &k->k_groupings[i];

        if (!json_is_object(g)) {
            snprintf(label, sizeof label, "client_groupings[%zu]", i);
            keys_entry_err(kc, label, "must be an object");
            return -1;
        }
        snprintf(label, sizeof label, "client_groupings[%zu].Description",
                 i);
        if (keys_text_dup(kc, label, json_object_get(g, "Description"), 0,
                          &kg->kg_description) == -1)
            return -1;
        snprintf(label, sizeof label,
                 "client_groupings[%zu].GroupingTypeDescription", i);
        if (keys_text_dup(kc, label,
                          json_object_get(g, "GroupingTypeDescription"), 0,
                          &kg->kg_type_description) == -1)
            return -1;
        snprintf(label, sizeof label,
                 "client_groupings[%zu].GroupingAllowMultiple", i);
        if (keys_text_dup(kc, label,
                          json_object_get(g, "GroupingAllowMultiple"), 0,
                          &kg->kg_allow_multiple) == -1)
            return -1;
    }
    return 0;
}

/*
 * One keys.json entry into k (zeroed by the caller). On error returns -1;
 * whatever was stored in k is freed by keys_free_key().
 */
static int
keys_parse_entry(struct kctx *kc, json_t *obj, struct key *k)
{
    const json_t *v;

    if (!json_is_object(obj)) {
        keys_entry_err(kc, NULL, "must be an object");
        return -1;
    }
    if (keys_ident_dup(kc, "key_name", json_object_get(obj, "key_name"),
                       &k->k_name) == -1)
        return -1;
    kc->kc_name = k->k_name;
    if (keys_parse_secret(kc, obj, k) == -1)
        return -1;
    if (keys_ident_dup(kc, "port", json_object_get(obj, "port"),
                       &k->k_port) == -1)
        return -1;
    if (keys_text_dup(kc, "installer_name",
                      json_object_get(obj, "installer_name"), 1,
                      &k->k_installer_name) == -1)
        return -1;
    if (keys_text_dup(kc, "installer_email",
                      json_object_get(obj, "installer_email"), 1,
                      &k->k_installer_email) == -1)
        return -1;

    v = json_object_get(obj, "enabled");
    if (v == NULL) {
        k->k_enabled = 1;
    } else if (json_is_boolean(v)) {
        k->k_enabled = json_is_true(v);
    } else {
        keys_entry_err(kc, "enabled", "must be true or false");
        return -1;
    }

    v = json_object_get(obj, "valid_to");
    k->k_valid_to = 0;
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) ||
            keys_parse_time(json_string_value(v), json_string_length(v),
                            &k->k_valid_to) == -1) {
            keys_entry_err(kc, "valid_to", "must be null or a UTC time "
                           "after 1970 such as \"2030-01-01T00:00:00Z\" or "
                           "\"2030-01-01\"");
            return -1;
        }
    }

    if (keys_parse_fields(kc, obj, k) == -1)
        return -1;
    if (keys_parse_groupings(kc, obj, k) == -1)
        return -1;
    return 0;
}

/* 1 if ports a and b could give the same <__id>: client_id + port is the
 * same string when one port is the other with leading digits in front
 * ("1" + "23X" == "12" + "3X"), or when they are equal (ignoring case). */
static int
keys_ports_clash(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i;
    const char *longer = la >= lb ? a : b, *shorter = la >= lb ? b : a;
    size_t ll = la >= lb ? la : lb, ls = la >= lb ? lb : la;

    if (strcasecmp(longer + (ll - ls), shorter) != 0)
        return 0;
    for (i = 0; i < ll - ls; i++)
        if (longer[i] < '0' || longer[i] > '9')
            return 0;
    return 1;
}

/* Checks across entries: names, secrets and ports must be unique. */
static int
keys_check_unique(const struct keyset *ks, char *err, size_t errlen)
{
    struct kctx kc;
    size_t i, j;

    for (i = 0; i < ks->ks_nkeys; i++) {
        const struct key *a = &ks->ks_keys[i];

        memset(&kc, 0, sizeof kc);
        kc.kc_err = err;
        kc.kc_errlen = errlen;
        kc.kc_entry = i + 1;
        kc.kc_name = a->k_name;
        for (j = 0; j < i; j++) {
            const struct key *b = &ks->ks_keys[j];

            if (strcasecmp(a->k_name, b->k_name) == 0) {
                keys_entry_err(&kc, "key_name", "same name as entry %zu "
                               "(names are compared ignoring case)", j + 1);
                return -1;
            }
            if (memcmp(a->k_hash, b->k_hash, KEYS_HASH_LEN) == 0) {
                keys_entry_err(&kc, "key", "same secret as entry %zu "
                               "(\"%s\")", j + 1, b->k_name);
                return -1;
            }
            if (strcasecmp(a->k_port, b->k_port) == 0) {
                keys_entry_err(&kc, "port", "same port as entry %zu "
                               "(\"%s\"): the <__id> (client id + port) of "
                               "their clients would collide", j + 1,
                               b->k_name);
                return -1;
            }
            if (keys_ports_clash(a->k_port, b->k_port)) {
                keys_entry_err(&kc, "port", "clashes with port \"%s\" of "
                               "entry %zu (\"%s\"): one is the other with "
                               "leading digits, so the <__id> (client id + "
                               "port) of their clients could collide",
                               b->k_port, j + 1, b->k_name);
                return -1;
            }
        }
    }
    return 0;
}

void
keys_wipe_json(json_t *root)
{
    json_t *e, *v;
    size_t i;

    if (!json_is_array(root))
        return;
    json_array_foreach(root, i, e) {
        v = json_object_get(e, "key");
        if (json_is_string(v)) {
            /* jansson has no API for this; its buffer is plain heap memory
             * and the tree is freed right after. */
            char *s = (char *)(uintptr_t)json_string_value(v);
            explicit_bzero(s, json_string_length(v));
        }
    }
}

static void
keys_free_key(struct key *k)
{
    size_t i;

    free(k->k_name);
    free(k->k_port);
    free(k->k_installer_name);
    free(k->k_installer_email);
    for (i = 0; i < k->k_nfields; i++) {
        free(k->k_fields[i].kf_name);
        free(k->k_fields[i].kf_value);
    }
    free(k->k_fields);
    for (i = 0; i < k->k_ngroupings; i++) {
        free(k->k_groupings[i].kg_description);
        free(k->k_groupings[i].kg_type_description);
        free(k->k_groupings[i].kg_allow_multiple);
    }
    free(k->k_groupings);
    explicit_bzero(k, sizeof *k);
}

static void
keys_free(struct keyset *ks)
{
    size_t i;

    if (ks == NULL)
        return;
    for (i = 0; i < ks->ks_nkeys; i++)
        keys_free_key(&ks->ks_keys[i]);
    free(ks->ks_keys);
    free(ks);
}

/*
 * Parse keys.json from buf (len bytes, need not be NUL-terminated; borrowed).
 * Returns a new keyset with one reference (caller releases it with
 * keys_release()), or NULL with one line in err. err may be NULL.
 */
struct keyset *
keys_load_buffer(const char *buf, size_t len, char *err, size_t errlen)
{
    struct keyset *ks = NULL;
    json_t *root = NULL, *e;
    json_error_t jerr;
    struct kctx kc;
    size_t i, n;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (buf == NULL) {
        keys_errf(err, errlen, "keys.json: no data");
        goto fail;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &jerr);
    if (root == NULL) {
        keys_errf(err, errlen, "keys.json: not valid JSON at line %d "
                  "column %d: %s", jerr.line, jerr.column,
                  keys_json_error_msg(json_error_code(&jerr)));
        goto fail;
    }
    if (!json_is_array(root)) {
        keys_errf(err, errlen, "keys.json: must be an array of key objects");
        goto fail;
    }
    n = json_array_size(root);
    if (n > KEYS_ENTRIES_MAX) {
        keys_errf(err, errlen, "keys.json: more than %d entries",
                  KEYS_ENTRIES_MAX);
        goto fail;
    }
    if ((ks = calloc(1, sizeof *ks)) == NULL ||
        (ks->ks_keys = calloc(n > 0 ? n : 1, sizeof *ks->ks_keys)) == NULL) {
        keys_errf(err, errlen, "keys.json: out of memory");
        goto fail;
    }
    ks->ks_refs = 1;
    json_array_foreach(root, i, e) {
        memset(&kc, 0, sizeof kc);
        kc.kc_err = err;
        kc.kc_errlen = errlen;
        kc.kc_entry = i + 1;
        ks->ks_nkeys = i + 1;       /* so a partial entry is freed too */
        if (keys_parse_entry(&kc, e, &ks->ks_keys[i]) == -1)
            goto fail;
        if (json_is_string(json_object_get(e, "key")))
            ks->ks_plain = 1;
    }
    if (keys_check_unique(ks, err, errlen) == -1)
        goto fail;
    keys_wipe_json(root);
    json_decref(root);
    return ks;
fail:
    keys_free(ks);
    keys_wipe_json(root);
    json_decref(root);
    return NULL;
}

/*
 * Read and parse the file at path (see keys_load_buffer()). The file buffer
 * is wiped before it is freed. Warns (log_warnx) when a file holding plain
 * keys is readable by every user.
 */
struct keyset *
keys_load(const char *path, char *err, size_t errlen)
{
    struct keyset *ks = NULL;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    ssize_t r;
    int fd = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || path[0] == '\0') {
        keys_errf(err, errlen, "keys.json: no file name given");
        goto fail;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
        keys_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) == -1) {
        keys_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        keys_errf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > KEYS_FILE_MAX) {
        keys_errf(err, errlen, "%s: larger than %u bytes", path,
                  KEYS_FILE_MAX);
        goto fail;
    }
    /* One byte more than the size, to notice a file that grew. */
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        keys_errf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    while (len <= (size_t)st.st_size) {
        r = read(fd, buf + len, (size_t)st.st_size + 1 - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            keys_errf(err, errlen, "%s: cannot read: %s", path,
                      strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > (size_t)st.st_size) {
        keys_errf(err, errlen, "%s: changed while being read", path);
        goto fail;
    }
    if ((ks = keys_load_buffer(buf, len, err, errlen)) == NULL)
        goto fail;
    if ((st.st_mode & S_IROTH) && ks->ks_plain)
        log_warnx("%s: %s is readable by every user and holds plain keys; "
                  "chmod o-r it or use \"key_sha256\"", __func__, path);
    explicit_bzero(buf, len);
    free(buf);
    close(fd);
    return ks;
fail:
    if (buf != NULL)
        explicit_bzero(buf, len);
    free(buf);
    if (fd != -1)
        close(fd);
    return NULL;
}

/* Take a reference (see keys.h). NULL-safe; returns ks. */
struct keyset *
keys_retain(struct keyset *ks)
{
    if (ks != NULL)
        __atomic_add_fetch(&ks->ks_refs, 1, __ATOMIC_RELAXED);
    return ks;
}

/* Drop a reference, freeing the keyset at zero. NULL-safe. */
void
keys_release(struct keyset *ks)
{
    if (ks == NULL)
        return;
    if (__atomic_sub_fetch(&ks->ks_refs, 1, __ATOMIC_ACQ_REL) == 0)
        keys_free(ks);
}

/* Number of entries; 0 for NULL. */
size_t
keys_count(const struct keyset *ks)
{
    return ks != NULL ? ks->ks_nkeys : 0;
}

/* The i-th entry, borrowed; NULL when out of range or ks is NULL. */
const struct key *
keys_get(const struct keyset *ks, size_t i)
{
    if (ks == NULL || i >= ks->ks_nkeys)
        return NULL;
    return &ks->ks_keys[i];
}

/* The entry named key_name (exact match), borrowed; NULL if none. */
const struct key *
keys_get_by_name(const struct keyset *ks, const char *key_name)
{
    size_t i;

    if (ks == NULL || key_name == NULL)
        return NULL;
    for (i = 0; i < ks->ks_nkeys; i++)
        if (strcmp(ks->ks_keys[i].k_name, key_name) == 0)
            return &ks->ks_keys[i];
    return NULL;
}

/*
 * Find the entry whose secret is the len bytes at token (borrowed). Every
 * entry is compared, in constant time, whether or not one matched earlier;
 * only then are enabled and valid_to checked. Returns the entry (borrowed,
 * lives as long as ks) or NULL. NULL ks or token give NULL.
 */
const struct key *
keys_lookup(const struct keyset *ks, const char *token, size_t len,
            time_t now)
{
    unsigned char h[KEYS_HASH_LEN];
    const struct key *k;
    size_t i, found = 0;        /* index + 1 of the match, 0 = none */

    if (ks == NULL || token == NULL || len == 0 || len > KEYS_TOKEN_MAX)
        return NULL;
    keys_sha256(token, len, h);
    for (i = 0; i < ks->ks_nkeys; i++) {
        size_t eq = (size_t)keys_equal_ct(h, ks->ks_keys[i].k_hash,
                                          KEYS_HASH_LEN);
        size_t mask = (size_t)0 - eq;   /* all ones on a match */

        found = (found & ~mask) | ((i + 1) & mask);
    }
    explicit_bzero(h, sizeof h);
    if (found == 0)
        return NULL;
    k = &ks->ks_keys[found - 1];
    if (!k->k_enabled)
        return NULL;
    if (k->k_valid_to != 0 && !(now < k->k_valid_to))
        return NULL;
    return k;
}

/* SHA-256 of data (len bytes) into out (KEYS_HASH_LEN bytes). */
void
keys_sha256(const void *data, size_t len, unsigned char *out)
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    explicit_bzero(&ctx, sizeof ctx);   /* holds the last block of data */
}

/* 1 if the n bytes at a and b are equal, else 0; the time taken depends
 * only on n. */
int
keys_equal_ct(const unsigned char *a, const unsigned char *b, size_t n)
{
    volatile unsigned char d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d = (unsigned char)(d | (a[i] ^ b[i]));
    return (int)(1u & (((unsigned)d - 1u) >> 8));
}
