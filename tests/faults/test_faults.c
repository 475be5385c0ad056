/*
 * test_faults.c - I/O faults under the real API, in process.
 *
 * A test SQLite VFS ("faultsim", a shim over the default unix VFS in the
 * manner of SQLite's own test_vfs / faultsim) is registered as the default
 * before the store opens. It fails the Nth read, write, fsync or lock (xLock
 * and xShmLock taking a lock: a release cannot fail) after it is armed, and every one after it until it is
 * cleared (a persistent fault). The real HTTP server (http_start with
 * api_routes, wired as api-main.c does) runs in this process on a loopback
 * port; libcurl drives it.
 *
 * For every kind and every N from 1 until a scripted sequence of changes no
 * longer reaches the Nth operation:
 *   - each change answers 2xx or 503/507, never anything else, and the
 *     service stays up;
 *   - once the fault is cleared the next change succeeds;
 *   - GET of every client equals the log of acknowledged changes (a change
 *     answered 503 left nothing behind: not half-applied);
 * and at the end, the server is stopped and started again on the same
 * files (the fault VFS disarmed): everything acknowledged is still there.
 *
 * Then the XML writer: a full disk (tmpfs of 64 KiB filled up) and a
 * read-only outbox (tmpfs remounted read-only) under XML_DIR. Changes still
 * answer 2xx (the database is the truth); once space is back or the folder
 * is writable again, the outbox files catch up. Needs root for mount(2):
 * without it that part is skipped (the test reports it).
 *
 * Exit 0 pass, 1 fail, 77 skipped entirely.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "writer.h"

static int failures;

#define CHECK(c, ...)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                               \
            fprintf(stderr, "\n");                                      \
            failures++;                                                 \
        }                                                               \
    } while (0)

/* ---- the fault VFS ---------------------------------------------------- */

enum fkind { FK_NONE, FK_READ, FK_WRITE, FK_SYNC, FK_LOCK };
static const char *const kind_name[] = {"none", "read", "write", "fsync",
                                        "lock"};

static atomic_int f_kind;           /* armed kind, FK_NONE: off */
static atomic_long f_count;         /* operations of that kind so far */
static atomic_long f_nth;           /* fail the nth and every later one */
static atomic_long f_hits;          /* faults injected */

static sqlite3_vfs *base_vfs;

struct ffile {
    sqlite3_file f;                 /* our methods */
    sqlite3_file *real;             /* the unix VFS's file, after us */
};

static int
fault(enum fkind k)
{
    if (atomic_load(&f_kind) != (int)k)
        return 0;
    if (atomic_fetch_add(&f_count, 1) + 1 < atomic_load(&f_nth))
        return 0;
    atomic_fetch_add(&f_hits, 1);
    return 1;
}

#define REAL(p) (((struct ffile *)(p))->real)

static int
f_close(sqlite3_file *p)
{
    int rc = REAL(p)->pMethods ? REAL(p)->pMethods->xClose(REAL(p))
                               : SQLITE_OK;

    sqlite3_free(REAL(p));
    return rc;
}

static int
f_read(sqlite3_file *p, void *b, int n, sqlite3_int64 off)
{
    if (fault(FK_READ))
        return SQLITE_IOERR_READ;
    return REAL(p)->pMethods->xRead(REAL(p), b, n, off);
}

static int
f_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 off)
{
    if (fault(FK_WRITE))
        return SQLITE_IOERR_WRITE;
    return REAL(p)->pMethods->xWrite(REAL(p), b, n, off);
}

static int
f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    return REAL(p)->pMethods->xTruncate(REAL(p), size);
}

static int
f_sync(sqlite3_file *p, int flags)
{
    if (fault(FK_SYNC))
        return SQLITE_IOERR_FSYNC;
    return REAL(p)->pMethods->xSync(REAL(p), flags);
}

static int
f_size(sqlite3_file *p, sqlite3_int64 *size)
{
    return REAL(p)->pMethods->xFileSize(REAL(p), size);
}

static int
f_lock(sqlite3_file *p, int l)
{
    if (fault(FK_LOCK))
        return SQLITE_IOERR_LOCK;
    return REAL(p)->pMethods->xLock(REAL(p), l);
}

