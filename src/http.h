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

struct http_route {
    const char *hr_method;
    const char *hr_path;
    http_handler hr_handler;
    unsigned hr_flags;
    const char *hr_summary;     /* one line, for docs and logs */
};

struct http_req {
    void *rq_app;                       /* the server's app pointer */
    const struct http_route *rq_route;
    struct MHD_Connection *rq_conn;
    const char *rq_method;
    const char *rq_url;
    struct sbuf rq_body;                /* request body, NUL-terminated */
    int rq_body_over;                   /* body exceeded HTTP_MAX_BODY */
    int rq_ints_as_real;                /* body had an integer past int64:
                                           parsed with ints as reals */
    size_t rq_overflow_pos;             /* where, for a json_invalid */
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

/* Stop accepting, let requests in flight finish (up to grace_ms), stop.
 * NULL-safe. */
void http_stop(struct http_server *srv, unsigned grace_ms);

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
 * with integers as reals and rq_ints_as_real set, so the validator can name
 * the field (model.h MV_INTS_AS_REAL). */
json_t *http_body_json(struct http_req *rq);

/* Reply 422 json_invalid at byte position pos. */
int http_reply_json_invalid(struct http_req *rq, size_t pos,
                            const char *what);
