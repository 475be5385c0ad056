/*
 * test_smb.c - patriot-combine against a real smbd (tests/smb/samba.sh):
 * a batch reaching the share whole, rotation, results (UTF-16, CRLF, the
 * id-prefix trap) -> imported/failed + re-queue, an unprocessed remote
 * batch folded in, dry-run, and the API changing clients while runs are in
 * flight. The SMB faults of issue 7: wrong password, server down, the share
 * full, smbd SIGSTOPped or SIGKILLed mid-upload, clients.xml held open by a
 * reader, smbd killed between the two renames that replace clients.xml;
 * after each, check_promise: nothing marked shipped that is not
 * whole on the share, nothing deleted unshipped, and the next run ships it.
 *
 * SAMBA_SH names the script (set by meson). HOME is pointed at the server's
 * own directory so libsmbclient reads no user config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libsmbclient.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "combine.h"
#include "patriot_xml.h"
#include "store.h"

struct srv {
    char dir[128];
    unsigned port;
    int pid;                    /* smbd's leader: kill(-pid) reaches all */
};

struct fx {
    char dir[64];
    struct srv srv;
    struct combine_cfg cfg;
    int mounted;                /* a tmpfs over the share (share full) */
};

static void
run_cmd(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

/* samba.sh start (arg NULL) or restart DIR: "DIR PORT PID USER" into s */
static void
srv_run(struct srv *s, const char *what, const char *arg)
{
    const char *sh = getenv("SAMBA_SH");
    char cmd[512], line[512];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "sh %s %s %s",
             sh ? sh : "../../tests/smb/samba.sh", what, arg ? arg : "");
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    assert_int_equal(sscanf(line, "%127s %u %d", s->dir, &s->port, &s->pid),
                     3);
    assert_true(s->pid > 1);
}

static void
srv_start(struct srv *s)
{
    srv_run(s, "start", NULL);
}

/* The server of s down (its whole process group), its share kept. */
static void
srv_halt(struct srv *s)
{
    const char *sh = getenv("SAMBA_SH");

    run_cmd("sh %s halt %s", sh ? sh : "../../tests/smb/samba.sh", s->dir);
}

/* End the server of s however it is (stopped, killed) and start it again
 * on the same port and share: what is on the share stays. */
static void
srv_restart(struct srv *s)
{
    char dir[128];

    snprintf(dir, sizeof(dir), "%s", s->dir);
    srv_run(s, "restart", dir);
    assert_string_equal(s->dir, dir);
}

static void
srv_stop(struct srv *s)
{
    const char *sh = getenv("SAMBA_SH");

    if (s->dir[0] == '\0')
        return;
    run_cmd("sh %s stop %s", sh ? sh : "../../tests/smb/samba.sh", s->dir);
    s->dir[0] = '\0';
}

static void
write_text(const char *path, const char *text, mode_t mode)
{
    FILE *fp;

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *b;
    long n;

    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    b = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return b;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay++;
    }
    return n;
}

/* Point the configuration at the server s. */
static void
fx_server(struct fx *f)
{
    char p[256];

    free(f->cfg.cc_smb_server);
    f->cfg.cc_smb_server = strdup("127.0.0.1");
    f->cfg.cc_smb_port = f->srv.port;
    snprintf(p, sizeof(p), "%s/home", f->srv.dir);
    setenv("HOME", p, 1);
}

static int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256], p[256];

    snprintf(f->dir, sizeof(f->dir), "/tmp/tsmb.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    srv_start(&f->srv);
#define ENV(name, fmt) \
    snprintf(p, sizeof(p), fmt, f->dir); \
    setenv(name, p, 1)
    ENV("XML_DIR", "%s/out");
    ENV("READY_DIR", "%s/ready");
    ENV("DATA_FILE", "%s/data.db");
    ENV("COMBINE_LOG_FILE", "%s/combine.log");
    ENV("ERROR_LOG_FILE", "%s/errors.log");
    ENV("CLIENT_STATE_FILE", "%s/state.json");
    ENV("SMB_PASSWORD_FILE", "%s/pw");
#undef ENV
    write_text(getenv("SMB_PASSWORD_FILE"), "PW\n", 0600);
    setenv("SMB_ENABLED", "true", 1);
    setenv("SMB_SERVER_IP", "127.0.0.1", 1);
    setenv("SMB_SHARE_NAME", "share", 1);
    setenv("SMB_USERNAME", "smbtest", 1);
    setenv("SMB_TIMEOUT_MS", "5000", 1);
    assert_int_equal(combine_config_load(&f->cfg, NULL, err, sizeof(err)),
                     0);
    fx_server(f);
    *state = f;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;
    char p[256];

    if (f->mounted) {
        snprintf(p, sizeof(p), "%s/share", f->srv.dir);
        umount2(p, MNT_DETACH);
    }
    srv_stop(&f->srv);
    run_cmd("rm -rf %s", f->dir);
    combine_config_free(&f->cfg);
    free(f);
    return 0;
}

