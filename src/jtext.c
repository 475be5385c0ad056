/*
 * jtext.c - change a stored JSON text without a tree (see jtext.h). A list
 * change is one pass to find the element and its neighbours and one
 * memmove in the buffer; a merge reads both objects' members as byte
 * ranges and writes them out in table order.
 */
#include "jtext.h"

#include <stdlib.h>
#include <string.h>

struct scan {
    const char *s;
    size_t n, i;
};

/* Where the element numbered no is, or would go. */
struct where {
    int found, decided;
    size_t count;
    size_t at, end;         /* the element (found), or where it goes */
    size_t prev_end;        /* end of the element before it, if any */
    size_t next_start;      /* start of the element after it, if any */
    int has_prev, has_next;
    size_t last_end;        /* end of the last element */
    size_t close;           /* the ']' */
};

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
ws(struct scan *c)
{
    while (c->i < c->n && is_ws(c->s[c->i]))
        c->i++;
}

static int
at(struct scan *c, char ch)
{
    return c->i < c->n && c->s[c->i] == ch;
}

/* At '"': past the closing quote. 0 or -1. */
static int
skip_string(struct scan *c)
{
    c->i++;
    while (c->i < c->n) {
        char ch = c->s[c->i++];

        if (ch == '"')
            return 0;
        if (ch == '\\') {
            if (c->i >= c->n)
                return -1;
            c->i++;
        }
    }
    return -1;
}

/* Past one value (any JSON value). 0 or -1. */
static int
skip_value(struct scan *c)
{
    size_t start;

    ws(c);
    if (c->i >= c->n)
        return -1;
    if (at(c, '"'))
        return skip_string(c);
    if (at(c, '{') || at(c, '[')) {
        int depth = 0;

        while (c->i < c->n) {
            char ch = c->s[c->i];

            if (ch == '"') {
                if (skip_string(c) < 0)
                    return -1;
                continue;
            }
            c->i++;
            if (ch == '{' || ch == '[')
                depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0)
                return 0;
        }
        return -1;
    }
    for (start = c->i; c->i < c->n; c->i++) {
        char ch = c->s[c->i];

        if (ch == ',' || ch == '}' || ch == ']' || is_ws(ch))
            break;
    }
    return c->i > start ? 0 : -1;
}

/* An integer token as jansson reads one; anything else (a real, a string,
 * too large) counts as 0, as json_integer_value() of it would. */
