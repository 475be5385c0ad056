/*
 * store.c - the SQLite store of patriot-api: schema, prepared statements,
 * the reads the API answers from and the writes the writer thread applies
 * (see store.h).
 *
 * Values are kept as the canonical JSON that model_validate() produces, so a
 * new Patriot field needs no migration: one row in a field table.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "model.h"

#define SCHEMA_VERSION 1

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS meta("
    "  k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS clients("
    "  id INTEGER PRIMARY KEY,"
    "  key_name TEXT NOT NULL,"
    "  client_id INTEGER NOT NULL,"
    "  info TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  changed_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
    "    ('pending','shipped','imported','failed')),"
    "  state_batch TEXT,"
    "  state_at INTEGER,"
    "  UNIQUE(key_name, client_id));"
    "CREATE INDEX IF NOT EXISTS clients_state"
    "  ON clients(state, changed_at);"
    "CREATE TABLE IF NOT EXISTS zones("
    "  cid INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
    "  zone_no INTEGER NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY(cid, zone_no)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS users("
    "  cid INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
    "  user_no INTEGER NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY(cid, user_no)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outbox("
    "  cid INTEGER PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  xml BLOB NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES('schema_version', '1');";

static const char *stmt_sql[SQL_NSTMT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_READ_BEGIN] = "BEGIN",
    [SQL_SAVEPOINT] = "SAVEPOINT change",
    [SQL_RELEASE] = "RELEASE change",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO change",
    [SQL_CLIENT_GET] =
        "SELECT id, info, version, changed_at, state, state_batch, state_at"
        " FROM clients WHERE key_name = ?1 AND client_id = ?2",
    [SQL_CLIENT_INSERT] =
        "INSERT INTO clients(key_name, client_id, info, version, changed_at,"
        " state, state_at) VALUES(?1, ?2, ?3, 1, ?4, 'pending', ?4)",
    [SQL_CLIENT_UPDATE_INFO] =
        "UPDATE clients SET info = ?2, version = version + 1,"
        " changed_at = ?3, state = 'pending', state_at = ?3 WHERE id = ?1",
    [SQL_CLIENT_TOUCH] =
        "UPDATE clients SET version = version + 1, changed_at = ?2,"
        " state = 'pending', state_at = ?2 WHERE id = ?1",
    [SQL_CLIENT_DELETE] = "DELETE FROM clients WHERE id = ?1",
    [SQL_ZONES_GET] =
        "SELECT data FROM zones WHERE cid = ?1 ORDER BY zone_no",
    [SQL_ZONE_PUT] =
        "INSERT INTO zones(cid, zone_no, data) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(cid, zone_no) DO UPDATE SET data = excluded.data",
    [SQL_ZONE_DELETE] = "DELETE FROM zones WHERE cid = ?1 AND zone_no = ?2",
    [SQL_USERS_GET] =
        "SELECT data FROM users WHERE cid = ?1 ORDER BY user_no",
    [SQL_USER_GET] =
        "SELECT data FROM users WHERE cid = ?1 AND user_no = ?2",
    [SQL_USER_INSERT] =
        "INSERT INTO users(cid, user_no, data) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(cid, user_no) DO NOTHING",
    [SQL_USER_REPLACE] =
        "UPDATE users SET data = ?3 WHERE cid = ?1 AND user_no = ?2",
    [SQL_USER_DELETE] = "DELETE FROM users WHERE cid = ?1 AND user_no = ?2",
    [SQL_USER_EXISTS] =
        "SELECT 1 FROM users WHERE cid = ?1 AND user_no = ?2",
    [SQL_XML_SET] =
        "INSERT INTO outbox(cid, version, xml)"
        " SELECT id, version, ?2 FROM clients WHERE id = ?1"
        " ON CONFLICT(cid) DO UPDATE SET version = excluded.version,"
        " xml = excluded.xml",
    [SQL_XML_GET] =
        "SELECT c.version, o.xml FROM clients c JOIN outbox o ON o.cid = c.id"
        " WHERE c.key_name = ?1 AND c.client_id = ?2",
    [SQL_IMPORT_LIST] =
        "SELECT client_id, state, state_batch, COALESCE(state_at, changed_at)"
        " FROM clients WHERE key_name = ?1 AND client_id > ?2"
        " AND (?3 IS NULL OR state = ?3) ORDER BY client_id LIMIT ?4",
    [SQL_PENDING] =
        "SELECT c.key_name, c.client_id, c.version, o.xml FROM clients c"
        " JOIN outbox o ON o.cid = c.id WHERE c.state = 'pending'"
        " ORDER BY c.changed_at, c.id",
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void
lib_init(void)
{
    /* Before any other sqlite3 call: a process-wide mutex around every
     * allocation otherwise (notes/sqlite.md). Fails harmlessly if SQLite
     * was already initialised. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int64_t
store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- byte buffers ---------------------------------------------------- */

