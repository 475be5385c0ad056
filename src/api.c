/*
 * api.c - handlers of the fifteen endpoints of the original service, plus
 * GET /clients/import (see api.h).
 */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "model.h"
#include "openapi.h"

/* Per-request state, hung on rq->rq_data. */
struct ctx {
    struct keyset *c_keys;          /* reference held for the request */
    const struct key *c_key;
    json_t *c_body;
    json_t *c_data;                 /* what the writer stores */
    int64_t c_cid;
    int64_t c_num;
    struct writer_job c_job;
};

static void
ctx_free(void *p)
{
    struct ctx *c = p;

    if (c == NULL)
        return;
    json_decref(c->c_body);
    json_decref(c->c_data);
    sbuf_free(&c->c_job.wj_body);
    keys_release(c->c_keys);
    free(c);
}

static struct ctx *
ctx_of(struct http_req *rq)
{
    if (rq->rq_data == NULL) {
        rq->rq_data = calloc(1, sizeof(struct ctx));
        rq->rq_data_free = ctx_free;
    }
    return rq->rq_data;
}

void
api_app_init(struct app *a)
{
    pthread_mutex_init(&a->ap_mu, NULL);
    a->ap_openapi = openapi_build(api_routes, api_nroutes, PATRIOT_VERSION,
                                  &a->ap_openapi_len);
    if (a->ap_openapi == NULL)
        log_warnx("openapi: the document could not be built");
    else if ((a->ap_docs = openapi_docs_page(a->ap_openapi,
                                             a->ap_openapi_len,
                                             &a->ap_docs_len)) == NULL)
        log_warnx("openapi: the docs page could not be built");
}

void
api_set_keys(struct app *a, struct keyset *ks)
{
    struct keyset *old;

    pthread_mutex_lock(&a->ap_mu);
    old = a->ap_keys;
    a->ap_keys = ks;
    pthread_mutex_unlock(&a->ap_mu);
    keys_release(old);
}

void
api_app_close(struct app *a)
{
    size_t i;

    for (i = 0; i < a->ap_nreaders; i++)
        store_close(a->ap_readers[i]);
    free(a->ap_readers);
    a->ap_readers = NULL;
    a->ap_nreaders = 0;
    keys_release(a->ap_keys);
    a->ap_keys = NULL;
    free(a->ap_openapi);
    free(a->ap_docs);
    a->ap_openapi = a->ap_docs = NULL;
    pthread_mutex_destroy(&a->ap_mu);
}

/* This thread's read connection, opened on first use. */
static _Thread_local struct store *tl_reader;

static struct store *
reader(struct http_req *rq)
{
    struct app *a = rq->rq_app;
    struct store *s, **v;
    char err[256];

    if (tl_reader != NULL)
        return tl_reader;
    if ((s = store_open(a->ap_cfg->cfg_data_file, STORE_READONLY, err,
                        sizeof(err))) == NULL) {
        log_warnx("reader: %s", err);
        return NULL;
    }
    pthread_mutex_lock(&a->ap_mu);
    v = realloc(a->ap_readers, (a->ap_nreaders + 1) * sizeof(*v));
    if (v != NULL) {
        a->ap_readers = v;
        v[a->ap_nreaders++] = s;
    }
    pthread_mutex_unlock(&a->ap_mu);
    if (v == NULL) {
        store_close(s);
        return NULL;
    }
    return tl_reader = s;
}

/* ---- authentication ------------------------------------------------- */

int
api_auth(struct http_req *rq)
{
    struct app *a = rq->rq_app;
    struct ctx *c = ctx_of(rq);
    const char *h = http_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok;
    struct keyset *ks;
    const struct key *k;

    if (c == NULL)
        return http_reply_detail(rq, 500, "Out of memory"), -1;
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        http_reply_detail(rq, 401, "Not authenticated");
        return -1;
    }
    for (tok = h + 7; *tok == ' '; tok++)
        ;
    pthread_mutex_lock(&a->ap_mu);
    ks = keys_retain(a->ap_keys);
    pthread_mutex_unlock(&a->ap_mu);
    k = keys_lookup(ks, tok, strlen(tok), time(NULL));
    if (k == NULL) {
        keys_release(ks);
        http_reply_detail(rq, 401, "Invalid, disabled or expired API key");
        return -1;
    }
    c->c_keys = ks;
    c->c_key = k;
    rq->rq_key_name = k->k_name;
    return 0;
}

