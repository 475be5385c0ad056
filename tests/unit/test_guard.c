/*
 * test_guard.c - unit tests of guard.c: settings from the environment,
 * addresses, trusted proxies and the X-Forwarded-For walk, token buckets,
 * failure windows, and the fixed size of the tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"

static void
fmt(const struct guard_addr *a, char *buf)
{
    guard_addr_format(a, buf, GUARD_ADDR_STRLEN);
}

static struct guard_addr
addr(const char *s)
{
    struct guard_addr a;

    assert_int_equal(guard_addr_parse(s, strlen(s), &a), 0);
    return a;
}

static void
test_addr(void **state)
{
    struct guard_addr a;
    char buf[GUARD_ADDR_STRLEN];

    (void)state;
    a = addr(" 192.0.2.7 ");
    fmt(&a, buf);
    assert_string_equal(buf, "192.0.2.7");
    a = addr("2001:db8::1");
    fmt(&a, buf);
    assert_string_equal(buf, "2001:db8::1");
    /* The mapped form is the same address as the plain one. */
    a = addr("::ffff:192.0.2.7");
    fmt(&a, buf);
    assert_string_equal(buf, "192.0.2.7");
    assert_int_equal(guard_addr_parse("192.0.2.7:80", 12, &a), -1);
    assert_int_equal(guard_addr_parse("[::1]", 5, &a), -1);
    assert_int_equal(guard_addr_parse("unknown", 7, &a), -1);
    assert_int_equal(guard_addr_parse("", 0, &a), -1);
    assert_int_equal(guard_addr_parse("1.2.3.4.5", 9, &a), -1);
}

static void
test_cidrs(void **state)
{
    char err[256];
    struct guard_cidrs *c;
    struct guard_addr a;

    (void)state;
    c = guard_cidrs_parse("10.0.0.0/8, 192.168.1.1 ,fd00::/8  127.0.0.1",
                          err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(guard_cidrs_count(c), 4);
    a = addr("10.255.1.2");
    assert_true(guard_cidrs_match(c, &a));
    a = addr("11.0.0.1");
    assert_false(guard_cidrs_match(c, &a));
    a = addr("192.168.1.1");
    assert_true(guard_cidrs_match(c, &a));
    a = addr("192.168.1.2");
    assert_false(guard_cidrs_match(c, &a));
    a = addr("fd12::5");
    assert_true(guard_cidrs_match(c, &a));
    a = addr("fe80::1");
    assert_false(guard_cidrs_match(c, &a));
    guard_cidrs_free(c);
    /* Odd prefix lengths. */
    c = guard_cidrs_parse("172.16.0.0/12", err, sizeof(err));
    a = addr("172.31.255.255");
    assert_true(guard_cidrs_match(c, &a));
    a = addr("172.32.0.0");
    assert_false(guard_cidrs_match(c, &a));
    guard_cidrs_free(c);
    /* Bad entries are named. */
    assert_null(guard_cidrs_parse("10.0.0.0/33", err, sizeof(err)));
    assert_non_null(strstr(err, "10.0.0.0/33"));
    assert_null(guard_cidrs_parse("10.0.0.1, proxy.lan", err, sizeof(err)));
    assert_non_null(strstr(err, "proxy.lan"));
    assert_null(guard_cidrs_parse("10.0.0.0/", err, sizeof(err)));
    assert_null(guard_cidrs_parse("10.0.0.0/-1", err, sizeof(err)));
    c = guard_cidrs_parse(NULL, err, sizeof(err));
    assert_int_equal(guard_cidrs_count(c), 0);
    guard_cidrs_free(c);
    guard_cidrs_free(NULL);
}

/* The client behind peer with the given X-Forwarded-For headers. */
static const char *
client(const struct guard_cidrs *c, const char *peer, const char *x1,
       const char *x2, char *buf)
{
    const char *xff[2] = {x1, x2};
    struct guard_addr p = addr(peer), o;

    guard_client_addr(c, &p, xff, x2 != NULL ? 2 : x1 != NULL ? 1 : 0, &o);
    fmt(&o, buf);
    return buf;
}

static void
test_forwarded_for(void **state)
{
    char err[256], b[GUARD_ADDR_STRLEN];
    struct guard_cidrs *c = guard_cidrs_parse("10.0.0.0/8", err, sizeof(err));

    (void)state;
    /* Untrusted peer: the header is ignored. */
    assert_string_equal(client(c, "192.0.2.1", "203.0.113.9", NULL, b),
                        "192.0.2.1");
    /* Trusted peer: the right-most untrusted address. */
    assert_string_equal(client(c, "10.0.0.1", "198.51.100.7, 203.0.113.9",
                               NULL, b),
                        "203.0.113.9");
    assert_string_equal(client(c, "10.0.0.1", "198.51.100.7, 203.0.113.9,"
                               "10.1.1.1", NULL, b),
                        "203.0.113.9");
    /* Two headers: the second is nearer to us. */
    assert_string_equal(client(c, "10.0.0.1", "198.51.100.7", "10.2.2.2", b),
                        "198.51.100.7");
    /* All trusted: the left-most. */
    assert_string_equal(client(c, "10.0.0.1", "10.9.9.9, 10.8.8.8", NULL, b),
                        "10.9.9.9");
    /* Garbage stops the walk at the last trusted hop. */
    assert_string_equal(client(c, "10.0.0.1", "203.0.113.9, junk", NULL, b),
                        "10.0.0.1");
    assert_string_equal(client(c, "10.0.0.1", "203.0.113.9, junk, 10.3.3.3",
                               NULL, b),
                        "10.3.3.3");
    assert_string_equal(client(c, "10.0.0.1", "", NULL, b), "10.0.0.1");
    assert_string_equal(client(c, "10.0.0.1", NULL, NULL, b), "10.0.0.1");
    guard_cidrs_free(c);
}

static void
test_bucket(void **state)
{
    struct guard_table *t = guard_table_new(64);
    int64_t now = 1000000;
    int i;

    (void)state;
    assert_non_null(t);
    /* Burst 5 at 2/s: five go, the sixth waits one second. */
    for (i = 0; i < 5; i++)
        assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 0);
    assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 1);
    /* Another id has its own bucket. */
    assert_int_equal(guard_take(t, "j", 1, 2, 5, now), 0);
    /* Half a second gives one token back. */
    now += 500000;
    assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 0);
    assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 1);
    /* An hour refills no more than the burst. */
    now += 3600LL * 1000000;
    for (i = 0; i < 5; i++)
        assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 0);
    assert_int_equal(guard_take(t, "k", 1, 2, 5, now), 1);
    /* Rate 0 is off. */
    for (i = 0; i < 100; i++)
        assert_int_equal(guard_take(t, "k", 1, 0, 5, now), 0);
    /* Long ids (longer than kept) still tell apart. */
    {
        char a[64], b[64];

        memset(a, 'x', sizeof(a));
        memcpy(b, a, sizeof(b));
        b[63] = 'y';
        assert_int_equal(guard_take(t, a, 64, 1, 1, now), 0);
        assert_int_equal(guard_take(t, a, 64, 1, 1, now), 1);
        assert_int_equal(guard_take(t, b, 64, 1, 1, now), 0);
    }
    guard_table_free(t);
}

