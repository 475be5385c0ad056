/*
 * openapi.c - the OpenAPI 3.1 document, generated from the route table and
 * the field tables (see openapi.h).
 *
 * Schemas of request bodies and of the client, zone and user objects come
 * from model.c's tables (type, required, integer range, maximum length);
 * operations, parameters and statuses from struct http_route. Only the
 * envelopes of the answers ({"client_id", "zones": [...]}, ...) and the
 * error shapes are written here, beside the code that states what each
 * status means.
 */
#include "openapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model.h"
#include "store.h"

/* docs.html, embedded at build time (tools/embed.c). */
extern const unsigned char docs_html[];
extern const size_t docs_html_len;

#define DOCS_PLACEHOLDER "/*@OPENAPI@*/null"

static const char *const import_states[] = {"pending", "shipped", "imported",
                                            "failed"};

/* json_object_set_new that remembers a failure in *bad. */
static void
set(json_t *o, const char *k, json_t *v, int *bad)
{
    if (o == NULL || v == NULL || json_object_set_new(o, k, v) < 0) {
        json_decref(v);
        *bad = 1;
    }
}

static void
push(json_t *a, json_t *v, int *bad)
{
    if (a == NULL || v == NULL || json_array_append_new(a, v) < 0) {
        json_decref(v);
        *bad = 1;
    }
}

static json_t *
ref(const char *kind, const char *name)
{
    char buf[160];

    snprintf(buf, sizeof(buf), "#/components/%s/%s", kind, name);
    return json_pack("{s:s}", "$ref", buf);
}

/* ---- schemas from the field tables -------------------------------- */

static void table_schema(json_t *schemas, const struct mtable *t,
                         int partial, int *bad);

/* The component name of table t (partial: its PATCH form). */
static void
table_name(const struct mtable *t, int partial, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", t->mt_name, partial ? "Patch" : "");
}

static json_t *
field_schema(json_t *schemas, const struct mfield *f, int partial, int *bad)
{
    char name[96];
    json_t *s = NULL;

    switch (f->mf_type) {
    case MT_STR:
        s = json_pack("{s:s, s:I}", "type", "string", "maxLength",
                      (json_int_t)f->mf_max);
        set(s, "description", json_string("Characters XML 1.0 can hold;"
                                          " maxLength counts characters"),
            bad);
        break;
    case MT_INT:
        s = json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum",
                      (json_int_t)f->mf_min, "maximum",
                      (json_int_t)f->mf_max);
        set(s, "description", json_string("An integer; a numeric string"
                                          " (\"30\") is accepted too"),
            bad);
        break;
    case MT_BOOL:
        s = json_pack("{s:s, s:s}", "type", "boolean", "description",
                      "true/false; \"true\", \"yes\", 1/0 are accepted"
                      " too");
        break;
    case MT_ID:
        s = json_pack("{s:[{s:s, s:I, s:I}, {s:s, s:s}], s:s}", "oneOf",
                      "type", "integer", "minimum", (json_int_t)f->mf_min,
                      "maximum", (json_int_t)f->mf_max, "type", "string",
                      "pattern", "^[0-9]{1,16}$", "description",
                      "Client id: a positive integer of at most 16 digits,"
                      " or a string of 1 to 16 ASCII digits");
        break;
    case MT_OBJ:
        table_schema(schemas, f->mf_sub, (f->mf_flags & MF_PARTIAL) != 0,
                     bad);
        table_name(f->mf_sub, (f->mf_flags & MF_PARTIAL) != 0, name,
                   sizeof(name));
        s = ref("schemas", name);
        break;
    }
    if (s != NULL && partial && f->mf_type != MT_OBJ &&
        f->mf_type != MT_ID) {
        /* PATCH: null clears the field. */
        json_t *t = json_object_get(s, "type");

        set(s, "type", json_pack("[O, s]", t, "null"), bad);
    }
    if (s == NULL)
        *bad = 1;
    return s;
}

