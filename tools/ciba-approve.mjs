#!/usr/bin/env node
/*
 * ciba-approve: the command-line approver of the development authorization
 * server (tools/dev-as): list the pending CIBA approvals, approve or deny
 * one, or watch for new ones, through dev-as's admin API (/admin/pending,
 * /admin/requests, /admin/approve, /admin/deny).  The terminal version of
 * the approver page (GET /approver).  Development and demos only: the
 * admin API stands in for the human's device.
 *
 *   ciba-approve [--as URL] [--json] list [--all] [--user U]
 *   ciba-approve [--as URL] [--json] show ID
 *   ciba-approve [--as URL] [--json] approve ID|--latest [--user U]
 *   ciba-approve [--as URL] [--json] deny ID|--latest [--user U]
 *   ciba-approve [--as URL] [--json] watch [--auto approve|deny] [--user U]
 *                [--interval SECONDS] [--count N]
 *
 * See usage() below (or --help).  Only node built-ins are used.
 *
 * Everything the AS shows comes from an agent's request (binding message,
 * authorization_details): control characters and bidirectional overrides
 * are printed escaped (\x1b, \u202e), never raw, so that they cannot
 * rewrite the terminal.
 */

import { parseArgs } from 'node:util';

const DEFAULT_AS = 'http://127.0.0.1:9000';

/* exit statuses */
const EXIT_FAIL = 1;            /* an unexpected answer, a mismatch */
const EXIT_USAGE = 2;           /* wrong arguments */
const EXIT_NOT_FOUND = 3;       /* no such request (404), nothing pending */
const EXIT_NOT_PENDING = 4;     /* already decided or expired (409) */
const EXIT_UNREACHABLE = 5;     /* no AS there */

const USAGE = `usage: ciba-approve [--as URL] [--json] COMMAND [ARGS]

Commands:
  list [--all] [--user U]     the pending approvals (--all: every request
                              the AS knows, in any state)
  show ID                     everything about one request
  approve ID|--latest [--user U]
                              approve a pending request: ID (or a unique
                              prefix of it, as "list" shows), or the newest
                              pending one (of user U)
  deny ID|--latest [--user U] deny it
  watch [--auto approve|deny] [--user U] [--interval S] [--count N]
                              print pending requests as they come (every S
                              seconds, default 1); --auto: approve or deny
                              each of them (those pending already included);
                              --count N: stop after N requests

Options:
  --as URL      the development AS (default: $CIBA_AS_URL, else
                ${DEFAULT_AS})
  --user U      only requests for user U (login_hint, e.g. alice, or sub)
  --json        JSON output (watch: one JSON object per line)
  -h, --help    this text

Exit status: 0 done, 1 failure, 2 wrong arguments, 3 not found (unknown
id, nothing pending), 4 not pending any more (already decided, expired),
5 the AS cannot be reached.`;

class Failure extends Error {
    constructor(message, code = EXIT_FAIL) {
        super(message);
        this.code = code;
    }
}

function usageError(msg) {
    throw new Failure(`${msg}\n(ciba-approve --help for the usage)`,
                      EXIT_USAGE);
}


/* ---- output ------------------------------------------------------------- */

/*
 * Text for the terminal: C0 and C1 controls, DEL, line and paragraph
 * separators and the bidirectional controls, escaped.
 */
