/*
 * test_patriot_xml.c - unit tests of patriot_xml.c: the exact document a
 * client renders to (checked byte for byte and parsed back with libxml2),
 * the outbox path, the atomic file write and the file comparison, on real
 * files in a mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "keys.h"
#include "model.h"
#include "patriot_xml.h"

static char tmpdir[] = "/tmp/test_patriot_xml.XXXXXX";

/* A key with xml_fields (one needing escaping) and two groupings. */
static const char keys_json[] =
    "[{\"key_name\":\"Alarm24\",\"key\":\"secret-1\",\"port\":\"BASE11\","
    "\"installer_name\":\"Inst & S\\u00f8nn\","
    "\"installer_email\":\"inst@example.no\","
    "\"xml_fields\":{\"UseGlobCallOuts\":\"True\","
    "\"AltAlarmNo\":\"CID4<BASE01>\",\"ConvertType\":\"None\"},"
    "\"client_groupings\":["
    "{\"Description\":\"Alarm24\",\"GroupingTypeDescription\":"
    "\"Alarm24 Tilgang\",\"GroupingAllowMultiple\":\"True\"},"
    "{\"Description\":\"Import\",\"GroupingTypeDescription\":"
    "\"\\u00d8stfold Sikkerhetsservice AS\",\"GroupingAllowMultiple\":"
    "\"False\"}]},"
    "{\"key_name\":\"Bare\",\"key\":\"secret-2\",\"port\":\"PX\","
    "\"installer_name\":\"I\",\"installer_email\":\"e@x\"}]";

static struct keyset *ks;

/* ---- helpers ---------------------------------------------------------- */