/* ---- helpers --------------------------------------------------------- */

static int
reply_store_error(struct http_req *rq, int rc, const char *item)
{
    switch (rc) {
    case STORE_NOTFOUND:
        return http_reply_detail(rq, 404, "Client not found");
    case STORE_NOITEM:
        return http_reply_detail(rq, 404, item);
    case STORE_EXISTS:
        return http_reply_detail(rq, 409, "User already exists");
    default:
        return http_reply_detail(rq, 503, "Storage temporarily unavailable;"
                                 " nothing was changed, retry");
    }
}

/* A header that must hold an id: 422 in FastAPI's shape if not. */
static int
header_id(struct http_req *rq, const char *name, const char *lname,
          int user_no, int64_t *out)
{
    const char *v = http_header(rq, name);
    json_t *errs;
    int rc;

    rc = v == NULL ? -1
         : user_no ? model_parse_user_no(v, out)
                   : model_parse_client_id(v, out);
    if (rc == 0)
        return 0;
    if ((errs = json_array()) == NULL)
        return http_reply_detail(rq, 500, "Out of memory"), -1;
    if (v == NULL)
        model_error(errs, "missing", "Field required", NULL, "header", lname,
                    NULL);
    else if (user_no)
        model_error(errs, "int_parsing", "X-User-No must be a user number"
                    " 1..999 (199 is the installer's)", NULL, "header",
                    lname, NULL);
    else
        model_error(errs, "int_parsing", "X-Client-Id must be 1 to 16"
                    " digits", NULL, "header", lname, NULL);
    http_reply_errors(rq, errs);
    json_decref(errs);
    return -1;
}

static void
set_client(struct http_req *rq, int64_t cid)
{
    snprintf(rq->rq_client, sizeof(rq->rq_client), "%lld", (long long)cid);
}

/* Parse and validate the body against t. Returns the validated object
 * (owned by the ctx) or NULL after replying. */
static json_t *
body(struct http_req *rq, const struct mtable *t)
{
    struct ctx *c = ctx_of(rq);
    json_t *errs = NULL, *ign = NULL, *loc = NULL, *v = NULL;
    size_t i, off = 0;

    if ((c->c_body = http_body_json(rq)) == NULL)
        return NULL;
    errs = json_array();
    ign = json_array();
    loc = json_pack("[s]", "body");
    if (errs == NULL || ign == NULL || loc == NULL) {
        http_reply_detail(rq, 500, "Out of memory");
        goto done;
    }
    v = model_validate(t, c->c_body, rq->rq_ints_as_real ? MV_INTS_AS_REAL
                                                         : 0,
                       loc, errs, ign);
    if (v != NULL && rq->rq_repaired) {
        /* The repaired part was in an ignored field (and reals may have
         * rounded the others): refuse the body as the parser would. */
        json_decref(v);
        v = NULL;
        http_reply_json_invalid(rq, rq->rq_bad_pos, rq->rq_ints_as_real
                                                        ? "Integer too large"
                                                        : "Invalid string");
        goto done;
    }
    for (i = 0; i < json_array_size(ign); i++) {
        const char *name = json_string_value(json_array_get(ign, i));
        int n = snprintf(rq->rq_ignored + off, sizeof(rq->rq_ignored) - off,
                         "%s%s", off ? ", " : "", name);
        if (n < 0 || (size_t)n >= sizeof(rq->rq_ignored) - off)
            break;
        off += (size_t)n;
    }
    if (v == NULL) {
        http_reply_errors(rq, errs);
        goto done;
    }
    c->c_cid = json_integer_value(json_object_get(v, "client_id"));
    set_client(rq, c->c_cid);
done:
    json_decref(errs);
    json_decref(ign);
    json_decref(loc);
    return v;
}

