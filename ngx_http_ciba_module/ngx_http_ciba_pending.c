
/*
 * ngx_http_ciba_module: the records of approvals in progress.
 *
 * A pending approval is keyed by SHA-256(prefix NUL subject NUL digest):
 * one per subject and action; it holds the handle and the auth_req_id the
 * AS gave, the polling interval and when the next poll is due (in ms),
 * and whether a poll is in flight.  A subject's live pending approvals
 * are counted in a record of their own (ciba_max_pending).  Ping mode
 * keeps the notification token's hash per auth_req_id; push mode keeps
 * the pushed access token until a retry takes it, once.
 */


#include "ngx_http_ciba_zone.h"

#include <openssl/crypto.h>


static ngx_int_t ngx_http_ciba_store_put(ngx_shm_zone_t *shm_zone,
    const char *prefix, ngx_str_t *id, ngx_uint_t kind, u_char *data,
    size_t len, time_t expire, ngx_uint_t replace, ngx_log_t *log);


ngx_int_t
ngx_http_ciba_pending_key(ngx_str_t *subject, ngx_str_t *digest, u_char *key,
    u_char *subject_key)
{
    ngx_str_t  prefix;

    ngx_str_set(&prefix, NGX_HTTP_CIBA_KEY_PENDING);

    /* two ids after the prefix: ngx_http_ciba_zone_key() takes one */

    if (digest
        && ngx_http_ciba_store_key2(&prefix, subject, digest, key) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_SUBJECT, subject,
                                  subject_key);
}


ngx_int_t
ngx_http_ciba_pending_get(ngx_shm_zone_t *shm_zone, u_char *key,
    ngx_pool_t *pool, ngx_http_ciba_pending_t *p)
{
    u_char                        *data;
    ngx_int_t                      rc;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec;
    ngx_http_ciba_pending_data_t  *pd;

    zone = shm_zone->data;

    ngx_memzero(p, sizeof(ngx_http_ciba_pending_t));

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec == NULL || rec->kind != NGX_HTTP_CIBA_REC_PENDING
        || ngx_http_ciba_record_expire(rec) <= ngx_time())
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->d.data;

    p->state = rec->state;
    p->expire = pd->approval_expire;
    p->next_poll = pd->next_poll;
    p->interval = pd->interval;
    p->mode = pd->mode;

    rc = NGX_OK;

    data = ngx_pnalloc(pool, pd->handle_len + pd->areq_len + pd->token_len
                             + 1);
    if (data == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    p->handle.data = data;
    p->handle.len = pd->handle_len;
    p->auth_req_id.data = data + pd->handle_len;
    p->auth_req_id.len = pd->areq_len;
    p->token.data = data + pd->handle_len + pd->areq_len;
    p->token.len = pd->token_len;

    ngx_memcpy(data, rec->d.data + sizeof(ngx_http_ciba_pending_data_t),
               pd->handle_len + pd->areq_len + pd->token_len);

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Starts a pending approval, atomically: NGX_OK, the caller asks the AS;
 * NGX_BUSY, one exists already (ask again with _get); NGX_DECLINED, the
 * subject has "max" live ones; NGX_HTTP_CIBA_ZONE_FULL, no room.
 */

ngx_int_t
ngx_http_ciba_pending_begin(ngx_shm_zone_t *shm_zone, u_char *key,
    u_char *subject, ngx_uint_t max, time_t expire, ngx_log_t *log)
{
    time_t                         now;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec, *counter;
    ngx_http_ciba_pending_data_t  *pd;

    zone = shm_zone->data;
    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_ciba_expire(zone, now, 2);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_PENDING) {
        if (ngx_http_ciba_record_expire(rec) > now) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_BUSY;
        }

        ngx_http_ciba_remove(zone, rec);
    }

    counter = ngx_http_ciba_lookup(zone->sh, subject);

    if (counter && counter->u.count >= max) {

        /* approvals that expired but are still in the zone do not count */

        ngx_http_ciba_expire(zone, now, 0);

        counter = ngx_http_ciba_lookup(zone->sh, subject);

        if (counter && counter->u.count >= max) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_DECLINED;
        }
    }

    if (counter == NULL) {
        counter = ngx_http_ciba_insert(zone, subject, 0,
                                       NGX_HTTP_CIBA_REC_COUNT, 0);
        if (counter == NULL) {
            ngx_http_ciba_expire(zone, now, 0);
            counter = ngx_http_ciba_insert(zone, subject, 0,
                                           NGX_HTTP_CIBA_REC_COUNT, 0);
        }

        if (counter == NULL) {
            goto full;
        }
    }

    /*
     * counted before the room is made: expiring the subject's last
     * approvals must not remove the counter this approval goes on
     */
    counter->u.count++;

    rec = ngx_http_ciba_insert(zone, key, expire, NGX_HTTP_CIBA_REC_PENDING,
                               NGX_HTTP_CIBA_PENDING_ROOM);
    if (rec == NULL) {
        ngx_http_ciba_expire(zone, now, 0);
        rec = ngx_http_ciba_insert(zone, key, expire,
                                   NGX_HTTP_CIBA_REC_PENDING,
                                   NGX_HTTP_CIBA_PENDING_ROOM);
    }

    if (rec == NULL) {
        if (--counter->u.count == 0) {
            ngx_http_ciba_remove(zone, counter);
        }

        goto full;
    }

    rec->state = NGX_HTTP_CIBA_PENDING_REQUESTING;

    pd = (ngx_http_ciba_pending_data_t *) rec->d.data;
    ngx_memzero(pd, sizeof(ngx_http_ciba_pending_data_t));
    ngx_memcpy(pd->subject, subject, 32);
    pd->approval_expire = expire;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;

full:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "ciba: zone \"%V\" is full, no room for a pending "
                  "approval", &shm_zone->shm.name);

    return NGX_HTTP_CIBA_ZONE_FULL;
}


/* stores what the AS answered for a pending approval */

ngx_int_t
ngx_http_ciba_pending_set(ngx_shm_zone_t *shm_zone, u_char *key,
    ngx_http_ciba_pending_t *p, ngx_log_t *log)
{
    u_char                        *d;
    size_t                         len;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec, *old;
    ngx_http_ciba_pending_data_t  *pd, *opd;

    zone = shm_zone->data;

    if (p->handle.len > 4096 || p->auth_req_id.len > 1024
        || p->token.len > 16384)
    {
        return NGX_ERROR;
    }

    len = sizeof(ngx_http_ciba_pending_data_t) + p->handle.len
          + p->auth_req_id.len + p->token.len;

    ngx_shmtx_lock(&zone->shpool->mutex);

    old = ngx_http_ciba_lookup(zone->sh, key);

    if (old == NULL || old->kind != NGX_HTTP_CIBA_REC_PENDING) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    opd = (ngx_http_ciba_pending_data_t *) old->d.data;

    if (len <= old->len) {

        /* it fits (nearly always: see NGX_HTTP_CIBA_PENDING_ROOM) */

        rec = old;

        ngx_http_ciba_set_expire(zone, rec, p->expire);

        goto fill;
    }

    /* a larger record takes the old one's place, and its count */

    old->kind = NGX_HTTP_CIBA_REC_USED;
    ngx_rbtree_delete(&zone->sh->rbtree, &old->node);

    rec = ngx_http_ciba_insert(zone, key, p->expire,
                               NGX_HTTP_CIBA_REC_PENDING, len);

    if (rec == NULL) {
        /* give the old record back its place, then remove it properly */
        ngx_rbtree_insert(&zone->sh->rbtree, &old->node);
        old->kind = NGX_HTTP_CIBA_REC_PENDING;
        ngx_http_ciba_remove(zone, old);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ciba: zone \"%V\" is full, no room for a pending "
                      "approval", &shm_zone->shm.name);
        return NGX_HTTP_CIBA_ZONE_FULL;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->d.data;
    ngx_memcpy(pd->subject, opd->subject, 32);

    /* the old record leaves without touching the count */
    ngx_rbtree_delete(&zone->sh->expiry, &old->u.expiry);
    ngx_slab_free_locked(zone->shpool, old);
    zone->sh->count--;

fill:

    rec->state = (u_char) p->state;

    pd = (ngx_http_ciba_pending_data_t *) rec->d.data;
    pd->approval_expire = p->expire;
    pd->next_poll = p->next_poll;
    pd->in_flight = 0;
    pd->interval = p->interval;
    pd->mode = (u_char) p->mode;
    pd->handle_len = (u_short) p->handle.len;
    pd->areq_len = (u_short) p->auth_req_id.len;
    pd->token_len = (u_short) p->token.len;

    d = rec->d.data + sizeof(ngx_http_ciba_pending_data_t);
    d = ngx_cpymem(d, p->handle.data, p->handle.len);
    d = ngx_cpymem(d, p->auth_req_id.data, p->auth_req_id.len);

    /* most have no token: memcpy() from NULL is undefined, even of 0 */
    if (p->token.len) {
        ngx_memcpy(d, p->token.data, p->token.len);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


/*
 * Claims the right to ask the token endpoint now: NGX_OK, and the next
 * poll is due an interval later; NGX_BUSY, not yet (*next says when);
 * NGX_DECLINED, no such pending approval.  A claimed poll holds the
 * approval until its answer comes (ngx_http_ciba_pending_update()), or
 * for NGX_HTTP_CIBA_POLL_IN_FLIGHT at most (a worker that died with it),
 * so that never two token requests for one auth_req_id are in flight.
 */

ngx_int_t
ngx_http_ciba_pending_poll(ngx_shm_zone_t *shm_zone, u_char *key,
    ngx_str_t *auth_req_id, int64_t *next, time_t *interval)
{
    time_t                         now;
    int64_t                        now_ms;
    ngx_int_t                      rc;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec;
    ngx_http_ciba_pending_data_t  *pd;

    zone = shm_zone->data;
    now = ngx_time();
    now_ms = ngx_http_ciba_now_ms();

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec == NULL || rec->kind != NGX_HTTP_CIBA_REC_PENDING
        || ngx_http_ciba_record_expire(rec) <= now)
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->d.data;

    /* a handle of an older approval for the same request is stale */

    if (pd->areq_len != auth_req_id->len
        || ngx_memcmp(rec->d.data + sizeof(ngx_http_ciba_pending_data_t)
                      + pd->handle_len,
                      auth_req_id->data, auth_req_id->len)
           != 0)
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_ABORT;
    }

    if ((rec->state == NGX_HTTP_CIBA_PENDING_READY
         || now_ms >= pd->next_poll)
        && now_ms >= pd->in_flight)
    {
        /*
         * held an interval from now while the token request is in flight;
         * its answer sets the next poll an interval after it came
         * (ngx_http_ciba_pending_update()); in ping mode, polling is only
         * a safety net for a lost ping
         */

        pd->next_poll = now_ms
                        + 1000 * ((pd->mode == NGX_HTTP_CIBA_MODE_PING)
                                  ? ngx_max(6 * pd->interval, 30)
                                  : pd->interval);
        pd->in_flight = now_ms + NGX_HTTP_CIBA_POLL_IN_FLIGHT;
        rec->state = NGX_HTTP_CIBA_PENDING_WAITING;
        rc = NGX_OK;

        *next = pd->next_poll;

    } else {
        rc = NGX_BUSY;

        *next = pd->next_poll;

        /* a poll in flight past its time: ask again an interval on */

        if (now_ms < pd->in_flight && *next <= now_ms) {
            *next = now_ms + 1000 * ngx_max(pd->interval, 1);
        }
    }

    *interval = pd->interval;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Updates a pending approval's state, ending a poll in flight: "interval"
 * (when not 0) replaces the polling interval; NGX_HTTP_CIBA_PENDING_WAITING
 * (the token endpoint said "not yet", or failed) sets the next poll an
 * interval from now, that is from when that answer came;
 * NGX_HTTP_CIBA_PENDING_DONE removes the record.
 */

void
ngx_http_ciba_pending_update(ngx_shm_zone_t *shm_zone, u_char *key,
    ngx_uint_t state, time_t interval)
{
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec;
    ngx_http_ciba_pending_data_t  *pd;

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_PENDING) {

        if (state == NGX_HTTP_CIBA_PENDING_DONE) {
            ngx_http_ciba_remove(zone, rec);

        } else {
            /* a ping that came while the poll was in flight stands */

            if (state != NGX_HTTP_CIBA_PENDING_WAITING
                || rec->state != NGX_HTTP_CIBA_PENDING_READY)
            {
                rec->state = (u_char) state;
            }

            pd = (ngx_http_ciba_pending_data_t *) rec->d.data;
            pd->in_flight = 0;

            if (interval) {
                pd->interval = interval;
            }

            if (state == NGX_HTTP_CIBA_PENDING_WAITING
                && pd->mode == NGX_HTTP_CIBA_MODE_POLL)
            {
                pd->next_poll = ngx_http_ciba_now_ms() + 1000 * pd->interval;
            }
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* gives up a placeholder whose request ended before the AS answered */

void
ngx_http_ciba_pending_abandon(ngx_shm_zone_t *shm_zone, u_char *key)
{
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_PENDING
        && rec->state == NGX_HTTP_CIBA_PENDING_REQUESTING)
    {
        ngx_http_ciba_remove(zone, rec);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * Ping mode: the AS's ping for an auth_req_id, authenticated by the
 * client_notification_token sent with the backchannel request, makes the
 * pending approval ready to be fetched at once.  Only a SHA-256 of the
 * notification token is kept, compared in constant time.
 */

ngx_int_t
ngx_http_ciba_notify_set(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    u_char *pending_key, u_char *token_hash, time_t expire, ngx_log_t *log)
{
    u_char  data[64];

    ngx_memcpy(data, pending_key, 32);
    ngx_memcpy(data + 32, token_hash, 32);

    return ngx_http_ciba_store_put(shm_zone, NGX_HTTP_CIBA_KEY_NOTIFY,
                                   auth_req_id, NGX_HTTP_CIBA_REC_NOTIFY,
                                   data, 64, expire, 1, log);
}


/* NGX_OK: a ping with the right token, the approval is ready */

ngx_int_t
ngx_http_ciba_notify_ping(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    ngx_str_t *token, u_char *pending_key)
{
    u_char                         key[32], hash[32];
    ngx_int_t                      rc;
    ngx_str_t                      empty;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec, *pending;
    ngx_http_ciba_pending_data_t  *pd;

    ngx_str_null(&empty);

    if (ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_NOTIFY, auth_req_id, key)
        != NGX_OK
        || ngx_http_ciba_store_key(&empty, token, hash) != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone = shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_NOTIFY
        && ngx_http_ciba_record_expire(rec) > ngx_time()
        && CRYPTO_memcmp(rec->d.data + 32, hash, 32) == 0)
    {
        ngx_memcpy(pending_key, rec->d.data, 32);

        pending = ngx_http_ciba_lookup(zone->sh, rec->d.data);

        if (pending && pending->kind == NGX_HTTP_CIBA_REC_PENDING) {
            pd = (ngx_http_ciba_pending_data_t *) pending->d.data;

            /* only the approval this notification is for, not a newer one */

            if (pd->areq_len == auth_req_id->len
                && ngx_memcmp(pending->d.data
                              + sizeof(ngx_http_ciba_pending_data_t)
                              + pd->handle_len,
                              auth_req_id->data, auth_req_id->len)
                   == 0)
            {
                if (pending->state == NGX_HTTP_CIBA_PENDING_WAITING) {
                    pending->state = NGX_HTTP_CIBA_PENDING_READY;
                }

                rc = NGX_OK;
            }
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


void
ngx_http_ciba_notify_remove(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id)
{
    u_char                   key[32];
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    if (ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_NOTIFY, auth_req_id, key)
        != NGX_OK)
    {
        return;
    }

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_NOTIFY) {
        ngx_http_ciba_remove(zone, rec);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* push mode: the access token pushed for an auth_req_id, taken once */

ngx_int_t
ngx_http_ciba_pushed_put(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    ngx_str_t *token, time_t expire, ngx_log_t *log)
{
    if (token->len == 0 || token->len > NGX_HTTP_CIBA_TOKEN_MAX) {
        return NGX_ERROR;
    }

    /* a second push for the same approval is not taken: NGX_BUSY */

    return ngx_http_ciba_store_put(shm_zone, NGX_HTTP_CIBA_KEY_PUSHED,
                                   auth_req_id, NGX_HTTP_CIBA_REC_PUSHED,
                                   token->data, token->len, expire, 0, log);
}


ngx_int_t
ngx_http_ciba_pushed_take(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    ngx_pool_t *pool, ngx_str_t *token)
{
    u_char                   key[32];
    ngx_int_t                rc;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    if (ngx_http_ciba_zone_key(NGX_HTTP_CIBA_KEY_PUSHED, auth_req_id, key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone = shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_PUSHED && rec->len
        && ngx_http_ciba_record_expire(rec) > ngx_time())
    {
        token->data = ngx_pnalloc(pool, rec->len);

        if (token->data == NULL) {
            rc = NGX_ERROR;

        } else {
            ngx_memcpy(token->data, rec->d.data, rec->len);
            token->len = rec->len;
            rc = NGX_OK;

            /* taken once: the record stays, empty, against a re-push */
            rec->len = 0;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Stores a record of data under SHA-256(prefix NUL id): an existing one
 * is replaced, or (replace off) kept and NGX_BUSY returned;
 * NGX_HTTP_CIBA_ZONE_FULL: no room.
 */

static ngx_int_t
ngx_http_ciba_store_put(ngx_shm_zone_t *shm_zone, const char *prefix,
    ngx_str_t *id, ngx_uint_t kind, u_char *data, size_t len, time_t expire,
    ngx_uint_t replace, ngx_log_t *log)
{
    u_char                   key[32];
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    if (ngx_http_ciba_zone_key(prefix, id, key) != NGX_OK) {
        return NGX_ERROR;
    }

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec) {
        if (!replace) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_BUSY;
        }

        ngx_http_ciba_remove(zone, rec);
    }

    rec = ngx_http_ciba_insert(zone, key, expire, kind, len);
    if (rec) {
        ngx_memcpy(rec->d.data, data, len);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rec == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ciba: zone \"%V\" is full, no room for a "
                      "notification record", &shm_zone->shm.name);
        return NGX_HTTP_CIBA_ZONE_FULL;
    }

    return NGX_OK;
}
