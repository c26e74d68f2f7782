// Benchmark (not a timed test): on a `fundtrail demo` server,
//  1. the first view of a fund page: bytes over the wire (compressed), all requests
//     until the page has settled, as Chromium's network layer counts them;
//  2. whole-ledger verification: entries/s in the browser (Web Worker, Web Crypto
//     Ed25519) against `fundtrail verify --ledger <url>` on the same ledger, best of N.
// Usage: node bench/bench.mjs [--runs N]   (FUNDTRAIL_BIN, CHROMIUM as in the e2e test)

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = process.env.FUNDTRAIL_BIN || join(root, 'target/release/fundtrail');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;

const port = await new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const url = `http://127.0.0.1:${port}`;
const data = join(mkdtempSync(join(tmpdir(), 'portal-bench-')), 'demo');
const server = spawn(BIN, ['demo', '--data', data, '--listen', `127.0.0.1:${port}`, '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
server.stdout.on('data', (d) => { out += d; });
while (!out.includes('Serving')) {
  if (server.exitCode !== null) throw new Error(out);
  await new Promise((r) => setTimeout(r, 200));
}
const summary = JSON.parse(readFileSync(join(data, 'summary.json'), 'utf8'));
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'portal-bench-chromium-')), {
  executablePath: CHROMIUM, headless: true, viewport: { width: 360, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // 1. First view, cold cache.
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.clearBrowserCache');
  let wire = 0;
  const files = new Map();
  const urls = new Map();
  cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
  cdp.on('Network.loadingFinished', (e) => {
    wire += e.encodedDataLength;
    files.set(urls.get(e.requestId), e.encodedDataLength);
  });
  await page.goto(`${url}/#/funds/${summary.fund}`, { waitUntil: 'networkidle' });
  await page.waitForFunction(() => document.getElementById('main').getAttribute('aria-busy') === 'false');
  await page.waitForTimeout(500);
  console.log(`first view of #/funds/${summary.fund}: ${wire} bytes over the wire (${(wire / 1024).toFixed(1)} KiB), ${files.size} responses`);
  for (const [u, n] of [...files].sort((a, b) => b[1] - a[1])) console.log(`  ${n.toString().padStart(8)}  ${u.replace(url, '')}`);

  // 2. Verification speed.
  const size = Number((await (await fetch(`${url}/ledger/checkpoint`)).text()).split('\n')[1]);
  let best = { browser: 0, cli: 0 };
  for (let run = 0; run < RUNS; run++) {
    await page.goto(`${url}/#/verify`);
    await page.locator('#verify-start').click();
    await page.waitForSelector('#verify-verdict p', { timeout: 600_000 });
    const rate = Number(await page.locator('#verify-status').getAttribute('data-rate'));
    const started = process.hrtime.bigint();
    const cli = spawnSync(BIN, ['verify', '--ledger', `${url}/ledger`, '--vkey', summary.vkey], { encoding: 'utf8' });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (cli.status !== 0) throw new Error(cli.stderr + cli.stdout);
    const cliRate = Math.round(size / seconds);
    console.log(`run ${run + 1}: browser ${rate} entries/s, fundtrail verify ${cliRate} entries/s (${size} entries)`);
    best = { browser: Math.max(best.browser, rate), cli: Math.max(best.cli, cliRate) };
  }
  console.log(`best: browser ${best.browser} entries/s, fundtrail verify ${best.cli} entries/s, ratio ${(best.browser / best.cli).toFixed(2)}`);
} finally {
  await context.close();
  server.kill('SIGINT');
}
