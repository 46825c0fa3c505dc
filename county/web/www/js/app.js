// bbt-web's dashboard: one page, routes in the fragment —
//   #/login, #/county, #/wall, #/school/SCHOOL, #/terminal/SCHOOL/TERMINAL
// each with the period as ?week=YYYY-MM-DD or ?from=…&to=… (terminal: ?date=).
// The server enforces the scope; the pages only never offer a link outside it.
import { t, lang, setLang } from './i18n.js';
import { get, post, report, downloadUrl, setCsrf, onSessionExpired, ApiError } from './api.js';
import { h, iso, day, addDays, monday, daysBetween, FIGURES, fmt, fmtDelta, fmtTime, fmtBytes, isRate } from './util.js';

const main = document.getElementById('main');
let me = null;            // GET /api/v1/me
let charts = [];          // ECharts instances of the page shown
let timers = [];
let expiredNotice = false;
let renderSeq = 0;

/* ---------- routes and the period ---------- */

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), q: new URLSearchParams(query || '') };
}
const link = (parts, q) => '#/' + parts.map(encodeURIComponent).join('/') + (q && [...q].length ? '?' + q : '');
const go = (parts, q) => { location.hash = link(parts, q); };

// The period of a page: a week (the default: last week, Monday to Sunday) or a range.
function period(q) {
  const from = day(q.get('from')), to = day(q.get('to'));
  if (from && to && from <= to) return { from, to, week: false };
  const w = day(q.get('week')) || addDays(monday(new Date()), -7);
  const m = monday(w);
  return { from: m, to: addDays(m, 6), week: true };
}
const periodQuery = (p) => new URLSearchParams(p.week ? { week: iso(p.from) } : { from: iso(p.from), to: iso(p.to) });
const apiPeriod = (p) => (p.week ? { week: iso(p.from) } : { from: iso(p.from), to: iso(p.to) });
function previous(p) {
  const n = daysBetween(p.from, p.to) + 1;
  return { from: addDays(p.from, -n), to: addDays(p.from, -1), week: p.week };
}

function periodBar(p, parts) {
  const box = document.getElementById('period');
  box.replaceChildren();
  if (!parts) return;
  const n = daysBetween(p.from, p.to) + 1;
  const shift = (k) => {
    const q = p.week ? new URLSearchParams({ week: iso(addDays(p.from, 7 * k)) })
      : new URLSearchParams({ from: iso(addDays(p.from, n * k)), to: iso(addDays(p.to, n * k)) });
    go(parts, q);
  };
  const thisMon = monday(new Date());
  const input = h('input', { type: 'date', value: iso(p.from), 'aria-label': t('week'), id: 'period-day',
    onchange: (e) => { if (day(e.target.value)) go(parts, new URLSearchParams({ week: e.target.value })); } });
  box.append(
    h('button.link', { type: 'button', title: t('prev'), 'aria-label': t('prev'), onclick: () => shift(-1) }, '‹'),
    h('span.range', { id: 'period-range' }, `${iso(p.from)} – ${iso(p.to)}`),
    h('button.link', { type: 'button', title: t('next'), 'aria-label': t('next'), onclick: () => shift(1) }, '›'),
    input,
    h('button.chip', { type: 'button', onclick: () => go(parts, new URLSearchParams({ week: iso(addDays(thisMon, -7)) })) }, t('last_week')),
    h('button.chip', { type: 'button', onclick: () => go(parts, new URLSearchParams({ week: iso(thisMon) })) }, t('this_week')),
    h('button.chip', { type: 'button', onclick: () => go(parts, new URLSearchParams({ from: iso(addDays(new Date(), -29)), to: iso(new Date()) })) }, t('last_30')),
  );
}

/* ---------- the frame: header, language, logout ---------- */

const isSchoolViewer = () => me && me.scope && me.scope.role === 'school';
const home = () => (isSchoolViewer() ? ['school', me.scope.school] : ['county']);

