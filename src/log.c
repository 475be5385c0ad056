/*
 * log.c - diagnostics to stderr and the request log file (see log.h).
 *
 * Every line is formatted in full first and then written whole while
 * holding one mutex, so lines from different threads never interleave
 * (and, with O_APPEND, never interleave with other writers of the request
 * log either). Request lines are gathered in a buffer and written by a
 * flusher thread at most LOG_FLUSH_MS later, one write(2) for many lines:
 * a write(2) a request was a quarter of the HTTP threads' time
 * (docs/BENCHMARKS.md). A diagnostic line, a reopen and log_close() write
 * what is gathered first, so the order of lines is kept; a kill -9 loses at
 * most the last LOG_FLUSH_MS of request lines, never data. Control characters in messages are escaped as \xHH, so a
 * value taken from a request cannot forge a second log line. Every function
 * here preserves errno.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048           /* bytes of one line, newline included */
#define LOG_FIELD_MAX 512           /* bytes shown of one request field */
#define LOG_BUF_SIZE (256 * 1024)   /* request lines gathered at most */
#define LOG_FLUSH_MS 50             /* ... and for at most this long */

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static int log_req_fd = -1;         /* request log; under log_mtx */
/* Under log_mtx: */
static char log_pend[LOG_BUF_SIZE]; /* request lines not yet written */
static size_t log_pend_len;
static int log_flusher_state;       /* 0 not started, 1 running, 2 gone */
static pthread_t log_flusher;
static int log_min_level = LOG_LVL_INFO;    /* atomic */
static int log_req_echo = 1;                /* atomic */
static int log_req_format = LOG_FMT_TEXT;   /* atomic */

static const char *const log_level_names[] = {
    [LOG_LVL_DEBUG] = "debug",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_ERR] = "error",
};

static char *
put_digits(char *p, unsigned v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

size_t
log_format_utc_ms(int64_t ms, char *buf, size_t len)
{
    static _Thread_local time_t last_sec = -1;
    static _Thread_local struct tm last_tm;
    time_t t = (time_t)(ms / 1000);
    char tmp[32], *p = tmp;
    size_t n;

    if (ms < 0)
        t = 0, ms = 0;
    /* gmtime_r once a second per thread: it is most of the cost. */
    if (t != last_sec) {
        if (gmtime_r(&t, &last_tm) == NULL ||
            last_tm.tm_year + 1900 > 9999) {
            n = (size_t)snprintf(buf, len, "0000-00-00T00:00:00.000Z");
            return n < len ? n : len - 1;
        }
        last_sec = t;
    }
    p = put_digits(p, (unsigned)(last_tm.tm_year + 1900), 4);
    *p++ = '-';
    p = put_digits(p, (unsigned)(last_tm.tm_mon + 1), 2);
    *p++ = '-';
    p = put_digits(p, (unsigned)last_tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned)last_tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)last_tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)last_tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, (unsigned)(ms % 1000), 3);
    *p++ = 'Z';
    n = (size_t)(p - tmp);
    if (len == 0)
        return 0;
    if (n >= len)
        n = len - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

/* The current time as log_format_utc_ms writes it (buf: 96 bytes). */
static void
log_timestamp(char *buf, size_t len)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) == -1) {
        snprintf(buf, len, "0000-00-00T00:00:00.000Z");
        return;
    }
    log_format_utc_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000L,
                      buf, len);
}

/*
 * Append the n bytes at src to dst (which holds *pos bytes of cap), escaping
 * control characters, DEL and backslash as \xHH; with 'strict', also space
 * and bytes above 0x7F, so one token stays one token. Stops short, ending in
 * "...", when out of room or past max source bytes.
 */
static void
log_escape(char *dst, size_t cap, size_t *pos, const char *src, size_t n,
           size_t max, int strict)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, p = *pos;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        int esc = c < 0x20 || c == 0x7F || c == '\\' ||
                  (strict && (c == ' ' || c >= 0x80));

        if (i >= max || p + (esc ? 4 : 1) + 3 >= cap) {
            if (p + 3 < cap) {
                memcpy(dst + p, "...", 3);
                p += 3;
            }
            break;
        }
        if (c == '\t' && !strict) {
            dst[p++] = ' ';
        } else if (esc) {
            dst[p++] = '\\';
            dst[p++] = 'x';
            dst[p++] = hex[c >> 4];
            dst[p++] = hex[c & 0xF];
        } else {
            dst[p++] = (char)c;
        }
    }
    *pos = p;
}

