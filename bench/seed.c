/*
 * seed.c - fill a patriot-api database for the benchmark: N clients of 8
 * zones and 4 users under one key, through the same writer code the server
 * uses (validated objects, XML rendered in the transaction), 500 changes a
 * transaction.
 * Usage: seed KEYS_JSON KEY_NAME DATA_FILE N
 */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>

#include "keys.h"
#include "model.h"
#include "store.h"
#include "writer.h"

#define BATCH 500

static json_t *
valid(const struct mtable *t, json_t *in)
{
    json_t *errs = json_array(), *v = model_validate(t, in, 0, NULL, errs,
                                                     NULL);

    if (v == NULL) {
        char *s = json_dumps(errs, 0);
        fprintf(stderr, "seed: invalid: %s\n", s);
        exit(1);
    }
    json_decref(errs);
    json_decref(in);
    return v;
}

int
main(int argc, char **argv)
{
    struct writer_job jobs[BATCH], *jp[BATCH];
    struct keyset *ks;
    const struct key *k;
    struct store *s;
    char err[512];
    long n, i, z;
    int nj = 0, j;

    if (argc != 5) {
        fprintf(stderr, "usage: seed KEYS_JSON KEY_NAME DATA_FILE N\n");
        return 2;
    }
    xmlInitParser();
    if ((ks = keys_load(argv[1], err, sizeof(err))) == NULL ||
        (k = keys_get_by_name(ks, argv[2])) == NULL) {
        fprintf(stderr, "seed: %s\n", ks ? "no such key" : err);
        return 1;
    }
    if ((s = store_open(argv[3], 0, err, sizeof(err))) == NULL) {
        fprintf(stderr, "seed: %s\n", err);
        return 1;
    }
    n = atol(argv[4]);
    for (i = 1; i <= n; i++) {
        for (z = 0; z < 13; z++) {
            struct writer_job *w = &jobs[nj];
            json_t *d;

            if (z == 0) {
                d = valid(&model_info, json_pack(
                    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i,"
                    " s:i, s:i, s:b, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s}",
                    "Name", "Ola Nordmann", "Alias", "", "Location",
                    "Produksjonsveien 13", "area_code", "1604", "area",
                    "Fredrikstad", "BusPhone", "69310000", "Email",
                    "post@example.no", "OKPassword", "franzjager",
                    "SpecRequest", "Dette skal gjøres ved alarm på denne"
                    " kunden.", "NoSigsMon", 1, "SinceDays", 1, "SinceHrs",
                    0, "SinceMins", 30, "ResetNosigsIgnored", 1,
                    "ResetNosigsDays", 7, "ResetNosigsHrs", 0,
                    "ResetNosigsMins", 0, "InstallDateTime", "2023-02-20",
                    "PanelName", "Ajax", "PanelSite", "Stue",
                    "KeypadLocation", "Inngang", "SPPage",
                    "Ekstra informasjon som kan være relevant."));
                *w = (struct writer_job){.wj_op = STORE_OP_CLIENT_PUT};
            } else if (z <= 8) {
                d = valid(&model_zone, json_pack(
                    "{s:i, s:s, s:i}", "Zone_No", (int)z, "Zone_area",
                    "Sone", "ModuleNo", 0));
                *w = (struct writer_job){.wj_op = STORE_OP_ZONE_PUT};
            } else {
                d = valid(&model_user, json_pack(
                    "{s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:i}", "User_Name",
                    "Bruker", "MobileNo", "+4712345678", "MobileNoOrder", 1,
                    "Email", "user@example.no", "Type", "U", "UserNo",
                    (int)(z - 8), "Instructions", "Ring først", "CallOrder",
                    (int)(z - 8)));
                *w = (struct writer_job){.wj_op = STORE_OP_USER_INSERT};
            }
            w->wj_key = k;
            w->wj_cid = i;
            w->wj_data = d;
            jp[nj++] = w;
            if (nj == BATCH || (i == n && z == 12)) {
                if (writer_apply_batch(s, jp, nj) != nj) {
                    fprintf(stderr, "seed: a change failed\n");
                    return 1;
                }
                for (j = 0; j < nj; j++)
                    json_decref(jobs[j].wj_data);
                nj = 0;
            }
        }
    }
    store_close(s);
    keys_release(ks);
    return 0;
}