int
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->sb_cap - b->sb_len <= n) {
        size_t cap = b->sb_cap ? b->sb_cap : 256;
        char *p;

        while (cap - b->sb_len <= n) {
            if (__builtin_mul_overflow(cap, 2, &cap))
                return -1;
        }
        if ((p = realloc(b->sb_buf, cap)) == NULL)
            return -1;
        b->sb_buf = p;
        b->sb_cap = cap;
    }
    memcpy(b->sb_buf + b->sb_len, s, n);
    b->sb_len += n;
    b->sb_buf[b->sb_len] = '\0';
    return 0;
}

int
sbuf_addstr(struct sbuf *b, const char *s)
{
    return sbuf_add(b, s, strlen(s));
}

int
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return sbuf_add(b, tmp, (size_t)n);
    {
        char *big = malloc((size_t)n + 1);
        int rc;

        if (big == NULL)
            return -1;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = sbuf_add(b, big, (size_t)n);
        free(big);
        return rc;
    }
}

static int
dump_cb(const char *buf, size_t size, void *data)
{
    return sbuf_add(data, buf, size);
}

int
sbuf_add_json(struct sbuf *b, json_t *v)
{
    if (json_dump_callback(v, dump_cb, b, JSON_COMPACT) < 0)
        return -1;
    return b->sb_buf ? 0 : sbuf_add(b, "", 0);
}

void
sbuf_free(struct sbuf *b)
{
    if (b == NULL)
        return;
    free(b->sb_buf);
    b->sb_buf = NULL;
    b->sb_len = b->sb_cap = 0;
}

/* ---- connection ------------------------------------------------------ */

struct store *
store_open(const char *path, unsigned flags, char *err, size_t errlen)
{
    struct store *s = NULL;
    int oflags, rc;

    pthread_once(&lib_once, lib_init);
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->st_flags = flags;
    oflags = SQLITE_OPEN_NOMUTEX;
    oflags |= (flags & STORE_READONLY) ? SQLITE_OPEN_READONLY
                                       : SQLITE_OPEN_READWRITE |
                                             SQLITE_OPEN_CREATE;
    rc = sqlite3_open_v2(path, &s->st_db, oflags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 s->st_db ? sqlite3_errmsg(s->st_db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->st_db, 1);
    if (sqlite3_busy_timeout(s->st_db, 5000) != SQLITE_OK)
        goto fail_db;
    if (!(flags & STORE_READONLY)) {
        if (store_exec(s, "PRAGMA journal_mode=WAL") < 0)
            goto fail_db;
    }
    if (store_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") < 0)
        goto fail_db;
    if (!(flags & STORE_READONLY)) {
        if (store_exec(s, schema_sql) < 0)
            goto fail_db;
    }
    return s;

fail_db:
    snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->st_db));
fail:
    store_close(s);
    return NULL;
}

void
store_close(struct store *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < SQL_NSTMT; i++)
        sqlite3_finalize(s->st_stmt[i]);
    sqlite3_close(s->st_db);
    free(s);
}

