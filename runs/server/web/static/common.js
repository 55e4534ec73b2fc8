// common.js: small helpers shared by the dashboard pages (no framework, no build step).
'use strict';

const mami = (() => {
  const palette = ['#2f6fed', '#e4572e', '#17a398', '#f2a541', '#7b5ea7', '#d1495b', '#3aa655', '#00a6d6',
    '#c45ab3', '#8a6d3b', '#5c6bc0', '#ef6c00', '#00897b', '#ad1457', '#6d8f1e', '#546e7a'];

  async function api(path, opts) {
    const res = await fetch(path, Object.assign({ headers: { 'Accept': 'application/json' }, credentials: 'same-origin' }, opts || {}));
    if (res.status === 401) { location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search); throw new Error('unauthorized'); }
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error((body && body.error) || res.statusText);
    return body;
  }

  // el builds an element; text children become text nodes (never HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'style') e.style.cssText = v; // CSSOM, allowed by the page's style-src 'self'
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fmtNum(v) {
    if (typeof v !== 'number') return v === undefined || v === null ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e');
    return String(+v.toPrecision(4));
  }

  function fmtAxis(v, span) {
    const a = Math.abs(v);
    if (v === 0) return '0';
    if (a >= 1e6 || a < 1e-3) return v.toExponential(1).replace(/\.0e/, 'e');
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1).replace(/\.0$/, '') + 'k';
    const digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10(span || 1)) + 1));
    return v.toFixed(digits).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  }

  function fmtDuration(sec) {
    if (!isFinite(sec) || sec < 0) return '';
    if (sec < 60) return Math.round(sec) + 's';
    if (sec < 3600) return Math.floor(sec / 60) + 'm ' + Math.round(sec % 60) + 's';
    if (sec < 86400) return Math.floor(sec / 3600) + 'h ' + Math.round((sec % 3600) / 60) + 'm';
    return Math.floor(sec / 86400) + 'd ' + Math.round((sec % 86400) / 3600) + 'h';
  }

  function fmtAgo(t) {
    const d = (Date.now() - new Date(t).getTime()) / 1000;
    if (d < 45) return 'just now';
    if (d < 3600) return Math.round(d / 60) + ' min ago';
    if (d < 86400) return Math.round(d / 3600) + ' h ago';
    if (d < 86400 * 14) return Math.round(d / 86400) + ' d ago';
    return new Date(t).toISOString().slice(0, 10);
  }

  // flatten turns nested objects into dotted keys: {model: {fusion: 'gmu'}} -> {'model.fusion': 'gmu'}.
  function flatten(obj, prefix, out) {
    out = out || {};
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? prefix + '.' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v) && !('_type' in v)) flatten(v, key, out);
      else out[key] = v;
    }
    return out;
  }

  function badge(state) { return el('span', { class: 'badge ' + state, text: state }); }

  function runtime(run) {
    if (run.summary && typeof run.summary._runtime === 'number') return run.summary._runtime;
    const end = run.state === 'running' ? Date.now() : new Date(run.heartbeat_at).getTime();
    return (end - new Date(run.created_at).getTime()) / 1000;
  }

  function qs(params) {
    return Object.entries(params).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');
  }

  // ema smooths like TensorBoard and W&B: an exponential moving average, debiased at the start.
  function ema(ys, weight) {
    if (!weight) return ys;
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      last = last * weight + (1 - weight) * ys[i];
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  // section groups metric keys by their prefix: 'val/f1_macro' -> 'val'.
  function section(key) { const i = key.indexOf('/'); return i > 0 ? key.slice(0, i) : 'charts'; }
  const xKeys = new Set(['_step', '_runtime', '_timestamp', 'epoch']);
  function isMetric(key) { return !key.startsWith('_') && !xKeys.has(key) && !key.startsWith('system/'); }

  return { palette, api, el, fmtNum, fmtAxis, fmtDuration, fmtAgo, flatten, badge, runtime, qs, ema, section, isMetric };
})();
