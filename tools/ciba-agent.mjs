#!/usr/bin/env node
/*
 * ciba-agent: call a URL protected by ngx_http_ciba_module the way an AI
 * agent would, and wait for a person to approve the action.
 *
 *   ciba-agent [options] URL            (see --help, or usage() below)
 *
 * The request is sent; when nginx answers "approval_pending" (a person is
 * being asked through OpenID Connect CIBA), the binding message, the
 * action and the handle are shown with a countdown, and the very same
 * request (method, target, body, headers) is sent again with
 * "Approval-Handle: <handle>" after Retry-After seconds (never sooner
 * than 1 s) until a final answer: the upstream's, or a refusal.  The
 * final answer goes to stdout (status line, headers, body; or one JSON
 * object with --json), progress and errors to stderr; the exit code says
 * what happened (EXIT below).
 *
 * Approval tokens are never printed; handles are shown shortened in human
 * output (the first 8 characters and "…"); --json gives the whole handle
 * so that a script can resume with --handle.
 *
 * Only node built-ins are used (node:http, node:https, node:fs).
 */

import http from 'node:http';
import https from 'node:https';
import { readFileSync, realpathSync } from 'node:fs';


const PROG = 'ciba-agent';

export const EXIT = Object.freeze({
    OK: 0,              /* 2xx or 3xx from the upstream */
    INTERNAL: 1,        /* a bug, or node missing (the launcher) */
    USAGE: 2,           /* bad arguments, bad URL, unreadable file */
    DENIED: 3,          /* approval_denied */
    EXPIRED: 4,         /* approval_expired */
    REFUSED: 5,         /* any other 4xx/5xx answer */
    PENDING: 6,         /* still pending: --max-wait reached, --no-retry */
    CONNECT: 7,         /* cannot connect, DNS, reset, TLS, timeout */
    INTERRUPTED: 130    /* Ctrl-C */
});

const DEFAULTS = Object.freeze({
    timeout: 120,               /* seconds per request (wait mode holds) */
    unavailableRetries: 3,      /* 503 approval_unavailable */
    connectRetries: 3,          /* connection errors once pending */
    tokenHeader: 'Approval-Token',
    handleHeader: 'Approval-Handle'
});

/* pending answers without Retry-After nor interval: CIBA's default */
const DEFAULT_INTERVAL = 5;
/* a 503 approval_unavailable is retried no later than this */
const MAX_UNAVAILABLE_WAIT = 30;
/* without a TTY, a progress line at least this often (seconds) */
const PLAIN_PROGRESS_EVERY = 10;

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/* headers not worth showing in the human summary of an answer */
const NOISE_HEADERS = new Set(['date', 'connection', 'keep-alive',
                               'transfer-encoding', 'server']);


class UsageError extends Error {
    constructor(message) {
        super(message);
        this.name = 'UsageError';
    }
}

/* a failure without an HTTP answer: connection, DNS, TLS, timeout */
class ConnectError extends Error {
    constructor(message, code) {
        super(message);
        this.name = 'ConnectError';
        this.code = code;
    }
}


/* ---- help ------------------------------------------------------------- */

export function usage() {
    return `Usage: ${PROG} [options] URL

Call URL like an AI agent would.  When nginx (ngx_http_ciba_module)
answers "approval_pending", a person is being asked to approve this exact
request: ${PROG} shows what they are asked (the binding message), the
action and the handle, counts down to the approval's expiry, and sends
the same request again with the approval handle after Retry-After seconds
until the answer is final.  The final answer goes to stdout; progress and
errors go to stderr.

Request:
  -X, --method METHOD    request method (default GET, or POST with a body)
  -d, --data BODY        request body, sent as-is; "@FILE" reads FILE
                         ("@-": stdin)
      --data-file FILE   request body from FILE, as-is ("-": stdin)
  -H, --header 'Name: value'
                         an extra request header (repeatable)
      --token TOKEN      send an approval token you already have
                         (header Approval-Token)
      --token-file FILE  the same, read from FILE (keeps it out of ps)
      --handle HANDLE    continue a pending approval (from --json output)
      --token-header NAME, --handle-header NAME
                         other names, as set by ciba_token_header and
                         ciba_handle_header
      --cacert FILE      trust this CA (PEM) for https URLs
      --timeout SECONDS  per request (default ${DEFAULTS.timeout})

Waiting:
      --max-wait SECONDS give up after this long (exit 6); default: wait
                         until the approval is granted, denied or expired
      --no-retry         send one request only; a pending answer exits 6
      --unavailable-retries N
                         retry a 503 approval_unavailable N times, each
                         after its Retry-After
                         (default ${DEFAULTS.unavailableRetries})

Output:
  -q, --quiet            no progress on stderr (errors are still shown)
      --json             the final result as one JSON object on stdout:
                         result, exit_code, status, headers, body (or
                         body_base64), json, error, reason, message,
                         requests, elapsed_ms, approval (handle included)
  -h, --help             this help

Exit codes:
  0  the upstream answered 2xx or 3xx (the action ran)
  2  usage error: bad arguments, bad URL, unreadable file
  3  approval_denied: the person (or the authorization server) said no
  4  approval_expired: nobody approved in time
  5  any other refusal or error answer (4xx/5xx), e.g. approval_replayed,
     approval_mismatch, invalid_approval, approval_unavailable (after the
     retries), approval_rate_limited, or a non-JSON error page
  6  still pending: --max-wait reached, or --no-retry got a pending answer
  7  no answer: cannot connect, name not found, connection reset, TLS
     error, timeout
  1  internal error; 130 interrupted (Ctrl-C), 143 terminated

Example:
  ${PROG} -X POST -H 'X-User: alice' \\
      -H 'Content-Type: application/json' -d '{"amount":30}' \\
      'http://127.0.0.1:8080/tools/refund?order=A17&amount=30'
`;
}


