// report.js: the compliance report: per truck and rule, a trend by day,
// totals, case outcomes and the CSV download.

import { initPage, api, getCity, el, clear, $, t, tr, ruleName, errorBox, fmtNum, ymd, loadingBox } from '/static/app.js';
import { dayChart } from '/static/charts.js';

let me = null;
const debug = window.uwDebug = {};

function params() {
  const q = new URLSearchParams({ from: $('#from').value, to: $('#to').value });
  const c = me.role === 'company' ? me.company : $('#company').value;
  if (c) q.set('company', c);
  return q;
}

function num(v, d = 0) { return v === null || v === undefined ? '—' : fmtNum(v, d); }
function cell(v, d = 0) { return el('td', { class: 'num' + (!v ? ' zero' : '') }, num(v ?? 0, d)); }

async function run() {
  const from = $('#from').value, to = $('#to').value;
  const out = $('#out');
  if (!from || !to || from > to) { clear(out, errorBox(t('report.badrange'))); return; }
  const q = params();
  history.replaceState(null, '', '?' + q);
  $('#csv').href = '/console/api/report.csv?' + q;
  clear(out, loadingBox());
  let d;
  try {
    d = await api('report?' + q);
  } catch (e) {
    clear(out, errorBox(e, 'report-error'));
    return;
  }
  debug.report = d;
  const rules = d.rules?.length ? d.rules : [...new Set((d.trucks || []).flatMap((r) => Object.keys(r.violations || {})))];
  const rows = [...(d.trucks || [])].sort((a, b) => (b.total || 0) - (a.total || 0) || (b.per_100_trips || 0) - (a.per_100_trips || 0) || String(a.plate).localeCompare(b.plate));
  const sum = { trips: 0, total: 0, uncovered_min: 0, v: {} };
  for (const r of rows) {
    sum.trips += r.trips || 0; sum.total += r.total || 0; sum.uncovered_min += r.uncovered_min || 0;
    for (const k of rules) sum.v[k] = (sum.v[k] || 0) + (r.violations?.[k] || 0);
  }
  const trips = d.totals?.trips ?? sum.trips, total = d.totals?.total ?? sum.total;
  const per100 = trips ? (total * 100) / trips : 0;
  const showCo = me.role !== 'company';
  const outcomes = d.outcomes || {};
  const days = (d.days || []).map((x) => ({ label: String(x.date).slice(5), value: x.total || 0, sub: x.trips }));

  clear(out,
    el('section', { class: 'panel' },
      el('div', { class: 'stats', testid: 'totals' },
        el('div', { class: 'stat' }, el('div', { class: 'v' }, num(trips)), el('div', { class: 'k' }, t('report.trips'))),
        el('div', { class: 'stat' }, el('div', { class: 'v', testid: 'total-violations' }, num(total)), el('div', { class: 'k' }, t('report.total'))),
        el('div', { class: 'stat' }, el('div', { class: 'v' }, num(per100, 1)), el('div', { class: 'k' }, t('report.per100'))),
        el('div', { class: 'stat' }, el('div', { class: 'v' }, num(d.totals?.uncovered_min ?? sum.uncovered_min, 0)), el('div', { class: 'k' }, t('report.uncovered'))),
        rules.map((k) => el('div', { class: 'stat' }, el('div', { class: 'v' }, num(d.totals?.violations?.[k] ?? sum.v[k] ?? 0)), el('div', { class: 'k' }, ruleName(k)))))),
    el('div', { class: 'grid2' },
      el('section', { class: 'panel' },
        el('h2', null, t('report.trend')),
        days.length ? el('div', { testid: 'trend' }, dayChart(days, { width: 640, height: 230, title: t('report.trend'), label: t('report.total'), subLabel: t('report.trips') }),
          el('div', { class: 'map-key' },
            el('span', null, el('i', { class: 'sw sq', style: { background: '#d55e00' } }), t('report.total')),
            el('span', null, el('i', { class: 'sw ln', style: { background: '#0072b2' } }), t('report.trips'))))
          : el('div', { class: 'muted' }, t('report.none'))),
      el('section', { class: 'panel' },
        el('h2', null, t('report.outcomes')),
        el('table', { class: 'tbl', testid: 'outcomes' }, el('tbody', null,
          ['warned', 'fined', 'permit_suspended', 'false_alarm'].map((o) => el('tr', null, el('th', { scope: 'row' }, tr('out', o)), cell(outcomes[o]))))))),
    el('section', { class: 'panel' },
      el('h2', null, `${t('report.title')} · ${d.from || from} — ${d.to || to}`),
      rows.length ? el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'report-table' },
        el('thead', null, el('tr', null,
          el('th', null, t('report.plate')), showCo ? el('th', null, t('report.company')) : null,
          el('th', { class: 'num' }, t('report.trips')),
          rules.map((k) => el('th', { class: 'num' }, ruleName(k))),
          el('th', { class: 'num' }, t('report.total')), el('th', { class: 'num' }, t('report.uncovered')), el('th', { class: 'num' }, t('report.per100')))),
        el('tbody', null, rows.map((r) => el('tr', { testid: 'report-row', dataset: { plate: r.plate, company: r.company || '' } },
          el('td', null, el('a', { href: '/console/truck/' + encodeURIComponent(r.plate), class: 'plate' }, r.plate)),
          showCo ? el('td', null, companyName(r.company)) : null,
          cell(r.trips),
          rules.map((k) => cell(r.violations?.[k])),
          el('td', { class: 'num' }, el('b', null, num(r.total))), cell(r.uncovered_min, 0), cell(r.per_100_trips, 1)))),
        el('tfoot', null, el('tr', null,
          el('td', null, t('report.totals')), showCo ? el('td', null, '') : null,
          el('td', { class: 'num' }, num(sum.trips)), rules.map((k) => el('td', { class: 'num' }, num(sum.v[k]))),
          el('td', { class: 'num' }, num(sum.total)), el('td', { class: 'num' }, num(sum.uncovered_min, 0)),
          el('td', { class: 'num' }, num(sum.trips ? (sum.total * 100) / sum.trips : 0, 1))))))
        : el('div', { class: 'empty', testid: 'report-empty' }, t('report.none'))));
}

