/*
 * test_framing.c - unit tests of framing.c, the HTTP framing rules of
 * issue 7: every rule and its edges (duplicates, equal duplicates, both
 * length kinds, codings, lists, case, signs, spaces, overflow, the limit),
 * the order of the checks, and the incremental scan agreeing with the list
 * form. Decisions follow RFC 9112 where it lets a server choose (see
 * framing.h); the messages are the ones the API answers with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "framing.h"

#define MIB (1024ULL * 1024)

/* The verdict on pairs "name", "value", ..., NULL, under a 1 MiB limit. */
static unsigned
check_max(struct framing_verdict *v, unsigned long long max, ...)
{
    struct framing_hdr h[16];
    size_t n = 0;
    va_list ap;
    const char *name;

    va_start(ap, max);
    while ((name = va_arg(ap, const char *)) != NULL) {
        assert_true(n < 16);
        h[n].fh_name = name;
        h[n].fh_value = va_arg(ap, const char *);
        n++;
    }
    va_end(ap);
    return framing_check(h, n, max, v);
}

#define CHECK(v, ...) check_max(v, MIB, __VA_ARGS__, NULL)

static void
refused(struct framing_verdict *v, unsigned status, const char *msg)
{
    assert_int_equal(v->fv_status, status);
    assert_string_equal(v->fv_detail, msg);
    assert_int_equal(v->fv_body, FRAMING_NONE);
    assert_int_equal(v->fv_length, 0);
}

static void
length_ok(const char *cl, unsigned long long want)
{
    struct framing_verdict v;

    assert_int_equal(CHECK(&v, "Content-Length", cl), 0);
    assert_string_equal(v.fv_detail, "");
    assert_int_equal(v.fv_body, FRAMING_LENGTH);
    assert_int_equal(v.fv_length, want);
}

static void
length_bad(const char *cl)
{
    struct framing_verdict v;

    assert_int_equal(CHECK(&v, "Content-Length", cl), 400);
    refused(&v, 400, "Invalid Content-Length");
}

static void
test_no_body(void **state)
{
    struct framing_verdict v;

    (void)state;
    assert_int_equal(framing_check(NULL, 0, MIB, &v), 0);
    assert_int_equal(v.fv_body, FRAMING_NONE);
    assert_int_equal(v.fv_length, 0);
    assert_int_equal(CHECK(&v, "Host", "a", "Authorization", "Bearer k",
                           "Accept", "*/*"),
                     0);
    assert_int_equal(v.fv_body, FRAMING_NONE);
    /* names that only start like the framing ones */
    assert_int_equal(CHECK(&v, "Content-Type", "application/json",
                           "Content-Length-X", "junk", "TE", "trailers",
                           "Transfer-Encodings", "gzip", "Authorizations",
                           "a", "Authorization2", "b"),
                     0);
    assert_int_equal(v.fv_body, FRAMING_NONE);
    /* a NULL name is skipped, its value with it */
    {
        const struct framing_hdr h[] = {{NULL, "5"}, {NULL, "chunked"},
                                        {"Content-Length", "5"}};

        assert_int_equal(framing_check(h, 3, MIB, &v), 0);
        assert_int_equal(v.fv_body, FRAMING_LENGTH);
        assert_int_equal(v.fv_length, 5);
    }
}

static void
test_content_length(void **state)
{
    (void)state;
    length_ok("0", 0);
    length_ok("1", 1);
    length_ok("1352", 1352);
    length_ok("007", 7);                     /* leading zeros: 1*DIGIT */
    length_ok("1048576", MIB);               /* the limit itself */
    length_ok("0000000000000000001", 1);     /* 19 digits */
    length_ok("0000000000000000000", 0);
    length_bad("");
    length_bad("+5");
    length_bad("-5");
    length_bad("-0");
    length_bad(" 5");
    length_bad("5 ");
    length_bad("5\t");
    length_bad("5,5");
    length_bad("5, 5");                      /* a list: refused */
    length_bad("0x10");
    length_bad("1e3");
    length_bad("5.0");
    length_bad("five");
    length_bad("\xd9\xa5");                  /* ARABIC-INDIC DIGIT FIVE */
    length_bad("00000000000000000001");      /* 20 digits: refused */
    length_bad("18446744073709551615");      /* ULLONG_MAX */
    length_bad("18446744073709551616");      /* ULLONG_MAX + 1 */
    length_bad("99999999999999999999999999999999");
}

static void
test_too_large(void **state)
{
    struct framing_verdict v;

    (void)state;
    assert_int_equal(CHECK(&v, "Content-Length", "1048577"), 413);
    refused(&v, 413, "Request body larger than 1 MiB");
    /* the largest length that parses: 413, not wrapped */
    assert_int_equal(CHECK(&v, "Content-Length", "9999999999999999999"), 413);
    refused(&v, 413, "Request body larger than 1 MiB");
    assert_int_equal(CHECK(&v, "Content-Length", "9223372036854775808"), 413);
    /* the message follows the limit */
    assert_int_equal(check_max(&v, 64 * 1024, "Content-Length", "65537",
                               NULL),
                     413);
    assert_string_equal(v.fv_detail, "Request body larger than 64 KiB");
    assert_int_equal(check_max(&v, 1000, "Content-Length", "1001", NULL),
                     413);
    assert_string_equal(v.fv_detail, "Request body larger than 1000 bytes");
    assert_int_equal(check_max(&v, 0, "Content-Length", "1", NULL), 413);
    assert_string_equal(v.fv_detail, "Request body larger than 0 bytes");
    assert_int_equal(check_max(&v, 0, "Content-Length", "0", NULL), 0);
    assert_int_equal(check_max(&v, ~0ULL, "Content-Length",
                               "9999999999999999999", NULL),
                     0);
    assert_int_equal(v.fv_length, 9999999999999999999ULL);
}

