// evidence.js: the printable evidence packet of a truck alert, with the
// SHA-256 of the stored bundle and a link to download it.

import {
  initPage, api, getCity, el, clear, $, t, tr, ruleName, errorBox, fmtTime, fmtNum, fmtLoad, fmtDist, pathArg, truckURL, alertURL, toDate, fmtClock,
  detailLabel, detailValue, ruleOfAlertId,
} from '/static/app.js';
import { baseMap, drawCity, cityLegend, trackLayer } from '/static/map.js';
import { svg } from '/static/charts.js';

const L = window.L;
const id = pathArg();

function kvRows(pairs) {
  return el('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [el('dt', null, k), el('dd', null, v ?? '—')]));
}

function ruleTable(rule) {
  const th = rule?.thresholds || {}, me = rule?.measured || {};
  const keys = [...new Set([...Object.keys(th), ...Object.keys(me)])];
  if (!keys.length) return el('div', { class: 'muted' }, t('alert.nodetails'));
  return el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'rule-table' },
    el('thead', null, el('tr', null, el('th', null, t('ev.item')), el('th', { class: 'num' }, t('ev.threshold')), el('th', { class: 'num' }, t('ev.measured')))),
    el('tbody', null, keys.map((k) => el('tr', null, el('th', { scope: 'row' }, detailLabel(k), el('div', { class: 'muted mono small' }, k)), el('td', { class: 'num' }, th[k] === undefined ? '—' : detailValue(k, th[k])), el('td', { class: 'num' }, el('b', null, me[k] === undefined ? '—' : detailValue(k, me[k]))))))));
}

const COVER_COL = { closed: '#2b8a3e', open: '#e69f00', fault: '#b3001b', unknown: '#c4c4c4' };
const BODY_COL = { down: '#9aa5b1', raised: '#6a3d9a', unknown: '#e3e8ed' };