/* What the API does for one change: commit, then the outbox file. */
static void
put(struct store *s, const char *xml_dir, const char *key, int64_t cid,
    const char *name)
{
    json_t *info = json_pack("{s:s}", "Name", name);
    char *xml, *path;
    int created;

    assert_true(asprintf(&xml,
                         "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                         "<Clients>\n  <Row>\n    <__id>%lldBASE11</__id>\n"
                         "    <Name>%s</Name>\n  </Row>\n</Clients>\n",
                         (long long)cid, name) > 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_client(s, key, cid, info, &created), STORE_OK);
    assert_int_equal(store_set_xml(s, key, cid, xml, strlen(xml)), STORE_OK);
    assert_int_equal(store_commit(s), 0);
    json_decref(info);
    path = pxml_outbox_path(xml_dir, key, cid);
    assert_int_equal(pxml_write_file(path, xml, strlen(xml), 0), 0);
    free(path);
    free(xml);
}

static struct store *
open_db(struct fx *f)
{
    char err[256];
    struct store *s = store_open(f->cfg.cc_data_file, 0, err, sizeof(err));

    assert_non_null(s);
    return s;
}

static const char *
state_of(struct store *s, int64_t cid)
{
    static struct store_meta m;
    struct sbuf b = {0};

    assert_int_equal(store_read_client(s, "Alarm24", cid, &b, &m), STORE_OK);
    sbuf_free(&b);
    return m.sm_state;
}

static char *
share_file(struct fx *f, const char *name)
{
    char p[512];

    snprintf(p, sizeof(p), "%s/share/%s", f->srv.dir, name);
    return slurp(p);
}

static int
share_count(struct fx *f, const char *prefix)
{
    char p[512];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(p, sizeof(p), "%s/share", f->srv.dir);
    d = opendir(p);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static enum combine_rc
run_once(struct fx *f, unsigned flags, struct combine_stats *st)
{
    char err[256];
    struct combine *cb = combine_new(&f->cfg, flags, NULL, err, sizeof(err));
    enum combine_rc rc;

    if (cb == NULL)
        fail_msg("combine_new: %s", err);
    rc = combine_run(cb, st);
    combine_free(cb);
    return rc;
}

static int
outbox_exists(struct fx *f, int64_t cid)
{
    char p[256];

    snprintf(p, sizeof(p), "%s/out/Alarm24/%lld.xml", f->dir,
             (long long)cid);
    return access(p, F_OK) == 0;
}

/* A results file on the share: UTF-16LE with BOM and CRLF. */
static void
write_results(struct fx *f, const char *text)
{
    char p[512];
    FILE *fp;
    size_t i;

    snprintf(p, sizeof(p), "%s/share/clients_Import_Results.txt", f->srv.dir);
    fp = fopen(p, "wb");
    assert_non_null(fp);
    fputc(0xFF, fp);
    fputc(0xFE, fp);
    for (i = 0; text[i]; i++) {
        if (text[i] == '\n') {
            fputc('\r', fp);
            fputc(0, fp);
        }
        fputc(text[i], fp);
        fputc(0, fp);
    }
    fclose(fp);
}

static void
test_ship_rotate_results(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    char p[256], *remote, *local, *errs;

    put(s, f->cfg.cc_xml_dir, "Alarm24", 1, "one");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 2, "two");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 12, "twelve");

    /* dry run: nothing on the share, nothing marked */
    assert_int_equal(run_once(f, COMBINE_DRY_RUN, &st), COMBINE_OK);
    assert_null(share_file(f, "clients.xml"));
    assert_string_equal(state_of(s, 1), "pending");
    assert_true(outbox_exists(f, 1));

    /* 1. the batch reaches the share whole */
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 3);
    remote = share_file(f, "clients.xml");
    assert_non_null(remote);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    local = slurp(p);
    assert_string_equal(remote, local);
    free(local);
    assert_int_equal(count(remote, "<Row>"), 3);
    free(remote);
    assert_string_equal(state_of(s, 1), "shipped");
    assert_string_equal(state_of(s, 12), "shipped");
    assert_false(outbox_exists(f, 1));
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);

    /* 2. Patriot processed it: 1 and 12 completed, 2 not (the line for 12
     * must not count for 2, nor "12" for "2") */
    sleep(1);
    write_results(f, "10:00 Started processing client 2BASE11\n"
                     "10:00 Completed processing client 1BASE11\n"
                     "10:01 Completed processing client 12BASE11\n");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 4, "four");
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_imported, 2);
    assert_int_equal(st.cs_failed, 1);
    assert_string_equal(state_of(s, 1), "imported");
    assert_string_equal(state_of(s, 12), "imported");
    /* 2 failed: logged, re-queued, and shipped again in this batch */
    snprintf(p, sizeof(p), "%s/errors.log", f->dir);
    errs = slurp(p);
    assert_non_null(errs);
    assert_non_null(strstr(errs, "Client 2BASE11 "));
    assert_null(strstr(errs, "12BASE11"));
    free(errs);
    assert_string_equal(state_of(s, 2), "shipped");
    assert_string_equal(state_of(s, 4), "shipped");
    /* rotation: the previous clients.xml kept under a timestamped name */
    assert_int_equal(share_count(f, "clients_2"), 1);
    remote = share_file(f, "clients.xml");
    assert_int_equal(count(remote, "<Row>"), 2);
    assert_non_null(strstr(remote, "<__id>2BASE11</__id>"));
    assert_non_null(strstr(remote, "<__id>4BASE11</__id>"));
    free(remote);
    store_close(s);
}

