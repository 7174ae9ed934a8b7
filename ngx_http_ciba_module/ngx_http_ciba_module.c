
/*
 * ngx_http_ciba_module: the module, its directives, and the request flow.
 *
 * A protected location admits a request only with an approval token bound
 * to that exact request (the action digest), and only once.  The check
 * runs in the precontent phase, after every access check (so "satisfy any"
 * cannot skip it and an unauthenticated client cannot burn a token), and
 * before try_files and the content handler.
 *
 * The flow of a protected request (ngx_http_ciba_handler()):
 *
 *   check     ngx_http_ciba_request_check()   the request's form (path,
 *                                             arguments, bound headers)
 *   read      ngx_http_read_client_request_body(), when the body is covered
 *   decide    ngx_http_ciba_decide():
 *     digest    ngx_http_ciba_digest()        once per request
 *     token     ngx_http_ciba_token_check()   parse, verify, claims, binding
 *               ngx_http_ciba_store_consume() single use
 *     no token  ngx_http_ciba_ask() -> ngx_http_ciba_approval():
 *               the CIBA state machine (ngx_http_ciba_approval.c): a
 *               pending approval is REQUESTING (the backchannel request
 *               in flight), WAITING (the human is asked; polls paced),
 *               READY (pinged: poll at once), DENIED or EXPIRED; the AS's
 *               answers come back by subrequest (ngx_http_ciba_backchannel.c)
 *               and run the phases again; wait mode holds the request
 *               until a poll is due (ngx_http_ciba_wait_handler())
 *   finish    ngx_http_ciba_finish()          the decision logged
 *                                             (ngx_http_ciba_log.c), then
 *                                             passed on or answered
 *                                             (ngx_http_ciba_answer.c)
 */


#include "ngx_http_ciba.h"


