/*
 * test_outbox.c - unit tests of outbox.c: the reconcile pass and the outbox
 * thread, on a real SQLite file and real XML files in a mkdtemp directory.
 * Changes are made the way the API makes them, through writer_apply_now()
 * on a writer connection, so every committed change carries its rendered
 * XML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "keys.h"
#include "model.h"
#include "outbox.h"
#include "patriot_xml.h"
#include "store.h"
#include "writer.h"


static char tmpdir[] = "/tmp/test_outbox.XXXXXX";
static int nfx;

static const char keys_json[] =
    "[{\"key_name\":\"Alarm24\",\"key\":\"secret-1\",\"port\":\"BASE11\","
    "\"installer_name\":\"Inst\",\"installer_email\":\"i@example.no\","
    "\"xml_fields\":{\"AltLookup\":\"True\"},"
    "\"client_groupings\":[{\"Description\":\"Alarm24\","
    "\"GroupingTypeDescription\":\"T\",\"GroupingAllowMultiple\":\"True\"}]},"
    "{\"key_name\":\"Other\",\"key\":\"secret-2\",\"port\":\"PX\","
    "\"installer_name\":\"I2\",\"installer_email\":\"e@x\"}]";
static struct keyset *ks;

struct fx {
    char db[256];
    char xml_dir[256];
    struct store *w;            /* writer connection */
    const struct key *k;        /* Alarm24 */
    const struct key *k2;       /* Other */
};

