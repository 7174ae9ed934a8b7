
/*
 * ngx_http_ciba_module: the shared zone of single-use records.
 *
 * A record says "this token (issuer, jti) was used" until the token could
 * no longer pass the checks anyway.  Records live in an rbtree keyed by a
 * SHA-256 of (issuer, jti), and in a queue ordered by expiry; everything
 * happens under the slab mutex, so a consumption is atomic across all
 * workers.  A live record is never evicted: a full zone refuses.
 *
 * The zone is reused across reloads.  It remembers when it started (its
 * epoch): a token issued before then may have been used before a restart
 * wiped the records, so the token check refuses it.  With "state=", the
 * records and the epoch are saved to a file when nginx stops and loaded
 * (then removed) when it starts again, so a restart keeps both; after a
 * crash there is no file and the epoch is the new start.
 */


#include "ngx_http_ciba.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


#define NGX_HTTP_CIBA_STATE_MAGIC  "ngx-ciba-state/1"


/*
 * A record: a single-use mark (kind "used", no data), a pending approval
 * (kind "pending", with ngx_http_ciba_pending_data_t and its strings), or
 * the count of a subject's live pending approvals (kind "count", never in
 * the expiry queue: it goes with the last of them).
 */

#define NGX_HTTP_CIBA_REC_USED     0
#define NGX_HTTP_CIBA_REC_PENDING  1
#define NGX_HTTP_CIBA_REC_COUNT    2
#define NGX_HTTP_CIBA_REC_NOTIFY   3   /* ping: pending key, token hash */
#define NGX_HTTP_CIBA_REC_PUSHED   4   /* push: the access token */

/* the state of a used record */
#define NGX_HTTP_CIBA_USED_REFUSED 1   /* redeemed, refused by our checks */

typedef struct {
    ngx_rbtree_node_t           node;
    ngx_queue_t                 queue;
    time_t                      expire;
    u_char                      hash[32];
    u_char                      kind;
    u_char                      state;
    u_short                     len;
    ngx_uint_t                  count;
    u_char                      data[1];
} ngx_http_ciba_record_t;


typedef struct {
    int64_t                     next_poll;  /* ms since the epoch */
    int64_t                     in_flight;  /* a poll holds it until then */
    time_t                      interval;
    time_t                      approval_expire;
    u_char                      subject[32];
    u_short                     handle_len;
    u_short                     areq_len;
    u_short                     token_len;
    u_char                      mode;
} ngx_http_ciba_pending_data_t;


#define ngx_http_ciba_record_size(n)                                         \
    (offsetof(ngx_http_ciba_record_t, data) + (n))


/*
 * The placeholder of an approval being asked for holds room for what the
 * AS's answer adds (the handle and the auth_req_id, up to about 90 bytes
 * of it): the slab chunk a pending record takes anyway, so that the answer
 * is stored in place and a zone with room to ask has room to keep it.  A
 * longer auth_req_id needs a larger record, which a zone near full may
 * not have: that approval is then given up (503 zone_full).
 */

#define NGX_HTTP_CIBA_PENDING_ROOM                                           \
    (512 - offsetof(ngx_http_ciba_record_t, data))


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;      /* latest expiry at the head */
    time_t                      epoch;
    ngx_uint_t                  count;
    u_char                      handle_key[32];
} ngx_http_ciba_shctx_t;


typedef struct {
    ngx_http_ciba_shctx_t      *sh;
    ngx_slab_pool_t            *shpool;
    ngx_str_t                   state_file;
} ngx_http_ciba_zone_t;


/* the state file: header, records, then a SHA-256 of all that precedes */

typedef struct {
    u_char                      magic[16];
    int64_t                     epoch;
    uint64_t                    count;
} ngx_http_ciba_state_head_t;


typedef struct {
    int64_t                     expire;
    u_char                      hash[32];
} ngx_http_ciba_state_rec_t;


