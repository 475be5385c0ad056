/*
 * api-main.c - patriot-api: parse the configuration, wire the modules, serve
 * until SIGTERM or SIGINT; SIGHUP reloads keys.json and reopens the request
 * log. "--check-config" checks and exits; "keys ..." edits keys.json
 * (keys_cli.c).
 *
 * Under systemd (Type=notify) the server tells the manager READY=1 once it
 * listens, RELOADING=1 / READY=1 around a reload, STOPPING=1 when it stops,
 * and WATCHDOG=1 every half WatchdogSec= when the unit sets one. Outside
 * systemd these calls do nothing.
 */
#include <errno.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "keys.h"
#include "keys_cli.h"
#include "log.h"
#include "metrics.h"
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
            /* 0770 less the umask: the unit's UMask=0007 lets
             * patriot-combine (same group) move files out. */
            if (mkdir(d, 0770) < 0 && errno != EEXIST)
                rc = -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(d);
    return rc;
}

/*
 * Make XML_DIR/<key_name> of every key that lacks one, mode 0770 less the
 * umask. Made here rather than at a tenant's first write (0750 there), so
 * that under the units' UMask=0007 patriot-combine, a member of the same
 * group, can move files out of them. Failures are logged; the write path
 * makes the folder again if needed.
 */
static void
make_key_dirs(const char *xml_dir, const struct keyset *ks)
{
    char path[4096];
    size_t i;

    for (i = 0; i < keys_count(ks); i++) {
        const struct key *k = keys_get(ks, i);

        if ((size_t)snprintf(path, sizeof path, "%s/%s", xml_dir,
                             k->k_name) >= sizeof path)
            continue;
        if (mkdir(path, 0770) < 0 && errno != EEXIST)
            log_warn("cannot make the outbox folder %s", path);
    }
}

/* CLOCK_MONOTONIC in microseconds (sd_notify's MONOTONIC_USEC). */
static uint64_t
mono_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Wait for one of sigs. With a watchdog (wd_usec > 0) tell systemd we are
 * alive every half period meanwhile. Returns the signal.
 */
static int
wait_signal(const sigset_t *sigs, uint64_t wd_usec, uint64_t *last_ping)
{
    struct timespec ts;
    uint64_t now, due;
    int sig;

    for (;;) {
        if (wd_usec == 0) {
            if (sigwait(sigs, &sig) == 0)
                return sig;
            continue;
        }
        now = mono_usec();
        due = *last_ping + wd_usec / 2;
        if (now >= due) {
            sd_notify(0, "WATCHDOG=1");
            *last_ping = now;
            due = now + wd_usec / 2;
        }
        ts.tv_sec = (time_t)((due - now) / 1000000u);
        ts.tv_nsec = (long)((due - now) % 1000000u) * 1000;
        if ((sig = sigtimedwait(sigs, NULL, &ts)) > 0)
            return sig;
    }
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
    uint64_t wd_usec = 0, last_ping = 0;
    unsigned port;
    int sig, status = 1;

    if (argc >= 2 && strcmp(argv[1], "keys") == 0) {
        int rc;

        rc = keys_cli_main(argc - 1, argv + 1, stdout, stderr);
        log_close();
        return rc;
    }
    switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
    case CONFIG_OK:
        break;
    case CONFIG_EXIT:
        return 0;
    default:
        /* --check-config answers 0 or 1, whatever is wrong. */
        for (sig = 1; sig < argc; sig++)
            if (strcmp(argv[sig], "--check-config") == 0)
                return 1;
        return 2;
    }
    if (cfg.cfg_check) {
        int rc;

        rc = config_check(&cfg, stdout, stderr) == 0 ? 0 : 1;
        if (http_check_settings(cfg.cfg_tls_cert, cfg.cfg_tls_key, err,
                                sizeof(err)) < 0) {
            fprintf(stderr, "patriot-api: %s\n", err);
            rc = 1;
        } else {
            fprintf(stdout, "ok: limits, trusted proxies and TLS settings\n");
        }
        log_close();
        return rc;
    }
    /* Keys (and the TLS key) are in memory from now on: no core dumps. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (sd_watchdog_enabled(0, &wd_usec) <= 0)
        wd_usec = 0;
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
    make_key_dirs(cfg.cfg_xml_dir, ks);
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
    ho.ho_tls_cert = cfg.cfg_tls_cert;
    ho.ho_tls_key = cfg.cfg_tls_key;
    if (metrics_setup(&app, &ho, err, sizeof(err)) < 0) {
        log_warnx("%s", err);
        goto out_writer;
    }
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
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s port %u, %zu keys",
               cfg.cfg_host, port, keys_count(ks));
    last_ping = mono_usec();

    for (;;) {
        sig = wait_signal(&sigs, wd_usec, &last_ping);
        if (sig == SIGHUP) {
            struct keyset *nks;

            sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
                       (unsigned long long)mono_usec());
            if (log_open_request_log(cfg.cfg_log_file) < 0)
                log_warn("reload: cannot reopen the request log %s, "
                         "keeping the old one", cfg.cfg_log_file);
            nks = keys_load(cfg.cfg_key_file, err, sizeof(err));
            if (nks == NULL) {
                log_warnx("reload refused, keeping the old keys: %s", err);
                sd_notify(0, "READY=1\nSTATUS=reload refused, old keys "
                          "kept (see the log)");
            } else {
                size_t nkeys = keys_count(nks);

                log_info("reloaded %s: %zu keys", cfg.cfg_key_file, nkeys);
                make_key_dirs(cfg.cfg_xml_dir, nks);
                api_set_keys(&app, nks);    /* owns nks now */
                /* READY only once new requests see the new keys:
                 * "systemctl reload" returns on it. */
                sd_notifyf(0, "READY=1\nSTATUS=listening on %s port %u, "
                           "%zu keys", cfg.cfg_host, port, nkeys);
            }
            continue;
        }
        log_info("signal %d: stopping", sig);
        break;
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    status = 0;
    http_stop(srv, 5000);
out_writer:
    metrics_stop(&app);     /* its listener reads the outbox: before it */
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
