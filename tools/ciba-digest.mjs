#!/usr/bin/env node
/*
 * ciba-digest: compute the action digest (version 1) of an HTTP request,
 * the same way ngx_http_ciba_module recomputes it from the request it gets.
 *
 *   digest = BASE64URL-without-padding( SHA-256( C ) )
 *   C      = NS("ngx-ciba-digest/1") NS(covers) NS(action)
 *            [NS(method)] [NS(path)] [NS(dec(n)) NS(arg_1) ... NS(arg_n)]
 *            [NS(bodyhash)] NS(dec(m)) NS(extra_1) ... NS(extra_m)
 *   NS(x)  = dec(len(x)) ":" x ","
 *
 * The path is the one nginx puts into $uri: percent-decoded, "." and ".."
 * resolved, runs of "/" merged (nginx 1.22 ngx_http_parse_complex_uri with
 * merge_slashes on).  The args are the raw query string, split on "&",
 * empty pieces dropped, sorted bytewise, duplicates kept.
 *
 * Library use:
 *   import { digest, canonical, normalizePath } from './ciba-digest.mjs';
 *   digest({ action: 'refund', method: 'POST',
 *            url: '/tools/refund?order=A17', body: '{"a":1}',
 *            extras: ['agent-7'] })
 *
 * Only node built-ins are used (node:crypto, node:fs).
 */

import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';


export const VERSION_TAG = 'ngx-ciba-digest/1';
export const PARTS = Object.freeze(['method', 'path', 'args', 'body']);
export const DEFAULT_COVERS = PARTS.join(',');


/* every refusal (bad input, or a request nginx would refuse) is one of these */
export class DigestError extends Error {
    constructor(message) {
        super(message);
        this.name = 'DigestError';
    }
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
            throw new DigestError(`${what} has a raw space at offset ${i} `
                + '(a request target cannot hold one: write it as %20)');
        }
        if (c < 0x20 || c === 0x7f) {
            throw new DigestError(`${what} has a control character `
                + `(${showByte(c)}) at offset ${i}; nginx refuses it `
                + '(percent-encode it)');
        }
    }
}


/* ---- targets ---------------------------------------------------------- */

/*
 * Split a URL or request target into its raw path and raw query, as the
 * request line will carry them.  Accepts an absolute URL
 * ("https://host:8443/p?q") or an origin-form target ("/p?q").  A "#"
 * fragment is never sent, so it is dropped.  Returns
 * { path: Buffer, query: Buffer | null } (query null when there is no "?").
 */
