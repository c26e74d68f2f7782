// End to end: a real `fundtrail demo` server (the demo's year of data), Debian's
// chromium driven by playwright-core. Each page must show the numbers the API has; a
// receipt link verifies; a tampered receipt, a forked checkpoint served after a good
// one and a signature flipped in a tile are each refused with the right message; bad
// input gets a message, never a blank page. Screenshots at 360 px and 1280 px go to
// test/artifacts/ (gitignored).
//
// Environment: FUNDTRAIL_BIN (default ../target/debug/fundtrail), CHROMIUM
// (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { signAsync, getPublicKeyAsync } from '@noble/ed25519';
import { b64decode, b64encode, b64urlEncode, utf8 } from '../../src/core/bytes.js';
import { keyId } from '../../src/core/ledger.js';
import { formatFen } from '../../src/format.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
const BIN = process.env.FUNDTRAIL_BIN || join(root, 'target/debug/fundtrail');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const READY_MS = 120_000;

let server, url, data, summary, context, page, fund;

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function getJson(path) {
  const r = await fetch(url + path);
  assert.equal(r.status, 200, path);
  return r.json();
}

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: cargo build -p fundtrail first`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/install-test-deps.sh installs it`);
  mkdirSync(artifacts, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'portal-e2e-'));
  data = join(dir, 'demo');
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['demo', '--data', data, '--listen', `127.0.0.1:${port}`, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout.on('data', (d) => { output += d; });
  server.stderr.on('data', (d) => { output += d; });
  const deadline = Date.now() + READY_MS;
  while (!output.includes('Serving')) {
    if (server.exitCode !== null) throw new Error(`fundtrail demo exited:\n${output}`);
    if (Date.now() > deadline) throw new Error(`fundtrail demo not serving within ${READY_MS} ms:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  summary = JSON.parse(readFileSync(join(data, 'summary.json'), 'utf8'));
  fund = summary.fund;
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'portal-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 360, height: 800 },
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.on('pageerror', (e) => { throw new Error(`uncaught in the page: ${e.message}`); });
});

after(async () => {
  if (context) await context.close();
  if (server) server.kill('SIGINT');
});

async function open(hash, { lang = 'zh-CN' } = {}) {
  await page.goto('about:blank');
  await page.goto(`${url}/${lang === 'en' ? '?lang=en' : ''}${hash}`);
  await page.waitForFunction(() => document.getElementById('main').getAttribute('aria-busy') === 'false', null, { timeout: 30_000 });
}

async function shots(name) {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: width === 360 ? 800 : 900 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(artifacts, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 360, height: 800 });
}

const mainText = () => page.locator('#main').innerText();

test('the overview shows the numbers the API has, in Chinese, and in English on the switch', async () => {
  const view = await getJson(`/v1/funds/${fund}`);
  await open('');
  await page.waitForURL(new RegExp(`#/funds/${fund}$`));
  await page.waitForFunction(() => document.getElementById('main').getAttribute('aria-busy') === 'false');
  const text = await mainText();
  assert.match(text, /资金状况/);
  for (const field of ['received_fen', 'refunded_fen', 'reserved_fen', 'paid_fen', 'available_fen']) {
    assert.ok(text.includes(formatFen(view.cash[field])), `cash.${field} ${formatFen(view.cash[field])}`);
  }
  const channels = view.by_channel || view.by_channel_fen;
  for (const c of ['space_for_service', 'neighbourhood_market', 'micro_workshop', 'direct']) {
    const received = channels[c].received_fen ?? channels[c].received;
    assert.ok(text.includes(formatFen(received)), `${c} ${formatFen(received)}`);
  }
  for (const m of view.committee) assert.ok(text.includes(m.label), m.label);
  assert.ok(text.includes(formatFen(view.goods_received_value_fen)));
  assert.equal(await page.locator('#chart-monthly svg').count(), 1, 'the monthly chart is drawn');
  const monthlyIncome = await page.locator('table.monthly tbody tr').evaluateAll((rows) => rows.map((r) => r.cells[1].innerText));
  const cents = (s) => BigInt(s.replace(/[¥,.]/g, ''));
  const cash = (await getJson(`/v1/funds/${fund}/donations?limit=500`)).donations;
  assert.ok(cash.length > 0);
  assert.ok(monthlyIncome.reduce((a, s) => a + cents(s), 0n) > 0n, 'income by month is shown');
  assert.match(await page.locator('#chart-monthly').getAttribute('aria-label'), /每月收入与支出/);
  await shots('overview-zh');
  await page.locator('#lang').click();
  await page.waitForFunction(() => document.documentElement.lang === 'en' && document.getElementById('main').getAttribute('aria-busy') === 'false');
  assert.match(await mainText(), /Cash by state/);
  assert.match(await page.locator('#chart-monthly').getAttribute('aria-label'), /income and payouts by month/);
  await shots('overview-en');
  await page.locator('#lang').click();
});

test('the money trail shows every donation and payout, filters, pages and downloads exactly the rows shown', async () => {
  const donations = [];
  let after = 0;
  for (;;) {
    const r = await getJson(`/v1/funds/${fund}/donations?limit=500&after=${after}`);
    donations.push(...r.donations);
    if (r.next_after === null || r.next_after === undefined) break;
    after = r.next_after;
  }
  const proposals = (await getJson(`/v1/funds/${fund}/proposals`)).proposals;
  const payouts = proposals.flatMap((p) => p.payouts);
  await open(`#/funds/${fund}/trail`);
  assert.match(await page.locator('.pager').innerText(), new RegExp(`共 ${donations.length + payouts.length} 条`));
  await page.selectOption('#f-channel', 'micro_workshop');
  const workshop = donations.filter((d) => d.channel === 'micro_workshop');
  assert.match(await page.locator('.pager').innerText(), new RegExp(`共 ${workshop.length} 条`));
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a[download]').click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.ok(csv.startsWith('\uFEFF'), 'UTF-8 with BOM');
  const lines = csv.trim().split('\r\n');
  const shown = await page.locator('table.trail tbody tr').count();
  assert.equal(lines.length - 1, shown, 'the CSV has exactly the rows shown');
  assert.ok(lines[1].includes('微工坊'));
  await page.selectOption('#f-channel', 'payout');
  assert.match(await page.locator('.pager').innerText(), new RegExp(`共 ${payouts.length} 条`));
  await page.selectOption('#f-channel', '');
  await page.locator('.pager-buttons button', { hasText: '下一页' }).click();
  assert.match(await page.locator('.pager').innerText(), /第 21–40 条/);
  assert.match(page.url(), /page=1/);
  await shots('trail');
});

test('a proposal is a timeline whose every step links its signed event', async () => {
  const p = await getJson(`/v1/funds/${fund}/proposals/P-2026-04`);
  const keys = new Map((await getJson('/v1/keys')).keys.map((k) => [k.key, k.label]));
  await open(`#/funds/${fund}/proposals/P-2026-04`);
  await page.waitForFunction(() => document.querySelector('.timeline').getAttribute('aria-busy') === 'false', null, { timeout: 60_000 });
  const steps = page.locator('.timeline > li');
  const n = await steps.count();
  assert.ok(n >= 2 + p.votes.length + p.payouts.length, `${n} steps`);
  assert.equal(await page.locator('.timeline .step-payout-made').count(), 2, 'paid in two parts');
  assert.equal(await page.locator('.timeline .step-vote-cast').count(), p.votes.length);
  const text = await page.locator('.timeline').innerText();
  for (const v of p.votes) assert.ok(text.includes(keys.get(v.member)), v.label);
  assert.ok(text.includes(formatFen(p.released_fen)));
  for (const pay of p.money_trail.filter((s) => s.step === 'paid')) assert.ok(text.includes(`账本序号 ${pay.ledger_index}`));
  await page.locator('.timeline details').first().click();
  assert.match(await page.locator('.timeline details').first().innerText(), /签名人 .*（密钥 [0-9a-f]{32}）/);
  await shots('proposal');
});

test('disclosures show what is due, the annual report and the ratios, and print cleanly', async () => {
  const view = await getJson(`/v1/funds/${fund}`);
  await open(`#/funds/${fund}/disclosures`);
  await page.waitForSelector('.disclosure', { timeout: 60_000 });
  const text = await mainText();
  assert.ok(text.includes(`${view.compliance.annual_report.year} 年度报告`));
  assert.match(text, /70%/);
  assert.equal(await page.locator('.disclosure').count(), view.disclosures.length);
  // Each (v2) disclosure shows the accounts it cites, which the replay checked.
  assert.equal(await page.locator('.disclosure .cited-accounts').count(), view.disclosures.length);
  assert.match(await page.locator('.disclosure .cited-accounts').first().innerText(), /引用的 \d{4} 年度账目[\s\S]*限定性净资产/);
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('.site-header').isVisible(), false, 'no navigation on paper');
  await page.screenshot({ path: join(artifacts, 'disclosures-print.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });
  await shots('disclosures');
});

function receiptLink() {
  const r = summary.example_receipt;
  const text = readFileSync(r.receipt, 'utf8');
  const salt = b64decode(text.split('\n')[1].slice('extra '.length));
  return { path: `${r.index}/${b64urlEncode(salt)}/${encodeURIComponent(r.donor)}`, index: r.index, file: r.receipt, reference: r.donor };
}

async function checks() {
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll('.check')];
    return items.some((i) => i.classList.contains('fail')) || document.querySelector('#my-after h3') || document.querySelector('#my-result .error');
  }, null, { timeout: 60_000 });
  return page.locator('.check').evaluateAll((items) => items.map((i) => ({ check: i.dataset.check, state: i.className.replace('check ', ''), text: i.innerText })));
}

