#!/usr/bin/env node
/*
 * bench.mjs: the benchmarks of ngx_http_ciba_module ("make bench", run by
 * tools/bench/bench.sh, which installs wrk, njs and jose first).
 *
 * Loopback only, ports BENCH_PORT_BASE+1..+7, +30, +31, +51..+57 (default
 * 20401-20457).
 * Every nginx runs one worker pinned with its master to CPU 0 (taskset),
 * the external validator too (all server-side work on one core); wrk runs
 * on CPU 1.  Each figure is measured BENCH_ROUNDS times, the variants of a
 * round in a rotated order with the baseline run three times per round,
 * and reported as the median over the rounds of its ratio to the same
 * round's baseline (the median of that round's baseline runs), so that
 * the noise of a busy machine falls on both sides of each comparison.
 *
 * nginx instances (each with its own upstream server block, returning a
 * fixed body, reached through a keepalive upstream):
 *   base  stock nginx, no module: the baseline proxy
 *   off   the module loaded, "ciba off"
 *   main  the module and njs loaded: unprotected /api/ (protected locations
 *         present but not hit), /es/ and /rs/ (single-use tokens), /pend/
 *         (CIBA poll mode against the mock AS, which never approves),
 *         /njs/ (the njs peer), /ext/ (auth_request to the jose validator)
 *   mem   zone fills (1m and 2m zones) for the memory figures
 * and then base, off and main once more, each as one process under
 * valgrind's callgrind, for exact instruction counts per request.
 *
 * Environment:
 *   BENCH_DURATION     seconds per run (default 10)
 *   BENCH_ROUNDS       rounds (default 3)
 *   BENCH_CONNECTIONS  wrk connections (default 16)
 *   BENCH_THREADS      wrk threads (default 1)
 *   BENCH_PORT_BASE    default 20400
 *   BENCH_OUT          output directory (default build/bench)
 *   BENCH_ONLY         comma-separated variant ids (development)
 *   BENCH_SKIP_MEMORY  1: no zone fills
 *   BENCH_CALLGRIND    0: no instruction counts under valgrind
 *   BENCH_NICE         niceness of the measured processes (default 0)
 *   BENCH_KEEP_TOKENS  1: keep the token files (build/bench/run/tokens)
 *   CIBA_NGINX         nginx binary (default /usr/sbin/nginx)
 *   CIBA_MODULE        the module (default build/ngx_http_ciba_module.so)
 *   NJS_MODULE         default /usr/lib/nginx/modules/ngx_http_js_module.so
 *
 * Output: build/bench/results.md and results.json (printed at the end);
 * the nginx configurations and logs stay under build/bench/run/.  Exits 1
 * when a correctness check failed (an unexpected status, a socket error,
 * tokens running out, a replay admitted, the AS asked more than once),
 * not when a performance target is missed (that is reported).
 */

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync,
         randomFillSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync,
         rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { mintFile, requestDigest } from './mint.mjs';


/* ---- settings ------------------------------------------------------------ */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');

function envInt(name, def, min, max) {
    const v = process.env[name];
    if (v === undefined || v === '') {
        return def;
    }
    if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
        die(`${name} must be an integer from ${min} to ${max}`);
    }
    return Number(v);
}

function die(msg) {
    process.stderr.write(`bench: ${msg}\n`);
    process.exit(2);
}

function log(msg) {
    process.stderr.write(`==> ${msg}\n`);
}

const CFG = {
    duration: envInt('BENCH_DURATION', 10, 1, 600),
    rounds: envInt('BENCH_ROUNDS', 3, 1, 50),
    conns: envInt('BENCH_CONNECTIONS', 16, 1, 1000),
    threads: envInt('BENCH_THREADS', 1, 1, 64),
    portBase: envInt('BENCH_PORT_BASE', 20400, 1024, 65000),
    out: resolve(process.env.BENCH_OUT || join(ROOT, 'build/bench')),
    only: (process.env.BENCH_ONLY || '').split(',').filter(Boolean),
    skipMemory: process.env.BENCH_SKIP_MEMORY === '1',
    nice: Number(process.env.BENCH_NICE || 0),
    callgrind: process.env.BENCH_CALLGRIND !== '0',
    nginx: process.env.CIBA_NGINX || process.env.NGINX_BIN
           || '/usr/sbin/nginx',
    module: resolve(process.env.CIBA_MODULE
                    || join(ROOT, 'build/ngx_http_ciba_module.so')),
    njs: process.env.NJS_MODULE
         || '/usr/lib/nginx/modules/ngx_http_js_module.so',
};

if (!Number.isInteger(CFG.nice) || CFG.nice < -20 || CFG.nice > 19) {
    die('BENCH_NICE must be an integer from -20 to 19');
}

if (CFG.threads > CFG.conns) {
    die('BENCH_THREADS must not exceed BENCH_CONNECTIONS');
}

const RUN = join(CFG.out, 'run');
const PB = CFG.portBase;
const PORT = {
    base: PB + 1, off: PB + 2, main: PB + 3, mem: PB + 4,
    upBase: PB + 51, upOff: PB + 52, upMain: PB + 53, upMem: PB + 54,
    as: PB + 30, validator: PB + 31,
    /* the instances under callgrind, while the others still run */
    cgBase: PB + 5, cgOff: PB + 6, cgMain: PB + 7,
    cgUpBase: PB + 55, cgUpOff: PB + 56, cgUpMain: PB + 57,
};

const NCPU = os.availableParallelism();
const PIN = NCPU >= 2;
const SERVER_CPU = '0';
const CLIENT_CPU = '1';

const ISS = 'https://as.bench';
const AUD = 'https://tools.bench';
const LEEWAY = 1;
const MAX_AGE = 3600;
/*
 * The main zone's ciba_token_max_age: longer than the approved runs'
 * tokens live (see "expiry slots" in main()), so that their exp, not
 * their iat, sets when their records expire.
 */
const ZONE_MAX_AGE = 4 * 3600;
const USER = 'bench-user';
const CG_USER = 'callgrind-user';
const BASIC = 'Basic ' + Buffer.from('poll-client:poll-secret')
    .toString('base64');

/* the request of every run: only the location prefix differs */
const REQ = {
    method: 'POST',
    query: 'order=A17&amount=30',
    body: '{"order":"A17","amount":30,"currency":"EUR"}',
    type: 'application/json',
};
const UPSTREAM_BODY = '{"status":"ok","refund":"queued"}';

function target(prefix, query = REQ.query) {
    return `/${prefix}/refund?${query}`;
}


/* ---- processes ----------------------------------------------------------- */

const children = new Set();

/* [cmd, args] running cmd on the given CPU (and niceness, BENCH_NICE) */
function pinned(cpu, cmd, args) {
    const argv = [...(PIN ? ['taskset', '-c', cpu] : []),
                  ...(CFG.nice !== 0 ? ['nice', '-n', String(CFG.nice)] : []),
                  cmd, ...args];
    return [argv[0], argv.slice(1)];
}

/* a command line as text, paths under the repository made relative */
function shown(cmd, args) {
    return [cmd, ...args].map((a) => (a.startsWith(`${ROOT}/`)
        ? relative(ROOT, a) : a)).join(' ');
}

function startChild(name, cmd, args, opts = {}) {
    const p = spawn(cmd, args, {
        stdio: ['ignore', opts.stdout ?? 'ignore', opts.stderr ?? 'inherit'],
        env: opts.env ?? process.env,
    });
    p.benchName = name;
    p.stopSignal = opts.stopSignal ?? 'SIGTERM';
    p.exited = new Promise((res) => {
        p.once('exit', (code, sig) => {
            children.delete(p);
            res({ code, sig });
        });
    });
    p.once('error', (e) => log(`${name}: ${e.message}`));
    children.add(p);
    return p;
}

async function stopChild(p, timeoutMs = 10000) {
    if (!children.has(p)) {
        return;
    }
    p.kill(p.stopSignal);
    const t = sleep(timeoutMs).then(() => 'timeout');
    if (await Promise.race([p.exited, t]) === 'timeout') {
        log(`${p.benchName} (pid ${p.pid}) did not stop: SIGKILL`);
        p.kill('SIGKILL');
        await p.exited;
    }
}

async function stopAll() {
    await Promise.all([...children].map((p) => stopChild(p)));
}

process.on('exit', () => {
    for (const p of children) {
        /* nginx: SIGTERM makes the master stop its workers at once */
        try {
            p.kill('SIGTERM');
        } catch {
            /* gone already */
        }
    }
});

for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        log(`${sig}: stopping`);
        stopAll().finally(() => process.exit(130));
    });
}

/* waits for a line on the child's stdout matching re */
function waitLine(p, re, timeoutMs) {
    return new Promise((res, rej) => {
        let buf = '';
        const timer = setTimeout(() => rej(new Error(
            `${p.benchName}: no "${re}" within ${timeoutMs} ms`)), timeoutMs);
        p.stdout.on('data', (d) => {
            buf += d;
            const m = re.exec(buf);
            if (m) {
                clearTimeout(timer);
                res(m);
            }
        });
        p.exited.then(() => {
            clearTimeout(timer);
            rej(new Error(`${p.benchName} exited`));
        });
    });
}

function portOpen(port) {
    return new Promise((res) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
            s.destroy();
            res(true);
        });
        s.once('error', () => res(false));
    });
}

async function waitPort(port, p, timeoutMs = 10000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
        if (!children.has(p)) {
            return false;
        }
        if (await portOpen(port)) {
            return true;
        }
        await sleep(50);
    }
    return false;
}

async function freePort(port) {
    if (await portOpen(port)) {
        die(`port ${port} is in use (BENCH_PORT_BASE selects the range)`);
    }
}

function run(cmd, args, opts = {}) {
    return execFileSync(cmd, args, { encoding: 'utf8', ...opts });
}

/* a command's output, stdout and stderr together (nginx -v uses stderr) */
function tryRun(cmd, args, anyStatus = false) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const out = `${r.stdout || ''}${r.stderr || ''}`.trim();
    return (r.status === 0 || anyStatus) && out ? out : `(${cmd} failed)`;
}


/* ---- CPU time of the server processes ------------------------------------ */

const CLK_TCK = Number(tryRun('getconf', ['CLK_TCK'])) || 100;

function procStat(pid) {
    try {
        const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        /* fields 4 (ppid), 14 (utime), 15 (stime); f[0] is field 3 */
        return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
    } catch {
        return null;
    }
}

/* the pids of a master's workers */
function workers(master) {
    return readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d))
        .filter((d) => {
            const st = procStat(d);
            return st !== null && st.ppid === master;
        }).map(Number);
}

