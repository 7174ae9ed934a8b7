
/*
 * Fuzz target: the canonical form of JSON (ngx_http_ciba_jcs.c, RFC 8785)
 * of what the module's parser takes.
 *
 * Input: a JSON text, as any bytes.
 *
 * Checked, for every object the parser takes:
 *   - the canonical form is refused only for an integer beyond 2^53;
 *   - it is its own canonical form (idempotent), but where it writes a
 *     real number from 2^53 to 1e21 as an integer, which it would refuse
 *     as sent;
 *   - it holds the same value as the input, by jansson's reading of both:
 *     the same members and elements, strings byte for byte, numbers equal
 *     as doubles;
 *   - each object's members are in the order of their names' UTF-16 code
 *     units (compared here by converting them whole);
 *   - no insignificant whitespace, and numbers as ECMAScript writes them:
 *     reading a number back gives the same double, and no shorter digits
 *     would.
 * At start, the number examples of RFC 8785 appendix B and a few others
 * give their expected forms.
 */


#include "fuzz_common.h"

#include <math.h>


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void ngx_http_ciba_fuzz_jcs_vectors(void);
static void ngx_http_ciba_fuzz_check_form(json_t *j, const char *text,
    size_t len);
static size_t ngx_http_ciba_fuzz_utf16(const char *s, uint16_t *out);
static ngx_uint_t ngx_http_ciba_fuzz_big_integer(json_t *j);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();
    ngx_http_ciba_fuzz_jcs_vectors();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                *in, *canon;
    ngx_int_t              rc;
    ngx_str_t              out, again;
    ngx_pool_t            *pool;
    json_error_t           err;
    ngx_http_ciba_json_t   doc, doc2;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pool");
    }

    if (ngx_http_ciba_json_parse(pool, (u_char *) data, size, &doc)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return 0;
    }

    rc = ngx_http_ciba_jcs(pool, &doc, 0, &out);

    if (rc == NGX_DECLINED) {
        in = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                        &err);
        ngx_http_ciba_fuzz_assert(in != NULL
                                  && ngx_http_ciba_fuzz_big_integer(in),
                                  "jcs refused without an integer beyond "
                                  "2^53");
        json_decref(in);
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "jcs: neither OK nor DECLINED");

    /*
     * a real number from 2^53 up to 1e21 is written as an integer, which
     * the parser refuses over 63 bits and the canonical form refuses over
     * 2^53 (as an integer sent, it would be ambiguous): jansson checks
     * such a form below
     */

    if (ngx_http_ciba_json_parse(pool, out.data, out.len, &doc2) == NGX_OK) {
        rc = ngx_http_ciba_jcs(pool, &doc2, 0, &again);

        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED
                                  || (rc == NGX_OK
                                      && again.len == out.len
                                      && ngx_memcmp(again.data, out.data,
                                                    out.len) == 0),
                                  "the canonical form is not its own");
    }

    in = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                    &err);
    canon = json_loadb((const char *) out.data, out.len,
                       JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                       &err);

    ngx_http_ciba_fuzz_assert(in != NULL && canon != NULL,
                              "jansson refuses the input or its form");

    ngx_http_ciba_fuzz_same_json(in, canon);
    ngx_http_ciba_fuzz_check_form(canon, (const char *) out.data, out.len);

    json_decref(in);
    json_decref(canon);

    ngx_destroy_pool(pool);

    return 0;
}


/*
 * The members in UTF-16 order (jansson keeps their order), no whitespace
 * outside strings, numbers in their shortest ECMAScript form
 */

