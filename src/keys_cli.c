/*
 * keys_cli.c - "patriot-api keys add|disable|enable|list" (see keys_cli.h).
 *
 * The file is edited as a jansson tree: entries keep their members and
 * their order, the result is written with two-space indentation. Before the
 * new text replaces the file it must load with keys_load_buffer(), the very
 * function the server uses, so a change the server would refuse is refused
 * here, with the loader's message. The current file's mode and owner are
 * given to the temporary file before it is renamed into place.
 *
 * Plain "key" values already in the file are copied through untouched; the
 * buffers that held them are wiped before they are freed.
 */
#include "keys_cli.h"

#include "config.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KC_PROG "patriot-api keys"
#define KC_FILE_MAX (4u << 20)      /* as keys.c */
#define KC_SECRET_BYTES 32          /* 256 bits */

enum kc_cmd { KC_NONE, KC_ADD, KC_DISABLE, KC_ENABLE, KC_LIST };

struct kc_opts {
    enum kc_cmd ko_cmd;
    const char *ko_name;            /* NAME of add, disable, enable */
    const char *ko_key_file;        /* --key-file */
    const char *ko_env_file;        /* --env-file */
    const char *ko_port;
    const char *ko_installer_name;
    const char *ko_installer_email;
    const char *ko_valid_to;
    int ko_disabled;                /* add --disabled */
    json_t *ko_fields;              /* --xml-field K=V, in order */
    json_t *ko_groupings;           /* --grouping D,T,M */
    int ko_add_only;                /* an option only "add" takes was seen */
};

/* The file as read: its text and what must be kept when it is replaced. */
struct kc_file {
    char *kf_buf;                   /* NUL-terminated; wiped when freed */
    size_t kf_len;
    int kf_exists;
    int kf_lock_fd;                 /* the locked file, or -1 */
    struct stat kf_st;              /* mode and owner to keep */
};

static void
kc_usage(FILE *f)
{
    fprintf(f,
            "Usage: " KC_PROG " add NAME --port PORT [--installer-name TEXT]"
            "\n"
            "           [--installer-email TEXT] [--valid-to TIME] "
            "[--disabled]\n"
            "           [--xml-field ELEMENT=VALUE]... "
            "[--grouping DESC,TYPE,MULTI]...\n"
            "       " KC_PROG " disable NAME\n"
            "       " KC_PROG " enable NAME\n"
            "       " KC_PROG " list\n"
            "\n"
            "Change keys.json (KEY_FILE) safely: every change is checked by "
            "the server's\n"
            "own loader first and written atomically, keeping the file's "
            "mode and owner.\n"
            "add makes a random 256-bit key, prints it once on stdout and "
            "stores only\n"
            "its SHA-256 (key_sha256). installer name and e-mail are "
            "required by the\n"
            "loader. TIME is ISO 8601 such as 2030-01-01T00:00:00Z. list "
            "never shows a\n"
            "secret. The running server takes the change on SIGHUP "
            "(systemctl reload\n"
            "patriot-api).\n"
            "\n"
            "  --key-file FILE   keys.json to change (default: KEY_FILE from "
            "--env-file,\n"
            "                    else $KEY_FILE, else ./keys.json)\n"
            "  --env-file FILE   read KEY_FILE from this EnvironmentFile "
            "(such as\n"
            "                    /etc/patriot-api/api.env)\n"
            "\n"
            "Exit status: 0 done, 1 refused or failed (the file is "
            "unchanged), 2 usage.\n");
}

/* Wipe and free a NUL-terminated string of unknown origin. NULL-safe. */
static void
kc_free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Release what kf holds (its lock too); NULL-safe members. */
static void
kc_file_close(struct kc_file *kf)
{
    if (kf->kf_buf != NULL) {
        explicit_bzero(kf->kf_buf, kf->kf_len);
        free(kf->kf_buf);
    }
    if (kf->kf_lock_fd != -1)
        close(kf->kf_lock_fd);
    kf->kf_buf = NULL;
    kf->kf_lock_fd = -1;
}

