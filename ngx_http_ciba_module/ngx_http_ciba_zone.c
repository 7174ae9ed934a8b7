
/*
 * ngx_http_ciba_module: the shared zone and its record engine.
 *
 * "ciba_zone name:size [state=path]" makes one slab zone for all of the
 * module's records (ngx_http_ciba_zone.h): single-use marks
 * (ngx_http_ciba_store.c), pending approvals, ping notifications and
 * pushed tokens (ngx_http_ciba_pending.c).  A record is found by a
 * SHA-256 of a prefix naming its kind and the id it stands for (no raw id
 * is kept) and expires by an index on its expiry time; everything happens
 * under the slab mutex, so each operation is atomic across all workers.
 * A live record is never evicted: a full zone refuses.
 *
 * The zone is reused across reloads.  It remembers when it started (its
 * epoch): a token issued before then may have been used before a restart
 * wiped the records, so the token check refuses it.  With "state=", the
 * single-use records and the epoch are saved to a file when nginx stops
 * and loaded (then removed) when it starts again
 * (ngx_http_ciba_state.c).
 */


#include "ngx_http_ciba_zone.h"

#include <openssl/evp.h>
#include <openssl/rand.h>


static ngx_int_t ngx_http_ciba_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ciba_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


/* ciba_zone name:size [state=path]; */

char *
ngx_http_ciba_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ciba_main_conf_t *cimcf = conf;

    u_char                *p;
    ssize_t                size;
    ngx_str_t             *value, name, s;
    ngx_http_ciba_zone_t  *zone;

    if (cimcf->shm_zone) {
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

    cimcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_ciba_module);
    if (cimcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cimcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    cimcf->shm_zone->init = ngx_http_ciba_init_zone;
    cimcf->shm_zone->data = zone;

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

    ngx_rbtree_init(&zone->sh->expiry, &zone->sh->expiry_sentinel,
                    ngx_rbtree_insert_timer_value);

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

time_t
ngx_http_ciba_room_in(ngx_http_ciba_zone_t *zone, time_t now)
{
    ngx_rbtree_node_t  *node;

    if (zone->sh->expiry.root == zone->sh->expiry.sentinel) {
        return 5;
    }

    node = ngx_rbtree_min(zone->sh->expiry.root, zone->sh->expiry.sentinel);

    return ngx_max((time_t) node->key - now, 1);
}


/*
 * Adds a record of "len" bytes of data (not filled in): NULL when the zone
 * has no room.  The caller has made sure that none has this key.
 */

ngx_http_ciba_record_t *
ngx_http_ciba_insert(ngx_http_ciba_zone_t *zone, u_char *hash, time_t expire,
    ngx_uint_t kind, size_t len)
{
    ngx_http_ciba_record_t  *rec;

    rec = ngx_slab_alloc_locked(zone->shpool,
                                ngx_http_ciba_record_size(len ? len : 1));
    if (rec == NULL) {
        return NULL;
    }

    ngx_memcpy(rec->hash, hash, NGX_HTTP_CIBA_HASH_LEN);
    ngx_memcpy(&rec->node.key, hash, sizeof(ngx_rbtree_key_t));
    rec->kind = (u_char) kind;
    rec->state = 0;
    rec->len = (u_short) len;

    ngx_rbtree_insert(&zone->sh->rbtree, &rec->node);

    zone->sh->count++;

    if (kind == NGX_HTTP_CIBA_REC_COUNT) {
        rec->u.count = 0;
        return rec;
    }

    rec->u.expiry.key = (ngx_rbtree_key_t) expire;
    ngx_rbtree_insert(&zone->sh->expiry, &rec->u.expiry);

    return rec;
}


/* moves a record (never a counter) to another expiry time */

void
ngx_http_ciba_set_expire(ngx_http_ciba_zone_t *zone,
    ngx_http_ciba_record_t *rec, time_t expire)
{
    if (ngx_http_ciba_record_expire(rec) == expire) {
        return;
    }

    ngx_rbtree_delete(&zone->sh->expiry, &rec->u.expiry);
    rec->u.expiry.key = (ngx_rbtree_key_t) expire;
    ngx_rbtree_insert(&zone->sh->expiry, &rec->u.expiry);
}


/*
 * Removes a record; a pending approval's subject counter goes down with
 * it, and goes with the last one.
 */

void
ngx_http_ciba_remove(ngx_http_ciba_zone_t *zone, ngx_http_ciba_record_t *rec)
{
    ngx_http_ciba_record_t        *counter;
    ngx_http_ciba_pending_data_t  *pd;

    if (rec->kind == NGX_HTTP_CIBA_REC_PENDING) {
        pd = (ngx_http_ciba_pending_data_t *) rec->d.data;

        counter = ngx_http_ciba_lookup(zone->sh, pd->subject);

        if (counter && counter->kind == NGX_HTTP_CIBA_REC_COUNT
            && --counter->u.count == 0)
        {
            ngx_http_ciba_remove(zone, counter);
        }
    }

    if (rec->kind != NGX_HTTP_CIBA_REC_COUNT) {
        ngx_rbtree_delete(&zone->sh->expiry, &rec->u.expiry);
    }

    ngx_rbtree_delete(&zone->sh->rbtree, &rec->node);
    ngx_slab_free_locked(zone->shpool, rec);
    zone->sh->count--;
}


/* frees up to n expired records (all of them when n is 0), earliest first */

void
ngx_http_ciba_expire(ngx_http_ciba_zone_t *zone, time_t now, ngx_uint_t n)
{
    ngx_uint_t          freed;
    ngx_rbtree_node_t  *node;

    for (freed = 0; n == 0 || freed < n; freed++) {

        if (zone->sh->expiry.root == zone->sh->expiry.sentinel) {
            return;
        }

        node = ngx_rbtree_min(zone->sh->expiry.root,
                              zone->sh->expiry.sentinel);

        if ((time_t) node->key > now) {
            return;
        }

        ngx_http_ciba_remove(zone, ngx_http_ciba_record_of_expiry(node));
    }
}


ngx_http_ciba_record_t *
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

        rc = ngx_memcmp(hash, rec->hash, NGX_HTTP_CIBA_HASH_LEN);

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

            p = (ngx_memcmp(rn->hash, rt->hash, NGX_HTTP_CIBA_HASH_LEN) < 0)
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


/* the key of the record for an id of a kind: SHA-256(prefix NUL id) */

ngx_int_t
ngx_http_ciba_zone_key(const char *prefix, ngx_str_t *id, u_char *key)
{
    ngx_str_t  pfx;

    pfx.data = (u_char *) prefix;
    pfx.len = ngx_strlen(prefix);

    return ngx_http_ciba_store_key2(&pfx, id, NULL, key);
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
    unsigned int   len;
    EVP_MD_CTX    *md;

    md = ngx_http_ciba_hash_start(ngx_http_ciba_sha256());

    if (md != NULL
        && EVP_DigestUpdate(md, a->data, a->len) == 1
        && EVP_DigestUpdate(md, "", 1) == 1
        && EVP_DigestUpdate(md, b->data, b->len) == 1
        && (c == NULL
            || (EVP_DigestUpdate(md, "", 1) == 1
                && EVP_DigestUpdate(md, c->data, c->len) == 1))
        && EVP_DigestFinal_ex(md, hash, &len) == 1
        && len == NGX_HTTP_CIBA_HASH_LEN)
    {
        return NGX_OK;
    }

    return NGX_ERROR;
}
