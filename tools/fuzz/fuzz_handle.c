
/*
 * Fuzz target: approval handles (ngx_http_ciba_handle.c), which come
 * back from agents: opening untrusted handles, parsing what a handle
 * sealed with the right key holds, and sealing then opening.
 *
 * Input: one byte choosing the mode, then:
 *   mode 0  a handle string, opened with the configured handle key;
 *   mode 1  a plaintext, sealed by the harness (an independent
 *           implementation of the format: "h1." BASE64URL(nonce ||
 *           AES-256-GCM(plaintext) || tag), AAD "ngx-ciba-handle/1")
 *           with the handle key, then opened: the parser after the
 *           decryption sees any bytes;
 *   mode 2  a handle's fields (expire 8 bytes, interval 4, mode 1, digest
 *           32, subject 32, auth_req_id the rest), sealed by the module,
 *           opened again, and opened with one bit flipped (the position
 *           from the first byte of the fields).
 *
 * Checked: opening answers NGX_OK or NGX_DECLINED; what opens is what
 * was sealed; a handle with any bit flipped, or sealed with another key,
 * does not open.
 */


#include "fuzz_common.h"

#include <openssl/evp.h>


#define NGX_HTTP_CIBA_FUZZ_FIXED  (1 + 8 + 4 + 1 + 32 + 32 + 2)


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* the format, written again: seal "plain" with "key" and a fixed nonce */

static void
ngx_http_ciba_fuzz_seal(ngx_pool_t *pool, u_char *key, u_char *plain,
    size_t len, ngx_str_t *handle)
{
    int              n;
    u_char          *sealed;
    ngx_str_t        src, dst;
    EVP_CIPHER_CTX  *c;
    static u_char    nonce[12] = "fuzz-nonce-1";

    sealed = ngx_pnalloc(pool, 12 + len + 16);
    handle->data = ngx_pnalloc(pool, 3 + ngx_base64_encoded_length(
                                              12 + len + 16));
    c = EVP_CIPHER_CTX_new();

    if (sealed == NULL || handle->data == NULL || c == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
    }

    ngx_memcpy(sealed, nonce, 12);

    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1
        || EVP_EncryptUpdate(c, NULL, &n, (u_char *) "ngx-ciba-handle/1", 17)
           != 1
        || EVP_EncryptUpdate(c, sealed + 12, &n, plain, (int) len) != 1
        || EVP_EncryptFinal_ex(c, sealed + 12 + n, &n) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, sealed + 12 + len)
           != 1)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "AES-GCM");
    }

    EVP_CIPHER_CTX_free(c);

    ngx_memcpy(handle->data, "h1.", 3);

    src.data = sealed;
    src.len = 12 + len + 16;
    dst.data = handle->data + 3;
    ngx_encode_base64url(&dst, &src);

    handle->len = 3 + dst.len;
}


/* the handle with bit "bit" of its sealed bytes flipped */

