// Strict Ed25519: exactly ed25519-dalek's verify_strict rules, on both engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPublicKeyAsync, signAsync } from '@noble/ed25519';
import { parsePublicKey, useWebCrypto, verifyStrict } from '../../src/core/ed25519.js';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 255n));
const fromLe = (b) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);

for (const webcrypto of [true, false]) {
  test(`strict verification (${webcrypto ? 'Web Crypto' : '@noble/ed25519'})`, async () => {
    useWebCrypto(webcrypto);
    const seed = new Uint8Array(32).fill(9);
    const pub = parsePublicKey(await getPublicKeyAsync(seed));
    const msg = new TextEncoder().encode('DSSEv1 4 type 2 hi');
    const sig = await signAsync(msg, seed);
    assert.equal(await verifyStrict(pub, sig, msg), true);
    assert.equal(await verifyStrict(pub, sig, msg.slice(1)), false, 'another message');
    const flipped = sig.slice();
    flipped[10] ^= 1;
    assert.equal(await verifyStrict(pub, flipped, msg), false, 'a flipped bit');
    // S + L: the same signature with a non-canonical scalar is refused.
    const malleable = sig.slice();
    malleable.set(le(fromLe(sig.subarray(32)) + L), 32);
    assert.equal(await verifyStrict(pub, malleable, msg), false, 'non-canonical S');
    // A small-order public key (the identity) and a small-order R are refused.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const weak = parsePublicKey(identity);
    assert.ok(weak.weak);
    const zeroS = new Uint8Array(64);
    zeroS.set(identity, 0);
    assert.equal(await verifyStrict(weak, zeroS, msg), false, 'small-order key');
    assert.equal(await verifyStrict(pub, zeroS, msg), false, 'small-order R');
    assert.equal(parsePublicKey(new Uint8Array(31)), null);
    useWebCrypto(true);
  });
}
