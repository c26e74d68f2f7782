// Ed25519 verification with exactly the rules of ed25519-dalek's `verify_strict`, which
// `fundtrail verify` uses for checkpoints and events: S canonical (< L), neither the
// public key A nor the commitment R of small order, and the cofactorless equation
// encode([S]B − [k]A) == R. These pre-checks run in JS (@noble/ed25519, audited); the
// equation runs on the platform's Web Crypto Ed25519 when it has one (fast, native),
// else on @noble/ed25519's point arithmetic.

import { Point } from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { equalBytes } from './bytes.js';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function leToBigInt(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** A parsed public key, or null if it is not a valid, non-weak Ed25519 point. */
export function parsePublicKey(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) return null;
  let point;
  try {
    point = Point.fromBytes(bytes, true);
  } catch {
    return null;
  }
  return { bytes, point, weak: point.isSmallOrder(), webKey: undefined };
}

let subtle = globalThis.crypto && globalThis.crypto.subtle;
let webCryptoWorks; // undefined: not probed yet

/** Turns the Web Crypto path off (tests compare both paths). */
export function useWebCrypto(on) {
  subtle = on ? globalThis.crypto && globalThis.crypto.subtle : null;
  webCryptoWorks = on ? undefined : false;
}

async function webKey(key) {
  if (webCryptoWorks === false || !subtle) return null;
  if (key.webKey !== undefined) return key.webKey;
  try {
    key.webKey = await subtle.importKey('raw', key.bytes, { name: 'Ed25519' }, false, ['verify']);
    webCryptoWorks = true;
  } catch {
    key.webKey = null;
    webCryptoWorks = false;
  }
  return key.webKey;
}

/** Which implementation ran the equation last: 'webcrypto' or 'noble'. */
export function engine() {
  return webCryptoWorks ? 'webcrypto' : 'noble';
}

function precheck(key, signature) {
  if (!key || key.weak) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  const s = leToBigInt(signature.subarray(32));
  if (s >= L) return false;
  let r;
  try {
    r = Point.fromBytes(signature.subarray(0, 32), true);
  } catch {
    return false;
  }
  return !r.isSmallOrder();
}

function nobleEquation(key, signature, message) {
  const rBytes = signature.subarray(0, 32);
  const s = leToBigInt(signature.subarray(32));
  const k = leToBigInt(sha512(new Uint8Array([...rBytes, ...key.bytes, ...message]))) % L;
  const sb = s === 0n ? Point.ZERO : Point.BASE.multiply(s);
  const ka = k === 0n ? Point.ZERO : key.point.multiply(k);
  return equalBytes(sb.subtract(ka).toBytes(), rBytes);
}

/** Strict Ed25519 verification (see the module comment). */
export async function verifyStrict(key, signature, message) {
  if (!precheck(key, signature)) return false;
  const web = await webKey(key);
  if (web) {
    try {
      return await subtle.verify({ name: 'Ed25519' }, web, signature, message);
    } catch {
      // fall through to the JS equation
    }
  }
  return nobleEquation(key, signature, message);
}
