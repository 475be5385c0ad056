/*
 * test_hostile.c - black-box tests of patriot-api against hostile HTTP
 * (issue 7 "Hostile HTTP", issue 5 request log and native HTTPS): the real
 * binary on loopback, raw sockets for what no client library sends.
 *
 *   framing       ambiguous framing is refused and the connection closed
 *   sizes         413 before the body, 431 and 414 for large heads
 *   deadlines     headers and bodies that trickle are cut, however slowly
 *   slowloris     200 slow connections open: a normal client is served
 *   per-address   connection limit, request rates, failed logins
 *   log           client address (X-Forwarded-For from trusted proxies
 *                 only), text and JSON lines
 *   tls           HTTPS with a self-signed certificate; bad files refused
 *
 * Each test starts its own server with its own settings (environment
 * variables, which the server inherits). Clients bind to 127.0.0.x
 * source addresses to act as different machines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"

#define AUTH_A "Authorization: Bearer " KEY_A "\r\n"

/* ---- helpers --------------------------------------------------------- */

/* Start s with the settings "NAME=value" in env (NULL-terminated), which
 * are removed from this process again once the server runs. */
static void
start_with(struct server *s, const char *const *env)
{
    char name[64];
    size_t i;

    server_init_dir(s);
    for (i = 0; env != NULL && env[i] != NULL; i++) {
        const char *eq = strchr(env[i], '=');

        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
        setenv(name, eq + 1, 1);
    }
    server_start(s);
    for (i = 0; env != NULL && env[i] != NULL; i++) {
        snprintf(name, sizeof(name), "%.*s",
                 (int)(strchr(env[i], '=') - env[i]), env[i]);
        unsetenv(name);
    }
}

/* A TCP connection to s from source address src (NULL: any); -1 if the
 * connect fails. */
static int
tcp_open(const struct server *s, const char *src)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    if (src != NULL) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
            fail_msg("bind %s: %s", src, strerror(errno));
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)s->sv_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send n bytes; 0, or -1 if the server has closed. */
static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Read from fd for up to timeout_ms: until the server closes (*closed =
 * 1), or, unless until_close, until one whole reply with Content-Length
 * is in. Returns the bytes read (NUL-terminated, caller frees).
 */
static char *
read_reply(int fd, int timeout_ms, int until_close, int *closed)
{
    long long end = now_ms() + timeout_ms;
    char *b = calloc(1, 1);
    size_t len = 0;

    assert_non_null(b);
    *closed = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = end - now_ms();
        char chunk[4096];
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
            *closed = 1;
            break;
        }
        b = realloc(b, len + (size_t)n + 1);
        assert_non_null(b);
        memcpy(b + len, chunk, (size_t)n);
        len += (size_t)n;
        b[len] = '\0';
        if (!until_close) {
            const char *h = strstr(b, "\r\n\r\n");
            const char *cl = strcasestr(b, "\r\nContent-Length:");

            if (h != NULL && cl != NULL && cl < h &&
                len >= (size_t)(h + 4 - b) + strtoul(cl + 17, NULL, 10))
                break;
        }
    }
    return b;
}

static int
status_of(const char *reply)
{
    return strncmp(reply, "HTTP/1.", 7) == 0 && strlen(reply) > 12
               ? atoi(reply + 9)
               : 0;
}

/*
 * Send data from src on a new connection and read the reply (up to 5 s).
 * Returns the status (0: none); the reply text in *out (caller frees) if
 * out is not NULL; *closed = 1 if the server closed the connection.
 */
static int
exchange(const struct server *s, const char *src, const char *data,
         size_t len, int until_close, char **out, int *closed)
{
    int fd = tcp_open(s, src), st, cl;
    char *r;

    assert_true(fd >= 0);
    send_all(fd, data, len);
    r = read_reply(fd, 5000, until_close, &cl);
    close(fd);
    st = status_of(r);
    if (closed != NULL)
        *closed = cl;
    if (out != NULL)
        *out = r;
    else
        free(r);
    return st;
}

/* Milliseconds until the server closes fd (nothing else may come), or -1
 * after timeout_ms. */
static long long
wait_closed(int fd, long long start, int timeout_ms)
{
    int closed;
    char *r = read_reply(fd, timeout_ms, 1, &closed);

    free(r);
    return closed ? now_ms() - start : -1;
}

