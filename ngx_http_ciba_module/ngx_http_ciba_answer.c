
/*
 * ngx_http_ciba_module: the answers.
 *
 * Every refusal is application/json with "error" and "error_description"
 * (plus "reason", "action" and "action_digest", so that an agent can see
 * what an approval must be bound to), never a 2xx, never cached.  The
 * answer never contains the token.
 */


#include "ngx_http_ciba.h"

#include <jansson.h>


typedef struct {
    ngx_uint_t                  status;
    const char                 *error;
    const char                 *description;
} ngx_http_ciba_answer_t;


static ngx_int_t ngx_http_ciba_add_header(ngx_http_request_t *r,
    const char *key, u_char *value, size_t len);
static ngx_int_t ngx_http_ciba_json_set(json_t *obj, const char *key,
    u_char *value, size_t len);


static ngx_http_ciba_answer_t  ngx_http_ciba_answers[] = {

    /* NGX_HTTP_CIBA_APPROVED: never answered */
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "server_error",
      "internal error" },

    /* NGX_HTTP_CIBA_REQUIRED */
    { NGX_HTTP_UNAUTHORIZED, "approval_required",
      "this action needs a human's approval: send an approval token "
      "bound to this exact request" },

    /* NGX_HTTP_CIBA_INVALID */
    { NGX_HTTP_UNAUTHORIZED, "invalid_approval",
      "the approval token is malformed, not signed by a trusted key, "
      "or not valid for this server or at this time" },

    /* NGX_HTTP_CIBA_MISMATCH */
    { NGX_HTTP_FORBIDDEN, "approval_mismatch",
      "the approval was given for another action, request or subject" },

    /* NGX_HTTP_CIBA_REPLAYED */
    { NGX_HTTP_FORBIDDEN, "approval_replayed",
      "the approval was already used" },

    /* NGX_HTTP_CIBA_TOO_LARGE */
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "approval_body_too_large",
      "the request body is larger than an approval may cover" },

    /* NGX_HTTP_CIBA_UNAVAILABLE */
    { NGX_HTTP_SERVICE_UNAVAILABLE, "approval_unavailable",
      "the approval cannot be checked now; retry later" },

    /* NGX_HTTP_CIBA_PENDING: the status is ciba_pending_status */
    { NGX_HTTP_UNAUTHORIZED, "approval_pending",
      "a human was asked to approve this action; retry the same request "
      "(with the approval handle) after the interval" },

    /* NGX_HTTP_CIBA_DENIED */
    { NGX_HTTP_FORBIDDEN, "approval_denied",
      "the approval was denied" },

    /* NGX_HTTP_CIBA_EXPIRED */
    { NGX_HTTP_FORBIDDEN, "approval_expired",
      "the approval expired; a new request asks again" },

    /* NGX_HTTP_CIBA_MISCONFIGURED */
    { NGX_HTTP_BAD_GATEWAY, "approval_misconfigured",
      "the authorization server refused this gateway's request" },

    /* NGX_HTTP_CIBA_RATE_LIMITED */
    { NGX_HTTP_TOO_MANY_REQUESTS, "approval_rate_limited",
      "too many approvals are pending for this subject" },

    /* NGX_HTTP_CIBA_NO_SUBJECT */
    { NGX_HTTP_BAD_REQUEST, "approval_subject_missing",
      "there is nobody to ask: the login hint is empty" },

    /* NGX_HTTP_CIBA_BAD_REQUEST */
    { NGX_HTTP_BAD_REQUEST, "approval_bad_request",
      "this request cannot be approved as sent (a path not in "
      "canonical form, a repeated argument or header, a value that is "
      "not UTF-8: see the reason); fix it and send it again" }
};


