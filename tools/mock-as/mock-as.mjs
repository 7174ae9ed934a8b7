#!/usr/bin/env node
/*
 * mock-as: a scriptable OpenID Connect CIBA (CIBA Core 1.0) authorization
 * server for the ngx_http_ciba_module test suite.  Loopback only, node
 * built-ins only (node:http, node:crypto, node:url; node:fs for --key and
 * --config), Node.js >= 20.
 *
 *   node tools/mock-as/mock-as.mjs --port 0 [--key FILE] [--kid KID]
 *                                  [--config FILE] [--verbose]
 *
 *   --port N       TCP port on 127.0.0.1 (0: pick a free one); default 0
 *   --bind ADDR    only 127.0.0.1 is accepted; anything else is refused
 *   --key FILE     PEM EC P-256 private key (default: a fresh key)
 *   --kid KID      key id (default: the RFC 7638 JWK thumbprint)
 *   --config FILE  JSON applied like POST /_admin/config at start (and
 *                  restored by POST /_admin/reset)
 *   --verbose      one line per request on stderr
 *
 * When it listens it prints exactly one line on stdout:
 *
 *   mock-as listening on 127.0.0.1:PORT
 *
 * SIGTERM / SIGINT: closes every connection and exits 0.
 *
 *
 * AS ENDPOINTS (what the module talks to)
 * ---------------------------------------
 * POST /bc-authorize   CIBA backchannel authentication request.  Form body
 *     (Content-Type application/x-www-form-urlencoded, no parameter twice).
 *     Client authentication: "Authorization: Basic" (client_secret_basic,
 *     id and secret form-urlencoded before base64, RFC 6749 2.3.1) or
 *     client_id + client_secret form fields (client_secret_post); both at
 *     once is invalid_request.  Checks, in order:
 *       client                               401 invalid_client
 *       scope present and contains "openid"  400 invalid_request / invalid_scope
 *       exactly one hint, and it is login_hint   400 invalid_request
 *       login_hint is a known user           400 unknown_user_id
 *       client_notification_token (ping/push clients; <= 1024 chars)
 *                                            400 invalid_request
 *       binding_message matches the regex    400 invalid_binding_message
 *       requested_expiry a positive integer  400 invalid_request
 *       authorization_details: a JSON array of objects with a string "type"
 *         (of an allowed type when configured)  400 invalid_authorization_details
 *     200 {"auth_req_id", "expires_in", "interval"} ("interval" omitted when
 *     configured null).  expires_in is requested_expiry when given (unless
 *     honor_requested_expiry is false), else the configured expires_in.
 *
 * POST /token   grant_type=urn:openid:params:grant-type:ciba&auth_req_id=...
 *     client authenticated as above.  Answers:
 *       no grant_type / auth_req_id          400 invalid_request
 *       other grant_type                     400 unsupported_grant_type
 *       push-mode client                     400 unauthorized_client
 *       unknown id, another client's id, already redeemed  400 invalid_grant
 *       pending                              400 authorization_pending
 *       pending, polled again sooner than the interval (5 s when none was
 *         returned), when slow_down is on    400 slow_down (interval += 5 s)
 *       approved                             200 {"access_token", "token_type":
 *                                            "Bearer", "expires_in", "id_token"}
 *                                            once (then invalid_grant)
 *       denied                               400 access_denied (or the error
 *                                            given to /_admin/deny)
 *       expired                              400 expired_token
 *     The access token is an ES256 JWT, header {alg, typ "at+jwt", kid},
 *     claims iss, aud, sub, iat, exp, jti, scope, client_id and
 *     authorization_details (the JSON received in the backchannel request).
 *     The id_token: header {alg, typ "JWT", kid}, claims iss, aud (client
 *     id), sub, iat, exp, auth_time, urn:openid:params:jwt:claim:auth_req_id,
 *     at_hash (base64url of the left half of SHA-256 of the access token).
 *
 * GET /jwks   {"keys": [{kty, crv, x, y, kid, use "sig", alg "ES256"}]}
 * GET /.well-known/openid-configuration   a discovery document naming these.
 * Anything else                           404 {"error": "not_found"}
 *
 * Every answer is JSON with Cache-Control: no-store; errors are RFC 6749
 * {"error", "error_description"}; 401 answers carry WWW-Authenticate: Basic.
 *
 *
 * ADMIN API (tests drive the mock with it; JSON in, JSON out)
 * -----------------------------------------------------------
 * Bad input to any admin endpoint is 400 {"error", "error_description"};
 * unknown paths 404; wrong methods 405.  Admin requests are not logged.
 *
 * POST /_admin/reset  {"keep_config": false}
 *     Forgets the request log and counts, all auth requests, all queued
 *     scripts; closes hung and delayed connections.  Options go back to
 *     their start values (defaults + --config) unless keep_config is true.
 *     Clients, users and keys are kept.  -> {"reset": true}
 *
 * GET  /_admin/config  -> {"options": {...}, "clients": {...}, "users": {...}}
 * POST /_admin/config  any subset of:
 *     issuer          string, or null for http://127.0.0.1:PORT (default)
 *     audience        string or array (default "https://tools.example")
 *     expires_in      seconds an auth request lives (default 120)
 *     honor_requested_expiry  bool (default true)
 *     interval        seconds, or null to omit it from answers (default 5)
 *     slow_down       bool: answer slow_down to early polls (default true;
 *                     real oidc-provider never sends it)
 *     binding_message_regex    string (JS RegExp), or null for no check
 *                     (default "^[a-zA-Z0-9-._+/!?# ]{1,64}$")
 *     binding_message_required bool (default false)
 *     authorization_details_types  null (any) or array of allowed types
 *     token_ttl       access/id token lifetime in seconds (default 300)
 *     access_token_format  "jwt" (default) or "opaque"
 *     id_token        bool: include an id_token in token answers (default true)
 *     corrupt         string or array: corrupt every token issued from now on;
 *                     names as for /_admin/approve below
 *     callback_timeout_ms  for ping/push/notify callbacks (default 5000)
 *     clients         {"<client_id>": {"secret", "mode": "poll"|"ping"|"push",
 *                     "callback": "http://127.0.0.1:P/path" | null,
 *                     "auth_method": "any"|"client_secret_basic"|
 *                     "client_secret_post"}, ...}; fields merge into an
 *                     existing client, null deletes one.  Defaults:
 *                     poll-client/poll-secret (poll), ping-client/ping-secret
 *                     (ping), push-client/push-secret (push), any auth method,
 *                     no callback.
 *     users           replaces the users: ["alice", ...] or
 *                     {"alice": {"sub": "user-1"}, ...} (default alice, bob;
 *                     sub defaults to the name)
 *     Unknown options are refused (400), nothing is changed then.
 *     -> the new configuration, as GET.
 *
 * POST /_admin/script  {"endpoint": "/bc-authorize", "responses": [...],
 *                       "replace": false}
 *     Queues answers for an endpoint (any path not under /_admin), consumed
 *     one per request, in order; with an empty queue the endpoint behaves
 *     normally.  Each response is an object:
 *       {"status": 500, "body": "oops"}            exactly that (no
 *                                   Content-Type unless given in headers)
 *       {"status": 200, "json": {...}}             JSON body, JSON type
 *       {"status": 200, "body_base64": "..."}      raw bytes
 *       {"status": 302, "headers": {"Location": "http://127.0.0.1:1/"}}
 *       {"fault": "refuse"}     read the request, close without answering
 *       {"fault": "reset"}      the same with a TCP RST
 *       {"fault": "hang"}       never answer (the connection is closed by
 *                               /_admin/reset or at exit)
 *       {"fault": "garbage"}    200, Content-Type application/json, non-JSON
 *       {"fault": "huge", "size": 10485760, "chunked": false}
 *                               200 JSON-looking body of exactly size bytes
 *                               (default 10 MiB; chunked: no Content-Length)
 *       {"fault": "truncated", "size": 1000}
 *                               200 with Content-Length size, fewer bytes,
 *                               then the connection is closed
 *       {"delay_ms": 2000, ...} wait first (alone: then answer normally)
 *       {}                      answer normally
 *       "times": N              (in any response) queue it N times
 *     "response": {...} may stand for "responses": [{...}].
 *     -> {"endpoint", "queued": N}
 * GET  /_admin/script  -> {"scripts": {"<endpoint>": queued count, ...}}
 *
 * GET /_admin/requests[?path=/token][&since=SEQ]
 *     -> {"count", "counts": {"<path>": n, ...}, "requests": [{seq, time (ms
 *        since the epoch), method, path, query, headers (lower-case names),
 *        raw_headers, body (raw, UTF-8), body_length, form (parsed form
 *        fields; an array when repeated), client_id, client_auth
 *        ("client_secret_basic"|"client_secret_post"|null), scripted (the
 *        script step, or null), status (null when no answer was sent),
 *        answer (the JSON answered by the normal endpoint)}]}
 *     counts are over every request since the last reset (not filtered).
 *
 * GET /_admin/auth            -> {"auth_requests": [...]}
 * GET /_admin/auth/<id>       -> one auth request, or 404
 * GET /_admin/pending         -> {"pending": [...]} (state pending only)
 *     Each: auth_req_id, client_id, mode, state (pending, approved, denied,
 *     expired), sub, login_hint, scope, binding_message, acr_values,
 *     requested_expiry, authorization_details (raw string as received),
 *     authorization_details_json (parsed), client_notification_token,
 *     expires_in, interval (as answered), poll_interval (in force), polls,
 *     created_at, expires_at, last_poll_at, decided_at, redeemed_at (ms),
 *     error, error_description, corrupt, tokens (the last issued),
 *     notifications ([{time, kind, url, status, error}]).
 *
 * POST /_admin/approve  {"auth_req_id": "..."} or {"login_hint": "alice"
 *                        [, "client_id": "..."]} (the latest pending one)
 *     options: "sub" (the approver, default the user's sub), "notify"
 *     (default true), "notification_token" (send this bearer instead of the
 *     client's client_notification_token), "callback" (URL instead of the
 *     client's), "corrupt" (string or array, stored for this request's
 *     tokens: "iss", "aud", "sub", "iat", "exp", "auth_req_id", "at_hash",
 *     "signature", "kid" for the id_token; "access_token.iss", ".aud",
 *     ".sub", ".iat", ".exp", ".jti", ".scope", ".client_id",
 *     ".authorization_details", ".signature", ".kid", ".typ" for the access
 *     token), "force" (act on a request that is not pending, even an
 *     expired or redeemed one: it can then be redeemed again).
 *     Marks it approved.  Ping client: POSTs {"auth_req_id"} to the
 *     callback with "Authorization: Bearer <client_notification_token>".
 *     Push client: issues the tokens (the request is then redeemed) and
 *     POSTs {"auth_req_id", "access_token", "token_type", "expires_in",
 *     "id_token"} likewise.
 *     -> {"auth_req_id", "client_id", "mode", "state", "notified",
 *         "notification": {url, status, headers, body, error, sent: {headers,
 *         json}} | null, "tokens": the pushed tokens | null}
 *     409 {"error": "not_pending"} when it is not pending (without force);
 *     404 when there is no such request.
 * POST /_admin/deny     likewise; "error": "access_denied" (default) or
 *     "transaction_failed", "error_description".  Ping: a ping; push:
 *     {"auth_req_id", "error", "error_description"}.  The token endpoint
 *     answers that error afterwards.
 * POST /_admin/expire   likewise; push sends error "expired_token"; the token
 *     endpoint answers expired_token.
 *
 * POST /_admin/notify  {"client_id" | "auth_req_id" | "url", "method": "POST",
 *                       "headers": {...}, "json": any | "body": "..." |
 *                       "body_base64": "..."}
 *     Sends exactly that (headers as given, nothing added except
 *     Content-Type application/json for "json" and Content-Length) to the
 *     URL, or to the callback of the client (of the auth request).
 *     -> {"url", "status", "headers", "body", "error"}
 *
 * GET  /_admin/key     -> {"kid", "private_pem", "public_pem", "jwk"} of the
 *                         current signing key
 * POST /_admin/rotate  {"keep_old": true} -> {"kid", "kids"}: a new signing
 *                         key; the old ones stay in /jwks unless keep_old is
 *                         false.
 *
 * Callback URLs must be http:// on 127.0.0.1, localhost or [::1].
 */

