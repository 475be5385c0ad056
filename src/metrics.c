/*
 * metrics.c - Prometheus metrics of patriot-api (see metrics.h).
 *
 * The hot path is metrics_observe(): two relaxed atomic additions and a
 * third for the latency sum, into counters sharded by thread so that the
 * HTTP threads do not bounce one cache line between them. A scrape sums
 * the shards and reads the store.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api.h"
#include "keys.h"
#include "log.h"
#include "outbox.h"

/* Statuses counted by exact code; anything else is "other". */
static const unsigned status_codes[] = {200, 201, 204, 400, 401, 404, 405,
                                        409, 413, 422, 499, 500, 503};
#define NCODES (sizeof(status_codes) / sizeof(status_codes[0]))
#define NSTATUS (NCODES + 1)

/* Latency buckets (upper bounds), in microseconds and as "le" labels. */
static const int64_t bucket_us[] = {100, 250, 500, 1000, 2500, 5000, 10000,
                                    25000, 50000, 100000, 250000, 500000,
                                    1000000, 2500000, 5000000, 10000000};
static const char *const bucket_le[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};
#define NBUCKET (sizeof(bucket_us) / sizeof(bucket_us[0]))

/* One route's counters in one shard; buckets are not cumulative here
 * (the last is +Inf). 64-byte aligned: shards share no cache line. */
struct route_ctr {
    _Alignas(64) _Atomic uint64_t rc_status[NSTATUS];
    _Atomic uint64_t rc_bucket[NBUCKET + 1];
    _Atomic uint64_t rc_sum_us;
};

#define NSHARD 4

struct metrics {
    const struct http_route *m_routes;
    size_t m_nroutes;
    struct route_ctr *m_shard[NSHARD];  /* m_nroutes + 1 each: last "other" */
    int m_token_set;
    unsigned char m_token[KEYS_HASH_LEN]; /* SHA-256 of METRICS_TOKEN */
    struct MHD_Daemon *m_daemon;        /* METRICS_LISTEN, or NULL */
    struct app *m_app;
    struct store *m_store;              /* the listener thread's reader */
};

static _Atomic unsigned next_shard;
static _Thread_local int tl_shard = -1;

struct metrics *
metrics_new(const struct http_route *routes, size_t nroutes)
{
    struct metrics *m;
    size_t i, sz = (nroutes + 1) * sizeof(struct route_ctr);

    if ((m = calloc(1, sizeof(*m))) == NULL)
        return NULL;
    m->m_routes = routes;
    m->m_nroutes = nroutes;
    for (i = 0; i < NSHARD; i++) {
        if ((m->m_shard[i] = aligned_alloc(64, sz)) == NULL) {
            metrics_free(m);
            return NULL;
        }
        memset(m->m_shard[i], 0, sz);
    }
    return m;
}

void
metrics_free(struct metrics *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < NSHARD; i++)
        free(m->m_shard[i]);
    free(m);
}

void
metrics_observe(struct metrics *m, const struct http_route *route,
                unsigned status, int64_t usec)
{
    struct route_ctr *c;
    size_t r = m->m_nroutes, s, b;

    if (tl_shard < 0)
        tl_shard = (int)(atomic_fetch_add_explicit(&next_shard, 1,
                                                   memory_order_relaxed) %
                         NSHARD);
    if (route != NULL && route >= m->m_routes &&
        route < m->m_routes + m->m_nroutes)
        r = (size_t)(route - m->m_routes);
    for (s = 0; s < NCODES && status_codes[s] != status; s++)
        ;
    for (b = 0; b < NBUCKET && usec > bucket_us[b]; b++)
        ;
    if (usec < 0)
        usec = 0;
    c = &m->m_shard[tl_shard][r];
    atomic_fetch_add_explicit(&c->rc_status[s], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->rc_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->rc_sum_us, (uint64_t)usec,
                              memory_order_relaxed);
}

void
metrics_on_done(struct http_req *rq, unsigned status, int64_t usec)
{
    struct app *a = rq->rq_app;

    if (a != NULL && a->ap_metrics != NULL)
        metrics_observe(a->ap_metrics, rq->rq_route, status, usec);
}

/* ---- exposition --------------------------------------------------- */

