// The browser's verifier against golden vectors written by the Rust code
// (crates/fundtrail-audit/tests/portal_vectors.rs): every ledger and receipt case must
// get the verdict `fundtrail verify` / `fundtrail verify-receipt` gives, with the same reason;
// ledgers that break a rule (roles, revoked keys, overspends) are refused at the same entry
// for the same rule, and the honest ledger's per-fund money is the report's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadLedger, vectors } from './vector-files.js';
import { b64decode, b64encode } from '../../src/core/bytes.js';
import { hashFromBase64, parseVkey } from '../../src/core/ledger.js';
import { FetchError, verifyLedger } from '../../src/core/verify.js';
import { verifyDonorReceipt } from '../../src/core/receipt.js';
import { parseReceiptLink } from '../../src/core/donor.js';
import { useWebCrypto } from '../../src/core/ed25519.js';

const log = parseVkey(vectors.vkey);

const ledgers = new Map();
function ledgerFiles(name) {
  if (!ledgers.has(name)) ledgers.set(name, loadLedger(name));
  return new Map([...ledgers.get(name)].map(([k, v]) => [k, v.slice()]));
}

function applyOps(files, ops) {
  for (const op of ops) {
    const data = files.get(op.file);
    if (op.xor) data[op.xor[0]] ^= op.xor[1];
    else if (op.truncate !== undefined) files.set(op.file, data.slice(0, op.truncate));
    else if (op.remove) files.delete(op.file);
    else if (op.splice) {
      const [start, end, insert] = op.splice;
      const ins = b64decode(insert);
      const out = new Uint8Array(data.length - (end - start) + ins.length);
      out.set(data.subarray(0, start));
      out.set(ins, start);
      out.set(data.subarray(end), start + ins.length);
      files.set(op.file, out);
    } else if (op.write) files.set(op.file, b64decode(op.write));
    else throw new Error(`unknown op ${JSON.stringify(op)}`);
  }
  return files;
}

function reader(files) {
  return async (path) => {
    const data = files.get(path);
    if (!data) throw new FetchError(path, 'not found', true);
    return data;
  };
}

/** BigInts as numbers (every amount is within ±(2^53−1)), as the Rust report's JSON has them. */
const jsonable = (value) => JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v)));

const previousOf = (p) => p && { origin: p.origin, size: BigInt(p.size), root: hashFromBase64(p.root) };

/** The part of a message both verifiers must agree on: up to a detail from another library. */
const core = (message) => message.split('; ')[0];

for (const engine of ['webcrypto', 'noble']) {
  for (const c of vectors.cases) {
    test(`ledger ${c.name} (${engine})`, async () => {
      useWebCrypto(engine === 'webcrypto');
      const files = applyOps(ledgerFiles(c.ledger), c.ops);
      let result;
      try {
        const r = await verifyLedger(reader(files), log, { previous: previousOf(c.previous) });
        result = { ok: true, entries: Number(r.entries), root: b64encode(r.checkpoint.root), funds: jsonable(r.funds) };
      } catch (e) {
        if (e.name !== 'VerifyFailure') throw e;
        result = { ok: false, index: e.index === null ? null : Number(e.index), kind: e.kind, message: e.message, rule: e.rule };
      }
      if (c.expect.ok) {
        assert.deepEqual(result, { ok: true, entries: c.expect.entries, root: c.expect.root, funds: c.expect.funds });
        return;
      }
      if (c.expect.rule) {
        // A broken rule: the same entry, the same rule, the same words.
        assert.deepEqual(result, { ok: false, index: c.expect.index, kind: c.expect.kind, message: c.expect.message, rule: c.expect.rule });
        return;
      }
      assert.equal(result.ok, false, `${c.name}: the browser accepted what fundtrail verify refuses: ${c.expect.message}`);
      assert.equal(result.index, c.expect.index, `${result.message} vs ${c.expect.message}`);
      // Rust's upper-tile check may name the tile or the tiles; both say the tiles lie.
      const kinds = c.expect.kind === 'Tile' && c.expect.index === null ? ['Tile', 'Tiles'] : [c.expect.kind === 'Consistency' ? result.kind : c.expect.kind];
      assert.ok(kinds.includes(result.kind), `kind ${result.kind}, Rust says ${c.expect.kind}: ${c.expect.message}`);
      if (c.expect.kind === 'Tiles' || (c.expect.kind === 'Tile' && c.expect.index === null)) {
        assert.match(result.message, /hash tiles? .*not consistent with the signed checkpoint|hash tiles are not consistent/);
      } else {
        assert.equal(core(result.message), core(c.expect.message));
      }
    });
  }
}

for (const r of vectors.receipts) {
  test(`receipt ${r.name}`, async () => {
    useWebCrypto(true);
    let result;
    try {
      const v = await verifyDonorReceipt({ receipt: b64decode(r.receipt), entry: b64decode(r.entry), reference: r.reference }, log);
      result = { ok: true, index: Number(v.index), amount_fen: Number(v.donation.amount_fen), channel: v.donation.channel,
        donor_commitment: v.donation.donor_commitment, donor_matched: v.donorMatched, fund: v.donation.fund };
    } catch (e) {
      if (e.name !== 'LedgerError') throw e;
      result = { ok: false, message: e.message };
    }
    assert.deepEqual(result, r.expect);
  });
}

test('the receipt link Rust writes parses to its index, salt and reference', () => {
  const l = vectors.receipt_link;
  const parsed = parseReceiptLink(l.path.split('/'));
  assert.equal(parsed.index, BigInt(l.index));
  assert.equal(b64encode(parsed.salt), l.salt);
  assert.equal(parsed.reference, l.reference);
});
