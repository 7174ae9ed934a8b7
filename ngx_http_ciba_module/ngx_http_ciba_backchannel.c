
/*
 * ngx_http_ciba_module: talking to the authorization server.
 *
 * The backchannel authentication request and the token request are POST
 * subrequests to internal locations named by "ciba_backchannel_endpoint"
 * and "ciba_token_endpoint"; those locations proxy to the AS and carry the
 * client authentication, TLS verification and timeouts with ordinary
 * nginx directives.  The subrequest starts with nothing of the client's
 * request: no header, no cached variable.  Its answer is taken in by the
 * module's own body filter, bounded by that location's
 * subrequest_output_buffer_size: an answer over it is drained and
 * reported, never passed to the client and never a reason to drop the
 * client's connection.  Nothing here blocks: the request waits for the
 * subrequest and is woken up when it completes.
 */


#include "ngx_http_ciba.h"

#include <openssl/rand.h>


static ngx_int_t ngx_http_ciba_as_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static void ngx_http_ciba_as_watch_client(ngx_http_request_t *r);
static void ngx_http_ciba_keep_tokens(ngx_http_request_t *sr,
    ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_form_add(ngx_pool_t *pool, ngx_array_t *form,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_ciba_form_add_cv(ngx_http_request_t *r,
    ngx_array_t *form, const char *name, ngx_http_complex_value_t *cv);
static ngx_int_t ngx_http_ciba_form_join(ngx_pool_t *pool, ngx_array_t *form,
    ngx_str_t *body);
static ngx_int_t ngx_http_ciba_as_headers(ngx_http_request_t *r,
    ngx_http_request_t *sr, size_t len);
static ngx_int_t ngx_http_ciba_as_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ciba_authz_details(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *out);
static json_t *ngx_http_ciba_authz_args(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx, ngx_uint_t *truncated);
static json_t *ngx_http_ciba_json_arg(ngx_pool_t *pool, ngx_str_t *raw);


static ngx_http_output_body_filter_pt  ngx_http_next_body_filter;


/* the most arguments, and bytes of them, shown in authorization_details */
#define NGX_HTTP_CIBA_ARGS_SHOWN      32
#define NGX_HTTP_CIBA_ARGS_SHOWN_LEN  2048


/*
 * Sends the backchannel authentication request (step BC) or the token
 * request (step TOKEN) and returns NGX_AGAIN: the request runs its phases
 * again when the answer is in ctx->as_status and ctx->as_body.
 */

ngx_int_t
ngx_http_ciba_as_request(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_uint_t step)
{
    u_char                        random[32];
    ngx_int_t                     rc;
    ngx_str_t                     body, value, src, *uri;
    ngx_buf_t                    *b;
    ngx_array_t                   form;
    ngx_chain_t                  *cl;
    ngx_http_request_t           *sr;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    if (ngx_array_init(&form, r->pool, 12, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    if (step == NGX_HTTP_CIBA_STEP_BC) {
        uri = &cicf->bc_uri;

        if (ngx_http_ciba_form_add(r->pool, &form, "scope", &cicf->scope)
               != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form, "login_hint",
                                      &ctx->login_hint)
               != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form, "binding_message",
                                      &ctx->binding_message)
               != NGX_OK
            || ngx_http_ciba_form_add_cv(r, &form, "acr_values",
                                         cicf->acr_values)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        value.len = ngx_sprintf(value.data, "%T", cicf->requested_expiry)
                    - value.data;

        if (ngx_http_ciba_form_add(r->pool, &form, "requested_expiry",
                                   &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        rc = ngx_http_ciba_authz_details(r, cicf, ctx, &value);

        if (rc == NGX_DECLINED) {
            ctx->outcome = NGX_HTTP_CIBA_BAD_REQUEST;
            ctx->reason = "not_utf8";
            return NGX_DECLINED;
        }

        if (rc != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form,
                                      "authorization_details", &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cicf->delivery != NGX_HTTP_CIBA_MODE_POLL) {

            /* 256 random bits authenticate the AS's ping or push */

            if (RAND_bytes(random, 32) != 1) {
                return NGX_ERROR;
            }

            src.data = random;
            src.len = 32;

            ctx->notification_token.data = ngx_pnalloc(r->pool, 44);
            if (ctx->notification_token.data == NULL) {
                return NGX_ERROR;
            }

            ngx_encode_base64url(&ctx->notification_token, &src);

            if (ngx_http_ciba_form_add(r->pool, &form,
                                       "client_notification_token",
                                       &ctx->notification_token)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    } else {
        uri = &cicf->token_uri;

        ngx_str_set(&value, "urn:openid:params:grant-type:ciba");

        if (ngx_http_ciba_form_add(r->pool, &form, "grant_type", &value)
            != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form, "auth_req_id",
                                      &ctx->handle.auth_req_id)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* client_secret_post, when configured */

    if (ngx_http_ciba_form_add_cv(r, &form, "client_id", cicf->client_id)
        != NGX_OK
        || ngx_http_ciba_form_add_cv(r, &form, "client_secret",
                                     cicf->client_secret)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_form_join(r->pool, &form, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ciba_as_done;
    ps->data = ctx;

    /*
     * not NGX_HTTP_SUBREQUEST_IN_MEMORY: the answer is taken in by
     * ngx_http_ciba_as_body_filter(), which bounds it without failing.
     *
     * The token request runs in the background: the AS redeems the
     * auth_req_id when it answers, so the answer must be taken in even
     * when the client goes away meanwhile (its connection's events reach
     * the main request, which only notes it, not the subrequest's
     * upstream, which would drop the answer); ngx_http_ciba_as_done()
     * then keeps the tokens for the handle's next retry.
     */

    if (ngx_http_subrequest(r, uri, NULL, &sr, ps,
                            (step == NGX_HTTP_CIBA_STEP_TOKEN)
                            ? NGX_HTTP_SUBREQUEST_BACKGROUND
                            : NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: %s request sent to \"%V\"",
                   (step == NGX_HTTP_CIBA_STEP_TOKEN) ? "token"
                                                      : "backchannel",
                   uri);

    if (step == NGX_HTTP_CIBA_STEP_TOKEN) {
        r->read_event_handler = ngx_http_ciba_as_watch_client;
    }

    ngx_str_set(&sr->method_name, "POST");
    sr->method = NGX_HTTP_POST;

    if (ngx_http_ciba_as_headers(r, sr, body.len) != NGX_OK) {
        return NGX_ERROR;
    }

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb->bufs = cl;
    rb->buf = b;

    sr->request_body = rb;

    ctx->as_sr = sr;
    ctx->as_buf = NULL;
    ctx->as_size = 0;
    ctx->as_too_big = 0;
    ctx->as_posted = 0;

    ctx->step = step;
    ctx->as_done = 0;
    ctx->as_status = 0;
    ngx_str_null(&ctx->as_body);

    return NGX_AGAIN;
}


/*
 * The subrequest starts with nothing of the client's: an empty header
 * list but for the form's Content-Type, no cached header fields (Host,
 * User-Agent, cookies, X-Forwarded-For, credentials) and variables of its
 * own, so that no proxy_set_header in the AS location can pass what the
 * agent sent.
 */

static ngx_int_t
ngx_http_ciba_as_headers(ngx_http_request_t *r, ngx_http_request_t *sr,
    size_t len)
{
    ngx_table_elt_t            *h;
    ngx_http_core_main_conf_t  *cmcf;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#if (nginx_version < 1023000)

    if (ngx_array_init(&sr->headers_in.cookies, r->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#if (NGX_HTTP_X_FORWARDED_FOR)
    if (ngx_array_init(&sr->headers_in.x_forwarded_for, r->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }
#endif

#endif

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "Content-Type");
    ngx_str_set(&h->value, "application/x-www-form-urlencoded");
    h->lowcase_key = (u_char *) "content-type";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    sr->headers_in.content_type = h;
    sr->headers_in.content_length_n = len;
    sr->headers_in.keep_alive_n = -1;

    /* the main request's variables hold values of the client's headers */

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    sr->variables = ngx_pcalloc(r->pool, cmcf->variables.nelts
                                         * sizeof(ngx_http_variable_value_t));
    if (sr->variables == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_as_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_ciba_ctx_t  *ctx = data;

    /*
     * called again when nginx finalizes the subrequest with its own error
     * page (no answer from the AS): ctx->as_sr stays set, so that the
     * filter keeps that page from the client too
     */

    ctx->as_status = sr->headers_out.status;

    if (rc == NGX_ERROR && !sr->connection->error) {
        /*
         * the subrequest failed before an answer (the client is still
         * there): the module answers, so the main request must not be
         * terminated
         */
        ctx->as_status = 0;
        rc = NGX_OK;

    } else if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->as_status = (ngx_uint_t) rc;
    }

    if (ctx->as_too_big) {
        ctx->as_body.len = 0;

        if (ctx->as_done) {
            return rc;
        }

        ctx->as_done = 1;

        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "ciba: the authorization server's answer to \"%V\" "
                      "(status %ui) is %O bytes, over the "
                      "subrequest_output_buffer_size of that location%s",
                      &sr->uri, ctx->as_status, ctx->as_size,
                      (ctx->step == NGX_HTTP_CIBA_STEP_TOKEN)
                      ? "; the approval may have been redeemed at the "
                        "authorization server for nothing" : "");

    } else if (ctx->as_status && ctx->as_buf) {
        ctx->as_body.data = ctx->as_buf->pos;
        ctx->as_body.len = ctx->as_buf->last - ctx->as_buf->pos;
    }

    ctx->as_done = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "ciba: AS answered %ui, rc %i, %O bytes",
                   ctx->as_status, rc, ctx->as_size);

    if (!sr->background || ctx->as_posted) {
        return rc;
    }

    ctx->as_posted = 1;

    if (sr->connection->error) {
        /* the client went away: the answer is kept, the request ends */
        ngx_http_ciba_keep_tokens(sr, ctx);
        return NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    /* a background subrequest does not wake its parent by itself */

    if (ngx_http_post_request(sr->main, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    return rc;
}


/*
 * The main request's read handler while its token request is in flight:
 * notes that the client went away (as ngx_http_test_reading() would),
 * without ending the request, so that the answer is still taken in.
 */

static void
ngx_http_ciba_as_watch_client(ngx_http_request_t *r)
{
    int                n;
    char               buf[1];
    ngx_err_t          err;
    ngx_event_t       *rev;
    ngx_connection_t  *c;

    c = r->connection;
    rev = c->read;

    if (c->error) {
        return;
    }

#if (NGX_HTTP_V2)

    if (r->stream) {
        /* a reset stream or a closed connection sets c->error */
        return;
    }

#endif

    n = recv(c->fd, buf, 1, MSG_PEEK);

    if (n > 0) {
        /* more than the request: not ours to read now */
        return;
    }

    err = ngx_socket_errno;

    if (n == -1 && err == NGX_EAGAIN) {
        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            c->error = 1;
        }

        return;
    }

    rev->eof = 1;
    c->error = 1;

    ngx_log_error(NGX_LOG_INFO, c->log, n == 0 ? 0 : err,
                  "ciba: the client closed the connection while the "
                  "token request was in flight");

    if ((ngx_event_flags & NGX_USE_LEVEL_EVENT) && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            return;
        }
    }
}


/*
 * The client went away while the token request was in flight: the AS has
 * redeemed the auth_req_id, so its tokens are kept for this approval
 * (taken by the next retry with the handle, which validates and consumes
 * them as usual); a denial or an expiry is remembered as it would have
 * been.
 */

static void
ngx_http_ciba_keep_tokens(ngx_http_request_t *sr, ngx_http_ciba_ctx_t *ctx)
{
    json_t                     *json, *v;
    ngx_str_t                   token;
    ngx_uint_t                  slow_down;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(sr, ngx_http_ciba_module);

    json = ngx_http_ciba_as_json(sr, ctx);

    v = json ? json_object_get(json, "error") : NULL;

    if (ctx->as_status == NGX_HTTP_BAD_REQUEST && json_is_string(v)) {

        if (ngx_strcmp(json_string_value(v), "access_denied") == 0) {
            ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                         NGX_HTTP_CIBA_PENDING_DENIED, 0);
            return;
        }

        if (ngx_strcmp(json_string_value(v), "expired_token") == 0) {
            ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                         NGX_HTTP_CIBA_PENDING_EXPIRED, 0);
            return;
        }
    }

    slow_down = (ctx->as_status == NGX_HTTP_BAD_REQUEST && json_is_string(v)
                 && ngx_strcmp(json_string_value(v), "slow_down") == 0);

    v = json ? json_object_get(json, "access_token") : NULL;

    if (ctx->as_status != NGX_HTTP_OK || !json_is_string(v)) {
        /* not yet, slow_down or a failure: the next poll an interval on */
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_WAITING,
                                     slow_down ? ctx->handle.interval + 5
                                               : 0);
        return;
    }

    token.data = (u_char *) json_string_value(v);
    token.len = json_string_length(v);

    if (ngx_http_ciba_pushed_put(cimcf->shm_zone, &ctx->handle.auth_req_id,
                                 &token, ctx->handle.expire,
                                 sr->connection->log)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "ciba: the tokens of an approval whose client went "
                      "away could not be kept; the approval is lost");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                  "ciba: the client went away during the token request; "
                  "the tokens are kept for the approval's next retry "
                  "(request_ref=%V)", &ctx->request_ref);
}


/*
 * Takes in the answer of the module's own AS subrequest: kept in one
 * buffer of the AS location's subrequest_output_buffer_size, the rest
 * counted and dropped; nothing goes further down the filter chain, so
 * nothing of it reaches the client.
 */

static ngx_int_t
ngx_http_ciba_as_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                      size;
    ssize_t                    n;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    if (r == r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_ciba_get_ctx(r->main);

    if (ctx == NULL || ctx->as_sr != r) {
        return ngx_http_next_body_filter(r, in);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        size = ngx_buf_size(b);
        ctx->as_size += size;

        if (size && !ctx->as_too_big) {

            if (ctx->as_size > (off_t) clcf->subrequest_output_buffer_size) {
                ctx->as_too_big = 1;

            } else {
                if (ctx->as_buf == NULL) {
                    ctx->as_buf = ngx_create_temp_buf(r->main->pool,
                                      clcf->subrequest_output_buffer_size);
                    if (ctx->as_buf == NULL) {
                        return NGX_ERROR;
                    }
                }

                if (ngx_buf_in_memory(b)) {
                    ctx->as_buf->last = ngx_cpymem(ctx->as_buf->last,
                                                   b->pos, size);

                } else {
                    /* proxy buffers written to a temporary file */

                    n = ngx_read_file(b->file, ctx->as_buf->last,
                                      (size_t) size, b->file_pos);

                    if (n != (ssize_t) size) {
                        return NGX_ERROR;
                    }

                    ctx->as_buf->last += n;
                }
            }
        }

        if (ngx_buf_in_memory(b)) {
            b->pos = b->last;
        }

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ciba_as_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ciba_as_body_filter;

    return NGX_OK;
}


/*
 * The AS's answer as a JSON object (freed with the request), or NULL when
 * it is not one.
 */

json_t *
ngx_http_ciba_as_json(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx)
{
    json_t              *json;
    json_error_t         err;
    ngx_pool_cleanup_t  *cln;

    if (ctx->as_body.len == 0) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    json = json_loadb((char *) ctx->as_body.data, ctx->as_body.len,
                      JSON_REJECT_DUPLICATES, &err);

    if (json == NULL) {
        return NULL;
    }

    cln->handler = (ngx_pool_cleanup_pt) json_decref;
    cln->data = json;

    if (!json_is_object(json)) {
        return NULL;
    }

    return json;
}


/*
 * The binding message the human reads: rendered from its template, each
 * byte outside the allowed set replaced by "_" (never sent raw), cut to
 * the configured length.
 */

ngx_int_t
ngx_http_ciba_render_binding(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    size_t     i;
    ngx_str_t  text;

    if (cicf->binding_message) {
        if (ngx_http_complex_value(r, cicf->binding_message, &text)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        text = ctx->action;
    }

    if (text.len > cicf->binding_max) {
        text.len = cicf->binding_max;

        /* never half a UTF-8 character */

        while (text.len && (text.data[text.len] & 0xc0) == 0x80) {
            text.len--;
        }
    }

    ctx->binding_message.data = ngx_pnalloc(r->pool, text.len);
    if (ctx->binding_message.data == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < text.len; i++) {
        ctx->binding_message.data[i] = cicf->binding_chars[text.data[i]]
                                       ? text.data[i] : '_';
    }

    ctx->binding_message.len = text.len;

    return NGX_OK;
}


/*
 * ciba_binding_message_chars "A-Za-z0-9\\-._+/!?#": single bytes and
 * ranges "x-y"; "\\" makes the next byte literal ("\\-" a hyphen), so a
 * set means one thing; a range whose ends are not two letters of one case
 * or two digits draws a warning, it is likely a literal "-" meant.
 */

char *
ngx_http_ciba_binding_chars(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    u_char      *p, *last, c, from, to;
    ngx_str_t   *value;

    if (cicf->binding_chars) {
        return "is duplicate";
    }

    cicf->binding_chars = ngx_pcalloc(cf->pool, 256);
    if (cicf->binding_chars == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;
    p = value[1].data;
    last = p + value[1].len;

    if (p == last) {
        return "is empty";
    }

    while (p < last) {

        if (*p == '\\') {
            if (p + 1 == last) {
                return "ends with a lone \"\\\"";
            }

            cicf->binding_chars[p[1]] = 1;
            p += 2;
            continue;
        }

        if (p + 2 < last && p[1] == '-') {
            from = p[0];
            to = p[2];

            if (to == '\\') {
                if (p + 3 == last) {
                    return "ends with a lone \"\\\"";
                }

                to = p[3];
                p++;
            }

            if (from > to) {
                return "has a reversed range";
            }

            if (!((from >= 'a' && from <= 'z' && to >= 'a' && to <= 'z')
                  || (from >= 'A' && from <= 'Z' && to >= 'A' && to <= 'Z')
                  || (from >= '0' && from <= '9' && to >= '0' && to <= '9')))
            {
                ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                   "the range \"%c-%c\" of "
                                   "\"ciba_binding_message_chars\" spans "
                                   "%d bytes, punctuation included; write "
                                   "a literal \"-\" as \"\\-\"",
                                   from, to, to - from + 1);
            }

            for (c = from; ; c++) {
                cicf->binding_chars[c] = 1;

                if (c == to) {
                    break;
                }
            }

            p += 3;
            continue;
        }

        cicf->binding_chars[*p++] = 1;
    }

    if (cicf->binding_chars['_'] == 0) {
        return "must allow \"_\", which replaces the other characters";
    }

    return NGX_CONF_OK;
}


/* ciba_authorization_detail name value; */

char *
ngx_http_ciba_authorization_detail(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ciba_loc_conf_t *cicf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_ciba_detail_t            *d;
    ngx_http_compile_complex_value_t   ccv;

    static ngx_str_t  own[] = {
        ngx_string("type"), ngx_string("actions"), ngx_string("locations"),
        ngx_string("identifier"), ngx_string("method"), ngx_string("path"),
        ngx_string("args"), ngx_string("args_truncated"),
        ngx_string("body_sha256"), ngx_null_string
    };

    value = cf->args->elts;

    if (value[1].len == 0
        || ngx_http_ciba_utf8_valid(value[1].data, value[1].len) != NGX_OK)
    {
        return "needs a non-empty UTF-8 name";
    }

    for (i = 0; own[i].len; i++) {
        if (value[1].len == own[i].len
            && ngx_strncmp(value[1].data, own[i].data, own[i].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is set by the module and cannot "
                               "be given by \"ciba_authorization_detail\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (cicf->details == NGX_CONF_UNSET_PTR) {
        cicf->details = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_ciba_detail_t));
        if (cicf->details == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    d = cicf->details->elts;

    for (i = 0; i < cicf->details->nelts; i++) {
        if (d[i].name.len == value[1].len
            && ngx_strncmp(d[i].name.data, value[1].data, value[1].len) == 0)
        {
            return "is duplicate";
        }
    }

    d = ngx_array_push(cicf->details);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    d->name = value[1];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &d->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * RFC 9396 authorization_details: the machine-checkable binding, one
 * object of the configured type naming the action, the URI, the digest,
 * the method, path, decoded arguments and body hash, and the operator's
 * own fields.  Every value is valid UTF-8 by construction or checked.
 */

static ngx_int_t
ngx_http_ciba_authz_details(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx, ngx_str_t *out)
{
    u_char                     *p, *last;
    char                       *dump;
    size_t                      len;
    json_t                     *arr, *obj, *args;
    uintptr_t                   escape;
    ngx_str_t                   scheme, host, path, value;
    ngx_uint_t                  i, truncated;
    ngx_http_ciba_detail_t     *d;
    ngx_http_core_srv_conf_t   *cscf;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");
    } else
#endif
    {
        ngx_str_set(&scheme, "http");
    }

    /* the configured server name, not a client's Host: the human reads it */

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    if (cscf->server_name.len && cscf->server_name.data[0] != '_') {
        host = cscf->server_name;

    } else if (r->headers_in.server.len
               && ngx_http_ciba_utf8_valid(r->headers_in.server.data,
                                           r->headers_in.server.len)
                  == NGX_OK)
    {
        host = r->headers_in.server;

    } else {
        ngx_str_set(&host, "localhost");
    }

    /*
     * the path as the digest covers it, always ASCII: as sent (canonical
     * form), or nginx's decoded $uri escaped again
     */

    if (cicf->path_mode == NGX_HTTP_CIBA_PATH_CANONICAL) {
        path = ctx->path;

    } else {
        escape = 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                    NGX_ESCAPE_URI);

        path.len = r->uri.len + escape;
        path.data = ngx_pnalloc(r->pool, path.len);
        if (path.data == NULL) {
            return NGX_ERROR;
        }

        if (escape) {
            ngx_escape_uri(path.data, r->uri.data, r->uri.len,
                           NGX_ESCAPE_URI);

        } else {
            ngx_memcpy(path.data, r->uri.data, r->uri.len);
        }
    }

    len = scheme.len + 3 + host.len + path.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%V://%V%V", &scheme, &host, &path);

    arr = json_array();
    obj = json_object();

    if (arr == NULL || obj == NULL || json_array_append_new(arr, obj) != 0) {
        if (arr) {
            json_decref(arr);

        } else if (obj) {
            json_decref(obj);
        }

        return NGX_ERROR;
    }

    /* arr owns obj from here */

    if (json_object_set_new(obj, "type",
                            json_stringn((char *) cicf->rar_type.data,
                                         cicf->rar_type.len))
           != 0
        || json_object_set_new(obj, "actions",
                               json_pack("[s%]", (char *) ctx->action.data,
                                         ctx->action.len))
           != 0
        || json_object_set_new(obj, "locations",
                               json_pack("[s%]", (char *) p,
                                         (size_t) (last - p)))
           != 0
        || json_object_set_new(obj, "identifier",
                               json_stringn((char *) ctx->digest.data,
                                            ctx->digest.len))
           != 0
        || json_object_set_new(obj, "method",
                               json_stringn((char *) r->method_name.data,
                                            r->method_name.len))
           != 0
        || json_object_set_new(obj, "path",
                               json_stringn((char *) path.data, path.len))
           != 0)
    {
        goto failed;
    }

    if ((cicf->covers & NGX_HTTP_CIBA_COVER_ARGS) && ctx->args->nelts) {

        truncated = 0;

        args = ngx_http_ciba_authz_args(r, ctx, &truncated);

        if (args == NULL || json_object_set_new(obj, "args", args) != 0) {
            goto failed;
        }

        if (truncated
            && json_object_set_new(obj, "args_truncated", json_true()) != 0)
        {
            goto failed;
        }
    }

    if ((cicf->covers & NGX_HTTP_CIBA_COVER_BODY)
        && json_object_set_new(obj, "body_sha256",
                               json_stringn((char *) ctx->body_sha256, 64))
           != 0)
    {
        goto failed;
    }

    if (cicf->details) {
        d = cicf->details->elts;

        for (i = 0; i < cicf->details->nelts; i++) {

            if (ngx_http_complex_value(r, &d[i].value, &value) != NGX_OK) {
                goto failed;
            }

            if (value.len == 0) {
                continue;
            }

            if (ngx_http_ciba_utf8_valid(value.data, value.len) != NGX_OK) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "ciba: the value of the authorization detail "
                              "\"%V\" is not valid UTF-8", &d[i].name);
                json_decref(arr);
                return NGX_DECLINED;
            }

            if (json_object_setn_new(obj, (char *) d[i].name.data,
                                     d[i].name.len,
                                     json_stringn((char *) value.data,
                                                  value.len))
                != 0)
            {
                goto failed;
            }
        }
    }

    dump = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);

    if (dump == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_strlen(dump);
    out->data = ngx_pnalloc(r->pool, out->len);

    if (out->data) {
        ngx_memcpy(out->data, dump, out->len);
    }

    free(dump);

    return out->data ? NGX_OK : NGX_ERROR;

failed:

    json_decref(arr);

    return NGX_ERROR;
}


/*
 * The query arguments as the human may read them: decoded, in request
 * order, a repeated name as an array; bounded in count and bytes.
 */

static json_t *
ngx_http_ciba_authz_args(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx,
    ngx_uint_t *truncated)
{
    size_t                 shown;
    json_t                *args, *name, *value, *prev, *a;
    ngx_uint_t             i, n;
    ngx_http_ciba_arg_t   *arg, **order;

    name = NULL;
    value = NULL;

    n = ctx->args->nelts;
    arg = ctx->args->elts;

    order = ngx_palloc(r->pool, n * sizeof(ngx_http_ciba_arg_t *));
    if (order == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        order[arg[i].order] = &arg[i];
    }

    args = json_object();
    if (args == NULL) {
        return NULL;
    }

    shown = 0;

    for (i = 0; i < n; i++) {

        shown += order[i]->name.len + order[i]->value.len;

        if (i == NGX_HTTP_CIBA_ARGS_SHOWN
            || shown > NGX_HTTP_CIBA_ARGS_SHOWN_LEN)
        {
            *truncated = 1;
            break;
        }

        name = ngx_http_ciba_json_arg(r->pool, &order[i]->name);
        value = ngx_http_ciba_json_arg(r->pool, &order[i]->value);

        if (name == NULL || value == NULL) {
            goto failed;
        }

        prev = json_object_getn(args, json_string_value(name),
                                json_string_length(name));

        if (prev == NULL) {
            if (json_object_setn_new(args, json_string_value(name),
                                     json_string_length(name), value)
                != 0)
            {
                value = NULL;
                goto failed;
            }

        } else if (json_is_array(prev)) {
            if (json_array_append_new(prev, value) != 0) {
                value = NULL;
                goto failed;
            }

        } else {
            /* a repeated name (ciba_duplicate_args keep) */

            a = json_array();

            if (a == NULL
                || json_array_append(a, prev) != 0
                || json_array_append_new(a, value) != 0)
            {
                if (a) {
                    json_decref(a);
                }

                value = NULL;
                goto failed;
            }

            if (json_object_setn_new(args, json_string_value(name),
                                     json_string_length(name), a)
                != 0)
            {
                value = NULL;
                goto failed;
            }
        }

        json_decref(name);
        name = NULL;
        value = NULL;
    }

    return args;

failed:

    if (name) {
        json_decref(name);
    }

    if (value) {
        json_decref(value);
    }

    json_decref(args);

    return NULL;
}


/* a name or value decoded, or as sent when the decoded one is not UTF-8 */

static json_t *
ngx_http_ciba_json_arg(ngx_pool_t *pool, ngx_str_t *raw)
{
    u_char  *d, *p;

    p = ngx_pnalloc(pool, raw->len + 1);
    if (p == NULL) {
        return NULL;
    }

    d = p;
    ngx_http_ciba_unescape_arg(&d, raw);

    if (ngx_http_ciba_utf8_valid(p, d - p) == NGX_OK) {
        return json_stringn((char *) p, d - p);
    }

    /* the raw form is ASCII: nginx refuses control bytes in a target */

    if (ngx_http_ciba_utf8_valid(raw->data, raw->len) == NGX_OK) {
        return json_stringn((char *) raw->data, raw->len);
    }

    return json_string("");
}


static ngx_int_t
ngx_http_ciba_form_add(ngx_pool_t *pool, ngx_array_t *form, const char *name,
    ngx_str_t *value)
{
    u_char     *p, c;
    size_t      nlen, i;
    ngx_str_t  *pair;

    /* application/x-www-form-urlencoded: all but unreserved bytes escaped */

    nlen = ngx_strlen(name);

    pair = ngx_array_push(form);
    if (pair == NULL) {
        return NGX_ERROR;
    }

    pair->data = ngx_pnalloc(pool, nlen + 1 + 3 * value->len);
    if (pair->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(pair->data, name, nlen);
    *p++ = '=';

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *p++ = c;

        } else {
            *p++ = '%';
            *p++ = "0123456789ABCDEF"[c >> 4];
            *p++ = "0123456789ABCDEF"[c & 0xf];
        }
    }

    pair->len = p - pair->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_form_add_cv(ngx_http_request_t *r, ngx_array_t *form,
    const char *name, ngx_http_complex_value_t *cv)
{
    ngx_str_t  value;

    if (cv == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, cv, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (value.len == 0) {
        return NGX_OK;
    }

    return ngx_http_ciba_form_add(r->pool, form, name, &value);
}


static ngx_int_t
ngx_http_ciba_form_join(ngx_pool_t *pool, ngx_array_t *form, ngx_str_t *body)
{
    u_char      *p;
    ngx_str_t   *pair;
    ngx_uint_t   i;

    pair = form->elts;
    body->len = 0;

    for (i = 0; i < form->nelts; i++) {
        body->len += pair[i].len + 1;
    }

    body->data = ngx_pnalloc(pool, body->len);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    p = body->data;

    for (i = 0; i < form->nelts; i++) {
        if (i) {
            *p++ = '&';
        }

        p = ngx_cpymem(p, pair[i].data, pair[i].len);
    }

    body->len = p - body->data;

    return NGX_OK;
}
