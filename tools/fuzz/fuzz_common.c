
/*
 * ngx_http_ciba_module fuzz targets: the shared harness (fuzz_common.h).
 */


#include "fuzz_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <openssl/crypto.h>


#ifndef NGX_HTTP_CIBA_FUZZ_KEYS
#define NGX_HTTP_CIBA_FUZZ_KEYS  "tools/fuzz/keys"
#endif

#define NGX_HTTP_CIBA_FUZZ_ZONE_SIZE  (256 * 1024)
#define NGX_HTTP_CIBA_FUZZ_MODULES    2
#define NGX_HTTP_CIBA_FUZZ_ERROR_MAX  2048


ngx_log_t                   *ngx_http_ciba_fuzz_log;
ngx_http_ciba_main_conf_t   *ngx_http_ciba_fuzz_cmcf;
ngx_http_ciba_loc_conf_t    *ngx_http_ciba_fuzz_confs[
                                            NGX_HTTP_CIBA_FUZZ_NCONFS];
u_char                       ngx_http_ciba_fuzz_last_error[
                                            NGX_HTTP_CIBA_FUZZ_ERROR_MAX];
ngx_str_t                    ngx_http_ciba_fuzz_sent;
ngx_uint_t                   ngx_http_ciba_fuzz_alerts;
const char                  *ngx_http_ciba_fuzz_zone_directive =
                                 "ciba_zone fuzz:256k";


static void ngx_http_ciba_fuzz_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_http_ciba_fuzz_zone_init(void);
static ngx_int_t ngx_http_ciba_fuzz_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_fuzz_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static EVP_PKEY *ngx_http_ciba_fuzz_read_key(const char *name);
static ngx_int_t ngx_http_ciba_fuzz_sig(ngx_str_t *alg, ngx_str_t *kid,
    u_char *input, size_t len, u_char *sig, size_t *siglen);
static ngx_int_t ngx_http_ciba_fuzz_pick(ngx_str_t *alg, EVP_PKEY **pkey,
    const EVP_MD **digest, const char **hname);


static ngx_log_t                 ngx_http_ciba_fuzz_log_s;
static ngx_open_file_t           ngx_http_ciba_fuzz_log_file;
static ngx_cycle_t               ngx_http_ciba_fuzz_cycle;
static ngx_pool_t               *ngx_http_ciba_fuzz_pool;
static ngx_conf_t                ngx_http_ciba_fuzz_cf;
static ngx_http_conf_ctx_t       ngx_http_ciba_fuzz_http_ctx;
static ngx_http_core_main_conf_t ngx_http_ciba_fuzz_core_main;
static ngx_http_core_srv_conf_t  ngx_http_ciba_fuzz_core_srv;
static ngx_http_core_loc_conf_t  ngx_http_ciba_fuzz_core_loc;
static ngx_uint_t                ngx_http_ciba_fuzz_verbose;
static const char               *ngx_http_ciba_fuzz_keys;
static u_char                   *ngx_http_ciba_fuzz_zone_copy;

static EVP_PKEY                 *ngx_http_ciba_fuzz_ec;
static EVP_PKEY                 *ngx_http_ciba_fuzz_rsa;
static EVP_PKEY                 *ngx_http_ciba_fuzz_ed;

/* the bytes of tools/fuzz/keys/hmac.jwks ("k"): (i * 37 + 11) % 256 */
static u_char                    ngx_http_ciba_fuzz_hmac[64];