static void
test_fold_unprocessed(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    char *remote;

    put(s, f->cfg.cc_xml_dir, "Alarm24", 1, "one");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 2, "two");
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    /* no results yet; 2 changes, 3 is new */
    put(s, f->cfg.cc_xml_dir, "Alarm24", 2, "two-v2");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 3, "three");
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_folded, 1);
    remote = share_file(f, "clients.xml");
    assert_int_equal(count(remote, "<Row>"), 3);
    assert_non_null(strstr(remote, "<Name>one</Name>"));
    assert_non_null(strstr(remote, "<Name>two-v2</Name>"));
    assert_null(strstr(remote, "<Name>two</Name>"));
    assert_non_null(strstr(remote, "<Name>three</Name>"));
    free(remote);
    /* nothing new: the unprocessed batch stays as it is */
    assert_int_equal(run_once(f, 0, &st), COMBINE_NOTHING);
    assert_int_equal(share_count(f, "clients_2"), 1);
    store_close(s);
}

static int check_promise(struct fx *f, struct store *s, int64_t lo,
                         int64_t hi);

static void
test_wrong_password_and_server_down(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    char *remote, *old;

    /* a previous batch on the share (client 3), not yet imported */
    put(s, f->cfg.cc_xml_dir, "Alarm24", 3, "three");
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    old = share_file(f, "clients.xml");
    assert_non_null(old);
    put(s, f->cfg.cc_xml_dir, "Alarm24", 1, "one");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 2, "two");

    /* wrong password: clear error (no password in it), nothing marked,
     * files back, the share untouched */
    write_text(f->cfg.cc_smb_password_file, "WRONG\n", 0600);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    assert_non_null(strstr(st.cs_error, "wrong password"));
    assert_null(strstr(st.cs_error, "WRONG"));
    assert_string_equal(state_of(s, 1), "pending");
    assert_string_equal(state_of(s, 2), "pending");
    assert_true(outbox_exists(f, 1));
    assert_true(outbox_exists(f, 2));
    assert_int_equal(check_promise(f, s, 1, 3), 1);
    remote = share_file(f, "clients.xml");
    assert_string_equal(remote, old);
    free(remote);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);
    assert_int_equal(share_count(f, "clients_2"), 0);

    /* a password file others can read: refused at start */
    {
        char err[256];
        struct combine *cb;

        write_text(f->cfg.cc_smb_password_file, "PW\n", 0644);
        cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
        assert_null(cb);
        assert_non_null(strstr(err, "owner alone"));
        write_text(f->cfg.cc_smb_password_file, "PW\n", 0600);
    }

    /* server down: fails, files back, the share untouched */
    srv_halt(&f->srv);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    assert_non_null(strstr(st.cs_error, "refused"));
    assert_string_equal(state_of(s, 2), "pending");
    assert_true(outbox_exists(f, 1));
    assert_true(outbox_exists(f, 2));
    assert_int_equal(check_promise(f, s, 1, 3), 1);
    remote = share_file(f, "clients.xml");
    assert_string_equal(remote, old);
    free(remote);

    /* back up, same share: the next run ships them, client 3's unimported
     * Row folded in */
    srv_restart(&f->srv);
    fx_server(f);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_string_equal(state_of(s, 1), "shipped");
    assert_string_equal(state_of(s, 2), "shipped");
    remote = share_file(f, "clients.xml");
    assert_int_equal(count(remote, "<Row>"), 3);
    free(remote);
    assert_false(outbox_exists(f, 1));
    assert_int_equal(check_promise(f, s, 1, 3), 3);
    assert_int_equal(share_count(f, "clients_2"), 1);
    free(old);
    store_close(s);
}

/* ---- SMB faults (issue 7): the promise after every failed run -------- */

/* Files under path, recursively (0 if path does not exist). */
/* Files under path (recursively); with inflight set, only in-flight ones:
 * "<key>/.inflight.<id>.xml", or anything in the old layout's ".inflight"
 * folder. */
static int
count_walk(const char *path, int inflight)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char p[1024];
    struct stat sb;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (lstat(p, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            n += count_walk(p, inflight &&
                                   strcmp(de->d_name, ".inflight") != 0);
        else if (!inflight || strncmp(de->d_name, ".inflight", 9) == 0)
            n++;
    }
    closedir(d);
    return n;
}


static off_t
file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/*
 * Issue 7's promise for clients lo..hi, checked after every run, failed or
 * not: clients.xml on the share is absent or whole (libxml2 parses it, root
 * Clients); every client marked shipped has its current Row on it byte for
 * byte; every other client is pending and its outbox file holds its
 * current XML (nothing deleted unshipped); nothing is left in flight.
 * Returns the number of clients marked shipped.
 */
