#!/usr/bin/env node
/*
 * dev-as: the development OpenID Connect CIBA authorization server (AS) of
 * ngx_http_ciba_module, built on npm oidc-provider 9.13.x (pinned in
 * package.json / package-lock.json; install with "npm ci" in this
 * directory).  For the demo and the end-to-end tests only: in-memory
 * storage, fixed demo users and clients, no login, loopback only.
 *
 *   node tools/dev-as/dev-as.mjs [--port N] [--audience URL]
 *        [--ping-callback URL] [--interval N] [--binding-message-max N]
 *        [--binding-message-chars wide|basic] [--default-expiry N]
 *        [--max-expiry N] [--token-ttl N] [--jwks-out FILE] [--verbose]
 *
 *   --port N          TCP port on 127.0.0.1 (0: a free one; default 0).
 *                     It always binds 127.0.0.1, never anything else.
 *   --audience URL    the resource indicator and "aud" of the JWT access
 *                     tokens (default https://tools.example)
 *   --ping-callback URL  backchannel_client_notification_endpoint of the
 *                     ping client nginx-ping (nginx's "ciba_callback"
 *                     location).  Without it nginx-ping is not registered.
 *                     oidc-provider requires an https URL here (client
 *                     metadata validation); see "Pings" below for an http
 *                     loopback URL.
 *   --interval N      add "interval": N to backchannel answers (default:
 *                     none, as stock oidc-provider, and clients then use
 *                     5 s).  oidc-provider itself never enforces it (it
 *                     never answers slow_down).
 *   --binding-message-max N  longest accepted binding_message, in
 *                     characters (default 64; 20 is oidc-provider's own
 *                     default)
 *   --binding-message-chars wide|basic  the characters accepted in a
 *                     binding_message (default wide; see "Binding
 *                     messages" below)
 *   --default-expiry N  lifetime of a backchannel request without
 *                     requested_expiry, seconds (default 300)
 *   --max-expiry N    largest honoured requested_expiry (default 600)
 *   --token-ttl N     access and ID token lifetime, seconds (default 300)
 *   --jwks-out FILE   also write the public JWK set to FILE when ready
 *   --verbose         one line per HTTP request on stderr
 *
 * When it is ready it prints exactly one line on stdout:
 *
 *   dev-as listening on http://127.0.0.1:PORT
 *
 * and the issuer is http://127.0.0.1:PORT.  SIGINT/SIGTERM: exits 0.
 * Node.js 20 works (oidc-provider prints an "Unsupported runtime" warning:
 * it wants Node 22 LTS or later).
 *
 *
 * OIDC ENDPOINTS (oidc-provider's own, default routes)
 * ----------------------------------------------------
 *   GET  /.well-known/openid-configuration
 *   GET  /jwks            the public signing key (one EC P-256 key, ES256,
 *                         generated at each start; use "sig", kid = its
 *                         RFC 7638 thumbprint)
 *   POST /backchannel     CIBA backchannel authentication endpoint
 *   POST /token           token endpoint
 *                         (grant_type=urn:openid:params:grant-type:ciba)
 *   GET  /me              userinfo
 *
 * CIBA delivery modes: poll and ping.  Push is not supported by
 * oidc-provider ("only poll and ping CIBA delivery modes are supported");
 * the suite's mock AS (t/fixtures/mock-as) covers push.
 *
 * Clients (confidential; grant_types urn:openid:params:grant-type:ciba
 * only; id_token_signed_response_alg ES256; authorization_details_types
 * nginx_ciba_action):
 *
 *   client_id    secret        delivery  client authentication
 *   nginx-poll   poll-secret   poll      client_secret_basic
 *   nginx-ping   ping-secret   ping      client_secret_basic
 *   nginx-post   post-secret   poll      client_secret_post
 *
 * For nginx: proxy_set_header Authorization "Basic <base64 of
 * nginx-poll:poll-secret>" in the internal locations (client_secret_basic),
 * or ciba_client_id nginx-post; ciba_client_secret post-secret;
 * (client_secret_post).
 *
 * Users (login_hint: the user name or the e-mail address):
 *
 *   login_hint   sub (the approver, "sub" of the tokens)
 *   alice        248289761001
 *   bob          248289761002
 *   carol        248289761003
 *
 * Anything else is "unknown_user_id".  A user_code is refused
 * (invalid_user_code; the clients have backchannel_user_code_parameter
 * false, although discovery, fixed by oidc-provider, says
 * backchannel_user_code_parameter_supported true); request_context is
 * ignored; login_hint_token is refused (invalid_request).
 *
 * Binding messages (features.ciba.validateBindingMessage; oidc-provider's
 * own default accepts ^[a-zA-Z0-9-._+/!?#]{1,20}$ only): from 1 to N
 * characters (Unicode code points), N = --binding-message-max (64 by
 * default), each one of
 *
 *   wide (the default)  the letters A-Z a-z, the digits 0-9, the space
 *                       and - . _ + / ! ? # , : ' ( ) % and the euro
 *                       sign (U+20AC), not all of them spaces: readable
 *                       messages such as "Refund 30 EUR on order A17"
 *                       (the module with ciba_binding_message_chars
 *                       "A-Za-z0-9 \-._+/!?#,:" sends only such)
 *   basic               A-Z a-z 0-9 - . _ + / ! ? # only: oidc-provider's
 *                       own set, which is also Keycloak's and Auth0's and
 *                       ngx_http_ciba_module's default
 *                       ciba_binding_message_chars (no space)
 *
 * No control character, no other punctuation (no < > " & ; = @ \ ` ~ |
 * [ ] { } * $ ^), no other letter.  Anything else is answered
 * invalid_binding_message (400), which nginx turns into 502
 * approval_misconfigured.
 *
 * Rich Authorization Requests (RFC 9396): the type nginx_ciba_action is
 * registered and validated (actions: non-empty array of strings;
 * identifier: the action digest, a base64url string; locations: absolute
 * http(s) URLs; method, path: strings, the path starting with "/"; args:
 * an object whose values are strings or non-empty arrays of strings (a
 * repeated argument); args_truncated: a boolean; body_sha256: 64
 * lowercase hex digits; other members pass, e.g. the operator's fields
 * from ciba_authorization_detail).  An approval
 * passes the request's authorization_details to backchannelResult as
 * "rar" (oidc-provider puts RAR details into a CIBA access token only
 * then), and authorizationDetailsForAccessToken copies them into the
 * token: the JWT access token and the token response carry
 * "authorization_details".
 *
 * Access tokens: resource indicators are on; every CIBA request defaults
 * to the one resource server --audience (defaultResource,
 * useGrantedResource true), whose access tokens are JWTs ("typ": "at+jwt")
 * signed ES256 with the key in /jwks: iss (the issuer), aud (--audience),
 * sub, client_id, iat, exp, jti, authorization_details.  The ID token is
 * signed ES256 with the same key.
 *
 * Storage: in memory (lost at exit).  A backchannel request is kept for
 * 10 minutes past its expiry, so the token endpoint answers expired_token
 * for it (oidc-provider's own memory adapter drops it 15 s after expiry,
 * and then answers invalid_grant).
 *
 * Pings: oidc-provider refuses to connect to special-use addresses
 * (loopback included) for outgoing requests.  This server replaces its
 * fetch so that the ping may go to a loopback address (127.0.0.0/8,
 * localhost, [::1]) and only there.  An https callback with a self-signed
 * certificate needs that certificate trusted by node:
 * NODE_EXTRA_CA_CERTS=cert.pem in dev-as's environment.  Because
 * oidc-provider only registers https notification endpoints, an http
 * loopback --ping-callback (e.g. http://127.0.0.1:8080/ciba/callback) is
 * registered with https:// and the ping is then sent over plain http to
 * that exact URL; dev-as says so at start.  Development only.
 * oidc-provider sends the ping inside backchannelResult, i.e. while
 * /admin/approve or /admin/deny runs; their answer says how it went.
 *
 *
 * ADMIN API (not part of OIDC; JSON; same port, under /admin)
 * -----------------------------------------------------------
 * No authentication: the server listens on loopback only.  So that no web
 * page can use it from a browser on this machine (see refuseForeign()):
 * the Host header must name a loopback address (127.0.0.0/8, localhost,
 * [::1]; anything else, e.g. a DNS-rebound name, is 403), and a POST must
 * have Content-Type application/json (else 415 unsupported_media_type: a
 * cross-site HTML form cannot send it, and a cross-site fetch() with it
 * needs a CORS preflight that is never granted), no foreign Origin (when
 * there is an Origin it must be http://HOST:PORT of the Host header) and
 * no cross-site Sec-Fetch-Site (only "same-origin" or "none"), else 403
 * forbidden.  Tools (curl, the tests, tools/ciba-approve) send JSON and no
 * Origin.
 *
 *   GET  /admin/pending   {"pending": [request, ...]}: the backchannel
 *                         requests waiting for a decision, newest first
 *   GET  /admin/requests  {"requests": [...]}: all of them, any state
 *   GET  /admin/requests/<auth_req_id>   one, or 404
 *       request: {auth_req_id, state ("pending", "approved", "denied",
 *       "expired", "redeemed"), client_id, delivery_mode, login_hint,
 *       account (the sub), binding_message, authorization_details (parsed
 *       JSON, or null), scope, requested_expiry, created_at, expires_at
 *       (epoch seconds), expires_in (seconds left), decided_at,
 *       redeemed_at, ping (the last ping: {url, status, error, ms})}
 *   POST /admin/approve  {"auth_req_id": "..."}
 *       -> {"auth_req_id", "state": "approved", "account", "ping"}
 *       Creates a grant (scope "openid" and the resource) for the user
 *       and calls provider.backchannelResult(request, grant, {rar,
 *       authTime, amr}); a ping client is pinged.
 *   POST /admin/deny     {"auth_req_id": "..."}
 *       -> {"auth_req_id", "state": "denied", "ping"}
 *       backchannelResult(request, new errors.AccessDenied(...)): the
 *       token endpoint then answers access_denied.
 *       Both: 400 on bad input, 404 for an unknown id, 409
 *       {"error": "not_pending", "state"} when it is decided or expired.
 *   GET  /admin/users     {"users": [{login_hint, sub, email, name}]}
 *   GET  /admin/stats     {"counts": {"<path>": n}, "requests": [{path,
 *                         method, status, ms, client_id, time}]} for the
 *                         OIDC endpoints (the last 200), for tests
 *   (GET /jwks is the provider's own: there is no /admin/jwks.)
 *
 *
 * THE APPROVER PAGE: GET /approver (the "human's device")
 * -------------------------------------------------------
 * Open http://127.0.0.1:PORT/approver in a browser on this machine.  It
 * lists the pending backchannel requests (from /admin/pending, every 2 s,
 * without reloading), newest first, each with the binding message in big
 * letters, the user (login_hint and sub), the client, and from each
 * authorization_details entry the action(s), method, URL (locations),
 * path (percent-encoded, as the digest covers it, and decoded beside it
 * when that differs), the arguments (args: "name = value" lines, a
 * repeated name with each of its values, "more arguments not shown" for
 * args_truncated), the body's SHA-256 (body_sha256), the action digest
 * (identifier) and the operator's other string fields (e.g. uri), and a
 * live countdown to its expiry; Approve and Deny buttons POST to
 * /admin/approve and /admin/deny.  (The arguments are listed in the order
 * of the JSON object nginx sent, its request order, except that names
 * that are array indexes, such as "0" or "17", come first in numeric
 * order: JavaScript objects order their keys so.)
 * Decided requests (here or elsewhere, e.g. tools/ciba-approve) and
 * expired ones stay under "Recently decided" for a minute with their
 * result; "No pending approvals." when there is none.
 *
 * It is one self-contained document (inline style and script: no CDN, no
 * web font), served with a Content-Security-Policy allowing only that
 * style and that script (by hash) and fetch() to its own origin, requiring
 * Trusted Types, forbidding framing, forms and base URLs; nosniff,
 * no-store, X-Frame-Options DENY, no referrer.  The binding message and
 * the details come from an agent's request: the page writes them with
 * textContent only, control characters and bidirectional overrides shown
 * escaped (\u202e) so that they cannot reorder what the human reads.
 * Stable attributes for tests: see "the approver page" below.
 * The command-line equivalent is tools/ciba-approve.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const USAGE = `usage: node dev-as.mjs [--port N] [--audience URL]
       [--ping-callback URL] [--interval N] [--binding-message-max N]
       [--binding-message-chars wide|basic] [--default-expiry N]
       [--max-expiry N] [--token-ttl N] [--jwks-out FILE] [--verbose]`;

const RAR_TYPE = 'nginx_ciba_action';
const EXPIRED_GRACE = 600;          /* seconds a record outlives its expiry */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/*
 * The characters a binding_message may use (a regular expression
 * character class, "u" flag), by --binding-message-chars; see "Binding
 * messages" above.
 */
