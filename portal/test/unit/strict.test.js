// strict.js refuses what crates/fundtrail-envelope/src/strict.rs refuses, with its words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStrict } from '../../src/core/strict.js';

const refused = (text, message) => assert.throws(() => parseStrict(text), (e) => e.message === message, text);

test('strict JSON is parsed as JSON.parse parses it', () => {
  const text = '{"a":[1,-2,9007199254740991,-9007199254740991,"x\\"y",true,false,null,{}],"b":{"c":[]}}';
  assert.deepEqual(parseStrict(text), JSON.parse(text));
  assert.deepEqual(parseStrict(' \n 0 '), 0);
});

test('duplicate keys, floats, big integers and deep nesting are refused with the Rust words', () => {
  refused('{"a":1,"a":2}', 'duplicate JSON key "a"');
  refused('{"a":{"b":1,"\\u0062":2}}', 'duplicate JSON key "b"');
  refused('{"amount_fen":1.0}', 'number 1.0 is not an integer: amounts are integers in fen, never floats');
  refused('[1e3]', 'number 1e3 is not an integer: amounts are integers in fen, never floats');
  refused('[9007199254740992]', 'integer 9007199254740992 is outside ±(2^53−1)');
  refused('[-9007199254740992]', 'integer -9007199254740992 is outside ±(2^53−1)');
  refused('['.repeat(17) + ']'.repeat(17), 'JSON nested deeper than 16');
  parseStrict('['.repeat(16) + ']'.repeat(16));
});

test('malformed JSON is refused, never parsed leniently', () => {
  for (const text of ['', '{', '{"a" 1}', '[1,]', '01', '"\u0001"', '{"a":1}x', 'tru', '[-]', '{a:1}']) {
    assert.throws(() => parseStrict(text), /^StrictJsonError: malformed JSON: /, JSON.stringify(text));
  }
});
