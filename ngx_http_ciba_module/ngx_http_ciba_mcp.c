
/*
 * ngx_http_ciba_module: the JSON-RPC 2.0 messages of the Model Context
 * Protocol (MCP, Streamable HTTP transport), as an agent POSTs them.
 *
 * A message is read with the module's strict JSON parser (no duplicate
 * member names, valid UTF-8, bounded nesting) and classified: a request
 * (method and id), a notification (method, no id), a response or an
 * error from the client (id, result or error, no method), or a batch (a
 * JSON array: older protocol versions).  Of a "tools/call" request it
 * keeps the tool's name and the canonical form (RFC 8785) of its
 * arguments, which is what an approval binds: not the JSON-RPC id, which
 * a client changes on every call, nor "_meta".  What is not a valid
 * message gets the JSON-RPC error code to answer with.
 */


#include "ngx_http_ciba.h"


static ngx_int_t ngx_http_ciba_mcp_refuse(ngx_http_ciba_mcp_msg_t *msg,
    ngx_int_t code, const char *reason);


/*
 * NGX_OK: "msg" describes the message; NGX_DECLINED: not a valid one,
 * msg->code and msg->reason say why; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_http_ciba_mcp_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_http_ciba_mcp_msg_t *msg)
{
    u_char                 *p, *last;
    ngx_int_t               rc, v, params, name, args;
    ngx_http_ciba_json_t   *doc;
    ngx_http_ciba_jnode_t  *node;

    ngx_memzero(msg, sizeof(ngx_http_ciba_mcp_msg_t));

    msg->args = NGX_HTTP_CIBA_JSON_NONE;
    doc = &msg->doc;

    last = text + len;

    for (p = text; p < last; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            break;
        }
    }

    if (p < last && *p == '[') {
        /* a batch: what it holds is looked at by the caller's policy */
        msg->kind = NGX_HTTP_CIBA_MCP_BATCH;
        return NGX_OK;
    }

    rc = ngx_http_ciba_json_parse(pool, text, len, doc);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_PARSE_ERROR,
                                        "not_json");
    }

    v = ngx_http_ciba_json_get(doc, 0, "jsonrpc");

    if (v == NGX_HTTP_CIBA_JSON_NONE
        || doc->nodes[v].type != NGX_HTTP_CIBA_JSON_STRING
        || doc->nodes[v].value.len != 3
        || ngx_strncmp(doc->nodes[v].value.data, "2.0", 3) != 0)
    {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                        "not_jsonrpc");
    }

    /* the id: a string, a number or null (JSON-RPC 2.0, section 4) */

    v = ngx_http_ciba_json_get(doc, 0, "id");

    if (v != NGX_HTTP_CIBA_JSON_NONE) {
        node = &doc->nodes[v];

        if (node->type != NGX_HTTP_CIBA_JSON_STRING
            && node->type != NGX_HTTP_CIBA_JSON_INTEGER
            && node->type != NGX_HTTP_CIBA_JSON_REAL
            && node->type != NGX_HTTP_CIBA_JSON_NULL)
        {
            return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                            "bad_id");
        }

        rc = ngx_http_ciba_jcs(pool, doc, v, &msg->id);

        if (rc == NGX_DECLINED) {
            return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                            "bad_id");
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    v = ngx_http_ciba_json_get(doc, 0, "method");

    if (v == NGX_HTTP_CIBA_JSON_NONE) {

        /* the client's response to a request of the server */

        if (msg->id.len == 0
            || (ngx_http_ciba_json_get(doc, 0, "result")
                == NGX_HTTP_CIBA_JSON_NONE)
               == (ngx_http_ciba_json_get(doc, 0, "error")
                   == NGX_HTTP_CIBA_JSON_NONE))
        {
            return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                            "not_jsonrpc");
        }

        msg->kind = NGX_HTTP_CIBA_MCP_RESPONSE;
        return NGX_OK;
    }

    if (doc->nodes[v].type != NGX_HTTP_CIBA_JSON_STRING) {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                        "bad_method");
    }

    msg->method = doc->nodes[v].value;
    msg->kind = msg->id.len ? NGX_HTTP_CIBA_MCP_REQUEST
                            : NGX_HTTP_CIBA_MCP_NOTIFICATION;

    params = ngx_http_ciba_json_get(doc, 0, "params");

    if (params != NGX_HTTP_CIBA_JSON_NONE
        && doc->nodes[params].type != NGX_HTTP_CIBA_JSON_OBJECT
        && doc->nodes[params].type != NGX_HTTP_CIBA_JSON_ARRAY)
    {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_INVALID,
                                        "bad_params");
    }

    if (msg->method.len != sizeof("tools/call") - 1
        || ngx_strncmp(msg->method.data, "tools/call",
                       sizeof("tools/call") - 1) != 0)
    {
        return NGX_OK;
    }

    /* tools/call: {"name": string, "arguments"?: object, "_meta"?: ...} */

    name = ngx_http_ciba_json_get(doc, params, "name");

    if (name == NGX_HTTP_CIBA_JSON_NONE
        || doc->nodes[name].type != NGX_HTTP_CIBA_JSON_STRING
        || doc->nodes[name].value.len == 0)
    {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_BAD_PARAMS,
                                        "bad_tool_name");
    }

    msg->tool = doc->nodes[name].value;

    args = ngx_http_ciba_json_get(doc, params, "arguments");

    if (args == NGX_HTTP_CIBA_JSON_NONE) {
        ngx_str_set(&msg->arguments, "{}");
        return NGX_OK;
    }

    if (doc->nodes[args].type != NGX_HTTP_CIBA_JSON_OBJECT) {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_BAD_PARAMS,
                                        "bad_arguments");
    }

    rc = ngx_http_ciba_jcs(pool, doc, args, &msg->arguments);

    if (rc == NGX_DECLINED) {
        return ngx_http_ciba_mcp_refuse(msg, NGX_HTTP_CIBA_MCP_BAD_PARAMS,
                                        "inexact_number");
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    msg->args = args;

    return NGX_OK;
}


/*
 * The value of the top-level argument "name" of a tools/call: a string as
 * it is, any other value in canonical form.  NGX_DECLINED: no such
 * argument.
 */

ngx_int_t
ngx_http_ciba_mcp_arg(ngx_pool_t *pool, ngx_http_ciba_mcp_msg_t *msg,
    ngx_str_t *name, ngx_str_t *value)
{
    ngx_int_t  v;

    v = ngx_http_ciba_json_member(&msg->doc, msg->args, name);

    if (v == NGX_HTTP_CIBA_JSON_NONE) {
        return NGX_DECLINED;
    }

    if (msg->doc.nodes[v].type == NGX_HTTP_CIBA_JSON_STRING) {
        *value = msg->doc.nodes[v].value;
        return NGX_OK;
    }

    return ngx_http_ciba_jcs(pool, &msg->doc, v, value);
}


static ngx_int_t
ngx_http_ciba_mcp_refuse(ngx_http_ciba_mcp_msg_t *msg, ngx_int_t code,
    const char *reason)
{
    msg->code = code;
    msg->reason = reason;

    return NGX_DECLINED;
}
