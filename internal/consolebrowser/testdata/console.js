// Drives Debian's Chromium through the Tombstone console, as support staff
// would use it, for browser_test.go (which starts PostgreSQL, the proxy and
// the console, deletes the rows, and checks the database afterwards).
// Everything it needs comes from the environment (see env below). It prints
// one "ok: ..." line per check and "all checks passed" last; any failed
// check throws, and the process exits 1 with the reason.
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const { chromium, request } = require('playwright-core');

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set (browser_test.go sets it)`);
  return v;
}

const base = env('CONSOLE_URL');                  // http://127.0.0.1:PORT
const out = env('SCREENSHOT_DIR');
const table = env('TABLE');                       // public.orders
const cascadeTable = env('CASCADE_TABLE');        // public.order_items
const key = env('KEY');                           // data-key of the row to restore: {"id":42}
const actor = env('ACTOR');
const reason = env('REASON');
const cascaded = env('CASCADED');                 // rows the deletion took with it
const otherKey = env('OTHER_KEY');                // a row that must stay deleted
const otherReason = env('OTHER_REASON');          // its reason
const childKey = env('CHILD_KEY');                // a row of CASCADE_TABLE the restored row's deletion took
const markupKey = env('MARKUP_KEY');              // a deleted row of CASCADE_TABLE
const markupReason = env('MARKUP_REASON');        // its reason, which holds markup
const deletedCount = env('DELETED_COUNT');        // deleted rows of TABLE on /
const support = { username: env('SUPPORT_USER'), password: env('SUPPORT_PASSWORD') };
const admin = { username: env('ADMIN_USER'), password: env('ADMIN_PASSWORD') };
const docScreenshot = process.env.DOC_SCREENSHOT || '';

// The flags the issue fixes; executablePath keeps playwright-core from
// looking for a browser build of its own.
const launchOptions = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
};

// Short pages: a full-page screenshot is as tall as the page, no taller.
const viewport = { width: 1100, height: 320 };

function ok(what) { console.log('ok: ' + what); }

function check(cond, msg) { if (!cond) throw new Error(msg); }

async function shot(page, name) {
  const file = path.join(out, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log('screenshot: ' + file);
  return file;
}

// Attribute selectors with the value as a CSS string (keys are JSON).
function attr(name, value) { return `[${name}=${JSON.stringify(value)}]`; }

async function text(locator) { return ((await locator.textContent()) || '').trim(); }

// bodyOf gives a failed page's text for the error message.
async function bodyOf(page) {
  try { return (await page.textContent('body') || '').trim().slice(0, 2000); } catch (e) { return '(no body: ' + e.message + ')'; }
}

async function expectStatus(resp, want, what, page) {
  check(resp, `${what}: no response`);
  if (resp.status() !== want) {
    const body = page ? await bodyOf(page) : (await resp.text()).slice(0, 2000);
    throw new Error(`${what}: status ${resp.status()}, want ${want}; body:\n${body}`);
  }
}

// tablePage opens / and follows the table's link, as a user does.
async function tablePage(page, who) {
  const resp = await page.goto(base + '/');
  await expectStatus(resp, 200, `GET / as ${who}`, page);
  const row = page.locator('#tables tr' + attr('data-table', table));
  check(await row.count() === 1, `GET / as ${who}: no <tr data-table="${table}"> in <table id="tables">:\n${await bodyOf(page)}`);
  const count = await text(row.locator('.deleted-count'));
  check(count === deletedCount, `GET / as ${who}: ${table} shows ${JSON.stringify(count)} deleted rows, want ${deletedCount}`);
  await Promise.all([page.waitForURL(u => u.pathname === '/tables/' + table), row.locator('a.table-link').click()]);
  check(await page.locator('table#deleted').count() === 1, `${page.url()} as ${who}: no <table id="deleted">:\n${await bodyOf(page)}`);
}

function deletedRow(page, k) { return page.locator('#deleted tr.deleted-row' + attr('data-key', k)); }

// unauthenticated: Chromium without credentials fails a navigation that
// gets a challenge (ERR_INVALID_AUTH_CREDENTIALS) instead of showing the
// 401, so these go through playwright's request API.
async function unauthenticated() {
  const api = await request.newContext();
  try {
    for (const p of ['/', '/tables/' + table, '/api/v1/tables']) {
      const resp = await api.get(base + p);
      check(resp.status() === 401, `GET ${p} without credentials: status ${resp.status()}, want 401`);
      const h = resp.headers()['www-authenticate'] || '';
      check(/^Basic /i.test(h) && h.includes('realm="Tombstone console"'),
        `GET ${p} without credentials: WWW-Authenticate is ${JSON.stringify(h)}, want Basic realm="Tombstone console"`);
    }
    ok('GET /, the table page and the API without credentials answer 401 with WWW-Authenticate Basic realm="Tombstone console"');
    // A wrong password, sent once (failures are rate limited).
    const bad = 'Basic ' + Buffer.from(support.username + ':not-the-password').toString('base64');
    const resp = await api.get(base + '/', { headers: { Authorization: bad } });
    check(resp.status() === 401, `GET / with a wrong password: status ${resp.status()}, want 401`);
    ok('a wrong password answers 401');
  } finally {
    await api.dispose();
  }
}

// crossSite serves a page on another origin (another port) that posts the
// restore form to the console on load, with a real token taken from the
// console's page: the origin check alone must refuse it.
async function crossSite(ctx, page, token) {
  const action = `${base}/tables/${table}/restore`;
  const esc = s => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const html = `<!doctype html><title>win a prize</title>
