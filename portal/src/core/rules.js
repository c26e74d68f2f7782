// The fund's rules, replayed in the browser so that its whole-ledger verdict is
// `fundtrail verify`'s. A port of crates/fundtrail-domain/src/rules.rs (`evolve`: `check`
// = `check_scope`, `authorise`, `check_body`; then `apply`, `apply_fund`), over the state
// of crates/fundtrail-domain/src/state.rs. Who may author what, and where, is not written
// here: it comes from catalogue.json, generated from the Rust event catalogue
// (event.rs `catalogue_json`, checked by crates/fundtrail-domain/tests/portal_catalogue.rs).
// Messages are the Rust `Refusal`'s Display texts (refusal.rs), and `rule` its `code()`.
//
// Money is BigInt fen with the Rust `Fen` range (±(2^53−1), money.rs `from_wide`).
//
// The event schemas are checked before the rules run (verify.js, schema.js), so every
// field a rule reads is there with its type; "not the shape the rules need" is left only
// for what the schemas allow and a rule cannot read.

import { b64decode } from './bytes.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hex } from './bytes.js';
import CATALOGUE from './catalogue.json' with { type: 'json' };

export { CATALOGUE };

export const HOST = CATALOGUE.host_scope;
const AMOUNT_FEN_MAX = (1n << 53n) - 1n;
const TEXT_CHARS_MAX = 2000;
const NAME_CHARS_MAX = 200;
const EVIDENCE_COUNT_MAX = 32;
const ITEMS_COUNT_MAX = 64;
const COMMITTEE_SIZE_MAX = 51;
const QUANTITY_MAX = 1_000_000_000n;
const YEAR_MIN = 2000;
const YEAR_MAX = 2200;

/** An event that breaks a rule: `rule` is the Rust Refusal's code(), `message` its text. */
export class RuleBreak extends Error {
  constructor(rule, message) {
    super(message);
    this.name = 'RuleBreak';
    this.rule = rule;
  }
}

const refuse = (rule, message) => new RuleBreak(rule, message);

// UTC times as the events write them (RFC 3339 with 'Z', up to nanoseconds; the schema's
// pattern has checked the shape): [seconds since 1970 (BigInt), nanoseconds (BigInt)].
function utcInstant(text) {
  const m = typeof text === 'string' ? /^([0-9T:-]+)(?:\.([0-9]+))?Z$/.exec(text) : null;
  if (!m) return null;
  const ms = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(ms)) return null;
  const nanos = m[2] ? BigInt(m[2].slice(0, 9).padEnd(9, '0')) : 0n;
  return [BigInt(ms) / 1000n, nanos];
}

const compareInstants = (a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1);

/** As Rust's `format_utc` (chrono `to_rfc3339_opts(SecondsFormat::AutoSi, true)`). */
function formatUtc([seconds, nanos]) {
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  let fraction = '';
  if (nanos !== 0n) {
    const digits = nanos.toString().padStart(9, '0');
    fraction = nanos % 1000000n === 0n ? `.${digits.slice(0, 3)}` : nanos % 1000n === 0n ? `.${digits.slice(0, 6)}` : `.${digits}`;
  }
  return `${base}${fraction}Z`;
}

// ---------------------------------------------------------------------------------
// money.rs: Fen, checked, and shown as ¥1,234.56 (format_yuan)

function inRange(wide) {
  if (wide > AMOUNT_FEN_MAX || wide < -AMOUNT_FEN_MAX) throw refuse('amount', `amount overflow: ${wide} fen is outside ±(2^53−1)`);
  return wide;
}
const add = (a, b) => inRange(a + b);
const sub = (a, b) => inRange(a - b);

