/*
 * combine.c - one batch of patriot-combine (see combine.h for the steps).
 *
 * Memory: Rows are never held in memory (--from-dir: one file per read
 * buffer, 256 buffers at most); a run keeps ~300 bytes per picked client
 * (relative path, __id, offsets, the id index) plus, when a previous batch
 * is folded in, that batch's file. The combined file is written through a
 * 64 KiB stdio buffer to a temporary name and renamed.
 */
#include "combine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "model.h"
#include "patriot_xml.h"
#include "smb.h"
#include "store.h"

#define ID_MAX 96
#define PHRASE "Completed processing client"
#define INFLIGHT ".inflight"

/* ---- small helpers -------------------------------------------------- */

static char *
path_join(const char *a, const char *b)
{
    char *p;

    if (asprintf(&p, "%s/%s", a, b) < 0)
        return NULL;
    return p;
}

/* mkdir -p of the parent of path. 0 or -1. */
static int
mkparent(const char *path)
{
    char buf[4096];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((p = strrchr(buf, '/')) == NULL)
        return 0;
    *p = '\0';
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0770) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (buf[0] != '\0' && mkdir(buf, 0770) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Read a whole file into a malloc'ed buffer (NUL-terminated). 0, 1 if
 * missing, -1 on error (errno). */
static int
read_file(const char *path, char **out, size_t *len)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    int fd, saved;

    *out = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 1 : -1;
    if (fstat(fd, &sb) < 0)
        goto fail;
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
        goto fail;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    *out = buf;
    *len = got;
    return 0;
fail:
    saved = errno;
    close(fd);
    free(buf);
    errno = saved;
    return -1;
}

static int
id_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* ---- a set of strings (open addressing, FNV-1a) ---------------------- */

struct strset {
    const char **ss_key;        /* borrowed */
    size_t *ss_val;
    size_t ss_cap, ss_n;
};

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static void
strset_free(struct strset *t)
{
    free(t->ss_key);
    free(t->ss_val);
    memset(t, 0, sizeof(*t));
}

static int
strset_grow(struct strset *t)
{
    struct strset n = {0};
    size_t i, j;

    n.ss_cap = t->ss_cap ? t->ss_cap * 2 : 64;
    if ((n.ss_key = calloc(n.ss_cap, sizeof(*n.ss_key))) == NULL ||
        (n.ss_val = calloc(n.ss_cap, sizeof(*n.ss_val))) == NULL) {
        strset_free(&n);
        return -1;
    }
    for (i = 0; i < t->ss_cap; i++) {
        if (t->ss_key[i] == NULL)
            continue;
        j = hash_str(t->ss_key[i]) & (n.ss_cap - 1);
        while (n.ss_key[j] != NULL)
            j = (j + 1) & (n.ss_cap - 1);
        n.ss_key[j] = t->ss_key[i];
        n.ss_val[j] = t->ss_val[i];
    }
    n.ss_n = t->ss_n;
    strset_free(t);
    *t = n;
    return 0;
}

/* Set key -> val (replacing). 0 or -1. */
static int
strset_put(struct strset *t, const char *key, size_t val)
{
    size_t j;

    if ((t->ss_n + 1) * 2 > t->ss_cap && strset_grow(t) < 0)
        return -1;
    j = hash_str(key) & (t->ss_cap - 1);
    while (t->ss_key[j] != NULL && strcmp(t->ss_key[j], key) != 0)
        j = (j + 1) & (t->ss_cap - 1);
    if (t->ss_key[j] == NULL) {
        t->ss_key[j] = key;
        t->ss_n++;
    }
    t->ss_val[j] = val;
    return 0;
}

/* 1 and *val if present, else 0. */
static int
strset_get(const struct strset *t, const char *key, size_t *val)
{
    size_t j;

    if (t->ss_cap == 0)
        return 0;
    j = hash_str(key) & (t->ss_cap - 1);
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

/* ---- checking documents (SAX, no tree) ------------------------------ */

struct sax_state {
    int sx_bad;
    int sx_depth;               /* 0 outside root */
    int sx_in_id;               /* inside Row/__id */
    int sx_row_has_id;
    size_t sx_idlen;
    char sx_id[ID_MAX];
    char **sx_ids;              /* the id of each Row, in order */
    size_t sx_n, sx_cap;
};

static int
is_name(const xmlChar *a, const char *b)
{
    return strcmp((const char *)a, b) == 0;
}

static void
sx_bad(void *ctx)
{
    ((struct sax_state *)ctx)->sx_bad = 1;
}

static void
sx_bad2(void *ctx, const xmlChar *a, const xmlChar *b)
{
    (void)a;
    (void)b;
    sx_bad(ctx);
}

static void
sx_bad_subset(void *ctx, const xmlChar *a, const xmlChar *b,
              const xmlChar *c)
{
    (void)a;
    (void)b;
    (void)c;
    sx_bad(ctx);
}

static void
sx_bad1(void *ctx, const xmlChar *a)
{
    (void)a;
    sx_bad(ctx);
}

static void
sx_bad_len(void *ctx, const xmlChar *a, int n)
{
    (void)a;
    (void)n;
    sx_bad(ctx);
}

static void
sx_start(void *ctx, const xmlChar *local, const xmlChar *prefix,
         const xmlChar *uri, int nns, const xmlChar **ns, int nattr,
         int ndef, const xmlChar **attr)
{
    struct sax_state *st = ctx;

    (void)ns;
    (void)ndef;
    (void)attr;
    if (prefix != NULL || uri != NULL || nns != 0 || nattr != 0) {
        st->sx_bad = 1;
        return;
    }
    st->sx_depth++;
    if (st->sx_depth == 1) {
        if (!is_name(local, "Clients"))
            st->sx_bad = 1;
    } else if (st->sx_depth == 2) {
        if (!is_name(local, "Row"))
            st->sx_bad = 1;
        st->sx_row_has_id = 0;
    } else {
        if (is_name(local, "Row"))
            st->sx_bad = 1;     /* Row only at depth 1: byte copy exact */
        if (st->sx_depth == 3 && is_name(local, "__id")) {
            if (st->sx_row_has_id)
                st->sx_bad = 1;
            st->sx_in_id = 1;
            st->sx_idlen = 0;
        }
    }
}

static void
sx_end(void *ctx, const xmlChar *local, const xmlChar *prefix,
       const xmlChar *uri)
{
    struct sax_state *st = ctx;

    (void)prefix;
    (void)uri;
    if (st->sx_depth == 3 && st->sx_in_id) {
        st->sx_in_id = 0;
        st->sx_row_has_id = 1;
        if (st->sx_idlen == 0) {
            st->sx_bad = 1;
        } else if (!st->sx_bad) {
            char **ids = st->sx_ids;

            st->sx_id[st->sx_idlen] = '\0';
            if (st->sx_n == st->sx_cap) {
                size_t cap = st->sx_cap ? st->sx_cap * 2 : 16;

                if ((ids = realloc(st->sx_ids, cap * sizeof(*ids))) ==
                    NULL) {
                    st->sx_bad = 1;
                    goto out;
                }
                st->sx_ids = ids;
                st->sx_cap = cap;
            }
            if ((ids[st->sx_n] = strdup(st->sx_id)) == NULL)
                st->sx_bad = 1;
            else
                st->sx_n++;
        }
    } else if (st->sx_depth == 2 && is_name(local, "Row")) {
        if (!st->sx_row_has_id)
            st->sx_bad = 1;
    }
out:
    st->sx_depth--;
}

static void
sx_chars(void *ctx, const xmlChar *ch, int len)
{
    struct sax_state *st = ctx;
    int i;

    if (!st->sx_in_id)
        return;
    for (i = 0; i < len; i++) {
        if (!id_char(ch[i]) || st->sx_idlen + 1 >= sizeof(st->sx_id)) {
            st->sx_bad = 1;
            return;
        }
        st->sx_id[st->sx_idlen++] = (char)ch[i];
    }
}

static void
sx_silent(void *ctx, const char *msg, ...)
{
    (void)msg;
    sx_bad(ctx);
}

static void
sax_free(struct sax_state *st)
{
    size_t i;

    for (i = 0; i < st->sx_n; i++)
        free(st->sx_ids[i]);
    free(st->sx_ids);
    st->sx_ids = NULL;
    st->sx_n = st->sx_cap = 0;
}

/*
 * model_text_ok with a fast path: 8 bytes at a time while none is below
 * 0x20 or above 0x7F (the bulk of a client file); any other character
 * is checked alone (TAB, LF, CR and printable ASCII inline, others by
 * model_text_ok), so the verdict is exactly model_text_ok's.
 * (w - 0x20 in every byte) sets a byte's high bit when the byte is below
 * 0x20; a borrow can only set more (a false alarm takes the slow path).
 */
static int
text_ok(const char *s, size_t n)
{
    const uint64_t low = 0x2020202020202020ULL;
    const uint64_t high = 0x8080808080808080ULL;
    size_t i = 0, end, l;
    uint64_t w;
    unsigned c;

    while (i < n) {
        if (n - i >= 8) {
            memcpy(&w, s + i, 8);
            if (((w | (w - low)) & high) == 0) {
                i += 8;
                continue;
            }
        }
        /* this word one character at a time (ASCII inline) */
        for (end = n - i >= 8 ? i + 8 : n; i < end; i += l) {
            c = (unsigned char)s[i];
            if (c >= 0x20 && c < 0x80) {
                l = 1;
                continue;
            }
            if (c == 0x0A || c == 0x09 || c == 0x0D) {
                l = 1;
                continue;
            }
            l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (l > n - i)
                l = n - i;
            if (!model_text_ok(s + i, l))
                return 0;
        }
    }
    return 1;
}

/* A parser context reused from one document to the next (creating one
 * costs more than checking a 3 KB document). Dropped once its dictionary
 * of names holds more than this many: foreign files cannot grow it. */
#define SAX_DICT_MAX 4096
#define SAX_PIECE (1 << 20)     /* bytes given to the push parser at once */

static xmlParserCtxtPtr
sax_ctxt_new(struct sax_state *st)
{
    xmlSAXHandler h;
    xmlParserCtxtPtr ctxt;

    memset(&h, 0, sizeof(h));
    h.initialized = XML_SAX2_MAGIC;
    h.startElementNs = sx_start;
    h.endElementNs = sx_end;
    h.characters = sx_chars;
    h.ignorableWhitespace = NULL;
    h.comment = sx_bad1;
    h.processingInstruction = sx_bad2;
    h.cdataBlock = sx_bad_len;
    h.internalSubset = sx_bad_subset;
    h.externalSubset = sx_bad_subset;
    h.reference = sx_bad1;
    h.warning = NULL;
    h.error = sx_silent;
    h.fatalError = sx_silent;
    ctxt = xmlCreatePushParserCtxt(&h, st, NULL, 0, NULL);
    if (ctxt != NULL)
        xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                    XML_PARSE_NOWARNING);
    return ctxt;
}

static void
sax_ctxt_free(xmlParserCtxtPtr ctxt)
{
    if (ctxt == NULL)
        return;
    if (ctxt->myDoc != NULL)    /* a DOCTYPE makes libxml2 start a doc */
        xmlFreeDoc(ctxt->myDoc);
    ctxt->myDoc = NULL;
    xmlFreeParserCtxt(ctxt);
}

/* SAX-check buf; fills st->sx_ids. *reuse (may be NULL) is a context kept
 * between calls (NULL at first; free with sax_ctxt_free). 0 if
 * well-formed and as the writer makes it, -1 otherwise (st freed by the
 * caller with sax_free). */
