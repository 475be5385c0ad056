/*
 * harness.c - black-box harness for patriot-api (see harness.h): starts
 * the real binary in a temporary directory, talks HTTP with libcurl and
 * reads the outbox with libxml2.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define POLL_MS 5000

/*
 * Alarm24 is keys.example.json's first entry verbatim; TenantB is a second
 * tenant with its own port and fields; Hashed1 gives key_sha256 (the
 * SHA-256 of KEY_HASHED, computed with sha256sum); Disabled1 and Expired1
 * must never authenticate.
 */
static const char keys_json[] =
    "[\n"
    " {\"key_name\": \"Alarm24\", \"key\": \"" KEY_A "\", \"enabled\": true,\n"
    "  \"valid_to\": \"2030-01-01T00:00:00Z\", \"port\": \"BASE11\",\n"
    "  \"installer_name\": \"Installer Name\",\n"
    "  \"installer_email\": \"installer@email.com\",\n"
    "  \"xml_fields\": {\"UseGlobCallOuts\": \"True\", \"ShowOnCallOuts\":"
    " \"False\",\n"
    "    \"GlobCallOuts\": \"TLF01BASE01\", \"AltLookup\": \"True\",\n"
    "    \"AltAlarmNo\": \"CID4BASE01\", \"ConvertType\": \"None\",\n"
    "    \"SIGINTERPRET\": \"SIADecimal\"},\n"
    "  \"client_groupings\": [{\"Description\": \"Alarm24\",\n"
    "    \"GroupingTypeDescription\": \"Alarm24 Tilgang\",\n"
    "    \"GroupingAllowMultiple\": \"True\"}]},\n"
    " {\"key_name\": \"TenantB\", \"key\": \"" KEY_B "\", \"enabled\": true,\n"
    "  \"valid_to\": null, \"port\": \"BASE22\",\n"
    "  \"installer_name\": \"Sikring B & Co <AS>\",\n"
    "  \"installer_email\": \"post@b.example\",\n"
    "  \"xml_fields\": {\"ZField\": \"z\", \"AField\": \"a\","
    " \"MField\": \"\\u00e6\\u00f8\\u00e5\"},\n"
    "  \"client_groupings\": [{\"Description\": \"B1\",\n"
    "    \"GroupingTypeDescription\": \"B1 Tilgang\",\n"
    "    \"GroupingAllowMultiple\": \"True\"},\n"
    "   {\"Description\": \"Import\",\n"
    "    \"GroupingTypeDescription\": \"\\u00d8stfold Sikkerhetsservice AS\",\n"
    "    \"GroupingAllowMultiple\": \"False\"}]},\n"
    " {\"key_name\": \"Hashed1\", \"key_sha256\": \"" KEY_HASHED_SHA "\",\n"
    "  \"enabled\": true, \"valid_to\": \"2099-12-31T23:59:59Z\","
    " \"port\": \"BASE33\",\n"
    "  \"installer_name\": \"Hash Installer\","
    " \"installer_email\": \"h@h.example\",\n"
    "  \"xml_fields\": {}, \"client_groupings\": []},\n"
    " {\"key_name\": \"Disabled1\", \"key\": \"" KEY_DISABLED "\","
    " \"enabled\": false,\n"
    "  \"valid_to\": null, \"port\": \"BASE44\",\n"
    "  \"installer_name\": \"D\", \"installer_email\": \"d@d.example\",\n"
    "  \"xml_fields\": {}, \"client_groupings\": []},\n"
    " {\"key_name\": \"Expired1\", \"key\": \"" KEY_EXPIRED "\","
    " \"enabled\": true,\n"
    "  \"valid_to\": \"2020-01-01T00:00:00Z\", \"port\": \"BASE55\",\n"
    "  \"installer_name\": \"E\", \"installer_email\": \"e@e.example\",\n"
    "  \"xml_fields\": {}, \"client_groupings\": []}\n"
    "]\n";

long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

const char *
server_path(const struct server *s, const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", s->sv_dir, rel);
    return buf;
}

