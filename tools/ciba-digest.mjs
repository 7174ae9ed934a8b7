#!/usr/bin/env node
/*
 * ciba-digest: compute the action digest (version 2) of an HTTP request,
 * the same way ngx_http_ciba_module recomputes it from the request it gets
 * (README.md, "The action digest", is the specification).
 *
 *   digest   = BASE64URL-without-padding( SHA-256( C ) )
 *   C        = NS("ngx-ciba-digest/2") NS(covers) NS(action)
 *              [NS(method)] [NS(path)] [NS(n) NS(arg_1) ... NS(arg_n)]
 *              [NS(bodyhash)] NS(m) NS(extra_1) ... NS(extra_m)
 *              NS(k) HEADER_1 ... HEADER_k
 *   HEADER_i = NS(name_i) NS(c_i) NS(value_i_1) ... NS(value_i_c)
 *   NS(x)    = dec(len(x)) ":" x ","
 *
 * The path is the raw path as sent, which must be canonical (pathMode
 * "canonical", the default), or nginx's normalized $uri (pathMode
 * "normalize"; the covered part is then named "uri").  The args are the
 * raw pieces of the query string, sorted stably by their name key (the
 * name decoded and lowercased); a repeated name key is refused unless
 * duplicateArgs is "keep".  Bound headers: every field of each bound name,
 * in request order; two fields of one name are refused unless the bound
 * header is "repeated".
 *
 * Library use:
 *   import { digest, canonical, DigestError } from './ciba-digest.mjs';
 *   digest({ action: 'refund', method: 'POST',
 *            url: '/tools/refund?order=A17', body: '{"a":1}',
 *            extras: ['agent-7'],
 *            bindHeaders: ['X-Agent-Id'],
 *            headers: [['X-Agent-Id', 'agent-7']] })
 *
 * A refusal throws DigestError; its "reason" is the module's reason
 * ("noncanonical_path", "duplicate_arg", "duplicate_header", "not_utf8")
 * when the module would answer 400 approval_bad_request, "invalid_request"
 * when nginx itself answers 400, and undefined for bad input.  The checks
 * hold whatever the covered parts, in that order.
 *
 * Only node built-ins are used (node:crypto, node:fs).
 */

import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';


export const VERSION_TAG = 'ngx-ciba-digest/2';
export const PARTS = Object.freeze(['method', 'path', 'args', 'body']);
export const DEFAULT_COVERS = PARTS.join(',');
export const PATH_MODES = Object.freeze(['canonical', 'normalize']);
export const DUPLICATE_ARGS = Object.freeze(['refuse', 'keep']);

/* the module's refusals, in the order they are checked */
export const REASONS = Object.freeze(['noncanonical_path', 'duplicate_arg',
                                      'duplicate_header', 'not_utf8']);

/* exit status of the command for each kind of refusal */
export const EXIT_STATUS = Object.freeze({
    usage: 2,
    invalid_request: 2,
    noncanonical_path: 3,
    duplicate_arg: 4,
    duplicate_header: 5,
    not_utf8: 6,
});


/* every refusal (bad input, or a request nginx would refuse) is one of these */
export class DigestError extends Error {
    constructor(message, reason) {
        super(message);
        this.name = 'DigestError';
        this.reason = reason;
    }
}

/* a request nginx itself answers with 400 (before the module runs) */
function invalid(message) {
    return new DigestError(message, 'invalid_request');
}


/* ---- bytes ------------------------------------------------------------ */

function toBytes(x, what) {
    if (Buffer.isBuffer(x)) {
        return x;
    }
    if (x instanceof Uint8Array) {
        return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    }
    if (typeof x === 'string') {
        return Buffer.from(x, 'utf8');
    }
    throw new DigestError(`${what} must be a string or bytes`);
}

function hexValue(c) {
    if (c >= 0x30 && c <= 0x39) {           /* 0-9 */
        return c - 0x30;
    }
    const l = c | 0x20;                     /* fold A-F to a-f */
    if (l >= 0x61 && l <= 0x66) {
        return l - 0x61 + 10;
    }
    return -1;
}