static int
sax_check_ctxt(const char *buf, size_t len, struct sax_state *st,
               xmlParserCtxtPtr *reuse)
{
    xmlParserCtxtPtr ctxt = reuse != NULL ? *reuse : NULL;
    size_t first = len < 4 ? len : 4, off;
    int wf;

    memset(st, 0, sizeof(*st));
    if (len > INT32_MAX || !text_ok(buf, len))
        return -1;
    if (ctxt != NULL) {
        if (ctxt->myDoc != NULL) {
            xmlFreeDoc(ctxt->myDoc);
            ctxt->myDoc = NULL;
        }
        /* the first bytes go to the reset: with none, 2.9.14 refuses a
         * document that starts with a BOM (a fresh context accepts it) */
        if (ctxt->dict == NULL || xmlDictSize(ctxt->dict) > SAX_DICT_MAX ||
            xmlCtxtResetPush(ctxt, buf, (int)first, NULL, NULL) != 0) {
            sax_ctxt_free(ctxt);
            ctxt = *reuse = NULL;
        } else {
            ctxt->userData = st;
        }
    }
    if (ctxt == NULL) {
        if ((ctxt = sax_ctxt_new(st)) == NULL)
            return -1;
        first = 0;
    }
    /* in pieces: libxml2 refuses one chunk over 10 MB ("Huge input
     * lookup") without XML_PARSE_HUGE, which a batch of 4,000 Rows is */
    for (off = first;;) {
        size_t n = len - off < SAX_PIECE ? len - off : SAX_PIECE;
        int last = off + n == len;

        xmlParseChunk(ctxt, buf + off, (int)n, last);
        off += n;
        if (last || !ctxt->wellFormed)
            break;
    }
    wf = ctxt->wellFormed;
    if (ctxt->myDoc != NULL) {
        xmlFreeDoc(ctxt->myDoc);
        ctxt->myDoc = NULL;
    }
    if (reuse != NULL)
        *reuse = ctxt;
    else
        sax_ctxt_free(ctxt);
    if (!wf || st->sx_bad || st->sx_n == 0)
        return -1;
    return 0;
}

static int
sax_check(const char *buf, size_t len, struct sax_state *st)
{
    return sax_check_ctxt(buf, len, st, NULL);
}

/* Find the byte ranges of the n Rows of a checked document. offs/lens
 * arrays of n. 0, or -1 if the markers do not match the Rows. */
static int
row_ranges(const char *buf, size_t len, size_t n, size_t *offs,
           size_t *lens)
{
    const char *p = buf, *end = buf + len, *a, *b;
    size_t i;

    for (i = 0; i < n; i++) {
        a = memmem(p, (size_t)(end - p), "<Row>", 5);
        if (a == NULL)
            return -1;
        b = memmem(a, (size_t)(end - a), "</Row>", 6);
        if (b == NULL)
            return -1;
        offs[i] = (size_t)(a - buf);
        lens[i] = (size_t)(b + 6 - a);
        p = b + 6;
    }
    return memmem(p, (size_t)(end - p), "<Row", 4) == NULL ? 0 : -1;
}

/* combine_row_check with a reused parser context (see sax_check_ctxt). */
static int
row_check_ctxt(const char *buf, size_t len, size_t *off, size_t *rlen,
               char *id, size_t idlen, xmlParserCtxtPtr *reuse)
{
    struct sax_state st;
    int rc = -1;

    if (sax_check_ctxt(buf, len, &st, reuse) < 0 || st.sx_n != 1)
        goto done;
    if (row_ranges(buf, len, 1, off, rlen) < 0)
        goto done;
    if (strlen(st.sx_ids[0]) >= idlen)
        goto done;
    strcpy(id, st.sx_ids[0]);
    rc = 0;
done:
    sax_free(&st);
    return rc;
}

