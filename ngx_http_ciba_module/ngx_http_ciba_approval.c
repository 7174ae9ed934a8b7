
/*
 * ngx_http_ciba_module: asking the human (OpenID Connect CIBA: poll, ping
 * and push modes).
 *
 * A request without an approval token:
 *   - with an approval handle: the handle is opened and must be for this
 *     digest and subject; in push mode the pushed tokens are taken, in
 *     poll and ping mode the token endpoint is asked at most once per
 *     interval, one request at a time (the zone says when; once pinged,
 *     at once), otherwise the answer is "pending";
 *   - without one: a live pending approval for the same (subject, digest)
 *     is continued as if the handle had been sent (the human is asked
 *     once, not per retry); otherwise a backchannel authentication request
 *     asks the human, within a per-subject limit, and the answer is
 *     "pending" with a new handle.
 * Tokens from the token endpoint or pushed are validated when keys are
 * configured, and the auth_req_id is consumed once, so a second retry
 * with the same handle, even a concurrent one, is a replay.
 */


#include "ngx_http_ciba.h"


static ngx_int_t ngx_http_ciba_approval_start(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *handle);
static ngx_int_t ngx_http_ciba_continue(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_pending_t *p);
static ngx_int_t ngx_http_ciba_poll(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_bc_result(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_token_result(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_consume_areq(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx);
static void ngx_http_ciba_mark_refused(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_areq_record(ngx_http_ciba_ctx_t *ctx,
    u_char *record);
static ngx_int_t ngx_http_ciba_tokens(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *token);
static ngx_int_t ngx_http_ciba_as_error(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx, json_t *json, const char *what);
static ngx_int_t ngx_http_ciba_zone_full(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);
static ngx_int_t ngx_http_ciba_set(ngx_http_ciba_ctx_t *ctx,
    ngx_http_ciba_outcome_e outcome, const char *reason);
static ngx_int_t ngx_http_ciba_request_ref(ngx_http_request_t *r,
    ngx_http_ciba_ctx_t *ctx);
static u_char *ngx_http_ciba_key_of(ngx_http_request_t *r);
static ngx_int_t ngx_http_ciba_error_in(ngx_str_t *error, const char **set);


static const char  *ngx_http_ciba_denials[] = {
    "access_denied", "unknown_user_id", "expired_login_hint_token",
    "invalid_user_code", "missing_user_code", "transaction_failed", NULL
};

static const char  *ngx_http_ciba_misconfigs[] = {
    "invalid_request", "invalid_client", "unauthorized_client",
    "invalid_scope", "invalid_binding_message",
    "invalid_authorization_details", "unsupported_grant_type", NULL
};


/*
 * NGX_AGAIN: waiting for the AS; NGX_OK: approved; NGX_DECLINED: the
 * outcome (pending, denied, ...) is in ctx; NGX_ERROR: internal failure.
 */

ngx_int_t
ngx_http_ciba_approval(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_str_t *handle)
{
    if (ctx->step == NGX_HTTP_CIBA_STEP_NONE) {
        return ngx_http_ciba_approval_start(r, cicf, ctx, handle);
    }

    if (!ctx->as_done) {
        return NGX_AGAIN;
    }

    /* the client is watched only while the token request is in flight */
    r->read_event_handler = ngx_http_block_reading;

    if (ctx->step == NGX_HTTP_CIBA_STEP_BC) {
        return ngx_http_ciba_bc_result(r, cicf, ctx);
    }

    return ngx_http_ciba_token_result(r, cicf, ctx);
}


static ngx_int_t
ngx_http_ciba_approval_start(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx,
    ngx_str_t *handle)
{
    time_t                      now;
    u_char                     *key, digest[32];
    ngx_int_t                   rc;
    ngx_str_t                   src, dst;
    ngx_http_ciba_pending_t     p;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);
    now = ngx_time();

    if (ngx_http_complex_value(r, cicf->login_hint, &ctx->login_hint)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->login_hint.len == 0) {
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_NO_SUBJECT,
                                 "no_login_hint");
    }

    if (cicf->subject == NULL) {
        ctx->subject = ctx->login_hint;
    }

    if (ngx_http_ciba_pending_key(&ctx->login_hint, NULL, NULL,
                                  ctx->subject_key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    src.data = ctx->subject_key;
    src.len = 32;

    if (ngx_http_ciba_store_key2(&ctx->digest, &src, &ctx->action,
                                 ctx->pending_key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_render_binding(r, cicf, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    dst.data = digest;
    if (ngx_decode_base64url(&dst, &ctx->digest) != NGX_OK || dst.len != 32)
    {
        return NGX_ERROR;
    }

    if (handle) {
        key = ngx_http_ciba_key_of(r);

        rc = ngx_http_ciba_handle_open(r, key, handle, &ctx->handle);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_INVALID,
                                     "bad_handle");
        }

        if (ngx_memcmp(ctx->handle.digest, digest, 32) != 0
            || ngx_memcmp(ctx->handle.subject, ctx->subject_key, 32) != 0)
        {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_MISMATCH,
                                     "handle_mismatch");
        }

        ctx->handle_str = *handle;

        if (ctx->handle.expire <= now) {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED,
                                     "handle_expired");
        }

        if (ngx_http_ciba_pending_get(cimcf->shm_zone, ctx->pending_key,
                                      r->pool, &p)
            == NGX_OK
            && p.state != NGX_HTTP_CIBA_PENDING_REQUESTING)
        {
            if (p.auth_req_id.len != ctx->handle.auth_req_id.len
                || ngx_memcmp(p.auth_req_id.data,
                              ctx->handle.auth_req_id.data,
                              p.auth_req_id.len)
                   != 0)
            {
                /* an older approval's handle: that one is over */
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED,
                                         "stale_handle");
            }

            switch (p.state) {

            case NGX_HTTP_CIBA_PENDING_DENIED:
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_DENIED,
                                         "access_denied");

            case NGX_HTTP_CIBA_PENDING_EXPIRED:
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED,
                                         "expired_token");
            }
        }

        return ngx_http_ciba_poll(r, cicf, ctx);
    }

    /* a bare request: continue a live pending approval, or ask */

    rc = ngx_http_ciba_pending_get(cimcf->shm_zone, ctx->pending_key, r->pool,
                                   &p);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK && p.state == NGX_HTTP_CIBA_PENDING_EXPIRED) {
        /* an expired approval is not continued: this request asks anew */
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_DONE, 0);
        rc = NGX_DECLINED;
    }

    if (rc == NGX_OK) {
        return ngx_http_ciba_continue(r, cicf, ctx, &p);
    }

    /*
     * a placeholder while the AS is asked: bounded in time, and given up
     * when the request ends before the AS answers
     */

    ctx->zone = cimcf->shm_zone;

    rc = ngx_http_ciba_pending_begin(cimcf->shm_zone, ctx->pending_key,
                                     ctx->subject_key, cicf->max_pending,
                                     now + 60, r->connection->log);
    switch (rc) {

    case NGX_OK:
        break;

    case NGX_BUSY:
        if (ngx_http_ciba_pending_get(cimcf->shm_zone, ctx->pending_key,
                                      r->pool, &p)
            != NGX_OK)
        {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE,
                                     "pending_race");
        }

        return ngx_http_ciba_continue(r, cicf, ctx, &p);

    case NGX_DECLINED:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_RATE_LIMITED,
                                 "too_many_pending");

    case NGX_HTTP_CIBA_ZONE_FULL:
        return ngx_http_ciba_zone_full(r, ctx);

    default:
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->handle.digest, digest, 32);
    ngx_memcpy(ctx->handle.subject, ctx->subject_key, 32);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: no pending approval: asking the human");

    rc = ngx_http_ciba_as_request(r, cicf, ctx, NGX_HTTP_CIBA_STEP_BC);

    if (rc != NGX_AGAIN) {
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_DONE, 0);
    }

    return rc;
}


