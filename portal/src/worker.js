// The whole-ledger verification, off the page's thread. Message in: {base, vkey,
// previous?, collect?, trace?, traceAt?}; messages out: {type: 'progress', done, total}, then
// {type: 'done', entries, root, size, engine, funds, events?, trace?, traceAt?} or {type: 'failed', message, index, kind, rule}.

import { b64encode } from './core/bytes.js';
import { engine } from './core/ed25519.js';
import { ledgerReader } from './core/fetch.js';
import { hashFromBase64, parseVkey } from './core/ledger.js';
import { verifyLedger } from './core/verify.js';
import { TraceIndex, giftTrace, traceToJson } from './core/trace.js';

self.onmessage = async (message) => {
  const { base, vkey, previous, collect, trace, traceAt } = message.data;
  const events = collect ? [] : null;
  // `trace`: a donation's event id whose trace (core/trace.js) the replay should give, at
  // the end and, with `traceAt` (a ledger size, as a decimal string), as it stood once
  // exactly that many entries were replayed (null if the checkpoint verified is smaller).
  const seen = trace ? new TraceIndex() : null;
  const at = trace && traceAt ? BigInt(traceAt) : null;
  let tracedAt = null;
  try {
    const log = parseVkey(vkey);
    let last = 0;
    const result = await verifyLedger(ledgerReader(base), log, {
      previous: previous ? { origin: previous.origin, size: BigInt(previous.size), root: hashFromBase64(previous.root) } : null,
      progress: (done, total) => {
        const now = Date.now();
        if (now - last > 100 || done === total) {
          last = now;
          self.postMessage({ type: 'progress', done: Number(done), total: Number(total) });
        }
      },
      onEvent: events || seen ? (index, opened, rules) => {
        if (events) events.push({ index: Number(index), keyid: opened.keyid, signature: opened.signature, event: opened.event });
        if (seen) seen.see(index, opened.event);
        if (at !== null && BigInt(index) + 1n === at) {
          const found = giftTrace(rules, trace, seen);
          tracedAt = found && traceToJson(found);
        }
      } : null,
    });
    // Every fund's money as replayed here, amounts as decimal strings (BigInt fen).
    const funds = JSON.parse(JSON.stringify(result.funds, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    self.postMessage({
      type: 'done', entries: Number(result.entries), size: String(result.checkpoint.size), funds,
      note: new TextDecoder().decode(result.checkpoint.note),
      root: b64encode(result.checkpoint.root), origin: result.checkpoint.origin, engine: engine(), events,
      trace: seen ? (() => {
        const found = giftTrace(result.rules, trace, seen);
        return found && traceToJson(found);
      })() : undefined,
      traceAt: at === null ? undefined : tracedAt,
    });
  } catch (e) {
    self.postMessage({ type: 'failed', message: e.message, index: e.index === undefined || e.index === null ? null : String(e.index), kind: e.kind || e.name, rule: e.rule || null });
  }
};
