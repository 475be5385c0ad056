/*
 * rowcheck.c - checking documents (SAX, no tree): a per-client document
 * or a combined batch is checked the way the writer makes it, without
 * building a tree (see rowcheck.h). Moved out of combine.c as it was.
 */
#include "rowcheck.h"

#include <stdlib.h>
#include <string.h>

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

/*
 * model_text_ok with a fast path: 8 bytes at a time while none is below
 * 0x20 or above 0x7F (the bulk of a client file); any other character
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
