/*
 * test_jtext.c - unit tests of jtext.c: every change made as text gives the
 * bytes that jansson gives when it parses the array, changes it and dumps it
 * compact (the way the store changed a list before), for 20,000 random
 * arrays and changes; the edges by hand; bad text refused and left as it
 * was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"
#include "model.h"
#include "sbuf.h"

static void
set(struct sbuf *b, const char *text)
{
    b->sb_len = 0;
    assert_int_equal(sbuf_addstr(b, text), 0);
}

/* ---- the reference: jansson parse, change, compact dump --------------- */

static size_t
ref_find(json_t *arr, const char *field, int64_t no, int *found)
{
    size_t i;

    *found = 0;
    for (i = 0; i < json_array_size(arr); i++) {
        int64_t v = json_integer_value(
            json_object_get(json_array_get(arr, i), field));

        if (v >= no) {
            *found = v == no;
            break;
        }
    }
    return i;
}

/* Returns the jtext_rc the change should give; *out the dump if JTEXT_OK. */
static int
ref_change(const char *text, const char *field, int64_t no, json_t *elem,
           int del, enum jtext_mode mode, char **out)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t i;
    int found, rc = JTEXT_OK;

    assert_non_null(arr);
    i = ref_find(arr, field, no, &found);
    if (del) {
        if (!found)
            rc = JTEXT_NOITEM;
        else
            json_array_remove(arr, i);
    } else if (found && mode == JTEXT_INSERT) {
        rc = JTEXT_EXISTS;
    } else if (!found && mode == JTEXT_REPLACE) {
        rc = JTEXT_NOITEM;
    } else if (found) {
        json_array_set(arr, i, elem);
    } else {
        json_array_insert(arr, i, elem);
    }
    *out = rc == JTEXT_OK ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return rc;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static json_t *
rand_string(void)
{
    static const char *const parts[] = {
        "a", " ", "\"", "\\", "{", "}", "[", "]", ",", ":", "\n",
        "\xc3\xb8", "Zone_No", "\"Zone_No\":5",
    };
    char buf[128];
    size_t n = 0, k = rng() % 6;

    while (k-- > 0) {
        const char *p = parts[rng() % (sizeof parts / sizeof parts[0])];

        if (n + strlen(p) >= sizeof buf)
            break;
        memcpy(buf + n, p, strlen(p));
        n += strlen(p);
    }
    return json_stringn(buf, n);
}

/* An object numbered no (field first, last or in the middle), with strings
 * that look like JSON structure. */
static json_t *
rand_elem(const char *field, int64_t no)
{
    json_t *o = json_object();
    int where = (int)(rng() % 3);

    if (where == 0)
        json_object_set_new(o, field, json_integer(no));
    json_object_set_new(o, "Zone_area", rand_string());
    if (where == 1)
        json_object_set_new(o, field, json_integer(no));
    if (rng() % 2)
        json_object_set_new(o, "ModuleNo", json_integer((json_int_t)(rng() % 100)));
    if (rng() % 4 == 0)
        json_object_set_new(o, "Flag", json_boolean(rng() & 1));
    if (rng() % 4 == 0)
        json_object_set_new(o, "Nothing", json_null());
    if (where == 2)
        json_object_set_new(o, field, json_integer(no));
    return o;
}

static void
test_matches_jansson(void **state)
{
    struct sbuf b = {0};
    int round;

    (void)state;
    for (round = 0; round < 20000; round++) {
        const char *field = round % 2 ? "UserNo" : "Zone_No";
        json_t *arr = json_array(), *elem;
        int64_t nums[12], no;
        size_t n = rng() % 8, i;
        char *text, *want = NULL, *etext;
        int del = rng() % 3 == 0, rc, ref;
        enum jtext_mode mode = (enum jtext_mode)(rng() % 3);

        for (i = 0; i < n; i++)     /* sorted, unique */
            nums[i] = (i ? nums[i - 1] : 0) + 1 + (int64_t)(rng() % 4);
        for (i = 0; i < n; i++)
            json_array_append_new(arr, rand_elem(field, nums[i]));
        text = json_dumps(arr, JSON_COMPACT);
        no = n > 0 && rng() % 2 ? nums[rng() % n]
                                : 1 + (int64_t)(rng() % (4 * n + 4));
        elem = rand_elem(field, no);
        etext = json_dumps(elem, JSON_COMPACT);
        ref = ref_change(text, field, no, elem, del, mode, &want);
        set(&b, text);
        rc = del ? jtext_list_del(&b, field, no)
                 : jtext_list_put(&b, field, no, etext, strlen(etext), mode);
        assert_int_equal(rc, ref);
        assert_string_equal(b.sb_buf, rc == JTEXT_OK ? want : text);
        assert_int_equal(b.sb_len, strlen(b.sb_buf));
        free(want);
        free(text);
        free(etext);
        json_decref(elem);
        json_decref(arr);
    }
    sbuf_free(&b);
}