function showByte(c) {
    if (c > 0x20 && c < 0x7f) {
        return `"${String.fromCharCode(c)}"`;
    }
    return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/* the bytes nginx never accepts raw in a request target (path or query) */
function checkRawTargetBytes(b, what) {
    for (let i = 0; i < b.length; i++) {
        const c = b[i];
        if (c === 0x20) {
            throw invalid(`${what} has a raw space at offset ${i} `
                + '(a request target cannot hold one: write it as %20)');
        }
        if (c < 0x20 || c === 0x7f) {
            throw invalid(`${what} has a control character `
                + `(${showByte(c)}) at offset ${i}; nginx refuses it `
                + '(percent-encode it)');
        }
    }
}


/* ---- targets ---------------------------------------------------------- */

/*
 * Split a URL or request target into its raw path and raw query, as nginx
 * sees them.  Accepts an absolute URL ("https://host:8443/p?q") or an
 * origin-form target ("/p?q").  Returns
 * { path: Buffer, query: Buffer | null } (query null when there is no "?").
 * A URL with an empty path ("https://host?q") has the path "/", what a
 * client sends.  A wire target in absolute form without a path is "/"
 * when nothing follows ("http://host"), as nginx has it, but has an empty
 * path, not canonical, when a query follows ("http://host?q").
 *
 * opts.wire false (the default): the input is a URL; a "#" fragment is
 * never sent, so it is dropped.
 * opts.wire true: the input is the request target exactly as the request
 * line carries it.  The path is then every byte before the first "?" (a
 * raw "#" in it stays there: not canonical), and the query ends at a "#",
 * as nginx's $args does; a "#" before the "?" leaves no query at all.
 */
export function splitTarget(url, opts = {}) {
    let b = toBytes(url, 'the URL');
    const wire = Boolean(opts.wire);
    const hash = b.indexOf(0x23);           /* '#' */
    if (hash >= 0 && !wire) {
        b = b.subarray(0, hash);
    }

    let target = b;
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(b.toString('latin1'));
    if (m) {
        /* absolute URL: skip scheme and authority */
        let i = m[0].length;
        while (i < b.length && b[i] !== 0x2f && b[i] !== 0x3f
               && b[i] !== 0x23)
        {
            i++;
        }
        target = b.subarray(i);
    } else if (b.length === 0 || b[0] !== 0x2f) {
        throw new DigestError('the URL must be absolute (https://host/path) '
            + 'or an origin-form target starting with "/"');
    }

    const q = target.indexOf(0x3f);         /* '?' */
    let path = q >= 0 ? target.subarray(0, q) : target;
    let query = q >= 0 ? target.subarray(q + 1) : null;

    if (wire) {
        const h = target.indexOf(0x23);
        if (h >= 0 && (q < 0 || h < q)) {
            query = null;                   /* nginx: no $args at all */
        } else if (query !== null && query.indexOf(0x23) >= 0) {
            query = query.subarray(0, query.indexOf(0x23));
        }
    }

    checkRawTargetBytes(path, 'the path');
    if (query !== null) {
        checkRawTargetBytes(query, 'the query string');
    }
    if (path.length === 0 && (!wire || query === null)) {
        path = Buffer.from('/');
    }

    return { path: Buffer.from(path), query: query && Buffer.from(query) };
}


/*
 * The path as nginx 1.22 puts it into $uri (merge_slashes on).
 *
 * Input: the raw path of a request target (anything from the first raw
 * "?" or "#" on is ignored, so a whole target may be given); a string is
 * taken as UTF-8.  An empty path (as in "https://host?q") is "/".
 * Output: a Buffer.  Throws DigestError where nginx answers 400.
 *
 * What nginx does, and so what this does:
 *  - "%XX" is decoded (hex digits in either case); a "%" not followed by
 *    two hex digits, and "%00", are refused;
 *  - a decoded "/" or "." counts exactly like a raw one: "%2F" separates
 *    segments (and is merged with neighbouring slashes), "%2e%2e" is "..";
 *  - a decoded "%", "#" or "?" ("%25", "%23", "%3F") is a plain byte of
 *    its segment, so "/.%3F" stays "/.?";
 *  - runs of "/" are merged; "." segments are dropped; ".." drops the
 *    segment before it, and a ".." with nothing left to drop is refused;
 *  - a final "." or ".." segment leaves a trailing "/";
 *  - every other byte, "+", ";", "\" and bytes >= 0x80 included, is kept
 *    as it is (no "+" to space, no "\" to "/" on non-Windows nginx).
 */
export function normalizePath(rawPath) {
    let b = toBytes(rawPath, 'the path');

    let end = b.length;
    for (let i = 0; i < b.length; i++) {
        if (b[i] === 0x3f || b[i] === 0x23) {   /* '?' or '#' */
            end = i;
            break;
        }
    }
    b = b.subarray(0, end);

    if (b.length === 0) {
        return Buffer.from('/');
    }
    if (b[0] !== 0x2f) {
        throw invalid('the path must start with "/"');
    }
    checkRawTargetBytes(b, 'the path');

    /*
     * Pass 1: decode into segments.  A segment is a list of bytes plus
     * whether it is exactly one or two structural dots; the separators are
     * raw or decoded slashes.
     */
    const segments = [];
    let cur = [];
    let dots = 0;               /* structural dots at the start of cur */
    let plain = false;          /* cur holds some byte that is not a dot */

    const endSegment = () => {
        segments.push({ bytes: cur, kind: plain ? 'name'
                        : dots === 0 ? 'empty'
                        : dots === 1 ? 'dot'
                        : dots === 2 ? 'dotdot' : 'name' });
        cur = [];
        dots = 0;
        plain = false;
    };

    for (let i = 1; i < b.length; i++) {
        let c = b[i];

        if (c === 0x25) {                        /* '%' */
            const hi = i + 1 < b.length ? hexValue(b[i + 1]) : -1;
            const lo = i + 2 < b.length ? hexValue(b[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                throw invalid(`bad percent-escape at offset ${i} of `
                    + 'the path (nginx answers 400)');
            }
            c = hi * 16 + lo;
            i += 2;
            if (c === 0) {
                throw invalid('the path holds "%00" (nginx answers '
                    + '400)');
            }
            /*
             * A decoded "/" or "." is structural, exactly like a raw one.
             * A decoded "%", "#" or "?" is a plain byte (nginx keeps it);
             * here that needs no special case, as the raw "?" and "#"
             * were cut off above, before any decoding.
             */
        }

        if (c === 0x2f) {                        /* '/', raw or decoded */
            endSegment();
            continue;
        }

        cur.push(c);
        if (c === 0x2e && !plain) {              /* '.', raw or decoded */
            dots++;
        } else {
            plain = true;
        }
    }
    endSegment();

    /* Pass 2: merge slashes, resolve dot segments */
    const stack = [];
    let trailing = false;

    for (let k = 0; k < segments.length; k++) {
        const s = segments[k];
        const last = (k === segments.length - 1);

        switch (s.kind) {
        case 'empty':
        case 'dot':
            trailing = last;
            break;
        case 'dotdot':
            if (stack.length === 0) {
                throw invalid('the path climbs above the root with '
                    + '".." (nginx answers 400)');
            }
            stack.pop();
            trailing = last;
            break;
        default:
            stack.push(s.bytes);
            trailing = false;
        }
    }

    const out = [0x2f];
    stack.forEach((seg, k) => {
        if (k > 0) {
            out.push(0x2f);
        }
        out.push(...seg);
    });
    if (trailing && stack.length > 0) {
        out.push(0x2f);
    }

    return Buffer.from(out);
}


/*
 * Why a raw path is not in canonical form (README, "Canonical paths"), or
 * null when it is.  The path starts with "/"; each byte is a letter, a
 * digit, one of -._~!$&'()*+,;=:@/ or "%" and two upper-case hex digits;
 * an escape never encodes a letter, a digit, "-._~" or "/"; no empty
 * segment (but a trailing "/"); no "." or ".." segment.
 */
const PATH_CHARS = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
                            + "0123456789-._~!$&'()*+,;=:@/")) {
    PATH_CHARS[c] = 1;
}