/* write(2) all n bytes, retrying on EINTR and short writes. */
static void
log_write_all(int fd, const char *buf, size_t n)
{
    ssize_t r;

    while (n > 0) {
        r = write(fd, buf, n);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return;         /* nowhere left to report it */
        buf += r;
        n -= (size_t)r;
    }
}

/* Under log_mtx: write the gathered request lines. */
static void
log_flush_locked(void)
{
    if (log_pend_len == 0)
        return;
    if (log_req_fd != -1)
        log_write_all(log_req_fd, log_pend, log_pend_len);
    if (__atomic_load_n(&log_req_echo, __ATOMIC_RELAXED))
        log_write_all(STDERR_FILENO, log_pend, log_pend_len);
    log_pend_len = 0;
}

static void *
log_flusher_run(void *arg)
{
    struct timespec gather = {0, LOG_FLUSH_MS * 1000000L};

    (void)arg;
    pthread_mutex_lock(&log_mtx);
    for (;;) {
        while (log_pend_len == 0 && log_flusher_state == 1)
            pthread_cond_wait(&log_cv, &log_mtx);
        if (log_flusher_state != 1)
            break;
        pthread_mutex_unlock(&log_mtx);
        nanosleep(&gather, NULL);       /* let lines gather */
        pthread_mutex_lock(&log_mtx);
        log_flush_locked();
    }
    log_flush_locked();
    pthread_mutex_unlock(&log_mtx);
    return NULL;
}

static void log_vemit(enum log_level lvl, int errnum, const char *fmt,
                      va_list ap) __attribute__((format(printf, 3, 0)));

/* Format and write one stderr line; errnum >= 0 appends its strerror. */
static void
log_vemit(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX], msg[LOG_LINE_MAX], ebuf[128], ts[96];
    const char *es;
    size_t pos;
    int n;

    if ((int)lvl < __atomic_load_n(&log_min_level, __ATOMIC_RELAXED))
        return;
    log_timestamp(ts, sizeof ts);
    n = snprintf(line, sizeof line, "%s %s: ", ts, log_level_names[lvl]);
    pos = n > 0 ? (size_t)n : 0;
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        n = 0;
    log_escape(line, sizeof line - 1, &pos, msg,
               strnlen(msg, sizeof msg), sizeof msg, 0);
    if ((size_t)n >= sizeof msg && pos + 3 < sizeof line - 1) {
        memcpy(line + pos, "...", 3);       /* vsnprintf truncated it */
        pos += 3;
    }
    if (errnum >= 0) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
        es = strerror_r(errnum, ebuf, sizeof ebuf);
#else
        if (strerror_r(errnum, ebuf, sizeof ebuf) != 0)
            snprintf(ebuf, sizeof ebuf, "error %d", errnum);
        es = ebuf;
#endif
        log_escape(line, sizeof line - 1, &pos, ": ", 2, 2, 0);
        log_escape(line, sizeof line - 1, &pos, es, strlen(es), 128, 0);
    }
    line[pos++] = '\n';
    pthread_mutex_lock(&log_mtx);
    log_flush_locked();
    log_write_all(STDERR_FILENO, line, pos);
    pthread_mutex_unlock(&log_mtx);
}

/* Set the lowest level written to stderr. */
void
log_set_level(enum log_level lvl)
{
    __atomic_store_n(&log_min_level, (int)lvl, __ATOMIC_RELAXED);
}

/* Set whether request lines are echoed to stderr (default 1). */
void
log_set_request_echo(int on)
{
    __atomic_store_n(&log_req_echo, on != 0, __ATOMIC_RELAXED);
}

/* Set the request log's format. */
void
log_set_format(enum log_format fmt)
{
    __atomic_store_n(&log_req_format, (int)fmt, __ATOMIC_RELAXED);
}

/*
 * Open path for request lines (O_APPEND|O_CREAT, 0640), replacing any log
 * already open, so calling it again reopens a rotated file. NULL or "" just
 * closes the current one. Returns 0, or -1 with errno set and the old log
 * left open.
 */