static int64_t
token_int(const char *s, size_t n)
{
    uint64_t v = 0, lim = (uint64_t)INT64_MAX;
    size_t i = 0;
    int neg = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        lim++;
        i++;
    }
    if (i == n)
        return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (v > (lim - (uint64_t)(s[i] - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

/* One object at c->i; its member field (integer) in *num, else 0. */
static int
scan_elem(struct scan *c, const char *field, size_t flen, int64_t *num)
{
    *num = 0;
    if (!at(c, '{'))
        return -1;
    c->i++;
    ws(c);
    if (at(c, '}')) {
        c->i++;
        return 0;
    }
    for (;;) {
        size_t ks, ke, vs;

        ws(c);
        if (!at(c, '"'))
            return -1;
        ks = c->i + 1;
        if (skip_string(c) < 0)
            return -1;
        ke = c->i - 1;
        ws(c);
        if (!at(c, ':'))
            return -1;
        c->i++;
        ws(c);
        vs = c->i;
        if (skip_value(c) < 0)
            return -1;
        if (ke - ks == flen && memcmp(c->s + ks, field, flen) == 0)
            *num = token_int(c->s + vs, c->i - vs);
        ws(c);
        if (at(c, ',')) {
            c->i++;
            continue;
        }
        if (at(c, '}')) {
            c->i++;
            return 0;
        }
        return -1;
    }
}

static int
locate(const struct sbuf *arr, const char *field, int64_t no,
       struct where *w)
{
    struct scan c = {arr->sb_buf, arr->sb_len, 0};
    size_t flen = strlen(field);

    memset(w, 0, sizeof(*w));
    if (c.s == NULL)
        return -1;
    ws(&c);
    if (!at(&c, '['))
        return -1;
    c.i++;
    ws(&c);
    if (!at(&c, ']')) {
        for (;;) {
            size_t es = c.i;
            int64_t num;

            if (scan_elem(&c, field, flen, &num) < 0)
                return -1;
            if (!w->decided && num >= no) {
                w->decided = 1;
                w->found = num == no;
                w->at = es;
                w->end = c.i;
                w->has_prev = w->count > 0;
                w->prev_end = w->last_end;
            } else if (w->decided && !w->has_next) {
                w->has_next = 1;
                w->next_start = es;
            }
            w->count++;
            w->last_end = c.i;
            ws(&c);
            if (at(&c, ',')) {
                c.i++;
                ws(&c);
                continue;
            }
            if (at(&c, ']'))
                break;
            return -1;
        }
    }
    w->close = c.i;
    c.i++;
    ws(&c);
    return c.i == c.n ? 0 : -1;
}

/* Replace [from, to) of b by a (alen bytes) then z (zlen bytes). */
static enum jtext_rc
splice(struct sbuf *b, size_t from, size_t to, const char *a, size_t alen,
       const char *z, size_t zlen)
{
    size_t add = alen + zlen, cut = to - from, tail = b->sb_len - to;

    if (add > cut && sbuf_reserve(b, add - cut) < 0)
        return JTEXT_NOMEM;
    memmove(b->sb_buf + from + add, b->sb_buf + to, tail);
    memcpy(b->sb_buf + from, a, alen);
    memcpy(b->sb_buf + from + alen, z, zlen);
    b->sb_len = b->sb_len - cut + add;
    b->sb_buf[b->sb_len] = '\0';
    return JTEXT_OK;
}

enum jtext_rc
jtext_list_put(struct sbuf *arr, const char *field, int64_t no, const char *elem,
          size_t elen, enum jtext_mode mode)
{
    struct where w;

    if (locate(arr, field, no, &w) < 0)
        return JTEXT_BAD;
    if (w.found && mode == JTEXT_INSERT)
        return JTEXT_EXISTS;
    if (!w.found && mode == JTEXT_REPLACE)
        return JTEXT_NOITEM;
    if (w.found)
        return splice(arr, w.at, w.end, elem, elen, "", 0);
    if (w.decided)                      /* before a greater number */
        return splice(arr, w.at, w.at, elem, elen, ",", 1);
    if (w.count == 0)
        return splice(arr, w.close, w.close, elem, elen, "", 0);
    return splice(arr, w.last_end, w.last_end, ",", 1, elem, elen);
}

enum jtext_rc
jtext_list_del(struct sbuf *arr, const char *field, int64_t no)
{
    struct where w;

    if (locate(arr, field, no, &w) < 0)
        return JTEXT_BAD;
    if (!w.found)
        return JTEXT_NOITEM;
    if (w.has_next)
        return splice(arr, w.at, w.next_start, "", 0, "", 0);
    if (w.has_prev)
        return splice(arr, w.prev_end, w.end, "", 0, "", 0);
    return splice(arr, w.at, w.end, "", 0, "", 0);
}

/* A member of an object: its name and its value's text, as byte ranges. */
struct member {
    const char *m_name, *m_val;
    size_t m_nlen, m_vlen;
};

#define MEMBERS_MAX 128

/* The members of the object text s (n bytes), at most max. Count or -1. */
static int
members(const char *s, size_t n, struct member *m, int max)
{
    struct scan c = {s, n, 0};
    int k = 0;

    if (s == NULL)
        return -1;
    ws(&c);
    if (!at(&c, '{'))
        return -1;
    c.i++;
    ws(&c);
    if (at(&c, '}')) {
        c.i++;
    } else {
        for (;;) {
            size_t ks, vs;

            if (k == max || !at(&c, '"'))
                return -1;
            ks = c.i + 1;
            if (skip_string(&c) < 0)
                return -1;
            m[k].m_name = s + ks;
            m[k].m_nlen = c.i - 1 - ks;
            ws(&c);
            if (!at(&c, ':'))
                return -1;
            c.i++;
            ws(&c);
            vs = c.i;
            if (skip_value(&c) < 0)
                return -1;
            m[k].m_val = s + vs;
            m[k].m_vlen = c.i - vs;
            k++;
            ws(&c);
            if (at(&c, ',')) {
                c.i++;
                ws(&c);
                continue;
            }
            if (!at(&c, '}'))
                return -1;
            c.i++;
            break;
        }
    }
    ws(&c);
    return c.i == c.n ? k : -1;
}

static const struct member *
member(const struct member *m, int n, const char *name, size_t nlen)
{
    int i;

    for (i = 0; i < n; i++)
        if (m[i].m_nlen == nlen && memcmp(m[i].m_name, name, nlen) == 0)
            return &m[i];
    return NULL;
}

enum jtext_rc
jtext_merge(const struct mtable *t, struct sbuf *obj, const char *patch,
            size_t plen)
{
    struct member *bm = NULL, *pm;
    struct sbuf out = {0};
    int nb, np, first = 1;
    enum jtext_rc rc = JTEXT_NOMEM;
    size_t i;

    if ((bm = malloc(2 * MEMBERS_MAX * sizeof(*bm))) == NULL)
        return JTEXT_NOMEM;
    pm = bm + MEMBERS_MAX;
    if ((nb = members(obj->sb_buf, obj->sb_len, bm, MEMBERS_MAX)) < 0 ||
        (np = members(patch, plen, pm, MEMBERS_MAX)) < 0) {
        rc = JTEXT_BAD;
        goto done;
    }
    if (sbuf_reserve(&out, obj->sb_len + plen + 2) < 0 ||
        sbuf_add(&out, "{", 1) < 0)
        goto done;
    for (i = 0; i < t->mt_nfields; i++) {
        const char *name = t->mt_fields[i].mf_name;
        size_t nlen = strlen(name);
        const struct member *m = member(pm, np, name, nlen);

        if (m == NULL)
            m = member(bm, nb, name, nlen);
        if (m == NULL || (m->m_vlen == 4 && memcmp(m->m_val, "null", 4) == 0))
            continue;
        if ((!first && sbuf_add(&out, ",", 1) < 0) ||
            sbuf_add(&out, "\"", 1) < 0 || sbuf_add(&out, name, nlen) < 0 ||
            sbuf_add(&out, "\":", 2) < 0 ||
            sbuf_add(&out, m->m_val, m->m_vlen) < 0)
            goto done;
        first = 0;
    }
    if (sbuf_add(&out, "}", 1) < 0)
        goto done;
    sbuf_free(obj);
    *obj = out;
    out.sb_buf = NULL;
    rc = JTEXT_OK;
done:
    sbuf_free(&out);
    free(bm);
    return rc;
}
