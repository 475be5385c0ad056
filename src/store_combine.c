/*
 * store_combine.c - the import-state part of the store, used by
 * patriot-combine (see the "import state" section of store.h).
 *
 * Statements are prepared per call with sqlite3_prepare_v2 (about 9 us
 * each) and finalized before returning: store_close() finalizes only the
 * statements of store.c's table, and the combiner runs once an hour. The
 * statements of the mark transaction are the exception: a struct
 * store_mark prepares them once for the whole batch.
 */
#include "store_int.h"
#include "store_combine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *init_sql =
    "CREATE TABLE IF NOT EXISTS shipped("
    "  xml_id TEXT PRIMARY KEY,"
    "  key_name TEXT NOT NULL,"
    "  client_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  batch TEXT NOT NULL) WITHOUT ROWID;";

static sqlite3_stmt *
prep(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->st_db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_warnx("store_combine: prepare: %s", sqlite3_errmsg(s->st_db));
        return NULL;
    }
    return st;
}

/* Step a statement to SQLITE_DONE and finalize it. 0 or -1 (logged). */
static int
done(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_warnx("store_combine: %s", sqlite3_errmsg(s->st_db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int
store_combine_init(struct store *s)
{
    return store_exec(s, init_sql);
}

int
store_combine_snapshot_begin(struct store *s)
{
    return store_exec(s, "BEGIN");
}

void
store_combine_snapshot_end(struct store *s)
{
    if (!sqlite3_get_autocommit(s->st_db))
        (void)store_exec(s, "COMMIT");
}

int
store_combine_scan_waiting(struct store *s,
                           int (*fn)(void *arg, const char *key, int64_t cid,
                                     int64_t version, const char *xml,
                                     size_t len),
                           void *arg)
{
    sqlite3_stmt *st;
    int64_t last_at = INT64_MIN, last_id = INT64_MIN;
    int rc, ret = 0;

    /* ORDER BY on the join would sort the XML too (1.3 s for 100,000
     * clients against 0.3 s). LIMIT -1: without a LIMIT SQLite drops the
     * ORDER BY of a subquery in a join (3.40); CROSS JOIN keeps w the
     * outer loop. The order is checked all the same. */
    st = prep(s, "WITH w AS MATERIALIZED ("
                 "  SELECT c.id, c.key_name, c.client_id, c.version,"
                 "  c.changed_at FROM " ST_JOIN
                 "  WHERE " ST_PENDING " OR s.state = 'failed'"
                 "  ORDER BY c.changed_at, c.id LIMIT -1)"
                 " SELECT w.key_name, w.client_id, w.version, o.xml,"
                 " w.changed_at, w.id"
                 " FROM w CROSS JOIN outbox o ON o.cid = w.id"
                 " AND o.version = w.version");
    if (st == NULL)
        return STORE_ERROR;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *x = sqlite3_column_blob(st, 3);
        int64_t at = sqlite3_column_int64(st, 4);
        int64_t id = sqlite3_column_int64(st, 5);

        if (at < last_at || (at == last_at && id <= last_id)) {
            log_warnx("%s: rows out of order", __func__);
            ret = STORE_ERROR;
            break;
        }
        last_at = at;
        last_id = id;
        ret = fn(arg, (const char *)sqlite3_column_text(st, 0),
                 sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                 x ? x : "", (size_t)sqlite3_column_bytes(st, 3));
        if (ret != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        ret = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return ret;
}

int
store_combine_meta_set(struct store *s, const char *k, const char *v)
{
    sqlite3_stmt *st;

    st = prep(s, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)");
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return done(s, st) < 0 ? STORE_ERROR : STORE_OK;
}

int
store_combine_meta_get(struct store *s, const char *k, char *v, size_t len)
{
    sqlite3_stmt *st;
    int rc;

    st = prep(s, "SELECT v FROM meta WHERE k = ?1");
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);

        snprintf(v, len, "%s", t ? (const char *)t : "");
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
    } else {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        rc = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}

int
store_combine_counts(struct store *s, int64_t counts[4])
{
    static const char *names[4] = {"pending", "shipped", "imported",
                                   "failed"};
    sqlite3_stmt *st;
    int rc, i;

    memset(counts, 0, 4 * sizeof(counts[0]));
    st = prep(s, "SELECT " ST_STATE " AS st, count(*) FROM " ST_JOIN
                 " GROUP BY st");
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);

        for (i = 0; i < 4; i++)
            if (n != NULL && strcmp(n, names[i]) == 0)
                counts[i] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(s->st_db));
        return -1;
    }
    return 0;
}

