/*
 * patriot_xml.c - render a client as Patriot's XML, and write outbox files
 * atomically (see patriot_xml.h).
 */
#include "patriot_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "model.h"
#include "sbuf.h"
#include "store.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

/*
 * The Row is written by a small emitter into one growing buffer. It makes
 * the bytes libxml2's text writer made with indent "  " (one element per
 * line, text escaped by xmlEncodeSpecialChars: & < > " and CR), which the
 * tests check byte for byte against libxml2's writer; it was 40% of the
 * writer thread's time, mostly the text writer's per-element bookkeeping
 * (docs/BENCHMARKS.md). Text is checked before it is stored
 * (model_text_ok), so every byte written is an XML 1.0 character.
 */
struct xw {
    struct sbuf xw_b;
    int xw_depth;
    int xw_err;
};

static const char xw_spaces[] = "                                ";

/* The bytes text escapes: & < > " and CR. */
static const unsigned char xw_special[256] = {
    ['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\r'] = 1,
};

static void
xw_put(struct xw *w, const char *s, size_t n)
{
    if (sbuf_add(&w->xw_b, s, n) < 0)
        w->xw_err = 1;
}

static void
xw_indent(struct xw *w)
{
    size_t n = (size_t)w->xw_depth * 2;

    if (n > sizeof(xw_spaces) - 1)
        n = sizeof(xw_spaces) - 1;
    xw_put(w, xw_spaces, n);
}

/* "<name>" on its own line; the elements after it nest one deeper. */
static void
xw_open(struct xw *w, const char *name)
{
    xw_indent(w);
    xw_put(w, "<", 1);
    xw_put(w, name, strlen(name));
    xw_put(w, ">\n", 2);
    w->xw_depth++;
}

static void
xw_close(struct xw *w, const char *name)
{
    w->xw_depth--;
    xw_indent(w);
    xw_put(w, "</", 2);
    xw_put(w, name, strlen(name));
    xw_put(w, ">\n", 2);
}

/* "<name>text</name>" on its own line, text escaped: one reservation and
 * no call per piece (most elements are a few bytes). */
static void
xw_elem_n(struct xw *w, const char *name, const char *text, size_t len)
{
    size_t nlen = strlen(name), ind = (size_t)w->xw_depth * 2;
    const char *end = text + len;
    char *p;

    if (ind > sizeof(xw_spaces) - 1)
        ind = sizeof(xw_spaces) - 1;
    /* "&quot;" is the longest escape: 6 bytes for 1. */
    if (len > SIZE_MAX / 8 ||
        sbuf_reserve(&w->xw_b, ind + 2 * nlen + 6 * len + 6) < 0) {
        w->xw_err = 1;
        return;
    }
    p = w->xw_b.sb_buf + w->xw_b.sb_len;
    memcpy(p, xw_spaces, ind);
    p += ind;
    *p++ = '<';
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = '>';
    while (text < end) {
        const char *q = text;

        while (q < end && !xw_special[(unsigned char)*q])
            q++;
        memcpy(p, text, (size_t)(q - text));
        p += q - text;
        if (q == end)
            break;
        switch (*q) {
        case '&': memcpy(p, "&amp;", 5); p += 5; break;
        case '<': memcpy(p, "&lt;", 4); p += 4; break;
        case '>': memcpy(p, "&gt;", 4); p += 4; break;
        case '"': memcpy(p, "&quot;", 6); p += 6; break;
        default: memcpy(p, "&#13;", 5); p += 5; break;     /* CR */
        }
        text = q + 1;
    }
    *p++ = '<';
    *p++ = '/';
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = '>';
    *p++ = '\n';
    *p = '\0';
    w->xw_b.sb_len = (size_t)(p - w->xw_b.sb_buf);
}

static void
elem(struct xw *w, const char *name, const char *text)
{
    xw_elem_n(w, name, text, strlen(text));
}

static void
elem_int(struct xw *w, const char *name, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", v);

    xw_elem_n(w, name, buf, (size_t)n);
}

/*
 * The stored values are canonical JSON (model.h): an object of the table's
 * fields in table order, or an array of such objects. They are streamed
 * into the writer by a small reader over the text, without building a
 * jansson tree: a change re-renders its client's whole Row, and the trees
 * were most of the writer's time (docs/BENCHMARKS.md).
 */
