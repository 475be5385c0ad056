/*
 * http.h - the HTTP transport of patriot-api on GNU libmicrohttpd: limits,
 * request bodies, the routing table, JSON responses, suspension of a
 * request while the writer commits it, and the request log.
 *
 * The route table and the handlers live in api.c; this module only moves
 * bytes and enforces the rules every route shares.
 */
#pragma once

#include <microhttpd.h>
#include <stdint.h>
#include <time.h>

#include "model.h"
#include "store.h"

#define HTTP_MAX_BODY (1024 * 1024)     /* 1 MiB: 413 past this */

struct http_req;
struct http_server;

/* A handler sets the response with http_reply*() and returns 0, or calls
 * http_suspend() and returns 0, to be continued by rq_cont. */
typedef int (*http_handler)(struct http_req *rq);

#define HR_BODY 0x1         /* route takes a JSON body */
#define HR_NOAUTH 0x2       /* route needs no API key */
#define HR_OWNAUTH 0x4      /* with HR_NOAUTH: the handler checks a bearer
                               token of its own (GET /metrics) */

/* Request parameters of a route besides its body (struct http_route
 * hr_params), for the OpenAPI document. */
#define HP_CLIENT_ID 0x1    /* header X-Client-Id (required) */
#define HP_USER_NO 0x2      /* header X-User-No (required) */
#define HP_IMPORT_QUERY 0x4 /* query ?state= &after= &limit= */

/*
 * One endpoint. Besides what the dispatcher needs, a route carries what
 * the OpenAPI document (openapi.c) says about it, so that the document is
 * generated from the table the server runs on and cannot drift.
 */
struct http_route {
    const char *hr_method;
    const char *hr_path;
    http_handler hr_handler;
    unsigned hr_flags;
    const char *hr_summary;     /* one line, for docs and logs */
    const struct mtable *hr_body;   /* HR_BODY: the body's field table */
    unsigned hr_params;         /* HP_* */
    /* Statuses the handler answers, space-separated ("201 200 404"); the
     * first is the success. 400 and 429 (any route), 401 (routes with
     * auth), 413 and 422 (routes with a body) are added by the document
     * generator (openapi.c route_statuses). */
    const char *hr_statuses;
    /* Schema of the success body (a name in openapi.c's components), or
     * NULL for none (204) */
    const char *hr_response;
    /* Content-Type of a 200 answer; NULL: application/json */
    const char *hr_content_type;
};

struct http_req {
    void *rq_app;                       /* the server's app pointer */
    const struct http_route *rq_route;
    struct MHD_Connection *rq_conn;
    const char *rq_method;
    const char *rq_url;
    struct sbuf rq_body;                /* request body, NUL-terminated */
    int rq_body_over;                   /* body exceeded HTTP_MAX_BODY */
    int rq_repaired;                    /* body parsed only after a repair
                                           (below): valid only to name the
                                           bad field, never to be stored */
    int rq_ints_as_real;                /* body had an integer past int64:
                                           parsed with ints as reals */
    size_t rq_bad_pos;                  /* where, for a json_invalid */
    const char *rq_key_name;            /* set by the auth hook, for logs */
    char rq_client[24];                 /* client id for the log, or "" */
    unsigned rq_status;                 /* response status once set */
    struct sbuf rq_resp;                /* response body */
    char rq_ignored[512];               /* X-Ignored-Fields, or "" */
    http_handler rq_cont;               /* continuation after resume */
    int rq_suspended;
    int rq_replied;
    void *rq_data;                      /* handler state, freed by: */
    void (*rq_data_free)(void *);
    struct timespec rq_start;
};