ngx_int_t
ngx_http_ciba_answer(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx)
{
    char                      *dump;
    size_t                     len;
    json_t                    *obj;
    ngx_buf_t                 *b;
    ngx_uint_t                 status;
    ngx_http_ciba_answer_t    *a;
    ngx_http_ciba_loc_conf_t  *cicf;

    a = &ngx_http_ciba_answers[ctx->outcome];
    status = a->status;

    if (ctx->outcome == NGX_HTTP_CIBA_PENDING) {
        cicf = ngx_http_get_module_loc_conf(r, ngx_http_ciba_module);
        status = cicf->pending_status;
    }

    /*
     * a refusal before the body was read does not invite it: no
     * "100 Continue", as for nginx's own client_max_body_size
     */

    if (!ctx->body_read) {
        r->expect_tested = 1;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    obj = json_object();
    if (obj == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dump = NULL;

    if (ngx_http_ciba_json_set(obj, "error", (u_char *) a->error,
                               ngx_strlen(a->error))
        != NGX_OK
        || ngx_http_ciba_json_set(obj, "error_description",
                                  (u_char *) a->description,
                                  ngx_strlen(a->description))
           != NGX_OK
        || ngx_http_ciba_json_set(obj, "reason", (u_char *) ctx->reason,
                                  ngx_strlen(ctx->reason))
           != NGX_OK
        || ngx_http_ciba_json_set(obj, "action", ctx->action.data,
                                  ctx->action.len)
           != NGX_OK
        || ngx_http_ciba_json_set(obj, "action_digest", ctx->digest.data,
                                  ctx->digest.len)
           != NGX_OK)
    {
        goto failed;
    }

    if (ctx->outcome == NGX_HTTP_CIBA_PENDING) {
        if ((ctx->handle_str.len
             && ngx_http_ciba_json_set(obj, "approval_handle",
                                       ctx->handle_str.data,
                                       ctx->handle_str.len)
                != NGX_OK)
            || json_object_set_new(obj, "expires_in",
                                   json_integer(ngx_max(ctx->expires_in, 0)))
               != 0
            || json_object_set_new(obj, "interval",
                                   json_integer(ctx->interval))
               != 0
            || ngx_http_ciba_json_set(obj, "binding_message",
                                      ctx->binding_message.data,
                                      ctx->binding_message.len)
               != NGX_OK)
        {
            goto failed;
        }
    }

    dump = json_dumps(obj, JSON_COMPACT);
    if (dump == NULL) {
        goto failed;
    }

    len = ngx_strlen(dump);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        goto failed;
    }

    b->last = ngx_cpymem(b->last, dump, len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    free(dump);
    json_decref(obj);

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_ciba_add_header(r, "Cache-Control",
                                 (u_char *) "no-store", 8)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_UNAUTHORIZED) {
        len = sizeof("Approval realm=\"ciba\", error=\"\"") - 1
              + ngx_strlen(a->error);

        dump = ngx_pnalloc(r->pool, len);
        if (dump == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf((u_char *) dump, "Approval realm=\"ciba\", error=\"%s\"",
                    a->error);

        r->headers_out.www_authenticate = NULL;

        if (ngx_http_ciba_add_header(r, "WWW-Authenticate", (u_char *) dump,
                                     len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_TOO_MANY_REQUESTS
        || ctx->outcome == NGX_HTTP_CIBA_PENDING)
    {
        dump = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (dump == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = ngx_sprintf((u_char *) dump, "%T",
                          ctx->retry_after > 0 ? ctx->retry_after : 5)
              - (u_char *) dump;

        if (ngx_http_ciba_add_header(r, "Retry-After", (u_char *) dump, len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_ciba_send(r, b);

failed:

    if (dump) {
        free(dump);
    }

    json_decref(obj);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_ciba_add_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* a member with a value that is not UTF-8 is left out, never sent raw */

static ngx_int_t
ngx_http_ciba_json_set(json_t *obj, const char *key, u_char *value,
    size_t len)
{
    json_t  *s;

    if (len == 0) {
        value = (u_char *) "";
    }

    s = json_stringn((char *) value, len);

    if (s == NULL) {
        return NGX_OK;
    }

    if (json_object_set_new(obj, key, s) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* sends the headers set in r->headers_out and the one buffer b */

ngx_int_t
ngx_http_ciba_send(ngx_http_request_t *r, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