function frame(parts, p) {
  const top = document.getElementById('top');
  top.hidden = !me;
  document.body.classList.toggle('wall', parts && parts[0] === 'wall');
  document.title = t('app');
  const brand = document.getElementById('brand');
  brand.textContent = t('app');
  brand.href = link(home());
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  if (me) {
    const q = p ? periodQuery(p) : undefined;
    const items = isSchoolViewer()
      ? [[['school', me.scope.school], t('school')]]
      : [[['county'], t('county')], [['wall'], t('wall')]];
    for (const [to, label] of items)
      nav.append(h('a', { href: link(to, q), class: parts && parts[0] === to[0] ? 'here' : null }, label));
  }
  document.getElementById('lang').textContent = t('lang_switch');
  document.getElementById('logout').textContent = t('logout');
  document.getElementById('user').textContent = me ? me.user : '';
}

document.getElementById('lang').addEventListener('click', () => { setLang(lang === 'zh' ? 'en' : 'zh'); render(); });
document.getElementById('logout').addEventListener('click', async () => {
  try { await post('/api/v1/logout', {}); } catch (e) { /* ended already */ }
  me = null; setCsrf(null);
  go(['login']);
});
onSessionExpired(() => {
  if (!me) return;
  me = null; setCsrf(null); expiredNotice = true;
  go(['login']);
});
window.addEventListener('hashchange', () => render());
window.addEventListener('resize', () => charts.forEach((c) => c.resize()));

function clearPage() {
  charts.forEach((c) => c.dispose());
  charts = [];
  timers.forEach((id) => clearInterval(id));
  timers = [];
}

function chart(el, option) {
  if (!window.echarts) throw new Error('ECharts did not load (vendor/echarts.min.js)');
  const c = window.echarts.init(el, document.body.classList.contains('wall') ? 'dark' : null, { renderer: 'canvas' });
  c.setOption({ animation: false, textStyle: { fontFamily: 'inherit' }, ...option });
  charts.push(c);
  return c;
}

const card = (title, id, ...body) => h('section.card', { id }, h('h2', {}, title), ...body);
const empty = () => h('p.empty', {}, t('no_data'));

/* ---------- rendering ---------- */

async function render() {
  const seq = ++renderSeq;
  clearPage();
  const { parts, q } = parseHash();
  if (!me && parts[0] !== 'login') {
    try {
      me = await get('/api/v1/me');
      setCsrf(me.csrf_token);
    } catch (e) {
      me = null;
      if (seq === renderSeq) go(['login']);
      return;
    }
  }
  if (parts[0] === 'login') { frame(null); return loginView(); }
  // A school viewer has their school, its terminals, and nothing else.
  if (isSchoolViewer() && !((parts[0] === 'school' || parts[0] === 'terminal') && parts[1] === me.scope.school))
    return go(home(), q);
  const view = { county: countyView, wall: wallView, school: schoolView, terminal: terminalView }[parts[0]];
  if (!view) return go(home(), q);
  const p = parts[0] === 'terminal' ? null : period(q);
  frame(parts, p);
  periodBar(p, p ? parts : null);
  main.replaceChildren(h('p.loading', {}, '…'));
  try {
    const page = await view(parts, q, p);
    if (seq !== renderSeq) return;
    main.replaceChildren(page.el);
    page.after?.();
    main.dataset.view = parts[0];
    main.dataset.ready = String(seq);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return;
    const msg = e instanceof ApiError ? (e.status === 403 ? t('forbidden') : e.status === 404 ? t('not_found') : `${t('error')}: ${e.message}`)
      : `${t('error')}: ${e.message}`;
    main.replaceChildren(h('p.error', { role: 'alert' }, msg), h('p', {}, h('a', { href: link(home()) }, t('back'))));
    main.dataset.view = 'error';
    main.dataset.ready = String(seq);
    if (!(e instanceof ApiError)) console.error(e);
  }
}

function loginView() {
  const err = h('p.error', { role: 'alert', id: 'login-error' }, expiredNotice ? t('expired') : '');
  expiredNotice = false;
  const user = h('input', { name: 'user', id: 'login-user', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form.login', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      try {
        me = await post('/api/v1/login', { user: user.value, password: pass.value });
        setCsrf(me.csrf_token);
        go(home());
      } catch (e) {
        err.textContent = e.status === 429 ? t('throttled') : e.status === 401 ? t('login_failed') : `${t('error')}: ${e.message}`;
      }
    },
  },
  h('h1', {}, t('app')),
  h('label', {}, t('user'), user),
  h('label', {}, t('password'), pass),
  h('button', { type: 'submit', id: 'login-submit' }, t('login')),
  err,
  h('button.link', { type: 'button', onclick: () => { setLang(lang === 'zh' ? 'en' : 'zh'); render(); } }, t('lang_switch')));
  main.replaceChildren(form);
  main.dataset.view = 'login';
  main.dataset.ready = String(renderSeq);
  user.focus();
}

