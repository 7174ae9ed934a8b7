
/*
 * Fuzz target: the action digest (ngx_http_ciba_digest()), its canonical
 * encoding of the action, method, path, the query string's arguments
 * (split at "&", empty ones dropped, sorted bytewise), the body's hash
 * (from buffers in memory and in a file) and the extra values, compared
 * with an independent implementation of the specification (README.md,
 * "The action digest"; ngx_http_ciba_digest.c's header comment).
 *
 * Input: three bytes, then the action, method, path, query string and
 * extra values, each ended by a NUL byte, then the body (the rest).
 *   byte 0  bits 0-3: the parts covered (0: all)
 *   byte 1  bits 0-1: the number of extra values; bits 2-3: the body in
 *           1 to 4 buffers; bit 4: one of them in a file; bit 5: the body
 *           limit is byte 2, not 1m
 *   byte 2  the small body limit
 *
 * Checked: the digest is the specification's; a body over the limit is
 * refused (NGX_DECLINED), never hashed in part.
 */


#include "fuzz_common.h"

#include <sys/mman.h>

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_FUZZ_EXTRAS  3
#define NGX_HTTP_CIBA_FUZZ_BUFS    4


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int  ngx_http_ciba_fuzz_fd = -1;


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
ngx_http_ciba_fuzz_cmp(const void *one, const void *two)
{
    int               rc;
    size_t            n;
    const ngx_str_t  *a = one, *b = two;

    n = a->len < b->len ? a->len : b->len;
    rc = n ? memcmp(a->data, b->data, n) : 0;

    if (rc != 0) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


/* the specification, written again from README.md */

static void
ngx_http_ciba_fuzz_reference(ngx_uint_t covers, ngx_str_t *action,
    ngx_str_t *method, ngx_str_t *path, ngx_str_t *args, ngx_str_t *body,
    ngx_str_t *extras, ngx_uint_t nextras, u_char *out)
{
    size_t        i, n, start;
    u_char        md_value[EVP_MAX_MD_SIZE], hex[65];
    ngx_str_t    *list, src, dst;
    EVP_MD_CTX   *md;
    unsigned int  md_len;
    char          names[64];

    names[0] = '\0';

    if (covers & NGX_HTTP_CIBA_COVER_METHOD) {
        strcat(names, "method");
    }

    if (covers & NGX_HTTP_CIBA_COVER_PATH) {
        strcat(names, names[0] ? ",path" : "path");
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

    ngx_http_ciba_fuzz_ns(md, (u_char *) "ngx-ciba-digest/1", 17);
    ngx_http_ciba_fuzz_ns(md, (u_char *) names, strlen(names));
    ngx_http_ciba_fuzz_ns(md, action->data, action->len);

    if (covers & NGX_HTTP_CIBA_COVER_METHOD) {
        ngx_http_ciba_fuzz_ns(md, method->data, method->len);
    }

    if (covers & NGX_HTTP_CIBA_COVER_PATH) {
        ngx_http_ciba_fuzz_ns(md, path->data, path->len);
    }

    if (covers & NGX_HTTP_CIBA_COVER_ARGS) {
        list = malloc(sizeof(ngx_str_t) * (args->len / 2 + 2));
        if (list == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
        }

        n = 0;
        start = 0;

        for (i = 0; i <= args->len; i++) {
            if (i == args->len || args->data[i] == '&') {
                if (i > start) {
                    list[n].data = args->data + start;
                    list[n].len = i - start;
                    n++;
                }

                start = i + 1;
            }
        }

        qsort(list, n, sizeof(ngx_str_t), ngx_http_ciba_fuzz_cmp);

        ngx_http_ciba_fuzz_ns_num(md, n);

        for (i = 0; i < n; i++) {
            ngx_http_ciba_fuzz_ns(md, list[i].data, list[i].len);
        }

        free(list);
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
    u_char                    *p, *last, *q, expect[64];
    size_t                     i, nbufs, piece, limit;
    ngx_int_t                  rc;
    ngx_str_t                  fields[4 + NGX_HTTP_CIBA_FUZZ_EXTRAS], body;
    ngx_str_t                  digest;
    ngx_buf_t                 *b;
    ngx_file_t                *file;
    ngx_uint_t                 covers, nextras, in_file;
    ngx_array_t                extras;
    ngx_chain_t               *cl, **ll;
    ngx_http_request_t        *r;
    ngx_http_ciba_loc_conf_t   clcf;
    ngx_http_complex_value_t  *cv;

    if (size < 3) {
        return 0;
    }

    covers = data[0] & NGX_HTTP_CIBA_COVER_ALL;
    if (covers == 0) {
        covers = NGX_HTTP_CIBA_COVER_ALL;
    }

    nextras = data[1] & 0x03;
    nbufs = ((data[1] >> 2) & 0x03) + 1;
    in_file = (data[1] & 0x10) ? 1 : 0;
    limit = (data[1] & 0x20) ? data[2] : 1024 * 1024;

    clcf = *ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_ASYM];
    clcf.covers = covers;
    clcf.body_limit = limit;

    r = ngx_http_ciba_fuzz_request(&clcf);

    /* action, method, path, args, extras: NUL-terminated; then the body */

    p = ngx_http_ciba_fuzz_dup(r->pool, data + 3, size - 3);
    last = p + size - 3;

    for (i = 0; i < 4 + nextras; i++) {
        q = ngx_strlchr(p, last, '\0');

        fields[i].data = p;
        fields[i].len = (q ? q : last) - p;

        p = q ? q + 1 : last;
    }

    body.data = p;
    body.len = last - p;

    r->method_name = fields[1];
    r->uri = fields[2];
    r->args = fields[3];

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
            cv->value = fields[4 + i];
        }

        clcf.extras = &extras;
    }

    /* the body, in pieces; one of them, maybe, in a file */

    r->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (r->request_body == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

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

    body_len = 0;
    ngx_str_null(&digest);

    rc = ngx_http_ciba_digest(r, &clcf, &fields[0], &digest, &body_len);

    ngx_http_ciba_fuzz_trace("digest: %d %.*s", (int) rc, (int) digest.len,
                             digest.data ? (char *) digest.data : "");

    if ((covers & NGX_HTTP_CIBA_COVER_BODY) && body.len > limit) {
        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "a body over the limit was hashed");

    } else {
        ngx_http_ciba_fuzz_assert(rc == NGX_OK, "the digest failed");

        ngx_http_ciba_fuzz_reference(covers, &fields[0], &fields[1],
                                     &fields[2], &fields[3], &body,
                                     &fields[4], nextras, expect);

        ngx_http_ciba_fuzz_assert(digest.len == NGX_HTTP_CIBA_DIGEST_LEN
                                  && ngx_memcmp(digest.data, expect,
                                                NGX_HTTP_CIBA_DIGEST_LEN)
                                     == 0,
                                  "the digest is not the specification's");

        if (covers & NGX_HTTP_CIBA_COVER_BODY) {
            ngx_http_ciba_fuzz_assert((size_t) body_len == body.len,
                                      "the body's length is wrong");
        }
    }

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