void
ngx_http_ciba_fuzz_init(void)
{
    char        *p;
    ngx_uint_t   i, n;

    /* NGX_CIBA_FUZZ_LOG: 1 for the log down to "info", "debug" for all */

    p = getenv("NGX_CIBA_FUZZ_LOG");
    ngx_http_ciba_fuzz_verbose = (p == NULL) ? 0
                                 : (ngx_strcmp(p, "debug") == 0) ? 2 : 1;
    ngx_http_ciba_fuzz_keys = getenv("NGX_CIBA_FUZZ_KEYS");

    if (ngx_http_ciba_fuzz_keys == NULL) {
        ngx_http_ciba_fuzz_keys = NGX_HTTP_CIBA_FUZZ_KEYS;
    }

    /* what nginx's main() and ngx_os_init() would set */

    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;
    for (n = ngx_pagesize; n >>= 1; ngx_pagesize_shift++) { /* void */ }
    ngx_ncpu = 1;
    ngx_use_stderr = 0;

    if (ngx_strerror_init() != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_strerror_init()");
    }

    ngx_time_init();
    ngx_slab_sizes_init();

    /* a log that formats everything, down to debug */

    ngx_http_ciba_fuzz_log_file.fd = ngx_stderr;
    ngx_http_ciba_fuzz_log_s.file = &ngx_http_ciba_fuzz_log_file;
    ngx_http_ciba_fuzz_log_s.log_level = NGX_LOG_DEBUG_ALL;
    ngx_http_ciba_fuzz_log_s.writer = ngx_http_ciba_fuzz_writer;
    ngx_http_ciba_fuzz_log = &ngx_http_ciba_fuzz_log_s;

    ngx_http_ciba_fuzz_pool = ngx_create_pool(16384, ngx_http_ciba_fuzz_log);
    if (ngx_http_ciba_fuzz_pool == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_create_pool()");
    }

    /* a cycle, for paths, the shared zones and the log */

    ngx_http_ciba_fuzz_cycle.pool = ngx_http_ciba_fuzz_pool;
    ngx_http_ciba_fuzz_cycle.log = ngx_http_ciba_fuzz_log;
    ngx_str_set(&ngx_http_ciba_fuzz_cycle.prefix, "/");
    ngx_str_set(&ngx_http_ciba_fuzz_cycle.conf_prefix, "/");

    if (ngx_list_init(&ngx_http_ciba_fuzz_cycle.shared_memory,
                      ngx_http_ciba_fuzz_pool, 1, sizeof(ngx_shm_zone_t))
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_list_init()");
    }

    ngx_cycle = &ngx_http_ciba_fuzz_cycle;

    /* what is sent goes nowhere, the body is kept for the checks */

    ngx_http_top_header_filter = ngx_http_ciba_fuzz_header_filter;
    ngx_http_top_body_filter = ngx_http_ciba_fuzz_body_filter;

    /* the http block: the core module and this one */

    ngx_http_core_module.ctx_index = 0;
    ngx_http_ciba_module.ctx_index = 1;
    ngx_http_max_module = NGX_HTTP_CIBA_FUZZ_MODULES;

    ngx_str_set(&ngx_http_ciba_fuzz_core_srv.server_name, "gw.example");

    ngx_http_ciba_fuzz_http_ctx.main_conf = ngx_pcalloc(
        ngx_http_ciba_fuzz_pool, NGX_HTTP_CIBA_FUZZ_MODULES * sizeof(void *));
    ngx_http_ciba_fuzz_http_ctx.srv_conf = ngx_pcalloc(
        ngx_http_ciba_fuzz_pool, NGX_HTTP_CIBA_FUZZ_MODULES * sizeof(void *));
    ngx_http_ciba_fuzz_http_ctx.loc_conf = ngx_pcalloc(
        ngx_http_ciba_fuzz_pool, NGX_HTTP_CIBA_FUZZ_MODULES * sizeof(void *));

    if (ngx_http_ciba_fuzz_http_ctx.main_conf == NULL
        || ngx_http_ciba_fuzz_http_ctx.srv_conf == NULL
        || ngx_http_ciba_fuzz_http_ctx.loc_conf == NULL)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    ngx_http_ciba_fuzz_http_ctx.main_conf[0] = &ngx_http_ciba_fuzz_core_main;
    ngx_http_ciba_fuzz_http_ctx.srv_conf[0] = &ngx_http_ciba_fuzz_core_srv;
    ngx_http_ciba_fuzz_http_ctx.loc_conf[0] = &ngx_http_ciba_fuzz_core_loc;

    ngx_http_ciba_fuzz_cf.cycle = &ngx_http_ciba_fuzz_cycle;
    ngx_http_ciba_fuzz_cf.pool = ngx_http_ciba_fuzz_pool;
    ngx_http_ciba_fuzz_cf.temp_pool = ngx_http_ciba_fuzz_pool;
    ngx_http_ciba_fuzz_cf.log = ngx_http_ciba_fuzz_log;
    ngx_http_ciba_fuzz_cf.ctx = &ngx_http_ciba_fuzz_http_ctx;
    ngx_http_ciba_fuzz_cf.module_type = NGX_HTTP_MODULE;
    ngx_http_ciba_fuzz_cf.cmd_type = NGX_HTTP_LOC_CONF;

    ngx_http_ciba_fuzz_cf.args = ngx_array_create(ngx_http_ciba_fuzz_pool, 8,
                                                  sizeof(ngx_str_t));
    if (ngx_http_ciba_fuzz_cf.args == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_array_create()");
    }

    ngx_http_ciba_fuzz_cmcf = ((ngx_http_module_t *) ngx_http_ciba_module.ctx)
                              ->create_main_conf(&ngx_http_ciba_fuzz_cf);
    if (ngx_http_ciba_fuzz_cmcf == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "create_main_conf()");
    }

    ngx_http_ciba_fuzz_http_ctx.main_conf[1] = ngx_http_ciba_fuzz_cmcf;

    /* the zone must be there before a protected location */

    ngx_http_ciba_fuzz_set_time(NGX_HTTP_CIBA_FUZZ_EPOCH);

    ngx_http_ciba_fuzz_conf(ngx_http_ciba_fuzz_zone_directive,
                            "ciba_handle_key keys/handle.key", NULL);
    ngx_http_ciba_fuzz_zone_init();

    /* the configurations */

    ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_ASYM] =
        ngx_http_ciba_fuzz_conf(
            "ciba on",
            "ciba_action " NGX_HTTP_CIBA_FUZZ_ACTION,
            "ciba_key_file keys/jwks.json",
            "ciba_issuer " NGX_HTTP_CIBA_FUZZ_ISSUER,
            "ciba_audience " NGX_HTTP_CIBA_FUZZ_AUD " https://other.example",
            NULL);

    ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_HMAC] =
        ngx_http_ciba_fuzz_conf(
            "ciba on",
            "ciba_action " NGX_HTTP_CIBA_FUZZ_ACTION,
            "ciba_key_file keys/hmac.jwks",
            "ciba_algorithms HS256 HS384 HS512",
            "ciba_issuer " NGX_HTTP_CIBA_FUZZ_ISSUER,
            "ciba_audience " NGX_HTTP_CIBA_FUZZ_AUD,
            "ciba_token_type approval+jwt",
            "ciba_binding_claim ciba_digest",
            "ciba_subject " NGX_HTTP_CIBA_FUZZ_SUBJECT,
            "ciba_leeway 0",
            NULL);

    ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_PEM] =
        ngx_http_ciba_fuzz_conf(
            "ciba on",
            "ciba_action " NGX_HTTP_CIBA_FUZZ_ACTION,
            "ciba_key_file keys/ec256.pub kid=pem-ec",
            "ciba_key_file keys/ec256.pub",
            "ciba_key_file keys/rsa.pub kid=pem-rsa",
            "ciba_key_file keys/ed.pub",
            "ciba_algorithms ES256 RS256 PS256 RS512 EdDSA",
            "ciba_issuer " NGX_HTTP_CIBA_FUZZ_ISSUER,
            "ciba_audience " NGX_HTTP_CIBA_FUZZ_AUD,
            "ciba_authorization_details_type x_fuzz_action",
            "ciba_token_max_age 60",
            "ciba_leeway 300",
            NULL);

    ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_FLOW] =
        ngx_http_ciba_fuzz_conf(
            "ciba on",
            "ciba_action " NGX_HTTP_CIBA_FUZZ_ACTION,
            "ciba_key_file keys/jwks.json",
            "ciba_key_file keys/hmac.jwks",
            "ciba_algorithms ES256 RS256 EdDSA HS256",
            "ciba_issuer " NGX_HTTP_CIBA_FUZZ_ISSUER,
            "ciba_audience " NGX_HTTP_CIBA_FUZZ_AUD,
            "ciba_backchannel_endpoint /as/bc",
            "ciba_token_endpoint /as/token",
            "ciba_client_id " NGX_HTTP_CIBA_FUZZ_CLIENT,
            "ciba_login_hint " NGX_HTTP_CIBA_FUZZ_SUBJECT,
            "ciba_delivery push",
            NULL);

    ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE] =
        ngx_http_ciba_fuzz_conf(
            "ciba on",
            "ciba_action " NGX_HTTP_CIBA_FUZZ_ACTION,
            "ciba_backchannel_endpoint /as/bc",
            "ciba_token_endpoint /as/token",
            "ciba_client_id " NGX_HTTP_CIBA_FUZZ_CLIENT,
            "ciba_login_hint " NGX_HTTP_CIBA_FUZZ_SUBJECT,
            "ciba_delivery ping",
            "ciba_binding_message_chars A-Za-z0-9_.",
            NULL);

    /* the signing keys */

    ngx_http_ciba_fuzz_ec = ngx_http_ciba_fuzz_read_key("ec256.key");
    ngx_http_ciba_fuzz_rsa = ngx_http_ciba_fuzz_read_key("rsa.key");
    ngx_http_ciba_fuzz_ed = ngx_http_ciba_fuzz_read_key("ed.key");

    for (i = 0; i < 64; i++) {
        ngx_http_ciba_fuzz_hmac[i] = (u_char) ((i * 37 + 11) % 256);
    }

    /* inputs are checked an hour after the zone started */

    ngx_http_ciba_fuzz_set_time(NGX_HTTP_CIBA_FUZZ_NOW);
    ngx_http_ciba_fuzz_zone_save();
}


