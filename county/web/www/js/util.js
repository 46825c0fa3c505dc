// DOM building without markup strings (nothing from the API is ever parsed as
// HTML), dates as local calendar days, and the figures' formats.
export function h(tag, attrs, ...kids) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const pad = (n) => String(n).padStart(2, '0');
export const iso = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
export function day(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  return m ? new Date(+m[1], +m[2] - 1, +m[3]) : null;
}
export const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n);
export const monday = (d) => addDays(d, -((d.getDay() + 6) % 7));
export const daysBetween = (a, b) => Math.round((b - a) / 86400000);

// The eight figures of the tiles, in the reports' column keys.
export const FIGURES = ['power_on_rate', 'usage_rate', 'avg_daily_hours', 'period_usage_rate',
  'interactive_share', 'online_rate', 'intact_rate', 'weekly_rule_rate'];
// Rates are the columns named *_rate and *_share (docs/metrics.md); the rest are
// counts or other figures.
export const isRate = (key) => /_(rate|share)$/.test(key);

// Rates as percentages to one decimal, other figures to two (docs/report-json.md:
// JSON is unrounded, rounding is for people); null is "no value", never 0.
export function fmt(key, v) {
  if (v === null || v === undefined) return '—';
  if (isRate(key)) return `${(v * 100).toFixed(1)}%`;
  return Number.isInteger(v) && key !== 'avg_daily_hours' ? String(v) : v.toFixed(2);
}
export function fmtDelta(key, d, lang) {
  if (d === null || d === undefined || Number.isNaN(d)) return null;
  const v = isRate(key) ? d * 100 : d;
  const s = `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(1)}`;
  if (isRate(key)) return lang === 'en' ? `${s} pp` : `${s} 个百分点`;
  return lang === 'en' ? `${s} h` : `${s} 小时`;
}
export function fmtTime(s) {
  if (!s) return '—';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(s);
  return m ? `${m[1]} ${m[2]}` : s;
}
export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