export function formatYuan(fen) {
  const sign = fen < 0n ? '-' : '';
  const abs = fen < 0n ? -fen : fen;
  const digits = (abs / 100n).toString();
  const cents = (abs % 100n).toString().padStart(2, '0');
  return `${sign}¥${digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}

/** A body's integer field, as the rules need it (the schema itself is not replayed). */
function int(value, field) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw shape(field);
  return BigInt(value);
}
const shape = (field) => refuse('shape', `${field} is not the shape the rules need (the event schema is not replayed in the browser)`);
const str = (value, field) => {
  if (typeof value !== 'string') throw shape(field);
  return value;
};
const list = (value, field) => {
  if (!Array.isArray(value)) throw shape(field);
  return value;
};

// ---------------------------------------------------------------------------------
// shared helpers (rules.rs: text, count, evidence, positive, quantity, year)

function text(field, value, max) {
  str(value, field);
  if (/^\p{White_Space}*$/u.test(value)) throw refuse('shape', `${field} is empty`);
  const chars = [...value].length;
  if (chars > max) throw refuse('shape', `${field} has ${chars} characters, at most ${max} allowed`);
}

function count(field, n, min, max) {
  if (n < min) throw refuse('shape', `${field} has ${n} entries, at least ${min} needed`);
  if (n > max) throw refuse('shape', `${field} has ${n} entries, at most ${max} allowed`);
}

const evidence = (value) => count('evidence', list(value, 'evidence').length, 0, EVIDENCE_COUNT_MAX);

function positive(field, amount) {
  if (amount <= 0n) throw refuse('amount', `${field} must be positive, got ${formatYuan(amount)}`);
}

function quantity(field, q) {
  if (q === 0n || q > QUANTITY_MAX) throw refuse('goods', `${field} must be between 1 and ${QUANTITY_MAX}, got ${q}`);
}

function year(y) {
  if (typeof y !== 'number' || !Number.isInteger(y)) throw shape('year');
  if (y < YEAR_MIN || y > YEAR_MAX) throw refuse('disclosure', `year ${y} is outside ${YEAR_MIN}..=${YEAR_MAX}`);
}

// ---------------------------------------------------------------------------------
// state.rs

function newFund(body, at) {
  return {
    name: body.name, community: body.community, openedAt: at,
    committee: [],
    cash: { received: 0n, refunded: 0n, reserved: 0n, paid: 0n },
    byChannel: new Map(),
    donations: new Map(), receiptNumbers: new Map(),
    goods: new Map(), // "name\u0000unit" → {quantity, value, received}
    goodsReceivedValue: 0n, goodsDistributedValue: 0n,
    pledges: new Map(), proposals: new Map(),
    purposes: new Map(), // name → {retired}
    unrestricted: newPool(), restricted: new Map(), // name → pool
    gifts: 0,
    // state.rs `GoodsLots` (docs/design.md §1.6, "Goods"): each goods line a lot.
    lots: new Map(), // "name\u0000unit" → {unrestricted: [lot], restricted: Map(purpose → [lot])}, lots by ordinal
    lotCount: 0,
    goodsGifts: new Map(), // gift id → {purpose, lines: [{name, unit, quantity, unit_value_fen, ordinal, handed: [{distribution, quantity}]}]}
    distributions: new Map(), // event id → {proposal, purpose}
    accounts: new Map(), // year → yearAccounts (state.rs `YearAccounts`)
  };
}

/** The lots in stock of (name, unit) key `k` in `purpose`'s queue (null: unrestricted). */
function lotQueue(f, k, purpose) {
  const pools = f.lots.get(k);
  if (!pools) return [];
  return (purpose === null ? pools.unrestricted : pools.restricted.get(purpose)) || [];
}

const unitsIn = (queue) => queue.reduce((sum, lot) => sum + lot.left, 0n);

/** state.rs `Fund::goods_usable`: what a distribution serving `purpose` may take of key `k`, and what it may not. */
function goodsUsable(f, k, purpose) {
  const pools = f.lots.get(k);
  if (!pools) return { restricted: 0n, unrestricted: 0n, other: 0n };
  const restricted = purpose === null ? 0n : unitsIn(lotQueue(f, k, purpose));
  let all = 0n;
  for (const queue of pools.restricted.values()) all += unitsIn(queue);
  return { restricted, unrestricted: unitsIn(pools.unrestricted), other: all - restricted };
}

/** The purpose a distribution serves: its proposal's, or null (rules.rs `distribution_purpose`). */
function distributionPurpose(f, proposal) {
  if (proposal === null || proposal === undefined) return null;
  const p = f.proposals.get(proposal);
  return p ? p.purpose : null;
}

/** state.rs `Pool`: cash, and each gift's unspent money by ordinal (`order`: the ordinals, ascending). */
function newPool() {
  return { cash: { received: 0n, refunded: 0n, reserved: 0n, paid: 0n }, unspent: new Map(), order: [] };
}

const poolOf = (f, purpose) => (purpose === null ? f.unrestricted : f.restricted.get(purpose));

const available = (cash) => sub(sub(sub(cash.received, cash.refunded), cash.reserved), cash.paid);
const remainder = (p) => sub(sub(p.approved, p.paid), p.released);

/** The state the fold builds (state.rs `State`), as far as the rules read it. */
export class RulesState {
  constructor() {
    this.host = null;
    this.keys = new Set();
    /** scope → key → Set(role) */
    this.roles = new Map();
    this.funds = new Map();
    this.eventIds = new Set();
    this.annualReports = new Set();
    this.eventsApplied = 0;
  }

  rolesOf(scope, key) {
    const byKey = this.roles.get(scope);
    return byKey ? byKey.get(key) : undefined;
  }

  hasRole(scope, key, role) {
    const r = this.rolesOf(scope, key);
    return !!r && r.has(role);
  }

  /**
   * rules.rs `evolve`: checks every rule, then applies. Returns 'applied', or
   * 'duplicate' for an id applied before; throws RuleBreak.
   */
  evolve(event) {
    if (this.eventIds.has(event.id)) return 'duplicate';
    check(this, event);
    apply(this, event);
    this.eventIds.add(event.id);
    this.eventsApplied += 1;
    return 'applied';
  }
}

// ---------------------------------------------------------------------------------
// scope and authorisation (rules.rs check_scope, authorise)

function entryOf(type) {
  const entry = Object.hasOwn(CATALOGUE.events, type) ? CATALOGUE.events[type] : null;
  if (!entry) throw refuse('shape', `unknown event type ${JSON.stringify(type)} (the event schema is not replayed in the browser)`);
  return entry;
}

function checkScope(state, event) {
  const { scope } = entryOf(event.type);
  const isHost = event.fund === HOST;
  if (scope === 'host' && !isHost) throw refuse('fund', `${event.type} belongs in the host scope, not in ${event.fund}`);
  if (scope === 'fund' && isHost) throw refuse('fund', `${event.type} belongs in a fund, not in ${event.fund}`);
  if (!isHost && event.type !== 'fund.opened' && !state.funds.has(event.fund)) throw refuse('fund', `unknown fund ${event.fund}`);
}

function authorise(state, event) {
  if (event.type === 'host.established') {
    if (state.host) throw refuse('genesis', 'the host is already established; a second genesis is refused');
    if (event.body.host_key !== event.author) {
      throw refuse('genesis', `genesis must be signed by the host key it names (${event.body.host_key}), not ${event.author}`);
    }
    return;
  }
  if (!state.host) throw refuse('genesis', 'the host is not established yet: the first event must be host.established');
  if (!state.keys.has(event.author)) throw refuse('unknown-key', `unknown key ${event.author}: it was never enrolled`);
  const allowed = entryOf(event.type).roles;
  const holds = (role) => state.hasRole(CATALOGUE.roles[role].host_wide ? HOST : event.fund, event.author, role);
  if (!allowed.some(holds)) {
    throw refuse('role', `key ${event.author} may not author ${event.type} in ${event.fund}: it needs one of the roles [${allowed.join(', ')}] there`);
  }
}

// ---------------------------------------------------------------------------------
// per-type rules (rules.rs check_body)

function checkPublicKey(key, b64) {
  const bytes = typeof b64 === 'string' ? b64decode(b64) : null;
  if (!bytes || bytes.length !== 32) throw refuse('key', `public key of ${key} is not 32 bytes of standard base64`);
  const actual = hex(sha256(bytes).subarray(0, 16));
  if (actual !== key) throw refuse('key', `key ${key} does not match its public key (which has id ${actual})`);
}

function knownKey(state, key) {
  if (!state.keys.has(key)) throw refuse('unknown-key', `unknown key ${key}: it was never enrolled`);
}

function roleInScope(role, fund) {
  if (!Object.hasOwn(CATALOGUE.roles, role)) throw shape('role');
  const hostWide = CATALOGUE.roles[role].host_wide;
  if (hostWide !== (fund === HOST)) {
    throw refuse('role-grant', `role ${role} cannot be held in ${fund}: ${hostWide ? 'it is host-wide, grant it in the host scope' : 'it is per fund, grant it in a fund'}`);
  }
}

function proposalIn(f, fund, id, type, allowed, needed) {
  const p = f.proposals.get(id);
  if (!p) throw refuse('proposal', `unknown proposal ${id} in ${fund}`);
  if (!allowed.includes(p.status)) throw refuse('proposal', `proposal ${id} is ${p.status}; ${type} needs it to be ${needed}`);
  return p;
}

/** rules.rs `tally`: only currently seated members count. */
export function tally(f, p) {
  const t = { seated: f.committee.length, approvals: 0, rejections: 0, recusals: 0, pending: 0 };
  for (const m of f.committee) {
    const c = p.votes.get(m);
    if (c === 'approve') t.approvals++;
    else if (c === 'reject') t.rejections++;
    else if (c === 'recuse') t.recusals++;
    else t.pending++;
  }
  t.eligible = t.seated - t.recusals;
  t.needed = Math.floor(t.eligible / 2) + 1;
  t.quorum = t.eligible * 2 > t.seated;
  t.endorsed = t.seated > 0 && t.quorum && t.approvals >= t.needed;
  return t;
}

function requireMajority(f, fund, id, p) {
  const t = tally(f, p);
  if (t.seated === 0) throw refuse('committee', `fund ${fund} has no seated committee`);
  if (!t.quorum) throw refuse('majority', `proposal ${id} cannot be decided: only ${t.eligible} of ${t.seated} seated members may vote after recusals, more than half are needed`);
  if (!t.endorsed) throw refuse('majority', `proposal ${id} lacks a strict majority: ${t.approvals} approvals of ${t.eligible} non-recused seated members, ${t.needed} needed`);
}

function checkPledge(f, fund, pledge, channel, purpose) {
  if (pledge === null || pledge === undefined) return;
  const p = f.pledges.get(pledge);
  if (!p) throw refuse('pledge', `unknown pledge ${pledge} in ${fund}`);
  if (p.channel !== channel) throw refuse('pledge', `pledge ${pledge} is for channel ${p.channel}, the donation came through ${channel}`);
  if (p.purpose !== purpose) throw refuse('purpose', `pledge ${pledge} is restricted to ${p.purpose ?? 'no purpose'}, the payment to ${purpose ?? 'no purpose'}`);
}

// ---------------------------------------------------------------------------------
// purposes (event.rs `upcast`, rules.rs `purpose_open`)

/**
 * The purpose a gift, pledge or proposal names, after event.rs `upcast`: version 1 bodies
 * name none (v1 donation.received's `restricted_purpose` was free text that bound nothing).
 */
function purposeOf(event) {
  if (event.v < 2) return null;
  const b = event.body;
  const value = event.type === 'proposal.submitted' ? b.purpose : b.restricted_purpose;
  if (value === null || value === undefined) return null;
  return str(value, 'purpose');
}

function purposeOpen(f, fund, purpose) {
  if (purpose === null) return;
  const p = f.purposes.get(purpose);
  if (!p) throw refuse('purpose', `purpose ${purpose} is not declared in ${fund}`);
  if (p.retired) throw refuse('purpose', `purpose ${purpose} was retired in ${fund}: no new gift, pledge or proposal may name it`);
}

function checkCommittee(state, fund, members) {
  const size = list(members, 'members').length;
  if (size < 3 || size % 2 === 0 || size > COMMITTEE_SIZE_MAX) {
    throw refuse('committee', `a committee must have an odd number of members, at least 3 and at most ${COMMITTEE_SIZE_MAX}; got ${size}`);
  }
  members.forEach((key, i) => {
    if (members.slice(0, i).includes(key)) throw refuse('committee', `key ${key} is listed twice in the committee`);
    if (!state.hasRole(fund, key, 'committee_member')) throw refuse('committee', `key ${key} cannot be seated: it does not hold committee_member in ${fund}`);
  });
}

/** rules.rs `receive_lots`: each line of goods gift `event` a lot, at the back of its pool's queue. */
function receiveLots(f, event) {
  const purpose = purposeOf(event);
  const lines = event.body.items.map((line, i) => {
    const k = `${line.name}\u0000${line.unit}`;
    if (!f.lots.has(k)) f.lots.set(k, { unrestricted: [], restricted: new Map() });
    const pools = f.lots.get(k);
    if (purpose !== null && !pools.restricted.has(purpose)) pools.restricted.set(purpose, []);
    const queue = purpose === null ? pools.unrestricted : pools.restricted.get(purpose);
    const ordinal = f.lotCount;
    f.lotCount += 1;
    const q = BigInt(line.quantity);
    queue.push({ ordinal, gift: event.id, line: i, left: q });
    return { name: line.name, unit: line.unit, quantity: q, unit_value_fen: BigInt(line.unit_value_fen), ordinal, handed: [] };
  });
  f.goodsGifts.set(event.id, { purpose, lines });
}

/**
 * rules.rs `distribute_lots`: per (name, unit), the lots restricted to the purpose the
 * distribution serves first, then unrestricted lots, each queue lowest ordinal first.
 */
function distributeLots(f, event) {
  const b = event.body;
  const serves = distributionPurpose(f, b.proposal);
  for (const [k, q] of goodsRequested(b.items)) {
    let left = q;
    for (const purpose of serves === null ? [null] : [serves, null]) {
      const queue = lotQueue(f, k, purpose);
      while (left > 0n && queue.length > 0) {
        const lot = queue[0];
        const take = left < lot.left ? left : lot.left;
        lot.left -= take;
        if (lot.left === 0n) queue.shift();
        left -= take;
        f.goodsGifts.get(lot.gift).lines[lot.line].handed.push({ distribution: event.id, quantity: take });
      }
    }
    console.assert(left === 0n, 'the usable lots cover the distribution');
  }
  f.distributions.set(event.id, { proposal: b.proposal ?? null, purpose: b.purpose });
}

function goodsRequested(items) {
  const requested = new Map();
  for (const line of items) {
    text('items[].name', line.name, NAME_CHARS_MAX);
    text('items[].unit', line.unit, NAME_CHARS_MAX);
    const q = int(line.quantity, 'items[].quantity');
    quantity('items[].quantity', q);
    const k = `${line.name}\u0000${line.unit}`;
    requested.set(k, (requested.get(k) || 0n) + q);
  }
  return [...requested].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function totalsOf(f) {
  return {
    received_fen: f.cash.received, refunded_fen: f.cash.refunded, reserved_fen: f.cash.reserved, paid_fen: f.cash.paid,
    available_fen: available(f.cash), goods_received_value_fen: f.goodsReceivedValue, goods_distributed_value_fen: f.goodsDistributedValue,
  };
}

const OPEN = ['submitted', 'endorsed', 'applied', 'approved'];

// ---------------------------------------------------------------------------------
// accounts.rs and disclosure.rs: a fund's accounts per UTC calendar year of `occurred_at`,
// and the figures a version 2 disclosure cites (docs/design.md §1.6, "What a disclosure
// cites"). Purpose '' is unrestricted money.

const CHANNELS = ['space_for_service', 'neighbourhood_market', 'micro_workshop', 'direct'];
const UNRESTRICTED = '';

/** state.rs `YearAccounts` of year `y`, made on first use. */
function yearAccounts(f, y) {
  if (!f.accounts.has(y)) f.accounts.set(y, { income: new Map(), goods: new Map(), spending: new Map() }); // channel → purpose → fen; purpose → fen
  return f.accounts.get(y);
}
const yearOfEvent = (event) => new Date(Number(utcInstant(event.occurred_at)[0]) * 1000).getUTCFullYear();
const inner = (map, key) => {
  if (!map.has(key)) map.set(key, new Map());
  return map.get(key);
};
const addAt = (map, key, amount) => map.set(key, add(map.get(key) ?? 0n, amount));

/** disclosure.rs `cited_year`: the UTC year of the period's last instant (period_end − 1 ns). */
function citedYear(end) {
  const seconds = end[1] > 0n ? end[0] : end[0] - 1n;
  return new Date(Number(seconds) * 1000).getUTCFullYear();
}

/**
 * disclosure.rs `figures`: every figure, as [key, name, fen]; `key` orders them as the Rust
 * `FigureKey` (section, channel in catalogue order, unrestricted then purposes by UTF-8 bytes).
 */
function figure(section, channel, purpose, name, fen) {
  const ch = channel === null ? '' : String(CHANNELS.indexOf(channel)).padStart(2, '0');
  return [`${section}\u0000${ch}\u0000${purpose === null ? '' : `\u0001${purpose}`}`, name, fen];
}

/** The accounts of year `y` as a disclosure cites them (accounts.rs `year_report`, disclosure.rs `citation`). */
function actualFigures(f, y) {
  const out = [];
  const a = f.accounts.get(y) || { income: new Map(), goods: new Map(), spending: new Map() };
  let unrestricted = 0n;
  let restricted = 0n;
  for (const byPurpose of a.income.values()) {
    for (const [p, v] of byPurpose) {
      if (p === UNRESTRICTED) unrestricted = add(unrestricted, v);
      else restricted = add(restricted, v);
    }
  }
  out.push(figure(0, null, null, 'income_unrestricted_fen', unrestricted), figure(1, null, null, 'income_restricted_fen', restricted));
  for (const [rank, section, byChannel] of [[2, 'income', a.income], [3, 'goods_income', a.goods]]) {
    for (const [ch, byPurpose] of byChannel) {
      out.push(figure(rank, ch, null, `${section}[${ch}].unrestricted_fen`, byPurpose.get(UNRESTRICTED) ?? 0n));
      for (const [p, v] of byPurpose) if (p !== UNRESTRICTED) out.push(figure(rank, ch, p, `${section}[${ch}].restricted[${p}]`, v));
    }
  }
  out.push(figure(4, null, null, 'spending_unrestricted_fen', a.spending.get(UNRESTRICTED) ?? 0n));
  for (const [p, v] of a.spending) if (p !== UNRESTRICTED) out.push(figure(4, null, p, `spending_restricted[${p}]`, v));
  // Net assets at year end: every year up to this one, income − spending, per pool (cash only).
  const net = new Map([[UNRESTRICTED, 0n]]);
  for (const [year, ya] of f.accounts) {
    if (year > y) continue;
    for (const byPurpose of ya.income.values()) for (const [p, v] of byPurpose) addAt(net, p, v);
    for (const [p, v] of ya.spending) addAt(net, p, -v);
  }
  out.push(figure(5, null, null, 'net_assets_unrestricted_fen', net.get(UNRESTRICTED)));
  for (const [p, v] of net) if (p !== UNRESTRICTED) out.push(figure(5, null, p, `net_assets_restricted[${p}]`, v));
  return out;
}

/** The figures a disclosure's `accounts` states (its JSON body). */
function statedFigures(cited) {
  const out = [figure(0, null, null, 'income_unrestricted_fen', int(cited.income_unrestricted_fen, 'accounts.income_unrestricted_fen')),
    figure(1, null, null, 'income_restricted_fen', int(cited.income_restricted_fen, 'accounts.income_restricted_fen'))];
  for (const [rank, section] of [[2, 'income'], [3, 'goods_income']]) {
    for (const [ch, line] of Object.entries(cited[section] || {})) {
      out.push(figure(rank, ch, null, `${section}[${ch}].unrestricted_fen`, int(line.unrestricted_fen, `accounts.${section}`)));
      for (const [p, v] of Object.entries(line.restricted || {})) out.push(figure(rank, ch, p, `${section}[${ch}].restricted[${p}]`, int(v, `accounts.${section}`)));
    }
  }
  for (const [rank, section] of [[4, 'spending'], [5, 'net_assets']]) {
    out.push(figure(rank, null, null, `${section}_unrestricted_fen`, int(cited[`${section}_unrestricted_fen`], `accounts.${section}_unrestricted_fen`)));
    for (const [p, v] of Object.entries(cited[`${section}_restricted`] || {})) out.push(figure(rank, null, p, `${section}_restricted[${p}]`, int(v, `accounts.${section}_restricted`)));
  }
  return out;
}

/** disclosure.rs `check_citation`: the year, then every figure, the first difference in key order refused. */
function checkCitation(f, end, cited) {
  const y = citedYear(end);
  if (cited.year !== y) throw refuse('disclosure', `disclosure cites the accounts of ${cited.year}, but its period ends in ${y}: it must cite ${y}`);
  const stated = new Map(statedFigures(cited).map(([k, name, fen]) => [k, [name, fen]]));
  const all = new Map(actualFigures(f, y).map(([k, name, fen]) => [k, [name, fen]]));
  for (const [k, [name]] of stated) if (!all.has(k)) all.set(k, [name, 0n]);
  for (const k of [...all.keys()].sort(compareUtf8Bytes)) {
    const [name, actual] = all.get(k);
    const said = stated.has(k) ? stated.get(k)[1] : 0n;
    if (said !== actual) throw refuse('disclosure', `disclosure cites ${name} = ${formatYuan(said)} of ${y} but the fund's accounts give ${formatYuan(actual)}`);
  }
}

