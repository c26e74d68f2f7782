// The ledger's public formats, as `fundtrail verify` reads them (crates/fundtrail-ledger):
// RFC 6962 hashing, FundTrail entries (index ‖ prev ‖ envelope), C2SP signed notes and
// tlog-checkpoints, C2SP tlog-proof receipts, RFC 9162 inclusion proofs and C2SP
// tlog-tiles paths and entry bundles. Every refusal is a LedgerError whose message is
// the Rust error's text, so that the browser and the CLI say the same thing.

import { sha256 } from '@noble/hashes/sha2.js';
import { b64decode, b64encode, concat, equalBytes, hex, readU64, utf8, utf8Decode } from './bytes.js';
import { parsePublicKey, verifyStrict } from './ed25519.js';

export const HASH_SIZE = 32;
export const ENTRY_HEADER_SIZE = 40;
export const ENTRY_SIZE_MAX = 65535;
export const ENVELOPE_SIZE_MAX = 49152;
export const NOTE_SIZE_MAX = 16 * 1024;
export const NOTE_SIGNATURES_MAX = 32;
export const KEY_NAME_LEN_MAX = 256;
export const ORIGIN_LEN_MAX = 256;
export const CHECKPOINT_BODY_LEN_MAX = ORIGIN_LEN_MAX + 20 + 44 + 3;
export const INCLUSION_PROOF_HASHES_MAX = 64;
export const RECEIPT_HEADER = 'c2sp.org/tlog-proof@v1';
export const RECEIPT_EXTRA_SIZE_MAX = 1024;
export const RECEIPT_SIZE_MAX = 64 + 2 * RECEIPT_EXTRA_SIZE_MAX + 32 + 45 * INCLUSION_PROOF_HASHES_MAX + NOTE_SIZE_MAX;
export const TILE_WIDTH = 256;
export const SIGNATURE_TYPE_ED25519 = 0x01;
export const U64_MAX = 2n ** 64n - 1n;

/** A refusal: `code` names the Rust error variant, `message` is its text. */
export class LedgerError extends Error {
  constructor(code, message, detail = {}) {
    super(message);
    this.name = 'LedgerError';
    this.code = code;
    Object.assign(this, detail);
  }
}

export const ZERO_HASH = new Uint8Array(32);
export const EMPTY_ROOT = sha256(new Uint8Array(0));

