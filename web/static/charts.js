// charts.js: small inline SVG charts (no library): hourly bars, a line,
// day bars. Every label is set with textContent.

const NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) { return Number.isInteger(v) || Math.abs(v) >= 10 ? String(Math.round(v)) : v.toFixed(1); }

// frame draws the axes and y grid; returns {g, x0, y0, w, h, y(v)}.
function frame(root, { width, height, max, unit, pad }) {
  const p = { l: 36, r: 8, t: 12, b: 22, ...pad };
  const w = width - p.l - p.r, h = height - p.t - p.b;
  const y = (v) => p.t + h - (v / max) * h;
  for (const f of [0, 0.5, 1]) {
    const yy = y(max * f);
    root.append(svg('line', { class: f ? 'grid' : 'axis', x1: p.l, x2: p.l + w, y1: yy, y2: yy }));
    root.append(svg('text', { x: p.l - 4, y: yy + 4, 'text-anchor': 'end' }, fmt(max * f)));
  }
  if (unit) root.append(svg('text', { x: p.l + 4, y: p.t + 10 }, unit));
  return { x0: p.l, y0: p.t, w, h, y, p };
}

// barChart: points [[ts_unix, value], ...]; color(value) → fill;
// xLabel(ts) → text; thresholds [{value, color, label}].
export function barChart(points, { width = 520, height = 170, unit = '', color = () => '#1e6fd9', xLabel = () => '', every = 6, thresholds = [], title = '' } = {}) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  if (title) root.append(svg('title', {}, title));
  const vals = points.map((p) => Number(p[1]) || 0);
  const max = niceMax(Math.max(...vals, ...thresholds.map((t) => t.value * 1.05), 1));
  const f = frame(root, { width, height, max, unit });
  const n = Math.max(points.length, 1), bw = f.w / n;
  points.forEach((pt, i) => {
    const v = Number(pt[1]) || 0;
    const x = f.x0 + i * bw;
    const y = f.y(v);
    const bar = svg('rect', { x: x + bw * 0.12, y, width: Math.max(1, bw * 0.76), height: Math.max(0, f.y0 + f.h - y), fill: color(v) });
    bar.append(svg('title', {}, `${xLabel(pt[0])} ${fmt(v)} ${unit}`));
    root.append(bar);
    if (i % every === 0) root.append(svg('text', { x: x + bw / 2, y: height - 6, 'text-anchor': 'middle' }, xLabel(pt[0])));
  });
  for (const t of thresholds) {
    if (t.value > max) continue;
    root.append(svg('line', { class: 'thr', x1: f.x0, x2: f.x0 + f.w, y1: f.y(t.value), y2: f.y(t.value), stroke: t.color }));
    if (t.label) root.append(svg('text', { x: f.x0 + f.w - 2, y: f.y(t.value) - 3, 'text-anchor': 'end', fill: t.color }, t.label));
  }
  return root;
}

// lineChart: points [[ts_unix, value], ...] over [from, to] (unix s).
export function lineChart(points, { width = 520, height = 170, unit = '', stroke = '#0b5cad', xLabel = () => '', from, to, ticks = 4, thresholds = [], title = '' } = {}) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  if (title) root.append(svg('title', {}, title));
  const vals = points.map((p) => Number(p[1]) || 0);
  const max = niceMax(Math.max(...vals, ...thresholds.map((t) => t.value * 1.05), 1));
  const f = frame(root, { width, height, max, unit });
  const t0 = from ?? (points[0]?.[0] || 0), t1 = to ?? (points[points.length - 1]?.[0] || 1);
  const x = (ts) => f.x0 + ((ts - t0) / Math.max(1, t1 - t0)) * f.w;
  for (const t of thresholds) {
    if (t.value > max) continue;
    root.append(svg('line', { class: 'thr', x1: f.x0, x2: f.x0 + f.w, y1: f.y(t.value), y2: f.y(t.value), stroke: t.color }));
    if (t.label) root.append(svg('text', { x: f.x0 + 2, y: f.y(t.value) - 3, fill: t.color }, t.label));
  }
  if (points.length) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${f.y(Number(p[1]) || 0).toFixed(1)}`).join('');
    const area = `${d}L${x(points[points.length - 1][0]).toFixed(1)},${f.y0 + f.h}L${x(points[0][0]).toFixed(1)},${f.y0 + f.h}Z`;
    root.append(svg('path', { d: area, fill: stroke, 'fill-opacity': 0.12, stroke: 'none' }));
    root.append(svg('path', { d, fill: 'none', stroke, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
  }
  for (let i = 0; i <= ticks; i++) {
    const ts = t0 + ((t1 - t0) * i) / ticks;
    root.append(svg('text', { x: x(ts), y: height - 6, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' }, xLabel(ts)));
  }
  return root;
}

// dayChart: [{label, value, sub}] as bars with the value above, and an
// optional second series drawn as a line (sub, on its own scale).
export function dayChart(days, { width = 900, height = 220, color = '#d55e00', subColor = '#0072b2', title = '', subLabel = '', label = '' } = {}) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  if (title) root.append(svg('title', {}, title));
  const max = niceMax(Math.max(...days.map((d) => d.value), 1));
  const f = frame(root, { width, height, max, unit: label, pad: { t: 18, b: 26, r: subLabel ? 44 : 8 } });
  const n = Math.max(days.length, 1), bw = f.w / n;
  const every = Math.ceil(n / 14);
  days.forEach((d, i) => {
    const x = f.x0 + i * bw, y = f.y(d.value);
    const r = svg('rect', { x: x + bw * 0.15, y, width: Math.max(1, bw * 0.7), height: f.y0 + f.h - y, fill: color });
    r.append(svg('title', {}, `${d.label}: ${d.value}${d.sub !== undefined ? ` · ${subLabel} ${d.sub}` : ''}`));
    root.append(r);
    if (n <= 31) root.append(svg('text', { x: x + bw / 2, y: y - 3, 'text-anchor': 'middle' }, String(d.value)));
    if (i % every === 0) root.append(svg('text', { x: x + bw / 2, y: height - 8, 'text-anchor': 'middle' }, d.label));
  });
  if (subLabel && days.some((d) => d.sub !== undefined)) {
    const smax = niceMax(Math.max(...days.map((d) => d.sub || 0), 1));
    const sy = (v) => f.y0 + f.h - (v / smax) * f.h;
    const path = days.map((d, i) => `${i ? 'L' : 'M'}${(f.x0 + i * bw + bw / 2).toFixed(1)},${sy(d.sub || 0).toFixed(1)}`).join('');
    root.append(svg('path', { d: path, fill: 'none', stroke: subColor, 'stroke-width': 2, 'stroke-dasharray': '6 3' }));
    days.forEach((d, i) => root.append(svg('circle', { cx: f.x0 + i * bw + bw / 2, cy: sy(d.sub || 0), r: 3, fill: subColor })));
    root.append(svg('text', { x: width - 4, y: f.y0 - 6, 'text-anchor': 'end', fill: subColor }, `${subLabel} (max ${smax})`));
  }
  return root;
}
