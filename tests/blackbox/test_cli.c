/*
 * test_cli.c - black-box tests of the operator's command line: "patriot-api
 * keys add|disable|enable|list", "patriot-api --check-config" (and
 * patriot-combine's), and the systemd notifications (READY, WATCHDOG,
 * RELOADING, STOPPING) of the real binary, received on a real AF_UNIX
 * datagram socket given as NOTIFY_SOCKET, with keys reloaded on SIGHUP.
 *
 * Everything runs the built binaries ($PATRIOT_API_BIN and
 * $PATRIOT_COMBINE_BIN) on real files in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* keys.example.json's two tenants, written into every test's keys.json. */
static const char keys_json[] =
    "[{\"key_name\": \"Alarm24\", \"key\": \"secure-api-key\","
    " \"enabled\": true, \"valid_to\": \"2099-01-01T00:00:00Z\","
    " \"port\": \"BASE11\", \"installer_name\": \"Installer Name\","
    " \"installer_email\": \"installer@email.com\","
    " \"xml_fields\": {\"AltLookup\": \"True\"},"
    " \"client_groupings\": []},\n"
    " {\"key_name\": \"InstallerX\", \"key_sha256\":"
    " \"8c731f4e03780f360cdf469395dd06128295611853d826e871f9bfde4db8908a\","
    " \"enabled\": true, \"valid_to\": null, \"port\": \"BASE05\","
    " \"installer_name\": \"Installer X AS\","
    " \"installer_email\": \"post@installerx.example\"}]\n";

#define HASH_X \
    "8c731f4e03780f360cdf469395dd06128295611853d826e871f9bfde4db8908a"

struct tdir {
    char td_dir[64];
    char td_keys[192];
};

/* ---- helpers ------------------------------------------------------- */

