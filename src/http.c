/*
 * http.c - libmicrohttpd transport: limits, bodies, routing, replies,
 * suspension and the request log (see http.h).
 *
 * Answer on the second call, never the first (notes/libmicrohttpd.md): a
 * reply queued before the request is complete closes the connection. The
 * only replies queued on the first call are refusals (400, 401, 413, 429)
 * that should close it.
 *
 * Hostile clients (issue 7). libmicrohttpd has no deadline of its own (its
 * timeout is for inactivity: a client trickling a byte a second keeps a
 * connection for ever), so every connection is tracked here from
 * MHD_CONNECTION_NOTIFY_STARTED to _CLOSED with a deadline: complete
 * headers within HEADER_TIMEOUT of the connection (or of the previous
 * reply, plus CONNECTION_TIMEOUT), a body within BODY_TIMEOUT_BASE + 1 s
 * per 16 KiB, a reply read within the same. A reaper thread looks once a
 * second and shuts the socket of a connection past its deadline down
 * (shutdown(2)): MHD sees the error and closes the connection itself, on
 * its own thread. Framing that two parsers could read differently
 * (Content-Length with Transfer-Encoding, repeated lengths, codings other
 * than chunked, two Authorization headers) is refused on the first call,
 * before any body is read (the decision is framing.c's). Rate limits and
 * the client address come from guard.c.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "framing.h"
#include "guard.h"
#include "log.h"

/* One open connection, from MHD's STARTED notification to CLOSED. */
struct conn {
    struct conn *c_next, *c_prev;       /* hs_conns, under hs_mu */
    int c_fd;
    int64_t c_deadline;                 /* monotonic ms, 0: none; atomic */
    struct guard_addr c_peer;
};

struct http_server {
    struct MHD_Daemon *hs_daemon;
    struct http_opts hs_opts;
    struct guard_cfg hs_lim;
    struct guard_cidrs *hs_trusted;    /* TRUSTED_PROXIES */
    struct guard_table *hs_keys;       /* token buckets a key */
    struct guard_table *hs_ips;        /* token buckets an address */
    struct guard_table *hs_fails;      /* failed auth an address */
    pthread_mutex_t hs_mu;              /* hs_conns, hs_stopping */
    pthread_cond_t hs_cv;               /* wakes the reaper to stop */
    struct conn *hs_conns;
    int hs_stopping;
    int hs_reaper_on;
    pthread_t hs_reaper;
    int hs_started;                     /* MHD's messages: debug only */
};

/* A request as this module holds it; handlers see only r_rq. */
struct req {
    struct http_req r_rq;               /* first */
    struct conn *r_conn;                /* NULL if untracked */
    struct guard_addr r_addr;          /* the client (guard.h) */
    char r_addr_s[GUARD_ADDR_STRLEN];
    unsigned r_retry;                   /* Retry-After of a 429 */
    int r_close;                        /* reply with Connection: close */
};

#define AUTH_FAIL_WINDOW 60             /* s, for AUTH_FAIL_LIMIT */
#define SEND_RATE (16 * 1024)           /* bytes/s a deadline allows */

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Give the connection of r until secs from now (0: no deadline). */
static void
conn_deadline(struct conn *c, int64_t secs)
{
    if (c != NULL)
        __atomic_store_n(&c->c_deadline, secs > 0 ? mono_ms() + secs * 1000
                                                  : 0,
                         __ATOMIC_RELAXED);
}

/* Seconds to move len bytes of body or reply. */
static int64_t
transfer_secs(const struct http_server *srv, unsigned long long len)
{
    return (int64_t)srv->hs_lim.gc_body_timeout_base +
           (int64_t)((len + SEND_RATE - 1) / SEND_RATE);
}

const char *
http_client_addr(struct http_req *rq)
{
    return ((struct req *)rq)->r_addr_s;
}

static int64_t
elapsed_us(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
           (now.tv_nsec - start->tv_nsec) / 1000;
}

const char *
http_header(struct http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->rq_conn, MHD_HEADER_KIND, name);
}

int
http_reply(struct http_req *rq, unsigned status, const char *body,
           size_t len)
{
    rq->rq_resp.sb_len = 0;
    if (len > 0 && sbuf_add(&rq->rq_resp, body, len) < 0)
        return -1;
    rq->rq_status = status;
    rq->rq_replied = 1;
    return 0;
}

