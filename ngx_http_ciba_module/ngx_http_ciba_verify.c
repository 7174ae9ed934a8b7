
/*
 * ngx_http_ciba_module: signature verification.
 *
 * The token was parsed once, strictly, by the module; its signature is
 * verified here with OpenSSL directly, on the signing input the parser
 * already delimited.  Everything that can be prepared is prepared at
 * configuration time, once per key: the EVP_PKEY, the message digests,
 * the RSA or EC key inside it, and for RSA-PSS a verification context
 * with the padding and the digest set.  A request hashes the signing
 * input and verifies (configuration is never written to):
 *
 *   ES256/384/512  the JOSE signature is r || s (RFC 7518 3.4), each of
 *                  the curve's size, verified by ECDSA_do_verify();
 *   RS256/384/512  RSASSA-PKCS1-v1_5, by RSA_verify();
 *   PS256/384/512  RSASSA-PSS with MGF1 of the same hash and a salt as
 *                  long as the hash (RFC 7518 3.5), with a copy of the
 *                  prepared context;
 *   EdDSA          Ed25519 over the signing input itself;
 *   HS256/384/512  HMAC, compared in constant time.
 */


#include "ngx_http_ciba.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>


/* the longest signature looked at: RSA with a 8192-bit modulus */
#define NGX_HTTP_CIBA_SIG_MAX  1024


typedef enum {
    NGX_HTTP_CIBA_SIG_ECDSA = 0,
    NGX_HTTP_CIBA_SIG_RSA,
    NGX_HTTP_CIBA_SIG_PSS,
    NGX_HTTP_CIBA_SIG_EDDSA,
    NGX_HTTP_CIBA_SIG_HMAC
} ngx_http_ciba_sig_e;


/* what each algorithm needs, in the order of the algorithm bits */
typedef struct {
    ngx_uint_t                  bit;
    ngx_http_ciba_sig_e         sig;
    const char                 *md;         /* NULL for EdDSA */
    int                         nid;        /* of the digest, for RSA */
    size_t                      size;       /* ECDSA: bytes of r and s */
} ngx_http_ciba_sig_alg_t;


static ngx_http_ciba_sig_alg_t  ngx_http_ciba_sig_algs[] = {
    { NGX_HTTP_CIBA_ALG_ES256, NGX_HTTP_CIBA_SIG_ECDSA, "SHA256",
      NID_sha256, 32 },
    { NGX_HTTP_CIBA_ALG_ES384, NGX_HTTP_CIBA_SIG_ECDSA, "SHA384",
      NID_sha384, 48 },
    { NGX_HTTP_CIBA_ALG_ES512, NGX_HTTP_CIBA_SIG_ECDSA, "SHA512",
      NID_sha512, 66 },
    { NGX_HTTP_CIBA_ALG_RS256, NGX_HTTP_CIBA_SIG_RSA, "SHA256",
      NID_sha256, 0 },
    { NGX_HTTP_CIBA_ALG_RS384, NGX_HTTP_CIBA_SIG_RSA, "SHA384",
      NID_sha384, 0 },
    { NGX_HTTP_CIBA_ALG_RS512, NGX_HTTP_CIBA_SIG_RSA, "SHA512",
      NID_sha512, 0 },
    { NGX_HTTP_CIBA_ALG_PS256, NGX_HTTP_CIBA_SIG_PSS, "SHA256",
      NID_sha256, 0 },
    { NGX_HTTP_CIBA_ALG_PS384, NGX_HTTP_CIBA_SIG_PSS, "SHA384",
      NID_sha384, 0 },
    { NGX_HTTP_CIBA_ALG_PS512, NGX_HTTP_CIBA_SIG_PSS, "SHA512",
      NID_sha512, 0 },
    { NGX_HTTP_CIBA_ALG_EDDSA, NGX_HTTP_CIBA_SIG_EDDSA, NULL, NID_undef, 0 },
    { NGX_HTTP_CIBA_ALG_HS256, NGX_HTTP_CIBA_SIG_HMAC, "SHA256",
      NID_sha256, 0 },
    { NGX_HTTP_CIBA_ALG_HS384, NGX_HTTP_CIBA_SIG_HMAC, "SHA384",
      NID_sha384, 0 },
    { NGX_HTTP_CIBA_ALG_HS512, NGX_HTTP_CIBA_SIG_HMAC, "SHA512",
      NID_sha512, 0 }
};


