
/*
 * ngx_http_ciba_module: the action digest.
 *
 * The digest binds an approval to one exact request.  It is a public,
 * stable specification (README.md, "The action digest"; tools/ciba-digest
 * computes the same value on the agent's side):
 *
 *     digest = BASE64URL(SHA-256(C)), without padding
 *     C      = NS("ngx-ciba-digest/1") NS(covers) NS(action)
 *              [NS(method)] [NS(path)] [NS(n) NS(arg_1) ... NS(arg_n)]
 *              [NS(hex SHA-256 of the body)] NS(m) NS(extra_1) ...
 *     NS(x)  = decimal length of x ":" x ","
 *
 * The path is nginx's normalized $uri; the args are the raw pieces of the
 * query string between "&", empty ones dropped, sorted bytewise.
 */


#include "ngx_http_ciba.h"

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_DIGEST_MAGIC  "ngx-ciba-digest/1"


static ngx_int_t ngx_http_ciba_ns(EVP_MD_CTX *md, u_char *data, size_t len);
static ngx_int_t ngx_http_ciba_ns_count(EVP_MD_CTX *md, ngx_uint_t n);
static ngx_int_t ngx_http_ciba_digest_args(ngx_http_request_t *r,
    EVP_MD_CTX *md);
static int ngx_libc_cdecl ngx_http_ciba_cmp_args(const void *one,
    const void *two);
static ngx_int_t ngx_http_ciba_body_hash(ngx_http_request_t *r,
    size_t limit, u_char *hex, off_t *body_len);
static ngx_int_t ngx_http_ciba_digest_run(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, EVP_MD_CTX *md, ngx_str_t *action,
    u_char *body_hex);


static ngx_str_t  ngx_http_ciba_cover_names[] = {
    ngx_string("method"),
    ngx_string("path"),
    ngx_string("args"),
    ngx_string("body")
};


/*
 * NGX_OK: the digest is in "digest"; NGX_DECLINED: the body is over the
 * limit (it is never partially hashed); NGX_ERROR: an internal failure.
 */

