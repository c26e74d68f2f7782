//! Ed25519 strict verification: exactly the verdicts of ed25519-dalek's
//! `VerifyingKey::verify_strict`, for a tenth less work.
//!
//! `verify_strict` accepts a signature `(R, S)` by key `A` over `M` when (RFC 8032
//! §5.1.7, cofactorless, plus two refusals of its own):
//! 1. `S` is canonical (`S < ℓ`);
//! 2. `R` decompresses to a point, and that point is not of small order;
//! 3. `A` is not of small order (not a weak key);
//! 4. the encoding of `R' = [S]B − [k]A`, `k = SHA-512(R ‖ A ‖ M) mod ℓ`, equals
//!    the bytes of `R`.
//!
//! Decompressing `R` costs a field square root, about a tenth of the whole. It is not
//! needed: [`verify_strict`] checks 1, 3 and 4 with dalek's own `verify` (which is 1 and
//! 4) and `is_weak` (3), and 2 by refusing the eight canonical encodings of the points
//! of small order ([`SMALL_ORDER_ENCODINGS`]), as libsodium does. The verdicts are the
//! same:
//! - Whatever `verify_strict` accepts, this accepts: by 4, `R`'s bytes are the
//!   canonical encoding of `R'`; by 2, `R'` is not of small order, so its canonical
//!   encoding is not one of the eight.
//! - Whatever this accepts, `verify_strict` accepts: by 4, `R`'s bytes are the
//!   canonical encoding of the point `R'`, so they decompress (to `R'`); were `R'` of
//!   small order, its canonical encoding would be one of the eight, which were refused.
//!
//! The tests check the table is exactly the eight points of small order and compare
//! the two verdicts on valid, mutated and crafted signatures (weak keys, small-order
//! and mixed-order `R`, non-canonical encodings).

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};

/// The canonical encodings of the eight points of small order (the 8-torsion
/// subgroup): the identity, the point of order 2, two of order 4 and four of order 8.
/// A point of small order has no other canonical encoding; the tests prove the table.
pub const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = [
    // order 1: (0, 1)
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    // order 2: (0, −1)
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    // order 4: (±√−1, 0)
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    // order 8: y = ±c, both signs of x
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
];

/// Whether `signature` is a valid strict Ed25519 signature by `key` over `message`:
/// the verdict of `key.verify_strict(message, signature)` (see the module's proof).
pub fn verify_strict(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    !key.is_weak() && !SMALL_ORDER_ENCODINGS.contains(signature.r_bytes()) && key.verify(message, signature).is_ok()
}