static void
test_fail_window(void **state)
{
    struct guard_table *t = guard_table_new(64);
    int64_t now = 5000000;
    unsigned retry, i;

    (void)state;
    for (i = 1; i <= 11; i++)
        assert_int_equal(guard_fail(t, "a", 1, 60, now, &retry), i);
    assert_int_equal(retry, 60);
    now += 45LL * 1000000;
    assert_int_equal(guard_fail(t, "a", 1, 60, now, &retry), 12);
    assert_int_equal(retry, 15);
    /* The window ends: counting starts again. */
    now += 15LL * 1000000;
    assert_int_equal(guard_fail(t, "a", 1, 60, now, &retry), 1);
    guard_table_free(t);
}

static void
test_table_bounded(void **state)
{
    struct guard_table *t = guard_table_new(256);
    struct guard_addr a = addr("192.0.2.1"), v = addr("198.51.100.1");
    int64_t now = 1000000;
    unsigned i;

    (void)state;
    /* The victim uses its burst. */
    assert_int_equal(guard_take(t, &v, sizeof(v), 1, 1, now), 0);
    assert_int_equal(guard_take(t, &v, sizeof(v), 1, 1, now), 1);
    /* A million other addresses fit in the same 256 slots (what grows is
     * nothing: the table is allocated once); each is a fresh bucket. */
    for (i = 0; i < 1000000; i++) {
        memcpy(a.la_b + 12, &i, 4);
        now++;
        assert_int_equal(guard_take(t, &a, sizeof(a), 1, 1, now), 0);
    }
    /* The victim was evicted: forgotten (a full bucket again), never
     * limited more than its own rate says. */
    assert_int_equal(guard_take(t, &v, sizeof(v), 1, 1, now), 0);
    guard_table_free(t);
    guard_table_free(NULL);
}

static void
test_env(void **state)
{
    struct guard_cfg c;
    char err[256];

    (void)state;
    /* The suite's own settings (tests/meson.build) are not the defaults. */
    unsetenv("TRUSTED_PROXIES");
    unsetenv("RATE_LIMIT_KEY");
    unsetenv("RATE_LIMIT_IP");
    unsetenv("AUTH_FAIL_LIMIT");
    assert_int_equal(guard_cfg_from_env(&c, err, sizeof(err)), 0);
    assert_int_equal(c.gc_header_timeout, 10);
    assert_int_equal(c.gc_body_timeout_base, 10);
    assert_int_equal(c.gc_per_ip_conns, 32);
    assert_int_equal(c.gc_rate_key, 200);
    assert_int_equal(c.gc_burst_key, 400);
    assert_int_equal(c.gc_rate_ip, 400);
    assert_int_equal(c.gc_auth_fail_max, 10);
    assert_string_equal(c.gc_log_format, "text");
    setenv("TRUSTED_PROXIES", "10.0.0.1", 1);
    setenv("RATE_LIMIT_KEY", "0", 1);
    setenv("LOG_FORMAT", "json", 1);
    assert_int_equal(guard_cfg_from_env(&c, err, sizeof(err)), 0);
    assert_int_equal(c.gc_per_ip_conns, 0);
    assert_int_equal(c.gc_rate_key, 0);
    assert_string_equal(c.gc_log_format, "json");
    setenv("HEADER_TIMEOUT", "0", 1);
    assert_int_equal(guard_cfg_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HEADER_TIMEOUT"));
    setenv("HEADER_TIMEOUT", "5s", 1);
    assert_int_equal(guard_cfg_from_env(&c, err, sizeof(err)), -1);
    unsetenv("HEADER_TIMEOUT");
    setenv("LOG_FORMAT", "xml", 1);
    assert_int_equal(guard_cfg_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "LOG_FORMAT"));
    unsetenv("LOG_FORMAT");
    unsetenv("RATE_LIMIT_KEY");
    unsetenv("TRUSTED_PROXIES");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_fail_window),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
