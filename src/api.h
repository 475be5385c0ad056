/*
 * api.h - the endpoints of patriot-api: the route table, authentication and
 * one small handler per endpoint. No SQL and no XML in here: handlers
 * validate with model, read with store, and hand changes to the writer.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>

#include "config.h"
#include "http.h"
#include "keys.h"
#include "outbox.h"
#include "writer.h"

struct app {
    const struct cfg *ap_cfg;
    pthread_mutex_t ap_mu;          /* guards ap_keys and ap_readers */
    struct keyset *ap_keys;         /* current keys; swapped on reload */
    struct writer *ap_writer;
    struct outbox *ap_outbox;
    struct store **ap_readers;      /* one per HTTP thread, opened lazily */
    size_t ap_nreaders;
    struct metrics *ap_metrics;     /* metrics_setup(); NULL: none */
    char *ap_openapi;               /* GET /openapi.json, built at init */
    size_t ap_openapi_len;
    char *ap_docs;                  /* GET /docs: the page with the document */
    size_t ap_docs_len;
};

/* GET /clients/import ?limit= bounds and default. */
#define API_IMPORT_LIMIT_MIN 1
#define API_IMPORT_LIMIT_MAX 10000
#define API_IMPORT_LIMIT_DEFAULT 1000

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* The auth hook for http_opts.ho_auth. */
int api_auth(struct http_req *rq);

/* Initialise the app's lock and build the OpenAPI document and the docs
 * page (on no memory they stay NULL and their routes answer 500); a's
 * other fields are set by the caller. */
void api_app_init(struct app *a);

/* Replace the keys (takes ks's reference); requests in flight keep the
 * set they started with. */
void api_set_keys(struct app *a, struct keyset *ks);

/* Close the reader connections and drop the keys; after http_stop. */
void api_app_close(struct app *a);
