/*
 * fuzz_model.c - the request model of every endpoint.
 *
 * Input: one selector byte (which request body table) + JSON bytes. The
 * bytes are parsed as the HTTP layer parses them (JSON_ALLOW_NUL; on an
 * integer overflow again with JSON_DECODE_INT_AS_REAL), validated with
 * model_validate, and then:
 *   - the result is NULL exactly when errors were recorded, each error a
 *     {"type","loc","msg"} object whose loc starts with "body";
 *   - a validated object re-validates to itself (idempotent);
 *   - every validated string is XML 1.0 text (model_text_ok) within its
 *     length limit;
 *   - the client it describes renders (pxml_render_client, fixed key), the
 *     XML parses with libxml2 (XML_PARSE_NONET) and every field comes back
 *     as the text of its element, byte for byte; __id is id + port;
 *   - the rendered document passes the combiner's own check
 *     (combine_row_check) with the same __id.
 */
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#include "combine.h"
#include "fuzz.h"
#include "keys.h"
#include "model.h"
#include "patriot_xml.h"

static const char keys_json[] =
    "[{\"key_name\": \"Fuzz\", \"key\": \"fuzz-key\", \"port\": \"BASE11\","
    "  \"installer_name\": \"Sikring & <Co> \\\"AS\\\"\","
    "  \"installer_email\": \"post@example.com\","
    "  \"xml_fields\": {\"UseGlobCallOuts\": \"True\", \"AltAlarmNo\":"
    "  \"CID4 & <x>\"},"
    "  \"client_groupings\": [{\"Description\": \"D\","
    "   \"GroupingTypeDescription\": \"T\", \"GroupingAllowMultiple\":"
    "   \"True\"}]}]";

static const struct mtable *const tables[] = {
    &model_body_client, &model_body_client_patch, &model_body_client_id,
    &model_body_zone, &model_body_zone_id, &model_body_user,
    &model_body_user_no,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static const struct key *key;

static void
init(void)
{
    static struct keyset *ks;
    char err[256];

    if (ks != NULL)
        return;
    xmlInitParser();
    ks = keys_load_buffer(keys_json, strlen(keys_json), err, sizeof(err));
    FUZZ_CHECK(ks != NULL);
    key = keys_get(ks, 0);
}

/* The first child element of parent named name, or NULL. */
static xmlNodePtr
child(xmlNodePtr parent, const char *name)
{
    xmlNodePtr n;

    for (n = parent ? parent->children : NULL; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE &&
            strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

/* Element name of parent holds exactly len bytes s. */
static void
check_text(xmlNodePtr parent, const char *name, const char *s, size_t len)
{
    xmlNodePtr n = child(parent, name);
    xmlChar *t;

    FUZZ_CHECK(n != NULL);
    t = xmlNodeGetContent(n);
    FUZZ_CHECK(t != NULL);
    FUZZ_CHECK(strlen((const char *)t) == len);
    FUZZ_CHECK(memcmp(t, s, len) == 0);
    xmlFree(t);
}

/* Every set field of obj (validated against t) is in parent's elements,
 * and every string is valid text within its limit. */
static void
check_fields(xmlNodePtr parent, const struct mtable *t, json_t *obj)
{
    size_t i;
    char buf[32];

    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];
        json_t *v = json_object_get(obj, f->mf_name);

        if (v == NULL || json_is_null(v)) {
            if (parent != NULL)
                FUZZ_CHECK(child(parent, f->mf_name) == NULL);
            continue;
        }
        switch (f->mf_type) {
        case MT_STR:
            FUZZ_CHECK(json_is_string(v));
            FUZZ_CHECK(model_text_ok(json_string_value(v),
                                     json_string_length(v)));
            FUZZ_CHECK(model_utf8_len(json_string_value(v),
                                      json_string_length(v)) <=
                       (size_t)f->mf_max);
            if (parent != NULL)
                check_text(parent, f->mf_name, json_string_value(v),
                           json_string_length(v));
            break;
        case MT_BOOL:
            FUZZ_CHECK(json_is_boolean(v));
            if (parent != NULL)
                check_text(parent, f->mf_name,
                           json_is_true(v) ? "True" : "False",
                           json_is_true(v) ? 4 : 5);
            break;
        case MT_INT:
        case MT_ID:
            FUZZ_CHECK(json_is_integer(v));
            FUZZ_CHECK(json_integer_value(v) >= f->mf_min &&
                       json_integer_value(v) <= f->mf_max);
            snprintf(buf, sizeof(buf), "%lld",
                     (long long)json_integer_value(v));
            if (parent != NULL)
                check_text(parent, f->mf_name, buf, strlen(buf));
            break;
        case MT_OBJ:
            FUZZ_CHECK(json_is_object(v));
            break;
        }
    }
}

static void
check_errors(json_t *errs)
{
    size_t i;
    json_t *e;

    json_array_foreach(errs, i, e) {
        json_t *loc = json_object_get(e, "loc");

        FUZZ_CHECK(json_is_string(json_object_get(e, "type")));
        FUZZ_CHECK(json_is_string(json_object_get(e, "msg")));
        FUZZ_CHECK(json_is_array(loc) && json_array_size(loc) >= 1);
        FUZZ_CHECK(json_is_string(json_array_get(loc, 0)));
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(loc, 0)),
                          "body") == 0);
    }
}

