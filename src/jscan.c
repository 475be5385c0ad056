/*
 * jscan.c - reading a JSON object (client_state.json) one entry at a
 * time, never the whole tree (see jscan.h). Moved out of combine.c as it
 * was.
 */
#include "jscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rowcheck.h"   /* rowcheck_id_char: what an id is made of */

static int
js_ws(struct jscan *j)
{
    int c;

    while ((c = getc(j->j_f)) == ' ' || c == '\t' || c == '\n' || c == '\r')
        ;
    return c;
}

static int
js_put(char **buf, size_t *len, size_t *cap, int c)
{
    if (*len + 2 > *cap) {
        size_t n = *cap ? *cap * 2 : 256;
        char *p;

        if (n > JSCAN_ENTRY_MAX || (p = realloc(*buf, n)) == NULL)
            return -1;
        *buf = p;
        *cap = n;
    }
    (*buf)[(*len)++] = (char)c;
    (*buf)[*len] = '\0';
    return 0;
}

/* The rest of a string whose '"' was read, into buf (quotes included). */
static int
js_string(struct jscan *j, char **buf, size_t *len, size_t *cap)
{
    int c;

    if (js_put(buf, len, cap, '"') < 0)
        return -1;
    while ((c = getc(j->j_f)) != EOF) {
        if (js_put(buf, len, cap, c) < 0)
            return -1;
        if (c == '\\') {
            if ((c = getc(j->j_f)) == EOF || js_put(buf, len, cap, c) < 0)
                return -1;
        } else if (c == '"') {
            return 0;
        }
    }
    return -1;
}

int
jscan_open(struct jscan *j, const char *path)
{
    int c;

    memset(j, 0, sizeof(*j));
    if ((j->j_f = fopen(path, "re")) == NULL)
        return errno == ENOENT ? 1 : -1;
    if (js_ws(j) != '{')
        return -1;
    if ((c = js_ws(j)) == '}')
        return js_ws(j) == EOF ? 1 : -1;
    return ungetc(c, j->j_f) == EOF ? -1 : 0;
}

int
jscan_next(struct jscan *j)
{
    int c, depth = 0;

    j->j_klen = j->j_vlen = 0;
    if ((c = js_ws(j)) == '}')
        return js_ws(j) == EOF ? 0 : -1;
    if (c == ',')
        c = js_ws(j);
    if (c != '"' || js_string(j, &j->j_key, &j->j_klen, &j->j_kcap) < 0 ||
        js_ws(j) != ':')
        return -1;
    c = js_ws(j);
    for (;; c = getc(j->j_f)) {
        if (c == EOF)
            return -1;
        if (depth == 0 && (c == ',' || c == '}' || c == ' ' || c == '\n' ||
                           c == '\r' || c == '\t')) {
            if (ungetc(c, j->j_f) == EOF)
                return -1;
            break;
        }
        if (c == '"') {
            if (js_string(j, &j->j_val, &j->j_vlen, &j->j_vcap) < 0)
                return -1;
            if (depth == 0)
                break;
            continue;
        }
        if (js_put(&j->j_val, &j->j_vlen, &j->j_vcap, c) < 0)
            return -1;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth <= 0) {
            if (depth < 0)
                return -1;
            break;
        }
    }
    return j->j_vlen > 0 ? 1 : -1;
}

void
jscan_close(struct jscan *j)
{
    if (j->j_f != NULL)
        fclose(j->j_f);
    free(j->j_key);
    free(j->j_val);
    memset(j, 0, sizeof(*j));
}

int
jscan_plain_id(const struct jscan *j, char *id, size_t idlen)
{
    size_t i, n = j->j_klen;

    if (n < 3 || n - 2 >= idlen)
        return 0;
    for (i = 1; i + 1 < n; i++)
        if (!rowcheck_id_char((unsigned char)j->j_key[i]))
            return 0;
    memcpy(id, j->j_key + 1, n - 2);
    id[n - 2] = '\0';
    return 1;
}
