// A donor's receipt verified in the browser, as `fundtrail verify-receipt` does
// (crates/fundtrail-audit/src/receipt.rs), and the ledger's growth since then.

import { equalBytes } from './bytes.js';
import { LedgerError, parseReceipt, tilePath, treeHash, verifyCheckpoint, verifyReceipt, decodeBundle } from './ledger.js';
import { SALT_SIZE, donationOf, donorCommitment } from './donor.js';
import { CHECKPOINT_BYTES_MAX, VerifyFailure, checkGrowth, tileReader } from './verify.js';

/**
 * Offline checks: the checkpoint's signature, the inclusion proof, that the entry is a
 * donation and, given the donor's reference, the commitment. Throws a LedgerError with
 * the Rust message.
 */
export async function verifyDonorReceipt({ receipt, entry, reference = null }, log) {
  parseReceipt(receipt);
  const verified = await verifyReceipt(receipt, entry, log);
  const index = verified.index;
  const donation = donationOf(index, verified.envelope);
  let donorMatched = false;
  if (reference !== null && reference !== undefined) {
    if (!verified.extra || verified.extra.length !== SALT_SIZE) {
      throw new LedgerError('NoSalt', `receipt for entry ${index}: no 32-byte salt in its extra line, so the donor cannot be checked`);
    }
    if (donorCommitment(verified.extra, reference) !== donation.donor_commitment) {
      throw new LedgerError('DonorMismatch', `entry ${index}: the donor reference given does not open the donor commitment ${donation.donor_commitment}`);
    }
    donorMatched = true;
  }
  return { index, checkpoint: verified.checkpoint, leaf: verified.leaf, donation, donorMatched, salt: verified.extra };
}

/** Entry `index` from its bundle under the ledger's current, verified checkpoint. */
export async function fetchEntry(read, checkpoint, index) {
  if (index >= checkpoint.size) {
    throw new LedgerError('EntryMissing', `reading entry ${index} from the ledger: the ledger's checkpoint has only ${checkpoint.size} entries`);
  }
  const n = index / 256n;
  const rest = checkpoint.size - n * 256n;
  const width = Number(rest < 256n ? rest : 256n);
  let data;
  try {
    data = await tileReader(read)('entries', n, width);
  } catch (e) {
    throw new LedgerError('FetchEntry', `reading entry ${index} from the ledger: ${e.message}`);
  }
  let entries;
  try {
    entries = decodeBundle(tilePath('entries', n, width), data, width);
  } catch (e) {
    throw new LedgerError('EntryMissing', `reading entry ${index} from the ledger: ${e.message}`);
  }
  return entries[Number(index % 256n)];
}

/** The ledger's current checkpoint, verified. */
export async function currentCheckpoint(read, log) {
  let note;
  try {
    note = await read('checkpoint', CHECKPOINT_BYTES_MAX);
  } catch (e) {
    throw new VerifyFailure(null, 'Fetch', `cannot read ${e.message}`);
  }
  try {
    return await verifyCheckpoint(note, log);
  } catch (e) {
    throw new VerifyFailure(null, 'Checkpoint', `checkpoint refused: ${e.message}`);
  }
}

/**
 * That the ledger only grew: the current checkpoint `now` extends each earlier one
 * (same size: same root; smaller: a rollback; larger: its root is the root of the
 * first entries of the tree the level-0 tiles make, which must be the signed root).
 */
export async function checkOnlyGrew(read, now, earlier) {
  let leaves = null;
  for (const previous of earlier) {
    if (!previous) continue;
    if (previous.size < now.size && previous.size > 0n && leaves === null) leaves = await levelZeroLeaves(read, now);
    checkGrowth(previous, now, leaves || []);
  }
}

/** Every level-0 hash, from the tiles, which must make the signed root (the page's growth check too). */
export async function levelZeroLeaves(read, checkpoint) {
  const readTile = tileReader(read);
  const leaves = [];
  const tiles = Number((checkpoint.size + 255n) / 256n);
  for (let n = 0; n < tiles; n++) {
    const rest = checkpoint.size - BigInt(n) * 256n;
    const width = Number(rest < 256n ? rest : 256n);
    let data;
    try {
      data = await readTile(0, n, width);
    } catch (e) {
      throw new VerifyFailure(BigInt(n) * 256n, 'Fetch', `cannot read ${e.message}`);
    }
    if (data.length !== width * 32) {
      throw new VerifyFailure(null, 'Tiles', `hash tiles are not consistent with the signed checkpoint: tile ${tilePath(0, n, width)}: ${data.length} bytes, expected ${width * 32}`);
    }
    for (let i = 0; i < width; i++) leaves.push(data.subarray(32 * i, 32 * i + 32));
  }
  if (!equalBytes(treeHash(leaves), checkpoint.root)) {
    throw new VerifyFailure(null, 'Tiles', 'hash tiles are not consistent with the signed checkpoint: the level-0 tiles do not make the signed root');
  }
  return leaves;
}
