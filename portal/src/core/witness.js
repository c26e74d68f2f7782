// Witness policies in the browser: the check `fundtrail verify --policy` and
// `verify-receipt --policy` make (crates/fundtrail-audit/src/witnessed.rs `check_policy`),
// ported from crates/fundtrail-ledger/src/policy.rs (`Policy::parse`,
// `Policy::verify_checkpoint`, `quorum_met`, `quorum_witnesses`) and note.rs
// (`verify_cosigned_checkpoint`, `cosignature_message`).
//
// - C2SP tlog-policy (the Sigsum policy format): `log`, `witness`, `group`, `quorum` lines.
// - C2SP tlog-cosignature `cosignature/v1`: a witness's signature line in the checkpoint
//   note, key ID (4) ‖ timestamp (8, big-endian) ‖ Ed25519 over
//   "cosignature/v1\ntime <timestamp>\n" ‖ checkpoint body.
// - C2SP signed-note: every signature by a known key (the log's, a listed witness's) must
//   verify, else the note is refused; lines by unknown keys are ignored.
//
// Errors are PolicyError / WitnessError with the Rust message (the same words).

import { utf8 } from './bytes.js';
import { verifyStrict } from './ed25519.js';
import { LedgerError, SIGNATURE_TYPE_ED25519, parseCheckpointBody, parseVkeyOfType, precheckNote } from './ledger.js';

export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
export const POLICY_SIZE_MAX = 64 * 1024;
export const POLICY_LOGS_MAX = 32;
export const POLICY_WITNESSES_MAX = 64;
export const POLICY_GROUPS_MAX = 64;
const COSIGNATURE_TIMESTAMP_MAX = (1n << 63n) - 1n;
const NONE = 'none';

/** A policy file refused (policy.rs `PolicyError`). */
export class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** A checkpoint that does not satisfy the policy (policy.rs `PolicyCheckError`). */
export class WitnessError extends Error {
  constructor(kind, message, details = {}) {
    super(message);
    this.name = 'WitnessError';
    this.kind = kind;
    Object.assign(this, details);
  }
}

const hex8 = (n) => n.toString(16).padStart(8, '0');
/** Rust's `{:?}` of a plain string (close enough for names and words). */
const debug = (s) => JSON.stringify(s);
const quote = (word) => [...word].slice(0, 40).join('');

function keyErrorText(e) {
  return e instanceof LedgerError ? e.message : String(e.message || e);
}

