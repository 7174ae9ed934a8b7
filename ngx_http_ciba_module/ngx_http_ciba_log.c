
/*
 * ngx_http_ciba_module: the decision log.
 *
 * Each decision is an identity event: variables for log_format, and one
 * key=value line in the error log at "ciba_log_level".  Values that come
 * from clients or tokens are escaped and bounded; a token is never
 * logged.
 */


#include "ngx_http_ciba.h"


#define NGX_HTTP_CIBA_LOG_VALUE_MAX  128


static ngx_int_t ngx_http_ciba_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ciba_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ciba_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ciba_arg_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* the decisions' names, in the order of ngx_http_ciba_outcome_e */

ngx_str_t  ngx_http_ciba_outcome_names[] = {
    ngx_string("approved"),
    ngx_string("required"),
    ngx_string("invalid"),
    ngx_string("mismatch"),
    ngx_string("replayed"),
    ngx_string("body_too_large"),
    ngx_string("unavailable"),
    ngx_string("pending"),
    ngx_string("denied"),
    ngx_string("expired"),
    ngx_string("misconfigured"),
    ngx_string("rate_limited"),
    ngx_string("no_subject"),
    ngx_string("bad_request")
};


static ngx_http_variable_t  ngx_http_ciba_vars[] = {

    { ngx_string("ciba_decision"), NULL,
      ngx_http_ciba_decision_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_reason"), NULL,
      ngx_http_ciba_reason_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_action"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, action),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_digest"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, digest),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_subject"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, subject),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_approver"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, approver),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_jti"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, jti),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_request_ref"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, request_ref),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_binding_message"), NULL, ngx_http_ciba_variable,
      offsetof(ngx_http_ciba_ctx_t, binding_message),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ciba_arg_"), NULL, ngx_http_ciba_arg_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_ciba_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ciba_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t            *s;
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_http_ciba_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_http_ciba_get_ctx(r);

    if (ctx == NULL || !ctx->decided) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_ciba_outcome_names[ctx->outcome].len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ngx_http_ciba_outcome_names[ctx->outcome].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ciba_ctx_t  *ctx;

    ctx = ngx_http_ciba_get_ctx(r);

    if (ctx == NULL || !ctx->decided || ctx->reason == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_strlen(ctx->reason);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = (u_char *) ctx->reason;

    return NGX_OK;
}


/*
 * $ciba_arg_NAME: the values of the query arguments named NAME, decoded
 * ("+" and %XX, also in the names) and joined by ", " in request order.
 * Names compare case-insensitively, because nginx lowercases variable
 * names; with "ciba_duplicate_args refuse" a protected request has at
 * most one such argument.
 */

static ngx_int_t
ngx_http_ciba_arg_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    u_char     *p, *last, *amp, *eq, *d, *out;
    size_t      len;
    ngx_str_t   name, piece;
    ngx_uint_t  n;

    name.data = var->data + sizeof("ciba_arg_") - 1;
    name.len = var->len - (sizeof("ciba_arg_") - 1);

    /* the values are never longer than the query */

    out = ngx_pnalloc(r->pool, r->args.len + 1);
    d = ngx_pnalloc(r->pool, r->args.len + 1);

    if (out == NULL || d == NULL) {
        return NGX_ERROR;
    }

    p = r->args.data;
    last = p + r->args.len;
    len = 0;
    n = 0;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');

        piece.data = p;
        piece.len = (eq ? eq : amp) - p;

        p = amp + 1;

        if (piece.len == 0) {
            continue;
        }

        /* the decoded name */

        eq = d;
        ngx_http_ciba_unescape_arg(&eq, &piece);

        if ((size_t) (eq - d) != name.len
            || ngx_strncasecmp(d, name.data, name.len) != 0)
        {
            continue;
        }

        if (n++) {
            out[len++] = ',';
            out[len++] = ' ';
        }

        piece.data += piece.len + 1;
        piece.len = (piece.data < amp) ? (size_t) (amp - piece.data) : 0;

        eq = out + len;
        ngx_http_ciba_unescape_arg(&eq, &piece);
        len = eq - out;
    }

    if (n == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = out;

    return NGX_OK;
}


void
ngx_http_ciba_log_decision(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    u_char  *action, *subject, *approver, *jti, *kid, *message;

    if (r->connection->log->log_level < cicf->log_level) {
        return;
    }

    action = ngx_http_ciba_log_escape(r->pool, &ctx->action);
    subject = ngx_http_ciba_log_escape(r->pool, &ctx->subject);
    approver = ngx_http_ciba_log_escape(r->pool, &ctx->approver);
    jti = ngx_http_ciba_log_escape(r->pool, &ctx->jti);
    kid = ngx_http_ciba_log_escape(r->pool, &ctx->kid);
    message = ngx_http_ciba_log_escape(r->pool, &ctx->binding_message);

    if (action == NULL || subject == NULL || approver == NULL
        || jti == NULL || kid == NULL || message == NULL)
    {
        return;
    }

    ngx_log_error(cicf->log_level, r->connection->log, 0,
                  "ciba: decision=%V reason=%s action=\"%s\" "
                  "subject=\"%s\" approver=\"%s\" jti=\"%s\" kid=\"%s\" "
                  "alg=%V digest=%V%s%V%s%s%s",
                  &ngx_http_ciba_outcome_names[ctx->outcome], ctx->reason,
                  action, subject, approver, jti, kid, &ctx->alg,
                  &ctx->digest, ctx->request_ref.len ? " request_ref=" : "",
                  &ctx->request_ref,
                  ctx->binding_message.len ? " binding_message=\"" : "",
                  message, ctx->binding_message.len ? "\"" : "");
}


/*
 * Escapes a value for a quoted log field: bytes outside printable ASCII,
 * the quote and the backslash become \xHH; at most 128 bytes are shown.
 */

u_char *
ngx_http_ciba_log_escape(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char         *dst, *p;
    size_t          len, i;
    static u_char   hex[] = "0123456789abcdef";

    len = ngx_min(src->len, NGX_HTTP_CIBA_LOG_VALUE_MAX);

    dst = ngx_pnalloc(pool, len * 4 + sizeof("..."));
    if (dst == NULL) {
        return NULL;
    }

    p = dst;

    for (i = 0; i < len; i++) {
        if (src->data[i] < 0x20 || src->data[i] > 0x7e
            || src->data[i] == '"' || src->data[i] == '\\')
        {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[src->data[i] >> 4];
            *p++ = hex[src->data[i] & 0xf];
            continue;
        }

        *p++ = src->data[i];
    }

    if (src->len > len) {
        p = ngx_cpymem(p, "...", 3);
    }

    *p = '\0';

    return dst;
}
