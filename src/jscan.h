/*
 * jscan.h - reading an existing client_state.json one entry at a time
 * (never the whole tree): '{', then "key": value pairs, then '}'. A value
 * is taken raw (balanced brackets, strings with escapes), at most
 * JSCAN_ENTRY_MAX bytes. Used by patriot-combine (combine.c), which
 * rewrites the file.
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#define JSCAN_ENTRY_MAX (1u << 20)

/* A reader: after jscan_next returned 1, j_key is the key with its
 * quotes (j_klen bytes) and j_val the raw value (j_vlen bytes), both
 * NUL-terminated and valid until the next call. */
struct jscan {
    FILE *j_f;
    char *j_key, *j_val;
    size_t j_klen, j_vlen, j_kcap, j_vcap;
};

/* Open path into j (j need not be initialised): 0 ready, 1 empty object
 * or no file, -1 not a JSON object (or cannot open). Close with
 * jscan_close in every case. */
int jscan_open(struct jscan *j, const char *path);

/* The next entry: 1 (j_key with quotes, j_val raw), 0 at the end, -1
 * malformed. */
int jscan_next(struct jscan *j);

/* Close the file, free the buffers, zero j (a zeroed j is fine too). */
void jscan_close(struct jscan *j);

/* A key that is a plain id ("[A-Za-z0-9_-]+"): copied without quotes to
 * id (1), else 0. */
int jscan_plain_id(const struct jscan *j, char *id, size_t idlen);
