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
 * Add one client of the batch to mark, by the caller's sequence number
 * seq (unique in the batch): it is marked by store_combine_mark_apply if
 * it still waits at version and its XML at that version is xlen bytes
 * long ((key, client, version) names one content for ever: the store goes
 * on counting the versions of a deleted client; the length is a second
 * guard), and xml_id -> (key, cid, version, batch) is recorded.
 * STORE_OK or STORE_ERROR.
 */
int store_combine_mark_add(struct store_mark *m, size_t seq, const char *key,
                           int64_t cid, int64_t version, size_t xlen,
                           const char *xml_id);

/*
 * Mark every client added shipped in batch at at_ms (those still
 * waiting as added); *marked = how many. Then unmarked(arg, seq) is
 * called for each client added that was not marked (it changed
 * meanwhile), in seq order; its -1 stops that (STORE_ERROR).
 * STORE_OK or STORE_ERROR.
 */
int store_combine_mark_apply(struct store_mark *m, const char *batch,
                             int64_t at_ms, size_t *marked,
                             int (*unmarked)(void *arg, size_t seq),
                             void *arg);

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