/* Render the client v describes, parse it back and compare. */
static void
render_check(const struct mtable *t, json_t *v)
{
    json_t *info = NULL, *zones = json_array(), *users = json_array();
    json_t *empty = json_object(), *z = NULL, *tmp;
    int64_t cid = json_integer_value(json_object_get(v, "client_id"));
    char *xml = NULL, id[128], want[128];
    size_t len, off, rlen;
    xmlDocPtr doc;
    xmlNodePtr root, row;

    FUZZ_CHECK(zones && users && empty);
    if (t == &model_body_client) {
        info = json_incref(json_object_get(v, "info"));
    } else if (t == &model_body_client_patch) {
        info = model_merge(&model_info, empty, json_object_get(v, "info"));
    } else if (t == &model_body_zone) {
        /* as api.c's zone_put builds it */
        json_t *errs = json_array(), *mod = json_object_get(v, "ModuleNo");

        tmp = json_object();
        json_object_set(tmp, "Zone_No", json_object_get(v, "zone_id"));
        if (json_object_get(v, "Zone_area"))
            json_object_set(tmp, "Zone_area",
                            json_object_get(v, "Zone_area"));
        json_object_set_new(tmp, "ModuleNo",
                            mod ? json_incref(mod) : json_integer(0));
        z = model_validate(&model_zone, tmp, 0, NULL, errs, NULL);
        FUZZ_CHECK(z != NULL && json_array_size(errs) == 0);
        FUZZ_CHECK(json_equal(z, tmp));
        json_decref(tmp);
        json_decref(errs);
        json_array_append(zones, z);
    } else if (t == &model_body_user) {
        json_array_append(users, json_object_get(v, "user"));
    }
    if (info == NULL)
        info = json_incref(empty);
    FUZZ_CHECK(info != NULL);

    FUZZ_CHECK(pxml_render_client(key, cid, info, zones, users, &xml,
                                  &len) == 0);
    FUZZ_CHECK(strlen(xml) == len);
    doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET);
    FUZZ_CHECK(doc != NULL);
    root = xmlDocGetRootElement(doc);
    FUZZ_CHECK(root && strcmp((const char *)root->name, "Clients") == 0);
    row = child(root, "Row");
    FUZZ_CHECK(row != NULL);
    snprintf(want, sizeof(want), "%lld%s", (long long)cid, key->k_port);
    check_text(row, "__id", want, strlen(want));
    check_fields(row, &model_info, info);
    check_text(row, "Installer", key->k_installer_name,
               strlen(key->k_installer_name));
    check_text(row, "AltAlarmNo", "CID4 & <x>", 10);
    if (z != NULL)
        check_fields(child(row, "Zone"), &model_zone, z);
    if (t == &model_body_user)
        check_fields(child(row, "User"), &model_user,
                     json_object_get(v, "user"));
    xmlFreeDoc(doc);

    /* the combiner accepts what the writer makes */
    FUZZ_CHECK(combine_row_check(xml, len, &off, &rlen, id,
                                 sizeof(id)) == 0);
    FUZZ_CHECK(strcmp(id, want) == 0);
    FUZZ_CHECK(off + rlen <= len);
    FUZZ_CHECK(memcmp(xml + off, "<Row>", 5) == 0);
    FUZZ_CHECK(memcmp(xml + off + rlen - 6, "</Row>", 6) == 0);

    free(xml);
    json_decref(z);
    json_decref(info);
    json_decref(empty);
    json_decref(zones);
    json_decref(users);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct mtable *t;
    json_error_t jerr;
    json_t *in, *v, *v2, *loc, *errs, *ign, *errs2;
    unsigned flags = 0;

    init();
    if (size < 1)
        return 0;
    t = tables[data[0] % NTABLES];
    in = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL, &jerr);
    if (in == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        in = json_loadb((const char *)data + 1, size - 1,
                        JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
        flags = MV_INTS_AS_REAL;
    }
    if (in == NULL)
        return 0;
    loc = json_pack("[s]", "body");
    errs = json_array();
    ign = json_array();
    errs2 = json_array();
    FUZZ_CHECK(loc && errs && ign && errs2);

    v = model_validate(t, in, flags, loc, errs, ign);
    check_errors(errs);
    if (v == NULL) {
        FUZZ_CHECK(json_array_size(errs) > 0);
    } else {
        size_t i;

        FUZZ_CHECK(json_array_size(errs) == 0);
        FUZZ_CHECK(json_is_object(v));
        /* only known fields, each valid */
        FUZZ_CHECK(json_object_size(v) <= t->mt_nfields);
        check_fields(NULL, t, v);
        for (i = 0; i < t->mt_nfields; i++) {
            const struct mfield *f = &t->mt_fields[i];
            json_t *sub = json_object_get(v, f->mf_name);

            if (f->mf_type == MT_OBJ && sub != NULL && !json_is_null(sub))
                check_fields(NULL, f->mf_sub, sub);
        }
        /* idempotent */
        v2 = model_validate(t, v, 0, loc, errs2, NULL);
        FUZZ_CHECK(v2 != NULL);
        FUZZ_CHECK(json_array_size(errs2) == 0);
        FUZZ_CHECK(json_equal(v, v2));
        json_decref(v2);
        render_check(t, v);
        json_decref(v);
    }
    json_decref(in);
    json_decref(loc);
    json_decref(errs);
    json_decref(ign);
    json_decref(errs2);
    return 0;
}
