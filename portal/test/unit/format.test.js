import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fenToYuanText, formatBp, formatDate, formatFen, formatTime, monthOf } from '../../src/format.js';
import { STRINGS, setLang, t } from '../../src/i18n.js';
import { b64decode, b64encode, b64urlDecode, b64urlEncode } from '../../src/core/bytes.js';
import { parseReceiptLink, receiptLinkPath } from '../../src/core/donor.js';

test('fen are formatted as yuan without floating point', () => {
  assert.equal(formatFen(0), '¥0.00');
  assert.equal(formatFen(5), '¥0.05');
  assert.equal(formatFen(123456), '¥1,234.56');
  assert.equal(formatFen(-100), '-¥1.00');
  assert.equal(formatFen(9007199254740991), '¥90,071,992,547,409.91');
  assert.equal(formatFen(12345678901234567890n), '¥123,456,789,012,345,678.90');
  assert.equal(formatFen('not a number'), '—');
  assert.equal(fenToYuanText(-5), '-0.05');
  assert.equal(formatBp(7125), '71.25 %');
});

test('dates are shown in Asia/Shanghai', () => {
  setLang('zh-CN');
  // 16:30 UTC on 31 March is 00:30 on 1 April in Beijing.
  assert.equal(monthOf('2026-03-31T16:30:00Z'), '2026-04');
  assert.equal(formatDate('2026-03-31T16:30:00Z'), '2026/04/01');
  assert.match(formatTime('2026-03-31T16:30:00Z'), /2026\/04\/01.*00:30/);
  setLang('en');
  assert.equal(formatDate('2026-03-31T16:30:00Z'), '2026-04-01');
  assert.equal(formatDate('garbage'), '—');
  setLang('zh-CN');
});

test('every string exists in both languages and uses the same placeholders', () => {
  for (const [key, pair] of Object.entries(STRINGS)) {
    assert.equal(pair.length, 2, key);
    assert.ok(pair[0] && pair[1], key);
    const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(names(pair[0]), names(pair[1]), key);
  }
  setLang('en');
  assert.equal(t('cash.received'), 'Received');
  setLang('zh-CN');
  assert.equal(t('cash.received'), '已收到');
});

test('base64 refuses what Rust refuses', () => {
  assert.equal(b64encode(new Uint8Array([1, 2, 3, 4])), 'AQIDBA==');
  assert.deepEqual([...b64decode('AQIDBA==')], [1, 2, 3, 4]);
  assert.equal(b64decode('AQIDBA='), null);
  assert.equal(b64decode('AQIDBB=='), null, 'non-zero trailing bits');
  assert.equal(b64decode('AQ$DBA=='), null);
  const salt = new Uint8Array(32).map((_, i) => i * 7);
  assert.equal(b64urlEncode(salt).length, 43);
  assert.deepEqual([...b64urlDecode(b64urlEncode(salt))], [...salt]);
});

test('receipt links: the agreed format, and damaged ones named', () => {
  const salt = new Uint8Array(32).fill(255);
  const path = receiptLinkPath(42n, salt, '+86 138 0000 0123');
  assert.equal(path, '42/__________________________________________8/%2B86%20138%200000%200123');
  const parsed = parseReceiptLink(path.split('/'));
  assert.equal(parsed.index, 42n);
  assert.equal(parsed.reference, '+86 138 0000 0123');
  assert.equal(parseReceiptLink(['7', b64urlEncode(salt)]).reference, null);
  const bad = (parts, re) => assert.throws(() => parseReceiptLink(parts), (e) => e.code === 'BadLink' && re.test(e.message));
  bad(['x', b64urlEncode(salt)], /ledger index "x"/);
  bad(['01', b64urlEncode(salt)], /ledger index/);
  bad(['1', 'abc'], /3 characters, a receipt link carries 43/);
  bad(['1', `${b64urlEncode(salt).slice(0, 42)}+`], /not base64url/);
  bad(['1', b64urlEncode(salt), '%E0%A4%A'], /percent-encoded/);
  bad(['1'], /#\/my\//);
});
