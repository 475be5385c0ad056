/*
 * test_store.c - unit tests of store.c on real SQLite files in a mkdtemp
 * directory: schema creation, client / zone / user writes, the JSON the
 * reads produce (byte for byte), per-key isolation, versions and states,
 * savepoints, cascading deletes (checked through a second, plain sqlite3
 * connection), persistence, the import listing, the outbox XML and the
 * pending walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "store.h"

static char tmpdir[] = "/tmp/test_store.XXXXXX";
static int ndb;

/* Per test: a fresh database file and a writer connection on it. */
struct fx {
    char path[PATH_MAX];
    struct store *s;
};

static int
group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
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
    snprintf(f->path, sizeof f->path, "%s/db%d.sqlite", tmpdir, ndb++);
    f->s = store_open(f->path, 0, err, sizeof err);
    if (f->s == NULL) {
        fprintf(stderr, "store_open: %s\n", err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
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

/* One change in its own transaction; returns the store rc. */
enum op { PUT, PATCH, DEL, ZPUT, ZDEL, UINS, UREP, UDEL };

static int
change(struct store *s, enum op op, const char *key, int64_t cid,
       const char *json, int64_t num, int *created)
{
    json_t *v = NULL;
    int rc, dummy;

    if (json != NULL) {
        const struct mtable *t = op == PUT ? &model_info
                                 : op == PATCH ? &model_info
                                 : op == ZPUT ? &model_zone : &model_user;
        v = valid(t, json, op == PATCH ? MV_PARTIAL : 0);
    }
    assert_int_equal(store_begin(s), 0);
    switch (op) {
    case PUT:
        rc = store_put_client(s, key, cid, v, created ? created : &dummy);
        break;
    case PATCH:
        rc = store_patch_client(s, key, cid, v);
        break;
    case DEL:
        rc = store_delete_client(s, key, cid);
        break;
    case ZPUT:
        rc = store_put_zone(s, key, cid, v);
        break;
    case ZDEL:
        rc = store_delete_zone(s, key, cid, num);
        break;
    case UINS:
        rc = store_insert_user(s, key, cid, v);
        break;
    case UREP:
        rc = store_replace_user(s, key, cid, v);
        break;
    case UDEL:
    default:
        rc = store_delete_user(s, key, cid, num);
        break;
    }
    assert_int_equal(store_commit(s), 0);
    json_decref(v);
    return rc;
}

static void
put(struct store *s, const char *key, int64_t cid, const char *info)
{
    assert_int_equal(change(s, PUT, key, cid, info, 0, NULL), STORE_OK);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of unix ms, computed independently. */
static void
fmt_ms(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char sec[32];

    gmtime_r(&t, &tm);
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", sec, (int)(ms % 1000));
}

static int64_t
version_of(struct store *s, const char *key, int64_t cid)
{
    struct sbuf b = {0};
    struct store_meta m;

    assert_int_equal(store_read_client(s, key, cid, &b, &m), STORE_OK);
    sbuf_free(&b);
    return m.sm_version;
}

static void
assert_read_client(struct store *s, const char *key, int64_t cid,
                   const char *body_without_import, const char *state,
                   const char *batch_json)
{
    struct sbuf b = {0};
    struct store_meta m;
    char when[64], *want;

    memset(&m, 0xff, sizeof m);
    assert_int_equal(store_read_client(s, key, cid, &b, &m), STORE_OK);
    fmt_ms(m.sm_state_at ? m.sm_state_at : m.sm_changed_at, when,
           sizeof when);
    assert_true(asprintf(&want, "%.*s,\"import\":{\"state\":\"%s\","
                         "\"batch\":%s,\"updated\":\"%s\"}}",
                         (int)strlen(body_without_import) - 1,
                         body_without_import, state, batch_json, when) > 0);
    assert_non_null(b.sb_buf);
    assert_int_equal(b.sb_len, strlen(b.sb_buf));
    assert_string_equal(b.sb_buf, want);
    assert_string_equal(m.sm_state, state);
    free(want);
    sbuf_free(&b);
}

static void
assert_read(int (*fn)(struct store *, const char *, int64_t, struct sbuf *),
            struct store *s, const char *key, int64_t cid, const char *want)
{
    struct sbuf b = {0};

    assert_int_equal(fn(s, key, cid, &b), STORE_OK);
    assert_non_null(b.sb_buf);
    assert_string_equal(b.sb_buf, want);
    sbuf_free(&b);
}

/* A second, plain sqlite3 connection: one integer from sql. */
static int64_t
raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static char *
raw_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *v;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = strdup(sqlite3_column_text(st, 0) ?
               (const char *)sqlite3_column_text(st, 0) : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* SQL: the import state of the clients a WHERE clause that follows
 * names, for their current version (store.c: import_state). */
#define SET_STATE(state, batch, at) \
    "INSERT OR REPLACE INTO import_state(cid, version, state, batch, at)" \
    " SELECT id, version, " state ", " batch ", " at " FROM clients"

/* ---- tests ------------------------------------------------------------ */

static void
test_open_schema(void **state)
{
    struct fx *f = *state;
    char err[256] = "", path[PATH_MAX], *mode;
    struct store *s2;
    struct stat sb;

    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master "
                             "WHERE type = 'table' AND name IN ('meta',"
                             "'clients','outbox','import_state')"), 4);
    mode = raw_text(f->path, "SELECT v FROM meta WHERE k = 'schema_version'");
    assert_string_equal(mode, "2");
    free(mode);
    mode = raw_text(f->path, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 0);

    /* A second open of the same file (schema exists) works. */
    s2 = store_open(f->path, 0, err, sizeof err);
    assert_non_null(s2);
    store_close(s2);
    s2 = store_open(f->path, STORE_READONLY, err, sizeof err);
    assert_non_null(s2);
    store_close(s2);
    store_close(NULL);

    /* Read-only open of a missing file, and a file in a missing dir. */
    snprintf(path, sizeof path, "%s/missing.sqlite", tmpdir);
    s2 = store_open(path, STORE_READONLY, err, sizeof err);
    assert_null(s2);
    assert_non_null(strstr(err, path));
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/nodir/x.sqlite", tmpdir);
    err[0] = '\0';
    assert_null(store_open(path, 0, err, sizeof err));
    assert_true(err[0] != '\0');
}

static void
test_client_lifecycle(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_meta m;
    struct sbuf b = {0};
    int64_t t0 = store_now_ms(), t1;
    int created = -1;

    assert_int_equal(change(s, PUT, "A", 9998,
                            "{\"NoSigsMon\":\"5\",\"Name\":\"Ola\"}", 0,
                            &created), STORE_OK);
    assert_int_equal(created, 1);
    t1 = store_now_ms();
    assert_read_client(s, "A", 9998,
                       "{\"client_id\":9998,\"info\":{\"Name\":\"Ola\","
                       "\"NoSigsMon\":5},\"zones\":[],\"users\":[]}",
                       "pending", "null");
    assert_int_equal(store_read_client(s, "A", 9998, &b, &m), STORE_OK);
    sbuf_free(&b);
    assert_int_equal(m.sm_version, 1);
    assert_true(m.sm_rowid > 0);
    assert_true(m.sm_changed_at >= t0 && m.sm_changed_at <= t1);
    assert_string_equal(m.sm_batch, "");

    /* PUT again: an update, info replaced as a whole. */
    created = -1;
    assert_int_equal(change(s, PUT, "A", 9998,
                            "{\"Alias\":\"al\",\"SinceDays\":2}", 0,
                            &created), STORE_OK);
    assert_int_equal(created, 0);
    assert_read_client(s, "A", 9998,
                       "{\"client_id\":9998,\"info\":{\"Alias\":\"al\","
                       "\"SinceDays\":2},\"zones\":[],\"users\":[]}",
                       "pending", "null");
    assert_int_equal(version_of(s, "A", 9998), 2);

    /* PATCH: patch wins, null clears, the rest stays, table order. */
    assert_int_equal(change(s, PATCH, "A", 9998,
                            "{\"SinceDays\":null,\"Name\":\"Kari\","
                            "\"ResetNosigsIgnored\":\"true\"}", 0, NULL),
                     STORE_OK);
    assert_read_client(s, "A", 9998,
                       "{\"client_id\":9998,\"info\":{\"Name\":\"Kari\","
                       "\"Alias\":\"al\",\"ResetNosigsIgnored\":true},"
                       "\"zones\":[],\"users\":[]}",
                       "pending", "null");
    assert_int_equal(version_of(s, "A", 9998), 3);

    /* Unknown clients. */
    assert_int_equal(change(s, PATCH, "A", 1, "{\"Name\":\"x\"}", 0, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(change(s, DEL, "A", 1, NULL, 0, NULL), STORE_NOTFOUND);
    assert_int_equal(store_read_client(s, "A", 1, &b, NULL), STORE_NOTFOUND);
    assert_null(b.sb_buf);

    /* Delete. */
    assert_int_equal(change(s, DEL, "A", 9998, NULL, 0, NULL), STORE_OK);
    assert_int_equal(store_read_client(s, "A", 9998, &b, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(change(s, DEL, "A", 9998, NULL, 0, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 0);

    /* Created again after the delete: a new client, whose versions go on
     * from the deleted one's (see test_version_survives_delete). */
    created = 0;
    assert_int_equal(change(s, PUT, "A", 9998, "{}", 0, &created), STORE_OK);
    assert_int_equal(created, 1);
    assert_int_equal(version_of(s, "A", 9998), 4);
}

static void
test_zones(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *info, *zones, *users;

    put(f->s, "A", 1, "{\"Name\":\"n\"}");
    assert_int_equal(change(s, ZPUT, "A", 1,
                            "{\"Zone_No\":3,\"Zone_area\":\"Loft\"}", 0, NULL),
                     STORE_OK);
    assert_int_equal(change(s, ZPUT, "A", 1,
                            "{\"ModuleNo\":2,\"Zone_No\":1}", 0, NULL),
                     STORE_OK);
    assert_int_equal(change(s, ZPUT, "A", 1,
                            "{\"Zone_No\":20,\"Zone_area\":\"Hall\"}", 0, NULL),
                     STORE_OK);
    assert_int_equal(change(s, ZPUT, "A", 1,
                            "{\"Zone_No\":2,\"Zone_area\":\"Kj\\u00f8kken\"}",
                            0, NULL), STORE_OK);
    /* Sorted by number (20 after 3: numeric, not text order). */
    assert_read(store_read_zones, s, "A", 1,
                "{\"client_id\":1,\"zones\":["
                "{\"Zone_No\":1,\"ModuleNo\":2},"
                "{\"Zone_No\":2,\"Zone_area\":\"Kj\xc3\xb8kken\"},"
                "{\"Zone_No\":3,\"Zone_area\":\"Loft\"},"
                "{\"Zone_No\":20,\"Zone_area\":\"Hall\"}]}");
    assert_int_equal(version_of(s, "A", 1), 5);

    /* Upsert: zone 3 replaced, not added. */
    assert_int_equal(change(s, ZPUT, "A", 1,
                            "{\"Zone_No\":3,\"ModuleNo\":7}", 0, NULL),
                     STORE_OK);
    assert_int_equal(version_of(s, "A", 1), 6);
    assert_read(store_read_zones, s, "A", 1,
                "{\"client_id\":1,\"zones\":["
                "{\"Zone_No\":1,\"ModuleNo\":2},"
                "{\"Zone_No\":2,\"Zone_area\":\"Kj\xc3\xb8kken\"},"
                "{\"Zone_No\":3,\"ModuleNo\":7},"
                "{\"Zone_No\":20,\"Zone_area\":\"Hall\"}]}");

    /* Delete, then delete again: NOITEM, version unchanged. */
    assert_int_equal(change(s, ZDEL, "A", 1, NULL, 2, NULL), STORE_OK);
    assert_int_equal(version_of(s, "A", 1), 7);
    assert_int_equal(change(s, ZDEL, "A", 1, NULL, 2, NULL), STORE_NOITEM);
    assert_int_equal(change(s, ZDEL, "A", 1, NULL, 999, NULL), STORE_NOITEM);
    assert_int_equal(version_of(s, "A", 1), 7);

    /* The whole client shows the zones too, and load gives arrays. */
    assert_read_client(s, "A", 1,
                       "{\"client_id\":1,\"info\":{\"Name\":\"n\"},\"zones\":["
                       "{\"Zone_No\":1,\"ModuleNo\":2},"
                       "{\"Zone_No\":3,\"ModuleNo\":7},"
                       "{\"Zone_No\":20,\"Zone_area\":\"Hall\"}],"
                       "\"users\":[]}", "pending", "null");
    assert_int_equal(store_load_client(s, "A", 1, &info, &zones, &users),
                     STORE_OK);
    assert_int_equal(json_array_size(zones), 3);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(zones, 2), "Zone_No")), 20);
    assert_string_equal(json_string_value(json_object_get(info, "Name")),
                        "n");
    assert_int_equal(json_array_size(users), 0);
    json_decref(info);
    json_decref(zones);
    json_decref(users);

    /* Unknown client. */
    assert_int_equal(change(s, ZPUT, "A", 2, "{\"Zone_No\":1}", 0, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(change(s, ZDEL, "A", 2, NULL, 1, NULL), STORE_NOTFOUND);
    {
        struct sbuf b = {0};

        assert_int_equal(store_read_zones(s, "A", 2, &b), STORE_NOTFOUND);
        assert_int_equal(store_load_client(s, "A", 2, &info, &zones, &users),
                         STORE_NOTFOUND);
        assert_null(info);
        assert_null(zones);
        assert_null(users);
        sbuf_free(&b);
    }
}

static void
test_users(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct sbuf b = {0};

    put(s, "A", 7, "{}");
    assert_int_equal(change(s, UINS, "A", 7,
                            "{\"User_Name\":\"Two\",\"UserNo\":12}", 0, NULL),
                     STORE_OK);
    assert_int_equal(change(s, UINS, "A", 7,
                            "{\"User_Name\":\"One\",\"UserNo\":3,"
                            "\"CallOrder\":1}", 0, NULL), STORE_OK);
    assert_read(store_read_users, s, "A", 7,
                "{\"client_id\":7,\"users\":["
                "{\"User_Name\":\"One\",\"UserNo\":3,\"CallOrder\":1},"
                "{\"User_Name\":\"Two\",\"UserNo\":12}]}");
    assert_int_equal(version_of(s, "A", 7), 3);

    /* Insert of an existing number: EXISTS, nothing changes. */
    assert_int_equal(change(s, UINS, "A", 7,
                            "{\"User_Name\":\"Dup\",\"UserNo\":3}", 0, NULL),
                     STORE_EXISTS);
    assert_int_equal(version_of(s, "A", 7), 3);

    /* Replace. */
    assert_int_equal(change(s, UREP, "A", 7,
                            "{\"User_Name\":\"Uno\",\"UserNo\":3,"
                            "\"Type\":\"U\"}", 0, NULL), STORE_OK);
    assert_int_equal(version_of(s, "A", 7), 4);
    assert_int_equal(change(s, UREP, "A", 7,
                            "{\"User_Name\":\"Nobody\",\"UserNo\":5}", 0,
                            NULL), STORE_NOITEM);
    assert_int_equal(version_of(s, "A", 7), 4);

    assert_int_equal(store_read_user(s, "A", 7, 3, &b), STORE_OK);
    assert_string_equal(b.sb_buf, "{\"client_id\":7,\"user\":{\"User_Name\":"
                                  "\"Uno\",\"Type\":\"U\",\"UserNo\":3}}");
    sbuf_free(&b);
    assert_int_equal(store_read_user_object(s, "A", 7, 12, &b), STORE_OK);
    assert_string_equal(b.sb_buf, "{\"User_Name\":\"Two\",\"UserNo\":12}");
    sbuf_free(&b);
    /* No such user on an existing client: NOITEM (404 "User not found"),
     * as api.c expects. */
    assert_int_equal(store_read_user(s, "A", 7, 5, &b), STORE_NOITEM);
    assert_int_equal(store_read_user_object(s, "A", 7, 5, &b), STORE_NOITEM);
    assert_int_equal(store_read_user(s, "A", 8, 3, &b), STORE_NOTFOUND);
    assert_int_equal(store_read_users(s, "A", 8, &b), STORE_NOTFOUND);
    sbuf_free(&b);

    /* Delete. */
    assert_int_equal(change(s, UDEL, "A", 7, NULL, 12, NULL), STORE_OK);
    assert_int_equal(change(s, UDEL, "A", 7, NULL, 12, NULL), STORE_NOITEM);
    assert_int_equal(version_of(s, "A", 7), 5);
    assert_read(store_read_users, s, "A", 7,
                "{\"client_id\":7,\"users\":[{\"User_Name\":\"Uno\","
                "\"Type\":\"U\",\"UserNo\":3}]}");

    /* Unknown client. */
    assert_int_equal(change(s, UINS, "A", 8,
                            "{\"User_Name\":\"x\",\"UserNo\":1}", 0, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(change(s, UREP, "A", 8,
                            "{\"User_Name\":\"x\",\"UserNo\":1}", 0, NULL),
                     STORE_NOTFOUND);
    assert_int_equal(change(s, UDEL, "A", 8, NULL, 1, NULL), STORE_NOTFOUND);
}

static void
test_key_isolation(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int created = 0;

    assert_int_equal(change(s, PUT, "A", 9998, "{\"Name\":\"of A\"}", 0,
                            &created), STORE_OK);
    assert_int_equal(created, 1);
    /* The same id under another key is another client. */
    assert_int_equal(change(s, PUT, "B", 9998, "{\"Name\":\"of B\"}", 0,
                            &created), STORE_OK);
    assert_int_equal(created, 1);
    assert_int_equal(change(s, ZPUT, "A", 9998, "{\"Zone_No\":1}", 0, NULL),
                     STORE_OK);
    assert_int_equal(change(s, UINS, "B", 9998,
                            "{\"User_Name\":\"u\",\"UserNo\":1}", 0, NULL),
                     STORE_OK);

    assert_read_client(s, "A", 9998,
                       "{\"client_id\":9998,\"info\":{\"Name\":\"of A\"},"
                       "\"zones\":[{\"Zone_No\":1}],\"users\":[]}",
                       "pending", "null");
    assert_read_client(s, "B", 9998,
                       "{\"client_id\":9998,\"info\":{\"Name\":\"of B\"},"
                       "\"zones\":[],\"users\":[{\"User_Name\":\"u\","
                       "\"UserNo\":1}]}", "pending", "null");
    assert_int_equal(version_of(s, "A", 9998), 2);
    assert_int_equal(version_of(s, "B", 9998), 2);

    /* Key names are exact: "a" is not "A". */
    {
        struct sbuf b = {0};

        assert_int_equal(store_read_client(s, "a", 9998, &b, NULL),
                         STORE_NOTFOUND);
        sbuf_free(&b);
    }

    assert_int_equal(change(s, DEL, "A", 9998, NULL, 0, NULL), STORE_OK);
    assert_int_equal(version_of(s, "B", 9998), 2);
    assert_read_client(s, "B", 9998,
                       "{\"client_id\":9998,\"info\":{\"Name\":\"of B\"},"
                       "\"zones\":[],\"users\":[{\"User_Name\":\"u\","
                       "\"UserNo\":1}]}", "pending", "null");
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(zones)), 0)"
                             " FROM clients"), 0);
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(users)), 0)"
                             " FROM clients"), 1);
}

