/*
 * http.c - libmicrohttpd transport: limits, bodies, routing, replies,
 * suspension and the request log (see http.h).
 *
 * Answer on the second call, never the first (notes/libmicrohttpd.md): a
 * reply queued before the request is complete closes the connection. The
 * only replies queued on the first call are refusals (413, 400) that
 * should close it.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

struct http_server {
    struct MHD_Daemon *hs_daemon;
    struct http_opts hs_opts;
};

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

/* Parse with at most 64 KiB + 8 bytes of heap per byte of body (a client
 * object takes about 4). */
static json_t *
parse_capped(struct http_req *rq, size_t flags, json_error_t *jerr,
             int *over)
{
    json_t *v;

    tl_used = 0;
    tl_over = 0;
    tl_limit = 65536 + 8 * rq->rq_body.sb_len;
    v = json_loadb(rq->rq_body.sb_buf, rq->rq_body.sb_len, flags, jerr);
    tl_limit = 0;
    *over = tl_over;
    return v;
}

json_t *
http_body_json(struct http_req *rq)
{
    json_error_t jerr;
    json_t *v, *errs;
    size_t pos;
    int over;

    if (rq->rq_body.sb_len == 0) {
        errs = json_array();
        model_error(errs, "missing", "Field required", NULL, "body", NULL);
        http_reply_errors(rq, errs);
        json_decref(errs);
        return NULL;
    }
    v = parse_capped(rq, JSON_ALLOW_NUL, &jerr, &over);
    if (v != NULL)
        return v;
    if (over) {
        malloc_trim(0);         /* give the refused tree's heap back */
        http_reply_detail(rq, 413, "Request body too large to process");
        return NULL;
    }
    /* jansson points just past the bad token; FastAPI at its start. */
    pos = jerr.position > 0 ? (size_t)jerr.position - 1 : 0;
    if (json_error_code(&jerr) == json_error_numeric_overflow) {
        v = parse_capped(rq, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr,
                         &over);
        if (v != NULL) {
            rq->rq_ints_as_real = 1;
            rq->rq_overflow_pos = pos;
            return v;
        }
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
queue(struct http_req *rq)
{
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
                                "application/json");
    if (rq->rq_ignored[0] != '\0')
        MHD_add_response_header(resp, "X-Ignored-Fields", rq->rq_ignored);
    if (rq->rq_status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (rq->rq_status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    ret = MHD_queue_response(rq->rq_conn, rq->rq_status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Content-Length over the limit, or not a number: refuse before reading. */
static int
check_length(struct http_req *rq)
{
    const char *cl = http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = 0;
    const char *p;

    if (cl == NULL)
        return 0;
    for (p = cl; *p; p++) {
        if (*p < '0' || *p > '9' || p - cl > 18) {
            http_reply_detail(rq, 400, "Invalid Content-Length");
            return -1;
        }
        n = n * 10 + (unsigned)(*p - '0');
    }
    if (p == cl) {
        http_reply_detail(rq, 400, "Invalid Content-Length");
        return -1;
    }
    if (n > HTTP_MAX_BODY) {
        http_reply_detail(rq, 413, "Request body larger than 1 MiB");
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
        o->ho_auth(rq) < 0)
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
        if ((rq = calloc(1, sizeof(*rq))) == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->rq_start);
        rq->rq_app = srv->hs_opts.ho_app;
        rq->rq_conn = conn;
        rq->rq_method = method;
        rq->rq_url = url;
        *req_cls = rq;
        if (check_length(rq) < 0)
            return queue(rq);       /* refused: MHD closes the connection */
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
    return queue(rq);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct http_req *rq = *req_cls;
    unsigned status;
    int64_t usec;

    (void)conn;
    if (rq == NULL)
        return;
    status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->rq_status : 499;
    usec = elapsed_us(&rq->rq_start);
    log_request(rq->rq_key_name, rq->rq_method, rq->rq_url,
                rq->rq_client[0] ? rq->rq_client : NULL, status,
                (long long)usec);
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

struct http_server *
http_start(const struct http_opts *o, unsigned *port_out, char *err,
           size_t errlen)
{
    struct http_server *srv = NULL;
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    const union MHD_DaemonInfo *info;

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
    srv->hs_opts = *o;
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
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->ho_threads),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->ho_conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->ho_per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->ho_conn_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
        MHD_OPTION_END);
    if (srv->hs_daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s port %u: %s", o->ho_host,
                 o->ho_port, strerror(errno));
        free(srv);
        return NULL;
    }
    info = MHD_get_daemon_info(srv->hs_daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : o->ho_port;
    return srv;
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
    MHD_stop_daemon(srv->hs_daemon);
    free(srv);
}
