/*
 * config.c - patriot-api's configuration from the environment and the
 * command line (see config.h).
 *
 * Each setting is one row of config_opts: flag, environment variable,
 * default and, for numbers, the allowed range. The environment is read
 * first, then the flags override it; every value is checked before
 * config_parse() returns, and nothing is printed on success.
 */
#include "config.h"

#include "keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PATRIOT_VERSION
#define PATRIOT_VERSION "unknown"
#endif

#define CONFIG_PROG "patriot-api"

enum config_kind {
    CK_PATH,        /* string, must not be empty */
    CK_PATH_EMPTY,  /* string, "" allowed (means "none") */
    CK_UINT,        /* decimal in [co_min, co_max] */
};

struct config_opt {
    const char *co_flag;            /* long option, without "--" */
    const char *co_env;             /* environment variable */
    enum config_kind co_kind;
    size_t co_off;                  /* offsetof(struct cfg, ...) */
    const char *co_default;         /* as text, for the help and CK_PATH */
    unsigned co_def_num;            /* CK_UINT default */
    long long co_min, co_max;       /* CK_UINT range */
    const char *co_help;
};

static const struct config_opt config_opts[] = {
    {"key-file", "KEY_FILE", CK_PATH, offsetof(struct cfg, cfg_key_file),
     "./keys.json", 0, 0, 0, "API keys (keys.json)"},
    {"xml-dir", "XML_DIR", CK_PATH, offsetof(struct cfg, cfg_xml_dir),
     "./out/clients", 0, 0, 0, "outbox of per-client XML files"},
    {"data-file", "DATA_FILE", CK_PATH, offsetof(struct cfg, cfg_data_file),
     "./data.db", 0, 0, 0, "SQLite database"},
    {"log-file", "LOG_FILE", CK_PATH_EMPTY,
     offsetof(struct cfg, cfg_log_file), "./api_requests.log", 0, 0, 0,
     "request log (\"\" for none)"},
    {"host", "HOST", CK_PATH, offsetof(struct cfg, cfg_host), "127.0.0.1",
     0, 0, 0, "address to listen on"},
    {"port", "PORT", CK_UINT, offsetof(struct cfg, cfg_port), "8081", 8081,
     0, 65535, "TCP port (0: pick a free one)"},
    {"threads", "THREADS", CK_UINT, offsetof(struct cfg, cfg_threads), "2",
     2, 1, 64, "HTTP threads"},
    {"max-connections", "MAX_CONNECTIONS", CK_UINT,
     offsetof(struct cfg, cfg_conn_limit), "200", 200, 1, 10000,
     "open connections at most"},
    {"connection-timeout", "CONNECTION_TIMEOUT", CK_UINT,
     offsetof(struct cfg, cfg_conn_timeout), "30", 30, 1, 3600,
     "seconds an idle connection is kept"},
    {"tls-cert", "TLS_CERT", CK_PATH_EMPTY, offsetof(struct cfg, cfg_tls_cert),
     "", 0, 0, 0, "HTTPS certificate, PEM (\"\": plain HTTP)"},
    {"tls-key", "TLS_KEY", CK_PATH_EMPTY, offsetof(struct cfg, cfg_tls_key),
     "", 0, 0, 0, "HTTPS private key, PEM"},
};

#define CONFIG_NOPTS (sizeof config_opts / sizeof config_opts[0])

/* getopt_long values beyond the table rows. */
enum {
    OPT_QUIET = 256, OPT_CHECK, OPT_ENV_FILE, OPT_HELP = 'h',
    OPT_VERSION = 'V'
};

#define CONFIG_ENV_FILE_MAX (64u << 10)     /* bytes of an --env-file */

/*
 * The --env-file read by the last config_parse(): the values stored in a
 * struct cfg point into it, so it stays allocated (and reachable) until the
 * next call.
 */
static char *config_envbuf;

