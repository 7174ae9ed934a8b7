
/*
 * ngx_http_ciba_module fuzz targets: the shared harness.
 *
 * Just enough of nginx for the module's parsers and checkers to run
 * outside a server: a cycle, a log that formats every message (and
 * prints nothing unless NGX_CIBA_FUZZ_LOG is set), configurations built
 * by the module's own directive handlers and merge function, a shared
 * zone initialized by the module's own zone code (restored to a saved
 * state before every input, so runs are deterministic), fake requests
 * with a pool of their own, a fixed clock, and a signer for tokens with
 * the fixed test keys of tools/fuzz/keys.
 */


#ifndef _NGX_HTTP_CIBA_FUZZ_COMMON_H_INCLUDED_
#define _NGX_HTTP_CIBA_FUZZ_COMMON_H_INCLUDED_


#include "ngx_http_ciba.h"

#include <jansson.h>


/* the zone starts at 2026-01-01T00:00:00Z; the inputs are checked later */
#define NGX_HTTP_CIBA_FUZZ_EPOCH   1767225600
#define NGX_HTTP_CIBA_FUZZ_NOW     (NGX_HTTP_CIBA_FUZZ_EPOCH + 3600)

/* what the configurations expect of a token (tools/fuzz/make-corpus.pl) */
#define NGX_HTTP_CIBA_FUZZ_ISSUER  "https://as.example"
#define NGX_HTTP_CIBA_FUZZ_AUD     "https://gw.example"
#define NGX_HTTP_CIBA_FUZZ_CLIENT  "fuzz-client"
#define NGX_HTTP_CIBA_FUZZ_ACTION  "refund"
#define NGX_HTTP_CIBA_FUZZ_SUBJECT "alice"
#define NGX_HTTP_CIBA_FUZZ_DIGEST                                            \
    "fuzzDigestfuzzDigestfuzzDigestfuzzDigest123"


/* the configurations of the token targets */
#define NGX_HTTP_CIBA_FUZZ_CONF_ASYM  0   /* JWKS ec1, rsa1, ed1; RAR */
#define NGX_HTTP_CIBA_FUZZ_CONF_HMAC  1   /* oct hs1; typ, claim, subject */
#define NGX_HTTP_CIBA_FUZZ_CONF_PEM   2   /* PEM keys, one without kid */
#define NGX_HTTP_CIBA_FUZZ_CONF_FLOW  3   /* CIBA: endpoints, keys, push */
#define NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE 4  /* CIBA without keys */
#define NGX_HTTP_CIBA_FUZZ_NCONFS     5


extern ngx_log_t                   *ngx_http_ciba_fuzz_log;
extern ngx_http_ciba_main_conf_t   *ngx_http_ciba_fuzz_cmcf;
extern ngx_http_ciba_loc_conf_t    *ngx_http_ciba_fuzz_confs[];

/* the zone's directive; a target may set another before the init */
extern const char                  *ngx_http_ciba_fuzz_zone_directive;

/* messages at "alert" or worse since the request was made */
extern ngx_uint_t                   ngx_http_ciba_fuzz_alerts;


/* once, from LLVMFuzzerInitialize() */
void ngx_http_ciba_fuzz_init(void);

/* the clock */
void ngx_http_ciba_fuzz_set_time(time_t sec);

/* the zone: saved as it is now, and restored to that */
void ngx_http_ciba_fuzz_zone_save(void);
void ngx_http_ciba_fuzz_zone_restore(void);

/*
 * A location configuration from directives, e.g.
 * ngx_http_ciba_fuzz_conf("ciba on", "ciba_action refund", NULL): each
 * string a directive and its arguments separated by single spaces, set by
 * the module's handlers, then merged as nginx does.
 */
ngx_http_ciba_loc_conf_t *ngx_http_ciba_fuzz_conf(const char *directive,
    ...);

/*
 * One directive (args[0]) with its arguments, set by the module's handler
 * with allocations from the pool; the handler's answer (NGX_CONF_OK, ...).
 */
char *ngx_http_ciba_fuzz_directive(ngx_pool_t *pool,
    ngx_http_ciba_loc_conf_t *clcf, ngx_str_t *args, ngx_uint_t n);

/*
 * A request of its own pool; free it with ngx_http_ciba_fuzz_free(), which
 * fails when a message at "alert" or worse was logged meanwhile.
 */
ngx_http_request_t *ngx_http_ciba_fuzz_request(ngx_http_ciba_loc_conf_t *clcf);
ngx_http_ciba_ctx_t *ngx_http_ciba_fuzz_ctx(ngx_http_request_t *r);
void ngx_http_ciba_fuzz_free(ngx_http_request_t *r);

/*
 * A compact JWS of the header and payload texts, signed with the test
 * key its "alg" (and "kid") name, or, when there is none, with the HMAC
 * key; "corrupt" flips a bit of the signature.
 */
ngx_int_t ngx_http_ciba_fuzz_sign(ngx_pool_t *pool, u_char *header,
    size_t hlen, u_char *payload, size_t plen, ngx_uint_t corrupt,
    ngx_str_t *token);

/*
 * Verifies a compact JWS independently of libjwt, with the test key of
 * "alg": NGX_OK, the signature is good; NGX_DECLINED, it is not.
 */
ngx_int_t ngx_http_ciba_fuzz_verify(ngx_pool_t *pool, ngx_str_t *token,
    ngx_str_t *alg);

/*
 * 1 when the bytes are strict UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing over U+10FFFF), written independently of the
 * module's ngx_http_ciba_utf8_valid()
 */
int ngx_http_ciba_fuzz_utf8_strict(const u_char *p, size_t len);

/* a copy, NUL-terminated, in the pool */
u_char *ngx_http_ciba_fuzz_dup(ngx_pool_t *pool, const u_char *data,
    size_t len);

/* the last message logged at "error" level or more serious (or "") */
extern u_char  ngx_http_ciba_fuzz_last_error[];

/* the body the last request sent (the filters are the harness's) */
extern ngx_str_t  ngx_http_ciba_fuzz_sent;

/* abort with a message: a property the target checks does not hold */
#define ngx_http_ciba_fuzz_assert(cond, msg)                                 \
    if (!(cond)) {                                                           \
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, msg);                    \
    }

void ngx_http_ciba_fuzz_fail(const char *file, int line, const char *msg);

/*
 * aborts unless jansson's two values are the same JSON value, numbers
 * compared as doubles (1, 1.0 and 1e0 are one number)
 */
void ngx_http_ciba_fuzz_same_json(json_t *a, json_t *b);

/* with NGX_CIBA_FUZZ_LOG set: a line on stderr (what an input did) */
void ngx_http_ciba_fuzz_trace(const char *fmt, ...);


#endif /* _NGX_HTTP_CIBA_FUZZ_COMMON_H_INCLUDED_ */