/* ---------- county ---------- */

function tiles(doc, prevDoc, id) {
  const o = doc.objects.overall, cols = doc.headings.overall.columns;
  const po = prevDoc ? prevDoc.objects.overall : null;
  return h('div.tiles', { id }, FIGURES.map((k) => {
    const d = po && o[k] !== null && po[k] !== null ? o[k] - po[k] : null;
    const ds = fmtDelta(k, d, lang);
    return h('div.tile', { dataset: { key: k, value: o[k] === null ? 'null' : String(o[k]) } },
      h('div.label', {}, cols[k]),
      h('div.value', {}, fmt(k, o[k])),
      h('div.delta', { class: d > 0 ? 'delta up' : d < 0 ? 'delta down' : 'delta' },
        ds ? `${ds} ${t('vs_prev')}` : t('no_prev')));
  }));
}

function table(headings, rows, keys, opts = {}) {
  const cols = headings.columns;
  return h('div.scroll', {}, h('table', { id: opts.id },
    h('thead', {}, h('tr', {}, opts.rank ? h('th', {}, '#') : null, keys.map((k) => h('th', {}, cols[k] ?? t(k))))),
    h('tbody', {}, rows.map((r, i) => h('tr', { dataset: opts.rowData ? opts.rowData(r) : undefined },
      opts.rank ? h('td.num', {}, i + 1) : null,
      keys.map((k) => {
        const v = r[`${k}_label`] !== undefined ? r[`${k}_label`] : r[k];
        const cell = opts.cell && opts.cell(k, r);
        if (cell) return h('td', {}, cell);
        if (typeof v === 'number') return h('td.num', {}, fmt(k, v));
        return h('td', {}, v === null || v === undefined ? '—' : v);
      }))))));
}

async function weeklyTrend(p) {
  const last = monday(p.to);
  const weeks = [...Array(8).keys()].map((i) => addDays(last, -7 * (7 - i)));
  const docs = await Promise.all(weeks.map((w) => report('summary', { week: iso(w), lang }).catch(() => null)));
  return { weeks, docs };
}

async function countyView(parts, q, p) {
  const P = { ...apiPeriod(p), lang };
  const pr = previous(p);
  const [sum, prev, schools, bal, trend] = await Promise.all([
    report('summary', P),
    report('summary', { from: iso(pr.from), to: iso(pr.to), lang }).catch(() => null),
    report('schools', P),
    report('balance', P).catch(() => null),
    weeklyTrend(p),
  ]);
  const township = q.get('township') || '';
  const el = h('div.page.county');
  el.append(h('h1', {}, sum.title, h('small', {}, ` ${iso(p.from)} – ${iso(p.to)}`)));
  el.append(tiles(sum, prev, 'tiles'));

  const trendBox = h('div.chart', { id: 'trend-chart' });
  const areaBox = h('div.chart', { id: 'area-chart' });
  el.append(h('div.grid2', {}, card(t('trend'), 'trend', trendBox), card(t('areas'), 'areas', areaBox,
    table(sum.headings.areas, sum.tables.areas, ['area', 'schools', 'terminals', 'usage_rate', 'power_on_rate', 'period_usage_rate'], { id: 'areas-table' }))));

  // Township drill-down: a township narrows the ranking to its schools.
  const tq = (tw) => { const x = periodQuery(p); if (tw) x.set('township', tw); return x; };
  el.append(card(t('townships'), 'townships', table(sum.headings.townships, sum.tables.townships,
    ['township', 'schools', 'terminals', 'usage_rate', 'power_on_rate', 'avg_daily_hours', 'intact_rate'], {
      id: 'townships-table',
      cell: (k, r) => (k === 'township' ? h('a', { href: link(['county'], tq(r.township ?? '')), class: r.township === township ? 'here' : null }, r.township ?? '—') : null),
    })));

  const rows = schools.tables.schools
    .filter((r) => !township || r.township === township)
    .sort((a, b) => (b.usage_rate ?? -1) - (a.usage_rate ?? -1));
  el.append(card(`${t('ranking')}${township ? ` · ${township}` : ''}`, 'ranking',
    township ? h('p', {}, h('a', { href: link(['county'], tq('')) }, t('all_townships'))) : null,
    rows.length ? table(schools.headings.schools, rows,
      ['school_name', 'township', 'area', 'terminals', 'usage_rate', 'power_on_rate', 'avg_daily_hours', 'period_usage_rate', 'intact_rate', 'idle'], {
        id: 'ranking-table', rank: true,
        rowData: (r) => ({ school: r.school_code }),
        cell: (k, r) => (k === 'school_name' ? h('a', { href: link(['school', r.school_code], periodQuery(p)) }, r.school_name ?? r.school_code) : null),
      }) : empty()));

  if (bal) el.append(card(bal.title, 'balance', balanceTables(bal)));

  return {
    el,
    after() {
      const labels = trend.weeks.map((w) => iso(w).slice(5));
      const keys = ['usage_rate', 'power_on_rate', 'period_usage_rate', 'online_rate'];
      chart(trendBox, {
        tooltip: { trigger: 'axis', valueFormatter: (v) => (v === null || v === undefined ? '—' : `${v}%`) },
        legend: { top: 0 }, grid: { left: 40, right: 12, top: 36, bottom: 24 },
        xAxis: { type: 'category', data: labels }, yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
        series: keys.map((k) => ({ type: 'line', name: sum.headings.overall.columns[k], connectNulls: false,
          data: trend.docs.map((d) => (d && d.objects.overall[k] !== null ? +(d.objects.overall[k] * 100).toFixed(1) : null)) })),
      });
      areaChart(areaBox, sum, ['usage_rate', 'power_on_rate', 'period_usage_rate', 'intact_rate']);
    },
  };
}

