

/*
 * ngx_http_ciba_module: the action digest, and the request checks that
 * make it mean one request.
 *
 * The digest binds an approval to one exact request.  It is a public,
 * stable specification (README.md, "The action digest"; tools/ciba-digest
 * computes the same value on the agent's side):
 *
 *     digest = BASE64URL(SHA-256(C)), without padding
 *     C      = NS("ngx-ciba-digest/2") NS(covers) NS(action)
 *              [NS(method)] [NS(path)] [NS(n) NS(arg_1) ... NS(arg_n)]
 *              [NS(hex SHA-256 of the body)] NS(m) NS(extra_1) ...
 *              NS(k) [NS(name) NS(c) NS(value_1) ...] ...
 *     NS(x)  = decimal length of x ":" x ","
 *
 * The path is the raw path as sent, which must be canonical (or nginx's
 * normalized $uri with "ciba_path normalize"); the args are the raw
 * pieces of the query string between "&", empty ones dropped, sorted
 * stably by their decoded, lowercased name; a repeated name is refused
 * unless "ciba_duplicate_args keep".
 */


#include "ngx_http_ciba.h"

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_DIGEST_MAGIC  "ngx-ciba-digest/2"


/* the digest's input, built in the request's pool */
typedef struct {
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
    ngx_pool_t                 *pool;
} ngx_http_ciba_ns_buf_t;


