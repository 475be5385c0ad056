/*
 * test_combine.c - unit tests of the combine module: results parsing
 * (UTF-8, UTF-16LE/BE with BOM, CRLF, the id-prefix trap), the schedule,
 * the per-client document check, and whole runs with SMB off (from-dir and
 * database mode: last-wins, malformed skipped, MAX_CLIENTS_PER_RUN,
 * dry-run, a client changed during the run) and the crash-loop defects:
 * in-flight files of a killed run against the database, a client deleted
 * and created again at the same version during a run, an outbox copy of
 * what was shipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "combine.h"
#include "smb.h"
#include "store.h"
#include "store_combine.h"
#include "store_int.h"

/* ---- results -------------------------------------------------------- */

static char *
decode(const char *buf, size_t len)
{
    size_t n;
    char *t = combine_results_decode(buf, len, &n);

    assert_non_null(t);
    assert_int_equal(strlen(t), n);
    return t;
}

static void
test_results_utf8(void **state)
{
    const char txt[] = "\xEF\xBB\xBF"
                       "2025-01-01 Completed processing client 19998BASE11\r\n"
                       "2025-01-01 Started processing client 9998BASE11\r\n"
                       "2025-01-01 Completed processing client 1234BASE05.\r\n"
                       "Completed processing client 77BASE1";
    char *t = decode(txt, sizeof(txt) - 1);

    (void)state;
    assert_int_equal(combine_results_ok(t, strlen(t), "19998BASE11"), 1);
    assert_int_equal(combine_results_ok(t, strlen(t), "9998BASE11"), 0);
    assert_int_equal(combine_results_ok(t, strlen(t), "998BASE11"), 0);
    assert_int_equal(combine_results_ok(t, strlen(t), "19998BASE1"), 0);
    assert_int_equal(combine_results_ok(t, strlen(t), "1234BASE05"), 1);
    assert_int_equal(combine_results_ok(t, strlen(t), "77BASE1"), 1);
    assert_int_equal(combine_results_ok(t, strlen(t), "77BASE"), 0);
    free(t);
}

/* s as UTF-16 with a BOM; be: big-endian. */
static char *
utf16(const char *s, int be, size_t *len)
{
    size_t n = strlen(s), i;
    char *b = malloc(2 * n + 2);

    b[0] = be ? (char)0xFE : (char)0xFF;
    b[1] = be ? (char)0xFF : (char)0xFE;
    for (i = 0; i < n; i++) {
        b[2 + 2 * i + (be ? 1 : 0)] = s[i];
        b[2 + 2 * i + (be ? 0 : 1)] = 0;
    }
    *len = 2 * n + 2;
    return b;
}

static void
test_results_utf16(void **state)
{
    const char *txt = "Completed processing client 9998BASE11\r\n"
                      "Error processing client 4242BASE11\r\n";
    int be;

    (void)state;
    for (be = 0; be < 2; be++) {
        size_t len;
        char *raw = utf16(txt, be, &len);
        char *t = decode(raw, len);

        assert_string_equal(t, txt);
        assert_int_equal(combine_results_ok(t, strlen(t), "9998BASE11"), 1);
        assert_int_equal(combine_results_ok(t, strlen(t), "4242BASE11"), 0);
        assert_int_equal(combine_results_ok(t, strlen(t), "998BASE11"), 0);
        free(raw);
        free(t);
    }
    {
        /* a non-ASCII name survives: U+00F8 and a surrogate pair */
        const unsigned char le[] = {0xFF, 0xFE, 0xF8, 0x00, 0x3D, 0xD8,
                                    0x00, 0xDE};
        char *t = decode((const char *)le, sizeof(le));

        assert_string_equal(t, "\xC3\xB8\xF0\x9F\x98\x80");
        free(t);
    }
}

/* ---- schedule ------------------------------------------------------- */

static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};

    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return timegm(&tm);
}

static void
test_schedule(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(combine_next_run(utc(2025, 1, 1, 10, 30, 0), 59),
                     utc(2025, 1, 1, 10, 59, 0));
    assert_int_equal(combine_next_run(utc(2025, 1, 1, 10, 58, 59), 59),
                     utc(2025, 1, 1, 10, 59, 0));
    assert_int_equal(combine_next_run(utc(2025, 1, 1, 10, 59, 0), 59),
                     utc(2025, 1, 1, 11, 59, 0));
    assert_int_equal(combine_next_run(utc(2025, 1, 1, 10, 59, 30), 59),
                     utc(2025, 1, 1, 11, 59, 0));
    /* across the day, the month and the year */
    assert_int_equal(combine_next_run(utc(2025, 1, 31, 23, 59, 1), 59),
                     utc(2025, 2, 1, 0, 59, 0));
    assert_int_equal(combine_next_run(utc(2024, 12, 31, 23, 59, 59), 59),
                     utc(2025, 1, 1, 0, 59, 0));
    assert_int_equal(combine_next_run(utc(2025, 1, 1, 23, 15, 0), 0),
                     utc(2025, 1, 2, 0, 0, 0));
    /* a local zone with DST: Oslo, spring forward 2025-03-30 02:00 */
    setenv("TZ", "Europe/Oslo", 1);
    tzset();
    assert_int_equal(combine_next_run(utc(2025, 3, 30, 0, 59, 30), 59),
                     utc(2025, 3, 30, 1, 59, 0));
    setenv("TZ", "UTC", 1);
    tzset();
}

/* ---- the per-client document check ---------------------------------- */

#define DOC(row) "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n" \
                 row "</Clients>\n"
#define ROW(id, name) "  <Row>\n    <__id>" id "</__id>\n    <Name>" name \
                      "</Name>\n  </Row>\n"

/* Both checks, which must agree: the SAX one's verdict. */
static int
check(const char *doc, char *id)
{
    size_t off, len, off2, len2;
    char id2[96];
    int sax = combine_row_check(doc, strlen(doc), &off, &len, id, 96);
    int fast = rowcheck_doc(doc, strlen(doc), &off2, &len2, id2, 96);

    assert_int_equal(fast, sax);
    if (sax == 0) {
        assert_int_equal(off2, off);
        assert_int_equal(len2, len);
        assert_string_equal(id2, id);
    }
    return sax;
}

/* rowcheck_doc alone: its verdict, and the SAX check's (sax). */
static int
fast(const char *doc, int sax)
{
    size_t off, len;
    char id[96];

    assert_int_equal(combine_row_check(doc, strlen(doc), &off, &len, id, 96),
                     sax);
    return rowcheck_doc(doc, strlen(doc), &off, &len, id, 96);
}

/* The hand check: libxml2's quirks kept, and what it refuses on purpose
 * (-2) where libxml2 takes it. */
