// alert.js: one alert: summary, measurements, history, notifications, CAP
// links, and the actions (acknowledge, note, resolve with a note, case
// outcome). After an action the page is drawn again from the returned alert.

import {
  initPage, api, openStream, el, clear, $, t, tr, ruleName, errText, errorBox, fmtTime, fmtAgo,
  sevBadge, stateBadge, tierBadge, truckURL, evidenceURL, pathArg, subjectName, detailLabel, detailValue, isThreshold,
} from '/static/app.js';

const id = pathArg();
let me = null, alert = null, busy = false;
let flash = null; // {ok, text} shown after an action
const drafts = { ack: '', note: '', outcome: '', outcomeNote: '' };

// flat makes one object of an alert detail, whether the server nests the
// summary ({"alert": {...}, "history": [...]}) or not.
function flat(d) {
  if (!d || typeof d !== 'object') return d;
  if (d.alert && typeof d.alert === 'object' && !d.id) {
    const { alert: s, ...rest } = d;
    const out = { ...s };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null && v !== '' && !(typeof v === 'string' && /^0001-/.test(v))) out[k] = v;
    return out;
  }
  return d;
}

function historyText(h) {
  const parts = [];
  if (h.kind === 'outcome' && h.text) {
    const [o, ...rest] = String(h.text).split(/[:：]\s*/);
    parts.push(tr('out', o, h.text) + (rest.length && tr('out', o, '') ? '：' + rest.join(': ') : ''));
  } else if (h.text) parts.push(h.text);
  return parts.join(' ');
}

