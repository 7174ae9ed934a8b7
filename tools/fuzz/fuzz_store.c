
/*
 * Fuzz target: the shared zone's records (ngx_http_ciba_zone.c,
 * ngx_http_ciba_store.c, ngx_http_ciba_pending.c) under any sequence of
 * the operations requests make: pending approvals begun,
 * answered, polled, updated, abandoned; tokens and auth_req_ids consumed;
 * notifications set, pinged, removed; pushed tokens put and taken; and
 * the clock moving on.  The zone is small (32k), so that it runs full and
 * the paths that make room run too.
 *
 * Input: operations, each an opcode byte and three argument bytes; one
 * of them fills the zone (pushed tokens, largest first, until none fits);
 * the clock moves in seconds and milliseconds (polls are paced in ms).
 *
 * Checked after every operation, by walking the zone's structures: the
 * tree holds the zone's count of records; the expiry tree, walked in
 * order, is ordered and holds every record but the per-subject counters;
 * each counter counts exactly the pending approvals of its subject and is
 * never 0; every pending approval has its counter; a poll refused is
 * allowed later (in ms), and one allowed sets the next later; a used
 * record marked refused (ngx_http_ciba_store_refused()) is seen as
 * NGX_ABORT exactly when it was seen as used.  At the end, once
 * everything has expired, the zone is empty and all its memory is free
 * again.  Nothing is logged at "alert" (a double free in the slab
 * allocator is).
 */


#include "fuzz_common.h"

/* the zone's structures and its record engine */
#include "../../ngx_http_ciba_module/ngx_http_ciba_zone.h"


#define NGX_HTTP_CIBA_FUZZ_KEYS_N  8


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static u_char      ngx_http_ciba_fuzz_pkeys[NGX_HTTP_CIBA_FUZZ_KEYS_N][32];
static u_char      ngx_http_ciba_fuzz_hashes[NGX_HTTP_CIBA_FUZZ_KEYS_N][32];
static u_char      ngx_http_ciba_fuzz_subjects[4][32];
static ngx_uint_t  ngx_http_ciba_fuzz_pfree;
static u_char      ngx_http_ciba_fuzz_big[16384];


static void
ngx_http_ciba_fuzz_key(const char *prefix, ngx_uint_t i, u_char *key)
{
    u_char     buf[32];
    ngx_str_t  a, b;

    a.data = (u_char *) prefix;
    a.len = ngx_strlen(prefix);
    b.data = buf;
    b.len = ngx_sprintf(buf, "%ui", i) - buf;

    if (ngx_http_ciba_store_key(&a, &b, key) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "store_key()");
    }
}


static void
ngx_http_ciba_fuzz_areq(ngx_uint_t i, ngx_str_t *s)
{
    static u_char  areqs[4][8] = { "areq-0", "areq-1", "areq-2", "areq-3" };

    s->data = areqs[i % 4];
    s->len = 6;
}


/* pushed tokens of decreasing sizes until the zone has room for none */

static ngx_int_t
ngx_http_ciba_fuzz_fill(ngx_shm_zone_t *shm, time_t expire, ngx_log_t *log)
{
    u_char       id[32];
    ngx_int_t    rc;
    ngx_str_t    areq, token;
    ngx_uint_t   i, n;
    static size_t  sizes[] = { 16000, 4000, 1000, 400, 100, 10, 1 };

    n = 0;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        do {
            areq.data = id;
            areq.len = ngx_sprintf(id, "fill-%ui", n++) - id;
            token.data = ngx_http_ciba_fuzz_big;
            token.len = sizes[i];

            rc = ngx_http_ciba_pushed_put(shm, &areq, &token, expire, log);

        } while (rc == NGX_OK && n < 10000);
    }

    return NGX_OK;
}


/* the checks of the zone's structures */

