// Money and dates for people: integer fen as ¥1,234.56 without floating point, and
// instants in Asia/Shanghai.

import { getLang } from './i18n.js';

/** `fen` (integer Number, BigInt or decimal string) as "¥1,234.56" / "-¥1,234.56". */
export function formatFen(fen) {
  let n;
  try {
    n = typeof fen === 'bigint' ? fen : BigInt(fen);
  } catch {
    return '—';
  }
  const negative = n < 0n;
  if (negative) n = -n;
  const yuan = (n / 100n).toString();
  const cents = (n % 100n).toString().padStart(2, '0');
  const grouped = yuan.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '-' : ''}¥${grouped}.${cents}`;
}

/** Fen as a yuan decimal string for CSV ("1234.56"), exact. */
export function fenToYuanText(fen) {
  let n = BigInt(fen);
  const negative = n < 0n;
  if (negative) n = -n;
  return `${negative ? '-' : ''}${n / 100n}.${(n % 100n).toString().padStart(2, '0')}`;
}

/** Fen to whole yuan Number, for chart axes only (rounded down; display uses formatFen). */
export const fenToYuanNumber = (fen) => Number(BigInt(fen) / 100n);

/** Checked sum of fen values (BigInt). */
export function sumFen(values) {
  let total = 0n;
  for (const v of values) total += BigInt(v);
  return total;
}

export const TIME_ZONE = 'Asia/Shanghai';
const formatters = new Map();
function formatter(kind) {
  const key = `${getLang()}:${kind}`;
  if (!formatters.has(key)) {
    const options = { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' };
    if (kind === 'time') Object.assign(options, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(key, new Intl.DateTimeFormat(getLang() === 'en' ? 'en-CA' : 'zh-CN', options));
  }
  return formatters.get(key);
}

export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : formatter('date').format(d);
}
export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : formatter('time').format(d);
}

/** "2026-05-20": the day of an instant in Asia/Shanghai, in either language. */
export function dayOf(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

/** "2026-03" of an instant, in Asia/Shanghai. */
export function monthOf(iso) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit' }).formatToParts(new Date(iso));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get('year')}-${get('month')}`;
}

/** Basis points as "71.25 %". */
export function formatBp(bp) {
  if (bp === null || bp === undefined) return null;
  const n = BigInt(bp);
  return `${n / 100n}.${(n % 100n).toString().padStart(2, '0')} %`;
}
