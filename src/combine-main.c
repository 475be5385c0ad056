/*
 * combine-main.c - patriot-combine: parse the configuration, then run the
 * batch once (--once, --dry-run) or as a daemon at RUN_AT_MINUTE of every
 * hour. SIGTERM/SIGINT end it between steps; SIGUSR1 starts a run now.
 */
#include <errno.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "combine.h"
#include "log.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t run_now;

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        run_now = 1;
    else
        stop_flag = 1;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: patriot-combine [--config FILE] [--once] [--dry-run] "
            "[--from-dir]\n"
            "       patriot-combine [--config FILE] status\n"
            "       patriot-combine --help | --version\n"
            "\n"
            "Combines the clients waiting in the outbox of patriot-api into "
            "one clients.xml,\n"
            "uploads it to Patriot's SMB share and records the import "
            "results.\n"
            "\n"
            "  --config FILE  NAME=value lines (systemd EnvironmentFile "
            "format); they\n"
            "                 override the environment\n"
            "  --once         one run, then exit: 0 done or nothing to do, 1 "
            "failed\n"
            "  --dry-run      build READY_DIR/clients.xml only: no upload, "
            "no change\n"
            "  --from-dir     no database: combine the *.xml files under "
            "XML_DIR\n"
            "  -n, --check, --check-config\n"
            "                 check the configuration and exit: 0 ok, 1 not\n"
            "  status         counts per import state, last batch, last "
            "error\n"
            "\n"
            "Settings: DATA_FILE XML_DIR READY_DIR COMBINED_FILENAME "
            "COMBINE_LOG_FILE\n"
            "ERROR_LOG_FILE CLIENT_STATE_FILE MAX_CLIENTS_PER_RUN "
            "RUN_AT_MINUTE SMB_ENABLED\n"
            "SMB_SERVER_IP SMB_SERVER_NAME SMB_SHARE_NAME SMB_USERNAME "
            "SMB_DOMAIN\n"
            "SMB_REMOTE_PATH SMB_RESULTS_FILENAME SMB_PORT SMB_TIMEOUT_MS "
            "SMB_PASSWORD_FILE\n"
            "(see docs/COMBINE.md)\n");
}

static void
sleep_until(time_t when)
{
    struct timespec ts;
    time_t now;

    while (!stop_flag && !run_now && (now = time(NULL)) < when) {
        ts.tv_sec = when - now > 60 ? 60 : when - now;
        ts.tv_nsec = 0;
        (void)nanosleep(&ts, NULL);     /* a signal cuts it short */
    }
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"once", no_argument, NULL, 'o'},
        {"dry-run", no_argument, NULL, 'd'},
        {"from-dir", no_argument, NULL, 'f'},
        {"check", no_argument, NULL, 'n'},
        {"check-config", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct combine_cfg cfg;
    struct combine *cb = NULL;
    struct sigaction sa;
    const char *config = NULL;
    unsigned flags = 0;
    int once = 0, check = 0, status = 0, ch, ret = 2;
    char err[512];

    while ((ch = getopt_long(argc, argv, "c:n", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'd':
            flags |= COMBINE_DRY_RUN;
            once = 1;
            break;
        case 'f':
            flags |= COMBINE_FROM_DIR;
            break;
        case 'n':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("patriot-combine %s\n", PATRIOT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        if (strcmp(argv[optind], "status") == 0 && optind + 1 == argc) {
            status = 1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (check)
        ret = 1;            /* a failed check answers 1, as nginx -t */
    /* The SMB password is in memory from here: no core dump, no ptrace. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (combine_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "patriot-combine: %s\n", err);
        goto done;
    }
    if (status) {
        ret = combine_status(&cfg, stdout) < 0 ? 1 : 0;
        goto done;
    }
    xmlInitParser();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    if ((cb = combine_new(&cfg, flags, &stop_flag, err, sizeof(err))) ==
        NULL) {
        fprintf(stderr, "patriot-combine: %s\n", err);
        goto done;
    }
    if (check) {
        printf("configuration ok\n");
        ret = 0;
        goto done;
    }
    if (once) {
        switch (combine_run(cb, NULL)) {
        case COMBINE_OK:
        case COMBINE_NOTHING:
            ret = 0;
            break;
        default:
            ret = 1;
            break;
        }
        goto done;
    }
    log_info("patriot-combine %s: runs at minute %d of every hour%s",
             PATRIOT_VERSION, cfg.cc_run_at_minute,
             cfg.cc_smb_enabled ? "" : " (SMB off)");
    while (!stop_flag) {
        time_t next = combine_next_run(time(NULL), cfg.cc_run_at_minute);
        struct tm tm;
        char when[32];

        localtime_r(&next, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        log_info("next run at %s", when);
        sleep_until(next);
        if (stop_flag)
            break;
        run_now = 0;
        (void)combine_run(cb, NULL);
        /* never twice in the same minute */
        if (!stop_flag && !run_now && time(NULL) < next + 1) {
            struct timespec ts = {1, 0};

            nanosleep(&ts, NULL);
        }
    }
    log_info("stopped");
    ret = 0;
done:
    combine_free(cb);
    combine_config_free(&cfg);
    return ret;
}
