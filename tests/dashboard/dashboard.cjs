// The dashboard in headless Debian chromium through playwright-core: every view
// at 1366x768 and at a phone's size, as a county administrator and as a school
// viewer; the figures shown equal bbt-report's JSON; no console error and no
// CSP violation; the English switch; logout and an ended session.
// Run by tests/dashboard/run, which builds the store and starts bbt-web.
'use strict';
const path = require('path');
const fs = require('fs');
const assert = require('assert/strict');

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`dashboard: ${k} is not set`); return v; };
const VENDOR = env('BBT_DASH_VENDOR');
const BASE = env('BBT_DASH_BASE');
const OUT = env('BBT_DASH_OUT');
const WEEK = env('BBT_DASH_WEEK');
const PASSWORD = env('BBT_DASH_PASSWORD');
const SCHOOL = env('BBT_DASH_SCHOOL');           // the school viewer's school
const TOWNSHIP = env('BBT_DASH_TOWNSHIP');       // the township viewer's township
const REPORTS = env('BBT_DASH_REPORTS');         // bbt-report's JSON documents
const rep = (name) => JSON.parse(fs.readFileSync(path.join(REPORTS, `${name}.json`), 'utf8'));

let chromium;
try {
  ({ chromium } = require(path.join(VENDOR, 'node_modules', 'playwright-core')));
} catch (e) {
  console.error(`dashboard: playwright-core is not installed in ${VENDOR} (scripts/install-deps runs npm ci there): ${e.message}`);
  process.exit(1);
}

const summary = rep('summary'), summaryEn = rep('summary-en'), schools = rep('schools');
const FIGURES = ['power_on_rate', 'usage_rate', 'avg_daily_hours', 'period_usage_rate',
  'interactive_share', 'online_rate', 'intact_rate', 'weekly_rule_rate'];
const fmt = (k, v) => (v === null ? '—' : k === 'avg_daily_hours' ? v.toFixed(2) : `${(v * 100).toFixed(1)}%`);

const problems = [];
const T0 = Date.now();
const step = (what) => { if (process.env.BBT_DASH_VERBOSE) console.log(`${((Date.now() - T0) / 1000).toFixed(1)} s ${what}`); };
let allow401 = false;
let shot = 0;

const VIEWPORTS = [{ name: 'desktop', size: { width: 1366, height: 768 } }, { name: 'phone', size: { width: 390, height: 844 } }];

async function newPage(browser, vp) {
  const context = await browser.newContext({ viewport: vp.size, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  // A 401 is expected from the wrong password and the ended session; the
  // browser also logs it as "Failed to load resource", which the response check covers.
  page.on('console', (m) => { if ((m.type() === 'error' || m.type() === 'warning') && !/status of 401/.test(m.text())) problems.push(`${vp.name} console ${m.type()}: ${m.text()} (${page.url()})`); });
  page.on('pageerror', (e) => problems.push(`${vp.name} page error: ${e.message} (${page.url()})`));
  page.on('requestfailed', (r) => { if (!/\.xlsx|format=xlsx/.test(r.url())) problems.push(`${vp.name} request failed: ${r.url()} ${r.failure()?.errorText}`); });
  page.on('response', (r) => { if (r.status() >= 400 && !(r.status() === 401 && (allow401 || /\/api\/v1\/(me|login)$/.test(r.url())))) problems.push(`${vp.name} HTTP ${r.status()}: ${r.url()}`); });
  return { context, page };
}

// Wait for a view to be drawn (app.js sets data-view and data-ready when done).
async function view(page, name) {
  await page.waitForSelector(`main[data-view="${name}"][data-ready]`, { timeout: 10000 });
  const v = await page.getAttribute('main', 'data-view');
  assert.equal(v, name, `expected the ${name} view at ${page.url()}`);
}
async function goto(page, hash, name) {
  await page.evaluate(() => document.querySelector('main').removeAttribute('data-ready'));
  await page.evaluate((h) => { location.hash = h; }, hash);
  await view(page, name);
}
async function screenshot(page, vp, what) {
  step(`${vp.name}: ${what}`);
  const file = path.join(OUT, `${String(++shot).padStart(2, '0')}-${vp.name}-${what}.png`);
  await page.screenshot({ path: file, fullPage: true });
}
async function login(page, user) {
  await page.goto(BASE + '/');
  await view(page, 'login');
  await page.fill('#login-user', user);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
}
async function noHorizontalScroll(page, vp, what) {
  const [sw, cw, wide] = await page.evaluate(() => {
    const cw = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > cw + 1 && !e.closest('.scroll'))
      .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
    return [document.documentElement.scrollWidth, cw, wide];
  });
  assert.ok(sw <= cw + 1, `${vp.name} ${what}: the page scrolls sideways (${sw} > ${cw}): ${wide.join(', ')}`);
}

async function countyAdmin(browser) {
  const vp = VIEWPORTS[0];
  step(`${vp.name}: county admin`);
  const { context, page } = await newPage(browser, vp);
  // A wrong password is refused on the page.
  await page.goto(BASE + '/');
  await view(page, 'login');
  await screenshot(page, vp, 'login');
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', 'wrong password');
  const refused = page.waitForResponse((r) => r.url().endsWith('/api/v1/login'));
  await page.click('#login-submit');
  assert.equal((await refused).status(), 401);
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);

  await login(page, 'admin');
  await view(page, 'county');
  for (const vp of VIEWPORTS) {
    await page.setViewportSize(vp.size);
    await countyPages(page, vp);
  }
  await englishLogoutExpiry(page, context, VIEWPORTS[0]);
  await context.close();
}

