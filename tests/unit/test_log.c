/*
 * test_log.c - unit tests of log.c's time format (log_format_utc_ms), the
 * one written in every request line and every "updated" of the API:
 * against gmtime_r + strftime for a spread of times, and its edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static void
test_known(void **state)
{
    char buf[64];

    (void)state;
    assert_int_equal(log_format_utc_ms(0, buf, sizeof buf), 24);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    log_format_utc_ms(1795680000123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-26T08:00:00.123Z");
    log_format_utc_ms(951782399999LL, buf, sizeof buf);
    assert_string_equal(buf, "2000-02-28T23:59:59.999Z");
    log_format_utc_ms(951782400000LL, buf, sizeof buf);  /* leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
    log_format_utc_ms(-5, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    log_format_utc_ms(253402300800000LL, buf, sizeof buf);  /* year 10000 */
    assert_string_equal(buf, "0000-00-00T00:00:00.000Z");
    assert_int_equal(log_format_utc_ms(1795680000123LL, buf, 11), 10);
    assert_string_equal(buf, "2026-11-26");
    assert_int_equal(log_format_utc_ms(0, buf, 0), 0);
}

/* Every 997th second over 60 years, against the C library. */
static void
test_matches_strftime(void **state)
{
    int64_t t;
    char got[64], want[64];

    (void)state;
    for (t = 0; t < 60LL * 366 * 86400; t += 997 * 61) {
        time_t s = (time_t)t;
        struct tm tm;
        int64_t ms = t * 1000 + (t % 1000);

        gmtime_r(&s, &tm);
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + strlen(want), sizeof want - strlen(want), ".%03dZ",
                 (int)(t % 1000));
        log_format_utc_ms(ms, got, sizeof got);
        assert_string_equal(got, want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_matches_strftime),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
