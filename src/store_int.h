/*
 * store_int.h - internals shared by the files of the store module
 * (store.c for the API, store_combine.c for the combiner). Not for other
 * modules.
 */
#pragma once

#include <sqlite3.h>

#include "store.h"

/*
 * A client's import state, for SQL over ST_JOIN (c the client, s its
 * import_state row, if any): the row's state when it is about the
 * client's version, else pending (a change since, or never shipped);
 * ST_AT the time of that state (a pending client's: its last change).
 */
#define ST_JOIN "clients c LEFT JOIN import_state s ON s.cid = c.id"
#define ST_STATE \
    "(CASE WHEN s.version = c.version THEN s.state ELSE 'pending' END)"
#define ST_AT \
    "(CASE WHEN s.version = c.version THEN s.at ELSE c.changed_at END)"
#define ST_PENDING "(s.version IS NOT c.version)"

/* Statements prepared once per connection, by index. */
enum store_stmt_id {
    SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK,
    SQL_SAVEPOINT, SQL_RELEASE, SQL_ROLLBACK_TO,
    SQL_CLIENT_GET, SQL_CLIENT_INSERT, SQL_CLIENT_UPDATE, SQL_CLIENT_DELETE,
    SQL_TOMBSTONE,
    SQL_XML_SET, SQL_XML_GET, SQL_PENDING, SQL_IMPORT_LIST,
    SQL_NSTMT
};

struct store {
    sqlite3 *st_db;
    unsigned st_flags;
    sqlite3_stmt *st_stmt[SQL_NSTMT];   /* prepared lazily */
};

/* The prepared statement id (prepared on first use, reset and cleared
 * bindings before it is handed out). NULL on error (logged). */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id);

/* Run one SQL string that returns no rows; 0 or -1 (logged). */
int store_exec(struct store *s, const char *sql);

/* Step a statement expected to finish (SQLITE_DONE); resets it. 0 or -1. */
int store_step_done(struct store *s, sqlite3_stmt *st);