function clean(v) {
    let s;
    if (v === undefined || v === null) {
        s = '';
    } else if (typeof v === 'string') {
        s = v;
    } else {
        s = JSON.stringify(v);
    }
    return s.replace(
        /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/gu,
        (c) => {
            const n = c.codePointAt(0);
            return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}`
                             : `\\u${n.toString(16).padStart(4, '0')}`;
        });
}

/* JSON for the terminal: the same characters as \u escapes */
function json(obj, indent = 2) {
    return JSON.stringify(obj, null, indent).replace(
        /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/gu,
        (c) => `\\u${c.codePointAt(0).toString(16).padStart(4, '0')}`);
}

function cut(s, max) {
    const chars = [...s];
    return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}\u2026`;
}

function table(header, rows) {
    const width = header.map((h, i) => Math.max(
        [...h].length, ...rows.map((r) => [...r[i]].length)));
    const line = (r) => r.map((c, i) => (i === r.length - 1 ? c
        : c + ' '.repeat(width[i] - [...c].length))).join('  ');
    return [line(header), ...rows.map(line)].join('\n');
}

function countdown(s) {
    const n = Math.max(0, Math.floor(Number(s) || 0));
    return `${Math.floor(n / 60)}:${String(n % 60).padStart(2, '0')}`;
}

/* the nginx_ciba_action entries of a request (or whatever entries it has) */
function details(r) {
    return Array.isArray(r.authorization_details) ? r.authorization_details
        .filter((d) => d && typeof d === 'object') : [];
}

function actionOf(r) {
    const d = details(r);
    const list = (f) => d.map((x) => (Array.isArray(x[f]) ? x[f].map(clean)
        .join(',') : clean(x[f]))).filter((x) => x).join(' ');
    return { action: list('actions'), method: list('method'),
             path: list('path') };
}

function userOf(r) {
    return `${clean(r.login_hint) || '?'} (${clean(r.account) || '?'})`;
}

function describeOne(r) {
    const { action, method, path } = actionOf(r);
    const bm = r.binding_message === null || r.binding_message === undefined
        ? '(no binding message)' : `"${clean(r.binding_message)}"`;
    return `${clean(r.auth_req_id)} for ${userOf(r)}: ${bm}, `
        + `${action || '(no action)'} ${method} ${path}`.trimEnd();
}

function listText(reqs, all) {
    if (reqs.length === 0) {
        return all ? 'no requests' : 'no pending approvals';
    }
    const header = ['ID', 'USER', 'BINDING MESSAGE', 'ACTION', 'METHOD',
                    'PATH', all ? 'STATE' : 'EXPIRES IN'];
    const rows = reqs.map((r) => {
        const a = actionOf(r);
        return [
            cut(clean(r.auth_req_id), 13),
            cut(userOf(r), 28),
            cut(clean(r.binding_message), 40),
            cut(a.action, 24),
            cut(a.method, 8),
            cut(a.path, 40),
            all ? clean(r.state) + (r.state === 'pending'
                ? ` (${countdown(r.expires_in)})` : '')
                : countdown(r.expires_in),
        ];
    });
    return table(header, rows);
}

/* a percent-encoded path decoded (UTF-8), or null when it cannot be */
function decodePath(p) {
    try {
        return decodeURIComponent(p);
    } catch {
        return null;
    }
}

/*
 * an argument value: quoted ("..." with \" and \\) when it is one of
 * several, empty, or has spaces at its ends
 */
function argValue(v, quote) {
    const s = typeof v === 'string' ? v : clean(v);
    return quote || s === '' || /^\s|\s$/u.test(s)
        ? `"${clean(s.replace(/["\\]/g, (c) => `\\${c}`))}"` : clean(s);
}

/*
 * the lines of "args" ({name: value or [values]}): "name = value", a
 * repeated name with its values in order ('name = "v1" | "v2" (2
 * values, ...)')
 */
function argsLines(d) {
    const a = d.args;
    const lines = a && typeof a === 'object' && !Array.isArray(a)
        ? Object.keys(a).map((name) => {
            const values = [a[name]].flat();
            return `${clean(name)} = `
                + values.map((v) => argValue(v, values.length > 1))
                    .join(' | ')
                + (values.length > 1 ? ` (${values.length} values, in `
                    + 'request order)' : '');
        }) : [];
    if (d.args_truncated === true) {
        lines.push('(more arguments not shown: args_truncated; the action '
            + 'digest covers them all)');
    }
    return lines.length ? lines : ['-'];
}

const KNOWN_DETAIL = new Set(['type', 'actions', 'method', 'locations',
    'path', 'args', 'args_truncated', 'body_sha256', 'identifier']);

function showText(r) {
    const out = [
        ['request', clean(r.auth_req_id)],
        ['state', clean(r.state)],
        ['user', userOf(r)],
        ['client', `${clean(r.client_id)} (${clean(r.delivery_mode)} mode)`],
        ['binding message', clean(r.binding_message)],
    ];
    details(r).forEach((d, i) => {
        const n = details(r).length > 1 ? ` ${i + 1}` : '';
        out.push([`type${n}`, clean(d.type)]);
        out.push([`actions${n}`, Array.isArray(d.actions)
            ? d.actions.map(clean).join(', ') : clean(d.actions)]);
        out.push([`method${n}`, clean(d.method)]);
        out.push([`url${n}`, Array.isArray(d.locations)
            ? d.locations.map(clean).join(' ') : clean(d.locations)]);
        out.push([`path${n}`, clean(d.path)]);
        if (typeof d.path === 'string') {
            const decoded = decodePath(d.path);
            if (decoded !== d.path) {
                out.push([`path${n} (decoded)`, decoded === null
                    ? '(not valid percent-encoded UTF-8)' : clean(decoded)]);
            }
        }
        argsLines(d).forEach((line, j) => {
            out.push([j ? '' : `args${n}`, line]);
        });
        out.push([`body sha-256${n}`, clean(d.body_sha256) || '-']);
        out.push([`action digest${n}`, clean(d.identifier)]);
        const other = {};
        for (const k of Object.keys(d).filter((x) => !KNOWN_DETAIL.has(x))) {
            if (typeof d[k] === 'string') {
                out.push([`${clean(k)}${n}`, clean(d[k])]);
            } else {
                other[k] = d[k];
            }
        }
        if (Object.keys(other).length) {
            out.push([`other${n}`, clean(JSON.stringify(other))]);
        }
    });
    if (details(r).length === 0) {
        out.push(['action', '(no authorization_details)']);
    }
    out.push(['scope', clean(r.scope)]);
    out.push(['expires in', r.state === 'pending'
        ? countdown(r.expires_in) : '-']);
    const w = Math.max(...out.map(([k]) => k.length));
    return out.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}


/* ---- the admin API ------------------------------------------------------ */

function asBase(value) {
    const u = URL.parse(value);
    if (!u || !/^https?:$/.test(u.protocol) || u.search || u.hash
        || u.username || u.password) {
        usageError(`--as must be the AS's http(s) base URL, not "${value}"`);
    }
    return u.href.replace(/\/+$/, '');
}

function reachError(base, err) {
    const code = err.cause?.code ?? err.code ?? err.name;
    const why = {
        ECONNREFUSED: 'connection refused',
        ECONNRESET: 'connection reset',
        ENOTFOUND: 'host not found',
        EAI_AGAIN: 'host not found',
        EHOSTUNREACH: 'host unreachable',
        ENETUNREACH: 'network unreachable',
        TimeoutError: 'timed out',
        UND_ERR_CONNECT_TIMEOUT: 'timed out',
        UND_ERR_SOCKET: 'connection closed',
    }[code] ?? clean(err.cause?.message ?? err.message);
    return new Failure(`cannot reach the development AS at ${base}: ${why}`,
                       EXIT_UNREACHABLE);
}

/* the answer's status and JSON body (or a Failure) */
async function call(base, method, path, body) {
    let res;
    try {
        res = await fetch(`${base}${path}`, {
            method,
            headers: {
                Accept: 'application/json',
                ...(body ? { 'Content-Type': 'application/json' } : {}),
            },
            body: body ? JSON.stringify(body) : undefined,
            redirect: 'error',
            signal: AbortSignal.timeout(15000),
        });
    } catch (err) {
        throw reachError(base, err);
    }
    let text;
    try {
        text = await res.text();
    } catch (err) {
        throw reachError(base, err);
    }
    let out;
    try {
        out = JSON.parse(text);
    } catch {
        out = undefined;
    }
    if (out === null || typeof out !== 'object') {
        throw new Failure(`${base}${path} answered ${res.status} without JSON: `
            + 'is this the development AS (tools/dev-as)?');
    }
    return { status: res.status, body: out };
}

function unexpected(base, path, r) {
    const what = r.body.error_description ?? r.body.error ?? '';
    return new Failure(`${base}${path} answered ${r.status}`
        + (what ? `: ${clean(what)}` : '')
        + (r.status === 404 ? ' (is this the development AS, tools/dev-as?)'
            : ''));
}

async function listOf(base, all) {
    const path = all ? '/admin/requests' : '/admin/pending';
    const r = await call(base, 'GET', path);
    const list = r.body[all ? 'requests' : 'pending'];
    if (r.status !== 200 || !Array.isArray(list)) {
        throw unexpected(base, path, r);
    }
    return list.filter((x) => x && typeof x === 'object'
        && typeof x.auth_req_id === 'string');
}

function forUser(user) {
    return (r) => user === undefined || r.login_hint === user
        || r.account === user;
}

/* the full auth_req_id of ID, which may be a unique prefix */
async function resolve(base, id) {
    const all = await listOf(base, true);
    if (all.some((r) => r.auth_req_id === id)) {
        return all.find((r) => r.auth_req_id === id);
    }
    const m = all.filter((r) => r.auth_req_id.startsWith(id));
    if (m.length > 1) {
        usageError(`"${clean(id)}" is ambiguous: it begins ${m.length} `
            + 'request ids (give more of it)');
    }
    /* unknown: the AS says so (404) */
    return m[0] ?? { auth_req_id: id, unknown: true };
}


/* ---- commands ----------------------------------------------------------- */

async function cmdList(base, o, pos) {
    if (pos.length) {
        usageError(`list takes no argument ("${clean(pos[0])}")`);
    }
    const reqs = (await listOf(base, o.all)).filter(forUser(o.user));
    return o.json ? json({ [o.all ? 'requests' : 'pending']: reqs })
                  : listText(reqs, o.all);
}

async function cmdShow(base, o, pos) {
    if (pos.length !== 1) {
        usageError('show takes one request id');
    }
    const r = await resolve(base, pos[0]);
    if (r.unknown) {
        throw new Failure(`no such request: ${clean(pos[0])}`, EXIT_NOT_FOUND);
    }
    return o.json ? json(r) : showText(r);
}

async function decide(base, r, approve) {
    const path = approve ? '/admin/approve' : '/admin/deny';
    const res = await call(base, 'POST', path, { auth_req_id: r.auth_req_id });
    const id = clean(r.auth_req_id);
    const verb = approve ? 'approve' : 'deny';

    if (res.status === 404) {
        throw new Failure(`cannot ${verb} ${id}: no such request at the AS`,
                          EXIT_NOT_FOUND);
    }
    if (res.status === 409) {
        const st = clean(res.body.state ?? 'decided');
        throw new Failure(`cannot ${verb} ${id}: it is not pending any more `
            + `(${st})`, EXIT_NOT_PENDING);
    }
    if (res.status !== 200) {
        throw unexpected(base, path, res);
    }
    return res.body;
}

function decidedText(r, out) {
    let s = `${clean(out.state)}: ${describeOne(r)}`;
    if (out.ping) {
        s += `\nping ${clean(out.ping.url)}: ${clean(out.ping.status
            ?? out.ping.error)}`;
    }
    if (out.ping_error) {
        s += `\nthe ping failed: ${clean(out.ping_error)}`;
    }
    return s;
}

async function cmdDecide(base, o, pos, approve) {
    const verb = approve ? 'approve' : 'deny';
    let r;

    if (o.latest) {
        if (pos.length) {
            usageError(`${verb}: give an id or --latest, not both`);
        }
        const p = (await listOf(base, false)).filter(forUser(o.user));
        if (p.length === 0) {
            throw new Failure('no pending approvals'
                + (o.user !== undefined ? ` for ${clean(o.user)}` : ''),
                EXIT_NOT_FOUND);
        }
        [r] = p;                               /* newest first */
    } else {
        if (pos.length !== 1) {
            usageError(`${verb} takes one request id (or --latest)`);
        }
        r = await resolve(base, pos[0]);
        if (!r.unknown && !forUser(o.user)(r)) {
            throw new Failure(`${clean(r.auth_req_id)} is for ${userOf(r)}, `
                + `not ${clean(o.user)}: not ${approve ? 'approved' : 'denied'}`);
        }
    }

    const out = await decide(base, r, approve);
    return o.json ? json(out) : decidedText(r, out);
}

function sleep(ms) {
    return new Promise((ok) => {
        setTimeout(ok, ms);
    });
}

async function cmdWatch(base, o, pos) {
    if (pos.length) {
        usageError(`watch takes no argument ("${clean(pos[0])}")`);
    }
    if (o.auto !== undefined && o.auto !== 'approve' && o.auto !== 'deny') {
        usageError('--auto must be "approve" or "deny"');
    }
    const every = o.interval === undefined ? 1 : Number(o.interval);
    if (!Number.isFinite(every) || every < 0.1 || every > 3600) {
        usageError('--interval must be from 0.1 to 3600 seconds');
    }
    const max = o.count === undefined ? 0 : Number(o.count);
    if (!Number.isInteger(max) || max < 0) {
        usageError('--count must be a whole number');
    }

    const say = (event, text) => {
        process.stdout.write(o.json ? `${json(event, 0)}\n` : `${text}\n`);
    };
    const seen = new Set();
    let handled = 0;
    let started = false;
    let lost = false;

    for (;;) {
        let pending;
        try {
            pending = (await listOf(base, false)).filter(forUser(o.user));
            if (lost) {
                process.stderr.write(`ciba-approve: ${base} is back\n`);
                lost = false;
            }
        } catch (err) {
            /* once it has answered, a restarting AS is waited for */
            if (err.code !== EXIT_UNREACHABLE || !started) {
                throw err;
            }
            if (!lost) {
                process.stderr.write(`ciba-approve: ${err.message}: `
                    + 'retrying\n');
                lost = true;
            }
            await sleep(every * 1000);
            continue;
        }
        if (!started && !o.json) {
            process.stderr.write(`watching ${base} for pending approvals`
                + (o.user !== undefined ? ` for ${clean(o.user)}` : '')
                + (o.auto ? ` (--auto ${o.auto})` : '')
                + ': Ctrl-C to stop\n');
        }
        started = true;

        /* oldest first, as they came */
        for (const r of pending.reverse()) {
            if (seen.has(r.auth_req_id)) {
                continue;
            }
            seen.add(r.auth_req_id);
            say({ event: 'pending', request: r },
                `${new Date().toLocaleTimeString()} pending: `
                + `${describeOne(r)}, expires in ${countdown(r.expires_in)}`);

            if (o.auto) {
                try {
                    const out = await decide(base, r, o.auto === 'approve');
                    say({ event: out.state, result: out },
                        `${new Date().toLocaleTimeString()} `
                        + `${decidedText(r, out)}`);
                } catch (err) {
                    if (err.code === EXIT_UNREACHABLE) {
                        seen.delete(r.auth_req_id);
                        continue;
                    }
                    say({ event: 'error', auth_req_id: r.auth_req_id,
                          error: err.message },
                        `ciba-approve: ${err.message}`);
                }
            }

            handled++;
            if (max && handled >= max) {
                return undefined;
            }
        }
        await sleep(every * 1000);
    }
}


/* ---- main --------------------------------------------------------------- */

/*
 * auth_req_ids are base64url and may start with "-" or "--": a word that
 * is no option of ours and looks like an id or a prefix of one (8 or more
 * base64url characters, as "list" shows 12) is an argument, not an option
 */
const OPTIONS = new Set(['--as', '--json', '--all', '--latest', '--user',
    '--auto', '--interval', '--count', '--help', '-h', '--']);

function idsAsArguments(argv) {
    const opts = [];
    const ids = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--') {
            ids.push(...argv.slice(i + 1));
            break;
        }
        if (/^-[A-Za-z0-9_-]{7,}$/.test(a) && !OPTIONS.has(a)) {
            ids.push(a);
        } else {
            opts.push(a);
        }
    }
    return ids.length ? [...opts, '--', ...ids] : opts;
}

