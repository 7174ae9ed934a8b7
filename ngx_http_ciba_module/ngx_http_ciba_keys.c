
/*
 * ngx_http_ciba_module: verification keys and algorithms.
 *
 * Keys come from files named by "ciba_key_file": a JWKS (or a single JWK)
 * or a PEM public key or certificate.  They are parsed once, at
 * configuration time, into libjwt key objects that hold ready OpenSSL
 * keys; a request never parses a key.  Each key gets the set of
 * algorithms its type can verify (an RSA key never verifies HS256, a
 * P-384 key never ES256), intersected with its JWK "alg" when it has one.
 */


#include "ngx_http_ciba.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/core_names.h>


#define NGX_HTTP_CIBA_KEY_FILE_MAX  (1024 * 1024)


static jwk_set_t *ngx_http_ciba_load_jwks(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content);
static jwk_set_t *ngx_http_ciba_load_pem(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content, ngx_str_t *kid);
static json_t *ngx_http_ciba_pkey_to_jwk(ngx_conf_t *cf, EVP_PKEY *pkey);
static ngx_int_t ngx_http_ciba_jwk_set_bn(ngx_conf_t *cf, json_t *jwk,
    const char *member, EVP_PKEY *pkey, const char *param, size_t pad);
static ngx_int_t ngx_http_ciba_jwk_set_b64(ngx_conf_t *cf, json_t *jwk,
    const char *member, u_char *data, size_t len);
static ngx_int_t ngx_http_ciba_add_key(ngx_conf_t *cf,
    ngx_http_ciba_loc_conf_t *cicf, ngx_str_t *name, const jwk_item_t *item);
static void ngx_http_ciba_jwks_cleanup(void *data);


static ngx_http_ciba_alg_t  ngx_http_ciba_algs[] = {
    { ngx_string("ES256"), NGX_HTTP_CIBA_ALG_ES256, JWT_ALG_ES256 },
    { ngx_string("ES384"), NGX_HTTP_CIBA_ALG_ES384, JWT_ALG_ES384 },
    { ngx_string("ES512"), NGX_HTTP_CIBA_ALG_ES512, JWT_ALG_ES512 },
    { ngx_string("RS256"), NGX_HTTP_CIBA_ALG_RS256, JWT_ALG_RS256 },
    { ngx_string("RS384"), NGX_HTTP_CIBA_ALG_RS384, JWT_ALG_RS384 },
    { ngx_string("RS512"), NGX_HTTP_CIBA_ALG_RS512, JWT_ALG_RS512 },
    { ngx_string("PS256"), NGX_HTTP_CIBA_ALG_PS256, JWT_ALG_PS256 },
    { ngx_string("PS384"), NGX_HTTP_CIBA_ALG_PS384, JWT_ALG_PS384 },
    { ngx_string("PS512"), NGX_HTTP_CIBA_ALG_PS512, JWT_ALG_PS512 },
    { ngx_string("EdDSA"), NGX_HTTP_CIBA_ALG_EDDSA, JWT_ALG_EDDSA },
    { ngx_string("HS256"), NGX_HTTP_CIBA_ALG_HS256, JWT_ALG_HS256 },
    { ngx_string("HS384"), NGX_HTTP_CIBA_ALG_HS384, JWT_ALG_HS384 },
    { ngx_string("HS512"), NGX_HTTP_CIBA_ALG_HS512, JWT_ALG_HS512 },
    { ngx_null_string, 0, JWT_ALG_NONE }
};


ngx_http_ciba_alg_t *
ngx_http_ciba_alg_by_name(u_char *name, size_t len)
{
    ngx_http_ciba_alg_t  *a;

    for (a = ngx_http_ciba_algs; a->name.len; a++) {
        if (a->name.len == len && ngx_strncmp(a->name.data, name, len) == 0) {
            return a;
        }
    }

    return NULL;
}


char *
ngx_http_ciba_algorithms(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    ngx_str_t            *value;
    ngx_uint_t            i;
    ngx_http_ciba_alg_t  *alg;

    if (cicf->algorithms) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 4
            && ngx_strncasecmp(value[i].data, (u_char *) "none", 4) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "algorithm \"none\" is never accepted");
            return NGX_CONF_ERROR;
        }

        alg = ngx_http_ciba_alg_by_name(value[i].data, value[i].len);

        if (alg == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown algorithm \"%V\", expected ES256, "
                               "ES384, ES512, RS256, RS384, RS512, PS256, "
                               "PS384, PS512, EdDSA, HS256, HS384 or HS512",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        cicf->algorithms |= alg->bit;
    }

    return NGX_CONF_OK;
}


/* ciba_key_file path [kid=ID]; */

