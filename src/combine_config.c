/*
 * combine_config.c - the configuration of patriot-combine (defaults, the
 * environment, --config FILE) and its schedule (see combine_config.h).
 * Moved out of combine.c as it was.
 */
#include "combine_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smb.h"

/* ---- schedule ------------------------------------------------------- */

time_t
combine_next_run(time_t now, int minute)
{
    struct tm tm;
    time_t t;
    int i;

    localtime_r(&now, &tm);
    tm.tm_min = minute;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    for (i = 0; t <= now && i < 3; i++) {
        localtime_r(&now, &tm);
        tm.tm_hour += i + 1;
        tm.tm_min = minute;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return t;
}

/* ---- configuration -------------------------------------------------- */

struct cfg_str {
    const char *name;
    size_t off;
    const char *def;
};

#define CS(n, f, d) {n, offsetof(struct combine_cfg, f), d}
static const struct cfg_str cfg_strs[] = {
    CS("COMBINED_FILENAME", cc_combined_name, "clients.xml"),
    CS("COMBINE_LOG_FILE", cc_log_file, "./xml_combine.log"),
    CS("CLIENT_STATE_FILE", cc_state_file, "./client_state.json"),
    CS("DATA_FILE", cc_data_file, "./data.db"),
    CS("ERROR_LOG_FILE", cc_error_log, "./import_errors.log"),
    CS("READY_DIR", cc_ready_dir, "./ready_for_import"),
    CS("SMB_DOMAIN", cc_smb_domain, "WORKGROUP"),
    CS("SMB_PASSWORD_FILE", cc_smb_password_file, ""),
    CS("SMB_REMOTE_PATH", cc_smb_remote_path, "clients.xml"),
    CS("SMB_RESULTS_FILENAME", cc_smb_results, "clients_Import_Results.txt"),
    CS("SMB_SERVER_IP", cc_smb_server, ""),
    CS("SMB_SERVER_NAME", cc_smb_server_name, ""),
    CS("SMB_SHARE_NAME", cc_smb_share, ""),
    CS("SMB_USERNAME", cc_smb_user, ""),
    CS("XML_DIR", cc_xml_dir, "./out/clients"),
};

static const char *cfg_nums[] = {
    "MAX_CLIENTS_PER_RUN", "RUN_AT_MINUTE", "SMB_ENABLED", "SMB_PORT",
    "SMB_TIMEOUT_MS",
};

static int
parse_long(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* Apply one NAME=value. 0, 1 if the name is unknown, -1 bad value. */
static int
cfg_set(struct combine_cfg *c, const char *name, const char *v, char *err,
        size_t errlen)
{
    size_t i;
    long n;

    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        if (strcmp(name, cfg_strs[i].name) == 0) {
            char **slot = (char **)((char *)c + cfg_strs[i].off);
            char *d = strdup(v);

            if (d == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(*slot);
            *slot = d;
            return 0;
        }
    }
    if (strcmp(name, "SMB_PASSWORD") == 0) {
        snprintf(err, errlen, "SMB_PASSWORD is not accepted: put the "
                              "password in a file readable by its owner "
                              "alone and name it in SMB_PASSWORD_FILE");
        return -1;
    }
    if (strcmp(name, "SMB_ENABLED") == 0) {
        c->cc_smb_enabled = strcasecmp(v, "true") == 0 ||
                            strcmp(v, "1") == 0 ||
                            strcasecmp(v, "yes") == 0;
        return 0;
    }
    if (strcmp(name, "MAX_CLIENTS_PER_RUN") == 0) {
        if (parse_long(v, 0, 10000000, &n) < 0)
            goto bad;
        c->cc_max_clients = n;
        return 0;
    }
    if (strcmp(name, "RUN_AT_MINUTE") == 0) {
        if (parse_long(v, 0, 59, &n) < 0)
            goto bad;
        c->cc_run_at_minute = (int)n;
        return 0;
    }
    if (strcmp(name, "SMB_PORT") == 0) {
        if (parse_long(v, 0, 65535, &n) < 0)
            goto bad;
        c->cc_smb_port = (unsigned)n;
        return 0;
    }
    if (strcmp(name, "SMB_TIMEOUT_MS") == 0) {
        if (parse_long(v, 100, 600000, &n) < 0)
            goto bad;
        c->cc_smb_timeout_ms = (int)n;
        return 0;
    }
    return 1;
bad:
    snprintf(err, errlen, "%s: bad value '%s'", name, v);
    return -1;
}

static int
cfg_file(struct combine_cfg *c, const char *file, char *err, size_t errlen)
{
    FILE *f;
    char line[4096];
    int lineno = 0, rc = -1;

    if ((f = fopen(file, "re")) == NULL) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *eq, *v, *e;
        size_t vl;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#' || *p == ';')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        if ((eq = strchr(p, '=')) == NULL) {
            snprintf(err, errlen, "%s:%d: expected NAME=value", file,
                     lineno);
            goto done;
        }
        for (e = eq; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--)
            ;
        *e = '\0';
        v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        switch (cfg_set(c, p, v, err, errlen)) {
        case 0:
            break;
        case 1:
            log_warnx("%s:%d: unknown setting %s ignored", file, lineno, p);
            break;
        default:
            goto done;
        }
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

int
combine_config_load(struct combine_cfg *c, const char *file, char *err,
                    size_t errlen)
{
    size_t i;
    const char *v;

    memset(c, 0, sizeof(*c));
    c->cc_max_clients = 300;
    c->cc_run_at_minute = 59;
    c->cc_smb_timeout_ms = 20000;
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        v = getenv(cfg_strs[i].name);
        if (cfg_set(c, cfg_strs[i].name, v ? v : cfg_strs[i].def, err,
                    errlen) < 0)
            return -1;
    }
    for (i = 0; i < sizeof(cfg_nums) / sizeof(cfg_nums[0]); i++) {
        if ((v = getenv(cfg_nums[i])) != NULL &&
            cfg_set(c, cfg_nums[i], v, err, errlen) < 0)
            return -1;
    }
    if (getenv("SMB_PASSWORD") != NULL) {
        snprintf(err, errlen, "SMB_PASSWORD in the environment is not "
                              "accepted: use SMB_PASSWORD_FILE");
        return -1;
    }
    if (file != NULL && cfg_file(c, file, err, errlen) < 0)
        return -1;
    if (strchr(c->cc_combined_name, '/') != NULL ||
        !smb_name_ok(c->cc_combined_name)) {
        snprintf(err, errlen, "COMBINED_FILENAME must be a plain file name");
        return -1;
    }
    if (c->cc_smb_enabled) {
        if (*c->cc_smb_server == '\0' || *c->cc_smb_share == '\0' ||
            *c->cc_smb_user == '\0') {
            snprintf(err, errlen, "SMB_ENABLED=true needs SMB_SERVER_IP, "
                                  "SMB_SHARE_NAME and SMB_USERNAME");
            return -1;
        }
        if (!smb_name_ok(c->cc_smb_remote_path) ||
            !smb_name_ok(c->cc_smb_results) ||
            strlen(c->cc_smb_remote_path) < 5 ||
            strcmp(c->cc_smb_remote_path + strlen(c->cc_smb_remote_path) -
                       4,
                   ".xml") != 0) {
            snprintf(err, errlen, "SMB_REMOTE_PATH (a .xml name) or "
                                  "SMB_RESULTS_FILENAME is not a safe "
                                  "share path");
            return -1;
        }
        if (*c->cc_smb_password_file == '\0') {
            snprintf(err, errlen, "SMB_ENABLED=true needs SMB_PASSWORD_FILE");
            return -1;
        }
    }
    return 0;
}

void
combine_config_free(struct combine_cfg *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++) {
        char **slot = (char **)((char *)c + cfg_strs[i].off);

        free(*slot);
        *slot = NULL;
    }
}