static void
test_row_doc(void **state)
{
    char id[96], deep[4096], *p = deep;
    int i;

    (void)state;
    /* the declaration as libxml2 reads it */
    assert_int_equal(check("\xEF\xBB\xBF<?xml version='1.0' encoding='UTF8'"
                           " standalone='yes' ?>\r\n<Clients><Row><__id>A"
                           "</__id></Row></Clients>\r\n", id), 0);
    assert_int_equal(check("<?xml version=\"1.7\" encoding=\"utf-8\"standalone"
                           "=\"no\"?><Clients><Row><__id>A</__id></Row>"
                           "</Clients>", id), 0);
    assert_int_equal(check("<?xml version=\"2.0\"?><Clients><Row><__id>A"
                           "</__id></Row></Clients>", id), -1);
    assert_int_equal(check("<?xml version='1.0'encoding='utf-8'?><Clients>"
                           "<Row><__id>A</__id></Row></Clients>", id), -1);
    assert_int_equal(check(" <?xml version='1.0'?><Clients><Row><__id>A"
                           "</__id></Row></Clients>", id), -1);
    assert_int_equal(check("<?xml encoding='utf-8'?><Clients><Row><__id>A"
                           "</__id></Row></Clients>", id), -1);
    /* references: an id may be spelt with them, text may hold them */
    assert_int_equal(check(DOC(ROW("&#57;&#x39;B", "&amp;&lt;&gt;&quot;"
                                                   "&apos;&#1114111;")), id),
                     0);
    assert_string_equal(id, "99B");
    assert_int_equal(check(DOC(ROW("1B", "&#X41;")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "&#1114112;")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "&#xD800;")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "&#0;")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "&nbsp;")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "a ]]> b")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "a ]] > ]>")), id), 0);
    assert_int_equal(check(DOC(ROW("1&amp;B", "x")), id), -1);
    /* tags */
    assert_int_equal(check("<Clients ><Row><__id >A</__id ><t /><\xC3\xA6-.1"
                           "\xC2\xB7></\xC3\xA6-.1\xC2\xB7 ></Row></Clients >"
                           "\n\t", id), 0);
    assert_int_equal(check("<Clients><Row ><__id>A</__id></Row></Clients>",
                           id), -1);
    assert_int_equal(check("<Clients><Row><__id>A</__id></Row ></Clients>",
                           id), -1);
    assert_int_equal(check("<Clients><Row><__id>A</__id><\xC2\xB7/></Row>"
                           "</Clients>", id), -1);
    assert_int_equal(check("<Clients><Row><__id>A</__id><a></b></Row>"
                           "</Clients>", id), -1);
    assert_int_equal(check("<Clients><Row><__id>A</__id></Row></Clients>x",
                           id), -1);
    assert_int_equal(check("<Clients><Row><__id>A</__id></Row></Clients>"
                           "<Clients/>", id), -1);
    assert_int_equal(check("<Clients/>", id), -1);
    assert_int_equal(check("<Clients><Row><__id/></Row></Clients>", id), -1);
    /* deep: libxml2's push parser has no depth limit; nor has this */
    p += sprintf(p, "<Clients><Row><__id>A</__id>");
    for (i = 0; i < 300; i++)
        p += sprintf(p, "<a>");
    for (i = 0; i < 300; i++)
        p += sprintf(p, "</a>");
    sprintf(p, "</Row></Clients>");
    assert_int_equal(check(deep, id), 0);
    /* refused on purpose */
    assert_int_equal(fast("<?xml version='1.0' encoding='ISO-8859-1'?>"
                          "<Clients><Row><__id>A</__id></Row></Clients>", 0),
                     -2);
    assert_int_equal(fast("<Clients><Row><__id>A</__id><:a/></Row>"
                          "</Clients>", 0), -2);
    assert_int_equal(fast("<Clients><Row><__id>A</__id><a::b/></Row>"
                          "</Clients>", 0), -2);
    assert_int_equal(fast("<Clients><Row><__id>A<b/>C</__id></Row>"
                          "</Clients>", 0), -2);
}

static void
test_row_check(void **state)
{
    const char *good = DOC(ROW("9998BASE11", "a &amp; b &lt;/Row&gt;"));
    char id[96];
    size_t off, len;

    (void)state;
    assert_int_equal(combine_row_check(good, strlen(good), &off, &len, id,
                                       sizeof(id)),
                     0);
    assert_string_equal(id, "9998BASE11");
    assert_memory_equal(good + off, "<Row>", 5);
    assert_memory_equal(good + off + len - 6, "</Row>", 6);
    assert_int_equal(check(DOC("<!-- </Row> -->" ROW("1B", "x")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "x") ROW("2B", "y")), id), -1);
    assert_int_equal(check(DOC("<Row a=\"1\"><__id>1B</__id></Row>"), id),
                     -1);
    assert_int_equal(check(DOC("<Row><Name>x</Name></Row>"), id), -1);
    assert_int_equal(check(DOC("<Row><__id>1 B</__id></Row>"), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "<![CDATA[x]]>")), id), -1);
    assert_int_equal(check("<?xml version=\"1.0\"?><!DOCTYPE C [<!ENTITY e "
                           "\"x\">]><Clients><Row><__id>1B</__id><N>&e;</N>"
                           "</Row></Clients>", id), -1);
    assert_int_equal(check("<Clients xmlns=\"urn:x\"><Row><__id>1B</__id>"
                           "</Row></Clients>", id), -1);
    assert_int_equal(check(DOC(ROW("1B", "\x01")), id), -1);
    assert_int_equal(check(DOC(ROW("1B", "\xE6")), id), -1);
    assert_int_equal(check("<Clients><Row><__id>1B</__id>", id), -1);
    assert_int_equal(check("<Clients><Row><__id>1B</__id><Row></Row></Row>"
                           "</Clients>", id), -1);
}

/* ---- runs with SMB off ---------------------------------------------- */

struct fx {
    char dir[64];
    struct combine_cfg cfg;
};

static void
run_cmd(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

static int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256], p[256];

    snprintf(f->dir, sizeof(f->dir), "/tmp/tcomb.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(p, sizeof(p), "%s/out", f->dir);
    setenv("XML_DIR", p, 1);
    snprintf(p, sizeof(p), "%s/ready", f->dir);
    setenv("READY_DIR", p, 1);
    snprintf(p, sizeof(p), "%s/data.db", f->dir);
    setenv("DATA_FILE", p, 1);
    snprintf(p, sizeof(p), "%s/combine.log", f->dir);
    setenv("COMBINE_LOG_FILE", p, 1);
    snprintf(p, sizeof(p), "%s/errors.log", f->dir);
    setenv("ERROR_LOG_FILE", p, 1);
    snprintf(p, sizeof(p), "%s/state.json", f->dir);
    setenv("CLIENT_STATE_FILE", p, 1);
    setenv("SMB_ENABLED", "false", 1);
    assert_int_equal(combine_config_load(&f->cfg, NULL, err, sizeof(err)),
                     0);
    *state = f;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;

    run_cmd("rm -rf %s", f->dir);
    combine_config_free(&f->cfg);
    free(f);
    return 0;
}

