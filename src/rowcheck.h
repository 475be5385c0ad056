/*
 * rowcheck.h - checking documents (SAX, no tree): a per-client document
 * or a combined batch is accepted only as the writer makes it (UTF-8 XML
 * 1.0 characters only, no comment, PI, CDATA, DOCTYPE, entity reference,
 * namespace or attribute, root Clients holding Row elements each with one
 * __id of [A-Za-z0-9_-]{1,95}). Used by patriot-combine (combine.c): a
 * per-client document by hand in one pass (rowcheck_doc), a combined batch
 * with libxml2's SAX parser (rowcheck_ctxt_new), which is also the oracle
 * the hand check is tested against (combine_row_check).
 */
#pragma once

#include <libxml/parser.h>
#include <stddef.h>
#include <stdint.h>

#define ROWCHECK_ID_MAX 96      /* an __id and its NUL */
#define ROWCHECK_PIECE (1 << 20) /* bytes given to the push parser at once */
/* A per-client document is at most this big (the API's are a few KB; a
 * bigger file in the outbox is skipped unread, not held whole). */
#define ROWCHECK_DOC_MAX (16 << 20)

/* What the SAX callbacks found in one document. Zero it before use (the
 * checks below do); free with rowcheck_state_free. */
struct rowcheck_state {
    int sx_bad;
    int sx_depth;               /* 0 outside root */
    int sx_in_id;               /* inside Row/__id */
    int sx_row_has_id;
    size_t sx_idlen;
    char sx_id[ROWCHECK_ID_MAX];
    char **sx_ids;              /* the id of each Row, in order */
    size_t sx_n, sx_cap;
    /* if set, each Row's id goes here instead of sx_ids (a folded batch:
     * its ids are not held); non-zero return: bad */
    int (*sx_on_id)(void *arg, const char *id);
    void *sx_arg;
};

/* 1 if c may appear in an __id ([A-Za-z0-9_-]), else 0. */
int rowcheck_id_char(int c);

/* Free the ids st holds and forget them (st stays usable). */
void rowcheck_state_free(struct rowcheck_state *st);

/* 1 if the n bytes at s are UTF-8 made only of XML 1.0 characters
 * (exactly model_text_ok's verdict, faster), else 0. */
int rowcheck_text_ok(const char *s, size_t n);

/*
 * A push parser context whose SAX callbacks fill st (borrowed) and mark it
 * bad on anything the writer never makes; fed with xmlParseChunk by the
 * caller (ROWCHECK_PIECE bytes at most at once). NULL on no memory. Free
 * with rowcheck_ctxt_free.
 */
xmlParserCtxtPtr rowcheck_ctxt_new(struct rowcheck_state *st);

/* Free a context of rowcheck_ctxt_new (and any document it started).
 * NULL-safe. */
void rowcheck_ctxt_free(xmlParserCtxtPtr ctxt);

/*
 * combine_row_check with a parser context kept between calls: *reuse
 * (may be NULL) is NULL at first, then the context to reuse (free it with
 * rowcheck_ctxt_free). Same results as combine_row_check.
 */
int rowcheck_row_ctxt(const char *buf, size_t len, size_t *off, size_t *rlen,
                      char *id, size_t idlen, xmlParserCtxtPtr *reuse);

/*
 * Check one per-client document the way the writer makes it: UTF-8 XML
 * 1.0 characters only, no comment, PI, CDATA, DOCTYPE, entity reference,
 * namespace or attribute, root Clients holding Row elements each with one
 * __id of [A-Za-z0-9_-]{1,95}. For a
 * per-client document (exactly one Row): sets *off and *rlen to the bytes of
 * "<Row>...</Row>" and copies the id into id. Returns 0 or -1 (malformed).
 */
int combine_row_check(const char *buf, size_t len, size_t *off, size_t *rlen,
                      char *id, size_t idlen);

/*
 * The same check as combine_row_check, by hand in one pass (no libxml2,
 * several times faster): the same verdict, *off, *rlen and id for every
 * document, except that it also refuses (with -2) what libxml2 would take
 * but the writer never makes and the combiner should not copy: an
 * encoding other than UTF-8 declared (the Row's bytes would change
 * meaning in the UTF-8 clients.xml), a ':' in a name, an element inside
 * __id. Returns 0, -1 (malformed) or -2 (refused on purpose). Allocates
 * only for documents nested deeper than 16 elements.
 */
int rowcheck_doc(const char *buf, size_t len, size_t *off, size_t *rlen,
                 char *id, size_t idlen);
