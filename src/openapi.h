/*
 * openapi.h - the OpenAPI 3.1 document of patriot-api, generated from the
 * route table (struct http_route: method, path, flags, body table,
 * parameters, statuses, response schema) and the field tables of model.c
 * that the server validates with. A field or a route added there is in the
 * document without another edit.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "http.h"

/*
 * The document for routes[0..n) as a jansson object (caller decrefs), or
 * NULL on no memory or when a route names a response schema the generator
 * does not know (a bug: the unit test catches it). version is info.version
 * (borrowed).
 */
json_t *openapi_document(const struct http_route *routes, size_t n,
                         const char *version);

/*
 * The same, serialized (indented JSON, NUL-terminated) into a malloc'ed
 * buffer (caller frees with free()); *len gets its length. NULL on
 * failure.
 */
char *openapi_build(const struct http_route *routes, size_t n,
                    const char *version, size_t *len);

/*
 * The docs page: the template page (docs.html, built into the binary) with
 * the document doc (JSON text of doclen bytes, borrowed) put in place of
 * its placeholder, "</" escaped. malloc'ed (caller frees), *len its
 * length; NULL on no memory.
 */
char *openapi_docs_page(const char *doc, size_t doclen, size_t *len);