static int
check_promise(struct fx *f, struct store *s, int64_t lo, int64_t hi)
{
    char p[512], *remote = share_file(f, "clients.xml");
    const char **row_at = calloc((size_t)(hi + 1), sizeof(*row_at));
    size_t *row_len = calloc((size_t)(hi + 1), sizeof(*row_len));
    const char *r, *e;
    int64_t cid;
    int shipped = 0;

    assert_non_null(row_at);
    assert_non_null(row_len);
    if (remote != NULL) {
        xmlDocPtr doc = xmlReadMemory(remote, (int)strlen(remote), NULL,
                                      NULL, XML_PARSE_NONET | XML_PARSE_HUGE);
        xmlNodePtr root;

        if (doc == NULL)
            fail_msg("clients.xml on the share is not whole (%zu bytes)",
                     strlen(remote));
        root = xmlDocGetRootElement(doc);
        assert_non_null(root);
        assert_string_equal((const char *)root->name, "Clients");
        xmlFreeDoc(doc);
        /* index its Rows by client id */
        for (r = strstr(remote, "<Row>"); r != NULL;
             r = strstr(e, "<Row>")) {
            const char *id = strstr(r, "<__id>");
            long long c;

            e = strstr(r, "</Row>");
            assert_non_null(e);
            e += 6;
            assert_non_null(id);
            assert_int_equal(sscanf(id + 6, "%lld", &c), 1);
            if (c >= lo && c <= hi) {
                row_at[c] = r;
                row_len[c] = (size_t)(e - r);
            }
        }
    }
    for (cid = lo; cid <= hi; cid++) {
        const char *stt = state_of(s, cid);
        char *xml = NULL, *local;
        const char *a, *b;
        size_t len;
        int64_t ver;

        assert_int_equal(store_get_xml(s, "Alarm24", cid, &xml, &len, &ver),
                         STORE_OK);
        a = strstr(xml, "<Row>");
        b = strstr(xml, "</Row>");
        assert_true(a != NULL && b != NULL);
        if (strcmp(stt, "shipped") == 0) {
            if (row_at[cid] == NULL ||
                row_len[cid] != (size_t)(b + 6 - a) ||
                memcmp(row_at[cid], a, row_len[cid]) != 0)
                fail_msg("client %lld is marked shipped but its Row is not "
                         "whole on the share", (long long)cid);
            shipped++;
        } else {
            assert_string_equal(stt, "pending");
            snprintf(p, sizeof(p), "%s/out/Alarm24/%lld.xml", f->dir,
                     (long long)cid);
            if ((local = slurp(p)) == NULL)
                fail_msg("client %lld is not shipped and its outbox file "
                         "is gone", (long long)cid);
            assert_string_equal(local, xml);
            free(local);
        }
        free(xml);
    }
    snprintf(p, sizeof(p), "%s/out", f->dir);
    assert_int_equal(count_walk(p, 1), 0);
    free(row_at);
    free(row_len);
    free(remote);
    return shipped;
}

/* A Name of n bytes for client cid, version v. */
static char *
big_name(int64_t cid, int v, size_t n)
{
    char *b = malloc(n + 1);
    size_t i;
    int k;

    assert_non_null(b);
    k = snprintf(b, n + 1, "c%lld-v%d-", (long long)cid, v);
    for (i = (size_t)k; i < n; i++)
        b[i] = (char)('a' + (i * 7 + (size_t)cid) % 26);
    b[n] = '\0';
    return b;
}