/* Every kind of change bumps the version by one and resets the state to
 * pending. */
static void
test_version_and_state(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    static const struct {
        enum op op;
        const char *json;
        int64_t num;
    } ops[] = {
        {PUT, "{\"Name\":\"a\"}", 0},
        {PATCH, "{\"Alias\":\"b\"}", 0},
        {ZPUT, "{\"Zone_No\":4}", 0},
        {ZPUT, "{\"Zone_No\":4}", 0},       /* same data: still a change */
        {UINS, "{\"User_Name\":\"u\",\"UserNo\":9}", 0},
        {UREP, "{\"User_Name\":\"v\",\"UserNo\":9}", 0},
        {UDEL, NULL, 9},
        {ZDEL, NULL, 4},
    };
    int64_t prev_changed = 0;
    size_t i;

    put(s, "K", 42, "{}");
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct sbuf b = {0};
        struct store_meta m;
        char *st;

        raw_exec(f->path, SET_STATE("'imported'", "'B7'", "1")
                          " WHERE client_id = 42");
        st = raw_text(f->path, "SELECT state FROM import_state");
        assert_string_equal(st, "imported");
        free(st);
        usleep(2000);
        assert_int_equal(change(s, ops[i].op, "K", 42, ops[i].json,
                                ops[i].num, NULL), STORE_OK);
        assert_int_equal(store_read_client(s, "K", 42, &b, &m), STORE_OK);
        sbuf_free(&b);
        assert_int_equal(m.sm_version, (int64_t)i + 2);
        assert_string_equal(m.sm_state, "pending");
        assert_true(m.sm_changed_at > prev_changed);
        assert_true(m.sm_state_at == m.sm_changed_at);
        prev_changed = m.sm_changed_at;
    }

    /* A refused change leaves version and state alone. */
    raw_exec(f->path, SET_STATE("'shipped'", "'B7'", "1"));
    assert_int_equal(change(s, ZDEL, "K", 42, NULL, 4, NULL), STORE_NOITEM);
    assert_int_equal(change(s, UREP, "K", 42,
                            "{\"User_Name\":\"v\",\"UserNo\":9}", 0, NULL),
                     STORE_NOITEM);
    {
        struct sbuf b = {0};
        struct store_meta m;

        assert_int_equal(store_read_client(s, "K", 42, &b, &m), STORE_OK);
        assert_int_equal(m.sm_version, 9);
        assert_string_equal(m.sm_state, "shipped");
        assert_string_equal(m.sm_batch, "B7");
        sbuf_free(&b);
    }
}