const char *
store_errmsg(struct store *s)
{
    return s ? sqlite3_errmsg(s->st_db) : "no store";
}

int
store_exec(struct store *s, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(s->st_db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_warnx("%s: %s", __func__, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *
store_stmt(struct store *s, enum store_stmt_id id)
{
    sqlite3_stmt *st = s->st_stmt[id];

    if (st == NULL) {
        if (sqlite3_prepare_v3(s->st_db, stmt_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &st,
                               NULL) != SQLITE_OK) {
            log_warnx("%s: prepare %d: %s", __func__, (int)id,
                      sqlite3_errmsg(s->st_db));
            return NULL;
        }
        s->st_stmt[id] = st;
    }
    return st;
}

int
store_step_done(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_warnx("store: %s", sqlite3_errmsg(s->st_db));
        return -1;
    }
    return 0;
}

static int
run(struct store *s, enum store_stmt_id id)
{
    sqlite3_stmt *st = store_stmt(s, id);

    return st ? store_step_done(s, st) : -1;
}

int store_begin(struct store *s) { return run(s, SQL_BEGIN); }
int store_commit(struct store *s) { return run(s, SQL_COMMIT); }
int store_savepoint(struct store *s) { return run(s, SQL_SAVEPOINT); }
int store_savepoint_release(struct store *s) { return run(s, SQL_RELEASE); }

int
store_rollback(struct store *s)
{
    /* A failed COMMIT may already have rolled back: not an error then. */
    if (sqlite3_get_autocommit(s->st_db))
        return 0;
    return run(s, SQL_ROLLBACK);
}

int
store_savepoint_rollback(struct store *s)
{
    if (run(s, SQL_ROLLBACK_TO) < 0)
        return -1;
    return run(s, SQL_RELEASE);
}

/* ---- helpers --------------------------------------------------------- */

/* Canonical compact JSON of v into b (NUL-terminated). 0 or -1. */
static int
dump_json(json_t *v, struct sbuf *b)
{
    b->sb_len = 0;
    return sbuf_add_json(b, v);
}

static void
reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Find the row of (key, cid). STORE_OK with *rowid, or NOTFOUND/ERROR. */
static int
client_rowid(struct store *s, const char *key, int64_t cid, int64_t *rowid,
             struct store_meta *meta, struct sbuf *info)
{
    sqlite3_stmt *st = store_stmt(s, SQL_CLIENT_GET);
    int rc;

    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        reset(st);
        return STORE_NOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        reset(st);
        return STORE_ERROR;
    }
    *rowid = sqlite3_column_int64(st, 0);
    if (info != NULL &&
        sbuf_add(info, (const char *)sqlite3_column_text(st, 1),
                 (size_t)sqlite3_column_bytes(st, 1)) < 0) {
        reset(st);
        return STORE_ERROR;
    }
    if (meta != NULL) {
        const unsigned char *t;

        memset(meta, 0, sizeof(*meta));
        meta->sm_rowid = *rowid;
        meta->sm_version = sqlite3_column_int64(st, 2);
        meta->sm_changed_at = sqlite3_column_int64(st, 3);
        if ((t = sqlite3_column_text(st, 4)) != NULL)
            snprintf(meta->sm_state, sizeof(meta->sm_state), "%s", t);
        if ((t = sqlite3_column_text(st, 5)) != NULL)
            snprintf(meta->sm_batch, sizeof(meta->sm_batch), "%s", t);
        meta->sm_state_at = sqlite3_column_int64(st, 6);
    }
    reset(st);
    return STORE_OK;
}

/* Append "[row,row,...]" of the JSON column 0 of st (bound already). */
static int
append_rows(struct store *s, sqlite3_stmt *st, struct sbuf *out)
{
    int rc, first = 1;

    if (sbuf_add(out, "[", 1) < 0)
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!first && sbuf_add(out, ",", 1) < 0)
            goto fail;
        first = 0;
        if (sbuf_add(out, (const char *)sqlite3_column_text(st, 0),
                     (size_t)sqlite3_column_bytes(st, 0)) < 0)
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        goto fail;
    }
    reset(st);
    return sbuf_add(out, "]", 1);
