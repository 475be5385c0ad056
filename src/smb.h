/*
 * smb.h - the libsmbclient wrapper of patriot-combine: one connection
 * context per server, files moved whole between a local file and the share.
 *
 * Names on the share are relative paths ("clients.xml", "in/clients.xml")
 * made only of [A-Za-z0-9._-] components (smb_name_ok); the wrapper builds
 * the smb:// URL itself. Every write and close is checked. The password is
 * held only in the context's struct and is never logged.
 *
 * libsmbclient reads $HOME/.smb/smb.conf (else /etc/samba/smb.conf) at each
 * smb_open: the process decides what HOME is (see docs/COMBINE.md).
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct smb;

struct smb_params {
    const char *sp_server;      /* IP address or host name */
    unsigned sp_port;           /* 0 = libsmbclient's default (445, 139) */
    const char *sp_share;       /* share name */
    const char *sp_user;
    const char *sp_domain;      /* workgroup; NULL or "" = WORKGROUP */
    const char *sp_password;    /* borrowed for smb_open; copied */
    int sp_timeout_ms;          /* 0 = 20000 */
};

/*
 * Read the password file at path into buf (first line, no newline). The
 * file must be a regular file readable by its owner alone (no group or
 * other bits): otherwise -1 with a message in err saying so. Returns 0, or
 * -1 with a message in err (never the password).
 */
int smb_read_password_file(const char *path, char *buf, size_t len,
                           char *err, size_t errlen);

/* 1 if name is a safe share-relative path (components [A-Za-z0-9._-]+,
 * not "." or "..", separated by single '/'), 0 otherwise. */
int smb_name_ok(const char *name);

/*
 * A new context for one server. Connects lazily (the first call that
 * touches the share). Returns NULL with a message in err on failure.
 * Free with smb_close (NULL-safe).
 */
struct smb *smb_open(const struct smb_params *p, char *err, size_t errlen);
void smb_close(struct smb *s);

/*
 * Errors. A call that times out (ETIMEDOUT: the server is hung, e.g.
 * stopped) marks s hung: every later call on s fails at once with
 * ETIMEDOUT and the first error kept, instead of waiting the timeout again
 * (a run on a hung server ends after about three timeouts: the call that
 * hung and libsmbclient's close of its file, measured in tests/smb).
 * errno hints in the text: wrong password, server down, not answering,
 * went away, the share is full, held open by another client.
 *
 * The last error of s as text ("download clients.xml: Permission denied
 * (wrong password or user?)"), borrowed until the next call on s.
 */
const char *smb_error(struct smb *s);

/*
 * Stat a file on the share. Returns 0 and sets *mtime (the server's clock)
 * and *size, 1 if it does not exist, -1 on error (smb_error).
 */
int smb_stat(struct smb *s, const char *name, time_t *mtime, off_t *size);

/*
 * Download name into the local file path (created 0600, replaced).
 * Returns 0 and sets *mtime (server clock; may be NULL), 1 if the remote
 * file does not exist (no local file left), -1 on error (smb_error; no
 * local file left).
 */
int smb_download(struct smb *s, const char *name, const char *path,
                 time_t *mtime);

/*
 * Upload the local file path to name (created or truncated), checking
 * every write and the close. Returns 0 or -1 (smb_error; a partial remote
 * file may be left: the caller uploads to a temporary name).
 */
int smb_upload(struct smb *s, const char *path, const char *name);

/*
 * Rename from to to; fails with EEXIST if to exists (never replaces a file:
 * libsmbclient's replace is not atomic). Retries EBUSY (a reader holds the
 * file) a few times. Returns 0, or -1 (smb_error, errno set).
 */
int smb_rename(struct smb *s, const char *from, const char *to);

/* Unlink name. Returns 0, 1 if it did not exist, -1 on error. */
int smb_unlink(struct smb *s, const char *name);
