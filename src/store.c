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
#include <unistd.h>

#include "jtext.h"
#include "log.h"
#include "model.h"

#define SCHEMA_VERSION 2

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS meta("
    "  k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"
    /* A client is one row: zones and users are read and written with
     * their client, never on their own, so they live in it as JSON arrays
     * (by number). A read is one index lookup and one page. */
    "CREATE TABLE IF NOT EXISTS clients("
    "  id INTEGER PRIMARY KEY,"
    "  key_name TEXT NOT NULL,"
    "  client_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  changed_at INTEGER NOT NULL,"
    "  info TEXT NOT NULL,"
    "  zones TEXT NOT NULL DEFAULT '[]',"
    "  users TEXT NOT NULL DEFAULT '[]',"
    "  UNIQUE(key_name, client_id));"
    /* The import state of a client: what the combiner last did with one
     * version of it (ST_STATE in store_int.h). A client is pending when
     * its version has no row here: a change writes nothing in this table,
     * and the combiner's mark of 100,000 clients writes ~40 bytes each
     * instead of rewriting their wide rows (4 MB of WAL, not 200 MB).
     * Schema version 1 kept the state in the clients row (migrate_v1). No
     * index on state: the combiner's hourly scan of the table costs
     * less. */
    "CREATE TABLE IF NOT EXISTS import_state("
    "  cid INTEGER PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('shipped','imported','failed')),"
    "  batch TEXT,"
    "  at INTEGER NOT NULL);"
    "DROP INDEX IF EXISTS clients_state;"
    /* The last version of each deleted client, so that a client created
     * again goes on counting: (key, client, version) names one content
     * for ever (the combiner relies on it). */
    "CREATE TABLE IF NOT EXISTS tombstones("
    "  key_name TEXT NOT NULL, client_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL, PRIMARY KEY(key_name, client_id))"
    "  WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outbox("
    "  cid INTEGER PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  xml BLOB NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES('schema_version', '2');";

/*
 * Schema version 1 to 2, once, in one transaction: the state columns of
 * clients move to import_state. A pending client keeps its last batch in a
 * row for version 0 (no client has it: still pending).
 */
static const char *migrate_v1_sql =
    "INSERT OR REPLACE INTO import_state(cid, version, state, batch, at)"
    " SELECT id, CASE state WHEN 'pending' THEN 0 ELSE version END,"
    "  CASE state WHEN 'pending' THEN 'shipped' ELSE state END,"
    "  state_batch, COALESCE(state_at, changed_at) FROM clients"
    " WHERE state <> 'pending' OR state_batch IS NOT NULL;"
    "ALTER TABLE clients DROP COLUMN state;"
    "ALTER TABLE clients DROP COLUMN state_batch;"
    "ALTER TABLE clients DROP COLUMN state_at;"
    "UPDATE meta SET v = '2' WHERE k = 'schema_version';";

static const char *stmt_sql[SQL_NSTMT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT change",
    [SQL_RELEASE] = "RELEASE change",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO change",
    [SQL_CLIENT_GET] =
        "SELECT c.id, c.version, c.changed_at, " ST_STATE ", s.batch, "
        ST_AT ", c.info, c.zones, c.users FROM " ST_JOIN
        " WHERE c.key_name = ?1 AND c.client_id = ?2",
    [SQL_CLIENT_INSERT] =
        "INSERT INTO clients(key_name, client_id, version, changed_at,"
        " info, zones, users)"
        " VALUES(?1, ?2, 1 + COALESCE((SELECT version FROM tombstones"
        " WHERE key_name = ?1 AND client_id = ?2), 0),"
        " ?6, ?3, ?4, ?5) RETURNING version",
    [SQL_TOMBSTONE] =
        "INSERT INTO tombstones(key_name, client_id, version)"
        " VALUES(?1, ?2, ?3) ON CONFLICT(key_name, client_id)"
        " DO UPDATE SET version = excluded.version",
    [SQL_CLIENT_UPDATE] =
        "UPDATE clients SET info = ?2, zones = ?3, users = ?4,"
        " version = version + 1, changed_at = ?5 WHERE id = ?1",
    [SQL_CLIENT_DELETE] = "DELETE FROM clients WHERE id = ?1",
    [SQL_XML_SET] =
        "INSERT INTO outbox(cid, version, xml)"
        " SELECT id, version, ?2 FROM clients WHERE id = ?1"
        " ON CONFLICT(cid) DO UPDATE SET version = excluded.version,"
        " xml = excluded.xml",
    [SQL_XML_GET] =
        "SELECT c.version, o.xml FROM clients c JOIN outbox o ON o.cid = c.id"
        " WHERE c.key_name = ?1 AND c.client_id = ?2",
    [SQL_IMPORT_LIST] =
        "SELECT c.client_id, " ST_STATE ", s.batch, " ST_AT " FROM " ST_JOIN
        " WHERE c.key_name = ?1 AND c.client_id > ?2"
        " AND (?3 IS NULL OR " ST_STATE " = ?3) ORDER BY c.client_id"
        " LIMIT ?4",
    [SQL_PENDING] =
        "SELECT c.key_name, c.client_id, c.version, o.xml FROM " ST_JOIN
        " JOIN outbox o ON o.cid = c.id WHERE " ST_PENDING
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

/* ---- connection ------------------------------------------------------ */

/* The schema version the database says it has: 0 if none, -1 on error
 * (sqlite3_errcode says). */
static int
schema_version(struct store *s)
{
    char v[16];

    switch (store_meta_get(s, "schema_version", v, sizeof(v))) {
    case STORE_OK:
        return atoi(v);
    case STORE_NOTFOUND:
        return 0;
    default:
        return -1;
    }
}

/* Bring a database of an older schema to SCHEMA_VERSION, in one
 * transaction (another writer may be doing it: checked inside). Any other
 * version is left to store_open to refuse. 0 or -1. */
static int
store_migrate(struct store *s)
{
    int v = schema_version(s);

    if (v != 1)
        return 0;
    if (store_exec(s, "BEGIN IMMEDIATE") < 0)
        return -1;
    if ((v = schema_version(s)) == 1) {
        /* on failure the transaction stays open, so that sqlite3_errmsg
         * still names the error: store_open rolls it back */
        if (store_exec(s, migrate_v1_sql) < 0)
            return -1;
        log_info("store: schema version 1 -> 2 (import state in its own "
                 "table)");
    }
    return store_exec(s, "COMMIT");
}

/* Pragmas and, for a writer, the schema. 0 or -1 (sqlite3_errcode says). */
static int
store_setup(struct store *s, unsigned flags)
{
    if (!(flags & STORE_READONLY)) {
        /* A larger checkpoint interval lets a page changed many times be
         * copied into the database once (notes/sqlite.md). */
        if (store_exec(s, "PRAGMA journal_mode=WAL;"
                          " PRAGMA wal_autocheckpoint=4000") < 0)
            return -1;
    }
    if (store_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") < 0)
        return -1;
    if (!(flags & STORE_READONLY) &&
        (store_exec(s, schema_sql) < 0 || store_migrate(s) < 0))
        return -1;
    return 0;
}

struct store *
store_open(const char *path, unsigned flags, char *err, size_t errlen)
{
    struct store *s = NULL;
    int oflags, rc, tries, v;

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
    /* Another process may hold the database during its crash recovery or
     * schema check past the busy timeout's reach (seen: the combiner
     * starting while the API restarts after a kill -9): try again. */
    for (tries = 0;; tries++) {
        if (store_setup(s, flags) == 0 && (v = schema_version(s)) >= 0)
            break;
        rc = sqlite3_errcode(s->st_db) & 0xff;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries >= 50)
            goto fail_db;       /* store_close rolls back what is open */
        if (!sqlite3_get_autocommit(s->st_db))
            (void)store_exec(s, "ROLLBACK");
        usleep(100000);
    }
    if (v != SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %d, this program uses %d%s",
                 path, v, SCHEMA_VERSION, v < SCHEMA_VERSION
                 ? ": open it once with patriot-api or patriot-combine "
                   "(not --dry-run) to upgrade it" : "");
        goto fail;
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

static void
reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void
format_time_ms(int64_t ms, char *buf, size_t len)
{
    log_format_utc_ms(ms, buf, len);
}

/* Columns of SQL_CLIENT_GET. */
enum { COL_ID, COL_VERSION, COL_CHANGED, COL_STATE, COL_BATCH, COL_STATE_AT,
       COL_INFO, COL_ZONES, COL_USERS };

/*
 * Step SQL_CLIENT_GET for (key, cid). STORE_OK leaves the statement on its
 * row (the caller reads columns, then calls reset()); NOTFOUND and ERROR
 * leave it reset. *stp gets the statement.
 */
static int
client_row(struct store *s, const char *key, int64_t cid,
           sqlite3_stmt **stp)
{
    sqlite3_stmt *st = store_stmt(s, SQL_CLIENT_GET);
    int rc;

    *stp = st;
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc != SQLITE_DONE)
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
    reset(st);
    return rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
}

static void
row_meta(sqlite3_stmt *st, struct store_meta *m)
{
    const unsigned char *t;

    memset(m, 0, sizeof(*m));
    m->sm_rowid = sqlite3_column_int64(st, COL_ID);
    m->sm_version = sqlite3_column_int64(st, COL_VERSION);
    m->sm_changed_at = sqlite3_column_int64(st, COL_CHANGED);
    if ((t = sqlite3_column_text(st, COL_STATE)) != NULL)
        snprintf(m->sm_state, sizeof(m->sm_state), "%s", t);
    if ((t = sqlite3_column_text(st, COL_BATCH)) != NULL)
        snprintf(m->sm_batch, sizeof(m->sm_batch), "%s", t);
    m->sm_state_at = sqlite3_column_int64(st, COL_STATE_AT);
}

static int
add_col(struct sbuf *out, sqlite3_stmt *st, int col)
{
    return sbuf_add(out, (const char *)sqlite3_column_text(st, col),
                    (size_t)sqlite3_column_bytes(st, col));
}

static json_t *
parse_col(sqlite3_stmt *st, int col)
{
    return json_loadb((const char *)sqlite3_column_text(st, col),
                      (size_t)sqlite3_column_bytes(st, col), 0, NULL);
}

int
store_client_meta(struct store *s, const char *key, int64_t cid,
                  struct store_meta *meta)
{
    sqlite3_stmt *st;
    int rc = client_row(s, key, cid, &st);

    if (rc == STORE_OK) {
        row_meta(st, meta);
        reset(st);
    }
    return rc;
}

/* ---- reads ----------------------------------------------------------- */

/* {"client_id":N, then the given columns as "name":json, then "}". One
 * statement: one consistent snapshot. */
int
store_read_client(struct store *s, const char *key, int64_t cid,
                  struct sbuf *out, struct store_meta *meta)
{
    struct store_meta m;
    sqlite3_stmt *st;
    char when[80];
    int rc;

    if ((rc = client_row(s, key, cid, &st)) != STORE_OK)
        return rc;
    row_meta(st, &m);
    format_time_ms(m.sm_state_at ? m.sm_state_at : m.sm_changed_at, when,
                   sizeof(when));
    rc = STORE_ERROR;
    /* state and batch are written by us: [a-z] and [0-9TZ] only. */
    if (sbuf_printf(out, "{\"client_id\":%lld,\"info\":", (long long)cid) < 0 ||
        add_col(out, st, COL_INFO) < 0 ||
        sbuf_addstr(out, ",\"zones\":") < 0 ||
        add_col(out, st, COL_ZONES) < 0 ||
        sbuf_addstr(out, ",\"users\":") < 0 ||
        add_col(out, st, COL_USERS) < 0 ||
        sbuf_printf(out, ",\"import\":{\"state\":\"%s\",\"batch\":%s%s%s,"
                    "\"updated\":\"%s\"}}", m.sm_state,
                    m.sm_batch[0] ? "\"" : "", m.sm_batch[0] ? m.sm_batch
                                                             : "null",
                    m.sm_batch[0] ? "\"" : "", when) < 0)
        goto done;
    if (meta != NULL)
        *meta = m;
    rc = STORE_OK;
done:
    reset(st);
    return rc;
}

static int
read_list(struct store *s, const char *key, int64_t cid, struct sbuf *out,
          int col, const char *name)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = client_row(s, key, cid, &st)) != STORE_OK)
        return rc;
    rc = STORE_ERROR;
    if (sbuf_printf(out, "{\"client_id\":%lld,\"%s\":", (long long)cid,
                    name) == 0 &&
        add_col(out, st, col) == 0 && sbuf_add(out, "}", 1) == 0)
        rc = STORE_OK;
    reset(st);
    return rc;
}

