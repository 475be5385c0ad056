/*
 * jtext.h - the store's canonical JSON texts changed without a tree.
 *
 * The store keeps a client's info, zones and users as canonical JSON
 * (model.h), as jansson's JSON_COMPACT dump writes it: info an object of
 * the table's fields in table order, zones and users arrays of flat objects
 * sorted by a number field ("Zone_No", "UserNo"). A change replaces,
 * inserts or removes the bytes it touches and leaves the rest as they are,
 * which gives the bytes that a jansson parse, change and dump gives (the
 * tests compare the two), without building the tree: that was a third of
 * the writer thread's time (docs/BENCHMARKS.md).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sbuf.h"

enum jtext_rc {
    JTEXT_OK = 0,
    JTEXT_EXISTS = 1,       /* insert of a number that is there */
    JTEXT_NOITEM = 2,       /* replace or remove of a number that is not */
    JTEXT_BAD = -1,         /* the text is not what the call reads */
    JTEXT_NOMEM = -2,
};

enum jtext_mode {
    JTEXT_UPSERT,           /* replace, or insert in order */
    JTEXT_REPLACE,          /* replace only: JTEXT_NOITEM if not there */
    JTEXT_INSERT,           /* insert only: JTEXT_EXISTS if there */
};

/*
 * Put elem (elen bytes, one compact JSON object whose field is no) into the
 * array text in arr, in place: replacing the element whose integer member
 * field equals no, or inserted before the first element whose number is
 * greater (an element without the field counts as 0). On anything but
 * JTEXT_OK arr is unchanged.
 */
enum jtext_rc jtext_list_put(struct sbuf *arr, const char *field, int64_t no,
                        const char *elem, size_t elen, enum jtext_mode mode);

/* Remove the element whose field equals no. JTEXT_OK, JTEXT_NOITEM,
 * JTEXT_BAD or JTEXT_NOMEM; arr unchanged unless JTEXT_OK. */
enum jtext_rc jtext_list_del(struct sbuf *arr, const char *field, int64_t no);

/*
 * Merge a PATCH into the stored object of table t in obj: patch (plen
 * bytes) is the validated partial object as compact JSON (null clears a
 * field). The result holds, in table order, each field of t that the patch
 * sets, else that the stored object has; fields t does not name are
 * dropped (model_merge does the same with trees). JTEXT_OK, JTEXT_BAD (obj
 * or patch not an object) or JTEXT_NOMEM; obj unchanged unless JTEXT_OK.
 */
enum jtext_rc jtext_merge(const struct mtable *t, struct sbuf *obj,
                          const char *patch, size_t plen);
