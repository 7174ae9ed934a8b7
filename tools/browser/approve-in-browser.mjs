#!/usr/bin/env node
/*
 * approve-in-browser: drive the development AS's approver page (GET
 * /approver of tools/dev-as) in a headless Chromium, as a human would on
 * their device, and report what the page showed.  Used by
 * t/099-approver-browser.t; playwright-core (pinned in package.json /
 * package-lock.json, "npm ci" here or "make deps") drives Debian's
 * /usr/bin/chromium (apt package "chromium"): no browser is downloaded.
 *
 *   node approve-in-browser.mjs --url http://127.0.0.1:PORT/approver
 *        [--id AUTH_REQ_ID] [--binding MESSAGE] [--digest DIGEST]
 *        [--decide approve|deny] [--screenshot FILE] [--timeout SECONDS]
 *        [--chromium PATH]
 *   node approve-in-browser.mjs --url URL --wait-title REGEX
 *
 * With --wait-title: opens any page (e.g. another origin's page that tries
 * to use the admin API from the browser) and waits until its title
 * matches REGEX; reports { title, errors, dialogs, foreign_requests }.
 *
 * Without --id, --binding or --digest: waits for the page's first refresh
 * and reports the page only (e.g. "no pending approvals").  With them:
 * waits for the pending item that matches all that were given (its
 * data-auth-req-id, the text of its binding message, the text of its
 * action digest), reads what it shows, checks that its countdown runs,
 * takes the screenshot, and with --decide clicks Approve or Deny and waits
 * until the item is in "Recently decided" with a final state.
 *
 * Prints one JSON object on stdout:
 *   { page: { title, status, status_text, empty_shown, pending_count,
 *             scripts, images, iframes, objects, inline_handlers },
 *     item: { auth_req_id, state, fields: { binding_message, login_hint,
 *             account, client_id, actions, method, locations, path,
 *             path_decoded, args, args_truncated, body_sha256,
 *             identifier, scope, expires_in, ... } (the text of the first
 *             element of each data-field), args: [[name, [value, ...]],
 *             ...] (the arguments as the page lists them), extras: {name:
 *             text} (the further string fields), countdown: [s1, s2] },
 *     after: { state, list, result } (with --decide),
 *     errors: [...]          page errors and console errors (CSP reports)
 *     dialogs: [...]         alert()/confirm() seen (there must be none)
 *     foreign_requests: [...] requests to another origin (must be none)
 *     headers: { ... }       the page's response headers }
 * Exit status: 0 when it could do all that, 1 when something was not
 * there in time (the JSON then has "failure"), 2 for bad arguments.
 */

import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';

const USAGE = `usage: node approve-in-browser.mjs --url URL [--id ID]
       [--binding MESSAGE] [--digest DIGEST] [--decide approve|deny]
       [--screenshot FILE] [--timeout SECONDS] [--chromium PATH]
   or: node approve-in-browser.mjs --url URL --wait-title REGEX`;

/* what t/099 asks for: nothing that talks to the network by itself */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-sync',
  '--no-first-run',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
  '--metrics-recording-only',
  '--disable-domain-reliability',
];