// 城区/镇区/乡村 side by side: the summary's areas, rates as percentages.
function areaChart(box, sum, keys, extra = {}) {
  chart(box, {
    tooltip: { trigger: 'axis' }, legend: { top: 0 }, grid: { left: 40, right: 12, top: 36, bottom: 24 },
    xAxis: { type: 'category', data: sum.tables.areas.map((a) => a.area_label) },
    yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
    series: keys.map((k) => ({ type: 'bar', name: sum.headings.areas.columns[k],
      data: sum.tables.areas.map((a) => (a[k] === null ? null : +(a[k] * 100).toFixed(1))) })),
    ...extra,
  });
}

function balanceTables(bal) {
  const box = h('div.grid2');
  for (const sec of ['primary', 'junior']) {
    const rows = bal.tables[sec] || [];
    box.append(h('div', {}, h('h3', {}, bal.headings[sec].caption),
      rows.length ? h('div.scroll', {}, h('table', { id: `balance-${sec}` },
        h('thead', {}, h('tr', {}, ['indicator', 'schools', 'cv', 'quality_max', 'basic_max', 'result'].map((k) => h('th', {}, bal.headings[sec].columns[k])))),
        h('tbody', {}, rows.map((r) => h('tr', { dataset: { indicator: r.indicator, cv: r.cv === null ? 'null' : String(r.cv) } },
          h('td', {}, r.indicator_label), h('td.num', {}, r.schools),
          h('td.num', {}, r.cv === null ? '—' : r.cv.toFixed(3)),
          h('td.num', {}, r.quality_max.toFixed(2)), h('td.num', {}, r.basic_max.toFixed(2)),
          h('td', {}, h('span', { class: `verdict ${r.result}` }, r.result_label))))))) : empty()));
  }
  return box;
}

/* ---------- the wall screen ---------- */