function render() {
  const focused = document.activeElement?.id;
  draw();
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

function draw() {
  const a = alert, main = $('#main');
  const isTruck = a.subject?.kind === 'truck';
  const resolved = a.state === 'resolved';
  document.title = `${ruleName(a.rule, a.rule_name)} · ${subjectName(a)}`;

  const summary = el('section', { class: 'panel', testid: 'summary' },
    el('dl', { class: 'kv' },
      el('dt', null, t('alert.subject')), el('dd', null,
        isTruck ? el('a', { href: truckURL(a.subject.id), class: 'plate', testid: 'alert-subject' }, subjectName(a)) : el('span', { testid: 'alert-subject' }, subjectName(a)),
        a.subject?.device ? el('span', { class: 'muted mono' }, ' ', a.subject.device) : null),
      a.subject?.company_name || a.subject?.company ? [el('dt', null, t('alert.company')), el('dd', null, a.subject.company_name || a.subject.company)] : null,
      a.subject?.district ? [el('dt', null, t('col.district')), el('dd', null, a.subject.district)] : null,
      el('dt', null, t('alert.started')), el('dd', null, `${fmtTime(a.started_at)} (${fmtAgo(a.started_at)})`),
      a.opened_at ? [el('dt', null, t('alert.opened')), el('dd', null, fmtTime(a.opened_at))] : null,
      el('dt', null, t('alert.updated')), el('dd', null, fmtTime(a.updated_at)),
      a.location && (a.location.lat || a.location.lon) ? [el('dt', null, t('alert.location')), el('dd', { class: 'mono' }, `${Number(a.location.lat).toFixed(5)}, ${Number(a.location.lon).toFixed(5)}`)] : null,
      a.acked_by ? [el('dt', null, t('alert.acked_by')), el('dd', null, a.acked_by, a.acked_at ? ` · ${fmtTime(a.acked_at)}` : '')] : null,
      a.resolved_by ? [el('dt', null, t('alert.resolved_by')), el('dd', null, a.resolved_by, a.resolved_at ? ` · ${fmtTime(a.resolved_at)}` : '')] : null,
      el('dt', null, t('col.outcome')), el('dd', { testid: 'outcome' }, a.outcome ? el('span', { class: 'badge out' }, tr('out', a.outcome)) : t('out.none'),
        a.outcome_by ? ` · ${a.outcome_by}` : '', a.outcome_at ? ` · ${fmtTime(a.outcome_at)}` : '')),
    el('div', { class: 'row', style: { marginTop: '.75rem' } },
      isTruck && me.role !== 'duty' ? el('a', { class: 'btn primary', href: evidenceURL(a.id), testid: 'evidence-link' }, t('alert.evidence') + ' →') : null,
      isTruck ? el('a', { class: 'btn', href: truckURL(a.subject.id) }, t('alert.truck')) : null));

  const det = Object.entries(a.details || {});
  const measured = det.filter(([k]) => !isThreshold(k)), limits = det.filter(([k]) => isThreshold(k));
  const rows = (list) => list.map(([k, v]) => el('tr', { dataset: { key: k } }, el('th', { scope: 'row' }, detailLabel(k)), el('td', null, detailValue(k, v))));
  const details = el('section', { class: 'panel', testid: 'details' },
    el('h2', null, t('alert.details')),
    det.length ? el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl details' },
      measured.length ? el('tbody', null, el('tr', null, el('th', { colspan: 2, class: 'group' }, t('ev.measured'))), rows(measured)) : null,
      limits.length ? el('tbody', null, el('tr', null, el('th', { colspan: 2, class: 'group' }, t('ev.threshold'))), rows(limits)) : null))
      : el('div', { class: 'muted' }, t('alert.nodetails')));

  const hist = [...(a.history || [])].sort((x, y) => new Date(x.at) - new Date(y.at));
  const history = el('section', { class: 'panel' },
    el('h2', null, t('alert.history')),
    hist.length ? el('ol', { class: 'timeline', testid: 'history' }, hist.map((h) =>
      el('li', { class: 'k-' + h.kind, testid: 'history-entry', dataset: { kind: h.kind } },
        el('div', { class: 'when' }, fmtTime(h.at)),
        el('div', { class: 'what' }, tr('h', h.kind), h.severity ? ' · ' + tr('sev', h.severity) : '', h.by ? el('span', { class: 'muted' }, ' · ', h.by) : null),
        historyText(h) ? el('div', { class: 'text' }, historyText(h)) : null)))
      : el('div', { class: 'muted', testid: 'history' }, t('alert.nohistory')));

  const notifs = a.notifications || [];
  const notifications = el('section', { class: 'panel' },
    el('h2', null, t('alert.notifications')),
    notifs.length ? el('div', { class: 'tbl-wrap' }, el('table', { class: 'tbl', testid: 'notifications' },
      el('thead', null, el('tr', null, ['n.time', 'n.recipient', 'n.via', 'n.channel', 'n.reason', 'n.state'].map((k) => el('th', null, t(k))))),
      el('tbody', null, notifs.map((n) => el('tr', null,
        el('td', null, fmtTime(n.sent_at || n.decided_at)),
        el('td', null, n.recipient?.name || n.recipient?.id || (n.channel === 'cap' ? 'CAP' : '—')),
        el('td', null, n.recipient?.via || '—'),
        el('td', null, n.channel === 'sms' ? 'SMS' : n.channel === 'cap' ? 'CAP' : n.channel || '—'),
        el('td', null, tr('h', n.reason, n.reason || '')),
        el('td', null, el('span', { class: 'badge ' + ({ sent: 'ast-resolved', failed: 'ast-firing', pending: 'ast-acknowledged' }[n.state] || 'tstate') }, tr('ns', n.state)),
          n.why ? el('div', { class: 'muted small' }, n.why) : null))))))
      : el('div', { class: 'muted' }, t('alert.nonotif')));

  const caps = a.cap || [];
  const cap = caps.length ? el('section', { class: 'panel' },
    el('h2', null, t('alert.cap')),
    el('ul', null, caps.map((c) => el('li', null,
      el('a', { href: c.url || '#', testid: 'cap-link', target: '_blank', rel: 'noopener' }, c.headline || c.identifier),
      ` · ${tr('cap', c.msg_type, c.msg_type || '')} · ${fmtTime(c.sent)}`)))) : null;

  clear(main,
    el('div', { class: 'alert-head' },
      sevBadge(a.severity),
      el('h1', { testid: 'alert-rule' }, ruleName(a.rule, a.rule_name)),
      stateBadge(a.state), tierBadge(a.tier)),
    el('div', { class: 'grid2' },
      el('div', null, summary, details),
      el('div', null, actions(a, resolved))),
    history, notifications, cap);
}

