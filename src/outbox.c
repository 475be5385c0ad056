/*
 * outbox.c - the outbox thread and the reconcile pass (see outbox.h).
 *
 * State: a hash table of every client this process has seen, keyed by
 * (key_name, client id), holding the version last written to its file and
 * whether it waits in the FIFO. One mutex guards it; file I/O happens
 * outside the lock.
 */
#include "outbox.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "patriot_xml.h"

#define OB_XML_MAX (4u << 20)      /* bytes of XML held for the thread */
#define OB_SEEN_MS 1000             /* a GET looks for a file this often */

struct ob_entry {
    struct ob_entry *oe_hnext;      /* hash chain */
    struct ob_entry *oe_qnext;      /* FIFO, when queued */
    int64_t oe_cid;
    int64_t oe_written;             /* version in the file; 0 unknown */
    char *oe_xml;                   /* XML handed over with the mark, */
    size_t oe_xml_len;              /* or NULL: read it from the store */
    int64_t oe_xml_version;
    int64_t oe_seen_ms;             /* the file was there then (monotonic) */
    int oe_queued;
    char oe_key[];                  /* key_name */
};

struct outbox {
    char *ob_dir;
    struct store *ob_store;
    pthread_t ob_thread;
    pthread_mutex_t ob_mu;
    pthread_cond_t ob_cv;           /* work or stop */
    pthread_cond_t ob_idle;         /* queue drained */
    struct ob_entry **ob_tab;
    size_t ob_tabsize, ob_count;
    struct ob_entry *ob_head, *ob_tail;
    size_t ob_queued;
    size_t ob_xml_bytes;            /* held in oe_xml, at most OB_XML_MAX */
    int ob_busy;                    /* the thread is writing one */
    int ob_stop;
};

static uint64_t
hash(const char *key, int64_t cid)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)cid;

    while (*key)
        h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ULL;
}

/* Under ob_mu. */
static struct ob_entry *
lookup(struct outbox *ob, const char *key, int64_t cid, int create)
{
    uint64_t h = hash(key, cid);
    struct ob_entry *e;
    size_t i = (size_t)(h & (ob->ob_tabsize - 1)), klen;

    for (e = ob->ob_tab[i]; e != NULL; e = e->oe_hnext)
        if (e->oe_cid == cid && strcmp(e->oe_key, key) == 0)
            return e;
    if (!create)
        return NULL;
    if (ob->ob_count >= ob->ob_tabsize) {      /* grow: load factor 1 */
        size_t n = ob->ob_tabsize * 2, j;
        struct ob_entry **t = calloc(n, sizeof(*t)), *next;

        if (t == NULL)
            return NULL;
        for (j = 0; j < ob->ob_tabsize; j++) {
            for (e = ob->ob_tab[j]; e != NULL; e = next) {
                size_t k = (size_t)(hash(e->oe_key, e->oe_cid) & (n - 1));

                next = e->oe_hnext;
                e->oe_hnext = t[k];
                t[k] = e;
            }
        }
        free(ob->ob_tab);
        ob->ob_tab = t;
        ob->ob_tabsize = n;
        i = (size_t)(h & (n - 1));
    }
    klen = strlen(key);
    if ((e = calloc(1, sizeof(*e) + klen + 1)) == NULL)
        return NULL;
    memcpy(e->oe_key, key, klen + 1);
    e->oe_cid = cid;
    e->oe_hnext = ob->ob_tab[i];
    ob->ob_tab[i] = e;
    ob->ob_count++;
    return e;
}

/* Under ob_mu. */
static void
enqueue(struct outbox *ob, struct ob_entry *e)
{
    if (e->oe_queued)
        return;
    e->oe_queued = 1;
    e->oe_qnext = NULL;
    if (ob->ob_tail)
        ob->ob_tail->oe_qnext = e;
    else
        ob->ob_head = e;
    ob->ob_tail = e;
    ob->ob_queued++;
    pthread_cond_signal(&ob->ob_cv);
}

