
/*
 * ngx_http_ciba_module: approval token validation.
 *
 * The token is parsed once, strictly (canonical base64url, each part
 * decoded once; JSON objects without duplicate members), and every claim
 * is checked here; ngx_http_ciba_verify.c verifies the decoded signature
 * over the signing input the parse delimited, with the key this module
 * selected and the algorithm it pinned.  Cheap checks come first: shape,
 * algorithm, key, issuer, audience, time, binding and a replay lookup.
 * The checks give a reason of ngx_http_ciba_refusal_e;
 * ngx_http_ciba_token_check() alone turns it into the request's outcome.
 * Nothing is recorded before the signature verifies: recording the jti is
 * the caller's next step.
 */


#include "ngx_http_ciba.h"

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_TIME_MAX  253402300799     /* 9999-12-31T23:59:59Z */
#define NGX_HTTP_CIBA_B64_BAD   64


static ngx_int_t ngx_http_ciba_token_parse(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_str_t *raw,
    ngx_http_ciba_token_t *tok, ngx_http_ciba_json_t **payload);
static ngx_int_t ngx_http_ciba_token_checks(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *raw, ngx_http_ciba_token_t *tok, ngx_uint_t flags);
static ngx_int_t ngx_http_ciba_b64url_decode(ngx_str_t *dst,
    ngx_str_t *src);