char *
file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            if ((nb = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int
file_write(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL)
        return -1;
    if (fwrite(buf, 1, len, f) != len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int
file_wait_contains(const char *path, const char *needle)
{
    long long end = now_ms() + POLL_MS;

    for (;;) {
        char *t = file_read(path, NULL);
        int found = t != NULL && strstr(t, needle) != NULL;

        free(t);
        if (found)
            return 0;
        if (now_ms() > end)
            return -1;
        sleep_ms(20);
    }
}

/* ---- the server process -------------------------------------------- */

void
server_init_dir(struct server *s)
{
    char tmpl[] = "/tmp/patriot-bb-XXXXXX", path[512];
    int fd;

    memset(s, 0, sizeof(*s));
    if (mkdtemp(tmpl) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(s->sv_dir, sizeof(s->sv_dir), "%s", tmpl);
    server_path(s, "keys.json", path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    if (write(fd, keys_json, sizeof(keys_json) - 1) !=
        (ssize_t)(sizeof(keys_json) - 1))
        fail_msg("write %s: %s", path, strerror(errno));
    close(fd);
}

static void
print_stderr_log(const struct server *s)
{
    char path[512];
    char *t = file_read(server_path(s, "stderr.log", path, sizeof(path)),
                        NULL);

    if (t != NULL)
        print_error("---- server stderr.log ----\n%s\n----\n", t);
    free(t);
}

void
server_start(struct server *s)
{
    const char *bin = getenv("PATRIOT_API_BIN");
    char keys[512], xml[512], data[512], log[512], errlog[512];
    char line[32];
    size_t n = 0;
    int pfd[2], efd;
    long long end;
    pid_t pid;

    if (bin == NULL || bin[0] == '\0')
        fail_msg("PATRIOT_API_BIN is not set");
    server_path(s, "keys.json", keys, sizeof(keys));
    server_path(s, "out", xml, sizeof(xml));
    server_path(s, "data.db", data, sizeof(data));
    server_path(s, "api.log", log, sizeof(log));
    server_path(s, "stderr.log", errlog, sizeof(errlog));
    if (pipe2(pfd, O_CLOEXEC) < 0)
        fail_msg("pipe: %s", strerror(errno));
    efd = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (efd < 0)
        fail_msg("open %s: %s", errlog, strerror(errno));
    if ((pid = fork()) < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        char *argv[] = {(char *)(uintptr_t)bin,
                        "--port", "0", "--host", "127.0.0.1",
                        "--key-file", keys, "--xml-dir", xml,
                        "--data-file", data, "--log-file", log,
                        "--quiet", NULL};

        dup2(pfd[1], STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        execv(bin, argv);
        _exit(127);
    }
    close(pfd[1]);
    close(efd);
    s->sv_pid = pid;
    /* The port comes alone on one line; ASan start-up can be slow. */
    end = now_ms() + 20000;
    while (n < sizeof(line) - 1) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        long long left = end - now_ms();
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        r = read(pfd[0], line + n, 1);
        if (r <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    close(pfd[0]);
    line[n] = '\0';
    s->sv_port = (unsigned)strtoul(line, NULL, 10);
    if (n == 0 || s->sv_port == 0 || s->sv_port > 65535) {
        int st;

        print_stderr_log(s);
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        s->sv_pid = 0;
        fail_msg("server did not print its port (got \"%s\")", line);
    }
    snprintf(s->sv_base, sizeof(s->sv_base), "http://127.0.0.1:%u",
             s->sv_port);
    if (s->sv_curl == NULL && (s->sv_curl = curl_easy_init()) == NULL)
        fail_msg("curl_easy_init");
}

/* A sanitizer report in the server's stderr fails the test. */
static void
check_sanitizers(const struct server *s)
{
    static const char *marks[] = {"runtime error:", "ERROR: AddressSanitizer",
                                  "ERROR: LeakSanitizer",
                                  "WARNING: ThreadSanitizer"};
    char path[512];
    char *t = file_read(server_path(s, "stderr.log", path, sizeof(path)),
                        NULL);
    size_t i;

    for (i = 0; t != NULL && i < sizeof(marks) / sizeof(marks[0]); i++) {
        if (strstr(t, marks[i]) != NULL) {
            free(t);
            print_stderr_log(s);
            fail_msg("sanitizer report (\"%s\") in the server's stderr",
                     marks[i]);
        }
    }
    free(t);
}

/* Wait up to ms for pid; returns 1 and sets *st when it exited. */
static int
reap(pid_t pid, int *st, long ms)
{
    long long end = now_ms() + ms;

    for (;;) {
        pid_t r = waitpid(pid, st, WNOHANG);

        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
        if (now_ms() > end)
            return 0;
        sleep_ms(10);
    }
}

static void
drop_curl(struct server *s)
{
    /* Connections to the dead server must not be reused. */
    if (s->sv_curl != NULL)
        curl_easy_cleanup(s->sv_curl);
    s->sv_curl = NULL;
}

void
server_stop(struct server *s)
{
    pid_t pid = s->sv_pid;
    int st = 0;

    if (pid <= 0)
        fail_msg("server_stop: not running");
    drop_curl(s);
    kill(pid, SIGTERM);
    if (!reap(pid, &st, 15000)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        s->sv_pid = 0;
        print_stderr_log(s);
        fail_msg("server did not stop within 15 s of SIGTERM");
    }
    s->sv_pid = 0;
    check_sanitizers(s);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        print_stderr_log(s);
        fail_msg("server stopped badly: %s %d",
                 WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

void
server_kill9(struct server *s)
{
    int st;

    if (s->sv_pid <= 0)
        fail_msg("server_kill9: not running");
    kill(s->sv_pid, SIGKILL);
    waitpid(s->sv_pid, &st, 0);
    s->sv_pid = 0;
    drop_curl(s);
    check_sanitizers(s);
}

void
server_restart(struct server *s)
{
    server_stop(s);
    server_start(s);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
server_destroy(struct server *s)
{
    if (s->sv_pid > 0) {
        int st;

        kill(s->sv_pid, SIGKILL);
        waitpid(s->sv_pid, &st, 0);
        s->sv_pid = 0;
    }
    drop_curl(s);
    if (s->sv_dir[0] != '\0') {
        if (getenv("PATRIOT_KEEP_TMP") == NULL)
            nftw(s->sv_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        else
            print_message("kept %s\n", s->sv_dir);
    }
    s->sv_dir[0] = '\0';
}

/* ---- HTTP ------------------------------------------------------------ */

struct buf {
    char *b_data;
    size_t b_len;
};

static int
buf_add(struct buf *b, const char *p, size_t n)
{
    char *nb = realloc(b->b_data, b->b_len + n + 1);

    if (nb == NULL)
        return -1;
    memcpy(nb + b->b_len, p, n);
    b->b_len += n;
    nb[b->b_len] = '\0';
    b->b_data = nb;
    return 0;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    return buf_add(arg, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;

    /* A new status line (after 100 Continue): keep the last block only. */
    if (size * nmemb >= 5 && strncmp(p, "HTTP/", 5) == 0)
        b->b_len = 0;
    return buf_add(b, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

struct resp *
req_len(struct server *s, const char *method, const char *path,
        const char *const *headers, const char *body, size_t len)
{
    CURL *c = s->sv_curl;
    struct curl_slist *hl = NULL;
    struct buf bb = {NULL, 0}, hb = {NULL, 0};
    struct resp *r;
    char url[1024];
    CURLcode rc;
    size_t i;

    if (c == NULL)
        fail_msg("req: server not started");
    curl_easy_reset(c);
    snprintf(url, sizeof(url), "%s%s", s->sv_base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    /* No 100-continue round trip unless a test asks for one. */
    hl = curl_slist_append(hl, "Expect:");
    if (body != NULL)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) {
        int st;

        free(bb.b_data);
        free(hb.b_data);
        /* Say whether the server is gone, and how. */
        if (s->sv_pid > 0 && waitpid(s->sv_pid, &st, WNOHANG) == s->sv_pid) {
            s->sv_pid = 0;
            print_error("the server has exited: %s %d\n",
                        WIFEXITED(st) ? "exit" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            print_stderr_log(s);
        }
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        fail_msg("out of memory");
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->rs_status);
    r->rs_body = bb.b_data ? bb.b_data : strdup("");
    r->rs_len = bb.b_len;
    r->rs_headers = hb.b_data ? hb.b_data : strdup("");
    if (r->rs_len > 0)
        r->rs_json = json_loadb(r->rs_body, r->rs_len, 0, NULL);
    return r;
}

struct resp *
req(struct server *s, const char *method, const char *path,
    const char *const *headers, const char *body)
{
    return req_len(s, method, path, headers, body,
                   body ? strlen(body) : 0);
}

const char *
resp_header(const struct resp *r, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    const char *p = r->rs_headers;

    while (p != NULL && *p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);

        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl;

            while (*v == ' ' || *v == '\t')
                v++;
            vl = (size_t)(p + ll - v);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= len)
                vl = len - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

void
resp_free(struct resp *r)
{
    if (r == NULL)
        return;
    json_decref(r->rs_json);
    free(r->rs_body);
    free(r->rs_headers);
    free(r);
}

int
raw_request(const struct server *s, const char *data, size_t len,
            int timeout_ms, char **out)
{
    struct sockaddr_in sin;
    struct buf b = {NULL, 0};
    long long end = now_ms() + timeout_ms;
    size_t off = 0;
    int fd, status = 0;

    if (out != NULL)
        *out = NULL;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)s->sv_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return 0;
    }
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);

        if (n <= 0)
            break;      /* the server may answer and close early */
        off += (size_t)n;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = end - now_ms();
        char chunk[4096];
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0)
            break;
        buf_add(&b, chunk, (size_t)n);
        /* A complete reply with Content-Length is enough. */
        if (b.b_data != NULL) {
            const char *hend = strstr(b.b_data, "\r\n\r\n");
            const char *cl = strcasestr(b.b_data, "\r\nContent-Length:");

            if (hend != NULL && cl != NULL && cl < hend &&
                b.b_len >= (size_t)(hend + 4 - b.b_data) +
                               strtoul(cl + 17, NULL, 10))
                break;
        }
    }
    close(fd);
    if (b.b_data != NULL && strncmp(b.b_data, "HTTP/1.", 7) == 0 &&
        b.b_len > 12)
        status = atoi(b.b_data + 9);
    if (out != NULL)
        *out = b.b_data;
    else
        free(b.b_data);
    return status;
}

/* ---- outbox and XML ---------------------------------------------------- */

const char *
outbox_path(const struct server *s, const char *key_name, long long cid,
            char *buf, size_t len)
{
    snprintf(buf, len, "%s/out/%s/%lld.xml", s->sv_dir, key_name, cid);
    return buf;
}

static int
wait_file(const struct server *s, const char *key_name, long long cid,
          int want_exists)
{
    char path[512];
    long long end = now_ms() + POLL_MS;
    struct stat sb;

    outbox_path(s, key_name, cid, path, sizeof(path));
    for (;;) {
        int exists = stat(path, &sb) == 0;

        if (exists == want_exists)
            return 0;
        if (now_ms() > end)
            return -1;
        sleep_ms(20);
    }
}

int
outbox_wait_exists(const struct server *s, const char *key_name,
                   long long cid)
{
    return wait_file(s, key_name, cid, 1);
}

int
outbox_wait_gone(const struct server *s, const char *key_name, long long cid)
{
    return wait_file(s, key_name, cid, 0);
}

static int xml_errors;

static void
count_error(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    if (e != NULL && e->level >= XML_ERR_WARNING) {
        if (xml_errors++ == 0)
            print_message("libxml2: %s", e->message ? e->message : "?\n");
    }
}

xmlDocPtr
xml_parse_strict(const char *path)
{
    xmlDocPtr doc;

    xml_errors = 0;
    xmlSetStructuredErrorFunc(NULL, count_error);
    doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_PEDANTIC);
    xmlSetStructuredErrorFunc(NULL, NULL);
    if (doc != NULL && xml_errors > 0) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    return doc;
}

char *
xml_string(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = NULL;
    char q[1024], *s = NULL;

    snprintf(q, sizeof(q), "string(%s)", expr);
    if (ctx != NULL)
        o = xmlXPathEvalExpression((const xmlChar *)q, ctx);
    if (o != NULL && o->type == XPATH_STRING && o->stringval != NULL)
        s = strdup((const char *)o->stringval);
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    if (s == NULL)
        fail_msg("XPath %s failed", q);
    return s;
}

long
xml_count(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = NULL;
    char q[1024];
    long n = -1;

    snprintf(q, sizeof(q), "count(%s)", expr);
    if (ctx != NULL)
        o = xmlXPathEvalExpression((const xmlChar *)q, ctx);
    if (o != NULL && o->type == XPATH_NUMBER)
        n = (long)o->floatval;
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    if (n < 0)
        fail_msg("XPath %s failed", q);
    return n;
}

size_t
xml_child_names(xmlDocPtr doc, const char *expr, const char **names,
                size_t max)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = NULL;
    xmlNodePtr n;
    size_t k = 0;

    if (ctx != NULL)
        o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (o != NULL && o->nodesetval != NULL && o->nodesetval->nodeNr > 0) {
        for (n = o->nodesetval->nodeTab[0]->children; n && k < max;
             n = n->next)
            if (n->type == XML_ELEMENT_NODE)
                names[k++] = (const char *)n->name;
    }
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    return k;
}

xmlDocPtr
outbox_wait_xpath(const struct server *s, const char *key_name,
                  long long cid, const char *expr, const char *want)
{
    char path[512], *last = NULL;
    long long end = now_ms() + POLL_MS;

    outbox_path(s, key_name, cid, path, sizeof(path));
    for (;;) {
        struct stat sb;

        if (stat(path, &sb) == 0) {
            xmlDocPtr doc = xml_parse_strict(path);

            if (doc != NULL) {
                char *v = xml_string(doc, expr);

                if (strcmp(v, want) == 0) {
                    free(v);
                    free(last);
                    return doc;
                }
                free(last);
                last = v;
                xmlFreeDoc(doc);
            }
        }
        if (now_ms() > end)
            break;
        sleep_ms(20);
    }
    print_message("%s: %s is \"%s\", want \"%s\"\n", path, expr,
                  last ? last : "(no file or unparsable)", want);
    free(last);
    return NULL;
}

size_t
server_rss_kb(struct server *s)
{
    char path[64], line[256];
    size_t kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)s->sv_pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}
