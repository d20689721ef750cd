// flood.js: the flood duty board: gauges on a map by CMA level, water-depth
// points by depth level, sortable tables, 24 h charts and the CAP warnings
// issued; live from the stream's gauges events.

import { initPage, api, getCity, openStream, el, esc, clear, $, t, tr, errorBox, fmtTime, fmtAgo, fmtNum, hourLabel, fmtClock, loadingBox } from '/static/app.js';
import { baseMap, drawCity, RAIN_COLORS, DEPTH_COLORS } from '/static/map.js';
import { barChart, lineChart } from '/static/charts.js';

const L = window.L;
const gauges = new Map(); // device → Gauge
const markers = new Map(); // device → Leaflet marker
const debug = window.uwDebug = { gauges, streamEvents: 0 };
const RANK = { none: 0, blue: 1, yellow: 2, orange: 3, red: 4 };
const DRANK = { none: 0, warning: 1, road_closure: 2 };
let selected = null, map = null, cap = [];
const sortRain = { key: 'level', dir: -1 }, sortDepth = { key: 'depth_cm', dir: -1 };

function rainLevel(lv) {
  const l = lv || 'none';
  return el('span', { class: 'lvl', testid: 'level', dataset: { level: l } }, el('i', { style: { background: RAIN_COLORS[l] || RAIN_COLORS.none } }), tr('rain', l));
}

function depthLevel(lv) {
  const l = lv || 'none';
  return el('span', { class: 'lvl', testid: 'level', dataset: { level: l } }, el('i', { style: { background: DEPTH_COLORS[l] || DEPTH_COLORS.none } }), tr('depth', l));
}

function trend(v) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '—';
  const n = Number(v);
  if (Math.abs(n) < 0.05) return el('span', { class: 'muted' }, `→ 0 ${t('unit.cmh')}`);
  return el('span', { class: n > 0 ? 'trend-up' : 'trend-down' }, `${n > 0 ? '↑' : '↓'} ${fmtNum(Math.abs(n), 1)} ${t('unit.cmh')}`);
}

function sortHead(label, key, state, rerender, num = false) {
  const arrow = state.key === key ? (state.dir > 0 ? ' ▲' : ' ▼') : '';
  return el('th', { class: num ? 'num' : null, 'aria-sort': state.key === key ? (state.dir > 0 ? 'ascending' : 'descending') : 'none' },
    el('button', { type: 'button', class: 'sort', on: { click: () => { if (state.key === key) state.dir = -state.dir; else { state.key = key; state.dir = num || key === 'level' ? -1 : 1; } rerender(); } } }, label + arrow));
}

function rainValue(g, key) {
  if (key === 'name') return g.name || g.device;
  if (key === 'district') return g.district || '';
  if (key === 'level') return RANK[g.level || 'none'] * 1e6 + (Number(g.totals?.['24h']) || 0);
  if (key === 'last_ts') return new Date(g.last_ts || 0).getTime();
  return Number(g.totals?.[key]) || 0;
}

function depthValue(g, key) {
  if (key === 'name') return g.name || g.device;
  if (key === 'district') return g.district || '';
  if (key === 'level') return DRANK[g.depth_level || 'none'] * 1e6 + (Number(g.depth_cm) || 0);
  if (key === 'last_ts') return new Date(g.last_ts || 0).getTime();
  return Number(g[key]) || 0;
}

function sorted(list, state, value) {
  return list.sort((a, b) => {
    const x = value(a, state.key), y = value(b, state.key);
    return (typeof x === 'string' ? x.localeCompare(y, 'zh-CN') : x - y) * state.dir;
  });
}

