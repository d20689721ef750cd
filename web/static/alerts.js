// alerts.js: the alert queue with state and kind filters, live from the
// stream's alert events.

import { initPage, api, openStream, el, clear, $, t, errorBox, alertRow, sortAlerts, loadingBox } from '/static/app.js';

const alerts = new Map();
let me = null;
const debug = window.uwDebug = { alerts, streamEvents: 0 };

function kinds(role) {
  if (role === 'duty') return ['gauge'];
  if (role === 'inspection' || role === 'company') return ['truck'];
  return ['', 'truck', 'gauge'];
}

function filters() {
  return { state: $('#f-state').value, kind: $('#f-kind').value };
}

function matches(a) {
  const f = filters();
  if (f.kind && a.subject?.kind !== f.kind) return false;
  if (f.state === 'active') return a.state === 'firing' || a.state === 'acknowledged';
  return a.state === f.state;
}

let total = 0;

async function load() {
  const f = filters();
  const q = new URLSearchParams({ state: f.state, limit: '500' });
  if (f.kind) q.set('kind', f.kind);
  const u = new URL(location.href);
  u.searchParams.set('state', f.state);
  if (f.kind) u.searchParams.set('kind', f.kind); else u.searchParams.delete('kind');
  history.replaceState(null, '', u);
  clear($('#list'), loadingBox());
  try {
    const d = await api('alerts?' + q);
    alerts.clear();
    for (const a of d.alerts || []) alerts.set(a.id, a);
    total = d.total ?? alerts.size;
    render();
  } catch (e) {
    clear($('#list'), errorBox(e, 'alerts-error'));
  }
}

function render() {
  const list = sortAlerts([...alerts.values()].filter(matches));
  $('#count').textContent = total > alerts.size ? `${list.length} / ${total}` : String(list.length);
  const box = $('#list');
  if (!list.length) { clear(box, el('div', { class: 'empty', testid: 'no-alerts' }, '✓ ' + t('alerts.none'))); return; }
  const now = Date.now();
  clear(box,
    el('div', { class: 'alist-head', 'aria-hidden': 'true' },
      ['col.severity', 'col.rule', 'col.subject', 'col.district', 'col.started', 'col.state', 'col.outcome'].map((k) => el('span', null, t(k)))),
    list.map((a) => {
      const row = alertRow(a, { now });
      if (a._fresh) { row.classList.add('fresh'); a._fresh = false; }
      return row;
    }));
}

function onAlert(a) {
  debug.streamEvents++;
  if (!a?.id) return;
  const had = alerts.has(a.id);
  if (matches(a)) {
    a._fresh = !had;
    alerts.set(a.id, a);
    if (!had) total++;
  } else if (had) {
    alerts.delete(a.id);
    total = Math.max(0, total - 1);
  }
  render();
}

async function main() {
  me = await initPage('alerts');
  if (!me) return;
  const ks = kinds(me.role);
  const sel = $('#f-kind');
  clear(sel, ks.map((k) => el('option', { value: k }, t(k ? 'kind.' + k : 'kind.all'))));
  if (ks.length === 1) $('#kind-field').hidden = true;
  const q = new URLSearchParams(location.search);
  if (['active', 'firing', 'acknowledged', 'resolved'].includes(q.get('state'))) $('#f-state').value = q.get('state');
  if (ks.includes(q.get('kind') || '')) sel.value = q.get('kind') || '';
  $('#f-state').addEventListener('change', load);
  sel.addEventListener('change', load);
  $('#filters').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
  openStream({ alert: onAlert });
  setInterval(render, 30000);
}

main().catch((e) => console.warn(e));