/* Read all of fd (at most KC_FILE_MAX bytes) into kf. 0 or -1 (said). */
static int
kc_read_fd(int fd, const char *path, struct kc_file *kf, FILE *err)
{
    size_t cap = (size_t)kf->kf_st.st_size + 1;
    ssize_t r;

    if ((unsigned long long)kf->kf_st.st_size > KC_FILE_MAX) {
        fprintf(err, KC_PROG ": %s: larger than %u bytes\n", path,
                KC_FILE_MAX);
        return -1;
    }
    if ((kf->kf_buf = malloc(cap + 1)) == NULL) {
        fprintf(err, KC_PROG ": out of memory\n");
        return -1;
    }
    kf->kf_len = 0;
    while (kf->kf_len < cap) {
        r = read(fd, kf->kf_buf + kf->kf_len, cap - kf->kf_len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            fprintf(err, KC_PROG ": %s: cannot read: %s\n", path,
                    strerror(errno));
            return -1;
        }
        if (r == 0)
            break;
        kf->kf_len += (size_t)r;
    }
    if (kf->kf_len == cap) {
        fprintf(err, KC_PROG ": %s: changed while being read\n", path);
        return -1;
    }
    kf->kf_buf[kf->kf_len] = '\0';
    return 0;
}

/*
 * Open, lock (when lock is set) and read path into kf. The lock is taken
 * on the file itself; since a change replaces the file by rename, a lock
 * won on a file that was replaced meanwhile is dropped and taken again on
 * the new one. A missing file is read as "[]" when may_create is set (its
 * mode will be 0640, its owner the caller). Returns 0 or -1 (said).
 */
static int
kc_file_open(const char *path, int lock, int may_create, struct kc_file *kf,
             FILE *err)
{
    struct stat now;
    int tries, fd = -1;

    memset(kf, 0, sizeof *kf);
    kf->kf_lock_fd = -1;
    for (tries = 0; tries < 100; tries++) {
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
            if (errno == ENOENT && may_create) {
                if ((kf->kf_buf = strdup("[]")) == NULL) {
                    fprintf(err, KC_PROG ": out of memory\n");
                    return -1;
                }
                kf->kf_len = 2;
                kf->kf_st.st_mode = S_IFREG | 0640;
                kf->kf_st.st_uid = geteuid();
                kf->kf_st.st_gid = getegid();
                return 0;
            }
            fprintf(err, KC_PROG ": %s: cannot open: %s%s\n", path,
                    strerror(errno),
                    errno == ENOENT ? " (give --key-file or --env-file)"
                                    : "");
            return -1;
        }
        if (lock && flock(fd, LOCK_EX) == -1) {
            fprintf(err, KC_PROG ": %s: cannot lock: %s\n", path,
                    strerror(errno));
            goto fail;
        }
        if (fstat(fd, &kf->kf_st) == -1) {
            fprintf(err, KC_PROG ": %s: %s\n", path, strerror(errno));
            goto fail;
        }
        if (!S_ISREG(kf->kf_st.st_mode)) {
            fprintf(err, KC_PROG ": %s: not a regular file\n", path);
            goto fail;
        }
        /* Still the file at path? Else it was replaced: lock that one. */
        if (!lock || (stat(path, &now) == 0 &&
                      now.st_dev == kf->kf_st.st_dev &&
                      now.st_ino == kf->kf_st.st_ino))
            break;
        close(fd);
        fd = -1;
    }
    if (fd == -1) {
        fprintf(err, KC_PROG ": %s: keeps being replaced; try again\n",
                path);
        return -1;
    }
    kf->kf_exists = 1;
    if (kc_read_fd(fd, path, kf, err) == -1)
        goto fail;
    if (lock)
        kf->kf_lock_fd = fd;
    else
        close(fd);
    return 0;
fail:
    close(fd);
    kc_file_close(kf);
    return -1;
}

