
/*
 * ngx_http_ciba_module: single use.
 *
 * A used record says "this token (issuer, jti), or this auth_req_id, was
 * used" until the token could no longer pass the checks anyway; its key
 * is a SHA-256 of (issuer, jti).  A consumption is one step under the
 * zone's lock, so exactly one of concurrent uses through any worker
 * passes.
 */


#include "ngx_http_ciba_zone.h"


/*
 * NGX_BUSY: a live record exists for the token; NGX_ABORT: one, and the
 * token it stands for was refused by this gateway's own settings (see
 * ngx_http_ciba_store_refused()); NGX_OK: none
 */

ngx_int_t
ngx_http_ciba_store_seen(ngx_shm_zone_t *shm_zone, u_char *hash)
{
    ngx_int_t                rc;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, hash);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_USED
        && ngx_http_ciba_record_expire(rec) > ngx_time())
    {
        rc = (rec->state == NGX_HTTP_CIBA_USED_REFUSED) ? NGX_ABORT
                                                        : NGX_BUSY;

    } else {
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Marks a used record: the tokens redeemed for it were refused by this
 * gateway's own settings, so later requests for it are told so.
 */

void
ngx_http_ciba_store_refused(ngx_shm_zone_t *shm_zone, u_char *hash)
{
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, hash);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_USED) {
        rec->state = NGX_HTTP_CIBA_USED_REFUSED;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * Records the use of a token, atomically.  NGX_OK: recorded, the request
 * may pass; NGX_BUSY: already used; NGX_HTTP_CIBA_ZONE_FULL: the zone is
 * full of live records; NGX_ERROR: an internal failure.  With "pending", the
 * pending approval of that key is over: its record goes in the same step,
 * before the mark is made (its room is there for it, and no other request
 * sees the approval neither pending nor used).
 */

ngx_int_t
ngx_http_ciba_store_consume(ngx_shm_zone_t *shm_zone, u_char *hash,
    u_char *pending, time_t expire, time_t *retry_after, ngx_log_t *log)
{
    time_t                   now;
    ngx_int_t                rc;
    ngx_uint_t               count;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    zone = shm_zone->data;
    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_ciba_expire(zone, now, 2);

    if (pending) {
        rec = ngx_http_ciba_lookup(zone->sh, pending);

        if (rec && rec->kind == NGX_HTTP_CIBA_REC_PENDING) {
            ngx_http_ciba_remove(zone, rec);
        }
    }

    rec = ngx_http_ciba_lookup(zone->sh, hash);

    if (rec) {
        if (ngx_http_ciba_record_expire(rec) > now) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_BUSY;
        }

        ngx_http_ciba_remove(zone, rec);
    }

    rec = ngx_http_ciba_insert(zone, hash, expire, NGX_HTTP_CIBA_REC_USED, 0);

    if (rec == NULL) {
        /* make room from expired records only, then try once more */
        ngx_http_ciba_expire(zone, now, 0);
        rec = ngx_http_ciba_insert(zone, hash, expire,
                                   NGX_HTTP_CIBA_REC_USED, 0);
    }

    rc = rec ? NGX_OK : NGX_HTTP_CIBA_ZONE_FULL;

    count = zone->sh->count;

    if (rc == NGX_HTTP_CIBA_ZONE_FULL) {
        *retry_after = ngx_http_ciba_room_in(zone, now);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_HTTP_CIBA_ZONE_FULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ciba: zone \"%V\" is full of live single-use "
                      "records (%ui), the approval is refused",
                      &shm_zone->shm.name, count);
    }

    return rc;
}