static ngx_int_t
ngx_http_ciba_continue(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_http_ciba_pending_t *p)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: a pending approval, state %ui", p->state);

    switch (p->state) {

    case NGX_HTTP_CIBA_PENDING_REQUESTING:
        /* another request is asking the AS right now */
        ctx->retry_after = 1;
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING, "requesting");

    case NGX_HTTP_CIBA_PENDING_DENIED:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_DENIED, "access_denied");

    case NGX_HTTP_CIBA_PENDING_EXPIRED:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED,
                                 "expired_token");
    }

    ctx->handle_str = p->handle;
    ctx->handle.auth_req_id = p->auth_req_id;
    ctx->handle.expire = p->expire;
    ctx->handle.interval = p->interval;
    ctx->handle.mode = p->mode;

    return ngx_http_ciba_poll(r, cicf, ctx);
}


static ngx_int_t
ngx_http_ciba_poll(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx)
{
    time_t                      now, interval;
    int64_t                     next;
    u_char                      record[32];
    ngx_int_t                   rc;
    ngx_str_t                   token;
    ngx_http_ciba_pending_t     p;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);
    now = ngx_time();

    ctx->interval = ctx->handle.interval;
    ctx->expires_in = ctx->handle.expire - now;

    if (ngx_http_ciba_request_ref(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* an approval used already is refused here, without asking the AS */

    if (ngx_http_ciba_areq_record(ctx, record) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_ciba_store_seen(cimcf->shm_zone, record);

    if (rc == NGX_BUSY) {
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_REPLAYED,
                                 "auth_req_id_replayed");
    }

    if (rc == NGX_ABORT) {
        /* redeemed, and the tokens were refused by this gateway */
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_MISCONFIGURED,
                                 "as_token_refused");
    }

    /*
     * tokens kept for this approval: pushed by the AS (push mode), or
     * fetched by a token request whose client went away (any mode)
     */

    rc = ngx_http_ciba_pushed_take(cimcf->shm_zone, &ctx->handle.auth_req_id,
                                   r->pool, &token);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        return ngx_http_ciba_tokens(r, cicf, ctx, &token);
    }

    if (ctx->handle.mode == NGX_HTTP_CIBA_MODE_PUSH) {

        /* push: the tokens come to the callback; the AS is never polled */

        ctx->retry_after = ctx->handle.interval;
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING,
                                 "authorization_pending");
    }

    next = 0;

    rc = ngx_http_ciba_pending_poll(cimcf->shm_zone, ctx->pending_key,
                                    &ctx->handle.auth_req_id, &next,
                                    &interval);

    if (rc == NGX_ABORT) {
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED, "stale_handle");
    }

    if (rc == NGX_OK || rc == NGX_BUSY) {
        /* the interval may have grown (slow_down) since the handle */
        ctx->handle.interval = interval;
        ctx->interval = interval;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ciba: poll: %s, next at %L ms",
                   (rc == NGX_OK) ? "due" : (rc == NGX_BUSY) ? "not yet"
                                                             : "no record",
                   next);

    if (rc == NGX_BUSY) {
        /*
         * Retry-After: when the next poll is allowed, rounded up; in ping
         * mode, the ping may come any time: retry at the interval
         */
        ctx->next_poll = next;
        ctx->retry_after = ngx_http_ciba_secs_until(next);

        if (ctx->handle.mode == NGX_HTTP_CIBA_MODE_PING) {
            ctx->retry_after = ngx_min(ctx->retry_after, interval);
        }

        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING, "not_yet");
    }

    if (rc == NGX_DECLINED) {

        /*
         * a handle this instance has no record of (another instance
         * issued it, or nginx restarted): adopt it, so that polls are
         * still paced by the interval here; unless it was redeemed since
         * the check above (its pending record goes after it is marked
         * used)
         */

        rc = ngx_http_ciba_store_seen(cimcf->shm_zone, record);

        if (rc == NGX_BUSY) {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_REPLAYED,
                                     "auth_req_id_replayed");
        }

        if (rc == NGX_ABORT) {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_MISCONFIGURED,
                                     "as_token_refused");
        }

        rc = ngx_http_ciba_pending_begin(cimcf->shm_zone, ctx->pending_key,
                                         ctx->subject_key, cicf->max_pending,
                                         ctx->handle.expire,
                                         r->connection->log);
        if (rc == NGX_BUSY) {
            ctx->retry_after = 1;
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING,
                                     "requesting");
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_RATE_LIMITED,
                                     "too_many_pending");
        }

        if (rc != NGX_OK) {
            return ngx_http_ciba_zone_full(r, ctx);
        }

        ngx_memzero(&p, sizeof(ngx_http_ciba_pending_t));

        p.state = NGX_HTTP_CIBA_PENDING_WAITING;
        p.expire = ctx->handle.expire;
        p.next_poll = ngx_http_ciba_now_ms() + 1000 * ctx->handle.interval;
        p.interval = ctx->handle.interval;
        p.mode = ctx->handle.mode;
        p.handle = ctx->handle_str;
        p.auth_req_id = ctx->handle.auth_req_id;

        rc = ngx_http_ciba_pending_set(cimcf->shm_zone, ctx->pending_key, &p,
                                       r->connection->log);
        if (rc != NGX_OK) {
            return ngx_http_ciba_zone_full(r, ctx);
        }
    }

    return ngx_http_ciba_as_request(r, cicf, ctx, NGX_HTTP_CIBA_STEP_TOKEN);
}