/* Add components.schemas[name of t] (once) from the table. */
static void
table_schema(json_t *schemas, const struct mtable *t, int partial, int *bad)
{
    json_t *props, *req, *s;
    char name[96];
    size_t i;

    table_name(t, partial, name, sizeof(name));
    if (json_object_get(schemas, name) != NULL)
        return;
    props = json_object();
    req = json_array();
    s = json_pack("{s:s}", "type", "object");
    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];

        set(props, f->mf_name, field_schema(schemas, f, partial, bad), bad);
        if ((f->mf_flags & MF_REQUIRED) && (!partial || f->mf_type == MT_ID))
            push(req, json_string(f->mf_name), bad);
    }
    set(s, "properties", props, bad);
    if (json_array_size(req) > 0)
        set(s, "required", req, bad);
    else
        json_decref(req);
    set(s, "additionalProperties", json_true(), bad);
    set(s, "description",
        json_string(partial ? "Only the fields given change; null clears"
                              " one. Unknown fields are ignored and named"
                              " in X-Ignored-Fields."
                            : "Unknown fields are ignored and named in the"
                              " X-Ignored-Fields response header."),
        bad);
    set(schemas, name, s, bad);
}

/* ---- the envelopes of answers and errors --------------------------- */

static json_t *
array_of(json_t *items)
{
    return json_pack("{s:s, s:o}", "type", "array", "items", items);
}

static json_t *
cid_schema(void)
{
    return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", 1,
                     "maximum", (json_int_t)MODEL_CLIENT_ID_MAX);
}

static json_t *
states_enum(void)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < 4; i++)
        json_array_append_new(a, json_string(import_states[i]));
    return a;
}

static void
fixed_schemas(json_t *sc, int *bad)
{
    set(sc, "ImportState",
        json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:[s,s], s:s}, s:{s:s, s:s}},"
                  " s:[s,s,s]}",
                  "type", "object", "properties", "state", "type", "string",
                  "enum", states_enum(), "batch", "type", "string", "null",
                  "description", "The last batch the client was shipped in",
                  "updated", "type", "string", "format", "date-time",
                  "required", "state", "batch", "updated"),
        bad);
    set(sc, "Client",
        json_pack("{s:s, s:{s:o, s:o, s:o, s:o, s:o}, s:[s,s,s,s,s]}",
                  "type", "object", "properties", "client_id", cid_schema(),
                  "info", ref("schemas", model_info.mt_name), "zones",
                  array_of(ref("schemas", model_zone.mt_name)), "users",
                  array_of(ref("schemas", model_user.mt_name)), "import",
                  ref("schemas", "ImportState"), "required", "client_id",
                  "info", "zones", "users", "import"),
        bad);
    set(sc, "ZoneList",
        json_pack("{s:s, s:{s:o, s:o}, s:[s,s]}", "type", "object",
                  "properties", "client_id", cid_schema(), "zones",
                  array_of(ref("schemas", model_zone.mt_name)), "required",
                  "client_id", "zones"),
        bad);
    set(sc, "ZoneResult",
        json_pack("{s:s, s:{s:o, s:o}, s:[s,s]}", "type", "object",
                  "properties", "client_id", cid_schema(), "zone",
                  ref("schemas", model_zone.mt_name), "required",
                  "client_id", "zone"),
        bad);
    set(sc, "UserList",
        json_pack("{s:s, s:{s:o, s:o}, s:[s,s]}", "type", "object",
                  "properties", "client_id", cid_schema(), "users",
                  array_of(ref("schemas", model_user.mt_name)), "required",
                  "client_id", "users"),
        bad);
    set(sc, "UserResult",
        json_pack("{s:s, s:{s:o, s:o}, s:[s,s]}", "type", "object",
                  "properties", "client_id", cid_schema(), "user",
                  ref("schemas", model_user.mt_name), "required",
                  "client_id", "user"),
        bad);
    set(sc, "ImportList",
        json_pack("{s:s, s:{s:o, s:{s:s, s:I}, s:{s:[s,s], s:s}},"
                  " s:[s,s,s]}",
                  "type", "object", "properties", "clients",
                  array_of(json_pack("{s:s, s:{s:o, s:{s:s, s:o},"
                                     " s:{s:[s,s]}, s:{s:s, s:s}},"
                                     " s:[s,s,s,s]}",
                                     "type", "object", "properties",
                                     "client_id", cid_schema(), "state",
                                     "type", "string", "enum", states_enum(),
                                     "batch", "type", "string", "null",
                                     "updated", "type", "string", "format",
                                     "date-time", "required", "client_id",
                                     "state", "batch", "updated")),
                  "count", "type", "integer", "minimum", 0, "next_after",
                  "type", "integer", "null", "description",
                  "Pass as ?after= for the next page; null on the last",
                  "required", "clients", "count", "next_after"),
        bad);
    set(sc, "Health",
        json_pack("{s:s, s:{s:{s:s, s:[s,s]}, s:{s:s, s:s}}, s:[s]}",
                  "type", "object", "properties", "status", "type", "string",
                  "enum", "ok", "unavailable", "reason", "type", "string",
                  "description", "Why not (503 only)", "required",
                  "status"),
        bad);
    set(sc, "OpenAPIDocument",
        json_pack("{s:s, s:s}", "type", "object", "description",
                  "This document"),
        bad);
    set(sc, "Detail",
        json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object",
                  "properties", "detail", "type", "string", "required",
                  "detail"),
        bad);
    set(sc, "ValidationError",
        json_pack("{s:s, s:{s:{s:s, s:{s:[{s:s},{s:s}]}}, s:{s:s},"
                  " s:{s:s}, s:{s:s}}, s:[s,s,s]}",
                  "type", "object", "properties", "loc", "type", "array",
                  "items", "anyOf", "type", "string", "type", "integer",
                  "msg", "type", "string", "type", "type", "string", "ctx",
                  "type", "object", "required", "loc", "msg", "type"),
        bad);
    set(sc, "HTTPValidationError",
        json_pack("{s:s, s:{s:o}, s:[s]}", "type", "object", "properties",
                  "detail", array_of(ref("schemas", "ValidationError")),
                  "required", "detail"),
        bad);
}