/* Write all len bytes of buf to fd. 0 or -1 with errno. */
static int
kc_write_all(int fd, const char *buf, size_t len)
{
    ssize_t w;

    while (len > 0) {
        w = write(fd, buf, len);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/*
 * Replace path with text (len bytes): a temporary file in the same
 * directory gets kf's mode and owner, the text, an fsync, and is renamed
 * over path (linked, when the file did not exist, so a file made meanwhile
 * is not overwritten); then the directory is synced. Returns 0, or -1
 * (said) with path unchanged.
 */
static int
kc_file_replace(const char *path, const struct kc_file *kf, const char *text,
                size_t len, FILE *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX], copy[PATH_MAX];
    int fd = -1, dfd;

    snprintf(copy, sizeof copy, "%s", path);
    snprintf(dir, sizeof dir, "%s", dirname(copy));
    snprintf(copy, sizeof copy, "%s", path);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir,
                         basename(copy)) >= sizeof tmp) {
        fprintf(err, KC_PROG ": %s: path too long\n", path);
        return -1;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
        fprintf(err, KC_PROG ": cannot create a temporary file in %s: %s\n",
                dir, strerror(errno));
        return -1;
    }
    if (fchown(fd, kf->kf_st.st_uid, kf->kf_st.st_gid) == -1) {
        fprintf(err, KC_PROG ": %s: cannot keep its owner %u:%u (%s): run "
                "this as root or as the file's owner\n", path,
                (unsigned)kf->kf_st.st_uid, (unsigned)kf->kf_st.st_gid,
                strerror(errno));
        goto fail;
    }
    if (fchmod(fd, kf->kf_st.st_mode & 07777) == -1 ||
        kc_write_all(fd, text, len) == -1 || fsync(fd) == -1) {
        fprintf(err, KC_PROG ": %s: cannot write: %s\n", tmp,
                strerror(errno));
        goto fail;
    }
    if (close(fd) == -1) {
        fd = -1;
        fprintf(err, KC_PROG ": %s: cannot write: %s\n", tmp,
                strerror(errno));
        goto fail;
    }
    fd = -1;
    if (kf->kf_exists) {
        if (rename(tmp, path) == -1) {
            fprintf(err, KC_PROG ": cannot rename %s to %s: %s\n", tmp,
                    path, strerror(errno));
            goto fail;
        }
    } else {
        if (link(tmp, path) == -1) {
            fprintf(err, KC_PROG ": cannot create %s: %s%s\n", path,
                    strerror(errno), errno == EEXIST ? " (made meanwhile; "
                    "try again)" : "");
            goto fail;
        }
        unlink(tmp);
    }
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    if (fd != -1)
        close(fd);
    unlink(tmp);
    return -1;
}

/* The index of the entry named name in root (exact, else ignoring case),
 * or -1. */
static long
kc_find(json_t *root, const char *name)
{
    json_t *e;
    size_t i;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        json_array_foreach(root, i, e) {
            const char *n = json_string_value(json_object_get(e, "key_name"));

            if (n != NULL && (pass == 0 ? strcmp(n, name) == 0
                                        : strcasecmp(n, name) == 0))
                return (long)i;
        }
    }
    return -1;
}

/*
 * A fresh key: KC_SECRET_BYTES random bytes from getrandom(), as lowercase
 * hex into out (2 * KC_SECRET_BYTES + 1 bytes). 0 or -1 (said).
 */
