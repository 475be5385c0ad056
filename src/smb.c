/*
 * smb.c - libsmbclient wrapper of patriot-combine (see smb.h).
 *
 * Traps handled here (notes/samba-test-server.md): credentials only through
 * the auth callback, no silent retry as guest (NoAutoAnonymousLogin), one
 * context per server (the connection cache ignores the port), libsmbclient
 * debug output moved to stderr, every smbc_write and smbc_close checked,
 * rename never onto an existing name, no call after one that timed out.
 */
#include "smb.h"

#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SMB_URL_MAX 1024
#define SMB_CHUNK (64 * 1024)

struct smb {
    SMBCCTX *sm_ctx;
    char sm_base[512];          /* smb://server:port/share */
    char sm_user[256];
    char sm_domain[256];
    char sm_password[256];
    char sm_err[512];
    int sm_hung;                /* a call timed out: no more calls */
};

int
smb_read_password_file(const char *path, char *buf, size_t len, char *err,
                       size_t errlen)
{
    struct stat sb;
    ssize_t n;
    size_t got = 0;
    int fd = -1;

    if (path == NULL || *path == '\0') {
        snprintf(err, errlen, "SMB_PASSWORD_FILE is not set");
        return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        snprintf(err, errlen, "SMB_PASSWORD_FILE %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "SMB_PASSWORD_FILE %s: not a regular file",
                 path);
        goto fail;
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "SMB_PASSWORD_FILE %s is readable by others (mode %04o): "
                 "it must be readable by its owner alone (chmod 600)",
                 path, (unsigned)(sb.st_mode & 07777));
        goto fail;
    }
    while (got + 1 < len) {
        n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "SMB_PASSWORD_FILE %s: %s", path,
                     strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        snprintf(err, errlen, "SMB_PASSWORD_FILE %s is empty", path);
        goto fail;
    }
    close(fd);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    memset(buf, 0, len);
    return -1;
}

int
smb_name_ok(const char *name)
{
    const char *p = name, *start;

    if (name == NULL || *name == '\0' || strlen(name) > 255)
        return 0;
    for (;;) {
        start = p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
               (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
               *p == '-')
            p++;
        if (p == start)
            return 0;
        if ((p - start == 1 && start[0] == '.') ||
            (p - start == 2 && start[0] == '.' && start[1] == '.'))
            return 0;
        if (*p == '\0')
            return 1;
        if (*p != '/')
            return 0;
        p++;
    }
}

static int
host_ok(const char *h)
{
    const char *p;

    if (h == NULL || *h == '\0' || strlen(h) > 253)
        return 0;
    for (p = h; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            return 0;
    }
    return 1;
}

static void
auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen,
        char *un, int unlen, char *pw, int pwlen)
{
    struct smb *s = smbc_getOptionUserData(c);

    (void)srv;
    (void)shr;
    if (s == NULL)
        return;
    snprintf(wg, (size_t)wglen, "%s", s->sm_domain);
    snprintf(un, (size_t)unlen, "%s", s->sm_user);
    snprintf(pw, (size_t)pwlen, "%s", s->sm_password);
}