static int
f_unlock(sqlite3_file *p, int l)
{
    return REAL(p)->pMethods->xUnlock(REAL(p), l);
}

static int
f_check_reserved(sqlite3_file *p, int *out)
{
    return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}

static int
f_fcntl(sqlite3_file *p, int op, void *arg)
{
    return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}

static int
f_sector(sqlite3_file *p)
{
    return REAL(p)->pMethods->xSectorSize(REAL(p));
}

static int
f_devchar(sqlite3_file *p)
{
    return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}

static int
f_shm_map(sqlite3_file *p, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(p)->pMethods->xShmMap(REAL(p), pg, sz, ext, pp);
}

static int
f_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
    /* Only taking a lock can fail: releasing one (fcntl F_UNLCK) cannot,
     * and SQLite rightly does not expect it to (a failed unlock would
     * leave the real lock held for good). */
    if ((flags & SQLITE_SHM_LOCK) && fault(FK_LOCK))
        return SQLITE_IOERR_SHMLOCK;
    return REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags);
}

static void
f_shm_barrier(sqlite3_file *p)
{
    REAL(p)->pMethods->xShmBarrier(REAL(p));
}

static int
f_shm_unmap(sqlite3_file *p, int del)
{
    return REAL(p)->pMethods->xShmUnmap(REAL(p), del);
}

static int
f_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **pp)
{
    *pp = NULL;         /* no memory map: every read goes through xRead */
    (void)p;
    (void)off;
    (void)n;
    return SQLITE_OK;
}

static int
f_unfetch(sqlite3_file *p, sqlite3_int64 off, void *pg)
{
    (void)p;
    (void)off;
    (void)pg;
    return SQLITE_OK;
}

static const sqlite3_io_methods f_methods = {
    3, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
    f_unlock, f_check_reserved, f_fcntl, f_sector, f_devchar, f_shm_map,
    f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch, f_unfetch,
};

static int
f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
       int *out_flags)
{
    struct ffile *ff = (struct ffile *)file;
    int rc;

    (void)vfs;
    ff->f.pMethods = NULL;
    if ((ff->real = sqlite3_malloc(base_vfs->szOsFile)) == NULL)
        return SQLITE_NOMEM;
    memset(ff->real, 0, (size_t)base_vfs->szOsFile);
    rc = base_vfs->xOpen(base_vfs, name, ff->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        sqlite3_free(ff->real);
        ff->real = NULL;
        return rc;
    }
    ff->f.pMethods = &f_methods;
    return SQLITE_OK;
}

#define PASS(fn, ...) return base_vfs->fn(base_vfs, __VA_ARGS__)
static int
f_delete(sqlite3_vfs *v, const char *n, int sync)
{
    (void)v;
    PASS(xDelete, n, sync);
}

static int
f_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
    (void)v;
    PASS(xAccess, n, flags, out);
}

static int
f_fullpath(sqlite3_vfs *v, const char *n, int len, char *out)
{
    (void)v;
    PASS(xFullPathname, n, len, out);
}

static int
f_random(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    PASS(xRandomness, n, out);
}

static int
f_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    PASS(xSleep, us);
}

static int
f_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
    (void)v;
    PASS(xCurrentTimeInt64, t);
}

static int
f_lasterr(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    PASS(xGetLastError, n, out);
}

static sqlite3_vfs fault_vfs;

static void
fault_vfs_register(void)
{
    base_vfs = sqlite3_vfs_find("unix");
    if (base_vfs == NULL) {
        fprintf(stderr, "no unix VFS\n");
        exit(77);
    }
    fault_vfs.iVersion = 2;
    fault_vfs.szOsFile = (int)sizeof(struct ffile);
    fault_vfs.mxPathname = base_vfs->mxPathname;
    fault_vfs.zName = "faultsim";
    fault_vfs.xOpen = f_open;
    fault_vfs.xDelete = f_delete;
    fault_vfs.xAccess = f_access;
    fault_vfs.xFullPathname = f_fullpath;
    fault_vfs.xRandomness = f_random;
    fault_vfs.xSleep = f_sleep;
    fault_vfs.xCurrentTimeInt64 = f_time64;
    fault_vfs.xGetLastError = f_lasterr;
    sqlite3_vfs_register(&fault_vfs, 1);
}

