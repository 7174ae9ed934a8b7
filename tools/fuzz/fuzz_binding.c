
/*
 * Fuzz target: what the human reads and what goes to the AS
 * (ngx_http_ciba_backchannel.c): the "ciba_binding_message_chars" set,
 * the binding message rendered from the action (bytes outside the set
 * replaced, the length cut), the form encoding of the backchannel
 * request, and the RFC 9396 authorization_details JSON built from the
 * action, method and path.
 *
 * Input: two bytes, then the character set, a NUL byte, the action, a
 * NUL byte, the method, a NUL byte, the path (the rest).
 *   byte 0  the binding message's maximum length
 *   byte 1  bit 0: the character set is the input's, not the default
 *
 * Checked: the message has the right length and only allowed bytes, each
 * the action's byte or "_"; the form encoding decodes to the message and
 * has no byte but the unreserved ones and "%XX"; authorization_details is
 * JSON holding exactly the type, action, digest, method and path, or,
 * only when one of them is not UTF-8, refused.
 */


#include "fuzz_common.h"

/* for ngx_http_ciba_form_add() and ngx_http_ciba_authz_details() */
#include "../../ngx_http_ciba_module/ngx_http_ciba_backchannel.c"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_int_t
ngx_http_ciba_fuzz_utf8(ngx_str_t *s)
{
    json_t  *j;

    j = json_stringn((char *) s->data, s->len);

    if (j == NULL) {
        return 0;
    }

    json_decref(j);

    return 1;
}


static ngx_int_t
ngx_http_ciba_fuzz_is(json_t *v, ngx_str_t *s)
{
    return json_is_string(v)
           && json_string_length(v) == s->len
           && (s->len == 0
               || ngx_memcmp(json_string_value(v), s->data, s->len) == 0);
}


