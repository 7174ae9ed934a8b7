
/*
 * Fuzz target: the notification endpoint (ngx_http_ciba_callback.c): the
 * bearer token, the ping body {"auth_req_id": ...}, pushed tokens (the
 * id_token is verified: signature, issuer, audience, time, auth_req_id,
 * at_hash) and pushed errors, against a zone that knows two approvals:
 * "areq-ping" (notification token "ping-token") and "areq-push"
 * ("push-token").
 *
 * Input: one byte, then the Authorization header's value, a newline, and
 * the body (the rest).  The byte:
 *   bit 0     the configuration: with keys, issuer and client (pushed
 *             tokens can be checked) or without (they cannot: 500)
 *   bits 1-2  the body in 1 to 4 buffers
 *
 * Checked: the answer is 204, 400, 401, 500 or 503; a 204 needs the
 * notification token of the approval the body names; pushed tokens are
 * kept only after a 204, and they are the access token of the body.
 */


#include "fuzz_common.h"

/* for ngx_http_ciba_callback_process(), which is static */
#include "../../ngx_http_ciba_module/ngx_http_ciba_callback.c"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static struct {
    const char  *areq;
    const char  *token;
    const char  *action;
    u_char       pending_key[32];
} ngx_http_ciba_fuzz_approvals[] = {
    { "areq-ping", "ping-token", "refund", { 0 } },
    { "areq-push", "push-token", "transfer", { 0 } }
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    u_char                    subject_key[32], hash[32];
    ngx_uint_t                i;
    ngx_str_t                 s, digest, action, areq, token, empty;
    ngx_shm_zone_t           *zone;
    ngx_http_ciba_pending_t   p;

    ngx_http_ciba_fuzz_init();

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone;

    ngx_str_set(&s, NGX_HTTP_CIBA_FUZZ_SUBJECT);
    ngx_str_set(&digest, NGX_HTTP_CIBA_FUZZ_DIGEST);
    ngx_str_null(&empty);

    if (ngx_http_ciba_pending_key(&s, NULL, NULL, subject_key) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_key()");
    }

    s.data = subject_key;
    s.len = 32;

    for (i = 0; i < 2; i++) {
        action.data = (u_char *) ngx_http_ciba_fuzz_approvals[i].action;
        action.len = ngx_strlen(action.data);
        areq.data = (u_char *) ngx_http_ciba_fuzz_approvals[i].areq;
        areq.len = ngx_strlen(areq.data);
        token.data = (u_char *) ngx_http_ciba_fuzz_approvals[i].token;
        token.len = ngx_strlen(token.data);

        if (ngx_http_ciba_store_key2(&digest, &s, &action,
                                     ngx_http_ciba_fuzz_approvals[i]
                                     .pending_key)
            != NGX_OK
            || ngx_http_ciba_pending_begin(zone,
                                           ngx_http_ciba_fuzz_approvals[i]
                                           .pending_key,
                                           subject_key, 5, ngx_time() + 300,
                                           ngx_http_ciba_fuzz_log)
               != NGX_OK)
        {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pending_begin()");
        }

        ngx_memzero(&p, sizeof(ngx_http_ciba_pending_t));

        p.state = NGX_HTTP_CIBA_PENDING_WAITING;
        p.expire = ngx_time() + 300;
        p.next_poll = ngx_http_ciba_now_ms() + 30000;
        p.interval = 5;
        p.mode = i ? NGX_HTTP_CIBA_MODE_PUSH : NGX_HTTP_CIBA_MODE_PING;
        ngx_str_set(&p.handle, "h1.fuzz-handle");
        p.auth_req_id = areq;

        if (ngx_http_ciba_pending_set(zone,
                                      ngx_http_ciba_fuzz_approvals[i]
                                      .pending_key,
                                      &p, ngx_http_ciba_fuzz_log)
            != NGX_OK
            || ngx_http_ciba_store_key(&empty, &token, hash) != NGX_OK
            || ngx_http_ciba_notify_set(zone, &areq,
                                        ngx_http_ciba_fuzz_approvals[i]
                                        .pending_key,
                                        hash, ngx_time() + 300,
                                        ngx_http_ciba_fuzz_log)
               != NGX_OK)
        {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "the records");
        }
    }

    ngx_http_ciba_fuzz_zone_save();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *p, *last, *nl, *q;
    size_t                     i, nbufs, piece;
    json_t                    *json, *v;
    ngx_int_t                  rc;
    ngx_str_t                  auth, body, areq, pushed;
    ngx_buf_t                 *b;
    ngx_uint_t                 status, known;
    ngx_chain_t               *cl, **ll;
    json_error_t               err;
    ngx_table_elt_t           *h;
    ngx_http_request_t        *r;
    ngx_http_ciba_loc_conf_t  *clcf;

    if (size < 1) {
        return 0;
    }

    clcf = ngx_http_ciba_fuzz_confs[(data[0] & 0x01)
                                    ? NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE
                                    : NGX_HTTP_CIBA_FUZZ_CONF_FLOW];
    nbufs = ((data[0] >> 1) & 0x03) + 1;

    ngx_http_ciba_fuzz_zone_restore();

    r = ngx_http_ciba_fuzz_request(clcf);

    p = ngx_http_ciba_fuzz_dup(r->pool, data + 1, size - 1);
    last = p + size - 1;

    nl = ngx_strlchr(p, last, '\n');

    auth.data = p;
    auth.len = (nl ? nl : last) - p;

    body.data = nl ? nl + 1 : last;
    body.len = last - body.data;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_list_push()");
    }

    ngx_str_set(&h->key, "Authorization");
    h->value = auth;
    h->hash = 1;
    r->headers_in.authorization = h;

    /* the body, in pieces, each a buffer of its own */

    r->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (r->request_body == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_pcalloc()");
    }

    ll = &r->request_body->bufs;
    p = body.data;
    piece = body.len / nbufs + 1;

    for (i = 0; i < nbufs && p < last; i++) {
        q = (i == nbufs - 1 || (size_t) (last - p) <= piece) ? last
                                                             : p + piece;

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
        }

        b->pos = ngx_pnalloc(r->pool, q - p);
        if (b->pos == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "alloc");
        }

        ngx_memcpy(b->pos, p, q - p);
        b->last = b->pos + (q - p);
        b->temporary = 1;

        cl->buf = b;
        cl->next = NULL;
        *ll = cl;
        ll = &cl->next;

        p = q;
    }

    r->headers_in.content_length_n = body.len;

    rc = ngx_http_ciba_callback_process(r);

    status = r->header_sent ? r->headers_out.status : (ngx_uint_t) rc;

    ngx_http_ciba_fuzz_trace("callback: %d %s", (int) status,
                             ngx_http_ciba_fuzz_last_error);

    ngx_http_ciba_fuzz_assert(status == NGX_HTTP_NO_CONTENT
                              || status == NGX_HTTP_BAD_REQUEST
                              || status == NGX_HTTP_UNAUTHORIZED
                              || status == NGX_HTTP_INTERNAL_SERVER_ERROR
                              || status == NGX_HTTP_SERVICE_UNAVAILABLE,
                              "an unexpected answer");

    json = json_loadb((char *) body.data, body.len, JSON_ALLOW_NUL, &err);
    v = json_object_get(json, "auth_req_id");

    known = 2;

    if (json_is_string(v)) {
        for (i = 0; i < 2; i++) {
            if (json_string_length(v)
                == ngx_strlen(ngx_http_ciba_fuzz_approvals[i].areq)
                && ngx_memcmp(json_string_value(v),
                              ngx_http_ciba_fuzz_approvals[i].areq,
                              json_string_length(v)) == 0)
            {
                known = i;
            }
        }
    }

    if (status == NGX_HTTP_NO_CONTENT) {
        ngx_http_ciba_fuzz_assert(known < 2,
                                  "a notification for an unknown approval "
                                  "was taken");
        ngx_http_ciba_fuzz_assert(
            auth.len == 7 + ngx_strlen(ngx_http_ciba_fuzz_approvals[known]
                                       .token)
            && ngx_strncasecmp(auth.data, (u_char *) "Bearer ", 7) == 0
            && ngx_memcmp(auth.data + 7,
                          ngx_http_ciba_fuzz_approvals[known].token,
                          auth.len - 7) == 0,
            "a notification with a wrong token was taken");
    }

    /* what the zone holds for either approval now */

    for (i = 0; i < 2; i++) {
        areq.data = (u_char *) ngx_http_ciba_fuzz_approvals[i].areq;
        areq.len = ngx_strlen(areq.data);

        rc = ngx_http_ciba_pushed_take(ngx_http_ciba_fuzz_cmcf->shm_zone,
                                       &areq, r->pool, &pushed);

        if (rc != NGX_OK) {
            continue;
        }

        v = json_object_get(json, "access_token");

        ngx_http_ciba_fuzz_assert(status == NGX_HTTP_NO_CONTENT
                                  && known == i
                                  && json_is_string(v)
                                  && json_string_length(v) == pushed.len
                                  && ngx_memcmp(json_string_value(v),
                                                pushed.data, pushed.len)
                                     == 0,
                                  "a pushed token was kept that is not "
                                  "this notification's access token");
    }

    json_decref(json);

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