int
store_read_zones(struct store *s, const char *key, int64_t cid,
                 struct sbuf *out)
{
    return read_list(s, key, cid, out, COL_ZONES, "zones");
}

int
store_read_users(struct store *s, const char *key, int64_t cid,
                 struct sbuf *out)
{
    return read_list(s, key, cid, out, COL_USERS, "users");
}

/* Index in the sorted array arr of the element whose field is no, or of
 * where it would go; *found says which. */
static size_t
list_find(json_t *arr, const char *field, int64_t no, int *found)
{
    size_t i;

    *found = 0;
    for (i = 0; i < json_array_size(arr); i++) {
        int64_t v = json_integer_value(
            json_object_get(json_array_get(arr, i), field));

        if (v >= no) {
            *found = v == no;
            break;
        }
    }
    return i;
}

static int
read_user(struct store *s, const char *key, int64_t cid, int64_t user_no,
          struct sbuf *out, int wrap)
{
    sqlite3_stmt *st;
    json_t *users = NULL;
    size_t i;
    int rc, found;

    if ((rc = client_row(s, key, cid, &st)) != STORE_OK)
        return rc;
    users = parse_col(st, COL_USERS);
    reset(st);
    if (users == NULL)
        return STORE_ERROR;
    i = list_find(users, "UserNo", user_no, &found);
    rc = STORE_NOITEM;
    if (found) {
        rc = STORE_ERROR;
        if ((!wrap || sbuf_printf(out, "{\"client_id\":%lld,\"user\":",
                                  (long long)cid) == 0) &&
            sbuf_add_json(out, json_array_get(users, i)) == 0 &&
            (!wrap || sbuf_add(out, "}", 1) == 0))
            rc = STORE_OK;
    }
    json_decref(users);
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

/* The client as jansson values; rowid and version may be NULL. */
static int
load(struct store *s, const char *key, int64_t cid, int64_t *rowid,
     int64_t *version, json_t **info, json_t **zones, json_t **users)
{
    sqlite3_stmt *st;
    int rc;

    *info = *zones = *users = NULL;
    if ((rc = client_row(s, key, cid, &st)) != STORE_OK)
        return rc;
    if (rowid != NULL)
        *rowid = sqlite3_column_int64(st, COL_ID);
    if (version != NULL)
        *version = sqlite3_column_int64(st, COL_VERSION);
    *info = parse_col(st, COL_INFO);
    *zones = parse_col(st, COL_ZONES);
    *users = parse_col(st, COL_USERS);
    reset(st);
    if (!json_is_object(*info) || !json_is_array(*zones) ||
        !json_is_array(*users)) {
        log_warnx("%s: client %lld of %s does not parse", __func__,
                  (long long)cid, key);
        json_decref(*info);
        json_decref(*zones);
        json_decref(*users);
        *info = *zones = *users = NULL;
        return STORE_ERROR;
    }
    return STORE_OK;
}

int
store_load_client(struct store *s, const char *key, int64_t cid,
                  json_t **info, json_t **zones, json_t **users)
{
    return load(s, key, cid, NULL, NULL, info, zones, users);
}

/* ---- writes ---------------------------------------------------------- */

/* A zone or user change, made in the stored array's text (jtext.h). */
static int
modify_list(enum store_op op, json_t *data, int64_t num, struct sbuf *col)
{
    const char *field = op == STORE_OP_ZONE_PUT || op == STORE_OP_ZONE_DELETE
                        ? "Zone_No" : "UserNo";
    struct sbuf elem = {0};
    enum jtext_rc rc;

    switch (op) {
    case STORE_OP_ZONE_DELETE:
    case STORE_OP_USER_DELETE:
        rc = jtext_list_del(col, field, num);
        break;
    case STORE_OP_ZONE_PUT:
    case STORE_OP_USER_INSERT:
    case STORE_OP_USER_REPLACE:
        if (sbuf_add_json(&elem, data) < 0) {
            rc = JTEXT_NOMEM;
            break;
        }
        rc = jtext_list_put(col, field,
                       json_integer_value(json_object_get(data, field)),
                       elem.sb_buf, elem.sb_len,
                       op == STORE_OP_ZONE_PUT      ? JTEXT_UPSERT
                       : op == STORE_OP_USER_INSERT ? JTEXT_INSERT
                                                    : JTEXT_REPLACE);
        sbuf_free(&elem);
        break;
    default:
        return STORE_ERROR;
    }
    switch (rc) {
    case JTEXT_OK:
        return STORE_OK;
    case JTEXT_EXISTS:
        return STORE_EXISTS;
    case JTEXT_NOITEM:
        return STORE_NOITEM;
    case JTEXT_BAD:
        log_warnx("%s: a stored value does not parse", __func__);
        return STORE_ERROR;
    default:
        return STORE_ERROR;
    }
}

/* Change the stored JSON text of the column op touches, in place; only
 * that column is read (jtext.h). */
static int
modify(enum store_op op, json_t *data, int64_t num, struct sbuf *col)
{
    struct sbuf patch = {0};
    enum jtext_rc rc;

    if (op == STORE_OP_CLIENT_PUT) {
        col->sb_len = 0;
        return sbuf_add_json(col, data) < 0 ? STORE_ERROR : STORE_OK;
    }
    if (op != STORE_OP_CLIENT_PATCH)
        return modify_list(op, data, num, col);
    if (sbuf_add_json(&patch, data) < 0)
        return STORE_ERROR;
    rc = jtext_merge(&model_info, col, patch.sb_buf, patch.sb_len);
    sbuf_free(&patch);
    if (rc == JTEXT_BAD)
        log_warnx("%s: a stored value does not parse", __func__);
    return rc == JTEXT_OK ? STORE_OK : STORE_ERROR;
}

int
store_apply(struct store *s, const char *key, int64_t cid, enum store_op op,
            json_t *data, int64_t num, store_render_fn render, void *arg,
            int *created, struct sbuf *client_json)
{
    struct sbuf ti = {0}, tz = {0}, tu = {0}, *col;
    char batch[64] = "", when[80];
    const unsigned char *b;
    sqlite3_stmt *st;
    char *xml = NULL;           /* the render callback's */
    size_t xlen = 0;
    int64_t rowid = 0, version = 0, now = store_now_ms();
    int rc, isnew = 0;

    rc = client_row(s, key, cid, &st);
    if (rc == STORE_OK) {
        rowid = sqlite3_column_int64(st, COL_ID);
        version = sqlite3_column_int64(st, COL_VERSION);
        if ((b = sqlite3_column_text(st, COL_BATCH)) != NULL)
            snprintf(batch, sizeof(batch), "%s", (const char *)b);
        if (add_col(&ti, st, COL_INFO) < 0 || add_col(&tz, st, COL_ZONES) < 0 ||
            add_col(&tu, st, COL_USERS) < 0)
            rc = STORE_ERROR;
        reset(st);
        if (rc != STORE_OK)
            goto done;
    } else if (rc == STORE_NOTFOUND && op == STORE_OP_CLIENT_PUT) {
        isnew = 1;
        if (sbuf_addstr(&tz, "[]") < 0 || sbuf_addstr(&tu, "[]") < 0) {
            rc = STORE_ERROR;
            goto done;
        }
    } else {
        goto done;
    }
    if (created != NULL)
        *created = isnew;
    if (op == STORE_OP_CLIENT_DELETE) {
        if ((st = store_stmt(s, SQL_CLIENT_DELETE)) == NULL) {
            rc = STORE_ERROR;
            goto done;
        }
        sqlite3_bind_int64(st, 1, rowid);
        if (store_step_done(s, st) < 0 ||
            (st = store_stmt(s, SQL_TOMBSTONE)) == NULL) {
            rc = STORE_ERROR;
            goto done;
        }
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cid);
        sqlite3_bind_int64(st, 3, version);
        rc = store_step_done(s, st) < 0 ? STORE_ERROR : STORE_OK;
        goto done;
    }
    col = op == STORE_OP_CLIENT_PUT || op == STORE_OP_CLIENT_PATCH ? &ti
          : op == STORE_OP_ZONE_PUT || op == STORE_OP_ZONE_DELETE  ? &tz
                                                                   : &tu;
    if ((rc = modify(op, data, num, col)) != STORE_OK)
        goto done;
    rc = STORE_ERROR;
    if ((st = store_stmt(s, isnew ? SQL_CLIENT_INSERT
                                  : SQL_CLIENT_UPDATE)) == NULL)
        goto done;
    if (isnew) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cid);
        sqlite3_bind_text(st, 3, ti.sb_buf, (int)ti.sb_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, tz.sb_buf, (int)tz.sb_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, tu.sb_buf, (int)tu.sb_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
    } else {
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_text(st, 2, ti.sb_buf, (int)ti.sb_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, tz.sb_buf, (int)tz.sb_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, tu.sb_buf, (int)tu.sb_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
    }
    if (isnew) {
        /* RETURNING version: where a deleted client of this id stopped. */
        if (sqlite3_step(st) != SQLITE_ROW) {
            log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
            reset(st);
            goto done;
        }
        version = sqlite3_column_int64(st, 0) - 1;
        if (store_step_done(s, st) < 0)
            goto done;
        rowid = sqlite3_last_insert_rowid(s->st_db);
    } else if (store_step_done(s, st) < 0) {
        goto done;
    }
    if (render != NULL) {
        if (render(arg, cid, version + 1, ti.sb_buf, ti.sb_len, tz.sb_buf,
                   tz.sb_len, tu.sb_buf, tu.sb_len, &xml, &xlen) < 0 ||
            (st = store_stmt(s, SQL_XML_SET)) == NULL)
            goto done;
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_blob(st, 2, xml, (int)xlen, SQLITE_STATIC);
        if (store_step_done(s, st) < 0)
            goto done;
    }
    if (client_json != NULL) {
        format_time_ms(now, when, sizeof(when));
        client_json->sb_len = 0;
        if (sbuf_printf(client_json, "{\"client_id\":%lld,\"info\":",
                        (long long)cid) < 0 ||
            sbuf_add(client_json, ti.sb_buf, ti.sb_len) < 0 ||
            sbuf_addstr(client_json, ",\"zones\":") < 0 ||
            sbuf_add(client_json, tz.sb_buf, tz.sb_len) < 0 ||
            sbuf_addstr(client_json, ",\"users\":") < 0 ||
            sbuf_add(client_json, tu.sb_buf, tu.sb_len) < 0 ||
            sbuf_printf(client_json, ",\"import\":{\"state\":\"pending\","
                        "\"batch\":%s%s%s,\"updated\":\"%s\"}}",
                        batch[0] ? "\"" : "", batch[0] ? batch : "null",
                        batch[0] ? "\"" : "", when) < 0)
            goto done;
    }
    rc = STORE_OK;
done:
    sbuf_free(&ti);
    sbuf_free(&tz);
    sbuf_free(&tu);
    return rc;
}