/* ---- the mark transaction (store_combine.h) ---- */

enum {
    MK_ADD, MK_ELIGIBLE, MK_APPLY, MK_SHIPPED, MK_UNMARKED,
    MK_REFOLD_CLIENT, MK_REFOLD_SHIPPED, MK_RESULT_GET, MK_RESULT_SET, MK_N
};

struct store_mark {
    struct store *m_s;
    sqlite3_stmt *m_st[MK_N];
};

/*
 * The batch to mark is gathered in a TEMP table of the connection (a
 * file of SQLite's own, not the database: no lock, memory bounded by
 * SQLite's cache), then marked by three statements over all of it.
 * 100,000 clients, alone on the machine: 1.1 s against 1.1-1.6 s for two
 * statements per client; in the run, beside the removal of the files,
 * the record phase went from 2.3-2.9 s to 1.5-2.5 s (docs/BENCHMARKS.md).
 */
static const char *mark_temp_sql =
    "CREATE TEMP TABLE IF NOT EXISTS mark_batch("
    "  seq INTEGER PRIMARY KEY,"
    "  key_name TEXT NOT NULL,"
    "  client_id INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  xlen INTEGER NOT NULL,"
    "  xml_id TEXT NOT NULL,"
    "  cid INTEGER);"           /* clients.id once found eligible */
    "DELETE FROM temp.mark_batch;";

static const char *mark_sql[MK_N] = {
    [MK_ADD] =
        "INSERT INTO temp.mark_batch(seq, key_name, client_id, version,"
        " xlen, xml_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    /* Eligible: the client still at the version picked, pending or
     * failed, its stored XML the one shipped. */
    [MK_ELIGIBLE] =
        "UPDATE temp.mark_batch SET cid = c.id FROM clients c"
        " WHERE c.key_name = mark_batch.key_name"
        " AND c.client_id = mark_batch.client_id"
        " AND c.version = mark_batch.version"
        " AND NOT EXISTS(SELECT 1 FROM import_state s WHERE s.cid = c.id"
        " AND s.version = mark_batch.version AND s.state <> 'failed')"
        " AND EXISTS(SELECT 1 FROM outbox o WHERE o.cid = c.id"
        " AND o.version = mark_batch.version"
        " AND length(o.xml) = mark_batch.xlen)",
    /* Shipped: a narrow row of its own (store.c: import_state), never
     * the client's wide row. */
    [MK_APPLY] =
        "INSERT INTO import_state(cid, version, state, batch, at)"
        " SELECT cid, version, 'shipped', ?1, ?2 FROM temp.mark_batch"
        " WHERE cid IS NOT NULL"
        " ON CONFLICT(cid) DO UPDATE SET version = excluded.version,"
        " state = excluded.state, batch = excluded.batch, at = excluded.at",
    [MK_SHIPPED] =
        "INSERT OR REPLACE INTO shipped(xml_id, key_name, client_id,"
        " version, batch) SELECT xml_id, key_name, client_id, version, ?1"
        " FROM temp.mark_batch WHERE cid IS NOT NULL",
    [MK_UNMARKED] =
        "SELECT seq FROM temp.mark_batch WHERE cid IS NULL ORDER BY seq",
    [MK_REFOLD_CLIENT] =
        "UPDATE import_state SET batch = ?2, at = ?3 FROM shipped sh,"
        " clients c WHERE sh.xml_id = ?1 AND c.key_name = sh.key_name"
        " AND c.client_id = sh.client_id AND c.version = sh.version"
        " AND import_state.cid = c.id"
        " AND import_state.version = sh.version"
        " AND import_state.state = 'shipped'",
    [MK_REFOLD_SHIPPED] = "UPDATE shipped SET batch = ?2 WHERE xml_id = ?1",
    [MK_RESULT_GET] =
        "SELECT key_name, client_id, version, batch FROM shipped"
        " WHERE xml_id = ?1",
    [MK_RESULT_SET] =
        "UPDATE import_state SET state = ?4, at = ?5"
        " WHERE cid = (SELECT id FROM clients WHERE key_name = ?1"
        " AND client_id = ?2 AND version = ?3)"
        " AND version = ?3 AND state = 'shipped'",
};

