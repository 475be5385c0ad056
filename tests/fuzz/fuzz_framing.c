/*
 * fuzz_framing.c - the HTTP layer's framing rules (framing_check, issue 7
 * "Framing").
 *
 * Input: a selector byte, then a header block: lines split on '\n' (a '\r'
 * before it dropped), each line split at its first ':' into name and value
 * (no ':': the whole line is the name and the value is NULL). Selector bit
 * 0 trims spaces and tabs around the value, as libmicrohttpd does; bits
 * 1-3 pick the body limit (1 MiB, 0, 1, 1023, 64 KiB, 2^63, ULLONG_MAX,
 * 10^19 - 1). At most 64 fields.
 *
 * Checks: the verdict is one of 0, 400, 401, 413, with a message iff
 * refused; accepted means at most one Authorization, at most one
 * length-kind header and never both Content-Length and Transfer-Encoding;
 * chunked only for a lone "chunked"; a length only from 1 to 19 ASCII
 * digits, equal to their value and within the limit; and the status and
 * message equal those of a plain reference implementation of the rules of
 * framing.h written here separately. The incremental scan gives the same
 * verdict as the list form.
 */
#include <string.h>

#include "framing.h"
#include "fuzz.h"

#define NH 64

static int
ieq(const char *a, const char *b)       /* ASCII case-insensitive equal */
{
    for (; *a && *b; a++, b++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        int y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;

        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* The reference: framing.h's list, rule by rule. */
static unsigned
reference(const struct framing_hdr *h, size_t n, unsigned long long max,
          const char **msg, unsigned long long *len)
{
    size_t i, cl = 0, te = 0, au = 0, k;
    const char *clv = NULL, *tev = NULL;

    *len = 0;
    for (i = 0; i < n; i++) {
        const char *v = h[i].fh_value ? h[i].fh_value : "";

        if (h[i].fh_name == NULL)
            continue;
        if (ieq(h[i].fh_name, "authorization"))
            au++;
        if (ieq(h[i].fh_name, "content-length"))
            cl++, clv = v;
        if (ieq(h[i].fh_name, "transfer-encoding"))
            te++, tev = v;
    }
    if (au > 1)
        return *msg = "More than one Authorization header", 401;
    if (cl > 1)
        return *msg = "More than one Content-Length header", 400;
    if (te > 1)
        return *msg = "More than one Transfer-Encoding header", 400;
    if (cl && te)
        return *msg = "Both Content-Length and Transfer-Encoding", 400;
    if (te)
        return ieq(tev, "chunked")
                   ? (*msg = "", 0)
                   : (*msg = "Transfer-Encoding other than chunked", 400);
    if (!cl)
        return *msg = "", 0;
    k = strlen(clv);
    if (k < 1 || k > 19 || strspn(clv, "0123456789") != k)
        return *msg = "Invalid Content-Length", 400;
    for (i = 0; i < k; i++)
        *len = *len * 10 + (unsigned long long)(clv[i] - '0');
    if (*len > max) {
        *len = 0;
        return *msg = "Request body larger than ", 413;
    }
    return *msg = "", 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned long long maxes[8] = {
        1024 * 1024, 0, 1, 1023, 64 * 1024, 1ULL << 63, ~0ULL,
        9999999999999999999ULL};
    struct framing_hdr h[NH];
    struct framing_verdict v, v2;
    struct framing_scan fs;
    unsigned long long max, rlen;
    const char *rmsg;
    char *buf, *p, *end;
    size_t n = 0, i;
    unsigned st, rst;
    int trim;

    if (size < 1)
        return 0;
    trim = data[0] & 1;
    max = maxes[(data[0] >> 1) & 7];
    if ((buf = malloc(size)) == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    for (p = buf; n < NH && p < buf + size - 1;) {
        char *nl = memchr(p, '\n', (size_t)(buf + size - 1 - p)), *c;

        end = nl ? nl : buf + size - 1;
        *end = '\0';
        if (end > p && end[-1] == '\r')
            end[-1] = '\0';
        h[n].fh_name = p;
        h[n].fh_value = NULL;
        if ((c = strchr(p, ':')) != NULL) {
            *c++ = '\0';
            if (trim) {
                while (*c == ' ' || *c == '\t')
                    c++;
                for (end = c + strlen(c);
                     end > c && (end[-1] == ' ' || end[-1] == '\t'); end--)
                    end[-1] = '\0';
            }
            h[n].fh_value = c;
        }
        n++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }

    st = framing_check(h, n, max, &v);
    FUZZ_CHECK(st == v.fv_status);
    FUZZ_CHECK(st == 0 || st == 400 || st == 401 || st == 413);
    FUZZ_CHECK(memchr(v.fv_detail, '\0', sizeof(v.fv_detail)) != NULL);
    FUZZ_CHECK((st == 0) == (v.fv_detail[0] == '\0'));
    if (st == 0) {
        size_t cl = 0, te = 0, au = 0;

        for (i = 0; i < n; i++) {
            cl += ieq(h[i].fh_name, "content-length");
            te += ieq(h[i].fh_name, "transfer-encoding");
            au += ieq(h[i].fh_name, "authorization");
        }
        FUZZ_CHECK(au <= 1 && cl + te <= 1);
        FUZZ_CHECK(v.fv_length <= max);
        switch (v.fv_body) {
        case FRAMING_NONE:
            FUZZ_CHECK(cl == 0 && te == 0 && v.fv_length == 0);
            break;
        case FRAMING_CHUNKED:
            FUZZ_CHECK(te == 1 && v.fv_length == 0);
            break;
        case FRAMING_LENGTH:
            FUZZ_CHECK(cl == 1);
            break;
        default:
            FUZZ_CHECK(0);
        }
    } else {
        FUZZ_CHECK(v.fv_body == FRAMING_NONE && v.fv_length == 0);
    }

    /* a reference written from framing.h's list agrees */
    rst = reference(h, n, max, &rmsg, &rlen);
    FUZZ_CHECK(rst == st);
    FUZZ_CHECK(rlen == v.fv_length);
    FUZZ_CHECK(strncmp(v.fv_detail, rmsg, strlen(rmsg)) == 0);
    if (st != 413)
        FUZZ_CHECK(strcmp(v.fv_detail, rmsg) == 0);

    /* the incremental scan (http.c's way) gives the same verdict */
    framing_scan_init(&fs);
    for (i = 0; i < n; i++)
        framing_scan_header(&fs, h[i].fh_name, h[i].fh_value);
    FUZZ_CHECK(framing_scan_verdict(&fs, max, &v2) == st);
    FUZZ_CHECK(memcmp(&v, &v2, sizeof(v)) == 0);
    free(buf);
    return 0;
}