void
ngx_http_ciba_fuzz_trace(const char *fmt, ...)
{
    va_list  ap;

    if (!ngx_http_ciba_fuzz_verbose) {
        return;
    }

    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}


void
ngx_http_ciba_fuzz_fail(const char *file, int line, const char *msg)
{
    fprintf(stderr, "fuzz harness: %s:%d: %s\n", file, line, msg);
    abort();
}


void
ngx_http_ciba_fuzz_same_json(json_t *a, json_t *b)
{
    size_t       k;
    json_t      *v;
    const char  *name;

    if (json_is_number(a)) {
        ngx_http_ciba_fuzz_assert(json_is_number(b)
                                  && json_number_value(a)
                                     == json_number_value(b),
                                  "a number changed");
        return;
    }

    ngx_http_ciba_fuzz_assert(json_typeof(a) == json_typeof(b),
                              "a type changed");

    switch (json_typeof(a)) {

    case JSON_OBJECT:
        ngx_http_ciba_fuzz_assert(json_object_size(a) == json_object_size(b),
                                  "members lost or added");

        json_object_foreach(a, name, v) {
            ngx_http_ciba_fuzz_assert(json_object_get(b, name) != NULL,
                                      "a member lost");
            ngx_http_ciba_fuzz_same_json(v, json_object_get(b, name));
        }

        return;

    case JSON_ARRAY:
        ngx_http_ciba_fuzz_assert(json_array_size(a) == json_array_size(b),
                                  "elements lost or added");

        for (k = 0; k < json_array_size(a); k++) {
            ngx_http_ciba_fuzz_same_json(json_array_get(a, k),
                                          json_array_get(b, k));
        }

        return;

    case JSON_STRING:
        ngx_http_ciba_fuzz_assert(json_string_length(a)
                                  == json_string_length(b)
                                  && memcmp(json_string_value(a),
                                            json_string_value(b),
                                            json_string_length(a)) == 0,
                                  "a string changed");
        return;

    default:
        return;
    }
}