static int
reply_installer(struct http_req *rq, const char *field, const char *loc0)
{
    json_t *errs = json_array();

    model_error(errs, "installer_user", "UserNo 199 is the installer's;"
                " it is set from the key's configuration, never through"
                " the API", NULL, "body", loc0, field, NULL);
    http_reply_errors(rq, errs);
    json_decref(errs);
    return 0;
}

static int
already_replied(struct http_req *rq)
{
    (void)rq;
    return 0;
}

static void
job_done(struct writer_job *j)
{
    http_resume(j->wj_arg);
}

/* Hand c->c_data to the writer as op; cont answers after the commit. */
static int
submit(struct http_req *rq, enum store_op op, http_handler cont)
{
    struct app *a = rq->rq_app;
    struct ctx *c = ctx_of(rq);
    struct writer_job *j = &c->c_job;

    j->wj_op = op;
    j->wj_key = c->c_key;
    j->wj_cid = c->c_cid;
    j->wj_num = c->c_num;
    j->wj_data = c->c_data;
    j->wj_done = job_done;
    j->wj_arg = rq;
    http_suspend(rq, cont);
    if (writer_submit(a->ap_writer, j) < 0) {
        /* Stopping: answer from the continuation once resumed. */
        http_reply_detail(rq, 503, "Shutting down");
        rq->rq_cont = already_replied;
        http_resume(rq);
    }
    return 0;
}

/* ---- clients -------------------------------------------------------- */

static int
client_get(struct http_req *rq)
{
    struct app *a = rq->rq_app;
    struct ctx *c = ctx_of(rq);
    struct store_meta m;
    struct store *s;
    int rc;

    if (header_id(rq, "X-Client-Id", "x-client-id", 0, &c->c_cid) < 0)
        return 0;
    set_client(rq, c->c_cid);
    if ((s = reader(rq)) == NULL)
        return reply_store_error(rq, STORE_ERROR, NULL);
    rc = store_read_client(s, c->c_key->k_name, c->c_cid, &rq->rq_resp, &m);
    if (rc != STORE_OK)
        return reply_store_error(rq, rc, NULL);
    if (strcmp(m.sm_state, "pending") == 0 && a->ap_outbox != NULL)
        outbox_check(a->ap_outbox, c->c_key->k_name, c->c_cid,
                     m.sm_version);
    return http_reply_resp(rq, 200);
}

static int
client_put_done(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);

    if (c->c_job.wj_rc != STORE_OK)
        return reply_store_error(rq, c->c_job.wj_rc, NULL);
    /* The writer built the answer in the transaction: no read after the
     * commit, which could fail and misreport a saved change. */
    sbuf_free(&rq->rq_resp);
    rq->rq_resp = c->c_job.wj_body;
    memset(&c->c_job.wj_body, 0, sizeof(c->c_job.wj_body));
    return http_reply_resp(rq, c->c_job.wj_created ? 201 : 200);
}

static int
client_put(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_client);

    if (v == NULL)
        return 0;
    c->c_data = json_incref(json_object_get(v, "info"));
    json_decref(v);
    c->c_job.wj_want_body = 1;
    return submit(rq, STORE_OP_CLIENT_PUT, client_put_done);
}

static int
client_patch(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_client_patch);

    if (v == NULL)
        return 0;
    c->c_data = json_incref(json_object_get(v, "info"));
    json_decref(v);
    c->c_job.wj_want_body = 1;
    return submit(rq, STORE_OP_CLIENT_PATCH, client_put_done);
}

static int
deleted(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    const char *item = c->c_job.wj_op == STORE_OP_ZONE_DELETE ? "Zone not found"
                                                        : "User not found";

    if (c->c_job.wj_rc != STORE_OK)
        return reply_store_error(rq, c->c_job.wj_rc, item);
    return http_reply(rq, 204, NULL, 0);
}

static int
client_delete(struct http_req *rq)
{
    json_t *v = body(rq, &model_body_client_id);

    if (v == NULL)
        return 0;
    json_decref(v);
    return submit(rq, STORE_OP_CLIENT_DELETE, deleted);
}

/* ---- lists: zones and users ----------------------------------------- */

typedef int (*list_reader)(struct store *, const char *, int64_t,
                           struct sbuf *);