static ngx_int_t
ngx_http_ciba_bc_result(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    time_t                      now, expires_in, interval;
    u_char                      token_hash[32];
    json_t                     *json, *v;
    ngx_int_t                   rc;
    ngx_str_t                   empty;
    ngx_http_ciba_pending_t     p;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);
    now = ngx_time();
    ngx_str_null(&empty);

    json = ngx_http_ciba_as_json(r, ctx);

    if (ctx->as_status != NGX_HTTP_OK || json == NULL) {
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_DONE, 0);
        return ngx_http_ciba_as_error(r, ctx, json, "backchannel");
    }

    v = json_object_get(json, "auth_req_id");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 1024)
    {
        goto bad;
    }

    ctx->handle.auth_req_id.len = json_string_length(v);
    ctx->handle.auth_req_id.data = ngx_pnalloc(r->pool,
                                               ctx->handle.auth_req_id.len);
    if (ctx->handle.auth_req_id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->handle.auth_req_id.data, json_string_value(v),
               ctx->handle.auth_req_id.len);

    v = json_object_get(json, "expires_in");

    if (!json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > 86400)
    {
        goto bad;
    }

    expires_in = (time_t) json_integer_value(v);

    v = json_object_get(json, "interval");

    if (v == NULL) {
        interval = 5;

    } else if (json_is_integer(v) && json_integer_value(v) >= 1
               && json_integer_value(v) <= 3600)
    {
        interval = (time_t) json_integer_value(v);

    } else {
        goto bad;
    }

    ctx->handle.expire = now + expires_in;
    ctx->handle.interval = interval;
    ctx->handle.mode = cicf->delivery;

    if (ngx_http_ciba_request_ref(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_handle_seal(r, ngx_http_ciba_key_of(r), &ctx->handle,
                                  &ctx->handle_str)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&p, sizeof(ngx_http_ciba_pending_t));

    p.state = NGX_HTTP_CIBA_PENDING_WAITING;
    p.expire = ctx->handle.expire;
    p.interval = interval;
    p.mode = cicf->delivery;
    p.handle = ctx->handle_str;
    p.auth_req_id = ctx->handle.auth_req_id;

    /*
     * in ping mode the token endpoint is asked when the ping comes;
     * polling, six times slower, is only a safety net for a lost ping
     */

    p.next_poll = ngx_http_ciba_now_ms()
                  + 1000 * ((cicf->delivery == NGX_HTTP_CIBA_MODE_PING)
                            ? ngx_max(6 * interval, 30) : interval);

    rc = ngx_http_ciba_pending_set(cimcf->shm_zone, ctx->pending_key, &p,
                                   r->connection->log);
    if (rc != NGX_OK) {
        return ngx_http_ciba_zone_full(r, ctx);
    }

    if (cicf->delivery != NGX_HTTP_CIBA_MODE_POLL) {
        if (ngx_http_ciba_store_key(&empty, &ctx->notification_token,
                                    token_hash)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        rc = ngx_http_ciba_notify_set(cimcf->shm_zone,
                                      &ctx->handle.auth_req_id,
                                      ctx->pending_key, token_hash,
                                      ctx->handle.expire,
                                      r->connection->log);
        if (rc != NGX_OK) {
            return ngx_http_ciba_zone_full(r, ctx);
        }
    }

    ctx->interval = interval;
    ctx->expires_in = expires_in;
    ctx->next_poll = p.next_poll;
    ctx->retry_after = interval;

    return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING, "asked");

bad:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ciba: the authorization server's backchannel answer "
                  "lacks a valid auth_req_id, expires_in or interval");

    ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                 NGX_HTTP_CIBA_PENDING_DONE, 0);

    return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE, "as_bad_answer");
}