static ngx_int_t ngx_http_ciba_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ciba_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ciba_record_t *ngx_http_ciba_lookup(
    ngx_http_ciba_shctx_t *sh, u_char *hash);
static void ngx_http_ciba_expire(ngx_http_ciba_zone_t *zone, time_t now,
    ngx_uint_t n);
static ngx_http_ciba_record_t *ngx_http_ciba_insert(
    ngx_http_ciba_zone_t *zone, u_char *hash, time_t expire, ngx_uint_t kind,
    size_t len);
static void ngx_http_ciba_enqueue(ngx_http_ciba_zone_t *zone,
    ngx_http_ciba_record_t *rec);
static time_t ngx_http_ciba_room_in(ngx_http_ciba_zone_t *zone, time_t now);
static void ngx_http_ciba_remove(ngx_http_ciba_zone_t *zone,
    ngx_http_ciba_record_t *rec);
static ngx_int_t ngx_http_ciba_store_put(ngx_shm_zone_t *shm_zone,
    const char *prefix, ngx_str_t *id, ngx_uint_t kind, u_char *data,
    size_t len, time_t expire, ngx_uint_t replace, ngx_log_t *log);
static void ngx_http_ciba_load_state(ngx_http_ciba_zone_t *zone,
    ngx_log_t *log);
static void ngx_http_ciba_save_zone(ngx_http_ciba_zone_t *zone,
    ngx_log_t *log);


/* ciba_zone name:size [state=path]; */