static void
rm_rf(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *de;
    char sub[PATH_MAX];

    if (lstat(path, &sb) < 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700);
    if ((d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static int
setup(void **state)
{
    char err[256];

    (void)state;
    umask(022);
    xmlInitParser();
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    ks = keys_load_buffer(keys_json, sizeof keys_json - 1, err, sizeof err);
    if (ks == NULL) {
        fprintf(stderr, "keys: %s\n", err);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    keys_release(ks);
    rm_rf(tmpdir);
    xmlCleanupParser();
    return 0;
}

static json_t *
load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);

    if (v == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return v;
}

/* A validated value of table t from JSON text. */
static json_t *
valid(const struct mtable *t, const char *text)
{
    json_t *in = load(text), *errs = json_array(), *out;

    out = model_validate(t, in, 0, NULL, errs, NULL);
    if (out == NULL) {
        char *s = json_dumps(errs, JSON_COMPACT);
        print_error("invalid test value %s: %s\n", text, s);
        free(s);
        fail();
    }
    json_decref(in);
    json_decref(errs);
    return out;
}

static void
assert_text_equal(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        size_t i = 0;

        size_t from;

        while (got[i] && got[i] == want[i])
            i++;
        from = i > 80 ? i - 80 : 0;
        print_error("differs at byte %zu\n--- got, from byte %zu:\n%.160s\n"
                    "--- wanted, from byte %zu:\n%.160s\n", i, from,
                    got + from, from, want + from);
        fail();
    }
}

/* Path inside tmpdir. */
static void
tpath(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", tmpdir, rel);
}

/* Names in dir containing ".tmp." */
static int
count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp.") != NULL)
            n++;
    closedir(d);
    return n;
}

static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Whole file into a malloc'ed NUL-terminated buffer. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void
spit(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- render ----------------------------------------------------------- */

static const char full_doc[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<Clients>\n"
    "  <Row>\n"
    "    <__id>9998BASE11</__id>\n"
    "    <Name>Bl\xc3\xa5" "b\xc3\xa6r &amp; &lt;S\xc3\xb8n&gt; &quot;q&quot; "
    "'a' ]]&gt;</Name>\n"
    "    <Alias>\xc3\x86\xc3\x98\xc3\x85 \xe2\x82\xac \xf0\x9f\x98\x80"
    "</Alias>\n"
    "    <Location>Storgata 1</Location>\n"
    "    <SpecRequest>line1&#13;\nline2\tx</SpecRequest>\n"
    "    <NoSigsMon>30</NoSigsMon>\n"
    "    <SinceDays>0</SinceDays>\n"
    "    <ResetNosigsIgnored>True</ResetNosigsIgnored>\n"
    "    <ResetNosigsDays>7</ResetNosigsDays>\n"
    "    <Installer>Inst &amp; S\xc3\xb8nn</Installer>\n"
    "    <UseGlobCallOuts>True</UseGlobCallOuts>\n"
    "    <AltAlarmNo>CID4&lt;BASE01&gt;</AltAlarmNo>\n"
    "    <ConvertType>None</ConvertType>\n"
    "    <ClientGroupings>\n"
    "      <ClientGrouping>\n"
    "        <Description>Alarm24</Description>\n"
    "        <GroupingTypeDescription>Alarm24 Tilgang"
    "</GroupingTypeDescription>\n"
    "        <GroupingAllowMultiple>True</GroupingAllowMultiple>\n"
    "      </ClientGrouping>\n"
    "      <ClientGrouping>\n"
    "        <Description>Import</Description>\n"
    "        <GroupingTypeDescription>\xc3\x98stfold Sikkerhetsservice AS"
    "</GroupingTypeDescription>\n"
    "        <GroupingAllowMultiple>False</GroupingAllowMultiple>\n"
    "      </ClientGrouping>\n"
    "    </ClientGroupings>\n"
    "    <Zone>\n"
    "      <Zone_No>1</Zone_No>\n"
    "      <Zone_area>Hall &amp; stue</Zone_area>\n"
    "      <ModuleNo>0</ModuleNo>\n"
    "    </Zone>\n"
    "    <Zone>\n"
    "      <Zone_No>12</Zone_No>\n"
    "    </Zone>\n"
    "    <User>\n"
    "      <User_Name>Ola</User_Name>\n"
    "      <MobileNo>+4712345678</MobileNo>\n"
    "      <Type>U</Type>\n"
    "      <UserNo>1</UserNo>\n"
    "      <CallOrder>1</CallOrder>\n"
    "    </User>\n"
    "    <User>\n"
    "      <User_Name>Kari &lt;3</User_Name>\n"
    "      <UserNo>2</UserNo>\n"
    "    </User>\n"
    "    <User>\n"
    "      <User_Name>Inst &amp; S\xc3\xb8nn</User_Name>\n"
    "      <Email>inst@example.no</Email>\n"
    "      <UserNo>199</UserNo>\n"
    "      <CallOrder>0</CallOrder>\n"
    "      <Type>N</Type>\n"
    "    </User>\n"
    "  </Row>\n"
    "</Clients>\n";

/* Info given out of table order on purpose: the document follows the
 * table. */
static const char full_info[] =
    "{\"ResetNosigsDays\":7,\"SpecRequest\":\"line1\\r\\nline2\\tx\","
    "\"Name\":\"Bl\\u00e5b\\u00e6r & <S\\u00f8n> \\\"q\\\" 'a' ]]>\","
    "\"Alias\":\"\\u00c6\\u00d8\\u00c5 \\u20ac \\ud83d\\ude00\","
    "\"Location\":\"Storgata 1\",\"NoSigsMon\":\"30\",\"SinceDays\":0,"
    "\"ResetNosigsIgnored\":\"yes\"}";

static void
render_full(char **out, size_t *len)
{
    const struct key *k = keys_get_by_name(ks, "Alarm24");
    json_t *info = valid(&model_info, full_info);
    json_t *zones = json_array(), *users = json_array();

    assert_non_null(k);
    json_array_append_new(zones, valid(&model_zone,
        "{\"Zone_No\":1,\"Zone_area\":\"Hall & stue\",\"ModuleNo\":0}"));
    json_array_append_new(zones, valid(&model_zone, "{\"Zone_No\":12}"));
    json_array_append_new(users, valid(&model_user,
        "{\"User_Name\":\"Ola\",\"UserNo\":1,\"CallOrder\":1,\"Type\":\"U\","
        "\"MobileNo\":\"+4712345678\"}"));
    json_array_append_new(users, valid(&model_user,
        "{\"User_Name\":\"Kari <3\",\"UserNo\":2}"));
    assert_int_equal(pxml_render_client(k, 9998, info, zones, users, out,
                                        len), 0);
    json_decref(info);
    json_decref(zones);
    json_decref(users);
}

static void
test_render_layout(void **state)
{
    char *out = NULL;
    size_t len = 0;

    (void)state;
    render_full(&out, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    assert_text_equal(out, full_doc);
    assert_int_equal(len, sizeof full_doc - 1);
    assert_int_equal(model_text_ok(out, len), 1);
    free(out);
}

/* Text of the first child element of n named name, or NULL. */
static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE &&
            strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

static void
assert_child_text(xmlNodePtr n, const char *name, const char *want)
{
    xmlNodePtr c = child(n, name);
    xmlChar *t;

    if (c == NULL)
        fail_msg("no <%s>", name);
    t = xmlNodeGetContent(c);
    assert_non_null(t);
    assert_string_equal((const char *)t, want);
    xmlFree(t);
}

static void
test_render_parses(void **state)
{
    char *out = NULL;
    size_t len = 0;
    xmlDocPtr doc;
    xmlNodePtr root, row, c, last_user = NULL;
    int nzone = 0, nuser = 0, nelem = 0;

    (void)state;
    render_full(&out, &len);
    doc = xmlReadMemory(out, (int)len, "client.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING);
    assert_non_null(doc);
    assert_non_null(doc->encoding);
    assert_string_equal((const char *)doc->encoding, "utf-8");
    root = xmlDocGetRootElement(doc);
    assert_string_equal((const char *)root->name, "Clients");
    row = child(root, "Row");
    assert_non_null(row);
    for (c = root->children; c != NULL; c = c->next)   /* one Row only */
        if (c->type == XML_ELEMENT_NODE)
            assert_ptr_equal(c, row);

    /* Text comes back exactly as given: escaping is undone. */
    assert_child_text(row, "__id", "9998BASE11");
    assert_child_text(row, "Name",
                      "Bl\xc3\xa5" "b\xc3\xa6r & <S\xc3\xb8n> \"q\" 'a' ]]>");
    assert_child_text(row, "SpecRequest", "line1\r\nline2\tx");
    assert_child_text(row, "AltAlarmNo", "CID4<BASE01>");
    assert_child_text(row, "ResetNosigsIgnored", "True");

    for (c = row->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        nelem++;
        if (strcmp((const char *)c->name, "Zone") == 0) {
            assert_null(last_user);     /* zones before users */
            nzone++;
        }
        if (strcmp((const char *)c->name, "User") == 0) {
            nuser++;
            last_user = c;
        }
    }
    assert_int_equal(nzone, 2);
    assert_int_equal(nuser, 3);
    /* __id, 8 info fields, Installer, 3 xml_fields, ClientGroupings,
     * 2 zones, 3 users. */
    assert_int_equal(nelem, 1 + 8 + 1 + 3 + 1 + 2 + 3);
    assert_non_null(last_user);
    assert_child_text(last_user, "UserNo", "199");
    assert_child_text(last_user, "User_Name", "Inst & S\xc3\xb8nn");
    assert_child_text(last_user, "Type", "N");
    /* The first element of the Row is __id. */
    for (c = row->children; c->type != XML_ELEMENT_NODE; c = c->next)
        ;
    assert_string_equal((const char *)c->name, "__id");

    xmlFreeDoc(doc);
    free(out);
}

static void
test_render_minimal(void **state)
{
    const struct key *k = keys_get_by_name(ks, "Bare");
    json_t *info = load("{\"Name\":\"\",\"Alias\":null,\"SinceDays\":5,"
                        "\"ResetNosigsIgnored\":false}");
    json_t *zones = json_array(), *users = json_array();
    char *out = NULL;
    size_t len = 0;
    xmlDocPtr doc;

    (void)state;
    assert_non_null(k);
    assert_int_equal(pxml_render_client(k, 9999999999999999LL, info, zones,
                                        users, &out, &len), 0);
    assert_text_equal(out,
                      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                      "<Clients>\n"
                      "  <Row>\n"
                      "    <__id>9999999999999999PX</__id>\n"
                      "    <Name></Name>\n"
                      "    <SinceDays>5</SinceDays>\n"
                      "    <ResetNosigsIgnored>False</ResetNosigsIgnored>\n"
                      "    <Installer>I</Installer>\n"
                      "    <User>\n"
                      "      <User_Name>I</User_Name>\n"
                      "      <Email>e@x</Email>\n"
                      "      <UserNo>199</UserNo>\n"
                      "      <CallOrder>0</CallOrder>\n"
                      "      <Type>N</Type>\n"
                      "    </User>\n"
                      "  </Row>\n"
                      "</Clients>\n");
    assert_int_equal(len, strlen(out));
    doc = xmlReadMemory(out, (int)len, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(out);
    json_decref(info);
    json_decref(zones);
    json_decref(users);
}

/* Rendering is deterministic: the same input, the same bytes. */
static void
test_render_repeatable(void **state)
{
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;

    (void)state;
    render_full(&a, &la);
    render_full(&b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
}

/* ---- paths and files -------------------------------------------------- */

static void
test_outbox_path(void **state)
{
    char *p;

    (void)state;
    p = pxml_outbox_path("/srv/out", "Alarm24", 9998);
    assert_non_null(p);
    assert_string_equal(p, "/srv/out/Alarm24/9998.xml");
    free(p);
    p = pxml_outbox_path("out", "K", 9999999999999999LL);
    assert_string_equal(p, "out/K/9999999999999999.xml");
    free(p);
}

static void
test_write_creates_parents(void **state)
{
    char path[PATH_MAX], dir[PATH_MAX], *got;
    const char body[] = "<?xml version=\"1.0\"?>\n<a>\xc3\xa6</a>\n";
    struct stat sb;
    size_t len;

    (void)state;
    tpath(path, sizeof path, "w1/deep/er/Alarm24/9998.xml");
    assert_int_equal(pxml_write_file(path, body, sizeof body - 1, 0), 0);
    got = slurp(path, &len);
    assert_int_equal(len, sizeof body - 1);
    assert_memory_equal(got, body, len);
    free(got);

    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0640);
    tpath(dir, sizeof dir, "w1/deep/er/Alarm24");
    assert_int_equal(stat(dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0750);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_temp_files(dir), 0);

    /* An empty document, synced. */
    tpath(path, sizeof path, "w1/deep/er/Alarm24/1.xml");
    assert_int_equal(pxml_write_file(path, "", 0, 1), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(count_entries(dir), 2);
    assert_int_equal(count_temp_files(dir), 0);
}

static void
test_write_replaces_atomically(void **state)
{
    char path[PATH_MAX], dir[PATH_MAX], buf[64], *got;
    struct stat before, after;
    ssize_t n;
    size_t len;
    int fd;

    (void)state;
    tpath(dir, sizeof dir, "w2");
    tpath(path, sizeof path, "w2/5.xml");
    assert_int_equal(pxml_write_file(path, "old content", 11, 1), 0);
    assert_int_equal(stat(path, &before), 0);
    /* A reader that has the old file open keeps seeing all of it. */
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);

    assert_int_equal(pxml_write_file(path, "the new, longer content", 23, 0),
                     0);
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_ino != after.st_ino);     /* renamed over */
    assert_int_equal(after.st_size, 23);
    got = slurp(path, &len);
    assert_int_equal(len, 23);
    assert_memory_equal(got, "the new, longer content", 23);
    free(got);

    n = read(fd, buf, sizeof buf);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "old content", 11);
    close(fd);

    /* Shorter content replaces longer completely (no leftover tail). */
    assert_int_equal(pxml_write_file(path, "x", 1, 0), 0);
    got = slurp(path, &len);
    assert_int_equal(len, 1);
    assert_int_equal(got[0], 'x');
    free(got);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_temp_files(dir), 0);
}

static void
test_write_failures(void **state)
{
    char dir[PATH_MAX], file[PATH_MAX], path[PATH_MAX], *got;
    char longpath[5000];
    size_t len;

    (void)state;
    /* The parent is a regular file: ENOTDIR (chmod would not stop root). */
    tpath(dir, sizeof dir, "w3");
    assert_int_equal(mkdir(dir, 0700), 0);
    tpath(file, sizeof file, "w3/notadir");
    spit(file, "plain", 5);
    tpath(path, sizeof path, "w3/notadir/9998.xml");
    errno = 0;
    assert_int_equal(pxml_write_file(path, "<x/>", 4, 1), -1);
    assert_int_equal(errno, ENOTDIR);
    tpath(path, sizeof path, "w3/notadir/sub/9998.xml");
    errno = 0;
    assert_int_equal(pxml_write_file(path, "<x/>", 4, 0), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_temp_files(dir), 0);
    got = slurp(file, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(got, "plain", 5);
    free(got);

    /* The target is a directory: the rename fails, the temp file goes. */
    tpath(path, sizeof path, "w3/isdir.xml");
    assert_int_equal(mkdir(path, 0700), 0);
    errno = 0;
    assert_int_equal(pxml_write_file(path, "<x/>", 4, 0), -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(count_entries(dir), 2);
    assert_int_equal(count_temp_files(dir), 0);

    /* A name too long for the temp name buffer. */
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    errno = 0;
    assert_int_equal(pxml_write_file(longpath, "x", 1, 0), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void
test_file_equals(void **state)
{
    char path[PATH_MAX], *big, *big2;
    const size_t bign = 20000;      /* more than one read chunk */

    (void)state;
    tpath(path, sizeof path, "eq");
    assert_int_equal(mkdir(path, 0700), 0);

    tpath(path, sizeof path, "eq/a.xml");
    spit(path, "hello world", 11);
    assert_int_equal(pxml_file_equals(path, "hello world", 11), 1);
    /* Different size, either way. */
    assert_int_equal(pxml_file_equals(path, "hello worl", 10), 0);
    assert_int_equal(pxml_file_equals(path, "hello world!", 12), 0);
    /* Same size, different content (first, middle, last byte). */
    assert_int_equal(pxml_file_equals(path, "Hello world", 11), 0);
    assert_int_equal(pxml_file_equals(path, "hello_world", 11), 0);
    assert_int_equal(pxml_file_equals(path, "hello worlD", 11), 0);

    /* Missing. */
    tpath(path, sizeof path, "eq/missing.xml");
    assert_int_equal(pxml_file_equals(path, "x", 1), 0);
    /* Parent is a file: another error. */
    tpath(path, sizeof path, "eq/a.xml/b.xml");
    errno = 0;
    assert_int_equal(pxml_file_equals(path, "x", 1), -1);
    assert_int_equal(errno, ENOTDIR);

    /* Empty file. */
    tpath(path, sizeof path, "eq/empty.xml");
    spit(path, "", 0);
    assert_int_equal(pxml_file_equals(path, "", 0), 1);
    assert_int_equal(pxml_file_equals(path, "x", 1), 0);

    /* Larger than one chunk, differing only in the last byte. */
    big = malloc(bign);
    big2 = malloc(bign);
    assert_non_null(big);
    assert_non_null(big2);
    for (size_t i = 0; i < bign; i++)
        big[i] = (char)('a' + i % 26);
    memcpy(big2, big, bign);
    big2[bign - 1] ^= 1;
    tpath(path, sizeof path, "eq/big.xml");
    assert_int_equal(pxml_write_file(path, big, bign, 0), 0);
    assert_int_equal(pxml_file_equals(path, big, bign), 1);
    assert_int_equal(pxml_file_equals(path, big2, bign), 0);
    big2[bign - 1] ^= 1;
    big2[8192] ^= 1;        /* first byte of the second chunk */
    assert_int_equal(pxml_file_equals(path, big2, bign), 0);
    free(big);
    free(big2);
}

/* A rendered document written and compared end to end. */
static void
test_render_write_compare(void **state)
{
    char *out = NULL, *path, *got, root[PATH_MAX];
    size_t len = 0, glen;
    xmlDocPtr doc;

    (void)state;
    render_full(&out, &len);
    tpath(root, sizeof root, "outbox");
    path = pxml_outbox_path(root, "Alarm24", 9998);
    assert_non_null(path);
    assert_int_equal(pxml_file_equals(path, out, len), 0);
    assert_int_equal(pxml_write_file(path, out, len, 1), 0);
    assert_int_equal(pxml_file_equals(path, out, len), 1);
    got = slurp(path, &glen);
    assert_int_equal(glen, len);
    assert_memory_equal(got, full_doc, len);
    free(got);
    doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(path);
    free(out);
}

/* ---- the emitter against libxml2's text writer ------------------------ */

/*
 * The reference: the same Row written with libxml2's xmlTextWriter (indent
 * "  "), as patriot_xml.c did before it had its own emitter. The outbox
 * files must stay byte for byte what they were: the reconcile pass compares
 * bytes, and Patriot sites have seen these files for years.
 */
#define RX(s) ((const xmlChar *)(s))

static void
ref_fields(xmlTextWriterPtr w, json_t *obj, const struct mtable *t)
{
    size_t i;

    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];
        json_t *v = json_object_get(obj, f->mf_name);
        char buf[64];
        const char *text = buf;

        if (v == NULL || json_is_null(v))
            continue;
        if (json_is_string(v))
            text = json_string_value(v);
        else if (json_is_boolean(v))
            text = json_is_true(v) ? "True" : "False";
        else
            snprintf(buf, sizeof buf, "%lld",
                     (long long)json_integer_value(v));
        assert_true(xmlTextWriterWriteElement(w, RX(f->mf_name),
                                              RX(text)) >= 0);
    }
}

static void
ref_list(xmlTextWriterPtr w, json_t *arr, const char *name,
         const struct mtable *t)
{
    size_t i;
    json_t *o;

    json_array_foreach(arr, i, o) {
        assert_true(xmlTextWriterStartElement(w, RX(name)) >= 0);
        ref_fields(w, o, t);
        assert_true(xmlTextWriterEndElement(w) >= 0);
    }
}

static char *
ref_render(const struct key *k, int64_t cid, json_t *info, json_t *zones,
           json_t *users)
{
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    char id[96], *out;
    size_t i;

    snprintf(id, sizeof id, "%lld%s", (long long)cid, k->k_port);
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, RX("  "));
    xmlTextWriterWriteRaw(w,
        RX("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"));
    xmlTextWriterStartElement(w, RX("Clients"));
    xmlTextWriterStartElement(w, RX("Row"));
    xmlTextWriterWriteElement(w, RX("__id"), RX(id));
    ref_fields(w, info, &model_info);
    xmlTextWriterWriteElement(w, RX("Installer"), RX(k->k_installer_name));
    for (i = 0; i < k->k_nfields; i++)
        xmlTextWriterWriteElement(w, RX(k->k_fields[i].kf_name),
                                  RX(k->k_fields[i].kf_value));
    if (k->k_ngroupings > 0) {
        xmlTextWriterStartElement(w, RX("ClientGroupings"));
        for (i = 0; i < k->k_ngroupings; i++) {
            const struct key_grouping *g = &k->k_groupings[i];

            xmlTextWriterStartElement(w, RX("ClientGrouping"));
            xmlTextWriterWriteElement(w, RX("Description"),
                                      RX(g->kg_description));
            xmlTextWriterWriteElement(w, RX("GroupingTypeDescription"),
                                      RX(g->kg_type_description));
            xmlTextWriterWriteElement(w, RX("GroupingAllowMultiple"),
                                      RX(g->kg_allow_multiple));
            xmlTextWriterEndElement(w);
        }
        xmlTextWriterEndElement(w);
    }
    ref_list(w, zones, "Zone", &model_zone);
    ref_list(w, users, "User", &model_user);
    xmlTextWriterStartElement(w, RX("User"));
    xmlTextWriterWriteElement(w, RX("User_Name"), RX(k->k_installer_name));
    xmlTextWriterWriteElement(w, RX("Email"), RX(k->k_installer_email));
    xmlTextWriterWriteElement(w, RX("UserNo"), RX("199"));
    xmlTextWriterWriteElement(w, RX("CallOrder"), RX("0"));
    xmlTextWriterWriteElement(w, RX("Type"), RX("N"));
    xmlTextWriterEndElement(w);
    xmlTextWriterEndElement(w);
    xmlTextWriterEndElement(w);
    assert_true(xmlTextWriterFlush(w) >= 0);
    out = strdup((const char *)xmlBufferContent(buf));
    xmlFreeTextWriter(w);
    xmlBufferFree(buf);
    return out;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random XML-legal text of at most max code points, heavy on what needs
 * escaping or is multi-byte. */
static json_t *
rand_text(long long max)
{
    static const char *const parts[] = {
        "a", "Z", "0", " ", "&", "<", ">", "\"", "'", "\r", "\n", "\t",
        "]]>", "&amp;", "\xc3\xa6", "\xc3\xb8", "\xc3\xa5", "\xc3\x98",
        "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbd", "/", "\\",
    };
    char buf[512];
    size_t n = 0, cps = 0, want = (size_t)(rng() % 24);

    if (max > 0 && want > (size_t)max)
        want = (size_t)max;
    while (cps < want) {
        const char *p = parts[rng() % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);

        if (n + l >= sizeof buf)
            break;
        memcpy(buf + n, p, l);
        n += l;
        cps += l == 3 && p[0] == ']' ? 3 : 1;
    }
    return json_stringn(buf, n);
}

static json_t *
rand_obj(const struct mtable *t, const char *num_field, long long num)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];
        json_t *v;

        if (num_field != NULL && strcmp(f->mf_name, num_field) == 0) {
            json_object_set_new(o, f->mf_name, json_integer(num));
            continue;
        }
        if (rng() % 3 == 0)
            continue;
        switch (f->mf_type) {
        case MT_STR:
            v = rng() % 10 == 0 ? json_null() : rand_text(f->mf_max);
            break;
        case MT_BOOL:
            v = json_boolean(rng() & 1);
            break;
        case MT_INT:
            v = json_integer(f->mf_min + (long long)(rng() %
                (uint64_t)(f->mf_max - f->mf_min + 1)));
            break;
        default:
            continue;
        }
        json_object_set_new(o, f->mf_name, v);
    }
    return o;
}

static void
test_render_matches_libxml2(void **state)
{
    int round;

    (void)state;
    for (round = 0; round < 2000; round++) {
        const struct key *k = keys_get(ks, (size_t)round % keys_count(ks));
        json_t *info = rand_obj(&model_info, NULL, 0);
        json_t *zones = json_array(), *users = json_array();
        int64_t cid = 1 + (int64_t)(rng() % 9999999999999999ULL);
        long long nz = (long long)(rng() % 12), nu = (long long)(rng() % 6);
        long long i;
        char *ref, *out = NULL;
        size_t len = 0;

        for (i = 1; i <= nz; i++)
            json_array_append_new(zones, rand_obj(&model_zone, "Zone_No",
                                                  i * 7));
        for (i = 1; i <= nu; i++)
            json_array_append_new(users, rand_obj(&model_user, "UserNo",
                                                  i));
        ref = ref_render(k, cid, info, zones, users);
        if (round % 2 == 0) {
            assert_int_equal(pxml_render_client(k, cid, info, zones, users,
                                                &out, &len), 0);
        } else {
            /* As stored text, with \uXXXX escapes and spaces: the
             * streaming reader must give the same bytes. */
            size_t f = JSON_ENSURE_ASCII | JSON_INDENT(1);
            char *ti = json_dumps(info, f), *tz = json_dumps(zones, f);
            char *tu = json_dumps(users, f);
            struct pxml_text t = {ti, strlen(ti), tz, strlen(tz), tu,
                                  strlen(tu)};

            assert_int_equal(pxml_render_text(k, cid, &t, &out, &len), 0);
            free(ti);
            free(tz);
            free(tu);
        }
        assert_non_null(out);
        assert_int_equal(len, strlen(out));
        assert_text_equal(out, ref);
        free(ref);
        free(out);
        json_decref(info);
        json_decref(zones);
        json_decref(users);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_layout),
        cmocka_unit_test(test_render_parses),
        cmocka_unit_test(test_render_minimal),
        cmocka_unit_test(test_render_repeatable),
        cmocka_unit_test(test_outbox_path),
        cmocka_unit_test(test_write_creates_parents),
        cmocka_unit_test(test_write_replaces_atomically),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_file_equals),
        cmocka_unit_test(test_render_write_compare),
        cmocka_unit_test(test_render_matches_libxml2),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