static ngx_int_t ngx_http_ciba_get_str(ngx_http_ciba_json_t *doc,
    ngx_int_t obj, const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_ciba_get_time(ngx_http_ciba_json_t *doc,
    const char *name, time_t *value);
static ngx_int_t ngx_http_ciba_str_eq(ngx_str_t *a, const char *b,
    size_t len);
static ngx_int_t ngx_http_ciba_check_header(ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_json_t *hdr, ngx_http_ciba_token_t *tok);
static ngx_int_t ngx_http_ciba_check_claims(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_json_t *pl, ngx_http_ciba_token_t *tok, ngx_uint_t flags);
static ngx_int_t ngx_http_ciba_check_binding(ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_http_ciba_json_t *pl,
    ngx_http_ciba_token_t *tok);
static ngx_int_t ngx_http_ciba_aud_match(ngx_http_ciba_json_t *doc,
    ngx_int_t aud, ngx_str_t *wanted, ngx_uint_t n);
static ngx_int_t ngx_http_ciba_typ_eq(ngx_str_t *want, ngx_str_t *got);


/*
 * the value of each base64url character (RFC 4648 5), and
 * NGX_HTTP_CIBA_B64_BAD for any other byte
 */

static const u_char  ngx_http_ciba_b64url[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 63,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
};


/* the reasons of ngx_http_ciba_refusal_e, in its order, and their outcome */

typedef struct {
    const char                 *reason;
    ngx_http_ciba_outcome_e     outcome;
} ngx_http_ciba_refusal_t;


static ngx_http_ciba_refusal_t  ngx_http_ciba_refusals[] = {
    { NULL, NGX_HTTP_CIBA_APPROVED },
    { "empty_token", NGX_HTTP_CIBA_INVALID },
    { "token_too_large", NGX_HTTP_CIBA_INVALID },
    { "malformed_token", NGX_HTTP_CIBA_INVALID },
    { "malformed_header", NGX_HTTP_CIBA_INVALID },
    { "malformed_payload", NGX_HTTP_CIBA_INVALID },
    { "alg_not_allowed", NGX_HTTP_CIBA_INVALID },
    { "crit_unsupported", NGX_HTTP_CIBA_INVALID },
    { "bad_typ", NGX_HTTP_CIBA_INVALID },
    { "unknown_kid", NGX_HTTP_CIBA_INVALID },
    { "key_alg_mismatch", NGX_HTTP_CIBA_INVALID },
    { "no_key_for_alg", NGX_HTTP_CIBA_INVALID },
    { "kid_required", NGX_HTTP_CIBA_INVALID },
    { "bad_jti", NGX_HTTP_CIBA_INVALID },
    { "bad_issuer", NGX_HTTP_CIBA_INVALID },
    { "bad_audience", NGX_HTTP_CIBA_INVALID },
    { "bad_exp", NGX_HTTP_CIBA_INVALID },
    { "token_expired", NGX_HTTP_CIBA_INVALID },
    { "bad_nbf", NGX_HTTP_CIBA_INVALID },
    { "token_not_yet_valid", NGX_HTTP_CIBA_INVALID },
    { "bad_iat", NGX_HTTP_CIBA_INVALID },
    { "iat_in_future", NGX_HTTP_CIBA_INVALID },
    { "token_too_old", NGX_HTTP_CIBA_INVALID },
    { "issued_before_start", NGX_HTTP_CIBA_INVALID },
    { "bad_sub", NGX_HTTP_CIBA_INVALID },
    { "subject_mismatch", NGX_HTTP_CIBA_MISMATCH },
    { "no_binding", NGX_HTTP_CIBA_MISMATCH },
    { "digest_mismatch", NGX_HTTP_CIBA_MISMATCH },
    { "action_mismatch", NGX_HTTP_CIBA_MISMATCH },
    { "jti_replayed", NGX_HTTP_CIBA_REPLAYED },
    { "bad_signature", NGX_HTTP_CIBA_INVALID }
};


/*
 * The shape, the header (algorithm, key) and the payload: NGX_OK with the
 * payload object in *payload and the signature's bytes in tok->signature
 * (none if it is not canonical base64url: the signature check refuses
 * it), or a refusal.
 */

static ngx_int_t
ngx_http_ciba_token_parse(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_str_t *raw,
    ngx_http_ciba_token_t *tok, ngx_http_ciba_json_t **payload)
{
    u_char                *p, *last, *dot[2];
    ngx_int_t              rc;
    ngx_str_t              part[3], dec[3];
    ngx_uint_t             i, bad;
    ngx_http_ciba_json_t   hdr, *pl;

    if (raw->len == 0) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_EMPTY_TOKEN;
        return NGX_DECLINED;
    }

    if (raw->len > NGX_HTTP_CIBA_TOKEN_MAX) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_TOKEN_TOO_LARGE;
        return NGX_DECLINED;
    }

    /*
     * shape: three non-empty parts of the base64url alphabet; a third dot
     * is a byte outside it, which decoding finds
     */

    last = raw->data + raw->len;

    dot[0] = memchr(raw->data, '.', raw->len);
    dot[1] = (dot[0] == NULL) ? NULL : memchr(dot[0] + 1, '.',
                                              last - dot[0] - 1);

    if (dot[1] == NULL
        || dot[0] == raw->data
        || dot[1] == dot[0] + 1
        || dot[1] + 1 == last)
    {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_TOKEN;
        return NGX_DECLINED;
    }

    part[0].data = raw->data;
    part[0].len = dot[0] - raw->data;
    part[1].data = dot[0] + 1;
    part[1].len = dot[1] - dot[0] - 1;
    part[2].data = dot[1] + 1;
    part[2].len = last - dot[1] - 1;

    /* what the signature covers: verified last */

    tok->input.data = raw->data;
    tok->input.len = dot[1] - raw->data;

    /* the three parts decoded into one buffer, each part once */

    p = ngx_pnalloc(r->pool, ngx_base64_decoded_length(raw->len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    bad = 0;

    for (i = 0; i < 3; i++) {
        dec[i].data = p;

        if (ngx_http_ciba_b64url_decode(&dec[i], &part[i]) != NGX_OK) {
            dec[i].len = 0;
            bad |= 1 << i;
        }

        p += dec[i].len;
    }

    if (bad) {

        /* a byte outside the alphabet anywhere spoils the whole token */

        for (i = 0; i < 3; i++) {
            for (p = part[i].data; p < part[i].data + part[i].len; p++) {
                if (ngx_http_ciba_b64url[*p] == NGX_HTTP_CIBA_B64_BAD) {
                    tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_TOKEN;
                    return NGX_DECLINED;
                }
            }
        }
    }

    rc = (bad & 1) ? NGX_DECLINED
                   : ngx_http_ciba_json_parse(r->pool, dec[0].data,
                                              dec[0].len, &hdr);

    if (rc == NGX_DECLINED) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_HEADER;
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_ciba_check_header(cicf, &hdr, tok);
    if (rc != NGX_OK) {
        return rc;
    }

    pl = ngx_palloc(r->pool, sizeof(ngx_http_ciba_json_t));
    if (pl == NULL) {
        return NGX_ERROR;
    }

    rc = (bad & 2) ? NGX_DECLINED
                   : ngx_http_ciba_json_parse(r->pool, dec[1].data,
                                              dec[1].len, pl);

    if (rc == NGX_DECLINED) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_PAYLOAD;
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    tok->signature = dec[2];
    *payload = pl;

    return NGX_OK;
}


/*
 * Strict base64url without padding (RFC 7515 2): NGX_OK, or NGX_DECLINED
 * for a byte outside the alphabet, a length of 4n + 1, or bits set after
 * the last whole byte (so that a value has one encoding only).  dst->data
 * has room for ngx_base64_decoded_length(src->len) bytes.
 */

static ngx_int_t
ngx_http_ciba_b64url_decode(ngx_str_t *dst, ngx_str_t *src)
{
    u_char    *s, *d, *last;
    uint32_t   a, b, c, e;

    s = src->data;
    d = dst->data;
    last = s + (src->len & ~(size_t) 3);

    while (s < last) {
        a = ngx_http_ciba_b64url[s[0]];
        b = ngx_http_ciba_b64url[s[1]];
        c = ngx_http_ciba_b64url[s[2]];
        e = ngx_http_ciba_b64url[s[3]];

        if ((a | b | c | e) & NGX_HTTP_CIBA_B64_BAD) {
            return NGX_DECLINED;
        }

        a = (a << 18) | (b << 12) | (c << 6) | e;

        *d++ = (u_char) (a >> 16);
        *d++ = (u_char) (a >> 8);
        *d++ = (u_char) a;

        s += 4;
    }

    switch (src->len & 3) {

    case 0:
        break;

    case 2:
        a = ngx_http_ciba_b64url[s[0]];
        b = ngx_http_ciba_b64url[s[1]];

        if (((a | b) & NGX_HTTP_CIBA_B64_BAD) || (b & 0x0f)) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) ((a << 2) | (b >> 4));
        break;

    case 3:
        a = ngx_http_ciba_b64url[s[0]];
        b = ngx_http_ciba_b64url[s[1]];
        c = ngx_http_ciba_b64url[s[2]];

        if (((a | b | c) & NGX_HTTP_CIBA_B64_BAD) || (c & 0x03)) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) ((a << 2) | (b >> 4));
        *d++ = (u_char) ((b << 4) | (c >> 2));
        break;

    default: /* 1 */
        return NGX_DECLINED;
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


/*
 * NGX_OK: the token is valid, bound to this request and not used yet
 * (as far as the store knows now); NGX_DECLINED: refused, the outcome and
 * the reason are in ctx; NGX_ERROR: an internal failure.  What the
 * decision line shows of the token (algorithm, configured kid, jti) goes
 * to ctx either way.
 */

ngx_int_t
ngx_http_ciba_token_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *raw, ngx_http_ciba_token_t *tok, ngx_uint_t flags)
{
    ngx_int_t  rc;

    rc = ngx_http_ciba_token_checks(r, cicf, ctx, raw, tok, flags);

    if (tok->algorithm) {
        ctx->alg = tok->algorithm->name;
    }

    if (tok->key) {
        ctx->kid = tok->key->kid;
    }

    ctx->jti = tok->jti;

    if (rc == NGX_OK) {
        ctx->approver = tok->sub;

    } else if (rc == NGX_DECLINED) {
        ctx->outcome = ngx_http_ciba_refusals[tok->refusal].outcome;
        ctx->reason = ngx_http_ciba_refusals[tok->refusal].reason;
    }

    return rc;
}