const BINDING_CHARS = {
  wide: "[A-Za-z0-9 \\-._+/!?#,:'()%\u20ac]",
  basic: '[A-Za-z0-9\\-._+/!?#]',
};

function die(msg) {
  process.stderr.write(`dev-as: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function intOption(value, name, min, max) {
  if (value === undefined) {
    return undefined;
  }
  if (!/^\d+$/.test(value) || +value < min || +value > max) {
    die(`--${name} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return +value;
}

function isLoopbackHost(hostname) {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/* ---- options ------------------------------------------------------------ */

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      audience: { type: 'string' },
      'ping-callback': { type: 'string' },
      interval: { type: 'string' },
      'binding-message-max': { type: 'string' },
      'binding-message-chars': { type: 'string' },
      'default-expiry': { type: 'string' },
      'max-expiry': { type: 'string' },
      'token-ttl': { type: 'string' },
      'jwks-out': { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  die(err.message);
}

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const opt = {
  port: intOption(args.port, 'port', 0, 65535) ?? 0,
  audience: args.audience ?? 'https://tools.example',
  interval: intOption(args.interval, 'interval', 1, 3600),
  bindingMax: intOption(args['binding-message-max'], 'binding-message-max',
    1, 1024) ?? 64,
  bindingChars: args['binding-message-chars'] ?? 'wide',
  defaultExpiry: intOption(args['default-expiry'], 'default-expiry', 1, 86400)
    ?? 300,
  maxExpiry: intOption(args['max-expiry'], 'max-expiry', 1, 86400) ?? 600,
  tokenTtl: intOption(args['token-ttl'], 'token-ttl', 1, 86400) ?? 300,
  jwksOut: args['jwks-out'],
  verbose: !!args.verbose,
};

if (!Object.hasOwn(BINDING_CHARS, opt.bindingChars)) {
  die('--binding-message-chars must be "wide" or "basic", not '
    + `"${opt.bindingChars}"`);
}

{
  const u = URL.parse(opt.audience);
  if (!u || !/^https?:$/.test(u.protocol) || u.hash) {
    die(`--audience must be an absolute http(s) URL without a fragment, not "${opt.audience}"`);
  }
}

/* loaded once the arguments are known: its runtime warning comes after them */
let Provider;
let errors;

try {
  ({ default: Provider, errors } = await import('oidc-provider'));
} catch (err) {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  process.stderr.write(`dev-as: cannot load oidc-provider (${err.code ?? err.message}): `
    + `run "npm ci" in ${dir} (or "make deps")\n`);
  process.exit(1);
}

/* the URL registered at oidc-provider, and the one the ping really goes to */
let pingRegistered;
let pingActual;

if (args['ping-callback'] !== undefined) {
  const u = URL.parse(args['ping-callback']);
  if (!u || !/^https?:$/.test(u.protocol) || !isLoopbackHost(u.hostname)
      || u.hash || u.username || u.password) {
    die(`--ping-callback must be an http(s) URL on a loopback address, not "${args['ping-callback']}"`);
  }
  pingActual = u.href;
  if (u.protocol === 'http:') {
    u.protocol = 'https:';
    if (!u.port) {
      u.port = '80';
    }
    process.stderr.write('dev-as: warning: oidc-provider registers only https '
      + `notification endpoints: registered ${u.href}, pings go over plain `
      + `http to ${pingActual} (development only)\n`);
  }
  pingRegistered = u.href;
}

/* ---- users -------------------------------------------------------------- */

const USERS = [
  { login_hint: 'alice', sub: '248289761001', name: 'Alice Example',
    email: 'alice@example.com' },
  { login_hint: 'bob', sub: '248289761002', name: 'Bob Example',
    email: 'bob@example.com' },
  { login_hint: 'carol', sub: '248289761003', name: 'Carol Example',
    email: 'carol@example.com' },
];

function userByHint(hint) {
  return USERS.find((u) => u.login_hint === hint || u.email === hint);
}

function userBySub(sub) {
  return USERS.find((u) => u.sub === sub);
}

/* ---- the signing key ---------------------------------------------------- */

function b64u(buf) {
  return Buffer.from(buf).toString('base64url');
}

const privateJwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ format: 'jwk' });

