/*
 * log.c - diagnostics to stderr and the request log file (see log.h).
 *
 * Every line is formatted in full first and then written with one write(2)
 * while holding one mutex, so lines from different threads never interleave
 * (and, with O_APPEND, never interleave with other writers of the request
 * log either). Control characters in messages are escaped as \xHH, so a
 * value taken from a request cannot forge a second log line. Every function
 * here preserves errno.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048           /* bytes of one line, newline included */
#define LOG_FIELD_MAX 512           /* bytes shown of one request field */

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static int log_req_fd = -1;         /* request log; under log_mtx */
static int log_min_level = LOG_LVL_INFO;    /* atomic */
static int log_req_echo = 1;                /* atomic */

static const char *const log_level_names[] = {
    [LOG_LVL_DEBUG] = "debug",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_ERR] = "error",
};

/* "2026-11-26T08:00:00.123Z" into buf (96 bytes: room for any tm). */
static void
log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
        gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(buf, len, "0000-00-00T00:00:00.000Z");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
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
    int e = errno;

    pthread_mutex_lock(&log_mtx);
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

/*
 * One request line, to the request log (one write(2)) and, unless echo is
 * off, to stderr. All strings are borrowed; method, path and the ids may
 * come from the client and are escaped; NULL shows as "-".
 */
void
log_request(const char *key_name, const char *method, const char *path,
            const char *client_id, unsigned status, long long usec)
{
    char line[LOG_LINE_MAX], ts[96];
    size_t pos;
    int e = errno, n, echo;

    if (key_name == NULL)
        key_name = "-";
    if (method == NULL)
        method = "-";
    if (path == NULL)
        path = "-";
    if (client_id == NULL)
        client_id = "-";
    log_timestamp(ts, sizeof ts);
    n = snprintf(line, sizeof line, "%s key=", ts);
    pos = n > 0 ? (size_t)n : 0;
    /* The room kept at the end (64 bytes) always holds status and time. */
    log_escape(line, sizeof line - 64, &pos, key_name, strlen(key_name),
               LOG_FIELD_MAX, 1);
    line[pos++] = ' ';
    log_escape(line, sizeof line - 64, &pos, method, strlen(method), 32, 1);
    line[pos++] = ' ';
    log_escape(line, sizeof line - 64, &pos, path, strlen(path),
               LOG_FIELD_MAX, 1);
    n = snprintf(line + pos, sizeof line - pos, " client=");
    pos += n > 0 ? (size_t)n : 0;
    log_escape(line, sizeof line - 64, &pos, client_id, strlen(client_id),
               64, 1);
    n = snprintf(line + pos, sizeof line - pos, " %u %lldus\n", status,
                 usec);
    if (n > 0)
        pos += (size_t)n < sizeof line - pos ? (size_t)n
                                               : sizeof line - pos - 1;
    if (line[pos - 1] != '\n')
        line[pos - 1] = '\n';
    echo = __atomic_load_n(&log_req_echo, __ATOMIC_RELAXED);
    pthread_mutex_lock(&log_mtx);
    if (log_req_fd != -1)
        log_write_all(log_req_fd, line, pos);
    if (echo)
        log_write_all(STDERR_FILENO, line, pos);
    pthread_mutex_unlock(&log_mtx);
    errno = e;
}