struct jr {
    const char *p, *end;
    char *buf;                  /* unescaped string or number text */
    size_t cap;
    int bad;
};

static void
jr_ws(struct jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
                             *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int
jr_eat(struct jr *r, char c)
{
    jr_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}

static int
jr_put(struct jr *r, size_t *n, const char *s, size_t len)
{
    if (*n + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        char *b;

        while (*n + len + 1 > cap)
            cap *= 2;
        if ((b = realloc(r->buf, cap)) == NULL)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + *n, s, len);
    *n += len;
    r->buf[*n] = '\0';
    return 0;
}

/* A JSON string at r->p: *val points at its UTF-8 text, *len bytes, not
 * NUL-terminated: into the source when it has no escapes (most strings),
 * else into r->buf (valid until the next call). 0 or -1. */
static int
jr_string(struct jr *r, const char **val, size_t *len)
{
    const char *quote;
    size_t n = 0;

    jr_ws(r);
    if (r->p >= r->end || *r->p != '"')
        return -1;
    r->p++;
    quote = memchr(r->p, '"', (size_t)(r->end - r->p));
    if (quote != NULL &&
        memchr(r->p, '\\', (size_t)(quote - r->p)) == NULL) {
        *val = r->p;
        *len = (size_t)(quote - r->p);
        r->p = quote + 1;
        return 0;
    }
    if (jr_put(r, &n, "", 0) < 0)
        return -1;
    while (r->p < r->end && *r->p != '"') {
        const char *q = r->p;
        char u[4];
        unsigned cp, lo;

        while (q < r->end && *q != '"' && *q != '\\')
            q++;
        if (jr_put(r, &n, r->p, (size_t)(q - r->p)) < 0)
            return -1;
        r->p = q;
        if (q >= r->end || *q == '"')
            break;
        if (r->end - q < 2)
            return -1;
        switch (q[1]) {
        case '"': case '\\': case '/':
            u[0] = q[1];
            break;
        case 'b': u[0] = '\b'; break;
        case 'f': u[0] = '\f'; break;
        case 'n': u[0] = '\n'; break;
        case 'r': u[0] = '\r'; break;
        case 't': u[0] = '\t'; break;
        case 'u':
            if (r->end - q < 6 || model_hex4(q + 2, &cp) < 0)
                return -1;
            r->p = q + 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                    model_hex4(r->p + 2, &lo) < 0 || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                r->p += 6;
            }
            if (cp < 0x80) {
                u[0] = (char)cp;
                if (jr_put(r, &n, u, 1) < 0)
                    return -1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3F));
                if (jr_put(r, &n, u, 2) < 0)
                    return -1;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                if (jr_put(r, &n, u, 3) < 0)
                    return -1;
            } else {
                u[0] = (char)(0xF0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                if (jr_put(r, &n, u, 4) < 0)
                    return -1;
            }
            continue;
        default:
            return -1;
        }
        if (jr_put(r, &n, u, 1) < 0)
            return -1;
        r->p = q + 2;
    }
    if (r->p >= r->end)
        return -1;
    r->p++;                             /* closing quote */
    *val = r->buf;
    *len = n;
    return 0;
}

/* A scalar value as its XML text (per field type): *val and *len as
 * jr_string gives them; sets *is_null. 0 or -1. */