/** Orders strings by their UTF-8 bytes, as Rust orders `String`s. */
function compareUtf8Bytes(a, b) {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function checkBody(state, event) {
  const b = event.body;
  const fund = event.fund;
  const f = state.funds.get(fund);
  switch (event.type) {
    case 'host.established':
      text('host_name', b.host_name, NAME_CHARS_MAX);
      return checkPublicKey(b.host_key, b.public_key);
    case 'key.enrolled':
      if (state.keys.has(b.key)) throw refuse('key', `key ${b.key} is already enrolled`);
      text('label', b.label, NAME_CHARS_MAX);
      return checkPublicKey(b.key, b.public_key);
    case 'role.granted':
      knownKey(state, b.key);
      roleInScope(b.role, fund);
      if (state.hasRole(fund, b.key, b.role)) throw refuse('role-grant', `key ${b.key} already holds ${b.role} in ${fund}`);
      return;
    case 'role.revoked':
      if (!state.hasRole(fund, b.key, b.role)) throw refuse('role-grant', `key ${b.key} does not hold ${b.role} in ${fund}`);
      return text('reason', b.reason, TEXT_CHARS_MAX);
    case 'key.rotated': {
      if (b.old_key === b.new_key) throw refuse('role-grant', `key ${b.old_key} cannot be rotated to itself`);
      knownKey(state, b.new_key);
      const held = state.rolesOf(fund, b.old_key);
      if (!held || held.size === 0) throw refuse('role-grant', `key ${b.old_key} holds no role in ${fund} to rotate`);
      return text('reason', b.reason, TEXT_CHARS_MAX);
    }
    case 'fund.opened':
      if (state.funds.has(fund)) throw refuse('fund', `fund ${fund} is already open`);
      if (b.currency !== 'CNY') throw refuse('fund', `currency ${JSON.stringify(b.currency)} is not supported: every amount is in CNY fen`);
      text('name', b.name, NAME_CHARS_MAX);
      return text('community', b.community, NAME_CHARS_MAX);
    case 'committee.seated':
      return checkCommittee(state, fund, b.members);
    case 'purpose.declared':
      text('purpose', b.purpose, NAME_CHARS_MAX);
      text('description', b.description, TEXT_CHARS_MAX);
      if (f.purposes.has(b.purpose)) throw refuse('purpose', `purpose ${b.purpose} is already declared in ${fund}`);
      return;
    case 'purpose.retired':
      text('reason', b.reason, TEXT_CHARS_MAX);
      return purposeOpen(f, fund, str(b.purpose, 'purpose'));
    case 'pledge.recorded':
      if (f.pledges.has(b.pledge)) throw refuse('pledge', `pledge ${b.pledge} already exists in ${fund}`);
      positive('amount_fen', int(b.amount_fen, 'amount_fen'));
      text('terms', b.terms, TEXT_CHARS_MAX);
      return purposeOpen(f, fund, purposeOf(event));
    case 'donation.received': {
      const amount = int(b.amount_fen, 'amount_fen');
      positive('amount_fen', amount);
      text('payment_ref', b.payment_ref, NAME_CHARS_MAX);
      purposeOpen(f, fund, purposeOf(event));
      checkPledge(f, fund, b.pledge, b.channel, purposeOf(event));
      add(f.cash.received, amount);
      return;
    }
    case 'goods.received': {
      count('items', list(b.items, 'items').length, 1, ITEMS_COUNT_MAX);
      let total = 0n;
      for (const line of b.items) {
        text('items[].name', line.name, NAME_CHARS_MAX);
        text('items[].unit', line.unit, NAME_CHARS_MAX);
        const q = int(line.quantity, 'items[].quantity');
        quantity('items[].quantity', q);
        const unit = int(line.unit_value_fen, 'items[].unit_value_fen');
        if (unit < 0n) throw refuse('amount', `items[].unit_value_fen must not be negative, got ${formatYuan(unit)}`);
        total = add(total, inRange(unit * q));
      }
      add(f.goodsReceivedValue, total);
      purposeOpen(f, fund, purposeOf(event));
      return checkPledge(f, fund, b.pledge, b.channel, purposeOf(event));
    }
    case 'donation.reversed': {
      const amount = int(b.amount_fen, 'amount_fen');
      positive('amount_fen', amount);
      text('reason', b.reason, TEXT_CHARS_MAX);
      const d = f.donations.get(b.donation);
      if (!d) throw refuse('donation', `unknown cash donation ${b.donation} in ${fund}`);
      const refundable = sub(d.amount, d.refunded);
      if (amount > refundable) throw refuse('refund', `refund ${formatYuan(amount)} exceeds the ${formatYuan(refundable)} still refundable of donation ${b.donation}`);
      // The allocation: a refund returns the gift's own unspent money only.
      const queued = poolOf(f, d.purpose).unspent.get(d.ordinal);
      const unspent = queued ? queued.amount : 0n;
      if (amount > unspent) throw refuse('refund', `refund ${formatYuan(amount)} exceeds the ${formatYuan(unspent)} of donation ${b.donation} that is neither reserved nor paid for a proposal`);
      return;
    }
    case 'receipt.issued': {
      text('receipt_no', b.receipt_no, NAME_CHARS_MAX);
      const d = f.donations.get(b.donation);
      if (!d) throw refuse('donation', `unknown cash donation ${b.donation} in ${fund}`);
      if (d.receiptNo !== null) throw refuse('receipt', `donation ${b.donation} already has receipt ${d.receiptNo}; void it first`);
      if (f.receiptNumbers.has(b.receipt_no)) throw refuse('receipt', `receipt number ${b.receipt_no} is already used by donation ${f.receiptNumbers.get(b.receipt_no)}`);
      return;
    }
    case 'receipt.voided': {
      text('receipt_no', b.receipt_no, NAME_CHARS_MAX);
      text('reason', b.reason, TEXT_CHARS_MAX);
      const d = f.donations.get(b.donation);
      if (!d) throw refuse('donation', `unknown cash donation ${b.donation} in ${fund}`);
      if (d.receiptNo !== b.receipt_no) throw refuse('receipt', `donation ${b.donation} has no active receipt ${b.receipt_no}`);
      return;
    }
    case 'proposal.submitted':
      if (f.proposals.has(b.proposal)) throw refuse('proposal', `proposal ${b.proposal} already exists in ${fund}`);
      positive('amount_fen', int(b.amount_fen, 'amount_fen'));
      text('title', b.title, NAME_CHARS_MAX);
      text('payee', b.payee, NAME_CHARS_MAX);
      text('description', b.description, TEXT_CHARS_MAX);
      purposeOpen(f, fund, purposeOf(event));
      return evidence(b.evidence);
    case 'opinion.recorded':
      proposalIn(f, fund, b.proposal, event.type, ['submitted'], 'submitted');
      text('summary', b.summary, TEXT_CHARS_MAX);
      return evidence(b.evidence);
    case 'vote.cast': {
      const p = proposalIn(f, fund, b.proposal, event.type, ['submitted'], 'submitted');
      if (f.committee.length === 0) throw refuse('committee', `fund ${fund} has no seated committee`);
      if (!f.committee.includes(event.author)) throw refuse('vote', `key ${event.author} is not a member of the seated committee of ${fund}`);
      if (p.votes.has(event.author)) throw refuse('vote', `${event.author} already voted on proposal ${b.proposal}; a member votes at most once`);
      return text('reason', b.reason, TEXT_CHARS_MAX);
    }
    case 'proposal.endorsed': {
      const p = proposalIn(f, fund, b.proposal, event.type, ['submitted'], 'submitted');
      return requireMajority(f, fund, b.proposal, p);
    }
    case 'proposal.rejected': {
      const p = proposalIn(f, fund, b.proposal, event.type, ['submitted'], 'submitted');
      text('reason', b.reason, TEXT_CHARS_MAX);
      const t = tally(f, p);
      if (t.seated === 0) throw refuse('committee', `fund ${fund} has no seated committee`);
      if (t.quorum && t.approvals + t.pending >= t.needed) {
        throw refuse('majority', `proposal ${b.proposal} can still reach a majority (${t.approvals} approvals, ${t.pending} members yet to vote, ${t.needed} needed): it cannot be rejected yet`);
      }
      return;
    }
    case 'application.submitted':
      proposalIn(f, fund, b.proposal, event.type, ['endorsed'], 'endorsed');
      return;
    case 'proposal.approved': {
      const p = proposalIn(f, fund, b.proposal, event.type, ['applied'], 'applied');
      requireMajority(f, fund, b.proposal, p);
      const amount = int(b.amount_fen, 'amount_fen');
      positive('amount_fen', amount);
      if (amount > p.requested) throw refuse('approved-remainder', `approval ${formatYuan(amount)} exceeds the ${formatYuan(p.requested)} requested by proposal ${b.proposal}`);
      // Restricted money is honoured: the proposal's purpose's, then unrestricted money.
      const unrestricted = available(f.unrestricted.cash);
      let restricted = 0n;
      if (p.purpose !== null) restricted = available(poolOf(f, p.purpose).cash);
      else for (const pool of f.restricted.values()) restricted = add(restricted, available(pool.cash));
      const usable = p.purpose !== null ? add(restricted, unrestricted) : unrestricted;
      if (amount > usable && p.purpose === null && restricted === 0n) {
        throw refuse('overspend', `fund ${fund} has ${formatYuan(usable)} available, ${formatYuan(amount)} needed`);
      }
      if (amount > usable) {
        throw refuse('overspend', p.purpose !== null
          ? `${b.proposal} needs ${formatYuan(amount)}; ${p.purpose} has ${formatYuan(restricted)} restricted and ${formatYuan(unrestricted)} unrestricted available`
          : `${b.proposal} needs ${formatYuan(amount)}; it serves no purpose, so only unrestricted money may pay it: ${formatYuan(unrestricted)} available (${formatYuan(restricted)} more is restricted to purposes)`);
      }
      return;
    }
    case 'proposal.declined':
      proposalIn(f, fund, b.proposal, event.type, ['applied'], 'applied');
      return text('reason', b.reason, TEXT_CHARS_MAX);
    case 'payout.made': {
      const p = proposalIn(f, fund, b.proposal, event.type, ['approved'], 'approved');
      const amount = int(b.amount_fen, 'amount_fen');
      positive('amount_fen', amount);
      text('payment_ref', b.payment_ref, NAME_CHARS_MAX);
      evidence(b.evidence);
      const rest = remainder(p);
      if (amount > rest) throw refuse('approved-remainder', `payout ${formatYuan(amount)} exceeds approved remainder ${formatYuan(rest)} of proposal ${b.proposal}`);
      return;
    }
    case 'goods.distributed': {
      count('items', list(b.items, 'items').length, 1, ITEMS_COUNT_MAX);
      text('purpose', b.purpose, TEXT_CHARS_MAX);
      evidence(b.evidence);
      if (b.proposal !== null && b.proposal !== undefined && !f.proposals.has(b.proposal)) throw refuse('proposal', `unknown proposal ${b.proposal} in ${fund}`);
      // Restricted goods are honoured (docs/design.md §1.6, "Goods").
      const serves = distributionPurpose(f, b.proposal);
      for (const [k, requested] of goodsRequested(b.items)) {
        const [name, unit] = k.split('\u0000');
        const onHand = f.goods.has(k) ? f.goods.get(k).quantity : 0n;
        const u = goodsUsable(f, k, serves);
        if (requested <= u.restricted + u.unrestricted) continue;
        if (u.other === 0n) throw refuse('goods', `only ${onHand} ${unit} of ${name} on hand, ${requested} requested`);
        const what = b.proposal === null || b.proposal === undefined
          ? `the distribution needs ${requested} ${unit} ${name}; `
          : `the distribution for ${b.proposal} needs ${requested} ${unit} ${name}; `;
        throw refuse('goods', what + (serves !== null
          ? `${serves} has ${u.restricted} ${unit} restricted and ${u.unrestricted} ${unit} unrestricted available (${u.other} ${unit} more restricted to other purposes)`
          : `${b.proposal === null || b.proposal === undefined ? 'it names no proposal' : 'its proposal serves no purpose'}, so only unrestricted goods may go: ${u.unrestricted} ${unit} available (${u.other} ${unit} more restricted to purposes)`));
      }
      return;
    }
    case 'proposal.closed':
      proposalIn(f, fund, b.proposal, event.type, OPEN, 'open (submitted, endorsed, applied or approved)');
      text('report', b.report, TEXT_CHARS_MAX);
      return evidence(b.evidence);
    case 'disclosure.published': {
      const [start, end, at] = [utcInstant(b.period_start), utcInstant(b.period_end), utcInstant(event.occurred_at)];
      if (start === null || end === null || at === null) throw shape('period_start, period_end or occurred_at');
      if (compareInstants(start, end) >= 0 || compareInstants(end, at) > 0) {
        throw refuse('disclosure', `disclosure period must start before it ends and end no later than the event (${formatUtc(end)} > ${formatUtc(at)})`);
      }
      const totals = b.totals || {};
      const actual = totalsOf(f);
      for (const field of ['received_fen', 'refunded_fen', 'reserved_fen', 'paid_fen', 'available_fen', 'goods_received_value_fen', 'goods_distributed_value_fen']) {
        const stated = int(totals[field], `totals.${field}`);
        if (stated !== actual[field]) throw refuse('disclosure', `disclosure states ${field} = ${formatYuan(stated)} but the fund's records give ${formatYuan(actual[field])}`);
      }
      // Version 2 cites the accounts of the year the period ends in; version 1 cited none (event.rs `upcast`).
      if (event.v >= 2 && (b.accounts === null || b.accounts === undefined)) throw refuse('disclosure', `a version ${event.v} disclosure must cite the accounts of the year its period ends in`);
      if (event.v >= 2) checkCitation(f, end, b.accounts);
      return;
    }
    case 'audit.opinion':
      year(b.year);
      return text('summary', b.summary, TEXT_CHARS_MAX);
    case 'correction.recorded':
      if (!state.eventIds.has(b.corrects)) throw refuse('shape', `event ${b.corrects} to correct is unknown`);
      text('note', b.note, TEXT_CHARS_MAX);
      return evidence(b.evidence);
    case 'annual_report.published':
      year(b.year);
      if (state.annualReports.has(b.year)) throw refuse('disclosure', `annual report for ${b.year} is already published`);
      return;
    default:
      throw refuse('shape', `unknown event type ${JSON.stringify(event.type)}`);
  }
}

/** rules.rs `check`. */
export function check(state, event) {
  if (!event.body || typeof event.body !== 'object') throw shape('body');
  checkScope(state, event);
  authorise(state, event);
  checkBody(state, event);
}

// ---------------------------------------------------------------------------------
// bookkeeping (rules.rs apply, apply_fund): only what the rules and the report read

function roleSet(state, scope, key) {
  if (!state.roles.has(scope)) state.roles.set(scope, new Map());
  const byKey = state.roles.get(scope);
  if (!byKey.has(key)) byKey.set(key, new Set());
  return byKey.get(key);
}

function channelOf(f, channel) {
  if (!f.byChannel.has(channel)) f.byChannel.set(channel, { received: 0n, refunded: 0n, donations: 0, goods: 0n, pledged: 0n });
  return f.byChannel.get(channel);
}

function apply(state, event) {
  const b = event.body;
  const scope = event.fund;
  switch (event.type) {
    case 'host.established':
      state.host = { key: b.host_key };
      state.keys.add(b.host_key);
      roleSet(state, HOST, b.host_key).add('host_admin');
      return;
    case 'key.enrolled':
      state.keys.add(b.key);
      return;
    case 'role.granted':
      roleSet(state, scope, b.key).add(b.role);
      return;
    case 'role.revoked':
      state.rolesOf(scope, b.key).delete(b.role);
      return;
    case 'key.rotated': {
      const byKey = state.roles.get(scope);
      const moved = byKey.get(b.old_key);
      byKey.delete(b.old_key);
      const to = roleSet(state, scope, b.new_key);
      for (const r of moved) to.add(r);
      const f = state.funds.get(scope);
      if (f) {
        f.committee = f.committee.map((m) => (m === b.old_key ? b.new_key : m));
        for (const p of f.proposals.values()) {
          if (p.votes.has(b.old_key)) {
            p.votes.set(b.new_key, p.votes.get(b.old_key));
            p.votes.delete(b.old_key);
          }
        }
      }
      return;
    }
    case 'fund.opened':
      state.funds.set(scope, newFund(b, event.occurred_at));
      return;
    case 'annual_report.published':
      state.annualReports.add(b.year);
      return;
    case 'correction.recorded':
      return;
    default:
      applyFund(state.funds.get(scope), event);
  }
}

function applyFund(f, event) {
  const b = event.body;
  switch (event.type) {
    case 'committee.seated':
      f.committee = [...b.members];
      return;
    case 'purpose.declared':
      f.purposes.set(b.purpose, { retired: false });
      f.restricted.set(b.purpose, newPool());
      return;
    case 'purpose.retired':
      f.purposes.get(b.purpose).retired = true;
      return;
    case 'pledge.recorded': {
      const ch = channelOf(f, b.channel);
      ch.pledged = add(ch.pledged, BigInt(b.amount_fen));
      f.pledges.set(b.pledge, { channel: b.channel, purpose: purposeOf(event) });
      return;
    }
    case 'donation.received': {
      const amount = BigInt(b.amount_fen);
      f.cash.received = add(f.cash.received, amount);
      const ch = channelOf(f, b.channel);
      ch.received = add(ch.received, amount);
      ch.donations += 1;
      const purpose = purposeOf(event);
      const ordinal = f.gifts;
      f.gifts += 1;
      const pool = poolOf(f, purpose);
      pool.cash.received = add(pool.cash.received, amount);
      queueInsert(pool, ordinal, event.id, amount);
      addAt(inner(yearAccounts(f, yearOfEvent(event)).income, b.channel), purpose ?? UNRESTRICTED, amount);
      // `spent`: the gift's paid parts {proposal, payout, amount}, in stream order (core/trace.js).
      f.donations.set(event.id, { amount, refunded: 0n, channel: b.channel, receiptNo: null, purpose, ordinal, spent: [] });
      return;
    }
    case 'goods.received': {
      let total = 0n;
      for (const line of b.items) {
        const q = BigInt(line.quantity);
        const value = BigInt(line.unit_value_fen) * q;
        total = add(total, value);
        const k = `${line.name}\u0000${line.unit}`;
        const stock = f.goods.get(k) || { quantity: 0n, value: 0n, received: 0n };
        stock.quantity += q;
        stock.received += q;
        stock.value = add(stock.value, value);
        f.goods.set(k, stock);
      }
      f.goodsReceivedValue = add(f.goodsReceivedValue, total);
      const ch = channelOf(f, b.channel);
      ch.goods = add(ch.goods, total);
      ch.donations += 1;
      receiveLots(f, event);
      addAt(inner(yearAccounts(f, yearOfEvent(event)).goods, b.channel), purposeOf(event) ?? UNRESTRICTED, total);
      return;
    }
    case 'donation.reversed': {
      const amount = BigInt(b.amount_fen);
      const d = f.donations.get(b.donation);
      d.refunded = add(d.refunded, amount);
      console.assert(d.refunded <= d.amount);
      f.cash.refunded = add(f.cash.refunded, amount);
      const ch = channelOf(f, d.channel);
      ch.refunded = add(ch.refunded, amount);
      const pool = poolOf(f, d.purpose);
      pool.cash.refunded = add(pool.cash.refunded, amount);
      takeFromGift(pool, d.ordinal, amount);
      // A refund counts against the income of the year of the refund.
      addAt(inner(yearAccounts(f, yearOfEvent(event)).income, d.channel), d.purpose ?? UNRESTRICTED, -amount);
      return;
    }
    case 'receipt.issued':
      f.donations.get(b.donation).receiptNo = b.receipt_no;
      f.receiptNumbers.set(b.receipt_no, b.donation);
      return;
    case 'receipt.voided':
      f.donations.get(b.donation).receiptNo = null;
      return;
    case 'proposal.submitted':
      f.proposals.set(b.proposal, {
        requested: BigInt(b.amount_fen), category: b.category, status: 'submitted', votes: new Map(),
        approved: 0n, paid: 0n, released: 0n, purpose: purposeOf(event), reservation: [],
      });
      return;
    case 'opinion.recorded':
      return;
    case 'vote.cast':
      f.proposals.get(b.proposal).votes.set(event.author, b.choice);
      return;
    case 'proposal.endorsed':
      f.proposals.get(b.proposal).status = 'endorsed';
      return;
    case 'proposal.rejected':
      f.proposals.get(b.proposal).status = 'rejected';
      return;
    case 'application.submitted':
      f.proposals.get(b.proposal).status = 'applied';
      return;
    case 'proposal.declined':
      f.proposals.get(b.proposal).status = 'declined';
      return;
    case 'proposal.approved': {
      const amount = BigInt(b.amount_fen);
      f.cash.reserved = add(f.cash.reserved, amount);
      const p = f.proposals.get(b.proposal);
      p.status = 'approved';
      p.approved = amount;
      reserve(f, p, amount);
      return;
    }
    case 'payout.made': {
      const amount = BigInt(b.amount_fen);
      f.cash.reserved = sub(f.cash.reserved, amount);
      f.cash.paid = add(f.cash.paid, amount);
      const p = f.proposals.get(b.proposal);
      p.paid = add(p.paid, amount);
      console.assert(remainder(p) >= 0n, 'payout beyond approval');
      spend(f, p, amount, b.proposal, event.id, yearAccounts(f, yearOfEvent(event)));
      return;
    }
    case 'goods.distributed':
      for (const [k, q] of goodsRequested(b.items)) {
        const stock = f.goods.get(k);
        // Money::checked_mul_div: the share of the estimated value that leaves, rounded toward zero.
        const value = inRange((stock.value * q) / stock.quantity);
        stock.quantity -= q;
        stock.value = sub(stock.value, value);
        f.goodsDistributedValue = add(f.goodsDistributedValue, value);
      }
      distributeLots(f, event);
      return;
    case 'proposal.closed': {
      const p = f.proposals.get(b.proposal);
      const rest = remainder(p);
      p.released = add(p.released, rest);
      p.status = 'closed';
      f.cash.reserved = sub(f.cash.reserved, rest);
      release(f, p);
      return;
    }
    case 'disclosure.published':
    case 'audit.opinion':
      return;
    default:
      throw new Error(`apply: ${event.type} is not a fund event`);
  }
}

// ---------------------------------------------------------------------------------
// the allocation (rules.rs `reserve`, `spend`, `release`; docs/design.md): first in, first
// out within each pool by the gift's ordinal; what a proposal holds is spent from its front
// and returned to each gift's place in its pool.

function queueInsert(pool, ordinal, donation, amount) {
  const queued = pool.unspent.get(ordinal);
  if (queued) {
    queued.amount = add(queued.amount, amount);
    return;
  }
  pool.unspent.set(ordinal, { donation, amount });
  let lo = 0, hi = pool.order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pool.order[mid] < ordinal) lo = mid + 1;
    else hi = mid;
  }
  pool.order.splice(lo, 0, ordinal);
}

