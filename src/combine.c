/*
 * combine.c - one batch of patriot-combine (see combine.h for the steps).
 *
 * Memory: flat whatever the batch. Rows are never held in memory (one file
 * or one client's XML per read buffer, 256 buffers at most); what a run
 * must remember of each Row (its __id, where its line is, the client and
 * version, flags) is a fixed-size record in the ledger, an unnamed file in
 * READY_DIR read back in blocks; ids are sorted in bounded partitions; a
 * folded batch and client_state.json are streamed. The combined file is
 * written through a 64 KiB stdio buffer to a temporary name and renamed.
 *
 * Its parts with a job of their own are modules of their own (linked into
 * the same library): rowcheck.c (checking documents, SAX, no tree),
 * results.c (decoding Patriot's results file, the ids of its success
 * lines), jscan.c (reading the old client_state.json one entry at a
 * time; rewriting it stays here, it walks the ledger) and
 * combine_config.c (the configuration and the schedule).
 */
#include "combine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "combine_config.h"
#include "log.h"
#include "model.h"
#include "jscan.h"
#include "patriot_xml.h"
#include "results.h"
#include "rowcheck.h"
#include "smb.h"
#include "store.h"
#include "store_combine.h"

#define ID_MAX ROWCHECK_ID_MAX
#define INFLIGHT ".inflight"            /* the folder of the old layout */
#define INFLIGHT_PREFIX ".inflight."    /* <dir>/.inflight.<name> */

/* ---- small helpers -------------------------------------------------- */

static char *
path_join(const char *a, const char *b)
{
    char *p;

    if (asprintf(&p, "%s/%s", a, b) < 0)
        return NULL;
    return p;
}

/* mkdir -p of the parent of path. 0 or -1. */
static int
mkparent(const char *path)
{
    char buf[4096];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((p = strrchr(buf, '/')) == NULL)
        return 0;
    *p = '\0';
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0770) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (buf[0] != '\0' && mkdir(buf, 0770) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Read a whole file into a malloc'ed buffer (NUL-terminated). 0, 1 if
 * missing, -1 on error (errno). */
static int
read_file(const char *path, char **out, size_t *len)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    int fd, saved;

    *out = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 1 : -1;
    if (fstat(fd, &sb) < 0)
        goto fail;
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
        goto fail;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    *out = buf;
    *len = got;
    return 0;
fail:
    saved = errno;
    close(fd);
    free(buf);
    errno = saved;
    return -1;
}

/* ---- the combiner --------------------------------------------------- */

/*
 * The ledger: one fixed-size record per Row written to the combined file
 * (folded Rows first, then the local ones, in file order), kept in an
 * unnamed temporary file in READY_DIR, so that a run's memory does not grow
 * with its batch. It is read back in blocks: to cut superseded Rows, to
 * mark, to write client_state.json and to settle the in-flight files.
 */
#define LR_FOLDED 0x1       /* a Row of the previous batch */
#define LR_DEAD 0x2         /* superseded by a later Row of its __id */
#define LR_MOVED 0x4        /* DB mode: its outbox file is in flight */
#define LR_MARKED 0x8       /* DB mode: marked shipped */
#define LR_COPY 0x10        /* DB mode: an outbox copy was moved in flight */

struct lrec {
    int64_t lr_out;         /* where its line starts in the combined file */
    int64_t lr_cid, lr_version;     /* DB mode */
    uint64_t lr_hash;       /* of lr_id */
    uint32_t lr_len;        /* bytes of "<Row>...</Row>" */
    uint32_t lr_xlen;       /* DB mode: bytes of the client's XML */
    uint32_t lr_flags;
    char lr_key[68];        /* DB mode: the key ("" otherwise) */
    char lr_id[ID_MAX];     /* __id */
};

#define LG_BLOCK 256        /* records read or buffered at once */

struct ledger {
    int lg_fd;
    size_t lg_n;            /* records (written or buffered) */
    struct lrec lg_buf[LG_BLOCK];   /* appended, not yet written */
    size_t lg_nbuf;
};

struct combine {
    const struct combine_cfg *cb_cfg;
    unsigned cb_flags;
    volatile sig_atomic_t *cb_stop;
    char cb_password[256];
    struct store *cb_store;
    char *cb_inflight_old;  /* XML_DIR/.inflight: layout before 2026-11 */
    FILE *cb_log;
    /* one run */
    struct ledger *cb_lg;
    size_t cb_n;            /* local Rows written */
    size_t cb_nfold;        /* folded Rows written */
    struct smb *cb_smb;
    char cb_batch[32];      /* 20250101T125500Z */
    char cb_stamp[32];      /* 20250101_125500 (local) */
    char cb_iso[32];        /* 2025-01-01T12:55:00 (local) */
    int64_t cb_now_ms;
    char cb_err[512];
    struct combine_stats *cb_stats;
    int cb_removed;         /* DB mode: in-flight files removed during the
                               mark (every one, when cb_removed_all) */
    int cb_removed_all;
};

static void clog_(struct combine *cb, int lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log to stderr (log.h) and append to COMBINE_LOG_FILE. lvl: 0 info,
 * 1 warning. A warning also becomes the run's error text. */
static void
clog_(struct combine *cb, int lvl, const char *fmt, ...)
{
    char msg[1024], ts[32];
    struct tm tm;
    time_t now = time(NULL);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lvl)
        log_warnx("%s", msg);
    else
        log_info("%s", msg);
    if (lvl && cb->cb_err[0] == '\0')   /* the first: the reason */
        snprintf(cb->cb_err, sizeof(cb->cb_err), "%.500s", msg);
    if (cb->cb_log != NULL) {
        localtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(cb->cb_log, "%s %s %s\n", ts, lvl ? "WARNING" : "INFO", msg);
        fflush(cb->cb_log);
    }
}

#define LOGI(...) clog_(cb, 0, __VA_ARGS__)
#define LOGW(...) clog_(cb, 1, __VA_ARGS__)

struct combine *
combine_new(const struct combine_cfg *cfg, unsigned flags,
            volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    struct combine *cb;

    if ((cb = calloc(1, sizeof(*cb))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cb->cb_cfg = cfg;
    cb->cb_flags = flags;
    cb->cb_stop = stop;
    if (cfg->cc_smb_enabled &&
        smb_read_password_file(cfg->cc_smb_password_file, cb->cb_password,
                               sizeof(cb->cb_password), err, errlen) < 0)
        goto fail;
    if ((cb->cb_inflight_old = path_join(cfg->cc_xml_dir, INFLIGHT)) ==
        NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->cc_log_file[0] != '\0' && !(flags & COMBINE_DRY_RUN)) {
        if (mkparent(cfg->cc_log_file) < 0 ||
            (cb->cb_log = fopen(cfg->cc_log_file, "ae")) == NULL) {
            snprintf(err, errlen, "COMBINE_LOG_FILE %s: %s",
                     cfg->cc_log_file, strerror(errno));
            goto fail;
        }
    }
    if (!(flags & COMBINE_FROM_DIR)) {
        cb->cb_store = store_open(cfg->cc_data_file,
                                  (flags & COMBINE_DRY_RUN) ? STORE_READONLY
                                                            : 0,
                                  err, errlen);
        if (cb->cb_store == NULL)
            goto fail;
        if (!(flags & COMBINE_DRY_RUN) &&
            store_combine_init(cb->cb_store) < 0) {
            snprintf(err, errlen, "%s: cannot create the combiner's tables",
                     cfg->cc_data_file);
            goto fail;
        }
    }
    return cb;
fail:
    combine_free(cb);
    return NULL;
}

void
combine_free(struct combine *cb)
{
    if (cb == NULL)
        return;
    store_close(cb->cb_store);
    if (cb->cb_log != NULL)
        fclose(cb->cb_log);
    free(cb->cb_inflight_old);
    memset(cb->cb_password, 0, sizeof(cb->cb_password));
    free(cb);
}

static int
stopping(struct combine *cb)
{
    return cb->cb_stop != NULL && *cb->cb_stop;
}

/* ---- the ledger ----------------------------------------------------- */

/* An unnamed file in dir (O_TMPFILE, else a named one removed at once). */
static int
tmpfile_in(const char *dir)
{
    char *p = NULL;
    int fd;

    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
                    errno != EINVAL))
        return fd;
    if (asprintf(&p, "%s/.combine.ledger.XXXXXX", dir) < 0)
        return -1;
    if ((fd = mkostemp(p, O_CLOEXEC)) >= 0)
        unlink(p);
    free(p);
    return fd;
}

static struct ledger *
lg_open(const char *dir)
{
    struct ledger *lg;

    if ((lg = calloc(1, sizeof(*lg))) == NULL)
        return NULL;
    if ((lg->lg_fd = tmpfile_in(dir)) < 0) {
        free(lg);
        return NULL;
    }
    return lg;
}

static void
lg_close(struct ledger *lg)
{
    if (lg == NULL)
        return;
    close(lg->lg_fd);
    free(lg);
}