static void
write_text(const char *path, const char *text)
{
    FILE *fp;

    run_cmd("mkdir -p $(dirname %s)", path);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *b;
    long n;

    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    b = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return b;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay++;
    }
    return n;
}

static void
set_mtime(const char *path, time_t t)
{
    run_cmd("touch -d @%lld %s", (long long)t, path);
}

static void
test_from_dir(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], q[256], bad[256], latin[256], big[256], err[256], *out;
    time_t t0 = time(NULL) - 1000;

    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "old")));
    set_mtime(p, t0);
    snprintf(q, sizeof(q), "%s/out/B/1.xml", f->dir);
    write_text(q, DOC(ROW("1BASE11", "new")));
    set_mtime(q, t0 + 10);
    snprintf(p, sizeof(p), "%s/out/A/2.xml", f->dir);
    write_text(p, DOC(ROW("2BASE11", "two")));
    set_mtime(p, t0 + 5);
    snprintf(bad, sizeof(bad), "%s/out/A/3.xml", f->dir);
    write_text(bad, "<Clients><Row><__id>3BASE11</__id></Clients>");
    /* well-formed, but its bytes would change meaning in clients.xml */
    snprintf(latin, sizeof(latin), "%s/out/A/4.xml", f->dir);
    write_text(latin, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
                      "<Clients><Row><__id>4BASE11</__id></Row></Clients>");
    /* over ROWCHECK_DOC_MAX: skipped unread (sparse: no disk) */
    snprintf(big, sizeof(big), "%s/out/A/5.xml", f->dir);
    run_cmd("truncate -s %d %s", ROWCHECK_DOC_MAX + 1, big);

    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 2);
    assert_int_equal(st.cs_skipped, 3);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_non_null(out);
    assert_int_equal(count(out, "<Row>"), 2);
    assert_non_null(strstr(out, "<Name>new</Name>"));
    assert_null(strstr(out, "<Name>old</Name>"));
    /* two before one: oldest first, and the newest 1BASE11 */
    assert_true(strstr(out, "2BASE11") < strstr(out, "<Name>new"));
    free(out);
    /* shipped files gone, the malformed and the refused one kept */
    assert_int_equal(access(q, F_OK), -1);
    assert_int_equal(access(bad, F_OK), 0);
    assert_int_equal(access(latin, F_OK), 0);
    assert_int_equal(access(big, F_OK), 0);
    snprintf(p, sizeof(p), "%s/combine.log", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "cannot read A/5.xml: File too large"));
    free(out);
    snprintf(p, sizeof(p), "%s/state.json", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "\"1BASE11\""));
    assert_non_null(strstr(out, "pending_import"));
    free(out);

    /* nothing new: exit 0, NOTHING */
    assert_int_equal(combine_run(cb, &st), COMBINE_NOTHING);
    combine_free(cb);
}

/* a client through store.h: info {"Name": name}, XML as the writer does */
static void
put(struct store *s, const char *key, int64_t cid, const char *port,
    const char *name)
{
    json_t *info = json_pack("{s:s}", "Name", name);
    char xml[512], id[64];
    int created;

    snprintf(id, sizeof(id), "%lld%s", (long long)cid, port);
    snprintf(xml, sizeof(xml),
             "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n"
             "  <Row>\n    <__id>%s</__id>\n    <Name>%s</Name>\n  </Row>\n"
             "</Clients>\n",
             id, name);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_client(s, key, cid, info, &created), STORE_OK);
    assert_int_equal(store_set_xml(s, key, cid, xml, strlen(xml)), STORE_OK);
    assert_int_equal(store_commit(s), 0);
    json_decref(info);
}

static struct store *
open_db(struct fx *f)
{
    char err[256];
    struct store *s = store_open(f->cfg.cc_data_file, 0, err, sizeof(err));

    assert_non_null(s);
    return s;
}

static const char *
state_of(struct store *s, const char *key, int64_t cid)
{
    static struct store_meta m;
    struct sbuf b = {0};

    assert_int_equal(store_read_client(s, key, cid, &b, &m), STORE_OK);
    sbuf_free(&b);
    return m.sm_state;
}

static void
test_db_mode(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    struct store *s = open_db(f);
    char p[256], err[256], *out;
    int i;

    for (i = 1; i <= 5; i++) {
        char name[16];

        snprintf(name, sizeof(name), "c%d", i);
        put(s, "Alarm24", i, "BASE11", name);
    }
    /* no outbox files at all: reconcile writes them */
    f->cfg.cc_max_clients = 3;

    /* dry run: clients.xml built, nothing else changes */
    cb = combine_new(&f->cfg, COMBINE_DRY_RUN, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 3);
    combine_free(cb);
    assert_string_equal(state_of(s, "Alarm24", 1), "pending");
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    assert_int_equal(access(p, F_OK), -1);  /* dry run wrote no outbox */
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    unlink(p);  /* a person carried it */

    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 3);
    assert_int_equal(st.cs_marked, 3);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 3), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 4), "pending");
    /* shipped files gone, waiting ones rebuilt by reconcile */
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/out/Alarm24/4.xml", f->dir);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<Row>"), 3);
    assert_non_null(strstr(out, "<__id>1BASE11</__id>"));
    assert_null(strstr(out, "<__id>4BASE11</__id>"));
    free(out);

    /* a client changes after the batch: pending again */
    put(s, "Alarm24", 1, "BASE11", "c1-v2");
    assert_string_equal(state_of(s, "Alarm24", 1), "pending");

    /* second run: nobody carried clients.xml: its Rows are kept, the newer
     * c1 wins */
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    out = slurp(p);
    assert_int_equal(count(out, "<__id>1BASE11</__id>"), 1);
    assert_non_null(strstr(out, "c1-v2"));
    assert_non_null(strstr(out, "<__id>2BASE11</__id>"));
    assert_non_null(strstr(out, "<__id>4BASE11</__id>"));
    free(out);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 5), "shipped");
    assert_int_equal(combine_run(cb, &st), COMBINE_NOTHING);
    combine_free(cb);

    /* status prints the counts */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        assert_int_equal(combine_status(&f->cfg, m), 0);
        fclose(m);
        assert_non_null(strstr(buf, "shipped  5"));
        assert_non_null(strstr(buf, "pending  0"));
        assert_non_null(strstr(buf, "last_result"));
        free(buf);
    }
    store_close(s);
}

/* ---- crash-loop defects (DB mode, SMB off, real files) --------------- */

/* The XML put() stores for a client. */
static void
xml_of(char *xml, size_t len, int64_t cid, const char *port,
       const char *name)
{
    snprintf(xml, len,
             "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n"
             "  <Row>\n    <__id>%lld%s</__id>\n    <Name>%s</Name>\n"
             "  </Row>\n</Clients>\n",
             (long long)cid, port, name);
}

