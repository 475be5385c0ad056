/*
 * framing.h - the HTTP framing rules of issue 7 as a pure decision over a
 * request's header fields: which requests are refused before any body is
 * read (status and message), and how long the body of the others is.
 *
 * Refused (the caller answers and closes the connection; the body is
 * never interpreted), checked in this order:
 *   401 more than one Authorization header
 *   400 more than one Content-Length header (even with equal values:
 *       RFC 9110 8.6 lets a recipient reject them, and we do)
 *   400 more than one Transfer-Encoding header
 *   400 both Content-Length and Transfer-Encoding (RFC 9112 6.1: a server
 *       may reject it; two parsers could frame it differently)
 *   400 a Transfer-Encoding other than "chunked" (ASCII case ignored; a
 *       list such as "chunked, gzip" or "gzip, chunked" is refused)
 *   400 a Content-Length that is not 1 to 19 ASCII digits (no sign, no
 *       space, no list: "5, 5" is refused; leading zeros are allowed)
 *   413 a Content-Length over the body limit
 * Header names are compared ignoring ASCII case. Nothing here knows about
 * libmicrohttpd: http.c feeds it the fields MHD parsed; the fuzz harness
 * (tests/fuzz/fuzz_framing.c) and the unit tests feed it lists.
 */
#pragma once

#include <stddef.h>

/* One header field: name and value, both NUL-terminated, borrowed. A
 * NULL name is skipped; a NULL value counts as "". */
struct framing_hdr {
    const char *fh_name;
    const char *fh_value;
};

/* What a scan has seen so far (framing_scan_init, framing_scan_header). */
struct framing_scan {
    unsigned fs_n_cl, fs_n_te, fs_n_auth;
    const char *fs_cl, *fs_te;      /* the last value of each, borrowed */
};

/* How the body of an accepted request is framed. */
enum framing_body {
    FRAMING_NONE,               /* no Content-Length, no Transfer-Encoding */
    FRAMING_LENGTH,             /* Content-Length: fv_length bytes */
    FRAMING_CHUNKED             /* Transfer-Encoding: chunked */
};

/* The decision. */
struct framing_verdict {
    unsigned fv_status;         /* 0: accepted; else 400, 401 or 413 */
    char fv_detail[64];         /* the refusal's message; "" if accepted */
    enum framing_body fv_body;  /* accepted: how the body is framed */
    unsigned long long fv_length;   /* FRAMING_LENGTH: the length, at most
                                       the limit; else 0 */
};

/* Start a scan: no field seen. fs must not be NULL. */
void framing_scan_init(struct framing_scan *fs);

/*
 * Account one header field (name and value as above) in fs. Only
 * Authorization, Content-Length and Transfer-Encoding count; the value
 * pointers are kept (borrowed) until framing_scan_verdict.
 */
void framing_scan_header(struct framing_scan *fs, const char *name,
                         const char *value);

/*
 * The verdict on the fields accounted in fs, for a body limit of max_body
 * bytes, into *v. Returns v->fv_status: 0 if the request is accepted, else
 * its refusal (400, 401 or 413 with v->fv_detail). Allocates nothing.
 */
unsigned framing_scan_verdict(const struct framing_scan *fs,
                              unsigned long long max_body,
                              struct framing_verdict *v);

/*
 * The same for a list of n fields (h may be NULL when n is 0): init, every
 * field in order, verdict. Returns v->fv_status.
 */
unsigned framing_check(const struct framing_hdr *h, size_t n,
                       unsigned long long max_body,
                       struct framing_verdict *v);
