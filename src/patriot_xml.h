/*
 * patriot_xml.h - a client as Patriot's XML, and the outbox files.
 *
 * A rendered client is a whole document:
 *   <?xml version="1.0" encoding="utf-8"?>
 *   <Clients><Row><__id>9998BASE11</__id> info... Installer, xml_fields...,
 *   ClientGroupings, Zone..., User..., installer User 199</Row></Clients>
 * indented one element per line. Element names and order come from the
 * field tables in model.h and from the key's entry in keys.json.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

/*
 * Render one client. info is a validated info object (model_info), zones an
 * array of validated zone objects sorted by Zone_No, users an array of
 * validated user objects sorted by UserNo (all borrowed). On success returns
 * 0 and sets *out to a malloc'ed, NUL-terminated document of *outlen bytes
 * (caller frees with free()). Returns -1 on no memory.
 */
int pxml_render_client(const struct key *k, int64_t client_id, json_t *info,
                       json_t *zones, json_t *users, char **out,
                       size_t *outlen);

/* A client as the store keeps it: canonical JSON texts (model.h), info an
 * object, zones and users arrays sorted by number. Borrowed. */
struct pxml_text {
    const char *pt_info;
    size_t pt_info_len;
    const char *pt_zones;
    size_t pt_zones_len;
    const char *pt_users;
    size_t pt_users_len;
};

/*
 * Render one client from its stored JSON texts, streamed into the XML
 * without a jansson tree (the bytes libxml2's text writer makes with
 * indent "  "; the tests compare the two). Field names are looked up in
 * the tables; values come out in stored order, which for canonical JSON is
 * table order. As pxml_render_client otherwise; -1 also on JSON it cannot read.
 */
int pxml_render_text(const struct key *k, int64_t client_id,
                     const struct pxml_text *c, char **out, size_t *outlen);

/*
 * The outbox path of a client: "<xml_dir>/<key_name>/<client_id>.xml".
 * Returns a malloc'ed string (caller frees), or NULL on no memory.
 */
char *pxml_outbox_path(const char *xml_dir, const char *key_name,
                       int64_t client_id);

/*
 * Write len bytes to path so that no reader ever sees a partial file: write
 * "<path>.tmp.<pid>.<tid>", optionally fdatasync it (sync != 0), rename it
 * over path. Creates the parent directory (0770 less the umask) if
 * missing. Returns 0, or -1 with errno set and no temporary file left.
 */
int pxml_write_file(const char *path, const char *buf, size_t len, int sync);

/*
 * Compare the file at path with buf/len. Returns 1 if identical, 0 if it
 * differs or is missing, -1 on another read error (errno set).
 */
int pxml_file_equals(const char *path, const char *buf, size_t len);