static int
list_read(struct http_req *rq, list_reader fn)
{
    struct ctx *c = ctx_of(rq);
    struct store *s = reader(rq);
    int rc;

    if (s == NULL)
        return reply_store_error(rq, STORE_ERROR, NULL);
    rc = fn(s, c->c_key->k_name, c->c_cid, &rq->rq_resp);
    if (rc != STORE_OK)
        return reply_store_error(rq, rc, NULL);
    return http_reply_resp(rq, 200);
}

/* GET with X-Client-Id. */
static int
list_by_header(struct http_req *rq, list_reader fn)
{
    struct ctx *c = ctx_of(rq);

    if (header_id(rq, "X-Client-Id", "x-client-id", 0, &c->c_cid) < 0)
        return 0;
    set_client(rq, c->c_cid);
    return list_read(rq, fn);
}

/* POST .../list with {"client_id"}. */
static int
list_by_body(struct http_req *rq, list_reader fn)
{
    json_t *v = body(rq, &model_body_client_id);

    if (v == NULL)
        return 0;
    json_decref(v);
    return list_read(rq, fn);
}

static int
zones_get(struct http_req *rq)
{
    return list_by_header(rq, store_read_zones);
}

static int
zones_list(struct http_req *rq)
{
    return list_by_body(rq, store_read_zones);
}

static int
users_get(struct http_req *rq)
{
    return list_by_header(rq, store_read_users);
}

static int
users_list(struct http_req *rq)
{
    return list_by_body(rq, store_read_users);
}

/* Answer {"client_id": N, "<name>": <what was stored>}. */
static int
reply_item(struct http_req *rq, const char *name, unsigned status)
{
    struct ctx *c = ctx_of(rq);
    json_t *o = json_pack("{s:I, s:O}", "client_id", (json_int_t)c->c_cid,
                          name, c->c_data);

    rq->rq_resp.sb_len = 0;
    if (o == NULL || sbuf_add_json(&rq->rq_resp, o) < 0) {
        json_decref(o);
        return -1;
    }
    json_decref(o);
    return http_reply_resp(rq, status);
}

/* ---- zones ---------------------------------------------------------- */

static int
zone_put_done(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);

    if (c->c_job.wj_rc != STORE_OK)
        return reply_store_error(rq, c->c_job.wj_rc, NULL);
    return reply_item(rq, "zone", 201);
}

static int
zone_put(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_zone), *z, *area, *mod;

    if (v == NULL)
        return 0;
    area = json_object_get(v, "Zone_area");
    mod = json_object_get(v, "ModuleNo");
    z = json_object();
    if (z == NULL ||
        json_object_set(z, "Zone_No", json_object_get(v, "zone_id")) < 0 ||
        (area && json_object_set(z, "Zone_area", area) < 0) ||
        json_object_set_new(z, "ModuleNo",
                            mod ? json_incref(mod) : json_integer(0)) < 0) {
        json_decref(z);
        json_decref(v);
        return -1;
    }
    c->c_data = z;
    json_decref(v);
    return submit(rq, STORE_OP_ZONE_PUT, zone_put_done);
}

static int
zone_delete(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_zone_id);

    if (v == NULL)
        return 0;
    c->c_num = json_integer_value(json_object_get(v, "zone_id"));
    json_decref(v);
    return submit(rq, STORE_OP_ZONE_DELETE, deleted);
}

/* ---- users ---------------------------------------------------------- */

static int
user_read(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    struct store *s = reader(rq);
    int rc;

    if (s == NULL)
        return reply_store_error(rq, STORE_ERROR, NULL);
    rc = store_read_user(s, c->c_key->k_name, c->c_cid, c->c_num,
                         &rq->rq_resp);
    if (rc != STORE_OK)
        return reply_store_error(rq, rc, "User not found");
    return http_reply_resp(rq, 200);
}