<form method="post" action="${esc(action)}">
<input type="hidden" name="key" value="${esc(otherKey)}">
<input type="hidden" name="csrf_token" value="${esc(token)}">
</form><script>document.forms[0].submit()</script>`;
  const srv = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(html); });
  await new Promise(r => srv.listen(0, '127.0.0.1', r));
  const evil = `http://127.0.0.1:${srv.address().port}`;
  try {
    const posted = page.waitForResponse(r => r.url() === action && r.request().method() === 'POST');
    await page.goto(evil + '/');
    const resp = await posted;
    await page.waitForLoadState();
    await expectStatus(resp, 403, `a form on ${evil} posting to ${action} (with a valid csrf_token)`, page);
    const origin = await resp.request().headerValue('origin');
    check(origin === evil, `the cross-site form POST was sent with Origin ${JSON.stringify(origin)}, want ${evil}: the test did not make a cross-site request`);
    ok(`a cross-site form POST from ${evil} with a valid csrf_token answers 403`);
    await shot(page, '05-cross-site-refused');

    const api = await ctx.request.post(`${base}/api/v1/tables/${table}/restore`, {
      headers: { Origin: evil, 'Content-Type': 'application/json' },
      data: JSON.stringify({ key: JSON.parse(otherKey) }),
    });
    check(api.status() === 403, `POST /api/v1/tables/${table}/restore with Origin ${evil}: status ${api.status()}, want 403; body: ${(await api.text()).slice(0, 500)}`);
    ok(`an API restore with Origin ${evil} answers 403`);
  } finally {
    srv.close();
  }
}

// escaped opens the cascade table's page from / and checks that a reason
// holding markup is shown as its text, with no element made of it.
async function escaped(browser, newContext) {
  const ctx = await newContext({ httpCredentials: support, viewport });
  const page = await ctx.newPage();
  const resp = await page.goto(base + '/');
  await expectStatus(resp, 200, 'GET /', page);
  await page.locator('#tables tr' + attr('data-table', cascadeTable) + ' a.table-link').click();
  const row = deletedRow(page, markupKey);
  await row.waitFor();
  const cell = row.locator('.deleted-reason');
  const shown = await text(cell);
  const elements = await cell.locator('*').count();
  check(shown === markupReason && elements === 0,
    `${page.url()}: row ${markupKey}'s reason reads ${JSON.stringify(shown)} with ${elements} element(s) in the cell; want the text ${JSON.stringify(markupReason)} and no elements: user data must be escaped`);
  ok(`${cascadeTable}: a reason holding markup is shown as text: ${markupReason}`);
  await shot(page, '04-escaped');

  // A child alone cannot come back while its parent stays deleted: the
  // page says why and restores nothing (browser_test.go counts the audit
  // log's restores).
  await deletedRow(page, childKey).locator('button.restore-button').click();
  const msg = await flashOf(page, 'error', `Restore of ${childKey} while its parent ${key} of ${table} is deleted`);
  const parent = table.slice(table.indexOf('.') + 1);
  check(msg.includes(parent), `the refused Restore of ${childKey} says ${JSON.stringify(msg)}, which does not name the deleted parent's table ${parent}`);
  check(await deletedRow(page, childKey).count() === 1, `row ${childKey} is no longer listed after its refused Restore`);
  ok(`Restore of ${childKey} alone is refused: ${msg}`);
  await shot(page, '04-restore-refused');
  await ctx.close();
}