static const char *
api_bin(void)
{
    const char *b = getenv("PATRIOT_API_BIN");

    assert_non_null(b);
    return b;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static void
spit(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
tdir_init(struct tdir *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->td_dir, sizeof t->td_dir, "/tmp/patriot-cli.XXXXXX");
    assert_non_null(mkdtemp(t->td_dir));
    snprintf(t->td_keys, sizeof t->td_keys, "%s/keys.json", t->td_dir);
    spit(t->td_keys, keys_json, 0640);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void
tdir_free(struct tdir *t)
{
    if (t->td_dir[0] != '\0' && getenv("PATRIOT_KEEP_TMP") == NULL)
        nftw(t->td_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *const cfg_env[] = {
    "KEY_FILE", "XML_DIR", "DATA_FILE", "LOG_FILE", "HOST", "PORT",
    "THREADS", "MAX_CONNECTIONS", "CONNECTION_TIMEOUT", "NOTIFY_SOCKET",
    "WATCHDOG_USEC", "WATCHDOG_PID", "SMB_ENABLED",
};

/*
 * In a child: clear the settings, apply env ("NAME=value", NULL-ended),
 * cd to dir. Never returns on failure (exit 127).
 */
static void
child_setup(const char *dir, const char *const *env)
{
    size_t i;

    for (i = 0; i < sizeof cfg_env / sizeof cfg_env[0]; i++)
        unsetenv(cfg_env[i]);
    for (; env != NULL && *env != NULL; env++)
        if (putenv((char *)(uintptr_t)*env) != 0)
            _exit(127);
    if (chdir(dir) != 0)
        _exit(127);
}

/*
 * Run argv (argv[0] a path) in dir with env; stdout and stderr into *out
 * and *err (caller frees). Returns the exit status, or -1 if it did not
 * exit normally.
 */
static int
run(const char *dir, const char *const *env, char **out, char **err,
    const char *const *argv)
{
    char opath[256], epath[256];
    pid_t pid;
    int st, fd;

    snprintf(opath, sizeof opath, "%s/.out", dir);
    snprintf(epath, sizeof epath, "%s/.err", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_setup(dir, env);
        if ((fd = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
            dup2(fd, 1) < 0)
            _exit(127);
        close(fd);
        if ((fd = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
            dup2(fd, 2) < 0)
            _exit(127);
        close(fd);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *out = slurp(opath);
    *err = slurp(epath);
    assert_non_null(*out);
    assert_non_null(*err);
    unlink(opath);
    unlink(epath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "patriot-api keys --key-file <t's keys.json> args..." */
static int
keys_cmd(struct tdir *t, char **out, char **err, ...)
{
    const char *argv[32];
    va_list ap;
    size_t n = 0;
    const char *a;

    argv[n++] = api_bin();
    argv[n++] = "keys";
    argv[n++] = "--key-file";
    argv[n++] = t->td_keys;
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return run(t->td_dir, NULL, out, err, argv);
}

static int
is_hex64_line(const char *s)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\n' && s[65] == '\0';
}

/* ---- a running server ------------------------------------------------ */

struct srv {
    pid_t sv_pid;
    unsigned sv_port;
    int sv_notify;          /* our end of NOTIFY_SOCKET, or -1 */
    char sv_sock[100];
};

static void
srv_start(struct srv *s, struct tdir *t, int notify)
{
    static char e_notify[200];
    const char *env[] = {"PORT=0", "WATCHDOG_USEC=300000", NULL, NULL};
    char line[32];
    struct pollfd pfd;
    size_t n = 0;
    int p[2];

    memset(s, 0, sizeof *s);
    s->sv_notify = -1;
    if (notify) {
        struct sockaddr_un sa;

        snprintf(s->sv_sock, sizeof s->sv_sock, "%s/notify", t->td_dir);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, s->sv_sock, sizeof s->sv_sock);
        s->sv_notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(s->sv_notify >= 0);
        assert_int_equal(bind(s->sv_notify, (struct sockaddr *)&sa,
                              sizeof sa), 0);
        snprintf(e_notify, sizeof e_notify, "NOTIFY_SOCKET=%s", s->sv_sock);
        env[2] = e_notify;
    }
    assert_int_equal(pipe(p), 0);
    s->sv_pid = fork();
    assert_true(s->sv_pid >= 0);
    if (s->sv_pid == 0) {
        char errpath[200];
        int fd;

        child_setup(t->td_dir, env);
        snprintf(errpath, sizeof errpath, "%s/server.err", t->td_dir);
        if ((fd = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0600)) < 0 ||
            dup2(fd, 2) < 0 || dup2(p[1], 1) < 0)
            _exit(127);
        close(p[0]);
        execl(api_bin(), api_bin(), "--key-file", "keys.json", "--quiet",
              (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    while (n < sizeof line - 1 && memchr(line, '\n', n) == NULL) {
        ssize_t r;

        if (poll(&pfd, 1, 10000) != 1)
            fail_msg("the server printed no port in 10 s");
        r = read(p[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            fail_msg("the server exited before it listened");
        n += (size_t)r;
    }
    line[n] = '\0';
    close(p[0]);
    s->sv_port = (unsigned)strtoul(line, NULL, 10);
    assert_true(s->sv_port > 0);
}

/* SIGTERM; assert exit status 0. */
static void
srv_stop(struct srv *s)
{
    int st;

    assert_int_equal(kill(s->sv_pid, SIGTERM), 0);
    assert_int_equal(waitpid(s->sv_pid, &st, 0), s->sv_pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    s->sv_pid = 0;
    if (s->sv_notify >= 0)
        close(s->sv_notify);
}

/*
 * Wait up to ms for a notification containing want (a line such as
 * "READY=1"); returns the whole message (static) or fails the test.
 */
static const char *
notify_wait(struct srv *s, const char *want, int ms)
{
    static char msg[1024];
    long long deadline;
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + ms;
    for (;;) {
        struct pollfd pfd = {s->sv_notify, POLLIN, 0};
        long long now;
        ssize_t r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
        if (now >= deadline)
            fail_msg("no \"%s\" notification within %d ms", want, ms);
        if (poll(&pfd, 1, (int)(deadline - now)) != 1)
            continue;
        r = recv(s->sv_notify, msg, sizeof msg - 1, 0);
        assert_true(r > 0);
        msg[r] = '\0';
        if (strstr(msg, want) != NULL)
            return msg;
    }
}

static size_t
sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

/* GET /clients (X-Client-Id: 1) with key; the HTTP status (404 means the
 * key was accepted and the client is unknown, 401 refused). */
static long
status_with_key(const struct srv *s, const char *key)
{
    struct curl_slist *h = NULL;
    char url[64], auth[160];
    long code = 0;
    CURL *c = curl_easy_init();

    assert_non_null(c);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/clients", s->sv_port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "X-Client-Id: 1");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

/* ---- keys ------------------------------------------------------------ */

/* add: the key is printed once, stored as its hash only, works at once
 * after a reload; the file keeps its mode; list never shows a secret. */
static void
test_keys_add_list_disable(void **state)
{
    struct tdir t;
    struct srv s;
    struct stat st;
    char *out, *err, *file, key[80];

    (void)state;
    tdir_init(&t);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New1", "--port",
                              "BASE77", "--installer-name", "Inst AS",
                              "--installer-email", "i@inst.example",
                              "--xml-field", "AltLookup=True",
                              "--xml-field", "GlobCallOuts=TLF01BASE77",
                              "--grouping", "New1,New1 Tilgang,True",
                              "--valid-to", "2099-01-01T00:00:00Z", NULL),
                     0);
    assert_true(is_hex64_line(out));
    snprintf(key, sizeof key, "%.64s", out);
    assert_non_null(strstr(err, "printed once"));
    assert_null(strstr(err, key));
    free(out);
    free(err);

    file = slurp(t.td_keys);
    assert_null(strstr(file, key));             /* only its hash */
    assert_non_null(strstr(file, "\"key_name\": \"New1\""));
    assert_non_null(strstr(file, "\"key_sha256\""));
    assert_non_null(strstr(file, "\"GlobCallOuts\": \"TLF01BASE77\""));
    assert_non_null(strstr(file, "\"GroupingTypeDescription\": "
                                 "\"New1 Tilgang\""));
    assert_non_null(strstr(file, "secure-api-key"));  /* others kept */
    free(file);
    assert_int_equal(stat(t.td_keys, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    /* The server accepts the new key; list shows it without secrets. */
    srv_start(&s, &t, 0);
    assert_int_equal(status_with_key(&s, key), 404);
    assert_int_equal(status_with_key(&s, "secure-api-key"), 404);

    assert_int_equal(keys_cmd(&t, &out, &err, "list", NULL), 0);
    assert_non_null(strstr(out, "New1"));
    assert_non_null(strstr(out, "BASE77"));
    assert_non_null(strstr(out, "InstallerX"));
    assert_null(strstr(out, key));
    assert_null(strstr(out, "secure-api-key"));
    assert_null(strstr(out, HASH_X));
    assert_null(strstr(err, "secure-api-key"));
    free(out);
    free(err);

    /* disable, reload: refused at once, no restart. */
    assert_int_equal(keys_cmd(&t, &out, &err, "disable", "New1", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "list", NULL), 0);
    assert_non_null(strstr(out, "disabled"));
    free(out);
    free(err);
    assert_int_equal(kill(s.sv_pid, SIGHUP), 0);
    {
        int i;
        long code = 0;

        for (i = 0; i < 100 && (code = status_with_key(&s, key)) != 401;
             i++)
            usleep(50000);
        assert_int_equal(code, 401);
    }
    assert_int_equal(status_with_key(&s, "secure-api-key"), 404);
    assert_int_equal(keys_cmd(&t, &out, &err, "enable", "new1", NULL), 0);
    assert_non_null(strstr(out, "enabled \"New1\""));
    free(out);
    free(err);
    srv_stop(&s);
    tdir_free(&t);
}

/* Every change the loader would refuse is refused; the file is unchanged. */
static void
test_keys_refused(void **state)
{
    struct tdir t;
    char *out, *err, *before, *after;

    (void)state;
    tdir_init(&t);
    before = slurp(t.td_keys);

    /* the same port as Alarm24 */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "Dup", "--port",
                              "BASE11", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 1);
    assert_non_null(strstr(err, "refused"));
    assert_non_null(strstr(err, "\"port\""));
    assert_string_equal(out, "");               /* no key printed */
    free(out);
    free(err);
    /* a port that is another's with digits in front */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "Dup", "--port",
                              "1BASE11", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 1);
    assert_non_null(strstr(err, "clashes"));
    free(out);
    free(err);
    /* the same name, ignoring case */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "alarm24", "--port",
                              "BASE99", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 1);
    assert_non_null(strstr(err, "key_name"));
    free(out);
    free(err);
    /* the installer's name is required by the loader */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", "--port",
                              "BASE99", "--installer-email", "e@x", NULL),
                     1);
    assert_non_null(strstr(err, "installer_name"));
    free(out);
    free(err);
    /* a bad name, a reserved element, a bad time */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "bad name", "--port",
                              "BASE99", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 1);
    assert_non_null(strstr(err, "key_name"));
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", "--port",
                              "BASE99", "--installer-name", "I",
                              "--installer-email", "e@x", "--xml-field",
                              "Name=x", NULL), 1);
    assert_non_null(strstr(err, "xml_fields"));
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", "--port",
                              "BASE99", "--installer-name", "I",
                              "--installer-email", "e@x", "--valid-to",
                              "tomorrow", NULL), 1);
    assert_non_null(strstr(err, "valid_to"));
    free(out);
    free(err);
    /* usage errors: 2 */
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", NULL), 2);
    assert_non_null(strstr(err, "--port"));
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", "--port", "P",
                              "--grouping", "a,b", NULL), 2);
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "disable", "New",
                              "--port", "P", NULL), 2);
    free(out);
    free(err);
    assert_int_equal(keys_cmd(&t, &out, &err, "frobnicate", NULL), 2);
    free(out);
    free(err);
    /* no such key */
    assert_int_equal(keys_cmd(&t, &out, &err, "disable", "Nobody", NULL),
                     1);
    assert_non_null(strstr(err, "Nobody"));
    free(out);
    free(err);

    after = slurp(t.td_keys);
    assert_string_equal(before, after);
    free(after);

    /* a file that is broken now: no change is made on top of it */
    spit(t.td_keys, "[{\"key_name\": \"A\"}", 0640);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "New", "--port",
                              "BASE99", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 1);
    assert_non_null(strstr(err, "fix it first"));
    free(out);
    free(err);
    after = slurp(t.td_keys);
    assert_string_equal(after, "[{\"key_name\": \"A\"}");
    free(after);
    free(before);

    /* add to a missing file creates it, 0640 */
    {
        struct stat st;

        unlink(t.td_keys);
        assert_int_equal(keys_cmd(&t, &out, &err, "add", "First", "--port",
                                  "BASE01", "--installer-name", "I",
                                  "--installer-email", "e@x", NULL), 0);
        assert_true(is_hex64_line(out));
        free(out);
        free(err);
        assert_int_equal(stat(t.td_keys, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
    }
    tdir_free(&t);
}

/* Keys come from KEY_FILE in an --env-file (as the package's api.env). */
static void
test_keys_env_file(void **state)
{
    struct tdir t;
    char env[256], *out, *err;
    const char *argv[] = {api_bin(), "keys", "list", "--env-file", env,
                          NULL};

    (void)state;
    tdir_init(&t);
    snprintf(env, sizeof env, "%s/api.env", t.td_dir);
    {
        char text[400];

        snprintf(text, sizeof text, "# comment\nPORT=1\nKEY_FILE=\"%s\"\n",
                 t.td_keys);
        spit(env, text, 0644);
    }
    assert_int_equal(run(t.td_dir, NULL, &out, &err, argv), 0);
    assert_non_null(strstr(out, "Alarm24"));
    assert_non_null(strstr(out, t.td_keys));
    free(out);
    free(err);
    tdir_free(&t);
}

/* ---- --check-config -------------------------------------------------- */

static int
check_config(struct tdir *t, const char *const *env, char **out, char **err)
{
    const char *argv[] = {api_bin(), "--check-config", NULL};

    return run(t->td_dir, env, out, err, argv);
}

static void
test_check_config_good(void **state)
{
    struct tdir t;
    struct stat st;
    char *out, *err;

    (void)state;
    tdir_init(&t);
    /* defaults: ./keys.json, ./out/clients, ./data.db, ./api_requests.log */
    assert_int_equal(check_config(&t, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "configuration ok"));
    assert_non_null(strstr(out, "2 keys"));
    assert_string_equal(err, "");
    free(out);
    free(err);
    /* a check creates nothing */
    {
        char p[256];

        snprintf(p, sizeof p, "%s/data.db", t.td_dir);
        assert_int_not_equal(stat(p, &st), 0);
        snprintf(p, sizeof p, "%s/out", t.td_dir);
        assert_int_not_equal(stat(p, &st), 0);
        snprintf(p, sizeof p, "%s/api_requests.log", t.td_dir);
        assert_int_not_equal(stat(p, &st), 0);
    }
    /* after a real start the existing files pass too */
    {
        struct srv s;

        srv_start(&s, &t, 0);
        srv_stop(&s);
    }
    assert_int_equal(check_config(&t, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "SQLite database"));
    free(out);
    free(err);
    /* an env file, as the unit uses */
    {
        const char *argv[] = {api_bin(), "--env-file", "api.env",
                              "--check-config", NULL};
        char p[256];

        snprintf(p, sizeof p, "%s/api.env", t.td_dir);
        spit(p, "KEY_FILE=keys.json\nHOST=::1\nPORT=8099\n", 0644);
        assert_int_equal(run(t.td_dir, NULL, &out, &err, argv), 0);
        assert_non_null(strstr(out, "HOST ::1 PORT 8099"));
        free(out);
        free(err);
    }
    tdir_free(&t);
}

static void
test_check_config_bad(void **state)
{
    struct tdir t;
    char p[256], *out, *err;
    const char *env_missing[] = {"KEY_FILE=nokeys.json", NULL};
    const char *env_many[] = {"DATA_FILE=notadb", "XML_DIR=afile",
                              "HOST=localhost", "LOG_FILE=no/dir/log",
                              NULL};
    const char *env_port[] = {"PORT=70000", NULL};

    (void)state;
    tdir_init(&t);
    assert_int_equal(check_config(&t, env_missing, &out, &err), 1);
    assert_non_null(strstr(err, "KEY_FILE"));
    assert_non_null(strstr(err, "nokeys.json"));
    assert_non_null(strstr(err, "check failed"));
    assert_null(strstr(out, "configuration ok"));
    free(out);
    free(err);

    /* every problem is named, not only the first */
    snprintf(p, sizeof p, "%s/notadb", t.td_dir);
    spit(p, "this is no database, just some text\n", 0644);
    snprintf(p, sizeof p, "%s/afile", t.td_dir);
    spit(p, "x", 0644);
    assert_int_equal(check_config(&t, env_many, &out, &err), 1);
    assert_non_null(strstr(err, "DATA_FILE notadb: not a SQLite database"));
    assert_non_null(strstr(err, "XML_DIR afile: not a directory"));
    assert_non_null(strstr(err, "HOST \"localhost\""));
    assert_non_null(strstr(err, "LOG_FILE no/dir/log"));
    assert_non_null(strstr(err, "4 problems"));
    free(out);
    free(err);

    assert_int_equal(check_config(&t, env_port, &out, &err), 1);
    assert_non_null(strstr(err, "PORT"));
    free(out);
    free(err);

    /* a keys.json the loader refuses: its message, never a secret */
    spit(t.td_keys, "[{\"key_name\": \"A\", \"key\": \"sekrit-value\", "
         "\"port\": \"P\"}]", 0640);
    assert_int_equal(check_config(&t, NULL, &out, &err), 1);
    assert_non_null(strstr(err, "installer_name"));
    assert_null(strstr(err, "sekrit-value"));
    assert_null(strstr(out, "sekrit-value"));
    free(out);
    free(err);

    /* an env file with a line that is not NAME=value */
    {
        const char *argv[] = {api_bin(), "--env-file", "bad.env",
                              "--check-config", NULL};

        snprintf(p, sizeof p, "%s/bad.env", t.td_dir);
        spit(p, "PORT=1\nthis is not a setting\n", 0644);
        assert_int_equal(run(t.td_dir, NULL, &out, &err, argv), 1);
        assert_non_null(strstr(err, "bad.env line 2"));
        free(out);
        free(err);
    }
    tdir_free(&t);
}

/* patriot-combine --check-config: 0 for a good configuration, 1 else. */
static void
test_combine_check_config(void **state)
{
    const char *bin = getenv("PATRIOT_COMBINE_BIN");
    const char *good[] = {"SMB_ENABLED=false", NULL};
    const char *bad[] = {"SMB_ENABLED=true", NULL};
    struct tdir t;
    char *out, *err;

    (void)state;
    assert_non_null(bin);
    tdir_init(&t);
    {
        const char *argv[] = {bin, "--check-config", NULL};

        assert_int_equal(run(t.td_dir, good, &out, &err, argv), 0);
        assert_non_null(strstr(out, "configuration ok"));
        free(out);
        free(err);
        assert_int_equal(run(t.td_dir, bad, &out, &err, argv), 1);
        assert_non_null(strstr(err, "SMB_ENABLED=true needs"));
        free(out);
        free(err);
    }
    tdir_free(&t);
}

/* ---- systemd notifications ------------------------------------------- */

/*
 * READY=1 once it listens, WATCHDOG=1 within WATCHDOG_USEC, RELOADING=1
 * then READY=1 around SIGHUP (a bad keys.json keeps the old keys, a good
 * one is taken), STOPPING=1 on SIGTERM.
 */
static void
test_sd_notify(void **state)
{
    struct tdir t;
    struct srv s;
    const char *m;
    char *out, *err, key[80];

    (void)state;
    tdir_init(&t);
    srv_start(&s, &t, 1);
    m = notify_wait(&s, "READY=1", 5000);
    assert_non_null(strstr(m, "STATUS=listening"));
    notify_wait(&s, "WATCHDOG=1", 2000);
    notify_wait(&s, "WATCHDOG=1", 2000);

    /* a broken keys.json: refused, old keys stay */
    spit(t.td_keys, "[", 0640);
    assert_int_equal(kill(s.sv_pid, SIGHUP), 0);
    m = notify_wait(&s, "RELOADING=1", 5000);
    assert_non_null(strstr(m, "MONOTONIC_USEC="));
    m = notify_wait(&s, "READY=1", 5000);
    assert_non_null(strstr(m, "reload refused"));
    assert_int_equal(status_with_key(&s, "secure-api-key"), 404);

    /* a good one with a new key: taken without a restart */
    spit(t.td_keys, keys_json, 0640);
    assert_int_equal(keys_cmd(&t, &out, &err, "add", "Live1", "--port",
                              "BASE61", "--installer-name", "I",
                              "--installer-email", "e@x", NULL), 0);
    snprintf(key, sizeof key, "%.64s", out);
    free(out);
    free(err);
    assert_int_equal(status_with_key(&s, key), 401);
    assert_int_equal(kill(s.sv_pid, SIGHUP), 0);
    notify_wait(&s, "RELOADING=1", 5000);
    m = notify_wait(&s, "READY=1", 5000);
    assert_non_null(strstr(m, "3 keys"));
    assert_int_equal(status_with_key(&s, key), 404);

    assert_int_equal(kill(s.sv_pid, SIGTERM), 0);
    notify_wait(&s, "STOPPING=1", 5000);
    srv_stop(&s);
    tdir_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_add_list_disable),
        cmocka_unit_test(test_keys_refused),
        cmocka_unit_test(test_keys_env_file),
        cmocka_unit_test(test_check_config_good),
        cmocka_unit_test(test_check_config_bad),
        cmocka_unit_test(test_combine_check_config),
        cmocka_unit_test(test_sd_notify),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
