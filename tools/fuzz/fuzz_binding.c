
/*
 * Fuzz target: what the human reads and what goes to the AS
 * (ngx_http_ciba_backchannel.c): the "ciba_binding_message_chars" set,
 * the binding message rendered from the action (bytes outside the set
 * replaced, the length cut at a UTF-8 boundary), the form encoding of the
 * backchannel request, and the RFC 9396 authorization_details JSON built
 * from the request as ngx_http_ciba_request_check() parsed it: action,
 * location, digest, method, path (as sent, or $uri escaped again), the
 * decoded arguments (bounded), body_sha256 and the operator's fields
 * (ciba_authorization_detail).
 *
 * Input: two bytes, then the character set, the action, the method, the
 * request target and the first operator field's value, each ended by a
 * NUL byte, then the second operator field's value (the rest).
 *   byte 0  the binding message's maximum length
 *   byte 1  bit 0: the character set is the input's, not the default;
 *           bit 1: "ciba_path normalize"; bit 2: "ciba_duplicate_args
 *           keep"; bits 3-6: the parts covered (0: all); bit 7: the two
 *           operator fields are configured
 *
 * Checked: the message is the action's bytes or "_", only allowed bytes,
 * as long as the action up to the maximum, cut only before a byte that
 * is not a UTF-8 continuation byte; the form encoding decodes to the
 * action and has no byte but the unreserved ones and "%XX";
 * authorization_details (for a request the checks accept) is valid JSON,
 * strict UTF-8 throughout, and holds exactly the type, action, location,
 * digest, method, path, the arguments as decoded here (request order, a
 * repeated name as an array, the raw form or "" when the decoded one is
 * not UTF-8, at most 32 and 2048 bytes, then args_truncated), the body
 * hash when the body is covered and the operator's non-empty fields; it
 * is refused (NGX_DECLINED) exactly when an operator field is not UTF-8.
 */


#include "fuzz_common.h"

/* for ngx_http_ciba_form_add() and ngx_http_ciba_authz_details() */
#include "../../ngx_http_ciba_module/ngx_http_ciba_backchannel.c"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/*
 * jansson refuses "\u0000" in an object key (valid JSON): the harness
 * reads every "\u0000" of the module's output as "\u0001", and compares
 * NUL bytes as 0x01
 */

static void
ngx_http_ciba_fuzz_unnul(u_char *p, size_t len)
{
    size_t      i;
    ngx_uint_t  in;

    in = 0;

    for (i = 0; i < len; i++) {
        if (!in) {
            in = (p[i] == '"');
            continue;
        }

        if (p[i] == '"') {
            in = 0;
            continue;
        }

        if (p[i] != '\\' || i + 1 == len) {
            continue;
        }

        if (p[i + 1] == 'u' && len - i >= 6
            && ngx_strncmp(p + i + 2, "0000", 4) == 0)
        {
            p[i + 5] = '1';
        }

        i++;
    }
}


static ngx_int_t
ngx_http_ciba_fuzz_is(json_t *v, ngx_str_t *s)
{
    size_t       i;
    const char  *j;

    if (!json_is_string(v) || json_string_length(v) != s->len) {
        return 0;
    }

    j = json_string_value(v);

    for (i = 0; i < s->len; i++) {
        if ((u_char) j[i] != (s->data[i] ? s->data[i] : 0x01)) {
            return 0;
        }
    }

    return 1;
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


/* a hex digit of either case, or -1 */

static ngx_int_t
ngx_http_ciba_fuzz_xval(u_char c)
{
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return ngx_http_ciba_fuzz_hex(c);
}


/*
 * A name or value as authorization_details shows it: decoded ("+" and
 * "%XX" of either case, in one pass) when that is UTF-8, else as sent
 * when that is, else "".
 */

static json_t *
ngx_http_ciba_fuzz_shown(const u_char *raw, size_t len)
{
    u_char     *d;
    size_t      i, n;
    json_t     *j;
    ngx_int_t   hi, lo;

    d = malloc(len + 1);
    if (d == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (raw[i] == '+') {
            d[n++] = ' ';
            continue;
        }

        if (raw[i] == '%' && len - i >= 3) {
            hi = ngx_http_ciba_fuzz_xval(raw[i + 1]);
            lo = ngx_http_ciba_fuzz_xval(raw[i + 2]);

            if (hi >= 0 && lo >= 0) {
                d[n++] = (u_char) (hi * 16 + lo);
                i += 2;
                continue;
            }
        }

        d[n++] = raw[i];
    }

    if (ngx_http_ciba_fuzz_utf8_strict(d, n)) {
        for (i = 0; i < n; i++) {
            if (d[i] == '\0') {
                d[i] = 0x01;
            }
        }

        j = json_stringn((char *) d, n);

    } else if (ngx_http_ciba_fuzz_utf8_strict(raw, len)) {
        j = json_stringn((char *) raw, len);

    } else {
        j = json_string("");
    }

    free(d);

    if (j == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "json_stringn()");
    }

    return j;
}