/* A label value with \, " and newline escaped. */
static int
add_label(struct sbuf *out, const char *v)
{
    const char *p;

    for (p = v; *p; p++) {
        int rc;

        if (*p == '\\')
            rc = sbuf_add(out, "\\\\", 2);
        else if (*p == '"')
            rc = sbuf_add(out, "\\\"", 2);
        else if (*p == '\n')
            rc = sbuf_add(out, "\\n", 2);
        else
            rc = sbuf_add(out, p, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* {method="GET",path="/clients" (no closing brace) */
static int
add_route_labels(struct sbuf *out, const struct metrics *m, size_t r)
{
    const char *meth = r < m->m_nroutes ? m->m_routes[r].hr_method : "other";
    const char *path = r < m->m_nroutes ? m->m_routes[r].hr_path : "other";

    return sbuf_addstr(out, "{method=\"") < 0 || add_label(out, meth) < 0 ||
                   sbuf_addstr(out, "\",path=\"") < 0 ||
                   add_label(out, path) < 0 || sbuf_addstr(out, "\"") < 0
               ? -1
               : 0;
}

static uint64_t
sum_shards(const struct metrics *m, size_t r, size_t off)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < NSHARD; i++) {
        const _Atomic uint64_t *p = (const _Atomic uint64_t *)(const void *)(
            (const char *)&m->m_shard[i][r] + off);

        n += atomic_load_explicit(p, memory_order_relaxed);
    }
    return n;
}

#define STATUS_OFF(s) (offsetof(struct route_ctr, rc_status) + \
                       (s) * sizeof(_Atomic uint64_t))
#define BUCKET_OFF(b) (offsetof(struct route_ctr, rc_bucket) + \
                       (b) * sizeof(_Atomic uint64_t))

static int
render_requests(struct metrics *m, struct sbuf *out)
{
    size_t r, s, b;

    if (sbuf_addstr(out,
                    "# HELP patriot_http_requests_total Requests answered,"
                    " by route (unknown ones: other) and status.\n"
                    "# TYPE patriot_http_requests_total counter\n") < 0)
        return -1;
    for (r = 0; r <= m->m_nroutes; r++) {
        for (s = 0; s < NSTATUS; s++) {
            uint64_t n = sum_shards(m, r, STATUS_OFF(s));
            char code[16];

            if (n == 0)
                continue;
            if (s < NCODES)
                snprintf(code, sizeof(code), "%u", status_codes[s]);
            else
                snprintf(code, sizeof(code), "other");
            if (sbuf_addstr(out, "patriot_http_requests_total") < 0 ||
                add_route_labels(out, m, r) < 0 ||
                sbuf_printf(out, ",status=\"%s\"} %llu\n", code,
                            (unsigned long long)n) < 0)
                return -1;
        }
    }
    if (sbuf_addstr(out,
                    "# HELP patriot_http_request_duration_seconds Time from"
                    " the request's headers to its completion, by route.\n"
                    "# TYPE patriot_http_request_duration_seconds"
                    " histogram\n") < 0)
        return -1;
    for (r = 0; r <= m->m_nroutes; r++) {
        uint64_t cum = 0, sum = sum_shards(m, r, offsetof(struct route_ctr,
                                                          rc_sum_us));

        for (b = 0; b <= NBUCKET; b++)
            cum += sum_shards(m, r, BUCKET_OFF(b));
        if (cum == 0)
            continue;
        cum = 0;
        for (b = 0; b <= NBUCKET; b++) {
            cum += sum_shards(m, r, BUCKET_OFF(b));
            if (sbuf_addstr(out, "patriot_http_request_duration_seconds_bucket")
                    < 0 ||
                add_route_labels(out, m, r) < 0 ||
                sbuf_printf(out, ",le=\"%s\"} %llu\n",
                            b < NBUCKET ? bucket_le[b] : "+Inf",
                            (unsigned long long)cum) < 0)
                return -1;
        }
        if (sbuf_addstr(out, "patriot_http_request_duration_seconds_sum") < 0
            || add_route_labels(out, m, r) < 0 ||
            sbuf_printf(out, "} %.6f\n", (double)sum / 1e6) < 0 ||
            sbuf_addstr(out, "patriot_http_request_duration_seconds_count")
                < 0 ||
            add_route_labels(out, m, r) < 0 ||
            sbuf_printf(out, "} %llu\n", (unsigned long long)cum) < 0)
            return -1;
    }
    return 0;
}

