
/*
 * ngx_http_ciba_module: the JSON of a token's header and payload.
 *
 * A strict RFC 8259 parser into a flat array of nodes in the request's
 * pool, in document order: no allocation per value, nothing to free, so
 * that parsing a token costs a fraction of a general-purpose library's
 * parse.  It accepts exactly what the module took before with jansson's
 * JSON_REJECT_DUPLICATES, and a little less:
 *
 *   - the text is one object, with nothing but whitespace after it;
 *   - strings are UTF-8 (no overlong forms, surrogates or code points
 *     over U+10FFFF), without control characters; escapes are the eight
 *     of RFC 8259 and \uXXXX, surrogates only in pairs, no \u0000;
 *   - numbers follow the grammar; an integer must fit 63 bits, a real
 *     number be finite and at most 64 characters long;
 *   - an object never repeats a member name (compared unescaped);
 *   - at most 32 levels of nesting and 256 members or elements in one
 *     object or array (tokens hold a few claims).
 *
 * A node's "next" is the index of the node after its subtree: the
 * children of a container are node + 1, then each child's next, "count"
 * of them (for an object: names and values alternate).
 */


#include "ngx_http_ciba.h"

#include <math.h>


#define NGX_HTTP_CIBA_JSON_DEPTH    32
#define NGX_HTTP_CIBA_JSON_MEMBERS  256
#define NGX_HTTP_CIBA_JSON_REAL_MAX 64
#define NGX_HTTP_CIBA_JSON_INT_MAX  0x7fffffffffffffffLL


typedef struct {
    u_char                     *pos;
    u_char                     *last;
    ngx_pool_t                 *pool;
    ngx_http_ciba_json_t       *doc;
    ngx_uint_t                  size;       /* nodes allocated */
} ngx_http_ciba_json_parser_t;


static ngx_int_t ngx_http_ciba_json_value(ngx_http_ciba_json_parser_t *jp,
    ngx_uint_t depth);
static ngx_int_t ngx_http_ciba_json_container(
    ngx_http_ciba_json_parser_t *jp, ngx_uint_t i, ngx_uint_t depth);
static ngx_int_t ngx_http_ciba_json_string(ngx_http_ciba_json_parser_t *jp,
    ngx_uint_t i);
static ngx_int_t ngx_http_ciba_json_unescape(ngx_http_ciba_json_parser_t *jp,
    ngx_uint_t i, u_char *start, u_char *end);
static ngx_int_t ngx_http_ciba_json_number(ngx_http_ciba_json_parser_t *jp,
    ngx_uint_t i);
static ngx_int_t ngx_http_ciba_json_node(ngx_http_ciba_json_parser_t *jp,
    ngx_uint_t type, ngx_uint_t *i);
static ngx_int_t ngx_http_ciba_json_hex4(u_char *p, uint32_t *u);
static ngx_int_t ngx_http_ciba_json_unique(ngx_http_ciba_json_t *doc,
    ngx_uint_t obj);


#define ngx_http_ciba_json_skip_ws(jp)                                       \
    while ((jp)->pos < (jp)->last                                            \
           && (*(jp)->pos == ' ' || *(jp)->pos == '\t'                       \
               || *(jp)->pos == '\n' || *(jp)->pos == '\r'))                 \
    {                                                                        \
        (jp)->pos++;                                                         \
    }


/*
 * the bytes a string holds as they are, with nothing to check: ASCII from
 * 0x20, but '"' and '\\'
 */

static const u_char  ngx_http_ciba_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


