/*
 * test_config.c - unit tests of config.c: defaults, environment, flags
 * overriding the environment, strict numbers, --help and --version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_names[] = {
    "KEY_FILE", "XML_DIR", "DATA_FILE", "LOG_FILE", "HOST", "PORT",
    "THREADS", "MAX_CONNECTIONS", "CONNECTION_TIMEOUT",
};

static int
clear_env(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
    return 0;
}

/* Output streams in memory. */
struct streams {
    FILE *out, *err;
    char *obuf, *ebuf;
    size_t olen, elen;
};

static void
streams_open(struct streams *s)
{
    memset(s, 0, sizeof *s);
    s->out = open_memstream(&s->obuf, &s->olen);
    s->err = open_memstream(&s->ebuf, &s->elen);
    assert_non_null(s->out);
    assert_non_null(s->err);
}

static void
streams_close(struct streams *s)
{
    fclose(s->out);
    fclose(s->err);
}

static void
streams_free(struct streams *s)
{
    free(s->obuf);
    free(s->ebuf);
}

/* config_parse() of a NULL-ended argument list (argv[0] added). */
static enum config_rc
parse(struct cfg *c, struct streams *s, ...)
{
    char *argv[32];
    int argc = 0;
    enum config_rc rc;
    va_list ap;

    argv[argc++] = (char *)(uintptr_t)"patriot-api";
    va_start(ap, s);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    streams_open(s);
    rc = config_parse(c, argc, argv, s->out, s->err);
    streams_close(s);
    return rc;
}

static void
test_defaults(void **state)
{
    struct streams s;
    struct cfg c;

    (void)state;
    assert_int_equal(parse(&c, &s, NULL), CONFIG_OK);
    assert_string_equal(c.cfg_key_file, "./keys.json");
    assert_string_equal(c.cfg_xml_dir, "./out/clients");
    assert_string_equal(c.cfg_data_file, "./data.db");
    assert_string_equal(c.cfg_log_file, "./api_requests.log");
    assert_string_equal(c.cfg_host, "127.0.0.1");
    assert_int_equal(c.cfg_port, 8081);
    assert_int_equal(c.cfg_threads, 2);
    assert_int_equal(c.cfg_conn_limit, 200);
    assert_int_equal(c.cfg_conn_timeout, 30);
    assert_int_equal(c.cfg_quiet, 0);
    assert_int_equal(s.olen, 0);    /* nothing printed on success */
    assert_int_equal(s.elen, 0);
    streams_free(&s);
}

static void
test_env_and_flags(void **state)
{
    struct streams s;
    struct cfg c;

    (void)state;
    setenv("KEY_FILE", "/etc/patriot/keys.json", 1);
    setenv("XML_DIR", "/srv/out", 1);
    setenv("PORT", "9000", 1);
    setenv("THREADS", "4", 1);
    setenv("HOST", "0.0.0.0", 1);
    setenv("LOG_FILE", "", 1);
    assert_int_equal(parse(&c, &s, NULL), CONFIG_OK);
    assert_string_equal(c.cfg_key_file, "/etc/patriot/keys.json");
    assert_string_equal(c.cfg_xml_dir, "/srv/out");
    assert_string_equal(c.cfg_host, "0.0.0.0");
    assert_string_equal(c.cfg_log_file, "");
    assert_int_equal(c.cfg_port, 9000);
    assert_int_equal(c.cfg_threads, 4);
    streams_free(&s);

    /* flags win over the environment, in both spellings */
    assert_int_equal(parse(&c, &s, "--port", "0", "--key-file=k.json",
                           "--threads", "64", "--max-connections", "10000",
                           "--connection-timeout=3600", "--data-file",
                           "/var/lib/p.db", "--log-file", "r.log",
                           "--quiet", NULL),
                     CONFIG_OK);
    assert_int_equal(c.cfg_port, 0);
    assert_string_equal(c.cfg_key_file, "k.json");
    assert_string_equal(c.cfg_xml_dir, "/srv/out");
    assert_string_equal(c.cfg_data_file, "/var/lib/p.db");
    assert_string_equal(c.cfg_log_file, "r.log");
    assert_int_equal(c.cfg_threads, 64);
    assert_int_equal(c.cfg_conn_limit, 10000);
    assert_int_equal(c.cfg_conn_timeout, 3600);
    assert_int_equal(c.cfg_quiet, 1);
    assert_int_equal(s.olen + s.elen, 0);
    streams_free(&s);
    clear_env(NULL);
}

