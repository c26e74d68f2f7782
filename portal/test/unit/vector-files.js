// The Rust-written golden vectors (crates/fundtrail-audit/tests/portal_vectors.rs) as the
// unit tests read them: the case list and each ledger's files by their path in the ledger.
// Shared by vectors.test.js and trace.test.js.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../vectors/', import.meta.url));

/** vectors.json: the log's vkey and the cases. */
export const vectors = JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8'));

/** Every file of ledger `name`, keyed by its path inside the ledger (e.g. `tile/0/000`). */
export function loadLedger(name) {
  const root = join(dir, 'ledgers', name);
  const files = new Map();
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(relative(root, p), new Uint8Array(readFileSync(p)));
    }
  };
  walk(root);
  return files;
}