/* ---- small helpers ---------------------------------------------------- */

/* first 8 characters and an ellipsis: never a whole handle or token */
export function shorten(s) {
    if (typeof s !== 'string' || s.length === 0) {
        return '';
    }
    return s.slice(0, 8) + '\u2026';
}

/* server-supplied text for the terminal: no control characters */
function clean(s, max = 200) {
    let out = String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
    if (out.length > max) {
        out = out.slice(0, max) + '\u2026';
    }
    return out;
}

function seconds(ms) {
    return Math.max(0, Math.ceil(ms / 1000));
}

/* 75 -> "1:15", 4000 -> "1:06:40", 9 -> "9s" */
function clock(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) {
        return `${s}s`;
    }
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function parseSeconds(v, what, { min = 0, integer = false } = {}) {
    if (!/^\d+(\.\d+)?$/.test(v ?? '')) {
        throw new UsageError(`${what} needs a number of seconds, `
                             + `not "${clean(v, 40)}"`);
    }
    const n = Number(v);
    if (n < min || (integer && !Number.isInteger(n))) {
        throw new UsageError(`${what} must be ${integer ? 'an integer ' : ''}`
                             + `>= ${min}, not ${v}`);
    }
    return n;
}

function readInput(file, what) {
    try {
        return readFileSync(file === '-' ? 0 : file);
    } catch (e) {
        throw new UsageError(`cannot read ${what} "${clean(file, 100)}": `
                             + (e.code === 'ENOENT' ? 'no such file'
                                : e.code === 'EACCES' ? 'permission denied'
                                : e.code === 'EISDIR' ? 'is a directory'
                                : e.message));
    }
}


/* ---- arguments -------------------------------------------------------- */

/* options that take a value: name -> key */
const VALUE_OPTS = {
    '-X': 'method', '--method': 'method',
    '-d': 'data', '--data': 'data',
    '--data-file': 'dataFile',
    '-H': 'header', '--header': 'header',
    '--token': 'token', '--token-file': 'tokenFile',
    '--handle': 'handle',
    '--token-header': 'tokenHeader', '--handle-header': 'handleHeader',
    '--cacert': 'cacert',
    '--timeout': 'timeout',
    '--max-wait': 'maxWait',
    '--unavailable-retries': 'unavailableRetries'
};

const FLAG_OPTS = {
    '--no-retry': 'noRetry',
    '-q': 'quiet', '--quiet': 'quiet',
    '--json': 'json',
    '-h': 'help', '--help': 'help'
};

/* the raw option values, in order; nothing is checked here but syntax */
function scanArgs(argv) {
    const seen = [];
    const urls = [];
    let i = 0;

    while (i < argv.length) {
        const a = argv[i++];

        if (a === '--') {
            urls.push(...argv.slice(i));
            break;
        }

        if (!a.startsWith('-') || a === '-') {
            urls.push(a);
            continue;
        }

        let name = a;
        let value;

        const eq = a.indexOf('=');
        if (a.startsWith('--') && eq > 0) {
            name = a.slice(0, eq);
            value = a.slice(eq + 1);
        } else if (!a.startsWith('--') && a.length > 2) {
            /* -XPOST, -HName:v, -dBODY */
            name = a.slice(0, 2);
            value = a.slice(2);
        }

        if (FLAG_OPTS[name]) {
            if (value !== undefined) {
                throw new UsageError(`option ${name} takes no value`);
            }
            seen.push([FLAG_OPTS[name], true, name]);
            continue;
        }

        if (VALUE_OPTS[name]) {
            if (value === undefined) {
                if (i >= argv.length) {
                    throw new UsageError(`option ${name} needs a value`);
                }
                value = argv[i++];
            }
            seen.push([VALUE_OPTS[name], value, name]);
            continue;
        }

        throw new UsageError(`unknown option "${clean(a, 40)}"`);
    }

    return { seen, urls };
}

/* the raw request target of URL as typed: path and query, no fragment */
function rawTarget(s) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^#]*)/.exec(s);
    let t = m ? m[1] : '';
    if (t === '' || t[0] === '?') {
        t = '/' + t;
    }
    return t;
}

