/*
 * guard.h - the abuse limits of the HTTP layer: their settings (read from
 * the environment), client addresses and trusted proxies (X-Forwarded-For),
 * and bounded tables of token buckets and failure counters.
 *
 * Nothing here knows about libmicrohttpd; http.c wires it in. Every table
 * has a fixed number of slots chosen at creation: an attacker cycling
 * addresses evicts old entries, it never grows memory.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The settings, each from the environment variable named beside it. */
struct guard_cfg {
    unsigned gc_header_timeout;     /* HEADER_TIMEOUT s; 10 */
    unsigned gc_body_timeout_base;  /* BODY_TIMEOUT_BASE s; 10 (+1 s per
                                       16 KiB of body) */
    unsigned gc_per_ip_conns;       /* MAX_CONNECTIONS_PER_IP; 32, or 0
                                       (off) when TRUSTED_PROXIES is set */
    unsigned gc_rate_key;           /* RATE_LIMIT_KEY req/s; 200; 0 = off */
    unsigned gc_burst_key;          /* RATE_BURST_KEY; 2 x rate */
    unsigned gc_rate_ip;            /* RATE_LIMIT_IP req/s; 400; 0 = off */
    unsigned gc_burst_ip;           /* RATE_BURST_IP; 2 x rate */
    unsigned gc_auth_fail_max;      /* AUTH_FAIL_LIMIT a minute; 10; 0 =
                                       off */
    const char *gc_trusted;         /* TRUSTED_PROXIES, or NULL */
    const char *gc_log_format;      /* LOG_FORMAT: "text" or "json" */
};

/* Length of an address in text, NUL included (IPv6 with IPv4 tail). */
#define GUARD_ADDR_STRLEN 46

/* An IPv4 or IPv6 address; IPv4 is kept as ::ffff:a.b.c.d. */
struct guard_addr {
    uint8_t la_b[16];
};

/*
 * Fill c with the defaults, then with the environment. Returns 0, or -1
 * with a message naming the variable in err.
 */
int guard_cfg_from_env(struct guard_cfg *c, char *err, size_t errlen);

/* Parse n bytes of an IPv4 or IPv6 literal (no port, no brackets, spaces
 * around ignored). Returns 0, or -1 if it is not one. */
int guard_addr_parse(const char *s, size_t n, struct guard_addr *a);

/* The address of an AF_INET or AF_INET6 socket address; anything else
 * gives ::. sa may be NULL. */
void guard_addr_from_sockaddr(const struct sockaddr *sa,
                               struct guard_addr *a);

/* a in text ("192.0.2.1", "2001:db8::1") into buf (GUARD_ADDR_STRLEN). */
void guard_addr_format(const struct guard_addr *a, char *buf,
                        size_t len);

/* A list of addresses and networks (TRUSTED_PROXIES). */
struct guard_cidrs;

/*
 * Parse "10.0.0.1, 192.168.0.0/16, ::1" (commas and/or spaces). NULL or
 * "" gives an empty list. Returns a new list (free with
 * guard_cidrs_free), or NULL with a message naming the bad entry in err.
 */
struct guard_cidrs *guard_cidrs_parse(const char *spec, char *err,
                                        size_t errlen);

/* 1 if a is in one of the list's networks, else 0. c may be NULL. */
int guard_cidrs_match(const struct guard_cidrs *c,
                       const struct guard_addr *a);

/* Number of entries; c may be NULL. */
size_t guard_cidrs_count(const struct guard_cidrs *c);

/* NULL-safe. */
void guard_cidrs_free(struct guard_cidrs *c);

/*
 * The client's address: the peer, unless the peer is a trusted proxy; then
 * the X-Forwarded-For values (xff[0..n-1], in the order the headers came;
 * each a comma-separated list) are walked from the right, skipping trusted
 * addresses, and the first untrusted one is the client. An entry that does
 * not parse stops the walk: the last trusted hop is then the client.
 * Writes the result to out.
 */
void guard_client_addr(const struct guard_cidrs *trusted,
                        const struct guard_addr *peer,
                        const char *const *xff, size_t n,
                        struct guard_addr *out);

/* A fixed-size table of token buckets or failure counters. */
struct guard_table;

/* A table of at least slots entries (rounded up to a power of two, at
 * least 64), keyed with a random seed. NULL when out of memory. */
struct guard_table *guard_table_new(size_t slots);

/* NULL-safe. */
void guard_table_free(struct guard_table *t);

/*
 * Take one token from the bucket of id (len bytes, any content) that
 * refills at rate per second up to burst. now_us is a monotonic time.
 * Returns 0 when the request may go on, else the whole seconds (>= 1)
 * until a token is back (for Retry-After). Thread-safe.
 */
unsigned guard_take(struct guard_table *t, const void *id, size_t len,
                     unsigned rate, unsigned burst, int64_t now_us);

/*
 * Count one failure for id in a window of window_s seconds that starts at
 * its first failure. Returns how many failures the window now holds, and
 * in *retry_s the seconds left in it. Thread-safe.
 */
unsigned guard_fail(struct guard_table *t, const void *id, size_t len,
                     unsigned window_s, int64_t now_us, unsigned *retry_s);
