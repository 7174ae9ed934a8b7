
/*
 * ngx_http_ciba_module: the state file ("ciba_zone ... state=path").
 *
 * When nginx stops, the master saves the zone's epoch and its live
 * single-use records (expiry and key, nothing else) to the file, with a
 * SHA-256 of it all; when nginx starts, the zone loads them and removes
 * the file, which is good for one start: after a crash there is none, and
 * the epoch is the new start.
 */


#include "ngx_http_ciba_zone.h"


#define NGX_HTTP_CIBA_STATE_MAGIC  "ngx-ciba-state/1"


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


static void ngx_http_ciba_save_zone(ngx_http_ciba_zone_t *zone,
    ngx_log_t *log);


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
    u_char                       *buf, *p;
    size_t                        size;
    time_t                        now;
    ngx_fd_t                      fd;
    ngx_str_t                     tmp;
    ngx_rbtree_node_t            *node, *sentinel;
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

    size = sizeof(head) + zone->sh->count * sizeof(srec)
           + NGX_HTTP_CIBA_HASH_LEN;

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

    sentinel = zone->sh->expiry.sentinel;

    for (node = (zone->sh->expiry.root == sentinel)
                ? NULL : ngx_rbtree_min(zone->sh->expiry.root, sentinel);
         node;
         node = ngx_rbtree_next(&zone->sh->expiry, node))
    {
        rec = ngx_http_ciba_record_of_expiry(node);

        if (rec->kind != NGX_HTTP_CIBA_REC_USED
            || ngx_http_ciba_record_expire(rec) <= now)
        {
            continue;
        }

        srec.expire = ngx_http_ciba_record_expire(rec);
        ngx_memcpy(srec.hash, rec->hash, NGX_HTTP_CIBA_HASH_LEN);

        p = ngx_cpymem(p, &srec, sizeof(srec));
        head.count++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_memcpy(buf, &head, sizeof(head));

    if (ngx_http_ciba_sha256_buf(buf, p - buf, p) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "ciba: the state of zone \"%V\" not saved: SHA-256 "
                      "failed", &zone->state_file);
        ngx_free(buf);
        return;
    }

    p += NGX_HTTP_CIBA_HASH_LEN;

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


void
ngx_http_ciba_load_state(ngx_http_ciba_zone_t *zone, ngx_log_t *log)
{
    u_char                       *buf, md_value[NGX_HTTP_CIBA_HASH_LEN];
    off_t                         size;
    time_t                        now;
    ssize_t                       n;
    uint64_t                      i, loaded;
    ngx_fd_t                      fd;
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

    if (size < (off_t) (sizeof(head) + NGX_HTTP_CIBA_HASH_LEN)
        || (size - sizeof(head) - NGX_HTTP_CIBA_HASH_LEN) % sizeof(srec) != 0
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

    if (ngx_http_ciba_sha256_buf(buf, size - NGX_HTTP_CIBA_HASH_LEN,
                                 md_value)
        != NGX_OK
        || ngx_memcmp(md_value, buf + size - NGX_HTTP_CIBA_HASH_LEN,
                      NGX_HTTP_CIBA_HASH_LEN)
           != 0)
    {
        goto invalid;
    }

    ngx_memcpy(&head, buf, sizeof(head));

    if (ngx_memcmp(head.magic, NGX_HTTP_CIBA_STATE_MAGIC,
                   sizeof(NGX_HTTP_CIBA_STATE_MAGIC) - 1) != 0
        || head.count != (uint64_t) (size - sizeof(head)
                                     - NGX_HTTP_CIBA_HASH_LEN) / sizeof(srec)
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