import http from 'node:http';
import {
    createHash, createPrivateKey, createPublicKey, generateKeyPairSync,
    randomBytes, sign as cryptoSign, timingSafeEqual,
} from 'node:crypto';
import { URL, URLSearchParams } from 'node:url';
import { readFileSync } from 'node:fs';


const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const AUTH_REQ_ID_CLAIM = 'urn:openid:params:jwt:claim:auth_req_id';
const MAX_REQUEST_BODY = 1024 * 1024;
const MAX_CALLBACK_ANSWER = 64 * 1024;
const MAX_LOGGED_REQUESTS = 100000;
const DEFAULT_HUGE = 10 * 1024 * 1024;
const MAX_HUGE = 1024 * 1024 * 1024;
const FAULTS = ['refuse', 'reset', 'hang', 'garbage', 'huge', 'truncated'];
const ID_TOKEN_CORRUPTIONS = ['iss', 'aud', 'sub', 'iat', 'exp', 'auth_req_id',
    'at_hash', 'signature', 'kid'];
const ACCESS_TOKEN_CORRUPTIONS = ['iss', 'aud', 'sub', 'iat', 'exp', 'jti',
    'scope', 'client_id', 'authorization_details', 'signature', 'kid', 'typ']
    .map((x) => 'access_token.' + x);
const CORRUPTIONS = new Set([...ID_TOKEN_CORRUPTIONS,
    ...ACCESS_TOKEN_CORRUPTIONS]);
const MODES = ['poll', 'ping', 'push'];
const AUTH_METHODS = ['any', 'client_secret_basic', 'client_secret_post'];
const DENY_ERRORS = ['access_denied', 'transaction_failed'];
const SCRIPT_KEYS = new Set(['status', 'json', 'body', 'body_base64',
    'headers', 'fault', 'size', 'chunked', 'delay_ms', 'times']);


/* ---- errors and answers ------------------------------------------------ */

class HttpError extends Error {
    constructor(status, error, description, extra = {}) {
        super(description);
        this.status = status;
        this.error = error;
        this.description = description;
        this.headers = extra.headers || {};
        this.fields = extra.fields || {};
    }
}

function bad(description, error = 'invalid_request') {
    return new HttpError(400, error, description);
}

function invalidClient(description) {
    return new HttpError(401, 'invalid_client', description,
        { headers: { 'WWW-Authenticate': 'Basic realm="mock-as"' } });
}

function sendJson(res, status, obj, headers = {}) {
    if (res.headersSent || res.destroyed) {
        return;
    }
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
        'Pragma': 'no-cache',
        ...headers,
        'Content-Length': body.length,
    });
    res.end(body);
}

function errorBody(e) {
    return { error: e.error, error_description: e.description, ...e.fields };
}

function sendError(res, e) {
    sendJson(res, e.status, errorBody(e), e.headers);
}


/* ---- small helpers ----------------------------------------------------- */

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const rnd = (n = 32) => randomBytes(n).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isPosInt(v) {
    return Number.isSafeInteger(v) && v > 0;
}

function safeEqual(a, b) {
    const x = Buffer.from(String(a));
    const y = Buffer.from(String(b));
    return x.length === y.length && timingSafeEqual(x, y);
}

function formDecode(s) {
    try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
        return null;
    }
}