async function wallView(parts, q, p) {
  const P = { ...apiPeriod(p), lang };
  const pr = previous(p);
  const [sum, prev, schools, status] = await Promise.all([
    report('summary', P), report('summary', { from: iso(pr.from), to: iso(pr.to), lang }).catch(() => null),
    report('schools', P), get('/api/v1/status'),
  ]);
  const liveBox = h('div.live', { id: 'wall-live' });
  const fillLive = (st) => liveBox.replaceChildren(
    ...['in_use', 'on', 'offline', 'never'].map((k) => h('div.count', { class: `count ${k}`, dataset: { key: k, value: String(st.totals[k]) } },
      h('div.value', {}, st.totals[k]), h('div.label', {}, t(k === 'offline' ? 'off' : k)))),
    h('div.asof', {}, `${t('live')} · ${t('now')} ${fmtTime(st.now)} · ${t('refresh')}`));
  fillLive(status);
  const rankBox = h('div.chart.tall', { id: 'wall-ranking' });
  const areaBox = h('div.chart.tall', { id: 'wall-areas' });
  const el = h('div.page.wallpage', {},
    h('h1', {}, sum.title, h('small', {}, ` ${iso(p.from)} – ${iso(p.to)}`)),
    tiles(sum, prev, 'wall-tiles'), liveBox,
    h('div.grid2', {}, card(t('ranking'), 'wall-rank', rankBox), card(t('areas'), 'wall-area', areaBox)));
  return {
    el,
    after() {
      const top = schools.tables.schools.filter((r) => r.usage_rate !== null)
        .sort((a, b) => b.usage_rate - a.usage_rate).slice(0, 10).reverse();
      chart(rankBox, {
        backgroundColor: 'transparent', grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
        xAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
        yAxis: { type: 'category', data: top.map((r) => r.school_name ?? r.school_code) },
        series: [{ type: 'bar', data: top.map((r) => +(r.usage_rate * 100).toFixed(1)), label: { show: true, position: 'right', formatter: '{c}%' } }],
      });
      areaChart(areaBox, sum, ['usage_rate', 'power_on_rate', 'period_usage_rate'], { backgroundColor: 'transparent' });
      timers.push(setInterval(async () => { try { fillLive(await get('/api/v1/status')); } catch (e) { /* next minute */ } }, 60000));
    },
  };
}

/* ---------- school ---------- */