static void
arm(enum fkind k, long n)
{
    atomic_store(&f_kind, FK_NONE);
    atomic_store(&f_count, 0);
    atomic_store(&f_nth, n);
    atomic_store(&f_hits, 0);
    atomic_store(&f_kind, (int)k);
}

static void
disarm(void)
{
    atomic_store(&f_kind, FK_NONE);
}

/* ---- the server, in process (as api-main.c wires it) ------------------ */

static char dir[256], keyfile[300], xmldir[300], datafile[300];
static struct cfg cfg;
static struct app app;
static struct store *wstore;
static struct http_server *srv;
static unsigned port;

#define KEY "faults-test-key-3c9d"
#define PORTSUFFIX "BASE11"

static void
server_start(void)
{
    struct http_opts ho;
    struct keyset *ks;
    char err[512];
    size_t checked, rewritten, pruned;

    memset(&app, 0, sizeof(app));
    if ((ks = keys_load(keyfile, err, sizeof(err))) == NULL) {
        fprintf(stderr, "keys: %s\n", err);
        exit(1);
    }
    api_app_init(&app);
    app.ap_cfg = &cfg;
    api_set_keys(&app, ks);
    mkdir(xmldir, 0750);
    if ((wstore = store_open(datafile, 0, err, sizeof(err))) == NULL ||
        (app.ap_outbox = outbox_start(xmldir, datafile, err,
                                      sizeof(err))) == NULL) {
        fprintf(stderr, "start: %s\n", err);
        exit(1);
    }
    outbox_reconcile(wstore, xmldir, app.ap_outbox, &checked, &rewritten);
    outbox_prune(wstore, xmldir, ks, &pruned);
    if ((app.ap_writer = writer_start(wstore, app.ap_outbox, err,
                                      sizeof(err))) == NULL) {
        fprintf(stderr, "writer: %s\n", err);
        exit(1);
    }
    memset(&ho, 0, sizeof(ho));
    ho.ho_host = "127.0.0.1";
    ho.ho_port = 0;
    ho.ho_threads = 2;
    ho.ho_conn_limit = 64;
    ho.ho_conn_timeout = 30;
    ho.ho_routes = api_routes;
    ho.ho_nroutes = api_nroutes;
    ho.ho_auth = api_auth;
    ho.ho_app = &app;
    if ((srv = http_start(&ho, &port, err, sizeof(err))) == NULL) {
        fprintf(stderr, "http: %s\n", err);
        exit(1);
    }
}

static void
server_stop(void)
{
    http_stop(srv, 2000);
    writer_stop(app.ap_writer);
    outbox_stop(app.ap_outbox);
    api_app_close(&app);
    srv = NULL;
}

/* ---- HTTP -------------------------------------------------------------- */

struct resp {
    char buf[65536];
    size_t len;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t k = sz * n;

    if (r->len + k >= sizeof(r->buf))
        k = sizeof(r->buf) - 1 - r->len;
    memcpy(r->buf + r->len, p, k);
    r->len += k;
    r->buf[r->len] = '\0';
    return sz * n;
}

/* A fresh connection per request: a broken keep-alive never hides a
 * failure. Returns the status, -1 on a transport error. */
