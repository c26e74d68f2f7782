// The donor's trace (core/trace.js, traceview.js): read from a replayed state, written as
// the donor's line in Chinese and English, compared with the server's answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceIndex, giftTrace, traceDifference, traceFromJson, traceToJson } from '../../src/core/trace.js';
import { goodsRows, traceLine, traceRows } from '../../src/traceview.js';

const GIFT = '019ba5a1-c100-7869-821c-8124ac303943';
const PAYOUT = '019e4a10-0000-7000-8000-000000000001';

/** A replayed state as rules.js keeps it: ¥520.00, ¥300.00 paid to P-2026-04, ¥220.00 reserved for P-2026-07. */
function replayed() {
  const index = new TraceIndex();
  index.see(5n, { id: GIFT, type: 'donation.received', fund: 'xihu-jiedao', occurred_at: '2026-03-01T02:00:00Z', body: {} });
  index.see(7n, { id: 'p4', type: 'proposal.submitted', fund: 'xihu-jiedao', occurred_at: '2026-04-01T02:00:00Z', body: { proposal: 'P-2026-04', title: '楼道照明与适老化改造' } });
  index.see(9n, { id: 'p7', type: 'proposal.submitted', fund: 'xihu-jiedao', occurred_at: '2026-04-01T02:00:00Z', body: { proposal: 'P-2026-07', title: '重阳节敬老活动' } });
  index.see(312n, { id: PAYOUT, type: 'payout.made', fund: 'xihu-jiedao', occurred_at: '2026-05-20T02:00:00Z', body: {} });
  index.see(400n, { id: PAYOUT, type: 'payout.made', fund: 'xihu-jiedao', occurred_at: '2026-06-20T02:00:00Z', body: {} }); // a repeat: no effect
  const unrestricted = { unspent: new Map(), order: [] };
  const fund = {
    donations: new Map([[GIFT, { amount: 52000n, refunded: 0n, purpose: null, ordinal: 0, spent: [{ proposal: 'P-2026-04', payout: PAYOUT, amount: 30000n }] }]]),
    proposals: new Map([
      ['P-2026-04', { reservation: [] }],
      ['P-2026-07', { reservation: [{ ordinal: 0, donation: GIFT, purpose: null, amount: 22000n }] }],
    ]),
    unrestricted, restricted: new Map(),
  };
  return { state: { funds: new Map([['xihu-jiedao', fund]]) }, index, fund };
}

test('a gift is traced from the replayed state: paid parts with their payout and ledger entry, then reserved, then unspent', () => {
  const { state, index } = replayed();
  const trace = giftTrace(state, GIFT, index);
  assert.deepEqual(trace, {
    kind: 'cash', fund: 'xihu-jiedao', donation: GIFT, amount_fen: 52000n, restricted_purpose: null, received_at: '2026-03-01T02:00:00Z',
    allocations: [
      { proposal: 'P-2026-04', title: '楼道照明与适老化改造', amount_fen: 30000n, state: 'paid', payout: { event: PAYOUT, sequence: 313n, ledger_entry: 312n, paid_at: '2026-05-20T02:00:00Z' } },
      { proposal: 'P-2026-07', title: '重阳节敬老活动', amount_fen: 22000n, state: 'reserved', payout: null },
    ],
    refunded_fen: 0n, unspent_fen: 0n,
  });
  assert.equal(giftTrace(state, '019ba5a1-c100-7869-821c-000000000000', index), null);
  assert.deepEqual(traceFromJson(traceToJson(trace)), trace);
});

test('parts that do not sum to the gift are an error, never a wrong line', () => {
  const { state, index, fund } = replayed();
  fund.donations.get(GIFT).refunded = 1n;
  assert.throws(() => giftTrace(state, GIFT, index), /sum to 52001 fen, not its 52000/);
});

