// browser.mjs drives the dashboard in headless Chromium (playwright-core, the system's chromium):
// the runs table lists the expected runs, a run name holding <script> shows as text, and selecting two
// runs draws two curves in every panel. With SHOTS=dir it also saves screenshots.
// Env: MAMI_URL, MAMI_ENTITY, MAMI_PROJECT, EXPECT (JSON: {names: [...], pick: [id, id], xss: id}),
// CHROMIUM (default /usr/bin/chromium). Prints one JSON line; exits 1 on a failed check.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.MAMI_URL;
const entity = process.env.MAMI_ENTITY || 'local';
const project = process.env.MAMI_PROJECT;
const expect = JSON.parse(process.env.EXPECT || '{}');
const shots = process.env.SHOTS || '';
const failures = [];
const check = (ok, msg) => { if (!ok) failures.push(msg); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'], // playwright gives it a fresh temporary profile
});
try {
  // bypassCSP: playwright's waitForFunction evaluates strings; it also proves the XSS check holds without
  // the page's CSP, by escaping alone.
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, bypassCSP: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('dialog', async (d) => { errors.push('unexpected dialog: ' + d.message()); await d.dismiss(); });

  await page.goto(`${base}/p/${entity}/${project}`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });

  // 1. The table lists the runs.
  const names = await page.$$eval('#runs tbody tr[data-run] td.name a', (as) => as.map((a) => a.textContent));
  for (const n of expect.names || []) check(names.includes(n), `table lacks run ${JSON.stringify(n)} (has ${names.length})`);

  // 2. A run name with <script> is text: shown verbatim, no script element, no dialog.
  if (expect.xss) {
    const cell = await page.$eval(`#runs tr[data-run="${expect.xss}"] td.name a`, (a) => ({ text: a.textContent, html: a.innerHTML }));
    check(cell.text.includes('<script>'), `xss run name not shown as text: ${JSON.stringify(cell)}`);
    check(!cell.html.includes('<script'), `xss run name became markup: ${cell.html}`);
    const scripts = await page.$$eval('#runs script', (s) => s.length);
    check(scripts === 0, `table holds ${scripts} script elements`);
  }

  // 3. Select exactly two runs: every panel draws two curves.
  await page.click('#sel-none');
  for (const id of expect.pick || []) {
    try {
      await page.check(`#runs tr[data-run="${id}"] td.sel input`, { timeout: 10000 });
    } catch (e) {
      if (shots) await page.screenshot({ path: path.join(shots, 'failure.png') });
      throw e;
    }
  }
  await page.waitForFunction(() => {
    const cs = [...document.querySelectorAll('canvas[data-key]')];
    return cs.length > 0 && cs.every((c) => c.dataset.series === '2');
  }, null, { timeout: 45000, polling: 250 }).catch((e) => failures.push('waiting for two curves per panel: ' + e.message.split('\n')[0]));
  const panels = await page.$$eval('canvas[data-key]', (cs) => cs.map((c) => ({ key: c.dataset.key, series: c.dataset.series })));
  check(panels.length > 0, 'no panels drawn');
  for (const p of panels) check(p.series === '2', `panel ${p.key}: ${p.series} series, want 2`);
  // The two curves are on the canvas: count pixels of each run's colour in the train/loss panel.
  const colours = await page.$$eval((expect.pick || []).map((id) => `#runs tr[data-run="${id}"] .swatch`).join(','), (ss) => ss.map((s) => getComputedStyle(s).backgroundColor));
  const key = expect.panel || 'train/loss';
  const counts = await page.$eval(`canvas[data-key="${key}"]`, (c, cols) => {
    const g = c.getContext('2d');
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const rgb = cols.map((s) => s.match(/\d+/g).slice(0, 3).map(Number));
    const n = rgb.map(() => 0);
    for (let i = 0; i < d.length; i += 4) {
      rgb.forEach((q, k) => { if (Math.abs(d[i] - q[0]) < 12 && Math.abs(d[i + 1] - q[1]) < 12 && Math.abs(d[i + 2] - q[2]) < 12 && d[i + 3] > 200) n[k]++; });
    }
    return n;
  }, colours);
  for (const [i, n] of counts.entries()) check(n > 50, `panel ${key}: curve ${i} has ${n} pixels of its colour`);
  if (shots) {
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, 'workspace-two-runs.png') });
    // The whole sweep, grouped by fusion: mean curves with min–max bands.
    await page.click('#sel-all');
    await page.selectOption('#group', 'model.fusion');
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(shots, 'workspace-grouped.png') });
    await page.selectOption('#group', '');
    await page.waitForTimeout(1200);
    await page.screenshot({ path: path.join(shots, 'workspace-sweep.png') });
    if (expect.pick && expect.pick[0]) {
      await page.goto(`${base}/r/${entity}/${project}/${expect.pick[0]}`);
      await page.waitForSelector('body[data-ready="1"]');
      await page.waitForTimeout(500);
      await page.screenshot({ path: path.join(shots, 'run.png'), fullPage: false });
    }
    await page.goto(`${base}/`);
    await page.screenshot({ path: path.join(shots, 'projects.png') });
  }
  for (const e of errors) failures.push(e);
  console.log(JSON.stringify({ ok: failures.length === 0, failures, names: names.length, panels: panels.length, counts }));
} finally {
  await browser.close();
}
process.exit(failures.length ? 1 : 0);
