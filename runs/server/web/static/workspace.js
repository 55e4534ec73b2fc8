// workspace.js: a project's runs table (sort, filter, group, pick columns, select) and metric panels that
// overlay the selected runs' curves (EMA smoothing with the raw curve faint, grouped runs as mean with a
// min–max band), refreshed while runs are running.
'use strict';

(() => {
  const { api, el, fmtNum, fmtDuration, fmtAgo, flatten, badge, runtime, qs, ema, section, isMetric, palette } = mami;
  const body = document.body;
  const entity = body.dataset.entity, project = body.dataset.project;
  const store = (k, v) => { const key = 'mami:' + entity + '/' + project + ':' + k; if (v === undefined) { try { return JSON.parse(localStorage.getItem(key)); } catch { return null; } } localStorage.setItem(key, JSON.stringify(v)); };
  const SAMPLES = 600;
  const MIN_SMOOTH = 30; // curves with fewer points (per-epoch validation metrics) are drawn unsmoothed
  const S = {
    runs: [], keys: [], flat: new Map(), colors: new Map(), selected: new Set(store('selected') || []),
    sort: store('sort') || { col: 'created', dir: -1 }, filter: '', groupBy: store('groupBy') || '',
    columns: store('columns') || null, xaxis: store('xaxis') || '_step', smooth: store('smooth') ?? 0.6,
    logy: !!store('logy'), panelFilter: '', zoom: null, cache: new Map(), charts: new Map(), firstLoad: true,
  };
  const $ = (id) => document.getElementById(id);
  const tooltip = $('tooltip');

  // ---- data ---------------------------------------------------------------------------------------
  async function load() {
    const [runs, keys] = await Promise.all([
      api('/api/v1/runs?' + qs({ project, entity })),
      api('/api/v1/keys?' + qs({ project, entity })),
    ]);
    S.runs = runs;
    S.keys = keys;
    const byAge = [...runs].sort((a, b) => new Date(a.created_at) - new Date(b.created_at));
    byAge.forEach((r, i) => { if (!S.colors.has(r.id)) S.colors.set(r.id, palette[i % palette.length]); });
    for (const r of runs) S.flat.set(r.id, { config: flatten(r.config), summary: flatten(r.summary) });
    const ids = new Set(runs.map((r) => r.id));
    for (const id of [...S.selected]) if (!ids.has(id)) S.selected.delete(id);
    if (S.firstLoad && store('selected') === null) byAge.slice(-5).forEach((r) => S.selected.add(r.id));
    if (!S.columns) S.columns = defaultColumns();
    S.firstLoad = false;
  }

  function allKeys(kind) {
    const seen = new Map();
    for (const r of S.runs) for (const [k, v] of Object.entries(S.flat.get(r.id)[kind])) {
      if (kind === 'summary' && k.startsWith('_')) continue;
      if (!seen.has(k)) seen.set(k, new Set());
      seen.get(k).add(JSON.stringify(v));
    }
    return seen;
  }

  // defaultColumns: config keys whose values differ between runs, and the headline summary metrics.
  function defaultColumns() {
    const cfg = [...allKeys('config')].filter(([, vals]) => vals.size > 1 || S.runs.length === 1).map(([k]) => k).slice(0, 8);
    const sumKeys = [...allKeys('summary').keys()];
    const prefer = ['best/val/f1_macro', 'val/f1_macro', 'val/loss', 'test/f1_macro', 'test/auroc', 'train/loss', 'loss', 'acc'];
    let sum = prefer.filter((k) => sumKeys.includes(k));
    if (sum.length < 3) sum = sum.concat(sumKeys.filter((k) => !sum.includes(k)).slice(0, 5 - sum.length));
    return { config: cfg, summary: sum.slice(0, 6) };
  }

  // ---- filter -------------------------------------------------------------------------------------
  function field(run, key) {
    const f = S.flat.get(run.id);
    switch (key) {
      case 'name': return run.name;
      case 'id': return run.id;
      case 'state': return run.state;
      case 'group': return run.group;
      case 'tags': return run.tags.join(',');
    }
    if (key.startsWith('config.') && key.slice(7) in f.config) return f.config[key.slice(7)];
    if (key.startsWith('summary.') && key.slice(8) in f.summary) return f.summary[key.slice(8)];
    if (key in f.config) return f.config[key];
    if (key in f.summary) return f.summary[key];
    return undefined;
  }

  function matches(run, filter) {
    for (const tok of filter.trim().split(/\s+/).filter(Boolean)) {
      const m = tok.match(/^([\w./-]+?)(<=|>=|!=|=|<|>)(.*)$/);
      if (m) {
        const v = field(run, m[1]);
        if (v === undefined) return false;
        const a = typeof v === 'number' ? v : parseFloat(v), b = parseFloat(m[3]);
        const numeric = !isNaN(a) && !isNaN(b) && /^[-+0-9.eE]+$/.test(m[3]);
        const sv = String(v).toLowerCase(), sb = m[3].toLowerCase();
        const ok = { '=': numeric ? a === b : sv === sb, '!=': numeric ? a !== b : sv !== sb, '<': a < b, '>': a > b, '<=': a <= b, '>=': a >= b }[m[2]];
        if (!ok) return false;
        continue;
      }
      const hay = [run.name, run.id, run.group, run.state, ...run.tags].join(' ').toLowerCase();
      if (!hay.includes(tok.toLowerCase())) return false;
    }
    return true;
  }

  function groupValue(run) {
    if (!S.groupBy) return '';
    const v = S.groupBy === 'group' ? run.group : field(run, S.groupBy);
    return v === undefined || v === '' ? '(none)' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
  }

  function visibleRuns() {
    const rows = S.runs.filter((r) => matches(r, S.filter));
    const { col, dir } = S.sort;
    const val = (r) => {
      if (col === 'name') return r.name.toLowerCase();
      if (col === 'state') return r.state;
      if (col === 'created') return new Date(r.created_at).getTime();
      if (col === 'runtime') return runtime(r);
      if (col.startsWith('c:')) return S.flat.get(r.id).config[col.slice(2)];
      if (col.startsWith('s:')) return S.flat.get(r.id).summary[col.slice(2)];
      return 0;
    };
    rows.sort((a, b) => {
      let va = val(a), vb = val(b);
      if (va === undefined && vb === undefined) return 0;
      if (va === undefined) return 1;
      if (vb === undefined) return -1;
      if (typeof va === 'number' && typeof vb === 'number') return (va - vb) * dir;
      return String(va).localeCompare(String(vb), undefined, { numeric: true }) * dir;
    });
    if (S.groupBy) {
      const order = new Map();
      rows.forEach((r) => { const g = groupValue(r); if (!order.has(g)) order.set(g, order.size); });
      rows.sort((a, b) => order.get(groupValue(a)) - order.get(groupValue(b)));
    }
    return rows;
  }

  // ---- table --------------------------------------------------------------------------------------
  function renderTable() {
    const rows = visibleRuns();
    const cols = [
      { id: 'name', label: 'Name' }, { id: 'state', label: 'State' }, { id: 'created', label: 'Created' },
      { id: 'runtime', label: 'Runtime', num: true },
      ...S.columns.config.map((k) => ({ id: 'c:' + k, label: k, cls: 'colgroup-config', num: true })),
      ...S.columns.summary.map((k) => ({ id: 's:' + k, label: k, cls: 'colgroup-summary', num: true })),
    ];
    const head = el('tr', {}, el('th', { class: 'sel' }, el('input', { type: 'checkbox', title: 'select all shown', 'aria-label': 'select all shown',
      onchange: (e) => { rows.forEach((r) => e.target.checked ? S.selected.add(r.id) : S.selected.delete(r.id)); selectionChanged(); } })),
    ...cols.map((c) => el('th', {
      class: [c.cls, c.num ? 'num' : '', S.sort.col === c.id ? 'sorted' : ''].join(' '), title: c.label,
      onclick: () => { S.sort = { col: c.id, dir: S.sort.col === c.id ? -S.sort.dir : (c.id === 'name' ? 1 : -1) }; store('sort', S.sort); renderTable(); },
    }, c.label, S.sort.col === c.id ? el('span', { class: 'arrow', text: S.sort.dir > 0 ? '▲' : '▼' }) : null)));
    const tbody = [];
    let lastGroup = null;
    for (const r of rows) {
      if (S.groupBy) {
        const g = groupValue(r);
        if (g !== lastGroup) {
          lastGroup = g;
          const members = rows.filter((x) => groupValue(x) === g);
          const allSel = members.every((x) => S.selected.has(x.id));
          tbody.push(el('tr', { class: 'grouprow', 'data-members': members.map((x) => x.id).join('\n') },
            el('td', { class: 'sel' }, el('input', { type: 'checkbox', checked: allSel, 'aria-label': 'select group',
              onchange: (e) => { members.forEach((x) => e.target.checked ? S.selected.add(x.id) : S.selected.delete(x.id)); selectionChanged(); } })),
            el('td', { colspan: String(cols.length) }, el('span', { class: 'swatch', style: 'background:' + groupColor(g) }),
              S.groupBy + ' = ' + g, el('span', { class: 'muted', text: '  ·  ' + members.length + ' run' + (members.length > 1 ? 's' : '') }))));
        }
      }
      const f = S.flat.get(r.id);
      const sel = S.selected.has(r.id);
      tbody.push(el('tr', { class: sel ? 'selected' : '', 'data-run': r.id },
        el('td', { class: 'sel' }, el('input', { type: 'checkbox', checked: sel, 'aria-label': 'select ' + r.name,
          onchange: (e) => { e.target.checked ? S.selected.add(r.id) : S.selected.delete(r.id); selectionChanged(); } })),
        el('td', { class: 'name', title: r.name + ' (' + r.id + ')' }, el('span', { class: 'swatch', style: 'background:' + S.colors.get(r.id) }),
          el('a', { href: '/r/' + encodeURIComponent(r.entity) + '/' + encodeURIComponent(r.project) + '/' + encodeURIComponent(r.id), text: r.name })),
        el('td', {}, badge(r.state)),
        el('td', { class: 'muted', title: r.created_at, text: fmtAgo(r.created_at) }),
        el('td', { class: 'num', text: fmtDuration(runtime(r)) }),
        ...S.columns.config.map((k) => el('td', { class: 'num cfg', text: fmtNum(f.config[k]), title: String(fmtNum(f.config[k])) })),
        ...S.columns.summary.map((k) => el('td', { class: 'num', text: fmtNum(f.summary[k]) }))));
    }
    const table = $('runs');
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...tbody);
    $('run-count').textContent = rows.length + ' of ' + S.runs.length + ' runs';
    $('sel-count').textContent = S.selected.size + ' selected';
  }

  function groupColor(g) {
    const groups = [...new Set(S.runs.map(groupValue))].sort();
    return palette[Math.max(0, groups.indexOf(g)) % palette.length];
  }

  function renderGroupOptions() {
    const sel = $('group');
    const keys = [...allKeys('config').keys()].sort();
    const opts = [el('option', { value: '', text: 'none' }), el('option', { value: 'group', text: 'run group' }),
      ...keys.map((k) => el('option', { value: k, text: k }))];
    sel.replaceChildren(...opts);
    sel.value = keys.includes(S.groupBy) || S.groupBy === 'group' ? S.groupBy : '';
  }

  function renderColumnPicker() {
    const pop = $('columns-pop');
    const section = (kind, title) => [el('h3', { text: title }),
      ...[...allKeys(kind).keys()].sort().map((k) => el('label', {}, el('input', { type: 'checkbox', checked: S.columns[kind].includes(k),
        onchange: (e) => { const list = S.columns[kind]; if (e.target.checked) list.push(k); else list.splice(list.indexOf(k), 1); store('columns', S.columns); renderTable(); } }), k))];
    pop.replaceChildren(...section('config', 'Config'), ...section('summary', 'Summary'),
      el('button', { class: 'btn ghost small', type: 'button', onclick: () => { S.columns = defaultColumns(); store('columns', null); renderColumnPicker(); renderTable(); } }, 'Reset to default'));
  }

  // selectionChanged updates the table in place (no re-render, so focus and scroll stay) and redraws.
  function selectionChanged() {
    store('selected', [...S.selected]);
    for (const tr of $('runs').tBodies[0].rows) {
      if (!tr.dataset.run) continue;
      const sel = S.selected.has(tr.dataset.run);
      tr.classList.toggle('selected', sel);
      tr.querySelector('td.sel input').checked = sel;
    }
    for (const tr of $('runs').querySelectorAll('tr.grouprow')) {
      const ids = (tr.dataset.members || '').split('\n').filter(Boolean);
      tr.querySelector('td.sel input').checked = ids.length > 0 && ids.every((id) => S.selected.has(id));
    }
    $('sel-count').textContent = S.selected.size + ' selected';
    renderCharts();
  }

  // ---- charts -------------------------------------------------------------------------------------
  function metricKeys() {
    const f = S.panelFilter.toLowerCase();
    return S.keys.filter(isMetric).filter((k) => !f || k.toLowerCase().includes(f)).sort((a, b) => {
      const order = (k) => ({ train: 0, val: 1, test: 2 }[section(k)] ?? 3);
      return order(a) - order(b) || a.localeCompare(b);
    });
  }

  async function fetchHistory(key, runs) {
    const xkey = S.xaxis;
    const want = runs.filter((r) => {
      const c = S.cache.get(key + '|' + xkey + '|' + r.id);
      return !c || c.lines !== r.history_lines;
    });
    if (want.length) {
      const keys = xkey === '_step' ? key : key + ',' + xkey;
      for (let i = 0; i < want.length; i += 40) {
        const chunk = want.slice(i, i + 40);
        const res = await api('/api/v1/history?' + qs({ entity, project, runs: chunk.map((r) => r.id).join(','), keys, samples: SAMPLES }));
        for (const r of chunk) {
          const rows = res[r.id] || [];
          const x = [], y = [];
          for (const row of rows) {
            const xv = row[xkey], yv = row[key];
            if (typeof xv !== 'number' || typeof yv !== 'number') continue;
            x.push(xv); y.push(yv);
          }
          // Rows come in line order; an x that goes back (a restarted epoch count) is kept as logged.
          S.cache.set(key + '|' + xkey + '|' + r.id, { lines: r.history_lines, x, y });
        }
      }
    }
    return runs.map((r) => ({ run: r, ...S.cache.get(key + '|' + xkey + '|' + r.id) }));
  }

  function seriesFor(curves) {
    const w = S.smooth;
    if (!S.groupBy) {
      return curves.filter((c) => c.x.length).map((c) => {
        const sw = c.x.length >= MIN_SMOOTH ? w : 0;
        return { label: c.run.name, color: S.colors.get(c.run.id), x: c.x, y: ema(c.y, sw), raw: sw > 0 ? { x: c.x, y: c.y } : null };
      });
    }
    const groups = new Map();
    for (const c of curves) { if (!c.x.length) continue; const g = groupValue(c.run); if (!groups.has(g)) groups.set(g, []); groups.get(g).push(c); }
    const out = [];
    for (const [g, cs] of groups) {
      const smoothed = cs.map((c) => ({ x: c.x, y: ema(c.y, c.x.length >= MIN_SMOOTH ? w : 0) }));
      const st = groupStats(smoothed, SAMPLES);
      out.push({ label: S.groupBy + '=' + g + ' (' + cs.length + ')', color: groupColor(g), x: st.x, y: st.y,
        band: cs.length > 1 ? { x: st.x, lo: st.lo, hi: st.hi } : null });
    }
    return out;
  }

  let renderSeq = 0;
  async function renderCharts() {
    const seq = ++renderSeq;
    const runs = S.runs.filter((r) => S.selected.has(r.id));
    const keys = metricKeys();
    $('charts-empty').hidden = runs.length > 0 && keys.length > 0;
    $('charts-empty').textContent = runs.length ? 'The selected runs have logged no numeric metrics yet.' : 'Select runs in the table to compare their curves.';
    const panels = $('panels');
    if (!runs.length) { panels.replaceChildren(); S.charts.clear(); return; }
    // Build (or keep) one panel per key, grouped into sections by prefix.
    const wanted = new Set(keys);
    for (const k of [...S.charts.keys()]) if (!wanted.has(k)) S.charts.delete(k);
    const sections = new Map();
    for (const k of keys) { const s = section(k); if (!sections.has(s)) sections.set(s, []); sections.get(s).push(k); }
    const nodes = [];
    for (const [name, ks] of sections) {
      nodes.push(el('div', { class: 'section-title', text: name + ' · ' + ks.length }));
      nodes.push(el('div', { class: 'grid' }, ks.map((k) => panelFor(k).node)));
    }
    panels.replaceChildren(...nodes);
    const xIsTime = S.xaxis === '_runtime';
    const xLabel = { _step: 'step', epoch: 'epoch', _runtime: 'time' }[S.xaxis];
    for (const k of keys) {
      const p = S.charts.get(k);
      let curves;
      try { curves = await fetchHistory(k, runs); } catch (e) { p.hint.textContent = e.message; continue; }
      if (seq !== renderSeq) return;
      const series = seriesFor(curves);
      p.chart.zoom = S.zoom;
      p.chart.setData(series, { xIsTime, xLabel, logY: S.logy });
      p.legend.replaceChildren(...series.slice(0, 30).map((s) => el('span', { title: s.label }, el('i', { style: 'background:' + s.color }), s.label)));
      p.hint.textContent = series.length ? '' : 'no data for the selected runs';
    }
  }

  function panelFor(key) {
    let p = S.charts.get(key);
    if (p) return p;
    const canvas = el('canvas', { 'data-key': key, role: 'img', 'aria-label': key + ' chart' });
    const hint = el('span', { class: 'hint' });
    const legend = el('div', { class: 'legend' });
    const node = el('div', { class: 'panel', 'data-key': key }, el('div', { class: 'panel-title' }, el('span', { text: key }), hint), canvas, legend);
    const chart = new LineChart(canvas, { tooltip, onZoom: (range) => { S.zoom = range; for (const q of S.charts.values()) if (q.chart !== chart) q.chart.setZoom(range); } });
    p = { node, chart, legend, hint };
    S.charts.set(key, p);
    return p;
  }

  // ---- controls and polling -------------------------------------------------------------------------
  function wire() {
    $('filter').addEventListener('input', (e) => { S.filter = e.target.value; renderTable(); });
    $('group').addEventListener('change', (e) => { S.groupBy = e.target.value; store('groupBy', S.groupBy); renderTable(); renderCharts(); });
    $('columns-btn').addEventListener('click', () => { const p = $('columns-pop'); p.hidden = !p.hidden; if (!p.hidden) renderColumnPicker(); });
    document.addEventListener('click', (e) => { const p = $('columns-pop'); if (!p.hidden && !p.contains(e.target) && e.target !== $('columns-btn')) p.hidden = true; });
    $('sel-all').addEventListener('click', () => { visibleRuns().forEach((r) => S.selected.add(r.id)); selectionChanged(); });
    $('sel-none').addEventListener('click', () => { S.selected.clear(); selectionChanged(); });
    const xs = $('xaxis');
    xs.value = S.xaxis;
    xs.addEventListener('change', () => { S.xaxis = xs.value; S.zoom = null; store('xaxis', S.xaxis); renderCharts(); });
    const sm = $('smooth');
    sm.value = S.smooth; $('smooth-val').textContent = (+S.smooth).toFixed(2);
    sm.addEventListener('input', () => { S.smooth = +sm.value; $('smooth-val').textContent = S.smooth.toFixed(2); store('smooth', S.smooth); renderCharts(); });
    const ly = $('logy');
    ly.checked = S.logy;
    ly.addEventListener('change', () => { S.logy = ly.checked; store('logy', S.logy); renderCharts(); });
    $('panel-filter').addEventListener('input', (e) => { S.panelFilter = e.target.value; renderCharts(); });
  }

  async function poll() {
    try {
      const before = new Map(S.runs.map((r) => [r.id, r.history_lines + '|' + r.state]));
      await load();
      const changed = S.runs.length !== before.size || S.runs.some((r) => before.get(r.id) !== r.history_lines + '|' + r.state);
      if (changed) { renderGroupOptions(); renderTable(); renderCharts(); }
      else renderTable();
    } catch (e) { console.warn('poll', e); }
    const live = S.runs.some((r) => r.state === 'running');
    $('live').hidden = !live;
    setTimeout(poll, live ? 3000 : 10000);
  }

  (async () => {
    wire();
    await load();
    renderGroupOptions();
    renderTable();
    await renderCharts();
    $('live').hidden = !S.runs.some((r) => r.state === 'running');
    body.dataset.ready = '1';
    setTimeout(poll, 3000);
  })().catch((e) => { $('charts-empty').hidden = false; $('charts-empty').textContent = 'Could not load runs: ' + e.message; });
})();
