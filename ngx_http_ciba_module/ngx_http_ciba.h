
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
#include <jansson.h>
#include <openssl/evp.h>


/* the parts of a request the action digest may cover */
#define NGX_HTTP_CIBA_COVER_METHOD   0x0001
#define NGX_HTTP_CIBA_COVER_PATH     0x0002
#define NGX_HTTP_CIBA_COVER_ARGS     0x0004
#define NGX_HTTP_CIBA_COVER_BODY     0x0008
#define NGX_HTTP_CIBA_COVER_ALL      0x000f

/* ciba_path */
#define NGX_HTTP_CIBA_PATH_CANONICAL 0
#define NGX_HTTP_CIBA_PATH_NORMALIZE 1

/* ciba_duplicate_args */
#define NGX_HTTP_CIBA_ARGS_REFUSE    0
#define NGX_HTTP_CIBA_ARGS_KEEP      1

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

/* the number of algorithms, one bit each */
#define NGX_HTTP_CIBA_NALGS          13

#define NGX_HTTP_CIBA_ALG_RSA        0x01f8
#define NGX_HTTP_CIBA_ALG_HMAC       0x1c00
#define NGX_HTTP_CIBA_ALG_ASYMMETRIC 0x03ff


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  bit;
    jwt_alg_t                   jwt_alg;
} ngx_http_ciba_alg_t;


/*
 * What verifies a key's signatures, prepared once at configuration time
 * (ngx_http_ciba_verify.c); indexed by algorithm, in the order of the
 * algorithm bits
 */
typedef struct {
    EVP_PKEY                   *pkey;       /* RSA, EC, Ed25519 */
    u_char                     *secret;     /* HMAC */
    size_t                      secret_len;
    EVP_MD                     *md[NGX_HTTP_CIBA_NALGS];
    EVP_PKEY_CTX               *ctx[NGX_HTTP_CIBA_NALGS];
    const void                 *rsa;        /* RSA *, PKCS#1 v1.5 */
    const void                 *ec;         /* EC_KEY *, ECDSA */
} ngx_http_ciba_verifier_t;


/* a verification key, ready to use */
typedef struct {
    ngx_str_t                   kid;
    const jwk_item_t           *jwk;
    ngx_uint_t                  algs;       /* what the key can verify */
    ngx_str_t                   source;     /* file name, for logs */
    ngx_http_ciba_verifier_t   *verifier;
} ngx_http_ciba_key_t;


/* outcomes of a decision: answers of the module */
typedef enum {
    NGX_HTTP_CIBA_APPROVED = 0,
    NGX_HTTP_CIBA_REQUIRED,
    NGX_HTTP_CIBA_INVALID,
    NGX_HTTP_CIBA_MISMATCH,
    NGX_HTTP_CIBA_REPLAYED,
    NGX_HTTP_CIBA_TOO_LARGE,
    NGX_HTTP_CIBA_UNAVAILABLE,
    NGX_HTTP_CIBA_PENDING,
    NGX_HTTP_CIBA_DENIED,
    NGX_HTTP_CIBA_EXPIRED,
    NGX_HTTP_CIBA_MISCONFIGURED,
    NGX_HTTP_CIBA_RATE_LIMITED,
    NGX_HTTP_CIBA_NO_SUBJECT,
    NGX_HTTP_CIBA_BAD_REQUEST
} ngx_http_ciba_outcome_e;


/* a piece of the query string */
typedef struct {
    ngx_str_t                   piece;      /* as sent: name=value */
    ngx_str_t                   name;       /* as sent */
    ngx_str_t                   value;      /* as sent, may be empty */
    ngx_str_t                   key;        /* decoded, lowercased name */
    ngx_uint_t                  order;      /* position in the request */
    unsigned                    has_value:1;
} ngx_http_ciba_arg_t;


/* ciba_digest_header */
typedef struct {
    ngx_str_t                   name;       /* lowercase */
    ngx_uint_t                  repeated;
} ngx_http_ciba_header_t;


/* a walk over the fields of one request header */
typedef struct {
    ngx_list_part_t            *part;       /* NULL: not started */
    ngx_uint_t                  i;
} ngx_http_ciba_header_iter_t;


