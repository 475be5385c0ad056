/*
 * test_openapi.c - the OpenAPI document against the tables it is made
 * from: every route of api_routes has its operation and every operation
 * its route; every field of every body table is in its schema with its
 * type, limits and required flag; every status a route lists is
 * documented; every $ref resolves. And the docs page carries the document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model.h"
#include "openapi.h"

static void
lower(const char *in, char *out, size_t len)
{
    size_t i;

    for (i = 0; in[i] && i < len - 1; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a'
                                                     : in[i]);
    out[i] = '\0';
}

/* The object a "#/a/b/c" reference points to, or NULL. */
static json_t *
resolve(json_t *doc, json_t *s)
{
    const char *r;
    char buf[256], *p, *save = NULL;
    json_t *o = doc;

    while (s != NULL && (r = json_string_value(json_object_get(s, "$ref")))
           != NULL) {
        if (strncmp(r, "#/", 2) != 0)
            return NULL;
        snprintf(buf, sizeof(buf), "%s", r + 2);
        o = doc;
        for (p = strtok_r(buf, "/", &save); p && o;
             p = strtok_r(NULL, "/", &save))
            o = json_object_get(o, p);
        s = o;
    }
    return s;
}

static json_t *
doc_new(void)
{
    json_t *doc = openapi_document(api_routes, api_nroutes, "test");

    assert_non_null(doc);
    return doc;
}

static json_t *
op_of(json_t *doc, const struct http_route *r)
{
    char m[16];

    lower(r->hr_method, m, sizeof(m));
    return json_object_get(json_object_get(json_object_get(doc, "paths"),
                                           r->hr_path),
                           m);
}

static void
test_every_route_has_its_operation(void **state)
{
    json_t *doc = doc_new();
    size_t i;

    (void)state;
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")),
                        "3.1.0");
    for (i = 0; i < api_nroutes; i++) {
        json_t *op = op_of(doc, &api_routes[i]);

        if (op == NULL)
            fail_msg("%s %s has no operation", api_routes[i].hr_method,
                     api_routes[i].hr_path);
        assert_non_null(json_object_get(op, "operationId"));
        assert_non_null(json_object_get(op, "responses"));
    }
    json_decref(doc);
}

static void
test_every_operation_has_its_route(void **state)
{
    json_t *doc = doc_new(), *item;
    const char *path, *m;
    size_t i, nops = 0;

    (void)state;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        json_t *op;

        json_object_foreach(item, m, op) {
            int found = 0;

            for (i = 0; i < api_nroutes; i++) {
                char lm[16];

                lower(api_routes[i].hr_method, lm, sizeof(lm));
                if (strcmp(api_routes[i].hr_path, path) == 0 &&
                    strcmp(lm, m) == 0)
                    found = 1;
            }
            if (!found)
                fail_msg("operation %s %s has no route", m, path);
            nops++;
        }
    }
    assert_int_equal(nops, api_nroutes);
    json_decref(doc);
}

/* Every field of t is in schema s with its type and limits. */
static void
check_table(json_t *doc, json_t *s, const struct mtable *t, int partial)
{
    json_t *props, *req;
    size_t i;

    s = resolve(doc, s);
    assert_non_null(s);
    props = json_object_get(s, "properties");
    req = json_object_get(s, "required");
    assert_int_equal(json_object_size(props), t->mt_nfields);
    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];
        json_t *p = json_object_get(props, f->mf_name), *v;
        int required = 0;
        size_t k;

        if (p == NULL)
            fail_msg("%s.%s is not in the schema", t->mt_name, f->mf_name);
        json_array_foreach(req, k, v)
            if (strcmp(json_string_value(v), f->mf_name) == 0)
                required = 1;
        if (required !=
            ((f->mf_flags & MF_REQUIRED) && (!partial || f->mf_type == MT_ID)))
            fail_msg("%s.%s: required is wrong", t->mt_name, f->mf_name);
        switch (f->mf_type) {
        case MT_STR:
            assert_int_equal(json_integer_value(json_object_get(p,
                                                                "maxLength")),
                             f->mf_max);
            break;
        case MT_INT:
            assert_int_equal(json_integer_value(json_object_get(p, "minimum")),
                             f->mf_min);
            assert_int_equal(json_integer_value(json_object_get(p, "maximum")),
                             f->mf_max);
            break;
        case MT_BOOL: {
            json_t *ty = json_object_get(p, "type");

            /* PATCH: ["boolean", "null"] */
            assert_string_equal(json_string_value(partial
                                                      ? json_array_get(ty, 0)
                                                      : ty),
                                "boolean");
            break;
        }
        case MT_ID: {
            json_t *one = json_object_get(p, "oneOf");

            assert_int_equal(json_array_size(one), 2);
            assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(one, 0), "maximum")),
                             MODEL_CLIENT_ID_MAX);
            assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(one, 1), "pattern")),
                                "^[0-9]{1,16}$");
            break;
        }
        case MT_OBJ:
            check_table(doc, p, f->mf_sub, (f->mf_flags & MF_PARTIAL) != 0);
            break;
        }
    }
}

