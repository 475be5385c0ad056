/*
 * sbuf.h - a growable byte buffer: response bodies, rendered XML.
 *
 * A zeroed struct sbuf is empty and valid. After any successful add the
 * contents are NUL-terminated (sb_buf[sb_len] == '\0'), so sb_buf may be
 * handed on as a C string; the caller owns sb_buf and frees it with
 * sbuf_free() or free().
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct sbuf {
    char *sb_buf;
    size_t sb_len, sb_cap;
};

/* Make room for n more bytes and the NUL. 0, or -1 on no memory. */
int sbuf_reserve(struct sbuf *b, size_t n);

/* Append n bytes (or a C string). 0, or -1 on no memory (b unchanged). */
int sbuf_add(struct sbuf *b, const char *s, size_t n);
int sbuf_addstr(struct sbuf *b, const char *s);
int sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append v as compact JSON. 0 or -1. */
int sbuf_add_json(struct sbuf *b, json_t *v);

/* Free the contents; b is empty again. NULL is allowed. */
void sbuf_free(struct sbuf *b);