fail:
    reset(st);
    return -1;
}

static int
append_list(struct store *s, enum store_stmt_id id, int64_t rowid,
            struct sbuf *out)
{
    sqlite3_stmt *st = store_stmt(s, id);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, rowid);
    return append_rows(s, st, out);
}

static void
format_time_ms(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int
store_client_meta(struct store *s, const char *key, int64_t cid,
                  struct store_meta *meta)
{
    int64_t rowid;

    return client_rowid(s, key, cid, &rowid, meta, NULL);
}

/* Read transactions: one snapshot for the statements of one answer. */
static int
read_begin(struct store *s)
{
    return run(s, SQL_READ_BEGIN);
}

static void
read_end(struct store *s)
{
    if (!sqlite3_get_autocommit(s->st_db))
        (void)run(s, SQL_COMMIT);
}

/* ---- reads ----------------------------------------------------------- */

int
store_read_client(struct store *s, const char *key, int64_t cid,
                  struct sbuf *out, struct store_meta *meta)
{
    struct store_meta m;
    struct sbuf info = {0};
    char when[80];
    int64_t rowid;
    int rc;

    if (read_begin(s) < 0)
        return STORE_ERROR;
    rc = client_rowid(s, key, cid, &rowid, &m, &info);
    if (rc != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if (sbuf_printf(out, "{\"client_id\":%lld,\"info\":", (long long)cid) < 0 ||
        sbuf_add(out, info.sb_buf, info.sb_len) < 0 ||
        sbuf_addstr(out, ",\"zones\":") < 0 ||
        append_list(s, SQL_ZONES_GET, rowid, out) < 0 ||
        sbuf_addstr(out, ",\"users\":") < 0 ||
        append_list(s, SQL_USERS_GET, rowid, out) < 0)
        goto done;
    format_time_ms(m.sm_state_at ? m.sm_state_at : m.sm_changed_at, when,
                   sizeof(when));
    /* state and batch are written by us: [a-z] and [0-9TZ_-] only. */
    if (sbuf_printf(out, ",\"import\":{\"state\":\"%s\",\"batch\":", m.sm_state) < 0)
        goto done;
    if (m.sm_batch[0] != '\0'
            ? sbuf_printf(out, "\"%s\"", m.sm_batch) < 0
            : sbuf_addstr(out, "null") < 0)
        goto done;
    if (sbuf_printf(out, ",\"updated\":\"%s\"}}", when) < 0)
        goto done;
    if (meta != NULL)
        *meta = m;
    rc = STORE_OK;
done:
    read_end(s);
    sbuf_free(&info);
    return rc;
}

static int
read_list(struct store *s, const char *key, int64_t cid, struct sbuf *out,
          enum store_stmt_id id, const char *name)
{
    int64_t rowid;
    int rc;

    if (read_begin(s) < 0)
        return STORE_ERROR;
    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if (sbuf_printf(out, "{\"client_id\":%lld,\"%s\":", (long long)cid,
                    name) < 0 ||
        append_list(s, id, rowid, out) < 0 || sbuf_add(out, "}", 1) < 0)
        goto done;
    rc = STORE_OK;
done:
    read_end(s);
    return rc;
}

int
store_read_zones(struct store *s, const char *key, int64_t cid,
                 struct sbuf *out)
{
    return read_list(s, key, cid, out, SQL_ZONES_GET, "zones");
}

int
store_read_users(struct store *s, const char *key, int64_t cid,
                 struct sbuf *out)
{
    return read_list(s, key, cid, out, SQL_USERS_GET, "users");
}

static int
read_user(struct store *s, const char *key, int64_t cid, int64_t user_no,
          struct sbuf *out, int wrap)
{
    sqlite3_stmt *st;
    int64_t rowid;
    int rc;

    if (read_begin(s) < 0)
        return STORE_ERROR;
    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if ((st = store_stmt(s, SQL_USER_GET)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int64(st, 2, user_no);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        if ((wrap && sbuf_printf(out, "{\"client_id\":%lld,\"user\":",
                                 (long long)cid) < 0) ||
            sbuf_add(out, (const char *)sqlite3_column_text(st, 0),
                     (size_t)sqlite3_column_bytes(st, 0)) < 0 ||
            (wrap && sbuf_add(out, "}", 1) < 0))
            break;
        rc = STORE_OK;
        break;
    case SQLITE_DONE:
        rc = STORE_NOITEM;
        break;
    default:
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        break;
    }
    reset(st);
done:
    read_end(s);
    return rc;
}

int
store_read_user(struct store *s, const char *key, int64_t cid,
                int64_t user_no, struct sbuf *out)
{
    return read_user(s, key, cid, user_no, out, 1);
}

int
store_read_user_object(struct store *s, const char *key, int64_t cid,
                       int64_t user_no, struct sbuf *out)
{
    return read_user(s, key, cid, user_no, out, 0);
}

int
store_read_import(struct store *s, const char *key, const char *state,
                  int64_t after, int64_t limit, struct sbuf *out)
{
    sqlite3_stmt *st = store_stmt(s, SQL_IMPORT_LIST);
    int64_t last = 0, count = 0;
    char when[80];
    int rc;

    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    if (state != NULL)
        sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, limit);
    if (sbuf_addstr(out, "{\"clients\":[") < 0)
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *batch = sqlite3_column_text(st, 2);

        last = sqlite3_column_int64(st, 0);
        format_time_ms(sqlite3_column_int64(st, 3), when, sizeof(when));
        /* state and batch are written by us: no escaping needed. */
        if (sbuf_printf(out, "%s{\"client_id\":%lld,\"state\":\"%s\","
                        "\"batch\":%s%s%s,\"updated\":\"%s\"}",
                        count ? "," : "", (long long)last,
                        (const char *)sqlite3_column_text(st, 1),
                        batch ? "\"" : "", batch ? (const char *)batch : "null",
                        batch ? "\"" : "", when) < 0)
            goto fail;
        count++;
    }
    if (rc != SQLITE_DONE) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        goto fail;
    }
    reset(st);
    if (count == limit)
        return sbuf_printf(out, "],\"count\":%lld,\"next_after\":%lld}",
                           (long long)count, (long long)last) < 0
                   ? STORE_ERROR : STORE_OK;
    return sbuf_printf(out, "],\"count\":%lld,\"next_after\":null}",
                       (long long)count) < 0 ? STORE_ERROR : STORE_OK;
fail:
    reset(st);
    return STORE_ERROR;
}