static void
test_duplicate_lengths(void **state)
{
    struct framing_verdict v;

    (void)state;
    /* RFC 9110 8.6 lets a recipient reject equal duplicates: we do */
    assert_int_equal(CHECK(&v, "Content-Length", "5", "Content-Length", "5"),
                     400);
    refused(&v, 400, "More than one Content-Length header");
    assert_int_equal(CHECK(&v, "Content-Length", "5", "content-length",
                           "6"),
                     400);
    refused(&v, 400, "More than one Content-Length header");
    /* even when one of them does not parse: the count decides first */
    assert_int_equal(CHECK(&v, "Content-Length", "x", "Content-Length", "5"),
                     400);
    refused(&v, 400, "More than one Content-Length header");
}

static void
test_transfer_encoding(void **state)
{
    struct framing_verdict v;
    static const char *const ok[] = {"chunked", "Chunked", "CHUNKED",
                                     "cHuNkEd"};
    static const char *const bad[] = {
        "gzip", "identity", "chunked, gzip", "gzip, chunked",
        "chunked,chunked", "chunked ", " chunked", "chunked;q=1",
        "chunk", "chunkedx", "", "\xe2\x84\xaa" "chunked"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(CHECK(&v, "Transfer-Encoding", ok[i]), 0);
        assert_int_equal(v.fv_body, FRAMING_CHUNKED);
        assert_int_equal(v.fv_length, 0);
        assert_string_equal(v.fv_detail, "");
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(CHECK(&v, "Transfer-Encoding", bad[i]), 400);
        refused(&v, 400, "Transfer-Encoding other than chunked");
    }
    /* a NULL value counts as "" */
    assert_int_equal(CHECK(&v, "Transfer-Encoding", NULL), 400);
    refused(&v, 400, "Transfer-Encoding other than chunked");
    assert_int_equal(CHECK(&v, "Transfer-Encoding", "chunked",
                           "transfer-encoding", "chunked"),
                     400);
    refused(&v, 400, "More than one Transfer-Encoding header");
}

static void
test_both_kinds(void **state)
{
    struct framing_verdict v;

    (void)state;
    /* request smuggling's classic: refused, whatever the values */
    assert_int_equal(CHECK(&v, "Content-Length", "5", "Transfer-Encoding",
                           "chunked"),
                     400);
    refused(&v, 400, "Both Content-Length and Transfer-Encoding");
    assert_int_equal(CHECK(&v, "transfer-encoding", "gzip", "CONTENT-LENGTH",
                           "nope"),
                     400);
    refused(&v, 400, "Both Content-Length and Transfer-Encoding");
}

static void
test_authorization(void **state)
{
    struct framing_verdict v;

    (void)state;
    assert_int_equal(CHECK(&v, "Authorization", "Bearer a"), 0);
    assert_int_equal(CHECK(&v, "Authorization", "Bearer a", "authorization",
                           "Bearer a"),
                     401);
    refused(&v, 401, "More than one Authorization header");
    assert_int_equal(CHECK(&v, "AUTHORIZATION", "", "Authorization", NULL),
                     401);
}

/* The first failing rule in framing.h's order wins. */
static void
test_order(void **state)
{
    struct framing_verdict v;

    (void)state;
    assert_int_equal(CHECK(&v, "Content-Length", "1", "Content-Length", "2",
                           "Transfer-Encoding", "gzip", "Transfer-Encoding",
                           "x", "Authorization", "a", "Authorization", "b"),
                     401);
    assert_int_equal(CHECK(&v, "Content-Length", "1", "Content-Length", "2",
                           "Transfer-Encoding", "gzip", "Transfer-Encoding",
                           "x"),
                     400);
    assert_string_equal(v.fv_detail, "More than one Content-Length header");
    assert_int_equal(CHECK(&v, "Content-Length", "1", "Transfer-Encoding",
                           "gzip", "Transfer-Encoding", "x"),
                     400);
    assert_string_equal(v.fv_detail,
                        "More than one Transfer-Encoding header");
    assert_int_equal(CHECK(&v, "Content-Length", "99999999",
                           "Transfer-Encoding", "gzip"),
                     400);
    assert_string_equal(v.fv_detail,
                        "Both Content-Length and Transfer-Encoding");
}

/* The incremental scan (what http.c uses) is the list form. */
static void
test_scan(void **state)
{
    struct framing_scan fs;
    struct framing_verdict v;

    (void)state;
    framing_scan_init(&fs);
    framing_scan_header(&fs, "Host", "x");
    framing_scan_header(&fs, NULL, "x");
    framing_scan_header(&fs, "content-length", "42");
    assert_int_equal(framing_scan_verdict(&fs, MIB, &v), 0);
    assert_int_equal(v.fv_body, FRAMING_LENGTH);
    assert_int_equal(v.fv_length, 42);
    framing_scan_header(&fs, "Transfer-Encoding", "chunked");
    assert_int_equal(framing_scan_verdict(&fs, MIB, &v), 400);
    assert_string_equal(v.fv_detail,
                        "Both Content-Length and Transfer-Encoding");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_duplicate_lengths),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_both_kinds),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