async function countyPages(page, vp) {
  step(`${vp.name}: county pages`);
  await goto(page, `#/county?week=${WEEK}`, 'county');
  // The eight tiles: each value is bbt-report summary's overall figure, shown rounded.
  const tiles = await page.$$eval('#tiles .tile', (els) => els.map((e) => ({
    key: e.dataset.key, value: e.dataset.value, label: e.querySelector('.label').textContent, shown: e.querySelector('.value').textContent })));
  assert.deepEqual(tiles.map((x) => x.key), FIGURES);
  for (const x of tiles) {
    const want = summary.objects.overall[x.key];
    assert.equal(x.value, want === null ? 'null' : String(want), `tile ${x.key}`);
    assert.equal(x.shown, fmt(x.key, want), `tile ${x.key} as shown`);
    assert.equal(x.label, summary.headings.overall.columns[x.key], `tile ${x.key} label`);
  }
  // The ranking: every school of the report, by usage rate.
  const ranked = await page.$$eval('#ranking-table tbody tr', (rs) => rs.map((r) => r.dataset.school));
  const want = [...schools.tables.schools].sort((a, b) => (b.usage_rate ?? -1) - (a.usage_rate ?? -1)).map((r) => r.school_code);
  assert.deepEqual(ranked, want, 'school ranking');
  // The areas and the balance verdicts.
  assert.equal(await page.$$eval('#areas-table tbody tr', (r) => r.length), summary.tables.areas.length);
  const balance = rep('balance');
  const cvs = await page.$$eval('#balance-primary tbody tr', (rs) => rs.map((r) => [r.dataset.indicator, r.dataset.cv]));
  assert.deepEqual(cvs, balance.tables.primary.map((r) => [r.indicator, r.cv === null ? 'null' : String(r.cv)]), 'balance CVs');
  assert.equal(await page.$$eval('#trend-chart canvas, #area-chart canvas', (c) => c.length) >= 2, true, 'charts drawn');
  await noHorizontalScroll(page, vp, 'county');
  await screenshot(page, vp, 'county');

  // Township drill-down narrows the ranking to that township's schools.
  const tw = summary.tables.townships.find((r) => r.township)?.township;
  await page.click(`#townships-table a:text-is("${tw}")`);
  await page.waitForFunction((n) => document.querySelectorAll('#ranking-table tbody tr').length === n && document.querySelector('main').dataset.ready,
    schools.tables.schools.filter((r) => r.township === tw).length);

  // County → school → terminal.
  await goto(page, `#/county?week=${WEEK}`, 'county');
  const first = want[0];
  await page.click(`#ranking-table tr[data-school="${first}"] a`);
  await view(page, 'school');
  assert.ok(page.url().includes(`#/school/${first}`));
  const status = JSON.parse(await page.evaluate((s) => fetch(`/api/v1/status?school=${s}`).then((r) => r.text()), first));
  const rooms = await page.$$eval('#rooms .room', (rs) => rs.map((r) => [r.dataset.terminal, r.dataset.state]));
  assert.deepEqual(rooms, status.schools[0].terminals.map((x) => [x.terminal, x.state]), 'classroom grid = /api/v1/status');
  assert.ok(await page.$('#heatmap canvas'), 'heatmap drawn');
  const dl = await page.getAttribute('#record-download', 'href');
  assert.ok(dl.includes('format=xlsx') && dl.includes(`school=${first}`), dl);
  const xlsx = await page.evaluate((u) => fetch(u).then((r) => [r.status, r.headers.get('content-type')]), dl);
  assert.equal(xlsx[0], 200);
  assert.match(xlsx[1], /spreadsheetml/);
  await noHorizontalScroll(page, vp, 'school');
  await screenshot(page, vp, 'school');
  const term = rooms.find(([, s]) => s !== 'never')[0];
  await page.click(`#rooms a[data-terminal="${term}"]`);
  await view(page, 'terminal');
  const segs = await page.$$eval('#timeline .seg', (s) => s.length);
  assert.ok(segs > 0, 'the timeline has intervals');
  await noHorizontalScroll(page, vp, 'terminal');
  await screenshot(page, vp, 'terminal');

  // The wall screen.
  await goto(page, `#/wall?week=${WEEK}`, 'wall');
  const wallTiles = await page.$$eval('#wall-tiles .tile', (els) => els.map((e) => [e.dataset.key, e.dataset.value]));
  assert.deepEqual(wallTiles, FIGURES.map((k) => [k, String(summary.objects.overall[k])]));
  await noHorizontalScroll(page, vp, 'wall');
  await screenshot(page, vp, 'wall');
}