/* put() without its own transaction. */
static void
put_in_txn(struct store *s, const char *key, int64_t cid, const char *port,
           const char *name)
{
    json_t *info = json_pack("{s:s}", "Name", name);
    char xml[512];
    int created;

    xml_of(xml, sizeof(xml), cid, port, name);
    assert_int_equal(store_put_client(s, key, cid, info, &created), STORE_OK);
    assert_int_equal(store_set_xml(s, key, cid, xml, strlen(xml)), STORE_OK);
    json_decref(info);
}

static void
delete_client(struct store *s, const char *key, int64_t cid)
{
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_delete_client(s, key, cid), STORE_OK);
    assert_int_equal(store_commit(s), 0);
}

static int
exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* No in-flight file left anywhere under XML_DIR (either layout). */
/* Alarm24's outbox file of client cid exists and holds needle. */
static void
outbox_has(struct fx *f, int cid, const char *needle)
{
    char p[256], *out;

    snprintf(p, sizeof(p), "%s/out/Alarm24/%d.xml", f->dir, cid);
    out = slurp(p);
    assert_non_null(out);
    assert_non_null(strstr(out, needle));
    free(out);
}

static void
no_inflight(struct fx *f)
{
    run_cmd("test -z \"$(find %s/out -name '.inflight*' -type f)\"",
            f->dir);
}

/* 1. A killed run left files in flight, in XML_DIR/<key>/.inflight.<id>.xml
 * or (the layout before 2026-11, an upgrade) XML_DIR/.inflight/<key>/: in DB
 * mode none of them comes back (the deleted client's least of all); the
 * run ships the waiting clients from the database. */
static void
test_recover_db(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    struct store *s = open_db(f);
    char p[256], err[256], old[512], *out;

    put(s, "Alarm24", 1, "BASE11", "one");
    put(s, "Alarm24", 2, "BASE11", "two");
    put(s, "Alarm24", 7, "BASE11", "seven");
    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_marked, 3);

    /* what a run killed after its moves leaves behind: 7 was deleted
     * since, 1 is shipped, 2 changed since */
    delete_client(s, "Alarm24", 7);
    put(s, "Alarm24", 2, "BASE11", "two-v2");
    snprintf(p, sizeof(p), "%s/out/.inflight/Alarm24/7.xml", f->dir);
    xml_of(old, sizeof(old), 7, "BASE11", "seven");
    write_text(p, old);
    snprintf(p, sizeof(p), "%s/out/.inflight/Alarm24/1.xml", f->dir);
    xml_of(old, sizeof(old), 1, "BASE11", "one");
    write_text(p, old);
    snprintf(p, sizeof(p), "%s/out/Alarm24/.inflight.2.xml", f->dir);
    xml_of(old, sizeof(old), 2, "BASE11", "two");
    write_text(p, old);

    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_local, 1);
    assert_int_equal(st.cs_marked, 1);
    combine_free(cb);
    /* the old layout's folder is gone once empty */
    snprintf(p, sizeof(p), "%s/out/.inflight", f->dir);
    assert_false(exists(p));
    /* the deleted and the shipped client have no outbox file */
    snprintf(p, sizeof(p), "%s/out/Alarm24/7.xml", f->dir);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/out/Alarm24/2.xml", f->dir);
    assert_false(exists(p));
    no_inflight(f);
    /* 2 shipped with the database's XML, never the old in-flight one */
    assert_string_equal(state_of(s, "Alarm24", 2), "shipped");
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<__id>2BASE11</__id>"), 1);
    assert_non_null(strstr(out, "<Name>two-v2</Name>"));
    assert_null(strstr(out, "<Name>two</Name>"));
    free(out);
    snprintf(p, sizeof(p), "%s/combine.log", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "removing Alarm24/7.xml left in flight"));
    assert_null(strstr(out, "putting back"));
    free(out);
    store_close(s);
}

/* 1b. --from-dir: the in-flight file is the only copy: it goes back (and
 * ships), unless a newer outbox file exists (both layouts). */
static void
test_recover_from_dir(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], *out;

    snprintf(p, sizeof(p), "%s/out/.inflight/A/5.xml", f->dir);
    write_text(p, DOC(ROW("5BASE11", "five")));
    snprintf(p, sizeof(p), "%s/out/A/.inflight.6.xml", f->dir);
    write_text(p, DOC(ROW("6BASE11", "six-old")));
    snprintf(p, sizeof(p), "%s/out/A/6.xml", f->dir);
    write_text(p, DOC(ROW("6BASE11", "six-new")));
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 2);
    combine_free(cb);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "<Name>five</Name>"));
    assert_non_null(strstr(out, "<Name>six-new</Name>"));
    assert_null(strstr(out, "six-old"));
    free(out);
    no_inflight(f);
}

/* 1c. --from-dir, one pass: a parser context reused from file to file
 * still takes a file that starts with a BOM, and a malformed file between
 * good ones changes nothing of theirs; an uncarried clients.xml is folded
 * in, and a local Row of one of its ids replaces the folded Row (the
 * folded line is cut out of the file). */
static void
test_from_dir_one_pass(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], *out;
    time_t t0 = time(NULL) - 1000;
    xmlDocPtr doc;
    int i;

    for (i = 1; i <= 4; i++) {
        snprintf(p, sizeof(p), "%s/out/A/%d.xml", f->dir, i);
        if (i == 2)
            write_text(p, "<Clients><Row><__id>2BASE11</__id></Clients>");
        else if (i == 3)
            write_text(p, "\xEF\xBB\xBF" DOC(ROW("3BASE11", "bom")));
        else if (i == 1)
            write_text(p, DOC(ROW("1BASE11", "one")));
        else
            write_text(p, DOC(ROW("4BASE11", "four")));
        set_mtime(p, t0 + i);
    }
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 3);
    assert_int_equal(st.cs_skipped, 1);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "<Name>bom</Name>"));
    assert_int_equal(count(out, "<Row>"), 3);
    free(out);

    /* not carried away: folded into the next batch; 1 changes, 5 new */
    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "one-v2")));
    snprintf(p, sizeof(p), "%s/out/A/5.xml", f->dir);
    write_text(p, DOC(ROW("5BASE11", "five")));
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_folded, 2);
    assert_int_equal(st.cs_rows, 4);
    combine_free(cb);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<Row>"), 4);
    assert_int_equal(count(out, "<__id>1BASE11</__id>"), 1);
    assert_non_null(strstr(out, "<Name>one-v2</Name>"));
    assert_null(strstr(out, "<Name>one</Name>"));
    assert_non_null(strstr(out, "<Name>bom</Name>"));
    assert_non_null(strstr(out, "<Name>four</Name>"));
    assert_non_null(strstr(out, "<Name>five</Name>"));
    /* the cut leaves the document exactly as the writer lays it out */
    assert_int_equal(strncmp(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                  "\n<Clients>\n  <Row>", 50), 0);
    assert_non_null(strstr(out, "</Row>\n</Clients>\n"));
    doc = xmlReadMemory(out, (int)strlen(out), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(out);
    snprintf(p, sizeof(p), "%s/out/A/2.xml", f->dir);
    assert_int_equal(access(p, F_OK), 0);   /* malformed: left in place */
}