int
combine_row_check(const char *buf, size_t len, size_t *off, size_t *rlen,
                  char *id, size_t idlen)
{
    return row_check_ctxt(buf, len, off, rlen, id, idlen, NULL);
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

/* Index every id-like token of every success line of text (modified in
 * place: tokens NUL-terminated; text[len] must be NUL). 0 or -1. */
static int
results_index(char *text, size_t len, struct strset *ok)
{
    char *line = text, *end = text + len, *nl, *p, *q;
    size_t plen = strlen(PHRASE);

    while (line < end) {
        nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            nl = end;
        if (memmem(line, (size_t)(nl - line), PHRASE, plen) != NULL) {
            for (p = line; p < nl;) {
                if (!id_char((unsigned char)*p)) {
                    p++;
                    continue;
                }
                for (q = p; q < nl && id_char((unsigned char)*q); q++)
                    ;
                *q = '\0';     /* text[len] is NUL: q == end is fine */
                if (strset_put(ok, p, 1) < 0)
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
    struct strset ok = {0};
    char *copy;
    int rc;

    if ((copy = malloc(len + 1)) == NULL)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (results_index(copy, len, &ok) < 0)
        rc = -1;
    else
        rc = strset_get(&ok, id, NULL);
    strset_free(&ok);
    free(copy);
    return rc;
}

/* ---- schedule ------------------------------------------------------- */

time_t
combine_next_run(time_t now, int minute)
{
    struct tm tm;
    time_t t;
    int i;

    localtime_r(&now, &tm);
    tm.tm_min = minute;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    for (i = 0; t <= now && i < 3; i++) {
        localtime_r(&now, &tm);
        tm.tm_hour += i + 1;
        tm.tm_min = minute;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return t;
}

/* ---- configuration -------------------------------------------------- */

struct cfg_str {
    const char *name;
    size_t off;
    const char *def;
};

#define CS(n, f, d) {n, offsetof(struct combine_cfg, f), d}
static const struct cfg_str cfg_strs[] = {
    CS("COMBINED_FILENAME", cc_combined_name, "clients.xml"),
    CS("COMBINE_LOG_FILE", cc_log_file, "./xml_combine.log"),
    CS("CLIENT_STATE_FILE", cc_state_file, "./client_state.json"),
    CS("DATA_FILE", cc_data_file, "./data.db"),
    CS("ERROR_LOG_FILE", cc_error_log, "./import_errors.log"),
    CS("READY_DIR", cc_ready_dir, "./ready_for_import"),
    CS("SMB_DOMAIN", cc_smb_domain, "WORKGROUP"),
    CS("SMB_PASSWORD_FILE", cc_smb_password_file, ""),
    CS("SMB_REMOTE_PATH", cc_smb_remote_path, "clients.xml"),
    CS("SMB_RESULTS_FILENAME", cc_smb_results, "clients_Import_Results.txt"),
    CS("SMB_SERVER_IP", cc_smb_server, ""),
    CS("SMB_SERVER_NAME", cc_smb_server_name, ""),
    CS("SMB_SHARE_NAME", cc_smb_share, ""),
    CS("SMB_USERNAME", cc_smb_user, ""),
    CS("XML_DIR", cc_xml_dir, "./out/clients"),
};

static const char *cfg_nums[] = {
    "MAX_CLIENTS_PER_RUN", "RUN_AT_MINUTE", "SMB_ENABLED", "SMB_PORT",
    "SMB_TIMEOUT_MS",
};

static int
parse_long(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* Apply one NAME=value. 0, 1 if the name is unknown, -1 bad value. */
static int
cfg_set(struct combine_cfg *c, const char *name, const char *v, char *err,
        size_t errlen)
{
    size_t i;
    long n;

    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        if (strcmp(name, cfg_strs[i].name) == 0) {
            char **slot = (char **)((char *)c + cfg_strs[i].off);
            char *d = strdup(v);

            if (d == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(*slot);
            *slot = d;
            return 0;
        }
    }
    if (strcmp(name, "SMB_PASSWORD") == 0) {
        snprintf(err, errlen, "SMB_PASSWORD is not accepted: put the "
                              "password in a file readable by its owner "
                              "alone and name it in SMB_PASSWORD_FILE");
        return -1;
    }
    if (strcmp(name, "SMB_ENABLED") == 0) {
        c->cc_smb_enabled = strcasecmp(v, "true") == 0 ||
                            strcmp(v, "1") == 0 ||
                            strcasecmp(v, "yes") == 0;
        return 0;
    }
    if (strcmp(name, "MAX_CLIENTS_PER_RUN") == 0) {
        if (parse_long(v, 0, 10000000, &n) < 0)
            goto bad;
        c->cc_max_clients = n;
        return 0;
    }
    if (strcmp(name, "RUN_AT_MINUTE") == 0) {
        if (parse_long(v, 0, 59, &n) < 0)
            goto bad;
        c->cc_run_at_minute = (int)n;
        return 0;
    }
    if (strcmp(name, "SMB_PORT") == 0) {
        if (parse_long(v, 0, 65535, &n) < 0)
            goto bad;
        c->cc_smb_port = (unsigned)n;
        return 0;
    }
    if (strcmp(name, "SMB_TIMEOUT_MS") == 0) {
        if (parse_long(v, 100, 600000, &n) < 0)
            goto bad;
        c->cc_smb_timeout_ms = (int)n;
        return 0;
    }
    return 1;
bad:
    snprintf(err, errlen, "%s: bad value '%s'", name, v);
    return -1;
}

static int
cfg_file(struct combine_cfg *c, const char *file, char *err, size_t errlen)
{
    FILE *f;
    char line[4096];
    int lineno = 0, rc = -1;

    if ((f = fopen(file, "re")) == NULL) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *eq, *v, *e;
        size_t vl;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#' || *p == ';')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        if ((eq = strchr(p, '=')) == NULL) {
            snprintf(err, errlen, "%s:%d: expected NAME=value", file,
                     lineno);
            goto done;
        }
        for (e = eq; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--)
            ;
        *e = '\0';
        v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        switch (cfg_set(c, p, v, err, errlen)) {
        case 0:
            break;
        case 1:
            log_warnx("%s:%d: unknown setting %s ignored", file, lineno, p);
            break;
        default:
            goto done;
        }
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

int
combine_config_load(struct combine_cfg *c, const char *file, char *err,
                    size_t errlen)
{
    size_t i;
    const char *v;

    memset(c, 0, sizeof(*c));
    c->cc_max_clients = 300;
    c->cc_run_at_minute = 59;
    c->cc_smb_timeout_ms = 20000;
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        v = getenv(cfg_strs[i].name);
        if (cfg_set(c, cfg_strs[i].name, v ? v : cfg_strs[i].def, err,
                    errlen) < 0)
            return -1;
    }
    for (i = 0; i < sizeof(cfg_nums) / sizeof(cfg_nums[0]); i++) {
        if ((v = getenv(cfg_nums[i])) != NULL &&
            cfg_set(c, cfg_nums[i], v, err, errlen) < 0)
            return -1;
    }
    if (getenv("SMB_PASSWORD") != NULL) {
        snprintf(err, errlen, "SMB_PASSWORD in the environment is not "
                              "accepted: use SMB_PASSWORD_FILE");
        return -1;
    }
    if (file != NULL && cfg_file(c, file, err, errlen) < 0)
        return -1;
    if (strchr(c->cc_combined_name, '/') != NULL ||
        !smb_name_ok(c->cc_combined_name)) {
        snprintf(err, errlen, "COMBINED_FILENAME must be a plain file name");
        return -1;
    }
    if (c->cc_smb_enabled) {
        if (*c->cc_smb_server == '\0' || *c->cc_smb_share == '\0' ||
            *c->cc_smb_user == '\0') {
            snprintf(err, errlen, "SMB_ENABLED=true needs SMB_SERVER_IP, "
                                  "SMB_SHARE_NAME and SMB_USERNAME");
            return -1;
        }
        if (!smb_name_ok(c->cc_smb_remote_path) ||
            !smb_name_ok(c->cc_smb_results) ||
            strlen(c->cc_smb_remote_path) < 5 ||
            strcmp(c->cc_smb_remote_path + strlen(c->cc_smb_remote_path) -
                       4,
                   ".xml") != 0) {
            snprintf(err, errlen, "SMB_REMOTE_PATH (a .xml name) or "
                                  "SMB_RESULTS_FILENAME is not a safe "
                                  "share path");
            return -1;
        }
        if (*c->cc_smb_password_file == '\0') {
            snprintf(err, errlen, "SMB_ENABLED=true needs SMB_PASSWORD_FILE");
            return -1;
        }
    }
    return 0;
}

void
combine_config_free(struct combine_cfg *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        char **slot = (char **)((char *)c + cfg_strs[i].off);

        free(*slot);
        *slot = NULL;
    }
}

/* ---- the combiner --------------------------------------------------- */

struct item {
    char *it_rel;           /* "<key>/<id>.xml" under XML_DIR */
    char *it_id;            /* __id */
    int64_t it_cid, it_version;
    size_t it_off, it_len;  /* the Row in the file / blob */
    size_t it_xlen;         /* DB mode: bytes of the picked XML */
    off_t it_out;           /* DB mode: where its Row is in clients.xml */
    unsigned it_moved : 1;  /* its file is in-flight */
    unsigned it_write : 1;  /* last of its __id: written */
    unsigned it_marked : 1;
};

struct remote_rows {
    char *rr_buf;           /* the previous batch's document */
    size_t rr_len;
    struct sax_state rr_sax;  /* ids */
    size_t *rr_off, *rr_rlen;
    char rr_from[64];       /* where it came from, for the log */
};

struct combine {
    const struct combine_cfg *cb_cfg;
    unsigned cb_flags;
    volatile sig_atomic_t *cb_stop;
    char cb_password[256];
    struct store *cb_store;
    char *cb_inflight;      /* XML_DIR/.inflight */
    FILE *cb_log;
    /* one run */
    struct item *cb_items;
    size_t cb_n, cb_cap;
    struct strset cb_ids;   /* __id -> index of the last item */
    struct remote_rows cb_rr;
    struct smb *cb_smb;
    char cb_batch[32];      /* 20250101T125500Z */
    char cb_stamp[32];      /* 20250101_125500 (local) */
    char cb_iso[32];        /* 2025-01-01T12:55:00 (local) */
    int64_t cb_now_ms;
    char cb_err[512];
    struct combine_stats *cb_stats;
    xmlParserCtxtPtr cb_sax;    /* reused by every per-client check */
};

static void clog_(struct combine *cb, int lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log to stderr (log.h) and append to COMBINE_LOG_FILE. lvl: 0 info,
 * 1 warning. A warning also becomes the run's error text. */
static void
clog_(struct combine *cb, int lvl, const char *fmt, ...)
{
    char msg[1024], ts[32];
    struct tm tm;
    time_t now = time(NULL);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lvl)
        log_warnx("%s", msg);
    else
        log_info("%s", msg);
    if (lvl && cb->cb_err[0] == '\0')   /* the first: the reason */
        snprintf(cb->cb_err, sizeof(cb->cb_err), "%.500s", msg);
    if (cb->cb_log != NULL) {
        localtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(cb->cb_log, "%s %s %s\n", ts, lvl ? "WARNING" : "INFO", msg);
        fflush(cb->cb_log);
    }
}

#define LOGI(...) clog_(cb, 0, __VA_ARGS__)
#define LOGW(...) clog_(cb, 1, __VA_ARGS__)

struct combine *
combine_new(const struct combine_cfg *cfg, unsigned flags,
            volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    struct combine *cb;

    if ((cb = calloc(1, sizeof(*cb))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cb->cb_cfg = cfg;
    cb->cb_flags = flags;
    cb->cb_stop = stop;
    if (cfg->cc_smb_enabled &&
        smb_read_password_file(cfg->cc_smb_password_file, cb->cb_password,
                               sizeof(cb->cb_password), err, errlen) < 0)
        goto fail;
    if ((cb->cb_inflight = path_join(cfg->cc_xml_dir, INFLIGHT)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->cc_log_file[0] != '\0' && !(flags & COMBINE_DRY_RUN)) {
        if (mkparent(cfg->cc_log_file) < 0 ||
            (cb->cb_log = fopen(cfg->cc_log_file, "ae")) == NULL) {
            snprintf(err, errlen, "COMBINE_LOG_FILE %s: %s",
                     cfg->cc_log_file, strerror(errno));
            goto fail;
        }
    }
    if (!(flags & COMBINE_FROM_DIR)) {
        cb->cb_store = store_open(cfg->cc_data_file,
                                  (flags & COMBINE_DRY_RUN) ? STORE_READONLY
                                                            : 0,
                                  err, errlen);
        if (cb->cb_store == NULL)
            goto fail;
        if (!(flags & COMBINE_DRY_RUN) &&
            store_combine_init(cb->cb_store) < 0) {
            snprintf(err, errlen, "%s: cannot create the combiner's tables",
                     cfg->cc_data_file);
            goto fail;
        }
    }
    return cb;
fail:
    combine_free(cb);
    return NULL;
}

void
combine_free(struct combine *cb)
{
    if (cb == NULL)
        return;
    store_close(cb->cb_store);
    if (cb->cb_log != NULL)
        fclose(cb->cb_log);
    free(cb->cb_inflight);
    sax_ctxt_free(cb->cb_sax);
    memset(cb->cb_password, 0, sizeof(cb->cb_password));
    free(cb);
}

static int
stopping(struct combine *cb)
{
    return cb->cb_stop != NULL && *cb->cb_stop;
}

static char *
outbox_path(struct combine *cb, const char *rel)
{
    return path_join(cb->cb_cfg->cc_xml_dir, rel);
}

static char *
inflight_path(struct combine *cb, const char *rel)
{
    return path_join(cb->cb_inflight, rel);
}

/* Put an in-flight file back at path unless a newer file is there (link
 * fails with EEXIST), then drop the in-flight name. 1 put back, 0 dropped
 * (a newer file is there), -1 on error (logged). */
static int
put_back(struct combine *cb, const char *inflight, const char *path)
{
    int rc = 1;

    if (link(inflight, path) < 0) {
        if (errno == ENOENT && mkparent(path) == 0 &&
            link(inflight, path) == 0)
            goto unlink;
        if (errno != EEXIST) {
            LOGW("cannot put back %s: %s", inflight, strerror(errno));
            return -1;
        }
        rc = 0;
    }
unlink:
    if (unlink(inflight) < 0 && errno != ENOENT) {
        LOGW("cannot remove %s: %s", inflight, strerror(errno));
        return -1;
    }
    return rc;
}

/* Walk dir recursively (skipping dot names) and call fn for every *.xml
 * file with its path relative to root. */
static int
walk(const char *root, const char *rel,
     int (*fn)(void *arg, const char *rel, const struct stat *sb),
     void *arg)
{
    char *dir = rel[0] ? path_join(root, rel) : strdup(root);
    DIR *d = NULL;
    struct dirent *de;
    int rc = -1;

    if (dir == NULL)
        return -1;
    if ((d = opendir(dir)) == NULL) {
        rc = errno == ENOENT ? 0 : -1;
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        char *r, *full;
        struct stat sb;
        size_t nl = strlen(de->d_name);
        int sub;

        if (de->d_name[0] == '.')
            continue;
        if (rel[0]) {
            if (asprintf(&r, "%s/%s", rel, de->d_name) < 0)
                goto done;
        } else if ((r = strdup(de->d_name)) == NULL) {
            goto done;
        }
        if ((full = path_join(dir, de->d_name)) == NULL) {
            free(r);
            goto done;
        }
        sub = 0;
        if (lstat(full, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                sub = walk(root, r, fn, arg);
            else if (S_ISREG(sb.st_mode) && nl > 4 &&
                     strcmp(de->d_name + nl - 4, ".xml") == 0)
                sub = fn(arg, r, &sb);
        }
        free(full);
        free(r);
        if (sub < 0)
            goto done;
    }
    rc = 0;
done:
    if (d != NULL)
        closedir(d);
    free(dir);
    return rc;
}

/* An in-flight file a killed run left. DB mode: removed, never put back:
 * it may belong to a client deleted or changed since, and reconcile (step
 * 3) rewrites the outbox file of every waiting client from the database,
 * so nothing the database holds depends on it. --from-dir: it is the only
 * copy: put back unless a newer outbox file exists. */
static int
recover_one(void *arg, const char *rel, const struct stat *sb)
{
    struct combine *cb = arg;
    char *in = inflight_path(cb, rel), *out = outbox_path(cb, rel);

    (void)sb;
    if (in != NULL && out != NULL) {
        if (cb->cb_store != NULL) {
            LOGI("removing %s left in flight by an earlier run (the "
                 "database is the truth: reconcile rewrites the files of "
                 "waiting clients)",
                 rel);
            if (unlink(in) < 0 && errno != ENOENT)
                LOGW("cannot remove %s: %s", in, strerror(errno));
        } else {
            LOGI("putting back %s left in flight by an earlier run", rel);
            (void)put_back(cb, in, out);
        }
    }
    free(in);
    free(out);
    return 0;
}

/* ---- items ---------------------------------------------------------- */

static struct item *
item_add(struct combine *cb)
{
    if (cb->cb_n == cb->cb_cap) {
        size_t cap = cb->cb_cap ? cb->cb_cap * 2 : 256;
        struct item *p = realloc(cb->cb_items, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        cb->cb_items = p;
        cb->cb_cap = cap;
    }
    memset(&cb->cb_items[cb->cb_n], 0, sizeof(struct item));
    return &cb->cb_items[cb->cb_n++];
}

static void
items_free(struct combine *cb)
{
    size_t i;

    for (i = 0; i < cb->cb_n; i++) {
        free(cb->cb_items[i].it_rel);
        free(cb->cb_items[i].it_id);
    }
    free(cb->cb_items);
    cb->cb_items = NULL;
    cb->cb_n = cb->cb_cap = 0;
    strset_free(&cb->cb_ids);
}

static void
remote_free(struct remote_rows *rr)
{
    free(rr->rr_buf);
    sax_free(&rr->rr_sax);
    free(rr->rr_off);
    free(rr->rr_rlen);
    memset(rr, 0, sizeof(*rr));
}

/* Move an item's outbox file to in-flight. 0 (moved, or no file to move:
 * the database content ships all the same), -1 on error (logged). */
static int
item_move(struct combine *cb, struct item *it)
{
    char *from = outbox_path(cb, it->it_rel);
    char *to = inflight_path(cb, it->it_rel);
    int rc = -1;

    if (from == NULL || to == NULL)
        goto done;
    if (rename(from, to) == 0) {
        it->it_moved = 1;
    } else if (errno == ENOENT && access(from, F_OK) == 0) {
        /* the in-flight folder is missing */
        if (mkparent(to) < 0) {
            LOGW("cannot create the folder of %s: %s", to, strerror(errno));
            goto done;
        }
        if (rename(from, to) == 0)
            it->it_moved = 1;
        else if (errno != ENOENT)
            goto fail_move;
    } else if (errno != ENOENT) {
        goto fail_move;
    }
    rc = 0;
    goto done;
fail_move:
    LOGW("cannot move %s to in-flight: %s", from, strerror(errno));
done:
    free(from);
    free(to);
    return rc;
}

/* ---- settling files against the database (DB mode) ------------------ */

/* The key of an item ("<key>/<id>.xml"). 0 or -1. */
static int
item_key(const struct item *it, char *key, size_t len)
{
    size_t kl = strcspn(it->it_rel, "/");

    if (kl >= len)
        return -1;
    memcpy(key, it->it_rel, kl);
    key[kl] = '\0';
    return 0;
}

/* What the database says now about a client and the bytes of a file. */
enum verdict {
    V_ERROR = -1,
    V_GONE,         /* no such client */
    V_DIFFERS,      /* its current XML is not these bytes */
    V_WAITING,      /* these bytes; pending or failed */
    V_SHIPPED,      /* these bytes; shipped at version */
    V_OTHER,        /* these bytes; another state or version */
};

static enum verdict
db_verdict(struct combine *cb, const char *key, int64_t cid, int64_t version,
           const char *buf, size_t len)
{
    struct store_meta m;
    enum verdict v = V_ERROR;
    char *xml = NULL;
    size_t xlen;
    int64_t xver;
    int rc;

    if (store_combine_snapshot_begin(cb->cb_store) < 0)
        return V_ERROR;
    rc = store_client_meta(cb->cb_store, key, cid, &m);
    if (rc == STORE_NOTFOUND) {
        v = V_GONE;
        goto done;
    }
    if (rc != STORE_OK)
        goto done;
    rc = store_get_xml(cb->cb_store, key, cid, &xml, &xlen, &xver);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        goto done;
    if (rc == STORE_NOTFOUND || xlen != len || memcmp(xml, buf, len) != 0)
        v = V_DIFFERS;
    else if (strcmp(m.sm_state, "pending") == 0 ||
             strcmp(m.sm_state, "failed") == 0)
        v = V_WAITING;
    else if (strcmp(m.sm_state, "shipped") == 0 && m.sm_version == version)
        v = V_SHIPPED;
    else
        v = V_OTHER;
done:
    store_combine_snapshot_end(cb->cb_store);
    free(xml);
    return v;
}

/* Link in back to out unless a newer file is there, and drop in. If the
 * client is gone by then (the API removed its file before the link), the
 * file linked is removed again: a client deleted meanwhile never gets its
 * file back. */
static void
restore(struct combine *cb, const char *in, const char *out, const char *key,
        int64_t cid)
{
    struct store_meta m;
    struct stat a, b;

    if (stat(in, &a) < 0 || put_back(cb, in, out) != 1)
        return;
    if (store_client_meta(cb->cb_store, key, cid, &m) == STORE_NOTFOUND &&
        stat(out, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
        unlink(out) == 0)
        LOGI("%s: client deleted meanwhile, its file removed", out);
}

/* DB mode: the in-flight file of an item not marked goes back only if its
 * client still waits with exactly these bytes. Else it is dropped: the
 * client was deleted, or changed (the API writes the newer file; reconcile
 * repairs a missing one). */
static void
db_put_back(struct combine *cb, struct item *it)
{
    char key[128], *in = inflight_path(cb, it->it_rel);
    char *out = outbox_path(cb, it->it_rel), *buf = NULL;
    size_t len;

    if (in == NULL || out == NULL || item_key(it, key, sizeof(key)) < 0)
        goto done;
    switch (read_file(in, &buf, &len)) {
    case 0:
        break;
    case 1:
        it->it_moved = 0;
        goto done;
    default:
        LOGW("cannot read %s: %s", in, strerror(errno));
        goto done;
    }
    switch (db_verdict(cb, key, it->it_cid, it->it_version, buf, len)) {
    case V_WAITING:
        restore(cb, in, out, key, it->it_cid);
        break;
    case V_ERROR:       /* cannot tell: keep the file, as before */
        if (put_back(cb, in, out) < 0)
            goto done;
        break;
    default:
        LOGI("not putting back %s: its client was deleted or changed "
             "during the run",
             it->it_rel);
        if (unlink(in) < 0 && errno != ENOENT) {
            LOGW("cannot remove %s: %s", in, strerror(errno));
            goto done;
        }
        break;
    }
    it->it_moved = 0;
done:
    free(buf);
    free(in);
    free(out);
}

/* DB mode, after the mark: the API may have rewritten the outbox file of a
 * client shipped by this run (a GET while its file was in flight). It is
 * removed if it holds exactly the XML shipped, and the client is still
 * shipped at that version; a file that differs is a newer change and
 * stays. The file is first renamed to its in-flight name, so that a file
 * the API writes meanwhile is never the one removed. */
static void
drop_shipped_copy(struct combine *cb, struct item *it)
{
    char key[128], *in = inflight_path(cb, it->it_rel);
    char *out = outbox_path(cb, it->it_rel), *buf = NULL;
    size_t len;

    if (in == NULL || out == NULL || item_key(it, key, sizeof(key)) < 0)
        goto done;
    if (rename(out, in) < 0) {
        if (errno != ENOENT || access(out, F_OK) < 0)
            goto done;  /* no file: the usual case */
        if (mkparent(in) < 0 || rename(out, in) < 0)
            goto done;
    }
    if (read_file(in, &buf, &len) != 0) {
        LOGW("cannot read %s: %s", in, strerror(errno));
        restore(cb, in, out, key, it->it_cid);
        goto done;
    }
    if (db_verdict(cb, key, it->it_cid, it->it_version, buf, len) ==
        V_SHIPPED) {
        if (unlink(in) < 0)
            LOGW("cannot remove %s: %s", in, strerror(errno));
        else
            LOGI("removed %s: a copy of what was shipped", it->it_rel);
    } else {
        restore(cb, in, out, key, it->it_cid);
    }
done:
    free(buf);
    free(in);
    free(out);
}

static void
item_put_back(struct combine *cb, struct item *it)
{
    char *in, *out;

    if (!it->it_moved)
        return;
    if (cb->cb_store != NULL) {
        db_put_back(cb, it);
        return;
    }
    in = inflight_path(cb, it->it_rel);
    out = outbox_path(cb, it->it_rel);
    if (in != NULL && out != NULL && put_back(cb, in, out) >= 0)
        it->it_moved = 0;
    free(in);
    free(out);
}

static void
items_put_back(struct combine *cb)
{
    size_t i;

    for (i = 0; i < cb->cb_n; i++)
        item_put_back(cb, &cb->cb_items[i]);
}

/* ---- reconcile and pick (DB mode) ----------------------------------- */

static int
rel_of(const char *key, int64_t cid, char **rel)
{
    if (!smb_name_ok(key) || strchr(key, '/') != NULL || key[0] == '.')
        return -1;
    return asprintf(rel, "%s/%lld.xml", key, (long long)cid) < 0 ? -1 : 0;
}

static int
reconcile_one(void *arg, const char *key, int64_t cid, int64_t version,
              const char *xml, size_t len)
{
    struct combine *cb = arg;
    char *path = pxml_outbox_path(cb->cb_cfg->cc_xml_dir, key, cid);
    int rc;

    (void)version;
    if (path == NULL)
        return -1;
    rc = pxml_file_equals(path, xml, len);
    if (rc != 1 && !(cb->cb_flags & COMBINE_DRY_RUN)) {
        if (pxml_write_file(path, xml, len, 0) < 0)
            LOGW("reconcile: cannot write %s: %s", path, strerror(errno));
        else
            LOGI("reconcile: rewrote %s (%s)", path,
                 rc == 0 ? "missing or stale" : "unreadable");
    }
    free(path);
    return 0;
}

static int
pick_one(void *arg, const char *key, int64_t cid, int64_t version,
         const char *xml, size_t len)
{
    struct combine *cb = arg;
    struct item *it;
    char id[ID_MAX], *rel = NULL;
    size_t off, rlen;

    if (rel_of(key, cid, &rel) < 0) {
        LOGW("client %s/%lld: unsafe key name, skipped", key, (long long)cid);
        cb->cb_stats->cs_skipped++;
        return 0;
    }
    if (row_check_ctxt(xml, len, &off, &rlen, id, sizeof(id),
                       &cb->cb_sax) < 0) {
        LOGW("client %s/%lld version %lld: outbox XML is not well-formed "
             "Patriot XML, skipped",
             key, (long long)cid, (long long)version);
        cb->cb_stats->cs_skipped++;
        free(rel);
        return 0;
    }
    if ((it = item_add(cb)) == NULL || (it->it_id = strdup(id)) == NULL) {
        free(rel);
        return -1;
    }
    it->it_rel = rel;
    it->it_cid = cid;
    it->it_version = version;
    it->it_off = off;
    it->it_len = rlen;
    it->it_xlen = len;
    return 0;
}

/* ---- from-dir pick -------------------------------------------------- */

struct fd_entry {
    char *fe_rel;
    struct timespec fe_mtime;
    off_t fe_size;
};

struct fd_list {
    struct fd_entry *fl_e;
    size_t fl_n, fl_cap;
};

static int
fd_collect(void *arg, const char *rel, const struct stat *sb)
{
    struct fd_list *l = arg;

    if (l->fl_n == l->fl_cap) {
        size_t cap = l->fl_cap ? l->fl_cap * 2 : 256;
        struct fd_entry *p = realloc(l->fl_e, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        l->fl_e = p;
        l->fl_cap = cap;
    }
    if ((l->fl_e[l->fl_n].fe_rel = strdup(rel)) == NULL)
        return -1;
    l->fl_e[l->fl_n].fe_mtime = sb->st_mtim;
    l->fl_e[l->fl_n].fe_size = sb->st_size;
    l->fl_n++;
    return 0;
}

static int
fd_cmp(const void *a, const void *b)
{
    const struct fd_entry *x = a, *y = b;

    if (x->fe_mtime.tv_sec != y->fe_mtime.tv_sec)
        return x->fe_mtime.tv_sec < y->fe_mtime.tv_sec ? -1 : 1;
    if (x->fe_mtime.tv_nsec != y->fe_mtime.tv_nsec)
        return x->fe_mtime.tv_nsec < y->fe_mtime.tv_nsec ? -1 : 1;
    return strcmp(x->fe_rel, y->fe_rel);
}

/* ---- writing clients.xml -------------------------------------------- */

static const char head[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n";
static const char tail[] = "</Clients>\n";

static int
out_row(FILE *f, const char *row, size_t len)
{
    if (fwrite("  ", 1, 2, f) != 2 || fwrite(row, 1, len, f) != len ||
        fputc('\n', f) == EOF)
        return -1;
    return 0;
}

struct pass2 {
    struct combine *p_cb;
    FILE *p_f;
    size_t p_i;
};

static int
write_db_row(void *arg, const char *key, int64_t cid, int64_t version,
             const char *xml, size_t len)
{
    struct pass2 *p = arg;
    struct combine *cb = p->p_cb;
    struct item *it;

    /* same snapshot, same query: the same rows in the same order, plus
     * the ones pick_one skipped */
    if (p->p_i >= cb->cb_n)
        return 0;
    it = &cb->cb_items[p->p_i];
    if (it->it_cid != cid || it->it_version != version ||
        strncmp(it->it_rel, key, strlen(key)) != 0 ||
        it->it_rel[strlen(key)] != '/')
        return 0;   /* a row pick_one skipped */
    it = &cb->cb_items[p->p_i++];
    if (!it->it_write)
        return 0;
    if (it->it_off + it->it_len > len || (it->it_out = ftello(p->p_f)) < 0)
        return -1;
    it->it_out += 2;    /* the indent out_row writes */
    return out_row(p->p_f, xml + it->it_off, it->it_len) < 0 ? -1 : 0;
}

/* Write READY_DIR/<name>.tmp: folded Rows (unless a local Row has the
 * id), then the local Rows that are last of their id. */
static int
write_combined(struct combine *cb, const char *tmp, size_t *rows)
{
    struct strset rids = {0};   /* folded __id -> its last Row */
    FILE *f = NULL;
    char *vbuf = NULL;
    size_t i;
    int fd;

    *rows = 0;
    if (mkparent(tmp) < 0 ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) <
            0 ||
        (f = fdopen(fd, "w")) == NULL) {
        LOGW("cannot create %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((vbuf = malloc(65536)) != NULL)
        setvbuf(f, vbuf, _IOFBF, 65536);
    if (fputs(head, f) == EOF)
        goto fail_io;
    for (i = 0; i < cb->cb_rr.rr_sax.sx_n; i++)
        if (strset_put(&rids, cb->cb_rr.rr_sax.sx_ids[i], i) < 0)
            goto fail;
    for (i = 0; i < cb->cb_rr.rr_sax.sx_n; i++) {
        const char *id = cb->cb_rr.rr_sax.sx_ids[i];
        size_t last = i;

        if (strset_get(&cb->cb_ids, id, NULL))
            continue;   /* our newer Row wins */
        (void)strset_get(&rids, id, &last);
        if (last != i)
            continue;   /* a later Row of the same id in that batch */
        if (out_row(f, cb->cb_rr.rr_buf + cb->cb_rr.rr_off[i],
                    cb->cb_rr.rr_rlen[i]) < 0)
            goto fail_io;
        cb->cb_stats->cs_folded++;
        (*rows)++;
    }
    if (cb->cb_n > 0) {
        struct pass2 p = {cb, f, 0};

        if (store_combine_foreach_waiting(cb->cb_store,
                                          cb->cb_cfg->cc_max_clients,
                                          write_db_row, &p) != 0) {
            LOGW("cannot read the outbox XML again: %s",
                 store_errmsg(cb->cb_store));
            goto fail;
        }
        for (i = 0; i < cb->cb_n; i++)
            if (cb->cb_items[i].it_write)
                (*rows)++;
        if (p.p_i != cb->cb_n) {
            LOGW("the outbox changed inside one snapshot (%zu of %zu)",
                 p.p_i, cb->cb_n);
            goto fail;
        }
    }
    if (fputs(tail, f) == EOF || fflush(f) == EOF || fsync(fileno(f)) < 0)
        goto fail_io;
    if (fclose(f) == EOF) {
        f = NULL;
        goto fail_io;
    }
    free(vbuf);
    strset_free(&rids);
    return 0;
fail_io:
    LOGW("cannot write %s: %s", tmp, strerror(errno));
fail:
    if (f != NULL)
        fclose(f);
    free(vbuf);
    strset_free(&rids);
    unlink(tmp);
    return -1;
}

/* ---- --from-dir: one pass ------------------------------------------- */

/*
 * Each file is read once into a reused buffer, checked (SAX, reused
 * parser context) and its Row copied from that buffer to the combined
 * file at once. A Row that a later one of the same __id supersedes (a
 * newer file, or a local Row over a folded one) is already written by
 * then: its line is recorded as dead and a last pass copies the file
 * without the dead lines (only when there are any: rare).
 */

struct span {
    off_t sp_off;
    size_t sp_len;
};

struct fdb {
    FILE *b_f;
    char *b_vbuf;
    off_t b_pos;            /* bytes written */
    struct span *b_dead;    /* lines to drop */
    size_t b_ndead, b_capdead;
    off_t *b_rr_out;        /* each folded Row's line, -1: not written */
    struct strset b_rids;   /* folded __id -> its last Row */
    size_t b_folded;
};

static int
fdb_dead(struct fdb *b, off_t off, size_t len)
{
    if (b->b_ndead == b->b_capdead) {
        size_t cap = b->b_capdead ? b->b_capdead * 2 : 16;
        struct span *p = realloc(b->b_dead, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        b->b_dead = p;
        b->b_capdead = cap;
    }
    b->b_dead[b->b_ndead].sp_off = off;
    b->b_dead[b->b_ndead++].sp_len = len;
    return 0;
}

/* One Row line ("  <Row>...</Row>\n"); *at = where the line starts. */
static int
fdb_row(struct fdb *b, const char *row, size_t len, off_t *at)
{
    *at = b->b_pos;
    if (out_row(b->b_f, row, len) < 0)
        return -1;
    b->b_pos += (off_t)len + 3;
    return 0;
}

/* The Rows of the previous batch (first in the file, as in DB mode). */
static int
fdb_fold(struct combine *cb, struct fdb *b)
{
    struct remote_rows *rr = &cb->cb_rr;
    size_t i, last;

    if (rr->rr_sax.sx_n == 0)
        return 0;
    if ((b->b_rr_out = calloc(rr->rr_sax.sx_n, sizeof(off_t))) == NULL)
        return -1;
    for (i = 0; i < rr->rr_sax.sx_n; i++)
        if (strset_put(&b->b_rids, rr->rr_sax.sx_ids[i], i) < 0)
            return -1;
    for (i = 0; i < rr->rr_sax.sx_n; i++) {
        b->b_rr_out[i] = -1;
        (void)strset_get(&b->b_rids, rr->rr_sax.sx_ids[i], &last);
        if (last != i)
            continue;   /* a later Row of the same id in that batch */
        if (fdb_row(b, rr->rr_buf + rr->rr_off[i], rr->rr_rlen[i],
                    &b->b_rr_out[i]) < 0)
            return -1;
        b->b_folded++;
    }
    return 0;
}

/*
 * Two threads move, read and check the files of a chunk (the main one and
 * a helper, each with its own buffer and parser context, taking the next
 * file from a shared counter); then the main thread alone takes the
 * chunk's results in order: writes the Rows, logs, puts back what was
 * skipped. A chunk never holds more files than are still wanted, so no
 * file is moved that the run would not pick.
 */
#define FD_CHUNK 256
#define FD_CHUNK_BYTES (16 << 20)   /* a chunk's files (as listed) */
#define FD_KEEP_BUF (256 << 10)     /* a bigger read buffer is not kept */

enum slot_rc {
    SL_OK,          /* moved (or dry run), read and well-formed */
    SL_GONE,        /* vanished before the move */
    SL_MALFORMED,   /* not a well-formed Patriot client file */
    SL_UNREADABLE,  /* moved but cannot be read (sl_errno) */
    SL_ERROR,       /* cannot move (sl_errno): fails the run */
};

struct slot {
    struct item *sl_it;
    char *sl_buf;           /* the file (reused) */
    size_t sl_cap, sl_len;
    char sl_id[ID_MAX];
    enum slot_rc sl_rc;
    int sl_errno;
};

struct fd_pool {
    struct combine *p_cb;
    struct slot p_slot[FD_CHUNK];
    size_t p_n;                 /* slots in this chunk */
    atomic_size_t p_next;       /* next slot to take */
    pthread_barrier_t p_start, p_end;
    int p_quit;                 /* helper: leave at the next start */
    xmlParserCtxtPtr p_sax;     /* the helper's */
};

/* Move the item's file in flight (no logging: any thread). */
static enum slot_rc
slot_move(struct combine *cb, struct slot *sl)
{
    struct item *it = sl->sl_it;
    char *from = outbox_path(cb, it->it_rel);
    char *to = inflight_path(cb, it->it_rel);
    enum slot_rc rc = SL_ERROR;

    if (from == NULL || to == NULL) {
        sl->sl_errno = ENOMEM;
        goto done;
    }
    if (rename(from, to) == 0) {
        it->it_moved = 1;
        rc = SL_OK;
    } else if (errno == ENOENT && access(from, F_OK) == 0) {
        /* the in-flight folder is missing */
        if (mkparent(to) == 0 && rename(from, to) == 0) {
            it->it_moved = 1;
            rc = SL_OK;
        } else if (errno == ENOENT) {
            rc = SL_GONE;
        } else {
            sl->sl_errno = errno;
        }
    } else if (errno == ENOENT) {
        rc = SL_GONE;
    } else {
        sl->sl_errno = errno;
    }
done:
    free(from);
    free(to);
    return rc;
}

/* Read path into sl->sl_buf. 0, 1 missing, -1 error (errno). */
static int
slot_read(struct slot *sl, const char *path)
{
    struct stat sb;
    size_t got = 0;
    int fd, saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 1 : -1;
    if (fstat(fd, &sb) < 0)
        goto fail;
    if ((size_t)sb.st_size + 1 > sl->sl_cap) {
        size_t cap = (size_t)sb.st_size + 1 + 4096;
        char *p = realloc(sl->sl_buf, cap);

        if (p == NULL)
            goto fail;
        sl->sl_buf = p;
        sl->sl_cap = cap;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, sl->sl_buf + got, (size_t)sb.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    sl->sl_len = got;
    return 0;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* One slot: move, read, check (any thread; touches only its slot and its
 * item). */
static void
slot_work(struct combine *cb, struct slot *sl, xmlParserCtxtPtr *sax)
{
    struct item *it = sl->sl_it;
    char *path;

    sl->sl_errno = 0;
    if (!(cb->cb_flags & COMBINE_DRY_RUN) &&
        (sl->sl_rc = slot_move(cb, sl)) != SL_OK)
        return;
    if ((path = it->it_moved ? inflight_path(cb, it->it_rel)
                             : outbox_path(cb, it->it_rel)) == NULL) {
        sl->sl_errno = ENOMEM;
        sl->sl_rc = SL_UNREADABLE;
        return;
    }
    switch (slot_read(sl, path)) {
    case 0:
        sl->sl_rc = row_check_ctxt(sl->sl_buf, sl->sl_len, &it->it_off,
                                   &it->it_len, sl->sl_id, sizeof(sl->sl_id),
                                   sax) < 0
                        ? SL_MALFORMED
                        : SL_OK;
        break;
    case 1:
        sl->sl_rc = it->it_moved ? SL_UNREADABLE : SL_GONE;
        sl->sl_errno = ENOENT;
        break;
    default:
        sl->sl_errno = errno;
        sl->sl_rc = SL_UNREADABLE;
        break;
    }
    free(path);
}

static void
pool_work(struct fd_pool *p, xmlParserCtxtPtr *sax)
{
    size_t j;

    while ((j = atomic_fetch_add(&p->p_next, 1)) < p->p_n)
        slot_work(p->p_cb, &p->p_slot[j], sax);
}

static void *
pool_helper(void *arg)
{
    struct fd_pool *p = arg;

    for (;;) {
        pthread_barrier_wait(&p->p_start);
        if (p->p_quit)
            break;
        pool_work(p, &p->p_sax);
        pthread_barrier_wait(&p->p_end);
    }
    return NULL;
}

static int slot_take_row(struct combine *cb, struct fdb *b, struct slot *sl,
                         struct item *it, size_t w);

/* Take one worked slot in order: write its Row or settle its file. 1
 * taken, 0 skipped, -1 on an error that fails the run (logged). The item
 * goes to index w of cb_items (the chunk's items are packed as they are
 * taken). */
static int
slot_take(struct combine *cb, struct fdb *b, struct slot *sl, size_t w)
{
    struct item *it = &cb->cb_items[w];
    int rc;

    if (sl->sl_it != it)
        *it = *sl->sl_it;
    sl->sl_it = NULL;
    rc = slot_take_row(cb, b, sl, it, w);
    if (sl->sl_cap > FD_KEEP_BUF) {     /* a big file's buffer: dropped */
        free(sl->sl_buf);
        sl->sl_buf = NULL;
        sl->sl_cap = 0;
    }
    return rc;
}

static int
slot_take_row(struct combine *cb, struct fdb *b, struct slot *sl,
              struct item *it, size_t w)
{
    size_t j;

    switch (sl->sl_rc) {
    case SL_OK:
        break;
    case SL_GONE:
        goto drop;
    case SL_ERROR:
        errno = sl->sl_errno;
        LOGW("cannot move %s to in-flight: %s", it->it_rel, strerror(errno));
        cb->cb_n = w + 1;   /* items_put_back settles it */
        return -1;
    case SL_UNREADABLE:
        LOGW("cannot read %s: %s", it->it_rel, strerror(sl->sl_errno));
        goto skip;
    case SL_MALFORMED:
        LOGW("%s is not a well-formed Patriot client file: skipped, "
             "left in place", it->it_rel);
        goto skip;
    }
    if ((it->it_id = strdup(sl->sl_id)) == NULL)
        goto fail;
    if (strset_get(&cb->cb_ids, it->it_id, &j)) {
        struct item *old = &cb->cb_items[j];    /* an older file */

        old->it_write = 0;
        if (fdb_dead(b, old->it_out, old->it_len + 3) < 0)
            goto fail;
    } else if (strset_get(&b->b_rids, it->it_id, &j) && b->b_rr_out[j] >= 0) {
        if (fdb_dead(b, b->b_rr_out[j], cb->cb_rr.rr_rlen[j] + 3) < 0)
            goto fail;
        b->b_rr_out[j] = -1;    /* our newer Row wins */
        b->b_folded--;
    }
    cb->cb_n = w + 1;
    if (strset_put(&cb->cb_ids, it->it_id, w) < 0 ||
        fdb_row(b, sl->sl_buf + it->it_off, it->it_len, &it->it_out) < 0)
        return -1;
    it->it_write = 1;
    return 1;
skip:
    cb->cb_stats->cs_skipped++;
    item_put_back(cb, it);
drop:
    free(it->it_rel);
    free(it->it_id);
    memset(it, 0, sizeof(*it));
    return 0;
fail:
    cb->cb_n = w + 1;
    return -1;
}

/*
 * Pick and write the Rows of l's files (oldest first) with the pool. On
 * failure, every file the helper moved is an item (cb_n covers it) so
 * that items_put_back settles it. 0 or -1 (logged).
 */
static int
fdb_pick(struct combine *cb, struct fdb *b, struct fd_list *l,
         struct fd_pool *p, int helper)
{
    size_t max = (size_t)cb->cb_cfg->cc_max_clients, i = 0, k, j, w;
    off_t bytes;
    int rc;

    while (i < l->fl_n && (max == 0 || cb->cb_n < max) && !stopping(cb)) {
        k = l->fl_n - i;
        if (k > FD_CHUNK)
            k = FD_CHUNK;
        if (max != 0 && k > max - cb->cb_n)
            k = max - cb->cb_n;
        for (j = 0, bytes = 0; j < k; j++) {     /* memory: bounded */
            bytes += l->fl_e[i + j].fe_size;
            if (j > 0 && bytes > FD_CHUNK_BYTES)
                k = j;
        }
        w = cb->cb_n;
        for (j = 0; j < k; j++) {
            struct item *it = item_add(cb);

            if (it == NULL)
                return -1;
            it->it_rel = l->fl_e[i + j].fe_rel;
            l->fl_e[i + j].fe_rel = NULL;
        }
        for (j = 0; j < k; j++)
            p->p_slot[j].sl_it = &cb->cb_items[w + j];
        p->p_n = k;
        atomic_store(&p->p_next, 0);
        i += k;
        if (helper) {
            pthread_barrier_wait(&p->p_start);
            pool_work(p, &cb->cb_sax);
            pthread_barrier_wait(&p->p_end);
        } else {
            pool_work(p, &cb->cb_sax);
        }
        cb->cb_n = w;
        for (j = 0; j < k; j++) {
            if ((rc = slot_take(cb, b, &p->p_slot[j], w)) < 0) {
                /* this item and the chunk's others stay items, so that
                 * items_put_back settles their files (w + 1 <= their
                 * index: packing moves items only down) */
                size_t left = w + 1;

                for (j++; j < k; j++) {
                    cb->cb_items[left++] = *p->p_slot[j].sl_it;
                    p->p_slot[j].sl_it = NULL;
                }
                cb->cb_n = left;
                return -1;
            }
            w += (size_t)rc;
        }
    }
    return 0;
}

static int
span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;

    return x->sp_off < y->sp_off ? -1 : x->sp_off > y->sp_off;
}

/* Copy tmp to tmp without the dead lines (through tmp.c + rename). */
static int
fdb_compact(struct combine *cb, struct fdb *b, const char *tmp)
{
    char *ctmp = NULL, *buf = NULL;
    int in = -1, out = -1, rc = -1;
    off_t pos = 0;
    size_t d = 0;

    qsort(b->b_dead, b->b_ndead, sizeof(*b->b_dead), span_cmp);
    if (asprintf(&ctmp, "%s.c", tmp) < 0) {
        ctmp = NULL;
        goto done;
    }
    if ((buf = malloc(65536)) == NULL ||
        (in = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 ||
        (out = open(ctmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0640)) < 0)
        goto fail_io;
    while (pos < b->b_pos) {
        off_t end = d < b->b_ndead ? b->b_dead[d].sp_off : b->b_pos;

        while (pos < end) {
            size_t want = (size_t)(end - pos) < 65536 ? (size_t)(end - pos)
                                                      : 65536;
            ssize_t n = pread(in, buf, want, pos);

            if (n <= 0 || write(out, buf, (size_t)n) != n) {
                if (n == 0)
                    errno = EIO;
                goto fail_io;
            }
            pos += n;
        }
        if (d < b->b_ndead)
            pos += (off_t)b->b_dead[d++].sp_len;
    }
    if (fsync(out) < 0 || close(out) < 0) {
        out = -1;
        goto fail_io;
    }
    out = -1;
    if (rename(ctmp, tmp) < 0)
        goto fail_io;
    rc = 0;
    goto done;
fail_io:
    LOGW("cannot write %s: %s", ctmp ? ctmp : tmp, strerror(errno));
    if (ctmp != NULL)
        unlink(ctmp);
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(buf);
    free(ctmp);
    return rc;
}

/*
 * --from-dir steps 4-5: every *.xml under XML_DIR, oldest first, up to
 * MAX_CLIENTS_PER_RUN well-formed ones, each moved in flight before it is
 * read; the combined document written to tmp (fsynced). *rows = Rows in
 * it. 0 or -1 (logged; tmp removed).
 */
static int
fd_build(struct combine *cb, const char *tmp, size_t *rows)
{
    struct fd_list l = {0};
    struct fd_pool *p = NULL;
    struct fdb b;
    pthread_t helper;
    size_t i;
    int fd, rc = -1, threaded = 0, picked;

    memset(&b, 0, sizeof(b));
    *rows = 0;
    if (walk(cb->cb_cfg->cc_xml_dir, "", fd_collect, &l) < 0) {
        LOGW("cannot list %s: %s", cb->cb_cfg->cc_xml_dir, strerror(errno));
        goto done;
    }
    qsort(l.fl_e, l.fl_n, sizeof(*l.fl_e), fd_cmp);
    if (mkparent(tmp) < 0 ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) <
            0 ||
        (b.b_f = fdopen(fd, "w")) == NULL) {
        LOGW("cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    if ((b.b_vbuf = malloc(65536)) != NULL)
        setvbuf(b.b_f, b.b_vbuf, _IOFBF, 65536);
    if (fputs(head, b.b_f) == EOF)
        goto fail_io;
    b.b_pos = (off_t)strlen(head);
    if (fdb_fold(cb, &b) < 0)
        goto fail_io;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        goto fail_io;
    p->p_cb = cb;
    xmlInitParser();    /* before a second thread uses libxml2 */
    if (l.fl_n > FD_CHUNK / 4 && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
        pthread_barrier_init(&p->p_start, NULL, 2) == 0) {
        if (pthread_barrier_init(&p->p_end, NULL, 2) != 0)
            pthread_barrier_destroy(&p->p_start);
        else if (pthread_create(&helper, NULL, pool_helper, p) != 0) {
            pthread_barrier_destroy(&p->p_start);
            pthread_barrier_destroy(&p->p_end);
        } else {
            threaded = 1;
        }
    }
    picked = fdb_pick(cb, &b, &l, p, threaded);
    if (threaded) {
        p->p_quit = 1;
        pthread_barrier_wait(&p->p_start);
        pthread_join(helper, NULL);
        pthread_barrier_destroy(&p->p_start);
        pthread_barrier_destroy(&p->p_end);
    }
    if (picked < 0)
        goto fail;
    if (fputs(tail, b.b_f) == EOF || fflush(b.b_f) == EOF)
        goto fail_io;
    b.b_pos += (off_t)strlen(tail);
    if (b.b_ndead > 0) {
        if (fdb_compact(cb, &b, tmp) < 0)
            goto fail;
    } else if (fsync(fileno(b.b_f)) < 0) {
        goto fail_io;
    }
    if (fclose(b.b_f) == EOF) {
        b.b_f = NULL;
        goto fail_io;
    }
    b.b_f = NULL;
    for (i = 0; i < cb->cb_n; i++)
        *rows += cb->cb_items[i].it_write;
    *rows += b.b_folded;
    cb->cb_stats->cs_folded = b.b_folded;
    rc = 0;
    goto done;
fail_io:
    LOGW("cannot write %s: %s", tmp, strerror(errno));
fail:
    unlink(tmp);
done:
    if (b.b_f != NULL)
        fclose(b.b_f);
    free(b.b_vbuf);
    free(b.b_dead);
    free(b.b_rr_out);
    strset_free(&b.b_rids);
    if (p != NULL) {
        for (i = 0; i < FD_CHUNK; i++)
            free(p->p_slot[i].sl_buf);
        sax_ctxt_free(p->p_sax);
        free(p);
    }
    for (i = 0; i < l.fl_n; i++)
        free(l.fl_e[i].fe_rel);
    free(l.fl_e);
    return rc;
}

/* ---- the previous batch --------------------------------------------- */

/* Load a previous batch document for folding. 0 (loaded or empty), -1 if
 * it is malformed (logged; nothing folded). */
static int
remote_load(struct combine *cb, const char *path, const char *what)
{
    struct remote_rows *rr = &cb->cb_rr;
    size_t n;

    remote_free(rr);
    snprintf(rr->rr_from, sizeof(rr->rr_from), "%s", what);
    if (read_file(path, &rr->rr_buf, &rr->rr_len) != 0)
        return -1;
    if (rr->rr_len == 0)
        goto bad;
    if (sax_check(rr->rr_buf, rr->rr_len, &rr->rr_sax) < 0)
        goto bad;
    n = rr->rr_sax.sx_n;
    if ((rr->rr_off = calloc(n, sizeof(size_t))) == NULL ||
        (rr->rr_rlen = calloc(n, sizeof(size_t))) == NULL ||
        row_ranges(rr->rr_buf, rr->rr_len, n, rr->rr_off, rr->rr_rlen) < 0)
        goto bad;
    return 0;
bad:
    LOGW("%s is not a well-formed batch: its Rows are not folded in", what);
    remote_free(rr);
    return -1;
}

/* ---- client_state.json ---------------------------------------------- */

static json_t *
state_load(struct combine *cb)
{
    json_error_t e;
    json_t *j;

    if (access(cb->cb_cfg->cc_state_file, F_OK) < 0)
        return json_object();
    j = json_load_file(cb->cb_cfg->cc_state_file, 0, &e);
    if (j == NULL || !json_is_object(j)) {
        LOGW("%s is not a JSON object (%s): starting a new one",
             cb->cb_cfg->cc_state_file, j ? "not an object" : e.text);
        json_decref(j);
        return json_object();
    }
    return j;
}

static int
state_save(struct combine *cb, json_t *j)
{
    char *tmp = NULL;
    int rc = -1;

    if (asprintf(&tmp, "%s.tmp.%ld", cb->cb_cfg->cc_state_file,
                 (long)getpid()) < 0)
        return -1;
    if (mkparent(tmp) < 0 ||
        json_dump_file(j, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
        rename(tmp, cb->cb_cfg->cc_state_file) < 0) {
        LOGW("cannot write %s: %s", cb->cb_cfg->cc_state_file,
             strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    free(tmp);
    return rc;
}

static int
state_set(json_t *j, const char *id, const char *status, const char *batch)
{
    json_t *o = json_object_get(j, id);

    if (o == NULL || !json_is_object(o)) {
        if ((o = json_object()) == NULL || json_object_set_new(j, id, o) < 0)
            return -1;
    }
    if (json_object_set_new(o, "status", json_string(status)) < 0)
        return -1;
    if (batch != NULL &&
        json_object_set_new(o, "last_batch", json_string(batch)) < 0)
        return -1;
    return 0;
}

/* Write client_state.json after a shipped batch: the entries of other
 * ids as they were, then one line per shipped id written directly (ids
 * are [A-Za-z0-9_-]: no escaping), so a 100,000-client batch costs no
 * JSON tree. 0 or -1 (logged). */
static int
state_write_batch(struct combine *cb)
{
    struct strset done = {0}, batch = {0};
    json_t *old = NULL, *v;
    const char *k;
    char *tmp = NULL, *val;
    FILE *f = NULL;
    size_t i, n = 0;
    int rc = -1;

    if (access(cb->cb_cfg->cc_state_file, F_OK) == 0 &&
        (old = state_load(cb)) == NULL)
        goto done;
    if (asprintf(&tmp, "%s.tmp.%ld", cb->cb_cfg->cc_state_file,
                 (long)getpid()) < 0) {
        tmp = NULL;
        goto done;
    }
    if (mkparent(tmp) < 0 || (f = fopen(tmp, "we")) == NULL)
        goto fail_io;
    fputs("{", f);
    for (i = 0; i < cb->cb_n + cb->cb_rr.rr_sax.sx_n; i++)
        if (strset_put(&batch, i < cb->cb_n
                                   ? cb->cb_items[i].it_id
                                   : cb->cb_rr.rr_sax.sx_ids[i - cb->cb_n],
                       1) < 0)
            goto done;
    json_object_foreach(old, k, v) {
        if (strset_get(&batch, k, NULL))
            continue;
        if ((val = json_dumps(v, JSON_COMPACT)) == NULL)
            goto done;
        fprintf(f, "%s\n  \"%s\": %s", n++ ? "," : "", k, val);
        free(val);
    }
    for (i = 0; i < cb->cb_n + cb->cb_rr.rr_sax.sx_n; i++) {
        const char *id = i < cb->cb_n
                             ? cb->cb_items[i].it_id
                             : cb->cb_rr.rr_sax.sx_ids[i - cb->cb_n];

        if (strset_get(&done, id, NULL))
            continue;
        if (strset_put(&done, id, 1) < 0)
            goto done;
        fprintf(f, "%s\n  \"%s\": {\"status\": \"pending_import\", "
                   "\"last_batch\": \"%s\"}",
                n++ ? "," : "", id, cb->cb_iso);
    }
    fputs("\n}\n", f);
    if (fflush(f) == EOF || ferror(f))
        goto fail_io;
    if (fclose(f) == EOF) {
        f = NULL;
        goto fail_io;
    }
    f = NULL;
    if (rename(tmp, cb->cb_cfg->cc_state_file) < 0)
        goto fail_io;
    rc = 0;
    goto done;
fail_io:
    LOGW("cannot write %s: %s", cb->cb_cfg->cc_state_file, strerror(errno));
done:
    if (f != NULL)
        fclose(f);
    if (rc < 0 && tmp != NULL)
        unlink(tmp);
    free(tmp);
    json_decref(old);
    strset_free(&done);
    strset_free(&batch);
    return rc;
}

/* ---- results of the previous batch ---------------------------------- */

static void
error_line(struct combine *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
error_line(struct combine *cb, const char *fmt, ...)
{
    char ts[32];
    struct tm tm;
    time_t now = time(NULL);
    FILE *f;
    va_list ap;

    if (mkparent(cb->cb_cfg->cc_error_log) < 0 ||
        (f = fopen(cb->cb_cfg->cc_error_log, "ae")) == NULL) {
        LOGW("cannot open %s: %s", cb->cb_cfg->cc_error_log,
             strerror(errno));
        return;
    }
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%s ", ts);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* Re-queue a failed client: a fresh outbox file from the database. */
static void
requeue(struct combine *cb, const struct store_shipped *sh)
{
    char *xml = NULL, *path = NULL;
    size_t len;
    int64_t version;

    if (store_get_xml(cb->cb_store, sh->ss_key, sh->ss_cid, &xml, &len,
                      &version) != STORE_OK)
        return;
    if (version == sh->ss_version &&
        (path = pxml_outbox_path(cb->cb_cfg->cc_xml_dir, sh->ss_key,
                                 sh->ss_cid)) != NULL &&
        pxml_write_file(path, xml, len, 0) < 0)
        LOGW("cannot re-queue %s: %s", path, strerror(errno));
    free(path);
    free(xml);
}

/* Apply the results file to the ids of the previous batch. 0 or -1. */
static int
apply_results(struct combine *cb, const char *remote_path,
              const char *results_path)
{
    char *rbuf = NULL, *rtext = NULL, *xml = NULL;
    size_t rlen, tlen, xlen;
    struct strset ok = {0};
    json_t *state = NULL;
    const char *p, *end;
    int rc = -1, in_txn = 0;

    if (read_file(results_path, &rbuf, &rlen) != 0 ||
        read_file(remote_path, &xml, &xlen) != 0) {
        LOGW("cannot read the downloaded files: %s", strerror(errno));
        goto done;
    }
    if ((rtext = combine_results_decode(rbuf, rlen, &tlen)) == NULL ||
        results_index(rtext, tlen, &ok) < 0)
        goto done;
    if ((state = state_load(cb)) == NULL)
        goto done;
    if (cb->cb_store != NULL) {
        if (store_begin(cb->cb_store) < 0)
            goto done;
        in_txn = 1;
    }
    /* every <__id> of the previous batch, loosely (it may be malformed) */
    for (p = xml, end = xml + xlen;
         (p = memmem(p, (size_t)(end - p), "<__id>", 6)) != NULL;) {
        const char *a = p + 6, *b = a;
        char id[ID_MAX];
        int good;

        while (b < end && id_char((unsigned char)*b))
            b++;
        p = b;
        if (b == a || (size_t)(b - a) >= sizeof(id) ||
            end - b < 7 || memcmp(b, "</__id>", 7) != 0)
            continue;
        memcpy(id, a, (size_t)(b - a));
        id[b - a] = '\0';
        good = strset_get(&ok, id, NULL);
        if (good) {
            cb->cb_stats->cs_imported++;
        } else {
            cb->cb_stats->cs_failed++;
            error_line(cb, "Client %s was not imported by Patriot (no '%s' "
                           "line in %s)",
                       id, PHRASE, cb->cb_cfg->cc_smb_results);
        }
        if (state_set(state, id, good ? "imported" : "failed", NULL) < 0)
            goto done;
        if (cb->cb_store != NULL) {
            struct store_shipped sh;

            switch (store_combine_set_result(cb->cb_store, id, good,
                                             cb->cb_now_ms, &sh)) {
            case STORE_OK:
                if (!good && sh.ss_changed)
                    requeue(cb, &sh);
                break;
            case STORE_NOTFOUND:
                LOGI("result for %s: not a client shipped by us", id);
                break;
            default:
                goto done;
            }
        }
    }
    if (in_txn) {
        if (store_commit(cb->cb_store) < 0)
            goto done;
        in_txn = 0;
    }
    (void)state_save(cb, state);
    LOGI("results of the previous batch: %zu imported, %zu failed",
         cb->cb_stats->cs_imported, cb->cb_stats->cs_failed);
    rc = 0;
done:
    if (in_txn)
        store_rollback(cb->cb_store);
    if (rc < 0)
        LOGW("cannot apply the import results");
    json_decref(state);
    strset_free(&ok);
    free(rbuf);
    free(rtext);
    free(xml);
    return rc;
}

/* ---- SMB ------------------------------------------------------------ */

/* "dir/clients.xml" + "clients_X.xml" -> "dir/clients_X.xml" */
static char *
sibling(const char *remote, const char *name)
{
    const char *slash = strrchr(remote, '/');
    char *p;

    if (slash == NULL)
        return strdup(name);
    if (asprintf(&p, "%.*s/%s", (int)(slash - remote), remote, name) < 0)
        return NULL;
    return p;
}

/* Download the previous batch and its results; apply or fold. 0 or -1. */
static int
smb_before(struct combine *cb, const char *rpath, const char *respath)
{
    const struct combine_cfg *c = cb->cb_cfg;
    struct smb_params sp = {
        .sp_server = c->cc_smb_server,
        .sp_port = c->cc_smb_port,
        .sp_share = c->cc_smb_share,
        .sp_user = c->cc_smb_user,
        .sp_domain = c->cc_smb_domain,
        .sp_password = cb->cb_password,
        .sp_timeout_ms = c->cc_smb_timeout_ms,
    };
    char *results = NULL, err[256];
    time_t xml_mtime = 0, res_mtime = 0;
    int rx, rr, rc = -1;

    if ((cb->cb_smb = smb_open(&sp, err, sizeof(err))) == NULL) {
        LOGW("SMB: %s", err);
        return -1;
    }
    rx = smb_download(cb->cb_smb, c->cc_smb_remote_path, rpath, &xml_mtime);
    if (rx < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto done;
    }
    if ((results = sibling(c->cc_smb_remote_path, c->cc_smb_results)) ==
        NULL)
        goto done;
    rr = smb_download(cb->cb_smb, results, respath, &res_mtime);
    if (rr < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto done;
    }
    if (rx == 1) {
        LOGI("no %s on the share", c->cc_smb_remote_path);
    } else if (rr == 0 && res_mtime >= xml_mtime) {
        if (apply_results(cb, rpath, respath) < 0)
            goto done;
    } else {
        LOGI("%s on the share has no results yet: its Rows are folded into "
             "this batch",
             c->cc_smb_remote_path);
        (void)remote_load(cb, rpath, "the share's clients.xml");
    }
    rc = 0;
done:
    free(results);
    unlink(rpath);
    unlink(respath);
    return rc;
}

/* Upload tmp to a temporary name, rotate clients.xml, rename. 0 or -1. */
static int
smb_ship(struct combine *cb, const char *local)
{
    const char *remote = cb->cb_cfg->cc_smb_remote_path;
    char *tmpname = NULL, *rot = NULL, name[96];
    time_t mt;
    int rc = -1, i, rotated = 0;

    if (asprintf(&tmpname, "%s.uploading", remote) < 0)
        goto done;
    (void)smb_unlink(cb->cb_smb, tmpname);
    if (smb_upload(cb->cb_smb, local, tmpname) < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        (void)smb_unlink(cb->cb_smb, tmpname);
        goto done;
    }
    if (stopping(cb))
        goto cleanup;
    switch (smb_stat(cb->cb_smb, remote, &mt, NULL)) {
    case 0:
        for (i = 0; i < 100; i++) {
            const char *base = strrchr(remote, '/');
            size_t bl;

            base = base ? base + 1 : remote;
            bl = strlen(base) - 4;      /* ".xml" checked at config */
            if (i == 0)
                snprintf(name, sizeof(name), "%.*s_%s.xml", (int)bl, base,
                         cb->cb_stamp);
            else
                snprintf(name, sizeof(name), "%.*s_%s_%d.xml", (int)bl,
                         base, cb->cb_stamp, i);
            free(rot);
            if ((rot = sibling(remote, name)) == NULL)
                goto cleanup;
            if (smb_stat(cb->cb_smb, rot, NULL, NULL) == 1)
                break;
        }
        if (smb_rename(cb->cb_smb, remote, rot) < 0) {
            LOGW("SMB: rotate: %s", smb_error(cb->cb_smb));
            goto cleanup;
        }
        rotated = 1;
        LOGI("rotated %s to %s", remote, rot);
        break;
    case 1:
        break;
    default:
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto cleanup;
    }
    if (smb_rename(cb->cb_smb, tmpname, remote) < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        if (rotated && smb_rename(cb->cb_smb, rot, remote) < 0)
            LOGW("SMB: cannot restore %s from %s", remote, rot);
        goto cleanup;
    }
    rc = 0;
    goto done;
cleanup:
    (void)smb_unlink(cb->cb_smb, tmpname);
done:
    free(tmpname);
    free(rot);
    return rc;
}

/* ---- marking -------------------------------------------------------- */

/*
 * Inside the mark transaction (the writer lock: nothing changes): 1 if the
 * client's XML now is the one whose Row this run wrote at it->it_out of
 * the combined file fd (same version, same length, same Row bytes), 0 if
 * not, -1 on error. The version alone is not enough: a client deleted and
 * created again starts at version 1 again.
 */
static int
same_as_written(struct combine *cb, int fd, struct item *it, const char *key)
{
    char *xml = NULL, *row = NULL;
    size_t len;
    int64_t version;
    int rc;

    rc = store_get_xml(cb->cb_store, key, it->it_cid, &xml, &len, &version);
    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc != STORE_OK)
        return -1;
    rc = 0;
    if (version != it->it_version)
        goto done;      /* changed meanwhile: the usual case */
    if (len != it->it_xlen || it->it_off + it->it_len > len)
        goto recreated;
    rc = -1;
    if ((row = malloc(it->it_len)) == NULL)
        goto done;
    if (pread(fd, row, it->it_len, it->it_out) != (ssize_t)it->it_len) {
        LOGW("cannot read back the Row of %s: %s", it->it_rel,
             strerror(errno ? errno : EIO));
        goto done;
    }
    if (memcmp(row, xml + it->it_off, it->it_len) == 0) {
        rc = 1;
        goto done;
    }
recreated:
    LOGI("%s was deleted and created again during the run (same version, "
         "other XML): not marked, it ships next run",
         it->it_rel);
    rc = 0;
done:
    free(row);
    free(xml);
    return rc;
}

static int
mark_db(struct combine *cb, const char *final)
{
    size_t i;
    int changed, fd;

    if ((fd = open(final, O_RDONLY | O_CLOEXEC)) < 0) {
        LOGW("cannot open %s: %s", final, strerror(errno));
        return -1;
    }
    if (store_begin(cb->cb_store) < 0) {
        close(fd);
        return -1;
    }
    for (i = 0; i < cb->cb_n; i++) {
        struct item *it = &cb->cb_items[i];
        char key[128];

        if (!it->it_write || item_key(it, key, sizeof(key)) < 0)
            continue;   /* no Row of its own in the file: stays waiting */
        switch (same_as_written(cb, fd, it, key)) {
        case 1:
            break;
        case 0:
            continue;   /* changed, or deleted and created again */
        default:
            goto fail;
        }
        if (store_combine_mark_shipped(cb->cb_store, key, it->it_cid,
                                       it->it_version, it->it_id,
                                       cb->cb_batch, cb->cb_now_ms,
                                       &changed) != STORE_OK)
            goto fail;
        it->it_marked = changed != 0;
        cb->cb_stats->cs_marked += it->it_marked;
    }
    for (i = 0; i < cb->cb_rr.rr_sax.sx_n; i++) {
        const char *id = cb->cb_rr.rr_sax.sx_ids[i];

        if (!strset_get(&cb->cb_ids, id, NULL) &&
            store_combine_refold(cb->cb_store, id, cb->cb_batch,
                                 cb->cb_now_ms) == STORE_ERROR)
            goto fail;
    }
    if (store_combine_meta_set(cb->cb_store, "combine.last_batch",
                               cb->cb_batch) != STORE_OK ||
        store_commit(cb->cb_store) < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    LOGW("cannot mark the batch shipped: %s", store_errmsg(cb->cb_store));
    store_rollback(cb->cb_store);
    close(fd);
    for (i = 0; i < cb->cb_n; i++)
        cb->cb_items[i].it_marked = 0;
    cb->cb_stats->cs_marked = 0;
    return -1;
}

static void
meta_result(struct combine *cb, const char *result)
{
    char buf[64];

    if (cb->cb_store == NULL || (cb->cb_flags & COMBINE_DRY_RUN))
        return;
    snprintf(buf, sizeof(buf), "%lld", (long long)cb->cb_now_ms);
    (void)store_combine_meta_set(cb->cb_store, "combine.last_run", buf);
    (void)store_combine_meta_set(cb->cb_store, "combine.last_result",
                                 result);
    if (strcmp(result, "failed") == 0)
        (void)store_combine_meta_set(cb->cb_store, "combine.last_error",
                                     cb->cb_err);
}

/* ---- removing shipped files (--from-dir) ---------------------------- */

struct unlinker {
    struct combine *u_cb;
    size_t u_from;      /* every second item from here */
};

/* Remove the in-flight files of every second item; it_moved stays set
 * on a failure (no logging: any thread). */
static void *
unlink_half(void *arg)
{
    struct unlinker *u = arg;
    struct combine *cb = u->u_cb;
    size_t i;

    for (i = u->u_from; i < cb->cb_n; i += 2) {
        struct item *it = &cb->cb_items[i];
        char *in;

        if (!it->it_moved || (in = inflight_path(cb, it->it_rel)) == NULL)
            continue;
        if (unlink(in) == 0 || errno == ENOENT)
            it->it_moved = 0;
        free(in);
    }
    return NULL;
}

/* --from-dir, after the batch is recorded: remove the in-flight files of
 * every item, on two threads (a second thread halves the time of 100,000
 * unlinks on 2 cores). A file that cannot be removed stays moved: the
 * caller's loop tries again and logs it. */
static void
shipped_unlink(struct combine *cb)
{
    struct unlinker a = {cb, 0}, b = {cb, 1};
    pthread_t t;

    if (cb->cb_n < 2 * FD_CHUNK || sysconf(_SC_NPROCESSORS_ONLN) < 2 ||
        pthread_create(&t, NULL, unlink_half, &b) != 0)
        return;
    (void)unlink_half(&a);
    pthread_join(t, NULL);
}

/* ---- one run -------------------------------------------------------- */

enum combine_rc
combine_run(struct combine *cb, struct combine_stats *stats)
{
    const struct combine_cfg *c = cb->cb_cfg;
    struct combine_stats dummy;
    char *final = NULL, *tmp = NULL, *rpath = NULL, *respath = NULL;
    int dry = (cb->cb_flags & COMBINE_DRY_RUN) != 0;
    int from_dir = (cb->cb_flags & COMBINE_FROM_DIR) != 0;
    int in_snap = 0;
    enum combine_rc rc = COMBINE_FAILED;
    size_t i, rows;
    struct tm tm;
    time_t now;

    if (stats == NULL)
        stats = &dummy;
    memset(stats, 0, sizeof(*stats));
    cb->cb_stats = stats;
    cb->cb_err[0] = '\0';
    now = time(NULL);
    cb->cb_now_ms = (int64_t)now * 1000;
    gmtime_r(&now, &tm);
    strftime(cb->cb_batch, sizeof(cb->cb_batch), "%Y%m%dT%H%M%SZ", &tm);
    localtime_r(&now, &tm);
    strftime(cb->cb_stamp, sizeof(cb->cb_stamp), "%Y%m%d_%H%M%S", &tm);
    strftime(cb->cb_iso, sizeof(cb->cb_iso), "%Y-%m-%dT%H:%M:%S", &tm);

    if ((final = path_join(c->cc_ready_dir, c->cc_combined_name)) == NULL ||
        asprintf(&tmp, "%s/.%s.tmp.%ld", c->cc_ready_dir,
                 c->cc_combined_name, (long)getpid()) < 0 ||
        asprintf(&rpath, "%s/.remote_%s", c->cc_ready_dir,
                 c->cc_combined_name) < 0 ||
        asprintf(&respath, "%s/.remote_results.txt", c->cc_ready_dir) < 0) {
        tmp = rpath = respath = NULL;
        LOGW("out of memory");
        goto fail;
    }
    if (mkparent(tmp) < 0) {
        LOGW("cannot create READY_DIR %s: %s", c->cc_ready_dir,
             strerror(errno));
        goto fail;
    }

    /* 1. in-flight files of a crashed run go back */
    if (!dry)
        (void)walk(cb->cb_inflight, "", recover_one, cb);

    /* 2. the previous batch: results or fold */
    if (c->cc_smb_enabled && !dry) {
        if (smb_before(cb, rpath, respath) < 0)
            goto fail;
    } else if (!c->cc_smb_enabled && access(final, F_OK) == 0) {
        /* nobody carried the last clients.xml: keep its Rows */
        if (remote_load(cb, final, "the uncarried local clients.xml") == 0)
            LOGI("%s was not carried away: its %zu Rows are kept in the "
                 "new batch",
                 final, cb->cb_rr.rr_sax.sx_n);
    }
    if (stopping(cb))
        goto stopped;

    /* 3-4. reconcile, pick (--from-dir: and 5, in one pass) */
    if (from_dir) {
        if (fd_build(cb, tmp, &rows) < 0)
            goto fail;
    } else {
        if (store_combine_foreach_waiting(cb->cb_store, 0, reconcile_one,
                                          cb) != 0) {
            LOGW("reconcile failed: %s", store_errmsg(cb->cb_store));
            goto fail;
        }
        if (store_combine_snapshot_begin(cb->cb_store) < 0)
            goto fail;
        in_snap = 1;
        if (store_combine_foreach_waiting(cb->cb_store, c->cc_max_clients,
                                          pick_one, cb) != 0) {
            LOGW("cannot read the waiting clients: %s",
                 store_errmsg(cb->cb_store));
            goto fail;
        }
        for (i = 0; i < cb->cb_n && !dry; i++)
            if (item_move(cb, &cb->cb_items[i]) < 0)
                goto fail;
    }
    stats->cs_local = cb->cb_n;
    for (i = 0; i < cb->cb_n && !from_dir; i++)
        if (strset_put(&cb->cb_ids, cb->cb_items[i].it_id, i) < 0)
            goto fail;
    for (i = 0; i < cb->cb_n && !from_dir; i++) {
        size_t last = i;

        (void)strset_get(&cb->cb_ids, cb->cb_items[i].it_id, &last);
        cb->cb_items[i].it_write = last == i;
    }
    if (cb->cb_n == 0) {
        LOGI("nothing waiting to ship");
        rc = COMBINE_NOTHING;
        goto out;
    }
    if (stopping(cb))
        goto stopped;

    /* 5. clients.xml */
    if (!from_dir && write_combined(cb, tmp, &rows) < 0)
        goto fail;
    if (in_snap) {
        store_combine_snapshot_end(cb->cb_store);
        in_snap = 0;
    }
    if (rename(tmp, final) < 0) {
        LOGW("cannot rename %s to %s: %s", tmp, final, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    stats->cs_rows = rows;
    snprintf(stats->cs_batch, sizeof(stats->cs_batch), "%s", cb->cb_batch);
    LOGI("%s: %zu Rows (%zu picked, %zu folded in, %zu skipped)%s", final,
         rows, cb->cb_n, stats->cs_folded, stats->cs_skipped,
         dry ? " (dry run: nothing uploaded or marked)" : "");
    if (dry) {
        rc = COMBINE_OK;
        goto out;
    }
    if (stopping(cb))
        goto stopped;

    /* 6. the share */
    if (c->cc_smb_enabled) {
        if (smb_ship(cb, final) < 0)
            goto fail;
        LOGI("uploaded batch %s to %s (%zu Rows)", cb->cb_batch,
             c->cc_smb_remote_path, rows);
    }

    /* 7. record */
    if (cb->cb_store != NULL && mark_db(cb, final) < 0)
        goto fail_shipped;
    (void)state_write_batch(cb);
    if (cb->cb_store == NULL)
        shipped_unlink(cb);     /* --from-dir: every file shipped */
    for (i = 0; i < cb->cb_n; i++) {
        struct item *it = &cb->cb_items[i];
        char *in;

        if (cb->cb_store != NULL && !it->it_marked) {
            item_put_back(cb, it);  /* changed meanwhile: still waiting */
            continue;
        }
        if (it->it_moved) {
            if ((in = inflight_path(cb, it->it_rel)) != NULL &&
                unlink(in) < 0)
                LOGW("cannot remove %s: %s", in, strerror(errno));
            free(in);
            it->it_moved = 0;
        }
        if (cb->cb_store != NULL)
            drop_shipped_copy(cb, it);
    }
    LOGI("batch %s done: %zu clients marked shipped", cb->cb_batch,
         cb->cb_store ? stats->cs_marked : cb->cb_n);
    rc = COMBINE_OK;
    goto out;

fail_shipped:
    LOGW("batch %s reached the share but could not be recorded: its "
         "clients stay waiting and will ship again",
         cb->cb_batch);
fail:
    rc = COMBINE_FAILED;
    goto out;
stopped:
    LOGI("stop requested: run abandoned, nothing marked");
    rc = COMBINE_STOPPED;
out:
    if (in_snap)
        store_combine_snapshot_end(cb->cb_store);
    if (rc != COMBINE_OK && tmp != NULL)
        unlink(tmp);    /* not renamed (ENOENT if it was) */
    if (rc != COMBINE_OK && !dry)
        items_put_back(cb);
    if (rc == COMBINE_FAILED) {
        snprintf(stats->cs_error, sizeof(stats->cs_error), "%s",
                 cb->cb_err[0] ? cb->cb_err : "failed");
        clog_(cb, 0, "run failed (%s): nothing marked, files put back, "
              "the batch is left for the next run", stats->cs_error);
            }
    meta_result(cb, rc == COMBINE_OK      ? "ok"
                    : rc == COMBINE_NOTHING ? "nothing"
                    : rc == COMBINE_STOPPED ? "stopped"
                                            : "failed");
    smb_close(cb->cb_smb);
    cb->cb_smb = NULL;
    remote_free(&cb->cb_rr);
    items_free(cb);
    free(final);
    free(tmp);
    free(rpath);
    free(respath);
    cb->cb_stats = NULL;
    return rc;
}

/* ---- status --------------------------------------------------------- */

int
combine_status(const struct combine_cfg *cfg, FILE *out)
{
    char err[256], v[600];
    struct store *s;
    int64_t n[4];
    static const char *keys[] = {"combine.last_run", "combine.last_result",
                                 "combine.last_batch", "combine.last_error"};
    size_t i;

    if ((s = store_open(cfg->cc_data_file, STORE_READONLY, err,
                        sizeof(err))) == NULL) {
        fprintf(out, "cannot open %s: %s\n", cfg->cc_data_file, err);
        return -1;
    }
    if (store_combine_counts(s, n) < 0) {
        fprintf(out, "cannot read %s\n", cfg->cc_data_file);
        store_close(s);
        return -1;
    }
    fprintf(out, "pending  %lld\nshipped  %lld\nimported %lld\nfailed   %lld\n",
            (long long)n[0], (long long)n[1], (long long)n[2],
            (long long)n[3]);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (store_combine_meta_get(s, keys[i], v, sizeof(v)) != STORE_OK)
            snprintf(v, sizeof(v), "-");
        if (i == 0 && strcmp(v, "-") != 0) {
            time_t t = (time_t)(strtoll(v, NULL, 10) / 1000);
            struct tm tm;

            localtime_r(&t, &tm);
            strftime(v, sizeof(v), "%Y-%m-%d %H:%M:%S", &tm);
        }
        fprintf(out, "%-20s %s\n", keys[i] + 8, v);
    }
    store_close(s);
    return 0;
}