/* GET /clients for client 1 with key; the status (404: served, no such
 * client). Retry-After copied into ra (if not NULL). */
static long
get_client(struct server *s, const char *key, const char *extra, char *ra,
           size_t ralen)
{
    char auth[128];
    const char *h[] = {auth, "X-Client-Id: 1", extra, NULL};
    struct resp *r;
    long st;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    r = req(s, "GET", "/clients", h, NULL);
    st = r->rs_status;
    if (ra != NULL && resp_header(r, "Retry-After", ra, ralen) == NULL)
        ra[0] = '\0';
    resp_free(r);
    return st;
}

static int
teardown_server(void **state)
{
    struct server *s = *state;

    if (s != NULL) {
        server_destroy(s);
        free(s);
    }
    return 0;
}

static struct server *
new_server(void **state, const char *const *env)
{
    struct server *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    *state = s;
    start_with(s, env);
    return s;
}

/* ---- framing --------------------------------------------------------- */

struct framing_case {
    const char *fc_name;
    const char *fc_head;        /* headers after the request line */
    const char *fc_body;
    int fc_status;
    const char *fc_detail;      /* part of the reply, or NULL */
};

static void
test_framing(void **state)
{
    /* Each would create client 77001 if it were interpreted. */
#define BODY77 "{\"client_id\": 77001, \"info\": {\"Name\": \"smuggled\"}}"
#define CHUNK77 "33\r\n" BODY77 "\r\n0\r\n\r\n"
    static const struct framing_case cases[] = {
        {"CL then TE", "Content-Length: 51\r\nTransfer-Encoding: chunked\r\n",
         CHUNK77, 400, "Both Content-Length and Transfer-Encoding"},
        {"TE then CL", "Transfer-Encoding: chunked\r\nContent-Length: 51\r\n",
         CHUNK77, 400, "Both Content-Length and Transfer-Encoding"},
        {"two lengths", "Content-Length: 51\r\nContent-Length: 52\r\n",
         BODY77 " ", 400, "More than one Content-Length"},
        {"two equal lengths", "Content-Length: 51\r\nContent-Length: 51\r\n",
         BODY77, 400, "More than one Content-Length"},
        {"TE gzip", "Transfer-Encoding: gzip\r\n", BODY77, 400,
         "other than chunked"},
        {"TE gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", CHUNK77,
         400, "other than chunked"},
        {"TE identity", "Transfer-Encoding: identity\r\n", BODY77, 400,
         "other than chunked"},
        {"TE twice", "Transfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n", CHUNK77, 400,
         "More than one Transfer-Encoding"},
        /* libmicrohttpd refuses these itself (its own HTML body). */
        {"length not a number", "Content-Length: 5x\r\n", BODY77, 400, NULL},
        {"negative length", "Content-Length: -51\r\n", BODY77, 400, NULL},
        {"length with sign", "Content-Length: +51\r\n", BODY77, 400, NULL},
        {"list of lengths", "Content-Length: 51, 51\r\n", BODY77, 400, NULL},
        {"empty length", "Content-Length: \r\n", BODY77, 400, NULL},
        {"length overflows", "Content-Length: 184467440737095516160\r\n",
         BODY77, 413, NULL},
    };
    struct server *s = new_server(state, NULL);
    char buf[1024], *out;
    size_t i;
    int st, closed;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct framing_case *c = &cases[i];
        int n = snprintf(buf, sizeof(buf),
                         "PUT /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A
                         "Content-Type: application/json\r\n%s\r\n%s",
                         c->fc_head, c->fc_body);

        st = exchange(s, NULL, buf, (size_t)n, 1, &out, &closed);
        if (st != c->fc_status || !closed ||
            (c->fc_detail != NULL && strstr(out, c->fc_detail) == NULL))
            fail_msg("%s: got %d (closed %d), want %d \"%s\":\n%s",
                     c->fc_name, st, closed, c->fc_status,
                     c->fc_detail ? c->fc_detail : "", out);
        free(out);
    }
    /* Two Authorization headers, even two equal ones: 401, closed. */
    st = exchange(s, NULL,
                  "GET /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A AUTH_A
                  "X-Client-Id: 1\r\n\r\n",
                  sizeof("GET /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A AUTH_A
                         "X-Client-Id: 1\r\n\r\n") - 1,
                  1, &out, &closed);
    assert_int_equal(st, 401);
    assert_true(closed);
    assert_non_null(strstr(out, "More than one Authorization"));
    free(out);
    /* Nothing was interpreted: client 77001 does not exist. */
    {
        const char *h[] = {"Authorization: Bearer " KEY_A,
                           "X-Client-Id: 77001", NULL};
        struct resp *r = req(s, "GET", "/clients", h, NULL);

        assert_int_equal(r->rs_status, 404);
        resp_free(r);
    }
    /* The same body, framed once, is accepted (the test can fail). */
    {
        const char *h[] = {"Authorization: Bearer " KEY_A, NULL};
        struct resp *r = req(s, "PUT", "/clients", h, BODY77);

        assert_int_equal(r->rs_status, 201);
        resp_free(r);
    }
    server_stop(s);
}

