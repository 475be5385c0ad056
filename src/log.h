/*
 * log.h - diagnostics to stderr (journald) and the request log file.
 *
 * Never pass a secret (API key, key hash, password) to any of these.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* Set the lowest level written to stderr (default LOG_LVL_INFO). */
void log_set_level(enum log_level lvl);

/*
 * Open (append, create 0640) the request log at path; NULL or "" writes
 * request lines to stderr only. Returns 0, or -1 with errno set.
 */
int log_open_request_log(const char *path);

/* Close the request log. Safe to call twice. */
void log_close(void);

/* Messages to stderr, one line each, with a timestamp and level.
 * log_warn appends ": strerror(errno)", log_warnx does not. Thread-safe. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum log_format {
    LOG_FMT_TEXT,       /* the default, see log_request */
    LOG_FMT_JSON,       /* one JSON object a line */
};

/* Set the request log's format (default LOG_FMT_TEXT). */
void log_set_format(enum log_format fmt);

/*
 * One request line to the request log and stderr. Text:
 * "2026-11-26T08:00:00.123Z key=Alarm24 PUT /clients client=9998 201 345us
 *  addr=192.0.2.7" (one line); JSON:
 * {"time":"2026-11-26T08:00:00.123Z","key":"Alarm24","method":"PUT",
 *  "path":"/clients","client":"9998","status":201,"us":345,
 *  "addr":"192.0.2.7"}
 * key_name, client_id and addr may be NULL ("-" in text, null in JSON).
 * Thread-safe.
 */
void log_request(const char *key_name, const char *method, const char *path,
                 const char *client_id, unsigned status, long long usec,
                 const char *addr);

/*
 * Milliseconds since the epoch as "2026-11-26T08:00:00.123Z" (UTC) into buf
 * (len bytes, NUL-terminated, truncated if short). Returns the length
 * written. Thread-safe; a negative time counts as the epoch.
 */
size_t log_format_utc_ms(int64_t ms, char *buf, size_t len);

/* If set to 0, request lines are not echoed to stderr (benchmarks). */
void log_set_request_echo(int on);