export const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
export function nodeHash(left, right) {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

/** Hash display, as Rust's `Display` for `Hash` (standard base64). */
export const showHash = (h) => b64encode(h);
/** A 32-byte hash from standard base64, or null. */
export function hashFromBase64(text) {
  const bytes = b64decode(text);
  return bytes && bytes.length === 32 ? bytes : null;
}

// ---------------------------------------------------------------------------------
// Entries and the chain (entry.rs)

export function decodeEntry(bytes) {
  if (bytes.length > ENTRY_SIZE_MAX) {
    throw new LedgerError('EntryOversize', `entry: ${bytes.length} bytes exceeds the maximum of ${ENTRY_SIZE_MAX}`);
  }
  if (bytes.length < ENTRY_HEADER_SIZE) {
    throw new LedgerError('EntryShort', `entry: ${bytes.length} bytes is shorter than the ${ENTRY_HEADER_SIZE}-byte header`);
  }
  const index = readU64(bytes, 0);
  const prev = bytes.subarray(8, 40);
  const envelope = bytes.subarray(40);
  if (envelope.length === 0) throw new LedgerError('EnvelopeEmpty', `entry ${index}: envelope is empty`);
  if (envelope.length > ENVELOPE_SIZE_MAX) {
    throw new LedgerError(
      'EnvelopeOversize',
      `entry ${index}: envelope of ${envelope.length} bytes exceeds the maximum of ${ENVELOPE_SIZE_MAX}`,
    );
  }
  return { index, prev, envelope };
}

/** The hash chain: index continuity and prev links (entry.rs `Chain`). */
export class Chain {
  constructor(nextIndex = 0n, prev = ZERO_HASH) {
    this.nextIndex = BigInt(nextIndex);
    this.prev = prev;
  }

  /** Checks that `entry` is the next link and returns its leaf hash. */
  push(entry) {
    const position = this.nextIndex;
    let decoded;
    try {
      decoded = decodeEntry(entry);
    } catch (e) {
      throw new LedgerError('ChainMalformed', `chain: entry at position ${position}: ${e.message}`);
    }
    if (decoded.index !== position) {
      throw new LedgerError('IndexGap', `chain: entry at position ${position} has index ${decoded.index}`);
    }
    if (!equalBytes(decoded.prev, this.prev)) {
      if (position === 0n) {
        throw new LedgerError('FirstPrevNotZero', `chain: entry 0: prev must be all zeros, found ${hex(decoded.prev)}`);
      }
      throw new LedgerError(
        'PrevMismatch',
        `chain: entry ${position}: prev is ${hex(decoded.prev)}, but the leaf hash of entry ${position - 1n} is ${hex(this.prev)}`,
      );
    }
    const hash = leafHash(entry);
    this.prev = hash;
    this.nextIndex = position + 1n;
    return { hash, decoded };
  }
}

// ---------------------------------------------------------------------------------
// Checkpoints (checkpoint.rs)

function originError(origin) {
  if (origin.length === 0) return new LedgerError('OriginEmpty', 'checkpoint origin: empty');
  const size = utf8(origin).length;
  if (size > ORIGIN_LEN_MAX) return new LedgerError('OriginTooLong', `checkpoint origin: ${size} bytes exceeds the maximum of ${ORIGIN_LEN_MAX}`);
  if (/[\s+\p{Cc}]/u.test(origin)) {
    return new LedgerError('OriginInvalid', `checkpoint origin ${JSON.stringify(origin)}: contains a space, a plus sign or a control character`);
  }
  return null;
}

export function parseCheckpointBody(text) {
  const size = utf8(text).length;
  if (size > CHECKPOINT_BODY_LEN_MAX) {
    throw new LedgerError('TooLong', `checkpoint body: ${size} bytes exceeds the maximum of ${CHECKPOINT_BODY_LEN_MAX}`);
  }
  if (!text.endsWith('\n')) throw new LedgerError('NoFinalNewline', 'checkpoint body: does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new LedgerError('TooFewLines', `checkpoint body: ${lines.length} lines, expected origin, size and root`);
  if (lines.length > 3) {
    throw new LedgerError('ExtraLines', `checkpoint body: ${lines.length} lines; extension lines are not accepted (exactly 3)`);
  }
  const [origin, sizeText, rootText] = lines;
  const bad = originError(origin);
  if (bad) throw bad;
  if (!/^[0-9]+$/.test(sizeText)) throw new LedgerError('SizeNotDecimal', `checkpoint tree size ${JSON.stringify(sizeText)}: not a decimal number`);
  if (sizeText.length > 1 && sizeText.startsWith('0')) throw new LedgerError('SizeLeadingZero', `checkpoint tree size ${JSON.stringify(sizeText)}: leading zeros`);
  const treeSize = BigInt(sizeText);
  if (treeSize > U64_MAX) throw new LedgerError('SizeOverflow', `checkpoint tree size ${JSON.stringify(sizeText)}: does not fit in 64 bits`);
  const root = hashFromBase64(rootText);
  if (!root) throw new LedgerError('RootMalformed', `checkpoint root ${JSON.stringify(rootText)}: not the standard base64 of a 32-byte hash`);
  return { origin, size: treeSize, root, body: text };
}

// ---------------------------------------------------------------------------------
// Signed notes and the log's key (note.rs)

function keyNameValid(name) {
  return name.length > 0 && utf8(name).length <= KEY_NAME_LEN_MAX && !/[\s+\p{Cc}]/u.test(name);
}

/** SHA-256(name ‖ "\n" ‖ type ‖ key)[:4] as a number (C2SP signed-note). */
export function keyId(name, type, publicKey) {
  const d = sha256(concat(utf8(name), Uint8Array.of(10, type), publicKey));
  return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
}
const hex8 = (n) => n.toString(16).padStart(8, '0');

/** The log's verifier key `<name>+<hex id>+<base64(0x01 ‖ key)>`. */
export function parseVkey(vkey) {
  return parseVkeyOfType(vkey, SIGNATURE_TYPE_ED25519);
}

/** A vkey of signature type `type` (0x01 a log's Ed25519 key, 0x04 a witness's cosignature/v1 key). */
export function parseVkeyOfType(vkey, type) {
  const malformed = () => new LedgerError('KeyMalformed', `verifier key ${JSON.stringify(vkey)}: not of the form <name>+<8 hex digits>+<base64 key>`);
  if (typeof vkey !== 'string') throw malformed();
  const first = vkey.indexOf('+');
  if (first < 0) throw malformed();
  const second = vkey.indexOf('+', first + 1);
  if (second < 0) throw malformed();
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  if (!keyNameValid(name)) throw new LedgerError('KeyNameInvalid', `key name ${JSON.stringify(name)}: must be 1..=${KEY_NAME_LEN_MAX} bytes without spaces or plus signs`);
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw malformed();
  const bytes = b64decode(vkey.slice(second + 1));
  if (!bytes || bytes.length === 0) throw malformed();
  if (bytes[0] !== type) {
    throw new LedgerError('KeyWrongType', `verifier key for ${name}: signature type 0x${bytes[0].toString(16).padStart(2, '0')}, expected 0x${type.toString(16).padStart(2, '0')}`);
  }
  if (bytes.length !== 33) throw malformed();
  const publicKey = bytes.subarray(1);
  const key = parsePublicKey(publicKey);
  if (!key) throw new LedgerError('BadPublicKey', `verifier key for ${name}: not a valid Ed25519 public key`);
  const id = keyId(name, type, publicKey);
  const found = parseInt(idHex, 16) >>> 0;
  if (found !== id) throw new LedgerError('KeyIdMismatch', `verifier key for ${name}: key ID ${hex8(found)} does not match the key (${hex8(id)})`);
  return { name, keyId: id, key, vkey, publicKey: publicKey.slice() };
}

/** The note's text and signature lines, with C2SP signed-note's format rules. */
export function precheckNote(note) {
  if (note.length > NOTE_SIZE_MAX) throw new LedgerError('NoteTooLarge', `signed note: ${note.length} bytes exceeds the maximum of ${NOTE_SIZE_MAX}`);
  const text = utf8Decode(note);
  if (text === null) throw new LedgerError('NoteNotUtf8', 'signed note: not valid UTF-8');
  for (let i = 0; i < note.length; i++) {
    if (note[i] < 0x20 && note[i] !== 10) throw new LedgerError('ControlCharacter', `signed note: control character at byte ${i}`);
  }
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new LedgerError('NoSignatures', 'signed note: no blank line before the signature lines');
  const body = text.slice(0, split + 1);
  let sigs = text.slice(split + 2);
  if (!sigs.endsWith('\n') || sigs.length === 1) throw new LedgerError('NoSignatures', 'signed note: no blank line before the signature lines');
  sigs = sigs.slice(0, -1);
  const lines = sigs.split('\n');
  if (lines.length > NOTE_SIGNATURES_MAX) throw new LedgerError('TooManySignatures', `signed note: ${lines.length} signature lines exceeds the maximum of ${NOTE_SIGNATURES_MAX}`);
  const parsed = lines.map((line, i) => {
    const bad = () => new LedgerError('BadSignatureLine', `signed note: signature line ${i + 1} is malformed`);
    if (!line.startsWith('— ')) throw bad();
    const rest = line.slice(2);
    const space = rest.indexOf(' ');
    if (space < 0) throw bad();
    const name = rest.slice(0, space);
    const sig = b64decode(rest.slice(space + 1));
    if (!sig || sig.length <= 4 || !keyNameValid(name)) throw bad();
    const id = ((sig[0] << 24) | (sig[1] << 16) | (sig[2] << 8) | sig[3]) >>> 0;
    return { name, id, signature: sig.subarray(4) };
  });
  return { text: body, signatures: parsed };
}

/** Verifies the log's signature on a signed note; returns its text. */
export async function verifyNote(note, log) {
  const { text, signatures } = precheckNote(note);
  const message = utf8(text);
  let verified = false;
  for (const s of signatures) {
    if (s.name !== log.name || s.id !== log.keyId) continue; // unknown keys are ignored
    if (!(await verifyStrict(log.key, s.signature, message))) {
      throw new LedgerError('BadSignature', `signed note: signature by ${log.name}+${hex8(log.keyId)} does not verify`);
    }
    verified = true;
  }
  if (!verified) throw new LedgerError('UnknownKey', `signed note: not signed by the known key ${log.name}+${hex8(log.keyId)}`);
  return text;
}

/** Verifies a signed checkpoint: the log signature, the body, the origin. */
export async function verifyCheckpoint(note, log) {
  const text = await verifyNote(note, log);
  const checkpoint = parseCheckpointBody(text);
  if (checkpoint.origin !== log.name) {
    throw new LedgerError('OriginMismatch', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the log's name ${JSON.stringify(log.name)}`);
  }
  checkpoint.note = note;
  return checkpoint;
}

// ---------------------------------------------------------------------------------
// Merkle trees (tree.rs, RFC 9162 §2.1)

const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
function popCount(n) {
  let c = 0;
  for (; n > 0n; n >>= 1n) c += Number(n & 1n);
  return c;
}

export function inclusionProofLen(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return inner + popCount(index >> BigInt(inner));
}

/** RFC 9162 §2.1.3.2. `index`, `size` as BigInt. Throws a LedgerError naming the fault. */
export function verifyInclusion(proof, index, size, leaf, root) {
  if (index >= size) throw new LedgerError('IndexOutOfRange', `inclusion proof for index ${index} in tree of size ${size}: index out of range`);
  if (proof.length > INCLUSION_PROOF_HASHES_MAX) {
    throw new LedgerError('ProofTooLong', `inclusion proof: ${proof.length} hashes exceeds the maximum of ${INCLUSION_PROOF_HASHES_MAX}`);
  }
  const expected = inclusionProofLen(index, size);
  if (proof.length !== expected) {
    throw new LedgerError('InclusionProofLength', `inclusion proof for index ${index} in tree of size ${size}: ${proof.length} hashes, expected ${expected}`);
  }
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equalBytes(r, root)) {
    throw new LedgerError('InclusionMismatch', `inclusion proof for index ${index} in tree of size ${size}: does not lead to the root`);
  }
}

/** The root of the first `n` leaves of `leaves` (an array of hashes), RFC 9162 MTH. */
export function treeHash(leaves, n = leaves.length) {
  if (n === 0) return EMPTY_ROOT;
  // Fold the perfect subtrees left to right, then combine right to left.
  const stack = [];
  let level = leaves.slice(0, n);
  // Bottom-up: compute each level, carrying the odd last node up unchanged.
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]));
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  stack.push(level[0]);
  return stack[0];
}

