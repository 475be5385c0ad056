/*
 * patriot_xml.c - render a client as Patriot's XML with libxml2's text
 * writer, and write outbox files atomically (see patriot_xml.h).
 */
#include "patriot_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model.h"
#include "store.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

static const xmlChar *
X(const char *s)
{
    return (const xmlChar *)s;
}

static int
elem(xmlTextWriterPtr w, const char *name, const char *text)
{
    return xmlTextWriterWriteElement(w, X(name), X(text)) < 0 ? -1 : 0;
}

static int
elem_int(xmlTextWriterPtr w, const char *name, long long v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", v);
    return elem(w, name, buf);
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

/* A JSON string at r->p into r->buf (UTF-8, NUL-terminated). 0 or -1. */
static int
jr_string(struct jr *r)
{
    size_t n = 0;

    jr_ws(r);
    if (r->p >= r->end || *r->p != '"')
        return -1;
    r->p++;
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
    return 0;
}

/* A scalar value into r->buf as its XML text (per field type); sets
 * *is_null. 0 or -1. */
static int
jr_scalar(struct jr *r, enum mtype type, int *is_null)
{
    const char *q;
    size_t n = 0;

    *is_null = 0;
    jr_ws(r);
    if (r->p >= r->end)
        return -1;
    if (*r->p == '"')
        return jr_string(r);
    for (q = r->p; q < r->end && *q != ',' && *q != '}' && *q != ']' &&
                   *q != ' ';
         q++)
        ;
    if (q - r->p == 4 && memcmp(r->p, "null", 4) == 0) {
        *is_null = 1;
    } else if (q - r->p == 4 && memcmp(r->p, "true", 4) == 0) {
        if (jr_put(r, &n, type == MT_BOOL ? "True" : "1",
                   type == MT_BOOL ? 4 : 1) < 0)
            return -1;
    } else if (q - r->p == 5 && memcmp(r->p, "false", 5) == 0) {
        if (jr_put(r, &n, type == MT_BOOL ? "False" : "0",
                   type == MT_BOOL ? 5 : 1) < 0)
            return -1;
    } else if (q > r->p && (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
        if (jr_put(r, &n, r->p, (size_t)(q - r->p)) < 0)
            return -1;
    } else {
        return -1;
    }
    r->p = q;
    return 0;
}

static const struct mfield *
field_of(const struct mtable *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->mt_nfields; i++)
        if (strcmp(t->mt_fields[i].mf_name, name) == 0)
            return &t->mt_fields[i];
    return NULL;
}

/* One object of table t: its set fields as elements, in stored (= table)
 * order. Unknown names are skipped. 0 or -1. */
static int
jr_fields(xmlTextWriterPtr w, struct jr *r, const struct mtable *t)
{
    char name[64];
    int is_null;

    if (!jr_eat(r, '{'))
        return -1;
    if (jr_eat(r, '}'))
        return 0;
    do {
        const struct mfield *f;

        if (jr_string(r) < 0 || strlen(r->buf) >= sizeof(name))
            return -1;
        memcpy(name, r->buf, strlen(r->buf) + 1);
        if (!jr_eat(r, ':'))
            return -1;
        f = field_of(t, name);
        if (jr_scalar(r, f ? f->mf_type : MT_STR, &is_null) < 0)
            return -1;
        if (f != NULL && !is_null && elem(w, f->mf_name, r->buf) < 0)
            return -1;
    } while (jr_eat(r, ','));
    return jr_eat(r, '}') ? 0 : -1;
}

/* An array of objects of table t, each as <name>...</name>. */
static int
jr_list(xmlTextWriterPtr w, struct jr *r, const char *name,
        const struct mtable *t)
{
    if (!jr_eat(r, '['))
        return -1;
    if (jr_eat(r, ']'))
        return 0;
    do {
        if (xmlTextWriterStartElement(w, X(name)) < 0 ||
            jr_fields(w, r, t) < 0 || xmlTextWriterEndElement(w) < 0)
            return -1;
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
write_row(xmlTextWriterPtr w, struct jr *r, const struct key *k,
          int64_t client_id, const struct pxml_text *c)
{
    char id[96];
    size_t i;

    snprintf(id, sizeof(id), "%lld%s", (long long)client_id, k->k_port);
    jr_init(r, c->pt_info, c->pt_info_len);
    if (xmlTextWriterStartElement(w, X("Clients")) < 0 ||
        xmlTextWriterStartElement(w, X("Row")) < 0 ||
        elem(w, "__id", id) < 0 || jr_fields(w, r, &model_info) < 0 ||
        elem(w, "Installer", k->k_installer_name) < 0)
        return -1;
    for (i = 0; i < k->k_nfields; i++)
        if (elem(w, k->k_fields[i].kf_name, k->k_fields[i].kf_value) < 0)
            return -1;
    if (k->k_ngroupings > 0) {
        if (xmlTextWriterStartElement(w, X("ClientGroupings")) < 0)
            return -1;
        for (i = 0; i < k->k_ngroupings; i++) {
            const struct key_grouping *g = &k->k_groupings[i];

            if (xmlTextWriterStartElement(w, X("ClientGrouping")) < 0 ||
                elem(w, "Description", g->kg_description) < 0 ||
                elem(w, "GroupingTypeDescription",
                     g->kg_type_description) < 0 ||
                elem(w, "GroupingAllowMultiple", g->kg_allow_multiple) < 0 ||
                xmlTextWriterEndElement(w) < 0)
                return -1;
        }
        if (xmlTextWriterEndElement(w) < 0)
            return -1;
    }
    jr_init(r, c->pt_zones, c->pt_zones_len);
    if (jr_list(w, r, "Zone", &model_zone) < 0)
        return -1;
    jr_init(r, c->pt_users, c->pt_users_len);
    if (jr_list(w, r, "User", &model_user) < 0)
        return -1;
    /* The installer, UserNo 199: from keys.json, never from the API. */
    if (xmlTextWriterStartElement(w, X("User")) < 0 ||
        elem(w, "User_Name", k->k_installer_name) < 0 ||
        elem(w, "Email", k->k_installer_email) < 0 ||
        elem_int(w, "UserNo", MODEL_INSTALLER_USER_NO) < 0 ||
        elem(w, "CallOrder", "0") < 0 || elem(w, "Type", "N") < 0 ||
        xmlTextWriterEndElement(w) < 0)
        return -1;
    if (xmlTextWriterEndElement(w) < 0 || xmlTextWriterEndElement(w) < 0)
        return -1;
    return 0;
}

int
pxml_render_text(const struct key *k, int64_t client_id,
                 const struct pxml_text *c, char **out, size_t *outlen)
{
    xmlBufferPtr buf = NULL;
    xmlTextWriterPtr w = NULL;
    struct jr r = {0};
    size_t n;
    int rc = -1;

    *out = NULL;
    if ((buf = xmlBufferCreateSize(4096)) == NULL)
        goto fail;
    if ((w = xmlNewTextWriterMemory(buf, 0)) == NULL)
        goto fail;
    if (xmlTextWriterSetIndent(w, 1) < 0 ||
        xmlTextWriterSetIndentString(w, X("  ")) < 0 ||
        xmlTextWriterWriteRaw(w, X(XML_DECL)) < 0 ||
        write_row(w, &r, k, client_id, c) < 0 || xmlTextWriterFlush(w) < 0)
        goto fail;
    n = (size_t)xmlBufferLength(buf);
    if ((*out = malloc(n + 1)) == NULL)
        goto fail;
    memcpy(*out, xmlBufferContent(buf), n);
    (*out)[n] = '\0';
    *outlen = n;
    rc = 0;
fail:
    free(r.buf);
    xmlFreeTextWriter(w);
    xmlBufferFree(buf);
    return rc;
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