/**
 * My donation's trace of gift `event` (the browser's own replay) shows exactly the server's
 * trace: the donor's line in Chinese and English, one row per part, and says they agree.
 */
async function checkTrace(event) {
  await page.waitForSelector('#trace-server, #my-trace .error', { timeout: 60_000 });
  const traced = await page.locator('#my-trace').innerText();
  assert.doesNotMatch(traced, /\[object |undefined|NaN/);
  const server = await getJson(`/v1/donations/${event}/trace`);
  const line = await page.locator('#trace-line').innerText();
  assert.ok(line.startsWith(`您的 ${formatFen(server.amount_fen)}`), line);
  assert.ok(line.endsWith(`${formatFen(server.unspent_fen)} 未使用`), line);
  assert.match(await page.locator('#trace-line-other').innerText(), /^your ¥[\d,]+\.\d\d.*: .*unspent$/);
  const rows = await page.locator('#trace-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.innerText)));
  const expected = server.allocations.map((a) => [a.state === 'paid' ? '已支付' : '已预留', `${a.proposal} ${a.title}`, formatFen(a.amount_fen), a.payout ? `#${a.payout.ledger_entry}` : '—']);
  if (server.refunded_fen > 0) expected.push(['已退款', '—', formatFen(server.refunded_fen), '—']);
  if (server.unspent_fen > 0) expected.push(['未使用', '—', formatFen(server.unspent_fen), '—']);
  assert.deepEqual(rows.map((r) => [r[0], r[1], r[2], r[4]]), expected);
  for (const a of server.allocations) {
    assert.ok(line.includes(a.state === 'paid' ? `${formatFen(a.amount_fen)} → ${a.proposal} ${a.title}，` : `${formatFen(a.amount_fen)} 已预留给 ${a.proposal}`), line);
    if (a.payout) assert.ok(line.includes(`已支付（账本第 ${a.payout.ledger_entry} 条）`), line);
  }
  assert.equal(await page.locator('#trace-server').innerText(), '✓ 与服务器给出的去向一致');
  // Compared at the ledger size the server's answer reflects.
  assert.equal(await page.locator('#trace-as-of').innerText(), `比较时双方均基于账本前 ${server.as_of_sequence} 条。`);
  return server;
}

test('a donor receipt link verifies, every check ✓, then what the fund did after', async () => {
  const link = receiptLink();
  await open(`#/my/${link.path}`);
  const result = await checks();
  const byName = Object.fromEntries(result.map((c) => [c.check, c]));
  for (const name of ['link', 'checkpoint', 'grew', 'witness', 'inclusion', 'commitment']) assert.equal(byName[name] && byName[name].state, 'ok', JSON.stringify(result));
  assert.ok((await page.locator('#pinned-key').innerText()).startsWith(summary.vkey.split('+')[0]));
  await page.waitForSelector('#my-after table.after', { timeout: 60_000 });
  const after = await page.locator('#my-after').innerText();
  assert.match(after, /此后共支出 ¥[\d,]+\.\d\d，涉及 \d+ 个项目/);
  assert.doesNotMatch(after, /\[object /);
  assert.ok(await page.locator('#my-after table.after tbody tr').count() > 0, 'the payouts after the gift are listed');
  // Where the gift went: the browser's own replay, its line in both languages, one row per
  // part, the same fen as the server's trace (GET /v1/donations/{id}/trace).
  await checkTrace(summary.example_receipt.event);
  await shots('my-donation');
  // The receipt file, picked.
  await open('#/my');
  await page.setInputFiles('#my-file', link.file);
  await page.fill('#my-ref', link.reference);
  await page.locator('.my-form button[type=submit]').click();
  const fromFile = Object.fromEntries((await checks()).map((c) => [c.check, c.state]));
  // The demo pins its witnesses' policy (two of three): the checkpoint carries their quorum.
  assert.deepEqual(fromFile, { receipt: 'ok', checkpoint: 'ok', inclusion: 'ok', grew: 'ok', witness: 'ok', commitment: 'ok' });
  assert.match((await checks()).find((c) => c.check === 'witness').text, /见证达到法定数（local）：由 .+ 联署/);
});

test('an early gift\'s trace on My donation: the payouts that spent it, fen by fen, as the server traces it', async () => {
  // The demo keeps every donor's private file (reference and salt): take the first cash
  // gift that proposals have spent from, and open its My donation link.
  const receipts = join(data, 'receipts');
  let chosen = null;
  for (const name of readdirSync(receipts).filter((n) => n.endsWith('.donor.json')).sort()) {
    const donor = JSON.parse(readFileSync(join(receipts, name), 'utf8'));
    if (donor.type !== 'donation.received') continue;
    const trace = await getJson(`/v1/donations/${donor.event}/trace`);
    if (trace.allocations.some((a) => a.state === 'paid')) {
      chosen = donor;
      break;
    }
  }
  assert.ok(chosen, 'the demo year spends some gift');
  const { ledger_index: index } = await getJson(`/v1/events/${chosen.event}`);
  await open(`#/my/${index}/${b64urlEncode(b64decode(chosen.salt))}/${encodeURIComponent(chosen.donor_reference)}`);
  const result = await checks();
  assert.ok(result.every((c) => c.state === 'ok'), JSON.stringify(result));
  const server = await checkTrace(chosen.event);
  assert.ok(server.allocations.length > 0);
  await shots('my-donation-trace');
});

test('a goods gift\'s trace on My donation: restricted to 助老, handed out for P-2026-07, as the server traces it', async () => {
  // The elderly-care partner's goods (summary.json `example_goods`), opened with its donor file.
  const receipts = join(data, 'receipts');
  const chosen = readdirSync(receipts).filter((n) => n.endsWith('.donor.json'))
    .map((n) => JSON.parse(readFileSync(join(receipts, n), 'utf8'))).find((d) => d.event === summary.example_goods);
  assert.ok(chosen, 'the demo keeps the goods donor\'s file');
  const { ledger_index: index } = await getJson(`/v1/events/${chosen.event}`);
  await open(`#/my/${index}/${b64urlEncode(b64decode(chosen.salt))}/${encodeURIComponent(chosen.donor_reference)}`);
  const result = await checks();
  assert.ok(result.every((c) => c.state === 'ok'), JSON.stringify(result));
  await page.waitForSelector('#trace-server, #my-trace .error', { timeout: 60_000 })
    .catch(async (e) => assert.fail(`${e.message}\n${await page.locator('#main').innerText()}`));
  assert.doesNotMatch(await page.locator('#my-trace').innerText(), /\[object |undefined|NaN/);
  const server = await getJson(`/v1/donations/${chosen.event}/trace`);
  assert.equal(server.kind, 'goods');
  const line = await page.locator('#trace-line').innerText();
  assert.ok(line.startsWith('您的 20 袋（10kg） 大米（限定用于 助老）：20 袋（10kg） → 重阳节慰问独居老人32户（P-2026-07），'), line);
  assert.ok(line.endsWith('；8 箱 库存中'), line);
  assert.ok((await page.locator('#trace-line-other').innerText()).startsWith('your 20 袋（10kg） 大米 (restricted to 助老): '));
  const rows = await page.locator('#trace-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.innerText)));
  const expected = server.lines.flatMap((l) => [
    ...l.distributions.map((d) => [l.name, '已发放', `${d.quantity} ${l.unit}`, d.purpose, `${d.proposal} ${d.title}`, `#${d.distribution.ledger_entry}`]),
    ...(l.in_stock > 0 ? [[l.name, '库存中', `${l.in_stock} ${l.unit}`, '—', '—', '—']] : []),
  ]);
  assert.deepEqual(rows.map((r) => [r[0], r[1], r[2], r[3], r[4], r[6]]), expected);
  assert.equal(await page.locator('#trace-server').innerText(), '✓ 与服务器给出的去向一致');
  await shots('my-donation-goods-trace');
});

test('a tampered receipt is refused with the reason', async () => {
  const link = receiptLink();
  // Another donor's reference: the commitment does not open.
  await open(`#/my/${link.path.replace(/\/[^/]+$/, '/%2B86%20000')}`);
  let result = await checks();
  const commitment = result.find((c) => c.check === 'commitment');
  assert.equal(commitment.state, 'fail');
  assert.match(commitment.text, /does not open the donor commitment/);
  // A receipt file whose proof was altered.
  const text = readFileSync(link.file, 'utf8').split('\n');
  const at = text.findIndex((l, i) => i > 2 && /^[A-Za-z0-9+/]{43}=$/.test(l));
  text[at] = (text[at][0] === 'A' ? 'B' : 'A') + text[at].slice(1);
  await open('#/my');
  await page.setInputFiles('#my-file', { name: 'tampered.tlog-proof', mimeType: 'text/plain', buffer: Buffer.from(text.join('\n')) });
  await page.locator('.my-form button[type=submit]').click();
  result = await checks();
  const inclusion = result.find((c) => c.check === 'inclusion');
  assert.equal(inclusion.state, 'fail', JSON.stringify(result));
  assert.match(inclusion.text, /does not lead to the root/);
  // Not a receipt at all; a damaged link.
  await open('#/my');
  await page.setInputFiles('#my-file', { name: 'photo.tlog-proof', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]) });
  await page.locator('.my-form button[type=submit]').click();
  result = await checks();
  assert.match(result[0].text, /这个文件不是收据/);
  await open(`#/my/${link.index}/too-short`);
  result = await checks();
  assert.match(result[0].text, /收据链接有误.*43/);
});

async function signCheckpoint(body) {
  const lines = readFileSync(join(data, 'server', 'log.key'), 'utf8').split('\n');
  const seed = b64decode(lines[1].trim());
  const publicKey = await getPublicKeyAsync(seed);
  const origin = body.split('\n')[0];
  const id = keyId(origin, 1, publicKey);
  const sig = await signAsync(utf8(body), seed);
  const prefix = new Uint8Array([id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]);
  return `${body}\n— ${origin} ${b64encode(new Uint8Array([...prefix, ...sig]))}\n`;
}

test('a forked checkpoint served after a good one is shown as a fork', async () => {
  const link = receiptLink();
  await open(`#/my/${link.path}`); // this browser now remembers the good checkpoint
  const good = await checks();
  assert.equal(good.find((c) => c.check === 'grew').state, 'ok');
  const note = await (await fetch(`${url}/ledger/checkpoint`)).text();
  const [origin, size] = note.split('\n');
  const forged = await signCheckpoint(`${origin}\n${size}\n${b64encode(new Uint8Array(32).fill(7))}\n`);
  await page.route('**/ledger/checkpoint', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: forged }));
  try {
    await open(`#/my/${link.path}`);
    const result = await checks();
    const grew = result.find((c) => c.check === 'grew');
    assert.equal(grew.state, 'fail', JSON.stringify(result));
    assert.match(grew.text, /账本出现分叉.*fork: two checkpoints of size/s);
    await shots('my-donation-fork');
  } finally {
    await page.unroute('**/ledger/checkpoint');
  }
});

test('the whole ledger verifies in the browser; a signature flipped in a tile is refused', async () => {
  const size = Number((await (await fetch(`${url}/ledger/checkpoint`)).text()).split('\n')[1]);
  await open('#/verify');
  await page.locator('#verify-start').click();
  await page.waitForSelector('#verify-verdict p', { timeout: 120_000 });
  const verdict = await page.locator('#verify-verdict').innerText();
  assert.match(verdict, new RegExp(`✓ 账本完整：${size} 条记录`));
  // Each fund's money, replayed in the browser, is what `fundtrail verify` reports.
  const cli = spawnSync(BIN, ['verify', '--ledger', `${url}/ledger`, '--vkey', summary.vkey, '--json'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const report = JSON.parse(cli.stdout);
  const rows = await page.locator('#verify-funds tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  assert.deepEqual(rows, report.funds.map((f) => [f.fund, ...['received_fen', 'refunded_fen', 'reserved_fen', 'paid_fen', 'available_fen'].map((k) => formatFen(f.cash[k])), String(f.donations)]));
  assert.match(await page.locator('#verify-witness').innerText(), /✓ 见证达到法定数（local）：由 .+ 联署/);
  assert.equal(await page.locator('#verify-progress').evaluate((p) => p.value), size);
  await shots('verify');
  await page.route('**/ledger/tile/entries/000', async (route) => {
    const response = await route.fetch();
    const body = Buffer.from(await response.body());
    const at = body.indexOf('"sig":"', 2 + 40 + 300) + 12;
    body[at] = body[at] === 0x41 ? 0x42 : 0x41;
    await route.fulfill({ response, body });
  });
  try {
    await open('#/verify');
    await page.locator('#verify-start').click();
    await page.waitForSelector('#verify-verdict p', { timeout: 120_000 });
    const failed = await page.locator('#verify-verdict').innerText();
    assert.match(failed, /✗ 账本有问题：entry \d+: entry bundle tile\/entries\/000: entry \d+ is not the entry the signed tree holds \(its bytes were altered\)/);
  } finally {
    await page.unroute('**/ledger/tile/entries/000');
  }
});

test('bad addresses get a message, never a blank page', async () => {
  await open('#/funds/no-such-fund');
  assert.match(await mainText(), /没有这个基金：no-such-fund/);
  await open(`#/funds/${fund}/proposals/P-0000-00`);
  assert.match(await mainText(), /这个基金没有项目 P-0000-00/);
  await open('#/nowhere/at/all');
  assert.match(await mainText(), /没有这个页面/);
  await open('#/live');
  assert.match(await mainText(), /实时记录/);
});

test('static site: ledger mirror --portal serves the same pages from files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portal-mirror-'));
  const run = spawn(BIN, ['ledger', 'mirror', '--from', `${url}/ledger`, '--to', dir, '--vkey', summary.vkey, '--portal']);
  let out = '';
  run.stdout.on('data', (d) => { out += d; });
  run.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((r) => run.on('exit', r));
  assert.equal(code, 0, out);
  for (const f of ['index.html', 'app.js', 'worker.js', 'style.css', 'checkpoint', 'api/funds.json', `api/funds/${fund}.json`, `api/funds/${fund}/donations.json`]) {
    assert.ok(existsSync(join(dir, f)), f);
  }
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  assert.match(html, /content="static"/);
  // Served by a plain static file server, the pages read the files.
  const files = createHttpServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html');
    if (!path.startsWith(dir) || !existsSync(path) || statSync(path).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    const type = path.endsWith('.js') ? 'text/javascript' : path.endsWith('.css') ? 'text/css' : path.endsWith('.html') ? 'text/html' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type }).end(readFileSync(path));
  });
  await new Promise((r) => files.listen(0, '127.0.0.1', r));
  try {
    const view = await getJson(`/v1/funds/${fund}`);
    await page.goto(`http://127.0.0.1:${files.address().port}/#/funds/${fund}`);
    await page.waitForFunction(() => document.getElementById('main').getAttribute('aria-busy') === 'false');
    assert.ok((await mainText()).includes(formatFen(view.cash.received_fen)));
    await page.goto(`http://127.0.0.1:${files.address().port}/#/my/${receiptLink().path}`);
    const result = Object.fromEntries((await checks()).map((c) => [c.check, c.state]));
    assert.deepEqual(result, { link: 'ok', checkpoint: 'ok', grew: 'ok', witness: 'skip', inclusion: 'ok', commitment: 'ok' });
  } finally {
    files.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Serves the portal's files with `vkey` and `policy` pinned, over the ledger files in `ledgerDir`. */
async function portalOver(ledgerDir, vkey, policy, note = null) {
  const esc = (x) => x.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '&#10;');
  const html = readFileSync(join(root, 'portal/dist/index.html'), 'utf8').replace('{{MODE}}', 'static').replace('{{API}}', 'api/')
    .replace('{{LEDGER}}', './').replace('{{VKEY}}', esc(vkey)).replace('{{POLICY}}', esc(policy));
  const files = createHttpServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    if (rel === 'index.html') return res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    if (['app.js', 'worker.js'].includes(rel)) return res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(join(root, 'portal/dist', rel)));
    if (rel === 'style.css') return res.writeHead(200, { 'content-type': 'text/css' }).end(readFileSync(join(root, 'portal/dist', rel)));
    if (rel === 'checkpoint' && note) return res.writeHead(200, { 'content-type': 'text/plain' }).end(note);
    const path = join(ledgerDir, rel);
    if (!path.startsWith(ledgerDir) || !existsSync(path) || statSync(path).isDirectory()) return res.writeHead(404).end();
    return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(path));
  });
  await new Promise((r) => files.listen(0, '127.0.0.1', r));
  return files;
}