static void
config_usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "Usage: " CONFIG_PROG " [OPTION]...\n"
            "Serve the Patriot client registry API.\n"
            "\n"
            "Each option overrides its environment variable.\n"
            "\n");
    for (i = 0; i < CONFIG_NOPTS; i++) {
        const struct config_opt *o = &config_opts[i];
        char flag[48];

        snprintf(flag, sizeof flag, "--%s=%s", o->co_flag,
                 o->co_kind == CK_UINT ? "N" : "VALUE");
        fprintf(out, "  %-26s %s\n", flag, o->co_help);
        if (o->co_kind == CK_UINT)
            fprintf(out, "  %-26s env %s, %lld..%lld, default %s\n", "",
                    o->co_env, o->co_min, o->co_max, o->co_default);
        else
            fprintf(out, "  %-26s env %s, default %s\n", "", o->co_env,
                    o->co_default);
    }
    fprintf(out,
            "  %-26s read NAME=value settings from FILE (systemd\n"
            "  %-26s EnvironmentFile format); they override the\n"
            "  %-26s environment, flags override them\n"
            "  %-26s check the configuration and exit: 0 ok, 1 not\n"
            "  %-26s do not echo request lines on stderr\n"
            "  %-26s show this help and exit\n"
            "  %-26s show the version and exit\n"
            "\n"
            "  " CONFIG_PROG " keys add|disable|enable|list ...   manage "
            "keys.json\n"
            "  %-26s (" CONFIG_PROG " keys --help)\n",
            "--env-file=FILE", "", "", "--check-config", "--quiet",
            "-h, --help", "-V, --version", "");
}

typedef int (*config_env_fn)(void *arg, const char *name, const char *value,
                             const char *path, unsigned line, FILE *err);

/*
 * Read the EnvironmentFile at path into *bufp (malloc'd, NUL-terminated,
 * split in place; the caller frees it) and call fn for every NAME=value
 * line, in file order. Returns 0, or -1 with a message on err (from here or
 * from fn, which returns -1 to stop).
 */
static int
config_env_read(const char *path, char **bufp, config_env_fn fn, void *arg,
                FILE *err)
{
    struct stat st;
    char *buf = NULL, *p, *next;
    size_t len = 0;
    ssize_t r;
    unsigned line = 0;
    int fd = -1;

    *bufp = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
        fprintf(err, CONFIG_PROG ": --env-file %s: %s\n", path,
                strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > CONFIG_ENV_FILE_MAX) {
        fprintf(err, CONFIG_PROG ": --env-file %s: not a regular file of "
                "at most %u bytes\n", path, CONFIG_ENV_FILE_MAX);
        goto fail;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        fprintf(err, CONFIG_PROG ": --env-file %s: out of memory\n", path);
        goto fail;
    }
    while (len < (size_t)st.st_size) {
        r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            fprintf(err, CONFIG_PROG ": --env-file %s: %s\n", path,
                    strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    fd = -1;
    for (p = buf; p != NULL; p = next) {
        char *eq, *name, *value, *end;
        size_t n;

        line++;
        if ((next = strchr(p, '\n')) != NULL)
            *next++ = '\0';
        p += strspn(p, " \t\r");
        if (*p == '\0' || *p == '#' || *p == ';')
            continue;
        name = p;
        n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_");
        eq = name + n + strspn(name + n, " \t");
        if (n == 0 || (name[0] >= '0' && name[0] <= '9') || *eq != '=') {
            fprintf(err, CONFIG_PROG ": %s line %u: not NAME=value\n", path,
                    line);
            goto fail;
        }
        name[n] = '\0';
        value = eq + 1;
        value += strspn(value, " \t");
        end = value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t' ||
                               end[-1] == '\r'))
            *--end = '\0';
        if (end - value >= 2 && (value[0] == '"' || value[0] == '\'') &&
            end[-1] == value[0]) {
            end[-1] = '\0';
            value++;
        }
        if (fn(arg, name, value, path, line, err) == -1)
            goto fail;
    }
    *bufp = buf;
    return 0;
fail:
    free(buf);
    if (fd != -1)
        close(fd);
    return -1;
}

