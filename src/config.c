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

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
};

#define CONFIG_NOPTS (sizeof config_opts / sizeof config_opts[0])

/* getopt_long values beyond the table rows. */
enum { OPT_QUIET = 256, OPT_HELP = 'h', OPT_VERSION = 'V' };

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
            "  %-26s do not echo request lines on stderr\n"
            "  %-26s show this help and exit\n"
            "  %-26s show the version and exit\n",
            "--quiet", "-h, --help", "-V, --version");
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

/*
 * Fill c from the environment, then argv (see config.h). c is overwritten
 * entirely. out and err may be NULL (stdout and stderr are used). Can be
 * called again: getopt's state is reset first. Prints nothing on CONFIG_OK.
 */
enum config_rc
config_parse(struct cfg *c, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[CONFIG_NOPTS + 4];
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
    longopts[i++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[i++] = (struct option){"version", no_argument, NULL,
                                    OPT_VERSION};
    longopts[i] = (struct option){NULL, 0, NULL, 0};

    if (argc < 1 || argv == NULL)
        return CONFIG_OK;
    optind = 0;             /* glibc: full reinitialisation */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hV", longopts, &idx)) != -1) {
        switch (ch) {
        case OPT_QUIET:
            c->cfg_quiet = 1;
            break;
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
