/*
 * guard.c - settings, client addresses, trusted proxies and bounded
 * tables of token buckets and failure counters (see guard.h).
 *
 * A table is an array of groups of 8 slots, each group behind its own
 * mutex: an id hashes (with a random seed, so nobody can aim at a group) to
 * one group; a new id takes an empty slot or evicts the slot touched least
 * recently. Eviction forgets a bucket (it comes back full) or a failure
 * count: an attacker who cycles through more addresses than the table
 * holds only ever loses state, and memory stays what it was at start-up.
 */
#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- settings ------------------------------------------------------- */

/* *out from the environment variable name, if set, in [min, max]. */
static int
env_uint(const char *name, unsigned *out, unsigned min, unsigned max,
         char *err, size_t errlen)
{
    const char *v = getenv(name);
    unsigned long long n = 0;
    const char *p;

    if (v == NULL || v[0] == '\0')
        return 0;
    for (p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || p - v > 9)
            goto bad;
        n = n * 10 + (unsigned)(*p - '0');
    }
    if (n < min || n > max)
        goto bad;
    *out = (unsigned)n;
    return 0;
bad:
    snprintf(err, errlen, "%s: \"%.32s\" is not a whole number from %u to %u",
             name, v, min, max);
    return -1;
}

/* Fill c with the defaults, then the environment; 0 or -1 (err). */
int
guard_cfg_from_env(struct guard_cfg *c, char *err, size_t errlen)
{
    const char *v;

    memset(c, 0, sizeof(*c));
    c->gc_header_timeout = 10;
    c->gc_body_timeout_base = 10;
    c->gc_rate_key = 200;
    c->gc_rate_ip = 400;
    c->gc_auth_fail_max = 10;
    v = getenv("TRUSTED_PROXIES");
    c->gc_trusted = v != NULL && v[0] != '\0' ? v : NULL;
    /* Behind a proxy every connection comes from the proxy. */
    c->gc_per_ip_conns = c->gc_trusted != NULL ? 0 : 32;
    if (env_uint("HEADER_TIMEOUT", &c->gc_header_timeout, 1, 3600, err,
                 errlen) < 0 ||
        env_uint("BODY_TIMEOUT_BASE", &c->gc_body_timeout_base, 1, 3600, err,
                 errlen) < 0 ||
        env_uint("MAX_CONNECTIONS_PER_IP", &c->gc_per_ip_conns, 0, 100000,
                 err, errlen) < 0 ||
        env_uint("RATE_LIMIT_KEY", &c->gc_rate_key, 0, 1000000, err,
                 errlen) < 0 ||
        env_uint("RATE_LIMIT_IP", &c->gc_rate_ip, 0, 1000000, err, errlen) <
            0 ||
        env_uint("AUTH_FAIL_LIMIT", &c->gc_auth_fail_max, 0, 1000000, err,
                 errlen) < 0)
        return -1;
    c->gc_burst_key = 2 * c->gc_rate_key;
    c->gc_burst_ip = 2 * c->gc_rate_ip;
    if (env_uint("RATE_BURST_KEY", &c->gc_burst_key, 1, 2000000, err,
                 errlen) < 0 ||
        env_uint("RATE_BURST_IP", &c->gc_burst_ip, 1, 2000000, err, errlen) <
            0)
        return -1;
    v = getenv("LOG_FORMAT");
    c->gc_log_format = v != NULL && v[0] != '\0' ? v : "text";
    if (strcmp(c->gc_log_format, "text") != 0 &&
        strcmp(c->gc_log_format, "json") != 0) {
        snprintf(err, errlen, "LOG_FORMAT: \"%.32s\" is not text or json",
                 c->gc_log_format);
        return -1;
    }
    return 0;
}

/* ---- addresses ------------------------------------------------------ */

static void
addr_v4(struct guard_addr *a, const void *in4)
{
    memset(a->la_b, 0, 10);
    a->la_b[10] = 0xff;
    a->la_b[11] = 0xff;
    memcpy(a->la_b + 12, in4, 4);
}

