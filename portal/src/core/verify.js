// The whole ledger, verified as `fundtrail verify` does (crates/fundtrail-audit/src/verify.rs),
// trusting none of the files: the checkpoint's signature; consistency with the last
// checkpoint seen (fork, rollback); every hash tile against the signed root; every entry
// bundle against its level-0 tile; the hash chain; every event's Ed25519 signature by a
// key enrolled earlier in the ledger; then the fund's rules, replayed by rules.js (a port
// of crates/fundtrail-domain/src/rules.rs): that the signing key held a role allowed for
// the event type, in the right scope (host or fund), as key enrolments, role grants,
// revocations and rotations left it (the roles and scopes come from catalogue.json,
// generated from the Rust event catalogue); committees, votes and majorities; the money
// (per fund: received, refunded, reserved, paid; available never negative; approvals
// within what was requested and what is available; payouts never beyond the approval;
// refunds within the donation); pledges, receipts, goods on hand, disclosures' totals and
// (v2) the year's accounts they cite (rules.js `checkCitation`).
//
// Envelopes and payloads are read as `fundtrail_envelope::open` reads them: strict JSON
// (strict.js, a port of strict.rs: no duplicate key, no float, integers within ±(2^53−1)),
// then the event schemas of `schemas/` — the files the Rust code embeds — with Ajv
// (schema.js).
//
// Not replayed here, where `fundtrail verify` may still refuse a ledger this accepts:
// - what `Event::from_json` checks beyond the schemas (a date that matches the pattern
//   but does not exist, such as 2026-02-30);
// - a disclosure's period dates (`Refusal::DisclosurePeriod`).
//
// A failure is a VerifyFailure {index (BigInt|null), kind, message, rule?}, where kind is
// the Rust `Cause` variant, message its text ("entry N: …") and rule, for a broken
// rule, the Rust `Refusal::code()`.

import { b64decode, equalBytes, fromHex, hex, utf8, utf8Decode, concat } from './bytes.js';
import { parsePublicKey, verifyStrict } from './ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  Chain, LedgerError, TILE_WIDTH, decodeEntry, decodeBundle, lenientEntries, leafHash, nodeHash, showHash,
  tilePath, treeHash, verifyCheckpoint,
} from './ledger.js';
import { RuleBreak, RulesState, fundReports } from './rules.js';
import { validateEvent } from './schema.js';
import { StrictJsonError, parseStrict } from './strict.js';

export const PAYLOAD_TYPE = 'application/vnd.fundtrail.event+json';
export const TILE_BYTES_MAX = TILE_WIDTH * 32;
export const CHECKPOINT_BYTES_MAX = 16 * 1024;
export const ENTRY_BUNDLE_BYTES_MAX = TILE_WIDTH * (2 + 65535);

export class VerifyFailure extends Error {
  constructor(index, kind, cause, rule = null) {
    super(index === null ? cause : `entry ${index}: ${cause}`);
    this.name = 'VerifyFailure';
    this.index = index;
    this.kind = kind;
    this.cause_text = cause;
    this.rule = rule;
  }
}

/** A file that could not be read: `location` names it. */
export class FetchError extends Error {
  constructor(location, cause, notFound = false) {
    super(notFound ? `${location}: not found` : `${location}: ${cause}`);
    this.name = 'FetchError';
    this.location = location;
    this.notFound = notFound;
  }
}

const fail = (index, kind, cause, rule = null) => new VerifyFailure(index, kind, cause, rule);

/**
 * A ledger source over `read(path, bytesMax)` → Uint8Array (throws FetchError).
 * Partial tiles that are gone are read from the full tile (C2SP tlog-tiles).
 */
export function tileReader(read) {
  return async function readTile(level, n, width) {
    const path = tilePath(level, n, width);
    const max = level === 'entries' ? ENTRY_BUNDLE_BYTES_MAX : TILE_BYTES_MAX;
    try {
      return await read(path, max);
    } catch (e) {
      if (!(e instanceof FetchError) || !e.notFound || width === TILE_WIDTH) throw e;
      const fullPath = tilePath(level, n, TILE_WIDTH);
      let data;
      try {
        data = await read(fullPath, max);
      } catch (e2) {
        if (e2 instanceof FetchError && e2.notFound) throw e;
        throw e2;
      }
      return cutToWidth(level, width, fullPath, data);
    }
  };
}