/* 1d. --from-dir with MAX_CLIENTS_PER_RUN: a malformed file does not
 * count, and a file beyond the limit is never moved (it keeps its inode,
 * and no in-flight copy is left). */
static void
test_from_dir_max(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], *out;
    struct stat before, after;
    time_t t0 = time(NULL) - 1000;
    int i;

    for (i = 1; i <= 4; i++) {
        snprintf(p, sizeof(p), "%s/out/A/%d.xml", f->dir, i);
        if (i == 2)
            write_text(p, "<Clients><Row><__id>2BASE11</__id></Row>");
        else if (i == 1)
            write_text(p, DOC(ROW("1BASE11", "one")));
        else if (i == 3)
            write_text(p, DOC(ROW("3BASE11", "three")));
        else
            write_text(p, DOC(ROW("4BASE11", "four")));
        set_mtime(p, t0 + i);
    }
    assert_int_equal(stat(p, &before), 0);
    f->cfg.cc_max_clients = 2;
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_rows, 2);
    assert_int_equal(st.cs_skipped, 1);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_non_null(strstr(out, "<Name>one</Name>"));
    assert_non_null(strstr(out, "<Name>three</Name>"));
    assert_null(strstr(out, "four"));
    free(out);
    snprintf(p, sizeof(p), "%s/out/A/4.xml", f->dir);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    /* a rename (and a link back) would change its ctime */
    assert_int_equal(before.st_ctim.tv_sec, after.st_ctim.tv_sec);
    assert_int_equal(before.st_ctim.tv_nsec, after.st_ctim.tv_nsec);
    snprintf(p, sizeof(p), "%s/out/A/2.xml", f->dir);
    assert_int_equal(access(p, F_OK), 0);
    no_inflight(f);
}

/* 1e. A batch over 10 MB (libxml2's limit for one pushed chunk) that
 * nobody carried away is folded in, not dropped: its files are gone, its
 * Rows are the only copy. */
static void
test_from_dir_fold_big(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], *name, *out;
    FILE *fp;
    int i, n = 2000;

    name = malloc(6001);
    assert_non_null(name);
    memset(name, 'x', 6000);
    name[6000] = '\0';
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    run_cmd("mkdir -p %s/ready", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n", fp);
    for (i = 0; i < n; i++)
        fprintf(fp, "  <Row>\n    <__id>%dBASE11</__id>\n    <Name>%s</Name>"
                    "\n  </Row>\n", 1000 + i, name);
    fputs("</Clients>\n", fp);
    fclose(fp);
    free(name);
    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "one")));
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_folded, n);
    assert_int_equal(st.cs_rows, n + 1);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_true(strlen(out) > 10000000);
    assert_int_equal(count(out, "<Row>"), n + 1);
    assert_non_null(strstr(out, "<__id>2999BASE11</__id>"));
    free(out);
}

/*
 * Something done by "the API" while a run is between its pick and its mark:
 * the test holds the database's write lock from before the run, waits until
 * the file at d_wait exists (READY_DIR/clients.xml: the run has picked,
 * moved its files and read its snapshot; its in-flight files may already
 * be going, removed while it marks), does fn inside that transaction and
 * commits. The run's mark waits for the lock (busy timeout 5 s), so it
 * always comes after fn.
 */
struct during {
    struct store *d_s;
    char d_wait[256];
    void (*d_fn)(struct during *d);
    struct fx *d_fx;
    int d_done;
    atomic_int d_over;      /* the run has returned */
};

static void *
during_main(void *arg)
{
    struct during *d = arg;
    int i;

    /* up to 60 s: under Valgrind a run takes seconds to get there */
    for (i = 0; i < 60000 && !exists(d->d_wait); i++)
        usleep(1000);
    if (exists(d->d_wait)) {
        d->d_fn(d);
        d->d_done = 1;
    }
    if (store_commit(d->d_s) < 0)
        d->d_done = 0;
    return NULL;
}

static enum combine_rc
run_during(struct fx *f, struct during *d, struct combine_stats *st)
{
    struct combine *cb;
    enum combine_rc rc;
    pthread_t th;
    char err[256];

    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    d->d_fx = f;
    d->d_s = open_db(f);
    assert_int_equal(store_begin(d->d_s), 0);
    assert_int_equal(pthread_create(&th, NULL, during_main, d), 0);
    rc = combine_run(cb, st);
    atomic_store(&d->d_over, 1);
    pthread_join(th, NULL);
    assert_int_equal(d->d_done, 1);
    store_close(d->d_s);
    combine_free(cb);
    return rc;
}

static void
recreate_1(struct during *d)
{
    assert_int_equal(store_delete_client(d->d_s, "Alarm24", 1), STORE_OK);
    put_in_txn(d->d_s, "Alarm24", 1, "BASE11", "second");
}

/* 2. A client deleted and created again during the run must not be marked
 * shipped, because the Row in clients.xml is the old client's. (The store
 * also goes on counting its versions from the deleted one's: version 2.) */
static void
test_recreated_same_version(void **state)
{
    struct fx *f = *state;
    struct during d = {.d_fn = recreate_1};
    struct combine_stats st;
    struct combine *cb;
    struct store *s = open_db(f);
    struct store_meta m;
    struct sbuf b = {0};
    char p[256], err[256], *out;

    put(s, "Alarm24", 1, "BASE11", "first");
    put(s, "Alarm24", 2, "BASE11", "other");
    snprintf(d.d_wait, sizeof(d.d_wait), "%s/ready/clients.xml", f->dir);
    assert_int_equal(run_during(f, &d, &st), COMBINE_OK);
    assert_int_equal(st.cs_local, 2);
    assert_int_equal(st.cs_marked, 1);
    assert_int_equal(store_read_client(s, "Alarm24", 1, &b, &m), STORE_OK);
    sbuf_free(&b);
    assert_int_equal(m.sm_version, 2);
    assert_string_equal(m.sm_state, "pending");
    assert_string_equal(state_of(s, "Alarm24", 2), "shipped");
    /* the old client's in-flight file does not come back */
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    out = slurp(p);
    assert_true(out == NULL || strstr(out, "first") == NULL);
    free(out);

    /* the next run ships the new client: one Row, its own */
    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_marked, 1);
    combine_free(cb);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<__id>1BASE11</__id>"), 1);
    assert_non_null(strstr(out, "<Name>second</Name>"));
    assert_null(strstr(out, "<Name>first</Name>"));
    assert_int_equal(count(out, "<__id>2BASE11</__id>"), 1);
    free(out);
    store_close(s);
}

