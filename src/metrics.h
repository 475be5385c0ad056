/*
 * metrics.h - Prometheus metrics of patriot-api: requests by route and
 * status, a latency histogram per route (lock-free counters updated from
 * http's per-request completion hook), and, read at scrape time, clients
 * per key and import state, the outbox queue, the age of the oldest pending
 * client and the last combine run (meta keys written by patriot-combine).
 *
 * Where they are served (metrics_setup reads the environment):
 *   METRICS_TOKEN=secret      GET /metrics on the API port with
 *                             "Authorization: Bearer secret"; without it
 *                             the path answers 404 like an unknown one.
 *   METRICS_LISTEN=ADDR:PORT  a second listener (one thread, IPv4 or
 *                             [IPv6] literal) serving GET /metrics without
 *                             authentication; meant for 127.0.0.1.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "store.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct app;
struct metrics;

/*
 * Counters for the routes of the table routes[0..nroutes) (borrowed: must
 * outlive the metrics; requests are matched by pointer into it). Returns a
 * new object (free with metrics_free) or NULL on no memory.
 */
struct metrics *metrics_new(const struct http_route *routes, size_t nroutes);

/* Free; NULL-safe. */
void metrics_free(struct metrics *m);

/*
 * Count one finished request: route (NULL or outside the table: "other"),
 * status as sent, duration in microseconds. Any thread, lock-free, does not
 * allocate.
 */
void metrics_observe(struct metrics *m, const struct http_route *route,
                     unsigned status, int64_t usec);

/*
 * Append the exposition text (format 0.0.4) to out: the counters, then
 * what s says (s may be NULL: those metrics are left out and
 * patriot_store_up is 0), and outbox_queued. 0, or -1 on no memory.
 */
int metrics_render(struct metrics *m, struct store *s, size_t outbox_queued,
                   struct sbuf *out);

/*
 * 1 when GET /metrics is served on the API port (METRICS_TOKEN was set)
 * and the Authorization header value auth (may be NULL) is "Bearer
 * <token>"; compared in constant time on SHA-256 digests. 0 when the
 * token is wrong or missing, -1 when metrics are off on the API port
 * (answer 404).
 */
int metrics_check_token(const struct metrics *m, const char *auth);

/*
 * Wire metrics into the app from the environment (METRICS_TOKEN,
 * METRICS_LISTEN): creates a->ap_metrics for ho's routes, sets
 * ho->ho_on_done, and starts the loopback listener if asked.
 * Call after the app is set up and before http_start. Returns 0, or -1
 * with a message in err (a bad METRICS_LISTEN, a port in use).
 */
int metrics_setup(struct app *a, struct http_opts *ho, char *err,
                  size_t errlen);

/* Stop the listener and free a->ap_metrics; after http_stop. NULL-safe
 * on an app without metrics. */
void metrics_stop(struct app *a);

/* The http_opts.ho_on_done hook (rq->rq_app is a struct app). */
void metrics_on_done(struct http_req *rq, unsigned status, int64_t usec);