static int
group_setup(void **state)
{
    char err[256];

    (void)state;
    umask(022);
    xmlInitParser();
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    ks = keys_load_buffer(keys_json, sizeof keys_json - 1, err, sizeof err);
    if (ks == NULL) {
        fprintf(stderr, "keys: %s\n", err);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    keys_release(ks);
    xmlCleanupParser();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/db%d.sqlite", tmpdir, nfx);
    snprintf(f->xml_dir, sizeof f->xml_dir, "%s/out%d", tmpdir, nfx);
    nfx++;
    if ((f->w = store_open(f->db, 0, err, sizeof err)) == NULL) {
        fprintf(stderr, "store_open: %s\n", err);
        free(f);
        return -1;
    }
    f->k = keys_get_by_name(ks, "Alarm24");
    f->k2 = keys_get_by_name(ks, "Other");
    *state = f;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->w);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static json_t *
valid(const struct mtable *t, const char *text, unsigned flags)
{
    json_error_t e;
    json_t *in = json_loads(text, 0, &e), *errs = json_array(), *out;

    if (in == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    out = model_validate(t, in, flags, NULL, errs, NULL);
    if (out == NULL)
        fail_msg("invalid test value %s", text);
    json_decref(in);
    json_decref(errs);
    return out;
}

/* One change through the writer's synchronous path. */
static int
do_job(struct fx *f, const struct key *k, enum store_op op, int64_t cid,
      const struct mtable *t, const char *json, int64_t num)
{
    struct writer_job j;
    int rc;

    memset(&j, 0, sizeof j);
    j.wj_op = op;
    j.wj_key = k;
    j.wj_cid = cid;
    j.wj_num = num;
    j.wj_data = json ? valid(t, json, op == STORE_OP_CLIENT_PATCH ? MV_PARTIAL
                                                             : 0) : NULL;
    rc = writer_apply_now(f->w, &j);
    assert_int_equal(j.wj_rc, rc);
    json_decref(j.wj_data);
    return rc;
}

static void
put_client(struct fx *f, const struct key *k, int64_t cid, const char *info)
{
    assert_int_equal(do_job(f, k, STORE_OP_CLIENT_PUT, cid, &model_info, info, 0),
                     STORE_OK);
}

static char *
path_of(struct fx *f, const struct key *k, int64_t cid)
{
    char *p = pxml_outbox_path(f->xml_dir, k->k_name, cid);

    assert_non_null(p);
    return p;
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void
spit(const char *path, const char *buf)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    fputs(buf, fp);
    assert_int_equal(fclose(fp), 0);
}

/* The file of (k, cid) holds exactly the XML the database has for it;
 * returns the version. */
static int64_t
assert_file_matches_db(struct fx *f, const struct key *k, int64_t cid)
{
    char *path = path_of(f, k, cid), *xml = NULL, *got;
    size_t len = 0, glen;
    int64_t version = 0;
    xmlDocPtr doc;

    assert_int_equal(store_get_xml(f->w, k->k_name, cid, &xml, &len,
                                   &version), STORE_OK);
    got = slurp(path, &glen);
    assert_int_equal(glen, len);
    assert_memory_equal(got, xml, len);
    doc = xmlReadMemory(got, (int)glen, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(got);
    free(xml);
    free(path);
    return version;
}

/* The file holds the given text in its first <Name>. */
static void
assert_file_has(struct fx *f, const struct key *k, int64_t cid,
                const char *needle)
{
    char *path = path_of(f, k, cid), *got;
    size_t glen;

    got = slurp(path, &glen);
    if (strstr(got, needle) == NULL)
        fail_msg("%s lacks %s:\n%s", path, needle, got);
    free(got);
    free(path);
}

static int
exists(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0;
}

static int
count_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    *temps = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n++;
        if (strstr(de->d_name, ".tmp.") != NULL)
            (*temps)++;
    }
    closedir(d);
    return n;
}

static void
raw_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

/* Set a file's mtime to a fixed time in the past. */
static void
age(const char *path)
{
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};

    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static struct outbox *
start(struct fx *f)
{
    char err[256] = "";
    struct outbox *ob = outbox_start(f->xml_dir, f->db, err, sizeof err);

    if (ob == NULL)
        fail_msg("outbox_start: %s", err);
    return ob;
}

/* ---- writer_apply_now sanity ----------------------------------------- */

static void
test_writer_renders(void **state)
{
    struct fx *f = *state;
    char *xml = NULL;
    size_t len = 0;
    int64_t version = 0;

    put_client(f, f->k, 9998, "{\"Name\":\"Ola\"}");
    assert_int_equal(store_get_xml(f->w, "Alarm24", 9998, &xml, &len,
                                   &version), STORE_OK);
    assert_int_equal(version, 1);
    assert_non_null(strstr(xml, "<__id>9998BASE11</__id>"));
    assert_non_null(strstr(xml, "<Name>Ola</Name>"));
    free(xml);
    /* A refused change (no such zone) changes nothing. */
    assert_int_equal(do_job(f, f->k, STORE_OP_ZONE_DELETE, 9998, NULL, NULL, 5),
                     STORE_NOITEM);
    assert_int_equal(store_get_xml(f->w, "Alarm24", 9998, &xml, &len,
                                   &version), STORE_OK);
    assert_int_equal(version, 1);
    free(xml);
    assert_int_equal(do_job(f, f->k, STORE_OP_ZONE_PUT, 9998, &model_zone,
                           "{\"Zone_No\":2}", 0), STORE_OK);
    assert_int_equal(store_get_xml(f->w, "Alarm24", 9998, &xml, &len,
                                   &version), STORE_OK);
    assert_int_equal(version, 2);
    assert_non_null(strstr(xml, "<Zone_No>2</Zone_No>"));
    free(xml);
    /* No file is written by the writer itself. */
    {
        char *p = path_of(f, f->k, 9998);

        assert_false(exists(p));
        free(p);
    }
}

/* ---- reconcile -------------------------------------------------------- */

static void
test_reconcile(void **state)
{
    struct fx *f = *state;
    char *p_missing, *p_stale, *p_equal, *p_shipped, *got, dir[PATH_MAX];
    struct stat before, after;
    size_t checked = 99, rewritten = 99, len;
    int temps;

    put_client(f, f->k, 1, "{\"Name\":\"missing\"}");
    put_client(f, f->k, 2, "{\"Name\":\"stale\"}");
    put_client(f, f->k2, 3, "{\"Name\":\"equal\"}");
    put_client(f, f->k, 4, "{\"Name\":\"shipped\"}");
    raw_exec(f->db, "INSERT INTO import_state(cid, version, state, at)"
                    " SELECT id, version, 'shipped', 1 FROM clients"
                    " WHERE client_id = 4");

    /* Nothing on disk yet: every pending file is written. */
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, &checked,
                                      &rewritten), 0);
    assert_int_equal(checked, 3);
    assert_int_equal(rewritten, 3);
    assert_file_matches_db(f, f->k, 1);
    assert_file_matches_db(f, f->k, 2);
    assert_file_matches_db(f, f->k2, 3);
    p_shipped = path_of(f, f->k, 4);
    assert_false(exists(p_shipped));            /* not pending: left */

    /* Now: 1 missing, 2 stale (same size, other content), 3 equal. */
    p_missing = path_of(f, f->k, 1);
    p_stale = path_of(f, f->k, 2);
    p_equal = path_of(f, f->k2, 3);
    assert_int_equal(unlink(p_missing), 0);
    got = slurp(p_stale, &len);
    got[len / 2] = got[len / 2] == 'x' ? 'y' : 'x';
    spit(p_stale, got);
    free(got);
    age(p_equal);
    assert_int_equal(stat(p_equal, &before), 0);

    checked = rewritten = 99;
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, &checked,
                                      &rewritten), 0);
    assert_int_equal(checked, 3);
    assert_int_equal(rewritten, 2);
    assert_file_matches_db(f, f->k, 1);
    assert_file_matches_db(f, f->k, 2);
    assert_file_matches_db(f, f->k2, 3);
    assert_int_equal(stat(p_equal, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_sec, 1000000000);
    assert_false(exists(p_shipped));

    /* A file holding a longer, older document is stale too. */
    spit(p_missing, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<old/>\n"
                    "................................................"
                    "................................................"
                    "................................................"
                    "................................................"
                    "................................................"
                    "................................................"
                    "................................................"
                    "................................................");
    checked = rewritten = 99;
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, &checked,
                                      &rewritten), 0);
    assert_int_equal(checked, 3);
    assert_int_equal(rewritten, 1);
    assert_file_matches_db(f, f->k, 1);

    /* Everything equal: nothing written. NULL counters are allowed. */
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, NULL, NULL), 0);
    checked = rewritten = 99;
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, &checked,
                                      &rewritten), 0);
    assert_int_equal(checked, 3);
    assert_int_equal(rewritten, 0);

    snprintf(dir, sizeof dir, "%s/Alarm24", f->xml_dir);
    assert_int_equal(count_entries(dir, &temps), 2);
    assert_int_equal(temps, 0);

    free(p_missing);
    free(p_stale);
    free(p_equal);
    free(p_shipped);
}