/* Under ob_mu. */
static void
drop_xml(struct outbox *ob, struct ob_entry *e)
{
    if (e->oe_xml != NULL) {
        ob->ob_xml_bytes -= e->oe_xml_len;
        free(e->oe_xml);
        e->oe_xml = NULL;
    }
}

void
outbox_put(struct outbox *ob, const char *key_name, int64_t cid,
           int64_t version, char *xml, size_t len)
{
    struct ob_entry *e;

    pthread_mutex_lock(&ob->ob_mu);
    if ((e = lookup(ob, key_name, cid, 1)) != NULL) {
        drop_xml(ob, e);
        if (ob->ob_xml_bytes + len <= OB_XML_MAX) {
            e->oe_xml = xml;
            e->oe_xml_len = len;
            e->oe_xml_version = version;
            ob->ob_xml_bytes += len;
            xml = NULL;
        }
        enqueue(ob, e);
    }
    pthread_mutex_unlock(&ob->ob_mu);
    free(xml);
}

int
outbox_mark(struct outbox *ob, const char *key_name, int64_t cid)
{
    struct ob_entry *e;

    pthread_mutex_lock(&ob->ob_mu);
    if ((e = lookup(ob, key_name, cid, 1)) != NULL) {
        drop_xml(ob, e);        /* read the newest from the store */
        enqueue(ob, e);
    }
    pthread_mutex_unlock(&ob->ob_mu);
    return e ? 0 : -1;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
outbox_check(struct outbox *ob, const char *key_name, int64_t cid,
             int64_t version)
{
    struct ob_entry *e;
    int64_t now = mono_ms();
    int need = 0;

    pthread_mutex_lock(&ob->ob_mu);
    e = lookup(ob, key_name, cid, 0);
    if (e == NULL || (!e->oe_queued && e->oe_written != version))
        need = 1;
    else if (e->oe_queued)
        need = -1;      /* already on its way */
    else if (e->oe_seen_ms != 0 && now - e->oe_seen_ms < OB_SEEN_MS)
        need = -1;      /* seen a moment ago: no stat(2) on every GET */
    pthread_mutex_unlock(&ob->ob_mu);
    if (need == 0) {
        /* Written by us at this version: still there? */
        char *path = pxml_outbox_path(ob->ob_dir, key_name, cid);
        struct stat sb;

        need = path != NULL && stat(path, &sb) < 0 && errno == ENOENT;
        free(path);
        if (!need) {
            pthread_mutex_lock(&ob->ob_mu);
            if ((e = lookup(ob, key_name, cid, 0)) != NULL)
                e->oe_seen_ms = now;
            pthread_mutex_unlock(&ob->ob_mu);
        }
    }
    if (need > 0)
        outbox_mark(ob, key_name, cid);
}

size_t
outbox_queued(struct outbox *ob)
{
    size_t n;

    pthread_mutex_lock(&ob->ob_mu);
    n = ob->ob_queued;
    pthread_mutex_unlock(&ob->ob_mu);
    return n;
}

void
outbox_flush(struct outbox *ob)
{
    pthread_mutex_lock(&ob->ob_mu);
    while (ob->ob_queued > 0 || ob->ob_busy)
        pthread_cond_wait(&ob->ob_idle, &ob->ob_mu);
    pthread_mutex_unlock(&ob->ob_mu);
}

/* Write or remove one client's file: with the XML handed over (xml not
 * NULL, at version), else as the store has it now. Returns the version
 * written (0 for a removal), -1 on failure. */
static int64_t
sync_one(struct outbox *ob, const char *key, int64_t cid, char *xml,
         size_t len, int64_t version)
{
    char *path = NULL, *dbxml = NULL;
    int rc;

    if ((path = pxml_outbox_path(ob->ob_dir, key, cid)) == NULL)
        return -1;
    if (xml == NULL) {
        rc = store_get_xml(ob->ob_store, key, cid, &dbxml, &len, &version);
        if (rc == STORE_NOTFOUND) {
            if (unlink(path) < 0 && errno != ENOENT)
                log_warn("outbox: cannot remove %s", path);
            free(path);
            return 0;
        }
        if (rc != STORE_OK) {
            free(path);
            return -1;
        }
        xml = dbxml;
    }
    if (pxml_write_file(path, xml, len, 0) < 0) {
        log_warn("outbox: cannot write %s", path);
        version = -1;
    }
    free(dbxml);
    free(path);
    return version;
}

static void *
run(void *arg)
{
    struct outbox *ob = arg;
    struct ob_entry *e;
    char key[128], *xml;
    size_t xlen;
    int64_t cid, v, xver;

    pthread_setname_np(pthread_self(), "pa-outbox");
    pthread_mutex_lock(&ob->ob_mu);
    for (;;) {
        while (ob->ob_head == NULL && !ob->ob_stop) {
            pthread_cond_broadcast(&ob->ob_idle);
            pthread_cond_wait(&ob->ob_cv, &ob->ob_mu);
        }
        if (ob->ob_head == NULL)
            break;
        e = ob->ob_head;
        ob->ob_head = e->oe_qnext;
        if (ob->ob_head == NULL)
            ob->ob_tail = NULL;
        ob->ob_queued--;
        /* Clear the flag before reading: a change committed from now on
         * queues the client again, so the last file written is the
         * newest committed version. */
        e->oe_queued = 0;
        ob->ob_busy = 1;
        snprintf(key, sizeof(key), "%s", e->oe_key);
        cid = e->oe_cid;
        xml = e->oe_xml;            /* taken: a newer change replaces it */
        xlen = e->oe_xml_len;
        xver = e->oe_xml_version;
        e->oe_xml = NULL;
        ob->ob_xml_bytes -= xml ? xlen : 0;
        pthread_mutex_unlock(&ob->ob_mu);

        v = sync_one(ob, key, cid, xml, xlen, xver);
        free(xml);

        pthread_mutex_lock(&ob->ob_mu);
        ob->ob_busy = 0;
        if (v >= 0)
            e->oe_written = v;
        else if (!ob->ob_stop)
            enqueue(ob, e);     /* retry later; reconcile also repairs */
        if (v < 0) {
            pthread_mutex_unlock(&ob->ob_mu);
            usleep(100000);     /* a full disk must not spin */
            pthread_mutex_lock(&ob->ob_mu);
        }
    }
    ob->ob_busy = 0;
    pthread_cond_broadcast(&ob->ob_idle);
    pthread_mutex_unlock(&ob->ob_mu);
    return NULL;
}

struct outbox *
outbox_start(const char *xml_dir, const char *db_path, char *err,
             size_t errlen)
{
    struct outbox *ob = calloc(1, sizeof(*ob));

    if (ob == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ob->ob_mu, NULL);
    pthread_cond_init(&ob->ob_cv, NULL);
    pthread_cond_init(&ob->ob_idle, NULL);
    ob->ob_tabsize = 1024;
    if ((ob->ob_dir = strdup(xml_dir)) == NULL ||
        (ob->ob_tab = calloc(ob->ob_tabsize, sizeof(*ob->ob_tab))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((ob->ob_store = store_open(db_path, STORE_READONLY, err, errlen)) ==
        NULL)
        goto fail;
    if (pthread_create(&ob->ob_thread, NULL, run, ob) != 0) {
        snprintf(err, errlen, "cannot start the outbox thread");
        goto fail;
    }
    return ob;
fail:
    store_close(ob->ob_store);
    free(ob->ob_tab);
    free(ob->ob_dir);
    free(ob);
    return NULL;
}

void
outbox_stop(struct outbox *ob)
{
    size_t i;
    struct ob_entry *e, *next;

    if (ob == NULL)
        return;
    pthread_mutex_lock(&ob->ob_mu);
    ob->ob_stop = 1;
    pthread_cond_signal(&ob->ob_cv);
    pthread_mutex_unlock(&ob->ob_mu);
    pthread_join(ob->ob_thread, NULL);
    for (i = 0; i < ob->ob_tabsize; i++) {
        for (e = ob->ob_tab[i]; e != NULL; e = next) {
            next = e->oe_hnext;
            free(e->oe_xml);
            free(e);
        }
    }
    store_close(ob->ob_store);
    pthread_mutex_destroy(&ob->ob_mu);
    pthread_cond_destroy(&ob->ob_cv);
    pthread_cond_destroy(&ob->ob_idle);
    free(ob->ob_tab);
    free(ob->ob_dir);
    free(ob);
}

struct rec_ctx {
    const char *rc_dir;
    struct outbox *rc_ob;
    size_t rc_checked, rc_rewritten;
    int rc_failed;
};

static int
reconcile_one(void *arg, const char *key, int64_t cid, int64_t version,
              const char *xml, size_t len)
{
    struct rec_ctx *c = arg;
    char *path = pxml_outbox_path(c->rc_dir, key, cid);
    int eq;

    if (path == NULL)
        return -1;
    c->rc_checked++;
    eq = pxml_file_equals(path, xml, len);
    if (eq != 1) {
        if (pxml_write_file(path, xml, len, 1) < 0) {
            log_warn("reconcile: cannot write %s", path);
            c->rc_failed = 1;
            eq = -1;
        } else {
            c->rc_rewritten++;
            eq = 1;
        }
    }
    free(path);
    if (eq == 1 && c->rc_ob != NULL) {
        struct ob_entry *e;

        pthread_mutex_lock(&c->rc_ob->ob_mu);
        if ((e = lookup(c->rc_ob, key, cid, 1)) != NULL && !e->oe_queued)
            e->oe_written = version;
        pthread_mutex_unlock(&c->rc_ob->ob_mu);
    }
    return 0;
}

int
outbox_reconcile(struct store *s, const char *xml_dir, struct outbox *ob,
                 size_t *checked, size_t *rewritten)
{
    struct rec_ctx c = {xml_dir, ob, 0, 0, 0};
    int rc = store_foreach_pending(s, reconcile_one, &c);

    if (checked)
        *checked = c.rc_checked;
    if (rewritten)
        *rewritten = c.rc_rewritten;
    return rc != 0 || c.rc_failed ? -1 : 0;
}

/* "<1-16 digits>.xml": 1 and *cid set; else 0. */
static int
outbox_name(const char *name, int64_t *cid)
{
    size_t n = strlen(name), i;
    int64_t v = 0;

    if (n < 5 || n > 20 || strcmp(name + n - 4, ".xml") != 0)
        return 0;
    for (i = 0; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (name[i] - '0');
    }
    *cid = v;
    return v > 0;
}

int
outbox_prune(struct store *s, const char *xml_dir, const struct keyset *ks,
             size_t *removed)
{
    struct store_meta m;
    struct dirent *de;
    size_t i, count = 0;
    int rc = 0;

    for (i = 0; i < keys_count(ks); i++) {
        const char *key = keys_get(ks, i)->k_name;
        char *dir = NULL, *path = NULL;
        DIR *d;

        if (asprintf(&dir, "%s/%s", xml_dir, key) < 0)
            return -1;
        if ((d = opendir(dir)) == NULL) {
            if (errno != ENOENT) {
                log_warn("prune: %s", dir);
                rc = -1;
            }
            free(dir);
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            int64_t cid;
            int orphan;

            if (outbox_name(de->d_name, &cid))
                orphan = store_client_meta(s, key, cid, &m) ==
                         STORE_NOTFOUND;
            else
                orphan = strstr(de->d_name, ".xml.tmp.") != NULL;
            if (!orphan)
                continue;
            if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                rc = -1;
                break;
            }
            if (unlink(path) < 0 && errno != ENOENT) {
                log_warn("prune: cannot remove %s", path);
                rc = -1;
            } else {
                count++;
            }
            free(path);
        }
        closedir(d);
        free(dir);
    }
    if (removed != NULL)
        *removed = count;
    return rc;
}