static void
test_bodies_follow_the_field_tables(void **state)
{
    json_t *doc = doc_new();
    size_t i, nbody = 0;

    (void)state;
    for (i = 0; i < api_nroutes; i++) {
        const struct http_route *r = &api_routes[i];
        json_t *rb = json_object_get(op_of(doc, r), "requestBody");

        if (!(r->hr_flags & HR_BODY)) {
            assert_null(rb);
            continue;
        }
        assert_non_null(r->hr_body);
        assert_non_null(rb);
        check_table(doc,
                    json_object_get(json_object_get(
                                        json_object_get(rb, "content"),
                                        "application/json"),
                                    "schema"),
                    r->hr_body, 0);
        nbody++;
    }
    assert_true(nbody >= 10);
    /* The answers' objects too. */
    check_table(doc, json_object_get(json_object_get(json_object_get(
                                         doc, "components"), "schemas"),
                                     "ClientInfo"),
                &model_info, 0);
    check_table(doc, json_object_get(json_object_get(json_object_get(
                                         doc, "components"), "schemas"),
                                     "Zone"),
                &model_zone, 0);
    check_table(doc, json_object_get(json_object_get(json_object_get(
                                         doc, "components"), "schemas"),
                                     "User"),
                &model_user, 0);
    json_decref(doc);
}

static void
test_statuses_headers_security(void **state)
{
    json_t *doc = doc_new();
    size_t i;

    (void)state;
    for (i = 0; i < api_nroutes; i++) {
        const struct http_route *r = &api_routes[i];
        json_t *op = op_of(doc, r), *rs = json_object_get(op, "responses");
        json_t *sec = json_object_get(op, "security"), *ps, *p;
        const char *s = r->hr_statuses;
        int has_cid = 0, has_uno = 0;
        size_t k;

        assert_non_null(s);
        while (*s) {
            char code[8];
            size_t n = strcspn(s, " ");

            snprintf(code, sizeof(code), "%.*s", (int)n, s);
            if (json_object_get(rs, code) == NULL)
                fail_msg("%s %s: status %s undocumented", r->hr_method,
                         r->hr_path, code);
            s += n;
            while (*s == ' ')
                s++;
        }
        if (!(r->hr_flags & HR_NOAUTH)) {
            assert_non_null(json_object_get(rs, "401"));
            assert_non_null(json_object_get(json_array_get(sec, 0),
                                            "APIKey"));
        } else if (!(r->hr_flags & HR_OWNAUTH)) {
            assert_int_equal(json_array_size(sec), 0);
        }
        if (r->hr_flags & HR_BODY) {
            assert_non_null(json_object_get(rs, "413"));
            assert_non_null(json_object_get(rs, "422"));
        }
        ps = json_object_get(op, "parameters");
        json_array_foreach(ps, k, p) {
            const char *name = json_string_value(json_object_get(p, "name"));

            has_cid |= strcmp(name, "X-Client-Id") == 0;
            has_uno |= strcmp(name, "X-User-No") == 0;
        }
        assert_int_equal(has_cid, (r->hr_params & HP_CLIENT_ID) != 0);
        assert_int_equal(has_uno, (r->hr_params & HP_USER_NO) != 0);
    }
    json_decref(doc);
}

/* Every $ref anywhere resolves. */
static void
walk_refs(json_t *doc, json_t *v, size_t *n)
{
    const char *k;
    json_t *x;
    size_t i;

    if (json_is_object(v)) {
        if (json_object_get(v, "$ref") != NULL) {
            if (resolve(doc, v) == NULL)
                fail_msg("dangling $ref %s", json_string_value(
                                                 json_object_get(v, "$ref")));
            (*n)++;
        }
        json_object_foreach(v, k, x)
            walk_refs(doc, x, n);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            walk_refs(doc, x, n);
    }
}

static void
test_refs_resolve(void **state)
{
    json_t *doc = doc_new();
    json_t *e422;
    size_t n = 0;

    (void)state;
    walk_refs(doc, doc, &n);
    assert_true(n > 50);
    /* FastAPI's 422 shape. */
    e422 = json_object_get(json_object_get(json_object_get(
                               doc, "components"), "schemas"),
                           "ValidationError");
    assert_non_null(json_object_get(json_object_get(e422, "properties"),
                                    "loc"));
    json_decref(doc);
}

static void
test_a_drifting_table_is_refused(void **state)
{
    static const struct http_route bad_schema[] = {
        {.hr_method = "GET", .hr_path = "/x", .hr_statuses = "200",
         .hr_response = "NoSuchSchema"},
    };
    static const struct http_route bad_status[] = {
        {.hr_method = "GET", .hr_path = "/x", .hr_statuses = "200 418",
         .hr_response = "Client"},
    };
    static const struct http_route no_body[] = {
        {.hr_method = "PUT", .hr_path = "/x", .hr_flags = HR_BODY,
         .hr_statuses = "200", .hr_response = "Client"},
    };

    (void)state;
    assert_null(openapi_document(bad_schema, 1, "t"));
    assert_null(openapi_document(bad_status, 1, "t"));
    assert_null(openapi_document(no_body, 1, "t"));
}

static void
test_docs_page_carries_the_document(void **state)
{
    size_t len = 0, plen = 0;
    char *doc = openapi_build(api_routes, api_nroutes, "9.9.9", &len);
    char *page;

    (void)state;
    assert_non_null(doc);
    assert_int_equal(strlen(doc), len);
    page = openapi_docs_page(doc, len, &plen);
    assert_non_null(page);
    assert_non_null(strstr(page, "\"openapi\": \"3.1.0\""));
    assert_null(strstr(page, "/*@OPENAPI@*/"));
    /* Nothing to fetch from elsewhere. */
    assert_null(strstr(page, "http://"));
    assert_null(strstr(page, "https://"));
    assert_null(strstr(page, "src=\""));
    free(page);
    free(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_has_its_operation),
        cmocka_unit_test(test_every_operation_has_its_route),
        cmocka_unit_test(test_bodies_follow_the_field_tables),
        cmocka_unit_test(test_statuses_headers_security),
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_a_drifting_table_is_refused),
        cmocka_unit_test(test_docs_page_carries_the_document),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