/** Parses a policy file (C2SP tlog-policy); throws PolicyError. */
export function parsePolicy(input) {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  if (bytes.length > POLICY_SIZE_MAX) throw new PolicyError(`policy: ${bytes.length} bytes exceeds the maximum of ${POLICY_SIZE_MAX}`);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PolicyError('policy: not valid UTF-8');
  }
  const policy = { logs: [], witnesses: [], groups: [], quorum: null, quorumName: NONE };
  const names = new Map(); // name → {line, member: {witness: i} | {group: i}}
  const define = (name, line, member) => {
    if (name === NONE) throw new PolicyError(`policy line ${line}: "none" is predefined and cannot be defined or be a group member`);
    if (names.has(name)) throw new PolicyError(`policy line ${line}: the name ${debug(name)} is already defined on line ${names.get(name).line}`);
    names.set(name, { line, member });
  };
  const lookup = (name, line) => {
    if (name === NONE) throw new PolicyError(`policy line ${line}: "none" is predefined and cannot be defined or be a group member`);
    if (!names.has(name)) throw new PolicyError(`policy line ${line}: ${debug(name)} is not a witness or group defined on an earlier line`);
    return names.get(name).member;
  };
  const missing = (line, keyword, expected) => new PolicyError(`policy line ${line}: ${keyword} needs ${expected}`);
  const arity = (line, keyword, found, expected) => (found === 0 ? missing(line, keyword, expected)
    : new PolicyError(`policy line ${line}: ${keyword} has ${found} arguments, expected ${expected}`));
  const logLines = [];
  let quorumLine = null;
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    for (let j = 0; j < raw.length; j++) {
      const c = raw.charCodeAt(j);
      if ((c < 0x20 && c !== 9) || c === 0x7f) throw new PolicyError(`policy line ${line}: control character (only tab and newline are allowed)`);
    }
    const words = raw.split(/[ \t]/).filter((w) => w !== '');
    if (words.length === 0 || words[0].startsWith('#')) return;
    const [keyword, ...args] = words;
    if (keyword === 'log') {
      if (args.length < 1 || args.length > 2) throw arity(line, 'log', args.length, '1 or 2 (<vkey> [<url>])');
      let verifier;
      try {
        verifier = parseVkeyOfType(args[0], SIGNATURE_TYPE_ED25519);
      } catch (e) {
        throw new PolicyError(`policy line ${line}: log key: ${keyErrorText(e)}`);
      }
      const i = policy.logs.findIndex((l) => equalKeys(l.verifier, verifier));
      if (i >= 0) throw new PolicyError(`policy line ${line}: log ${verifier.name} is listed twice (same public key as line ${logLines[i]})`);
      if (policy.logs.length === POLICY_LOGS_MAX) throw new PolicyError(`policy line ${line}: more than ${POLICY_LOGS_MAX} logs`);
      policy.logs.push({ verifier, url: args[1] ?? null });
      logLines.push(line);
    } else if (keyword === 'witness') {
      if (args.length < 2) throw missing(line, 'witness', 'a name and a vkey (<name> <vkey> [<url>])');
      if (args.length > 3) throw arity(line, 'witness', args.length, '2 or 3 (<name> <vkey> [<url>])');
      const [name, vkey, url = null] = args;
      let verifier;
      try {
        verifier = parseVkeyOfType(vkey, SIGNATURE_TYPE_COSIGNATURE_V1);
      } catch (e) {
        throw new PolicyError(`policy line ${line}: witness ${name}: ${keyErrorText(e)}`);
      }
      const other = policy.witnesses.find((w) => equalKeys(w.verifier, verifier));
      if (other) throw new PolicyError(`policy line ${line}: witness ${name} has the same public key as witness ${other.name}`);
      if (policy.witnesses.length === POLICY_WITNESSES_MAX) throw new PolicyError(`policy line ${line}: more than ${POLICY_WITNESSES_MAX} witnesses`);
      define(name, line, { witness: policy.witnesses.length });
      policy.witnesses.push({ name, verifier, url });
    } else if (keyword === 'group') {
      if (args.length < 2) throw missing(line, 'group', 'a name, a threshold and members (<name> all|any|<k> <name>...)');
      const [name, threshold, ...memberNames] = args;
      if (memberNames.length === 0) throw missing(line, 'group', 'at least one member');
      const members = [];
      for (const m of memberNames) {
        const found = lookup(m, line);
        if (members.some((x) => x.witness === found.witness && x.group === found.group)) {
          throw new PolicyError(`policy line ${line}: group ${name} lists ${m} twice`);
        }
        members.push(found);
      }
      const n = members.length;
      const bad = () => new PolicyError(`policy line ${line}: group ${name}: threshold ${debug(quote(threshold))} must be all, any or a number 1..=${n}`);
      let k;
      if (threshold === 'all') k = n;
      else if (threshold === 'any') k = 1;
      else if (/^[0-9]+$/.test(threshold)) k = threshold.length > 15 ? Infinity : Number(threshold);
      else throw bad();
      if (!(k >= 1 && k <= n)) throw bad();
      if (policy.groups.length === POLICY_GROUPS_MAX) throw new PolicyError(`policy line ${line}: more than ${POLICY_GROUPS_MAX} groups`);
      define(name, line, { group: policy.groups.length });
      policy.groups.push({ name, threshold: k, members });
    } else if (keyword === 'quorum') {
      if (quorumLine !== null) throw new PolicyError(`policy line ${line}: a second quorum line (the first is on line ${quorumLine})`);
      if (args.length !== 1) throw arity(line, 'quorum', args.length, '1 (a witness or group name, or none)');
      policy.quorum = args[0] === NONE ? null : lookup(args[0], line);
      policy.quorumName = args[0];
      quorumLine = line;
    } else {
      throw new PolicyError(`policy line ${line}: unknown keyword ${debug(quote(keyword))} (expected log, witness, group or quorum)`);
    }
  });
  if (quorumLine === null) throw new PolicyError('policy: no quorum line (write `quorum none` to require no cosignature)');
  return policy;
}

function equalKeys(a, b) {
  return a.publicKey.length === b.publicKey.length && a.publicKey.every((x, i) => x === b.publicKey[i]);
}

/** policy.rs `quorum_met`: groups name only earlier groups, so one pass evaluates them. */
function quorumMet(policy, cosigned) {
  const groupsMet = [];
  const met = (m) => (m.witness !== undefined ? cosigned[m.witness] : groupsMet[m.group]);
  for (const g of policy.groups) groupsMet.push(g.members.filter(met).length >= g.threshold);
  return policy.quorum === null ? true : met(policy.quorum);
}

/** policy.rs `quorum_witnesses`: the witnesses that can count towards the quorum. */
function quorumWitnesses(policy) {
  const out = new Set();
  const todo = policy.quorum === null ? [] : [policy.quorum];
  while (todo.length) {
    const m = todo.pop();
    if (m.witness !== undefined) out.add(policy.witnesses[m.witness].name);
    else todo.push(...policy.groups[m.group].members);
  }
  return out;
}

