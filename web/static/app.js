// app.js: what every console page shares: DOM and format helpers, the JSON
// API with CSRF and 401 handling, the header (user, nav by role, language
// switch, sign-out) and the live stream.

import { t, tr, lang, useLang, setLang, storedLang, applyI18n, serverMessage, ruleName } from '/static/i18n.js';

export const TZ = 'Asia/Shanghai';

// ---------- DOM ----------

// el builds an element. attrs: class, text, testid, dataset{}, on{event:fn},
// anything else becomes an attribute (false/null skipped). Children may be
// nodes, strings (as text, never HTML), arrays, or null.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'testid') e.dataset.testid = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
      else if (k in e && typeof v !== 'string') e[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else if (c instanceof Node) e.appendChild(c);
    else e.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(e, ...children) {
  e.replaceChildren();
  append(e, children);
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// esc escapes a string for HTML (for the rare template; prefer el()).
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// ---------- formats ----------

function parts(d, opts) {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, hourCycle: 'h23', ...opts });
  const o = {};
  for (const p of f.formatToParts(d)) o[p.type] = p.value;
  return o;
}

export function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(v < 1e12 ? v * 1000 : v);
  const d = new Date(v);
  return isNaN(d) || d.getUTCFullYear() < 1971 ? null : d;
}