static void
put_big(struct store *s, struct fx *f, int64_t lo, int64_t hi, int v,
        size_t n)
{
    int64_t cid;

    for (cid = lo; cid <= hi; cid++) {
        char *name = big_name(cid, v, n);

        put(s, f->cfg.cc_xml_dir, "Alarm24", cid, name);
        free(name);
    }
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The share full: a small tmpfs (root only: mount(2)) under the share,
 * filled up but for 8 KiB. smbd's pwrite gets ENOSPC from the kernel and
 * answers NT_STATUS_DISK_FULL: the upload really fails at a write (smbd
 * does not refuse writes by its reported free space: a "dfree command"
 * reporting 0 or "max disk size" change only what it reports).
 */
static void
test_share_full(void **state)
{
    struct fx *f = *state;
    struct store *s;
    struct combine_stats st;
    struct statvfs vs;
    struct passwd *pw;
    char share[256], filler[300], *old, *remote, *zeros;
    unsigned long long avail;
    int fd;

    if (geteuid() != 0) {
        print_message("share full: skipped (needs root: mount(2) of a "
                      "small tmpfs under the share)\n");
        skip();
    }
    snprintf(share, sizeof(share), "%s/share", f->srv.dir);
    if (mount("patriot-smbfull", share, "tmpfs", 0, "size=256k,mode=0755") <
        0) {
        print_message("share full: skipped (mount tmpfs: %s)\n",
                      strerror(errno));
        skip();
    }
    f->mounted = 1;
    pw = getpwnam(f->cfg.cc_smb_user);
    assert_non_null(pw);
    assert_int_equal(chown(share, pw->pw_uid, (gid_t)-1), 0);

    s = open_db(f);
    put_big(s, f, 1, 3, 1, 100);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    old = share_file(f, "clients.xml");
    assert_non_null(old);
    assert_int_equal(check_promise(f, s, 1, 3), 3);

    /* fill the share but for 8 KiB */
    snprintf(filler, sizeof(filler), "%s/filler", share);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(statvfs(share, &vs), 0);
    avail = (unsigned long long)vs.f_bavail * vs.f_frsize;
    assert_true(avail > 8192);
    zeros = calloc(1, avail - 8192);
    assert_non_null(zeros);
    assert_int_equal(write(fd, zeros, avail - 8192), (ssize_t)(avail - 8192));
    free(zeros);
    assert_int_equal(close(fd), 0);
    assert_int_equal(statvfs(share, &vs), 0);
    assert_true((unsigned long long)vs.f_bavail * vs.f_frsize <= 8192);

    /* a batch of about 40 KiB: the upload fails at a write */
    put_big(s, f, 4, 40, 1, 1000);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    if (strstr(st.cs_error, "No space left on device") == NULL ||
        strstr(st.cs_error, "share is full") == NULL)
        fail_msg("unclear error for a full share: %s", st.cs_error);
    assert_int_equal(check_promise(f, s, 1, 40), 3);
    remote = share_file(f, "clients.xml");
    assert_string_equal(remote, old);       /* the old one, whole */
    free(remote);
    /* the partial upload does not stay on the share to fill it */
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);

    /* space again: the next run ships everything (1-3 folded in) */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 40);
    assert_int_equal(check_promise(f, s, 1, 40), 40);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);
    free(old);
    store_close(s);
}

/* Sends sig to smbd's process group at the first write into the share's
 * clients.xml.uploading (inotify IN_MODIFY): the server stops mid-upload. */
struct stopper {
    int k_fd;                   /* inotify, watching the share */
    int k_pid;
    int k_sig;
    volatile int k_fired, k_quit;
    pthread_t k_t;
};

static void *
stopper_main(void *arg)
{
    struct stopper *k = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (!k->k_quit && !k->k_fired) {
        ssize_t n = read(k->k_fd, buf, sizeof(buf)), off;

        if (n <= 0) {
            usleep(1000);
            continue;
        }
        for (off = 0; off < n;) {
            const struct inotify_event *ev = (const void *)(buf + off);

            if ((ev->mask & IN_MODIFY) && ev->len > 0 &&
                strcmp(ev->name, "clients.xml.uploading") == 0 &&
                !k->k_fired) {
                kill(-k->k_pid, k->k_sig);
                k->k_fired = 1;
            }
            off += (ssize_t)sizeof(*ev) + ev->len;
        }
    }
    return NULL;
}

static void
stopper_arm(struct stopper *k, struct fx *f, int sig)
{
    char share[256];

    memset(k, 0, sizeof(*k));
    snprintf(share, sizeof(share), "%s/share", f->srv.dir);
    k->k_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(k->k_fd >= 0);
    assert_true(inotify_add_watch(k->k_fd, share, IN_MODIFY) >= 0);
    k->k_pid = f->srv.pid;
    k->k_sig = sig;
    assert_int_equal(pthread_create(&k->k_t, NULL, stopper_main, k), 0);
}

static void
stopper_disarm(struct stopper *k)
{
    k->k_quit = 1;
    pthread_join(k->k_t, NULL);
    close(k->k_fd);
}

/*
 * smbd stopped (SIGSTOP: hangs, the combiner's SMB_TIMEOUT_MS must end the
 * run) or killed (SIGKILL) in the middle of uploading a 10 MiB batch: the
 * run fails with a clear error in bounded time, nothing of the batch is
 * marked, every file is back, clients.xml on the share is the old one,
 * whole; the server restarted (same share), the next run ships it all.
 *
 * The signal goes out at the first write into clients.xml.uploading; the
 * upload takes some 20 ms on loopback, so a stopper thread scheduled too
 * late can miss it: such an attempt (the run succeeded, or failed after
 * the upload) is checked for the promise all the same, and the scenario is
 * tried again with new versions, up to 5 times, until the signal cut an
 * upload.
 */
