/*
 * jlist.h - a stored list of zones or users, changed as text.
 *
 * The store keeps a client's zones and users as canonical JSON (model.h):
 * a compact array of flat objects sorted by a number field ("Zone_No",
 * "UserNo"), as jansson's JSON_COMPACT dump writes it. A change to one
 * element replaces, inserts or removes that element's bytes and leaves the
 * others as they are, which gives the bytes a parse, change and dump with
 * jansson gives, without building the tree (that was a third of the writer
 * thread's time: docs/BENCHMARKS.md).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

enum jlist_rc {
    JLIST_OK = 0,
    JLIST_EXISTS = 1,       /* insert of a number that is there */
    JLIST_NOITEM = 2,       /* replace or remove of a number that is not */
    JLIST_BAD = -1,         /* the text is not an array of objects */
    JLIST_NOMEM = -2,
};

enum jlist_mode {
    JLIST_UPSERT,           /* replace, or insert in order */
    JLIST_REPLACE,          /* replace only: JLIST_NOITEM if not there */
    JLIST_INSERT,           /* insert only: JLIST_EXISTS if there */
};

/*
 * Put elem (elen bytes, one compact JSON object whose field is no) into the
 * array text in arr, in place: replacing the element whose integer member
 * field equals no, or inserted before the first element whose number is
 * greater (an element without the field counts as 0). On anything but
 * JLIST_OK arr is unchanged.
 */
enum jlist_rc jlist_put(struct sbuf *arr, const char *field, int64_t no,
                        const char *elem, size_t elen, enum jlist_mode mode);

/* Remove the element whose field equals no. JLIST_OK, JLIST_NOITEM,
 * JLIST_BAD or JLIST_NOMEM; arr unchanged unless JLIST_OK. */
enum jlist_rc jlist_del(struct sbuf *arr, const char *field, int64_t no);