static ngx_int_t
ngx_http_ciba_fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                      *rv;
    u_char                    *p, *last, *q, c;
    size_t                     i, j, n;
    json_t                    *json, *obj, *v;
    ngx_int_t                  rc, hi, lo;
    ngx_str_t                  fields[4], args[2], out, *pair;
    ngx_array_t                form;
    json_error_t               err;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_loc_conf_t   clcf;

    if (size < 2) {
        return 0;
    }

    clcf = *ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE];
    clcf.binding_max = data[0];
    clcf.binding_message = NULL;

    r = ngx_http_ciba_fuzz_request(&clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    p = ngx_http_ciba_fuzz_dup(r->pool, data + 2, size - 2);
    last = p + size - 2;

    for (i = 0; i < 4; i++) {
        q = (i < 3) ? ngx_strlchr(p, last, '\0') : NULL;

        fields[i].data = p;
        fields[i].len = (q ? q : last) - p;

        p = q ? q + 1 : last;
    }

    /* the character set, by the directive's own handler */

    if (data[1] & 0x01) {
        clcf.binding_chars = NULL;

        ngx_str_set(&args[0], "ciba_binding_message_chars");
        args[1].data = ngx_http_ciba_fuzz_dup(r->pool, fields[0].data,
                                              fields[0].len);
        args[1].len = fields[0].len;

        rv = ngx_http_ciba_fuzz_directive(r->pool, &clcf, args, 2);

        if (rv != NGX_CONF_OK) {
            ngx_http_ciba_fuzz_assert(rv != NGX_CONF_ERROR,
                                      "the character set failed");
            ngx_http_ciba_fuzz_free(r);
            return 0;
        }

        ngx_http_ciba_fuzz_assert(clcf.binding_chars['_'],
                                  "a character set without \"_\"");

        /* a single byte or the start of a range: allowed either way */
        ngx_http_ciba_fuzz_assert(clcf.binding_chars[fields[0].data[0]],
                                  "the set's first byte is not allowed");
    }

    ctx->action = fields[1];
    r->method_name = fields[2];
    r->uri = fields[3];

    /* the binding message */

    rc = ngx_http_ciba_render_binding(r, &clcf, ctx);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "render_binding failed");

    n = ngx_min(ctx->action.len, clcf.binding_max);

    ngx_http_ciba_fuzz_assert(ctx->binding_message.len == n,
                              "the binding message's length is wrong");

    for (i = 0; i < n; i++) {
        c = ctx->binding_message.data[i];

        ngx_http_ciba_fuzz_assert(clcf.binding_chars[c]
                                  && (c == ctx->action.data[i] || c == '_'),
                                  "a byte of the binding message is not "
                                  "allowed or not the action's");
    }

    /* its form encoding */

    if (ngx_array_init(&form, r->pool, 2, sizeof(ngx_str_t)) != NGX_OK) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "ngx_array_init()");
    }

    rc = ngx_http_ciba_form_add(r->pool, &form, "binding_message",
                                &ctx->action);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "form_add failed");

    pair = form.elts;

    ngx_http_ciba_fuzz_assert(pair->len >= 16
                              && ngx_memcmp(pair->data, "binding_message=",
                                            16) == 0,
                              "form_add: no name");

    j = 0;

    for (i = 16; i < pair->len; i++) {
        c = pair->data[i];

        if (c == '%') {
            ngx_http_ciba_fuzz_assert(i + 2 < pair->len, "a cut escape");

            hi = ngx_http_ciba_fuzz_hex(pair->data[i + 1]);
            lo = ngx_http_ciba_fuzz_hex(pair->data[i + 2]);

            ngx_http_ciba_fuzz_assert(hi >= 0 && lo >= 0, "a bad escape");

            c = (u_char) (hi * 16 + lo);
            i += 2;

        } else {
            ngx_http_ciba_fuzz_assert((c >= 'A' && c <= 'Z')
                                      || (c >= 'a' && c <= 'z')
                                      || (c >= '0' && c <= '9')
                                      || c == '-' || c == '.' || c == '_'
                                      || c == '~',
                                      "a byte not escaped");
        }

        ngx_http_ciba_fuzz_assert(j < ctx->action.len
                                  && ctx->action.data[j] == c,
                                  "the form value is not the action");
        j++;
    }

    ngx_http_ciba_fuzz_assert(j == ctx->action.len,
                              "the form value is short");

    /* authorization_details */

    rc = ngx_http_ciba_authz_details(r, &clcf, ctx, &out);

    ngx_http_ciba_fuzz_trace("binding: \"%.*s\", authorization_details %d",
                             (int) ctx->binding_message.len,
                             ctx->binding_message.data
                             ? (char *) ctx->binding_message.data : "",
                             (int) rc);

    if (!ngx_http_ciba_fuzz_utf8(&ctx->action)
        || !ngx_http_ciba_fuzz_utf8(&r->method_name)
        || !ngx_http_ciba_fuzz_utf8(&r->uri))
    {
        ngx_http_ciba_fuzz_assert(rc == NGX_ERROR,
                                  "authorization_details from bytes that "
                                  "are not UTF-8");
        ngx_http_ciba_fuzz_free(r);
        return 0;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "authorization_details failed");

    json = json_loadb((char *) out.data, out.len,
                      JSON_REJECT_DUPLICATES|JSON_ALLOW_NUL, &err);

    ngx_http_ciba_fuzz_assert(json_is_array(json)
                              && json_array_size(json) == 1,
                              "authorization_details is not a JSON array "
                              "of one");

    obj = json_array_get(json, 0);

    ngx_http_ciba_fuzz_assert(
        ngx_http_ciba_fuzz_is(json_object_get(obj, "type"), &clcf.rar_type)
        && ngx_http_ciba_fuzz_is(json_object_get(obj, "identifier"),
                                 &ctx->digest)
        && ngx_http_ciba_fuzz_is(json_object_get(obj, "method"),
                                 &r->method_name)
        && ngx_http_ciba_fuzz_is(json_object_get(obj, "path"), &r->uri),
        "authorization_details does not hold the request");

    v = json_object_get(obj, "actions");

    ngx_http_ciba_fuzz_assert(json_is_array(v) && json_array_size(v) == 1
                              && ngx_http_ciba_fuzz_is(json_array_get(v, 0),
                                                       &ctx->action),
                              "authorization_details: not the action");

    json_decref(json);

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