char *
ngx_http_ciba_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_main_conf_t *cmcf = conf;

    u_char                *p;
    ssize_t                size;
    ngx_str_t             *value, name, s;
    ngx_http_ciba_zone_t  *zone;

    if (cmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ciba_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (value[2].len <= 6
            || ngx_strncmp(value[2].data, "state=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        zone->state_file.data = value[2].data + 6;
        zone->state_file.len = value[2].len - 6;

        if (ngx_conf_full_name(cf->cycle, &zone->state_file, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    cmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_ciba_module);
    if (cmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    cmcf->shm_zone->init = ngx_http_ciba_init_zone;
    cmcf->shm_zone->data = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ciba_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ciba_zone_t  *ozone = data;

    size_t                 len;
    ngx_http_ciba_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the records and the epoch carry over */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_ciba_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_ciba_rbtree_insert_value);

    ngx_queue_init(&zone->sh->queue);

    zone->sh->epoch = ngx_time();
    zone->sh->count = 0;

    /* the handle key when no ciba_handle_key is configured */
    if (RAND_bytes(zone->sh->handle_key, 32) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ciba: RAND_bytes() failed");
        return NGX_ERROR;
    }

    len = sizeof(" in ciba zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in ciba zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* running out of room is answered and logged by the module itself */
    zone->shpool->log_nomem = 0;

    if (zone->state_file.len && !ngx_test_config) {
        ngx_http_ciba_load_state(zone, shm_zone->shm.log);
    }

    return NGX_OK;
}


u_char *
ngx_http_ciba_store_handle_key(ngx_shm_zone_t *shm_zone)
{
    ngx_http_ciba_zone_t  *zone;

    zone = shm_zone->data;

    return zone->sh->handle_key;
}


time_t
ngx_http_ciba_store_epoch(ngx_shm_zone_t *shm_zone)
{
    ngx_http_ciba_zone_t  *zone;

    zone = shm_zone->data;

    return zone->sh->epoch;
}


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
        && rec->expire > ngx_time())
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
 * may pass; NGX_BUSY: already used; NGX_DECLINED: the zone is full of
 * live records; NGX_ERROR: an internal failure.  With "pending", the
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
        if (rec->expire > now) {
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

    rc = rec ? NGX_OK : NGX_DECLINED;

    count = zone->sh->count;

    if (rc == NGX_DECLINED) {
        *retry_after = ngx_http_ciba_room_in(zone, now);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ciba: zone \"%V\" is full of live single-use "
                      "records (%ui), the approval is refused",
                      &shm_zone->shm.name, count);
    }

    return rc;
}


static ngx_http_ciba_record_t *
ngx_http_ciba_insert(ngx_http_ciba_zone_t *zone, u_char *hash, time_t expire,
    ngx_uint_t kind, size_t len)
{
    ngx_http_ciba_record_t  *rec;

    rec = ngx_slab_alloc_locked(zone->shpool,
                                ngx_http_ciba_record_size(len ? len : 1));
    if (rec == NULL) {
        return NULL;
    }

    ngx_memcpy(rec->hash, hash, 32);
    ngx_memcpy(&rec->node.key, hash, sizeof(ngx_rbtree_key_t));
    rec->expire = expire;
    rec->kind = (u_char) kind;
    rec->state = 0;
    rec->len = (u_short) len;
    rec->count = 0;

    ngx_rbtree_insert(&zone->sh->rbtree, &rec->node);

    zone->sh->count++;

    if (kind == NGX_HTTP_CIBA_REC_COUNT) {
        ngx_queue_init(&rec->queue);
        return rec;
    }

    ngx_http_ciba_enqueue(zone, rec);

    return rec;
}


/* puts a record in the expiry queue, at the place of its expiry */

static void
ngx_http_ciba_enqueue(ngx_http_ciba_zone_t *zone, ngx_http_ciba_record_t *rec)
{
    time_t                   expire;
    ngx_queue_t             *q, *queue;
    ngx_http_ciba_record_t  *head, *tail, *r;

    expire = rec->expire;

    /*
     * keep the queue ordered by expiry, latest at the head; a new record
     * is nearly always the latest, and a short-lived one is found from
     * the tail: walk from the nearer end
     */

    queue = &zone->sh->queue;

    if (ngx_queue_empty(queue)) {
        ngx_queue_insert_head(queue, &rec->queue);
        return;
    }

    head = ngx_queue_data(ngx_queue_head(queue), ngx_http_ciba_record_t,
                          queue);
    tail = ngx_queue_data(ngx_queue_last(queue), ngx_http_ciba_record_t,
                          queue);

    if (expire >= head->expire) {
        ngx_queue_insert_head(queue, &rec->queue);
        return;
    }

    if (expire - tail->expire < head->expire - expire) {

        /* from the tail: after the last record that expires later */

        for (q = ngx_queue_last(queue);
             q != ngx_queue_sentinel(queue);
             q = ngx_queue_prev(q))
        {
            r = ngx_queue_data(q, ngx_http_ciba_record_t, queue);

            if (r->expire > expire) {
                break;
            }
        }

        ngx_queue_insert_after(q, &rec->queue);
        return;
    }

    /* from the head: before the first record that expires no later */

    for (q = ngx_queue_head(queue);
         q != ngx_queue_sentinel(queue);
         q = ngx_queue_next(q))
    {
        r = ngx_queue_data(q, ngx_http_ciba_record_t, queue);

        if (r->expire <= expire) {
            break;
        }
    }

    ngx_queue_insert_tail(q, &rec->queue);
}


static void
ngx_http_ciba_remove(ngx_http_ciba_zone_t *zone, ngx_http_ciba_record_t *rec)
{
    ngx_http_ciba_record_t        *counter;
    ngx_http_ciba_pending_data_t  *pd;

    if (rec->kind == NGX_HTTP_CIBA_REC_PENDING) {
        pd = (ngx_http_ciba_pending_data_t *) rec->data;

        counter = ngx_http_ciba_lookup(zone->sh, pd->subject);

        if (counter && counter->kind == NGX_HTTP_CIBA_REC_COUNT
            && --counter->count == 0)
        {
            ngx_http_ciba_remove(zone, counter);
        }
    }

    if (rec->kind != NGX_HTTP_CIBA_REC_COUNT) {
        ngx_queue_remove(&rec->queue);
    }

    ngx_rbtree_delete(&zone->sh->rbtree, &rec->node);
    ngx_slab_free_locked(zone->shpool, rec);
    zone->sh->count--;
}


/* frees up to n expired records (all of them when n is 0) */

static void
ngx_http_ciba_expire(ngx_http_ciba_zone_t *zone, time_t now, ngx_uint_t n)
{
    ngx_uint_t               freed;
    ngx_queue_t             *q;
    ngx_http_ciba_record_t  *rec;

    for (freed = 0; n == 0 || freed < n; freed++) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&zone->sh->queue);
        rec = ngx_queue_data(q, ngx_http_ciba_record_t, queue);

        if (rec->expire > now) {
            return;
        }

        ngx_http_ciba_remove(zone, rec);
    }
}


