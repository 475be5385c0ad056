/*
 * fuzz_results.c - the Patriot results-file parser of the combiner
 * (combine_results_decode + combine_results_ok: UTF-8 with or without BOM,
 * UTF-16LE/BE with BOM or LE without, CRLF).
 *
 * Checks: decoding never fails but for memory, the text is NUL-terminated
 * at its length; UTF-16 input decodes to valid UTF-8 (lone surrogates become
 * U+FFFD); an id is only found as a whole token on a line saying
 * "Completed processing client" (checked against a naive reference on the
 * decoded text); the same text encoded as UTF-16LE with BOM gives the same
 * answers.
 */
#include <string.h>

#include "combine.h"
#include "fuzz.h"

#define PHRASE "Completed processing client"

static int
id_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Reference: some line of text holds PHRASE and id as a whole token. */
static int
ref_ok(const char *text, size_t len, const char *id)
{
    const char *line = text, *end = text + len, *nl, *p;
    size_t idl = strlen(id);

    while (line < end) {
        nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            nl = end;
        if (memmem(line, (size_t)(nl - line), PHRASE, strlen(PHRASE))) {
            for (p = line; p + idl <= nl; p++)
                if (memcmp(p, id, idl) == 0 &&
                    (p == line || !id_char((unsigned char)p[-1])) &&
                    (p + idl == nl || !id_char((unsigned char)p[idl])))
                    return 1;
        }
        line = nl + 1;
    }
    return 0;
}

/* Valid UTF-8 (any code point, shortest form). */
static int
utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp, k, need;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return 0;
        for (k = 1; k <= need; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

static const char *const ids[] = {"9998BASE11", "1BASE11", "19998BASE11",
                                  "A", "9998"};

static void
check_text(const char *text, size_t n)
{
    size_t i;

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int rc = combine_results_ok(text, n, ids[i]);

        FUZZ_CHECK(rc == 0 || rc == 1);
        FUZZ_CHECK(rc == ref_ok(text, n, ids[i]));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n, n2, i;
    char *text, *text2;
    unsigned char *u16;
    int utf16;

    utf16 = size >= 2 && ((data[0] == 0xFF && data[1] == 0xFE) ||
                          (data[0] == 0xFE && data[1] == 0xFF));
    text = combine_results_decode((const char *)data, size, &n);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(text[n] == '\0');
    if (utf16)
        FUZZ_CHECK(utf8_ok((const unsigned char *)text, n));
    check_text(text, n);

    /* The same text as UTF-16LE with BOM, when it is valid UTF-8 without
     * NUL and without a BOM of its own: same answers. */
    if (!utf16 && utf8_ok((const unsigned char *)text, n) &&
        memchr(text, '\0', n) == NULL &&
        (u16 = malloc(2 + 4 * n)) != NULL) {
        const unsigned char *s = (const unsigned char *)text;
        size_t o = 2;

        u16[0] = 0xFF;
        u16[1] = 0xFE;
        for (i = 0; i < n;) {
            unsigned cp, len;

            if (s[i] < 0x80)
                cp = s[i], len = 1;
            else if (s[i] < 0xE0)
                cp = (s[i] & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu), len = 2;
            else if (s[i] < 0xF0)
                cp = (s[i] & 0x0Fu) << 12 | (s[i + 1] & 0x3Fu) << 6 |
                     (s[i + 2] & 0x3Fu), len = 3;
            else
                cp = (s[i] & 0x07u) << 18 | (s[i + 1] & 0x3Fu) << 12 |
                     (s[i + 2] & 0x3Fu) << 6 | (s[i + 3] & 0x3Fu), len = 4;
            i += len;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                u16[o++] = (unsigned char)((0xD800 | cp >> 10) & 0xFF);
                u16[o++] = (unsigned char)((0xD800 | cp >> 10) >> 8);
                cp = 0xDC00 | (cp & 0x3FF);
            }
            u16[o++] = (unsigned char)(cp & 0xFF);
            u16[o++] = (unsigned char)(cp >> 8);
        }
        text2 = combine_results_decode((const char *)u16, o, &n2);
        FUZZ_CHECK(text2 != NULL);
        FUZZ_CHECK(n2 == n && memcmp(text, text2, n) == 0);
        free(text2);
        free(u16);
    }
    free(text);
    return 0;
}
