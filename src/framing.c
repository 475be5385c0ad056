/*
 * framing.c - the HTTP framing rules of issue 7 (see framing.h).
 *
 * Byte for byte what http.c decided inline before it was split out: the
 * same order of checks, the same messages, the same length syntax (1 to
 * 19 digits: no overflow is possible in an unsigned long long, whose
 * maximum has 20 digits).
 */
#include "framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CL_DIGITS_MAX 19

void
framing_scan_init(struct framing_scan *fs)
{
    memset(fs, 0, sizeof(*fs));
}

void
framing_scan_header(struct framing_scan *fs, const char *name,
                    const char *value)
{
    if (name == NULL)
        return;
    if (value == NULL)
        value = "";
    /* the first letter picks the one name worth comparing */
    switch (name[0] | 0x20) {
    case 'a':
        fs->fs_n_auth += strcasecmp(name, "Authorization") == 0;
        break;
    case 'c':
        if (strcasecmp(name, "Content-Length") == 0)
            fs->fs_n_cl++, fs->fs_cl = value;
        break;
    case 't':
        if (strcasecmp(name, "Transfer-Encoding") == 0)
            fs->fs_n_te++, fs->fs_te = value;
        break;
    }
}

/* 1 to CL_DIGITS_MAX ASCII digits into *n: 0, or -1. */
static int
parse_length(const char *s, unsigned long long *n)
{
    const char *p;

    *n = 0;
    for (p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= CL_DIGITS_MAX)
            return -1;
        *n = *n * 10 + (unsigned)(*p - '0');
    }
    return p == s ? -1 : 0;
}

/* "1 MiB", "64 KiB" or "1000 bytes" */
static void
size_text(unsigned long long n, char *buf, size_t len)
{
    if (n > 0 && n % (1024 * 1024) == 0)
        snprintf(buf, len, "%llu MiB", n / (1024 * 1024));
    else if (n > 0 && n % 1024 == 0)
        snprintf(buf, len, "%llu KiB", n / 1024);
    else
        snprintf(buf, len, "%llu bytes", n);
}

static unsigned
refuse(struct framing_verdict *v, unsigned status, const char *msg)
{
    v->fv_status = status;
    snprintf(v->fv_detail, sizeof(v->fv_detail), "%s", msg);
    v->fv_body = FRAMING_NONE;
    v->fv_length = 0;
    return status;
}

unsigned
framing_scan_verdict(const struct framing_scan *fs,
                     unsigned long long max_body, struct framing_verdict *v)
{
    unsigned long long n;
    char sz[32], msg[64];

    memset(v, 0, sizeof(*v));
    if (fs->fs_n_auth > 1)
        return refuse(v, 401, "More than one Authorization header");
    if (fs->fs_n_cl > 1)
        return refuse(v, 400, "More than one Content-Length header");
    if (fs->fs_n_te > 1)
        return refuse(v, 400, "More than one Transfer-Encoding header");
    if (fs->fs_n_cl > 0 && fs->fs_n_te > 0)
        return refuse(v, 400, "Both Content-Length and Transfer-Encoding");
    if (fs->fs_n_te > 0) {
        if (strcasecmp(fs->fs_te, "chunked") != 0)
            return refuse(v, 400, "Transfer-Encoding other than chunked");
        v->fv_body = FRAMING_CHUNKED;
        return 0;
    }
    if (fs->fs_n_cl == 0)
        return 0;
    if (parse_length(fs->fs_cl, &n) < 0)
        return refuse(v, 400, "Invalid Content-Length");
    if (n > max_body) {
        size_text(max_body, sz, sizeof(sz));
        snprintf(msg, sizeof(msg), "Request body larger than %s", sz);
        return refuse(v, 413, msg);
    }
    v->fv_body = FRAMING_LENGTH;
    v->fv_length = n;
    return 0;
}

unsigned
framing_check(const struct framing_hdr *h, size_t n,
              unsigned long long max_body, struct framing_verdict *v)
{
    struct framing_scan fs;
    size_t i;

    framing_scan_init(&fs);
    for (i = 0; i < n; i++)
        framing_scan_header(&fs, h[i].fh_name, h[i].fh_value);
    return framing_scan_verdict(&fs, max_body, v);
}