/* ---- sizes ----------------------------------------------------------- */

static void
test_sizes(void **state)
{
    struct server *s = new_server(state, NULL);
    size_t big = 40 * 1024, n;
    char *buf = malloc(big + 256), *out;
    long long t0;
    int st, closed, fd;

    assert_non_null(buf);
    /* 2 MiB announced: 413 at once, no byte of body sent. */
    fd = tcp_open(s, NULL);
    assert_true(fd >= 0);
    n = (size_t)snprintf(buf, 256, "PUT /clients HTTP/1.1\r\nHost: x\r\n"
                         AUTH_A "Content-Type: application/json\r\n"
                         "Content-Length: 2097152\r\n\r\n");
    t0 = now_ms();
    assert_int_equal(send_all(fd, buf, n), 0);
    out = read_reply(fd, 5000, 1, &closed);
    assert_int_equal(status_of(out), 413);
    assert_true(closed);
    assert_true(now_ms() - t0 < 4000);
    free(out);
    close(fd);
    /* A header line of 40 KiB: 431. */
    n = (size_t)snprintf(buf, 64, "GET /clients HTTP/1.1\r\nX-Big: ");
    memset(buf + n, 'a', big);
    n += big;
    memcpy(buf + n, "\r\n\r\n", 4);
    st = exchange(s, NULL, buf, n + 4, 1, NULL, &closed);
    assert_int_equal(st, 431);
    assert_true(closed);
    /* Many small headers, 40 KiB in all: 431. */
    n = 0;
    n += (size_t)snprintf(buf, 64, "GET /clients HTTP/1.1\r\n");
    while (n < big)
        n += (size_t)snprintf(buf + n, 64, "X-H%zu: v\r\n", n);
    memcpy(buf + n, "\r\n", 2);
    st = exchange(s, NULL, buf, n + 2, 1, NULL, &closed);
    assert_int_equal(st, 431);
    /* A request line of 40 KiB: 414. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', big);
    n = 5 + big;
    n += (size_t)snprintf(buf + n, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
    st = exchange(s, NULL, buf, n, 1, NULL, &closed);
    assert_int_equal(st, 414);
    assert_true(closed);
    /* And the server still answers. */
    assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    free(buf);
    server_stop(s);
}

/* ---- deadlines ------------------------------------------------------- */

/* Send msg one byte every gap_ms until the server closes; returns the ms
 * from start until it did, or -1 if it kept the connection max_ms. */
static long long
trickle(int fd, const char *msg, int gap_ms, int max_ms)
{
    long long t0 = now_ms();
    size_t i = 0, n = strlen(msg);

    while (now_ms() - t0 < max_ms) {
        struct pollfd p = {fd, POLLIN, 0};

        if (send(fd, msg + i % n, 1, MSG_NOSIGNAL) != 1)
            return now_ms() - t0;
        i++;
        if (poll(&p, 1, gap_ms) > 0) {
            char c[512];

            if (recv(fd, c, sizeof(c), 0) <= 0)
                return now_ms() - t0;
        }
    }
    return -1;
}

