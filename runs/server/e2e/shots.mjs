// shots.mjs saves the dashboard screenshots used in docs/server.md from a server holding the demo study
// (MAMI_HOLD=600 go test -tags demo -run HoldDemo ./runs/server/e2e/ serves one). Env: MAMI_URL, SHOTS (folder), CHROMIUM.
import { chromium } from 'playwright-core';
import path from 'node:path';

const base = process.env.MAMI_URL, out = process.env.SHOTS || '.';
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1080 }, deviceScaleFactor: 1 });
  await page.goto(`${base}/p/local/study`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.click('#sel-all');
  await page.selectOption('#group', 'model.fusion');
  // Sort by the best validation F1, best first.
  await page.click('#runs thead th[title="best/val/f1_macro"]');
  await page.waitForTimeout(4000);
  await page.screenshot({ path: path.join(out, 'server-sweep-grouped.png') });
  await page.selectOption('#group', '');
  await page.fill('#filter', 'model.fusion=gmu');
  await page.click('#sel-none');
  await page.click('#sel-all');
  await page.waitForTimeout(4000);
  await page.screenshot({ path: path.join(out, 'server-runs-overlaid.png') });
  await page.goto(`${base}/r/local/study/live1`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(out, 'server-run.png') });
} finally {
  await browser.close();
}
if (process.env.SHOTS_TABS) {
  const b2 = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const p = await b2.newPage({ viewport: { width: 1200, height: 700 } });
  for (const tab of ['overview', 'files', 'logs']) {
    await p.goto(`${base}/r/local/study/live1#${tab}`);
    await p.waitForSelector('body[data-ready="1"]');
    await p.waitForTimeout(800);
    await p.screenshot({ path: path.join(out, `tab-${tab}.png`) });
  }
  await b2.close();
}
