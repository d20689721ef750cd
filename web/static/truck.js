// truck.js: one truck: state, sensors now, the permit in force, the last
// 30 minutes of track on a small map with the permit's routes and sites,
// and its alerts.

import {
  initPage, api, getCity, el, esc, clear, $, t, tr, errorBox, alertRow, sortAlerts, fmtTime, fmtAgo, fmtNum, fmtLoad,
  truckStateBadge, pathArg,
} from '/static/app.js';
import { baseMap, drawCity, cityLegend, trackLayer, TRUCK_COLORS } from '/static/map.js';

const L = window.L;

async function main() {
  const me = await initPage('truck', { active: 'inspect' });
  if (!me) return;
  const plate = pathArg();
  const main = $('#main');
  let d, city;
  try {
    [d, city] = await Promise.all([api('trucks/' + encodeURIComponent(plate)), getCity().catch(() => ({}))]);
  } catch (e) {
    clear(main, el('h1', null, el('span', { class: 'plate big', testid: 'truck-plate' }, plate)), errorBox(e));
    return;
  }
  const x = d.truck || {};
  document.title = `${x.plate || plate} · ${t('truck.title')}`;
  const permit = d.permit;
  const yesno = (b) => el('span', { class: 'badge ' + (b ? 'ast-resolved' : 'ast-firing') }, b ? t('yes') : t('no'));
  const sensor = (k, v) => el('span', { class: 'badge ' + (k === 'cover' && v === 'open' ? 'ast-firing' : k === 'cover' && v === 'closed' ? 'ast-resolved' : 'tstate') }, tr(k, v || 'unknown'));
  const names = (list) => (list || []).map((s) => s.name || s.id).join('、') || '—';

  const mapDiv = el('div', { class: 'map', id: 'tmap', testid: 'map', style: { height: '360px' } });
  clear(main,
    el('div', { class: 'alert-head' },
      el('h1', null, el('span', { class: 'plate big', testid: 'truck-plate' }, x.plate || plate)),
      truckStateBadge(x.state),
      x.alerts > 0 ? el('span', { class: 'badge ast-firing' }, `${t('nav.alerts')} ${x.alerts}`) : null),
    el('div', { class: 'grid2' },
      el('section', { class: 'panel' },
        el('dl', { class: 'kv' },
          el('dt', null, t('truck.company')), el('dd', { testid: 'truck-company' }, x.company_name || x.company || '—'),
          el('dt', null, t('truck.device')), el('dd', { class: 'mono' }, x.device || '—'),
          el('dt', null, t('truck.state')), el('dd', null, tr('state', x.state || 'unknown')),
          el('dt', null, t('truck.speed')), el('dd', null, x.lat !== undefined && x.lat !== null ? `${fmtNum(x.speed_kmh, 0)} ${t('unit.kmh')}` : '—'),
          el('dt', null, t('truck.heading')), el('dd', null, x.lat !== undefined && x.lat !== null ? `${fmtNum(x.heading, 0)}°` : '—'),
          el('dt', null, t('truck.time')), el('dd', null, x.ts ? `${fmtTime(x.ts)} (${fmtAgo(x.ts)})` : '—'),
          el('dt', null, t('truck.position')), el('dd', { class: 'mono' }, x.lat !== undefined && x.lat !== null ? `${Number(x.lat).toFixed(5)}, ${Number(x.lon).toFixed(5)}` : '—'))),
      el('section', { class: 'panel', testid: 'sensors' },
        el('h2', null, t('truck.sensors')),
        el('dl', { class: 'kv' },
          el('dt', null, t('truck.cover')), el('dd', { testid: 'sensor-cover' }, sensor('cover', x.cover)),
          el('dt', null, t('truck.body')), el('dd', { testid: 'sensor-body' }, sensor('body', x.body)),
          el('dt', null, t('truck.load')), el('dd', { testid: 'sensor-load' }, x.has_load || x.load_kg !== undefined ? fmtLoad(x.load_kg) : '—'),
          x.sensors_ts ? [el('dt', null, t('truck.sensors_ts')), el('dd', null, fmtTime(x.sensors_ts))] : null))),
    el('section', { class: 'panel', testid: 'permit' },
      el('h2', null, t('truck.permit')),
      permit ? el('dl', { class: 'kv' },
        el('dt', null, t('truck.permit.id')), el('dd', { class: 'mono' }, permit.id || '—'),
        el('dt', null, t('truck.permit.valid')), el('dd', null, `${(permit.valid_from || '').slice(0, 10)} — ${(permit.valid_to || '').slice(0, 10)}`),
        el('dt', null, t('truck.permit.windows')), el('dd', null, (permit.windows || []).join('，') || '—'),
        el('dt', null, t('truck.permit.in_force')), el('dd', { testid: 'permit-in-force' }, yesno(permit.in_force)),
        el('dt', null, t('truck.permit.window_open')), el('dd', { testid: 'permit-window-open' }, yesno(permit.window_open)),
        el('dt', null, t('truck.permit.origins')), el('dd', null, names(permit.origins)),
        el('dt', null, t('truck.permit.disposal')), el('dd', null, names(permit.disposal)),
        el('dt', null, t('truck.permit.routes')), el('dd', null, (permit.routes?.features || []).map((f) => f.properties?.name || f.properties?.id).join('、') || '—'),
        el('dt', null, t('truck.permit.corridor')), el('dd', null, permit.corridor_m ? `± ${permit.corridor_m} ${t('unit.m')}` : '—'))
        : el('div', { class: 'msg err' }, t('truck.nopermit'))),
    el('section', { class: 'panel' },
      el('h2', null, t('truck.track')),
      (d.track || []).length ? null : el('div', { class: 'msg info' }, t('truck.notrack')),
      mapDiv, cityLegend()),
    el('section', { class: 'panel' },
      el('h2', null, t('truck.alerts')),
      (d.alerts || []).length
        ? el('div', { class: 'alist', testid: 'alert-list' }, sortAlerts([...d.alerts]).map((a) => alertRow(a)))
        : el('div', { class: 'empty' }, t('truck.noalerts'))));

  const map = baseMap(mapDiv, city || {}, { zoom: 13 });
  drawCity(map, { districts: city?.districts, sites: permit?.sites, routes: permit?.routes }, { districtLabels: false, fit: false });
  const track = trackLayer(d.track || []).addTo(map);
  const b = track.getBounds();
  if (x.lat !== undefined && x.lat !== null) {
    L.circleMarker([x.lat, x.lon], { radius: 9, color: '#111', weight: 2, fillColor: TRUCK_COLORS[x.state] || '#888', fillOpacity: 1 })
      .bindTooltip(esc(x.plate || plate)).addTo(map);
    b.extend([x.lat, x.lon]);
  }
  if (b.isValid()) map.fitBounds(b, { padding: [24, 24], maxZoom: 16 });
}

main().catch((e) => console.warn(e));