static ngx_http_ciba_record_t *
ngx_http_ciba_lookup(ngx_http_ciba_shctx_t *sh, u_char *hash)
{
    ngx_int_t                rc;
    ngx_rbtree_key_t         key;
    ngx_rbtree_node_t       *node, *sentinel;
    ngx_http_ciba_record_t  *rec;

    ngx_memcpy(&key, hash, sizeof(ngx_rbtree_key_t));

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        rec = (ngx_http_ciba_record_t *) node;

        rc = ngx_memcmp(hash, rec->hash, 32);

        if (rc == 0) {
            return rec;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_ciba_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t       **p;
    ngx_http_ciba_record_t   *rn, *rt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            rn = (ngx_http_ciba_record_t *) node;
            rt = (ngx_http_ciba_record_t *) temp;

            p = (ngx_memcmp(rn->hash, rt->hash, 32) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* records are keyed by SHA-256(iss NUL jti): fixed size, no raw ids */

ngx_int_t
ngx_http_ciba_store_key(ngx_str_t *iss, ngx_str_t *jti, u_char *hash)
{
    return ngx_http_ciba_store_key2(iss, jti, NULL, hash);
}


/* SHA-256(a NUL b [NUL c]): the keys of all records */

ngx_int_t
ngx_http_ciba_store_key2(ngx_str_t *a, ngx_str_t *b, ngx_str_t *c,
    u_char *hash)
{
    ngx_int_t      rc;
    EVP_MD_CTX    *md;
    unsigned int   len;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
        && EVP_DigestUpdate(md, a->data, a->len) == 1
        && EVP_DigestUpdate(md, "", 1) == 1
        && EVP_DigestUpdate(md, b->data, b->len) == 1
        && (c == NULL
            || (EVP_DigestUpdate(md, "", 1) == 1
                && EVP_DigestUpdate(md, c->data, c->len) == 1))
        && EVP_DigestFinal_ex(md, hash, &len) == 1
        && len == 32)
    {
        rc = NGX_OK;
    }

    EVP_MD_CTX_free(md);

    return rc;
}


/* called from the master process (or the single process) on exit */

void
ngx_http_ciba_store_save(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *shm_zone;

    part = &cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag != &ngx_http_ciba_module
            || shm_zone[i].data == NULL)
        {
            continue;
        }

        ngx_http_ciba_save_zone(shm_zone[i].data, cycle->log);
    }
}