test('the donor line reads in Chinese and in English', () => {
  const { state, index } = replayed();
  const trace = giftTrace(state, GIFT, index);
  assert.equal(traceLine(trace, 'zh-CN'), '您的 ¥520.00：¥300.00 → P-2026-04 楼道照明与适老化改造，2026-05-20 已支付（账本第 312 条）；¥220.00 已预留给 P-2026-07；¥0.00 未使用');
  assert.equal(traceLine(trace, 'en'), 'your ¥520.00: ¥300.00 → P-2026-04 楼道照明与适老化改造, paid 2026-05-20 (ledger entry 312); ¥220.00 reserved for P-2026-07; ¥0.00 unspent');
  const restricted = { ...trace, restricted_purpose: '助老', allocations: [], refunded_fen: 2000n, unspent_fen: 50000n };
  assert.equal(traceLine(restricted, 'zh-CN'), '您的 ¥520.00（限定用于 助老）：¥20.00 已退款；¥500.00 未使用');
  assert.equal(traceLine(restricted, 'en'), 'your ¥520.00 (restricted to 助老): ¥20.00 refunded; ¥500.00 unspent');
  assert.deepEqual(traceRows(restricted).map((r) => [r.state, r.amount_fen]), [['refunded', 2000n], ['unspent', 50000n]]);
  assert.deepEqual(traceRows(trace).map((r) => [r.state, r.proposal, r.entry]), [['paid', 'P-2026-04', 312n], ['reserved', 'P-2026-07', null]]);
});

test('the server\'s answer agrees, or its first difference is named', () => {
  const { state, index } = replayed();
  const trace = giftTrace(state, GIFT, index);
  const server = JSON.parse(JSON.stringify(traceToJson(trace), (k, v) => (/_fen$|sequence|ledger_entry/.test(k) ? Number(v) : v)));
  server.summary = 'your ¥520.00: …';
  server.allocations[0].payout.paid_at = '2026-05-20T02:00:00.000Z';
  assert.equal(traceDifference(trace, server), null);
  server.allocations[1].amount_fen = 21999;
  assert.equal(traceDifference(trace, server), 'allocations[1].amount_fen: here 22000, server 21999');
  server.allocations.pop();
  assert.equal(traceDifference(trace, server), 'allocations: here 2 parts, server 1');
  assert.equal(traceDifference(trace, { ...server, allocations: traceToJson(trace).allocations, unspent_fen: '1.5' }), 'unspent_fen: here 0, server 1.5');
});

// The Rust-written ledger with restricted gifts (test/vectors/ledgers/restricted): every
// gift's trace from the browser's replay is whole and adds up to the fund's money as the
// Rust report gives it, and restricted money went only to proposals of its purpose.
test('the restricted-gifts vector: every trace is whole and the traces add up to the fund\'s cash', async () => {
  const { parseVkey } = await import('../../src/core/ledger.js');
  const { FetchError, verifyLedger } = await import('../../src/core/verify.js');
  const { loadLedger, vectors } = await import('./vector-files.js');
  const c = vectors.cases.find((x) => x.name === 'restricted-gifts-honoured');
  const files = loadLedger(c.ledger);
  const index = new TraceIndex();
  const events = [];
  const result = await verifyLedger(async (path) => {
    if (!files.has(path)) throw new FetchError(path, 'not found', true);
    return files.get(path);
  }, parseVkey(vectors.vkey), { onEvent: (i, opened) => { index.see(i, opened.event); events.push(opened.event); } });
  const purposeOf = new Map(events.filter((e) => e.type === 'proposal.submitted').map((e) => [e.body.proposal, e.v >= 2 ? e.body.purpose : null]));
  const gifts = events.filter((e) => e.type === 'donation.received');
  const traces = gifts.map((g) => giftTrace(result.rules, g.id, index));
  const sum = (xs) => xs.reduce((a, b) => a + b, 0n);
  const cash = c.expect.funds[0].cash;
  assert.equal(sum(traces.map((t) => t.unspent_fen)), BigInt(cash.available_fen));
  assert.equal(sum(traces.map((t) => t.refunded_fen)), BigInt(cash.refunded_fen));
  const parts = traces.flatMap((t) => t.allocations.map((a) => ({ ...a, purpose: t.restricted_purpose })));
  assert.equal(sum(parts.filter((a) => a.state === 'paid').map((a) => a.amount_fen)), BigInt(cash.paid_fen));
  assert.equal(sum(parts.filter((a) => a.state === 'reserved').map((a) => a.amount_fen)), BigInt(cash.reserved_fen));
  assert.ok(traces.some((t) => t.restricted_purpose !== null), 'the vector has restricted gifts');
  for (const a of parts) if (a.purpose !== null) assert.equal(purposeOf.get(a.proposal), a.purpose, `${a.proposal} was paid from money restricted to ${a.purpose}`);
  for (const a of parts.filter((x) => x.state === 'paid')) {
    assert.equal(a.payout.sequence, a.payout.ledger_entry + 1n);
    assert.equal(index.events.get(a.payout.event).index, a.payout.ledger_entry);
  }
});

