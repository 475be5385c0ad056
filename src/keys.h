/*
 * keys.h - the API keys of patriot-api, loaded from keys.json.
 *
 * A keyset is an immutable, reference-counted snapshot of keys.json. Each key
 * names one tenant: its own data set (key_name), its Patriot port suffix and
 * the extra fields that go into every XML Row it owns. Secrets are kept only
 * as SHA-256 digests; a bearer token is looked up by hashing it and comparing
 * the digest with every entry in constant time.
 */
#pragma once

#include <stddef.h>
#include <time.h>

#define KEYS_NAME_MAX 64        /* key_name and port: [A-Za-z0-9_-]{1,64} */
#define KEYS_HASH_LEN 32        /* SHA-256 */

struct key_field {              /* one xml_fields entry, in file order */
    char *kf_name;              /* XML element name (checked) */
    char *kf_value;             /* text (checked: XML 1.0 characters) */
};

struct key_grouping {           /* one client_groupings entry */
    char *kg_description;
    char *kg_type_description;
    char *kg_allow_multiple;
};

struct key {
    char *k_name;               /* key_name: also the outbox folder name */
    char *k_port;               /* appended to client_id in <__id> */
    char *k_installer_name;
    char *k_installer_email;
    int k_enabled;
    time_t k_valid_to;          /* 0 = no expiry */
    unsigned char k_hash[KEYS_HASH_LEN];  /* SHA-256 of the secret */
    struct key_field *k_fields;
    size_t k_nfields;
    struct key_grouping *k_groupings;
    size_t k_ngroupings;
};

struct keyset;

/*
 * Load and validate keys.json at 'path'. On success returns a new keyset with
 * one reference, owned by the caller (release with keys_release()). On any
 * error returns NULL and writes one line naming the entry and the field into
 * err (NUL-terminated, at most errlen bytes). Never writes a secret into err.
 */
struct keyset *keys_load(const char *path, char *err, size_t errlen);

/* Parse keys.json held in memory; as keys_load(). */
struct keyset *keys_load_buffer(const char *buf, size_t len, char *err,
                                size_t errlen);

/* Take one more reference; returns ks. NULL-safe. */
struct keyset *keys_retain(struct keyset *ks);

/* Drop one reference; frees the keyset at zero. NULL-safe. */
void keys_release(struct keyset *ks);

/* Number of entries and the i-th entry (borrowed, valid while ks lives). */
size_t keys_count(const struct keyset *ks);
const struct key *keys_get(const struct keyset *ks, size_t i);

/* The entry named key_name, or NULL (borrowed). */
const struct key *keys_get_by_name(const struct keyset *ks,
                                   const char *key_name);

/*
 * Look up a bearer token of len bytes. Returns the entry (borrowed, valid
 * while ks lives) when a key matches, is enabled and valid_to is after now;
 * NULL otherwise. The time taken does not depend on which entry matches or
 * on how much of a digest matches.
 */
const struct key *keys_lookup(const struct keyset *ks, const char *token,
                              size_t len, time_t now);

/* SHA-256 of len bytes into out (KEYS_HASH_LEN bytes). */
void keys_sha256(const void *data, size_t len, unsigned char *out);

/* 1 if a and b (n bytes each) are equal, 0 if not, in time independent of
 * where they differ. */
int keys_equal_ct(const unsigned char *a, const unsigned char *b, size_t n);

/*
 * Overwrite (explicit_bzero) the plain "key" strings of a parsed keys.json
 * tree (borrowed; a JSON array of entries) before it is freed. Anything
 * else is left alone. NULL-safe.
 */
struct json_t;
void keys_wipe_json(struct json_t *root);