static void
test_bad_numbers(void **state)
{
    static const char *const bad_ports[] = {
        "abc", "", "-1", "+80", " 80", "80 ", "65536", "0x50", "8e3",
        "99999999999999999999999",
    };
    struct streams s;
    struct cfg c;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        char *arg = (char *)(uintptr_t)bad_ports[i];

        assert_int_equal(parse(&c, &s, "--port", arg, NULL), CONFIG_ERROR);
        assert_non_null(strstr(s.ebuf, "--port"));
        assert_non_null(strstr(s.ebuf, "is not a number in 0..65535"));
        assert_int_equal(s.olen, 0);
        streams_free(&s);
    }
    assert_int_equal(parse(&c, &s, "--port", "abc", NULL), CONFIG_ERROR);
    assert_string_equal(s.ebuf, "patriot-api: --port: \"abc\" is not a "
                                "number in 0..65535\n");
    streams_free(&s);

    assert_int_equal(parse(&c, &s, "--threads", "0", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "1..64"));
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--max-connections=10001", NULL),
                     CONFIG_ERROR);
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--connection-timeout", "0", NULL),
                     CONFIG_ERROR);
    streams_free(&s);

    /* a bad environment value names the variable */
    setenv("THREADS", "many", 1);
    assert_int_equal(parse(&c, &s, NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "THREADS: \"many\""));
    streams_free(&s);
    clear_env(NULL);
}

static void
test_bad_usage(void **state)
{
    struct streams s;
    struct cfg c;

    (void)state;
    assert_int_equal(parse(&c, &s, "--bogus", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "--bogus"));
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "-x", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "-x"));
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--port", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "--port"));
    assert_non_null(strstr(s.ebuf, "needs a value"));
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--quiet=1", NULL), CONFIG_ERROR);
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "extra", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "extra"));
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--key-file", "", NULL), CONFIG_ERROR);
    assert_non_null(strstr(s.ebuf, "--key-file"));
    streams_free(&s);
    /* and a good parse right after still works (getopt state reset) */
    assert_int_equal(parse(&c, &s, "--port", "1234", NULL), CONFIG_OK);
    assert_int_equal(c.cfg_port, 1234);
    streams_free(&s);
}

static void
test_help_and_version(void **state)
{
    static const char *const words[] = {
        "--key-file", "KEY_FILE", "./keys.json", "--xml-dir", "XML_DIR",
        "--data-file", "DATA_FILE", "--log-file", "LOG_FILE", "--host",
        "HOST", "127.0.0.1", "--port", "PORT", "8081", "--threads",
        "THREADS", "--max-connections", "MAX_CONNECTIONS",
        "--connection-timeout", "CONNECTION_TIMEOUT", "--quiet", "--help",
        "--version",
    };
    struct streams s;
    struct cfg c;
    size_t i;
    char *line;

    (void)state;
    assert_int_equal(parse(&c, &s, "--help", NULL), CONFIG_EXIT);
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(s.obuf, words[i]) == NULL)
            fail_msg("help lacks %s", words[i]);
    for (line = strtok(s.obuf, "\n"); line; line = strtok(NULL, "\n"))
        assert_true(strlen(line) <= 80);
    assert_int_equal(s.elen, 0);
    streams_free(&s);

    assert_int_equal(parse(&c, &s, "-h", NULL), CONFIG_EXIT);
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--port", "1", "-V", NULL), CONFIG_EXIT);
    assert_string_equal(s.obuf, "patriot-api " PATRIOT_VERSION "\n");
    streams_free(&s);
    assert_int_equal(parse(&c, &s, "--version", NULL), CONFIG_EXIT);
    assert_string_equal(s.obuf, "patriot-api " PATRIOT_VERSION "\n");
    streams_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_env_and_flags, clear_env),
        cmocka_unit_test_setup(test_bad_numbers, clear_env),
        cmocka_unit_test_setup(test_bad_usage, clear_env),
        cmocka_unit_test_setup(test_help_and_version, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