static int
addr_is_v4(const struct guard_addr *a)
{
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return memcmp(a->la_b, pfx, 12) == 0;
}

/* Parse an IPv4 or IPv6 literal of n bytes; 0 or -1. */
int
guard_addr_parse(const char *s, size_t n, struct guard_addr *a)
{
    char buf[GUARD_ADDR_STRLEN];
    struct in_addr in4;

    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &in4) == 1) {
        addr_v4(a, &in4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, a->la_b) == 1 ? 0 : -1;
}

/* The address of an AF_INET/AF_INET6 sockaddr; else (or NULL) ::. */
void
guard_addr_from_sockaddr(const struct sockaddr *sa, struct guard_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)
            (const void *)sa;

        addr_v4(a, &sin->sin_addr);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)
            (const void *)sa;

        memcpy(a->la_b, &sin6->sin6_addr, 16);
    }
}

/* a as text into buf; IPv4 (also mapped) in dotted form. */
void
guard_addr_format(const struct guard_addr *a, char *buf, size_t len)
{
    const char *r;

    if (addr_is_v4(a))
        r = inet_ntop(AF_INET, a->la_b + 12, buf, (socklen_t)len);
    else
        r = inet_ntop(AF_INET6, a->la_b, buf, (socklen_t)len);
    if (r == NULL && len > 0)
        snprintf(buf, len, "-");
}

/* ---- trusted proxies ------------------------------------------------ */

struct cidr {
    struct guard_addr ci_net;
    unsigned ci_bits;               /* prefix length over the 128 bits */
};

struct guard_cidrs {
    size_t cs_n;
    struct cidr cs_v[];
};

/* Parse "addr" or "addr/bits"; 0 or -1. */
static int
cidr_parse(const char *s, size_t n, struct cidr *c)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash != NULL ? (size_t)(slash - s) : n;
    unsigned long bits;
    unsigned i, max;
    char *end, num[8];

    if (guard_addr_parse(s, alen, &c->ci_net) < 0)
        return -1;
    max = addr_is_v4(&c->ci_net) ? 32 : 128;
    bits = max;
    if (slash != NULL) {
        size_t bl = n - alen - 1;

        if (bl == 0 || bl >= sizeof(num))
            return -1;
        memcpy(num, slash + 1, bl);
        num[bl] = '\0';
        if (num[0] < '0' || num[0] > '9')
            return -1;
        bits = strtoul(num, &end, 10);
        if (*end != '\0' || bits > max)
            return -1;
    }
    c->ci_bits = (unsigned)bits + (max == 32 ? 96 : 0);
    /* Clear the host bits, so matching compares whole bytes. */
    for (i = c->ci_bits; i < 128; i++)
        c->ci_net.la_b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return 0;
}

