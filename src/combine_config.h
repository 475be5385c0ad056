/*
 * combine_config.h - the configuration of patriot-combine (defaults, the
 * environment, --config FILE of NAME=value lines) and when it runs.
 */
#pragma once

#include <stddef.h>
#include <time.h>

/* The configuration (environment or --config FILE, NAME=value lines). */
struct combine_cfg {
    char *cc_data_file;         /* DATA_FILE: ./data.db */
    char *cc_xml_dir;           /* XML_DIR: ./out/clients */
    char *cc_ready_dir;         /* READY_DIR: ./ready_for_import */
    char *cc_combined_name;     /* COMBINED_FILENAME: clients.xml */
    char *cc_log_file;          /* COMBINE_LOG_FILE: ./xml_combine.log */
    char *cc_error_log;         /* ERROR_LOG_FILE: ./import_errors.log */
    char *cc_state_file;        /* CLIENT_STATE_FILE: ./client_state.json */
    long cc_max_clients;        /* MAX_CLIENTS_PER_RUN: 300; 0 = no limit */
    int cc_run_at_minute;       /* RUN_AT_MINUTE: 59 */
    int cc_smb_enabled;         /* SMB_ENABLED: false */
    char *cc_smb_server;        /* SMB_SERVER_IP */
    char *cc_smb_server_name;   /* SMB_SERVER_NAME (informational) */
    char *cc_smb_share;         /* SMB_SHARE_NAME */
    char *cc_smb_user;          /* SMB_USERNAME */
    char *cc_smb_domain;        /* SMB_DOMAIN: WORKGROUP */
    char *cc_smb_remote_path;   /* SMB_REMOTE_PATH: clients.xml */
    char *cc_smb_results;       /* SMB_RESULTS_FILENAME */
    char *cc_smb_password_file; /* SMB_PASSWORD_FILE */
    unsigned cc_smb_port;       /* SMB_PORT: 0 = 445 */
    int cc_smb_timeout_ms;      /* SMB_TIMEOUT_MS: 20000 */
    size_t cc_walk_files;       /* --from-dir: files taken per walk of
                                 * XML_DIR (0: 65536); not a setting, the
                                 * tests set a small one */
};

/*
 * Fill c with defaults, then the environment, then the NAME=value lines of
 * file (may be NULL; file wins). Validates everything (numbers in range,
 * remote names safe). Returns 0, or -1 with a message in err. Free with
 * combine_config_free (also after a failure).
 */
int combine_config_load(struct combine_cfg *c, const char *file, char *err,
                        size_t errlen);
void combine_config_free(struct combine_cfg *c);

/* The next time after now whose local minute is minute and second 0. */
time_t combine_next_run(time_t now, int minute);