/* per CPU: [busy, total] jiffies from /proc/stat (busy: not idle/iowait) */
function cpuTimes() {
    const out = {};
    for (const l of readFileSync('/proc/stat', 'utf8').split('\n')) {
        const m = /^cpu([0-9]+)\s+(.*)$/.exec(l);
        if (m) {
            const f = m[2].trim().split(/\s+/).map(Number);
            const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
            out[m[1]] = [total - f[3] - f[4], total];
        }
    }
    return out;
}

/* the busy fraction of a CPU between two cpuTimes() */
function busy(a, b, cpu) {
    if (!a[cpu] || !b[cpu] || b[cpu][1] === a[cpu][1]) {
        return NaN;
    }
    return (b[cpu][0] - a[cpu][0]) / (b[cpu][1] - a[cpu][1]);
}

/* user + system CPU seconds of these processes (all their threads) */
function cpuSeconds(pids) {
    let t = 0;
    for (const pid of pids) {
        const st = procStat(pid);
        if (st !== null) {
            t += st.ticks;
        }
    }
    return t / CLK_TCK;
}


/* ---- HTTP ---------------------------------------------------------------- */

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function request(port, method, path, { headers = {}, body, fresh } = {}) {
    return new Promise((res, rej) => {
        const h = { ...headers };
        if (body !== undefined) {
            h['Content-Length'] = Buffer.byteLength(body);
        }
        /* fresh: a connection of its own (a Node server closes idle
           keepalive connections after 5 s, racing a reuse) */
        const q = http.request({ host: '127.0.0.1', port, method, path,
                                 headers: h, agent: fresh ? false : agent },
                               (r) => {
            const chunks = [];
            r.on('data', (c) => chunks.push(c));
            r.on('end', () => {
                const text = Buffer.concat(chunks).toString();
                let json = null;
                try {
                    json = JSON.parse(text);
                } catch {
                    json = null;
                }
                res({ status: r.statusCode, headers: r.headers, body: text,
                      json });
            });
            r.on('error', rej);
        });
        q.setTimeout(15000, () => q.destroy(new Error('timeout')));
        q.on('error', rej);
        q.end(body);
    });
}

/* the bench request to a location, with the given extra headers */
function benchRequest(port, prefix, headers = {}, query = REQ.query) {
    return request(port, REQ.method, target(prefix, query), {
        headers: { 'Content-Type': REQ.type, ...headers },
        body: REQ.body,
    });
}

async function asCall(method, path, data) {
    const r = await request(PORT.as, method, path, {
        headers: { 'Content-Type': 'application/json' },
        body: data === undefined ? undefined : JSON.stringify(data),
        fresh: true,
    });
    if (r.status !== 200) {
        throw new Error(`mock AS ${method} ${path}: ${r.status} ${r.body}`);
    }
    return r.json;
}


/* ---- checks -------------------------------------------------------------- */

const problems = [];

function check(ok, what) {
    if (!ok) {
        problems.push(what);
        log(`CHECK FAILED: ${what}`);
    }
    return ok;
}

function answerIs(r, status, error, what, reason) {
    let ok = r.status === status;
    if (error !== undefined) {
        ok = ok && r.json !== null && r.json.error === error;
    }
    if (reason !== undefined) {
        ok = ok && r.json !== null && r.json.reason === reason;
    }
    return check(ok, `${what}: expected ${status}`
                 + `${error ? ' ' + error : ''}${reason ? '/' + reason : ''}`
                 + `, got ${r.status} ${r.body.slice(0, 200)}`);
}


/* ---- keys and configuration ---------------------------------------------- */

function makeKeys(dir) {
    mkdirSync(dir, { recursive: true });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keys = {};
    for (const [name, kp, kid, alg] of [['ec', ec, 'ec1', 'ES256'],
                                         ['rsa', rsa, 'rsa1', 'RS256']]) {
        const priv = kp.privateKey.export({ type: 'pkcs8', format: 'pem' });
        const pub = kp.publicKey.export({ type: 'spki', format: 'pem' });
        writeFileSync(join(dir, `${name}.key`), priv, { mode: 0o600 });
        writeFileSync(join(dir, `${name}.pub`), pub);
        keys[alg] = {
            kid, alg, priv, pub, pubFile: join(dir, `${name}.pub`),
            der: createPublicKey(pub).export({ type: 'spki', format: 'der' })
                .toString('base64'),
        };
    }
    return keys;
}

function mainHead(root, modules) {
    const lines = modules.map((m) => `load_module ${m};`);
    if (process.getuid && process.getuid() === 0) {
        lines.push('user root;');
    }
    lines.push(
        'worker_processes 1;',
        'daemon off;',
        'master_process on;',
        `error_log ${root}/logs/error.log warn;`,
        `pid ${root}/logs/nginx.pid;`,
        'events {',
        '    worker_connections 4096;',
        '    accept_mutex off;',
        '}',
    );
    return lines.join('\n') + '\n';
}

function httpHead(root, up) {
    const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((t) => `    ${t}_temp_path ${root}/${t}_temp;`).join('\n');
    return `
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
${temps}

    upstream tool_api {
        server 127.0.0.1:${up};
        keepalive 32;
        keepalive_requests 1000000;
    }

    # the tool API: a fixed body
    server {
        listen 127.0.0.1:${up};
        location / {
            return 200 '${UPSTREAM_BODY}\\n';
        }
    }
`;
}

function frontServer(port, locations) {
    return `
    server {
        listen 127.0.0.1:${port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Approval-Token "";
${locations}
    }
`;
}

function tokenLocation(prefix, key) {
    return `
        location /${prefix}/ {
            ciba on;
            ciba_action refund;
            ciba_issuer ${ISS};
            ciba_audience ${AUD};
            ciba_key_file ${key.pubFile} kid=${key.kid};
            proxy_pass http://tool_api;
        }
`;
}

function pendLocations(maxPending) {
    return `
        location /pend/ {
            ciba on;
            ciba_action refund;
            ciba_backchannel_endpoint /_as/bc;
            ciba_token_endpoint /_as/token;
            ciba_login_hint $http_x_user;
            ciba_requested_expiry 3600s;
            ciba_max_pending ${maxPending};
            proxy_pass http://tool_api;
        }

        location = /_as/bc {
            internal;
            proxy_pass http://127.0.0.1:${PORT.as}/bc-authorize;
            proxy_set_header Authorization "${BASIC}";
            proxy_read_timeout 5s;
        }

        location = /_as/token {
            internal;
            proxy_pass http://127.0.0.1:${PORT.as}/token;
            proxy_set_header Authorization "${BASIC}";
            proxy_read_timeout 5s;
        }
`;
}

function writeConf(root, text) {
    for (const d of ['conf', 'logs']) {
        mkdirSync(join(root, d), { recursive: true });
    }
    writeFileSync(join(root, 'conf/nginx.conf'), text);
    return join(root, 'conf/nginx.conf');
}

function confBase(root) {
    return writeConf(root, mainHead(root, []) + 'http {\n'
        + httpHead(root, PORT.upBase)
        + frontServer(PORT.base, `
        location /api/ {
            proxy_pass http://tool_api;
        }
`) + '}\n');
}

function confOff(root) {
    return writeConf(root, mainHead(root, [CFG.module]) + 'http {\n'
        + httpHead(root, PORT.upOff)
        + frontServer(PORT.off, `
        location /api/ {
            ciba off;
            proxy_pass http://tool_api;
        }
`) + '}\n');
}

function confMain(root, keys) {
    mkdirSync(join(root, 'conf'), { recursive: true });
    copyFileSync(join(HERE, 'peer.js'), join(root, 'conf/peer.js'));
    const njsKeys = {};
    for (const k of Object.values(keys)) {
        njsKeys[k.kid] = { alg: k.alg, der: k.der };
    }
    writeFileSync(join(root, 'conf/bench_keys.js'), 'export default '
        + JSON.stringify({ iss: ISS, aud: AUD, leeway: LEEWAY,
                           max_age: MAX_AGE, keys: njsKeys }, null, 1)
        + ';\n');

    return writeConf(root, mainHead(root, [CFG.module, CFG.njs]) + 'http {\n'
        + httpHead(root, PORT.upMain) + `
    ciba_zone bench:256m;
    ciba_leeway ${LEEWAY}s;
    ciba_token_max_age ${ZONE_MAX_AGE}s;

    js_path ${root}/conf/;
    js_import peer from ${root}/conf/peer.js;

    upstream validator {
        server 127.0.0.1:${PORT.validator};
        keepalive 32;
        keepalive_requests 1000000;
    }
` + frontServer(PORT.main, `
        # not protected (the protected locations below are not hit)
        location /api/ {
            proxy_pass http://tool_api;
        }
${tokenLocation('es', keys.ES256)}${tokenLocation('rs', keys.RS256)}
${pendLocations(5)}
        # peer: njs, WebCrypto
        location /njs/ {
            js_content peer.verify;
        }

        location @backend {
            proxy_pass http://tool_api;
        }

        # peer: auth_request to the external validator (Node, jose)
        location /ext/ {
            auth_request /_ext_auth;
            proxy_pass http://tool_api;
        }

        location = /_ext_auth {
            internal;
            proxy_pass http://validator;
            proxy_pass_request_body off;
            proxy_http_version 1.1;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
        }
`) + '}\n');
}

function confMem(root, keys, size) {
    return writeConf(root, mainHead(root, [CFG.module]) + 'http {\n'
        + httpHead(root, PORT.upMem) + `
    ciba_zone mem:${size};
    ciba_leeway ${LEEWAY}s;
    ciba_token_max_age ${MAX_AGE}s;
` + frontServer(PORT.mem, `${tokenLocation('es', keys.ES256)}
${pendLocations(1000000)}`) + '}\n');
}

async function startNginx(name, root, conf, port) {
    for (const d of ['client_body_temp', 'proxy_temp', 'fastcgi_temp',
                     'uwsgi_temp', 'scgi_temp']) {
        mkdirSync(join(root, d), { recursive: true });
    }
    const errlog = join(root, 'logs/error.log');
    const [cmd, args] = pinned(SERVER_CPU, CFG.nginx,
                               ['-p', `${root}/`, '-c', conf, '-e', errlog]);
    const p = startChild(`nginx ${name}`, cmd, args, { stopSignal: 'SIGQUIT' });
    if (!await waitPort(port, p)) {
        let tail = '';
        try {
            tail = readFileSync(errlog, 'utf8').split('\n').slice(-10)
                .join('\n');
        } catch {
            tail = '(no error log)';
        }
        await stopChild(p);
        throw new Error(`nginx ${name} did not start:\n${tail}`);
    }
    p.root = root;
    p.startedAt = Date.now();
    return p;
}