/*
 * NGX_OK: "doc" holds the object at node 0; NGX_DECLINED: not a JSON
 * object as above; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_http_ciba_json_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_http_ciba_json_t *doc)
{
    ngx_int_t                    rc;
    ngx_http_ciba_json_parser_t  jp;

    jp.pos = text;
    jp.last = text + len;
    jp.pool = pool;
    jp.doc = doc;
    jp.size = 32;

    doc->n = 0;
    doc->nodes = ngx_palloc(pool, jp.size * sizeof(ngx_http_ciba_jnode_t));
    if (doc->nodes == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ciba_json_skip_ws(&jp);

    if (jp.pos == jp.last || *jp.pos != '{') {
        return NGX_DECLINED;
    }

    rc = ngx_http_ciba_json_value(&jp, 0);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ciba_json_skip_ws(&jp);

    return (jp.pos == jp.last) ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_ciba_json_value(ngx_http_ciba_json_parser_t *jp, ngx_uint_t depth)
{
    size_t       n;
    ngx_int_t    rc;
    ngx_uint_t   i, type;
    const char  *word;

    if (jp->pos == jp->last) {
        return NGX_DECLINED;
    }

    switch (*jp->pos) {

    case '{':
    case '[':
        if (depth == NGX_HTTP_CIBA_JSON_DEPTH) {
            return NGX_DECLINED;
        }

        type = (*jp->pos == '{') ? NGX_HTTP_CIBA_JSON_OBJECT
                                 : NGX_HTTP_CIBA_JSON_ARRAY;

        rc = ngx_http_ciba_json_node(jp, type, &i);
        if (rc != NGX_OK) {
            return rc;
        }

        jp->pos++;

        return ngx_http_ciba_json_container(jp, i, depth + 1);

    case '"':
        rc = ngx_http_ciba_json_node(jp, NGX_HTTP_CIBA_JSON_STRING, &i);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ciba_json_string(jp, i);

    case 't':
    case 'f':
    case 'n':
        if (*jp->pos == 't') {
            type = NGX_HTTP_CIBA_JSON_TRUE;
            word = "true";

        } else if (*jp->pos == 'f') {
            type = NGX_HTTP_CIBA_JSON_FALSE;
            word = "false";

        } else {
            type = NGX_HTTP_CIBA_JSON_NULL;
            word = "null";
        }

        n = ngx_strlen(word);

        if ((size_t) (jp->last - jp->pos) < n
            || ngx_strncmp(jp->pos, (u_char *) word, n) != 0)
        {
            return NGX_DECLINED;
        }

        rc = ngx_http_ciba_json_node(jp, type, &i);
        if (rc != NGX_OK) {
            return rc;
        }

        jp->pos += n;
        jp->doc->nodes[i].next = jp->doc->n;

        return NGX_OK;

    default:
        if (*jp->pos != '-' && (*jp->pos < '0' || *jp->pos > '9')) {
            return NGX_DECLINED;
        }

        rc = ngx_http_ciba_json_node(jp, NGX_HTTP_CIBA_JSON_INTEGER, &i);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ciba_json_number(jp, i);
    }
}


/* the members of an object or the elements of an array, after its "{" */

static ngx_int_t
ngx_http_ciba_json_container(ngx_http_ciba_json_parser_t *jp, ngx_uint_t i,
    ngx_uint_t depth)
{
    u_char      close;
    ngx_int_t   rc;
    ngx_uint_t  object, count, name;

    object = (jp->doc->nodes[i].type == NGX_HTTP_CIBA_JSON_OBJECT);
    close = object ? '}' : ']';
    count = 0;

    ngx_http_ciba_json_skip_ws(jp);

    if (jp->pos < jp->last && *jp->pos == close) {
        jp->pos++;
        goto done;
    }

    for ( ;; ) {

        if (count == NGX_HTTP_CIBA_JSON_MEMBERS) {
            return NGX_DECLINED;
        }

        ngx_http_ciba_json_skip_ws(jp);

        if (object) {
            if (jp->pos == jp->last || *jp->pos != '"') {
                return NGX_DECLINED;
            }

            rc = ngx_http_ciba_json_node(jp, NGX_HTTP_CIBA_JSON_STRING,
                                         &name);
            if (rc != NGX_OK) {
                return rc;
            }

            rc = ngx_http_ciba_json_string(jp, name);
            if (rc != NGX_OK) {
                return rc;
            }

            ngx_http_ciba_json_skip_ws(jp);

            if (jp->pos == jp->last || *jp->pos != ':') {
                return NGX_DECLINED;
            }

            jp->pos++;

            ngx_http_ciba_json_skip_ws(jp);
        }

        rc = ngx_http_ciba_json_value(jp, depth);
        if (rc != NGX_OK) {
            return rc;
        }

        count++;

        ngx_http_ciba_json_skip_ws(jp);

        if (jp->pos == jp->last) {
            return NGX_DECLINED;
        }

        if (*jp->pos == ',') {
            jp->pos++;
            continue;
        }

        if (*jp->pos == close) {
            jp->pos++;
            break;
        }

        return NGX_DECLINED;
    }

done:

    jp->doc->nodes[i].count = (uint32_t) count;
    jp->doc->nodes[i].next = (uint32_t) jp->doc->n;

    if (object) {
        return ngx_http_ciba_json_unique(jp->doc, i);
    }

    return NGX_OK;
}


/* a string at jp->pos (its '"'): its value, unescaped when it has to be */

