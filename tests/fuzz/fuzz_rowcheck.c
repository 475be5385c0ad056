/*
 * fuzz_rowcheck.c - the combiner's reader of per-client XML
 * (combine_row_check: the SAX check and the Row extraction; rowcheck_doc:
 * the same check by hand, which the combiner uses).
 *
 * rowcheck_text_ok against model_text_ok (one byte at a time): the same
 * verdict on every input.
 *
 * rowcheck_doc against combine_row_check: the same verdict, Row range and
 * id on every input, except that rowcheck_doc may refuse with -2 (on
 * purpose: another encoding, a ':' in a name, an element inside __id)
 * what the SAX check takes; -1 only where the SAX check refuses too.
 *
 * When a document is accepted: libxml2's own parser (XML_PARSE_NONET) finds
 * it well-formed, with root Clients holding exactly one Row whose __id is
 * the id returned ([A-Za-z0-9_-]{1,95}); the byte range returned is
 * "<Row>...</Row>" inside the buffer and is itself well-formed XML (the
 * combiner copies it byte for byte into clients.xml).
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#include "combine.h"
#include "fuzz.h"
#include "model.h"
#include "rowcheck.h"

static int
id_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 1 || n > 95)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static void
silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    const char *buf = (const char *)data;
    size_t off = 0, rlen = 0, rows = 0;
    char id[128];
    xmlDocPtr doc;
    xmlNodePtr root, n, row = NULL;
    xmlChar *t;

    if (!inited) {
        xmlInitParser();
        xmlSetGenericErrorFunc(NULL, silent);
        inited = 1;
    }
    {
        size_t off2 = 0, rlen2 = 0;
        char id2[128];
        int fast = rowcheck_doc(buf, size, &off2, &rlen2, id2, sizeof(id2));
        int sax = combine_row_check(buf, size, &off, &rlen, id, sizeof(id));

        FUZZ_CHECK(fast == 0 || fast == -1 || fast == -2);
        /* the word-at-a-time text check: the plain one's verdict */
        FUZZ_CHECK(rowcheck_text_ok(buf, size) == model_text_ok(buf, size));
        if (fast == 0)
            FUZZ_CHECK(sax == 0 && off2 == off && rlen2 == rlen &&
                       strcmp(id2, id) == 0);
        if (fast == -1)
            FUZZ_CHECK(sax != 0);
        /* the short id buffer of the combiner: the same refusal */
        if (fast == 0 && strlen(id) >= 8)
            FUZZ_CHECK(rowcheck_doc(buf, size, &off2, &rlen2, id2, 8) == -1 &&
                       combine_row_check(buf, size, &off2, &rlen2, id2, 8) ==
                           -1);
        if (sax != 0)
            return 0;
    }
    FUZZ_CHECK(id_ok(id));
    FUZZ_CHECK(off < size && rlen >= 11 && off + rlen <= size);
    FUZZ_CHECK(memcmp(buf + off, "<Row>", 5) == 0);
    FUZZ_CHECK(memcmp(buf + off + rlen - 6, "</Row>", 6) == 0);

    doc = xmlReadMemory(buf, (int)size, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING);
    FUZZ_CHECK(doc != NULL);
    root = xmlDocGetRootElement(doc);
    FUZZ_CHECK(root && strcmp((const char *)root->name, "Clients") == 0);
    for (n = root->children; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE) {
            FUZZ_CHECK(strcmp((const char *)n->name, "Row") == 0);
            row = n;
            rows++;
        }
    FUZZ_CHECK(rows == 1);
    for (n = row->children; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE &&
            strcmp((const char *)n->name, "__id") == 0)
            break;
    FUZZ_CHECK(n != NULL);
    t = xmlNodeGetContent(n);
    FUZZ_CHECK(t != NULL && strcmp((const char *)t, id) == 0);
    xmlFree(t);
    xmlFreeDoc(doc);

    /* the Row alone, as it is copied into clients.xml */
    doc = xmlReadMemory(buf + off, (int)rlen, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING);
    FUZZ_CHECK(doc != NULL);
    xmlFreeDoc(doc);
    return 0;
}
