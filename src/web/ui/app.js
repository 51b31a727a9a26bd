// The background-migrations page: loads /api/background-migrations every few seconds and
// updates the table in place (an open args editor or a focused button survives a refresh).
// Every value from the server is rendered with textContent or attributes, never as HTML.
// The admin key lives in sessionStorage (this tab only) and is sent as a bearer token.
'use strict';

(() => {
  const REFRESH_MS = 3000;
  const KEY_STORAGE = 'bgmigrate.adminKey';
  const API = '/api/background-migrations';
  const STATUSES = ['pending', 'running', 'throttled', 'waiting', 'paused', 'finished', 'failed',
                    'blocked', 'skipped', 'cancelled'];
  // Also listed, without a count box: gated (a gate variable not set) and unknown (not ours).
  const COLUMNS = ['Migration', 'Status', 'Progress', 'Timing', 'Args & state', 'Reason',
                   'Actions'];

  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat();
  const timeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const eventTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });

  // UI state that must survive a refresh, by migration name.
  const rows = new Map();       // name -> {tr, cells, detailTr, editTr, chunksTr, data}
  const expanded = new Set();   // names whose events are shown
  const busy = new Set();       // names with an action in flight
  let lastList = null;
  let refreshTimer = null;

  // ---- small DOM helpers (text only) --------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Replaces a cell's contents only when what it shows changed, so focus and selection inside
  // unchanged cells survive a refresh.
  function fill(cell, signature, build) {
    const sig = JSON.stringify(signature);
    if (cell.dataset.sig === sig) return;
    cell.dataset.sig = sig;
    cell.replaceChildren(el('div', { class: 'cell' }, ...[].concat(build()).filter(Boolean)));
  }

  const dash = () => el('span', { class: 'muted', text: '—' });

  function fmtNumber(n) { return n === null || n === undefined ? '—' : numberFormat.format(n); }

  function fmtTime(iso, format) {
    if (!iso) return null;
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return el('span', { text: iso });
    return el('time', { datetime: iso, title: iso, text: (format || timeFormat).format(d) });
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
    let s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s}s`;
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    return `${m}m ${s}s`;
  }

  function compactJson(value, max) {
    let text = JSON.stringify(value);
    if (text === undefined) text = 'null';
    return max && text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  // A migration name that may wrap after its underscores (names are long).
  function breakableName(name) {
    const span = el('span', { class: 'name', 'data-testid': 'migration-name' });
    name.split(/(?<=_)/).forEach((part, i) => {
      if (i > 0) span.append(el('wbr'));
      span.append(part);
    });
    return span;
  }

  // A flat JSON object as "key: value" lines (args, the cursor); null when empty.
  function keyValues(obj, testid) {
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      return el('code', { 'data-testid': testid, text: compactJson(obj, 120) });
    }
    if (Object.keys(obj).length === 0) return null;
    const list = el('ul', { class: 'kv-list', 'data-testid': testid, title: JSON.stringify(obj) });
    for (const [k, v] of Object.entries(obj)) {
      list.append(el('li', {}, el('span', { class: 'k', text: k }), ': ',
                     el('span', { class: 'v', text: typeof v === 'string' ? v : compactJson(v, 80) })));
    }
    return list;
  }

  function toast(message, kind) {
    const node = el('div', { class: `toast toast-${kind || 'info'}`, role: kind === 'error' ? 'alert' : 'status',
                             'data-testid': 'toast' }, message);
    $('toasts').append(node);
    setTimeout(() => node.remove(), kind === 'error' ? 9000 : 4500);
  }

  // ---- admin key ---------------------------------------------------------------------------

  const storedKey = () => sessionStorage.getItem(KEY_STORAGE) || '';
  let keyWaiter = null;  // resolves the promise of askForKey()

  function updateKeyButton() {
    const button = $('key-button');
    button.textContent = storedKey() ? 'Admin key set' : 'Set admin key';
    button.classList.toggle('key-set', Boolean(storedKey()));
  }

  // Opens the dialog; resolves to the key, or '' when cancelled.
  function askForKey(message) {
    const dialog = $('key-dialog');
    $('key-input').value = '';
    $('key-error').hidden = !message;
    $('key-error').textContent = message || '';
    $('key-forget').hidden = !storedKey();
    if (!dialog.open) dialog.showModal();
    $('key-input').focus();
    return new Promise((resolve) => {
      if (keyWaiter) keyWaiter('');
      keyWaiter = resolve;
    });
  }

  function closeKeyDialog(key) {
    $('key-dialog').close();
    if (keyWaiter) { const w = keyWaiter; keyWaiter = null; w(key); }
  }

  async function ensureKey() {
    return storedKey() || askForKey('');
  }

  function setupKeyDialog() {
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('key-input').value.trim();
      if (!key) {
        $('key-error').hidden = false;
        $('key-error').textContent = 'Enter the key (the server\'s ADMIN_API_KEY).';
        return;
      }
      sessionStorage.setItem(KEY_STORAGE, key);
      updateKeyButton();
      closeKeyDialog(key);
    });
    $('key-cancel').addEventListener('click', () => closeKeyDialog(''));
    $('key-dialog').addEventListener('cancel', () => closeKeyDialog(''));
    $('key-forget').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORAGE);
      updateKeyButton();
      closeKeyDialog('');
      toast('The admin key was forgotten for this tab.');
    });
    $('key-button').addEventListener('click', () => askForKey(''));
    updateKeyButton();
  }

  // ---- API calls ---------------------------------------------------------------------------

  async function readJson(response) {
    try { return await response.json(); } catch { return {}; }
  }

  // A change request with the admin key. Resolves to {ok, status, data}; asks for the key
  // again when the server refuses it.
  async function change(method, path, body) {
    let key = await ensureKey();
    for (let attempt = 0; key && attempt < 3; attempt++) {
      const response = await fetch(path, {
        method,
        cache: 'no-store',
        headers: { 'Authorization': `Bearer ${key}`, 'Content-Type': 'application/json' },
        body,
      });
      const data = await readJson(response);
      if (response.status !== 401) return { ok: response.ok, status: response.status, data };
      sessionStorage.removeItem(KEY_STORAGE);
      updateKeyButton();
      key = await askForKey('The server did not accept that key. Check ADMIN_API_KEY.');
    }
    return { ok: false, status: 0, data: { error: 'cancelled', detail: 'No admin key given.' } };
  }

  const errorText = (data) => [data.error, data.detail].filter(Boolean).join(': ') ||
                              'The request failed.';

  async function runAction(name, action, options) {
    if (busy.has(name)) return;
    if (options && options.confirm && !window.confirm(options.confirm)) return;
    busy.add(name);
    render();
    try {
      const path = `${API}/${encodeURIComponent(name)}/${action}`;
      const result = await change('POST', path, options && options.body);
      if (result.ok) toast(result.data.message || `${action} done`, 'success');
      else if (result.status) toast(errorText(result.data), 'error');
    } catch (error) {
      toast(`Could not reach the server: ${error.message}`, 'error');
    } finally {
      busy.delete(name);
      await refresh();
    }
  }

  async function saveArgs(name) {
    const entry = rows.get(name);
    const textarea = entry.editTr.querySelector('textarea');
    const errorNode = entry.editTr.querySelector('.args-error');
    const saveButton = entry.editTr.querySelector('[data-testid="args-save"]');
    errorNode.hidden = true;
    saveButton.disabled = true;
    try {
      const result = await change('PUT', `${API}/${encodeURIComponent(name)}/args`,
                                  textarea.value);
      if (result.ok) {
        closeEditor(name);
        toast(result.data.message || 'Args saved', 'success');
        await refresh();
      } else if (result.status) {
        errorNode.textContent = result.data.detail || errorText(result.data);
        errorNode.hidden = false;
        textarea.setAttribute('aria-invalid', 'true');
        textarea.focus();
      }
    } catch (error) {
      errorNode.textContent = `Could not reach the server: ${error.message}`;
      errorNode.hidden = false;
    } finally {
      saveButton.disabled = false;
    }
  }

  // ---- args editor -------------------------------------------------------------------------

  function openEditor(name) {
    const entry = rows.get(name);
    if (!entry || entry.editTr) {
      if (entry && entry.editTr) entry.editTr.querySelector('textarea').focus();
      return;
    }
    const id = `args-${entry.index}`;
    const textarea = el('textarea', {
      id, rows: 5, spellcheck: 'false', 'data-testid': 'args-input',
      'aria-describedby': `${id}-hint ${id}-error`,
    });
    textarea.value = JSON.stringify(entry.data.args || {}, null, 2);
    const form = el('form', { class: 'args-form', 'data-testid': 'args-form' },
      el('label', { for: id, text: `Args of ${name} (a JSON object)` }),
      textarea,
      el('p', { id: `${id}-hint`, class: 'muted small' },
        'Checked by the migration before it is saved; takes effect when the migration next ' +
        'starts (retry or resume it). Example: ', el('code', { text: '{"batchSize": 2500}' })),
      el('p', { id: `${id}-error`, class: 'error-text args-error', role: 'alert',
                'data-testid': 'args-error', hidden: true }),
      el('div', { class: 'form-actions' },
        el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'args-save',
                       text: 'Save args' }),
        el('button', { type: 'button', class: 'btn', 'data-testid': 'args-cancel',
                       text: 'Cancel', onclick: () => closeEditor(name) })));
    form.addEventListener('submit', (event) => { event.preventDefault(); saveArgs(name); });
    textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closeEditor(name);
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) saveArgs(name);
    });
    entry.editTr = el('tr', { class: 'edit-row', 'data-edit-for': name },
                      el('td', { colspan: COLUMNS.length }, form));
    placeRows();
    textarea.focus();
  }

  function closeEditor(name) {
    const entry = rows.get(name);
    if (!entry || !entry.editTr) return;
    entry.editTr.remove();
    entry.editTr = null;
    const button = entry.tr.querySelector('[data-testid="action-edit-args"]');
    if (button) button.focus();
  }

  // ---- events (expanded row) ---------------------------------------------------------------

  function eventDetail(detail) {
    if (!detail || typeof detail !== 'object') return compactJson(detail);
    const parts = Object.entries(detail).map(([k, v]) =>
      `${k}: ${typeof v === 'string' ? v : compactJson(v, 120)}`);
    return parts.length ? parts.join(' · ') : '';
  }

  // ---- throughput chart (expanded row) -----------------------------------------------------

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  // Periods between a start and an end event (throttled -> throttle_ended, the first waiting
  // -> recovered, or any run event after it), in time order; an open one ends now.
  function periods(chronological, startKind, endKinds, now) {
    const out = [];
    let start = null;
    for (const e of chronological) {
      const t = Date.parse(e.at);
      if (e.kind === startKind && start === null) start = { t, detail: e.detail };
      else if (endKinds.includes(e.kind) && start !== null) {
        out.push({ from: start.t, to: t, detail: start.detail });
        start = null;
      }
    }
    if (start !== null) out.push({ from: start.t, to: now, detail: start.detail, open: true });
    return out;
  }

  // Rows per second of each batch over time, with the throttled and waiting periods shaded on
  // the same axis. `events`: newest first.
  function throughputChart(name, events) {
    const chronological = events.slice().reverse();
    const points = chronological
      .filter((e) => e.kind === 'batch' && e.detail && Number(e.detail.ms) > 0)
      .map((e) => ({ t: Date.parse(e.at), v: Number(e.detail.rows) * 1000 / Number(e.detail.ms),
                     rows: Number(e.detail.rows), ms: Number(e.detail.ms) }));
    const now = Date.now();
    const throttled = periods(chronological, 'throttled', ['throttle_ended'], now);
    const waiting = periods(chronological, 'waiting', ['recovered', 'acquired', 'released',
                                                      'failed', 'finished'], now);
    if (!points.length && !throttled.length && !waiting.length) {
      return el('p', { class: 'muted', 'data-testid': 'throughput-empty',
                       text: 'No batches yet: the throughput chart appears with the first one.' });
    }
    const W = 640, H = 140, left = 64, right = 8, top = 10, bottom = 22;
    const times = points.map((p) => p.t)
      .concat(throttled.flatMap((p) => [p.from, p.to]), waiting.flatMap((p) => [p.from, p.to]));
    const t0 = Math.min(...times);
    const t1 = Math.max(t0 + 1000, ...times);
    const vMax = Math.max(1, ...points.map((p) => p.v)) * 1.1;
    const x = (t) => left + (W - left - right) * (t - t0) / (t1 - t0);
    const y = (v) => top + (H - top - bottom) * (1 - v / vMax);
    const chart = svg('svg', {
      class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'throughput-chart',
      'data-points': points.length, 'data-throttled-periods': throttled.length,
      'data-waiting-periods': waiting.length,
      'aria-label': `Throughput of ${name}: ${points.length} batches` +
        (points.length ? `, the last at ${numberFormat.format(Math.round(points[points.length - 1].v))} rows/s` : '') +
        (throttled.length ? `; throttled ${throttled.length} times` : '') +
        (waiting.length ? `; waited for a database ${waiting.length} times` : ''),
    });
    const shade = (p, cls, label) => chart.append(svg('rect', {
      class: cls, x: x(p.from), y: top, width: Math.max(2, x(p.to) - x(p.from)),
      height: H - top - bottom, 'data-testid': cls,
    }, svg('title', { text: label })));
    for (const p of throttled) {
      const what = p.detail && p.detail.what ? `: ${p.detail.what}` : '';
      shade(p, 'period-throttled', `throttled${what}${p.open ? ' (still)' : ''}`);
    }
    for (const p of waiting) {
      const why = p.detail && p.detail.reason ? `: ${p.detail.reason}` : '';
      shade(p, 'period-waiting', `waiting${why}${p.open ? ' (still)' : ''}`);
    }
    chart.append(
      svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }),
      svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }),
      svg('text', { class: 'axis-label', x: left - 6, y: top + 8, 'text-anchor': 'end',
                    text: `${numberFormat.format(Math.round(vMax))}` }),
      svg('text', { class: 'axis-label', x: left - 6, y: H - bottom, 'text-anchor': 'end',
                    text: '0' }),
      svg('text', { class: 'axis-label', x: 4, y: (H - bottom + top) / 2, text: 'rows/s' }),
      svg('text', { class: 'axis-label', x: left, y: H - 6,
                    text: new Date(t0).toLocaleTimeString() }),
      svg('text', { class: 'axis-label', x: W - right, y: H - 6, 'text-anchor': 'end',
                    text: new Date(t1).toLocaleTimeString() }));
    if (points.length > 1) {
      chart.append(svg('polyline', {
        class: 'rate-line', points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '),
      }));
    }
    for (const p of points) {
      chart.append(svg('circle', { class: 'rate-point', cx: x(p.t), cy: y(p.v), r: 2.5,
                                   'data-testid': 'rate-point' },
        svg('title', { text: `${new Date(p.t).toLocaleTimeString()}: ` +
          `${numberFormat.format(Math.round(p.v))} rows/s (${numberFormat.format(p.rows)} rows ` +
          `in ${numberFormat.format(p.ms)} ms)` })));
    }
    return el('figure', { class: 'chart-figure' }, chart,
              el('figcaption', { class: 'muted small' },
                 'Rows per second of each batch; shaded: ',
                 el('span', { class: 'legend legend-throttled', text: 'throttled' }), ', ',
                 el('span', { class: 'legend legend-waiting', text: 'waiting for a database' })));
  }

  function renderEvents(name, events, history) {
    const entry = rows.get(name);
    if (!entry || !entry.detailTr) return;
    const cell = entry.detailTr.firstChild;
    const chart = throughputChart(name, history || []);
    if (!events.length) {
      cell.replaceChildren(chart, el('p', { class: 'muted', text: 'No events recorded yet.' }));
      return;
    }
    const body = el('tbody');
    for (const e of events) {
      body.append(el('tr', { 'data-testid': 'event-row' },
        el('td', {}, fmtTime(e.at, eventTimeFormat) || dash()),
        el('td', {}, el('span', { class: `event-kind kind-${e.kind}`, text: e.kind })),
        el('td', { class: 'mono small' }, e.worker_id || dash()),
        el('td', { class: 'mono small event-detail' }, eventDetail(e.detail))));
    }
    cell.replaceChildren(chart, el('table', { class: 'events', 'data-testid': 'events-table' },
      el('caption', {}, 'Recent events, newest first',
         el('span', { class: 'sr-only', text: ` (${name})` })),
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col', text: 'Time' }), el('th', { scope: 'col', text: 'Event' }),
        el('th', { scope: 'col', text: 'Worker' }), el('th', { scope: 'col', text: 'Detail' }))),
      body));
  }

  const CHART_KINDS = 'batch,throttled,throttle_ended,waiting,recovered,acquired,released,' +
                      'failed,finished';
  async function loadEvents(name) {
    try {
      const [one, history] = await Promise.all([
        fetch(`${API}/${encodeURIComponent(name)}`, { cache: 'no-store' }),
        fetch(`/api/events?migration=${encodeURIComponent(name)}&kind=${CHART_KINDS}&limit=500`,
              { cache: 'no-store' }),
      ]);
      const data = await readJson(one);
      const past = await readJson(history);
      if (one.ok) renderEvents(name, data.events || [], history.ok ? past.events || [] : []);
    } catch { /* the next refresh tries again */ }
  }

  // ---- all events (the events section) ----------------------------------------------------

  const eventsView = { before: null, loaded: [] };
  function eventsQuery(before) {
    const q = new URLSearchParams();
    if ($('events-migration').value) q.set('migration', $('events-migration').value);
    if ($('events-kind').value) q.set('kind', $('events-kind').value);
    if (before) q.set('before', before);
    q.set('limit', '50');
    return `/api/events?${q}`;
  }
  async function loadAllEvents(more) {
    try {
      const response = await fetch(eventsQuery(more ? eventsView.before : null),
                                   { cache: 'no-store' });
      const data = await readJson(response);
      if (!response.ok) {
        $('events-error').textContent = errorText(data);
        $('events-error').hidden = false;
        return;
      }
      $('events-error').hidden = true;
      eventsView.loaded = more ? eventsView.loaded.concat(data.events) : data.events;
      eventsView.before = data.next_before;
      const body = $('all-events-body');
      body.replaceChildren(...eventsView.loaded.map((e) => el('tr', { 'data-testid': 'all-event-row' },
        el('td', {}, fmtTime(e.at, eventTimeFormat) || dash()),
        el('td', { class: 'mono small' }, e.migration_name),
        el('td', {}, el('span', { class: `event-kind kind-${e.kind}`, text: e.kind })),
        el('td', { class: 'mono small' }, e.worker_id || dash()),
        el('td', { class: 'mono small event-detail' }, eventDetail(e.detail)))));
      $('events-empty').hidden = eventsView.loaded.length > 0;
      $('events-more').hidden = !eventsView.before;
    } catch { /* the next refresh tries again */ }
  }
  function fillEventFilters(list) {
    const select = $('events-migration');
    const names = list.migrations.map((m) => m.name);
    const have = Array.from(select.options).slice(1).map((o) => o.value);
    if (have.join('\n') === names.join('\n')) return;
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '', text: 'All migrations' }),
                           ...names.map((n) => el('option', { value: n, text: n })));
    select.value = names.includes(chosen) ? chosen : '';
  }

  function toggleExpanded(name) {
    const entry = rows.get(name);
    if (expanded.has(name)) {
      expanded.delete(name);
      if (entry.detailTr) entry.detailTr.remove();
      entry.detailTr = null;
    } else {
      expanded.add(name);
      entry.detailTr = el('tr', { class: 'detail-row', id: `events-${entry.index}`,
                                  'data-events-for': name },
                          el('td', { colspan: COLUMNS.length },
                             el('p', { class: 'muted', text: 'Loading events…' })));
      loadEvents(name);
    }
    const toggle = entry.tr.querySelector('.toggle');
    toggle.setAttribute('aria-expanded', String(expanded.has(name)));
    placeRows();
  }


  // ---- chunks (a copy split into key ranges) -------------------------------------------------

  const CHUNK_STATES = ['done', 'running', 'failed', 'pending'];

  function chunkText(c) {
    const parts = [`chunks ${fmtNumber(c.done)}/${fmtNumber(c.total)} done`];
    if (c.running) parts.push(`${fmtNumber(c.running)} running`);
    if (c.failed) parts.push(`${fmtNumber(c.failed)} failed`);
    if (c.pending) parts.push(`${fmtNumber(c.pending)} pending`);
    return parts.join(', ');
  }

  // One bar split by status, each part as wide as its share of the chunks.
  function chunkBar(c) {
    const bar = el('div', { class: 'chunk-bar', role: 'img', 'data-testid': 'chunk-bar',
                            'aria-label': chunkText(c) });
    for (const state of CHUNK_STATES) {
      if (!c[state] || !c.total) continue;
      const part = el('span', { class: `chunk-part chunk-${state}`, 'data-state': state,
                                title: `${fmtNumber(c[state])} ${state}` });
      part.style.flexGrow = String(c[state]);  // CSSOM: the page's CSP forbids style attributes
      bar.append(part);
    }
    return el('div', { class: 'chunks-summary' }, bar,
              el('span', { class: 'small block', 'data-testid': 'chunk-summary',
                           text: chunkText(c) }));
  }

  function workerRates(workers) {
    if (!workers.length) return null;
    const list = el('ul', { class: 'worker-rates small', 'aria-label': 'Rate per worker' });
    for (const w of workers) {
      const rate = w.rate_rows_per_second === null ? '—'
                                                   : fmtNumber(Math.round(w.rate_rows_per_second));
      list.append(el('li', { 'data-testid': 'worker-rate', title: `${fmtNumber(w.rows)} rows in ` +
                             `${fmtNumber(w.batches)} batches over the last minute` },
                     el('span', { class: 'mono worker-id', text: w.worker_id }), ` ${rate} rows/s`));
    }
    return list;
  }

  function rangeText(ch) {
    if (ch.partition !== undefined) return `partition ${ch.partition}`;
    const bound = (v) => compactJson(v, 40);
    return `[${ch.lower === null ? 'start' : bound(ch.lower)}, ` +
           `${ch.upper === null ? 'end' : bound(ch.upper)})`;
  }

  // The running and failed chunks of `m` in a row under its own, while there are any.
  function updateChunksRow(entry, m) {
    const list = m.chunks && m.chunks.list ? m.chunks.list : [];
    if (!list.length) {
      if (entry.chunksTr) { entry.chunksTr.remove(); entry.chunksTr = null; }
      return;
    }
    if (!entry.chunksTr) {
      entry.chunksTr = el('tr', { class: 'chunks-row', 'data-chunks-for': m.name },
                          el('td', { colspan: COLUMNS.length }));
    }
    const cell = entry.chunksTr.firstChild;
    const sig = JSON.stringify([list, m.chunks.list_truncated]);
    if (cell.dataset.sig === sig) return;
    cell.dataset.sig = sig;
    const body = el('tbody');
    for (const ch of list) {
      body.append(el('tr', { 'data-testid': 'chunk-row', 'data-chunk': ch.chunk,
                             'data-state': ch.status },
        el('td', { class: 'num', text: ch.chunk }),
        el('td', { class: 'mono small', title: JSON.stringify([ch.lower, ch.upper]),
                   text: rangeText(ch) }),
        el('td', {}, el('span', { class: `badge badge-${ch.status === 'done' ? 'finished' : ch.status}`,
                                  text: ch.status })),
        el('td', { class: 'mono small', 'data-testid': 'chunk-worker' }, ch.worker_id || dash()),
        el('td', { class: 'num', text: fmtNumber(ch.attempts) }),
        el('td', { class: 'num', text: fmtNumber(ch.rows) }),
        el('td', { class: 'small' },
           el('span', { class: 'chunk-error', 'data-testid': 'chunk-error',
                        title: ch.last_error || '' }, ch.last_error || dash()))));
    }
    const more = m.chunks.list_truncated
      ? el('p', { class: 'muted small', text: `Only the first ${list.length} running or failed ` +
                  `chunks are shown; GET ${API}/${m.name}/chunks lists them all.` })
      : null;
    cell.replaceChildren(el('table', { class: 'chunks', 'data-testid': 'chunks-table' },
      el('caption', {}, `Chunks of ${m.name}: running and failed`),
      el('thead', {}, el('tr', {}, ...['Chunk', 'Key range', 'Status', 'Worker', 'Attempts',
                                       'Rows', 'Last error'].map((t) =>
        el('th', { scope: 'col', text: t })))),
      body), ...(more ? [more] : []));
  }

  // ---- the table ---------------------------------------------------------------------------

  function progressOf(m) {
    if (m.status === 'finished') return 100;
    if (!m.rows_total_estimate) return null;
    return Math.min(100, (100 * m.rows_processed) / m.rows_total_estimate);
  }

  function durationOf(m) {
    if (!m.started_at) return null;
    const start = Date.parse(m.started_at);
    const endIso = m.finished_at || m.failed_at || (m.status === 'paused' ? m.paused_at : null);
    const end = endIso ? Date.parse(endIso) : Date.now();
    return (end - start) / 1000;
  }

  function actionsFor(m) {
    const a = [];
    if (m.status === 'failed') {
      a.push(['retry', 'Retry', 'btn-primary', 'Run it again from its saved cursor']);
      a.push(['retry-from-start', 'Retry from start', '', 'Forget the cursor and start over']);
    }
    if (m.status === 'cancelled') {
      a.push(['retry', 'Retry', 'btn-primary', 'Run it again from its saved cursor']);
    }
    if (m.status === 'finished' || m.status === 'skipped') {
      a.push(['retry-from-start', 'Re-run from start', '', 'Run it again from the beginning']);
    }
    if (['pending', 'blocked', 'gated', 'running', 'throttled', 'waiting'].includes(m.status)) {
      a.push(['pause', 'Pause', '', 'Stop after the current batch, keeping the cursor']);
    }
    if (m.status === 'paused') a.push(['resume', 'Resume', 'btn-primary', 'Let workers continue']);
    if (['pending', 'blocked', 'gated', 'running', 'throttled', 'waiting', 'paused']
        .includes(m.status)) {
      a.push(['cancel', 'Cancel', 'btn-danger',
              'Stop it after the current batch; it runs again only when retried']);
    }
    if (['pending', 'blocked', 'gated', 'paused', 'failed', 'cancelled'].includes(m.status)) {
      a.push(['skip', 'Skip', 'btn-danger',
              'Mark it done without running it (e.g. its data was migrated another way)']);
    }
    a.push(['edit-args', 'Edit args', 'btn-ghost', 'Change the args (e.g. batchSize)']);
    return a;
  }

  function onAction(name, action) {
    if (action === 'edit-args') return openEditor(name);
    if (action === 'retry') return runAction(name, 'retry', { body: '{"fromStart": false}' });
    if (action === 'retry-from-start') {
      return runAction(name, 'retry', {
        body: '{"fromStart": true}',
        confirm: `Run ${name} again from the very beginning? Its saved cursor and row count are reset.`,
      });
    }
    if (action === 'cancel') {
      return runAction(name, 'cancel', {
        confirm: `Cancel ${name}? A running batch finishes first, then it stops and keeps its ` +
                 'cursor. It runs again only when someone retries it; migrations that need it ' +
                 'wait until then.',
      });
    }
    if (action === 'skip') {
      const reason = window.prompt(
        `Skip ${name}? It will be marked done WITHOUT copying or changing any row, and the ` +
        'migrations that need it will run as if it had finished. Say why (kept with it):');
      if (reason === null) return undefined;
      if (!reason.trim()) {
        toast('Not skipped: a skip needs a reason.', 'error');
        return undefined;
      }
      return runAction(name, 'skip', { body: JSON.stringify({ reason }) });
    }
    return runAction(name, action);
  }

  function createRow(name, index) {
    const tr = el('tr', { 'data-testid': 'migration-row', 'data-name': name });
    const cells = COLUMNS.map((label, i) =>
      el(i === 0 ? 'th' : 'td', { 'data-label': label, scope: i === 0 ? 'row' : null }));
    tr.append(...cells);
    return { tr, cells, detailTr: null, editTr: null, chunksTr: null, data: null, index };
  }

  function updateRow(entry, m) {
    entry.data = m;
    const [nameCell, statusCell, progressCell, timingCell, argsCell, reasonCell, actionsCell] =
      entry.cells;
    entry.tr.dataset.status = m.status;
    const isBusy = busy.has(m.name);

    fill(nameCell, [m.name, m.description, m.script, expanded.has(m.name)], () => {
      const toggle = el('button', {
        type: 'button', class: 'toggle', 'data-testid': 'toggle-events',
        'aria-expanded': String(expanded.has(m.name)), 'aria-controls': `events-${entry.index}`,
        title: 'Show recent events', onclick: () => toggleExpanded(m.name),
      }, el('span', { class: 'sr-only', text: `Events of ${m.name}` }));
      const text = el('div', { class: 'name-text' }, breakableName(m.name));
      if (m.description) text.append(el('span', { class: 'muted small', text: m.description }));
      if (m.script && m.script !== m.name) {
        text.append(el('span', { class: 'muted small' }, 'script ',
                       el('code', { text: m.script })));
      }
      return el('div', { class: 'name-cell' }, toggle, text);
    });

    fill(statusCell, [m.status, m.attempts, m.worker_id, m.lease_live], () => {
      const parts = [el('span', { class: `badge badge-${m.status}`, 'data-testid': 'status-badge',
                                  text: m.status })];
      if (['running', 'throttled', 'waiting'].includes(m.status) && m.worker_id) {
        parts.push(el('span', { class: 'muted small block', title: 'lease holder' },
                      'on ', el('span', { class: 'mono', text: m.worker_id })));
      }
      if (m.attempts > 0) {
        parts.push(el('span', { class: 'muted small block',
                                text: `attempt ${numberFormat.format(m.attempts)}` }));
      }
      return parts;
    });

    const pct = progressOf(m);
    const chunkSig = m.chunks ? [m.chunks.pending, m.chunks.running, m.chunks.done,
                                 m.chunks.failed, m.chunks.workers] : null;
    fill(progressCell, [pct === null ? null : pct.toFixed(1), m.rows_processed,
                        m.rows_total_estimate, m.status, m.rate_rows_per_second,
                        m.eta_seconds, chunkSig], () => {
      const rowsText = m.rows_total_estimate
        ? `${fmtNumber(m.rows_processed)} / ${fmtNumber(m.rows_total_estimate)} rows`
        : `${fmtNumber(m.rows_processed)} rows`;
      const label = pct === null ? '—' : `${pct.toFixed(pct < 10 && pct > 0 ? 1 : 0)}%`;
      const bar = el('progress', { max: 100, 'aria-label': `Progress of ${m.name}`,
                                   class: `bar bar-${m.status}` });
      if (pct !== null) bar.value = pct;
      else if (m.status !== 'running') bar.value = 0;  // indeterminate only while it runs
      const speed = el('span', { class: 'speed small' });
      if (m.rate_rows_per_second !== null) {
        speed.append(el('span', { 'data-testid': 'rate',
                                  text: `${fmtNumber(Math.round(m.rate_rows_per_second))} rows/s` }));
        if (m.eta_seconds !== null) {
          speed.append(' · ', el('span', { 'data-testid': 'eta',
                                           text: `ETA ${fmtDuration(m.eta_seconds)}` }));
        }
      }
      return el('div', { class: 'progress' },
        el('div', { class: 'progress-line' }, bar,
           el('span', { class: `pct${pct === null ? ' muted' : ''}`, 'data-testid': 'progress-pct',
                        text: label })),
        el('span', { class: 'muted small block', 'data-testid': 'progress-rows', text: rowsText }),
        speed.childNodes.length ? speed : null,
        m.chunks ? chunkBar(m.chunks) : null,
        m.chunks ? workerRates(m.chunks.workers || []) : null);
    });
    updateChunksRow(entry, m);

    const duration = durationOf(m);
    fill(timingCell, [m.started_at, m.finished_at, m.failed_at, fmtDuration(duration)], () => {
      const dl = el('dl', { class: 'timing' });
      const add = (term, value) => dl.append(el('dt', { text: term }), el('dd', {}, value));
      add('Started', fmtTime(m.started_at) || dash());
      if (m.finished_at) add('Finished', fmtTime(m.finished_at));
      else if (m.failed_at) add('Failed', fmtTime(m.failed_at));
      add('Duration', duration === null ? dash() : fmtDuration(duration));
      return dl;
    });

    fill(argsCell, [m.args, m.state], () => el('dl', { class: 'kv' },
      el('dt', { text: 'args' }),
      el('dd', {}, keyValues(m.args, 'args') ||
                   el('span', { class: 'muted', 'data-testid': 'args', text: 'defaults' })),
      el('dt', { text: 'cursor' }),
      el('dd', {}, keyValues(m.state, 'state') || dash())));

    fill(reasonCell, [m.failed_reason, m.waiting_reason, m.waiting_since, m.next_attempt_at,
                      m.blocked_by, m.blocked_by_status, m.waits_for, m.waits_for_status,
                      m.gate, m.unknown_reason, m.skipped_reason, m.cancelled_at,
                      m.throttle, m.throttled_since], () => {
      if (m.skipped_reason) {
        return el('span', { class: 'reason muted', 'data-testid': 'skipped-reason' },
                  `Skipped: ${m.skipped_reason}`);
      }
      if (m.cancelled_at) {
        return el('span', { class: 'reason', 'data-testid': 'cancelled-reason' },
                  `Cancelled ${fmtTime(m.cancelled_at)}`,
                  el('span', { class: 'muted small block',
                               text: 'retry it to continue from its cursor' }));
      }
      if (m.failed_reason) {
        return el('span', { class: 'reason', 'data-testid': 'failed-reason', text: m.failed_reason });
      }
      if (m.blocked_by) {
        return el('span', { class: 'reason reason-blocked', 'data-testid': 'blocked-reason' },
                  `Blocked by ${m.blocked_by} (${m.blocked_by_status})`,
                  el('span', { class: 'muted small block',
                               text: m.blocked_by_status === 'paused' ? 'resume it to continue'
                                                                      : 'retry it to continue' }));
      }
      if (m.gate) {
        return el('span', { class: 'reason muted', 'data-testid': 'gate' },
                  `Gated: runs once ${m.gate}=true for the workers`);
      }
      if (m.unknown_reason) {
        return el('span', { class: 'reason muted', 'data-testid': 'unknown-reason' },
                  `Not bgmigrate's: ${m.unknown_reason}`);
      }
      if (m.waits_for) {
        return el('span', { class: 'reason muted', 'data-testid': 'waits-for' },
                  `Waits for ${m.waits_for} (${m.waits_for_status})`);
      }
      if (m.throttle) {
        const t = m.throttle;
        return el('span', { class: 'reason reason-throttled', 'data-testid': 'throttle-reason' },
                  `Throttled: ${t.what} is ${numberFormat.format(t.value)}, at or above ` +
                  `${numberFormat.format(t.threshold)}`,
                  el('span', { class: 'muted small block' }, 'since ',
                     fmtTime(m.throttled_since) || dash(),
                     '; goes on by itself when the signal falls below'));
      }
      if (m.waiting_reason) {
        const when = [];
        if (m.waiting_since) when.push(`waiting since ${new Date(m.waiting_since).toLocaleTimeString()}`);
        if (m.next_attempt_at) when.push(`next try ${new Date(m.next_attempt_at).toLocaleTimeString()}`);
        return el('span', { class: 'reason reason-waiting', 'data-testid': 'waiting-reason' },
                  m.waiting_reason,
                  el('span', { class: 'muted small block', text: when.join('; ') }));
      }
      return dash();
    });

    fill(actionsCell, [m.status, isBusy], () => el('div', { class: 'actions' },
      ...actionsFor(m).map(([action, label, style, title]) => el('button', {
        type: 'button', class: `btn btn-small ${style}`, 'data-testid': `action-${action}`,
        title, disabled: isBusy, 'aria-label': `${label}: ${m.name}`,
        onclick: () => onAction(m.name, action),
      }, label))));
  }

  // Puts every row (and its open detail/editor rows) into the table in list order, moving
  // nodes only when the order changed.
  function placeRows() {
    const tbody = $('migrations-body');
    const wanted = [];
    for (const m of (lastList ? lastList.migrations : [])) {
      const entry = rows.get(m.name);
      if (!entry) continue;
      wanted.push(entry.tr);
      if (entry.chunksTr) wanted.push(entry.chunksTr);
      if (entry.editTr) wanted.push(entry.editTr);
      if (entry.detailTr) wanted.push(entry.detailTr);
    }
    const current = Array.from(tbody.children);
    const same = current.length === wanted.length && current.every((n, i) => n === wanted[i]);
    if (!same) tbody.replaceChildren(...wanted);
  }

  function renderIndicator(list) {
    const counts = (list.summary && list.summary.counts) || {};
    const parts = [];
    if (!list.enabled) parts.push('migrations disabled');
    if (counts.failed) parts.push(`${counts.failed} failed`);
    if (counts.running) parts.push(`${counts.running} running`);
    if (counts.throttled) parts.push(`${counts.throttled} throttled`);
    if (counts.waiting) parts.push(`${counts.waiting} waiting for a database`);
    if (counts.paused) parts.push(`${counts.paused} paused`);
    if (counts.cancelled) parts.push(`${counts.cancelled} cancelled`);
    if (counts.blocked) parts.push(`${counts.blocked} blocked`);
    const indicator = $('status-indicator');
    indicator.hidden = parts.length === 0;
    let tone = 'running';
    if (counts.paused || counts.waiting || counts.cancelled || counts.throttled) tone = 'paused';
    if (!list.enabled) tone = 'disabled';
    if (counts.failed) tone = 'failed';
    indicator.dataset.tone = tone;
    const text = parts.length ? `Background migrations: ${parts.join(', ')}` : '';
    $('status-indicator-text').textContent = text;
    indicator.title = text ? `${text}. Show the migrations.` : '';
  }

  function render() {
    if (!lastList) return;
    const list = lastList;
    $('loading').hidden = true;
    $('empty').hidden = list.migrations.length > 0;
    $('disabled-banner').hidden = list.enabled;
    const counts = (list.summary && list.summary.counts) || {};
    $('count-total').textContent = fmtNumber(list.migrations.length);
    for (const s of STATUSES) {
      const cell = $(`count-${s}`);
      if (cell) cell.textContent = fmtNumber(counts[s] || 0);
    }
    renderIndicator(list);

    const names = new Set(list.migrations.map((m) => m.name));
    for (const name of rows.keys()) {
      if (!names.has(name)) { rows.delete(name); expanded.delete(name); }
    }
    let index = rows.size;
    for (const m of list.migrations) {
      let entry = rows.get(m.name);
      if (!entry) { entry = createRow(m.name, index++); rows.set(m.name, entry); }
      updateRow(entry, m);
    }
    placeRows();
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    try {
      const response = await fetch(API, { cache: 'no-store' });
      const data = await readJson(response);
      if (!response.ok) throw new Error(errorText(data));
      lastList = data;
      fillEventFilters(data);
      if (!eventsView.loaded.length || eventsView.loaded.length <= 50) loadAllEvents(false);
      $('connection-error').hidden = true;
      $('last-updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
      render();
      for (const name of expanded) loadEvents(name);
    } catch (error) {
      const banner = $('connection-error');
      banner.textContent = `Could not load the migrations (${error.message}). Retrying…`;
      banner.hidden = false;
    } finally {
      refreshTimer = setTimeout(refresh, REFRESH_MS);
    }
  }

  setupKeyDialog();
  $('events-migration').addEventListener('change', () => loadAllEvents(false));
  $('events-kind').addEventListener('change', () => loadAllEvents(false));
  $('events-more').addEventListener('click', () => loadAllEvents(true));
  refresh();
})();