static void
test_import_state_in_read(void **state)
{
    struct fx *f = *state;

    put(f->s, "A", 5, "{}");
    raw_exec(f->path, SET_STATE("'imported'", "'20250101T120000Z_1'",
                                "1735732800123"));
    assert_read_client(f->s, "A", 5,
                       "{\"client_id\":5,\"info\":{},\"zones\":[],"
                       "\"users\":[]}", "imported", "\"20250101T120000Z_1\"");
    {
        struct sbuf b = {0};

        assert_int_equal(store_read_client(f->s, "A", 5, &b, NULL),
                         STORE_OK);
        assert_non_null(strstr(b.sb_buf,
                               "\"updated\":\"2025-01-01T12:00:00.123Z\""));
        sbuf_free(&b);
    }
    /* A version the state is not about (a change since): pending, at the
     * time of that change, the last batch still shown. */
    raw_exec(f->path, "UPDATE clients SET version = version + 1,"
                      " changed_at = 86400999");
    {
        struct sbuf b = {0};

        assert_int_equal(store_read_client(f->s, "A", 5, &b, NULL),
                         STORE_OK);
        assert_string_equal(b.sb_buf,
                            "{\"client_id\":5,\"info\":{},\"zones\":[],"
                            "\"users\":[],\"import\":{\"state\":\"pending\","
                            "\"batch\":\"20250101T120000Z_1\","
                            "\"updated\":\"1970-01-02T00:00:00.999Z\"}}");
        sbuf_free(&b);
    }
}