function isUnreservedOrSlash(c) {
    return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e
        || c === 0x5f || c === 0x7e || c === 0x2f;
}

function isUpperHex(c) {
    return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46);
}

export function noncanonicalPath(rawPath) {
    const b = toBytes(rawPath, 'the path');

    if (b.length === 0 || b[0] !== 0x2f) {
        return 'the path does not start with "/"';
    }

    for (let i = 0; i < b.length; i++) {
        const c = b[i];
        if (c === 0x25) {                                   /* '%' */
            const e = b.subarray(i, i + 3).toString('latin1');
            if (i + 2 >= b.length || hexValue(b[i + 1]) < 0
                || hexValue(b[i + 2]) < 0)
            {
                return `"%" at offset ${i} is not followed by two hex `
                    + 'digits';
            }
            const d = hexValue(b[i + 1]) * 16 + hexValue(b[i + 2]);
            if (d === 0x2f) {
                return `"${e}" at offset ${i} encodes a "/", which a tool `
                    + 'API may read as a separator';
            }
            if (isUnreservedOrSlash(d)) {
                return `the escape "${e}" at offset ${i} encodes `
                    + `"${String.fromCharCode(d)}", which must be sent as `
                    + 'it is';
            }
            if (!isUpperHex(b[i + 1]) || !isUpperHex(b[i + 2])) {
                return `the escape "${e}" at offset ${i} has lower-case `
                    + `hex digits: write "${e.toUpperCase()}"`;
            }
            i += 2;
            continue;
        }
        if (!PATH_CHARS[c]) {
            const hex = c.toString(16).toUpperCase().padStart(2, '0');
            return `${showByte(c)} at offset ${i} must be percent-encoded `
                + `("%${hex}")`;
        }
    }

    let start = 1;
    for (let i = 1; i <= b.length; i++) {
        if (i < b.length && b[i] !== 0x2f) {
            continue;
        }
        const seg = b.subarray(start, i).toString('latin1');
        if (seg === '' && i < b.length) {
            return `empty segment ("//") at offset ${start - 1}`;
        }
        if (seg === '.' || seg === '..') {
            return `"${seg}" segment at offset ${start}`;
        }
        start = i + 1;
    }

    return null;
}


