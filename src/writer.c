/*
 * writer.c - group commit on the one write connection (see writer.h and
 * notes/sqlite.md "Write path").
 */
#include "writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "patriot_xml.h"

#define WRITER_BATCH 64

struct writer {
    struct store *w_store;
    struct outbox *w_outbox;
    pthread_t w_thread;
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;
    struct writer_job *w_head, *w_tail;
    int w_stop;
    uint64_t w_changes, w_commits;
};

/* Render into the transaction; the job keeps the buffer, so that the
 * outbox thread gets it after the commit and need not read it back. */
static int
render(void *arg, int64_t cid, int64_t version, const char *info,
       size_t info_len, const char *zones, size_t zones_len,
       const char *users, size_t users_len, char **xml, size_t *len)
{
    struct writer_job *j = arg;
    struct pxml_text t = {info, info_len, zones, zones_len, users,
                          users_len};

    free(j->wj_xml);
    j->wj_xml = NULL;
    if (pxml_render_text(j->wj_key, cid, &t, xml, len) < 0)
        return -1;
    j->wj_xml = *xml;
    j->wj_xml_len = *len;
    j->wj_version = version;
    return 0;
}

/* Apply one job inside the open transaction, its XML rendered with it. */
static int
apply(struct store *s, struct writer_job *j)
{
    return store_apply(s, j->wj_key->k_name, j->wj_cid, j->wj_op, j->wj_data,
                       j->wj_num, render, j, &j->wj_created,
                       j->wj_want_body ? &j->wj_body : NULL);
}

/* One transaction for n jobs. Sets every wj_rc. Returns the number of
 * jobs that changed something. */
static int
commit_batch(struct store *s, struct writer_job **jobs, int n)
{
    int i, ok = 0;

    if (store_begin(s) < 0) {
        for (i = 0; i < n; i++)
            jobs[i]->wj_rc = STORE_ERROR;
        return 0;
    }
    for (i = 0; i < n; i++) {
        struct writer_job *j = jobs[i];

        if (store_savepoint(s) < 0) {
            j->wj_rc = STORE_ERROR;
            continue;
        }
        j->wj_rc = apply(s, j);
        if (j->wj_rc != STORE_OK) {
            if (store_savepoint_rollback(s) < 0)
                goto fail;
        } else {
            if (store_savepoint_release(s) < 0)
                goto fail;
            ok++;
        }
    }
    if (store_commit(s) < 0)
        goto fail;
    return ok;
fail:
    log_warnx("writer: transaction failed, %d changes refused: %s", n,
              store_errmsg(s));
    store_rollback(s);
    for (i = 0; i < n; i++)
        jobs[i]->wj_rc = STORE_ERROR;
    return 0;
}

static void
drop_xml(struct writer_job **jobs, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        free(jobs[i]->wj_xml);
        jobs[i]->wj_xml = NULL;
    }
}

int
writer_apply_batch(struct store *s, struct writer_job **jobs, int n)
{
    int ok = commit_batch(s, jobs, n);

    drop_xml(jobs, n);
    return ok;
}

int
writer_apply_now(struct store *s, struct writer_job *job)
{
    commit_batch(s, &job, 1);
    drop_xml(&job, 1);
    return job->wj_rc;
}

static void *
run(void *arg)
{
    struct writer *w = arg;
    struct writer_job *jobs[WRITER_BATCH];
    int n, i, ok;

    pthread_setname_np(pthread_self(), "pa-writer");
    for (;;) {
        pthread_mutex_lock(&w->w_mu);
        while (w->w_head == NULL && !w->w_stop)
            pthread_cond_wait(&w->w_cv, &w->w_mu);
        if (w->w_head == NULL) {
            pthread_mutex_unlock(&w->w_mu);
            break;
        }
        for (n = 0; n < WRITER_BATCH && w->w_head != NULL; n++) {
            jobs[n] = w->w_head;
            w->w_head = w->w_head->wj_next;
        }
        if (w->w_head == NULL)
            w->w_tail = NULL;
        pthread_mutex_unlock(&w->w_mu);

        ok = commit_batch(w->w_store, jobs, n);
        pthread_mutex_lock(&w->w_mu);
        w->w_changes += (uint64_t)ok;
        w->w_commits++;
        pthread_mutex_unlock(&w->w_mu);
        for (i = 0; i < n; i++) {
            struct writer_job *j = jobs[i];

            if (j->wj_rc == STORE_OK && w->w_outbox != NULL) {
                if (j->wj_xml != NULL)
                    outbox_put(w->w_outbox, j->wj_key->k_name, j->wj_cid,
                               j->wj_version, j->wj_xml, j->wj_xml_len);
                else
                    outbox_mark(w->w_outbox, j->wj_key->k_name, j->wj_cid);
                j->wj_xml = NULL;       /* taken by outbox_put */
            }
            free(j->wj_xml);
            j->wj_xml = NULL;
        }
        for (i = 0; i < n; i++)
            jobs[i]->wj_done(jobs[i]);  /* may free the job: last use */
    }
    return NULL;
}

struct writer *
writer_start(struct store *s, struct outbox *ob, char *err, size_t errlen)
{
    struct writer *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        store_close(s);
        return NULL;
    }
    w->w_store = s;
    w->w_outbox = ob;
    pthread_mutex_init(&w->w_mu, NULL);
    pthread_cond_init(&w->w_cv, NULL);
    if (pthread_create(&w->w_thread, NULL, run, w) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        pthread_mutex_destroy(&w->w_mu);
        pthread_cond_destroy(&w->w_cv);
        store_close(s);
        free(w);
        return NULL;
    }
    return w;
}

int
writer_submit(struct writer *w, struct writer_job *job)
{
    pthread_mutex_lock(&w->w_mu);
    if (w->w_stop) {
        pthread_mutex_unlock(&w->w_mu);
        return -1;
    }
    job->wj_next = NULL;
    if (w->w_tail)
        w->w_tail->wj_next = job;
    else
        w->w_head = job;
    w->w_tail = job;
    pthread_cond_signal(&w->w_cv);
    pthread_mutex_unlock(&w->w_mu);
    return 0;
}

void
writer_stop(struct writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->w_mu);
    w->w_stop = 1;
    pthread_cond_signal(&w->w_cv);
    pthread_mutex_unlock(&w->w_mu);
    pthread_join(w->w_thread, NULL);
    store_close(w->w_store);
    pthread_mutex_destroy(&w->w_mu);
    pthread_cond_destroy(&w->w_cv);
    free(w);
}

void
writer_stats(struct writer *w, uint64_t *changes, uint64_t *commits)
{
    pthread_mutex_lock(&w->w_mu);
    *changes = w->w_changes;
    *commits = w->w_commits;
    pthread_mutex_unlock(&w->w_mu);
}