static void
ngx_http_ciba_save_zone(ngx_http_ciba_zone_t *zone, ngx_log_t *log)
{
    u_char                       *buf, *p, md_value[EVP_MAX_MD_SIZE];
    size_t                        size;
    time_t                        now;
    ngx_fd_t                      fd;
    ngx_str_t                     tmp;
    ngx_queue_t                  *q;
    unsigned int                  md_len;
    ngx_http_ciba_record_t       *rec;
    ngx_http_ciba_state_rec_t     srec;
    ngx_http_ciba_state_head_t    head;

    if (zone->state_file.len == 0 || zone->sh == NULL) {
        return;
    }

    if (ngx_new_binary > 0) {
        /*
         * a binary upgrade: the new master runs on with zones of its own,
         * and a state file written now would be stale at its next start
         */
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ciba: a new binary is running, the state is not "
                      "saved to \"%V\"", &zone->state_file);
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    size = sizeof(head) + zone->sh->count * sizeof(srec) + 32;

    buf = ngx_alloc(size, log);
    if (buf == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    ngx_memzero(&head, sizeof(head));
    ngx_memcpy(head.magic, NGX_HTTP_CIBA_STATE_MAGIC,
               sizeof(NGX_HTTP_CIBA_STATE_MAGIC) - 1);
    head.epoch = zone->sh->epoch;

    p = buf + sizeof(head);

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_ciba_record_t, queue);

        if (rec->expire <= now) {
            break;
        }

        if (rec->kind != NGX_HTTP_CIBA_REC_USED) {
            continue;
        }

        srec.expire = rec->expire;
        ngx_memcpy(srec.hash, rec->hash, 32);

        p = ngx_cpymem(p, &srec, sizeof(srec));
        head.count++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_memcpy(buf, &head, sizeof(head));

    if (EVP_Digest(buf, p - buf, md_value, &md_len, EVP_sha256(), NULL) != 1
        || md_len != 32)
    {
        ngx_free(buf);
        return;
    }

    p = ngx_cpymem(p, md_value, 32);

    tmp.len = zone->state_file.len + sizeof(".tmp") - 1;
    tmp.data = ngx_alloc(tmp.len + 1, log);
    if (tmp.data == NULL) {
        ngx_free(buf);
        return;
    }

    ngx_sprintf(tmp.data, "%V.tmp%Z", &zone->state_file);

    fd = ngx_open_file(tmp.data, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ciba: " ngx_open_file_n " \"%s\" failed", tmp.data);
        goto failed;
    }

    if (ngx_write_fd(fd, buf, p - buf) != p - buf || fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ciba: writing the state file \"%s\" failed",
                      tmp.data);
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp.data);
        goto failed;
    }

    (void) ngx_close_file(fd);

    if (ngx_rename_file(tmp.data, zone->state_file.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ciba: " ngx_rename_file_n " \"%s\" to \"%V\" failed",
                      tmp.data, &zone->state_file);
        (void) ngx_delete_file(tmp.data);
        goto failed;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "ciba: saved %uL single-use records to \"%V\"",
                  head.count, &zone->state_file);

failed:

    ngx_free(tmp.data);
    ngx_free(buf);
}


