// chart.js: a small canvas line chart for metric panels: many series with their own x values, faint raw
// curves under smoothed ones, min–max bands for grouped runs, a hover read-out, drag-to-zoom on x and
// double-click to reset. No dependencies.
'use strict';

class LineChart {
  // opts: {xLabel, onZoom(range|null), tooltip: element}
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts || {};
    this.series = [];
    this.zoom = null;
    this.logY = false;
    this.hoverX = null;
    this.drag = null;
    this.pad = { l: 52, r: 12, t: 8, b: 22 };
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => { this.hoverX = null; this.drag = null; this.hideTip(); this.draw(); });
    canvas.addEventListener('mousedown', (e) => { this.drag = { x0: this.px(e), x1: this.px(e) }; });
    canvas.addEventListener('mouseup', () => this.onUp());
    canvas.addEventListener('dblclick', () => { this.setZoom(null); if (this.opts.onZoom) this.opts.onZoom(null); });
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(canvas);
  }

  // setData: series = [{label, color, x: number[], y: number[], raw?: {x, y}, band?: {x, lo, hi}}].
  setData(series, opts) {
    this.series = series;
    Object.assign(this.opts, opts || {});
    this.logY = !!this.opts.logY;
    this.canvas.dataset.series = String(series.length);
    this.draw();
  }

  setZoom(range) { this.zoom = range; this.draw(); }

  px(e) { const r = this.canvas.getBoundingClientRect(); return e.clientX - r.left; }

  ty(v) { return this.logY ? (v > 0 ? Math.log10(v) : NaN) : v; }

  extent() {
    let x0 = Infinity, x1 = -Infinity;
    for (const s of this.series) {
      for (const arr of [s.x, s.raw && s.raw.x, s.band && s.band.x]) {
        if (!arr || !arr.length) continue;
        x0 = Math.min(x0, arr[0]); x1 = Math.max(x1, arr[arr.length - 1]);
      }
    }
    if (this.zoom) { x0 = this.zoom[0]; x1 = this.zoom[1]; }
    let y0 = Infinity, y1 = -Infinity;
    const scan = (xs, ys) => {
      if (!xs) return;
      for (let i = 0; i < xs.length; i++) {
        if (xs[i] < x0 || xs[i] > x1) continue;
        const v = this.ty(ys[i]);
        if (!isFinite(v)) continue;
        if (v < y0) y0 = v;
        if (v > y1) y1 = v;
      }
    };
    for (const s of this.series) {
      scan(s.x, s.y);
      if (s.raw) scan(s.raw.x, s.raw.y);
      if (s.band) { scan(s.band.x, s.band.lo); scan(s.band.x, s.band.hi); }
    }
    if (!isFinite(x0)) { x0 = 0; x1 = 1; }
    if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
    if (!isFinite(y0)) { y0 = 0; y1 = 1; }
    // A flat curve (a constant learning rate, say, give or take rounding) gets a visible range.
    if (y1 - y0 <= 1e-9 * Math.max(Math.abs(y0), Math.abs(y1))) { const mid = (y0 + y1) / 2, d = Math.abs(mid) * 0.05 || 0.5; y0 = mid - d; y1 = mid + d; }
    const m = (y1 - y0) * 0.04;
    return { x0, x1, y0: y0 - m, y1: y1 + m };
  }

  static ticks(lo, hi, n) {
    const span = hi - lo;
    const step0 = span / Math.max(1, n);
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const err = step0 / mag;
    const step = (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1) * mag;
    const out = [];
    if (!(step > 0) || !isFinite(lo) || !isFinite(hi)) return { ticks: out, step: 1 };
    const first = Math.ceil(lo / step);
    for (let i = 0; i <= 1000; i++) {
      const v = (first + i) * step;
      if (v > hi + step * 1e-9) break;
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return { ticks: out, step };
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const p = this.pad, iw = w - p.l - p.r, ih = h - p.t - p.b;
    const e = this.ext = this.extent();
    const X = (v) => p.l + (v - e.x0) / (e.x1 - e.x0) * iw;
    const Y = (v) => p.t + (1 - (this.ty(v) - e.y0) / (e.y1 - e.y0)) * ih;
    this.X = X;
    // Grid and axes.
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#8a91a1';
    g.strokeStyle = '#eef0f3';
    g.lineWidth = 1;
    const yt = LineChart.ticks(e.y0, e.y1, Math.max(2, Math.floor(ih / 38)));
    g.textAlign = 'right'; g.textBaseline = 'middle';
    for (const v of yt.ticks) {
      const y = Math.round(p.t + (1 - (v - e.y0) / (e.y1 - e.y0)) * ih) + 0.5;
      g.beginPath(); g.moveTo(p.l, y); g.lineTo(p.l + iw, y); g.stroke();
      const label = this.logY ? mami.fmtAxis(Math.pow(10, v), Math.pow(10, v)) : mami.fmtAxis(v, yt.step);
      g.fillText(label, p.l - 6, y);
    }
    const xt = LineChart.ticks(e.x0, e.x1, Math.max(2, Math.floor(iw / 80)));
    g.textAlign = 'center'; g.textBaseline = 'top';
    for (const v of xt.ticks) {
      const x = Math.round(X(v)) + 0.5;
      g.beginPath(); g.moveTo(x, p.t); g.lineTo(x, p.t + ih); g.stroke();
      g.fillText(this.opts.xIsTime ? mami.fmtDuration(v) : mami.fmtAxis(v, xt.step), x, p.t + ih + 5);
    }
    g.strokeStyle = '#d5d9e0';
    g.beginPath(); g.moveTo(p.l + 0.5, p.t); g.lineTo(p.l + 0.5, p.t + ih + 0.5); g.lineTo(p.l + iw, p.t + ih + 0.5); g.stroke();
    // Data, clipped to the plot area.
    g.save();
    g.beginPath(); g.rect(p.l, p.t - 1, iw, ih + 2); g.clip();
    const line = (xs, ys, color, width, alpha) => {
      g.globalAlpha = alpha; g.strokeStyle = color; g.lineWidth = width; g.lineJoin = 'round';
      g.beginPath();
      let pen = false;
      for (let i = 0; i < xs.length; i++) {
        const y = Y(ys[i]);
        if (!isFinite(y)) { pen = false; continue; }
        const x = X(xs[i]);
        if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
      }
      g.stroke();
    };
    for (const s of this.series) {
      if (!s.band) continue;
      const b = s.band;
      g.globalAlpha = 0.16; g.fillStyle = s.color;
      g.beginPath();
      for (let i = 0; i < b.x.length; i++) { const x = X(b.x[i]), y = Y(b.hi[i]); i ? g.lineTo(x, y) : g.moveTo(x, y); }
      for (let i = b.x.length - 1; i >= 0; i--) g.lineTo(X(b.x[i]), Y(b.lo[i]));
      g.closePath(); g.fill();
    }
    for (const s of this.series) if (s.raw) line(s.raw.x, s.raw.y, s.color, 1, 0.22);
    for (const s of this.series) {
      line(s.x, s.y, s.color, s.x.length > 400 ? 1.3 : 1.7, 1);
      if (s.x.length <= 40) { // sparse curves (per-epoch metrics, a single point) get markers
        g.fillStyle = s.color;
        for (let i = 0; i < s.x.length; i++) {
          const y = Y(s.y[i]);
          if (isFinite(y)) { g.beginPath(); g.arc(X(s.x[i]), y, 2.2, 0, 2 * Math.PI); g.fill(); }
        }
      }
    }
    g.globalAlpha = 1;
    // Hover: a rule and the nearest point of every series.
    if (this.hoverX !== null && !this.drag) {
      const xv = e.x0 + (this.hoverX - p.l) / iw * (e.x1 - e.x0);
      g.strokeStyle = '#9aa1b1'; g.lineWidth = 1; g.setLineDash([3, 3]);
      g.beginPath(); g.moveTo(Math.round(this.hoverX) + 0.5, p.t); g.lineTo(Math.round(this.hoverX) + 0.5, p.t + ih); g.stroke();
      g.setLineDash([]);
      const rows = [];
      for (const s of this.series) {
        const i = LineChart.nearest(s.x, xv);
        if (i < 0) continue;
        const y = Y(s.y[i]);
        if (!isFinite(y)) continue;
        g.fillStyle = s.color; g.beginPath(); g.arc(X(s.x[i]), y, 3.2, 0, 2 * Math.PI); g.fill();
        rows.push({ s, x: s.x[i], y: s.y[i], raw: s.raw ? s.raw.y[LineChart.nearest(s.raw.x, xv)] : undefined });
      }
      this.showTip(xv, rows);
    }
    if (this.drag) {
      g.fillStyle = 'rgba(47,111,237,0.10)';
      const a = Math.min(this.drag.x0, this.drag.x1), bb = Math.max(this.drag.x0, this.drag.x1);
      g.fillRect(a, p.t, bb - a, ih);
    }
    g.restore();
  }

  static nearest(xs, v) {
    if (!xs || !xs.length) return -1;
    let lo = 0, hi = xs.length - 1;
    while (hi - lo > 1) { const m = (lo + hi) >> 1; if (xs[m] < v) lo = m; else hi = m; }
    return Math.abs(xs[lo] - v) <= Math.abs(xs[hi] - v) ? lo : hi;
  }

  onMove(e) {
    const x = this.px(e);
    if (this.drag) { this.drag.x1 = x; this.draw(); return; }
    const p = this.pad;
    this.hoverX = Math.max(p.l, Math.min(this.canvas.clientWidth - p.r, x));
    this.mouse = { x: e.clientX, y: e.clientY };
    this.draw();
  }

  onUp() {
    const d = this.drag;
    this.drag = null;
    if (!d || Math.abs(d.x1 - d.x0) < 6 || !this.ext) { this.draw(); return; }
    const p = this.pad, iw = this.canvas.clientWidth - p.l - p.r, e = this.ext;
    const toX = (px) => e.x0 + (px - p.l) / iw * (e.x1 - e.x0);
    const range = [toX(Math.min(d.x0, d.x1)), toX(Math.max(d.x0, d.x1))];
    this.setZoom(range);
    if (this.opts.onZoom) this.opts.onZoom(range);
  }

  showTip(xv, rows) {
    const tip = this.opts.tooltip;
    if (!tip || !this.mouse) return;
    rows.sort((a, b) => b.y - a.y);
    const { el, fmtNum, fmtDuration } = mami;
    tip.replaceChildren(
      el('div', { class: 'tt-x', text: (this.opts.xLabel || 'x') + ' ' + (this.opts.xIsTime ? fmtDuration(rows.length ? rows[0].x : xv) : fmtNum(rows.length ? rows[0].x : xv)) }),
      ...rows.slice(0, 12).map((r) => el('div', { class: 'tt-row' },
        el('i', { style: 'background:' + r.s.color }), el('span', { class: 'tt-name', text: r.s.label }),
        el('b', { text: fmtNum(r.y) + (r.raw !== undefined && r.raw !== r.y ? '  (' + fmtNum(r.raw) + ')' : '') }))),
      rows.length > 12 ? el('div', { class: 'tt-x', text: '+' + (rows.length - 12) + ' more' }) : null);
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    let left = this.mouse.x + 14, top = this.mouse.y + 12;
    if (left + r.width > window.innerWidth - 8) left = this.mouse.x - r.width - 14;
    if (top + r.height > window.innerHeight - 8) top = this.mouse.y - r.height - 12;
    tip.style.left = left + 'px'; tip.style.top = top + 'px';
  }

  hideTip() { if (this.opts.tooltip) this.opts.tooltip.hidden = true; }
}