int
store_put_client(struct store *s, const char *key, int64_t cid, json_t *info,
                 int *created)
{
    return store_apply(s, key, cid, STORE_OP_CLIENT_PUT, info, 0, NULL, NULL,
                       created, NULL);
}

int
store_patch_client(struct store *s, const char *key, int64_t cid,
                   json_t *patch)
{
    return store_apply(s, key, cid, STORE_OP_CLIENT_PATCH, patch, 0, NULL,
                       NULL, NULL, NULL);
}

int
store_delete_client(struct store *s, const char *key, int64_t cid)
{
    return store_apply(s, key, cid, STORE_OP_CLIENT_DELETE, NULL, 0, NULL,
                       NULL, NULL, NULL);
}

int
store_put_zone(struct store *s, const char *key, int64_t cid, json_t *zone)
{
    return store_apply(s, key, cid, STORE_OP_ZONE_PUT, zone, 0, NULL, NULL,
                       NULL, NULL);
}

int
store_delete_zone(struct store *s, const char *key, int64_t cid,
                  int64_t zone_no)
{
    return store_apply(s, key, cid, STORE_OP_ZONE_DELETE, NULL, zone_no, NULL,
                       NULL, NULL, NULL);
}

int
store_insert_user(struct store *s, const char *key, int64_t cid, json_t *user)
{
    return store_apply(s, key, cid, STORE_OP_USER_INSERT, user, 0, NULL, NULL,
                       NULL, NULL);
}

