/*
 * store.h - the only place with SQL: the SQLite database that is the truth
 * of patriot-api (clients, zones, users, rendered XML, import state).
 *
 * One struct store is one connection, used by one thread at a time. The API
 * process opens one writer connection (owned by the writer thread) and one
 * reader connection per thread that reads. WAL mode, synchronous=FULL: a
 * committed transaction is on disk.
 *
 * Schema (see store.c for the exact SQL):
 *   clients(id, key_name, client_id, version, changed_at, info JSON,
 *           zones JSON array by Zone_No, users JSON array by UserNo)
 *                                            UNIQUE(key_name, client_id)
 *   outbox(cid, version, xml)                the client's Patriot XML at
 *                                            clients.version
 *   import_state(cid, version, state, batch, at)
 *                                            what the combiner last did
 *                                            with one version of a client
 *   meta(k, v)                               schema version, combine status
 * Every change to a client bumps clients.version and sets changed_at in the
 * same transaction that renders its XML: the client is pending from then
 * on, until the combiner records a state for that version.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

struct store;

/* Result codes of store calls. */
enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND = 1,     /* no such client / zone / user */
    STORE_EXISTS = 2,       /* insert of something that exists (409) */
    STORE_NOITEM = 3,       /* the client exists, the zone / user not */
    STORE_ERROR = -1,       /* SQLite failed: logged; answer 503 */
};

#define STORE_READONLY 0x1  /* open read-only (readers, the status command) */

/*
 * Open the database at path (created with the schema if missing, migrated
 * if older). Returns a new connection (caller closes with store_close), or
 * NULL with a message in err.
 */
struct store *store_open(const char *path, unsigned flags, char *err,
                         size_t errlen);

/* Close a connection; NULL-safe. */
void store_close(struct store *s);

/* The last SQLite error message of this connection (borrowed). */
const char *store_errmsg(struct store *s);

/* Transactions of the writer: BEGIN IMMEDIATE / COMMIT / ROLLBACK, and one
 * savepoint level for one change inside a group commit. */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);
int store_savepoint(struct store *s);
int store_savepoint_release(struct store *s);
int store_savepoint_rollback(struct store *s);


/* What a read says about a client besides its data. */
struct store_meta {
    int64_t sm_rowid;
    int64_t sm_version;
    int64_t sm_changed_at;      /* unix ms */
    char sm_state[16];          /* pending|shipped|imported|failed */
    char sm_batch[64];          /* "" if none */
    int64_t sm_state_at;        /* unix ms; 0 if never */
};

/*
 * Reads. Each appends to out and fills meta (may be NULL). Returns
 * STORE_OK, STORE_NOTFOUND or STORE_ERROR.
 *   client: {"client_id":N,"info":{..},"zones":[..],"users":[..],
 *            "import":{"state":..,"batch":..,"updated":..}}
 *   zones:  {"client_id":N,"zones":[..]}
 *   users:  {"client_id":N,"users":[..]}
 *   user:   {"client_id":N,"user":{..}}  (STORE_NOTFOUND if no such user)
 */
int store_read_client(struct store *s, const char *key, int64_t cid,
                      struct sbuf *out, struct store_meta *meta);
int store_read_zones(struct store *s, const char *key, int64_t cid,
                     struct sbuf *out);
int store_read_users(struct store *s, const char *key, int64_t cid,
                     struct sbuf *out);
int store_read_user(struct store *s, const char *key, int64_t cid,
                    int64_t user_no, struct sbuf *out);
/* (store_read_user: STORE_NOITEM when the client exists, the user not.) */

/*
 * The key's clients with their import state, by client id:
 * {"clients":[{"client_id":N,"state":..,"batch":..,"updated":..}],
 *  "count":n,"next_after":N|null}. state NULL = all; at most limit rows
 * with client_id > after.
 */
int store_read_import(struct store *s, const char *key, const char *state,
                      int64_t after, int64_t limit, struct sbuf *out);

/* Only the user object (for the 201 of POST /clients/users). */
int store_read_user_object(struct store *s, const char *key, int64_t cid,
                           int64_t user_no, struct sbuf *out);

/* Only the client's meta (version, state...): STORE_OK, STORE_NOTFOUND or
 * STORE_ERROR. */
int store_client_meta(struct store *s, const char *key, int64_t cid,
                      struct store_meta *meta);

/*
 * Load a client as validated jansson values for rendering: *info (object),
 * *zones and *users (arrays sorted by number). Caller decrefs all three.
 */
int store_load_client(struct store *s, const char *key, int64_t cid,
                      json_t **info, json_t **zones, json_t **users);

/* The changes a client can get. */
enum store_op {
    STORE_OP_CLIENT_PUT,        /* data: validated info; creates */
    STORE_OP_CLIENT_PATCH,      /* data: validated partial info */
    STORE_OP_CLIENT_DELETE,
    STORE_OP_ZONE_PUT,          /* data: validated zone */
    STORE_OP_ZONE_DELETE,       /* num: zone number */
    STORE_OP_USER_INSERT,       /* data: validated user; EXISTS if there */
    STORE_OP_USER_REPLACE,      /* data: validated user; NOITEM if not */
    STORE_OP_USER_DELETE,       /* num: user number */
};

/* Render a changed client at its new version from its stored JSON texts
 * (borrowed; canonical, see model.h) to *xml of *len bytes, which the
 * callback keeps owning: store_apply only reads it while storing (the
 * writer hands the same buffer on to the outbox). 0 or -1. */