static ngx_int_t ngx_http_ciba_verifier_prepare(ngx_conf_t *cf,
    ngx_http_ciba_verifier_t *v, ngx_uint_t i);
static void ngx_http_ciba_verifier_cleanup(void *data);
static ngx_uint_t ngx_http_ciba_sig_index(ngx_uint_t bit);
static ngx_int_t ngx_http_ciba_verify_pkey(ngx_http_ciba_verifier_t *v,
    ngx_uint_t i, ngx_str_t *input, u_char *sig, size_t siglen);
static ngx_int_t ngx_http_ciba_verify_ecdsa(ngx_http_ciba_verifier_t *v,
    u_char *hash, unsigned int hash_len, u_char *sig, size_t n);


/*
 * Prepares a key for the algorithms it may verify ("algs"): from the PEM
 * libjwt gives for an RSA, EC or OKP key, or the secret of an oct key.
 */

ngx_int_t
ngx_http_ciba_verifier_create(ngx_conf_t *cf, ngx_http_ciba_key_t *key,
    const jwk_item_t *item, ngx_str_t *name)
{
    BIO                       *bio;
    size_t                     len;
    const char                *pem;
    ngx_uint_t                 i;
    ngx_pool_cleanup_t        *cln;
    const unsigned char       *oct;
    ngx_http_ciba_verifier_t  *v;

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_http_ciba_verifier_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    v = cln->data;
    ngx_memzero(v, sizeof(ngx_http_ciba_verifier_t));

    cln->handler = ngx_http_ciba_verifier_cleanup;

    if (jwks_item_kty(item) == JWK_KEY_TYPE_OCT) {

        if (jwks_item_key_oct(item, &oct, &len) != 0 || len == 0) {
            goto failed;
        }

        v->secret = ngx_pnalloc(cf->pool, len);
        if (v->secret == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(v->secret, oct, len);
        v->secret_len = len;

    } else {
        pem = jwks_item_pem(item);
        if (pem == NULL) {
            goto failed;
        }

        bio = BIO_new_mem_buf(pem, -1);
        if (bio == NULL) {
            goto failed;
        }

        v->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

        if (v->pkey == NULL) {
            /* a JWK with the private part: libjwt gives its private PEM */
            (void) BIO_reset(bio);
            v->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        }

        BIO_free(bio);

        if (v->pkey == NULL) {
            goto failed;
        }
    }

    for (i = 0; i < NGX_HTTP_CIBA_NALGS; i++) {
        if ((key->algs & ngx_http_ciba_sig_algs[i].bit)
            && ngx_http_ciba_verifier_prepare(cf, v, i) != NGX_OK)
        {
            goto failed;
        }
    }

    key->verifier = v;

    return NGX_OK;

failed:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "preparing the verification of the key in \"%V\" "
                       "failed", name);

    ERR_clear_error();

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ciba_verifier_prepare(ngx_conf_t *cf, ngx_http_ciba_verifier_t *v,
    ngx_uint_t i)
{
    EVP_PKEY_CTX             *pctx;
    ngx_http_ciba_sig_alg_t  *a;

    a = &ngx_http_ciba_sig_algs[i];

    if (a->md) {
        v->md[i] = EVP_MD_fetch(NULL, a->md, NULL);
        if (v->md[i] == NULL) {
            return NGX_ERROR;
        }
    }

    if (a->sig == NGX_HTTP_CIBA_SIG_EDDSA || a->sig == NGX_HTTP_CIBA_SIG_HMAC)
    {
        return NGX_OK;
    }

    /*
     * RSASSA-PKCS1-v1_5 and ECDSA with the key itself: without the
     * provider's per-call setup, a verify costs RSA_verify() or
     * ECDSA_do_verify() and nothing more
     */

    if (a->sig == NGX_HTTP_CIBA_SIG_RSA) {
        v->rsa = EVP_PKEY_get0_RSA(v->pkey);
        return (v->rsa != NULL) ? NGX_OK : NGX_ERROR;
    }

    if (a->sig == NGX_HTTP_CIBA_SIG_ECDSA) {
        v->ec = EVP_PKEY_get0_EC_KEY(v->pkey);
        return (v->ec != NULL) ? NGX_OK : NGX_ERROR;
    }

    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, v->pkey, NULL);
    if (pctx == NULL) {
        return NGX_ERROR;
    }

    v->ctx[i] = pctx;

    if (EVP_PKEY_verify_init(pctx) != 1
        || EVP_PKEY_CTX_set_signature_md(pctx, v->md[i]) != 1)
    {
        return NGX_ERROR;
    }

    /* RSASSA-PSS */

    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
        || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, v->md[i]) != 1
        || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
           != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ciba_verifier_cleanup(void *data)
{
    ngx_http_ciba_verifier_t  *v = data;

    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_CIBA_NALGS; i++) {
        if (v->ctx[i]) {
            EVP_PKEY_CTX_free(v->ctx[i]);
        }

        if (v->md[i]) {
            EVP_MD_free(v->md[i]);
        }
    }

    if (v->pkey) {
        EVP_PKEY_free(v->pkey);
    }

    if (v->secret) {
        OPENSSL_cleanse(v->secret, v->secret_len);
    }
}