function takeFromGift(pool, ordinal, amount) {
  const queued = pool.unspent.get(ordinal);
  queued.amount = sub(queued.amount, amount);
  console.assert(queued.amount >= 0n, 'taken beyond the gift');
  if (queued.amount === 0n) {
    pool.unspent.delete(ordinal);
    pool.order.splice(pool.order.indexOf(ordinal), 1);
  }
}

function reserve(f, p, amount) {
  let left = amount;
  for (const purpose of p.purpose !== null ? [p.purpose, null] : [null]) {
    const pool = poolOf(f, purpose);
    while (left > 0n && pool.order.length > 0) {
      const ordinal = pool.order[0];
      const queued = pool.unspent.get(ordinal);
      const take = left < queued.amount ? left : queued.amount;
      const donation = queued.donation;
      takeFromGift(pool, ordinal, take);
      pool.cash.reserved = add(pool.cash.reserved, take);
      left = sub(left, take);
      p.reservation.push({ ordinal, donation, purpose, amount: take });
    }
  }
  console.assert(left === 0n, 'the pools cover the approval');
}

/** Each take is a source of payout `payout` for proposal `proposal`, recorded on its gift (§1.6 step 3). */
function spend(f, p, amount, proposal, payout, accounts) {
  let left = amount;
  while (left > 0n) {
    const slice = p.reservation[0];
    const take = left < slice.amount ? left : slice.amount;
    slice.amount = sub(slice.amount, take);
    left = sub(left, take);
    if (slice.amount === 0n) p.reservation.shift();
    const pool = poolOf(f, slice.purpose);
    pool.cash.reserved = sub(pool.cash.reserved, take);
    pool.cash.paid = add(pool.cash.paid, take);
    f.donations.get(slice.donation).spent.push({ proposal, payout, amount: take });
    addAt(accounts.spending, slice.purpose ?? UNRESTRICTED, take);
  }
}

