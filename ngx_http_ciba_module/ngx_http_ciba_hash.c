
/*
 * ngx_http_ciba_module: SHA-2 on the request path.
 *
 * OpenSSL 3 looks a digest up in its providers each time a context is
 * initialized with EVP_sha256() and the like, and a context costs an
 * allocation: on the approved path that was several thousand instructions
 * per request.  Here each digest is fetched once per process and one
 * context per process is reused.  A hash runs from
 * ngx_http_ciba_hash_start() to EVP_DigestFinal_ex() with nothing else in
 * between that may hash (no variable is evaluated meanwhile): one hash at
 * a time, as a worker runs one request handler at a time.
 */


#include "ngx_http_ciba.h"

#include <openssl/evp.h>


static EVP_MD      *ngx_http_ciba_sha256_md;
static EVP_MD_CTX  *ngx_http_ciba_hash_ctx;


const EVP_MD *
ngx_http_ciba_sha256(void)
{
    if (ngx_http_ciba_sha256_md == NULL) {
        ngx_http_ciba_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    }

    return ngx_http_ciba_sha256_md;
}


/* the process's context, initialized for "md"; NULL on failure */

EVP_MD_CTX *
ngx_http_ciba_hash_start(const EVP_MD *md)
{
    if (md == NULL) {
        return NULL;
    }

    if (ngx_http_ciba_hash_ctx == NULL) {
        ngx_http_ciba_hash_ctx = EVP_MD_CTX_new();
        if (ngx_http_ciba_hash_ctx == NULL) {
            return NULL;
        }
    }

    if (EVP_DigestInit_ex2(ngx_http_ciba_hash_ctx, md, NULL) != 1) {
        return NULL;
    }

    return ngx_http_ciba_hash_ctx;
}


/* SHA-256 of one buffer: NGX_OK with 32 bytes in "out" */

ngx_int_t
ngx_http_ciba_sha256_buf(u_char *data, size_t len, u_char *out)
{
    unsigned int   n;
    EVP_MD_CTX    *md;

    md = ngx_http_ciba_hash_start(ngx_http_ciba_sha256());

    if (md == NULL
        || (len && EVP_DigestUpdate(md, data, len) != 1)
        || EVP_DigestFinal_ex(md, out, &n) != 1
        || n != NGX_HTTP_CIBA_HASH_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* at process exit: what was fetched and allocated goes */

void
ngx_http_ciba_hash_cleanup(void)
{
    if (ngx_http_ciba_hash_ctx) {
        EVP_MD_CTX_free(ngx_http_ciba_hash_ctx);
        ngx_http_ciba_hash_ctx = NULL;
    }

    if (ngx_http_ciba_sha256_md) {
        EVP_MD_free(ngx_http_ciba_sha256_md);
        ngx_http_ciba_sha256_md = NULL;
    }
}
