// Byte helpers: base64 (standard and URL-safe, strict), hex, UTF-8.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function lookup(alphabet) {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}
const B64_TABLE = lookup(B64);
const B64URL_TABLE = lookup(B64URL);

function encode(bytes, alphabet, pad) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? '=' : '');
  }
  return out;
}

/** Decodes base64; returns null on any non-canonical input (as Rust's base64 crate refuses). */
function decode(text, table, padded) {
  if (typeof text !== 'string') return null;
  let body = text;
  if (padded) {
    if (text.length % 4 !== 0) return null;
    if (text.endsWith('==')) body = text.slice(0, -2);
    else if (text.endsWith('=')) body = text.slice(0, -1);
  } else if (text.length % 4 === 1) {
    return null;
  }
  const full = Math.floor(body.length / 4);
  const rest = body.length % 4;
  if (rest === 1) return null;
  const out = new Uint8Array(full * 3 + (rest === 0 ? 0 : rest - 1));
  const val = (c) => {
    const code = body.charCodeAt(c);
    return code < 128 ? table[code] : -1;
  };
  let o = 0;
  for (let q = 0; q < full; q++) {
    const a = val(4 * q), b = val(4 * q + 1), c = val(4 * q + 2), d = val(4 * q + 3);
    if ((a | b | c | d) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >> 16; out[o++] = (n >> 8) & 255; out[o++] = n & 255;
  }
  const at = full * 4;
  if (rest === 2) {
    const a = val(at), b = val(at + 1);
    if ((a | b) < 0 || (b & 15) !== 0) return null;
    out[o] = (a << 2) | (b >> 4);
  } else if (rest === 3) {
    const a = val(at), b = val(at + 1), c = val(at + 2);
    if ((a | b | c) < 0 || (c & 3) !== 0) return null;
    out[o] = (a << 2) | (b >> 4);
    out[o + 1] = ((b & 15) << 4) | (c >> 2);
  }
  return out;
}

export const b64encode = (bytes) => encode(bytes, B64, true);
export const b64decode = (text) => decode(text, B64_TABLE, true);
export const b64urlEncode = (bytes) => encode(bytes, B64URL, false);
export const b64urlDecode = (text) => decode(text, B64URL_TABLE, false);

export function hex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
export const utf8 = (text) => encoder.encode(text);
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
/** UTF-8 bytes to text, or null if they are not valid UTF-8. */
export function utf8Decode(bytes) {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

export function concat(...parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Big-endian u64 at `offset` as a BigInt. */
export function readU64(bytes, offset) {
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(bytes[offset + i]);
  return n;
}