/* ---- args ------------------------------------------------------------- */

/* the query string's pieces, in request order: split on "&", empty ones
 * dropped, each kept as sent */
export function argPieces(query) {
    if (query === null || query === undefined) {
        return [];
    }
    const b = toBytes(query, 'the query string');
    const args = [];
    let start = 0;
    for (let i = 0; i <= b.length; i++) {
        if (i === b.length || b[i] === 0x26) {  /* '&' */
            if (i > start) {
                args.push(Buffer.from(b.subarray(start, i)));
            }
            start = i + 1;
        }
    }
    return args;
}

/*
 * The name key of a piece: its bytes before the first "=" (all of it when
 * there is none), decoded in one pass ("+" is a space, "%XX" in either
 * case is the byte XX, a "%" without two hex digits stays), then A-Z
 * lowercased.
 */
export function nameKey(piece) {
    const b = toBytes(piece, 'an argument');
    let end = b.indexOf(0x3d);                  /* '=' */
    if (end < 0) {
        end = b.length;
    }
    const out = [];
    for (let i = 0; i < end; i++) {
        let c = b[i];
        if (c === 0x2b) {                       /* '+' */
            c = 0x20;
        } else if (c === 0x25 && i + 2 < end && hexValue(b[i + 1]) >= 0
                   && hexValue(b[i + 2]) >= 0)
        {
            c = hexValue(b[i + 1]) * 16 + hexValue(b[i + 2]);
            i += 2;
        }
        if (c >= 0x41 && c <= 0x5a) {
            c |= 0x20;
        }
        out.push(c);
    }
    return Buffer.from(out);
}

/* the pieces sorted stably by name key (bytewise), as the digest has them */
export function sortArgs(pieces) {
    return pieces
        .map((p, i) => ({ p, k: nameKey(p), i }))
        .sort((x, y) => Buffer.compare(x.k, y.k) || x.i - y.i)
        .map((x) => x.p);
}

/* the query string's pieces in digest order */
export function splitArgs(query) {
    return sortArgs(argPieces(query));
}

/* the first name key found twice, as { key, first, second } pieces, or null */
export function duplicateArg(pieces) {
    const seen = new Map();
    for (const p of pieces) {
        const k = nameKey(p).toString('latin1');
        if (seen.has(k)) {
            return { key: Buffer.from(k, 'latin1'), first: seen.get(k),
                     second: p };
        }
        seen.set(k, p);
    }
    return null;
}


/* ---- headers ---------------------------------------------------------- */

/* the header names nginx takes by default: letters, digits and "-" (with
 * underscores_in_headers on, also "_") */
const HEADER_NAME_RE = /^[A-Za-z0-9_-]+$/;

function checkHeaderName(name, what) {
    if (!HEADER_NAME_RE.test(name)) {
        throw new DigestError(`${what} "${name}" is not a header name nginx `
            + 'takes (letters, digits, "-", and "_" with '
            + 'underscores_in_headers on)');
    }
}

/*
 * The bound headers, in configuration order: [{ name, repeated }].  Takes
 * names, "Name:repeated" strings, or { name, repeated } objects.
 */
export function parseBindHeaders(list) {
    if (list === undefined || list === null) {
        return [];
    }
    if (!Array.isArray(list)) {
        throw new DigestError('bindHeaders must be an array');
    }
    const seen = new Set();
    return list.map((h) => {
        let name;
        let repeated = false;
        if (typeof h === 'string') {
            const m = /^([^:]*):(.*)$/.exec(h);
            if (m) {
                if (m[2].trim() !== 'repeated') {
                    throw new DigestError(`bound header "${h}": only `
                        + '":repeated" may follow the name');
                }
                name = m[1].trim();
                repeated = true;
            } else {
                name = h.trim();
            }
        } else if (h !== null && typeof h === 'object') {
            name = String(h.name ?? '');
            repeated = Boolean(h.repeated);
        } else {
            throw new DigestError('a bound header must be a name');
        }
        checkHeaderName(name, 'bound header');
        const lower = name.toLowerCase();
        if (seen.has(lower)) {
            throw new DigestError(`header "${name}" bound twice`);
        }
        seen.add(lower);
        return { name: lower, repeated };
    });
}

/*
 * The request's header fields, in order: [{ name, value: Buffer }].  Takes
 * "Name: value" strings or [name, value] pairs.  The value loses its
 * leading and trailing spaces, as nginx stores it (nginx 1.22 keeps tabs).
 */