static void
test_edges(void **state)
{
    struct sbuf b = {0};

    (void)state;
    set(&b, "[]");
    assert_int_equal(jtext_list_put(&b, "Zone_No", 3, "{\"Zone_No\":3}", 13,
                               JTEXT_UPSERT), JTEXT_OK);
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":3}]");
    assert_int_equal(jtext_list_put(&b, "Zone_No", 1, "{\"Zone_No\":1}", 13,
                               JTEXT_INSERT), JTEXT_OK);
    assert_int_equal(jtext_list_put(&b, "Zone_No", 9, "{\"Zone_No\":9}", 13,
                               JTEXT_UPSERT), JTEXT_OK);
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":1},{\"Zone_No\":3},"
                                  "{\"Zone_No\":9}]");
    assert_int_equal(jtext_list_put(&b, "Zone_No", 3, "{\"Zone_No\":3,\"a\":1}",
                               19, JTEXT_REPLACE), JTEXT_OK);
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":1},{\"Zone_No\":3,\"a\":1},"
                                  "{\"Zone_No\":9}]");
    assert_int_equal(jtext_list_put(&b, "Zone_No", 3, "{\"Zone_No\":3}", 13,
                               JTEXT_INSERT), JTEXT_EXISTS);
    assert_int_equal(jtext_list_put(&b, "Zone_No", 4, "{\"Zone_No\":4}", 13,
                               JTEXT_REPLACE), JTEXT_NOITEM);
    assert_int_equal(jtext_list_del(&b, "Zone_No", 4), JTEXT_NOITEM);
    assert_int_equal(jtext_list_del(&b, "Zone_No", 9), JTEXT_OK);  /* last */
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":1},{\"Zone_No\":3,\"a\":1}]");
    assert_int_equal(jtext_list_del(&b, "Zone_No", 1), JTEXT_OK);  /* first */
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":3,\"a\":1}]");
    assert_int_equal(jtext_list_del(&b, "Zone_No", 3), JTEXT_OK);  /* only */
    assert_string_equal(b.sb_buf, "[]");

    /* Whitespace anywhere JSON allows it is read (the result keeps it). */
    set(&b, " [ { \"UserNo\" : 2 } ,\n{\"UserNo\":5} ] ");
    assert_int_equal(jtext_list_put(&b, "UserNo", 4, "{\"UserNo\":4}", 12,
                               JTEXT_INSERT), JTEXT_OK);
    assert_string_equal(b.sb_buf, " [ { \"UserNo\" : 2 } ,\n{\"UserNo\":4},"
                                  "{\"UserNo\":5} ] ");
    /* The field inside a string or a nested value does not count. */
    set(&b, "[{\"x\":\"\\\"UserNo\\\":1\",\"y\":{\"UserNo\":1},"
            "\"UserNo\":7}]");
    assert_int_equal(jtext_list_del(&b, "UserNo", 1), JTEXT_NOITEM);
    assert_int_equal(jtext_list_del(&b, "UserNo", 7), JTEXT_OK);
    assert_string_equal(b.sb_buf, "[]");
    sbuf_free(&b);
}