/* Parse a comma/space separated list; NULL with err on a bad entry. */
struct guard_cidrs *
guard_cidrs_parse(const char *spec, char *err, size_t errlen)
{
    struct guard_cidrs *c;
    size_t cap = 1;
    const char *p;

    if (spec == NULL)
        spec = "";
    for (p = spec; *p; p++)
        cap += *p == ',' || *p == ' ';
    if ((c = calloc(1, sizeof(*c) + cap * sizeof(c->cs_v[0]))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (p = spec; *p;) {
        size_t n = strcspn(p, ", \t");

        if (n > 0) {
            if (cidr_parse(p, n, &c->cs_v[c->cs_n]) < 0) {
                snprintf(err, errlen,
                         "TRUSTED_PROXIES: \"%.*s\" is not an IP address or"
                         " network (a.b.c.d, a.b.c.d/n, IPv6[/n])",
                         (int)(n > 64 ? 64 : n), p);
                free(c);
                return NULL;
            }
            c->cs_n++;
        }
        p += n;
        if (*p)
            p++;
    }
    return c;
}

/* 1 if a is in one of c's networks. */
int
guard_cidrs_match(const struct guard_cidrs *c, const struct guard_addr *a)
{
    size_t i;

    if (c == NULL)
        return 0;
    for (i = 0; i < c->cs_n; i++) {
        const struct cidr *ci = &c->cs_v[i];
        unsigned full = ci->ci_bits / 8, rest = ci->ci_bits % 8;

        if (memcmp(ci->ci_net.la_b, a->la_b, full) != 0)
            continue;
        if (rest != 0 &&
            ((a->la_b[full] ^ ci->ci_net.la_b[full]) &
             (uint8_t)(0xff00u >> rest)) != 0)
            continue;
        return 1;
    }
    return 0;
}

/* Entries in c (0 for NULL). */
size_t
guard_cidrs_count(const struct guard_cidrs *c)
{
    return c != NULL ? c->cs_n : 0;
}

/* Free c; NULL-safe. */
void
guard_cidrs_free(struct guard_cidrs *c)
{
    free(c);
}

/* The client behind a chain of trusted proxies (see guard.h). */
void
guard_client_addr(const struct guard_cidrs *trusted,
                   const struct guard_addr *peer, const char *const *xff,
                   size_t n, struct guard_addr *out)
{
    struct guard_addr cur = *peer, next;
    size_t h;

    *out = cur;
    if (!guard_cidrs_match(trusted, peer))
        return;
    for (h = n; h-- > 0;) {
        const char *s = xff[h], *end;

        if (s == NULL)
            continue;
        end = s + strlen(s);
        while (end > s) {
            const char *beg = end;

            while (beg > s && beg[-1] != ',')
                beg--;
            if (guard_addr_parse(beg, (size_t)(end - beg), &next) < 0) {
                *out = cur;         /* the last hop we could trust */
                return;
            }
            cur = next;
            if (!guard_cidrs_match(trusted, &cur)) {
                *out = cur;
                return;
            }
            end = beg > s ? beg - 1 : s;
        }
    }
    *out = cur;     /* every hop trusted: the left-most */
}

/* ---- bounded tables ------------------------------------------------- */

#define GROUP 8                 /* slots a group (one mutex) */
#define ID_MAX 24               /* bytes of id kept; longer ids hashed */

struct slot {
    uint8_t s_id[ID_MAX];
    uint8_t s_len;              /* 0: empty */
    int64_t s_seen;             /* last use, us */
    int64_t s_start;            /* fail: window start; bucket: refill time */
    double s_val;               /* tokens, or failures */
};

struct guard_table {
    size_t lt_groups;           /* a power of two */
    uint64_t lt_seed;
    pthread_mutex_t *lt_mu;     /* one a group */
    struct slot *lt_slots;      /* lt_groups * GROUP */
};

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t
hash_bytes(uint64_t seed, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t w;

        memcpy(&w, b + i, 8);
        h = mix64(h ^ w);
    }
    if (i < n) {
        uint64_t w = 0;

        memcpy(&w, b + i, n - i);
        h = mix64(h ^ w ^ 0xff);
    }
    return mix64(h);
}

/* A table of at least slots entries; NULL when out of memory. */
struct guard_table *
guard_table_new(size_t slots)
{
    struct guard_table *t = NULL;
    size_t g = 8, i;

    while (g * GROUP < slots && g < ((size_t)1 << 24))
        g *= 2;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        goto fail;
    t->lt_groups = g;
    if ((t->lt_mu = calloc(g, sizeof(*t->lt_mu))) == NULL ||
        (t->lt_slots = calloc(g * GROUP, sizeof(*t->lt_slots))) == NULL)
        goto fail;
    for (i = 0; i < g; i++)
        pthread_mutex_init(&t->lt_mu[i], NULL);
    if (getrandom(&t->lt_seed, sizeof(t->lt_seed), GRND_NONBLOCK) !=
        (ssize_t)sizeof(t->lt_seed))
        t->lt_seed = mix64((uint64_t)time(NULL) ^ (uintptr_t)t);
    return t;
fail:
    if (t != NULL) {
        free(t->lt_mu);
        free(t);
    }
    return NULL;
}

/* Free t; NULL-safe. */
void
guard_table_free(struct guard_table *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->lt_groups; i++)
        pthread_mutex_destroy(&t->lt_mu[i]);
    free(t->lt_mu);
    free(t->lt_slots);
    free(t);
}