static void
ngx_http_ciba_fuzz_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    size_t  n;

    if (level <= NGX_LOG_ALERT) {
        ngx_http_ciba_fuzz_alerts++;
    }

    if (level <= NGX_LOG_ERR) {
        n = ngx_min(len, NGX_HTTP_CIBA_FUZZ_ERROR_MAX - 1);
        ngx_memcpy(ngx_http_ciba_fuzz_last_error, buf, n);
        ngx_http_ciba_fuzz_last_error[n] = '\0';
    }

    if (ngx_http_ciba_fuzz_verbose > 1
        || (ngx_http_ciba_fuzz_verbose && level < NGX_LOG_DEBUG))
    {
        fprintf(stderr, "%.*s", (int) len, buf);
    }
}


static ngx_int_t
ngx_http_ciba_fuzz_header_filter(ngx_http_request_t *r)
{
    r->header_sent = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_fuzz_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    len = ngx_http_ciba_fuzz_sent.len;

    for (cl = in; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf)) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "a file sent");
        }

        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_fuzz_sent.len) {
        ngx_memcpy(p, ngx_http_ciba_fuzz_sent.data,
                   ngx_http_ciba_fuzz_sent.len);
    }

    ngx_http_ciba_fuzz_sent.data = p;
    p += ngx_http_ciba_fuzz_sent.len;

    for (cl = in; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';
    ngx_http_ciba_fuzz_sent.len = len;

    return NGX_OK;
}


void
ngx_http_ciba_fuzz_set_time(time_t sec)
{
    ngx_time_t  *tp;

    tp = (ngx_time_t *) ngx_cached_time;

    tp->sec = sec;
    tp->msec = 0;
    tp->gmtoff = 0;
}


/* what ngx_init_cycle() does for a new zone, then the module's init */