// strip is the cover / body / load timeline as three lanes over the window.
function strip(timeline, win, alertStart) {
  const W = 900, lane = 26, padL = 70, top = 8, H = top + lane * 2 + 70 + 24;
  const pts = timeline.map((r) => ({ ...r, t: toDate(r.ts)?.getTime() })).filter((r) => r.t).sort((a, b) => a.t - b.t);
  const t0 = toDate(win?.from)?.getTime() ?? pts[0]?.t ?? 0, t1 = toDate(win?.to)?.getTime() ?? pts[pts.length - 1]?.t ?? 1;
  const x = (ms) => padL + ((ms - t0) / Math.max(1, t1 - t0)) * (W - padL - 8);
  const root = svg('svg', { class: 'strip', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('ev.timeline') });
  const lanes = [[t('truck.cover'), 'cover', COVER_COL], [t('truck.body'), 'body', BODY_COL]];
  lanes.forEach(([label, key, cols], li) => {
    const y = top + li * lane;
    root.append(svg('text', { x: 4, y: y + lane / 2 + 4 }, label));
    pts.forEach((p, i) => {
      const xe = i + 1 < pts.length ? x(pts[i + 1].t) : x(t1);
      const r = svg('rect', { x: x(p.t), y: y + 2, width: Math.max(0.5, xe - x(p.t)), height: lane - 6, fill: cols[p[key]] || cols.unknown });
      r.append(svg('title', {}, `${fmtClock(p.ts)} ${tr(key, p[key] || 'unknown')}`));
      root.append(r);
    });
  });
  const ly = top + lane * 2 + 6, lh = 60;
  const maxKg = Math.max(1000, ...pts.map((p) => Number(p.load_kg) || 0));
  root.append(svg('text', { x: 4, y: ly + lh / 2 + 4 }, t('truck.load')));
  root.append(svg('line', { x1: padL, x2: W - 8, y1: ly + lh, y2: ly + lh, class: 'axis', stroke: '#9aa5b1' }));
  root.append(svg('text', { x: padL + 2, y: ly + 10 }, fmtLoad(maxKg)));
  const lp = pts.filter((p) => p.load_kg !== null && p.load_kg !== undefined);
  if (lp.length) {
    root.append(svg('path', { d: lp.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${(ly + lh - (Number(p.load_kg) / maxKg) * lh).toFixed(1)}`).join(''), fill: 'none', stroke: '#0072b2', 'stroke-width': 2 }));
  }
  const as = toDate(alertStart)?.getTime();
  if (as && as >= t0 && as <= t1) {
    root.append(svg('line', { x1: x(as), x2: x(as), y1: top, y2: ly + lh, stroke: '#b3001b', 'stroke-width': 2, 'stroke-dasharray': '4 3' }));
    root.append(svg('text', { x: x(as) + 3, y: ly + lh + 14, fill: '#b3001b' }, t('alert.started')));
  }
  for (let i = 0; i <= 4; i++) {
    const ms = t0 + ((t1 - t0) * i) / 4;
    root.append(svg('text', { x: x(ms), y: H - 4, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fmtClock(ms)));
  }
  const key = el('div', { class: 'map-key' },
    ['closed', 'open', 'fault'].map((c) => el('span', null, el('i', { class: 'sw sq', style: { background: COVER_COL[c] } }), `${t('truck.cover')} ${tr('cover', c)}`)),
    el('span', null, el('i', { class: 'sw sq', style: { background: BODY_COL.raised } }), `${t('truck.body')} ${tr('body', 'raised')}`));
  return [root, key];
}

// changes keeps the first reading and every one where cover, body or the
// load (by more than 5 %) changed, and the last.
function changes(timeline) {
  const out = [];
  let prev = null;
  timeline.forEach((r, i) => {
    const kg = Number(r.load_kg) || 0, pk = Number(prev?.load_kg) || 0;
    if (!prev || r.cover !== prev.cover || r.body !== prev.body || Math.abs(kg - pk) > Math.max(50, pk * 0.05) || i === timeline.length - 1) { out.push(r); prev = r; }
  });
  return out;
}

function historyPanel(a, note) {
  const hist = [...(a.history || [])].sort((x, y) => new Date(x.at) - new Date(y.at));
  if (!hist.length && !note) return null;
  return el('section', { class: 'panel', testid: 'ev-history' },
    el('h2', null, t('alert.history')),
    note ? el('div', { class: 'msg info' }, note) : null,
    hist.length ? el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl' },
      el('thead', null, el('tr', null, el('th', null, t('ev.time')), el('th', null, t('ev.event')), el('th', null, t('alert.note')))),
      el('tbody', null, hist.map((h) => el('tr', null, el('td', null, fmtTime(h.at)),
        el('td', null, tr('h', h.kind), h.by ? ` · ${h.by}` : ''),
        el('td', { class: 'text' }, h.kind === 'outcome' ? tr('out', h.text, h.text || '') : h.text || '')))))) : null);
}

function rawTable(raw) {
  const cols = [...new Set(raw.slice(0, 200).flatMap((r) => (r && typeof r === 'object' ? Object.keys(r) : ['value'])))].slice(0, 12);
  return el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl raw mono', testid: 'raw-table' },
    el('thead', null, el('tr', null, el('th', null, '#'), cols.map((c) => el('th', null, c)))),
    el('tbody', null, raw.map((r, i) => el('tr', null, el('td', null, String(i + 1)),
      cols.map((c) => { const v = r && typeof r === 'object' ? r[c] : r; return el('td', null, v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)); }))))));
}

async function main() {
  const me = await initPage('evidence', { active: 'alerts' });
  if (!me) return;
  const main = $('#main');
  let d, city;
  try {
    [d, city] = await Promise.all([api('evidence/' + encodeURIComponent(id)), getCity().catch(() => ({}))]);
  } catch (e) {
    clear(main, el('h1', null, t('ev.title')), el('p', { class: 'mono' }, id), errorBox(e));
    return;
  }
  const p = d.packet || {}, a = p.alert || {}, tk = p.truck || {}, pm = p.permit, trip = p.trip, rule = p.rule || {};
  const fname = `evidence-${(d.sha256 || '').slice(0, 12)}.json`;
  document.title = `${t('ev.title')} · ${tk.plate || a.subject?.id || ''} · ${ruleName(a.rule || rule.id)}`;
  const mapDiv = el('div', { class: 'map', testid: 'map', style: { height: '380px' } });
  const timeline = p.timeline || [], raw = p.raw || [];
  const rawDetails = el('details', { testid: 'raw' }, el('summary', null, t('ev.raw.show', { n: raw.length })), rawTable(raw));

  clear(main,
    el('div', { class: 'evidence-top noprint' },
      el('a', { href: alertURL(id), class: 'btn' }, '← ' + t('alert.title')),
      el('div', { class: 'row' },
        el('a', { class: 'btn primary', href: d.url, download: fname, testid: 'download' }, '⤓ ' + t('ev.download')),
        el('button', { class: 'btn', type: 'button', testid: 'print', on: { click: () => window.print() } }, t('ev.print')))),
    el('h1', { style: { marginTop: '.6rem' } }, `${t('ev.title')} · ${ruleName(a.rule || rule.id, rule.name)} · `, el('span', { class: 'plate' }, tk.plate || a.subject?.id || '')),
    el('section', { class: 'panel', testid: 'digest-panel' },
      el('h2', null, t('ev.sha')),
      el('div', { class: 'digest', testid: 'sha256' }, d.sha256 || '—'),
      d.final === false ? el('div', { class: 'msg info', testid: 'provisional' }, t('ev.provisional')) : null,
      el('p', null, `${t('ev.size')}: ${fmtNum(d.size, 0)} B · ${t('ev.format')}: `, el('span', { class: 'mono' }, p.format || '—'), ` · ${t('ev.generated')}: ${fmtTime(p.generated_at)}`),
      el('p', { class: 'small' }, t('ev.verify'), ' ', el('code', { class: 'mono' }, `sha256sum ${fname}`)),
      el('a', { class: 'noprint', href: d.url, download: fname }, d.url)),
    el('div', { class: 'grid2' },
      el('section', { class: 'panel' },
        el('h2', null, t('alert.summary')),
        kvRows([
          [t('col.rule'), ruleName(a.rule || rule.id, rule.name)],
          [t('col.severity'), tr('sev', a.severity, a.severity)],
          [t('col.state'), tr('ast', a.state, a.state)],
          [t('alert.started'), fmtTime(a.started_at)],
          [t('col.district'), a.subject?.district],
          a.location ? [t('alert.location'), `${Number(a.location.lat).toFixed(5)}, ${Number(a.location.lon).toFixed(5)}`] : null,
          [t('ev.window'), `${fmtTime(p.window?.from)} — ${fmtTime(p.window?.to)}`],
          ['ID', el('span', { class: 'mono' }, a.id || id)],
        ])),
      el('section', { class: 'panel' },
        el('h2', null, t('truck.title')),
        kvRows([
          [t('report.plate'), el('a', { href: truckURL(tk.plate || a.subject?.id || ''), class: 'plate' }, tk.plate || a.subject?.id || '')],
          [t('truck.company'), tk.company_name || a.subject?.company_name || tk.company],
          [t('truck.device'), el('span', { class: 'mono' }, tk.device || a.subject?.device || '—')],
        ]),
        el('h2', { style: { marginTop: '.8rem' } }, t('truck.permit')),
        pm ? kvRows([
          [t('truck.permit.id'), el('span', { class: 'mono' }, pm.id || '—')],
          [t('truck.permit.valid'), `${(pm.valid_from || '').slice(0, 10)} — ${(pm.valid_to || '').slice(0, 10)}`],
          [t('truck.permit.windows'), (pm.windows || []).join('，')],
          [t('truck.permit.routes'), (pm.routes?.features || []).map((f) => f.properties?.name || f.properties?.id).join('、')],
          [t('truck.permit.origins'), (pm.origins || []).map((s) => s.name || s.id).join('、')],
          [t('truck.permit.disposal'), (pm.disposal || []).map((s) => s.name || s.id).join('、')],
          [t('truck.permit.corridor'), pm.corridor_m ? `± ${pm.corridor_m} ${t('unit.m')}` : '—'],
        ]) : el('div', { class: 'msg err' }, t('truck.nopermit')))),
    el('section', { class: 'panel', testid: 'rule' },
      el('h2', null, `${t('ev.rule')}: ${ruleName(rule.id || a.rule, rule.name)}`),
      ruleTable(rule)),
    el('section', { class: 'panel', testid: 'trip' },
      el('h2', null, t('ev.trip')),
      trip ? kvRows([
        ['ID', el('span', { class: 'mono' }, trip.id || '—')],
        [t('ev.departed'), fmtTime(trip.departed_at)],
        [t('ev.arrived'), fmtTime(trip.arrived_at)],
        [t('truck.permit.origins'), trip.origin],
        [t('truck.permit.disposal'), trip.disposal],
        [t('ev.distance'), fmtDist(trip.distance_m)],
        [t('ev.duration'), trip.duration_s ? `${fmtNum(trip.duration_s / 60, 0)} ${t('unit.min')}` : '—'],
        [t('ev.violations'), (trip.violations || []).length ? (trip.violations || []).map((v, i) => [i ? '、' : '', v.includes('/') ? el('a', { href: alertURL(v) }, ruleName(ruleOfAlertId(v))) : ruleName(v)]) : '—'],
      ]) : el('div', { class: 'muted' }, t('ev.notrip'))),
    el('section', { class: 'panel' },
      el('h2', null, t('ev.track'), el('span', { class: 'muted small' }, ` ${fmtTime(p.window?.from)} — ${fmtTime(p.window?.to)}`)),
      mapDiv, cityLegend()),
    el('section', { class: 'panel', testid: 'timeline' },
      el('h2', null, t('ev.timeline')),
      timeline.length ? [strip(timeline, p.window, a.started_at),
        el('details', { open: changes(timeline).length <= 30 }, el('summary', null, `${t('ev.changes')} (${changes(timeline).length} / ${timeline.length})`),
          el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'timeline-table' },
            el('thead', null, el('tr', null, el('th', null, t('ev.time')), el('th', null, t('truck.cover')), el('th', null, t('truck.body')), el('th', { class: 'num' }, t('truck.load')))),
            el('tbody', null, changes(timeline).map((r) => el('tr', null, el('td', null, fmtTime(r.ts)), el('td', null, tr('cover', r.cover || 'unknown')), el('td', null, tr('body', r.body || 'unknown')), el('td', { class: 'num' }, fmtLoad(r.load_kg))))))))]
        : el('div', { class: 'muted' }, t('ev.notimeline'))),
    historyPanel(a, p.history_note),
    el('section', { class: 'panel raw-panel' }, el('h2', null, t('ev.raw')), rawDetails));

  addEventListener('beforeprint', () => { for (const x of document.querySelectorAll('details')) x.open = true; });

  const map = baseMap(mapDiv, city || {}, { zoom: 13 });
  drawCity(map, { districts: city?.districts }, { districtLabels: false, fit: false });
  const b = drawCity(map, { routes: pm?.routes, sites: pm?.sites }, { fit: false });
  const tl = L.featureGroup();
  for (const f of p.track?.features || []) {
    const g = f.geometry;
    if (!g) continue;
    if (g.type === 'LineString') trackLayer(g.coordinates.map(([lon, lat]) => [lat, lon])).addTo(tl);
    else if (g.type === 'MultiLineString') for (const c of g.coordinates) trackLayer(c.map(([lon, lat]) => [lat, lon])).addTo(tl);
    else if (g.type === 'Point') L.circleMarker([g.coordinates[1], g.coordinates[0]], { radius: 3, color: '#c2185b', weight: 1, fillOpacity: 0.8 }).addTo(tl);
  }
  tl.addTo(map);
  if (a.location && (a.location.lat || a.location.lon)) {
    L.circleMarker([a.location.lat, a.location.lon], { radius: 10, color: '#b3001b', weight: 3, fillOpacity: 0 }).bindTooltip(t('alert.location')).addTo(tl);
  }
  const tb = tl.getBounds();
  // the track with the permit's routes, when they are near enough to show together
  if (tb.isValid() && b && b.isValid()) {
    const u = L.latLngBounds(tb.getSouthWest(), tb.getNorthEast()).extend(b);
    const far = u.getNorthEast().distanceTo(u.getSouthWest()) > 25000;
    map.fitBounds(far ? tb : u, { padding: [24, 24], maxZoom: 16 });
  } else if (tb.isValid()) map.fitBounds(tb, { padding: [24, 24], maxZoom: 16 });
  else if (b) map.fitBounds(b);
}

main().catch((e) => console.warn(e));