function actions(a, resolved) {
  const msg = flash ? el('div', { class: 'msg ' + (flash.ok ? 'ok' : 'err'), role: flash.ok ? 'status' : 'alert', testid: 'action-msg' }, flash.text) : el('div', { testid: 'action-msg', hidden: true });
  const ackNote = el('input', { id: 'ack-note', testid: 'ack-note', type: 'text', value: drafts.ack, placeholder: t('alert.ack.note'), 'aria-label': t('alert.ack.note'), on: { input: (e) => { drafts.ack = e.target.value; } } });
  const note = el('textarea', { id: 'note-text', testid: 'note-text', placeholder: t('alert.note.ph'), 'aria-label': t('alert.note') });
  note.value = drafts.note;
  const resolveBtn = el('button', { type: 'button', class: 'btn danger', testid: 'resolve', disabled: !drafts.note.trim(), 'aria-describedby': 'resolve-help',
    on: { click: () => (note.value.trim() ? act('resolve', { note: note.value.trim() }) : showFlash(false, t('alert.resolve.need'))) } }, '✓ ' + t('alert.resolve'));
  const noteBtn = el('button', { type: 'button', class: 'btn', testid: 'add-note', disabled: !drafts.note.trim(),
    on: { click: () => note.value.trim() && act('notes', { text: note.value.trim() }) } }, t('alert.addnote'));
  const help = el('div', { id: 'resolve-help', class: 'muted note-help', testid: 'resolve-help' }, t('alert.resolve.need'));
  note.addEventListener('input', () => {
    drafts.note = note.value;
    const empty = !note.value.trim();
    resolveBtn.disabled = empty;
    noteBtn.disabled = empty;
  });
  const sel = el('select', { id: 'outcome-select', testid: 'outcome-select', 'aria-label': t('alert.outcome') },
    el('option', { value: '' }, t('alert.outcome.pick')),
    ['warned', 'fined', 'permit_suspended', 'false_alarm'].map((o) => el('option', { value: o, selected: (drafts.outcome || a.outcome) === o }, tr('out', o))));
  sel.addEventListener('change', () => { drafts.outcome = sel.value; });
  const oNote = el('input', { id: 'outcome-note', type: 'text', testid: 'outcome-note', value: drafts.outcomeNote, placeholder: t('alert.outcome.note'), 'aria-label': t('alert.note'), on: { input: (e) => { drafts.outcomeNote = e.target.value; } } });
  return el('section', { class: 'panel actions', testid: 'actions' },
    el('h2', null, t('alert.actions')),
    msg,
    resolved ? el('div', { class: 'msg info' }, t('alert.resolved.note')) : null,
    a.state === 'firing' ? el('div', { class: 'act' },
      el('label', { for: 'ack-note' }, t('alert.ack.note')), ackNote,
      el('div', { class: 'btns' }, el('button', { type: 'button', class: 'btn primary', testid: 'ack', on: { click: () => act('ack', { note: ackNote.value.trim() }) } }, '◐ ' + t('alert.ack')))) : null,
    el('div', { class: 'act' },
      el('label', { for: 'note-text' }, t('alert.note')), note,
      resolved ? null : help,
      el('div', { class: 'btns' }, noteBtn, resolved ? null : resolveBtn)),
    el('div', { class: 'act' },
      el('label', { for: 'outcome-select' }, t('alert.outcome')),
      el('div', { class: 'row' }, sel, oNote),
      el('div', { class: 'btns' }, el('button', { type: 'button', class: 'btn', testid: 'outcome-save',
        on: { click: () => (sel.value ? act('outcome', { outcome: sel.value, note: oNote.value.trim() }) : showFlash(false, t('alert.outcome.need'))) } }, t('alert.outcome.save')))));
}

function showFlash(ok, text) {
  flash = { ok, text };
  render();
  $('[data-testid="action-msg"]')?.scrollIntoView({ block: 'nearest' });
}

async function act(what, body) {
  if (busy) return;
  busy = true;
  for (const b of document.querySelectorAll('.actions button')) b.disabled = true;
  try {
    const a = flat(await api(`alerts/${encodeURIComponent(id)}/${what}`, { body }));
    if (a && a.id) alert = a; else alert = flat(await api('alerts/' + encodeURIComponent(id)));
    if (what === 'ack') drafts.ack = '';
    if (what === 'notes' || what === 'resolve') drafts.note = '';
    if (what === 'outcome') { drafts.outcome = ''; drafts.outcomeNote = ''; }
    flash = { ok: true, text: `${t('alert.done')} (${{ ack: t('alert.ack'), notes: t('alert.addnote'), resolve: t('alert.resolve'), outcome: t('alert.outcome') }[what]})` };
  } catch (e) {
    flash = { ok: false, text: errText(e) };
    if (e.status === 409) {
      try { alert = flat(await api('alerts/' + encodeURIComponent(id))); } catch { /* keep */ }
    }
  } finally {
    busy = false;
    render();
    $('[data-testid="action-msg"]')?.scrollIntoView({ block: 'nearest' });
  }
}

async function main() {
  me = await initPage('alert', { active: 'alerts' });
  if (!me) return;
  try {
    alert = flat(await api('alerts/' + encodeURIComponent(id)));
  } catch (e) {
    clear($('#main'), el('h1', null, t('alert.title')), el('p', { class: 'mono' }, id), errorBox(e));
    return;
  }
  render();
  openStream({
    alert: async (s) => {
      if (s?.id !== id || busy) return;
      if (s.updated_at === alert.updated_at && s.state === alert.state && s.tier === alert.tier) return;
      try { alert = flat(await api('alerts/' + encodeURIComponent(id))); render(); } catch { /* keep what we have */ }
    },
  });
}

main().catch((e) => console.warn(e));