/* RFC 7638 thumbprint: the required members in lexicographic order */
privateJwk.kid = b64u(crypto.createHash('sha256').update(JSON.stringify({
  crv: privateJwk.crv, kty: privateJwk.kty, x: privateJwk.x, y: privateJwk.y,
})).digest());
privateJwk.alg = 'ES256';
privateJwk.use = 'sig';

/* ---- storage: an in-memory adapter -------------------------------------- */

/*
 * oidc-provider's adapter interface (upsert, find, findByUserCode,
 * findByUid, consume, destroy, revokeByGrantId), kept in one Map.  A
 * record lives until its expiry plus EXPIRED_GRACE, so an expired
 * backchannel request is still found and answered expired_token.
 */
const store = new Map();      /* "Model:id" -> { payload, expiresAt (ms) } */

class DevAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  static live(entry) {
    return entry && (entry.expiresAt === undefined || entry.expiresAt > Date.now());
  }

  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), {
      payload,
      expiresAt: typeof expiresIn === 'number'
        ? Date.now() + (expiresIn + EXPIRED_GRACE) * 1000 : undefined,
    });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    return DevAdapter.live(entry) ? entry.payload : undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode
          && DevAdapter.live(entry)) {
        return entry.payload;
      }
    }
    return undefined;
  }

  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid
          && DevAdapter.live(entry)) {
        return entry.payload;
      }
    }
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) {
      entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      if (entry.payload.grantId === grantId) {
        store.delete(key);
      }
    }
  }
}

setInterval(() => {
  for (const [key, entry] of store) {
    if (!DevAdapter.live(entry)) {
      store.delete(key);
    }
  }
}, 30000).unref();

/* ---- what the admin API shows ------------------------------------------- */

/* auth_req_id -> what the backchannel request asked (newest last) */
const requests = new Map();

