// Where a gift went, read from the browser's own replay (rules.js, "the allocation";
// docs/design.md §1.6 "The trace"): a cash gift's paid parts in the order they were paid
// (proposal, payout, ledger entry), then its reserved parts by proposal id, refunded and
// unspent; a goods gift's lines, each with the distributions that took from it in stream
// order and what is still in stock (§1.6 "Goods"). The same shape as the server's
// GET /v1/donations/{id}/trace (schemas/openapi.json `Trace`, `GoodsTrace`), amounts and
// quantities as BigInt, so the page can say whether the two agree.

/**
 * What the replay saw of each event, for the parts of a trace the fold's state does not
 * keep: a payout's ledger entry and time, a gift's time, a proposal's title. Feed it every
 * verified entry in ledger order with `see`; a repeated event id keeps its first entry
 * (the fold gives the same id twice one effect).
 */
export class TraceIndex {
  constructor() {
    this.events = new Map(); // event id → {index: BigInt ledger entry, occurred_at}
    this.titles = new Map(); // "fund\u0000proposal" → title
  }

  see(index, event) {
    if (this.events.has(event.id)) return;
    this.events.set(event.id, { index: BigInt(index), occurred_at: event.occurred_at });
    if (event.type === 'proposal.submitted') {
      const key = `${event.fund}\u0000${event.body.proposal}`;
      if (!this.titles.has(key)) this.titles.set(key, event.body.title);
    }
  }
}

const checkedAdd = (a, b) => {
  const sum = a + b;
  if (sum > (1n << 53n) - 1n || sum < -((1n << 53n) - 1n)) throw new RangeError(`fen out of range: ${sum}`);
  return sum;
};

/**
 * The trace of gift `donation` (cash or goods) in the replayed `state` (a rules.js
 * `RulesState`), or null when no fund has a gift with that id.
 */
export function giftTrace(state, donation, index) {
  for (const [fundId, f] of state.funds) {
    if (f.goodsGifts && f.goodsGifts.has(donation)) return goodsTrace(fundId, f, donation, index);
    const d = f.donations.get(donation);
    if (!d) continue;
    const title = (p) => index.titles.get(`${fundId}\u0000${p}`) ?? '';
    const allocations = [];
    for (const s of d.spent || []) {
      const payout = index.events.get(s.payout);
      allocations.push({
        proposal: s.proposal, title: title(s.proposal), amount_fen: s.amount, state: 'paid',
        payout: { event: s.payout, sequence: payout.index + 1n, ledger_entry: payout.index, paid_at: payout.occurred_at },
      });
    }
    // Reserved: what each open reservation still holds of this gift, by proposal id.
    const reserved = new Map();
    for (const [pid, p] of f.proposals) {
      for (const slice of p.reservation || []) {
        if (slice.donation === donation) reserved.set(pid, checkedAdd(reserved.get(pid) ?? 0n, slice.amount));
      }
    }
    const byId = [...reserved.keys()].sort(compareUtf8);
    for (const pid of byId) {
      if (reserved.get(pid) > 0n) allocations.push({ proposal: pid, title: title(pid), amount_fen: reserved.get(pid), state: 'reserved', payout: null });
    }
    const pool = d.purpose === null || d.purpose === undefined ? f.unrestricted : f.restricted.get(d.purpose);
    const queued = pool.unspent.get(d.ordinal);
    const trace = {
      kind: 'cash', fund: fundId, donation, amount_fen: d.amount, restricted_purpose: d.purpose ?? null,
      received_at: index.events.get(donation)?.occurred_at ?? null,
      allocations, refunded_fen: d.refunded, unspent_fen: queued ? queued.amount : 0n,
    };
    const whole = allocations.reduce((sum, a) => checkedAdd(sum, a.amount_fen), checkedAdd(trace.refunded_fen, trace.unspent_fen));
    if (whole !== d.amount) throw new Error(`the parts of gift ${donation} sum to ${whole} fen, not its ${d.amount}`);
    return trace;
  }
  return null;
}