static ngx_int_t ngx_http_ciba_path_check(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_ciba_args_parse(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *query);
static int ngx_libc_cdecl ngx_http_ciba_cmp_args(const void *one,
    const void *two);
static ngx_int_t ngx_http_ciba_headers_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_ns(ngx_http_ciba_ns_buf_t *nb, u_char *data,
    size_t len);
static ngx_int_t ngx_http_ciba_ns_count(ngx_http_ciba_ns_buf_t *nb,
    ngx_uint_t n);
static u_char *ngx_http_ciba_decimal(u_char *last, size_t n);
static ngx_int_t ngx_http_ciba_digest_headers(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ns_buf_t *md);
static ngx_int_t ngx_http_ciba_body_hash(ngx_http_request_t *r,
    size_t limit, u_char *hex, off_t *body_len);
static ngx_int_t ngx_http_ciba_digest_run(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_ns_buf_t *md);


static ngx_str_t  ngx_http_ciba_cover_names[] = {
    ngx_string("method"),
    ngx_string("path"),
    ngx_string("args"),
    ngx_string("body")
};


/*
 * The bytes a canonical path may carry raw: RFC 3986 pchar and "/",
 * "%" for escapes; one bit per byte.
 */

static uint32_t  ngx_http_ciba_path_chars[] = {
    0x00000000, /* 0000 0000 0000 0000  0000 0000 0000 0000 */

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x2ffffff2, /* 0010 1111 1111 1111  1111 1111 1111 0010 */

                /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0x87ffffff, /* 1000 0111 1111 1111  1111 1111 1111 1111 */

                /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0x47fffffe, /* 0100 0111 1111 1111  1111 1111 1111 1110 */

    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


/*
 * Checks what must hold before anything else happens to a protected
 * request (no body read, no AS asked): a canonical path, no repeated
 * argument names, no repeated bound headers, unless configured otherwise.
 * Parses the arguments once for the digest, authorization_details and
 * $ciba_arg_.  NGX_DECLINED: refused, ctx->reason says why.
 */

ngx_int_t
ngx_http_ciba_request_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    u_char     *p, *last, *q, *hash;
    ngx_int_t   rc;
    ngx_str_t   query;

    if (ctx->checked) {
        return NGX_OK;
    }

    ctx->checked = 1;

    if (cicf->path_mode == NGX_HTTP_CIBA_PATH_CANONICAL) {

        /*
         * the path and the query as the request line carries them, what
         * the agent sent (also after a rewrite in the location)
         */

        p = r->unparsed_uri.data;
        last = p + r->unparsed_uri.len;

        q = (p == NULL) ? NULL : ngx_strlchr(p, last, '?');

        ctx->path.data = p;
        ctx->path.len = (q ? q : last) - p;

        if (ngx_http_ciba_path_check(r, &ctx->path) != NGX_OK) {
            ctx->reason = "noncanonical_path";
            return NGX_DECLINED;
        }

        ngx_str_null(&query);

        if (q) {
            hash = ngx_strlchr(q + 1, last, '#');

            query.data = q + 1;
            query.len = (hash ? hash : last) - query.data;
        }

    } else {
        ctx->path = r->uri;
        query = r->args;
    }

    rc = ngx_http_ciba_args_parse(r, cicf, ctx, &query);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ciba_headers_check(r, cicf, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ciba_utf8_valid(ctx->action.data, ctx->action.len)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ciba: the action name is not valid UTF-8 and "
                      "cannot be sent to the authorization server");
        ctx->reason = "not_utf8";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_path_check(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char      *p, *last, *seg, c;
    ngx_uint_t   hi, lo;
    const char  *why;

    p = path->data;
    last = p + path->len;

    if (p == last || *p != '/') {
        why = "does not start with \"/\"";
        goto refused;
    }

    seg = p + 1;

    for (p++; /* void */; p++) {

        if (p == last || *p == '/') {

            /* the segment that ends here */

            if (p == seg && p != last) {
                why = "has an empty segment (\"//\")";
                goto refused;
            }

            if ((p - seg == 1 && seg[0] == '.')
                || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
            {
                why = "has a dot segment";
                goto refused;
            }

            if (p == last) {
                break;
            }

            seg = p + 1;
            continue;
        }

        c = *p;

        if (c == '%') {
            if (last - p < 3) {
                why = "has a bad escape";
                goto refused;
            }

            hi = p[1];
            lo = p[2];

            if (!((hi >= '0' && hi <= '9') || (hi >= 'A' && hi <= 'F'))
                || !((lo >= '0' && lo <= '9') || (lo >= 'A' && lo <= 'F')))
            {
                why = "has an escape that is not two uppercase hex digits";
                goto refused;
            }

            c = (u_char) (((hi >= 'A') ? hi - 'A' + 10 : hi - '0') << 4
                          | ((lo >= 'A') ? lo - 'A' + 10 : lo - '0'));

            if (c == '/' || c == '\0'
                || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                || (c >= '0' && c <= '9')
                || c == '-' || c == '.' || c == '_' || c == '~')
            {
                why = "escapes a byte that must be sent as is (or \"/\")";
                goto refused;
            }

            p += 2;
            continue;
        }

        if (!(ngx_http_ciba_path_chars[c >> 5] & (1U << (c & 0x1f)))) {
            why = "has a byte that must be escaped";
            goto refused;
        }
    }

    return NGX_OK;

refused:

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ciba: the path %s, refused by \"ciba_path canonical\"",
                  why);

    return NGX_DECLINED;
}


/*
 * Splits the query string into its pieces, sorts them stably by their
 * decoded, lowercased names, and refuses a repeated name unless
 * "ciba_duplicate_args keep".
 */

static ngx_int_t
ngx_http_ciba_args_parse(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *query)
{
    u_char               *p, *last, *amp, *eq, *d;
    ngx_uint_t            i, n;
    ngx_http_ciba_arg_t  *arg;

    ctx->args = ngx_array_create(r->pool, 8, sizeof(ngx_http_ciba_arg_t));
    if (ctx->args == NULL) {
        return NGX_ERROR;
    }

    /* no query: r->args.data is NULL, and NULL + 0 is undefined */

    if (query->len == 0) {
        return NGX_OK;
    }

    p = query->data;
    last = p + query->len;
    n = 0;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        if (amp > p) {
            arg = ngx_array_push(ctx->args);
            if (arg == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(arg, sizeof(ngx_http_ciba_arg_t));

            arg->piece.data = p;
            arg->piece.len = amp - p;
            arg->order = n++;

            eq = ngx_strlchr(p, amp, '=');

            arg->name.data = p;
            arg->name.len = (eq ? eq : amp) - p;

            /* empty, never NULL: it is decoded and checked as UTF-8 */
            arg->value.data = amp;

            if (eq) {
                arg->has_value = 1;
                arg->value.data = eq + 1;
                arg->value.len = amp - eq - 1;
            }

            d = ngx_pnalloc(r->pool, arg->name.len);
            if (d == NULL) {
                return NGX_ERROR;
            }

            arg->key.data = d;
            ngx_http_ciba_unescape_arg(&d, &arg->name);
            arg->key.len = d - arg->key.data;

            ngx_strlow(arg->key.data, arg->key.data, arg->key.len);
        }

        p = amp + 1;
    }

    if (ctx->args->nelts < 2) {
        return NGX_OK;
    }

    ngx_qsort(ctx->args->elts, ctx->args->nelts, sizeof(ngx_http_ciba_arg_t),
              ngx_http_ciba_cmp_args);

    if (cicf->duplicate_args == NGX_HTTP_CIBA_ARGS_KEEP) {
        return NGX_OK;
    }

    arg = ctx->args->elts;

    for (i = 1; i < ctx->args->nelts; i++) {
        if (arg[i].key.len == arg[i - 1].key.len
            && ngx_memcmp(arg[i].key.data, arg[i - 1].key.data,
                          arg[i].key.len)
               == 0)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ciba: the query repeats the argument \"%V\", "
                          "refused by \"ciba_duplicate_args refuse\"",
                          &arg[i].name);
            ctx->reason = "duplicate_arg";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* by name key, bytewise; equal keys keep the order of the request */

static int ngx_libc_cdecl
ngx_http_ciba_cmp_args(const void *one, const void *two)
{
    int                         rc;
    const ngx_http_ciba_arg_t  *a, *b;

    a = one;
    b = two;

    rc = ngx_memcmp(a->key.data, b->key.data, ngx_min(a->key.len, b->key.len));

    if (rc != 0) {
        return rc;
    }

    if (a->key.len != b->key.len) {
        return (a->key.len > b->key.len) ? 1 : -1;
    }

    return (a->order > b->order) - (a->order < b->order);
}


/*
 * Decodes a query string name or value as a form does: "+" is a space,
 * "%XX" (either case) a byte; a "%" without two hex digits stays as is.
 * "*dst" must have room for src->len bytes and is moved past the output.
 */

void
ngx_http_ciba_unescape_arg(u_char **dst, ngx_str_t *src)
{
    u_char      *d, *s, *last, c;
    ngx_int_t    hi, lo;

    d = *dst;
    s = src->data;
    last = s + src->len;

    while (s < last) {
        c = *s++;

        if (c == '+') {
            *d++ = ' ';
            continue;
        }

        if (c == '%' && last - s >= 2) {
            hi = ngx_hextoi(s, 1);
            lo = ngx_hextoi(s + 1, 1);

            if (hi != NGX_ERROR && lo != NGX_ERROR) {
                *d++ = (u_char) (hi << 4 | lo);
                s += 2;
                continue;
            }
        }

        *d++ = c;
    }

    *dst = d;
}


/*
 * NGX_OK when p holds valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing over U+10FFFF), as jansson requires.
 */

ngx_int_t
ngx_http_ciba_utf8_valid(u_char *p, size_t len)
{
    u_char      *last;
    uint32_t     u, min;
    ngx_uint_t   n;

    last = p + len;

    while (p < last) {
        u = *p++;

        if (u < 0x80) {
            continue;
        }

        if (u >= 0xc2 && u <= 0xdf) {
            n = 1;
            min = 0x80;
            u &= 0x1f;

        } else if (u >= 0xe0 && u <= 0xef) {
            n = 2;
            min = 0x800;
            u &= 0x0f;

        } else if (u >= 0xf0 && u <= 0xf4) {
            n = 3;
            min = 0x10000;
            u &= 0x07;

        } else {
            return NGX_DECLINED;
        }

        if ((size_t) (last - p) < n) {
            return NGX_DECLINED;
        }

        while (n--) {
            if ((*p & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }

            u = (u << 6) | (*p++ & 0x3f);
        }

        if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a bound header given twice is refused unless "repeated" */

static ngx_int_t
ngx_http_ciba_headers_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    ngx_uint_t                    j, n;
    ngx_http_ciba_header_t       *bound;
    ngx_http_ciba_header_iter_t   it;

    if (cicf->headers == NULL) {
        return NGX_OK;
    }

    bound = cicf->headers->elts;

    for (j = 0; j < cicf->headers->nelts; j++) {

        if (bound[j].repeated) {
            continue;
        }

        n = 0;
        it.part = NULL;

        while (ngx_http_ciba_next_header(r, &bound[j].name, &it)) {
            n++;
        }

        if (n > 1) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ciba: the request has %ui \"%V\" header "
                          "fields, refused by \"ciba_digest_header\" "
                          "without \"repeated\"", n, &bound[j].name);

            ctx->reason = "duplicate_header";

            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: the digest is in ctx->digest; NGX_DECLINED: the body is over the
 * limit (it is never partially hashed); NGX_ERROR: an internal failure.
 */

ngx_int_t
ngx_http_ciba_digest(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, off_t *body_len)
{
    u_char                   md_value[NGX_HTTP_CIBA_HASH_LEN];
    ngx_int_t                rc;
    ngx_str_t                src;
    ngx_http_ciba_ns_buf_t   nb;

    *body_len = 0;

    if ((cicf->covers & NGX_HTTP_CIBA_COVER_BODY) && !ctx->body_hashed) {
        rc = ngx_http_ciba_body_hash(r, cicf->body_limit, ctx->body_sha256,
                                     body_len);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->body_hashed = 1;
    }

    /*
     * the specification's byte string is built, then hashed at once: the
     * extras are variables, evaluated meanwhile, and may hash themselves
     */

    nb.start = ngx_pnalloc(r->pool, 1024);
    if (nb.start == NULL) {
        return NGX_ERROR;
    }

    nb.pos = nb.start;
    nb.end = nb.start + 1024;
    nb.pool = r->pool;

    rc = ngx_http_ciba_digest_run(r, cicf, ctx, &nb);

    if (rc == NGX_OK) {
        rc = ngx_http_ciba_sha256_buf(nb.start, nb.pos - nb.start, md_value);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ciba: computing the action digest failed");
        return NGX_ERROR;
    }

    ctx->digest.data = ngx_pnalloc(r->pool,
                           ngx_base64_encoded_length(NGX_HTTP_CIBA_HASH_LEN));
    if (ctx->digest.data == NULL) {
        return NGX_ERROR;
    }

    src.data = md_value;
    src.len = NGX_HTTP_CIBA_HASH_LEN;

    ngx_encode_base64url(&ctx->digest, &src);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_digest_run(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_ns_buf_t *md)
{
    u_char                     *p;
    u_char                      covers[sizeof("method,path,args,body")];
    ngx_str_t                   value;
    ngx_uint_t                  i;
    ngx_http_ciba_arg_t        *arg;
    ngx_http_complex_value_t   *cv;

    p = covers;

    for (i = 0; i < 4; i++) {
        if (cicf->covers & (1 << i)) {
            if (p != covers) {
                *p++ = ',';
            }

            if (i == 1 && cicf->path_mode == NGX_HTTP_CIBA_PATH_NORMALIZE) {
                /* nginx's $uri, not the path as sent */
                p = ngx_cpymem(p, "uri", 3);
                continue;
            }

            p = ngx_cpymem(p, ngx_http_ciba_cover_names[i].data,
                           ngx_http_ciba_cover_names[i].len);
        }
    }

    if (ngx_http_ciba_ns(md, (u_char *) NGX_HTTP_CIBA_DIGEST_MAGIC,
                         sizeof(NGX_HTTP_CIBA_DIGEST_MAGIC) - 1)
        != NGX_OK
        || ngx_http_ciba_ns(md, covers, p - covers) != NGX_OK
        || ngx_http_ciba_ns(md, ctx->action.data, ctx->action.len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cicf->covers & NGX_HTTP_CIBA_COVER_METHOD) {
        if (ngx_http_ciba_ns(md, r->method_name.data, r->method_name.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (cicf->covers & NGX_HTTP_CIBA_COVER_PATH) {
        if (ngx_http_ciba_ns(md, ctx->path.data, ctx->path.len) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (cicf->covers & NGX_HTTP_CIBA_COVER_ARGS) {
        if (ngx_http_ciba_ns_count(md, ctx->args->nelts) != NGX_OK) {
            return NGX_ERROR;
        }

        arg = ctx->args->elts;

        for (i = 0; i < ctx->args->nelts; i++) {
            if (ngx_http_ciba_ns(md, arg[i].piece.data, arg[i].piece.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (cicf->covers & NGX_HTTP_CIBA_COVER_BODY) {
        if (ngx_http_ciba_ns(md, ctx->body_sha256, 2 * 32) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (cicf->extras == NULL) {
        if (ngx_http_ciba_ns_count(md, 0) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        if (ngx_http_ciba_ns_count(md, cicf->extras->nelts) != NGX_OK) {
            return NGX_ERROR;
        }

        cv = cicf->extras->elts;

        for (i = 0; i < cicf->extras->nelts; i++) {
            if (ngx_http_complex_value(r, &cv[i], &value) != NGX_OK
                || ngx_http_ciba_ns(md, value.data, value.len) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return ngx_http_ciba_digest_headers(r, cicf, md);
}


/* NS(k), then for each bound header NS(name) NS(count) NS(value)... */

static ngx_int_t
ngx_http_ciba_digest_headers(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ns_buf_t *md)
{
    ngx_uint_t                    j, n;
    ngx_table_elt_t              *h;
    ngx_http_ciba_header_t       *bound;
    ngx_http_ciba_header_iter_t   it;

    if (cicf->headers == NULL) {
        return ngx_http_ciba_ns_count(md, 0);
    }

    if (ngx_http_ciba_ns_count(md, cicf->headers->nelts) != NGX_OK) {
        return NGX_ERROR;
    }

    bound = cicf->headers->elts;

    for (j = 0; j < cicf->headers->nelts; j++) {

        n = 0;
        it.part = NULL;

        while (ngx_http_ciba_next_header(r, &bound[j].name, &it)) {
            n++;
        }

        if (ngx_http_ciba_ns(md, bound[j].name.data, bound[j].name.len)
            != NGX_OK
            || ngx_http_ciba_ns_count(md, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        it.part = NULL;

        while ((h = ngx_http_ciba_next_header(r, &bound[j].name, &it))) {
            if (ngx_http_ciba_ns(md, h->value.data, h->value.len) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* appends NS(data) = decimal length ":" data "," to the digest's input */

static ngx_int_t
ngx_http_ciba_ns(ngx_http_ciba_ns_buf_t *nb, u_char *data, size_t len)
{
    u_char  *p, *start, digits[NGX_SIZE_T_LEN];
    size_t   size;

    if ((size_t) (nb->end - nb->pos) < len + NGX_SIZE_T_LEN + 2) {
        size = 2 * (nb->end - nb->start) + len + NGX_SIZE_T_LEN + 2;

        start = ngx_pnalloc(nb->pool, size);
        if (start == NULL) {
            return NGX_ERROR;
        }

        nb->pos = ngx_cpymem(start, nb->start, nb->pos - nb->start);
        nb->start = start;
        nb->end = start + size;
    }

    p = ngx_http_ciba_decimal(digits + NGX_SIZE_T_LEN, len);

    nb->pos = ngx_cpymem(nb->pos, p, digits + NGX_SIZE_T_LEN - p);
    *nb->pos++ = ':';
    nb->pos = ngx_cpymem(nb->pos, data, len);
    *nb->pos++ = ',';

    return NGX_OK;
}


/* NS of a count, written in decimal */

static ngx_int_t
ngx_http_ciba_ns_count(ngx_http_ciba_ns_buf_t *nb, ngx_uint_t n)
{
    u_char  *p, count[NGX_INT_T_LEN];

    p = ngx_http_ciba_decimal(count + NGX_INT_T_LEN, n);

    return ngx_http_ciba_ns(nb, p, count + NGX_INT_T_LEN - p);
}


/* writes n in decimal backwards, ending at "last"; returns its start */

static u_char *
ngx_http_ciba_decimal(u_char *last, size_t n)
{
    do {
        *--last = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return last;
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

    md = ngx_http_ciba_hash_start(ngx_http_ciba_sha256());
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

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

    return rc;
}


char *
ngx_http_ciba_digest_covers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, j;

    if (cicf->covers) {
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

        if (cicf->covers & (1 << j)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "part \"%V\" is given twice", &value[i]);
            return NGX_CONF_ERROR;
        }

        cicf->covers |= 1 << j;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_ciba_digest_extra(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    ngx_str_t                         *value;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (cicf->extras == NGX_CONF_UNSET_PTR) {
        cicf->extras = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_complex_value_t));
        if (cicf->extras == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cv = ngx_array_push(cicf->extras);
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


/* ciba_digest_header name [repeated]; */

char *
ngx_http_ciba_digest_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    u_char                  *p;
    ngx_str_t               *value;
    ngx_uint_t               i;
    ngx_http_ciba_header_t  *h;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty header name";
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (cf->args->nelts == 3
        && !(value[2].len == 8
             && ngx_strncmp(value[2].data, "repeated", 8) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"repeated\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    if (cicf->headers == NGX_CONF_UNSET_PTR) {
        cicf->headers = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_ciba_header_t));
        if (cicf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = cicf->headers->elts;

    for (i = 0; i < cicf->headers->nelts; i++) {
        if (h[i].name.len == value[1].len
            && ngx_strncasecmp(h[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "header \"%V\" is bound twice", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(cicf->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name.len = value[1].len;
    h->name.data = ngx_pnalloc(cf->pool, value[1].len);
    if (h->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(h->name.data, value[1].data, value[1].len);
    h->repeated = (cf->args->nelts == 3);

    return NGX_CONF_OK;
}