test('a ledger intact in every byte but breaking a rule is refused in the page, with the rule; a witness policy is enforced', async () => {
  const vectors = JSON.parse(readFileSync(join(root, 'portal/test/vectors/vectors.json'), 'utf8'));
  const ledgers = join(root, 'portal/test/vectors/ledgers');
  // A payout signed by a key without host_treasurer: refused at the entry Rust names.
  const expect = vectors.cases.find((c) => c.name === 'payout-signed-without-the-role').expect;
  let files = await portalOver(join(ledgers, 'payout-role'), vectors.vkey, '');
  try {
    await page.goto(`http://127.0.0.1:${files.address().port}/#/verify`);
    await page.locator('#verify-start').click();
    await page.waitForSelector('#verify-verdict p', { timeout: 120_000 });
    const verdict = page.locator('#verify-verdict p');
    assert.equal(await verdict.getAttribute('data-rule'), expect.rule);
    assert.equal(await verdict.innerText(), `✗ 账本违反规则（${expect.rule}）：${expect.message}`);
    await shots('verify-rule-broken');
  } finally {
    files.close();
  }
  // The honest ledger, its checkpoint cosigned by two of three witnesses; then by one.
  const w = vectors.witness;
  for (const [name, pattern] of [['two-of-three', /✓ 见证达到法定数（local）：由 street, paper 联署；未联署：bureau/], ['quorum-not-met', /✗ 见证未通过：checkpoint .* lacks the witness quorum local: cosigned by paper; missing street, bureau/]]) {
    files = await portalOver(join(ledgers, 'main'), vectors.vkey, w.policy, w.checks.find((c) => c.name === name).note);
    try {
      await page.goto(`http://127.0.0.1:${files.address().port}/#/verify`);
      await page.locator('#verify-start').click();
      await page.waitForSelector('#verify-witness', { timeout: 120_000 });
      assert.match(await page.locator('#verify-witness').innerText(), pattern);
      await shots(`verify-witness-${name}`);
    } finally {
      files.close();
    }
  }
});