async function englishLogoutExpiry(page, context, vp) {
  await page.setViewportSize(vp.size);

  // English, remembered across a reload; labels from the report's lang=en.
  await goto(page, `#/county?week=${WEEK}`, 'county');
  await page.click('#lang');
  await page.waitForFunction((l) => document.querySelector('#tiles .tile .label')?.textContent === l,
    summaryEn.headings.overall.columns.power_on_rate);
  assert.equal(await page.textContent('#logout'), 'Sign out');
  await page.reload();
  await view(page, 'county');
  assert.equal(await page.textContent('#tiles .tile .label'), summaryEn.headings.overall.columns.power_on_rate);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await screenshot(page, vp, 'county-en');
  await page.click('#lang');
  await page.waitForFunction((l) => document.querySelector('#tiles .tile .label')?.textContent === l, summary.headings.overall.columns.power_on_rate);

  // Logout: a POST with the session's CSRF token, then the login page.
  const out = page.waitForRequest((r) => r.url().endsWith('/api/v1/logout'));
  await page.click('#logout');
  const req = await out;
  assert.match(req.headers()['x-csrf-token'] || '', /^[0-9a-f]{16,}$/, 'logout sends X-CSRF-Token');
  assert.equal((await req.response()).status(), 200);
  await view(page, 'login');

  // An ended session (the cookie gone): the next page goes back to the login.
  await login(page, 'admin');
  await view(page, 'county');
  await context.clearCookies();
  allow401 = true;
  const gone = page.waitForResponse((r) => r.status() === 401);
  await page.evaluate((w) => { location.hash = `#/wall?week=${w}`; }, WEEK);
  await gone;
  await view(page, 'login');
  assert.ok((await page.textContent('#login-error')).length > 0, 'the session-ended notice');
  allow401 = false;
}