int
http_reply_resp(struct http_req *rq, unsigned status)
{
    rq->rq_status = status;
    rq->rq_replied = 1;
    return 0;
}

static int
reply_json(struct http_req *rq, unsigned status, json_t *o)
{
    rq->rq_resp.sb_len = 0;
    if (o == NULL || sbuf_add_json(&rq->rq_resp, o) < 0) {
        json_decref(o);
        return http_reply(rq, 500, "{\"detail\":\"Out of memory\"}", 26);
    }
    json_decref(o);
    return http_reply_resp(rq, status);
}

int
http_reply_detail(struct http_req *rq, unsigned status, const char *msg)
{
    return reply_json(rq, status, json_pack("{s:s}", "detail", msg));
}

int
http_reply_errors(struct http_req *rq, json_t *errs)
{
    return reply_json(rq, 422, json_pack("{s:O}", "detail", errs));
}

void
http_suspend(struct http_req *rq, http_handler cont)
{
    rq->rq_cont = cont;
    rq->rq_suspended = 1;
    MHD_suspend_connection(rq->rq_conn);
}

void
http_resume(struct http_req *rq)
{
    MHD_resume_connection(rq->rq_conn);
}

int
http_reply_json_invalid(struct http_req *rq, size_t pos, const char *what)
{
    json_t *e = json_pack("[{s:s, s:[s,I], s:s, s:{s:s}}]", "type",
                          "json_invalid", "loc", "body", (json_int_t)pos,
                          "msg", "JSON decode error", "ctx", "error", what);

    return reply_json(rq, 422, e ? json_pack("{s:o}", "detail", e) : NULL);
}

/* ---- jansson allocation budget (notes/jansson-libxml2.md) ---------- */

#define ALLOC_HDR 16                    /* keeps malloc's alignment */

static _Thread_local size_t tl_limit;   /* 0: no limit */
static _Thread_local size_t tl_used;
static _Thread_local int tl_over;

static void *
budget_malloc(size_t n)
{
    size_t *p, total;

    if (__builtin_add_overflow(n, ALLOC_HDR, &total))
        return NULL;
    if (tl_limit != 0 && tl_used + total > tl_limit) {
        tl_over = 1;
        return NULL;
    }
    if ((p = malloc(total)) == NULL)
        return NULL;
    p[0] = total;
    tl_used += total;
    return (char *)p + ALLOC_HDR;
}

static void
budget_free(void *q)
{
    size_t *p;

    if (q == NULL)
        return;
    p = (size_t *)(void *)((char *)q - ALLOC_HDR);
    tl_used = tl_used >= p[0] ? tl_used - p[0] : 0;
    free(p);
}

void
http_json_init(void)
{
    json_set_alloc_funcs(budget_malloc, budget_free);
}

/* Parse buf with at most 64 KiB + 8 bytes of heap per byte of the body (a
 * client object takes about 4). */
static json_t *
parse_capped(struct http_req *rq, const char *buf, size_t len, size_t flags,
             json_error_t *jerr, int *over)
{
    json_t *v;

    tl_used = 0;
    tl_over = 0;
    tl_limit = 65536 + 8 * rq->rq_body.sb_len;
    v = json_loadb(buf, len, flags, jerr);
    tl_limit = 0;
    *over = tl_over;
    return v;
}

/*
 * A copy of the body in which, inside strings, every byte that is not part
 * of valid UTF-8 (or an XML 1.0 character), every raw control byte and
 * every \u escape of a lone surrogate is replaced by \u0000, which the
 * field validation then refuses by name. NULL when nothing was replaced
 * (or no memory): the body is broken some other way.
 */
