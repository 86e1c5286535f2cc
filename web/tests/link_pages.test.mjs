// The pages a customer opens from a link in a real browser: Debian's chromium, driven by
// playwright-core (no browser download), checked by axe-core. The links are taken from
// notices amends actually queued and delivered to its outbox file; the server is a real
// `amends serve` on 127.0.0.1. Screenshots at phone and desktop width land in
// target/browser/.
//
// Run: (cd web/tests && npm ci && npm test), after `cargo build -p amends`.
// AMENDS_BIN names another binary; CHROMIUM another browser.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import axe from 'axe-core';

const repo = path.resolve(import.meta.dirname, '../..');
const bin = process.env.AMENDS_BIN ?? path.join(repo, 'target/debug/amends');
const shots = path.join(repo, 'target/browser');
const T0 = '2026-11-23T12:00:00Z';

// The prorated credit, paid unasked, and a goodwill amount the provider pays on request.
const POLICY = `id = "prorated-and-goodwill"
version = 1

[[rules]]
id = "prorated"
event = "outage"
pay = { basis = "prorated" }

[[rules]]
id = "goodwill"
event = "outage"
automatic = false
pay = { basis = "once", amount = { minor = 500 } }
`;

const SETTINGS = `provider_name = "Example Cable"
policy = "policy.toml"

[delivery]
public_url = "https://care.example.com"

[surveys]
sample_rate_ppm = 1000000
delay_after_fix = "PT24H"
per_customer_min_gap = "PT2160H"
link_valid_for = "PT336H"
scale = "nps"
`;
const PLANS = 'plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n';
const TOPOLOGY = 'element_id,parent_id,kind,name\nroot,,region,North\n';
const CUSTOMERS = `customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,America/New_York,fast,root,M1,1,2020-01-01T00:00:00Z,active
`;
const AGENTS = 'id,name,role,lead,active\nlee,Lee Lead,lead,,\nann,Ann Agent,agent,lee,true\n';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amends-browser-'));
const file = (name) => path.join(dir, name);
const common = () => ['--config', file('amends.toml'), '--database', file('amends.db'), '--outbox-file', file('outbox.txt')];

function amends(now, ...args) {
  return execFileSync(bin, [...common(), '--now', now, ...args], { encoding: 'utf8', env: { ...process.env, AMENDS_DATABASE_URL: '' } });
}

/// Every status link in the outbox (a path under /status), in the order delivered.
function statusLinks() {
  const outbox = fs.readFileSync(file('outbox.txt'), 'utf8');
  return [...outbox.matchAll(/https:\/\/care\.example\.com(\/status\/[A-Z0-9-]+)/g)].map((m) => m[1]);
}

/// Every link of `route` in the outbox, in the order they were delivered.
function links(route) {
  const outbox = fs.readFileSync(file('outbox.txt'), 'utf8');
  const escaped = route.replace(/[/?]/g, (c) => `\\${c}`);
  return [...outbox.matchAll(new RegExp(`https://care\\.example\\.com${escaped}\\?token=([^\\s>]+)`, 'g'))].map((m) => m[1]);
}

let server;
let base;
let browser;

before(async () => {
  // The policy path is read from the working directory: give it whole.
  fs.writeFileSync(file('amends.toml'), SETTINGS.replace('"policy.toml"', JSON.stringify(file('policy.toml'))));
  fs.writeFileSync(file('policy.toml'), POLICY);
  fs.mkdirSync(file('book'));
  fs.writeFileSync(file('book/plans.csv'), PLANS);
  fs.writeFileSync(file('book/topology.csv'), TOPOLOGY);
  fs.writeFileSync(file('book/customers.csv'), CUSTOMERS);
  fs.writeFileSync(file('agents.csv'), AGENTS);
  amends(T0, 'import', '--dir', file('book'));
  amends(T0, 'agents', 'import', '--file', file('agents.csv'));
  // An outage whose update carries an unsubscribe link (updates are optional notices).
  const declared = JSON.parse(amends(T0, '--json', 'incident', 'declare', '--element', 'root', '--cause', 'Fibre cut', '--next-update-by', '+1h', '--etr', '+4h'));
  const id = declared.incident.incident_id;
  amends('2026-11-23T12:30:00Z', 'incident', 'update', id, '--etr', '+6h', '--message', 'The cable is longer than we thought.');
  amends('2026-11-23T12:30:00Z', 'deliver');
  // A case fixed a day ago: its survey.
  const opened = JSON.parse(amends(T0, '--json', 'case', 'open', '--as', 'ann', '--customer', 'C1', '--summary', 'Router keeps dropping'));
  amends('2026-11-23T12:05:00Z', 'case', 'act', opened.case_id, '--as', 'ann', 'respond', '--message', 'On it.');
  amends('2026-11-23T13:00:00Z', 'case', 'act', opened.case_id, '--as', 'ann', 'fix', '--note', 'New router');
  amends('2026-11-24T13:00:00Z', 'tick');
  amends('2026-11-24T13:00:00Z', 'deliver');

  server = spawn(bin, [...common(), '--now', '2026-11-24T14:00:00Z', 'serve', '--listen', '127.0.0.1:0', '--poll-seconds', '3600'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  base = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: server.stderr });
    lines.on('line', (line) => {
      const at = line.split('serving the API on ')[1];
      if (at) resolve(at.split(/\s/)[0]);
    });
    server.on('exit', (code) => reject(new Error(`amends serve exited with ${code}`)));
  });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
  fs.mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