int
log_open_request_log(const char *path)
{
    int fd = -1, old;

    if (path != NULL && path[0] != '\0') {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd == -1)
            return -1;
    }
    pthread_mutex_lock(&log_mtx);
    log_flush_locked();
    old = log_req_fd;
    log_req_fd = fd;
    pthread_mutex_unlock(&log_mtx);
    if (old != -1) {
        int e = errno;
        close(old);
        errno = e;
    }
    return 0;
}

/* Close the request log; safe to call twice. */
void
log_close(void)
{
    int e = errno, join;

    pthread_mutex_lock(&log_mtx);
    join = log_flusher_state == 1;
    log_flusher_state = 2;          /* from now on, lines are written now */
    pthread_cond_signal(&log_cv);
    pthread_mutex_unlock(&log_mtx);
    if (join)
        pthread_join(log_flusher, NULL);
    pthread_mutex_lock(&log_mtx);
    log_flush_locked();
    if (log_req_fd != -1)
        close(log_req_fd);
    log_req_fd = -1;
    pthread_mutex_unlock(&log_mtx);
    errno = e;
}

/* One line at debug level to stderr (format as printf). */
void
log_debug(const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_LVL_DEBUG, -1, fmt, ap);
    va_end(ap);
    errno = e;
}

/* One line at info level to stderr. */
void
log_info(const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_LVL_INFO, -1, fmt, ap);
    va_end(ap);
    errno = e;
}

/* One line at warn level to stderr, ending in ": strerror(errno)". */
void
log_warn(const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_LVL_WARN, e, fmt, ap);
    va_end(ap);
    errno = e;
}

/* One line at warn level to stderr, without errno. */
void
log_warnx(const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_LVL_WARN, -1, fmt, ap);
    va_end(ap);
    errno = e;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
log_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len, i;
    unsigned cp;

    if (c < 0xC2 || c > 0xF4)
        return 0;
    len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > n)
        return 0;
    cp = c & (0x3F >> (len - 1));
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/*
 * Append src as a JSON string (quotes included) to dst, or null when src
 * is NULL. Valid UTF-8 is kept, each invalid byte becomes U+FFFD, and
 * quotes, backslashes and control characters are escaped. Past max source
 * bytes or out of room, the string ends in "...".
 */
static void
log_json_str(char *dst, size_t cap, size_t *pos, const char *src,
             size_t max)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, n, p = *pos;

    if (src == NULL) {          /* the caller keeps room for this */
        memcpy(dst + p, "null", 4);
        *pos = p + 4;
        return;
    }
    n = strlen(src);
    if (p + 8 >= cap) {         /* the caller keeps room for this */
        memcpy(dst + p, "\"...\"", 5);
        *pos = p + 5;
        return;
    }
    dst[p++] = '"';
    while (i < n) {
        unsigned char c = s[i];
        size_t u = c >= 0x80 ? log_utf8_len(s + i, n - i) : 1;
        size_t need = c < 0x20 || c == 0x7F ? 6
                      : c == '"' || c == '\\' ? 2
                      : u == 0 ? 3 : u;

        if (i >= max || p + need + 4 >= cap) {
            memcpy(dst + p, "...", 3);
            p += 3;
            break;
        }
        if (c < 0x20 || c == 0x7F) {
            memcpy(dst + p, "\\u00", 4);
            dst[p + 4] = hex[c >> 4];
            dst[p + 5] = hex[c & 0xF];
        } else if (c == '"' || c == '\\') {
            dst[p] = '\\';
            dst[p + 1] = (char)c;
        } else if (u == 0) {
            memcpy(dst + p, "\xEF\xBF\xBD", 3);     /* U+FFFD */
            u = 1;
        } else {
            memcpy(dst + p, s + i, u);
        }
        p += need;
        i += u;
    }
    dst[p++] = '"';
    *pos = p;
}