static ngx_int_t
ngx_http_ciba_json_string(ngx_http_ciba_json_parser_t *jp, ngx_uint_t i)
{
    u_char      *p, *start;
    ngx_uint_t   escaped;

    start = ++jp->pos;

    /* most strings are printable ASCII without escapes: nothing to check */

    for (p = start; p < jp->last && ngx_http_ciba_json_plain[*p]; p++) {
        /* void */
    }

    if (p < jp->last && *p == '"') {
        jp->pos = p + 1;
        jp->doc->nodes[i].next = (uint32_t) jp->doc->n;
        jp->doc->nodes[i].value.data = start;
        jp->doc->nodes[i].value.len = p - start;

        return NGX_OK;
    }

    escaped = 0;

    for ( /* void */ ; p < jp->last; p++) {

        if (*p == '"') {
            break;
        }

        if (*p < 0x20) {
            return NGX_DECLINED;
        }

        if (*p == '\\') {
            escaped = 1;

            /* the escaped character is looked at when unescaping */
            if (++p == jp->last) {
                return NGX_DECLINED;
            }
        }
    }

    if (p == jp->last) {
        return NGX_DECLINED;
    }

    jp->pos = p + 1;
    jp->doc->nodes[i].next = (uint32_t) jp->doc->n;

    if (escaped) {
        return ngx_http_ciba_json_unescape(jp, i, start, p);
    }

    if (ngx_http_ciba_utf8_valid(start, p - start) != NGX_OK) {
        return NGX_DECLINED;
    }

    jp->doc->nodes[i].value.data = start;
    jp->doc->nodes[i].value.len = p - start;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_json_unescape(ngx_http_ciba_json_parser_t *jp, ngx_uint_t i,
    u_char *start, u_char *end)
{
    u_char    *p, *d, *dst;
    uint32_t   u, lo;

    /* the value is never longer than its escaped form */

    dst = ngx_pnalloc(jp->pool, end - start);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    d = dst;

    for (p = start; p < end; /* void */) {

        if (*p != '\\') {
            *d++ = *p++;
            continue;
        }

        p++;

        switch (*p++) {
        case '"':  *d++ = '"';  continue;
        case '\\': *d++ = '\\'; continue;
        case '/':  *d++ = '/';  continue;
        case 'b':  *d++ = '\b'; continue;
        case 'f':  *d++ = '\f'; continue;
        case 'n':  *d++ = '\n'; continue;
        case 'r':  *d++ = '\r'; continue;
        case 't':  *d++ = '\t'; continue;
        case 'u':  break;
        default:   return NGX_DECLINED;
        }

        if (end - p < 4 || ngx_http_ciba_json_hex4(p, &u) != NGX_OK) {
            return NGX_DECLINED;
        }

        p += 4;

        if (u >= 0xdc00 && u <= 0xdfff) {
            /* a low surrogate alone */
            return NGX_DECLINED;
        }

        if (u >= 0xd800 && u <= 0xdbff) {

            /* a high surrogate: a low one must follow */

            if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                || ngx_http_ciba_json_hex4(p + 2, &lo) != NGX_OK
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return NGX_DECLINED;
            }

            p += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }

        if (u == 0) {
            return NGX_DECLINED;
        }

        if (u < 0x80) {
            *d++ = (u_char) u;

        } else if (u < 0x800) {
            *d++ = (u_char) (0xc0 | (u >> 6));
            *d++ = (u_char) (0x80 | (u & 0x3f));

        } else if (u < 0x10000) {
            *d++ = (u_char) (0xe0 | (u >> 12));
            *d++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (u & 0x3f));

        } else {
            *d++ = (u_char) (0xf0 | (u >> 18));
            *d++ = (u_char) (0x80 | ((u >> 12) & 0x3f));
            *d++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (u & 0x3f));
        }
    }

    /* the raw bytes between the escapes must be UTF-8 too */

    if (ngx_http_ciba_utf8_valid(dst, d - dst) != NGX_OK) {
        return NGX_DECLINED;
    }

    jp->doc->nodes[i].value.data = dst;
    jp->doc->nodes[i].value.len = d - dst;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_json_hex4(u_char *p, uint32_t *u)
{
    u_char      c;
    ngx_uint_t  k;

    *u = 0;

    for (k = 0; k < 4; k++) {
        c = p[k];

        if (c >= '0' && c <= '9') {
            *u = (*u << 4) | (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            *u = (*u << 4) | ((c | 0x20) - 'a' + 10);

        } else {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: an integer that fits 63
 * bits, or a finite real number
 */

static ngx_int_t
ngx_http_ciba_json_number(ngx_http_ciba_json_parser_t *jp, ngx_uint_t i)
{
    u_char                 *p, *start, buf[NGX_HTTP_CIBA_JSON_REAL_MAX + 1];
    double                  d;
    int64_t                 v;
    ngx_uint_t              negative, real, overflow;
    ngx_http_ciba_jnode_t  *node;

    p = start = jp->pos;
    negative = 0;
    real = 0;
    overflow = 0;
    v = 0;

    if (*p == '-') {
        negative = 1;

        if (++p == jp->last) {
            return NGX_DECLINED;
        }
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {

        while (p < jp->last && *p >= '0' && *p <= '9') {

            /* too large for an integer; a real number may follow */

            if (v > (NGX_HTTP_CIBA_JSON_INT_MAX - (*p - '0')) / 10) {
                overflow = 1;
            }

            if (!overflow) {
                v = v * 10 + (*p - '0');
            }

            p++;
        }

    } else {
        return NGX_DECLINED;
    }

    if (p < jp->last && *p == '.') {
        real = 1;

        if (++p == jp->last || *p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        while (p < jp->last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < jp->last && (*p == 'e' || *p == 'E')) {
        real = 1;

        if (++p < jp->last && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == jp->last || *p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        while (p < jp->last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    jp->pos = p;

    node = &jp->doc->nodes[i];
    node->next = (uint32_t) jp->doc->n;
    node->value.data = start;
    node->value.len = p - start;

    if (!real) {
        if (overflow) {
            return NGX_DECLINED;
        }

        node->integer = negative ? -v : v;
        return NGX_OK;
    }

    if ((size_t) (p - start) > NGX_HTTP_CIBA_JSON_REAL_MAX) {
        return NGX_DECLINED;
    }

    ngx_memcpy(buf, start, p - start);
    buf[p - start] = '\0';

    d = strtod((char *) buf, NULL);

    if (!isfinite(d)) {
        return NGX_DECLINED;
    }

    node->type = NGX_HTTP_CIBA_JSON_REAL;
    node->real = d;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ciba_json_node(ngx_http_ciba_json_parser_t *jp, ngx_uint_t type,
    ngx_uint_t *i)
{
    ngx_http_ciba_jnode_t  *nodes;

    if (jp->doc->n == jp->size) {
        nodes = ngx_palloc(jp->pool,
                           2 * jp->size * sizeof(ngx_http_ciba_jnode_t));
        if (nodes == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(nodes, jp->doc->nodes,
                   jp->size * sizeof(ngx_http_ciba_jnode_t));

        jp->doc->nodes = nodes;
        jp->size *= 2;
    }

    *i = jp->doc->n++;

    ngx_memzero(&jp->doc->nodes[*i], sizeof(ngx_http_ciba_jnode_t));
    jp->doc->nodes[*i].type = (u_char) type;

    return NGX_OK;
}


/* no member name twice in one object */

static ngx_int_t
ngx_http_ciba_json_unique(ngx_http_ciba_json_t *doc, ngx_uint_t obj)
{
    ngx_str_t   *a, *b;
    ngx_uint_t   k, j, ka, kb;

    ka = obj + 1;

    for (k = 0; k < doc->nodes[obj].count; k++) {
        a = &doc->nodes[ka].value;
        kb = doc->nodes[ka + 1].next;

        for (j = k + 1; j < doc->nodes[obj].count; j++) {
            b = &doc->nodes[kb].value;

            if (a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0)
            {
                return NGX_DECLINED;
            }

            kb = doc->nodes[kb + 1].next;
        }

        ka = doc->nodes[ka + 1].next;
    }

    return NGX_OK;
}


/* the value of member "name" of the object at "obj"; or none */

ngx_int_t
ngx_http_ciba_json_get(ngx_http_ciba_json_t *doc, ngx_int_t obj,
    const char *name)
{
    ngx_str_t  s;

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    return ngx_http_ciba_json_member(doc, obj, &s);
}


/* the same, for a name that is not a C string */

ngx_int_t
ngx_http_ciba_json_member(ngx_http_ciba_json_t *doc, ngx_int_t obj,
    ngx_str_t *name)
{
    ngx_uint_t  k, key;

    if (obj < 0 || doc->nodes[obj].type != NGX_HTTP_CIBA_JSON_OBJECT) {
        return NGX_HTTP_CIBA_JSON_NONE;
    }

    key = obj + 1;

    for (k = 0; k < doc->nodes[obj].count; k++) {

        if (doc->nodes[key].value.len == name->len
            && ngx_memcmp(doc->nodes[key].value.data, name->data, name->len)
               == 0)
        {
            return key + 1;
        }

        key = doc->nodes[key + 1].next;
    }

    return NGX_HTTP_CIBA_JSON_NONE;
}