ngx_int_t
ngx_http_ciba_digest(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *clcf,
    ngx_str_t *action, ngx_str_t *digest, off_t *body_len)
{
    u_char         body_hex[2 * 32];
    u_char         md_value[EVP_MAX_MD_SIZE];
    ngx_int_t      rc;
    ngx_str_t      src;
    EVP_MD_CTX    *md;
    unsigned int   md_len;

    *body_len = 0;
    md_len = 0;

    if (clcf->covers & NGX_HTTP_CIBA_COVER_BODY) {
        rc = ngx_http_ciba_body_hash(r, clcf->body_limit, body_hex,
                                     body_len);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ciba: EVP_MD_CTX_new() failed");
        return NGX_ERROR;
    }

    rc = ngx_http_ciba_digest_run(r, clcf, md, action, body_hex);

    if (rc == NGX_OK && EVP_DigestFinal_ex(md, md_value, &md_len) != 1) {
        rc = NGX_ERROR;
    }

    EVP_MD_CTX_free(md);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ciba: computing the action digest failed");
        return NGX_ERROR;
    }

    digest->data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(md_len));
    if (digest->data == NULL) {
        return NGX_ERROR;
    }

    src.data = md_value;
    src.len = md_len;

    ngx_encode_base64url(digest, &src);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_digest_run(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, EVP_MD_CTX *md, ngx_str_t *action,
    u_char *body_hex)
{
    u_char                     *p;
    u_char                      covers[sizeof("method,path,args,body")];
    ngx_str_t                   value;
    ngx_uint_t                  i;
    ngx_http_complex_value_t   *cv;

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        return NGX_ERROR;
    }

    p = covers;

    for (i = 0; i < 4; i++) {
        if (clcf->covers & (1 << i)) {
            if (p != covers) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, ngx_http_ciba_cover_names[i].data,
                           ngx_http_ciba_cover_names[i].len);
        }
    }

    if (ngx_http_ciba_ns(md, (u_char *) NGX_HTTP_CIBA_DIGEST_MAGIC,
                         sizeof(NGX_HTTP_CIBA_DIGEST_MAGIC) - 1)
        != NGX_OK
        || ngx_http_ciba_ns(md, covers, p - covers) != NGX_OK
        || ngx_http_ciba_ns(md, action->data, action->len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (clcf->covers & NGX_HTTP_CIBA_COVER_METHOD) {
        if (ngx_http_ciba_ns(md, r->method_name.data, r->method_name.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (clcf->covers & NGX_HTTP_CIBA_COVER_PATH) {
        if (ngx_http_ciba_ns(md, r->uri.data, r->uri.len) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (clcf->covers & NGX_HTTP_CIBA_COVER_ARGS) {
        if (ngx_http_ciba_digest_args(r, md) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (clcf->covers & NGX_HTTP_CIBA_COVER_BODY) {
        if (ngx_http_ciba_ns(md, body_hex, 2 * 32) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (clcf->extras == NULL) {
        return ngx_http_ciba_ns_count(md, 0);
    }

    if (ngx_http_ciba_ns_count(md, clcf->extras->nelts) != NGX_OK) {
        return NGX_ERROR;
    }

    cv = clcf->extras->elts;

    for (i = 0; i < clcf->extras->nelts; i++) {
        if (ngx_http_complex_value(r, &cv[i], &value) != NGX_OK
            || ngx_http_ciba_ns(md, value.data, value.len) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_ns(EVP_MD_CTX *md, u_char *data, size_t len)
{
    u_char  *p, head[NGX_SIZE_T_LEN + 1];

    p = ngx_sprintf(head, "%uz:", len);

    if (EVP_DigestUpdate(md, head, p - head) != 1
        || (len && EVP_DigestUpdate(md, data, len) != 1)
        || EVP_DigestUpdate(md, ",", 1) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_ns_count(EVP_MD_CTX *md, ngx_uint_t n)
{
    u_char  *p, count[NGX_INT_T_LEN];

    p = ngx_sprintf(count, "%ui", n);

    return ngx_http_ciba_ns(md, count, p - count);
}


static ngx_int_t
ngx_http_ciba_digest_args(ngx_http_request_t *r, EVP_MD_CTX *md)
{
    u_char       *p, *last, *amp;
    ngx_str_t    *arg;
    ngx_uint_t    i;
    ngx_array_t   args;

    if (ngx_array_init(&args, r->pool, 8, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        if (amp > p) {
            arg = ngx_array_push(&args);
            if (arg == NULL) {
                return NGX_ERROR;
            }

            arg->data = p;
            arg->len = amp - p;
        }

        p = amp + 1;
    }

    ngx_qsort(args.elts, args.nelts, sizeof(ngx_str_t),
              ngx_http_ciba_cmp_args);

    if (ngx_http_ciba_ns_count(md, args.nelts) != NGX_OK) {
        return NGX_ERROR;
    }

    arg = args.elts;

    for (i = 0; i < args.nelts; i++) {
        if (ngx_http_ciba_ns(md, arg[i].data, arg[i].len) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_ciba_cmp_args(const void *one, const void *two)
{
    int               rc;
    const ngx_str_t  *a, *b;

    a = one;
    b = two;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));

    if (rc != 0) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


static ngx_int_t
ngx_http_ciba_body_hash(ngx_http_request_t *r, size_t limit, u_char *hex,
    off_t *body_len)
{
    off_t         offset;
    u_char        buf[8192], md_value[EVP_MAX_MD_SIZE];
    size_t        size;
    ssize_t       n;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    EVP_MD_CTX   *md;
    ngx_chain_t  *cl;
    unsigned int  md_len;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        goto done;
    }

    cl = (r->request_body) ? r->request_body->bufs : NULL;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            size = b->last - b->pos;

            *body_len += size;
            if (*body_len > (off_t) limit) {
                rc = NGX_DECLINED;
                goto done;
            }

            if (size && EVP_DigestUpdate(md, b->pos, size) != 1) {
                goto done;
            }

            continue;
        }

        if (!b->in_file) {
            continue;
        }

        *body_len += b->file_last - b->file_pos;
        if (*body_len > (off_t) limit) {
            rc = NGX_DECLINED;
            goto done;
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            size = (size_t) ngx_min(b->file_last - offset, (off_t) 8192);

            n = ngx_read_file(b->file, buf, size, offset);

            if (n != (ssize_t) size) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "ciba: reading the request body from \"%V\" "
                              "failed", &b->file->name);
                goto done;
            }

            if (EVP_DigestUpdate(md, buf, n) != 1) {
                goto done;
            }
        }
    }

    if (EVP_DigestFinal_ex(md, md_value, &md_len) != 1 || md_len != 32) {
        goto done;
    }

    ngx_hex_dump(hex, md_value, md_len);

    rc = NGX_OK;

done:

    EVP_MD_CTX_free(md);

    return rc;
}


char *
ngx_http_ciba_digest_covers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *clcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, j;

    if (clcf->covers) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (j = 0; j < 4; j++) {
            if (value[i].len == ngx_http_ciba_cover_names[j].len
                && ngx_strncmp(value[i].data,
                               ngx_http_ciba_cover_names[j].data,
                               value[i].len)
                   == 0)
            {
                break;
            }
        }

        if (j == 4) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid part \"%V\", expected \"method\", "
                               "\"path\", \"args\" or \"body\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (clcf->covers & (1 << j)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "part \"%V\" is given twice", &value[i]);
            return NGX_CONF_ERROR;
        }

        clcf->covers |= 1 << j;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_ciba_digest_extra(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *clcf = conf;

    ngx_str_t                         *value;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (clcf->extras == NGX_CONF_UNSET_PTR) {
        clcf->extras = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_complex_value_t));
        if (clcf->extras == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cv = ngx_array_push(clcf->extras);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
