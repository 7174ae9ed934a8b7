
/*
 * Fuzz target: raw approval tokens, as an agent sends them in the
 * Approval-Token header (or as the token endpoint gives them), through
 * ngx_http_ciba_token_check(): the shape, base64url, the strict JSON parse
 * of header and payload, the header (alg, crit, typ, kid), the claims, the
 * binding, the replay lookup and the signature (libjwt, with the key and
 * algorithm the module chose).
 *
 * Input: one byte, then the token.  The byte's low bits choose the
 * configuration (fuzz_common.h: asymmetric JWKS, HMAC, PEM keys, CIBA
 * flow), bit 7 checks the token as one from the token endpoint.
 *
 * Checked: the answer is NGX_OK or NGX_DECLINED with a reason; a token
 * that passes names its key and algorithm, was issued by the issuer and
 * is not expired, its subject is the approver, and its signature
 * verifies with the harness's own code (OpenSSL, not libjwt).
 */


#include "fuzz_common.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    time_t                     now;
    ngx_int_t                  rc;
    ngx_str_t                  raw;
    ngx_uint_t                 flags;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_token_t      tok;
    ngx_http_ciba_loc_conf_t  *clcf;

    if (size < 1) {
        return 0;
    }

    clcf = ngx_http_ciba_fuzz_confs[(data[0] & 0x7f)
                                    % NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE];
    flags = (data[0] & 0x80) ? NGX_HTTP_CIBA_TOKEN_FROM_AS : 0;

    ngx_http_ciba_fuzz_zone_restore();

    r = ngx_http_ciba_fuzz_request(clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    /* the fuzzer's own buffer: any read past it is seen */
    raw.data = (u_char *) data + 1;
    raw.len = size - 1;

    ngx_memzero(&tok, sizeof(ngx_http_ciba_token_t));

    rc = ngx_http_ciba_token_check(r, clcf, ctx, &raw, &tok, flags);

    ngx_http_ciba_fuzz_trace("token_check: %d %s", (int) rc,
                             ctx->reason ? ctx->reason : "-");

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "token_check: neither NGX_OK nor NGX_DECLINED");

    if (rc == NGX_DECLINED) {
        ngx_http_ciba_fuzz_assert(ctx->reason != NULL,
                                  "a refusal without a reason");
        ngx_http_ciba_fuzz_assert(ctx->outcome != NGX_HTTP_CIBA_APPROVED,
                                  "a refusal with the outcome approved");
    }

    if (rc == NGX_OK) {
        now = ngx_time();

        ngx_http_ciba_fuzz_assert(tok.key != NULL && tok.algorithm != NULL,
                                  "a valid token without key or algorithm");
        ngx_http_ciba_fuzz_assert(tok.algorithm->bit & clcf->algorithms
                                  && tok.algorithm->bit & tok.key->algs,
                                  "a valid token of an algorithm not "
                                  "allowed");
        ngx_http_ciba_fuzz_assert(tok.iss.len == clcf->issuer.len
                                  && ngx_memcmp(tok.iss.data,
                                                clcf->issuer.data,
                                                tok.iss.len) == 0,
                                  "a valid token of another issuer");
        ngx_http_ciba_fuzz_assert(tok.exp + clcf->leeway >= now,
                                  "an expired token is valid");
        ngx_http_ciba_fuzz_assert(tok.iat <= now + clcf->leeway,
                                  "a token issued in the future is valid");
        ngx_http_ciba_fuzz_assert(ctx->approver.data == tok.sub.data
                                  && ctx->approver.len == tok.sub.len,
                                  "the approver is not the subject");
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_verify(r->pool, &raw,
                                                            &tok.alg)
                                  == NGX_OK,
                                  "a valid token whose signature does not "
                                  "verify (without libjwt)");

        if (!(flags & NGX_HTTP_CIBA_TOKEN_FROM_AS)) {
            ngx_http_ciba_fuzz_assert(tok.jti.len > 0
                                      && tok.jti.len
                                         <= NGX_HTTP_CIBA_JTI_MAX,
                                      "a valid token without a good jti");
            ngx_http_ciba_fuzz_assert(tok.iat > NGX_HTTP_CIBA_FUZZ_EPOCH
                                                + clcf->leeway,
                                      "a token issued before the start");
        }
    }

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
