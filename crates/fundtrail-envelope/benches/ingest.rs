//! Decode + verify + decide + evolve of one signed donation, against bare
//! Ed25519 verification of the same envelope's signature in the same run.
//! The ratio (pipeline time / bare verify time) is what to compare across
//! machines; absolute figures on a shared machine are noise.

use std::collections::HashMap;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::{Signature, VerifyingKey};
use fundtrail_domain::event::*;
use fundtrail_domain::testing::{donation, World, FUND};
use fundtrail_domain::{decide, evolve, Event, Fen, FundId, KeyId};
use fundtrail_envelope::{open, pae, ActorKey, PAYLOAD_TYPE};

struct Setup {
    world: World,
    intake: ActorKey,
    keys: HashMap<KeyId, VerifyingKey>,
}

fn setup() -> Setup {
    let mut world = World::with_fund();
    let intake = ActorKey::generate().expect("OS RNG");
    let key = intake.key_id();
    let enrol = EventBody::KeyEnrolled(KeyEnrolled {
        key: key.clone(),
        public_key: intake.public_key_b64(),
        label: "收款服务".into(),
    });
    world.given("admin", "host", enrol);
    world.given("admin", FUND, EventBody::RoleGranted(RoleGranted { key: key.clone(), role: Role::Intake }));
    let keys = HashMap::from([(key, intake.verifying_key())]);
    Setup { world, intake, keys }
}

fn signed_donation(s: &mut Setup) -> Vec<u8> {
    let mut event: Event = s.world.event("admin", FUND, donation(Fen::new(5_000).unwrap(), Channel::Direct));
    event.author = s.intake.key_id();
    event.fund = FundId::new(FUND).unwrap();
    s.intake.sign_event(&event)
}

fn bench(c: &mut Criterion) {
    let mut s = setup();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));

    let envelope = signed_donation(&mut s);
    let opened = open(&envelope, |id| s.keys.get(id).copied()).expect("valid");
    let wire: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let sig = base64_sig(&wire);
    let key = s.intake.verifying_key();
    let message = pae(PAYLOAD_TYPE, &opened.payload);
    group.bench_function("bare_ed25519_verify", |b| b.iter(|| key.verify_strict(&message, &sig).expect("valid")));
    group.bench_function("fundtrail_strict_check", |b| {
        b.iter(|| assert!(fundtrail_envelope::ed25519::verify_strict(&key, &message, &sig)))
    });

    group.bench_function("decode_verify_decide_evolve", |b| {
        b.iter_custom(|iters| {
            // Signing is the client's work: done before the clock starts.
            let envelopes: Vec<Vec<u8>> = (0..iters).map(|_| signed_donation(&mut s)).collect();
            let start = Instant::now();
            for envelope in envelopes {
                let verified = open(&envelope, |id| s.keys.get(id).copied()).expect("valid");
                let events = decide(&s.world.state, &verified.event).expect("accepted");
                for event in &events {
                    evolve(&mut s.world.state, event).expect("applies");
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn base64_sig(wire: &serde_json::Value) -> Signature {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(wire["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    Signature::from_bytes(&raw.try_into().unwrap())
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
