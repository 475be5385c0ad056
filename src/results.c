/*
 * results.c - the results file Patriot writes after an import: decoding
 * (UTF-8, UTF-16) and the ids of its success lines (see results.h). Moved
 * out of combine.c as it was.
 */
#include "results.h"

#include <stdlib.h>
#include <string.h>

#include "rowcheck.h"   /* rowcheck_id_char: what an id is made of */

/* ---- a set of strings (open addressing, FNV-1a) ---------------------- */

uint64_t
results_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

void
results_set_free(struct results_set *t)
{
    free(t->ss_key);
    free(t->ss_val);
    memset(t, 0, sizeof(*t));
}

static int
results_set_grow(struct results_set *t)
{
    struct results_set n = {0};
    size_t i, j;

    n.ss_cap = t->ss_cap ? t->ss_cap * 2 : 64;
    if ((n.ss_key = calloc(n.ss_cap, sizeof(*n.ss_key))) == NULL ||
        (n.ss_val = calloc(n.ss_cap, sizeof(*n.ss_val))) == NULL) {
        results_set_free(&n);
        return -1;
    }
    for (i = 0; i < t->ss_cap; i++) {
        if (t->ss_key[i] == NULL)
            continue;
        j = results_hash(t->ss_key[i]) & (n.ss_cap - 1);
        while (n.ss_key[j] != NULL)
            j = (j + 1) & (n.ss_cap - 1);
        n.ss_key[j] = t->ss_key[i];
        n.ss_val[j] = t->ss_val[i];
    }
    n.ss_n = t->ss_n;
    results_set_free(t);
    *t = n;
    return 0;
}

/* Set key -> val (replacing). 0 or -1. */
static int
results_set_put(struct results_set *t, const char *key, size_t val)
{
    size_t j;

    if ((t->ss_n + 1) * 2 > t->ss_cap && results_set_grow(t) < 0)
        return -1;
    j = results_hash(key) & (t->ss_cap - 1);
    while (t->ss_key[j] != NULL && strcmp(t->ss_key[j], key) != 0)
        j = (j + 1) & (t->ss_cap - 1);
    if (t->ss_key[j] == NULL) {
        t->ss_key[j] = key;
        t->ss_n++;
    }
    t->ss_val[j] = val;
    return 0;
}

int
results_set_get(const struct results_set *t, const char *key, size_t *val)
{
    size_t j;

    if (t->ss_cap == 0)
        return 0;
    j = results_hash(key) & (t->ss_cap - 1);
    while (t->ss_key[j] != NULL) {
        if (strcmp(t->ss_key[j], key) == 0) {
            if (val != NULL)
                *val = t->ss_val[j];
            return 1;
        }
        j = (j + 1) & (t->ss_cap - 1);
    }
    return 0;
}

/* ---- results file --------------------------------------------------- */

static int
put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *
combine_results_decode(const char *buf, size_t len, size_t *outlen)
{
    const unsigned char *u = (const unsigned char *)buf;
    char *out;
    size_t i, o = 0;
    int be = -1;

    if (len >= 2 && u[0] == 0xFF && u[1] == 0xFE)
        be = 0;
    else if (len >= 2 && u[0] == 0xFE && u[1] == 0xFF)
        be = 1;
    else if (len >= 4 && len % 2 == 0 && u[0] != 0 && u[1] == 0 &&
             u[3] == 0)
        be = 2;     /* UTF-16LE without BOM */
    if (be < 0) {
        if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
            buf += 3;
            len -= 3;
        }
        if ((out = malloc(len + 1)) == NULL)
            return NULL;
        memcpy(out, buf, len);
        out[len] = '\0';
        *outlen = len;
        return out;
    }
    /* each UTF-16 unit gives at most 3 bytes; a pair 4 for 2 units */
    if ((out = malloc(len / 2 * 3 + 1)) == NULL)
        return NULL;
    for (i = be == 2 ? 0 : 2; i + 1 < len; i += 2) {
        unsigned cu = be == 1 ? (unsigned)(u[i] << 8 | u[i + 1])
                              : (unsigned)(u[i + 1] << 8 | u[i]);

        if (cu >= 0xD800 && cu <= 0xDBFF && i + 3 < len) {
            unsigned lo = be == 1 ? (unsigned)(u[i + 2] << 8 | u[i + 3])
                                  : (unsigned)(u[i + 3] << 8 | u[i + 2]);

            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cu = 0x10000 + ((cu - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            } else {
                cu = 0xFFFD;
            }
        } else if (cu >= 0xD800 && cu <= 0xDFFF) {
            cu = 0xFFFD;
        }
        o += (size_t)put_utf8(out + o, cu);
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

int
results_index(char *text, size_t len, struct results_set *ok)
{
    char *line = text, *end = text + len, *nl, *p, *q;
    size_t plen = strlen(RESULTS_PHRASE);

    while (line < end) {
        nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            nl = end;
        if (memmem(line, (size_t)(nl - line), RESULTS_PHRASE, plen) != NULL) {
            for (p = line; p < nl;) {
                if (!rowcheck_id_char((unsigned char)*p)) {
                    p++;
                    continue;
                }
                for (q = p; q < nl && rowcheck_id_char((unsigned char)*q); q++)
                    ;
                *q = '\0';     /* text[len] is NUL: q == end is fine */
                if (results_set_put(ok, p, 1) < 0)
                    return -1;
                p = q + 1;
            }
        }
        line = nl + 1;
    }
    return 0;
}

int
combine_results_ok(const char *text, size_t len, const char *id)
{
    struct results_set ok = {0};
    char *copy;
    int rc;

    if ((copy = malloc(len + 1)) == NULL)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (results_index(copy, len, &ok) < 0)
        rc = -1;
    else
        rc = results_set_get(&ok, id, NULL);
    results_set_free(&ok);
    free(copy);
    return rc;
}