function cutToWidth(level, width, fullPath, data) {
  let keep;
  if (level === 'entries') {
    keep = 0;
    for (let p = 0; p < width; p++) {
      if (keep + 2 > data.length) throw new FetchError(fullPath, `entry ${p} truncated`);
      keep += 2 + ((data[keep] << 8) | data[keep + 1]);
    }
  } else {
    keep = width * 32;
  }
  if (data.length < keep) throw new FetchError(fullPath, `${data.length} bytes, fewer than the ${keep} of the first ${width} items`);
  return data.subarray(0, keep);
}

function tileWidth(n, size) {
  const start = BigInt(n) * 256n;
  const rest = size - start;
  return Number(rest < 256n ? rest : 256n);
}

/** Hashes of a hash tile's bytes, or an error when the length is wrong. */
function tileHashes(path, data, width) {
  if (data.length !== width * 32) throw new LedgerError('TileSize', `tile ${path}: ${data.length} bytes, expected ${width * 32}`);
  const out = [];
  for (let i = 0; i < width; i++) out.push(data.subarray(32 * i, 32 * i + 32));
  return out;
}

// ---------------------------------------------------------------------------------
// Events: the envelope checks of fundtrail_envelope::open

const KEYID_RE = /^[0-9a-f]{32}$/;

function pae(payload) {
  const type = utf8(PAYLOAD_TYPE);
  return concat(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload);
}

/** Keys enrolled so far: keyid → parsed public key. */
export class KeyRing {
  constructor() {
    this.keys = new Map();
  }

  static keyIdOf(publicKey) {
    return hex(sha256(publicKey).subarray(0, 16));
  }