/* Parse every JSON row of st into a new array. NULL on error. */
static json_t *
load_rows(struct store *s, enum store_stmt_id id, int64_t rowid)
{
    sqlite3_stmt *st = store_stmt(s, id);
    json_t *arr = NULL, *v;
    int rc;

    if (st == NULL || (arr = json_array()) == NULL)
        goto fail;
    sqlite3_bind_int64(st, 1, rowid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = json_loadb((const char *)sqlite3_column_text(st, 0),
                       (size_t)sqlite3_column_bytes(st, 0), 0, NULL);
        if (v == NULL || json_array_append_new(arr, v) < 0)
            goto fail;
    }
    if (rc != SQLITE_DONE)
        goto fail;
    reset(st);
    return arr;
fail:
    if (st != NULL)
        reset(st);
    json_decref(arr);
    return NULL;
}

int
store_load_client(struct store *s, const char *key, int64_t cid,
                  json_t **info, json_t **zones, json_t **users)
{
    struct sbuf ib = {0};
    int64_t rowid;
    int rc;

    *info = *zones = *users = NULL;
    rc = client_rowid(s, key, cid, &rowid, NULL, &ib);
    if (rc != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if ((*info = json_loadb(ib.sb_buf, ib.sb_len, 0, NULL)) == NULL ||
        (*zones = load_rows(s, SQL_ZONES_GET, rowid)) == NULL ||
        (*users = load_rows(s, SQL_USERS_GET, rowid)) == NULL) {
        log_warnx("%s: cannot load client %lld", __func__, (long long)cid);
        json_decref(*info);
        json_decref(*zones);
        *info = *zones = NULL;
        goto done;
    }
    rc = STORE_OK;
done:
    sbuf_free(&ib);
    return rc;
}

/* ---- writes ---------------------------------------------------------- */

static int
touch(struct store *s, int64_t rowid)
{
    sqlite3_stmt *st = store_stmt(s, SQL_CLIENT_TOUCH);

    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int64(st, 2, store_now_ms());
    return store_step_done(s, st) < 0 ? STORE_ERROR : STORE_OK;
}

int
store_put_client(struct store *s, const char *key, int64_t cid, json_t *info,
                 int *created)
{
    struct sbuf b = {0};
    sqlite3_stmt *st;
    int64_t rowid;
    int rc;

    if (dump_json(info, &b) < 0)
        return STORE_ERROR;
    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc == STORE_ERROR)
        goto done;
    *created = rc == STORE_NOTFOUND;
    if (*created) {
        if ((st = store_stmt(s, SQL_CLIENT_INSERT)) == NULL)
            goto fail;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cid);
        sqlite3_bind_text(st, 3, b.sb_buf, (int)b.sb_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, store_now_ms());
    } else {
        if ((st = store_stmt(s, SQL_CLIENT_UPDATE_INFO)) == NULL)
            goto fail;
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_text(st, 2, b.sb_buf, (int)b.sb_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, store_now_ms());
    }
    rc = store_step_done(s, st) < 0 ? STORE_ERROR : STORE_OK;
    goto done;
