
/*
 * Fuzz target: the header and payload of a token, signed by the harness
 * with the test key the header names (fuzz_common.c), so that the checks
 * after the signature are reached as well as those before it: the strict
 * JSON parse, the header, the claims, the binding, the signature, and for
 * a pushed id_token (ngx_http_ciba_id_token_check()) the issuer, audience,
 * time, auth_req_id and at_hash.
 *
 * Input: one byte, then the header JSON text, a NUL byte, the payload
 * JSON text, and for an id_token a NUL byte and the access token pushed
 * with it (default: "fuzz-access-token").  The byte:
 *   bits 0-1  the configuration (asymmetric, HMAC, PEM, CIBA flow)
 *   bit 2     check as a token from the token endpoint
 *   bit 3     flip a bit of the signature
 *   bit 4     check as a pushed id_token (CIBA flow configuration)
 *
 * Checked: the answer is NGX_OK or NGX_DECLINED with a reason; a token
 * with a flipped signature bit never passes; a token that passes has the
 * issuer, is not expired, names an allowed algorithm; an agent's token
 * that passes holds this request's digest; an id_token that passes is for
 * this client and this auth_req_id.
 */


#include "fuzz_common.h"


#define NGX_HTTP_CIBA_FUZZ_AREQ  "areq-fuzz-1"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static json_t *
ngx_http_ciba_fuzz_json(u_char *text, size_t len)
{
    json_error_t  err;

    return json_loadb((char *) text, len, JSON_DECODE_ANY, &err);
}


static ngx_int_t
ngx_http_ciba_fuzz_has(json_t *obj, const char *name, const char *value)
{
    json_t  *v;

    v = json_object_get(obj, name);

    return json_is_string(v)
           && json_string_length(v) == ngx_strlen(value)
           && ngx_memcmp(json_string_value(v), value, ngx_strlen(value)) == 0;
}


/* some string anywhere in the JSON value is "value" */

static ngx_int_t
ngx_http_ciba_fuzz_holds(json_t *json, const char *value)
{
    size_t       i;
    json_t      *v;
    const char  *key;

    if (json_is_string(json)) {
        return json_string_length(json) == ngx_strlen(value)
               && ngx_memcmp(json_string_value(json), value,
                             ngx_strlen(value)) == 0;
    }

    if (json_is_array(json)) {
        json_array_foreach(json, i, v) {
            if (ngx_http_ciba_fuzz_holds(v, value)) {
                return 1;
            }
        }
    }

    if (json_is_object(json)) {
        json_object_foreach(json, key, v) {
            if (ngx_http_ciba_fuzz_holds(v, value)) {
                return 1;
            }
        }
    }

    return 0;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *hdr, *pl, *at, *end, *p;
    size_t                     hlen, plen;
    json_t                    *payload;
    ngx_int_t                  rc;
    ngx_str_t                  token, areq, access, client;
    ngx_uint_t                 sel, flags, corrupt, id_token;
    const char                *reason;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_token_t      tok;
    ngx_http_ciba_loc_conf_t  *clcf;

    if (size < 1) {
        return 0;
    }

    sel = data[0];
    flags = (sel & 0x04) ? NGX_HTTP_CIBA_TOKEN_FROM_AS : 0;
    corrupt = (sel & 0x08) ? 1 : 0;
    id_token = (sel & 0x10) ? 1 : 0;

    clcf = ngx_http_ciba_fuzz_confs[id_token ? NGX_HTTP_CIBA_FUZZ_CONF_FLOW
                                             : (sel & 0x03)];

    ngx_http_ciba_fuzz_zone_restore();

    r = ngx_http_ciba_fuzz_request(clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    /* header NUL payload [NUL access token] */

    hdr = ngx_http_ciba_fuzz_dup(r->pool, data + 1, size - 1);
    end = hdr + size - 1;

    p = ngx_strlchr(hdr, end, '\0');
    if (p == NULL) {
        ngx_http_ciba_fuzz_free(r);
        return 0;
    }

    hlen = p - hdr;
    pl = p + 1;

    p = ngx_strlchr(pl, end, '\0');

    if (p) {
        plen = p - pl;
        at = p + 1;
        access.data = at;
        access.len = end - at;

    } else {
        plen = end - pl;
        ngx_str_set(&access, "fuzz-access-token");
    }

    if (ngx_http_ciba_fuzz_sign(r->pool, hdr, hlen, pl, plen, corrupt,
                                &token)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "signing failed");
    }

    if (id_token) {
        ngx_str_set(&areq, NGX_HTTP_CIBA_FUZZ_AREQ);
        ngx_str_set(&client, NGX_HTTP_CIBA_FUZZ_CLIENT);
        reason = NULL;

        rc = ngx_http_ciba_id_token_check(r, clcf, &token, &areq, &access,
                                          &client, &reason);

        ngx_http_ciba_fuzz_trace("id_token_check: %d %s", (int) rc,
                                 reason ? reason : "-");

        ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                                  "id_token_check: neither NGX_OK nor "
                                  "NGX_DECLINED");
        ngx_http_ciba_fuzz_assert(rc == NGX_OK || reason != NULL,
                                  "an id_token refused without a reason");
        ngx_http_ciba_fuzz_assert(rc != NGX_OK || !corrupt,
                                  "an id_token with a bad signature passed");

        if (rc == NGX_OK) {
            payload = ngx_http_ciba_fuzz_json(pl, plen);

            ngx_http_ciba_fuzz_assert(
                ngx_http_ciba_fuzz_has(payload, "iss",
                                       NGX_HTTP_CIBA_FUZZ_ISSUER)
                && ngx_http_ciba_fuzz_has(payload,
                                       "urn:openid:params:jwt:claim:"
                                       "auth_req_id",
                                       NGX_HTTP_CIBA_FUZZ_AREQ),
                "an id_token of another issuer or auth_req_id passed");

            json_decref(payload);
        }

        ngx_http_ciba_fuzz_free(r);
        return 0;
    }

    ngx_memzero(&tok, sizeof(ngx_http_ciba_token_t));

    rc = ngx_http_ciba_token_check(r, clcf, ctx, &token, &tok, flags);

    ngx_http_ciba_fuzz_trace("token_check: %d %s", (int) rc,
                             ctx->reason ? ctx->reason : "-");

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "token_check: neither NGX_OK nor NGX_DECLINED");
    ngx_http_ciba_fuzz_assert(rc == NGX_OK || ctx->reason != NULL,
                              "a token refused without a reason");
    ngx_http_ciba_fuzz_assert(rc != NGX_OK || !corrupt,
                              "a token with a bad signature passed");

    if (rc == NGX_OK) {
        payload = ngx_http_ciba_fuzz_json(pl, plen);

        ngx_http_ciba_fuzz_assert(json_is_object(payload),
                                  "a token whose payload is no object "
                                  "passed");
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_has(payload, "iss",
                                                     NGX_HTTP_CIBA_FUZZ_ISSUER),
                                  "a token of another issuer passed");
        ngx_http_ciba_fuzz_assert(tok.algorithm->bit & clcf->algorithms,
                                  "a token of an algorithm not allowed "
                                  "passed");
        ngx_http_ciba_fuzz_assert(tok.exp + clcf->leeway >= ngx_time(),
                                  "an expired token passed");

        if (!(flags & NGX_HTTP_CIBA_TOKEN_FROM_AS)) {
            ngx_http_ciba_fuzz_assert(
                ngx_http_ciba_fuzz_holds(payload, NGX_HTTP_CIBA_FUZZ_DIGEST),
                "a token without this request's digest passed");
        }

        json_decref(payload);
    }

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