function clone(v) {
    return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function hasHeader(headers, name) {
    return Object.keys(headers).some((k) => k.toLowerCase() === name);
}


/* ---- state ------------------------------------------------------------- */

function defaultOptions() {
    return {
        issuer: null,
        audience: 'https://tools.example',
        expires_in: 120,
        honor_requested_expiry: true,
        interval: 5,
        slow_down: true,
        binding_message_regex: '^[a-zA-Z0-9-._+/!?# ]{1,64}$',
        binding_message_required: false,
        authorization_details_types: null,
        token_ttl: 300,
        access_token_format: 'jwt',
        id_token: true,
        corrupt: [],
        callback_timeout_ms: 5000,
    };
}

const S = {
    port: 0,
    verbose: false,
    options: defaultOptions(),
    baseOptions: defaultOptions(),
    bindingRegex: null,
    clients: {
        'poll-client': { secret: 'poll-secret', mode: 'poll', callback: null,
                         auth_method: 'any' },
        'ping-client': { secret: 'ping-secret', mode: 'ping', callback: null,
                         auth_method: 'any' },
        'push-client': { secret: 'push-secret', mode: 'push', callback: null,
                         auth_method: 'any' },
    },
    users: { alice: { sub: 'alice' }, bob: { sub: 'bob' } },
    keys: [],               /* newest last; the newest signs */
    auth: new Map(),        /* auth_req_id -> record */
    requests: [],
    counts: {},
    seq: 0,
    scripts: new Map(),     /* path -> [step, ...] */
    held: new Set(),        /* hung or delayed connections */
};

function issuer() {
    return S.options.issuer ?? `http://127.0.0.1:${S.port}`;
}


/* ---- keys and JWTs ----------------------------------------------------- */

function makeKey(privateKey, kid) {
    const publicKey = createPublicKey(privateKey);
    const d = privateKey.asymmetricKeyDetails || {};
    if (privateKey.asymmetricKeyType !== 'ec' || d.namedCurve !== 'prime256v1') {
        throw new Error('the key must be an EC P-256 private key');
    }
    const jwk = publicKey.export({ format: 'jwk' });
    const thumb = b64u(createHash('sha256').update(JSON.stringify(
        { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest());
    return {
        kid: kid || thumb,
        privateKey,
        publicKey,
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    };
}

function newKey(kid) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return makeKey(privateKey, kid);
}

function currentKey() {
    return S.keys[S.keys.length - 1];
}

function jwks() {
    return {
        keys: S.keys.map((k) => ({ ...k.jwk, kid: k.kid, use: 'sig',
                                   alg: 'ES256' })),
    };
}

function signJwt(header, claims, key, corruptSignature) {
    const input = b64u(JSON.stringify(header)) + '.'
        + b64u(JSON.stringify(claims));
    const sig = cryptoSign('sha256', Buffer.from(input),
        { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    if (corruptSignature) {
        sig[0] ^= 0x5a;
        sig[sig.length - 1] ^= 0xa5;
    }
    return input + '.' + b64u(sig);
}

function atHash(accessToken) {
    const h = createHash('sha256').update(accessToken, 'ascii').digest();
    return b64u(h.subarray(0, h.length / 2));
}

function corruptDetails(details) {
    if (Array.isArray(details) && details.length > 0
        && isObject(details[0]))
    {
        const d = clone(details);
        d[0].identifier = 'tampered-' + (d[0].identifier ?? '');
        d[0].actions = ['tampered'];
        return d;
    }
    return [{ type: 'tampered' }];
}

function applyCorruption(prefix, header, claims, corrupt, rec) {
    const has = (x) => corrupt.has(prefix + x);
    const now = nowSec();
    if (has('iss')) claims.iss = 'https://wrong-issuer.example';
    if (has('aud')) claims.aud = 'wrong-audience';
    if (has('sub')) claims.sub = String(claims.sub) + '-wrong';
    if (has('iat')) claims.iat = now + 3600;
    if (has('exp')) claims.exp = now - 3600;
    if (has('kid')) header.kid = 'unknown-kid';
    if (prefix === '') {
        if (has('auth_req_id')) claims[AUTH_REQ_ID_CLAIM] = 'wrong-' + rec.auth_req_id;
        if (has('at_hash')) claims.at_hash = atHash('not-the-access-token');
    } else {
        if (has('jti')) delete claims.jti;
        if (has('scope')) claims.scope = 'openid admin';
        if (has('client_id')) claims.client_id = 'other-client';
        if (has('authorization_details')) {
            claims.authorization_details = corruptDetails(claims.authorization_details);
        }
        if (has('typ')) header.typ = 'JWT';
    }
}

function issueTokens(rec) {
    const corrupt = new Set([...S.options.corrupt, ...(rec.corrupt || [])]);
    const key = currentKey();
    const now = nowSec();
    const ttl = S.options.token_ttl;
    let accessToken;

    if (S.options.access_token_format === 'opaque') {
        accessToken = rnd(32);
    } else {
        const header = { alg: 'ES256', typ: 'at+jwt', kid: key.kid };
        const claims = {
            iss: issuer(), aud: S.options.audience, sub: rec.sub,
            iat: now, exp: now + ttl, jti: rnd(16), scope: rec.scope,
            client_id: rec.client_id,
        };
        if (rec.authorization_details_json !== undefined) {
            claims.authorization_details = clone(rec.authorization_details_json);
        }
        applyCorruption('access_token.', header, claims, corrupt, rec);
        accessToken = signJwt(header, claims, key,
            corrupt.has('access_token.signature'));
    }

    const tokens = { access_token: accessToken, token_type: 'Bearer',
                     expires_in: ttl };
    if (S.options.id_token) {
        const header = { alg: 'ES256', typ: 'JWT', kid: key.kid };
        const claims = {
            iss: issuer(), aud: rec.client_id, sub: rec.sub,
            iat: now, exp: now + ttl,
            auth_time: Math.floor((rec.decided_at || Date.now()) / 1000),
            [AUTH_REQ_ID_CLAIM]: rec.auth_req_id,
            at_hash: atHash(accessToken),
        };
        if (rec.acr_values) {
            claims.acr = rec.acr_values.split(' ')[0];
        }
        applyCorruption('', header, claims, corrupt, rec);
        tokens.id_token = signJwt(header, claims, key, corrupt.has('signature'));
    }
    rec.tokens = tokens;
    return tokens;
}


/* ---- configuration ----------------------------------------------------- */

function normalizeCorrupt(v, what = 'corrupt') {
    if (v === undefined || v === null) {
        return [];
    }
    const list = Array.isArray(v) ? v : [v];
    for (const c of list) {
        if (typeof c !== 'string' || !CORRUPTIONS.has(c)) {
            throw bad(`${what}: unknown corruption ${JSON.stringify(c)}; `
                + `known: ${[...CORRUPTIONS].join(', ')}`);
        }
    }
    return [...new Set(list)];
}

function checkCallbackUrl(v, what) {
    let u;
    try {
        u = new URL(v);
    } catch {
        throw bad(`${what}: not a URL`);
    }
    if (u.protocol !== 'http:'
        || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))
    {
        throw bad(`${what}: must be an http:// URL on 127.0.0.1, localhost or [::1]`);
    }
    return u.href;
}

function compileRegex(src) {
    if (src === null) {
        return null;
    }
    try {
        return new RegExp(src);
    } catch (e) {
        throw bad(`binding_message_regex: ${e.message}`);
    }
}

function applyClients(clients, input) {
    if (!isObject(input)) {
        throw bad('clients must be an object of client_id: {...}');
    }
    for (const [id, c] of Object.entries(input)) {
        if (id === '' || id.includes(':') || id === '__proto__') {
            throw bad(`clients: bad client_id ${JSON.stringify(id)}`);
        }
        if (c === null) {
            delete clients[id];
            continue;
        }
        if (!isObject(c)) {
            throw bad(`clients.${id} must be an object or null`);
        }
        const cur = Object.hasOwn(clients, id) ? { ...clients[id] }
            : { secret: undefined, mode: 'poll', callback: null,
                auth_method: 'any' };
        for (const [k, v] of Object.entries(c)) {
            switch (k) {
            case 'secret':
            case 'client_secret':
                if (typeof v !== 'string' || v === '') {
                    throw bad(`clients.${id}.${k} must be a non-empty string`);
                }
                cur.secret = v;
                break;
            case 'mode':
                if (!MODES.includes(v)) {
                    throw bad(`clients.${id}.mode must be one of ${MODES.join(', ')}`);
                }
                cur.mode = v;
                break;
            case 'callback':
                cur.callback = v === null ? null
                    : checkCallbackUrl(v, `clients.${id}.callback`);
                break;
            case 'auth_method':
                if (!AUTH_METHODS.includes(v)) {
                    throw bad(`clients.${id}.auth_method must be one of ${AUTH_METHODS.join(', ')}`);
                }
                cur.auth_method = v;
                break;
            default:
                throw bad(`clients.${id}: unknown field ${k}`);
            }
        }
        if (cur.secret === undefined) {
            throw bad(`clients.${id}: a new client needs a secret`);
        }
        clients[id] = cur;
    }
}

function parseUsers(input) {
    const users = {};
    if (Array.isArray(input)) {
        for (const u of input) {
            if (typeof u !== 'string' || u === '' || u === '__proto__') {
                throw bad('users: names must be non-empty strings');
            }
            users[u] = { sub: u };
        }
    } else if (isObject(input)) {
        for (const [u, v] of Object.entries(input)) {
            if (u === '' || u === '__proto__' || !(v === null || isObject(v))) {
                throw bad(`users.${u} must be an object`);
            }
            const sub = v && v.sub !== undefined ? v.sub : u;
            if (typeof sub !== 'string' || sub === '') {
                throw bad(`users.${u}.sub must be a non-empty string`);
            }
            users[u] = { sub };
        }
    } else {
        throw bad('users must be an array of names or an object');
    }
    return users;
}

function applyConfig(input) {
    if (!isObject(input)) {
        throw bad('the configuration must be a JSON object');
    }
    const o = clone(S.options);
    const clients = clone(S.clients);
    let users = S.users;
    let regex = S.bindingRegex;

    for (const [k, v] of Object.entries(input)) {
        switch (k) {
        case 'issuer':
            if (v !== null && (typeof v !== 'string' || v === '')) {
                throw bad('issuer must be a non-empty string or null');
            }
            o.issuer = v;
            break;
        case 'audience':
            if (!((typeof v === 'string' && v !== '') || (Array.isArray(v)
                  && v.length > 0 && v.every((a) => typeof a === 'string'))))
            {
                throw bad('audience must be a string or an array of strings');
            }
            o.audience = v;
            break;
        case 'expires_in':
        case 'token_ttl':
        case 'callback_timeout_ms':
            if (!isPosInt(v)) {
                throw bad(`${k} must be a positive integer`);
            }
            o[k] = v;
            break;
        case 'interval':
            if (v !== null && !(Number.isSafeInteger(v) && v >= 0)) {
                throw bad('interval must be an integer >= 0 or null');
            }
            o.interval = v;
            break;
        case 'slow_down':
        case 'honor_requested_expiry':
        case 'binding_message_required':
        case 'id_token':
            if (typeof v !== 'boolean') {
                throw bad(`${k} must be true or false`);
            }
            o[k] = v;
            break;
        case 'binding_message_regex':
            if (v !== null && typeof v !== 'string') {
                throw bad('binding_message_regex must be a string or null');
            }
            regex = compileRegex(v);
            o.binding_message_regex = v;
            break;
        case 'authorization_details_types':
            if (v !== null && !(Array.isArray(v)
                                && v.every((t) => typeof t === 'string')))
            {
                throw bad('authorization_details_types must be null or an array of strings');
            }
            o.authorization_details_types = v;
            break;
        case 'access_token_format':
            if (v !== 'jwt' && v !== 'opaque') {
                throw bad('access_token_format must be "jwt" or "opaque"');
            }
            o.access_token_format = v;
            break;
        case 'corrupt':
            o.corrupt = normalizeCorrupt(v);
            break;
        case 'clients':
            applyClients(clients, v);
            break;
        case 'users':
            users = parseUsers(v);
            break;
        default:
            throw bad(`unknown option ${JSON.stringify(k)}`);
        }
    }
    S.options = o;
    S.clients = clients;
    S.users = users;
    S.bindingRegex = regex;
}

function configView() {
    return { options: { ...clone(S.options), effective_issuer: issuer() },
             clients: clone(S.clients), users: clone(S.users) };
}


/* ---- request log ------------------------------------------------------- */

function parseFormLoose(req, body) {
    const ct = (req.headers['content-type'] || '').split(';')[0].trim()
        .toLowerCase();
    const form = {};
    if (ct !== 'application/x-www-form-urlencoded') {
        return form;
    }
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
        if (!Object.hasOwn(form, k)) {
            form[k] = v;
        } else if (Array.isArray(form[k])) {
            form[k].push(v);
        } else {
            form[k] = [form[k], v];
        }
    }
    return form;
}

function logRequest(req, url, body, length) {
    const entry = {
        seq: ++S.seq,
        time: Date.now(),
        method: req.method,
        path: url.pathname,
        query: url.search.slice(1),
        headers: { ...req.headers },
        raw_headers: [...req.rawHeaders],
        body: body.toString('utf8'),
        body_length: length,
        form: parseFormLoose(req, body),
        client_id: null,
        client_auth: null,
        scripted: null,
        status: null,
        answer: null,
    };
    S.requests.push(entry);
    if (S.requests.length > MAX_LOGGED_REQUESTS) {
        S.requests.shift();
    }
    S.counts[url.pathname] = (S.counts[url.pathname] || 0) + 1;
    return entry;
}


/* ---- AS endpoints ------------------------------------------------------ */

function parseForm(req, body) {
    const ct = (req.headers['content-type'] || '').split(';')[0].trim()
        .toLowerCase();
    if (ct !== 'application/x-www-form-urlencoded') {
        throw bad('Content-Type must be application/x-www-form-urlencoded');
    }
    const p = new Map();
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
        if (p.has(k)) {
            throw bad(`parameter ${k} included more than once`);
        }
        p.set(k, v);
    }
    return p;
}

function authenticateClient(req, p, entry) {
    const authz = req.headers.authorization;
    let id;
    let secret;
    let method;

    if (authz !== undefined) {
        const m = /^Basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(authz);
        if (!m) {
            throw invalidClient('unsupported Authorization header');
        }
        const dec = Buffer.from(m[1], 'base64').toString('utf8');
        const i = dec.indexOf(':');
        if (i < 0) {
            throw invalidClient('malformed Basic credentials');
        }
        id = formDecode(dec.slice(0, i));
        secret = formDecode(dec.slice(i + 1));
        if (id === null || secret === null) {
            throw invalidClient('malformed Basic credentials');
        }
        method = 'client_secret_basic';
        if (p.has('client_secret')) {
            throw bad('more than one client authentication method');
        }
        if (p.has('client_id') && p.get('client_id') !== id) {
            throw invalidClient('client_id does not match the Basic credentials');
        }
    } else if (p.has('client_secret')) {
        id = p.get('client_id');
        secret = p.get('client_secret');
        method = 'client_secret_post';
        if (!id) {
            throw invalidClient('client_secret without client_id');
        }
    } else {
        throw invalidClient('no client authentication');
    }

    entry.client_id = id;
    entry.client_auth = method;
    const c = Object.hasOwn(S.clients, id) ? S.clients[id] : null;
    if (c === null || !safeEqual(c.secret, secret)) {
        throw invalidClient('client authentication failed');
    }
    if (c.auth_method !== 'any' && c.auth_method !== method) {
        throw invalidClient(`this client must use ${c.auth_method}`);
    }
    return { id, ...c };
}

function backchannel(req, body, entry) {
    const p = parseForm(req, body);
    const client = authenticateClient(req, p, entry);

    const scope = p.get('scope');
    if (!scope) {
        throw bad('scope missing');
    }
    if (!scope.split(' ').includes('openid')) {
        throw bad('scope must contain openid', 'invalid_scope');
    }

    const hints = ['login_hint', 'login_hint_token', 'id_token_hint']
        .filter((h) => p.has(h));
    if (hints.length === 0) {
        throw bad('login_hint missing');
    }
    if (hints.length > 1) {
        throw bad('exactly one of login_hint, login_hint_token, id_token_hint');
    }
    if (hints[0] !== 'login_hint') {
        throw bad(`${hints[0]} is not supported by this server, use login_hint`);
    }
    const hint = p.get('login_hint');
    if (hint === '') {
        throw bad('login_hint is empty');
    }
    if (!Object.hasOwn(S.users, hint)) {
        throw bad('the user is not known', 'unknown_user_id');
    }

    const cnt = p.get('client_notification_token');
    if (client.mode !== 'poll') {
        if (!cnt) {
            throw bad(`client_notification_token required in ${client.mode} mode`);
        }
        if (cnt.length > 1024) {
            throw bad('client_notification_token longer than 1024 characters');
        }
    }

    const bm = p.get('binding_message');
    if (bm === undefined) {
        if (S.options.binding_message_required) {
            throw bad('binding_message required', 'invalid_binding_message');
        }
    } else if (S.bindingRegex && !S.bindingRegex.test(bm)) {
        throw bad(`binding_message does not match ${S.options.binding_message_regex}`,
                  'invalid_binding_message');
    }

    const re = p.get('requested_expiry');
    if (re !== undefined && !/^[1-9][0-9]{0,8}$/.test(re)) {
        throw bad('requested_expiry must be a positive integer');
    }

    const adRaw = p.get('authorization_details');
    let adJson;
    if (adRaw !== undefined) {
        const fail = (why) => bad(`authorization_details: ${why}`,
                                  'invalid_authorization_details');
        try {
            adJson = JSON.parse(adRaw);
        } catch {
            throw fail('not JSON');
        }
        if (!Array.isArray(adJson)) {
            throw fail('not a JSON array');
        }
        for (const d of adJson) {
            if (!isObject(d) || typeof d.type !== 'string' || d.type === '') {
                throw fail('every entry must be an object with a string "type"');
            }
            const allowed = S.options.authorization_details_types;
            if (allowed && !allowed.includes(d.type)) {
                throw fail(`type ${JSON.stringify(d.type)} is not allowed`);
            }
        }
    }

    const now = Date.now();
    const expiresIn = re !== undefined && S.options.honor_requested_expiry
        ? Number(re) : S.options.expires_in;
    const interval = S.options.interval;
    const rec = {
        auth_req_id: rnd(32),
        client_id: client.id,
        mode: client.mode,
        state: 'pending',
        sub: S.users[hint].sub,
        login_hint: hint,
        scope,
        binding_message: bm ?? null,
        acr_values: p.get('acr_values') ?? null,
        requested_expiry: re !== undefined ? Number(re) : null,
        authorization_details: adRaw ?? null,
        authorization_details_json: adJson,
        client_notification_token: cnt ?? null,
        expires_in: expiresIn,
        interval,
        poll_interval: interval ?? 5,
        polls: 0,
        created_at: now,
        expires_at: now + expiresIn * 1000,
        last_poll_at: null,
        decided_at: null,
        redeemed_at: null,
        error: null,
        error_description: null,
        corrupt: [],
        tokens: null,
        notifications: [],
    };
    S.auth.set(rec.auth_req_id, rec);

    const answer = { auth_req_id: rec.auth_req_id, expires_in: expiresIn };
    if (interval !== null) {
        answer.interval = interval;
    }
    return answer;
}

function refresh(rec) {
    if ((rec.state === 'pending' || rec.state === 'approved')
        && rec.redeemed_at === null && Date.now() >= rec.expires_at)
    {
        rec.state = 'expired';
        rec.error = 'expired_token';
        rec.error_description = 'the auth_req_id has expired';
    }
    return rec;
}

function token(req, body, entry) {
    const p = parseForm(req, body);
    const client = authenticateClient(req, p, entry);

    const gt = p.get('grant_type');
    if (!gt) {
        throw bad('grant_type missing');
    }
    if (gt !== CIBA_GRANT) {
        throw bad(`grant_type ${gt} is not supported`, 'unsupported_grant_type');
    }
    if (client.mode === 'push') {
        throw bad('push mode clients get their tokens at their notification endpoint',
                  'unauthorized_client');
    }
    const id = p.get('auth_req_id');
    if (!id) {
        throw bad('auth_req_id missing');
    }
    const rec = S.auth.get(id);
    if (!rec || rec.client_id !== client.id) {
        throw bad('unknown auth_req_id', 'invalid_grant');
    }
    refresh(rec);
    if (rec.redeemed_at !== null) {
        throw bad('auth_req_id already redeemed', 'invalid_grant');
    }

    const now = Date.now();
    switch (rec.state) {
    case 'expired':
        throw bad('the auth_req_id has expired', 'expired_token');
    case 'denied':
        throw bad(rec.error_description || 'the end-user denied the request',
                  rec.error || 'access_denied');
    case 'pending': {
        const early = rec.last_poll_at !== null
            && now - rec.last_poll_at < rec.poll_interval * 1000;
        rec.polls++;
        rec.last_poll_at = now;
        if (early && S.options.slow_down) {
            rec.poll_interval += 5;
            throw bad(`polled sooner than the interval; interval is now ${rec.poll_interval} s`,
                      'slow_down');
        }
        throw bad('the end-user has not decided yet', 'authorization_pending');
    }
    case 'approved':
        rec.polls++;
        rec.last_poll_at = now;
        rec.redeemed_at = now;
        return issueTokens(rec);
    default:
        throw bad('unknown auth_req_id', 'invalid_grant');
    }
}

function discovery() {
    const base = `http://127.0.0.1:${S.port}`;
    return {
        issuer: issuer(),
        backchannel_authentication_endpoint: base + '/bc-authorize',
        token_endpoint: base + '/token',
        jwks_uri: base + '/jwks',
        grant_types_supported: [CIBA_GRANT],
        backchannel_token_delivery_modes_supported: MODES,
        backchannel_user_code_parameter_supported: false,
        token_endpoint_auth_methods_supported: ['client_secret_basic',
                                                'client_secret_post'],
        id_token_signing_alg_values_supported: ['ES256'],
        scopes_supported: ['openid'],
        authorization_details_types_supported:
            S.options.authorization_details_types || [],
    };
}

function serveAs(req, res, url, body, entry) {
    const reply = (status, obj, headers = {}) => {
        entry.answer = obj;
        sendJson(res, status, obj, headers);
    };
    const need = (method) => {
        if (req.method !== method) {
            throw new HttpError(405, 'invalid_request', `use ${method}`,
                                { headers: { Allow: method } });
        }
    };
    try {
        switch (url.pathname) {
        case '/bc-authorize':
            need('POST');
            return reply(200, backchannel(req, body, entry));
        case '/token':
            need('POST');
            return reply(200, token(req, body, entry));
        case '/jwks':
            need('GET');
            return reply(200, jwks());
        case '/.well-known/openid-configuration':
            need('GET');
            return reply(200, discovery());
        default:
            throw new HttpError(404, 'not_found', `no endpoint ${url.pathname}`);
        }
    } catch (e) {
        if (e instanceof HttpError) {
            entry.answer = errorBody(e);
            return sendError(res, e);
        }
        throw e;
    }
}


/* ---- scripts ----------------------------------------------------------- */

function checkStep(s, i) {
    const at = `responses[${i}]`;
    if (!isObject(s)) {
        throw bad(`${at} must be an object`);
    }
    for (const k of Object.keys(s)) {
        if (!SCRIPT_KEYS.has(k)) {
            throw bad(`${at}: unknown field ${k}`);
        }
    }
    if (s.fault !== undefined && !FAULTS.includes(s.fault)) {
        throw bad(`${at}: unknown fault ${JSON.stringify(s.fault)}; known: ${FAULTS.join(', ')}`);
    }
    if (s.fault !== undefined && s.status !== undefined) {
        throw bad(`${at}: fault and status are exclusive`);
    }
    if (s.status !== undefined
        && !(Number.isSafeInteger(s.status) && s.status >= 100 && s.status <= 599))
    {
        throw bad(`${at}: status must be an integer 100-599`);
    }
    const bodies = ['json', 'body', 'body_base64'].filter((k) => s[k] !== undefined);
    if (bodies.length > 1) {
        throw bad(`${at}: only one of json, body, body_base64`);
    }
    if (bodies.length && s.status === undefined) {
        throw bad(`${at}: ${bodies[0]} needs a status`);
    }
    if (s.body !== undefined && typeof s.body !== 'string') {
        throw bad(`${at}: body must be a string`);
    }
    if (s.body_base64 !== undefined && typeof s.body_base64 !== 'string') {
        throw bad(`${at}: body_base64 must be a string`);
    }
    if (s.headers !== undefined) {
        if (!isObject(s.headers)) {
            throw bad(`${at}: headers must be an object`);
        }
        if (s.status === undefined) {
            throw bad(`${at}: headers need a status`);
        }
        for (const [k, v] of Object.entries(s.headers)) {
            const vals = Array.isArray(v) ? v : [v];
            try {
                http.validateHeaderName(k);
                for (const x of vals) {
                    if (typeof x !== 'string' && typeof x !== 'number') {
                        throw new Error('header values must be strings or numbers');
                    }
                    http.validateHeaderValue(k, String(x));
                }
            } catch (e) {
                throw bad(`${at}: header ${k}: ${e.message}`);
            }
        }
    }
    if (s.size !== undefined
        && !(Number.isSafeInteger(s.size) && s.size >= 0 && s.size <= MAX_HUGE))
    {
        throw bad(`${at}: size must be an integer 0-${MAX_HUGE}`);
    }
    if (s.chunked !== undefined && typeof s.chunked !== 'boolean') {
        throw bad(`${at}: chunked must be true or false`);
    }
    if (s.delay_ms !== undefined
        && !(Number.isSafeInteger(s.delay_ms) && s.delay_ms >= 0
             && s.delay_ms <= 3600000))
    {
        throw bad(`${at}: delay_ms must be an integer 0-3600000`);
    }
    if (s.times !== undefined
        && !(Number.isSafeInteger(s.times) && s.times >= 1 && s.times <= 10000))
    {
        throw bad(`${at}: times must be an integer 1-10000`);
    }
}

function queueScript(input) {
    const ep = input.endpoint;
    if (typeof ep !== 'string' || !ep.startsWith('/') || ep.startsWith('/_admin')) {
        throw bad('endpoint must be a path such as /bc-authorize, not under /_admin');
    }
    let list = input.responses;
    if (list === undefined && input.response !== undefined) {
        list = [input.response];
    }
    if (!Array.isArray(list)) {
        throw bad('responses must be an array');
    }
    list.forEach(checkStep);
    const steps = [];
    for (const s of list) {
        const { times = 1, ...step } = s;
        for (let i = 0; i < times; i++) {
            steps.push(clone(step));
        }
    }
    const q = input.replace ? [] : (S.scripts.get(ep) || []);
    q.push(...steps);
    S.scripts.set(ep, q);
    return { endpoint: ep, queued: q.length };
}

function takeScript(path) {
    const q = S.scripts.get(path);
    if (!q || q.length === 0) {
        return null;
    }
    const s = q.shift();
    if (q.length === 0) {
        S.scripts.delete(path);
    }
    return s;
}

/* resolves true after ms, false if the connection went away or was reset */
function hold(res, ms) {
    return new Promise((resolve) => {
        const sock = res.socket;
        if (!sock || sock.destroyed) {
            resolve(false);
            return;
        }
        const h = { socket: sock, timer: null };
        const onClose = () => {
            clearTimeout(h.timer);
            S.held.delete(h);
            resolve(false);
        };
        h.timer = setTimeout(() => {
            sock.removeListener('close', onClose);
            S.held.delete(h);
            resolve(!sock.destroyed);
        }, ms);
        sock.once('close', onClose);
        S.held.add(h);
    });
}

function hang(res) {
    const sock = res.socket;
    if (!sock || sock.destroyed) {
        return;
    }
    const h = { socket: sock, timer: null };
    S.held.add(h);
    sock.once('close', () => S.held.delete(h));
}

function hugePrefix(path) {
    switch (path) {
    case '/bc-authorize':
        return '{"auth_req_id":"';
    case '/token':
        return '{"access_token":"';
    case '/jwks':
        return '{"keys":[],"x":"';
    default:
        return '{"data":"';
    }
}

function streamHuge(res, size, prefix, chunked) {
    const headers = { 'Content-Type': 'application/json',
                      'Cache-Control': 'no-store' };
    if (!chunked) {
        headers['Content-Length'] = size;
    }
    res.writeHead(200, headers);
    let head = Buffer.from(prefix);
    let tail = Buffer.from('"}');
    if (size < head.length + tail.length) {
        head = Buffer.alloc(0);
        tail = Buffer.alloc(0);
    }
    let fill = size - head.length - tail.length;
    const block = Buffer.alloc(65536, 'A');
    let headSent = false;

    const pump = () => {
        for (;;) {
            if (res.destroyed) {
                return;
            }
            let chunk;
            if (!headSent) {
                headSent = true;
                chunk = head;
            } else if (fill > 0) {
                const n = Math.min(fill, block.length);
                chunk = block.subarray(0, n);
                fill -= n;
            } else {
                res.end(tail);
                return;
            }
            if (chunk.length && !res.write(chunk)) {
                res.once('drain', pump);
                return;
            }
        }
    };
    pump();
}

async function play(step, req, res, url, normal) {
    if (step.delay_ms) {
        if (!await hold(res, step.delay_ms)) {
            return;
        }
    }
    const sock = req.socket;
    switch (step.fault) {
    case 'refuse':
        sock.destroy();
        return;
    case 'reset':
        if (typeof sock.resetAndDestroy === 'function') {
            sock.resetAndDestroy();
        } else {
            sock.destroy();
        }
        return;
    case 'hang':
        hang(res);
        return;
    case 'garbage': {
        const body = Buffer.concat([
            Buffer.from('<html>\x00 this is not JSON {{{ ', 'latin1'),
            Buffer.from([0xff, 0xfe, 0x00, 0x80]), randomBytes(32),
            Buffer.from('\r\n')]);
        res.writeHead(200, { 'Content-Type': 'application/json',
                             'Content-Length': body.length });
        res.end(body);
        return;
    }
    case 'huge':
        streamHuge(res, step.size ?? DEFAULT_HUGE, hugePrefix(url.pathname),
                   step.chunked === true);
        return;
    case 'truncated': {
        const declared = Math.max(step.size ?? 1000, 2);
        const part = Buffer.from('{"auth_req_id":"truncated', 'ascii')
            .subarray(0, Math.floor(declared / 2));
        res.writeHead(200, { 'Content-Type': 'application/json',
                             'Content-Length': declared });
        res.write(part, () => sock.destroy());
        return;
    }
    default:
        break;
    }

    if (step.status === undefined) {
        return normal();
    }

    const headers = { ...(step.headers || {}) };
    let body;
    if (step.json !== undefined) {
        body = Buffer.from(JSON.stringify(step.json));
        if (!hasHeader(headers, 'content-type')) {
            headers['Content-Type'] = 'application/json';
        }
    } else if (step.body_base64 !== undefined) {
        body = Buffer.from(step.body_base64, 'base64');
    } else {
        body = Buffer.from(step.body ?? '', 'utf8');
    }
    if (!hasHeader(headers, 'content-length')
        && !hasHeader(headers, 'transfer-encoding'))
    {
        headers['Content-Length'] = body.length;
    }
    res.writeHead(step.status, headers);
    res.end(body);
}


/* ---- callbacks (ping, push, notify) ------------------------------------ */

function postCallback(urlStr, headers, body, method = 'POST') {
    return new Promise((resolve) => {
        const out = { url: urlStr, status: null, headers: null, body: null,
                      error: null };
        let u;
        try {
            u = new URL(urlStr);
        } catch {
            resolve({ ...out, error: 'bad URL' });
            return;
        }
        let done = false;
        const finish = (extra) => {
            if (!done) {
                done = true;
                resolve({ ...out, ...extra });
            }
        };
        let creq;
        try {
            creq = http.request({
                hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
                port: u.port || 80,
                path: u.pathname + u.search,
                method,
                headers: { ...headers, 'Content-Length': body.length },
                agent: false,
                timeout: S.options.callback_timeout_ms,
            }, (cres) => {
                const chunks = [];
                let n = 0;
                cres.on('data', (c) => {
                    if (n < MAX_CALLBACK_ANSWER) {
                        chunks.push(c);
                        n += c.length;
                    }
                });
                cres.on('end', () => finish({
                    status: cres.statusCode, headers: cres.headers,
                    body: Buffer.concat(chunks).subarray(0, MAX_CALLBACK_ANSWER)
                        .toString('utf8'),
                }));
                cres.on('error', (e) => finish({ status: cres.statusCode,
                                                 error: e.message }));
            });
        } catch (e) {
            finish({ error: e.message });
            return;
        }
        creq.on('timeout', () => creq.destroy(new Error('callback timed out')));
        creq.on('error', (e) => finish({ error: e.message }));
        creq.end(body);
    });
}

async function notifyClient(rec, kind, payload, opts) {
    const client = S.clients[rec.client_id];
    const url = opts.callback !== undefined
        ? checkCallbackUrl(opts.callback, 'callback')
        : client && client.callback;
    const token = opts.notification_token !== undefined
        ? String(opts.notification_token) : rec.client_notification_token;
    const headers = { 'Content-Type': 'application/json',
                      Authorization: `Bearer ${token}` };
    const sent = { headers, json: payload };
    let result;
    if (!url) {
        result = { url: null, status: null, headers: null, body: null,
                   error: `no callback URL configured for ${rec.client_id}` };
    } else {
        result = await postCallback(url, headers,
                                    Buffer.from(JSON.stringify(payload)));
    }
    rec.notifications.push({ time: Date.now(), kind, url: result.url,
                             status: result.status, error: result.error });
    return { ...result, sent };
}


/* ---- admin ------------------------------------------------------------- */

function parseJsonBody(body) {
    const text = body.toString('utf8').trim();
    if (text === '') {
        return {};
    }
    let v;
    try {
        v = JSON.parse(text);
    } catch (e) {
        throw bad(`invalid JSON: ${e.message}`, 'invalid_json');
    }
    if (!isObject(v)) {
        throw bad('the body must be a JSON object', 'invalid_json');
    }
    return v;
}

function view(rec) {
    refresh(rec);
    return clone(rec);
}

function findRecord(input) {
    if (input.auth_req_id !== undefined) {
        if (typeof input.auth_req_id !== 'string') {
            throw bad('auth_req_id must be a string');
        }
        const rec = S.auth.get(input.auth_req_id);
        if (!rec) {
            throw new HttpError(404, 'not_found', 'no such auth_req_id');
        }
        return refresh(rec);
    }
    if (input.login_hint !== undefined) {
        if (typeof input.login_hint !== 'string') {
            throw bad('login_hint must be a string');
        }
        let found = null;
        for (const rec of S.auth.values()) {
            refresh(rec);
            if (rec.state === 'pending' && rec.login_hint === input.login_hint
                && (input.client_id === undefined
                    || rec.client_id === input.client_id)
                && (found === null || rec.created_at >= found.created_at))
            {
                found = rec;
            }
        }
        if (!found) {
            throw new HttpError(404, 'not_found',
                                `no pending request for ${input.login_hint}`);
        }
        return found;
    }
    throw bad('auth_req_id or login_hint required');
}

function checkDecisionInput(input) {
    const known = new Set(['auth_req_id', 'login_hint', 'client_id', 'sub',
        'notify', 'notification_token', 'callback', 'corrupt', 'force',
        'error', 'error_description']);
    for (const k of Object.keys(input)) {
        if (!known.has(k)) {
            throw bad(`unknown field ${k}`);
        }
    }
    if (input.notify !== undefined && typeof input.notify !== 'boolean') {
        throw bad('notify must be true or false');
    }
    if (input.force !== undefined && typeof input.force !== 'boolean') {
        throw bad('force must be true or false');
    }
    if (input.sub !== undefined && (typeof input.sub !== 'string' || input.sub === '')) {
        throw bad('sub must be a non-empty string');
    }
    if (input.notification_token !== undefined
        && typeof input.notification_token !== 'string')
    {
        throw bad('notification_token must be a string');
    }
    if (input.callback !== undefined) {
        checkCallbackUrl(input.callback, 'callback');
    }
    if (input.error_description !== undefined
        && typeof input.error_description !== 'string')
    {
        throw bad('error_description must be a string');
    }
}

async function decide(kind, input) {
    checkDecisionInput(input);
    const corrupt = normalizeCorrupt(input.corrupt);
    if (kind !== 'deny' && input.error !== undefined) {
        throw bad('error is for deny only');
    }
    if (kind === 'deny' && input.error !== undefined
        && !DENY_ERRORS.includes(input.error))
    {
        throw bad(`error must be one of ${DENY_ERRORS.join(', ')}`);
    }
    const rec = findRecord(input);
    if (rec.state !== 'pending' && !input.force) {
        throw new HttpError(409, 'not_pending', `the request is ${rec.state}`,
                            { fields: { state: rec.state } });
    }

    const now = Date.now();
    rec.decided_at = now;
    rec.redeemed_at = null;
    if (kind === 'approve') {
        rec.state = 'approved';
        rec.error = null;
        rec.error_description = null;
        rec.corrupt = corrupt;
        if (input.sub !== undefined) {
            rec.sub = input.sub;
        }
        if (rec.expires_at <= now) {
            rec.expires_at = now + 60000;       /* force on an expired one */
        }
    } else if (kind === 'deny') {
        rec.state = 'denied';
        rec.error = input.error || 'access_denied';
        rec.error_description = input.error_description
            || (rec.error === 'access_denied'
                ? 'the end-user denied the authorization request'
                : 'the authorization transaction failed');
    } else {
        rec.state = 'expired';
        rec.expires_at = now;
        rec.error = 'expired_token';
        rec.error_description = input.error_description
            || 'the auth_req_id has expired';
    }

    const answer = { auth_req_id: rec.auth_req_id, client_id: rec.client_id,
                     mode: rec.mode, state: rec.state, notified: false,
                     notification: null, tokens: null };
    const notify = input.notify !== false;

    if (rec.mode === 'push' && kind === 'approve') {
        if (notify) {
            const tokens = issueTokens(rec);
            rec.redeemed_at = now;
            answer.tokens = tokens;
            answer.notification = await notifyClient(rec, 'push', {
                auth_req_id: rec.auth_req_id, ...tokens }, input);
        }
    } else if (rec.mode === 'push') {
        if (notify) {
            answer.notification = await notifyClient(rec, 'push-error', {
                auth_req_id: rec.auth_req_id, error: rec.error,
                error_description: rec.error_description }, input);
        }
    } else if (rec.mode === 'ping' && notify) {
        answer.notification = await notifyClient(rec, 'ping',
            { auth_req_id: rec.auth_req_id }, input);
    }
    answer.notified = answer.notification !== null
        && answer.notification.status !== null;
    return answer;
}

async function adminNotify(input) {
    const known = new Set(['url', 'client_id', 'auth_req_id', 'method',
                           'headers', 'json', 'body', 'body_base64']);
    for (const k of Object.keys(input)) {
        if (!known.has(k)) {
            throw bad(`unknown field ${k}`);
        }
    }
    let url;
    if (input.url !== undefined) {
        url = checkCallbackUrl(input.url, 'url');
    } else {
        let cid = input.client_id;
        if (cid === undefined && input.auth_req_id !== undefined) {
            const rec = S.auth.get(input.auth_req_id);
            if (!rec) {
                throw new HttpError(404, 'not_found', 'no such auth_req_id');
            }
            cid = rec.client_id;
        }
        if (cid === undefined) {
            throw bad('url, client_id or auth_req_id required');
        }
        if (!Object.hasOwn(S.clients, cid)) {
            throw new HttpError(404, 'not_found', `no client ${cid}`);
        }
        url = S.clients[cid].callback;
        if (!url) {
            throw bad(`no callback URL configured for ${cid}`);
        }
    }
    const method = input.method ?? 'POST';
    if (typeof method !== 'string' || !/^[A-Z]{1,16}$/.test(method)) {
        throw bad('method must be an upper-case HTTP method');
    }
    const headers = {};
    if (input.headers !== undefined) {
        if (!isObject(input.headers)) {
            throw bad('headers must be an object');
        }
        for (const [k, v] of Object.entries(input.headers)) {
            try {
                http.validateHeaderName(k);
                http.validateHeaderValue(k, String(v));
            } catch (e) {
                throw bad(`header ${k}: ${e.message}`);
            }
            headers[k] = String(v);
        }
    }
    const bodies = ['json', 'body', 'body_base64'].filter((k) => input[k] !== undefined);
    if (bodies.length > 1) {
        throw bad('only one of json, body, body_base64');
    }
    let body = Buffer.alloc(0);
    if (input.json !== undefined) {
        body = Buffer.from(JSON.stringify(input.json));
        if (!hasHeader(headers, 'content-type')) {
            headers['Content-Type'] = 'application/json';
        }
    } else if (input.body !== undefined) {
        if (typeof input.body !== 'string') {
            throw bad('body must be a string');
        }
        body = Buffer.from(input.body, 'utf8');
    } else if (input.body_base64 !== undefined) {
        if (typeof input.body_base64 !== 'string') {
            throw bad('body_base64 must be a string');
        }
        body = Buffer.from(input.body_base64, 'base64');
    }
    for (const k of Object.keys(headers)) {
        if (k.toLowerCase() === 'content-length') {
            delete headers[k];
        }
    }
    return postCallback(url, headers, body, method);
}

function reset(input) {
    if (input.keep_config !== undefined && typeof input.keep_config !== 'boolean') {
        throw bad('keep_config must be true or false');
    }
    for (const h of S.held) {
        clearTimeout(h.timer);
        h.socket.destroy();
    }
    S.held.clear();
    S.requests = [];
    S.counts = {};
    S.auth.clear();
    S.scripts.clear();
    if (!input.keep_config) {
        S.options = clone(S.baseOptions);
        S.bindingRegex = compileRegex(S.options.binding_message_regex);
    }
    return { reset: true };
}

function requestsView(url) {
    const path = url.searchParams.get('path');
    const sinceRaw = url.searchParams.get('since');
    let since = 0;
    if (sinceRaw !== null) {
        if (!/^[0-9]{1,15}$/.test(sinceRaw)) {
            throw bad('since must be a sequence number');
        }
        since = Number(sinceRaw);
    }
    const list = S.requests.filter((e) => (path === null || e.path === path)
                                   && e.seq > since);
    return { count: list.length, counts: { ...S.counts }, requests: list };
}

function keyView() {
    const k = currentKey();
    return {
        kid: k.kid,
        private_pem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        public_pem: k.publicKey.export({ type: 'spki', format: 'pem' }),
        jwk: { ...k.jwk, kid: k.kid, use: 'sig', alg: 'ES256' },
    };
}

function rotate(input) {
    if (input.keep_old !== undefined && typeof input.keep_old !== 'boolean') {
        throw bad('keep_old must be true or false');
    }
    if (input.kid !== undefined && (typeof input.kid !== 'string' || input.kid === '')) {
        throw bad('kid must be a non-empty string');
    }
    const k = newKey(input.kid);
    if (S.keys.some((o) => o.kid === k.kid)) {
        throw bad('that kid is in use');
    }
    if (input.keep_old === false) {
        S.keys = [];
    }
    S.keys.push(k);
    return { kid: k.kid, kids: S.keys.map((x) => x.kid) };
}

async function admin(req, res, url, body) {
    const path = url.pathname.replace(/\/+$/, '');
    const m = req.method;
    const routes = {
        '/_admin/reset': ['POST'],
        '/_admin/config': ['GET', 'POST'],
        '/_admin/script': ['GET', 'POST'],
        '/_admin/requests': ['GET'],
        '/_admin/auth': ['GET'],
        '/_admin/pending': ['GET'],
        '/_admin/approve': ['POST'],
        '/_admin/deny': ['POST'],
        '/_admin/expire': ['POST'],
        '/_admin/notify': ['POST'],
        '/_admin/key': ['GET'],
        '/_admin/rotate': ['POST'],
    };
    let route = path;
    if (path.startsWith('/_admin/auth/')) {
        route = '/_admin/auth/*';
        routes[route] = ['GET'];
    }
    if (!Object.hasOwn(routes, route)) {
        throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
    }
    if (!routes[route].includes(m)) {
        throw new HttpError(405, 'invalid_request',
                            `use ${routes[route].join(' or ')}`,
                            { headers: { Allow: routes[route].join(', ') } });
    }
    const input = m === 'POST' ? parseJsonBody(body) : {};
    let out;

    switch (`${m} ${route}`) {
    case 'POST /_admin/reset':
        out = reset(input);
        break;
    case 'GET /_admin/config':
        out = configView();
        break;
    case 'POST /_admin/config':
        applyConfig(input);
        out = configView();
        break;
    case 'GET /_admin/script':
        out = { scripts: Object.fromEntries(
            [...S.scripts].map(([k, v]) => [k, v.length])) };
        break;
    case 'POST /_admin/script':
        out = queueScript(input);
        break;
    case 'GET /_admin/requests':
        out = requestsView(url);
        break;
    case 'GET /_admin/auth':
        out = { auth_requests: [...S.auth.values()].map(view) };
        break;
    case 'GET /_admin/auth/*': {
        let id;
        try {
            id = decodeURIComponent(path.slice('/_admin/auth/'.length));
        } catch {
            throw bad('bad auth_req_id in the path');
        }
        const rec = S.auth.get(id);
        if (!rec) {
            throw new HttpError(404, 'not_found', 'no such auth_req_id');
        }
        out = view(rec);
        break;
    }
    case 'GET /_admin/pending':
        out = { pending: [...S.auth.values()].map(view)
            .filter((r) => r.state === 'pending') };
        break;
    case 'POST /_admin/approve':
        out = await decide('approve', input);
        break;
    case 'POST /_admin/deny':
        out = await decide('deny', input);
        break;
    case 'POST /_admin/expire':
        out = await decide('expire', input);
        break;
    case 'POST /_admin/notify':
        out = await adminNotify(input);
        break;
    case 'GET /_admin/key':
        out = keyView();
        break;
    case 'POST /_admin/rotate':
        out = rotate(input);
        break;
    default:
        throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
    }
    sendJson(res, 200, out);
}


/* ---- the server -------------------------------------------------------- */

function readBody(req, limit) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let n = 0;
        let ended = false;
        req.on('data', (c) => {
            n += c.length;
            if (n <= limit) {
                chunks.push(c);
            }
        });
        req.on('end', () => {
            ended = true;
            resolve({ body: Buffer.concat(chunks), length: n, over: n > limit });
        });
        req.on('error', reject);
        req.on('close', () => {
            if (!ended) {
                reject(new Error('the client went away'));
            }
        });
    });
}

