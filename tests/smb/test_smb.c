/*
 * test_smb.c - patriot-combine against a real smbd (tests/smb/samba.sh):
 * a batch reaching the share whole, rotation, results (UTF-16, CRLF, the
 * id-prefix trap) -> imported/failed + re-queue, an unprocessed remote
 * batch folded in, wrong password and server stopped (nothing marked, files
 * back, the next run ships), dry-run, and the API changing clients while
 * runs are in flight.
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
#include <jansson.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "combine.h"
#include "patriot_xml.h"
#include "store.h"

struct srv {
    char dir[128];
    unsigned port;
};

struct fx {
    char dir[64];
    struct srv srv;
    struct combine_cfg cfg;
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

static void
srv_start(struct srv *s)
{
    const char *sh = getenv("SAMBA_SH");
    char cmd[512], line[512];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "sh %s start",
             sh ? sh : "../../tests/smb/samba.sh");
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    assert_int_equal(sscanf(line, "%127s %u", s->dir, &s->port), 2);
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
    char xml[512], *path;
    int created;

    snprintf(xml, sizeof(xml),
             "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n"
             "  <Row>\n    <__id>%lldBASE11</__id>\n    <Name>%s</Name>\n"
             "  </Row>\n</Clients>\n",
             (long long)cid, name);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_client(s, key, cid, info, &created), STORE_OK);
    assert_int_equal(store_set_xml(s, key, cid, xml, strlen(xml)), STORE_OK);
    assert_int_equal(store_commit(s), 0);
    json_decref(info);
    path = pxml_outbox_path(xml_dir, key, cid);
    assert_int_equal(pxml_write_file(path, xml, strlen(xml), 0), 0);
    free(path);
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

static void
test_wrong_password_and_server_down(void **state)
{
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct combine_stats st;
    char *remote;

    put(s, f->cfg.cc_xml_dir, "Alarm24", 1, "one");
    put(s, f->cfg.cc_xml_dir, "Alarm24", 2, "two");

    /* wrong password: clear error, nothing marked, files back */
    write_text(f->cfg.cc_smb_password_file, "WRONG\n", 0600);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    assert_non_null(strstr(st.cs_error, "wrong password"));
    assert_null(strstr(st.cs_error, "WRONG"));
    assert_string_equal(state_of(s, 1), "pending");
    assert_true(outbox_exists(f, 1));
    assert_true(outbox_exists(f, 2));

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

    /* server stopped: fails, files back */
    srv_stop(&f->srv);
    assert_int_equal(run_once(f, 0, &st), COMBINE_FAILED);
    assert_non_null(strstr(st.cs_error, "refused"));
    assert_string_equal(state_of(s, 2), "pending");
    assert_true(outbox_exists(f, 1));
    assert_true(outbox_exists(f, 2));

    /* back up: the next run ships them */
    srv_start(&f->srv);
    fx_server(f);
    assert_int_equal(run_once(f, 0, &st), COMBINE_OK);
    assert_string_equal(state_of(s, 1), "shipped");
    assert_string_equal(state_of(s, 2), "shipped");
    remote = share_file(f, "clients.xml");
    assert_int_equal(count(remote, "<Row>"), 2);
    free(remote);
    assert_false(outbox_exists(f, 1));
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
    };

    xmlInitParser();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
