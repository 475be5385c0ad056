/*
 * config.h - patriot-api's configuration: environment variables as in the
 * original service, command-line flags override them. Parsed and validated
 * once at start-up into one read-only struct.
 */
#pragma once

#include <stdio.h>

struct cfg {
    const char *cfg_key_file;       /* KEY_FILE, --key-file; ./keys.json */
    const char *cfg_xml_dir;        /* XML_DIR, --xml-dir; ./out/clients */
    const char *cfg_data_file;      /* DATA_FILE, --data-file; ./data.db */
    const char *cfg_log_file;       /* LOG_FILE, --log-file; ./api_requests.log */
    const char *cfg_host;           /* HOST, --host; 127.0.0.1 */
    unsigned cfg_port;              /* PORT, --port; 8081; 0 = pick a free one */
    unsigned cfg_threads;           /* THREADS, --threads; 2 HTTP threads */
    unsigned cfg_conn_limit;        /* MAX_CONNECTIONS, --max-connections; 200 */
    unsigned cfg_conn_timeout;      /* CONNECTION_TIMEOUT s, idle; 30 */
    const char *cfg_tls_cert;       /* TLS_CERT, --tls-cert; "" = plain HTTP */
    const char *cfg_tls_key;        /* TLS_KEY, --tls-key */
    int cfg_quiet;                  /* --quiet: no request lines on stderr */
    int cfg_check;                  /* --check-config: check, then exit */
    const char *cfg_env_file;       /* --env-file: NAME=value file, or NULL */
};

enum config_rc {
    CONFIG_OK = 0,      /* run */
    CONFIG_EXIT = 1,    /* --help or --version printed: exit 0 */
    CONFIG_ERROR = -1,  /* message printed to err: exit 2 */
};

/*
 * Fill c from the environment, then the file named by --env-file (systemd
 * EnvironmentFile format), then argv: each later source wins. Strings point
 * into argv, the environment or a buffer config.c keeps until the next
 * call (borrowed, live for the process). Help and version text go to out,
 * errors to err.
 */
enum config_rc config_parse(struct cfg *c, int argc, char **argv, FILE *out,
                            FILE *err);

/*
 * Check, without changing anything, that the server could start with c, as
 * "nginx -t" does: keys.json loads, XML_DIR is (or can be created as) a
 * writable directory, DATA_FILE is a SQLite database that can be opened for
 * writing (or can be created), LOG_FILE can be appended to (or created),
 * HOST is an IPv4 or IPv6 address. Each finding is one line, "ok" lines on
 * out, problems on err (never a secret). Returns 0 when all is well, -1
 * when anything is wrong; every problem is reported, not only the first.
 * out and err must not be NULL.
 */
int config_check(const struct cfg *c, FILE *out, FILE *err);

/*
 * Read the systemd EnvironmentFile at path and look up name. Lines are
 * NAME=value; blank lines and lines starting with # or ; are skipped; a
 * value in single or double quotes loses them. Returns 1 and sets *value
 * (malloc'd, the caller frees it) when name is set, 0 when it is not, -1
 * with a message on err when the file cannot be read or a line is not
 * NAME=value.
 */
int config_env_file_lookup(const char *path, const char *name, char **value,
                           FILE *err);