function usage(msg) {
  process.stderr.write(`approve-in-browser: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

let o;
try {
  ({ values: o } = parseArgs({
    options: {
      url: { type: 'string' },
      id: { type: 'string' },
      binding: { type: 'string' },
      digest: { type: 'string' },
      decide: { type: 'string' },
      'wait-title': { type: 'string' },
      screenshot: { type: 'string' },
      timeout: { type: 'string' },
      chromium: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage(err.message);
}

if (o.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const pageUrl = URL.parse(o.url ?? '');
if (!pageUrl || !/^https?:$/.test(pageUrl.protocol)) {
  usage('--url must be the approver page\'s http(s) URL');
}
if (o.decide !== undefined && !['approve', 'deny'].includes(o.decide)) {
  usage('--decide must be "approve" or "deny"');
}
const timeoutMs = 1000 * (o.timeout === undefined ? 20 : Number(o.timeout));
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
  usage('--timeout must be a positive number of seconds');
}
const wantItem = o.id !== undefined || o.binding !== undefined
  || o.digest !== undefined;
if (o.decide && !wantItem) {
  usage('--decide needs --id, --binding or --digest');
}
let titleRe;
if (o['wait-title'] !== undefined) {
  if (wantItem || o.decide) {
    usage('--wait-title goes with --url only');
  }
  try {
    titleRe = new RegExp(o['wait-title']);
  } catch (err) {
    usage(`--wait-title: ${err.message}`);
  }
}
const executablePath = o.chromium ?? '/usr/bin/chromium';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (err) {
  process.stderr.write(`approve-in-browser: cannot load playwright-core `
    + `(${err.code ?? err.message}): run "npm ci" in `
    + `${path.dirname(new URL(import.meta.url).pathname)} (or "make deps")\n`);
  process.exit(1);
}
if (!fs.existsSync(executablePath)) {
  process.stderr.write(`approve-in-browser: ${executablePath} is missing `
    + '(apt-get install chromium, or "make deps")\n');
  process.exit(1);
}

const report = {
  page: null, item: null, after: null, errors: [], dialogs: [],
  foreign_requests: [], headers: {},
};

const browser = await chromium.launch({
  executablePath, headless: true, args: CHROMIUM_ARGS, timeout: timeoutMs,
});

let status = 0;

try {
  const context = await browser.newContext({
    viewport: { width: 1000, height: 900 },
    serviceWorkers: 'block',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(timeoutMs);

  page.on('pageerror', (err) => report.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      report.errors.push(`console ${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('dialog', async (d) => {
    report.dialogs.push(`${d.type()}: ${d.message()}`);
    await d.dismiss();
  });
  page.on('request', (req) => {
    const u = URL.parse(req.url());
    if (!u || u.origin !== pageUrl.origin) {
      report.foreign_requests.push(req.url());
    }
  });

  const res = await page.goto(pageUrl.href, { waitUntil: 'load' });
  report.headers = res ? await res.allHeaders() : {};
  report.headers[':status'] = res ? res.status() : null;

  await drive(page);
} catch (err) {
  report.failure = String(err.message ?? err).split('\n')[0];
  status = 1;
} finally {
  await browser.close();
}

process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
process.exit(status);

/* what to do on the page, once it is loaded */
async function drive(page) {
  if (titleRe) {
    await page.waitForFunction((re) => new RegExp(re).test(document.title),
      titleRe.source);
    report.title = await page.title();
    return;
  }

  /* the first refresh has answered (or failed) */
  await page.waitForFunction(() => {
    const s = document.getElementById('status');
    return s && /^(Live|Cannot)/.test(s.textContent);
  });

  let item;
  if (wantItem) {
    item = await findItem(page);
    report.item = await describeItem(item);

    /* the countdown runs by itself */
    await page.waitForTimeout(1600);
    const later = await item.locator('[data-field="expires_in"]')
      .getAttribute('data-seconds');
    report.item.countdown = [report.item.countdown_start, Number(later)];
    delete report.item.countdown_start;
  }

  report.page = await describePage(page);

  if (o.screenshot) {
    fs.mkdirSync(path.dirname(path.resolve(o.screenshot)), { recursive: true });
    await page.screenshot({ path: o.screenshot, fullPage: true });
  }

  if (o.decide) {
    await item.locator(`button[data-action="${o.decide}"]`).click();
    const id = report.item.auth_req_id;
    const done = page.locator(`#decided [data-auth-req-id="${cssString(id)}"]`
      + ':not([data-state="deciding"])');
    await done.waitFor({ state: 'attached' });
    report.after = {
      state: await done.getAttribute('data-state'),
      list: 'decided',
      result: await done.locator('[data-field="result"]').textContent(),
      buttons_hidden: await done.locator('.buttons').isHidden(),
    };
    if (o.screenshot) {
      const ext = path.extname(o.screenshot);
      await page.screenshot({
        path: `${o.screenshot.slice(0, -ext.length || undefined)}-after${ext}`,
        fullPage: true,
      });
    }
    report.page_after = await describePage(page);
  }
}

/* a string for a CSS attribute selector in double quotes */
function cssString(s) {
  return s.replace(/["\\]/g, (c) => `\\${c}`);
}

async function findItem(page) {
  let sel = '#pending [data-auth-req-id][data-state="pending"]';
  if (o.id !== undefined) {
    sel = `#pending [data-auth-req-id="${cssString(o.id)}"]`;
  }
  let loc = page.locator(sel);
  if (o.binding !== undefined) {
    loc = loc.filter({
      has: page.locator('[data-field="binding_message"]', {
        hasText: new RegExp(`^${escapeRe(o.binding)}$`),
      }),
    });
  }
  if (o.digest !== undefined) {
    loc = loc.filter({
      has: page.locator('[data-field="identifier"]', {
        hasText: new RegExp(`^${escapeRe(o.digest)}$`),
      }),
    });
  }
  const first = loc.first();
  await first.waitFor({ state: 'visible' });
  /* the countdown has been drawn */
  await first.locator('[data-field="expires_in"][data-seconds]')
    .waitFor({ state: 'attached' });
  return first;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function describeItem(item) {
  return item.evaluate((li) => {
    const fields = {};
    for (const e of li.querySelectorAll('[data-field]')) {
      /* the first of each: one authorization_details entry here */
      if (!(e.dataset.field in fields)) {
        fields[e.dataset.field] = e.textContent;
      }
    }
    const exp = li.querySelector('[data-field="expires_in"]');
    /* the arguments of the first entry: [name, [value, ...]] in order */
    const argsEl = li.querySelector('[data-field="args"]');
    const args = argsEl ? [...argsEl.querySelectorAll('[data-arg]')]
      .map((a) => [a.querySelector('[data-part="name"]')?.textContent,
        [...a.querySelectorAll('[data-part="value"]')]
          .map((v) => v.textContent)]) : [];
    const extras = {};
    for (const e of li.querySelectorAll('[data-field="extra"]')) {
      if (!(e.dataset.name in extras)) {
        extras[e.dataset.name] = e.textContent;
      }
    }
    return {
      auth_req_id: li.dataset.authReqId,
      state: li.dataset.state,
      fields,
      args,
      extras,
      details: li.querySelectorAll('[data-detail]').length,
      buttons: [...li.querySelectorAll('button[data-action]')]
        .map((b) => `${b.dataset.action}:${b.disabled ? 'disabled' : 'enabled'}`),
      countdown_start: Number(exp.dataset.seconds),
    };
  });
}

async function describePage(page) {
  return page.evaluate(() => {
    const s = document.getElementById('status');
    const empty = document.getElementById('empty');
    let handlers = 0;
    for (const e of document.querySelectorAll('*')) {
      for (const a of e.attributes) {
        if (/^on/i.test(a.name)) {
          handlers++;
        }
      }
    }
    return {
      title: document.title,
      status: s.dataset.status,
      status_text: s.textContent,
      empty_shown: !empty.hidden && empty.offsetParent !== null,
      empty_text: empty.textContent,
      pending_count: Number(document.getElementById('pending-count')
        .textContent),
      pending_items: document.querySelectorAll('#pending [data-auth-req-id]')
        .length,
      decided_items: document.querySelectorAll('#decided [data-auth-req-id]')
        .length,
      scripts: document.scripts.length,
      images: document.images.length,
      iframes: document.querySelectorAll('iframe, frame').length,
      objects: document.querySelectorAll('object, embed').length,
      inline_handlers: handlers,
    };
  });
}
