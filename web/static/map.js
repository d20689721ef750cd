// map.js: Leaflet maps of the city (districts, sites, permit corridors) and
// one canvas layer that draws every truck as a heading arrow. Leaflet is the
// global L from /static/vendor/leaflet/leaflet.js.

import { el, esc, t, tr } from '/static/app.js';

const L = window.L;

export const TRUCK_COLORS = {
  empty: '#009e73', loaded: '#0072b2', cover_open: '#e69f00', alerting: '#d55e00', offline: '#8a8a8a', unknown: '#c4c4c4',
};
export const TRUCK_STATES = ['alerting', 'cover_open', 'loaded', 'empty', 'offline', 'unknown'];
export const SITE_COLORS = { construction: '#9a5b00', disposal: '#6a3d9a' };
export const ROUTE_COLOR = '#2b8a3e';
export const RAIN_COLORS = { none: '#9aa5b1', blue: '#1e6fd9', yellow: '#f2c500', orange: '#f28c00', red: '#e02020' };
export const DEPTH_COLORS = { none: '#4b9e6b', warning: '#f28c00', road_closure: '#e02020' };

// baseMap makes a map in div: a tile layer only when the city names one,
// otherwise a plain light background.
export function baseMap(div, city, opts = {}) {
  const map = L.map(div, { preferCanvas: true, zoomControl: true, zoomSnap: 0.25, attributionControl: !!city.tile_url, worldCopyJump: false, ...opts });
  if (city.tile_url) {
    L.tileLayer(city.tile_url, { maxZoom: 19, crossOrigin: true }).addTo(map);
  } else {
    div.classList.add('plain-map');
  }
  const c = Array.isArray(city.center) && city.center.length === 2 ? city.center : [36.7068, 119.1617];
  map.setView(c, opts.zoom || 12);
  return map;
}

function metresPerPixel(map) {
  const lat = map.getCenter().lat;
  return 40075016.686 * Math.cos(lat * Math.PI / 180) / 2 ** (map.getZoom() + 8);
}