static void
test_reconcile_failure(void **state)
{
    struct fx *f = *state;
    char keydir[PATH_MAX];
    size_t checked = 0, rewritten = 0;
    int temps;

    put_client(f, f->k, 1, "{\"Name\":\"a\"}");
    put_client(f, f->k2, 2, "{\"Name\":\"b\"}");
    /* The folder of key Alarm24 is a regular file: its write fails. */
    assert_int_equal(mkdir(f->xml_dir, 0755), 0);
    snprintf(keydir, sizeof keydir, "%s/Alarm24", f->xml_dir);
    spit(keydir, "not a directory");

    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, &checked,
                                      &rewritten), -1);
    assert_int_equal(checked, 2);
    assert_int_equal(rewritten, 1);         /* the other key's file */
    assert_file_matches_db(f, f->k2, 2);
    assert_int_equal(count_entries(f->xml_dir, &temps), 2);
    assert_int_equal(temps, 0);
}

/* Reconcile with the outbox: versions it verified or wrote are recorded,
 * so a later outbox_check does not write them again; a file removed later
 * is still noticed. */
static void
test_reconcile_records_versions(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    char *p1 = path_of(f, f->k, 1), *p2 = path_of(f, f->k, 2);
    struct stat b1, b2, a1, a2;
    size_t checked = 0, rewritten = 0;

    put_client(f, f->k, 1, "{\"Name\":\"one\"}");
    put_client(f, f->k, 2, "{\"Name\":\"two\"}");
    assert_int_equal(do_job(f, f->k, STORE_OP_ZONE_PUT, 2, &model_zone,
                            "{\"Zone_No\":1}", 0), STORE_OK);
    /* 1 already on disk and equal, 2 missing. */
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, NULL, NULL, NULL),
                     0);
    assert_int_equal(unlink(p2), 0);
    assert_int_equal(outbox_reconcile(f->w, f->xml_dir, ob, &checked,
                                      &rewritten), 0);
    assert_int_equal(checked, 2);
    assert_int_equal(rewritten, 1);
    age(p1);
    age(p2);
    assert_int_equal(stat(p1, &b1), 0);
    assert_int_equal(stat(p2, &b2), 0);

    outbox_check(ob, "Alarm24", 1, 1);
    outbox_check(ob, "Alarm24", 2, 2);
    assert_int_equal(outbox_queued(ob), 0);
    outbox_flush(ob);
    assert_int_equal(stat(p1, &a1), 0);
    assert_int_equal(stat(p2, &a2), 0);
    assert_int_equal(a1.st_ino, b1.st_ino);
    assert_int_equal(a2.st_ino, b2.st_ino);
    assert_int_equal(a1.st_mtim.tv_sec, 1000000000);
    assert_int_equal(a2.st_mtim.tv_sec, 1000000000);

    /* A newer version than recorded, or a vanished file: rewritten (a
     * vanished file once its last sighting is a second old). */
    assert_int_equal(unlink(p1), 0);
    usleep(1100 * 1000);
    outbox_check(ob, "Alarm24", 1, 1);
    outbox_check(ob, "Alarm24", 2, 3);
    outbox_flush(ob);
    assert_int_equal(assert_file_matches_db(f, f->k, 1), 1);
    assert_int_equal(stat(p2, &a2), 0);
    assert_true(a2.st_ino != b2.st_ino);
    assert_int_equal(assert_file_matches_db(f, f->k, 2), 2);

    outbox_stop(ob);
    free(p1);
    free(p2);
}