export function parseHeaders(list) {
    if (list === undefined || list === null) {
        return [];
    }
    if (!Array.isArray(list)) {
        throw new DigestError('headers must be an array');
    }
    return list.map((h) => {
        let name;
        let value;
        if (Array.isArray(h) && h.length === 2) {
            name = String(h[0]);
            value = toBytes(h[1], 'a header value');
        } else if (typeof h === 'string' || Buffer.isBuffer(h)) {
            const b = toBytes(h, 'a header field');
            const colon = b.indexOf(0x3a);
            if (colon < 0) {
                throw new DigestError(`header field "${b}" has no ":" `
                    + '(write "Name: value")');
            }
            name = b.subarray(0, colon).toString('latin1');
            value = b.subarray(colon + 1);
        } else {
            throw new DigestError('a header field must be "Name: value" '
                + 'or [name, value]');
        }
        checkHeaderName(name, 'header field name');
        for (const c of value) {
            if (c === 0x00 || c === 0x0a || c === 0x0d) {
                throw new DigestError(`the value of header "${name}" holds `
                    + `${showByte(c)}, which cannot be sent`);
            }
        }
        let s = 0;
        let e = value.length;
        while (s < e && value[s] === 0x20) {
            s++;
        }
        while (e > s && value[e - 1] === 0x20) {
            e--;
        }
        return { name, value: Buffer.from(value.subarray(s, e)) };
    });
}


/* ---- the canonical encoding ------------------------------------------ */

/* "method,path,args,body" style list (or array) -> canonical list */
export function parseCovers(covers) {
    if (covers === undefined || covers === null) {
        return PARTS.slice();
    }
    const text = Array.isArray(covers) ? null : String(covers).trim();
    if (text === '') {
        throw new DigestError('covers names no part');
    }
    const list = text === null ? covers
        : text.split(',').map((s) => s.trim());
    const seen = new Set();
    for (const p of list) {
        if (!PARTS.includes(p)) {
            throw new DigestError(`unknown part "${p}" in covers (known: `
                + `${PARTS.join(', ')})`);
        }
        if (seen.has(p)) {
            throw new DigestError(`part "${p}" named twice in covers`);
        }
        seen.add(p);
    }
    if (seen.size === 0) {
        throw new DigestError('covers names no part');
    }
    return PARTS.filter((p) => seen.has(p));
}


export function sha256Hex(data) {
    return createHash('sha256').update(data).digest('hex');
}