const WIDTHS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

/// A page at `width`. The pages forbid every script: axe is injected past the CSP only
/// in this test's browser (`bypassCSP`), never in the page itself.
async function open(url, width) {
  const context = await browser.newContext({ viewport: WIDTHS[width], bypassCSP: true });
  const page = await context.newPage();
  const response = await page.goto(url);
  return { context, page, response };
}

async function accessibilityProblems(page) {
  await page.addScriptTag({ content: axe.source });
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
}

test('the survey link from a real notice asks, records one answer and refuses a second', async () => {
  const [token] = links('/v1/surveys/answer');
  assert.ok(token, 'a survey notice with its link was delivered');
  const url = `${base}/v1/surveys/answer?token=${token}`;
  for (const width of Object.keys(WIDTHS)) {
    const { context, page, response } = await open(url, width);
    assert.equal(response.status(), 200);
    assert.equal(response.headers()['referrer-policy'], 'no-referrer');
    await page.getByText('How likely are you to recommend us').waitFor();
    await page.screenshot({ path: path.join(shots, `survey-question-${width}.png`), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), []);
    await context.close();
  }
  // Keyboard only: Tab to the score 9, Enter.
  const { context, page } = await open(url, 'phone');
  const nine = page.getByRole('button', { name: '9', exact: true });
  await nine.focus();
  await page.keyboard.press('Enter');
  await page.getByText('Your answer is recorded').waitFor();
  await page.screenshot({ path: path.join(shots, 'survey-answered-phone.png'), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  // The link again: no question, only a thank-you.
  await page.goto(url);
  await page.getByText('answered already').waitFor();
  assert.equal(await page.getByRole('button').count(), 0);
  await context.close();
});

test('the unsubscribe link from a real update stops those messages after one press', async () => {
  const [token] = links('/v1/unsubscribe');
  assert.ok(token, 'an update with its unsubscribe link was delivered');
  const { context, page, response } = await open(`${base}/v1/unsubscribe?token=${token}`, 'phone');
  assert.equal(response.status(), 200, 'following the link alone changes nothing');
  await page.screenshot({ path: path.join(shots, 'unsubscribe-phone.png'), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  await page.getByRole('button', { name: 'Unsubscribe' }).click();
  await page.getByText('You are unsubscribed').waitFor();
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
});

test('a forged link gets a page that names nobody', async () => {
  const { context, page, response } = await open(`${base}/v1/surveys/answer?token=AAAA.BBBB`, 'phone');
  assert.equal(response.status(), 400);
  const text = await page.textContent('body');
  assert.ok(!text.includes('Ana') && !text.includes('C1'), text);
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
});

test('the status link from a real notice shows the outage, in a time zone the reader picks', async () => {
  const [link] = statusLinks();
  assert.ok(link, 'an acknowledgement with its status link was delivered');
  for (const width of Object.keys(WIDTHS)) {
    const { context, page, response } = await open(`${base}${link}`, width);
    assert.equal(response.status(), 200);
    await page.getByText('Fibre cut').waitFor();
    await page.screenshot({ path: path.join(shots, `status-incident-${width}.png`), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), []);
    await context.close();
  }
  // The reader's zone, typed into the page's own form: the estimate in New York's time.
  const { context, page } = await open(`${base}${link}`, 'phone');
  await page.getByLabel('Time zone (IANA)').fill('America/New_York');
  await page.keyboard.press('Enter');
  await page.getByText('Times in America/New_York').waitFor();
  assert.ok((await page.textContent('body')).includes('EST'));
  // And in Spanish, from the page's switcher.
  await page.getByRole('link', { name: 'Español' }).click();
  await page.getByText('Averías en curso').waitFor();
  assert.equal(await page.getAttribute('html', 'lang'), 'es');
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
});

test("the page link from a real notice: the outage in the customer's zone, still offline, and preferences", async () => {
  const [token] = links('/my');
  assert.ok(token, 'a notice with the link to the customer page was delivered');
  const url = `${base}/my?token=${token}`;
  for (const width of Object.keys(WIDTHS)) {
    const { context, page, response } = await open(url, width);
    assert.equal(response.status(), 200);
    assert.equal(response.headers()['referrer-policy'], 'no-referrer');
    await page.getByText('Is my service affected?').waitFor();
    // By now the estimate has lapsed: the next word is promised, in New York's time.
    await page.getByText('Next update by').waitFor();
    assert.ok((await page.textContent('body')).includes('EST'), "the times in the customer's zone");
    await page.screenshot({ path: path.join(shots, `customer-page-${width}.png`), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), []);
    await context.close();
  }
  const { context, page } = await open(url, 'phone');
  await page.getByRole('button', { name: "I'm still offline" }).click();
  await page.getByText('Thank you for telling us').waitFor();
  await page.screenshot({ path: path.join(shots, 'customer-still-offline-phone.png'), fullPage: true });
  // One box, flipped and saved by keyboard-reachable controls: the page shows it stored.
  const box = page.getByLabel('Service back: SMS', { exact: true });
  const before = await box.isChecked();
  await box.setChecked(!before);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Your preferences are saved.').waitFor();
  assert.equal(await page.getByLabel('Service back: SMS', { exact: true }).isChecked(), !before);
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
  // The link altered: a page that names nobody.
  const forged = await open(`${base}/my?token=x${token}`, 'phone');
  assert.equal(forged.response.status(), 400);
  const text = await forged.page.textContent('body');
  assert.ok(!text.includes('Ana') && !text.includes('C1'), text);
  await forged.context.close();
});

test('the pages are styled under their own policy: one stylesheet of this origin, nothing refused', async () => {
  const [token] = links('/my');
  for (const url of [`${base}/status`, `${base}/my?token=${token}`]) {
    // No bypassCSP here: the page as a customer's browser gets it.
    const context = await browser.newContext({ viewport: WIDTHS.phone });
    const page = await context.newPage();
    const refused = [];
    page.on('console', (m) => m.text().includes('Content Security Policy') && refused.push(m.text()));
    const response = await page.goto(url);
    assert.equal(response.status(), 200, url);
    await page.waitForLoadState('load');
    assert.deepEqual(refused, [], url);
    // The stylesheet's rules hold: the column's width and the focus ring.
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).maxWidth), '576px', url);
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineWidth);
    assert.equal(ring, '3px', `${url}: the focus is seen`);
    await context.close();
  }
});

