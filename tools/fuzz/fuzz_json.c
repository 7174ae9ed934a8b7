
/*
 * Fuzz target: the module's JSON parser for token headers and payloads
 * (ngx_http_ciba_json.c), against jansson with JSON_REJECT_DUPLICATES,
 * which parsed tokens before.
 *
 * Input: the JSON text, as any bytes (in the fuzzer's own buffer, so a
 * read past its end is seen).
 *
 * Checked: the parser answers NGX_OK or NGX_DECLINED; what it takes,
 * jansson takes too (it is never less strict), and the two agree on
 * every value: types, strings byte for byte, integers, reals, the
 * members of each object in order, the elements of each array; each
 * node's "next" and "count" describe the tree.  What jansson takes and
 * the parser refuses must be one of the refusals it documents: nesting
 * over 32 levels, over 256 members or elements, a real number over 64
 * characters, an integer at the very edge of 64 bits; or a NUL byte
 * outside strings, which jansson's reader lets pass in places (not JSON).
 */


#include "fuzz_common.h"

#include <jansson.h>
#include <limits.h>


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_uint_t ngx_http_ciba_fuzz_same(ngx_http_ciba_json_t *doc,
    ngx_uint_t i, json_t *j);
static ngx_uint_t ngx_http_ciba_fuzz_limits(json_t *j, ngx_uint_t depth,
    const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                *j;
    ngx_int_t              rc;
    ngx_pool_t            *pool;
    json_error_t           err;
    ngx_http_ciba_json_t   doc;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pool");
    }

    rc = ngx_http_ciba_json_parse(pool, (u_char *) data, size, &doc);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "json_parse: neither NGX_OK nor NGX_DECLINED");

    j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &err);

    if (rc == NGX_OK) {
        ngx_http_ciba_fuzz_assert(j != NULL && json_is_object(j),
                                  "the parser took what jansson refuses");
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_same(&doc, 0, j)
                                  == doc.n,
                                  "the parser and jansson disagree");

    } else if (j != NULL && json_is_object(j)
               && memchr(data, '\0', size) == NULL)
    {
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_limits(j, 0, data,
                                                            size),
                                  "the parser refused what jansson takes, "
                                  "within its documented limits");
    }

    if (j) {
        json_decref(j);
    }

    ngx_destroy_pool(pool);

    return 0;
}


/* compares the subtree at node i with j: returns the node after it */

static ngx_uint_t
ngx_http_ciba_fuzz_same(ngx_http_ciba_json_t *doc, ngx_uint_t i, json_t *j)
{
    size_t                  k;
    json_t                 *v;
    ngx_uint_t              c;
    const char             *name;
    ngx_http_ciba_jnode_t  *n;

    ngx_http_ciba_fuzz_assert(i < doc->n, "a node past the end");

    n = &doc->nodes[i];

    switch (n->type) {

    case NGX_HTTP_CIBA_JSON_OBJECT:
        ngx_http_ciba_fuzz_assert(json_is_object(j)
                                  && json_object_size(j) == n->count,
                                  "an object differs");

        /* jansson keeps the order of insertion */

        c = i + 1;
        k = 0;

        json_object_foreach(j, name, v) {
            ngx_http_ciba_fuzz_assert(
                doc->nodes[c].type == NGX_HTTP_CIBA_JSON_STRING
                && doc->nodes[c].value.len == ngx_strlen(name)
                && ngx_memcmp(doc->nodes[c].value.data, name,
                              doc->nodes[c].value.len) == 0,
                "a member name differs");
            ngx_http_ciba_fuzz_assert(doc->nodes[c].next == c + 1,
                                      "a member name's next");
            ngx_http_ciba_fuzz_assert(ngx_http_ciba_json_get(doc, i, name)
                                      == (ngx_int_t) (c + 1),
                                      "json_get() does not find a member");

            c = ngx_http_ciba_fuzz_same(doc, c + 1, v);
            k++;
        }

        ngx_http_ciba_fuzz_assert(k == n->count && n->next == c,
                                  "an object's next");
        return c;

    case NGX_HTTP_CIBA_JSON_ARRAY:
        ngx_http_ciba_fuzz_assert(json_is_array(j)
                                  && json_array_size(j) == n->count,
                                  "an array differs");

        c = i + 1;

        json_array_foreach(j, k, v) {
            c = ngx_http_ciba_fuzz_same(doc, c, v);
        }

        ngx_http_ciba_fuzz_assert(n->next == c, "an array's next");
        return c;

    case NGX_HTTP_CIBA_JSON_STRING:
        ngx_http_ciba_fuzz_assert(json_is_string(j)
                                  && json_string_length(j) == n->value.len
                                  && ngx_memcmp(json_string_value(j),
                                                n->value.data,
                                                n->value.len) == 0,
                                  "a string differs");
        break;

    case NGX_HTTP_CIBA_JSON_INTEGER:
        ngx_http_ciba_fuzz_assert(json_is_integer(j)
                                  && json_integer_value(j) == n->integer,
                                  "an integer differs");
        break;

    case NGX_HTTP_CIBA_JSON_REAL:
        ngx_http_ciba_fuzz_assert(json_is_real(j)
                                  && json_real_value(j) == n->real,
                                  "a real number differs");
        break;

    case NGX_HTTP_CIBA_JSON_TRUE:
        ngx_http_ciba_fuzz_assert(json_is_true(j), "true differs");
        break;

    case NGX_HTTP_CIBA_JSON_FALSE:
        ngx_http_ciba_fuzz_assert(json_is_false(j), "false differs");
        break;

    case NGX_HTTP_CIBA_JSON_NULL:
        ngx_http_ciba_fuzz_assert(json_is_null(j), "null differs");
        break;

    default:
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "a node of no type");
    }

    ngx_http_ciba_fuzz_assert(n->next == i + 1, "a value's next");

    return i + 1;
}


/*
 * Whether a text jansson took goes beyond what the parser documents:
 * nesting, member or element counts, long real numbers, INT64_MIN.
 */

static ngx_uint_t
ngx_http_ciba_fuzz_limits(json_t *j, ngx_uint_t depth, const uint8_t *data,
    size_t size)
{
    size_t       k, run;
    json_t      *v;
    const char  *name;

    if (depth > 32) {
        return 1;
    }

    if (json_is_object(j)) {
        if (json_object_size(j) > 256) {
            return 1;
        }

        json_object_foreach(j, name, v) {
            if (ngx_http_ciba_fuzz_limits(v, depth + 1, data, size)) {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_array(j)) {
        if (json_array_size(j) > 256) {
            return 1;
        }

        json_array_foreach(j, k, v) {
            if (ngx_http_ciba_fuzz_limits(v, depth + 1, data, size)) {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_integer(j) && json_integer_value(j) == LLONG_MIN) {
        return 1;
    }

    if (json_is_real(j)) {

        /* some run of number characters in the text is over 64 long */

        run = 0;

        for (k = 0; k < size; k++) {
            if ((data[k] >= '0' && data[k] <= '9') || data[k] == '.'
                || data[k] == 'e' || data[k] == 'E' || data[k] == '+'
                || data[k] == '-')
            {
                if (++run > 64) {
                    return 1;
                }

            } else {
                run = 0;
            }
        }
    }

    return 0;
}
