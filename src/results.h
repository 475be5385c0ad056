/*
 * results.h - the results file Patriot writes after importing a batch:
 * decoding it to UTF-8 and finding the ids of its success lines (a line
 * holding RESULTS_PHRASE). Used by patriot-combine (combine.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RESULTS_PHRASE "Completed processing client"

/* A set of strings (open addressing, FNV-1a). Zeroed: empty. Keys are
 * borrowed. Free with results_set_free. */
struct results_set {
    const char **ss_key;        /* borrowed */
    size_t *ss_val;
    size_t ss_cap, ss_n;
};

/* FNV-1a (64 bits) of the string s: the set's hash, also the one the
 * ledger of combine.c keeps of each id. */
uint64_t results_hash(const char *s);

/* Free what t holds and zero it. */
void results_set_free(struct results_set *t);

/* 1 and *val (val may be NULL) if key is in t, else 0. */
int results_set_get(const struct results_set *t, const char *key,
                    size_t *val);

/* Index every id-like token of every success line of text into ok
 * (text modified in place: tokens NUL-terminated, ok borrows them;
 * text[len] must be NUL). 0 or -1 (no memory). */
int results_index(char *text, size_t len, struct results_set *ok);

/*
 * Decode a results file (UTF-8 with or without BOM, UTF-16LE/BE with BOM)
 * into malloc'ed UTF-8 (NUL-terminated, caller frees). NULL on no memory.
 */
char *combine_results_decode(const char *buf, size_t len, size_t *outlen);

/*
 * 1 if the decoded results text holds a line with the exact token id
 * (9998BASE11 does not match 19998BASE11) and "Completed processing
 * client"; 0 if not; -1 on no memory.
 */
int combine_results_ok(const char *text, size_t len, const char *id);