async function schoolView(parts, q, p) {
  const school = parts[1];
  const P = { ...apiPeriod(p), school, lang };
  const week = iso(monday(p.to));
  const [status, faults, idle, record, schools] = await Promise.all([
    get('/api/v1/status', { school }),
    report('faults', P), report('idle', P),
    report('record', { week, school, lang }),
    report('schools', P),
  ]);
  const row = schools.tables.schools[0];
  const st = status.schools[0] || { terminals: [], counts: {} };
  const name = (row && row.school_name) || st.name || school;
  const open = faults.tables.faults.filter((f) => f.cleared === null);
  const faultOf = new Map();
  for (const f of open) {
    const v = faultOf.get(f.terminal) || { fault: false, periph: false };
    if (f.fault === 'periph_missing') v.periph = true; else v.fault = true;
    faultOf.set(f.terminal, v);
  }
  // A classroom links to its terminal's day: the week's last day with use in
  // the school (the record), else the period's end (today at the latest).
  const used = (record.tables.record_1 || []).map((r, i) => r.date && record.tables.classrooms.some((c, ci) =>
    (record.tables[`record_${ci + 1}`]?.[i]?.active_min ?? 0) > 0) ? r.date : null).filter(Boolean);
  const tq = new URLSearchParams({ date: used.length ? used[used.length - 1] : iso(p.to > new Date() ? new Date() : p.to) });
  const grid = h('div.rooms', { id: 'rooms' }, st.terminals.map((tm) => {
    const f = faultOf.get(tm.terminal) || {};
    const state = tm.state === 'in_use' ? 'in_use' : tm.state === 'on' ? 'on' : tm.state === 'never' ? 'never' : 'off';
    return h('a.room', { class: `room ${state}${f.fault ? ' fault' : ''}${f.periph ? ' periph' : ''}`,
      href: link(['terminal', school, tm.terminal], tq), dataset: { terminal: tm.terminal, state: tm.state } },
    h('span.name', {}, tm.room || tm.terminal), h('span.id', {}, tm.terminal),
    h('span.state', {}, t(state)),
    f.fault ? h('span.flag.fault', {}, t('fault')) : null, f.periph ? h('span.flag.periph', {}, t('periph_missing')) : null);
  }));
  const legend = h('div.legend', {}, ['in_use', 'on', 'off', 'never'].map((k) => h('span', { class: `key ${k}` }, t(k))),
    h('span.key.fault', {}, t('fault')), h('span.key.periph', {}, t('periph_missing')));

  const heatBox = h('div.chart.heat', { id: 'heatmap' });
  const el = h('div.page.school', {},
    h('h1', {}, name, h('small', {}, ` ${school} · ${iso(p.from)} – ${iso(p.to)}`)),
    row ? h('div.tiles.small', { id: 'school-tiles' }, FIGURES.map((k) => h('div.tile', { dataset: { key: k, value: row[k] === null ? 'null' : String(row[k]) } },
      h('div.label', {}, schools.headings.schools.columns[k]), h('div.value', {}, fmt(k, row[k]))))) : null,
    card(t('classrooms'), 'classrooms', h('p.asof', {}, `${t('now')} ${fmtTime(status.now)}`), legend, grid),
    card(`${t('heatmap')} · ${week}`, 'record', heatBox,
      h('p', {}, h('a.download', { id: 'record-download', href: downloadUrl('record', { school, week, lang, format: 'xlsx' }), download: '' }, t('record_download')))),
    h('div.grid2', {},
      card(idle.title, 'idle', idle.tables.idle.length ? table(idle.headings.idle, idle.tables.idle, ['room', 'terminal', 'reason', 'used_days', 'last_active'], {
        id: 'idle-table', cell: (k, r) => (k === 'last_active' ? fmtTime(r.last_active) : null) }) : h('p.empty', {}, t('none'))),
      card(faults.title, 'faults', faults.tables.faults.length ? table(faults.headings.faults, faults.tables.faults, ['room', 'terminal', 'fault', 'severity', 'since', 'cleared', 'detail'], {
        id: 'faults-table', cell: (k, r) => (k === 'since' || k === 'cleared' ? (r[k] ? fmtTime(r[k]) : k === 'cleared' ? t('open') : '—') : null) }) : h('p.empty', {}, t('none')))),
  );
  return {
    el,
    after() {
      const rooms = record.tables.classrooms;
      if (!rooms.length) { heatBox.replaceWith(empty()); return; }
      const days = (record.tables.record_1 || []).map((d, i) => ({ ...d, i })).filter((d) => d.day_type === 'school_day' || d.day_type === 'makeup_day');
      const periods = Object.keys(record.tables.record_1[0]).filter((k) => /^period_\d+$/.test(k));
      const x = [], data = [];
      days.forEach((d) => periods.forEach((pk) => x.push(`${d.weekday_label} ${pk.slice(7)}`)));
      rooms.forEach((c, ri) => {
        const recs = record.tables[`record_${ri + 1}`] || [];
        let xi = 0;
        days.forEach((d) => periods.forEach((pk) => { data.push([xi++, ri, recs[d.i] ? recs[d.i][pk] : null]); }));
      });
      heatBox.style.height = `${Math.max(160, 60 + rooms.length * 28)}px`;
      chart(heatBox, {
        tooltip: { position: 'top', formatter: (o) => `${rooms[o.value[1]].room ?? rooms[o.value[1]].terminal}<br>${x[o.value[0]]}: ${o.value[2] ?? '—'} ${t('minutes')}` },
        grid: { left: 8, right: 8, top: 8, bottom: 60, containLabel: true },
        xAxis: { type: 'category', data: x, splitArea: { show: true }, axisLabel: { interval: periods.length - 1, rotate: 0 } },
        yAxis: { type: 'category', data: rooms.map((c) => c.room ?? c.terminal) },
        visualMap: { min: 0, max: 45, calculable: false, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120 },
        series: [{ type: 'heatmap', data, emphasis: { itemStyle: { borderColor: '#333', borderWidth: 1 } } }],
      });
    },
  };
}

/* ---------- terminal ---------- */