static void
rewrite_files(struct during *d)
{
    char p[256], xml[512];

    /* the API's outbox thread rewrites 1 exactly as shipped (a GET found
     * its file missing); 2's file holds something else */
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", d->d_fx->dir);
    xml_of(xml, sizeof(xml), 1, "BASE11", "one");
    write_text(p, xml);
    snprintf(p, sizeof(p), "%s/out/Alarm24/2.xml", d->d_fx->dir);
    xml_of(xml, sizeof(xml), 2, "BASE11", "two-other");
    write_text(p, xml);
}

/* 3. After the run, an outbox file of a shipped client that holds exactly
 * the XML shipped is removed; one that differs stays. */
static void
test_shipped_copy_removed(void **state)
{
    struct fx *f = *state;
    struct during d = {.d_fn = rewrite_files};
    struct combine_stats st;
    struct store *s = open_db(f);
    char p[256];

    put(s, "Alarm24", 1, "BASE11", "one");
    put(s, "Alarm24", 2, "BASE11", "two");
    snprintf(d.d_wait, sizeof(d.d_wait), "%s/ready/clients.xml", f->dir);
    assert_int_equal(run_during(f, &d, &st), COMBINE_OK);
    assert_int_equal(st.cs_marked, 2);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 2), "shipped");
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    assert_false(exists(p));
    outbox_has(f, 2, "<Name>two-other</Name>");
    no_inflight(f);
    store_close(s);
}

/* The mark fails (the database stays locked past the busy timeout) after
 * the in-flight files were removed: every client still waits and gets its
 * outbox file back, from the database, as a put-back would. The lock is
 * held until that file is back (the mark has failed) or the run returns,
 * at most 60 s, however long the run takes to reach its mark (under
 * Valgrind: seconds). */
static void
hold_lock(struct during *d)
{
    char p[256];
    int i;

    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", d->d_fx->dir);
    for (i = 0; i < 60000 && !atomic_load(&d->d_over) && !exists(p); i++)
        usleep(1000);
}

static void
test_mark_fails_files_back(void **state)
{
    struct fx *f = *state;
    struct during d = {.d_fn = hold_lock};
    struct combine_stats st;
    struct store *s = open_db(f);

    put(s, "Alarm24", 1, "BASE11", "one");
    put(s, "Alarm24", 2, "BASE11", "two");
    snprintf(d.d_wait, sizeof(d.d_wait), "%s/ready/clients.xml", f->dir);
    assert_int_equal(run_during(f, &d, &st), COMBINE_FAILED);
    assert_string_equal(state_of(s, "Alarm24", 1), "pending");
    assert_string_equal(state_of(s, "Alarm24", 2), "pending");
    outbox_has(f, 1, "<Name>one</Name>");
    outbox_has(f, 2, "<Name>two</Name>");
    no_inflight(f);
    store_close(s);
}

/* DB mode without SMB removes the in-flight files as soon as they are all
 * taken, before clients.xml is in place: a run that fails after that (here
 * clients.xml cannot replace a folder of that name) writes every client's
 * file back from the database, and the next run ships them. */
static void
test_write_fails_files_back(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    struct store *s = open_db(f);
    char err[256];

    put(s, "Alarm24", 1, "BASE11", "one");
    put(s, "Alarm24", 2, "BASE11", "two");
    run_cmd("mkdir -p %s/ready/clients.xml/x", f->dir);
    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_FAILED);
    assert_string_equal(state_of(s, "Alarm24", 1), "pending");
    assert_string_equal(state_of(s, "Alarm24", 2), "pending");
    outbox_has(f, 1, "<Name>one</Name>");
    outbox_has(f, 2, "<Name>two</Name>");
    no_inflight(f);
    run_cmd("rm -rf %s/ready/clients.xml", f->dir);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_marked, 2);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 2), "shipped");
    no_inflight(f);
    store_close(s);
}

/* 2/3 on the failure path: a run whose mark fails puts back only files of
 * clients that still wait with exactly that XML. */
static void
delete_2(struct during *d)
{
    assert_int_equal(store_delete_client(d->d_s, "Alarm24", 2), STORE_OK);
}

static void
test_unmarked_deleted_not_put_back(void **state)
{
    struct fx *f = *state;
    struct during d = {.d_fn = delete_2};
    struct combine_stats st;
    struct store *s = open_db(f);
    char p[256];

    put(s, "Alarm24", 1, "BASE11", "one");
    put(s, "Alarm24", 2, "BASE11", "two");
    snprintf(d.d_wait, sizeof(d.d_wait), "%s/ready/clients.xml", f->dir);
    assert_int_equal(run_during(f, &d, &st), COMBINE_OK);
    assert_int_equal(st.cs_marked, 1);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    snprintf(p, sizeof(p), "%s/out/Alarm24/2.xml", f->dir);
    assert_false(exists(p));
    no_inflight(f);
    store_close(s);
}

/* ---- the mark, on its own ------------------------------------------- */

struct unmarked {
    size_t u_seq[8];
    size_t u_n;
};

static int
unmarked_one(void *arg, size_t seq)
{
    struct unmarked *u = arg;

    assert_true(u->u_n < 8);
    u->u_seq[u->u_n++] = seq;
    return 0;
}

