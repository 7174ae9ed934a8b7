#!/usr/bin/env node
/*
 * validator.mjs: the external JWT validator of "make bench", the peer that
 * nginx asks by auth_request (keepalive upstream).  Node http + jose
 * (pinned in package-lock.json), loopback only.
 *
 *   node tools/bench/validator.mjs --port N --keys FILE
 *       --iss ISSUER --aud AUDIENCE [--leeway 1] [--max-age 3600]
 *
 * FILE is a JSON object {"<kid>": {"alg": "ES256", "pem": "<SPKI PEM>"}}.
 * Any request: the token in Approval-Token (or "Authorization: Bearer")
 * is verified with jose's jwtVerify: the header's kid selects a key, the
 * algorithm is pinned to that key's, then the signature, iss, aud, exp,
 * nbf, iat (not in the future, not older than max-age) are checked.
 * Answers 204 when the token is good, 401 otherwise (an empty body).
 *
 * It does NOT check the binding to the request (the action digest) nor
 * single use: it is a plain stateless JWT check, the usual job of such
 * a validator.
 *
 * Prints "validator listening on 127.0.0.1:PORT" once listening; exits 0
 * on SIGTERM or SIGINT.
 */

import http from 'node:http';
import { readFileSync } from 'node:fs';

import { importSPKI, jwtVerify } from 'jose';


function parseArgs(argv) {
    const a = { port: 0, leeway: 1, maxAge: 3600 };
    for (let i = 0; i < argv.length; i += 2) {
        const v = argv[i + 1];
        if (v === undefined) {
            throw new Error(`${argv[i]} needs a value`);
        }
        switch (argv[i]) {
        case '--port': a.port = Number(v); break;
        case '--keys': a.keys = v; break;
        case '--iss': a.iss = v; break;
        case '--aud': a.aud = v; break;
        case '--leeway': a.leeway = Number(v); break;
        case '--max-age': a.maxAge = Number(v); break;
        default: throw new Error(`unknown option ${argv[i]}`);
        }
    }
    if (!a.keys || !a.iss || !a.aud) {
        throw new Error('--keys, --iss and --aud are required');
    }
    return a;
}


async function main() {
    const a = parseArgs(process.argv.slice(2));
    const spec = JSON.parse(readFileSync(a.keys, 'utf8'));
    const keys = new Map();
    for (const [kid, k] of Object.entries(spec)) {
        keys.set(kid, { alg: k.alg, key: await importSPKI(k.pem, k.alg) });
    }

    /* the key of the token's kid; its algorithm is the only one allowed */
    const getKey = (header) => {
        const k = typeof header.kid === 'string' ? keys.get(header.kid)
                                                 : undefined;
        if (!k || header.alg !== k.alg) {
            throw new Error('no key for this kid and alg');
        }
        return k.key;
    };

    const options = {
        issuer: a.iss,
        audience: a.aud,
        clockTolerance: a.leeway,
        maxTokenAge: a.maxAge,
        requiredClaims: ['exp', 'iat'],
    };

    const server = http.createServer(async (req, res) => {
        let token = req.headers['approval-token'];
        if (token === undefined) {
            const auth = req.headers.authorization ?? '';
            token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
        }
        let status = 401;
        if (token !== '' && token.length <= 16384) {
            try {
                await jwtVerify(token, getKey, options);
                status = 204;
            } catch {
                status = 401;
            }
        }
        req.resume();
        res.writeHead(status, { 'Content-Length': '0' });
        res.end();
    });

    server.keepAliveTimeout = 120000;
    server.headersTimeout = 125000;
    server.requestTimeout = 0;

    const stop = () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
        setTimeout(() => process.exit(0), 1000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);

    server.listen(a.port, '127.0.0.1', () => {
        process.stdout.write('validator listening on 127.0.0.1:'
                             + `${server.address().port}\n`);
    });
}


main().catch((e) => {
    process.stderr.write(`validator: ${e.message}\n`);
    process.exit(2);
});
