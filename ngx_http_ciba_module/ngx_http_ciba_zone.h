
/*
 * ngx_http_ciba_module: the shared zone's records, for the files that
 * keep them (ngx_http_ciba_zone.c, ngx_http_ciba_store.c,
 * ngx_http_ciba_pending.c, ngx_http_ciba_state.c) and the store's fuzz
 * target.  Everything here runs under the zone's slab mutex.
 */


#ifndef _NGX_HTTP_CIBA_ZONE_H_INCLUDED_
#define _NGX_HTTP_CIBA_ZONE_H_INCLUDED_


#include "ngx_http_ciba.h"


/*
 * A record: a single-use mark (kind "used", no data), a pending approval
 * (kind "pending", with ngx_http_ciba_pending_data_t and its strings), the
 * count of a subject's live pending approvals (kind "count", never in the
 * expiry index: it goes with the last of them), a ping notification's
 * pending key and token hash (kind "notify"), or a pushed access token
 * (kind "pushed").
 */

#define NGX_HTTP_CIBA_REC_USED     0
#define NGX_HTTP_CIBA_REC_PENDING  1
#define NGX_HTTP_CIBA_REC_COUNT    2
#define NGX_HTTP_CIBA_REC_NOTIFY   3
#define NGX_HTTP_CIBA_REC_PUSHED   4

/* the state of a used record */
#define NGX_HTTP_CIBA_USED_REFUSED 1   /* redeemed, refused by our checks */


/*
 * Records are in two rbtrees: by key (a SHA-256, its first bytes as the
 * node's key) and by expiry time (ties allowed, as nginx's timers), so
 * that finding, adding, removing and expiring a record take O(log n)
 * whatever the order in which records expire.  A counter is never in the
 * expiry tree: its node there holds the count instead.  A used record is
 * 121 bytes (on 64-bit platforms), in the 128-byte slab class.
 */

typedef struct {
    ngx_rbtree_node_t           node;
    union {
        ngx_rbtree_node_t       expiry;     /* key: when it expires */
        ngx_uint_t              count;      /* of a subject's approvals */
    } u;
    u_char                      hash[32];
    u_char                      kind;
    u_char                      state;
    u_short                     len;
    union {
        uint64_t                align;      /* for the pending data */
        u_char                  data[1];
    } d;
} ngx_http_ciba_record_t;


#define ngx_http_ciba_record_size(n)                                         \
    (offsetof(ngx_http_ciba_record_t, d) + (n))

#define ngx_http_ciba_record_expire(rec)                                     \
    ((time_t) (rec)->u.expiry.key)

#define ngx_http_ciba_record_of_expiry(n)                                    \
    ((ngx_http_ciba_record_t *)                                              \
         ((u_char *) (n) - offsetof(ngx_http_ciba_record_t, u.expiry)))


typedef struct {
    int64_t                     next_poll;  /* ms since the epoch */
    int64_t                     in_flight;  /* a poll holds it until then */
    time_t                      interval;
    time_t                      approval_expire;
    u_char                      subject[NGX_HTTP_CIBA_HASH_LEN];
    u_short                     handle_len;
    u_short                     areq_len;
    u_short                     token_len;
    u_char                      mode;
} ngx_http_ciba_pending_data_t;


/*
 * The placeholder of an approval being asked for holds room for what the
 * AS's answer adds (the handle and the auth_req_id, up to about 90 bytes
 * of it): the slab chunk a pending record takes anyway, so that the answer
 * is stored in place and a zone with room to ask has room to keep it.  A
 * longer auth_req_id needs a larger record, which a zone near full may
 * not have: that approval is then given up (503 zone_full).
 */

#define NGX_HTTP_CIBA_PENDING_ROOM                                           \
    (512 - offsetof(ngx_http_ciba_record_t, d))


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_rbtree_t                expiry;
    ngx_rbtree_node_t           expiry_sentinel;
    time_t                      epoch;
    ngx_uint_t                  count;      /* records in the zone */
    u_char                      handle_key[32];
} ngx_http_ciba_shctx_t;


typedef struct {
    ngx_http_ciba_shctx_t      *sh;
    ngx_slab_pool_t            *shpool;
    ngx_str_t                   state_file;
} ngx_http_ciba_zone_t;


ngx_http_ciba_record_t *ngx_http_ciba_lookup(ngx_http_ciba_shctx_t *sh,
    u_char *hash);
ngx_http_ciba_record_t *ngx_http_ciba_insert(ngx_http_ciba_zone_t *zone,
    u_char *hash, time_t expire, ngx_uint_t kind, size_t len);
void ngx_http_ciba_set_expire(ngx_http_ciba_zone_t *zone,
    ngx_http_ciba_record_t *rec, time_t expire);
void ngx_http_ciba_remove(ngx_http_ciba_zone_t *zone,
    ngx_http_ciba_record_t *rec);
void ngx_http_ciba_expire(ngx_http_ciba_zone_t *zone, time_t now,
    ngx_uint_t n);
time_t ngx_http_ciba_room_in(ngx_http_ciba_zone_t *zone, time_t now);
void ngx_http_ciba_load_state(ngx_http_ciba_zone_t *zone, ngx_log_t *log);


#endif /* _NGX_HTTP_CIBA_ZONE_H_INCLUDED_ */