static void
test_bad_text(void **state)
{
    static const char *const bad[] = {
        "", "{}", "[", "[{}", "[{},]", "[1]", "[{\"Zone_No\":1}]x",
        "[{\"Zone_No\" 1}]", "[{\"Zone_No\":}]", "[{\"Zone_No\":\"1}]",
        "[{\"a\":[}]", "[{},,{}]", "[{\"Zone_No\":1,}]", "[{\"a\\",
    };
    struct sbuf b = {0};
    size_t i;

    (void)state;
    assert_int_equal(jtext_list_del(&b, "Zone_No", 1), JTEXT_BAD);   /* empty */
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set(&b, bad[i]);
        assert_int_equal(jtext_list_put(&b, "Zone_No", 1, "{\"Zone_No\":1}", 13,
                                   JTEXT_UPSERT), JTEXT_BAD);
        assert_int_equal(jtext_list_del(&b, "Zone_No", 1), JTEXT_BAD);
        assert_string_equal(b.sb_buf, bad[i]);
    }
    /* A number out of range or not an integer counts as 0, as jansson's
     * json_integer_value() of it. */
    set(&b, "[{\"Zone_No\":99999999999999999999},{\"Zone_No\":1.5}]");
    assert_int_equal(jtext_list_del(&b, "Zone_No", 0), JTEXT_OK);
    assert_string_equal(b.sb_buf, "[{\"Zone_No\":1.5}]");
    sbuf_free(&b);
}

/* A value for field f, or null (a PATCH clears with null). */
static json_t *
rand_value(const struct mfield *f)
{
    if (rng() % 5 == 0)
        return json_null();
    switch (f->mf_type) {
    case MT_BOOL:
        return json_boolean(rng() & 1);
    case MT_INT:
        return json_integer((json_int_t)(rng() % 100000));
    default:
        return rand_string();
    }
}

static void
test_merge_matches_model_merge(void **state)
{
    struct sbuf b = {0};
    int round;

    (void)state;
    for (round = 0; round < 20000; round++) {
        json_t *base = json_object(), *patch = json_object(), *merged;
        char *btext, *ptext, *want;
        size_t i;

        for (i = 0; i < model_info.mt_nfields; i++) {
            const struct mfield *f = &model_info.mt_fields[i];
            json_t *v;

            if (rng() % 2) {    /* stored: never null */
                v = rand_value(f);
                if (json_is_null(v)) {
                    json_decref(v);
                    v = json_string("x");
                }
                json_object_set_new(base, f->mf_name, v);
            }
            if (rng() % 4 == 0)
                json_object_set_new(patch, f->mf_name, rand_value(f));
        }
        if (rng() % 8 == 0)     /* a field no table names: dropped */
            json_object_set_new(base, "Gone", json_string("{\"Name\":1}"));
        btext = json_dumps(base, JSON_COMPACT);
        ptext = json_dumps(patch, JSON_COMPACT);
        merged = model_merge(&model_info, base, patch);
        want = json_dumps(merged, JSON_COMPACT);
        set(&b, btext);
        assert_int_equal(jtext_merge(&model_info, &b, ptext, strlen(ptext)),
                         JTEXT_OK);
        assert_string_equal(b.sb_buf, want);
        assert_int_equal(b.sb_len, strlen(want));
        free(btext);
        free(ptext);
        free(want);
        json_decref(merged);
        json_decref(base);
        json_decref(patch);
    }
    /* Bad text: refused, obj unchanged. */
    set(&b, "{\"Name\":\"a\"");
    assert_int_equal(jtext_merge(&model_info, &b, "{}", 2), JTEXT_BAD);
    assert_string_equal(b.sb_buf, "{\"Name\":\"a\"");
    set(&b, "{\"Name\":\"a\"}");
    assert_int_equal(jtext_merge(&model_info, &b, "[]", 2), JTEXT_BAD);
    assert_int_equal(jtext_merge(&model_info, &b, "{\"Name\"}", 8),
                     JTEXT_BAD);
    assert_string_equal(b.sb_buf, "{\"Name\":\"a\"}");
    assert_int_equal(jtext_merge(&model_info, &b, "{\"Name\":null}", 13),
                     JTEXT_OK);
    assert_string_equal(b.sb_buf, "{}");
    sbuf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_jansson),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_bad_text),
        cmocka_unit_test(test_merge_matches_model_merge),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