typedef int (*store_render_fn)(void *arg, int64_t cid, int64_t version,
                               const char *info, size_t info_len,
                               const char *zones, size_t zones_len,
                               const char *users, size_t users_len,
                               char **xml, size_t *len);

/*
 * Apply one change to (key, cid): load the client, change it, write it back
 * (version+1, changed_at, state pending) and, when render is not NULL,
 * store its rendered XML in the same transaction. Call between store_begin
 * and store_commit. data is borrowed. *created (may be NULL) says whether
 * STORE_OP_CLIENT_PUT made a new client. client_json (may be NULL) gets the
 * whole client as store_read_client would answer it after the change, so
 * that an answer needs no read after the commit. Returns STORE_OK, STORE_NOTFOUND
 * (no such client), STORE_NOITEM, STORE_EXISTS or STORE_ERROR.
 */
int store_apply(struct store *s, const char *key, int64_t cid,
                enum store_op op, json_t *data, int64_t num,
                store_render_fn render, void *arg, int *created,
                struct sbuf *client_json);

/*
 * Writes without XML, one op each (store_apply with render NULL): call
 * between store_begin and store_commit. Each marks the client
 * changed (version+1, changed_at, state pending) except delete_client.
 * json arguments are validated objects (borrowed).
 */
int store_put_client(struct store *s, const char *key, int64_t cid,
                     json_t *info, int *created);
int store_patch_client(struct store *s, const char *key, int64_t cid,
                       json_t *patch);
int store_delete_client(struct store *s, const char *key, int64_t cid);
int store_put_zone(struct store *s, const char *key, int64_t cid,
                   json_t *zone);
int store_delete_zone(struct store *s, const char *key, int64_t cid,
                      int64_t zone_no);
int store_insert_user(struct store *s, const char *key, int64_t cid,
                      json_t *user);
int store_replace_user(struct store *s, const char *key, int64_t cid,
                       json_t *user);
int store_delete_user(struct store *s, const char *key, int64_t cid,
                      int64_t user_no);

/* Store the rendered XML of a client at its current version. */
int store_set_xml(struct store *s, const char *key, int64_t cid,
                  const char *xml, size_t len);

/*
 * The client's current XML and version: *xml malloc'ed (caller frees).
 * STORE_NOTFOUND if the client does not exist.
 */
int store_get_xml(struct store *s, const char *key, int64_t cid, char **xml,
                  size_t *len, int64_t *version);

/*
 * Call fn for every client in state 'pending' (oldest change first), with
 * its key, id, version and XML (borrowed for the call). Stops when fn
 * returns non-zero and returns that value; STORE_ERROR on SQL failure.
 * Used by reconcile at start-up.
 */
int store_foreach_pending(struct store *s,
                          int (*fn)(void *arg, const char *key, int64_t cid,
                                    int64_t version, const char *xml,
                                    size_t len),
                          void *arg);

/* Current time in unix milliseconds (the clock of changed_at). */
int64_t store_now_ms(void);

/* ---- import state (store_combine.c) ---- */

/*
 * The combiner's part of the store: which clients wait to ship, which were
 * shipped in which batch under which <__id>, and what Patriot's results
 * said. A client "waits" when its state is pending or failed and its outbox
 * row is at its current version. The combiner owns the table
 *   shipped(xml_id PRIMARY KEY, key_name, client_id, version, batch)
 * mapping an <__id> of an uploaded batch back to the client and version.
 */

/* Create the combiner's tables if missing (writer connection). 0 or -1. */
int store_combine_init(struct store *s);

/* A read snapshot (deferred BEGIN) and its end; the end is safe to call
 * without a snapshot. 0 or -1. */
int store_combine_snapshot_begin(struct store *s);
void store_combine_snapshot_end(struct store *s);

/* What store_combine_mark_result found (store_combine.h). */
struct store_shipped {
    char ss_key[128];
    int64_t ss_cid;
    int64_t ss_version;
    char ss_batch[64];
    int ss_changed;     /* 1: state set; 0: client changed or not shipped */
};

/* meta(k, v): set (inside or outside a transaction) and get. get returns
 * STORE_OK, STORE_NOTFOUND or STORE_ERROR; v is truncated to len. */
int store_combine_meta_set(struct store *s, const char *k, const char *v);
int store_combine_meta_get(struct store *s, const char *k, char *v,
                           size_t len);

/* Number of clients per state: counts[0..3] = pending, shipped, imported,
 * failed. 0 or -1. */
int store_combine_counts(struct store *s, int64_t counts[4]);

/* ---- metrics and health (issue 5) ---- */

/*
 * A trivial read of the database file (the schema version in meta), for
 * GET /healthz. 0 when the database answers, -1 when not (store_errmsg
 * says why).
 */
int store_ping(struct store *s);

/*
 * Call fn once per (key_name, state) that has clients, with their number
 * and the oldest changed_at (unix ms) among them; key and state are
 * borrowed for the call. One scan of the clients table (metrics: about a
 * millisecond per thousand clients). 0, or -1 on SQL failure.
 */
int store_count_by_state(struct store *s,
                         void (*fn)(void *arg, const char *key,
                                    const char *state, int64_t count,
                                    int64_t oldest_ms),
                         void *arg);

/*
 * meta(k) into v (truncated to len, NUL-terminated): STORE_OK,
 * STORE_NOTFOUND or STORE_ERROR. Works on read-only connections.
 */
int store_meta_get(struct store *s, const char *k, char *v, size_t len);
