/*
 * sbuf.c - growable byte buffers (see sbuf.h).
 */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sbuf_reserve(struct sbuf *b, size_t n)
{
    size_t cap = b->sb_cap ? b->sb_cap : 256;
    char *p;

    if (b->sb_cap - b->sb_len > n)
        return 0;
    while (cap - b->sb_len <= n) {
        if (__builtin_mul_overflow(cap, 2, &cap))
            return -1;
    }
    if ((p = realloc(b->sb_buf, cap)) == NULL)
        return -1;
    b->sb_buf = p;
    b->sb_cap = cap;
    return 0;
}

int
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->sb_cap - b->sb_len <= n && sbuf_reserve(b, n) < 0)
        return -1;
    memcpy(b->sb_buf + b->sb_len, s, n);
    b->sb_len += n;
    b->sb_buf[b->sb_len] = '\0';
    return 0;
}

int
sbuf_addstr(struct sbuf *b, const char *s)
{
    return sbuf_add(b, s, strlen(s));
}

int
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return sbuf_add(b, tmp, (size_t)n);
    {
        char *big = malloc((size_t)n + 1);
        int rc;

        if (big == NULL)
            return -1;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = sbuf_add(b, big, (size_t)n);
        free(big);
        return rc;
    }
}

static int
dump_cb(const char *buf, size_t size, void *data)
{
    return sbuf_add(data, buf, size);
}

int
sbuf_add_json(struct sbuf *b, json_t *v)
{
    if (json_dump_callback(v, dump_cb, b, JSON_COMPACT) < 0)
        return -1;
    return b->sb_buf ? 0 : sbuf_add(b, "", 0);
}

void
sbuf_free(struct sbuf *b)
{
    if (b == NULL)
        return;
    free(b->sb_buf);
    b->sb_buf = NULL;
    b->sb_len = b->sb_cap = 0;
}