// ---------------------------------------------------------------------------------
// Receipts (receipt.rs, C2SP tlog-proof)

function receiptError(code, message) {
  return new LedgerError(code, message);
}

export function parseReceipt(bytes) {
  if (bytes.length > RECEIPT_SIZE_MAX) throw receiptError('TooLarge', `receipt: ${bytes.length} bytes exceeds the maximum of ${RECEIPT_SIZE_MAX}`);
  const text = utf8Decode(bytes);
  if (text === null) throw receiptError('NotUtf8', 'receipt: not valid UTF-8');
  let rest = text;
  const nextLine = () => {
    const at = rest.indexOf('\n');
    if (at < 0) return null;
    const line = rest.slice(0, at);
    rest = rest.slice(at + 1);
    return line;
  };
  const header = nextLine();
  if (header !== RECEIPT_HEADER) throw receiptError('BadHeader', `receipt: first line must be ${JSON.stringify(RECEIPT_HEADER)}`);
  const missingIndex = () => receiptError('MissingIndex', 'receipt: missing "index <n>" line');
  let line = nextLine();
  if (line === null) throw missingIndex();
  let extra = null;
  if (line.startsWith('extra')) {
    if (!line.startsWith('extra ')) throw receiptError('BadExtra', 'receipt: extra line is not "extra <standard base64>"');
    const b64 = line.slice(6);
    if (b64.length > 4 * Math.ceil(RECEIPT_EXTRA_SIZE_MAX / 3)) {
      throw receiptError('ExtraTooLarge', `receipt: extra of ${Math.floor(b64.length / 4) * 3} bytes exceeds the maximum of ${RECEIPT_EXTRA_SIZE_MAX}`);
    }
    extra = b64decode(b64);
    if (!extra) throw receiptError('BadExtra', 'receipt: extra line is not "extra <standard base64>"');
    line = nextLine();
    if (line === null) throw missingIndex();
  }
  if (!line.startsWith('index ')) throw missingIndex();
  const indexText = line.slice(6);
  if (!/^(0|[1-9][0-9]*)$/.test(indexText) || BigInt(indexText) > U64_MAX) {
    throw receiptError('BadIndex', `receipt: index ${JSON.stringify(indexText)} is not a decimal without leading zeros`);
  }
  const index = BigInt(indexText);
  const proof = [];
  for (;;) {
    const l = nextLine();
    if (l === null) throw receiptError('MissingCheckpoint', 'receipt: no empty line and checkpoint after the proof');
    if (l === '') break;
    if (proof.length === INCLUSION_PROOF_HASHES_MAX) {
      throw receiptError('TooManyProofHashes', `receipt: ${proof.length + 1} proof hashes exceeds the maximum of ${INCLUSION_PROOF_HASHES_MAX}`);
    }
    const h = hashFromBase64(l);
    if (!h) throw receiptError('BadProofHash', `receipt: proof line ${proof.length + 1} is not a base64 SHA-256 hash`);
    proof.push(h);
  }
  if (rest.length === 0) throw receiptError('MissingCheckpoint', 'receipt: no empty line and checkpoint after the proof');
  return { extra, index, proof, checkpoint: utf8(rest) };
}