static ngx_uint_t
ngx_http_ciba_fuzz_walk(ngx_http_ciba_shctx_t *sh, ngx_rbtree_node_t *node,
    ngx_http_ciba_record_t **recs, ngx_uint_t n, ngx_uint_t max)
{
    if (node == sh->rbtree.sentinel) {
        return n;
    }

    ngx_http_ciba_fuzz_assert(n < max, "more records than the count");

    recs[n++] = (ngx_http_ciba_record_t *) node;

    n = ngx_http_ciba_fuzz_walk(sh, node->left, recs, n, max);

    return ngx_http_ciba_fuzz_walk(sh, node->right, recs, n, max);
}


static void
ngx_http_ciba_fuzz_check(ngx_http_ciba_zone_t *zone)
{
    time_t                         last;
    ngx_uint_t                     i, j, n, queued, counters, pending;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_ciba_record_t        *recs[4096], *rec, *r;
    ngx_http_ciba_shctx_t         *sh;
    ngx_http_ciba_pending_data_t  *pd;

    sh = zone->sh;

    n = ngx_http_ciba_fuzz_walk(sh, sh->rbtree.root, recs, 0, 4096);

    ngx_http_ciba_fuzz_assert(n == sh->count,
                              "the tree does not hold the zone's count");

    counters = 0;

    for (i = 0; i < n; i++) {
        rec = recs[i];

        ngx_http_ciba_fuzz_assert(ngx_http_ciba_lookup(sh, rec->hash) == rec,
                                  "a record is not found by its key");

        if (rec->kind != NGX_HTTP_CIBA_REC_COUNT) {
            continue;
        }

        counters++;
        pending = 0;

        for (j = 0; j < n; j++) {
            r = recs[j];
            pd = (ngx_http_ciba_pending_data_t *) r->d.data;

            if (r->kind == NGX_HTTP_CIBA_REC_PENDING
                && ngx_memcmp(pd->subject, rec->hash, 32) == 0)
            {
                pending++;
            }
        }

        ngx_http_ciba_fuzz_assert(rec->u.count > 0 && rec->u.count == pending,
                                  "a subject's counter is not the number "
                                  "of its pending approvals");
    }

    for (i = 0; i < n; i++) {
        rec = recs[i];

        if (rec->kind != NGX_HTTP_CIBA_REC_PENDING) {
            continue;
        }

        pd = (ngx_http_ciba_pending_data_t *) rec->d.data;
        r = ngx_http_ciba_lookup(sh, pd->subject);

        ngx_http_ciba_fuzz_assert(r && r->kind == NGX_HTTP_CIBA_REC_COUNT,
                                  "a pending approval without a counter");
    }

    queued = 0;
    last = 0;
    sentinel = sh->expiry.sentinel;

    for (node = (sh->expiry.root == sentinel)
                ? NULL : ngx_rbtree_min(sh->expiry.root, sentinel);
         node;
         node = ngx_rbtree_next(&sh->expiry, node))
    {
        rec = ngx_http_ciba_record_of_expiry(node);

        ngx_http_ciba_fuzz_assert(queued < n, "the expiry tree holds more "
                                              "than the tree");
        ngx_http_ciba_fuzz_assert(rec->kind != NGX_HTTP_CIBA_REC_COUNT,
                                  "a counter in the expiry tree");
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_lookup(sh, rec->hash) == rec,
                                  "a record of the expiry tree is not in "
                                  "the tree");
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_record_expire(rec) >= last,
                                  "the expiry tree is out of order");

        last = ngx_http_ciba_record_expire(rec);
        queued++;
    }

    ngx_http_ciba_fuzz_assert(queued + counters == n,
                              "the expiry tree does not hold every record");
    ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_alerts == 0,
                              "an alert was logged");
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_uint_t             i;
    ngx_http_ciba_zone_t  *zone;

    ngx_http_ciba_fuzz_zone_directive = "ciba_zone fuzz:32k";

    ngx_http_ciba_fuzz_init();

    for (i = 0; i < NGX_HTTP_CIBA_FUZZ_KEYS_N; i++) {
        ngx_http_ciba_fuzz_key("pending", i, ngx_http_ciba_fuzz_pkeys[i]);
        ngx_http_ciba_fuzz_key("used", i, ngx_http_ciba_fuzz_hashes[i]);
    }

    for (i = 0; i < 4; i++) {
        ngx_http_ciba_fuzz_key("subject", i, ngx_http_ciba_fuzz_subjects[i]);
    }

    ngx_memset(ngx_http_ciba_fuzz_big, 'x', sizeof(ngx_http_ciba_fuzz_big));

    zone = ngx_http_ciba_fuzz_cmcf->shm_zone->data;
    ngx_http_ciba_fuzz_pfree = zone->shpool->pfree;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    time_t                    now, interval, retry;
    int64_t                   next, now_ms;
    ngx_int_t                 rc0;
    u_char                    token_hash[32];
    size_t                    i;
    ngx_int_t                 rc;
    ngx_str_t                 areq, token, empty;
    ngx_uint_t                op, a, b, c;
    ngx_shm_zone_t           *shm;
    ngx_http_request_t       *r;
    ngx_http_ciba_zone_t     *zone;
    ngx_http_ciba_pending_t   p;

    shm = ngx_http_ciba_fuzz_cmcf->shm_zone;
    zone = shm->data;

    ngx_http_ciba_fuzz_zone_restore();
    ngx_http_ciba_fuzz_set_time(NGX_HTTP_CIBA_FUZZ_NOW);

    r = ngx_http_ciba_fuzz_request(
            ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_FLOW]);

    ngx_str_null(&empty);

    for (i = 0; i + 4 <= size; i += 4) {
        op = data[i] % 16;
        a = data[i + 1];
        b = data[i + 2];
        c = data[i + 3];
        now = ngx_time();

        ngx_http_ciba_fuzz_areq(b, &areq);
        rc = NGX_OK;

        switch (op) {

        case 0:
            rc = ngx_http_ciba_pending_begin(shm,
                                ngx_http_ciba_fuzz_pkeys[a % 8],
                                ngx_http_ciba_fuzz_subjects[b % 4],
                                c % 4 + 1, now + c, r->connection->log);
            break;

        case 1:
            ngx_memzero(&p, sizeof(ngx_http_ciba_pending_t));

            p.state = (a >> 3) % 6 + 1;
            p.expire = now + c;
            p.next_poll = (int64_t) (now + c / 4) * 1000 + (a & 7) * 125;
            p.interval = c % 8 + 1;
            p.mode = (b >> 2) % 3;
            p.handle.data = ngx_http_ciba_fuzz_big;
            p.handle.len = (b >> 4) * 97;
            p.auth_req_id = areq;
            p.token.data = ngx_http_ciba_fuzz_big;
            p.token.len = (c & 0x80) ? c * 61 : 0;

            rc = ngx_http_ciba_pending_set(shm,
                                             ngx_http_ciba_fuzz_pkeys[a % 8],
                                             &p, r->connection->log);
            break;

        case 2:
            rc = ngx_http_ciba_pending_get(shm,
                                             ngx_http_ciba_fuzz_pkeys[a % 8],
                                             r->pool, &p);
            break;

        case 3:
            rc = ngx_http_ciba_pending_poll(shm,
                                              ngx_http_ciba_fuzz_pkeys[a % 8],
                                              &areq, &next, &interval);

            /* paced in ms: a poll refused now is allowed later, by then */

            now_ms = ngx_http_ciba_now_ms();

            ngx_http_ciba_fuzz_assert(rc != NGX_BUSY || next > now_ms,
                                      "a poll refused when it is due");
            ngx_http_ciba_fuzz_assert(rc != NGX_OK || next > now_ms,
                                      "a poll allowed without the next "
                                      "one later");
            break;

        case 4:
            ngx_http_ciba_pending_update(shm, ngx_http_ciba_fuzz_pkeys[a % 8],
                                         c % 6 + 1, (c & 0x80) ? b % 10 : 0);
            break;

        case 5:
            ngx_http_ciba_pending_abandon(shm,
                                          ngx_http_ciba_fuzz_pkeys[a % 8]);
            break;

        case 6:
            retry = 0;
            rc = ngx_http_ciba_store_consume(shm,
                                  ngx_http_ciba_fuzz_hashes[a % 8],
                                  (b & 0x80) ? ngx_http_ciba_fuzz_pkeys[b % 8]
                                             : NULL,
                                  now + c, &retry, r->connection->log);
            break;

        case 7:
            rc = ngx_http_ciba_store_seen(shm,
                                            ngx_http_ciba_fuzz_hashes[a % 8]);
            break;

        case 8:
            token.data = ngx_http_ciba_fuzz_big;
            token.len = c % 4 + 1;

            if (ngx_http_ciba_store_key(&empty, &token, token_hash)
                != NGX_OK)
            {
                ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "store_key()");
            }

            rc = ngx_http_ciba_notify_set(shm, &areq,
                                            ngx_http_ciba_fuzz_pkeys[a % 8],
                                            token_hash, now + c,
                                            r->connection->log);
            break;

        case 9:
            token.data = ngx_http_ciba_fuzz_big;
            token.len = c % 4 + 1;

            rc = ngx_http_ciba_notify_ping(shm, &areq, &token, token_hash);
            break;

        case 10:
            ngx_http_ciba_notify_remove(shm, &areq);
            break;

        case 11:
            token.data = ngx_http_ciba_fuzz_big;
            token.len = a * 64 + c;

            rc = ngx_http_ciba_pushed_put(shm, &areq, &token, now + c,
                                            r->connection->log);
            break;

        case 12:
            rc = ngx_http_ciba_pushed_take(shm, &areq, r->pool, &token);
            break;

        case 13:
            ngx_http_ciba_fuzz_set_time(now + a);

            /* and milliseconds: the pacing is in ms */
            ((ngx_time_t *) ngx_cached_time)->msec = (b & 7) * 125;
            break;

        case 14:
            rc = ngx_http_ciba_fuzz_fill(shm, now + c, r->connection->log);
            break;

        default:
            if (!(a & 1)) {
                rc = ngx_http_ciba_store_retry_after(shm);
                break;
            }

            /*
             * a used record marked refused (the AS's tokens failed this
             * gateway's checks): seen as NGX_ABORT from then on, exactly
             * when it was seen as used before
             */

            rc0 = ngx_http_ciba_store_seen(shm,
                                           ngx_http_ciba_fuzz_hashes[b % 8]);
            ngx_http_ciba_store_refused(shm,
                                        ngx_http_ciba_fuzz_hashes[b % 8]);
            rc = ngx_http_ciba_store_seen(shm,
                                          ngx_http_ciba_fuzz_hashes[b % 8]);

            ngx_http_ciba_fuzz_assert((rc0 == NGX_OK && rc == NGX_OK)
                                      || (rc0 != NGX_OK
                                          && rc == NGX_ABORT),
                                      "store_refused(): seen otherwise");
            break;
        }

        ngx_http_ciba_fuzz_trace("store: op %d %d %d %d: %d; %d records, "
                                 "%d free pages", (int) op, (int) a, (int) b,
                                 (int) c, (int) rc, (int) zone->sh->count,
                                 (int) zone->shpool->pfree);

        ngx_http_ciba_fuzz_check(zone);
    }

    /* once everything has expired: nothing left, all memory free */

    ngx_http_ciba_fuzz_set_time(ngx_time() + 100000);

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_ciba_expire(zone, ngx_time(), 0);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_ciba_fuzz_check(zone);

    ngx_http_ciba_fuzz_assert(zone->sh->count == 0,
                              "records are left when all have expired");
    ngx_http_ciba_fuzz_assert(zone->shpool->pfree
                              == ngx_http_ciba_fuzz_pfree,
                              "the zone's memory is not all free again");

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