/** A goods gift's trace (trace.rs `goods_trace`): line by line, its distributions, then what is in stock. */
function goodsTrace(fundId, f, donation, index) {
  const gift = f.goodsGifts.get(donation);
  const lines = gift.lines.map((l, i) => {
    const pools = f.lots.get(`${l.name}\u0000${l.unit}`);
    const queue = (gift.purpose === null ? pools.unrestricted : pools.restricted.get(gift.purpose)) || [];
    const lot = queue.find((x) => x.ordinal === l.ordinal);
    const distributions = l.handed.map((h) => {
      const seen = index.events.get(h.distribution);
      const d = f.distributions.get(h.distribution);
      const title = d.proposal === null ? null : (index.titles.get(`${fundId}\u0000${d.proposal}`) ?? '');
      return {
        distribution: { event: h.distribution, sequence: seen.index + 1n, ledger_entry: seen.index, distributed_at: seen.occurred_at },
        proposal: d.proposal, title, purpose: d.purpose, quantity: h.quantity,
      };
    });
    const inStock = lot ? lot.left : 0n;
    const whole = distributions.reduce((sum, d) => sum + d.quantity, inStock);
    if (whole !== l.quantity) throw new Error(`line ${i} of goods gift ${donation} sums to ${whole}, not its ${l.quantity}`);
    return { line: i, name: l.name, unit: l.unit, quantity: l.quantity, unit_value_fen: l.unit_value_fen, distributions, in_stock: inStock };
  });
  return {
    kind: 'goods', fund: fundId, donation, restricted_purpose: gift.purpose,
    received_at: index.events.get(donation)?.occurred_at ?? null, lines,
  };
}

/** Rust orders proposal ids (Strings) by their UTF-8 bytes. */
function compareUtf8(a, b) {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Whether the server's amount (a JSON integer or a decimal string) is `ours`. */
function sameFen(ours, theirs) {
  if (!['number', 'string', 'bigint'].includes(typeof theirs)) return false;
  try {
    return BigInt(theirs) === ours;
  } catch {
    return false;
  }
}

/** The instant of an RFC 3339 UTC time, so "…:00Z" and "…:00.000Z" are the same. */
const instant = (text) => (typeof text === 'string' ? Date.parse(text) : NaN);

/**
 * The first difference between the browser's trace and the server's answer (amounts there
 * are JSON integers or decimal strings), as "allocations[0].amount_fen: here 600, server
 * 599", or null when they agree.
 */
export function traceDifference(ours, theirs, path = '') {
  if (ours === null || typeof ours !== 'object') {
    if (path.endsWith('_at')) return instant(ours) === instant(theirs) && !Number.isNaN(instant(ours)) ? null : `${path}: here ${ours}, server ${theirs}`;
    if (typeof ours === 'bigint') {
      return sameFen(ours, theirs) ? null : `${path}: here ${ours}, server ${theirs}`;
    }
    return ours === theirs ? null : `${path}: here ${JSON.stringify(ours)}, server ${JSON.stringify(theirs)}`;
  }
  if (Array.isArray(ours)) {
    if (!Array.isArray(theirs) || theirs.length !== ours.length) return `${path}: here ${ours.length} parts, server ${Array.isArray(theirs) ? theirs.length : JSON.stringify(theirs)}`;
    for (let i = 0; i < ours.length; i++) {
      const d = traceDifference(ours[i], theirs[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (theirs === null || typeof theirs !== 'object') return `${path || 'trace'}: server has ${JSON.stringify(theirs)}`;
  for (const key of Object.keys(ours)) {
    const d = traceDifference(ours[key], theirs[key], path ? `${path}.${key}` : key);
    if (d) return d;
  }
  return null;
}

/** A trace with its BigInt amounts as decimal strings (for postMessage and JSON). */
export function traceToJson(trace) {
  return JSON.parse(JSON.stringify(trace, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

/** The inverse of traceToJson. */
export function traceFromJson(json) {
  const fen = (v) => BigInt(v);
  if (json.kind === 'goods') {
    return {
      ...json,
      lines: json.lines.map((l) => ({
        ...l, quantity: fen(l.quantity), unit_value_fen: fen(l.unit_value_fen), in_stock: fen(l.in_stock),
        distributions: l.distributions.map((d) => ({
          ...d, quantity: fen(d.quantity),
          distribution: { ...d.distribution, sequence: fen(d.distribution.sequence), ledger_entry: fen(d.distribution.ledger_entry) },
        })),
      })),
    };
  }
  return {
    ...json, amount_fen: fen(json.amount_fen), refunded_fen: fen(json.refunded_fen), unspent_fen: fen(json.unspent_fen),
    allocations: json.allocations.map((a) => ({
      ...a, amount_fen: fen(a.amount_fen),
      payout: a.payout && { ...a.payout, sequence: fen(a.payout.sequence), ledger_entry: fen(a.payout.ledger_entry) },
    })),
  };
}
