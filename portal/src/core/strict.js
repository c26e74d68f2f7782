// Strict JSON, as crates/fundtrail-envelope/src/strict.rs refuses it: what JSON.parse
// accepts silently and FundTrail does not. JSON.parse keeps the last of two equal keys,
// reads `1.0` and `1e3` as numbers, and rounds integers beyond 2^53. A signed event must
// mean one thing to every reader, so the text is walked once before it is parsed and
// refused if any object repeats a key, any number is not an integer, any integer is
// outside ±(2^53 − 1), or it nests deeper than 16. Messages are Rust's
// (`StrictJsonError`), but for malformed JSON, which names the position its own way.

export const JSON_INTEGER_MAX = 2n ** 53n - 1n;
export const JSON_DEPTH_MAX = 16;

export class StrictJsonError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StrictJsonError';
  }
}

const malformed = (at, what) => new StrictJsonError(`malformed JSON: ${what} at character ${at}`);

/** Throws a StrictJsonError unless `text` is one strict JSON value; returns JSON.parse(text). */
export function parseStrict(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = () => {
    const start = i;
    i++; // the opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return JSON.parse(text.slice(start, i));
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) throw malformed(i, 'control character in a string');
      else i++;
    }
    throw malformed(start, 'unterminated string');
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-') throw malformed(i, 'invalid number');
    i += m[0].length;
    if (m[2] !== undefined || m[3] !== undefined) throw new StrictJsonError(`number ${m[0]} is not an integer: amounts are integers in fen, never floats`);
    const n = BigInt(m[0]);
    if (n > JSON_INTEGER_MAX || n < -JSON_INTEGER_MAX) throw new StrictJsonError(`integer ${m[0]} is outside ±(2^53−1)`);
  };
  const literal = (word) => {
    if (text.startsWith(word, i)) i += word.length;
    else throw malformed(i, 'expected a value');
  };
  const value = (depth) => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= JSON_DEPTH_MAX) throw new StrictJsonError(`JSON nested deeper than ${JSON_DEPTH_MAX}`);
      i++;
      ws();
      const close = c === '{' ? '}' : ']';
      if (text[i] === close) {
        i++;
        return;
      }
      const keys = new Set();
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') throw malformed(i, 'expected a key');
          const key = string();
          if (keys.has(key)) throw new StrictJsonError(`duplicate JSON key ${JSON.stringify(key)}`);
          keys.add(key);
          ws();
          if (text[i] !== ':') throw malformed(i, 'expected a colon');
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        throw malformed(i, `expected , or ${close}`);
      }
    }
    if (c === '"') return void string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    throw malformed(i, 'expected a value');
  };
  value(0);
  ws();
  if (i !== text.length) throw malformed(i, 'trailing characters');
  return JSON.parse(text);
}