static void
ngx_http_ciba_fuzz_check_form(json_t *j, const char *text, size_t len)
{
    char         num[64], shortest[64], *end, *e;
    size_t       i, k, na, nb, n;
    double       d;
    json_t      *v;
    uint16_t    *ua, *ub;
    ngx_uint_t   in_string, escaped, q, first, last, digits;
    const char  *name, *prev;

    in_string = 0;
    escaped = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (escaped) {
                escaped = 0;

            } else if (text[i] == '\\') {
                escaped = 1;

            } else if (text[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        ngx_http_ciba_fuzz_assert(text[i] != ' ' && text[i] != '\t'
                                  && text[i] != '\n' && text[i] != '\r',
                                  "whitespace in the canonical form");

        if (text[i] == '"') {
            in_string = 1;
            continue;
        }

        if (text[i] != '-' && (text[i] < '0' || text[i] > '9')) {
            continue;
        }

        /* a number: as many significant digits as the shortest form */

        d = strtod(text + i, &end);
        n = end - (text + i);

        ngx_http_ciba_fuzz_assert(n < sizeof(num), "a long number");
        ngx_memcpy(num, text + i, n);
        num[n] = '\0';

        for (q = 1; q < 17; q++) {
            (void) snprintf(shortest, sizeof(shortest), "%.*e", (int) q - 1, d);

            if (strtod(shortest, NULL) == d) {
                break;
            }
        }

        /* the significant digits: no leading or trailing zeros */

        first = 0;
        last = 0;
        digits = 0;

        for (k = 0; k < n && num[k] != 'e'; k++) {
            if (num[k] < '0' || num[k] > '9') {
                continue;
            }

            digits++;

            if (num[k] != '0') {
                if (first == 0) {
                    first = digits;
                }

                last = digits;
            }
        }

        ngx_http_ciba_fuzz_assert(d == 0 ? strcmp(num, "0") == 0
                                         : last - first + 1 == q,
                                  "not the shortest digits");

        e = strchr(num, 'e');

        ngx_http_ciba_fuzz_assert(strchr(num, 'E') == NULL
                                  && (e == NULL
                                      || ((e[1] == '+' || e[1] == '-')
                                          && e[2] != '0'
                                          && (fabs(d) >= 1e21
                                              || fabs(d) < 1e-6)))
                                  && (e != NULL
                                      || d == 0
                                      || (fabs(d) < 1e21
                                          && fabs(d) >= 1e-6)),
                                  "a number not in ECMAScript's form");

        i += n - 1;
    }

    if (!json_is_object(j) && !json_is_array(j)) {
        return;
    }

    if (json_is_array(j)) {
        for (i = 0; i < json_array_size(j); i++) {
            v = json_array_get(j, i);

            if (json_is_object(v) || json_is_array(v)) {
                ngx_http_ciba_fuzz_check_form(v, "", 0);
            }
        }

        return;
    }

    prev = NULL;

    json_object_foreach(j, name, v) {
        if (prev) {
            ua = malloc((strlen(prev) + 1) * sizeof(uint16_t));
            ub = malloc((strlen(name) + 1) * sizeof(uint16_t));
            ngx_http_ciba_fuzz_assert(ua && ub, "malloc");

            na = ngx_http_ciba_fuzz_utf16(prev, ua);
            nb = ngx_http_ciba_fuzz_utf16(name, ub);

            for (k = 0; k < na && k < nb && ua[k] == ub[k]; k++) {
                /* void */
            }

            ngx_http_ciba_fuzz_assert((k == na && na < nb)
                                      || (k < na && k < nb && ua[k] < ub[k]),
                                      "members not in UTF-16 order");
            free(ua);
            free(ub);
        }

        if (json_is_object(v) || json_is_array(v)) {
            ngx_http_ciba_fuzz_check_form(v, "", 0);
        }

        prev = name;
    }
}


/* an integer beyond 2^53 in magnitude somewhere in j */

static ngx_uint_t
ngx_http_ciba_fuzz_big_integer(json_t *j)
{
    size_t       k;
    json_t      *v;
    json_int_t   n;
    const char  *name;

    switch (json_typeof(j)) {

    case JSON_INTEGER:
        n = json_integer_value(j);
        return n > 9007199254740992LL || n < -9007199254740992LL;

    case JSON_OBJECT:
        json_object_foreach(j, name, v) {
            if (ngx_http_ciba_fuzz_big_integer(v)) {
                return 1;
            }
        }

        return 0;

    case JSON_ARRAY:
        for (k = 0; k < json_array_size(j); k++) {
            if (ngx_http_ciba_fuzz_big_integer(json_array_get(j, k))) {
                return 1;
            }
        }

        return 0;

    default:
        return 0;
    }
}


/* valid UTF-8 (jansson checked it) to UTF-16 code units */

static size_t
ngx_http_ciba_fuzz_utf16(const char *s, uint16_t *out)
{
    size_t          n;
    uint32_t        u;
    const uint8_t  *p;

    n = 0;

    for (p = (const uint8_t *) s; *p; /* void */) {
        if (p[0] < 0x80) {
            u = *p++;

        } else if (p[0] < 0xe0) {
            u = ((p[0] & 0x1f) << 6) | (p[1] & 0x3f);
            p += 2;

        } else if (p[0] < 0xf0) {
            u = ((p[0] & 0x0f) << 12) | ((p[1] & 0x3f) << 6) | (p[2] & 0x3f);
            p += 3;

        } else {
            u = ((p[0] & 0x07) << 18) | ((p[1] & 0x3f) << 12)
                | ((p[2] & 0x3f) << 6) | (p[3] & 0x3f);
            p += 4;
        }

        if (u >= 0x10000) {
            u -= 0x10000;
            out[n++] = (uint16_t) (0xd800 + (u >> 10));
            out[n++] = (uint16_t) (0xdc00 + (u & 0x3ff));

        } else {
            out[n++] = (uint16_t) u;
        }
    }

    return n;
}


/* RFC 8785 appendix B and the ECMAScript edges */

static void
ngx_http_ciba_fuzz_jcs_vectors(void)
{
    ngx_str_t              out;
    ngx_uint_t             i;
    ngx_pool_t            *pool;
    ngx_http_ciba_json_t   doc;

    static const char     *v[][2] = {
        { "{\"n\":0}", "{\"n\":0}" },
        { "{\"n\":-0.0}", "{\"n\":0}" },
        { "{\"n\":1.0}", "{\"n\":1}" },
        { "{\"n\":1E2}", "{\"n\":100}" },
        { "{\"n\":4.50}", "{\"n\":4.5}" },
        { "{\"n\":2e-3}", "{\"n\":0.002}" },
        { "{\"n\":0.000001}", "{\"n\":0.000001}" },
        { "{\"n\":1e-7}", "{\"n\":1e-7}" },
        { "{\"n\":1e21}", "{\"n\":1e+21}" },
        { "{\"n\":1e20}", "{\"n\":100000000000000000000}" },
        { "{\"n\":123456789012345678901.0}",
          "{\"n\":123456789012345680000}" },
        { "{\"n\":5e-324}", "{\"n\":5e-324}" },
        { "{\"n\":1.7976931348623157e308}",
          "{\"n\":1.7976931348623157e+308}" },
        { "{\"n\":333333333.33333329}", "{\"n\":333333333.3333333}" },
        { "{\"n\":9007199254740992}", "{\"n\":9007199254740992}" },
        { "{\"n\":-9007199254740992}", "{\"n\":-9007199254740992}" },
        { "{\"n\":0.1}", "{\"n\":0.1}" },
        { "{\"n\":-1.5e-9}", "{\"n\":-1.5e-9}" },
        { "{ \"b\" : [ 1 , true , null , \"x\" ] , \"a\" : { } }",
          "{\"a\":{},\"b\":[1,true,null,\"x\"]}" },
        { "{\"s\":\"\\u00e9\\/\\u001F\\n\\\"\"}",
          "{\"s\":\"\xc3\xa9/\\u001f\\n\\\"\"}" },
        /* U+E000 (3 bytes) before U+10000 (a surrogate pair, 4 bytes) in
         * UTF-8 order, after it in UTF-16 order */
        { "{\"\xee\x80\x80\":1,\"\xf0\x90\x80\x80\":2}",
          "{\"\xf0\x90\x80\x80\":2,\"\xee\x80\x80\":1}" },
        { "{\"b\":1,\"a\":2,\"\":3,\"aa\":4}",
          "{\"\":3,\"a\":2,\"aa\":4,\"b\":1}" },
    };

    pool = ngx_create_pool(4096, ngx_cycle->log);
    ngx_http_ciba_fuzz_assert(pool != NULL, "pool");

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (ngx_http_ciba_json_parse(pool, (u_char *) v[i][0],
                                     strlen(v[i][0]), &doc)
            != NGX_OK)
        {
            fprintf(stderr, "jcs vector %u does not parse: %s\n",
                    (unsigned) i, v[i][0]);
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "a JCS vector");
        }

        if (ngx_http_ciba_jcs(pool, &doc, 0, &out) != NGX_OK
            || out.len != strlen(v[i][1])
            || ngx_memcmp(out.data, v[i][1], out.len) != 0)
        {
            fprintf(stderr, "jcs vector %u: %s gave %.*s, not %s\n",
                    (unsigned) i, v[i][0], (int) out.len, out.data, v[i][1]);
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "a JCS vector");
        }
    }

    /* beyond 2^53: refused, not rounded */
    ngx_http_ciba_fuzz_assert(ngx_http_ciba_json_parse(pool,
                                  (u_char *) "{\"n\":9007199254740993}", 22,
                                  &doc)
                              == NGX_OK
                              && ngx_http_ciba_jcs(pool, &doc, 0, &out)
                                 == NGX_DECLINED,
                              "an integer beyond 2^53 was not refused");

    ngx_destroy_pool(pool);
}