/* ciba_authorization_detail */
typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t    value;
} ngx_http_ciba_detail_t;


/* token checks that differ for a token the module fetched itself */
#define NGX_HTTP_CIBA_TOKEN_FROM_AS  0x0001


typedef struct {
    ngx_shm_zone_t             *shm_zone;
    u_char                     *handle_key;  /* ciba_handle_key, 32 bytes */
} ngx_http_ciba_main_conf_t;


/* what a sealed handle holds */
typedef struct {
    time_t                      expire;
    time_t                      interval;
    ngx_uint_t                  mode;
    u_char                      digest[32];
    u_char                      subject[32];
    ngx_str_t                   auth_req_id;
} ngx_http_ciba_handle_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_flag_t                  callback;   /* ciba_callback here */

    ngx_http_complex_value_t   *action;
    ngx_uint_t                  covers;
    ngx_array_t                *extras;     /* ngx_http_complex_value_t */
    ngx_array_t                *headers;    /* ngx_http_ciba_header_t */
    ngx_uint_t                  path_mode;
    ngx_uint_t                  duplicate_args;
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

    /* asking the human: the CIBA flow */
    ngx_str_t                   bc_uri;
    ngx_str_t                   token_uri;
    ngx_http_complex_value_t   *client_id;
    ngx_http_complex_value_t   *client_secret;
    ngx_str_t                   scope;
    ngx_http_complex_value_t   *login_hint;
    ngx_http_complex_value_t   *binding_message;
    size_t                      binding_max;
    u_char                     *binding_chars;  /* 256 flags */
    time_t                      requested_expiry;
    ngx_http_complex_value_t   *acr_values;
    ngx_array_t                *details;    /* ngx_http_ciba_detail_t */
    ngx_str_t                   handle_header;
    ngx_uint_t                  pending_status;
    ngx_uint_t                  max_pending;
    ngx_uint_t                  delivery;
    time_t                      wait;
} ngx_http_ciba_loc_conf_t;


/* a token's JSON (ngx_http_ciba_json.c) */
#define NGX_HTTP_CIBA_JSON_OBJECT         1
#define NGX_HTTP_CIBA_JSON_ARRAY          2
#define NGX_HTTP_CIBA_JSON_STRING         3
#define NGX_HTTP_CIBA_JSON_INTEGER        4
#define NGX_HTTP_CIBA_JSON_REAL           5
#define NGX_HTTP_CIBA_JSON_TRUE           6
#define NGX_HTTP_CIBA_JSON_FALSE          7
#define NGX_HTTP_CIBA_JSON_NULL           8

#define NGX_HTTP_CIBA_JSON_NONE           (-1)

typedef struct {
    ngx_str_t                   value;      /* a string unescaped, a number */
    int64_t                     integer;
    double                      real;
    uint32_t                    next;       /* the node after the subtree */
    uint32_t                    count;      /* members or elements */
    u_char                      type;
} ngx_http_ciba_jnode_t;

typedef struct {
    ngx_http_ciba_jnode_t      *nodes;
    ngx_uint_t                  n;
} ngx_http_ciba_json_t;


/* an MCP message, a JSON-RPC 2.0 one (ngx_http_ciba_mcp.c) */
#define NGX_HTTP_CIBA_MCP_REQUEST         1
#define NGX_HTTP_CIBA_MCP_NOTIFICATION    2
#define NGX_HTTP_CIBA_MCP_RESPONSE        3
#define NGX_HTTP_CIBA_MCP_BATCH           4

/* the JSON-RPC error codes of a message refused */
#define NGX_HTTP_CIBA_MCP_PARSE_ERROR     (-32700)
#define NGX_HTTP_CIBA_MCP_INVALID         (-32600)
#define NGX_HTTP_CIBA_MCP_BAD_PARAMS      (-32602)

typedef struct {
    ngx_http_ciba_json_t        doc;
    ngx_str_t                   method;
    ngx_str_t                   id;         /* canonical JSON; none: "" */
    ngx_str_t                   tool;       /* tools/call: its name */
    ngx_str_t                   arguments;  /* tools/call: canonical JSON */
    ngx_int_t                   args;       /* their node, or none */
    ngx_int_t                   code;       /* refused: the JSON-RPC error */
    const char                 *reason;
    ngx_uint_t                  kind;
} ngx_http_ciba_mcp_msg_t;