static int64_t
sql_int(struct store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(s->st_db, sql, -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* One client to mark: client cid of Alarm24 at version 1, its XML's
 * length (the real one + len_off), as the ledger's record seq. */
struct add {
    size_t a_seq;
    int64_t a_cid;
    size_t a_len_off;
};

/* One mark session of batch over the clients of a[0..n) (XML length len
 * each, as put() writes it), committed; the unmarked seqs in *u. The
 * number marked. */
static size_t
mark_batch(struct store *s, const char *batch, const struct add *a, size_t n,
           size_t len, struct unmarked *u)
{
    struct store_mark *m;
    char id[32];
    size_t i, marked = 0;

    u->u_n = 0;
    assert_int_equal(store_begin(s), 0);
    assert_non_null(m = store_combine_mark_begin(s));
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%lldBASE11", (long long)a[i].a_cid);
        assert_int_equal(store_combine_mark_add(m, a[i].a_seq, "Alarm24",
                                                a[i].a_cid, 1,
                                                len + a[i].a_len_off, id),
                         STORE_OK);
    }
    assert_int_equal(store_combine_mark_apply(m, batch, 2, &marked,
                                              unmarked_one, u), STORE_OK);
    store_combine_mark_end(m);
    assert_int_equal(store_commit(s), 0);
    return marked;
}

/* store_combine_mark_add/apply: of the clients added, only those still
 * waiting (pending, or failed) at the version added, with an XML of the
 * length added, are marked and recorded in shipped; the others come back
 * in seq order. A second session on the same connection starts empty. */
static void
test_mark_set(void **state)
{
    static const struct add first[] = {
        {10, 1, 0},     /* waiting: marked */
        {11, 2, 0},     /* changed since (version 2) */
        {12, 3, 0},     /* deleted */
        {13, 4, 1},     /* not the XML's length */
        {14, 5, 0},     /* shipped already at version 1 */
        {15, 6, 0},     /* failed at version 1: marked */
    };
    static const struct add second[] = {{0, 4, 0}};
    struct fx *f = *state;
    struct store *s = open_db(f);
    struct unmarked u;
    char xml[512];
    size_t len;
    int i;

    assert_int_equal(store_combine_init(s), 0);
    for (i = 1; i <= 6; i++)
        put(s, "Alarm24", i, "BASE11", "v1");
    xml_of(xml, sizeof(xml), 1, "BASE11", "v1");
    len = strlen(xml);          /* the same for clients 1-6 */
    put(s, "Alarm24", 2, "BASE11", "v2");
    delete_client(s, "Alarm24", 3);
    assert_int_equal(store_exec(s, "INSERT INTO import_state(cid, version,"
                                   " state, batch, at) SELECT id, 1,"
                                   " CASE client_id WHEN 5 THEN 'shipped'"
                                   " ELSE 'failed' END, 'B0', 1 FROM clients"
                                   " WHERE client_id IN (5, 6)"),
                     0);

    assert_int_equal(mark_batch(s, "B1", first, 6, len, &u), 2);
    assert_int_equal(u.u_n, 4);
    for (i = 0; i < 4; i++)
        assert_int_equal(u.u_seq[i], 11 + i);
    assert_string_equal(state_of(s, "Alarm24", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 2), "pending");
    assert_string_equal(state_of(s, "Alarm24", 4), "pending");
    assert_string_equal(state_of(s, "Alarm24", 6), "shipped");
    assert_int_equal(sql_int(s, "SELECT count(*) FROM import_state"
                                " WHERE batch = 'B1'"), 2);
    assert_int_equal(sql_int(s, "SELECT count(*) FROM import_state"
                                " WHERE batch = 'B0'"), 1);     /* 5 kept */
    assert_int_equal(sql_int(s, "SELECT count(*) FROM shipped"), 2);
    assert_int_equal(sql_int(s, "SELECT count(*) FROM shipped WHERE"
                                " xml_id IN ('1BASE11', '6BASE11')"
                                " AND batch = 'B1' AND version = 1"), 2);

    /* a second session: nothing left of the first */
    assert_int_equal(mark_batch(s, "B2", second, 1, len, &u), 1);
    assert_int_equal(u.u_n, 0);
    assert_string_equal(state_of(s, "Alarm24", 4), "shipped");
    assert_int_equal(sql_int(s, "SELECT count(*) FROM shipped"), 3);
    store_close(s);
}

/* ---- bounded memory (issue 4: flat whatever the batch) --------------- */

/* 4a. --from-dir takes its files a few at a time (here 3 per walk of
 * XML_DIR), still oldest first across walks, MAX_CLIENTS_PER_RUN counted
 * across walks, a file beyond it never moved, and the newest file of an
 * __id wins across walks. */
static void
test_from_dir_walks(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], name[32], *out, *a, *b;
    struct stat before, after;
    time_t t0 = time(NULL) - 1000;
    int i;

    for (i = 1; i <= 8; i++) {
        snprintf(p, sizeof(p), "%s/out/A/%d.xml", f->dir, i);
        snprintf(name, sizeof(name), "%dBASE11", i);
        if (i == 5) {
            write_text(p, "<Clients><Row><__id>5BASE11</__id></Row>");
        } else {
            char doc[256];

            snprintf(doc, sizeof(doc), DOC(ROW("%s", "old")), name);
            write_text(p, doc);
        }
        set_mtime(p, t0 + i);
    }
    snprintf(p, sizeof(p), "%s/out/B/9.xml", f->dir);
    write_text(p, DOC(ROW("6BASE11", "six-newest")));
    set_mtime(p, t0 + 9);
    snprintf(p, sizeof(p), "%s/out/A/5.xml", f->dir);
    assert_int_equal(stat(p, &before), 0);

    f->cfg.cc_walk_files = 3;
    f->cfg.cc_max_clients = 4;
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 4);
    assert_int_equal(st.cs_skipped, 0);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    for (i = 1; i <= 3; i++) {  /* oldest first, across two walks */
        snprintf(name, sizeof(name), "<__id>%dBASE11</__id>", i);
        a = strstr(out, name);
        snprintf(name, sizeof(name), "<__id>%dBASE11</__id>", i + 1);
        b = strstr(out, name);
        assert_non_null(a);
        assert_non_null(b);
        assert_true(a < b);
    }
    free(out);
    unlink(p);      /* carried away */
    snprintf(p, sizeof(p), "%s/out/A/5.xml", f->dir);
    assert_int_equal(stat(p, &after), 0);   /* beyond MAX: never moved */
    assert_int_equal(before.st_ctim.tv_nsec, after.st_ctim.tv_nsec);
    no_inflight(f);

    /* the rest: 5 malformed, 6 superseded by B/9 (newer, a later walk) */
    f->cfg.cc_max_clients = 0;
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_local, 4);
    assert_int_equal(st.cs_rows, 3);
    assert_int_equal(st.cs_skipped, 1);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<Row>"), 3);
    assert_int_equal(count(out, "<__id>6BASE11</__id>"), 1);
    assert_non_null(strstr(out, "six-newest"));
    assert_non_null(strstr(out, "<__id>7BASE11</__id>"));
    assert_non_null(strstr(out, "<__id>8BASE11</__id>"));
    free(out);
    snprintf(p, sizeof(p), "%s/out/A/5.xml", f->dir);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/out/A/6.xml", f->dir);
    assert_int_equal(access(p, F_OK), -1);  /* shipped (superseded) */
    no_inflight(f);
}

/* 4b. client_state.json is streamed, not loaded whole: the entries of
 * other ids are kept as they were (nested values, a key that is not a
 * plain id), the batch's ids replaced; a file that is not a JSON object is
 * started anew. */
static void
test_state_streamed(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256];
    json_error_t je;
    json_t *j, *v;

    snprintf(p, sizeof(p), "%s/state.json", f->dir);
    write_text(p, "{\"1BASE11\": {\"status\": \"imported\", "
                  "\"last_batch\": \"old\"},\n \"KEEP9\": {\"status\": "
                  "\"failed\", \"extra\": [1, {\"a\": \"}\\\"]\"}]},"
                  "\"we\\\"ird\": 5 }\n");
    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "one")));
    snprintf(p, sizeof(p), "%s/out/A/2.xml", f->dir);
    write_text(p, DOC(ROW("2BASE11", "two")));
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    snprintf(p, sizeof(p), "%s/state.json", f->dir);
    j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "1BASE11"), "status")),
                        "pending_import");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "2BASE11"), "status")),
                        "pending_import");
    v = json_object_get(j, "KEEP9");
    assert_string_equal(json_string_value(json_object_get(v, "status")),
                        "failed");
    v = json_array_get(json_object_get(v, "extra"), 1);
    assert_string_equal(json_string_value(json_object_get(v, "a")), "}\"]");
    assert_int_equal(json_integer_value(json_object_get(j, "we\"ird")), 5);
    json_decref(j);

    /* not a JSON object: a new one */
    write_text(p, "[1, 2");
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/out/A/3.xml", f->dir);
    write_text(p, DOC(ROW("3BASE11", "three")));
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    snprintf(p, sizeof(p), "%s/state.json", f->dir);
    j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    assert_non_null(json_object_get(j, "3BASE11"));
    json_decref(j);
}

