/*
 * test_observe.c - black-box tests of what operators and integrators see
 * besides the API: GET /healthz, GET /metrics (on the API port with
 * METRICS_TOKEN, or on the METRICS_LISTEN listener), GET /openapi.json
 * and GET /docs, against the real binary on a loopback port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define AUTH_A "Authorization: Bearer " KEY_A
#define TOKEN "metrics-token-5d1e0b7a"

static int
setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));

    unsetenv("METRICS_TOKEN");
    unsetenv("METRICS_LISTEN");
    server_init_dir(s);
    *state = s;
    return 0;
}

static int
teardown(void **state)
{
    struct server *s = *state;

    server_destroy(s);
    free(s);
    unsetenv("METRICS_TOKEN");
    unsetenv("METRICS_LISTEN");
    return 0;
}

static void
expect_status(struct resp *r, long want, const char *what)
{
    if (r->rs_status != want)
        fail_msg("%s: status %ld, want %ld; body: %s", what, r->rs_status,
                 want, r->rs_body ? r->rs_body : "");
}

/* ---- /healthz ------------------------------------------------------ */

static void
test_healthz_ok(void **state)
{
    struct server *s = *state;
    struct resp *r;
    char dir[512], cmd[600];

    server_start(s);
    r = req(s, "GET", "/healthz", NULL, NULL);
    expect_status(r, 200, "GET /healthz");
    assert_string_equal(json_string_value(json_object_get(r->rs_json,
                                                          "status")),
                        "ok");
    resp_free(r);
    /* The probe file does not stay behind. */
    snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q healthz",
             server_path(s, "out", dir, sizeof(dir)));
    assert_int_not_equal(system(cmd), 0);
    server_stop(s);
}