function renderRain() {
  const list = sorted([...gauges.values()].filter((g) => g.kind === 'rain'), sortRain, rainValue);
  const box = $('#rain');
  if (!list.length) { clear(box, el('div', { class: 'muted' }, t('flood.norain'))); return; }
  const H = ['1h', '3h', '6h', '12h', '24h'];
  clear(box, el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'rain-table' },
    el('thead', null, el('tr', null,
      sortHead(t('flood.name'), 'name', sortRain, renderRain), sortHead(t('district'), 'district', sortRain, renderRain),
      H.map((h) => sortHead(`${h} (${t('unit.mm')})`, h, sortRain, renderRain, true)),
      sortHead(t('flood.level'), 'level', sortRain, renderRain), sortHead(t('flood.last'), 'last_ts', sortRain, renderRain))),
    el('tbody', null, list.map((g) => el('tr', {
      class: 'clickable' + (g.device === selected ? ' sel' : ''), testid: 'gauge-row', dataset: { device: g.device, level: g.level || 'none' }, tabindex: 0,
      on: { click: () => select(g.device), keydown: (e) => { if (e.key === 'Enter') select(g.device); } },
    },
    el('td', null, el('b', null, g.name || g.device), el('div', { class: 'muted small mono' }, g.device)),
    el('td', null, g.district || ''),
    H.map((h) => el('td', { class: 'num', testid: 'total-' + h }, fmtNum(g.totals?.[h], 1))),
    el('td', null, rainLevel(g.level)),
    el('td', { class: 'small' }, g.last_ts ? fmtAgo(g.last_ts) : '—'))))))); 
}

function renderDepth() {
  const list = sorted([...gauges.values()].filter((g) => g.kind === 'depth'), sortDepth, depthValue);
  const box = $('#depth');
  if (!list.length) { clear(box, el('div', { class: 'muted' }, t('flood.nodepth'))); return; }
  clear(box, el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'depth-table' },
    el('thead', null, el('tr', null,
      sortHead(t('flood.name'), 'name', sortDepth, renderDepth), sortHead(t('district'), 'district', sortDepth, renderDepth),
      sortHead(`${t('flood.depth_cm')} (${t('unit.cm')})`, 'depth_cm', sortDepth, renderDepth, true),
      sortHead(t('flood.trend'), 'trend_cm_per_h', sortDepth, renderDepth, true),
      sortHead(t('flood.level'), 'level', sortDepth, renderDepth), sortHead(t('flood.last'), 'last_ts', sortDepth, renderDepth))),
    el('tbody', null, list.map((g) => el('tr', {
      class: 'clickable' + (g.device === selected ? ' sel' : ''), testid: 'depth-row', dataset: { device: g.device, level: g.depth_level || 'none' }, tabindex: 0,
      on: { click: () => select(g.device), keydown: (e) => { if (e.key === 'Enter') select(g.device); } },
    },
    el('td', null, el('b', null, g.name || g.device), el('div', { class: 'muted small mono' }, g.device)),
    el('td', null, g.district || ''),
    el('td', { class: 'num', testid: 'depth-cm' }, fmtNum(g.depth_cm, 1)),
    el('td', { class: 'num' }, trend(g.trend_cm_per_h)),
    el('td', null, depthLevel(g.depth_level)),
    el('td', { class: 'small' }, g.last_ts ? fmtAgo(g.last_ts) : '—')))))));
}

function chartFor(g, big) {
  const series = g.series || [];
  const w = big ? 640 : 260, h = big ? 220 : 110;
  if (g.kind === 'rain') {
    return barChart(series.map((p) => [p[0], p[1] ?? 0]), { width: w, height: h, unit: big ? t('unit.mm') : '', xLabel: hourLabel, every: big ? 3 : 6,
      color: () => '#35607f',
      title: `${g.name} · ${t('flood.chart.rain')}` });
  }
  const now = Date.now() / 1000;
  const thresholds = [];
  if (g.warn_cm) thresholds.push({ value: g.warn_cm, color: DEPTH_COLORS.warning, label: big ? `${t('depth.warning')} ${g.warn_cm} ${t('unit.cm')}` : '' });
  if (g.close_cm) thresholds.push({ value: g.close_cm, color: DEPTH_COLORS.road_closure, label: big ? `${t('depth.road_closure')} ${g.close_cm} ${t('unit.cm')}` : '' });
  return lineChart(series.filter((p) => p[1] !== null && p[1] !== undefined), { width: w, height: h, unit: big ? t('unit.cm') : '', xLabel: (ts) => fmtClock(ts).slice(0, 5), from: now - 86400, to: now, thresholds,
    stroke: DEPTH_COLORS[g.depth_level] && g.depth_level !== 'none' ? DEPTH_COLORS[g.depth_level] : '#0b5cad', title: `${g.name} · ${t('flood.chart.depth')}` });
}

