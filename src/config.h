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
    int cfg_quiet;                  /* --quiet: no request lines on stderr */
};

enum config_rc {
    CONFIG_OK = 0,      /* run */
    CONFIG_EXIT = 1,    /* --help or --version printed: exit 0 */
    CONFIG_ERROR = -1,  /* message printed to err: exit 2 */
};

/*
 * Fill c from the environment and argv (argv wins). Strings point into
 * argv or the environment (borrowed, live for the process). Help and
 * version text go to out, errors to err.
 */
enum config_rc config_parse(struct cfg *c, int argc, char **argv, FILE *out,
                            FILE *err);