function netstring(x) {
    const b = toBytes(x, 'a value');
    return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

const METHOD_RE = /^[A-Z_-]+$/;

/* valid UTF-8 (RFC 3629: no overlong forms, no surrogates) */
function isUtf8(b) {
    try {
        new TextDecoder('utf-8', { fatal: true }).decode(b);
        return true;
    } catch {
        return false;
    }
}     /* what nginx 1.22 accepts as a method */

function oneOf(value, allowed, what, dflt) {
    if (value === undefined || value === null) {
        return dflt;
    }
    if (!allowed.includes(value)) {
        throw new DigestError(`${what} must be ${allowed.join(' or ')}, `
            + `not "${value}"`);
    }
    return value;
}


/*
 * The request, checked as nginx and the module check it: the parts C is
 * made of, and every refusal of the module that applies ({ reason,
 * message }, in the order of REASONS).  Throws DigestError for bad input
 * and where nginx itself answers 400.
 */
export function inspect(opts) {
    if (opts === null || typeof opts !== 'object') {
        throw new DigestError('canonical() needs an options object');
    }

    const covers = parseCovers(opts.covers);
    const pathMode = oneOf(opts.pathMode, PATH_MODES, 'pathMode',
                           'canonical');
    const dupArgs = oneOf(opts.duplicateArgs, DUPLICATE_ARGS,
                          'duplicateArgs', 'refuse');

    if (opts.action === undefined || opts.action === null
        || toBytes(opts.action, 'the action').length === 0)
    {
        throw new DigestError('an action name is required');
    }

    let path = null;
    let query = null;
    const given = ['url', 'target'].filter((k) => opts[k] !== undefined
                                                  && opts[k] !== null);
    if (given.length > 1) {
        throw new DigestError('give url or target, not both');
    }
    if (given.length === 1) {
        ({ path, query } = splitTarget(opts[given[0]],
                                       { wire: given[0] === 'target' }));
    } else {
        if (opts.path !== undefined && opts.path !== null) {
            path = toBytes(opts.path, 'the path');
            checkRawTargetBytes(path, 'the path');
        }
        if (opts.query !== undefined && opts.query !== null) {
            query = toBytes(opts.query, 'the query string');
            checkRawTargetBytes(query, 'the query string');
        }
    }

    const r = { covers, pathMode, duplicateArgs: dupArgs, refusals: [] };
    const refuse = (reason, message) => r.refusals.push({ reason, message });

    r.coversName = covers.map((p) => (p === 'path' && pathMode === 'normalize'
                                      ? 'uri' : p)).join(',');
    r.action = toBytes(opts.action, 'the action');

    if (covers.includes('method')) {
        const method = opts.method;
        if (method === undefined || method === null) {
            throw new DigestError('the method is covered but not given');
        }
        if (!METHOD_RE.test(String(method))) {
            throw invalid(`"${method}" is not a method nginx accepts `
                + '(upper-case letters, "_" and "-" only)');
        }
        r.method = String(method);
    }

    if (covers.includes('path') && path === null) {
        throw new DigestError('the path is covered but no URL or path '
            + 'is given');
    }
    /* the checks hold whatever the covered parts */
    if (path !== null) {
        const uri = normalizePath(path);        /* where nginx says 400 */
        if (pathMode === 'canonical') {
            const why = noncanonicalPath(path);
            if (why !== null) {
                refuse('noncanonical_path', `the path is not canonical: `
                    + `${why} (or use ciba_path normalize: `
                    + '--path-mode normalize)');
            }
        }
        if (covers.includes('path')) {
            r.path = pathMode === 'normalize' ? uri : path;
        }
    }

    {
        const pieces = argPieces(query);
        if (dupArgs === 'refuse') {
            const d = duplicateArg(pieces);
            if (d !== null) {
                refuse('duplicate_arg', `the argument name `
                    + `"${escapeBytes(d.key)}" is repeated ("`
                    + `${escapeBytes(d.first)}" and "`
                    + `${escapeBytes(d.second)}"; or use ciba_duplicate_args `
                    + 'keep: --duplicate-args keep)');
            }
        }
        if (covers.includes('args')) {
            r.args = sortArgs(pieces);
        }
    }

    if (covers.includes('body')) {
        if (opts.bodyHash !== undefined && opts.bodyHash !== null) {
            if (opts.body !== undefined && opts.body !== null) {
                throw new DigestError('give body or bodyHash, not both');
            }
            r.bodyHash = String(opts.bodyHash);
            if (!/^[0-9a-f]{64}$/.test(r.bodyHash)) {
                throw new DigestError('bodyHash must be 64 lowercase hex '
                    + 'digits');
            }
        } else {
            const body = (opts.body === undefined || opts.body === null)
                ? Buffer.alloc(0) : toBytes(opts.body, 'the body');
            r.bodyHash = sha256Hex(body);
        }
    }

    const extras = opts.extras === undefined || opts.extras === null
        ? [] : opts.extras;
    if (!Array.isArray(extras)) {
        throw new DigestError('extras must be an array');
    }
    r.extras = extras.map((e) => toBytes(e, 'an extra value'));

    const fields = parseHeaders(opts.headers);
    r.headers = parseBindHeaders(opts.bindHeaders).map((b) => {
        const values = fields.filter((f) => f.name.toLowerCase() === b.name)
            .map((f) => f.value);
        if (values.length > 1 && !b.repeated) {
            refuse('duplicate_header', `the bound header "${b.name}" comes `
                + `${values.length} times (or bind it with "repeated": `
                + `--bind-header ${b.name}:repeated)`);
        }
        return { name: b.name, values };
    });
    r.unbound = [...new Set(fields.map((f) => f.name.toLowerCase()))]
        .filter((n) => !r.headers.some((h) => h.name === n));

    if (!isUtf8(r.action)) {
        refuse('not_utf8', 'the action name is not valid UTF-8, and cannot '
            + 'be sent to the authorization server');
    }

    return r;
}


/*
 * The canonical encoding C of a request, as a Buffer.  Throws DigestError
 * (with the reason of the first refusal) where nginx or the module refuses
 * the request.
 *
 * opts:
 *   action        the action name (string or bytes), required
 *   method        the method as sent, e.g. "POST" (needed when covered)
 *   url           absolute URL or origin-form target (path and raw query;
 *                 a "#" fragment is dropped); or instead:
 *   target        the request target exactly as the request line has it;
 *                 or else give path and query separately:
 *   path          the raw path
 *   query         the raw query string, without "?" (null for none)
 *   body          the request body (string = UTF-8, or bytes); absent = empty
 *   bodyHash      instead of body: its lowercase hex SHA-256
 *   extras        array of extra values (strings or bytes), in config order
 *   covers        "method,path,args,body" (default all) or an array
 *   pathMode      "canonical" (default) or "normalize" (ciba_path)
 *   duplicateArgs "refuse" (default) or "keep" (ciba_duplicate_args)
 *   bindHeaders   the ciba_digest_header names in config order: "Name",
 *                 "Name:repeated" or { name, repeated }
 *   headers       the request's header fields in order: "Name: value" or
 *                 [name, value]
 */
export function canonical(opts) {
    return encode(inspect(opts));
}

function encode(r) {
    if (r.refusals.length > 0) {
        throw new DigestError(r.refusals[0].message, r.refusals[0].reason);
    }

    const parts = [netstring(VERSION_TAG), netstring(r.coversName),
                   netstring(r.action)];
    if (r.method !== undefined) {
        parts.push(netstring(r.method));
    }
    if (r.path !== undefined) {
        parts.push(netstring(r.path));
    }
    if (r.args !== undefined) {
        parts.push(netstring(String(r.args.length)));
        r.args.forEach((a) => parts.push(netstring(a)));
    }
    if (r.bodyHash !== undefined) {
        parts.push(netstring(r.bodyHash));
    }
    parts.push(netstring(String(r.extras.length)));
    r.extras.forEach((e) => parts.push(netstring(e)));
    parts.push(netstring(String(r.headers.length)));
    for (const h of r.headers) {
        parts.push(netstring(h.name), netstring(String(h.values.length)));
        h.values.forEach((v) => parts.push(netstring(v)));
    }

    return Buffer.concat(parts);
}


/* base64url without padding of SHA-256 of C; takes C (bytes) or options */
export function digest(optsOrCanonical) {
    const c = (Buffer.isBuffer(optsOrCanonical)
               || optsOrCanonical instanceof Uint8Array)
        ? optsOrCanonical : canonical(optsOrCanonical);
    return createHash('sha256').update(c).digest('base64url');
}


/* C made readable: printable ASCII as is, "\" doubled, others as \xNN */
export function escapeBytes(b) {
    let s = '';
    for (const c of toBytes(b, 'bytes')) {
        if (c === 0x5c) {
            s += '\\\\';
        } else if (c >= 0x20 && c < 0x7f) {
            s += String.fromCharCode(c);
        } else {
            s += '\\x' + c.toString(16).padStart(2, '0');
        }
    }
    return s;
}


/* ---- command line ----------------------------------------------------- */

export const USAGE = `\
Usage: ciba-digest --action NAME [--method M] --url URL
                   [--body-file FILE | --body STRING] [--extra VALUE]...
                   [--bind-header NAME[:repeated]]... [--header 'NAME: VALUE']...
                   [--covers LIST] [--path-mode canonical|normalize]
                   [--duplicate-args refuse|keep] [--canonical] [--json]

Prints the action digest (version 2) of the request on stdout: the value
ngx_http_ciba_module recomputes from the request it receives.  Give what
the location is configured with (--action, --extra, --bind-header,
--covers, --path-mode, --duplicate-args) and the request exactly as it
will be sent (--method, --url, the body, --header).

  --action NAME      the action name configured for the location (required)
  --method M         the request method as sent; default GET, or POST when
                     --body or --body-file is given
  --url URL          an absolute URL (https://host/p?q) or an origin-form
                     target (/p?q), exactly as it will be sent: path and
                     query are taken raw (not decoded); a #fragment is
                     ignored
  --body-file FILE   the request body, read as bytes ("-" for stdin)
  --body STRING      the request body, as UTF-8
  --extra VALUE      a ciba_digest_extra value, in the order of the
                     configuration; repeat for several
  --bind-header NAME a ciba_digest_header name, in the order of the
                     configuration, with ":repeated" when the directive
                     says "repeated" (e.g. --bind-header X-Agent-Id:repeated);
                     repeat for several
  --header 'N: V'    a header field of the request (any order of names,
                     fields of one name in the order they are sent); only
                     those of bound names count; repeat for several
  --covers LIST      the covered parts (ciba_digest), comma separated, out
                     of method,path,args,body (default: all four)
  --path-mode MODE   ciba_path: canonical (the default: the raw path, which
                     must be canonical) or normalize (nginx's $uri)
  --duplicate-args M ciba_duplicate_args: refuse (the default) or keep
  --canonical        also print the canonical encoding C to stderr
                     (printable ASCII as is, other bytes as \\xNN)
  --json             print a JSON object instead: {"digest", "covers",
                     "canonical" (C, escaped as above), "length"}, or on a
                     refusal {"error", "reason"}
  --help             print this help

Options also take the --opt=VALUE form.  Exit status:
  0  the digest is printed
  2  a usage error, an unreadable body file, or a request nginx itself
     refuses (such as ".." above the root, "%00" or a bad %-escape in the
     path, a raw space or control byte in the URL)
  3  the module refuses it (400, reason noncanonical_path): a path not in
     canonical form ("//", "." or ".." segments, %2F, %41, lower-case hex
     escapes, raw bytes outside A-Za-z0-9-._~!$&'()*+,;=:@/)
  4  the module refuses it (400, reason duplicate_arg): two arguments
     with the same name (decoded, case-insensitive)
  5  the module refuses it (400, reason duplicate_header): two fields of
     a bound header that is not :repeated
  6  the module refuses it (400, reason not_utf8): an action name that is
     not valid UTF-8
These checks hold whatever --covers says; when several fail, the first
in this order is given.
`;

function parseArgs(argv) {
    const o = { extras: [], bindHeaders: [], headers: [] };
    const takes = new Set(['--action', '--method', '--url', '--body-file',
                           '--body', '--extra', '--covers', '--bind-header',
                           '--header', '--path-mode', '--duplicate-args']);
    const repeat = new Set(['--extra', '--bind-header', '--header']);
    const seen = new Set();

    for (let i = 0; i < argv.length; i++) {
        let a = argv[i];
        let v;

        if (a === '--help' || a === '-h') {
            o.help = true;
            continue;
        }
        if (a === '--canonical') {
            o.canonical = true;
            continue;
        }
        if (a === '--json') {
            o.json = true;
            continue;
        }

        const eq = a.indexOf('=');
        if (a.startsWith('--') && eq > 0) {
            v = a.slice(eq + 1);
            a = a.slice(0, eq);
        }
        if (!takes.has(a)) {
            throw new DigestError(`unknown option "${argv[i]}"`);
        }
        if (v === undefined) {
            if (i + 1 >= argv.length) {
                throw new DigestError(`${a} needs a value`);
            }
            v = argv[++i];
        }
        if (!repeat.has(a) && seen.has(a)) {
            throw new DigestError(`${a} given twice`);
        }
        seen.add(a);

        switch (a) {
        case '--action': o.action = v; break;
        case '--method': o.method = v; break;
        case '--url': o.url = v; break;
        case '--body-file': o.bodyFile = v; break;
        case '--body': o.body = v; break;
        case '--extra': o.extras.push(v); break;
        case '--covers': o.covers = v; break;
        case '--bind-header': o.bindHeaders.push(v); break;
        case '--header': o.headers.push(v); break;
        case '--path-mode': o.pathMode = v; break;
        case '--duplicate-args': o.duplicateArgs = v; break;
        }
    }

    return o;
}

export function main(argv = process.argv.slice(2)) {
    let o;
    try {
        /* node decodes argv as UTF-8 and turns a byte that is not UTF-8
         * into U+FFFD: the digest of other bytes would be printed */
        argv.forEach((a, i) => {
            if (a.includes('\uFFFD')) {
                throw new DigestError(`argument ${i + 1} is not valid UTF-8 `
                    + '(or holds U+FFFD): the command cannot take those '
                    + 'bytes; use the library functions with Buffers');
            }
        });
        o = parseArgs(argv);
        if (o.help) {
            process.stdout.write(USAGE);
            return 0;
        }
        if (o.action === undefined || o.action === '') {
            throw new DigestError('--action is required');
        }
        if (o.url === undefined || o.url === '') {
            throw new DigestError('--url is required');
        }
        if (o.body !== undefined && o.bodyFile !== undefined) {
            throw new DigestError('give --body or --body-file, not both');
        }

        let body = null;
        if (o.bodyFile !== undefined) {
            try {
                body = readFileSync(o.bodyFile === '-' ? 0 : o.bodyFile);
            } catch (e) {
                throw new DigestError(`cannot read body file "${o.bodyFile}"`
                    + `: ${e.code || e.message}`);
            }
        } else if (o.body !== undefined) {
            body = Buffer.from(o.body, 'utf8');
        }

        const method = o.method !== undefined ? o.method
            : (body !== null ? 'POST' : 'GET');

        const r = inspect({ action: o.action, method, url: o.url, body,
                            extras: o.extras, covers: o.covers,
                            pathMode: o.pathMode,
                            duplicateArgs: o.duplicateArgs,
                            bindHeaders: o.bindHeaders,
                            headers: o.headers });
        const c = encode(r);
        const d = digest(c);

        for (const n of r.unbound) {
            process.stderr.write(`ciba-digest: note: header "${n}" is not `
                + 'bound (no --bind-header), so it is not digested\n');
        }
        if (o.canonical) {
            process.stderr.write(escapeBytes(c) + '\n');
        }
        if (o.json) {
            process.stdout.write(JSON.stringify({
                digest: d, version: VERSION_TAG, covers: r.coversName,
                canonical: escapeBytes(c), length: c.length }) + '\n');
        } else {
            process.stdout.write(d + '\n');
        }
        return 0;

    } catch (e) {
        if (e instanceof DigestError) {
            process.stderr.write(`ciba-digest: ${e.message}\n`);
            if (!o) {
                process.stderr.write('Try "ciba-digest --help".\n');
            }
            if (o && o.json) {
                process.stdout.write(JSON.stringify({
                    error: e.message, reason: e.reason ?? 'usage' }) + '\n');
            }
            return EXIT_STATUS[e.reason] ?? EXIT_STATUS.usage;
        }
        throw e;
    }
}


/* run main() only when this file is the program, not when imported */
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
    process.exitCode = main();
}