/* One change rolled back to its savepoint, the others commit. */
static void
test_savepoint(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *info1 = valid(&model_info, "{\"Name\":\"one\"}", 0);
    json_t *info2 = valid(&model_info, "{\"Name\":\"two\"}", 0);
    json_t *zone = valid(&model_zone, "{\"Zone_No\":5}", 0);
    struct sbuf b = {0};
    int created;

    assert_int_equal(store_begin(s), 0);
    /* Change 1 */
    assert_int_equal(store_savepoint(s), 0);
    assert_int_equal(store_put_client(s, "A", 1, info1, &created), STORE_OK);
    assert_int_equal(store_savepoint_release(s), 0);
    /* Change 2, undone */
    assert_int_equal(store_savepoint(s), 0);
    assert_int_equal(store_put_client(s, "A", 2, info2, &created), STORE_OK);
    assert_int_equal(store_put_zone(s, "A", 2, zone), STORE_OK);
    assert_int_equal(store_put_zone(s, "A", 1, zone), STORE_OK);
    assert_int_equal(store_savepoint_rollback(s), 0);
    /* Change 3 */
    assert_int_equal(store_savepoint(s), 0);
    assert_int_equal(store_put_client(s, "A", 3, info2, &created), STORE_OK);
    assert_int_equal(store_savepoint_release(s), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_read_client(s, "A", 2, &b, NULL), STORE_NOTFOUND);
    assert_read_client(s, "A", 1,
                       "{\"client_id\":1,\"info\":{\"Name\":\"one\"},"
                       "\"zones\":[],\"users\":[]}", "pending", "null");
    assert_int_equal(version_of(s, "A", 1), 1);
    assert_int_equal(version_of(s, "A", 3), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 2);
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(zones)), 0)"
                             " FROM clients"), 0);

    /* A whole transaction rolled back. */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_client(s, "A", 4, info1, &created), STORE_OK);
    assert_int_equal(store_delete_client(s, "A", 1), STORE_OK);
    assert_int_equal(store_rollback(s), 0);
    assert_int_equal(store_read_client(s, "A", 4, &b, NULL), STORE_NOTFOUND);
    assert_int_equal(version_of(s, "A", 1), 1);
    /* Rollback outside a transaction is harmless. */
    assert_int_equal(store_rollback(s), 0);

    sbuf_free(&b);
    json_decref(info1);
    json_decref(info2);
    json_decref(zone);
}