static void
ngx_http_ciba_load_state(ngx_http_ciba_zone_t *zone, ngx_log_t *log)
{
    u_char                       *buf, md_value[EVP_MAX_MD_SIZE];
    off_t                         size;
    time_t                        now;
    ssize_t                       n;
    uint64_t                      i, loaded;
    ngx_fd_t                      fd;
    unsigned int                  md_len;
    ngx_file_info_t               fi;
    ngx_http_ciba_state_rec_t     srec;
    ngx_http_ciba_state_head_t    head;

    fd = ngx_open_file(zone->state_file.data, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "ciba: " ngx_open_file_n " \"%V\" failed",
                          &zone->state_file);
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ciba: no saved state in \"%V\": tokens issued "
                      "before now are refused", &zone->state_file);
        return;
    }

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        goto invalid;
    }

    size = ngx_file_size(&fi);

    if (size < (off_t) (sizeof(head) + 32)
        || (size - sizeof(head) - 32) % sizeof(srec) != 0
        || size > 1024 * 1024 * 1024)
    {
        goto invalid;
    }

    buf = ngx_alloc((size_t) size, log);
    if (buf == NULL) {
        goto invalid;
    }

    n = ngx_read_fd(fd, buf, (size_t) size);

    if (n != (ssize_t) size) {
        goto invalid;
    }

    if (EVP_Digest(buf, size - 32, md_value, &md_len, EVP_sha256(), NULL)
        != 1
        || md_len != 32
        || ngx_memcmp(md_value, buf + size - 32, 32) != 0)
    {
        goto invalid;
    }

    ngx_memcpy(&head, buf, sizeof(head));

    if (ngx_memcmp(head.magic, NGX_HTTP_CIBA_STATE_MAGIC,
                   sizeof(NGX_HTTP_CIBA_STATE_MAGIC) - 1) != 0
        || head.count != (uint64_t) (size - sizeof(head) - 32) / sizeof(srec)
        || head.epoch > zone->sh->epoch)
    {
        goto invalid;
    }

    now = ngx_time();
    loaded = 0;

    for (i = 0; i < head.count; i++) {
        ngx_memcpy(&srec, buf + sizeof(head) + i * sizeof(srec),
                   sizeof(srec));

        if (srec.expire <= now) {
            continue;
        }

        if (ngx_http_ciba_insert(zone, srec.hash, (time_t) srec.expire,
                                 NGX_HTTP_CIBA_REC_USED, 0)
            == NULL)
        {
            /*
             * keep the fresh epoch, which refuses every token the saved
             * records were about, and give their room back
             */
            ngx_http_ciba_expire(zone, NGX_MAX_TIME_T_VALUE, 0);

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ciba: the zone is too small for the saved state "
                          "in \"%V\": tokens issued before now are refused",
                          &zone->state_file);
            goto done;
        }

        loaded++;
    }

    zone->sh->epoch = (time_t) head.epoch;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "ciba: loaded %uL single-use records from \"%V\"",
                  loaded, &zone->state_file);

    goto done;

invalid:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "ciba: the state file \"%V\" is invalid and was ignored: "
                  "tokens issued before now are refused",
                  &zone->state_file);

done:

    if (buf) {
        ngx_free(buf);
    }

    (void) ngx_close_file(fd);

    /* a state file is good for one start: after a crash there is none */

    if (ngx_delete_file(zone->state_file.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ciba: " ngx_delete_file_n " \"%V\" failed; "
                      "remove it before the next start",
                      &zone->state_file);
    }
}