struct count_ctx {
    struct sbuf *cc_out;
    int cc_fail;
    int64_t cc_oldest;          /* oldest pending changed_at, 0: none */
};

static void
count_row(void *arg, const char *key, const char *state, int64_t count,
          int64_t oldest_ms)
{
    struct count_ctx *cc = arg;

    if (strcmp(state, "pending") == 0 &&
        (cc->cc_oldest == 0 || oldest_ms < cc->cc_oldest))
        cc->cc_oldest = oldest_ms;
    if (sbuf_addstr(cc->cc_out, "patriot_clients{key=\"") < 0 ||
        add_label(cc->cc_out, key) < 0 ||
        sbuf_addstr(cc->cc_out, "\",state=\"") < 0 ||
        add_label(cc->cc_out, state) < 0 ||
        sbuf_printf(cc->cc_out, "\"} %lld\n", (long long)count) < 0)
        cc->cc_fail = 1;
}

static int
render_store(struct store *s, struct sbuf *out)
{
    static const char *results[] = {"ok", "nothing", "stopped", "failed"};
    struct count_ctx cc = {out, 0, 0};
    char v[128];
    size_t i;
    int rc;

    if (sbuf_addstr(out, "# HELP patriot_clients Clients by key and import"
                         " state.\n# TYPE patriot_clients gauge\n") < 0)
        return -1;
    if (store_count_by_state(s, count_row, &cc) < 0)
        return 1;
    if (cc.cc_fail)
        return -1;
    if (sbuf_printf(out,
                    "# HELP patriot_oldest_pending_age_seconds Age of the"
                    " oldest change not yet shipped to Patriot (0: none).\n"
                    "# TYPE patriot_oldest_pending_age_seconds gauge\n"
                    "patriot_oldest_pending_age_seconds %.3f\n",
                    cc.cc_oldest == 0
                        ? 0.0
                        : (double)(store_now_ms() - cc.cc_oldest) / 1e3) < 0)
        return -1;
    rc = store_meta_get(s, "combine.last_run", v, sizeof(v));
    if (rc == STORE_ERROR)
        return 1;
    if (rc == STORE_OK &&
        sbuf_printf(out,
                    "# HELP patriot_combine_last_run_timestamp_seconds When"
                    " patriot-combine last finished a run.\n"
                    "# TYPE patriot_combine_last_run_timestamp_seconds"
                    " gauge\n"
                    "patriot_combine_last_run_timestamp_seconds %.3f\n",
                    (double)strtoll(v, NULL, 10) / 1e3) < 0)
        return -1;
    rc = store_meta_get(s, "combine.last_result", v, sizeof(v));
    if (rc == STORE_ERROR)
        return 1;
    if (rc == STORE_OK) {
        if (sbuf_addstr(out, "# HELP patriot_combine_last_result Result of"
                             " the last combine run (1 for the one it"
                             " was).\n# TYPE patriot_combine_last_result"
                             " gauge\n") < 0)
            return -1;
        for (i = 0; i < sizeof(results) / sizeof(results[0]); i++)
            if (sbuf_printf(out, "patriot_combine_last_result{result=\"%s\"}"
                            " %d\n", results[i],
                            strcmp(v, results[i]) == 0) < 0)
                return -1;
    }
    return 0;
}

int
metrics_render(struct metrics *m, struct store *s, size_t outbox_queued,
               struct sbuf *out)
{
    int up = 0;

    if (render_requests(m, out) < 0)
        return -1;
    if (sbuf_printf(out, "# HELP patriot_outbox_queued Outbox files waiting"
                         " to be written.\n# TYPE patriot_outbox_queued"
                         " gauge\npatriot_outbox_queued %zu\n",
                    outbox_queued) < 0)
        return -1;
    if (s != NULL) {
        int rc = render_store(s, out);

        if (rc < 0)
            return -1;
        up = rc == 0;
    }
    return sbuf_printf(out, "# HELP patriot_store_up 1 if the database"
                            " answered this scrape.\n# TYPE patriot_store_up"
                            " gauge\npatriot_store_up %d\n"
                            "# HELP patriot_build_info Version.\n"
                            "# TYPE patriot_build_info gauge\n"
                            "patriot_build_info{version=\"%s\"} 1\n",
                       up, PATRIOT_VERSION);
}