/* until the zone's start plus the leeway is past, tokens are refused */
async function afterLeeway(p) {
    const wait = p.startedAt + (LEEWAY + 1.2) * 1000 - Date.now();
    if (wait > 0) {
        await sleep(wait);
    }
}

function logProblems(p) {
    const errlog = join(p.root, 'logs/error.log');
    let text = '';
    try {
        text = readFileSync(errlog, 'utf8');
    } catch {
        return [];
    }
    return text.split('\n').filter((l) =>
        /\[(alert|crit|emerg)\]|exited on signal|AddressSanitizer/.test(l));
}


/* ---- wrk ----------------------------------------------------------------- */

const commands = [];

/* port -> the nginx master serving it; "validator" -> the validator */
const SERVERS = {};

async function wrk(v, duration, tokens) {
    const env = {
        ...process.env,
        BENCH_METHOD: REQ.method,
        BENCH_PATH: v.path,
        BENCH_BODY: REQ.body,
        BENCH_HEADERS: Object.entries({ 'Content-Type': REQ.type,
                                        ...(v.headers || {}) })
            .map(([k, x]) => `${k}: ${x}`).join('\n'),
        BENCH_THREADS: String(CFG.threads),
        BENCH_TOKENS: tokens ? tokens.file : '',
        BENCH_TOKEN_MODE: tokens ? tokens.mode : '',
    };
    const wargs = [`-t${CFG.threads}`, `-c${CFG.conns}`, `-d${duration}s`,
                   '--latency', '-s', join(HERE, 'bench.lua'),
                   `http://127.0.0.1:${v.port}`];
    const [cmd, args] = pinned(CLIENT_CPU, 'wrk', wargs);
    const pids = [...workers(SERVERS[v.port].pid),
                  ...(v.validator ? [SERVERS.validator.pid] : [])];
    const cpu0 = cpuSeconds(pids);
    const sys0 = cpuTimes();
    const p = startChild(`wrk ${v.id}`, cmd, args, { stdout: 'pipe', env });
    let out = '';
    p.stdout.on('data', (d) => {
        out += d;
    });
    const { code } = await p.exited;
    const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
    if (code !== 0 || !line) {
        throw new Error(`wrk for ${v.id} failed (exit ${code}):\n${out}`);
    }
    const r = JSON.parse(line.slice('BENCH_RESULT '.length));
    r.rps = r.requests / (r.duration_us / 1e6);
    r.server_cpu_s = cpuSeconds(pids) - cpu0;
    const sys1 = cpuTimes();
    r.server_cpu_busy = busy(sys0, sys1, PIN ? SERVER_CPU : '0');
    r.client_cpu_busy = busy(sys0, sys1, PIN ? CLIENT_CPU : '0');
    r.wrk_cpu_share = r.wrk_cpu_ticks / CLK_TCK / (r.duration_us / 1e6);
    r.cpu_us = r.server_cpu_s * 1e6 / r.requests;
    r.cpu_share = r.server_cpu_s / (r.duration_us / 1e6);
    r.command = [
        ...Object.entries({ BENCH_PATH: v.path,
                            BENCH_HEADERS: env.BENCH_HEADERS.replace(
                                /\n/g, '\\n'),
                            BENCH_TOKENS: tokens ? relative(ROOT, tokens.file)
                                                 : undefined,
                            BENCH_TOKEN_MODE: tokens ? tokens.mode
                                                     : undefined })
            .filter(([, x]) => x !== undefined)
            .map(([k, x]) => `${k}='${x}'`),
        shown(cmd, args),
    ].join(' ');
    return r;
}

/* checks a run's statuses: all of them the expected one */
function checkRun(v, r, label) {
    const statuses = r.statuses;
    const total = Object.values(statuses).reduce((a, b) => a + b, 0);
    const good = statuses[String(v.expect)] ?? 0;
    const sock = r.errors.connect + r.errors.read + r.errors.write
                 + r.errors.timeout;
    let ok = check(total > 0 && good === total,
                   `${label}: expected every answer ${v.expect}, got `
                   + JSON.stringify(statuses));
    ok = check(sock === 0, `${label}: socket errors `
               + JSON.stringify(r.errors)) && ok;
    if (v.tokens === 'once') {
        ok = check(r.exhausted === 0, `${label}: the tokens ran out `
                   + `(${r.exhausted} requests without one)`) && ok;
        ok = check(good <= r.tokens_sent, `${label}: more admitted `
                   + `(${good}) than tokens sent (${r.tokens_sent})`) && ok;
    }
    return ok;
}


/* ---- openssl speed ------------------------------------------------------- */

function opensslVerify(alg) {
    const what = alg === 'ES256' ? 'ecdsap256' : 'rsa2048';
    const args = ['speed', '-seconds', '3', what];
    const [cmd, a] = pinned(SERVER_CPU, 'openssl', args);
    const out = run(cmd, a, { stdio: ['ignore', 'pipe', 'ignore'] });
    const re = alg === 'ES256' ? /^\s*256 bits ecdsa \(nistp256\).*$/m
                               : /^rsa 2048 bits.*$/m;
    const m = re.exec(out);
    if (!m) {
        throw new Error(`cannot parse openssl speed ${what}:\n${out}`);
    }
    const nums = m[0].trim().split(/\s+/);
    const verifyPerS = Number(nums[nums.length - 1]);
    const cmdline = shown(cmd, a);
    if (!commands.includes(cmdline)) {
        commands.push(cmdline);
    }
    return { verify_per_s: verifyPerS, verify_us: 1e6 / verifyPerS };
}


/* ---- statistics ---------------------------------------------------------- */