static void
ngx_http_ciba_fuzz_zone_init(void)
{
    ngx_shm_zone_t   *zone;
    ngx_slab_pool_t  *sp;

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone;

    if (zone == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "no zone");
    }

    zone->shm.log = ngx_http_ciba_fuzz_log;

    if (ngx_shm_alloc(&zone->shm) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_shm_alloc()");
    }

    sp = (ngx_slab_pool_t *) zone->shm.addr;

    sp->end = zone->shm.addr + zone->shm.size;
    sp->min_shift = 3;
    sp->addr = zone->shm.addr;

    if (ngx_shmtx_create(&sp->mutex, &sp->lock, NULL) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_shmtx_create()");
    }

    ngx_slab_init(sp);

    if (zone->init(zone, NULL) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "the zone's init");
    }

    ngx_http_ciba_fuzz_zone_copy = malloc(zone->shm.size);
    if (ngx_http_ciba_fuzz_zone_copy == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
    }
}


void
ngx_http_ciba_fuzz_zone_save(void)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone;

    ngx_memcpy(ngx_http_ciba_fuzz_zone_copy, zone->shm.addr, zone->shm.size);
}


void
ngx_http_ciba_fuzz_zone_restore(void)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone;

    ngx_memcpy(zone->shm.addr, ngx_http_ciba_fuzz_zone_copy, zone->shm.size);
}


ngx_http_ciba_loc_conf_t *
ngx_http_ciba_fuzz_conf(const char *directive, ...)
{
    char                      *rv;
    u_char                    *p, *last, *start, *text;
    size_t                     klen;
    va_list                    ap;
    ngx_str_t                 *arg;
    ngx_conf_t                *cf;
    ngx_http_module_t         *module;
    ngx_http_ciba_loc_conf_t  *clcf, *parent;

    cf = &ngx_http_ciba_fuzz_cf;
    module = ngx_http_ciba_module.ctx;

    clcf = module->create_loc_conf(cf);
    parent = module->create_loc_conf(cf);

    if (clcf == NULL || parent == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "create_loc_conf()");
    }

    ngx_http_ciba_fuzz_http_ctx.loc_conf[1] = clcf;

    klen = ngx_strlen(ngx_http_ciba_fuzz_keys);

    va_start(ap, directive);

    for ( /* void */ ; directive; directive = va_arg(ap, const char *)) {

        text = ngx_http_ciba_fuzz_dup(cf->pool, (u_char *) directive,
                                      ngx_strlen(directive));

        /* split at single spaces; "keys/" names a file of the test keys */

        cf->args->nelts = 0;
        p = text;
        last = text + ngx_strlen(text);

        while (p <= last) {
            start = p;

            while (p < last && *p != ' ') {
                p++;
            }

            arg = ngx_array_push(cf->args);
            if (arg == NULL) {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "push");
            }

            *p = '\0';

            if (p - start > 5 && ngx_strncmp(start, "keys/", 5) == 0) {
                arg->len = klen + (p - start) - 4;
                arg->data = ngx_pnalloc(cf->pool, arg->len + 1);
                if (arg->data == NULL) {
                    ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
                }

                ngx_sprintf(arg->data, "%s%s%Z", ngx_http_ciba_fuzz_keys,
                            start + 4);

            } else {
                arg->data = start;
                arg->len = p - start;
            }

            p++;
        }

        arg = cf->args->elts;

        rv = ngx_http_ciba_fuzz_directive(cf->pool, clcf, arg,
                                          cf->args->nelts);

        if (rv != NGX_CONF_OK) {
            fprintf(stderr, "fuzz harness: \"%s\": %s\n", directive,
                    rv == NGX_CONF_ERROR ? "error (see the log)" : rv);
            abort();
        }
    }

    va_end(ap);

    rv = module->merge_loc_conf(cf, parent, clcf);

    if (rv != NGX_CONF_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__,
                                "merging a configuration failed");
    }

    return clcf;
}


char *
ngx_http_ciba_fuzz_directive(ngx_pool_t *pool, ngx_http_ciba_loc_conf_t *clcf,
    ngx_str_t *args, ngx_uint_t n)
{
    char           *rv;
    ngx_str_t      *arg;
    ngx_uint_t      i;
    ngx_conf_t      cf;
    ngx_array_t     a;
    ngx_command_t  *cmd;

    for (cmd = ngx_http_ciba_module.commands; cmd->name.len; cmd++) {
        if (cmd->name.len == args[0].len
            && ngx_strncmp(cmd->name.data, args[0].data, args[0].len) == 0)
        {
            break;
        }
    }

    if (cmd->name.len == 0) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "unknown directive");
    }

    if (ngx_array_init(&a, pool, n, sizeof(ngx_str_t)) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_array_init()");
    }

    for (i = 0; i < n; i++) {
        arg = ngx_array_push(&a);
        if (arg == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_array_push()");
        }

        *arg = args[i];
    }

    cf = ngx_http_ciba_fuzz_cf;
    cf.pool = pool;
    cf.temp_pool = pool;
    cf.args = &a;
    cf.name = (char *) cmd->name.data;

    rv = cmd->set(&cf, cmd,
                  (cmd->conf == NGX_HTTP_MAIN_CONF_OFFSET)
                  ? (void *) ngx_http_ciba_fuzz_cmcf : (void *) clcf);

    return rv;
}