/*
 * Why a token is refused (ngx_http_ciba_token.c names each reason and its
 * outcome, in this order)
 */
typedef enum {
    NGX_HTTP_CIBA_NOT_REFUSED = 0,
    NGX_HTTP_CIBA_REFUSED_EMPTY_TOKEN,
    NGX_HTTP_CIBA_REFUSED_TOKEN_TOO_LARGE,
    NGX_HTTP_CIBA_REFUSED_MALFORMED_TOKEN,
    NGX_HTTP_CIBA_REFUSED_MALFORMED_HEADER,
    NGX_HTTP_CIBA_REFUSED_MALFORMED_PAYLOAD,
    NGX_HTTP_CIBA_REFUSED_ALG_NOT_ALLOWED,
    NGX_HTTP_CIBA_REFUSED_CRIT_UNSUPPORTED,
    NGX_HTTP_CIBA_REFUSED_BAD_TYP,
    NGX_HTTP_CIBA_REFUSED_UNKNOWN_KID,
    NGX_HTTP_CIBA_REFUSED_KEY_ALG_MISMATCH,
    NGX_HTTP_CIBA_REFUSED_NO_KEY_FOR_ALG,
    NGX_HTTP_CIBA_REFUSED_KID_REQUIRED,
    NGX_HTTP_CIBA_REFUSED_BAD_JTI,
    NGX_HTTP_CIBA_REFUSED_BAD_ISSUER,
    NGX_HTTP_CIBA_REFUSED_BAD_AUDIENCE,
    NGX_HTTP_CIBA_REFUSED_BAD_EXP,
    NGX_HTTP_CIBA_REFUSED_TOKEN_EXPIRED,
    NGX_HTTP_CIBA_REFUSED_BAD_NBF,
    NGX_HTTP_CIBA_REFUSED_TOKEN_NOT_YET_VALID,
    NGX_HTTP_CIBA_REFUSED_BAD_IAT,
    NGX_HTTP_CIBA_REFUSED_IAT_IN_FUTURE,
    NGX_HTTP_CIBA_REFUSED_TOKEN_TOO_OLD,
    NGX_HTTP_CIBA_REFUSED_ISSUED_BEFORE_START,
    NGX_HTTP_CIBA_REFUSED_BAD_SUB,
    NGX_HTTP_CIBA_REFUSED_SUBJECT_MISMATCH,
    NGX_HTTP_CIBA_REFUSED_NO_BINDING,
    NGX_HTTP_CIBA_REFUSED_DIGEST_MISMATCH,
    NGX_HTTP_CIBA_REFUSED_ACTION_MISMATCH,
    NGX_HTTP_CIBA_REFUSED_JTI_REPLAYED,
    NGX_HTTP_CIBA_REFUSED_BAD_SIGNATURE
} ngx_http_ciba_refusal_e;


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
    ngx_http_ciba_alg_t        *algorithm;  /* the pinned one */
    ngx_str_t                   input;      /* header "." payload */
    ngx_str_t                   signature;  /* decoded; empty: bad */
    u_char                      record[32];  /* SHA-256(iss NUL jti) */
    ngx_http_ciba_refusal_e     refusal;
} ngx_http_ciba_token_t;


/* SHA-256: the length of the zone's keys and of the action digest */
#define NGX_HTTP_CIBA_HASH_LEN            32

/*
 * The zone's records are keyed by SHA-256(prefix NUL id [NUL id]): a
 * used token by its issuer and jti, all others by one of these prefixes
 * (no raw id is kept)
 */
#define NGX_HTTP_CIBA_KEY_AUTH_REQ_ID     "urn:ngx-ciba:auth_req_id"
#define NGX_HTTP_CIBA_KEY_PENDING         "urn:ngx-ciba:pending"
#define NGX_HTTP_CIBA_KEY_SUBJECT         "urn:ngx-ciba:subject"
#define NGX_HTTP_CIBA_KEY_NOTIFY          "urn:ngx-ciba:notify"
#define NGX_HTTP_CIBA_KEY_PUSHED          "urn:ngx-ciba:pushed"
/* not a record: $ciba_request_ref, the public name of an auth_req_id */
#define NGX_HTTP_CIBA_KEY_REQUEST_REF     "urn:ngx-ciba:request_ref"