/* Success bodies that are not JSON objects. */
static int
is_text_schema(const char *name)
{
    return strcmp(name, "text") == 0;
}

struct status_doc {
    unsigned sd_status;
    const char *sd_desc;
};

static const struct status_doc error_docs[] = {
    {400, "Malformed request framing (Content-Length, Transfer-Encoding,"
          " repeated headers)"},
    {401, "Not authenticated, or an invalid, disabled or expired key"},
    {404, "Not found: the client, zone or user (or /metrics when it is"
          " not enabled)"},
    {405, "Method Not Allowed"},
    {409, "User already exists"},
    {413, "Request body larger than 1 MiB"},
    {429, "Too many requests from this address or for this key, or too"
          " many failed authentications; retry after Retry-After seconds"},
    {422, "Validation error: every bad field named"},
    {503, "The database could not take the change; nothing was saved."
          " Retry (Retry-After: 1)"},
};

static const char *
error_desc(unsigned st)
{
    size_t i;

    for (i = 0; i < sizeof(error_docs) / sizeof(error_docs[0]); i++)
        if (error_docs[i].sd_status == st)
            return error_docs[i].sd_desc;
    return NULL;
}

static void
error_responses(json_t *resps, int *bad)
{
    size_t i;

    for (i = 0; i < sizeof(error_docs) / sizeof(error_docs[0]); i++) {
        char name[16];
        unsigned st = error_docs[i].sd_status;

        if (st == 405)
            continue;   /* no operation answers it: the info says so */
        snprintf(name, sizeof(name), "E%u", st);
        set(resps, name,
            json_pack("{s:s, s:{s:{s:o}}}", "description",
                      error_docs[i].sd_desc, "content", "application/json",
                      "schema",
                      ref("schemas", st == 422 ? "HTTPValidationError"
                                               : "Detail")),
            bad);
    }
    set(json_object_get(resps, "E401"), "headers",
        json_pack("{s:{s:s, s:{s:s}}}", "WWW-Authenticate", "description",
                  "Bearer", "schema", "type", "string"),
        bad);
    set(json_object_get(resps, "E429"), "headers",
        json_pack("{s:{s:s, s:{s:s}}}", "Retry-After", "description",
                  "Seconds to wait", "schema", "type", "integer"),
        bad);
    set(json_object_get(resps, "E503"), "headers",
        json_pack("{s:{s:s, s:{s:s}}}", "Retry-After", "description",
                  "Seconds to wait: 1", "schema", "type", "integer"),
        bad);
}

/* ---- operations ---------------------------------------------------- */