fail:
    rc = STORE_ERROR;
done:
    sbuf_free(&b);
    return rc;
}

int
store_patch_client(struct store *s, const char *key, int64_t cid,
                   json_t *patch)
{
    struct sbuf ib = {0}, b = {0};
    json_t *old = NULL, *merged = NULL;
    sqlite3_stmt *st;
    int64_t rowid;
    int rc;

    rc = client_rowid(s, key, cid, &rowid, NULL, &ib);
    if (rc != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if ((old = json_loadb(ib.sb_buf, ib.sb_len, 0, NULL)) == NULL ||
        (merged = model_merge(&model_info, old, patch)) == NULL ||
        dump_json(merged, &b) < 0)
        goto done;
    if ((st = store_stmt(s, SQL_CLIENT_UPDATE_INFO)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_text(st, 2, b.sb_buf, (int)b.sb_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, store_now_ms());
    if (store_step_done(s, st) < 0)
        goto done;
    rc = STORE_OK;
done:
    json_decref(old);
    json_decref(merged);
    sbuf_free(&ib);
    sbuf_free(&b);
    return rc;
}

int
store_delete_client(struct store *s, const char *key, int64_t cid)
{
    sqlite3_stmt *st;
    int64_t rowid;
    int rc;

    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc != STORE_OK)
        return rc;
    if ((st = store_stmt(s, SQL_CLIENT_DELETE)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, rowid);
    return store_step_done(s, st) < 0 ? STORE_ERROR : STORE_OK;
}

/* Bind (rowid, number, json) to st and run it; *changed = rows changed. */
static int
write_row(struct store *s, enum store_stmt_id id, int64_t rowid,
          int64_t number, json_t *data, int *changed)
{
    struct sbuf b = {0};
    sqlite3_stmt *st;
    int rc = STORE_ERROR;

    if ((st = store_stmt(s, id)) == NULL)
        return STORE_ERROR;
    if (data != NULL && dump_json(data, &b) < 0)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int64(st, 2, number);
    if (data != NULL)
        sqlite3_bind_text(st, 3, b.sb_buf, (int)b.sb_len, SQLITE_STATIC);
    if (store_step_done(s, st) == 0) {
        *changed = sqlite3_changes(s->st_db);
        rc = STORE_OK;
    }
    sbuf_free(&b);
    return rc;
}

/* The client row, a row change on it, then touch it when something
 * changed. missing = what to answer when the statement changed nothing. */
static int
change_child(struct store *s, const char *key, int64_t cid,
             enum store_stmt_id id, int64_t number, json_t *data,
             int missing)
{
    int64_t rowid;
    int rc, changed = 0;

    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc != STORE_OK)
        return rc;
    rc = write_row(s, id, rowid, number, data, &changed);
    if (rc != STORE_OK)
        return rc;
    if (changed == 0)
        return missing;
    return touch(s, rowid);
}

static int64_t
number_of(json_t *obj, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(obj, name));
}

int
store_put_zone(struct store *s, const char *key, int64_t cid, json_t *zone)
{
    return change_child(s, key, cid, SQL_ZONE_PUT, number_of(zone, "Zone_No"),
                        zone, STORE_OK);
}

int
store_delete_zone(struct store *s, const char *key, int64_t cid,
                  int64_t zone_no)
{
    return change_child(s, key, cid, SQL_ZONE_DELETE, zone_no, NULL,
                        STORE_NOITEM);
}

int
store_insert_user(struct store *s, const char *key, int64_t cid, json_t *user)
{
    return change_child(s, key, cid, SQL_USER_INSERT,
                        number_of(user, "UserNo"), user, STORE_EXISTS);
}

int
store_replace_user(struct store *s, const char *key, int64_t cid,
                   json_t *user)
{
    return change_child(s, key, cid, SQL_USER_REPLACE,
                        number_of(user, "UserNo"), user, STORE_NOITEM);
}

int
store_delete_user(struct store *s, const char *key, int64_t cid,
                  int64_t user_no)
{
    return change_child(s, key, cid, SQL_USER_DELETE, user_no, NULL,
                        STORE_NOITEM);
}

int
store_set_xml(struct store *s, const char *key, int64_t cid, const char *xml,
              size_t len)
{
    sqlite3_stmt *st;
    int64_t rowid;
    int rc;

    rc = client_rowid(s, key, cid, &rowid, NULL, NULL);
    if (rc != STORE_OK)
        return rc;
    if ((st = store_stmt(s, SQL_XML_SET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_blob(st, 2, xml, (int)len, SQLITE_STATIC);
    return store_step_done(s, st) < 0 ? STORE_ERROR : STORE_OK;
}

int
store_get_xml(struct store *s, const char *key, int64_t cid, char **xml,
              size_t *len, int64_t *version)
{
    sqlite3_stmt *st = store_stmt(s, SQL_XML_GET);
    int rc = STORE_ERROR;

    *xml = NULL;
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cid);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW: {
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        const void *p = sqlite3_column_blob(st, 1);

        if ((*xml = malloc(n + 1)) == NULL)
            break;
        if (n > 0)
            memcpy(*xml, p, n);
        (*xml)[n] = '\0';
        *len = n;
        *version = sqlite3_column_int64(st, 0);
        rc = STORE_OK;
        break;
    }
    case SQLITE_DONE:
        rc = STORE_NOTFOUND;
        break;
    default:
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        break;
    }
    reset(st);
    return rc;
}

int
store_foreach_pending(struct store *s,
                      int (*fn)(void *arg, const char *key, int64_t cid,
                                int64_t version, const char *xml,
                                size_t len),
                      void *arg)
{
    sqlite3_stmt *st = store_stmt(s, SQL_PENDING);
    int rc, ret = 0;

    if (st == NULL)
        return STORE_ERROR;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ret = fn(arg, (const char *)sqlite3_column_text(st, 0),
                 sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                 sqlite3_column_blob(st, 3),
                 (size_t)sqlite3_column_bytes(st, 3));
        if (ret != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        ret = STORE_ERROR;
    }
    reset(st);
    return ret;
}
