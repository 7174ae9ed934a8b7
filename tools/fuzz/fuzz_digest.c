
/*
 * Fuzz target: the request checks and the action digest, version 2
 * (ngx_http_ciba_request_check(), then ngx_http_ciba_digest()): the raw
 * path's canonical form, the query string's pieces sorted stably by their
 * decoded, lowercased name key, repeated names refused or kept, bound
 * header fields (ciba_digest_header, set by the module's own directive
 * handler) refused when repeated, the action's UTF-8 check, then the
 * digest of the action, method, path, arguments, body hash (buffers in
 * memory and in a file), extra values and bound headers, compared with
 * an independent implementation of the specification (README.md, "The
 * action digest").  Also ngx_http_ciba_utf8_valid() and
 * ngx_http_ciba_unescape_arg() against the harness's own code.
 *
 * Input: three bytes, then the action, method, request target, extra
 * values and the header block, each ended by a NUL byte, then the body
 * (the rest).
 *   byte 0  bits 0-3: the parts covered (0: all); bit 4: "ciba_path
 *           normalize"; bit 5: "ciba_duplicate_args keep"; bits 6-7: the
 *           number of bound headers (X-Agent-Id, X-B, X-C)
 *   byte 1  bits 0-1: the number of extra values; bits 2-3: the body in
 *           1 to 4 buffers; bit 4: one of them in a file; bit 5: the body
 *           limit is byte 2, not 1m; bit 6: the first bound header is
 *           "repeated"; bit 7: the second is
 *   byte 2  the small body limit
 * The request target is the request line's (r->unparsed_uri); in
 * normalize mode $uri and $args are its parts before and after "?".  The
 * header block is lines "name:value" ended by "\n".
 *
 * Checked: the module refuses exactly what the specification refuses,
 * with its reason, in the specification's order (noncanonical_path,
 * duplicate_arg, duplicate_header, not_utf8); an accepted canonical path
 * has no "//", no "%2F" or "%2f", no dot segment, no lowercase hex in an
 * escape, no escaped unreserved byte; accepted arguments under "refuse"
 * have distinct name keys, and the module's order is the specification's;
 * the digest is computed for accepted requests only, is 43 base64url
 * characters and is the specification's; a body over the limit is
 * refused (NGX_DECLINED), never hashed in part; ngx_http_ciba_utf8_valid()
 * agrees with a strict UTF-8 decoder written here, and
 * ngx_http_ciba_unescape_arg() with a decoder written here.
 */


#include "fuzz_common.h"

#include <sys/mman.h>

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_FUZZ_EXTRAS  3
#define NGX_HTTP_CIBA_FUZZ_BUFS    4
#define NGX_HTTP_CIBA_FUZZ_BOUND   3


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


typedef struct {
    u_char      *piece;
    size_t       len;
    u_char      *key;
    size_t       klen;
    size_t       order;
} ngx_http_ciba_fuzz_arg_t;


typedef struct {
    ngx_str_t    name;
    ngx_str_t    value;
} ngx_http_ciba_fuzz_hdr_t;


static int  ngx_http_ciba_fuzz_fd = -1;

static const char  *ngx_http_ciba_fuzz_bound[NGX_HTTP_CIBA_FUZZ_BOUND] = {
    "X-Agent-Id", "x-b", "X-C"
};


/* NS(x) = decimal length of x ":" x "," */

static void
ngx_http_ciba_fuzz_ns(EVP_MD_CTX *md, const u_char *data, size_t len)
{
    char  head[32];
    int   n;

    n = snprintf(head, sizeof(head), "%zu:", len);

    if (EVP_DigestUpdate(md, head, n) != 1
        || EVP_DigestUpdate(md, data, len) != 1
        || EVP_DigestUpdate(md, ",", 1) != 1)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "EVP_DigestUpdate()");
    }
}


static void
ngx_http_ciba_fuzz_ns_num(EVP_MD_CTX *md, size_t n)
{
    char  num[32];
    int   len;

    len = snprintf(num, sizeof(num), "%zu", n);

    ngx_http_ciba_fuzz_ns(md, (u_char *) num, len);
}


