//! `verify_ledger` over a directory ledger of about 20,000 signed donations, against
//! bare Ed25519 strict verification of the same envelopes' signatures in the same run.
//! The figure is the ratio of verify's rate on every core to `cores × the bare rate on
//! one core` (the target is at least 0.8); absolute figures on a shared machine are
//! noise. Also printed: verify on one thread against the bare rate, and the bare
//! verification itself spread over every core (what this machine gives in parallel
//! right now).

use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::{Signature, VerifyingKey};
use fundtrail_audit::testing::LedgerBuilder;
use fundtrail_audit::{verify_ledger_with, DirSource, Threads, VerifyOptions};
use fundtrail_envelope::dsse::WireEnvelope;
use fundtrail_envelope::{pae, parse_public_key, PAYLOAD_TYPE};
use rayon::prelude::*;

/// mimalloc, the allocator of the `fundtrail` binary whose `verify` this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DONATIONS: u32 = 20_000;

/// What bare verification needs, decoded outside the timed loop.
struct Signed {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
}

fn decode_signatures(b: &LedgerBuilder) -> Vec<Signed> {
    let b64 = base64::engine::general_purpose::STANDARD;
    b.envelopes
        .iter()
        .map(|envelope| {
            let wire: WireEnvelope = serde_json::from_slice(envelope).expect("envelope");
            let payload = b64.decode(&wire.payload).expect("payload");
            let sig = &wire.signatures[0];
            let keyid = fundtrail_domain::KeyId::new(sig.keyid.clone()).expect("key id");
            let info = &b.fold.state.keys[&keyid];
            let signature: [u8; 64] = b64.decode(&sig.sig).expect("sig").try_into().expect("64 bytes");
            Signed {
                key: parse_public_key(&info.public_key).expect("key"),
                message: pae(PAYLOAD_TYPE, &payload),
                signature: Signature::from_bytes(&signature),
            }
        })
        .collect()
}

fn bare_verify(signed: &[Signed]) {
    for s in signed {
        s.key.verify_strict(&s.message, &s.signature).expect("verifies");
    }
}

/// The same verdicts by FundTrail's strict check (`fundtrail_envelope::ed25519`), which
/// skips decompressing R.
fn bare_check(signed: &[Signed]) {
    for s in signed {
        assert!(fundtrail_envelope::ed25519::verify_strict(&s.key, &s.message, &s.signature));
    }
}

/// Rounds of [`best_rates`]: each round times every contender once.
const ROUNDS: usize = 5;

/// Entries per second of each of `contenders` over `entries` entries, the best of
/// [`ROUNDS`] rounds. The contenders take turns within each round rather than running
/// their rounds one after the other, so that a slow spell of this shared machine
/// falls on all of them instead of on one side of a ratio.
fn best_rates<const N: usize>(entries: usize, contenders: &mut [&mut dyn FnMut(); N]) -> [f64; N] {
    let mut best = [Duration::MAX; N];
    for _ in 0..ROUNDS {
        for (contender, best) in contenders.iter_mut().zip(best.iter_mut()) {
            let start = Instant::now();
            contender();
            *best = (*best).min(start.elapsed());
        }
    }
    best.map(|d| entries as f64 / d.as_secs_f64())
}

fn bench(c: &mut Criterion) {
    let b = LedgerBuilder::realistic(DONATIONS);
    let dir = tempfile::tempdir().expect("temp dir");
    b.publish(dir.path(), &[]);
    let source = DirSource::new(dir.path());
    let log = b.signer.verifier();
    let signed = decode_signatures(&b);
    let entries = b.envelopes.len();
    let all = Threads::available();
    let (source, log) = (&source, &log);
    let verify_on = move |threads: Threads| {
        move || {
            let report = verify_ledger_with(source, log, VerifyOptions::default(), threads).expect("verifies");
            assert_eq!(report.entries as usize, entries);
        }
    };
    let verify = verify_on(all);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(all.get()).build().expect("pool");

    let [bare_rate, verify_rate, verify_one_rate, bare_all_rate, check_rate] = best_rates(
        entries,
        &mut [
            &mut || bare_verify(&signed),
            &mut verify_on(all),
            &mut verify_on(Threads::new(1).expect("1")),
            &mut || pool.install(|| signed.par_chunks(64).for_each(bare_verify)),
            &mut || bare_check(&signed),
        ],
    );
    let cores = all.get() as f64;
    println!(
        "verify_ledger on {} threads: {verify_rate:.0} entries/s; bare Ed25519 strict on one core: \
         {bare_rate:.0} entries/s; RATIO verify / (cores × bare) = {:.2} over {entries} entries",
        all.get(),
        verify_rate / (cores * bare_rate)
    );
    println!(
        "verify_ledger on 1 thread: {verify_one_rate:.0} entries/s = {:.2} × bare; \
         bare on {} threads: {bare_all_rate:.0} entries/s = {:.2} × cores × bare",
        verify_one_rate / bare_rate,
        all.get(),
        bare_all_rate / (cores * bare_rate)
    );
    println!(
        "FundTrail's strict check (same verdicts, R not decompressed) on one core: {check_rate:.0} entries/s = \
         {:.2} × bare",
        check_rate / bare_rate
    );

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(entries as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("verify_ledger_dir", |bench| bench.iter(&verify));
    group.bench_function("ed25519_verify_same_envelopes", |bench| bench.iter(|| bare_verify(&signed)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
