/*
 * crashloop.c - kill -9 patriot-api (and patriot-combine) at random moments
 * and prove nothing acknowledged is lost and no outbox file is stale.
 *
 * Usage: crashloop [-n CYCLES] [-s SEED] [-v] API_BIN COMBINE_BIN
 *
 * Each cycle: 8 writer threads change clients, zones and users of two
 * tenants through the API (each writer owns 4 clients, one request at a
 * time, so at most one unacknowledged change per client); at a random moment
 * the server gets SIGKILL; sometimes patriot-combine --once (SMB off) runs
 * meanwhile and sometimes gets SIGKILL too. Then the server is restarted and:
 *   - every client's GET equals the writer's log of acknowledged changes,
 *     or that log plus the one change in flight at the kill (lost: else);
 *   - a killed combiner is run again to completion: no in-flight file is
 *     left under XML_DIR afterwards (<key>/.inflight.<id>.xml, or the
 *     old layout's XML_DIR/.inflight/);
 *   - every client that exists is either pending/failed with an outbox file
 *     equal to GET (parsed), or shipped with its Row in READY_DIR/clients.xml
 *     equal to GET; a deleted client has no outbox file (stale: else).
 * Exit 0 when every cycle passed; prints lost/stale/error counts and rates.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NWRITERS 8
#define NCLIENTS 4          /* per writer */
#define NZONES 5
#define NUSERS 3

struct tenant {
    const char *name, *key, *port;
};

static const struct tenant tenants[2] = {
    {"Alarm24", "crashloop-key-a-5d1e", "BASE11"},
    {"TenantB", "crashloop-key-b-93c0", "BASE22"},
};

struct cstate {             /* what a client is, as the log says */
    int exists;
    char name[48], alias[48];
    int zone[NZONES + 1];   /* present */
    char zarea[NZONES + 1][48];
    int zmod[NZONES + 1];
    int user[NUSERS + 1];
    char uname[NUSERS + 1][48];
};

struct client {
    const struct tenant *t;
    long long id;
    struct cstate ack;      /* after every acknowledged change */
    struct cstate maybe;    /* ack + the change in flight at the kill */
    int inflight;
};

struct writer {
    pthread_t th;
    int no;
    unsigned seed;
    struct client c[NCLIENTS];
    unsigned long acked, failed_status;
    char last_error[256];
};

static struct writer writers[NWRITERS];
static volatile int running;
static volatile unsigned api_port;
static char dir[256], api_bin[PATH_MAX], combine_bin[PATH_MAX];
static int verbose;
static unsigned long seq_counter;
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "crashloop: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static unsigned long
next_seq(void)
{
    unsigned long s;

    pthread_mutex_lock(&seq_lock);
    s = ++seq_counter;
    pthread_mutex_unlock(&seq_lock);
    return s;
}

/* ---- HTTP ------------------------------------------------------------ */

struct resp {
    char *buf;
    size_t len;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    char *nb = realloc(r->buf, r->len + sz * n + 1);

    if (nb == NULL)
        return 0;
    memcpy(nb + r->len, p, sz * n);
    r->len += sz * n;
    nb[r->len] = '\0';
    r->buf = nb;
    return sz * n;
}

