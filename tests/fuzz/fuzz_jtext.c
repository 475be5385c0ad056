/*
 * fuzz_jtext.c - the writer's text edits of stored JSON (jtext.c), with
 * jansson as the oracle.
 *
 * Input: one byte choosing the call (list put in its three modes, list
 * delete, merge) and the number, then the stored text, a NUL, and the
 * element or patch text. Whatever the bytes: no crash, and a call that does
 * not answer JTEXT_OK leaves the buffer as it was. When the stored text is
 * what the store writes (jansson's compact dump of an array of objects, or
 * of an object; no duplicate names) and so is the element or patch: the
 * call answers what the tree change answers, and on JTEXT_OK its result is
 * byte for byte jansson's compact dump of the changed tree.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "jtext.h"
#include "model.h"

static const char field[] = "Zone_No";

static json_t *
load(const char *s, size_t n)
{
    return json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
}

/* Is s (n bytes) exactly jansson's compact dump of v? */
static int
canonical(json_t *v, const char *s, size_t n)
{
    char *d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int eq = d != NULL && strlen(d) == n && memcmp(d, s, n) == 0;

    free(d);
    return eq;
}

static int
all_objects(json_t *arr)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return 0;
    json_array_foreach(arr, i, v) {
        if (!json_is_object(v))
            return 0;
    }
    return 1;
}

/* The tree change; returns the rc jtext must give, changes arr. */
static int
ref_list(json_t *arr, int del, enum jtext_mode mode, int64_t no, json_t *el)
{
    size_t i;
    int found = 0;

    for (i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_object_get(json_array_get(arr, i), field);
        int64_t n = json_is_integer(v) ? json_integer_value(v) : 0;

        if (n >= no) {
            found = n == no;
            break;
        }
    }
    if (del) {
        if (!found)
            return JTEXT_NOITEM;
        json_array_remove(arr, i);
        return JTEXT_OK;
    }
    if (found && mode == JTEXT_INSERT)
        return JTEXT_EXISTS;
    if (!found && mode == JTEXT_REPLACE)
        return JTEXT_NOITEM;
    if (found)
        json_array_set(arr, i, el);
    else
        json_array_insert(arr, i, el);
    return JTEXT_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text, *arg, *nul;
    size_t tlen, alen;
    struct sbuf b = {0};
    json_t *tree = NULL, *el = NULL;
    int op, rc, want = -100;
    int64_t no;

    if (size < 2)
        return 0;
    op = data[0] % 5;
    no = (int64_t)(data[0] / 5) - 4;        /* -4 .. 46 */
    text = (const char *)data + 1;
    nul = memchr(text, '\0', size - 1);
    tlen = nul ? (size_t)(nul - text) : size - 1;
    arg = nul ? nul + 1 : "{}";
    alen = nul ? size - 1 - tlen - 1 : 2;
    FUZZ_CHECK(sbuf_add(&b, text, tlen) == 0);

    tree = load(text, tlen);
    if (!canonical(tree, text, tlen)) {
        json_decref(tree);
        tree = NULL;
    }
    el = load(arg, alen);
    if (op < 4) {
        enum jtext_mode mode = (enum jtext_mode)(op % 3);
        int del = op == 3;

        if (!del && json_is_object(el)) {
            /* The element carries its number, as the store's do. */
            char *et;

            json_object_set_new(el, field, json_integer(no));
            FUZZ_CHECK((et = json_dumps(el, JSON_COMPACT)) != NULL);
            rc = jtext_list_put(&b, field, no, et, strlen(et), mode);
            free(et);
            if (all_objects(tree))
                want = ref_list(tree, 0, mode, no, el);
        } else if (del) {
            rc = jtext_list_del(&b, field, no);
            if (all_objects(tree))
                want = ref_list(tree, 1, mode, no, NULL);
        } else {
            rc = jtext_list_put(&b, field, no, arg, alen, mode);
        }
    } else {
        rc = jtext_merge(&model_info, &b, arg, alen);
        if (json_is_object(tree) && json_is_object(el) &&
            canonical(el, arg, alen)) {
            json_t *m = model_merge(&model_info, tree, el);

            FUZZ_CHECK(m != NULL);
            json_decref(tree);
            tree = m;
            want = JTEXT_OK;
        }
    }
    FUZZ_CHECK(b.sb_buf[b.sb_len] == '\0');
    if (rc != JTEXT_OK)
        FUZZ_CHECK(b.sb_len == tlen && memcmp(b.sb_buf, text, tlen) == 0);
    if (want != -100) {
        FUZZ_CHECK(rc == want);
        if (rc == JTEXT_OK)
            FUZZ_CHECK(canonical(tree, b.sb_buf, b.sb_len));
    }
    json_decref(tree);
    json_decref(el);
    sbuf_free(&b);
    return 0;
}