static void
server_stops_mid_upload(struct fx *f, int sig)
{
    struct store *s = open_db(f);
    struct combine_stats st;
    struct stopper k;
    char p[512], *old, *remote;
    double t0, dt;
    off_t part = -1, whole = 0;
    enum combine_rc rc = COMBINE_OK;
    int attempt;

    f->cfg.cc_max_clients = 0;
    put_big(s, f, 1, 3, 1, 100);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);

    for (attempt = 1; attempt <= 5; attempt++) {
        old = share_file(f, "clients.xml");
        assert_non_null(old);
        /* 250 clients of 40 KiB: 10 MiB, 160 writes of 64 KiB */
        put_big(s, f, 4, 253, attempt, 40000);
        stopper_arm(&k, f, sig);
        t0 = now_s();
        rc = run_once(f, 0, &st);
        dt = now_s() - t0;
        stopper_disarm(&k);
        snprintf(p, sizeof(p), "%s/share/clients.xml.uploading",
                 f->srv.dir);
        part = file_size(p);
        snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
        whole = file_size(p);
        assert_true(whole > 10000000);
        print_message("%s, attempt %d: %s after %.1f s (%lld of %lld bytes "
                      "uploaded)%s%s\n",
                      sig == SIGSTOP ? "SIGSTOP" : "SIGKILL", attempt,
                      rc == COMBINE_OK ? "run ok" : "run failed", dt,
                      (long long)part, (long long)whole,
                      rc == COMBINE_OK ? "" : ": ", st.cs_error);
        /* a hung server does not hang the combiner: the 5 s SMB timeout
         * of the fixture ends every call (bound: a few timeouts) */
        assert_true(dt < 60.0);
        if (rc == COMBINE_OK) {
            /* the signal came after the run: everything is shipped */
            assert_int_equal(check_promise(f, s, 1, 253), 253);
        } else {
            assert_int_equal(rc, COMBINE_FAILED);
            if (sig == SIGSTOP && strstr(st.cs_error, "not answering") ==
                                      NULL)
                fail_msg("unclear error for a hung server: %s",
                         st.cs_error);
            if (sig == SIGKILL && strstr(st.cs_error, "went away") == NULL &&
                strstr(st.cs_error, "refused") == NULL)
                fail_msg("unclear error for a killed server: %s",
                         st.cs_error);
            /* nothing of this batch marked (1-3 are from the run before
             * it), files back, the old clients.xml whole */
            assert_int_equal(check_promise(f, s, 1, 253), 3);
            remote = share_file(f, "clients.xml");
            assert_string_equal(remote, old);
            free(remote);
        }
        free(old);
        /* the server back on the same share, whatever happened */
        srv_restart(&f->srv);
        fx_server(f);
        if (rc == COMBINE_FAILED && part >= 0 && part < whole)
            break;              /* cut mid-upload: what this test is for */
        if (rc == COMBINE_FAILED) {
            /* failed after the upload: ship it before trying again */
            assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
            assert_int_equal(check_promise(f, s, 1, 253), 253);
        }
    }
    if (attempt > 5)
        fail_msg("the signal never cut an upload in 5 attempts");

    /* the next run ships it all */
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 253);
    assert_int_equal(check_promise(f, s, 1, 253), 253);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    old = slurp(p);
    remote = share_file(f, "clients.xml");
    assert_string_equal(remote, old);
    free(remote);
    free(old);
    store_close(s);
}

static void
test_server_sigstop_mid_upload(void **state)
{
    server_stops_mid_upload(*state, SIGSTOP);
}

static void
test_server_sigkill_mid_upload(void **state)
{
    server_stops_mid_upload(*state, SIGKILL);
}

/*
 * A reader holding clients.xml open on the share, as Patriot does while it
 * imports: another process opens it through libsmbclient (share access
 * read|write, no delete: what a Windows reader's FileShare.Read gives), so
 * smbd refuses the rename of clients.xml to its timestamped name with a
 * sharing violation (EBUSY). hold_ms < 0: held until told; else the child
 * closes it after hold_ms by itself.
 */
struct holder {
    pid_t h_pid;
    int h_go;                   /* write end: release */
};

static char holder_user[64];

static void
holder_auth(SMBCCTX *c, const char *srv, const char *shr, char *wg,
            int wglen, char *un, int unlen, char *pw, int pwlen)
{
    (void)c;
    (void)srv;
    (void)shr;
    snprintf(wg, (size_t)wglen, "WORKGROUP");
    snprintf(un, (size_t)unlen, "%s", holder_user);
    snprintf(pw, (size_t)pwlen, "PW");
}

static void
holder_start(struct holder *h, struct fx *f, int hold_ms)
{
    int ready[2], go[2];
    char c = 0;

    snprintf(holder_user, sizeof(holder_user), "%s", f->cfg.cc_smb_user);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    h->h_pid = fork();
    assert_true(h->h_pid >= 0);
    if (h->h_pid == 0) {
        SMBCCTX *ctx = smbc_new_context();
        SMBCFILE *fh = NULL;
        char u[512];

        close(ready[0]);
        close(go[1]);
        if (ctx != NULL) {
            smbc_setOptionDebugToStderr(ctx, 1);
            smbc_setFunctionAuthDataWithContext(ctx, holder_auth);
            smbc_setOptionNoAutoAnonymousLogin(ctx, 1);
            smbc_setTimeout(ctx, 5000);
            if (smbc_init_context(ctx) != NULL) {
                snprintf(u, sizeof(u), "smb://127.0.0.1:%u/share/clients.xml",
                         f->srv.port);
                fh = smbc_getFunctionOpen(ctx)(ctx, u, O_RDONLY, 0);
            }
        }
        c = fh != NULL ? 'R' : 'F';
        (void)!write(ready[1], &c, 1);
        if (hold_ms >= 0)
            usleep((useconds_t)hold_ms * 1000);
        else
            (void)!read(go[0], &c, 1);
        if (fh != NULL)
            smbc_getFunctionClose(ctx)(ctx, fh);
        if (ctx != NULL)
            smbc_free_context(ctx, 1);
        _exit(fh != NULL ? 0 : 1);
    }
    close(ready[1]);
    close(go[0]);
    h->h_go = go[1];
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'R');
}

