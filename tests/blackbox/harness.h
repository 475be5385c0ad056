/*
 * harness.h - black-box test harness for patriot-api: a temporary
 * directory with a keys.json, the real binary started on a free port, an
 * HTTP client (libcurl) and helpers to wait for and parse outbox files
 * (libxml2).
 *
 * Functions that can fail report it through cmocka (fail_msg), so they
 * only return on success unless their comment says otherwise.
 */
#pragma once

#include <jansson.h>
#include <libxml/tree.h>
#include <stddef.h>
#include <sys/types.h>

/* The keys written into every test directory's keys.json. */
#define KEY_A           "secure-api-key"            /* Alarm24, BASE11 */
#define KEY_B           "tenant-b-secret-7f3a91"    /* TenantB, BASE22 */
#define KEY_HASHED      "hashed-tenant-secret-42"   /* Hashed1, key_sha256 */
#define KEY_HASHED_SHA \
    "5c6c7b0b60e856003d0917fcc8901b945662e20c5ab891afb2269d0293c0fdb3"
#define KEY_DISABLED    "disabled-key-secret-0c1d"  /* Disabled1 */
#define KEY_EXPIRED     "expired-key-secret-9e8f"   /* Expired1 */
#define KEY_UNKNOWN     "no-such-key-anywhere-5b5b"

#define NAME_A          "Alarm24"
#define NAME_B          "TenantB"
#define NAME_HASHED     "Hashed1"
#define PORT_A          "BASE11"
#define PORT_B          "BASE22"
#define PORT_HASHED     "BASE33"

struct server {
    char sv_dir[256];       /* temporary directory, owned by the harness */
    pid_t sv_pid;           /* 0 when not running */
    unsigned sv_port;
    char sv_base[64];       /* "http://127.0.0.1:PORT" */
    void *sv_curl;          /* CURL *, kept for connection reuse */
};

/*
 * Create a fresh temporary directory under /tmp holding keys.json, and
 * remember it in s (which is zeroed first). Does not start the server.
 */
void server_init_dir(struct server *s);

/* Start the binary ($PATRIOT_API_BIN) on s->sv_dir; fills port and base. */
void server_start(struct server *s);

/* SIGTERM, wait, and assert a clean exit (status 0). */
void server_stop(struct server *s);

/* SIGKILL and reap. */
void server_kill9(struct server *s);

/* server_stop() then server_start() on the same directory. */
void server_restart(struct server *s);

/*
 * Kill (SIGKILL) if still running and remove the directory, unless the
 * environment has PATRIOT_KEEP_TMP set. Safe on a zeroed struct.
 */
void server_destroy(struct server *s);

/* rel inside the server's directory, into buf (len bytes); returns buf. */
const char *server_path(const struct server *s, const char *rel, char *buf,
                        size_t len);

struct resp {
    long rs_status;
    char *rs_body;          /* NUL-terminated raw body */
    size_t rs_len;
    json_t *rs_json;        /* parsed body, or NULL if empty/not JSON */
    char *rs_headers;       /* raw header block of the final response */
};

/*
 * One request. headers is a NULL-terminated array of "Name: value" lines
 * (may be NULL); body may be NULL (then none is sent). The caller frees
 * the result with resp_free(). Transport errors fail the test.
 */
struct resp *req(struct server *s, const char *method, const char *path,
                 const char *const *headers, const char *body);

/* Same, with a body of len bytes (may contain NUL). */
struct resp *req_len(struct server *s, const char *method, const char *path,
                     const char *const *headers, const char *body,
                     size_t len);

/*
 * The value of response header name (case-insensitive), copied into buf;
 * NULL when absent.
 */
const char *resp_header(const struct resp *r, const char *name, char *buf,
                        size_t len);

void resp_free(struct resp *r);

/*
 * Send raw bytes on a new TCP connection and read the reply until the
 * server closes or timeout_ms passes; returns the status code of the
 * reply (0 if none could be read). If out is not NULL, the reply text is
 * stored there (caller frees).
 */
int raw_request(const struct server *s, const char *data, size_t len,
                int timeout_ms, char **out);

/* ---- outbox ---------------------------------------------------------- */

/* XML_DIR/<key_name>/<cid>.xml into buf. */
const char *outbox_path(const struct server *s, const char *key_name,
                        long long cid, char *buf, size_t len);

/* Poll (5 s) until the file exists / is gone. 0 on success, -1 timeout. */
int outbox_wait_exists(const struct server *s, const char *key_name,
                       long long cid);
int outbox_wait_gone(const struct server *s, const char *key_name,
                     long long cid);

/*
 * Poll (5 s) until the outbox file exists, parses strictly and the XPath
 * string(expr) equals want. Returns the parsed document (free with
 * xmlFreeDoc) or NULL on timeout; on timeout the last value seen is
 * printed.
 */
xmlDocPtr outbox_wait_xpath(const struct server *s, const char *key_name,
                            long long cid, const char *expr,
                            const char *want);

/*
 * Parse a file strictly (no recovery, no network, any error or warning
 * refuses it). Returns NULL on failure.
 */
xmlDocPtr xml_parse_strict(const char *path);

/* string(expr) evaluated on doc; caller frees with free(). */
char *xml_string(xmlDocPtr doc, const char *expr);

/* count(expr). */
long xml_count(xmlDocPtr doc, const char *expr);

/*
 * Names of the element children of the first node matching expr, stored
 * in names (pointers into doc, valid while doc lives). Returns how many
 * (at most max).
 */
size_t xml_child_names(xmlDocPtr doc, const char *expr, const char **names,
                       size_t max);

/* ---- files ----------------------------------------------------------- */

/* Whole file, NUL-terminated, caller frees; NULL if it cannot be read. */
char *file_read(const char *path, size_t *len);

/* Write buf to path (truncate). 0 or -1. */
int file_write(const char *path, const char *buf, size_t len);

/* Poll (5 s) until the file contains needle. 0 found, -1 timeout. */
int file_wait_contains(const char *path, const char *needle);

/* Milliseconds on a monotonic clock. */
long long now_ms(void);

/* Resident memory of the running server in kB (VmRSS), 0 if unknown. */
size_t server_rss_kb(struct server *s);