static int
user_single(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    int64_t cid, no;
    int bad_cid, bad_no;

    /* Both headers are checked, and both named when both are bad. */
    bad_cid = model_parse_client_id(http_header(rq, "X-Client-Id"), &cid);
    bad_no = model_parse_user_no(http_header(rq, "X-User-No"), &no);
    if (bad_cid || bad_no) {
        json_t *errs = json_array();

        if (bad_cid)
            model_error(errs, http_header(rq, "X-Client-Id") ? "int_parsing"
                        : "missing", "X-Client-Id must be 1 to 16 digits",
                        NULL, "header", "x-client-id", NULL);
        if (bad_no)
            model_error(errs, http_header(rq, "X-User-No") ? "int_parsing"
                        : "missing", "X-User-No must be a user number"
                        " 1..999 (199 is the installer's)", NULL, "header",
                        "x-user-no", NULL);
        http_reply_errors(rq, errs);
        json_decref(errs);
        return 0;
    }
    c->c_cid = cid;
    c->c_num = no;
    set_client(rq, cid);
    return user_read(rq);
}

static int
user_get(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_user_no);

    if (v == NULL)
        return 0;
    c->c_num = json_integer_value(json_object_get(v, "user_no"));
    json_decref(v);
    if (c->c_num == MODEL_INSTALLER_USER_NO)
        return reply_installer(rq, NULL, "user_no");
    return user_read(rq);
}

static int
user_write_done(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);

    if (c->c_job.wj_rc != STORE_OK)
        return reply_store_error(rq, c->c_job.wj_rc, "User not found");
    return reply_item(rq, "user",
                      c->c_job.wj_op == STORE_OP_USER_INSERT ? 201 : 200);
}

static int
user_write(struct http_req *rq, enum store_op op)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_user);

    if (v == NULL)
        return 0;
    c->c_data = json_incref(json_object_get(v, "user"));
    json_decref(v);
    if (json_integer_value(json_object_get(c->c_data, "UserNo")) ==
        MODEL_INSTALLER_USER_NO)
        return reply_installer(rq, "UserNo", "user");
    return submit(rq, op, user_write_done);
}

static int
user_post(struct http_req *rq)
{
    return user_write(rq, STORE_OP_USER_INSERT);
}

static int
user_put(struct http_req *rq)
{
    return user_write(rq, STORE_OP_USER_REPLACE);
}

static int
user_delete(struct http_req *rq)
{
    struct ctx *c = ctx_of(rq);
    json_t *v = body(rq, &model_body_user_no);

    if (v == NULL)
        return 0;
    c->c_num = json_integer_value(json_object_get(v, "user_no"));
    json_decref(v);
    if (c->c_num == MODEL_INSTALLER_USER_NO)
        return reply_installer(rq, NULL, "user_no");
    return submit(rq, STORE_OP_USER_DELETE, deleted);
}

/* ---- import state --------------------------------------------------- */

static int
query_int(struct http_req *rq, const char *name, int64_t lo, int64_t hi,
          int64_t def, int64_t *out)
{
    const char *v = MHD_lookup_connection_value(rq->rq_conn,
                                                MHD_GET_ARGUMENT_KIND, name);
    char *end;
    long long n;

    *out = def;
    if (v == NULL)
        return 0;
    n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        json_t *errs = json_array();
        char msg[96];

        snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld",
                 name, (long long)lo, (long long)hi);
        model_error(errs, "int_parsing", msg, NULL, "query", name, NULL);
        http_reply_errors(rq, errs);
        json_decref(errs);
        return -1;
    }
    *out = n;
    return 0;
}

static int
import_list(struct http_req *rq)
{
    static const char *states[] = {"pending", "shipped", "imported",
                                   "failed"};
    struct ctx *c = ctx_of(rq);
    const char *state = MHD_lookup_connection_value(
        rq->rq_conn, MHD_GET_ARGUMENT_KIND, "state");
    struct store *s;
    int64_t after, limit;
    size_t i;
    int rc;

    if (state != NULL) {
        for (i = 0; i < 4; i++)
            if (strcmp(state, states[i]) == 0)
                break;
        if (i == 4) {
            json_t *errs = json_array();

            model_error(errs, "enum", "state must be one of pending, shipped,"
                        " imported, failed", NULL, "query", "state", NULL);
            http_reply_errors(rq, errs);
            json_decref(errs);
            return 0;
        }
        state = states[i];
    }
    if (query_int(rq, "after", 0, MODEL_CLIENT_ID_MAX, 0, &after) < 0 ||
        query_int(rq, "limit", API_IMPORT_LIMIT_MIN, API_IMPORT_LIMIT_MAX,
                  API_IMPORT_LIMIT_DEFAULT, &limit) < 0)
        return 0;
    if ((s = reader(rq)) == NULL)
        return reply_store_error(rq, STORE_ERROR, NULL);
    rc = store_read_import(s, c->c_key->k_name, state, after, limit,
                           &rq->rq_resp);
    if (rc != STORE_OK)
        return reply_store_error(rq, rc, NULL);
    return http_reply_resp(rq, 200);
}