function parseDetails(raw) {
  if (typeof raw !== 'string') {
    return null;
  }
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

/* ---- RAR type validation ------------------------------------------------ */

function validateCibaAction(ctx, detail) {
  const bad = (why) => {
    throw new errors.InvalidAuthorizationDetails(`${RAR_TYPE}: ${why}`);
  };

  if (!Array.isArray(detail.actions) || detail.actions.length === 0
      || detail.actions.some((a) => typeof a !== 'string' || !a.length)) {
    bad('"actions" must be a non-empty array of non-empty strings');
  }
  if (typeof detail.identifier !== 'string'
      || !/^[A-Za-z0-9_-]{16,128}$/.test(detail.identifier)) {
    bad('"identifier" must be the action digest (base64url)');
  }
  if (detail.locations !== undefined) {
    for (const l of detail.locations) {
      if (!/^https?:$/.test(URL.parse(l)?.protocol ?? '')) {
        bad('"locations" must be absolute http(s) URLs');
      }
    }
  }
  for (const m of ['method', 'path']) {
    if (detail[m] !== undefined && (typeof detail[m] !== 'string' || !detail[m].length)) {
      bad(`"${m}" must be a non-empty string`);
    }
  }
  if (detail.path !== undefined && !detail.path.startsWith('/')) {
    bad('"path" must start with "/"');
  }
  if (detail.args !== undefined) {
    if (detail.args === null || typeof detail.args !== 'object'
        || Array.isArray(detail.args)) {
      bad('"args" must be an object');
    }
    for (const v of Object.values(detail.args)) {
      if (typeof v !== 'string' && !(Array.isArray(v) && v.length
          && v.every((x) => typeof x === 'string'))) {
        bad('each value of "args" must be a string or a non-empty array of '
          + 'strings');
      }
    }
  }
  if (detail.args_truncated !== undefined
      && typeof detail.args_truncated !== 'boolean') {
    bad('"args_truncated" must be a boolean');
  }
  if (detail.body_sha256 !== undefined
      && !/^[0-9a-f]{64}$/.test(detail.body_sha256)) {
    bad('"body_sha256" must be 64 lowercase hex digits');
  }
}

/* ---- the provider ------------------------------------------------------- */

function makeClients() {
  const common = {
    grant_types: ['urn:openid:params:grant-type:ciba'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
    authorization_details_types: [RAR_TYPE],
  };

  const clients = [
    {
      ...common,
      client_id: 'nginx-poll',
      client_secret: 'poll-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_token_delivery_mode: 'poll',
    },
    {
      ...common,
      client_id: 'nginx-post',
      client_secret: 'post-secret',
      token_endpoint_auth_method: 'client_secret_post',
      backchannel_token_delivery_mode: 'poll',
    },
  ];

  if (pingRegistered) {
    clients.push({
      ...common,
      client_id: 'nginx-ping',
      client_secret: 'ping-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_token_delivery_mode: 'ping',
      backchannel_client_notification_endpoint: pingRegistered,
    });
  }

  return clients;
}

/* the last ping, per auth_req_id, as this server's fetch saw it */
const pings = new Map();

/*
 * oidc-provider's outgoing requests (here: only pings) go through this.
 * It passes an SSRF-protected dispatcher that refuses special-use
 * addresses, loopback included; for this loopback-only development server
 * the ping may go to loopback, and nowhere else.
 */
async function devFetch(url, options) {
  const u = new URL(url);
  if (!isLoopbackHost(u.hostname)) {
    throw new Error(`dev-as only sends requests to loopback addresses, not to ${u.host}`);
  }

  delete options.dispatcher;

  let target = u.href;
  if (pingRegistered && target === pingRegistered) {
    target = pingActual;
  }

  let id;
  try {
    id = JSON.parse(options.body).auth_req_id;
  } catch {}

  const t0 = performance.now();
  const record = { url: target, status: null, error: null, ms: null };
  try {
    const res = await globalThis.fetch(target, options);
    record.status = res.status;
    return res;
  } catch (err) {
    record.error = String(err.cause?.message ?? err.message);
    throw err;
  } finally {
    record.ms = Math.round((performance.now() - t0) * 10) / 10;
    if (id) {
      pings.set(id, record);
    }
    if (opt.verbose) {
      process.stderr.write(`dev-as: ping ${target} -> ${record.status ?? record.error} `
        + `(${record.ms} ms)\n`);
    }
  }
}

function makeProvider(issuer) {
  /* 1 to N characters of the set, not only spaces */
  const bindingRe = new RegExp(`^(?! *$)${BINDING_CHARS[opt.bindingChars]}`
    + `{1,${opt.bindingMax}}$`, 'u');

  const configuration = {
    clients: makeClients(),
    jwks: { keys: [privateJwk] },
    adapter: DevAdapter,
    fetch: devFetch,

    cookies: { keys: [b64u(crypto.randomBytes(32))] },
    clientBasedCORS: () => false,

    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },

    async findAccount(ctx, sub) {
      const user = userBySub(sub);
      if (!user) {
        return undefined;
      }
      return {
        accountId: user.sub,
        async claims() {
          return {
            sub: user.sub, name: user.name, email: user.email,
            email_verified: true,
          };
        },
      };
    },

    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL
        ?? opt.tokenTtl,
      IdToken: opt.tokenTtl,
      Grant: Math.max(opt.maxExpiry, opt.tokenTtl) + 600,
      BackchannelAuthenticationRequest(ctx) {
        const requested = ctx?.oidc?.params.requested_expiry;
        return requested ? Math.min(opt.maxExpiry, +requested) : opt.defaultExpiry;
      },
    },

    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },

      ciba: {
        enabled: true,
        deliveryModes: ['poll', 'ping'],

        async processLoginHint(ctx, loginHint) {
          return userByHint(loginHint)?.sub;
        },

        async processLoginHintToken() {
          throw new errors.InvalidRequest('login_hint_token is not supported here');
        },

        async verifyUserCode(ctx, account, userCode) {
          if (userCode) {
            throw new errors.InvalidUserCode('user_code is not supported here');
          }
        },

        async validateRequestContext() {},

        async validateBindingMessage(ctx, bindingMessage) {
          if (bindingMessage !== undefined && !bindingRe.test(bindingMessage)) {
            throw new errors.InvalidBindingMessage(
              `the binding_message must be 1 to ${opt.bindingMax} characters `
              + `matching ${BINDING_CHARS[opt.bindingChars]}, not only spaces`,
            );
          }
        },

        /*
         * "Notify the user's device": here, remember the request for the
         * admin API and the approver page.  ctx.body is already
         * the answer {auth_req_id, expires_in}; --interval adds to it.
         */
        async triggerAuthenticationDevice(ctx, request, account, client) {
          const p = request.params;
          const now = Math.floor(Date.now() / 1000);
          requests.set(request.jti, {
            auth_req_id: request.jti,
            client_id: client.clientId,
            delivery_mode: client.backchannelTokenDeliveryMode,
            login_hint: p.login_hint ?? null,
            account: account.accountId,
            binding_message: p.binding_message ?? null,
            authorization_details: parseDetails(p.authorization_details),
            scope: request.scope ?? null,
            requested_expiry: p.requested_expiry !== undefined
              ? +p.requested_expiry : null,
            created_at: now,
            expires_at: now + (ctx.body?.expires_in ?? request.expiration),
            decided_at: null,
            redeemed_at: null,
          });

          if (opt.interval !== undefined && ctx.body && typeof ctx.body === 'object') {
            ctx.body.interval = opt.interval;
          }

          if (opt.verbose) {
            process.stderr.write(`dev-as: backchannel request for ${account.accountId}`
              + ` from ${client.clientId}: "${p.binding_message ?? ''}"\n`);
          }
        },
      },

      richAuthorizationRequests: {
        enabled: true,
        types: {
          [RAR_TYPE]: { validate: validateCibaAction },
        },
        /* the details the human approved (passed as "rar") go into the token */
        authorizationDetailsForAccessToken(ctx, token, source) {
          return source?.rar?.filter((d) => d.type === RAR_TYPE);
        },
        authorizationDetailsForGrantSource(ctx, source) {
          return source?.rar;
        },
        authorizationDetailsForIntrospection(ctx, token) {
          return token.rar;
        },
      },

      resourceIndicators: {
        enabled: true,
        async defaultResource() {
          return opt.audience;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator !== opt.audience) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: '',
            audience: opt.audience,
            accessTokenTTL: opt.tokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },

    enabledJWA: {
      idTokenSigningAlgValues: ['ES256'],
    },
  };

  const provider = new Provider(issuer, configuration);

  provider.on('backchannel_authentication_request.consumed', (request) => {
    const r = requests.get(request.jti);
    if (r) {
      r.redeemed_at = Math.floor(Date.now() / 1000);
    }
  });

  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`dev-as: server_error: ${err.stack ?? err}\n`);
  });

  return provider;
}

