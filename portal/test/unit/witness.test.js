// The browser's witness-policy check against golden vectors written by the Rust code
// (crates/fundtrail-audit/tests/portal_vectors.rs, `witness_vectors`): each cosigned
// checkpoint gets the verdict `fundtrail verify --policy` gives (who cosigned, who is
// missing, or the same refusal), and each broken policy is refused with the same words.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { utf8 } from '../../src/core/bytes.js';
import { useWebCrypto } from '../../src/core/ed25519.js';
import { checkPolicy, parsePolicy } from '../../src/core/witness.js';

const vectors = JSON.parse(readFileSync(fileURLToPath(new URL('../vectors/vectors.json', import.meta.url)), 'utf8')).witness;

for (const engine of ['webcrypto', 'noble']) {
  for (const c of vectors.checks) {
    test(`witness policy: ${c.name} (${engine})`, async () => {
      useWebCrypto(engine === 'webcrypto');
      const policy = parsePolicy(vectors.policy);
      let result;
      try {
        const r = await checkPolicy(utf8(c.note), policy);
        result = { ok: true, quorum: r.quorum, cosigned_by: r.cosigned_by, missing: r.missing };
      } catch (e) {
        if (e.name !== 'WitnessError') throw e;
        result = { ok: false, message: e.message };
      }
      assert.deepEqual(result, c.expect);
    });
  }
}

for (const p of vectors.bad_policies) {
  test(`policy refused: ${p.name}`, () => {
    assert.throws(() => parsePolicy(p.policy), (e) => e.name === 'PolicyError' && e.message === p.message);
  });
}

test('the vectors\' policy parses: one log, three witnesses, two of three', () => {
  const policy = parsePolicy(vectors.policy);
  assert.equal(policy.logs.length, 1);
  assert.deepEqual(policy.witnesses.map((w) => w.name), ['street', 'bureau', 'paper']);
  assert.equal(policy.quorumName, 'local');
  assert.equal(policy.witnesses[0].url, 'https://street.example/w');
});