  /** Remembers the key an event enrols (host.established, key.enrolled). */
  learn(event) {
    const body = event && event.body;
    if (!body) return;
    let id, b64;
    if (event.type === 'host.established') [id, b64] = [body.host_key, body.public_key];
    else if (event.type === 'key.enrolled') [id, b64] = [body.key, body.public_key];
    else return;
    const bytes = typeof b64 === 'string' ? b64decode(b64.trim()) : null;
    const key = bytes && bytes.length === 32 ? parsePublicKey(bytes) : null;
    if (key && typeof id === 'string') this.keys.set(id, key);
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What kind of JSON value `v` is, for an error (the words serde_json's readers use). */
function jsonKind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return { boolean: 'a boolean', number: 'a number', bigint: 'a number', string: 'a string', object: 'an object' }[typeof v] ?? typeof v;
}

/** Opens an envelope: shape, signature by a known key (or genesis), payload, author. */
export async function openEnvelope(envelopeBytes, ring) {
  const text = utf8Decode(envelopeBytes);
  let wire;
  try {
    if (text === null) throw new Error('not UTF-8');
    wire = parseStrict(text);
  } catch (e) {
    throw new LedgerError('EnvelopeJson', `envelope is not strict JSON: ${e.message}`);
  }
  // The envelope and each signature are JSON objects, not arrays of their fields
  // (docs/design.md §3.3); the words are fundtrail-envelope's (`WireEnvelope::from_json`).
  const shape = (detail) => new LedgerError('Shape', `envelope does not have the DSSE shape${detail ? `: ${detail}` : ''}`);
  if (!isObject(wire)) throw shape(`expected an object, found ${jsonKind(wire)}`);
  const notObject = Array.isArray(wire.signatures) ? wire.signatures.find((s) => !isObject(s)) : undefined;
  if (notObject !== undefined) throw shape(`signatures: expected objects, found ${jsonKind(notObject)}`);
  const shapeOk = typeof wire.payload === 'string' && typeof wire.payloadType === 'string' && Array.isArray(wire.signatures)
    && Object.keys(wire).every((k) => ['payload', 'payloadType', 'signatures'].includes(k));
  if (!shapeOk) throw shape();
  if (wire.payloadType !== PAYLOAD_TYPE) {
    throw new LedgerError('PayloadType', `payloadType is ${JSON.stringify(wire.payloadType)}, expected ${JSON.stringify(PAYLOAD_TYPE)}`);
  }
  if (wire.signatures.length !== 1) {
    throw new LedgerError('SignatureCount', `envelope has ${wire.signatures.length} signatures, exactly 1 is required (the author's)`);
  }
  const signature = wire.signatures[0];
  if (!signature || typeof signature.keyid !== 'string' || typeof signature.sig !== 'string') {
    throw new LedgerError('Shape', 'envelope does not have the DSSE shape');
  }
  const payload = b64decode(wire.payload);
  if (!payload) throw new LedgerError('Base64', 'payload is not standard base64');
  const sig = b64decode(signature.sig);
  if (!sig) throw new LedgerError('Base64', 'sig is not standard base64');
  if (sig.length !== 64) throw new LedgerError('SignatureLength', `signature is ${sig.length} bytes, an Ed25519 signature is 64`);
  const keyid = signature.keyid;
  if (!KEYID_RE.test(keyid)) throw new LedgerError('KeyIdFormat', `keyid ${JSON.stringify(keyid)} is not a FundTrail key id (32 lowercase hex digits)`);
  let event;
  try {
    event = JSON.parse(utf8Decode(payload));
  } catch {
    event = null;
  }
  let key = ring.keys.get(keyid);
  if (!key && event && event.type === 'host.established' && event.body && event.body.host_key === keyid) {
    const bytes = typeof event.body.public_key === 'string' ? b64decode(event.body.public_key.trim()) : null;
    if (bytes && bytes.length === 32 && KeyRing.keyIdOf(bytes) === keyid) key = parsePublicKey(bytes);
  }
  if (!key) throw new LedgerError('UnknownKey', `unknown key ${keyid}: it is not enrolled`);
  if (!(await verifyStrict(key, sig, pae(payload)))) {
    throw new LedgerError('BadSignature', `signature by ${keyid} does not verify over this payload`);
  }
  // As `fundtrail_envelope::read_payload`: strict JSON, then the schemas, then the author.
  try {
    const payloadText = utf8Decode(payload);
    if (payloadText === null) throw new StrictJsonError('malformed JSON: not UTF-8');
    event = parseStrict(payloadText);
  } catch (e) {
    throw new LedgerError('PayloadJson', `payload is not strict JSON: ${e.message}`);
  }
  try {
    validateEvent(event);
  } catch (e) {
    throw new LedgerError('Schema', `payload does not match its schema: ${e.message}`);
  }
  if (event.author !== keyid) throw new LedgerError('AuthorMismatch', `event author ${event.author} is not the signer ${keyid}`);
  return { event, keyid, signature: signature.sig };
}

// ---------------------------------------------------------------------------------
// The whole ledger

/**
 * Verifies the ledger read through `read(path, bytesMax)` against the log key `log`
 * (from ledger.parseVkey). Options: previous ({origin, size, root}) — the last
 * checkpoint this verifier saw; progress(done, total); onEvent(index, opened, rules) —
 * called for each verified event, once the replayed state `rules` has applied it.
 */
export async function verifyLedger(read, log, options = {}) {
  const { previous = null, progress = () => {}, onEvent = null } = options;
  let note;
  try {
    note = await read('checkpoint', CHECKPOINT_BYTES_MAX);
  } catch (e) {
    throw fail(null, 'Fetch', `cannot read ${e.message}`);
  }
  let checkpoint;
  try {
    checkpoint = await verifyCheckpoint(note, log);
  } catch (e) {
    throw fail(null, 'Checkpoint', `checkpoint refused: ${e.message}`);
  }
  const size = checkpoint.size;
  const readTile = tileReader(read);
  if (previous) checkPreviousSizes(previous, checkpoint);

  // Every level-0 hash tile, then the tree they make: it must have the signed root.
  const bundles = Number((size + 255n) / 256n);
  const level0 = [];
  for (let n = 0; n < bundles; n++) {
    const width = tileWidth(n, size);
    const path = tilePath(0, n, width);
    let data;
    try {
      data = await readTile(0, n, width);
    } catch (e) {
      throw fail(BigInt(n) * 256n, 'Fetch', `cannot read ${e.message}`);
    }
    try {
      level0.push(tileHashes(path, data, width));
    } catch (e) {
      throw fail(BigInt(n) * 256n, 'Tile', `hash tile ${path} is not consistent with the signed checkpoint: ${e.message}`);
    }
  }
  const leaves = level0.flat();
  const rootOk = equalBytes(treeHash(leaves), checkpoint.root);
  // The first level-0 tile that lies, if the root does not match: found by its bundle.
  let badTile = rootOk ? bundles : -1;
  const bundleData = new Map();
  const getBundle = async (n) => {
    if (bundleData.has(n)) return bundleData.get(n);
    const width = tileWidth(n, size);
    let data;
    try {
      data = await readTile('entries', n, width);
    } catch (e) {
      throw fail(BigInt(n) * 256n, 'Fetch', `cannot read ${e.message}`);
    }
    bundleData.set(n, data);
    return data;
  };
  if (!rootOk) {
    for (let n = 0; n < bundles && badTile < 0; n++) {
      const entries = lenientEntries(await getBundle(n));
      for (let p = 0; p < level0[n].length; p++) {
        if (entries[p] && !equalBytes(leafHash(entries[p]), level0[n][p])) {
          badTile = n;
          break;
        }
      }
    }
    if (badTile < 0) {
      throw fail(null, 'Tiles', `hash tiles are not consistent with the signed checkpoint: the level-0 tiles hash to ${showHash(treeHash(leaves))}, the checkpoint signs ${showHash(checkpoint.root)}`);
    }
  } else {
    await checkUpperTiles(readTile, leaves, size);
    if (previous) checkPreviousRoot(previous, checkpoint, leaves);
  }

  const chain = new Chain();
  const ring = new KeyRing();
  const rules = new RulesState();
  progress(0, size);
  for (let n = 0; n < bundles; n++) {
    const first = BigInt(n) * 256n;
    const width = tileWidth(n, size);
    const path = tilePath('entries', n, width);
    if (n === badTile) {
      const entries = lenientEntries(await getBundle(n));
      for (let p = 0; p < width; p++) {
        if (entries[p] && !equalBytes(leafHash(entries[p]), level0[n][p])) {
          const index = first + BigInt(p);
          throw fail(index, 'Tile', `hash tile ${tilePath(0, n, width)} is not consistent with the signed checkpoint: its hash ${p} is not the leaf hash of entry ${index}`);
        }
      }
    }
    const data = await getBundle(n);
    bundleData.delete(n);
    let entries;
    try {
      entries = decodeBundle(path, data, width);
      for (let p = 0; p < width; p++) {
        if (!equalBytes(leafHash(entries[p]), level0[n][p])) {
          throw new LedgerError('BundleHashMismatch', `entry bundle ${path}: entry ${p} does not hash to the level-0 tile's hash`);
        }
      }
    } catch (e) {
      throw diagnoseBundle(first, path, data, level0[n], e);
    }
    for (const entry of entries) {
      const index = chain.nextIndex;
      let decoded;
      try {
        decoded = chain.push(entry).decoded;
      } catch (e) {
        throw fail(index, 'Chain', `hash chain broken: ${e.message}`);
      }
      let opened;
      try {
        opened = await openEnvelope(decoded.envelope, ring);
      } catch (e) {
        throw fail(index, 'Fold', `replay refused the event: sequence ${index + 1n}: ${e.message}`);
      }
      let applied;
      try {
        applied = rules.evolve(opened.event);
      } catch (e) {
        if (!(e instanceof RuleBreak)) throw e;
        const ev = opened.event;
        throw fail(index, 'Fold', `replay refused the event: sequence ${index + 1n}: ${ev.type} ${ev.id} breaks a rule: ${e.message}`, e.rule);
      }
      // The fold learns a key only from an event it applied (Fold::cache_new_key).
      if (applied === 'applied') ring.learn(opened.event);
      if (onEvent) onEvent(index, opened, rules);
    }
    progress(chain.nextIndex, size);
  }
  // `rules`: the replayed state itself, for what the reports leave out (a gift's trace).
  return { checkpoint, entries: chain.nextIndex, leaves, funds: fundReports(rules), rules };
}

/** Rust's `diagnose_bundle`: name the first entry missing, cut, or not the signed one. */
function diagnoseBundle(first, path, data, hashes, error) {
  const entries = lenientEntries(data);
  for (let p = 0; p < Math.min(entries.length, hashes.length); p++) {
    const index = first + BigInt(p);
    const entry = entries[p];
    if (!entry) return fail(index, 'Bundle', `entry bundle ${path}: entry ${index} is truncated (the bundle ends inside it)`);
    if (!equalBytes(leafHash(entry), hashes[p])) {
      let hint;
      try {
        const carried = decodeEntry(entry).index;
        hint = carried !== index ? ` (it carries index ${carried}: entries reordered, dropped or inserted)` : ' (its bytes were altered)';
      } catch (e) {
        hint = ` (${e.message})`;
      }
      return fail(index, 'Bundle', `entry bundle ${path}: entry ${index} is not the entry the signed tree holds${hint}`);
    }
  }
  if (entries.length < hashes.length) {
    const index = first + BigInt(entries.length);
    return fail(index, 'Bundle', `entry bundle ${path}: ${entries.length} entries, ${hashes.length} expected: entry ${index} and after are missing`);
  }
  return fail(first + BigInt(hashes.length) - 1n, 'Bundle', `entry bundle ${path}: ${error.message}`);
}

/** Every upper hash tile of the tree must be the tile of the tree the leaves make. */
async function checkUpperTiles(readTile, leaves, size) {
  let level = leaves;
  for (let l = 1; size >> BigInt(8 * l) > 0n; l++) {
    // The level-l stored hashes: roots of complete 256^l-leaf subtrees.
    const next = [];
    for (let i = 0; i + 256 <= level.length; i += 256) next.push(treeHash(level.slice(i, i + 256)));
    level = next;
    const count = level.length;
    for (let n = 0; n * 256 < count; n++) {
      const width = Math.min(256, count - n * 256);
      const path = tilePath(l, n, width);
      let data;
      try {
        data = await readTile(l, n, width);
      } catch (e) {
        throw fail(null, 'Tiles', `hash tiles are not consistent with the signed checkpoint: tile ${e.message}`);
      }
      const ours = concat(...level.slice(n * 256, n * 256 + width));
      if (!equalBytes(data, ours)) {
        throw fail(null, 'Tiles', `hash tiles are not consistent with the signed checkpoint: hash tile ${path} differs from the tree of the level-0 tiles`);
      }
    }
  }
}

function checkPreviousSizes(previous, checkpoint) {
  if (previous.origin !== checkpoint.origin) {
    throw fail(null, 'OtherLog', `checkpoint of log ${JSON.stringify(checkpoint.origin)}, but the earlier checkpoint is of ${JSON.stringify(previous.origin)}`);
  }
  if (checkpoint.size < previous.size) {
    throw fail(null, 'Rollback', `rollback: checkpoint of size ${checkpoint.size} is older than the size ${previous.size} already seen`);
  }
  if (checkpoint.size === previous.size && !equalBytes(checkpoint.root, previous.root)) {
    throw fail(null, 'Fork', `fork: two checkpoints of size ${previous.size} with roots ${showHash(previous.root)} and ${showHash(checkpoint.root)}`);
  }
}

function checkPreviousRoot(previous, checkpoint, leaves) {
  if (previous.size === 0n || previous.size >= checkpoint.size) return;
  if (!equalBytes(treeHash(leaves, Number(previous.size)), previous.root)) {
    throw fail(null, 'Inconsistent', `checkpoint of size ${checkpoint.size} is not consistent with size ${previous.size}: consistency proof from size ${previous.size} to size ${checkpoint.size}: does not match the roots`);
  }
}

/** Whether a newer checkpoint extends `previous`, from the leaf hashes of the new tree. */
export function checkGrowth(previous, checkpoint, leaves) {
  checkPreviousSizes(previous, checkpoint);
  checkPreviousRoot(previous, checkpoint, leaves);
}

/** Fork, rollback, another log: from the sizes and roots alone (before any tile is read). */
export const checkSizes = checkPreviousSizes;

export { fromHex, nodeHash };