/* ---- service: health, metrics, documentation ---------------------- */

static int
health_fail(struct http_req *rq, const char *reason)
{
    json_t *o = json_pack("{s:s, s:s}", "status", "unavailable", "reason",
                          reason);

    rq->rq_resp.sb_len = 0;
    if (o == NULL || sbuf_add_json(&rq->rq_resp, o) < 0) {
        json_decref(o);
        return -1;
    }
    json_decref(o);
    return http_reply_resp(rq, 503);
}

/* 200 when this thread's reader reads the database and a file can be
 * created in XML_DIR; 503 naming what failed. */
static int
healthz(struct http_req *rq)
{
    static _Atomic unsigned seq;
    struct app *a = rq->rq_app;
    struct store *s = reader(rq);
    char path[4096], reason[512];
    int fd;

    if (s == NULL)
        return health_fail(rq, "database: cannot be opened");
    if (store_ping(s) < 0) {
        snprintf(reason, sizeof(reason), "database: %s", store_errmsg(s));
        return health_fail(rq, reason);
    }
    /* A create and an unlink: also true for root, unlike access(W_OK). */
    snprintf(path, sizeof(path), "%s/.healthz.%ld.%u",
             a->ap_cfg->cfg_xml_dir, (long)getpid(),
             atomic_fetch_add(&seq, 1));
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        snprintf(reason, sizeof(reason), "outbox %s is not writable: %s",
                 a->ap_cfg->cfg_xml_dir, strerror(errno));
        return health_fail(rq, reason);
    }
    close(fd);
    unlink(path);
    return http_reply(rq, 200, "{\"status\":\"ok\"}", 15);
}

/* GET /metrics on the API port: 404 unless METRICS_TOKEN is set. */
static int
metrics_get(struct http_req *rq)
{
    struct app *a = rq->rq_app;

    switch (metrics_check_token(a->ap_metrics,
                                http_header(rq,
                                            MHD_HTTP_HEADER_AUTHORIZATION))) {
    case -1:
        return http_reply_detail(rq, 404, "Not Found");
    case 0:
        return http_reply_detail(rq, 401, "Not authenticated");
    default:
        break;
    }
    rq->rq_resp.sb_len = 0;
    if (metrics_render(a->ap_metrics, reader(rq),
                       a->ap_outbox ? outbox_queued(a->ap_outbox) : 0,
                       &rq->rq_resp) < 0)
        return -1;
    return http_reply_resp(rq, 200);
}

static int
openapi_get(struct http_req *rq)
{
    struct app *a = rq->rq_app;

    if (a->ap_openapi == NULL)
        return -1;
    return http_reply(rq, 200, a->ap_openapi, a->ap_openapi_len);
}

static int
docs_get(struct http_req *rq)
{
    struct app *a = rq->rq_app;

    if (a->ap_docs == NULL)
        return -1;
    return http_reply(rq, 200, a->ap_docs, a->ap_docs_len);
}

/* ---- the table ------------------------------------------------------ */

/*
 * One row per endpoint. Everything GET /openapi.json says comes from here
 * and from model.c's tables: the body table, the headers and query
 * (HP_*), the statuses the handler answers (401, 400, 413 and 422 of auth
 * and bodies are added by openapi.c) and the success schema.
 */
#define ROUTE(m, p, h, fl, sum, body, par, st, resp) \
    {.hr_method = m, .hr_path = p, .hr_handler = h, .hr_flags = fl,     \
     .hr_summary = sum, .hr_body = body, .hr_params = par,              \
     .hr_statuses = st, .hr_response = resp}