async function handle(req, res) {
    const t0 = Date.now();
    if (S.verbose) {
        let logged = false;
        const log = (what) => {
            if (!logged) {
                logged = true;
                process.stderr.write(`mock-as: ${new Date(t0).toISOString()} `
                    + `${req.method} ${JSON.stringify(req.url)} ${what} `
                    + `${Date.now() - t0}ms\n`);
            }
        };
        res.on('finish', () => log(res.statusCode));
        res.on('close', () => log('no-answer'));
    }

    let url;
    try {
        url = new URL(req.url, 'http://127.0.0.1');
    } catch {
        url = null;
    }
    if (url === null || !req.url.startsWith('/')) {
        throw bad('unparsable request target');
    }

    let got;
    try {
        got = await readBody(req, MAX_REQUEST_BODY);
    } catch {
        return;                       /* the client is gone */
    }
    const adminPath = url.pathname === '/_admin'
        || url.pathname.startsWith('/_admin/');
    if (adminPath) {
        if (got.over) {
            throw new HttpError(413, 'invalid_request', 'body too large');
        }
        return admin(req, res, url, got.body);
    }

    const entry = logRequest(req, url, got.body, got.length);
    res.on('finish', () => {
        entry.status = res.statusCode;
    });
    if (got.over) {
        const e = new HttpError(413, 'invalid_request',
                                `request body larger than ${MAX_REQUEST_BODY} bytes`);
        entry.answer = errorBody(e);
        return sendError(res, e);
    }
    const step = takeScript(url.pathname);
    if (step) {
        entry.scripted = step;
        return play(step, req, res, url,
                    () => serveAs(req, res, url, got.body, entry));
    }
    return serveAs(req, res, url, got.body, entry);
}