/* "get_clients_users_single" from GET /clients/users/single. */
static json_t *
operation_id(const struct http_route *r)
{
    char buf[128];
    size_t i, n;

    n = (size_t)snprintf(buf, sizeof(buf), "%s%s", r->hr_method,
                         r->hr_path);
    for (i = 0; i < n && i < sizeof(buf) - 1; i++) {
        char c = buf[i];

        if (c >= 'A' && c <= 'Z')
            buf[i] = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            buf[i] = '_';
    }
    return json_string(buf);
}

/* The tag: the path's second segment under /clients, else its first. */
static const char *
tag_of(const struct http_route *r)
{
    if (strncmp(r->hr_path, "/clients/zones", 14) == 0)
        return "zones";
    if (strncmp(r->hr_path, "/clients/users", 14) == 0)
        return "users";
    if (strcmp(r->hr_path, "/clients/import") == 0)
        return "import";
    if (strncmp(r->hr_path, "/clients", 8) == 0)
        return "clients";
    return "service";
}

static void
parameters(json_t *op, const struct http_route *r, int *bad)
{
    json_t *ps = json_array();

    if (r->hr_params & HP_CLIENT_ID)
        push(ps, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:s}}", "name",
                           "X-Client-Id", "in", "header", "required", 1,
                           "description", "The client id: 1 to 16 digits",
                           "schema", "type", "string", "pattern",
                           "^[0-9]{1,16}$"),
             bad);
    if (r->hr_params & HP_USER_NO)
        push(ps, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:s}}", "name",
                           "X-User-No", "in", "header", "required", 1,
                           "description", "The user number, 1..999 (199 is"
                           " the installer's and refused)",
                           "schema", "type", "string", "pattern",
                           "^[0-9]{1,3}$"),
             bad);
    if (r->hr_params & HP_IMPORT_QUERY) {
        push(ps, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:o}}", "name",
                           "state", "in", "query", "required", 0,
                           "description", "Only clients in this state",
                           "schema", "type", "string", "enum",
                           states_enum()),
             bad);
        push(ps, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:I, s:I, s:I}}",
                           "name", "after", "in", "query", "required", 0,
                           "description", "Only client ids above this one"
                           " (next_after of the previous page)",
                           "schema", "type", "integer", "minimum", 0,
                           "maximum", (json_int_t)MODEL_CLIENT_ID_MAX,
                           "default", 0),
             bad);
        push(ps, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:I, s:I, s:I}}",
                           "name", "limit", "in", "query", "required", 0,
                           "description", "Clients per page", "schema",
                           "type", "integer", "minimum",
                           (json_int_t)API_IMPORT_LIMIT_MIN, "maximum",
                           (json_int_t)API_IMPORT_LIMIT_MAX, "default",
                           (json_int_t)API_IMPORT_LIMIT_DEFAULT),
             bad);
    }
    if (json_array_size(ps) > 0)
        set(op, "parameters", ps, bad);
    else
        json_decref(ps);
}

static const char *
success_desc(unsigned st)
{
    switch (st) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    default:
        return "Success";
    }
}

/* The statuses of r: its own list, then what the dispatcher adds. */
static int
route_statuses(const struct http_route *r, unsigned *out, size_t max)
{
    const char *p = r->hr_statuses ? r->hr_statuses : "";
    size_t n = 0, i;
    unsigned extra[8];
    size_t nextra = 0;

    while (*p != '\0' && n < max) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);

        if (end == p || v < 100 || v > 599)
            return -1;
        out[n++] = (unsigned)v;
        for (p = end; *p == ' '; p++)
            ;
    }
    /* What http.c answers before a handler runs: 400 for malformed
     * framing headers and 429 for the per-address rate on any route, 401
     * (and 429 for repeated failures, the per-key rate) with auth, 413 and
     * 422 for bodies. */
    extra[nextra++] = 400;
    extra[nextra++] = 429;
    if (!(r->hr_flags & HR_NOAUTH) || (r->hr_flags & HR_OWNAUTH))
        extra[nextra++] = 401;
    if (r->hr_flags & HR_BODY) {
        extra[nextra++] = 413;
        extra[nextra++] = 422;
    }
    for (i = 0; i < nextra; i++) {
        size_t j;

        for (j = 0; j < n && out[j] != extra[i]; j++)
            ;
        if (j == n && n < max)
            out[n++] = extra[i];
    }
    return (int)n;
}