function renderChart() {
  const g = selected && gauges.get(selected);
  const box = $('#chart');
  if (!g) { clear(box, el('div', { class: 'muted' }, t('flood.select'))); return; }
  clear(box,
    el('h3', null, `${g.name || g.device} · `, g.kind === 'rain' ? t('flood.chart.rain') : t('flood.chart.depth'), ' ',
      g.kind === 'rain' ? rainLevel(g.level) : depthLevel(g.depth_level)),
    el('div', { testid: 'chart' }, chartFor(g, true)));
}

function renderMultiples() {
  const list = [...gauges.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'rain' ? -1 : 1));
  clear($('#multiples'), list.map((g) => el('figure', { class: g.device === selected ? 'sel' : null, testid: 'multiple', dataset: { device: g.device }, on: { click: () => select(g.device) } },
    el('figcaption', null, el('span', null, g.name || g.device), g.kind === 'rain' ? rainLevel(g.level) : depthLevel(g.depth_level)),
    chartFor(g, false))));
}

function renderCAP() {
  const box = $('#cap');
  if (!cap.length) { clear(box, el('div', { class: 'muted', testid: 'no-cap' }, t('flood.nocap'))); return; }
  const list = [...cap].sort((a, b) => new Date(b.sent) - new Date(a.sent));
  clear(box, el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'cap-table' },
    el('thead', null, el('tr', null, ['flood.sent', 'flood.type', 'flood.headline', 'flood.xml'].map((k) => el('th', null, t(k))))),
    el('tbody', null, list.map((c) => el('tr', { testid: 'cap-row' },
      el('td', null, fmtTime(c.sent)),
      el('td', null, el('span', { class: 'badge ' + (c.msg_type === 'Cancel' ? 'ast-resolved' : c.msg_type === 'Update' ? 'ast-acknowledged' : 'ast-firing') }, tr('cap', c.msg_type, c.msg_type))),
      el('td', null, c.alert ? el('a', { href: '/console/alert/' + encodeURIComponent(c.alert) }, c.headline || c.identifier) : (c.headline || c.identifier)),
      el('td', null, c.url ? el('a', { href: c.url, testid: 'cap-link', target: '_blank', rel: 'noopener', title: c.identifier }, 'XML ↗') : '—')))))));
}

function markerIcon(g) {
  if (g.kind === 'rain') {
    const col = RAIN_COLORS[g.level || 'none'] || RAIN_COLORS.none;
    return { radius: g.level && g.level !== 'none' ? 10 : 7, color: '#17212b', weight: 1.5, fillColor: col, fillOpacity: 0.95 };
  }
  const col = DEPTH_COLORS[g.depth_level || 'none'] || DEPTH_COLORS.none;
  return { radius: 7, color: col, weight: 4, fillColor: '#fff', fillOpacity: 1 };
}

function drawMarkers() {
  if (!map) return;
  for (const g of gauges.values()) {
    if (g.lat === undefined || g.lat === null) continue;
    let m = markers.get(g.device);
    const style = markerIcon(g);
    const tip = g.kind === 'rain'
      ? `${g.name || g.device} · 1h ${fmtNum(g.totals?.['1h'], 1)} ${t('unit.mm')} · ${tr('rain', g.level || 'none')}`
      : `${g.name || g.device} · ${fmtNum(g.depth_cm, 1)} ${t('unit.cm')} · ${tr('depth', g.depth_level || 'none')}`;
    if (!m) {
      m = L.circleMarker([g.lat, g.lon], style).addTo(map);
      m.on('click', () => select(g.device));
      m.bindTooltip(esc(tip)); // Leaflet sets tooltips as HTML
      markers.set(g.device, m);
    } else {
      m.setStyle(style);
      m.setRadius(style.radius);
      m.setTooltipContent(esc(tip));
    }
    if (g.device === selected) m.setStyle({ weight: 4, color: '#000' });
  }
}

function select(device) {
  selected = device;
  renderAll();
}

function renderAll() {
  renderRain(); renderDepth(); renderChart(); renderMultiples(); renderCAP(); drawMarkers();
}