struct http_opts {
    const char *ho_host;                /* IPv4 or IPv6 literal */
    unsigned ho_port;                   /* 0: pick one */
    unsigned ho_threads;
    unsigned ho_conn_limit;
    unsigned ho_per_ip_limit;
    unsigned ho_conn_timeout;           /* seconds idle */
    const struct http_route *ho_routes;
    size_t ho_nroutes;
    /* Called before every handler of a route without HR_NOAUTH; returns 0
     * to go on, or sets a 401 reply and returns -1. */
    int (*ho_auth)(struct http_req *rq);
    /* Called once per finished request (any thread), after the request log
     * line: status as sent (499 when the client went away), microseconds
     * since the headers arrived. rq->rq_route is NULL for unknown routes.
     * May be NULL. Must not block. */
    void (*ho_on_done)(struct http_req *rq, unsigned status, int64_t usec);
    void *ho_app;
    /* HTTPS: PEM files, read once at start (--tls-cert, --tls-key); NULL:
     * the TLS_CERT / TLS_KEY environment variables, else plain HTTP. The
     * other limits (HEADER_TIMEOUT, RATE_LIMIT_KEY, TRUSTED_PROXIES, ...)
     * come from the environment: see guard.h. ho_per_ip_limit 0 means
     * MAX_CONNECTIONS_PER_IP (default 32; 0 behind TRUSTED_PROXIES). */
    const char *ho_tls_cert;
    const char *ho_tls_key;
};

/*
 * Route jansson's allocations through a per-thread budget, so that parsing
 * a body can be capped (1 MiB of "[{},{},...]" would take 70 MB). Call once
 * in main, before any other jansson call.
 */
void http_json_init(void);

/*
 * Start listening. Returns the server (stop with http_stop) or NULL with a
 * message in err. *port_out gets the bound port.
 */
struct http_server *http_start(const struct http_opts *o, unsigned *port_out,
                               char *err, size_t errlen);

/*
 * For --check-config: the limits' environment variables (guard.h), the
 * trusted proxies, and the TLS files (tls_cert/tls_key as for
 * ho_tls_cert/ho_tls_key: NULL means TLS_CERT/TLS_KEY) can be read and look
 * like PEM. Does not prove that the key matches the certificate (start-up
 * does). Returns 0, or -1 with a message naming the setting in err.
 */
int http_check_settings(const char *tls_cert, const char *tls_key,
                        char *err, size_t errlen);

/* Stop accepting, let requests in flight finish (up to grace_ms), stop.
 * NULL-safe. */
void http_stop(struct http_server *srv, unsigned grace_ms);

/* The client's address as text ("192.0.2.7", "2001:db8::1"): the peer,
 * or from X-Forwarded-For when the peer is a trusted proxy (guard.h).
 * Borrowed, valid during the request. */
const char *http_client_addr(struct http_req *rq);

/* A request header's value (borrowed, valid during the request) or NULL. */
const char *http_header(struct http_req *rq, const char *name);

/* Set the reply: status and a body of len bytes (copied). */
int http_reply(struct http_req *rq, unsigned status, const char *body,
               size_t len);

/* Reply {"detail": "<msg>"}. */
int http_reply_detail(struct http_req *rq, unsigned status, const char *msg);

/* Reply {"detail": <errs>} with status 422; errs borrowed. */
int http_reply_errors(struct http_req *rq, json_t *errs);

/* Reply with the body already built in rq->rq_resp. */
int http_reply_resp(struct http_req *rq, unsigned status);

/*
 * Suspend the request until http_resume(); on resume, cont is called
 * (in an HTTP thread) to set the reply. Call from a handler only.
 */
void http_suspend(struct http_req *rq, http_handler cont);

/* Resume a suspended request; any thread. */
void http_resume(struct http_req *rq);

/* Parse the request body as JSON for a validated route. Returns a new
 * value, or NULL after setting a 422 reply (missing or malformed body).
 * An integer literal past int64 is no syntax error: the body is then parsed
 * with integers as reals and rq_ints_as_real set; a string holding invalid
 * UTF-8, a raw control byte or a lone surrogate escape is parsed from a copy
 * with those replaced by \u0000. Either way rq_repaired is set: the
 * validator can then name the field (model.h MV_INTS_AS_REAL), and a body
 * that validates anyway must still be refused. */
json_t *http_body_json(struct http_req *rq);

/* Reply 422 json_invalid at byte position pos. */
int http_reply_json_invalid(struct http_req *rq, size_t pos,
                            const char *what);
