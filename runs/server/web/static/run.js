// run.js: one run's page: header with state and a stop button, its curves, summary, config, files (plots
// shown inline) and console output, refreshed while the run is running.
'use strict';

(() => {
  const { api, el, fmtNum, fmtDuration, fmtAgo, flatten, badge, runtime, qs, ema, section, isMetric } = mami;
  const body = document.body;
  const entity = body.dataset.entity, project = body.dataset.project, id = body.dataset.run;
  const base = '/api/v1/runs/' + [entity, project, id].map(encodeURIComponent).join('/');
  const $ = (x) => document.getElementById(x);
  const tooltip = $('tooltip');
  const S = { run: null, xaxis: '_step', smooth: 0, logy: false, charts: new Map(), lines: -1, logFrom: 0, zoom: null };
  const color = '#2f6fed';

  function renderHead(run) {
    $('run-name').textContent = run.name;
    $('crumb-run').textContent = run.name;
    document.title = run.name + ' · mami';
    $('run-state').replaceWith(Object.assign(badge(run.state), { id: 'run-state' }));
    const item = (k, v) => v === undefined || v === null || v === '' ? null : el('span', {}, k + ' ', el('b', { text: String(v) }));
    $('run-meta').replaceChildren(...[
      item('id', run.id), item('group', run.group), item('host', run.host), item('created', fmtAgo(run.created_at)),
      item('runtime', fmtDuration(runtime(run))), item('steps', run.history_lines),
      run.exit_code !== null && run.exit_code !== undefined ? item('exit code', run.exit_code) : null,
      run.sweep ? item('sweep', run.sweep) : null, run.tags.length ? item('tags', run.tags.join(', ')) : null,
    ].filter(Boolean));
    const stop = $('stop');
    stop.hidden = run.state !== 'running';
    stop.disabled = run.stop_requested;
    stop.textContent = run.stop_requested ? 'Stop requested…' : 'Stop run';
  }

  function kvRows(obj) {
    const flat = flatten(obj);
    const keys = Object.keys(flat).filter((k) => !k.startsWith('_')).sort();
    if (!keys.length) return [el('tr', {}, el('td', { class: 'muted', text: 'nothing recorded' }))];
    return keys.map((k) => el('tr', {}, el('td', { text: k }), el('td', { text: fmtNum(flat[k]) })));
  }

  function renderOverview(run) {
    $('summary').replaceChildren(...kvRows(run.summary));
    $('config').replaceChildren(...kvRows(run.config));
  }

  async function renderFiles() {
    const files = await api(base + '/files');
    const url = (f) => base + '/files/' + f.name.split('/').map(encodeURIComponent).join('/');
    const images = files.filter((f) => f.uploaded && /\.(png|jpe?g|gif|svg|webp)$/i.test(f.name) && !(/\.svg$/i.test(f.name) && files.some((g) => g.name === f.name.replace(/\.svg$/i, '.png'))));
    $('images').replaceChildren(...images.map((f) => el('figure', {}, el('a', { href: url(f), target: '_blank', rel: 'noopener' }, el('img', { src: url(f), alt: f.name, loading: 'lazy' })), el('figcaption', { text: f.name }))));
    $('files').replaceChildren(el('tr', {}, el('th', { text: 'File' }), el('th', { class: 'num', text: 'Size' })),
      ...(files.length ? files.map((f) => el('tr', {}, el('td', {}, f.uploaded ? el('a', { href: url(f), target: '_blank', rel: 'noopener', text: f.name }) : f.name),
        el('td', { class: 'num muted', text: f.size ? (f.size > 1e6 ? (f.size / 1e6).toFixed(1) + ' MB' : (f.size / 1e3).toFixed(1) + ' kB') : '' })))
        : [el('tr', {}, el('td', { class: 'muted', colspan: '2', text: 'no files uploaded' }))]));
  }

  async function renderLogs(reset) {
    if (reset) { S.logFrom = 0; $('console').replaceChildren(); }
    const lines = await api(base + '/logs?' + qs({ from: S.logFrom }));
    const pre = $('console');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    for (const l of lines) {
      const m = l.text.match(/^(\d{4}-\d\d-\d\dT[\d:.]+Z?)\s?(.*)$/);
      const text = (m ? m[2] : l.text).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      const node = el('div', { 'data-line': String(l.line) }, m ? el('span', { class: 'ts', text: m[1].slice(11, 19) + ' ' }) : null, text);
      const old = pre.querySelector('[data-line="' + l.line + '"]');
      if (old) old.replaceWith(node); else pre.append(node);
      S.logFrom = Math.max(S.logFrom, l.line); // the last line may still be overwritten: fetch it again
    }
    if (!pre.childNodes.length) pre.textContent = 'No console output recorded.';
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function renderCharts(run) {
    const keys = (run.keys || []).filter(isMetric).sort((a, b) => {
      const order = (k) => ({ train: 0, val: 1, test: 2 }[section(k)] ?? 3);
      return order(a) - order(b) || a.localeCompare(b);
    });
    $('charts-empty').hidden = keys.length > 0;
    const sections = new Map();
    for (const k of keys) { const s = section(k); if (!sections.has(s)) sections.set(s, []); sections.get(s).push(k); }
    const nodes = [];
    for (const [name, ks] of sections) {
      nodes.push(el('div', { class: 'section-title', text: name + ' · ' + ks.length }));
      nodes.push(el('div', { class: 'grid' }, ks.map((k) => panelFor(k).node)));
    }
    $('panels').replaceChildren(...nodes);
    const xIsTime = S.xaxis === '_runtime', xLabel = { _step: 'step', epoch: 'epoch', _runtime: 'time' }[S.xaxis];
    for (const k of keys) {
      const p = panelFor(k);
      const ks = S.xaxis === '_step' ? k : k + ',' + S.xaxis;
      const rows = await api(base + '/history?' + qs({ keys: ks, samples: 1000 }));
      const x = [], y = [];
      for (const r of rows) if (typeof r[S.xaxis] === 'number' && typeof r[k] === 'number') { x.push(r[S.xaxis]); y.push(r[k]); }
      const sw = x.length >= 30 ? S.smooth : 0; // sparse (per-epoch) curves are drawn unsmoothed
      const series = x.length ? [{ label: run.name, color, x, y: ema(y, sw), raw: sw > 0 ? { x, y } : null }] : [];
      p.chart.zoom = S.zoom;
      p.chart.setData(series, { xIsTime, xLabel, logY: S.logy });
    }
  }

  function panelFor(key) {
    let p = S.charts.get(key);
    if (p) return p;
    const canvas = el('canvas', { 'data-key': key, role: 'img', 'aria-label': key + ' chart' });
    const node = el('div', { class: 'panel', 'data-key': key }, el('div', { class: 'panel-title' }, el('span', { text: key })), canvas);
    const chart = new LineChart(canvas, { tooltip, onZoom: (r) => { S.zoom = r; for (const q of S.charts.values()) if (q.chart !== chart) q.chart.setZoom(r); } });
    p = { node, chart };
    S.charts.set(key, p);
    return p;
  }

  async function refresh(force) {
    const run = await api(base);
    const changed = force || !S.run || run.history_lines !== S.run.history_lines || run.state !== S.run.state;
    S.run = run;
    renderHead(run);
    renderOverview(run);
    if (changed) await renderCharts(run);
    if (changed || run.state === 'running') await renderLogs(false);
    if (changed) await renderFiles();
    $('live').hidden = run.state !== 'running';
    return run;
  }

  function wire() {
    for (const t of document.querySelectorAll('.tab')) {
      t.addEventListener('click', (e) => {
        e.preventDefault();
        for (const u of document.querySelectorAll('.tab')) u.classList.toggle('active', u === t);
        for (const b of document.querySelectorAll('.tab-body')) b.hidden = b.id !== 'tab-' + t.dataset.tab;
        history.replaceState(null, '', '#' + t.dataset.tab);
        if (t.dataset.tab === 'charts') for (const p of S.charts.values()) p.chart.draw();
      });
    }
    const fromHash = () => { const t = document.querySelector('.tab[data-tab="' + location.hash.slice(1) + '"]'); if (t) t.click(); };
    fromHash();
    window.addEventListener('hashchange', fromHash);
    $('xaxis').addEventListener('change', (e) => { S.xaxis = e.target.value; S.zoom = null; renderCharts(S.run); });
    $('smooth').addEventListener('input', (e) => { S.smooth = +e.target.value; $('smooth-val').textContent = S.smooth.toFixed(2); renderCharts(S.run); });
    $('logy').addEventListener('change', (e) => { S.logy = e.target.checked; renderCharts(S.run); });
    $('stop').addEventListener('click', async () => {
      if (!confirm('Ask ' + S.run.name + ' to stop? The client stops at its next file_stream request.')) return;
      try { await api(base + '/stop', { method: 'POST', headers: { 'X-Mami': '1', 'Accept': 'application/json' } }); await refresh(false); }
      catch (e) { alert('Could not stop the run: ' + e.message); }
    });
  }

  async function poll() {
    let run = S.run;
    try { run = await refresh(false); } catch (e) { console.warn('poll', e); }
    setTimeout(poll, run && run.state === 'running' ? 3000 : 15000);
  }

  (async () => {
    wire();
    await refresh(true);
    body.dataset.ready = '1';
    setTimeout(poll, 3000);
  })().catch((e) => { $('charts-empty').hidden = false; $('charts-empty').textContent = 'Could not load the run: ' + e.message; });
})();
