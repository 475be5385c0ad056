/*
 * combine.h - the batch of patriot-combine: pick waiting clients, combine
 * their Rows into one clients.xml, read Patriot's results of the previous
 * batch, rotate and upload over SMB, record what shipped.
 *
 * One run (combine_run), DB mode:
 *   1. remove in-flight files a killed run left (XML_DIR/<key>/.inflight.
 *      <id>.xml, or the old layout XML_DIR/.inflight/...): the database
 *      is the truth (--from-dir: put them back, they are the only copy)
 *   2. SMB on: download the share's clients.xml and results; processed ->
 *      clients imported/failed (failed: logged, re-queued unless changed);
 *      unprocessed -> its Rows are folded into this batch (streamed)
 *      SMB off: READY_DIR/clients.xml still there (nobody carried it) is
 *      folded the same way, so no batch is overwritten unread
 *   3-5. one pass over every waiting client (oldest change first, one
 *      read snapshot): the first MAX are checked and their outbox files
 *      moved to <key>/.inflight.<id>.xml on two threads, their Rows (the
 *      database's bytes) streamed to READY_DIR/clients.xml (temp +
 *      rename), the others reconciled (file rewritten if missing or
 *      stale); one Row per __id, the last wins
 *   6. SMB on: upload to a temporary name, rotate the remote clients.xml to
 *      clients_YYYYMMDD_HHMMSS.xml, rename the upload to clients.xml
 *   7. success: mark shipped only a client still at the version written
 *      (a version names one XML for ever: tombstones), client_state.json
 *      (streamed), delete in-flight files and an outbox copy of exactly
 *      what was shipped; a file of a client not marked goes back only if
 *      it still waits with exactly that XML. Failure: mark nothing, settle
 *      files the same way.
 * --from-dir mode: no database; the files under XML_DIR are the batch,
 * taken oldest first a walk at a time, steps 4-5 in one pass (each file
 * moved, read once, checked, its Row copied from the same buffer; two
 * threads move, read and check).
 * Memory does not grow with the batch: what a run must remember of each
 * Row is in a ledger file in READY_DIR (see docs/COMBINE.md).
 */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "combine_config.h"   /* struct combine_cfg, combine_next_run */
#include "results.h"          /* combine_results_decode, _ok */
#include "rowcheck.h"         /* combine_row_check */

#define COMBINE_DRY_RUN  0x1    /* build clients.xml, change nothing else */
#define COMBINE_FROM_DIR 0x2    /* no database: files under XML_DIR */

struct combine;

/*
 * A combiner for cfg (borrowed, must outlive it). Reads the SMB password
 * file when SMB is on (fails if group/other can read it), opens the
 * database in DB mode. stop (may be NULL) is checked between steps.
 * Returns NULL with a message in err. Free with combine_free (NULL-safe).
 */
struct combine *combine_new(const struct combine_cfg *cfg, unsigned flags,
                            volatile sig_atomic_t *stop, char *err,
                            size_t errlen);
void combine_free(struct combine *cb);

enum combine_rc {
    COMBINE_OK = 0,         /* a batch was built (and shipped) */
    COMBINE_NOTHING = 1,    /* nothing waiting: no batch */
    COMBINE_STOPPED = 2,    /* stop requested: nothing marked, files back */
    COMBINE_FAILED = -1,    /* logged; nothing marked, files back */
};

/* What a run did. */
struct combine_stats {
    size_t cs_rows;         /* Rows in clients.xml */
    size_t cs_local;        /* clients picked this run */
    size_t cs_folded;       /* Rows carried from an unprocessed batch */
    size_t cs_skipped;      /* malformed, skipped */
    size_t cs_marked;       /* marked shipped */
    size_t cs_imported;     /* results: imported */
    size_t cs_failed;       /* results: failed */
    char cs_batch[32];      /* batch id, "" if none */
    char cs_error[512];     /* reason of COMBINE_FAILED */
};

/* One run. stats may be NULL. */
enum combine_rc combine_run(struct combine *cb, struct combine_stats *stats);

/* Print counts per import state, the last batch and the last error
 * (DB mode). 0, or -1 with a message on out. */
int combine_status(const struct combine_cfg *cfg, FILE *out);
