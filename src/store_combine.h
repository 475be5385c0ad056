/*
 * store_combine.h - the combiner's batch statements (store_combine.c),
 * beside the import-state calls that store.h declares: one mark session
 * per mark transaction, its statements prepared once (not per client).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store_mark;

/*
 * Every waiting client (state pending or failed) with its XML at its
 * version, oldest change first, sorting only the clients' keys, not their
 * XML: the order is taken from a materialized list and
 * checked row by row (STORE_ERROR, logged, if SQLite ever gave another).
 * fn gets the same arguments; its non-zero return stops the scan and is
 * returned. 0, or STORE_ERROR.
 */
int store_combine_scan_waiting(struct store *s,
                               int (*fn)(void *arg, const char *key,
                                         int64_t cid, int64_t version,
                                         const char *xml, size_t len),
                               void *arg);

/*
 * Prepare the statements of one mark transaction on s (borrowed, must
 * outlive it). Call inside store_begin/store_commit; free with
 * store_combine_mark_end (NULL-safe) before the commit or rollback.
 * NULL on error (logged).
 */
struct store_mark *store_combine_mark_begin(struct store *s);
void store_combine_mark_end(struct store_mark *m);

/*
 * Mark one client shipped in batch at at_ms if it still waits at version
 * and its XML at that version is xlen bytes long ((key, client, version)
 * names one content for ever: the store goes on counting the versions of a
 * deleted client; the length is a second guard), and record xml_id ->
 * (key, cid, version, batch). *changed = 1 when marked, 0 when the client
 * changed meanwhile. STORE_OK or STORE_ERROR.
 */
int store_combine_mark_one(struct store_mark *m, const char *key,
                           int64_t cid, int64_t version, size_t xlen,
                           const char *xml_id, const char *batch,
                           int64_t at_ms, int *changed);

/*
 * A Row of an earlier batch carried into batch: its shipped record moves
 * to batch and, if the client is still shipped at that version, its
 * import state's batch too. STORE_OK (also for an id not shipped by us) or
 * STORE_ERROR.
 */
int store_combine_mark_refold(struct store_mark *m, const char *xml_id,
                              const char *batch, int64_t at_ms);

/*
 * Record Patriot's result for xml_id (imported when ok, else failed) only
 * if the client is still shipped at the shipped version, with the
 * session's statements. Fills out. STORE_OK, STORE_NOTFOUND (id never shipped by us) or STORE_ERROR.
 */
int store_combine_mark_result(struct store_mark *m, const char *xml_id,
                              int ok, int64_t at_ms,
                              struct store_shipped *out);