/* the checks, cheap ones first: NGX_DECLINED with tok->refusal */

static ngx_int_t
ngx_http_ciba_token_checks(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *raw, ngx_http_ciba_token_t *tok, ngx_uint_t flags)
{
    ngx_int_t                   rc;
    ngx_http_ciba_json_t       *pl;
    ngx_http_ciba_main_conf_t  *cimcf;

    rc = ngx_http_ciba_token_parse(r, cicf, raw, tok, &pl);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ciba_check_claims(r, cicf, ctx, pl, tok, flags);
    if (rc != NGX_OK) {
        return rc;
    }

    if (flags & NGX_HTTP_CIBA_TOKEN_FROM_AS) {

        /*
         * the token endpoint gave it for this handle's auth_req_id: that
         * binds it; an authorization_details entry of our type, when the
         * AS put one in, must agree
         */

        if (ngx_http_ciba_json_get(pl, 0, "authorization_details")
            != NGX_HTTP_CIBA_JSON_NONE
            || cicf->binding_claim.len)
        {
            rc = ngx_http_ciba_check_binding(cicf, ctx, pl, tok);

            if (rc != NGX_OK
                && tok->refusal != NGX_HTTP_CIBA_REFUSED_NO_BINDING)
            {
                return rc;
            }

            tok->refusal = NGX_HTTP_CIBA_NOT_REFUSED;
        }

        goto verify;
    }

    rc = ngx_http_ciba_check_binding(cicf, ctx, pl, tok);
    if (rc != NGX_OK) {
        return rc;
    }

    /* a replay needs no signature check: refuse it early and cheaply */

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    if (ngx_http_ciba_store_key(&tok->iss, &tok->jti, tok->record) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_store_seen(cimcf->shm_zone, tok->record) == NGX_BUSY) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_JTI_REPLAYED;
        return NGX_DECLINED;
    }