/* One request. Returns the status, or -1 on a transport error. */
static long
request(CURL *h, const struct tenant *t, const char *method,
        const char *path, const char *body, long long cid, struct resp *r)
{
    char url[128], auth[128], hcid[64];
    struct curl_slist *hd = NULL;
    long status = -1;
    CURLcode rc;

    r->buf = NULL;
    r->len = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", api_port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->key);
    hd = curl_slist_append(hd, auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    if (cid > 0) {
        snprintf(hcid, sizeof(hcid), "X-Client-Id: %lld", cid);
        hd = curl_slist_append(hd, hcid);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    return status;
}

/* ---- the writers ------------------------------------------------------ */

/* Pick a change that is valid on c->ack, write its body, and apply it to
 * *after. Returns the method; *path set. */
static const char *
pick_change(struct writer *w, struct client *c, char *body, size_t bl,
            const char **path, struct cstate *after, int *want)
{
    unsigned r = (unsigned)rand_r(&w->seed) % 100;
    unsigned long s = next_seq();
    char v[48];

    *after = c->ack;
    snprintf(v, sizeof(v), "w%d&c%lld<s%lu>", w->no, c->id % 1000, s);
    if (!c->ack.exists || r < 10) {         /* create / replace */
        snprintf(body, bl, "{\"client_id\": %lld, \"info\": {\"Name\": "
                 "\"%s\", \"Location\": \"Veien %lu\"}}", c->id, v, s);
        if (!after->exists)
            memset(after, 0, sizeof(*after));
        after->exists = 1;
        snprintf(after->name, sizeof(after->name), "%s", v);
        after->alias[0] = '\0';
        *path = "/clients";
        *want = 0;
        return "PUT";
    }
    if (r < 22) {                           /* patch */
        snprintf(body, bl, "{\"client_id\": %lld, \"info\": {\"Alias\": "
                 "\"%s\"}}", c->id, v);
        snprintf(after->alias, sizeof(after->alias), "%s", v);
        *path = "/clients";
        *want = 200;
        return "PATCH";
    }
    if (r < 25) {                           /* delete the client */
        snprintf(body, bl, "{\"client_id\": %lld}", c->id);
        memset(after, 0, sizeof(*after));
        *path = "/clients";
        *want = 204;
        return "DELETE";
    }
    if (r < 60) {                           /* zones */
        int z = 1 + (int)((unsigned)rand_r(&w->seed) % NZONES);

        *path = "/clients/zones";
        if (c->ack.zone[z] && r >= 50) {
            snprintf(body, bl, "{\"client_id\": %lld, \"zone_id\": %d}",
                     c->id, z);
            after->zone[z] = 0;
            *want = 204;
            return "DELETE";
        }
        snprintf(body, bl, "{\"client_id\": %lld, \"zone_id\": %d, "
                 "\"Zone_area\": \"%s\", \"ModuleNo\": %lu}", c->id, z, v,
                 s % 1000);
        after->zone[z] = 1;
        snprintf(after->zarea[z], sizeof(after->zarea[z]), "%s", v);
        after->zmod[z] = (int)(s % 1000);
        *want = 201;
        return "PUT";
    }
    {                                       /* users */
        int u = 1 + (int)((unsigned)rand_r(&w->seed) % NUSERS);

        *path = "/clients/users";
        if (c->ack.user[u] && r >= 90) {
            snprintf(body, bl, "{\"client_id\": %lld, \"user_no\": %d}",
                     c->id, u);
            after->user[u] = 0;
            *want = 204;
            return "DELETE";
        }
        snprintf(body, bl, "{\"client_id\": %lld, \"user\": {\"User_Name\":"
                 " \"%s\", \"UserNo\": %d, \"CallOrder\": %d}}", c->id, v, u,
                 u);
        after->user[u] = 1;
        snprintf(after->uname[u], sizeof(after->uname[u]), "%s", v);
        *want = c->ack.user[u] ? 200 : 201;
        return c->ack.user[u] ? "PUT" : "POST";
    }
}

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    CURL *h = curl_easy_init();
    char body[512];

    if (h == NULL)
        die("curl_easy_init");
    while (running) {
        struct client *c = &w->c[(unsigned)rand_r(&w->seed) % NCLIENTS];
        struct cstate after;
        const char *path, *m;
        struct resp r;
        long st;
        int want;

        if (c->inflight)
            break;
        m = pick_change(w, c, body, sizeof(body), &path, &after, &want);
        c->maybe = after;
        c->inflight = 1;
        st = request(h, c->t, m, path, body, 0, &r);
        free(r.buf);
        if (st < 0)
            break;          /* the server is gone: this change is in flight */
        c->inflight = 0;
        if (st >= 200 && st < 300 && (want == 0 || st == want)) {
            c->ack = after;
            w->acked++;
        } else {
            w->failed_status++;
            snprintf(w->last_error, sizeof(w->last_error),
                     "%s %s %.200s -> %ld", m, path, body, st);
            break;
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ---- processes -------------------------------------------------------- */

static pid_t api_pid;

static void
start_api(void)
{
    int p[2];
    char line[32], kf[300], xd[300], df[300], lf[300], errf[300];
    ssize_t n;
    size_t got = 0;

    snprintf(kf, sizeof(kf), "%s/keys.json", dir);
    snprintf(xd, sizeof(xd), "%s/out", dir);
    snprintf(df, sizeof(df), "%s/data.db", dir);
    snprintf(lf, sizeof(lf), "%s/api_requests.log", dir);
    snprintf(errf, sizeof(errf), "%s/api-stderr.log", dir);
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    if ((api_pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (api_pid == 0) {
        int fd = open(errf, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(p[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(p[0]);
        execl(api_bin, api_bin, "--key-file", kf, "--xml-dir", xd,
              "--data-file", df, "--log-file", lf, "--host", "127.0.0.1",
              "--port", "0", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    while (got < sizeof(line) - 1 &&
           (n = read(p[0], line + got, 1)) == 1) {
        if (line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
    close(p[0]);
    if (got == 0 || atoi(line) <= 0)
        die("patriot-api did not start (see %s)", errf);
    api_port = (unsigned)atoi(line);
}

static void
kill_wait(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

static pid_t
start_combine(void)
{
    char conf[300], errf[300];
    pid_t pid;

    snprintf(conf, sizeof(conf), "%s/combine.conf", dir);
    snprintf(errf, sizeof(errf), "%s/combine-stderr.log", dir);
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(errf, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(combine_bin, combine_bin, "--config", conf, "--once",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int
wait_combine(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- checks ----------------------------------------------------------- */

static unsigned long n_lost, n_stale, n_errors, n_inflight_applied,
    n_inflight_dropped, n_combine_runs, n_combine_kills;

static void
fail(int cycle, const char *what, const struct client *c, const char *fmt,
     ...)
{
    va_list ap;

    fprintf(stderr, "cycle %d: %s: %s client %lld: ", cycle, what,
            c ? c->t->name : "-", c ? c->id : 0LL);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* Canonical text of a state: what GET, the outbox and clients.xml must all
 * say. */
static void
canon(const struct cstate *s, char *out, size_t ol)
{
    size_t o = 0;
    int i;

    if (!s->exists) {
        snprintf(out, ol, "(none)");
        return;
    }
    o += (size_t)snprintf(out + o, ol - o, "N=%s|A=%s", s->name, s->alias);
    for (i = 1; i <= NZONES && o < ol; i++)
        if (s->zone[i])
            o += (size_t)snprintf(out + o, ol - o, "|Z%d=%s/%d", i,
                                  s->zarea[i], s->zmod[i]);
    for (i = 1; i <= NUSERS && o < ol; i++)
        if (s->user[i])
            o += (size_t)snprintf(out + o, ol - o, "|U%d=%s", i,
                                  s->uname[i]);
}

static const char *
jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "";
}

/* GET /clients into a state; the import state into imp. -1 on error. */
static int
get_client(CURL *h, const struct client *c, struct cstate *s, char *imp,
           size_t il)
{
    struct resp r;
    long st = request(h, c->t, "GET", "/clients", NULL, c->id, &r);
    json_t *j, *v;
    size_t i;
    int rc = -1;

    memset(s, 0, sizeof(*s));
    snprintf(imp, il, "-");
    if (st == 404) {
        free(r.buf);
        return 0;
    }
    if (st != 200 || (j = json_loads(r.buf, 0, NULL)) == NULL) {
        free(r.buf);
        return -1;
    }
    s->exists = 1;
    snprintf(s->name, sizeof(s->name), "%s",
             jstr(json_object_get(j, "info"), "Name"));
    snprintf(s->alias, sizeof(s->alias), "%s",
             jstr(json_object_get(j, "info"), "Alias"));
    json_array_foreach(json_object_get(j, "zones"), i, v) {
        json_int_t z = json_integer_value(json_object_get(v, "Zone_No"));

        if (z < 1 || z > NZONES)
            goto out;
        s->zone[z] = 1;
        snprintf(s->zarea[z], sizeof(s->zarea[z]), "%s",
                 jstr(v, "Zone_area"));
        s->zmod[z] = (int)json_integer_value(json_object_get(v, "ModuleNo"));
    }
    json_array_foreach(json_object_get(j, "users"), i, v) {
        json_int_t u = json_integer_value(json_object_get(v, "UserNo"));

        if (u < 1 || u > NUSERS)
            goto out;
        s->user[u] = 1;
        snprintf(s->uname[u], sizeof(s->uname[u]), "%s",
                 jstr(v, "User_Name"));
    }
    snprintf(imp, il, "%s",
             jstr(json_object_get(j, "import"), "state"));
    rc = 0;
out:
    json_decref(j);
    free(r.buf);
    return rc;
}

static const char *
child_text(xmlNodePtr parent, const char *name, char *buf, size_t bl)
{
    xmlNodePtr n;

    buf[0] = '\0';
    for (n = parent->children; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE &&
            strcmp((const char *)n->name, name) == 0) {
            xmlChar *t = xmlNodeGetContent(n);

            snprintf(buf, bl, "%s", t ? (const char *)t : "");
            xmlFree(t);
            break;
        }
    return buf;
}

/* A Row element into a state. */
static void
row_state(xmlNodePtr row, struct cstate *s)
{
    xmlNodePtr n;
    char b[64];

    memset(s, 0, sizeof(*s));
    s->exists = 1;
    child_text(row, "Name", s->name, sizeof(s->name));
    child_text(row, "Alias", s->alias, sizeof(s->alias));
    for (n = row->children; n != NULL; n = n->next) {
        long no;

        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)n->name, "Zone") == 0) {
            no = atol(child_text(n, "Zone_No", b, sizeof(b)));
            if (no < 1 || no > NZONES)
                continue;
            s->zone[no] = 1;
            child_text(n, "Zone_area", s->zarea[no], sizeof(s->zarea[no]));
            s->zmod[no] = atoi(child_text(n, "ModuleNo", b, sizeof(b)));
        } else if (strcmp((const char *)n->name, "User") == 0) {
            no = atol(child_text(n, "UserNo", b, sizeof(b)));
            if (no < 1 || no > NUSERS)
                continue;
            s->user[no] = 1;
            child_text(n, "User_Name", s->uname[no], sizeof(s->uname[no]));
        }
    }
}

/* The Row of id in the document at path into s: 1 found, 0 not, -1 no
 * readable document. */
static int
find_row(const char *path, const char *id, struct cstate *s)
{
    xmlDocPtr doc = xmlReadFile(path, NULL, XML_PARSE_NONET |
                                XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root, n;
    char b[128];
    int found = 0;

    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    for (n = root ? root->children : NULL; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE &&
            strcmp(child_text(n, "__id", b, sizeof(b)), id) == 0) {
            row_state(n, s);
            found = 1;      /* last Row per __id wins */
        }
    xmlFreeDoc(doc);
    return found;
}

/* In-flight files under path: names starting with ".inflight" (a file
 * <key>/.inflight.<id>.xml, or anything below a .inflight folder). */
static int
count_inflight(const char *path, int below)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        int mine = below || strncmp(e->d_name, ".inflight", 9) == 0;
        char p[1024];
        struct stat sb;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        if (lstat(p, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            n += count_inflight(p, mine);
        else
            n += mine;
    }
    closedir(d);
    return n;
}

/* Outbox file or READY_DIR Row equals GET. 0 ok, -1 differs now. */
static int
check_files(const struct client *c, const struct cstate *got,
            const char *imp, char *why, size_t wl)
{
    char path[512], id[64], a[1024], b[1024];
    struct cstate f;
    struct stat sb;
    int rc;

    snprintf(path, sizeof(path), "%s/out/%s/%lld.xml", dir, c->t->name,
             c->id);
    snprintf(id, sizeof(id), "%lld%s", c->id, c->t->port);
    if (!got->exists) {
        if (stat(path, &sb) == 0) {
            snprintf(why, wl, "deleted client has an outbox file");
            return -1;
        }
        return 0;
    }
    canon(got, a, sizeof(a));
    if (strcmp(imp, "shipped") == 0 || strcmp(imp, "imported") == 0) {
        snprintf(path, sizeof(path), "%s/ready/clients.xml", dir);
        rc = find_row(path, id, &f);
        if (rc <= 0) {
            snprintf(why, wl, "shipped but no Row in clients.xml (%d)", rc);
            return -1;
        }
        canon(&f, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            snprintf(why, wl, "clients.xml Row %s, GET %s", b, a);
            return -1;
        }
        return 0;
    }
    rc = find_row(path, id, &f);
    if (rc <= 0) {
        snprintf(why, wl, "%s: no outbox file or no Row (%d)", imp, rc);
        return -1;
    }
    canon(&f, b, sizeof(b));
    if (strcmp(a, b) != 0) {
        snprintf(why, wl, "outbox %s, GET %s", b, a);
        return -1;
    }
    return 0;
}

static void
verify(int cycle, CURL *h)
{
    int w, i, tries;
    char inflight[512];

    for (w = 0; w < NWRITERS; w++) {
        struct writer *wr = &writers[w];

        if (wr->failed_status) {
            fail(cycle, "error", NULL, "unexpected answer: %s",
                 wr->last_error);
            n_errors++;
            wr->failed_status = 0;
        }
        for (i = 0; i < NCLIENTS; i++) {
            struct client *c = &wr->c[i];
            struct cstate got;
            char imp[32], a[1024], b[1024], m[1024], why[2200];

            if (get_client(h, c, &got, imp, sizeof(imp)) < 0) {
                fail(cycle, "error", c, "GET failed");
                n_errors++;
                continue;
            }
            canon(&got, a, sizeof(a));
            canon(&c->ack, b, sizeof(b));
            canon(&c->maybe, m, sizeof(m));
            if (strcmp(a, b) == 0) {
                if (c->inflight && strcmp(a, m) != 0)
                    n_inflight_dropped++;
            } else if (c->inflight && strcmp(a, m) == 0) {
                n_inflight_applied++;
                c->ack = c->maybe;
            } else {
                fail(cycle, "LOST", c, "GET %s, acknowledged %s%s%s", a, b,
                     c->inflight ? ", in flight " : "",
                     c->inflight ? m : "");
                n_lost++;
                c->ack = got;   /* report once */
            }
            c->inflight = 0;
            /* the outbox thread may still be catching up: up to 10 s */
            for (tries = 0;; tries++) {
                if (check_files(c, &got, imp, why, sizeof(why)) == 0)
                    break;
                if (tries == 200) {
                    fail(cycle, "STALE", c, "%s", why);
                    n_stale++;
                    break;
                }
                usleep(50000);
            }
        }
    }
    snprintf(inflight, sizeof(inflight), "%s/out", dir);
    if (count_inflight(inflight, 0) != 0) {
        fail(cycle, "STALE", NULL, "%d in-flight files left under %s",
             count_inflight(inflight, 0), inflight);
        n_stale++;
    }
}

static void
write_file(const char *name, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if ((f = fopen(p, "w")) == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        die("%s: %s", p, strerror(errno));
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    int cycles = 20, opt, cyc, w, i;
    unsigned seed = (unsigned)time(NULL);
    unsigned long acked = 0;
    char buf[4096];
    double t0;
    CURL *h;

    while ((opt = getopt(argc, argv, "n:s:v")) != -1) {
        switch (opt) {
        case 'n':
            cycles = atoi(optarg);
            break;
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            goto usage;
        }
    }
    if (argc - optind != 2) {
usage:
        fprintf(stderr, "usage: crashloop [-n CYCLES] [-s SEED] [-v] "
                "API_BIN COMBINE_BIN\n");
        return 2;
    }
    if (realpath(argv[optind], api_bin) == NULL ||
        realpath(argv[optind + 1], combine_bin) == NULL)
        die("binaries: %s", strerror(errno));
    snprintf(dir, sizeof(dir), "%s/patriot-crashloop.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    srand(seed);
    printf("crashloop: %d cycles, seed %u, dir %s\n", cycles, seed, dir);
    fflush(stdout);
    snprintf(buf, sizeof(buf),
             "[{\"key_name\": \"%s\", \"key\": \"%s\", \"port\": \"%s\","
             " \"installer_name\": \"I\", \"installer_email\": \"i@x\"},"
             " {\"key_name\": \"%s\", \"key\": \"%s\", \"port\": \"%s\","
             " \"installer_name\": \"J\", \"installer_email\": \"j@x\"}]\n",
             tenants[0].name, tenants[0].key, tenants[0].port,
             tenants[1].name, tenants[1].key, tenants[1].port);
    write_file("keys.json", buf);
    snprintf(buf, sizeof(buf),
             "DATA_FILE=%s/data.db\nXML_DIR=%s/out\nREADY_DIR=%s/ready\n"
             "COMBINE_LOG_FILE=%s/combine.log\nERROR_LOG_FILE=%s/errors.log\n"
             "CLIENT_STATE_FILE=%s/client_state.json\nSMB_ENABLED=false\n"
             "MAX_CLIENTS_PER_RUN=0\n", dir, dir, dir, dir, dir, dir);
    write_file("combine.conf", buf);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    for (w = 0; w < NWRITERS; w++) {
        writers[w].no = w;
        writers[w].seed = seed * 7919u + (unsigned)w;
        for (i = 0; i < NCLIENTS; i++) {
            writers[w].c[i].t = &tenants[w % 2];
            writers[w].c[i].id = 1000LL * (w + 1) + i;
        }
    }
    if ((h = curl_easy_init()) == NULL)
        die("curl_easy_init");

    t0 = now_s();
    start_api();
    for (cyc = 1; cyc <= cycles; cyc++) {
        pid_t cpid = 0;
        int ckilled = 0, crc;
        useconds_t run_us = 50000 + (useconds_t)(rand() % 450000);

        running = 1;
        for (w = 0; w < NWRITERS; w++)
            pthread_create(&writers[w].th, NULL, writer_main, &writers[w]);
        if (rand() % 3 == 0) {      /* the combiner runs meanwhile */
            usleep(run_us / 2);
            cpid = start_combine();
            n_combine_runs++;
            usleep(run_us / 2);
            if (rand() % 2 == 0) {
                usleep((useconds_t)(rand() % 30000));
                kill_wait(cpid);
                ckilled = 1;
                n_combine_kills++;
            } else if ((crc = wait_combine(cpid)) != 0) {
                fail(cyc, "error", NULL, "patriot-combine exit %d", crc);
                n_errors++;
            }
        } else {
            usleep(run_us);
        }
        kill_wait(api_pid);
        running = 0;
        for (w = 0; w < NWRITERS; w++) {
            pthread_join(writers[w].th, NULL);
            acked += writers[w].acked;
            writers[w].acked = 0;
        }
        start_api();
        if (ckilled) {          /* recovery: a whole run */
            n_combine_runs++;
            if ((crc = wait_combine(start_combine())) != 0) {
                fail(cyc, "error", NULL, "patriot-combine (recovery) exit "
                     "%d", crc);
                n_errors++;
            }
        }
        verify(cyc, h);
        if (verbose || cyc % 50 == 0 || cyc == cycles) {
            printf("cycle %d/%d: %lu acknowledged, %lu lost, %lu stale, "
                   "%lu errors\n", cyc, cycles, acked, n_lost, n_stale,
                   n_errors);
            fflush(stdout);
        }
    }
    kill_wait(api_pid);
    printf("crashloop: %d cycles in %.1f s: %lu changes acknowledged, "
           "in flight at a kill %lu applied / %lu not, combiner runs %lu "
           "(%lu killed); lost %lu, stale %lu, errors %lu\n", cycles,
           now_s() - t0, acked, n_inflight_applied, n_inflight_dropped,
           n_combine_runs, n_combine_kills, n_lost, n_stale, n_errors);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    if (n_lost == 0 && n_stale == 0 && n_errors == 0) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "crashloop: could not remove %s\n", dir);
        return 0;
    }
    printf("crashloop: FAILED; files kept in %s\n", dir);
    return 1;
}
