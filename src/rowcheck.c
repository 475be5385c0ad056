/*
 * rowcheck.c - checking documents (SAX, no tree): a per-client document
 * or a combined batch is checked the way the writer makes it, without
 * building a tree (see rowcheck.h): with libxml2's SAX parser (moved out
 * of combine.c as it was), and a per-client document by hand (rowcheck_doc,
 * at the end).
 */
#include "rowcheck.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model.h"

int
rowcheck_id_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int
is_name(const xmlChar *a, const char *b)
{
    return strcmp((const char *)a, b) == 0;
}

static void
sx_bad(void *ctx)
{
    ((struct rowcheck_state *)ctx)->sx_bad = 1;
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
    struct rowcheck_state *st = ctx;

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
    struct rowcheck_state *st = ctx;

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
            if (st->sx_on_id != NULL) {
                if (st->sx_on_id(st->sx_arg, st->sx_id) != 0)
                    st->sx_bad = 1;
                else
                    st->sx_n++;
                goto out;
            }
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
    struct rowcheck_state *st = ctx;
    int i;

    if (!st->sx_in_id)
        return;
    for (i = 0; i < len; i++) {
        if (!rowcheck_id_char(ch[i]) ||
            st->sx_idlen + 1 >= sizeof(st->sx_id)) {
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

void
rowcheck_state_free(struct rowcheck_state *st)
{
    size_t i;

    for (i = 0; st->sx_ids != NULL && i < st->sx_n; i++)
        free(st->sx_ids[i]);
    free(st->sx_ids);
    st->sx_ids = NULL;
    st->sx_n = st->sx_cap = 0;
}

/* The high bit of each byte of w (every byte below 0x80) that is 0. */
static uint64_t
zero_bytes(uint64_t w)
{
    return ~(w + 0x7F7F7F7F7F7F7F7FULL) & 0x8080808080808080ULL;
}

/*
 * model_text_ok with a fast path: 8 bytes at a time while none is below
 * 0x20 or above 0x7F (the bulk of a client file), or while all are below
 * 0x80 and those below 0x20 are TAB, LF or CR; any other character
 * is checked alone (TAB, LF, CR and printable ASCII inline, others by
 * model_text_ok), so the verdict is exactly model_text_ok's.
 * (w - 0x20 in every byte) sets a byte's high bit when the byte is below
 * 0x20; a borrow can only set more (a false alarm takes the slow path).
 */
int
rowcheck_text_ok(const char *s, size_t n)
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
            /* ASCII with a control byte: legal if each is TAB, LF or CR
             * (the line ends and indents of every document). The sums
             * cannot carry out of a byte below 0x80: exact per byte. */
            if ((w & high) == 0 &&
                (~(w + 0x6060606060606060ULL) & high &
                 ~(zero_bytes(w ^ 0x0909090909090909ULL) |
                   zero_bytes(w ^ 0x0A0A0A0A0A0A0A0AULL) |
                   zero_bytes(w ^ 0x0D0D0D0D0D0D0D0DULL))) == 0) {
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

xmlParserCtxtPtr
rowcheck_ctxt_new(struct rowcheck_state *st)
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

void
rowcheck_ctxt_free(xmlParserCtxtPtr ctxt)
{
    if (ctxt == NULL)
        return;
    if (ctxt->myDoc != NULL)    /* a DOCTYPE makes libxml2 start a doc */
        xmlFreeDoc(ctxt->myDoc);
    ctxt->myDoc = NULL;
    xmlFreeParserCtxt(ctxt);
}

/* SAX-check buf; fills st->sx_ids. *reuse (may be NULL) is a context kept
 * between calls (NULL at first; free with rowcheck_ctxt_free). 0 if
 * well-formed and as the writer makes it, -1 otherwise (st freed by the
 * caller with rowcheck_state_free). */
static int
sax_check_ctxt(const char *buf, size_t len, struct rowcheck_state *st,
               xmlParserCtxtPtr *reuse)
{
    xmlParserCtxtPtr ctxt = reuse != NULL ? *reuse : NULL;
    size_t first = len < 4 ? len : 4, off;
    int wf;

    memset(st, 0, sizeof(*st));
    if (len > INT32_MAX || !rowcheck_text_ok(buf, len))
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
            rowcheck_ctxt_free(ctxt);
            ctxt = *reuse = NULL;
        } else {
            ctxt->userData = st;
        }
    }
    if (ctxt == NULL) {
        if ((ctxt = rowcheck_ctxt_new(st)) == NULL)
            return -1;
        first = 0;
    }
    /* in pieces: libxml2 refuses one chunk over 10 MB ("Huge input
     * lookup") without XML_PARSE_HUGE, which a batch of 4,000 Rows is */
    for (off = first;;) {
        size_t n = len - off < ROWCHECK_PIECE ? len - off : ROWCHECK_PIECE;
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
        rowcheck_ctxt_free(ctxt);
    if (!wf || st->sx_bad || st->sx_n == 0)
        return -1;
    return 0;
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

int
rowcheck_row_ctxt(const char *buf, size_t len, size_t *off, size_t *rlen,
                  char *id, size_t idlen, xmlParserCtxtPtr *reuse)
{
    struct rowcheck_state st;
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
    rowcheck_state_free(&st);
    return rc;
}

int
combine_row_check(const char *buf, size_t len, size_t *off, size_t *rlen,
                  char *id, size_t idlen)
{
    return rowcheck_row_ctxt(buf, len, off, rlen, id, idlen, NULL);
}

/* ---- the per-client document, checked by hand ----------------------- */

/*
 * rowcheck_doc reads the subset of XML 1.0 that the SAX check above
 * accepts in one pass over the bytes, without libxml2: the same verdict,
 * id and Row range, except where it is deliberately stricter (returns
 * RC_STRICT; fuzz_rowcheck holds it to that, against the SAX check).
 * The text has been checked by rowcheck_text_ok first, so every byte
 * sequence is a legal UTF-8 XML character.
 */
#define RC_STRICT (-2)
#define NAME_MAX_LEN 50000      /* libxml2's XML_MAX_NAME_LENGTH */

struct dscan {
    const unsigned char *d_p, *d_end;
    size_t *d_open;             /* the open elements: offset, length */
    size_t d_depth, d_cap;
    size_t d_small[2 * 16];     /* d_open up to 16 deep */
};

static int
d_is_s(int c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static void
d_skip_s(struct dscan *d)
{
    while (d->d_p < d->d_end && d_is_s(*d->d_p))
        d->d_p++;
}

/* The code point at p (legal UTF-8: rowcheck_text_ok), its length in *l. */
static uint32_t
d_utf8(const unsigned char *p, size_t *l)
{
    if (p[0] < 0x80) {
        *l = 1;
        return p[0];
    }
    if (p[0] < 0xE0) {
        *l = 2;
        return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    }
    if (p[0] < 0xF0) {
        *l = 3;
        return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 |
               (p[2] & 0x3F);
    }
    *l = 4;
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
           (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

/* XML 1.0 fifth edition NameStartChar, as libxml2 reads it, ':' aside. */
static int
d_name_start(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) ||
           (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
           (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) ||
           (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
           (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
           (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

static int
d_name_char(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    return d_name_start(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) ||
           (c >= 0x203F && c <= 0x2040);
}

/* ASCII bytes by class, for the loops that run over every byte:
 * D_NAME a NameChar (d_name_char), D_STOP what ends character data in
 * d_scan ('<', '&', ']'). */
enum { D_NAME = 1, D_STOP = 2 };
static const unsigned char d_class[128] = {
    ['-'] = D_NAME, ['.'] = D_NAME, ['_'] = D_NAME,
    ['0'] = D_NAME, ['1'] = D_NAME, ['2'] = D_NAME, ['3'] = D_NAME,
    ['4'] = D_NAME, ['5'] = D_NAME, ['6'] = D_NAME, ['7'] = D_NAME,
    ['8'] = D_NAME, ['9'] = D_NAME,
    ['A'] = D_NAME, ['B'] = D_NAME, ['C'] = D_NAME, ['D'] = D_NAME,
    ['E'] = D_NAME, ['F'] = D_NAME, ['G'] = D_NAME, ['H'] = D_NAME,
    ['I'] = D_NAME, ['J'] = D_NAME, ['K'] = D_NAME, ['L'] = D_NAME,
    ['M'] = D_NAME, ['N'] = D_NAME, ['O'] = D_NAME, ['P'] = D_NAME,
    ['Q'] = D_NAME, ['R'] = D_NAME, ['S'] = D_NAME, ['T'] = D_NAME,
    ['U'] = D_NAME, ['V'] = D_NAME, ['W'] = D_NAME, ['X'] = D_NAME,
    ['Y'] = D_NAME, ['Z'] = D_NAME,
    ['a'] = D_NAME, ['b'] = D_NAME, ['c'] = D_NAME, ['d'] = D_NAME,
    ['e'] = D_NAME, ['f'] = D_NAME, ['g'] = D_NAME, ['h'] = D_NAME,
    ['i'] = D_NAME, ['j'] = D_NAME, ['k'] = D_NAME, ['l'] = D_NAME,
    ['m'] = D_NAME, ['n'] = D_NAME, ['o'] = D_NAME, ['p'] = D_NAME,
    ['q'] = D_NAME, ['r'] = D_NAME, ['s'] = D_NAME, ['t'] = D_NAME,
    ['u'] = D_NAME, ['v'] = D_NAME, ['w'] = D_NAME, ['x'] = D_NAME,
    ['y'] = D_NAME, ['z'] = D_NAME,
    ['<'] = D_STOP, ['&'] = D_STOP, [']'] = D_STOP,
};

/* A Name at d_p: its length in bytes (d_p moved past it), 0 if none (not
 * moved), RC_STRICT on a ':' (a namespace prefix: never written, and
 * libxml2 takes some forms of it), -1 when longer than libxml2 allows. */
static long
d_name(struct dscan *d)
{
    const unsigned char *s = d->d_p, *p = s;
    size_t l;
    uint32_t c;

    if (p == d->d_end)
        return 0;
    c = d_utf8(p, &l);
    if (c == ':')
        return RC_STRICT;
    if (!d_name_start(c))
        return 0;
    for (p += l; p < d->d_end; p += l) {
        if (*p < 0x80) {        /* the usual case: ASCII */
            l = 1;
            if (d_class[*p] & D_NAME)
                continue;
            if (*p == ':')
                return RC_STRICT;
            break;
        }
        if (!d_name_char(d_utf8(p, &l)))
            break;
    }
    if ((size_t)(p - s) > NAME_MAX_LEN)
        return -1;
    d->d_p = p;
    return (long)(p - s);
}

/* Literal lit at d_p: moved past it, 1; else 0. */
static int
d_lit(struct dscan *d, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(d->d_end - d->d_p) < n || memcmp(d->d_p, lit, n) != 0)
        return 0;
    d->d_p += n;
    return 1;
}

/* S? '=' S? quote, the quote in *q. 0 or -1. */
static int
d_eq_quote(struct dscan *d, unsigned char *q)
{
    d_skip_s(d);
    if (!d_lit(d, "="))
        return -1;
    d_skip_s(d);
    if (d->d_p == d->d_end || (*d->d_p != '"' && *d->d_p != '\''))
        return -1;
    *q = *d->d_p++;
    return 0;
}

/*
 * The XML declaration after "<?xml" and a blank, as libxml2 2.9 reads it:
 * version "1." digits (1.0, or 1.x read as 1.0); then, after a blank,
 * encoding and standalone. An encoding other than UTF-8 is RC_STRICT: the
 * Row's bytes are copied into a UTF-8 file. 0, -1 or RC_STRICT.
 */
static int
d_decl(struct dscan *d)
{
    unsigned char q;
    const unsigned char *v;
    int strict = 0;

    d_skip_s(d);
    if (!d_lit(d, "version") || d_eq_quote(d, &q) < 0)
        return -1;
    if (!d_lit(d, "1."))
        return -1;
    while (d->d_p < d->d_end && *d->d_p >= '0' && *d->d_p <= '9')
        d->d_p++;
    if (d->d_p == d->d_end || *d->d_p++ != q)
        return -1;
    if (d->d_p < d->d_end && d_is_s(*d->d_p)) {
        d_skip_s(d);
        if (d_lit(d, "encoding")) {
            if (d_eq_quote(d, &q) < 0)
                return -1;
            v = d->d_p;
            if (v == d->d_end ||
                !((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z')))
                return -1;
            while (d->d_p < d->d_end &&
                   ((*d->d_p >= 'a' && *d->d_p <= 'z') ||
                    (*d->d_p >= 'A' && *d->d_p <= 'Z') ||
                    (*d->d_p >= '0' && *d->d_p <= '9') || *d->d_p == '.' ||
                    *d->d_p == '_' || *d->d_p == '-'))
                d->d_p++;
            if (d->d_p == d->d_end || *d->d_p != q)
                return -1;
            if (!((d->d_p - v == 5 && strncasecmp((const char *)v, "UTF-8",
                                                  5) == 0) ||
                  (d->d_p - v == 4 &&
                   strncasecmp((const char *)v, "UTF8", 4) == 0)))
                strict = 1;
            d->d_p++;
            d_skip_s(d);    /* libxml2 needs no blank after UTF-8's */
        }
        if (d_lit(d, "standalone")) {
            if (d_eq_quote(d, &q) < 0)
                return -1;
            if (!d_lit(d, "yes") && !d_lit(d, "no"))
                return -1;
            if (d->d_p == d->d_end || *d->d_p++ != q)
                return -1;
            d_skip_s(d);
        }
    }
    if (!d_lit(d, "?>"))
        return -1;
    return strict ? RC_STRICT : 0;
}

/* A reference after '&': the character it stands for in *c. 0 or -1. */
static int
d_ref(struct dscan *d, uint32_t *c)
{
    static const struct {
        const char *name;
        char c;
    } pre[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"apos;", '\''},
               {"quot;", '"'}};
    uint32_t v = 0;
    size_t i;

    if (d_lit(d, "#x")) {
        while (d->d_p < d->d_end && *d->d_p != ';') {
            int h = *d->d_p;

            if (h >= '0' && h <= '9')
                h -= '0';
            else if (h >= 'a' && h <= 'f')
                h -= 'a' - 10;
            else if (h >= 'A' && h <= 'F')
                h -= 'A' - 10;
            else
                return -1;
            v = v > 0x110000 ? 0x110000 : v * 16 + (uint32_t)h;
            d->d_p++;
        }
    } else if (d_lit(d, "#")) {
        while (d->d_p < d->d_end && *d->d_p != ';') {
            if (*d->d_p < '0' || *d->d_p > '9')
                return -1;
            v = v > 0x110000 ? 0x110000 : v * 10 + (uint32_t)(*d->d_p - '0');
            d->d_p++;
        }
    } else {
        for (i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
            if (d_lit(d, pre[i].name)) {
                *c = (uint32_t)pre[i].c;
                return 0;
            }
        return -1;      /* no entity is declared */
    }
    if (d->d_p == d->d_end)
        return -1;
    d->d_p++;           /* ';' */
    if (!(v == 0x9 || v == 0xA || v == 0xD || (v >= 0x20 && v <= 0xD7FF) ||
          (v >= 0xE000 && v <= 0xFFFD) || (v >= 0x10000 && v <= 0x10FFFF)))
        return -1;
    *c = v;
    return 0;
}

/* Push an open element (offset, length of its name). 0 or -1. */
static int
d_push(struct dscan *d, const unsigned char *base, const unsigned char *name,
       size_t len)
{
    if (d->d_depth == d->d_cap) {
        size_t cap = d->d_cap * 2;
        size_t *o = malloc(cap * 2 * sizeof(*o));

        if (o == NULL)
            return -1;
        memcpy(o, d->d_open, d->d_cap * 2 * sizeof(*o));
        if (d->d_open != d->d_small)
            free(d->d_open);
        d->d_open = o;
        d->d_cap = cap;
    }
    d->d_open[2 * d->d_depth] = (size_t)(name - base);
    d->d_open[2 * d->d_depth + 1] = len;
    d->d_depth++;
    return 0;
}

/* The scan proper (see rowcheck_doc); d->d_open freed by the caller. */
static int
d_scan(struct dscan *d, const unsigned char *base, size_t *off, size_t *rlen,
       char *id, size_t idlen)
{
    const unsigned char *name, *p;
    size_t nrows = 0, ilen = 0, nl;
    int in_id = 0, has_id = 0, root_done = 0, rc;
    long n;
    uint32_t c;

    (void)d_lit(d, "\xEF\xBB\xBF");     /* a byte-order mark */
    if ((size_t)(d->d_end - d->d_p) >= 6 && memcmp(d->d_p, "<?xml", 5) == 0 &&
        d_is_s(d->d_p[5])) {
        d->d_p += 6;
        if ((rc = d_decl(d)) != 0)
            return rc;
    }
    for (;;) {
        /* character data up to the next markup */
        p = d->d_p;
        if (d->d_depth == 0) {          /* outside the root: blanks */
            d_skip_s(d);
            if (d->d_p == d->d_end)
                break;
            if (*d->d_p != '<' || root_done)
                return -1;
        } else if (in_id) {
            while (p < d->d_end && *p != '<') {
                if (*p == '&') {
                    d->d_p = p + 1;
                    if (d_ref(d, &c) < 0)
                        return -1;
                    p = d->d_p;
                } else {
                    c = *p++;
                }
                if (c >= 0x80 || !rowcheck_id_char((int)c) || ilen + 1 >= idlen ||
                    ilen + 1 >= ROWCHECK_ID_MAX)
                    return -1;
                id[ilen++] = (char)c;
            }
            d->d_p = p;
        } else {
            for (;;) {
                while (p < d->d_end &&
                       (*p >= 0x80 || !(d_class[*p] & D_STOP)))
                    p++;
                if (p == d->d_end || *p == '<')
                    break;
                if (*p == ']') {
                    if (d->d_end - p >= 3 && p[1] == ']' && p[2] == '>')
                        return -1;
                    p++;
                    continue;
                }
                d->d_p = p + 1;
                if (d_ref(d, &c) < 0)
                    return -1;
                p = d->d_p;
            }
            d->d_p = p;
        }
        if (d->d_p == d->d_end)
            return -1;  /* inside the root */
        /* markup: '<' at d_p */
        p = d->d_p++;
        if (d->d_p < d->d_end && *d->d_p == '/') {      /* end tag */
            d->d_p++;
            name = d->d_p;
            if (d->d_depth == 0)
                return -1;
            nl = d->d_open[2 * (d->d_depth - 1) + 1];
            if ((size_t)(d->d_end - name) > nl &&
                memcmp(name, base + d->d_open[2 * (d->d_depth - 1)], nl) ==
                    0 &&
                name[nl] < 0x80 && !(d_class[name[nl]] & D_NAME) &&
                name[nl] != ':') {
                /* the usual case: the open element's name, then an ASCII
                 * byte that ends a Name (what d_name finds, read once) */
                d->d_p += nl;
            } else {
                if ((n = d_name(d)) <= 0)
                    return n == RC_STRICT ? RC_STRICT : -1;
                if ((size_t)n != nl ||
                    memcmp(name, base + d->d_open[2 * (d->d_depth - 1)],
                           nl) != 0)
                    return -1;
            }
            if (d->d_depth == 2 && d->d_p < d->d_end && *d->d_p != '>')
                return -1;      /* "</Row>" exactly: copied by bytes */
            d_skip_s(d);
            if (!d_lit(d, ">"))
                return -1;
            if (d->d_depth == 3 && in_id) {
                if (ilen == 0)
                    return -1;
                in_id = 0;
                has_id = 1;
            } else if (d->d_depth == 2) {
                if (!has_id)
                    return -1;
                *rlen = (size_t)(d->d_p - base) - *off;
            }
            if (--d->d_depth == 0)
                root_done = 1;
            continue;
        }
        if (d->d_p < d->d_end && (*d->d_p == '!' || *d->d_p == '?'))
            return -1;  /* comment, CDATA, DOCTYPE, PI: never written */
        name = d->d_p;
        if ((n = d_name(d)) <= 0)
            return n == RC_STRICT ? RC_STRICT : -1;
        if (in_id)
            return RC_STRICT;   /* an element inside __id */
        if (d->d_depth == 0) {
            if (root_done || n != 7 || memcmp(name, "Clients", 7) != 0)
                return -1;
        } else if (d->d_depth == 1) {
            if (n != 3 || memcmp(name, "Row", 3) != 0 || ++nrows > 1)
                return -1;
            if (d->d_p == d->d_end || *d->d_p != '>')
                return -1;      /* "<Row>" exactly */
            *off = (size_t)(p - base);
            has_id = 0;
        } else if (n == 3 && memcmp(name, "Row", 3) == 0) {
            return -1;
        } else if (d->d_depth == 2 && n == 4 && memcmp(name, "__id", 4) == 0) {
            if (has_id)
                return -1;
            in_id = 1;
            ilen = 0;
        }
        d_skip_s(d);
        if (d_lit(d, "/>")) {   /* empty: its end at once */
            if (in_id || d->d_depth == 1)
                return -1;      /* an empty __id, a Row without one */
            if (d->d_depth == 0)
                return -1;      /* <Clients/>: no Row */
            continue;
        }
        if (!d_lit(d, ">"))
            return -1;          /* an attribute, or not well-formed */
        if (d_push(d, base, name, (size_t)n) < 0)
            return -1;
    }
    if (!root_done || nrows != 1)
        return -1;
    id[ilen] = '\0';
    return 0;
}

int
rowcheck_doc(const char *buf, size_t len, size_t *off, size_t *rlen, char *id,
             size_t idlen)
{
    struct dscan d;
    int rc;

    if (len > INT32_MAX || idlen == 0 || !rowcheck_text_ok(buf, len))
        return -1;
    d.d_p = (const unsigned char *)buf;
    d.d_end = d.d_p + len;
    d.d_open = d.d_small;
    d.d_depth = 0;
    d.d_cap = sizeof(d.d_small) / sizeof(d.d_small[0]) / 2;
    rc = d_scan(&d, d.d_p, off, rlen, id, idlen);
    if (d.d_open != d.d_small)
        free(d.d_open);
    return rc;
}