static ngx_int_t
ngx_http_ciba_token_result(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    json_t                     *json, *v;
    ngx_str_t                   token, error;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    json = ngx_http_ciba_as_json(r, ctx);

    if (ctx->as_status == NGX_HTTP_BAD_REQUEST && json) {
        v = json_object_get(json, "error");

        if (json_is_string(v)) {
            error.data = (u_char *) json_string_value(v);
            error.len = json_string_length(v);

            if (error.len == 21
                && ngx_strncmp(error.data, "authorization_pending", 21) == 0)
            {
                /* the next poll an interval after this answer */
                ngx_http_ciba_pending_update(cimcf->shm_zone,
                                             ctx->pending_key,
                                             NGX_HTTP_CIBA_PENDING_WAITING,
                                             0);

                ctx->next_poll = ngx_http_ciba_now_ms()
                                 + 1000 * ctx->handle.interval;
                ctx->retry_after = ctx->handle.interval;
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING,
                                         "authorization_pending");
            }

            if (error.len == 9
                && ngx_strncmp(error.data, "slow_down", 9) == 0)
            {
                /* CIBA: the interval grows by 5 seconds, for good */
                ctx->handle.interval += 5;
                ctx->interval = ctx->handle.interval;
                ctx->retry_after = ctx->handle.interval;

                ngx_http_ciba_pending_update(cimcf->shm_zone,
                                             ctx->pending_key,
                                             NGX_HTTP_CIBA_PENDING_WAITING,
                                             ctx->handle.interval);

                ctx->next_poll = ngx_http_ciba_now_ms()
                                 + 1000 * ctx->handle.interval;

                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_PENDING,
                                         "slow_down");
            }

            if (error.len == 13
                && ngx_strncmp(error.data, "expired_token", 13) == 0)
            {
                /* a later request without the handle asks anew */
                ngx_http_ciba_pending_update(cimcf->shm_zone,
                                             ctx->pending_key,
                                             NGX_HTTP_CIBA_PENDING_EXPIRED,
                                             0);
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_EXPIRED,
                                         "expired_token");
            }

            if (error.len == 13
                && ngx_strncmp(error.data, "invalid_grant", 13) == 0)
            {
                /*
                 * the AS redeemed this auth_req_id already: remember it,
                 * so that further retries are refused without asking
                 */
                ngx_http_ciba_pending_update(cimcf->shm_zone,
                                             ctx->pending_key,
                                             NGX_HTTP_CIBA_PENDING_DONE, 0);
                (void) ngx_http_ciba_consume_areq(r, cicf, ctx);
                return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_REPLAYED,
                                         "invalid_grant");
            }

            if (ngx_http_ciba_error_in(&error, ngx_http_ciba_denials)) {
                ngx_http_ciba_pending_update(cimcf->shm_zone,
                                             ctx->pending_key,
                                             NGX_HTTP_CIBA_PENDING_DENIED,
                                             0);
                return ngx_http_ciba_as_error(r, ctx, json, "token");
            }
        }
    }

    if (ctx->as_status != NGX_HTTP_OK || json == NULL) {
        /* the poll failed: the next one an interval on */
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_WAITING, 0);
        return ngx_http_ciba_as_error(r, ctx, json, "token");
    }

    v = json_object_get(json, "access_token");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > NGX_HTTP_CIBA_TOKEN_MAX)
    {
        ngx_http_ciba_pending_update(cimcf->shm_zone, ctx->pending_key,
                                     NGX_HTTP_CIBA_PENDING_WAITING, 0);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: the authorization server's token answer "
                      "lacks an access_token");
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE,
                                 "as_bad_answer");
    }

    token.data = (u_char *) json_string_value(v);
    token.len = json_string_length(v);

    return ngx_http_ciba_tokens(r, cicf, ctx, &token);
}