function usage(code) {
    const text = 'usage: mock-as.mjs [--port N] [--bind 127.0.0.1] [--key FILE]'
        + ' [--kid KID] [--config FILE] [--verbose]\n'
        + 'A scriptable CIBA authorization server for tests; see the top of'
        + ' the file for the API.\n';
    (code ? process.stderr : process.stdout).write(text);
    process.exit(code);
}

function die(msg) {
    process.stderr.write(`mock-as: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const a = { port: 0, key: null, kid: null, config: null, verbose: false };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) {
                die(`${arg} needs a value`);
            }
            return argv[++i];
        };
        switch (arg) {
        case '--port': {
            const v = val();
            if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) {
                die(`bad port ${JSON.stringify(v)}`);
            }
            a.port = Number(v);
            break;
        }
        case '--bind':
        case '--host': {
            const v = val();
            if (v !== '127.0.0.1') {
                die(`refusing to bind to ${JSON.stringify(v)}: loopback 127.0.0.1 only`);
            }
            break;
        }
        case '--key':
            a.key = val();
            break;
        case '--kid':
            a.kid = val();
            if (a.kid === '') {
                die('empty --kid');
            }
            break;
        case '--config':
            a.config = val();
            break;
        case '--verbose':
        case '-v':
            a.verbose = true;
            break;
        case '--help':
        case '-h':
            usage(0);
            break;
        default:
            process.stderr.write(`mock-as: unknown argument ${JSON.stringify(arg)}\n`);
            usage(2);
        }
    }
    return a;
}

function main() {
    const args = parseArgs(process.argv.slice(2));
    S.verbose = args.verbose;

    try {
        if (args.key) {
            S.keys.push(makeKey(createPrivateKey(readFileSync(args.key)), args.kid));
        } else {
            S.keys.push(newKey(args.kid));
        }
    } catch (e) {
        die(`key: ${e.message}`);
    }

    S.bindingRegex = compileRegex(S.options.binding_message_regex);
    if (args.config) {
        try {
            applyConfig(JSON.parse(readFileSync(args.config, 'utf8')));
        } catch (e) {
            die(`config ${args.config}: ${e.description || e.message}`);
        }
    }
    S.baseOptions = clone(S.options);

    const server = http.createServer((req, res) => {
        handle(req, res).catch((err) => {
            if (err instanceof HttpError) {
                sendError(res, err);
                return;
            }
            process.stderr.write(`mock-as: internal error: ${err && err.stack || err}\n`);
            if (!res.headersSent) {
                sendJson(res, 500, { error: 'server_error',
                                     error_description: String(err && err.message || err) });
            } else {
                res.destroy();
            }
        });
    });
    server.on('clientError', (err, sock) => {
        if (sock.writable) {
            sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n'
                     + 'Content-Length: 0\r\n\r\n');
        } else {
            sock.destroy();
        }
    });
    server.on('error', (e) => {
        process.stderr.write(`mock-as: ${e.message}\n`);
        process.exit(1);
    });

    let closing = false;
    const shutdown = () => {
        if (closing) {
            return;
        }
        closing = true;
        for (const h of S.held) {
            clearTimeout(h.timer);
            h.socket.destroy();
        }
        server.close(() => process.exit(0));
        server.closeAllConnections();
        setTimeout(() => process.exit(0), 1000).unref();
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    process.on('uncaughtException', (e) => {
        process.stderr.write(`mock-as: uncaught: ${e && e.stack || e}\n`);
    });

    server.listen(args.port, '127.0.0.1', () => {
        S.port = server.address().port;
        process.stdout.write(`mock-as listening on 127.0.0.1:${S.port}\n`);
    });
}

main();