static json_t *
responses(const struct http_route *r, int *bad)
{
    json_t *rs = json_object();
    unsigned st[16];
    int n, i;
    char code[8], name[16];

    if ((n = route_statuses(r, st, 16)) <= 0) {
        *bad = 1;
        return rs;
    }
    for (i = 0; i < n; i++) {
        snprintf(code, sizeof(code), "%u", st[i]);
        if (st[i] >= 200 && st[i] < 300) {
            json_t *resp = json_pack("{s:s}", "description",
                                     success_desc(st[i]));
            const char *ct = r->hr_content_type ? r->hr_content_type
                                                : "application/json";

            if (st[i] != 204 && r->hr_response != NULL) {
                json_t *schema = is_text_schema(r->hr_response)
                                     ? json_pack("{s:s}", "type", "string")
                                     : ref("schemas", r->hr_response);
                char mt[64];

                /* The media type without its parameters. */
                snprintf(mt, sizeof(mt), "%.*s", (int)strcspn(ct, ";"), ct);
                set(resp, "content",
                    json_pack("{s:{s:o}}", mt, "schema", schema), bad);
            }
            if (r->hr_flags & HR_BODY)
                set(resp, "headers",
                    json_pack("{s:{s:s, s:{s:s}}}", "X-Ignored-Fields",
                              "description", "Unknown fields of the body"
                              " that were ignored, comma-separated",
                              "schema", "type", "string"),
                    bad);
            set(rs, code, resp, bad);
        } else if (error_desc(st[i]) != NULL) {
            snprintf(name, sizeof(name), "E%u", st[i]);
            set(rs, code, ref("responses", name), bad);
        } else {
            *bad = 1;
        }
    }
    return rs;
}

static json_t *
operation(json_t *schemas, const struct http_route *r, int *bad)
{
    json_t *op = json_object();

    set(op, "operationId", operation_id(r), bad);
    set(op, "summary", json_string(r->hr_summary ? r->hr_summary : ""),
        bad);
    set(op, "tags", json_pack("[s]", tag_of(r)), bad);
    if (r->hr_flags & HR_OWNAUTH)
        set(op, "security", json_pack("[{s:[]}]", "MetricsToken"), bad);
    else if (r->hr_flags & HR_NOAUTH)
        set(op, "security", json_array(), bad);
    else
        set(op, "security", json_pack("[{s:[]}]", "APIKey"), bad);
    parameters(op, r, bad);
    if (r->hr_flags & HR_BODY) {
        char name[96];

        if (r->hr_body == NULL) {
            *bad = 1;
        } else {
            table_schema(schemas, r->hr_body, 0, bad);
            table_name(r->hr_body, 0, name, sizeof(name));
            set(op, "requestBody",
                json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                          "application/json", "schema",
                          ref("schemas", name)),
                bad);
        }
    }
    set(op, "responses", responses(r, bad), bad);
    return op;
}

static const char api_description[] =
    "A bridge between installers' and partner platforms' systems and"
    " Patriot, the monitoring system of alarm-monitoring centres.\n\n"
    "Every endpoint under /clients needs `Authorization: Bearer <API key>`."
    " Bodies are JSON, at most 1 MiB. Unknown body fields are ignored and"
    " named in the `X-Ignored-Fields` response header. Errors have FastAPI's"
    " shapes: `{\"detail\": \"...\"}`, and for 422 `{\"detail\": [{\"loc\","
    " \"msg\", \"type\"}]}` naming every bad field. A method a path does not"
    " have answers 405, an unknown path 404 `{\"detail\": \"Not Found\"}`."
    "\n\nGenerated by the server from the route and field tables it runs"
    " on.";