const GOODS = '019ba5a1-c100-7869-821c-8124ac303944';
const HANDED = '019e4a10-0000-7000-8000-000000000002';

/** A replayed goods gift as rules.js keeps it: 50 袋 大米 restricted to 助老, 30 handed out for P-2026-08, 20 in stock. */
function replayedGoods() {
  const index = new TraceIndex();
  index.see(6n, { id: GOODS, type: 'goods.received', fund: 'xihu-jiedao', occurred_at: '2026-10-06T02:00:00Z', body: {} });
  index.see(9n, { id: 'p8', type: 'proposal.submitted', fund: 'xihu-jiedao', occurred_at: '2026-10-07T02:00:00Z', body: { proposal: 'P-2026-08', title: '冬季独居老人取暖设备' } });
  index.see(412n, { id: HANDED, type: 'goods.distributed', fund: 'xihu-jiedao', occurred_at: '2026-10-20T02:00:00Z', body: {} });
  const fund = {
    donations: new Map(), proposals: new Map(), unrestricted: { unspent: new Map(), order: [] }, restricted: new Map(),
    goodsGifts: new Map([[GOODS, { purpose: '助老', lines: [{ name: '大米', unit: '袋', quantity: 50n, unit_value_fen: 6000n, ordinal: 0, handed: [{ distribution: HANDED, quantity: 30n }] }] }]]),
    lots: new Map([['大米\u0000袋', { unrestricted: [], restricted: new Map([['助老', [{ ordinal: 0, gift: GOODS, line: 0, left: 20n }]]]) }]]),
    distributions: new Map([[HANDED, { proposal: 'P-2026-08', purpose: '重阳节 慰问独居老人' }]]),
  };
  return { state: { funds: new Map([['xihu-jiedao', fund]]) }, index, fund };
}

test('a goods gift is traced line by line: its distributions with their ledger entry, then what is in stock', () => {
  const { state, index } = replayedGoods();
  const trace = giftTrace(state, GOODS, index);
  assert.deepEqual(trace, {
    kind: 'goods', fund: 'xihu-jiedao', donation: GOODS, restricted_purpose: '助老', received_at: '2026-10-06T02:00:00Z',
    lines: [{
      line: 0, name: '大米', unit: '袋', quantity: 50n, unit_value_fen: 6000n, in_stock: 20n,
      distributions: [{
        distribution: { event: HANDED, sequence: 413n, ledger_entry: 412n, distributed_at: '2026-10-20T02:00:00Z' },
        proposal: 'P-2026-08', title: '冬季独居老人取暖设备', purpose: '重阳节 慰问独居老人', quantity: 30n,
      }],
    }],
  });
  assert.deepEqual(traceFromJson(traceToJson(trace)), trace);
  assert.equal(traceLine(trace, 'zh-CN'), '您的 50 袋 大米（限定用于 助老）：30 袋 → 重阳节 慰问独居老人（P-2026-08），2026-10-20（账本第 412 条）；20 袋 库存中');
  assert.equal(traceLine(trace, 'en'), 'your 50 袋 大米 (restricted to 助老): 30 袋 → 重阳节 慰问独居老人 (P-2026-08), 2026-10-20 (ledger entry 412); 20 袋 in stock');
  assert.deepEqual(goodsRows(trace).map((r) => [r.state, r.quantity, r.entry]), [['handed', 30n, 412n], ['in_stock', 20n, null]]);
  // The server's answer (JSON numbers) agrees; a different quantity is named.
  const server = JSON.parse(JSON.stringify(traceToJson(trace)).replace(/"(\d+)"/g, '$1'));
  assert.equal(traceDifference(trace, server), null);
  server.lines[0].in_stock = 19;
  assert.equal(traceDifference(trace, server), 'lines[0].in_stock: here 20, server 19');
});

test('a goods line whose parts do not sum to it is an error', () => {
  const { state, index, fund } = replayedGoods();
  fund.goodsGifts.get(GOODS).lines[0].quantity = 51n;
  assert.throws(() => giftTrace(state, GOODS, index), /sums to 50, not its 51/);
});