/* ---- the outbox thread ------------------------------------------------ */

static void
test_start_fails(void **state)
{
    struct fx *f = *state;
    char err[256] = "", db[PATH_MAX];

    snprintf(db, sizeof db, "%s/no-such.sqlite", tmpdir);
    assert_null(outbox_start(f->xml_dir, db, err, sizeof err));
    assert_true(err[0] != '\0');
    outbox_stop(NULL);
}

static void
test_mark_writes_and_removes(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    char *p = path_of(f, f->k, 9998), *p2 = path_of(f, f->k2, 9998);
    int temps;

    put_client(f, f->k, 9998, "{\"Name\":\"first\"}");
    assert_false(exists(p));                /* not until marked */
    assert_int_equal(outbox_mark(ob, "Alarm24", 9998), 0);
    outbox_flush(ob);
    assert_int_equal(outbox_queued(ob), 0);
    assert_int_equal(assert_file_matches_db(f, f->k, 9998), 1);
    assert_file_has(f, f->k, 9998, "<Name>first</Name>");

    /* A change, marked: the file follows. */
    assert_int_equal(do_job(f, f->k, STORE_OP_USER_INSERT, 9998, &model_user,
                           "{\"User_Name\":\"Kari\",\"UserNo\":4}", 0),
                     STORE_OK);
    assert_int_equal(outbox_mark(ob, "Alarm24", 9998), 0);
    outbox_flush(ob);
    assert_int_equal(assert_file_matches_db(f, f->k, 9998), 2);
    assert_file_has(f, f->k, 9998, "<User_Name>Kari</User_Name>");

    /* The same id under another key is another file. */
    put_client(f, f->k2, 9998, "{\"Name\":\"other\"}");
    assert_int_equal(outbox_mark(ob, "Other", 9998), 0);
    outbox_flush(ob);
    assert_file_has(f, f->k2, 9998, "<__id>9998PX</__id>");
    assert_file_has(f, f->k, 9998, "<Name>first</Name>");

    /* Deleted, marked: the file goes; the other key's stays. */
    assert_int_equal(do_job(f, f->k, STORE_OP_CLIENT_DELETE, 9998, NULL, NULL, 0),
                     STORE_OK);
    assert_true(exists(p));
    assert_int_equal(outbox_mark(ob, "Alarm24", 9998), 0);
    outbox_flush(ob);
    assert_false(exists(p));
    assert_true(exists(p2));
    /* Marking a client that is already gone is harmless. */
    assert_int_equal(outbox_mark(ob, "Alarm24", 9998), 0);
    assert_int_equal(outbox_mark(ob, "Alarm24", 12345), 0);
    outbox_flush(ob);
    assert_false(exists(p));

    outbox_stop(ob);
    {
        char dir[PATH_MAX];

        snprintf(dir, sizeof dir, "%s/Alarm24", f->xml_dir);
        assert_int_equal(count_entries(dir, &temps), 0);
        assert_int_equal(temps, 0);
    }
    free(p);
    free(p2);
}