/*
 * An access token for this handle's auth_req_id, from the token endpoint
 * or pushed: validated when keys are configured, then the auth_req_id is
 * consumed once.
 */

static ngx_int_t
ngx_http_ciba_consume_areq(ngx_http_request_t *r,
    ngx_http_ciba_loc_conf_t *cicf, ngx_http_ciba_ctx_t *ctx)
{
    u_char                      record[32];
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    if (ngx_http_ciba_areq_record(ctx, record) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ciba_store_consume(cimcf->shm_zone, record,
                                       ctx->pending_key,
                                       ctx->handle.expire + cicf->leeway + 1,
                                       &ctx->retry_after,
                                       r->connection->log);
}


static void
ngx_http_ciba_mark_refused(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx)
{
    u_char                      record[32];
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    if (ngx_http_ciba_areq_record(ctx, record) == NGX_OK) {
        ngx_http_ciba_store_refused(cimcf->shm_zone, record);
    }
}


/* the key of the single-use record of this approval's auth_req_id */

static ngx_int_t
ngx_http_ciba_areq_record(ngx_http_ciba_ctx_t *ctx, u_char *record)
{
    return ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_AUTH_REQ_ID,
                                  &ctx->handle.auth_req_id, record);
}


static ngx_int_t
ngx_http_ciba_tokens(ngx_http_request_t *r, ngx_http_ciba_loc_conf_t *cicf,
    ngx_http_ciba_ctx_t *ctx, ngx_str_t *token)
{
    ngx_int_t                   rc;
    ngx_http_ciba_token_t       tok;
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    /*
     * the auth_req_id is redeemed: whatever follows, it is done here; its
     * pending record goes and it is marked used in one step, so that a
     * concurrent retry with the handle finds it used instead of asking
     * the AS again
     */

    rc = ngx_http_ciba_consume_areq(r, cicf, ctx);

    if (ctx->handle.mode != NGX_HTTP_CIBA_MODE_POLL) {
        /* the approval is over: no later notification is taken for it */
        ngx_http_ciba_notify_remove(cimcf->shm_zone,
                                    &ctx->handle.auth_req_id);
    }

    if (rc == NGX_OK && cicf->keys) {
        ngx_memzero(&tok, sizeof(ngx_http_ciba_token_t));

        rc = ngx_http_ciba_token_check(r, cicf, ctx, token, &tok,
                                       NGX_HTTP_CIBA_TOKEN_FROM_AS);
        if (rc != NGX_OK) {
            if (rc == NGX_DECLINED) {
                /*
                 * the agent sent no token: the AS's token does not pass
                 * this gateway's own settings (audience, keys, ...), a
                 * configuration problem; the approval is redeemed at the
                 * AS, so this handle is answered so from now on
                 */

                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ciba: the access token the authorization "
                              "server issued for this approval was refused "
                              "by this location's settings: %s; check "
                              "ciba_issuer, ciba_audience, ciba_key_file "
                              "and ciba_algorithms against the "
                              "authorization server's tokens", ctx->reason);

                ngx_http_ciba_mark_refused(r, ctx);

                ctx->outcome = NGX_HTTP_CIBA_MISCONFIGURED;
            }

            return rc;
        }
    }

    switch (rc) {

    case NGX_OK:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_APPROVED,
                                 "approved_by_as");

    case NGX_BUSY:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_REPLAYED,
                                 "auth_req_id_replayed");

    case NGX_HTTP_CIBA_ZONE_FULL:
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE,
                                 "zone_full");

    default:
        return NGX_ERROR;
    }
}