static ngx_uint_t
ngx_http_ciba_sig_index(ngx_uint_t bit)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_CIBA_NALGS; i++) {
        if (ngx_http_ciba_sig_algs[i].bit == bit) {
            return i;
        }
    }

    return NGX_HTTP_CIBA_NALGS;
}


/*
 * NGX_OK: the signature over "input" (header "." payload, as sent) is
 * valid for the key and the algorithm the header check pinned;
 * NGX_DECLINED: it is not; NGX_ERROR: an internal failure.
 */

ngx_int_t
ngx_http_ciba_verify(ngx_http_request_t *r, ngx_http_ciba_token_t *tok)
{
    u_char                    *sig, mac[EVP_MAX_MD_SIZE];
    size_t                     len;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    unsigned int               mac_len;
    ngx_http_ciba_verifier_t  *v;

    v = tok->key->verifier;
    i = ngx_http_ciba_sig_index(tok->algorithm->bit);

    /* no signature: the part was not canonical base64url */

    sig = tok->signature.data;
    len = tok->signature.len;

    if (v == NULL || i == NGX_HTTP_CIBA_NALGS
        || len == 0 || len > NGX_HTTP_CIBA_SIG_MAX)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_sig_algs[i].sig == NGX_HTTP_CIBA_SIG_HMAC) {

        if (v->secret == NULL
            || HMAC(v->md[i], v->secret, (int) v->secret_len,
                    tok->input.data, tok->input.len, mac, &mac_len)
               == NULL)
        {
            ERR_clear_error();
            return NGX_ERROR;
        }

        return (len == mac_len && CRYPTO_memcmp(sig, mac, mac_len) == 0)
               ? NGX_OK : NGX_DECLINED;
    }

    rc = ngx_http_ciba_verify_pkey(v, i, &tok->input, sig, len);

    if (rc != NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: signature not verified (%i)", rc);
        ERR_clear_error();
    }

    return rc;
}


