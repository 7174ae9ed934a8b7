
/*
 * ngx_http_ciba_module: sealed approval handles.
 *
 * The handle given to an agent with a pending answer is an AES-256-GCM
 * sealed record of what the gateway needs to continue the approval: the
 * auth_req_id, the action digest and the subject it was asked for, when
 * it expires, the polling interval and the delivery mode.  The agent can
 * neither read nor alter it; any nginx with the same key (a file shared
 * by a fleet, or a random key kept in the zone) can continue the flow.
 *
 *     handle = "h1." BASE64URL(nonce[12] || ciphertext || tag[16])
 *     AAD    = "ngx-ciba-handle/1"
 */


#include "ngx_http_ciba.h"

#include <openssl/evp.h>
#include <openssl/rand.h>


#define NGX_HTTP_CIBA_HANDLE_AAD     "ngx-ciba-handle/1"
#define NGX_HTTP_CIBA_HANDLE_PREFIX  "h1."
#define NGX_HTTP_CIBA_HANDLE_FIXED   (1 + 8 + 4 + 1 + 32 + 32 + 2)


static ngx_int_t ngx_http_ciba_gcm(int enc, u_char *key, u_char *nonce,
    u_char *in, size_t len, u_char *out, u_char *tag);


ngx_int_t
ngx_http_ciba_handle_seal(ngx_http_request_t *r, u_char *key,
    ngx_http_ciba_handle_t *h, ngx_str_t *handle)
{
    u_char     *plain, *p, *sealed;
    size_t      len;
    ngx_str_t   src;
    uint64_t    expire;
    uint32_t    interval;

    if (h->auth_req_id.len == 0 || h->auth_req_id.len > 1024) {
        return NGX_ERROR;
    }

    len = NGX_HTTP_CIBA_HANDLE_FIXED + h->auth_req_id.len;

    plain = ngx_pnalloc(r->pool, len);
    sealed = ngx_pnalloc(r->pool, 12 + len + 16);
    if (plain == NULL || sealed == NULL) {
        return NGX_ERROR;
    }

    expire = (uint64_t) h->expire;
    interval = (uint32_t) h->interval;

    p = plain;
    *p++ = 1;
    p = ngx_cpymem(p, &expire, 8);
    p = ngx_cpymem(p, &interval, 4);
    *p++ = (u_char) h->mode;
    p = ngx_cpymem(p, h->digest, 32);
    p = ngx_cpymem(p, h->subject, 32);
    *p++ = (u_char) (h->auth_req_id.len >> 8);
    *p++ = (u_char) (h->auth_req_id.len & 0xff);
    ngx_memcpy(p, h->auth_req_id.data, h->auth_req_id.len);

    if (RAND_bytes(sealed, 12) != 1
        || ngx_http_ciba_gcm(1, key, sealed, plain, len, sealed + 12,
                             sealed + 12 + len)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ciba: sealing an approval handle failed");
        return NGX_ERROR;
    }

    src.data = sealed;
    src.len = 12 + len + 16;

    handle->data = ngx_pnalloc(r->pool, sizeof(NGX_HTTP_CIBA_HANDLE_PREFIX)
                                        + ngx_base64_encoded_length(src.len));
    if (handle->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(handle->data, NGX_HTTP_CIBA_HANDLE_PREFIX,
                   sizeof(NGX_HTTP_CIBA_HANDLE_PREFIX) - 1);

    handle->data = p;
    ngx_encode_base64url(handle, &src);

    handle->data -= sizeof(NGX_HTTP_CIBA_HANDLE_PREFIX) - 1;
    handle->len += sizeof(NGX_HTTP_CIBA_HANDLE_PREFIX) - 1;

    return NGX_OK;
}


/* NGX_OK: opened; NGX_DECLINED: not a handle sealed with this key */

ngx_int_t
ngx_http_ciba_handle_open(ngx_http_request_t *r, u_char *key,
    ngx_str_t *handle, ngx_http_ciba_handle_t *h)
{
    u_char     *p, *plain;
    size_t      len, n;
    ngx_str_t   src, sealed;
    uint64_t    expire;
    uint32_t    interval;

    n = sizeof(NGX_HTTP_CIBA_HANDLE_PREFIX) - 1;

    if (handle->len <= n || handle->len > 4096
        || ngx_strncmp(handle->data, NGX_HTTP_CIBA_HANDLE_PREFIX, n) != 0)
    {
        return NGX_DECLINED;
    }

    src.data = handle->data + n;
    src.len = handle->len - n;

    for (p = src.data; p < src.data + src.len; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        {
            return NGX_DECLINED;
        }
    }

    sealed.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(src.len));
    if (sealed.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(&sealed, &src) != NGX_OK
        || sealed.len < 12 + NGX_HTTP_CIBA_HANDLE_FIXED + 1 + 16)
    {
        return NGX_DECLINED;
    }

    len = sealed.len - 12 - 16;

    plain = ngx_pnalloc(r->pool, len);
    if (plain == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_gcm(0, key, sealed.data, sealed.data + 12, len, plain,
                          sealed.data + 12 + len)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p = plain;

    if (*p++ != 1) {
        return NGX_DECLINED;
    }

    ngx_memcpy(&expire, p, 8);
    p += 8;
    ngx_memcpy(&interval, p, 4);
    p += 4;
    h->mode = *p++;
    ngx_memcpy(h->digest, p, 32);
    p += 32;
    ngx_memcpy(h->subject, p, 32);
    p += 32;

    n = (p[0] << 8) | p[1];
    p += 2;

    if (n == 0 || n != len - NGX_HTTP_CIBA_HANDLE_FIXED) {
        return NGX_DECLINED;
    }

    h->expire = (time_t) expire;
    h->interval = (time_t) interval;
    h->auth_req_id.data = p;
    h->auth_req_id.len = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_gcm(int enc, u_char *key, u_char *nonce, u_char *in,
    size_t len, u_char *out, u_char *tag)
{
    int              n, rc;
    EVP_CIPHER_CTX  *cipher;

    cipher = EVP_CIPHER_CTX_new();
    if (cipher == NULL) {
        return NGX_ERROR;
    }

    rc = 0;

    if (EVP_CipherInit_ex(cipher, EVP_aes_256_gcm(), NULL, NULL, NULL, enc)
        != 1
        || EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1
        || EVP_CipherInit_ex(cipher, NULL, NULL, key, nonce, enc) != 1
        || EVP_CipherUpdate(cipher, NULL, &n,
                            (u_char *) NGX_HTTP_CIBA_HANDLE_AAD,
                            sizeof(NGX_HTTP_CIBA_HANDLE_AAD) - 1)
           != 1
        || EVP_CipherUpdate(cipher, out, &n, in, (int) len) != 1)
    {
        goto done;
    }

    if (enc) {
        rc = EVP_CipherFinal_ex(cipher, out + n, &n) == 1
             && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, 16, tag)
                == 1;

    } else {
        rc = EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1
             && EVP_CipherFinal_ex(cipher, out + n, &n) == 1;
    }

done:

    EVP_CIPHER_CTX_free(cipher);

    return rc ? NGX_OK : NGX_ERROR;
}


/* ciba_handle_key path;  32 bytes: raw, 64 hex digits, or base64(url) */

char *
ngx_http_ciba_handle_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_main_conf_t *cimcf = conf;

    u_char     *p, *last;
    ngx_str_t  *value, name, content, text, raw;

    if (cimcf->handle_key) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ciba_conf_read_file(cf, &name, &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cimcf->handle_key = ngx_pnalloc(cf->pool, 32);
    if (cimcf->handle_key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (content.len == 32) {
        ngx_memcpy(cimcf->handle_key, content.data, 32);
        return NGX_CONF_OK;
    }

    /* text: trim white space */

    p = content.data;
    last = content.data + content.len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t'
                        || last[-1] == '\r' || last[-1] == '\n'))
    {
        last--;
    }

    text.data = p;
    text.len = last - p;

    if (text.len == 64 && ngx_hextoi(text.data, 8) != NGX_ERROR) {
        for (p = text.data; p < last; p += 2) {
            if (ngx_hextoi(p, 2) == NGX_ERROR) {
                goto invalid;
            }

            cimcf->handle_key[(p - text.data) / 2] = (u_char) ngx_hextoi(p, 2);
        }

        return NGX_CONF_OK;
    }

    raw.data = ngx_pnalloc(cf->temp_pool, ngx_base64_decoded_length(text.len));
    if (raw.data == NULL) {
        return NGX_CONF_ERROR;
    }

    if ((ngx_decode_base64(&raw, &text) == NGX_OK
         || ngx_decode_base64url(&raw, &text) == NGX_OK)
        && raw.len == 32)
    {
        ngx_memcpy(cimcf->handle_key, raw.data, 32);
        return NGX_CONF_OK;
    }

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "handle key file \"%V\" must hold 32 bytes: raw, as "
                       "64 hex digits, or in base64 (e.g. from "
                       "\"openssl rand -hex 32\")", &name);

    return NGX_CONF_ERROR;
}