function release(f, p) {
  for (const slice of p.reservation) {
    const pool = poolOf(f, slice.purpose);
    pool.cash.reserved = sub(pool.cash.reserved, slice.amount);
    queueInsert(pool, slice.ordinal, slice.donation, slice.amount);
  }
  p.reservation = [];
}

/**
 * Every fund's money, as crates/fundtrail-audit/src/report.rs `FundReport::of` reports
 * it (the fields `fundtrail verify --json` prints under `funds`), in fund id order.
 */
export function fundReports(state) {
  const out = [];
  for (const id of [...state.funds.keys()].sort()) {
    const f = state.funds.get(id);
    const avail = available(f.cash);
    console.assert(avail >= 0n, `fund ${id}: available cash is negative`);
    const byStatus = {};
    let approved = 0n, paid = 0n;
    for (const p of f.proposals.values()) {
      byStatus[p.status] = (byStatus[p.status] || 0) + 1;
      approved = add(approved, p.approved);
      paid = add(paid, p.paid);
    }
    out.push({
      fund: id, name: f.name,
      cash: { received_fen: f.cash.received, refunded_fen: f.cash.refunded, reserved_fen: f.cash.reserved, paid_fen: f.cash.paid, available_fen: avail },
      goods: { received_value_fen: f.goodsReceivedValue, distributed_value_fen: f.goodsDistributedValue },
      proposals: { count: f.proposals.size, by_status: Object.fromEntries(Object.entries(byStatus).sort()), approved_fen: approved, paid_fen: paid },
      donations: f.donations.size,
    });
  }
  return out;
}