export function parseArgs(argv) {
    const { seen, urls } = scanArgs(argv);
    const o = {
        headers: [], json: false, quiet: false, noRetry: false, help: false,
        timeout: DEFAULTS.timeout, maxWait: null,
        unavailableRetries: DEFAULTS.unavailableRetries,
        tokenHeader: DEFAULTS.tokenHeader, handleHeader: DEFAULTS.handleHeader
    };
    let body = null;
    let bodyFrom = null;
    const once = new Map();

    /* --json first, so that a usage error can be reported as JSON */
    o.json = seen.some(([k]) => k === 'json');

    for (const [key, value, name] of seen) {
        if (key !== 'header' && once.has(key)) {
            throw new UsageError(`option ${name} given twice`);
        }
        once.set(key, name);

        switch (key) {
        case 'header':
            o.headers.push(parseHeader(value));
            break;
        case 'data':
        case 'dataFile':
            if (bodyFrom) {
                throw new UsageError(`${bodyFrom} and ${name}: give one body`);
            }
            bodyFrom = name;
            if (key === 'dataFile') {
                body = readInput(value, 'the body file');
            } else if (value.startsWith('@')) {
                body = readInput(value.slice(1), 'the body file');
            } else {
                body = Buffer.from(value, 'utf8');
            }
            break;
        case 'timeout':
            o.timeout = parseSeconds(value, name, { min: 1 });
            break;
        case 'maxWait':
            o.maxWait = parseSeconds(value, name, { min: 1 });
            break;
        case 'unavailableRetries':
            o.unavailableRetries = parseSeconds(value, name,
                                                { integer: true });
            break;
        case 'tokenFile':
            o.token = readInput(value, 'the token file').toString('utf8')
                      .trim();
            break;
        case 'tokenHeader':
        case 'handleHeader':
            if (!TOKEN_RE.test(value)) {
                throw new UsageError(`${name}: "${clean(value, 40)}" is not `
                                     + 'a header name');
            }
            o[key] = value;
            break;
        default:
            o[key] = value;
        }
    }

    if (o.help) {
        return o;
    }

    if (once.has('token') && once.has('tokenFile')) {
        throw new UsageError('--token and --token-file: give one token');
    }
    if (o.token !== undefined
        && (o.token === '' || /[\u0000-\u0020\u007f-\uffff]/.test(o.token)))
    {
        throw new UsageError('the approval token is empty or has spaces or '
                             + 'other bytes a header cannot carry');
    }
    if (o.handle !== undefined
        && (o.handle === '' || !/^[\u0021-\u007e]+$/.test(o.handle)))
    {
        throw new UsageError('the handle is empty or has bytes a header '
                             + 'cannot carry');
    }

    for (const [n] of o.headers) {
        const l = n.toLowerCase();
        if (l === o.tokenHeader.toLowerCase()
            || l === o.handleHeader.toLowerCase())
        {
            throw new UsageError(`send ${n} with --token or --handle, `
                                 + 'not with -H');
        }
        if (l === 'content-length' || l === 'transfer-encoding'
            || l === 'host' || l === 'connection')
        {
            throw new UsageError(`${n}: ${PROG} sets this header itself`);
        }
    }

    if (urls.length === 0) {
        throw new UsageError('no URL given');
    }
    if (urls.length > 1) {
        throw new UsageError(`one URL only (got ${urls.length}: `
                             + `${urls.map((u) => `"${clean(u, 40)}"`)
                                  .join(', ')})`);
    }

    o.url = parseUrl(urls[0]);

    if (o.method === undefined) {
        o.method = body ? 'POST' : 'GET';
    } else if (!TOKEN_RE.test(o.method)) {
        throw new UsageError(`"${clean(o.method, 40)}" is not an HTTP `
                             + 'method');
    }

    o.body = body;

    if (o.cacert !== undefined) {
        if (o.url.protocol !== 'https:') {
            throw new UsageError('--cacert is for https URLs');
        }
        o.ca = readInput(o.cacert, 'the CA file');
    }

    return o;
}

function parseHeader(h) {
    const i = h.indexOf(':');
    if (i <= 0) {
        throw new UsageError(`bad header "${clean(h, 60)}": write it as `
                             + '\'Name: value\'');
    }
    const name = h.slice(0, i).trim();
    const value = h.slice(i + 1).trim();
    if (!TOKEN_RE.test(name)) {
        throw new UsageError(`bad header name "${clean(name, 40)}"`);
    }
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
        throw new UsageError(`header ${name}: control characters in the `
                             + 'value');
    }
    return [name, value];
}