static void
holder_release(struct holder *h)
{
    int status;

    (void)!write(h->h_go, "x", 1);
    close(h->h_go);
    assert_int_equal(waitpid(h->h_pid, &status, 0), h->h_pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_reader_holds_clients_xml(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    struct holder h;
    char *old, *remote;

    put_big(s, f, 1, 3, 1, 100);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    old = share_file(f, "clients.xml");
    assert_non_null(old);

    /* held for the whole run: the rotation is refused (after retries) */
    put_big(s, f, 4, 10, 1, 100);
    holder_start(&h, f, -1);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    if (strstr(st.cs_error, "held open") == NULL)
        fail_msg("unclear error for a held clients.xml: %s", st.cs_error);
    assert_int_equal(check_promise(f, s, 1, 10), 3);
    remote = share_file(f, "clients.xml");
    assert_string_equal(remote, old);
    free(remote);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);
    assert_int_equal(share_count(f, "clients_2"), 0);
    holder_release(&h);

    /* released: the next run ships it all */
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 10);
    assert_int_equal(check_promise(f, s, 1, 10), 10);
    assert_int_equal(share_count(f, "clients_2"), 1);
    free(old);

    /* held for one second only: the combiner's retries wait it out */
    sleep(1);       /* a new rotation name (seconds) */
    put_big(s, f, 11, 12, 1, 100);
    holder_start(&h, f, 1000);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    holder_release(&h);
    assert_int_equal(check_promise(f, s, 1, 12), 12);
    assert_int_equal(share_count(f, "clients_2"), 2);
    store_close(s);
}

/*
 * The window between the two renames that replace clients.xml (there is no
 * atomic replace over SMB): clients.xml renamed to its backup name, then
 * the server dies before the upload is renamed to clients.xml. Made
 * deterministic with two readers in a child process: one holds
 * clients.xml (the rotation waits in its retries) until the upload is
 * complete, then holds the upload itself and lets clients.xml go; the
 * rotation succeeds, the final rename waits in its retries, and the child
 * SIGKILLs smbd then. The share has no clients.xml (allowed), the previous
 * batch (clients 1-3, never imported) is only under its backup name, and
 * the upload of the failed run is left whole. The next run must still put
 * 1-3 on the share: it folds the failed run's upload.
 */
static SMBCFILE *
child_open(SMBCCTX *ctx, unsigned port, const char *name)
{
    char u[512];

    snprintf(u, sizeof(u), "smb://127.0.0.1:%u/share/%s", port, name);
    return smbc_getFunctionOpen(ctx)(ctx, u, O_RDONLY, 0);
}

static void
window_child(struct fx *f, int ready)
{
    SMBCCTX *ctx = smbc_new_context();
    SMBCFILE *xml = NULL, *up = NULL;
    char share[256], p[512];
    int i;

    snprintf(share, sizeof(share), "%s/share", f->srv.dir);
    if (ctx != NULL) {
        smbc_setOptionDebugToStderr(ctx, 1);
        smbc_setFunctionAuthDataWithContext(ctx, holder_auth);
        smbc_setOptionNoAutoAnonymousLogin(ctx, 1);
        smbc_setTimeout(ctx, 5000);
        if (smbc_init_context(ctx) != NULL)
            xml = child_open(ctx, f->srv.port, "clients.xml");
    }
    (void)!write(ready, xml != NULL ? "R" : "F", 1);
    if (xml == NULL)
        _exit(1);
    /* the upload appears; a small batch is whole long before the
     * rotation's 5 s of retries are over */
    snprintf(p, sizeof(p), "%s/clients.xml.uploading", share);
    for (i = 0; i < 3000 && access(p, F_OK) != 0; i++)
        usleep(10000);
    usleep(1000 * 1000);
    if ((up = child_open(ctx, f->srv.port, "clients.xml.uploading")) == NULL)
        _exit(2);
    smbc_getFunctionClose(ctx)(ctx, xml);
    /* the rotation goes through; the final rename waits for up */
    snprintf(p, sizeof(p), "%s/clients.xml", share);
    for (i = 0; i < 3000 && access(p, F_OK) == 0; i++)
        usleep(10000);
    if (access(p, F_OK) == 0)
        _exit(3);
    usleep(300 * 1000);
    kill(-f->srv.pid, SIGKILL);
    smbc_free_context(ctx, 1);      /* nothing left to Valgrind */
    _exit(0);
}

