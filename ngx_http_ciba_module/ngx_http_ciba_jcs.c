
/*
 * ngx_http_ciba_module: the canonical form of a JSON value (RFC 8785, the
 * JSON Canonicalization Scheme), for digests over JSON that its sender
 * may spell in many ways: members sorted by the UTF-16 code units of
 * their names, no insignificant whitespace, strings with the fewest
 * escapes, numbers as ECMAScript writes an IEEE 754 double.
 *
 * The value comes from the module's strict parser (ngx_http_ciba_json.c):
 * no duplicate member names, valid UTF-8, no lone surrogates.  Integers
 * beyond 2^53 are refused rather than rounded: as doubles, two different
 * integers would have one canonical form, and an approval of one would
 * admit the other.
 */


#include "ngx_http_ciba.h"

#include <math.h>


#define NGX_HTTP_CIBA_JCS_EXACT  9007199254740992LL      /* 2^53 */


#define NGX_HTTP_CIBA_JCS_SIZE   256      /* the output buffer at first */


typedef struct {
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
    ngx_pool_t                 *pool;
    ngx_http_ciba_json_t       *doc;
} ngx_http_ciba_jcs_t;


static ngx_int_t ngx_http_ciba_jcs_value(ngx_http_ciba_jcs_t *w,
    ngx_uint_t i);
static ngx_int_t ngx_http_ciba_jcs_object(ngx_http_ciba_jcs_t *w,
    ngx_uint_t i);
static ngx_int_t ngx_http_ciba_jcs_string(ngx_http_ciba_jcs_t *w,
    ngx_str_t *s);
static ngx_int_t ngx_http_ciba_jcs_number(ngx_http_ciba_jcs_t *w,
    ngx_http_ciba_jnode_t *node);
static ngx_int_t ngx_http_ciba_jcs_put(ngx_http_ciba_jcs_t *w, u_char *p,
    size_t len);
static int ngx_libc_cdecl ngx_http_ciba_jcs_cmp(const void *one,
    const void *two);
static ngx_uint_t ngx_http_ciba_utf16_unit(u_char **p, u_char *last,
    uint32_t *low);


/* the names being sorted, for the comparison function */
static ngx_http_ciba_json_t  *ngx_http_ciba_jcs_doc;


/*
 * The canonical form of the value at node "i": NGX_OK with it in "out";
 * NGX_DECLINED: an integer beyond 2^53 in magnitude; NGX_ERROR: out of
 * memory.
 */