/*
 * Parse s strictly as a decimal number in [min, max]: digits only, no sign,
 * no spaces. Returns 0 and sets *out, or -1.
 */
static int
config_number(const char *s, long long min, long long max, unsigned *out)
{
    char *end;
    long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/*
 * Store value (borrowed, lives for the process) into c for option o; what
 * names the source ("--port" or "PORT") in the error message.
 */
static int
config_set(struct cfg *c, const struct config_opt *o, const char *value,
           const char *what, FILE *err)
{
    char *field = (char *)c + o->co_off;

    switch (o->co_kind) {
    case CK_PATH:
        if (value[0] == '\0') {
            fprintf(err, CONFIG_PROG ": %s: must not be empty\n", what);
            return -1;
        }
        /* FALLTHROUGH */
    case CK_PATH_EMPTY:
        memcpy(field, &value, sizeof value);
        return 0;
    case CK_UINT:
        if (config_number(value, o->co_min, o->co_max,
                          (unsigned *)(void *)field) == -1) {
            fprintf(err, CONFIG_PROG ": %s: \"%s\" is not a number in "
                    "%lld..%lld\n", what, value, o->co_min, o->co_max);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* config_env_read() callback of config_parse(): apply the settings it
 * knows, ignore other names (the file may serve other programs too). */
static int
config_env_apply(void *arg, const char *name, const char *value,
                 const char *path, unsigned line, FILE *err)
{
    struct cfg *c = arg;
    char what[PATH_MAX + 96];
    size_t i;

    for (i = 0; i < CONFIG_NOPTS; i++) {
        if (strcmp(config_opts[i].co_env, name) != 0)
            continue;
        snprintf(what, sizeof what, "%s line %u: %s", path, line, name);
        return config_set(c, &config_opts[i], value, what, err);
    }
    return 0;
}

struct config_lookup {
    const char *cl_name;
    char *cl_value;                 /* last value seen, malloc'd */
};

/* config_env_read() callback of config_env_file_lookup(). */
static int
config_env_find(void *arg, const char *name, const char *value,
                const char *path, unsigned line, FILE *err)
{
    struct config_lookup *cl = arg;

    if (strcmp(name, cl->cl_name) != 0)
        return 0;
    free(cl->cl_value);
    if ((cl->cl_value = strdup(value)) == NULL) {
        fprintf(err, CONFIG_PROG ": %s line %u: out of memory\n", path,
                line);
        return -1;
    }
    return 0;
}

/*
 * Look name up in the EnvironmentFile at path (see config.h): 1 and
 * *value (caller frees) when set, 0 when not, -1 with a message on err.
 */
int
config_env_file_lookup(const char *path, const char *name, char **value,
                       FILE *err)
{
    struct config_lookup cl = {name, NULL};
    char *buf = NULL;

    *value = NULL;
    if (config_env_read(path, &buf, config_env_find, &cl, err) == -1) {
        free(cl.cl_value);
        return -1;
    }
    free(buf);
    *value = cl.cl_value;
    return cl.cl_value != NULL;
}

/* The value of --env-file in argv (before any "--"), or NULL. */
static const char *
config_env_file_arg(int argc, char **argv)
{
    const char *found = NULL;
    int i;

    for (i = 1; i < argc && argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc)
            found = argv[++i];
        else if (strncmp(argv[i], "--env-file=", 11) == 0)
            found = argv[i] + 11;
    }
    return found;
}

/*
 * Fill c from the environment, then argv (see config.h). c is overwritten
 * entirely. out and err may be NULL (stdout and stderr are used). Can be
 * called again: getopt's state is reset first. Prints nothing on CONFIG_OK.
 */
enum config_rc
config_parse(struct cfg *c, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[CONFIG_NOPTS + 6];
    char what[64];
    const char *v;
    size_t i;
    int ch, idx;

    if (out == NULL)
        out = stdout;
    if (err == NULL)
        err = stderr;
    memset(c, 0, sizeof *c);

    for (i = 0; i < CONFIG_NOPTS; i++) {
        const struct config_opt *o = &config_opts[i];

        if (o->co_kind == CK_UINT) {
            char *field = (char *)c + o->co_off;
            memcpy(field, &o->co_def_num, sizeof o->co_def_num);
        } else if (config_set(c, o, o->co_default, o->co_flag, err) == -1) {
            return CONFIG_ERROR;
        }
        if ((v = getenv(o->co_env)) != NULL &&
            config_set(c, o, v, o->co_env, err) == -1)
            return CONFIG_ERROR;
        longopts[i].name = o->co_flag;
        longopts[i].has_arg = required_argument;
        longopts[i].flag = NULL;
        longopts[i].val = 1000 + (int)i;
    }
    longopts[i++] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
    longopts[i++] = (struct option){"check-config", no_argument, NULL,
                                    OPT_CHECK};
    longopts[i++] = (struct option){"env-file", required_argument, NULL,
                                    OPT_ENV_FILE};
    longopts[i++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[i++] = (struct option){"version", no_argument, NULL,
                                    OPT_VERSION};
    longopts[i] = (struct option){NULL, 0, NULL, 0};

    if (argc < 1 || argv == NULL)
        return CONFIG_OK;
    free(config_envbuf);
    config_envbuf = NULL;
    if ((c->cfg_env_file = config_env_file_arg(argc, argv)) != NULL &&
        config_env_read(c->cfg_env_file, &config_envbuf, config_env_apply, c,
                        err) == -1)
        return CONFIG_ERROR;
    optind = 0;             /* glibc: full reinitialisation */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hV", longopts, &idx)) != -1) {
        switch (ch) {
        case OPT_QUIET:
            c->cfg_quiet = 1;
            break;
        case OPT_CHECK:
            c->cfg_check = 1;
            break;
        case OPT_ENV_FILE:
            break;              /* read before the flags */
        case OPT_HELP:
            config_usage(out);
            return CONFIG_EXIT;
        case OPT_VERSION:
            fprintf(out, CONFIG_PROG " " PATRIOT_VERSION "\n");
            return CONFIG_EXIT;
        case ':':
            fprintf(err, CONFIG_PROG ": option \"%s\" needs a value\n",
                    argv[optind - 1]);
            return CONFIG_ERROR;
        case '?':
            if (strncmp(argv[optind - 1], "--", 2) == 0 || optopt <= ' ' ||
                optopt > '~')
                fprintf(err, CONFIG_PROG ": unknown option or unexpected "
                        "value \"%s\"; try --help\n", argv[optind - 1]);
            else
                fprintf(err, CONFIG_PROG ": unknown option \"-%c\"; try "
                        "--help\n", optopt);
            return CONFIG_ERROR;
        default:
            if (ch < 1000 || ch >= 1000 + (int)CONFIG_NOPTS)
                return CONFIG_ERROR;
            snprintf(what, sizeof what, "--%s",
                     config_opts[ch - 1000].co_flag);
            if (config_set(c, &config_opts[ch - 1000], optarg, what,
                           err) == -1)
                return CONFIG_ERROR;
            break;
        }
    }
    if (optind < argc) {
        fprintf(err, CONFIG_PROG ": unexpected argument \"%s\"; try "
                "--help\n", argv[optind]);
        return CONFIG_ERROR;
    }
    return CONFIG_OK;
}

/* ---- --check-config ------------------------------------------------- */

struct config_report {
    FILE *cr_out, *cr_err;
    unsigned cr_problems;
};

static void config_ok(struct config_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void config_bad(struct config_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One "ok" line on out. */
static void
config_ok(struct config_report *r, const char *fmt, ...)
{
    va_list ap;

    fputs(CONFIG_PROG ": ", r->cr_out);
    va_start(ap, fmt);
    vfprintf(r->cr_out, fmt, ap);
    va_end(ap);
    fputc('\n', r->cr_out);
}

/* One problem line on err; counted. */
static void
config_bad(struct config_report *r, const char *fmt, ...)
{
    va_list ap;

    fputs(CONFIG_PROG ": error: ", r->cr_err);
    va_start(ap, fmt);
    vfprintf(r->cr_err, fmt, ap);
    va_end(ap);
    fputc('\n', r->cr_err);
    r->cr_problems++;
}

/* The directory part of path into buf ("." when there is none). */
static void
config_dirname(const char *path, char *buf, size_t len)
{
    char tmp[PATH_MAX];

    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(buf, len, "%s", dirname(tmp));
}

/*
 * path does not exist: say whether it could be created. With walk set the
 * missing parents are created too (mkdir -p, as XML_DIR is), so the nearest
 * existing ancestor must be writable; otherwise the parent must exist and
 * be writable.
 */
static void
config_check_creatable(struct config_report *r, const char *what,
                       const char *path, int walk)
{
    char dir[PATH_MAX], up[PATH_MAX];
    struct stat st;

    config_dirname(path, dir, sizeof dir);
    while (stat(dir, &st) == -1 && errno == ENOENT && walk &&
           strcmp(dir, "/") != 0 && strcmp(dir, ".") != 0) {
        config_dirname(dir, up, sizeof up);
        snprintf(dir, sizeof dir, "%s", up);
    }
    if (stat(dir, &st) == -1) {
        config_bad(r, "%s %s: missing, and its directory %s: %s", what, path,
                   dir, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        config_bad(r, "%s %s: missing, and %s is not a directory", what,
                   path, dir);
        return;
    }
    if (access(dir, W_OK | X_OK) == -1) {
        config_bad(r, "%s %s: missing, and this user (uid %u) cannot create "
                   "it in %s: %s", what, path, (unsigned)geteuid(), dir,
                   strerror(errno));
        return;
    }
    config_ok(r, "%s %s: missing, will be created in %s", what, path, dir);
}

/* XML_DIR: a writable directory, or one mkdir -p can make. */
static void
config_check_xml_dir(struct config_report *r, const char *path)
{
    struct stat st;

    if (stat(path, &st) == -1) {
        if (errno == ENOENT)
            config_check_creatable(r, "XML_DIR", path, 1);
        else
            config_bad(r, "XML_DIR %s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        config_bad(r, "XML_DIR %s: not a directory", path);
        return;
    }
    if (access(path, W_OK | X_OK) == -1) {
        config_bad(r, "XML_DIR %s: not writable by this user (uid %u): %s",
                   path, (unsigned)geteuid(), strerror(errno));
        return;
    }
    config_ok(r, "XML_DIR %s: writable directory", path);
}

/*
 * DATA_FILE: an existing file must be a SQLite database (or empty) that
 * this user can read and write, in a directory it can write (SQLite keeps
 * DATA_FILE-wal and -shm beside it); a missing one must be creatable. Only
 * the 16-byte header is read: nothing is opened through SQLite, so the
 * check changes nothing.
 */
static void
config_check_data_file(struct config_report *r, const char *path)
{
    static const char magic[16] = "SQLite format 3";   /* with its NUL */
    char head[16], dir[PATH_MAX];
    struct stat st;
    ssize_t n;
    int fd;

    if (stat(path, &st) == -1) {
        if (errno == ENOENT)
            config_check_creatable(r, "DATA_FILE", path, 0);
        else
            config_bad(r, "DATA_FILE %s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        config_bad(r, "DATA_FILE %s: not a regular file", path);
        return;
    }
    if (access(path, R_OK | W_OK) == -1) {
        config_bad(r, "DATA_FILE %s: this user (uid %u) cannot read and "
                   "write it: %s", path, (unsigned)geteuid(),
                   strerror(errno));
        return;
    }
    config_dirname(path, dir, sizeof dir);
    if (access(dir, W_OK | X_OK) == -1) {
        config_bad(r, "DATA_FILE %s: its directory %s is not writable by "
                   "this user (uid %u); SQLite keeps the -wal and -shm "
                   "files there", path, dir, (unsigned)geteuid());
        return;
    }
    if (st.st_size > 0) {
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
            config_bad(r, "DATA_FILE %s: %s", path, strerror(errno));
            return;
        }
        n = read(fd, head, sizeof head);
        close(fd);
        if (n != (ssize_t)sizeof head ||
            memcmp(head, magic, sizeof magic) != 0) {
            config_bad(r, "DATA_FILE %s: not a SQLite database", path);
            return;
        }
    }
    config_ok(r, "DATA_FILE %s: SQLite database, readable and writable",
              path);
}

/* LOG_FILE: "" (none), a file this user can append to, or creatable. */
static void
config_check_log_file(struct config_report *r, const char *path)
{
    struct stat st;

    if (path[0] == '\0') {
        config_ok(r, "LOG_FILE: none (request lines on stderr only)");
        return;
    }
    if (stat(path, &st) == -1) {
        if (errno == ENOENT)
            config_check_creatable(r, "LOG_FILE", path, 0);
        else
            config_bad(r, "LOG_FILE %s: %s", path, strerror(errno));
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        config_bad(r, "LOG_FILE %s: is a directory", path);
        return;
    }
    if (access(path, W_OK) == -1) {
        config_bad(r, "LOG_FILE %s: this user (uid %u) cannot append to it: "
                   "%s", path, (unsigned)geteuid(), strerror(errno));
        return;
    }
    config_ok(r, "LOG_FILE %s: writable", path);
}

/* KEY_FILE: loads with the server's own loader. */
static void
config_check_keys(struct config_report *r, const char *path)
{
    struct keyset *ks;
    char err[512];
    size_t i, n, usable = 0;
    time_t now = time(NULL);

    if ((ks = keys_load(path, err, sizeof err)) == NULL) {
        config_bad(r, "KEY_FILE: %s", err);
        return;
    }
    n = keys_count(ks);
    for (i = 0; i < n; i++) {
        const struct key *k = keys_get(ks, i);

        if (k->k_enabled && (k->k_valid_to == 0 || now < k->k_valid_to))
            usable++;
    }
    config_ok(r, "KEY_FILE %s: %zu keys, %zu enabled and not expired%s",
              path, n, usable,
              usable == 0 ? " (every request will be refused until one is "
                            "added: " CONFIG_PROG " keys add)" : "");
    keys_release(ks);
}

/*
 * Check c without changing anything (see config.h). Returns 0 or -1; every
 * finding is printed.
 */
int
config_check(const struct cfg *c, FILE *out, FILE *err)
{
    struct config_report r = {out, err, 0};
    unsigned char addr[sizeof(struct in6_addr)];

    config_check_keys(&r, c->cfg_key_file);
    config_check_xml_dir(&r, c->cfg_xml_dir);
    config_check_data_file(&r, c->cfg_data_file);
    config_check_log_file(&r, c->cfg_log_file);
    if (inet_pton(AF_INET, c->cfg_host, addr) == 1 ||
        inet_pton(AF_INET6, c->cfg_host, addr) == 1)
        config_ok(&r, "HOST %s PORT %u: address ok", c->cfg_host,
                  c->cfg_port);
    else
        config_bad(&r, "HOST \"%s\": not an IPv4 or IPv6 address (a host "
                   "name is not accepted)", c->cfg_host);
    if (r.cr_problems > 0) {
        fprintf(err, CONFIG_PROG ": configuration check failed: %u "
                "problem%s\n", r.cr_problems, r.cr_problems == 1 ? "" : "s");
        return -1;
    }
    fprintf(out, CONFIG_PROG ": configuration ok\n");
    return 0;
}