/*
 * The slot of id in its group, locked (unlock with *g's mutex); *fresh is
 * 1 when the slot was empty or evicted and now holds id.
 */
static struct slot *
slot_get(struct guard_table *t, const void *id, size_t len, int64_t now,
         size_t *gi, int *fresh)
{
    uint8_t key[ID_MAX];
    uint64_t h = hash_bytes(t->lt_seed, id, len);
    struct slot *s, *victim;
    size_t i, klen;

    if (len <= ID_MAX) {
        memcpy(key, id, len);
        klen = len;
    } else {
        memcpy(key, id, ID_MAX - 8);
        memcpy(key + ID_MAX - 8, &h, 8);
        klen = ID_MAX;
    }
    if (klen == 0)
        key[0] = 0, klen = 1;
    *gi = (size_t)h & (t->lt_groups - 1);
    pthread_mutex_lock(&t->lt_mu[*gi]);
    s = &t->lt_slots[*gi * GROUP];
    victim = s;
    for (i = 0; i < GROUP; i++) {
        if (s[i].s_len == klen && memcmp(s[i].s_id, key, klen) == 0) {
            *fresh = 0;
            s[i].s_seen = now;
            return &s[i];
        }
        if (victim->s_len != 0 &&
            (s[i].s_len == 0 || s[i].s_seen < victim->s_seen))
            victim = &s[i];
    }
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->s_id, key, klen);
    victim->s_len = (uint8_t)klen;
    victim->s_seen = now;
    *fresh = 1;
    return victim;
}

/* One token from id's bucket: 0, or seconds until one is back. */
unsigned
guard_take(struct guard_table *t, const void *id, size_t len,
            unsigned rate, unsigned burst, int64_t now_us)
{
    struct slot *s;
    size_t g;
    int fresh;
    unsigned wait = 0;
    double tok;

    if (rate == 0)
        return 0;
    if (burst == 0)
        burst = 1;
    s = slot_get(t, id, len, now_us, &g, &fresh);
    if (fresh) {
        tok = burst;
    } else {
        tok = s->s_val;
        if (now_us > s->s_start)
            tok += (double)(now_us - s->s_start) * rate / 1e6;
        if (tok > burst)
            tok = burst;
    }
    s->s_start = now_us;
    if (tok >= 1.0) {
        tok -= 1.0;
    } else {
        double w = (1.0 - tok) / rate;

        wait = (unsigned)w + ((double)(unsigned)w < w);
        if (wait == 0)
            wait = 1;
    }
    s->s_val = tok;
    pthread_mutex_unlock(&t->lt_mu[g]);
    return wait;
}

/* Count a failure in id's window; returns failures in the window. */
unsigned
guard_fail(struct guard_table *t, const void *id, size_t len,
            unsigned window_s, int64_t now_us, unsigned *retry_s)
{
    int64_t win = (int64_t)window_s * 1000000, left;
    struct slot *s;
    size_t g;
    int fresh;
    unsigned n;

    s = slot_get(t, id, len, now_us, &g, &fresh);
    if (fresh || now_us - s->s_start >= win) {
        s->s_start = now_us;
        s->s_val = 0;
    }
    s->s_val += 1;
    n = (unsigned)s->s_val;
    left = win - (now_us - s->s_start);
    pthread_mutex_unlock(&t->lt_mu[g]);
    *retry_s = (unsigned)((left + 999999) / 1000000);
    if (*retry_s == 0)
        *retry_s = 1;
    return n;
}