export function splitTarget(url) {
    let b = toBytes(url, 'the URL');
    const hash = b.indexOf(0x23);           /* '#' */
    if (hash >= 0) {
        b = b.subarray(0, hash);
    }

    let target = b;
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(b.toString('latin1'));
    if (m) {
        /* absolute URL: skip scheme and authority */
        let i = m[0].length;
        while (i < b.length && b[i] !== 0x2f && b[i] !== 0x3f) {
            i++;
        }
        target = b.subarray(i);
    } else if (b.length === 0 || b[0] !== 0x2f) {
        throw new DigestError('the URL must be absolute (https://host/path) '
            + 'or an origin-form target starting with "/"');
    }

    const q = target.indexOf(0x3f);         /* '?' */
    const path = q >= 0 ? target.subarray(0, q) : target;
    const query = q >= 0 ? target.subarray(q + 1) : null;

    checkRawTargetBytes(path, 'the path');
    if (query !== null) {
        checkRawTargetBytes(query, 'the query string');
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
        throw new DigestError('the path must start with "/"');
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
                throw new DigestError(`bad percent-escape at offset ${i} of `
                    + 'the path (nginx answers 400)');
            }
            c = hi * 16 + lo;
            i += 2;
            if (c === 0) {
                throw new DigestError('the path holds "%00" (nginx answers '
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
                throw new DigestError('the path climbs above the root with '
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


/* the query string's pieces: split on "&", empty ones dropped, sorted */
export function splitArgs(query) {
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
    return args.sort(Buffer.compare);
}


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

const METHOD_RE = /^[A-Z_-]+$/;     /* what nginx 1.22 accepts as a method */


/*
 * The canonical encoding C of a request, as a Buffer.
 *
 * opts:
 *   action    the action name (string or bytes), required
 *   method    the method as sent, e.g. "POST" (needed when covered)
 *   url       absolute URL or origin-form target (path and raw query);
 *             or else give path and query separately:
 *   path      the raw path (it is normalized here)
 *   query     the raw query string, without "?" (null or "" for none)
 *   body      the request body (string = UTF-8, or bytes); absent = empty
 *   bodyHash  instead of body: its lowercase hex SHA-256
 *   extras    array of extra values (strings or bytes), in config order
 *   covers    "method,path,args,body" (default all) or an array
 */
export function canonical(opts) {
    if (opts === null || typeof opts !== 'object') {
        throw new DigestError('canonical() needs an options object');
    }

    const covers = parseCovers(opts.covers);

    if (opts.action === undefined || opts.action === null
        || toBytes(opts.action, 'the action').length === 0)
    {
        throw new DigestError('an action name is required');
    }

    const parts = [netstring(VERSION_TAG), netstring(covers.join(',')),
                   netstring(opts.action)];

    let path = null;
    let query = null;
    if (opts.url !== undefined && opts.url !== null) {
        ({ path, query } = splitTarget(opts.url));
    } else {
        if (opts.path !== undefined && opts.path !== null) {
            path = toBytes(opts.path, 'the path');
        }
        if (opts.query !== undefined && opts.query !== null) {
            query = toBytes(opts.query, 'the query string');
            checkRawTargetBytes(query, 'the query string');
        }
    }

    if (covers.includes('method')) {
        const method = opts.method;
        if (method === undefined || method === null) {
            throw new DigestError('the method is covered but not given');
        }
        if (!METHOD_RE.test(String(method))) {
            throw new DigestError(`"${method}" is not a method nginx accepts `
                + '(upper-case letters, "_" and "-" only)');
        }
        parts.push(netstring(String(method)));
    }

    if (covers.includes('path')) {
        if (path === null) {
            throw new DigestError('the path is covered but no URL or path '
                + 'is given');
        }
        parts.push(netstring(normalizePath(path)));
    } else if (path !== null && path.length > 0) {
        /* still refuse what nginx would refuse, even when not covered */
        normalizePath(path);
    }

    if (covers.includes('args')) {
        const args = splitArgs(query);
        parts.push(netstring(String(args.length)));
        for (const a of args) {
            parts.push(netstring(a));
        }
    }

    if (covers.includes('body')) {
        let hash;
        if (opts.bodyHash !== undefined && opts.bodyHash !== null) {
            if (opts.body !== undefined && opts.body !== null) {
                throw new DigestError('give body or bodyHash, not both');
            }
            hash = String(opts.bodyHash);
            if (!/^[0-9a-f]{64}$/.test(hash)) {
                throw new DigestError('bodyHash must be 64 lowercase hex '
                    + 'digits');
            }
        } else {
            const body = (opts.body === undefined || opts.body === null)
                ? Buffer.alloc(0) : toBytes(opts.body, 'the body');
            hash = sha256Hex(body);
        }
        parts.push(netstring(hash));
    }

    const extras = opts.extras === undefined || opts.extras === null
        ? [] : opts.extras;
    if (!Array.isArray(extras)) {
        throw new DigestError('extras must be an array');
    }
    parts.push(netstring(String(extras.length)));
    for (const e of extras) {
        parts.push(netstring(toBytes(e, 'an extra value')));
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
Usage: ciba-digest --action NAME [--method M] --url URL_OR_PATH
                   [--body-file FILE | --body STRING] [--extra VALUE]...
                   [--covers method,path,args,body] [--canonical]

Prints the action digest (version 1) of the request on stdout: the value
ngx_http_ciba_module recomputes from the request it receives.

  --action NAME      the action name configured for the location (required)
  --method M         the request method as sent; default GET, or POST when
                     --body or --body-file is given
  --url URL          an absolute URL (https://host/p?q) or an origin-form
                     target (/p?q), exactly as it will be sent: the query is
                     taken raw (not decoded); a #fragment is ignored
  --body-file FILE   the request body, read as bytes ("-" for stdin)
  --body STRING      the request body, as UTF-8
  --extra VALUE      an extra value, in the order of the configuration;
                     repeat for several
  --covers LIST      the covered parts, comma separated, out of
                     method,path,args,body (default: all four)
  --canonical        also print the canonical encoding C to stderr
                     (printable ASCII as is, other bytes as \\xNN)
  --help             print this help

Options also take the --opt=VALUE form.  Exit status: 0 on success, 2 on a
usage error, an unreadable body file, or a request nginx would refuse (such
as ".." above the root, "%00" or a bad %-escape in the path).
`;

function parseArgs(argv) {
    const o = { extras: [] };
    const takes = new Set(['--action', '--method', '--url', '--body-file',
                           '--body', '--extra', '--covers']);
    const once = new Set(['--action', '--method', '--url', '--body-file',
                          '--body', '--covers']);
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
        if (once.has(a) && seen.has(a)) {
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

        const c = canonical({ action: o.action, method, url: o.url, body,
                              extras: o.extras, covers: o.covers });

        if (o.canonical) {
            process.stderr.write(escapeBytes(c) + '\n');
        }
        process.stdout.write(digest(c) + '\n');
        return 0;

    } catch (e) {
        if (e instanceof DigestError) {
            process.stderr.write(`ciba-digest: ${e.message}\n`);
            if (!o) {
                process.stderr.write('Try "ciba-digest --help".\n');
            }
            return 2;
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