static int
jr_scalar(struct jr *r, enum mtype type, const char **val, size_t *len,
          int *is_null)
{
    const char *q;

    *is_null = 0;
    jr_ws(r);
    if (r->p >= r->end)
        return -1;
    if (*r->p == '"')
        return jr_string(r, val, len);
    for (q = r->p; q < r->end && *q != ',' && *q != '}' && *q != ']' &&
                   *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r';
         q++)
        ;
    if (q - r->p == 4 && memcmp(r->p, "null", 4) == 0) {
        *is_null = 1;
        *val = "";
    } else if (q - r->p == 4 && memcmp(r->p, "true", 4) == 0) {
        *val = type == MT_BOOL ? "True" : "1";
    } else if (q - r->p == 5 && memcmp(r->p, "false", 5) == 0) {
        *val = type == MT_BOOL ? "False" : "0";
    } else if (q > r->p && (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
        *val = r->p;
    } else {
        return -1;
    }
    *len = *val == r->p ? (size_t)(q - r->p) : strlen(*val);
    r->p = q;
    return 0;
}

/* The field called name (len bytes) in t, looked for from *hint on: the
 * stored order is the table's, so the next field is almost always the
 * one after the last. */
static const struct mfield *
field_of(const struct mtable *t, const char *name, size_t len, size_t *hint)
{
    size_t i, k;

    for (k = 0; k < t->mt_nfields; k++) {
        const struct mfield *f;

        i = (*hint + k) % t->mt_nfields;
        f = &t->mt_fields[i];
        if (strncmp(f->mf_name, name, len) == 0 && f->mf_name[len] == '\0') {
            *hint = i + 1;
            return f;
        }
    }
    return NULL;
}

/* One object of table t: its set fields as elements, in stored (= table)
 * order. Unknown names are skipped. 0 or -1. */
static int
jr_fields(struct xw *w, struct jr *r, const struct mtable *t)
{
    const char *val;
    size_t hint = 0, len;
    int is_null;

    if (!jr_eat(r, '{'))
        return -1;
    if (jr_eat(r, '}'))
        return 0;
    do {
        const struct mfield *f;

        if (jr_string(r, &val, &len) < 0)
            return -1;
        f = field_of(t, val, len, &hint);
        if (!jr_eat(r, ':') ||
            jr_scalar(r, f ? f->mf_type : MT_STR, &val, &len, &is_null) < 0)
            return -1;
        if (f != NULL && !is_null)
            xw_elem_n(w, f->mf_name, val, len);
    } while (jr_eat(r, ','));
    return jr_eat(r, '}') ? 0 : -1;
}

/* An array of objects of table t, each as <name>...</name>. */
static int
jr_list(struct xw *w, struct jr *r, const char *name,
        const struct mtable *t)
{
    if (!jr_eat(r, '['))
        return -1;
    if (jr_eat(r, ']'))
        return 0;
    do {
        xw_open(w, name);
        if (jr_fields(w, r, t) < 0)
            return -1;
        xw_close(w, name);
    } while (jr_eat(r, ','));
    return jr_eat(r, ']') ? 0 : -1;
}

static void
jr_init(struct jr *r, const char *s, size_t n)
{
    r->p = s;
    r->end = s + n;
}

static int
write_row(struct xw *w, struct jr *r, const struct key *k,
          int64_t client_id, const struct pxml_text *c)
{
    char id[96];
    size_t i;

    snprintf(id, sizeof(id), "%lld%s", (long long)client_id, k->k_port);
    jr_init(r, c->pt_info, c->pt_info_len);
    xw_open(w, "Clients");
    xw_open(w, "Row");
    elem(w, "__id", id);
    if (jr_fields(w, r, &model_info) < 0)
        return -1;
    elem(w, "Installer", k->k_installer_name);
    for (i = 0; i < k->k_nfields; i++)
        elem(w, k->k_fields[i].kf_name, k->k_fields[i].kf_value);
    if (k->k_ngroupings > 0) {
        xw_open(w, "ClientGroupings");
        for (i = 0; i < k->k_ngroupings; i++) {
            const struct key_grouping *g = &k->k_groupings[i];

            xw_open(w, "ClientGrouping");
            elem(w, "Description", g->kg_description);
            elem(w, "GroupingTypeDescription", g->kg_type_description);
            elem(w, "GroupingAllowMultiple", g->kg_allow_multiple);
            xw_close(w, "ClientGrouping");
        }
        xw_close(w, "ClientGroupings");
    }
    jr_init(r, c->pt_zones, c->pt_zones_len);
    if (jr_list(w, r, "Zone", &model_zone) < 0)
        return -1;
    jr_init(r, c->pt_users, c->pt_users_len);
    if (jr_list(w, r, "User", &model_user) < 0)
        return -1;
    /* The installer, UserNo 199: from keys.json, never from the API. */
    xw_open(w, "User");
    elem(w, "User_Name", k->k_installer_name);
    elem(w, "Email", k->k_installer_email);
    elem_int(w, "UserNo", MODEL_INSTALLER_USER_NO);
    elem(w, "CallOrder", "0");
    elem(w, "Type", "N");
    xw_close(w, "User");
    xw_close(w, "Row");
    xw_close(w, "Clients");
    return w->xw_err ? -1 : 0;
}

int
pxml_render_text(const struct key *k, int64_t client_id,
                 const struct pxml_text *c, char **out, size_t *outlen)
{
    struct xw w = {{0}, 0, 0};
    struct jr r = {0};
    size_t hint = c->pt_info_len + c->pt_zones_len + c->pt_users_len;

    *out = NULL;
    /* The XML is about twice the JSON: one allocation in most cases. */
    if (sbuf_reserve(&w.xw_b, 2 * hint + 1024) < 0)
        return -1;
    xw_put(&w, XML_DECL, sizeof(XML_DECL) - 1);
    if (write_row(&w, &r, k, client_id, c) < 0) {
        free(r.buf);
        sbuf_free(&w.xw_b);
        return -1;
    }
    free(r.buf);
    *out = w.xw_b.sb_buf;
    *outlen = w.xw_b.sb_len;
    return 0;
}

static int
dump_cb(const char *b, size_t size, void *data)
{
    return sbuf_add(data, b, size);
}

int
pxml_render_client(const struct key *k, int64_t client_id, json_t *info,
                   json_t *zones, json_t *users, char **out, size_t *outlen)
{
    struct sbuf bi = {0}, bz = {0}, bu = {0};
    struct pxml_text c;
    int rc = -1;

    *out = NULL;
    if (json_dump_callback(info, dump_cb, &bi, JSON_COMPACT) < 0 ||
        json_dump_callback(zones, dump_cb, &bz, JSON_COMPACT) < 0 ||
        json_dump_callback(users, dump_cb, &bu, JSON_COMPACT) < 0)
        goto done;
    c.pt_info = bi.sb_buf ? bi.sb_buf : "{}";
    c.pt_info_len = bi.sb_len;
    c.pt_zones = bz.sb_buf ? bz.sb_buf : "[]";
    c.pt_zones_len = bz.sb_len;
    c.pt_users = bu.sb_buf ? bu.sb_buf : "[]";
    c.pt_users_len = bu.sb_len;
    rc = pxml_render_text(k, client_id, &c, out, outlen);
done:
    sbuf_free(&bi);
    sbuf_free(&bz);
    sbuf_free(&bu);
    return rc;
}

char *
pxml_outbox_path(const char *xml_dir, const char *key_name,
                 int64_t client_id)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s/%lld.xml", xml_dir, key_name,
                 (long long)client_id) < 0)
        return NULL;
    return p;
}