test('an open status page shows an update live, without a reload', async () => {
  const [link] = statusLinks();
  const id = link.split('/').pop();
  const { context, page } = await open(`${base}${link}`, 'desktop');
  await page.getByText('Fibre cut').waitFor();
  // Another process (the command line, on the same database) posts the update.
  amends('2026-11-24T14:00:00Z', 'incident', 'update', id, '--message', 'Crews found the cut and are splicing it.');
  await page.getByText('Crews found the cut and are splicing it.').waitFor({ timeout: 15000 });
  await page.screenshot({ path: path.join(shots, 'status-live-update-desktop.png'), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
});

test('the restoration arrives live on the open page; the credit explains itself and the goodwill is claimed in one click', async () => {
  const [token] = links('/my');
  const id = statusLinks()[0].split('/').pop();
  const url = `${base}/my?token=${token}`;
  const { context, page } = await open(url, 'phone');
  await page.getByText('Fibre cut').waitFor();
  // Another process resolves the outage (the command runs the credit step too).
  amends('2026-11-24T14:00:00Z', 'incident', 'resolve', id, '--message', 'Fixed.');
  await page.getByText('No outage we know of affects your service.').waitFor({ timeout: 15000 });
  await page.reload();
  // 26 hours of November (30 days and the hour New York's clocks went back) at $79.99 a
  // month, in the customer's own words.
  await page.getByText('1,560 of the 43,260 minutes of your billing period without service').first().waitFor();
  const claim = page.getByRole('button', { name: 'Claim $5.00' });
  await claim.waitFor();
  await page.screenshot({ path: path.join(shots, 'customer-credit-offer-phone.png'), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  await claim.click();
  await page.getByText('Claimed. It is in your credits above').waitFor();
  await page.getByText('Claimed: on your bill of').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Claim $5.00' }).count(), 0, 'claimed once, no button');
  // An update coalesced into the restoration was never sent: it is not listed as on its way.
  assert.equal(await page.locator('li strong:empty').count(), 0, 'a notice listed without its words');
  const credits = JSON.parse(amends('2026-11-24T14:00:00Z', 'credits', 'export', '--format', 'json', '--customer', 'C1'));
  const claimed = credits.filter((c) => c.key.endsWith('/claimed'));
  assert.equal(claimed.length, 1, JSON.stringify(credits));
  assert.equal(claimed[0].amount_minor, 500);
  await page.screenshot({ path: path.join(shots, 'customer-claimed-phone.png'), fullPage: true });
  await context.close();
});

test('leaving takes one page: the optional reason, the button, and the final bill line by line', async () => {
  const [token] = links('/my');
  const url = `${base}/my/leave?token=${token}`;
  for (const width of Object.keys(WIDTHS)) {
    const { context, page, response } = await open(url, width);
    assert.equal(response.status(), 200);
    await page.getByText("I'd rather not say").waitFor();
    await page.screenshot({ path: path.join(shots, `leave-${width}.png`), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), []);
    await context.close();
  }
  const { context, page } = await open(url, 'phone');
  await page.getByRole('button', { name: 'Cancel my service' }).click();
  await page.getByText('Your final bill').waitFor();
  assert.ok((await page.textContent('body')).includes('You have left us'));
  await page.screenshot({ path: path.join(shots, 'left-phone.png'), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  await context.close();
});
