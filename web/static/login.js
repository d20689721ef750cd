// login.js: sign-in with JSON answers (the form also works without JS:
// then the server redirects, with ?error= on failure).

import { t, lang, useLang, setLang, storedLang, applyI18n, serverMessage } from '/static/i18n.js';

const $ = (s) => document.querySelector(s);
const q = new URLSearchParams(location.search);

function safeNext(n) {
  return n && n.startsWith('/console/') && !n.startsWith('//') && !n.includes('\\') ? n : '';
}

function render() {
  useLang(storedLang() || 'zh-CN');
  applyI18n();
  document.title = `${t('login.title')} · ${t('app.short')}`;
  const other = lang() === 'en' ? 'zh-CN' : 'en';
  const b = $('#lang');
  b.textContent = t('lang.other');
  b.lang = other;
  b.onclick = () => { setLang(other); render(); if (!$('#error').hidden) $('#error').textContent = lastError(); };
}

let lastError = () => '';

function showError(fn) {
  lastError = fn;
  const e = $('#error');
  e.textContent = fn();
  e.hidden = false;
}

async function submit(ev) {
  ev.preventDefault();
  const user = $('#username').value.trim(), pass = $('#password').value;
  if (!user || !pass) { showError(() => t('login.missing')); (user ? $('#password') : $('#username')).focus(); return; }
  const btn = $('#submit');
  btn.disabled = true;
  btn.textContent = t('login.busy');
  const body = new URLSearchParams({ username: user, password: pass, next: $('#next').value });
  try {
    const r = await fetch('/login', { method: 'POST', body, credentials: 'same-origin', headers: { Accept: 'application/json' } });
    let d = {};
    try { d = await r.json(); } catch { /* not JSON */ }
    if (r.ok && d.ok) {
      location.href = safeNext($('#next').value) || d.home || '/';
      return;
    }
    if (r.status === 429) {
      const m = Math.max(1, Math.ceil((d.retry_after_s || Number(r.headers.get('Retry-After')) || 900) / 60));
      showError(() => t('login.locked', { m }));
      $('#error').dataset.kind = 'locked';
    } else if (r.status === 401) {
      showError(() => t('login.wrong'));
      $('#error').dataset.kind = 'wrong';
      $('#password').value = '';
      $('#password').focus();
    } else if (r.status === 403) {
      const msg = d.error;
      showError(() => `${t('login.forbidden')}${msg ? ' (' + serverMessage(msg) + ')' : ''}`);
      $('#error').dataset.kind = 'forbidden';
    } else {
      const msg = d.error;
      showError(() => `${t('login.failed')}${msg ? ' (' + serverMessage(msg) + ')' : ''}`);
      $('#error').dataset.kind = 'failed';
    }
  } catch {
    showError(() => t('login.network'));
    $('#error').dataset.kind = 'network';
  } finally {
    btn.disabled = false;
    btn.textContent = t('login.submit');
  }
}

$('#next').value = safeNext(q.get('next') || '');
render();
if (q.get('error')) {
  const msg = q.get('error');
  showError(() => serverMessage(msg));
}
$('#form').addEventListener('submit', submit);