/* The JSON form of a request line into line (LOG_LINE_MAX); its length. */
static size_t
log_request_json(char *line, const char *ts, const char *key_name,
                 const char *method, const char *path,
                 const char *client_id, unsigned status, long long usec,
                 const char *addr)
{
    /* The room kept at the end (256 bytes) always holds the names, the
     * numbers, the address and the closing brace. */
    size_t cap = LOG_LINE_MAX - 256, pos = 0;
    int n;

    n = snprintf(line, LOG_LINE_MAX, "{\"time\":\"%s\",\"key\":", ts);
    pos = n > 0 ? (size_t)n : 0;
    log_json_str(line, cap, &pos, key_name, LOG_FIELD_MAX);
    memcpy(line + pos, ",\"method\":", 10);
    pos += 10;
    log_json_str(line, cap, &pos, method, 32);
    memcpy(line + pos, ",\"path\":", 8);
    pos += 8;
    log_json_str(line, cap, &pos, path, LOG_FIELD_MAX);
    memcpy(line + pos, ",\"client\":", 10);
    pos += 10;
    log_json_str(line, cap, &pos, client_id, 64);
    n = snprintf(line + pos, LOG_LINE_MAX - pos,
                 ",\"status\":%u,\"us\":%lld,\"addr\":", status, usec);
    pos += n > 0 ? (size_t)n : 0;
    log_json_str(line, LOG_LINE_MAX - 3, &pos, addr, 64);
    line[pos++] = '}';
    line[pos++] = '\n';
    return pos;
}

/*
 * One request line, to the request log (one write(2)) and, unless echo is
 * off, to stderr. All strings are borrowed; method, path and the ids may
 * come from the client and are escaped; NULL shows as "-" (text) or null
 * (JSON).
 */
void
log_request(const char *key_name, const char *method, const char *path,
            const char *client_id, unsigned status, long long usec,
            const char *addr)
{
    char line[LOG_LINE_MAX], ts[96];
    size_t pos;
    int e = errno, n;

    log_timestamp(ts, sizeof ts);
    if (__atomic_load_n(&log_req_format, __ATOMIC_RELAXED) == LOG_FMT_JSON) {
        pos = log_request_json(line, ts, key_name, method, path, client_id,
                               status, usec, addr);
        goto write;
    }
    if (key_name == NULL)
        key_name = "-";
    if (method == NULL)
        method = "-";
    if (path == NULL)
        path = "-";
    if (client_id == NULL)
        client_id = "-";
    if (addr == NULL)
        addr = "-";
    n = snprintf(line, sizeof line, "%s key=", ts);
    pos = n > 0 ? (size_t)n : 0;
    /* The room kept at the end (128 bytes) always holds status, time and
     * the address. */
    log_escape(line, sizeof line - 128, &pos, key_name, strlen(key_name),
               LOG_FIELD_MAX, 1);
    line[pos++] = ' ';
    log_escape(line, sizeof line - 128, &pos, method, strlen(method), 32, 1);
    line[pos++] = ' ';
    log_escape(line, sizeof line - 128, &pos, path, strlen(path),
               LOG_FIELD_MAX, 1);
    n = snprintf(line + pos, sizeof line - pos, " client=");
    pos += n > 0 ? (size_t)n : 0;
    log_escape(line, sizeof line - 128, &pos, client_id, strlen(client_id),
               64, 1);
    n = snprintf(line + pos, sizeof line - pos, " %u %lldus addr=", status,
                 usec);
    pos += n > 0 ? (size_t)n : 0;
    log_escape(line, sizeof line - 2, &pos, addr, strlen(addr), 64, 1);
    line[pos++] = '\n';
write:
    pthread_mutex_lock(&log_mtx);
    if (log_flusher_state == 0) {
        sigset_t all, old;

        /* The flusher takes no signals: they stay with the threads that
         * wait for them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        log_flusher_state = pthread_create(&log_flusher, NULL,
                                           log_flusher_run, NULL) == 0 ? 1
                                                                      : 2;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (log_flusher_state != 1) {
        log_flush_locked();
        if (log_req_fd != -1)
            log_write_all(log_req_fd, line, pos);
        if (__atomic_load_n(&log_req_echo, __ATOMIC_RELAXED))
            log_write_all(STDERR_FILENO, line, pos);
    } else {
        if (log_pend_len + pos > sizeof log_pend)
            log_flush_locked();         /* full: this thread writes */
        memcpy(log_pend + log_pend_len, line, pos);
        if (log_pend_len == 0)
            pthread_cond_signal(&log_cv);
        log_pend_len += pos;
    }
    pthread_mutex_unlock(&log_mtx);
    errno = e;
}