static void
test_marks_coalesce(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    char name[64], needle[96], dir[PATH_MAX];
    int i, temps;

    put_client(f, f->k, 77, "{\"Name\":\"v0\"}");
    for (i = 1; i <= 50; i++) {
        snprintf(name, sizeof name, "{\"Name\":\"v%d\"}", i);
        assert_int_equal(do_job(f, f->k, STORE_OP_CLIENT_PATCH, 77, &model_info,
                               name, 0), STORE_OK);
        assert_int_equal(outbox_mark(ob, "Alarm24", 77), 0);
        assert_int_equal(outbox_mark(ob, "Alarm24", 77), 0);
        /* One client is queued once at most. */
        assert_true(outbox_queued(ob) <= 1);
    }
    outbox_flush(ob);
    assert_int_equal(outbox_queued(ob), 0);
    assert_int_equal(assert_file_matches_db(f, f->k, 77), 51);
    snprintf(needle, sizeof needle, "<Name>v50</Name>");
    assert_file_has(f, f->k, 77, needle);
    snprintf(dir, sizeof dir, "%s/Alarm24", f->xml_dir);
    assert_int_equal(count_entries(dir, &temps), 1);
    assert_int_equal(temps, 0);
    outbox_stop(ob);
}

/* outbox_stop drains the queue before it returns. */
static void
test_stop_drains(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    int64_t cid;
    char *p;

    for (cid = 1; cid <= 20; cid++)
        put_client(f, f->k, cid, "{\"Name\":\"d\"}");
    for (cid = 1; cid <= 20; cid++)
        assert_int_equal(outbox_mark(ob, "Alarm24", cid), 0);
    outbox_stop(ob);
    for (cid = 1; cid <= 20; cid++) {
        p = path_of(f, f->k, cid);
        assert_true(exists(p));
        free(p);
        assert_file_matches_db(f, f->k, cid);
    }
}

/* More clients than the first hash table holds. */
static void
test_many_clients(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    int64_t cid;
    char *p;

    put_client(f, f->k, 1500, "{\"Name\":\"last\"}");
    for (cid = 1; cid <= 1500; cid++)
        assert_int_equal(outbox_mark(ob, "Alarm24", cid), 0);
    /* Again, after the table grew: each is found, not added twice. */
    for (cid = 1; cid <= 1500; cid++)
        assert_int_equal(outbox_mark(ob, "Alarm24", cid), 0);
    assert_true(outbox_queued(ob) <= 1500);
    outbox_flush(ob);
    assert_file_matches_db(f, f->k, 1500);
    p = path_of(f, f->k, 1499);
    assert_false(exists(p));
    free(p);
    outbox_stop(ob);
}

static void
test_check_requeues(void **state)
{
    struct fx *f = *state;
    struct outbox *ob = start(f);
    char *p = path_of(f, f->k, 5);
    struct stat before, after;
    int64_t v;

    put_client(f, f->k, 5, "{\"Name\":\"checked\"}");
    /* Never written by this process: a check queues it. */
    outbox_check(ob, "Alarm24", 5, 1);
    outbox_flush(ob);
    v = assert_file_matches_db(f, f->k, 5);
    assert_int_equal(v, 1);

    /* Written at this version and still there: left alone. */
    age(p);
    assert_int_equal(stat(p, &before), 0);
    outbox_check(ob, "Alarm24", 5, 1);
    assert_int_equal(outbox_queued(ob), 0);
    outbox_flush(ob);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, 1000000000);

    /* Deleted by hand: a check within a second of the one that saw the
     * file trusts it (no stat(2) on every GET); the first check after
     * that re-queues it. */
    assert_int_equal(unlink(p), 0);
    outbox_check(ob, "Alarm24", 5, 1);
    assert_int_equal(outbox_queued(ob), 0);
    outbox_flush(ob);
    assert_false(exists(p));
    usleep(1100 * 1000);
    outbox_check(ob, "Alarm24", 5, 1);
    outbox_flush(ob);
    assert_true(exists(p));
    assert_int_equal(assert_file_matches_db(f, f->k, 5), 1);

    /* A version this process has not written (changed by another writer
     * without a mark): re-queued. */
    assert_int_equal(do_job(f, f->k, STORE_OP_ZONE_PUT, 5, &model_zone,
                           "{\"Zone_No\":8}", 0), STORE_OK);
    outbox_check(ob, "Alarm24", 5, 2);
    outbox_flush(ob);
    assert_int_equal(assert_file_matches_db(f, f->k, 5), 2);
    assert_file_has(f, f->k, 5, "<Zone_No>8</Zone_No>");

    outbox_stop(ob);
    free(p);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_writer_renders),
        FX(test_reconcile),
        FX(test_reconcile_failure),
        FX(test_reconcile_records_versions),
        FX(test_start_fails),
        FX(test_mark_writes_and_removes),
        FX(test_marks_coalesce),
        FX(test_stop_drains),
        FX(test_many_clients),
        FX(test_check_requeues),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