static void
test_deadlines(void **state)
{
    const char *env[] = {"HEADER_TIMEOUT=2", "BODY_TIMEOUT_BASE=2", NULL};
    struct server *s = new_server(state, env);
    long long t, t0;
    char *logtxt, path[512];
    int fd, idle;

    /* Headers, a byte every 300 ms: cut after 2 s (+1 s reaper tick);
     * MHD's inactivity timeout alone never would. */
    fd = tcp_open(s, NULL);
    assert_true(fd >= 0);
    t = trickle(fd, "GET /clients HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaa", 300,
                9000);
    close(fd);
    if (t < 1500 || t > 6000)
        fail_msg("trickled headers: closed after %lld ms, want 2-3 s", t);
    /* A connection that sends nothing at all. */
    idle = tcp_open(s, NULL);
    assert_true(idle >= 0);
    t0 = now_ms();
    t = wait_closed(idle, t0, 9000);
    close(idle);
    if (t < 1500 || t > 6000)
        fail_msg("silent connection: closed after %lld ms, want 2-3 s", t);
    /* A body of 100 bytes, a byte every 300 ms: cut after 2 s + 1 s. */
    fd = tcp_open(s, NULL);
    assert_true(fd >= 0);
    assert_int_equal(send_all(fd, "PUT /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A
                              "Content-Type: application/json\r\n"
                              "Content-Length: 100\r\n\r\n",
                              strlen("PUT /clients HTTP/1.1\r\nHost: x\r\n"
                                     AUTH_A "Content-Type: application/json"
                                     "\r\nContent-Length: 100\r\n\r\n")),
                     0);
    t = trickle(fd, "{\"client_id\": 1, ", 300, 12000);
    close(fd);
    if (t < 1500 || t > 7000)
        fail_msg("trickled body: closed after %lld ms, want 3-4 s", t);
    /* The cut request is logged as 499. */
    server_path(s, "api.log", path, sizeof(path));
    assert_int_equal(file_wait_contains(path, "PUT /clients client=- 499"),
                     0);
    /* A prompt client on the same server is unaffected. */
    assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    logtxt = file_read(path, NULL);
    assert_non_null(logtxt);
    free(logtxt);
    server_stop(s);
}

/* ---- 200 slow connections -------------------------------------------- */

#define SLOW_N 200

static void
test_slowloris(void **state)
{
    const char *env[] = {"MAX_CONNECTIONS=240", "HEADER_TIMEOUT=6", NULL};
    struct server *s = new_server(state, env);
    int fds[SLOW_N], i, served = 0, open_n = 0;
    char src[32];
    long long t0 = now_ms(), left;

    /* 10 machines (127.0.0.2-11), 20 connections each (under the 32 an
     * address): half send part of a header, half nothing. */
    for (i = 0; i < SLOW_N; i++) {
        snprintf(src, sizeof(src), "127.0.0.%d", 2 + i / 20);
        fds[i] = tcp_open(s, src);
        assert_true(fds[i] >= 0);
        if (i % 2 == 0)
            assert_int_equal(
                send_all(fds[i], "GET /clients HTTP/1.1\r\nX-", 25), 0);
    }
    /* While they are open, a normal client is served, every time. */
    for (i = 0; i < 20; i++)
        served += get_client(s, KEY_A, NULL, NULL, 0) == 404;
    assert_int_equal(served, 20);
    /* They were still open (the deadline is 6 s): the 200 were really
     * held while the client was served. */
    for (i = 0; i < SLOW_N; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};

        open_n += poll(&p, 1, 0) == 0;
    }
    if (now_ms() - t0 < 5000)
        assert_int_equal(open_n, SLOW_N);
    /* And every one of them is cut by its deadline. */
    for (i = 0; i < SLOW_N; i++) {
        left = t0 + 12000 - now_ms();
        if (wait_closed(fds[i], t0, left > 0 ? (int)left : 1) < 0)
            fail_msg("slow connection %d still open after 12 s", i);
        close(fds[i]);
    }
    assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    server_stop(s);
}

/* ---- per-address limits ---------------------------------------------- */

static void
test_per_ip_connections(void **state)
{
    const char *env[] = {"MAX_CONNECTIONS_PER_IP=4", NULL};
    struct server *s = new_server(state, env);
    int fds[4], extra, i, st;
    static const char get[] = "GET /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A
                              "X-Client-Id: 1\r\n\r\n";

    for (i = 0; i < 4; i++) {
        fds[i] = tcp_open(s, "127.0.0.2");
        assert_true(fds[i] >= 0);
    }
    usleep(200000);     /* let the server accept them */
    /* The fifth from the same address is closed without an answer. */
    extra = tcp_open(s, "127.0.0.2");
    assert_true(extra >= 0);
    send_all(extra, get, sizeof(get) - 1);
    assert_true(wait_closed(extra, now_ms(), 3000) >= 0);
    close(extra);
    /* Another address is served. */
    st = exchange(s, "127.0.0.3", get, sizeof(get) - 1, 0, NULL, NULL);
    assert_int_equal(st, 404);
    /* Once one closes, the address may connect again. */
    close(fds[0]);
    usleep(300000);
    st = exchange(s, "127.0.0.2", get, sizeof(get) - 1, 0, NULL, NULL);
    assert_int_equal(st, 404);
    for (i = 1; i < 4; i++)
        close(fds[i]);
    server_stop(s);
}

