// The whole-ledger verification, off the page's thread. Message in: {base, vkey,
// previous?, collect?, trace?}; messages out: {type: 'progress', done, total}, then
// {type: 'done', entries, root, size, engine, funds, events?, trace?} or {type: 'failed', message, index, kind, rule}.

import { b64encode } from './core/bytes.js';
import { engine } from './core/ed25519.js';
import { ledgerReader } from './core/fetch.js';
import { hashFromBase64, parseVkey } from './core/ledger.js';
import { verifyLedger } from './core/verify.js';
import { TraceIndex, giftTrace, traceToJson } from './core/trace.js';

self.onmessage = async (message) => {
  const { base, vkey, previous, collect, trace } = message.data;
  const events = collect ? [] : null;
  // `trace`: a donation's event id whose trace (core/trace.js) the replay should give.
  const seen = trace ? new TraceIndex() : null;
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
      onEvent: events || seen ? (index, opened) => {
        if (events) events.push({ index: Number(index), keyid: opened.keyid, signature: opened.signature, event: opened.event });
        if (seen) seen.see(index, opened.event);
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
    });
  } catch (e) {
    self.postMessage({ type: 'failed', message: e.message, index: e.index === undefined || e.index === null ? null : String(e.index), kind: e.kind || e.name, rule: e.rule || null });
  }
};