function parseUrl(s) {
    let u;
    try {
        u = new URL(s);
    } catch {
        throw new UsageError(`bad URL "${clean(s, 100)}": expected `
                             + 'http://host[:port]/path or https://...');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new UsageError(`bad URL "${clean(s, 100)}": only http and `
                             + 'https are supported');
    }
    if (u.hostname === '') {
        throw new UsageError(`bad URL "${clean(s, 100)}": no host`);
    }
    if (u.username || u.password) {
        throw new UsageError(`bad URL "${clean(s, 100)}": no user:password@ `
                             + 'please (use -H Authorization)');
    }

    /*
     * The request target is sent as typed (only non-ASCII characters are
     * percent-encoded as UTF-8), not as the URL parser would rewrite it:
     * the action digest covers the exact path and query, and an approval
     * computed by ciba-digest from the typed URL must match.
     */
    const raw = rawTarget(s);
    if (/[\u0000-\u0020\u007f]/.test(raw)) {
        throw new UsageError(`bad URL "${clean(s, 100)}": spaces and control `
                             + 'characters must be percent-encoded');
    }
    const target = raw.replace(/[^\u0021-\u007e]+/gu,
                               (c) => encodeURIComponent(c));

    const port = u.port !== '' ? Number(u.port)
                               : u.protocol === 'https:' ? 443 : 80;
    /* "[::1]" -> "::1" for the socket */
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');

    return {
        href: s.replace(/#.*$/, ''),
        protocol: u.protocol,
        host,
        port,
        hostPort: `${u.hostname}:${port}`,
        hostHeader: u.host,
        target
    };
}


/* ---- HTTP --------------------------------------------------------------- */

function describeError(e, url, timeoutS) {
    const hp = url.hostPort;
    const code = e.code || '';
    switch (code) {
    case 'ECONNREFUSED':
        return `cannot connect to ${hp}: connection refused`;
    case 'ENOTFOUND':
        return `cannot resolve ${url.host}: no such host`;
    case 'EAI_AGAIN':
        return `cannot resolve ${url.host}: the name lookup failed `
               + '(temporary DNS failure)';
    case 'ETIMEDOUT':
    case 'ETIMEOUT':
        return `no answer from ${hp} within ${timeoutS} s`;
    case 'ECONNRESET':
    case 'EPIPE':
        return `the connection to ${hp} was closed before an answer`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
        return `cannot connect to ${hp}: ${code === 'EHOSTUNREACH' ? 'host'
                                           : 'network'} unreachable`;
    case 'EADDRNOTAVAIL':
        return `cannot connect to ${hp}: address not available`;
    default:
        break;
    }
    if (code === 'EPROTO' || /SSL routines/.test(e.message ?? '')) {
        const m = /SSL routines:[^:]*:([^:]+)/.exec(e.message ?? '');
        const why = m ? m[1] : clean(e.message, 120);
        return `TLS error with ${hp}: ${why}`
               + (/wrong version number/.test(why)
                  ? ' (is it an http:// port?)' : '');
    }
    if (/^HPE_/.test(code)) {
        return `bad HTTP answer from ${hp} (${code})`;
    }
    if (/CERT|SSL|TLS|ERR_TLS/i.test(code) || e.reason) {
        return `TLS error with ${hp}: ${clean(e.message, 160)}`;
    }
    return `cannot connect to ${hp}: ${clean(e.message, 160)}`;
}

/*
 * One request.  Resolves { status, statusText, httpVersion, rawHeaders,
 * headers (lower-case names), body (Buffer) }; rejects with ConnectError.
 * "abortAt" (ms since the epoch) ends the request early with code
 * "MAX_WAIT".
 */
function send(o, extraHeaders, abortAt) {
    const url = o.url;
    const lib = url.protocol === 'https:' ? https : http;
    const headers = [['Host', url.hostHeader],
                     ['User-Agent', `${PROG}/1`],
                     ['Accept', '*/*'],
                     ...o.headers, ...extraHeaders];

    if (o.body) {
        headers.push(['Content-Length', String(o.body.length)]);
    }

    return new Promise((resolve, reject) => {
        let done = false;
        let timer = null;
        let req;

        const finish = (err, res) => {
            if (done) {
                return;
            }
            done = true;
            clearTimeout(timer);
            if (err) {
                req.destroy();
                reject(err);
            } else {
                resolve(res);
            }
        };

        try {
            req = lib.request({
                host: url.host,
                port: url.port,
                method: o.method,
                path: url.target,
                headers: headers.flat(),
                agent: false,
                setHost: false,
                servername: /^[\d.]+$|:/.test(url.host) ? undefined
                                                         : url.host,
                ...(o.ca ? { ca: o.ca } : {})
            });
        } catch (e) {
            reject(new ConnectError(describeError(e, url, o.timeout),
                                    e.code));
            return;
        }

        const limit = Math.min(o.timeout * 1000, abortAt - Date.now());
        timer = setTimeout(() => {
            const maxWait = abortAt - Date.now() <= 0;
            finish(new ConnectError(maxWait ? 'the maximum wait was reached'
                                    : describeError({ code: 'ETIMEDOUT' },
                                                    url, o.timeout),
                                    maxWait ? 'MAX_WAIT' : 'ETIMEDOUT'));
        }, Math.max(0, limit));

        req.on('error', (e) => {
            finish(new ConnectError(describeError(e, url, o.timeout),
                                    e.code));
        });

        req.on('response', (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('error', (e) => {
                finish(new ConnectError(describeError(e, url, o.timeout),
                                        e.code));
            });
            res.on('end', () => {
                finish(null, {
                    status: res.statusCode,
                    statusText: res.statusMessage || '',
                    httpVersion: res.httpVersion,
                    rawHeaders: res.rawHeaders,
                    headers: res.headers,
                    body: Buffer.concat(chunks)
                });
            });
        });

        req.end(o.body ?? undefined);
    });
}

/* Retry-After: delta-seconds or an HTTP-date; null when absent or bad */
export function retryAfter(v, now = Date.now()) {
    if (typeof v !== 'string') {
        return null;
    }
    v = v.trim();
    if (/^\d+$/.test(v)) {
        return Number(v);
    }
    const t = Date.parse(v);
    if (!Number.isNaN(t) && /[A-Za-z]/.test(v)) {
        return Math.max(0, Math.ceil((t - now) / 1000));
    }
    return null;
}

/*
 * The delay before the next try after a pending answer, in seconds:
 * Retry-After (what nginx says: to the next poll), else the interval,
 * else 5; after slow_down never less than the (grown) interval; never
 * less than 1 s.
 */
export function pendingDelay(headers, json) {
    const ra = retryAfter(headers['retry-after']);
    const iv = Number.isInteger(json.interval) && json.interval > 0
               ? json.interval : null;
    let d = ra ?? iv ?? DEFAULT_INTERVAL;
    if (json.reason === 'slow_down' && iv !== null) {
        d = Math.max(d, iv);
    }
    return Math.max(1, d);
}

function parseJson(res) {
    const text = res.body.toString('utf8');
    if (!/^\s*\{/.test(text)) {
        return null;
    }
    try {
        const j = JSON.parse(text);
        return j && typeof j === 'object' && !Array.isArray(j) ? j : null;
    } catch {
        return null;
    }
}


/* what a pending answer's reason means, in a few words */
function reasonText(reason) {
    switch (reason) {
    case 'asked':
        return 'the approver was asked';
    case 'not_yet':
    case 'requesting':
        return 'not checked yet';
    case 'authorization_pending':
        return 'no answer yet';
    case 'slow_down':
        return 'slowed down';
    default:
        return clean(reason ?? '?', 40);
    }
}


/* ---- the terminal ----------------------------------------------------- */

class Ui {
    constructor(o) {
        this.quiet = o.quiet;
        this.tty = Boolean(process.stderr.isTTY);
        this.color = this.tty && !('NO_COLOR' in process.env)
                     && process.env.TERM !== 'dumb';
        this.live = false;          /* a countdown line is on screen */
        this.spin = 0;
    }

    paint(code, s) {
        return this.color ? `\u001b[${code}m${s}\u001b[0m` : s;
    }

    bold(s) { return this.paint('1', s); }
    dim(s) { return this.paint('2', s); }
    green(s) { return this.paint('32', s); }
    red(s) { return this.paint('31', s); }
    yellow(s) { return this.paint('33', s); }
    cyan(s) { return this.paint('36', s); }

    clearLive() {
        if (this.live) {
            process.stderr.write('\r\u001b[2K');
            this.live = false;
        }
    }

    /* a progress line (not with --quiet) */
    say(s) {
        if (this.quiet) {
            return;
        }
        this.clearLive();
        process.stderr.write(s + '\n');
    }

    /* an error line: always */
    error(s) {
        this.clearLive();
        process.stderr.write(`${PROG}: ${s}\n`);
    }

    /* the single updating countdown line on a TTY */
    liveLine(s) {
        if (this.quiet || !this.tty) {
            return;
        }
        const cols = process.stderr.columns || 80;
        const frames = '\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827'
                       + '\u2807\u280f';
        const f = frames[this.spin++ % frames.length];
        /* strip escapes to measure; cut plain text to the width */
        let line = `${f} ${s}`;
        if (line.length > cols - 1) {
            line = line.slice(0, cols - 2) + '\u2026';
        }
        process.stderr.write('\r\u001b[2K' + this.cyan(line));
        this.live = true;
    }
}


/* ---- the flow --------------------------------------------------------- */

class Agent {
    constructor(o) {
        this.o = o;
        this.ui = new Ui(o);
        this.started = Date.now();
        this.deadline = o.maxWait ? this.started + o.maxWait * 1000
                                  : Infinity;
        this.requests = 0;
        this.handle = o.handle ?? null;
        this.shownHandle = null;
        this.pending = null;        /* the last pending answer's JSON */
        this.expiresAt = null;
        this.lastPlain = 0;
    }

    elapsed() {
        return (Date.now() - this.started) / 1000;
    }

    /* the handle once there is one; the token (if any) until then */
    extraHeaders() {
        const h = [];
        if (this.handle) {
            h.push([this.o.handleHeader, this.handle]);
        } else if (this.o.token !== undefined) {
            h.push([this.o.tokenHeader, this.o.token]);
        }
        return h;
    }

    async run() {
        const o = this.o;
        const ui = this.ui;
        let unavailable = 0;
        let connectFails = 0;

        ui.say(ui.dim(`${PROG}: ${o.method} ${clean(o.url.href, 300)}`));

        for (;;) {
            let res;

            this.requests++;

            const stopTicker = this.ticker();
            try {
                res = await send(o, this.extraHeaders(), this.deadline);
                connectFails = 0;
            } catch (e) {
                stopTicker();
                if (!(e instanceof ConnectError)) {
                    throw e;
                }
                if (e.code === 'MAX_WAIT') {
                    return this.gaveUp(null);
                }
                /* once an approval is pending, ride out a short outage */
                if (this.pending && !o.noRetry
                    && ++connectFails <= DEFAULTS.connectRetries)
                {
                    ui.say(ui.yellow(`${PROG}: ${e.message}; trying again `
                                     + `(${connectFails}/`
                                     + `${DEFAULTS.connectRetries})`));
                    if (!await this.wait(this.lastDelay ?? DEFAULT_INTERVAL,
                                         'reconnecting'))
                    {
                        return this.gaveUp(null);
                    }
                    continue;
                }
                return this.connectFailed(e);
            }

            stopTicker();

            const json = parseJson(res);
            const error = json && typeof json.error === 'string'
                          ? json.error : null;

            if (res.status >= 200 && res.status < 400) {
                return this.final(res, json, 'ok', EXIT.OK);
            }

            if (error === 'approval_pending' && res.status >= 400
                && res.status < 500)
            {
                this.onPending(res, json);

                if (o.noRetry) {
                    return this.gaveUp(res, json, 'the approval is pending '
                                       + '(--no-retry)');
                }

                const delay = pendingDelay(res.headers, json);
                this.lastDelay = delay;

                if (!await this.wait(delay, 'pending')) {
                    return this.gaveUp(res, json);
                }
                continue;
            }

            if (error === 'approval_unavailable' && res.status === 503
                && !o.noRetry && unavailable < o.unavailableRetries)
            {
                unavailable++;
                const d = Math.min(MAX_UNAVAILABLE_WAIT,
                                   Math.max(1, retryAfter(
                                       res.headers['retry-after'])
                                       ?? DEFAULT_INTERVAL));
                ui.say(ui.yellow(`${PROG}: approval service unavailable `
                                 + `(${clean(json.reason ?? '', 40)}); `
                                 + `trying again in ${d} s (${unavailable}/`
                                 + `${o.unavailableRetries})`));
                this.lastDelay = d;
                if (!await this.wait(d, 'unavailable')) {
                    return this.gaveUp(res, json);
                }
                continue;
            }

            if (error === 'approval_denied') {
                return this.final(res, json, 'denied', EXIT.DENIED);
            }
            if (error === 'approval_expired') {
                return this.final(res, json, 'expired', EXIT.EXPIRED);
            }
            return this.final(res, json, 'refused', EXIT.REFUSED);
        }
    }

    onPending(res, json) {
        const ui = this.ui;
        const now = Date.now();
        const h = typeof json.approval_handle === 'string'
                  && json.approval_handle !== '' ? json.approval_handle
                                                 : null;

        this.pending = json;
        if (Number.isInteger(json.expires_in) && json.expires_in >= 0) {
            this.expiresAt = now + json.expires_in * 1000;
        }

        const isNew = h !== null && h !== this.shownHandle;
        if (h !== null) {
            this.handle = h;
        }

        if (isNew || this.shownHandle === null) {
            this.shownHandle = h ?? '';
            this.banner(json, this.shownHandle !== '' && this.bannerShown);
            this.bannerShown = true;
        } else if (json.reason === 'slow_down') {
            ui.say(ui.yellow(`${PROG}: the authorization server asked to `
                             + 'slow down; checking every '
                             + `${json.interval} s now`));
        }

        /* without a TTY: the first, then at most one line a while */
        if (!ui.tty && (isNew || Date.now() - this.lastPlain
                                 >= PLAIN_PROGRESS_EVERY * 1000))
        {
            this.plainProgress(json.reason, pendingDelay(res.headers, json));
        }
    }

    banner(json, again) {
        const ui = this.ui;
        const msg = clean(json.binding_message ?? '', 200);
        const rows = [
            ['Message', msg !== '' ? ui.bold(msg) : ui.dim('(none)')],
            ['Action', clean(json.action ?? '', 100)],
            ['Digest', ui.dim(clean(json.action_digest ?? '', 60))],
            ['Handle', this.shownHandle !== ''
                       ? shorten(this.shownHandle) : ui.dim('(none)')]
        ];
        if (Number.isInteger(json.expires_in)) {
            rows.push(['Expires', `in ${clock(json.expires_in)}`]);
        }

        const head = again
            ? 'A new approval was requested; a person must approve it.'
            : 'Approval needed: a person must approve this action.';

        ui.say('');
        ui.say(`${ui.tty ? ui.yellow('\u23f3 ') : ''}${ui.bold(head)}`);
        for (const [k, v] of rows) {
            ui.say(`   ${ui.dim(k.padEnd(8))} ${v}`);
        }
        ui.say(ui.dim('   Check that the approver\'s device shows the same '
                      + 'message.'));
        ui.say('');
    }

    /*
     * While a request is out for more than a second (in wait mode nginx
     * holds it until the approval or ciba_wait): the live line on a TTY,
     * a plain line every PLAIN_PROGRESS_EVERY seconds otherwise.  Returns
     * the function that stops it.
     */
    ticker() {
        const ui = this.ui;
        const sent = Date.now();

        if (ui.quiet) {
            return () => {};
        }

        const timer = setInterval(() => {
            const waited = Date.now() - sent;
            if (waited < 1000) {
                return;
            }
            const parts = [this.pending ? 'Waiting for approval'
                                        : 'Waiting for the answer'];
            const e = this.expiryText();
            if (e) {
                parts.push(e);
            }
            parts.push(`request out for ${clock(seconds(waited))}`);
            if (!this.pending) {
                parts.push('nginx may hold it while a person is asked');
            }
            if (ui.tty) {
                ui.liveLine(parts.join(' \u00b7 '));
            } else if (Date.now() - Math.max(this.lastPlain, sent)
                       >= PLAIN_PROGRESS_EVERY * 1000)
            {
                ui.say(`${PROG}: still waiting: ${parts.slice(1)
                                                  .join(', ')}`);
                this.lastPlain = Date.now();
            }
        }, ui.tty ? 100 : 1000);

        return () => {
            clearInterval(timer);
            ui.clearLive();
        };
    }

    expiryText() {
        if (this.expiresAt === null) {
            return null;
        }
        const s = seconds(this.expiresAt - Date.now());
        return s > 0 ? `expires in ${clock(s)}` : 'expiry reached';
    }

    plainProgress(reason, delay) {
        const parts = [];
        const e = this.expiryText();
        if (e) {
            parts.push(`approval ${e}`);
        }
        parts.push(`next try in ${delay} s`);
        this.ui.say(`${PROG}: waiting for approval (${reasonText(reason)}): `
                    + parts.join(', '));
        this.lastPlain = Date.now();
    }

    /*
     * Waits "delay" seconds (less when the deadline comes first) with the
     * countdown.  False when the deadline was reached (no try is left).
     */
    async wait(delay, why) {
        const ui = this.ui;
        const now = Date.now();
        const until = now + delay * 1000;
        const end = Math.min(until, this.deadline);

        while (Date.now() < end) {
            const left = seconds(until - Date.now());
            const parts = [why === 'pending' ? 'Waiting for approval'
                           : why === 'reconnecting' ? 'Reconnecting'
                           : 'Approval service unavailable'];
            const e = this.expiryText();
            if (e) {
                parts.push(e);
            }
            parts.push(`next check in ${clock(left)}`);
            if (this.deadline !== Infinity) {
                parts.push(`giving up in ${clock(
                    seconds(this.deadline - Date.now()))}`);
            }
            ui.liveLine(parts.join(' \u00b7 '));

            if (!ui.tty && Date.now() - this.lastPlain
                           >= PLAIN_PROGRESS_EVERY * 1000)
            {
                ui.say(`${PROG}: still waiting: `
                       + parts.slice(1).join(', '));
                this.lastPlain = Date.now();
            }

            await sleep(Math.min(ui.tty ? 100 : 1000, end - Date.now()));
        }

        ui.clearLive();
        return until <= this.deadline;
    }

    /* ---- results ---- */

    result(res, json, kind, code, message) {
        const r = {
            result: kind,
            exit_code: code,
            message,
            status: res ? res.status : null,
            status_text: res ? res.statusText : null,
            headers: res ? res.headers : null,
            body: null,
            json: json ?? null,
            error: json && typeof json.error === 'string' ? json.error
                                                          : null,
            reason: json && typeof json.reason === 'string' ? json.reason
                                                            : null,
            requests: this.requests,
            elapsed_ms: Date.now() - this.started,
            approval: this.pending || this.handle ? {
                handle: this.handle,
                binding_message: this.pending?.binding_message ?? null,
                action: this.pending?.action ?? null,
                action_digest: this.pending?.action_digest ?? null,
                expires_in: this.expiresAt === null ? null
                            : seconds(this.expiresAt - Date.now())
            } : null
        };

        if (res) {
            try {
                r.body = new TextDecoder('utf-8', { fatal: true })
                         .decode(res.body);
            } catch {
                delete r.body;
                r.body_base64 = res.body.toString('base64');
            }
        }

        return r;
    }

    emit(res, json, kind, code, message) {
        const o = this.o;
        if (o.json) {
            process.stdout.write(JSON.stringify(
                this.result(res, json, kind, code, message)) + '\n');
            return code;
        }
        if (res) {
            this.printAnswer(res, json);
        }
        return code;
    }

    /* status line, headers (a summary), body; handles shortened */
    printAnswer(res, json) {
        const lines = [`HTTP/${res.httpVersion} ${res.status} `
                       + res.statusText];
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) {
            if (!NOISE_HEADERS.has(raw[i].toLowerCase())) {
                lines.push(`${raw[i]}: ${clean(raw[i + 1], 1000)}`);
            }
        }
        process.stdout.write(lines.join('\n') + '\n\n');

        let body = res.body;
        const h = json && typeof json.approval_handle === 'string'
                  && json.approval_handle.length > 8
                  ? json.approval_handle : null;
        if (h) {
            body = Buffer.from(body.toString('utf8')
                               .split(h).join(shorten(h)), 'utf8');
        }
        process.stdout.write(body);
        if (body.length && body[body.length - 1] !== 0x0a
            && process.stdout.isTTY)
        {
            process.stdout.write('\n');
        }
    }

    final(res, json, kind, code) {
        const ui = this.ui;
        const st = `${res.status} ${clean(res.statusText, 60)}`.trim();
        const took = this.pending
                     ? ` after ${clock(this.elapsed())} (${this.requests} `
                       + `request${this.requests > 1 ? 's' : ''})` : '';
        let message;

        switch (kind) {
        case 'ok':
            message = this.pending ? `approved: ${st}${took}` : st;
            if (this.pending) {
                ui.say(ui.green(`${ui.tty ? '\u2714 ' : `${PROG}: `}`
                                + `Approved \u2014 ${st}${took}`));
            }
            break;
        case 'denied':
            message = 'approval_denied: the approver (or the authorization '
                      + 'server) refused this action';
            ui.error(ui.red(`denied \u2014 ${message.replace(/^[^:]*: /, '')}`
                            + ` (${clean(json.reason ?? '', 40)})`));
            break;
        case 'expired':
            message = 'approval_expired: nobody approved in time';
            ui.error(ui.red(`expired \u2014 nobody approved in time `
                            + `(${clean(json.reason ?? '', 40)})`));
            break;
        default:
            message = this.refusal(res, json);
            ui.error(ui.red(message));
            break;
        }

        return this.emit(res, json, kind, code, message);
    }

    refusal(res, json) {
        const st = `${res.status} ${clean(res.statusText, 60)}`.trim();
        if (json && typeof json.error === 'string') {
            const d = json.error_description
                      ? `: ${clean(json.error_description, 160)}` : '';
            const r = json.reason ? ` (reason ${clean(json.reason, 60)})`
                                  : '';
            return `refused with ${st}: ${clean(json.error, 60)}${d}${r}`;
        }
        const ct = res.headers['content-type'];
        return `refused with ${st} (not an approval answer`
               + `${ct ? `: ${clean(ct, 60)}` : ''})`;
    }

    gaveUp(res, json, why) {
        const ui = this.ui;
        const message = why ?? (this.o.maxWait
            ? `gave up after --max-wait ${this.o.maxWait} s: the approval `
              + 'is still pending'
            : 'the approval is still pending');
        const hint = this.handle
            ? `; continue with --handle (the whole handle is in the --json `
              + `output; it starts ${shorten(this.handle)})`
            : '';
        ui.error(ui.yellow(message + hint));
        return this.emit(res, json ?? null, 'pending', EXIT.PENDING, message);
    }

    connectFailed(e) {
        this.ui.error(this.ui.red(e.message));
        return this.emit(null, null, 'connection_error', EXIT.CONNECT,
                         e.message);
    }

    interrupt() {
        const ui = this.ui;
        ui.clearLive();
        const hint = this.pending && this.handle
                     ? `: the approval is still pending (handle `
                       + `${shorten(this.handle)})` : '';
        process.stderr.write(`\n${PROG}: interrupted${hint}\n`);
        if (this.o.json) {
            process.stdout.write(JSON.stringify(this.result(
                null, null, 'interrupted', EXIT.INTERRUPTED,
                'interrupted')) + '\n');
        }
    }
}


/* ---- main --------------------------------------------------------------- */

export async function main(argv = process.argv.slice(2)) {
    let o;

    try {
        o = parseArgs(argv);
    } catch (e) {
        if (!(e instanceof UsageError)) {
            throw e;
        }
        process.stderr.write(`${PROG}: ${e.message}\n`
                             + `Usage: ${PROG} [options] URL   `
                             + `(${PROG} --help for more)\n`);
        if (argv.includes('--json')) {
            process.stdout.write(JSON.stringify({
                result: 'usage_error', exit_code: EXIT.USAGE,
                message: e.message
            }) + '\n');
        }
        return EXIT.USAGE;
    }

    if (o.help) {
        process.stdout.write(usage());
        return EXIT.OK;
    }

    const agent = new Agent(o);

    const onSignal = (sig) => {
        agent.interrupt();
        process.exit(sig === 'SIGTERM' ? 143 : EXIT.INTERRUPTED);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    try {
        return await agent.run();
    } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
    }
}

function isMain() {
    if (!process.argv[1]) {
        return false;
    }
    try {
        return realpathSync(process.argv[1])
               === realpathSync(new URL(import.meta.url));
    } catch {
        return false;
    }
}

if (isMain()) {
    main().then((code) => {
        process.exitCode = code;
    }, (e) => {
        process.stderr.write(`${PROG}: internal error: `
                             + `${e && e.stack ? e.stack : e}\n`);
        process.exitCode = EXIT.INTERNAL;
    });
}
