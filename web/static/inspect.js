// inspect.js: the night inspection map: every truck live, active truck
// alerts (by severity, or nearest first), a legend with counts per state.

import {
  initPage, api, getCity, openStream, el, clear, $, t, tr, errorBox, alertRow, sortAlerts, haversine,
  fmtTime, fmtAgo, fmtNum, truckURL, truckStateBadge, loadingBox,
} from '/static/app.js';
import { baseMap, drawCity, cityLegend, TruckCanvas, TRUCK_COLORS, TRUCK_STATES } from '/static/map.js';

const trucks = new Map(); // plate → {lat, lon, state, heading, ts, speed, company, company_name, alerts}
const alerts = new Map(); // id → AlertSummary
const debug = window.uwDebug = { trucks, alerts, streamEvents: 0, truckEvents: 0, alertEvents: 0 };

let layer = null, map = null, selected = null, near = null, meMarker = null;

async function main() {
  const me = await initPage('inspect');
  if (!me) return;
  clear($('#alerts'), loadingBox());
  let city;
  try {
    city = await getCity();
  } catch (e) {
    $('#map').replaceWith(errorBox(e));
    city = null;
  }
  if (city) {
    map = baseMap($('#map'), city, { zoom: 12 });
    drawCity(map, city);
    $('#citykey').append(cityLegend());
    layer = new TruckCanvas(trucks, { onPick: pick }).addTo(map);
    // where a truck is drawn, in map-container pixels (tests tap there)
    debug.point = (plate) => {
      const x = trucks.get(plate);
      if (!x || x.lat === null || x.lat === undefined) return null;
      const p = map.latLngToContainerPoint([x.lat, x.lon]);
      return { x: p.x, y: p.y };
    };
    debug.select = (plate) => pick(plate);
  }
  renderLegend();
  await Promise.all([loadTrucks(), loadAlerts()]);
  openStream({ trucks: onTrucks, alert: onAlert });
  $('#near').addEventListener('click', toggleNear);
  $('#find').addEventListener('submit', (e) => { e.preventDefault(); find($('#find-plate').value); });
  setInterval(() => { renderAlerts(); if (selected) renderSheet(); }, 30000); // keep "n min ago" honest
}

async function loadTrucks() {
  try {
    const d = await api('trucks');
    for (const x of d.trucks || []) {
      trucks.set(x.plate, {
        lat: x.lat ?? null, lon: x.lon ?? null, state: x.state || 'unknown', heading: x.heading || 0,
        ts: x.ts ? Math.floor(new Date(x.ts).getTime() / 1000) : 0, speed: x.speed_kmh || 0,
        company: x.company, company_name: x.company_name, alerts: x.alerts || 0,
      });
    }
    const dl = $('#plates');
    clear(dl, [...trucks.keys()].slice(0, 3000).map((p) => el('option', { value: p })));
  } catch (e) {
    $('#legend').before(errorBox(e, 'trucks-error'));
  }
  layer?.changed();
  renderLegend();
}

function onTrucks(d) {
  debug.streamEvents++;
  debug.truckEvents++;
  let touchedSelected = false;
  for (const r of d.t || []) {
    const [plate, lat, lon, heading, speed, state, ts] = r;
    let x = trucks.get(plate);
    if (!x) { x = { company: '', company_name: '', alerts: 0 }; trucks.set(plate, x); }
    x.lat = lat; x.lon = lon; x.heading = heading || 0; x.speed = speed || 0; x.state = state || 'unknown'; x.ts = ts || 0;
    if (plate === selected) touchedSelected = true;
  }
  layer?.changed();
  legendSoon();
  if (touchedSelected) renderSheet();
}

let legendTimer = 0;
function legendSoon() {
  if (legendTimer) return;
  legendTimer = setTimeout(() => { legendTimer = 0; renderLegend(); }, 500);
}

function renderLegend() {
  const counts = Object.fromEntries(TRUCK_STATES.map((s) => [s, 0]));
  for (const x of trucks.values()) counts[x.state in counts ? x.state : 'unknown']++;
  clear($('#legend'), TRUCK_STATES.map((s) =>
    el('li', { dataset: { state: s }, testid: 'legend-' + s },
      el('i', { class: 'sw tri', style: { background: TRUCK_COLORS[s] }, 'aria-hidden': 'true' }),
      el('span', { class: 'lname' }, tr('state', s)),
      el('b', { class: 'lcount', testid: 'legend-count' }, String(counts[s])))));
  $('#total').textContent = t('inspect.total', { n: trucks.size });
}

// ---------- the truck sheet ----------

function pick(plate) {
  selected = plate || null;
  layer?.select(selected);
  renderSheet();
}

