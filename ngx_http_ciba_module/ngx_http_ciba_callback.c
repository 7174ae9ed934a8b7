
/*
 * ngx_http_ciba_module: the client notification endpoint (ping and push
 * modes).
 *
 * "ciba_callback" makes a location the endpoint the AS pings or pushes
 * to: POST, "Authorization: Bearer <client_notification_token>", body
 * {"auth_req_id": "..."} (push: with the tokens, or with an error).  A
 * missing or wrong token (or an unknown auth_req_id, which cannot be told
 * apart) gets 401, a bad body 400.  A good ping gets 204 and makes the
 * pending approval ready: the next retry (or the waiting request) asks
 * the token endpoint at once.  A good push (its id_token verified and
 * bound to the auth_req_id and the access token) gets 204, and the access
 * token is kept for the approval's next retry, which checks it and takes
 * it once; a pushed error is remembered as a denial or an expiry.
 */


#include "ngx_http_ciba.h"


#define NGX_HTTP_CIBA_CALLBACK_MAX  4096


static ngx_int_t ngx_http_ciba_callback_handler(ngx_http_request_t *r);
static void ngx_http_ciba_callback_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_callback_process(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_callback_push(ngx_http_request_t *r,
    json_t *json, ngx_str_t *areq);
static ngx_int_t ngx_http_ciba_callback_answer(ngx_http_request_t *r,
    ngx_uint_t status, const char *error);


char *
ngx_http_ciba_callback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ciba_module);

    if (cimcf->shm_zone == NULL) {
        return "needs a \"ciba_zone\" defined before it";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ciba_callback_handler;

    /* never itself protected, also when "ciba on" is inherited */
    ((ngx_http_ciba_loc_conf_t *) conf)->callback = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ciba_callback_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_CIBA_CALLBACK_MAX) {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_ciba_callback_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_ciba_callback_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_ciba_callback_process(r));
}


static ngx_int_t
ngx_http_ciba_callback_process(ngx_http_request_t *r)
{
    u_char                     *p, pending_key[32];
    size_t                      len;
    json_t                     *json, *v;
    ngx_int_t                   rc;
    ngx_str_t                   token, areq, error;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    json_error_t                err;
    ngx_pool_cleanup_t         *cln;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    /* the bearer token first: nothing is parsed for an unknown caller */

    if (r->headers_in.authorization == NULL) {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_UNAUTHORIZED,
                                             "invalid_token");
    }

    token = r->headers_in.authorization->value;

    if (token.len <= 7
        || ngx_strncasecmp(token.data, (u_char *) "Bearer ", 7) != 0)
    {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_UNAUTHORIZED,
                                             "invalid_token");
    }

    token.data += 7;
    token.len -= 7;

    /* the body, in memory, at most 4k */

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (!ngx_buf_in_memory(cl->buf)) {
                return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                                     "invalid_request");
            }

            len += cl->buf->last - cl->buf->pos;
        }
    }

    if (len == 0 || len > NGX_HTTP_CIBA_CALLBACK_MAX) {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request");
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        ngx_memcpy(p + len, b->pos, b->last - b->pos);
        len += b->last - b->pos;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = json_loadb((char *) p, len, JSON_REJECT_DUPLICATES, &err);

    if (json == NULL) {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request");
    }

    cln->handler = (ngx_pool_cleanup_pt) json_decref;
    cln->data = json;

    v = json_object_get(json, "auth_req_id");

    if (!json_is_object(json) || !json_is_string(v)
        || json_string_length(v) == 0 || json_string_length(v) > 1024)
    {
        return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request");
    }

    areq.data = (u_char *) json_string_value(v);
    areq.len = json_string_length(v);

    rc = ngx_http_ciba_notify_ping(cimcf->shm_zone, &areq, &token,
                                   pending_key);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ciba: a notification with a wrong token or for "
                      "an unknown approval was refused");

        return ngx_http_ciba_callback_answer(r, NGX_HTTP_UNAUTHORIZED,
                                             "invalid_token");
    }

    v = json_object_get(json, "access_token");

    if (v == NULL) {
        v = json_object_get(json, "id_token");
    }

    if (v) {
        rc = ngx_http_ciba_callback_push(r, json, &areq);

        if (rc == NGX_HTTP_BAD_REQUEST) {
            return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                                 "invalid_request");
        }

        if (rc != NGX_OK) {
            return rc;
        }

        goto done;
    }

    v = json_object_get(json, "error");

    if (v) {
        if (!json_is_string(v)) {
            return ngx_http_ciba_callback_answer(r, NGX_HTTP_BAD_REQUEST,
                                                 "invalid_request");
        }

        error.data = (u_char *) json_string_value(v);
        error.len = json_string_length(v);

        /* a pushed error ends the approval */

        ngx_http_ciba_pending_update(cimcf->shm_zone, pending_key,
                                     (error.len == 13
                                      && ngx_strncmp(error.data,
                                                     "expired_token", 13)
                                         == 0)
                                     ? NGX_HTTP_CIBA_PENDING_EXPIRED
                                     : NGX_HTTP_CIBA_PENDING_DENIED, 0);

        /* and nothing pushed later is taken for it */
        ngx_http_ciba_notify_remove(cimcf->shm_zone, &areq);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ciba: the authorization server pushed an error, "
                      "the approval ended");
        goto done;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ciba: ping received, the approval is ready");

done:

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->header_only = 1;
    r->headers_out.content_length_n = 0;

    return ngx_http_send_header(r);
}


/*
 * Push mode: the tokens themselves.  The id_token must verify (signature,
 * issuer, this client as audience, time, this auth_req_id, the at_hash of
 * the access token) before the access token is kept for the approval.
 */

static ngx_int_t
ngx_http_ciba_callback_push(ngx_http_request_t *r, json_t *json,
    ngx_str_t *areq)
{
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_str_t                   access, id_token, client_id;
    const char                 *reason;
    ngx_http_ciba_loc_conf_t   *cicf;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);
    cicf = ngx_http_get_module_loc_conf(r, ngx_http_ciba_module);

    if (cicf->keys == NULL || cicf->issuer.len == 0
        || cicf->client_id == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: pushed tokens need \"ciba_key_file\", "
                      "\"ciba_issuer\" and \"ciba_client_id\" in the "
                      "callback location to verify the id_token");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_complex_value(r, cicf->client_id, &client_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = json_object_get(json, "access_token");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > NGX_HTTP_CIBA_TOKEN_MAX)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    access.data = (u_char *) json_string_value(v);
    access.len = json_string_length(v);

    v = json_object_get(json, "id_token");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > NGX_HTTP_CIBA_TOKEN_MAX)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    id_token.data = (u_char *) json_string_value(v);
    id_token.len = json_string_length(v);

    rc = ngx_http_ciba_id_token_check(r, cicf, &id_token, areq, &access,
                                      &client_id, &reason);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: pushed tokens refused: %s", reason);

        return NGX_HTTP_BAD_REQUEST;
    }

    rc = ngx_http_ciba_pushed_put(cimcf->shm_zone, areq, &access,
                                  ngx_time() + cicf->requested_expiry,
                                  r->connection->log);

    if (rc == NGX_BUSY) {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ciba: tokens pushed, the approval is ready");

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_callback_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *error)
{
    size_t            len;
    ngx_buf_t        *b;
    ngx_table_elt_t  *h;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    len = sizeof("{\"error\":\"\"}\n") - 1 + ngx_strlen(error);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"error\":\"%s\"}\n", error);
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (status == NGX_HTTP_UNAUTHORIZED) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer error=\"invalid_token\"");
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    return ngx_http_ciba_send(r, b);
}