/* 4c. DB mode, two clients of different keys with the same __id: one Row
 * (the later change), the other client is not marked (it has no Row of
 * its own) and its file goes back. */
static void
test_db_same_id(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    struct store *s = open_db(f);
    char p[256], err[256], *out;

    put(s, "Alarm24", 1, "BASE11", "first");
    put(s, "Other", 1, "BASE11", "second");
    cb = combine_new(&f->cfg, 0, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_local, 2);
    assert_int_equal(st.cs_rows, 1);
    assert_int_equal(st.cs_marked, 1);
    assert_string_equal(state_of(s, "Other", 1), "shipped");
    assert_string_equal(state_of(s, "Alarm24", 1), "pending");
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<__id>1BASE11</__id>"), 1);
    assert_non_null(strstr(out, "<Name>second</Name>"));
    free(out);
    snprintf(p, sizeof(p), "%s/out/Alarm24/1.xml", f->dir);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/out/Other/1.xml", f->dir);
    assert_int_equal(access(p, F_OK), -1);
    no_inflight(f);
    store_close(s);
}

/* 4d. A folded batch is streamed: 1 MiB pieces to the check, whose
 * boundaries fall inside multi-byte characters, and a window over the
 * Rows that grows for a Row bigger than it; every Row byte-exact. */
static void
test_fold_streamed_multibyte(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], err[256], *big, *out, *row;
    const char *pat = "\xC3\xB8\xE2\x82\xAC\xF0\x9F\x98\x80" "a";
    size_t i, n = 300000, pl = strlen(pat);
    FILE *fp;

    big = malloc(n * pl + 1);
    assert_non_null(big);
    for (i = 0; i < n; i++)
        memcpy(big + i * pl, pat, pl);
    big[n * pl] = '\0';
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    run_cmd("mkdir -p %s/ready", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Clients>\n", fp);
    for (i = 0; i < 40; i++)    /* 40 Rows of ~30,000 bytes */
        fprintf(fp, "  <Row>\n    <__id>%zuBASE11</__id>\n    <Name>%.*s"
                    "</Name>\n  </Row>\n", 100 + i,
                (int)(30000 - i % 7 * pl), big);
    fprintf(fp, "  <Row>\n    <__id>7BASE11</__id>\n    <Name>%s</Name>\n"
                "  </Row>\n</Clients>\n", big);
    fclose(fp);
    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "one")));
    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    combine_free(cb);
    assert_int_equal(st.cs_folded, 41);
    assert_int_equal(st.cs_rows, 42);
    snprintf(p, sizeof(p), "%s/ready/clients.xml", f->dir);
    out = slurp(p);
    assert_int_equal(count(out, "<Row>"), 42);
    row = strstr(out, "<__id>7BASE11</__id>\n    <Name>");
    assert_non_null(row);
    row += strlen("<__id>7BASE11</__id>\n    <Name>");
    assert_int_equal(memcmp(row, big, n * pl), 0);
    assert_int_equal(strncmp(row + n * pl, "</Name>\n  </Row>\n", 17), 0);
    free(out);
    free(big);
}

/* One run at a time: a run that finds READY_DIR/.combine.lock held touches
 * nothing; the next run removes what a killed run left in READY_DIR. */
static void
test_run_lock(void **state)
{
    struct fx *f = *state;
    struct combine_stats st;
    struct combine *cb;
    char p[256], lock[256], stale[256], err[256];
    int fd;

    snprintf(p, sizeof(p), "%s/out/A/1.xml", f->dir);
    write_text(p, DOC(ROW("1BASE11", "one")));
    snprintf(lock, sizeof(lock), "%s/ready/.combine.lock", f->dir);
    run_cmd("mkdir -p %s/ready", f->dir);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    snprintf(stale, sizeof(stale), "%s/ready/.clients.xml.tmp.999999999",
             f->dir);
    write_text(stale, "<Clients><Row><__id>half");

    cb = combine_new(&f->cfg, COMBINE_FROM_DIR, NULL, err, sizeof(err));
    assert_non_null(cb);
    assert_int_equal(combine_run(cb, &st), COMBINE_FAILED);
    assert_non_null(strstr(st.cs_error, "another patriot-combine run"));
    assert_int_equal(access(p, F_OK), 0);           /* untouched */
    assert_int_equal(access(stale, F_OK), 0);       /* not ours to judge */
    snprintf(err, sizeof(err), "%s/ready/clients.xml", f->dir);
    assert_int_equal(access(err, F_OK), -1);

    close(fd);                                      /* the other run ends */
    assert_int_equal(combine_run(cb, &st), COMBINE_OK);
    assert_int_equal(st.cs_rows, 1);
    assert_int_equal(access(p, F_OK), -1);          /* shipped */
    assert_int_equal(access(stale, F_OK), -1);      /* left by a killed run */
    assert_int_equal(access(err, F_OK), 0);
    combine_free(cb);
}

static void
test_password_file(void **state)
{
    struct fx *f = *state;
    char p[256], buf[64], err[256];

    snprintf(p, sizeof(p), "%s/pw", f->dir);
    write_text(p, "secret\n");
    chmod(p, 0640);
    assert_int_equal(smb_read_password_file(p, buf, sizeof(buf),
                                                     err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "owner alone"));
    assert_null(strstr(err, "secret"));
    chmod(p, 0600);
    assert_int_equal(smb_read_password_file(p, buf, sizeof(buf),
                                                     err, sizeof(err)),
                     0);
    assert_string_equal(buf, "secret");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_utf8),
        cmocka_unit_test(test_results_utf16),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_row_check),
        cmocka_unit_test(test_row_doc),
        cmocka_unit_test_setup_teardown(test_from_dir, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_db_mode, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_recover_db, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_recover_from_dir, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_from_dir_one_pass, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_from_dir_max, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_from_dir_fold_big, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_recreated_same_version,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shipped_copy_removed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_mark_set, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unmarked_deleted_not_put_back,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mark_fails_files_back,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_fails_files_back,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_from_dir_walks, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_state_streamed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_db_same_id, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_fold_streamed_multibyte,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_lock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_password_file, fx_setup,
                                        fx_teardown),
    };

    xmlInitParser();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