async function terminalView(parts, q) {
  const [school, terminal] = parts.slice(1, 3);
  const date = day(q.get('date')) ? q.get('date') : iso(new Date());
  const d = await get(`/api/v1/terminals/${encodeURIComponent(school)}/${encodeURIComponent(terminal)}`, { date });
  const dq = (n) => new URLSearchParams({ date: iso(addDays(day(date), n)) });
  const nav = h('div.daynav', {},
    h('a', { href: link(['terminal', school, terminal], dq(-1)), 'aria-label': t('prev') }, '‹'),
    h('input', { type: 'date', value: date, 'aria-label': t('date'), onchange: (e) => { if (day(e.target.value)) go(['terminal', school, terminal], new URLSearchParams({ date: e.target.value })); } }),
    h('a', { href: link(['terminal', school, terminal], dq(1)), 'aria-label': t('next') }, '›'));

  // The timeline: the day's intervals on a 24-hour bar, in the store's offset.
  const off = (d.timeline[0] && /([+-]\d{2}:\d{2}|Z)$/.exec(d.timeline[0].start)?.[1]) || null;
  const t0 = off ? Date.parse(`${date}T00:00:00${off}`) : day(date).getTime();
  const bar = h('div.timeline', { id: 'timeline' });
  for (const s of d.timeline) {
    const a = Date.parse(s.start), b = Date.parse(s.end);
    const seg = h('div', { class: `seg ${s.state}`, title: `${t(s.state === 'idle' ? 'idle_state' : s.state)} ${s.start.slice(11, 16)}–${s.end.slice(11, 16)}`,
      dataset: { state: s.state } });
    seg.style.left = `${((a - t0) / 864e5) * 100}%`;
    seg.style.width = `${Math.max(0.1, ((b - a) / 864e5) * 100)}%`;
    if (s.interactive_ms > 0 && b > a) {
      const i = h('div.inter');
      i.style.width = `${Math.min(100, (s.interactive_ms / (b - a)) * 100)}%`;
      seg.append(i);
    }
    bar.append(seg);
  }
  const hours = h('div.hours', {}, [0, 3, 6, 9, 12, 15, 18, 21, 24].map((x) => { const s = h('span', {}, `${x}`); s.style.left = `${(x / 24) * 100}%`; return s; }));
  const tot = d.day_totals || {};
  const mins = (ms) => `${Math.round((ms || 0) / 60000)} ${t('minutes')}`;
  const legend = h('div.legend', {},
    h('span.key.standby', {}, `${t('standby')} ${mins(tot.standby_ms)}`), h('span.key.idle', {}, `${t('idle_state')} ${mins(tot.idle_ms)}`),
    h('span.key.active', {}, `${t('active')} ${mins(tot.active_ms)}`), h('span.key.inter', {}, `${t('interactive')} ${mins(tot.interactive_ms)}`));

  const hl = d.health || {};
  const kv = (pairs) => h('dl.kv', {}, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
  const yn = (b) => (b === true ? t('yes') : b === false ? t('no') : '—');
  const per = d.peripherals || { present: [], expected: [], missing: [] };
  const el = h('div.page.terminal', {},
    h('p.crumbs', {}, h('a', { href: link(['school', school]) }, d.school_name || school), ' › ', `${d.room || ''} ${terminal}`),
    h('h1', {}, d.room || terminal, h('small', {}, ` ${terminal} · ${d.online ? t('online') : t('offline')}`)),
    nav,
    card(t('timeline'), 'day', h('div.tlwrap', {}, bar, hours), legend),
    h('div.grid2', {},
      card(t('health'), 'health', kv([
        [t('state'), hl.state ? t(hl.state === 'idle' ? 'idle_state' : hl.state) : null], [t('last_heard'), fmtTime(d.last_heard)], [t('last_active'), fmtTime(d.last_active)],
        [t('uptime'), hl.uptime != null ? `${(hl.uptime / 3600).toFixed(1)} ${t('hours')}` : null],
        [t('cpu'), hl.cpu != null ? `${hl.cpu}%` : null], [t('mem'), fmtBytes(hl.mem_available)], [t('disk'), fmtBytes(hl.disk_free)],
        [t('temp'), hl.temp != null ? `${hl.temp} °C` : null], [t('spool'), hl.spool_depth],
        [t('clock'), yn(hl.clock_synced)], [t('agent_version'), d.agent && d.agent.version]])),
      card(t('peripherals'), 'peripherals', kv([
        [t('present'), per.present.map((x) => x.model || x.kind).join('、') || t('none')],
        [t('expected'), (per.expected || []).join('、') || t('none')],
        [t('missing'), (per.missing || []).join('、') || t('none')]]))),
    card(t('faults'), 'terminal-faults', d.faults.length ? h('ul.faults', {}, d.faults.map((f) =>
      h('li', { class: f.severity, dataset: { fault: f.code } },
        `${t('fault_' + f.code) === 'fault_' + f.code ? f.code : t('fault_' + f.code)} · ${f.detail ?? ''} · ${t('since')} ${fmtTime(f.raised)}${f.cleared ? ` · ${t('cleared')} ${fmtTime(f.cleared)}` : ''}`))) : h('p.empty', {}, t('none'))),
  );
  return { el };
}

setLang(lang);
render();