ngx_http_request_t *
ngx_http_ciba_fuzz_request(ngx_http_ciba_loc_conf_t *clcf)
{
    ngx_pool_t          *pool;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    ngx_http_ciba_fuzz_last_error[0] = '\0';
    ngx_http_ciba_fuzz_alerts = 0;
    ngx_str_null(&ngx_http_ciba_fuzz_sent);

    pool = ngx_create_pool(4096, ngx_http_ciba_fuzz_log);
    if (pool == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_create_pool()");
    }

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));

    if (r == NULL || c == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    c->log = ngx_http_ciba_fuzz_log;
    c->pool = pool;
    c->fd = (ngx_socket_t) -1;

    r->pool = pool;
    r->connection = c;
    r->main = r;
    r->count = 1;

    r->main_conf = ngx_http_ciba_fuzz_http_ctx.main_conf;
    r->srv_conf = ngx_http_ciba_fuzz_http_ctx.srv_conf;

    r->loc_conf = ngx_pcalloc(pool,
                              NGX_HTTP_CIBA_FUZZ_MODULES * sizeof(void *));
    r->ctx = ngx_pcalloc(pool, NGX_HTTP_CIBA_FUZZ_MODULES * sizeof(void *));

    if (r->loc_conf == NULL || r->ctx == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    r->loc_conf[0] = &ngx_http_ciba_fuzz_core_loc;
    r->loc_conf[1] = clcf;

    if (ngx_list_init(&r->headers_in.headers, pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.headers, pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_list_init()");
    }

    /* read already (nothing to discard) */
    r->request_body = ngx_pcalloc(pool, sizeof(ngx_http_request_body_t));
    if (r->request_body == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;

    ngx_str_set(&r->method_name, "POST");
    r->method = NGX_HTTP_POST;
    ngx_str_set(&r->uri, "/tools/refund");
    ngx_str_set(&r->headers_in.server, "gw.example");

    return r;
}


ngx_http_ciba_ctx_t *
ngx_http_ciba_fuzz_ctx(ngx_http_request_t *r)
{
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ciba_ctx_t));
    if (ctx == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    ngx_str_set(&ctx->action, NGX_HTTP_CIBA_FUZZ_ACTION);
    ngx_str_set(&ctx->digest, NGX_HTTP_CIBA_FUZZ_DIGEST);
    ngx_str_set(&ctx->subject, NGX_HTTP_CIBA_FUZZ_SUBJECT);

    ngx_http_set_ctx(r, ctx, ngx_http_ciba_module);

    return ctx;
}


void
ngx_http_ciba_fuzz_free(ngx_http_request_t *r)
{
    ngx_destroy_pool(r->pool);

    /* "alert" and worse: an internal failure, never the input's fault */

    if (ngx_http_ciba_fuzz_alerts) {
        fprintf(stderr, "fuzz harness: logged at \"alert\" or worse: %s\n",
                ngx_http_ciba_fuzz_last_error);
        abort();
    }
}


u_char *
ngx_http_ciba_fuzz_dup(ngx_pool_t *pool, const u_char *data, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pnalloc()");
    }

    ngx_memcpy(p, data, len);
    p[len] = '\0';

    return p;
}


static EVP_PKEY *
ngx_http_ciba_fuzz_read_key(const char *name)
{
    FILE      *f;
    char       path[1024];
    EVP_PKEY  *pkey;

    snprintf(path, sizeof(path), "%s/%s", ngx_http_ciba_fuzz_keys, name);

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "fuzz harness: cannot open %s\n", path);
        abort();
    }

    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (pkey == NULL) {
        fprintf(stderr, "fuzz harness: cannot read the key in %s\n", path);
        abort();
    }

    return pkey;
}