async function main(argv) {
    let values;
    let positionals;
    try {
        ({ values, positionals } = parseArgs({
            args: idsAsArguments(argv),
            options: {
                as: { type: 'string' },
                json: { type: 'boolean' },
                all: { type: 'boolean' },
                latest: { type: 'boolean' },
                user: { type: 'string' },
                auto: { type: 'string' },
                interval: { type: 'string' },
                count: { type: 'string' },
                help: { type: 'boolean', short: 'h' },
            },
            strict: true,
            allowPositionals: true,
        }));
    } catch (err) {
        usageError(err.message);
    }

    if (values.help) {
        return USAGE;
    }

    const [cmd, ...pos] = positionals;
    if (cmd === undefined) {
        usageError('a command is required: list, show, approve, deny or '
            + 'watch');
    }

    const only = {
        all: ['list'], latest: ['approve', 'deny'],
        user: ['list', 'approve', 'deny', 'watch'],
        auto: ['watch'], interval: ['watch'], count: ['watch'],
    };
    for (const [k, cmds] of Object.entries(only)) {
        if (values[k] !== undefined && !cmds.includes(cmd)) {
            usageError(`--${k} is not an option of "${clean(cmd)}"`);
        }
    }

    const envAs = process.env.CIBA_AS_URL;
    const base = asBase(values.as ?? (envAs ? envAs : DEFAULT_AS));

    switch (cmd) {
    case 'list':
        return cmdList(base, values, pos);
    case 'show':
        return cmdShow(base, values, pos);
    case 'approve':
        return cmdDecide(base, values, pos, true);
    case 'deny':
        return cmdDecide(base, values, pos, false);
    case 'watch':
        return cmdWatch(base, values, pos);
    default:
        return usageError(`unknown command "${clean(cmd)}" (list, show, `
            + 'approve, deny, watch)');
    }
}

/* Ctrl-C ends "watch" quietly */
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => process.exit(0));
}

try {
    const out = await main(process.argv.slice(2));
    if (out !== undefined) {
        process.stdout.write(`${out}\n`);
    }
    process.exitCode = 0;
} catch (err) {
    if (!(err instanceof Failure)) {
        throw err;
    }
    process.stderr.write(`ciba-approve: ${err.message}\n`);
    process.exitCode = err.code;
}
