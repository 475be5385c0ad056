/*
 * api-main.c - patriot-api: parse the configuration, wire the modules, serve
 * until SIGTERM or SIGINT; SIGHUP reloads keys.json.
 */
#include <errno.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "writer.h"

static int
mkdirs(const char *dir)
{
    char *p, *d = strdup(dir);
    int rc = 0;

    if (d == NULL)
        return -1;
    for (p = d + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(d, 0750) < 0 && errno != EEXIST)
                rc = -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(d);
    return rc;
}

int
main(int argc, char **argv)
{
    static struct app app;
    struct cfg cfg;
    struct keyset *ks;
    struct store *ws = NULL;
    struct http_server *srv = NULL;
    struct http_opts ho;
    sigset_t sigs;
    char err[512];
    size_t checked = 0, rewritten = 0, pruned = 0;
    unsigned port;
    int sig, status = 1;

    switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
    case CONFIG_OK:
        break;
    case CONFIG_EXIT:
        return 0;
    default:
        return 2;
    }
    /* Every thread inherits this mask; only main takes the signals. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    xmlInitParser();
    http_json_init();       /* before any other jansson call */
    json_object_seed(0);
    log_set_request_echo(!cfg.cfg_quiet);

    if (log_open_request_log(cfg.cfg_log_file) < 0) {
        log_warn("cannot open the request log %s", cfg.cfg_log_file);
        return 1;
    }
    if ((ks = keys_load(cfg.cfg_key_file, err, sizeof(err))) == NULL) {
        log_warnx("%s", err);
        goto out;
    }
    api_app_init(&app);
    app.ap_cfg = &cfg;
    api_set_keys(&app, ks);
    if (mkdirs(cfg.cfg_xml_dir) < 0 || access(cfg.cfg_xml_dir, W_OK) < 0) {
        log_warn("XML_DIR %s is not a writable directory", cfg.cfg_xml_dir);
        goto out_app;
    }
    if ((ws = store_open(cfg.cfg_data_file, 0, err, sizeof(err))) == NULL) {
        log_warnx("DATA_FILE %s", err);
        goto out_app;
    }
    if ((app.ap_outbox = outbox_start(cfg.cfg_xml_dir, cfg.cfg_data_file, err,
                                      sizeof(err))) == NULL) {
        log_warnx("outbox: %s", err);
        store_close(ws);
        goto out_app;
    }
    /* The database is the truth: repair what a crash left behind. */
    if (outbox_reconcile(ws, cfg.cfg_xml_dir, app.ap_outbox, &checked,
                         &rewritten) < 0)
        log_warnx("reconcile: some outbox files could not be rebuilt");
    if (rewritten > 0)
        log_info("reconcile: %zu of %zu pending clients' files rebuilt",
                 rewritten, checked);
    if (outbox_prune(ws, cfg.cfg_xml_dir, ks, &pruned) < 0)
        log_warnx("reconcile: some stale outbox files could not be removed");
    if (pruned > 0)
        log_info("reconcile: %zu files of deleted clients or interrupted"
                 " writes removed", pruned);
    if ((app.ap_writer = writer_start(ws, app.ap_outbox, err,
                                      sizeof(err))) == NULL) {
        log_warnx("writer: %s", err);
        goto out_outbox;
    }
    memset(&ho, 0, sizeof(ho));
    ho.ho_host = cfg.cfg_host;
    ho.ho_port = cfg.cfg_port;
    ho.ho_threads = cfg.cfg_threads;
    ho.ho_conn_limit = cfg.cfg_conn_limit;
    ho.ho_per_ip_limit = 0;
    ho.ho_conn_timeout = cfg.cfg_conn_timeout;
    ho.ho_routes = api_routes;
    ho.ho_nroutes = api_nroutes;
    ho.ho_auth = api_auth;
    ho.ho_app = &app;
    if ((srv = http_start(&ho, &port, err, sizeof(err))) == NULL) {
        log_warnx("%s", err);
        goto out_writer;
    }
    if (cfg.cfg_port == 0) {
        printf("%u\n", port);
        fflush(stdout);
    }
    log_info("patriot-api %s listening on %s port %u, %zu keys",
             PATRIOT_VERSION, cfg.cfg_host, port, keys_count(ks));

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            struct keyset *nks = keys_load(cfg.cfg_key_file, err,
                                           sizeof(err));
            if (nks == NULL) {
                log_warnx("reload refused, keeping the old keys: %s", err);
            } else {
                log_info("reloaded %s: %zu keys", cfg.cfg_key_file,
                         keys_count(nks));
                api_set_keys(&app, nks);
            }
            continue;
        }
        log_info("signal %d: stopping", sig);
        break;
    }
    status = 0;
    http_stop(srv, 5000);
out_writer:
    if (app.ap_writer != NULL) {
        uint64_t changes, commits;

        writer_stats(app.ap_writer, &changes, &commits);
        log_info("writer: %llu changes in %llu transactions",
                 (unsigned long long)changes, (unsigned long long)commits);
    }
    writer_stop(app.ap_writer);
out_outbox:
    outbox_stop(app.ap_outbox);
out_app:
    api_app_close(&app);
out:
    log_close();
    xmlCleanupParser();
    return status;
}