static int
ngx_http_ciba_fuzz_hexval(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* a form's decoding in one pass: "+" a space, "%XX" either case a byte */

static size_t
ngx_http_ciba_fuzz_decode(const u_char *s, size_t len, u_char *out)
{
    size_t  i, n;
    int     hi, lo;

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
            continue;
        }

        if (s[i] == '%' && len - i >= 3) {
            hi = ngx_http_ciba_fuzz_hexval(s[i + 1]);
            lo = ngx_http_ciba_fuzz_hexval(s[i + 2]);

            if (hi >= 0 && lo >= 0) {
                out[n++] = (u_char) (hi * 16 + lo);
                i += 2;
                continue;
            }
        }

        out[n++] = s[i];
    }

    return n;
}


static int
ngx_http_ciba_fuzz_unreserved(u_char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}


/*
 * The canonical form, from README.md: "/" first; letters, digits,
 * -._~!$&'()*+,;=:@/ or "%" and two uppercase hex digits that do not
 * encode a letter, digit, -._~ or "/"; no empty segment but a final one;
 * no "." or ".." segment.  "%00" fits the rules (nginx refuses it before
 * the module): *nul is set when the path has one.
 */

static int
ngx_http_ciba_fuzz_canonical(const u_char *p, size_t len, int *nul)
{
    size_t   i, start;
    u_char   c;
    int      hi, lo;

    *nul = 0;

    if (len == 0 || p[0] != '/') {
        return 0;
    }

    for (i = 1; i < len; i++) {
        c = p[i];

        if (c == '%') {
            if (len - i < 3) {
                return 0;
            }

            hi = p[i + 1];
            lo = p[i + 2];

            if (!(isdigit(hi) || (hi >= 'A' && hi <= 'F'))
                || !(isdigit(lo) || (lo >= 'A' && lo <= 'F')))
            {
                return 0;
            }

            c = (u_char) (ngx_http_ciba_fuzz_hexval(hi) * 16
                          + ngx_http_ciba_fuzz_hexval(lo));

            if (ngx_http_ciba_fuzz_unreserved(c) || c == '/') {
                return 0;
            }

            if (c == '\0') {
                *nul = 1;
            }

            i += 2;
            continue;
        }

        if (!(ngx_http_ciba_fuzz_unreserved(c) || c == '/'
              || (c != '\0' && strchr("!$&'()*+,;=:@", c) != NULL)))
        {
            return 0;
        }
    }

    /* the segments */

    start = 1;

    for (i = 1; i <= len; i++) {
        if (i < len && p[i] != '/') {
            continue;
        }

        if (i == start && i < len) {
            return 0;
        }

        if ((i - start == 1 && p[start] == '.')
            || (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
        {
            return 0;
        }

        start = i + 1;
    }

    return 1;
}


static int
ngx_http_ciba_fuzz_cmp_key(const void *one, const void *two)
{
    int                               rc;
    size_t                            n;
    const ngx_http_ciba_fuzz_arg_t   *a = one, *b = two;

    n = a->klen < b->klen ? a->klen : b->klen;
    rc = n ? memcmp(a->key, b->key, n) : 0;

    if (rc != 0) {
        return rc;
    }

    if (a->klen != b->klen) {
        return (a->klen > b->klen) - (a->klen < b->klen);
    }

    /* stable */
    return (a->order > b->order) - (a->order < b->order);
}


/* the pieces of a query string, with their name keys, sorted stably */

static size_t
ngx_http_ciba_fuzz_args(u_char *q, size_t len, ngx_http_ciba_fuzz_arg_t *list)
{
    size_t   i, j, n, start, nlen;

    n = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && q[i] != '&') {
            continue;
        }

        if (i > start) {
            list[n].piece = q + start;
            list[n].len = i - start;
            list[n].order = n;

            for (nlen = 0; nlen < list[n].len; nlen++) {
                if (list[n].piece[nlen] == '=') {
                    break;
                }
            }

            list[n].key = malloc(nlen + 1);
            if (list[n].key == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
            }

            list[n].klen = ngx_http_ciba_fuzz_decode(list[n].piece, nlen,
                                                     list[n].key);

            for (j = 0; j < list[n].klen; j++) {
                if (list[n].key[j] >= 'A' && list[n].key[j] <= 'Z') {
                    list[n].key[j] += 'a' - 'A';
                }
            }

            n++;
        }

        start = i + 1;
    }

    qsort(list, n, sizeof(ngx_http_ciba_fuzz_arg_t),
          ngx_http_ciba_fuzz_cmp_key);

    return n;
}


/* the specification, written again from README.md */

