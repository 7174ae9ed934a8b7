
/*
 * Fuzz target: the authorization server's answers, as the module reads
 * them after its subrequest (ngx_http_ciba_approval() with the answer in
 * the context): the backchannel authentication answer (auth_req_id,
 * expires_in, interval; the handle sealed and the pending approval and
 * notification records stored) and the token endpoint's answer (errors:
 * authorization_pending, slow_down, expired_token, invalid_grant, the
 * denials and complaints; an access token: validated when keys are
 * configured, then the auth_req_id consumed once).
 *
 * Input: one byte, then the answer's body.  The byte:
 *   bit 0     0: the backchannel answer; 1: the token endpoint's
 *   bits 1-2  the delivery mode (poll, ping, push, poll)
 *   bit 3     the configuration: with keys (tokens are checked) or
 *             without (opaque tokens)
 *   bits 4-7  the answer's status (a table: 200, 400, 401, 403, 500, ...)
 *
 * Checked: the answer is NGX_OK or NGX_DECLINED, with a reason; only a
 * 200 from the token endpoint approves; a backchannel answer that leaves
 * the approval pending gives a handle that opens, with the AS's
 * auth_req_id and values in range; the module's answer to the agent
 * (ngx_http_ciba_answer()) is a JSON object with the error and reason,
 * and never holds the access token the AS gave.
 */


#include "fuzz_common.h"


#define NGX_HTTP_CIBA_FUZZ_AREQ  "areq-fuzz-1"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_uint_t  ngx_http_ciba_fuzz_statuses[16] = {
    200, 400, 401, 403, 500, 502, 503, 0, 301, 404, 429, 201, 204, 400,
    400, 200
};

/* the configurations, per delivery mode; with keys and without */
static ngx_http_ciba_loc_conf_t  ngx_http_ciba_fuzz_flow[2][3];

/* the pending approvals of the two steps (different actions) */
static u_char  ngx_http_ciba_fuzz_subject_key[32];
static u_char  ngx_http_ciba_fuzz_bc_key[32];
static u_char  ngx_http_ciba_fuzz_token_key[32];
static u_char  ngx_http_ciba_fuzz_digest[32];