char *
ngx_http_ciba_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    size_t               i;
    ngx_str_t           *value, name, content, kid;
    jwk_set_t           *set;
    ngx_uint_t           n;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    name = value[1];
    ngx_str_null(&kid);

    if (cf->args->nelts == 3) {
        if (value[2].len <= 4
            || ngx_strncmp(value[2].data, "kid=", 4) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        kid.data = value[2].data + 4;
        kid.len = value[2].len - 4;
    }

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ciba_conf_read_file(cf, &name, &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < content.len; i++) {
        if (content.data[i] != ' ' && content.data[i] != '\t'
            && content.data[i] != '\r' && content.data[i] != '\n')
        {
            break;
        }
    }

    if (i < content.len && content.data[i] == '{') {

        if (kid.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"kid=\" applies to PEM files only; "
                               "\"%V\" is a JWK set, whose keys carry "
                               "their own \"kid\"", &name);
            return NGX_CONF_ERROR;
        }

        set = ngx_http_ciba_load_jwks(cf, &name, &content);

    } else {
        set = ngx_http_ciba_load_pem(cf, &name, &content, &kid);
    }

    if (set == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        jwks_free(set);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_ciba_jwks_cleanup;
    cln->data = set;

    if (cicf->keys == NGX_CONF_UNSET_PTR) {
        cicf->keys = ngx_array_create(cf->pool, 4,
                                      sizeof(ngx_http_ciba_key_t));
        if (cicf->keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    n = jwks_item_count(set);

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no key found in \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_ciba_add_key(cf, cicf, &name, jwks_item_get(set, i))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ciba_add_key(ngx_conf_t *cf, ngx_http_ciba_loc_conf_t *cicf,
    ngx_str_t *name, const jwk_item_t *item)
{
    size_t                i, oct_len;
    jwt_alg_t             jalg;
    const char           *kid, *curve;
    const unsigned char  *oct;
    ngx_uint_t            algs;
    ngx_http_ciba_key_t  *key, *keys;

    kid = jwks_item_kid(item);
    oct = NULL;
    oct_len = 0;

    if (jwks_item_use(item) == JWK_PUB_KEY_USE_ENC) {
        ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                           "key%s%s%s in \"%V\" is for encryption, ignored",
                           kid ? " \"" : "", kid ? kid : "", kid ? "\"" : "",
                           name);
        return NGX_OK;
    }

    if (jwks_item_error(item)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key%s%s%s in \"%V\": %s",
                           kid ? " \"" : "", kid ? kid : "", kid ? "\"" : "",
                           name, jwks_item_error_msg(item));
        return NGX_ERROR;
    }

    curve = jwks_item_curve(item);

    switch (jwks_item_kty(item)) {

    case JWK_KEY_TYPE_RSA:
        if (jwks_item_key_bits(item) < 2048) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "RSA key in \"%V\" has %d bits, "
                               "at least 2048 are required",
                               name, jwks_item_key_bits(item));
            return NGX_ERROR;
        }

        algs = NGX_HTTP_CIBA_ALG_RSA;
        break;

    case JWK_KEY_TYPE_EC:
        if (curve && ngx_strcmp(curve, "P-256") == 0) {
            algs = NGX_HTTP_CIBA_ALG_ES256;

        } else if (curve && ngx_strcmp(curve, "P-384") == 0) {
            algs = NGX_HTTP_CIBA_ALG_ES384;

        } else if (curve && ngx_strcmp(curve, "P-521") == 0) {
            algs = NGX_HTTP_CIBA_ALG_ES512;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "EC key in \"%V\" has the unsupported curve "
                               "\"%s\"", name, curve ? curve : "");
            return NGX_ERROR;
        }

        break;

    case JWK_KEY_TYPE_OKP:
        if (curve == NULL || ngx_strcmp(curve, "Ed25519") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "OKP key in \"%V\" has the unsupported curve "
                               "\"%s\"", name, curve ? curve : "");
            return NGX_ERROR;
        }

        algs = NGX_HTTP_CIBA_ALG_EDDSA;
        break;

    case JWK_KEY_TYPE_OCT:

        /* RFC 7518 3.2: a key at least as long as the hash output */

        if (jwks_item_key_oct(item, &oct, &oct_len) != 0 || oct_len < 32) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "HMAC key in \"%V\" has %uz bytes, "
                               "at least 32 are required", name,
                               oct ? oct_len : (size_t) 0);
            return NGX_ERROR;
        }

        algs = NGX_HTTP_CIBA_ALG_HS256;

        if (oct_len >= 48) {
            algs |= NGX_HTTP_CIBA_ALG_HS384;
        }

        if (oct_len >= 64) {
            algs |= NGX_HTTP_CIBA_ALG_HS512;
        }

        break;

    default:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key in \"%V\" has an unsupported type", name);
        return NGX_ERROR;
    }

    jalg = jwks_item_alg(item);

    if (jalg != JWT_ALG_NONE) {
        for (i = 0; ngx_http_ciba_algs[i].name.len; i++) {
            if (ngx_http_ciba_algs[i].jwt_alg == jalg) {
                break;
            }
        }

        algs &= ngx_http_ciba_algs[i].bit;

        if (algs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "key%s%s%s in \"%V\" declares an \"alg\" "
                               "its key type cannot verify",
                               kid ? " \"" : "", kid ? kid : "",
                               kid ? "\"" : "", name);
            return NGX_ERROR;
        }
    }

    /* an HMAC key is a shared secret: it is always "private" */

    if (jwks_item_kty(item) != JWK_KEY_TYPE_OCT && jwks_item_is_private(item))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "key%s%s%s in \"%V\" holds private key material; "
                           "only a public key is needed",
                           kid ? " \"" : "", kid ? kid : "", kid ? "\"" : "",
                           name);
    }

    keys = cicf->keys->elts;

    for (i = 0; kid && i < cicf->keys->nelts; i++) {
        if (keys[i].kid.len == ngx_strlen(kid)
            && ngx_strncmp(keys[i].kid.data, kid, keys[i].kid.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key id \"%s\" in \"%V\"",
                               kid, name);
            return NGX_ERROR;
        }
    }

    key = ngx_array_push(cicf->keys);
    if (key == NULL) {
        return NGX_ERROR;
    }

    if (kid) {
        key->kid.len = ngx_strlen(kid);
        key->kid.data = ngx_pnalloc(cf->pool, key->kid.len);
        if (key->kid.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(key->kid.data, kid, key->kid.len);

    } else {
        ngx_str_null(&key->kid);
    }

    key->jwk = item;
    key->algs = algs;
    key->source = *name;
    key->verifier = NULL;

    return ngx_http_ciba_verifier_create(cf, key, item, name);
}