verify:

    rc = ngx_http_ciba_verify(r, tok);

    if (rc == NGX_DECLINED) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_SIGNATURE;
    }

    return rc;
}


static ngx_int_t
ngx_http_ciba_check_header(ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_json_t *hdr, ngx_http_ciba_token_t *tok)
{
    ngx_str_t             typ;
    ngx_uint_t            i, n;
    ngx_http_ciba_key_t  *keys, *key;
    ngx_http_ciba_alg_t  *alg;

    if (ngx_http_ciba_get_str(hdr, 0, "alg", &tok->alg) != NGX_OK) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_HEADER;
        return NGX_DECLINED;
    }

    alg = ngx_http_ciba_alg_by_name(tok->alg.data, tok->alg.len);

    if (alg == NULL || !(alg->bit & cicf->algorithms)) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_ALG_NOT_ALLOWED;
        return NGX_DECLINED;
    }

    tok->algorithm = alg;

    /* no extension is understood, so none may be critical (RFC 7515) */

    if (ngx_http_ciba_json_get(hdr, 0, "crit") != NGX_HTTP_CIBA_JSON_NONE) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_CRIT_UNSUPPORTED;
        return NGX_DECLINED;
    }

    if (cicf->typ.len) {
        if (ngx_http_ciba_get_str(hdr, 0, "typ", &typ) != NGX_OK
            || ngx_http_ciba_typ_eq(&cicf->typ, &typ) != NGX_OK)
        {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_TYP;
            return NGX_DECLINED;
        }
    }

    /*
     * "kid" only selects among the configured keys; "jku", "x5u", "jwk"
     * and "x5c" are never followed or used
     */

    keys = cicf->keys->elts;
    key = NULL;

    if (ngx_http_ciba_json_get(hdr, 0, "kid") != NGX_HTTP_CIBA_JSON_NONE) {

        if (ngx_http_ciba_get_str(hdr, 0, "kid", &tok->kid) != NGX_OK
            || tok->kid.len > 256)
        {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_MALFORMED_HEADER;
            return NGX_DECLINED;
        }

        /* an empty kid names no key, not a key configured without one */

        if (tok->kid.len == 0) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_UNKNOWN_KID;
            return NGX_DECLINED;
        }

        for (i = 0; i < cicf->keys->nelts; i++) {
            if (keys[i].kid.len == tok->kid.len
                && ngx_strncmp(keys[i].kid.data, tok->kid.data,
                               tok->kid.len)
                   == 0)
            {
                key = &keys[i];
                break;
            }
        }

        if (key == NULL) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_UNKNOWN_KID;
            return NGX_DECLINED;
        }

        tok->key = key;

        if (!(key->algs & alg->bit)) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_KEY_ALG_MISMATCH;
            return NGX_DECLINED;
        }

    } else {

        /* without a kid, only an unambiguous key will do */

        n = 0;

        for (i = 0; i < cicf->keys->nelts; i++) {
            if (keys[i].algs & alg->bit) {
                key = &keys[i];
                n++;
            }
        }

        if (n == 0) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_NO_KEY_FOR_ALG;
            return NGX_DECLINED;
        }

        if (n > 1) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_KID_REQUIRED;
            return NGX_DECLINED;
        }

        tok->key = key;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_check_claims(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_json_t *pl, ngx_http_ciba_token_t *tok, ngx_uint_t flags)
{
    time_t                      now, nbf, epoch;
    ngx_http_ciba_main_conf_t  *cimcf;

    if ((flags & NGX_HTTP_CIBA_TOKEN_FROM_AS)
        && ngx_http_ciba_json_get(pl, 0, "jti") == NGX_HTTP_CIBA_JSON_NONE)
    {
        /* not needed: the auth_req_id is what is consumed */
        ngx_str_null(&tok->jti);

    } else if (ngx_http_ciba_get_str(pl, 0, "jti", &tok->jti) != NGX_OK
               || tok->jti.len == 0
               || tok->jti.len > NGX_HTTP_CIBA_JTI_MAX)
    {
        /* a good jti is logged, verified or not: the reason tells which */
        ngx_str_null(&tok->jti);
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_JTI;
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_get_str(pl, 0, "iss", &tok->iss) != NGX_OK
        || tok->iss.len != cicf->issuer.len
        || ngx_strncmp(tok->iss.data, cicf->issuer.data, tok->iss.len) != 0)
    {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_ISSUER;
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_aud_match(pl, ngx_http_ciba_json_get(pl, 0, "aud"),
                                cicf->audiences->elts,
                                cicf->audiences->nelts)
        != NGX_OK)
    {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_AUDIENCE;
        return NGX_DECLINED;
    }

    now = ngx_time();

    if (ngx_http_ciba_get_time(pl, "exp", &tok->exp) != NGX_OK) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_EXP;
        return NGX_DECLINED;
    }

    if (now > tok->exp + cicf->leeway) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_TOKEN_EXPIRED;
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_json_get(pl, 0, "nbf") != NGX_HTTP_CIBA_JSON_NONE) {
        if (ngx_http_ciba_get_time(pl, "nbf", &nbf) != NGX_OK) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_NBF;
            return NGX_DECLINED;
        }

        if (nbf > now + cicf->leeway) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_TOKEN_NOT_YET_VALID;
            return NGX_DECLINED;
        }
    }

    if (ngx_http_ciba_get_time(pl, "iat", &tok->iat) != NGX_OK) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_IAT;
        return NGX_DECLINED;
    }

    if (tok->iat > now + cicf->leeway) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_IAT_IN_FUTURE;
        return NGX_DECLINED;
    }

    if (now - tok->iat > cicf->max_age + cicf->leeway) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_TOKEN_TOO_OLD;
        return NGX_DECLINED;
    }

    /*
     * the store only knows what it saw since it started: a token issued
     * before then may have been used already, so it is refused; with
     * clocks apart by up to the leeway (and within the same second), that
     * is any token whose iat is not later than the start plus the leeway
     */

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);
    epoch = ngx_http_ciba_store_epoch(cimcf->shm_zone);

    if (!(flags & NGX_HTTP_CIBA_TOKEN_FROM_AS)
        && tok->iat <= epoch + cicf->leeway)
    {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_ISSUED_BEFORE_START;
        return NGX_DECLINED;
    }


    if (ngx_http_ciba_json_get(pl, 0, "sub") != NGX_HTTP_CIBA_JSON_NONE) {
        if (ngx_http_ciba_get_str(pl, 0, "sub", &tok->sub) != NGX_OK) {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_BAD_SUB;
            return NGX_DECLINED;
        }
    }

    if (cicf->subject) {
        if (ctx->subject.len == 0
            || tok->sub.len != ctx->subject.len
            || ngx_strncmp(tok->sub.data, ctx->subject.data, tok->sub.len)
               != 0)
        {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_SUBJECT_MISMATCH;
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * The binding: an "authorization_details" entry of the configured type
 * whose "identifier" is this request's digest (and whose "actions", when
 * present, name this action), or, for an authorization server without
 * RAR, a configured claim holding the digest.
 */

static ngx_int_t
ngx_http_ciba_check_binding(ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_http_ciba_json_t *pl,
    ngx_http_ciba_token_t *tok)
{
    ngx_int_t               ad, entry, actions, a;
    ngx_str_t               value;
    ngx_uint_t              i, j, typed, identified, bound;
    ngx_http_ciba_jnode_t  *nodes;

    if (cicf->binding_claim.len) {

        if (ngx_http_ciba_json_get(pl, 0, (char *) cicf->binding_claim.data)
            == NGX_HTTP_CIBA_JSON_NONE)
        {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_NO_BINDING;
            return NGX_DECLINED;
        }

        if (ngx_http_ciba_get_str(pl, 0, (char *) cicf->binding_claim.data,
                                  &value)
            != NGX_OK
            || ngx_http_ciba_str_eq(&ctx->digest, (char *) value.data,
                                    value.len)
               != NGX_OK)
        {
            tok->refusal = NGX_HTTP_CIBA_REFUSED_DIGEST_MISMATCH;
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    nodes = pl->nodes;

    ad = ngx_http_ciba_json_get(pl, 0, "authorization_details");

    if (ad == NGX_HTTP_CIBA_JSON_NONE
        || nodes[ad].type != NGX_HTTP_CIBA_JSON_ARRAY)
    {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_NO_BINDING;
        return NGX_DECLINED;
    }

    typed = 0;
    identified = 0;
    bound = 0;

    for (i = 0, entry = ad + 1;
         i < nodes[ad].count;
         i++, entry = nodes[entry].next)
    {
        if (ngx_http_ciba_get_str(pl, entry, "type", &value) != NGX_OK
            || ngx_http_ciba_str_eq(&cicf->rar_type, (char *) value.data,
                                    value.len)
               != NGX_OK)
        {
            continue;
        }

        typed = 1;

        if (ngx_http_ciba_get_str(pl, entry, "identifier", &value) != NGX_OK
            || ngx_http_ciba_str_eq(&ctx->digest, (char *) value.data,
                                    value.len)
               != NGX_OK)
        {
            continue;
        }

        identified = 1;

        actions = ngx_http_ciba_json_get(pl, entry, "actions");

        if (actions == NGX_HTTP_CIBA_JSON_NONE) {
            bound = 1;
            break;
        }

        if (nodes[actions].type != NGX_HTTP_CIBA_JSON_ARRAY) {
            continue;
        }

        for (j = 0, a = actions + 1;
             j < nodes[actions].count;
             j++, a = nodes[a].next)
        {
            if (nodes[a].type == NGX_HTTP_CIBA_JSON_STRING
                && ngx_http_ciba_str_eq(&ctx->action,
                                        (char *) nodes[a].value.data,
                                        nodes[a].value.len)
                   == NGX_OK)
            {
                bound = 1;
                break;
            }
        }

        if (bound) {
            break;
        }
    }

    if (!typed) {
        tok->refusal = NGX_HTTP_CIBA_REFUSED_NO_BINDING;
        return NGX_DECLINED;
    }

    if (!bound) {
        tok->refusal = identified ? NGX_HTTP_CIBA_REFUSED_ACTION_MISMATCH
                                  : NGX_HTTP_CIBA_REFUSED_DIGEST_MISMATCH;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * "aud", a string or an array of strings, holds one of the n wanted
 * values: NGX_OK; NGX_DECLINED when it does not, or is of another shape
 * (an array member that is not a string included)
 */

static ngx_int_t
ngx_http_ciba_aud_match(ngx_http_ciba_json_t *doc, ngx_int_t aud,
    ngx_str_t *wanted, ngx_uint_t n)
{
    ngx_int_t               v;
    ngx_uint_t              i, j, found;
    ngx_http_ciba_jnode_t  *nodes;

    if (aud == NGX_HTTP_CIBA_JSON_NONE) {
        return NGX_DECLINED;
    }

    nodes = doc->nodes;

    if (nodes[aud].type == NGX_HTTP_CIBA_JSON_STRING) {
        for (j = 0; j < n; j++) {
            if (ngx_http_ciba_str_eq(&wanted[j],
                                     (char *) nodes[aud].value.data,
                                     nodes[aud].value.len)
                == NGX_OK)
            {
                return NGX_OK;
            }
        }

        return NGX_DECLINED;
    }

    if (nodes[aud].type != NGX_HTTP_CIBA_JSON_ARRAY) {
        return NGX_DECLINED;
    }

    found = 0;

    for (i = 0, v = aud + 1; i < nodes[aud].count; i++, v = nodes[v].next) {

        if (nodes[v].type != NGX_HTTP_CIBA_JSON_STRING) {
            return NGX_DECLINED;
        }

        for (j = 0; j < n; j++) {
            if (ngx_http_ciba_str_eq(&wanted[j], (char *) nodes[v].value.data,
                                     nodes[v].value.len)
                == NGX_OK)
            {
                found = 1;
            }
        }
    }

    return found ? NGX_OK : NGX_DECLINED;
}


/* the string member "name" of the object at "obj" */

static ngx_int_t
ngx_http_ciba_get_str(ngx_http_ciba_json_t *doc, ngx_int_t obj,
    const char *name, ngx_str_t *value)
{
    ngx_int_t  v;

    v = ngx_http_ciba_json_get(doc, obj, name);

    if (v == NGX_HTTP_CIBA_JSON_NONE
        || doc->nodes[v].type != NGX_HTTP_CIBA_JSON_STRING)
    {
        return NGX_ERROR;
    }

    *value = doc->nodes[v].value;

    return NGX_OK;
}


/* a NumericDate member of the top object: an integer, or a finite real */

static ngx_int_t
ngx_http_ciba_get_time(ngx_http_ciba_json_t *doc, const char *name,
    time_t *value)
{
    ngx_int_t               v;
    ngx_http_ciba_jnode_t  *node;

    v = ngx_http_ciba_json_get(doc, 0, name);

    if (v == NGX_HTTP_CIBA_JSON_NONE) {
        return NGX_ERROR;
    }

    node = &doc->nodes[v];

    if (node->type == NGX_HTTP_CIBA_JSON_INTEGER) {
        if (node->integer < 0 || node->integer > NGX_HTTP_CIBA_TIME_MAX) {
            return NGX_ERROR;
        }

        *value = (time_t) node->integer;
        return NGX_OK;
    }

    if (node->type == NGX_HTTP_CIBA_JSON_REAL) {
        if (!(node->real >= 0 && node->real <= (double) NGX_HTTP_CIBA_TIME_MAX))
        {
            return NGX_ERROR;
        }

        *value = (time_t) node->real;
        return NGX_OK;
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ciba_str_eq(ngx_str_t *a, const char *b, size_t len)
{
    if (a->len == len && ngx_strncmp(a->data, b, len) == 0) {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* "typ" compares case-insensitively, "application/" may be left out */

static ngx_int_t
ngx_http_ciba_typ_eq(ngx_str_t *want, ngx_str_t *got)
{
    ngx_str_t  a, b;

    a = *want;
    b = *got;

    if (a.len > 12 && ngx_strncasecmp(a.data, (u_char *) "application/", 12)
                      == 0)
    {
        a.data += 12;
        a.len -= 12;
    }

    if (b.len > 12 && ngx_strncasecmp(b.data, (u_char *) "application/", 12)
                      == 0)
    {
        b.data += 12;
        b.len -= 12;
    }

    if (a.len == b.len && ngx_strncasecmp(a.data, b.data, a.len) == 0) {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * A pushed id_token (CIBA push mode): signed by a configured key, issued
 * by the issuer for this client, not expired, for this auth_req_id, and
 * with an at_hash of the access token pushed with it.  NGX_OK, or
 * NGX_DECLINED with the reason.
 */

ngx_int_t
ngx_http_ciba_id_token_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_str_t *id_token,
    ngx_str_t *auth_req_id, ngx_str_t *access_token, ngx_str_t *client_id,
    const char **reason)
{
    time_t                  now, exp, iat;
    u_char                  md_value[EVP_MAX_MD_SIZE];
    ngx_int_t               rc;
    ngx_str_t               value, src, at_hash;
    unsigned int            md_len;
    const EVP_MD           *md;
    ngx_http_ciba_json_t   *pl;
    ngx_http_ciba_token_t   tok;

    ngx_memzero(&tok, sizeof(ngx_http_ciba_token_t));

    *reason = "bad_id_token";

    rc = ngx_http_ciba_token_parse(r, cicf, id_token, &tok, &pl);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            *reason = ngx_http_ciba_refusals[tok.refusal].reason;
        }

        return rc;
    }

    if (ngx_http_ciba_get_str(pl, 0, "iss", &value) != NGX_OK
        || ngx_http_ciba_str_eq(&cicf->issuer, (char *) value.data,
                                value.len)
           != NGX_OK)
    {
        *reason = "id_token_bad_issuer";
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_aud_match(pl, ngx_http_ciba_json_get(pl, 0, "aud"),
                                client_id, 1)
        != NGX_OK)
    {
        *reason = "id_token_bad_audience";
        return NGX_DECLINED;
    }

    now = ngx_time();

    if (ngx_http_ciba_get_time(pl, "exp", &exp) != NGX_OK
        || now > exp + cicf->leeway
        || ngx_http_ciba_get_time(pl, "iat", &iat) != NGX_OK
        || iat > now + cicf->leeway)
    {
        *reason = "id_token_expired";
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_get_str(pl, 0, "urn:openid:params:jwt:claim:auth_req_id",
                              &value)
        != NGX_OK
        || ngx_http_ciba_str_eq(auth_req_id, (char *) value.data, value.len)
           != NGX_OK)
    {
        *reason = "id_token_auth_req_id_mismatch";
        return NGX_DECLINED;
    }

    /* at_hash: the left half of the hash of the access token (OIDC) */

    switch (tok.algorithm->bit) {

    case NGX_HTTP_CIBA_ALG_ES384:
    case NGX_HTTP_CIBA_ALG_RS384:
    case NGX_HTTP_CIBA_ALG_PS384:
    case NGX_HTTP_CIBA_ALG_HS384:
        md = EVP_sha384();
        break;

    case NGX_HTTP_CIBA_ALG_ES512:
    case NGX_HTTP_CIBA_ALG_RS512:
    case NGX_HTTP_CIBA_ALG_PS512:
    case NGX_HTTP_CIBA_ALG_HS512:
    case NGX_HTTP_CIBA_ALG_EDDSA:
        md = EVP_sha512();
        break;

    default:
        md = EVP_sha256();
    }

    if (EVP_Digest(access_token->data, access_token->len, md_value, &md_len,
                   md, NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    src.data = md_value;
    src.len = md_len / 2;

    at_hash.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(src.len));
    if (at_hash.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(&at_hash, &src);

    if (ngx_http_ciba_get_str(pl, 0, "at_hash", &value) != NGX_OK
        || value.len != at_hash.len
        || ngx_memcmp(value.data, at_hash.data, at_hash.len) != 0)
    {
        *reason = "id_token_at_hash_mismatch";
        return NGX_DECLINED;
    }

    rc = ngx_http_ciba_verify(r, &tok);

    if (rc == NGX_DECLINED) {
        *reason = "id_token_bad_signature";
    }

    return rc;
}
