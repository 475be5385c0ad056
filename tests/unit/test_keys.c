/*
 * test_keys.c - unit tests of keys.c: loading and validating keys.json from
 * real files, token lookup, reference counting and the constant-time
 * compare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keys.h"
#include "model.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "s3cr3t-VALUE-do-not-print"
#define SECRET_HEX \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* One entry without its closing brace, so a test can add members. */
#define ENTRY(name, key, port)                                              \
    "{\"key_name\":\"" name "\",\"key\":\"" key "\",\"port\":\"" port      \
    "\",\"installer_name\":\"Inst\",\"installer_email\":\"i@example.com\""

#define GOOD ENTRY("Good", "good-key", "PGOOD") "}"

static char tmpdir[] = "/tmp/test_keys.XXXXXX";
static int nfiles;

static int
setup_dir(void **state)
{
    (void)state;
    umask(077);     /* keys.json files are not for everyone's eyes */
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
    char path[PATH_MAX];
    int i;

    (void)state;
    for (i = 0; i < nfiles; i++) {
        snprintf(path, sizeof path, "%s/keys%d.json", tmpdir, i);
        unlink(path);
    }
    return rmdir(tmpdir);
}

/* Write text to a new file in tmpdir; its name into path. */
static void
write_file(const char *text, size_t len, char *path, size_t pathlen)
{
    FILE *f;

    snprintf(path, pathlen, "%s/keys%d.json", tmpdir, nfiles++);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* keys_load() of text written to a real file. */
static struct keyset *
load_text(const char *text, char *err, size_t errlen)
{
    char path[PATH_MAX];

    write_file(text, strlen(text), path, sizeof path);
    return keys_load(path, err, errlen);
}

static void
hex_encode(const unsigned char *h, char *out)
{
    size_t i;

    for (i = 0; i < KEYS_HASH_LEN; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

/* Path of keys.example.json at the top of the source tree. */
static int
find_example(char *path, size_t len)
{
    const char *root = getenv("PATRIOT_SRC_ROOT");
    char base[1024];
    char *slash;

    if (root != NULL) {
        snprintf(path, len, "%s/keys.example.json", root);
        if (access(path, R_OK) == 0)
            return 0;
    }
    /* __FILE__ is tests/unit/test_keys.c, absolute or relative to the
     * build directory (tests run from its tests/ subdirectory). */
    snprintf(base, sizeof base, "%s", __FILE__);
    if ((slash = strrchr(base, '/')) != NULL)
        *slash = '\0';
    else
        snprintf(base, sizeof base, ".");
    snprintf(path, len, "%s/../../keys.example.json", base);
    if (access(path, R_OK) == 0)
        return 0;
    if (base[0] != '/') {
        snprintf(path, len, "../%s/../../keys.example.json", base);
        if (access(path, R_OK) == 0)
            return 0;
    }
    return -1;
}

static void
test_example_loads(void **state)
{
    static const char *const names[] = {
        "UseGlobCallOuts", "ShowOnCallOuts", "GlobCallOuts", "AltLookup",
        "AltAlarmNo", "ConvertType", "SIGINTERPRET",
    };
    static const char *const values[] = {
        "True", "False", "TLF01BASE01", "True", "CID4BASE01", "None",
        "SIADecimal",
    };
    unsigned char h[KEYS_HASH_LEN];
    char path[PATH_MAX], err[512], hex[2 * KEYS_HASH_LEN + 1];
    const struct key *k;
    struct keyset *ks;
    size_t i;

    (void)state;
    assert_int_equal(find_example(path, sizeof path), 0);
    ks = keys_load(path, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_int_equal(keys_count(ks), 2);

    k = keys_get(ks, 0);
    assert_non_null(k);
    assert_string_equal(k->k_name, "Alarm24");
    assert_string_equal(k->k_port, "BASE11");
    assert_string_equal(k->k_installer_name, "Installer Name");
    assert_string_equal(k->k_installer_email, "installer@email.com");
    assert_int_equal(k->k_enabled, 1);
    assert_int_equal(k->k_valid_to, 1893456000);   /* 2030-01-01Z */
    keys_sha256("secure-api-key", 14, h);
    assert_memory_equal(k->k_hash, h, KEYS_HASH_LEN);
    assert_int_equal(k->k_nfields, 7);
    for (i = 0; i < 7; i++) {
        assert_string_equal(k->k_fields[i].kf_name, names[i]);
        assert_string_equal(k->k_fields[i].kf_value, values[i]);
    }
    assert_int_equal(k->k_ngroupings, 1);
    assert_string_equal(k->k_groupings[0].kg_description, "Alarm24");
    assert_string_equal(k->k_groupings[0].kg_type_description,
                        "Alarm24 Tilgang");
    assert_string_equal(k->k_groupings[0].kg_allow_multiple, "True");

    k = keys_get(ks, 1);
    assert_non_null(k);
    assert_string_equal(k->k_name, "InstallerX");
    assert_string_equal(k->k_port, "BASE05");
    assert_int_equal(k->k_valid_to, 0);
    hex_encode(k->k_hash, hex);
    keys_sha256("example-key-2", 13, h);
    assert_memory_equal(k->k_hash, h, KEYS_HASH_LEN);
    assert_string_equal(hex, "8c731f4e03780f360cdf469395dd0612"
                             "8295611853d826e871f9bfde4db8908a");
    assert_int_equal(k->k_ngroupings, 2);
    assert_string_equal(k->k_groupings[1].kg_description, "Import");
    assert_string_equal(k->k_groupings[1].kg_type_description,
                        "\xc3\x98stfold Sikkerhetsservice AS");
    assert_string_equal(k->k_fields[3].kf_name, "UseGlobCallOuts2");

    assert_null(keys_get(ks, 2));
    assert_ptr_equal(keys_get_by_name(ks, "InstallerX"), k);
    assert_ptr_equal(keys_get_by_name(ks, "Alarm24"), keys_get(ks, 0));
    assert_null(keys_get_by_name(ks, "alarm24"));
    assert_null(keys_get_by_name(ks, "Nobody"));
    assert_null(keys_get_by_name(ks, NULL));
    keys_release(ks);
}

static void
test_lookup(void **state)
{
    const char *text =
        "[" ENTRY("A", "key-a", "PA") ",\"valid_to\":\"2030-01-01\"},"
        ENTRY("B", "key-b", "PB") "},"
        ENTRY("Off", "key-off", "POFF") ",\"enabled\":false},"
        ENTRY("Old", "key-old", "POLD")
        ",\"valid_to\":\"2020-01-01T00:00:00Z\"}]";
    time_t now = 1700000000, end = 1893456000;
    char err[512], big[4098];
    struct keyset *ks;
    const struct key *k;

    (void)state;
    ks = load_text(text, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_int_equal(keys_count(ks), 4);

    k = keys_lookup(ks, "key-a", 5, now);
    assert_non_null(k);
    assert_string_equal(k->k_name, "A");
    k = keys_lookup(ks, "key-b", 5, now);
    assert_non_null(k);
    assert_string_equal(k->k_name, "B");
    assert_ptr_equal(keys_lookup(ks, "key-b", 5, (time_t)4000000000LL), k);

    /* misses */
    assert_null(keys_lookup(ks, "key-c", 5, now));
    assert_null(keys_lookup(ks, "key-", 4, now));
    assert_null(keys_lookup(ks, "key-a ", 6, now));
    assert_null(keys_lookup(ks, "KEY-A", 5, now));
    assert_null(keys_lookup(ks, "", 0, now));
    assert_null(keys_lookup(ks, NULL, 5, now));
    assert_null(keys_lookup(NULL, "key-a", 5, now));
    /* the token is len bytes, not up to a NUL */
    assert_non_null(keys_lookup(ks, "key-a-and-more", 5, now));
    memset(big, 'x', sizeof big);
    assert_null(keys_lookup(ks, big, 4097, now));

    /* disabled and expired keys are refused */
    assert_null(keys_lookup(ks, "key-off", 7, now));
    assert_null(keys_lookup(ks, "key-old", 7, now));
    assert_non_null(keys_lookup(ks, "key-old", 7, 1577836799));
    /* valid while now < valid_to */
    assert_non_null(keys_lookup(ks, "key-a", 5, end - 1));
    assert_null(keys_lookup(ks, "key-a", 5, end));
    assert_null(keys_lookup(ks, "key-a", 5, end + 1));
    keys_release(ks);
}

static void
test_long_token(void **state)
{
    char text[4096 + 512], tok[4097], err[512];
    struct keyset *ks;

    (void)state;
    memset(tok, 'k', 4096);
    tok[4096] = '\0';
    snprintf(text, sizeof text, "[" ENTRY("Long", "%s", "P") "}]", tok);
    ks = load_text(text, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_non_null(keys_lookup(ks, tok, 4096, 0));
    keys_release(ks);

    /* a key longer than any token could never match: refused */
    snprintf(text, sizeof text, "[" ENTRY("Long", "%sk", "P") "}]", tok);
    assert_null(load_text(text, err, sizeof err));
    assert_non_null(strstr(err, "field \"key\""));
    assert_null(strstr(err, tok));
}

static void
test_key_sha256_entries(void **state)
{
    unsigned char h[KEYS_HASH_LEN];
    char hex[2 * KEYS_HASH_LEN + 1], upper[2 * KEYS_HASH_LEN + 1];
    char text[1024], err[512];
    struct keyset *ks;
    const struct key *k;
    size_t i;

    (void)state;
    keys_sha256("lower-key", 9, h);
    hex_encode(h, hex);
    keys_sha256("upper-key", 9, h);
    hex_encode(h, upper);
    for (i = 0; upper[i] != '\0'; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    snprintf(text, sizeof text,
             "[{\"key_name\":\"L\",\"key_sha256\":\"%s\",\"port\":\"PL\","
             "\"installer_name\":\"I\",\"installer_email\":\"e\"},"
             "{\"key_name\":\"U\",\"key_sha256\":\"%s\",\"port\":\"PU\","
             "\"installer_name\":\"I\",\"installer_email\":\"e\","
             "\"key\":null}]",
             hex, upper);
    ks = load_text(text, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    k = keys_lookup(ks, "lower-key", 9, 0);
    assert_non_null(k);
    assert_string_equal(k->k_name, "L");
    k = keys_lookup(ks, "upper-key", 9, 0);
    assert_non_null(k);
    assert_string_equal(k->k_name, "U");
    assert_null(keys_lookup(ks, hex, 64, 0));
    keys_release(ks);
}

static void
test_defaults_and_unknown_fields(void **state)
{
    const char *text = "[" ENTRY("A", "k", "P")
                       ",\"comment\":{\"any\":[1,2]},\"valid_to\":null,"
                       "\"xml_fields\":{},\"client_groupings\":[]}]";
    char err[512];
    struct keyset *ks;
    const struct key *k;

    (void)state;
    ks = load_text(text, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    k = keys_get(ks, 0);
    assert_int_equal(k->k_enabled, 1);
    assert_int_equal(k->k_valid_to, 0);
    assert_int_equal(k->k_nfields, 0);
    assert_int_equal(k->k_ngroupings, 0);
    keys_release(ks);

    ks = load_text("[]", err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(keys_count(ks), 0);
    assert_null(keys_lookup(ks, "k", 1, 0));
    keys_release(ks);
}

static void
test_valid_to_formats(void **state)
{
    static const struct {
        const char *text;
        long long t;
    } good[] = {
        {"2030-01-01T00:00:00Z", 1893456000},
        {"2030-01-01T00:00:00", 1893456000},
        {"2030-01-01T00:00:00+00:00", 1893456000},
        {"2030-01-01T00:00:00.999Z", 1893456000},
        {"2030-01-01T00:00:00.123456", 1893456000},
        {"2030-01-01", 1893456000},
        {"2030-01-01T01:00:00+01:00", 1893456000},
        {"2029-12-31T23:00:00-01:00", 1893456000},
        {"2030-01-01 00:00:00", 1893456000},
        {"2030-01-01T12:30", 1893501000},
        {"2028-02-29T00:00:00Z", 1835395200},
    };
    static const char *const bad[] = {
        "2030-1-01", "2030-13-01", "2030-02-29", "2030-01-32", "2030/01/01",
        "2030-01-01T24:00:00Z", "2030-01-01T00:60:00Z", "2030-01-01T00:00:60",
        "2030-01-01T00:00:00ZZ", "2030-01-01T00:00:00+0100",
        "2030-01-01T00:00:00.", "2030-01-01T", "1970-01-01T00:00:00Z",
        "1969-12-31", "tomorrow", "", "2030-01-01x",
    };
    char text[512], err[512];
    struct keyset *ks;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(text, sizeof text,
                 "[" ENTRY("A", "k", "P") ",\"valid_to\":\"%s\"}]",
                 good[i].text);
        ks = load_text(text, err, sizeof err);
        if (ks == NULL)
            fail_msg("%s: %s", good[i].text, err);
        assert_int_equal(keys_get(ks, 0)->k_valid_to, good[i].t);
        keys_release(ks);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text,
                 "[" GOOD "," ENTRY("A", "k", "P") ",\"valid_to\":\"%s\"}]",
                 bad[i]);
        ks = load_text(text, err, sizeof err);
        if (ks != NULL)
            fail_msg("accepted valid_to \"%s\"", bad[i]);
        assert_non_null(strstr(err, "entry 2 (\"A\")"));
        assert_non_null(strstr(err, "field \"valid_to\""));
    }
    ks = load_text("[" ENTRY("A", "k", "P") ",\"valid_to\":20300101}]", err,
                   sizeof err);
    assert_null(ks);
    assert_non_null(strstr(err, "field \"valid_to\""));
}

/* A bad file: NULL, and err names every one of want[] (NULL-ended). */
struct bad_case {
    const char *text;
    const char *want[3];
};

static const struct bad_case bad_cases[] = {
    /* not JSON, wrong shapes */
    {"[" GOOD ",", {"not valid JSON", "line 1", NULL}},
    {"[" GOOD "]\n]", {"not valid JSON", "line 2", NULL}},
    {"", {"not valid JSON", NULL}},
    {"{\"key_name\":\"A\"}", {"must be an array", NULL}},
    {"[" GOOD ",\"x\"]", {"entry 2:", "must be an object", NULL}},
    {"[{\"key_name\":\"A\",\"key_name\":\"B\"}]", {"duplicate", NULL}},
    {"[" GOOD ",\"\xff\"]", {"not valid JSON", "UTF-8", NULL}},
    /* key_name */
    {"[" GOOD ",{\"key\":\"" SECRET "\",\"port\":\"P\"}]",
     {"entry 2:", "field \"key_name\"", "missing"}},
    {"[" GOOD "," ENTRY("Al arm", SECRET, "P") "}]",
     {"entry 2:", "field \"key_name\"", "[A-Za-z0-9_-]{1,64}"}},
    {"[" GOOD "," ENTRY("", SECRET, "P") "}]",
     {"entry 2:", "field \"key_name\"", NULL}},
    {"[" GOOD "," ENTRY("A/../b", SECRET, "P") "}]",
     {"entry 2:", "field \"key_name\"", NULL}},
    {"[" GOOD "," ENTRY("A1234567890123456789012345678901234567890123456789"
                        "012345678901234", SECRET, "P") "}]",
     {"entry 2:", "field \"key_name\"", NULL}},
    {"[" GOOD ",{\"key_name\":7,\"key\":\"" SECRET "\"}]",
     {"entry 2:", "field \"key_name\"", "must be a string"}},
    /* port */
    {"[" GOOD "," ENTRY("A", SECRET, "BASE 11") "}]",
     {"entry 2 (\"A\")", "field \"port\"", "[A-Za-z0-9_-]{1,64}"}},
    {"[" GOOD "," ENTRY("A", SECRET, "") "}]",
     {"entry 2 (\"A\")", "field \"port\"", NULL}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":\"" SECRET "\","
     "\"installer_name\":\"I\",\"installer_email\":\"e\"}]",
     {"entry 2 (\"A\")", "field \"port\"", "missing"}},
    /* the secret */
    {"[" GOOD ",{\"key_name\":\"A\",\"port\":\"P\","
     "\"installer_name\":\"I\",\"installer_email\":\"e\"}]",
     {"entry 2 (\"A\")", "field \"key\"", "missing"}},
    {"[" GOOD "," ENTRY("A", "", "P") "}]",
     {"entry 2 (\"A\")", "field \"key\"", NULL}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":12345,\"port\":\"P\"}]",
     {"entry 2 (\"A\")", "field \"key\"", "must be a string"}},
    {"[" GOOD "," ENTRY("A", SECRET "\\t", "P") "}]",
     {"entry 2 (\"A\")", "field \"key\"", "control"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"key_sha256\":\"" SECRET_HEX
     "\"}]",
     {"entry 2 (\"A\")", "field \"key\"", "not both"}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key_sha256\":\"" SECRET_HEX "0\","
     "\"port\":\"P\"}]",
     {"entry 2 (\"A\")", "field \"key_sha256\"", "64 hex"}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key_sha256\":\"g" SECRET_HEX "\","
     "\"port\":\"P\"}]",
     {"entry 2 (\"A\")", "field \"key_sha256\"", NULL}},
    /* installer */
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":\"" SECRET "\",\"port\":\"P\","
     "\"installer_email\":\"e\"}]",
     {"entry 2 (\"A\")", "field \"installer_name\"", "missing"}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":\"" SECRET "\",\"port\":\"P\","
     "\"installer_name\":\"I\",\"installer_email\":[]}]",
     {"entry 2 (\"A\")", "field \"installer_email\"", "must be a string"}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":\"" SECRET "\",\"port\":\"P\","
     "\"installer_name\":\"\",\"installer_email\":\"e\"}]",
     {"entry 2 (\"A\")", "field \"installer_name\"", "empty"}},
    {"[" GOOD ",{\"key_name\":\"A\",\"key\":\"" SECRET "\",\"port\":\"P\","
     "\"installer_name\":\"a\\u0007b\",\"installer_email\":\"e\"}]",
     {"entry 2 (\"A\")", "field \"installer_name\"", "control"}},
    /* enabled */
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"enabled\":\"yes\"}]",
     {"entry 2 (\"A\")", "field \"enabled\"", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"enabled\":null}]",
     {"entry 2 (\"A\")", "field \"enabled\"", NULL}},
    /* xml_fields */
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"xml_fields\":[]}]",
     {"entry 2 (\"A\")", "field \"xml_fields\"", "object"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"Ok\":\"1\",\"1abc\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields\"", "member 2"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"xmlThing\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields\"", "XML element name"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"a b\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields\"", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"a<b\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields\"", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"__id\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.__id\"", "reserved"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"Installer\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.Installer\"", "reserved"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"clientgroupings\":\"x\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.clientgroupings\"",
      "reserved"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"Zone\":\"x\"}}]",
     {"field \"xml_fields.Zone\"", "reserved", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"User\":\"x\"}}]",
     {"field \"xml_fields.User\"", "reserved", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":\"1\",\"altlookup\":\"2\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.altlookup\"", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":true}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.AltLookup\"",
      "must be a string"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":3}}]",
     {"field \"xml_fields.AltLookup\"", "must be a string", NULL}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":\"a\\u0001b\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.AltLookup\"", "control"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":\"a\\u0000b\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.AltLookup\"", "control"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P")
     ",\"xml_fields\":{\"AltLookup\":\"\\uffff\"}}]",
     {"entry 2 (\"A\")", "field \"xml_fields.AltLookup\"", NULL}},
    /* client_groupings */
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"client_groupings\":{}}]",
     {"entry 2 (\"A\")", "field \"client_groupings\"", "array"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"client_groupings\":[\"x\"]}]",
     {"entry 2 (\"A\")", "field \"client_groupings[0]\"", "object"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"client_groupings\":["
     "{\"Description\":\"d\",\"GroupingTypeDescription\":\"t\","
     "\"GroupingAllowMultiple\":\"True\"},"
     "{\"GroupingTypeDescription\":\"t\","
     "\"GroupingAllowMultiple\":\"True\"}]}]",
     {"entry 2 (\"A\")", "field \"client_groupings[1].Description\"",
      "missing"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"client_groupings\":["
     "{\"Description\":\"d\",\"GroupingTypeDescription\":\"t\","
     "\"GroupingAllowMultiple\":true}]}]",
     {"entry 2 (\"A\")",
      "field \"client_groupings[0].GroupingAllowMultiple\"",
      "must be a string"}},
    {"[" GOOD "," ENTRY("A", SECRET, "P") ",\"client_groupings\":["
     "{\"Description\":\"d\",\"GroupingAllowMultiple\":\"True\","
     "\"GroupingTypeDescription\":\"a\\u001fb\"}]}]",
     {"entry 2 (\"A\")",
      "field \"client_groupings[0].GroupingTypeDescription\"", "control"}},
    /* across entries */
    {"[" GOOD "," ENTRY("Good", SECRET, "P") "}]",
     {"entry 2 (\"Good\")", "field \"key_name\"", "entry 1"}},
    {"[" GOOD "," ENTRY("good", SECRET, "P") "}]",
     {"entry 2 (\"good\")", "field \"key_name\"", "entry 1"}},
    {"[" ENTRY("A", SECRET, "PA") "}," ENTRY("B", SECRET, "PB") "}]",
     {"entry 2 (\"B\")", "field \"key\"", "same secret as entry 1"}},
    {"[" GOOD "," ENTRY("A", SECRET, "PGOOD") "}]",
     {"entry 2 (\"A\")", "field \"port\"", "same port as entry 1"}},
    {"[" GOOD "," ENTRY("A", SECRET, "pgood") "}]",
     {"entry 2 (\"A\")", "field \"port\"", "same port as entry 1"}},
    {"[" GOOD "," ENTRY("A", SECRET, "12PGOOD") "}]",
     {"entry 2 (\"A\")", "field \"port\"", "collide"}},
};

static void
test_bad_files(void **state)
{
    char err[512];
    struct keyset *ks;
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *bc = &bad_cases[i];

        memset(err, 'Z', sizeof err);
        ks = load_text(bc->text, err, sizeof err);
        if (ks != NULL)
            fail_msg("case %zu loaded: %s", i, bc->text);
        assert_non_null(memchr(err, '\0', sizeof err));
        if (getenv("TEST_KEYS_VERBOSE") != NULL)
            fprintf(stderr, "case %zu: %s\n", i, err);
        for (j = 0; j < 3 && bc->want[j] != NULL; j++)
            if (strstr(err, bc->want[j]) == NULL)
                fail_msg("case %zu: \"%s\" not in: %s", i, bc->want[j], err);
        /* one line, printable, never the secret */
        assert_null(strchr(err, '\n'));
        assert_true(model_text_ok(err, strlen(err)));
        assert_null(strstr(err, SECRET));
        assert_null(strstr(err, SECRET_HEX));
        assert_null(strstr(err, "good-key"));
    }
}

static void
test_reserved_info_field(void **state)
{
    char text[512], err[512];
    const char *name;

    (void)state;
    if (model_info.mt_nfields == 0)
        skip();
    name = model_info.mt_fields[model_info.mt_nfields - 1].mf_name;
    snprintf(text, sizeof text,
             "[" ENTRY("A", "k", "P") ",\"xml_fields\":{\"%s\":\"x\"}}]",
             name);
    assert_null(load_text(text, err, sizeof err));
    assert_non_null(strstr(err, "reserved"));
    assert_non_null(strstr(err, name));
}

static void
test_mixed_secret_duplicate(void **state)
{
    unsigned char h[KEYS_HASH_LEN];
    char hex[2 * KEYS_HASH_LEN + 1], text[1024], err[512];

    (void)state;
    keys_sha256(SECRET, strlen(SECRET), h);
    hex_encode(h, hex);
    snprintf(text, sizeof text,
             "[" ENTRY("A", SECRET, "PA") "},"
             "{\"key_name\":\"B\",\"key_sha256\":\"%s\",\"port\":\"PB\","
             "\"installer_name\":\"I\",\"installer_email\":\"e\"}]",
             hex);
    assert_null(load_text(text, err, sizeof err));
    assert_non_null(strstr(err, "entry 2 (\"B\")"));
    assert_non_null(strstr(err, "same secret as entry 1"));
    assert_null(strstr(err, SECRET));
    assert_null(strstr(err, hex));
}

static void
test_ports_that_do_not_clash(void **state)
{
    const char *text = "[" ENTRY("A", "ka", "BASE1") "},"
                       ENTRY("B", "kb", "XBASE1") "},"
                       ENTRY("C", "kc", "BASE11") "},"
                       ENTRY("D", "kd", "1BASEX") "}]";
    char err[512];
    struct keyset *ks;

    (void)state;
    ks = load_text(text, err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_int_equal(keys_count(ks), 4);
    keys_release(ks);
}

static void
test_file_errors(void **state)
{
    char path[PATH_MAX], err[512], small[16];
    struct keyset *ks;
    size_t i;

    (void)state;
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    assert_null(keys_load(path, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_null(keys_load(tmpdir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    assert_null(keys_load("", err, sizeof err));
    assert_null(keys_load(NULL, err, sizeof err));
    /* err may be NULL or short */
    assert_null(load_text("[1]", NULL, 0));
    assert_null(load_text("[1]", small, sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);
    /* a message cut short never ends in half a UTF-8 character */
    snprintf(path, sizeof path, "%s/\xc3\xa6\xc3\xb8\xe2\x82\xac"
             "\xf0\x9f\x98\x80.json", tmpdir);
    for (i = 1; i < 64; i++) {
        assert_null(keys_load(path, err, i));
        assert_true(strlen(err) < i);
        assert_true(model_text_ok(err, strlen(err)));
    }
    /* keys_load_buffer needs no NUL at the end */
    ks = keys_load_buffer("[]garbage", 2, err, sizeof err);
    assert_non_null(ks);
    keys_release(ks);
    assert_null(keys_load_buffer(NULL, 0, err, sizeof err));
}

static void
test_refcount(void **state)
{
    char err[512];
    struct keyset *ks;
    const struct key *k;

    (void)state;
    ks = load_text("[" GOOD "]", err, sizeof err);
    assert_non_null(ks);
    assert_ptr_equal(keys_retain(ks), ks);
    assert_ptr_equal(keys_retain(ks), ks);
    keys_release(ks);
    keys_release(ks);
    k = keys_lookup(ks, "good-key", 8, 0);    /* still alive */
    assert_non_null(k);
    assert_string_equal(k->k_name, "Good");
    keys_release(ks);                          /* freed: ASan checks */
    assert_null(keys_retain(NULL));
    keys_release(NULL);
    assert_int_equal(keys_count(NULL), 0);
    assert_null(keys_get(NULL, 0));
}

static void
test_equal_ct(void **state)
{
    unsigned char a[KEYS_HASH_LEN], b[KEYS_HASH_LEN];
    size_t i;
    int bit;

    (void)state;
    for (i = 0; i < sizeof a; i++)
        a[i] = (unsigned char)(i * 37 + 1);
    memcpy(b, a, sizeof a);
    assert_int_equal(keys_equal_ct(a, b, sizeof a), 1);
    assert_int_equal(keys_equal_ct(a, b, 0), 1);
    for (i = 0; i < sizeof a; i++) {
        for (bit = 0; bit < 8; bit++) {
            b[i] = (unsigned char)(a[i] ^ (1u << bit));
            assert_int_equal(keys_equal_ct(a, b, sizeof a), 0);
            assert_int_equal(keys_equal_ct(a, b, i), 1);
            b[i] = a[i];
        }
    }
    memset(a, 0, sizeof a);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(keys_equal_ct(a, b, sizeof a), 0);
}

static void
test_sha256(void **state)
{
    unsigned char h[KEYS_HASH_LEN];
    char hex[2 * KEYS_HASH_LEN + 1];

    (void)state;
    keys_sha256("abc", 3, h);
    hex_encode(h, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    keys_sha256("", 0, h);
    hex_encode(h, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_long_token),
        cmocka_unit_test(test_key_sha256_entries),
        cmocka_unit_test(test_defaults_and_unknown_fields),
        cmocka_unit_test(test_valid_to_formats),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_reserved_info_field),
        cmocka_unit_test(test_mixed_secret_duplicate),
        cmocka_unit_test(test_ports_that_do_not_clash),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_equal_ct),
        cmocka_unit_test(test_sha256),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