ngx_int_t
ngx_http_ciba_keys_check(ngx_conf_t *cf, ngx_http_ciba_loc_conf_t *cicf)
{
    ngx_uint_t            i, usable;
    ngx_http_ciba_key_t  *keys;

    if (cicf->keys == NULL || cicf->keys->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba\" is on but no \"ciba_key_file\" "
                           "gives a verification key");
        return NGX_ERROR;
    }

    keys = cicf->keys->elts;
    usable = 0;

    for (i = 0; i < cicf->keys->nelts; i++) {
        if (keys[i].algs & cicf->algorithms) {
            usable++;
        }
    }

    if (usable == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no configured key can verify any algorithm "
                           "allowed by \"ciba_algorithms\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ciba_conf_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content)
{
    off_t            size;
    ssize_t          n;
    ngx_int_t        rc;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", name);
        goto done;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" is not a regular file", name);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (size == 0 || size > NGX_HTTP_CIBA_KEY_FILE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" is empty or larger than 1m",
                           name);
        goto done;
    }

    content->len = (size_t) size;
    content->data = ngx_pnalloc(cf->temp_pool, content->len + 1);
    if (content->data == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, content->data, content->len, 0);

    if (n != (ssize_t) content->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_file_n " \"%V\" failed", name);
        goto done;
    }

    content->data[content->len] = '\0';

    rc = NGX_OK;

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", name);
    }

    return rc;
}


static jwk_set_t *
ngx_http_ciba_load_jwks(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *content)
{
    jwk_set_t  *set;

    set = jwks_load_strn(NULL, (char *) content->data, content->len);

    if (set == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loading the JWK set \"%V\" failed", name);
        return NULL;
    }

    if (jwks_error(set)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid JWK set \"%V\": %s",
                           name, jwks_error_msg(set));
        jwks_free(set);
        return NULL;
    }

    return set;
}


static jwk_set_t *
ngx_http_ciba_load_pem(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *content,
    ngx_str_t *kid)
{
    BIO        *bio;
    X509       *x509;
    char       *json;
    json_t     *jwk;
    EVP_PKEY   *pkey;
    jwk_set_t  *set;

    bio = BIO_new_mem_buf(content->data, (int) content->len);
    if (bio == NULL) {
        return NULL;
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

    if (pkey == NULL) {
        (void) BIO_reset(bio);

        x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x509) {
            pkey = X509_get_pubkey(x509);
            X509_free(x509);
        }
    }

    BIO_free(bio);

    ERR_clear_error();

    if (pkey == NULL) {
        if (ngx_strstr(content->data, "PRIVATE KEY-----")) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" holds a private key; configure the "
                               "public key or certificate instead", name);
            return NULL;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" holds neither a JWK set nor a PEM public "
                           "key (\"BEGIN PUBLIC KEY\") or certificate", name);
        return NULL;
    }

    jwk = ngx_http_ciba_pkey_to_jwk(cf, pkey);

    EVP_PKEY_free(pkey);

    if (jwk == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key in \"%V\" has an unsupported type; "
                           "RSA, EC (P-256, P-384, P-521) and Ed25519 keys "
                           "are supported", name);
        return NULL;
    }

    if (kid->len) {
        if (json_object_set_new(jwk, "kid",
                                json_stringn((char *) kid->data, kid->len))
            != 0)
        {
            json_decref(jwk);
            return NULL;
        }
    }

    json = json_dumps(jwk, JSON_COMPACT);
    json_decref(jwk);

    if (json == NULL) {
        return NULL;
    }

    set = jwks_load(NULL, json);
    free(json);

    if (set == NULL || jwks_error(set)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "loading the key in \"%V\" failed: %s", name,
                           set ? jwks_error_msg(set) : "out of memory");
        if (set) {
            jwks_free(set);
        }

        return NULL;
    }

    return set;
}


