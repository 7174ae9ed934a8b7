
/*
 * Fuzz target: MCP's JSON-RPC messages (ngx_http_ciba_mcp.c).
 *
 * Input: a message, as any bytes.
 *
 * Checked: the parser answers NGX_OK or NGX_DECLINED with a JSON-RPC
 * error code (-32700, -32600, -32602) and a reason.  What it takes as a
 * request, a notification or a response, jansson reads alike: "jsonrpc"
 * is "2.0", the method, whether there is an id.  Of a tools/call, the
 * tool's name is params.name, the arguments are the same value as
 * params.arguments (numbers as doubles), and each top-level argument is
 * found by ngx_http_ciba_mcp_arg().  Above all, what an approval binds
 * does not change with what may change between two sendings of one call:
 * the message written again by jansson with another id, a "_meta" added,
 * its members sorted, its numbers spelled "%.17g" and with whitespace,
 * gives the same tool and the same canonical arguments.
 */


#include "fuzz_common.h"



int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);




int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_ciba_fuzz_init();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *again;
    json_t                   *j, *params, *args, *v, *a;
    ngx_int_t                 rc;
    ngx_str_t                 name, value;
    ngx_pool_t               *pool;
    const char               *key;
    json_error_t              err;
    ngx_http_ciba_mcp_msg_t   msg, msg2;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        ngx_http_ciba_fuzz_fail(__FILE__, __LINE__, "pool");
    }

    rc = ngx_http_ciba_mcp_parse(pool, (u_char *) data, size, &msg);

    if (rc == NGX_DECLINED) {
        ngx_http_ciba_fuzz_assert(msg.reason != NULL
                                  && (msg.code == NGX_HTTP_CIBA_MCP_PARSE_ERROR
                                      || msg.code == NGX_HTTP_CIBA_MCP_INVALID
                                      || msg.code
                                         == NGX_HTTP_CIBA_MCP_BAD_PARAMS),
                                  "a refusal without its error");
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_http_ciba_fuzz_assert(rc == NGX_OK, "mcp_parse: neither OK nor "
                              "DECLINED");

    if (msg.kind == NGX_HTTP_CIBA_MCP_BATCH) {
        ngx_destroy_pool(pool);
        return 0;
    }

    j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &err);

    ngx_http_ciba_fuzz_assert(j != NULL && json_is_object(j),
                              "a message jansson does not read");
    ngx_http_ciba_fuzz_assert(json_is_string(json_object_get(j, "jsonrpc"))
                              && strcmp(json_string_value(
                                            json_object_get(j, "jsonrpc")),
                                        "2.0") == 0,
                              "jsonrpc is not 2.0");
    ngx_http_ciba_fuzz_assert((json_object_get(j, "id") != NULL)
                              == (msg.id.len != 0),
                              "the id seen or not");

    if (msg.kind == NGX_HTTP_CIBA_MCP_RESPONSE) {
        ngx_http_ciba_fuzz_assert(json_object_get(j, "method") == NULL,
                                  "a response with a method");
        goto done;
    }

    v = json_object_get(j, "method");

    ngx_http_ciba_fuzz_assert(json_is_string(v)
                              && json_string_length(v) == msg.method.len
                              && memcmp(json_string_value(v), msg.method.data,
                                        msg.method.len) == 0,
                              "the method differs");

    if (msg.tool.len == 0) {
        ngx_http_ciba_fuzz_assert(strcmp(json_string_value(v), "tools/call")
                                  != 0,
                                  "a tools/call without its tool");
        goto done;
    }

    params = json_object_get(j, "params");
    v = json_object_get(params, "name");

    ngx_http_ciba_fuzz_assert(json_is_string(v)
                              && json_string_length(v) == msg.tool.len
                              && memcmp(json_string_value(v), msg.tool.data,
                                        msg.tool.len) == 0,
                              "the tool differs");

    args = json_object_get(params, "arguments");
    a = json_loadb((const char *) msg.arguments.data, msg.arguments.len,
                   JSON_DECODE_INT_AS_REAL, &err);

    ngx_http_ciba_fuzz_assert(a != NULL && json_is_object(a),
                              "the canonical arguments are not an object");

    if (args) {
        ngx_http_ciba_fuzz_same_json(args, a);

        json_object_foreach(args, key, v) {
            name.data = (u_char *) key;
            name.len = strlen(key);

            ngx_http_ciba_fuzz_assert(ngx_http_ciba_mcp_arg(pool, &msg, &name,
                                                            &value)
                                      == NGX_OK,
                                      "an argument not found");

            if (json_is_string(v)) {
                ngx_http_ciba_fuzz_assert(value.len == json_string_length(v)
                                          && memcmp(value.data,
                                                    json_string_value(v),
                                                    value.len) == 0,
                                          "a string argument differs");
            }
        }

    } else {
        ngx_http_ciba_fuzz_assert(json_object_size(a) == 0,
                                  "arguments from nowhere");
    }

    json_decref(a);

    /*
     * the same call sent again: another id, _meta, sorted, respelled
     * (unless a member more would pass the parser's 256)
     */

    if (json_object_size(j) >= 255
        || (json_is_object(params) && json_object_size(params) >= 255))
    {
        goto done;
    }

    json_object_set_new(j, "id", json_string("another-id"));

    if (json_is_object(params)) {
        json_object_set_new(params, "_meta",
                            json_pack("{s:s}", "progressToken", "t"));
    }

    again = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1)
                          | JSON_REAL_PRECISION(17));

    ngx_http_ciba_fuzz_assert(again != NULL, "json_dumps");

    rc = ngx_http_ciba_mcp_parse(pool, (u_char *) again, strlen(again),
                                 &msg2);

    ngx_http_ciba_fuzz_assert(rc == NGX_OK
                              && msg2.tool.len == msg.tool.len
                              && ngx_memcmp(msg2.tool.data, msg.tool.data,
                                            msg.tool.len) == 0
                              && msg2.arguments.len == msg.arguments.len
                              && ngx_memcmp(msg2.arguments.data,
                                            msg.arguments.data,
                                            msg.arguments.len) == 0,
                              "the same call binds differently");

    free(again);

done:

    json_decref(j);
    ngx_destroy_pool(pool);

    return 0;
}
