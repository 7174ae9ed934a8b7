#!/usr/bin/env node
/*
 * mint.mjs: fast minting of distinct approval tokens for "make bench",
 * with node:crypto only, in worker threads (one per CPU).  Each token is
 * a JWT (ES256 or RS256) bound to one exact request by the action digest
 * of tools/ciba-digest.mjs, with a unique jti:
 *
 *   header  {"alg", "typ": "JWT", "kid"}
 *   claims  {"iss", "aud", "sub", "jti", "iat", "exp",
 *            "authorization_details": [{"type": "nginx_ciba_action",
 *              "actions": [action], "identifier": digest}]}
 *
 * Library:
 *   import { mintFile, mintOne, requestDigest } from './mint.mjs';
 *   await mintFile({ out, count, alg, keyPem, kid, digest, action,
 *                    jtiPrefix, iss, aud, sub, ttl, corrupt })
 *
 * Command line (one token per line on stdout, or --out FILE):
 *   node tools/bench/mint.mjs --alg ES256 --key ec.key --kid ec1 \
 *       --count 1000 --action refund --method POST \
 *       --url '/es/refund?order=A17' --body '{"amount":30}' \
 *       --iss https://as.bench --aud https://tools.bench [--out FILE]
 */

import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData }
    from 'node:worker_threads';

import { digest as cibaDigest } from '../ciba-digest.mjs';


const ALGS = {
    ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
    RS256: { hash: 'sha256' },
};


export function requestDigest({ action, method, url, body }) {
    return cibaDigest({ action, method, url, body: body ?? '' });
}


function b64u(s) {
    return Buffer.from(s).toString('base64url');
}


/* the signing input prefix shared by all tokens of a batch */
function headerPart(alg, kid) {
    return b64u(JSON.stringify({ alg, typ: 'JWT', kid }));
}


export function mintOne(key, o, i) {
    const a = ALGS[o.alg];
    if (!a) {
        throw new Error(`unsupported alg ${o.alg}`);
    }
    const claims = {
        iss: o.iss,
        aud: o.aud,
        sub: o.sub,
        jti: `${o.jtiPrefix}-${i}`,
        iat: o.iat,
        exp: o.iat + o.ttl,
        authorization_details: [{
            type: 'nginx_ciba_action',
            actions: [o.action],
            identifier: o.digest,
        }],
    };
    const input = `${headerPart(o.alg, o.kid)}.${b64u(JSON.stringify(claims))}`;
    const sigOpts = a.dsaEncoding
        ? { key, dsaEncoding: a.dsaEncoding } : key;
    const sig = sign(a.hash, Buffer.from(input), sigOpts);
    if (o.corrupt) {
        /* a forged token: the signature of another message */
        sig[sig.length - 1] ^= 0x01;
    }
    return `${input}.${sig.toString('base64url')}`;
}


function mintRange(o, from, to) {
    const key = createPrivateKey(o.keyPem);
    const out = new Array(to - from);
    for (let i = from; i < to; i++) {
        out[i - from] = mintOne(key, o, i);
    }
    return out.join('\n') + (to > from ? '\n' : '');
}


function defaults(o) {
    if (!Number.isInteger(o.count) || o.count < 0) {
        throw new Error('count must be a non-negative integer');
    }
    return {
        iss: 'https://as.bench',
        aud: 'https://tools.bench',
        sub: 'bench-user',
        ttl: 3600,
        iat: Math.floor(Date.now() / 1000),
        jtiPrefix: `b${randomBytes(6).toString('hex')}`,
        corrupt: false,
        ...o,
    };
}


/*
 * Mints o.count tokens into o.out (one per line, in jti order), split over
 * worker threads.  Resolves to { count, file, jtiPrefix, iat }.
 */
export async function mintFile(opts) {
    const o = defaults(opts);
    const n = Math.max(1, Math.min(o.workers ?? availableParallelism(),
                                   Math.ceil(o.count / 2000) || 1));
    const per = Math.ceil(o.count / n);
    const parts = [];
    for (let w = 0; w < n; w++) {
        const from = w * per;
        const to = Math.min(o.count, from + per);
        if (from >= to) {
            break;
        }
        parts.push(new Promise((resolve, reject) => {
            const wk = new Worker(fileURLToPath(import.meta.url), {
                workerData: { o: { ...o, out: undefined }, from, to },
            });
            wk.once('message', resolve);
            wk.once('error', reject);
            wk.once('exit', (code) => {
                if (code !== 0) {
                    reject(new Error(`mint worker exited with ${code}`));
                }
            });
        }));
    }
    const chunks = await Promise.all(parts);
    const ws = createWriteStream(o.out);
    for (const c of chunks) {
        if (!ws.write(c)) {
            await new Promise((r) => ws.once('drain', r));
        }
    }
    await new Promise((resolve, reject) => {
        ws.end(resolve);
        ws.once('error', reject);
    });
    return { count: o.count, file: o.out, jtiPrefix: o.jtiPrefix, iat: o.iat };
}


function cli(argv) {
    const { values: o } = parseArgs({
        args: argv,
        strict: true,
        options: {
            alg: { type: 'string', default: 'ES256' },
            key: { type: 'string' },
            kid: { type: 'string' },
            count: { type: 'string', default: '1' },
            action: { type: 'string' },
            method: { type: 'string', default: 'POST' },
            url: { type: 'string' },
            body: { type: 'string', default: '' },
            iss: { type: 'string' },
            aud: { type: 'string' },
            sub: { type: 'string' },
            ttl: { type: 'string' },
            out: { type: 'string' },
        },
    });
    const a = {
        alg: o.alg, kid: o.kid, count: Number(o.count), action: o.action,
        method: o.method, url: o.url, body: o.body, iss: o.iss, aud: o.aud,
        sub: o.sub, out: o.out,
        keyPem: o.key === undefined ? undefined : readFileSync(o.key, 'utf8'),
        ttl: o.ttl === undefined ? undefined : Number(o.ttl),
    };
    for (const k of Object.keys(a)) {
        if (a[k] === undefined) {
            delete a[k];
        }
    }
    for (const k of ['keyPem', 'kid', 'action', 'url']) {
        if (a[k] === undefined) {
            throw new Error('--key, --kid, --action and --url are required');
        }
    }
    a.digest = requestDigest(a);
    return a;
}


if (!isMainThread) {
    const { o, from, to } = workerData;
    parentPort.postMessage(mintRange(o, from, to));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
    try {
        const a = cli(process.argv.slice(2));
        if (a.out) {
            const r = await mintFile(a);
            process.stderr.write(`minted ${r.count} tokens into ${r.file}\n`);
        } else {
            process.stdout.write(mintRange(defaults(a), 0, a.count));
        }
    } catch (e) {
        process.stderr.write(`mint: ${e.message}\n`);
        process.exit(2);
    }
}