/* the args member expected, from the query string in request order */

static json_t *
ngx_http_ciba_fuzz_expect_args(ngx_str_t *query, ngx_uint_t *truncated)
{
    u_char      *p, *last, *amp, *eq;
    size_t       shown, nlen, vlen;
    json_t      *args, *name, *value, *prev, *a;
    ngx_uint_t   i;

    args = json_object();
    if (args == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "json_object()");
    }

    *truncated = 0;
    shown = 0;
    i = 0;

    if (query->len == 0) {
        return args;
    }

    p = query->data;
    last = query->data + query->len;

    while (p < last) {
        for (amp = p; amp < last && *amp != '&'; amp++) { /* void */ }

        if (amp == p) {
            p = amp + 1;
            continue;
        }

        for (eq = p; eq < amp && *eq != '='; eq++) { /* void */ }

        nlen = eq - p;
        vlen = (eq < amp) ? (size_t) (amp - eq - 1) : 0;

        shown += nlen + vlen;

        if (i == 32 || shown > 2048) {
            *truncated = 1;
            break;
        }

        name = ngx_http_ciba_fuzz_shown(p, nlen);
        value = ngx_http_ciba_fuzz_shown(eq + 1, vlen);

        if (eq == amp) {
            json_decref(value);
            value = json_string("");
        }

        prev = json_object_getn(args, json_string_value(name),
                                json_string_length(name));

        if (prev == NULL) {
            json_object_setn_new(args, json_string_value(name),
                                 json_string_length(name), value);

        } else if (json_is_array(prev)) {
            json_array_append_new(prev, value);

        } else {
            a = json_array();
            json_array_append(a, prev);
            json_array_append_new(a, value);
            json_object_setn_new(args, json_string_value(name),
                                 json_string_length(name), a);
        }

        json_decref(name);

        i++;
        p = amp + 1;
    }

    return args;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                      *rv;
    u_char                    *p, *last, *q, c, *loc, *d;
    size_t                     i, j, n;
    json_t                    *json, *obj, *v, *args;
    ngx_int_t                  rc, hi, lo;
    ngx_str_t                  fields[6], dargs[3], out, *pair, query;
    ngx_uint_t                 covers, normalize, ndetails, truncated;
    ngx_uint_t                 bad_detail;
    ngx_array_t                form;
    json_error_t               err;
    ngx_http_request_t        *r;
    ngx_http_ciba_ctx_t       *ctx;
    ngx_http_ciba_detail_t    *det;
    ngx_http_ciba_loc_conf_t   clcf;

    if (size < 2) {
        return 0;
    }

    clcf = *ngx_http_ciba_fuzz_confs[NGX_HTTP_CIBA_FUZZ_CONF_OPAQUE];
    clcf.binding_max = data[0];
    clcf.binding_message = NULL;

    normalize = (data[1] & 0x02) ? 1 : 0;
    covers = (data[1] >> 3) & NGX_HTTP_CIBA_COVER_ALL;
    ndetails = (data[1] & 0x80) ? 2 : 0;

    clcf.covers = covers ? covers : NGX_HTTP_CIBA_COVER_ALL;
    clcf.path_mode = normalize ? NGX_HTTP_CIBA_PATH_NORMALIZE
                               : NGX_HTTP_CIBA_PATH_CANONICAL;
    clcf.duplicate_args = (data[1] & 0x04) ? NGX_HTTP_CIBA_ARGS_KEEP
                                           : NGX_HTTP_CIBA_ARGS_REFUSE;
    clcf.headers = NULL;
    clcf.details = NULL;

    r = ngx_http_ciba_fuzz_request(&clcf);
    ctx = ngx_http_ciba_fuzz_ctx(r);

    p = ngx_http_ciba_fuzz_dup(r->pool, data + 2, size - 2);
    last = p + size - 2;

    for (i = 0; i < 6; i++) {
        q = (i < 5) ? ngx_strlchr(p, last, '\0') : NULL;

        fields[i].data = p;
        fields[i].len = (q ? q : last) - p;

        p = q ? q + 1 : last;
    }

    /* the character set, by the directive's own handler */

    if (data[1] & 0x01) {
        clcf.binding_chars = NULL;

        ngx_str_set(&dargs[0], "ciba_binding_message_chars");
        dargs[1].data = ngx_http_ciba_fuzz_dup(r->pool, fields[0].data,
                                               fields[0].len);
        dargs[1].len = fields[0].len;

        rv = ngx_http_ciba_fuzz_directive(r->pool, &clcf, dargs, 2);

        if (rv != NGX_CONF_OK) {
            ngx_http_ciba_fuzz_assert(rv != NGX_CONF_ERROR,
                                      "the character set failed");
            ngx_http_ciba_fuzz_free(r);
            return 0;
        }

        ngx_http_ciba_fuzz_assert(clcf.binding_chars['_'],
                                  "a character set without \"_\"");

        /*
         * a single byte or the start of a range: allowed either way;
         * "\\" makes the next byte literal
         */
        c = fields[0].data[0];

        if (c == '\\' && fields[0].len > 1) {
            c = fields[0].data[1];
        }

        ngx_http_ciba_fuzz_assert(clcf.binding_chars[c],
                                  "the set's first byte is not allowed");
    }

    /* the operator's fields, by the directive's own handler */

    if (ndetails) {
        clcf.details = NGX_CONF_UNSET_PTR;

        ngx_str_set(&dargs[0], "ciba_authorization_detail");
        ngx_str_set(&dargs[1], "x_ticket");
        ngx_str_set(&dargs[2], "T-1");

        rv = ngx_http_ciba_fuzz_directive(r->pool, &clcf, dargs, 3);
        ngx_http_ciba_fuzz_assert(rv == NGX_CONF_OK,
                                  "ciba_authorization_detail failed");

        ngx_str_set(&dargs[1], "x_t\xc3\xa9l\xc3\xa9");

        rv = ngx_http_ciba_fuzz_directive(r->pool, &clcf, dargs, 3);
        ngx_http_ciba_fuzz_assert(rv == NGX_CONF_OK,
                                  "ciba_authorization_detail failed");

        /* the values: the input's, plain strings */

        det = clcf.details->elts;
        det[0].value.value = fields[4];
        det[0].value.lengths = NULL;
        det[1].value.value = fields[5];
        det[1].value.lengths = NULL;

    }

    ctx->action = fields[1];
    r->method_name = fields[2];
    r->unparsed_uri = fields[3];

    q = ngx_strlchr(fields[3].data, fields[3].data + fields[3].len, '?');

    r->uri.data = fields[3].data;
    r->uri.len = (q ? q : fields[3].data + fields[3].len) - fields[3].data;
    ngx_str_null(&r->args);

    if (q) {
        r->args.data = q + 1;
        r->args.len = fields[3].data + fields[3].len - (q + 1);
    }

    /* the binding message */

    rc = ngx_http_ciba_render_binding(r, &clcf, ctx);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "render_binding failed");

    n = ctx->binding_message.len;

    if (ctx->action.len <= clcf.binding_max) {
        ngx_http_ciba_fuzz_assert(n == ctx->action.len,
                                  "the binding message is cut");

    } else {
        ngx_http_ciba_fuzz_assert(n <= clcf.binding_max,
                                  "the binding message is too long");

        /* cut before a byte that starts a character, or at 0 */

        ngx_http_ciba_fuzz_assert(n == 0
                                  || (ctx->action.data[n] & 0xc0) != 0x80,
                                  "the binding message is cut inside a "
                                  "UTF-8 character");

        for (i = n + 1; i <= clcf.binding_max; i++) {
            ngx_http_ciba_fuzz_assert((ctx->action.data[i] & 0xc0) == 0x80,
                                      "the binding message is cut too "
                                      "short");
        }
    }

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

    /* authorization_details, for a request the checks accept */

    rc = ngx_http_ciba_request_check(r, &clcf, ctx);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED,
                              "the request check failed");

    if (rc != NGX_OK) {
        ngx_http_ciba_fuzz_free(r);
        return 0;
    }

    /* the method as nginx's parser lets it through: letters, "_", "-" */

    for (i = 0; i < r->method_name.len; i++) {
        c = r->method_name.data[i];

        if (!((c >= 'A' && c <= 'Z') || c == '_' || c == '-')) {
            ngx_str_set(&r->method_name, "POST");
            break;
        }
    }

    for (i = 0; i < 64; i++) {
        ctx->body_sha256[i] = "0123456789abcdef"[(i * 7 + data[0]) % 16];
    }

    bad_detail = 0;

    for (i = 0; i < ndetails; i++) {
        if (fields[4 + i].len
            && !ngx_http_ciba_fuzz_utf8_strict(fields[4 + i].data,
                                               fields[4 + i].len))
        {
            bad_detail = 1;
        }
    }

    rc = ngx_http_ciba_authz_details(r, &clcf, ctx, &out);

    ngx_http_ciba_fuzz_trace("binding: \"%.*s\", authorization_details %d",
                             (int) ctx->binding_message.len,
                             ctx->binding_message.data
                             ? (char *) ctx->binding_message.data : "",
                             (int) rc);

    if (bad_detail) {
        ngx_http_ciba_fuzz_assert(rc == NGX_DECLINED,
                                  "authorization_details with an operator "
                                  "field that is not UTF-8");
        ngx_http_ciba_fuzz_free(r);
        return 0;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "authorization_details failed");

    ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_utf8_strict(out.data,
                                                             out.len),
                              "authorization_details is not UTF-8");

    ngx_http_ciba_fuzz_unnul(out.data, out.len);

    json = json_loadb((char *) out.data, out.len,
                      JSON_REJECT_DUPLICATES|JSON_ALLOW_NUL, &err);

    ngx_http_ciba_fuzz_trace("authorization_details: %.*s (%s)",
                             (int) out.len, out.data,
                             json ? "JSON" : err.text);

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
                                 &r->method_name),
        "authorization_details does not hold the request");

    v = json_object_get(obj, "actions");

    ngx_http_ciba_fuzz_assert(json_is_array(v) && json_array_size(v) == 1
                              && ngx_http_ciba_fuzz_is(json_array_get(v, 0),
                                                       &ctx->action),
                              "authorization_details: not the action");

    /* the path: as sent, or $uri escaped again (ASCII, decodes to $uri) */

    v = json_object_get(obj, "path");

    ngx_http_ciba_fuzz_assert(json_is_string(v), "no path");

    if (!normalize) {
        ngx_http_ciba_fuzz_assert(ngx_http_ciba_fuzz_is(v, &r->uri),
                                  "the path is not the one sent");

    } else {
        p = (u_char *) json_string_value(v);
        n = json_string_length(v);

        d = malloc(n + 1);
        if (d == NULL) {
            ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "malloc()");
        }

        j = 0;

        for (i = 0; i < n; i++) {
            ngx_http_ciba_fuzz_assert(p[i] > 0x20 && p[i] < 0x7f
                                      && p[i] != '?' && p[i] != '#',
                                      "the path has a byte unescaped");

            if (p[i] == '%') {
                ngx_http_ciba_fuzz_assert(
                    n - i >= 3 && ngx_http_ciba_fuzz_hex(p[i + 1]) >= 0
                    && ngx_http_ciba_fuzz_hex(p[i + 2]) >= 0,
                    "the path has a bad escape");

                d[j++] = (u_char) (ngx_http_ciba_fuzz_hex(p[i + 1]) * 16
                                   + ngx_http_ciba_fuzz_hex(p[i + 2]));
                i += 2;
                continue;
            }

            d[j++] = p[i];
        }

        ngx_http_ciba_fuzz_assert(j == r->uri.len
                                  && (j == 0
                                      || ngx_memcmp(d, r->uri.data, j) == 0),
                                  "the path does not decode to $uri");
        free(d);
    }

    /* the location: the server name and that path */

    v = json_object_get(obj, "locations");
    loc = (u_char *) json_string_value(json_array_get(v, 0));

    ngx_http_ciba_fuzz_assert(json_is_array(v) && json_array_size(v) == 1
                              && loc != NULL
                              && ngx_strncmp(loc, "http://gw.example", 17)
                                 == 0
                              && ngx_strcmp(loc + 17, json_string_value(
                                     json_object_get(obj, "path")))
                                 == 0,
                              "authorization_details: not the location");

    /* the arguments */

    if (normalize) {
        query = r->args;

    } else {
        ngx_str_null(&query);

        if (q) {
            query.data = q + 1;
            p = ngx_strlchr(query.data, fields[3].data + fields[3].len, '#');
            query.len = (p ? p : fields[3].data + fields[3].len)
                        - query.data;
        }
    }

    args = ngx_http_ciba_fuzz_expect_args(&query, &truncated);

    v = json_object_get(obj, "args");

    if ((clcf.covers & NGX_HTTP_CIBA_COVER_ARGS) && ctx->args->nelts) {
        ngx_http_ciba_fuzz_assert(json_equal(v, args),
                                  "the arguments shown are not the "
                                  "request's");
        ngx_http_ciba_fuzz_assert((json_object_get(obj, "args_truncated")
                                   == json_true())
                                  == (truncated != 0),
                                  "args_truncated is wrong");

    } else {
        ngx_http_ciba_fuzz_assert(v == NULL
                                  && json_object_get(obj, "args_truncated")
                                     == NULL,
                                  "arguments shown that are not covered");
    }

    json_decref(args);

    /* the body hash, the operator's fields */

    v = json_object_get(obj, "body_sha256");

    if (clcf.covers & NGX_HTTP_CIBA_COVER_BODY) {
        ngx_http_ciba_fuzz_assert(json_is_string(v)
                                  && json_string_length(v) == 64
                                  && ngx_memcmp(json_string_value(v),
                                                ctx->body_sha256, 64) == 0,
                                  "body_sha256 is not the body's");

    } else {
        ngx_http_ciba_fuzz_assert(v == NULL, "body_sha256 not covered");
    }

    if (ndetails) {
        ngx_http_ciba_fuzz_assert(
            fields[4].len ? ngx_http_ciba_fuzz_is(json_object_get(obj,
                                                  "x_ticket"), &fields[4])
                          : json_object_get(obj, "x_ticket") == NULL,
            "an operator field is wrong");

        ngx_http_ciba_fuzz_assert(
            fields[5].len ? ngx_http_ciba_fuzz_is(json_object_get(obj,
                                          "x_t\xc3\xa9l\xc3\xa9"), &fields[5])
                          : json_object_get(obj, "x_t\xc3\xa9l\xc3\xa9")
                            == NULL,
            "an operator field is wrong");
    }

    json_decref(json);

    ngx_http_ciba_fuzz_free(r);

    return 0;
}