static int
kc_new_secret(char *out, FILE *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[KC_SECRET_BYTES];
    size_t got = 0, i;
    ssize_t r;

    while (got < sizeof raw) {
        r = getrandom(raw + got, sizeof raw - got, 0);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            fprintf(err, KC_PROG ": getrandom: %s\n", strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    for (i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * sizeof raw] = '\0';
    explicit_bzero(raw, sizeof raw);
    return 0;
}

/* The new entry of "add", with secret's digest; an option not given is
 * left out. NULL on out of memory or text that is not UTF-8. */
static json_t *
kc_new_entry(const struct kc_opts *o, const char *secret)
{
    unsigned char h[KEYS_HASH_LEN];
    char hex[2 * KEYS_HASH_LEN + 1];
    json_t *e;
    size_t i;

    keys_sha256(secret, strlen(secret), h);
    for (i = 0; i < KEYS_HASH_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    explicit_bzero(h, sizeof h);
    e = json_pack("{s:s, s:s, s:b, s:o, s:s, s:s*, s:s*, s:O, s:O}",
                  "key_name", o->ko_name,
                  "key_sha256", hex,
                  "enabled", !o->ko_disabled,
                  "valid_to", o->ko_valid_to != NULL
                                  ? json_string(o->ko_valid_to) : json_null(),
                  "port", o->ko_port,
                  "installer_name", o->ko_installer_name,
                  "installer_email", o->ko_installer_email,
                  "xml_fields", o->ko_fields,
                  "client_groupings", o->ko_groupings);
    return e;
}

/* "list": one line per entry, never a secret. */
static int
kc_list(json_t *root, const char *path, FILE *out)
{
    json_t *e;
    size_t i;
    time_t now = time(NULL);

    /* The file has loaded already: every entry is well-formed. */
    fprintf(out, "%-24s %-12s %-8s %-22s %-7s %s\n", "NAME", "PORT",
            "ENABLED", "VALID_TO", "SECRET", "STATE");
    json_array_foreach(root, i, e) {
        const json_t *vt = json_object_get(e, "valid_to");
        const json_t *en = json_object_get(e, "enabled");
        int enabled = en == NULL || json_is_true(en);
        const char *state = enabled ? "active" : "disabled";
        char *one = json_dumps(e, 0);
        struct keyset *single = NULL;

        /* Expiry the way the server sees it: load the entry alone. */
        if (one != NULL) {
            char *arr = NULL;

            if (asprintf(&arr, "[%s]", one) != -1) {
                single = keys_load_buffer(arr, strlen(arr), NULL, 0);
                kc_free_secret(arr);
            }
            kc_free_secret(one);
        }
        if (enabled && single != NULL) {
            const struct key *k = keys_get(single, 0);

            if (k->k_valid_to != 0 && !(now < k->k_valid_to))
                state = "expired";
        }
        keys_release(single);
        fprintf(out, "%-24s %-12s %-8s %-22s %-7s %s\n",
                json_string_value(json_object_get(e, "key_name")),
                json_string_value(json_object_get(e, "port")),
                enabled ? "yes" : "no",
                json_is_string(vt) ? json_string_value(vt) : "-",
                json_is_string(json_object_get(e, "key")) ? "key"
                                                          : "sha256",
                state);
    }
    fprintf(out, "%zu keys in %s\n", json_array_size(root), path);
    return 0;
}

/* --xml-field ELEMENT=VALUE into o->ko_fields. 0 or -1 (said). */
static int
kc_opt_field(struct kc_opts *o, const char *arg, FILE *err)
{
    const char *eq = strchr(arg, '=');
    char name[256];

    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof name) {
        fprintf(err, KC_PROG ": --xml-field \"%s\": give ELEMENT=VALUE\n",
                arg);
        return -1;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    if (json_object_get(o->ko_fields, name) != NULL) {
        fprintf(err, KC_PROG ": --xml-field %s given twice\n", name);
        return -1;
    }
    if (json_object_set_new(o->ko_fields, name, json_string(eq + 1)) == -1) {
        fprintf(err, KC_PROG ": --xml-field \"%s\": not valid UTF-8\n", arg);
        return -1;
    }
    return 0;
}

/* --grouping DESC,TYPE,MULTI into o->ko_groupings. 0 or -1 (said). */
static int
kc_opt_grouping(struct kc_opts *o, const char *arg, FILE *err)
{
    const char *c1 = strchr(arg, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    json_t *g;

    if (c1 == NULL || c2 == NULL || strchr(c2 + 1, ',') != NULL) {
        fprintf(err, KC_PROG ": --grouping \"%s\": give DESCRIPTION,"
                "TYPE_DESCRIPTION,ALLOW_MULTIPLE (three parts, no other "
                "comma)\n", arg);
        return -1;
    }
    g = json_pack("{s:s%, s:s%, s:s}", "Description", arg,
                  (size_t)(c1 - arg), "GroupingTypeDescription", c1 + 1,
                  (size_t)(c2 - c1 - 1), "GroupingAllowMultiple", c2 + 1);
    if (g == NULL || json_array_append_new(o->ko_groupings, g) == -1) {
        fprintf(err, KC_PROG ": --grouping \"%s\": not valid UTF-8\n", arg);
        return -1;
    }
    return 0;
}

/* Parse argv into o. Returns 0, 1 (--help shown) or 2 (usage, said). */
static int
kc_parse(struct kc_opts *o, int argc, char **argv, FILE *out, FILE *err)
{
    enum {
        O_KEY_FILE = 256, O_ENV_FILE, O_PORT, O_INAME, O_IEMAIL, O_VALID,
        O_FIELD, O_GROUPING, O_DISABLED
    };
    static const struct option opts[] = {
        {"key-file", required_argument, NULL, O_KEY_FILE},
        {"env-file", required_argument, NULL, O_ENV_FILE},
        {"port", required_argument, NULL, O_PORT},
        {"installer-name", required_argument, NULL, O_INAME},
        {"installer-email", required_argument, NULL, O_IEMAIL},
        {"valid-to", required_argument, NULL, O_VALID},
        {"xml-field", required_argument, NULL, O_FIELD},
        {"grouping", required_argument, NULL, O_GROUPING},
        {"disabled", no_argument, NULL, O_DISABLED},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pos[3];
    int ch, npos = 0, i;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case O_KEY_FILE:
            o->ko_key_file = optarg;
            break;
        case O_ENV_FILE:
            o->ko_env_file = optarg;
            break;
        case O_PORT:
            o->ko_port = optarg;
            o->ko_add_only = 1;
            break;
        case O_INAME:
            o->ko_installer_name = optarg;
            o->ko_add_only = 1;
            break;
        case O_IEMAIL:
            o->ko_installer_email = optarg;
            o->ko_add_only = 1;
            break;
        case O_VALID:
            o->ko_valid_to = optarg;
            o->ko_add_only = 1;
            break;
        case O_FIELD:
            o->ko_add_only = 1;
            if (kc_opt_field(o, optarg, err) == -1)
                return 2;
            break;
        case O_GROUPING:
            o->ko_add_only = 1;
            if (kc_opt_grouping(o, optarg, err) == -1)
                return 2;
            break;
        case O_DISABLED:
            o->ko_disabled = 1;
            o->ko_add_only = 1;
            break;
        case 'h':
            kc_usage(out);
            return 1;
        case ':':
            fprintf(err, KC_PROG ": option \"%s\" needs a value\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(err, KC_PROG ": unknown option \"%s\"; try "
                    KC_PROG " --help\n", argv[optind - 1]);
            return 2;
        }
    }
    /* argv[0] is "keys"; getopt moved the words to the end. */
    for (i = optind; i < argc; i++) {
        if (npos == 3) {
            fprintf(err, KC_PROG ": unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
        pos[npos++] = argv[i];
    }
    if (npos == 0) {
        kc_usage(err);
        return 2;
    }
    if (strcmp(pos[0], "add") == 0)
        o->ko_cmd = KC_ADD;
    else if (strcmp(pos[0], "disable") == 0)
        o->ko_cmd = KC_DISABLE;
    else if (strcmp(pos[0], "enable") == 0)
        o->ko_cmd = KC_ENABLE;
    else if (strcmp(pos[0], "list") == 0)
        o->ko_cmd = KC_LIST;
    else {
        fprintf(err, KC_PROG ": unknown command \"%s\"; try " KC_PROG
                " --help\n", pos[0]);
        return 2;
    }
    if (o->ko_cmd == KC_LIST ? npos != 1 : npos != 2) {
        fprintf(err, KC_PROG " %s: %s\n", pos[0],
                o->ko_cmd == KC_LIST ? "takes no NAME" : "give one NAME");
        return 2;
    }
    o->ko_name = npos == 2 ? pos[1] : NULL;
    if (o->ko_add_only && o->ko_cmd != KC_ADD) {
        fprintf(err, KC_PROG " %s: --port, --installer-*, --valid-to, "
                "--xml-field, --grouping and --disabled belong to add\n",
                pos[0]);
        return 2;
    }
    if (o->ko_cmd == KC_ADD && o->ko_port == NULL) {
        fprintf(err, KC_PROG " add: --port is required (the suffix of "
                "the client ids in <__id>, such as BASE11)\n");
        return 2;
    }
    return 0;
}

/* keys.json to use (see kc_usage()); *owned is set when it must be freed.
 * NULL on error (said). */
static const char *
kc_key_file(const struct kc_opts *o, char **owned, FILE *err)
{
    const char *v;

    *owned = NULL;
    if (o->ko_key_file != NULL)
        return o->ko_key_file;
    if (o->ko_env_file != NULL) {
        switch (config_env_file_lookup(o->ko_env_file, "KEY_FILE", owned,
                                       err)) {
        case 1:
            return *owned;
        case 0:
            break;
        default:
            return NULL;
        }
    }
    if ((v = getenv("KEY_FILE")) != NULL && v[0] != '\0')
        return v;
    return "./keys.json";
}

/*
 * Run the keys command (see keys_cli.h). Returns 0, 1 or 2.
 */
int
keys_cli_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct kc_opts o;
    struct kc_file kf = {NULL, 0, 0, -1, {0}};
    struct keyset *ks = NULL;
    json_t *root = NULL, *e;
    json_error_t jerr;
    char *owned = NULL, *text = NULL;
    char secret[2 * KC_SECRET_BYTES + 1] = "";
    char msg[512];
    const char *path;
    long idx = -1;
    int rc = 1;

    memset(&o, 0, sizeof o);
    o.ko_fields = json_object();
    o.ko_groupings = json_array();
    if (o.ko_fields == NULL || o.ko_groupings == NULL) {
        fprintf(err, KC_PROG ": out of memory\n");
        goto done;
    }
    switch (kc_parse(&o, argc, argv, out, err)) {
    case 0:
        break;
    case 1:
        rc = 0;
        goto done;
    default:
        rc = 2;
        goto done;
    }
    if ((path = kc_key_file(&o, &owned, err)) == NULL)
        goto done;
    if (kc_file_open(path, o.ko_cmd != KC_LIST, o.ko_cmd == KC_ADD, &kf,
                     err) == -1)
        goto done;
    /* The file as it is must load: a change is made on a sound base. */
    if ((ks = keys_load_buffer(kf.kf_buf, kf.kf_len, msg, sizeof msg)) ==
        NULL) {
        fprintf(err, KC_PROG ": %s is invalid now, fix it first: %s\n",
                path, msg);
        goto done;
    }
    keys_release(ks);
    ks = NULL;
    root = json_loadb(kf.kf_buf, kf.kf_len, JSON_REJECT_DUPLICATES |
                      JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(root)) {
        fprintf(err, KC_PROG ": %s: cannot parse it again\n", path);
        goto done;
    }
    if (o.ko_cmd == KC_LIST) {
        rc = kc_list(root, path, out) == 0 ? 0 : 1;
        goto done;
    }
    if (o.ko_cmd == KC_ADD) {
        if (kc_new_secret(secret, err) == -1)
            goto done;
        if ((e = kc_new_entry(&o, secret)) == NULL ||
            json_array_append_new(root, e) == -1) {
            fprintf(err, KC_PROG ": an option's value is not valid UTF-8 "
                    "(or out of memory)\n");
            goto done;
        }
    } else {
        if ((idx = kc_find(root, o.ko_name)) < 0) {
            fprintf(err, KC_PROG ": no key named \"%s\" in %s\n", o.ko_name,
                    path);
            goto done;
        }
        e = json_array_get(root, (size_t)idx);
        if (json_object_set_new(e, "enabled",
                                json_boolean(o.ko_cmd == KC_ENABLE)) == -1) {
            fprintf(err, KC_PROG ": out of memory\n");
            goto done;
        }
    }
    if ((text = json_dumps(root, JSON_INDENT(2))) == NULL) {
        fprintf(err, KC_PROG ": out of memory\n");
        goto done;
    }
    {
        size_t n = strlen(text);
        char *t2 = realloc(text, n + 2);

        if (t2 == NULL) {
            fprintf(err, KC_PROG ": out of memory\n");
            goto done;
        }
        text = t2;
        memcpy(text + n, "\n", 2);
    }
    /* The server's own loader decides. */
    if ((ks = keys_load_buffer(text, strlen(text), msg, sizeof msg)) ==
        NULL) {
        fprintf(err, KC_PROG ": refused, %s would become invalid: %s\n",
                path, msg);
        goto done;
    }
    if (kc_file_replace(path, &kf, text, strlen(text), err) == -1)
        goto done;
    if (o.ko_cmd == KC_ADD) {
        fprintf(err, KC_PROG ": added \"%s\" (port %s%s) to %s. Its key is "
                "printed once, below on stdout; only its SHA-256 is kept, "
                "so store it now.\n", o.ko_name, o.ko_port,
                o.ko_disabled ? ", disabled" : "", path);
        fprintf(out, "%s\n", secret);
    } else {
        fprintf(out, "%s \"%s\" in %s\n",
                o.ko_cmd == KC_ENABLE ? "enabled" : "disabled",
                json_string_value(json_object_get(
                    json_array_get(root, (size_t)idx), "key_name")), path);
    }
    fprintf(err, KC_PROG ": the running server takes it on reload: "
            "systemctl reload patriot-api (or kill -HUP its pid)\n");
    rc = 0;
done:
    fflush(out);
    explicit_bzero(secret, sizeof secret);
    keys_release(ks);
    kc_free_secret(text);
    keys_wipe_json(root);
    json_decref(root);
    json_decref(o.ko_fields);
    json_decref(o.ko_groupings);
    kc_file_close(&kf);
    free(owned);
    return rc;
}