static ngx_int_t ngx_http_ciba_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_subrequest(ngx_http_request_t *r);
static void ngx_http_ciba_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_decide(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_ask(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *handle);
static void ngx_http_ciba_wait_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_find_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_ciba_finish(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static void ngx_http_ciba_cleanup(void *data);

static void *ngx_http_ciba_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ciba_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ciba_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ciba_default_chars(ngx_conf_t *cf,
    ngx_http_ciba_loc_conf_t *cicf);
static char *ngx_http_ciba_audience(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ciba_leeway_post(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_ciba_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ciba_postconfiguration(ngx_conf_t *cf);
static void ngx_http_ciba_exit_process(ngx_cycle_t *cycle);
static void ngx_http_ciba_exit_master(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_ciba_leeway_p =
    ngx_http_ciba_leeway_post;


static ngx_conf_enum_t  ngx_http_ciba_deliveries[] = {
    { ngx_string("poll"), NGX_HTTP_CIBA_MODE_POLL },
    { ngx_string("ping"), NGX_HTTP_CIBA_MODE_PING },
    { ngx_string("push"), NGX_HTTP_CIBA_MODE_PUSH },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ciba_path_modes[] = {
    { ngx_string("canonical"), NGX_HTTP_CIBA_PATH_CANONICAL },
    { ngx_string("normalize"), NGX_HTTP_CIBA_PATH_NORMALIZE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ciba_duplicate_args[] = {
    { ngx_string("refuse"), NGX_HTTP_CIBA_ARGS_REFUSE },
    { ngx_string("keep"), NGX_HTTP_CIBA_ARGS_KEEP },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ciba_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ciba_commands[] = {

    { ngx_string("ciba_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ciba_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, enable),
      NULL },

    { ngx_string("ciba_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, action),
      NULL },

    { ngx_string("ciba_digest"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ciba_digest_covers,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_digest_extra"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ciba_digest_extra,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_digest_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ciba_digest_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, path_mode),
      &ngx_http_ciba_path_modes },

    { ngx_string("ciba_duplicate_args"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, duplicate_args),
      &ngx_http_ciba_duplicate_args },

    { ngx_string("ciba_body_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, body_limit),
      NULL },

    { ngx_string("ciba_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ciba_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, issuer),
      NULL },

    { ngx_string("ciba_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ciba_audience,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ciba_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, leeway),
      &ngx_http_ciba_leeway_p },

    { ngx_string("ciba_token_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, max_age),
      NULL },

    { ngx_string("ciba_token_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, typ),
      NULL },

    { ngx_string("ciba_authorization_details_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, rar_type),
      NULL },

    { ngx_string("ciba_binding_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, binding_claim),
      NULL },

    { ngx_string("ciba_token_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, token_header),
      NULL },

    { ngx_string("ciba_subject"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, subject),
      NULL },

    { ngx_string("ciba_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, log_level),
      &ngx_http_ciba_log_levels },

    { ngx_string("ciba_handle_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ciba_handle_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_backchannel_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, bc_uri),
      NULL },

    { ngx_string("ciba_token_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, token_uri),
      NULL },

    { ngx_string("ciba_client_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, client_id),
      NULL },

    { ngx_string("ciba_client_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, client_secret),
      NULL },

    { ngx_string("ciba_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, scope),
      NULL },

    { ngx_string("ciba_login_hint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, login_hint),
      NULL },

    { ngx_string("ciba_binding_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, binding_message),
      NULL },

    { ngx_string("ciba_binding_message_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, binding_max),
      NULL },

    { ngx_string("ciba_binding_message_chars"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ciba_binding_chars,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_requested_expiry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, requested_expiry),
      NULL },

    { ngx_string("ciba_acr_values"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, acr_values),
      NULL },

    { ngx_string("ciba_authorization_detail"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ciba_authorization_detail,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_handle_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, handle_header),
      NULL },

    { ngx_string("ciba_pending_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, pending_status),
      NULL },

    { ngx_string("ciba_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, max_pending),
      NULL },

    { ngx_string("ciba_delivery"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, delivery),
      &ngx_http_ciba_deliveries },

    { ngx_string("ciba_callback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ciba_callback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ciba_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ciba_loc_conf_t, wait),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ciba_module_ctx = {
    ngx_http_ciba_preconfiguration,        /* preconfiguration */
    ngx_http_ciba_postconfiguration,       /* postconfiguration */

    ngx_http_ciba_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ciba_create_loc_conf,         /* create location configuration */
    ngx_http_ciba_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_ciba_module = {
    NGX_MODULE_V1,
    &ngx_http_ciba_module_ctx,             /* module context */
    ngx_http_ciba_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ciba_exit_process,            /* exit process */
    ngx_http_ciba_exit_master,             /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ciba_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_pool_cleanup_t        *cln;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_loc_conf_t  *cicf;

    cicf = ngx_http_get_module_loc_conf(r, ngx_http_ciba_module);

    if (!cicf->enable) {
        return NGX_DECLINED;
    }

    if (r != r->main) {
        return ngx_http_ciba_subrequest(r);
    }

    if (cicf->callback) {
        /* the notification endpoint is authenticated by its own bearer */
        return NGX_DECLINED;
    }

    ctx = ngx_http_ciba_get_ctx(r);

    if (ctx == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ciba_ctx_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = cln->data;
        ngx_memzero(ctx, sizeof(ngx_http_ciba_ctx_t));

        cln->handler = ngx_http_ciba_cleanup;

        ngx_http_set_ctx(r, ctx, ngx_http_ciba_module);

        if (ngx_http_complex_value(r, cicf->action, &ctx->action) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: protected request, action \"%V\"",
                       &ctx->action);

        if (cicf->subject
            && ngx_http_complex_value(r, cicf->subject, &ctx->subject)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* before the body is read and anyone is asked */

        rc = ngx_http_ciba_request_check(r, cicf, ctx);

        if (rc == NGX_DECLINED) {
            ctx->outcome = NGX_HTTP_CIBA_BAD_REQUEST;
            return ngx_http_ciba_finish(r, cicf, ctx);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->decided) {
        /*
         * an internal redirect after the decision: the approval already
         * admitted this client request, a refusal was already answered
         */
        return ctx->rc;
    }

    if (ctx->reading_body) {
        return NGX_DONE;
    }

    if ((cicf->covers & NGX_HTTP_CIBA_COVER_BODY) && !ctx->body_read) {

        if (r->headers_in.content_length_n > (off_t) cicf->body_limit) {
            ctx->outcome = NGX_HTTP_CIBA_TOO_LARGE;
            ctx->reason = "body_too_large";
            return ngx_http_ciba_finish(r, cicf, ctx);
        }

        ctx->reading_body = 1;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: reading the body");

        rc = ngx_http_read_client_request_body(r, ngx_http_ciba_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    return ngx_http_ciba_decide(r, cicf, ctx);
}


/*
 * A subrequest into a protected location passes only when the main
 * request was approved (a mirror or an include of the approved action),
 * or when it is the module's own request to the authorization server
 * (an AS location that inherits "ciba on"); it never consumes a token of
 * its own.
 */

static ngx_int_t
ngx_http_ciba_subrequest(ngx_http_request_t *r)
{
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_http_ciba_get_ctx(r->main);

    if (ctx && ctx->decided && ctx->outcome == NGX_HTTP_CIBA_APPROVED) {
        return NGX_DECLINED;
    }

    if (ctx && ctx->as_sr == r) {
        /* the module's own request to the authorization server */
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ciba: subrequest \"%V\" into a protected location "
                  "without an approved main request is refused", &r->uri);

    return NGX_HTTP_FORBIDDEN;
}


static void
ngx_http_ciba_body_handler(ngx_http_request_t *r)
{
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ciba_module);

    ctx->reading_body = 0;
    ctx->body_read = 1;

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_ciba_decide(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx)
{
    off_t                       body_len;
    time_t                      expire;
    ngx_int_t                   rc;
    ngx_str_t                   token;
    ngx_http_ciba_token_t       tok;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    if (ctx->step != NGX_HTTP_CIBA_STEP_NONE) {
        /* woken up by the AS's answer */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: the AS answered step %ui", ctx->step);
        return ngx_http_ciba_ask(r, cicf, ctx, NULL);
    }

    if (ctx->action.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: the action evaluated to an empty string");
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "empty_action";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    /* once a request, also across the wake-ups of wait mode */

    rc = (ctx->digest.len == 0) ? ngx_http_ciba_digest(r, cicf, ctx,
                                                       &body_len)
                                : NGX_OK;

    if (rc == NGX_DECLINED) {
        ctx->outcome = NGX_HTTP_CIBA_TOO_LARGE;
        ctx->reason = "body_too_large";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    if (rc != NGX_OK) {
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "digest_failed";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    rc = ngx_http_ciba_find_header(r, &cicf->token_header, &token);

    if (rc == NGX_DECLINED) {

        if (cicf->bc_uri.len == 0) {
            ctx->outcome = NGX_HTTP_CIBA_REQUIRED;
            ctx->reason = "no_token";
            return ngx_http_ciba_finish(r, cicf, ctx);
        }

        rc = ngx_http_ciba_find_header(r, &cicf->handle_header, &token);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: no token, %s handle: CIBA",
                       (rc == NGX_OK) ? "a" : "no");

        if (rc == NGX_BUSY) {
            ctx->outcome = NGX_HTTP_CIBA_INVALID;
            ctx->reason = "several_handles";
            return ngx_http_ciba_finish(r, cicf, ctx);
        }

        return ngx_http_ciba_ask(r, cicf, ctx,
                                 (rc == NGX_OK) ? &token : NULL);
    }

    if (rc == NGX_BUSY) {
        ctx->outcome = NGX_HTTP_CIBA_INVALID;
        ctx->reason = "several_tokens";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    if (token.len > 7 && ngx_strncasecmp(token.data, (u_char *) "Bearer ", 7)
                         == 0)
    {
        token.data += 7;
        token.len -= 7;
    }

    if (cicf->keys == NULL) {
        /* no keys: only tokens the module fetched itself are taken */
        ctx->outcome = NGX_HTTP_CIBA_INVALID;
        ctx->reason = "tokens_not_accepted";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: an approval token: checking it");

    ngx_memzero(&tok, sizeof(ngx_http_ciba_token_t));

    rc = ngx_http_ciba_token_check(r, cicf, ctx, &token, &tok, 0);

    if (rc == NGX_DECLINED) {
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    if (rc != NGX_OK) {
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "internal_error";
        return ngx_http_ciba_finish(r, cicf, ctx);
    }

    /*
     * the record lives as long as the token could pass the checks:
     * until the earlier of exp and iat + max age, plus the leeway
     */

    expire = ngx_min(tok.exp, tok.iat + cicf->max_age) + cicf->leeway + 1;

    rc = ngx_http_ciba_store_consume(cimcf->shm_zone, tok.record, NULL, expire,
                                     &ctx->retry_after, r->connection->log);

    switch (rc) {

    case NGX_OK:
        ctx->outcome = NGX_HTTP_CIBA_APPROVED;
        ctx->reason = "token_valid";
        break;

    case NGX_BUSY:
        ctx->outcome = NGX_HTTP_CIBA_REPLAYED;
        ctx->reason = "jti_replayed";
        break;

    case NGX_HTTP_CIBA_ZONE_FULL:
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "zone_full";
        break;

    default:
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "internal_error";
        break;
    }

    return ngx_http_ciba_finish(r, cicf, ctx);
}


static ngx_int_t
ngx_http_ciba_finish(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx)
{
    ngx_int_t  rc;

    ctx->decided = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: decided: %V, %s",
                   &ngx_http_ciba_outcome_names[ctx->outcome],
                   ctx->reason ? ctx->reason : "-");

    ngx_http_ciba_log_decision(r, cicf, ctx);

    if (ctx->outcome == NGX_HTTP_CIBA_APPROVED) {
        ctx->rc = NGX_DECLINED;
        return NGX_DECLINED;
    }

    /* a refused request never reaches a later phase, even after a redirect */

    ctx->rc = NGX_HTTP_FORBIDDEN;

    rc = ngx_http_ciba_answer(r, ctx);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The CIBA flow: NGX_AGAIN while the AS is asked (the phases run again
 * when it answers), else the decision.
 */

static ngx_int_t
ngx_http_ciba_ask(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_str_t *handle)
{
    int64_t     now, due;
    ngx_int_t   rc;
    ngx_msec_t  delay;

    if (cicf->wait && ctx->wait_until == 0) {
        ctx->wait_until = ngx_http_ciba_now_ms() + 1000 * (int64_t) cicf->wait;
    }

    ctx->next_poll = 0;

    rc = ngx_http_ciba_approval(r, cicf, ctx, handle);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
        ctx->reason = "internal_error";
    }

    now = ngx_http_ciba_now_ms();

    if (rc == NGX_DECLINED && ctx->outcome == NGX_HTTP_CIBA_PENDING
        && now < ctx->wait_until)
    {
        /*
         * wait mode: hold the request and look again when the next poll
         * is due, as limit_req delays a request: a timer on the
         * connection's write event, and the read side watched, so that a
         * client that goes away ends the wait at once and frees
         * everything (ngx_http_test_reading)
         */

        due = ctx->next_poll ? ctx->next_poll
                             : now + 1000 * (int64_t) ctx->retry_after;

        /* at least every interval: a ping may make it ready any time */

        if (ctx->handle.interval) {
            due = ngx_min(due, now + 1000 * (int64_t) ctx->handle.interval);
        }

        /* and never past the end of the wait, nor before it */

        due = ngx_min(due, ctx->wait_until);
        delay = (ngx_msec_t) ngx_max(due - now, 1);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ciba: waiting %M ms", delay);

        ctx->step = NGX_HTTP_CIBA_STEP_NONE;
        ctx->as_done = 0;

        if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
            ctx->outcome = NGX_HTTP_CIBA_UNAVAILABLE;
            ctx->reason = "internal_error";
            return ngx_http_ciba_finish(r, cicf, ctx);
        }

        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_ciba_wait_handler;

        r->connection->write->delayed = 1;
        ngx_add_timer(r->connection->write, delay);

        return NGX_AGAIN;
    }

    return ngx_http_ciba_finish(r, cicf, ctx);
}


static void
ngx_http_ciba_wait_handler(ngx_http_request_t *r)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    if (wev->delayed) {

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: the wait is over, looking again");

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


/*
 * Finds a request header by name.  NGX_DECLINED: none; NGX_BUSY: more than
 * one (ambiguous, refused).
 */

static ngx_int_t
ngx_http_ciba_find_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t              *h;
    ngx_http_ciba_header_iter_t   it;

    it.part = NULL;

    h = ngx_http_ciba_next_header(r, name, &it);

    if (h == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_ciba_next_header(r, name, &it) != NULL) {
        return NGX_BUSY;
    }

    *value = h->value;

    return NGX_OK;
}


/*
 * The next field of the request header "name" (compared case-
 * insensitively), in the order of the request; the walk starts with
 * it->part set to NULL.  NULL: no more.
 */

ngx_table_elt_t *
ngx_http_ciba_next_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_http_ciba_header_iter_t *it)
{
    ngx_table_elt_t  *h;

    if (it->part == NULL) {
        it->part = &r->headers_in.headers.part;
        it->i = 0;
    }

    for ( ;; ) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        h = &((ngx_table_elt_t *) it->part->elts)[it->i++];

        if (h->key.len == name->len
            && ngx_strncasecmp(h->key.data, name->data, name->len) == 0)
        {
            return h;
        }
    }
}


/*
 * The context is kept in a pool cleanup as well, so that it survives
 * internal redirects, which zero the module contexts (as in the realip
 * module): an approval is decided, and a token consumed, once a request.
 */

ngx_http_ciba_ctx_t *
ngx_http_ciba_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_ciba_ctx_t  *ctx;

    /* the decision is the main request's; subrequests see it too */

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ciba_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_ciba_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_ciba_module);
            break;
        }
    }

    return ctx;
}


static void
ngx_http_ciba_cleanup(void *data)
{
    ngx_http_ciba_ctx_t  *ctx = data;

    /*
     * also a marker to find the context again; and a request that ends
     * while asking the AS (the client went away) gives up its placeholder,
     * so that the next request asks instead of waiting for it to expire
     */

    if (ctx->step == NGX_HTTP_CIBA_STEP_BC && ctx->zone) {
        ngx_http_ciba_pending_abandon(ctx->zone, ctx->pending_key);
    }
}


static void *
ngx_http_ciba_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ciba_main_conf_t));
    if (cimcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cimcf->shm_zone = NULL;
     *     cimcf->state_file = { 0, NULL };
     */

    return cimcf;
}


static void *
ngx_http_ciba_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ciba_loc_conf_t  *cicf;

    cicf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ciba_loc_conf_t));
    if (cicf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cicf->action = NULL;
     *     cicf->covers = 0;
     *     cicf->issuer = { 0, NULL };
     *     cicf->typ = { 0, NULL };
     *     cicf->rar_type = { 0, NULL };
     *     cicf->binding_claim = { 0, NULL };
     *     cicf->token_header = { 0, NULL };
     *     cicf->algorithms = 0;
     *     cicf->subject = NULL;
     */

    cicf->enable = NGX_CONF_UNSET;
    cicf->extras = NGX_CONF_UNSET_PTR;
    cicf->headers = NGX_CONF_UNSET_PTR;
    cicf->path_mode = NGX_CONF_UNSET_UINT;
    cicf->duplicate_args = NGX_CONF_UNSET_UINT;
    cicf->details = NGX_CONF_UNSET_PTR;
    cicf->body_limit = NGX_CONF_UNSET_SIZE;
    cicf->keys = NGX_CONF_UNSET_PTR;
    cicf->audiences = NGX_CONF_UNSET_PTR;
    cicf->leeway = NGX_CONF_UNSET;
    cicf->max_age = NGX_CONF_UNSET;
    cicf->log_level = NGX_CONF_UNSET_UINT;
    cicf->binding_max = NGX_CONF_UNSET_SIZE;
    cicf->requested_expiry = NGX_CONF_UNSET;
    cicf->pending_status = NGX_CONF_UNSET_UINT;
    cicf->max_pending = NGX_CONF_UNSET_UINT;
    cicf->delivery = NGX_CONF_UNSET_UINT;
    cicf->wait = NGX_CONF_UNSET;

    return cicf;
}


static char *
ngx_http_ciba_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ciba_loc_conf_t *prev = parent;
    ngx_http_ciba_loc_conf_t *conf = child;

    ngx_http_ciba_main_conf_t  *cimcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    if (conf->action == NULL) {
        conf->action = prev->action;
    }

    if (conf->covers == 0) {
        conf->covers = prev->covers ? prev->covers : NGX_HTTP_CIBA_COVER_ALL;
    }

    ngx_conf_merge_ptr_value(conf->extras, prev->extras, NULL);
    ngx_conf_merge_ptr_value(conf->headers, prev->headers, NULL);
    ngx_conf_merge_uint_value(conf->path_mode, prev->path_mode,
                              NGX_HTTP_CIBA_PATH_CANONICAL);
    ngx_conf_merge_uint_value(conf->duplicate_args, prev->duplicate_args,
                              NGX_HTTP_CIBA_ARGS_REFUSE);
    ngx_conf_merge_ptr_value(conf->details, prev->details, NULL);
    ngx_conf_merge_size_value(conf->body_limit, prev->body_limit,
                              1024 * 1024);

    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_ptr_value(conf->audiences, prev->audiences, NULL);

    if (conf->algorithms == 0) {
        conf->algorithms = prev->algorithms ? prev->algorithms
                                            : NGX_HTTP_CIBA_ALG_ASYMMETRIC;
    }

    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 10);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 300);
    ngx_conf_merge_str_value(conf->typ, prev->typ, "");
    ngx_conf_merge_str_value(conf->rar_type, prev->rar_type,
                             "nginx_ciba_action");
    ngx_conf_merge_str_value(conf->binding_claim, prev->binding_claim, "");
    ngx_conf_merge_str_value(conf->token_header, prev->token_header,
                             "Approval-Token");

    if (conf->subject == NULL) {
        conf->subject = prev->subject;
    }

    ngx_conf_merge_uint_value(conf->log_level, prev->log_level,
                              NGX_LOG_INFO);

    ngx_conf_merge_str_value(conf->bc_uri, prev->bc_uri, "");
    ngx_conf_merge_str_value(conf->token_uri, prev->token_uri, "");
    ngx_conf_merge_str_value(conf->scope, prev->scope, "openid");
    ngx_conf_merge_size_value(conf->binding_max, prev->binding_max, 20);
    ngx_conf_merge_sec_value(conf->requested_expiry, prev->requested_expiry,
                             300);
    ngx_conf_merge_str_value(conf->handle_header, prev->handle_header,
                             "Approval-Handle");
    ngx_conf_merge_uint_value(conf->pending_status, prev->pending_status,
                              NGX_HTTP_UNAUTHORIZED);
    ngx_conf_merge_uint_value(conf->max_pending, prev->max_pending, 5);
    ngx_conf_merge_uint_value(conf->delivery, prev->delivery,
                              NGX_HTTP_CIBA_MODE_POLL);
    ngx_conf_merge_sec_value(conf->wait, prev->wait, 0);

    if (conf->client_id == NULL) {
        conf->client_id = prev->client_id;
    }

    if (conf->client_secret == NULL) {
        conf->client_secret = prev->client_secret;
    }

    if (conf->login_hint == NULL) {
        conf->login_hint = prev->login_hint;
    }

    if (conf->binding_message == NULL) {
        conf->binding_message = prev->binding_message;
    }

    if (conf->acr_values == NULL) {
        conf->acr_values = prev->acr_values;
    }

    if (conf->binding_chars == NULL) {
        conf->binding_chars = prev->binding_chars;
    }

    if (conf->binding_chars == NULL) {
        /* what Keycloak, Auth0 and oidc-provider all accept */
        if (ngx_http_ciba_default_chars(cf, conf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /* a protected location must be complete: fail at configuration time */

    cimcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ciba_module);

    if (cimcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba\" is on but no \"ciba_zone\" is defined "
                           "in the http block");
        return NGX_CONF_ERROR;
    }

    if (conf->action == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba\" is on but \"ciba_action\" is not set");
        return NGX_CONF_ERROR;
    }

    if (conf->max_age <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_token_max_age\" must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->bc_uri.len) {
        if (ngx_http_ciba_check_flow(cf, conf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        if (conf->keys == NULL) {
            /* tokens only from the token endpoint, opaque or not */
            return NGX_CONF_OK;
        }
    }

    if (conf->issuer.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba\" is on but \"ciba_issuer\" is not set");
        return NGX_CONF_ERROR;
    }

    if (conf->audiences == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba\" is on but \"ciba_audience\" is not set");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ciba_keys_check(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ciba_default_chars(ngx_conf_t *cf, ngx_http_ciba_loc_conf_t *cicf)
{
    u_char      *p;
    static char  chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "abcdefghijklmnopqrstuvwxyz"
                           "0123456789-._+/!?#";

    cicf->binding_chars = ngx_pcalloc(cf->pool, 256);
    if (cicf->binding_chars == NULL) {
        return NGX_CONF_ERROR;
    }

    for (p = (u_char *) chars; *p; p++) {
        cicf->binding_chars[*p] = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ciba_audience(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    ngx_str_t   *value, *aud;
    ngx_uint_t   i;

    if (cicf->audiences != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    cicf->audiences = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                       sizeof(ngx_str_t));
    if (cicf->audiences == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0) {
            return "has an empty audience";
        }

        aud = ngx_array_push(cicf->audiences);
        if (aud == NULL) {
            return NGX_CONF_ERROR;
        }

        *aud = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ciba_leeway_post(ngx_conf_t *cf, void *post, void *data)
{
    time_t  *sp = data;

    if (*sp > NGX_HTTP_CIBA_LEEWAY_MAX) {
        return "must not exceed 300 seconds";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ciba_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ciba_add_variables(cf);
}


static ngx_int_t
ngx_http_ciba_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ciba_handler;

    return ngx_http_ciba_as_filter_init(cf);
}


static void
ngx_http_ciba_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ciba_hash_cleanup();
}


static void
ngx_http_ciba_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_ciba_store_save(cycle);
    ngx_http_ciba_hash_cleanup();
}