static char *
repair_strings(const char *s, size_t n, size_t *outlen)
{
    static const char nul[] = "\\u0000";
    struct sbuf b = {0};
    size_t i = 0;
    int in_str = 0, changed = 0;
    unsigned cp, lo;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = 1;

        if (!in_str) {
            in_str = c == '"';
        } else if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            len = i + 1 < n ? 2 : 1;
            if (i + 6 <= n && s[i + 1] == 'u' &&
                model_hex4(s + i + 2, &cp) == 0) {
                len = 6;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= n &&
                    s[i + 6] == '\\' && s[i + 7] == 'u' &&
                    model_hex4(s + i + 8, &lo) == 0 && lo >= 0xDC00 &&
                    lo <= 0xDFFF) {
                    len = 12;
                } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                    if (sbuf_add(&b, nul, 6) < 0)
                        goto fail;
                    changed = 1;
                    i += 6;
                    continue;
                }
            }
        } else if (c < 0x20 ||
                   (c >= 0x80 &&
                    ((len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2) > n - i ||
                     !model_text_ok(s + i, len)))) {
            if (sbuf_add(&b, nul, 6) < 0)
                goto fail;
            changed = 1;
            i++;
            continue;
        }
        if (sbuf_add(&b, s + i, len) < 0)
            goto fail;
        i += len;
    }
    if (!changed)
        goto fail;
    *outlen = b.sb_len;
    return b.sb_buf;
fail:
    sbuf_free(&b);
    return NULL;
}

json_t *
http_body_json(struct http_req *rq)
{
    json_error_t jerr;
    json_t *v, *errs;
    char *fixed;
    size_t pos, flen;
    int over;

    if (rq->rq_body.sb_len == 0) {
        errs = json_array();
        model_error(errs, "missing", "Field required", NULL, "body", NULL);
        http_reply_errors(rq, errs);
        json_decref(errs);
        return NULL;
    }
    v = parse_capped(rq, rq->rq_body.sb_buf, rq->rq_body.sb_len,
                     JSON_ALLOW_NUL, &jerr, &over);
    if (v != NULL)
        return v;
    if (over) {
        malloc_trim(0);         /* give the refused tree's heap back */
        http_reply_detail(rq, 413, "Request body too large to process");
        return NULL;
    }
    /* jansson points just past the bad token; FastAPI at its start. */
    pos = jerr.position > 0 ? (size_t)jerr.position - 1 : 0;
    rq->rq_bad_pos = pos;
    if (json_error_code(&jerr) == json_error_numeric_overflow) {
        v = parse_capped(rq, rq->rq_body.sb_buf, rq->rq_body.sb_len,
                         JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr,
                         &over);
        if (v != NULL) {
            rq->rq_ints_as_real = 1;
            rq->rq_repaired = 1;
            return v;
        }
    }
    /* A bad character in a string: parse a repaired copy so that the
     * validator names the field (the change is refused either way). */
    if ((fixed = repair_strings(rq->rq_body.sb_buf, rq->rq_body.sb_len,
                                &flen)) != NULL) {
        v = parse_capped(rq, fixed, flen, JSON_ALLOW_NUL, &jerr, &over);
        free(fixed);
        if (v != NULL) {
            rq->rq_repaired = 1;
            return v;
        }
    }
    if (over) {                 /* a second parse ran out of its budget */
        malloc_trim(0);
        http_reply_detail(rq, 413, "Request body too large to process");
        return NULL;
    }
    /* jansson's text may cut a UTF-8 sequence: fixed messages only. */
    http_reply_json_invalid(rq, pos,
                            json_error_code(&jerr) == json_error_invalid_utf8
                                ? "Invalid UTF-8"
                                : "Invalid JSON");
    return NULL;
}

/* ---- the access handler -------------------------------------------- */

static const struct http_route *
find_route(const struct http_opts *o, const char *method, const char *url,
           int *path_known)
{
    size_t i;

    *path_known = 0;
    for (i = 0; i < o->ho_nroutes; i++) {
        if (strcmp(o->ho_routes[i].hr_path, url) != 0)
            continue;
        *path_known = 1;
        if (strcmp(o->ho_routes[i].hr_method, method) == 0)
            return &o->ho_routes[i];
    }
    return NULL;
}