// drawCity draws districts, sites and routes (FeatureCollections) and
// returns their bounds (or null). The view fits where the trucks work (the
// sites and routes); the district outlines, which span a whole prefecture,
// only when there is nothing else.
export function drawCity(map, { districts, sites, routes }, { districtLabels = true, fit = true } = {}) {
  const bounds = L.latLngBounds([]);
  const outline = L.latLngBounds([]);
  const add = (layer, into = bounds) => { layer.addTo(map); try { const b = layer.getBounds(); if (b.isValid()) into.extend(b); } catch { /* empty */ } return layer; };
  if (districts?.features?.length) {
    add(L.geoJSON(districts, {
      style: { color: '#4f5d75', weight: 1.5, opacity: 0.8, dashArray: '6 4', fill: true, fillColor: '#4f5d75', fillOpacity: 0.03 },
      interactive: false,
      onEachFeature: (f, layer) => {
        if (districtLabels && f.properties?.name) layer.bindTooltip(esc(f.properties.name), { permanent: true, direction: 'center', className: 'district-label' });
      },
    }), outline);
  }
  if (routes?.features?.length) {
    const corridors = [];
    add(L.geoJSON(routes, {
      style: { color: ROUTE_COLOR, weight: 2, opacity: 0.9 },
      onEachFeature: (f, layer) => {
        const p = f.properties || {};
        layer.bindTooltip(esc(`${p.name || p.id || t('route')}${p.corridor_m ? ` · ±${p.corridor_m} ${t('unit.m')}` : ''}`), { sticky: true });
        if (p.corridor_m && f.geometry && /LineString/.test(f.geometry.type)) {
          const c = L.geoJSON(f, { style: { color: ROUTE_COLOR, weight: 10, opacity: 0.18, lineCap: 'round', lineJoin: 'round' }, interactive: false });
          c.corridorM = p.corridor_m;
          corridors.push(c);
        }
      },
    }));
    for (const c of corridors) { c.addTo(map); c.bringToBack(); }
    const resize = () => {
      const mpp = metresPerPixel(map);
      for (const c of corridors) c.setStyle({ weight: Math.max(3, Math.min(200, (2 * c.corridorM) / mpp)) });
    };
    map.on('zoomend', resize);
    resize();
  }
  if (sites?.features?.length) {
    add(L.geoJSON(sites, {
      style: (f) => {
        const col = SITE_COLORS[f.properties?.kind] || '#555';
        return { color: col, weight: 2, fillColor: col, fillOpacity: 0.25 };
      },
      pointToLayer: (f, ll) => {
        const col = SITE_COLORS[f.properties?.kind] || '#555';
        return L.circleMarker(ll, { radius: 7, color: '#fff', weight: 2, fillColor: col, fillOpacity: 0.95 });
      },
      onEachFeature: (f, layer) => {
        const p = f.properties || {};
        layer.bindTooltip(esc(`${p.name || p.id || ''} · ${tr('site', p.kind, p.kind || '')}`), { sticky: true });
      },
    }));
  }
  if (!bounds.isValid() && outline.isValid()) bounds.extend(outline);
  if (fit && bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
  return bounds.isValid() ? bounds : null;
}

// cityLegend is a small key of what drawCity drew.
export function cityLegend() {
  const sw = (cls, color) => el('i', { class: 'sw ' + cls, style: { background: color, borderColor: color }, 'aria-hidden': 'true' });
  return el('div', { class: 'map-key' },
    el('span', null, sw('sq', SITE_COLORS.construction), t('site.construction')),
    el('span', null, sw('sq', SITE_COLORS.disposal), t('site.disposal')),
    el('span', null, sw('ln', ROUTE_COLOR), t('route')));
}

// TruckCanvas draws trucks (a Map plate → {lat, lon, heading, state}) on
// one canvas over the map, redrawn on pan/zoom and at most once a frame
// when data changes. Hit-testing is by distance in screen pixels.
export const TruckCanvas = L.Layer.extend({
  initialize(trucks, { onPick } = {}) {
    this._trucks = trucks;
    this._onPick = onPick;
    this._selected = null;
    this._pending = false;
  },
  onAdd(map) {
    this._map = map;
    const c = this._canvas = L.DomUtil.create('canvas', 'truck-canvas');
    c.setAttribute('aria-hidden', 'true');
    map.getContainer().appendChild(c);
    map.on('move resize zoomend viewreset', this._redraw, this);
    map.on('zoomstart', this._hide, this);
    map.on('click', this._click, this);
    this._resize();
    this._redraw();
  },
  onRemove(map) {
    map.off('move resize zoomend viewreset', this._redraw, this);
    map.off('zoomstart', this._hide, this);
    map.off('click', this._click, this);
    this._canvas.remove();
  },
  select(plate) { this._selected = plate; this.changed(); },
  changed() {
    if (this._pending) return;
    this._pending = true;
    requestAnimationFrame(() => { this._pending = false; this._redraw(); });
  },
  _hide() { if (this._canvas) this._canvas.style.visibility = 'hidden'; },
  _resize() {
    const size = this._map.getSize(), r = window.devicePixelRatio || 1;
    const c = this._canvas;
    if (c.width !== Math.round(size.x * r) || c.height !== Math.round(size.y * r)) {
      c.width = Math.round(size.x * r); c.height = Math.round(size.y * r);
      c.style.width = size.x + 'px'; c.style.height = size.y + 'px';
    }
    this._ratio = r;
  },
  _redraw() {
    if (!this._map || !this._canvas) return;
    this._resize();
    const map = this._map, c = this._canvas, ctx = c.getContext('2d'), r = this._ratio;
    c.style.visibility = 'visible';
    ctx.setTransform(r, 0, 0, r, 0, 0);
    const size = map.getSize();
    ctx.clearRect(0, 0, size.x, size.y);
    const zoom = map.getZoom();
    const s = zoom >= 15 ? 9 : zoom >= 14 ? 7.5 : zoom >= 13 ? 6 : zoom >= 12 ? 5 : 4;
    const pts = this._pts = [];
    let sel = null;
    // draw calmer states first so alerting trucks end on top
    const order = ['unknown', 'offline', 'empty', 'loaded', 'cover_open', 'alerting'];
    const buckets = new Map(order.map((k) => [k, []]));
    for (const [plate, tr] of this._trucks) {
      if (tr.lat === null || tr.lat === undefined || tr.lon === null || tr.lon === undefined) continue;
      const p = map.latLngToContainerPoint([tr.lat, tr.lon]);
      if (p.x < -20 || p.y < -20 || p.x > size.x + 20 || p.y > size.y + 20) continue;
      const item = { plate, x: p.x, y: p.y, tr };
      pts.push(item);
      (buckets.get(tr.state) || buckets.get('unknown')).push(item);
      if (plate === this._selected) sel = item;
    }
    ctx.lineJoin = 'round';
    for (const st of order) {
      const col = TRUCK_COLORS[st] || TRUCK_COLORS.unknown;
      for (const { x, y, tr } of buckets.get(st)) {
        const moving = tr.state !== 'offline' && tr.state !== 'unknown';
        ctx.save();
        ctx.translate(x, y);
        if (st === 'alerting') {
          ctx.beginPath(); ctx.arc(0, 0, s * 1.9, 0, Math.PI * 2);
          ctx.strokeStyle = 'rgba(213,94,0,0.9)'; ctx.lineWidth = 2.5; ctx.stroke();
        }
        if (moving) {
          ctx.rotate(((tr.heading || 0) * Math.PI) / 180);
          ctx.beginPath();
          ctx.moveTo(0, -s * 1.35); ctx.lineTo(s, s); ctx.lineTo(0, s * 0.45); ctx.lineTo(-s, s); ctx.closePath();
        } else {
          ctx.beginPath(); ctx.arc(0, 0, s * 0.7, 0, Math.PI * 2);
        }
        ctx.fillStyle = col; ctx.fill();
        ctx.strokeStyle = '#1b1f24'; ctx.lineWidth = 1.2; ctx.stroke();
        ctx.restore();
      }
    }
    if (sel) {
      ctx.beginPath(); ctx.arc(sel.x, sel.y, s * 2.4, 0, Math.PI * 2);
      ctx.strokeStyle = '#111'; ctx.lineWidth = 3; ctx.stroke();
      ctx.strokeStyle = '#fff'; ctx.lineWidth = 1.5; ctx.stroke();
    }
  },
  // pick returns the plate nearest to a container point, within 22 px.
  pick(pt) {
    let best = null, bd = 22 * 22;
    for (const it of this._pts || []) {
      const d = (it.x - pt.x) ** 2 + (it.y - pt.y) ** 2;
      if (d < bd) { bd = d; best = it.plate; }
    }
    return best;
  },
  _click(e) {
    const plate = this.pick(e.containerPoint);
    if (this._onPick) this._onPick(plate, e);
  },
});

// trackLayer draws a track [[lat, lon, ...], ...] as a line with start and
// end marks.
export function trackLayer(points, { color = '#c2185b' } = {}) {
  const g = L.featureGroup();
  const ll = points.filter((p) => p && p[0] !== null && p[1] !== null).map((p) => [p[0], p[1]]);
  if (!ll.length) return g;
  L.polyline(ll, { color: '#fff', weight: 7, opacity: 0.8 }).addTo(g);
  L.polyline(ll, { color, weight: 4, opacity: 0.95 }).addTo(g);
  L.circleMarker(ll[0], { radius: 5, color, weight: 2, fillColor: '#fff', fillOpacity: 1 }).addTo(g);
  L.circleMarker(ll[ll.length - 1], { radius: 7, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 }).addTo(g);
  return g;
}