/* ---- admin API ---------------------------------------------------------- */

async function stateOf(provider, id) {
  const r = requests.get(id);
  const model = await provider.BackchannelAuthenticationRequest.find(id, {
    ignoreExpiration: true,
  });

  /* a second token request revokes the grant and the request with it */
  if (model?.consumed || r?.redeemed_at) {
    return 'redeemed';
  }
  if (!model) {
    return r ? 'expired' : undefined;
  }
  if (model.error) {
    return 'denied';
  }
  if (model.grantId) {
    return 'approved';
  }
  if (model.isExpired) {
    return 'expired';
  }
  return 'pending';
}

async function describe(provider, id) {
  const r = requests.get(id);
  if (!r) {
    return undefined;
  }
  const now = Math.floor(Date.now() / 1000);
  return {
    ...r,
    state: await stateOf(provider, id),
    expires_in: Math.max(0, r.expires_at - now),
    ping: pings.get(id) ?? null,
  };
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj, null, 1);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 65536) {
      throw new Error('body too large');
    }
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const obj = text.length ? JSON.parse(text) : {};
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error('the body must be a JSON object');
  }
  return obj;
}

async function decide(provider, req, res, approve) {
  let body;
  try {
    body = await readJson(req);
  } catch (err) {
    return sendJson(res, 400, { error: 'invalid_request', error_description: err.message });
  }

  const id = body.auth_req_id;
  if (typeof id !== 'string' || !id.length) {
    return sendJson(res, 400, {
      error: 'invalid_request', error_description: '"auth_req_id" (a string) is required',
    });
  }

  const state = await stateOf(provider, id);
  if (state === undefined) {
    return sendJson(res, 404, { error: 'not_found', error_description: 'no such auth_req_id' });
  }
  if (state !== 'pending') {
    return sendJson(res, 409, { error: 'not_pending', state });
  }

  const request = await provider.BackchannelAuthenticationRequest.find(id, {
    ignoreExpiration: true,
  });

  const r = requests.get(id);
  let result;
  const extra = {};

  if (approve) {
    const grant = new provider.Grant({
      accountId: request.accountId,
      clientId: request.clientId,
    });
    grant.addOIDCScope(request.scope ?? 'openid');
    const resources = [request.resource ?? []].flat();
    for (const resource of resources) {
      grant.addResourceScope(resource, request.scope ?? '');
    }
    await grant.save();
    result = grant;

    const rar = parseDetails(request.params.authorization_details);
    extra.rar = Array.isArray(rar) && rar.length ? rar : undefined;
    extra.authTime = Math.floor(Date.now() / 1000);
    extra.amr = ['dev'];
  } else {
    result = new errors.AccessDenied('the user denied the request');
  }

  let pingError = null;
  try {
    await provider.backchannelResult(request, result, extra);
  } catch (err) {
    /* the result is saved before the ping is sent: only the ping failed */
    pingError = String(err.cause?.message ?? err.message);
  }

  if (r) {
    r.decided_at = Math.floor(Date.now() / 1000);
  }

  const out = {
    auth_req_id: id,
    state: approve ? 'approved' : 'denied',
    account: request.accountId,
    ping: pings.get(id) ?? null,
  };
  if (pingError) {
    out.ping_error = pingError;
  }
  return sendJson(res, 200, out);
}

/* ---- the approver page -------------------------------------------------- */

/*
 * The approver web page, the "human's device": GET /approver.  One
 * self-contained document (inline style and script, no external resource:
 * the network may be closed), allowed by a Content-Security-Policy that
 * names the hashes of exactly that style and script, allows fetch() to
 * this origin only, and requires Trusted Types (so no innerHTML-style sink
 * can be used at all).  Everything it shows comes from /admin/pending and
 * is written with textContent: the binding message and the
 * authorization_details come from an agent's request and are hostile.
 *
 * Stable attributes for tests: each item is an element with
 * data-auth-req-id and data-state (pending, deciding, approved, denied,
 * expired, redeemed, unknown); its values carry data-field (binding_message,
 * login_hint, account, client_id, type, actions, method, locations, path,
 * path_decoded (only when it differs), args, args_truncated (only when
 * set), body_sha256, identifier, other, scope, auth_req_id, expires_in,
 * result); in the args value, each argument is a [data-arg] element
 * holding one [data-part="name"] and one [data-part="value"] per value;
 * each further string field is a dd with data-field="extra" and
 * data-name (its name); its buttons data-action="approve" / "deny".  #pending and #decided are the two
 * lists, #empty the "no pending approvals" line, #status the connection
 * state (data-status "ok" or "error").
 */

const APPROVER_POLL_MS = 2000;
const APPROVER_KEEP_MS = 60000;

const APPROVER_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #59636e;
  --bg: #f6f8fa; --card: #fff; --line: #d1d9e0; --ok: #1a7f37;
  --bad: #cf222e; --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3;
  --muted: #9198a1; --bg: #0d1117; --card: #151b23; --line: #3d444d;
  --ok: #3fb950; --bad: #f85149; --warn: #d29922; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg);
  background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5em 1.5em;
  align-items: baseline; padding: .8em 1.2em;
  border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.25em; margin: 0; }
#status { color: var(--muted); font-size: .9em; }
#status[data-status="error"] { color: var(--bad); font-weight: 600; }
main { max-width: 60em; margin: 0 auto; padding: 1em 1.2em 3em; }
h2 { font-size: 1.05em; margin: 1.4em 0 .6em; }
.count { display: inline-block; min-width: 1.6em; padding: 0 .4em;
  border-radius: 1em; background: var(--line); text-align: center; }
.empty { color: var(--muted); font-style: italic; }
ol.items { list-style: none; margin: 0; padding: 0; }
.item { background: var(--card); border: 1px solid var(--line);
  border-left: 6px solid var(--warn); border-radius: 8px;
  padding: 1em 1.2em; margin: 0 0 1em; }
.item[data-state="approved"], .item[data-state="redeemed"] {
  border-left-color: var(--ok); }
.item[data-state="denied"], .item[data-state="expired"],
.item[data-state="unknown"] { border-left-color: var(--bad); }
#decided .item { opacity: .8; }
.label { margin: 0; color: var(--muted); font-size: .8em;
  text-transform: uppercase; letter-spacing: .05em; }
.binding { margin: .1em 0 .2em; font: 600 1.6em/1.25 ui-monospace, monospace;
  overflow-wrap: anywhere; white-space: pre-wrap; }