/** note.rs `cosignature_message`. */
function cosignatureMessage(body, timestamp) {
  return utf8(`cosignature/v1\ntime ${timestamp}\n${body}`);
}

/**
 * Checks a signed checkpoint note against `policy` (witnessed.rs `check_policy`): a
 * listed log's signature, every listed witness's cosignature present (one that does not
 * verify refuses the note), then the quorum. Returns {checkpoint, quorum, cosigned_by:
 * [{witness, key_name, timestamp}], missing}; throws WitnessError (or LedgerError for a
 * malformed note) with the Rust message.
 */
export async function checkPolicy(note, policy) {
  const text = new TextDecoder().decode(note);
  const origin = text.split('\n')[0];
  const logs = policy.logs.map((l) => l.verifier).filter((v) => v.name === origin);
  if (logs.length === 0) throw new WitnessError('UnknownLog', `checkpoint of log ${debug(origin)}: the policy lists no log of that name`);
  let outcome = null;
  for (const log of logs) {
    try {
      outcome = await verifyCosigned(note, log, policy.witnesses.map((w) => w.verifier));
      break;
    } catch (e) {
      outcome = e;
    }
  }
  if (outcome instanceof Error) throw new WitnessError('Note', outcome.message);
  const { checkpoint, cosignatures } = outcome;
  const find = (w) => cosignatures.find((c) => c.name === w.verifier.name && c.keyId === w.verifier.keyId);
  const cosigned = policy.witnesses.map((w) => !!find(w));
  const cosignedBy = policy.witnesses.filter((w) => find(w)).map((w) => ({ witness: w.name, key_name: w.verifier.name, timestamp: find(w).timestamp }));
  const missing = policy.witnesses.filter((_, i) => !cosigned[i]).map((w) => w.name);
  if (!quorumMet(policy, cosigned)) {
    const relevant = quorumWitnesses(policy);
    const signed = cosignedBy.map((c) => c.witness);
    const absent = missing.filter((n) => relevant.has(n));
    const list = (names) => (names.length ? names.join(', ') : 'none');
    throw new WitnessError('QuorumNotMet',
      `checkpoint ${checkpoint.origin} size ${checkpoint.size} lacks the witness quorum ${policy.quorumName}: cosigned by ${list(signed)}; missing ${list(absent)}`,
      { cosigned_by: cosignedBy, missing: absent, quorum: policy.quorumName });
  }
  return { checkpoint, quorum: policy.quorumName, cosigned_by: cosignedBy, missing };
}

/** note.rs `verify_cosigned_checkpoint`: the log's signature and every known witness's. */
async function verifyCosigned(note, log, witnesses) {
  const { text, signatures } = precheckNote(note);
  const message = utf8(text);
  let logSigned = false;
  const cosignatures = [];
  for (const s of signatures) {
    if (s.name === log.name && s.id === log.keyId) {
      if (!(await verifyStrict(log.key, s.signature, message))) throw new LedgerError('BadSignature', `signed note: signature by ${log.name}+${hex8(log.keyId)} does not verify`);
      logSigned = true;
      continue;
    }
    const w = witnesses.find((v) => v.name === s.name && v.keyId === s.id);
    if (!w) continue; // unknown keys are ignored (C2SP signed-note)
    const bad = () => new LedgerError('BadSignature', `signed note: signature by ${w.name}+${hex8(w.keyId)} does not verify`);
    if (s.signature.length !== 72) throw bad();
    let timestamp = 0n;
    for (let i = 0; i < 8; i++) timestamp = (timestamp << 8n) | BigInt(s.signature[i]);
    if (timestamp > COSIGNATURE_TIMESTAMP_MAX) throw new LedgerError('Timestamp', `signed note: cosignature by ${w.name}: timestamp ${timestamp} exceeds 2^63 - 1`);
    if (!(await verifyStrict(w.key, s.signature.subarray(8), cosignatureMessage(text, timestamp)))) throw bad();
    cosignatures.push({ name: w.name, keyId: w.keyId, timestamp: Number(timestamp) });
  }
  if (!logSigned) throw new LedgerError('UnknownKey', `signed note: not signed by the known key ${log.name}+${hex8(log.keyId)}`);
  const checkpoint = parseCheckpointBody(text);
  if (checkpoint.origin !== log.name) {
    throw new LedgerError('OriginMismatch', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the log's name ${JSON.stringify(log.name)}`);
  }
  return { checkpoint, cosignatures };
}
