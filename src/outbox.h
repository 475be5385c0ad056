/*
 * outbox.h - the thread that keeps XML_DIR/<key_name>/<client_id>.xml equal
 * to what the database holds.
 *
 * The writer marks a client dirty after each commit; this thread reads the
 * client's XML from the database with its own connection and writes the
 * file (temp + rename), or removes it when the client is gone. Repeated
 * changes to one client collapse into one file write. The database is the
 * truth: reconcile rebuilds whatever a crash left missing or stale.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "store.h"

struct outbox;

/*
 * Start the thread with its own read connection to db_path. Returns the
 * outbox (stop with outbox_stop) or NULL with a message in err.
 */
struct outbox *outbox_start(const char *xml_dir, const char *db_path,
                            char *err, size_t errlen);

/* Drain the queue, stop the thread, free. NULL-safe. */
void outbox_stop(struct outbox *ob);

/* Queue the client's file for rewriting (or removal). Coalesces. Any
 * thread. Returns 0, -1 on no memory (the next reconcile repairs it). */
int outbox_mark(struct outbox *ob, const char *key_name, int64_t cid);

/*
 * Queue the client's file with its XML at version (xml malloc'ed, taken:
 * freed by the outbox, also on failure), so that the thread need not read
 * it back from the database. Past a memory bound the XML is dropped and
 * read back instead. Any thread.
 */
void outbox_put(struct outbox *ob, const char *key_name, int64_t cid,
                int64_t version, char *xml, size_t len);

/*
 * On a read of a client at version: queue its file if this process has not
 * written that version, or the file is gone. Cheap: a lookup, and a stat
 * at most once a second per client (a file removed by hand comes back on
 * the first GET a second after the last one that found it).
 */
void outbox_check(struct outbox *ob, const char *key_name, int64_t cid,
                  int64_t version);

/* Clients waiting to be written. */
size_t outbox_queued(struct outbox *ob);

/* Block until the queue is empty (tests, shutdown). */
void outbox_flush(struct outbox *ob);

/*
 * Make every pending client's file equal to its XML in the database:
 * rewrite files that are missing or differ. Uses connection s (any thread
 * that owns it). When ob is not NULL, records the versions now on disk so
 * that outbox_check does not rewrite them again. *checked and *rewritten
 * (may be NULL) count files. Returns 0 or -1.
 */
int outbox_reconcile(struct store *s, const char *xml_dir,
                     struct outbox *ob, size_t *checked, size_t *rewritten);

/*
 * Remove what a crash can leave in the folder of each key of ks:
 * "<client_id>.xml" files of clients the database does not hold (a DELETE
 * answered just before a kill -9) and temporary files of interrupted
 * writes. Other files are left alone. Call at start-up, before the outbox
 * thread writes. *removed (may be NULL) counts the files removed. Returns
 * 0, or -1 when a folder could not be read or a file not removed.
 */
int outbox_prune(struct store *s, const char *xml_dir,
                 const struct keyset *ks, size_t *removed);