int
metrics_check_token(const struct metrics *m, const char *auth)
{
    unsigned char d[KEYS_HASH_LEN];
    const char *tok;

    if (m == NULL || !m->m_token_set)
        return -1;
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    for (tok = auth + 7; *tok == ' '; tok++)
        ;
    keys_sha256(tok, strlen(tok), d);
    return keys_equal_ct(d, m->m_token, sizeof(d));
}

/* ---- the loopback listener ---------------------------------------- */

static enum MHD_Result
plain(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
      int take)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(
        len, body, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        if (take)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == 200 ? METRICS_CONTENT_TYPE
                                          : "text/plain; charset=utf-8");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
on_listener(void *cls, struct MHD_Connection *conn, const char *url,
            const char *method, const char *version, const char *upload,
            size_t *upload_size, void **req_cls)
{
    static int seen;
    struct metrics *m = cls;
    struct app *a = m->m_app;
    struct sbuf out = {0};
    char err[256];

    (void)version;
    (void)upload;
    if (*req_cls == NULL) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;       /* a body is ignored */
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") != 0)
        return plain(conn, 404, (char *)(uintptr_t)"Not Found\n", 10, 0);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return plain(conn, 405, (char *)(uintptr_t)"Method Not Allowed\n",
                     19, 0);
    if (m->m_store == NULL &&
        (m->m_store = store_open(a->ap_cfg->cfg_data_file, STORE_READONLY,
                                 err, sizeof(err))) == NULL)
        log_warnx("metrics: %s", err);
    if (metrics_render(m, m->m_store, a->ap_outbox ? outbox_queued(
                                                         a->ap_outbox)
                                                   : 0,
                       &out) < 0 ||
        out.sb_buf == NULL) {
        sbuf_free(&out);
        return plain(conn, 500, (char *)(uintptr_t)"Out of memory\n", 14, 0);
    }
    return plain(conn, 200, out.sb_buf, out.sb_len, 1);
}

/* "127.0.0.1:9100" or "[::1]:9100" into ss. 0 or -1. */
static int
parse_listen(const char *v, struct sockaddr_storage *ss, int *v6)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    char host[64];
    const char *colon, *h = v;
    size_t hl;
    char *end;
    long port;

    memset(ss, 0, sizeof(*ss));
    if ((colon = strrchr(v, ':')) == NULL)
        return -1;
    hl = (size_t)(colon - v);
    if (*v == '[') {
        if (hl < 2 || v[hl - 1] != ']')
            return -1;
        h = v + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return -1;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *v6 = 1;
        return 0;
    }
    return -1;
}

int
metrics_setup(struct app *a, struct http_opts *ho, char *err, size_t errlen)
{
    const char *tok = getenv("METRICS_TOKEN");
    const char *listen = getenv("METRICS_LISTEN");
    struct sockaddr_storage ss;
    struct metrics *m;
    int v6 = 0;

    if ((m = metrics_new(ho->ho_routes, ho->ho_nroutes)) == NULL) {
        snprintf(err, errlen, "metrics: out of memory");
        return -1;
    }
    m->m_app = a;
    if (tok != NULL && *tok != '\0') {
        keys_sha256(tok, strlen(tok), m->m_token);
        m->m_token_set = 1;
    }
    if (listen != NULL && *listen != '\0') {
        if (parse_listen(listen, &ss, &v6) < 0) {
            snprintf(err, errlen, "METRICS_LISTEN: \"%s\" is not ADDRESS:PORT"
                     " (127.0.0.1:9100, [::1]:9100)", listen);
            metrics_free(m);
            return -1;
        }
        m->m_daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                (v6 ? MHD_USE_IPv6 : 0),
            0, NULL, NULL, on_listener, m, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
            MHD_OPTION_END);
        if (m->m_daemon == NULL) {
            snprintf(err, errlen, "METRICS_LISTEN: cannot listen on %s",
                     listen);
            metrics_free(m);
            return -1;
        }
        log_info("metrics on http://%s/metrics", listen);
    }
    a->ap_metrics = m;
    ho->ho_on_done = metrics_on_done;
    return 0;
}

void
metrics_stop(struct app *a)
{
    struct metrics *m = a ? a->ap_metrics : NULL;

    if (m == NULL)
        return;
    if (m->m_daemon != NULL)
        MHD_stop_daemon(m->m_daemon);
    store_close(m->m_store);
    a->ap_metrics = NULL;
    metrics_free(m);
}