static void
ngx_http_ciba_fuzz_keys_of(ngx_str_t *action, u_char *pending_key)
{
    ngx_str_t  digest, subject;

    ngx_str_set(&digest, NGX_HTTP_CIBA_FUZZ_DIGEST);

    subject.data = ngx_http_ciba_fuzz_subject_key;
    subject.len = 32;

    if (ngx_http_ciba_store_key2(&digest, &subject, action, pending_key)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "store_key2()");
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    u_char                    hash[32];
    ngx_uint_t                i, j;
    ngx_str_t                 s, action, token, areq, empty;
    ngx_shm_zone_t           *zone;
    ngx_http_ciba_pending_t   p;
    ngx_http_ciba_loc_conf_t *base;

    ngx_http_ciba_fuzz_init();

    for (i = 0; i < 2; i++) {
        base = ngx_http_ciba_fuzz_confs[i ? NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE
                                          : NGX_HTTP_CIBA_FUZZ_CONF_FLOW];

        for (j = 0; j < 3; j++) {
            ngx_http_ciba_fuzz_flow[i][j] = *base;
            ngx_http_ciba_fuzz_flow[i][j].delivery = j;
        }
    }

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone;

    ngx_str_set(&s, NGX_HTTP_CIBA_FUZZ_SUBJECT);

    if (ngx_http_ciba_pending_key(&s, NULL, NULL,
                                  ngx_http_ciba_fuzz_subject_key)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_key()");
    }

    ngx_str_set(&s, NGX_HTTP_CIBA_FUZZ_DIGEST);
    ngx_str_set(&empty, "");
    token.data = ngx_http_ciba_fuzz_digest;

    if (ngx_decode_base64url(&token, &s) != NGX_OK || token.len != 32) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "the digest");
    }

    /* the backchannel step: a placeholder, as approval_start() leaves */

    ngx_str_set(&action, "transfer");
    ngx_http_ciba_fuzz_keys_of(&action, ngx_http_ciba_fuzz_bc_key);

    if (ngx_http_ciba_pending_begin(zone, ngx_http_ciba_fuzz_bc_key,
                                    ngx_http_ciba_fuzz_subject_key, 5,
                                    ngx_time() + 60, ngx_http_ciba_fuzz_log)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_begin()");
    }

    /* the token step: an approval the AS accepted, and its notification */

    ngx_str_set(&action, NGX_HTTP_CIBA_FUZZ_ACTION);
    ngx_http_ciba_fuzz_keys_of(&action, ngx_http_ciba_fuzz_token_key);

    if (ngx_http_ciba_pending_begin(zone, ngx_http_ciba_fuzz_token_key,
                                    ngx_http_ciba_fuzz_subject_key, 5,
                                    ngx_time() + 300, ngx_http_ciba_fuzz_log)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_begin()");
    }

    ngx_memzero(&p, sizeof(ngx_http_ciba_pending_t));

    p.state = NGX_HTTP_CIBA_PENDING_WAITING;
    p.expire = ngx_time() + 300;
    p.next_poll = ngx_http_ciba_now_ms();
    p.interval = 5;
    p.mode = NGX_HTTP_CIBA_MODE_POLL;
    ngx_str_set(&p.handle, "h1.fuzz-handle");
    ngx_str_set(&p.auth_req_id, NGX_HTTP_CIBA_FUZZ_AREQ);

    if (ngx_http_ciba_pending_set(zone, ngx_http_ciba_fuzz_token_key, &p,
                                  ngx_http_ciba_fuzz_log)
        != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_set()");
    }

    ngx_str_set(&token, "fuzz-notification-token");
    ngx_str_set(&areq, NGX_HTTP_CIBA_FUZZ_AREQ);

    if (ngx_http_ciba_store_key(&empty, &token, hash) != NGX_OK
        || ngx_http_ciba_notify_set(zone, &areq,
                                    ngx_http_ciba_fuzz_token_key, hash,
                                    ngx_time() + 300, ngx_http_ciba_fuzz_log)
           != NGX_OK)
    {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "notify_set()");
    }

    ngx_http_ciba_fuzz_zone_save();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                      *dump;
    json_t                    *json, *v;
    ngx_int_t                  rc;
    ngx_uint_t                 step, delivery, opaque, status;
    json_error_t               err;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_pending_t    p;
    ngx_http_ciba_handle_t     h;
    ngx_http_ciba_loc_conf_t  *clcf;

    if (size < 1) {
        return 0;
    }

    step = (data[0] & 0x01) ? NGX_HTTP_CIBA_STEP_TOKEN
                            : NGX_HTTP_CIBA_STEP_BC;
    delivery = ((data[0] >> 1) & 0x03) % 3;
    opaque = (data[0] >> 3) & 0x01;
    status = ngx_http_ciba_fuzz_statuses[data[0] >> 4];

    clcf = &ngx_http_ciba_fuzz_flow[opaque][delivery];

    ngx_http_ciba_fuzz_zone_restore();

    r = ngx_http_ciba_fuzz_request(clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    /* the context as the request that asked the AS left it */

    ctx->login_hint = ctx->subject;
    ctx->zone = ngx_http_ciba_fuzz_cmcf->shm_zone;
    ngx_memcpy(ctx->subject_key, ngx_http_ciba_fuzz_subject_key, 32);
    ngx_memcpy(ctx->handle.digest, ngx_http_ciba_fuzz_digest, 32);
    ngx_memcpy(ctx->handle.subject, ngx_http_ciba_fuzz_subject_key, 32);

    if (step == NGX_HTTP_CIBA_STEP_BC) {
        ngx_str_set(&ctx->action, "transfer");
        ngx_memcpy(ctx->pending_key, ngx_http_ciba_fuzz_bc_key, 32);

        if (delivery != NGX_HTTP_CIBA_MODE_POLL) {
            ngx_str_set(&ctx->notification_token, "fuzz-notification-token");
        }

    } else {
        ngx_memcpy(ctx->pending_key, ngx_http_ciba_fuzz_token_key, 32);
        ngx_str_set(&ctx->handle.auth_req_id, NGX_HTTP_CIBA_FUZZ_AREQ);
        ngx_str_set(&ctx->handle_str, "h1.fuzz-handle");
        ctx->handle.expire = ngx_time() + 300;
        ctx->handle.interval = 5;
        ctx->handle.mode = delivery;
    }

    ctx->step = step;
    ctx->as_done = 1;
    ctx->as_status = status;

    /* the fuzzer's own buffer: any read past it is seen */
    ctx->as_body.data = (u_char *) data + 1;
    ctx->as_body.len = size - 1;

    rc = ngx_http_ciba_approval(r, clcf, ctx, NULL);

    ngx_http_ciba_fuzz_trace("approval: %d outcome %d %s", (int) rc,
                             (int) ctx->outcome,
                             ctx->reason ? ctx->reason : "-");

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "approval: neither NGX_OK nor NGX_DECLINED");
    ngx_http_ciba_fuzz_assert(ctx->reason != NULL, "no reason");
    ngx_http_ciba_fuzz_assert((rc == NGX_OK)
                              == (ctx->outcome == NGX_HTTP_CIBA_APPROVED),
                              "NGX_OK and the outcome disagree");

    if (rc == NGX_OK) {
        ngx_http_ciba_fuzz_assert(step == NGX_HTTP_CIBA_STEP_TOKEN
                                  && status == NGX_HTTP_OK,
                                  "approved without a 200 from the token "
                                  "endpoint");
    }

    if (step == NGX_HTTP_CIBA_STEP_BC
        && ctx->outcome == NGX_HTTP_CIBA_PENDING)
    {
        ngx_http_ciba_fuzz_assert(status == NGX_HTTP_OK,
                                  "pending without a 200 backchannel "
                                  "answer");

        json = json_loadb((char *) data + 1, size - 1, JSON_ALLOW_NUL,
                          &err);
        v = json_object_get(json, "auth_req_id");

        ngx_http_ciba_fuzz_assert(json_is_string(v), "no auth_req_id");

        ngx_memzero(&h, sizeof(ngx_http_ciba_handle_t));

        ngx_http_ciba_fuzz_assert(
            ngx_http_ciba_handle_open(r, ngx_http_ciba_fuzz_cmcf->handle_key,
                                      &ctx->handle_str, &h)
            == NGX_OK
            && h.auth_req_id.len == json_string_length(v)
            && ngx_memcmp(h.auth_req_id.data, json_string_value(v),
                          h.auth_req_id.len) == 0
            && h.mode == delivery
            && ngx_memcmp(h.digest, ngx_http_ciba_fuzz_digest, 32) == 0,
            "the handle given does not open to this approval");

        ngx_http_ciba_fuzz_assert(ctx->expires_in >= 1
                                  && ctx->expires_in <= 86400
                                  && ctx->interval >= 1
                                  && ctx->interval <= 3600,
                                  "expires_in or interval out of range");

        json_decref(json);
    }

    /* the answer to the agent */

    if (rc == NGX_DECLINED) {
        rc = ngx_http_ciba_answer(r, ctx);

        ngx_http_ciba_fuzz_assert(rc == NGX_OK && r->header_sent,
                                  "no answer sent");
        ngx_http_ciba_fuzz_assert(r->headers_out.status >= 400,
                                  "a refusal answered below 400");

        json = json_loadb((char *) ngx_http_ciba_fuzz_sent.data,
                          ngx_http_ciba_fuzz_sent.len, 0, &err);

        ngx_http_ciba_fuzz_assert(json_is_object(json)
                                  && json_is_string(json_object_get(json,
                                                                   "error"))
                                  && json_is_string(json_object_get(json,
                                                                   "reason")),
                                  "the answer is no JSON object with an "
                                  "error and a reason");

        /* the members but the words of the module and the AS's error */

        json_object_del(json, "error");
        json_object_del(json, "error_description");
        json_object_del(json, "reason");

        dump = json_dumps(json, JSON_COMPACT);
        json_decref(json);

        if (dump == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "json_dumps()");
        }

        json = json_loadb((char *) data + 1, size - 1, JSON_ALLOW_NUL,
                          &err);
        v = json_object_get(json, "access_token");

        if (json_is_string(v) && json_string_length(v) >= 8) {
            ngx_http_ciba_fuzz_assert(memmem(dump, strlen(dump),
                                             json_string_value(v),
                                             json_string_length(v))
                                      == NULL,
                                      "the answer holds the access token");
        }

        free(dump);
        json_decref(json);
    }

    /* the records are still sound */
    (void) ngx_http_ciba_pending_get(ngx_http_ciba_fuzz_cmcf->shm_zone,
                                     ctx->pending_key, r->pool, &p);

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