static json_t *
ngx_http_ciba_pkey_to_jwk(ngx_conf_t *cf, EVP_PKEY *pkey)
{
    char         group[64];
    size_t       len, pad;
    u_char       raw[64];
    json_t      *jwk;
    const char  *crv;

    jwk = json_object();
    if (jwk == NULL) {
        return NULL;
    }

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        if (json_object_set_new(jwk, "kty", json_string("RSA")) != 0
            || ngx_http_ciba_jwk_set_bn(cf, jwk, "n", pkey,
                                        OSSL_PKEY_PARAM_RSA_N, 0)
               != NGX_OK
            || ngx_http_ciba_jwk_set_bn(cf, jwk, "e", pkey,
                                        OSSL_PKEY_PARAM_RSA_E, 0)
               != NGX_OK)
        {
            goto failed;
        }

        break;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &len)
            != 1)
        {
            goto failed;
        }

        if (ngx_strcmp(group, "prime256v1") == 0) {
            crv = "P-256";
            pad = 32;

        } else if (ngx_strcmp(group, "secp384r1") == 0) {
            crv = "P-384";
            pad = 48;

        } else if (ngx_strcmp(group, "secp521r1") == 0) {
            crv = "P-521";
            pad = 66;

        } else {
            goto failed;
        }

        if (json_object_set_new(jwk, "kty", json_string("EC")) != 0
            || json_object_set_new(jwk, "crv", json_string(crv)) != 0
            || ngx_http_ciba_jwk_set_bn(cf, jwk, "x", pkey,
                                        OSSL_PKEY_PARAM_EC_PUB_X, pad)
               != NGX_OK
            || ngx_http_ciba_jwk_set_bn(cf, jwk, "y", pkey,
                                        OSSL_PKEY_PARAM_EC_PUB_Y, pad)
               != NGX_OK)
        {
            goto failed;
        }

        break;

    case EVP_PKEY_ED25519:
        len = sizeof(raw);

        if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1
            || json_object_set_new(jwk, "kty", json_string("OKP")) != 0
            || json_object_set_new(jwk, "crv", json_string("Ed25519")) != 0
            || ngx_http_ciba_jwk_set_b64(cf, jwk, "x", raw, len) != NGX_OK)
        {
            goto failed;
        }

        break;

    default:
        goto failed;
    }

    if (json_object_set_new(jwk, "use", json_string("sig")) != 0) {
        goto failed;
    }

    return jwk;

failed:

    json_decref(jwk);

    return NULL;
}


static ngx_int_t
ngx_http_ciba_jwk_set_bn(ngx_conf_t *cf, json_t *jwk, const char *member,
    EVP_PKEY *pkey, const char *param, size_t pad)
{
    int        n;
    u_char    *buf;
    BIGNUM    *bn;
    ngx_int_t  rc;

    bn = NULL;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
        return NGX_ERROR;
    }

    n = BN_num_bytes(bn);

    if (pad == 0) {
        pad = n;
    }

    if ((size_t) n > pad) {
        BN_free(bn);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(cf->temp_pool, pad);
    if (buf == NULL) {
        BN_free(bn);
        return NGX_ERROR;
    }

    if (BN_bn2binpad(bn, buf, (int) pad) < 0) {
        BN_free(bn);
        return NGX_ERROR;
    }

    BN_free(bn);

    rc = ngx_http_ciba_jwk_set_b64(cf, jwk, member, buf, pad);

    return rc;
}


static ngx_int_t
ngx_http_ciba_jwk_set_b64(ngx_conf_t *cf, json_t *jwk, const char *member,
    u_char *data, size_t len)
{
    ngx_str_t  src, dst;

    src.data = data;
    src.len = len;

    dst.data = ngx_pnalloc(cf->temp_pool, ngx_base64_encoded_length(len));
    if (dst.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(&dst, &src);

    if (json_object_set_new(jwk, member,
                            json_stringn((char *) dst.data, dst.len))
        != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ciba_jwks_cleanup(void *data)
{
    jwk_set_t  *set = data;

    jwks_free(set);
}