/* a store function found no room in the zone: the same code everywhere */
#define NGX_HTTP_CIBA_ZONE_FULL           NGX_AGAIN

/* states of a pending approval */
#define NGX_HTTP_CIBA_PENDING_REQUESTING  1   /* asking the AS */
#define NGX_HTTP_CIBA_PENDING_WAITING     2   /* the human is asked */
#define NGX_HTTP_CIBA_PENDING_READY       3   /* pinged: poll at once */
#define NGX_HTTP_CIBA_PENDING_DENIED      4
#define NGX_HTTP_CIBA_PENDING_EXPIRED     5
#define NGX_HTTP_CIBA_PENDING_DONE        6   /* removes the record */

/* how long a token request in flight holds back the next poll, at most */
#define NGX_HTTP_CIBA_POLL_IN_FLIGHT      60000   /* ms */

/* delivery modes */
#define NGX_HTTP_CIBA_MODE_POLL           0
#define NGX_HTTP_CIBA_MODE_PING           1
#define NGX_HTTP_CIBA_MODE_PUSH           2


typedef struct {
    ngx_uint_t                  state;
    time_t                      expire;     /* of the approval */
    int64_t                     next_poll;  /* ms since the epoch */
    time_t                      interval;
    ngx_uint_t                  mode;
    ngx_str_t                   handle;
    ngx_str_t                   auth_req_id;
    ngx_str_t                   token;      /* a pushed access token */
} ngx_http_ciba_pending_t;


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

    /* the request as the digest sees it, parsed once */
    ngx_str_t                   path;       /* what the digest covers */
    ngx_array_t                *args;       /* ngx_http_ciba_arg_t, sorted */
    u_char                      body_sha256[64];   /* hex */

    ngx_int_t                   rc;         /* what to return on re-entry */
    time_t                      retry_after;

    /* the CIBA flow */
    ngx_shm_zone_t             *zone;
    ngx_uint_t                  step;
    ngx_str_t                   login_hint;
    u_char                      subject_key[32];
    u_char                      pending_key[32];
    ngx_http_ciba_handle_t      handle;
    ngx_str_t                   handle_str;
    time_t                      expires_in;
    time_t                      interval;
    ngx_uint_t                  as_status;
    ngx_str_t                   as_body;
    ngx_str_t                   notification_token;
    int64_t                     wait_until;  /* ms since the epoch */
    int64_t                     next_poll;   /* ms, when polls are paced */

    /* the AS subrequest in flight and its answer, bounded */
    ngx_http_request_t         *as_sr;
    ngx_buf_t                  *as_buf;
    off_t                       as_size;

    unsigned                    decided:1;
    unsigned                    reading_body:1;
    unsigned                    body_read:1;
    unsigned                    as_done:1;
    unsigned                    checked:1;
    unsigned                    as_too_big:1;
    unsigned                    as_posted:1;
    unsigned                    body_hashed:1;
} ngx_http_ciba_ctx_t;


/* steps of the CIBA flow */
#define NGX_HTTP_CIBA_STEP_NONE      0
#define NGX_HTTP_CIBA_STEP_BC        1   /* backchannel request sent */
#define NGX_HTTP_CIBA_STEP_TOKEN     2   /* token request sent */


extern ngx_module_t  ngx_http_ciba_module;


/* wall-clock milliseconds: poll times are shared by all workers */

static ngx_inline int64_t
ngx_http_ciba_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + (int64_t) tp->msec;
}


/* whole seconds until a time in ms, rounded up, at least 1 */

static ngx_inline time_t
ngx_http_ciba_secs_until(int64_t when)
{
    int64_t  ms;

    ms = when - ngx_http_ciba_now_ms();

    return (ms <= 1000) ? 1 : (time_t) ((ms + 999) / 1000);
}