const struct http_route api_routes[] = {
    ROUTE("GET", "/clients", client_get, 0,
          "Get a client: info, zones, users, import state", NULL,
          HP_CLIENT_ID, "200 404 422 503", "Client"),
    ROUTE("PUT", "/clients", client_put, HR_BODY,
          "Create or replace a client (info replaced whole; zones and users"
          " kept)", &model_body_client, 0, "201 200 503", "Client"),
    ROUTE("PATCH", "/clients", client_patch, HR_BODY,
          "Change some info fields (null clears one)",
          &model_body_client_patch, 0, "200 404 503", "Client"),
    ROUTE("DELETE", "/clients", client_delete, HR_BODY,
          "Delete a client, its zones, users and outbox file",
          &model_body_client_id, 0, "204 404 503", NULL),
    ROUTE("GET", "/clients/zones", zones_get, 0, "List a client's zones",
          NULL, HP_CLIENT_ID, "200 404 422 503", "ZoneList"),
    ROUTE("POST", "/clients/zones/list", zones_list, HR_BODY,
          "List a client's zones", &model_body_client_id, 0,
          "200 404 503", "ZoneList"),
    ROUTE("PUT", "/clients/zones", zone_put, HR_BODY,
          "Create or replace a zone", &model_body_zone, 0, "201 404 503",
          "ZoneResult"),
    ROUTE("DELETE", "/clients/zones", zone_delete, HR_BODY, "Delete a zone",
          &model_body_zone_id, 0, "204 404 503", NULL),
    ROUTE("GET", "/clients/users", users_get, 0, "List a client's users",
          NULL, HP_CLIENT_ID, "200 404 422 503", "UserList"),
    ROUTE("POST", "/clients/users/list", users_list, HR_BODY,
          "List a client's users", &model_body_client_id, 0, "200 404 503",
          "UserList"),
    ROUTE("GET", "/clients/users/single", user_single, 0, "Get one user",
          NULL, HP_CLIENT_ID | HP_USER_NO, "200 404 422 503", "UserResult"),
    ROUTE("POST", "/clients/users/get", user_get, HR_BODY, "Get one user",
          &model_body_user_no, 0, "200 404 503", "UserResult"),
    ROUTE("POST", "/clients/users", user_post, HR_BODY, "Create a user",
          &model_body_user, 0, "201 404 409 503", "UserResult"),
    ROUTE("PUT", "/clients/users", user_put, HR_BODY,
          "Replace a user (whole)", &model_body_user, 0, "200 404 503",
          "UserResult"),
    ROUTE("DELETE", "/clients/users", user_delete, HR_BODY, "Delete a user",
          &model_body_user_no, 0, "204 404 503", NULL),
    ROUTE("GET", "/clients/import", import_list, 0,
          "Clients with their Patriot import state", NULL, HP_IMPORT_QUERY,
          "200 422 503", "ImportList"),
    ROUTE("GET", "/healthz", healthz, HR_NOAUTH,
          "Health: the database answers and the outbox is writable", NULL,
          0, "200 503", "Health"),
    {.hr_method = "GET", .hr_path = "/metrics", .hr_handler = metrics_get,
     .hr_flags = HR_NOAUTH | HR_OWNAUTH,
     .hr_summary = "Prometheus metrics (only with METRICS_TOKEN set;"
                   " 404 otherwise)",
     .hr_statuses = "200 404", .hr_response = "text",
     .hr_content_type = METRICS_CONTENT_TYPE},
    ROUTE("GET", "/openapi.json", openapi_get, HR_NOAUTH,
          "This OpenAPI document", NULL, 0, "200", "OpenAPIDocument"),
    {.hr_method = "GET", .hr_path = "/docs", .hr_handler = docs_get,
     .hr_flags = HR_NOAUTH,
     .hr_summary = "A readable reference of this document, with a form to"
                   " try each endpoint",
     .hr_statuses = "200", .hr_response = "text",
     .hr_content_type = "text/html; charset=utf-8"},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