let companies = new Map();
function companyName(id) { return companies.get(id) || id || ''; }

async function main() {
  me = await initPage('report');
  if (!me) return;
  const city = await getCity().catch(() => ({}));
  companies = new Map((city.companies || []).map((c) => [c.id, c.name]));
  const q = new URLSearchParams(location.search);
  const today = ymd(Date.now());
  const weekAgo = ymd(Date.now() - 6 * 86400000);
  const isCo = me.role === 'company';
  const coSel = el('select', { id: 'company', testid: 'company-select' },
    el('option', { value: '' }, t('report.all')),
    (city.companies || []).map((c) => el('option', { value: c.id, selected: q.get('company') === c.id }, c.name)));
  clear($('#main'),
    el('section', { class: 'panel' },
      el('h1', null, t('report.title')),
      el('form', { class: 'filters', id: 'filters' },
        el('div', { class: 'field' }, el('label', { for: 'from' }, t('report.from')), el('input', { id: 'from', type: 'date', testid: 'from', value: q.get('from') || weekAgo, max: today })),
        el('div', { class: 'field' }, el('label', { for: 'to' }, t('report.to')), el('input', { id: 'to', type: 'date', testid: 'to', value: q.get('to') || today, max: today })),
        el('div', { class: 'field' }, el('label', { for: 'company' }, t('report.company')),
          isCo ? el('div', { class: 'badge tstate', testid: 'company-fixed', style: { minHeight: '48px', fontSize: '1rem' } }, me.company_name || companyName(me.company) || me.company) : coSel),
        el('button', { class: 'btn primary', type: 'submit', testid: 'report-run' }, t('report.run')),
        el('a', { class: 'btn', id: 'csv', testid: 'csv-link', href: '#', download: '' }, '⤓ ' + t('report.csv')))),
    el('div', { id: 'out' }));
  $('#filters').addEventListener('submit', (e) => { e.preventDefault(); run(); });
  for (const id of ['from', 'to']) $('#' + id).addEventListener('change', run);
  if (!isCo) coSel.addEventListener('change', run);
  await run();
}

main().catch((e) => console.warn(e));