.binding.none { color: var(--muted); font-style: italic; font-weight: 400; }
.hint { margin: 0 0 .8em; color: var(--muted); font-size: .85em; }
dl { display: grid; grid-template-columns: 8.5em 1fr; gap: .25em 1em;
  margin: 0 0 .8em; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.mono, dd.mono { font-family: ui-monospace, monospace; font-size: .92em; }
dd { unicode-bidi: plaintext; }
.arg { margin: 0 0 .15em; }
.arg .name { font-weight: 600; }
.arg .eq, .note { color: var(--muted); }
.arg .val { white-space: pre-wrap; background: var(--bg);
  border: 1px solid var(--line); border-radius: 4px; padding: 0 .25em;
  margin-right: .3em; }
.note { font-size: .9em; font-style: italic; }
.detail { border-top: 1px dashed var(--line); padding-top: .5em; }
.expires { font-variant-numeric: tabular-nums; font-weight: 600; }
.expires.urgent { color: var(--bad); }
.buttons { display: flex; gap: .8em; }
button { font: inherit; font-weight: 600; padding: .5em 1.6em;
  border-radius: 6px; border: 1px solid var(--line); cursor: pointer; }
button[data-action="approve"] { background: var(--ok); color: #fff;
  border-color: var(--ok); }
button[data-action="deny"] { background: var(--card); color: var(--bad);
  border-color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
.result { margin: .6em 0 0; font-weight: 600; }
.result:empty { display: none; }
.item[data-state="approved"] .result, .item[data-state="redeemed"] .result {
  color: var(--ok); }
.item[data-state="denied"] .result, .item[data-state="expired"] .result,
.item[data-state="unknown"] .result, .result.error { color: var(--bad); }
footer { color: var(--muted); font-size: .85em; }
`;

/*
 * The page's script (serialized with Function.prototype.toString: it must
 * not use anything from this module).  Runs in the browser.
 */
function approverClient(POLL_MS, KEEP_MS) {
  'use strict';

  const pendingList = document.getElementById('pending');
  const decidedList = document.getElementById('decided');
  const empty = document.getElementById('empty');
  const status = document.getElementById('status');
  const count = document.getElementById('pending-count');

  /* auth_req_id -> { id, li, deadline, state, expiresEl, buttons, result } */
  const items = new Map();
  const FINAL = new Set(['approved', 'denied', 'expired', 'redeemed',
    'unknown']);
  const WORDS = {
    approved: 'Approved', denied: 'Denied', expired: 'Expired',
    redeemed: 'Approved (token redeemed)', unknown: 'Unknown to the AS',
  };

  /*
   * Text to show: controls (C0, DEL, C1), line and paragraph separators
   * and the bidirectional controls written as escapes (\x1b, \u202e), so
   * that a value cannot hide or reorder what is around it.
   */
  function str(v) {
    if (v === undefined || v === null) {
      return '';
    }
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s.replace(
      /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/gu,
      (c) => {
        const n = c.codePointAt(0);
        return n < 0x100 ? '\\x' + n.toString(16).padStart(2, '0')
          : '\\u' + n.toString(16).padStart(4, '0');
      });
  }

  /* a percent-encoded path decoded (UTF-8), or null when it cannot be */
  function decodePath(p) {
    try {
      return decodeURIComponent(p);
    } catch (err) {
      return null;
    }
  }

  /* args: {name: "value" | ["value", ...]} as "name = value" lines */
  function argsValue(dd, args, truncated) {
    dd.textContent = '';
    const names = args && typeof args === 'object' && !Array.isArray(args)
      ? Object.keys(args) : [];
    for (const name of names) {
      const values = [args[name]].flat();
      const line = node('div', 'arg');
      line.dataset.arg = '';
      line.append(node('span', 'name mono', str(name), '', 'name'),
        node('span', 'eq', ' = '));
      for (const v of values) {
        line.append(node('span', 'val mono', str(v), '', 'value'));
      }
      if (values.length > 1) {
        line.append(node('span', 'note', '(repeated: ' + values.length
          + ' values, in request order)'));
      }
      dd.append(line);
    }
    if (truncated === true) {
      dd.append(node('div', 'note', 'More arguments were not shown: the '
        + 'action digest covers them all.', 'args_truncated'));
    }
    if (!dd.childNodes.length) {
      dd.textContent = '\u2014';
    }
  }

  function node(tag, cls, text, field, part) {
    const e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text !== undefined) {
      e.textContent = text;
    }
    if (field) {
      e.dataset.field = field;
    }
    if (part) {
      e.dataset.part = part;
    }
    return e;
  }

  function row(dl, label, field, value, mono) {
    dl.append(node('dt', '', label));
    const dd = node('dd', mono ? 'mono' : '', value === '' ? '\u2014' : value,
      field);
    dl.append(dd);
    return dd;
  }

  function time() {
    return new Date().toLocaleTimeString();
  }

  function render(d) {
    const it = { id: d.auth_req_id, state: 'pending', deadline: 0 };
    const li = node('li', 'item');
    li.dataset.authReqId = it.id;
    li.dataset.state = 'pending';
    it.li = li;

    li.append(node('p', 'label', 'Binding message'));
    const bm = str(d.binding_message);
    const b = node('p', bm === '' ? 'binding none' : 'binding',
      bm === '' ? '(none)' : bm, 'binding_message');
    li.append(b);
    li.append(node('p', 'hint', 'Approve only if the agent shows you '
      + 'this same message, and the action below is what you want.'));

    const dl = node('dl');
    const user = row(dl, 'User', 'user', '');
    user.textContent = '';
    user.append(node('span', '', str(d.login_hint) || '\u2014', 'login_hint'),
      ' (sub ', node('span', 'mono', str(d.account) || '\u2014', 'account'),
      ')');
    row(dl, 'Client', 'client_id', str(d.client_id)
      + (d.delivery_mode ? ' (' + str(d.delivery_mode) + ' mode)' : ''));
    li.append(dl);

    const details = Array.isArray(d.authorization_details)
      ? d.authorization_details : [];
    if (details.length === 0) {
      const none = node('dl', 'detail');
      row(none, 'Action', 'actions', '(no authorization_details: '
        + 'nothing says which action)');
      li.append(none);
    }
    details.forEach((x, i) => {
      const dd = node('dl', 'detail');
      dd.dataset.detail = String(i);
      const o = x && typeof x === 'object' ? x : {};
      row(dd, 'Type', 'type', str(o.type), true);
      row(dd, Array.isArray(o.actions) && o.actions.length > 1
        ? 'Actions' : 'Action', 'actions',
      Array.isArray(o.actions) ? o.actions.map(str).join(', ')
        : str(o.actions));
      row(dd, 'Method', 'method', str(o.method), true);
      row(dd, 'URL', 'locations', Array.isArray(o.locations)
        ? o.locations.map(str).join('\n') : str(o.locations), true);
      row(dd, 'Path', 'path', str(o.path), true);
      if (typeof o.path === 'string') {
        const decoded = decodePath(o.path);
        if (decoded !== o.path) {
          row(dd, 'Path, decoded', 'path_decoded', decoded === null
            ? '(not valid percent-encoded UTF-8)' : str(decoded), true);
        }
      }
      argsValue(row(dd, 'Arguments', 'args', ''), o.args,
        o.args_truncated);
      row(dd, 'Body SHA-256', 'body_sha256', str(o.body_sha256), true);
      row(dd, 'Action digest', 'identifier', str(o.identifier), true);
      const known = new Set(['type', 'actions', 'method', 'locations',
        'path', 'args', 'args_truncated', 'body_sha256', 'identifier']);
      const rest = Object.keys(o).filter((k) => !known.has(k));
      const more = {};
      for (const k of rest) {
        if (typeof o[k] === 'string') {
          row(dd, str(k), 'extra', str(o[k]), true).dataset.name = k;
        } else {
          more[k] = o[k];
        }
      }
      if (Object.keys(more).length) {
        row(dd, 'Other', 'other', str(JSON.stringify(more)), true);
      }
      li.append(dd);
    });

    const tail = node('dl', 'detail');
    row(tail, 'Scope', 'scope', str(d.scope), true);
    row(tail, 'Request', 'auth_req_id', it.id, true);
    it.expiresEl = row(tail, 'Expires in', 'expires_in', '');
    it.expiresEl.classList.add('expires');
    li.append(tail);

    const buttons = node('div', 'buttons');
    const approve = node('button', '', 'Approve');
    approve.type = 'button';
    approve.dataset.action = 'approve';
    const deny = node('button', '', 'Deny');
    deny.type = 'button';
    deny.dataset.action = 'deny';
    approve.addEventListener('click', () => decide(it, true));
    deny.addEventListener('click', () => decide(it, false));
    buttons.append(approve, deny);
    li.append(buttons);
    it.buttons = [approve, deny];

    it.result = node('p', 'result', '', 'result');
    it.result.setAttribute('role', 'status');
    li.append(it.result);
    return it;
  }

  function setButtons(it, enabled) {
    for (const b of it.buttons) {
      b.disabled = !enabled;
    }
  }

  function finish(it, state, how) {
    it.state = FINAL.has(state) ? state : 'unknown';
    it.li.dataset.state = it.state;
    setButtons(it, false);
    it.li.querySelector('.buttons').hidden = true;
    it.result.classList.remove('error');
    it.result.textContent = (WORDS[it.state] ?? it.state) + ' ' + how
      + ' at ' + time();
    it.expiresEl.textContent = '\u2014';
    decidedList.prepend(it.li);
    setTimeout(() => {
      it.li.remove();
      items.delete(it.id);
    }, KEEP_MS);
    update();
  }

  async function decide(it, approve) {
    if (it.state !== 'pending') {
      return;
    }
    it.state = 'deciding';
    it.li.dataset.state = 'deciding';
    setButtons(it, false);
    it.result.classList.remove('error');
    it.result.textContent = approve ? 'Approving\u2026' : 'Denying\u2026';

    let res;
    let out = {};
    try {
      res = await fetch(approve ? '/admin/approve' : '/admin/deny', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ auth_req_id: it.id }),
        cache: 'no-store',
        credentials: 'omit',
      });
      out = await res.json().catch(() => ({}));
    } catch (err) {
      res = undefined;
    }

    if (res && res.ok) {
      let how = 'here';
      if (out.ping_error) {
        how += ' (the ping to the client failed: ' + str(out.ping_error) + ')';
      }
      finish(it, str(out.state) || (approve ? 'approved' : 'denied'), how);
    } else if (res && res.status === 409) {
      finish(it, str(out.state), 'already (not pending any more)');
    } else if (res && res.status === 404) {
      finish(it, 'unknown', '');
    } else {
      it.state = 'pending';
      it.li.dataset.state = 'pending';
      setButtons(it, true);
      it.result.classList.add('error');
      it.result.textContent = res
        ? 'The AS answered ' + res.status + ': ' + str(out.error_description
          || out.error) + '. Try again.'
        : 'Cannot reach the development AS. Try again.';
    }
  }

  /* an item no longer pending that was not decided here: ask how it ended */
  async function gone(it) {
    it.state = 'resolving';
    let state = 'unknown';
    try {
      const res = await fetch('/admin/requests/'
        + encodeURIComponent(it.id), { cache: 'no-store' });
      if (res.ok) {
        state = str((await res.json()).state);
      }
    } catch (err) {
      it.state = 'pending';
      return;
    }
    if (state === 'pending') {
      it.state = 'pending';
      return;
    }
    finish(it, state, 'elsewhere');
  }

  function fmt(s) {
    const m = Math.floor(s / 60);
    const r = s % 60;
    return m + ':' + (r < 10 ? '0' : '') + r;
  }

  function tick() {
    const now = Date.now();
    for (const it of items.values()) {
      if (it.state !== 'pending' && it.state !== 'deciding') {
        continue;
      }
      const left = Math.max(0, Math.ceil((it.deadline - now) / 1000));
      it.expiresEl.textContent = fmt(left);
      it.expiresEl.dataset.seconds = String(left);
      it.expiresEl.classList.toggle('urgent', left <= 30);
      if (left === 0 && it.state === 'pending') {
        finish(it, 'expired', 'before a decision');
      }
    }
  }

  function update() {
    let n = 0;
    for (const it of items.values()) {
      if (it.state === 'pending' || it.state === 'deciding'
          || it.state === 'resolving') {
        n++;
      }
    }
    count.textContent = String(n);
    empty.hidden = n !== 0;
    document.title = (n ? '(' + n + ') ' : '') + 'Approvals \u2014 dev-as';
  }

  function setStatus(ok, text) {
    status.dataset.status = ok ? 'ok' : 'error';
    status.textContent = text;
  }

  async function poll() {
    try {
      const res = await fetch('/admin/pending', {
        cache: 'no-store', headers: { Accept: 'application/json' },
      });
      if (!res.ok) {
        throw new Error('the AS answered ' + res.status);
      }
      const body = await res.json();
      const list = Array.isArray(body && body.pending) ? body.pending : [];
      const now = Date.now();
      const seen = new Set();
      let at = 0;

      for (const d of list) {
        if (!d || typeof d.auth_req_id !== 'string' || !d.auth_req_id) {
          continue;
        }
        seen.add(d.auth_req_id);
        let it = items.get(d.auth_req_id);
        if (!it) {
          it = render(d);
          items.set(it.id, it);
        }
        if (it.state === 'pending' || it.state === 'deciding') {
          const left = Number(d.expires_in);
          it.deadline = now + (Number.isFinite(left) ? left : 0) * 1000;
          /* newest first, as the AS lists them */
          if (pendingList.children[at] !== it.li) {
            pendingList.insertBefore(it.li, pendingList.children[at] ?? null);
          }
          at++;
        }
      }

      for (const it of items.values()) {
        if (it.state === 'pending' && !seen.has(it.id)) {
          gone(it);
        }
      }

      setStatus(true, 'Live: updated ' + time());
    } catch (err) {
      setStatus(false, 'Cannot reach the development AS (' + err.message
        + '): retrying');
    }
    tick();
    update();
    setTimeout(poll, POLL_MS);
  }

  setInterval(tick, 500);
  update();
  poll();
}

const APPROVER_JS = `(${approverClient.toString()})(${APPROVER_POLL_MS}, `
  + `${APPROVER_KEEP_MS});`;

const APPROVER_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Approvals \u2014 dev-as</title>
<style>${APPROVER_CSS}</style>
</head>
<body>
<header>
<h1>Approvals</h1>
<span id="status" role="status" data-status="ok">Connecting\u2026</span>
</header>
<main>
<section aria-labelledby="h-pending">
<h2 id="h-pending">Waiting for your decision
<span id="pending-count" class="count">0</span></h2>
<p id="empty" class="empty">No pending approvals.</p>
<ol id="pending" class="items"></ol>
</section>
<section aria-labelledby="h-decided">
<h2 id="h-decided">Recently decided</h2>
<ol id="decided" class="items"></ol>
</section>
<footer>dev-as, the development authorization server: this page stands
for the user's device.  It refreshes by itself.</footer>
</main>
<script>${APPROVER_JS}</script>
</body>
</html>
`;

function cspHash(text) {
  return `'sha256-${crypto.createHash('sha256').update(text, 'utf8')
    .digest('base64')}'`;
}

const APPROVER_CSP = [
  "default-src 'none'",
  `script-src ${cspHash(APPROVER_JS)}`,
  `style-src ${cspHash(APPROVER_CSS)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

function approverPage(provider, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendJson(res, 405, { error: 'method_not_allowed' });
  }
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(APPROVER_HTML),
    'Content-Security-Policy': APPROVER_CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  });
  return res.end(req.method === 'HEAD' ? undefined : APPROVER_HTML);
}

/*
 * The admin API and the approver page are for this machine's own browser
 * and tools only, and have no authentication:
 * - the Host header must name a loopback address, so that a web page whose
 *   name was made to resolve to 127.0.0.1 (DNS rebinding) cannot read or
 *   drive them;
 * - a state-changing request (POST) must say Content-Type
 *   application/json: an HTML form cannot send that, and a cross-site
 *   fetch() with it needs a CORS preflight, which this server never
 *   grants;
 * - a browser's Origin, when there is one, must be this very origin
 *   (http://HOST:PORT with the loopback HOST of the Host header), and its
 *   Sec-Fetch-Site, when there is one, "same-origin" (or "none": typed in).
 * Answers the refusal and returns true when the request is refused.
 */
function refuseForeign(req, res) {
  const refuse = (status, why) => {
    sendJson(res, status, {
      error: status === 415 ? 'unsupported_media_type' : 'forbidden',
      error_description: why,
    });
    return true;
  };

  const host = req.headers.host;
  const h = host ? URL.parse(`http://${host}`) : null;
  /* (the URL parser drops a default port: "host:80" is "host") */
  if (!h || !isLoopbackHost(h.hostname)
      || (h.host !== host.toLowerCase()
          && `${h.host}:80` !== host.toLowerCase())) {
    return refuse(403, 'the admin API and the approver page answer only '
      + 'to a loopback Host (127.0.0.1, localhost, [::1])');
  }

  if (req.method === 'GET' || req.method === 'HEAD') {
    return false;
  }

  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return refuse(403, `cross-site request refused (Sec-Fetch-Site: ${site})`);
  }

  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${h.host}`) {
    return refuse(403, 'cross-origin request refused (the Origin must be '
      + `http://${h.host})`);
  }

  const type = (req.headers['content-type'] ?? '').split(';')[0].trim()
    .toLowerCase();
  if (type !== 'application/json') {
    return refuse(415, 'the body must be JSON (Content-Type: application/json)');
  }

  return false;
}