async function load() {
  const d = await api('flood');
  for (const g of d.gauges || []) gauges.set(g.device, g);
  cap = d.cap || [];
  const he = $('#history-error');
  if (he) { he.hidden = !d.history_error; he.textContent = d.history_error ? `${t('flood.nohistory')} (${d.history_error})` : ''; }
  renderAll();
}

let reloadTimer = 0;
function reloadSoon(ms = 1500) {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => load().catch(() => {}), ms);
}

let renderTimer = 0;
function onGauges(d) {
  debug.streamEvents++;
  let changedLevel = false;
  for (const [device, value, level] of d.g || []) {
    const g = gauges.get(device);
    if (!g) { changedLevel = true; continue; }
    if (g.kind === 'depth') {
      g.depth_cm = value;
      const lv = level || 'none';
      if (lv in DRANK) { if ((g.depth_level || 'none') !== lv) changedLevel = true; g.depth_level = lv; }
    } else {
      g.totals = { ...(g.totals || {}), '1h': value };
      const lv = level || 'none';
      if (lv in RANK) { if ((g.level || 'none') !== lv) changedLevel = true; g.level = lv; }
    }
    g.last_ts = new Date().toISOString();
  }
  if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = 0; renderAll(); }, 300);
  if (changedLevel) reloadSoon(); // totals, series and CAP warnings come with the board
}

async function main() {
  const me = await initPage('flood');
  if (!me) return;
  const mainEl = $('#main');
  clear(mainEl,
    el('div', { class: 'flood' },
      el('section', { class: 'panel fmap' },
        el('div', { class: 'panel-head' }, el('h1', null, t('flood.title'))),
        el('div', { id: 'fmap', class: 'map', testid: 'map' }),
        el('div', { class: 'map-key' },
          el('span', null, el('b', null, t('flood.legend.rain'))),
          ['none', 'blue', 'yellow', 'orange', 'red'].map((l) => el('span', null, el('i', { class: 'sw dot', style: { background: RAIN_COLORS[l] } }), tr('rain', l))),
          el('span', null, el('b', null, t('flood.legend.depth'))),
          ['none', 'warning', 'road_closure'].map((l) => el('span', null, el('i', { class: 'sw dot', style: { background: '#fff', border: `3px solid ${DEPTH_COLORS[l]}` } }), tr('depth', l))))),
      el('div', null,
        el('section', { class: 'panel', id: 'chart' }, loadingBox()),
        el('section', { class: 'panel' }, el('h2', null, t('flood.cap')), el('div', { id: 'cap' }, loadingBox()))),
      el('div', { id: 'history-error', class: 'msg err span2', role: 'alert', testid: 'history-error', hidden: true }),
      el('section', { class: 'panel span2' }, el('h2', null, t('flood.rain')), el('div', { id: 'rain' }, loadingBox())),
      el('section', { class: 'panel span2' }, el('h2', null, t('flood.depth')), el('div', { id: 'depth' }, loadingBox())),
      el('section', { class: 'panel span2' }, el('h2', null, t('flood.chart')), el('div', { id: 'multiples', class: 'multiples' }))));
  try {
    const city = await getCity();
    map = baseMap($('#fmap'), city, { zoom: 12 });
    drawCity(map, { districts: city.districts }, { fit: true });
  } catch (e) {
    $('#fmap').replaceWith(errorBox(e));
  }
  try {
    await load();
  } catch (e) {
    clear($('#rain'), errorBox(e, 'flood-error'));
    return;
  }
  if (!selected) {
    const top = sorted([...gauges.values()].filter((g) => g.kind === 'rain'), { key: 'level', dir: -1 }, rainValue)[0];
    if (top) select(top.device);
  }
  const b = L.latLngBounds([...gauges.values()].filter((g) => g.lat !== undefined && g.lat !== null).map((g) => [g.lat, g.lon]));
  if (map && b.isValid()) map.fitBounds(b.pad(0.15));
  openStream({ gauges: onGauges, alert: (a) => { debug.streamEvents++; if (a?.subject?.kind === 'gauge') reloadSoon(); } });
  setInterval(() => load().catch(() => {}), 60000);
}

main().catch((e) => console.warn(e));
