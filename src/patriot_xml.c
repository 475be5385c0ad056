/*
 * patriot_xml.c - render a client as Patriot's XML with libxml2's text
 * writer, and write outbox files atomically (see patriot_xml.h).
 */
#include "patriot_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

static const xmlChar *
X(const char *s)
{
    return (const xmlChar *)s;
}

static int
elem(xmlTextWriterPtr w, const char *name, const char *text)
{
    return xmlTextWriterWriteElement(w, X(name), X(text)) < 0 ? -1 : 0;
}

static int
elem_int(xmlTextWriterPtr w, const char *name, long long v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", v);
    return elem(w, name, buf);
}

/* The fields of obj that are set, in the order of table t. */
static int
write_fields(xmlTextWriterPtr w, const struct mtable *t, json_t *obj)
{
    size_t i;

    for (i = 0; i < t->mt_nfields; i++) {
        const struct mfield *f = &t->mt_fields[i];
        json_t *v = json_object_get(obj, f->mf_name);
        int rc;

        if (v == NULL || json_is_null(v))
            continue;
        switch (f->mf_type) {
        case MT_STR:
            rc = elem(w, f->mf_name, json_string_value(v));
            break;
        case MT_BOOL:
            rc = elem(w, f->mf_name, json_is_true(v) ? "True" : "False");
            break;
        default:
            rc = elem_int(w, f->mf_name, json_integer_value(v));
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
write_list(xmlTextWriterPtr w, const char *name, const struct mtable *t,
           json_t *arr)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        if (xmlTextWriterStartElement(w, X(name)) < 0 ||
            write_fields(w, t, v) < 0 || xmlTextWriterEndElement(w) < 0)
            return -1;
    }
    return 0;
}

static int
write_row(xmlTextWriterPtr w, const struct key *k, int64_t client_id,
          json_t *info, json_t *zones, json_t *users)
{
    char id[96];
    size_t i;

    snprintf(id, sizeof(id), "%lld%s", (long long)client_id, k->k_port);
    if (xmlTextWriterStartElement(w, X("Clients")) < 0 ||
        xmlTextWriterStartElement(w, X("Row")) < 0 ||
        elem(w, "__id", id) < 0 || write_fields(w, &model_info, info) < 0 ||
        elem(w, "Installer", k->k_installer_name) < 0)
        return -1;
    for (i = 0; i < k->k_nfields; i++)
        if (elem(w, k->k_fields[i].kf_name, k->k_fields[i].kf_value) < 0)
            return -1;
    if (k->k_ngroupings > 0) {
        if (xmlTextWriterStartElement(w, X("ClientGroupings")) < 0)
            return -1;
        for (i = 0; i < k->k_ngroupings; i++) {
            const struct key_grouping *g = &k->k_groupings[i];

            if (xmlTextWriterStartElement(w, X("ClientGrouping")) < 0 ||
                elem(w, "Description", g->kg_description) < 0 ||
                elem(w, "GroupingTypeDescription",
                     g->kg_type_description) < 0 ||
                elem(w, "GroupingAllowMultiple", g->kg_allow_multiple) < 0 ||
                xmlTextWriterEndElement(w) < 0)
                return -1;
        }
        if (xmlTextWriterEndElement(w) < 0)
            return -1;
    }
    if (write_list(w, "Zone", &model_zone, zones) < 0 ||
        write_list(w, "User", &model_user, users) < 0)
        return -1;
    /* The installer, UserNo 199: from keys.json, never from the API. */
    if (xmlTextWriterStartElement(w, X("User")) < 0 ||
        elem(w, "User_Name", k->k_installer_name) < 0 ||
        elem(w, "Email", k->k_installer_email) < 0 ||
        elem_int(w, "UserNo", MODEL_INSTALLER_USER_NO) < 0 ||
        elem(w, "CallOrder", "0") < 0 || elem(w, "Type", "N") < 0 ||
        xmlTextWriterEndElement(w) < 0)
        return -1;
    if (xmlTextWriterEndElement(w) < 0 || xmlTextWriterEndElement(w) < 0)
        return -1;
    return 0;
}

int
pxml_render_client(const struct key *k, int64_t client_id, json_t *info,
                   json_t *zones, json_t *users, char **out, size_t *outlen)
{
    xmlBufferPtr buf = NULL;
    xmlTextWriterPtr w = NULL;
    size_t n;
    int rc = -1;

    *out = NULL;
    if ((buf = xmlBufferCreate()) == NULL)
        goto fail;
    if ((w = xmlNewTextWriterMemory(buf, 0)) == NULL)
        goto fail;
    if (xmlTextWriterSetIndent(w, 1) < 0 ||
        xmlTextWriterSetIndentString(w, X("  ")) < 0 ||
        xmlTextWriterWriteRaw(w, X(XML_DECL)) < 0 ||
        write_row(w, k, client_id, info, zones, users) < 0 ||
        xmlTextWriterFlush(w) < 0)
        goto fail;
    n = (size_t)xmlBufferLength(buf);
    if ((*out = malloc(n + 1)) == NULL)
        goto fail;
    memcpy(*out, xmlBufferContent(buf), n);
    (*out)[n] = '\0';
    *outlen = n;
    rc = 0;
fail:
    xmlFreeTextWriter(w);
    xmlBufferFree(buf);
    return rc;
}

char *
pxml_outbox_path(const char *xml_dir, const char *key_name,
                 int64_t client_id)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s/%lld.xml", xml_dir, key_name,
                 (long long)client_id) < 0)
        return NULL;
    return p;
}

/* mkdir -p of the directory part of path. */
static int
make_parent(const char *path)
{
    char *dir = strdup(path), *p;
    int rc = 0;

    if (dir == NULL)
        return -1;
    for (p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    free(dir);
    return rc;
}

int
pxml_write_file(const char *path, const char *buf, size_t len, int sync)
{
    char tmp[4096];
    size_t off = 0;
    int fd, saved;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%ld", path, (long)getpid(),
                 (long)syscall(SYS_gettid)) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT) {
        if (make_parent(path) < 0)
            return -1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    }
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)n;
    }
    if (sync && fdatasync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

int
pxml_file_equals(const char *path, const char *buf, size_t len)
{
    char chunk[8192];
    size_t off = 0;
    struct stat sb;
    int fd, rc = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &sb) < 0)
        goto done;
    rc = 0;
    if ((size_t)sb.st_size != len)
        goto done;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            goto done;
        }
        if (n == 0)
            break;
        if (off + (size_t)n > len || memcmp(chunk, buf + off, (size_t)n) != 0)
            goto done;
        off += (size_t)n;
    }
    rc = off == len;
done:
    close(fd);
    return rc;
}
