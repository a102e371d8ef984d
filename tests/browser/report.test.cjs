// The HTML reports (`fraudctl drift --html`, `fraudctl monitor --html`) in headless Chromium,
// opened from file:// URLs. Run by scripts/browser-test.sh, which writes the pages and sets:
//   FRAUDRISK_REPORTS   folder holding drift_report.html and monitor_report.html
//   CHROMIUM            browser executable (default /usr/bin/chromium)
//   SCREENSHOT_DIR      where the screenshots go (default: the OS temp folder)
// Fails on any console message of type error, page error, or failed request (a page that
// tried to load anything at all, since it must be self-contained).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { chromium } = require('playwright-core');

const reports = process.env.FRAUDRISK_REPORTS || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const screenshotDir = process.env.SCREENSHOT_DIR || os.tmpdir();

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

// Opens a page, collecting every console error, page error and request other than the page.
async function open(file) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  const url = pathToFileURL(path.join(reports, file)).href;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => {
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  const response = await page.goto(url);
  assert.ok(response === null || response.ok(), `${file} did not open`);
  return { page, problems };
}

// The number of SVG charts, after checking each one has a non-zero box.
async function renderedCharts(page) {
  const boxes = await page.$$eval('svg', (svgs) =>
    svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return { width: r.width, height: r.height, shapes: s.querySelectorAll('rect, circle, path').length };
    }),
  );
  for (const [i, box] of boxes.entries()) {
    assert.ok(box.width > 100 && box.height > 50, `svg ${i} has box ${box.width}x${box.height}`);
    assert.ok(box.shapes > 0, `svg ${i} draws nothing`);
  }
  return boxes.length;
}

test('the drift page of the seed files renders without errors', async () => {
  const { page, problems } = await open('drift_report.html');
  assert.equal(await page.title(), 'Drift report');
  const verdict = await page.locator('p.verdict').first().textContent();
  assert.match(verdict, /^Drift: \d+ of 20 features drifted/);
  assert.match(verdict, /telephone/);
  assert.equal(await renderedCharts(page), 20);
  assert.equal(await page.locator('tr.drifted').count() > 0, true);
  assert.equal(await page.locator('script').count(), 0);
  await page.screenshot({ path: path.join(screenshotDir, 'drift-report.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the monitor page renders alerts, charts and tables without errors', async () => {
  const { page, problems } = await open('monitor_report.html');
  assert.match(await page.title(), /^Monitor report: champion version \d+$/);
  // Alerts come first; the served shifted traffic drifts.
  const headings = await page.locator('h2').allTextContents();
  assert.equal(headings[0], 'Alerts');
  assert.match(await page.locator('ul.alerts').textContent(), /input_drift/);
  // 20 input charts, the score histogram, the reliability diagram, AUC by week.
  assert.equal(await renderedCharts(page), 23);
  for (const text of ['Reliability bins', 'Per model version and ISO week', 'Segments']) {
    assert.equal(await page.getByText(text, { exact: true }).count(), 1, text);
  }
  await page.screenshot({ path: path.join(screenshotDir, 'monitor-report.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the pages print', async () => {
  const { page, problems } = await open('drift_report.html');
  const pdf = await page.pdf({ format: 'A4' });
  assert.ok(pdf.length > 10000);
  fs.writeFileSync(path.join(screenshotDir, 'drift-report.pdf'), pdf);
  assert.deepEqual(problems, []);
  await page.close();
});