/** Verifies a receipt for `entry` (bytes) against the log: receipt.rs `verify_receipt`. */
export async function verifyReceipt(receiptBytes, entry, log) {
  const receipt = parseReceipt(receiptBytes);
  const index = receipt.index;
  let decoded;
  try {
    decoded = decodeEntry(entry);
  } catch (e) {
    throw new LedgerError('ReceiptEntry', `receipt for index ${index}: ${e.message}`);
  }
  if (decoded.index !== index) {
    throw new LedgerError('EntryIndexMismatch', `receipt for index ${index}: the entry given has index ${decoded.index}`);
  }
  const leaf = leafHash(entry);
  let checkpoint;
  try {
    checkpoint = await verifyCheckpoint(receipt.checkpoint, log);
  } catch (e) {
    throw new LedgerError('ReceiptCheckpoint', `receipt for index ${index}: ${e.message}`, { cause: e });
  }
  try {
    verifyInclusion(receipt.proof, index, checkpoint.size, leaf, checkpoint.root);
  } catch (e) {
    throw new LedgerError('ReceiptInclusion', `receipt for index ${index}: ${e.message}`, { cause: e });
  }
  return { checkpoint, index, leaf, extra: receipt.extra, envelope: decoded.envelope };
}

// ---------------------------------------------------------------------------------
// Tiles (tiles.rs, C2SP tlog-tiles)