static void
test_server_dies_between_renames(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    char *old, *remote, p[512];
    int ready[2], status;
    pid_t pid;
    char c = 0;

    put_big(s, f, 1, 3, 1, 100);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    old = share_file(f, "clients.xml");
    assert_non_null(old);
    put_big(s, f, 4, 6, 1, 100);

    snprintf(holder_user, sizeof(holder_user), "%s", f->cfg.cc_smb_user);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        window_child(f, ready[1]);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'R');
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    print_message("server killed between the renames: %s\n", st.cs_error);

    /* the share: no clients.xml, the previous batch under its backup
     * name, the upload whole; nothing of the batch marked, files back */
    assert_null(share_file(f, "clients.xml"));
    assert_int_equal(share_count(f, "clients_2"), 1);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 1);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    remote = share_file(f, "clients.xml.uploading");
    free(old);
    old = slurp(p);
    assert_string_equal(remote, old);
    free(remote);
    free(old);
    assert_string_equal(state_of(s, 4), "pending");
    assert_true(outbox_exists(f, 4));

    /* the server back: the next run puts 1-3 back on the share too */
    srv_restart(&f->srv);
    fx_server(f);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_int_equal(check_promise(f, s, 1, 6), 6);
    assert_int_equal(share_count(f, "clients.xml.uploading"), 0);
    store_close(s);
}

/* ---- the API writing while runs are in flight ----------------------- */

#define NCLIENTS 40

struct writer {
    struct fx *w_f;
    volatile int w_stop;
    int w_last[NCLIENTS + 1];   /* last version number written */
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    struct store *s = open_db(w->w_f);
    unsigned seed = 42;
    int n = 0;

    while (!w->w_stop || n < NCLIENTS) {
        int cid = n < NCLIENTS ? n + 1 : (int)(rand_r(&seed) % NCLIENTS) + 1;
        char name[32];

        w->w_last[cid]++;
        snprintf(name, sizeof(name), "c%d-v%d", cid, w->w_last[cid]);
        put(s, w->w_f->cfg.cc_xml_dir, "Alarm24", cid, name);
        n++;
        usleep(2000);
    }
    store_close(s);
    return NULL;
}

static void
test_api_changes_during_runs(void **state)
{
    struct fx *f = *state;
    struct writer w;
    struct combine_stats st;
    pthread_t t;
    struct store *s;
    char *remote;
    int i, runs = 0, bad = -1;
    enum combine_rc rc = COMBINE_OK;

    memset(&w, 0, sizeof(w));
    w.w_f = f;
    f->cfg.cc_max_clients = 15;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    for (i = 0; i < 12; i++) {
        struct combine *cb = combine_new(&f->cfg, 0, NULL, st.cs_error,
                                         sizeof(st.cs_error));

        rc = COMBINE_FAILED;
        if (cb != NULL) {
            rc = combine_run(cb, &st);
            combine_free(cb);
        }
        if (rc != COMBINE_OK && rc != COMBINE_NOTHING) {
            bad = i;
            break;
        }
        runs += rc == COMBINE_OK;
        usleep(50000);
    }
    /* no assertion while the writer runs: a failed one leaves this
     * function, and the thread would go on writing into the fixture that
     * the teardown frees (the test then died with status 255, its report
     * lost) */
    w.w_stop = 1;
    pthread_join(t, NULL);
    if (bad >= 0)
        fail_msg("run %d of 12 failed (rc %d): %s", bad + 1, (int)rc,
                 st.cs_error);
    assert_true(runs > 2);

    /* in the end, every client's last version is shipped or waiting */
    s = open_db(f);
    for (i = 1; i <= NCLIENTS; i++) {
        const char *stt = state_of(s, i);

        assert_true(strcmp(stt, "shipped") == 0 ||
                    strcmp(stt, "pending") == 0);
    }
    /* and the runs that follow put every last version on the share (no
     * results ever came: every batch is folded into the next) */
    f->cfg.cc_max_clients = 0;
    (void)run_once(f, 0, &st);
    remote = share_file(f, "clients.xml");
    assert_non_null(remote);
    for (i = 1; i <= NCLIENTS; i++) {
        char name[64];

        snprintf(name, sizeof(name), "<Name>c%d-v%d</Name>", i, w.w_last[i]);
        if (strstr(remote, name) == NULL)
            fail_msg("client %d: last version %s not on the share", i, name);
        assert_string_equal(state_of(s, i), "shipped");
    }
    assert_int_equal(count(remote, "<Row>"), NCLIENTS);
    free(remote);
    store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ship_rotate_results, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_fold_unprocessed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_and_server_down,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_api_changes_during_runs,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_share_full, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_sigstop_mid_upload,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_sigkill_mid_upload,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reader_holds_clients_xml,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_dies_between_renames,
                                        fx_setup, fx_teardown),
    };

    xmlInitParser();
    if (getenv("SMB_TEST_FILTER") != NULL)      /* e.g. "*mid_upload" */
        cmocka_set_test_filter(getenv("SMB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