/*
 * Maps an AS error to an answer: the human's refusals to approval_denied,
 * the AS's complaints about this client to approval_misconfigured (logged
 * with the AS's error), everything else (no answer, 5xx, redirects, not
 * JSON) to approval_unavailable.
 */

static ngx_int_t
ngx_http_ciba_as_error(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx,
    json_t *json, const char *what)
{
    u_char     *p, *desc;
    size_t      i;
    json_t     *v;
    ngx_str_t   error, text;

    if (ctx->as_too_big) {
        /* logged when the answer came in */
        ctx->retry_after = 5;
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE,
                                 "as_answer_too_large");
    }

    v = json ? json_object_get(json, "error") : NULL;

    if (ctx->as_status < 400 || ctx->as_status >= 500 || !json_is_string(v)) {

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: the authorization server gave no usable "
                      "answer to the %s request (status %ui, %uz bytes)",
                      what, ctx->as_status, ctx->as_body.len);

        ctx->retry_after = 5;

        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE,
                                 ctx->as_status == 0 ? "as_failed"
                                 : ctx->as_status >= 500 ? "as_server_error"
                                 : (ctx->as_status >= 300
                                    && ctx->as_status < 400) ? "as_redirect"
                                 : json ? "as_bad_answer" : "as_not_json");
    }

    error.data = (u_char *) json_string_value(v);
    error.len = json_string_length(v);

    /* the reason carries the AS's error code when it is a plain word */

    p = ngx_pnalloc(r->pool, error.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < error.len && i < 64; i++) {
        if (!((error.data[i] >= 'a' && error.data[i] <= 'z')
              || error.data[i] == '_'))
        {
            break;
        }

        p[i] = error.data[i];
    }

    p[i] = '\0';

    if (i == 0 || i != error.len) {
        p = (u_char *) "as_error";
    }

    /* the AS's own words, escaped and bounded, for the operator */

    v = json_object_get(json, "error_description");

    if (json_is_string(v)) {
        text.data = (u_char *) json_string_value(v);
        text.len = json_string_length(v);

    } else {
        ngx_str_set(&text, "");
    }

    desc = ngx_http_ciba_log_escape(r->pool, &text);
    if (desc == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ciba_error_in(&error, ngx_http_ciba_denials)) {
        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_DENIED, (char *) p);
    }

    if (ngx_http_ciba_error_in(&error, ngx_http_ciba_misconfigs)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ciba: the authorization server refused the %s "
                      "request: \"%s\" (error_description: \"%s\"); "
                      "check the client's configuration", what, p, desc);

        return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_MISCONFIGURED,
                                 (char *) p);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ciba: the authorization server answered the %s request "
                  "with the error \"%s\" (error_description: \"%s\")",
                  what, p, desc);

    ctx->retry_after = 5;

    return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE, (char *) p);
}