static void
ngx_http_ciba_fuzz_flip(ngx_pool_t *pool, ngx_str_t *handle, size_t bit,
    ngx_str_t *out)
{
    ngx_str_t  src, raw, dst;

    src.data = handle->data + 3;
    src.len = handle->len - 3;

    raw.data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len));
    out->data = ngx_pnalloc(pool, handle->len);

    if (raw.data == NULL || out->data == NULL
        || ngx_decode_base64url(&raw, &src) != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "decoding a handle");
    }

    bit %= raw.len * 8;
    raw.data[bit / 8] ^= (u_char) (1 << (bit % 8));

    ngx_memcpy(out->data, "h1.", 3);
    dst.data = out->data + 3;
    ngx_encode_base64url(&dst, &raw);
    out->len = 3 + dst.len;
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
    u_char                  *key, other[32], *in;
    size_t                   len;
    uint32_t                 interval;
    uint64_t                 expire;
    ngx_int_t                rc;
    ngx_str_t                handle, flipped;
    ngx_uint_t               mode;
    ngx_http_request_t      *r;
    ngx_http_ciba_handle_t   h, h2;

    if (size < 1) {
        return 0;
    }

    mode = data[0] % 3;
    in = (u_char *) data + 1;
    len = size - 1;

    key = ngx_http_ciba_fuzz_cmcf->handle_key;

    r = ngx_http_ciba_fuzz_request(
            ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_FLOW]);

    ngx_memzero(&h, sizeof(ngx_http_ciba_handle_t));

    switch (mode) {

    case 0:
        handle.data = in;
        handle.len = len;

        rc = ngx_http_ciba_handle_open(r, key, &handle, &h);

        ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                                  "handle_open: neither NGX_OK nor "
                                  "NGX_DECLINED");
        break;

    case 1:
        ngx_http_ciba_fuzz_seal(r->pool, key, in, len, &handle);

        rc = ngx_http_ciba_handle_open(r, key, &handle, &h);

        ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                                  "handle_open: neither NGX_OK nor "
                                  "NGX_DECLINED");

        if (handle.len > 4096 || len < NGX_HTTP_CIBA_FUZZ_FIXED + 1
            || in[0] != 1)
        {
            ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                      "a handle too long, too short or of "
                                      "another version was opened");
        }

        if (rc == NGX_OK) {
            ngx_memcpy(&expire, in + 1, 8);
            ngx_memcpy(&interval, in + 9, 4);

            ngx_http_ciba_fuzz_assert(
                h.expire == (time_t) expire
                && h.interval == (time_t) interval
                && h.mode == in[13]
                && ngx_memcmp(h.digest, in + 14, 32) == 0
                && ngx_memcmp(h.subject, in + 46, 32) == 0
                && h.auth_req_id.len == len - NGX_HTTP_CIBA_FUZZ_FIXED
                && (size_t) ((in[78] << 8) | in[79]) == h.auth_req_id.len
                && ngx_memcmp(h.auth_req_id.data,
                              in + NGX_HTTP_CIBA_FUZZ_FIXED,
                              h.auth_req_id.len) == 0,
                "what opened is not what was sealed");
        }

        break;

    default:
        if (len < 8 + 4 + 1 + 32 + 32) {
            break;
        }

        ngx_memcpy(&expire, in, 8);
        ngx_memcpy(&interval, in + 8, 4);

        h.expire = (time_t) expire;
        h.interval = (time_t) interval;
        h.mode = in[12];
        ngx_memcpy(h.digest, in + 13, 32);
        ngx_memcpy(h.subject, in + 45, 32);
        h.auth_req_id.data = in + 77;
        h.auth_req_id.len = len - 77;

        rc = ngx_http_ciba_handle_seal(r, key, &h, &handle);

        if (h.auth_req_id.len == 0 || h.auth_req_id.len > 1024) {
            ngx_http_ciba_fuzz_assert(rc == NGX_ERROR,
                                      "a handle with an empty or long "
                                      "auth_req_id was sealed");
            break;
        }

        ngx_http_ciba_fuzz_assert(rc == NGX_OK, "sealing failed");

        ngx_memzero(&h2, sizeof(ngx_http_ciba_handle_t));

        rc = ngx_http_ciba_handle_open(r, key, &handle, &h2);

        ngx_http_ciba_fuzz_assert(rc == NGX_OK, "a sealed handle is refused");
        ngx_http_ciba_fuzz_assert(
            h2.expire == h.expire
            && h2.interval == (time_t) (uint32_t) h.interval
            && h2.mode == (u_char) h.mode
            && ngx_memcmp(h2.digest, h.digest, 32) == 0
            && ngx_memcmp(h2.subject, h.subject, 32) == 0
            && h2.auth_req_id.len == h.auth_req_id.len
            && ngx_memcmp(h2.auth_req_id.data, h.auth_req_id.data,
                          h.auth_req_id.len) == 0,
            "what opened is not what was sealed");

        ngx_http_ciba_fuzz_flip(r->pool, &handle, in[0] * 131 + in[1],
                                &flipped);

        rc = ngx_http_ciba_handle_open(r, key, &flipped, &h2);

        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "a handle with a flipped bit opened");

        ngx_memcpy(other, key, 32);
        other[in[2] % 32] ^= 0x80;

        rc = ngx_http_ciba_handle_open(r, other, &handle, &h2);

        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "a handle opened with another key");
        break;
    }

    ngx_http_ciba_fuzz_trace("handle: mode %d, auth_req_id \"%.*s\"",
                             (int) mode, (int) h.auth_req_id.len,
                             h.auth_req_id.data ? (char *) h.auth_req_id.data
                                                : "");

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