/* ngx_http_ciba_module.c */
ngx_http_ciba_ctx_t *ngx_http_ciba_get_ctx(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_ciba_next_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_http_ciba_header_iter_t *it);

/* ngx_http_ciba_digest.c */
ngx_int_t ngx_http_ciba_request_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
ngx_int_t ngx_http_ciba_digest(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    off_t *body_len);
void ngx_http_ciba_unescape_arg(u_char **dst, ngx_str_t *src);
ngx_int_t ngx_http_ciba_utf8_valid(u_char *p, size_t len);
char *ngx_http_ciba_digest_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
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
    ngx_http_ciba_loc_conf_t *cicf);
ngx_http_ciba_alg_t *ngx_http_ciba_alg_by_name(u_char *name, size_t len);
ngx_int_t ngx_http_ciba_conf_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content);

/* ngx_http_ciba_token.c */
ngx_int_t ngx_http_ciba_id_token_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_str_t *id_token,
    ngx_str_t *auth_req_id, ngx_str_t *access_token, ngx_str_t *client_id,
    const char **reason);
ngx_int_t ngx_http_ciba_token_check(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *raw, ngx_http_ciba_token_t *tok, ngx_uint_t flags);

/* ngx_http_ciba_verify.c */
ngx_int_t ngx_http_ciba_verifier_create(ngx_conf_t *cf,
    ngx_http_ciba_key_t *key, const jwk_item_t *item, ngx_str_t *name);
ngx_int_t ngx_http_ciba_verify(ngx_http_request_t *r,
    ngx_http_ciba_token_t *tok);

/* ngx_http_ciba_handle.c */
ngx_int_t ngx_http_ciba_handle_seal(ngx_http_request_t *r, u_char *key,
    ngx_http_ciba_handle_t *h, ngx_str_t *handle);
ngx_int_t ngx_http_ciba_handle_open(ngx_http_request_t *r, u_char *key,
    ngx_str_t *handle, ngx_http_ciba_handle_t *h);