static void
ngx_http_ciba_fuzz_reference(ngx_uint_t covers, ngx_uint_t normalize,
    ngx_str_t *action, ngx_str_t *method, ngx_str_t *path,
    ngx_http_ciba_fuzz_arg_t *args, size_t nargs, ngx_str_t *body,
    ngx_str_t *extras, ngx_uint_t nextras, ngx_uint_t nbound,
    ngx_http_ciba_fuzz_hdr_t *hdrs, size_t nhdrs, u_char *out)
{
    size_t        i, j, c;
    u_char        md_value[EVP_MAX_MD_SIZE], hex[65], lname[32];
    ngx_str_t     src, dst;
    EVP_MD_CTX   *md;
    unsigned int  md_len;
    char          names[64];

    names[0] = '\0';

    if (covers & NGX_HTTP_CIBA_COVER_METHOD) {
        strcat(names, "method");
    }

    if (covers & NGX_HTTP_CIBA_COVER_PATH) {
        if (names[0]) {
            strcat(names, ",");
        }

        strcat(names, normalize ? "uri" : "path");
    }

    if (covers & NGX_HTTP_CIBA_COVER_ARGS) {
        strcat(names, names[0] ? ",args" : "args");
    }

    if (covers & NGX_HTTP_CIBA_COVER_BODY) {
        strcat(names, names[0] ? ",body" : "body");
    }

    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "EVP_DigestInit_ex()");
    }

    ngx_http_ciba_fuzz_ns(md, (u_char *) "ngx-ciba-digest/2", 17);
    ngx_http_ciba_fuzz_ns(md, (u_char *) names, strlen(names));
    ngx_http_ciba_fuzz_ns(md, action->data, action->len);

    if (covers & NGX_HTTP_CIBA_COVER_METHOD) {
        ngx_http_ciba_fuzz_ns(md, method->data, method->len);
    }

    if (covers & NGX_HTTP_CIBA_COVER_PATH) {
        ngx_http_ciba_fuzz_ns(md, path->data, path->len);
    }

    if (covers & NGX_HTTP_CIBA_COVER_ARGS) {
        ngx_http_ciba_fuzz_ns_num(md, nargs);

        for (i = 0; i < nargs; i++) {
            ngx_http_ciba_fuzz_ns(md, args[i].piece, args[i].len);
        }
    }

    if (covers & NGX_HTTP_CIBA_COVER_BODY) {
        if (EVP_Digest(body->data, body->len, md_value, &md_len, EVP_sha256(),
                       NULL)
            != 1)
        {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "EVP_Digest()");
        }

        for (i = 0; i < md_len; i++) {
            snprintf((char *) hex + 2 * i, 3, "%02x", md_value[i]);
        }

        ngx_http_ciba_fuzz_ns(md, hex, 64);
    }

    ngx_http_ciba_fuzz_ns_num(md, nextras);

    for (i = 0; i < nextras; i++) {
        ngx_http_ciba_fuzz_ns(md, extras[i].data, extras[i].len);
    }

    /* the bound headers: lowercase name, count, values in request order */

    ngx_http_ciba_fuzz_ns_num(md, nbound);

    for (j = 0; j < nbound; j++) {
        src.len = strlen(ngx_http_ciba_fuzz_bound[j]);

        for (i = 0; i < src.len; i++) {
            lname[i] = (u_char) tolower(ngx_http_ciba_fuzz_bound[j][i]);
        }

        ngx_http_ciba_fuzz_ns(md, lname, src.len);

        c = 0;

        for (i = 0; i < nhdrs; i++) {
            if (hdrs[i].name.len == src.len
                && strncasecmp((char *) hdrs[i].name.data,
                               ngx_http_ciba_fuzz_bound[j], src.len)
                   == 0)
            {
                c++;
            }
        }

        ngx_http_ciba_fuzz_ns_num(md, c);

        for (i = 0; i < nhdrs; i++) {
            if (hdrs[i].name.len == src.len
                && strncasecmp((char *) hdrs[i].name.data,
                               ngx_http_ciba_fuzz_bound[j], src.len)
                   == 0)
            {
                ngx_http_ciba_fuzz_ns(md, hdrs[i].value.data,
                                      hdrs[i].value.len);
            }
        }
    }

    if (EVP_DigestFinal_ex(md, md_value, &md_len) != 1) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "EVP_DigestFinal_ex()");
    }

    EVP_MD_CTX_free(md);

    src.data = md_value;
    src.len = md_len;
    dst.data = out;
    ngx_encode_base64url(&dst, &src);

    if (dst.len != NGX_HTTP_CIBA_DIGEST_LEN) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "digest length");
    }
}