function renderSheet() {
  const sheet = $('#sheet');
  const x = selected && trucks.get(selected);
  if (!x) { sheet.hidden = true; clear(sheet); return; }
  sheet.hidden = false;
  clear(sheet,
    el('button', { class: 'sheet-close', type: 'button', 'aria-label': '×', on: { click: () => pick(null) } }, '×'),
    el('div', { class: 'sheet-head' },
      el('span', { class: 'plate big', testid: 'sheet-plate' }, selected),
      truckStateBadge(x.state)),
    el('dl', { class: 'kv' },
      el('dt', null, t('truck.company')), el('dd', null, x.company_name || x.company || '—'),
      el('dt', null, t('truck.speed')), el('dd', null, `${fmtNum(x.speed, 0)} ${t('unit.kmh')}`),
      el('dt', null, t('truck.time')), el('dd', null, x.ts ? `${fmtTime(x.ts)} (${fmtAgo(x.ts)})` : '—')),
    el('a', { class: 'btn primary block', href: truckURL(selected), testid: 'sheet-link' }, t('inspect.details') + ' →'));
}

function find(q) {
  q = (q || '').trim();
  if (!q) return;
  let plate = trucks.has(q) ? q : null;
  if (!plate) {
    const norm = (s) => s.replace(/[·.\s-]/g, '').toUpperCase();
    const nq = norm(q);
    plate = [...trucks.keys()].find((p) => norm(p).includes(nq)) || null;
  }
  const x = plate && trucks.get(plate);
  if (!x) { $('#find-plate').setCustomValidity(t('inspect.notfound')); $('#find-plate').reportValidity(); setTimeout(() => $('#find-plate').setCustomValidity(''), 2000); return; }
  if (x.lat !== null && x.lat !== undefined && map) map.setView([x.lat, x.lon], Math.max(map.getZoom(), 15));
  pick(plate);
}

// ---------- alerts ----------

async function loadAlerts() {
  const q = new URLSearchParams({ kind: 'truck', state: 'active', limit: '500' });
  if (near) q.set('near', `${near.lat.toFixed(6)},${near.lon.toFixed(6)}`);
  try {
    const d = await api('alerts?' + q);
    alerts.clear();
    for (const a of d.alerts || []) alerts.set(a.id, a);
    renderAlerts();
  } catch (e) {
    clear($('#alerts'), errorBox(e, 'alerts-error'));
  }
}

function onAlert(a) {
  debug.streamEvents++;
  debug.alertEvents++;
  if (!a || !a.id || (a.subject?.kind && a.subject.kind !== 'truck')) return;
  if (a.state === 'resolved') alerts.delete(a.id);
  else {
    const old = alerts.get(a.id);
    if (old && a.distance_m === undefined) a.distance_m = old.distance_m;
    a._fresh = !old;
    alerts.set(a.id, a);
  }
  renderAlerts();
}

function withDistances() {
  if (!near) return;
  for (const a of alerts.values()) {
    if (a.location && (a.location.lat || a.location.lon)) a.distance_m = haversine(near.lat, near.lon, a.location.lat, a.location.lon);
  }
}

function renderAlerts() {
  withDistances();
  const list = sortAlerts([...alerts.values()], !!near);
  $('#acount').textContent = String(list.length);
  const box = $('#alerts');
  if (!list.length) { clear(box, el('div', { class: 'empty', testid: 'no-alerts' }, '✓ ' + t('inspect.noalerts'))); return; }
  const now = Date.now();
  clear(box, list.map((a) => {
    const row = alertRow(a, { showDistance: !!near, now });
    if (a._fresh) { row.classList.add('fresh'); a._fresh = false; }
    return row;
  }));
}

function toggleNear() {
  const btn = $('#near'), geo = $('#geo');
  if (near) {
    near = null;
    btn.setAttribute('aria-pressed', 'false');
    btn.textContent = t('inspect.near');
    geo.hidden = true;
    if (meMarker) { meMarker.remove(); meMarker = null; }
    for (const a of alerts.values()) delete a.distance_m;
    loadAlerts();
    return;
  }
  if (!navigator.geolocation) { geo.hidden = false; geo.textContent = t('inspect.geo.denied', { e: 'n/a' }); return; }
  geo.hidden = false;
  geo.textContent = t('inspect.geo.busy');
  navigator.geolocation.getCurrentPosition((pos) => {
    near = { lat: pos.coords.latitude, lon: pos.coords.longitude };
    btn.setAttribute('aria-pressed', 'true');
    btn.textContent = t('inspect.near.on') + ' ✓';
    geo.hidden = true;
    if (map) {
      meMarker = window.L.circleMarker([near.lat, near.lon], { radius: 9, color: '#fff', weight: 3, fillColor: '#1e6fd9', fillOpacity: 1 }).addTo(map);
    }
    loadAlerts();
  }, (err) => {
    geo.textContent = t('inspect.geo.denied', { e: err.message || err.code });
  }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
}

main().catch((e) => { console.warn(e); });