/// 64 hex digits as 32 bytes, at compile time.
const fn hex32(text: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let text = text.as_bytes();
    assert!(text.len() == 64, "32 bytes are 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(text[2 * i]) << 4 | digit(text[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{Identity as _, IsIdentity as _};
    use ed25519_dalek::{Signer as _, SigningKey};
    use sha2::{Digest as _, Sha512};

    fn random<const N: usize>() -> [u8; N] {
        let mut bytes = [0u8; N];
        getrandom::fill(&mut bytes).expect("OS RNG");
        bytes
    }

    fn random_scalar() -> Scalar {
        Scalar::from_bytes_mod_order_wide(&random::<64>())
    }

    fn point(bytes: &[u8; 32]) -> EdwardsPoint {
        CompressedEdwardsY(*bytes).decompress().expect("a point")
    }

    /// `k = SHA-512(R ‖ A ‖ M) mod ℓ` (RFC 8032 §5.1.7 step 2).
    fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(a);
        hash.update(message);
        Scalar::from_bytes_mod_order_wide(&hash.finalize().into())
    }

    /// Both verdicts, which must agree; returns it.
    fn verdict(key: &[u8; 32], message: &[u8], r: &[u8; 32], s: &[u8; 32]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(key) else { return false };
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(r);
        bytes[32..].copy_from_slice(s);
        let signature = Signature::from_bytes(&bytes);
        let dalek = key.verify_strict(message, &signature).is_ok();
        let ours = verify_strict(&key, message, &signature);
        assert_eq!(ours, dalek, "key {key:?} r {r:?} s {s:?}");
        ours
    }

    /// `(R, S)` that satisfies the cofactorless equation for secret `a` and nonce
    /// point `r_point` (any point: `S = r + k·a` needs `r_point = [r]B + T`).
    fn forge(a: Scalar, r: Scalar, torsion: EdwardsPoint, message: &[u8]) -> ([u8; 32], [u8; 32], [u8; 32]) {
        let key = (B * a).compress().to_bytes();
        let r_bytes = (B * r + torsion).compress().to_bytes();
        let s = r + challenge(&r_bytes, &key, message) * a;
        (key, r_bytes, s.to_bytes())
    }

    #[test]
    fn the_table_is_the_eight_points_of_small_order() {
        let points: Vec<EdwardsPoint> = SMALL_ORDER_ENCODINGS.iter().map(point).collect();
        for (bytes, p) in SMALL_ORDER_ENCODINGS.iter().zip(&points) {
            assert!(p.is_small_order(), "{bytes:?}");
            assert_eq!(p.compress().to_bytes(), *bytes, "canonical");
        }
        for (i, a) in SMALL_ORDER_ENCODINGS.iter().enumerate() {
            assert!(!SMALL_ORDER_ENCODINGS[i + 1..].contains(a), "distinct");
        }
        // Eight distinct points of small order, each canonically encoded: the whole
        // 8-torsion subgroup (it has eight). Closed under addition, as a check.
        for p in &points {
            for q in &points {
                assert!(SMALL_ORDER_ENCODINGS.contains(&(p + q).compress().to_bytes()));
            }
        }
        assert_eq!(SMALL_ORDER_ENCODINGS[0], EdwardsPoint::identity().compress().to_bytes());
    }

    #[test]
    fn valid_and_mutated_signatures_get_the_same_verdicts() {
        for round in 0..200 {
            let key = SigningKey::from_bytes(&random::<32>());
            let message = random::<48>();
            let signature = key.sign(&message).to_bytes();
            let (r, s): ([u8; 32], [u8; 32]) =
                (signature[..32].try_into().expect("32"), signature[32..].try_into().expect("32"));
            let public = key.verifying_key().to_bytes();
            assert!(verdict(&public, &message, &r, &s));
            let bit = round % 256;
            let flip = |mut bytes: [u8; 32]| {
                bytes[bit / 8] ^= 1 << (bit % 8);
                bytes
            };
            verdict(&public, &message, &flip(r), &s);
            verdict(&public, &message, &r, &flip(s));
            verdict(&flip(public), &message, &r, &s);
            assert!(!verdict(&public, &random::<48>(), &r, &s));
            // Random bytes for R: mostly not a point, sometimes one.
            assert!(!verdict(&public, &message, &random::<32>(), &s));
        }
    }

    #[test]
    fn a_small_order_r_is_refused_though_the_equation_holds() {
        let message = b"small-order R";
        for torsion in SMALL_ORDER_ENCODINGS.iter().map(point) {
            // R = T exactly (nonce r = 0): [S]B − [k]A = T fails cofactorless unless
            // T is the identity, which is then refused for being of small order.
            let a = random_scalar();
            let (key, r, s) = forge(a, Scalar::ZERO, torsion, message);
            assert!(!verdict(&key, message, &r, &s));
            // R = [r]B + T: of mixed order, refused by the equation alone.
            let (key, r, s) = forge(a, random_scalar(), torsion, message);
            assert_eq!(verdict(&key, message, &r, &s), torsion.is_identity());
        }
        // The identity as R with S = k·a satisfies the equation: only the small-order
        // rule refuses it.
        let a = random_scalar();
        let (key, r, s) = forge(a, Scalar::ZERO, EdwardsPoint::identity(), message);
        let signature = Signature::from_bytes(&[r, s].concat().try_into().expect("64"));
        let key = VerifyingKey::from_bytes(&key).expect("key");
        assert!(key.verify(message, &signature).is_ok(), "the cofactorless equation holds");
        assert!(!verify_strict(&key, message, &signature));
    }

    #[test]
    fn a_weak_key_is_refused_though_the_equation_holds() {
        let message = b"weak key";
        for weak in SMALL_ORDER_ENCODINGS {
            // A of small order: [k]A is a point of small order; with R = [S]B − [k]A
            // the equation holds for R computed after k, which needs k before R — so
            // take A = identity, where [k]A vanishes for every k.
            let s = random_scalar();
            let r = (B * s).compress().to_bytes();
            assert!(!verdict(&weak, message, &r, &s.to_bytes()));
        }
        let identity = EdwardsPoint::identity().compress().to_bytes();
        let s = random_scalar();
        let r = (B * s).compress().to_bytes();
        let key = VerifyingKey::from_bytes(&identity).expect("key");
        let signature = Signature::from_bytes(&[r, s.to_bytes()].concat().try_into().expect("64"));
        assert!(key.verify(message, &signature).is_ok(), "the cofactorless equation holds");
        assert!(!verify_strict(&key, message, &signature));
    }

    #[test]
    fn non_canonical_encodings_get_the_same_verdicts() {
        let message = b"non-canonical";
        let a = random_scalar();
        let (key, r, s) = forge(a, random_scalar(), EdwardsPoint::identity(), message);
        assert!(verdict(&key, message, &r, &s));
        // S + ℓ: the same scalar, not canonical (S < ℓ < 2^253, so it fits).
        let l_minus_1 = (Scalar::ZERO - Scalar::ONE).to_bytes();
        let mut s_plus_l = [0u8; 32];
        let mut carry = 1u16; // ℓ − 1 + 1
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(l_minus_1[i]) + carry;
            s_plus_l[i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!verdict(&key, message, &r, &s_plus_l));
        // R and A written with y ≥ p (y + p fits only for y < 19), and "−0" (x = 0,
        // sign bit set): the points of small order are the ones with such encodings.
        let mut y_plus_p = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        y_plus_p[0] = 0xee; // p + 1: the identity, not canonical
        let negative_zero = hex32("0100000000000000000000000000000000000000000000000000000000000080");
        for odd in [y_plus_p, negative_zero] {
            assert!(!verdict(&key, message, &odd, &s));
            assert!(!verdict(&odd, message, &r, &s));
            let (_, r_forged, s_forged) = forge(a, Scalar::ZERO, EdwardsPoint::identity(), message);
            assert_eq!(r_forged, SMALL_ORDER_ENCODINGS[0]);
            assert!(!verdict(&key, message, &odd, &s_forged));
        }
    }
}
