
/*
 * ngx_http_ciba_module: human approval of single actions, bound to the
 * exact request and usable once.
 *
 * Shared types and the interfaces between the module's files.
 */


#ifndef _NGX_HTTP_CIBA_H_INCLUDED_
#define _NGX_HTTP_CIBA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jwt.h>


/* the parts of a request the action digest may cover */
#define NGX_HTTP_CIBA_COVER_METHOD   0x0001
#define NGX_HTTP_CIBA_COVER_PATH     0x0002
#define NGX_HTTP_CIBA_COVER_ARGS     0x0004
#define NGX_HTTP_CIBA_COVER_BODY     0x0008
#define NGX_HTTP_CIBA_COVER_ALL      0x000f

/* base64url of a SHA-256 digest, without padding */
#define NGX_HTTP_CIBA_DIGEST_LEN     43

/* the longest approval token looked at */
#define NGX_HTTP_CIBA_TOKEN_MAX      16384

/* the longest jti accepted */
#define NGX_HTTP_CIBA_JTI_MAX        256

/* the largest leeway an operator may configure */
#define NGX_HTTP_CIBA_LEEWAY_MAX     300


/* signature algorithms, as bits of a set */
#define NGX_HTTP_CIBA_ALG_ES256      0x0001
#define NGX_HTTP_CIBA_ALG_ES384      0x0002
#define NGX_HTTP_CIBA_ALG_ES512      0x0004
#define NGX_HTTP_CIBA_ALG_RS256      0x0008
#define NGX_HTTP_CIBA_ALG_RS384      0x0010
#define NGX_HTTP_CIBA_ALG_RS512      0x0020
#define NGX_HTTP_CIBA_ALG_PS256      0x0040
#define NGX_HTTP_CIBA_ALG_PS384      0x0080
#define NGX_HTTP_CIBA_ALG_PS512      0x0100
#define NGX_HTTP_CIBA_ALG_EDDSA      0x0200
#define NGX_HTTP_CIBA_ALG_HS256      0x0400
#define NGX_HTTP_CIBA_ALG_HS384      0x0800
#define NGX_HTTP_CIBA_ALG_HS512      0x1000

#define NGX_HTTP_CIBA_ALG_RSA        0x01f8
#define NGX_HTTP_CIBA_ALG_HMAC       0x1c00
#define NGX_HTTP_CIBA_ALG_ASYMMETRIC 0x03ff


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  bit;
    jwt_alg_t                   jwt_alg;
} ngx_http_ciba_alg_t;


/* a verification key, ready to use */
typedef struct {
    ngx_str_t                   kid;
    const jwk_item_t           *jwk;
    ngx_uint_t                  algs;       /* what the key can verify */
    ngx_str_t                   source;     /* file name, for logs */
} ngx_http_ciba_key_t;


/* outcomes of a decision: answers of the module */
typedef enum {
    NGX_HTTP_CIBA_APPROVED = 0,
    NGX_HTTP_CIBA_REQUIRED,
    NGX_HTTP_CIBA_INVALID,
    NGX_HTTP_CIBA_MISMATCH,
    NGX_HTTP_CIBA_REPLAYED,
    NGX_HTTP_CIBA_TOO_LARGE,
    NGX_HTTP_CIBA_UNAVAILABLE
} ngx_http_ciba_outcome_e;


typedef struct {
    ngx_shm_zone_t             *shm_zone;
    ngx_str_t                   state_file;
} ngx_http_ciba_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;

    ngx_http_complex_value_t   *action;
    ngx_uint_t                  covers;
    ngx_array_t                *extras;     /* ngx_http_complex_value_t */
    size_t                      body_limit;

    ngx_array_t                *keys;       /* ngx_http_ciba_key_t */
    ngx_str_t                   issuer;
    ngx_array_t                *audiences;  /* ngx_str_t */
    ngx_uint_t                  algorithms;
    time_t                      leeway;
    time_t                      max_age;
    ngx_str_t                   typ;
    ngx_str_t                   rar_type;
    ngx_str_t                   binding_claim;
    ngx_str_t                   token_header;
    ngx_http_complex_value_t   *subject;

    ngx_uint_t                  log_level;
} ngx_http_ciba_loc_conf_t;


/* what was learnt of a token, pointing into request pool memory */
typedef struct {
    ngx_str_t                   alg;
    ngx_str_t                   kid;
    ngx_str_t                   iss;
    ngx_str_t                   sub;
    ngx_str_t                   jti;
    time_t                      exp;
    time_t                      iat;
    ngx_http_ciba_key_t        *key;
    ngx_uint_t                  alg_bit;
    u_char                      record[32];  /* SHA-256(iss NUL jti) */
} ngx_http_ciba_token_t;


/* per request state; also the source of the log variables */
typedef struct {
    ngx_http_ciba_outcome_e     outcome;
    const char                 *reason;

    ngx_str_t                   action;
    ngx_str_t                   digest;
    ngx_str_t                   subject;
    ngx_str_t                   approver;
    ngx_str_t                   jti;
    ngx_str_t                   kid;
    ngx_str_t                   alg;
    ngx_str_t                   request_ref;
    ngx_str_t                   binding_message;

    ngx_int_t                   rc;         /* what to return on re-entry */
    time_t                      retry_after;

    unsigned                    decided:1;
    unsigned                    reading_body:1;
    unsigned                    body_read:1;
} ngx_http_ciba_ctx_t;


extern ngx_module_t  ngx_http_ciba_module;


/* ngx_http_ciba_module.c */
ngx_http_ciba_ctx_t *ngx_http_ciba_get_ctx(ngx_http_request_t *r);

/* ngx_http_ciba_digest.c */
ngx_int_t ngx_http_ciba_digest(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_str_t *action, ngx_str_t *digest,
    off_t *body_len);
char *ngx_http_ciba_digest_covers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ciba_digest_extra(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ciba_keys.c */
char *ngx_http_ciba_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ciba_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ciba_keys_check(ngx_conf_t *cf,
    ngx_http_ciba_loc_conf_t *clcf);
ngx_http_ciba_alg_t *ngx_http_ciba_alg_by_name(u_char *name, size_t len);

/* ngx_http_ciba_token.c */
ngx_int_t ngx_http_ciba_token_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *raw, ngx_http_ciba_token_t *tok);

/* ngx_http_ciba_store.c */
char *ngx_http_ciba_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
time_t ngx_http_ciba_store_epoch(ngx_shm_zone_t *zone);
ngx_int_t ngx_http_ciba_store_key(ngx_str_t *iss, ngx_str_t *jti,
    u_char *key);
ngx_int_t ngx_http_ciba_store_seen(ngx_shm_zone_t *zone, u_char *key);
ngx_int_t ngx_http_ciba_store_consume(ngx_shm_zone_t *zone, u_char *key,
    time_t expire, time_t *retry_after, ngx_log_t *log);
void ngx_http_ciba_store_save(ngx_cycle_t *cycle);

/* ngx_http_ciba_answer.c */
ngx_int_t ngx_http_ciba_answer(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);

/* ngx_http_ciba_log.c */
ngx_int_t ngx_http_ciba_add_variables(ngx_conf_t *cf);
void ngx_http_ciba_log_decision(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx);
const char *ngx_http_ciba_outcome_name(ngx_http_ciba_outcome_e outcome);


#endif /* _NGX_HTTP_CIBA_H_INCLUDED_ */