static void
test_key_rate(void **state)
{
    const char *env[] = {"RATE_LIMIT_KEY=1", "RATE_BURST_KEY=5",
                         "RATE_LIMIT_IP=0", NULL};
    struct server *s = new_server(state, env);
    char ra[32];
    int i, limited = 0;
    long st;

    for (i = 0; i < 5; i++)
        assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    for (i = 0; i < 3; i++) {
        st = get_client(s, KEY_A, NULL, ra, sizeof(ra));
        if (st == 429) {
            limited++;
            assert_int_equal(atoi(ra), 1);
        }
    }
    assert_true(limited >= 2);      /* at most one token back by now */
    /* Another key has its own bucket. */
    assert_int_equal(get_client(s, KEY_B, NULL, NULL, 0), 404);
    /* One token a second comes back. */
    sleep(1);
    assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    server_stop(s);
}

static void
test_address_rate(void **state)
{
    const char *env[] = {"RATE_LIMIT_IP=1", "RATE_BURST_IP=5", NULL};
    struct server *s = new_server(state, env);
    static const char get[] = "GET /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A
                              "X-Client-Id: 1\r\n\r\n";
    char *out;
    int i, st, limited = 0, closed;

    for (i = 0; i < 5; i++)
        assert_int_equal(exchange(s, "127.0.0.2", get, sizeof(get) - 1, 0,
                                  NULL, NULL),
                         404);
    for (i = 0; i < 3; i++) {
        st = exchange(s, "127.0.0.2", get, sizeof(get) - 1, 1, &out, &closed);
        if (st == 429) {
            limited++;
            assert_true(closed);
            assert_non_null(strcasestr(out, "\r\nRetry-After: 1\r\n"));
            assert_non_null(strstr(out, "from this address"));
        }
        free(out);
    }
    assert_true(limited >= 2);
    /* Another address is not limited. */
    assert_int_equal(exchange(s, "127.0.0.3", get, sizeof(get) - 1, 0, NULL,
                              NULL),
                     404);
    server_stop(s);
}

static void
test_auth_failures(void **state)
{
    const char *env[] = {"AUTH_FAIL_LIMIT=3", NULL};
    struct server *s = new_server(state, env);
    char ra[32];
    int i;

    for (i = 0; i < 3; i++)
        assert_int_equal(get_client(s, KEY_UNKNOWN, NULL, NULL, 0), 401);
    /* The fourth failure in a minute is slowed down: 429. */
    assert_int_equal(get_client(s, KEY_UNKNOWN, NULL, ra, sizeof(ra)), 429);
    assert_true(atoi(ra) >= 1 && atoi(ra) <= 60);
    /* A valid key from the same address is never locked out. */
    assert_int_equal(get_client(s, KEY_A, NULL, NULL, 0), 404);
    assert_int_equal(get_client(s, KEY_UNKNOWN, NULL, NULL, 0), 429);
    /* Another address still gets the plain 401. */
    {
        static const char bad[] = "GET /clients HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer " KEY_UNKNOWN "\r\n"
                                  "X-Client-Id: 1\r\n\r\n";

        assert_int_equal(exchange(s, "127.0.0.2", bad, sizeof(bad) - 1, 0,
                                  NULL, NULL),
                         401);
    }
    server_stop(s);
}

/* ---- client address and the request log ----------------------------- */