struct store_mark *
store_combine_mark_begin(struct store *s)
{
    struct store_mark *m;
    int i;

    if ((m = calloc(1, sizeof(*m))) == NULL) {
        log_warnx("%s: out of memory", __func__);
        return NULL;
    }
    m->m_s = s;
    if (store_exec(s, mark_temp_sql) < 0) {
        free(m);
        return NULL;
    }
    for (i = 0; i < MK_N; i++) {
        if ((m->m_st[i] = prep(s, mark_sql[i])) == NULL) {
            store_combine_mark_end(m);
            return NULL;
        }
    }
    return m;
}

void
store_combine_mark_end(struct store_mark *m)
{
    int i;

    if (m == NULL)
        return;
    for (i = 0; i < MK_N; i++)
        sqlite3_finalize(m->m_st[i]);
    free(m);
}

/* Step a prepared statement of m to its end and reset it. 0 or -1. */
static int
mark_step(struct store_mark *m, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_warnx("store_combine: %s", sqlite3_errmsg(m->m_s->st_db));
        return -1;
    }
    return 0;
}

int
store_combine_mark_add(struct store_mark *m, size_t seq, const char *key,
                       int64_t cid, int64_t version, size_t xlen,
                       const char *xml_id)
{
    sqlite3_stmt *st = m->m_st[MK_ADD];

    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, cid);
    sqlite3_bind_int64(st, 4, version);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)xlen);
    sqlite3_bind_text(st, 6, xml_id, -1, SQLITE_STATIC);
    return mark_step(m, st) < 0 ? STORE_ERROR : STORE_OK;
}

int
store_combine_mark_apply(struct store_mark *m, const char *batch,
                         int64_t at_ms, size_t *marked,
                         int (*unmarked)(void *arg, size_t seq), void *arg)
{
    sqlite3_stmt *st;
    int rc;

    *marked = 0;
    if (mark_step(m, m->m_st[MK_ELIGIBLE]) < 0)
        return STORE_ERROR;
    st = m->m_st[MK_APPLY];
    sqlite3_bind_text(st, 1, batch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    if (mark_step(m, st) < 0)
        return STORE_ERROR;
    *marked = (size_t)sqlite3_changes64(m->m_s->st_db);
    st = m->m_st[MK_SHIPPED];
    sqlite3_bind_text(st, 1, batch, -1, SQLITE_STATIC);
    if (mark_step(m, st) < 0)
        return STORE_ERROR;
    st = m->m_st[MK_UNMARKED];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (unmarked(arg, (size_t)sqlite3_column_int64(st, 0)) < 0)
            break;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (rc != SQLITE_ROW)
            log_warnx("store_combine: %s", sqlite3_errmsg(m->m_s->st_db));
        return STORE_ERROR;
    }
    return STORE_OK;
}

int
store_combine_mark_refold(struct store_mark *m, const char *xml_id,
                          const char *batch, int64_t at_ms)
{
    sqlite3_stmt *st = m->m_st[MK_REFOLD_CLIENT];

    sqlite3_bind_text(st, 1, xml_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, batch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at_ms);
    if (mark_step(m, st) < 0)
        return STORE_ERROR;
    st = m->m_st[MK_REFOLD_SHIPPED];
    sqlite3_bind_text(st, 1, xml_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, batch, -1, SQLITE_STATIC);
    return mark_step(m, st) < 0 ? STORE_ERROR : STORE_OK;
}

int
store_combine_mark_result(struct store_mark *m, const char *xml_id, int ok,
                          int64_t at_ms, struct store_shipped *out)
{
    sqlite3_stmt *st = m->m_st[MK_RESULT_GET];
    int rc;

    memset(out, 0, sizeof(*out));
    sqlite3_bind_text(st, 1, xml_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->ss_key, sizeof(out->ss_key), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        out->ss_cid = sqlite3_column_int64(st, 1);
        out->ss_version = sqlite3_column_int64(st, 2);
        snprintf(out->ss_batch, sizeof(out->ss_batch), "%s",
                 (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return STORE_NOTFOUND;
    if (rc != SQLITE_ROW) {
        log_warnx("%s: %s", __func__, sqlite3_errmsg(m->m_s->st_db));
        return STORE_ERROR;
    }
    st = m->m_st[MK_RESULT_SET];
    sqlite3_bind_text(st, 1, out->ss_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, out->ss_cid);
    sqlite3_bind_int64(st, 3, out->ss_version);
    sqlite3_bind_text(st, 4, ok ? "imported" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, at_ms);
    if (mark_step(m, st) < 0)
        return STORE_ERROR;
    out->ss_changed = sqlite3_changes(m->m_s->st_db) > 0;
    return STORE_OK;
}