int
store_replace_user(struct store *s, const char *key, int64_t cid,
                   json_t *user)
{
    return store_apply(s, key, cid, STORE_OP_USER_REPLACE, user, 0, NULL,
                       NULL, NULL, NULL);
}

int
store_delete_user(struct store *s, const char *key, int64_t cid,
                  int64_t user_no)
{
    return store_apply(s, key, cid, STORE_OP_USER_DELETE, NULL, user_no, NULL,
                       NULL, NULL, NULL);
}

int
store_set_xml(struct store *s, const char *key, int64_t cid, const char *xml,
              size_t len)
{
    struct store_meta m;
    sqlite3_stmt *st;
    int rc;

    if ((rc = store_client_meta(s, key, cid, &m)) != STORE_OK)
        return rc;
    if ((st = store_stmt(s, SQL_XML_SET)) == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, m.sm_rowid);
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

/* ---- metrics and health (issue 5) ---- */

/* Statements here are prepared per call: they run once a scrape or a
 * health check, not per request. */
static sqlite3_stmt *
prep_once(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->st_db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int
store_ping(struct store *s)
{
    sqlite3_stmt *st;
    int rc;

    if ((st = prep_once(s, "SELECT v FROM meta WHERE k = 'schema_version'"))
        == NULL)
        return -1;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_count_by_state(struct store *s,
                     void (*fn)(void *arg, const char *key,
                                const char *state, int64_t count,
                                int64_t oldest_ms),
                     void *arg)
{
    sqlite3_stmt *st;
    int rc;

    st = prep_once(s, "SELECT c.key_name, " ST_STATE " AS st, count(*),"
                      " min(c.changed_at) FROM " ST_JOIN
                      " GROUP BY c.key_name, st");
    if (st == NULL) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);

        fn(arg, k ? k : "", state ? state : "",
           sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
    }
    if (rc != SQLITE_DONE)
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
store_meta_get(struct store *s, const char *k, char *v, size_t len)
{
    sqlite3_stmt *st;
    int rc;

    if ((st = prep_once(s, "SELECT v FROM meta WHERE k = ?1")) == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);

        snprintf(v, len, "%s", t ? (const char *)t : "");
        rc = STORE_OK;
    } else {
        rc = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}