function median(xs) {
    const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
    if (a.length === 0) {
        return NaN;
    }
    const m = Math.floor(a.length / 2);
    return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

function rotate(a, k) {
    const n = a.length;
    return a.map((_, i) => a[(i + k) % n]);
}


/* ---- the variants -------------------------------------------------------- */

function variants(state) {
    const list = [
        { id: 'base', label: 'baseline: nginx proxy to a keepalive upstream '
          + '(no module)', port: PORT.base, path: target('api'), expect: 200 },
        { id: 'base_es256tok', label: 'baseline, each request carrying an '
          + 'ES256 token (nothing reads it)', port: PORT.base,
          path: target('api'), expect: 200, tokens: 'cycle', alg: 'ES256' },
        { id: 'base_rs256tok', label: 'baseline, each request carrying an '
          + 'RS256 token (nothing reads it)', port: PORT.base,
          path: target('api'), expect: 200, tokens: 'cycle', alg: 'RS256' },
        { id: 'off', label: 'module loaded, `ciba off`', port: PORT.off,
          path: target('api'), expect: 200, target: 0.99 },
        { id: 'nothit', label: 'module loaded, protected locations present '
          + 'but not hit', port: PORT.main, path: target('api'), expect: 200,
          target: 0.99 },
        { id: 'pend_handle', label: 'pending: retries with the handle '
          + '(answered from the zone)', port: PORT.main, path: target('pend'),
          headers: () => ({ 'X-User': USER,
                            'Approval-Handle': state.handle }),
          expect: 401, target: 0.70 },
        { id: 'pend_bare', label: 'pending: retries without the handle '
          + '(same subject and request)', port: PORT.main,
          path: target('pend'), headers: () => ({ 'X-User': USER }),
          expect: 401, target: 0.70 },
        { id: 'es256', label: 'approved: unique single-use ES256 tokens',
          port: PORT.main, path: target('es'), expect: 200, tokens: 'once',
          alg: 'ES256', over: 'base_es256tok' },
        { id: 'rs256', label: 'approved: unique single-use RS256 tokens',
          port: PORT.main, path: target('rs'), expect: 200, tokens: 'once',
          alg: 'RS256', over: 'base_rs256tok' },
        { id: 'malformed', label: 'flood: malformed tokens', port: PORT.main,
          path: target('es'), expect: 401, tokens: 'cycle',
          file: () => state.malformedFile, target: 0.80 },
        { id: 'replayed', label: 'flood: replayed tokens (ES256, used)',
          port: PORT.main, path: target('es'), expect: 403, tokens: 'cycle',
          file: () => state.replayFile, target: 0.80 },
        { id: 'forged', label: 'flood: forged signatures (ES256, fresh jti)',
          port: PORT.main, path: target('es'), expect: 401, tokens: 'cycle',
          file: () => state.forgedFile },
        { id: 'njs_es256', label: 'peer: njs WebCrypto, ES256 (no binding, '
          + 'not single use)', port: PORT.main, path: target('njs'),
          expect: 200, tokens: 'cycle', alg: 'ES256', peer: 'es256' },
        { id: 'njs_rs256', label: 'peer: njs WebCrypto, RS256 (no binding, '
          + 'not single use)', port: PORT.main, path: target('njs'),
          expect: 200, tokens: 'cycle', alg: 'RS256', peer: 'rs256' },
        { id: 'ext_es256', label: 'peer: auth_request to Node+jose, ES256 '
          + '(no binding, not single use)', port: PORT.main,
          path: target('ext'), expect: 200, tokens: 'cycle', alg: 'ES256',
          peer: 'es256', validator: true },
        { id: 'ext_rs256', label: 'peer: auth_request to Node+jose, RS256 '
          + '(no binding, not single use)', port: PORT.main,
          path: target('ext'), expect: 200, tokens: 'cycle', alg: 'RS256',
          peer: 'rs256', validator: true },
    ];
    if (CFG.only.length === 0) {
        return list;
    }
    return list.filter((v) => v.id === 'base' || CFG.only.includes(v.id));
}


/* ---- tokens -------------------------------------------------------------- */

let mintSeq = 0;

async function mint(keys, alg, count, prefix, extra = {}) {
    const file = join(RUN, 'tokens', `${alg}-${prefix}-${++mintSeq}.tok`);
    mkdirSync(dirname(file), { recursive: true });
    const t0 = Date.now();
    const digest = requestDigest({ action: 'refund', method: REQ.method,
                                   url: target(prefix), body: REQ.body });
    const iat = Math.floor(Date.now() / 1000);
    const { exp, ...more } = extra;
    await mintFile({
        out: file, count, alg, keyPem: keys[alg].priv, kid: keys[alg].kid,
        digest, action: 'refund', iss: ISS, aud: AUD, sub: USER, iat,
        ttl: exp === undefined ? MAX_AGE : exp - iat, ...more,
    });
    const ms = Date.now() - t0;
    log(`minted ${count} ${alg} tokens for /${prefix}/ in ${ms} ms`);
    return { file, count, ms, exp: extra.exp };
}

function malformedTokens(keys) {
    const b = (s) => Buffer.from(s).toString('base64url');
    const hdr = b(JSON.stringify({ alg: 'ES256', typ: 'JWT',
                                   kid: keys.ES256.kid }));
    const none = b(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const claims = b(JSON.stringify({ iss: ISS, aud: AUD, jti: 'x', iat: 1,
                                      exp: 2 }));
    return [
        'not-a-jwt',
        'a.b',
        `${hdr}.${claims}`,
        `${hdr}.${claims}.`,
        `${hdr}.${claims}.a+b/c==`,
        `${b('{"alg":')}.${claims}.c2ln`,
        `${hdr}.${b('[1,2,3]')}.c2ln`,
        `${none}.${claims}.`,
        `${none}.${claims}.c2ln`,
        `${hdr}.${b('{"iss":"a","iss":"b"}')}.c2ln`,
        `${b('{"alg":"HS256","kid":"ec1"}')}.${claims}.c2ln`,
        `${hdr}.${claims}.${'A'.repeat(86)}x`,
    ];
}


/* ---- phases -------------------------------------------------------------- */

async function preflight(state, keys) {
    log('preflight: one request per figure, answers checked');

    for (const [port, what] of [[PORT.base, 'baseline'], [PORT.off, 'off'],
                                [PORT.main, 'not hit']]) {
        const r = await benchRequest(port, 'api');
        check(r.status === 200 && r.body.trim() === UPSTREAM_BODY,
              `${what}: expected 200 and the upstream's body, got `
              + `${r.status} ${r.body.slice(0, 200)}`);
    }

    /* single use on both algorithms */
    for (const [alg, prefix] of [['ES256', 'es'], ['RS256', 'rs']]) {
        const t = await mint(keys, alg, 2, prefix);
        const [t1, t2] = readFileSync(t.file, 'utf8').trim().split('\n');
        let r = await benchRequest(PORT.main, prefix, { 'Approval-Token': t1 });
        check(r.status === 200 && r.body.trim() === UPSTREAM_BODY,
              `${alg} token: expected 200, got ${r.status} ${r.body}`);
        r = await benchRequest(PORT.main, prefix, { 'Approval-Token': t1 });
        answerIs(r, 403, 'approval_replayed', `${alg} replay`, 'jti_replayed');
        r = await benchRequest(PORT.main, prefix, { 'Approval-Token': t2 },
                               'order=A18&amount=30');
        answerIs(r, 403, 'approval_mismatch', `${alg} other request`,
                 'digest_mismatch');
        r = await benchRequest(PORT.main, 'njs', { 'Approval-Token': t1 });
        check(r.status === 200 && r.body.trim() === UPSTREAM_BODY,
              `njs peer, ${alg}: expected 200, got ${r.status} ${r.body}`);
        r = await benchRequest(PORT.main, 'ext', { 'Approval-Token': t1 });
        check(r.status === 200 && r.body.trim() === UPSTREAM_BODY,
              `ext peer, ${alg}: expected 200, got ${r.status} ${r.body}`);
    }

    /* the floods' tokens */
    const bad = malformedTokens(keys);
    state.malformedFile = join(RUN, 'tokens/malformed.tok');
    writeFileSync(state.malformedFile, bad.join('\n') + '\n');
    for (const t of bad) {
        const r = await benchRequest(PORT.main, 'es', { 'Approval-Token': t });
        answerIs(r, 401, 'invalid_approval',
                 `malformed token ${t.slice(0, 40)}`);
    }

    const forged = await mint(keys, 'ES256', 1000, 'es', { corrupt: true });
    state.forgedFile = forged.file;
    const f1 = readFileSync(forged.file, 'utf8').split('\n')[0];
    for (const [prefix, what] of [['es', 'module'], ['njs', 'njs peer'],
                                  ['ext', 'ext peer']]) {
        const r = await benchRequest(PORT.main, prefix,
                                     { 'Approval-Token': f1 });
        if (prefix === 'es') {
            answerIs(r, 401, 'invalid_approval', `forged token, ${what}`,
                     'bad_signature');
        } else {
            check(r.status === 401, `forged token, ${what}: expected 401, `
                  + `got ${r.status}`);
        }
    }

    /* the replay set: each admitted exactly once, here */
    const replay = await mint(keys, 'ES256', 1000, 'es');
    state.replayFile = replay.file;
    const rtoks = readFileSync(replay.file, 'utf8').trim().split('\n');
    let admitted = 0;
    for (let i = 0; i < rtoks.length; i += 50) {
        const rs = await Promise.all(rtoks.slice(i, i + 50).map((t) =>
            benchRequest(PORT.main, 'es', { 'Approval-Token': t })));
        admitted += rs.filter((r) => r.status === 200).length;
    }
    check(admitted === rtoks.length, `replay set: ${admitted} of `
          + `${rtoks.length} fresh tokens admitted`);
    const again = await benchRequest(PORT.main, 'es',
                                     { 'Approval-Token': rtoks[0] });
    answerIs(again, 403, 'approval_replayed', 'replay set, again');

    /* the pending approval: asked once, then answered from the zone */
    let r = await benchRequest(PORT.main, 'pend', { 'X-User': USER });
    answerIs(r, 401, 'approval_pending', 'pending, first request', 'asked');
    state.handle = r.json && r.json.approval_handle;
    check(typeof state.handle === 'string' && state.handle.length > 0,
          'pending: the answer carries an approval_handle');
    r = await benchRequest(PORT.main, 'pend', {
        'X-User': USER, 'Approval-Handle': state.handle });
    answerIs(r, 401, 'approval_pending', 'pending, with the handle', 'not_yet');
    r = await benchRequest(PORT.main, 'pend', { 'X-User': USER });
    answerIs(r, 401, 'approval_pending', 'pending, bare retry', 'not_yet');
    check(r.json && r.json.approval_handle === state.handle,
          'pending: a bare retry gets the same handle');
    const seen = await asCall('GET', '/_admin/requests');
    check((seen.counts['/bc-authorize'] ?? 0) === 1,
          `pending: the AS saw ${seen.counts['/bc-authorize']} backchannel `
          + 'requests, expected 1');
}

async function memoryFill(keys, kind, size) {
    const root = join(RUN, `mem-${kind}-${size}`);
    rmSync(root, { recursive: true, force: true });
    const conf = confMem(root, keys, size);
    await freePort(PORT.mem);
    await freePort(PORT.upMem);
    const ng = await startNginx(`mem ${kind} ${size}`, root, conf, PORT.mem);
    await afterLeeway(ng);

    const bytes = parseInt(size, 10) * 1048576;
    let next;
    let tokens = null;
    if (kind === 'used') {
        const t = await mint(keys, 'ES256', Math.ceil(bytes / 64) + 1000, 'es');
        tokens = readFileSync(t.file, 'utf8').trim().split('\n');
        next = (i) => (i < tokens.length
            ? benchRequest(PORT.mem, 'es', { 'Approval-Token': tokens[i] })
            : null);
    } else if (kind === 'pending_subjects') {
        next = (i) => (i < 40000
            ? benchRequest(PORT.mem, 'pend', { 'X-User': `m${i}` })
            : null);
    } else {
        next = (i) => (i < 40000
            ? benchRequest(PORT.mem, 'pend', { 'X-User': 'mem-one' },
                           `order=${i}&amount=30`)
            : null);
    }
    const okStatus = kind === 'used' ? 200 : 401;

    let i = 0;
    let stored = 0;
    let full = null;
    let other = null;
    const worker = async () => {
        while (full === null && other === null) {
            const p = next(i++);
            if (p === null) {
                return;
            }
            const r = await p;
            if (r.status === okStatus) {
                stored++;
            } else if (r.status === 503 && r.json
                       && r.json.reason === 'zone_full') {
                full = full ?? r;
            } else {
                other = other ?? r;
            }
        }
    };
    await Promise.all(Array.from({ length: 8 }, worker));

    check(other === null, `memory ${kind} ${size}: unexpected answer `
          + `${other && other.status} ${other && other.body.slice(0, 200)}`);
    check(full !== null, `memory ${kind} ${size}: the zone never filled `
          + `(${stored} stored)`);
    if (full !== null) {
        answerIs(full, 503, 'approval_unavailable',
                 `memory ${kind} ${size}: full`, 'zone_full');
    }
    const logged = logProblems(ng);
    await stopChild(ng);
    return { kind, size, bytes, stored, alerts: logged };
}


/* ---- instructions per request (callgrind) -------------------------------- */

/*
 * The same configurations run by one nginx process under valgrind's
 * callgrind: the instructions executed in user space per request, exact
 * and independent of what else runs on the machine (the kernel's work,
 * most of a proxied request's cost, is not counted).
 */
async function startCallgrind(name, src, ports, edit = (t) => t) {
    const root = join(RUN, `cg-${name}`);
    rmSync(root, { recursive: true, force: true });
    for (const d of ['conf', 'logs', 'client_body_temp', 'proxy_temp',
                     'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) {
        mkdirSync(join(root, d), { recursive: true });
    }
    for (const f of ['peer.js', 'bench_keys.js']) {
        if (existsSync(join(src, 'conf', f))) {
            copyFileSync(join(src, 'conf', f), join(root, 'conf', f));
        }
    }
    let text = readFileSync(join(src, 'conf/nginx.conf'), 'utf8')
        .replace('master_process on;', 'master_process off;')
        .replaceAll(`${src}/`, `${root}/`);
    for (const [from, to] of ports) {
        text = text.replaceAll(`127.0.0.1:${from};`, `127.0.0.1:${to};`);
    }
    text = edit(text);
    const port = ports[0][1];
    for (const [, to] of ports) {
        await freePort(to);
    }
    const conf = join(root, 'conf/nginx.conf');
    writeFileSync(conf, text);
    const out = join(root, 'callgrind.out');
    const args = ['--tool=callgrind', `--callgrind-out-file=${out}`,
                  CFG.nginx, '-p', `${root}/`, '-c', conf,
                  '-e', join(root, 'logs/error.log')];
    const p = startChild(`callgrind ${name}`, 'valgrind', args, {
        stopSignal: 'SIGQUIT', stderr: 'ignore' });
    if (!await waitPort(port, p, 60000)) {
        await stopChild(p);
        throw new Error(`nginx under callgrind (${name}) did not start`);
    }
    p.root = root;
    p.startedAt = Date.now();
    p.cgOut = out;
    p.dumps = 0;
    const c = shown('valgrind', args);
    if (!commands.includes(c)) {
        commands.push(c);
    }
    return p;
}

/*
 * The main configuration without njs, for the instruction counts: njs
 * costs every request something (about 300 instructions), which is not
 * the module's; its peer is measured in the timed rounds only.
 */
function withoutNjs(text) {
    const out = text
        .replace(/^load_module \S*ngx_http_js_module\.so;\n/m, '')
        .replace(/^ *js_path .*\n/m, '')
        .replace(/^ *js_import .*\n/m, '')
        .replace(/^ *# peer: njs.*\n *location \/njs\/ \{\n[^}]*\}\n/m, '');
    check(!/js_/.test(out), 'callgrind: njs left in the main configuration');
    return out;
}

/* sends n requests (4 at a time); returns the statuses */
async function sendMany(n, send) {
    let i = 0;
    const statuses = {};
    const one = async () => {
        while (i < n) {
            const r = await send(i++);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
    };
    await Promise.all([one(), one(), one(), one()]);
    return statuses;
}

async function cgMeasure(inst, id, n, send, expect, verifyFn,
                         field = 'verify') {
    run('callgrind_control', ['-z', String(inst.pid)],
        { stdio: ['ignore', 'ignore', 'ignore'] });
    const statuses = await sendMany(n, send);
    run('callgrind_control', ['-d', id, String(inst.pid)],
        { stdio: ['ignore', 'ignore', 'ignore'] });
    const file = `${inst.cgOut}.${++inst.dumps}`;
    let text = '';
    for (let t = 0; t < 100; t++) {
        text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        if (/^(summary|totals): [0-9]+/m.test(text)) {
            break;
        }
        await sleep(100);
    }
    const m = /^(?:summary|totals): ([0-9]+)/m.exec(text);
    check(m !== null, `callgrind ${id}: no totals in ${file}`);
    check((statuses[String(expect)] ?? 0) === n, `callgrind ${id}: expected `
          + `${n} x ${expect}, got ${JSON.stringify(statuses)}`);
    const r = { id, requests: n, instructions: m ? Number(m[1]) / n : NaN,
                statuses };
    if (verifyFn) {
        /* the verify's own instructions, from the inclusive profile */
        const ann = spawnSync('callgrind_annotate', ['--inclusive=yes',
            '--threshold=100', file], { encoding: 'utf8',
                                        maxBuffer: 64 << 20 }).stdout || '';
        const line = ann.split('\n').find((l) =>
            new RegExp(`:${verifyFn} \\[`).test(l));
        r[`${field}_fn`] = verifyFn;
        r[`${field}_instructions`] = line
            ? Number(line.trim().split(/\s+/)[0].replace(/,/g, '')) / n : NaN;
        check(r[`${field}_instructions`] > 0, `callgrind ${id}: ${verifyFn} `
              + 'never ran');
    }
    log(`callgrind ${id}: ${f0(r.instructions)} instructions/request`
        + (verifyFn ? ` (${verifyFn}: ${f0(r[`${field}_instructions`])})`
           : ''));
    return r;
}

async function callgrindPhase(keys, state) {
    const out = [];
    const N = 1000;
    const NT = 300;

    /* the baseline receiving tokens of the same size, which it ignores */
    const carried = {};
    for (const [alg, prefix] of [['ES256', 'es'], ['RS256', 'rs']]) {
        const t = await mint(keys, alg, NT, prefix);
        carried[alg] = readFileSync(t.file, 'utf8').trim().split('\n');
    }

    for (const [id, ports] of [
        ['base', [[PORT.base, PORT.cgBase], [PORT.upBase, PORT.cgUpBase]]],
        ['off', [[PORT.off, PORT.cgOff], [PORT.upOff, PORT.cgUpOff]]],
    ]) {
        const port = ports[0][1];
        const p = await startCallgrind(id, join(RUN, id), ports);
        const send = () => benchRequest(port, 'api');
        await sendMany(100, send);
        out.push(await cgMeasure(p, id, N, send, 200));
        if (id === 'base') {
            for (const alg of ['ES256', 'RS256']) {
                out.push(await cgMeasure(p, `base_${alg.toLowerCase()}tok`,
                    NT, (i) => benchRequest(port, 'api',
                        { 'Approval-Token': carried[alg][i] }), 200));
            }
        }
        await stopChild(p, 30000);
    }

    const p = await startCallgrind('main', join(RUN, 'main'), [
        [PORT.main, PORT.cgMain], [PORT.upMain, PORT.cgUpMain]], withoutNjs);
    const M = PORT.cgMain;
    await afterLeeway(p);

    const toks = {};
    for (const [alg, prefix] of [['ES256', 'es'], ['RS256', 'rs']]) {
        const t = await mint(keys, alg, NT + 50, prefix);
        toks[alg] = readFileSync(t.file, 'utf8').trim().split('\n');
    }
    /* issued after this zone's start, or refused as issued before it */
    const fresh = async (extra) => readFileSync((await mint(keys, 'ES256',
        1000, 'es', extra)).file, 'utf8').trim().split('\n');
    const mal = readFileSync(state.malformedFile, 'utf8').trim().split('\n');
    const rep = await fresh({});
    const forged = await fresh({ corrupt: true });

    /* warm up, make the pending approval, use the replay set once */
    await sendMany(100, () => benchRequest(M, 'api'));
    const first = await benchRequest(M, 'pend', { 'X-User': CG_USER });
    const handle = first.json && first.json.approval_handle;
    check(typeof handle === 'string', 'callgrind: a pending approval');
    const used = await sendMany(rep.length, (i) => benchRequest(M, 'es',
        { 'Approval-Token': rep[i] }));
    check(used['200'] === rep.length, 'callgrind: the replay set admitted '
          + `once: ${JSON.stringify(used)}`);
    await sendMany(50, (i) => benchRequest(M, 'es',
        { 'Approval-Token': toks.ES256[NT + i] }));
    await sendMany(50, (i) => benchRequest(M, 'rs',
        { 'Approval-Token': toks.RS256[NT + i] }));

    out.push(await cgMeasure(p, 'nothit', N, () => benchRequest(M, 'api'),
                             200));
    out.push(await cgMeasure(p, 'pend_handle', N, () => benchRequest(M, 'pend',
        { 'X-User': CG_USER, 'Approval-Handle': handle }), 401));
    out.push(await cgMeasure(p, 'pend_bare', N, () => benchRequest(M, 'pend',
        { 'X-User': CG_USER }), 401));
    out.push(await cgMeasure(p, 'es256', NT, (i) => benchRequest(M, 'es',
        { 'Approval-Token': toks.ES256[i] }), 200, 'ECDSA_do_verify'));
    out.push(await cgMeasure(p, 'rs256', NT, (i) => benchRequest(M, 'rs',
        { 'Approval-Token': toks.RS256[i] }), 200, 'RSA_verify'));
    out.push(await cgMeasure(p, 'malformed', N, (i) => benchRequest(M, 'es',
        { 'Approval-Token': mal[i % mal.length] }), 401));
    out.push(await cgMeasure(p, 'replayed', N, (i) => benchRequest(M, 'es',
        { 'Approval-Token': rep[i % rep.length] }), 403));
    out.push(await cgMeasure(p, 'forged', NT, (i) => benchRequest(M, 'es',
        { 'Approval-Token': forged[i % forged.length] }), 401,
                             'ECDSA_do_verify'));
    await stopChild(p, 30000);

    const base = out.find((x) => x.id === 'base').instructions;
    for (const x of out) {
        x.added = x.instructions - base;
        const over = out.find((y) => y.id === `base_${x.id}tok`);
        if (over) {
            x.added_over_token = x.instructions - over.instructions;
        }
        if (x.verify_fn) {
            x.added_over_verify = x.added / x.verify_instructions;
        }
    }
    return out;
}


/* ---- the zone's expiry index under load (callgrind) ---------------------- */

const ZONE_RECORDS = 200000;

/*
 * A state file in ngx_http_ciba_state.c's format (a 32-byte head: magic,
 * epoch, count; 40-byte records: expiry, key; a SHA-256 of it all) with n
 * used records, latest expiry first as nginx writes it.  "inorder": all
 * of them expire before the records the measured tokens make, as when
 * every token has the same lifetime; "outoforder": spread over two hours
 * around them, as with tokens of many lifetimes.
 */
function writeStateFile(file, n, order) {
    const now = Math.floor(Date.now() / 1000);
    const buf = Buffer.alloc(32 + n * 40 + 32);
    buf.write('ngx-ciba-state/1', 0, 'latin1');
    buf.writeBigInt64LE(BigInt(now - 3600), 16);
    buf.writeBigUInt64LE(BigInt(n), 24);
    const exps = new Float64Array(n);
    for (let i = 0; i < n; i++) {
        exps[i] = order === 'inorder'
            ? now + 600 + Math.floor(i * 2400 / n)
            : now + 600 + Math.floor(Math.random() * 6600);
    }
    exps.sort().reverse();
    for (let i = 0; i < n; i++) {
        buf.writeBigInt64LE(BigInt(exps[i]), 32 + i * 40);
        randomFillSync(buf, 32 + i * 40 + 8, 32);
    }
    createHash('sha256').update(buf.subarray(0, 32 + n * 40)).digest()
        .copy(buf, 32 + n * 40);
    writeFileSync(file, buf, { mode: 0o600 });
}

/*
 * The cost of making a used record in a zone that holds 200,000 of them:
 * the main configuration under callgrind, its zone loaded from a state
 * file, approved ES256 requests; the whole request and the inclusive
 * instructions of ngx_http_ciba_store_consume() (finding the key, making
 * room, inserting the record in both indexes).
 */
async function zonePhase(keys) {
    const out = [];
    const NT = 300;
    for (const order of ['inorder', 'outoforder']) {
        const file = join(RUN, `zone-${order}.state`);
        writeStateFile(file, ZONE_RECORDS, order);
        const p = await startCallgrind(`zone-${order}`, join(RUN, 'main'), [
            [PORT.main, PORT.cgMain], [PORT.upMain, PORT.cgUpMain]],
            (t) => withoutNjs(t).replace('ciba_zone bench:256m;',
                                         `ciba_zone bench:256m state=${file};`));
        /* loaded, then removed; an invalid or too large one is an alert */
        const text = readFileSync(join(p.root, 'logs/error.log'), 'utf8');
        check(!existsSync(file) && !/\[alert\]/.test(text),
              `zone ${order}: the state file was not loaded`);
        await afterLeeway(p);
        const M = PORT.cgMain;
        const toks = readFileSync((await mint(keys, 'ES256', NT + 50, 'es'))
            .file, 'utf8').trim().split('\n');
        await sendMany(50, (i) => benchRequest(M, 'es',
            { 'Approval-Token': toks[NT + i] }));
        out.push(await cgMeasure(p, `zone_${order}`, NT, (i) =>
            benchRequest(M, 'es', { 'Approval-Token': toks[i] }), 200,
            'ngx_http_ciba_store_consume', 'consume'));
        await stopChild(p, 60000);
    }
    const [a, b] = out;
    return {
        records: ZONE_RECORDS, rows: out,
        ratio: b.instructions / a.instructions,
        consume_ratio: b.consume_instructions / a.consume_instructions,
    };
}


/* ---- the report ---------------------------------------------------------- */

function f0(x) {
    return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–';
}

function f1(x) {
    return Number.isFinite(x) ? x.toFixed(1) : '–';
}

function f2(x) {
    return Number.isFinite(x) ? x.toFixed(2) : '–';
}

function pct(x) {
    return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–';
}

function ms(us) {
    return Number.isFinite(us) ? (us / 1000).toFixed(2) : '–';
}

function signedUs(x) {
    if (!Number.isFinite(x)) {
        return '–';
    }
    return `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
}

function summarize(vs, runs, verify) {
    const rounds = [...new Set(runs.map((r) => r.round))];
    const baseRef = {};
    for (const k of rounds) {
        const b = runs.filter((r) => r.round === k && r.variant === 'base');
        baseRef[k] = {
            rps: median(b.map((r) => r.rps)),
            cpu_us: median(b.map((r) => r.cpu_us)),
            p50: median(b.map((r) => r.latency_us.p50)),
            p99: median(b.map((r) => r.latency_us.p99)),
        };
    }
    const out = {};
    for (const v of vs) {
        const rs = runs.filter((r) => r.variant === v.id);
        if (rs.length === 0) {
            continue;
        }
        const per = rs.map((r) => {
            const b = baseRef[r.round];
            return {
                round: r.round,
                rps: r.rps,
                ratio: r.rps / b.rps,
                added_us: 1e6 / r.rps - 1e6 / b.rps,
                cpu_us: r.cpu_us,
                cpu_ratio: b.cpu_us / r.cpu_us,
                cpu_added_us: r.cpu_us - b.cpu_us,
                added_p50_us: r.latency_us.p50 - b.p50,
                added_p99_us: r.latency_us.p99 - b.p99,
            };
        });
        const med = (k) => median(per.map((x) => x[k]));
        const s = {
            id: v.id,
            label: v.label,
            runs: rs.length,
            rps: median(rs.map((r) => r.rps)),
            ratio: med('ratio'),
            ratio_min: Math.min(...per.map((x) => x.ratio)),
            ratio_max: Math.max(...per.map((x) => x.ratio)),
            us_per_request: 1e6 / median(rs.map((r) => r.rps)),
            added_us: med('added_us'),
            cpu_us: med('cpu_us'),
            cpu_share: median(rs.map((r) => r.cpu_share)),
            cpu_ratio: med('cpu_ratio'),
            cpu_added_us: med('cpu_added_us'),
            p50_us: median(rs.map((r) => r.latency_us.p50)),
            p99_us: median(rs.map((r) => r.latency_us.p99)),
            added_p50_us: med('added_p50_us'),
            added_p99_us: med('added_p99_us'),
            per_round: per,
        };
        if (v.over) {
            /* over the baseline that receives the same token: the module's */
            const over = rs.map((r) => {
                const o = runs.find((x) => x.round === r.round
                                    && x.variant === v.over);
                return o ? { us: 1e6 / r.rps - 1e6 / o.rps,
                             cpu: r.cpu_us - o.cpu_us } : null;
            }).filter(Boolean);
            if (over.length) {
                s.added_over_token_us = median(over.map((x) => x.us));
                s.cpu_added_over_token_us = median(over.map((x) => x.cpu));
            }
        }
        if (v.target !== undefined) {
            s.target = `>= ${Math.round(v.target * 100)}% of baseline`;
            s.met = s.ratio >= v.target;
            s.met_cpu = s.cpu_ratio >= v.target;
        } else if (v.tokens === 'once' && verify[v.alg]) {
            const limit = 1.15 * verify[v.alg].verify_us + 5;
            s.verify_us = verify[v.alg].verify_us;
            s.limit_us = limit;
            s.target = `added <= 1.15 x verify + 5 µs = ${f1(limit)} µs`;
            s.met = s.added_us <= limit;
            s.met_cpu = s.cpu_added_us <= limit;
        }
        out[v.id] = s;
    }
    return out;
}

function yes(x) {
    return x === undefined ? '–' : (x ? 'yes' : '**no**');
}

function markdown(R) {
    const L = [];
    const S = R.summary;
    const m = R.meta;
    const rows = Object.values(S);
    L.push('# ngx_http_ciba_module benchmarks', '');
    L.push(`- date: ${m.date}`);
    L.push(`- machine: ${m.nproc} CPUs, ${m.cpu}, ${m.mem_gib} GiB, `
           + `Linux ${m.kernel}; load average ${m.load_start.join(' ')} `
           + `at the start, ${m.load_end.join(' ')} at the end`);
    L.push(`- software: ${m.versions.nginx}, njs ${m.versions.njs}, `
           + `${m.versions.wrk}, ${m.versions.openssl}, Node ${m.versions.node}`
           + `, jose ${m.versions.jose}, module ${m.versions.module}`);
    L.push(`- setup: ${m.pinning}; wrk -t${CFG.threads} -c${CFG.conns}, `
           + `${CFG.duration} s per run, ${CFG.rounds} rounds, `
           + 'each round the variants in a rotated order with the baseline '
           + 'run three times; figures are medians over the rounds of each '
           + 'run against the same round\'s baseline');
    L.push(`- request: \`${REQ.method} /<location>/refund?${REQ.query}\` `
           + `with a ${REQ.body.length}-byte JSON body; the upstream (a server `
           + 'block of the same nginx, keepalive) answers a '
           + `${UPSTREAM_BODY.length + 1}-byte body`);
    L.push('- "µs/req added" is `1e6/rps - 1e6/rps_baseline`; "server CPU '
           + 'µs/req" is the user + system CPU time of the nginx worker (and '
           + 'of the validator for the auth_request peer) during the run '
           + 'divided by the requests: unlike req/s it does not count time '
           + 'other processes took from CPU 0, so it is the steadier figure '
           + 'on a busy machine; "CPU share" is that CPU time over the run\'s '
           + 'duration (1.0: the worker had CPU 0 to itself and was '
           + 'saturated)');
    L.push('');

    L.push('## Throughput', '');
    L.push('| figure | req/s | vs baseline (min–max) | µs/req added '
           + '| server CPU µs/req | CPU share | vs baseline by CPU '
           + '| CPU µs/req added | target | met (req/s) | met (CPU) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|');
    for (const s of rows) {
        const b = s.id === 'base';
        L.push(`| ${s.label} | ${f0(s.rps)} | `
               + (b ? '100%' : `${pct(s.ratio)} (${pct(s.ratio_min)}–`
                  + `${pct(s.ratio_max)})`)
               + ` | ${b ? '–' : signedUs(s.added_us)} | ${f1(s.cpu_us)} | `
               + `${f2(s.cpu_share)} | ${b ? '100%' : pct(s.cpu_ratio)} | `
               + `${b ? '–' : signedUs(s.cpu_added_us)} | `
               + `${s.target ?? '–'} | `
               + `${yes(s.met)} | ${yes(s.met_cpu)} |`);
    }
    L.push('');

    const overs = rows.filter((s) => s.added_over_token_us !== undefined);
    if (overs.length) {
        L.push('Over the baseline whose requests carry the same tokens '
               + '(what nginx spends receiving a token, which the module '
               + 'does not choose, taken out):', '');
        for (const s of overs) {
            L.push(`- ${s.label}: ${signedUs(s.added_over_token_us)} µs/req, `
                   + `${signedUs(s.cpu_added_over_token_us)} CPU µs/req`
                   + (s.limit_us ? ` (target ${f1(s.limit_us)} µs)` : ''));
        }
        L.push('');
    }

    L.push('## Latency (wrk --latency, closed loop)', '');
    L.push('| figure | p50 ms | p99 ms | p50 added ms | p99 added ms |');
    L.push('|---|---:|---:|---:|---:|');
    for (const s of rows) {
        const b = s.id === 'base';
        L.push(`| ${s.label} | ${ms(s.p50_us)} | ${ms(s.p99_us)} | `
               + `${b ? '–' : ms(s.added_p50_us)} | `
               + `${b ? '–' : ms(s.added_p99_us)} |`);
    }
    L.push('');

    L.push('## Signature cost (approved path)', '');
    L.push('| alg | openssl verify/s (start, end) | µs per verify '
           + '| limit 1.15 x verify + 5 µs | µs/req added | met '
           + '| CPU µs/req added | met (CPU) |');
    L.push('|---|---|---:|---:|---:|---|---:|---|');
    for (const [alg, id] of [['ES256', 'es256'], ['RS256', 'rs256']]) {
        const v = R.verify[alg];
        const s = S[id];
        if (!v || !s) {
            continue;
        }
        L.push(`| ${alg} | ${v.runs.map((x) => f0(x.verify_per_s)).join(', ')}`
               + ` | ${f1(v.verify_us)} | ${f1(s.limit_us)} | `
               + `${signedUs(s.added_us)} | ${yes(s.met)} | `
               + `${signedUs(s.cpu_added_us)} | ${yes(s.met_cpu)} |`);
    }
    L.push('');

    const peers = [['ES256', 'es256', 'njs_es256', 'ext_es256'],
                   ['RS256', 'rs256', 'njs_rs256', 'ext_rs256']]
        .filter(([, a]) => S[a]);
    if (peers.length) {
        L.push('## Peers on the same tokens and the same nginx', '');
        L.push('The peers check the signature (alg pinned per kid), iss, aud,'
               + ' exp, nbf and iat; they do **not** check the binding to the'
               + ' request nor single use (the module does both). All three '
               + 'proxy the admitted request to the same upstream.', '');
        L.push('| alg | module req/s | njs req/s | module / njs '
               + '| by CPU | auth_request + Node/jose req/s '
               + '| module / external | by CPU |');
        L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
        const pr = R.peer_ratios;
        for (const [alg, a, n, e] of peers) {
            const x = (id, k) => (pr[id] ? `${f2(pr[id][k])}x` : '–');
            L.push(`| ${alg} | ${f0(S[a].rps)} | ${f0(S[n] && S[n].rps)} | `
                   + `${x(n, 'rps')} | ${x(n, 'cpu')} | `
                   + `${f0(S[e] && S[e].rps)} | ${x(e, 'rps')} | `
                   + `${x(e, 'cpu')} |`);
        }
        L.push('', 'Ratios: medians over the rounds of the module\'s req/s '
               + 'over the peer\'s in the same round, and of the peer\'s '
               + 'server CPU µs per request over the module\'s (above 1: the '
               + 'module is faster).', '');
    }

    L.push('## Single use and the AS', '');
    const u = R.single_use;
    L.push(`- approved runs: ${f0(u.admitted)} requests admitted with `
           + `${f0(u.tokens_sent)} distinct tokens sent (the difference: `
           + 'requests in flight when wrk stopped), '
           + `${u.refused} refused, ${u.exhausted} sent without a token `
           + '(the tokens never ran out'
           + (u.runs_repeated ? `; ${u.runs_repeated} run(s) whose tokens ran `
              + 'out were run again with twice as many' : '') + ')');
    L.push(`- replay flood: ${f0(u.replays_refused)} replays answered 403 `
           + `approval_replayed, ${u.replays_admitted} admitted`);
    L.push(`- pending: the AS saw ${R.as.backchannel} backchannel request(s) `
           + `for ${R.as.pending_pairs} subject and action (expected 1) and `
           + `${R.as.token} token request(s) over `
           + `${f0(R.as.pending_answers)} pending answers`);
    L.push('');

    if (R.callgrind) {
        const lab = Object.fromEntries(rows.map((x) => [x.id, x.label]));
        L.push('## Instructions per request (callgrind)', '');
        L.push('One nginx process under valgrind --tool=callgrind, the same '
               + 'configurations: instructions executed in user space per '
               + 'request, exact and independent of the machine\'s load. '
               + 'The kernel\'s share (the sockets: most of a proxied '
               + 'request\'s time) is not counted, so compare the added '
               + 'instructions, not ratios.', '');
        L.push('| figure | instructions/request | added vs baseline '
               + '| signature verify | added / verify | target '
               + '| added vs baseline carrying the token |');
        L.push('|---|---:|---:|---:|---:|---|---:|');
        for (const x of R.callgrind) {
            const limit = x.verify_fn && x.id !== 'forged'
                ? 1.15 * x.verify_instructions + 15000 : NaN;
            L.push(`| ${lab[x.id] ?? x.id} | ${f0(x.instructions)} | `
                   + `${x.id === 'base' ? '–' : f0(x.added)} | `
                   + `${x.verify_fn ? `${f0(x.verify_instructions)} `
                      + `(${x.verify_fn})` : '–'} | `
                   + `${x.verify_fn ? `${f2(x.added_over_verify)}x` : '–'} | `
                   + (Number.isFinite(limit) ? `<= ${f0(limit)}: `
                      + `${x.added <= limit ? 'met' : '**not met**'}` : '–')
                   + ` | ${x.added_over_token !== undefined
                         ? f0(x.added_over_token) : '–'} |`);
        }
        L.push('');
    }

    if (R.zone) {
        const z = R.zone;
        L.push('## Zone: making a record among 200,000', '');
        L.push(`The main configuration under callgrind with ${f0(z.records)} `
               + 'used records loaded from a state file, then approved ES256 '
               + 'requests, each making one more record: "in order", every '
               + 'loaded record expires before the new ones (tokens of one '
               + 'lifetime); "out of order", they expire over two hours '
               + 'around them (tokens of many lifetimes). '
               + '`ngx_http_ciba_store_consume()` counts its callees: the '
               + 'lookup, making room, and the insertion into both indexes. '
               + 'Target: out of order <= 1.3x in order.', '');
        L.push('| loaded records expire | instructions/request '
               + '| in ngx_http_ciba_store_consume() |');
        L.push('|---|---:|---:|');
        for (const x of z.rows) {
            L.push(`| ${x.id === 'zone_inorder' ? 'in order'
                      : 'out of order'} | ${f0(x.instructions)} | `
                   + `${f0(x.consume_instructions)} |`);
        }
        L.push(`| out of order / in order | ${f2(z.ratio)}x | `
               + `${f2(z.consume_ratio)}x |`);
        L.push('');
    }

    if (R.memory) {
        L.push('## Zone memory', '');
        L.push('Filled until `503 approval_unavailable` (`zone_full`); bytes '
               + 'per record from the difference between a 2m and a 1m zone '
               + '(slab rounding included, the zone\'s fixed overhead '
               + 'excluded).', '');
        L.push('| record | in a 1m zone | in a 2m zone | bytes/record '
               + '| records/MiB |');
        L.push('|---|---:|---:|---:|---:|');
        for (const mrow of R.memory.rows) {
            L.push(`| ${mrow.label} | ${f0(mrow.n1)} | ${f0(mrow.n2)} | `
                   + `${f0(mrow.bytes_per_record)} | `
                   + `${f0(mrow.records_per_mib)} |`);
        }
        L.push('');
    }

    L.push('## Checks', '');
    if (R.problems.length === 0) {
        L.push('All correctness checks passed (every answer had the expected '
               + 'status, no socket errors, no token reused, the AS asked '
               + 'once, no alert in the error logs).');
    } else {
        L.push('**Failed checks:**', '');
        for (const p of R.problems) {
            L.push(`- ${p}`);
        }
    }
    L.push('');

    L.push('## Commands', '');
    L.push('```');
    L.push('make bench   # tools/bench/bench.sh -> node tools/bench/bench.mjs');
    L.push(`# BENCH_DURATION=${CFG.duration} BENCH_ROUNDS=${CFG.rounds} `
           + `BENCH_CONNECTIONS=${CFG.conns} BENCH_THREADS=${CFG.threads}`
           + `${CFG.nice ? ` BENCH_NICE=${CFG.nice}` : ''}`);
    for (const c of R.commands) {
        L.push(c);
    }
    L.push('```');
    L.push('', 'nginx configurations: '
           + `${relative(ROOT, RUN)}/*/conf/nginx.conf`);
    L.push('');
    return L.join('\n');
}


/* ---- main ---------------------------------------------------------------- */

function versions() {
    const jose = JSON.parse(readFileSync(join(HERE,
        'node_modules/jose/package.json'), 'utf8')).version;
    return {
        nginx: tryRun(CFG.nginx, ['-v']).replace(/^nginx version: /, ''),
        njs: tryRun('dpkg-query', ['-W', '-f', '${Version}',
                                   'libnginx-mod-http-js']),
        wrk: tryRun('wrk', ['-v'], true).split('\n')[0].replace(/ \[.*$/, '')
             .replace(/ Copyright.*$/, ''),
        openssl: tryRun('openssl', ['version']),
        node: process.version,
        jose,
        module: tryRun('git', ['-C', ROOT, 'log', '-1',
                               '--format=%h %cs', '--',
                               'ngx_http_ciba_module'])
            + (spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--',
                                 'ngx_http_ciba_module'], { encoding: 'utf8' })
                .stdout?.trim() ? ' + uncommitted changes' : ''),
    };
}

function cpuModel() {
    try {
        const m = /^model name\s*:\s*(.*)$/m.exec(
            readFileSync('/proc/cpuinfo', 'utf8'));
        return m ? m[1].trim() : os.cpus()[0].model;
    } catch {
        return os.cpus()[0].model;
    }
}

async function main() {
    for (const f of [CFG.nginx, CFG.module, CFG.njs]) {
        if (!existsSync(f)) {
            die(`missing ${f} (make module; bench.sh installs njs)`);
        }
    }
    if (!PIN) {
        log(`only ${NCPU} CPU: nothing is pinned, the figures mean little`);
    }

    rmSync(RUN, { recursive: true, force: true });
    mkdirSync(RUN, { recursive: true });

    const meta = {
        date: new Date().toISOString(),
        nproc: NCPU,
        cpu: cpuModel(),
        mem_gib: Math.round(os.totalmem() / 2 ** 30),
        kernel: os.release(),
        load_start: os.loadavg().map((x) => x.toFixed(2)),
        versions: versions(),
        pinning: PIN ? `nginx (master + 1 worker) and the external validator `
            + `on CPU ${SERVER_CPU}, wrk on CPU ${CLIENT_CPU} (taskset)`
            : 'no pinning (one CPU)',
        settings: { ...CFG, out: relative(ROOT, CFG.out) },
    };
    log(`machine: ${meta.nproc} CPUs, ${meta.cpu}; `
        + `load ${meta.load_start.join(' ')}`);

    for (const p of Object.values(PORT)) {
        await freePort(p);
    }

    const keys = makeKeys(join(RUN, 'keys'));
    const state = {};
    const vs = variants(state);

    /* the mock AS (never approves; interval and expiry one hour) */
    const as = startChild('mock AS', 'node', [
        join(ROOT, 't/fixtures/mock-as/mock-as.mjs'), '--port', String(PORT.as),
    ], { stdout: 'pipe' });
    await waitLine(as, /mock-as listening/, 10000);
    const users = [USER, CG_USER, 'mem-one'];
    for (let i = 0; i < 40000; i++) {
        users.push(`m${i}`);
    }
    await asCall('POST', '/_admin/config', {
        interval: 3600, expires_in: 3600, slow_down: false, users,
    });

    /* the external validator */
    const vkeys = join(RUN, 'keys/validator.json');
    writeFileSync(vkeys, JSON.stringify(Object.fromEntries(
        Object.values(keys).map((k) => [k.kid, { alg: k.alg, pem: k.pub }]))));
    const [vcmd, vargs] = pinned(SERVER_CPU, 'node', [
        join(HERE, 'validator.mjs'), '--port', String(PORT.validator),
        '--keys', vkeys, '--iss', ISS, '--aud', AUD, '--leeway',
        String(LEEWAY), '--max-age', String(MAX_AGE)]);
    const validator = startChild('validator', vcmd, vargs, { stdout: 'pipe' });
    await waitLine(validator, /validator listening/, 10000);
    SERVERS.validator = validator;
    commands.push(shown(vcmd, vargs));

    /* nginx */
    const ngBase = await startNginx('base', join(RUN, 'base'),
                                    confBase(join(RUN, 'base')), PORT.base);
    const ngOff = await startNginx('off', join(RUN, 'off'),
                                   confOff(join(RUN, 'off')), PORT.off);
    const ngMain = await startNginx('main', join(RUN, 'main'),
                                    confMain(join(RUN, 'main'), keys),
                                    PORT.main);
    await afterLeeway(ngMain);
    SERVERS[PORT.base] = ngBase;
    SERVERS[PORT.off] = ngOff;
    SERVERS[PORT.main] = ngMain;
    for (const ng of [ngBase, ngOff, ngMain]) {
        commands.push(shown(ng.spawnfile, ng.spawnargs.slice(1)));
    }

    await preflight(state, keys);

    /* signature cost on the server CPU, before and after the runs */
    log('openssl speed (start)');
    const verifyRuns = { ES256: [opensslVerify('ES256')],
                         RS256: [opensslVerify('RS256')] };

    /*
     * How many tokens an approved run needs: 1.5 x what a request costing
     * the baseline's time plus one signature verify allows (the module
     * adds more than the verify), the baseline from a 2-second run.  A run
     * whose tokens still ran out is run again with twice as many.
     */
    const vById = Object.fromEntries(vs.map((v) => [v.id, v]));
    log('calibration: the baseline for 2 s');
    const cal = await wrk(vById.base, 2);
    const need = (alg) => {
        const us = verifyRuns[alg][0].verify_us;
        const rps = 1.5 * 1e6 / (1e6 / cal.rps + us);
        return Math.ceil(rps * (CFG.duration + 1)) + 1000;
    };
    let retried = 0;

    /*
     * Every round's tokens are minted in worker threads while the phases
     * that do not measure time run: instruction counts under callgrind
     * (on ports of their own) and the zone fills.
     */
    const others = vs.filter((v) => v.id !== 'base');
    const plans = [];
    for (let k = 0; k < CFG.rounds; k++) {
        const order = rotate(others, Math.floor(k * others.length
                                                / CFG.rounds));
        const third = Math.ceil(order.length / 3);
        plans.push([vById.base, ...order.slice(0, third), vById.base,
                    ...order.slice(third, 2 * third), vById.base,
                    ...order.slice(2 * third)]);
    }

    /*
     * Expiry slots: each approved run's tokens get an exp of their own,
     * later than all earlier runs' (and than the preflight's), in the
     * order the runs will be made, as tokens used right after they were
     * issued would.  The zone's expiry index does not depend on it (see
     * "Zone: making a record among 200,000" in the report); the slots
     * keep the runs comparable with earlier reports.
     */
    const slot0 = Math.floor(Date.now() / 1000) + 2 * 3600;
    let slots = 0;
    const roundTokens = [];
    for (let k = 0; k < CFG.rounds; k++) {
        roundTokens[k] = {};
        for (const v of plans[k]) {
            if (v.tokens === 'once') {
                roundTokens[k][v.alg] = { exp: slot0 + 60 * slots++ };
            }
        }
    }
    const minting = (async () => {
        for (let k = 0; k < CFG.rounds; k++) {
            for (const [alg, t] of Object.entries(roundTokens[k])) {
                roundTokens[k][alg] = await mint(keys, alg, need(alg),
                    alg === 'ES256' ? 'es' : 'rs', { exp: t.exp });
            }
        }
    })();
    minting.catch(() => {});

    let callgrind = null;
    let zone = null;
    if (CFG.callgrind && spawnSync('valgrind', ['--version']).status !== 0) {
        log('no valgrind (make deps installs it): no instruction counts');
    } else if (CFG.callgrind) {
        log('instructions per request under callgrind');
        callgrind = await callgrindPhase(keys, state);
        log(`the zone's expiry index with ${ZONE_RECORDS} records`);
        zone = await zonePhase(keys);
    }

    /* memory */
    let memory = null;
    if (!CFG.skipMemory) {
        const rows = [];
        for (const [kind, label] of [
            ['used', 'single-use record (a consumed token)'],
            ['pending_subjects', 'pending approval, a subject each'],
            ['pending_actions', 'pending approval, one subject, many '
             + 'requests'],
        ]) {
            log(`zone fill: ${kind}`);
            const a = await memoryFill(keys, kind, '1m');
            const b = await memoryFill(keys, kind, '2m');
            check(a.alerts.length === 0 && b.alerts.length === 0,
                  `memory ${kind}: alerts ${[...a.alerts, ...b.alerts]}`);
            const d = b.stored - a.stored;
            rows.push({
                kind, label, n1: a.stored, n2: b.stored,
                bytes_per_record: d > 0 ? 1048576 / d : NaN,
                records_per_mib: d,
                avg_bytes_1m: 1048576 / a.stored,
            });
        }
        memory = { rows };
    }

    log('waiting for the tokens');
    await minting;

    /* the rounds */
    const runs = [];
    for (let k = 0; k < CFG.rounds; k++) {
        const tok = roundTokens[k];

        for (const v of plans[k]) {
            const label = `round ${k + 1}/${CFG.rounds} ${v.id}`;
            let tokens = null;
            if (v.tokens === 'once') {
                tokens = { file: tok[v.alg].file, mode: 'once' };
            } else if (v.tokens === 'cycle') {
                tokens = { file: v.file ? v.file() : tok[v.alg].file,
                           mode: 'cycle' };
            }
            const vv = { ...v, headers: typeof v.headers === 'function'
                ? v.headers() : v.headers };
            let r = await wrk(vv, CFG.duration, tokens);
            if (v.tokens === 'once' && r.exhausted > 0) {
                /* more tokens than estimated were needed: run it again */
                log(`${label}: tokens ran out, minting more and running again`);
                tok[v.alg] = await mint(keys, v.alg, 2 * tok[v.alg].count,
                                        v.alg === 'ES256' ? 'es' : 'rs',
                                        { exp: tok[v.alg].exp });
                tokens = { file: tok[v.alg].file, mode: 'once' };
                r = await wrk(vv, CFG.duration, tokens);
                r.retried = true;
                retried++;
            }
            checkRun(v, r, label);
            r.variant = v.id;
            r.round = k;
            runs.push(r);
            if (!commands.some((c) => c.id === v.id)) {
                commands.push({ id: v.id, cmd: r.command });
            }
            log(`${label}: ${f0(r.rps)} req/s, ${f1(r.cpu_us)} CPU µs/req `
                + `(nginx ${f2(r.cpu_share)} of CPU ${SERVER_CPU}, busy `
                + `${f2(r.server_cpu_busy)}; wrk ${f2(r.wrk_cpu_share)}, CPU `
                + `${CLIENT_CPU} busy ${f2(r.client_cpu_busy)}), `
                + `p50 ${ms(r.latency_us.p50)} ms`
                + `, p99 ${ms(r.latency_us.p99)} ms, `
                + `statuses ${JSON.stringify(r.statuses)}`);
        }
    }

    log('openssl speed (end)');
    verifyRuns.ES256.push(opensslVerify('ES256'));
    verifyRuns.RS256.push(opensslVerify('RS256'));
    const verify = {};
    for (const alg of ['ES256', 'RS256']) {
        const us = median(verifyRuns[alg].map((x) => x.verify_us));
        verify[alg] = { verify_us: us, runs: verifyRuns[alg] };
    }

    /* the AS: one backchannel request for the one subject and action */
    const seen = await asCall('GET', '/_admin/requests?path=/bc-authorize');
    const asCounts = {
        backchannel: seen.requests.filter((q) => q.form
                                          && q.form.login_hint === USER)
            .length,
        token: seen.counts['/token'] ?? 0,
        pending_pairs: 1,
        pending_answers: runs.filter((r) => r.variant.startsWith('pend_'))
            .reduce((a, r) => a + (r.statuses['401'] ?? 0), 0),
    };
    check(asCounts.backchannel === 1, `the AS saw ${asCounts.backchannel} `
          + 'backchannel requests for one subject and action, expected 1');
    check(asCounts.token === 0, `the AS saw ${asCounts.token} token requests`
          + ' within the interval, expected 0');

    const alerts = [ngBase, ngOff, ngMain].flatMap(logProblems);
    check(alerts.length === 0,
          `alerts in the error logs: ${alerts.join(' | ')}`);
    await stopChild(ngBase);
    await stopChild(ngOff);
    await stopChild(ngMain);
    await stopChild(validator);

    /* single use accounting */
    const approved = runs.filter((r) => r.variant === 'es256'
                                 || r.variant === 'rs256');
    const single = {
        admitted: approved.reduce((a, r) => a + (r.statuses['200'] ?? 0), 0),
        tokens_sent: approved.reduce((a, r) => a + r.tokens_sent, 0),
        refused: approved.reduce((a, r) => a + Object.entries(r.statuses)
            .filter(([s]) => s !== '200').reduce((x, [, n]) => x + n, 0), 0),
        exhausted: approved.reduce((a, r) => a + r.exhausted, 0),
        runs_repeated: retried,
        replays_refused: runs.filter((r) => r.variant === 'replayed')
            .reduce((a, r) => a + (r.statuses['403'] ?? 0), 0),
        replays_admitted: runs.filter((r) => r.variant === 'replayed')
            .reduce((a, r) => a + (r.statuses['200'] ?? 0), 0),
    };

    await stopAll();

    /* hundreds of MB of used tokens: kept only when asked for */
    if (process.env.BENCH_KEEP_TOKENS !== '1') {
        rmSync(join(RUN, 'tokens'), { recursive: true, force: true });
    }

    const summary = summarize(vs, runs, verify);
    const peerRatios = {};
    for (const [mod, peer] of [['es256', 'njs_es256'], ['es256', 'ext_es256'],
                               ['rs256', 'njs_rs256'],
                               ['rs256', 'ext_rs256']]) {
        if (!summary[mod] || !summary[peer]) {
            continue;
        }
        const per = [];
        for (let k = 0; k < CFG.rounds; k++) {
            const a = runs.find((r) => r.variant === mod && r.round === k);
            const b = runs.find((r) => r.variant === peer && r.round === k);
            if (a && b) {
                per.push({ rps: a.rps / b.rps, cpu: b.cpu_us / a.cpu_us });
            }
        }
        peerRatios[peer] = { rps: median(per.map((x) => x.rps)),
                             cpu: median(per.map((x) => x.cpu)) };
    }

    meta.load_end = os.loadavg().map((x) => x.toFixed(2));
    const R = {
        meta,
        summary,
        verify,
        peer_ratios: peerRatios,
        single_use: single,
        as: asCounts,
        memory,
        callgrind,
        zone,
        problems,
        targets: Object.values(summary).filter((s) => s.met !== undefined)
            .map((s) => ({ id: s.id, target: s.target, met: s.met,
                           met_cpu: s.met_cpu, ratio: s.ratio,
                           cpu_ratio: s.cpu_ratio, added_us: s.added_us,
                           cpu_added_us: s.cpu_added_us })),
        commands: [
            ...commands.filter((c) => typeof c === 'string'),
            ...commands.filter((c) => typeof c !== 'string')
                .map((c) => `# ${c.id}\n${c.cmd}`),
        ],
        runs,
    };

    mkdirSync(CFG.out, { recursive: true });
    writeFileSync(join(CFG.out, 'results.json'),
                  JSON.stringify(R, null, 2) + '\n');
    const md = markdown(R);
    writeFileSync(join(CFG.out, 'results.md'), md);
    process.stdout.write(md + '\n');
    log(`written ${relative(ROOT, join(CFG.out, 'results.md'))} and `
        + `${relative(ROOT, join(CFG.out, 'results.json'))}`);
    process.exitCode = problems.length ? 1 : 0;
}

main().catch(async (e) => {
    process.stderr.write(`bench: ${e.stack || e}\n`);
    await stopAll();
    process.exit(2);
});