async function admin(provider, req, res, url) {
  const path = url.pathname;
  const method = req.method;

  if (path === '/admin/pending' || path === '/admin/requests') {
    if (method !== 'GET') {
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    const all = [];
    for (const id of [...requests.keys()].reverse()) {
      const d = await describe(provider, id);
      if (d && (path === '/admin/requests' || d.state === 'pending')) {
        all.push(d);
      }
    }
    return sendJson(res, 200, path === '/admin/pending'
      ? { pending: all } : { requests: all });
  }

  if (path.startsWith('/admin/requests/')) {
    if (method !== 'GET') {
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    const d = await describe(provider, decodeURIComponent(path.slice(16)));
    return d ? sendJson(res, 200, d) : sendJson(res, 404, { error: 'not_found' });
  }

  if (path === '/admin/approve' || path === '/admin/deny') {
    if (method !== 'POST') {
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    return decide(provider, req, res, path === '/admin/approve');
  }

  if (path === '/admin/users') {
    return sendJson(res, 200, {
      users: USERS.map(({ login_hint, sub, email, name }) => ({ login_hint, sub, email, name })),
    });
  }

  if (path === '/admin/stats') {
    return sendJson(res, 200, { counts: Object.fromEntries(counts), requests: log });
  }

  return sendJson(res, 404, { error: 'not_found' });
}

/* ---- the server --------------------------------------------------------- */

const counts = new Map();
const log = [];

let provider;
let oidcHandler;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const t0 = performance.now();

  if (!provider) {
    return sendJson(res, 503, { error: 'starting' });
  }

  if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) {
    if (refuseForeign(req, res)) {
      return undefined;
    }
    try {
      await admin(provider, req, res, url);
    } catch (err) {
      process.stderr.write(`dev-as: admin: ${err.stack ?? err}\n`);
      if (!res.headersSent) {
        sendJson(res, 500, { error: 'server_error', error_description: String(err.message) });
      }
    }
    return undefined;
  }

  if (url.pathname === '/approver') {
    if (refuseForeign(req, res)) {
      return undefined;
    }
    return approverPage(provider, req, res);
  }

  res.on('finish', () => {
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
    log.push({
      time: Date.now(), method: req.method, path: url.pathname,
      status: res.statusCode, ms,
    });
    if (log.length > 200) {
      log.shift();
    }
    if (opt.verbose) {
      process.stderr.write(`dev-as: ${req.method} ${url.pathname} ${res.statusCode} ${ms} ms\n`);
    }
  });

  return oidcHandler(req, res);
});

server.on('error', (err) => {
  process.stderr.write(`dev-as: cannot listen on 127.0.0.1:${opt.port}: ${err.message}\n`);
  process.exit(1);
});

server.listen(opt.port, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  try {
    provider = makeProvider(issuer);
  } catch (err) {
    process.stderr.write(`dev-as: oidc-provider refused the configuration: ${err.stack ?? err}\n`);
    process.exit(1);
  }
  oidcHandler = provider.callback();

  if (opt.jwksOut) {
    const { d, ...pub } = privateJwk;
    fs.writeFileSync(opt.jwksOut, `${JSON.stringify({ keys: [pub] }, null, 1)}\n`);
  }

  process.stdout.write(`dev-as listening on ${issuer}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