/* The log lines of s, parsed as JSON; asserts every line parses. */
static json_t *
json_log(struct server *s, size_t want)
{
    char path[512], *txt, *p, *nl;
    json_t *a = json_array();
    long long end = now_ms() + 5000;

    server_path(s, "api.log", path, sizeof(path));
    for (;;) {
        json_array_clear(a);
        txt = file_read(path, NULL);
        for (p = txt; p != NULL && *p != '\0'; p = nl + 1) {
            json_error_t e;
            json_t *v;

            if ((nl = strchr(p, '\n')) == NULL)
                fail_msg("log line without newline: %s", p);
            *nl = '\0';
            if ((v = json_loads(p, 0, &e)) == NULL)
                fail_msg("log line is not JSON (%s): %s", e.text, p);
            json_array_append_new(a, v);
        }
        free(txt);
        if (json_array_size(a) >= want || now_ms() > end)
            break;
        usleep(50000);
    }
    assert_true(json_array_size(a) >= want);
    return a;
}

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The first line of a whose field k is the string v, or NULL. */
static json_t *
log_find(json_t *a, const char *k, const char *v)
{
    size_t i;
    json_t *l;

    json_array_foreach(a, i, l) {
        if (jstr(l, k) != NULL && strcmp(jstr(l, k), v) == 0)
            return l;
    }
    return NULL;
}

static void
test_log_json_trusted_proxy(void **state)
{
    const char *env[] = {"LOG_FORMAT=json", "TRUSTED_PROXIES=127.0.0.1/32",
                         NULL};
    struct server *s = new_server(state, env);
    static const char spoof[] = "GET /clients HTTP/1.1\r\nHost: x\r\n" AUTH_A
                                "X-Client-Id: 1\r\n"
                                "X-Forwarded-For: 192.0.2.66\r\n\r\n";
    static const char odd[] = "GET /a%22b%5C%01%FF\" HTTP/1.1\r\nHost: x\r\n"
                              "\r\n";
    json_t *a, *l;

    /* Through the proxy: the right-most address it does not trust. */
    assert_int_equal(get_client(s, KEY_A, "X-Forwarded-For: 198.51.100.7, "
                                "203.0.113.9, 127.0.0.1", NULL, 0),
                     404);
    /* Not from the proxy: X-Forwarded-For is ignored. */
    assert_int_equal(exchange(s, "127.0.0.2", spoof, sizeof(spoof) - 1, 0,
                              NULL, NULL),
                     404);
    /* A path no log reader should choke on. */
    exchange(s, NULL, odd, sizeof(odd) - 1, 0, NULL, NULL);
    /* Lines come in the order requests finish: find them by content. */
    a = json_log(s, 3);
    if (getenv("HOSTILE_DEBUG"))
        json_dumpf(a, stderr, JSON_INDENT(1));
    assert_non_null(l = log_find(a, "addr", "203.0.113.9"));
    assert_string_equal(jstr(l, "key"), NAME_A);
    assert_string_equal(jstr(l, "method"), "GET");
    assert_string_equal(jstr(l, "path"), "/clients");
    assert_string_equal(jstr(l, "client"), "1");
    assert_int_equal(json_integer_value(json_object_get(l, "status")), 404);
    assert_true(json_is_integer(json_object_get(l, "us")));
    assert_non_null(jstr(l, "time"));
    assert_non_null(l = log_find(a, "addr", "127.0.0.2"));
    assert_string_equal(jstr(l, "path"), "/clients");
    assert_null(log_find(a, "addr", "192.0.2.66"));
    /* Quote, backslash, control character kept; the invalid byte is
     * U+FFFD; the line is valid JSON (json_log checked every line). */
    assert_non_null(l = log_find(a, "addr", "127.0.0.1"));
    assert_true(json_is_null(json_object_get(l, "key")));
    assert_string_equal(jstr(l, "path"), "/a\"b\\\x01\xef\xbf\xbd\"");
    json_decref(a);
    server_stop(s);
}

static void
test_log_text(void **state)
{
    struct server *s = new_server(state, NULL);
    char path[512], *txt;

    assert_int_equal(get_client(s, KEY_A, "X-Forwarded-For: 192.0.2.66",
                                NULL, 0),
                     404);
    server_path(s, "api.log", path, sizeof(path));
    assert_int_equal(file_wait_contains(path, " addr=127.0.0.1\n"), 0);
    txt = file_read(path, NULL);
    assert_non_null(txt);
    /* The fields of old, in their order, then the address. */
    assert_non_null(strstr(txt, "Z key=" NAME_A " GET /clients client=1 404 "));
    assert_null(strstr(txt, "192.0.2.66"));
    free(txt);
    server_stop(s);
}

