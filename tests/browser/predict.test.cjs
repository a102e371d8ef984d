// The HTML page of GET /predict in a real browser (Debian's Chromium, headless), against a
// running `fraudctl serve`. Run by scripts/browser-test.sh, which prepares the server and sets:
//   FRAUDRISK_URL         base URL of the server, e.g. http://127.0.0.1:40123
//   FRAUDRISK_USER        user name and password of a registered user
//   FRAUDRISK_PASSWORD
//   CHROMIUM              browser executable (default /usr/bin/chromium)
//   SCREENSHOT_DIR        where the result page's screenshot goes (default: the OS temp folder)
// playwright-core only drives the browser; it downloads nothing.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const base = (process.env.FRAUDRISK_URL || 'http://127.0.0.1:5001').replace(/\/+$/, '');
const user = process.env.FRAUDRISK_USER || 'tester';
const password = process.env.FRAUDRISK_PASSWORD || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const screenshotDir = process.env.SCREENSHOT_DIR || os.tmpdir();
const authorization = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

// The seed's two answers (creditability 0 means fraud).
const SENTENCES = [
  'The person might intend to commit fraud.',
  'The person is probably not intending to commit fraud.',
];

// The applicant typed into the form: the numeric fields get these values; every coded field
// gets its lowest code (so every field differs from or at least is set over the prefilled
// seed example, and all 20 end up in the submitted query).
const NUMBERS = {
  duration_of_credit_month: '36',
  credit_amount: '4500',
  instalment_per_cent: '3',
  age_years: '29',
  no_of_credits_at_this_bank: '2',
};
const FIELD_COUNT = 20;

let browser;
let userDataDir;

before(async () => {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraudrisk-chromium-'));
  // A persistent context is how playwright takes a user-data-dir: a fresh one per run.
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1000, height: 1400 },
    extraHTTPHeaders: { Authorization: authorization },
  });
});

after(async () => {
  if (browser) await browser.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

test('the form has 20 labelled fields, prefilled with the seed example', async () => {
  const page = await browser.newPage();
  const response = await page.goto(`${base}/predict`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'] || '', /text\/html/);
  assert.equal(await page.title(), 'Fraud risk: predict');
  const fields = page.locator('#predict-form select, #predict-form input');
  assert.equal(await fields.count(), FIELD_COUNT);
  // Every field sits in a label with readable text (not the snake_case name).
  for (const handle of await fields.elementHandles()) {
    const name = await handle.getAttribute('name');
    const label = page.locator(`label[for="${name}"]`);
    const text = (await label.innerText()).split('\n')[0].trim();
    assert.ok(text.length > 0, `${name} has a label`);
    assert.notEqual(text, name, `${name} has a readable label`);
  }
  assert.equal(await page.inputValue('#credit_amount'), '618');
  assert.equal(await page.locator('#result').count(), 0, 'no result before submitting');
  await page.close();
});

test('filling the 20 fields and submitting shows the decision and its explanation', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/predict`);
  const submitted = {};
  for (const name of await page.locator('#predict-form select').evaluateAll((els) => els.map((e) => e.name))) {
    const codes = await page
      .locator(`#${name} option`)
      .evaluateAll((els) => els.filter((o) => !o.disabled && o.value !== '').map((o) => o.value));
    assert.ok(codes.length >= 2, `${name} offers its codes`);
    await page.selectOption(`#${name}`, codes[0]);
    submitted[name] = codes[0];
  }
  for (const [name, value] of Object.entries(NUMBERS)) {
    await page.fill(`#${name}`, value);
    submitted[name] = value;
  }
  assert.equal(Object.keys(submitted).length, FIELD_COUNT, 'all 20 fields filled');

  await Promise.all([page.waitForURL(/\/predict\?/), page.click('#predict-form button[type=submit]')]);

  // The browser sent exactly the 20 fields with our values.
  const query = new URL(page.url()).searchParams;
  assert.equal([...query.keys()].length, FIELD_COUNT);
  for (const [name, value] of Object.entries(submitted)) {
    assert.equal(query.get(name), value, `${name} submitted`);
  }

  // The decision sentence, the probability, the model version and the explanation.
  await page.locator('#result').waitFor();
  const decision = (await page.innerText('#decision')).trim();
  assert.ok(SENTENCES.includes(decision), `decision sentence, got ${JSON.stringify(decision)}`);
  const decisionClass = await page.getAttribute('#result', 'data-decision');
  assert.ok(['fraud', 'not_fraud'].includes(decisionClass), `data-decision ${decisionClass}`);
  assert.equal(decisionClass === 'fraud', decision === SENTENCES[0], 'class matches sentence');
  const probability = (await page.innerText('#probability')).trim();
  assert.match(probability, /^\d{1,3}\.\d %$/);
  assert.match((await page.innerText('#model-version')).trim(), /^\d+$/);
  assert.match((await page.innerText('#threshold')).trim(), /^\d{1,3}\.\d %$/);
  // Reason codes: a list of R01..R20 (at most four), or the sentence saying there are none.
  const reasons = page.locator('#reason-codes li');
  const reasonCount = await reasons.count();
  assert.ok(reasonCount <= 4, `reason codes: ${reasonCount}`);
  for (const code of await reasons.evaluateAll((items) => items.map((i) => i.dataset.code))) {
    assert.match(code, /^R(0[1-9]|1\d|20)$/);
  }
  const rows = page.locator('#contributions tbody tr');
  const rowCount = await rows.count();
  assert.ok(rowCount >= 3, `explanation rows: ${rowCount}`);
  const first = await rows.first().locator('td').allInnerTexts();
  assert.equal(first.length, 3);
  assert.match(first[2], /^[+-]\d+\.\d{3} \((raises|lowers) the risk\)$/);
  // The form keeps what was submitted.
  assert.equal(await page.inputValue('#credit_amount'), NUMBERS.credit_amount);
  assert.equal(await page.inputValue('#age_years'), NUMBERS.age_years);

  const shot = path.join(screenshotDir, 'fraudrisk-predict-result.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`decision: ${decision} (${probability}); explanation rows: ${rowCount}; screenshot: ${shot}`);
  await page.close();
});

test('an invalid field shows what to correct', async () => {
  const page = await browser.newPage();
  // A hand-made URL (the form's own checks would stop this in the browser).
  const response = await page.goto(`${base}/predict?age_years=abc&credit_amount=618`);
  assert.equal(response.status(), 422);
  const errors = page.locator('#errors li');
  assert.ok((await errors.count()) >= 1);
  assert.equal(await page.locator('#errors li[data-field="age_years"]').count(), 1);
  assert.equal(await page.locator('#result').count(), 0);
  await page.close();
});

test('without credentials the page answers 401 with a Basic challenge', async () => {
  // The browser context sends credentials on every request, so ask without it.
  const response = await fetch(`${base}/predict`, { headers: { Accept: 'text/html' } });
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate') || '', /^Basic /);
});