ngx_int_t
ngx_http_ciba_jcs(ngx_pool_t *pool, ngx_http_ciba_json_t *doc, ngx_uint_t i,
    ngx_str_t *out)
{
    ngx_int_t            rc;
    ngx_http_ciba_jcs_t  w;

    w.start = ngx_pnalloc(pool, NGX_HTTP_CIBA_JCS_SIZE);
    if (w.start == NULL) {
        return NGX_ERROR;
    }

    w.pos = w.start;
    w.end = w.start + NGX_HTTP_CIBA_JCS_SIZE;
    w.pool = pool;
    w.doc = doc;

    rc = ngx_http_ciba_jcs_value(&w, i);
    if (rc != NGX_OK) {
        return rc;
    }

    out->data = w.start;
    out->len = w.pos - w.start;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_jcs_value(ngx_http_ciba_jcs_t *w, ngx_uint_t i)
{
    ngx_int_t               rc;
    ngx_uint_t              k, e;
    ngx_http_ciba_jnode_t  *node;

    node = &w->doc->nodes[i];

    switch (node->type) {

    case NGX_HTTP_CIBA_JSON_OBJECT:
        return ngx_http_ciba_jcs_object(w, i);

    case NGX_HTTP_CIBA_JSON_ARRAY:
        if (ngx_http_ciba_jcs_put(w, (u_char *) "[", 1) != NGX_OK) {
            return NGX_ERROR;
        }

        e = i + 1;

        for (k = 0; k < node->count; k++) {
            if (k && ngx_http_ciba_jcs_put(w, (u_char *) ",", 1) != NGX_OK) {
                return NGX_ERROR;
            }

            rc = ngx_http_ciba_jcs_value(w, e);
            if (rc != NGX_OK) {
                return rc;
            }

            e = w->doc->nodes[e].next;
        }

        return ngx_http_ciba_jcs_put(w, (u_char *) "]", 1);

    case NGX_HTTP_CIBA_JSON_STRING:
        return ngx_http_ciba_jcs_string(w, &node->value);

    case NGX_HTTP_CIBA_JSON_INTEGER:
    case NGX_HTTP_CIBA_JSON_REAL:
        return ngx_http_ciba_jcs_number(w, node);

    case NGX_HTTP_CIBA_JSON_TRUE:
        return ngx_http_ciba_jcs_put(w, (u_char *) "true", 4);

    case NGX_HTTP_CIBA_JSON_FALSE:
        return ngx_http_ciba_jcs_put(w, (u_char *) "false", 5);

    default: /* NGX_HTTP_CIBA_JSON_NULL */
        return ngx_http_ciba_jcs_put(w, (u_char *) "null", 4);
    }
}


/* the members in the order of their names' UTF-16 code units */

static ngx_int_t
ngx_http_ciba_jcs_object(ngx_http_ciba_jcs_t *w, ngx_uint_t i)
{
    ngx_int_t               rc;
    ngx_uint_t              k, n, key, *order;
    ngx_http_ciba_jnode_t  *node;

    node = &w->doc->nodes[i];
    n = node->count;

    if (n == 0) {
        return ngx_http_ciba_jcs_put(w, (u_char *) "{}", 2);
    }

    order = ngx_palloc(w->pool, n * sizeof(ngx_uint_t));
    if (order == NULL) {
        return NGX_ERROR;
    }

    key = i + 1;

    for (k = 0; k < n; k++) {
        order[k] = key;
        key = w->doc->nodes[key + 1].next;
    }

    /* a worker runs one request at a time: the static is not shared */
    ngx_http_ciba_jcs_doc = w->doc;
    ngx_qsort(order, n, sizeof(ngx_uint_t), ngx_http_ciba_jcs_cmp);

    if (ngx_http_ciba_jcs_put(w, (u_char *) "{", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    for (k = 0; k < n; k++) {
        if ((k && ngx_http_ciba_jcs_put(w, (u_char *) ",", 1) != NGX_OK)
            || ngx_http_ciba_jcs_string(w, &w->doc->nodes[order[k]].value)
               != NGX_OK
            || ngx_http_ciba_jcs_put(w, (u_char *) ":", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        rc = ngx_http_ciba_jcs_value(w, order[k] + 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_ciba_jcs_put(w, (u_char *) "}", 1);
}


/*
 * RFC 8785 3.2.2.2: '"' and '\\' escaped, the control characters as \b,
 * \t, \n, \f, \r or \u00xx (lowercase), everything else as it is
 */

static ngx_int_t
ngx_http_ciba_jcs_string(ngx_http_ciba_jcs_t *w, ngx_str_t *s)
{
    u_char         c, *p, *plain, *last, esc[6];
    size_t         n;
    static u_char  hex[] = "0123456789abcdef";

    if (ngx_http_ciba_jcs_put(w, (u_char *) "\"", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    last = s->data + s->len;
    plain = s->data;

    for (p = s->data; p < last; p++) {
        c = *p;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        esc[0] = '\\';
        n = 2;

        switch (c) {
        case '"':  esc[1] = '"';  break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b';  break;
        case '\t': esc[1] = 't';  break;
        case '\n': esc[1] = 'n';  break;
        case '\f': esc[1] = 'f';  break;
        case '\r': esc[1] = 'r';  break;

        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0f];
            n = 6;
        }

        /* the bytes before it as they are, then the escape */

        if (ngx_http_ciba_jcs_put(w, plain, p - plain) != NGX_OK
            || ngx_http_ciba_jcs_put(w, esc, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        plain = p + 1;
    }

    if (ngx_http_ciba_jcs_put(w, plain, last - plain) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ciba_jcs_put(w, (u_char *) "\"", 1);
}


/*
 * ECMAScript's Number.prototype.toString() of the double (RFC 8785
 * 3.2.2.3): the shortest digits that read back as the same double, then
 * plain notation for exponents from -7 to 20, exponential otherwise
 */

static ngx_int_t
ngx_http_ciba_jcs_number(ngx_http_ciba_jcs_t *w, ngx_http_ciba_jnode_t *node)
{
    int         exp10, prec;
    u_char      buf[64], out[64], digits[24], *p, *q;
    double      d;
    ngx_int_t   n, k, z;

    if (node->type == NGX_HTTP_CIBA_JSON_INTEGER) {

        if (node->integer > NGX_HTTP_CIBA_JCS_EXACT
            || node->integer < -NGX_HTTP_CIBA_JCS_EXACT)
        {
            return NGX_DECLINED;
        }

        p = ngx_sprintf(buf, "%L", node->integer);

        return ngx_http_ciba_jcs_put(w, buf, p - buf);
    }

    d = node->real;

    if (d == 0) {
        /* -0 too */
        return ngx_http_ciba_jcs_put(w, (u_char *) "0", 1);
    }

    if (!isfinite(d)) {
        return NGX_DECLINED;
    }

    /* the shortest "%.*e" that reads back as d: 1 to 17 digits */

    for (prec = 0; prec < 17; prec++) {
        (void) snprintf((char *) buf, sizeof(buf), "%.*e", prec, d);

        if (strtod((char *) buf, NULL) == d) {
            break;
        }
    }

    /* buf: [-]D[.DDD]e(+|-)XX */

    p = buf;
    q = out;

    if (*p == '-') {
        *q++ = *p++;
    }

    k = 0;

    for ( /* void */ ; *p != 'e'; p++) {
        if (*p != '.') {
            digits[k++] = *p;
        }
    }

    exp10 = atoi((char *) p + 1);

    /* trailing zeros are not significant */
    while (k > 1 && digits[k - 1] == '0') {
        k--;
    }

    /* the value is 0.DIGITS x 10^n */
    n = exp10 + 1;

    if (k <= n && n <= 21) {
        q = ngx_cpymem(q, digits, k);

        for (z = 0; z < n - k; z++) {
            *q++ = '0';
        }

    } else if (0 < n && n <= 21) {
        q = ngx_cpymem(q, digits, n);
        *q++ = '.';
        q = ngx_cpymem(q, digits + n, k - n);

    } else if (-6 < n && n <= 0) {
        *q++ = '0';
        *q++ = '.';

        for (z = 0; z < -n; z++) {
            *q++ = '0';
        }

        q = ngx_cpymem(q, digits, k);

    } else {
        *q++ = digits[0];

        if (k > 1) {
            *q++ = '.';
            q = ngx_cpymem(q, digits + 1, k - 1);
        }

        q = ngx_sprintf(q, "e%c%i", (n - 1 < 0) ? '-' : '+',
                        (n - 1 < 0) ? -(n - 1) : n - 1);
    }

    return ngx_http_ciba_jcs_put(w, out, q - out);
}


/* appends to the output, which grows by doubling in the pool */

static ngx_int_t
ngx_http_ciba_jcs_put(ngx_http_ciba_jcs_t *w, u_char *p, size_t len)
{
    u_char  *start;
    size_t   size;

    if ((size_t) (w->end - w->pos) < len) {
        size = 2 * (w->end - w->start) + len;

        start = ngx_pnalloc(w->pool, size);
        if (start == NULL) {
            return NGX_ERROR;
        }

        w->pos = ngx_cpymem(start, w->start, w->pos - w->start);
        w->start = start;
        w->end = start + size;
    }

    w->pos = ngx_cpymem(w->pos, p, len);

    return NGX_OK;
}


/* two member names by their UTF-16 code units (RFC 8785 3.2.3) */

static int ngx_libc_cdecl
ngx_http_ciba_jcs_cmp(const void *one, const void *two)
{
    u_char      *a, *b, *alast, *blast;
    uint32_t     alow, blow;
    ngx_str_t   *sa, *sb;
    ngx_uint_t   ua, ub;

    sa = &ngx_http_ciba_jcs_doc->nodes[*(ngx_uint_t *) one].value;
    sb = &ngx_http_ciba_jcs_doc->nodes[*(ngx_uint_t *) two].value;

    a = sa->data;
    b = sb->data;
    alast = a + sa->len;
    blast = b + sb->len;
    alow = 0;
    blow = 0;

    while ((a < alast || alow) && (b < blast || blow)) {
        ua = ngx_http_ciba_utf16_unit(&a, alast, &alow);
        ub = ngx_http_ciba_utf16_unit(&b, blast, &blow);

        if (ua != ub) {
            return (ua < ub) ? -1 : 1;
        }
    }

    if (a < alast || alow) {
        return 1;
    }

    if (b < blast || blow) {
        return -1;
    }

    return 0;
}


/*
 * The next UTF-16 code unit of valid UTF-8 at *p; a supplementary
 * character gives its high surrogate, and its low one is kept in *low for
 * the next call.
 */

static ngx_uint_t
ngx_http_ciba_utf16_unit(u_char **p, u_char *last, uint32_t *low)
{
    u_char    *s;
    uint32_t   u;

    if (*low) {
        u = *low;
        *low = 0;
        return u;
    }

    s = *p;

    if (s[0] < 0x80) {
        u = s[0];
        s += 1;

    } else if (s[0] < 0xe0 && last - s >= 2) {
        u = ((s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        s += 2;

    } else if (s[0] < 0xf0 && last - s >= 3) {
        u = ((s[0] & 0x0f) << 12) | ((s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        s += 3;

    } else if (last - s >= 4) {
        u = ((s[0] & 0x07) << 18) | ((s[1] & 0x3f) << 12)
            | ((s[2] & 0x3f) << 6) | (s[3] & 0x3f);
        s += 4;

        u -= 0x10000;
        *low = 0xdc00 + (u & 0x3ff);
        u = 0xd800 + (u >> 10);

    } else {
        /* not UTF-8: the parser never gives it; a byte as it is */
        u = s[0];
        s += 1;
    }

    *p = s;

    return u;
}