char *ngx_http_ciba_handle_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ciba_backchannel.c */
ngx_int_t ngx_http_ciba_as_request(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_uint_t step);
json_t *ngx_http_ciba_as_json(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);
ngx_int_t ngx_http_ciba_render_binding(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
char *ngx_http_ciba_binding_chars(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ciba_authorization_detail(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_ciba_as_filter_init(ngx_conf_t *cf);

/* ngx_http_ciba_approval.c */
ngx_int_t ngx_http_ciba_approval(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *handle);
char *ngx_http_ciba_check_flow(ngx_conf_t *cf,
    ngx_http_ciba_loc_conf_t *cicf);

/* ngx_http_ciba_json.c */
ngx_int_t ngx_http_ciba_json_parse(ngx_pool_t *pool, u_char *text,
    size_t len, ngx_http_ciba_json_t *doc);
ngx_int_t ngx_http_ciba_json_get(ngx_http_ciba_json_t *doc, ngx_int_t obj,
    const char *name);
ngx_int_t ngx_http_ciba_json_member(ngx_http_ciba_json_t *doc,
    ngx_int_t obj, ngx_str_t *name);

/* ngx_http_ciba_jcs.c */
ngx_int_t ngx_http_ciba_jcs(ngx_pool_t *pool, ngx_http_ciba_json_t *doc,
    ngx_uint_t i, ngx_str_t *out);

/* ngx_http_ciba_mcp.c */
ngx_int_t ngx_http_ciba_mcp_parse(ngx_pool_t *pool, u_char *text,
    size_t len, ngx_http_ciba_mcp_msg_t *msg);
ngx_int_t ngx_http_ciba_mcp_arg(ngx_pool_t *pool,
    ngx_http_ciba_mcp_msg_t *msg, ngx_str_t *name, ngx_str_t *value);

/* ngx_http_ciba_hash.c */
const EVP_MD *ngx_http_ciba_sha256(void);
EVP_MD_CTX *ngx_http_ciba_hash_start(const EVP_MD *md);
ngx_int_t ngx_http_ciba_sha256_buf(u_char *data, size_t len, u_char *out);
void ngx_http_ciba_hash_cleanup(void);

/* ngx_http_ciba_zone.c */
char *ngx_http_ciba_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
time_t ngx_http_ciba_store_epoch(ngx_shm_zone_t *zone);
u_char *ngx_http_ciba_store_handle_key(ngx_shm_zone_t *zone);
time_t ngx_http_ciba_store_retry_after(ngx_shm_zone_t *shm_zone);
ngx_int_t ngx_http_ciba_store_key(ngx_str_t *iss, ngx_str_t *jti,
    u_char *key);
ngx_int_t ngx_http_ciba_store_key2(ngx_str_t *a, ngx_str_t *b, ngx_str_t *c,
    u_char *hash);
ngx_int_t ngx_http_ciba_zone_key(const char *prefix, ngx_str_t *id,
    u_char *key);

/* ngx_http_ciba_store.c */
ngx_int_t ngx_http_ciba_store_seen(ngx_shm_zone_t *zone, u_char *key);
void ngx_http_ciba_store_refused(ngx_shm_zone_t *zone, u_char *key);
ngx_int_t ngx_http_ciba_store_consume(ngx_shm_zone_t *zone, u_char *key,
    u_char *pending, time_t expire, time_t *retry_after, ngx_log_t *log);

/* ngx_http_ciba_pending.c */
ngx_int_t ngx_http_ciba_pending_key(ngx_str_t *subject, ngx_str_t *digest,
    u_char *key, u_char *subject_key);
ngx_int_t ngx_http_ciba_pending_get(ngx_shm_zone_t *zone, u_char *key,
    ngx_pool_t *pool, ngx_http_ciba_pending_t *p);
ngx_int_t ngx_http_ciba_pending_begin(ngx_shm_zone_t *zone, u_char *key,
    u_char *subject, ngx_uint_t max, time_t expire, ngx_log_t *log);
ngx_int_t ngx_http_ciba_pending_set(ngx_shm_zone_t *zone, u_char *key,
    ngx_http_ciba_pending_t *p, ngx_log_t *log);
ngx_int_t ngx_http_ciba_pending_poll(ngx_shm_zone_t *zone, u_char *key,
    ngx_str_t *auth_req_id, int64_t *next, time_t *interval);
void ngx_http_ciba_pending_abandon(ngx_shm_zone_t *zone, u_char *key);
void ngx_http_ciba_pending_update(ngx_shm_zone_t *zone, u_char *key,
    ngx_uint_t state, time_t interval);
ngx_int_t ngx_http_ciba_notify_set(ngx_shm_zone_t *zone,
    ngx_str_t *auth_req_id, u_char *pending_key, u_char *token_hash,
    time_t expire, ngx_log_t *log);
ngx_int_t ngx_http_ciba_notify_ping(ngx_shm_zone_t *zone,
    ngx_str_t *auth_req_id, ngx_str_t *token, u_char *pending_key);
void ngx_http_ciba_notify_remove(ngx_shm_zone_t *zone,
    ngx_str_t *auth_req_id);
ngx_int_t ngx_http_ciba_pushed_put(ngx_shm_zone_t *zone,
    ngx_str_t *auth_req_id, ngx_str_t *token, time_t expire, ngx_log_t *log);
ngx_int_t ngx_http_ciba_pushed_take(ngx_shm_zone_t *zone,
    ngx_str_t *auth_req_id, ngx_pool_t *pool, ngx_str_t *token);

/* ngx_http_ciba_state.c */
void ngx_http_ciba_store_save(ngx_cycle_t *cycle);

/* ngx_http_ciba_callback.c */
char *ngx_http_ciba_callback(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ciba_answer.c */
ngx_int_t ngx_http_ciba_answer(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);
ngx_int_t ngx_http_ciba_send(ngx_http_request_t *r, ngx_buf_t *b);

/* ngx_http_ciba_log.c */
extern ngx_str_t  ngx_http_ciba_outcome_names[];
ngx_int_t ngx_http_ciba_add_variables(ngx_conf_t *cf);
void ngx_http_ciba_log_decision(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
u_char *ngx_http_ciba_log_escape(ngx_pool_t *pool, ngx_str_t *src);


#endif /* _NGX_HTTP_CIBA_H_INCLUDED_ */
