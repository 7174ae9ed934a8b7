
/*
 * ngx_http_ciba_module: talking to the authorization server.
 *
 * The backchannel authentication request and the token request are POST
 * subrequests to internal locations named by "ciba_backchannel_endpoint"
 * and "ciba_token_endpoint"; those locations proxy to the AS and carry the
 * client authentication, TLS verification and timeouts with ordinary
 * nginx directives.  The subrequest is in memory: its answer is bounded by
 * that location's subrequest_output_buffer_size, and an answer over it
 * fails the subrequest.  Nothing here blocks: the request waits for the
 * subrequest and is woken up when it completes.
 */


#include "ngx_http_ciba.h"

#include <openssl/rand.h>


static ngx_int_t ngx_http_ciba_as_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_ciba_form_add(ngx_pool_t *pool, ngx_array_t *form,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_ciba_form_add_cv(ngx_http_request_t *r,
    ngx_array_t *form, const char *name, ngx_http_complex_value_t *cv);
static ngx_int_t ngx_http_ciba_form_join(ngx_pool_t *pool, ngx_array_t *form,
    ngx_str_t *body);
static ngx_int_t ngx_http_ciba_authz_details(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *out);


/*
 * Sends the backchannel authentication request (step BC) or the token
 * request (step TOKEN) and returns NGX_AGAIN: the request runs its phases
 * again when the answer is in ctx->as_status and ctx->as_body.
 */

ngx_int_t
ngx_http_ciba_as_request(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx,
    ngx_uint_t step)
{
    u_char                        random[32];
    ngx_str_t                     body, value, src, *uri;
    ngx_buf_t                    *b;
    ngx_array_t                   form;
    ngx_chain_t                  *cl;
    ngx_table_elt_t              *h;
    ngx_http_request_t           *sr;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    if (ngx_array_init(&form, r->pool, 12, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    if (step == NGX_HTTP_CIBA_STEP_BC) {
        uri = &clcf->bc_uri;

        if (ngx_http_ciba_form_add(r->pool, &form, "scope", &clcf->scope)
               != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form, "login_hint",
                                      &ctx->login_hint)
               != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form, "binding_message",
                                      &ctx->binding_message)
               != NGX_OK
            || ngx_http_ciba_form_add_cv(r, &form, "acr_values",
                                         clcf->acr_values)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        value.len = ngx_sprintf(value.data, "%T", clcf->requested_expiry)
                    - value.data;

        if (ngx_http_ciba_form_add(r->pool, &form, "requested_expiry",
                                   &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ciba_authz_details(r, clcf, ctx, &value) != NGX_OK
            || ngx_http_ciba_form_add(r->pool, &form,
                                      "authorization_details", &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (clcf->delivery != NGX_HTTP_CIBA_MODE_POLL) {

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
        uri = &clcf->token_uri;

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

    if (ngx_http_ciba_form_add_cv(r, &form, "client_id", clcf->client_id)
        != NGX_OK
        || ngx_http_ciba_form_add_cv(r, &form, "client_secret",
                                     clcf->client_secret)
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

    if (ngx_http_subrequest(r, uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&sr->method_name, "POST");
    sr->method = NGX_HTTP_POST;

    /* none of the client's headers go to the AS */

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

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

    sr->headers_in.host = NULL;
    sr->headers_in.content_type = h;
    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = body.len;
    sr->headers_in.chunked = 0;
    sr->headers_in.authorization = NULL;

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

    ctx->step = step;
    ctx->as_done = 0;
    ctx->as_status = 0;
    ngx_str_null(&ctx->as_body);

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_ciba_as_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_ciba_ctx_t  *ctx = data;

    ngx_buf_t  *b;

    ctx->as_done = 1;
    ctx->as_status = sr->headers_out.status;

    if (rc == NGX_ERROR) {
        /*
         * the subrequest failed (no answer, or one over the buffer): the
         * module answers, so the main request must not be terminated.
         * An in-memory subrequest's output error (ngx_http_output_filter()
         * marks the connection) is about the buffer, not the client.
         */
        ctx->as_status = 0;
        sr->connection->error = 0;
        rc = NGX_OK;

    } else if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->as_status = (ngx_uint_t) rc;
    }

    if (ctx->as_status && sr->out && sr->out->buf) {
        b = sr->out->buf;
        ctx->as_body.data = b->pos;
        ctx->as_body.len = b->last - b->pos;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "ciba: AS answered %ui, rc %i, %uz bytes",
                   ctx->as_status, rc, ctx->as_body.len);

    return rc;
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
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx)
{
    size_t     i;
    ngx_str_t  text;

    if (clcf->binding_message) {
        if (ngx_http_complex_value(r, clcf->binding_message, &text)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        text = ctx->action;
    }

    if (text.len > clcf->binding_max) {
        text.len = clcf->binding_max;
    }

    ctx->binding_message.data = ngx_pnalloc(r->pool, text.len);
    if (ctx->binding_message.data == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < text.len; i++) {
        ctx->binding_message.data[i] = clcf->binding_chars[text.data[i]]
                                       ? text.data[i] : '_';
    }

    ctx->binding_message.len = text.len;

    return NGX_OK;
}


/* ciba_binding_message_chars "A-Za-z0-9-._+/!?#"; ranges and single bytes */

char *
ngx_http_ciba_binding_chars(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_loc_conf_t *clcf = conf;

    u_char      *p, *last, c;
    ngx_str_t   *value;

    if (clcf->binding_chars) {
        return "is duplicate";
    }

    clcf->binding_chars = ngx_pcalloc(cf->pool, 256);
    if (clcf->binding_chars == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;
    p = value[1].data;
    last = p + value[1].len;

    if (p == last) {
        return "is empty";
    }

    while (p < last) {

        if (p + 2 < last && p[1] == '-') {
            if (p[0] > p[2]) {
                return "has a reversed range";
            }

            for (c = p[0]; ; c++) {
                clcf->binding_chars[c] = 1;

                if (c == p[2]) {
                    break;
                }
            }

            p += 3;
            continue;
        }

        clcf->binding_chars[*p++] = 1;
    }

    if (clcf->binding_chars['_'] == 0) {
        return "must allow \"_\", which replaces the other characters";
    }

    return NGX_CONF_OK;
}


/*
 * RFC 9396 authorization_details: the machine-checkable binding, one
 * object of the configured type naming the action, the absolute URL, the
 * digest, the method and path.
 */

static ngx_int_t
ngx_http_ciba_authz_details(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *clcf, ngx_http_ciba_ctx_t *ctx, ngx_str_t *out)
{
    u_char                     *p, *last;
    char                       *dump;
    size_t                      len;
    json_t                     *arr, *obj;
    uintptr_t                   escape;
    ngx_str_t                   scheme, host;
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

    } else if (r->headers_in.server.len) {
        host = r->headers_in.server;

    } else {
        ngx_str_set(&host, "localhost");
    }

    /*
     * "locations" are URIs: the (decoded, normalized) path is escaped
     * again; "path" below carries it as the digest sees it
     */

    escape = 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                NGX_ESCAPE_URI);

    len = scheme.len + 3 + host.len + r->uri.len + escape;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%V://%V", &scheme, &host);

    if (escape) {
        ngx_escape_uri(last, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

    } else {
        ngx_memcpy(last, r->uri.data, r->uri.len);
    }

    arr = json_array();
    obj = json_object();

    if (arr == NULL || obj == NULL
        || json_array_append_new(arr, obj) != 0
        || json_object_set_new(obj, "type",
                               json_stringn((char *) clcf->rar_type.data,
                                            clcf->rar_type.len))
           != 0
        || json_object_set_new(obj, "actions",
                               json_pack("[s%]", (char *) ctx->action.data,
                                         ctx->action.len))
           != 0
        || json_object_set_new(obj, "locations",
                               json_pack("[s%]", (char *) p, len))
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
                               json_stringn((char *) r->uri.data,
                                            r->uri.len))
           != 0)
    {
        /* a value that is not UTF-8 cannot be sent: refuse, never mangle */
        if (arr) {
            json_decref(arr);

        } else if (obj) {
            json_decref(obj);
        }

        return NGX_ERROR;
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