static long
req(const char *method, const char *path, const char *body, long long cid,
    struct resp *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char url[128], hc[64];
    long st = -1;

    r->len = 0;
    r->buf[0] = '\0';
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    hd = curl_slist_append(hd, "Authorization: Bearer " KEY);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    if (cid > 0) {
        snprintf(hc, sizeof(hc), "X-Client-Id: %lld", cid);
        hd = curl_slist_append(hd, hc);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return st;
}

/* ---- the model: what was acknowledged ---------------------------------- */

#define NCL 3
static const long long cids[NCL] = {101, 102, 103};

struct cst {
    int exists;
    char name[64];
    char zone[6][64];       /* zone_id 1..5 area, "" = none */
    char user[4][64];       /* UserNo 1..3 name, "" = none */
};
static struct cst model[NCL];

static void
canon_model(const struct cst *s, char *out, size_t ol)
{
    size_t o = 0;
    int i;

    if (!s->exists) {
        snprintf(out, ol, "(none)");
        return;
    }
    o += (size_t)snprintf(out + o, ol - o, "N=%s", s->name);
    for (i = 1; i <= 5; i++)
        if (s->zone[i][0])
            o += (size_t)snprintf(out + o, ol - o, "|Z%d=%s", i,
                                  s->zone[i]);
    for (i = 1; i <= 3; i++)
        if (s->user[i][0])
            o += (size_t)snprintf(out + o, ol - o, "|U%d=%s", i,
                                  s->user[i]);
}

/* GET a client into its canonical text; -1 on error. */
static int
canon_get(long long cid, char *out, size_t ol, struct cst *sp)
{
    struct resp *r = malloc(sizeof(*r));
    struct cst s;
    json_t *j, *v;
    size_t i;
    long st;

    memset(&s, 0, sizeof(s));
    st = req("GET", "/clients", NULL, cid, r);
    if (st == 404) {
        free(r);
        canon_model(&s, out, ol);
        *sp = s;
        return 0;
    }
    if (st != 200 || (j = json_loads(r->buf, 0, NULL)) == NULL) {
        snprintf(out, ol, "GET -> %ld %.200s", st, r->buf);
        free(r);
        return -1;
    }
    s.exists = 1;
    snprintf(s.name, sizeof(s.name), "%s", json_string_value(json_object_get(
             json_object_get(j, "info"), "Name")) ?: "");
    json_array_foreach(json_object_get(j, "zones"), i, v) {
        json_int_t z = json_integer_value(json_object_get(v, "Zone_No"));

        if (z >= 1 && z <= 5)
            snprintf(s.zone[z], sizeof(s.zone[z]), "%s", json_string_value(
                     json_object_get(v, "Zone_area")) ?: "?");
    }
    json_array_foreach(json_object_get(j, "users"), i, v) {
        json_int_t u = json_integer_value(json_object_get(v, "UserNo"));

        if (u >= 1 && u <= 3)
            snprintf(s.user[u], sizeof(s.user[u]), "%s", json_string_value(
                     json_object_get(v, "User_Name")) ?: "?");
    }
    json_decref(j);
    free(r);
    canon_model(&s, out, ol);
    *sp = s;
    return 0;
}

static void
verify_all(const char *when)
{
    char a[1024], b[1024];
    int i;

    for (i = 0; i < NCL; i++) {
        struct cst got;
        int rc = canon_get(cids[i], a, sizeof(a), &got);

        canon_model(&model[i], b, sizeof(b));
        CHECK(rc == 0 && strcmp(a, b) == 0,
              "%s: client %lld: GET %s, acknowledged %s", when, cids[i], a,
              b);
        if (rc == 0)
            model[i] = got;     /* report a difference once */
    }
}

static unsigned long seqno;
static unsigned long n_changes, n_ok, n_refused;

/* One change of the script: step s on client i. Applies it to the model
 * when acknowledged. Returns the status. */
static long
change(int step, int i, int strict)
{
    struct resp *r = malloc(sizeof(*r));
    struct cst after = model[i];
    char body[512], v[48];
    const char *m, *path;
    long long cid = cids[i];
    long st;
    int z = 1 + step % 5, u = 1 + step % 3;

    snprintf(v, sizeof(v), "v%lu", ++seqno);
    switch (model[i].exists ? step % 6 : 0) {
    case 0:
        m = "PUT", path = "/clients";
        snprintf(body, sizeof(body), "{\"client_id\": %lld, \"info\": "
                 "{\"Name\": \"%s\"}}", cid, v);
        if (!after.exists)
            memset(&after, 0, sizeof(after));
        after.exists = 1;
        snprintf(after.name, sizeof(after.name), "%s", v);
        break;
    case 1:
        m = "PATCH", path = "/clients";
        snprintf(body, sizeof(body), "{\"client_id\": %lld, \"info\": "
                 "{\"Name\": \"%s\"}}", cid, v);
        snprintf(after.name, sizeof(after.name), "%s", v);
        break;
    case 2:
    case 4:
        m = "PUT", path = "/clients/zones";
        snprintf(body, sizeof(body), "{\"client_id\": %lld, \"zone_id\": %d,"
                 " \"Zone_area\": \"%s\"}", cid, z, v);
        snprintf(after.zone[z], sizeof(after.zone[z]), "%s", v);
        break;
    case 3:
        if (model[i].user[u][0]) {
            m = "PUT";
        } else {
            m = "POST";
        }
        path = "/clients/users";
        snprintf(body, sizeof(body), "{\"client_id\": %lld, \"user\": "
                 "{\"User_Name\": \"%s\", \"UserNo\": %d}}", cid, v, u);
        snprintf(after.user[u], sizeof(after.user[u]), "%s", v);
        break;
    default:
        if (model[i].zone[z][0]) {
            m = "DELETE", path = "/clients/zones";
            snprintf(body, sizeof(body), "{\"client_id\": %lld, "
                     "\"zone_id\": %d}", cid, z);
            after.zone[z][0] = '\0';
        } else {
            m = "DELETE", path = "/clients";
            snprintf(body, sizeof(body), "{\"client_id\": %lld}", cid);
            memset(&after, 0, sizeof(after));
        }
        break;
    }
    st = req(m, path, body, 0, r);
    n_changes++;
    if (st >= 200 && st < 300) {
        model[i] = after;
        n_ok++;
    } else {
        n_refused++;
        if (getenv("FAULTS_VERBOSE"))
            printf("refused: %s %s %s -> %ld %.200s\n", m, path, body, st,
                   r->buf);
        CHECK(!strict && (st == 503 || st == 507),
              "%s %s %s -> %ld %s", m, path, body, st, r->buf);
    }
    free(r);
    return st;
}

#define SCRIPT_LEN 12

/* The script, under a fault of kind k at operation n. Returns the number
 * of faults injected. */
static long
script(enum fkind k, long n)
{
    char when[64];
    long hits;
    int s;

    arm(k, n);
    for (s = 0; s < SCRIPT_LEN; s++)
        change(s + (int)n, s % NCL, 0);
    hits = atomic_load(&f_hits);
    disarm();
    /* the fault cleared: the next change succeeds (the store may need a
     * moment to notice; a 503 says "retry": up to 3 tries) */
    {
        long st = 0;
        int t;

        for (t = 0; t < 3; t++) {
            st = change((int)n, (int)(n % NCL), 1);
            if (st >= 200 && st < 300)
                break;
            usleep(100000);
        }
        CHECK(st >= 200 && st < 300, "%s N=%ld: change after the fault "
              "cleared -> %ld", kind_name[k], n, st);
    }
    snprintf(when, sizeof(when), "%s N=%ld", kind_name[k], n);
    verify_all(when);
    return hits;
}

/* ---- the XML writer: full disk, read-only outbox ----------------------- */

static int
outbox_matches_all(void)
{
    int i;

    for (i = 0; i < NCL; i++) {
        char p[512];
        struct stat sb;

        snprintf(p, sizeof(p), "%s/Faults/%lld.xml", xmldir, cids[i]);
        if (model[i].exists != (stat(p, &sb) == 0 && sb.st_size > 0))
            return 0;
    }
    return 1;
}

static int
wait_outbox(int secs)
{
    int t;

    for (t = 0; t < secs * 10; t++) {
        if (outbox_matches_all())
            return 1;
        usleep(100000);
    }
    return 0;
}

static void
remove_outbox_files(void)
{
    int i;

    for (i = 0; i < NCL; i++) {
        char p[512];

        snprintf(p, sizeof(p), "%s/Faults/%lld.xml", xmldir, cids[i]);
        unlink(p);
    }
}

static void
writer_faults(void)
{
    char filler[512];
    int fd, i, s;
    static char block[4096];
    long st;

    if (geteuid() != 0) {
        printf("full disk / read-only outbox: skipped (needs root)\n");
        return;
    }
    server_stop();
    /* a 64 KiB filesystem for XML_DIR */
    if (mount("patriot-faults", xmldir, "tmpfs", 0, "size=64k,mode=0750") <
        0) {
        printf("full disk / read-only outbox: skipped (mount: %s)\n",
               strerror(errno));
        server_start();
        return;
    }
    server_start();
    CHECK(wait_outbox(10), "outbox rebuilt on the new tmpfs at start-up");

    /* full: fill it, change everything, expect 2xx */
    snprintf(filler, sizeof(filler), "%s/filler", xmldir);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "filler: %s", strerror(errno));
    memset(block, 'x', sizeof(block));
    while (fd >= 0 && write(fd, block, sizeof(block)) > 0)
        ;
    if (fd >= 0)
        close(fd);
    remove_outbox_files();          /* so that a catch-up is visible */
    for (s = 0; s < 6; s++) {
        for (i = 0; i < NCL; i++) {
            st = change(s, i, 1);
            CHECK(st >= 200 && st < 300, "full disk: change -> %ld", st);
        }
    }
    verify_all("full disk");
    unlink(filler);                 /* space is back */
    change(0, 0, 1);                /* a change may be what wakes it up */
    CHECK(wait_outbox(15), "full disk: outbox caught up after space came "
          "back");

    /* read-only */
    remove_outbox_files();
    CHECK(mount(NULL, xmldir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0,
          "remount ro: %s", strerror(errno));
    for (s = 0; s < 6; s++)
        for (i = 0; i < NCL; i++) {
            st = change(s + 1, i, 1);
            CHECK(st >= 200 && st < 300, "read-only outbox: change -> %ld",
                  st);
        }
    verify_all("read-only outbox");
    CHECK(mount(NULL, xmldir, NULL, MS_REMOUNT, NULL) == 0,
          "remount rw: %s", strerror(errno));
    change(0, 0, 1);
    CHECK(wait_outbox(15), "read-only outbox: caught up once writable");

    server_stop();
    umount2(xmldir, MNT_DETACH);
    server_start();
}

static int
rm_one(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

int
main(void)
{
    static const enum fkind kinds[] = {FK_READ, FK_WRITE, FK_SYNC, FK_LOCK};
    long maxn = getenv("FAULTS_MAX_N") ? atol(getenv("FAULTS_MAX_N")) : 400;
    size_t ki;
    FILE *f;

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "%s/patriot-faults.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(keyfile, sizeof(keyfile), "%s/keys.json", dir);
    snprintf(xmldir, sizeof(xmldir), "%s/out", dir);
    snprintf(datafile, sizeof(datafile), "%s/data.db", dir);
    if ((f = fopen(keyfile, "w")) == NULL)
        return 1;
    fprintf(f, "[{\"key_name\": \"Faults\", \"key\": \"%s\", \"port\": "
            "\"%s\", \"installer_name\": \"I\", \"installer_email\": "
            "\"i@x\"}]\n", KEY, PORTSUFFIX);
    fclose(f);
    memset(&cfg, 0, sizeof(cfg));
    cfg.cfg_key_file = keyfile;
    cfg.cfg_xml_dir = xmldir;
    cfg.cfg_data_file = datafile;
    cfg.cfg_log_file = "";
    cfg.cfg_host = "127.0.0.1";
    cfg.cfg_threads = 2;
    cfg.cfg_conn_limit = 64;
    cfg.cfg_conn_timeout = 30;
    cfg.cfg_quiet = 1;

    xmlInitParser();
    http_json_init();
    json_object_seed(0);
    log_set_request_echo(0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fault_vfs_register();           /* before any store_open */
    server_start();

    for (ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
        long n, hits = 0;

        for (n = 1; n <= maxn; n++) {
            hits = script(kinds[ki], n);
            if (hits == 0)
                break;      /* the script no longer reaches the Nth */
        }
        printf("%s faults: N = 1..%ld%s\n", kind_name[kinds[ki]], n - 1,
               hits ? " (capped)" : ", every operation of the script");
        fflush(stdout);
        if (failures > 20)
            break;
    }
    /* everything acknowledged survives a restart on the same files */
    server_stop();
    server_start();
    verify_all("after restart");

    writer_faults();
    printf("changes: %lu, acknowledged %lu, refused %lu; %d failures\n",
           n_changes, n_ok, n_refused, failures);
    server_stop();
    curl_global_cleanup();
    if (failures == 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("files kept in %s\n", dir);
    return failures ? 1 : 0;
}