// flashOf waits for the page's #flash and checks its class.
async function flashOf(page, kind, what) {
  const flash = page.locator('#flash');
  await flash.waitFor();
  const cls = (await flash.getAttribute('class')) || '';
  const msg = await text(flash);
  check(cls.split(/\s+/).includes(kind), `${what}: the flash is class ${JSON.stringify(cls)}, want ${kind}: ${msg}`);
  return msg;
}

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch(launchOptions);
  // Pages are local: a selector that has not shown up in 10s never will.
  const newContext = async opts => { const c = await browser.newContext(opts); c.setDefaultTimeout(10000); return c; };
  try {
    console.log(`version: chromium ${browser.version()}`);
    console.log(`version: playwright-core ${require('playwright-core/package.json').version}`);
    await unauthenticated();

    // support: restore only.
    const sctx = await newContext({ httpCredentials: support, viewport });
    const page = await sctx.newPage();
    const resp = await page.goto(base + '/');
    await expectStatus(resp, 200, `GET / as ${support.username}`, page);
    const csp = (await resp.headerValue('content-security-policy')) || '';
    check(csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), `GET /: Content-Security-Policy is ${JSON.stringify(csp)}, want the strict policy of the contract`);
    await shot(page, '01-tables');
    await tablePage(page, support.username);
    ok(`logged in as ${support.username}; / lists ${table} with ${deletedCount} deleted rows; its link leads to ${new URL(page.url()).pathname}`);

    const target = deletedRow(page, key);
    check(await target.count() === 1, `${page.url()}: no row with data-key ${key}:\n${await bodyOf(page)}`);
    const got = {
      by: await text(target.locator('.deleted-by')),
      reason: await text(target.locator('.deleted-reason')),
      cascaded: await text(target.locator('.cascaded')),
    };
    check(got.by === actor && got.reason === reason && got.cascaded === cascaded,
      `row ${key} shows deleted by ${JSON.stringify(got.by)}, reason ${JSON.stringify(got.reason)}, cascaded ${JSON.stringify(got.cascaded)}; want ${actor}, ${reason}, ${cascaded}`);
    check((await text(target.locator('.deleted-at'))) !== '', `row ${key} has an empty deleted-at cell`);
    ok(`row ${key} shows who (${actor}), why (${reason}) and ${cascaded} cascaded rows`);

    const other = deletedRow(page, otherKey);
    check(await other.count() === 1, `${page.url()}: no row with data-key ${otherKey}`);
    check((await text(other.locator('.deleted-reason'))) === otherReason, `row ${otherKey}'s reason is not ${JSON.stringify(otherReason)}`);

    check(await page.locator('.purge-button').count() === 0, `${support.username} (can: [restore]) sees a Purge button on ${page.url()}`);
    check(await target.locator('form.restore button.restore-button').count() === 1, `row ${key} has no Restore button in a form.restore`);
    ok(`${support.username} sees Restore and no Purge`);
    const tableShot = await shot(page, '02-table');
    if (docScreenshot) {
      fs.copyFileSync(tableShot, docScreenshot);
      console.log('screenshot copied to ' + docScreenshot);
    }

    // The filter form narrows the list to the actor's deletions.
    await page.locator('#filter input[name=actor]').fill(actor);
    await Promise.all([page.waitForURL(u => u.searchParams.get('actor') === actor),
      page.locator('#filter button[type=submit]').click()]);
    const bys = (await page.locator('#deleted tr.deleted-row .deleted-by').allTextContents()).map(s => s.trim());
    check(bys.length > 0 && bys.every(b => b === actor), `filtered by actor=${actor}, the rows are deleted by ${JSON.stringify(bys)}`);
    check(await deletedRow(page, key).count() === 1 && await deletedRow(page, otherKey).count() === 0,
      `filtered by actor=${actor}: want row ${key} listed and ${otherKey} not`);
    ok(`the filter actor=${actor} lists ${bys.length} row(s), ${key} among them`);
    await shot(page, '03-table-filtered');

    // Row values are user data: a reason holding markup reads as text.
    await escaped(browser, newContext);

    const token = await page.locator('#deleted tr.deleted-row form.restore input[name=csrf_token]').first().inputValue();
    check(token !== '', 'the restore form has an empty csrf_token');
    const xpage = await sctx.newPage();
    await crossSite(sctx, xpage, token);
    await xpage.close();

    // admin: restore and purge; Purge asks first.
    const actx = await newContext({ httpCredentials: admin, viewport });
    const apage = await actx.newPage();
    await tablePage(apage, admin.username);
    const arow = deletedRow(apage, otherKey);
    check(await arow.count() === 1, `${admin.username}: row ${otherKey} is not listed after the cross-site POST: it was restored`);
    check(await arow.locator('form.purge button.purge-button').count() === 1, `${admin.username} (can: [restore, purge]) has no Purge button on row ${otherKey}`);
    ok(`${admin.username} sees a Purge button`);
    await shot(apage, '06-table-admin');
    await arow.locator('form.purge button.purge-button').click();
    await apage.locator('form#confirm-purge #confirm-purge-button').waitFor();
    ok('Purge shows a confirmation page first');
    await shot(apage, '07-purge-confirm');
    await actx.close();

    // support restores the row.
    await page.goto(base + '/tables/' + table + '?actor=' + encodeURIComponent(actor));
    await deletedRow(page, key).locator('button.restore-button').click();
    const msg = await flashOf(page, 'ok', `Restore of ${key}`);
    const want = new RegExp(`Restored ${1 + Number(cascaded)} rows`);
    check(want.test(msg) && msg.includes(table) && msg.includes(cascadeTable),
      `after Restore the flash reads ${JSON.stringify(msg)}; want ${want} naming ${table} and ${cascadeTable}`);
    check(new URL(page.url()).pathname === '/tables/' + table, `after Restore the browser is at ${page.url()}, want the table page`);
    check(await deletedRow(page, key).count() === 0, `row ${key} is still listed after Restore`);
    ok(`Restore: ${msg}`);
    await shot(page, '08-restored');
    await sctx.close();
  } finally {
    await browser.close();
  }
  console.log('all checks passed');
}

main().catch(e => { console.error('FAIL: ' + (e && e.stack || e)); process.exit(1); });