static ngx_int_t
ngx_http_ciba_error_in(ngx_str_t *error, const char **set)
{
    for ( /* void */ ; *set; set++) {
        if (error->len == ngx_strlen(*set)
            && ngx_strncmp(error->data, *set, error->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* 503 zone_full, Retry-After: when the zone's earliest record expires */

static ngx_int_t
ngx_http_ciba_zone_full(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx)
{
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    ctx->retry_after = ngx_http_ciba_store_retry_after(cimcf->shm_zone);

    return ngx_http_ciba_set(ctx, NGX_HTTP_CIBA_UNAVAILABLE, "zone_full");
}


static ngx_int_t
ngx_http_ciba_set(ngx_http_ciba_ctx_t *ctx, ngx_http_ciba_outcome_e outcome,
    const char *reason)
{
    ctx->outcome = outcome;
    ctx->reason = reason;

    return (outcome == NGX_HTTP_CIBA_APPROVED) ? NGX_OK : NGX_DECLINED;
}


/* $ciba_request_ref: a reference to the auth_req_id, never the id */

static ngx_int_t
ngx_http_ciba_request_ref(ngx_http_request_t *r, ngx_http_ciba_ctx_t *ctx)
{
    u_char     hash[32];
    ngx_str_t  src;

    if (ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_REQUEST_REF,
                               &ctx->handle.auth_req_id, hash)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    src.data = hash;
    src.len = 12;

    ctx->request_ref.data = ngx_pnalloc(r->pool, 16);
    if (ctx->request_ref.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(&ctx->request_ref, &src);

    return NGX_OK;
}


static u_char *
ngx_http_ciba_key_of(ngx_http_request_t *r)
{
    ngx_http_ciba_main_conf_t  *cimcf;

    cimcf = ngx_http_get_module_main_conf(r, ngx_http_ciba_module);

    if (cimcf->handle_key) {
        return cimcf->handle_key;
    }

    return ngx_http_ciba_store_handle_key(cimcf->shm_zone);
}


char *
ngx_http_ciba_check_flow(ngx_conf_t *cf, ngx_http_ciba_loc_conf_t *cicf)
{
    u_char  *p, *last;

    if (cicf->token_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_backchannel_endpoint\" is set but "
                           "\"ciba_token_endpoint\" is not");
        return NGX_CONF_ERROR;
    }

    if (cicf->login_hint == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_backchannel_endpoint\" is set but "
                           "\"ciba_login_hint\" is not");
        return NGX_CONF_ERROR;
    }

    /* the scope must hold the "openid" word */

    p = cicf->scope.data;
    last = p + cicf->scope.len;

    while (p < last) {
        if ((size_t) (last - p) >= 6 && ngx_strncmp(p, "openid", 6) == 0
            && (p + 6 == last || p[6] == ' '))
        {
            break;
        }

        p = ngx_strlchr(p, last, ' ');
        if (p == NULL) {
            p = last;
            break;
        }

        p++;
    }

    if (p >= last) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_scope\" must contain \"openid\"");
        return NGX_CONF_ERROR;
    }

    if (cicf->pending_status != NGX_HTTP_UNAUTHORIZED
        && cicf->pending_status != NGX_HTTP_FORBIDDEN
        && cicf->pending_status != NGX_HTTP_CONFLICT
        && cicf->pending_status != 428)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_pending_status\" must be 401, 403, 409 "
                           "or 428");
        return NGX_CONF_ERROR;
    }

    if (cicf->max_pending == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ciba_max_pending\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