function tileIndexPath(n) {
  let index = String(n % 1000n).padStart(3, '0');
  while (n >= 1000n) {
    n /= 1000n;
    index = `x${String(n % 1000n).padStart(3, '0')}/${index}`;
  }
  return index;
}

/** `tile/<level>/<N>[.p/<W>]`; level 'entries' for an entry bundle. */
export function tilePath(level, n, width) {
  const base = `tile/${level}/${tileIndexPath(BigInt(n))}`;
  return width === TILE_WIDTH ? base : `${base}.p/${width}`;
}

/** Decodes an entry bundle of exactly `width` entries (tiles.rs `decode_entry_bundle`). */
export function decodeBundle(path, data, width) {
  const entries = [];
  let at = 0;
  while (at < data.length && entries.length < width) {
    const position = entries.length;
    if (at + 2 > data.length) throw new LedgerError('BundleTruncated', `entry bundle ${path}: entry ${position} truncated`);
    const len = (data[at] << 8) | data[at + 1];
    if (at + 2 + len > data.length) throw new LedgerError('BundleTruncated', `entry bundle ${path}: entry ${position} truncated`);
    entries.push(data.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  if (entries.length !== width) throw new LedgerError('BundleCount', `entry bundle ${path}: ${entries.length} entries, expected ${width}`);
  if (at !== data.length) throw new LedgerError('BundleTrailing', `entry bundle ${path}: ${data.length - at} trailing bytes after the last entry`);
  return entries;
}

/** Entries of a bundle as far as they parse (`null` for a truncated last one). */
export function lenientEntries(data) {
  const out = [];
  let at = 0;
  while (at < data.length && out.length < TILE_WIDTH) {
    if (at + 2 > data.length) {
      out.push(null);
      break;
    }
    const len = (data[at] << 8) | data[at + 1];
    if (at + 2 + len > data.length) {
      out.push(null);
      break;
    }
    out.push(data.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

export { b64encode, hex };