json_t *
openapi_document(const struct http_route *routes, size_t n,
                 const char *version)
{
    json_t *doc = NULL, *paths, *comps, *schemas, *resps;
    size_t i;
    int bad = 0;

    paths = json_object();
    schemas = json_object();
    resps = json_object();
    comps = json_object();
    doc = json_pack("{s:s, s:{s:s, s:s, s:s, s:{s:s, s:s}}, s:[{s:s, s:s}]}",
                    "openapi", "3.1.0", "info", "title", "patriot-api",
                    "version", version, "description", api_description,
                    "license", "name", "Proprietary", "identifier",
                    "LicenseRef-Proprietary", "servers", "url", "/",
                    "description", "This server");
    set(doc, "tags",
        json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s},"
                  " {s:s, s:s}]",
                  "name", "clients", "description",
                  "Clients: create, read, change, delete", "name", "zones",
                  "description", "A client's alarm zones", "name", "users",
                  "description", "The people to call", "name", "import",
                  "description", "Whether Patriot imported each client",
                  "name", "service", "description",
                  "Health, metrics and this documentation"),
        &bad);
    for (i = 0; i < n; i++) {
        const struct http_route *r = &routes[i];
        json_t *item = json_object_get(paths, r->hr_path);
        char meth[16];
        size_t k;

        if (item == NULL) {
            item = json_object();
            set(paths, r->hr_path, item, &bad);
        }
        for (k = 0; r->hr_method[k] && k < sizeof(meth) - 1; k++)
            meth[k] = (char)(r->hr_method[k] >= 'A' && r->hr_method[k] <= 'Z'
                                 ? r->hr_method[k] - 'A' + 'a'
                                 : r->hr_method[k]);
        meth[k] = '\0';
        set(item, meth, operation(schemas, r, &bad), &bad);
    }
    table_schema(schemas, &model_info, 0, &bad);
    table_schema(schemas, &model_zone, 0, &bad);
    table_schema(schemas, &model_user, 0, &bad);
    fixed_schemas(schemas, &bad);
    for (i = 0; i < n; i++)
        if (routes[i].hr_response != NULL &&
            !is_text_schema(routes[i].hr_response) &&
            json_object_get(schemas, routes[i].hr_response) == NULL)
            bad = 1;
    error_responses(resps, &bad);
    set(comps, "schemas", schemas, &bad);
    set(comps, "responses", resps, &bad);
    set(comps, "securitySchemes",
        json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "APIKey", "type",
                  "http", "scheme", "bearer", "description",
                  "An API key from keys.json: one tenant", "MetricsToken",
                  "type", "http", "scheme", "bearer", "description",
                  "METRICS_TOKEN of the server; without it /metrics"
                  " answers 404 on the API port"),
        &bad);
    set(doc, "paths", paths, &bad);
    set(doc, "components", comps, &bad);
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

char *
openapi_build(const struct http_route *routes, size_t n, const char *version,
              size_t *len)
{
    json_t *doc = openapi_document(routes, n, version);
    char *text = NULL;

    if (doc == NULL)
        return NULL;
    text = json_dumps(doc, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (text == NULL)
        return NULL;
    /* json_dumps allocates through jansson's allocator: copy to malloc. */
    {
        size_t l = strlen(text);
        char *out = malloc(l + 1);
        void (*jfree)(void *) = NULL;
        json_malloc_t jm;

        json_get_alloc_funcs(&jm, &jfree);
        if (out != NULL) {
            memcpy(out, text, l + 1);
            *len = l;
        }
        jfree(text);
        return out;
    }
}

char *
openapi_docs_page(const char *doc, size_t doclen, size_t *len)
{
    const char *page = (const char *)docs_html;
    const char *at = NULL;
    struct sbuf b = {0};
    size_t i, plen = strlen(DOCS_PLACEHOLDER);

    for (i = 0; i + plen <= docs_html_len; i++)
        if (memcmp(page + i, DOCS_PLACEHOLDER, plen) == 0) {
            at = page + i;
            break;
        }
    if (at == NULL)
        return NULL;
    if (sbuf_add(&b, page, (size_t)(at - page)) < 0)
        goto fail;
    for (i = 0; i < doclen; i++) {
        /* Inside <script>, "</" could close it. */
        if (doc[i] == '<' && i + 1 < doclen && doc[i + 1] == '/') {
            if (sbuf_add(&b, "<\\/", 3) < 0)
                goto fail;
            i++;
        } else if (sbuf_add(&b, doc + i, 1) < 0) {
            goto fail;
        }
    }
    if (sbuf_add(&b, at + plen, docs_html_len - (size_t)(at - page) - plen)
        < 0)
        goto fail;
    *len = b.sb_len;
    return b.sb_buf;
fail:
    sbuf_free(&b);
    return NULL;
}