/* what an accepted canonical path never holds, checked plainly */

static void
ngx_http_ciba_fuzz_path_props(ngx_str_t *path)
{
    size_t   i, start;
    u_char  *p;
    int      hi, lo;

    p = path->data;

    ngx_http_ciba_fuzz_assert(path->len && p[0] == '/',
                              "an accepted path does not start with \"/\"");

    for (i = 0; i + 1 < path->len; i++) {
        ngx_http_ciba_fuzz_assert(!(p[i] == '/' && p[i + 1] == '/'),
                                  "an accepted path has \"//\"");
    }

    for (i = 0; i < path->len; i++) {
        if (p[i] != '%') {
            ngx_http_ciba_fuzz_assert(p[i] > 0x20 && p[i] < 0x7f
                                      && p[i] != '?' && p[i] != '#'
                                      && p[i] != '"' && p[i] != '\\',
                                      "an accepted path has a raw byte "
                                      "that must be escaped");
            continue;
        }

        ngx_http_ciba_fuzz_assert(i + 2 < path->len,
                                  "an accepted path has a cut escape");

        ngx_http_ciba_fuzz_assert(!((p[i + 1] >= 'a' && p[i + 1] <= 'f')
                                    || (p[i + 2] >= 'a' && p[i + 2] <= 'f')),
                                  "an accepted path has lowercase hex");

        hi = ngx_http_ciba_fuzz_hexval(p[i + 1]);
        lo = ngx_http_ciba_fuzz_hexval(p[i + 2]);

        ngx_http_ciba_fuzz_assert(hi >= 0 && lo >= 0,
                                  "an accepted path has a bad escape");

        ngx_http_ciba_fuzz_assert(!(hi == 2 && lo == 0xf),
                                  "an accepted path has \"%2F\"");

        ngx_http_ciba_fuzz_assert(!ngx_http_ciba_fuzz_unreserved(
                                      (u_char) (hi * 16 + lo)),
                                  "an accepted path escapes an unreserved "
                                  "byte");
        i += 2;
    }

    start = 1;

    for (i = 1; i <= path->len; i++) {
        if (i < path->len && p[i] != '/') {
            continue;
        }

        ngx_http_ciba_fuzz_assert(!((i - start == 1 && p[start] == '.')
                                    || (i - start == 2 && p[start] == '.'
                                        && p[start + 1] == '.')),
                                  "an accepted path has a dot segment");
        start = i + 1;
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    ngx_http_ciba_fuzz_fd = memfd_create("ciba-fuzz-body", 0);
    if (ngx_http_ciba_fuzz_fd == -1) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "memfd_create()");
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    off_t                      body_len;
    char                      *rv;
    u_char                    *p, *last, *q, *e, *dec, expect[64];
    size_t                     i, j, n, nbufs, piece, limit, nargs, nhdrs;
    ngx_int_t                  rc;
    ngx_str_t                  fields[4 + NGX_HTTP_CIBA_FUZZ_EXTRAS], body;
    ngx_str_t                  path, query, hblock, dargs[3];
    ngx_buf_t                 *b;
    ngx_file_t                *file;
    ngx_uint_t                 covers, nextras, in_file, normalize, keep;
    ngx_uint_t                 nbound, repeated[NGX_HTTP_CIBA_FUZZ_BOUND];
    ngx_array_t                extras;
    ngx_chain_t               *cl, **ll;
    ngx_table_elt_t           *h;
    const char                *why;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_arg_t       *marg;
    ngx_http_ciba_loc_conf_t   clcf;
    ngx_http_complex_value_t  *cv;
    ngx_http_ciba_fuzz_arg_t  *args;
    ngx_http_ciba_fuzz_hdr_t  *hdrs;
    int                        nul;

    if (size < 3) {
        return 0;
    }

    covers = data[0] & NGX_HTTP_CIBA_COVER_ALL;
    if (covers == 0) {
        covers = NGX_HTTP_CIBA_COVER_ALL;
    }

    normalize = (data[0] & 0x10) ? 1 : 0;
    keep = (data[0] & 0x20) ? 1 : 0;
    nbound = data[0] >> 6;

    nextras = data[1] & 0x03;
    nbufs = ((data[1] >> 2) & 0x03) + 1;
    in_file = (data[1] & 0x10) ? 1 : 0;
    limit = (data[1] & 0x20) ? data[2] : 1024 * 1024;
    repeated[0] = (data[1] & 0x40) ? 1 : 0;
    repeated[1] = (data[1] & 0x80) ? 1 : 0;
    repeated[2] = 0;

    clcf = *ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_ASYM];
    clcf.covers = covers;
    clcf.body_limit = limit;
    clcf.path_mode = normalize ? NGX_HTTP_CIBA_PATH_NORMALIZE
                               : NGX_HTTP_CIBA_PATH_CANONICAL;
    clcf.duplicate_args = keep ? NGX_HTTP_CIBA_ARGS_KEEP
                               : NGX_HTTP_CIBA_ARGS_REFUSE;

    r = ngx_http_ciba_fuzz_request(&clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    /* the bound headers, by the module's own directive handler */

    clcf.headers = NGX_CONF_UNSET_PTR;

    for (i = 0; i < nbound; i++) {
        ngx_str_set(&dargs[0], "ciba_digest_header");
        dargs[1].data = (u_char *) ngx_http_ciba_fuzz_bound[i];
        dargs[1].len = strlen(ngx_http_ciba_fuzz_bound[i]);
        ngx_str_set(&dargs[2], "repeated");

        rv = ngx_http_ciba_fuzz_directive(r->pool, &clcf, dargs,
                                          repeated[i] ? 3 : 2);

        ngx_http_ciba_fuzz_assert(rv == NGX_CONF_OK,
                                  "ciba_digest_header failed");
    }

    if (clcf.headers == NGX_CONF_UNSET_PTR) {
        clcf.headers = NULL;
    }

    /* action, method, target, extras, headers: NUL-terminated; the body */

    p = ngx_http_ciba_fuzz_dup(r->pool, data + 3, size - 3);
    last = p + size - 3;

    for (i = 0; i < 3 + nextras; i++) {
        q = ngx_strlchr(p, last, '\0');

        fields[i].data = p;
        fields[i].len = (q ? q : last) - p;

        p = q ? q + 1 : last;
    }

    q = ngx_strlchr(p, last, '\0');
    hblock.data = p;
    hblock.len = (q ? q : last) - p;
    p = q ? q + 1 : last;

    body.data = p;
    body.len = last - p;

    ctx->action = fields[0];
    r->method_name = fields[1];
    r->unparsed_uri = fields[2];

    /* in normalize mode, $uri and $args: the target around its "?" */

    q = ngx_strlchr(fields[2].data, fields[2].data + fields[2].len, '?');

    r->uri.data = fields[2].data;
    r->uri.len = (q ? q : fields[2].data + fields[2].len) - fields[2].data;
    ngx_str_null(&r->args);

    if (q) {
        r->args.data = q + 1;
        r->args.len = fields[2].data + fields[2].len - (q + 1);
    }

    /* the header fields: "name:value\n" */

    hdrs = malloc(sizeof(ngx_http_ciba_fuzz_hdr_t) * (hblock.len + 1));
    if (hdrs == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
    }

    nhdrs = 0;
    p = hblock.data;
    e = hblock.data + hblock.len;

    while (p < e) {
        q = ngx_strlchr(p, e, '\n');
        if (q == NULL) {
            q = e;
        }

        dec = ngx_strlchr(p, q, ':');

        if (dec) {
            h = ngx_list_push(&r->headers_in.headers);
            if (h == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "list_push()");
            }

            ngx_memzero(h, sizeof(ngx_table_elt_t));

            h->hash = 1;
            h->key.data = p;
            h->key.len = dec - p;
            h->value.data = dec + 1;
            h->value.len = q - dec - 1;
            h->lowcase_key = h->key.data;

            hdrs[nhdrs].name = h->key;
            hdrs[nhdrs].value = h->value;
            nhdrs++;
        }

        p = q + 1;
    }

    clcf.extras = NULL;

    if (nextras) {
        if (ngx_array_init(&extras, r->pool, nextras,
                           sizeof(ngx_http_complex_value_t))
            != NGX_OK)
        {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_array_init()");
        }

        for (i = 0; i < nextras; i++) {
            cv = ngx_array_push(&extras);
            if (cv == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "push");
            }

            ngx_memzero(cv, sizeof(ngx_http_complex_value_t));
            cv->value = fields[3 + i];
        }

        clcf.extras = &extras;
    }

    /* the body, in pieces; one of them, maybe, in a file */

    ll = &r->request_body->bufs;
    p = body.data;
    piece = body.len / nbufs + 1;

    for (i = 0; i < nbufs; i++) {
        q = (size_t) (last - p) > piece ? p + piece : last;

        if (i == nbufs - 1) {
            q = last;
        }

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
        }

        if (in_file && i == nbufs / 2) {
            file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
            if (file == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
            }

            if (ftruncate(ngx_http_ciba_fuzz_fd, 0) == -1
                || (q > p
                    && pwrite(ngx_http_ciba_fuzz_fd, p, q - p, 7) != q - p))
            {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pwrite()");
            }

            file->fd = ngx_http_ciba_fuzz_fd;
            ngx_str_set(&file->name, "memfd:ciba-fuzz-body");
            file->log = r->connection->log;

            b->in_file = 1;
            b->file = file;
            b->file_pos = 7;
            b->file_last = 7 + (q - p);

        } else {
            /* a copy of its own, so that reads past it are seen */
            b->pos = ngx_pnalloc(r->pool, q - p + 1);
            if (b->pos == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
            }

            ngx_memcpy(b->pos, p, q - p);
            b->last = b->pos + (q - p);
            b->temporary = 1;
        }

        cl->buf = b;
        cl->next = NULL;
        *ll = cl;
        ll = &cl->next;

        p = q;
    }

    /* ngx_http_ciba_utf8_valid() and ngx_http_ciba_unescape_arg() */

    ngx_http_ciba_fuzz_assert(
        (ngx_http_ciba_utf8_valid(body.data, body.len) == NGX_OK)
        == ngx_http_ciba_fuzz_utf8_strict(body.data, body.len),
        "ngx_http_ciba_utf8_valid() and a strict decoder disagree (body)");

    ngx_http_ciba_fuzz_assert(
        (ngx_http_ciba_utf8_valid(ctx->action.data, ctx->action.len)
         == NGX_OK)
        == ngx_http_ciba_fuzz_utf8_strict(ctx->action.data, ctx->action.len),
        "ngx_http_ciba_utf8_valid() and a strict decoder disagree (action)");

    dec = malloc(2 * body.len + 1);
    if (dec == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
    }

    q = ngx_pnalloc(r->pool, body.len + 1);
    if (q == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
    }

    e = q;
    ngx_http_ciba_unescape_arg(&e, &body);
    n = ngx_http_ciba_fuzz_decode(body.data, body.len, dec);

    ngx_http_ciba_fuzz_assert((size_t) (e - q) == n
                              && (n == 0 || memcmp(q, dec, n) == 0),
                              "ngx_http_ciba_unescape_arg() decodes "
                              "otherwise");
    free(dec);

    /* what the specification refuses, and why */

    if (normalize) {
        path = r->uri;
        query = r->args;
        nul = 0;
        why = NULL;

    } else {
        q = ngx_strlchr(fields[2].data, fields[2].data + fields[2].len, '?');

        path.data = fields[2].data;
        path.len = (q ? q : fields[2].data + fields[2].len) - path.data;

        ngx_str_null(&query);

        if (q) {
            query.data = q + 1;
            e = ngx_strlchr(query.data, fields[2].data + fields[2].len, '#');
            query.len = (e ? e : fields[2].data + fields[2].len) - query.data;
        }

        why = ngx_http_ciba_fuzz_canonical(path.data, path.len, &nul)
              ? NULL : "noncanonical_path";
    }

    args = malloc(sizeof(ngx_http_ciba_fuzz_arg_t) * (query.len / 2 + 2));
    if (args == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
    }

    nargs = ngx_http_ciba_fuzz_args(query.data, query.len, args);

    if (why == NULL && !keep) {
        for (i = 1; i < nargs; i++) {
            if (args[i].klen == args[i - 1].klen
                && (args[i].klen == 0
                    || memcmp(args[i].key, args[i - 1].key, args[i].klen)
                       == 0))
            {
                why = "duplicate_arg";
                break;
            }
        }
    }

    for (j = 0; why == NULL && j < nbound; j++) {
        if (repeated[j]) {
            continue;
        }

        n = 0;

        for (i = 0; i < nhdrs; i++) {
            if (hdrs[i].name.len == strlen(ngx_http_ciba_fuzz_bound[j])
                && strncasecmp((char *) hdrs[i].name.data,
                               ngx_http_ciba_fuzz_bound[j],
                               hdrs[i].name.len)
                   == 0)
            {
                n++;
            }
        }

        if (n > 1) {
            why = "duplicate_header";
        }
    }

    if (why == NULL
        && !ngx_http_ciba_fuzz_utf8_strict(ctx->action.data, ctx->action.len))
    {
        why = "not_utf8";
    }

    /* the module */

    rc = ngx_http_ciba_request_check(r, &clcf, ctx);

    ngx_http_ciba_fuzz_trace("check: %d %s (expected %s)", (int) rc,
                             ctx->reason ? ctx->reason : "-",
                             why ? why : "-");

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "the request check failed");

    if (nul && rc == NGX_DECLINED
        && ngx_strcmp(ctx->reason, "noncanonical_path") == 0)
    {
        /* "%00": refused by nginx before the module, by the module too */
        goto done;
    }

    if (why) {
        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "the module accepts what the "
                                  "specification refuses");
        ngx_http_ciba_fuzz_assert(ctx->reason
                                  && ngx_strcmp(ctx->reason, why) == 0,
                                  "the module refuses for another reason");
        goto done;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "the module refuses what the "
                                            "specification accepts");

    /* accepted: the module's path and arguments are the specification's */

    ngx_http_ciba_fuzz_assert(ctx->path.len == path.len
                              && (path.len == 0
                                  || ctx->path.data == path.data),
                              "the module digests another path");

    if (!normalize) {
        ngx_http_ciba_fuzz_path_props(&ctx->path);
    }

    ngx_http_ciba_fuzz_assert(ctx->args && ctx->args->nelts == nargs,
                              "the module has another number of "
                              "arguments");

    marg = ctx->args->elts;

    for (i = 0; i < nargs; i++) {
        ngx_http_ciba_fuzz_assert(marg[i].piece.data == args[i].piece
                                  && marg[i].piece.len == args[i].len
                                  && marg[i].key.len == args[i].klen
                                  && (args[i].klen == 0
                                      || memcmp(marg[i].key.data,
                                                args[i].key, args[i].klen)
                                         == 0),
                                  "the module's arguments are not the "
                                  "specification's, in its order");

        if (!keep && i > 0) {
            ngx_http_ciba_fuzz_assert(
                marg[i].key.len != marg[i - 1].key.len
                || ngx_memcmp(marg[i].key.data, marg[i - 1].key.data,
                              marg[i].key.len) != 0,
                "accepted arguments repeat a name key");
        }
    }

    /* the digest */

    body_len = 0;
    ngx_str_null(&ctx->digest);

    rc = ngx_http_ciba_digest(r, &clcf, ctx, &body_len);

    ngx_http_ciba_fuzz_trace("digest: %d %.*s", (int) rc,
                             (int) ctx->digest.len,
                             ctx->digest.data ? (char *) ctx->digest.data
                                              : "");

    if ((covers & NGX_HTTP_CIBA_COVER_BODY) && body.len > limit) {
        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "a body over the limit was hashed");
        goto done;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "the digest failed");

    ngx_http_ciba_fuzz_assert(ctx->digest.len == NGX_HTTP_CIBA_DIGEST_LEN,
                              "the digest is not 43 characters");

    for (i = 0; i < ctx->digest.len; i++) {
        ngx_http_ciba_fuzz_assert(isalnum(ctx->digest.data[i])
                                  || ctx->digest.data[i] == '-'
                                  || ctx->digest.data[i] == '_',
                                  "the digest is not base64url");
    }

    ngx_http_ciba_fuzz_reference(covers, normalize, &ctx->action,
                                 &r->method_name, &path, args, nargs, &body,
                                 &fields[3], nextras, nbound, hdrs, nhdrs,
                                 expect);

    ngx_http_ciba_fuzz_assert(ngx_memcmp(ctx->digest.data, expect,
                                         NGX_HTTP_CIBA_DIGEST_LEN) == 0,
                              "the digest is not the specification's");

    if (covers & NGX_HTTP_CIBA_COVER_BODY) {
        ngx_http_ciba_fuzz_assert((size_t) body_len == body.len,
                                  "the body's length is wrong");
    }

done:

    for (i = 0; i < nargs; i++) {
        free(args[i].key);
    }

    free(args);
    free(hdrs);

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