static ngx_int_t
ngx_http_ciba_verify_pkey(ngx_http_ciba_verifier_t *v, ngx_uint_t i,
    ngx_str_t *input, u_char *sig, size_t siglen)
{
    int                       ok;
    u_char                    hash[EVP_MAX_MD_SIZE];
    unsigned int              hash_len;
    EVP_MD_CTX               *md, *mdctx;
    EVP_PKEY_CTX             *pctx;
    ngx_http_ciba_sig_alg_t  *a;

    a = &ngx_http_ciba_sig_algs[i];

    if (v->pkey == NULL) {
        return NGX_DECLINED;
    }

    if (a->sig == NGX_HTTP_CIBA_SIG_EDDSA) {

        /* Ed25519 signs the message itself, no digest first */

        if (siglen != 64) {
            return NGX_DECLINED;
        }

        mdctx = EVP_MD_CTX_new();
        if (mdctx == NULL) {
            return NGX_ERROR;
        }

        ok = EVP_DigestVerifyInit_ex(mdctx, NULL, NULL, NULL, NULL, v->pkey,
                                     NULL);
        if (ok == 1) {
            ok = EVP_DigestVerify(mdctx, sig, siglen, input->data,
                                  input->len);
        } else {
            ok = -1;
        }

        EVP_MD_CTX_free(mdctx);

        return (ok == 1) ? NGX_OK : (ok == 0) ? NGX_DECLINED : NGX_ERROR;
    }

    md = ngx_http_ciba_hash_start(v->md[i]);

    if (md == NULL
        || EVP_DigestUpdate(md, input->data, input->len) != 1
        || EVP_DigestFinal_ex(md, hash, &hash_len) != 1)
    {
        return NGX_ERROR;
    }

    if (a->sig == NGX_HTTP_CIBA_SIG_ECDSA) {

        /* r || s of exactly the curve's size, nothing else */

        if (siglen != 2 * a->size || v->ec == NULL) {
            return NGX_DECLINED;
        }

        return ngx_http_ciba_verify_ecdsa(v, hash, hash_len, sig, a->size);
    }

    if (a->sig == NGX_HTTP_CIBA_SIG_RSA) {

        /* RSA_verify() wants the modulus' size and the exact DigestInfo */

        if (v->rsa == NULL) {
            return NGX_DECLINED;
        }

        ok = RSA_verify(a->nid, hash, hash_len, sig, (unsigned int) siglen,
                        (RSA *) v->rsa);

        return (ok == 1) ? NGX_OK : NGX_DECLINED;
    }

    /* the prepared context is shared: each request verifies with a copy */

    pctx = EVP_PKEY_CTX_dup(v->ctx[i]);
    if (pctx == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_PKEY_verify(pctx, sig, siglen, hash, hash_len);

    EVP_PKEY_CTX_free(pctx);

    /* a signature that does not even parse is a bad one too */
    return (ok == 1) ? NGX_OK : NGX_DECLINED;
}


/* r || s, each n bytes, as an ECDSA_SIG */

static ngx_int_t
ngx_http_ciba_verify_ecdsa(ngx_http_ciba_verifier_t *v, u_char *hash,
    unsigned int hash_len, u_char *sig, size_t n)
{
    int         ok;
    BIGNUM     *br, *bs;
    ECDSA_SIG  *es;

    es = ECDSA_SIG_new();
    br = BN_bin2bn(sig, (int) n, NULL);
    bs = BN_bin2bn(sig + n, (int) n, NULL);

    if (es == NULL || br == NULL || bs == NULL
        || ECDSA_SIG_set0(es, br, bs) != 1)
    {
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(es);
        return NGX_ERROR;
    }

    /* r and s belong to es now; out of [1, n - 1], it does not verify */

    ok = ECDSA_do_verify(hash, (int) hash_len, es, (EC_KEY *) v->ec);

    ECDSA_SIG_free(es);

    return (ok == 1) ? NGX_OK : NGX_DECLINED;
}