static void
test_healthz_outbox_unwritable(void **state)
{
    struct server *s = *state;
    char out[512], moved[512], buf[64];
    struct resp *r;
    const char *reason;

    server_start(s);
    server_path(s, "out", out, sizeof(out));
    server_path(s, "out.moved", moved, sizeof(moved));
    /* A file where the outbox directory was: not writable, even for
     * root. */
    assert_int_equal(rename(out, moved), 0);
    assert_int_equal(file_write(out, "x", 1), 0);
    r = req(s, "GET", "/healthz", NULL, NULL);
    expect_status(r, 503, "GET /healthz, outbox gone");
    assert_string_equal(json_string_value(json_object_get(r->rs_json,
                                                          "status")),
                        "unavailable");
    reason = json_string_value(json_object_get(r->rs_json, "reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "outbox"));
    assert_null(strstr(r->rs_body, KEY_A));
    assert_non_null(resp_header(r, "Retry-After", buf, sizeof(buf)));
    resp_free(r);
    /* Back: healthy again, no restart needed. */
    assert_int_equal(unlink(out), 0);
    assert_int_equal(rename(moved, out), 0);
    r = req(s, "GET", "/healthz", NULL, NULL);
    expect_status(r, 200, "GET /healthz, outbox back");
    resp_free(r);
    server_stop(s);
}

/* ---- /openapi.json and /docs --------------------------------------- */

/* Every operation the served document lists is served: without a key, it
 * answers one of its documented statuses (never an undocumented 404 or
 * 405). */
static void
test_openapi_matches_the_server(void **state)
{
    struct server *s = *state;
    struct resp *r, *o;
    json_t *paths, *item, *op;
    const char *path, *m;
    char buf[128];
    size_t nops = 0;

    server_start(s);
    r = req(s, "GET", "/openapi.json", NULL, NULL);
    expect_status(r, 200, "GET /openapi.json");
    assert_non_null(resp_header(r, "Content-Type", buf, sizeof(buf)));
    assert_string_equal(buf, "application/json");
    assert_non_null(r->rs_json);
    assert_string_equal(json_string_value(json_object_get(r->rs_json,
                                                          "openapi")),
                        "3.1.0");
    paths = json_object_get(r->rs_json, "paths");
    json_object_foreach(paths, path, item) {
        json_object_foreach(item, m, op) {
            char meth[16], code[8];
            size_t i;

            for (i = 0; m[i] && i < sizeof(meth) - 1; i++)
                meth[i] = (char)(m[i] - 'a' + 'A');
            meth[i] = '\0';
            o = req(s, meth, path, NULL, NULL);
            snprintf(code, sizeof(code), "%ld", o->rs_status);
            if (json_object_get(json_object_get(op, "responses"), code) ==
                NULL)
                fail_msg("%s %s answered %ld, not documented", meth, path,
                         o->rs_status);
            resp_free(o);
            nops++;
        }
    }
    assert_true(nops >= 20);
    /* Unknown paths are not in it and answer 404. */
    assert_null(json_object_get(paths, "/nope"));
    o = req(s, "GET", "/nope", NULL, NULL);
    expect_status(o, 404, "GET /nope");
    resp_free(o);
    resp_free(r);
    server_stop(s);
}

static void
test_docs_page(void **state)
{
    struct server *s = *state;
    struct resp *r;
    char buf[128];

    server_start(s);
    r = req(s, "GET", "/docs", NULL, NULL);
    expect_status(r, 200, "GET /docs");
    assert_non_null(resp_header(r, "Content-Type", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "text/html"));
    assert_non_null(strstr(r->rs_body, "<!DOCTYPE html>"));
    assert_non_null(strstr(r->rs_body, "\"/clients/users/single\""));
    /* Self-contained: nothing loaded from elsewhere. */
    assert_null(strstr(r->rs_body, "http://"));
    assert_null(strstr(r->rs_body, "https://"));
    assert_null(strstr(r->rs_body, "src=\""));
    assert_non_null(strstr(r->rs_body, "default-src 'none'"));
    resp_free(r);
    server_stop(s);
}

/* ---- /metrics ------------------------------------------------------ */

static void
test_metrics_off_without_token(void **state)
{
    struct server *s = *state;
    struct resp *r;

    server_start(s);
    r = req(s, "GET", "/metrics", NULL, NULL);
    expect_status(r, 404, "GET /metrics without METRICS_TOKEN");
    assert_string_equal(json_string_value(json_object_get(r->rs_json,
                                                          "detail")),
                        "Not Found");
    resp_free(r);
    server_stop(s);
}

/* The value of the sample line starting with prefix (labels included),
 * or -1 when absent. */
static double
sample(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);

    while ((p = strstr(p, prefix)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

static void
set_meta(struct server *s, const char *k, const char *v)
{
    char path[512], sql[256];
    sqlite3 *db;

    server_path(s, "data.db", path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    snprintf(sql, sizeof(sql),
             "INSERT OR REPLACE INTO meta(k, v) VALUES('%s', '%s')", k, v);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_metrics_with_token(void **state)
{
    struct server *s = *state;
    const char *bad[] = {"Authorization: Bearer wrong-token", NULL};
    const char *good[] = {"Authorization: Bearer " TOKEN, NULL};
    const char *keyed[] = {"Authorization: Bearer " KEY_A, NULL};
    const char *get404[] = {AUTH_A, "X-Client-Id: 424242", NULL};
    const char *put[] = {AUTH_A, NULL};
    char buf[128], path[512];
    struct resp *r;
    char *log;
    int i;

    setenv("METRICS_TOKEN", TOKEN, 1);
    server_start(s);
    r = req(s, "GET", "/metrics", NULL, NULL);
    expect_status(r, 401, "GET /metrics without a token");
    resp_free(r);
    r = req(s, "GET", "/metrics", bad, NULL);
    expect_status(r, 401, "GET /metrics, wrong token");
    resp_free(r);
    r = req(s, "GET", "/metrics", keyed, NULL);
    expect_status(r, 401, "GET /metrics with an API key");
    resp_free(r);

    for (i = 0; i < 3; i++) {
        r = req(s, "GET", "/clients", get404, NULL);
        expect_status(r, 404, "GET /clients of nobody");
        resp_free(r);
    }
    r = req(s, "GET", "/no/such/path", NULL, NULL);
    resp_free(r);
    r = req(s, "PUT", "/clients", put,
            "{\"client_id\": 77, \"info\": {\"Name\": \"M\"}}");
    expect_status(r, 201, "PUT /clients");
    resp_free(r);
    set_meta(s, "combine.last_run", "1700000000000");
    set_meta(s, "combine.last_result", "failed");

    r = req(s, "GET", "/metrics", good, NULL);
    expect_status(r, 200, "GET /metrics");
    assert_non_null(resp_header(r, "Content-Type", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
    assert_true(sample(r->rs_body, "patriot_http_requests_total{method="
                       "\"GET\",path=\"/clients\",status=\"404\"}") == 3);
    assert_true(sample(r->rs_body, "patriot_http_requests_total{method="
                       "\"other\",path=\"other\",status=\"404\"}") == 1);
    assert_true(sample(r->rs_body, "patriot_http_requests_total{method="
                       "\"PUT\",path=\"/clients\",status=\"201\"}") == 1);
    assert_true(sample(r->rs_body, "patriot_http_requests_total{method="
                       "\"GET\",path=\"/metrics\",status=\"401\"}") == 3);
    assert_true(sample(r->rs_body, "patriot_http_request_duration_seconds_"
                       "bucket{method=\"GET\",path=\"/clients\","
                       "le=\"+Inf\"}") == 3);
    assert_true(sample(r->rs_body, "patriot_http_request_duration_seconds_"
                       "count{method=\"GET\",path=\"/clients\"}") == 3);
    assert_true(sample(r->rs_body, "patriot_http_request_duration_seconds_"
                       "sum{method=\"GET\",path=\"/clients\"}") > 0);
    assert_true(sample(r->rs_body, "patriot_clients{key=\"Alarm24\","
                       "state=\"pending\"}") == 1);
    assert_true(sample(r->rs_body, "patriot_oldest_pending_age_seconds")
                >= 0);
    assert_true(sample(r->rs_body, "patriot_outbox_queued") >= 0);
    assert_true(sample(r->rs_body,
                       "patriot_combine_last_run_timestamp_seconds") ==
                1700000000.0);
    assert_true(sample(r->rs_body, "patriot_combine_last_result{result="
                       "\"failed\"}") == 1);
    assert_true(sample(r->rs_body, "patriot_combine_last_result{result="
                       "\"ok\"}") == 0);
    assert_true(sample(r->rs_body, "patriot_store_up") == 1);
    assert_null(strstr(r->rs_body, TOKEN));
    resp_free(r);
    server_stop(s);
    /* The token is in no log line. */
    log = file_read(server_path(s, "api.log", path, sizeof(path)), NULL);
    assert_non_null(log);
    assert_null(strstr(log, TOKEN));
    free(log);
    log = file_read(server_path(s, "stderr.log", path, sizeof(path)), NULL);
    assert_true(log == NULL || strstr(log, TOKEN) == NULL);
    free(log);
}

static unsigned
free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port;

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static void
test_metrics_listener(void **state)
{
    struct server *s = *state, m;
    char listen[48], buf[128];
    unsigned port = free_port();
    struct resp *r;
    int tries;

    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    setenv("METRICS_LISTEN", listen, 1);
    server_start(s);
    r = req(s, "GET", "/healthz", NULL, NULL);
    resp_free(r);
    m = *s;
    snprintf(m.sv_base, sizeof(m.sv_base), "http://%s", listen);
    /* A request is counted when MHD reports it complete, which can come
     * just after the client has its answer: look again for up to 5 s. */
    for (tries = 0;; tries++) {
        r = req(&m, "GET", "/metrics", NULL, NULL);
        expect_status(r, 200, "GET /metrics on METRICS_LISTEN");
        if (sample(r->rs_body, "patriot_http_requests_total{method="
                   "\"GET\",path=\"/healthz\",status=\"200\"}") == 1 ||
            tries >= 100)
            break;
        resp_free(r);
        usleep(50000);
    }
    assert_non_null(resp_header(r, "Content-Type", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
    assert_true(sample(r->rs_body, "patriot_http_requests_total{method="
                       "\"GET\",path=\"/healthz\",status=\"200\"}") == 1);
    assert_true(sample(r->rs_body, "patriot_store_up") == 1);
    resp_free(r);
    r = req(&m, "GET", "/clients", NULL, NULL);
    expect_status(r, 404, "the listener serves /metrics only");
    resp_free(r);
    /* Not on the API port without a token. */
    r = req(s, "GET", "/metrics", NULL, NULL);
    expect_status(r, 404, "GET /metrics on the API port");
    resp_free(r);
    server_stop(s);
}

static void
test_metrics_listen_refused(void **state)
{
    struct server *s = *state;
    char path[512];
    char *err;

    setenv("METRICS_LISTEN", "localhost", 1);
    /* A bad value stops start-up with a message naming it. */
    {
        char cmd[2048];
        int rc;

        /* timeout: a server that ignores the variable would run on. */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && timeout 20 \"%s\" --port 0 --key-file keys.json"
                 " --xml-dir out --data-file data.db --log-file ''"
                 " >/dev/null 2>stderr.log",
                 s->sv_dir, getenv("PATRIOT_API_BIN"));
        rc = system(cmd);
        assert_true(WIFEXITED(rc));
        assert_int_not_equal(WEXITSTATUS(rc), 0);
        assert_int_not_equal(WEXITSTATUS(rc), 124);
    }
    err = file_read(server_path(s, "stderr.log", path, sizeof(path)), NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "METRICS_LISTEN"));
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_outbox_unwritable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_openapi_matches_the_server,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_off_without_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_with_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_listener, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_listen_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