/* ---- HTTPS ----------------------------------------------------------- */

/* Run a shell command; asserts exit 0. */
static void
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

/* Start the binary on s's directory with TLS_CERT/TLS_KEY and expect it
 * to refuse: exit status not 0, and its stderr holding want. */
static void
expect_refused(struct server *s, const char *cert, const char *key,
               const char *want)
{
    const char *bin = getenv("PATRIOT_API_BIN");
    char keys[512], out[512], data[512], log[512], err[512], *txt;
    pid_t pid;
    int st;

    server_path(s, "keys.json", keys, sizeof(keys));
    server_path(s, "out", out, sizeof(out));
    server_path(s, "data.db", data, sizeof(data));
    server_path(s, "api.log", log, sizeof(log));
    server_path(s, "refused.log", err, sizeof(err));
    assert_non_null(bin);
    if ((pid = fork()) == 0) {
        int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char *argv[] = {(char *)(uintptr_t)bin, "--port", "0",
                        "--key-file", keys, "--xml-dir", out,
                        "--data-file", data, "--log-file", log, NULL};

        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        setenv("TLS_CERT", cert, 1);
        setenv("TLS_KEY", key, 1);
        execv(bin, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    txt = file_read(err, NULL);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 0 || txt == NULL ||
        strstr(txt, want) == NULL)
        fail_msg("start with %s / %s: status %d, want a refusal naming"
                 " \"%s\":\n%s", cert, key, st, want, txt ? txt : "");
    free(txt);
}

static void
test_tls(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    char cert[512], key[512], other[512], bad[512], url[128];
    CURL *c;
    long code = 0;
    CURLcode rc;
    struct curl_slist *h = NULL;
    FILE *devnull;

    assert_non_null(s);
    *state = s;
    server_init_dir(s);
    server_path(s, "cert.pem", cert, sizeof(cert));
    server_path(s, "key.pem", key, sizeof(key));
    server_path(s, "other-key.pem", other, sizeof(other));
    server_path(s, "bad-key.pem", bad, sizeof(bad));
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        " -nodes -keyout %s -out %s -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 2>/dev/null", key, cert);
    run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1"
        " -out %s 2>/dev/null", other);
    {
        static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                   "-----END PRIVATE KEY-----\n";

        assert_int_equal(file_write(bad, junk, sizeof(junk) - 1), 0);
    }
    /* Refused at start: missing, not PEM, invalid, not matching. */
    expect_refused(s, cert, "/nonexistent/key.pem", "/nonexistent/key.pem");
    expect_refused(s, key, key, "not a PEM file with a CERTIFICATE");
    expect_refused(s, cert, bad, "invalid");
    expect_refused(s, cert, other, "invalid");
    /* Served over HTTPS, the certificate pinned as the only CA. */
    setenv("TLS_CERT", cert, 1);
    setenv("TLS_KEY", key, 1);
    server_start(s);
    unsetenv("TLS_CERT");
    unsetenv("TLS_KEY");
    c = curl_easy_init();
    assert_non_null(c);
    devnull = fopen("/dev/null", "w");
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/clients", s->sv_port);
    h = curl_slist_append(h, "Authorization: Bearer " KEY_A);
    h = curl_slist_append(h, "X-Client-Id: 1");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("HTTPS request: %s", curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 404);
    /* Plain HTTP on the HTTPS port gets no HTTP answer. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/clients", s->sv_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    code = 0;
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_true(rc != CURLE_OK || code != 404);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    fclose(devnull);
    server_stop(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_framing, teardown_server),
        cmocka_unit_test_teardown(test_sizes, teardown_server),
        cmocka_unit_test_teardown(test_deadlines, teardown_server),
        cmocka_unit_test_teardown(test_slowloris, teardown_server),
        cmocka_unit_test_teardown(test_per_ip_connections, teardown_server),
        cmocka_unit_test_teardown(test_key_rate, teardown_server),
        cmocka_unit_test_teardown(test_address_rate, teardown_server),
        cmocka_unit_test_teardown(test_auth_failures, teardown_server),
        cmocka_unit_test_teardown(test_log_json_trusted_proxy,
                                  teardown_server),
        cmocka_unit_test_teardown(test_log_text, teardown_server),
        cmocka_unit_test_teardown(test_tls, teardown_server),
    };

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
