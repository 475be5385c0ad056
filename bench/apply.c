/*
 * apply.c - the writer's cost per change without HTTP: PUT zone changes (or
 * PATCHes of the Location) to random clients of a seeded database
 * (bench/seed), in transactions of
 * BATCH changes through writer_apply_batch() with the answer body built,
 * as the server's writer thread does. Prints wall and thread CPU time per
 * change; under `valgrind --tool=callgrind` the instruction count per
 * change is repeatable on a noisy machine.
 * Usage: apply KEYS_JSON KEY_NAME DATA_FILE CLIENTS CHANGES [BATCH [patch]]
 */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "model.h"
#include "store.h"
#include "writer.h"

#define MAXBATCH 256

static double
clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    struct writer_job jobs[MAXBATCH], *jp[MAXBATCH];
    struct keyset *ks;
    const struct key *k;
    struct store *s;
    char err[512], area[32];
    long clients, changes, batch, done = 0, i;
    double w0, c0, w1, c1;
    unsigned seed = 1;
    int patch;

    if (argc < 6) {
        fprintf(stderr, "usage: apply KEYS_JSON KEY_NAME DATA_FILE CLIENTS"
                        " CHANGES [BATCH [patch]]\n");
        return 2;
    }
    clients = atol(argv[4]);
    changes = atol(argv[5]);
    batch = argc > 6 ? atol(argv[6]) : 18;
    patch = argc > 7 && strcmp(argv[7], "patch") == 0;
    if (clients < 1 || batch < 1 || batch > MAXBATCH)
        return 2;
    xmlInitParser();
    if ((ks = keys_load(argv[1], err, sizeof(err))) == NULL ||
        (k = keys_get_by_name(ks, argv[2])) == NULL) {
        fprintf(stderr, "apply: %s\n", ks ? "no such key" : err);
        return 1;
    }
    if ((s = store_open(argv[3], 0, err, sizeof(err))) == NULL) {
        fprintf(stderr, "apply: %s\n", err);
        return 1;
    }
    w0 = clock_s(CLOCK_MONOTONIC);
    c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    while (done < changes) {
        long n = changes - done < batch ? changes - done : batch;

        for (i = 0; i < n; i++) {
            json_t *in, *errs = json_array();

            snprintf(area, sizeof(area), "Sone %ld", done + i);
            if (patch)
                in = json_pack("{s:s}", "Location", area);
            else
                in = json_pack("{s:i, s:s, s:i}", "Zone_No",
                               1 + (int)(rand_r(&seed) % 8), "Zone_area",
                               area, "ModuleNo", 0);
            jobs[i] = (struct writer_job){
                .wj_op = patch ? STORE_OP_CLIENT_PATCH : STORE_OP_ZONE_PUT,
                .wj_key = k,
                .wj_cid = 1 + (long)(rand_r(&seed) % (unsigned)clients),
                .wj_want_body = 1,
                .wj_data = model_validate(patch ? &model_info : &model_zone,
                                          in, patch ? MV_PARTIAL : 0, NULL,
                                          errs, NULL)};
            json_decref(in);
            json_decref(errs);
            if (jobs[i].wj_data == NULL)
                return 1;
            jp[i] = &jobs[i];
        }
        if (writer_apply_batch(s, jp, (int)n) != n) {
            fprintf(stderr, "apply: a change failed\n");
            return 1;
        }
        for (i = 0; i < n; i++) {
            json_decref(jobs[i].wj_data);
            sbuf_free(&jobs[i].wj_body);
        }
        done += n;
    }
    w1 = clock_s(CLOCK_MONOTONIC);
    c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    printf("%ld changes in transactions of %ld: %.1f us wall, %.1f us CPU"
           " a change\n", changes, batch, (w1 - w0) * 1e6 / (double)changes,
           (c1 - c0) * 1e6 / (double)changes);
    store_close(s);
    keys_release(ks);
    return 0;
}