static void
test_delete_cascades(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;

    put(s, "A", 1, "{\"Name\":\"gone\"}");
    put(s, "A", 2, "{\"Name\":\"stays\"}");
    assert_int_equal(change(s, ZPUT, "A", 1, "{\"Zone_No\":1}", 0, NULL), 0);
    assert_int_equal(change(s, ZPUT, "A", 1, "{\"Zone_No\":2}", 0, NULL), 0);
    assert_int_equal(change(s, ZPUT, "A", 2, "{\"Zone_No\":1}", 0, NULL), 0);
    assert_int_equal(change(s, UINS, "A", 1,
                            "{\"User_Name\":\"a\",\"UserNo\":1}", 0, NULL), 0);
    assert_int_equal(change(s, UINS, "A", 1,
                            "{\"User_Name\":\"b\",\"UserNo\":2}", 0, NULL), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_set_xml(s, "A", 1, "<x/>", 4), STORE_OK);
    assert_int_equal(store_set_xml(s, "A", 2, "<y/>", 4), STORE_OK);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(zones)), 0)"
                             " FROM clients"), 3);
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(users)), 0)"
                             " FROM clients"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 2);

    assert_int_equal(change(s, DEL, "A", 1, NULL, 0, NULL), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 1);
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(zones)), 0)"
                             " FROM clients"), 1);
    assert_int_equal(raw_int(f->path, "SELECT coalesce(sum(json_array_length(users)), 0)"
                             " FROM clients"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(raw_int(f->path, "SELECT json_array_length(zones) FROM "
                             "clients WHERE client_id = 2"), 1);
    /* Nothing left that points nowhere. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox WHERE "
                             "cid NOT IN (SELECT id FROM clients)"), 0);
}

static void
test_persists(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct store *ro;

    put(f->s, "A", 11, "{\"Name\":\"\\u00e6\\u00f8\\u00e5\"}");
    assert_int_equal(change(f->s, ZPUT, "A", 11, "{\"Zone_No\":3}", 0, NULL),
                     0);
    assert_int_equal(change(f->s, UINS, "A", 11,
                            "{\"User_Name\":\"u\",\"UserNo\":4}", 0, NULL), 0);
    store_close(f->s);
    f->s = store_open(f->path, 0, err, sizeof err);
    assert_non_null(f->s);
    assert_read_client(f->s, "A", 11,
                       "{\"client_id\":11,\"info\":{\"Name\":\"\xc3\xa6\xc3\xb8"
                       "\xc3\xa5\"},\"zones\":[{\"Zone_No\":3}],\"users\":"
                       "[{\"User_Name\":\"u\",\"UserNo\":4}]}",
                       "pending", "null");
    assert_int_equal(version_of(f->s, "A", 11), 3);

    /* A read-only connection sees it and cannot write. */
    ro = store_open(f->path, STORE_READONLY, err, sizeof err);
    assert_non_null(ro);
    assert_read_client(ro, "A", 11,
                       "{\"client_id\":11,\"info\":{\"Name\":\"\xc3\xa6\xc3\xb8"
                       "\xc3\xa5\"},\"zones\":[{\"Zone_No\":3}],\"users\":"
                       "[{\"User_Name\":\"u\",\"UserNo\":4}]}",
                       "pending", "null");
    {
        json_t *z = valid(&model_zone, "{\"Zone_No\":9}", 0);
        int rc = store_begin(ro);

        if (rc == 0) {
            assert_int_equal(store_put_zone(ro, "A", 11, z), STORE_ERROR);
            store_rollback(ro);
        } else {
            assert_int_equal(rc, -1);
        }
        json_decref(z);
    }
    store_close(ro);
    assert_int_equal(version_of(f->s, "A", 11), 3);
}

static void
test_read_import(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct sbuf b = {0};

    put(s, "A", 5, "{}");
    put(s, "A", 1, "{}");
    put(s, "A", 3, "{}");
    put(s, "A", 9, "{}");
    put(s, "B", 2, "{}");
    raw_exec(f->path,
             "UPDATE clients SET changed_at = 1700000000000 + client_id;"
             SET_STATE("'imported'", "'b1'", "1700000000000 + client_id")
             " WHERE client_id = 3;"
             SET_STATE("'failed'", "'b2'", "1700000000000 + client_id")
             " WHERE client_id = 9;");

#define ROW(id, st, batch, ms) \
    "{\"client_id\":" #id ",\"state\":\"" st "\",\"batch\":" batch \
    ",\"updated\":\"2023-11-14T22:13:20.00" #ms "Z\"}"
#define ROW_AT(id, st, batch, ms) \
    "{\"client_id\":" #id ",\"state\":\"" st "\",\"batch\":" batch \
    ",\"updated\":\"2023-11-14T22:13:20.0" #ms "Z\"}"

    assert_int_equal(store_read_import(s, "A", NULL, 0, 100, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(1, "pending", "null", 1) ","
                        ROW(3, "imported", "\"b1\"", 3) ","
                        ROW(5, "pending", "null", 5) ","
                        ROW(9, "failed", "\"b2\"", 9) "],"
                        "\"count\":4,\"next_after\":null}");
    sbuf_free(&b);

    assert_int_equal(store_read_import(s, "A", "pending", 0, 100, &b),
                     STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(1, "pending", "null", 1) ","
                        ROW(5, "pending", "null", 5) "],"
                        "\"count\":2,\"next_after\":null}");
    sbuf_free(&b);

    assert_int_equal(store_read_import(s, "A", "imported", 0, 100, &b),
                     STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(3, "imported", "\"b1\"", 3) "],"
                        "\"count\":1,\"next_after\":null}");
    sbuf_free(&b);

    assert_int_equal(store_read_import(s, "A", "shipped", 0, 100, &b),
                     STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[],\"count\":0,\"next_after\":null}");
    sbuf_free(&b);

    /* Paging. */
    assert_int_equal(store_read_import(s, "A", NULL, 0, 2, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(1, "pending", "null", 1) ","
                        ROW(3, "imported", "\"b1\"", 3) "],"
                        "\"count\":2,\"next_after\":3}");
    sbuf_free(&b);
    assert_int_equal(store_read_import(s, "A", NULL, 3, 2, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(5, "pending", "null", 5) ","
                        ROW(9, "failed", "\"b2\"", 9) "],"
                        "\"count\":2,\"next_after\":9}");
    sbuf_free(&b);
    assert_int_equal(store_read_import(s, "A", NULL, 9, 2, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[],\"count\":0,\"next_after\":null}");
    sbuf_free(&b);
    assert_int_equal(store_read_import(s, "A", NULL, 4, 1, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(5, "pending", "null", 5) "],"
                        "\"count\":1,\"next_after\":5}");
    sbuf_free(&b);
    /* Filter and page together. */
    assert_int_equal(store_read_import(s, "A", "pending", 1, 1, &b),
                     STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(5, "pending", "null", 5) "],"
                        "\"count\":1,\"next_after\":5}");
    sbuf_free(&b);

    /* Other key, unknown key. */
    assert_int_equal(store_read_import(s, "B", NULL, 0, 100, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[" ROW(2, "pending", "null", 2) "],"
                        "\"count\":1,\"next_after\":null}");
    sbuf_free(&b);
    assert_int_equal(store_read_import(s, "C", NULL, 0, 100, &b), STORE_OK);
    assert_string_equal(b.sb_buf,
                        "{\"clients\":[],\"count\":0,\"next_after\":null}");
    sbuf_free(&b);
}

/* A database of schema version 1 (the import state in the clients row,
 * before 2026-11-26) opens as version 2 with every client's state, batch
 * and time as they were; a second open changes nothing. */
static void
test_migrate_v1(void **state)
{
    char path[PATH_MAX], err[256] = "", *v;
    struct store *s;
    struct sbuf b = {0};
    sqlite3 *db = NULL;
    int i;

    (void)state;
    snprintf(path, sizeof path, "%s/v1.sqlite", tmpdir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"
        "CREATE TABLE clients(id INTEGER PRIMARY KEY,"
        "  key_name TEXT NOT NULL, client_id INTEGER NOT NULL,"
        "  version INTEGER NOT NULL, changed_at INTEGER NOT NULL,"
        "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
        "    ('pending','shipped','imported','failed')),"
        "  state_batch TEXT, state_at INTEGER, info TEXT NOT NULL,"
        "  zones TEXT NOT NULL DEFAULT '[]',"
        "  users TEXT NOT NULL DEFAULT '[]', UNIQUE(key_name, client_id));"
        "CREATE TABLE tombstones(key_name TEXT NOT NULL,"
        "  client_id INTEGER NOT NULL, version INTEGER NOT NULL,"
        "  PRIMARY KEY(key_name, client_id)) WITHOUT ROWID;"
        "CREATE TABLE outbox(cid INTEGER PRIMARY KEY REFERENCES"
        "  clients(id) ON DELETE CASCADE, version INTEGER NOT NULL,"
        "  xml BLOB NOT NULL);"
        "INSERT INTO meta VALUES('schema_version', '1');"
        "INSERT INTO clients(key_name, client_id, version, changed_at, state,"
        "  state_batch, state_at, info) VALUES"
        "  ('A', 1, 1, 1700000000001, 'pending', NULL, 1700000000001, '{}'),"
        "  ('A', 2, 4, 1700000000002, 'pending', 'b1', 1700000000002, '{}'),"
        "  ('A', 3, 2, 1700000000003, 'shipped', 'b2', 1700000000013, '{}'),"
        "  ('A', 4, 7, 1700000000004, 'imported', 'b2', 1700000000014,"
        "   '{}'),"
        "  ('A', 5, 3, 1700000000005, 'failed', 'b3', NULL, '{}'),"
        "  ('B', 1, 1, 1700000000006, 'imported', 'b4', 1700000000016,"
        "   '{}');"
        "INSERT INTO outbox SELECT id, version, '<x/>' FROM clients;",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* read-only: refused, saying what to do (it cannot migrate) */
    assert_null(store_open(path, STORE_READONLY, err, sizeof err));
    assert_non_null(strstr(err, "schema version 1, this program uses 2"));
    for (i = 0; i < 2; i++) {
        assert_non_null(s = store_open(path, 0, err, sizeof err));
        v = raw_text(path, "SELECT v FROM meta WHERE k = 'schema_version'");
        assert_string_equal(v, "2");
        free(v);
        assert_int_equal(raw_int(path, "SELECT count(*) FROM"
                                 " pragma_table_info('clients')"
                                 " WHERE name LIKE 'state%'"), 0);
        assert_int_equal(store_read_import(s, "A", NULL, 0, 100, &b),
                         STORE_OK);
        assert_string_equal(b.sb_buf, "{\"clients\":["
                            ROW(1, "pending", "null", 1) ","
                            ROW(2, "pending", "\"b1\"", 2) ","
                            ROW_AT(3, "shipped", "\"b2\"", 13) ","
                            ROW_AT(4, "imported", "\"b2\"", 14) ","
                            ROW(5, "failed", "\"b3\"", 5) "],"
                            "\"count\":5,\"next_after\":null}");
        sbuf_free(&b);
        assert_int_equal(store_read_import(s, "B", NULL, 0, 100, &b),
                         STORE_OK);
        assert_string_equal(b.sb_buf, i == 0
                            ? "{\"clients\":["
                              ROW_AT(1, "imported", "\"b4\"", 16) "],"
                              "\"count\":1,\"next_after\":null}"
                            : "{\"clients\":["
                              ROW_AT(1, "pending", "\"b4\"", 16) "],"
                              "\"count\":1,\"next_after\":null}");
        sbuf_free(&b);
        /* A change makes it pending again; the next open keeps that. */
        if (i == 0)
            assert_int_equal(change(s, PATCH, "B", 1, "{\"Name\":\"n\"}",
                                    0, NULL), STORE_OK);
        store_close(s);
        if (i == 0)
            raw_exec(path, "UPDATE clients SET changed_at = 1700000000016"
                           " WHERE key_name = 'B'");
    }
#undef ROW
#undef ROW_AT
}

static void
test_xml(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    static const char doc1[] = "<?xml version=\"1.0\"?>\n<a>\xc3\xa6</a>\n";
    static const char doc2[] = "bin\0ary";      /* a blob: NUL kept */
    char *xml = NULL;
    size_t len = 0;
    int64_t version = 0;

    assert_int_equal(store_get_xml(s, "A", 1, &xml, &len, &version),
                     STORE_NOTFOUND);
    assert_null(xml);
    put(s, "A", 1, "{}");
    /* The client exists but no XML was stored yet. */
    assert_int_equal(store_get_xml(s, "A", 1, &xml, &len, &version),
                     STORE_NOTFOUND);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_set_xml(s, "A", 2, "x", 1), STORE_NOTFOUND);
    assert_int_equal(store_set_xml(s, "A", 1, doc1, sizeof doc1 - 1),
                     STORE_OK);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_get_xml(s, "A", 1, &xml, &len, &version),
                     STORE_OK);
    assert_int_equal(len, sizeof doc1 - 1);
    assert_memory_equal(xml, doc1, len);
    assert_int_equal(xml[len], '\0');
    assert_int_equal(version, 1);
    free(xml);
    assert_int_equal(store_get_xml(s, "B", 1, &xml, &len, &version),
                     STORE_NOTFOUND);

    /* A change and a new XML: the new version and bytes. */
    assert_int_equal(change(s, ZPUT, "A", 1, "{\"Zone_No\":1}", 0, NULL), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_set_xml(s, "A", 1, doc2, sizeof doc2 - 1),
                     STORE_OK);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_get_xml(s, "A", 1, &xml, &len, &version),
                     STORE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(xml, doc2, 7);
    assert_int_equal(version, 2);
    free(xml);
    assert_int_equal(raw_int(f->path, "SELECT version FROM outbox"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox"), 1);
}

struct seen {
    int n;
    int stop_at;
    char keys[8][8];
    int64_t cids[8], versions[8];
    char xml[8][16];
};

static int
collect(void *arg, const char *key, int64_t cid, int64_t version,
        const char *xml, size_t len)
{
    struct seen *sn = arg;

    assert_true(sn->n < 8);
    snprintf(sn->keys[sn->n], sizeof sn->keys[0], "%s", key);
    sn->cids[sn->n] = cid;
    sn->versions[sn->n] = version;
    snprintf(sn->xml[sn->n], sizeof sn->xml[0], "%.*s", (int)len, xml);
    sn->n++;
    return sn->n == sn->stop_at ? 77 : 0;
}

static void
set_xml(struct store *s, const char *key, int64_t cid, const char *xml)
{
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_set_xml(s, key, cid, xml, strlen(xml)), STORE_OK);
    assert_int_equal(store_commit(s), 0);
}

static void
test_foreach_pending(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct seen sn;

    put(s, "A", 1, "{}");
    set_xml(s, "A", 1, "<a1/>");
    usleep(3000);
    put(s, "B", 2, "{}");
    set_xml(s, "B", 2, "<b2/>");
    usleep(3000);
    put(s, "A", 3, "{}");
    set_xml(s, "A", 3, "<a3/>");
    usleep(3000);
    put(s, "A", 4, "{}");                   /* no XML: not listed */
    usleep(3000);
    put(s, "A", 5, "{}");
    set_xml(s, "A", 5, "<a5/>");
    raw_exec(f->path, SET_STATE("'shipped'", "'b'", "1")
                      " WHERE client_id = 5");
    usleep(3000);
    /* Client 1 changes again: now the newest. */
    assert_int_equal(change(s, ZPUT, "A", 1, "{\"Zone_No\":1}", 0, NULL), 0);
    set_xml(s, "A", 1, "<a1v2/>");

    memset(&sn, 0, sizeof sn);
    assert_int_equal(store_foreach_pending(s, collect, &sn), 0);
    assert_int_equal(sn.n, 3);
    assert_string_equal(sn.keys[0], "B");
    assert_int_equal(sn.cids[0], 2);
    assert_int_equal(sn.versions[0], 1);
    assert_string_equal(sn.xml[0], "<b2/>");
    assert_string_equal(sn.keys[1], "A");
    assert_int_equal(sn.cids[1], 3);
    assert_string_equal(sn.xml[1], "<a3/>");
    assert_string_equal(sn.keys[2], "A");
    assert_int_equal(sn.cids[2], 1);
    assert_int_equal(sn.versions[2], 2);
    assert_string_equal(sn.xml[2], "<a1v2/>");

    /* A non-zero return stops the walk and is returned. */
    memset(&sn, 0, sizeof sn);
    sn.stop_at = 2;
    assert_int_equal(store_foreach_pending(s, collect, &sn), 77);
    assert_int_equal(sn.n, 2);
    /* ... and the statement was reset: the next walk starts over. */
    memset(&sn, 0, sizeof sn);
    assert_int_equal(store_foreach_pending(s, collect, &sn), 0);
    assert_int_equal(sn.n, 3);
    assert_int_equal(sn.cids[0], 2);
}

static void
test_sbuf(void **state)
{
    struct sbuf b = {0};
    char big[1000];
    json_t *v;

    (void)state;
    assert_int_equal(sbuf_addstr(&b, "ab"), 0);
    assert_int_equal(sbuf_add(&b, "cdef", 2), 0);
    assert_string_equal(b.sb_buf, "abcd");
    assert_int_equal(b.sb_len, 4);
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sbuf_printf(&b, "<%s>%d", big, 42), 0);
    assert_int_equal(b.sb_len, 4 + 1 + 999 + 1 + 2);
    assert_int_equal(strlen(b.sb_buf), b.sb_len);
    assert_memory_equal(b.sb_buf + b.sb_len - 4, "z>42", 4);
    sbuf_free(&b);
    assert_null(b.sb_buf);
    assert_int_equal(b.sb_len, 0);

    v = json_pack("{s:s,s:i,s:[]}", "a", "\xc3\xa6", "b", 1, "c");
    assert_int_equal(sbuf_add_json(&b, v), 0);
    assert_string_equal(b.sb_buf, "{\"a\":\"\xc3\xa6\",\"b\":1,\"c\":[]}");
    json_decref(v);
    sbuf_free(&b);
    sbuf_free(&b);
}

/* A client deleted and created again goes on counting versions, so that
 * (key, client, version) never names two contents (the combiner marks
 * clients shipped by it). */
static void
test_version_survives_delete(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int created = 0;

    assert_int_equal(change(s, PUT, "A", 9, "{\"Name\":\"a\"}", 0, &created),
                     STORE_OK);
    assert_true(created);
    assert_int_equal(change(s, PATCH, "A", 9, "{\"Name\":\"b\"}", 0, NULL),
                     STORE_OK);
    assert_int_equal(version_of(s, "A", 9), 2);
    assert_int_equal(change(s, DEL, "A", 9, NULL, 0, NULL), STORE_OK);
    assert_int_equal(change(s, PUT, "A", 9, "{\"Name\":\"c\"}", 0, &created),
                     STORE_OK);
    assert_true(created);
    assert_int_equal(version_of(s, "A", 9), 3);
    /* another key's client of the same id starts at 1 */
    assert_int_equal(change(s, PUT, "B", 9, "{\"Name\":\"d\"}", 0, NULL),
                     STORE_OK);
    assert_int_equal(version_of(s, "B", 9), 1);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_open_schema),
        FX(test_client_lifecycle),
        FX(test_zones),
        FX(test_users),
        FX(test_key_isolation),
        FX(test_version_and_state),
        FX(test_import_state_in_read),
        FX(test_savepoint),
        FX(test_delete_cascades),
        FX(test_persists),
        FX(test_read_import),
        FX(test_xml),
        FX(test_foreach_pending),
        FX(test_version_survives_delete),
        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_sbuf),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