/*
 * Pending approvals, keyed by SHA-256("pending" NUL subject NUL digest);
 * the count of a subject's live pending approvals is a record of its own.
 */

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
        || rec->expire <= ngx_time())
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->data;

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

    ngx_memcpy(data, rec->data + sizeof(ngx_http_ciba_pending_data_t),
               pd->handle_len + pd->areq_len + pd->token_len);

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Starts a pending approval, atomically: NGX_OK, the caller asks the AS;
 * NGX_BUSY, one exists already (ask again with _get); NGX_DECLINED, the
 * subject has "max" live ones; NGX_ABORT, the zone is full.
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
        if (rec->expire > now) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_BUSY;
        }

        ngx_http_ciba_remove(zone, rec);
    }

    counter = ngx_http_ciba_lookup(zone->sh, subject);

    if (counter && counter->count >= max) {

        /* approvals that expired but are still in the zone do not count */

        ngx_http_ciba_expire(zone, now, 0);

        counter = ngx_http_ciba_lookup(zone->sh, subject);

        if (counter && counter->count >= max) {
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
    counter->count++;

    rec = ngx_http_ciba_insert(zone, key, expire, NGX_HTTP_CIBA_REC_PENDING,
                               NGX_HTTP_CIBA_PENDING_ROOM);
    if (rec == NULL) {
        ngx_http_ciba_expire(zone, now, 0);
        rec = ngx_http_ciba_insert(zone, key, expire,
                                   NGX_HTTP_CIBA_REC_PENDING,
                                   NGX_HTTP_CIBA_PENDING_ROOM);
    }

    if (rec == NULL) {
        if (--counter->count == 0) {
            ngx_http_ciba_remove(zone, counter);
        }

        goto full;
    }

    rec->state = NGX_HTTP_CIBA_PENDING_REQUESTING;

    pd = (ngx_http_ciba_pending_data_t *) rec->data;
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

    return NGX_ABORT;
}


/*
 * The seconds until the zone's earliest record expires, when there is room
 * again (the Retry-After of a zone_full refusal); 5 when it holds none.
 */

time_t
ngx_http_ciba_store_retry_after(ngx_shm_zone_t *shm_zone)
{
    time_t                 wait;
    ngx_http_ciba_zone_t  *zone;

    zone = shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    wait = ngx_http_ciba_room_in(zone, ngx_time());

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return wait;
}


/* under the lock: when the earliest record goes, there is room again */

static time_t
ngx_http_ciba_room_in(ngx_http_ciba_zone_t *zone, time_t now)
{
    ngx_http_ciba_record_t  *rec;

    if (ngx_queue_empty(&zone->sh->queue)) {
        return 5;
    }

    rec = ngx_queue_data(ngx_queue_last(&zone->sh->queue),
                         ngx_http_ciba_record_t, queue);

    return ngx_max(rec->expire - now, 1);
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

    opd = (ngx_http_ciba_pending_data_t *) old->data;

    if (len <= old->len) {

        /* it fits (nearly always: see NGX_HTTP_CIBA_PENDING_ROOM) */

        rec = old;

        ngx_queue_remove(&rec->queue);
        rec->expire = p->expire;
        ngx_http_ciba_enqueue(zone, rec);

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
        return NGX_ABORT;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->data;
    ngx_memcpy(pd->subject, opd->subject, 32);

    /* the old record leaves without touching the count */
    ngx_queue_remove(&old->queue);
    ngx_slab_free_locked(zone->shpool, old);
    zone->sh->count--;

fill:

    rec->state = (u_char) p->state;

    pd = (ngx_http_ciba_pending_data_t *) rec->data;
    pd->approval_expire = p->expire;
    pd->next_poll = p->next_poll;
    pd->in_flight = 0;
    pd->interval = p->interval;
    pd->mode = (u_char) p->mode;
    pd->handle_len = (u_short) p->handle.len;
    pd->areq_len = (u_short) p->auth_req_id.len;
    pd->token_len = (u_short) p->token.len;

    d = rec->data + sizeof(ngx_http_ciba_pending_data_t);
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
        || rec->expire <= now)
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    pd = (ngx_http_ciba_pending_data_t *) rec->data;

    /* a handle of an older approval for the same request is stale */

    if (pd->areq_len != auth_req_id->len
        || ngx_memcmp(rec->data + sizeof(ngx_http_ciba_pending_data_t)
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

        /* a poll in flight past its time: ask again an interval on */

        *next = ngx_max(pd->next_poll,
                        (now_ms < pd->in_flight)
                        ? now_ms + 1000 * pd->interval : 0);
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

            pd = (ngx_http_ciba_pending_data_t *) rec->data;
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


ngx_int_t
ngx_http_ciba_pending_key(ngx_str_t *subject, ngx_str_t *digest, u_char *key,
    u_char *subject_key)
{
    ngx_str_t  prefix;

    ngx_str_set(&prefix, "urn:ngx-ciba:pending");

    if (digest
        && ngx_http_ciba_store_key2(&prefix, subject, digest, key) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&prefix, "urn:ngx-ciba:subject");

    return ngx_http_ciba_store_key(&prefix, subject, subject_key);
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

    return ngx_http_ciba_store_put(shm_zone, "urn:ngx-ciba:notify",
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
    ngx_str_t                      prefix, empty;
    ngx_http_ciba_zone_t          *zone;
    ngx_http_ciba_record_t        *rec, *pending;
    ngx_http_ciba_pending_data_t  *pd;

    ngx_str_set(&prefix, "urn:ngx-ciba:notify");
    ngx_str_null(&empty);

    if (ngx_http_ciba_store_key(&prefix, auth_req_id, key) != NGX_OK
        || ngx_http_ciba_store_key(&empty, token, hash) != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone = shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_NOTIFY
        && rec->expire > ngx_time()
        && CRYPTO_memcmp(rec->data + 32, hash, 32) == 0)
    {
        ngx_memcpy(pending_key, rec->data, 32);

        pending = ngx_http_ciba_lookup(zone->sh, rec->data);

        if (pending && pending->kind == NGX_HTTP_CIBA_REC_PENDING) {
            pd = (ngx_http_ciba_pending_data_t *) pending->data;

            /* only the approval this notification is for, not a newer one */

            if (pd->areq_len == auth_req_id->len
                && ngx_memcmp(pending->data
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


/* push mode: the access token pushed for an auth_req_id, taken once */

ngx_int_t
ngx_http_ciba_pushed_put(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    ngx_str_t *token, time_t expire, ngx_log_t *log)
{
    if (token->len == 0 || token->len > NGX_HTTP_CIBA_TOKEN_MAX) {
        return NGX_ERROR;
    }

    /* a second push for the same approval is not taken: NGX_BUSY */

    return ngx_http_ciba_store_put(shm_zone, "urn:ngx-ciba:pushed",
                                   auth_req_id, NGX_HTTP_CIBA_REC_PUSHED,
                                   token->data, token->len, expire, 0, log);
}


/*
 * Stores a record of data under SHA-256(prefix NUL id): an existing one
 * is replaced, or (replace off) kept and NGX_BUSY returned.  NGX_ABORT:
 * the zone is full.
 */

static ngx_int_t
ngx_http_ciba_store_put(ngx_shm_zone_t *shm_zone, const char *prefix,
    ngx_str_t *id, ngx_uint_t kind, u_char *data, size_t len, time_t expire,
    ngx_uint_t replace, ngx_log_t *log)
{
    u_char                   key[32];
    ngx_str_t                pfx;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    pfx.data = (u_char *) prefix;
    pfx.len = ngx_strlen(prefix);

    if (ngx_http_ciba_store_key(&pfx, id, key) != NGX_OK) {
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
        ngx_memcpy(rec->data, data, len);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rec == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ciba: zone \"%V\" is full, no room for a "
                      "notification record", &shm_zone->shm.name);
        return NGX_ABORT;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ciba_pushed_take(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id,
    ngx_pool_t *pool, ngx_str_t *token)
{
    u_char                   key[32];
    ngx_int_t                rc;
    ngx_str_t                prefix;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    ngx_str_set(&prefix, "urn:ngx-ciba:pushed");

    if (ngx_http_ciba_store_key(&prefix, auth_req_id, key) != NGX_OK) {
        return NGX_ERROR;
    }

    zone = shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rec = ngx_http_ciba_lookup(zone->sh, key);

    if (rec && rec->kind == NGX_HTTP_CIBA_REC_PUSHED && rec->len
        && rec->expire > ngx_time())
    {
        token->data = ngx_pnalloc(pool, rec->len);

        if (token->data == NULL) {
            rc = NGX_ERROR;

        } else {
            ngx_memcpy(token->data, rec->data, rec->len);
            token->len = rec->len;
            rc = NGX_OK;

            /* taken once: the record stays, empty, against a re-push */
            rec->len = 0;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


void
ngx_http_ciba_notify_remove(ngx_shm_zone_t *shm_zone, ngx_str_t *auth_req_id)
{
    u_char                   key[32];
    ngx_str_t                prefix;
    ngx_http_ciba_zone_t    *zone;
    ngx_http_ciba_record_t  *rec;

    ngx_str_set(&prefix, "urn:ngx-ciba:notify");

    if (ngx_http_ciba_store_key(&prefix, auth_req_id, key) != NGX_OK) {
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
