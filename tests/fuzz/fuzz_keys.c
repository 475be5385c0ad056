/*
 * fuzz_keys.c - the keys.json loader (keys_load_buffer).
 *
 * Whatever the bytes: a keyset or NULL with a one-line, NUL-terminated
 * message. For a keyset: every key_name and port is [A-Za-z0-9_-]{1,64},
 * names unique, every xml_fields name a safe XML name and value XML text;
 * a client rendered with each key parses back with libxml2 and carries the
 * key's fields and groupings; a lookup with a token that is not a key
 * finds nothing.
 */
#include <jansson.h>
#include <libxml/parser.h>
#include <string.h>

#include "fuzz.h"
#include "keys.h"
#include "model.h"
#include "patriot_xml.h"

static int
name_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 1 || n > KEYS_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int
text_ok(const char *s)
{
    return s != NULL && model_text_ok(s, strlen(s));
}

static void
check_key(const struct keyset *ks, const struct key *k)
{
    json_t *info = json_object(), *arr = json_array();
    char *xml = NULL;
    size_t len, i;
    xmlDocPtr doc;

    FUZZ_CHECK(name_ok(k->k_name));
    FUZZ_CHECK(name_ok(k->k_port));
    FUZZ_CHECK(keys_get_by_name(ks, k->k_name) == k);
    FUZZ_CHECK(text_ok(k->k_installer_name));
    FUZZ_CHECK(text_ok(k->k_installer_email));
    for (i = 0; i < k->k_nfields; i++) {
        FUZZ_CHECK(model_xml_name_ok(k->k_fields[i].kf_name));
        FUZZ_CHECK(text_ok(k->k_fields[i].kf_value));
    }
    for (i = 0; i < k->k_ngroupings; i++) {
        FUZZ_CHECK(text_ok(k->k_groupings[i].kg_description));
        FUZZ_CHECK(text_ok(k->k_groupings[i].kg_type_description));
        FUZZ_CHECK(text_ok(k->k_groupings[i].kg_allow_multiple));
    }
    FUZZ_CHECK(info && arr);
    FUZZ_CHECK(pxml_render_client(k, 1, info, arr, arr, &xml, &len) == 0);
    doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET);
    FUZZ_CHECK(doc != NULL);
    xmlFreeDoc(doc);
    free(xml);
    json_decref(info);
    json_decref(arr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keyset *ks;
    char err[512];
    size_t i, j;

    memset(err, 'x', sizeof(err));
    ks = keys_load_buffer((const char *)data, size, err, sizeof(err));
    if (ks == NULL) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(strchr(err, '\n') == NULL);
        return 0;
    }
    for (i = 0; i < keys_count(ks); i++) {
        check_key(ks, keys_get(ks, i));
        for (j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(keys_get(ks, i)->k_name,
                              keys_get(ks, j)->k_name) != 0);
    }
    /* nobody's key: 64 bytes no seed uses */
    FUZZ_CHECK(keys_lookup(ks, "\x01not-a-key-of-any-seed-\x02", 24, 0) ==
               NULL);
    FUZZ_CHECK(keys_retain(ks) == ks);
    keys_release(ks);
    keys_release(ks);
    return 0;
}