/* mkdir -p of the directory part of path. */
static int
make_parent(const char *path)
{
    char *dir = strdup(path), *p;
    int rc = 0;

    if (dir == NULL)
        return -1;
    for (p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0770) < 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    free(dir);
    return rc;
}

int
pxml_write_file(const char *path, const char *buf, size_t len, int sync)
{
    char tmp[4096];
    size_t off = 0;
    int fd, saved;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%ld", path, (long)getpid(),
                 (long)syscall(SYS_gettid)) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT) {
        if (make_parent(path) < 0)
            return -1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    }
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)n;
    }
    if (sync && fdatasync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    /*
     * Swap the new file in, then remove the old one under the temporary
     * name. A reader sees the old file or the new one, never neither, as
     * with rename(). It is about half the cost of a rename() over an
     * existing name on ext4, which writes the new file out before
     * replacing (auto_da_alloc; docs/BENCHMARKS.md). Not every file system
     * can exchange (EINVAL), and the first file has nothing to swap with
     * (ENOENT): rename() then. A directory at path is swapped back and
     * refused, as rename() refuses it.
     */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
        if (unlink(tmp) == 0 || errno == ENOENT)
            return 0;
        saved = errno;
        if (saved == EISDIR &&
            renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
            unlink(tmp);
            errno = EISDIR;
            return -1;
        }
        log_warn("cannot remove %s", tmp);
        return 0;
    }
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

int
pxml_file_equals(const char *path, const char *buf, size_t len)
{
    char chunk[8192];
    size_t off = 0;
    struct stat sb;
    int fd, rc = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &sb) < 0)
        goto done;
    rc = 0;
    if ((size_t)sb.st_size != len)
        goto done;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            goto done;
        }
        if (n == 0)
            break;
        if (off + (size_t)n > len || memcmp(chunk, buf + off, (size_t)n) != 0)
            goto done;
        off += (size_t)n;
    }
    rc = off == len;
done:
    close(fd);
    return rc;
}
