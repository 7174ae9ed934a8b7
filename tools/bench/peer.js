/*
 * peer.js: the njs peer of "make bench" (Debian's libnginx-mod-http-js,
 * njs 0.7.9): a js_content handler that validates the approval token with
 * WebCrypto (crypto.subtle.verify) and then hands the request to the
 * named location @backend (the same proxy_pass as the module's
 * locations), or answers 401.
 *
 * Checks: three base64url parts, header and payload JSON; the header's
 * kid selects a configured key and its alg must be that key's (ES256 or
 * RS256); iss equal; aud (string or array) contains the audience; exp
 * (required) >= now - leeway; nbf <= now + leeway; iat (required) <=
 * now + leeway and now - iat <= max age + leeway; the signature.
 *
 * Not checked: the binding to the request (the action digest), typ, and
 * single use (njs 0.7 keeps no state between requests).  njs 0.7 runs each
 * request in a fresh clone of the VM, so the key is imported (SPKI DER)
 * on every request: there is nowhere to keep a CryptoKey.
 *
 * The keys and the expected claims come from bench_keys.js (written by
 * tools/bench/bench.mjs next to the nginx configuration, found through
 * js_path):
 *   export default { iss, aud, leeway, max_age,
 *                    keys: { "<kid>": { alg, der: "<base64 SPKI>" } } };
 */

import CONF from 'bench_keys.js';

const ALGS = {
    ES256: {
        imp: { name: 'ECDSA', namedCurve: 'P-256' },
        ver: { name: 'ECDSA', hash: 'SHA-256' },
    },
    RS256: {
        imp: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        ver: { name: 'RSASSA-PKCS1-v1_5' },
    },
};

const B64U = /^[A-Za-z0-9_-]+$/;

const KEYS = {};

for (const kid in CONF.keys) {
    KEYS[kid] = {
        alg: CONF.keys[kid].alg,
        der: Buffer.from(CONF.keys[kid].der, 'base64'),
    };
}


function deny(r) {
    r.headersOut['WWW-Authenticate'] = 'Bearer error="invalid_token"';
    r.return(401, '');
}


function json(part) {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString());
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new Error('not a JSON object');
    }
    return v;
}


function claimsOk(c) {
    const now = Math.floor(Date.now() / 1000);
    const lw = CONF.leeway;

    if (c.iss !== CONF.iss) {
        return false;
    }

    const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
    if (aud.indexOf(CONF.aud) < 0) {
        return false;
    }

    if (typeof c.exp !== 'number' || c.exp < now - lw) {
        return false;
    }

    if (c.nbf !== undefined && (typeof c.nbf !== 'number'
                                || c.nbf > now + lw))
    {
        return false;
    }

    if (typeof c.iat !== 'number' || c.iat > now + lw
        || now - c.iat > CONF.max_age + lw)
    {
        return false;
    }

    return true;
}


async function verify(r) {
    try {
        const token = r.headersIn['Approval-Token'];

        if (!token || token.length > 16384) {
            return deny(r);
        }

        const p = token.split('.');

        if (p.length !== 3 || !B64U.test(p[0]) || !B64U.test(p[1])
            || !B64U.test(p[2]))
        {
            return deny(r);
        }

        const h = json(p[0]);
        const k = typeof h.kid === 'string' ? KEYS[h.kid] : undefined;

        if (!k || h.alg !== k.alg) {
            return deny(r);
        }

        if (!claimsOk(json(p[1]))) {
            return deny(r);
        }

        const a = ALGS[k.alg];
        const key = await crypto.subtle.importKey('spki', k.der, a.imp, false,
                                                  ['verify']);
        const ok = await crypto.subtle.verify(a.ver, key,
                                              Buffer.from(p[2], 'base64url'),
                                              p[0] + '.' + p[1]);
        if (!ok) {
            return deny(r);
        }

        r.internalRedirect('@backend');

    } catch (e) {
        deny(r);
    }
}


export default { verify };