static enum MHD_Result
queue(struct http_server *srv, struct http_req *rq)
{
    struct req *r = (struct req *)rq;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    size_t len = rq->rq_resp.sb_len;
    char *buf = rq->rq_resp.sb_buf;

    if (rq->rq_status == 204 || len == 0) {
        resp = MHD_create_response_from_buffer(0, NULL,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        /* MHD takes the buffer and free()s it. */
        resp = MHD_create_response_from_buffer(len, buf,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            rq->rq_resp.sb_buf = NULL, rq->rq_resp.sb_len = 0,
            rq->rq_resp.sb_cap = 0;
    }
    if (resp == NULL)
        return MHD_NO;
    if (rq->rq_status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                rq->rq_status == 200 && rq->rq_route &&
                                        rq->rq_route->hr_content_type
                                    ? rq->rq_route->hr_content_type
                                    : "application/json");
    if (rq->rq_ignored[0] != '\0')
        MHD_add_response_header(resp, "X-Ignored-Fields", rq->rq_ignored);
    if (rq->rq_status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (rq->rq_status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (rq->rq_status == 429) {
        char ra[16];

        snprintf(ra, sizeof(ra), "%u", r->r_retry > 0 ? r->r_retry : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->r_close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    /* A client that does not read its reply is a slow client too. */
    conn_deadline(r->r_conn, transfer_secs(srv, len));
    ret = MHD_queue_response(rq->rq_conn, rq->rq_status, resp);
    MHD_destroy_response(resp);
    return ret;
}

#define XFF_MAX 8           /* X-Forwarded-For headers looked at */

/* What the first call needs from the header block, in one pass: the
 * framing fields (framing.h) and the X-Forwarded-For values. */
struct hdr_scan {
    struct framing_scan hs_fr;
    const char *hs_xff[XFF_MAX];
    size_t hs_n_xff;
};

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    struct hdr_scan *h = cls;

    (void)kind;
    if (key == NULL)
        return MHD_YES;
    framing_scan_header(&h->hs_fr, key, value);
    if ((key[0] | 0x20) == 'x' && strcasecmp(key, "X-Forwarded-For") == 0 &&
        h->hs_n_xff < XFF_MAX)
        h->hs_xff[h->hs_n_xff++] = value;
    return MHD_YES;
}

/*
 * The first call (headers complete): the client's address, framing, the
 * length, the address's request rate, and the connection's deadline for
 * the body. Returns 0 to go on, or -1 with a refusal set (the connection
 * is then closed).
 */
static int
first_call(struct http_server *srv, struct req *r)
{
    struct http_req *rq = &r->r_rq;
    const struct guard_cfg *gc = &srv->hs_lim;
    struct hdr_scan h;
    struct framing_verdict fv;
    struct guard_addr peer;
    unsigned long long len;
    unsigned wait;

    memset(&h, 0, sizeof(h));
    framing_scan_init(&h.hs_fr);
    MHD_get_connection_values(rq->rq_conn, MHD_HEADER_KIND, scan_header, &h);
    if (r->r_conn != NULL) {
        peer = r->r_conn->c_peer;
    } else {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            rq->rq_conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        guard_addr_from_sockaddr(ci != NULL ? ci->client_addr : NULL,
                                  &peer);
    }
    guard_client_addr(srv->hs_trusted, &peer, h.hs_xff, h.hs_n_xff,
                       &r->r_addr);
    guard_addr_format(&r->r_addr, r->r_addr_s, sizeof(r->r_addr_s));
    if (framing_scan_verdict(&h.hs_fr, HTTP_MAX_BODY, &fv) != 0)
        return http_reply_detail(rq, fv.fv_status, fv.fv_detail), -1;
    len = fv.fv_length;
    if (gc->gc_rate_ip > 0 &&
        (wait = guard_take(srv->hs_ips, &r->r_addr, sizeof(r->r_addr),
                            gc->gc_rate_ip, gc->gc_burst_ip,
                            (int64_t)rq->rq_start.tv_sec * 1000000 +
                                rq->rq_start.tv_nsec / 1000)) > 0) {
        r->r_retry = wait;
        return http_reply_detail(rq, 429, "Too many requests from this"
                                 " address"), -1;
    }
    /* A chunked body may be as long as the limit. */
    if (fv.fv_body == FRAMING_CHUNKED)
        len = HTTP_MAX_BODY;
    conn_deadline(r->r_conn, len > 0 ? transfer_secs(srv, len) : 0);
    return 0;
}

static int64_t
req_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Authenticate rq (a route that needs it) and apply the key's rate and the
 * address's failure limit. Returns 0 to go on, or -1 with a reply set.
 */
static int
authorize(struct http_server *srv, struct req *r)
{
    const struct http_opts *o = &srv->hs_opts;
    const struct guard_cfg *gc = &srv->hs_lim;
    struct http_req *rq = &r->r_rq;
    unsigned wait, n;
    const char *k;

    if (o->ho_auth(rq) < 0) {
        if (rq->rq_status != 401 || gc->gc_auth_fail_max == 0)
            return -1;
        n = guard_fail(srv->hs_fails, &r->r_addr, sizeof(r->r_addr),
                        AUTH_FAIL_WINDOW, req_now_us(), &wait);
        if (n > gc->gc_auth_fail_max) {
            r->r_retry = wait;
            http_reply_detail(rq, 429, "Too many failed authentications"
                              " from this address");
        }
        return -1;
    }
    k = rq->rq_key_name;
    if (gc->gc_rate_key > 0 && k != NULL &&
        (wait = guard_take(srv->hs_keys, k, strlen(k), gc->gc_rate_key,
                            gc->gc_burst_key, req_now_us())) > 0) {
        r->r_retry = wait;
        http_reply_detail(rq, 429, "Too many requests for this key");
        return -1;
    }
    return 0;
}

static void
dispatch(struct http_server *srv, struct http_req *rq)
{
    const struct http_opts *o = &srv->hs_opts;
    int known;

    rq->rq_route = find_route(o, rq->rq_method, rq->rq_url, &known);
    if (rq->rq_route == NULL) {
        if (known)
            http_reply_detail(rq, 405, "Method Not Allowed");
        else
            http_reply_detail(rq, 404, "Not Found");
        return;
    }
    if (!(rq->rq_route->hr_flags & HR_NOAUTH) && o->ho_auth != NULL &&
        authorize(srv, (struct req *)rq) < 0)
        return;
    if (rq->rq_body_over) {
        http_reply_detail(rq, 413, "Request body larger than 1 MiB");
        return;
    }
    if (rq->rq_route->hr_handler(rq) < 0 && !rq->rq_replied)
        http_reply_detail(rq, 500, "Internal error");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **req_cls)
{
    struct http_server *srv = cls;
    struct http_req *rq = *req_cls;

    (void)version;
    if (rq == NULL) {
        struct req *r = calloc(1, sizeof(*r));
        const union MHD_ConnectionInfo *ci;

        if (r == NULL)
            return MHD_NO;
        rq = &r->r_rq;
        clock_gettime(CLOCK_MONOTONIC, &rq->rq_start);
        rq->rq_app = srv->hs_opts.ho_app;
        rq->rq_conn = conn;
        rq->rq_method = method;
        rq->rq_url = url;
        *req_cls = rq;
        ci = MHD_get_connection_info(conn,
                                     MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->r_conn = ci != NULL ? ci->socket_context : NULL;
        if (first_call(srv, r) < 0) {
            r->r_close = 1;
            return queue(srv, rq);  /* refused: the connection closes */
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        if (!rq->rq_body_over) {
            if (rq->rq_body.sb_len + n > HTTP_MAX_BODY) {
                rq->rq_body_over = 1;
                sbuf_free(&rq->rq_body);
            } else if (sbuf_add(&rq->rq_body, upload_data, n) < 0) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is in: no deadline while it is handled. */
    conn_deadline(((struct req *)rq)->r_conn, 0);
    if (rq->rq_suspended) {
        /* Resumed: the continuation sets the reply. */
        rq->rq_suspended = 0;
        if (rq->rq_cont(rq) < 0 && !rq->rq_replied)
            http_reply_detail(rq, 500, "Internal error");
    } else if (!rq->rq_replied) {
        dispatch(srv, rq);
    }
    if (rq->rq_suspended)
        return MHD_YES;
    if (!rq->rq_replied)
        http_reply_detail(rq, 500, "Internal error");
    return queue(srv, rq);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct http_req *rq = *req_cls;
    struct req *r = (struct req *)rq;
    unsigned status;
    int64_t usec;

    (void)conn;
    if (rq == NULL)
        return;
    /* Kept alive: the next request's headers are due within the idle
     * timeout plus the header timeout (MHD closes it idle before). */
    conn_deadline(r->r_conn, (int64_t)srv->hs_opts.ho_conn_timeout +
                                 srv->hs_lim.gc_header_timeout);
    status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->rq_status : 499;
    usec = elapsed_us(&rq->rq_start);
    log_request(rq->rq_key_name, rq->rq_method, rq->rq_url,
                rq->rq_client[0] ? rq->rq_client : NULL, status,
                (long long)usec, r->r_addr_s[0] ? r->r_addr_s : NULL);
    if (srv->hs_opts.ho_on_done != NULL)
        srv->hs_opts.ho_on_done(rq, status, usec);
    if (rq->rq_data_free != NULL)
        rq->rq_data_free(rq->rq_data);
    sbuf_free(&rq->rq_body);
    sbuf_free(&rq->rq_resp);
    free(rq);
    *req_cls = NULL;
}

static void
on_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    log_warnx("libmicrohttpd panic at %s:%u: %s", file ? file : "?", line,
              reason ? reason : "?");
    abort();
}

/* MHD_OPTION_NOTIFY_CONNECTION: track every connection and its deadline
 * for complete headers. */
static void
on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    struct conn *c = *socket_context;
    const union MHD_ConnectionInfo *ci;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return;         /* untracked: MHD's own limits still hold */
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->c_fd = ci != NULL ? ci->connect_fd : -1;
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        guard_addr_from_sockaddr(ci != NULL ? ci->client_addr : NULL,
                                  &c->c_peer);
        conn_deadline(c, srv->hs_lim.gc_header_timeout);
        pthread_mutex_lock(&srv->hs_mu);
        c->c_next = srv->hs_conns;
        if (c->c_next != NULL)
            c->c_next->c_prev = c;
        srv->hs_conns = c;
        pthread_mutex_unlock(&srv->hs_mu);
        *socket_context = c;
        return;
    }
    if (c == NULL)
        return;
    /* MHD closes the socket after this returns: the reaper, which holds
     * hs_mu while it shuts sockets down, never sees a closed one. */
    pthread_mutex_lock(&srv->hs_mu);
    if (c->c_prev != NULL)
        c->c_prev->c_next = c->c_next;
    else
        srv->hs_conns = c->c_next;
    if (c->c_next != NULL)
        c->c_next->c_prev = c->c_prev;
    pthread_mutex_unlock(&srv->hs_mu);
    free(c);
    *socket_context = NULL;
}

/* Once a second: shut down every connection past its deadline. */
static void *
reaper_main(void *arg)
{
    struct http_server *srv = arg;
    unsigned long total = 0;

    pthread_mutex_lock(&srv->hs_mu);
    while (!srv->hs_stopping) {
        struct timespec ts;
        int64_t now = mono_ms(), dl;
        unsigned n = 0;
        struct conn *c;

        for (c = srv->hs_conns; c != NULL; c = c->c_next) {
            dl = __atomic_load_n(&c->c_deadline, __ATOMIC_RELAXED);
            if (dl == 0 || dl > now || c->c_fd < 0)
                continue;
            shutdown(c->c_fd, SHUT_RDWR);
            __atomic_store_n(&c->c_deadline, 0, __ATOMIC_RELAXED);
            n++;
        }
        if (n > 0) {
            total += n;
            log_info("closed %u connection%s past the header, body or reply"
                     " deadline (%lu so far)", n, n == 1 ? "" : "s", total);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&srv->hs_cv, &srv->hs_mu, &ts);
    }
    pthread_mutex_unlock(&srv->hs_mu);
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* MHD's own messages: the reason a start fails (a bad certificate), else
 * debug only (a client can cause them). */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (__atomic_load_n(&srv->hs_started, __ATOMIC_RELAXED))
        log_debug("libmicrohttpd: %s", msg);
    else
        log_warnx("libmicrohttpd: %s", msg);
}

#define PEM_MAX (1024 * 1024)

/* Read a PEM file (NUL-terminated, caller frees and wipes) or NULL with a
 * message in err. what names it for the message. */
static char *
read_pem(const char *path, const char *what, const char *marker,
         size_t *lenp, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    if ((buf = malloc(PEM_MAX + 1)) == NULL) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        goto fail;
    }
    while (len < PEM_MAX &&
           (n = read(fd, buf + len, PEM_MAX - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
            goto fail;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (len >= PEM_MAX || strlen(buf) != len ||
        strstr(buf, "-----BEGIN ") == NULL || strstr(buf, marker) == NULL) {
        snprintf(err, errlen, "%s %s: not a PEM file with a %s", what, path,
                 marker);
        goto fail;
    }
    close(fd);
    *lenp = len;
    return buf;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, len);
        free(buf);
    }
    close(fd);
    return NULL;
}

static void
server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    guard_cidrs_free(srv->hs_trusted);
    guard_table_free(srv->hs_keys);
    guard_table_free(srv->hs_ips);
    guard_table_free(srv->hs_fails);
    pthread_cond_destroy(&srv->hs_cv);
    pthread_mutex_destroy(&srv->hs_mu);
    free(srv);
}

/* TLS paths from the options or the environment; "" counts as unset.
 * 0, or -1 with err when only one is given. */
static int
tls_paths(const char *cert_opt, const char *key_opt, const char **cert,
          const char **key, char *err, size_t errlen)
{
    *cert = cert_opt != NULL ? cert_opt : getenv("TLS_CERT");
    *key = key_opt != NULL ? key_opt : getenv("TLS_KEY");
    if (*cert != NULL && (*cert)[0] == '\0')
        *cert = NULL;
    if (*key != NULL && (*key)[0] == '\0')
        *key = NULL;
    if ((*cert == NULL) != (*key == NULL)) {
        snprintf(err, errlen, "HTTPS needs both --tls-cert and --tls-key"
                 " (TLS_CERT, TLS_KEY)");
        return -1;
    }
    return 0;
}

int
http_check_settings(const char *tls_cert, const char *tls_key, char *err,
                    size_t errlen)
{
    struct guard_cfg gc;
    struct guard_cidrs *cs;
    const char *cert_path, *key_path;
    char *buf;
    size_t len;

    if (guard_cfg_from_env(&gc, err, errlen) < 0)
        return -1;
    if ((cs = guard_cidrs_parse(gc.gc_trusted, err, errlen)) == NULL)
        return -1;
    guard_cidrs_free(cs);
    if (tls_paths(tls_cert, tls_key, &cert_path, &key_path, err, errlen) < 0)
        return -1;
    if (cert_path == NULL)
        return 0;
    if ((buf = read_pem(cert_path, "--tls-cert", "CERTIFICATE", &len, err,
                        errlen)) == NULL)
        return -1;
    free(buf);
    if ((buf = read_pem(key_path, "--tls-key", "PRIVATE KEY", &len, err,
                        errlen)) == NULL)
        return -1;
    explicit_bzero(buf, len);
    free(buf);
    return 0;
}

struct http_server *
http_start(const struct http_opts *o, unsigned *port_out, char *err,
           size_t errlen)
{
    struct http_server *srv = NULL;
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    struct MHD_OptionItem tls[3];
    const char *cert_path, *key_path;
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    unsigned per_ip;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, o->ho_host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)o->ho_port);
    } else if (inet_pton(AF_INET6, o->ho_host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)o->ho_port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--host: \"%s\" is not an IPv4 or IPv6 address",
                 o->ho_host);
        return NULL;
    }
    if ((srv = calloc(1, sizeof(*srv))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&srv->hs_mu, NULL);
    pthread_cond_init(&srv->hs_cv, NULL);
    srv->hs_opts = *o;
    if (guard_cfg_from_env(&srv->hs_lim, err, errlen) < 0)
        goto fail;
    if ((srv->hs_trusted = guard_cidrs_parse(srv->hs_lim.gc_trusted, err,
                                              errlen)) == NULL)
        goto fail;
    if ((srv->hs_keys = guard_table_new(256)) == NULL ||
        (srv->hs_ips = guard_table_new(4096)) == NULL ||
        (srv->hs_fails = guard_table_new(4096)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    log_set_format(strcmp(srv->hs_lim.gc_log_format, "json") == 0
                       ? LOG_FMT_JSON
                       : LOG_FMT_TEXT);
    per_ip = o->ho_per_ip_limit > 0 ? o->ho_per_ip_limit
                                    : srv->hs_lim.gc_per_ip_conns;
    /* TLS: flags (--tls-cert, --tls-key) or TLS_CERT / TLS_KEY. */
    if (tls_paths(o->ho_tls_cert, o->ho_tls_key, &cert_path, &key_path, err,
                  errlen) < 0)
        goto fail;
    memset(tls, 0, sizeof(tls));
    tls[0].option = MHD_OPTION_END;
    if (cert_path != NULL) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "--tls-cert: this libmicrohttpd has no TLS");
            goto fail;
        }
        if ((cert = read_pem(cert_path, "--tls-cert", "CERTIFICATE",
                             &cert_len, err, errlen)) == NULL ||
            (key = read_pem(key_path, "--tls-key", "PRIVATE KEY", &key_len,
                            err, errlen)) == NULL)
            goto fail;
        flags |= MHD_USE_TLS;
        tls[0].option = MHD_OPTION_HTTPS_MEM_KEY;
        tls[0].ptr_value = key;
        tls[1].option = MHD_OPTION_HTTPS_MEM_CERT;
        tls[1].ptr_value = cert;
        tls[2].option = MHD_OPTION_END;
    }
    /* libmicrohttpd 0.9.75 traps (notes/libmicrohttpd.md): one epoll
     * thread stalls when 128 connections are ready at once, and the
     * connection limit is split across the pool: keep each worker under
     * 128 connections and the pool at two threads or more. */
    if (srv->hs_opts.ho_threads < 2)
        srv->hs_opts.ho_threads = 2;
    if (srv->hs_opts.ho_conn_limit > 120 * srv->hs_opts.ho_threads) {
        log_warnx("max connections lowered from %u to %u (120 a thread)",
                  srv->hs_opts.ho_conn_limit, 120 * srv->hs_opts.ho_threads);
        srv->hs_opts.ho_conn_limit = 120 * srv->hs_opts.ho_threads;
    }
    o = &srv->hs_opts;
    MHD_set_panic_func(on_panic, NULL);
    srv->hs_daemon = MHD_start_daemon(
        flags, (uint16_t)o->ho_port, NULL, NULL, on_request, srv,
        /* first, or MHD logs its own messages before it (its doc) */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->ho_threads),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->ho_conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->ho_conn_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    /* GnuTLS has its own copy now. */
    if (key != NULL)
        explicit_bzero(key, key_len);
    free(key);
    key = NULL;
    free(cert);
    cert = NULL;
    if (srv->hs_daemon == NULL) {
        if (cert_path != NULL)
            snprintf(err, errlen, "cannot start HTTPS on %s port %u: the"
                     " certificate (%s) or key (%s) is invalid or they do"
                     " not match, or the port is taken (see the"
                     " libmicrohttpd message above)", o->ho_host,
                     o->ho_port, cert_path, key_path);
        else
            snprintf(err, errlen, "cannot listen on %s port %u: %s",
                     o->ho_host, o->ho_port, strerror(errno));
        goto fail;
    }
    __atomic_store_n(&srv->hs_started, 1, __ATOMIC_RELAXED);
    if (pthread_create(&srv->hs_reaper, NULL, reaper_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the reaper thread");
        MHD_stop_daemon(srv->hs_daemon);
        goto fail;
    }
    srv->hs_reaper_on = 1;
    info = MHD_get_daemon_info(srv->hs_daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : o->ho_port;
    log_info("limits: headers %u s, body %u s + 1 s/16 KiB, %u connections"
             " (%u an address), %u req/s a key, %u req/s an address, %u"
             " failed logins a minute, %zu trusted proxies, %s%s log",
             srv->hs_lim.gc_header_timeout, srv->hs_lim.gc_body_timeout_base,
             o->ho_conn_limit, per_ip, srv->hs_lim.gc_rate_key,
             srv->hs_lim.gc_rate_ip, srv->hs_lim.gc_auth_fail_max,
             guard_cidrs_count(srv->hs_trusted),
             cert_path != NULL ? "HTTPS, " : "", srv->hs_lim.gc_log_format);
    return srv;
fail:
    if (key != NULL)
        explicit_bzero(key, key_len);
    free(key);
    free(cert);
    server_free(srv);
    return NULL;
}

void
http_stop(struct http_server *srv, unsigned grace_ms)
{
    unsigned waited = 0;

    if (srv == NULL)
        return;
    MHD_quiesce_daemon(srv->hs_daemon);
    for (;;) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(
            srv->hs_daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

        if (info == NULL || info->num_connections == 0 || waited >= grace_ms)
            break;
        usleep(10000);
        waited += 10;
    }
    if (srv->hs_reaper_on) {
        pthread_mutex_lock(&srv->hs_mu);
        srv->hs_stopping = 1;
        pthread_cond_signal(&srv->hs_cv);
        pthread_mutex_unlock(&srv->hs_mu);
        pthread_join(srv->hs_reaper, NULL);
    }
    MHD_stop_daemon(srv->hs_daemon);
    while (srv->hs_conns != NULL) {     /* none, unless MHD skipped one */
        struct conn *c = srv->hs_conns;

        srv->hs_conns = c->c_next;
        free(c);
    }
    server_free(srv);
}