// fmtTime: "2026-12-05 14:03:09" in Asia/Shanghai; short drops the year
// and seconds.
export function fmtTime(v, { short = false, seconds = true } = {}) {
  const d = toDate(v);
  if (!d) return '—';
  const p = parts(d, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (short) return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${seconds ? ':' + p.second : ''}`;
}

export function fmtClock(v) {
  const d = toDate(v);
  if (!d) return '—';
  const p = parts(d, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return `${p.hour}:${p.minute}:${p.second}`;
}

// ymd is the calendar date in Asia/Shanghai, YYYY-MM-DD.
export function ymd(v) {
  const d = toDate(v) || new Date();
  const p = parts(d, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return `${p.year}-${p.month}-${p.day}`;
}

export function hourLabel(v) {
  const d = toDate(v);
  if (!d) return '';
  return parts(d, { hour: '2-digit' }).hour + ':00';
}

export function fmtAgo(v, now = Date.now()) {
  const d = toDate(v);
  if (!d) return '';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return t('ago.s', { n: s });
  if (s < 3600) return t('ago.m', { n: Math.floor(s / 60) });
  if (s < 86400) return t('ago.h', { n: Math.floor(s / 3600) });
  return t('ago.d', { n: Math.floor(s / 86400) });
}

export function fmtNum(v, digits = 1) {
  if (v === null || v === undefined || v === '' || Number.isNaN(Number(v))) return '—';
  const n = Number(v);
  return n.toLocaleString(lang() === 'en' ? 'en-GB' : 'zh-CN', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtDist(m) {
  if (m === null || m === undefined || Number.isNaN(Number(m))) return '';
  return m < 1000 ? `${Math.round(m)} ${t('unit.m')}` : `${fmtNum(m / 1000, 1)} ${t('unit.km')}`;
}

export function fmtLoad(kg) {
  if (kg === null || kg === undefined) return '—';
  return kg >= 1000 ? `${fmtNum(kg / 1000, 1)} ${t('unit.t')}` : `${fmtNum(kg, 0)} ${t('unit.kg')}`;
}

// distance in metres between two WGS-84 points.
export function haversine(lat1, lon1, lat2, lon2) {
  const R = 6371008.8, r = Math.PI / 180;
  const dLat = (lat2 - lat1) * r, dLon = (lon2 - lon1) * r;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(a));
}

// ---------- API ----------

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let meCache = null;

export function loginURL() {
  return '/login?next=' + encodeURIComponent(location.pathname + location.search);
}

function toLogin() {
  location.href = loginURL();
}

// api calls /console/api/<path>; a body makes it a POST with the CSRF token.
// 401 sends the browser to the sign-in page.
export async function api(path, { method, body } = {}) {
  const m = method || (body !== undefined ? 'POST' : 'GET');
  const headers = { Accept: 'application/json' };
  const opts = { method: m, headers, credentials: 'same-origin', cache: 'no-store' };
  if (m !== 'GET') {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRF-Token'] = meCache?.csrf || '';
    opts.body = JSON.stringify(body ?? {});
  }
  let r;
  try {
    r = await fetch('/console/api/' + path, opts);
  } catch (e) {
    throw new ApiError(0, t('err.network'));
  }
  if (r.status === 401) {
    toLogin();
    throw new ApiError(401, t('err.401'));
  }
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, data?.error || r.statusText);
  return data;
}

// errText is what to show for a failed call: ours for the status, plus the
// server's message.
export function errText(e) {
  if (!(e instanceof ApiError)) return `${t('error')}: ${e?.message || e}`;
  const ours = { 0: 'err.network', 401: 'err.401', 403: 'err.403', 404: 'err.404', 409: 'err.409', 429: 'err.429' }[e.status];
  const theirs = serverMessage(e.message);
  if (!ours) return theirs || t('error');
  return theirs && e.status !== 0 ? `${t(ours)} (${theirs})` : t(ours);
}

export function errorBox(e, testid = 'error') {
  return el('div', { class: 'msg err', role: 'alert', testid }, typeof e === 'string' ? e : errText(e));
}

export function me() { return meCache; }

let cityPromise = null;
export function getCity() {
  if (!cityPromise) cityPromise = api('city');
  return cityPromise;
}

// ---------- the header ----------

export const NAV = [
  { key: 'inspect', href: '/console/inspect', roles: ['admin', 'inspection', 'company'] },
  { key: 'alerts', href: '/console/alerts', roles: ['admin', 'inspection', 'duty', 'company'] },
  { key: 'flood', href: '/console/flood', roles: ['admin', 'duty'] },
  { key: 'report', href: '/console/report', roles: ['admin', 'inspection', 'company'] },
];

export const PAGE_ROLES = {
  inspect: ['admin', 'inspection', 'company'],
  truck: ['admin', 'inspection', 'company'],
  alerts: ['admin', 'inspection', 'duty', 'company'],
  alert: ['admin', 'inspection', 'duty', 'company'],
  evidence: ['admin', 'inspection', 'company'],
  flood: ['admin', 'duty'],
  report: ['admin', 'inspection', 'company'],
};

// initPage loads me, settles the language, draws the header and returns
// me; on a page the role may not use it shows a notice and returns null.
export async function initPage(page, { active = page } = {}) {
  const top = document.getElementById('top') || document.body.insertBefore(el('header', { id: 'top' }), document.body.firstChild);
  top.className = 'top';
  let m;
  try {
    m = await api('me');
  } catch (e) {
    if (e.status === 401) return new Promise(() => {}); // leaving for /login
    useLang(storedLang() || 'zh-CN');
    clear(top, el('span', { class: 'brand' }, t('app.short')));
    document.querySelector('main')?.replaceChildren(errorBox(e));
    throw e;
  }
  meCache = m;
  useLang(storedLang() || m.lang || 'zh-CN');
  applyI18n();
  const titleKey = document.body.dataset.title;
  if (titleKey) document.title = `${t(titleKey)} · ${t('app.short')}`;
  renderHeader(top, m, active);
  if (PAGE_ROLES[page] && !PAGE_ROLES[page].includes(m.role)) {
    document.querySelector('main')?.replaceChildren(el('div', { class: 'msg err', role: 'alert' }, t('forbidden.page')));
    return null;
  }
  return m;
}

function renderHeader(top, m, active) {
  const nav = el('nav', { class: 'nav', testid: 'nav', 'aria-label': 'main' },
    NAV.filter((n) => n.roles.includes(m.role)).map((n) =>
      el('a', { href: n.href, testid: 'nav-' + n.key, class: n.key === active ? 'active' : null, 'aria-current': n.key === active ? 'page' : null }, t('nav.' + n.key))));
  const other = lang() === 'en' ? 'zh-CN' : 'en';
  clear(top,
    el('div', { class: 'bar' },
      el('a', { class: 'brand', href: m.home || '/' }, el('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), el('span', { class: 'brand-long' }, t('app.title')), el('span', { class: 'brand-short' }, t('app.short'))),
      el('span', { class: 'live', testid: 'live', hidden: true }),
      el('span', { class: 'who', testid: 'user', title: m.user },
        el('span', { class: 'who-name' }, m.name || m.user),
        el('span', { class: 'role', testid: 'role' }, tr('role', m.role)),
        m.role === 'company' && m.company_name ? el('span', { class: 'who-co' }, m.company_name) : null),
      el('button', { type: 'button', class: 'btn ghost small', testid: 'lang-switch', lang: other, title: t('lang.label'),
        on: { click: () => { setLang(other); location.reload(); } } }, t('lang.other')),
      el('button', { type: 'button', class: 'btn ghost small', testid: 'logout', on: { click: logout } }, t('logout'))),
    nav);
}

async function logout() {
  try {
    await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json', 'X-CSRF-Token': meCache?.csrf || '' } });
  } catch { /* go anyway */ }
  location.href = '/login';
}

// ---------- the live stream ----------

// openStream listens to /console/api/stream; handlers: {trucks, alert,
// gauges} get the parsed data. The header shows whether it is live; a
// closed stream is reopened (and a lost session sends to /login).
export function openStream(handlers) {
  const badge = document.querySelector('[data-testid="live"]');
  const show = (ok, key) => {
    if (!badge) return;
    badge.hidden = false;
    badge.className = 'live ' + (ok ? 'on' : 'off');
    badge.textContent = t(key);
  };
  let es = null, retry = 1000;
  const open = () => {
    show(false, 'live.connecting');
    es = new EventSource('/console/api/stream');
    es.onopen = () => { retry = 1000; show(true, 'live.on'); };
    es.onerror = async () => {
      show(false, 'live.off');
      if (es.readyState === EventSource.CLOSED) {
        try { await api('me'); } catch { return; } // 401 leaves for /login
        setTimeout(open, retry);
        retry = Math.min(retry * 2, 30000);
      }
    };
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        let d;
        try { d = JSON.parse(ev.data); } catch { return; }
        try { fn(d); } catch (e) { console.warn('stream handler', name, e); }
      });
    }
  };
  open();
  addEventListener('pagehide', () => es?.close());
  return { close: () => es?.close() };
}

// ---------- alerts ----------

export const SEV_RANK = { critical: 0, major: 1, warning: 2, minor: 3 };

export function sortAlerts(list, byDistance) {
  return list.sort((a, b) => {
    if (byDistance && a.distance_m !== undefined && b.distance_m !== undefined && a.distance_m !== b.distance_m) return a.distance_m - b.distance_m;
    const s = (SEV_RANK[a.severity] ?? 9) - (SEV_RANK[b.severity] ?? 9);
    if (s) return s;
    return (toDate(b.started_at)?.getTime() || 0) - (toDate(a.started_at)?.getTime() || 0);
  });
}

export function alertURL(id) { return '/console/alert/' + encodeURIComponent(id); }
export function truckURL(plate) { return '/console/truck/' + encodeURIComponent(plate); }
export function evidenceURL(id) { return '/console/evidence/' + encodeURIComponent(id); }

export function sevBadge(sev) {
  return el('span', { class: 'badge sev sev-' + (sev || 'none'), testid: 'severity' }, tr('sev', sev, sev || '—'));
}

export function stateBadge(st) {
  return el('span', { class: 'badge ast ast-' + st, testid: 'alert-state' }, tr('ast', st));
}

export function tierBadge(tier) {
  return tier > 0 ? el('span', { class: 'badge tier', testid: 'tier' }, '▲ ' + t('tier', { n: tier })) : null;
}

export function truckStateBadge(st) {
  return el('span', { class: 'badge tstate', dataset: { state: st || 'unknown' } }, el('i', { class: 'dot', 'aria-hidden': 'true' }), tr('state', st || 'unknown'));
}

export function subjectName(a) {
  return a.subject?.name || a.subject?.id || '';
}

// alertRow is one alert as a link: severity, rule, subject, company,
// district, start, state, escalation tier, outcome, distance.
export function alertRow(a, { showDistance = false, now = Date.now() } = {}) {
  const kind = a.subject?.kind;
  return el('a', { class: `arow sev-edge-${a.severity || 'none'}`, href: alertURL(a.id), testid: 'alert-row', dataset: { id: a.id, state: a.state, rule: a.rule } },
    el('span', { class: 'c-sev' }, sevBadge(a.severity)),
    el('span', { class: 'c-rule' }, el('b', null, ruleName(a.rule, a.rule_name))),
    el('span', { class: 'c-subj' }, el('span', { class: kind === 'truck' ? 'plate' : 'gname', testid: 'alert-subject' }, subjectName(a)),
      a.subject?.company_name ? el('span', { class: 'muted co' }, a.subject.company_name) : null),
    el('span', { class: 'c-dist muted' }, a.subject?.district || ''),
    el('span', { class: 'c-time' }, el('time', { datetime: a.started_at, title: fmtTime(a.started_at) }, fmtTime(a.started_at, { short: true })),
      el('span', { class: 'muted ago' }, fmtAgo(a.started_at, now))),
    el('span', { class: 'c-state' }, stateBadge(a.state), tierBadge(a.tier)),
    el('span', { class: 'c-out' }, a.outcome ? el('span', { class: 'badge out', testid: 'outcome' }, tr('out', a.outcome)) : null,
      showDistance && a.distance_m !== undefined && a.distance_m !== null ? el('span', { class: 'badge distance', testid: 'distance' }, fmtDist(a.distance_m)) : null));
}

// ---------- alert details ----------

// DETAILS names the keys the rules put in an alert's details: zh, en, unit
// (an i18n key or a literal), and whether it is a threshold.
const DETAILS = {
  speed_kmh: ['速度', 'speed', 'unit.kmh'], load_kg: ['载重', 'load', 'unit.kg'], cover: ['篷布', 'cover'], body: ['车厢', 'body'],
  duration_s: ['持续时间', 'duration', 's'], open_s: ['未密闭时长', 'uncovered for', 's'], raised_s: ['车厢举升时长', 'body raised for', 's'],
  distance_m: ['偏离距离', 'distance off route', 'unit.m'], nearest_route: ['最近路线', 'nearest route'],
  load_before_kg: ['卸载前载重', 'load before', 'unit.kg'], load_after_kg: ['卸载后载重', 'load after', 'unit.kg'],
  drop_pct: ['载重下降', 'load drop', '%'], within_s: ['下降用时', 'within', 's'], trigger: ['触发条件', 'trigger'],
  site: ['场地', 'site'], site_name: ['场地名称', 'site name'], zone: ['管控区', 'zone'], zone_name: ['管控区名称', 'zone name'],
  permit: ['准运证', 'permit'], windows: ['准运时段', 'permitted hours'], window: ['准运时段', 'permitted hours'],
  silent_s: ['无信号时长', 'silent for', 's'], last_fix: ['最后定位', 'last fix'], last_report: ['最后上报', 'last report'],
  mm: ['雨量', 'rain', 'unit.mm'], rain_mm: ['雨量', 'rain', 'unit.mm'], depth_cm: ['积水深度', 'water depth', 'unit.cm'],
  peak_cm: ['最大积水深度', 'peak depth', 'unit.cm'], rise_cm_per_h: ['上涨速度', 'rising', 'unit.cmh'],
  wash_s: ['冲洗时长', 'washed for', 's'], rated_load_kg: ['核定载重', 'rated load', 'unit.kg'], over_pct: ['超载比例', 'over by', '%'],
  level: ['等级', 'level'], previous_level: ['原等级', 'previous level'], change: ['变化', 'change'], kind: ['类型', 'kind'], reason: ['原因', 'reason'],
  // thresholds
  dwell_s: ['持续阈值', 'dwell threshold', 's', 1], min_speed_kmh: ['最低速度阈值', 'minimum speed', 'unit.kmh', 1],
  loaded_kg: ['重车载重阈值', 'loaded from', 'unit.kg', 1], threshold_s: ['时长阈值', 'duration threshold', 's', 1],
  threshold_pct: ['下降比例阈值', 'drop threshold', '%', 1], threshold_mm: ['雨量阈值', 'rain threshold', 'unit.mm', 1],
  threshold_cm: ['深度阈值', 'depth threshold', 'unit.cm', 1], window_h: ['统计时长', 'over', 'h', 1],
  corridor_m: ['路线走廊宽度', 'corridor', 'unit.m', 1], after_s: ['判定时长', 'after', 's', 1], clear_after_s: ['恢复判定时长', 'clears after', 's', 1],
  min_wash_s: ['最短冲洗时长', 'minimum wash', 's', 1], limit_kg: ['载重上限', 'load limit', 'unit.kg', 1],
  tolerance_pct: ['允许误差', 'tolerance', '%', 1],
  warn_cm: ['积水预警阈值', 'warning depth', 'unit.cm', 1], close_cm: ['道路封闭阈值', 'road-closure depth', 'unit.cm', 1],
};

export function detailLabel(k) {
  const d = DETAILS[k];
  if (!d) return k;
  return lang() === 'en' ? d[1] : d[0];
}

export function isThreshold(k) { return !!DETAILS[k]?.[3] || /^threshold_|^max_|^min_/.test(k); }

export function detailValue(k, v) {
  if (v === null || v === undefined || v === '') return '—';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join('，');
  if (typeof v === 'object') return JSON.stringify(v);
  const d = DETAILS[k];
  if (k === 'cover') return tr('cover', v);
  if (k === 'body') return tr('body', v);
  if (k === 'level' || k === 'previous_level') return tr('rain', v, tr('depth', v));
  if (k === 'kind') return tr('kind', v);
  if (typeof v === 'number') {
    const unit = d?.[2] ? (d[2].startsWith('unit.') ? t(d[2]) : d[2]) : '';
    return `${fmtNum(v, 2)}${unit ? (unit === '%' ? '' : ' ') + unit : ''}`;
  }
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
  if (typeof v === 'boolean') return v ? t('yes') : t('no');
  return String(v);
}

// ruleOfAlertId is the rule of an alert id "rule/subject/start".
export function ruleOfAlertId(id) { return String(id || '').split('/')[0]; }

// ---------- misc ----------

export function loadingBox() { return el('div', { class: 'msg muted' }, t('loading')); }

// pathArg is the decoded {arg} of /console/<page>/{arg}.
export function pathArg() {
  const seg = location.pathname.split('/')[3] || '';
  try { return decodeURIComponent(seg); } catch { return seg; }
}

export { t, tr, lang, ruleName, serverMessage };