ngx_int_t
ngx_http_ciba_fuzz_sign(ngx_pool_t *pool, u_char *header, size_t hlen,
    u_char *payload, size_t plen, ngx_uint_t corrupt, ngx_str_t *token)
{
    u_char        sig[1024], *p;
    size_t        siglen;
    json_t       *hdr, *v;
    ngx_str_t     src, dst, alg, kid;
    json_error_t  err;

    token->data = ngx_pnalloc(pool, ngx_base64_encoded_length(hlen)
                                    + ngx_base64_encoded_length(plen)
                                    + ngx_base64_encoded_length(sizeof(sig))
                                    + 3);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    p = token->data;

    src.data = header;
    src.len = hlen;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;
    *p++ = '.';

    src.data = payload;
    src.len = plen;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    /* the key the header names */

    ngx_str_null(&alg);
    ngx_str_null(&kid);

    hdr = json_loadb((char *) header, hlen, 0, &err);

    if (json_is_object(hdr)) {
        v = json_object_get(hdr, "alg");
        if (json_is_string(v)) {
            alg.data = (u_char *) json_string_value(v);
            alg.len = json_string_length(v);
        }

        v = json_object_get(hdr, "kid");
        if (json_is_string(v)) {
            kid.data = (u_char *) json_string_value(v);
            kid.len = json_string_length(v);
        }
    }

    siglen = sizeof(sig);

    if (ngx_http_ciba_fuzz_sig(&alg, &kid, token->data, p - token->data,
                               sig, &siglen)
        != NGX_OK)
    {
        json_decref(hdr);
        return NGX_ERROR;
    }

    json_decref(hdr);

    if (corrupt && siglen) {
        sig[siglen / 2] ^= 0x01;
    }

    *p++ = '.';

    src.data = sig;
    src.len = siglen;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    token->len = p - token->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_fuzz_sig(ngx_str_t *alg, ngx_str_t *kid, u_char *input,
    size_t len, u_char *sig, size_t *siglen)
{
    int            rc;
    size_t         dlen;
    u_char         der[512];
    const char    *hname;
    EVP_PKEY      *pkey;
    ECDSA_SIG     *es;
    EVP_MD_CTX    *md;
    const BIGNUM  *r, *s;
    const u_char  *dp;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *digest;

    if (ngx_http_ciba_fuzz_pick(alg, &pkey, &digest, &hname) != NGX_OK) {
        return NGX_ERROR;
    }

    (void) kid;

    if (pkey == NULL) {
        /* HS256, HS384, HS512, and any other name: the HMAC key */
        if (EVP_Q_mac(NULL, "HMAC", NULL, hname, NULL,
                      ngx_http_ciba_fuzz_hmac, 64, input, len, sig, *siglen,
                      siglen)
            == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;
    pctx = NULL;
    dlen = sizeof(der);

    if (EVP_DigestSignInit(md, &pctx, digest, NULL, pkey) != 1) {
        goto done;
    }

    if (alg->len == 5 && ngx_strncmp(alg->data, "PS256", 5) == 0
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1))
    {
        goto done;
    }

    if (EVP_DigestSign(md, der, &dlen, input, len) != 1) {
        goto done;
    }

    if (pkey != ngx_http_ciba_fuzz_ec) {
        ngx_memcpy(sig, der, dlen);
        *siglen = dlen;
        rc = NGX_OK;
        goto done;
    }

    /* JWS ES256: R || S, 32 bytes each, not DER */

    dp = der;
    es = d2i_ECDSA_SIG(NULL, &dp, (long) dlen);
    if (es == NULL) {
        goto done;
    }

    ECDSA_SIG_get0(es, &r, &s);

    if (BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32)
    {
        *siglen = 64;
        rc = NGX_OK;
    }

    ECDSA_SIG_free(es);

done:

    EVP_MD_CTX_free(md);

    return rc;
}


/* the test key and hash of an algorithm; none: the HMAC key */

static ngx_int_t
ngx_http_ciba_fuzz_pick(ngx_str_t *alg, EVP_PKEY **pkey,
    const EVP_MD **digest, const char **hname)
{
#define ngx_http_ciba_fuzz_alg_is(name)                                      \
    (alg->len == sizeof(name) - 1                                            \
     && ngx_strncmp(alg->data, name, sizeof(name) - 1) == 0)

    *digest = EVP_sha256();
    *hname = "SHA256";
    *pkey = NULL;

    if (ngx_http_ciba_fuzz_alg_is("HS384")) {
        *hname = "SHA384";

    } else if (ngx_http_ciba_fuzz_alg_is("HS512")) {
        *hname = "SHA512";

    } else if (ngx_http_ciba_fuzz_alg_is("ES256")) {
        *pkey = ngx_http_ciba_fuzz_ec;

    } else if (ngx_http_ciba_fuzz_alg_is("RS256")
               || ngx_http_ciba_fuzz_alg_is("PS256"))
    {
        *pkey = ngx_http_ciba_fuzz_rsa;

    } else if (ngx_http_ciba_fuzz_alg_is("RS512")) {
        *pkey = ngx_http_ciba_fuzz_rsa;
        *digest = EVP_sha512();

    } else if (ngx_http_ciba_fuzz_alg_is("EdDSA")) {
        *pkey = ngx_http_ciba_fuzz_ed;
        *digest = NULL;
    }

    return NGX_OK;

#undef ngx_http_ciba_fuzz_alg_is
}


ngx_int_t
ngx_http_ciba_fuzz_verify(ngx_pool_t *pool, ngx_str_t *token, ngx_str_t *alg)
{
    int            rc;
    u_char        *dot, mac[EVP_MAX_MD_SIZE], der[256];
    size_t         len, maclen;
    BIGNUM        *r, *s;
    EVP_PKEY      *pkey;
    ECDSA_SIG     *es;
    ngx_str_t      src, sig;
    EVP_MD_CTX    *md;
    const char    *hname;
    u_char        *dp;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *digest;

    dot = NULL;

    for (len = token->len; len; len--) {
        if (token->data[len - 1] == '.') {
            dot = token->data + len - 1;
            break;
        }
    }

    if (dot == NULL) {
        return NGX_DECLINED;
    }

    src.data = dot + 1;
    src.len = token->data + token->len - src.data;

    sig.data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len) + 1);
    if (sig.data == NULL
        || ngx_decode_base64url(&sig, &src) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    len = dot - token->data;

    if (ngx_http_ciba_fuzz_pick(alg, &pkey, &digest, &hname) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (pkey == NULL) {
        maclen = sizeof(mac);

        if (EVP_Q_mac(NULL, "HMAC", NULL, hname, NULL,
                      ngx_http_ciba_fuzz_hmac, 64, token->data, len, mac,
                      maclen, &maclen)
            == NULL)
        {
            return NGX_ERROR;
        }

        return (maclen == sig.len && CRYPTO_memcmp(mac, sig.data, maclen) == 0)
               ? NGX_OK : NGX_DECLINED;
    }

    if (pkey == ngx_http_ciba_fuzz_ec) {

        /* R || S to DER */

        if (sig.len != 64) {
            return NGX_DECLINED;
        }

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig.data, 32, NULL);
        s = BN_bin2bn(sig.data + 32, 32, NULL);

        if (es == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ECDSA_SIG");
        }

        dp = der;
        rc = i2d_ECDSA_SIG(es, &dp);
        ECDSA_SIG_free(es);

        if (rc <= 0) {
            return NGX_ERROR;
        }

        sig.data = der;
        sig.len = rc;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    pctx = NULL;
    rc = NGX_DECLINED;

    if (EVP_DigestVerifyInit(md, &pctx, digest, NULL, pkey) == 1
        && (!(alg->len == 5 && ngx_strncmp(alg->data, "PS256", 5) == 0)
            || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                == 1
                && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                   == 1))
        && EVP_DigestVerify(md, sig.data, sig.len, token->data, len) == 1)
    {
        rc = NGX_OK;
    }

    EVP_MD_CTX_free(md);

    return rc;
}


/* strict UTF-8 (RFC 3629), written from the table of its section 4 */

int
ngx_http_ciba_fuzz_utf8_strict(const u_char *p, size_t len)
{
    size_t  i;
    u_char  c, lo, hi;
    int     n, k;

    i = 0;

    while (i < len) {
        c = p[i];

        lo = 0x80;
        hi = 0xbf;

        if (c <= 0x7f) {
            i++;
            continue;

        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c == 0xe0) {
            n = 2;
            lo = 0xa0;

        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            n = 2;

        } else if (c == 0xed) {
            n = 2;
            hi = 0x9f;              /* no surrogates */

        } else if (c == 0xf0) {
            n = 3;
            lo = 0x90;

        } else if (c >= 0xf1 && c <= 0xf3) {
            n = 3;

        } else if (c == 0xf4) {
            n = 3;
            hi = 0x8f;              /* nothing over U+10FFFF */

        } else {
            return 0;
        }

        if (len - i - 1 < (size_t) n) {
            return 0;
        }

        /* the second byte has the narrowed range, the others 80-BF */

        if (p[i + 1] < lo || p[i + 1] > hi) {
            return 0;
        }

        for (k = 2; k <= n; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xbf) {
                return 0;
            }
        }

        i += n + 1;
    }

    return 1;
}