static void
seterr(struct smb *s, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(struct smb *s, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    const char *hint = "";

    va_start(ap, fmt);
    vsnprintf(s->sm_err, sizeof(s->sm_err), fmt, ap);
    va_end(ap);
    switch (errnum) {
    case EACCES:
    case EPERM:
        hint = " (wrong password, unknown user or no access)";
        break;
    case ECONNREFUSED:
        hint = " (server down or wrong port)";
        break;
    case ETIMEDOUT:
        hint = " (server not answering)";
        s->sm_hung = 1;
        break;
    case ECONNABORTED:
    case ECONNRESET:
    case EPIPE:
    case ENETRESET:             /* libsmbclient: the server died mid-call */
        hint = " (server went away)";
        break;
    case ENOSPC:
    case EDQUOT:
        hint = " (the share is full)";
        break;
    case EBUSY:
        hint = " (held open by another client, e.g. Patriot reading it)";
        break;
    }
    n = strlen(s->sm_err);
    if (errnum != 0 && n < sizeof(s->sm_err))
        snprintf(s->sm_err + n, sizeof(s->sm_err) - n, ": %s%s",
                 strerror(errnum), hint);
}

/*
 * 1 (errno ETIMEDOUT, the first error kept) if a call of s timed out
 * before: a hung server (SIGSTOPped, a dead link) would make every further
 * call wait the whole timeout again, and each of those achieves nothing.
 */
static int
hung(struct smb *s)
{
    if (!s->sm_hung)
        return 0;
    errno = ETIMEDOUT;
    return 1;
}

const char *
smb_error(struct smb *s)
{
    return s ? s->sm_err : "no SMB context";
}

struct smb *
smb_open(const struct smb_params *p, char *err, size_t errlen)
{
    struct smb *s = NULL;
    int n;

    if (!host_ok(p->sp_server) || !smb_name_ok(p->sp_share) ||
        strchr(p->sp_share, '/') != NULL) {
        snprintf(err, errlen, "bad SMB server or share name");
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (p->sp_port != 0)
        n = snprintf(s->sm_base, sizeof(s->sm_base), "smb://%s:%u/%s",
                     p->sp_server, p->sp_port, p->sp_share);
    else
        n = snprintf(s->sm_base, sizeof(s->sm_base), "smb://%s/%s",
                     p->sp_server, p->sp_share);
    if (n < 0 || (size_t)n >= sizeof(s->sm_base) ||
        strlen(p->sp_user ? p->sp_user : "") >= sizeof(s->sm_user) ||
        strlen(p->sp_password ? p->sp_password : "") >=
            sizeof(s->sm_password) ||
        strlen(p->sp_domain ? p->sp_domain : "") >= sizeof(s->sm_domain)) {
        snprintf(err, errlen, "SMB settings too long");
        goto fail;
    }
    snprintf(s->sm_user, sizeof(s->sm_user), "%s",
             p->sp_user ? p->sp_user : "");
    snprintf(s->sm_password, sizeof(s->sm_password), "%s",
             p->sp_password ? p->sp_password : "");
    snprintf(s->sm_domain, sizeof(s->sm_domain), "%s",
             p->sp_domain && *p->sp_domain ? p->sp_domain : "WORKGROUP");

    if ((s->sm_ctx = smbc_new_context()) == NULL) {
        snprintf(err, errlen, "smbc_new_context: %s", strerror(errno));
        goto fail;
    }
    smbc_setOptionDebugToStderr(s->sm_ctx, 1);
    smbc_setDebug(s->sm_ctx, 0);
    smbc_setOptionUserData(s->sm_ctx, s);
    smbc_setFunctionAuthDataWithContext(s->sm_ctx, auth_fn);
    smbc_setOptionNoAutoAnonymousLogin(s->sm_ctx, 1);
    smbc_setTimeout(s->sm_ctx, p->sp_timeout_ms > 0 ? p->sp_timeout_ms
                                                     : 20000);
    if (p->sp_port != 0)
        smbc_setPort(s->sm_ctx, (uint16_t)p->sp_port);
    if (smbc_init_context(s->sm_ctx) == NULL) {
        snprintf(err, errlen, "smbc_init_context: %s", strerror(errno));
        goto fail;
    }
    return s;
fail:
    smb_close(s);
    return NULL;
}

void
smb_close(struct smb *s)
{
    if (s == NULL)
        return;
    if (s->sm_ctx != NULL)
        smbc_free_context(s->sm_ctx, 1);
    memset(s->sm_password, 0, sizeof(s->sm_password));
    free(s);
}

/* "smb://server:port/share/<name>" into buf. 0, or -1 (bad name). */
static int
url(struct smb *s, const char *name, char *buf, size_t len)
{
    int n;

    if (!smb_name_ok(name)) {
        seterr(s, 0, "bad remote name");
        errno = EINVAL;
        return -1;
    }
    n = snprintf(buf, len, "%s/%s", s->sm_base, name);
    if (n < 0 || (size_t)n >= len) {
        seterr(s, 0, "remote name too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int
smb_stat(struct smb *s, const char *name, time_t *mtime, off_t *size)
{
    char u[SMB_URL_MAX];
    struct stat sb;

    if (hung(s) || url(s, name, u, sizeof(u)) < 0)
        return -1;
    if (smbc_getFunctionStat(s->sm_ctx)(s->sm_ctx, u, &sb) < 0) {
        if (errno == ENOENT)
            return 1;
        seterr(s, errno, "stat %s", name);
        return -1;
    }
    if (mtime != NULL)
        *mtime = sb.st_mtime;
    if (size != NULL)
        *size = sb.st_size;
    return 0;
}

static int
write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int
smb_download(struct smb *s, const char *name, const char *path,
             time_t *mtime)
{
    char u[SMB_URL_MAX];
    struct stat sb;
    SMBCFILE *f = NULL;
    char *buf = NULL;
    int fd = -1, saved;
    ssize_t n;

    if (hung(s) || url(s, name, u, sizeof(u)) < 0)
        return -1;
    f = smbc_getFunctionOpen(s->sm_ctx)(s->sm_ctx, u, O_RDONLY, 0);
    if (f == NULL) {
        if (errno == ENOENT)
            return 1;
        seterr(s, errno, "open %s", name);
        return -1;
    }
    if (smbc_getFunctionFstat(s->sm_ctx)(s->sm_ctx, f, &sb) < 0) {
        seterr(s, errno, "fstat %s", name);
        goto fail;
    }
    if (mtime != NULL)
        *mtime = sb.st_mtime;
    if ((buf = malloc(SMB_CHUNK)) == NULL) {
        seterr(s, ENOMEM, "download %s", name);
        goto fail;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        seterr(s, errno, "download %s: local %s", name, path);
        goto fail;
    }
    for (;;) {
        n = smbc_getFunctionRead(s->sm_ctx)(s->sm_ctx, f, buf, SMB_CHUNK);
        if (n < 0) {
            seterr(s, errno, "read %s", name);
            goto fail_unlink;
        }
        if (n == 0)
            break;
        if (write_all(fd, buf, (size_t)n) < 0) {
            seterr(s, errno, "download %s: write %s", name, path);
            goto fail_unlink;
        }
    }
    if (close(fd) < 0) {
        fd = -1;
        seterr(s, errno, "download %s: close %s", name, path);
        goto fail_unlink;
    }
    fd = -1;
    smbc_getFunctionClose(s->sm_ctx)(s->sm_ctx, f);
    free(buf);
    return 0;
fail_unlink:
    unlink(path);
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    if (f != NULL)
        smbc_getFunctionClose(s->sm_ctx)(s->sm_ctx, f);
    free(buf);
    errno = saved;
    return -1;
}

int
smb_upload(struct smb *s, const char *path, const char *name)
{
    char u[SMB_URL_MAX];
    SMBCFILE *f = NULL;
    char *buf = NULL;
    int fd = -1, saved;
    ssize_t n, w;
    size_t off;

    if (hung(s) || url(s, name, u, sizeof(u)) < 0)
        return -1;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        seterr(s, errno, "upload %s: local %s", name, path);
        return -1;
    }
    if ((buf = malloc(SMB_CHUNK)) == NULL) {
        seterr(s, ENOMEM, "upload %s", name);
        goto fail;
    }
    f = smbc_getFunctionCreat(s->sm_ctx)(s->sm_ctx, u, 0644);
    if (f == NULL) {
        seterr(s, errno, "create %s", name);
        goto fail;
    }
    for (;;) {
        n = read(fd, buf, SMB_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            seterr(s, errno, "upload %s: read %s", name, path);
            goto fail;
        }
        if (n == 0)
            break;
        for (off = 0; off < (size_t)n; off += (size_t)w) {
            w = smbc_getFunctionWrite(s->sm_ctx)(s->sm_ctx, f, buf + off,
                                                 (size_t)n - off);
            if (w <= 0) {
                seterr(s, w < 0 ? errno : EIO, "write %s", name);
                goto fail;
            }
        }
    }
    if (smbc_getFunctionClose(s->sm_ctx)(s->sm_ctx, f) < 0) {
        f = NULL;
        seterr(s, errno, "close %s", name);
        goto fail;
    }
    f = NULL;
    close(fd);
    free(buf);
    return 0;
fail:
    saved = errno;
    if (f != NULL)
        smbc_getFunctionClose(s->sm_ctx)(s->sm_ctx, f);
    if (fd >= 0)
        close(fd);
    free(buf);
    errno = saved;
    return -1;
}

int
smb_rename(struct smb *s, const char *from, const char *to)
{
    char uf[SMB_URL_MAX], ut[SMB_URL_MAX];
    int tries;

    if (hung(s) || url(s, from, uf, sizeof(uf)) < 0 ||
        url(s, to, ut, sizeof(ut)) < 0)
        return -1;
    switch (smb_stat(s, to, NULL, NULL)) {
    case 0:
        seterr(s, EEXIST, "rename %s to %s", from, to);
        errno = EEXIST;
        return -1;
    case 1:
        break;
    default:
        return -1;
    }
    for (tries = 0;; tries++) {
        if (smbc_getFunctionRename(s->sm_ctx)(s->sm_ctx, uf, s->sm_ctx,
                                              ut) == 0)
            return 0;
        if (errno != EBUSY || tries >= 20)
            break;
        usleep(250 * 1000);     /* a reader holds it: Patriot reading */
    }
    seterr(s, errno, "rename %s to %s", from, to);
    return -1;
}

int
smb_unlink(struct smb *s, const char *name)
{
    char u[SMB_URL_MAX];

    if (hung(s) || url(s, name, u, sizeof(u)) < 0)
        return -1;
    if (smbc_getFunctionUnlink(s->sm_ctx)(s->sm_ctx, u) < 0) {
        if (errno == ENOENT)
            return 1;
        seterr(s, errno, "unlink %s", name);
        return -1;
    }
    return 0;
}
