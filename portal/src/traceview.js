// The donor's trace as people read it: one line ("您的 ¥520.00：¥300.00 → P-2026-04 …，
// 2026-05-20 已支付（账本第 312 条）；¥220.00 已预留给 P-2026-07；¥0.00 未使用") and one
// row per part. Amounts are BigInt fen (core/trace.js); dates are days in Asia/Shanghai.

import { t } from './i18n.js';
import { dayOf, formatFen } from './format.js';

/** The donor's line in `lang` ('zh-CN' or 'en'). */
export function traceLine(trace, lang) {
  if (trace.kind === 'goods') return goodsLine(trace, lang);
  const parts = trace.allocations.map((a) => (a.state === 'paid'
    ? t('my.trace.paid', { amount: formatFen(a.amount_fen), proposal: a.proposal, title: a.title, date: dayOf(a.payout.paid_at), entry: a.payout.ledger_entry }, lang)
    : t('my.trace.reserved', { amount: formatFen(a.amount_fen), proposal: a.proposal }, lang)));
  if (trace.refunded_fen > 0n) parts.push(t('my.trace.refunded', { amount: formatFen(trace.refunded_fen) }, lang));
  parts.push(t('my.trace.unspent', { amount: formatFen(trace.unspent_fen) }, lang));
  const restricted = trace.restricted_purpose === null ? '' : t('my.trace.restricted', { purpose: trace.restricted_purpose }, lang);
  return t('my.trace.line', { amount: formatFen(trace.amount_fen), restricted, parts: parts.join(t('my.trace.sep', {}, lang)) }, lang);
}

/**
 * One row per part: {state, proposal, title, amount_fen, date, entry} (proposal, date and
 * entry null where they do not apply); refunded and unspent rows only when not zero.
 */
export function traceRows(trace) {
  const rows = trace.allocations.map((a) => ({
    state: a.state, proposal: a.proposal, title: a.title, amount_fen: a.amount_fen,
    date: a.payout ? a.payout.paid_at : null, entry: a.payout ? a.payout.ledger_entry : null,
  }));
  for (const [state, amount] of [['refunded', trace.refunded_fen], ['unspent', trace.unspent_fen]]) {
    if (amount > 0n) rows.push({ state, proposal: null, title: null, amount_fen: amount, date: null, entry: null });
  }
  return rows;
}

/**
 * A goods gift's line (trace.rs `GoodsTrace::summary`): per line "50 袋 大米：30 袋 →
 * 重阳节 慰问独居老人（P-2026-08），2026-10-20（账本第 412 条）；20 袋 库存中", lines joined
 * by " | ", the purpose after the first line when restricted.
 */
function goodsLine(trace, lang) {
  const lines = trace.lines.map((l, i) => {
    const parts = l.distributions.map((d) => t('my.trace.goods.handed', {
      quantity: d.quantity, unit: l.unit, purpose: d.purpose,
      proposal: d.proposal === null ? '' : t('my.trace.goods.for', { proposal: d.proposal }, lang),
      date: dayOf(d.distribution.distributed_at), entry: d.distribution.ledger_entry,
    }, lang));
    parts.push(t('my.trace.goods.in_stock', { quantity: l.in_stock, unit: l.unit }, lang));
    const restricted = i === 0 && trace.restricted_purpose !== null ? t('my.trace.restricted', { purpose: trace.restricted_purpose }, lang) : '';
    return t('my.trace.goods.line', { quantity: l.quantity, unit: l.unit, name: l.name, restricted, parts: parts.join(t('my.trace.sep', {}, lang)) }, lang);
  });
  return t('my.trace.goods.your', { lines: lines.join(' | ') }, lang);
}

/**
 * A goods gift's rows: per line, one row per distribution {line, state: 'handed', proposal,
 * title, purpose, quantity, unit, name, date, entry}, then its stock row (state 'in_stock')
 * when not zero.
 */
export function goodsRows(trace) {
  const rows = [];
  for (const l of trace.lines) {
    for (const d of l.distributions) {
      rows.push({
        line: l.line, state: 'handed', proposal: d.proposal, title: d.title, purpose: d.purpose, quantity: d.quantity,
        unit: l.unit, name: l.name, date: d.distribution.distributed_at, entry: d.distribution.ledger_entry,
      });
    }
    if (l.in_stock > 0n) {
      rows.push({ line: l.line, state: 'in_stock', proposal: null, title: null, purpose: null, quantity: l.in_stock, unit: l.unit, name: l.name, date: null, entry: null });
    }
  }
  return rows;
}