// A township viewer: the county view and the wall screen with the township's
// schools only (the server's scope), at the desktop size.
async function townshipViewer(browser) {
  const vp = VIEWPORTS[0];
  step('township viewer');
  const { context, page } = await newPage(browser, vp);
  await login(page, 'town');
  await view(page, 'county');
  await goto(page, `#/county?week=${WEEK}`, 'county');
  const mine = schools.tables.schools.filter((r) => r.township === TOWNSHIP);
  assert.ok(mine.length > 0 && mine.length < schools.tables.schools.length);
  const ranked = await page.$$eval('#ranking-table tbody tr', (rs) => rs.map((r) => r.dataset.school));
  assert.deepEqual(ranked.sort(), mine.map((r) => r.school_code).sort(), 'the township viewer ranks their schools');
  for (const where of [`#/county?week=${WEEK}`, `#/wall?week=${WEEK}`]) {
    if (where.startsWith('#/wall')) await goto(page, where, 'wall');
    const text = await page.textContent('body');
    for (const o of schools.tables.schools.filter((r) => r.township !== TOWNSHIP))
      assert.ok(!text.includes(o.school_name), `the township viewer's ${where} shows ${o.school_name}`);
  }
  await screenshot(page, vp, 'township-wall');
  await context.close();
}

async function schoolViewer(browser) {
  const { context, page } = await newPage(browser, VIEWPORTS[0]);
  await login(page, 'viewer');
  await view(page, 'school');
  assert.ok(page.url().includes(`#/school/${SCHOOL}`), `lands on the school: ${page.url()}`);
  for (const vp of VIEWPORTS) {
    await page.setViewportSize(vp.size);
    await viewerPages(page, vp);
  }
  await context.close();
}

async function viewerPages(page, vp) {
  step(`${vp.name}: school viewer`);
  await goto(page, `#/school/${SCHOOL}?week=${WEEK}`, 'school');
  const row = schools.tables.schools.find((r) => r.school_code === SCHOOL);
  const st = await page.$$eval('#school-tiles .tile', (els) => els.map((e) => [e.dataset.key, e.dataset.value]));
  assert.deepEqual(st, FIGURES.map((k) => [k, row[k] === null ? 'null' : String(row[k])]), 'school tiles = bbt-report schools');
  await screenshot(page, vp, 'viewer-school');
  // Nothing of another school, no link outside the school, and no way there.
  const others = schools.tables.schools.filter((r) => r.school_code !== SCHOOL);
  const check = async (what) => {
    const text = await page.textContent('body');
    for (const o of others) {
      assert.ok(!text.includes(o.school_code) && !text.includes(o.school_name), `${what} shows ${o.school_code}`);
    }
    const hrefs = await page.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href')));
    for (const h of hrefs) {
      assert.ok(h.startsWith(`#/school/${SCHOOL}`) || h.startsWith(`#/terminal/${SCHOOL}/`) || h.includes(`school=${SCHOOL}`),
        `${what}: a link outside the school: ${h}`);
    }
  };
  await check('school');
  assert.equal(await page.$('#nav a[href^="#/county"], #nav a[href^="#/wall"]'), null, 'no county or wall link');
  await page.click('#rooms .room');
  await view(page, 'terminal');
  await check('terminal');
  await screenshot(page, vp, 'viewer-terminal');
  for (const h of ['#/county', `#/wall?week=${WEEK}`, `#/school/${others[0].school_code}`]) {
    await page.evaluate(() => document.querySelector('main').removeAttribute('data-ready'));
    await page.evaluate((x) => { location.hash = x; }, h);
    await view(page, 'school');
    assert.ok(page.url().includes(`#/school/${SCHOOL}`), `${h} leads back to the school: ${page.url()}`);
    await check(h);
  }
  await noHorizontalScroll(page, vp, 'viewer school');
}

(async () => {
  const exe = process.env.BBT_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(exe)) { console.error(`dashboard: ${exe} is missing (scripts/install-deps installs Debian's chromium)`); process.exit(1); }
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const t0 = Date.now();
  try {
    await countyAdmin(browser);
    await townshipViewer(browser);
    await schoolViewer(browser);
  } finally {
    await browser.close();
  }
  if (problems.length) {
    console.error('dashboard: console errors, CSP violations or failed requests:\n  ' + problems.join('\n  '));
    process.exit(1);
  }
  console.log(`dashboard: every view at 1366x768 and 390x844 as county admin and school viewer, county and wall as township viewer, ${shot} screenshots in ${OUT}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
})().catch((e) => {
  console.error(`dashboard: ${e.stack || e}`);
  if (problems.length) console.error('and:\n  ' + problems.join('\n  '));
  process.exit(1);
});
