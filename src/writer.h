/*
 * writer.h - the one thread that changes the database: group commit.
 *
 * Handlers hand a validated change to the writer and suspend their
 * connection. The writer takes every queued change (up to a bound), applies
 * each inside a SAVEPOINT of one BEGIN IMMEDIATE transaction (a failing
 * change rolls back alone), renders each changed client's XML into the same
 * transaction, commits with one fsync, marks the clients for the outbox and
 * then completes every job. A completed job with status 2xx is on disk.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "keys.h"
#include "outbox.h"
#include "store.h"

struct writer_job {
    enum store_op wj_op;            /* store.h; data and num as there */
    const struct key *wj_key;       /* borrowed: the caller keeps the
                                       keyset alive until completion */
    int64_t wj_cid;
    int64_t wj_num;
    json_t *wj_data;                /* borrowed */
    /* Results, valid in wj_done: */
    int wj_rc;                      /* enum store_rc */
    int wj_created;                 /* STORE_OP_CLIENT_PUT made a new client */
    int wj_want_body;               /* set: wj_body gets the whole client */
    struct sbuf wj_body;            /* after a change; caller frees */
    char *wj_xml;                   /* internal: the XML for the outbox */
    size_t wj_xml_len;
    int64_t wj_version;
    /* Called once, from the writer thread, after the commit (or its
     * failure); must not block. */
    void (*wj_done)(struct writer_job *job);
    void *wj_arg;
    struct writer_job *wj_next;     /* internal */
};

struct writer;

/* Start the writer on connection s (taken: closed by writer_stop). */
struct writer *writer_start(struct store *s, struct outbox *ob, char *err,
                            size_t errlen);

/* Queue a job; wj_done is called later. Any thread. Returns 0, or -1 when
 * the writer is stopping (the job is not taken). */
int writer_submit(struct writer *w, struct writer_job *job);

/* Finish the queued jobs, stop the thread, close its connection, free.
 * NULL-safe. */
void writer_stop(struct writer *w);

/* Run n jobs synchronously as one transaction on connection s (tools,
 * bulk loads). Sets every wj_rc; wj_done is not called. Returns the number
 * of jobs that succeeded. */
int writer_apply_batch(struct store *s, struct writer_job **jobs, int n);

/* Run one job synchronously in the caller's thread on connection s (tests,
 * tools): begin, apply, render, commit. Returns wj_rc. */
int writer_apply_now(struct store *s, struct writer_job *job);

/* Changes committed and transactions run since start (statistics). */
void writer_stats(struct writer *w, uint64_t *changes, uint64_t *commits);