// groupStats combines runs' curves into a mean with a min–max band on a shared x grid: each run is
// linearly interpolated at the grid points inside its own x range.
function groupStats(curves, points) {
  let x0 = Infinity, x1 = -Infinity;
  for (const c of curves) { if (!c.x.length) continue; x0 = Math.min(x0, c.x[0]); x1 = Math.max(x1, c.x[c.x.length - 1]); }
  if (!isFinite(x0)) return { x: [], y: [], lo: [], hi: [] };
  const xsAll = [...new Set(curves.flatMap((c) => c.x))].sort((a, b) => a - b);
  let grid = xsAll;
  if (xsAll.length > points) { grid = []; for (let i = 0; i < points; i++) grid.push(xsAll[Math.round(i * (xsAll.length - 1) / (points - 1))]); }
  const x = [], y = [], lo = [], hi = [];
  const idx = curves.map(() => 0);
  for (const gx of grid) {
    let sum = 0, n = 0, mn = Infinity, mx = -Infinity;
    curves.forEach((c, k) => {
      if (!c.x.length || gx < c.x[0] || gx > c.x[c.x.length - 1]) return;
      let i = idx[k];
      while (i < c.x.length - 1 && c.x[i + 1] < gx) i++;
      idx[k] = i;
      let v;
      if (c.x[i] === gx || i === c.x.length - 1) v = c.y[i];
      else { const t = (gx - c.x[i]) / (c.x[i + 1] - c.x[i]); v = c.y[i] + t * (c.y[i + 1] - c.y[i]); }
      if (!isFinite(v)) return;
      sum += v; n++; mn = Math.min(mn, v); mx = Math.max(mx, v);
    });
    if (!n) continue;
    x.push(gx); y.push(sum / n); lo.push(mn); hi.push(mx);
  }
  return { x, y, lo, hi };
}