static int
lg_pwrite(struct ledger *lg, const struct lrec *r, size_t n, size_t at)
{
    size_t len = n * sizeof(*r);

    if (pwrite(lg->lg_fd, r, len, (off_t)(at * sizeof(*r))) !=
        (ssize_t)len) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

static int
lg_flush(struct ledger *lg)
{
    if (lg->lg_nbuf == 0)
        return 0;
    if (lg_pwrite(lg, lg->lg_buf, lg->lg_nbuf, lg->lg_n - lg->lg_nbuf) < 0)
        return -1;
    lg->lg_nbuf = 0;
    return 0;
}

/* Append r (buffered). 0 or -1 (errno). */
static int
lg_append(struct ledger *lg, const struct lrec *r)
{
    if (lg->lg_nbuf == LG_BLOCK && lg_flush(lg) < 0)
        return -1;
    lg->lg_buf[lg->lg_nbuf++] = *r;
    lg->lg_n++;
    return 0;
}

/* Read up to n records from index at (after lg_flush). The number read,
 * or -1 (errno). */
static ssize_t
lg_read(struct ledger *lg, struct lrec *r, size_t n, size_t at)
{
    ssize_t got;

    if (at >= lg->lg_n)
        return 0;
    if (n > lg->lg_n - at)
        n = lg->lg_n - at;
    got = pread(lg->lg_fd, r, n * sizeof(*r), (off_t)(at * sizeof(*r)));
    if (got != (ssize_t)(n * sizeof(*r))) {
        if (got >= 0)
            errno = EIO;
        return -1;
    }
    return (ssize_t)n;
}

/* Drop every record (a fold that turned out malformed). */
static void
lg_reset(struct ledger *lg)
{
    lg->lg_n = lg->lg_nbuf = 0;
    (void)ftruncate(lg->lg_fd, 0);
}

static void
lrec_id(struct lrec *r, const char *id)
{
    snprintf(r->lr_id, sizeof(r->lr_id), "%s", id);
    r->lr_hash = results_hash(r->lr_id);
}

/* ---- paths ---------------------------------------------------------- */

static char *
outbox_path(struct combine *cb, const char *rel)
{
    return path_join(cb->cb_cfg->cc_xml_dir, rel);
}

/*
 * The in-flight name of rel ("<dir>/<name>"): "<dir>/.inflight.<name>" in
 * the same folder (a dot name: the walk of --from-dir and the API's prune
 * skip it). A rename within one folder takes only that folder's lock, not
 * the file system's rename lock, so the renames of two folders run at the
 * same time.
 */
static char *
inflight_path(struct combine *cb, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    char *p;

    if (slash == NULL) {
        if (asprintf(&p, "%s/%s%s", cb->cb_cfg->cc_xml_dir, INFLIGHT_PREFIX,
                     rel) < 0)
            return NULL;
    } else if (asprintf(&p, "%s/%.*s/%s%s", cb->cb_cfg->cc_xml_dir,
                        (int)(slash - rel), rel, INFLIGHT_PREFIX,
                        slash + 1) < 0) {
        return NULL;
    }
    return p;
}

/* Put an in-flight file back at path unless a newer file is there (link
 * fails with EEXIST), then drop the in-flight name. 1 put back, 0 dropped
 * (a newer file is there), -1 on error (logged). */
static int
put_back(struct combine *cb, const char *inflight, const char *path)
{
    int rc = 1;

    if (link(inflight, path) < 0) {
        if (errno == ENOENT && access(inflight, F_OK) == 0 &&
            mkparent(path) == 0 && link(inflight, path) == 0)
            goto unlink;
        if (errno != EEXIST) {
            LOGW("cannot put back %s: %s", inflight, strerror(errno));
            return -1;
        }
        rc = 0;
    }
unlink:
    if (unlink(inflight) < 0 && errno != ENOENT) {
        LOGW("cannot remove %s: %s", inflight, strerror(errno));
        return -1;
    }
    return rc;
}

/* ---- walking the outbox --------------------------------------------- */

enum walk_kind {
    WK_XML,         /* a *.xml file (not a dot name) */
    WK_INFLIGHT,    /* ".inflight.<name>.xml": rel is the outbox name */
};

typedef int (*walk_fn)(void *arg, const char *rel, enum walk_kind k,
                       int dfd, const char *name);

/*
 * Walk root/rel recursively (dot folders skipped) and call fn for every
 * file of the kinds in want (1 << enum walk_kind) with its path relative
 * to root, the open folder dfd and the name in it. part/nparts: only names
 * whose hash is part modulo nparts (two threads share a walk). A missing
 * root is empty. 0, or -1 (fn's failure, or errno).
 */
static int
walk(const char *root, const char *rel, unsigned want, unsigned part,
     unsigned nparts, walk_fn fn, void *arg)
{
    char *dir = rel[0] ? path_join(root, rel) : strdup(root);
    size_t pl = strlen(INFLIGHT_PREFIX);
    struct dirent *de;
    DIR *d = NULL;
    int rc = -1;

    if (dir == NULL)
        return -1;
    if ((d = opendir(dir)) == NULL) {
        rc = errno == ENOENT ? 0 : -1;
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        unsigned char t = de->d_type;
        enum walk_kind k;
        struct stat sb;
        char *r;
        int sub;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (t == DT_UNKNOWN || t == DT_LNK) {
            if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            t = S_ISDIR(sb.st_mode) ? DT_DIR
                : S_ISREG(sb.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (t == DT_DIR) {
            if (name[0] == '.')
                continue;
            if ((rel[0] ? asprintf(&r, "%s/%s", rel, name)
                        : asprintf(&r, "%s", name)) < 0)
                goto done;
            sub = walk(root, r, want, part, nparts, fn, arg);
            free(r);
            if (sub < 0)
                goto done;
            continue;
        }
        if (t != DT_REG || nl <= 4 || strcmp(name + nl - 4, ".xml") != 0)
            continue;
        if (name[0] != '.')
            k = WK_XML;
        else if (nl > pl + 4 && strncmp(name, INFLIGHT_PREFIX, pl) == 0)
            k = WK_INFLIGHT;
        else
            continue;
        if (!(want & (1u << k)) ||
            (nparts > 1 && results_hash(name) % nparts != part))
            continue;
        if ((rel[0] ? asprintf(&r, "%s/%s", rel,
                               k == WK_INFLIGHT ? name + pl : name)
                    : asprintf(&r, "%s",
                               k == WK_INFLIGHT ? name + pl : name)) < 0)
            goto done;
        sub = fn(arg, r, k, dirfd(d), name);
        free(r);
        if (sub < 0)
            goto done;
    }
    rc = 0;
done:
    if (d != NULL)
        closedir(d);
    free(dir);
    return rc;
}

/* ---- recovery: in-flight files a killed run left -------------------- */

/* Remove the folders under path, and path, that are empty (the old
 * layout's XML_DIR/.inflight once recovered); a folder that is not empty
 * stays. */
static void
rmdir_empty(const char *path)
{
    struct dirent *de;
    DIR *d;

    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char *sub;

        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
            strcmp(de->d_name, "..") == 0)
            continue;
        if ((sub = path_join(path, de->d_name)) != NULL)
            rmdir_empty(sub);
        free(sub);
    }
    closedir(d);
    (void)rmdir(path);
}

/*
 * DB mode: removed, never put back: it may belong to a client deleted or
 * changed since, and the database still has every waiting client (the
 * run picks it, or reconcile rewrites its file). --from-dir: it is the
 * only copy: put back unless a newer outbox file exists.
 */
static void
recover_file(struct combine *cb, const char *in, const char *out,
             const char *rel)
{
    if (cb->cb_store != NULL) {
        LOGI("removing %s left in flight by an earlier run (the database "
             "is the truth: the run ships it or rewrites its file)",
             rel);
        if (unlink(in) < 0 && errno != ENOENT)
            LOGW("cannot remove %s: %s", in, strerror(errno));
    } else {
        LOGI("putting back %s left in flight by an earlier run", rel);
        (void)put_back(cb, in, out);
    }
}

/* recover_file for the in-flight file in (taken: freed; NULL on no
 * memory) of the outbox name rel. 0 (a walk goes on). */
static int
recover_take(struct combine *cb, char *in, const char *rel)
{
    char *out = outbox_path(cb, rel);

    if (in != NULL && out != NULL)
        recover_file(cb, in, out, rel);
    free(in);
    free(out);
    return 0;
}

static int
recover_new(void *arg, const char *rel, enum walk_kind k, int dfd,
            const char *name)
{
    (void)k;
    (void)dfd;
    (void)name;
    return recover_take(arg, inflight_path(arg, rel), rel);
}

/* The layout before 2026-11: XML_DIR/.inflight/<rel> (an upgrade). */
static int
recover_old(void *arg, const char *rel, enum walk_kind k, int dfd,
            const char *name)
{
    struct combine *cb = arg;

    (void)k;
    (void)dfd;
    (void)name;
    return recover_take(cb, path_join(cb->cb_inflight_old, rel), rel);
}

/* ---- settling files against the database (DB mode) ------------------ */

/* What the database says now about a client and the bytes of a file. */
enum verdict {
    V_ERROR = -1,
    V_GONE,         /* no such client */
    V_DIFFERS,      /* its current XML is not these bytes */
    V_WAITING,      /* these bytes; pending or failed */
    V_SHIPPED,      /* these bytes; shipped at version */
    V_OTHER,        /* these bytes; another state or version */
};

static enum verdict
db_verdict(struct combine *cb, const char *key, int64_t cid, int64_t version,
           const char *buf, size_t len)
{
    struct store_meta m;
    enum verdict v = V_ERROR;
    char *xml = NULL;
    size_t xlen;
    int64_t xver;
    int rc;

    if (store_combine_snapshot_begin(cb->cb_store) < 0)
        return V_ERROR;
    rc = store_client_meta(cb->cb_store, key, cid, &m);
    if (rc == STORE_NOTFOUND) {
        v = V_GONE;
        goto done;
    }
    if (rc != STORE_OK)
        goto done;
    rc = store_get_xml(cb->cb_store, key, cid, &xml, &xlen, &xver);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        goto done;
    if (rc == STORE_NOTFOUND || xlen != len || memcmp(xml, buf, len) != 0)
        v = V_DIFFERS;
    else if (strcmp(m.sm_state, "pending") == 0 ||
             strcmp(m.sm_state, "failed") == 0)
        v = V_WAITING;
    else if (strcmp(m.sm_state, "shipped") == 0 && m.sm_version == version)
        v = V_SHIPPED;
    else
        v = V_OTHER;
done:
    store_combine_snapshot_end(cb->cb_store);
    free(xml);
    return v;
}

/* Link in back to out unless a newer file is there, and drop in. If the
 * client is gone by then (the API removed its file before the link), the
 * file linked is removed again: a client deleted meanwhile never gets its
 * file back. */
static void
restore(struct combine *cb, const char *in, const char *out, const char *key,
        int64_t cid)
{
    struct store_meta m;
    struct stat a, b;

    if (stat(in, &a) < 0 || put_back(cb, in, out) != 1)
        return;
    if (store_client_meta(cb->cb_store, key, cid, &m) == STORE_NOTFOUND &&
        stat(out, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
        unlink(out) == 0)
        LOGI("%s: client deleted meanwhile, its file removed", out);
}

/* The outbox name of a DB-mode record ("<key>/<cid>.xml"). */
static char *
rec_rel(const struct lrec *r)
{
    char *rel;

    if (asprintf(&rel, "%s/%lld.xml", r->lr_key, (long long)r->lr_cid) < 0)
        return NULL;
    return rel;
}

/* DB mode: a client not marked whose in-flight file in was removed during
 * the mark (combine_run) gets it back from the database if it still waits
 * at the version picked, and then goes back as a file kept in flight would
 * (restore: never over a newer file, not for a client deleted meanwhile).
 * A client at a newer version: the API writes its file (reconcile repairs
 * a missing one). */
static void
db_put_back_removed(struct combine *cb, const struct lrec *r, const char *in,
                    const char *out)
{
    struct store_meta m;
    char *xml = NULL;
    size_t xlen;
    int64_t xver;
    int back = 0;

    if (store_combine_snapshot_begin(cb->cb_store) < 0)
        return;
    if (store_client_meta(cb->cb_store, r->lr_key, r->lr_cid, &m) ==
            STORE_OK &&
        (strcmp(m.sm_state, "pending") == 0 ||
         strcmp(m.sm_state, "failed") == 0) &&
        store_get_xml(cb->cb_store, r->lr_key, r->lr_cid, &xml, &xlen,
                      &xver) == STORE_OK &&
        xver == r->lr_version)
        back = 1;
    store_combine_snapshot_end(cb->cb_store);
    if (back && pxml_write_file(in, xml, xlen, 0) < 0)
        LOGW("cannot write %s again: %s (the next reconcile does)", in,
             strerror(errno));
    else if (back)
        restore(cb, in, out, r->lr_key, r->lr_cid);
    free(xml);
}

/* DB mode: the in-flight file of a client not marked goes back only if
 * its client still waits with exactly these bytes. Else it is dropped:
 * the client was deleted, or changed (the API writes the newer file;
 * reconcile repairs a missing one). */
static void
db_put_back(struct combine *cb, const struct lrec *r)
{
    char *rel = rec_rel(r), *in = NULL, *out = NULL, *buf = NULL;
    size_t len;

    if (rel == NULL || (in = inflight_path(cb, rel)) == NULL ||
        (out = outbox_path(cb, rel)) == NULL)
        goto done;
    switch (read_file(in, &buf, &len)) {
    case 0:
        break;
    case 1:
        if (cb->cb_removed)     /* removed during the mark: from the DB */
            db_put_back_removed(cb, r, in, out);
        goto done;
    default:
        LOGW("cannot read %s: %s", in, strerror(errno));
        goto done;
    }
    switch (db_verdict(cb, r->lr_key, r->lr_cid, r->lr_version, buf, len)) {
    case V_WAITING:
        restore(cb, in, out, r->lr_key, r->lr_cid);
        break;
    case V_ERROR:       /* cannot tell: keep the file, as before */
        (void)put_back(cb, in, out);
        break;
    default:
        LOGI("not putting back %s: its client was deleted or changed "
             "during the run",
             rel);
        if (unlink(in) < 0 && errno != ENOENT)
            LOGW("cannot remove %s: %s", in, strerror(errno));
        break;
    }
done:
    free(buf);
    free(in);
    free(out);
    free(rel);
}

/* DB mode, after the mark: an outbox file of a client shipped by this run
 * (the API rewrote it while its file was in flight: a GET) was moved to its
 * in-flight name by settle_half (so that a file the API writes meanwhile
 * is never the one removed). It is removed if it holds exactly the XML
 * shipped and the client is still shipped at that version; a file that
 * differs is a newer change and goes back. */
static void
drop_shipped_copy(struct combine *cb, const struct lrec *r)
{
    char *rel = rec_rel(r), *in = NULL, *out = NULL, *buf = NULL;
    size_t len;

    if (rel == NULL || (in = inflight_path(cb, rel)) == NULL ||
        (out = outbox_path(cb, rel)) == NULL)
        goto done;
    if (read_file(in, &buf, &len) != 0) {
        LOGW("cannot read %s: %s", in, strerror(errno));
        restore(cb, in, out, r->lr_key, r->lr_cid);
        goto done;
    }
    if (db_verdict(cb, r->lr_key, r->lr_cid, r->lr_version, buf, len) ==
        V_SHIPPED) {
        if (unlink(in) < 0)
            LOGW("cannot remove %s: %s", in, strerror(errno));
        else
            LOGI("removed %s: a copy of what was shipped", rel);
    } else {
        restore(cb, in, out, r->lr_key, r->lr_cid);
    }
done:
    free(buf);
    free(in);
    free(out);
    free(rel);
}

/* ---- writing clients.xml -------------------------------------------- */

static const char head[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n";
static const char tail[] = "</Clients>\n";

/* The combined file being written. */
struct fdb {
    FILE *b_f;
    char *b_vbuf;
    off_t b_pos;            /* bytes written */
    off_t b_started;        /* bytes whose write-back has been started */
};

/* Write-back is started every this many bytes, so that the disk writes
 * while the run goes on and the fsync at the end waits for little. */
#define FDB_WRITEBACK (8 << 20)

/* One Row line ("  <Row>...</Row>\n"); *at = where the line starts. */
static int
fdb_row(struct fdb *b, const char *row, size_t len, int64_t *at)
{
    *at = (int64_t)b->b_pos;
    if (fwrite("  ", 1, 2, b->b_f) != 2 ||
        fwrite(row, 1, len, b->b_f) != len || fputc('\n', b->b_f) == EOF)
        return -1;
    b->b_pos += (off_t)len + 3;
    if (b->b_pos - b->b_started >= FDB_WRITEBACK) {
        if (fflush(b->b_f) == EOF)
            return -1;
        /* a hint: an error here shows again at the fsync */
        (void)sync_file_range(fileno(b->b_f), b->b_started,
                              b->b_pos - b->b_started,
                              SYNC_FILE_RANGE_WRITE);
        b->b_started = b->b_pos;
    }
    return 0;
}

/* Back to at bytes (a fold that turned out malformed). 0 or -1. */
static int
fdb_truncate(struct fdb *b, off_t at)
{
    if (fflush(b->b_f) == EOF || ftruncate(fileno(b->b_f), at) < 0 ||
        fseeko(b->b_f, at, SEEK_SET) < 0)
        return -1;
    b->b_pos = at;
    if (b->b_started > at)
        b->b_started = at;
    return 0;
}

static int
fdb_open(struct combine *cb, struct fdb *b, const char *tmp)
{
    int fd;

    memset(b, 0, sizeof(*b));
    if (mkparent(tmp) < 0 ||
        (fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0 ||
        (b->b_f = fdopen(fd, "w+")) == NULL) {
        LOGW("cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if ((b->b_vbuf = malloc(65536)) != NULL)
        setvbuf(b->b_f, b->b_vbuf, _IOFBF, 65536);
    if (fputs(head, b->b_f) == EOF) {
        LOGW("cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    b->b_pos = (off_t)strlen(head);
    return 0;
}

static void
fdb_close(struct fdb *b)
{
    if (b->b_f != NULL)
        fclose(b->b_f);
    free(b->b_vbuf);
    memset(b, 0, sizeof(*b));
}

/* ---- the previous batch, folded in (streamed) ----------------------- */

/* Bytes at the end of buf[0..n) that start a UTF-8 sequence not complete
 * there (0-3): held back for the next piece. */
static size_t
utf8_tail(const char *buf, size_t n)
{
    size_t back;

    for (back = 1; back <= 3 && back <= n; back++) {
        unsigned c = (unsigned char)buf[n - back];
        size_t need;

        if ((c & 0xC0) == 0x80)
            continue;       /* a continuation byte: look further back */
        if (c < 0x80)
            return 0;
        need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        return need > back ? back : 0;
    }
    return 0;
}

#define FOLD_ROW_MAX (64u << 20)    /* one Row of a folded batch at most */

struct fold_ids {
    struct combine *fi_cb;
    struct lrec fi_r;
};

static int
fold_on_id(void *arg, const char *id)
{
    struct fold_ids *fi = arg;

    lrec_id(&fi->fi_r, id);
    return lg_append(fi->fi_cb->cb_lg, &fi->fi_r) < 0 ? -1 : 0;
}

/*
 * Pass 1 of a fold: the SAX check of the document at fd, fed 1 MiB at a
 * time (never held whole), the id of each Row appended to the ledger.
 * Rows found, or -1 if it is malformed (or on an error).
 */
static ssize_t
fold_check(struct combine *cb, int fd)
{
    struct rowcheck_state st;
    struct fold_ids fi;
    xmlParserCtxtPtr ctxt = NULL;
    char *buf = NULL;
    size_t have = 0, keep;
    ssize_t n, rc = -1;
    int wf;

    memset(&st, 0, sizeof(st));
    memset(&fi, 0, sizeof(fi));
    fi.fi_cb = cb;
    fi.fi_r.lr_flags = LR_FOLDED;
    st.sx_on_id = fold_on_id;
    st.sx_arg = &fi;
    if ((buf = malloc(ROWCHECK_PIECE + 4)) == NULL ||
        (ctxt = rowcheck_ctxt_new(&st)) == NULL)
        goto done;
    for (;;) {
        n = read(fd, buf + have, ROWCHECK_PIECE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        have += (size_t)n;
        keep = n == 0 ? 0 : utf8_tail(buf, have);
        if (!rowcheck_text_ok(buf, have - keep))
            goto done;
        xmlParseChunk(ctxt, buf, (int)(have - keep), n == 0);
        if (!ctxt->wellFormed || st.sx_bad)
            goto done;
        memmove(buf, buf + have - keep, keep);
        have = keep;
        if (n == 0)
            break;
    }
    wf = ctxt->wellFormed;
    if (wf && !st.sx_bad && st.sx_n > 0)
        rc = (ssize_t)st.sx_n;
done:
    rowcheck_ctxt_free(ctxt);
    rowcheck_state_free(&st);
    free(buf);
    return rc;
}

/*
 * Pass 2: copy the Rows of the checked document at fd to b, in order, and
 * fill their ledger records (from index 0) with where each went. The
 * markers must match the n Rows of the check. 0 or -1.
 */
static int
fold_copy(struct combine *cb, struct fdb *b, int fd, size_t n)
{
    struct lrec *r = NULL;
    char *win = NULL;
    size_t cap = 1u << 20, have = 0, pos = 0, i = 0, nr = 0, base = 0;
    char *a, *e;
    ssize_t got;
    int eof = 0, rc = -1;

    if (lseek(fd, 0, SEEK_SET) < 0 || lg_flush(cb->cb_lg) < 0 ||
        (win = malloc(cap)) == NULL ||
        (r = malloc(LG_BLOCK * sizeof(*r))) == NULL)
        goto done;
    for (;;) {
        /* a whole Row in win[pos, have)? */
        a = memmem(win + pos, have - pos, "<Row", 4);
        if (a != NULL && (size_t)(win + have - a) >= 5 && a[4] != '>')
            goto done;      /* "<Row " or "<Rows": not as written */
        e = a != NULL && (size_t)(win + have - a) >= 5
                ? memmem(a, (size_t)(win + have - a), "</Row>", 6)
                : NULL;
        if (e != NULL) {
            if (i == nr) {      /* the next block of records */
                if (nr > 0 && lg_pwrite(cb->cb_lg, r, nr, base) < 0)
                    goto done;
                base += nr;
                i = 0;
                if ((got = lg_read(cb->cb_lg, r, LG_BLOCK, base)) <= 0)
                    goto done;      /* more Rows than the check saw */
                nr = (size_t)got;
            }
            r[i].lr_len = (uint32_t)(e + 6 - a);
            if (fdb_row(b, a, r[i].lr_len, &r[i].lr_out) < 0)
                goto done;
            i++;
            pos = (size_t)(e + 6 - win);
            continue;
        }
        if (eof)
            break;
        /* keep what may start a Row, read more */
        if (a == NULL)
            pos = have - pos > 4 ? have - 4 : pos;
        else
            pos = (size_t)(a - win);
        memmove(win, win + pos, have - pos);
        have -= pos;
        pos = 0;
        if (have == cap) {
            char *w;

            if (cap >= FOLD_ROW_MAX || (w = realloc(win, cap * 2)) == NULL)
                goto done;
            win = w;
            cap *= 2;
        }
        got = read(fd, win + have, cap - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto done;
        if (got == 0)
            eof = 1;
        have += (size_t)got;
    }
    if (memmem(win + pos, have - pos, "<Row", 4) != NULL ||
        base + i != n)
        goto done;
    if (i > 0 && lg_pwrite(cb->cb_lg, r, i, base) < 0)
        goto done;
    rc = 0;
done:
    free(win);
    free(r);
    return rc;
}

/*
 * Fold the batch at path (the share's unprocessed clients.xml, or a local
 * one nobody carried away) into b: its Rows first in the new file, a later
 * Row of the same __id (ours) wins. Streamed: never held whole. 0, or -1
 * if it is malformed (logged; nothing folded) or on an error.
 */
static int
fold_stream(struct combine *cb, struct fdb *b, const char *path,
            const char *what)
{
    off_t start = b->b_pos;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = fold_check(cb, fd);
    if (n < 0 || fold_copy(cb, b, fd, (size_t)n) < 0) {
        close(fd);
        LOGW("%s is not a well-formed batch: its Rows are not folded in",
             what);
        lg_reset(cb->cb_lg);
        if (fdb_truncate(b, start) < 0)
            return -1;
        return -1;
    }
    close(fd);
    cb->cb_nfold = (size_t)n;
    return 0;
}

/* ---- one Row per __id: the last wins -------------------------------- */

/*
 * The ids of the ledger's live records in partition part of nparts (by
 * hash), as (hash, index) pairs sorted by hash then index. A partition
 * holds about IDP_MAX pairs: memory stays bounded whatever the batch.
 */
#define IDP_MAX (1u << 18)

struct idpair {
    uint64_t ip_hash;
    uint64_t ip_idx;
};

struct idpart {
    struct idpair *ip_v;
    size_t ip_n, ip_cap;
    unsigned ip_nparts;
};

static int
idpair_cmp(const void *a, const void *b)
{
    const struct idpair *x = a, *y = b;

    if (x->ip_hash != y->ip_hash)
        return x->ip_hash < y->ip_hash ? -1 : 1;
    return x->ip_idx < y->ip_idx ? -1 : x->ip_idx > y->ip_idx;
}

static unsigned
idp_nparts(const struct ledger *lg)
{
    return (unsigned)(lg->lg_n / IDP_MAX + 1);
}

static int
idp_load(struct ledger *lg, struct idpart *p, unsigned part,
         unsigned nparts)
{
    struct lrec *r = NULL;
    size_t at = 0, i;
    ssize_t got;
    int rc = -1;

    p->ip_n = 0;
    p->ip_nparts = nparts;
    if (lg_flush(lg) < 0 || (r = malloc(LG_BLOCK * sizeof(*r))) == NULL)
        goto done;
    while ((got = lg_read(lg, r, LG_BLOCK, at)) > 0) {
        for (i = 0; i < (size_t)got; i++) {
            if ((r[i].lr_flags & LR_DEAD) ||
                r[i].lr_hash % nparts != part)
                continue;
            if (p->ip_n == p->ip_cap) {
                size_t cap = p->ip_cap ? p->ip_cap * 2 : 1024;
                struct idpair *v = realloc(p->ip_v, cap * sizeof(*v));

                if (v == NULL)
                    goto done;
                p->ip_v = v;
                p->ip_cap = cap;
            }
            p->ip_v[p->ip_n].ip_hash = r[i].lr_hash;
            p->ip_v[p->ip_n++].ip_idx = at + i;
        }
        at += (size_t)got;
    }
    if (got < 0)
        goto done;
    qsort(p->ip_v, p->ip_n, sizeof(*p->ip_v), idpair_cmp);
    rc = 0;
done:
    free(r);
    return rc;
}

static void
idp_free(struct idpart *p)
{
    free(p->ip_v);
    memset(p, 0, sizeof(*p));
}

/* The index of id's live record in the loaded partition (id's hash must
 * belong to it; r filled), -1 if none, -2 on error. */
static ssize_t
idp_find(struct ledger *lg, const struct idpart *p, const char *id,
         uint64_t h, struct lrec *out)
{
    size_t lo = 0, hi = p->ip_n, mid;
    struct lrec r;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (p->ip_v[mid].ip_hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < p->ip_n && p->ip_v[lo].ip_hash == h; lo++) {
        if (lg_read(lg, &r, 1, (size_t)p->ip_v[lo].ip_idx) != 1)
            return -2;
        if (strcmp(r.lr_id, id) == 0) {
            if (out != NULL)
                *out = r;
            return (ssize_t)p->ip_v[lo].ip_idx;
        }
    }
    return -1;
}

/*
 * Mark every record but the last of each __id dead (folded Rows come
 * first, local ones oldest first: the last is the newest). *dead = how
 * many. 0 or -1.
 */
static int
dedupe(struct ledger *lg, size_t *dead, size_t *dead_folded)
{
    struct idpart p = {0};
    unsigned part, nparts = idp_nparts(lg);
    struct lrec a, b;
    size_t i, j, k;
    int rc = -1;

    *dead = *dead_folded = 0;
    for (part = 0; part < nparts; part++) {
        if (idp_load(lg, &p, part, nparts) < 0)
            goto done;
        for (i = 0; i < p.ip_n; i = j) {
            for (j = i + 1; j < p.ip_n &&
                            p.ip_v[j].ip_hash == p.ip_v[i].ip_hash;
                 j++)
                ;
            if (j - i == 1)
                continue;       /* the usual case */
            /* same hash: compare the ids; each dies if a later one has
             * its id */
            for (k = i; k + 1 < j; k++) {
                size_t m;

                if (lg_read(lg, &a, 1, (size_t)p.ip_v[k].ip_idx) != 1)
                    goto done;
                for (m = k + 1; m < j; m++) {
                    if (lg_read(lg, &b, 1, (size_t)p.ip_v[m].ip_idx) != 1)
                        goto done;
                    if (strcmp(a.lr_id, b.lr_id) == 0)
                        break;
                }
                if (m == j)
                    continue;
                a.lr_flags |= LR_DEAD;
                if (lg_pwrite(lg, &a, 1, (size_t)p.ip_v[k].ip_idx) < 0)
                    goto done;
                (*dead)++;
                *dead_folded += (a.lr_flags & LR_FOLDED) != 0;
            }
        }
    }
    rc = 0;
done:
    idp_free(&p);
    return rc;
}

/* Copy tmp to tmp without the lines of dead records (through tmp.c +
 * rename), fsynced. 0 or -1 (logged). */
static int
fdb_compact(struct combine *cb, off_t total, const char *tmp)
{
    struct lrec *r = NULL;
    char *ctmp = NULL, *buf = NULL;
    int in = -1, out = -1, rc = -1;
    size_t at = 0, i = 0, nr = 0;
    off_t pos = 0;

    if (asprintf(&ctmp, "%s.c", tmp) < 0) {
        ctmp = NULL;
        goto done;
    }
    if ((buf = malloc(65536)) == NULL ||
        (r = malloc(LG_BLOCK * sizeof(*r))) == NULL ||
        (in = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 ||
        (out = open(ctmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0640)) < 0)
        goto fail_io;
    while (pos < total) {
        off_t end = total, skip = 0;
        ssize_t got;

        /* the next dead line */
        for (;;) {
            if (i == nr) {
                at += nr;
                i = 0;
                if ((got = lg_read(cb->cb_lg, r, LG_BLOCK, at)) < 0)
                    goto fail_io;
                nr = (size_t)got;
                if (nr == 0)
                    break;
            }
            if (r[i].lr_flags & LR_DEAD) {
                end = (off_t)r[i].lr_out;
                skip = (off_t)r[i].lr_len + 3;
                i++;
                break;
            }
            i++;
        }
        while (pos < end) {
            size_t want = (size_t)(end - pos) < 65536 ? (size_t)(end - pos)
                                                      : 65536;
            ssize_t n = pread(in, buf, want, pos);

            if (n <= 0 || write(out, buf, (size_t)n) != n) {
                if (n == 0)
                    errno = EIO;
                goto fail_io;
            }
            pos += n;
        }
        pos += skip;
    }
    if (fsync(out) < 0 || close(out) < 0) {
        out = -1;
        goto fail_io;
    }
    out = -1;
    if (rename(ctmp, tmp) < 0)
        goto fail_io;
    rc = 0;
    goto done;
fail_io:
    LOGW("cannot write %s: %s", ctmp ? ctmp : tmp, strerror(errno));
    if (ctmp != NULL)
        unlink(ctmp);
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(buf);
    free(r);
    free(ctmp);
    return rc;
}

/* ---- DB mode: reconcile, pick, move and write in one pass ----------- */

static int
rel_of(const char *key, int64_t cid, char **rel)
{
    if (!smb_name_ok(key) || strchr(key, '/') != NULL || key[0] == '.' ||
        strlen(key) >= sizeof(((struct lrec *)0)->lr_key))
        return -1;
    return asprintf(rel, "%s/%lld.xml", key, (long long)cid) < 0 ? -1 : 0;
}

/* A waiting client beyond MAX_CLIENTS_PER_RUN: its outbox file is
 * rewritten if missing or stale. */
static void
reconcile_one(struct combine *cb, const char *key, int64_t cid,
              const char *xml, size_t len)
{
    char *path = pxml_outbox_path(cb->cb_cfg->cc_xml_dir, key, cid);
    int rc;

    if (path == NULL)
        return;
    rc = pxml_file_equals(path, xml, len);
    if (rc != 1 && !(cb->cb_flags & COMBINE_DRY_RUN)) {
        if (pxml_write_file(path, xml, len, 0) < 0)
            LOGW("reconcile: cannot write %s: %s", path, strerror(errno));
        else
            LOGI("reconcile: rewrote %s (%s)", path,
                 rc == 0 ? "missing or stale" : "unreadable");
    }
    free(path);
}

/* ---- --from-dir: one pass ------------------------------------------- */

/*
 * The files are taken oldest modification time first without listing them
 * all at once: each selection walks XML_DIR and keeps, in a heap of at most
 * FD_SEL files, the oldest ones after the last file taken (and not after
 * the newest file of the first walk: files written during the run wait for
 * the next one); two threads share a walk and its heap. Each file is moved
 * to its in-flight name, read once into a reused buffer, checked
 * (rowcheck_doc) and its Row copied
 * from that buffer to the combined file at once; a Row that a later one of
 * the same __id supersedes is cut afterwards (dedupe, fdb_compact).
 */
#define FD_SEL 131072       /* files selected per walk */

struct fd_entry {
    char *fe_rel;
    struct timespec fe_mtime;
    off_t fe_size;
};

static int
fd_keycmp(const struct timespec *ta, const char *ra, const struct timespec *tb,
          const char *rb)
{
    if (ta->tv_sec != tb->tv_sec)
        return ta->tv_sec < tb->tv_sec ? -1 : 1;
    if (ta->tv_nsec != tb->tv_nsec)
        return ta->tv_nsec < tb->tv_nsec ? -1 : 1;
    return strcmp(ra, rb);
}

static int
fd_cmp(const void *a, const void *b)
{
    const struct fd_entry *x = a, *y = b;

    return fd_keycmp(&x->fe_mtime, x->fe_rel, &y->fe_mtime, y->fe_rel);
}

struct fd_sel {
    struct fd_entry *s_e;       /* a max-heap of the oldest, then sorted */
    size_t s_n, s_cap;
    int s_have_lo, s_have_hi;
    struct timespec s_lo_t, s_hi_t;     /* after lo, not after hi */
    char *s_lo, *s_hi;
    size_t s_seen;              /* files after lo in this walk */
    pthread_mutex_t *s_mu;      /* while two threads share the walk */
};

static void
heap_down(struct fd_entry *e, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        struct fd_entry t;

        if (l < n && fd_cmp(&e[l], &e[m]) > 0)
            m = l;
        if (l + 1 < n && fd_cmp(&e[l + 1], &e[m]) > 0)
            m = l + 1;
        if (m == i)
            return;
        t = e[i];
        e[i] = e[m];
        e[m] = t;
        i = m;
    }
}

/* A file of the walk, its stat in st: counted, and kept if among the
 * oldest wanted. 0, or -1 (no memory). */
static int
fd_sel_add(struct fd_sel *s, const char *rel, const struct stat *st)
{
    struct fd_entry n;
    size_t i;

    if (s->s_have_lo &&
        fd_keycmp(&st->st_mtim, rel, &s->s_lo_t, s->s_lo) <= 0)
        return 0;       /* taken already */
    if (s->s_have_hi &&
        fd_keycmp(&st->st_mtim, rel, &s->s_hi_t, s->s_hi) > 0)
        return 0;       /* newer than the run */
    s->s_seen++;
    if (!s->s_have_hi) {    /* the first walk: the newest file bounds */
        if (s->s_hi == NULL ||
            fd_keycmp(&st->st_mtim, rel, &s->s_hi_t, s->s_hi) > 0) {
            char *h = strdup(rel);

            if (h == NULL)
                return -1;
            free(s->s_hi);
            s->s_hi = h;
            s->s_hi_t = st->st_mtim;
        }
    }
    if (s->s_n == s->s_cap &&
        fd_keycmp(&st->st_mtim, rel, &s->s_e[0].fe_mtime,
                  s->s_e[0].fe_rel) >= 0)
        return 0;       /* not among the oldest */
    n.fe_mtime = st->st_mtim;
    n.fe_size = st->st_size;
    if ((n.fe_rel = strdup(rel)) == NULL)
        return -1;
    if (s->s_n == s->s_cap) {   /* replace the newest kept */
        free(s->s_e[0].fe_rel);
        s->s_e[0] = n;
        heap_down(s->s_e, s->s_n, 0);
        return 0;
    }
    i = s->s_n++;
    s->s_e[i] = n;
    while (i > 0 && fd_cmp(&s->s_e[(i - 1) / 2], &s->s_e[i]) < 0) {
        struct fd_entry t = s->s_e[i];

        s->s_e[i] = s->s_e[(i - 1) / 2];
        s->s_e[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return 0;
}

/* walk_fn of a selection: the stat outside the lock (the costly part: a
 * lookup in the folder), the heap under it (two threads share a walk). */
static int
fd_select_one(void *arg, const char *rel, enum walk_kind k, int dfd,
              const char *name)
{
    struct fd_sel *s = arg;
    struct stat sb;
    int rc;

    (void)k;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(sb.st_mode))
        return 0;
    if (s->s_mu != NULL)
        pthread_mutex_lock(s->s_mu);
    rc = fd_sel_add(s, rel, &sb);
    if (s->s_mu != NULL)
        pthread_mutex_unlock(s->s_mu);
    return rc;
}

/* The second half of a selection's walk (names whose hash is odd). */
struct sel_half {
    struct combine *h_cb;
    struct fd_sel *h_s;
    int h_rc;
    pthread_t h_t;
};

static void *
sel_half_main(void *arg)
{
    struct sel_half *h = arg;

    h->h_rc = walk(h->h_cb->cb_cfg->cc_xml_dir, "", 1u << WK_XML, 1, 2,
                   fd_select_one, h->h_s);
    return NULL;
}

static void
fd_sel_clear(struct fd_sel *s)
{
    size_t i;

    for (i = 0; i < s->s_n; i++)
        free(s->s_e[i].fe_rel);
    s->s_n = 0;
}

/* The next files in order: s->s_e[0..s_n) sorted. 0 or -1 (errno). */
static int
fd_select(struct combine *cb, struct fd_sel *s)
{
    struct sel_half h = {.h_cb = cb, .h_s = s};
    pthread_mutex_t mu;
    int rc, started = 0;

    fd_sel_clear(s);
    s->s_seen = 0;
    /* half of the names on a thread of its own: each file costs a stat (a
     * lookup in its folder); one heap, under a lock */
    if (pthread_mutex_init(&mu, NULL) == 0) {
        s->s_mu = &mu;
        if (!(started = pthread_create(&h.h_t, NULL, sel_half_main,
                                       &h) == 0)) {
            s->s_mu = NULL;
            pthread_mutex_destroy(&mu);
        }
    }
    rc = walk(cb->cb_cfg->cc_xml_dir, "", 1u << WK_XML, 0, started ? 2 : 1,
              fd_select_one, s);
    if (started) {
        pthread_join(h.h_t, NULL);
        s->s_mu = NULL;
        pthread_mutex_destroy(&mu);
        if (h.h_rc < 0)
            rc = -1;
    }
    if (rc < 0)
        return -1;
    s->s_have_hi = s->s_hi != NULL;
    qsort(s->s_e, s->s_n, sizeof(*s->s_e), fd_cmp);
    return 0;
}

/*
 * Two threads move, read and check the files of a chunk (the main one and
 * a helper, each with its own buffer and parser context, taking the next
 * file from a shared counter); then the main thread alone takes the
 * chunk's results in order: writes the Rows, logs, puts back what was
 * skipped. A chunk never holds more files than are still wanted, so no
 * file is moved that the run would not pick.
 */
#define FD_CHUNK 256
#define FD_CHUNK_BYTES (8 << 20)    /* a chunk's files (as listed) */
#define FD_KEEP_BUF (256 << 10)     /* a bigger read buffer is not kept */

enum slot_rc {
    SL_OK,          /* moved (or dry run), read and well-formed */
    SL_GONE,        /* vanished before the move */
    SL_MALFORMED,   /* not a well-formed Patriot client file */
    SL_REFUSED,     /* well-formed, but not as written (rowcheck_doc's -2) */
    SL_UNREADABLE,  /* moved but cannot be read (sl_errno) */
    SL_ERROR,       /* cannot move (sl_errno): fails the run */
};

struct slot {
    char *sl_rel;           /* "<dir>/<name>.xml" under XML_DIR */
    char sl_key[68];        /* DB mode: the client's key, id, version */
    int64_t sl_cid, sl_version;
    int sl_moved;
    size_t sl_off, sl_len;  /* the Row in sl_buf */
    char *sl_buf;           /* the file (reused) */
    size_t sl_cap, sl_flen;
    char sl_id[ID_MAX];
    enum slot_rc sl_rc;
    int sl_errno;
};

/*
 * Two chunks: while both threads work one (the helper from its start, the
 * main thread once it has taken the previous chunk's results and filled
 * the next chunk), the other is taken and filled again.
 */
struct fd_pool {
    struct combine *p_cb;
    struct slot p_slots[2][FD_CHUNK];
    size_t p_cnt[2];            /* slots filled in each */
    int p_fill;                 /* the chunk being filled */
    int p_busy;                 /* the other one is being worked */
    int p_busy_helper;          /* ... with the helper */
    int p_failed;               /* a take failed: the rest only freed */
    struct slot *p_slot;        /* the chunk being worked */
    size_t p_n;                 /* its slots */
    atomic_size_t p_next;       /* next slot to take */
    pthread_barrier_t p_start, p_end;
    int p_quit;                 /* helper: leave at the next start */
    pthread_t p_helper;
};

/* Move the slot's file in flight (no logging: any thread). */
static enum slot_rc
slot_move(struct combine *cb, struct slot *sl)
{
    char *from = outbox_path(cb, sl->sl_rel);
    char *to = inflight_path(cb, sl->sl_rel);
    enum slot_rc rc = SL_ERROR;

    if (from == NULL || to == NULL) {
        sl->sl_errno = ENOMEM;
    } else if (rename(from, to) == 0) {
        sl->sl_moved = 1;
        rc = SL_OK;
    } else if (errno == ENOENT) {
        rc = SL_GONE;
    } else {
        sl->sl_errno = errno;
    }
    free(from);
    free(to);
    return rc;
}

/* Read path into sl->sl_buf. 0, 1 missing, -1 error (errno). */
static int
slot_read(struct slot *sl, const char *path)
{
    struct stat sb;
    size_t got = 0;
    int fd, saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 1 : -1;
    if (fstat(fd, &sb) < 0)
        goto fail;
    if (sb.st_size > ROWCHECK_DOC_MAX) {
        errno = EFBIG;      /* skipped, left in place: never read whole */
        goto fail;
    }
    if ((size_t)sb.st_size + 1 > sl->sl_cap) {
        size_t cap = (size_t)sb.st_size + 1 + 4096;
        char *p = realloc(sl->sl_buf, cap);

        if (p == NULL)
            goto fail;
        sl->sl_buf = p;
        sl->sl_cap = cap;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, sl->sl_buf + got, (size_t)sb.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    sl->sl_flen = got;
    return 0;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* DB mode, one slot (its XML in sl_buf): check, move the outbox file in
 * flight or, when there is none, write the in-flight file from the
 * database's XML (what reconcile did before the pick: a run that does not
 * mark the client puts a file back). Any thread. */
static void
slot_work_db(struct combine *cb, struct slot *sl)
{
    char *from = NULL, *to = NULL;

    if (rowcheck_doc(sl->sl_buf, sl->sl_flen, &sl->sl_off, &sl->sl_len,
                     sl->sl_id, sizeof(sl->sl_id)) < 0) {
        sl->sl_rc = SL_MALFORMED;
        return;
    }
    sl->sl_rc = SL_OK;
    if (cb->cb_flags & COMBINE_DRY_RUN)
        return;
    if ((from = outbox_path(cb, sl->sl_rel)) == NULL ||
        (to = inflight_path(cb, sl->sl_rel)) == NULL) {
        sl->sl_errno = ENOMEM;
        sl->sl_rc = SL_ERROR;
    } else if (rename(from, to) == 0 ||
               (errno == ENOENT &&
                pxml_write_file(to, sl->sl_buf, sl->sl_flen, 0) == 0)) {
        sl->sl_moved = 1;
    } else {
        sl->sl_errno = errno;
        sl->sl_rc = SL_ERROR;
    }
    free(from);
    free(to);
}

/* One slot: move, read, check (any thread; touches only its slot). */
static void
slot_work(struct combine *cb, struct slot *sl)
{
    char *path;

    sl->sl_errno = 0;
    sl->sl_moved = 0;
    if (cb->cb_store != NULL) {
        slot_work_db(cb, sl);
        return;
    }
    if (!(cb->cb_flags & COMBINE_DRY_RUN) &&
        (sl->sl_rc = slot_move(cb, sl)) != SL_OK)
        return;
    if ((path = sl->sl_moved ? inflight_path(cb, sl->sl_rel)
                             : outbox_path(cb, sl->sl_rel)) == NULL) {
        sl->sl_errno = ENOMEM;
        sl->sl_rc = SL_UNREADABLE;
        return;
    }
    switch (slot_read(sl, path)) {
    case 0:
        switch (rowcheck_doc(sl->sl_buf, sl->sl_flen, &sl->sl_off,
                             &sl->sl_len, sl->sl_id, sizeof(sl->sl_id))) {
        case 0:
            sl->sl_rc = SL_OK;
            break;
        case -2:
            sl->sl_rc = SL_REFUSED;
            break;
        default:
            sl->sl_rc = SL_MALFORMED;
            break;
        }
        break;
    case 1:
        sl->sl_rc = sl->sl_moved ? SL_UNREADABLE : SL_GONE;
        sl->sl_errno = ENOENT;
        break;
    default:
        sl->sl_errno = errno;
        sl->sl_rc = SL_UNREADABLE;
        break;
    }
    free(path);
}

static void
pool_work(struct fd_pool *p)
{
    size_t j;

    while ((j = atomic_fetch_add(&p->p_next, 1)) < p->p_n)
        slot_work(p->p_cb, &p->p_slot[j]);
}

static void *
pool_helper(void *arg)
{
    struct fd_pool *p = arg;

    for (;;) {
        pthread_barrier_wait(&p->p_start);
        if (p->p_quit)
            break;
        pool_work(p);
        pthread_barrier_wait(&p->p_end);
    }
    return NULL;
}

/* Start the helper thread (none on one CPU: the caller works alone). */
static void
pool_start(struct fd_pool *p, int *threaded)
{
    *threaded = 0;
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
        pthread_barrier_init(&p->p_start, NULL, 2) == 0) {
        if (pthread_barrier_init(&p->p_end, NULL, 2) != 0)
            pthread_barrier_destroy(&p->p_start);
        else if (pthread_create(&p->p_helper, NULL, pool_helper, p) != 0) {
            pthread_barrier_destroy(&p->p_start);
            pthread_barrier_destroy(&p->p_end);
        } else {
            *threaded = 1;
        }
    }
}

/* Start working the chunk being filled (with the helper when helper);
 * the other chunk becomes the one filled. */
static void
pool_begin(struct fd_pool *p, int helper)
{
    p->p_slot = p->p_slots[p->p_fill];
    p->p_n = p->p_cnt[p->p_fill];
    atomic_store(&p->p_next, 0);
    p->p_busy = 1;
    p->p_busy_helper = helper;
    p->p_fill ^= 1;
    if (helper)
        pthread_barrier_wait(&p->p_start);
}

/* The main thread works what is left of the busy chunk, then waits for
 * the helper. */
static void
pool_finish(struct fd_pool *p)
{
    if (!p->p_busy)
        return;
    pool_work(p);
    if (p->p_busy_helper)
        pthread_barrier_wait(&p->p_end);
    p->p_busy = 0;
}

/* A slot taken: its path freed, a big buffer dropped. */
static void
slot_done(struct slot *sl)
{
    free(sl->sl_rel);
    sl->sl_rel = NULL;
    if (sl->sl_cap > FD_KEEP_BUF) {
        free(sl->sl_buf);
        sl->sl_buf = NULL;
        sl->sl_cap = 0;
    }
}

/*
 * One step: finish the busy chunk, start the filled one (if it has
 * slots), then take the finished one's results in order with take (its
 * slots then free to fill again). take(arg, slot, failed) returns -1 to
 * fail the run; after that the rest is only handed over failed. 0 or -1.
 */
static int
pool_cycle(struct fd_pool *p, int helper,
           int (*take)(void *arg, struct slot *sl, int failed), void *arg)
{
    int prev = -1;
    size_t j;

    if (p->p_busy) {
        prev = p->p_fill ^ 1;
        pool_finish(p);
    }
    if (p->p_cnt[p->p_fill] > 0)
        pool_begin(p, helper && p->p_cnt[p->p_fill] > FD_CHUNK / 4);
    if (prev < 0)
        return p->p_failed ? -1 : 0;
    for (j = 0; j < p->p_cnt[prev]; j++) {
        if (take(arg, &p->p_slots[prev][j], p->p_failed) < 0)
            p->p_failed = 1;
        slot_done(&p->p_slots[prev][j]);
    }
    p->p_cnt[prev] = 0;
    return p->p_failed ? -1 : 0;
}

/* Finish and take everything in the pool. 0 or -1. */
static int
pool_drain(struct fd_pool *p, int helper,
           int (*take)(void *arg, struct slot *sl, int failed), void *arg)
{
    int rc = 0;

    while (p->p_busy || p->p_cnt[p->p_fill] > 0)
        if (pool_cycle(p, helper, take, arg) < 0)
            rc = -1;
    return rc;
}

/* Stop the helper, free the pool (NULL-safe). */
static void
pool_free(struct fd_pool *p, int threaded)
{
    size_t i;

    if (p == NULL)
        return;
    if (threaded) {
        p->p_quit = 1;
        pthread_barrier_wait(&p->p_start);
        pthread_join(p->p_helper, NULL);
        pthread_barrier_destroy(&p->p_start);
        pthread_barrier_destroy(&p->p_end);
    }
    for (i = 0; i < 2 * FD_CHUNK; i++) {
        free(p->p_slots[i / FD_CHUNK][i % FD_CHUNK].sl_buf);
        free(p->p_slots[i / FD_CHUNK][i % FD_CHUNK].sl_rel);
    }
    free(p);
}

/* Put a moved file back (--from-dir: the in-flight file is the only
 * copy; not over a newer file). */
static void
fd_put_back(struct combine *cb, const char *rel)
{
    char *in = inflight_path(cb, rel), *out = outbox_path(cb, rel);

    if (in != NULL && out != NULL)
        (void)put_back(cb, in, out);
    free(in);
    free(out);
}

/* Take one worked slot in order: write its Row or settle its file. 1
 * taken, 0 skipped, -1 on an error that fails the run (logged; the run's
 * failure settles every in-flight file). */
static int
slot_take(struct combine *cb, struct fdb *b, struct slot *sl)
{
    struct lrec r;
    int rc = 0;

    switch (sl->sl_rc) {
    case SL_OK:
        break;
    case SL_GONE:
        goto out;
    case SL_ERROR:
        errno = sl->sl_errno;
        LOGW("cannot move %s to in-flight: %s", sl->sl_rel,
             strerror(errno));
        rc = -1;
        goto out;
    case SL_UNREADABLE:
        LOGW("cannot read %s: %s", sl->sl_rel, strerror(sl->sl_errno));
        goto skip;
    case SL_MALFORMED:
        LOGW("%s is not a well-formed Patriot client file: skipped, "
             "left in place", sl->sl_rel);
        goto skip;
    case SL_REFUSED:
        LOGW("%s is well-formed but not as Patriot client files are "
             "written (it declares an encoding other than UTF-8, has a ':' "
             "in a name, or an element inside __id): skipped, left in place",
             sl->sl_rel);
        goto skip;
    }
    memset(&r, 0, sizeof(r));
    lrec_id(&r, sl->sl_id);
    r.lr_len = (uint32_t)sl->sl_len;
    if (fdb_row(b, sl->sl_buf + sl->sl_off, sl->sl_len, &r.lr_out) < 0 ||
        lg_append(cb->cb_lg, &r) < 0) {
        LOGW("cannot write the combined file: %s", strerror(errno));
        rc = -1;
        goto out;
    }
    cb->cb_n++;
    rc = 1;
    goto out;
skip:
    cb->cb_stats->cs_skipped++;
    if (sl->sl_moved)
        fd_put_back(cb, sl->sl_rel);
out:
    return rc;
}

struct fd_take {
    struct combine *t_cb;
    struct fdb *t_b;
};

static int
fd_take_one(void *arg, struct slot *sl, int failed)
{
    struct fd_take *t = arg;

    if (failed)
        return -1;      /* its file is settled by the failure's walk */
    return slot_take(t->t_cb, t->t_b, sl) < 0 ? -1 : 0;
}

/*
 * Pick and write the Rows of the selected files (oldest first) with the
 * pool, up to MAX_CLIENTS_PER_RUN (a chunk never holds more files than
 * are still wanted, counting the chunk in progress as if all of it were
 * taken). 0, 1 when the run has all it wants, or -1 (logged).
 */
static int
fdb_pick(struct combine *cb, struct fdb *b, struct fd_sel *s,
         struct fd_pool *p, int helper)
{
    struct fd_take t = {cb, b};
    size_t max = (size_t)cb->cb_cfg->cc_max_clients, i = 0, k, j, busy;
    struct slot *sl;
    off_t bytes;
    int rc = 0;

    while (rc == 0 && i < s->s_n && !stopping(cb)) {
        busy = p->p_busy ? p->p_n : 0;
        if (max != 0 && cb->cb_n + busy >= max) {
            if (!p->p_busy)
                break;
            rc = pool_cycle(p, helper, fd_take_one, &t);
            continue;
        }
        k = s->s_n - i;
        if (k > FD_CHUNK)
            k = FD_CHUNK;
        if (max != 0 && k > max - cb->cb_n - busy)
            k = max - cb->cb_n - busy;
        for (j = 0, bytes = 0; j < k; j++) {     /* memory: bounded */
            bytes += s->s_e[i + j].fe_size;
            if (j > 0 && bytes > FD_CHUNK_BYTES)
                k = j;
        }
        sl = p->p_slots[p->p_fill];
        for (j = 0; j < k; j++) {
            sl[j].sl_rel = s->s_e[i + j].fe_rel;
            s->s_e[i + j].fe_rel = NULL;
        }
        p->p_cnt[p->p_fill] = k;
        i += k;
        rc = pool_cycle(p, helper, fd_take_one, &t);
    }
    if (pool_drain(p, helper, fd_take_one, &t) < 0 || rc < 0)
        return -1;
    return max != 0 && cb->cb_n >= max ? 1 : 0;
}

/*
 * --from-dir steps 4-5: every *.xml under XML_DIR, oldest first, up to
 * MAX_CLIENTS_PER_RUN well-formed ones, each moved in flight before it is
 * read; their Rows appended to b. 0, 1 stopped, or -1 (logged; the
 * caller settles the in-flight files).
 */
static int
fd_build(struct combine *cb, struct fdb *b)
{
    struct fd_sel s;
    struct fd_pool *p = NULL;
    int rc = -1, threaded = 0, picked = 0;

    memset(&s, 0, sizeof(s));
    if ((s.s_e = calloc(FD_SEL, sizeof(*s.s_e))) == NULL ||
        (p = calloc(1, sizeof(*p))) == NULL)
        goto done;
    /* a limit needs few more than that (malformed files do not count:
     * another walk takes more) */
    s.s_cap = FD_SEL;
    if (cb->cb_cfg->cc_max_clients > 0 &&
        (size_t)cb->cb_cfg->cc_max_clients < FD_SEL / 2)
        s.s_cap = (size_t)cb->cb_cfg->cc_max_clients * 2 + 64;
    if (cb->cb_cfg->cc_walk_files > 0 && cb->cb_cfg->cc_walk_files < s.s_cap)
        s.s_cap = cb->cb_cfg->cc_walk_files;
    p->p_cb = cb;
    pool_start(p, &threaded);
    for (;;) {
        if (fd_select(cb, &s) < 0) {
            LOGW("cannot list %s: %s", cb->cb_cfg->cc_xml_dir,
                 strerror(errno));
            goto done;
        }
        if (s.s_n == 0)
            break;
        /* the last file of this selection: the next one starts after */
        free(s.s_lo);
        if ((s.s_lo = strdup(s.s_e[s.s_n - 1].fe_rel)) == NULL)
            goto done;
        s.s_lo_t = s.s_e[s.s_n - 1].fe_mtime;
        s.s_have_lo = 1;
        if ((picked = fdb_pick(cb, b, &s, p, threaded && s.s_n >
                                                       FD_CHUNK / 4)) < 0)
            goto done;
        if (picked == 1 || stopping(cb) || s.s_seen <= s.s_n)
            break;      /* all wanted, or nothing after this selection */
    }
    rc = stopping(cb) ? 1 : 0;
done:
    pool_free(p, threaded);
    fd_sel_clear(&s);
    free(s.s_e);
    free(s.s_lo);
    free(s.s_hi);
    return rc;
}

/* ---- DB mode: reconcile, pick, move and write in one pass ----------- */

/*
 * One read snapshot, one statement: every waiting client oldest change
 * first. The first MAX_CLIENTS_PER_RUN are copied into the pool's slots,
 * a chunk at a time; two threads check them and move their outbox files in
 * flight; the main thread writes their Rows (the database's bytes) in
 * order and records them in the ledger. The others get their outbox file
 * reconciled (rewritten if missing or stale).
 */
struct dbpass {
    struct combine *d_cb;
    struct fdb *d_b;
    struct fd_pool *d_p;
    int d_threaded;
    size_t d_seen, d_bytes;
    int d_failed;       /* an error that fails the run (logged) */
};

/* Take a worked DB slot in order. 0, or -1 on an error that fails the
 * run (logged; every moved file of the chunk is still recorded, dead,
 * so that the failure settles it). */
static int
db_take(struct combine *cb, struct fdb *b, struct slot *sl, int failed)
{
    struct lrec r;

    memset(&r, 0, sizeof(r));
    r.lr_cid = sl->sl_cid;
    r.lr_version = sl->sl_version;
    r.lr_xlen = (uint32_t)sl->sl_flen;
    r.lr_len = (uint32_t)sl->sl_len;
    r.lr_flags = sl->sl_moved ? LR_MOVED : 0;
    snprintf(r.lr_key, sizeof(r.lr_key), "%s", sl->sl_key);
    switch (sl->sl_rc) {
    case SL_MALFORMED:
        LOGW("client %s/%lld version %lld: outbox XML is not well-formed "
             "Patriot XML, skipped",
             sl->sl_key, (long long)sl->sl_cid, (long long)sl->sl_version);
        cb->cb_stats->cs_skipped++;
        reconcile_one(cb, sl->sl_key, sl->sl_cid, sl->sl_buf, sl->sl_flen);
        return failed ? -1 : 0;
    case SL_ERROR:
        LOGW("cannot move %s to in-flight: %s", sl->sl_rel,
             strerror(sl->sl_errno));
        return -1;
    default:
        break;
    }
    lrec_id(&r, sl->sl_id);
    if (failed) {
        r.lr_flags |= LR_DEAD;      /* settled, never marked */
    } else if (fdb_row(b, sl->sl_buf + sl->sl_off, sl->sl_len,
                       &r.lr_out) < 0) {
        LOGW("cannot write the combined file: %s", strerror(errno));
        r.lr_flags |= LR_DEAD;
        failed = 1;
    }
    if (lg_append(cb->cb_lg, &r) < 0) {
        LOGW("cannot write the run's ledger: %s", strerror(errno));
        return -1;
    }
    if (!failed)
        cb->cb_n++;
    return failed ? -1 : 0;
}

static int
db_take_one(void *arg, struct slot *sl, int failed)
{
    struct dbpass *d = arg;

    return db_take(d->d_cb, d->d_b, sl, failed || d->d_failed);
}

static int
db_one(void *arg, const char *key, int64_t cid, int64_t version,
       const char *xml, size_t len)
{
    struct dbpass *d = arg;
    struct combine *cb = d->d_cb;
    struct fd_pool *p = d->d_p;
    size_t max = (size_t)cb->cb_cfg->cc_max_clients;
    struct slot *sl;
    char *rel = NULL;

    if ((++d->d_seen & 1023) == 0 && stopping(cb))
        return 1;
    if (max != 0 &&
        cb->cb_n + p->p_cnt[p->p_fill] + (p->p_busy ? p->p_n : 0) >= max) {
        reconcile_one(cb, key, cid, xml, len);
        return 0;
    }
    if (rel_of(key, cid, &rel) < 0) {
        LOGW("client %s/%lld: unsafe key name, skipped", key, (long long)cid);
        cb->cb_stats->cs_skipped++;
        return 0;
    }
    if (len > UINT32_MAX) {
        LOGW("client %s/%lld: outbox XML too big, skipped", key,
             (long long)cid);
        cb->cb_stats->cs_skipped++;
        free(rel);
        return 0;
    }
    sl = &p->p_slots[p->p_fill][p->p_cnt[p->p_fill]];
    if (len + 1 > sl->sl_cap) {
        char *nb = realloc(sl->sl_buf, len + 1 + 4096);

        if (nb == NULL) {
            free(rel);
            d->d_failed = 1;
            return 1;
        }
        sl->sl_buf = nb;
        sl->sl_cap = len + 1 + 4096;
    }
    memcpy(sl->sl_buf, xml, len);
    sl->sl_buf[len] = '\0';
    sl->sl_flen = len;
    sl->sl_rel = rel;
    snprintf(sl->sl_key, sizeof(sl->sl_key), "%s", key);
    sl->sl_cid = cid;
    sl->sl_version = version;
    p->p_cnt[p->p_fill]++;
    d->d_bytes += len;
    if (p->p_cnt[p->p_fill] == FD_CHUNK || d->d_bytes > FD_CHUNK_BYTES) {
        d->d_bytes = 0;
        if (pool_cycle(p, d->d_threaded, db_take_one, d) < 0) {
            d->d_failed = 1;
            return 1;
        }
    }
    return 0;
}

/* DB mode steps 3-5. 0, 1 stopped, -1 (logged; the caller settles the
 * files the ledger holds). */
static int
db_build(struct combine *cb, struct fdb *b)
{
    struct dbpass d;
    int rc = -1;

    memset(&d, 0, sizeof(d));
    d.d_cb = cb;
    d.d_b = b;
    if ((d.d_p = calloc(1, sizeof(*d.d_p))) == NULL)
        return -1;
    d.d_p->p_cb = cb;
    pool_start(d.d_p, &d.d_threaded);
    if (store_combine_snapshot_begin(cb->cb_store) < 0)
        goto done;
    rc = store_combine_scan_waiting(cb->cb_store, db_one, &d);
    if (rc < 0) {
        LOGW("cannot read the waiting clients: %s",
             store_errmsg(cb->cb_store));
        d.d_failed = 1;
    }
    /* stopped or failed: a chunk not begun is dropped (nothing of it
     * moved); the one in progress is taken (after a failure: recorded
     * dead, so that the settling finds every file it moved) */
    if (rc != 0)
        d.d_p->p_cnt[d.d_p->p_fill] = 0;
    if (pool_drain(d.d_p, d.d_threaded, db_take_one, &d) < 0)
        d.d_failed = 1;
    store_combine_snapshot_end(cb->cb_store);
    if (d.d_failed)
        rc = -1;
done:
    pool_free(d.d_p, d.d_threaded);
    return rc;
}

/* ---- client_state.json ---------------------------------------------- */

/* (the old file is read one entry at a time by jscan.c) */

#define LR_SEEN LR_COPY     /* a results record: its id was in the file */
#define LR_GOOD LR_MARKED   /* a results record: imported */

/*
 * Copy the entries of the old client_state.json at path to f, by the ids
 * of the live records of lg (by partitions of their ids: the old file is
 * read once per partition; a key that is not a plain id goes with
 * partition 0). results = 0 (a batch shipped): an entry of an id in lg is
 * left out (the batch's entry replaces it). results = 1 (results of the
 * previous batch): its status becomes imported or failed (LR_GOOD), the
 * rest of it kept, and its record is marked LR_SEEN. Each value is
 * re-written compact (jansson, one entry at a time). *n counts the
 * entries written. 0, 1 if the old file is not a JSON object (nothing of
 * it copied), -1 on an error.
 */
static int
state_copy_old(struct ledger *lg, int results, const char *path, FILE *f,
               size_t *n)
{
    struct idpart p = {0};
    struct jscan j;
    unsigned part, nparts = idp_nparts(lg);
    char id[ID_MAX];
    int rc = -1, k;

    memset(&j, 0, sizeof(j));
    for (part = 0; part < nparts; part++) {
        if (idp_load(lg, &p, part, nparts) < 0)
            goto done;
        jscan_close(&j);
        if ((k = jscan_open(&j, path)) != 0) {
            rc = k < 0 ? 1 : 0;
            goto done;
        }
        while ((k = jscan_next(&j)) == 1) {
            struct lrec r;
            json_error_t e;
            json_t *v;
            char *val;
            ssize_t at = -1;

            if (jscan_plain_id(&j, id, sizeof(id))) {
                uint64_t h = results_hash(id);

                if (h % nparts != part)
                    continue;
                if ((at = idp_find(lg, &p, id, h, &r)) == -2)
                    goto done;
                if (at >= 0 && !results)
                    continue;   /* this batch's entry replaces it */
            } else if (part != 0) {
                continue;
            }
            if ((v = json_loadb(j.j_val, j.j_vlen, JSON_DECODE_ANY, &e)) ==
                NULL) {
                rc = 1;
                goto done;
            }
            if (at >= 0) {
                if (!json_is_object(v)) {
                    json_decref(v);
                    v = json_object();
                }
                r.lr_flags |= LR_SEEN;
                if (v == NULL ||
                    json_object_set_new(v, "status",
                                        json_string((r.lr_flags & LR_GOOD)
                                                        ? "imported"
                                                        : "failed")) < 0 ||
                    lg_pwrite(lg, &r, 1, (size_t)at) < 0) {
                    json_decref(v);
                    goto done;
                }
            }
            val = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(v);
            if (val == NULL)
                goto done;
            fprintf(f, "%s\n  %s: %s", (*n)++ ? "," : "", j.j_key, val);
            free(val);
        }
        if (k < 0) {
            rc = 1;
            goto done;
        }
    }
    rc = 0;
done:
    jscan_close(&j);
    idp_free(&p);
    return rc;
}

/*
 * Rewrite client_state.json (temp + rename) from the old one and the
 * live records of lg, streamed: memory does not grow with the batch or
 * the file. results = 0 (a batch shipped): the entries of other ids as
 * they were, then one line per id of the batch written directly (ids are
 * [A-Za-z0-9_-]: no escaping), "pending_import" in this batch. results =
 * 1: each id of lg gets status imported or failed (a new entry if it had
 * none). 0 or -1 (logged).
 */
static int
state_rewrite(struct combine *cb, struct ledger *lg, int results)
{
    const char *path = cb->cb_cfg->cc_state_file;
    struct lrec *r = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    size_t n = 0, at = 0, i;
    ssize_t got;
    int rc = -1, k;

    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        goto done;
    }
    if (lg_flush(lg) < 0 || (r = malloc(LG_BLOCK * sizeof(*r))) == NULL)
        goto done;
    if (mkparent(tmp) < 0 || (f = fopen(tmp, "we")) == NULL)
        goto fail_io;
    fputs("{", f);
    if ((k = state_copy_old(lg, results, path, f, &n)) < 0)
        goto fail_io;
    if (k == 1) {
        LOGW("%s is not a JSON object: starting a new one", path);
        if (fflush(f) == EOF || ftruncate(fileno(f), 0) < 0 ||
            fseeko(f, 0, SEEK_SET) < 0)
            goto fail_io;
        fputs("{", f);
        n = 0;
    }
    while ((got = lg_read(lg, r, LG_BLOCK, at)) > 0) {
        for (i = 0; i < (size_t)got; i++) {
            if (r[i].lr_flags & LR_DEAD)
                continue;
            if (!results)
                fprintf(f, "%s\n  \"%s\": {\"status\": \"pending_import\", "
                           "\"last_batch\": \"%s\"}",
                        n++ ? "," : "", r[i].lr_id, cb->cb_iso);
            else if (!(r[i].lr_flags & LR_SEEN) || k == 1)
                fprintf(f, "%s\n  \"%s\": {\"status\": \"%s\"}",
                        n++ ? "," : "", r[i].lr_id,
                        (r[i].lr_flags & LR_GOOD) ? "imported" : "failed");
        }
        at += (size_t)got;
    }
    if (got < 0)
        goto fail_io;
    fputs("\n}\n", f);
    if (fflush(f) == EOF || ferror(f))
        goto fail_io;
    if (fclose(f) == EOF) {
        f = NULL;
        goto fail_io;
    }
    f = NULL;
    if (rename(tmp, path) < 0)
        goto fail_io;
    rc = 0;
    goto done;
fail_io:
    LOGW("cannot write %s: %s", path, strerror(errno));
done:
    if (f != NULL)
        fclose(f);
    if (rc < 0 && tmp != NULL)
        unlink(tmp);
    free(tmp);
    free(r);
    return rc;
}

/* ---- results of the previous batch ---------------------------------- */

static void
error_line(struct combine *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
error_line(struct combine *cb, const char *fmt, ...)
{
    char ts[32];
    struct tm tm;
    time_t now = time(NULL);
    FILE *f;
    va_list ap;

    if (mkparent(cb->cb_cfg->cc_error_log) < 0 ||
        (f = fopen(cb->cb_cfg->cc_error_log, "ae")) == NULL) {
        LOGW("cannot open %s: %s", cb->cb_cfg->cc_error_log,
             strerror(errno));
        return;
    }
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%s ", ts);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* Re-queue a failed client: a fresh outbox file from the database. */
static void
requeue(struct combine *cb, const struct store_shipped *sh)
{
    char *xml = NULL, *path = NULL;
    size_t len;
    int64_t version;

    if (store_get_xml(cb->cb_store, sh->ss_key, sh->ss_cid, &xml, &len,
                      &version) != STORE_OK)
        return;
    if (version == sh->ss_version &&
        (path = pxml_outbox_path(cb->cb_cfg->cc_xml_dir, sh->ss_key,
                                 sh->ss_cid)) != NULL &&
        pxml_write_file(path, xml, len, 0) < 0)
        LOGW("cannot re-queue %s: %s", path, strerror(errno));
    free(path);
    free(xml);
}

/* What apply_results carries while it streams the previous batch. */
struct results_run {
    struct combine *rr_cb;
    struct results_set rr_ok;   /* tokens of the success lines */
    struct ledger *rr_lg;       /* one record per id seen */
    struct store_mark *rr_m;    /* DB mode */
};

/* One <__id> of the previous batch: its result, recorded. 0 or -1. */
static int
result_one(struct results_run *rr, const char *id)
{
    struct combine *cb = rr->rr_cb;
    struct store_shipped sh;
    struct lrec r;
    int good = results_set_get(&rr->rr_ok, id, NULL);

    if (good) {
        cb->cb_stats->cs_imported++;
    } else {
        cb->cb_stats->cs_failed++;
        error_line(cb, "Client %s was not imported by Patriot (no '%s' "
                       "line in %s)",
                   id, RESULTS_PHRASE, cb->cb_cfg->cc_smb_results);
    }
    memset(&r, 0, sizeof(r));
    lrec_id(&r, id);
    r.lr_flags = good ? LR_GOOD : 0;
    if (lg_append(rr->rr_lg, &r) < 0)
        return -1;
    if (rr->rr_m == NULL)
        return 0;
    switch (store_combine_mark_result(rr->rr_m, id, good, cb->cb_now_ms,
                                      &sh)) {
    case STORE_OK:
        if (!good && sh.ss_changed)
            requeue(cb, &sh);
        return 0;
    case STORE_NOTFOUND:
        LOGI("result for %s: not a client shipped by us", id);
        return 0;
    default:
        return -1;
    }
}

/*
 * Every <__id> of the previous batch at fd, loosely (it may be
 * malformed), read through a window (never held whole). 0 or -1.
 */
static int
results_scan(struct results_run *rr, int fd)
{
    size_t cap = 1u << 20, have = 0, pos;
    char *win, id[ID_MAX];
    int eof = 0, rc = -1;

    if ((win = malloc(cap)) == NULL)
        return -1;
    for (;;) {
        ssize_t got = eof ? 0 : read(fd, win + have, cap - have);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto done;
        if (got == 0)
            eof = 1;
        have += (size_t)got;
        for (pos = 0;;) {
            char *p = memmem(win + pos, have - pos, "<__id>", 6);
            const char *a, *b, *end = win + have;

            if (p == NULL) {    /* keep what may start a marker */
                pos = have - pos > 5 ? have - 5 : pos;
                break;
            }
            a = b = p + 6;
            while (b < end && rowcheck_id_char((unsigned char)*b))
                b++;
            if (!eof && (size_t)(end - b) < 7 && (size_t)(b - a) < ID_MAX) {
                pos = (size_t)(p - win);    /* incomplete: read more */
                break;
            }
            pos = (size_t)(b - win);
            if (b == a || (size_t)(b - a) >= sizeof(id) || end - b < 7 ||
                memcmp(b, "</__id>", 7) != 0)
                continue;
            memcpy(id, a, (size_t)(b - a));
            id[b - a] = '\0';
            if (result_one(rr, id) < 0)
                goto done;
        }
        if (eof)
            break;
        memmove(win, win + pos, have - pos);
        have -= pos;
    }
    rc = 0;
done:
    free(win);
    return rc;
}

/* Apply the results file to the ids of the previous batch. The results
 * text is held (one line a client, about 100 bytes); the batch is streamed
 * and client_state.json rewritten streamed. 0 or -1. */
static int
apply_results(struct combine *cb, const char *remote_path,
              const char *results_path)
{
    struct results_run rr;
    char *rbuf = NULL, *rtext = NULL;
    size_t rlen, tlen, dead, dead_folded;
    int rc = -1, in_txn = 0, fd = -1;

    memset(&rr, 0, sizeof(rr));
    rr.rr_cb = cb;
    if (read_file(results_path, &rbuf, &rlen) != 0 ||
        (fd = open(remote_path, O_RDONLY | O_CLOEXEC)) < 0) {
        LOGW("cannot read the downloaded files: %s", strerror(errno));
        goto done;
    }
    if ((rtext = combine_results_decode(rbuf, rlen, &tlen)) == NULL)
        goto done;
    free(rbuf);
    rbuf = NULL;
    if (results_index(rtext, tlen, &rr.rr_ok) < 0 ||
        (rr.rr_lg = lg_open(cb->cb_cfg->cc_ready_dir)) == NULL)
        goto done;
    if (cb->cb_store != NULL) {
        if (store_begin(cb->cb_store) < 0)
            goto done;
        in_txn = 1;
        if ((rr.rr_m = store_combine_mark_begin(cb->cb_store)) == NULL)
            goto done;
    }
    if (results_scan(&rr, fd) < 0)
        goto done;
    if (in_txn) {
        store_combine_mark_end(rr.rr_m);
        rr.rr_m = NULL;
        if (store_commit(cb->cb_store) < 0)
            goto done;
        in_txn = 0;
    }
    if (lg_flush(rr.rr_lg) == 0 &&
        dedupe(rr.rr_lg, &dead, &dead_folded) == 0)
        (void)state_rewrite(cb, rr.rr_lg, 1);
    LOGI("results of the previous batch: %zu imported, %zu failed",
         cb->cb_stats->cs_imported, cb->cb_stats->cs_failed);
    rc = 0;
done:
    store_combine_mark_end(rr.rr_m);
    if (in_txn)
        store_rollback(cb->cb_store);
    if (rc < 0)
        LOGW("cannot apply the import results");
    if (fd >= 0)
        close(fd);
    lg_close(rr.rr_lg);
    results_set_free(&rr.rr_ok);
    free(rbuf);
    free(rtext);
    return rc;
}

/* ---- SMB ------------------------------------------------------------ */

/* "dir/clients.xml" + "clients_X.xml" -> "dir/clients_X.xml" */
static char *
sibling(const char *remote, const char *name)
{
    const char *slash = strrchr(remote, '/');
    char *p;

    if (slash == NULL)
        return strdup(name);
    if (asprintf(&p, "%.*s/%s", (int)(slash - remote), remote, name) < 0)
        return NULL;
    return p;
}

/* Download the previous batch and its results; apply, or fold into b.
 * 0 or -1. */
static int
smb_before(struct combine *cb, struct fdb *b, const char *rpath,
           const char *respath)
{
    const struct combine_cfg *c = cb->cb_cfg;
    struct smb_params sp = {
        .sp_server = c->cc_smb_server,
        .sp_port = c->cc_smb_port,
        .sp_share = c->cc_smb_share,
        .sp_user = c->cc_smb_user,
        .sp_domain = c->cc_smb_domain,
        .sp_password = cb->cb_password,
        .sp_timeout_ms = c->cc_smb_timeout_ms,
    };
    char *results = NULL, *upl = NULL, err[256];
    time_t xml_mtime = 0, res_mtime = 0;
    int rx, rr, rc = -1;

    if ((cb->cb_smb = smb_open(&sp, err, sizeof(err))) == NULL) {
        LOGW("SMB: %s", err);
        return -1;
    }
    rx = smb_download(cb->cb_smb, c->cc_smb_remote_path, rpath, &xml_mtime);
    if (rx < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto done;
    }
    if ((results = sibling(c->cc_smb_remote_path, c->cc_smb_results)) ==
        NULL)
        goto done;
    rr = smb_download(cb->cb_smb, results, respath, &res_mtime);
    if (rr < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto done;
    }
    if (rx == 1) {
        LOGI("no %s on the share", c->cc_smb_remote_path);
        /* A run that rotated clients.xml away and then could not rename
         * its upload into place (the server died between the two renames)
         * left that upload, whole, with the previous batch's Rows: fold
         * it, or they are on the share only under the backup name. A cut
         * upload fails fold_stream's check and is left out. */
        if (asprintf(&upl, "%s.uploading", c->cc_smb_remote_path) < 0)
            goto done;
        rx = smb_download(cb->cb_smb, upl, rpath, NULL);
        if (rx < 0) {
            LOGW("SMB: %s", smb_error(cb->cb_smb));
            goto done;
        }
        if (rx == 0) {
            LOGI("%s of a failed run is on the share: its Rows are folded "
                 "into this batch", upl);
            (void)fold_stream(cb, b, rpath, upl);
        }
    } else if (rr == 0 && res_mtime >= xml_mtime) {
        if (apply_results(cb, rpath, respath) < 0)
            goto done;
    } else {
        LOGI("%s on the share has no results yet: its Rows are folded into "
             "this batch",
             c->cc_smb_remote_path);
        (void)fold_stream(cb, b, rpath, "the share's clients.xml");
    }
    rc = 0;
done:
    free(results);
    free(upl);
    unlink(rpath);
    unlink(respath);
    return rc;
}

/* Upload tmp to a temporary name, rotate clients.xml, rename. 0 or -1. */
static int
smb_ship(struct combine *cb, const char *local)
{
    const char *remote = cb->cb_cfg->cc_smb_remote_path;
    char *tmpname = NULL, *rot = NULL, name[96];
    time_t mt;
    int rc = -1, i, rotated = 0;

    if (asprintf(&tmpname, "%s.uploading", remote) < 0)
        goto done;
    (void)smb_unlink(cb->cb_smb, tmpname);
    if (smb_upload(cb->cb_smb, local, tmpname) < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        (void)smb_unlink(cb->cb_smb, tmpname);
        goto done;
    }
    if (stopping(cb))
        goto cleanup;
    switch (smb_stat(cb->cb_smb, remote, &mt, NULL)) {
    case 0:
        for (i = 0; i < 100; i++) {
            const char *base = strrchr(remote, '/');
            size_t bl;

            base = base ? base + 1 : remote;
            bl = strlen(base) - 4;      /* ".xml" checked at config */
            if (i == 0)
                snprintf(name, sizeof(name), "%.*s_%s.xml", (int)bl, base,
                         cb->cb_stamp);
            else
                snprintf(name, sizeof(name), "%.*s_%s_%d.xml", (int)bl,
                         base, cb->cb_stamp, i);
            free(rot);
            if ((rot = sibling(remote, name)) == NULL)
                goto cleanup;
            if (smb_stat(cb->cb_smb, rot, NULL, NULL) == 1)
                break;
        }
        if (smb_rename(cb->cb_smb, remote, rot) < 0) {
            LOGW("SMB: rotate: %s", smb_error(cb->cb_smb));
            goto cleanup;
        }
        rotated = 1;
        LOGI("rotated %s to %s", remote, rot);
        break;
    case 1:
        break;
    default:
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        goto cleanup;
    }
    if (smb_rename(cb->cb_smb, tmpname, remote) < 0) {
        LOGW("SMB: %s", smb_error(cb->cb_smb));
        if (rotated && smb_rename(cb->cb_smb, rot, remote) < 0)
            LOGW("SMB: cannot restore %s from %s", remote, rot);
        goto cleanup;
    }
    rc = 0;
    goto done;
cleanup:
    (void)smb_unlink(cb->cb_smb, tmpname);
done:
    free(tmpname);
    free(rot);
    return rc;
}

/* ---- marking (DB mode) ---------------------------------------------- */

/* A client of the batch that changed meanwhile: its record not marked.
 * 0 or -1 (logged). */
static int
mark_undo(void *arg, size_t seq)
{
    struct combine *cb = arg;
    struct lrec r;

    if (lg_read(cb->cb_lg, &r, 1, seq) != 1)
        goto fail;
    r.lr_flags &= ~(uint32_t)LR_MARKED;
    if (lg_pwrite(cb->cb_lg, &r, 1, seq) < 0)
        goto fail;
    return 0;
fail:
    LOGW("cannot write the run's ledger: %s", strerror(errno));
    return -1;
}

/*
 * In one transaction (the writer lock: nothing changes meanwhile), every
 * local Row written and not superseded is marked shipped if its client
 * still waits at the version written (and its XML has the length
 * written): (key, client, version) names one content for ever, the store
 * goes on counting a deleted client's versions. The local Rows are added
 * to the mark as the ledger is read in blocks, flagged LR_MARKED and
 * written back, then marked all at once (store_combine_mark_apply), the
 * flag taken back from each client that changed meanwhile (mark_undo):
 * the flags count only when this returns 0. Folded Rows not superseded
 * move to this batch, one at a time (few). 0 or -1 (logged; nothing
 * marked).
 */
static int
mark_db(struct combine *cb)
{
    struct store_mark *m = NULL;
    struct lrec *r = NULL;
    size_t at = 0, i, marked = 0;
    ssize_t got;
    int dirty;

    if (lg_flush(cb->cb_lg) < 0 ||
        (r = malloc(LG_BLOCK * sizeof(*r))) == NULL) {
        LOGW("cannot read the run's ledger: %s", strerror(errno));
        free(r);
        return -1;
    }
    if (store_begin(cb->cb_store) < 0)
        goto fail;
    if ((m = store_combine_mark_begin(cb->cb_store)) == NULL)
        goto fail;
    while ((got = lg_read(cb->cb_lg, r, LG_BLOCK, at)) > 0) {
        dirty = 0;
        for (i = 0; i < (size_t)got; i++) {
            if (r[i].lr_flags & LR_DEAD)
                continue;   /* no Row of its own in the file */
            if (r[i].lr_flags & LR_FOLDED) {
                if (store_combine_mark_refold(m, r[i].lr_id, cb->cb_batch,
                                              cb->cb_now_ms) != STORE_OK)
                    goto fail;
                continue;
            }
            if (store_combine_mark_add(m, at + i, r[i].lr_key, r[i].lr_cid,
                                       r[i].lr_version, r[i].lr_xlen,
                                       r[i].lr_id) != STORE_OK)
                goto fail;
            r[i].lr_flags |= LR_MARKED;
            dirty = 1;
        }
        if (dirty && lg_pwrite(cb->cb_lg, r, (size_t)got, at) < 0)
            goto fail;
        at += (size_t)got;
    }
    if (got < 0 ||
        store_combine_mark_apply(m, cb->cb_batch, cb->cb_now_ms, &marked,
                                 mark_undo, cb) != STORE_OK)
        goto fail;
    store_combine_mark_end(m);
    m = NULL;
    if (store_combine_meta_set(cb->cb_store, "combine.last_batch",
                               cb->cb_batch) != STORE_OK ||
        store_commit(cb->cb_store) < 0)
        goto fail;
    cb->cb_stats->cs_marked = marked;
    free(r);
    return 0;
fail:
    LOGW("cannot mark the batch shipped: %s", store_errmsg(cb->cb_store));
    store_combine_mark_end(m);
    store_rollback(cb->cb_store);
    cb->cb_stats->cs_marked = 0;
    free(r);
    return -1;
}

static void
meta_result(struct combine *cb, const char *result)
{
    char buf[64];

    if (cb->cb_store == NULL || (cb->cb_flags & COMBINE_DRY_RUN))
        return;
    snprintf(buf, sizeof(buf), "%lld", (long long)cb->cb_now_ms);
    (void)store_combine_meta_set(cb->cb_store, "combine.last_run", buf);
    (void)store_combine_meta_set(cb->cb_store, "combine.last_result",
                                 result);
    if (strcmp(result, "failed") == 0)
        (void)store_combine_meta_set(cb->cb_store, "combine.last_error",
                                     cb->cb_err);
}

/* ---- settling the in-flight files ----------------------------------- */

/*
 * DB mode, after the mark: SETTLE_THREADS threads share the ledger's
 * records (an in-flight file the early removal left, an outbox copy to
 * look up: syscalls that wait for the file system, so more threads than
 * cores overlap the waits). Helpers do syscalls only, no logging: a file
 * they cannot remove is left to the main thread, which logs it. The
 * removals themselves: inflight_remove, below.
 */
#define SETTLE_THREADS 16

/*
 * The outbox files there are once the mark is committed, read in one walk
 * of XML_DIR when they are few (the usual case: only what the API wrote
 * during the run), instead of a lookup of each shipped client's outbox
 * name (access(2) of a name that is not there searches its folder:
 * ~4% of a 100,000-client run). More than SEEN_MAX: every name is looked
 * up. A file the API writes after the walk is a change made after the
 * mark, never a copy of what shipped (the API rewrites a file only for a
 * client that waits): left alone either way.
 */
#define SEEN_MAX 4096

struct seen {
    char **sn_rel;          /* sorted; NULL: look every name up */
    size_t sn_n;
};

static int
seen_one(void *arg, const char *rel, enum walk_kind k, int dfd,
         const char *name)
{
    struct seen *sn = arg;

    (void)k;
    (void)dfd;
    (void)name;
    if (sn->sn_n == SEEN_MAX ||
        (sn->sn_rel[sn->sn_n] = strdup(rel)) == NULL)
        return -1;
    sn->sn_n++;
    return 0;
}

static int
seen_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
seen_free(struct seen *sn)
{
    size_t i;

    for (i = 0; sn->sn_rel != NULL && i < sn->sn_n; i++)
        free(sn->sn_rel[i]);
    free(sn->sn_rel);
    sn->sn_rel = NULL;
    sn->sn_n = 0;
}

/* Walk XML_DIR's outbox names into sn; sn->sn_rel NULL if too many. */
static void
seen_load(struct combine *cb, struct seen *sn)
{
    sn->sn_n = 0;
    if ((sn->sn_rel = malloc(SEEN_MAX * sizeof(*sn->sn_rel))) == NULL)
        return;
    if (walk(cb->cb_cfg->cc_xml_dir, "", 1u << WK_XML, 0, 1, seen_one,
             sn) < 0) {
        seen_free(sn);
        return;
    }
    qsort(sn->sn_rel, sn->sn_n, sizeof(*sn->sn_rel), seen_cmp);
}

/* Is there an outbox file at out (rel, relative to XML_DIR)? */
static int
seen_has(const struct seen *sn, const char *rel, const char *out)
{
    if (sn == NULL || sn->sn_rel == NULL)
        return access(out, F_OK) == 0;
    return bsearch(&rel, sn->sn_rel, sn->sn_n, sizeof(*sn->sn_rel),
                   seen_cmp) != NULL;
}

struct settler {
    struct combine *st_cb;
    const struct seen *st_seen;     /* DB mode, ok: the outbox names */
    unsigned st_part;   /* this thread's share: st_part of SETTLE_THREADS */
    int st_ok;          /* the run succeeded */
    int st_rc;
    size_t st_left;     /* files it could not remove */
    pthread_t st_t;
};

/* --from-dir: every in-flight name under XML_DIR is this run's (a killed
 * run's were put back at its start): success removes it, failure puts it
 * back. */
static int
fd_settle_one(void *arg, const char *rel, enum walk_kind k, int dfd,
              const char *name)
{
    struct settler *s = arg;

    (void)k;
    (void)rel;
    if (s->st_ok) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            s->st_left++;
        return 0;
    }
    fd_put_back(s->st_cb, rel);
    return 0;
}

/*
 * After success (--from-dir), or once the files are taken (DB mode,
 * early_rm_start): one walk of XML_DIR queues the in-flight paths and
 * RM_THREADS threads remove them, RM_BATCH paths at a time. Removing a
 * file that frees blocks can wait for the disk (ext4 without a journal,
 * mounted with online discard, sends a discard request per file and waits
 * for it: 45 us, against 3.5 us when no block is freed); many waits
 * overlap: 48 threads beat 16 in each of three alternated --from-dir runs
 * of 100,000 (removal 1.39-1.58 s against 1.70-3.41 s), 96 lost. With a
 * journal a removal is ~9-10 us of work on the CPU, and threads still
 * help a little (one thread alone: 1.6 s per 100,000; sixteen: 1.0-1.2
 * s). One walk, not one per thread: a walk reads every name of XML_DIR.
 */
#define RM_THREADS 48
#define RM_BATCH 8
#define RM_QUEUE 1024       /* paths queued at most */

struct rmq {
    pthread_mutex_t q_mu;
    pthread_cond_t q_more, q_room;
    char *q_path[RM_QUEUE];
    size_t q_head, q_n;
    int q_done;             /* the walk is over */
    size_t q_left;          /* paths the workers could not remove */
    size_t q_left_walk;     /* ... the walk could not (no memory) */
    struct combine *q_cb;
};

static void *
rm_worker(void *arg)
{
    struct rmq *q = arg;
    char *batch[RM_BATCH];
    size_t n, i, left;

    for (;;) {
        pthread_mutex_lock(&q->q_mu);
        while (q->q_n == 0 && !q->q_done)
            pthread_cond_wait(&q->q_more, &q->q_mu);
        for (n = 0; n < RM_BATCH && q->q_n > 0; n++) {
            batch[n] = q->q_path[q->q_head];
            q->q_head = (q->q_head + 1) % RM_QUEUE;
            q->q_n--;
        }
        if (n > 0)
            pthread_cond_signal(&q->q_room);
        pthread_mutex_unlock(&q->q_mu);
        if (n == 0)
            return NULL;        /* done and empty */
        for (i = 0, left = 0; i < n; i++) {
            if (unlink(batch[i]) < 0 && errno != ENOENT)
                left++;
            free(batch[i]);
        }
        if (left > 0) {
            pthread_mutex_lock(&q->q_mu);
            q->q_left += left;
            pthread_mutex_unlock(&q->q_mu);
        }
    }
}

static int
rm_queue_one(void *arg, const char *rel, enum walk_kind k, int dfd,
             const char *name)
{
    struct rmq *q = arg;
    char *path;

    (void)k;
    if ((path = inflight_path(q->q_cb, rel)) == NULL) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            q->q_left_walk++;   /* no memory: at once, from here */
        return 0;
    }
    pthread_mutex_lock(&q->q_mu);
    while (q->q_n == RM_QUEUE)
        pthread_cond_wait(&q->q_room, &q->q_mu);
    q->q_path[(q->q_head + q->q_n) % RM_QUEUE] = path;
    q->q_n++;
    pthread_cond_signal(&q->q_more);
    pthread_mutex_unlock(&q->q_mu);
    return 0;
}

/* Remove every in-flight file under XML_DIR with the workers. The number
 * left (or -1 when the walk failed or nothing could start: the caller
 * settles the files alone). */
static ssize_t
inflight_remove(struct combine *cb)
{
    struct rmq q;
    pthread_t t[RM_THREADS];
    unsigned i, started = 0;
    int rc = -1;

    memset(&q, 0, sizeof(q));
    q.q_cb = cb;
    if (pthread_mutex_init(&q.q_mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&q.q_more, NULL) != 0)
        goto fail_mu;
    if (pthread_cond_init(&q.q_room, NULL) != 0)
        goto fail_more;
    for (i = 0; i < RM_THREADS; i++)
        if (pthread_create(&t[started], NULL, rm_worker, &q) == 0)
            started++;
    if (started > 0)    /* else -1: the caller removes them alone */
        rc = walk(cb->cb_cfg->cc_xml_dir, "", 1u << WK_INFLIGHT, 0, 1,
                  rm_queue_one, &q);
    pthread_mutex_lock(&q.q_mu);
    q.q_done = 1;
    pthread_cond_broadcast(&q.q_more);
    pthread_mutex_unlock(&q.q_mu);
    for (i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_cond_destroy(&q.q_room);
fail_more:
    pthread_cond_destroy(&q.q_more);
fail_mu:
    pthread_mutex_destroy(&q.q_mu);
    return rc < 0 ? -1 : (ssize_t)(q.q_left + q.q_left_walk);
}

/* Run fn on SETTLE_THREADS threads (fewer if they cannot start: the
 * caller's thread does the parts left). */
static void
settle_parallel(struct combine *cb, int ok, void *(*fn)(void *),
                struct settler *s, const struct seen *sn)
{
    unsigned i;
    int started[SETTLE_THREADS];

    for (i = 0; i < SETTLE_THREADS; i++) {
        s[i] = (struct settler){.st_cb = cb, .st_part = i, .st_ok = ok,
                                .st_seen = sn};
        started[i] = i > 0 && pthread_create(&s[i].st_t, NULL, fn,
                                             &s[i]) == 0;
    }
    for (i = 0; i < SETTLE_THREADS; i++)
        if (!started[i])
            (void)fn(&s[i]);
    for (i = 0; i < SETTLE_THREADS; i++)
        if (started[i])
            pthread_join(s[i].st_t, NULL);
}

static void
fd_settle(struct combine *cb, int ok)
{
    struct settler one;
    ssize_t left;

    if (ok) {
        if ((left = inflight_remove(cb)) == 0)
            return;
        if (left > 0)
            LOGW("%zd shipped files could not be removed: trying again",
                 left);
    }
    /* alone: everything (left), in order */
    one = (struct settler){.st_cb = cb, .st_ok = ok};
    if (walk(cb->cb_cfg->cc_xml_dir, "", 1u << WK_INFLIGHT, 0, 1,
             fd_settle_one, &one) < 0 || one.st_left > 0)
        LOGW("cannot remove %zu shipped files in flight under %s: %s",
             one.st_left, cb->cb_cfg->cc_xml_dir, strerror(errno));
}

/* DB mode, after a successful mark, the ledger blocks of this thread's
 * share: a marked client's in-flight file is removed, and an outbox file
 * the API wrote for it meanwhile is moved to the in-flight name (LR_COPY:
 * the main thread compares it). */
static void *
db_settle_part(void *arg)
{
    struct settler *s = arg;
    struct combine *cb = s->st_cb;
    struct lrec *r;
    size_t at, i;
    ssize_t got = 0;

    s->st_rc = -1;
    if ((r = malloc(LG_BLOCK * sizeof(*r))) == NULL)
        return NULL;
    /* each thread writes back its own blocks */
    for (at = s->st_part * LG_BLOCK;
         (got = lg_read(cb->cb_lg, r, LG_BLOCK, at)) > 0;
         at += SETTLE_THREADS * LG_BLOCK) {
        int dirty = 0;

        for (i = 0; i < (size_t)got; i++) {
            char *rel, *in, *out;

            if (!(r[i].lr_flags & LR_MARKED) ||
                (rel = rec_rel(&r[i])) == NULL)
                continue;
            in = inflight_path(cb, rel);
            out = outbox_path(cb, rel);
            if (in != NULL && out != NULL) {
                if ((r[i].lr_flags & LR_MOVED) &&
                    (cb->cb_removed_all || unlink(in) == 0 ||
                     errno == ENOENT)) {
                    r[i].lr_flags &= ~(uint32_t)LR_MOVED;
                    dirty = 1;
                }
                /* the lookup first: a rename takes the folder's lock
                 * even when there is nothing to move (the usual case) */
                if (!(r[i].lr_flags & LR_MOVED) &&
                    seen_has(s->st_seen, rel, out) &&
                    rename(out, in) == 0) {
                    r[i].lr_flags |= LR_COPY;
                    dirty = 1;
                }
            }
            free(in);
            free(out);
            free(rel);
        }
        if (dirty && lg_pwrite(cb->cb_lg, r, (size_t)got, at) < 0)
            goto done;
    }
    if (got == 0)
        s->st_rc = 0;
done:
    free(r);
    return NULL;
}

/*
 * DB mode: settle every record's in-flight file. ok: after the mark (a
 * marked client's file removed, an outbox copy of exactly what shipped
 * removed too, the file of a client not marked back only if it still
 * waits with exactly those bytes); !ok: nothing marked, every moved file
 * settled as not marked.
 */
static void
db_settle(struct combine *cb, int ok)
{
    struct settler s[SETTLE_THREADS];
    struct seen sn;
    struct lrec *r = NULL;
    size_t at = 0, i;
    ssize_t got;

    if (lg_flush(cb->cb_lg) < 0) {
        LOGW("cannot write the run's ledger: %s", strerror(errno));
        return;
    }
    if (ok) {   /* a record a thread did not get to stays LR_MOVED */
        seen_load(cb, &sn);
        settle_parallel(cb, ok, db_settle_part, s, &sn);
        seen_free(&sn);
    }
    if ((r = malloc(LG_BLOCK * sizeof(*r))) == NULL)
        return;
    while ((got = lg_read(cb->cb_lg, r, LG_BLOCK, at)) > 0) {
        for (i = 0; i < (size_t)got; i++) {
            struct lrec *x = &r[i];

            if (x->lr_flags & LR_FOLDED)
                continue;
            if (ok && (x->lr_flags & LR_MARKED)) {
                if (x->lr_flags & LR_MOVED) {   /* the helper could not */
                    char *rel = rec_rel(x), *in = NULL;

                    if (rel != NULL && (in = inflight_path(cb, rel)) != NULL &&
                        unlink(in) < 0 && errno != ENOENT)
                        LOGW("cannot remove %s: %s", in, strerror(errno));
                    free(in);
                    free(rel);
                }
                if (x->lr_flags & LR_COPY)
                    drop_shipped_copy(cb, x);
                continue;
            }
            if (x->lr_flags & LR_MOVED)
                db_put_back(cb, x);     /* changed meanwhile: waiting */
        }
        at += (size_t)got;
    }
    free(r);
}

/* The background removal of the in-flight files (DB mode). */
struct early_rm {
    struct combine *e_cb;
    ssize_t e_left;
    pthread_t e_t;
    int e_started;
};

static void *
early_rm_main(void *arg)
{
    struct early_rm *e = arg;

    e->e_left = inflight_remove(e->e_cb);
    return NULL;
}

/*
 * DB mode: remove the in-flight files on a thread of their own (every
 * in-flight name under XML_DIR is this run's) while the run goes on:
 * removing a file can wait for the disk, and the run meanwhile writes
 * clients.xml and marks the batch. Safe before the mark because the
 * database holds every client's XML: a client the run does not mark (it
 * failed, or the client changed) gets its outbox file back from it
 * (db_put_back_removed), and a run killed meanwhile leaves its clients
 * waiting, their files rewritten by the next run's reconcile. With SMB
 * on it starts once the upload is done, so that a dead share (the usual
 * failure) costs no rewrite of the batch's files.
 */
static void
early_rm_start(struct combine *cb, struct early_rm *e)
{
    if (e->e_started || cb->cb_store == NULL ||
        (cb->cb_flags & COMBINE_DRY_RUN))
        return;
    e->e_cb = cb;
    e->e_left = -1;
    e->e_started = pthread_create(&e->e_t, NULL, early_rm_main, e) == 0;
    cb->cb_removed = e->e_started;
}

/* Wait for early_rm_start's thread, before the files are settled. */
static void
early_rm_join(struct early_rm *e)
{
    if (!e->e_started)
        return;
    pthread_join(e->e_t, NULL);
    e->e_started = 0;
    e->e_cb->cb_removed_all = e->e_left == 0;
}

/* ---- one run -------------------------------------------------------- */

/* Finish the combined file: drop superseded Rows, the tail, fsync. *rows
 * = Rows in it. 0 or -1 (logged). */
static int
finish_combined(struct combine *cb, struct fdb *b, const char *tmp,
                size_t *rows)
{
    size_t dead, dead_folded;

    if (lg_flush(cb->cb_lg) < 0 ||
        dedupe(cb->cb_lg, &dead, &dead_folded) < 0) {
        LOGW("cannot read the run's ledger: %s", strerror(errno));
        return -1;
    }
    if (fputs(tail, b->b_f) == EOF || fflush(b->b_f) == EOF)
        goto fail_io;
    b->b_pos += (off_t)strlen(tail);
    if (dead > 0) {
        if (fdb_compact(cb, b->b_pos, tmp) < 0)
            return -1;
    } else if (fsync(fileno(b->b_f)) < 0) {
        goto fail_io;
    }
    *rows = cb->cb_n + cb->cb_nfold - dead;
    cb->cb_stats->cs_folded = cb->cb_nfold - dead_folded;
    return 0;
fail_io:
    LOGW("cannot write %s: %s", tmp, strerror(errno));
    return -1;
}

/* Seconds since t (CLOCK_MONOTONIC); t set to now. */
static double
lap(struct timespec *t)
{
    struct timespec now;
    double d;

    clock_gettime(CLOCK_MONOTONIC, &now);
    d = (double)(now.tv_sec - t->tv_sec) +
        (double)(now.tv_nsec - t->tv_nsec) / 1e9;
    *t = now;
    return d;
}

/*
 * READY_DIR/.combine.lock, held (flock) for the whole run: two runs at
 * once (the daemon and a --once by hand) would take each other's in-flight
 * files back. Returns the descriptor, or -1 (errno EWOULDBLOCK: another run
 * holds it).
 */
static int
run_lock(const char *ready_dir)
{
    char *p = NULL;
    int fd, e;

    if (asprintf(&p, "%s/.combine.lock", ready_dir) < 0)
        return -1;
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(p);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* With the run lock held, a temporary clients.xml in READY_DIR
 * (".<name>.tmp.<pid>") is what a killed run left: remove it (it may be
 * hundreds of MB). */
static void
remove_stale_tmps(struct combine *cb, const char *mine)
{
    const struct combine_cfg *c = cb->cb_cfg;
    char prefix[300], *p;
    struct dirent *de;
    DIR *d;

    snprintf(prefix, sizeof(prefix), ".%s.tmp.", c->cc_combined_name);
    if ((d = opendir(c->cc_ready_dir)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            asprintf(&p, "%s/%s", c->cc_ready_dir, de->d_name) < 0)
            continue;
        if (strcmp(p, mine) != 0 && unlink(p) == 0)
            LOGI("removed %s, left by a run that was killed", p);
        free(p);
    }
    closedir(d);
}

enum combine_rc
combine_run(struct combine *cb, struct combine_stats *stats)
{
    const struct combine_cfg *c = cb->cb_cfg;
    struct combine_stats dummy;
    struct fdb b;
    struct early_rm er = {0};
    char *final = NULL, *tmp = NULL, *rpath = NULL, *respath = NULL;
    int dry = (cb->cb_flags & COMBINE_DRY_RUN) != 0;
    int from_dir = (cb->cb_flags & COMBINE_FROM_DIR) != 0;
    enum combine_rc rc = COMBINE_FAILED;
    size_t rows = 0;
    struct timespec t;
    double t_write, t_ship, t_mark;
    struct tm tm;
    time_t now;
    int k, lockfd = -1;

    memset(&b, 0, sizeof(b));
    if (stats == NULL)
        stats = &dummy;
    memset(stats, 0, sizeof(*stats));
    cb->cb_stats = stats;
    cb->cb_err[0] = '\0';
    cb->cb_n = cb->cb_nfold = 0;
    cb->cb_removed = cb->cb_removed_all = 0;
    now = time(NULL);
    cb->cb_now_ms = (int64_t)now * 1000;
    gmtime_r(&now, &tm);
    strftime(cb->cb_batch, sizeof(cb->cb_batch), "%Y%m%dT%H%M%SZ", &tm);
    localtime_r(&now, &tm);
    strftime(cb->cb_stamp, sizeof(cb->cb_stamp), "%Y%m%d_%H%M%S", &tm);
    strftime(cb->cb_iso, sizeof(cb->cb_iso), "%Y-%m-%dT%H:%M:%S", &tm);

    if ((final = path_join(c->cc_ready_dir, c->cc_combined_name)) == NULL ||
        asprintf(&tmp, "%s/.%s.tmp.%ld", c->cc_ready_dir,
                 c->cc_combined_name, (long)getpid()) < 0 ||
        asprintf(&rpath, "%s/.remote_%s", c->cc_ready_dir,
                 c->cc_combined_name) < 0 ||
        asprintf(&respath, "%s/.remote_results.txt", c->cc_ready_dir) < 0) {
        tmp = rpath = respath = NULL;
        LOGW("out of memory");
        goto fail;
    }
    if (mkparent(tmp) < 0) {
        LOGW("cannot create READY_DIR %s: %s", c->cc_ready_dir,
             strerror(errno));
        goto fail;
    }
    if ((lockfd = run_lock(c->cc_ready_dir)) < 0) {
        /* Not a failure of this batch: touch nothing of the other run's. */
        snprintf(stats->cs_error, sizeof(stats->cs_error),
                 "another patriot-combine run is in progress (%s/"
                 ".combine.lock: %s); this run is skipped", c->cc_ready_dir,
                 strerror(errno));
        LOGW("%s", stats->cs_error);
        rc = COMBINE_FAILED;
        goto release;
    }
    remove_stale_tmps(cb, tmp);

    (void)lap(&t);
    /* 1. in-flight files of a killed run (both layouts) */
    if (!dry) {
        if (access(cb->cb_inflight_old, F_OK) == 0) {
            (void)walk(cb->cb_inflight_old, "", 1u << WK_XML, 0, 1,
                       recover_old, cb);
            rmdir_empty(cb->cb_inflight_old);
        }
        (void)walk(c->cc_xml_dir, "", 1u << WK_INFLIGHT, 0, 1, recover_new,
                   cb);
    }
    if ((cb->cb_lg = lg_open(c->cc_ready_dir)) == NULL) {
        LOGW("cannot create the run's ledger in %s: %s", c->cc_ready_dir,
             strerror(errno));
        goto fail;
    }
    if (fdb_open(cb, &b, tmp) < 0)
        goto fail;

    /* 2. the previous batch: results or fold */
    if (c->cc_smb_enabled && !dry) {
        if (smb_before(cb, &b, rpath, respath) < 0)
            goto fail;
    } else if (!c->cc_smb_enabled && access(final, F_OK) == 0) {
        /* nobody carried the last clients.xml: keep its Rows */
        if (fold_stream(cb, &b, final, "the uncarried local clients.xml") ==
            0)
            LOGI("%s was not carried away: its %zu Rows are kept in the "
                 "new batch",
                 final, cb->cb_nfold);
    }
    if (stopping(cb))
        goto stopped;

    /* 3-5. reconcile, pick, move, write (one pass) */
    k = from_dir ? fd_build(cb, &b) : db_build(cb, &b);
    stats->cs_local = cb->cb_n;
    if (k < 0)
        goto fail;
    if (k == 1 || stopping(cb))
        goto stopped;
    if (cb->cb_n == 0) {
        LOGI("nothing waiting to ship");
        rc = COMBINE_NOTHING;
        goto out;
    }
    if (!c->cc_smb_enabled)
        early_rm_start(cb, &er);
    if (finish_combined(cb, &b, tmp, &rows) < 0)
        goto fail;
    t_write = lap(&t);
    if (fclose(b.b_f) == EOF) {
        b.b_f = NULL;
        LOGW("cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    b.b_f = NULL;
    if (rename(tmp, final) < 0) {
        LOGW("cannot rename %s to %s: %s", tmp, final, strerror(errno));
        goto fail;
    }
    stats->cs_rows = rows;
    snprintf(stats->cs_batch, sizeof(stats->cs_batch), "%s", cb->cb_batch);
    LOGI("%s: %zu Rows (%zu picked, %zu folded in, %zu skipped)%s", final,
         rows, cb->cb_n, stats->cs_folded, stats->cs_skipped,
         dry ? " (dry run: nothing uploaded or marked)" : "");
    if (dry) {
        rc = COMBINE_OK;
        goto out;
    }
    if (stopping(cb))
        goto stopped;

    /* 6. the share */
    if (c->cc_smb_enabled) {
        if (smb_ship(cb, final) < 0)
            goto fail;
        LOGI("uploaded batch %s to %s (%zu Rows)", cb->cb_batch,
             c->cc_smb_remote_path, rows);
    }

    /* 7. record, then settle the files */
    t_ship = lap(&t);
    early_rm_start(cb, &er);    /* SMB on; with SMB off it runs already */
    if (cb->cb_store != NULL && mark_db(cb) < 0)
        goto fail_shipped;
    (void)state_rewrite(cb, cb->cb_lg, 0);
    t_mark = lap(&t);
    early_rm_join(&er);
    if (from_dir)
        fd_settle(cb, 1);
    else
        db_settle(cb, 1);
    LOGI("batch %s done: %zu clients marked shipped (seconds: %.2f to "
         "write, %.2f to upload, %.2f to record, %.2f to remove the "
         "files)",
         cb->cb_batch, cb->cb_store ? stats->cs_marked : cb->cb_n, t_write,
         t_ship, t_mark, lap(&t));
    rc = COMBINE_OK;
    goto out;

fail_shipped:
    LOGW("batch %s reached the share but could not be recorded: its "
         "clients stay waiting and will ship again",
         cb->cb_batch);
fail:
    rc = COMBINE_FAILED;
    goto out;
stopped:
    LOGI("stop requested: run abandoned, nothing marked");
    rc = COMBINE_STOPPED;
out:
    early_rm_join(&er);
    fdb_close(&b);
    if (rc != COMBINE_OK && tmp != NULL)
        unlink(tmp);    /* not renamed (ENOENT if it was) */
    if (rc != COMBINE_OK && !dry) {
        if (from_dir)
            fd_settle(cb, 0);
        else if (cb->cb_lg != NULL)
            db_settle(cb, 0);
    }
    if (rc == COMBINE_FAILED) {
        snprintf(stats->cs_error, sizeof(stats->cs_error), "%s",
                 cb->cb_err[0] ? cb->cb_err : "failed");
        clog_(cb, 0, "run failed (%s): nothing marked, files put back, "
              "the batch is left for the next run", stats->cs_error);
    }
    meta_result(cb, rc == COMBINE_OK      ? "ok"
                    : rc == COMBINE_NOTHING ? "nothing"
                    : rc == COMBINE_STOPPED ? "stopped"
                                            : "failed");
    smb_close(cb->cb_smb);
    cb->cb_smb = NULL;
    lg_close(cb->cb_lg);
    cb->cb_lg = NULL;
release:
    free(final);
    free(tmp);
    free(rpath);
    free(respath);
    cb->cb_stats = NULL;
    if (lockfd >= 0)
        close(lockfd);          /* releases the run lock */
    return rc;
}

/* ---- status --------------------------------------------------------- */

int
combine_status(const struct combine_cfg *cfg, FILE *out)
{
    char err[256], v[600];
    struct store *s;
    int64_t n[4];
    static const char *keys[] = {"combine.last_run", "combine.last_result",
                                 "combine.last_batch", "combine.last_error"};
    size_t i;

    if ((s = store_open(cfg->cc_data_file, STORE_READONLY, err,
                        sizeof(err))) == NULL) {
        fprintf(out, "cannot open %s: %s\n", cfg->cc_data_file, err);
        return -1;
    }
    if (store_combine_counts(s, n) < 0) {
        fprintf(out, "cannot read %s\n", cfg->cc_data_file);
        store_close(s);
        return -1;
    }
    fprintf(out, "pending  %lld\nshipped  %lld\nimported %lld\nfailed   %lld\n",
            (long long)n[0], (long long)n[1], (long long)n[2],
            (long long)n[3]);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (store_combine_meta_get(s, keys[i], v, sizeof(v)) != STORE_OK)
            snprintf(v, sizeof(v), "-");
        if (i == 0 && strcmp(v, "-") != 0) {
            time_t t = (time_t)(strtoll(v, NULL, 10) / 1000);
            struct tm tm;

            localtime_r(&t, &tm);
            strftime(v, sizeof(v), "%Y-%m-%d %H:%M:%S", &tm);
        }
        fprintf(out, "%-20s %s\n", keys[i] + 8, v);
    }
    store_close(s);
    return 0;
}
